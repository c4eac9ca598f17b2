/*
 * The host model, common part: lookups, housekeeping, teardown. Switches
 * are in switch.c (uplink.c, fdb-mirror.c), VMs in vm.c, NICs in nic.c,
 * captures in capture.c.
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
#include <sys/random.h>

#include "netvsp.h"
#include "vsw-port-provider.h"
#include "model-private.h"

int vsd_random(void *buf, size_t len)
{
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

struct vsd_switch *vsd_find_switch(struct vsd *d, const char *name)
{
    for (int i = 0; i < VSD_MAX_SWITCHES; i++)
        if (d->switches[i] && strcmp(d->switches[i]->name, name) == 0)
            return d->switches[i];
    return NULL;
}

struct vsd_vm *vsd_find_vm(struct vsd *d, const char *name)
{
    for (int i = 0; i < VSD_MAX_VMS; i++)
        if (d->vms[i] && strcmp(d->vms[i]->name, name) == 0)
            return d->vms[i];
    return NULL;
}

struct vsd_nic *vsd_find_nic(struct vsd_vm *vm, const char *name)
{
    for (int i = 0; i < vm->nnics; i++)
        if (strcmp(vm->nics[i]->name, name) == 0)
            return vm->nics[i];
    return NULL;
}

struct vsw_port *vsd_find_port(struct vsd *d, const char *name, struct vsd_switch **sw_out)
{
    const char *slash = strchr(name, '/'), *colon = strchr(name, ':');
    if (slash) {
        char vmname[VSD_NAME_MAX + 1];
        size_t n = (size_t)(slash - name);
        if (n > VSD_NAME_MAX)
            return NULL;
        memcpy(vmname, name, n);
        vmname[n] = '\0';
        struct vsd_vm *vm = vsd_find_vm(d, vmname);
        struct vsd_nic *nic = vm ? vsd_find_nic(vm, slash + 1) : NULL;
        if (!nic)
            return NULL;
        *sw_out = nic->sw;
        return netvsp_port(nic->np);
    }
    for (int i = 0; i < VSD_MAX_SWITCHES; i++) {
        struct vsd_switch *s = d->switches[i];
        if (!s)
            continue;
        if (colon && s->uplink_port && strncmp(name, s->name, (size_t)(colon - name)) == 0 &&
            s->name[colon - name] == '\0' && strcmp(colon + 1, "uplink") == 0) {
            *sw_out = s;
            return s->uplink_port;
        }
        if (!colon && s->host && strcmp(s->host_if, name) == 0) {
            *sw_out = s;
            return s->host;
        }
    }
    return NULL;
}

int vsd_switch_users(struct vsd *d, const struct vsd_switch *sw)
{
    int n = 0;
    for (int i = 0; i < VSD_MAX_VMS; i++)
        for (int j = 0; d->vms[i] && j < d->vms[i]->nnics; j++)
            n += d->vms[i]->nics[j]->sw == sw;
    return n;
}

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

void vsd_tick(struct vsd *d)
{
    vsw_dp_tick(d->dp);
    vsd_uplink_tick(d);
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
