/*
 * Forwarding: one received burst at a time, on the worker that owns the
 * ingress port. For each frame: check it, learn its source, find its
 * destination (one port, or the flood set), and stage it per egress port.
 * At the end of the round every staged batch goes out in one tx_burst
 * (ports this worker owns) or one hand-off enqueue (ports of other workers).
 *
 * Flooding shares one mbuf between egress ports by reference count; egress
 * ports copy out of it (VM NICs) or transmit it as is, and never write to it.
 */
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <rte_hash_crc.h>
#include <rte_prefetch.h>

#include "vsw-private.h"

static inline void count_rx(struct vsw_port *p, uint32_t bytes)
{
    struct vsw_port_counters *c = &p->counters[rte_lcore_id()];
    c->rx_packets++;
    c->rx_bytes += bytes;
}

static void stage(struct vsw_worker *w, struct vsw_port *out, struct rte_mbuf *m)
{
    if (m->pkt_len > out->max_frame) {
        vsw_port_drop(out, VSW_DROP_TOO_BIG, 1);
        rte_pktmbuf_free(m);
        return;
    }
    struct vsw_stage *st = &w->stage[out->index];
    if (st->n == 0)
        w->touched[w->ntouched++] = out->index;
    else if (st->n == VSW_STAGE) {
        vsw_port_drop(out, VSW_DROP_QUEUE_FULL, 1);
        rte_pktmbuf_free(m);
        return;
    }
    st->pkts[st->n++] = m;
}

/* Ask the control thread to learn src on in, unless asked recently. */
static void request_learn(struct vsw_worker *w, struct vsw_switch *sw, struct vsw_port *in,
                          const struct rte_ether_addr *src, uint16_t vlan, uint32_t now)
{
    uint64_t tag = 0;
    memcpy(&tag, src->addr_bytes, 6);
    tag ^= ((uint64_t)vlan << 48) ^ ((uint64_t)in->index << 52) ^ ((uint64_t)sw->id << 40);
    uint32_t h = rte_hash_crc_8byte(tag, 0) % VSW_LEARN_CACHE;
    if (w->learn_cache[h] == tag && now - w->learn_cache_ts[h] < 1)
        return;
    w->learn_cache[h] = tag;
    w->learn_cache_ts[h] = now;
    struct vsw_dp *dp = w->dp;
    struct vsw_learn_ev ev = {
        .sw_id = sw->id,
        .port_index = in->index,
        .port_gen = dp->port_gen[in->index],
        .vlan = vlan,
    };
    memcpy(ev.mac, src->addr_bytes, 6);
    if (rte_ring_mp_enqueue_elem(dp->learn_ring, &ev, sizeof(ev)) != 0)
        return; /* backlog full: the next frame asks again */
    if (!__atomic_exchange_n(&dp->learn_signalled, true, __ATOMIC_ACQ_REL)) {
        uint64_t one = 1;
        if (write(dp->learn_fd, &one, sizeof(one)) < 0) {
            /* The counter cannot overflow in practice; nothing to do. */
        }
    }
}

static inline bool mac_is_zero(const struct rte_ether_addr *a)
{
    return (a->addr_bytes[0] | a->addr_bytes[1] | a->addr_bytes[2] | a->addr_bytes[3] |
            a->addr_bytes[4] | a->addr_bytes[5]) == 0;
}

static void flood(struct vsw_worker *w, const struct vsw_port_set *set, struct vsw_port *in,
                  struct rte_mbuf *m)
{
    struct vsw_port *outs[VSW_MAX_PORTS];
    unsigned k = 0;
    for (unsigned i = 0; i < set->n; i++) {
        struct vsw_port *p = set->ports[i];
        if (p != in && vsw_port_link(p))
            outs[k++] = p;
    }
    if (k == 0) {
        vsw_port_drop(in, VSW_DROP_NO_DEST, 1);
        rte_pktmbuf_free(m);
        return;
    }
    if (k > 1)
        rte_mbuf_refcnt_update(m, (int16_t)(k - 1));
    for (unsigned i = 0; i < k; i++)
        stage(w, outs[i], m);
}

void vsw_forward(struct vsw_worker *w, struct vsw_port *in, struct rte_mbuf **pkts, uint16_t n)
{
    struct vsw_dp *dp = w->dp;
    struct vsw_switch *sw = in->sw;
    const struct vsw_port_set *set = __atomic_load_n(&sw->ports, __ATOMIC_ACQUIRE);
    uint32_t now = vsw_now_s(dp);
    const uint16_t vlan = 0;

    for (uint16_t i = 0; i < n; i++) {
        struct rte_mbuf *m = pkts[i];
        if (i + 1 < n)
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
        if (m->data_len < RTE_ETHER_HDR_LEN) {
            vsw_port_drop(in, VSW_DROP_RUNT, 1);
            rte_pktmbuf_free(m);
            continue;
        }
        const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
        if (rte_is_multicast_ether_addr(&eth->src_addr) || mac_is_zero(&eth->src_addr)) {
            vsw_port_drop(in, VSW_DROP_BAD_SRC_MAC, 1);
            rte_pktmbuf_free(m);
            continue;
        }
        count_rx(in, m->pkt_len);

        struct fdb_key key;
        memcpy(key.mac, eth->src_addr.addr_bytes, 6);
        key.vlan = vlan;
        int32_t pos = rte_hash_lookup(sw->fdb, &key);
        if (pos >= 0 && (uint32_t)pos < sw->nslots) {
            struct fdb_slot *s = &sw->slots[pos];
            if (__atomic_load_n(&s->port_index, __ATOMIC_ACQUIRE) != in->index ||
                s->port_gen != dp->port_gen[in->index]) {
                if (!s->is_static)
                    request_learn(w, sw, in, &eth->src_addr, vlan, now);
            } else if (__atomic_load_n(&s->last_seen, __ATOMIC_RELAXED) != now) {
                __atomic_store_n(&s->last_seen, now, __ATOMIC_RELAXED);
            }
        } else {
            request_learn(w, sw, in, &eth->src_addr, vlan, now);
        }

        if (rte_is_multicast_ether_addr(&eth->dst_addr)) {
            flood(w, set, in, m);
            continue;
        }
        memcpy(key.mac, eth->dst_addr.addr_bytes, 6);
        pos = rte_hash_lookup(sw->fdb, &key);
        struct vsw_port *out = NULL;
        if (pos >= 0 && (uint32_t)pos < sw->nslots) {
            const struct fdb_slot *s = &sw->slots[pos];
            uint16_t pi = __atomic_load_n(&s->port_index, __ATOMIC_ACQUIRE);
            if (pi < VSW_MAX_PORTS && dp->port_gen[pi] == s->port_gen)
                out = __atomic_load_n(&dp->ports[pi], __ATOMIC_ACQUIRE);
            if (out && out->sw != sw)
                out = NULL;
        }
        if (!out) {
            flood(w, set, in, m);
        } else if (out == in) {
            vsw_port_drop(in, VSW_DROP_HAIRPIN, 1);
            rte_pktmbuf_free(m);
        } else if (!vsw_port_link(out)) {
            vsw_port_drop(out, VSW_DROP_LINK_DOWN, 1);
            rte_pktmbuf_free(m);
        } else {
            stage(w, out, m);
        }
    }
}

void vsw_flush_stages(struct vsw_worker *w)
{
    struct vsw_dp *dp = w->dp;
    for (uint16_t t = 0; t < w->ntouched; t++) {
        uint16_t idx = w->touched[t];
        struct vsw_stage *st = &w->stage[idx];
        struct vsw_port *out = __atomic_load_n(&dp->ports[idx], __ATOMIC_ACQUIRE);
        uint16_t n = st->n;
        st->n = 0;
        if (!out) {
            rte_pktmbuf_free_bulk(st->pkts, n);
            continue;
        }
        if (out->worker == w->idx) {
            out->cls->tx_burst(out, st->pkts, n);
            continue;
        }
        unsigned done = rte_ring_mp_enqueue_burst(out->handoff, (void **)st->pkts, n, NULL);
        if (done < n) {
            vsw_port_drop(out, VSW_DROP_QUEUE_FULL, n - done);
            rte_pktmbuf_free_bulk(st->pkts + done, n - done);
        }
        struct vsw_worker *owner = &dp->workers[out->worker];
        /* Pairs with the owner's "sleeping = true; fence; check rings". */
        rte_atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (done && __atomic_load_n(&owner->sleeping, __ATOMIC_RELAXED)) {
            uint64_t one = 1;
            if (write(owner->wake_fd, &one, sizeof(one)) < 0) {
                /* eventfd counter saturated: the owner is awake anyway */
            }
        }
    }
    w->ntouched = 0;
}
