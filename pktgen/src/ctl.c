/* The control protocol's codec (pktgen-ctl.h).
 *
 * Payload layout (byte offsets, little endian):
 *   0 u32 magic | 4 u8 version | 5 u8 type | 6 u16 status | 8 u64 nonce |
 *   16 u32 trial | 20 body
 * START body: 20 u8 role | 21 u8 flags | 22 u16 frame_len | 24 u16 stream |
 *   26 u16 delay_ms | 28 u32 duration_ms | 32 u64 rate_pps | 40 u64 count |
 *   48 dst_mac[6] | 54 u16 src_port | 56 u32 src_ip | 60 u32 dst_ip |
 *   64 u16 dst_port | 66 end
 * REPORT body: 24 onwards, 17 u64 in the order of struct pktgen_ctl_report
 *   (lat_ns as 5 of them) | 160 end
 * ACK and STOP have no body. Every byte after a body up to
 * PKTGEN_CTL_PAYLOAD is zero: a version that adds fields bumps the version.
 */
#include <errno.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "pktgen-ctl.h"

#define START_END 66u
#define REPORT_OFF 24u
#define REPORT_N 17u
#define REPORT_END (REPORT_OFF + 8u * REPORT_N)
/* Frames longer than this are not control frames (ours are
 * PKTGEN_CTL_FRAME_LEN, plus up to two VLAN tags a switch may add). */
#define CTL_MAX_FRAME 512u
/* 169.254.76.x (RTE_IPV4 shifts an int: undefined for 169 << 24). */
#define CTL_IP(x) ((uint32_t)169 << 24 | (uint32_t)254 << 16 | (uint32_t)76 << 8 | (uint32_t)(x))
/* The largest errno an ACK may carry. */
#define CTL_MAX_ERRNO 4095u
/* A report's byte counts may not exceed this per frame. */
#define CTL_MAX_BYTES_PER_FRAME 65535u

_Static_assert(REPORT_END <= PKTGEN_CTL_PAYLOAD, "report fits");
_Static_assert(START_END <= PKTGEN_CTL_PAYLOAD, "start fits");

static void put16(uint8_t *p, uint16_t v)
{
    v = rte_cpu_to_le_16(v);
    memcpy(p, &v, sizeof(v));
}

static void put32(uint8_t *p, uint32_t v)
{
    v = rte_cpu_to_le_32(v);
    memcpy(p, &v, sizeof(v));
}

static void put64(uint8_t *p, uint64_t v)
{
    v = rte_cpu_to_le_64(v);
    memcpy(p, &v, sizeof(v));
}

static uint16_t get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof(v));
    return rte_le_to_cpu_16(v);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return rte_le_to_cpu_32(v);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return rte_le_to_cpu_64(v);
}

/* The report's u64 fields in wire order. */
static uint64_t *report_field(struct pktgen_ctl_report *r, unsigned i)
{
    uint64_t *const f[REPORT_N] = {
        &r->tx_frames, &r->tx_bytes, &r->tx_refused, &r->rx_frames, &r->rx_bytes,
        &r->lost, &r->reordered, &r->duplicates, &r->lat_count, &r->lat_ns[0],
        &r->lat_ns[1], &r->lat_ns[2], &r->lat_ns[3], &r->lat_ns[4],
        &r->achieved_mpps_milli, &r->duration_us, &r->ctl_bad,
    };
    return f[i];
}

static void encode(uint8_t *p, const struct pktgen_ctl_msg *m)
{
    memset(p, 0, PKTGEN_CTL_PAYLOAD);
    put32(p, PKTGEN_CTL_MAGIC);
    p[4] = PKTGEN_CTL_VERSION;
    p[5] = m->type;
    put16(p + 6, m->status);
    put64(p + 8, m->nonce);
    put32(p + 16, m->trial);
    if (m->type == PKTGEN_CTL_START) {
        const struct pktgen_ctl_start *s = &m->u.start;
        p[20] = s->role;
        p[21] = s->flags;
        put16(p + 22, s->frame_len);
        put16(p + 24, s->stream);
        put16(p + 26, s->delay_ms);
        put32(p + 28, s->duration_ms);
        put64(p + 32, s->rate_pps);
        put64(p + 40, s->count);
        memcpy(p + 48, s->dst_mac, 6);
        put16(p + 54, s->src_port);
        put32(p + 56, s->src_ip);
        put32(p + 60, s->dst_ip);
        put16(p + 64, s->dst_port);
    } else if (m->type == PKTGEN_CTL_REPORT) {
        struct pktgen_ctl_report r = m->u.report;
        for (unsigned i = 0; i < REPORT_N; i++)
            put64(p + REPORT_OFF + 8 * i, *report_field(&r, i));
    }
}

size_t pktgen_ctl_write(uint8_t *buf, const uint8_t dst_mac[6], const uint8_t src_mac[6],
                        const struct pktgen_ctl_msg *msg)
{
    struct rte_ether_hdr *eth = (struct rte_ether_hdr *)buf;
    memcpy(eth->dst_addr.addr_bytes, dst_mac, 6);
    memcpy(eth->src_addr.addr_bytes, src_mac, 6);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    uint16_t ip_len = (uint16_t)(PKTGEN_CTL_FRAME_LEN - sizeof(*eth));
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    /* Link-local addresses: the switch forwards by MAC, nobody routes these. */
    *ip = (struct rte_ipv4_hdr){
        .version_ihl = RTE_IPV4_VHL_DEF,
        .total_length = rte_cpu_to_be_16(ip_len),
        .time_to_live = 64,
        .next_proto_id = IPPROTO_UDP,
        .src_addr = rte_cpu_to_be_32(CTL_IP(1)),
        .dst_addr = rte_cpu_to_be_32(CTL_IP(2)),
    };
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
    udp->src_port = rte_cpu_to_be_16(PKTGEN_CTL_UDP_PORT);
    udp->dst_port = rte_cpu_to_be_16(PKTGEN_CTL_UDP_PORT);
    udp->dgram_len = rte_cpu_to_be_16((uint16_t)(ip_len - sizeof(*ip)));
    udp->dgram_cksum = 0;
    encode((uint8_t *)(udp + 1), msg);
    return PKTGEN_CTL_FRAME_LEN;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static int check_start(const struct pktgen_ctl_start *s)
{
    static const uint8_t zero_mac[6];
    if (s->stream >= PKTGEN_MAX_STREAMS || s->duration_ms > PKTGEN_CTL_MAX_DURATION_MS ||
        s->count > PKTGEN_CTL_MAX_COUNT || s->delay_ms > PKTGEN_CTL_MAX_DELAY_MS)
        return -EINVAL;
    switch (s->role) {
    case PKTGEN_CTL_ROLE_GEN:
        if (s->flags & ~PKTGEN_CTL_F_ALL)
            return -EINVAL;
        if (s->flags & PKTGEN_CTL_F_IMIX ? s->frame_len != 0
                                         : s->frame_len < PKTGEN_MIN_FRAME ||
                                               s->frame_len > PKTGEN_MAX_FRAME)
            return -EINVAL;
        if (s->flags & PKTGEN_CTL_F_UNPACED ? s->rate_pps != 0
                                            : s->rate_pps == 0 ||
                                                  (double)s->rate_pps > PKTGEN_CTL_MAX_PPS)
            return -EINVAL;
        if (s->duration_ms == 0 && s->count == 0)
            return -EINVAL;
        /* A generator floods nobody: its frames go to one station. */
        if ((s->dst_mac[0] & 1) || memcmp(s->dst_mac, zero_mac, 6) == 0)
            return -EINVAL;
        return 0;
    case PKTGEN_CTL_ROLE_SINK:
    case PKTGEN_CTL_ROLE_REFLECT:
        /* The duration bounds the trial; the fields of a generator are 0. */
        if (s->duration_ms == 0 || s->flags || s->frame_len || s->delay_ms || s->rate_pps ||
            s->count || memcmp(s->dst_mac, zero_mac, 6) != 0 || s->src_ip || s->dst_ip ||
            s->src_port || s->dst_port)
            return -EINVAL;
        return 0;
    }
    return -EINVAL;
}

static int check_report(const struct pktgen_ctl_report *r)
{
    /* 2^46 frames: 19 hours at 1 Gpps; times 64 KiB stays in 64 bits. */
    const uint64_t max_frames = 1ull << 46;
    if (r->tx_frames > max_frames || r->rx_frames > max_frames || r->tx_refused > max_frames ||
        r->lost > max_frames || r->reordered > max_frames || r->duplicates > max_frames ||
        r->lat_count > r->rx_frames || r->duplicates > r->rx_frames || r->ctl_bad > max_frames)
        return -EINVAL;
    if (r->tx_bytes > r->tx_frames * CTL_MAX_BYTES_PER_FRAME ||
        r->rx_bytes > r->rx_frames * CTL_MAX_BYTES_PER_FRAME)
        return -EINVAL;
    for (int i = 1; i < 5; i++)
        if (r->lat_ns[i] < r->lat_ns[i - 1])
            return -EINVAL;
    if (r->lat_count == 0 && r->lat_ns[4] != 0)
        return -EINVAL;
    if ((double)r->achieved_mpps_milli > PKTGEN_CTL_MAX_PPS * 1000)
        return -EINVAL;
    return 0;
}

int pktgen_ctl_check(const struct pktgen_ctl_msg *m)
{
    if (m->type != PKTGEN_CTL_ACK && m->status != 0)
        return -EINVAL;
    switch (m->type) {
    case PKTGEN_CTL_START:
        return check_start(&m->u.start);
    case PKTGEN_CTL_REPORT:
        return check_report(&m->u.report);
    case PKTGEN_CTL_ACK:
        return m->status <= CTL_MAX_ERRNO ? 0 : -EINVAL;
    case PKTGEN_CTL_STOP:
        return 0;
    }
    return -EINVAL;
}

/* The offset of the control payload in a flat frame, or a reason. */
static enum pktgen_ctl_result find_payload(const uint8_t *p, size_t len, size_t *payload_off)
{
    if (len < sizeof(struct rte_ether_hdr) || len > CTL_MAX_FRAME)
        return PKTGEN_CTL_NOT_CTL;
    const struct rte_ether_hdr *eth = (const void *)p;
    size_t off = sizeof(*eth);
    uint16_t type = rte_be_to_cpu_16(eth->ether_type);
    for (int tags = 0; tags < 2 && (type == RTE_ETHER_TYPE_VLAN || type == RTE_ETHER_TYPE_QINQ);
         tags++) {
        if (len - off < sizeof(struct rte_vlan_hdr))
            return PKTGEN_CTL_NOT_CTL;
        uint16_t be;
        memcpy(&be, p + off + 2, sizeof(be));
        type = rte_be_to_cpu_16(be);
        off += sizeof(struct rte_vlan_hdr);
    }
    if (type != RTE_ETHER_TYPE_IPV4 || len - off < sizeof(struct rte_ipv4_hdr))
        return PKTGEN_CTL_NOT_CTL;
    struct rte_ipv4_hdr ip;
    memcpy(&ip, p + off, sizeof(ip));
    size_t ihl = (size_t)(ip.version_ihl & RTE_IPV4_HDR_IHL_MASK) * 4;
    size_t ip_len = rte_be_to_cpu_16(ip.total_length);
    uint16_t frag = rte_be_to_cpu_16(ip.fragment_offset);
    if ((ip.version_ihl >> 4) != 4 || ihl < sizeof(ip) || ip_len < ihl + sizeof(struct rte_udp_hdr) ||
        ip_len > len - off || (frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) ||
        ip.next_proto_id != IPPROTO_UDP)
        return PKTGEN_CTL_NOT_CTL;
    off += ihl;
    struct rte_udp_hdr udp;
    memcpy(&udp, p + off, sizeof(udp));
    if (rte_be_to_cpu_16(udp.dst_port) != PKTGEN_CTL_UDP_PORT &&
        rte_be_to_cpu_16(udp.src_port) != PKTGEN_CTL_UDP_PORT)
        return PKTGEN_CTL_NOT_CTL;
    size_t udp_len = rte_be_to_cpu_16(udp.dgram_len);
    if (udp_len > ip_len - ihl || udp_len < sizeof(udp) + PKTGEN_CTL_PAYLOAD)
        return PKTGEN_CTL_SHORT;
    *payload_off = off + sizeof(udp);
    return PKTGEN_CTL_OK;
}

enum pktgen_ctl_result pktgen_ctl_parse_buf(const uint8_t *frame, size_t len,
                                            struct pktgen_ctl_msg *out, uint8_t src_mac[6])
{
    size_t off;
    enum pktgen_ctl_result rc = find_payload(frame, len, &off);
    if (rc != PKTGEN_CTL_OK)
        return rc;
    const uint8_t *p = frame + off;
    if (get32(p) != PKTGEN_CTL_MAGIC)
        return PKTGEN_CTL_BAD_MAGIC;
    if (p[4] != PKTGEN_CTL_VERSION)
        return PKTGEN_CTL_BAD_VERSION;
    memset(out, 0, sizeof(*out));
    out->type = p[5];
    out->status = get16(p + 6);
    out->nonce = get64(p + 8);
    out->trial = get32(p + 16);
    size_t end;
    switch (out->type) {
    case PKTGEN_CTL_START: {
        struct pktgen_ctl_start *s = &out->u.start;
        s->role = p[20];
        s->flags = p[21];
        s->frame_len = get16(p + 22);
        s->stream = get16(p + 24);
        s->delay_ms = get16(p + 26);
        s->duration_ms = get32(p + 28);
        s->rate_pps = get64(p + 32);
        s->count = get64(p + 40);
        memcpy(s->dst_mac, p + 48, 6);
        s->src_port = get16(p + 54);
        s->src_ip = get32(p + 56);
        s->dst_ip = get32(p + 60);
        s->dst_port = get16(p + 64);
        end = START_END;
        break;
    }
    case PKTGEN_CTL_REPORT:
        for (unsigned i = 0; i < REPORT_N; i++)
            *report_field(&out->u.report, i) = get64(p + REPORT_OFF + 8 * i);
        /* Bytes 20..23 are padding. */
        if (!all_zero(p + 20, REPORT_OFF - 20))
            return PKTGEN_CTL_BAD_FIELD;
        end = REPORT_END;
        break;
    case PKTGEN_CTL_ACK:
    case PKTGEN_CTL_STOP:
        end = 20;
        break;
    default:
        return PKTGEN_CTL_BAD_TYPE;
    }
    if (!all_zero(p + end, PKTGEN_CTL_PAYLOAD - end) || pktgen_ctl_check(out) < 0)
        return PKTGEN_CTL_BAD_FIELD;
    if (src_mac)
        memcpy(src_mac, frame + 6, 6);
    return PKTGEN_CTL_OK;
}

enum pktgen_ctl_result pktgen_ctl_parse(const struct rte_mbuf *m, struct pktgen_ctl_msg *out,
                                        uint8_t src_mac[6])
{
    uint32_t len = rte_pktmbuf_pkt_len(m);
    if (len > CTL_MAX_FRAME)
        return PKTGEN_CTL_NOT_CTL;
    uint8_t buf[CTL_MAX_FRAME];
    const uint8_t *p = rte_pktmbuf_read(m, 0, len, buf);
    if (!p)
        return PKTGEN_CTL_SHORT;
    return pktgen_ctl_parse_buf(p, len, out, src_mac);
}

bool pktgen_ctl_is_ctl(const struct rte_mbuf *m)
{
    uint32_t len = rte_pktmbuf_pkt_len(m);
    if (len > CTL_MAX_FRAME)
        return false;
    uint8_t buf[CTL_MAX_FRAME];
    const uint8_t *p = rte_pktmbuf_read(m, 0, len, buf);
    size_t off;
    return p && find_payload(p, len, &off) != PKTGEN_CTL_NOT_CTL;
}
