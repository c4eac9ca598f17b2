/*
 * The forwarding database of a switch: (MAC, VLAN) -> port.
 *
 * One writer, many readers. Workers only read (rte_hash in lock-free
 * reader/writer mode) and refresh an entry's last-seen time; a new or moved
 * address becomes a learning event the control thread applies. Deleted key
 * slots are recycled only after every worker has passed a quiescent state
 * (rte_hash's RCU integration), so a worker never reads an entry that was
 * reused under it. Learning one burst late is harmless: until then the
 * destination is flooded. The table itself (hash + slots) is published as
 * one RCU object so that a resize swaps both at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_errno.h>
#include <rte_malloc.h>

#include "vsw-private.h"

/* The table's hash function: vsw_fdb_hash(), which the workers compute
 * inline for their bulk lookups. Keys are always sizeof(struct fdb_key);
 * the initial value is rte_hash's default, 0, which vsw_fdb_hash() uses. */
static uint32_t fdb_hash(const void *key, uint32_t len, uint32_t init)
{
    (void)len;
    (void)init;
    return vsw_fdb_hash(key);
}

/* rte_hash compares keys whose length it has no vector compare for (its
 * compares are for 16, 32, 48, ... bytes) with libc memcmp, through the
 * PLT: 12.5 % of the switching core's cycles on null ports (perf, see
 * docs/ARCHITECTURE.md "FDB"). An 8-byte key is one 64-bit compare. */
static int fdb_key_cmp(const void *a, const void *b, size_t len)
{
    (void)len;
    return !vsw_fdb_key_eq(a, b);
}

static struct vsw_fdb_tab *tab_create(struct vsw_switch *sw, uint32_t max)
{
    struct vsw_fdb_tab *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    char name[RTE_HASH_NAMESIZE];
    t->gen = sw->fdb_gen++;
    snprintf(name, sizeof(name), "vsw_fdb_%u_%u", sw->id, t->gen);
    struct rte_hash_parameters hp = {
        .name = name,
        .entries = max < 64 ? 64 : max,
        .key_len = sizeof(struct fdb_key),
        .hash_func = fdb_hash,
        .socket_id = (int)rte_socket_id(),
        .extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
    };
    t->h = rte_hash_create(&hp);
    if (!t->h)
        goto fail;
    rte_hash_set_cmp_func(t->h, fdb_key_cmp);
    /* Key positions run below entries (+ the extendable table's spares). */
    t->nslots = hp.entries * 2;
    t->max = max;
    t->slots = rte_zmalloc("vsw_fdb_slots", sizeof(struct fdb_slot) * t->nslots, 0);
    if (!t->slots)
        goto fail;
    struct rte_hash_rcu_config rc = {.v = sw->dp->qsbr, .mode = RTE_HASH_QSBR_MODE_DQ};
    if (rte_hash_rcu_qsbr_add(t->h, &rc) != 0)
        goto fail;
    return t;
fail:
    rte_free(t->slots);
    rte_hash_free(t->h);
    free(t);
    return NULL;
}

static void tab_free(struct vsw_fdb_tab *t)
{
    if (!t)
        return;
    rte_hash_free(t->h);
    rte_free(t->slots);
    free(t);
}

int vsw_fdb_init(struct vsw_switch *sw, uint32_t max)
{
    sw->fdb = tab_create(sw, max);
    return sw->fdb ? 0 : -ENOMEM;
}

void vsw_fdb_fini(struct vsw_switch *sw)
{
    tab_free(sw->fdb);
    sw->fdb = NULL;
}

static int32_t tab_add(struct vsw_fdb_tab *t, const struct fdb_key *key, uint16_t port_index,
                       uint16_t port_gen, bool is_static, uint32_t now)
{
    int32_t pos = rte_hash_add_key(t->h, key);
    if (pos < 0)
        return pos;
    if ((uint32_t)pos >= t->nslots) {
        rte_hash_del_key(t->h, key);
        return -ENOSPC;
    }
    /* A worker may hold this position from a key deleted earlier: RCU kept
     * the position unused until that worker moved on. */
    struct fdb_slot *s = &t->slots[pos];
    s->is_static = is_static;
    s->port_gen = port_gen;
    __atomic_store_n(&s->last_seen, now, __ATOMIC_RELAXED);
    __atomic_store_n(&s->port_index, port_index, __ATOMIC_RELEASE);
    return pos;
}

void vsw_fdb_learn(struct vsw_switch *sw, const struct vsw_learn_ev *ev, uint32_t now)
{
    struct vsw_fdb_tab *t = sw->fdb;
    struct fdb_key key;
    memcpy(key.mac, ev->mac, 6);
    key.vlan = ev->vlan;
    int32_t pos = rte_hash_lookup(t->h, &key);
    if (pos >= 0 && (uint32_t)pos < t->nslots) {
        struct fdb_slot *s = &t->slots[pos];
        if (s->is_static)
            return;
        if (__atomic_load_n(&s->port_index, __ATOMIC_RELAXED) != ev->port_index ||
            s->port_gen != ev->port_gen) {
            sw->fdb_moves++;
            s->port_gen = ev->port_gen;
            __atomic_store_n(&s->port_index, ev->port_index, __ATOMIC_RELEASE);
        }
        __atomic_store_n(&s->last_seen, now, __ATOMIC_RELAXED);
        return;
    }
    if (sw->fdb_count >= t->max) {
        sw->fdb_full++;
        return;
    }
    if (tab_add(t, &key, ev->port_index, ev->port_gen, false, now) < 0) {
        sw->fdb_full++;
        return;
    }
    sw->fdb_count++;
}

/* Delete every key for which drop(slot) says so. Keys are collected first:
 * rte_hash's iterator is not meant to run across deletions. */
static void fdb_delete_if(struct vsw_switch *sw, bool (*drop)(const struct fdb_slot *, void *),
                          void *arg)
{
    struct vsw_fdb_tab *t = sw->fdb;
    uint32_t next = 0;
    const void *kp;
    void *data;
    int32_t pos;
    struct fdb_key *doomed = NULL;
    uint32_t n = 0, cap = 0;
    while ((pos = rte_hash_iterate(t->h, &kp, &data, &next)) >= 0) {
        if ((uint32_t)pos >= t->nslots || !drop(&t->slots[pos], arg))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct fdb_key *nd = realloc(doomed, cap * sizeof(*doomed));
            if (!nd)
                break;
            doomed = nd;
        }
        memcpy(&doomed[n++], kp, sizeof(struct fdb_key));
    }
    for (uint32_t i = 0; i < n; i++)
        if (rte_hash_del_key(t->h, &doomed[i]) >= 0)
            sw->fdb_count--;
    free(doomed);
}

struct age_arg {
    uint32_t now;
    uint32_t aging;
};

static bool expired(const struct fdb_slot *s, void *arg)
{
    const struct age_arg *a = arg;
    uint32_t seen = __atomic_load_n(&s->last_seen, __ATOMIC_RELAXED);
    return !s->is_static && a->now - seen > a->aging;
}

void vsw_fdb_age(struct vsw_switch *sw, uint32_t now)
{
    struct age_arg a = {.now = now, .aging = sw->aging_s};
    fdb_delete_if(sw, expired, &a);
}

static bool on_port(const struct fdb_slot *s, void *arg)
{
    return s->port_index == *(const uint16_t *)arg;
}

void vsw_fdb_flush_port(struct vsw_switch *sw, uint16_t port_index)
{
    fdb_delete_if(sw, on_port, &port_index);
}

static bool any_dynamic(const struct fdb_slot *s, void *arg)
{
    (void)arg;
    return !s->is_static;
}

void vsw_fdb_flush(struct vsw_switch *sw)
{
    fdb_delete_if(sw, any_dynamic, NULL);
}

static bool mac_ok(const uint8_t mac[6])
{
    return !(mac[0] & 1) && (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]);
}

int vsw_fdb_add_static(struct vsw_switch *sw, const uint8_t mac[6], uint16_t vlan,
                       struct vsw_port *port)
{
    if (!mac_ok(mac) || vlan > VSW_VLAN_MAX)
        return -EINVAL;
    if (port->sw != sw)
        return -ENODEV;
    struct vsw_fdb_tab *t = sw->fdb;
    struct fdb_key key;
    memcpy(key.mac, mac, 6);
    key.vlan = vlan;
    uint32_t now = vsw_now_s(sw->dp);
    int32_t pos = rte_hash_lookup(t->h, &key);
    if (pos >= 0 && (uint32_t)pos < t->nslots) {
        struct fdb_slot *s = &t->slots[pos];
        s->is_static = 1;
        s->port_gen = sw->dp->port_gen[port->index];
        __atomic_store_n(&s->port_index, port->index, __ATOMIC_RELEASE);
        return 0;
    }
    if (sw->fdb_count >= t->max)
        return -ENOSPC;
    pos = tab_add(t, &key, port->index, sw->dp->port_gen[port->index], true, now);
    if (pos < 0)
        return -ENOSPC;
    sw->fdb_count++;
    return 0;
}

int vsw_fdb_del(struct vsw_switch *sw, const uint8_t mac[6], uint16_t vlan)
{
    struct fdb_key key;
    memcpy(key.mac, mac, 6);
    key.vlan = vlan;
    if (rte_hash_del_key(sw->fdb->h, &key) < 0)
        return -ENOENT;
    sw->fdb_count--;
    return 0;
}

unsigned vsw_fdb_count(const struct vsw_switch *sw)
{
    return sw->fdb_count;
}

uint64_t vsw_switch_fdb_full(const struct vsw_switch *sw)
{
    return sw->fdb_full;
}

int vsw_switch_set_fdb(struct vsw_switch *sw, uint32_t fdb_max, uint32_t aging_s)
{
    if ((fdb_max && fdb_max < 16) || fdb_max > (1u << 20) || (aging_s && aging_s < 10))
        return -EINVAL;
    if (aging_s)
        sw->aging_s = aging_s;
    if (!fdb_max || fdb_max == sw->fdb->max)
        return 0;
    struct vsw_fdb_tab *old = sw->fdb, *t = tab_create(sw, fdb_max);
    if (!t)
        return -ENOMEM;
    /* Static entries move over; learned ones are learned again. */
    uint32_t next = 0, count = 0;
    const void *kp;
    void *data;
    int32_t pos;
    while ((pos = rte_hash_iterate(old->h, &kp, &data, &next)) >= 0) {
        const struct fdb_slot *s = &old->slots[pos];
        if ((uint32_t)pos < old->nslots && s->is_static && count < fdb_max &&
            tab_add(t, kp, s->port_index, s->port_gen, true, s->last_seen) >= 0)
            count++;
    }
    __atomic_store_n(&sw->fdb, t, __ATOMIC_RELEASE);
    sw->fdb_count = count;
    rte_rcu_qsbr_synchronize(sw->dp->qsbr, RTE_QSBR_THRID_INVALID);
    tab_free(old);
    return 0;
}

void vsw_fdb_dump(struct vsw_switch *sw, void (*cb)(void *ctx, const struct vsw_fdb_entry *e),
                  void *ctx)
{
    struct vsw_fdb_tab *t = sw->fdb;
    uint32_t next = 0;
    const void *kp;
    void *data;
    int32_t pos;
    uint32_t now = vsw_now_s(sw->dp);
    while ((pos = rte_hash_iterate(t->h, &kp, &data, &next)) >= 0) {
        if ((uint32_t)pos >= t->nslots)
            continue;
        const struct fdb_slot *s = &t->slots[pos];
        const struct fdb_key *k = kp;
        struct vsw_fdb_entry e;
        memcpy(e.mac, k->mac, 6);
        e.vlan = k->vlan;
        uint16_t pi = s->port_index;
        e.port = pi < VSW_MAX_PORTS ? sw->dp->ports[pi] : NULL;
        if (!e.port || e.port->sw != sw || sw->dp->port_gen[pi] != s->port_gen)
            continue;
        e.age_s = now - s->last_seen;
        e.is_static = s->is_static;
        cb(ctx, &e);
    }
}
