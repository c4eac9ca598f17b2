/*
 * The methods of a switch's forwarding table and mirror: fdb-add, fdb-del,
 * fdb-flush, fdb-show, mirror-add, mirror-del (fdb-mirror.c does them).
 */
#include <string.h>

#include "vsw-port-provider.h"
#include "control-private.h"

/* The MAC as given (quoted back as given when it is refused) and a VLAN. */
static int parse_mac_vlan(const json_t *params, uint8_t mac[6], uint16_t *vlan, struct vsd_err *e)
{
    const char *mac_s;
    long long v = 0;
    bool has;
    if (vsd_get_str(params, "mac", true, &mac_s, e) < 0 ||
        vsd_get_int(params, "vlan", 0, VSW_VLAN_MAX, &v, &has, e) < 0)
        return -1;
    if (vsd_parse_mac(mac_s, mac) < 0 || (mac[0] & 1) ||
        !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
        return vsd_fail(e, VSD_BAD_PARAMS, "bad MAC address '%s': a unicast xx:xx:xx:xx:xx:xx",
                        mac_s);
    *vlan = (uint16_t)v;
    return 0;
}

static int fdb_add(void *ctx, const json_t *params, struct vsd_method_call *call,
                   json_t **result, struct vsd_err *e)
{
    static const char *const keys[] = {"switch", "mac", "port", "vlan", NULL};
    const char *swname, *pname;
    uint8_t mac[6];
    uint16_t vlan;
    (void)result;
    if (vsd_check_keys(params, keys, e) < 0 ||
        vsd_get_str(params, "switch", true, &swname, e) < 0 ||
        vsd_get_str(params, "port", true, &pname, e) < 0 ||
        parse_mac_vlan(params, mac, &vlan, e) < 0)
        return -1;
    return vsd_fdb_add(ctx, swname, mac, vlan, pname, vsd_method_change(call), e);
}

static int fdb_del(void *ctx, const json_t *params, struct vsd_method_call *call,
                   json_t **result, struct vsd_err *e)
{
    static const char *const keys[] = {"switch", "mac", "vlan", NULL};
    const char *swname;
    uint8_t mac[6];
    uint16_t vlan;
    (void)result;
    if (vsd_check_keys(params, keys, e) < 0 ||
        vsd_get_str(params, "switch", true, &swname, e) < 0 ||
        parse_mac_vlan(params, mac, &vlan, e) < 0)
        return -1;
    return vsd_fdb_del(ctx, swname, mac, vlan, vsd_method_change(call), e);
}

/* Methods that name only a switch: its name. */
static int switch_param(const json_t *params, const char **name, struct vsd_err *e)
{
    static const char *const keys[] = {"switch", NULL};
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "switch", true, name, e) < 0)
        return -1;
    return 0;
}

static int fdb_flush(void *ctx, const json_t *params, struct vsd_method_call *call,
                     json_t **result, struct vsd_err *e)
{
    const char *swname;
    (void)call, (void)result;
    if (switch_param(params, &swname, e) < 0)
        return -1;
    return vsd_fdb_flush(ctx, swname, e);
}

static void fdb_cb(void *ctx, const struct vsw_fdb_entry *ent)
{
    json_t *arr = ctx;
    char m[18];
    vsd_format_mac(ent->mac, m);
    json_array_append_new(arr, json_pack("{s:s,s:i,s:s,s:i,s:b}", "port", vsw_port_name(ent->port),
                                         "vlan", (json_int_t)ent->vlan, "mac", m, "age",
                                         (json_int_t)ent->age_s, "static", ent->is_static));
}

static json_t *fdb_show_json(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"switch", NULL};
    const char *name;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "switch", true, &name, e) < 0)
        return NULL;
    struct vsd_switch *s = vsd_find_switch(d, name);
    if (!s) {
        vsd_fail(e, VSD_FAILED, "no switch '%s'", name);
        return NULL;
    }
    json_t *arr = json_array();
    vsw_fdb_dump(s->sw, fdb_cb, arr);
    return json_pack("{s:o}", "entries", arr);
}

static int fdb_show(void *ctx, const json_t *params, struct vsd_method_call *call,
                    json_t **result, struct vsd_err *e)
{
    (void)call;
    *result = fdb_show_json(ctx, params, e);
    return *result ? 0 : -1;
}

static int mirror_add(void *ctx, const json_t *params, struct vsd_method_call *call,
                      json_t **result, struct vsd_err *e)
{
    static const char *const keys[] = {"switch", "src", "dst", NULL};
    const char *swname, *dst;
    (void)result;
    if (vsd_check_keys(params, keys, e) < 0 ||
        vsd_get_str(params, "switch", true, &swname, e) < 0 ||
        vsd_get_str(params, "dst", true, &dst, e) < 0)
        return -1;
    json_t *src = json_object_get(params, "src");
    if (!json_is_array(src) || json_array_size(src) == 0 ||
        json_array_size(src) > VSD_MIRROR_SRC_MAX)
        return vsd_fail(e, VSD_BAD_PARAMS, "src must list 1..%d ports", VSD_MIRROR_SRC_MAX);
    /* A source that is not a string is the model's to refuse, in turn. */
    const char *srcs[VSD_MIRROR_SRC_MAX];
    size_t i;
    json_t *v;
    json_array_foreach(src, i, v)
        srcs[i] = json_string_value(v);
    return vsd_mirror_add(ctx, swname, srcs, (int)json_array_size(src), dst,
                          vsd_method_change(call), e);
}

static int mirror_del(void *ctx, const json_t *params, struct vsd_method_call *call,
                      json_t **result, struct vsd_err *e)
{
    const char *swname;
    (void)result;
    if (switch_param(params, &swname, e) < 0)
        return -1;
    return vsd_mirror_del(ctx, swname, vsd_method_change(call), e);
}

static const struct vsd_method_def fdb_methods[] = {
    {"fdb-add", fdb_add, VSD_METHOD_CHANGES_STATE},
    {"fdb-del", fdb_del, VSD_METHOD_CHANGES_STATE},
    {"fdb-flush", fdb_flush, 0},
    {"fdb-show", fdb_show, 0},
    {"mirror-add", mirror_add, VSD_METHOD_CHANGES_STATE},
    {"mirror-del", mirror_del, VSD_METHOD_CHANGES_STATE},
};

int vsd_fdb_methods_register(struct vsd_methods *t, struct vsd *d)
{
    return vsd_methods_register_all(t, fdb_methods, sizeof(fdb_methods) / sizeof(fdb_methods[0]),
                                    d);
}
