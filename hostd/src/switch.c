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

static int uplink_create(struct vsd *d, struct vsd_switch *s, const char *devargs,
                         struct vsw_port **out, struct vsd_err *e)
{
    char pname[VSD_PORT_NAME_MAX + 1];
    snprintf(pname, sizeof(pname), "%s:uplink", s->name);
    struct vsw_uplink_params up = {
        .devargs = devargs,
        .port_name = pname,
        .mtu = s->mtu,
        .pool = vsw_dp_mempool(d->dp),
    };
    /* A PMD that cannot chain gets mbufs that hold any frame, so that the
     * switch's MTU can rise to 9000 later without a new uplink. */
    if (vsw_uplink_needs_whole_frames(devargs)) {
        up.single_seg_pool = jumbo_pool(d->pools, JUMBO_POOL_WHOLE_FRAME);
        if (!up.single_seg_pool)
            return vsd_fail(e, VSD_FAILED, "uplink '%s': no memory for a pool of %u-byte mbufs",
                            devargs, jumbo_pool_seg_room(JUMBO_POOL_WHOLE_FRAME));
    }
    int rc = vsw_uplink_port_create(&up, out);
    if (rc == 0) {
        /* Like Hyper-V's external port: every VLAN crosses the uplink
         * tagged; untagged frames are the untagged network. */
        struct vsw_port_policy pol = {.trunk = true, .native_vlan = 0};
        for (uint16_t v = 1; v <= VSW_VLAN_MAX; v++)
            vsw_policy_allow(&pol, v);
        rc = vsw_port_set_policy(*out, &pol);
        if (rc < 0)
            vsw_port_destroy(*out);
    }
    if (rc == -ENODEV)
        return vsd_fail(e, VSD_FAILED, "uplink '%s': no such device (check the devargs)", devargs);
    if (rc == -EEXIST)
        return vsd_fail(e, VSD_FAILED, "uplink '%s' is already in use", devargs);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "uplink '%s': %s", devargs, strerror(-rc));
    return 0;
}

static int attach_new(struct vsd_switch *s, struct vsw_port *p, struct vsd_err *e)
{
    int rc = vsw_port_attach(s->sw, p);
    if (rc < 0) {
        vsw_port_destroy(p);
        return vsd_fail(e, VSD_FAILED, "cannot attach %s to switch %s: %s", vsw_port_name(p),
                        s->name, strerror(-rc));
    }
    return 0;
}

/* Do two devargs name the same DPDK device (the part before the first
 * comma)? */
static bool same_device(const char *a, const char *b)
{
    size_t la = strcspn(a, ","), lb = strcspn(b, ",");
    return la == lb && strncmp(a, b, la) == 0;
}

#define UPLINK_RETRY_MIN_S 2u
#define UPLINK_RETRY_MAX_S 60u

/* The configured uplink could not be attached: count it, keep why, try
 * again later. */
static void uplink_failed(struct vsd_switch *s, const char *why)
{
    s->uplink_failures++;
    s->uplink_backoff_s = !s->uplink_backoff_s ? UPLINK_RETRY_MIN_S
                          : s->uplink_backoff_s * 2 > UPLINK_RETRY_MAX_S
                              ? UPLINK_RETRY_MAX_S
                              : s->uplink_backoff_s * 2;
    s->uplink_retry_at = vsd_now() + s->uplink_backoff_s;
    /* A line when the reason changes, not one per attempt. */
    if (strcmp(s->uplink_error, why) != 0)
        vsd_log("switch %s: uplink %s is down: %s (trying again every %u..%u s)", s->name,
                s->uplink, why, UPLINK_RETRY_MIN_S, UPLINK_RETRY_MAX_S);
    snprintf(s->uplink_error, sizeof(s->uplink_error), "%s", why);
}

static void uplink_attached(struct vsd_switch *s)
{
    if (s->uplink_error[0])
        vsd_log("switch %s: uplink %s attached after %" PRIu64 " failed attempt(s)", s->name,
                s->uplink, s->uplink_failures);
    s->uplink_error[0] = '\0';
    s->uplink_retry_at = 0;
    s->uplink_backoff_s = 0;
}

/* No uplink configured any more: nothing to retry, nothing to count. */
static void uplink_forget(struct vsd_switch *s)
{
    s->uplink[0] = '\0';
    s->uplink_error[0] = '\0';
    s->uplink_retry_at = 0;
    s->uplink_backoff_s = 0;
    s->uplink_failures = 0;
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
        if (uplink_create(d, s, s->uplink, &up, &e) < 0 || attach_new(s, up, &e) < 0) {
            uplink_failed(s, e.msg);
            continue;
        }
        s->uplink_port = up;
        uplink_attached(s);
        /* Static entries and the mirror may name SWITCH:uplink. */
        vsd_switch_reapply(d, s);
    }
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

/* --- static FDB entries ---------------------------------------------------- */

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

int vsd_fdb_add(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"switch", "mac", "port", "vlan", NULL};
    const char *swname, *pname;
    uint8_t mac[6];
    uint16_t vlan;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "switch", true, &swname, e) < 0 ||
        vsd_get_str(params, "port", true, &pname, e) < 0 || parse_mac_vlan(params, mac, &vlan, e) < 0)
        return -1;
    struct vsd_switch *s = vsd_find_switch(d, swname), *ps = NULL;
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", swname);
    struct vsw_port *port = vsd_find_port(d, pname, &ps);
    if (!port || ps != s)
        return vsd_fail(e, VSD_FAILED, "no port '%s' on switch '%s'", pname, swname);
    int idx = -1;
    for (int i = 0; i < s->nstatics; i++)
        if (memcmp(s->statics[i].mac, mac, 6) == 0 && s->statics[i].vlan == vlan)
            idx = i;
    if (idx < 0 && s->nstatics == VSD_MAX_STATICS)
        return vsd_fail(e, VSD_FAILED, "switch '%s' has %d static entries, the most it can have",
                        swname, VSD_MAX_STATICS);
    int rc = vsw_fdb_add_static(s->sw, mac, vlan, port);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "cannot add the entry: %s",
                        rc == -ENOSPC ? "the FDB is full" : strerror(-rc));
    struct vsd_static_entry old;
    bool existed = idx >= 0;
    if (existed)
        old = s->statics[idx];
    else
        idx = s->nstatics++;
    memcpy(s->statics[idx].mac, mac, 6);
    s->statics[idx].vlan = vlan;
    snprintf(s->statics[idx].port, sizeof(s->statics[idx].port), "%s", pname);
    if (vsd_save(d, e) < 0) {
        vsw_fdb_del(s->sw, mac, vlan);
        if (existed) {
            s->statics[idx] = old;
            vsd_switch_reapply(d, s);
        } else {
            s->nstatics--;
        }
        return -1;
    }
    return 0;
}

int vsd_fdb_del(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"switch", "mac", "vlan", NULL};
    const char *swname;
    uint8_t mac[6];
    uint16_t vlan;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "switch", true, &swname, e) < 0 ||
        parse_mac_vlan(params, mac, &vlan, e) < 0)
        return -1;
    struct vsd_switch *s = vsd_find_switch(d, swname);
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", swname);
    int idx = -1;
    for (int i = 0; i < s->nstatics; i++)
        if (memcmp(s->statics[i].mac, mac, 6) == 0 && s->statics[i].vlan == vlan)
            idx = i;
    if (idx < 0) {
        /* A learned entry: just forget it (nothing to save). */
        if (vsw_fdb_del(s->sw, mac, vlan) < 0)
            return vsd_fail(e, VSD_FAILED, "no FDB entry for that MAC and VLAN on '%s'", swname);
        return 0;
    }
    struct vsd_static_entry old = s->statics[idx];
    s->statics[idx] = s->statics[--s->nstatics];
    if (vsd_save(d, e) < 0) {
        s->statics[s->nstatics++] = s->statics[idx];
        s->statics[idx] = old;
        return -1;
    }
    vsw_fdb_del(s->sw, mac, vlan);
    return 0;
}

int vsd_fdb_flush(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"switch", NULL};
    const char *swname;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "switch", true, &swname, e) < 0)
        return -1;
    struct vsd_switch *s = vsd_find_switch(d, swname);
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", swname);
    vsw_fdb_flush(s->sw);
    return 0;
}

/* --- mirror ------------------------------------------------------------------ */

static int mirror_apply(struct vsd *d, struct vsd_switch *s, struct vsd_err *e)
{
    if (!s->mirror_on) {
        vsw_mirror_clear(s->sw);
        return 0;
    }
    struct vsw_port *srcs[VSD_MIRROR_SRC_MAX], *dst;
    struct vsd_switch *ps = NULL;
    for (int i = 0; i < s->mirror_nsrc; i++) {
        srcs[i] = vsd_find_port(d, s->mirror_src[i], &ps);
        if (!srcs[i] || ps != s)
            return vsd_fail(e, VSD_FAILED, "no port '%s' on switch '%s'", s->mirror_src[i],
                            s->name);
    }
    dst = vsd_find_port(d, s->mirror_dst, &ps);
    if (!dst || ps != s)
        return vsd_fail(e, VSD_FAILED, "no port '%s' on switch '%s'", s->mirror_dst, s->name);
    int rc = vsw_mirror_set(s->sw, srcs, (unsigned)s->mirror_nsrc, dst);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "cannot mirror: %s", strerror(-rc));
    return 0;
}

/* After ports came or went: the mirror as configured, with the ports that
 * exist now (a source that is gone is skipped; no destination, no mirror).
 * The configuration itself does not change. */
static void mirror_refresh(struct vsd *d, struct vsd_switch *s)
{
    if (!s->mirror_on)
        return;
    struct vsw_port *srcs[VSD_MIRROR_SRC_MAX], *dst;
    struct vsd_switch *ps = NULL;
    unsigned n = 0;
    for (int i = 0; i < s->mirror_nsrc; i++) {
        struct vsw_port *p = vsd_find_port(d, s->mirror_src[i], &ps);
        if (p && ps == s)
            srcs[n++] = p;
    }
    dst = vsd_find_port(d, s->mirror_dst, &ps);
    if (!dst || ps != s || n == 0) {
        vsw_mirror_clear(s->sw);
        return;
    }
    int rc = vsw_mirror_set(s->sw, srcs, n, dst);
    if (rc < 0)
        vsd_log("switch %s: mirror not applied: %s", s->name, strerror(-rc));
}

int vsd_mirror_add(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"switch", "src", "dst", NULL};
    const char *swname, *dst;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "switch", true, &swname, e) < 0 ||
        vsd_get_str(params, "dst", true, &dst, e) < 0)
        return -1;
    json_t *src = json_object_get(params, "src");
    if (!json_is_array(src) || json_array_size(src) == 0 ||
        json_array_size(src) > VSD_MIRROR_SRC_MAX)
        return vsd_fail(e, VSD_BAD_PARAMS, "src must list 1..%d ports", VSD_MIRROR_SRC_MAX);
    struct vsd_switch *s = vsd_find_switch(d, swname);
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", swname);
    struct vsd_switch saved = *s;
    s->mirror_on = true;
    s->mirror_nsrc = 0;
    size_t i;
    json_t *v;
    json_array_foreach(src, i, v)
    {
        const char *p = json_string_value(v);
        if (!p || strlen(p) > VSD_PORT_NAME_MAX || strcmp(p, dst) == 0) {
            *s = saved;
            return vsd_fail(e, VSD_BAD_PARAMS, "bad source port %s", p ? p : "(not a string)");
        }
        snprintf(s->mirror_src[s->mirror_nsrc++], VSD_PORT_NAME_MAX + 1, "%s", p);
    }
    snprintf(s->mirror_dst, sizeof(s->mirror_dst), "%s", dst);
    if (mirror_apply(d, s, e) < 0 || vsd_save(d, e) < 0) {
        struct vsd_err ignore;
        *s = saved;
        mirror_apply(d, s, &ignore);
        return -1;
    }
    vsd_log("switch %s: mirroring %d port(s) to %s", s->name, s->mirror_nsrc, s->mirror_dst);
    return 0;
}

int vsd_mirror_del(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"switch", NULL};
    const char *swname;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "switch", true, &swname, e) < 0)
        return -1;
    struct vsd_switch *s = vsd_find_switch(d, swname);
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", swname);
    if (!s->mirror_on)
        return vsd_fail(e, VSD_FAILED, "switch '%s' has no mirror", swname);
    s->mirror_on = false;
    if (vsd_save(d, e) < 0) {
        s->mirror_on = true;
        return -1;
    }
    vsw_mirror_clear(s->sw);
    vsd_log("switch %s: mirror removed", s->name);
    return 0;
}

void vsd_switch_reapply(struct vsd *d, struct vsd_switch *s)
{
    for (int i = 0; i < s->nstatics; i++) {
        struct vsd_switch *ps = NULL;
        struct vsw_port *p = vsd_find_port(d, s->statics[i].port, &ps);
        if (p && ps == s)
            vsw_fdb_add_static(s->sw, s->statics[i].mac, s->statics[i].vlan, p);
    }
    mirror_refresh(d, s);
}

/* --- captures ---------------------------------------------------------------- */

struct vsd_capture {
    struct vsd_capture *next;
    struct vsw_capture *cap;
    pcap_t *pcap;
    pcap_dumper_t *dump;
    char file[PATH_MAX];
    char port[VSD_PORT_NAME_MAX + 1];
    uint64_t count, written;
    double deadline;
    struct rpc_conn *conn;
    json_t *id;
};

/* Remove a capture file this call created and nothing else: only if the
 * name in its directory still leads to the file we made (in a shared
 * directory, someone may have renamed another file over it since). */
static void capture_unlink_own(int dirfd, const char *base, const struct stat *mine)
{
    struct stat now;
    if (fstatat(dirfd, base, &now, AT_SYMLINK_NOFOLLOW) == 0 && mine->st_dev == now.st_dev &&
        mine->st_ino == now.st_ino)
        unlinkat(dirfd, base, 0);
}

/*
 * The directory of an absolute capture path, reached without following a
 * symbolic link anywhere on the way (openat2 RESOLVE_NO_SYMLINKS): O_NOFOLLOW
 * guards only the last name, and a link to a directory planted in a shared
 * one (/tmp/x -> /etc) would otherwise lead a capture, or --force, into a
 * directory the operator did not name. Kernels before 5.6 have no openat2:
 * there only the last name is guarded. *base is the file's name in it.
 * Returns the directory's O_PATH descriptor or -1 with e filled.
 */
static int capture_dir_open(const char *file, char *dir, size_t dir_len, const char **base,
                            struct vsd_err *e)
{
    const char *slash = strrchr(file, '/');
    *base = slash + 1;
    if (!**base || !strcmp(*base, ".") || !strcmp(*base, "..")) {
        vsd_fail(e, VSD_BAD_PARAMS, "the capture file %s names no file", file);
        return -1;
    }
    snprintf(dir, dir_len, "%.*s", slash == file ? 1 : (int)(slash - file), file);
    struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
                           .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, dir, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS)
        fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            vsd_fail(e, VSD_FAILED,
                     "capture file %s: %s has a symbolic link in its path: vswitchd does not "
                     "write through links",
                     file, dir);
        else
            vsd_fail(e, VSD_FAILED, "capture file %s: directory %s: %s", file, dir,
                     strerror(errno));
    }
    return fd;
}

/* Open the capture file as root on an operator's word, so carefully: the
 * file is created new (O_EXCL) in its directory (capture_dir_open), never
 * through a symbolic link (O_NOFOLLOW: a link at that name is refused even
 * with force). With force, an existing file is replaced only if it is a
 * regular file with no other name (a hard link planted in /tmp would
 * otherwise let a capture overwrite the file it shares) that belongs to
 * vswitchd's own user (a file someone else made, readable by them, would
 * receive the guests' frames); it is truncated in place, keeping its mode.
 * *created says whether the file is new, *st what it is. Returns the fd or
 * -1 with e filled. */
static int capture_open(int dirfd, const char *file, const char *base, bool force, bool *created,
                        struct stat *st, struct vsd_err *e)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a reader. */
    int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    int fd = openat(dirfd, base, flags | O_EXCL, 0640);
    *created = fd >= 0;
    if (fd < 0 && errno == EEXIST && force)
        fd = openat(dirfd, base, flags, 0640);
    if (fd < 0) {
        /* What is there, for the message only: nothing is done with it. */
        int err = errno;
        bool exists = fstatat(dirfd, base, st, AT_SYMLINK_NOFOLLOW) == 0;
        if (err == ELOOP || (exists && S_ISLNK(st->st_mode)))
            vsd_fail(e, VSD_FAILED,
                     "capture file %s is a symbolic link: vswitchd does not write through links",
                     file);
        else if (err == EEXIST)
            vsd_fail(e, VSD_FAILED, "capture file %s exists: give --force to replace it", file);
        else if (exists && !S_ISREG(st->st_mode))
            vsd_fail(e, VSD_FAILED, "capture file %s is not a regular file: not replaced", file);
        else
            vsd_fail(e, VSD_FAILED, "cannot create capture file %s: %s", file, strerror(err));
        return -1;
    }
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode) || st->st_nlink != 1) {
        vsd_fail(e, VSD_FAILED, "capture file %s is not a regular file with one name: not replaced",
                 file);
        close(fd);
        return -1;
    }
    if (!*created && st->st_uid != geteuid()) {
        vsd_fail(e, VSD_FAILED, "capture file %s belongs to another user (uid %u): not replaced",
                 file, (unsigned)st->st_uid);
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 || (!*created && ftruncate(fd, 0) < 0)) {
        vsd_fail(e, VSD_FAILED, "cannot write capture file %s: %s", file, strerror(errno));
        if (*created)
            capture_unlink_own(dirfd, base, st);
        close(fd);
        return -1;
    }
    return fd;
}

json_t *vsd_capture(struct vsd *d, const json_t *params, struct rpc_conn *conn, json_t *id,
                    bool *deferred, struct vsd_err *e)
{
    static const char *const keys[] = {"port", "file", "count", "timeout", "force", NULL};
    const char *pname, *file;
    long long count = 0, timeout = 0;
    bool has_count, has_to, has_force, force = false;
    *deferred = false;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "port", true, &pname, e) < 0 ||
        vsd_get_str(params, "file", true, &file, e) < 0 ||
        vsd_get_int(params, "count", 1, 100000000, &count, &has_count, e) < 0 ||
        vsd_get_int(params, "timeout", 1, 86400, &timeout, &has_to, e) < 0 ||
        vsd_get_bool(params, "force", &force, &has_force, e) < 0)
        return NULL;
    if (!has_count && !has_to) {
        vsd_fail(e, VSD_BAD_PARAMS, "give -c COUNT, --timeout S, or both");
        return NULL;
    }
    if (file[0] != '/') {
        vsd_fail(e, VSD_BAD_PARAMS, "the capture file must be an absolute path");
        return NULL;
    }
    if (strlen(file) >= PATH_MAX) {
        vsd_fail(e, VSD_BAD_PARAMS, "the capture file's path is longer than %d bytes",
                 PATH_MAX - 1);
        return NULL;
    }
    struct vsd_switch *ps;
    struct vsw_port *port = vsd_find_port(d, pname, &ps);
    if (!port) {
        vsd_fail(e, VSD_FAILED, "no port '%s' (VM/NIC, a host vNIC, or SWITCH:uplink)", pname);
        return NULL;
    }
    /* Everything that can fail without touching the file system first: the
     * file is created last, so a capture refused for its port leaves the
     * file system as it was. */
    struct vsd_capture *c = calloc(1, sizeof(*c));
    if (!c) {
        vsd_fail(e, VSD_FAILED, "out of memory");
        return NULL;
    }
    c->pcap = pcap_open_dead_with_tstamp_precision(DLT_EN10MB, 65535, PCAP_TSTAMP_PRECISION_NANO);
    if (!c->pcap) {
        vsd_fail(e, VSD_FAILED, "libpcap failed");
        free(c);
        return NULL;
    }
    int rc = vsw_capture_start(port, 4096, &c->cap);
    if (rc < 0) {
        vsd_fail(e, VSD_FAILED, "cannot capture on %s: %s", pname,
                 rc == -EBUSY ? "a capture is already running there" : strerror(-rc));
        pcap_close(c->pcap);
        free(c);
        return NULL;
    }
    bool created = false;
    struct stat st;
    char dir[PATH_MAX];
    const char *base;
    int dirfd = capture_dir_open(file, dir, sizeof(dir), &base, e);
    int fd = dirfd < 0 ? -1 : capture_open(dirfd, file, base, force, &created, &st, e);
    if (fd >= 0) {
        FILE *fp = fdopen(fd, "w");
        if (!fp) {
            vsd_fail(e, VSD_FAILED, "cannot write %s: %s", file, strerror(errno));
            close(fd);
        } else if (!(c->dump = pcap_dump_fopen(c->pcap, fp))) {
            /* It has closed fp: failing to write the header is the only way
             * it fails for DLT_EN10MB. */
            vsd_fail(e, VSD_FAILED, "cannot write %s: %s", file, pcap_geterr(c->pcap));
        }
        if (!c->dump && created)
            capture_unlink_own(dirfd, base, &st);
    }
    if (dirfd >= 0)
        close(dirfd);
    if (!c->dump) {
        vsw_capture_stop(c->cap);
        pcap_close(c->pcap);
        free(c);
        return NULL;
    }
    snprintf(c->file, sizeof(c->file), "%s", file);
    snprintf(c->port, sizeof(c->port), "%s", pname);
    c->count = has_count ? (uint64_t)count : 0;
    c->deadline = has_to ? vsd_now() + (double)timeout : 0;
    c->conn = conn;
    c->id = json_incref(id);
    c->next = d->captures;
    d->captures = c;
    *deferred = true;
    vsd_log("capturing on %s into %s%s", pname, file, created ? "" : " (replaced)");
    return NULL;
}

static void capture_finish(struct vsd *d, struct vsd_capture *c, bool reply)
{
    for (struct vsd_capture **pp = &d->captures; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    uint64_t dropped = vsw_capture_dropped(c->cap);
    vsw_capture_stop(c->cap);
    pcap_dump_close(c->dump);
    pcap_close(c->pcap);
    if (reply && c->conn)
        rpc_reply_deferred(c->conn, c->id,
                           json_pack("{s:s,s:I,s:I}", "file", c->file, "packets",
                                     (json_int_t)c->written, "dropped", (json_int_t)dropped),
                           NULL);
    else
        json_decref(c->id);
    vsd_log("capture on %s: %" PRIu64 " frames written to %s", c->port, c->written, c->file);
    free(c);
}

void vsd_capture_poll(struct vsd *d)
{
    double now = vsd_now();
    for (struct vsd_capture *c = d->captures, *next; c; c = next) {
        next = c->next;
        struct rte_mbuf *pkts[64];
        uint64_t ts[64];
        unsigned n;
        while ((n = vsw_capture_read(c->cap, pkts, ts, 64)) > 0) {
            for (unsigned i = 0; i < n; i++) {
                struct rte_mbuf *m = pkts[i];
                if (!c->count || c->written < c->count) {
                    uint8_t buf[16384];
                    uint32_t len = m->pkt_len < sizeof(buf) ? m->pkt_len : (uint32_t)sizeof(buf);
                    const uint8_t *data = rte_pktmbuf_read(m, 0, len, buf);
                    struct pcap_pkthdr h = {
                        .ts = {.tv_sec = (time_t)(ts[i] / 1000000000u),
                               .tv_usec = (suseconds_t)(ts[i] % 1000000000u)},
                        .caplen = len,
                        .len = m->pkt_len,
                    };
                    pcap_dump((u_char *)c->dump, &h, data);
                    c->written++;
                }
                rte_pktmbuf_free(m);
            }
        }
        pcap_dump_flush(c->dump);
        bool gone = vsw_capture_port_gone(c->cap);
        if (gone)
            vsd_log("capture on %s: the port went away", c->port);
        if (gone || (c->count && c->written >= c->count) || (c->deadline && now >= c->deadline))
            capture_finish(d, c, true);
    }
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
