/* Static FDB entries and the port mirror: part of a switch's configuration. */
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
