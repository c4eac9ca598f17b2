/*
 * Frames as the switch reads them, for the forwarding core and for port
 * types (VM NICs, host vNICs, uplinks): one reading of a frame's VLAN tags,
 * one check of a sender's checksum-offload request against the frame, and
 * one way to finish such checksums in software. Everything that needs to
 * know where a frame's tags end or where its L3 header starts asks here, so
 * that no two places disagree about what a frame carries.
 *
 * The tag rule. A frame's tags are read outermost first: a tag received
 * out of band (RTE_MBUF_F_RX_VLAN, e.g. a guest's RNDIS VLAN PPI) is the
 * outermost, then every tag in the frame behind the MAC addresses. An
 * 802.1Q tag with VLAN id 0 is a priority tag: the frame is untagged, and
 * what follows the tag is read as if it came right after the addresses, so
 * any number of priority tags in a row are all skipped. An 802.1Q tag with
 * a VLAN id is the frame's VLAN. hvnet carries one VLAN tag: a frame is
 * refused if it has a tag of any kind behind its VLAN tag (QinQ, or a
 * second 802.1Q tag), or any tag that is not 802.1Q (802.1ad 0x88a8,
 * 0x9100, 0x9200, 0x9300: service VLANs hvnet does not carry), or more tags
 * than VSW_L2_MAX_TAGS, or a tag cut off by the end of the frame.
 */
#ifndef VSW_FRAME_H
#define VSW_FRAME_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

/* In-frame tags read before a frame is refused as having too many. */
#define VSW_L2_MAX_TAGS 8

/* The checksum requests a sender can leave to the network. */
#define VSW_TX_CSUM_FLAGS (RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_TX_IP_CKSUM)

/* A frame's tags and where its L3 header starts. Of a refused frame, tci
 * and tagged say what the tags before the refused one said. */
struct vsw_l2_info {
    uint16_t tci;          /* the VLAN tag (tagged), else the last priority tag's TCI, else 0 */
    bool tagged;           /* tci holds a VLAN id (1..4095) */
    bool refused;          /* the tag rule refuses the frame (see above) */
    uint16_t tags_len;     /* bytes of tags in the frame behind the MAC addresses */
    uint16_t l3_off;       /* RTE_ETHER_HDR_LEN + tags_len: where the L3 header starts */
    rte_be16_t ether_type; /* the EtherType behind the tags (network order) */
};

/* Is et (network order) a tag protocol identifier: 802.1Q, 802.1ad, or one
 * of the pre-standard QinQ ones? */
static inline bool vsw_l2_is_tpid(rte_be16_t et)
{
    return et == RTE_BE16(RTE_ETHER_TYPE_VLAN) || et == RTE_BE16(RTE_ETHER_TYPE_QINQ) ||
           et == RTE_BE16(RTE_ETHER_TYPE_QINQ1) || et == RTE_BE16(RTE_ETHER_TYPE_QINQ2) ||
           et == RTE_BE16(RTE_ETHER_TYPE_QINQ3);
}

/* The slow path of vsw_l2_parse(): any tag stack, any segment layout. */
void vsw_l2_parse_tags(const struct rte_mbuf *m, struct vsw_l2_info *out);

/*
 * Read m's tags by the tag rule (see the top of this file). Reads only the
 * headers, writes nothing; a frame shorter than an Ethernet header is
 * refused. Data path: an untagged frame costs one EtherType comparison, a
 * frame with one 802.1Q VLAN tag two; anything else takes the slow path.
 */
static inline void vsw_l2_parse(const struct rte_mbuf *m, struct vsw_l2_info *out)
{
    if (likely(m->data_len >= RTE_ETHER_HDR_LEN + RTE_VLAN_HLEN &&
               !(m->ol_flags & RTE_MBUF_F_RX_VLAN))) {
        const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
        const struct rte_vlan_hdr *vh = (const struct rte_vlan_hdr *)(eth + 1);
        rte_be16_t et = eth->ether_type;
        uint16_t tci = rte_be_to_cpu_16(vh->vlan_tci);
        if (likely(!vsw_l2_is_tpid(et))) {
            out->tci = 0;
            out->tagged = false;
            out->tags_len = 0;
        } else if (et == RTE_BE16(RTE_ETHER_TYPE_VLAN) && (tci & 0xfff) &&
                   !vsw_l2_is_tpid(vh->eth_proto)) {
            out->tci = tci;
            out->tagged = true;
            out->tags_len = RTE_VLAN_HLEN;
            et = vh->eth_proto;
        } else {
            vsw_l2_parse_tags(m, out);
            return;
        }
        out->refused = false;
        out->l3_off = (uint16_t)(RTE_ETHER_HDR_LEN + out->tags_len);
        out->ether_type = et;
        return;
    }
    vsw_l2_parse_tags(m, out);
}

/*
 * A sender asks the network to finish the TCP (tcp) or UDP checksum of
 * frame m, whose transport header starts l4_off bytes into the frame, over
 * IP version ip_version (4 or 6; 0: whichever the frame carries): a
 * guest's RNDIS checksum PPI, the host's virtio-net header. Checks the
 * request against the frame, with the L3 header found behind the frame's
 * in-frame tags (vsw_l2_parse), and records it in m for whoever sends the
 * frame on: l2_len (in-frame tags included), l3_len, RTE_MBUF_F_TX_IPV4 or
 * _IPV6, RTE_MBUF_F_TX_TCP_CKSUM or _UDP_CKSUM. The switch keeps these true
 * when it takes tags out or puts them in.
 *
 * -EINVAL, m unchanged, if the frame does not match: no IPv4 or IPv6
 * header (EtherType and version) behind the tags or not the version asked
 * for, l4_off inside the IP header (or, for IPv4, not right behind it), the
 * TCP or UDP header not inside the frame. Data path; reads only headers.
 */
int vsw_frame_csum_request(struct rte_mbuf *m, uint32_t l4_off, bool tcp, unsigned ip_version);

/* The largest L3 length (IP header, extension headers, TCP header and
 * payload) of a large TCP segment: what the IPv4 total length and the IPv6
 * payload length (plus its fixed header) can say. */
#define VSW_TSO_L3_MAX 65535u

/*
 * Mark m, a frame whose TCP header starts l4_off bytes in (behind its
 * in-frame tags), as a large TCP segment to cut into mss-byte segments
 * (contract B): checks B, sets the flags and lengths of B. ip_version 4 or
 * 6 (0: whichever the frame carries). -EINVAL, m unchanged, if anything in
 * B does not hold (mtu: the largest L3 size one segment may have).
 *
 * B holds when: the frame carries IPv4 or IPv6 (EtherType and version)
 * behind its tags, of the version asked for; the IP header is TCP's (IPv4:
 * protocol 6, l4_off right behind an IHL-long header, neither MF nor a
 * fragment offset; IPv6: l4_off at the end of a chain of hop-by-hop,
 * routing and destination-options headers that ends in TCP, no fragment
 * header); the TCP header (data offset >= 5) lies in the first segment and
 * payload follows it; 1 <= mss and l3 + l4 + mss <= mtu; the IP length
 * field equals the frame's L3 length, at most VSW_TSO_L3_MAX. An IP length
 * of 0 (LSOv2 senders leave it so) is the one thing written in the frame:
 * it becomes the frame's L3 length (the IPv4 header checksum is requested
 * anyway, RTE_MBUF_F_TX_IP_CKSUM).
 *
 * Sets l2_len (tags included), l3_len, l4_len, tso_segsz = mss and
 * RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM with RTE_MBUF_F_TX_IPV4 |
 * RTE_MBUF_F_TX_IP_CKSUM or RTE_MBUF_F_TX_IPV6; any other L4 checksum
 * request is replaced. Data path; reads only headers. m must be writable.
 */
int vsw_frame_tso_request(struct rte_mbuf *m, uint32_t l4_off, uint16_t mss, unsigned ip_version,
                          uint32_t mtu);

/*
 * Finish in software the checksums m leaves to the network among `which`
 * (RTE_MBUF_F_TX_IP_CKSUM, RTE_MBUF_F_TX_TCP_CKSUM, RTE_MBUF_F_TX_UDP_CKSUM),
 * with DPDK's checksum functions, at the offsets l2_len and l3_len give;
 * the requests done are cleared from m->ol_flags. m must be writable (not
 * shared with another port).
 *
 * 0 done; -EINVAL the headers do not match the request (no IPv4/IPv6 header
 * of the flagged version at l2_len, a length or protocol that disagrees);
 * -EAGAIN m is laid out in a way this cannot handle in place (the headers
 * up to the checksum field not in the first segment, or a segment of odd
 * length inside the summed bytes): a copy into full segments
 * (rte_pktmbuf_copy) can. Nothing is written unless 0 is returned.
 */
int vsw_frame_cksum_finish(struct rte_mbuf *m, uint64_t which);

#endif
