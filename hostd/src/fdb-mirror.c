/*
 * Static FDB entries and the port mirror: part of a switch's
 * configuration, naming ports by name. Both are applied again whenever a
 * switch's ports change (vsd_switch_reapply), since a port that goes takes
 * its entries and its place in the mirror with it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vsw-port-provider.h"
#include "model-private.h"

static int find_static(const struct vsd_switch *s, const uint8_t mac[6], uint16_t vlan)
{
    for (int i = 0; i < s->nstatics; i++)
        if (memcmp(s->statics[i].mac, mac, 6) == 0 && s->statics[i].vlan == vlan)
            return i;
    return -1;
}

/* A unicast, non-zero MAC and a VLAN (0: untagged). */
static int check_mac_vlan(const uint8_t mac[6], uint16_t vlan, struct vsd_err *e)
{
    if ((mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5])) {
        char m[18];
        vsd_format_mac(mac, m);
        return vsd_fail(e, VSD_BAD_PARAMS, "bad MAC address '%s': a unicast xx:xx:xx:xx:xx:xx",
                        m);
    }
    return vsd_check_range(e, "vlan", vlan, 0, VSW_VLAN_MAX);
}

/* fdb-add: the entry that was there for that MAC and VLAN, if any. */
struct fdb_add_rec {
    struct vsd *d;
    struct vsd_switch *s;
    int idx;
    bool existed;
    struct vsd_static_entry old;
};

static void fdb_add_commit(void *rec)
{
    (void)rec;
}

static void fdb_add_undo(void *rec)
{
    struct fdb_add_rec *r = rec;
    struct vsd_switch *s = r->s;
    vsw_fdb_del(s->sw, s->statics[r->idx].mac, s->statics[r->idx].vlan);
    if (r->existed) {
        s->statics[r->idx] = r->old;
        vsd_switch_reapply(r->d, s);
    } else {
        s->nstatics--;
    }
}

int vsd_fdb_add(struct vsd *d, const char *swname, const uint8_t mac[6], uint16_t vlan,
                const char *pname, struct vsd_change *chg, struct vsd_err *e)
{
    if (check_mac_vlan(mac, vlan, e) < 0)
        return -1;
    struct vsd_switch *s = vsd_find_switch(d, swname), *ps = NULL;
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", swname);
    struct vsw_port *port = vsd_find_port(d, pname, &ps);
    if (!port || ps != s)
        return vsd_fail(e, VSD_FAILED, "no port '%s' on switch '%s'", pname, swname);
    struct fdb_add_rec r = {.d = d, .s = s, .idx = find_static(s, mac, vlan)};
    if (r.idx < 0 && s->nstatics == VSD_MAX_STATICS)
        return vsd_fail(e, VSD_FAILED, "switch '%s' has %d static entries, the most it can have",
                        swname, VSD_MAX_STATICS);
    int rc = vsw_fdb_add_static(s->sw, mac, vlan, port);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "cannot add the entry: %s",
                        rc == -ENOSPC ? "the FDB is full" : strerror(-rc));
    r.existed = r.idx >= 0;
    if (r.existed)
        r.old = s->statics[r.idx];
    else
        r.idx = s->nstatics++;
    memcpy(s->statics[r.idx].mac, mac, 6);
    s->statics[r.idx].vlan = vlan;
    snprintf(s->statics[r.idx].port, sizeof(s->statics[r.idx].port), "%s", pname);
    VSD_CHANGE_OPEN(chg, fdb_add_commit, fdb_add_undo, r);
    return 0;
}

/* fdb-del of a static entry: where it was (the last one took its place). */
struct fdb_del_rec {
    struct vsd_switch *s;
    int idx;
    struct vsd_static_entry old;
};

static void fdb_del_commit(void *rec)
{
    struct fdb_del_rec *r = rec;
    vsw_fdb_del(r->s->sw, r->old.mac, r->old.vlan);
}

static void fdb_del_undo(void *rec)
{
    struct fdb_del_rec *r = rec;
    struct vsd_switch *s = r->s;
    s->statics[s->nstatics++] = s->statics[r->idx];
    s->statics[r->idx] = r->old;
}

int vsd_fdb_del(struct vsd *d, const char *swname, const uint8_t mac[6], uint16_t vlan,
                struct vsd_change *chg, struct vsd_err *e)
{
    if (check_mac_vlan(mac, vlan, e) < 0)
        return -1;
    struct vsd_switch *s = vsd_find_switch(d, swname);
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", swname);
    struct fdb_del_rec r = {.s = s, .idx = find_static(s, mac, vlan)};
    if (r.idx < 0) {
        /* A learned entry: just forget it (nothing to save). */
        if (vsw_fdb_del(s->sw, mac, vlan) < 0)
            return vsd_fail(e, VSD_FAILED, "no FDB entry for that MAC and VLAN on '%s'", swname);
        return 0;
    }
    r.old = s->statics[r.idx];
    s->statics[r.idx] = s->statics[--s->nstatics];
    VSD_CHANGE_OPEN(chg, fdb_del_commit, fdb_del_undo, r);
    return 0;
}

int vsd_fdb_flush(struct vsd *d, const char *swname, struct vsd_err *e)
{
    struct vsd_switch *s = vsd_find_switch(d, swname);
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", swname);
    vsw_fdb_flush(s->sw);
    return 0;
}

static int mirror_apply(struct vsd *d, struct vsd_switch *s, struct vsd_err *e)
{
    const struct vsd_mirror *m = &s->mirror;
    if (!m->on) {
        vsw_mirror_clear(s->sw);
        return 0;
    }
    struct vsw_port *srcs[VSD_MIRROR_SRC_MAX], *dst;
    struct vsd_switch *ps = NULL;
    for (int i = 0; i < m->nsrc; i++) {
        srcs[i] = vsd_find_port(d, m->src[i], &ps);
        if (!srcs[i] || ps != s)
            return vsd_fail(e, VSD_FAILED, "no port '%s' on switch '%s'", m->src[i], s->name);
    }
    dst = vsd_find_port(d, m->dst, &ps);
    if (!dst || ps != s)
        return vsd_fail(e, VSD_FAILED, "no port '%s' on switch '%s'", m->dst, s->name);
    int rc = vsw_mirror_set(s->sw, srcs, (unsigned)m->nsrc, dst);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "cannot mirror: %s", strerror(-rc));
    return 0;
}

/* After ports came or went: the mirror as configured, with the ports that
 * exist now (a source that is gone is skipped; no destination, no mirror).
 * The configuration itself does not change. */
static void mirror_refresh(struct vsd *d, struct vsd_switch *s)
{
    const struct vsd_mirror *m = &s->mirror;
    if (!m->on)
        return;
    struct vsw_port *srcs[VSD_MIRROR_SRC_MAX], *dst;
    struct vsd_switch *ps = NULL;
    unsigned n = 0;
    for (int i = 0; i < m->nsrc; i++) {
        struct vsw_port *p = vsd_find_port(d, m->src[i], &ps);
        if (p && ps == s)
            srcs[n++] = p;
    }
    dst = vsd_find_port(d, m->dst, &ps);
    if (!dst || ps != s || n == 0) {
        vsw_mirror_clear(s->sw);
        return;
    }
    int rc = vsw_mirror_set(s->sw, srcs, n, dst);
    if (rc < 0)
        vsd_log("switch %s: mirror not applied: %s", s->name, strerror(-rc));
}

/* mirror-add and mirror-del: the mirror before. */
struct mirror_rec {
    struct vsd *d;
    struct vsd_switch *s;
    struct vsd_mirror old;
};

static void mirror_add_commit(void *rec)
{
    struct mirror_rec *r = rec;
    vsd_log("switch %s: mirroring %d port(s) to %s", r->s->name, r->s->mirror.nsrc,
            r->s->mirror.dst);
}

static void mirror_undo(void *rec)
{
    struct mirror_rec *r = rec;
    struct vsd_err ignore;
    r->s->mirror = r->old;
    mirror_apply(r->d, r->s, &ignore);
}

int vsd_mirror_add(struct vsd *d, const char *swname, const char *const *src, int nsrc,
                   const char *dst, struct vsd_change *chg, struct vsd_err *e)
{
    if (nsrc < 1 || nsrc > VSD_MIRROR_SRC_MAX)
        return vsd_fail(e, VSD_BAD_PARAMS, "src must list 1..%d ports", VSD_MIRROR_SRC_MAX);
    if (!dst)
        return vsd_fail(e, VSD_BAD_PARAMS, "missing parameter 'dst'");
    struct vsd_switch *s = vsd_find_switch(d, swname);
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", swname);
    struct mirror_rec r = {.d = d, .s = s, .old = s->mirror};
    struct vsd_mirror m = {.on = true};
    for (int i = 0; i < nsrc; i++) {
        const char *p = src[i];
        if (!p || strlen(p) > VSD_PORT_NAME_MAX || strcmp(p, dst) == 0)
            return vsd_fail(e, VSD_BAD_PARAMS, "bad source port %s", p ? p : "(not a string)");
        snprintf(m.src[m.nsrc++], VSD_PORT_NAME_MAX + 1, "%s", p);
    }
    snprintf(m.dst, sizeof(m.dst), "%s", dst);
    s->mirror = m;
    if (mirror_apply(d, s, e) < 0) {
        mirror_undo(&r);
        return -1;
    }
    VSD_CHANGE_OPEN(chg, mirror_add_commit, mirror_undo, r);
    return 0;
}

static void mirror_del_commit(void *rec)
{
    struct mirror_rec *r = rec;
    vsw_mirror_clear(r->s->sw);
    vsd_log("switch %s: mirror removed", r->s->name);
}

static void mirror_del_undo(void *rec)
{
    struct mirror_rec *r = rec;
    r->s->mirror.on = true;
}

int vsd_mirror_del(struct vsd *d, const char *swname, struct vsd_change *chg, struct vsd_err *e)
{
    struct vsd_switch *s = vsd_find_switch(d, swname);
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", swname);
    if (!s->mirror.on)
        return vsd_fail(e, VSD_FAILED, "switch '%s' has no mirror", swname);
    struct mirror_rec r = {.d = d, .s = s};
    s->mirror.on = false;
    VSD_CHANGE_OPEN(chg, mirror_del_commit, mirror_del_undo, r);
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
