/*
 * The forwarding database of a switch: (MAC, VLAN) -> port.
 *
 * One writer, many readers. Workers only read (rte_hash in lock-free
 * reader/writer mode) and refresh an entry's last-seen time; a new or moved
 * address becomes a learning event the control thread applies. Deleted key
 * slots are recycled only after every worker has passed a quiescent state
 * (rte_hash's RCU integration), so a worker never reads an entry that was
 * reused under it. Learning one burst late is harmless: until then the
 * destination is flooded.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_hash_crc.h>
#include <rte_errno.h>
#include <rte_malloc.h>

#include "vsw-private.h"

int vsw_fdb_init(struct vsw_switch *sw)
{
    char name[RTE_HASH_NAMESIZE];
    snprintf(name, sizeof(name), "vsw_fdb_%u", sw->id);
    struct rte_hash_parameters hp = {
        .name = name,
        .entries = sw->fdb_max < 64 ? 64 : sw->fdb_max,
        .key_len = sizeof(struct fdb_key),
        .hash_func = rte_hash_crc,
        .socket_id = (int)rte_socket_id(),
        .extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE,
    };
    sw->fdb = rte_hash_create(&hp);
    if (!sw->fdb)
        return -rte_errno ? -rte_errno : -ENOMEM;
    /* Key positions run below entries (+ the extendable table's spares). */
    sw->nslots = hp.entries * 2;
    sw->slots = rte_zmalloc("vsw_fdb_slots", sizeof(struct fdb_slot) * sw->nslots, 0);
    if (!sw->slots)
        goto fail;
    struct rte_hash_rcu_config rc = {
        .v = sw->dp->qsbr,
        .mode = RTE_HASH_QSBR_MODE_DQ,
    };
    if (rte_hash_rcu_qsbr_add(sw->fdb, &rc) != 0)
        goto fail;
    return 0;
fail:
    rte_free(sw->slots);
    rte_hash_free(sw->fdb);
    sw->slots = NULL;
    sw->fdb = NULL;
    return -ENOMEM;
}

void vsw_fdb_fini(struct vsw_switch *sw)
{
    rte_hash_free(sw->fdb);
    rte_free(sw->slots);
    sw->fdb = NULL;
    sw->slots = NULL;
}

void vsw_fdb_learn(struct vsw_switch *sw, const struct vsw_learn_ev *ev, uint32_t now)
{
    struct fdb_key key;
    memcpy(key.mac, ev->mac, 6);
    key.vlan = ev->vlan;
    int32_t pos = rte_hash_lookup(sw->fdb, &key);
    if (pos >= 0 && (uint32_t)pos < sw->nslots) {
        struct fdb_slot *s = &sw->slots[pos];
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
    if (sw->fdb_count >= sw->fdb_max) {
        sw->fdb_full++;
        return;
    }
    pos = rte_hash_add_key(sw->fdb, &key);
    if (pos < 0 || (uint32_t)pos >= sw->nslots) {
        if (pos >= 0)
            rte_hash_del_key(sw->fdb, &key);
        sw->fdb_full++;
        return;
    }
    /* The slot becomes reachable through the key only now, but a worker
     * may hold this position from a key deleted earlier: RCU kept the
     * position unused until that worker moved on. */
    struct fdb_slot *s = &sw->slots[pos];
    s->is_static = 0;
    s->port_gen = ev->port_gen;
    __atomic_store_n(&s->last_seen, now, __ATOMIC_RELAXED);
    __atomic_store_n(&s->port_index, ev->port_index, __ATOMIC_RELEASE);
    sw->fdb_count++;
}

/* Delete every key for which drop(slot) says so. Keys are collected first:
 * rte_hash's iterator is not meant to run across deletions. */
static void fdb_delete_if(struct vsw_switch *sw, bool (*drop)(const struct fdb_slot *, void *),
                          void *arg)
{
    uint32_t next = 0;
    const void *kp;
    void *data;
    int32_t pos;
    struct fdb_key *doomed = NULL;
    uint32_t n = 0, cap = 0;
    while ((pos = rte_hash_iterate(sw->fdb, &kp, &data, &next)) >= 0) {
        if ((uint32_t)pos >= sw->nslots || !drop(&sw->slots[pos], arg))
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
        if (rte_hash_del_key(sw->fdb, &doomed[i]) >= 0)
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

void vsw_fdb_dump(struct vsw_switch *sw, void (*cb)(void *ctx, const struct vsw_fdb_entry *e),
                  void *ctx)
{
    uint32_t next = 0;
    const void *kp;
    void *data;
    int32_t pos;
    uint32_t now = vsw_now_s(sw->dp);
    while ((pos = rte_hash_iterate(sw->fdb, &kp, &data, &next)) >= 0) {
        if ((uint32_t)pos >= sw->nslots)
            continue;
        const struct fdb_slot *s = &sw->slots[pos];
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
