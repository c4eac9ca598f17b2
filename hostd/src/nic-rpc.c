/*
 * The NIC methods: nic-add, nic-set, nic-del, nic-list, and the NIC options
 * as JSON (which the state file keeps the way nic-set takes them).
 */
#include <string.h>

#include "netvsp.h"
#include "vsw-placement.h"
#include "vsw-port-provider.h"
#include "jumbo.h"
#include "control-private.h"

/* The NIC options JSON-RPC takes, all optional. */
#define NIC_OPTION_KEYS                                                                            \
    "mac", "mtu", "vlan", "trunk", "native_vlan", "mac_spoofing", "dhcp_guard", "router_guard",    \
        "max_mbps", "storm_limit", "worker", "queues", "vmq", "vmq_weight"

/* Read the options present in params on top of *o (nic-add starts from
 * defaults, nic-set from the NIC's current options). */
int vsd_nic_opts_from_json(const json_t *params, struct vsd_nic_opts *o, struct vsd_err *e)
{
    long long v;
    bool has, b;
    /* vlan 0: untagged (Hyper-V's -Untagged), leaving a VLAN or a trunk. */
    if (vsd_get_int(params, "vlan", 0, VSW_VLAN_MAX, &v, &has, e) < 0)
        return -1;
    json_t *trunk = json_object_get(params, "trunk");
    if (has && trunk)
        return vsd_fail(e, VSD_BAD_PARAMS, "give --vlan (access) or --trunk, not both");
    if (has) {
        o->access_vlan = (uint16_t)v;
        o->trunk = false;
        o->native_vlan = 0;
        memset(o->allowed, 0, sizeof(o->allowed));
    }
    if (trunk) {
        if (!json_is_array(trunk) || json_array_size(trunk) == 0)
            return vsd_fail(e, VSD_BAD_PARAMS, "trunk must list one or more VLANs (1..%d)",
                            VSW_VLAN_MAX);
        memset(o->allowed, 0, sizeof(o->allowed));
        size_t i;
        json_t *x;
        json_array_foreach(trunk, i, x)
        {
            long long id = json_is_integer(x) ? json_integer_value(x) : -1;
            if (id < 1 || id > VSW_VLAN_MAX)
                return vsd_fail(e, VSD_BAD_PARAMS, "trunk VLAN %lld is out of range (1..%d)", id,
                                VSW_VLAN_MAX);
            o->allowed[id / 64] |= 1ull << (id % 64);
        }
        o->trunk = true;
        o->access_vlan = 0;
    }
    if (vsd_get_int(params, "native_vlan", 0, VSW_VLAN_MAX, &v, &has, e) < 0)
        return -1;
    if (has) {
        if (!o->trunk)
            return vsd_fail(e, VSD_BAD_PARAMS, "--native-vlan needs a trunk (--trunk LIST)");
        o->native_vlan = (uint16_t)v;
    }
    if (vsd_get_bool(params, "mac_spoofing", &b, &has, e) < 0)
        return -1;
    if (has)
        o->mac_spoofing = b;
    if (vsd_get_bool(params, "dhcp_guard", &b, &has, e) < 0)
        return -1;
    if (has)
        o->dhcp_guard = b;
    if (vsd_get_bool(params, "router_guard", &b, &has, e) < 0)
        return -1;
    if (has)
        o->router_guard = b;
    if (vsd_get_int(params, "max_mbps", 0, 1000000, &v, &has, e) < 0)
        return -1;
    if (has)
        o->max_mbps = (uint32_t)v;
    if (vsd_get_int(params, "storm_limit", 0, 10000000, &v, &has, e) < 0)
        return -1;
    if (has)
        o->storm_pps = (uint32_t)v;
    json_t *wk = json_object_get(params, "worker");
    if (wk) {
        if (json_is_string(wk) && strcmp(json_string_value(wk), "auto") == 0) {
            o->pinned = false;
            o->worker_lcore = 0;
        } else if (json_is_integer(wk) && json_integer_value(wk) >= 0 &&
                   json_integer_value(wk) < VSD_MAX_LCORE) {
            o->pinned = true;
            o->worker_lcore = (uint16_t)json_integer_value(wk);
        } else {
            return vsd_fail(e, VSD_BAD_PARAMS, "worker must be \"auto\" or an lcore 0..%d",
                            VSD_MAX_LCORE - 1);
        }
    }
    json_t *qs = json_object_get(params, "queues");
    if (qs) {
        if (json_is_string(qs) && strcmp(json_string_value(qs), "auto") == 0)
            o->queues = 0;
        else if (json_is_integer(qs) && json_integer_value(qs) >= 1 &&
                 json_integer_value(qs) <= NETVSP_QUEUES_MAX)
            o->queues = (uint8_t)json_integer_value(qs);
        else
            return vsd_fail(e, VSD_BAD_PARAMS, "queues must be \"auto\" or 1..%u",
                            NETVSP_QUEUES_MAX);
    }
    if (vsd_get_bool(params, "vmq", &b, &has, e) < 0)
        return -1;
    if (has)
        o->vmq_off = !b;
    if (vsd_get_int(params, "vmq_weight", 0, VSW_VMQ_WEIGHT_MAX, &v, &has, e) < 0)
        return -1;
    if (has) {
        o->vmq_weight = (uint8_t)v;
        o->vmq_weight_set = true;
    }
    if (o->pinned && vsd_nic_vmq_weight(o) == 0)
        return vsd_fail(e, VSD_BAD_PARAMS,
                        "a NIC with VMQ off (or weight 0) shares its switch's default queue and "
                        "cannot be pinned: give --worker auto, or --vmq on with a weight 1..%d",
                        VSW_VMQ_WEIGHT_MAX);
    return 0;
}

/* A pin asked for by a client names a worker that runs now (a state file's
 * may not: see struct vsd_nic_opts). */
static int check_worker(struct vsd *d, const struct vsd_nic_opts *o, struct vsd_err *e)
{
    if (!o->pinned)
        return 0;
    struct vsw_worker_stats ws[VSW_MAX_WORKERS];
    unsigned n = vsw_dp_worker_stats(d->dp, ws, VSW_MAX_WORKERS);
    char list[128] = "";
    size_t len = 0;
    for (unsigned i = 0; i < n && i < VSW_MAX_WORKERS; i++) {
        if (ws[i].lcore == o->worker_lcore)
            return 0;
        int k = snprintf(list + len, sizeof(list) - len, "%s%u", i ? ", " : "", ws[i].lcore);
        if (k > 0 && (size_t)k < sizeof(list) - len)
            len += (size_t)k;
    }
    return vsd_fail(e, VSD_BAD_PARAMS, "no switch worker runs on lcore %u (workers: lcores %s)",
                    o->worker_lcore, list);
}

static int nic_add(void *ctx, const json_t *params, struct vsd_method_call *call,
                   json_t **result, struct vsd_err *e)
{
    static const char *const keys[] = {"vm", "nic", "switch", NIC_OPTION_KEYS, NULL};
    const char *mac_s = NULL;
    long long mtu = 0;
    bool has_mtu;
    struct vsd_nic_params p = {0};
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "vm", true, &p.vm, e) < 0 ||
        vsd_get_name(params, "nic", VSD_NIC_NAME_MAX, &p.nic, e) < 0 ||
        vsd_get_str(params, "switch", true, &p.sw, e) < 0 ||
        vsd_get_str(params, "mac", false, &mac_s, e) < 0 ||
        vsd_get_int(params, "mtu", JUMBO_MTU_MIN, JUMBO_MTU_MAX, &mtu, &has_mtu, e) < 0 ||
        vsd_nic_opts_from_json(params, &p.opts, e) < 0 || check_worker(ctx, &p.opts, e) < 0)
        return -1;
    p.mtu = has_mtu ? (uint32_t)mtu : 0;
    if (mac_s) {
        if (vsd_parse_mac(mac_s, p.mac) < 0)
            return vsd_fail(e, VSD_BAD_PARAMS, "bad MAC address '%s': use xx:xx:xx:xx:xx:xx",
                            mac_s);
        if ((p.mac[0] & 1) || !(p.mac[0] | p.mac[1] | p.mac[2] | p.mac[3] | p.mac[4] | p.mac[5]))
            return vsd_fail(e, VSD_BAD_PARAMS, "MAC address %s must be unicast and not all zero",
                            mac_s);
        p.has_mac = true;
    }
    struct vsd_nic *n;
    if (vsd_nic_add(ctx, &p, &n, vsd_method_change(call), e) < 0)
        return -1;
    char m[18];
    vsd_format_mac(n->mac, m);
    *result = json_pack("{s:s}", "mac", m);
    return 0;
}

static int nic_set(void *ctx, const json_t *params, struct vsd_method_call *call,
                   json_t **result, struct vsd_err *e)
{
    static const char *const keys[] = {"vm", "nic", "switch", NIC_OPTION_KEYS, NULL};
    struct vsd_nic_set_params p = {0};
    (void)result;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "vm", true, &p.vm, e) < 0 ||
        vsd_get_str(params, "nic", true, &p.nic, e) < 0)
        return -1;
    /* The options given are applied on top of the NIC's own. */
    struct vsd_nic *n = vsd_nic_get(ctx, p.vm, p.nic, e);
    if (!n || vsd_get_str(params, "switch", false, &p.sw, e) < 0)
        return -1;
    if (json_object_get(params, "mac"))
        return vsd_fail(e, VSD_BAD_PARAMS,
                        "a NIC's MAC address cannot be changed: delete and re-add it");
    long long mtu = 0;
    if (vsd_get_int(params, "mtu", JUMBO_MTU_MIN, JUMBO_MTU_MAX, &mtu, &p.has_mtu, e) < 0)
        return -1;
    p.mtu = (uint32_t)mtu;
    struct vsd_nic_opts opts = n->opts;
    if (vsd_nic_opts_from_json(params, &opts, e) < 0)
        return -1;
    if (check_worker(ctx, &opts, e) < 0)
        return -1;
    p.opts = &opts;
    return vsd_nic_set(ctx, &p, vsd_method_change(call), e);
}

static int nic_del(void *ctx, const json_t *params, struct vsd_method_call *call,
                   json_t **result, struct vsd_err *e)
{
    static const char *const keys[] = {"vm", "nic", NULL};
    const char *vm, *nic;
    (void)result;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "vm", true, &vm, e) < 0 ||
        vsd_get_str(params, "nic", true, &nic, e) < 0)
        return -1;
    return vsd_nic_del(ctx, vm, nic, vsd_method_change(call), e);
}

json_t *vsd_nic_opts_json(const struct vsd_nic_opts *o)
{
    json_t *j = json_pack("{s:b,s:b,s:b,s:i,s:i}", "mac_spoofing", o->mac_spoofing, "dhcp_guard",
                          o->dhcp_guard, "router_guard", o->router_guard, "max_mbps",
                          (json_int_t)o->max_mbps, "storm_limit", (json_int_t)o->storm_pps);
    if (o->access_vlan)
        json_object_set_new(j, "vlan", json_integer(o->access_vlan));
    json_object_set_new(j, "worker",
                        o->pinned ? json_integer(o->worker_lcore) : json_string("auto"));
    json_object_set_new(j, "queues", o->queues ? json_integer(o->queues) : json_string("auto"));
    json_object_set_new(j, "vmq", json_boolean(!o->vmq_off));
    json_object_set_new(j, "vmq_weight",
                        json_integer(o->vmq_weight_set ? o->vmq_weight : VSW_VMQ_WEIGHT_DEFAULT));
    if (o->trunk) {
        json_t *list = json_array();
        for (int v = 1; v <= VSW_VLAN_MAX; v++)
            if (o->allowed[v / 64] & (1ull << (v % 64)))
                json_array_append_new(list, json_integer(v));
        json_object_set_new(j, "trunk", list);
        json_object_set_new(j, "native_vlan", json_integer(o->native_vlan));
    }
    return j;
}

static json_t *nic_list_json(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"vm", NULL};
    const char *vmname = NULL;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "vm", false, &vmname, e) < 0)
        return NULL;
    if (vmname && !vsd_find_vm(d, vmname)) {
        vsd_fail(e, VSD_FAILED, "no VM '%s'", vmname);
        return NULL;
    }
    json_t *arr = json_array();
    for (int i = 0; i < VSD_MAX_VMS; i++) {
        struct vsd_vm *vm = d->vms[i];
        if (!vm || (vmname && strcmp(vm->name, vmname) != 0))
            continue;
        for (int j = 0; j < vm->nnics; j++) {
            struct vsd_nic *n = vm->nics[j];
            char m[18];
            vsd_format_mac(n->mac, m);
            json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:i,s:s}", "vm", vm->name, "nic", n->name,
                                  "switch", n->sw->name, "mac", m, "mtu", (json_int_t)n->mtu,
                                  "link", vsw_port_link(netvsp_port(n->np)) ? "up" : "down");
            json_t *opts = vsd_nic_opts_json(&n->opts);
            json_object_update(o, opts);
            json_decref(opts);
            json_array_append_new(arr, o);
        }
    }
    return json_pack("{s:o}", "nics", arr);
}

static int nic_list(void *ctx, const json_t *params, struct vsd_method_call *call,
                    json_t **result, struct vsd_err *e)
{
    (void)call;
    *result = nic_list_json(ctx, params, e);
    return *result ? 0 : -1;
}

static const struct vsd_method_def nic_methods[] = {
    {"nic-add", nic_add, VSD_METHOD_CHANGES_STATE},
    {"nic-set", nic_set, VSD_METHOD_CHANGES_STATE},
    {"nic-del", nic_del, VSD_METHOD_CHANGES_STATE},
    {"nic-list", nic_list, 0},
};

int vsd_nic_methods_register(struct vsd_methods *t, struct vsd *d)
{
    return vsd_methods_register_all(t, nic_methods, sizeof(nic_methods) / sizeof(nic_methods[0]),
                                    d);
}
