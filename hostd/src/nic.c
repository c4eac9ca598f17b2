/*
 * VM NICs: each is a netvsp port (a synthetic NIC offered on the VM's
 * VMBus) on a switch, with its options (VLAN mode, guards, limits) applied
 * as the port's policy. Options change live; nothing about the guest needs
 * to restart for them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netvsp.h"
#include "vmbus-server.h"
#include "vsw-port-provider.h"
#include "jumbo.h"
#include "vswitchd.h"

/* The NIC options JSON-RPC takes, all optional. */
#define NIC_OPTION_KEYS                                                                            \
    "mac", "mtu", "vlan", "trunk", "native_vlan", "mac_spoofing", "dhcp_guard", "router_guard",    \
        "max_mbps", "storm_limit"

/* Read the options present in params on top of *o (nic-add starts from
 * defaults, nic-set from the NIC's current options). */
static int parse_opts(const json_t *params, struct vsd_nic_opts *o, struct vsd_err *e)
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
    return 0;
}

static void opts_to_policy(const struct vsd_nic *n, const struct vsd_nic_opts *o,
                           struct vsw_port_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->access_vlan = o->access_vlan;
    p->trunk = o->trunk;
    p->native_vlan = o->native_vlan;
    memcpy(p->allowed, o->allowed, sizeof(p->allowed));
    p->spoof_guard = !o->mac_spoofing;
    memcpy(p->own_mac, n->mac, 6);
    p->dhcp_guard = o->dhcp_guard;
    p->router_guard = o->router_guard;
    p->max_mbps = o->max_mbps;
    p->storm_pps = o->storm_pps;
}

static int apply_opts(struct vsd_nic *n, const struct vsd_nic_opts *o, struct vsd_err *e)
{
    struct vsw_port_policy p;
    opts_to_policy(n, o, &p);
    int rc = vsw_port_set_policy(netvsp_port(n->np), &p);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "cannot apply the NIC's options: %s", strerror(-rc));
    return 0;
}

static int nic_create_rt(struct vsd *d, struct vsd_nic *n, struct vsd_err *e)
{
    char port[VSW_NAME_MAX];
    snprintf(port, sizeof(port), "%s/%s", n->vm->name, n->name);
    struct netvsp_params p = {
        .port_name = port,
        .nic_name = n->name,
        .mtu = n->mtu,
        .instance = n->instance,
        .pool = vsw_dp_mempool(d->dp),
    };
    memcpy(p.mac, n->mac, 6);
    int rc = netvsp_create(n->vm->srv, &p, &n->np);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "cannot create NIC %s: %s", port, strerror(-rc));
    if (apply_opts(n, &n->opts, e) < 0)
        goto fail;
    rc = vsw_port_attach(n->sw->sw, netvsp_port(n->np));
    if (rc < 0) {
        vsd_fail(e, VSD_FAILED, "cannot attach NIC %s to switch %s: %s", port, n->sw->name,
                 strerror(-rc));
        goto fail;
    }
    vsd_switch_reapply(d, n->sw); /* static entries and a mirror naming it */
    return 0;
fail:
    vsw_port_destroy(netvsp_port(n->np));
    n->np = NULL;
    return -1;
}

void vsd_nic_destroy(struct vsd_nic *n)
{
    if (n->np)
        vsw_port_destroy(netvsp_port(n->np));
    n->np = NULL;
}

/* A NIC's own address: unicast and not all zero. */
static bool mac_usable(const uint8_t mac[6])
{
    return !(mac[0] & 1) && (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]);
}

static int mac_in_use(struct vsd *d, const uint8_t mac[6], struct vsd_err *e)
{
    for (int i = 0; i < VSD_MAX_VMS; i++)
        for (int j = 0; d->vms[i] && j < d->vms[i]->nnics; j++)
            if (memcmp(d->vms[i]->nics[j]->mac, mac, 6) == 0) {
                char m[18];
                vsd_format_mac(mac, m);
                return vsd_fail(e, VSD_FAILED, "MAC address %s is already used by %s/%s", m,
                                d->vms[i]->name, d->vms[i]->nics[j]->name);
            }
    return 0;
}

json_t *vsd_nic_add(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"vm", "nic", "switch", NIC_OPTION_KEYS, NULL};
    const char *vmname, *nicname, *swname, *mac_s = NULL;
    long long mtu = 0;
    bool has_mtu;
    struct vsd_nic_opts opts = {0};
    if (vsd_check_keys(params, keys, e) < 0 ||
        vsd_get_str(params, "vm", true, &vmname, e) < 0 ||
        vsd_get_name(params, "nic", VSD_NIC_NAME_MAX, &nicname, e) < 0 ||
        vsd_get_str(params, "switch", true, &swname, e) < 0 ||
        vsd_get_str(params, "mac", false, &mac_s, e) < 0 ||
        vsd_get_int(params, "mtu", 68, 9000, &mtu, &has_mtu, e) < 0 ||
        parse_opts(params, &opts, e) < 0)
        return NULL;
    struct vsd_vm *vm = vsd_find_vm(d, vmname);
    if (!vm) {
        vsd_fail(e, VSD_FAILED, "no VM '%s'", vmname);
        return NULL;
    }
    struct vsd_switch *sw = vsd_find_switch(d, swname);
    if (!sw) {
        vsd_fail(e, VSD_FAILED, "no switch '%s'", swname);
        return NULL;
    }
    if (vsd_find_nic(vm, nicname)) {
        vsd_fail(e, VSD_FAILED, "VM '%s' already has a NIC '%s'", vmname, nicname);
        return NULL;
    }
    if (vm->nnics == VSD_MAX_NICS) {
        vsd_fail(e, VSD_FAILED, "VM '%s' already has %d NICs, the most it can have", vmname,
                 VSD_MAX_NICS);
        return NULL;
    }
    if (has_mtu && (uint32_t)mtu > sw->mtu) {
        vsd_fail(e, VSD_BAD_PARAMS, "MTU %lld is above switch %s's MTU %u", mtu, sw->name, sw->mtu);
        return NULL;
    }
    uint8_t mac[6];
    if (mac_s) {
        if (vsd_parse_mac(mac_s, mac) < 0) {
            vsd_fail(e, VSD_BAD_PARAMS, "bad MAC address '%s': use xx:xx:xx:xx:xx:xx", mac_s);
            return NULL;
        }
        if (!mac_usable(mac)) {
            vsd_fail(e, VSD_BAD_PARAMS, "MAC address %s must be unicast and not all zero", mac_s);
            return NULL;
        }
    } else if (vsd_random(mac, 6) < 0) {
        vsd_fail(e, VSD_FAILED, "cannot generate a MAC address");
        return NULL;
    } else {
        mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02); /* locally administered unicast */
    }
    if (mac_in_use(d, mac, e) < 0)
        return NULL;
    struct vsd_nic *n = calloc(1, sizeof(*n));
    if (!n) {
        vsd_fail(e, VSD_FAILED, "out of memory");
        return NULL;
    }
    n->vm = vm;
    snprintf(n->name, sizeof(n->name), "%s", nicname);
    n->sw = sw;
    memcpy(n->mac, mac, 6);
    n->mtu = has_mtu ? (uint32_t)mtu : sw->mtu;
    n->opts = opts;
    if (vsd_random(&n->instance, sizeof(n->instance)) < 0) {
        vsd_fail(e, VSD_FAILED, "cannot generate a device id");
        free(n);
        return NULL;
    }
    if (nic_create_rt(d, n, e) < 0) {
        free(n);
        return NULL;
    }
    vm->nics[vm->nnics++] = n;
    if (vsd_save(d, e) < 0) {
        vm->nnics--;
        vsd_nic_destroy(n);
        free(n);
        return NULL;
    }
    char m[18];
    vsd_format_mac(n->mac, m);
    vsd_log("NIC %s/%s added on switch %s (MAC %s, MTU %u)", vm->name, n->name, sw->name, m, n->mtu);
    return json_pack("{s:s}", "mac", m);
}

static struct vsd_nic *nic_param(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    const char *vmname, *nicname;
    if (vsd_get_str(params, "vm", true, &vmname, e) < 0 ||
        vsd_get_str(params, "nic", true, &nicname, e) < 0)
        return NULL;
    struct vsd_vm *vm = vsd_find_vm(d, vmname);
    if (!vm) {
        vsd_fail(e, VSD_FAILED, "no VM '%s'", vmname);
        return NULL;
    }
    struct vsd_nic *n = vsd_find_nic(vm, nicname);
    if (!n)
        vsd_fail(e, VSD_FAILED, "VM '%s' has no NIC '%s'", vmname, nicname);
    return n;
}

/* Move a NIC to another switch live: as Hyper-V does, the guest sees its
 * cable pulled and plugged back in, so it renews what it learned. */
static int move_nic(struct vsd *d, struct vsd_nic *n, struct vsd_switch *to, struct vsd_err *e)
{
    struct vsd_switch *from = n->sw;
    struct vsw_port *port = netvsp_port(n->np);
    netvsp_set_media(n->np, false);
    vsw_port_detach(port);
    int rc = vsw_port_attach(to->sw, port);
    if (rc < 0) {
        vsw_port_attach(from->sw, port);
        vsd_switch_reapply(d, from);
        netvsp_set_media(n->np, true);
        return vsd_fail(e, VSD_FAILED, "cannot move NIC to switch %s: %s", to->name, strerror(-rc));
    }
    n->sw = to;
    /* Detaching dropped the port's static entries and the mirror it was
     * in; both switches get what their configuration says back. */
    vsd_switch_reapply(d, from);
    vsd_switch_reapply(d, to);
    netvsp_set_media(n->np, true);
    return 0;
}

int vsd_nic_set(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"vm", "nic", "switch", NIC_OPTION_KEYS, NULL};
    const char *swname = NULL;
    if (vsd_check_keys(params, keys, e) < 0)
        return -1;
    struct vsd_nic *n = nic_param(d, params, e);
    if (!n || vsd_get_str(params, "switch", false, &swname, e) < 0)
        return -1;
    if (json_object_get(params, "mac"))
        return vsd_fail(e, VSD_BAD_PARAMS,
                        "a NIC's MAC address cannot be changed: delete and re-add it");
    long long mtu_ll = 0;
    bool has_mtu;
    if (vsd_get_int(params, "mtu", JUMBO_MTU_MIN, JUMBO_MTU_MAX, &mtu_ll, &has_mtu, e) < 0)
        return -1;
    uint32_t mtu = has_mtu ? (uint32_t)mtu_ll : n->mtu;
    struct vsd_nic_opts opts = n->opts;
    if (parse_opts(params, &opts, e) < 0)
        return -1;
    struct vsd_switch *to = n->sw;
    if (swname && !(to = vsd_find_switch(d, swname)))
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", swname);
    if (mtu > to->mtu)
        return vsd_fail(e, has_mtu ? VSD_BAD_PARAMS : VSD_FAILED,
                        "the NIC's MTU %u would be above switch %s's MTU %u", mtu, to->name,
                        to->mtu);
    bool opts_changed = memcmp(&opts, &n->opts, sizeof(opts)) != 0;
    bool mtu_changed = mtu != n->mtu;
    if (!opts_changed && to == n->sw && !mtu_changed)
        return 0;
    struct vsd_nic_opts old_opts = n->opts;
    struct vsd_switch *from = n->sw;
    uint32_t old_mtu = n->mtu;
    if (opts_changed) {
        if (apply_opts(n, &opts, e) < 0)
            return -1;
        n->opts = opts;
    }
    if (to != from && move_nic(d, n, to, e) < 0)
        goto undo;
    if (mtu_changed) {
        /* Live: the guest is told and starts its NIC over with it. */
        int rc = netvsp_set_mtu(n->np, mtu);
        if (rc < 0) {
            vsd_fail(e, VSD_FAILED, "cannot set MTU %u: %s", mtu, strerror(-rc));
            goto undo;
        }
        n->mtu = mtu;
    }
    if (vsd_save(d, e) < 0)
        goto undo;
    if (to != from)
        vsd_log("NIC %s/%s moved from switch %s to %s", n->vm->name, n->name, from->name, to->name);
    if (opts_changed)
        vsd_log("NIC %s/%s options changed", n->vm->name, n->name);
    if (mtu_changed)
        vsd_log("NIC %s/%s MTU %u (was %u)", n->vm->name, n->name, mtu, old_mtu);
    return 0;
undo:;
    struct vsd_err ignore;
    if (n->mtu != old_mtu) {
        netvsp_set_mtu(n->np, old_mtu);
        n->mtu = old_mtu;
    }
    if (n->sw != from)
        move_nic(d, n, from, &ignore);
    if (opts_changed) {
        apply_opts(n, &old_opts, &ignore);
        n->opts = old_opts;
    }
    return -1;
}

int vsd_nic_del(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"vm", "nic", NULL};
    if (vsd_check_keys(params, keys, e) < 0)
        return -1;
    struct vsd_nic *n = nic_param(d, params, e);
    if (!n)
        return -1;
    struct vsd_vm *vm = n->vm;
    char pname[VSD_PORT_NAME_MAX + 1];
    snprintf(pname, sizeof(pname), "%s/%s", vm->name, n->name);
    if (n->sw->mirror.on) {
        bool involved = strcmp(n->sw->mirror.dst, pname) == 0;
        for (int i = 0; i < n->sw->mirror.nsrc; i++)
            involved |= strcmp(n->sw->mirror.src[i], pname) == 0;
        if (involved)
            return vsd_fail(e, VSD_FAILED,
                            "NIC %s is part of switch %s's mirror: remove the mirror first", pname,
                            n->sw->name);
    }
    int idx = 0;
    while (vm->nics[idx] != n)
        idx++;
    memmove(&vm->nics[idx], &vm->nics[idx + 1], sizeof(vm->nics[0]) * (size_t)(vm->nnics - idx - 1));
    vm->nnics--;
    if (vsd_save(d, e) < 0) {
        memmove(&vm->nics[idx + 1], &vm->nics[idx], sizeof(vm->nics[0]) * (size_t)(vm->nnics - idx));
        vm->nics[idx] = n;
        vm->nnics++;
        return -1;
    }
    struct vsd_switch *sw = n->sw;
    vsd_nic_destroy(n);
    vsd_switch_reapply(d, sw);
    vsd_log("NIC %s deleted", pname);
    free(n);
    return 0;
}

static json_t *opts_json(const struct vsd_nic_opts *o)
{
    json_t *j = json_pack("{s:b,s:b,s:b,s:i,s:i}", "mac_spoofing", o->mac_spoofing, "dhcp_guard",
                          o->dhcp_guard, "router_guard", o->router_guard, "max_mbps",
                          (json_int_t)o->max_mbps, "storm_limit", (json_int_t)o->storm_pps);
    if (o->access_vlan)
        json_object_set_new(j, "vlan", json_integer(o->access_vlan));
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

json_t *vsd_nic_list(struct vsd *d, const json_t *params, struct vsd_err *e)
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
            json_t *opts = opts_json(&n->opts);
            json_object_update(o, opts);
            json_decref(opts);
            json_array_append_new(arr, o);
        }
    }
    return json_pack("{s:o}", "nics", arr);
}

json_t *vsd_nic_to_json(const struct vsd_nic *n)
{
    char mac[18], inst[33];
    vsd_format_mac(n->mac, mac);
    for (int i = 0; i < 16; i++)
        snprintf(inst + 2 * i, 3, "%02x", n->instance.b[i]);
    json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:s}", "name", n->name, "switch", n->sw->name, "mac",
                          mac, "mtu", (json_int_t)n->mtu, "instance", inst);
    json_t *opts = opts_json(&n->opts);
    json_object_update(o, opts);
    json_decref(opts);
    return o;
}

int vsd_nic_restore(struct vsd *d, struct vsd_vm *vm, const json_t *o, struct vsd_err *e)
{
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *swname = json_string_value(json_object_get(o, "switch"));
    const char *mac_s = json_string_value(json_object_get(o, "mac"));
    const char *inst = json_string_value(json_object_get(o, "instance"));
    json_t *mtu = json_object_get(o, "mtu");
    struct vsd_switch *sw = swname ? vsd_find_switch(d, swname) : NULL;
    struct vsd_nic *n = calloc(1, sizeof(*n));
    if (!n)
        return vsd_fail(e, VSD_FAILED, "out of memory");
    n->vm = vm;
    if (!name || !vsd_name_ok(name, VSD_NIC_NAME_MAX) || vsd_find_nic(vm, name) || !sw ||
        vm->nnics == VSD_MAX_NICS || !mac_s || vsd_parse_mac(mac_s, n->mac) < 0 ||
        !json_is_integer(mtu) || json_integer_value(mtu) < 68 || json_integer_value(mtu) > 9000 ||
        !inst || strlen(inst) != 32) {
        free(n);
        return vsd_fail(e, VSD_FAILED, "VM %s: NIC %s is malformed", vm->name, name ? name : "?");
    }
    /* nic-add, nic-set and switch-set never let a NIC's MTU exceed its
     * switch's; a file that says otherwise (edited by hand) would give the
     * guest an MTU the switch drops frames of. Refused, not guessed at. */
    if (json_integer_value(mtu) > sw->mtu) {
        vsd_fail(e, VSD_FAILED, "VM %s: NIC %s has MTU %lld, above switch %s's MTU %u", vm->name,
                 name, (long long)json_integer_value(mtu), sw->name, sw->mtu);
        free(n);
        return -1;
    }
    /* nic-add refuses these; a file edited by hand may not. */
    if (!mac_usable(n->mac)) {
        vsd_fail(e, VSD_FAILED, "VM %s: NIC %s: MAC address %s must be unicast and not all zero",
                 vm->name, name, mac_s);
        free(n);
        return -1;
    }
    /* Two NICs with one MAC would steal each other's frames. */
    if (mac_in_use(d, n->mac, e) < 0) {
        char msg[sizeof(e->msg)];
        snprintf(msg, sizeof(msg), "%s", e->msg);
        vsd_fail(e, VSD_FAILED, "VM %s: NIC %s: %s", vm->name, name, msg);
        free(n);
        return -1;
    }
    snprintf(n->name, sizeof(n->name), "%s", name);
    n->sw = sw;
    n->mtu = (uint32_t)json_integer_value(mtu);
    for (int i = 0; i < 16; i++) {
        unsigned v;
        if (sscanf(inst + 2 * i, "%2x", &v) != 1) {
            free(n);
            return vsd_fail(e, VSD_FAILED, "VM %s: NIC %s has a bad instance id", vm->name, name);
        }
        n->instance.b[i] = (uint8_t)v;
    }
    /* The instance id names the NIC's VMBus channel within the VM. */
    for (int j = 0; j < vm->nnics; j++)
        if (memcmp(&vm->nics[j]->instance, &n->instance, sizeof(n->instance)) == 0) {
            vsd_fail(e, VSD_FAILED, "VM %s: NICs %s and %s have the same instance id", vm->name,
                     vm->nics[j]->name, name);
            free(n);
            return -1;
        }
    /* The options are stored the way nic-set takes them. */
    json_t *p = json_deep_copy(o);
    static const char *const drop[] = {"name", "switch", "mac", "mtu", "instance"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        json_object_del(p, drop[i]);
    if (json_object_get(p, "native_vlan") && !json_object_get(p, "trunk"))
        json_object_del(p, "native_vlan");
    int rc = parse_opts(p, &n->opts, e);
    json_decref(p);
    if (rc < 0 || nic_create_rt(d, n, e) < 0) {
        free(n);
        return -1;
    }
    vm->nics[vm->nnics++] = n;
    return 0;
}
