/*
 * The switch methods: switch-add, switch-del, switch-set, switch-list,
 * switch-show. Parameters are read from JSON into the model's structs here;
 * the model does the rest (switch.c).
 */
#include <stdio.h>

#include "jumbo.h"
#include "netvsp.h"
#include "vsw-port-provider.h"
#include "control-private.h"

static const char *const switch_keys[] = {
    "name", "type", "uplink", "allow_management_os", "mtu", "fdb_max", "fdb_aging",
    "management_vlan", NULL};

static int parse_kind(const char *type, enum vsw_switch_kind *kind, struct vsd_err *e)
{
    if (vsw_switch_kind_parse(type, kind) < 0)
        return vsd_fail(e, VSD_BAD_PARAMS,
                        "bad switch type '%s': use private, internal or external", type);
    return 0;
}

int vsd_switch_params_from_json(const json_t *params, struct vsd_switch_params *p,
                                struct vsd_err *e)
{
    const char *name, *type, *uplink = NULL;
    long long mtu = VSD_SWITCH_MTU_DEFAULT, fdb_max = VSD_FDB_MAX_DEFAULT,
              aging = VSD_FDB_AGING_DEFAULT, mvlan = 0;
    bool has, has_mgmt, mgmt = false;
    if (vsd_check_keys(params, switch_keys, e) < 0 ||
        vsd_get_name(params, "name", VSD_NAME_MAX, &name, e) < 0 ||
        vsd_get_str(params, "type", true, &type, e) < 0 ||
        vsd_get_str(params, "uplink", false, &uplink, e) < 0 ||
        vsd_get_bool(params, "allow_management_os", &mgmt, &has_mgmt, e) < 0 ||
        vsd_get_int(params, "mtu", JUMBO_MTU_MIN, JUMBO_MTU_MAX, &mtu, &has, e) < 0 ||
        vsd_get_int(params, "fdb_max", VSD_FDB_MAX_MIN, VSD_FDB_MAX_MAX, &fdb_max, &has, e) < 0 ||
        vsd_get_int(params, "fdb_aging", VSD_FDB_AGING_MIN, VSD_FDB_AGING_MAX, &aging, &has,
                    e) < 0 ||
        vsd_get_int(params, "management_vlan", 0, VSW_VLAN_MAX, &mvlan, &has, e) < 0)
        return -1;
    enum vsw_switch_kind kind;
    if (parse_kind(type, &kind, e) < 0)
        return -1;
    vsd_switch_params_init(p, name, kind);
    p->uplink = uplink;
    p->allow_mgmt = mgmt;
    p->mtu = (uint32_t)mtu;
    p->fdb_max = (uint32_t)fdb_max;
    p->fdb_aging = (uint32_t)aging;
    p->mgmt_vlan = (uint16_t)mvlan;
    return 0;
}

static int switch_add(void *ctx, const json_t *params, struct vsd_method_call *call,
                      json_t **result, struct vsd_err *e)
{
    struct vsd_switch_params p;
    (void)result;
    if (vsd_switch_params_from_json(params, &p, e) < 0)
        return -1;
    return vsd_switch_add(ctx, &p, vsd_method_change(call), e);
}

static int switch_del(void *ctx, const json_t *params, struct vsd_method_call *call,
                      json_t **result, struct vsd_err *e)
{
    static const char *const keys[] = {"name", NULL};
    const char *name;
    (void)result;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "name", true, &name, e) < 0)
        return -1;
    return vsd_switch_del(ctx, name, vsd_method_change(call), e);
}

static int switch_set(void *ctx, const json_t *params, struct vsd_method_call *call,
                      json_t **result, struct vsd_err *e)
{
    const char *type = NULL;
    long long mtu = 0, fdb_max = 0, aging = 0, mvlan = 0;
    bool mgmt = false;
    struct vsd_switch_set_params p = {0};
    (void)result;
    if (vsd_check_keys(params, switch_keys, e) < 0 ||
        vsd_get_str(params, "name", true, &p.name, e) < 0 ||
        vsd_get_str(params, "type", false, &type, e) < 0 ||
        vsd_get_str(params, "uplink", false, &p.uplink, e) < 0 ||
        vsd_get_bool(params, "allow_management_os", &mgmt, &p.has_allow_mgmt, e) < 0 ||
        vsd_get_int(params, "mtu", JUMBO_MTU_MIN, JUMBO_MTU_MAX, &mtu, &p.has_mtu, e) < 0 ||
        vsd_get_int(params, "fdb_max", VSD_FDB_MAX_MIN, VSD_FDB_MAX_MAX, &fdb_max,
                    &p.has_fdb_max, e) < 0 ||
        vsd_get_int(params, "fdb_aging", VSD_FDB_AGING_MIN, VSD_FDB_AGING_MAX, &aging,
                    &p.has_fdb_aging, e) < 0 ||
        vsd_get_int(params, "management_vlan", 0, VSW_VLAN_MAX, &mvlan, &p.has_mgmt_vlan, e) < 0)
        return -1;
    p.has_kind = type != NULL;
    if (type && parse_kind(type, &p.kind, e) < 0)
        return -1;
    p.allow_mgmt = mgmt;
    p.mtu = (uint32_t)mtu;
    p.fdb_max = (uint32_t)fdb_max;
    p.fdb_aging = (uint32_t)aging;
    p.mgmt_vlan = (uint16_t)mvlan;
    return vsd_switch_set(ctx, &p, vsd_method_change(call), e);
}

static json_t *switch_list_json(struct vsd *d)
{
    json_t *arr = json_array();
    for (int i = 0; i < VSD_MAX_SWITCHES; i++) {
        struct vsd_switch *s = d->switches[i];
        if (!s)
            continue;
        json_t *o = json_pack("{s:s,s:s,s:i,s:i}", "name", s->name, "type",
                              vsw_switch_kind_name(s->kind), "mtu", (json_int_t)s->mtu, "ports",
                              (json_int_t)(vsd_switch_users(d, s) + (s->host != NULL) +
                                           (s->uplink_port != NULL)));
        if (s->kind == VSW_SWITCH_EXTERNAL) {
            json_object_set_new(o, "uplink", json_string(s->uplink));
            json_object_set_new(o, "uplink_state", json_string(s->uplink_port ? "up" : "down"));
        }
        if (s->host)
            json_object_set_new(o, "host_vnic", json_string(s->host_if));
        json_array_append_new(arr, o);
    }
    return json_pack("{s:o}", "switches", arr);
}

static int switch_list(void *ctx, const json_t *params, struct vsd_method_call *call,
                       json_t **result, struct vsd_err *e)
{
    (void)params, (void)call, (void)e;
    *result = switch_list_json(ctx);
    return 0;
}

json_t *vsd_mirror_json(const struct vsd_mirror *m)
{
    json_t *src = json_array();
    for (int i = 0; i < m->nsrc; i++)
        json_array_append_new(src, json_string(m->src[i]));
    return json_pack("{s:o,s:s}", "src", src, "dst", m->dst);
}

static void count_entry(void *ctx, const struct vsw_fdb_entry *ent)
{
    (void)ent;
    (*(unsigned *)ctx)++;
}

static json_t *switch_show_json(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"name", NULL};
    const char *name;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "name", true, &name, e) < 0)
        return NULL;
    struct vsd_switch *s = vsd_find_switch(d, name);
    if (!s) {
        vsd_fail(e, VSD_FAILED, "no switch '%s'", name);
        return NULL;
    }
    json_t *ports = json_array();
    if (s->uplink_port)
        json_array_append_new(ports, vsd_port_json(s, s->uplink_port, NULL));
    if (s->host)
        json_array_append_new(ports, vsd_port_json(s, s->host, NULL));
    for (int i = 0; i < VSD_MAX_VMS; i++)
        for (int j = 0; d->vms[i] && j < d->vms[i]->nnics; j++)
            if (d->vms[i]->nics[j]->sw == s)
                json_array_append_new(ports, vsd_port_json(s, netvsp_port(d->vms[i]->nics[j]->np),
                                                           d->vms[i]->nics[j]));
    unsigned entries = 0;
    vsw_fdb_dump(s->sw, count_entry, &entries);
    json_t *o = json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:I,s:o}", "name", s->name, "type",
                          vsw_switch_kind_name(s->kind), "mtu", (json_int_t)s->mtu, "fdb_max",
                          (json_int_t)s->fdb_max, "fdb_aging", (json_int_t)s->fdb_aging,
                          "fdb_entries", (json_int_t)entries, "fdb_full",
                          (json_int_t)vsw_switch_fdb_full(s->sw), "ports", ports);
    if (s->kind == VSW_SWITCH_EXTERNAL) {
        /* Flat, so that vswitch-ctl and telemetry show them as they are. */
        json_object_set_new(o, "uplink", json_string(s->uplink));
        json_object_set_new(o, "uplink_state", json_string(s->uplink_port ? "up" : "down"));
        json_object_set_new(o, "uplink_failures", json_integer((json_int_t)s->uplink_failures));
        if (!s->uplink_port) {
            json_object_set_new(o, "uplink_error", json_string(s->uplink_error));
            double in = s->uplink_retry_at - vsd_now();
            json_object_set_new(o, "uplink_retry_in_s",
                                json_integer(in > 0 ? (json_int_t)(in + 0.999) : 0));
        }
    }
    json_object_set_new(o, "allow_management_os", json_boolean(s->allow_mgmt));
    json_object_set_new(o, "management_vlan", json_integer(s->mgmt_vlan));
    if (s->host)
        json_object_set_new(o, "host_vnic", json_string(s->host_if));
    if (s->mirror.on)
        json_object_set_new(o, "mirror", vsd_mirror_json(&s->mirror));
    return o;
}

static int switch_show(void *ctx, const json_t *params, struct vsd_method_call *call,
                       json_t **result, struct vsd_err *e)
{
    (void)call;
    *result = switch_show_json(ctx, params, e);
    return *result ? 0 : -1;
}

static const struct vsd_method_def switch_methods[] = {
    {"switch-add", switch_add, VSD_METHOD_CHANGES_STATE},
    {"switch-del", switch_del, VSD_METHOD_CHANGES_STATE},
    {"switch-set", switch_set, VSD_METHOD_CHANGES_STATE},
    {"switch-list", switch_list, 0},
    {"switch-show", switch_show, 0},
};

int vsd_switch_methods_register(struct vsd_methods *t, struct vsd *d)
{
    return vsd_methods_register_all(t, switch_methods,
                                    sizeof(switch_methods) / sizeof(switch_methods[0]), d);
}
