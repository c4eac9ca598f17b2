/*
 * RNDIS control: INIT, QUERY, SET (OIDs), KEEPALIVE, RESET and HALT from
 * the guest, answered in control sub-allocations; the indications the root
 * sends on its own (media connect/disconnect, NETWORK_CHANGE).
 */
#include <string.h>

#include <rte_cycles.h>

#include "jumbo.h"
#include "netvsp-private.h"

#define RNDIS_ALIGN_SHIFT 3u

static const uint32_t supported_oids[] = {
    RNDIS_OID_GEN_SUPPORTED_LIST,         RNDIS_OID_GEN_HARDWARE_STATUS,
    RNDIS_OID_GEN_MEDIA_SUPPORTED,        RNDIS_OID_GEN_MEDIA_IN_USE,
    RNDIS_OID_GEN_MAXIMUM_LOOKAHEAD,      RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE,
    RNDIS_OID_GEN_LINK_SPEED,             RNDIS_OID_GEN_TRANSMIT_BUFFER_SPACE,
    RNDIS_OID_GEN_RECEIVE_BUFFER_SPACE,   RNDIS_OID_GEN_TRANSMIT_BLOCK_SIZE,
    RNDIS_OID_GEN_RECEIVE_BLOCK_SIZE,     RNDIS_OID_GEN_VENDOR_ID,
    RNDIS_OID_GEN_VENDOR_DESCRIPTION,     RNDIS_OID_GEN_CURRENT_PACKET_FILTER,
    RNDIS_OID_GEN_CURRENT_LOOKAHEAD,      RNDIS_OID_GEN_MAXIMUM_TOTAL_SIZE,
    RNDIS_OID_GEN_MAC_OPTIONS,            RNDIS_OID_GEN_MEDIA_CONNECT_STATUS,
    RNDIS_OID_GEN_MAXIMUM_SEND_PACKETS,   RNDIS_OID_GEN_VENDOR_DRIVER_VERSION,
    RNDIS_OID_802_3_PERMANENT_ADDRESS,    RNDIS_OID_802_3_CURRENT_ADDRESS,
    RNDIS_OID_802_3_MAXIMUM_LIST_SIZE,    RNDIS_OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES,
    RNDIS_OID_TCP_OFFLOAD_CURRENT_CONFIG, RNDIS_OID_TCP_OFFLOAD_PARAMETERS,
    RNDIS_OID_GEN_RECEIVE_SCALE_CAPABILITIES,
};

/* The offloads we take from a guest: finishing TCP/UDP checksums, and
 * LSOv2 for IPv4 and IPv6 with the maximum size and segment minimum
 * vmswitch reports (RNDIS_LSO_MAX_SIZE of TCP payload, at least
 * RNDIS_LSO_MIN_SEGS segments), IPv6 extension headers and TCP options
 * included (Linux turns TSO6 on only with both). Receive coalescing (RSC)
 * for both IP versions where the guest can take it (revision 3 has the
 * fields; Linux turns LRO on only with both). */
static void fill_offload(const struct conn *c, struct ndis_offload *o, uint8_t rev, uint16_t size)
{
    memset(o, 0, sizeof(*o));
    o->hdr.type = NDIS_OBJTYPE_OFFLOAD;
    o->hdr.revision = rev;
    o->hdr.size = size;
    o->csum.ip4_txenc = NDIS_OFFLOAD_ENCAP_8023;
    o->csum.ip4_txcsum = NDIS_TXCSUM_CAP_TCP4 | NDIS_TXCSUM_CAP_TCP4OPT | NDIS_TXCSUM_CAP_UDP4 |
                         NDIS_TXCSUM_CAP_IP4OPT;
    o->csum.ip4_rxenc = NDIS_OFFLOAD_ENCAP_8023;
    o->csum.ip4_rxcsum = o->csum.ip4_txcsum;
    o->csum.ip6_txenc = NDIS_OFFLOAD_ENCAP_8023;
    o->csum.ip6_txcsum = NDIS_TXCSUM_CAP_TCP6 | NDIS_TXCSUM_CAP_TCP6OPT | NDIS_TXCSUM_CAP_UDP6 |
                         NDIS_TXCSUM_CAP_IP6EXT;
    o->csum.ip6_rxenc = NDIS_OFFLOAD_ENCAP_8023;
    o->csum.ip6_rxcsum = o->csum.ip6_txcsum;
    o->lsov2.ip4_encap = NDIS_OFFLOAD_ENCAP_8023;
    o->lsov2.ip4_maxsz = RNDIS_LSO_MAX_SIZE;
    o->lsov2.ip4_minsg = RNDIS_LSO_MIN_SEGS;
    o->lsov2.ip6_encap = NDIS_OFFLOAD_ENCAP_8023;
    o->lsov2.ip6_maxsz = RNDIS_LSO_MAX_SIZE;
    o->lsov2.ip6_minsg = RNDIS_LSO_MIN_SEGS;
    o->lsov2.ip6_opts = NDIS_LSOV2_CAP_IP6EXT | NDIS_LSOV2_CAP_TCP6OPT;
    if (rev >= 3 && c->rsc_cap)
        o->rsc_ip4 = o->rsc_ip6 = 1;
}

static uint32_t query_oid(struct netvsp *np, struct conn *c, uint32_t oid, const uint8_t *in,
                          uint32_t in_len, uint8_t *out, uint32_t cap, uint32_t *out_len)
{
    uint32_t v = 0;
    const void *src = &v;
    uint32_t len = 4;
    uint32_t l3 = jumbo_mtu_of_frame(c->frame);
    struct ndis_offload off;
    struct ndis_rss_caps rss;
    static const char vendor[] = "hvnet synthetic network adapter";

    switch (oid) {
    case RNDIS_OID_GEN_SUPPORTED_LIST:
        src = supported_oids;
        len = sizeof(supported_oids);
        break;
    case RNDIS_OID_GEN_HARDWARE_STATUS:
    case RNDIS_OID_GEN_MEDIA_SUPPORTED:
    case RNDIS_OID_GEN_MEDIA_IN_USE:
    case RNDIS_OID_802_3_MAXIMUM_LIST_SIZE:
        v = 0;
        break;
    case RNDIS_OID_GEN_MAXIMUM_LOOKAHEAD:
    case RNDIS_OID_GEN_CURRENT_LOOKAHEAD:
    case RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE:
        v = l3;
        break;
    case RNDIS_OID_GEN_LINK_SPEED:
        v = RNDIS_LINK_SPEED_10G;
        break;
    case RNDIS_OID_GEN_TRANSMIT_BUFFER_SPACE:
    case RNDIS_OID_GEN_RECEIVE_BUFFER_SPACE:
        v = 256u << 10;
        break;
    case RNDIS_OID_GEN_TRANSMIT_BLOCK_SIZE:
    case RNDIS_OID_GEN_RECEIVE_BLOCK_SIZE:
    case RNDIS_OID_GEN_MAXIMUM_TOTAL_SIZE:
        v = c->frame;
        break;
    case RNDIS_OID_GEN_VENDOR_ID:
        v = 0x0000155d;
        break;
    case RNDIS_OID_GEN_VENDOR_DESCRIPTION:
        src = vendor;
        len = sizeof(vendor);
        break;
    case RNDIS_OID_GEN_VENDOR_DRIVER_VERSION:
        v = 0x00010000;
        break;
    case RNDIS_OID_GEN_CURRENT_PACKET_FILTER:
        v = c->filter;
        break;
    case RNDIS_OID_GEN_MAC_OPTIONS:
        v = RNDIS_MAC_OPTION_COPY_LOOKAHEAD_DATA | RNDIS_MAC_OPTION_TRANSFERS_NOT_PEND |
            RNDIS_MAC_OPTION_NO_LOOPBACK | RNDIS_MAC_OPTION_8021P_PRIORITY |
            RNDIS_MAC_OPTION_8021Q_VLAN;
        break;
    case RNDIS_OID_GEN_MEDIA_CONNECT_STATUS:
        v = media(np) ? RNDIS_MEDIA_STATE_CONNECTED : RNDIS_MEDIA_STATE_DISCONNECTED;
        break;
    case RNDIS_OID_GEN_MAXIMUM_SEND_PACKETS:
        v = MAX_PKTS_PER_MSG;
        break;
    case RNDIS_OID_802_3_PERMANENT_ADDRESS:
    case RNDIS_OID_802_3_CURRENT_ADDRESS:
        src = np->mac;
        len = 6;
        break;
    case RNDIS_OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES:
    case RNDIS_OID_TCP_OFFLOAD_CURRENT_CONFIG: {
        /* The guest says which revision it wants; answer that size. */
        uint8_t rev = 3;
        uint16_t size = NDIS_OFFLOAD_SIZE_REV3;
        if (in_len >= sizeof(struct ndis_obj_hdr)) {
            struct ndis_obj_hdr h;
            memcpy(&h, in, sizeof(h));
            if (h.type != NDIS_OBJTYPE_OFFLOAD || h.revision < 1) {
                netvsp_bad(np, c, NETVSP_ERR_OID);
                return RNDIS_STATUS_INVALID_DATA;
            }
            rev = h.revision > 3 ? 3 : h.revision;
            size = rev == 1 ? NDIS_OFFLOAD_SIZE_REV1
                   : rev == 2 ? NDIS_OFFLOAD_SIZE_REV2
                              : NDIS_OFFLOAD_SIZE_REV3;
        }
        fill_offload(c, &off, rev, size);
        src = &off;
        len = size;
        break;
    }
    case RNDIS_OID_GEN_RECEIVE_SCALE_CAPABILITIES:
        memset(&rss, 0, sizeof(rss));
        rss.hdr.type = NDIS_OBJTYPE_RSS_CAPS;
        rss.hdr.revision = 2;
        rss.hdr.size = sizeof(rss);
        rss.caps = NDIS_RSS_CAP_TOEPLITZ | NDIS_RSS_CAP_IPV4 | NDIS_RSS_CAP_IPV6;
        rss.num_int_msgs = 1;
        /* The channels a guest may have (primary included): Linux asks
         * for min(its CPUs, this) - 1 sub-channels. */
        rss.num_recv_queues = __atomic_load_n(&np->queues, __ATOMIC_RELAXED);
        rss.num_indirect_entries = 128;
        src = &rss;
        len = sizeof(rss);
        break;
    default:
        return RNDIS_STATUS_NOT_SUPPORTED;
    }
    if (len > cap)
        return RNDIS_STATUS_BUFFER_TOO_SHORT;
    memcpy(out, src, len);
    *out_len = len;
    return RNDIS_STATUS_SUCCESS;
}

/* Is v one of an LSO/RSC parameter's values (no change, off, on)? */
static bool onoff_ok(uint8_t v)
{
    return v <= NDIS_OFFLOAD_LSOV2_ON;
}

/*
 * OID_TCP_OFFLOAD_PARAMETERS: which offloads the guest turns on or off.
 * Fields beyond the header's size are "no change". The whole request is
 * checked before any of it applies. Kept per connection: LSOv2 per IP
 * version (a large send is taken only while its version is on) and the
 * receive checksum offloads, which decide whether the port takes frames
 * with their checksum left to the network (VSW_TX_CSUM).
 */
static uint32_t set_offload_params(struct netvsp *np, struct conn *c, const uint8_t *in,
                                   uint32_t len)
{
    struct ndis_offload_params op;
    struct ndis_obj_hdr h;
    if (len < NDIS_OFFLOAD_PARAMS_SIZE_REV1)
        goto bad_data;
    memcpy(&h, in, sizeof(h));
    if (h.type != NDIS_OBJTYPE_DEFAULT || h.revision < 1 || h.size < NDIS_OFFLOAD_PARAMS_SIZE_REV1 ||
        h.size > len)
        goto bad_data;
    memset(&op, 0, sizeof(op));
    memcpy(&op, in, h.size < sizeof(op) ? h.size : sizeof(op));
    uint8_t vals[] = {op.tcp4_csum, op.udp4_csum, op.tcp6_csum, op.udp6_csum};
    for (size_t i = 0; i < sizeof(vals); i++)
        if (vals[i] > NDIS_OFFLOAD_PARAM_TXRX)
            goto bad_data;
    if (!onoff_ok(op.lsov1) || !onoff_ok(op.lsov2_ip4) || !onoff_ok(op.lsov2_ip6) ||
        !onoff_ok(op.rsc_ip4) || !onoff_ok(op.rsc_ip6))
        goto bad_data;
    /* LSOv1 is never offered, RSC only where the guest can take it
     * (fill_offload): refuse to turn them on otherwise. */
    if (op.lsov1 == NDIS_OFFLOAD_LSOV2_ON ||
        (!c->rsc_cap && (op.rsc_ip4 == NDIS_OFFLOAD_RSC_ON || op.rsc_ip6 == NDIS_OFFLOAD_RSC_ON)))
        return RNDIS_STATUS_NOT_SUPPORTED;
    bool tx = false;
    for (size_t i = 0; i < sizeof(vals); i++) {
        tx |= vals[i] == NDIS_OFFLOAD_PARAM_TX || vals[i] == NDIS_OFFLOAD_PARAM_TXRX;
        if (vals[i] == NDIS_OFFLOAD_PARAM_NOCHG)
            continue;
        if (vals[i] == NDIS_OFFLOAD_PARAM_RX || vals[i] == NDIS_OFFLOAD_PARAM_TXRX)
            c->rx_csum_on |= (uint8_t)(1u << i);
        else
            c->rx_csum_on &= (uint8_t)~(1u << i);
    }
    c->guest_csum = tx;
    if (op.lsov2_ip4 != NDIS_OFFLOAD_PARAM_NOCHG)
        c->lso4 = op.lsov2_ip4 == NDIS_OFFLOAD_LSOV2_ON;
    if (op.lsov2_ip6 != NDIS_OFFLOAD_PARAM_NOCHG)
        c->lso6 = op.lsov2_ip6 == NDIS_OFFLOAD_LSOV2_ON;
    if (op.rsc_ip4 != NDIS_OFFLOAD_PARAM_NOCHG)
        c->rsc4 = op.rsc_ip4 == NDIS_OFFLOAD_RSC_ON;
    if (op.rsc_ip6 != NDIS_OFFLOAD_PARAM_NOCHG)
        c->rsc6 = op.rsc_ip6 == NDIS_OFFLOAD_RSC_ON;
    c->rx_csum = c->rx_csum_on != 0;
    netvsp_update_tx_offloads(np, c);
    return RNDIS_STATUS_SUCCESS;
bad_data:
    netvsp_bad(np, c, NETVSP_ERR_OID);
    return RNDIS_STATUS_INVALID_DATA;
}

/* A new (or halted) adapter has the offloads it is offered, none on. */
static void reset_offloads(struct netvsp *np, struct conn *c)
{
    c->lso4 = c->lso6 = false;
    c->rsc4 = c->rsc6 = false;
    c->rx_csum_on = 0;
    c->rx_csum = false;
    memset(&c->rss, 0, sizeof(c->rss));
    netvsp_update_tx_offloads(np, c);
}

/* OID_GEN_RNDIS_CONFIG_PARAMETER: only "NetworkAddress" matters, and a
 * guest may not change its MAC (that is the switch's MAC-spoofing policy). */
static uint32_t set_config_param(struct netvsp *np, struct conn *c, const uint8_t *in,
                                 uint32_t len)
{
    struct rndis_config_param cp;
    if (len < sizeof(cp))
        goto bad_data;
    memcpy(&cp, in, sizeof(cp));
    if (cp.name_len > 255 * 2 || cp.value_len > 255 * 2 || (cp.name_len & 1) ||
        (uint64_t)cp.name_offset + cp.name_len > len ||
        (uint64_t)cp.value_offset + cp.value_len > len)
        goto bad_data;
    static const char key[] = "NetworkAddress";
    if (cp.name_len == 2 * (sizeof(key) - 1)) {
        bool match = true;
        for (size_t i = 0; i < sizeof(key) - 1; i++) {
            uint16_t ch;
            memcpy(&ch, in + cp.name_offset + 2 * i, 2);
            if (ch != (uint16_t)key[i])
                match = false;
        }
        if (match)
            return RNDIS_STATUS_NOT_SUPPORTED;
    }
    return RNDIS_STATUS_SUCCESS;
bad_data:
    netvsp_bad(np, c, NETVSP_ERR_OID);
    return RNDIS_STATUS_INVALID_DATA;
}

static uint32_t set_oid(struct netvsp *np, struct conn *c, uint32_t oid, const uint8_t *in,
                        uint32_t len)
{
    uint32_t v;
    switch (oid) {
    case RNDIS_OID_GEN_CURRENT_PACKET_FILTER:
        if (len < sizeof(v)) {
            netvsp_bad(np, c, NETVSP_ERR_OID);
            return RNDIS_STATUS_INVALID_LENGTH;
        }
        memcpy(&v, in, sizeof(v));
        c->filter = v;
        netvsp_update_link(np, c);
        return RNDIS_STATUS_SUCCESS;
    case RNDIS_OID_TCP_OFFLOAD_PARAMETERS:
        return set_offload_params(np, c, in, len);
    case RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER:
        return set_config_param(np, c, in, len);
    case RNDIS_OID_GEN_RECEIVE_SCALE_PARAMETERS: {
        /* in is the connection's copy of the message. */
        enum netvsp_rss_err why;
        /* A table may name the channels open now (Linux sets its
         * parameters after its sub-channels opened). */
        if (netvsp_rss_parse(in, len, netvsp_open_lanes(c), &c->rss, &c->rss, &why) < 0) {
            np->stats.rss_refused[why]++;
            return RNDIS_STATUS_INVALID_DATA;
        }
        np->stats.rss_sets++;
        return RNDIS_STATUS_SUCCESS;
    }
    case RNDIS_OID_GEN_NETWORK_LAYER_ADDRESSES:
    case RNDIS_OID_802_3_MULTICAST_LIST:
        /* Accepted: every multicast frame is delivered when the filter
         * asks for multicast. */
        return RNDIS_STATUS_SUCCESS;
    default:
        return RNDIS_STATUS_NOT_SUPPORTED;
    }
}

/* An RNDIS control message, copied into c->ctl (len bytes). */
void netvsp_rndis_control(struct netvsp *np, struct conn *c, uint32_t len)
{
    struct rndis_msg_hdr h;
    memcpy(&h, c->ctl, sizeof(h));
    uint8_t out[512];
    switch (h.type) {
    case RNDIS_MSG_INIT: {
        struct rndis_init_req r;
        if (len < sizeof(r))
            goto short_msg;
        memcpy(&r, c->ctl, sizeof(r));
        struct rndis_init_cmplt a = {
            .hdr = {.type = RNDIS_MSG_INIT_C, .len = sizeof(a)},
            .req_id = r.req_id,
            .status = RNDIS_STATUS_SUCCESS,
            .major = RNDIS_VERSION_MAJOR,
            .minor = RNDIS_VERSION_MINOR,
            .device_flags = RNDIS_DEVICE_FLAG_CONNECTIONLESS,
            .medium = RNDIS_MEDIUM_802_3,
            .max_pkts_per_msg = MAX_PKTS_PER_MSG,
            .max_xfer_size = 0xefffffffu,
            .align_factor = RNDIS_ALIGN_SHIFT,
        };
        c->rndis_ready = true;
        reset_offloads(np, c);
        c->media_told = true; /* a new adapter starts connected */
        c->media_gen_told = __atomic_load_n(&np->media_gen, __ATOMIC_ACQUIRE);
        if (!media(np))
            c->media_gen_told--; /* tell it at the end of this round */
        netvsp_send_ctrl(np, c, &a, sizeof(a));
        netvsp_update_link(np, c);
        return;
    }
    case RNDIS_MSG_QUERY:
    case RNDIS_MSG_SET:
    case RNDIS_MSG_SET_EX: {
        struct rndis_query_req q;
        if (len < sizeof(q))
            goto short_msg;
        memcpy(&q, c->ctl, sizeof(q));
        /* The information buffer: info_len bytes at 8 + info_offset. */
        const uint8_t *info = NULL;
        if (q.info_len) {
            if (q.info_offset < sizeof(q) - RNDIS_HEADER_SIZE ||
                (uint64_t)q.info_offset + RNDIS_HEADER_SIZE + q.info_len > len) {
                netvsp_bad(np, c, NETVSP_ERR_OID);
                goto answer_bad;
            }
            info = c->ctl + RNDIS_HEADER_SIZE + q.info_offset;
        }
        if (h.type == RNDIS_MSG_QUERY) {
            struct rndis_query_cmplt a = {.hdr = {.type = RNDIS_MSG_QUERY_C}, .req_id = q.req_id};
            uint32_t olen = 0;
            a.status = query_oid(np, c, q.oid, info, q.info_len, out + sizeof(a),
                                 sizeof(out) - sizeof(a), &olen);
            if (a.status != RNDIS_STATUS_SUCCESS)
                olen = 0;
            a.info_len = olen;
            a.info_offset = olen ? sizeof(a) - RNDIS_HEADER_SIZE : 0;
            a.hdr.len = (uint32_t)sizeof(a) + olen;
            memcpy(out, &a, sizeof(a));
            netvsp_send_ctrl(np, c, out, a.hdr.len);
        } else {
            struct rndis_set_cmplt a = {
                .hdr = {.type = h.type == RNDIS_MSG_SET ? RNDIS_MSG_SET_C : RNDIS_MSG_SET_EX_C,
                        .len = sizeof(a)},
                .req_id = q.req_id,
                .status = h.type == RNDIS_MSG_SET ? set_oid(np, c, q.oid, info, q.info_len)
                                                  : RNDIS_STATUS_NOT_SUPPORTED,
            };
            netvsp_send_ctrl(np, c, &a, sizeof(a));
        }
        return;
    answer_bad:
        if (h.type == RNDIS_MSG_QUERY) {
            /* A QUERY_C has its own, longer layout: empty, failed. */
            struct rndis_query_cmplt a = {
                .hdr = {.type = RNDIS_MSG_QUERY_C, .len = sizeof(a)},
                .req_id = q.req_id,
                .status = RNDIS_STATUS_INVALID_DATA,
            };
            netvsp_send_ctrl(np, c, &a, sizeof(a));
        } else {
            struct rndis_set_cmplt a = {
                .hdr = {.type = h.type | RNDIS_MSG_COMPLETION, .len = sizeof(a)},
                .req_id = q.req_id,
                .status = RNDIS_STATUS_INVALID_DATA,
            };
            netvsp_send_ctrl(np, c, &a, sizeof(a));
        }
        return;
    }
    case RNDIS_MSG_KEEPALIVE: {
        struct rndis_keepalive_req r;
        if (len < sizeof(r))
            goto short_msg;
        memcpy(&r, c->ctl, sizeof(r));
        struct rndis_keepalive_cmplt a = {.hdr = {.type = RNDIS_MSG_KEEPALIVE_C, .len = sizeof(a)},
                                          .req_id = r.req_id,
                                          .status = RNDIS_STATUS_SUCCESS};
        netvsp_send_ctrl(np, c, &a, sizeof(a));
        return;
    }
    case RNDIS_MSG_RESET: {
        struct rndis_reset_cmplt a = {.hdr = {.type = RNDIS_MSG_RESET_C, .len = sizeof(a)},
                                      .status = RNDIS_STATUS_SUCCESS,
                                      .addressing_reset = 0};
        netvsp_send_ctrl(np, c, &a, sizeof(a));
        return;
    }
    case RNDIS_MSG_HALT:
        /* No answer; the guest is going away. Stop delivering. */
        c->rndis_ready = false;
        reset_offloads(np, c);
        netvsp_update_link(np, c);
        return;
    default:
        netvsp_bad(np, c, NETVSP_ERR_RNDIS_TYPE);
        return;
    }
short_msg:
    netvsp_bad(np, c, NETVSP_ERR_RNDIS_LEN);
}

/* Can an indication go out now, or at least be queued? netvsp_send_ctrl drops
 * what finds neither ring room nor a queue slot, and nothing sends an
 * indication twice: callers wait for room (the worker is woken when the
 * ring drains) rather than lose one. */
static bool indication_room(const struct conn *c)
{
    return c->npend < PENDING_CTRL && vmbus_ring_free_bytes(c->tx) >= netvsp_reply_room();
}

static void send_media(struct netvsp *np, struct conn *c, bool connected)
{
    struct rndis_indicate_status st = {
        .hdr = {.type = RNDIS_MSG_INDICATE, .len = sizeof(st)},
        .status = connected ? RNDIS_STATUS_MEDIA_CONNECT : RNDIS_STATUS_MEDIA_DISCONNECT,
    };
    netvsp_send_ctrl(np, c, &st, sizeof(st));
}

/* Tell the guest its cable changed. Changes can come faster than rounds: an
 * unplug and replug between two rounds still reach the guest as both, and
 * the replug is held back a little (as vmswitch damps flapping) so that the
 * guest's stack sees an outage rather than a glitch it coalesces away. */
#define MEDIA_HOLD_MS 200
void netvsp_indicate_media(struct netvsp *np, struct conn *c)
{
    uint32_t gen = __atomic_load_n(&np->media_gen, __ATOMIC_ACQUIRE);
    if (gen == c->media_gen_told || !c->rndis_ready || !c->rbuf || !indication_room(c))
        return;
    bool m = media(np);
    uint64_t now = rte_get_tsc_cycles();
    if (m && c->media_told) {
        send_media(np, c, false); /* the unplug the guest has not seen */
        c->media_told = false;
        c->media_hold = now + rte_get_tsc_hz() / 1000 * MEDIA_HOLD_MS;
        netvsp_update_link(np, c);
        return;
    }
    if (m && now < c->media_hold)
        return; /* workers wake at least every 100 ms: it will come */
    if (m != c->media_told)
        send_media(np, c, m);
    c->media_told = m;
    c->media_gen_told = gen;
    if (!m)
        c->media_hold = now + rte_get_tsc_hz() / 1000 * MEDIA_HOLD_MS;
    netvsp_update_link(np, c);
}

/* The NIC's MTU changed under a connected guest. A lower one applies at
 * once (frames above it are dropped, counted too_big); either way the guest
 * is told the network changed, and re-initialises as it would for an MTU
 * change of its own (NDIS_CONFIG, new sections), which brings in the new
 * limit. */
void netvsp_indicate_mtu(struct netvsp *np, struct conn *c)
{
    if (!c->rndis_ready || !c->rbuf)
        return;
    uint32_t gen = __atomic_load_n(&np->mtu_gen, __ATOMIC_ACQUIRE);
    uint32_t nic_frame = jumbo_frame(__atomic_load_n(&np->mtu, __ATOMIC_ACQUIRE));
    if (nic_frame < c->frame) {
        c->frame = nic_frame;
        vsw_port_set_max_frame(&np->port, c->frame);
    }
    /* Until the guest starts over, its stack may still use the old MTU. */
    np->stats.mtu_pending = true;
    if (!indication_room(c))
        return; /* next round, or when the ring drains */
    c->mtu_gen_seen = gen;
    uint32_t change = RNDIS_NETWORK_CHANGE_DEFINITELY;
    uint8_t msg[sizeof(struct rndis_indicate_status) + sizeof(change)];
    struct rndis_indicate_status st = {
        .hdr = {.type = RNDIS_MSG_INDICATE, .len = sizeof(msg)},
        .status = RNDIS_STATUS_NETWORK_CHANGE,
        .buf_len = sizeof(change),
        .buf_offset = sizeof(st) - RNDIS_HEADER_SIZE,
    };
    memcpy(msg, &st, sizeof(st));
    memcpy(msg + sizeof(st), &change, sizeof(change));
    netvsp_send_ctrl(np, c, msg, sizeof(msg));
    np->stats.network_changes++;
}
