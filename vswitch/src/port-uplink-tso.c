/*
 * Large TCP segments to an uplink whose PMD segments them (see
 * port-uplink-tso.h). What DPDK 22.11's PMDs want, read in their sources:
 *
 *  - net_tap offers RTE_ETH_TX_OFFLOAD_TCP_TSO and cuts in software, in
 *    tx_burst, with rte_gso_segment(): TCP/IPv4 only (an IPv6 large
 *    segment would go to the kernel whole, as one oversized frame). It
 *    refuses, stopping the burst, a segment whose l2 + l3 + l4 + tso_segsz
 *    exceeds its ethdev MTU (it compares a frame with Ethernet header
 *    against the MTU, so 1514-byte segments never pass at MTU 1500), and
 *    one rte_gso cannot cut: more than 64 segments (its output array) or
 *    headers beyond the 128-byte data room of its own header mbufs. It
 *    needs l2_len, l3_len, l4_len and RTE_MBUF_F_TX_IPV4; it ORs
 *    RTE_MBUF_F_TX_TCP_CKSUM into the frame's flags, rte_gso clears and
 *    restores RTE_MBUF_F_TX_TCP_SEG there, and each segment's checksums
 *    are computed from a zeroed field on a private copy of its headers,
 *    so nothing in the frame's bytes needs preparing. No tx_prepare. That
 *    sum adds each segment's payload mbuf by mbuf with __rte_raw_cksum(),
 *    which is wrong after a piece of odd length (seen: a chain split at an
 *    odd offset arrives with bad TCP checksums): such frames are cut by
 *    the switch instead.
 *  - net_virtio_user (and virtio) offer TCP_TSO; their tx_prepare runs
 *    rte_net_intel_cksum_prepare(), which writes the pseudo-header
 *    checksum (without the length, for TSO) into the TCP header in place.
 *  - net_af_packet, net_af_xdp, net_memif, net_pcap, net_ring offer no
 *    TSO: the switch cuts for them.
 */
#include <errno.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "vsw-port-provider.h"
#include "vsw-private.h"
#include "port-uplink-tso.h"

/* net_tap's limits (drivers/net/tap, DPDK 22.11): MAX_GSO_MBUFS output
 * segments, TAP_GSO_MBUF_SEG_SIZE bytes of headers. */
#define TAP_TSO_MAX_SEGS 64u
#define TAP_TSO_MAX_HDR 128u

#define TSO_NEEDS                                                                                  \
    (RTE_ETH_TX_OFFLOAD_TCP_TSO | RTE_ETH_TX_OFFLOAD_TCP_CKSUM | RTE_ETH_TX_OFFLOAD_MULTI_SEGS)

uint32_t vsw_uplink_tso_caps(const char *driver, uint64_t tx_capa, uint32_t mtu,
                             struct vsw_uplink_tso_limits *lim)
{
    memset(lim, 0, sizeof(*lim));
    if ((tx_capa & TSO_NEEDS) != TSO_NEEDS)
        return 0;
    if (strcmp(driver, "net_tap") == 0) {
        lim->max_frame = mtu;
        lim->max_segs = TAP_TSO_MAX_SEGS;
        lim->max_hdr = TAP_TSO_MAX_HDR;
        lim->even_pieces = true;
        return VSW_TX_TSO4;
    }
    return VSW_TX_TSO;
}

bool vsw_uplink_pieces_even(const struct rte_mbuf *m, uint32_t start, uint32_t seg)
{
    uint32_t end = 0; /* frame offset where the mbuf s ends */
    for (const struct rte_mbuf *s = m; s && s->next; s = s->next) {
        end += s->data_len;
        if (end > start && ((seg ? (end - start) % seg : end - start) & 1u))
            return false;
    }
    return true;
}

bool vsw_uplink_tso_within(const struct vsw_uplink_tso_limits *lim, const struct rte_mbuf *m,
                           uint16_t tag)
{
    const uint32_t hdr =
        (uint32_t)m->l2_len + m->l3_len + m->l4_len + (tag ? (uint32_t)RTE_VLAN_HLEN : 0u);
    if (lim->max_hdr && hdr > lim->max_hdr)
        return false;
    if (lim->max_frame && hdr + m->tso_segsz > lim->max_frame)
        return false;
    if (lim->max_segs && vsw_uplink_tso_segs(m) > lim->max_segs)
        return false;
    return !lim->even_pieces || vsw_uplink_pieces_even(m, hdr - (tag ? RTE_VLAN_HLEN : 0u),
                                                       m->tso_segsz);
}

/* A first segment of pool with a copy of m's headers (hdr bytes) and its
 * metadata, chained to indirect mbufs over the rest of m. NULL if out of
 * mbufs. m is not consumed. */
static struct rte_mbuf *private_head(struct rte_mempool *pool, struct rte_mbuf *m, uint32_t hdr)
{
    struct rte_mbuf *h = rte_pktmbuf_alloc(pool);
    if (!h)
        return NULL;
    if (rte_pktmbuf_tailroom(h) < hdr)
        goto fail;
    const void *src = rte_pktmbuf_read(m, 0, hdr, rte_pktmbuf_mtod(h, void *));
    if (!src)
        goto fail;
    if (src != rte_pktmbuf_mtod(h, void *))
        memcpy(rte_pktmbuf_mtod(h, void *), src, hdr);
    h->data_len = (uint16_t)hdr;
    h->pkt_len = hdr;
    if (vsw_attach_range(pool, h, m, hdr, m->pkt_len - hdr) != 0)
        goto fail;
    const uint64_t kind = RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT;
    h->ol_flags = m->ol_flags & ~kind;
    h->tx_offload = m->tx_offload;
    h->vlan_tci = m->vlan_tci;
    h->packet_type = m->packet_type;
    h->port = m->port;
    return h;
fail:
    rte_pktmbuf_free(h);
    return NULL;
}

int vsw_uplink_tso_prepare(struct rte_mempool *pool, struct rte_mbuf **mp, uint32_t caps,
                           uint64_t tx_offloads)
{
    struct rte_mbuf *m = *mp;
    const uint64_t f = m->ol_flags;
    const uint32_t want = (f & RTE_MBUF_F_TX_IPV4) ? VSW_TX_TSO4 : VSW_TX_TSO6;
    const uint32_t hdr = (uint32_t)m->l2_len + m->l3_len + m->l4_len;
    if (!(f & RTE_MBUF_F_TX_TCP_SEG) || !(caps & want) ||
        !(f & (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IPV6)) || m->tso_segsz == 0 ||
        m->l2_len < RTE_ETHER_HDR_LEN || m->l4_len < sizeof(struct rte_tcp_hdr) ||
        hdr >= m->pkt_len)
        return -EINVAL;
    if (!RTE_MBUF_DIRECT(m) || rte_mbuf_refcnt_read(m) != 1 || hdr > m->data_len) {
        struct rte_mbuf *h = private_head(pool, m, hdr);
        if (!h)
            return -ENOMEM;
        rte_pktmbuf_free(m);
        m = h;
    }
    m->ol_flags = (m->ol_flags & ~RTE_MBUF_F_TX_L4_MASK) | RTE_MBUF_F_TX_TCP_CKSUM;
    if (!(tx_offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM) || !(f & RTE_MBUF_F_TX_IPV4))
        m->ol_flags &= ~RTE_MBUF_F_TX_IP_CKSUM;
    *mp = m;
    return 0;
}
