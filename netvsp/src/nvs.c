/*
 * NVSP: the connection's set-up messages, its receive and send buffers,
 * and what goes back to the guest on the channel: transfer packets of
 * receive-buffer ranges, RNDIS control messages (queued when no control
 * sub-allocation is free), completions; bad messages counted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jumbo.h"
#include "netvsp-private.h"

#define CHAIN_END UINT32_MAX
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

void netvsp_xfer_reset(struct conn *c)
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

void netvsp_free_chain(struct conn *c, uint32_t first)
{
    for (uint32_t s = first; s != CHAIN_END;) {
        uint32_t nx = c->next[s];
        c->next[s] = CHAIN_END;
        free_sub(c, s);
        s = nx;
    }
}

void netvsp_xfer_add(struct conn *c, uint32_t sub, uint32_t len)
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
uint32_t netvsp_xfer_emit(struct netvsp *np, struct conn *c, uint32_t channel_type)
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
            netvsp_ring_fatal(np, c);
        else
            np->stats.tx_ring_full += n;
        netvsp_free_chain(c, c->xhead);
        netvsp_xfer_reset(c);
        return 0;
    }
    c->outstanding[c->xhead] = 1;
    c->unpublished = true;
    netvsp_xfer_reset(c);
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
    memcpy(c->rbuf + (size_t)sub * c->sub_size, msg, len);
    /* Data ranges may be batched: control goes in its own packet. */
    struct vmbus_xfer_range saved[XFER_BATCH];
    uint32_t sn = c->xn, sh = c->xhead, st = c->xtail;
    memcpy(saved, c->xr, sizeof(c->xr[0]) * sn);
    netvsp_xfer_reset(c);
    netvsp_xfer_add(c, sub, len);
    netvsp_xfer_emit(np, c, NVSP_CHANNEL_TYPE_CONTROL);
    memcpy(c->xr, saved, sizeof(c->xr[0]) * sn);
    c->xn = sn;
    c->xhead = sh;
    c->xtail = st;
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

void netvsp_send_completion(struct conn *c, uint64_t tid, uint32_t type, uint32_t status)
{
    uint32_t m[2] = {type, status};
    uint8_t body[NVSP_MSG_SIZE_61] = {0};
    memcpy(body, m, sizeof(m));
    if (vmbus_ring_put_inband(c->tx, VMBUS_PKT_COMP, 0, tid, body, c->msg_size) == 0)
        c->unpublished = true;
}

void netvsp_complete_body(struct conn *c, uint64_t tid, const void *body, uint32_t len)
{
    uint8_t b[NVSP_MSG_SIZE_61] = {0};
    memcpy(b, body, len < sizeof(b) ? len : sizeof(b));
    uint32_t sz = c->msg_size > len ? c->msg_size : len;
    if (vmbus_ring_put_inband(c->tx, VMBUS_PKT_COMP, 0, tid, b, sz) == 0)
        c->unpublished = true;
}

void netvsp_publish(struct netvsp *np, struct conn *c)
{
    if (!c->unpublished)
        return;
    c->unpublished = false;
    int s = vmbus_ring_publish(c->tx);
    if (s == 1)
        vmbus_chan_signal(c->chan);
    else if (s < 0)
        netvsp_ring_fatal(np, c);
}

int netvsp_set_frame(struct netvsp *np, struct conn *c)
{
    c->mtu_gen_seen = __atomic_load_n(&np->mtu_gen, __ATOMIC_ACQUIRE);
    uint32_t nic_frame = jumbo_frame(__atomic_load_n(&np->mtu, __ATOMIC_ACQUIRE));
    uint32_t ndis = c->have_config ? c->ndis_frame : NVSP_NDIS_MTU_DEFAULT;
    c->frame = ndis < nic_frame ? ndis : nic_frame;
    vsw_port_set_max_frame(&np->port, c->frame);
    np->stats.mtu_pending = false; /* negotiated at the NIC's MTU of now */
    return 0;
}

void netvsp_nvs_recv_buf(struct netvsp *np, struct conn *c, const struct vmbus_pkt *pkt,
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
    netvsp_set_frame(np, c);
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
    netvsp_complete_body(c, pkt->trans_id, &a, sizeof(a));
}

void netvsp_nvs_send_buf(struct netvsp *np, struct conn *c, const struct vmbus_pkt *pkt,
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
    netvsp_complete_body(c, pkt->trans_id, &a, sizeof(a));
}

void netvsp_revoke_recv(struct conn *c)
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
    netvsp_xfer_reset(c);
}

void netvsp_revoke_send(struct conn *c)
{
    if (!c->sgp)
        return;
    vmbus_gpadl_put(c->sgp);
    c->sgp = NULL;
    c->sbuf = NULL;
}
