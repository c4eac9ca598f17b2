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
 * go, so a failure leaves the switch as it was; VMs keep running.
 *
 * An uplink is a device outside vswitchd's control (a NIC, a kernel
 * interface) that may be missing when the host starts. Loading the state
 * then brings the switch up without it, its devargs kept in the
 * configuration, and the 1 s tick tries again, 2 s after the failure and
 * doubling up to a minute, counting each failure, until the device is
 * there. An operator's switch-add or switch-set --uplink of a device that
 * does not exist is refused instead: at the command line it is a typo.
 * Static FDB entries and the port mirror are part of the configuration.
 * Captures write pcap files with libpcap.
 */
#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/openat2.h>

#include <rte_mbuf.h>

#include "jumbo-pool.h"
#include "netvsp.h"
#include "vsw-host.h"
#include "vsw-port-provider.h"
#include "vsw-uplink.h"
#include "vswitchd.h"

/* --- host vNIC and uplink ------------------------------------------------- */

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


int attach_new(struct vsd_switch *s, struct vsw_port *p, struct vsd_err *e)
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
        if (host_create(d, s, &host, e) < 0 || attach_new(s, host, e) < 0)
            return -1;
    }
    if (new_uplink) {
        /* DPDK device names are unique: a new uplink under the old one's
         * name (net_af_packet0,iface=a -> net_af_packet0,iface=b) can only
         * be probed once the old one is gone. Then the old one is brought
         * back if the new one fails. */
        bool same_dev = s->uplink_port && same_device(uplink, s->uplink);
        if (same_dev) {
            vsw_port_destroy(s->uplink_port);
            s->uplink_port = NULL;
        }
        bool may_wait = uplink_may_wait && !same_dev && !s->uplink_port;
        struct vsd_err *ep = may_wait ? &ue : e;
        if (uplink_create(d, s, uplink, &up, ep) < 0 || attach_new(s, up, ep) < 0) {
            up = NULL;
            uplink_waits = may_wait;
        }
        if (!up && !uplink_waits) {
            if (host)
                vsw_port_destroy(host);
            struct vsd_err ignore;
            if (same_dev && (uplink_create(d, s, s->uplink, &up, &ignore) < 0 ||
                             attach_new(s, up, &ignore) < 0)) {
                /* The configuration keeps it, down; the tick tries again. */
                uplink_failed(s, ignore.msg);
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
        uplink_attached(s);
    } else if (uplink_waits) {
        snprintf(s->uplink, sizeof(s->uplink), "%s", uplink);
        uplink_failed(s, ue.msg);
    } else if (!need_uplink) {
        if (s->uplink_port)
            vsw_port_destroy(s->uplink_port);
        s->uplink_port = NULL;
        uplink_forget(s);
    }
    s->kind = kind;
    s->allow_mgmt = allow_mgmt;
    vsd_switch_reapply(d, s);
    return 0;
}
/* --- add, del, set --------------------------------------------------------- */

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

static struct vsd_switch *new_switch(struct vsd *d, const char *name, enum vsw_switch_kind kind,
                                     uint32_t mtu, uint32_t fdb_max, uint32_t fdb_aging,
                                     struct vsd_err *e)
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
    (void)kind;
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

int vsd_switch_add(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"name",    "type",      "uplink",          "allow_management_os",
                                       "mtu",     "fdb_max",   "fdb_aging",       "management_vlan",
                                       NULL};
    const char *name, *type, *uplink = NULL;
    long long mtu = 1500, fdb_max = 8192, aging = 300, mvlan = 0;
    bool has, has_mgmt, mgmt = false;
    if (vsd_check_keys(params, keys, e) < 0 ||
        vsd_get_name(params, "name", VSD_NAME_MAX, &name, e) < 0 ||
        vsd_get_str(params, "type", true, &type, e) < 0 ||
        vsd_get_str(params, "uplink", false, &uplink, e) < 0 ||
        vsd_get_bool(params, "allow_management_os", &mgmt, &has_mgmt, e) < 0 ||
        vsd_get_int(params, "mtu", 68, 9000, &mtu, &has, e) < 0 ||
        vsd_get_int(params, "fdb_max", 16, 1 << 20, &fdb_max, &has, e) < 0 ||
        vsd_get_int(params, "fdb_aging", 10, 86400 * 7, &aging, &has, e) < 0 ||
        vsd_get_int(params, "management_vlan", 0, VSW_VLAN_MAX, &mvlan, &has, e) < 0)
        return -1;
    enum vsw_switch_kind kind;
    if (vsw_switch_kind_parse(type, &kind) < 0)
        return vsd_fail(e, VSD_BAD_PARAMS, "bad switch type '%s': use private, internal or external",
                        type);
    if (check_kind_args(kind, uplink, has_mgmt && mgmt, e) < 0)
        return -1;
    if (vsd_find_switch(d, name))
        return vsd_fail(e, VSD_FAILED, "switch '%s' already exists", name);
    int slot = switch_slot(d);
    if (slot < 0)
        return vsd_fail(e, VSD_FAILED, "too many switches (at most %d)", VSD_MAX_SWITCHES);
    char hif[16];
    host_ifname(name, hif);
    for (int i = 0; i < VSD_MAX_SWITCHES; i++)
        if (d->switches[i] && wants_host(kind, mgmt) && strcmp(d->switches[i]->host_if, hif) == 0)
            return vsd_fail(e, VSD_FAILED,
                            "switch '%s' would share host vNIC name %s with switch '%s'", name, hif,
                            d->switches[i]->name);
    struct vsd_switch *s =
        new_switch(d, name, kind, (uint32_t)mtu, (uint32_t)fdb_max, (uint32_t)aging, e);
    if (!s)
        return -1;
    if (vsd_random(s->host_mac, 6) < 0) {
        switch_free(s);
        return vsd_fail(e, VSD_FAILED, "cannot generate a MAC address");
    }
    s->host_mac[0] = (uint8_t)((s->host_mac[0] & 0xfc) | 0x02);
    s->mgmt_vlan = (uint16_t)mvlan;
    if (reshape(d, s, kind, uplink, mgmt, false, e) < 0) {
        switch_free(s);
        return -1;
    }
    d->switches[slot] = s;
    if (vsd_save(d, e) < 0) {
        d->switches[slot] = NULL;
        switch_free(s);
        return -1;
    }
    vsd_log("switch %s added (%s%s%s, MTU %u%s)", s->name, type, uplink ? ", uplink " : "",
            uplink ? uplink : "", s->mtu, s->host ? ", host vNIC " : "");
    return 0;
}

int vsd_switch_del(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"name", NULL};
    const char *name;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "name", true, &name, e) < 0)
        return -1;
    struct vsd_switch *s = vsd_find_switch(d, name);
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", name);
    int users = vsd_switch_users(d, s);
    if (users)
        return vsd_fail(e, VSD_FAILED, "switch '%s' is used by %d NIC(s): delete or move them first",
                        name, users);
    int slot = 0;
    while (d->switches[slot] != s)
        slot++;
    d->switches[slot] = NULL;
    if (vsd_save(d, e) < 0) {
        d->switches[slot] = s;
        return -1;
    }
    vsd_log("switch %s deleted", name);
    switch_free(s);
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

int vsd_switch_set(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"name",    "type",      "uplink",          "allow_management_os",
                                       "mtu",     "fdb_max",   "fdb_aging",       "management_vlan",
                                       NULL};
    const char *name, *type = NULL, *uplink = NULL;
    long long mtu = 0, fdb_max = 0, aging = 0, mvlan = 0;
    bool has_mtu, has_max, has_aging, has_mgmt, has_mvlan, mgmt = false;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "name", true, &name, e) < 0 ||
        vsd_get_str(params, "type", false, &type, e) < 0 ||
        vsd_get_str(params, "uplink", false, &uplink, e) < 0 ||
        vsd_get_bool(params, "allow_management_os", &mgmt, &has_mgmt, e) < 0 ||
        vsd_get_int(params, "mtu", 68, 9000, &mtu, &has_mtu, e) < 0 ||
        vsd_get_int(params, "fdb_max", 16, 1 << 20, &fdb_max, &has_max, e) < 0 ||
        vsd_get_int(params, "fdb_aging", 10, 86400 * 7, &aging, &has_aging, e) < 0 ||
        vsd_get_int(params, "management_vlan", 0, VSW_VLAN_MAX, &mvlan, &has_mvlan, e) < 0)
        return -1;
    struct vsd_switch *s = vsd_find_switch(d, name);
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", name);
    if (!type && !uplink && !has_mgmt && !has_mtu && !has_max && !has_aging && !has_mvlan)
        return vsd_fail(e, VSD_BAD_PARAMS,
                        "nothing to change: give --type, --uplink, --allow-management-os, "
                        "--management-vlan, --mtu, --fdb-max or --fdb-aging");
    enum vsw_switch_kind kind = s->kind;
    if (type && vsw_switch_kind_parse(type, &kind) < 0)
        return vsd_fail(e, VSD_BAD_PARAMS, "bad switch type '%s': use private, internal or external",
                        type);
    const char *new_uplink = uplink ? uplink : (kind == VSW_SWITCH_EXTERNAL ? s->uplink : NULL);
    bool new_mgmt = has_mgmt ? mgmt : (kind == VSW_SWITCH_EXTERNAL && s->allow_mgmt);
    if (check_kind_args(kind, new_uplink, has_mgmt && mgmt, e) < 0)
        return -1;
    if (has_mtu) {
        for (int i = 0; i < VSD_MAX_VMS; i++)
            for (int j = 0; d->vms[i] && j < d->vms[i]->nnics; j++)
                if (d->vms[i]->nics[j]->sw == s && d->vms[i]->nics[j]->mtu > (uint32_t)mtu)
                    return vsd_fail(e, VSD_FAILED,
                                    "NIC %s/%s has MTU %u, above %lld: lower it first",
                                    d->vms[i]->name, d->vms[i]->nics[j]->name,
                                    d->vms[i]->nics[j]->mtu, mtu);
    }

    /* Save the old configuration to undo with. */
    enum vsw_switch_kind old_kind = s->kind;
    char old_uplink[VSD_UPLINK_MAX + 1];
    snprintf(old_uplink, sizeof(old_uplink), "%s", s->uplink);
    bool old_mgmt = s->allow_mgmt;
    uint32_t old_mtu = s->mtu, old_max = s->fdb_max, old_aging = s->fdb_aging;
    uint16_t old_mvlan = s->mgmt_vlan;
    /* An uplink named while the switch's own is down is tried now, and
     * refused if it cannot be attached, as at switch-add. */
    bool shape = kind != s->kind || (new_uplink && strcmp(new_uplink, s->uplink) != 0) ||
                 new_mgmt != s->allow_mgmt ||
                 (uplink && kind == VSW_SWITCH_EXTERNAL && !s->uplink_port);
    if (has_mvlan && s->host && (uint16_t)mvlan != s->mgmt_vlan &&
        set_mgmt_vlan(s, (uint16_t)mvlan, e) < 0)
        return -1;
    if (has_mvlan)
        s->mgmt_vlan = (uint16_t)mvlan;
    if (has_mtu && (uint32_t)mtu != s->mtu) {
        if (apply_mtu(s, (uint32_t)mtu, e) < 0) {
            if (s->host && s->mgmt_vlan != old_mvlan)
                set_mgmt_vlan(s, old_mvlan, e);
            s->mgmt_vlan = old_mvlan;
            return -1;
        }
        s->mtu = (uint32_t)mtu;
    }
    if (shape && reshape(d, s, kind, new_uplink, new_mgmt, !uplink, e) < 0) {
        struct vsd_err ignore;
        apply_mtu(s, old_mtu, &ignore);
        s->mtu = old_mtu;
        if (s->host && s->mgmt_vlan != old_mvlan)
            set_mgmt_vlan(s, old_mvlan, &ignore);
        s->mgmt_vlan = old_mvlan;
        return -1;
    }
    if (has_max || has_aging) {
        int rc = vsw_switch_set_fdb(s->sw, has_max ? (uint32_t)fdb_max : 0,
                                    has_aging ? (uint32_t)aging : 0);
        if (rc < 0) {
            vsd_fail(e, VSD_FAILED, "cannot resize the FDB: %s", strerror(-rc));
            goto undo;
        }
        if (has_max)
            s->fdb_max = (uint32_t)fdb_max;
        if (has_aging)
            s->fdb_aging = (uint32_t)aging;
        if (has_max)
            vsd_switch_reapply(d, s);
    }
    if (vsd_save(d, e) < 0)
        goto undo;
    vsd_log("switch %s: now %s, MTU %u, FDB %u entries / %u s%s%s", s->name,
            vsw_switch_kind_name(s->kind), s->mtu, s->fdb_max, s->fdb_aging,
            s->uplink_port ? ", uplink " : "", s->uplink_port ? s->uplink : "");
    return 0;
undo:;
    struct vsd_err ignore;
    if (shape)
        reshape(d, s, old_kind, old_kind == VSW_SWITCH_EXTERNAL ? old_uplink : NULL, old_mgmt,
                true, &ignore);
    if (s->mtu != old_mtu) {
        apply_mtu(s, old_mtu, &ignore);
        s->mtu = old_mtu;
    }
    if (s->mgmt_vlan != old_mvlan) {
        if (s->host)
            set_mgmt_vlan(s, old_mvlan, &ignore);
        s->mgmt_vlan = old_mvlan;
    }
    if (s->fdb_max != old_max || s->fdb_aging != old_aging) {
        vsw_switch_set_fdb(s->sw, old_max, old_aging);
        s->fdb_max = old_max;
        s->fdb_aging = old_aging;
        vsd_switch_reapply(d, s);
    }
    return -1;
}

json_t *vsd_switch_list(struct vsd *d)
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

/* --- ports as JSON ---------------------------------------------------------- */

static json_t *drops_json(const struct vsw_port_stats *st)
{
    json_t *o = json_object();
    for (int i = 0; i < VSW_DROP_COUNT; i++)
        json_object_set_new(o, vsw_drop_name((enum vsw_drop)i),
                            json_integer((json_int_t)st->drops[i]));
    return o;
}

static void version_str(uint32_t v, char *buf, size_t len)
{
    if (v == 0)
        snprintf(buf, len, "-");
    else if (v == 0x00000002)
        snprintf(buf, len, "1");
    else if (v == 0x00030002)
        snprintf(buf, len, "2");
    else if ((v & 0xffff) == 0)
        snprintf(buf, len, "%u", v >> 16);
    else
        snprintf(buf, len, "%u.%u", v >> 16, v & 0xffff);
}

static json_t *guest_json(struct vsd_nic *n)
{
    struct netvsp_stats ns;
    netvsp_get_stats(n->np, &ns);
    json_t *errs = json_object();
    for (int i = 0; i < NETVSP_ERR_COUNT; i++)
        json_object_set_new(errs, netvsp_err_name((enum netvsp_err)i),
                            json_integer((json_int_t)ns.errors[i]));
    char nv[16], ndis[16];
    version_str(ns.nvsp_version, nv, sizeof(nv));
    if (ns.ndis_version)
        snprintf(ndis, sizeof(ndis), "%u.%u", ns.ndis_version >> 16, ns.ndis_version & 0xffff);
    else
        snprintf(ndis, sizeof(ndis), "-");
    return json_pack("{s:s,s:s,s:b,s:i,s:i,s:b,s:o,s:I,s:I,s:I,s:I,s:I,s:I}", "nvsp_version", nv,
                     "ndis_version", ndis, "connected", ns.connected, "target_vp",
                     (json_int_t)ns.target_vp, "frame_size",
                     (json_int_t)ns.frame_size, "mtu_pending", ns.mtu_pending, "errors", errs,
                     "disconnects",
                     (json_int_t)ns.disconnects, "opens", (json_int_t)ns.opens, "tx_no_buffer",
                     (json_int_t)ns.tx_no_buffer, "tx_ring_full", (json_int_t)ns.tx_ring_full,
                     "tx_filtered", (json_int_t)ns.tx_filtered, "rx_frames_too_big",
                     (json_int_t)ns.rx_frames_too_big);
}

static json_t *vlan_json(const struct vsw_port_policy *pol)
{
    if (pol->trunk) {
        json_t *list = json_array();
        for (int v = 1; v <= VSW_VLAN_MAX; v++)
            if (vsw_policy_allowed(pol, (uint16_t)v))
                json_array_append_new(list, json_integer(v));
        return json_pack("{s:s,s:o,s:i}", "mode", "trunk", "allowed", list, "native",
                         (json_int_t)pol->native_vlan);
    }
    if (pol->access_vlan)
        return json_pack("{s:s,s:i}", "mode", "access", "vlan", (json_int_t)pol->access_vlan);
    return json_pack("{s:s}", "mode", "untagged");
}

json_t *vsd_port_json(struct vsd *d, struct vsd_switch *s, struct vsw_port *port,
                      struct vsd_nic *nic)
{
    (void)d;
    struct vsw_port_stats st;
    vsw_port_get_stats(port, &st);
    struct vsw_port_policy pol;
    vsw_port_get_policy(port, &pol);
    const char *type = nic ? "vm" : vsw_is_host_port(port) ? "host" : "uplink";
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:i,s:I,s:I,s:I,s:I,s:o,s:o}", "switch", s->name,
                          "port", vsw_port_name(port), "type", type, "link",
                          vsw_port_link(port) ? "up" : "down", "mtu",
                          (json_int_t)(nic ? nic->mtu : s->mtu), "rx_packets",
                          (json_int_t)st.rx_packets, "rx_bytes", (json_int_t)st.rx_bytes,
                          "tx_packets", (json_int_t)st.tx_packets, "tx_bytes",
                          (json_int_t)st.tx_bytes, "drops", drops_json(&st), "vlan",
                          vlan_json(&pol));
    if (nic) {
        json_object_set_new(o, "vm", json_string(nic->vm->name));
        json_object_set_new(o, "nic", json_string(nic->name));
        json_object_set_new(o, "guest", guest_json(nic));
    } else if (vsw_is_uplink_port(port)) {
        struct vsw_uplink_info ui;
        vsw_uplink_port_get_info(port, &ui);
        json_object_set_new(o, "uplink",
                            json_pack("{s:s,s:s,s:i,s:b,s:i,s:I,s:I,s:I,s:I}", "devargs",
                                      s->uplink, "driver", ui.driver, "port_id",
                                      (json_int_t)ui.port_id, "carrier", ui.link_up, "speed_mbps",
                                      (json_int_t)ui.speed_mbps, "rx_missed",
                                      (json_int_t)ui.rx_missed, "rx_errors",
                                      (json_int_t)ui.rx_errors, "tx_errors",
                                      (json_int_t)ui.tx_errors, "sw_checksums",
                                      (json_int_t)ui.sw_checksums));
    } else {
        json_object_set_new(o, "ifname", json_string(vsw_host_port_ifname(port)));
    }
    return o;
}

static void count_entry(void *ctx, const struct vsw_fdb_entry *ent)
{
    (void)ent;
    (*(unsigned *)ctx)++;
}

json_t *vsd_switch_show(struct vsd *d, const json_t *params, struct vsd_err *e)
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
        json_array_append_new(ports, vsd_port_json(d, s, s->uplink_port, NULL));
    if (s->host)
        json_array_append_new(ports, vsd_port_json(d, s, s->host, NULL));
    for (int i = 0; i < VSD_MAX_VMS; i++)
        for (int j = 0; d->vms[i] && j < d->vms[i]->nnics; j++)
            if (d->vms[i]->nics[j]->sw == s)
                json_array_append_new(ports, vsd_port_json(d, s, netvsp_port(d->vms[i]->nics[j]->np),
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
    if (s->mirror_on) {
        json_t *src = json_array();
        for (int i = 0; i < s->mirror_nsrc; i++)
            json_array_append_new(src, json_string(s->mirror_src[i]));
        json_object_set_new(o, "mirror", json_pack("{s:o,s:s}", "src", src, "dst", s->mirror_dst));
    }
    return o;
}

/* --- state ------------------------------------------------------------------ */

json_t *vsd_switch_to_json(const struct vsd_switch *s)
{
    char mac[18];
    vsd_format_mac(s->host_mac, mac);
    json_t *o = json_pack("{s:s,s:s,s:i,s:i,s:i,s:s,s:b}", "name", s->name, "type",
                          vsw_switch_kind_name(s->kind), "mtu", (json_int_t)s->mtu, "fdb_max",
                          (json_int_t)s->fdb_max, "fdb_aging", (json_int_t)s->fdb_aging,
                          "host_mac", mac, "allow_management_os", s->allow_mgmt);
    if (s->kind == VSW_SWITCH_EXTERNAL)
        json_object_set_new(o, "uplink", json_string(s->uplink));
    if (s->mgmt_vlan)
        json_object_set_new(o, "management_vlan", json_integer(s->mgmt_vlan));
    json_t *st = json_array();
    for (int i = 0; i < s->nstatics; i++) {
        vsd_format_mac(s->statics[i].mac, mac);
        json_array_append_new(st, json_pack("{s:s,s:i,s:s}", "mac", mac, "vlan",
                                            (json_int_t)s->statics[i].vlan, "port",
                                            s->statics[i].port));
    }
    json_object_set_new(o, "static_fdb", st);
    if (s->mirror_on) {
        json_t *src = json_array();
        for (int i = 0; i < s->mirror_nsrc; i++)
            json_array_append_new(src, json_string(s->mirror_src[i]));
        json_object_set_new(o, "mirror", json_pack("{s:o,s:s}", "src", src, "dst", s->mirror_dst));
    }
    return o;
}

int vsd_switch_restore(struct vsd *d, const json_t *o, struct vsd_err *e)
{
    /* Created private, then reshaped: the kind's ports need the host MAC
     * restored first. Keys absent from the file keep their defaults. */
    static const char *const copy[] = {"name", "mtu", "fdb_max", "fdb_aging", "management_vlan"};
    json_t *p = json_pack("{s:s}", "type", "private");
    for (size_t k = 0; p && k < sizeof(copy) / sizeof(copy[0]); k++) {
        json_t *v = json_object_get(o, copy[k]);
        if (v)
            json_object_set(p, copy[k], v);
    }
    int rc = p ? vsd_switch_add(d, p, e) : vsd_fail(e, VSD_FAILED, "out of memory");
    json_decref(p);
    if (rc < 0)
        return -1;
    struct vsd_switch *s = vsd_find_switch(d, json_string_value(json_object_get(o, "name")));
    const char *mac = json_string_value(json_object_get(o, "host_mac"));
    if (mac && vsd_parse_mac(mac, s->host_mac) < 0)
        return vsd_fail(e, VSD_FAILED, "switch %s: bad host_mac", s->name);
    enum vsw_switch_kind kind;
    const char *type = json_string_value(json_object_get(o, "type"));
    if (!type || vsw_switch_kind_parse(type, &kind) < 0)
        return vsd_fail(e, VSD_FAILED, "switch %s: bad type", s->name);
    const char *uplink = json_string_value(json_object_get(o, "uplink"));
    bool mgmt = json_is_true(json_object_get(o, "allow_management_os"));
    if (check_kind_args(kind, uplink, kind == VSW_SWITCH_EXTERNAL && mgmt, e) < 0 ||
        reshape(d, s, kind, uplink, mgmt, true, e) < 0)
        return -1;
    json_t *st = json_object_get(o, "static_fdb");
    size_t i;
    json_t *v;
    json_array_foreach(st, i, v)
    {
        if (s->nstatics == VSD_MAX_STATICS)
            break;
        struct vsd_static_entry *se = &s->statics[s->nstatics];
        const char *m = json_string_value(json_object_get(v, "mac"));
        const char *port = json_string_value(json_object_get(v, "port"));
        json_t *vl = json_object_get(v, "vlan");
        if (!m || vsd_parse_mac(m, se->mac) < 0 || !port || !json_is_integer(vl) ||
            json_integer_value(vl) < 0 || json_integer_value(vl) > VSW_VLAN_MAX)
            return vsd_fail(e, VSD_FAILED, "switch %s: static FDB entry %zu is malformed", s->name,
                            i);
        se->vlan = (uint16_t)json_integer_value(vl);
        snprintf(se->port, sizeof(se->port), "%s", port);
        s->nstatics++;
    }
    json_t *mir = json_object_get(o, "mirror");
    if (mir) {
        json_t *src = json_object_get(mir, "src");
        const char *dst = json_string_value(json_object_get(mir, "dst"));
        if (!json_is_array(src) || !dst || json_array_size(src) == 0 ||
            json_array_size(src) > VSD_MIRROR_SRC_MAX)
            return vsd_fail(e, VSD_FAILED, "switch %s: mirror is malformed", s->name);
        s->mirror_on = true;
        json_array_foreach(src, i, v)
        {
            const char *sp = json_string_value(v);
            if (!sp)
                return vsd_fail(e, VSD_FAILED, "switch %s: mirror is malformed", s->name);
            snprintf(s->mirror_src[s->mirror_nsrc++], VSD_PORT_NAME_MAX + 1, "%s", sp);
        }
        snprintf(s->mirror_dst, sizeof(s->mirror_dst), "%s", dst);
    }
    return 0;
}

void vsd_switch_free_all(struct vsd *d)
{
    while (d->captures)
        capture_finish(d, d->captures, false);
    for (int i = 0; i < VSD_MAX_SWITCHES; i++) {
        if (d->switches[i]) {
            switch_free(d->switches[i]);
            d->switches[i] = NULL;
        }
    }
}
