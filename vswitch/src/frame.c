/*
 * Frames as the switch reads them: tags, checksum and segmentation offload
 * requests, and checksums finished in software (vsw-frame.h).
 */
/* rte_ipv4_udptcp_cksum_mbuf() and rte_ipv6_udptcp_cksum_mbuf() are
 * inline functions marked experimental in DPDK 22.11. */
#define ALLOW_EXPERIMENTAL_API

#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>

#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "vsw-frame.h"

/* One tag, outermost first: a priority tag keeps the frame untagged, a
 * VLAN tag makes it tagged, and anything else, or anything behind a VLAN
 * tag, is refused. After a refusal the tags read so far stand. */
static void l2_tag(struct vsw_l2_info *out, rte_be16_t tpid, uint16_t tci)
{
    if (out->refused)
        return;
    if (out->tagged || tpid != RTE_BE16(RTE_ETHER_TYPE_VLAN)) {
        out->refused = true;
        return;
    }
    out->tci = tci;
    out->tagged = (tci & 0xfff) != 0;
}

void vsw_l2_parse_tags(const struct rte_mbuf *m, struct vsw_l2_info *out)
{
    memset(out, 0, sizeof(*out));
    if (m->ol_flags & RTE_MBUF_F_RX_VLAN)
        l2_tag(out, RTE_BE16(RTE_ETHER_TYPE_VLAN), m->vlan_tci);
    /* Where the EtherType (or the next tag's TPID) is. The walk goes on
     * past a refusal, so that l3_off says where L3 starts whatever the
     * switch later makes of the tags. */
    uint32_t off = 2 * RTE_ETHER_ADDR_LEN;
    for (unsigned n = 0;; n++) {
        uint8_t buf[4];
        const uint8_t *p = rte_pktmbuf_read(m, off, 2, buf);
        if (!p) {
            out->refused = true; /* a runt, or a tag cut off */
            break;
        }
        memcpy(&out->ether_type, p, 2);
        if (!vsw_l2_is_tpid(out->ether_type))
            break;
        p = rte_pktmbuf_read(m, off, 4, buf);
        if (!p || n == VSW_L2_MAX_TAGS) {
            out->refused = true;
            break;
        }
        l2_tag(out, out->ether_type, (uint16_t)(p[2] << 8 | p[3]));
        off += RTE_VLAN_HLEN;
    }
    out->tags_len = (uint16_t)(off - 2 * RTE_ETHER_ADDR_LEN);
    out->l3_off = (uint16_t)(off + 2);
}

/* The IP version of m's L3 header behind its tags (0: not IPv4 or IPv6),
 * with l2 filled and the smallest header of that version in *l3_min. */
static unsigned ip_of(const struct rte_mbuf *m, struct vsw_l2_info *l2, uint32_t *l3_min)
{
    vsw_l2_parse(m, l2);
    if (l2->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV4)) {
        *l3_min = sizeof(struct rte_ipv4_hdr);
        return 4;
    }
    if (l2->ether_type == RTE_BE16(RTE_ETHER_TYPE_IPV6)) {
        *l3_min = sizeof(struct rte_ipv6_hdr);
        return 6;
    }
    return 0;
}

int vsw_frame_csum_request(struct rte_mbuf *m, uint32_t l4_off, bool tcp, unsigned ip_version)
{
    struct vsw_l2_info l2;
    uint32_t l3_min = 0;
    unsigned v = ip_of(m, &l2, &l3_min);
    if (!v)
        return -EINVAL;
    uint32_t l4_hdr = tcp ? sizeof(struct rte_tcp_hdr) : sizeof(struct rte_udp_hdr);
    if ((ip_version && ip_version != v) || l4_off < (uint32_t)l2.l3_off + l3_min ||
        (uint64_t)l4_off + l4_hdr > m->pkt_len)
        return -EINVAL;
    uint32_t l3_len = l4_off - l2.l3_off;
    if (l3_len >= (1u << RTE_MBUF_L3_LEN_BITS) || l2.l3_off >= (1u << RTE_MBUF_L2_LEN_BITS))
        return -EINVAL;
    uint8_t b;
    const uint8_t *vihl = rte_pktmbuf_read(m, l2.l3_off, 1, &b);
    if (!vihl || (*vihl >> 4) != v)
        return -EINVAL;
    /* IPv4 has no extension headers: its transport header follows the IP
     * header, whose length the checksum functions take from IHL. */
    if (v == 4 && (*vihl & 0xfu) * 4u != l3_len)
        return -EINVAL;
    m->l2_len = l2.l3_off;
    m->l3_len = l3_len;
    m->ol_flags |= (v == 4 ? RTE_MBUF_F_TX_IPV4 : RTE_MBUF_F_TX_IPV6) |
                   (tcp ? RTE_MBUF_F_TX_TCP_CKSUM : RTE_MBUF_F_TX_UDP_CKSUM);
    return 0;
}

/* Does the IPv6 header chain of m, from l3_off, reach TCP exactly at
 * l4_off through hop-by-hop, routing and destination-options headers only?
 * A fragment header (a large segment is never a fragment), AH, ESP or
 * anything else ends the walk unreached. */
static bool ipv6_chain_to_tcp(const struct rte_mbuf *m, uint32_t l3_off, uint32_t l4_off)
{
    uint8_t buf[2];
    const uint8_t *nh = rte_pktmbuf_read(m, l3_off + 6, 1, buf);
    if (!nh)
        return false;
    uint8_t next = *nh;
    uint32_t off = l3_off + (uint32_t)sizeof(struct rte_ipv6_hdr);
    while (off < l4_off) {
        if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING && next != IPPROTO_DSTOPTS)
            return false;
        const uint8_t *h = rte_pktmbuf_read(m, off, 2, buf);
        if (!h)
            return false;
        next = h[0];
        off += ((uint32_t)h[1] + 1u) * 8u;
    }
    return off == l4_off && next == IPPROTO_TCP;
}

int vsw_frame_tso_request(struct rte_mbuf *m, uint32_t l4_off, uint16_t mss, unsigned ip_version,
                          uint32_t mtu)
{
    struct vsw_l2_info l2;
    uint32_t l3_min = 0;
    unsigned v = ip_of(m, &l2, &l3_min);
    if (!v)
        return -EINVAL;
    if (mss == 0 || (ip_version && ip_version != v) || l4_off < (uint32_t)l2.l3_off + l3_min ||
        l2.l3_off >= (1u << RTE_MBUF_L2_LEN_BITS))
        return -EINVAL;
    const uint32_t l3_len = l4_off - l2.l3_off;
    if (l3_len >= (1u << RTE_MBUF_L3_LEN_BITS))
        return -EINVAL;
    /* The TCP header's fixed part, then all of it, in the first segment:
     * the segmenters copy the headers from there. */
    if ((uint64_t)l4_off + sizeof(struct rte_tcp_hdr) > m->data_len)
        return -EINVAL;
    const struct rte_tcp_hdr *th = rte_pktmbuf_mtod_offset(m, const struct rte_tcp_hdr *, l4_off);
    const uint32_t l4_len = (uint32_t)(th->data_off >> 4) * 4u;
    if (l4_len < sizeof(*th) || l4_off + l4_len > m->data_len || l4_off + l4_len >= m->pkt_len ||
        (uint64_t)l3_len + l4_len + mss > mtu)
        return -EINVAL;
    const uint32_t l3_total = m->pkt_len - l2.l3_off;
    if (l3_total > VSW_TSO_L3_MAX)
        return -EINVAL;
    uint8_t *l3 = rte_pktmbuf_mtod_offset(m, uint8_t *, l2.l3_off);
    uint8_t *len_field; /* the IP length, network order */
    uint16_t want;
    if (v == 4) {
        struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)l3;
        uint16_t frag = rte_be_to_cpu_16(ip->fragment_offset);
        if ((ip->version_ihl >> 4) != 4 || rte_ipv4_hdr_len(ip) != l3_len ||
            ip->next_proto_id != IPPROTO_TCP ||
            (frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)))
            return -EINVAL;
        len_field = l3 + offsetof(struct rte_ipv4_hdr, total_length);
        want = (uint16_t)l3_total;
    } else {
        struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)l3;
        if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6 || !ipv6_chain_to_tcp(m, l2.l3_off, l4_off))
            return -EINVAL;
        len_field = l3 + offsetof(struct rte_ipv6_hdr, payload_len);
        want = (uint16_t)(l3_total - sizeof(*ip));
    }
    uint16_t have = (uint16_t)(len_field[0] << 8 | len_field[1]);
    if (have != 0 && have != want)
        return -EINVAL;
    if (have == 0) {
        len_field[0] = (uint8_t)(want >> 8);
        len_field[1] = (uint8_t)want;
    }
    m->l2_len = l2.l3_off;
    m->l3_len = l3_len;
    m->l4_len = l4_len;
    m->tso_segsz = mss;
    m->ol_flags = (m->ol_flags & ~(RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IPV4 |
                                   RTE_MBUF_F_TX_IPV6 | RTE_MBUF_F_TX_IP_CKSUM)) |
                  RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM |
                  (v == 4 ? RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM : RTE_MBUF_F_TX_IPV6);
    return 0;
}

/*
 * Can rte_raw_cksum_mbuf() sum len bytes at off of m? It sums each
 * segment's part and byte-swaps the parts that start at an odd distance
 * from off, but truncates such a part's unreduced 32-bit sum to 16 bits
 * before swapping it: wrong whenever a part other than the last has an odd
 * length (DPDK 22.11, unchanged in later releases). Checked, not worked
 * around here: a frame laid out that way is copied into full segments
 * first, which the pools here make even.
 */
static bool raw_sum_layout_ok(const struct rte_mbuf *m, uint32_t off, uint32_t len)
{
    uint32_t end = off + len, pos = 0;
    for (const struct rte_mbuf *s = m; s && pos < end; s = s->next) {
        uint32_t a = RTE_MAX(pos, off), b = RTE_MIN(pos + s->data_len, end);
        pos += s->data_len;
        if (a < b && pos < end && ((b - a) & 1))
            return false;
    }
    return true;
}

/* A checksum field in the first segment, wherever it is aligned. */
static void put_field(struct rte_mbuf *m, uint32_t off, uint16_t v)
{
    memcpy(rte_pktmbuf_mtod_offset(m, uint8_t *, off), &v, sizeof(v));
}

int vsw_frame_cksum_finish(struct rte_mbuf *m, uint64_t which)
{
    which &= m->ol_flags & VSW_TX_CSUM_FLAGS;
    const uint64_t l4 = which & RTE_MBUF_F_TX_L4_MASK;
    const bool ip_hdr = which & RTE_MBUF_F_TX_IP_CKSUM;
    const bool v4 = m->ol_flags & RTE_MBUF_F_TX_IPV4, v6 = m->ol_flags & RTE_MBUF_F_TX_IPV6;
    if (!which)
        return 0;
    if ((l4 && l4 != RTE_MBUF_F_TX_TCP_CKSUM && l4 != RTE_MBUF_F_TX_UDP_CKSUM) || v4 == v6 ||
        (ip_hdr && !v4) || m->l2_len < RTE_ETHER_HDR_LEN)
        return -EINVAL;
    const bool tcp = l4 == RTE_MBUF_F_TX_TCP_CKSUM;
    const uint8_t proto = tcp ? IPPROTO_TCP : IPPROTO_UDP;
    const uint32_t l3_off = m->l2_len, l4_off = l3_off + m->l3_len;
    const uint32_t l4_min = tcp ? sizeof(struct rte_tcp_hdr) : sizeof(struct rte_udp_hdr);
    /* Through the checksum field (whichever is written) must be contiguous. */
    const uint32_t hdr_end = l4 ? l4_off + (tcp ? 18u : 8u) : l4_off;
    if (m->l3_len < (v4 ? sizeof(struct rte_ipv4_hdr) : sizeof(struct rte_ipv6_hdr)) ||
        hdr_end > m->pkt_len || l4_off + (l4 ? l4_min : 0) > m->pkt_len)
        return -EINVAL;
    if (hdr_end > m->data_len)
        return -EAGAIN;

    uint32_t l4_len;
    if (v4) {
        struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, l3_off);
        uint32_t tot = rte_be_to_cpu_16(ip->total_length);
        if ((ip->version_ihl >> 4) != 4 || rte_ipv4_hdr_len(ip) != m->l3_len ||
            (uint64_t)l3_off + tot > m->pkt_len || tot < m->l3_len ||
            (l4 && (ip->next_proto_id != proto || tot < m->l3_len + l4_min)))
            return -EINVAL;
        l4_len = tot - m->l3_len;
        if (l4 && !raw_sum_layout_ok(m, l4_off, l4_len))
            return -EAGAIN;
        if (ip_hdr) {
            ip->hdr_checksum = 0;
            ip->hdr_checksum = rte_ipv4_cksum(ip);
        }
        if (l4) {
            put_field(m, l4_off + (tcp ? 16 : 6), 0);
            put_field(m, l4_off + (tcp ? 16 : 6), rte_ipv4_udptcp_cksum_mbuf(m, ip, (uint16_t)l4_off));
        }
    } else {
        const struct rte_ipv6_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv6_hdr *, l3_off);
        uint32_t end = sizeof(*ip) + rte_be_to_cpu_16(ip->payload_len);
        if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6 || (uint64_t)l3_off + end > m->pkt_len ||
            end < m->l3_len + l4_min || (m->l3_len == sizeof(*ip) && ip->proto != proto))
            return -EINVAL;
        l4_len = end - m->l3_len;
        if (!raw_sum_layout_ok(m, l4_off, l4_len))
            return -EAGAIN;
        /* DPDK takes the pseudo header's protocol and length from the IPv6
         * header, which with extension headers names the first of them and
         * counts them: give it a copy that names the transport. */
        struct rte_ipv6_hdr ph = *ip;
        ph.proto = proto;
        ph.payload_len = rte_cpu_to_be_16((uint16_t)l4_len);
        put_field(m, l4_off + (tcp ? 16 : 6), 0);
        put_field(m, l4_off + (tcp ? 16 : 6), rte_ipv6_udptcp_cksum_mbuf(m, &ph, (uint16_t)l4_off));
    }
    m->ol_flags &= ~which;
    return 0;
}
