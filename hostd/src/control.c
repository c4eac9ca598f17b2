/*
 * vswitchd's methods in one table (vsd-methods.h), saving through the
 * state file.
 */
#include <errno.h>

#include "vswitchd.h"

static int save_state(void *ctx, struct vsd_err *e)
{
    return vsd_state_save(ctx, e);
}

static int json_or_fail(json_t *j, json_t **result)
{
    *result = j;
    return j ? 0 : -1;
}

static int m_stats(void *ctx, const json_t *p, struct vsd_method_call *call, json_t **r,
                   struct vsd_err *e)
{
    (void)call;
    return json_or_fail(vsd_stats(ctx, p, e), r);
}

static void capture_ended(void *ctx, const struct vsd_capture_result *res)
{
    if (!res)
        vsd_rpc_pending_drop(ctx);
    else
        vsd_rpc_pending_answer(ctx,
                               json_pack("{s:s,s:I,s:I}", "file", res->file, "packets",
                                         (json_int_t)res->packets, "dropped",
                                         (json_int_t)res->dropped),
                               NULL);
}

static int m_capture(void *ctx, const json_t *p, struct vsd_method_call *call, json_t **r,
                     struct vsd_err *e)
{
    (void)r;
    struct vsd_rpc_pending *pending = vsd_method_defer(call);
    if (!pending)
        return vsd_fail(e, VSD_FAILED, "out of memory");
    return vsd_capture(ctx, p, capture_ended, pending, e);
}

static const struct vsd_method_def methods[] = {
    {"capture", m_capture, VSD_METHOD_DEFERS},
    {"stats", m_stats, 0},
};

int vsd_control_create(struct vsd *d, struct vsd_methods **out)
{
    struct vsd_methods *t;
    int rc = vsd_methods_create(save_state, d, &t);
    if (rc < 0)
        return rc;
    rc = vsd_methods_register_all(t, methods, sizeof(methods) / sizeof(methods[0]), d);
    if (rc == 0)
        rc = vsd_switch_methods_register(t, d);
    if (rc == 0)
        rc = vsd_fdb_methods_register(t, d);
    if (rc == 0)
        rc = vsd_vm_methods_register(t, d);
    if (rc == 0)
        rc = vsd_nic_methods_register(t, d);
    if (rc < 0) {
        vsd_methods_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}
