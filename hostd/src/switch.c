/*
 * Switches: the three Hyper-V kinds and what hangs off them.
 *
 *   private   VM NICs only
 *   internal  VM NICs + a host vNIC (TAP "vs-NAME" in the root namespace)
 *   external  VM NICs + an uplink (a DPDK ethdev from devargs), and the host
 *             vNIC too if the management OS is allowed on it
 *
 * The kind, the uplink and the management-OS choice change on a live
 * switch: new ports are created first, then swapped in, then the old ones
 * go, so a failure leaves the switch as it was; VMs keep running. An
 * uplink that is missing when the state is loaded is retried (uplink.c);
 * static FDB entries and the mirror are in fdb-mirror.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jumbo.h"
#include "vsw-host.h"
#include "vsw-port-provider.h"
#include "vsw-uplink.h"
#include "model-private.h"

static void host_ifname(const char *sw, char out[16])
{
    snprintf(out, 16, "vs-%.12s", sw);
}

static int host_create(struct vsd *d, struct vsd_switch *s, struct vsw_port **out,
                       struct vsd_err *e)
{
    struct vsw_host_params hp = {
        .ifname = s->host_if,
        .mtu = s->mtu,
        .pool = vsw_dp_mempool(d->dp),
    };
    memcpy(hp.mac, s->host_mac, 6);
    int rc = vsw_host_port_create(&hp, out);
    if (rc == 0 && s->mgmt_vlan) {
        struct vsw_port_policy pol = {.access_vlan = s->mgmt_vlan};
        rc = vsw_port_set_policy(*out, &pol);
        if (rc < 0)
            vsw_port_destroy(*out);
    }
    if (rc == -EEXIST)
        return vsd_fail(e, VSD_FAILED,
                        "cannot create host vNIC %s: an interface of that name exists", s->host_if);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "cannot create host vNIC %s: %s", s->host_if,
                        strerror(-rc));
    return 0;
}

int vsd_switch_attach_new(struct vsd_switch *s, struct vsw_port *p, struct vsd_err *e)
{
    int rc = vsw_port_attach(s->sw, p);
    if (rc < 0) {
        vsw_port_destroy(p);
        return vsd_fail(e, VSD_FAILED, "cannot attach %s to switch %s: %s", vsw_port_name(p),
                        s->name, strerror(-rc));
    }
    return 0;
}

/* Which extra ports a configuration needs. */
static bool wants_host(enum vsw_switch_kind k, bool allow_mgmt)
{
    return k == VSW_SWITCH_INTERNAL || (k == VSW_SWITCH_EXTERNAL && allow_mgmt);
}

/* Bring the host vNIC and uplink of s in line with (kind, uplink,
 * allow_mgmt). All new ports exist before anything old goes; on failure
 * nothing changed. With uplink_may_wait, an uplink that cannot be attached
 * where none is attached now is no failure: the switch goes on without it,
 * configured, its attempt counted and retried (vsd_switch_tick). */
static int reshape(struct vsd *d, struct vsd_switch *s, enum vsw_switch_kind kind,
                   const char *uplink, bool allow_mgmt, bool uplink_may_wait, struct vsd_err *e)
{
    bool need_host = wants_host(kind, allow_mgmt);
    bool need_uplink = kind == VSW_SWITCH_EXTERNAL;
    bool new_uplink = need_uplink && (!s->uplink_port || strcmp(uplink, s->uplink) != 0);
    bool uplink_waits = false;
    struct vsd_err ue = {0};
    struct vsw_port *host = NULL, *up = NULL;
    if (need_host && !s->host) {
        if (host_create(d, s, &host, e) < 0 || vsd_switch_attach_new(s, host, e) < 0)
            return -1;
    }
    if (new_uplink) {
        /* DPDK device names are unique: a new uplink under the old one's
         * name (net_af_packet0,iface=a -> net_af_packet0,iface=b) can only
         * be probed once the old one is gone. Then the old one is brought
         * back if the new one fails. */
        bool same_dev = s->uplink_port && vsd_uplink_same_device(uplink, s->uplink);
        if (same_dev) {
            vsw_port_destroy(s->uplink_port);
            s->uplink_port = NULL;
        }
        bool may_wait = uplink_may_wait && !same_dev && !s->uplink_port;
        struct vsd_err *ep = may_wait ? &ue : e;
        if (vsd_uplink_create(d, s, uplink, &up, ep) < 0 || vsd_switch_attach_new(s, up, ep) < 0) {
            up = NULL;
            uplink_waits = may_wait;
        }
        if (!up && !uplink_waits) {
            if (host)
                vsw_port_destroy(host);
            struct vsd_err ignore;
            if (same_dev && (vsd_uplink_create(d, s, s->uplink, &up, &ignore) < 0 ||
                             vsd_switch_attach_new(s, up, &ignore) < 0)) {
                /* The configuration keeps it, down; the tick tries again. */
                vsd_uplink_failed(s, ignore.msg);
            } else if (same_dev) {
                s->uplink_port = up;
            }
            return -1;
        }
    }
    if (host) {
        s->host = host;
    } else if (!need_host && s->host) {
        vsw_port_destroy(s->host);
        s->host = NULL;
    }
    if (up) {
        if (s->uplink_port)
            vsw_port_destroy(s->uplink_port);
        s->uplink_port = up;
        snprintf(s->uplink, sizeof(s->uplink), "%s", uplink);
        vsd_uplink_attached(s);
    } else if (uplink_waits) {
        snprintf(s->uplink, sizeof(s->uplink), "%s", uplink);
        vsd_uplink_failed(s, ue.msg);
    } else if (!need_uplink) {
        if (s->uplink_port)
            vsw_port_destroy(s->uplink_port);
        s->uplink_port = NULL;
        vsd_uplink_forget(s);
    }
    s->kind = kind;
    s->allow_mgmt = allow_mgmt;
    vsd_switch_reapply(d, s);
    return 0;
}

static int check_kind_args(enum vsw_switch_kind kind, const char *uplink, bool has_mgmt,
                           struct vsd_err *e)
{
    if (kind == VSW_SWITCH_EXTERNAL && (!uplink || !uplink[0]))
        return vsd_fail(e, VSD_BAD_PARAMS, "an external switch needs --uplink DEVARGS");
    if (kind != VSW_SWITCH_EXTERNAL && uplink)
        return vsd_fail(e, VSD_BAD_PARAMS, "only an external switch takes an uplink");
    if (kind != VSW_SWITCH_EXTERNAL && has_mgmt)
        return vsd_fail(e, VSD_BAD_PARAMS,
                        "--allow-management-os is for external switches (an internal one always "
                        "has the host vNIC)");
    if (uplink && strlen(uplink) > VSD_UPLINK_MAX)
        return vsd_fail(e, VSD_BAD_PARAMS, "uplink devargs longer than %d characters",
                        VSD_UPLINK_MAX);
    return 0;
}

static struct vsd_switch *new_switch(struct vsd *d, const char *name, uint32_t mtu,
                                     uint32_t fdb_max, uint32_t fdb_aging, struct vsd_err *e)
{
    struct vsd_switch *s = calloc(1, sizeof(*s));
    if (!s) {
        vsd_fail(e, VSD_FAILED, "out of memory");
        return NULL;
    }
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->kind = VSW_SWITCH_PRIVATE;
    s->mtu = mtu;
    s->fdb_max = fdb_max;
    s->fdb_aging = fdb_aging;
    host_ifname(name, s->host_if);
    struct vsw_switch_params p = {
        .name = s->name,
        .kind = VSW_SWITCH_PRIVATE,
        .mtu = mtu,
        .fdb_max = fdb_max,
        .fdb_aging_s = fdb_aging,
    };
    int rc = vsw_switch_create(d->dp, &p, &s->sw);
    if (rc < 0) {
        vsd_fail(e, VSD_FAILED, "cannot create switch '%s': %s", name, strerror(-rc));
        free(s);
        return NULL;
    }
    return s;
}

static void switch_free(struct vsd_switch *s)
{
    if (s->host)
        vsw_port_destroy(s->host);
    if (s->uplink_port)
        vsw_port_destroy(s->uplink_port);
    vsw_switch_destroy(s->sw);
    free(s);
}

static int switch_slot(struct vsd *d)
{
    for (int i = 0; i < VSD_MAX_SWITCHES; i++)
        if (!d->switches[i])
            return i;
    return -1;
}

void vsd_switch_params_init(struct vsd_switch_params *p, const char *name,
                            enum vsw_switch_kind kind)
{
    *p = (struct vsd_switch_params){
        .name = name,
        .kind = kind,
        .mtu = VSD_SWITCH_MTU_DEFAULT,
        .fdb_max = VSD_FDB_MAX_DEFAULT,
        .fdb_aging = VSD_FDB_AGING_DEFAULT,
    };
}

/* What JSON callers have checked already, for callers in C. */
static int check_settings(const struct vsd_switch_params *p, struct vsd_err *e)
{
    if (vsd_check_name(e, "name", p->name, VSD_NAME_MAX, false) < 0 ||
        vsd_check_range(e, "mtu", p->mtu, JUMBO_MTU_MIN, JUMBO_MTU_MAX) < 0 ||
        vsd_check_range(e, "fdb_max", p->fdb_max, VSD_FDB_MAX_MIN, VSD_FDB_MAX_MAX) < 0 ||
        vsd_check_range(e, "fdb_aging", p->fdb_aging, VSD_FDB_AGING_MIN, VSD_FDB_AGING_MAX) < 0 ||
        vsd_check_range(e, "management_vlan", p->mgmt_vlan, 0, VSW_VLAN_MAX) < 0)
        return -1;
    if ((unsigned)p->kind > VSW_SWITCH_EXTERNAL)
        return vsd_fail(e, VSD_BAD_PARAMS, "bad switch type %d", (int)p->kind);
    return 0;
}

/* A new switch of p's kind with its ports, in a free slot; *slot_out. */
static struct vsd_switch *switch_create(struct vsd *d, const struct vsd_switch_params *p,
                                        int *slot_out, struct vsd_err *e)
{
    if (check_settings(p, e) < 0 ||
        check_kind_args(p->kind, p->uplink, p->allow_mgmt, e) < 0)
        return NULL;
    if (vsd_find_switch(d, p->name)) {
        vsd_fail(e, VSD_FAILED, "switch '%s' already exists", p->name);
        return NULL;
    }
    int slot = switch_slot(d);
    if (slot < 0) {
        vsd_fail(e, VSD_FAILED, "too many switches (at most %d)", VSD_MAX_SWITCHES);
        return NULL;
    }
    char hif[16];
    host_ifname(p->name, hif);
    for (int i = 0; i < VSD_MAX_SWITCHES; i++)
        if (d->switches[i] && wants_host(p->kind, p->allow_mgmt) &&
            strcmp(d->switches[i]->host_if, hif) == 0) {
            vsd_fail(e, VSD_FAILED, "switch '%s' would share host vNIC name %s with switch '%s'",
                     p->name, hif, d->switches[i]->name);
            return NULL;
        }
    struct vsd_switch *s = new_switch(d, p->name, p->mtu, p->fdb_max, p->fdb_aging, e);
    if (!s)
        return NULL;
    if (vsd_random(s->host_mac, 6) < 0) {
        switch_free(s);
        vsd_fail(e, VSD_FAILED, "cannot generate a MAC address");
        return NULL;
    }
    s->host_mac[0] = (uint8_t)((s->host_mac[0] & 0xfc) | 0x02);
    s->mgmt_vlan = p->mgmt_vlan;
    if (reshape(d, s, p->kind, p->uplink, p->allow_mgmt, false, e) < 0) {
        switch_free(s);
        return NULL;
    }
    d->switches[slot] = s;
    *slot_out = slot;
    return s;
}

static void log_added(const struct vsd_switch *s)
{
    bool ext = s->kind == VSW_SWITCH_EXTERNAL;
    vsd_log("switch %s added (%s%s%s, MTU %u%s)", s->name, vsw_switch_kind_name(s->kind),
            ext ? ", uplink " : "", ext ? s->uplink : "", s->mtu, s->host ? ", host vNIC " : "");
}

/* switch-add and switch-del: the switch and its slot. */
struct switch_rec {
    struct vsd *d;
    struct vsd_switch *s;
    int slot;
};

static void add_commit(void *rec)
{
    struct switch_rec *r = rec;
    log_added(r->s);
}

static void add_undo(void *rec)
{
    struct switch_rec *r = rec;
    r->d->switches[r->slot] = NULL;
    switch_free(r->s);
}

int vsd_switch_add(struct vsd *d, const struct vsd_switch_params *p, struct vsd_change *chg,
                   struct vsd_err *e)
{
    struct switch_rec r = {.d = d};
    r.s = switch_create(d, p, &r.slot, e);
    if (!r.s)
        return -1;
    VSD_CHANGE_OPEN(chg, add_commit, add_undo, r);
    return 0;
}

static void del_commit(void *rec)
{
    struct switch_rec *r = rec;
    vsd_log("switch %s deleted", r->s->name);
    switch_free(r->s);
}

static void del_undo(void *rec)
{
    struct switch_rec *r = rec;
    r->d->switches[r->slot] = r->s;
}

int vsd_switch_del(struct vsd *d, const char *name, struct vsd_change *chg, struct vsd_err *e)
{
    struct switch_rec r = {.d = d, .s = vsd_find_switch(d, name)};
    if (!r.s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", name);
    int users = vsd_switch_users(d, r.s);
    if (users)
        return vsd_fail(e, VSD_FAILED,
                        "switch '%s' is used by %d NIC(s): delete or move them first", name,
                        users);
    while (d->switches[r.slot] != r.s)
        r.slot++;
    d->switches[r.slot] = NULL;
    VSD_CHANGE_OPEN(chg, del_commit, del_undo, r);
    return 0;
}

static int set_mgmt_vlan(struct vsd_switch *s, uint16_t vlan, struct vsd_err *e)
{
    struct vsw_port_policy pol = {.access_vlan = vlan};
    int rc = vsw_port_set_policy(s->host, &pol);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "cannot put the host vNIC in VLAN %u: %s", vlan,
                        strerror(-rc));
    return 0;
}

/* Every port of a switch gets the switch's MTU, except VM NICs, whose MTU
 * is their own (and must not exceed the switch's). */
static int apply_mtu(struct vsd_switch *s, uint32_t mtu, struct vsd_err *e)
{
    if (s->host && vsw_host_port_set_mtu(s->host, mtu) < 0)
        return vsd_fail(e, VSD_FAILED, "cannot set the host vNIC's MTU to %u", mtu);
    if (s->uplink_port) {
        int rc = vsw_uplink_port_set_mtu(s->uplink_port, mtu);
        if (rc < 0) {
            if (s->host)
                vsw_host_port_set_mtu(s->host, s->mtu);
            return vsd_fail(e, VSD_FAILED, "the uplink refuses MTU %u: %s", mtu, strerror(-rc));
        }
    }
    return 0;
}

/* switch-set: the configuration before it, to go back to. */
struct set_rec {
    struct vsd *d;
    struct vsd_switch *s;
    bool shape;
    enum vsw_switch_kind kind;
    char uplink[VSD_UPLINK_MAX + 1];
    bool allow_mgmt;
    uint32_t mtu, fdb_max, fdb_aging;
    uint16_t mgmt_vlan;
};

static void set_commit(void *rec)
{
    struct set_rec *r = rec;
    struct vsd_switch *s = r->s;
    vsd_log("switch %s: now %s, MTU %u, FDB %u entries / %u s%s%s", s->name,
            vsw_switch_kind_name(s->kind), s->mtu, s->fdb_max, s->fdb_aging,
            s->uplink_port ? ", uplink " : "", s->uplink_port ? s->uplink : "");
}

static void set_undo(void *rec)
{
    struct set_rec *r = rec;
    struct vsd *d = r->d;
    struct vsd_switch *s = r->s;
    struct vsd_err ignore;
    if (r->shape)
        reshape(d, s, r->kind, r->kind == VSW_SWITCH_EXTERNAL ? r->uplink : NULL, r->allow_mgmt,
                true, &ignore);
    if (s->mtu != r->mtu) {
        apply_mtu(s, r->mtu, &ignore);
        s->mtu = r->mtu;
    }
    if (s->mgmt_vlan != r->mgmt_vlan) {
        if (s->host)
            set_mgmt_vlan(s, r->mgmt_vlan, &ignore);
        s->mgmt_vlan = r->mgmt_vlan;
    }
    if (s->fdb_max != r->fdb_max || s->fdb_aging != r->fdb_aging) {
        vsw_switch_set_fdb(s->sw, r->fdb_max, r->fdb_aging);
        s->fdb_max = r->fdb_max;
        s->fdb_aging = r->fdb_aging;
        vsd_switch_reapply(d, s);
    }
}

int vsd_switch_set(struct vsd *d, const struct vsd_switch_set_params *p, struct vsd_change *chg,
                   struct vsd_err *e)
{
    struct vsd_switch *s = vsd_find_switch(d, p->name);
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", p->name);
    if (!p->has_kind && !p->uplink && !p->has_allow_mgmt && !p->has_mtu && !p->has_fdb_max &&
        !p->has_fdb_aging && !p->has_mgmt_vlan)
        return vsd_fail(e, VSD_BAD_PARAMS,
                        "nothing to change: give --type, --uplink, --allow-management-os, "
                        "--management-vlan, --mtu, --fdb-max or --fdb-aging");
    if ((p->has_mtu && vsd_check_range(e, "mtu", p->mtu, JUMBO_MTU_MIN, JUMBO_MTU_MAX) < 0) ||
        (p->has_fdb_max &&
         vsd_check_range(e, "fdb_max", p->fdb_max, VSD_FDB_MAX_MIN, VSD_FDB_MAX_MAX) < 0) ||
        (p->has_fdb_aging &&
         vsd_check_range(e, "fdb_aging", p->fdb_aging, VSD_FDB_AGING_MIN, VSD_FDB_AGING_MAX) < 0) ||
        (p->has_mgmt_vlan &&
         vsd_check_range(e, "management_vlan", p->mgmt_vlan, 0, VSW_VLAN_MAX) < 0))
        return -1;
    enum vsw_switch_kind kind = p->has_kind ? p->kind : s->kind;
    if ((unsigned)kind > VSW_SWITCH_EXTERNAL)
        return vsd_fail(e, VSD_BAD_PARAMS, "bad switch type %d", (int)kind);
    const char *uplink = p->uplink;
    const char *new_uplink = uplink ? uplink : (kind == VSW_SWITCH_EXTERNAL ? s->uplink : NULL);
    bool has_mgmt = p->has_allow_mgmt, mgmt = p->has_allow_mgmt && p->allow_mgmt;
    bool new_mgmt = has_mgmt ? mgmt : (kind == VSW_SWITCH_EXTERNAL && s->allow_mgmt);
    if (check_kind_args(kind, new_uplink, has_mgmt && mgmt, e) < 0)
        return -1;
    if (p->has_mtu) {
        for (int i = 0; i < VSD_MAX_VMS; i++)
            for (int j = 0; d->vms[i] && j < d->vms[i]->nnics; j++)
                if (d->vms[i]->nics[j]->sw == s && d->vms[i]->nics[j]->mtu > p->mtu)
                    return vsd_fail(e, VSD_FAILED,
                                    "NIC %s/%s has MTU %u, above %u: lower it first",
                                    d->vms[i]->name, d->vms[i]->nics[j]->name,
                                    d->vms[i]->nics[j]->mtu, p->mtu);
    }

    /* The old configuration, to undo with. */
    struct set_rec r = {
        .d = d,
        .s = s,
        .kind = s->kind,
        .allow_mgmt = s->allow_mgmt,
        .mtu = s->mtu,
        .fdb_max = s->fdb_max,
        .fdb_aging = s->fdb_aging,
        .mgmt_vlan = s->mgmt_vlan,
    };
    snprintf(r.uplink, sizeof(r.uplink), "%s", s->uplink);
    /* An uplink named while the switch's own is down is tried now, and
     * refused if it cannot be attached, as at switch-add. */
    r.shape = kind != s->kind || (new_uplink && strcmp(new_uplink, s->uplink) != 0) ||
              new_mgmt != s->allow_mgmt ||
              (uplink && kind == VSW_SWITCH_EXTERNAL && !s->uplink_port);
    if (p->has_mgmt_vlan && s->host && p->mgmt_vlan != s->mgmt_vlan &&
        set_mgmt_vlan(s, p->mgmt_vlan, e) < 0)
        return -1;
    if (p->has_mgmt_vlan)
        s->mgmt_vlan = p->mgmt_vlan;
    if (p->has_mtu && p->mtu != s->mtu) {
        if (apply_mtu(s, p->mtu, e) < 0) {
            if (s->host && s->mgmt_vlan != r.mgmt_vlan)
                set_mgmt_vlan(s, r.mgmt_vlan, e);
            s->mgmt_vlan = r.mgmt_vlan;
            return -1;
        }
        s->mtu = p->mtu;
    }
    if (r.shape && reshape(d, s, kind, new_uplink, new_mgmt, !uplink, e) < 0) {
        struct vsd_err ignore;
        apply_mtu(s, r.mtu, &ignore);
        s->mtu = r.mtu;
        if (s->host && s->mgmt_vlan != r.mgmt_vlan)
            set_mgmt_vlan(s, r.mgmt_vlan, &ignore);
        s->mgmt_vlan = r.mgmt_vlan;
        return -1;
    }
    if (p->has_fdb_max || p->has_fdb_aging) {
        int rc = vsw_switch_set_fdb(s->sw, p->has_fdb_max ? p->fdb_max : 0,
                                    p->has_fdb_aging ? p->fdb_aging : 0);
        if (rc < 0) {
            vsd_fail(e, VSD_FAILED, "cannot resize the FDB: %s", strerror(-rc));
            set_undo(&r);
            return -1;
        }
        if (p->has_fdb_max)
            s->fdb_max = p->fdb_max;
        if (p->has_fdb_aging)
            s->fdb_aging = p->fdb_aging;
        if (p->has_fdb_max)
            vsd_switch_reapply(d, s);
    }
    VSD_CHANGE_OPEN(chg, set_commit, set_undo, r);
    return 0;
}

int vsd_switch_restore(struct vsd *d, const struct vsd_switch_saved *sv, struct vsd_err *e)
{
    /* Created private, then reshaped: the kind's ports need the host MAC
     * restored first. */
    struct vsd_switch_params p = sv->cfg;
    p.kind = VSW_SWITCH_PRIVATE;
    p.uplink = NULL;
    p.allow_mgmt = false;
    int slot;
    struct vsd_switch *s = switch_create(d, &p, &slot, e);
    if (!s)
        return -1;
    log_added(s);
    if (sv->has_host_mac)
        memcpy(s->host_mac, sv->host_mac, 6);
    const struct vsd_switch_params *c = &sv->cfg;
    if ((unsigned)c->kind > VSW_SWITCH_EXTERNAL)
        return vsd_fail(e, VSD_FAILED, "switch %s: bad type", s->name);
    bool ext_mgmt = c->kind == VSW_SWITCH_EXTERNAL && c->allow_mgmt;
    if (check_kind_args(c->kind, c->uplink, ext_mgmt, e) < 0 ||
        reshape(d, s, c->kind, c->uplink, c->allow_mgmt, true, e) < 0)
        return -1;
    s->nstatics = sv->nstatics < VSD_MAX_STATICS ? sv->nstatics : VSD_MAX_STATICS;
    memcpy(s->statics, sv->statics, (size_t)s->nstatics * sizeof(s->statics[0]));
    if (sv->mirror.on && (sv->mirror.nsrc < 1 || sv->mirror.nsrc > VSD_MIRROR_SRC_MAX))
        return vsd_fail(e, VSD_FAILED, "switch %s: mirror is malformed", s->name);
    s->mirror = sv->mirror;
    return 0;
}

void vsd_switch_tick(struct vsd *d)
{
    double now = vsd_now();
    for (int i = 0; i < VSD_MAX_SWITCHES; i++) {
        struct vsd_switch *s = d->switches[i];
        if (!s || s->kind != VSW_SWITCH_EXTERNAL || s->uplink_port || !s->uplink_retry_at ||
            now < s->uplink_retry_at)
            continue;
        struct vsw_port *up = NULL;
        struct vsd_err e = {0};
        if (vsd_uplink_create(d, s, s->uplink, &up, &e) < 0 ||
            vsd_switch_attach_new(s, up, &e) < 0) {
            vsd_uplink_failed(s, e.msg);
            continue;
        }
        s->uplink_port = up;
        vsd_uplink_attached(s);
        /* Static entries and the mirror may name SWITCH:uplink. */
        vsd_switch_reapply(d, s);
    }
}

void vsd_switch_free_all(struct vsd *d)
{
    while (d->captures)
        vsd_capture_finish(d, d->captures, false);
    for (int i = 0; i < VSD_MAX_SWITCHES; i++) {
        if (d->switches[i]) {
            switch_free(d->switches[i]);
            d->switches[i] = NULL;
        }
    }
}
