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
 *    (nettap.h) on a socket passed as descriptor 6 (--tap-broker-fd).
 *  - The worker installs a seccomp filter after its set-up
 *    (netvsc-sandbox.h); a forbidden call kills it with SIGSYS, which is
 *    reported as such (vsd_vm_exit_describe, vm-list's "exit").
 *  - Its stdout and stderr are a pipe hv-core's process backend reads
 *    (process.c), not vswitchd's log: each line is labelled, cut, its
 *    control bytes replaced, and rate limited with the partition's other
 *    guest-caused lines. A guest cannot fill the root's disk or forge its
 *    log lines.
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

#include "nettap-broker.h"
#include "nettap.h"
#include "model-private.h"

/* What the worker may see of the root's filesystem: where its program's
 * libraries are, and (vsd_vm_confine) its program's own directory, so that
 * a worker that is a script, or execs a program beside it, runs (the
 * benchmarks' wrappers do). Paths missing on this system are skipped.
 * Two read-only sysfs directories, without which a worker that is a DPDK
 * program (vswitch-pktgen as the VM) cannot start, and which no EAL
 * option (22.11) makes it do without: /sys/devices/system/cpu, as EAL
 * takes a CPU without topology/core_id there for absent ("lcore 0
 * unavailable"); /sys/module, as EAL fails ("Cannot init VFIO") when it
 * cannot stat it to see whether vfio is loaded. They tell the CPUs'
 * topology (which CPUID tells a guest anyway) and which kernel modules are
 * loaded, nothing writable. */
static const char *const vm_root_paths[] = {
    "/usr", "/bin", "/lib", "/lib64", "/lib32", "/libx32", "/etc/ld.so.cache",
    "/sys/devices/system/cpu", "/sys/module",
};
#define VM_ROOT_PATHS (sizeof(vm_root_paths) / sizeof(vm_root_paths[0]))

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
    struct nettap_broker_stats st;
    nettap_broker_get_stats(vm->tapb, &st);
    unsigned long long answered = st.requests, malformed = st.malformed,
                       not_ours = st.not_ours, over = st.over_budget;
    if (malformed || not_ours || over)
        vsd_log("VM %s: its worker's TAP requests: %llu answered, %llu refused (malformed %llu, "
                "not its own interface %llu, over budget %llu)",
                vm->name, answered, malformed + not_ours + over, malformed, not_ours, over);
    hv_host_unwatch(vm->d->host, nettap_broker_fd(vm->tapb));
    nettap_broker_destroy(vm->tapb);
    vm->tapb = NULL;
}

static void on_tap_broker(void *ctx, uint32_t events)
{
    struct vsd_vm *vm = ctx;
    (void)events;
    if (nettap_broker_serve(vm->tapb) < 0)
        broker_stop(vm); /* the worker hung up (it stopped) or stopped reading */
}

/* The broker, serving the root's end of a new socket pair; *guest_end
 * gets the worker's. */
static int broker_start(struct vsd *d, struct vsd_vm *vm, uint32_t uid, int *guest_end,
                        struct vsd_err *e)
{
    int nsfd = -1, sv[2];
    if (nettap_ns_open(vm->netns, &nsfd) < 0)
        return vsd_fail(e, VSD_FAILED, "VM '%s': %s", vm->name, nettap_last_error());
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        close(nsfd);
        return vsd_fail(e, VSD_FAILED, "VM '%s': TAP broker socket: %s", vm->name,
                        strerror(errno));
    }
    int rc = fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 ? -errno : 0;
    struct nettap_broker_params bp = {
        .sock = sv[0], .netns_fd = nsfd, .owner_uid = uid, .owner_gid = uid};
    if (rc < 0)
        close(sv[0]);
    else
        rc = nettap_broker_create(&bp, &vm->tapb); /* takes sv[0] */
    close(nsfd);
    if (rc == 0 && (rc = hv_host_watch(d->host, nettap_broker_fd(vm->tapb), EPOLLIN,
                                       on_tap_broker, vm)) < 0) {
        nettap_broker_destroy(vm->tapb);
        vm->tapb = NULL;
    }
    if (rc < 0) {
        close(sv[1]);
        return vsd_fail(e, VSD_FAILED, "VM '%s': TAP broker: %s", vm->name, strerror(-rc));
    }
    *guest_end = sv[1];
    return 0;
}

int vsd_vm_confine(struct vsd *d, struct vsd_vm *vm, struct vsd_err *e)
{
    bool created;
    int prev = -1, broker_end = -1;
    if (nettap_ns_setup(vm->netns, &created, &prev) < 0)
        return vsd_fail(e, VSD_FAILED, "VM '%s': network namespace: %s", vm->name,
                        nettap_last_error());
    if (nettap_ns_leave(prev) < 0) {
        /* The control thread would stay in the VM's namespace. */
        vsd_log("%s", nettap_last_error());
        return vsd_fail(e, VSD_FAILED, "VM '%s': cannot leave its namespace", vm->name);
    }
    uint32_t uid = vsd_vm_uid(d, vm);
    if (broker_start(d, vm, uid, &broker_end, e) < 0)
        return -1;
    char nspath[sizeof(NETTAP_NS_RUN_DIR) + VSD_NAME_MAX + 2];
    snprintf(nspath, sizeof(nspath), "%s/%s", NETTAP_NS_RUN_DIR, vm->netns);
    char prog_dir[sizeof(d->hv_vm_path)];
    snprintf(prog_dir, sizeof(prog_dir), "%s", d->hv_vm_path);
    char *slash = strrchr(prog_dir, '/');
    if (slash && slash != prog_dir)
        *slash = '\0';
    const char *paths[VM_ROOT_PATHS + 2];
    for (size_t i = 0; i < VM_ROOT_PATHS; i++)
        paths[i] = vm_root_paths[i];
    paths[VM_ROOT_PATHS] = slash && slash != prog_dir ? prog_dir : NULL;
    paths[VM_ROOT_PATHS + 1] = NULL;
    struct hv_process_jail jail = {
        .uid = uid, .gid = uid, .netns_path = nspath, .root_paths = paths};
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
