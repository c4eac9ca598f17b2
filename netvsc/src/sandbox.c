/*
 * hv-vm's system-call filter, with libseccomp.
 *
 * The list is what `strace -f` attached to hv-vm saw it do after set-up,
 * over the integration tests and a survey run of everything a running VM
 * goes through: traffic both ways, NICs hot-added to it and removed, link
 * bounces (a NIC moved between switches), MTU changes from the root and
 * from inside the VM (full NIC re-initialisations), a TAP deleted inside
 * the VM and made again through the broker, stop. To those, only the
 * forms glibc uses on other architectures or when the vDSO is off
 * (epoll_pwait, ppoll, clock_gettime) and restart_syscall (a VM stopped
 * and continued in a timed poll). Arguments are checked where the call is
 * broader than its use: sockets of the route netlink family only, three
 * socket options, the TAP carrier and offload ioctls, descriptor and
 * status flags, and memory that is never executable.
 *
 * Default action: kill the process (SIGSYS). An error return
 * (SCMP_ACT_ERRNO) would let a subverted worker probe the filter; a kill
 * shows at once in the root, as the partition's exit signal.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <linux/if_tun.h>
#include <linux/netlink.h>

#include <seccomp.h>

#include "netvsc-sandbox.h"

static char last_error[160];

const char *netvsc_sandbox_last_error(void)
{
    return last_error;
}

static int record(int err, const char *what)
{
    snprintf(last_error, sizeof(last_error), "%s: %s", what, strerror(-err));
    return err;
}

/* Allowed with any arguments. */
static const int plain_calls[] = {
    /* frames (TAPs), eventfds, the signalfd, messages */
    SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(write), SCMP_SYS(writev),
    /* hypercalls, the TAP broker (descriptors come with recvmsg), netlink */
    SCMP_SYS(sendto), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg),
    /* netlink sockets being set up (socket() and setsockopt() are checked below) */
    SCMP_SYS(bind), SCMP_SYS(getsockname),
    /* waiting */
    SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), SCMP_SYS(poll),
    SCMP_SYS(ppoll), SCMP_SYS(clock_gettime), SCMP_SYS(restart_syscall),
    /* polling gives way to whatever else wants the CPU (vm.c) */
    SCMP_SYS(sched_yield),
    /* memory (mmap and mprotect are checked below) */
    SCMP_SYS(munmap), SCMP_SYS(brk),
    /* descriptors, the process (libnl names its sockets after the pid) */
    SCMP_SYS(close), SCMP_SYS(getpid), SCMP_SYS(exit_group),
};

static int add(scmp_filter_ctx ctx, int nr, unsigned n, const struct scmp_arg_cmp *cmp,
               const char *what)
{
    int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, nr, n, cmp);
    return rc < 0 ? record(rc, what) : 0;
}

static int add_rules(scmp_filter_ctx ctx)
{
    int rc;
    for (size_t i = 0; i < sizeof(plain_calls) / sizeof(plain_calls[0]); i++) {
        char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, plain_calls[i]);
        rc = add(ctx, plain_calls[i], 0, NULL, name ? name : "rule");
        free(name);
        if (rc < 0)
            return rc;
    }
    /* Comparisons name both data (the second is unused by EQ): clang's
     * -Wmissing-field-initializers fires on libseccomp's compound literals
     * otherwise. Route netlink only: link settings and notifications. No packet,
     * inet or unix sockets; no other netlink family (netfilter, ...). */
    const struct scmp_arg_cmp nl[] = {SCMP_A0(SCMP_CMP_EQ, AF_NETLINK, 0),
                                      SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE, 0)};
    if ((rc = add(ctx, SCMP_SYS(socket), 2, nl, "socket")) < 0)
        return rc;
    /* The TAP's carrier and offloads. */
    static const unsigned long ioctls[] = {TUNSETCARRIER, TUNSETOFFLOAD};
    for (size_t i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]); i++) {
        const struct scmp_arg_cmp c = SCMP_A1(SCMP_CMP_EQ, ioctls[i], 0);
        if ((rc = add(ctx, SCMP_SYS(ioctl), 1, &c, "ioctl")) < 0)
            return rc;
    }
    /* libnl's buffer sizes and notification group. */
    static const int sockopts[][2] = {
        {SOL_SOCKET, SO_SNDBUF}, {SOL_SOCKET, SO_RCVBUF}, {SOL_NETLINK, NETLINK_ADD_MEMBERSHIP}};
    for (size_t i = 0; i < sizeof(sockopts) / sizeof(sockopts[0]); i++) {
        const struct scmp_arg_cmp c[] = {SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)sockopts[i][0], 0),
                                         SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)sockopts[i][1], 0)};
        if ((rc = add(ctx, SCMP_SYS(setsockopt), 2, c, "setsockopt")) < 0)
            return rc;
    }
    /* Close-on-exec and non-blocking on new netlink sockets. */
    static const int fcntls[] = {F_SETFD, F_SETFL};
    for (size_t i = 0; i < sizeof(fcntls) / sizeof(fcntls[0]); i++) {
        const struct scmp_arg_cmp c = SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)fcntls[i], 0);
        if ((rc = add(ctx, SCMP_SYS(fcntl), 1, &c, "fcntl")) < 0)
            return rc;
    }
    /* Memory, never executable: no new code can be mapped in. */
    const struct scmp_arg_cmp nx = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
    if ((rc = add(ctx, SCMP_SYS(mmap), 1, &nx, "mmap")) < 0 ||
        (rc = add(ctx, SCMP_SYS(mprotect), 1, &nx, "mprotect")) < 0)
        return rc;
    return 0;
}

int netvsc_sandbox_enter(void)
{
    last_error[0] = '\0';
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return record(-errno, "no_new_privs");
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx)
        return record(-ENOMEM, "seccomp_init");
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (rc < 0)
        record(rc, "seccomp_attr_set(badarch)");
    else
        rc = add_rules(ctx);
    if (rc == 0 && (rc = seccomp_load(ctx)) < 0)
        record(rc, "seccomp_load");
    seccomp_release(ctx);
    return rc;
}
