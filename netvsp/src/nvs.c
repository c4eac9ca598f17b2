/*
 * NVSP: the connection of an open channel (created, freed), the guest's
 * NVSP messages (version, NDIS config and version, receive and send
 * buffers, revocations, sub-channels, data path), and what goes back to
 * the guest on the channel: transfer packets of receive-buffer ranges,
 * RNDIS control messages (queued when no control sub-allocation is free),
 * completions. Bad messages are counted here.
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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv.h"
#include "jumbo.h"
#include "netvsp-private.h"

#define RX_HDR_ROOM 256u /* RNDIS header + PPIs before the frame (OVMM) */
#define RX_TAIL_ROOM 36u /* left unused at a section's end (OVMM, Windows guests) */

/* Count a bad message; cut the guest off once it has sent too many. */
void netvsp_bad(struct netvsp *np, struct conn *c, enum netvsp_err e)
{
    np->stats.errors[e]++;
    if (++c->errors >= NETVSP_ERRORS_MAX && !c->dead) {
        c->dead = true;
        np->stats.disconnects++;
        vmbus_chan_fail(c->chan);
    }
}

/* A ring of the channel is corrupt (the guest wrote an impossible index):
 * nothing more can be exchanged on it. */
void netvsp_ring_fatal(struct netvsp *np, struct conn *c)
{
    if (c->dead)
        return;
    np->stats.errors[NETVSP_ERR_RING]++;
    c->dead = true;
    np->stats.disconnects++;
    vmbus_chan_fail(c->chan);
}

void netvsp_update_link(struct netvsp *np, struct conn *c)
{
    bool up = c && !c->dead && c->rndis_ready && c->filter != 0 && c->rbuf && media(np) &&
              c->media_told;
    if (vsw_port_link(&np->port) != up)
        vsw_port_set_link(&np->port, up);
}

static void xfer_reset(struct lane *l)
{
    l->xn = 0;
    l->xhead = l->xtail = CHAIN_END;
    l->psub = CHAIN_END;
    l->poff = 0;
}

static void xfer_chain(struct conn *c, struct lane *l, uint32_t sub)
{
    c->next[sub] = CHAIN_END;
    if (l->xhead == CHAIN_END)
        l->xhead = sub;
    else
        c->next[l->xtail] = sub;
    l->xtail = sub;
}

static void free_sub(struct conn *c, uint32_t s)
{
    if (s < CTRL_SUBS)
        c->free_ctrl[c->nfree_ctrl++] = s;
    else
        c->free_data[c->nfree_data++] = s;
}

void netvsp_free_chain(struct conn *c, uint32_t first)
{
    for (uint32_t s = first; s != CHAIN_END;) {
        uint32_t nx = c->next[s];
        c->next[s] = CHAIN_END;
        free_sub(c, s);
        s = nx;
    }
}

void netvsp_xfer_add(struct conn *c, struct lane *l, uint32_t sub, uint32_t len)
{
    l->xr[l->xn].byte_count = len;
    l->xr[l->xn].byte_offset = sub * c->sub_size;
    l->xn++;
    xfer_chain(c, l, sub);
    l->psub = CHAIN_END;
}

/*
 * Why frames share sub-allocations: each is sized for the largest frame
 * (~9.2 KB at MTU 9000), so one per 64-byte frame left the receive buffer
 * ~1,800 frames of room (every drop towards a guest in the p2v runs was
 * tx_no_buffer, never a full ring), put each frame on a page of its own,
 * and made the first write of each frame a line the guest last read on its
 * CPU. Packed, a transfer of 64 small frames fills one or two
 * sub-allocations, read in order. The transfer's id still names the first
 * sub-allocation of its chain and its one completion frees them all;
 * guests read each range where it points (Linux, FreeBSD, hvnet's netvsc
 * check a range against the buffer, not against a sub-allocation).
 */
void netvsp_xfer_open(struct conn *c, struct lane *l, uint32_t sub)
{
    xfer_chain(c, l, sub);
    l->psub = sub;
    l->poff = 0;
}

void netvsp_xfer_pack(struct conn *c, struct lane *l, uint32_t off, uint32_t len)
{
    l->xr[l->xn].byte_count = len;
    l->xr[l->xn].byte_offset = off;
    l->xn++;
    l->poff = off - l->psub * c->sub_size + ((len + 63u) & ~63u);
}

/* Send the batched ranges as one transfer packet. On a full ring the
 * sub-allocations go back and the frames count as dropped. */
uint32_t netvsp_xfer_emit(struct netvsp *np, struct conn *c, struct lane *l,
                          uint32_t channel_type)
{
    if (l->xn == 0)
        return 0;
    struct nvsp_msg_rndis_pkt m = {
        .type = NVSP_MSG1_SEND_RNDIS_PKT,
        .channel_type = channel_type,
        .send_buf_section_index = NVSP_SECTION_NONE,
        .send_buf_section_size = 0,
    };
    uint8_t body[NVSP_MSG_SIZE_61] = {0};
    memcpy(body, &m, sizeof(m));
    uint32_t n = l->xn;
    int rc = vmbus_ring_put_xfer_pages(l->tx, l->xhead, c->rid, l->xr, l->xn, body, c->msg_size);
    if (rc < 0) {
        if (rc == -EPROTO)
            netvsp_ring_fatal(np, c);
        else
            np->stats.tx_ring_full += n;
        netvsp_free_chain(c, l->xhead);
        xfer_reset(l);
        return 0;
    }
    c->outstanding[l->xhead] = 1;
    l->unpublished = true;
    xfer_reset(l);
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
uint32_t netvsp_reply_room(void)
{
    return vmbus_ring_pkt_size(8 + sizeof(struct vmbus_xfer_range), NVSP_MSG_SIZE_61) +
           vmbus_ring_pkt_size(0, NVSP_MSG_SIZE_61);
}

/* Send one RNDIS control message in control sub-allocation sub. */
static void send_ctrl_in(struct netvsp *np, struct conn *c, uint32_t sub, const void *msg,
                         uint32_t len)
{
    struct lane *l = &c->l0; /* control travels on the primary */
    memcpy(c->rbuf + (size_t)sub * c->sub_size, msg, len);
    /* Data ranges may be batched: control goes in its own packet. */
    struct vmbus_xfer_range saved[XFER_BATCH];
    uint32_t sn = l->xn, sh = l->xhead, st = l->xtail, sp = l->psub, so = l->poff;
    memcpy(saved, l->xr, sizeof(l->xr[0]) * sn);
    xfer_reset(l);
    netvsp_xfer_add(c, l, sub, len);
    netvsp_xfer_emit(np, c, l, NVSP_CHANNEL_TYPE_CONTROL);
    memcpy(l->xr, saved, sizeof(l->xr[0]) * sn);
    l->xn = sn;
    l->xhead = sh;
    l->xtail = st;
    l->psub = sp;
    l->poff = so;
    np->stats.control_msgs++;
}

/* Send one RNDIS control message to the guest (answer or indication). If
 * no control sub-allocation is free, or older messages wait, queue it
 * (bounded). */
void netvsp_send_ctrl(struct netvsp *np, struct conn *c, const void *msg, uint32_t len)
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
void netvsp_flush_pending_ctrl(struct netvsp *np, struct conn *c)
{
    uint32_t sub;
    if (!c->rbuf) {
        c->npend = 0;
        return;
    }
    while (c->npend && vmbus_ring_free_bytes(c->tx) >= netvsp_reply_room() && alloc_ctrl(c, &sub)) {
        struct pending_ctrl p = c->pend[0];
        memmove(&c->pend[0], &c->pend[1], sizeof(c->pend[0]) * (c->npend - 1));
        c->npend--;
        send_ctrl_in(np, c, sub, p.data, p.len);
    }
}

void netvsp_send_completion(struct conn *c, struct lane *l, uint64_t tid, uint32_t type,
                            uint32_t status)
{
    uint32_t m[2] = {type, status};
    uint8_t body[NVSP_MSG_SIZE_61] = {0};
    memcpy(body, m, sizeof(m));
    if (vmbus_ring_put_inband(l->tx, VMBUS_PKT_COMP, 0, tid, body, c->msg_size) == 0)
        l->unpublished = true;
}

static void complete_body(struct conn *c, uint64_t tid, const void *body, uint32_t len)
{
    uint8_t b[NVSP_MSG_SIZE_61] = {0};
    memcpy(b, body, len < sizeof(b) ? len : sizeof(b));
    uint32_t sz = c->msg_size > len ? c->msg_size : len;
    if (vmbus_ring_put_inband(c->tx, VMBUS_PKT_COMP, 0, tid, b, sz) == 0)
        c->l0.unpublished = true;
}

void netvsp_publish(struct netvsp *np, struct conn *c, struct lane *l)
{
    if (!l->unpublished)
        return;
    l->unpublished = false;
    int s = vmbus_ring_publish(l->tx);
    if (s == 1)
        vmbus_chan_signal(l->chan);
    else if (s < 0)
        netvsp_ring_fatal(np, c);
}

void netvsp_publish_all(struct netvsp *np, struct conn *c)
{
    for (uint32_t i = 0; i < NETVSP_QUEUES_MAX; i++) {
        struct lane *l = __atomic_load_n(&c->lanes[i], __ATOMIC_ACQUIRE);
        if (l)
            netvsp_publish(np, c, l);
    }
}

uint32_t netvsp_open_lanes(const struct conn *c)
{
    uint32_t n = 0;
    while (n < NETVSP_QUEUES_MAX && __atomic_load_n(&c->lanes[n], __ATOMIC_ACQUIRE))
        n++;
    return n;
}

/* The guest's send indirection table (Linux: netvsc_send_table, which
 * takes NVSP_INDIRECTION_TABLE_ENTRIES channel numbers at the message's
 * offset and picks a transmit channel by a flow's hash through it), filled
 * round-robin over the lanes, once every sub-channel granted is open. In
 * band, no completion, like vmswitch. */
void netvsp_send_itab(struct netvsp *np, struct conn *c)
{
    uint32_t n = netvsp_open_lanes(c);
    if (c->itab_sent || !c->sub_granted || n < c->sub_granted + 1)
        return;
    struct nvsp_msg_indirection_table m = {.type = NVSP_MSG5_SEND_INDIRECTION_TABLE,
                                           .count = NVSP_INDIRECTION_TABLE_ENTRIES,
                                           .offset = sizeof(m)};
    uint8_t body[sizeof(m) + NVSP_INDIRECTION_TABLE_ENTRIES * 4];
    memcpy(body, &m, sizeof(m));
    for (uint32_t i = 0; i < NVSP_INDIRECTION_TABLE_ENTRIES; i++) {
        uint32_t ch = i % n;
        memcpy(body + sizeof(m) + 4 * i, &ch, 4);
    }
    /* No room: the next round (a full ring wakes the worker when the
     * guest reads, as for any reply). */
    if (vmbus_ring_free_bytes(c->tx) < vmbus_ring_pkt_size(0, sizeof(body)))
        return;
    if (vmbus_ring_put_inband(c->tx, VMBUS_PKT_DATA_INBAND, 0, 0, body, sizeof(body)) == 0) {
        c->l0.unpublished = true;
        c->itab_sent = true;
        np->stats.itab_sent++;
    }
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

static void nvs_recv_buf(struct netvsp *np, struct conn *c, const struct vmbus_pkt *pkt,
                         const uint8_t *msg)
{
    struct nvsp_msg_send_buf m;
    memcpy(&m, msg, sizeof(m));
    struct nvsp_msg_recv_buf_complete a = {.type = NVSP_MSG1_SEND_RECV_BUF_COMPLETE,
                                           .status = NVSP_STAT_FAIL};
    if (c->rgp || (c->nvsp_ver >= NVSP_PROTOCOL_VERSION_2 && !c->have_config)) {
        netvsp_bad(np, c, NETVSP_ERR_NVSP_ORDER);
        goto answer;
    }
    struct vmbus_gpadl *g;
    if (vmbus_chan_gpadl_get(c->chan, m.gpadl, &g) < 0) {
        netvsp_bad(np, c, NETVSP_ERR_GPADL);
        goto answer;
    }
    uint64_t len = vmbus_gpadl_len(g);
    if (len > NETVSP_RECV_BUF_MAX) {
        vmbus_gpadl_put(g);
        netvsp_bad(np, c, NETVSP_ERR_BUFFER_SIZE);
        goto answer;
    }
    set_frame(np, c);
    /* Room for the largest frame we will deliver, its header and PPIs. */
    uint32_t S = jumbo_recv_section(c->frame, RX_HDR_ROOM, RX_TAIL_ROOM, 64);
    uint64_t nsub = len / S;
    if (nsub < CTRL_SUBS + 1 || ((uintptr_t)vmbus_gpadl_view(g) & 7)) {
        vmbus_gpadl_put(g);
        netvsp_bad(np, c, NETVSP_ERR_GPADL);
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

static void nvs_send_buf(struct netvsp *np, struct conn *c, const struct vmbus_pkt *pkt,
                         const uint8_t *msg)
{
    struct nvsp_msg_send_buf m;
    memcpy(&m, msg, sizeof(m));
    struct nvsp_msg_send_buf_complete a = {.type = NVSP_MSG1_SEND_SEND_BUF_COMPLETE,
                                           .status = NVSP_STAT_FAIL};
    struct vmbus_gpadl *g;
    if (c->sgp) {
        netvsp_bad(np, c, NETVSP_ERR_NVSP_ORDER);
        goto answer;
    }
    if (vmbus_chan_gpadl_get(c->chan, m.gpadl, &g) < 0) {
        netvsp_bad(np, c, NETVSP_ERR_GPADL);
        goto answer;
    }
    uint64_t len = vmbus_gpadl_len(g);
    if (len > NETVSP_SEND_BUF_MAX) {
        vmbus_gpadl_put(g);
        netvsp_bad(np, c, NETVSP_ERR_BUFFER_SIZE);
        goto answer;
    }
    if (len < NVSP_SEND_SECTION_SIZE) {
        vmbus_gpadl_put(g);
        netvsp_bad(np, c, NETVSP_ERR_GPADL);
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
    for (uint32_t i = 0; i < NETVSP_QUEUES_MAX; i++)
        if (c->lanes[i])
            xfer_reset(c->lanes[i]);
}

static void revoke_send(struct conn *c)
{
    if (!c->sgp)
        return;
    vmbus_gpadl_put(c->sgp);
    c->sgp = NULL;
    c->sbuf = NULL;
}

void netvsp_lane_init(struct lane *l, struct vmbus_chan *chan, uint32_t idx)
{
    l->chan = chan;
    l->rx = vmbus_chan_rx(chan);
    l->tx = vmbus_chan_tx(chan);
    l->idx = idx;
    l->tag = idx;
    xfer_reset(l);
    /* The guest may send us in-band, GPA-direct and completion packets
     * only. */
    l->rx->type_mask = (1u << VMBUS_PKT_DATA_INBAND) | (1u << VMBUS_PKT_DATA_USING_GPA_DIRECT) |
                       (1u << VMBUS_PKT_COMP);
    vmbus_ring_intr_mask(l->rx);
}

int netvsp_conn_create(struct netvsp *np, struct vmbus_chan *chan, struct conn **out)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->chan = chan;
    c->rx = vmbus_chan_rx(chan);
    c->tx = vmbus_chan_tx(chan);
    c->l0.chan = chan;
    c->l0.rx = c->rx;
    c->l0.tx = c->tx;
    c->lanes[0] = &c->l0;
    c->epfd = c->offer_fd = -1;
    c->part = vmbus_chan_partition(chan);
    c->mem_pages = hv_partition_memory_pages(c->part);
    c->msg_size = NVSP_MSG_SIZE_LEGACY;
    c->ndis_frame = NVSP_NDIS_MTU_DEFAULT;
    xfer_reset(&c->l0);
    int rc = hv_partition_dma_get(c->part, &c->dma);
    if (rc < 0) {
        free(c);
        return rc;
    }
    netvsp_lane_init(&c->l0, chan, 0);
    set_frame(np, c);
    *out = c;
    return 0;
}

void netvsp_conn_free(struct conn *c)
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

/*
 * NVSP 5 SUBCHANNEL: at most the NIC's queues less the primary, once per
 * connection, after the buffers and RNDIS INIT (Linux asks right after
 * querying the RSS capabilities). Linux takes any number up to what it
 * asked for and then waits for that many offers; the excess, a repeat, a
 * request too early, another operation are each counted by reason and
 * leave the NIC as it was. The offers are the control thread's
 * (vmbus_server_offer_sub): the count goes to it through offer_fd, and
 * the answer goes out now, as it can precede the offers (Linux registers
 * its sub-channel callback before asking).
 */
static void nvs_subchannel(struct netvsp *np, struct conn *c, const struct vmbus_pkt *pkt,
                           const uint8_t *msg, bool want)
{
    struct nvsp_msg_subchannel q, a = {.type = NVSP_MSG5_SUBCHANNEL,
                                       .op_or_status = NVSP_STAT_FAIL};
    memcpy(&q, msg, sizeof(q));
    uint32_t queues = __atomic_load_n(&np->queues, __ATOMIC_RELAXED);
    if (q.op_or_status != NVSP_SUBCHANNEL_ALLOCATE) {
        np->stats.subch_refused[NETVSP_SUBCH_OPERATION]++;
    } else if (!c->rbuf || !c->sbuf || !c->rndis_ready) {
        np->stats.subch_refused[NETVSP_SUBCH_NOT_READY]++;
        np->stats.subchannels_refused += q.num_subchannels;
    } else if (c->sub_asked) {
        np->stats.subch_refused[NETVSP_SUBCH_REPEATED]++;
        np->stats.subchannels_refused += q.num_subchannels;
    } else {
        uint32_t n = RTE_MIN(q.num_subchannels, queues - 1);
        c->sub_asked = true;
        a.op_or_status = NVSP_STAT_SUCCESS;
        a.num_subchannels = n;
        if (n < q.num_subchannels) {
            np->stats.subch_refused[NETVSP_SUBCH_TOO_MANY]++;
            np->stats.subchannels_refused += q.num_subchannels - n;
        }
        if (n) {
            uint64_t one = 1;
            c->sub_granted = n;
            np->stats.subchannels_granted += n;
            __atomic_store_n(&c->offer_n, n, __ATOMIC_RELEASE);
            if (write(c->offer_fd, &one, sizeof(one)) < 0) {
                /* the counter cannot overflow from one write */
            }
        }
    }
    if (want)
        complete_body(c, pkt->trans_id, &a, sizeof(a));
}

/* One NVSP message from the guest (in-band or GPA-direct). */
bool netvsp_nvs_message(struct netvsp *np, struct conn *c, struct lane *l,
                        const struct vmbus_pkt *pkt, struct nvsp_msg_rndis_pkt *rndis)
{
    uint8_t msg[NVSP_MSG_SIZE_61] = {0};
    uint32_t len = pkt->payload_len < sizeof(msg) ? pkt->payload_len : (uint32_t)sizeof(msg);
    uint32_t type;
    if (len < sizeof(type)) {
        netvsp_bad(np, c, NETVSP_ERR_NVSP_SHORT);
        return false;
    }
    memcpy(msg, pkt->payload, len);
    memcpy(&type, msg, sizeof(type));
    uint32_t min_ver;
    uint32_t need = nvsp_guest_msg_min_len(type, &min_ver);
    if (need == 0) {
        netvsp_bad(np, c, NETVSP_ERR_NVSP_TYPE);
        return false;
    }
    if (len < need) {
        netvsp_bad(np, c, NETVSP_ERR_NVSP_SHORT);
        return false;
    }
    bool want = pkt->flags & VMBUS_PKT_FLAG_COMPLETION_REQUESTED;
    /* A sub-channel carries data only: the connection is set up, and
     * controlled, on the primary (as vmswitch and OpenVMM require). */
    if (l->idx != 0 && type != NVSP_MSG1_SEND_RNDIS_PKT) {
        netvsp_bad(np, c, NETVSP_ERR_SUBCHANNEL_MSG);
        return false;
    }
    if (type == NVSP_MSG_INIT) {
        struct nvsp_msg_init m;
        memcpy(&m, msg, sizeof(m));
        if (!want) {
            netvsp_bad(np, c, NETVSP_ERR_NO_COMPLETION);
            return false;
        }
        if (c->inited) {
            netvsp_bad(np, c, NETVSP_ERR_NVSP_ORDER);
            return false;
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
        return false;
    }
    if (!c->inited || c->nvsp_ver < min_ver) {
        netvsp_bad(np, c, c->inited ? NETVSP_ERR_NVSP_TYPE : NETVSP_ERR_NVSP_ORDER);
        return false;
    }
    switch (type) {
    case NVSP_MSG2_SEND_NDIS_CONFIG: {
        struct nvsp_msg_ndis_config m;
        memcpy(&m, msg, sizeof(m));
        if (c->have_config || c->rgp) {
            netvsp_bad(np, c, NETVSP_ERR_NVSP_ORDER);
            return false;
        }
        c->have_config = true;
        /* Receive coalescing over VMBus: NVSP 6.1 and the guest says it
         * takes it (Linux sets the bit from 6.1 on). */
        c->rsc_cap = c->nvsp_ver >= NVSP_PROTOCOL_VERSION_61 && (m.capabilities & NVSP_CAP_RSC);
        /* Outside what vmswitch accepts: the default, as vmswitch does. */
        c->ndis_frame = (m.mtu >= NVSP_NDIS_MTU_MIN && m.mtu <= NVSP_NDIS_MTU_MAX)
                            ? m.mtu
                            : NVSP_NDIS_MTU_DEFAULT;
        set_frame(np, c);
        if (want)
            netvsp_send_completion(c, &c->l0, pkt->trans_id, type, NVSP_STAT_SUCCESS);
        return false;
    }
    case NVSP_MSG1_SEND_NDIS_VER: {
        struct nvsp_msg_ndis_ver m;
        memcpy(&m, msg, sizeof(m));
        if (c->have_ndis_ver) {
            netvsp_bad(np, c, NETVSP_ERR_NVSP_ORDER);
            return false;
        }
        c->have_ndis_ver = true;
        c->ndis_ver = (m.ndis_major << 16) | (m.ndis_minor & 0xffff);
        np->stats.ndis_version = c->ndis_ver;
        if (want)
            netvsp_send_completion(c, &c->l0, pkt->trans_id, type, NVSP_STAT_SUCCESS);
        return false;
    }
    case NVSP_MSG1_SEND_RECV_BUF:
        if (!want) {
            netvsp_bad(np, c, NETVSP_ERR_NO_COMPLETION);
            return false;
        }
        nvs_recv_buf(np, c, pkt, msg);
        return false;
    case NVSP_MSG1_SEND_SEND_BUF:
        if (!want) {
            netvsp_bad(np, c, NETVSP_ERR_NO_COMPLETION);
            return false;
        }
        nvs_send_buf(np, c, pkt, msg);
        return false;
    case NVSP_MSG1_REVOKE_RECV_BUF:
        revoke_recv(c);
        netvsp_update_link(np, c);
        return false;
    case NVSP_MSG1_REVOKE_SEND_BUF:
        revoke_send(c);
        return false;
    case NVSP_MSG1_SEND_RNDIS_PKT:
        if (!want) {
            netvsp_bad(np, c, NETVSP_ERR_NO_COMPLETION);
            return false;
        }
        memcpy(rndis, msg, sizeof(*rndis));
        return true;
    case NVSP_MSG5_SUBCHANNEL:
        nvs_subchannel(np, c, pkt, msg, want);
        return false;
    case NVSP_MSG4_SWITCH_DATA_PATH:
        /* Completed without a body, as vmswitch and OpenVMM do: Linux's
         * netvsc_switch_datapath() waits for a completion whose payload is
         * empty and takes one with a body for an unknown NVSP message,
         * leaving its waiter asleep for ever. There is no VF here, so the
         * data path stays synthetic whatever the guest asks. */
        if (want && vmbus_ring_put_inband(c->tx, VMBUS_PKT_COMP, 0, pkt->trans_id, NULL, 0) == 0)
            c->l0.unpublished = true;
        return false;
    case NVSP_MSG5_OID_QUERY_EX: {
        uint32_t a[3] = {NVSP_MSG5_OID_QUERY_EX_COMPLETE, RNDIS_STATUS_NOT_SUPPORTED, 0};
        if (want)
            complete_body(c, pkt->trans_id, a, sizeof(a));
        return false;
    }
    case NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE:
        /* Completions come as completion packets, not in-band. */
        netvsp_bad(np, c, NETVSP_ERR_NVSP_TYPE);
        return false;
    default:
        netvsp_bad(np, c, NETVSP_ERR_NVSP_TYPE);
        return false;
    }
}
