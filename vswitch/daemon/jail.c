/*
 * The root's half of confining a VM's worker (hv-vm), done at each start.
 *
 * A VM's worker is the guest: whatever runs in it must be assumed hostile,
 * and before this it ran as root with every capability, in the root's
 * mount and PID namespaces, able to ptrace vswitchd or write its memory.
 * Now, in layers:
 *  - vswitchd makes the VM's network namespace (and brings lo up) itself,
 *    then has hv-core jail the worker (hv.h, struct hv_process_jail): it
 *    starts inside that namespace, in a mount namespace whose root holds
 *    only the libraries it loads and a /proc of its own processes, as uid
 *    and gid vm_uid_base + the VM's slot, with no capability and
 *    no_new_privs. One uid per VM, so that VMs cannot reach each other
 *    either. vswitchd itself is not dumpable (vswitchd.c): even a process
 *    of its own uid without CAP_SYS_PTRACE cannot read its memory.
 *  - What needs privilege after that, TAP devices and their link
 *    settings, the root does on the worker's behalf: a TAP broker per VM
 *    (netvsc-tap.h) on a socket passed as descriptor 6 (--tap-broker-fd).
 *  - The worker installs a seccomp filter after its set-up
 *    (netvsc-sandbox.h); a forbidden call kills it with SIGSYS, which is
 *    reported as such (vsd_vm_exit_describe, vm-list's "exit").
 *  - Its stdout and stderr are a pipe of its own (its console), not
 *    vswitchd's log: vswitchd logs what comes out of it line by line,
 *    labelled, with control bytes replaced, at most CONSOLE_BURST lines at
 *    once and CONSOLE_RATE a second after that, counting the rest. A
 *    guest cannot fill the root's disk or forge its log lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netvsc-tap.h"
#include "vswitchd.h"

#define CONSOLE_LINE_MAX 200 /* longer lines are cut */
#define CONSOLE_BURST 100    /* lines logged at once ... */
#define CONSOLE_RATE 10      /* ... and per second after that */
#define CONSOLE_READ 4096    /* bytes read per wake-up */
#define CONSOLE_DRAIN 65536  /* bytes read when the worker is gone */

struct vsd_console {
    int fd; /* read end, non-blocking */
    char line[CONSOLE_LINE_MAX + 1];
    size_t len;
    bool cut;        /* the line in progress was cut: drop up to its end */
    double tokens;   /* lines that may be logged now */
    double last;     /* vsd_now() of the last refill */
    uint64_t quiet;  /* lines suppressed since the last one logged */
    uint64_t total;  /* lines suppressed in all */
};

/* What the worker may see of the root's filesystem: where its program's
 * libraries are. Paths missing on this system are skipped. */
static const char *const vm_root_paths[] = {
    "/usr", "/lib", "/lib64", "/lib32", "/libx32", "/etc/ld.so.cache", NULL,
};

uint32_t vsd_vm_uid(const struct vsd *d, const struct vsd_vm *vm)
{
    for (int i = 0; i < VSD_MAX_VMS; i++)
        if (d->vms[i] == vm)
            return d->vm_uid_base + (uint32_t)i;
    return 0;
}

static void broker_stop(struct vsd_vm *vm)
{
    if (!vm->tapb)
        return;
    struct netvsc_tap_broker_stats st;
    netvsc_tap_broker_get_stats(vm->tapb, &st);
    unsigned long long answered = st.requests, malformed = st.malformed,
                       not_ours = st.not_ours, over = st.over_budget;
    if (malformed || not_ours || over)
        vsd_log("VM %s: its worker's TAP requests: %llu answered, %llu refused (malformed %llu, "
                "not its own interface %llu, over budget %llu)",
                vm->name, answered, malformed + not_ours + over, malformed, not_ours, over);
    hv_host_unwatch(vm->d->host, netvsc_tap_broker_fd(vm->tapb));
    netvsc_tap_broker_destroy(vm->tapb);
    vm->tapb = NULL;
}

static void console_emit(struct vsd_vm *vm)
{
    struct vsd_console *c = vm->console;
    double now = vsd_now();
    c->tokens += (now - c->last) * CONSOLE_RATE;
    if (c->tokens > CONSOLE_BURST)
        c->tokens = CONSOLE_BURST;
    c->last = now;
    if (c->tokens < 1) {
        c->quiet++;
        c->total++;
    } else {
        c->tokens -= 1;
        if (c->quiet)
            vsd_log("VM %s: %llu lines of its console suppressed (more than %d a second)",
                    vm->name, (unsigned long long)c->quiet, CONSOLE_RATE);
        c->quiet = 0;
        c->line[c->len] = '\0';
        vsd_log("VM %s (console): %s", vm->name, c->line);
    }
    c->len = 0;
}

/* Take bytes from the worker: whole lines are logged, printable ASCII
 * only (anything else becomes '?', so no terminal escapes or forged
 * lines reach the log). */
static void console_take(struct vsd_vm *vm, const char *buf, size_t n)
{
    struct vsd_console *c = vm->console;
    for (size_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (ch == '\n') {
            if (!c->cut)
                console_emit(vm);
            c->cut = false;
            c->len = 0;
            continue;
        }
        if (c->cut)
            continue;
        if (c->len == CONSOLE_LINE_MAX) {
            console_emit(vm); /* what fits, then nothing up to the newline */
            c->cut = true;
            continue;
        }
        c->line[c->len++] = (ch >= 0x20 && ch < 0x7f) || ch == '\t' ? ch : '?';
    }
}

/* Read up to max bytes; false once the worker's end is closed (or broken). */
static bool console_read(struct vsd_vm *vm, size_t max)
{
    char buf[CONSOLE_READ];
    for (size_t done = 0; done < max;) {
        ssize_t n = read(vm->console->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return true;
        if (n <= 0)
            return false;
        console_take(vm, buf, (size_t)n);
        done += (size_t)n;
    }
    return true;
}

static void console_close(struct vsd_vm *vm)
{
    struct vsd_console *c = vm->console;
    if (!c)
        return;
    console_read(vm, CONSOLE_DRAIN);
    if (c->len && !c->cut)
        console_emit(vm);
    if (c->total)
        vsd_log("VM %s: %llu lines of its console suppressed in all", vm->name,
                (unsigned long long)c->total);
    hv_host_unwatch(vm->d->host, c->fd);
    close(c->fd);
    free(c);
    vm->console = NULL;
}

static void on_console(void *ctx, uint32_t events)
{
    struct vsd_vm *vm = ctx;
    (void)events;
    if (!console_read(vm, CONSOLE_READ))
        console_close(vm);
}

static void on_tap_broker(void *ctx, uint32_t events)
{
    struct vsd_vm *vm = ctx;
    (void)events;
    if (netvsc_tap_broker_serve(vm->tapb) < 0)
        broker_stop(vm); /* the worker hung up (it stopped) or stopped reading */
}

/* The broker, serving the root's end of a new socket pair; *guest_end
 * gets the worker's. */
static int broker_start(struct vsd *d, struct vsd_vm *vm, uint32_t uid, int *guest_end,
                        struct vsd_err *e)
{
    int nsfd = -1, sv[2];
    if (netvsc_ns_open(vm->netns, &nsfd) < 0)
        return vsd_fail(e, VSD_FAILED, "VM '%s': %s", vm->name, netvsc_tap_last_error());
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        close(nsfd);
        return vsd_fail(e, VSD_FAILED, "VM '%s': TAP broker socket: %s", vm->name,
                        strerror(errno));
    }
    int rc = fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 ? -errno : 0;
    struct netvsc_tap_broker_params bp = {
        .sock = sv[0], .netns_fd = nsfd, .owner_uid = uid, .owner_gid = uid};
    if (rc < 0)
        close(sv[0]);
    else
        rc = netvsc_tap_broker_create(&bp, &vm->tapb); /* takes sv[0] */
    close(nsfd);
    if (rc == 0 && (rc = hv_host_watch(d->host, netvsc_tap_broker_fd(vm->tapb), EPOLLIN,
                                       on_tap_broker, vm)) < 0) {
        netvsc_tap_broker_destroy(vm->tapb);
        vm->tapb = NULL;
    }
    if (rc < 0) {
        close(sv[1]);
        return vsd_fail(e, VSD_FAILED, "VM '%s': TAP broker: %s", vm->name, strerror(-rc));
    }
    *guest_end = sv[1];
    return 0;
}

/* The worker's console: a pipe whose write end the partition hands it. */
static int console_open(struct vsd *d, struct vsd_vm *vm, struct vsd_err *e)
{
    int con[2];
    if (pipe2(con, O_CLOEXEC) < 0)
        return vsd_fail(e, VSD_FAILED, "VM '%s': console: %s", vm->name, strerror(errno));
    struct vsd_console *c = calloc(1, sizeof(*c));
    int rc = c ? 0 : -ENOMEM;
    if (rc == 0 && fcntl(con[0], F_SETFL, O_NONBLOCK) < 0)
        rc = -errno;
    if (rc == 0)
        rc = hv_process_partition_set_console(vm->p, con[1]);
    if (rc == 0)
        rc = hv_host_watch(d->host, con[0], EPOLLIN, on_console, vm);
    close(con[1]);
    if (rc < 0) {
        close(con[0]);
        free(c);
        return vsd_fail(e, VSD_FAILED, "VM '%s': console: %s", vm->name, strerror(-rc));
    }
    c->fd = con[0];
    c->tokens = CONSOLE_BURST;
    c->last = vsd_now();
    vm->console = c;
    return 0;
}

int vsd_vm_confine(struct vsd *d, struct vsd_vm *vm, struct vsd_err *e)
{
    bool created;
    int prev = -1, broker_end = -1;
    if (netvsc_ns_setup(vm->netns, &created, &prev) < 0)
        return vsd_fail(e, VSD_FAILED, "VM '%s': network namespace: %s", vm->name,
                        netvsc_tap_last_error());
    if (netvsc_ns_leave(prev) < 0) {
        /* The control thread would stay in the VM's namespace. */
        vsd_log("%s", netvsc_tap_last_error());
        return vsd_fail(e, VSD_FAILED, "VM '%s': cannot leave its namespace", vm->name);
    }
    uint32_t uid = vsd_vm_uid(d, vm);
    if (broker_start(d, vm, uid, &broker_end, e) < 0)
        return -1;
    if (console_open(d, vm, e) < 0)
        goto fail;
    char nspath[sizeof(NETVSC_NS_RUN_DIR) + VSD_NAME_MAX + 2];
    snprintf(nspath, sizeof(nspath), "%s/%s", NETVSC_NS_RUN_DIR, vm->netns);
    struct hv_process_jail jail = {
        .uid = uid, .gid = uid, .netns_path = nspath, .root_paths = vm_root_paths};
    int rc;
    if ((rc = hv_process_partition_set_jail(vm->p, &jail)) < 0 ||
        (rc = hv_process_partition_pass_fds(vm->p, &broker_end, 1)) < 0) {
        vsd_fail(e, VSD_FAILED, "VM '%s': cannot confine its worker: %s", vm->name,
                 strerror(-rc));
        goto fail;
    }
    close(broker_end);
    return 0;
fail:
    close(broker_end);
    vsd_vm_unconfine(vm);
    return -1;
}

void vsd_vm_unconfine(struct vsd_vm *vm)
{
    console_close(vm);
    broker_stop(vm);
}

void vsd_vm_exit_describe(int status, char *buf, size_t len)
{
    if (status < 0)
        snprintf(buf, len, "unknown");
    else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
        snprintf(buf, len, "killed by seccomp (SIGSYS)");
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (SIG%s)", WTERMSIG(status),
                 sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
    else if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else
        snprintf(buf, len, "unknown");
}
