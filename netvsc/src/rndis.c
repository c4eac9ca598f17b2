/*
 * netvsc's RNDIS control: requests in send-buffer sections and their
 * answers (INIT, QUERY, SET), and the offload negotiation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "jumbo.h"
#include "netvsc-private.h"
#include "nvsp-proto.h"
#include "rndis-proto.h"

/* Send one RNDIS control message in a send section; wait for its answer. */
static int rndis_request(struct netvsc *n, const void *msg, uint32_t len)
{
    /* Frames packed so far go first. */
    int rc = netvsc_tx_flush(n);
    if (rc < 0)
        return rc;
    if (len > n->section_size || n->nfree_sections == 0)
        return -ENOSPC;
    uint32_t sec = n->free_sections[--n->nfree_sections];
    memcpy(n->sbuf + (size_t)sec * n->section_size, msg, len);
    memcpy(&n->ctrl_req_id, (const uint8_t *)msg + offsetof(struct rndis_query_req, req_id),
           sizeof(n->ctrl_req_id));
    n->rndis_done = false;
    struct nvsp_msg_rndis_pkt m = {.type = NVSP_MSG1_SEND_RNDIS_PKT,
                                   .channel_type = NVSP_CHANNEL_TYPE_CONTROL,
                                   .send_buf_section_index = sec,
                                   .send_buf_section_size = len};
    rc = netvsc_nvs_send(n, &m, sizeof(m), TID_SEND | sec, true);
    if (rc < 0) {
        n->free_sections[n->nfree_sections++] = sec;
        return rc;
    }
    return netvsc_wait(n, &n->rndis_done);
}

static int rndis_query(struct netvsc *n, uint32_t oid, const void *in, uint32_t in_len, void *out,
                       uint32_t *out_len)
{
    uint8_t buf[512];
    struct rndis_query_req q = {0};
    if (in_len > sizeof(buf) - sizeof(q))
        return -EINVAL;
    q.hdr.type = RNDIS_MSG_QUERY;
    q.hdr.len = (uint32_t)sizeof(q) + in_len;
    q.req_id = ++n->next_req_id;
    q.oid = oid;
    q.info_len = in_len;
    q.info_offset = in_len ? (uint32_t)sizeof(q) - RNDIS_HEADER_SIZE : 0;
    memcpy(buf, &q, sizeof(q));
    if (in_len)
        memcpy(buf + sizeof(q), in, in_len);
    int rc = rndis_request(n, buf, q.hdr.len);
    if (rc < 0)
        return rc;
    struct rndis_query_cmplt c;
    if (n->rndis_resp_len < sizeof(c))
        return -EPROTO;
    memcpy(&c, n->rndis_resp, sizeof(c));
    if (c.hdr.type != RNDIS_MSG_QUERY_C)
        return -EPROTO;
    if (c.status != RNDIS_STATUS_SUCCESS)
        return -EOPNOTSUPP;
    if (c.info_offset < sizeof(c) - RNDIS_HEADER_SIZE ||
        (uint64_t)c.info_offset + RNDIS_HEADER_SIZE + c.info_len > n->rndis_resp_len)
        return -EPROTO;
    uint32_t l = c.info_len < *out_len ? c.info_len : *out_len;
    memcpy(out, n->rndis_resp + RNDIS_HEADER_SIZE + c.info_offset, l);
    *out_len = l;
    return 0;
}

static int rndis_set(struct netvsc *n, uint32_t oid, const void *in, uint32_t in_len)
{
    uint8_t buf[512];
    struct rndis_query_req q = {0};
    if (in_len > sizeof(buf) - sizeof(q))
        return -EINVAL;
    q.hdr.type = RNDIS_MSG_SET;
    q.hdr.len = (uint32_t)sizeof(q) + in_len;
    q.req_id = ++n->next_req_id;
    q.oid = oid;
    q.info_len = in_len;
    q.info_offset = (uint32_t)sizeof(q) - RNDIS_HEADER_SIZE;
    memcpy(buf, &q, sizeof(q));
    memcpy(buf + sizeof(q), in, in_len);
    int rc = rndis_request(n, buf, q.hdr.len);
    if (rc < 0)
        return rc;
    struct rndis_set_cmplt c;
    if (n->rndis_resp_len < sizeof(c))
        return -EPROTO;
    memcpy(&c, n->rndis_resp, sizeof(c));
    if (c.hdr.type != RNDIS_MSG_SET_C)
        return -EPROTO;
    return c.status == RNDIS_STATUS_SUCCESS ? 0 : -EOPNOTSUPP;
}

static int rndis_init(struct netvsc *n)
{
    struct rndis_init_req r = {
        .hdr = {.type = RNDIS_MSG_INIT, .len = sizeof(r)},
        .req_id = ++n->next_req_id,
        .major = RNDIS_VERSION_MAJOR,
        .minor = RNDIS_VERSION_MINOR,
        .max_xfer_size = 0x4000,
    };
    int rc = rndis_request(n, &r, sizeof(r));
    if (rc < 0)
        return rc;
    struct rndis_init_cmplt c;
    if (n->rndis_resp_len < sizeof(c))
        return -EPROTO;
    memcpy(&c, n->rndis_resp, sizeof(c));
    if (c.hdr.type != RNDIS_MSG_INIT_C || c.status != RNDIS_STATUS_SUCCESS)
        return -EREMOTEIO;
    netvsc_tx_set_batching(n, c.max_pkts_per_msg, c.align_factor);
    return 0;
}

/*
 * What to turn on, from the root's NDIS_OFFLOAD, by the rules hv_netvsc
 * follows: TCP/UDP checksums for IPv4 when TCP4 and TCP4OPT are offered,
 * for IPv6 when TCP6, TCP6OPT and IP6EXT are; LSOv2 for IPv4 when its
 * encapsulation is 802.3, for IPv6 when its options also cover extension
 * headers and TCP options. One departure: the front end's TAP takes (and
 * a Linux guest's TSO4/TSO6 usually comes as) both IP versions or none,
 * and the checksums of a segment are the root's to finish, so checksums
 * are offloaded only for both versions, LSO only for both versions, with
 * checksums, a size limit that holds at least one standard frame, and a
 * minimum segment count of at most 2 (what vmswitch reports: every
 * GSO frame a kernel builds has two segments or more).
 */
bool netvsc_offload_choose(const struct ndis_offload *got, uint32_t got_len, bool want_rsc,
                           struct ndis_offload_params *op, struct netvsc_offload_choice *out)
{
    memset(op, 0, sizeof(*op));
    memset(out, 0, sizeof(*out));
    op->hdr.type = NDIS_OBJTYPE_DEFAULT;
    op->hdr.revision = 3;
    op->hdr.size = sizeof(*op);
    if (got_len < NDIS_OFFLOAD_SIZE_REV1)
        return false;
    /* RSC as hv_netvsc: both versions offered (a revision 3 answer). */
    if (want_rsc && got_len >= NDIS_OFFLOAD_SIZE_REV3 && got->rsc_ip4 && got->rsc_ip6) {
        op->rsc_ip4 = NDIS_OFFLOAD_RSC_ON;
        op->rsc_ip6 = NDIS_OFFLOAD_RSC_ON;
        out->rsc = true;
    }
    uint32_t need4 = NDIS_TXCSUM_CAP_TCP4 | NDIS_TXCSUM_CAP_TCP4OPT;
    uint32_t need6 = NDIS_TXCSUM_CAP_TCP6 | NDIS_TXCSUM_CAP_TCP6OPT | NDIS_TXCSUM_CAP_IP6EXT;
    bool csum4 = (got->csum.ip4_txcsum & need4) == need4;
    bool csum6 = (got->csum.ip6_txcsum & need6) == need6;
    if (!csum4)
        return out->rsc;
    op->tcp4_csum = NDIS_OFFLOAD_PARAM_TXRX;
    op->udp4_csum = (got->csum.ip4_txcsum & NDIS_TXCSUM_CAP_UDP4) ? NDIS_OFFLOAD_PARAM_TXRX
                                                                  : NDIS_OFFLOAD_PARAM_RX;
    op->tcp6_csum = csum6 ? NDIS_OFFLOAD_PARAM_TXRX : NDIS_OFFLOAD_PARAM_RX;
    op->udp6_csum = csum6 && (got->csum.ip6_txcsum & NDIS_TXCSUM_CAP_UDP6)
                        ? NDIS_OFFLOAD_PARAM_TXRX
                        : NDIS_OFFLOAD_PARAM_RX;
    /* IPv6 frames with partial checksums the root cannot finish would be
     * finished by nobody: without IPv6 checksums, none are offloaded. */
    if (!csum6)
        return true;
    out->csum = true;
    uint32_t need6_lso = NDIS_LSOV2_CAP_IP6EXT | NDIS_LSOV2_CAP_TCP6OPT;
    const struct ndis_lsov2_offload *l = &got->lsov2;
    bool lso4 = (l->ip4_encap & NDIS_OFFLOAD_ENCAP_8023) && l->ip4_maxsz;
    bool lso6 = (l->ip6_encap & NDIS_OFFLOAD_ENCAP_8023) && l->ip6_maxsz &&
                (l->ip6_opts & need6_lso) == need6_lso;
    uint32_t max = l->ip4_maxsz < l->ip6_maxsz ? l->ip4_maxsz : l->ip6_maxsz;
    uint32_t minsg = l->ip4_minsg > l->ip6_minsg ? l->ip4_minsg : l->ip6_minsg;
    if (!lso4 || !lso6 || max < jumbo_frame(JUMBO_MTU_DEFAULT) || minsg > NETVSC_LSO_MIN_SEGS_MAX)
        return true;
    op->lsov2_ip4 = NDIS_OFFLOAD_LSOV2_ON;
    op->lsov2_ip6 = NDIS_OFFLOAD_LSOV2_ON;
    out->lso = true;
    out->lso_max = max > NETVSC_LSO_MAX ? NETVSC_LSO_MAX : max;
    out->lso_min_segs = minsg;
    return true;
}

static int negotiate_offloads(struct netvsc *n)
{
    if (n->p.no_offload)
        return 0;
    struct ndis_offload caps;
    memset(&caps, 0, sizeof(caps));
    caps.hdr.type = NDIS_OBJTYPE_OFFLOAD;
    caps.hdr.revision = 3;
    caps.hdr.size = NDIS_OFFLOAD_SIZE_REV3;
    uint32_t len = sizeof(caps);
    struct ndis_offload got;
    memset(&got, 0, sizeof(got));
    int rc = rndis_query(n, RNDIS_OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES, &caps, NDIS_OFFLOAD_SIZE_REV3,
                         &got, &len);
    if (rc < 0)
        return 0; /* no offloads: fine */
    struct ndis_offload_params op;
    struct netvsc_offload_choice ch;
    bool want_rsc = n->p.rsc && n->info.nvsp_version >= NVSP_PROTOCOL_VERSION_61;
    if (!netvsc_offload_choose(&got, len, want_rsc, &op, &ch))
        return 0;
    rc = rndis_set(n, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &op, sizeof(op));
    if (rc == -EOPNOTSUPP && (ch.lso || ch.rsc)) {
        /* A root that offers LSO or RSC but will not turn them on:
         * checksums only. */
        op.lsov2_ip4 = op.lsov2_ip6 = NDIS_OFFLOAD_PARAM_NOCHG;
        op.rsc_ip4 = op.rsc_ip6 = NDIS_OFFLOAD_PARAM_NOCHG;
        ch.lso = ch.rsc = false;
        ch.lso_max = ch.lso_min_segs = 0;
        rc = rndis_set(n, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &op, sizeof(op));
    }
    if (rc < 0)
        return 0; /* as a root without offloads */
    n->info.csum_offload = ch.csum;
    n->info.lso = ch.lso;
    n->info.lso_max = ch.lso_max;
    n->info.lso_min_segs = ch.lso_min_segs;
    n->info.rsc = ch.rsc;
    return 0;
}

int netvsc_rndis_attach(struct netvsc *n)
{
    int rc = rndis_init(n);
    if (rc < 0)
        return rc;
    uint32_t val, len = sizeof(val);
    if ((rc = rndis_query(n, RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE, NULL, 0, &val, &len)) < 0)
        return rc;
    n->info.mtu = val < n->p.mtu ? val : n->p.mtu;
    if (n->info.mtu < JUMBO_MTU_MIN)
        return -EPROTO;
    len = 6;
    if ((rc = rndis_query(n, RNDIS_OID_802_3_PERMANENT_ADDRESS, NULL, 0, n->info.mac, &len)) < 0)
        return rc;
    if (len != 6)
        return -EPROTO;
    if ((rc = negotiate_offloads(n)) < 0)
        return rc;
    len = sizeof(val);
    if (rndis_query(n, RNDIS_OID_GEN_MEDIA_CONNECT_STATUS, NULL, 0, &val, &len) == 0)
        n->info.link_up = val == RNDIS_MEDIA_STATE_CONNECTED;
    len = sizeof(val);
    if (rndis_query(n, RNDIS_OID_GEN_LINK_SPEED, NULL, 0, &val, &len) == 0)
        n->info.link_speed_mbps = val / 10000u;
    val = RNDIS_FILTER_DIRECTED | RNDIS_FILTER_MULTICAST | RNDIS_FILTER_BROADCAST;
    return rndis_set(n, RNDIS_OID_GEN_CURRENT_PACKET_FILTER, &val, sizeof(val));
}

int netvsc_rndis_rss_queues(struct netvsc *n, uint32_t *queues)
{
    struct ndis_rss_caps caps;
    uint32_t len = sizeof(caps);
    *queues = 1;
    int rc = rndis_query(n, RNDIS_OID_GEN_RECEIVE_SCALE_CAPABILITIES, NULL, 0, &caps, &len);
    if (rc < 0)
        return rc;
    if (len < sizeof(caps) || caps.num_recv_queues == 0)
        return -EPROTO;
    *queues = caps.num_recv_queues;
    return 0;
}

/* The key Linux's netvsc sends (the RSS specification's, whose published
 * vectors netvsp's hash is tested against). */
const uint8_t netvsc_rss_key[NDIS_RSS_KEY_LEN] = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

int netvsc_rndis_set_rss(struct netvsc *n)
{
    /* As Linux lays it out: the parameters (revision 2), the table right
     * after them, then the key. */
    uint8_t buf[sizeof(struct ndis_rss_params) + 4 * NETVSC_RSS_ITAB + NDIS_RSS_KEY_LEN];
    struct ndis_rss_params rp = {
        .hdr = {.type = NDIS_OBJTYPE_RSS_PARAMS, .revision = 2,
                .size = sizeof(struct ndis_rss_params)},
        .hash_info = NDIS_HASH_FUNCTION_TOEPLITZ | NDIS_HASH_IPV4 | NDIS_HASH_TCP_IPV4 |
                     NDIS_HASH_IPV6 | NDIS_HASH_TCP_IPV6,
        .indirect_tabsize = 4 * NETVSC_RSS_ITAB,
        .indirect_taboffset = sizeof(struct ndis_rss_params),
        .hashkey_size = NDIS_RSS_KEY_LEN,
        .hashkey_offset = sizeof(struct ndis_rss_params) + 4 * NETVSC_RSS_ITAB,
    };
    memcpy(buf, &rp, sizeof(rp));
    for (uint32_t i = 0; i < NETVSC_RSS_ITAB; i++) {
        uint32_t e = i % n->nchan;
        memcpy(buf + rp.indirect_taboffset + 4 * i, &e, sizeof(e));
    }
    memcpy(buf + rp.hashkey_offset, netvsc_rss_key, NDIS_RSS_KEY_LEN);
    return rndis_set(n, RNDIS_OID_GEN_RECEIVE_SCALE_PARAMETERS, buf, sizeof(buf));
}

void netvsc_rndis_halt(struct netvsc *n)
{
    if (!n->sbuf || !n->nfree_sections)
        return;
    struct rndis_halt_req h = {.hdr = {.type = RNDIS_MSG_HALT, .len = sizeof(h)},
                               .req_id = ++n->next_req_id};
    uint32_t sec = n->free_sections[--n->nfree_sections];
    memcpy(n->sbuf + (size_t)sec * n->section_size, &h, sizeof(h));
    struct nvsp_msg_rndis_pkt m = {.type = NVSP_MSG1_SEND_RNDIS_PKT,
                                   .channel_type = NVSP_CHANNEL_TYPE_CONTROL,
                                   .send_buf_section_index = sec,
                                   .send_buf_section_size = sizeof(h)};
    netvsc_nvs_send(n, &m, sizeof(m), TID_SEND | sec, true);
}
