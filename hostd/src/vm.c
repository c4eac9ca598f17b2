/*
 * VMs: each is a process partition with its own VMBus server, from vm-add
 * on (created, or stopped when not running), confined at each start
 * (jail.c). Its NICs are in nic.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netvsp.h"
#include "vmbus-server.h"
#include "vsw-host.h"
#include "vsw-port-provider.h"
#include "vsw-uplink.h"
#include "model-private.h"

const char *vsd_vm_state_name(const struct vsd_vm *vm)
{
    if (vm->p && hv_partition_state(vm->p) == HV_PARTITION_RUNNING)
        return hv_partition_stopping(vm->p) ? "stopping" : "running";
    return vm->crashed ? "crashed" : "stopped";
}

static bool netns_exists(const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "/run/netns/%s", name);
    return access(path, F_OK) == 0;
}

/* What `ip netns del` does: detach the bind mount, remove the file. */
static void netns_delete(const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "/run/netns/%s", name);
    umount2(path, MNT_DETACH);
    if (unlink(path) < 0 && errno != ENOENT)
        vsd_log("cannot remove namespace %s: %s", name, strerror(errno));
}

static void vm_partition_event(void *ctx, struct hv_partition *p, enum hv_partition_state from,
                               enum hv_partition_state to);

static int vm_create_rt(struct vsd *d, struct vsd_vm *vm, struct vsd_err *e)
{
    /* The TAP broker's socket is the first descriptor after the
     * partition's own (jail.c). */
    _Static_assert(HV_CHILD_FD_SINT + 1 == 6, "--tap-broker-fd");
    const char *argv[] = {d->hv_vm_path, "--name", vm->name, "--netns",
                          vm->netns,     "--tap-broker-fd", "6",
                          vm->guest_offloads ? NULL : "--no-offload", NULL};
    struct hv_partition_params pp = {
        .name = vm->name,
        .memory_bytes = (uint64_t)vm->memory_mb << 20,
        .vp_count = vm->cpus,
        .argv = argv,
        .cpuset = d->have_vm_cpus ? &d->vm_cpus : NULL,
        .cpuset_size = sizeof(d->vm_cpus),
    };
    int rc = hv_partition_create(d->host, &pp, &vm->p);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "cannot create partition for VM '%s': %s", vm->name,
                        strerror(-rc));
    rc = vmbus_server_create(vm->p, &vm->srv);
    if (rc == 0)
        rc = hv_partition_listen(vm->p, vm_partition_event, vm);
    if (rc < 0) {
        vmbus_server_destroy(vm->srv);
        hv_partition_destroy(vm->p);
        vm->p = NULL;
        vm->srv = NULL;
        return vsd_fail(e, VSD_FAILED, "cannot set up VMBus for VM '%s': %s", vm->name,
                        strerror(-rc));
    }
    return 0;
}

void vsd_vm_destroy_rt(struct vsd_vm *vm)
{
    for (int i = 0; i < vm->nnics; i++)
        vsd_nic_destroy(vm->nics[i]);
    if (vm->p)
        hv_partition_unlisten(vm->p, vm_partition_event, vm);
    vmbus_server_destroy(vm->srv);
    if (vm->p) {
        if (hv_partition_state(vm->p) == HV_PARTITION_RUNNING)
            hv_partition_stop(vm->p, 0);
        hv_partition_destroy(vm->p);
    }
    vsd_vm_unconfine(vm);
    vm->p = NULL;
    vm->srv = NULL;
}

void vsd_vm_params_init(struct vsd_vm_params *p, const char *name)
{
    *p = (struct vsd_vm_params){.name = name, .memory_mb = VSD_MEMORY_DEFAULT_MB, .cpus = 1,
                                .guest_offloads = true};
}

/* vm-add and vm-del: the VM and its slot. */
struct vm_rec {
    struct vsd *d;
    struct vsd_vm *vm;
    int slot;
    bool quiet;
};

static void add_commit(void *rec)
{
    struct vm_rec *r = rec;
    struct vsd_vm *vm = r->vm;
    if (!r->quiet)
        vsd_log("VM %s added (namespace %s, %u MiB, %u CPU%s%s)", vm->name, vm->netns,
                vm->memory_mb, vm->cpus, vm->cpus == 1 ? "" : "s",
                vm->guest_offloads ? "" : ", guest offloads off");
}

static void vm_free(struct vsd_vm *vm)
{
    for (int i = 0; i < vm->nnics; i++)
        free(vm->nics[i]);
    free(vm);
}

static void add_undo(void *rec)
{
    struct vm_rec *r = rec;
    r->d->vms[r->slot] = NULL;
    vsd_vm_destroy_rt(r->vm);
    vm_free(r->vm);
}

int vsd_vm_add(struct vsd *d, const struct vsd_vm_params *p, struct vsd_change *chg,
               struct vsd_err *e)
{
    if (vsd_check_name(e, "name", p->name, VSD_NAME_MAX, false) < 0 ||
        vsd_check_range(e, "memory_mb", p->memory_mb, 64, 65536) < 0 ||
        vsd_check_range(e, "cpus", p->cpus, 1, HV_PARTITION_VPS_MAX) < 0)
        return -1;
    /* As Hyper-V, no more virtual processors than the host has logical
     * ones. Checked when a VM is added, not when the state file is loaded:
     * a VM saved on a larger host still comes back (its VPs are interrupt
     * targets, not threads, so it runs). */
    long host_cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (!p->restore && host_cpus > 0 && p->cpus > host_cpus)
        return vsd_fail(e, VSD_BAD_PARAMS,
                        "cpus %u is more than this host's %ld CPUs (1..%ld allowed)", p->cpus,
                        host_cpus, host_cpus < HV_PARTITION_VPS_MAX ? host_cpus
                                                                    : (long)HV_PARTITION_VPS_MAX);
    const char *netns = p->netns;
    if (netns && !vsd_name_ok(netns, VSD_NAME_MAX))
        return vsd_fail(e, VSD_BAD_PARAMS,
                        "bad namespace name '%s': use 1..%d characters of A-Z a-z 0-9 _ . -", netns,
                        VSD_NAME_MAX);
    if (vsd_find_vm(d, p->name))
        return vsd_fail(e, VSD_FAILED, "VM '%s' already exists", p->name);
    const char *ns = netns ? netns : p->name;
    for (int i = 0; i < VSD_MAX_VMS; i++)
        if (d->vms[i] && strcmp(d->vms[i]->netns, ns) == 0)
            return vsd_fail(e, VSD_FAILED, "namespace '%s' is already used by VM '%s'", ns,
                            d->vms[i]->name);
    struct vm_rec r = {.d = d, .slot = -1, .quiet = p->restore};
    for (int i = 0; i < VSD_MAX_VMS && r.slot < 0; i++)
        if (!d->vms[i])
            r.slot = i;
    if (r.slot < 0)
        return vsd_fail(e, VSD_FAILED, "too many VMs (at most %d)", VSD_MAX_VMS);
    struct vsd_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return vsd_fail(e, VSD_FAILED, "out of memory");
    vm->d = d;
    snprintf(vm->name, sizeof(vm->name), "%s", p->name);
    snprintf(vm->netns, sizeof(vm->netns), "%s", ns);
    vm->memory_mb = p->memory_mb;
    vm->cpus = p->cpus;
    vm->guest_offloads = p->guest_offloads;
    if (p->restore) {
        vm->want_running = p->want_running;
        vm->netns_owned = p->netns_owned;
    } else {
        vm->netns_owned = !netns_exists(vm->netns);
    }
    if (vm_create_rt(d, vm, e) < 0) {
        free(vm);
        return -1;
    }
    d->vms[r.slot] = vm;
    r.vm = vm;
    VSD_CHANGE_OPEN(chg, add_commit, add_undo, r);
    return 0;
}

/* Partition events: crashes and stops, seen on the control thread. */
static void vm_partition_event(void *ctx, struct hv_partition *p, enum hv_partition_state from,
                               enum hv_partition_state to)
{
    struct vsd_vm *vm = ctx;
    (void)p;
    if (from != HV_PARTITION_RUNNING || to != HV_PARTITION_STOPPED)
        return;
    int status = hv_partition_exit_status(vm->p);
    vm->crashed = hv_partition_crashed(vm->p);
    vm->stop_deadline = 0;
    vsd_vm_unconfine(vm);
    vsd_vm_exit_describe(status, vm->exit_reason, sizeof(vm->exit_reason));
    /* The guest decides when its worker exits or crashes. */
    if (vm->crashed) {
        if (status >= 0 && WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
            vsd_log_limited(&vm->log_rl,
                            "VM %s crashed: its worker was killed by seccomp (SIGSYS): it made a "
                            "system call outside its filter (the kernel's audit log names it, "
                            "where audit is on); its NICs are down and its memory is unmapped",
                            vm->name);
        else if (status >= 0 && WIFSIGNALED(status))
            vsd_log_limited(&vm->log_rl,
                            "VM %s crashed: its worker was killed by signal %d; its NICs are "
                            "down and its memory is unmapped",
                            vm->name, WTERMSIG(status));
        else
            vsd_log_limited(&vm->log_rl,
                            "VM %s crashed: its worker exited with status %d; its NICs are down "
                            "and its memory is unmapped",
                            vm->name,
                            status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else {
        vsd_log_limited(&vm->log_rl, "VM %s stopped", vm->name);
    }
    int n = vm->nwaiters;
    vm->nwaiters = 0;
    for (int i = 0; i < n; i++)
        vm->waiters[i].done(vm->waiters[i].ctx, vsd_vm_state_name(vm), NULL);
}

static struct vsd_vm *find_vm(struct vsd *d, const char *name, struct vsd_err *e)
{
    struct vsd_vm *vm = vsd_find_vm(d, name);
    if (!vm)
        vsd_fail(e, VSD_FAILED, "no VM '%s'", name);
    return vm;
}

int vsd_vm_start_rt(struct vsd *d, struct vsd_vm *vm, struct vsd_err *e)
{
    if (access(d->hv_vm_path, X_OK) != 0)
        return vsd_fail(e, VSD_FAILED, "cannot run the VM worker %s: %s", d->hv_vm_path,
                        strerror(errno));
    if (vsd_vm_confine(d, vm, e) < 0)
        return -1;
    int rc = hv_partition_start(vm->p);
    if (rc < 0) {
        vsd_vm_unconfine(vm);
        return vsd_fail(e, VSD_FAILED, "cannot start VM '%s': %s", vm->name, strerror(-rc));
    }
    vm->crashed = false;
    vm->exit_reason[0] = '\0';
    vsd_log("VM %s started (worker pid %d, uid %u)", vm->name, hv_process_partition_pid(vm->p),
            vsd_vm_uid(d, vm));
    return 0;
}

/* vm-start and vm-stop: whether the VM was to run with vswitchd. */
struct run_rec {
    struct vsd_vm *vm;
    bool was_wanted;
    vsd_vm_stop_done_fn *done;
    void *ctx;
};

static void start_commit(void *rec)
{
    (void)rec;
}

static void start_undo(void *rec)
{
    struct run_rec *r = rec;
    r->vm->want_running = false;
    hv_partition_stop(r->vm->p, 0);
}

int vsd_vm_start(struct vsd *d, const char *name, struct vsd_change *chg, struct vsd_err *e)
{
    struct vsd_vm *vm = find_vm(d, name, e);
    if (!vm)
        return -1;
    if (hv_partition_state(vm->p) == HV_PARTITION_RUNNING)
        return vsd_fail(e, VSD_FAILED, "VM '%s' is already %s", vm->name, vsd_vm_state_name(vm));
    if (vsd_vm_start_rt(d, vm, e) < 0)
        return -1;
    struct run_rec r = {.vm = vm, .was_wanted = vm->want_running};
    vm->want_running = true;
    VSD_CHANGE_OPEN(chg, start_commit, start_undo, r);
    return 0;
}

/* Saved as not to run: now ask it to stop, and tell done when it has. */
static void stop_commit(void *rec)
{
    struct run_rec *r = rec;
    struct vsd_vm *vm = r->vm;
    struct vsd_err e = {0};
    if (hv_partition_state(vm->p) != HV_PARTITION_RUNNING) {
        r->done(r->ctx, vsd_vm_state_name(vm), NULL);
        return;
    }
    if (vm->nwaiters == (int)(sizeof(vm->waiters) / sizeof(vm->waiters[0]))) {
        vsd_fail(&e, VSD_FAILED, "too many clients waiting for VM '%s' to stop", vm->name);
        r->done(r->ctx, NULL, &e);
        return;
    }
    if (!hv_partition_stopping(vm->p)) {
        int rc = hv_partition_request_stop(vm->p);
        if (rc < 0) {
            vsd_fail(&e, VSD_FAILED, "cannot stop VM '%s': %s", vm->name, strerror(-rc));
            r->done(r->ctx, NULL, &e);
            return;
        }
        vm->stop_deadline = vsd_now() + VSD_STOP_GRACE_S;
        vsd_log("VM %s: stopping", vm->name);
    }
    vm->waiters[vm->nwaiters].done = r->done;
    vm->waiters[vm->nwaiters].ctx = r->ctx;
    vm->nwaiters++;
}

static void stop_undo(void *rec)
{
    struct run_rec *r = rec;
    r->vm->want_running = r->was_wanted;
}

int vsd_vm_stop(struct vsd *d, const char *name, vsd_vm_stop_done_fn *done, void *ctx,
                struct vsd_change *chg, struct vsd_err *e)
{
    struct vsd_vm *vm = find_vm(d, name, e);
    if (!vm)
        return -1;
    struct run_rec r = {.vm = vm, .was_wanted = vm->want_running, .done = done, .ctx = ctx};
    vm->want_running = false;
    VSD_CHANGE_OPEN(chg, stop_commit, stop_undo, r);
    return 0;
}

static void del_commit(void *rec)
{
    struct vm_rec *r = rec;
    struct vsd *d = r->d;
    struct vsd_vm *vm = r->vm;
    vsd_vm_destroy_rt(vm);
    if (vm->netns_owned)
        netns_delete(vm->netns);
    vsd_log("VM %s deleted", vm->name);
    /* Its ports are gone: mirrors that named them carry on without them. */
    for (int i = 0; i < VSD_MAX_SWITCHES; i++)
        if (d->switches[i])
            vsd_switch_reapply(d, d->switches[i]);
    vm_free(vm);
}

static void del_undo(void *rec)
{
    struct vm_rec *r = rec;
    r->d->vms[r->slot] = r->vm;
}

int vsd_vm_del(struct vsd *d, const char *name, struct vsd_change *chg, struct vsd_err *e)
{
    struct vm_rec r = {.d = d, .vm = find_vm(d, name, e)};
    if (!r.vm)
        return -1;
    if (hv_partition_state(r.vm->p) == HV_PARTITION_RUNNING)
        return vsd_fail(e, VSD_FAILED, "VM '%s' is running: stop it first", r.vm->name);
    while (d->vms[r.slot] != r.vm)
        r.slot++;
    d->vms[r.slot] = NULL;
    VSD_CHANGE_OPEN(chg, del_commit, del_undo, r);
    return 0;
}
