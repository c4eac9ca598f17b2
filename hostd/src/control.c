/*
 * vswitchd's methods in one table (vsd-methods.h): each module registers
 * its own; the dispatcher saves through the state file.
 */
#include "control-private.h"

static int save_state(void *ctx, struct vsd_err *e)
{
    const struct vsd_control *c = ctx;
    return vsd_state_save(c->d, e);
}

int vsd_control_create(struct vsd_control *c, struct vsd_methods **out)
{
    struct vsd_methods *t;
    int rc = vsd_methods_create(save_state, c, &t);
    if (rc < 0)
        return rc;
    if ((rc = vsd_switch_methods_register(t, c->d)) < 0 ||
        (rc = vsd_fdb_methods_register(t, c->d)) < 0 ||
        (rc = vsd_vm_methods_register(t, c->d)) < 0 ||
        (rc = vsd_nic_methods_register(t, c->d)) < 0 ||
        (rc = vsd_port_methods_register(t, c)) < 0 ||
        (rc = vsd_worker_methods_register(t, c->d)) < 0 ||
        (rc = vsd_vmq_methods_register(t, c->d)) < 0) {
        vsd_methods_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}
