/*
 * Large TCP segments to an uplink whose PMD segments them itself: which
 * ones it takes whole, and how a frame is made ready for it. Kept apart
 * from port-uplink.h, whose port state the unit tests do not need.
 */
#ifndef PORT_UPLINK_TSO_H
#define PORT_UPLINK_TSO_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>

/* What a PMD's segmentation takes, beyond the port's frame limit (which
 * the switch applies to the segments already); 0 = no limit of its own. */
struct vsw_uplink_tso_limits {
    uint32_t max_frame; /* a segment's frame: headers + MSS, tag included */
    uint16_t max_segs;  /* segments one large segment becomes */
    uint16_t max_hdr;   /* l2 + l3 + l4 header bytes, tag included */
    /* It sums each segment's payload piece by piece (mbuf by mbuf), which
     * is right only if every piece but a segment's last has an even
     * length. */
    bool even_pieces;
};

/*
 * The large segments an uplink takes whole (VSW_TX_TSO4/_TSO6, 0 for
 * none) when its PMD, driver, offers tx_capa (RTE_ETH_TX_OFFLOAD_*): TCP
 * segmentation with TCP checksums and mbuf chains, for both IP versions,
 * but for IPv4 alone on net_tap (DPDK 22.11's net_tap segments with
 * rte_gso, which cuts TCP/IPv4 only and sends anything else whole). Its
 * own limits go to *lim (zeroed for other PMDs); net_tap's depend on the
 * ethdev MTU, mtu.
 */
uint32_t vsw_uplink_tso_caps(const char *driver, uint64_t tx_capa, uint32_t mtu,
                             struct vsw_uplink_tso_limits *lim);

/* Does the large segment m (contract B of vsw-frame.h), with tag (0:
 * none) put into it, stay within lim? */
bool vsw_uplink_tso_within(const struct vsw_uplink_tso_limits *lim, const struct rte_mbuf *m,
                           uint16_t tag);

/*
 * Make the large segment *mp (one reference of it) ready for a PMD that
 * segments it, with tx_offloads enabled on it: its headers in a first
 * segment of its own, direct, unshared and writable (a PMD's tx_prepare
 * writes the pseudo-header checksum there, net_tap writes the mbuf's
 * offload flags), the rest of the frame referenced, not copied (from
 * pool, if a new first segment is needed: *mp then replaced, the old
 * reference dropped); RTE_MBUF_F_TX_TCP_CKSUM requested, as segmentation
 * implies, and the IPv4 header checksum request kept only if the PMD
 * offers it (its segmentation writes each segment's IP header anyway).
 * 0; -EINVAL if *mp is no large segment of the IP versions in caps
 * (VSW_TX_TSO4/_TSO6); -ENOMEM. On error *mp is unchanged.
 */
int vsw_uplink_tso_prepare(struct rte_mempool *pool, struct rte_mbuf **mp, uint32_t caps,
                           uint64_t tx_offloads);

/* Does every mbuf boundary of m past start fall at an even distance from
 * the start of its segment, segments being seg bytes from start on (0: one
 * segment)? net_tap (22.11) sums checksums piece by piece and gets them
 * wrong after a piece of odd length. */
bool vsw_uplink_pieces_even(const struct rte_mbuf *m, uint32_t start, uint32_t seg);

/* The segments the large segment m becomes. */
static inline uint32_t vsw_uplink_tso_segs(const struct rte_mbuf *m)
{
    const uint32_t hdr = (uint32_t)m->l2_len + m->l3_len + m->l4_len;
    if (m->tso_segsz == 0 || m->pkt_len <= hdr)
        return 1;
    return (m->pkt_len - hdr + m->tso_segsz - 1) / m->tso_segsz;
}

#endif
