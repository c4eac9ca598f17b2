/*
 * The host model as a whole: what follows a restore, the 1 s tick,
 * teardown. Switches are in switch.c (uplink.c, fdb-mirror.c), VMs in
 * vm.c, NICs in nic.c, captures in capture.c, lookups in lookup.c; the
 * files call one way, from here down to lookup.c.
 *
 * Every operation follows the same order: check every parameter and every
 * precondition, then apply, and record what it changed (struct
 * vsd_change) for its caller to commit once the configuration is saved, or
 * undo. Nothing in the model saves, and nothing in it knows JSON. A VM
 * exists as a partition from vm-add on (created or stopped when not
 * running); each NIC is a netvsp port, attached to its switch and offered
 * on the VM's VMBus, from nic-add on.
 */
#include <stdlib.h>
#include <string.h>

#include "vsw-placement.h"

#include "model-private.h"

void vsd_restore_done(struct vsd *d)
{
    /* Static entries and mirrors name ports that now all exist. */
    for (int k = 0; k < VSD_MAX_SWITCHES; k++)
        if (d->switches[k])
            vsd_switch_reapply(d, d->switches[k]);
    /* Everything exists: now start what was running. A VM that cannot start
     * stays configured (and is reported); the host still comes up. */
    for (int k = 0; k < VSD_MAX_VMS; k++) {
        struct vsd_vm *vm = d->vms[k];
        struct vsd_err se = {0};
        if (vm && vm->want_running && vsd_vm_start_rt(d, vm, &se) < 0)
            vsd_log("restoring VM %s: %s", vm->name, se.msg);
    }
}

static void load_sample(struct vsd *d)
{
    struct vsw_move_report r;
    int rc = vsw_dp_load_sample(d->dp, &r);
    if (rc > 0)
        vsd_log("dynamic VMQ: moved port %s from the worker on lcore %u to lcore %u (%s: busy "
                "%.0f %% and %.0f %%, estimated %.0f %% and %.0f %% after)",
                r.port, r.from_lcore, r.to_lcore,
                r.reason == VSW_RB_SPREAD ? "spread off an overloaded worker"
                                          : "pack onto fewer workers, load is low",
                r.est.from_before, r.est.to_before, r.est.from_after, r.est.to_after);
    else if (rc < 0)
        vsd_log_limited(&d->placement_rl, "dynamic VMQ: a move failed: %s", strerror(-rc));
}

void vsd_tick(struct vsd *d)
{
    load_sample(d);
    if (d->half_ticks++ % 2)
        return;
    vsw_dp_tick(d->dp);
    vsd_switch_tick(d);
    double now = vsd_now();
    for (int i = 0; i < VSD_MAX_VMS; i++) {
        struct vsd_vm *vm = d->vms[i];
        if (vm && vm->stop_deadline && now > vm->stop_deadline &&
            hv_partition_state(vm->p) == HV_PARTITION_RUNNING) {
            vsd_log_limited(&vm->log_rl, "VM %s did not stop within %d s: forcing it off",
                            vm->name, VSD_STOP_GRACE_S);
            vm->stop_deadline = 0;
            hv_partition_stop(vm->p, 0);
        }
    }
}

void vsd_shutdown(struct vsd *d)
{
    for (int i = 0; i < VSD_MAX_VMS; i++) {
        struct vsd_vm *vm = d->vms[i];
        if (!vm)
            continue;
        int n = vm->nwaiters;
        vm->nwaiters = 0;
        for (int w = 0; w < n; w++)
            vm->waiters[w].done(vm->waiters[w].ctx, NULL, NULL);
        vsd_vm_destroy_rt(vm);
        for (int j = 0; j < vm->nnics; j++)
            free(vm->nics[j]);
        free(vm);
        d->vms[i] = NULL;
    }
    vsd_switch_free_all(d);
}
