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
#include "vswitchd.h"

const char *vsd_vm_state_name(const struct vsd_vm *vm)
{
    if (vm->p && hv_partition_state(vm->p) == HV_PARTITION_RUNNING)
        return hv_partition_stopping(vm->p) ? "stopping" : "running";
    return vm->crashed ? "crashed" : "stopped";
}

/* --- namespaces ----------------------------------------------------------- */

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

/* --- VMs ------------------------------------------------------------------ */

static void vm_partition_event(void *ctx, struct hv_partition *p, enum hv_partition_state from,
                               enum hv_partition_state to);

static int vm_create_rt(struct vsd *d, struct vsd_vm *vm, struct vsd_err *e)
{
    /* The TAP broker's socket is the first descriptor after the
     * partition's own (jail.c). */
    _Static_assert(HV_CHILD_FD_SINT + 1 == 6, "--tap-broker-fd");
    const char *argv[] = {d->hv_vm_path, "--name", vm->name, "--netns",
                          vm->netns,     "--tap-broker-fd", "6", NULL};
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

void vm_destroy_rt(struct vsd_vm *vm)
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

int vsd_vm_add(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"name", "netns", "memory_mb", "cpus", NULL};
    const char *name, *netns = NULL;
    long long mem = VSD_MEMORY_DEFAULT_MB, cpus = 1;
    bool has_mem, has_cpus;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_name(params, "name", VSD_NAME_MAX, &name, e) < 0 ||
        vsd_get_str(params, "netns", false, &netns, e) < 0 ||
        vsd_get_int(params, "memory_mb", 64, 65536, &mem, &has_mem, e) < 0 ||
        vsd_get_int(params, "cpus", 1, HV_PARTITION_VPS_MAX, &cpus, &has_cpus, e) < 0)
        return -1;
    /* As Hyper-V, no more virtual processors than the host has logical
     * ones. Checked when a VM is added, not when the state file is loaded:
     * a VM saved on a larger host still comes back (its VPs are interrupt
     * targets, not threads, so it runs). */
    long host_cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (!d->loading && host_cpus > 0 && cpus > host_cpus)
        return vsd_fail(e, VSD_BAD_PARAMS,
                        "cpus %lld is more than this host's %ld CPUs (1..%ld allowed)", cpus,
                        host_cpus, host_cpus < HV_PARTITION_VPS_MAX ? host_cpus
                                                                    : (long)HV_PARTITION_VPS_MAX);
    if (netns && !vsd_name_ok(netns, VSD_NAME_MAX))
        return vsd_fail(e, VSD_BAD_PARAMS,
                        "bad namespace name '%s': use 1..%d characters of A-Z a-z 0-9 _ . -", netns,
                        VSD_NAME_MAX);
    if (vsd_find_vm(d, name))
        return vsd_fail(e, VSD_FAILED, "VM '%s' already exists", name);
    const char *ns = netns ? netns : name;
    for (int i = 0; i < VSD_MAX_VMS; i++)
        if (d->vms[i] && strcmp(d->vms[i]->netns, ns) == 0)
            return vsd_fail(e, VSD_FAILED, "namespace '%s' is already used by VM '%s'", ns,
                            d->vms[i]->name);
    int slot = -1;
    for (int i = 0; i < VSD_MAX_VMS && slot < 0; i++)
        if (!d->vms[i])
            slot = i;
    if (slot < 0)
        return vsd_fail(e, VSD_FAILED, "too many VMs (at most %d)", VSD_MAX_VMS);
    struct vsd_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return vsd_fail(e, VSD_FAILED, "out of memory");
    vm->d = d;
    snprintf(vm->name, sizeof(vm->name), "%s", name);
    snprintf(vm->netns, sizeof(vm->netns), "%s", ns);
    vm->memory_mb = (uint32_t)mem;
    vm->cpus = (uint32_t)cpus;
    if (!d->loading)
        vm->netns_owned = !netns_exists(vm->netns);
    if (vm_create_rt(d, vm, e) < 0) {
        free(vm);
        return -1;
    }
    d->vms[slot] = vm;
    if (vsd_save(d, e) < 0) {
        d->vms[slot] = NULL;
        vm_destroy_rt(vm);
        free(vm);
        return -1;
    }
    if (!d->loading)
        vsd_log("VM %s added (namespace %s, %u MiB, %u CPU%s)", vm->name, vm->netns,
                vm->memory_mb, vm->cpus, vm->cpus == 1 ? "" : "s");
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

static struct vsd_vm *vm_param(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"name", NULL};
    const char *name;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "name", true, &name, e) < 0)
        return NULL;
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

json_t *vsd_vm_start(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    struct vsd_vm *vm = vm_param(d, params, e);
    if (!vm)
        return NULL;
    if (hv_partition_state(vm->p) == HV_PARTITION_RUNNING) {
        vsd_fail(e, VSD_FAILED, "VM '%s' is already %s", vm->name, vsd_vm_state_name(vm));
        return NULL;
    }
    if (vsd_vm_start_rt(d, vm, e) < 0)
        return NULL;
    vm->want_running = true;
    if (vsd_save(d, e) < 0) {
        vm->want_running = false;
        hv_partition_stop(vm->p, 0);
        return NULL;
    }
    return json_pack("{s:s,s:i}", "state", "running", "pid",
                     (json_int_t)hv_process_partition_pid(vm->p));
}

int vsd_vm_stop(struct vsd *d, const json_t *params, vsd_vm_stop_done_fn *done, void *ctx,
                struct vsd_err *e)
{
    struct vsd_vm *vm = vm_param(d, params, e);
    if (!vm)
        return -1;
    bool was_wanted = vm->want_running;
    vm->want_running = false;
    if (vsd_save(d, e) < 0) {
        vm->want_running = was_wanted;
        return -1;
    }
    struct vsd_err se = {0};
    if (hv_partition_state(vm->p) != HV_PARTITION_RUNNING) {
        done(ctx, vsd_vm_state_name(vm), NULL);
        return 0;
    }
    if (vm->nwaiters == (int)(sizeof(vm->waiters) / sizeof(vm->waiters[0]))) {
        vsd_fail(&se, VSD_FAILED, "too many clients waiting for VM '%s' to stop", vm->name);
        done(ctx, NULL, &se);
        return 0;
    }
    if (!hv_partition_stopping(vm->p)) {
        int rc = hv_partition_request_stop(vm->p);
        if (rc < 0) {
            vsd_fail(&se, VSD_FAILED, "cannot stop VM '%s': %s", vm->name, strerror(-rc));
            done(ctx, NULL, &se);
            return 0;
        }
        vm->stop_deadline = vsd_now() + VSD_STOP_GRACE_S;
        vsd_log("VM %s: stopping", vm->name);
    }
    vm->waiters[vm->nwaiters].done = done;
    vm->waiters[vm->nwaiters].ctx = ctx;
    vm->nwaiters++;
    return 0;
}

int vsd_vm_del(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    struct vsd_vm *vm = vm_param(d, params, e);
    if (!vm)
        return -1;
    if (hv_partition_state(vm->p) == HV_PARTITION_RUNNING)
        return vsd_fail(e, VSD_FAILED, "VM '%s' is running: stop it first", vm->name);
    int slot = 0;
    while (d->vms[slot] != vm)
        slot++;
    d->vms[slot] = NULL;
    if (vsd_save(d, e) < 0) {
        d->vms[slot] = vm;
        return -1;
    }
    vm_destroy_rt(vm);
    if (vm->netns_owned)
        netns_delete(vm->netns);
    vsd_log("VM %s deleted", vm->name);
    /* Its ports are gone: mirrors that named them carry on without them. */
    for (int i = 0; i < VSD_MAX_SWITCHES; i++)
        if (d->switches[i])
            vsd_switch_reapply(d, d->switches[i]);
    for (int i = 0; i < vm->nnics; i++)
        free(vm->nics[i]);
    free(vm);
    return 0;
}

json_t *vsd_vm_list(struct vsd *d)
{
    json_t *arr = json_array();
    for (int i = 0; i < VSD_MAX_VMS; i++) {
        struct vsd_vm *vm = d->vms[i];
        if (!vm)
            continue;
        int pid = hv_process_partition_pid(vm->p);
        /* What the guest got refused and what it made the root hold back
         * from the log: an operator sees a misbehaving guest here. */
        struct hv_partition_stats ps;
        struct vmbus_server_stats ss;
        hv_partition_get_stats(vm->p, &ps);
        vmbus_server_get_stats(vm->srv, &ss);
        json_t *errs = json_object();
        for (int e = 0; e < VMBUS_SRV_ERR_COUNT; e++)
            json_object_set_new(errs, vmbus_srv_err_name((enum vmbus_srv_err)e),
                                json_integer((json_int_t)ss.errors[e]));
        uint64_t suppressed =
            ps.log_suppressed + ss.log_suppressed + hv_ratelimit_suppressed(&vm->log_rl);
        json_t *o = json_pack("{s:s,s:s,s:i,s:i,s:s,s:i,s:i,s:I,s:o}", "name", vm->name,
                              "netns", vm->netns, "memory_mb", (json_int_t)vm->memory_mb, "cpus",
                              (json_int_t)vm->cpus, "state", vsd_vm_state_name(vm), "pid",
                              (json_int_t)(pid > 0 ? pid : 0), "nics", (json_int_t)vm->nnics,
                              "log_suppressed", (json_int_t)suppressed, "vmbus_errors", errs);
        /* Who the worker runs as, and how it last ended ("" while it never
         * has, e.g. "killed by seccomp (SIGSYS)"). */
        json_object_set_new(o, "uid", json_integer((json_int_t)vsd_vm_uid(d, vm)));
        json_object_set_new(o, "exit", json_string(vm->exit_reason));
        json_array_append_new(arr, o);
    }
    return json_pack("{s:o}", "vms", arr);
}
