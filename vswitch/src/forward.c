/*
 * Forwarding: one received burst at a time, on the worker that owns the
 * ingress port. For each frame: classify its VLAN by the port's policy,
 * apply the port's guards and limits, learn its source, find its
 * destination (one port, or the ports of its VLAN), and stage it per egress
 * port. At the end of the round every staged batch goes out in one
 * tx_burst (ports this worker owns) or one hand-off enqueue (ports of other
 * workers).
 *
 * A frame's VLAN travels as m->vlan_tci (its tags, priority tags included,
 * are stripped at ingress) and is never rewritten after classification: a flooded mbuf is
 * shared between egress ports by reference count, each of which only reads
 * it. Ports that write to frames (tx_writes) or need the tag back in the
 * frame (inband_vlan) get a private copy when the mbuf is shared.
 *
 * Staging makes each frame fit its egress port (egress.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_gso.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "vsw-frame.h"
#include "vsw-private.h"

static inline struct vsw_policy_full *policy_of(const struct vsw_port *p)
{
    struct vsw_policy_rt *rt = __atomic_load_n(&p->policy, __ATOMIC_ACQUIRE);
    return container_of(rt, struct vsw_policy_full, rt);
}

/* May this port carry VLAN vid? */
static inline bool vlan_ok(const struct vsw_port_policy *pol, uint16_t vid)
{
    if (pol->trunk)
        return vid == pol->native_vlan || vsw_policy_allowed(pol, vid);
    return vid == pol->access_vlan;
}

static void capture(struct vsw_dp *dp, struct vsw_capture *cap, struct rte_mbuf *m, uint16_t tag)
{
    struct rte_mbuf *c = vsw_wire_copy(dp->pool, m, tag);
    if (!c || rte_ring_mp_enqueue(cap->ring, c) != 0) {
        if (c)
            rte_pktmbuf_free(c);
        __atomic_fetch_add(&cap->dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    *RTE_MBUF_DYNFIELD(c, dp->ts_offset, uint64_t *) = rte_get_tsc_cycles();
}

static unsigned flush_stage(struct vsw_worker *w, struct vsw_stage *st);

/* out's batch of this round, listed in the worker's touched list. */
static inline struct vsw_stage *stage_of(struct vsw_worker *w, struct vsw_port *out)
{
    struct vsw_stage *st = &w->stage[out->index];
    if (!st->listed) {
        st->listed = true;
        w->touched[w->ntouched++] = out->index;
        st->port = out;
    }
    return st;
}

static inline void stage_put(struct vsw_worker *w, struct vsw_stage *st, struct rte_mbuf *m)
{
    if (unlikely(st->n == VSW_STAGE)) {
        /* A flood, mirror copies, or a large segment cut for this port
         * filled its batch: it goes out now, the round goes on. */
        w->sent_early += flush_stage(w, st);
    }
    st->pkts[st->n++] = m;
}

void vsw_stage_one(struct vsw_worker *w, struct vsw_port *out, struct rte_mbuf *m)
{
    stage_put(w, stage_of(w, out), m);
}

static void stage_mirror(struct vsw_worker *w, struct vsw_port *src, struct rte_mbuf *m)
{
    struct vsw_port *dst = __atomic_load_n(&src->mirror_to, __ATOMIC_ACQUIRE);
    if (!dst || dst == src || !vsw_port_link(dst))
        return;
    const struct vsw_port_policy *pol = &policy_of(dst)->rt.pol;
    /* A mirror port sees the frames of every VLAN, tagged if it is a trunk
     * that carries tags in-band. */
    uint16_t tag = dst->cls->inband_vlan && pol->trunk ? (m->vlan_tci & 0xfff) : 0;
    struct rte_mbuf *c = vsw_wire_copy(w->dp->pool, m, tag);
    if (!c) {
        vsw_port_drop(dst, VSW_DROP_NO_MBUF, 1);
        return;
    }
    c->ol_flags |= vsw_mirror_copy_flag;
    vsw_deliver(w, dst, c, 0);
}

/* Stage m (one reference of it) for out. A large TCP segment is judged by
 * the segments it becomes, and captured and mirrored whole: a capture shows
 * what a NIC doing TSO is handed, as tcpdump on such a NIC does. */
static void stage(struct vsw_worker *w, struct vsw_port *out, struct rte_mbuf *m)
{
    if (vsw_egress_len(m) > __atomic_load_n(&out->max_frame, __ATOMIC_RELAXED)) {
        vsw_port_drop(out, VSW_DROP_TOO_BIG, 1);
        rte_pktmbuf_free(m);
        return;
    }
    struct vsw_capture *cap = __atomic_load_n(&out->capture, __ATOMIC_ACQUIRE);
    uint16_t tag = out->cls->inband_vlan ? vsw_port_tx_vlan(out, m) : 0;
    if (cap)
        capture(w->dp, cap, m, out->cls->inband_vlan ? tag : vsw_port_tx_vlan(out, m));
    if (__atomic_load_n(&out->mirror_to, __ATOMIC_RELAXED))
        stage_mirror(w, out, m);
    vsw_deliver(w, out, m, tag);
}

/*
 * Stage k frames of one VLAN for out, in order: the frames of a run that
 * share a destination key. What stage() decides per frame from the port
 * (capture, mirror, the port's tag for the VLAN) is the same for all of
 * them, so it is read once; a port with none of these takes a frame that
 * asks nothing of it (no offload request) as it is, without vsw_deliver(),
 * unless the port writes to frames and this one is shared. Everything else
 * goes through stage(). perf on hv-null-bench: stage(), vsw_deliver() and
 * vsw_stage_one() per frame were 21 % of the worker's cycles.
 *
 * plain_len, if not 0: no frame of the run asks anything of the port and
 * none is longer than plain_len (what admit() found for the whole chunk).
 * If the port takes that length and does not write to frames, nothing is
 * left to judge per frame: the run is copied into the batch as it is.
 */
static void stage_run(struct vsw_worker *w, struct vsw_port *out, struct rte_mbuf **ms,
                      unsigned k, uint32_t plain_len)
{
    if (__atomic_load_n(&out->capture, __ATOMIC_ACQUIRE) ||
        __atomic_load_n(&out->mirror_to, __ATOMIC_RELAXED) ||
        (out->cls->inband_vlan && vsw_port_tx_vlan(out, ms[0]))) {
        for (unsigned i = 0; i < k; i++)
            stage(w, out, ms[i]);
        return;
    }
    const uint32_t max = __atomic_load_n(&out->max_frame, __ATOMIC_RELAXED);
    const bool writes = out->cls->tx_writes;
    struct vsw_stage *st = stage_of(w, out);
    if (plain_len && plain_len <= max && !writes) {
        while (k) {
            if (st->n == VSW_STAGE)
                w->sent_early += flush_stage(w, st);
            unsigned take = RTE_MIN(k, (unsigned)(VSW_STAGE - st->n));
            memcpy(&st->pkts[st->n], ms, take * sizeof(ms[0]));
            st->n = (uint16_t)(st->n + take);
            ms += take;
            k -= take;
        }
        return;
    }
    /* The batch's count in a register: kept in st->n, it is a store and a
     * load per frame, one waiting on the other (perf: the loop's hottest
     * instruction). st->n is exact whenever anything else may use it. */
    uint16_t n = st->n;
    for (unsigned i = 0; i < k; i++) {
        struct rte_mbuf *m = ms[i];
        if (unlikely(vsw_egress_len(m) > max)) {
            vsw_port_drop(out, VSW_DROP_TOO_BIG, 1);
            rte_pktmbuf_free(m);
        } else if (unlikely((m->ol_flags & (RTE_MBUF_F_TX_TCP_SEG | VSW_TX_CSUM_FLAGS)) ||
                            (writes && !vsw_mbuf_writable(m)))) {
            st->n = n;
            vsw_deliver(w, out, m, 0);
            n = st->n;
        } else {
            if (unlikely(n == VSW_STAGE)) {
                st->n = n;
                w->sent_early += flush_stage(w, st);
                n = st->n;
            }
            st->pkts[n++] = m;
        }
    }
    st->n = n;
}

/* Ask the control thread to learn src on in, unless asked recently while
 * the FDB said the same thing (seen: the port index it has for src, or
 * UINT16_MAX). A request answered since, and overtaken by a move to
 * another port, is not "asked recently": the station moved back. */
static void request_learn(struct vsw_worker *w, struct vsw_switch *sw, struct vsw_port *in,
                          const struct rte_ether_addr *src, uint16_t vlan, uint16_t seen,
                          uint32_t now)
{
    uint64_t tag = 0;
    memcpy(&tag, src->addr_bytes, 6);
    tag ^= ((uint64_t)vlan << 48) ^ ((uint64_t)in->index << 52) ^ ((uint64_t)sw->id << 40);
    uint32_t h = rte_hash_crc_8byte(tag, 0) % VSW_LEARN_CACHE;
    if (w->learn_cache[h] == tag && w->learn_cache_seen[h] == seen &&
        now - w->learn_cache_ts[h] < 1)
        return;
    w->learn_cache[h] = tag;
    w->learn_cache_seen[h] = seen;
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

static void flood(struct vsw_worker *w, const struct vsw_port_set *set, struct vsw_port *in,
                  struct rte_mbuf *m)
{
    struct vsw_port *outs[VSW_MAX_PORTS];
    unsigned k = 0;
    uint16_t vid = m->vlan_tci & 0xfff;
    for (unsigned i = 0; i < set->n; i++) {
        struct vsw_port *p = set->ports[i];
        if (p != in && vsw_port_link(p) && vlan_ok(&policy_of(p)->rt.pol, vid))
            outs[k++] = p;
    }
    if (k == 0) {
        vsw_port_drop(in, VSW_DROP_NO_DEST, 1);
        rte_pktmbuf_free(m);
        return;
    }
    if (k > 1)
        rte_pktmbuf_refcnt_update(m, (int16_t)(k - 1));
    for (unsigned i = 0; i < k; i++)
        stage(w, outs[i], m);
}

/* Take len bytes of tags out from behind the MAC addresses, in place (the
 * mbuf is ours alone at ingress): the 12 address bytes move up, the rest of
 * the frame stays where it is. The tags must lie in the first segment. */
static inline bool strip_tags(struct rte_mbuf *m, uint16_t len)
{
    if (unlikely(m->data_len < RTE_ETHER_HDR_LEN + len))
        return false;
    uint8_t *old = rte_pktmbuf_mtod(m, uint8_t *);
    memmove(old + len, old, 2 * RTE_ETHER_ADDR_LEN);
    rte_pktmbuf_adj(m, len);
    return true;
}

/*
 * The frame's VLAN by the ingress port's policy, from all its tags (the tag
 * rule of vsw-frame.h: priority tags skipped, one VLAN tag at most, 802.1Q
 * only). Every tag is then taken out of the frame, priority tags included,
 * so that every later stage (guards, spoofing check, limits, learning) and
 * every receiver sees the same frame: the one a receiver that strips
 * priority tags, as Linux does, would see. The VLAN travels on as
 * m->vlan_tci; the priority bits are not kept. Checksum offsets follow the
 * frame (l2_len). Returns false if the port may not send the frame.
 */
static bool classify_vlan(const struct vsw_port_policy *pol, struct rte_mbuf *m)
{
    struct vsw_l2_info l2;
    vsw_l2_parse(m, &l2);
    m->ol_flags &= ~(RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED);
    if (unlikely(l2.refused))
        return false;
    uint16_t vid;
    if (pol->trunk) {
        /* Untagged frames join the native VLAN; native VLAN 0 is the
         * untagged network, the one NICs without a VLAN are on. */
        vid = l2.tagged ? (l2.tci & 0xfff) : pol->native_vlan;
        if (l2.tagged && vid != pol->native_vlan && !vsw_policy_allowed(pol, vid))
            return false;
    } else {
        if (l2.tagged)
            return false;
        vid = pol->access_vlan;
    }
    if (l2.tags_len) {
        if (!strip_tags(m, l2.tags_len))
            return false;
        if (m->ol_flags & VSW_TX_CSUM_FLAGS)
            m->l2_len = RTE_ETHER_HDR_LEN;
    }
    m->vlan_tci = vid;
    return true;
}

/* DHCP server messages (to a client port) and router advertisements or
 * redirects. The frame is untagged here: classify_vlan() took every tag out. */
enum guard_hit { GUARD_NONE, GUARD_DHCP, GUARD_ROUTER };

static enum guard_hit guard_check(const struct vsw_port_policy *pol, const struct rte_mbuf *m)
{
    const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
    uint16_t et = rte_be_to_cpu_16(eth->ether_type);
    uint8_t buf[64];
    if (et == RTE_ETHER_TYPE_IPV4) {
        const struct rte_ipv4_hdr *ip =
            rte_pktmbuf_read(m, RTE_ETHER_HDR_LEN, sizeof(*ip), buf);
        if (!ip || (rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK))
            return GUARD_NONE;
        uint32_t ihl = (ip->version_ihl & 0xf) * 4u;
        uint32_t l4 = RTE_ETHER_HDR_LEN + ihl;
        if (ihl < 20)
            return GUARD_NONE;
        if (pol->dhcp_guard && ip->next_proto_id == IPPROTO_UDP) {
            uint8_t ub[8];
            const struct rte_udp_hdr *u = rte_pktmbuf_read(m, l4, sizeof(*u), ub);
            if (u && u->src_port == rte_cpu_to_be_16(67) && u->dst_port == rte_cpu_to_be_16(68))
                return GUARD_DHCP;
        }
        if (pol->router_guard && ip->next_proto_id == IPPROTO_ICMP) {
            uint8_t t;
            const uint8_t *type = rte_pktmbuf_read(m, l4, 1, &t);
            /* Redirect (5), router advertisement (9). */
            if (type && (*type == 5 || *type == 9))
                return GUARD_ROUTER;
        }
    } else if (et == RTE_ETHER_TYPE_IPV6) {
        const struct rte_ipv6_hdr *ip6 =
            rte_pktmbuf_read(m, RTE_ETHER_HDR_LEN, sizeof(*ip6), buf);
        if (!ip6)
            return GUARD_NONE;
        uint32_t l4 = RTE_ETHER_HDR_LEN + sizeof(*ip6);
        uint8_t nh = ip6->proto;
        /* Walk the extension headers to the upper layer: an RA behind a
         * hop-by-hop or destination-options header is still an RA
         * (RFC 7113). A later fragment carries no upper-layer header; a
         * chain that cannot be followed (truncated, too long, a first
         * fragment without the upper layer) is treated as a hit, as
         * RFC 7113 advises for RA guard. */
        for (int hops = 0;; hops++) {
            if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS &&
                nh != IPPROTO_FRAGMENT && nh != IPPROTO_AH)
                break;
            uint8_t hb[8];
            const uint8_t *h = rte_pktmbuf_read(m, l4, nh == IPPROTO_FRAGMENT ? 8 : 2, hb);
            if (!h || hops == 8)
                return pol->router_guard ? GUARD_ROUTER : GUARD_DHCP;
            if (nh == IPPROTO_FRAGMENT) {
                if (rte_be_to_cpu_16(*(const unaligned_uint16_t *)(h + 2)) & 0xfff8)
                    return GUARD_NONE; /* not the first fragment */
                l4 += 8;
            } else {
                l4 += nh == IPPROTO_AH ? ((uint32_t)h[1] + 2) * 4 : ((uint32_t)h[1] + 1) * 8;
            }
            nh = h[0];
        }
        if (pol->dhcp_guard && nh == IPPROTO_UDP) {
            uint8_t ub[8];
            const struct rte_udp_hdr *u = rte_pktmbuf_read(m, l4, sizeof(*u), ub);
            if (u && u->src_port == rte_cpu_to_be_16(547) && u->dst_port == rte_cpu_to_be_16(546))
                return GUARD_DHCP;
        }
        if (pol->router_guard && nh == IPPROTO_ICMPV6) {
            uint8_t t;
            const uint8_t *type = rte_pktmbuf_read(m, l4, 1, &t);
            /* Router advertisement (134), redirect (137). */
            if (type && (*type == 134 || *type == 137))
                return GUARD_ROUTER;
        }
    }
    return GUARD_NONE;
}

/* Ingress limits: bandwidth (srTCM meter, red dropped) and broadcast /
 * multicast frames per second. Owner worker only. */
static enum vsw_drop limit_check(struct vsw_policy_full *pf, const struct rte_mbuf *m, bool bcast,
                                 uint64_t now_tsc, uint64_t hz)
{
    if (pf->rt.pol.storm_pps && bcast) {
        if (now_tsc - pf->storm_start >= hz) {
            pf->storm_start = now_tsc;
            pf->storm_count = 0;
        }
        if (++pf->storm_count > pf->rt.pol.storm_pps)
            return VSW_DROP_STORM;
    }
    if (pf->metered &&
        rte_meter_srtcm_color_blind_check(&pf->meter, &pf->prof, now_tsc, m->pkt_len) ==
            RTE_COLOR_RED)
        return VSW_DROP_RATE_LIMIT;
    return VSW_DROP_COUNT;
}

/* The frames of one chunk of a burst that passed admission, with their
 * FDB keys to look up: the source keys, and the destination keys of the
 * unicast frames, each run of equal keys once (frame i's are src[src_at[i]]
 * and dst[dst_at[i]]; dst_at[i] is -1 if the frame floods). */
struct fwd_chunk {
    unsigned n;
    unsigned nsrc;
    unsigned ndst;
    struct rte_mbuf *m[VSW_FWD_CHUNK];
    struct fdb_key src[VSW_FWD_CHUNK];
    struct fdb_key dst[VSW_FWD_CHUNK];
    uint8_t src_at[VSW_FWD_CHUNK];
    int8_t dst_at[VSW_FWD_CHUNK];
    /* Not 0: no frame asks for an offload, none is longer than this. */
    uint32_t plain_len;
};

/* The FDB key of the MAC address at mac inside an Ethernet header (two
 * more bytes of frame follow it, the source's ethertype or the source MAC):
 * one 8-byte load with the VLAN put over the last two bytes, the layout of
 * struct fdb_key. Built in a register and stored once: a key written as 6 +
 * 2 bytes and read back as 8 stalls on store forwarding, which perf showed
 * as 40 % of vsw_forward's samples on the comparison in key_index(). */
static inline uint64_t frame_key(const uint8_t *mac, uint16_t vlan)
{
    uint64_t v;
    memcpy(&v, mac, sizeof(v));
#if RTE_BYTE_ORDER == RTE_LITTLE_ENDIAN
    return (v & 0x0000ffffffffffffull) | ((uint64_t)vlan << 48);
#else
    return (v & 0xffffffffffff0000ull) | vlan;
#endif
}

/* Is the MAC address of key k 00:00:00:00:00:00? */
static inline bool key_mac_is_zero(uint64_t k)
{
#if RTE_BYTE_ORDER == RTE_LITTLE_ENDIAN
    return (k & 0x0000ffffffffffffull) == 0;
#else
    return (k & 0xffffffffffff0000ull) == 0;
#endif
}

/* Where key k is in keys[0..*n): the last key if it is k, else a new last
 * key. Frames of a burst mostly repeat the frame before's keys (a VM sends
 * from one MAC; a flow's frames come together): each run of equal keys is
 * then looked up once. Only the last key is compared, one 64-bit compare a
 * frame. */
static inline unsigned key_index(struct fdb_key *keys, unsigned *n, uint64_t *last, uint64_t k)
{
    if (*n && *last == k)
        return *n - 1;
    *last = k;
    memcpy(&keys[*n], &k, sizeof(k));
    return (*n)++;
}

/* The per-frame checks before switching: runt, ingress capture, VLAN
 * classification, size, source MAC, spoofing, guards, limits. A frame that
 * fails one is counted and freed; one that passes is counted received and
 * added to c with its keys. */
static void admit(struct vsw_dp *dp, struct vsw_port *in, struct vsw_policy_full *pf,
                  struct vsw_capture *cap, uint64_t now_tsc, struct rte_mbuf **pkts, uint16_t n,
                  struct fwd_chunk *c)
{
    const struct vsw_port_policy *pol = &pf->rt.pol;
    bool guarded = pol->dhcp_guard || pol->router_guard;
    bool limited = pf->metered || pol->storm_pps;
    struct vsw_port_counters *rxc = &in->counters[rte_lcore_id()];
    uint64_t last_src = 0, last_dst = 0, bytes = 0, flags = 0;
    /* Counts in locals, stored once: as fields of c they were a load and
     * a store per frame each (and so were the port's receive counters). */
    unsigned k = 0, nsrc = 0, ndst = 0;
    /* Read once a chunk: a change reaches the next chunk. */
    const uint32_t rx_max = __atomic_load_n(&in->rx_max_frame, __ATOMIC_RELAXED);
    const bool spoof_guard = pol->spoof_guard;
    for (uint16_t i = 0; i < n; i++) {
        struct rte_mbuf *m = pkts[i];
        if (m->data_len < RTE_ETHER_HDR_LEN) {
            vsw_port_drop(in, VSW_DROP_RUNT, 1);
            rte_pktmbuf_free(m);
            continue;
        }
        if (cap) {
            /* As received: in-band tags are still in the frame; an
             * out-of-band one goes back in for the capture, outermost. */
            capture(dp, cap, m, (m->ol_flags & RTE_MBUF_F_RX_VLAN) ? m->vlan_tci : 0);
        }
        if (!classify_vlan(pol, m)) {
            vsw_port_drop(in, VSW_DROP_VLAN, 1);
            rte_pktmbuf_free(m);
            continue;
        }
        /* Longer than this port's MTU allows (its tags are out of the
         * frame now): the sender's MTU is above the switch's. Dropped here, where
         * it happened, rather than counted on whichever port it was for. A
         * large TCP segment is as long as the segments it becomes. */
        if (unlikely(vsw_egress_len(m) > rx_max)) {
            vsw_port_drop(in, VSW_DROP_RX_TOO_BIG, 1);
            rte_pktmbuf_free(m);
            continue;
        }
        const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
        const uint64_t skey = frame_key(eth->src_addr.addr_bytes, m->vlan_tci);
        if (rte_is_multicast_ether_addr(&eth->src_addr) || key_mac_is_zero(skey)) {
            vsw_port_drop(in, VSW_DROP_BAD_SRC_MAC, 1);
            rte_pktmbuf_free(m);
            continue;
        }
        if (spoof_guard && memcmp(eth->src_addr.addr_bytes, pol->own_mac, 6) != 0) {
            vsw_port_drop(in, VSW_DROP_MAC_SPOOF, 1);
            rte_pktmbuf_free(m);
            continue;
        }
        if (guarded) {
            enum guard_hit g = guard_check(pol, m);
            if (g != GUARD_NONE) {
                vsw_port_drop(in, g == GUARD_DHCP ? VSW_DROP_DHCP_GUARD : VSW_DROP_ROUTER_GUARD,
                              1);
                rte_pktmbuf_free(m);
                continue;
            }
        }
        bool bcast = rte_is_multicast_ether_addr(&eth->dst_addr);
        if (limited) {
            enum vsw_drop d = limit_check(pf, m, bcast, now_tsc, dp->tsc_hz);
            if (d != VSW_DROP_COUNT) {
                vsw_port_drop(in, d, 1);
                rte_pktmbuf_free(m);
                continue;
            }
        }
        bytes += m->pkt_len;
        flags |= m->ol_flags;
        c->m[k] = m;
        c->src_at[k] = (uint8_t)key_index(c->src, &nsrc, &last_src, skey);
        c->dst_at[k] = bcast ? -1
                             : (int8_t)key_index(c->dst, &ndst, &last_dst,
                                                 frame_key(eth->dst_addr.addr_bytes, m->vlan_tci));
        k++;
    }
    rxc->rx_packets += k;
    rxc->rx_bytes += bytes;
    c->n = k;
    c->nsrc = nsrc;
    c->ndst = ndst;
    /* Every frame admitted is at most rx_max long (as it leaves). */
    c->plain_len = (flags & (RTE_MBUF_F_TX_TCP_SEG | VSW_TX_CSUM_FLAGS)) ? 0 : rx_max;
}

/* Positions of n keys in the FDB (negative: not there), one bulk lookup:
 * rte_hash then probes the buckets of all of them together, prefetching
 * ahead, where a lookup per key waits on each bucket's cache miss in
 * turn. The hashes are computed here, inline (vsw_fdb_hash, the table's own
 * hash function), rather than through rte_hash's function pointer. */
static void fdb_lookup_bulk(const struct vsw_fdb_tab *fdb, const struct fdb_key *keys,
                            unsigned n, int32_t *pos)
{
    const void *kp[VSW_FWD_CHUNK];
    hash_sig_t sig[VSW_FWD_CHUNK];
    if (n == 0)
        return;
    if (n == 1) {
        /* One key (a burst of one flow, the common case): rte_hash's
         * single lookup. Its bulk lookup of one key is several times
         * dearer (perf on hv-null-bench: librte_hash 10.7 % of the
         * worker's samples with it, 1.4 % with this). */
        *pos = rte_hash_lookup_with_hash(fdb->h, &keys[0], vsw_fdb_hash(&keys[0]));
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        kp[i] = &keys[i];
        sig[i] = vsw_fdb_hash(&keys[i]);
    }
    rte_hash_lookup_with_hash_bulk(fdb->h, kp, sig, n, pos);
}

/* Learn (or refresh) the source of m, which came in on in. */
static inline void learn_src(struct vsw_worker *w, struct vsw_switch *sw, struct vsw_port *in,
                             const struct vsw_fdb_tab *fdb, int32_t pos,
                             const struct rte_ether_addr *src, uint16_t vid, uint32_t now)
{
    struct vsw_dp *dp = w->dp;
    if (pos >= 0 && (uint32_t)pos < fdb->nslots) {
        struct fdb_slot *s = &fdb->slots[pos];
        uint16_t pi = __atomic_load_n(&s->port_index, __ATOMIC_ACQUIRE);
        if (pi != in->index || s->port_gen != dp->port_gen[in->index]) {
            if (!s->is_static)
                request_learn(w, sw, in, src, vid, pi, now);
        } else if (__atomic_load_n(&s->last_seen, __ATOMIC_RELAXED) != now) {
            __atomic_store_n(&s->last_seen, now, __ATOMIC_RELAXED);
        }
    } else {
        request_learn(w, sw, in, src, vid, UINT16_MAX, now);
    }
}

/* The port the FDB position says a unicast frame goes to, or NULL. */
static inline struct vsw_port *dst_port(const struct vsw_dp *dp, const struct vsw_switch *sw,
                                        const struct vsw_fdb_tab *fdb, int32_t pos)
{
    struct vsw_port *out = NULL;
    if (pos >= 0 && (uint32_t)pos < fdb->nslots) {
        const struct fdb_slot *s = &fdb->slots[pos];
        uint16_t pi = __atomic_load_n(&s->port_index, __ATOMIC_ACQUIRE);
        if (pi < VSW_MAX_PORTS && dp->port_gen[pi] == s->port_gen)
            out = __atomic_load_n(&dp->ports[pi], __ATOMIC_ACQUIRE);
        if (out && out->sw != sw)
            out = NULL;
    }
    return out;
}

enum ucast { UCAST_FLOOD, UCAST_HAIRPIN, UCAST_LINK_DOWN, UCAST_VLAN, UCAST_TO };

/* What a unicast frame on VLAN vid from in does, its destination being at
 * FDB position pos: flooded (unknown), dropped (hairpin, destination's link
 * down, destination not on vid) or sent to *out. */
static inline enum ucast unicast(const struct vsw_dp *dp, const struct vsw_switch *sw,
                                 const struct vsw_fdb_tab *fdb, const struct vsw_port *in,
                                 int32_t pos, uint16_t vid, struct vsw_port **out)
{
    struct vsw_port *o = dst_port(dp, sw, fdb, pos);
    *out = o;
    if (!o)
        return UCAST_FLOOD;
    if (o == in)
        return UCAST_HAIRPIN;
    if (!vsw_port_link(o))
        return UCAST_LINK_DOWN;
    /* Learned on another VLAN's port (a static entry, or a policy that
     * changed since): never across VLANs. */
    if (!vlan_ok(&policy_of(o)->rt.pol, vid))
        return UCAST_VLAN;
    return UCAST_TO;
}

/*
 * A burst in chunks of VSW_FWD_CHUNK frames, each in three steps: admit
 * every frame (checks, VLAN, keys), look up the chunk's source keys and
 * destination keys in two bulk lookups (a run of equal keys once), then
 * learn and forward frame by frame in arrival order. Only the control
 * thread writes the FDB (learning is a request to it), so looking a key up
 * a few frames earlier than a frame-at-a-time loop would sees the same
 * table.
 */
void vsw_forward(struct vsw_worker *w, struct vsw_port *in, struct rte_mbuf **pkts, uint16_t n)
{
    struct vsw_dp *dp = w->dp;
    struct vsw_switch *sw = in->sw;
    const struct vsw_port_set *set = __atomic_load_n(&sw->ports, __ATOMIC_ACQUIRE);
    struct vsw_fdb_tab *fdb = __atomic_load_n(&sw->fdb, __ATOMIC_ACQUIRE);
    struct vsw_policy_full *pf = policy_of(in);
    struct vsw_capture *cap = __atomic_load_n(&in->capture, __ATOMIC_ACQUIRE);
    bool mirrored = __atomic_load_n(&in->mirror_to, __ATOMIC_RELAXED) != NULL;
    uint64_t now_tsc = w->round_tsc;
    uint32_t now = (uint32_t)(now_tsc / dp->tsc_hz);
    struct fwd_chunk c;
    int32_t spos[VSW_FWD_CHUNK], dpos[VSW_FWD_CHUNK];

    for (uint16_t off = 0; off < n; off += VSW_FWD_CHUNK) {
        uint16_t len = n - off < VSW_FWD_CHUNK ? n - off : VSW_FWD_CHUNK;
        for (uint16_t i = 0; i < len; i++)
            rte_prefetch0(rte_pktmbuf_mtod(pkts[off + i], void *));
        admit(dp, in, pf, cap, now_tsc, pkts + off, len, &c);
        if (c.n == 0)
            continue;
        fdb_lookup_bulk(fdb, c.src, c.nsrc, spos);
        fdb_lookup_bulk(fdb, c.dst, c.ndst, dpos);
        /* Frames with the key of the frame before share its answers:
         * the source was learned or refreshed by the first of them (a
         * refresh writes the second; the learning request is one per
         * second per worker anyway), and the destination's verdict is
         * the same. */
        int prev_src = -1, prev_dst = -1;
        enum ucast verdict = UCAST_FLOOD;
        struct vsw_port *out = NULL;
        for (unsigned i = 0; i < c.n; i++) {
            struct rte_mbuf *m = c.m[i];
            if (mirrored)
                stage_mirror(w, in, m);
            if (c.src_at[i] != prev_src) {
                const struct rte_ether_hdr *eth =
                    rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
                prev_src = c.src_at[i];
                learn_src(w, sw, in, fdb, spos[prev_src], &eth->src_addr, m->vlan_tci, now);
            }
            if (c.dst_at[i] < 0) {
                flood(w, set, in, m);
                continue;
            }
            if (c.dst_at[i] != prev_dst) {
                prev_dst = c.dst_at[i];
                verdict = unicast(dp, sw, fdb, in, dpos[prev_dst], m->vlan_tci, &out);
            }
            switch (verdict) {
            case UCAST_FLOOD:
                flood(w, set, in, m);
                break;
            case UCAST_HAIRPIN:
                vsw_port_drop(in, VSW_DROP_HAIRPIN, 1);
                rte_pktmbuf_free(m);
                break;
            case UCAST_LINK_DOWN:
                vsw_port_drop(out, VSW_DROP_LINK_DOWN, 1);
                rte_pktmbuf_free(m);
                break;
            case UCAST_VLAN:
                vsw_port_drop(out, VSW_DROP_VLAN, 1);
                rte_pktmbuf_free(m);
                break;
            case UCAST_TO: {
                /* The frames after it with the same destination key go
                 * with it (their sources learned first, as one by one):
                 * staged together, in order. Not when the ingress port
                 * is mirrored, whose copies go frame by frame between. */
                unsigned j = i + 1;
                if (!mirrored) {
                    for (; j < c.n && c.dst_at[j] == prev_dst; j++) {
                        if (c.src_at[j] != prev_src) {
                            const struct rte_ether_hdr *ej =
                                rte_pktmbuf_mtod(c.m[j], const struct rte_ether_hdr *);
                            prev_src = c.src_at[j];
                            learn_src(w, sw, in, fdb, spos[prev_src], &ej->src_addr,
                                      c.m[j]->vlan_tci, now);
                        }
                    }
                }
                stage_run(w, out, &c.m[i], j - i, c.plain_len);
                i = j - 1;
                break;
            }
            }
        }
    }
}

/* Send what st holds: tx_burst if this worker owns the port, else its
 * hand-off ring. Returns frames given to tx_burst. */
static unsigned flush_stage(struct vsw_worker *w, struct vsw_stage *st)
{
    struct vsw_dp *dp = w->dp;
    struct vsw_port *out = st->port;
    uint16_t n = st->n;
    st->n = 0;
    if (__atomic_load_n(&dp->ports[st - w->stage], __ATOMIC_ACQUIRE) != out) {
        /* Detached since this round staged for it; the port itself
         * stays valid until the round ends. */
        vsw_port_drop(out, VSW_DROP_LINK_DOWN, n);
        rte_pktmbuf_free_bulk(st->pkts, n);
        return 0;
    }
    /* The direct sender, not the owner: while the port moves there is
     * none, and everyone's frames wait in its ring (vsw_port_move()). */
    uint16_t sender = __atomic_load_n(&out->tx_worker, __ATOMIC_RELAXED);
    if (sender == w->idx) {
        out->cls->tx_burst(out, st->pkts, n);
        return n;
    }
    unsigned done = rte_ring_mp_enqueue_burst(out->handoff, (void **)st->pkts, n, NULL);
    if (done < n) {
        vsw_port_drop(out, VSW_DROP_QUEUE_FULL, n - done);
        rte_pktmbuf_free_bulk(st->pkts + done, n - done);
    }
    /* Pairs with the owner's "sleeping = true; fence; check rings", and
     * orders the enqueue before the read of the owner: a sender that
     * still reads the old owner of a moving port has its frames in the
     * ring before the move's second step, so the new owner's take-over
     * sends them. Read before the fence (as it was), the owner could be
     * the old one while the frames were not yet visible to the new one's
     * take-over and its check before sleeping: it slept up to its nap
     * (100 ms) with them in its ring. */
    rte_atomic_thread_fence(__ATOMIC_SEQ_CST);
    /* The owner as published: while the port moves, the old one until the
     * new one lists it; the control thread wakes the new one then. */
    struct vsw_worker *owner = &dp->workers[__atomic_load_n(&out->worker, __ATOMIC_RELAXED)];
    if (done && __atomic_load_n(&owner->sleeping, __ATOMIC_RELAXED)) {
        uint64_t one = 1;
        if (write(owner->wake_fd, &one, sizeof(one)) < 0) {
            /* eventfd counter saturated: the owner is awake anyway */
        }
    }
    return 0;
}

unsigned vsw_flush_stages(struct vsw_worker *w)
{
    unsigned sent = w->sent_early;
    w->sent_early = 0;
    for (uint16_t t = 0; t < w->ntouched; t++) {
        struct vsw_stage *st = &w->stage[w->touched[t]];
        st->listed = false;
        if (st->n)
            sent += flush_stage(w, st);
    }
    w->ntouched = 0;
    return sent;
}
