/*
 * The process partition backend: the guest is a program run in a child
 * process that holds exactly three descriptors, at fixed numbers: its memory
 * (memfd), its hypercall socket (SOCK_SEQPACKET) and its SINT eventfd.
 * Everything else is closed before exec, so the child sees nothing of the
 * root, of other partitions, or of the pages the root has mapped.
 *
 * Hypercalls arrive as records on the socket (hv-proto.h). The root checks
 * the sender's kernel-supplied credentials (SO_PASSCRED) against the child's
 * pid, discards any descriptor a guest tries to pass, and answers each record
 * with exactly one response. Death is noticed through a pidfd.
 *
 * The child's stdout and stderr are a pipe the root reads: each line it
 * prints becomes a line of the root's log, prefixed with the partition's
 * name, cut at HV_CHILD_LINE_MAX, control characters replaced, and rate
 * limited like every other line the guest can cause (the partition's
 * log_rl). Handing the child the root's own stderr would let it write
 * without bound into the root's log.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

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

static void proc_destruct(struct hv_partition *p)
{
    struct hv_process_partition *pp = proc_cast(p);
    free_strv(pp->argv);
    free_strv(pp->extra_env);
    free(pp->cpuset);
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

/* Between fork and exec: async-signal-safe calls only. */
static void child_exec(struct hv_process_partition *pp, char **env, int mem_fd, int sock,
                       int sint_fd, int out_fd, pid_t parent)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGPIPE, &dfl, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
        _exit(126);
    if (pp->cpuset && syscall(SYS_sched_setaffinity, 0, pp->cpuset_size, pp->cpuset) < 0)
        _exit(126);

    /* Move the descriptors above every source first, so that the dup2s
     * below cannot clobber one another. */
    int hi = mem_fd;
    if (sock > hi)
        hi = sock;
    if (sint_fd > hi)
        hi = sint_fd;
    if (out_fd > hi)
        hi = out_fd;
    hi = hi < 16 ? 16 : hi + 1;
    int m = fcntl(mem_fd, F_DUPFD, hi);
    int s = fcntl(sock, F_DUPFD, hi);
    int e = fcntl(sint_fd, F_DUPFD, hi);
    int o = fcntl(out_fd, F_DUPFD, hi);
    if (m < 0 || s < 0 || e < 0 || o < 0)
        _exit(126);
    if (dup2(m, HV_CHILD_FD_MEM) < 0 || dup2(s, HV_CHILD_FD_HYPERCALL) < 0 ||
        dup2(e, HV_CHILD_FD_SINT) < 0 || dup2(o, STDOUT_FILENO) < 0 || dup2(o, STDERR_FILENO) < 0)
        _exit(126);
    if (syscall(SYS_close_range, HV_CHILD_FD_SINT + 1, ~0u, 0) < 0)
        _exit(126);
    execve(pp->argv[0], pp->argv, env);
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
    char **env = build_env(pp);
    if (!env) {
        rc = -ENOMEM;
        goto err_sock;
    }
    pp->out_len = 0;
    pp->out_cut = false;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        free_strv(env);
        goto err_sock;
    }
    if (pid == 0)
        child_exec(pp, env, p->mem_fd, sv[1], p->sint_fd, out[1], parent);
    free_strv(env);
    close(sv[1]);
    close(out[1]);

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
err_sock:
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
