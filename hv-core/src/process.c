/*
 * The process partition backend: the guest is a program run in a child
 * process that holds three descriptors at fixed numbers: its memory
 * (memfd), its hypercall socket (SOCK_SEQPACKET) and VP 0's SINT eventfd;
 * then any the root passes for that start (hv_process_partition_pass_fds),
 * and stdin (/dev/null), stdout and stderr (see below). Everything else is
 * closed before exec, so the child sees nothing of the root, of other
 * partitions, or of the pages the root has mapped.
 *
 * Hypercalls arrive as records on the socket (hv-proto.h). The root checks
 * the sender's kernel-supplied credentials (SO_PASSCRED) against the child's
 * pid, discards any descriptor a guest tries to pass, and answers each record
 * with exactly one response. Death is noticed through a pidfd.
 *
 * The child's stdin is /dev/null; its stdout and stderr are a pipe the root
 * reads: each line it prints becomes a line of the root's log, prefixed
 * with the partition's name, cut at HV_CHILD_LINE_MAX, control characters
 * replaced, and rate limited like every other line the guest can cause
 * (the partition's log_rl). Handing the child the root's own stderr would
 * let it write without bound into the root's log.
 *
 * A jail (hv.h) confines the child before exec: its network namespace, a
 * mount namespace whose root holds only what the program needs to load,
 * an unprivileged uid and gid with no capabilities, no_new_privs. The uid
 * is what keeps it away from the root: a process of another uid cannot
 * ptrace, signal or open the /proc memory of the root, and the root's
 * files and sockets are not in its mount namespace at all. The credentials
 * check still holds: there is no PID namespace, so SCM_CREDENTIALS carries
 * the very pid fork() returned.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include "hv-provider.h"

extern char **environ;

#define HV_CHILD_LINE_MAX 200u
/* Output read per wake-up; level-triggered epoll calls again for more. */
#define HV_CHILD_OUT_CHUNK 4096u
#define HV_CHILD_OUT_READS 4

struct hv_process_partition {
    struct hv_partition up;
    char **argv;
    char **extra_env;
    void *cpuset; /* NULL: inherit */
    size_t cpuset_size;
    pid_t pid;
    int pidfd;
    int sock;   /* root end of the hypercall socket */
    int out_fd; /* root end of the child's stdout/stderr pipe */
    uint32_t out_len; /* bytes of the line being collected */
    bool out_cut;     /* it was longer than HV_CHILD_LINE_MAX */
    char out_line[HV_CHILD_LINE_MAX + 1];
    /* The jail (hv_process_partition_set_jail). */
    bool jailed;
    uint32_t uid, gid;
    char *netns_path;
    char **root_paths;  /* as given */
    char **stage_paths; /* each under HV_PROCESS_JAIL_STAGE, made before fork */
    /* Descriptors for the next start (hv_process_partition_pass_fds). */
    int extra_fds[HV_PROCESS_EXTRA_FDS_MAX];
    unsigned nextra;
};

static struct hv_process_partition *proc_cast(struct hv_partition *p)
{
    return container_of(p, struct hv_process_partition, up);
}

static void free_strv(char **v)
{
    if (!v)
        return;
    for (char **s = v; *s; s++)
        free(*s);
    free(v);
}

static char **dup_strv(const char *const *v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    char **out = calloc(n + 1, sizeof(*out));
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        out[i] = strdup(v[i]);
        if (!out[i]) {
            free_strv(out);
            return NULL;
        }
    }
    return out;
}

static struct hv_partition *proc_alloc(void)
{
    struct hv_process_partition *pp = calloc(1, sizeof(*pp));
    if (!pp)
        return NULL;
    pp->pid = -1;
    pp->pidfd = -1;
    pp->sock = -1;
    pp->out_fd = -1;
    return &pp->up;
}

static int proc_construct(struct hv_partition *p, const struct hv_partition_params *params)
{
    struct hv_process_partition *pp = proc_cast(p);
    if (!params->argv || !params->argv[0])
        return -EINVAL;
    if (params->cpuset && (params->cpuset_size == 0 || params->cpuset_size > 8192))
        return -EINVAL;
    pp->argv = dup_strv(params->argv);
    pp->extra_env = dup_strv(params->envp);
    if (params->cpuset) {
        pp->cpuset = malloc(params->cpuset_size);
        if (pp->cpuset) {
            memcpy(pp->cpuset, params->cpuset, params->cpuset_size);
            pp->cpuset_size = params->cpuset_size;
        }
    }
    if (!pp->argv || !pp->extra_env || (params->cpuset && !pp->cpuset)) {
        free_strv(pp->argv);
        free_strv(pp->extra_env);
        free(pp->cpuset);
        pp->cpuset = NULL;
        return -ENOMEM;
    }
    return 0;
}

static void jail_clear(struct hv_process_partition *pp)
{
    pp->jailed = false;
    free(pp->netns_path);
    free_strv(pp->root_paths);
    free_strv(pp->stage_paths);
    pp->netns_path = NULL;
    pp->root_paths = NULL;
    pp->stage_paths = NULL;
}

static void extra_fds_close(struct hv_process_partition *pp)
{
    for (unsigned i = 0; i < pp->nextra; i++)
        close(pp->extra_fds[i]);
    pp->nextra = 0;
}

/* The descriptors given for one start. */
static void start_fds_close(struct hv_process_partition *pp)
{
    extra_fds_close(pp);
}

static void proc_destruct(struct hv_partition *p)
{
    struct hv_process_partition *pp = proc_cast(p);
    free_strv(pp->argv);
    free_strv(pp->extra_env);
    free(pp->cpuset);
    jail_clear(pp);
    start_fds_close(pp);
}

static void proc_dealloc(struct hv_partition *p)
{
    free(proc_cast(p));
}

/* The child's environment: ours, minus any HV_* variables of our own
 * partition (a root may itself run as a guest), plus the partition's. */
static char **build_env(struct hv_process_partition *pp)
{
    size_t n = 0, extra = 0;
    while (environ[n])
        n++;
    while (pp->extra_env[extra])
        extra++;
    char **env = calloc(n + extra + 5, sizeof(*env));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "HV_PARTITION_", 13) == 0)
            continue;
        if (!(env[k++] = strdup(environ[i])))
            goto fail;
    }
    for (size_t i = 0; i < extra; i++)
        if (!(env[k++] = strdup(pp->extra_env[i])))
            goto fail;
    if (asprintf(&env[k++], "%s=%d,%d,%d", HV_ENV_FDS, HV_CHILD_FD_MEM, HV_CHILD_FD_HYPERCALL,
                 HV_CHILD_FD_SINT) < 0)
        goto fail;
    if (asprintf(&env[k++], "%s=%s", HV_ENV_NAME, pp->up.name) < 0)
        goto fail;
    if (asprintf(&env[k++], "%s=%u", HV_ENV_ID, pp->up.id) < 0)
        goto fail;
    if (asprintf(&env[k++], "%s=%u", HV_ENV_VPS, hv_partition_vp_count(&pp->up)) < 0)
        goto fail;
    return env;
fail:
    free_strv(env);
    return NULL;
}

/*
 * Between fork and exec, everything below is async-signal-safe: system
 * calls on strings and buffers prepared before fork (the root is
 * multi-threaded), no allocation. Failures end the child with 126, which
 * the root sees as a crash at start.
 */

/* mkdir -p of path's parent directories (path itself if `self`). */
static int jail_mkdirs(const char *path, bool self)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        if (buf[i] == '\0' && !self)
            break;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -1;
        buf[i] = c;
    }
    return 0;
}

/* Bind src read-only (and nosuid, nodev, keeping noexec) onto dst, which
 * exists. Not recursive: mounts below src stay out of the jail. */
static int jail_bind_ro(const char *src, const char *dst)
{
    struct statfs sf;
    if (syscall(SYS_statfs, src, &sf) < 0)
        return -1;
    unsigned long fl = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV;
    if (sf.f_flags & ST_NOEXEC)
        fl |= MS_NOEXEC;
    if (mount(src, dst, NULL, MS_BIND, NULL) < 0 || mount(NULL, dst, NULL, fl, NULL) < 0)
        return -1;
    return 0;
}

/* The new root: a tmpfs on the stage directory in a private mount
 * namespace, filled, pivoted into, the old root detached, then read-only. */
static int jail_make_root(const struct hv_process_partition *pp)
{
    if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return -1;
    if (mount("hv-jail", HV_PROCESS_JAIL_STAGE, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755,size=64k,nr_inodes=256") < 0)
        return -1;
    for (size_t i = 0; pp->root_paths[i]; i++) {
        const char *src = pp->root_paths[i], *dst = pp->stage_paths[i];
        struct stat st;
        if (lstat(src, &st) < 0) {
            if (errno == ENOENT)
                continue;
            return -1;
        }
        if (jail_mkdirs(dst, false) < 0)
            return -1;
        if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlink(src, target, sizeof(target) - 1);
            if (n < 0)
                return -1;
            target[n] = '\0';
            if (symlink(target, dst) < 0 && errno != EEXIST)
                return -1;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            if (mkdir(dst, 0755) < 0 && errno != EEXIST)
                return -1;
        } else {
            int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0444);
            if (fd < 0)
                return -1;
            close(fd);
        }
        if (jail_bind_ro(src, dst) < 0)
            return -1;
    }
    /* A /proc of the guest's own processes: hidepid=invisible hides every
     * process it could not ptrace, i.e. all but its own once its uid is
     * set; subset=pid leaves out the system-wide files. Older kernels get
     * no /proc at all rather than the root's. */
    char proc[sizeof(HV_PROCESS_JAIL_STAGE "/proc")] = HV_PROCESS_JAIL_STAGE "/proc";
    if (mkdir(proc, 0555) < 0)
        return -1;
    const unsigned long pfl = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount("proc", proc, "proc", pfl, "hidepid=invisible,subset=pid") < 0 &&
        mount("proc", proc, "proc", pfl, "hidepid=2") < 0)
        rmdir(proc);
    if (chdir(HV_PROCESS_JAIL_STAGE) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
        umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
        return -1;
    if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return -1;
    return 0;
}

/* Credentials last: the bounding set needs CAP_SETPCAP to shrink, and the
 * namespaces and mounts above need the root's capabilities. Raw system
 * calls: glibc's wrappers would try to reach the root's other threads. */
static int jail_drop_privileges(const struct hv_process_partition *pp)
{
    for (unsigned long cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            return -1;
    if (syscall(SYS_setgroups, 0, NULL) < 0 ||
        syscall(SYS_setresgid, pp->gid, pp->gid, pp->gid) < 0 ||
        syscall(SYS_setresuid, pp->uid, pp->uid, pp->uid) < 0)
        return -1;
    /* From root to another uid the kernel clears the permitted, effective
     * and ambient sets; make sure of it. */
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) < 0 || data[0].permitted || data[1].permitted ||
        data[0].effective || data[1].effective)
        return -1;
    return 0;
}

static void child_exec(struct hv_process_partition *pp, char **env, int mem_fd, int sock,
                       int sint_fd, int out_fd, int exe_fd, int netns_fd, int null_fd,
                       pid_t parent)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGPIPE, &dfl, NULL);
    if (pp->cpuset && syscall(SYS_sched_setaffinity, 0, pp->cpuset_size, pp->cpuset) < 0)
        _exit(126);
    if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) < 0)
        _exit(126);
    /* When memory runs out, the kernel kills a jailed guest before the
     * root: one VM lost rather than every VM's switch. */
    if (pp->jailed) {
        int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        if (oom < 0 || write(oom, "1000", 4) != 4)
            _exit(126);
        close(oom);
    }
    if (pp->jailed && pp->root_paths && jail_make_root(pp) < 0)
        _exit(126);

    /* Move every descriptor the child keeps above every source first, so
     * that the dup2s below cannot clobber one another. */
    int src[3 + HV_PROCESS_EXTRA_FDS_MAX + 1];
    unsigned n = 0;
    src[n++] = mem_fd;
    src[n++] = sock;
    src[n++] = sint_fd;
    for (unsigned i = 0; i < pp->nextra; i++)
        src[n++] = pp->extra_fds[i];
    int hi = 16;
    for (unsigned i = 0; i < n; i++)
        if (src[i] >= hi)
            hi = src[i] + 1;
    if (exe_fd >= hi)
        hi = exe_fd + 1;
    if (out_fd >= hi)
        hi = out_fd + 1;
    if (null_fd >= hi)
        hi = null_fd + 1;
    for (unsigned i = 0; i < n; i++)
        if ((src[i] = fcntl(src[i], F_DUPFD, hi)) < 0)
            _exit(126);
    int exe_hi = exe_fd >= 0 ? fcntl(exe_fd, F_DUPFD_CLOEXEC, hi) : -1;
    int out_hi = fcntl(out_fd, F_DUPFD, hi);
    int null_hi = fcntl(null_fd, F_DUPFD, hi);
    if ((exe_fd >= 0 && exe_hi < 0) || out_hi < 0 || null_hi < 0)
        _exit(126);
    for (unsigned i = 0; i < n; i++)
        if (dup2(src[i], HV_CHILD_FD_MEM + (int)i) < 0)
            _exit(126);
    /* stdout and stderr to the root's pipe, stdin from /dev/null. */
    if (dup2(null_hi, STDIN_FILENO) < 0 || dup2(out_hi, STDOUT_FILENO) < 0 ||
        dup2(out_hi, STDERR_FILENO) < 0)
        _exit(126);
    /* The program's descriptor goes right after the guest's and closes on
     * exec: the guest never holds it. */
    int first_free = HV_CHILD_FD_MEM + (int)n;
    if (exe_hi >= 0) {
        if (dup3(exe_hi, first_free, O_CLOEXEC) < 0)
            _exit(126);
        exe_fd = first_free++;
    }
    if (syscall(SYS_close_range, first_free, ~0u, 0) < 0)
        _exit(126);

    struct rlimit no_core = {0, 0};
    if (setrlimit(RLIMIT_CORE, &no_core) < 0)
        _exit(126);
    if (pp->jailed && jail_drop_privileges(pp) < 0)
        _exit(126);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(126);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        _exit(126);
    execve(pp->argv[0], pp->argv, env);
    if (exe_fd >= 0)
        syscall(SYS_execveat, exe_fd, "", pp->argv, env, AT_EMPTY_PATH);
    _exit(127);
}

static void on_socket(void *ctx, uint32_t events);
static void on_exit_fd(void *ctx, uint32_t events);

/* One line the child printed, into the root's log. */
static void out_line_done(struct hv_process_partition *pp)
{
    if (pp->out_len || pp->out_cut) {
        pp->out_line[pp->out_len] = '\0';
        hv_log_limited(&pp->up.log_rl, "partition %s: %s%s", pp->up.name, pp->out_line,
                       pp->out_cut ? " [cut]" : "");
    }
    pp->out_len = 0;
    pp->out_cut = false;
}

/* Read what the child printed: at most `reads` chunks. Returns false at end
 * of file or on an error (the pipe is done), true otherwise. */
static bool out_read(struct hv_process_partition *pp, int reads)
{
    char buf[HV_CHILD_OUT_CHUNK];
    for (int r = 0; r < reads; r++) {
        ssize_t n = read(pp->out_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0)
            return false;
        for (ssize_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)buf[i];
            if (ch == '\n') {
                out_line_done(pp);
                continue;
            }
            if (pp->out_len == HV_CHILD_LINE_MAX) {
                pp->out_cut = true;
                continue;
            }
            /* Guest bytes in the root's log: nothing that moves the cursor,
             * colours the terminal or fakes a line of the root's. */
            pp->out_line[pp->out_len++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        }
    }
    return true;
}

static void out_close(struct hv_process_partition *pp)
{
    if (pp->out_fd < 0)
        return;
    out_line_done(pp);
    hv_host_unwatch(pp->up.host, pp->out_fd);
    close(pp->out_fd);
    pp->out_fd = -1;
}

static void on_output(void *ctx, uint32_t events)
{
    struct hv_process_partition *pp = ctx;
    (void)events;
    if (!out_read(pp, HV_CHILD_OUT_READS))
        out_close(pp);
}

static int proc_start(struct hv_partition *p)
{
    struct hv_process_partition *pp = proc_cast(p);
    int sv[2], out[2];
    int rc;
    if (pipe2(out, O_CLOEXEC) < 0)
        return -errno;
    /* The root's end never blocks; the child's blocks while the root has
     * not read what it printed. */
    fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
        rc = -errno;
        close(out[0]);
        close(out[1]);
        return rc;
    }
    /* The guest's end blocks: its hypercalls are synchronous. */
    int fl = fcntl(sv[1], F_GETFL);
    fcntl(sv[1], F_SETFL, fl & ~O_NONBLOCK);
    int one = 1;
    if (setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
        rc = -errno;
        goto err_sock;
    }
    /* A jailed guest is run from a descriptor: the program need not be
     * reachable by its uid or under its new root. Without a jail the path
     * is executed as given, and a missing program is the child's exit 127. */
    int exe_fd = -1, netns_fd = -1, null_fd = -1;
    if ((null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        rc = -errno;
        goto err_sock;
    }
    if (pp->jailed) {
        exe_fd = open(pp->argv[0], O_PATH | O_CLOEXEC);
        if (exe_fd < 0) {
            rc = -errno;
            goto err_fds;
        }
        if (pp->netns_path) {
            netns_fd = open(pp->netns_path, O_RDONLY | O_CLOEXEC);
            if (netns_fd < 0) {
                rc = -errno;
                goto err_fds;
            }
        }
    }
    char **env = build_env(pp);
    if (!env) {
        rc = -ENOMEM;
        goto err_fds;
    }
    pp->out_len = 0;
    pp->out_cut = false;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        free_strv(env);
        goto err_fds;
    }
    if (pid == 0)
        child_exec(pp, env, p->mem_fd, sv[1], p->sint_fd, out[1], exe_fd, netns_fd, null_fd,
                   parent);
    free_strv(env);
    close(sv[1]);
    close(out[1]);
    if (exe_fd >= 0)
        close(exe_fd);
    if (netns_fd >= 0)
        close(netns_fd);
    if (null_fd >= 0)
        close(null_fd);
    start_fds_close(pp);

    pp->pid = pid;
    pp->sock = sv[0];
    pp->out_fd = out[0];
    pp->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pp->pidfd < 0) {
        rc = -errno;
        goto err_kill;
    }
    rc = hv_host_watch(p->host, pp->sock, EPOLLIN, on_socket, pp);
    if (rc < 0)
        goto err_kill;
    rc = hv_host_watch(p->host, pp->pidfd, EPOLLIN, on_exit_fd, pp);
    if (rc < 0) {
        hv_host_unwatch(p->host, pp->sock);
        goto err_kill;
    }
    rc = hv_host_watch(p->host, pp->out_fd, EPOLLIN, on_output, pp);
    if (rc < 0) {
        hv_host_unwatch(p->host, pp->sock);
        hv_host_unwatch(p->host, pp->pidfd);
        goto err_kill;
    }
    return 0;

err_kill:
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    if (pp->pidfd >= 0)
        close(pp->pidfd);
    close(pp->sock);
    close(pp->out_fd);
    pp->pid = -1;
    pp->pidfd = -1;
    pp->sock = -1;
    pp->out_fd = -1;
    return rc;
err_fds:
    if (exe_fd >= 0)
        close(exe_fd);
    if (netns_fd >= 0)
        close(netns_fd);
    if (null_fd >= 0)
        close(null_fd);
err_sock:
    start_fds_close(pp);
    close(sv[0]);
    close(sv[1]);
    close(out[0]);
    close(out[1]);
    return rc;
}

/* The child is gone (or going): reap it, drop its fds, report. */
static void proc_finish(struct hv_process_partition *pp, bool asked)
{
    int status = -1;
    if (pp->pid > 0) {
        if (waitpid(pp->pid, &status, 0) < 0)
            status = -1;
    }
    if (pp->sock >= 0) {
        hv_host_unwatch(pp->up.host, pp->sock);
        close(pp->sock);
        pp->sock = -1;
    }
    if (pp->pidfd >= 0) {
        hv_host_unwatch(pp->up.host, pp->pidfd);
        close(pp->pidfd);
        pp->pidfd = -1;
    }
    /* Its last words: what it printed before it died and the root had not
     * read yet (a bounded amount; a process it left behind may hold the
     * pipe open and keep writing). */
    if (pp->out_fd >= 0) {
        out_read(pp, 16);
        out_close(pp);
    }
    pp->pid = -1;
    hv_partition_exited(&pp->up, status, asked);
}

static void on_exit_fd(void *ctx, uint32_t events)
{
    struct hv_process_partition *pp = ctx;
    (void)events;
    proc_finish(pp, pp->up.stopping);
}

static bool wait_exit(int pidfd, int ms)
{
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    int rc;
    do {
        rc = poll(&pfd, 1, ms);
    } while (rc < 0 && errno == EINTR);
    return rc > 0;
}

static void proc_stop(struct hv_partition *p, int grace_ms)
{
    struct hv_process_partition *pp = proc_cast(p);
    if (pp->pid <= 0)
        return;
    if (grace_ms > 0) {
        syscall(SYS_pidfd_send_signal, pp->pidfd, SIGTERM, NULL, 0);
        if (!wait_exit(pp->pidfd, grace_ms))
            syscall(SYS_pidfd_send_signal, pp->pidfd, SIGKILL, NULL, 0);
    } else {
        syscall(SYS_pidfd_send_signal, pp->pidfd, SIGKILL, NULL, 0);
    }
    wait_exit(pp->pidfd, -1);
    proc_finish(pp, true);
}

static int proc_request_stop(struct hv_partition *p)
{
    struct hv_process_partition *pp = proc_cast(p);
    if (pp->pidfd < 0)
        return -ESRCH;
    if (syscall(SYS_pidfd_send_signal, pp->pidfd, SIGTERM, NULL, 0) < 0)
        return -errno;
    return 0;
}

static void respond(struct hv_process_partition *pp, uint32_t seq, int status, int fd)
{
    struct hv_hc_response resp = {
        .magic = HV_HC_MAGIC,
        .status = (uint16_t)status,
        .seq = seq,
    };
    struct iovec iov = {.iov_base = &resp, .iov_len = sizeof(resp)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    /* The guest waits for this answer; if its socket is full or gone it
     * is misbehaving or dead, and the pidfd will tell. */
    if (sendmsg(pp->sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EPIPE &&
        errno != ECONNRESET)
        hv_log_limited(&pp->up.log_rl, "hv: partition %s: hypercall answer: %s", pp->up.name,
                       strerror(errno));
}

/* Close every descriptor a guest tried to pass us; return the sender's pid
 * from SCM_CREDENTIALS, or -1. */
static pid_t scan_control(struct msghdr *mh)
{
    pid_t pid = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level != SOL_SOCKET)
            continue;
        if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof(struct ucred))) {
            struct ucred uc;
            memcpy(&uc, CMSG_DATA(c), sizeof(uc));
            pid = uc.pid;
        } else if (c->cmsg_type == SCM_RIGHTS) {
            size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < n; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                close(fd);
            }
        }
    }
    return pid;
}

/* recvmsg() returns 0 both for a zero-length record, which is answered like
 * any other, and for the guest's hang-up; only the hang-up sets RDHUP. */
static bool peer_closed(int sock)
{
    struct pollfd pfd = {.fd = sock, .events = POLLRDHUP};
    return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

static void on_socket(void *ctx, uint32_t events)
{
    struct hv_process_partition *pp = ctx;
    struct hv_partition *p = &pp->up;
    /* A bounded batch per wake-up keeps one chatty guest from starving the
     * others; level-triggered epoll calls again. */
    for (int i = 0; i < 64 && pp->sock >= 0; i++) {
        union {
            struct hv_hc_request req;
            uint8_t raw[sizeof(struct hv_hc_request) + 1];
        } buf;
        union {
            char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(16 * sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {.iov_base = buf.raw, .iov_len = sizeof(buf.raw)};
        struct msghdr mh = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = ctl.buf,
            .msg_controllen = sizeof(ctl.buf),
        };
        ssize_t n = recvmsg(pp->sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n < 0 || (n == 0 && peer_closed(pp->sock))) {
            /* The guest closed its end; keep the partition until the pidfd
             * says the process is gone, but stop listening. */
            hv_host_unwatch(p->host, pp->sock);
            close(pp->sock);
            pp->sock = -1;
            return;
        }
        pid_t sender = scan_control(&mh);
        uint32_t seq = 0;
        if ((size_t)n >= offsetof(struct hv_hc_request, input))
            memcpy(&seq, buf.raw + offsetof(struct hv_hc_request, seq), sizeof(seq));
        if (sender != pp->pid) {
            p->stats.bad_callers++;
            respond(pp, seq, HV_STATUS_ACCESS_DENIED, -1);
            continue;
        }
        if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || (size_t)n > sizeof(buf.req)) {
            p->stats.bad_records++;
            respond(pp, seq, HV_STATUS_INVALID_HYPERCALL_INPUT, -1);
            continue;
        }
        int fd = -1;
        int st = hv_hypercall(p, buf.raw, (size_t)n, &fd);
        respond(pp, seq, st, st == HV_STATUS_SUCCESS ? fd : -1);
    }
    (void)events;
}

int hv_process_partition_pid(const struct hv_partition *p)
{
    if (p->cls != &hv_process_partition_class)
        return -1;
    const struct hv_process_partition *pp =
        container_of(p, const struct hv_process_partition, up);
    return pp->pid;
}

static struct hv_process_partition *proc_of(struct hv_partition *p)
{
    return p && p->cls == &hv_process_partition_class ? proc_cast(p) : NULL;
}

static bool jail_path_ok(const char *path)
{
    static const char stage[] = HV_PROCESS_JAIL_STAGE;
    size_t n = strnlen(path, PATH_MAX);
    if (path[0] != '/' || n + sizeof(stage) >= PATH_MAX || strstr(path, "/../") ||
        (n >= 3 && strcmp(path + n - 3, "/..") == 0))
        return false;
    /* Paths under the stage would be hidden by the tmpfs made there. */
    return !(strncmp(path, stage, sizeof(stage) - 1) == 0 &&
             (path[sizeof(stage) - 1] == '\0' || path[sizeof(stage) - 1] == '/'));
}

int hv_process_partition_set_jail(struct hv_partition *p, const struct hv_process_jail *jail)
{
    struct hv_process_partition *pp = proc_of(p);
    if (!pp)
        return -EINVAL;
    if (pp->pid > 0)
        return -EBUSY;
    if (!jail) {
        jail_clear(pp);
        return 0;
    }
    if (jail->uid == 0 || jail->gid == 0 || jail->uid == (uint32_t)-1 ||
        jail->gid == (uint32_t)-1)
        return -EINVAL;
    if (jail->netns_path && (jail->netns_path[0] != '/' || strlen(jail->netns_path) >= PATH_MAX))
        return -EINVAL;
    for (size_t i = 0; jail->root_paths && jail->root_paths[i]; i++)
        if (!jail_path_ok(jail->root_paths[i]))
            return -EINVAL;

    /* The stage: an empty directory of the root's, in a directory only root
     * may write, so that nobody else can put a link in its place. */
    if (jail->root_paths) {
        struct stat st;
        if (mkdir(HV_PROCESS_JAIL_STAGE, 0700) < 0 && errno != EEXIST)
            return -errno;
        if (lstat(HV_PROCESS_JAIL_STAGE, &st) < 0)
            return -errno;
        if (!S_ISDIR(st.st_mode) || st.st_uid != 0)
            return -ENOTDIR;
    }
    char *netns = jail->netns_path ? strdup(jail->netns_path) : NULL;
    char **roots = jail->root_paths ? dup_strv(jail->root_paths) : NULL;
    char **stages = NULL;
    if (roots) {
        size_t n = 0;
        while (roots[n])
            n++;
        stages = calloc(n + 1, sizeof(*stages));
        for (size_t i = 0; stages && i < n; i++) {
            if (asprintf(&stages[i], "%s%s", HV_PROCESS_JAIL_STAGE, roots[i]) < 0) {
                stages[i] = NULL;
                free_strv(stages);
                stages = NULL;
            }
        }
    }
    if ((jail->netns_path && !netns) || (jail->root_paths && (!roots || !stages))) {
        free(netns);
        free_strv(roots);
        free_strv(stages);
        return -ENOMEM;
    }
    jail_clear(pp);
    pp->jailed = true;
    pp->uid = jail->uid;
    pp->gid = jail->gid;
    pp->netns_path = netns;
    pp->root_paths = roots;
    pp->stage_paths = stages;
    return 0;
}

int hv_process_partition_pass_fds(struct hv_partition *p, const int *fds, unsigned n)
{
    struct hv_process_partition *pp = proc_of(p);
    if (!pp || n > HV_PROCESS_EXTRA_FDS_MAX || (n && !fds))
        return -EINVAL;
    if (pp->pid > 0)
        return -EBUSY;
    int dup[HV_PROCESS_EXTRA_FDS_MAX];
    for (unsigned i = 0; i < n; i++) {
        dup[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
        if (dup[i] < 0) {
            int rc = errno == EBADF ? -EINVAL : -errno;
            while (i > 0)
                close(dup[--i]);
            return rc;
        }
    }
    extra_fds_close(pp);
    memcpy(pp->extra_fds, dup, n * sizeof(int));
    pp->nextra = n;
    return 0;
}

const struct hv_partition_class hv_process_partition_class = {
    .name = "process",
    .alloc = proc_alloc,
    .construct = proc_construct,
    .start = proc_start,
    .stop = proc_stop,
    .request_stop = proc_request_stop,
    .destruct = proc_destruct,
    .dealloc = proc_dealloc,
};
