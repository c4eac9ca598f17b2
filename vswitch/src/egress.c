/*
 * Egress: making each frame fit the port it leaves by. By the port's
 * capability word (vsw-port-provider.h), a large TCP segment is cut for a
 * port that does not take it whole and checksum requests are finished for
 * a port that does not take them, per port, never writing to an mbuf other
 * ports may share.
 */
#include <errno.h>

#include <rte_gso.h>
#include <rte_ip.h>
#include <rte_memcpy.h>
#include <rte_tcp.h>

#include "vsw-frame.h"
#include "vsw-private.h"

/* A copy of m for one consumer, with the port's tag back in the frame if
 * the port carries tags in-band. NULL if out of mbufs. */
struct rte_mbuf *vsw_wire_copy(struct rte_mempool *pool, struct rte_mbuf *m, uint16_t tag)
{
    struct rte_mbuf *c = rte_pktmbuf_copy(m, pool, 0, UINT32_MAX);
    if (!c)
        return NULL;
    if (tag) {
        c->vlan_tci = tag;
        if (rte_vlan_insert(&c) != 0) {
            rte_pktmbuf_free(c);
            return NULL;
        }
    }
    return c;
}

/*
 * Finish in software the checksum requests of m (private) among which;
 * NULL if m was dropped (freed and counted on out). A finished L4 checksum
 * makes the frame "verified" for receivers that ask (contract C).
 */
static struct rte_mbuf *finish_csum(struct vsw_worker *w, struct vsw_port *out,
                                    struct rte_mbuf *m, uint64_t which)
{
    const bool l4 = which & m->ol_flags & RTE_MBUF_F_TX_L4_MASK;
    const bool v4 = m->ol_flags & RTE_MBUF_F_TX_IPV4;
    int rc = vsw_frame_cksum_finish(m, which);
    if (rc == -EAGAIN) {
        /* Headers across segments, or a chain DPDK's checksum cannot sum
         * in place (vsw-frame.h): a copy in full segments can. */
        struct rte_mbuf *c = rte_pktmbuf_copy(m, w->dp->pool, 0, UINT32_MAX);
        rte_pktmbuf_free(m);
        if (!c) {
            vsw_port_drop(out, VSW_DROP_NO_MBUF, 1);
            return NULL;
        }
        m = c;
        rc = vsw_frame_cksum_finish(m, which);
    }
    if (rc < 0) {
        vsw_port_drop(out, VSW_DROP_OFFLOAD, 1);
        rte_pktmbuf_free(m);
        return NULL;
    }
    if (l4) {
        m->ol_flags = (m->ol_flags & ~(RTE_MBUF_F_RX_L4_CKSUM_MASK | RTE_MBUF_F_RX_IP_CKSUM_MASK)) |
                      RTE_MBUF_F_RX_L4_CKSUM_GOOD | (v4 ? RTE_MBUF_F_RX_IP_CKSUM_GOOD : 0);
    }
    return m;
}

/* Segments one large TCP segment may become for a port that does not take
 * it whole: 64 KiB at an MSS of 256 bytes. A frame that would need more is
 * refused (VSW_DROP_OFFLOAD) rather than taking hundreds of mbufs of the
 * pool: TCP senders do not ask for that. */
#define VSW_SEGS_MAX 256

int vsw_attach_range(struct rte_mempool *pool, struct rte_mbuf *s, struct rte_mbuf *m,
                     uint32_t off, uint32_t len)
{
    struct rte_mbuf *seg = m;
    while (seg && off >= seg->data_len) {
        off -= seg->data_len;
        seg = seg->next;
    }
    for (; len && seg; seg = seg->next, off = 0) {
        const uint32_t k = RTE_MIN(len, (uint32_t)seg->data_len - off);
        struct rte_mbuf *ind = rte_pktmbuf_alloc(pool);
        if (!ind)
            return -ENOMEM;
        rte_pktmbuf_attach(ind, seg);
        ind->data_off = (uint16_t)(ind->data_off + off);
        ind->data_len = (uint16_t)k;
        ind->pkt_len = k;
        if (rte_pktmbuf_chain(s, ind) != 0) {
            rte_pktmbuf_free(ind);
            return -ENOMEM;
        }
        len -= k;
    }
    return len ? -ENOMEM : 0;
}

/*
 * Cut a TCP/IPv6 large segment into segs, the way DPDK's GSO cuts TCP/IPv4
 * (cut()): each segment a copy of the headers, with its payload length,
 * sequence number and flags (FIN and PSH on the last only) set, chained to
 * indirect mbufs over its part of m's payload. DPDK 22.11's GSO has no
 * TCP/IPv6. Returns the count or -ENOMEM (nothing left allocated).
 */
static int cut_tcp6(struct rte_mempool *pool, struct rte_mbuf *m, struct rte_mbuf **segs)
{
    const uint32_t l4_off = (uint32_t)m->l2_len + m->l3_len, hdr = l4_off + m->l4_len;
    const uint32_t payload = m->pkt_len - hdr, mss = m->tso_segsz;
    const struct rte_tcp_hdr *th = rte_pktmbuf_mtod_offset(m, const struct rte_tcp_hdr *, l4_off);
    const uint32_t seq0 = rte_be_to_cpu_32(th->sent_seq);
    int n = 0;
    for (uint32_t off = 0; off < payload; off += mss) {
        const uint32_t len = RTE_MIN(mss, payload - off);
        struct rte_mbuf *s = rte_pktmbuf_copy(m, pool, 0, hdr);
        if (!s || vsw_attach_range(pool, s, m, hdr + off, len) != 0) {
            rte_pktmbuf_free(s);
            rte_pktmbuf_free_bulk(segs, (unsigned)n);
            return -ENOMEM;
        }
        struct rte_ipv6_hdr *ip = rte_pktmbuf_mtod_offset(s, struct rte_ipv6_hdr *, m->l2_len);
        struct rte_tcp_hdr *t = rte_pktmbuf_mtod_offset(s, struct rte_tcp_hdr *, l4_off);
        ip->payload_len = rte_cpu_to_be_16((uint16_t)(m->l3_len - sizeof(*ip) + m->l4_len + len));
        t->sent_seq = rte_cpu_to_be_32(seq0 + off);
        if (off + len < payload)
            t->tcp_flags &= (uint8_t)~(RTE_TCP_FIN_FLAG | RTE_TCP_PSH_FLAG);
        segs[n++] = s;
    }
    return n;
}

/*
 * Cut m, a large TCP segment (IPv4 or IPv6) of n segments, into segs, each
 * one mbuf of pool holding a copy of the headers and of its part of the
 * payload: for a port that copies or sums every byte of a frame anyway
 * (VSW_TX_LINEAR), one copy here replaces a header mbuf and indirect mbufs
 * per segment that the port would copy again before summing them. The
 * headers are fixed as DPDK's GSO fixes them (cut_tcp6() and rte_gso):
 * IPv4 total length and ids counting up, IPv6 payload length, sequence
 * numbers, FIN and PSH on the last segment only. Returns n, or -ENOMEM
 * (nothing left allocated).
 */
static int cut_linear(struct rte_mempool *pool, const struct rte_mbuf *m, struct rte_mbuf **segs,
                      unsigned n)
{
    const uint32_t l4_off = (uint32_t)m->l2_len + m->l3_len, hdr = l4_off + m->l4_len;
    const uint32_t payload = m->pkt_len - hdr, mss = m->tso_segsz;
    const bool v4 = m->ol_flags & RTE_MBUF_F_TX_IPV4;
    if (rte_pktmbuf_alloc_bulk(pool, segs, n) != 0)
        return -ENOMEM;
    /* Headers are in the first segment (contract B, checked by the
     * producer); the payload is walked once across m's chain. */
    const uint8_t *h = rte_pktmbuf_mtod(m, const uint8_t *);
    const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)(h + l4_off);
    const uint32_t seq0 = rte_be_to_cpu_32(th->sent_seq);
    const uint16_t id0 = v4 ? rte_be_to_cpu_16(((const struct rte_ipv4_hdr *)(h + m->l2_len))->packet_id) : 0;
    const struct rte_mbuf *src = m;
    uint32_t src_off = hdr;
    while (src && src_off >= src->data_len) {
        src_off -= src->data_len;
        src = src->next;
    }
    uint32_t off = 0;
    for (unsigned i = 0; i < n; i++, off += mss) {
        const uint32_t len = RTE_MIN(mss, payload - off);
        struct rte_mbuf *s = segs[i];
        uint8_t *d = rte_pktmbuf_mtod(s, uint8_t *);
        rte_memcpy(d, h, hdr);
        for (uint32_t done = 0; done < len && src;) {
            const uint32_t k = RTE_MIN(len - done, (uint32_t)src->data_len - src_off);
            rte_memcpy(d + hdr + done, rte_pktmbuf_mtod_offset(src, const uint8_t *, src_off), k);
            done += k;
            src_off += k;
            if (src_off == src->data_len) {
                src = src->next;
                src_off = 0;
            }
        }
        s->data_len = (uint16_t)(hdr + len);
        s->pkt_len = hdr + len;
        if (v4) {
            struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(d + m->l2_len);
            ip->total_length = rte_cpu_to_be_16((uint16_t)(m->l3_len + m->l4_len + len));
            ip->packet_id = rte_cpu_to_be_16((uint16_t)(id0 + i));
        } else {
            struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)(d + m->l2_len);
            ip->payload_len = rte_cpu_to_be_16((uint16_t)(m->l3_len - sizeof(*ip) + m->l4_len + len));
        }
        struct rte_tcp_hdr *t = (struct rte_tcp_hdr *)(d + l4_off);
        t->sent_seq = rte_cpu_to_be_32(seq0 + off);
        if (i + 1 < n)
            t->tcp_flags &= (uint8_t)~(RTE_TCP_FIN_FLAG | RTE_TCP_PSH_FLAG);
    }
    return (int)n;
}

/*
 * Cut m (one reference; consumed), a large TCP segment, into frames of A
 * in segs: their headers private, their payload possibly shared with m, or
 * each segment one private mbuf if linear (and one fits a pool mbuf).
 * Returns the count, -ENOMEM, or -EINVAL (more than VSW_SEGS_MAX segments,
 * or a frame the cutter refuses).
 */
static int cut(struct vsw_worker *w, struct rte_mbuf *m, struct rte_mbuf **segs, bool linear)
{
    const uint32_t hdr = (uint32_t)m->l2_len + m->l3_len + m->l4_len;
    const uint64_t f = m->ol_flags;
    int n;
    if (m->pkt_len <= hdr + m->tso_segsz) {
        /* One segment already: only the request goes. */
        if (!vsw_mbuf_writable(m)) {
            struct rte_mbuf *c = rte_pktmbuf_copy(m, w->dp->pool, 0, UINT32_MAX);
            rte_pktmbuf_free(m);
            if (!c)
                return -ENOMEM;
            m = c;
        }
        m->ol_flags &= ~RTE_MBUF_F_TX_TCP_SEG;
        segs[0] = m;
        return 1;
    }
    if (m->tso_segsz == 0 || m->pkt_len - hdr > (uint32_t)VSW_SEGS_MAX * m->tso_segsz) {
        rte_pktmbuf_free(m);
        return -EINVAL;
    }
    const uint32_t room = rte_pktmbuf_data_room_size(w->dp->pool) - RTE_PKTMBUF_HEADROOM;
    if (linear && hdr <= m->data_len && hdr + m->tso_segsz <= room) {
        const uint32_t payload = m->pkt_len - hdr;
        n = cut_linear(w->dp->pool, m, segs, (payload + m->tso_segsz - 1) / m->tso_segsz);
    } else if (f & RTE_MBUF_F_TX_IPV4) {
        w->gso.gso_size = (uint16_t)(hdr + m->tso_segsz);
        n = rte_gso_segment(m, &w->gso, segs, VSW_SEGS_MAX);
        /* GSO clears the request in m, which other ports may share. */
        m->ol_flags = f;
        if (n == 0)
            n = -EINVAL;
    } else {
        n = cut_tcp6(w->dp->pool, m, segs);
    }
    /* What the segments' own mbufs are (direct, indirect) is theirs, not
     * m's. */
    const uint64_t kind = RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT;
    for (int i = 0; i < n; i++) {
        segs[i]->ol_flags = (segs[i]->ol_flags & kind) | (f & ~(RTE_MBUF_F_TX_TCP_SEG | kind));
        segs[i]->tx_offload = m->tx_offload;
        segs[i]->vlan_tci = m->vlan_tci;
        /* CWR goes out once, on the first segment, as TSO NICs and Linux
         * send it (RFC 3168); DPDK's GSO leaves it on every one. */
        if (i > 0) {
            struct rte_tcp_hdr *t = rte_pktmbuf_mtod_offset(
                segs[i], struct rte_tcp_hdr *, (uint32_t)m->l2_len + m->l3_len);
            t->tcp_flags &= (uint8_t)~RTE_TCP_CWR_FLAG;
        }
    }
    rte_pktmbuf_free(m);
    return n;
}

bool vsw_tso_whole(const struct vsw_port *out, uint32_t offl, const struct rte_mbuf *m,
                   uint16_t tag)
{
    const uint32_t want = (m->ol_flags & RTE_MBUF_F_TX_IPV4) ? VSW_TX_TSO4 : VSW_TX_TSO6;
    return (offl & want) && (!out->cls->tso_fits || out->cls->tso_fits(out, m, tag));
}

/*
 * Make m (one reference of it) fit out, as vsw-port-provider.h promises
 * port types, and stage what it becomes: a large TCP segment the port
 * does not take whole (vsw_tso_whole) is cut, checksums for a port without
 * VSW_TX_CSUM are finished, the port's tag goes into the frame if it carries tags in-band
 * (tag), and a port that writes to frames gets one nobody else reads.
 */
void vsw_deliver(struct vsw_worker *w, struct vsw_port *out, struct rte_mbuf *m, uint16_t tag)
{
    const uint32_t offl = vsw_port_tx_offloads(out);
    const uint64_t f = m->ol_flags;
    if (unlikely((f & RTE_MBUF_F_TX_TCP_SEG) && !vsw_tso_whole(out, offl, m, tag))) {
        struct rte_mbuf *segs[VSW_SEGS_MAX];
        int n = cut(w, m, segs, offl & VSW_TX_LINEAR);
        if (n < 0) {
            vsw_port_drop(out, n == -ENOMEM ? VSW_DROP_NO_MBUF : VSW_DROP_OFFLOAD, 1);
            return;
        }
        /* The IPv4 header of each segment changed: finished here, as no
         * port is asked to take IP header checksums. */
        const uint64_t which = (offl & VSW_TX_CSUM) ? RTE_MBUF_F_TX_IP_CKSUM : VSW_TX_CSUM_FLAGS;
        for (int i = 0; i < n; i++) {
            struct rte_mbuf *s = segs[i];
            /* A segment's headers are its own, its payload is m's: a port
             * that writes to frames gets it in full segments of its own. */
            if (out->cls->tx_writes && !vsw_mbuf_writable(s)) {
                struct rte_mbuf *c = rte_pktmbuf_copy(s, w->dp->pool, 0, UINT32_MAX);
                rte_pktmbuf_free(s);
                if (!c) {
                    vsw_port_drop(out, VSW_DROP_NO_MBUF, 1);
                    continue;
                }
                s = c;
            }
            if (!(s = finish_csum(w, out, s, which)))
                continue;
            if (tag) {
                s->vlan_tci = tag;
                if (rte_vlan_insert(&s) != 0) {
                    vsw_port_drop(out, VSW_DROP_NO_MBUF, 1);
                    rte_pktmbuf_free(s);
                    continue;
                }
            }
            vsw_stage_one(w, out, s);
        }
        return;
    }
    const bool finish = !(f & RTE_MBUF_F_TX_TCP_SEG) && (f & VSW_TX_CSUM_FLAGS) &&
                        !(offl & VSW_TX_CSUM);
    if (tag || ((finish || out->cls->tx_writes) && !vsw_mbuf_writable(m))) {
        struct rte_mbuf *c = vsw_wire_copy(w->dp->pool, m, tag);
        rte_pktmbuf_free(m);
        if (!c) {
            vsw_port_drop(out, VSW_DROP_NO_MBUF, 1);
            return;
        }
        m = c;
    }
    if (unlikely(finish) && !(m = finish_csum(w, out, m, VSW_TX_CSUM_FLAGS)))
        return;
    vsw_stage_one(w, out, m);
}
