/*
 * Unit tests for hv-vm's system-call filter (netvsc/src/sandbox.c).
 *
 * Each case runs in a forked child that installs the filter and then makes
 * calls; the parent judges by how the child ended: exit 0 for calls the
 * filter must allow (a failing one is reported by its exit code), SIGSYS
 * for calls it must forbid. The children use raw system calls after the
 * filter is in (no stdio, no cmocka), and end with exit_group.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_tun.h>
#include <linux/netlink.h>

#include <cmocka.h>

#include "netvsc-sandbox.h"

/* Fork; the child runs fn after installing the filter (ctx is fn's) and
 * exits with its return value. Returns the child's wait status. */
static int run_sandboxed(int (*fn)(void *ctx), void *ctx)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(30);
        if (netvsc_sandbox_enter() < 0)
            syscall(SYS_exit_group, 100);
        syscall(SYS_exit_group, fn(ctx));
    }
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    return ws;
}

static void assert_exit0(int ws)
{
    if (WIFSIGNALED(ws))
        fail_msg("killed by signal %d", WTERMSIG(ws));
    assert_true(WIFEXITED(ws));
    if (WEXITSTATUS(ws) != 0)
        fail_msg("allowed call number %d failed (100: the filter would not install)",
                 WEXITSTATUS(ws));
}

static void assert_sigsys(int ws, const char *what)
{
    if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGSYS)
        fail_msg("%s: expected death by SIGSYS, got %s %d", what,
                 WIFSIGNALED(ws) ? "signal" : "exit", WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
}

/* What hv-vm does in its steady state, each call checked. */
static int steady_state(void *ctx)
{
    const int *fds = ctx; /* a pipe, an eventfd-like socket pair, an epoll set */
    char buf[16] = "frame";
    struct iovec iov = {buf, sizeof(buf)};
    if (write(fds[1], buf, 5) != 5 || read(fds[0], buf, 5) != 5)
        return 1;
    if (writev(fds[1], &iov, 1) != (ssize_t)sizeof(buf) || readv(fds[0], &iov, 1) != (ssize_t)sizeof(buf))
        return 2;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (sendmsg(fds[2], &mh, 0) < 0 || recvmsg(fds[3], &mh, 0) < 0)
        return 3;
    if (send(fds[2], buf, 1, 0) != 1 || recvmsg(fds[3], &mh, MSG_DONTWAIT) != 1)
        return 4;
    struct epoll_event ev = {.events = EPOLLIN};
    if (epoll_ctl(fds[4], EPOLL_CTL_ADD, fds[0], &ev) < 0 || epoll_wait(fds[4], &ev, 1, 0) < 0)
        return 5;
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    if (poll(&pfd, 1, 0) < 0)
        return 6;
    int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (nl < 0)
        return 7;
    int sz = 32768, grp = 1;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    socklen_t salen = sizeof(sa);
    if (setsockopt(nl, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) < 0 ||
        setsockopt(nl, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) < 0 ||
        bind(nl, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(nl, (struct sockaddr *)&sa, &salen) < 0 ||
        setsockopt(nl, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)) < 0)
        return 8;
    if (fcntl(nl, F_SETFL, O_NONBLOCK) < 0 || fcntl(nl, F_SETFD, FD_CLOEXEC) < 0)
        return 9;
    if (close(nl) < 0)
        return 10;
    /* Not a TAP: the filter lets the call through, the kernel refuses it. */
    int on = 1;
    if (ioctl(fds[0], TUNSETCARRIER, &on) == 0 || ioctl(fds[0], TUNSETOFFLOAD, 0ul) == 0)
        return 11;
    void *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED || mprotect(p, 4096, PROT_READ) < 0 || munmap(p, 1 << 20) < 0)
        return 12;
    void *m = malloc(1 << 16); /* brk */
    if (!m)
        return 13;
    free(m);
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0 || getpid() <= 0)
        return 14;
    return 0;
}

static void netvsc_sandbox_enter__steady_state_calls__allowed(void **state)
{
    (void)state;
    int fds[5];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds + 2), 0);
    fds[4] = epoll_create1(0);
    assert_true(fds[4] >= 0);
    assert_exit0(run_sandboxed(steady_state, fds));
    for (int i = 0; i < 5; i++)
        close(fds[i]);
}

static int wait_for_parent(void *ctx)
{
    int fd = *(int *)ctx;
    char c;
    return read(fd, &c, 1) == 1 ? 0 : 1;
}

/* Seen from outside: no_new_privs and a seccomp filter in force. */
static void netvsc_sandbox_enter__status__no_new_privs_and_filter(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[1]);
        alarm(30);
        if (netvsc_sandbox_enter() < 0)
            syscall(SYS_exit_group, 100);
        syscall(SYS_exit_group, wait_for_parent(&p[0]));
    }
    close(p[0]);
    char path[64], line[128];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    bool nnp = false, filter = false;
    for (int tries = 0; tries < 500 && !(nnp && filter); tries++) {
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        nnp = filter = false;
        while (fgets(line, sizeof(line), fp)) {
            nnp |= strcmp(line, "NoNewPrivs:\t1\n") == 0;
            filter |= strcmp(line, "Seccomp:\t2\n") == 0;
        }
        fclose(fp);
        if (!(nnp && filter))
            usleep(10000);
    }
    assert_int_equal(write(p[1], "x", 1), 1);
    close(p[1]);
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_exit0(ws);
    assert_true(nnp);
    assert_true(filter);
}

/* Forbidden calls, one child each. */
enum forbidden {
    F_OPENAT,
    F_OPEN_PROC_MEM,
    F_PTRACE,
    F_EXECVE,
    F_FORK,
    F_KILL,
    F_SOCKET_INET,
    F_SOCKET_UNIX,
    F_SOCKET_NETFILTER,
    F_SOCKET_PACKET,
    F_MMAP_EXEC,
    F_MPROTECT_EXEC,
    F_IOCTL_TUNSETIFF,
    F_FCNTL_DUPFD,
    F_SETSOCKOPT_FILTER,
    F_PRCTL,
    F_UNSHARE,
    F_X32_ABI,
    F_COUNT
};

static const char *const forbidden_names[F_COUNT] = {
    "openat", "open /proc/1/mem", "ptrace", "execve", "fork", "kill",
    "socket(AF_INET)", "socket(AF_UNIX)", "socket(AF_NETLINK, NETLINK_NETFILTER)",
    "socket(AF_PACKET)", "mmap(PROT_EXEC)", "mprotect(PROT_EXEC)", "ioctl(TUNSETIFF)",
    "fcntl(F_DUPFD)", "setsockopt(SO_ATTACH_FILTER)", "prctl", "unshare", "x32 read",
};

static int do_forbidden(void *ctx)
{
    enum forbidden f = *(enum forbidden *)ctx;
    static char page[4096] __attribute__((aligned(4096)));
    switch (f) {
    case F_OPENAT:
        syscall(SYS_openat, AT_FDCWD, "/etc/hostname", O_RDONLY);
        break;
    case F_OPEN_PROC_MEM:
        syscall(SYS_openat, AT_FDCWD, "/proc/1/mem", O_RDONLY);
        break;
    case F_PTRACE:
        syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0);
        break;
    case F_EXECVE: {
        char *const argv[] = {"/bin/true", NULL};
        syscall(SYS_execve, "/bin/true", argv, NULL);
        break;
    }
    case F_FORK:
        syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
        break;
    case F_KILL:
        syscall(SYS_kill, 1, 0);
        break;
    case F_SOCKET_INET:
        syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0);
        break;
    case F_SOCKET_UNIX:
        syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
        break;
    case F_SOCKET_NETFILTER:
        syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 12 /* NETLINK_NETFILTER */);
        break;
    case F_SOCKET_PACKET:
        syscall(SYS_socket, 17 /* AF_PACKET */, SOCK_RAW, 0);
        break;
    case F_MMAP_EXEC:
        syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        break;
    case F_MPROTECT_EXEC:
        syscall(SYS_mprotect, page, sizeof(page), PROT_READ | PROT_EXEC);
        break;
    case F_IOCTL_TUNSETIFF:
        syscall(SYS_ioctl, 0, TUNSETIFF, page);
        break;
    case F_FCNTL_DUPFD:
        syscall(SYS_fcntl, 0, F_DUPFD, 100);
        break;
    case F_SETSOCKOPT_FILTER:
        syscall(SYS_setsockopt, 0, SOL_SOCKET, SO_ATTACH_FILTER, page, 16);
        break;
    case F_PRCTL:
        syscall(SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0);
        break;
    case F_UNSHARE:
        syscall(SYS_unshare, 0x40000000 /* CLONE_NEWNET */);
        break;
    case F_X32_ABI:
        /* read through the x32 system-call numbers: another ABI. */
        syscall(0x40000000 | SYS_read, 0, page, 0);
        break;
    case F_COUNT:
        break;
    }
    return 0; /* still alive: the filter let it through */
}

static void netvsc_sandbox_enter__forbidden_calls__killed_by_sigsys(void **state)
{
    (void)state;
    for (enum forbidden f = 0; f < F_COUNT; f++)
        assert_sigsys(run_sandboxed(do_forbidden, &f), forbidden_names[f]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(netvsc_sandbox_enter__steady_state_calls__allowed),
        cmocka_unit_test(netvsc_sandbox_enter__status__no_new_privs_and_filter),
        cmocka_unit_test(netvsc_sandbox_enter__forbidden_calls__killed_by_sigsys),
    };
    return cmocka_run_group_tests_name("netvsc_sandbox", tests, NULL, NULL);
}
