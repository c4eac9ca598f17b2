/*
 * The VM methods: vm-add, vm-del, vm-start, vm-stop, vm-list. vm-stop
 * answers when the VM has stopped: its answer waits in a pending handle
 * (vsd-rpc.h) that the model's completion callback answers.
 */
#include "vmbus-server.h"
#include "control-private.h"

int vsd_vm_params_from_json(const json_t *params, struct vsd_vm_params *p, struct vsd_err *e)
{
    static const char *const keys[] = {"name", "netns", "memory_mb", "cpus", "guest_offloads", NULL};
    const char *name, *netns = NULL;
    long long mem = VSD_MEMORY_DEFAULT_MB, cpus = 1;
    bool has_mem, has_cpus, offl = true, has_offl;
    if (vsd_check_keys(params, keys, e) < 0 ||
        vsd_get_name(params, "name", VSD_NAME_MAX, &name, e) < 0 ||
        vsd_get_str(params, "netns", false, &netns, e) < 0 ||
        vsd_get_int(params, "memory_mb", 64, 65536, &mem, &has_mem, e) < 0 ||
        vsd_get_int(params, "cpus", 1, HV_PARTITION_VPS_MAX, &cpus, &has_cpus, e) < 0 ||
        vsd_get_bool(params, "guest_offloads", &offl, &has_offl, e) < 0)
        return -1;
    vsd_vm_params_init(p, name);
    p->netns = netns;
    p->memory_mb = (uint32_t)mem;
    p->cpus = (uint32_t)cpus;
    if (has_offl)
        p->guest_offloads = offl;
    return 0;
}

static int vm_add(void *ctx, const json_t *params, struct vsd_method_call *call,
                  json_t **result, struct vsd_err *e)
{
    struct vsd_vm_params p;
    (void)result;
    if (vsd_vm_params_from_json(params, &p, e) < 0)
        return -1;
    return vsd_vm_add(ctx, &p, vsd_method_change(call), e);
}

/* Methods that name only a VM: its name. */
static int vm_name(const json_t *params, const char **name, struct vsd_err *e)
{
    static const char *const keys[] = {"name", NULL};
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "name", true, name, e) < 0)
        return -1;
    return 0;
}

static int vm_del(void *ctx, const json_t *params, struct vsd_method_call *call,
                  json_t **result, struct vsd_err *e)
{
    const char *name;
    (void)result;
    if (vm_name(params, &name, e) < 0)
        return -1;
    return vsd_vm_del(ctx, name, vsd_method_change(call), e);
}

static int vm_start(void *ctx, const json_t *params, struct vsd_method_call *call,
                    json_t **result, struct vsd_err *e)
{
    const char *name;
    if (vm_name(params, &name, e) < 0 || vsd_vm_start(ctx, name, vsd_method_change(call), e) < 0)
        return -1;
    struct vsd_vm *vm = vsd_find_vm(ctx, name);
    *result = json_pack("{s:s,s:i}", "state", "running", "pid",
                        (json_int_t)hv_process_partition_pid(vm->p));
    return 0;
}

/* The model's answer to a vm-stop, passed on. */
static void vm_stopped(void *ctx, const char *state, const struct vsd_err *e)
{
    struct vsd_rpc_pending *pending = ctx;
    if (!state && !e)
        vsd_rpc_pending_drop(pending);
    else
        vsd_rpc_pending_answer(pending, state ? json_pack("{s:s}", "state", state) : NULL, e);
}

static int vm_stop(void *ctx, const json_t *params, struct vsd_method_call *call,
                   json_t **result, struct vsd_err *e)
{
    const char *name;
    (void)result;
    if (vm_name(params, &name, e) < 0)
        return -1;
    struct vsd_rpc_pending *pending = vsd_method_defer(call);
    if (!pending)
        return vsd_fail(e, VSD_FAILED, "out of memory");
    return vsd_vm_stop(ctx, name, vm_stopped, pending, vsd_method_change(call), e);
}

static json_t *vm_list_json(struct vsd *d)
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
        json_object_set_new(o, "guest_offloads", json_boolean(vm->guest_offloads));
        /* Who the worker runs as, and how it last ended ("" while it never
         * has, e.g. "killed by seccomp (SIGSYS)"). */
        json_object_set_new(o, "uid", json_integer((json_int_t)vsd_vm_uid(d, vm)));
        json_object_set_new(o, "exit", json_string(vm->exit_reason));
        json_array_append_new(arr, o);
    }
    return json_pack("{s:o}", "vms", arr);
}

static int vm_list(void *ctx, const json_t *params, struct vsd_method_call *call,
                   json_t **result, struct vsd_err *e)
{
    (void)params, (void)call, (void)e;
    *result = vm_list_json(ctx);
    return 0;
}

static const struct vsd_method_def vm_methods[] = {
    {"vm-add", vm_add, VSD_METHOD_CHANGES_STATE},
    {"vm-del", vm_del, VSD_METHOD_CHANGES_STATE},
    {"vm-start", vm_start, VSD_METHOD_CHANGES_STATE},
    {"vm-stop", vm_stop, VSD_METHOD_CHANGES_STATE | VSD_METHOD_DEFERS},
    {"vm-list", vm_list, 0},
};

int vsd_vm_methods_register(struct vsd_methods *t, struct vsd *d)
{
    return vsd_methods_register_all(t, vm_methods, sizeof(vm_methods) / sizeof(vm_methods[0]), d);
}
