/* Frames: the header written per frame, and the parser of what comes back. */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "pktgen.h"

static void mac_put(struct rte_ether_addr *ea, uint64_t v)
{
    for (int i = RTE_ETHER_ADDR_LEN - 1; i >= 0; i--, v >>= 8)
        ea->addr_bytes[i] = (uint8_t)v;
}

void pktgen_frame_write(uint8_t *frame, uint16_t frame_len, struct pktgen_flow *flow,
                        const struct pktgen_stamp *stamp)
{
    struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
    mac_put(&eth->dst_addr, pktgen_range_next(&flow->dst_mac));
    mac_put(&eth->src_addr, pktgen_range_next(&flow->src_mac));
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);

    uint16_t ip_len = (uint16_t)(frame_len - sizeof(*eth));
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    *ip = (struct rte_ipv4_hdr){
        .version_ihl = RTE_IPV4_VHL_DEF,
        .total_length = rte_cpu_to_be_16(ip_len),
        .time_to_live = 64,
        .next_proto_id = IPPROTO_UDP,
        .src_addr = rte_cpu_to_be_32((uint32_t)pktgen_range_next(&flow->src_ip)),
        .dst_addr = rte_cpu_to_be_32((uint32_t)pktgen_range_next(&flow->dst_ip)),
    };
    ip->hdr_checksum = rte_ipv4_cksum(ip);

    struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
    udp->src_port = rte_cpu_to_be_16((uint16_t)pktgen_range_next(&flow->src_port));
    udp->dst_port = rte_cpu_to_be_16((uint16_t)pktgen_range_next(&flow->dst_port));
    udp->dgram_len = rte_cpu_to_be_16((uint16_t)(ip_len - sizeof(*ip)));
    udp->dgram_cksum = 0;
    memcpy(udp + 1, stamp, sizeof(*stamp));
}

/* Reads len bytes at off from either view into buf; NULL past the end. */
struct view {
    const struct rte_mbuf *m;
    const uint8_t *p;
    size_t len;
};

static const void *view_read(const struct view *v, size_t off, size_t len, void *buf)
{
    if (v->m) {
        if (off > UINT32_MAX || len > UINT32_MAX)
            return NULL;
        return rte_pktmbuf_read(v->m, (uint32_t)off, (uint32_t)len, buf);
    }
    if (off > v->len || len > v->len - off)
        return NULL;
    return v->p + off;
}

static enum pktgen_parse_result parse(const struct view *v, size_t total, struct pktgen_stamp *out)
{
    struct rte_ether_hdr eb;
    const struct rte_ether_hdr *eth = view_read(v, 0, sizeof(eb), &eb);
    if (!eth)
        return PKTGEN_PARSE_SHORT;
    size_t off = sizeof(*eth);
    uint16_t type = rte_be_to_cpu_16(eth->ether_type);
    for (int tags = 0; tags < 2 && (type == RTE_ETHER_TYPE_VLAN || type == RTE_ETHER_TYPE_QINQ);
         tags++) {
        struct rte_vlan_hdr vb;
        const struct rte_vlan_hdr *vh = view_read(v, off, sizeof(vb), &vb);
        if (!vh)
            return PKTGEN_PARSE_SHORT;
        type = rte_be_to_cpu_16(vh->eth_proto);
        off += sizeof(*vh);
    }
    if (type != RTE_ETHER_TYPE_IPV4)
        return PKTGEN_PARSE_NOT_IPV4;

    struct rte_ipv4_hdr ib;
    const struct rte_ipv4_hdr *ip = view_read(v, off, sizeof(ib), &ib);
    if (!ip)
        return PKTGEN_PARSE_SHORT;
    size_t ihl = (size_t)(ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * 4;
    size_t ip_len = rte_be_to_cpu_16(ip->total_length);
    uint16_t frag = rte_be_to_cpu_16(ip->fragment_offset);
    if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(*ip) || ip_len < ihl ||
        (frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)))
        return PKTGEN_PARSE_BAD_IP;
    if (ip_len > total - off)
        return PKTGEN_PARSE_SHORT;
    if (ip->next_proto_id != IPPROTO_UDP)
        return PKTGEN_PARSE_NOT_UDP;
    off += ihl;

    struct rte_udp_hdr ub;
    const struct rte_udp_hdr *udp = view_read(v, off, sizeof(ub), &ub);
    if (!udp)
        return PKTGEN_PARSE_SHORT;
    size_t udp_len = rte_be_to_cpu_16(udp->dgram_len);
    if (udp_len < sizeof(*udp) + sizeof(*out) || udp_len > ip_len - ihl)
        return PKTGEN_PARSE_BAD_UDP;
    off += sizeof(*udp);

    struct pktgen_stamp sb;
    const struct pktgen_stamp *st = view_read(v, off, sizeof(sb), &sb);
    if (!st)
        return PKTGEN_PARSE_SHORT;
    if (st->magic != PKTGEN_MAGIC)
        return PKTGEN_PARSE_MAGIC;
    memcpy(out, st, sizeof(*out));
    return PKTGEN_PARSE_OK;
}

enum pktgen_parse_result pktgen_parse(const struct rte_mbuf *m, struct pktgen_stamp *out)
{
    struct view v = {.m = m};
    return parse(&v, rte_pktmbuf_pkt_len(m), out);
}

enum pktgen_parse_result pktgen_parse_buf(const uint8_t *p, size_t len, struct pktgen_stamp *out)
{
    struct view v = {.p = p, .len = len};
    return parse(&v, len, out);
}
