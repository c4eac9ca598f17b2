/*
 * netvsp: root side of NVSP + RNDIS over one VMBus channel, as a switch port.
 *
 * Ownership. The control thread creates the offer and handles the channel's
 * open/close callbacks; while open, everything about the connection (struct
 * conn) belongs to the worker that owns the port: it alone reads the
 * guest->root ring, writes the root->guest ring, and touches the buffers.
 * open publishes the conn with a release store; close unpublishes it and
 * waits an RCU grace period (vsw_port_synchronize) before freeing it.
 *
 * Guest memory the worker reads: the send buffer (a GPADL view), the pages
 * of GPA-direct ranges (through the partition's read-only DMA view, after
 * checking every PFN), and nothing else. It writes only the receive buffer
 * (a GPADL view), inside sub-allocations it owns at that moment.
 *
 * Receive-buffer sub-allocations: 0..15 are kept for control answers, the
 * rest carry frames. A transfer packet carries a chain of them; its
 * transaction id is the index of the chain's first one, nothing else (as
 * vmswitch and OpenVMM send it: DPDK's netvsc uses the id as an index into
 * its table of receive sections and drops the packet when it is not one;
 * Linux and FreeBSD echo it back), and only the guest's completion of
 * exactly that id, while that chain is outstanding, frees the chain.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "hv.h"
#include "jumbo.h"
#include "netvsp.h"
#include "vmbus-ring.h"
#include "vmnic.h"
#include "vsw-frame.h"
#include "vsw-port-provider.h"

#define CTRL_SUBS 16u
#define XFER_BATCH 64u
#define MAX_GPA_RANGES 32u
#define MAX_SEGS 64u
#define STREAM_MAX (65536u + 8192u)
#define PKT_MAX 8192u
#define CTRL_MSG_MAX 4096u
#define PENDING_CTRL 16u
#define PPI_MAX 1024u /* bytes of per-packet info a PACKET_MSG may carry */
#define CHAIN_END UINT32_MAX
#define MAX_PKTS_PER_MSG 8u
#define RNDIS_ALIGN_SHIFT 3u
#define RX_HDR_ROOM 256u /* RNDIS header + PPIs before the frame (OVMM) */
#define RX_TAIL_ROOM 36u /* left unused at a section's end (OVMM, Windows guests) */

struct seg {
    const uint8_t *p;
    uint32_t len;
};

/* The RNDIS bytes of one NVSP send: a send-buffer slice, then the pages of
 * the packet's GPA-direct ranges. */
struct gstream {
    uint32_t nseg;
    uint32_t total;
    struct seg seg[MAX_SEGS];
};

struct pending_ctrl {
    uint32_t len;
    uint8_t data[512];
};

struct conn {
    struct vmbus_chan *chan;
    struct vmbus_ring *rx, *tx;
    struct hv_partition *part;
    const uint8_t *dma;
    uint64_t mem_pages;

    bool inited;
    uint32_t nvsp_ver;
    uint32_t msg_size;
    bool have_config, have_ndis_ver;
    uint32_t ndis_ver;
    uint32_t ndis_frame; /* NDIS_CONFIG mtu field, validated */
    uint32_t frame;      /* largest frame both ways: min(ndis_frame, NIC mtu + 14) */

    struct vmbus_gpadl *rgp;
    uint8_t *rbuf;
    uint64_t rlen;
    uint16_t rid;
    uint32_t sub_size, nsub;
    uint32_t *free_data;
    uint32_t nfree_data;
    uint32_t free_ctrl[CTRL_SUBS];
    uint32_t nfree_ctrl;
    uint32_t *next;
    uint8_t *outstanding;

    struct vmbus_gpadl *sgp;
    const uint8_t *sbuf;
    uint64_t slen;
    uint32_t nsections;

    bool rndis_ready;
    uint32_t filter;
    bool guest_csum; /* the guest may ask us to finish checksums */

    struct vmbus_xfer_range xr[XFER_BATCH];
    uint32_t xn, xhead, xtail;
    bool unpublished;

    struct pending_ctrl pend[PENDING_CTRL];
    uint32_t npend;

    uint32_t errors;
    uint32_t frames_seen; /* PACKET_MSGs parsed, kept or dropped (rx budget) */
    bool dead;
    bool media_told;         /* what the guest was last told (worker) */
    uint32_t media_gen_told; /* np->media_gen when it was told */
    uint32_t mtu_gen_seen;   /* np->mtu_gen the frame limit was computed at */
    uint64_t media_hold;     /* TSC until which a reconnect waits */
    uint8_t pkt[PKT_MAX];
    uint8_t ctl[CTRL_MSG_MAX];
};

struct netvsp {
    struct vsw_port port;
    struct vmbus_server *srv;
    struct vmbus_chan *chan;
    char nic_name[NETVSP_NIC_NAME_MAX + 1];
    uint8_t mac[6];
    uint32_t mtu;
    struct rte_mempool *pool;
    struct conn *conn; /* RCU-published to the worker */
    bool media;        /* connected (atomic; control thread writes) */
    uint32_t media_gen; /* changes of media (atomic) */
    uint32_t mtu_gen;   /* changes of mtu (atomic) */
    struct netvsp_stats stats;
};

static const char *const err_names[NETVSP_ERR_COUNT] = {
    [NETVSP_ERR_RING] = "ring_corrupt",
    [NETVSP_ERR_PKT_TYPE] = "packet_type",
    [NETVSP_ERR_NVSP_SHORT] = "nvsp_short",
    [NETVSP_ERR_NVSP_TYPE] = "nvsp_type",
    [NETVSP_ERR_NVSP_ORDER] = "nvsp_order",
    [NETVSP_ERR_NO_COMPLETION] = "no_completion_requested",
    [NETVSP_ERR_GPADL] = "gpadl",
    [NETVSP_ERR_SECTION] = "send_section",
    [NETVSP_ERR_GPA_RANGE] = "gpa_range",
    [NETVSP_ERR_RNDIS_LEN] = "rndis_length",
    [NETVSP_ERR_RNDIS_TYPE] = "rndis_type",
    [NETVSP_ERR_RNDIS_PACKET] = "rndis_packet",
    [NETVSP_ERR_PPI] = "ppi",
    [NETVSP_ERR_OFFLOAD] = "offload_metadata",
    [NETVSP_ERR_OID] = "oid_buffer",
    [NETVSP_ERR_COMPLETION_ID] = "completion_id",
    [NETVSP_ERR_NOT_READY] = "not_ready",
    [NETVSP_ERR_BUFFER_SIZE] = "buffer_too_big",
};

const char *netvsp_err_name(enum netvsp_err e)
{
    return e < NETVSP_ERR_COUNT ? err_names[e] : "invalid";
}

static struct netvsp *np_of(struct vsw_port *port)
{
    return container_of(port, struct netvsp, port);
}

/* Count a bad message; cut the guest off once it has sent too many. */
static void bad(struct netvsp *np, struct conn *c, enum netvsp_err e)
{
    np->stats.errors[e]++;
    if (++c->errors >= NETVSP_ERRORS_MAX && !c->dead) {
        c->dead = true;
        np->stats.disconnects++;
        vmbus_chan_fail(c->chan);
    }
}

static bool media(const struct netvsp *np)
{
    return __atomic_load_n(&np->media, __ATOMIC_ACQUIRE);
}

/* A ring of the channel is corrupt (the guest wrote an impossible index):
 * nothing more can be exchanged on it. */
static void ring_fatal(struct netvsp *np, struct conn *c)
{
    if (c->dead)
        return;
    np->stats.errors[NETVSP_ERR_RING]++;
    c->dead = true;
    np->stats.disconnects++;
    vmbus_chan_fail(c->chan);
}

static void update_link(struct netvsp *np, struct conn *c)
{
    bool up = c && !c->dead && c->rndis_ready && c->filter != 0 && c->rbuf && media(np) &&
              c->media_told;
    if (vsw_port_link(&np->port) != up)
        vsw_port_set_link(&np->port, up);
}

/* --- root -> guest: transfer packets ------------------------------------ */

static void xfer_reset(struct conn *c)
{
    c->xn = 0;
    c->xhead = c->xtail = CHAIN_END;
}

static void free_sub(struct conn *c, uint32_t s)
{
    if (s < CTRL_SUBS)
        c->free_ctrl[c->nfree_ctrl++] = s;
    else
        c->free_data[c->nfree_data++] = s;
}

static void free_chain(struct conn *c, uint32_t first)
{
    for (uint32_t s = first; s != CHAIN_END;) {
        uint32_t nx = c->next[s];
        c->next[s] = CHAIN_END;
        free_sub(c, s);
        s = nx;
    }
}

static void xfer_add(struct conn *c, uint32_t sub, uint32_t len)
{
    c->xr[c->xn].byte_count = len;
    c->xr[c->xn].byte_offset = sub * c->sub_size;
    c->xn++;
    c->next[sub] = CHAIN_END;
    if (c->xhead == CHAIN_END)
        c->xhead = sub;
    else
        c->next[c->xtail] = sub;
    c->xtail = sub;
}

/* Send the batched ranges as one transfer packet. On a full ring the
 * sub-allocations go back and the frames count as dropped. */
static uint32_t xfer_emit(struct netvsp *np, struct conn *c, uint32_t channel_type)
{
    if (c->xn == 0)
        return 0;
    struct nvsp_msg_rndis_pkt m = {
        .type = NVSP_MSG1_SEND_RNDIS_PKT,
        .channel_type = channel_type,
        .send_buf_section_index = NVSP_SECTION_NONE,
        .send_buf_section_size = 0,
    };
    uint8_t body[NVSP_MSG_SIZE_61] = {0};
    memcpy(body, &m, sizeof(m));
    uint32_t n = c->xn;
    int rc = vmbus_ring_put_xfer_pages(c->tx, c->xhead, c->rid, c->xr, c->xn, body, c->msg_size);
    if (rc < 0) {
        if (rc == -EPROTO)
            ring_fatal(np, c);
        else
            np->stats.tx_ring_full += n;
        free_chain(c, c->xhead);
        xfer_reset(c);
        return 0;
    }
    c->outstanding[c->xhead] = 1;
    c->unpublished = true;
    xfer_reset(c);
    return n;
}

static bool alloc_ctrl(struct conn *c, uint32_t *sub)
{
    if (!c->nfree_ctrl)
        return false;
    *sub = c->free_ctrl[--c->nfree_ctrl];
    return true;
}

/* Ring bytes one guest request can make us produce: the transfer packet of
 * an RNDIS answer and the request's completion. */
static uint32_t reply_room(void)
{
    return vmbus_ring_pkt_size(8 + sizeof(struct vmbus_xfer_range), NVSP_MSG_SIZE_61) +
           vmbus_ring_pkt_size(0, NVSP_MSG_SIZE_61);
}

/* Send one RNDIS control message in control sub-allocation sub. */
static void send_ctrl_in(struct netvsp *np, struct conn *c, uint32_t sub, const void *msg,
                         uint32_t len)
{
    memcpy(c->rbuf + (size_t)sub * c->sub_size, msg, len);
    /* Data ranges may be batched: control goes in its own packet. */
    struct vmbus_xfer_range saved[XFER_BATCH];
    uint32_t sn = c->xn, sh = c->xhead, st = c->xtail;
    memcpy(saved, c->xr, sizeof(c->xr[0]) * sn);
    xfer_reset(c);
    xfer_add(c, sub, len);
    xfer_emit(np, c, NVSP_CHANNEL_TYPE_CONTROL);
    memcpy(c->xr, saved, sizeof(c->xr[0]) * sn);
    c->xn = sn;
    c->xhead = sh;
    c->xtail = st;
    np->stats.control_msgs++;
}

/* Send one RNDIS control message to the guest (answer or indication). If
 * no control sub-allocation is free, or older messages wait, queue it
 * (bounded). */
static void send_ctrl(struct netvsp *np, struct conn *c, const void *msg, uint32_t len)
{
    uint32_t sub;
    if (len > c->sub_size || !c->rbuf)
        return;
    if (c->npend || !alloc_ctrl(c, &sub)) {
        if (c->npend < PENDING_CTRL && len <= sizeof(c->pend[0].data)) {
            c->pend[c->npend].len = len;
            memcpy(c->pend[c->npend].data, msg, len);
            c->npend++;
        }
        return;
    }
    send_ctrl_in(np, c, sub, msg, len);
}

/* Send queued control messages, oldest first, while a control
 * sub-allocation and ring room for its transfer are free. */
static void flush_pending_ctrl(struct netvsp *np, struct conn *c)
{
    uint32_t sub;
    if (!c->rbuf) {
        c->npend = 0;
        return;
    }
    while (c->npend && vmbus_ring_free_bytes(c->tx) >= reply_room() && alloc_ctrl(c, &sub)) {
        struct pending_ctrl p = c->pend[0];
        memmove(&c->pend[0], &c->pend[1], sizeof(c->pend[0]) * (c->npend - 1));
        c->npend--;
        send_ctrl_in(np, c, sub, p.data, p.len);
    }
}

static void send_completion(struct conn *c, uint64_t tid, uint32_t type, uint32_t status)
{
    uint32_t m[2] = {type, status};
    uint8_t body[NVSP_MSG_SIZE_61] = {0};
    memcpy(body, m, sizeof(m));
    if (vmbus_ring_put_inband(c->tx, VMBUS_PKT_COMP, 0, tid, body, c->msg_size) == 0)
        c->unpublished = true;
}

static void complete_body(struct conn *c, uint64_t tid, const void *body, uint32_t len)
{
    uint8_t b[NVSP_MSG_SIZE_61] = {0};
    memcpy(b, body, len < sizeof(b) ? len : sizeof(b));
    uint32_t sz = c->msg_size > len ? c->msg_size : len;
    if (vmbus_ring_put_inband(c->tx, VMBUS_PKT_COMP, 0, tid, b, sz) == 0)
        c->unpublished = true;
}

static void publish(struct netvsp *np, struct conn *c)
{
    if (!c->unpublished)
        return;
    c->unpublished = false;
    int s = vmbus_ring_publish(c->tx);
    if (s == 1)
        vmbus_chan_signal(c->chan);
    else if (s < 0)
        ring_fatal(np, c);
}

/* --- RNDIS control ------------------------------------------------------ */

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

/* The offloads we take from a guest: finishing TCP/UDP checksums. No LSO
 * yet: frames up to the MTU only. */
static void fill_offload(struct ndis_offload *o, uint8_t rev, uint16_t size)
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
}

static uint32_t query_oid(struct netvsp *np, struct conn *c, uint32_t oid, const uint8_t *in,
                          uint32_t in_len, uint8_t *out, uint32_t cap, uint32_t *out_len)
{
    uint32_t v = 0;
    const void *src = &v;
    uint32_t len = 4;
    uint32_t l3 = c->frame - RTE_ETHER_HDR_LEN;
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
                bad(np, c, NETVSP_ERR_OID);
                return RNDIS_STATUS_INVALID_DATA;
            }
            rev = h.revision > 3 ? 3 : h.revision;
            size = rev == 1 ? NDIS_OFFLOAD_SIZE_REV1
                   : rev == 2 ? NDIS_OFFLOAD_SIZE_REV2
                              : NDIS_OFFLOAD_SIZE_REV3;
        }
        fill_offload(&off, rev, size);
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
        rss.num_recv_queues = 1; /* one channel: guests skip sub-channels */
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
    memcpy(&op, in, len < sizeof(op) ? len : sizeof(op));
    /* We do not segment for guests (no LSO offered): refuse to turn it on. */
    if (op.lsov1 == NDIS_OFFLOAD_LSOV2_ON || op.lsov2_ip4 == NDIS_OFFLOAD_LSOV2_ON ||
        op.lsov2_ip6 == NDIS_OFFLOAD_LSOV2_ON)
        return RNDIS_STATUS_NOT_SUPPORTED;
    uint8_t vals[] = {op.tcp4_csum, op.udp4_csum, op.tcp6_csum, op.udp6_csum};
    for (size_t i = 0; i < sizeof(vals); i++)
        if (vals[i] > NDIS_OFFLOAD_PARAM_TXRX)
            goto bad_data;
    bool tx = false;
    for (size_t i = 0; i < sizeof(vals); i++)
        tx |= vals[i] == NDIS_OFFLOAD_PARAM_TX || vals[i] == NDIS_OFFLOAD_PARAM_TXRX;
    c->guest_csum = tx;
    return RNDIS_STATUS_SUCCESS;
bad_data:
    bad(np, c, NETVSP_ERR_OID);
    return RNDIS_STATUS_INVALID_DATA;
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
    bad(np, c, NETVSP_ERR_OID);
    return RNDIS_STATUS_INVALID_DATA;
}

static uint32_t set_oid(struct netvsp *np, struct conn *c, uint32_t oid, const uint8_t *in,
                        uint32_t len)
{
    uint32_t v;
    switch (oid) {
    case RNDIS_OID_GEN_CURRENT_PACKET_FILTER:
        if (len < 4) {
            bad(np, c, NETVSP_ERR_OID);
            return RNDIS_STATUS_INVALID_LENGTH;
        }
        memcpy(&v, in, 4);
        c->filter = v;
        update_link(np, c);
        return RNDIS_STATUS_SUCCESS;
    case RNDIS_OID_TCP_OFFLOAD_PARAMETERS:
        return set_offload_params(np, c, in, len);
    case RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER:
        return set_config_param(np, c, in, len);
    case RNDIS_OID_GEN_NETWORK_LAYER_ADDRESSES:
    case RNDIS_OID_802_3_MULTICAST_LIST:
    case RNDIS_OID_GEN_RECEIVE_SCALE_PARAMETERS:
        /* Accepted: every multicast frame is delivered when the filter
         * asks for multicast; one queue needs no RSS table. */
        return RNDIS_STATUS_SUCCESS;
    default:
        return RNDIS_STATUS_NOT_SUPPORTED;
    }
}

/* An RNDIS control message, copied into c->ctl (len bytes). */
static void rndis_control(struct netvsp *np, struct conn *c, uint32_t len)
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
        c->media_told = true; /* a new adapter starts connected */
        c->media_gen_told = __atomic_load_n(&np->media_gen, __ATOMIC_ACQUIRE);
        if (!media(np))
            c->media_gen_told--; /* tell it at the end of this round */
        send_ctrl(np, c, &a, sizeof(a));
        update_link(np, c);
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
            if (q.info_offset < sizeof(q) - 8 || (uint64_t)q.info_offset + 8 + q.info_len > len) {
                bad(np, c, NETVSP_ERR_OID);
                goto answer_bad;
            }
            info = c->ctl + 8 + q.info_offset;
        }
        if (h.type == RNDIS_MSG_QUERY) {
            struct rndis_query_cmplt a = {.hdr = {.type = RNDIS_MSG_QUERY_C}, .req_id = q.req_id};
            uint32_t olen = 0;
            a.status = query_oid(np, c, q.oid, info, q.info_len, out + sizeof(a),
                                 sizeof(out) - sizeof(a), &olen);
            if (a.status != RNDIS_STATUS_SUCCESS)
                olen = 0;
            a.info_len = olen;
            a.info_offset = olen ? sizeof(a) - 8 : 0;
            a.hdr.len = (uint32_t)sizeof(a) + olen;
            memcpy(out, &a, sizeof(a));
            send_ctrl(np, c, out, a.hdr.len);
        } else {
            struct rndis_set_cmplt a = {
                .hdr = {.type = h.type == RNDIS_MSG_SET ? RNDIS_MSG_SET_C : RNDIS_MSG_SET_EX_C,
                        .len = sizeof(a)},
                .req_id = q.req_id,
                .status = h.type == RNDIS_MSG_SET ? set_oid(np, c, q.oid, info, q.info_len)
                                                  : RNDIS_STATUS_NOT_SUPPORTED,
            };
            send_ctrl(np, c, &a, sizeof(a));
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
            send_ctrl(np, c, &a, sizeof(a));
        } else {
            struct rndis_set_cmplt a = {
                .hdr = {.type = h.type | 0x80000000u, .len = sizeof(a)},
                .req_id = q.req_id,
                .status = RNDIS_STATUS_INVALID_DATA,
            };
            send_ctrl(np, c, &a, sizeof(a));
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
        send_ctrl(np, c, &a, sizeof(a));
        return;
    }
    case RNDIS_MSG_RESET: {
        struct rndis_reset_cmplt a = {.hdr = {.type = RNDIS_MSG_RESET_C, .len = sizeof(a)},
                                      .status = RNDIS_STATUS_SUCCESS,
                                      .addressing_reset = 0};
        send_ctrl(np, c, &a, sizeof(a));
        return;
    }
    case RNDIS_MSG_HALT:
        /* No answer; the guest is going away. Stop delivering. */
        c->rndis_ready = false;
        update_link(np, c);
        return;
    default:
        bad(np, c, NETVSP_ERR_RNDIS_TYPE);
        return;
    }
short_msg:
    bad(np, c, NETVSP_ERR_RNDIS_LEN);
}

/* --- guest -> root: frames ---------------------------------------------- */

static int gs_copy(const struct gstream *gs, uint32_t off, uint32_t len, void *dst)
{
    if ((uint64_t)off + len > gs->total)
        return -1;
    uint8_t *d = dst;
    for (uint32_t i = 0; i < gs->nseg && len; i++) {
        const struct seg *s = &gs->seg[i];
        if (off >= s->len) {
            off -= s->len;
            continue;
        }
        uint32_t k = s->len - off < len ? s->len - off : len;
        memcpy(d, s->p + off, k);
        d += k;
        len -= k;
        off = 0;
    }
    return 0;
}

/* Copy len bytes at off of the stream into a new mbuf chain. */
static struct rte_mbuf *gs_to_mbuf(struct rte_mempool *pool, const struct gstream *gs, uint32_t off,
                                   uint32_t len)
{
    struct rte_mbuf *head = rte_pktmbuf_alloc(pool);
    if (!head)
        return NULL;
    struct rte_mbuf *m = head;
    uint32_t done = 0;
    while (done < len) {
        uint16_t room = rte_pktmbuf_tailroom(m);
        uint32_t k = len - done < room ? len - done : room;
        if (k == 0) {
            struct rte_mbuf *nm = rte_pktmbuf_alloc(pool);
            if (!nm) {
                rte_pktmbuf_free(head);
                return NULL;
            }
            m->next = nm;
            head->nb_segs++;
            m = nm;
            continue;
        }
        gs_copy(gs, off + done, k, rte_pktmbuf_mtod_offset(m, uint8_t *, m->data_len));
        m->data_len += (uint16_t)k;
        head->pkt_len += k;
        done += k;
    }
    return head;
}

/* Checksum offload request: check it against the frame and put it into the
 * mbuf so whoever sends the frame on knows the checksum is still to do. The
 * transport offset counts any tags the guest put into the frame itself
 * (in-band VLAN or priority tags); where the IP header starts is read from
 * the frame as the switch reads it. */
static bool apply_csum(struct rte_mbuf *m, uint32_t info)
{
    uint32_t thoff = (info >> RNDIS_TXCSUM_THOFF_SHIFT) & RNDIS_TXCSUM_THOFF_MASK;
    bool v4 = info & RNDIS_TXCSUM_IPV4, v6 = info & RNDIS_TXCSUM_IPV6;
    bool tcp = info & RNDIS_TXCSUM_TCP, udp = info & RNDIS_TXCSUM_UDP;
    /* The IPv4 header checksum is not offered (fill_offload): asking for it
     * breaks the protocol, like asking for segmentation. */
    if (info & RNDIS_TXCSUM_IP_HDR)
        return false;
    if (!(tcp || udp))
        return !(info & ~(RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_IPV6));
    if (v4 == v6 || tcp == udp)
        return false;
    return vsw_frame_csum_request(m, thoff, tcp, v4 ? 4 : 6) == 0;
}

/*
 * One PACKET_MSG at off in the stream, len bytes long. Builds the mbuf into
 * *out, or leaves it NULL (dropped, counted).
 */
static void rndis_packet(struct netvsp *np, struct conn *c, const struct gstream *gs, uint32_t off,
                         uint32_t len, struct rte_mbuf **out)
{
    struct rndis_packet_msg pm;
    *out = NULL;
    if (len < sizeof(pm) || gs_copy(gs, off, sizeof(pm), &pm) < 0) {
        bad(np, c, NETVSP_ERR_RNDIS_LEN);
        return;
    }
    if (pm.oob_data_offset || pm.oob_data_len || pm.num_oob_elements || pm.vc_handle ||
        !vmnic_rndis_data_ok(&pm, len)) {
        bad(np, c, NETVSP_ERR_RNDIS_PACKET);
        return;
    }
    struct vmnic_ppi ppi = {0};
    if (pm.ppi_len) {
        uint8_t ppis[PPI_MAX];
        if (!vmnic_rndis_ppi_area_ok(&pm, len) || pm.ppi_len > PPI_MAX) {
            bad(np, c, NETVSP_ERR_PPI);
            return;
        }
        gs_copy(gs, off + RNDIS_HEADER_SIZE + pm.ppi_offset, pm.ppi_len, ppis);
        if (vmnic_ppi_parse(ppis, pm.ppi_len, &ppi) < 0) {
            bad(np, c, NETVSP_ERR_PPI);
            return;
        }
    }
    if (ppi.present & VMNIC_PPI_LSO) {
        /* Not offered: a guest asking for segmentation broke the protocol. */
        bad(np, c, NETVSP_ERR_OFFLOAD);
        return;
    }
    /* A frame may carry a tag in-band instead of in the VLAN PPI: then it
     * is 4 bytes longer than the frame limit allows. Which tags it may
     * carry is the switch's to judge (classify_vlan). */
    if (!jumbo_frame_fits(pm.data_len, c->frame, true)) {
        np->stats.rx_frames_too_big++;
        vsw_port_drop(&np->port, VSW_DROP_RX_TOO_BIG, 1);
        return;
    }
    if (pm.data_len < RTE_ETHER_HDR_LEN) {
        vsw_port_drop(&np->port, VSW_DROP_RUNT, 1);
        return;
    }
    struct rte_mbuf *m =
        gs_to_mbuf(np->pool, gs, off + RNDIS_HEADER_SIZE + pm.data_offset, pm.data_len);
    if (!m) {
        vsw_port_drop(&np->port, VSW_DROP_NO_MBUF, 1);
        return;
    }
    if (pm.data_len > c->frame &&
        !vsw_l2_is_tpid(rte_pktmbuf_mtod(m, const struct rte_ether_hdr *)->ether_type)) {
        np->stats.rx_frames_too_big++;
        vsw_port_drop(&np->port, VSW_DROP_RX_TOO_BIG, 1);
        rte_pktmbuf_free(m);
        return;
    }
    if (ppi.present & VMNIC_PPI_VLAN) {
        /* The switch decides whether this port may send it (trunk). */
        m->ol_flags |= RTE_MBUF_F_RX_VLAN;
        m->vlan_tci = (uint16_t)(RNDIS_VLAN_ID(ppi.vlan) | (RNDIS_VLAN_PRIO(ppi.vlan) << 13));
    }
    if ((ppi.present & VMNIC_PPI_CSUM) && !apply_csum(m, ppi.csum)) {
        bad(np, c, NETVSP_ERR_OFFLOAD);
        rte_pktmbuf_free(m);
        return;
    }
    *out = m;
}

/* Build the stream of an NVSP send: section slice + GPA-direct ranges. */
static int build_stream(struct netvsp *np, struct conn *c, const struct vmbus_pkt *pkt,
                        const struct nvsp_msg_rndis_pkt *m, struct gstream *gs)
{
    gs->nseg = 0;
    gs->total = 0;
    if (m->send_buf_section_index != NVSP_SECTION_NONE) {
        uint64_t start = (uint64_t)m->send_buf_section_index * NVSP_SEND_SECTION_SIZE;
        if (!c->sbuf || m->send_buf_section_index >= c->nsections ||
            m->send_buf_section_size > NVSP_SEND_SECTION_SIZE ||
            start + m->send_buf_section_size > c->slen || m->send_buf_section_size == 0) {
            bad(np, c, NETVSP_ERR_SECTION);
            return -1;
        }
        gs->seg[0].p = c->sbuf + start;
        gs->seg[0].len = m->send_buf_section_size;
        gs->nseg = 1;
        gs->total = m->send_buf_section_size;
    }
    if (pkt->type == VMBUS_PKT_DATA_USING_GPA_DIRECT) {
        struct vmbus_range rg[MAX_GPA_RANGES];
        int nr = vmbus_pkt_gpa_direct(pkt, rg, MAX_GPA_RANGES);
        if (nr < 0) {
            bad(np, c, NETVSP_ERR_GPA_RANGE);
            return -1;
        }
        for (int i = 0; i < nr; i++) {
            uint32_t left = rg[i].byte_count, poff = rg[i].byte_offset;
            for (uint32_t j = 0; j < rg[i].pfn_count && left; j++) {
                uint64_t pfn = vmbus_range_pfn(&rg[i], j);
                uint32_t k = HV_PAGE_SIZE - poff < left ? HV_PAGE_SIZE - poff : left;
                if (pfn >= c->mem_pages || gs->nseg == MAX_SEGS || gs->total + k > STREAM_MAX) {
                    bad(np, c, NETVSP_ERR_GPA_RANGE);
                    return -1;
                }
                gs->seg[gs->nseg].p = c->dma + (pfn << HV_PAGE_SHIFT) + poff;
                gs->seg[gs->nseg].len = k;
                gs->nseg++;
                gs->total += k;
                left -= k;
                poff = 0;
            }
        }
    }
    if (gs->total < sizeof(struct rndis_msg_hdr)) {
        bad(np, c, NETVSP_ERR_RNDIS_LEN);
        return -1;
    }
    return 0;
}

/*
 * NVSP SEND_RNDIS_PKT: walk the RNDIS messages of the stream. Data frames go
 * to pkts (room for MAX_PKTS_PER_MSG); a control message is answered.
 * Returns the NVSP status to complete with.
 */
static uint32_t rndis_send(struct netvsp *np, struct conn *c, const struct vmbus_pkt *pkt,
                           const struct nvsp_msg_rndis_pkt *m, struct rte_mbuf **pkts,
                           uint16_t *npkts)
{
    struct gstream gs;
    if (!c->rbuf) {
        bad(np, c, NETVSP_ERR_NOT_READY);
        return NVSP_STAT_FAIL;
    }
    if (build_stream(np, c, pkt, m, &gs) < 0)
        return NVSP_STAT_INVALID_RNDIS_PKT;
    /* Concatenated messages follow one another at exactly message_length,
     * as OpenVMM's netvsp (handle_rndis_packet_messages) and vmswitch walk
     * them: guests that pack several put the alignment padding inside the
     * previous message's length (Linux netvsc_copy_to_send_buf, FreeBSD
     * and DPDK hn_try_txagg), so no rounding is ours to do. Bytes after
     * the last message that do not make a header are an error, as there. */
    uint32_t off = 0, count = 0;
    bool data_seen = false;
    while (off < gs.total) {
        struct rndis_msg_hdr h;
        if (gs.total - off < sizeof(h)) {
            bad(np, c, NETVSP_ERR_RNDIS_LEN);
            return NVSP_STAT_INVALID_RNDIS_PKT;
        }
        gs_copy(&gs, off, sizeof(h), &h);
        if (h.len < sizeof(h) || h.len > gs.total - off) {
            bad(np, c, NETVSP_ERR_RNDIS_LEN);
            return NVSP_STAT_INVALID_RNDIS_PKT;
        }
        if (h.type == RNDIS_MSG_PACKET) {
            if (!c->rndis_ready) {
                bad(np, c, NETVSP_ERR_NOT_READY);
                return NVSP_STAT_FAIL;
            }
            if (++count > MAX_PKTS_PER_MSG) {
                bad(np, c, NETVSP_ERR_RNDIS_LEN);
                return NVSP_STAT_INVALID_RNDIS_PKT;
            }
            struct rte_mbuf *mb;
            c->frames_seen++;
            rndis_packet(np, c, &gs, off, h.len, &mb);
            if (mb)
                pkts[(*npkts)++] = mb;
            data_seen = true;
        } else {
            /* Control messages travel alone, never after data. */
            if (data_seen || m->channel_type != NVSP_CHANNEL_TYPE_CONTROL ||
                h.len > CTRL_MSG_MAX) {
                bad(np, c, NETVSP_ERR_RNDIS_TYPE);
                return NVSP_STAT_INVALID_RNDIS_PKT;
            }
            gs_copy(&gs, off, h.len, c->ctl);
            rndis_control(np, c, h.len);
            return NVSP_STAT_SUCCESS;
        }
        off += h.len;
    }
    return NVSP_STAT_SUCCESS;
}

static int set_frame(struct netvsp *np, struct conn *c)
{
    c->mtu_gen_seen = __atomic_load_n(&np->mtu_gen, __ATOMIC_ACQUIRE);
    uint32_t nic_frame = jumbo_frame(__atomic_load_n(&np->mtu, __ATOMIC_ACQUIRE));
    uint32_t ndis = c->have_config ? c->ndis_frame : NVSP_NDIS_MTU_DEFAULT;
    c->frame = ndis < nic_frame ? ndis : nic_frame;
    vsw_port_set_max_frame(&np->port, c->frame);
    np->stats.mtu_pending = false; /* negotiated at the NIC's MTU of now */
    return 0;
}

static void nvsp_recv_buf(struct netvsp *np, struct conn *c, const struct vmbus_pkt *pkt,
                          const uint8_t *msg)
{
    struct nvsp_msg_send_buf m;
    memcpy(&m, msg, sizeof(m));
    struct nvsp_msg_recv_buf_complete a = {.type = NVSP_MSG1_SEND_RECV_BUF_COMPLETE,
                                           .status = NVSP_STAT_FAIL};
    if (c->rgp || (c->nvsp_ver >= NVSP_PROTOCOL_VERSION_2 && !c->have_config)) {
        bad(np, c, NETVSP_ERR_NVSP_ORDER);
        goto answer;
    }
    struct vmbus_gpadl *g;
    if (vmbus_chan_gpadl_get(c->chan, m.gpadl, &g) < 0) {
        bad(np, c, NETVSP_ERR_GPADL);
        goto answer;
    }
    uint64_t len = vmbus_gpadl_len(g);
    if (len > NETVSP_RECV_BUF_MAX) {
        vmbus_gpadl_put(g);
        bad(np, c, NETVSP_ERR_BUFFER_SIZE);
        goto answer;
    }
    set_frame(np, c);
    /* Room for the largest frame we will deliver, its header and PPIs. */
    uint32_t S = jumbo_recv_section(c->frame, RX_HDR_ROOM, RX_TAIL_ROOM, 64);
    uint64_t nsub = len / S;
    if (nsub < CTRL_SUBS + 1 || ((uintptr_t)vmbus_gpadl_view(g) & 7)) {
        vmbus_gpadl_put(g);
        bad(np, c, NETVSP_ERR_GPADL);
        goto answer;
    }
    c->free_data = malloc(sizeof(uint32_t) * nsub);
    c->next = malloc(sizeof(uint32_t) * nsub);
    c->outstanding = calloc(nsub, 1);
    if (!c->free_data || !c->next || !c->outstanding) {
        free(c->free_data);
        free(c->next);
        free(c->outstanding);
        c->free_data = c->next = NULL;
        c->outstanding = NULL;
        vmbus_gpadl_put(g);
        goto answer;
    }
    c->rgp = g;
    c->rbuf = vmbus_gpadl_view(g);
    c->rlen = len;
    c->rid = m.id;
    c->sub_size = S;
    c->nsub = (uint32_t)nsub;
    c->nfree_ctrl = 0;
    for (uint32_t i = 0; i < CTRL_SUBS; i++)
        c->free_ctrl[c->nfree_ctrl++] = CTRL_SUBS - 1 - i;
    c->nfree_data = 0;
    for (uint32_t i = (uint32_t)nsub; i > CTRL_SUBS; i--)
        c->free_data[c->nfree_data++] = i - 1;
    for (uint32_t i = 0; i < nsub; i++)
        c->next[i] = CHAIN_END;
    a.status = NVSP_STAT_SUCCESS;
    a.num_sections = 1;
    a.sections[0].offset = 0;
    a.sections[0].sub_alloc_size = S;
    a.sections[0].num_sub_allocs = (uint32_t)nsub;
    a.sections[0].end_offset = S * (uint32_t)nsub;
    np->stats.recv_sections = (uint32_t)nsub;
answer:
    complete_body(c, pkt->trans_id, &a, sizeof(a));
}

static void nvsp_send_buf(struct netvsp *np, struct conn *c, const struct vmbus_pkt *pkt,
                          const uint8_t *msg)
{
    struct nvsp_msg_send_buf m;
    memcpy(&m, msg, sizeof(m));
    struct nvsp_msg_send_buf_complete a = {.type = NVSP_MSG1_SEND_SEND_BUF_COMPLETE,
                                           .status = NVSP_STAT_FAIL};
    struct vmbus_gpadl *g;
    if (c->sgp) {
        bad(np, c, NETVSP_ERR_NVSP_ORDER);
        goto answer;
    }
    if (vmbus_chan_gpadl_get(c->chan, m.gpadl, &g) < 0) {
        bad(np, c, NETVSP_ERR_GPADL);
        goto answer;
    }
    uint64_t len = vmbus_gpadl_len(g);
    if (len > NETVSP_SEND_BUF_MAX) {
        vmbus_gpadl_put(g);
        bad(np, c, NETVSP_ERR_BUFFER_SIZE);
        goto answer;
    }
    if (len < NVSP_SEND_SECTION_SIZE) {
        vmbus_gpadl_put(g);
        bad(np, c, NETVSP_ERR_GPADL);
        goto answer;
    }
    c->sgp = g;
    c->sbuf = vmbus_gpadl_view(g);
    c->slen = len;
    c->nsections = (uint32_t)(len / NVSP_SEND_SECTION_SIZE);
    np->stats.send_sections = c->nsections;
    a.status = NVSP_STAT_SUCCESS;
    a.section_size = NVSP_SEND_SECTION_SIZE;
answer:
    complete_body(c, pkt->trans_id, &a, sizeof(a));
}

static void revoke_recv(struct conn *c)
{
    if (!c->rgp)
        return;
    c->rndis_ready = false;
    vmbus_gpadl_put(c->rgp);
    c->rgp = NULL;
    c->rbuf = NULL;
    /* A guest may register a buffer again: nothing of this one survives. */
    free(c->free_data);
    free(c->next);
    free(c->outstanding);
    c->free_data = c->next = NULL;
    c->outstanding = NULL;
    c->nsub = c->nfree_data = c->nfree_ctrl = 0;
    c->npend = 0;
    xfer_reset(c);
}

static void revoke_send(struct conn *c)
{
    if (!c->sgp)
        return;
    vmbus_gpadl_put(c->sgp);
    c->sgp = NULL;
    c->sbuf = NULL;
}

/* One NVSP message from the guest (in-band or GPA-direct). */
static void nvsp_message(struct netvsp *np, struct conn *c, const struct vmbus_pkt *pkt,
                         struct rte_mbuf **pkts, uint16_t *npkts)
{
    uint8_t msg[NVSP_MSG_SIZE_61] = {0};
    uint32_t len = pkt->payload_len < sizeof(msg) ? pkt->payload_len : (uint32_t)sizeof(msg);
    uint32_t type;
    if (len < 4) {
        bad(np, c, NETVSP_ERR_NVSP_SHORT);
        return;
    }
    memcpy(msg, pkt->payload, len);
    memcpy(&type, msg, 4);
    uint32_t min_ver;
    uint32_t need = nvsp_guest_msg_min_len(type, &min_ver);
    if (need == 0) {
        bad(np, c, NETVSP_ERR_NVSP_TYPE);
        return;
    }
    if (len < need) {
        bad(np, c, NETVSP_ERR_NVSP_SHORT);
        return;
    }
    bool want = pkt->flags & VMBUS_PKT_FLAG_COMPLETION_REQUESTED;
    if (type == NVSP_MSG_INIT) {
        struct nvsp_msg_init m;
        memcpy(&m, msg, sizeof(m));
        if (!want) {
            bad(np, c, NETVSP_ERR_NO_COMPLETION);
            return;
        }
        if (c->inited) {
            bad(np, c, NETVSP_ERR_NVSP_ORDER);
            return;
        }
        struct nvsp_msg_init_complete a = {.type = NVSP_MSG_INIT_COMPLETE,
                                           .status = NVSP_STAT_NONE};
        size_t nver;
        const struct vmnic_nvsp_version *vers = vmnic_nvsp_versions(&nver);
        for (size_t i = 0; i < nver; i++) {
            uint32_t v = vers[i].version;
            if (v >= m.min_protocol_ver && v <= m.max_protocol_ver) {
                c->inited = true;
                c->nvsp_ver = v;
                np->stats.nvsp_version = v;
                a.status = NVSP_STAT_SUCCESS;
                a.negotiated_ver = v == NVSP_PROTOCOL_VERSION_1 ? 2 : 0xffffffffu;
                a.max_mdl_chain_len = 34;
                break;
            }
        }
        /* Answer in the size of the version the guest asked for. */
        c->msg_size = vmnic_nvsp_msg_size(m.max_protocol_ver);
        complete_body(c, pkt->trans_id, &a, sizeof(a));
        if (c->inited)
            c->msg_size = vmnic_nvsp_msg_size(c->nvsp_ver);
        return;
    }
    if (!c->inited || c->nvsp_ver < min_ver) {
        bad(np, c, c->inited ? NETVSP_ERR_NVSP_TYPE : NETVSP_ERR_NVSP_ORDER);
        return;
    }
    switch (type) {
    case NVSP_MSG2_SEND_NDIS_CONFIG: {
        struct nvsp_msg_ndis_config m;
        memcpy(&m, msg, sizeof(m));
        if (c->have_config || c->rgp) {
            bad(np, c, NETVSP_ERR_NVSP_ORDER);
            return;
        }
        c->have_config = true;
        /* Outside what vmswitch accepts: the default, as vmswitch does. */
        c->ndis_frame = (m.mtu >= NVSP_NDIS_MTU_MIN && m.mtu <= NVSP_NDIS_MTU_MAX)
                            ? m.mtu
                            : NVSP_NDIS_MTU_DEFAULT;
        set_frame(np, c);
        if (want)
            send_completion(c, pkt->trans_id, type, NVSP_STAT_SUCCESS);
        return;
    }
    case NVSP_MSG1_SEND_NDIS_VER: {
        struct nvsp_msg_ndis_ver m;
        memcpy(&m, msg, sizeof(m));
        if (c->have_ndis_ver) {
            bad(np, c, NETVSP_ERR_NVSP_ORDER);
            return;
        }
        c->have_ndis_ver = true;
        c->ndis_ver = (m.ndis_major << 16) | (m.ndis_minor & 0xffff);
        np->stats.ndis_version = c->ndis_ver;
        if (want)
            send_completion(c, pkt->trans_id, type, NVSP_STAT_SUCCESS);
        return;
    }
    case NVSP_MSG1_SEND_RECV_BUF:
        if (!want) {
            bad(np, c, NETVSP_ERR_NO_COMPLETION);
            return;
        }
        nvsp_recv_buf(np, c, pkt, msg);
        return;
    case NVSP_MSG1_SEND_SEND_BUF:
        if (!want) {
            bad(np, c, NETVSP_ERR_NO_COMPLETION);
            return;
        }
        nvsp_send_buf(np, c, pkt, msg);
        return;
    case NVSP_MSG1_REVOKE_RECV_BUF:
        revoke_recv(c);
        update_link(np, c);
        return;
    case NVSP_MSG1_REVOKE_SEND_BUF:
        revoke_send(c);
        return;
    case NVSP_MSG1_SEND_RNDIS_PKT: {
        struct nvsp_msg_rndis_pkt m;
        memcpy(&m, msg, sizeof(m));
        if (!want) {
            bad(np, c, NETVSP_ERR_NO_COMPLETION);
            return;
        }
        uint32_t st = rndis_send(np, c, pkt, &m, pkts, npkts);
        send_completion(c, pkt->trans_id, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE, st);
        return;
    }
    case NVSP_MSG5_SUBCHANNEL: {
        /* One queue only (see RSS capabilities): none granted. */
        struct nvsp_msg_subchannel a = {.type = NVSP_MSG5_SUBCHANNEL,
                                        .op_or_status = NVSP_STAT_FAIL,
                                        .num_subchannels = 0};
        if (want)
            complete_body(c, pkt->trans_id, &a, sizeof(a));
        return;
    }
    case NVSP_MSG4_SWITCH_DATA_PATH:
        /* Completed without a body, as vmswitch and OpenVMM do: Linux's
         * netvsc_switch_datapath() waits for a completion whose payload is
         * empty and takes one with a body for an unknown NVSP message,
         * leaving its waiter asleep for ever. There is no VF here, so the
         * data path stays synthetic whatever the guest asks. */
        if (want && vmbus_ring_put_inband(c->tx, VMBUS_PKT_COMP, 0, pkt->trans_id, NULL, 0) == 0)
            c->unpublished = true;
        return;
    case NVSP_MSG5_OID_QUERY_EX: {
        uint32_t a[3] = {NVSP_MSG5_OID_QUERY_EX_COMPLETE, RNDIS_STATUS_NOT_SUPPORTED, 0};
        if (want)
            complete_body(c, pkt->trans_id, a, sizeof(a));
        return;
    }
    case NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE:
        /* Completions come as completion packets, not in-band. */
        bad(np, c, NETVSP_ERR_NVSP_TYPE);
        return;
    default:
        bad(np, c, NETVSP_ERR_NVSP_TYPE);
        return;
    }
}

/* The guest is done with one of our transfers. */
static void guest_completion(struct netvsp *np, struct conn *c, const struct vmbus_pkt *pkt)
{
    uint64_t first = pkt->trans_id;
    if (!c->rbuf || first >= c->nsub || !c->outstanding[first]) {
        bad(np, c, NETVSP_ERR_COMPLETION_ID);
        return;
    }
    c->outstanding[first] = 0;
    free_chain(c, (uint32_t)first);
}

/* --- the port ----------------------------------------------------------- */

/*
 * One round's share of the guest's ring (see rx_burst in
 * vsw-port-provider.h): at most n units of work, where each frame costs one,
 * kept or dropped, and so does each message that carries none (NVSP and
 * RNDIS control, completions, refused messages). Whatever a guest sends, the
 * worker moves on to its other ports after this bounded amount of work; the
 * rest stays in the ring for the next round. A request is taken only while
 * the budget left could hold the most frames it may carry.
 */
static uint16_t vm_rx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n)
{
    struct netvsp *np = np_of(port);
    struct conn *c = __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE);
    if (!c || c->dead)
        return 0;
    uint16_t got = 0;
    uint32_t used = 0;
    /* Take a request only if whatever it makes us send fits; otherwise
     * leave the guest's requests in its ring (back-pressure). */
    while (used + MAX_PKTS_PER_MSG <= n) {
        if (vmbus_ring_free_bytes(c->tx) < reply_room()) {
            if (c->tx->error)
                ring_fatal(np, c);
            break;
        }
        int len = vmbus_ring_get(c->rx, c->pkt, PKT_MAX);
        if (len == -EAGAIN)
            break;
        if (len < 0) {
            ring_fatal(np, c);
            break;
        }
        uint32_t seen = c->frames_seen;
        struct vmbus_pkt pkt;
        vmbus_pkt_parse(c->pkt, (uint32_t)len, &pkt);
        switch (pkt.type) {
        case VMBUS_PKT_COMP:
            guest_completion(np, c, &pkt);
            break;
        case VMBUS_PKT_DATA_INBAND:
        case VMBUS_PKT_DATA_USING_GPA_DIRECT:
            nvsp_message(np, c, &pkt, pkts, &got);
            break;
        default:
            bad(np, c, NETVSP_ERR_PKT_TYPE);
            break;
        }
        used += c->frames_seen != seen ? c->frames_seen - seen : 1;
        if (c->dead)
            break;
    }
    if (used) {
        if (vmbus_ring_release(c->rx) == 1)
            vmbus_chan_signal(c->chan);
        flush_pending_ctrl(np, c);
    }
    if (got && !media(np)) {
        /* Unplugged: the guest's frames go nowhere, but its control
         * messages are still answered (it must be able to query). */
        vsw_port_drop(port, VSW_DROP_LINK_DOWN, got);
        rte_pktmbuf_free_bulk(pkts, got);
        got = 0;
    }
    if (used > got)
        vsw_port_rx_busy(port);
    return got;
}

static bool wanted(const struct netvsp *np, const struct conn *c, const struct rte_mbuf *m)
{
    const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
    uint32_t f = c->filter;
    if (f & RNDIS_FILTER_PROMISCUOUS)
        return true;
    if (rte_is_broadcast_ether_addr(&eth->dst_addr))
        return f & RNDIS_FILTER_BROADCAST;
    if (rte_is_multicast_ether_addr(&eth->dst_addr))
        return f & (RNDIS_FILTER_MULTICAST | RNDIS_FILTER_ALL_MULTICAST);
    return (f & RNDIS_FILTER_DIRECTED) && memcmp(eth->dst_addr.addr_bytes, np->mac, 6) == 0;
}

/* Emit the batched data frames; count them sent, or dropped if the ring
 * to the guest was full. */
static uint16_t emit_data(struct netvsp *np, struct conn *c, struct vsw_port_counters *ctr,
                          uint64_t *batch_bytes)
{
    uint32_t n = c->xn;
    if (!n)
        return 0;
    if (xfer_emit(np, c, NVSP_CHANNEL_TYPE_DATA) == n) {
        ctr->tx_packets += n;
        ctr->tx_bytes += *batch_bytes;
    } else {
        ctr->drops[VSW_DROP_QUEUE_FULL] += n;
        n = 0;
    }
    *batch_bytes = 0;
    return (uint16_t)n;
}

static uint16_t vm_tx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n)
{
    struct netvsp *np = np_of(port);
    struct conn *c = __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE);
    uint16_t sent = 0;
    if (!c || c->dead || !c->rndis_ready || !c->rbuf || !c->filter) {
        vsw_port_drop(port, VSW_DROP_LINK_DOWN, n);
        rte_pktmbuf_free_bulk(pkts, n);
        return 0;
    }
    struct vsw_port_counters *ctr = &port->counters[rte_lcore_id()];
    uint64_t batch_bytes = 0;
    for (uint16_t i = 0; i < n; i++) {
        struct rte_mbuf *m = pkts[i];
        uint32_t len = m->pkt_len;
        if (len > c->frame) {
            vsw_port_drop(port, VSW_DROP_TOO_BIG, 1);
            goto free;
        }
        if (!(m->ol_flags & vsw_mirror_copy_flag) && !wanted(np, c, m)) {
            np->stats.tx_filtered++;
            goto free;
        }
        if (!c->nfree_data) {
            np->stats.tx_no_buffer++;
            vsw_port_drop(port, VSW_DROP_QUEUE_FULL, 1);
            goto free;
        }
        uint32_t sub = c->free_data[--c->nfree_data];
        uint8_t *dst = c->rbuf + (size_t)sub * c->sub_size;
        struct rndis_packet_msg pm = {.hdr = {.type = RNDIS_MSG_PACKET}};
        uint32_t ppi_len = 0;
        uint8_t *ppi = dst + sizeof(pm);
        if (m->ol_flags & RTE_MBUF_F_TX_L4_MASK) {
            /* The sender left the checksum to the network: for another VM
             * that means "verified", as vmswitch tells its guests. */
            struct rndis_ppi r = {.size = RNDIS_PPI_U32_SIZE,
                                  .type = RNDIS_PPI_CSUM_INFO,
                                  .ppi_offset = sizeof(r)};
            uint32_t v = RNDIS_RXCSUM_IP_OK |
                         ((m->ol_flags & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_UDP_CKSUM
                              ? RNDIS_RXCSUM_UDP_OK
                              : RNDIS_RXCSUM_TCP_OK);
            memcpy(ppi, &r, sizeof(r));
            memcpy(ppi + sizeof(r), &v, 4);
            ppi_len += r.size;
        }
        uint16_t tag = vsw_port_tx_vlan(port, m);
        if (tag) {
            struct rndis_ppi r = {
                .size = RNDIS_PPI_U32_SIZE, .type = RNDIS_PPI_VLAN, .ppi_offset = sizeof(r)};
            uint32_t v = RNDIS_VLAN_MAKE(tag, (m->vlan_tci >> 13) & 7);
            memcpy(ppi + ppi_len, &r, sizeof(r));
            memcpy(ppi + ppi_len + sizeof(r), &v, 4);
            ppi_len += r.size;
        }
        pm.ppi_offset = ppi_len ? RNDIS_PACKET_OFFSET_MIN : 0;
        pm.ppi_len = ppi_len;
        pm.data_offset = RNDIS_PACKET_OFFSET_MIN + ppi_len;
        pm.data_len = len;
        pm.hdr.len = (uint32_t)sizeof(pm) + ppi_len + len;
        memcpy(dst, &pm, sizeof(pm));
        const void *data = rte_pktmbuf_read(m, 0, len, dst + sizeof(pm) + ppi_len);
        if (data != dst + sizeof(pm) + ppi_len)
            memcpy(dst + sizeof(pm) + ppi_len, data, len);
        xfer_add(c, sub, pm.hdr.len);
        batch_bytes += len;
        if (c->xn == XFER_BATCH)
            sent += emit_data(np, c, ctr, &batch_bytes);
    free:
        rte_pktmbuf_free(m);
    }
    sent += emit_data(np, c, ctr, &batch_bytes);
    return sent;
}

/* Can an indication go out now, or at least be queued? send_ctrl drops
 * what finds neither ring room nor a queue slot, and nothing sends an
 * indication twice: callers wait for room (the worker is woken when the
 * ring drains) rather than lose one. */
static bool indication_room(const struct conn *c)
{
    return c->npend < PENDING_CTRL && vmbus_ring_free_bytes(c->tx) >= reply_room();
}

static void send_media(struct netvsp *np, struct conn *c, bool connected)
{
    struct rndis_indicate_status st = {
        .hdr = {.type = RNDIS_MSG_INDICATE, .len = sizeof(st)},
        .status = connected ? RNDIS_STATUS_MEDIA_CONNECT : RNDIS_STATUS_MEDIA_DISCONNECT,
    };
    send_ctrl(np, c, &st, sizeof(st));
}

/* Tell the guest its cable changed. Changes can come faster than rounds: an
 * unplug and replug between two rounds still reach the guest as both, and
 * the replug is held back a little (as vmswitch damps flapping) so that the
 * guest's stack sees an outage rather than a glitch it coalesces away. */
#define MEDIA_HOLD_MS 200
static void indicate_media(struct netvsp *np, struct conn *c)
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
        update_link(np, c);
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
    update_link(np, c);
}

/* The NIC's MTU changed under a connected guest. A lower one applies at
 * once (frames above it are dropped, counted too_big); either way the guest
 * is told the network changed, and re-initialises as it would for an MTU
 * change of its own (NDIS_CONFIG, new sections), which brings in the new
 * limit. */
static void indicate_mtu(struct netvsp *np, struct conn *c)
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
    uint8_t msg[sizeof(struct rndis_indicate_status) + 4];
    uint32_t change = RNDIS_NETWORK_CHANGE_DEFINITELY;
    struct rndis_indicate_status st = {
        .hdr = {.type = RNDIS_MSG_INDICATE, .len = sizeof(msg)},
        .status = RNDIS_STATUS_NETWORK_CHANGE,
        .buf_len = 4,
        .buf_offset = sizeof(st) - 8,
    };
    memcpy(msg, &st, sizeof(st));
    memcpy(msg + sizeof(st), &change, 4);
    send_ctrl(np, c, msg, sizeof(msg));
    np->stats.network_changes++;
}

static void vm_tx_flush(struct vsw_port *port)
{
    struct netvsp *np = np_of(port);
    struct conn *c = __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE);
    if (c) {
        if (c->media_gen_told != __atomic_load_n(&np->media_gen, __ATOMIC_RELAXED))
            indicate_media(np, c);
        if (c->mtu_gen_seen != __atomic_load_n(&np->mtu_gen, __ATOMIC_RELAXED))
            indicate_mtu(np, c);
        publish(np, c);
    }
}

static int vm_wait_fd(struct vsw_port *port)
{
    struct netvsp *np = np_of(port);
    /* chan_close unpublishes conn before it says the fd changed: the old
     * descriptor leaves the worker's epoll set while its number still
     * names it, and no number is remembered after it is closed. */
    return __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE) && np->chan &&
                   vmbus_chan_is_open(np->chan)
               ? vmbus_chan_event_fd(np->chan)
               : -1;
}

static bool vm_wait_arm(struct vsw_port *port)
{
    struct netvsp *np = np_of(port);
    struct conn *c = __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE);
    if (!c || c->dead)
        return false;
    publish(np, c);
    bool pending = vmbus_ring_intr_unmask(c->rx);
    /* Blocked on our own ring (completions)? Then the guest's requests are
     * no work until it reads: rx_burst leaves them in its ring. Ask to hear
     * when it makes room and say whether it has already; a request waiting
     * there must not keep the worker from sleeping for as long as the guest
     * does not read. */
    if (vmbus_ring_free_bytes(c->tx) < reply_room())
        pending = vmbus_ring_arm_space(c->tx, reply_room()) == 1;
    return pending;
}

static void vm_wait_disarm(struct vsw_port *port)
{
    struct netvsp *np = np_of(port);
    struct conn *c = __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE);
    if (!c)
        return;
    vmbus_ring_intr_mask(c->rx);
    uint64_t v;
    if (read(vmbus_chan_event_fd(c->chan), &v, sizeof(v)) < 0) {
        /* not signalled */
    }
}

static void conn_free(struct conn *c)
{
    if (!c)
        return;
    revoke_recv(c);
    revoke_send(c);
    if (c->dma)
        hv_partition_dma_put(c->part);
    free(c->free_data);
    free(c->next);
    free(c->outstanding);
    free(c);
}

static int chan_open(void *ctx, struct vmbus_chan *chan)
{
    struct netvsp *np = ctx;
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->chan = chan;
    c->rx = vmbus_chan_rx(chan);
    c->tx = vmbus_chan_tx(chan);
    c->part = vmbus_chan_partition(chan);
    c->mem_pages = hv_partition_memory_pages(c->part);
    c->msg_size = NVSP_MSG_SIZE_LEGACY;
    c->ndis_frame = NVSP_NDIS_MTU_DEFAULT;
    xfer_reset(c);
    int rc = hv_partition_dma_get(c->part, &c->dma);
    if (rc < 0) {
        free(c);
        return rc;
    }
    /* Our ring to the guest takes completion packets and transfers only. */
    c->rx->type_mask = (1u << VMBUS_PKT_DATA_INBAND) | (1u << VMBUS_PKT_DATA_USING_GPA_DIRECT) |
                       (1u << VMBUS_PKT_COMP);
    vmbus_ring_intr_mask(c->rx);
    set_frame(np, c);
    memset(&np->stats.connected, 0, sizeof(np->stats) - offsetof(struct netvsp_stats, connected));
    np->stats.connected = true;
    np->stats.opens++;
    __atomic_store_n(&np->conn, c, __ATOMIC_RELEASE);
    vsw_port_wait_fd_changed(&np->port);
    return 0;
}

static void chan_close(void *ctx, struct vmbus_chan *chan)
{
    struct netvsp *np = ctx;
    (void)chan;
    struct conn *c = np->conn;
    vsw_port_set_link(&np->port, false);
    __atomic_store_n(&np->conn, NULL, __ATOMIC_RELEASE);
    /* After this no worker can be inside c. */
    vsw_port_synchronize(&np->port);
    np->stats.connected = false;
    np->stats.rndis_ready = false;
    conn_free(c);
    vsw_port_wait_fd_changed(&np->port);
}

static const struct vmbus_device_ops dev_ops = {
    .open = chan_open,
    .close = chan_close,
};

static void vm_destroy(struct vsw_port *port)
{
    struct netvsp *np = np_of(port);
    if (np->chan)
        vmbus_chan_rescind(np->chan); /* closes first if open */
    np->chan = NULL;
    free(np);
}

static const struct vsw_port_class netvsp_class = {
    .type = "vm",
    .rx_burst = vm_rx_burst,
    .tx_burst = vm_tx_burst,
    .tx_flush = vm_tx_flush,
    .wait_fd = vm_wait_fd,
    .wait_arm = vm_wait_arm,
    .wait_disarm = vm_wait_disarm,
    .destroy = vm_destroy,
};

static bool nic_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > NETVSP_NIC_NAME_MAX || strcmp(s, "lo") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

int netvsp_create(struct vmbus_server *srv, const struct netvsp_params *p, struct netvsp **out)
{
    if (!p->pool || !p->port_name || !nic_name_ok(p->nic_name) || !jumbo_mtu_valid(p->mtu))
        return -EINVAL;
    if ((p->mac[0] & 1) || !(p->mac[0] | p->mac[1] | p->mac[2] | p->mac[3] | p->mac[4] | p->mac[5]))
        return -EINVAL;
    /* struct vsw_port holds cache-aligned per-lcore counters: calloc()'s
     * 16-byte alignment is not enough. */
    struct netvsp *np = NULL;
    if (posix_memalign((void **)&np, _Alignof(struct netvsp), sizeof(*np)) != 0)
        return -ENOMEM;
    memset(np, 0, sizeof(*np));
    vsw_port_init(&np->port, &netvsp_class, p->port_name);
    np->srv = srv;
    snprintf(np->nic_name, sizeof(np->nic_name), "%s", p->nic_name);
    memcpy(np->mac, p->mac, 6);
    np->mtu = p->mtu;
    np->pool = p->pool;
    np->media = true;
    vsw_port_set_max_frame(&np->port, jumbo_frame(p->mtu));
    struct vmbus_offer_params op = {.class_id = VMBUS_GUID_NETVSC,
                                    .instance_id = p->instance,
                                    .max_ring_pages = NETVSP_RING_PAGES_MAX};
    memcpy(op.user_defined, np->nic_name, strlen(np->nic_name));
    int rc = vmbus_server_offer(srv, &op, &dev_ops, np, &np->chan);
    if (rc < 0) {
        free(np);
        return rc;
    }
    *out = np;
    return 0;
}

struct vsw_port *netvsp_port(struct netvsp *n)
{
    return &n->port;
}

bool netvsp_is_port(const struct vsw_port *port)
{
    return port->cls == &netvsp_class;
}

struct netvsp *netvsp_from_port(struct vsw_port *port)
{
    return netvsp_is_port(port) ? np_of(port) : NULL;
}

void netvsp_get_stats(const struct netvsp *n, struct netvsp_stats *out)
{
    *out = n->stats;
    const struct conn *c = __atomic_load_n(&n->conn, __ATOMIC_ACQUIRE);
    if (c) {
        out->rndis_ready = c->rndis_ready;
        out->frame_size = c->frame;
        out->packet_filter = c->filter;
        out->target_vp = vmbus_chan_target_vp(c->chan);
    }
}

uint32_t netvsp_mtu(const struct netvsp *n)
{
    return __atomic_load_n(&n->mtu, __ATOMIC_ACQUIRE);
}

int netvsp_set_mtu(struct netvsp *n, uint32_t mtu)
{
    if (!jumbo_mtu_valid(mtu))
        return -EINVAL;
    __atomic_store_n(&n->mtu, mtu, __ATOMIC_RELEASE);
    __atomic_add_fetch(&n->mtu_gen, 1, __ATOMIC_RELEASE);
    /* The owning worker applies it at the end of its next round. */
    vsw_port_kick(&n->port);
    return 0;
}

void netvsp_set_media(struct netvsp *n, bool connected)
{
    __atomic_store_n(&n->media, connected, __ATOMIC_RELEASE);
    __atomic_add_fetch(&n->media_gen, 1, __ATOMIC_RELEASE);
    if (!connected)
        vsw_port_set_link(&n->port, false);
    /* The owning worker tells the guest at the end of its next round. */
    vsw_port_kick(&n->port);
}

void netvsp_mac(const struct netvsp *n, uint8_t mac[6])
{
    memcpy(mac, n->mac, 6);
}
