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
#include "vsw-placement.h"
#include "model-private.h"

/* What JSON callers have checked already (nic-rpc.c), for callers in C. */
static int check_opts(const struct vsd_nic_opts *o, struct vsd_err *e)
{
    if (vsd_check_range(e, "vlan", o->access_vlan, 0, VSW_VLAN_MAX) < 0 ||
        vsd_check_range(e, "native_vlan", o->native_vlan, 0, VSW_VLAN_MAX) < 0 ||
        vsd_check_range(e, "max_mbps", o->max_mbps, 0, 1000000) < 0 ||
        vsd_check_range(e, "storm_limit", o->storm_pps, 0, 10000000) < 0)
        return -1;
    if (o->trunk && o->access_vlan)
        return vsd_fail(e, VSD_BAD_PARAMS, "give --vlan (access) or --trunk, not both");
    if (!o->trunk && o->native_vlan)
        return vsd_fail(e, VSD_BAD_PARAMS, "--native-vlan needs a trunk (--trunk LIST)");
    bool any = false;
    for (int v = 0; v < 64 * 64; v++) {
        if (!(o->allowed[v / 64] & (1ull << (v % 64))))
            continue;
        if (!o->trunk || v < 1 || v > VSW_VLAN_MAX)
            return vsd_fail(e, VSD_BAD_PARAMS, "trunk VLAN %d is out of range (1..%d)", v,
                            VSW_VLAN_MAX);
        any = true;
    }
    if (o->trunk && !any)
        return vsd_fail(e, VSD_BAD_PARAMS, "trunk must list one or more VLANs (1..%d)",
                        VSW_VLAN_MAX);
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

/* The channels a NIC's guest may open: its setting, or for auto the VM's
 * virtual processors, at most NETVSP_QUEUES_MAX (one channel per VP is
 * what RSS can use). */
static uint32_t nic_queues(const struct vsd_nic *n, const struct vsd_nic_opts *o)
{
    if (o->queues)
        return o->queues;
    return n->vm->cpus < NETVSP_QUEUES_MAX ? (n->vm->cpus ? n->vm->cpus : 1) : NETVSP_QUEUES_MAX;
}

/* The pin and the VMQ weight, first in apply_opts: they are what may be
 * refused (no worker on that lcore), and then nothing has changed. They
 * exclude each other when VMQ is off (vsw_port_set_vmq()): the one being
 * lifted goes first. On a NIC not attached yet they are only recorded, for
 * the attach. */
static int place(struct vsw_port *port, int pin, unsigned weight)
{
    int rc;
    if (pin == VSW_PIN_AUTO) {
        rc = vsw_port_set_pin(port, pin);
        return rc < 0 ? rc : vsw_port_set_vmq(port, weight);
    }
    rc = vsw_port_set_vmq(port, weight);
    return rc < 0 ? rc : vsw_port_set_pin(port, pin);
}

static int apply_opts(struct vsd_nic *n, const struct vsd_nic_opts *o, struct vsd_err *e)
{
    struct vsw_port *port = netvsp_port(n->np);
    int old_pin = vsw_port_pin(port);
    unsigned old_weight = vsw_port_vmq_weight(port);
    int rc = place(port, o->pinned ? (int)o->worker_lcore : VSW_PIN_AUTO, vsd_nic_vmq_weight(o));
    if (rc < 0)
        place(port, old_pin, old_weight);
    if (rc == -ENOENT)
        return vsd_fail(e, VSD_BAD_PARAMS, "no switch worker runs on lcore %u", o->worker_lcore);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "cannot move the NIC to its new worker: %s",
                        strerror(-rc));
    struct vsw_port_policy p;
    opts_to_policy(n, o, &p);
    rc = vsw_port_set_policy(port, &p);
    if (rc < 0) {
        place(port, old_pin, old_weight);
        return vsd_fail(e, VSD_FAILED, "cannot apply the NIC's options: %s", strerror(-rc));
    }
    /* Cannot fail: 1..8 either way. */
    netvsp_set_queues(n->np, nic_queues(n, o));
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
        .queues = nic_queues(n, &n->opts),
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
    if (vsw_port_pin_missing(netvsp_port(n->np)))
        vsd_log("NIC %s is pinned to lcore %u, where no switch worker runs: placed by load on "
                "lcore %u (the pin is kept; nic-set --worker changes it)",
                port, n->opts.worker_lcore, vsw_port_worker_lcore(netvsp_port(n->np)));
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

struct vsd_nic *vsd_nic_get(struct vsd *d, const char *vmname, const char *nicname,
                            struct vsd_err *e)
{
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

/* nic-add: the NIC, the last of its VM's. */
struct add_rec {
    struct vsd_nic *n;
};

static void add_commit(void *rec)
{
    struct vsd_nic *n = ((struct add_rec *)rec)->n;
    char m[18];
    vsd_format_mac(n->mac, m);
    vsd_log("NIC %s/%s added on switch %s (MAC %s, MTU %u)", n->vm->name, n->name, n->sw->name, m,
            n->mtu);
}

static void add_undo(void *rec)
{
    struct vsd_nic *n = ((struct add_rec *)rec)->n;
    n->vm->nnics--;
    vsd_nic_destroy(n);
    free(n);
}

int vsd_nic_add(struct vsd *d, const struct vsd_nic_params *p, struct vsd_nic **out,
                struct vsd_change *chg, struct vsd_err *e)
{
    if (vsd_check_name(e, "nic", p->nic, VSD_NIC_NAME_MAX, true) < 0 ||
        (p->mtu && vsd_check_range(e, "mtu", p->mtu, JUMBO_MTU_MIN, JUMBO_MTU_MAX) < 0) ||
        check_opts(&p->opts, e) < 0)
        return -1;
    struct vsd_vm *vm = vsd_find_vm(d, p->vm);
    if (!vm)
        return vsd_fail(e, VSD_FAILED, "no VM '%s'", p->vm);
    struct vsd_switch *sw = vsd_find_switch(d, p->sw);
    if (!sw)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", p->sw);
    if (vsd_find_nic(vm, p->nic))
        return vsd_fail(e, VSD_FAILED, "VM '%s' already has a NIC '%s'", p->vm, p->nic);
    if (vm->nnics == VSD_MAX_NICS)
        return vsd_fail(e, VSD_FAILED, "VM '%s' already has %d NICs, the most it can have", p->vm,
                        VSD_MAX_NICS);
    if (p->mtu > sw->mtu)
        return vsd_fail(e, VSD_BAD_PARAMS, "MTU %u is above switch %s's MTU %u", p->mtu, sw->name,
                        sw->mtu);
    uint8_t mac[6];
    if (p->has_mac) {
        memcpy(mac, p->mac, 6);
        if (!mac_usable(mac)) {
            char m[18];
            vsd_format_mac(mac, m);
            return vsd_fail(e, VSD_BAD_PARAMS, "MAC address %s must be unicast and not all zero",
                            m);
        }
    } else if (vsd_random(mac, 6) < 0) {
        return vsd_fail(e, VSD_FAILED, "cannot generate a MAC address");
    } else {
        mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02); /* locally administered unicast */
    }
    if (mac_in_use(d, mac, e) < 0)
        return -1;
    struct vsd_nic *n = calloc(1, sizeof(*n));
    if (!n)
        return vsd_fail(e, VSD_FAILED, "out of memory");
    n->vm = vm;
    snprintf(n->name, sizeof(n->name), "%s", p->nic);
    n->sw = sw;
    memcpy(n->mac, mac, 6);
    n->mtu = p->mtu ? p->mtu : sw->mtu;
    n->opts = p->opts;
    if (vsd_random(&n->instance, sizeof(n->instance)) < 0) {
        free(n);
        return vsd_fail(e, VSD_FAILED, "cannot generate a device id");
    }
    if (nic_create_rt(d, n, e) < 0) {
        free(n);
        return -1;
    }
    vm->nics[vm->nnics++] = n;
    if (out)
        *out = n;
    struct add_rec r = {.n = n};
    VSD_CHANGE_OPEN(chg, add_commit, add_undo, r);
    return 0;
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

/* nic-set: what it was, to go back to. */
struct set_rec {
    struct vsd *d;
    struct vsd_nic *n;
    bool opts_changed;
    struct vsd_nic_opts old_opts;
    struct vsd_switch *from;
    uint32_t old_mtu;
};

static void set_commit(void *rec)
{
    struct set_rec *r = rec;
    struct vsd_nic *n = r->n;
    if (n->sw != r->from)
        vsd_log("NIC %s/%s moved from switch %s to %s", n->vm->name, n->name, r->from->name,
                n->sw->name);
    if (r->opts_changed)
        vsd_log("NIC %s/%s options changed", n->vm->name, n->name);
    if (n->mtu != r->old_mtu)
        vsd_log("NIC %s/%s MTU %u (was %u)", n->vm->name, n->name, n->mtu, r->old_mtu);
}

static void set_undo(void *rec)
{
    struct set_rec *r = rec;
    struct vsd_nic *n = r->n;
    struct vsd_err ignore;
    if (n->mtu != r->old_mtu) {
        netvsp_set_mtu(n->np, r->old_mtu);
        n->mtu = r->old_mtu;
    }
    if (n->sw != r->from)
        move_nic(r->d, n, r->from, &ignore);
    if (r->opts_changed) {
        apply_opts(n, &r->old_opts, &ignore);
        n->opts = r->old_opts;
    }
}

int vsd_nic_set(struct vsd *d, const struct vsd_nic_set_params *p, struct vsd_change *chg,
                struct vsd_err *e)
{
    struct vsd_nic *n = vsd_nic_get(d, p->vm, p->nic, e);
    if (!n)
        return -1;
    if ((p->has_mtu && vsd_check_range(e, "mtu", p->mtu, JUMBO_MTU_MIN, JUMBO_MTU_MAX) < 0) ||
        (p->opts && check_opts(p->opts, e) < 0))
        return -1;
    uint32_t mtu = p->has_mtu ? p->mtu : n->mtu;
    struct vsd_nic_opts opts = p->opts ? *p->opts : n->opts;
    struct vsd_switch *to = n->sw;
    if (p->sw && !(to = vsd_find_switch(d, p->sw)))
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", p->sw);
    if (mtu > to->mtu)
        return vsd_fail(e, p->has_mtu ? VSD_BAD_PARAMS : VSD_FAILED,
                        "the NIC's MTU %u would be above switch %s's MTU %u", mtu, to->name,
                        to->mtu);
    struct set_rec r = {
        .d = d,
        .n = n,
        .opts_changed = memcmp(&opts, &n->opts, sizeof(opts)) != 0,
        .old_opts = n->opts,
        .from = n->sw,
        .old_mtu = n->mtu,
    };
    bool mtu_changed = mtu != n->mtu;
    if (!r.opts_changed && to == n->sw && !mtu_changed)
        return 0;
    if (r.opts_changed) {
        if (apply_opts(n, &opts, e) < 0)
            return -1;
        n->opts = opts;
    }
    if (to != r.from && move_nic(d, n, to, e) < 0)
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
    VSD_CHANGE_OPEN(chg, set_commit, set_undo, r);
    return 0;
undo:
    set_undo(&r);
    return -1;
}

/* nic-del: where the NIC was in its VM's list. */
struct del_rec {
    struct vsd *d;
    struct vsd_nic *n;
    int idx;
};

static void del_commit(void *rec)
{
    struct del_rec *r = rec;
    struct vsd_nic *n = r->n;
    struct vsd_switch *sw = n->sw;
    vsd_nic_destroy(n);
    vsd_switch_reapply(r->d, sw);
    vsd_log("NIC %s/%s deleted", n->vm->name, n->name);
    free(n);
}

static void del_undo(void *rec)
{
    struct del_rec *r = rec;
    struct vsd_vm *vm = r->n->vm;
    memmove(&vm->nics[r->idx + 1], &vm->nics[r->idx],
            sizeof(vm->nics[0]) * (size_t)(vm->nnics - r->idx));
    vm->nics[r->idx] = r->n;
    vm->nnics++;
}

int vsd_nic_del(struct vsd *d, const char *vmname, const char *nicname, struct vsd_change *chg,
                struct vsd_err *e)
{
    struct del_rec r = {.d = d, .n = vsd_nic_get(d, vmname, nicname, e)};
    if (!r.n)
        return -1;
    struct vsd_nic *n = r.n;
    struct vsd_vm *vm = n->vm;
    char pname[VSD_PORT_NAME_MAX + 1];
    snprintf(pname, sizeof(pname), "%s/%s", vm->name, n->name);
    const struct vsd_mirror *m = &n->sw->mirror;
    if (m->on) {
        bool involved = strcmp(m->dst, pname) == 0;
        for (int i = 0; i < m->nsrc; i++)
            involved |= strcmp(m->src[i], pname) == 0;
        if (involved)
            return vsd_fail(e, VSD_FAILED,
                            "NIC %s is part of switch %s's mirror: remove the mirror first", pname,
                            n->sw->name);
    }
    while (vm->nics[r.idx] != n)
        r.idx++;
    memmove(&vm->nics[r.idx], &vm->nics[r.idx + 1],
            sizeof(vm->nics[0]) * (size_t)(vm->nnics - r.idx - 1));
    vm->nnics--;
    VSD_CHANGE_OPEN(chg, del_commit, del_undo, r);
    return 0;
}

int vsd_nic_restore(struct vsd *d, struct vsd_vm *vm, const struct vsd_nic_saved *sv,
                    struct vsd_err *e)
{
    const char *name = sv->name;
    struct vsd_switch *sw = sv->sw ? vsd_find_switch(d, sv->sw) : NULL;
    if (!name || !vsd_name_ok(name, VSD_NIC_NAME_MAX) || vsd_find_nic(vm, name) || !sw ||
        vm->nnics == VSD_MAX_NICS || !jumbo_mtu_valid(sv->mtu))
        return vsd_fail(e, VSD_FAILED, "VM %s: NIC %s is malformed", vm->name, name ? name : "?");
    /* nic-add, nic-set and switch-set never let a NIC's MTU exceed its
     * switch's; a file that says otherwise (edited by hand) would give the
     * guest an MTU the switch drops frames of. Refused, not guessed at. */
    if (sv->mtu > sw->mtu)
        return vsd_fail(e, VSD_FAILED, "VM %s: NIC %s has MTU %u, above switch %s's MTU %u",
                        vm->name, name, sv->mtu, sw->name, sw->mtu);
    /* nic-add refuses these; a file edited by hand may not. */
    if (!mac_usable(sv->mac)) {
        char m[18];
        vsd_format_mac(sv->mac, m);
        return vsd_fail(e, VSD_FAILED,
                        "VM %s: NIC %s: MAC address %s must be unicast and not all zero",
                        vm->name, name, m);
    }
    /* Two NICs with one MAC would steal each other's frames. */
    if (mac_in_use(d, sv->mac, e) < 0) {
        char msg[sizeof(e->msg)];
        snprintf(msg, sizeof(msg), "%s", e->msg);
        return vsd_fail(e, VSD_FAILED, "VM %s: NIC %s: %s", vm->name, name, msg);
    }
    /* The instance id names the NIC's VMBus channel within the VM. */
    for (int j = 0; j < vm->nnics; j++)
        if (memcmp(&vm->nics[j]->instance, &sv->instance, sizeof(sv->instance)) == 0)
            return vsd_fail(e, VSD_FAILED, "VM %s: NICs %s and %s have the same instance id",
                            vm->name, vm->nics[j]->name, name);
    if (check_opts(&sv->opts, e) < 0)
        return -1;
    struct vsd_nic *n = calloc(1, sizeof(*n));
    if (!n)
        return vsd_fail(e, VSD_FAILED, "out of memory");
    n->vm = vm;
    snprintf(n->name, sizeof(n->name), "%s", name);
    n->sw = sw;
    memcpy(n->mac, sv->mac, 6);
    n->mtu = sv->mtu;
    n->instance = sv->instance;
    n->opts = sv->opts;
    if (nic_create_rt(d, n, e) < 0) {
        free(n);
        return -1;
    }
    vm->nics[vm->nnics++] = n;
    return 0;
}
