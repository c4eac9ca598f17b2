/*
 * netvsc's ring, both ways: frames into send-buffer sections (or pages sent
 * GPA-direct), frames and control answers out of the receive buffer's
 * transfer pages, completions both ways, what the root indicates, and the
 * interrupt arming that lets the owner sleep.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include "hv-guest.h"
#include "netvsc-private.h"
#include "nvsp-proto.h"
#include "rndis-proto.h"
#include "vmbus-ring.h"
#include "vmnic.h"

#define TX_PPI_MAX NETVSC_TX_PPI_MAX
#define TX_TCP_HLEN_MIN 20u
#define XFER_RANGES_MAX 1024u
/* Where an offloaded L4 header can start at the earliest: after the
 * Ethernet header and the shortest IP header. */
#define TX_L4_OFFSET_MIN (JUMBO_ETH_HLEN + 20u)

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int batch_put(struct netvsc *n, struct netvsc_chan *q);

static int chan_signal_if(struct vmbus_gchan *ch, int rc)
{
    if (rc == 1)
        return vmbus_gchan_signal(ch);
    return rc < 0 ? rc : 0;
}

int netvsc_signal_if(struct netvsc *n, int rc)
{
    return chan_signal_if(n->ch, rc);
}

static void free_chunk(struct netvsc *n, uint32_t chunk)
{
    if (chunk < BIG_CHUNKS && n->nfree_chunks < BIG_CHUNKS)
        n->free_chunks[n->nfree_chunks++] = chunk;
}

static void free_send_slot(struct netvsc *n, uint32_t slot)
{
    uint32_t sec = slot & SLOT_SECTION_MASK;
    if (sec < n->nsections && n->nfree_sections < n->nsections)
        n->free_sections[n->nfree_sections++] = sec;
    if (slot & SLOT_BIG)
        free_chunk(n, SLOT_CHUNK(slot));
    n->tx_blocked = false;
}

/* A completion for something we sent. */
static void on_completion(struct netvsc *n, const struct vmbus_pkt *pkt)
{
    if (pkt->trans_id & TID_SEND) {
        uint32_t slot = (uint32_t)(pkt->trans_id & 0xffffffffu);
        free_send_slot(n, slot);
        return;
    }
    if ((pkt->trans_id & TID_CTRL) && pkt->trans_id == n->ctrl_wait_tid) {
        uint32_t len = pkt->payload_len < sizeof(n->ctrl_comp) ? pkt->payload_len
                                                               : (uint32_t)sizeof(n->ctrl_comp);
        memset(n->ctrl_comp, 0, sizeof(n->ctrl_comp));
        memcpy(n->ctrl_comp, pkt->payload, len);
        n->ctrl_done = true;
        return;
    }
    n->stats.rx_bad++;
}

static void on_indicate_status(struct netvsc *n, const uint8_t *msg, uint32_t len)
{
    struct rndis_indicate_status st;
    if (len < sizeof(st))
        return;
    memcpy(&st, msg, sizeof(st));
    switch (st.status) {
    case RNDIS_STATUS_MEDIA_CONNECT:
        if (!n->info.link_up)
            n->stats.link_changes++;
        n->info.link_up = true;
        break;
    case RNDIS_STATUS_MEDIA_DISCONNECT:
        if (n->info.link_up)
            n->stats.link_changes++;
        n->info.link_up = false;
        break;
    case RNDIS_STATUS_NETWORK_CHANGE:
        /* Something about the network changed (the root sends it when the
         * NIC's MTU changes): a guest starts the adapter over. */
        n->stats.network_changes++;
        n->reinit_wanted = true;
        break;
    case RNDIS_STATUS_LINK_SPEED_CHANGE: {
        uint32_t speed;
        if (st.buf_len >= sizeof(speed) &&
            (uint64_t)st.buf_offset + RNDIS_HEADER_SIZE + sizeof(speed) <= len) {
            memcpy(&speed, msg + RNDIS_HEADER_SIZE + st.buf_offset, sizeof(speed));
            n->info.link_speed_mbps = speed / 10000u;
        }
        break;
    }
    default:
        break;
    }
}

int netvsc_rsc_add(struct netvsc_rsc *r, uint32_t pktinfo_flags, const void *data, uint32_t len,
                   const struct netvsc_meta *meta, bool last_range)
{
    if (pktinfo_flags & RNDIS_PKTINFO_FIRST_FRAG) {
        r->frags = 0;
        r->len = 0;
    } else if (r->frags == 0) {
        return -EPROTO;
    }
    bool more = !(pktinfo_flags & RNDIS_PKTINFO_LAST_FRAG);
    if ((more && last_range) || r->frags >= RSC_FRAGS_MAX ||
        (uint64_t)r->len + len > NETVSC_RSC_FRAME_MAX) {
        r->frags = 0;
        return -EPROTO;
    }
    if (r->frags == 0)
        r->meta = *meta;
    memcpy(r->buf + r->len, data, len);
    r->len += len;
    r->frags++;
    if (more)
        return 0;
    r->meta.flags |= NETVSC_F_RSC;
    return 1;
}

/* One RNDIS data message from the receive buffer; last: no range follows
 * it in its transfer. Returns the frames delivered (0 or 1) or -EPROTO. */
static int on_rndis_packet(struct netvsc *n, struct netvsc_chan *q, const uint8_t *msg,
                           uint32_t len, bool last, netvsc_rx_cb cb, void *ctx)
{
    struct rndis_packet_msg pm;
    if (len < sizeof(pm))
        return -EPROTO;
    memcpy(&pm, msg, sizeof(pm));
    if (pm.hdr.len > len || pm.hdr.len < sizeof(pm) || !vmnic_rndis_data_ok(&pm, pm.hdr.len))
        return -EPROTO;
    struct netvsc_meta meta = {0};
    struct vmnic_ppi ppi = {0};
    if (!vmnic_rndis_ppi_area_ok(&pm, pm.hdr.len) ||
        (pm.ppi_len &&
         vmnic_ppi_parse(msg + RNDIS_HEADER_SIZE + pm.ppi_offset, pm.ppi_len, &ppi) < 0))
        return -EPROTO;
    if ((ppi.present & VMNIC_PPI_CSUM) &&
        (ppi.csum & (RNDIS_RXCSUM_TCP_OK | RNDIS_RXCSUM_UDP_OK)) &&
        !(ppi.csum & (RNDIS_RXCSUM_TCP_FAILED | RNDIS_RXCSUM_UDP_FAILED | RNDIS_RXCSUM_IP_FAILED)))
        meta.flags |= NETVSC_F_CSUM;
    if (ppi.present & VMNIC_PPI_VLAN) {
        meta.flags |= NETVSC_F_VLAN;
        meta.vlan_tci = (uint16_t)(RNDIS_VLAN_ID(ppi.vlan) | (RNDIS_VLAN_PRIO(ppi.vlan) << 13));
    }
    const uint8_t *data = msg + RNDIS_HEADER_SIZE + pm.data_offset;
    if ((ppi.present & VMNIC_PPI_PKTINFO_ID) && (RNDIS_PKTINFO_FLAGS(ppi.pktinfo_id) & RNDIS_PKTINFO_SUBALLOC)) {
        /* A fragment of a coalesced packet: only if we asked for them. */
        if (!n->info.rsc || !q->rsc.buf)
            return -EPROTO;
        int rc = netvsc_rsc_add(&q->rsc, RNDIS_PKTINFO_FLAGS(ppi.pktinfo_id), data, pm.data_len, &meta, last);
        if (rc <= 0)
            return rc;
        q->rsc.frags = 0;
        n->stats.rx_frames++;
        n->stats.rx_rsc++;
        n->stats.rx_bytes += q->rsc.len;
        q->st.rx_frames++;
        q->st.rx_bytes += q->rsc.len;
        if (cb)
            cb(ctx, q->rsc.buf, q->rsc.len, &q->rsc.meta);
        return 1;
    }
    if (q->rsc.frags) {
        /* A packet left unfinished by a whole frame: dropped. */
        q->rsc.frags = 0;
        n->stats.rx_bad++;
    }
    n->stats.rx_frames++;
    n->stats.rx_bytes += pm.data_len;
    q->st.rx_frames++;
    q->st.rx_bytes += pm.data_len;
    if (cb)
        cb(ctx, data, pm.data_len, &meta);
    return 1;
}

/* An RNDIS control message (answer or indication). */
static void on_rndis_control(struct netvsc *n, const uint8_t *msg, uint32_t len)
{
    struct rndis_msg_hdr h;
    memcpy(&h, msg, sizeof(h));
    if (h.type == RNDIS_MSG_INDICATE) {
        on_indicate_status(n, msg, len);
        return;
    }
    /* A completion, at least as long as the shortest (SET_C, RESET_C,
     * KEEPALIVE_C: header, request id or status, status). */
    if (!(h.type & RNDIS_MSG_COMPLETION) || len < sizeof(struct rndis_set_cmplt)) {
        n->stats.rx_bad++;
        return;
    }
    uint32_t req_id;
    memcpy(&req_id, msg + offsetof(struct rndis_set_cmplt, req_id), sizeof(req_id));
    if (h.type == RNDIS_MSG_RESET_C || req_id == n->ctrl_req_id) {
        uint32_t l = len < CTRL_RESP_MAX ? len : CTRL_RESP_MAX;
        memcpy(n->rndis_resp, msg, l);
        n->rndis_resp_len = l;
        n->rndis_done = true;
    }
}

static int put_completion(struct netvsc *n, struct netvsc_chan *q, uint64_t tid, uint32_t status)
{
    struct nvsp_msg_rndis_pkt_complete c = {.type = NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE,
                                            .status = status};
    uint8_t buf[NVSP_MSG_SIZE_61] = {0};
    memcpy(buf, &c, sizeof(c));
    int rc = vmbus_ring_put_inband(vmbus_gchan_tx(q->ch), VMBUS_PKT_COMP, 0, tid, buf,
                                   n->msg_size);
    if (rc == 0)
        q->unflushed++;
    return rc;
}

/* Send the completions that found our ring full earlier, oldest first. */
static int flush_backlog(struct netvsc *n, struct netvsc_chan *q)
{
    while (q->backlog_len) {
        struct comp_backlog *b = &q->backlog[q->backlog_head];
        int rc = put_completion(n, q, b->tid, b->status);
        if (rc < 0)
            return rc;
        q->backlog_head = (q->backlog_head + 1) % COMP_BACKLOG;
        q->backlog_len--;
    }
    return 0;
}

/* Give the receive sections of one transfer back to the root. If our ring
 * is full (of our own sends, which the root is draining), the completion
 * waits in a backlog: the root cannot have more transfers outstanding than
 * it has sections, so the backlog is bounded by that. */
static int complete_xfer(struct netvsc *n, struct netvsc_chan *q, uint64_t tid, uint32_t status)
{
    int rc = q->backlog_len ? -EAGAIN : put_completion(n, q, tid, status);
    if (rc == 0)
        return 0;
    if (rc != -EAGAIN)
        return rc;
    if (!q->backlog || q->backlog_len == COMP_BACKLOG)
        return -EPROTO; /* more transfers outstanding than possible */
    q->backlog[(q->backlog_head + q->backlog_len) % COMP_BACKLOG] =
        (struct comp_backlog){.tid = tid, .status = status};
    q->backlog_len++;
    return 0;
}

/* Transfer-page packet: frames (or control answers) in the receive buffer,
 * opened as q->xfer for process() to deliver. */
static int on_xfer(struct netvsc *n, struct netvsc_chan *q, const struct vmbus_pkt *pkt)
{
    uint16_t pageset;
    const struct vmbus_xfer_range *ranges;
    int nr = vmbus_pkt_xfer_pages(pkt, &pageset, &ranges, XFER_RANGES_MAX);
    struct nvsp_msg_rndis_pkt m;
    if (nr < 0 || pageset != NVSP_RECV_BUF_ID || !n->rbuf || pkt->payload_len < sizeof(m)) {
        n->stats.rx_bad++;
        return -EPROTO;
    }
    memcpy(&m, pkt->payload, sizeof(m));
    if (m.type != NVSP_MSG1_SEND_RNDIS_PKT) {
        n->stats.rx_bad++;
        return -EPROTO;
    }
    /* The transaction id names the transfer's first receive section, as
     * vmswitch sends it; DPDK's netvsc indexes its section table with it
     * and drops what is not a section, and so do we (Linux only echoes
     * it), so that a root that sends anything else is noticed here. */
    if (pkt->trans_id >= n->num_sub_allocs) {
        n->stats.rx_bad++;
        return -EPROTO;
    }
    q->xfer = (struct netvsc_xfer){
        .ranges = ranges, .nr = (uint32_t)nr, .tid = pkt->trans_id, .status = NVSP_STAT_SUCCESS};
    return 0;
}

/* Where range r's message starts in the receive buffer, or NULL if the
 * root named bytes outside it (or a length no message has). */
static const uint8_t *range_msg(const struct netvsc *n, const struct vmbus_xfer_range *r)
{
    if (r->byte_count < sizeof(struct rndis_msg_hdr) || r->byte_count > n->sub_alloc_size ||
        (uint64_t)r->byte_offset + r->byte_count > n->rbuf_len)
        return NULL;
    return n->rbuf + r->byte_offset;
}

/* One range of a transfer; last: none follows it. Returns the frames
 * delivered (0 or 1), or -1 if the range was bad (counted). */
static int rx_range(struct netvsc *n, struct netvsc_chan *q, const struct vmbus_xfer_range *r,
                    bool last, netvsc_rx_cb cb, void *ctx)
{
    const uint8_t *msg = range_msg(n, r);
    struct rndis_msg_hdr h;
    if (msg)
        memcpy(&h, msg, sizeof(h));
    if (!msg || h.len > r->byte_count || h.len < sizeof(h)) {
        n->stats.rx_bad++;
        q->rsc.frags = 0; /* no packet goes on over a gap */
        return -1;
    }
    if (h.type != RNDIS_MSG_PACKET) {
        q->rsc.frags = 0;
        on_rndis_control(n, msg, h.len);
        return 0;
    }
    int rc = on_rndis_packet(n, q, msg, h.len, last, cb, ctx);
    if (rc < 0) {
        q->rsc.frags = 0;
        n->stats.rx_bad++;
        return -1;
    }
    return rc;
}

bool netvsc_rx_xfer(struct netvsc *n, struct netvsc_chan *q, netvsc_rx_cb cb, void *ctx,
                    int budget, int *frames)
{
    struct netvsc_xfer *x = &q->xfer;
    while (x->next < x->nr) {
        if (*frames >= budget)
            return false;
        struct vmbus_xfer_range r;
        memcpy(&r, &x->ranges[x->next], sizeof(r));
        x->next++;
        /* The next message's first lines, which the root wrote on its CPU,
         * while this one is read: the header reads were the largest part
         * of a receive's misses. Only bytes the check lets us read. */
        if (x->next < x->nr) {
            struct vmbus_xfer_range nx;
            memcpy(&nx, &x->ranges[x->next], sizeof(nx));
            const uint8_t *p = range_msg(n, &nx);
            if (p) {
                __builtin_prefetch(p);
                if (nx.byte_count > 64)
                    __builtin_prefetch(p + 64);
            }
        }
        int rc = rx_range(n, q, &r, x->next == x->nr, cb, ctx);
        if (rc < 0)
            x->status = NVSP_STAT_INVALID_RNDIS_PKT;
        else
            *frames += rc;
    }
    x->nr = 0;
    x->next = 0;
    return true;
}

uint32_t netvsc_rx_ranges(struct netvsc *n, const struct vmbus_xfer_range *ranges, uint32_t nr,
                          netvsc_rx_cb cb, void *ctx, int *frames)
{
    struct netvsc_chan *q = &n->q[0];
    q->xfer = (struct netvsc_xfer){.ranges = ranges, .nr = nr, .status = NVSP_STAT_SUCCESS};
    netvsc_rx_xfer(n, q, cb, ctx, INT_MAX, frames);
    return q->xfer.status;
}

/* Handle what is in channel q's ring while *frames is under budget. 0,
 * or the error that failed the NIC (n->ring_failed set). */
static int chan_process(struct netvsc *n, struct netvsc_chan *q, netvsc_rx_cb cb, void *ctx,
                        int budget, int *frames)
{
    struct vmbus_ring *rx = vmbus_gchan_rx(q->ch);
    if (q->backlog_len) {
        int rc = flush_backlog(n, q);
        if (rc < 0 && rc != -EAGAIN)
            return rc;
    }
    while (*frames < budget) {
        if (q->xfer.nr) {
            /* The open transfer first: its ranges live in q->pkt. */
            if (!netvsc_rx_xfer(n, q, cb, ctx, budget, frames))
                break;
            int rc = complete_xfer(n, q, q->xfer.tid, q->xfer.status);
            if (rc < 0 && rc != -EPROTO) {
                n->ring_failed = true;
                return rc;
            }
            continue;
        }
        int len = vmbus_ring_get(rx, q->pkt, RX_PKT_MAX);
        if (len == -EAGAIN)
            break;
        if (len < 0) {
            n->ring_failed = true;
            return -EPROTO;
        }
        struct vmbus_pkt pkt;
        vmbus_pkt_parse(q->pkt, (uint32_t)len, &pkt);
        if (pkt.type == VMBUS_PKT_COMP) {
            on_completion(n, &pkt);
        } else if (pkt.type == VMBUS_PKT_DATA_USING_XFER_PAGES) {
            on_xfer(n, q, &pkt); /* a malformed one is counted and left */
        } else {
            /* In-band from the root: the send table (on the primary, as
             * vmswitch sends it), VF notices (not ours to take). */
            uint32_t type = 0;
            if (pkt.payload_len >= sizeof(type))
                memcpy(&type, pkt.payload, sizeof(type));
            if (type == NVSP_MSG5_SEND_INDIRECTION_TABLE && q == &n->q[0])
                netvsc_on_send_table(n, pkt.payload, pkt.payload_len);
            else
                n->stats.rx_bad += pkt.payload_len < 4;
        }
    }
    int rc = chan_signal_if(q->ch, vmbus_ring_release(rx));
    if (q->batch_count && q->tx_ring_full)
        batch_put(n, q); /* a flush found the ring full; the root has read since */
    if (q->unflushed) {
        q->unflushed = 0;
        int r2 = chan_signal_if(q->ch, vmbus_ring_publish(vmbus_gchan_tx(q->ch)));
        if (rc == 0)
            rc = r2;
    }
    return rc < 0 && rc != -EAGAIN ? rc : 0;
}

/* Handle what is in the rings, up to budget frames for all channels
 * together; the channel served first rotates poll by poll, so that one
 * whose ring is always full does not starve the others. */
static int process(struct netvsc *n, netvsc_rx_cb cb, void *ctx, int budget)
{
    int frames = 0;
    if (n->ring_failed)
        return -EPROTO;
    uint32_t nchan = n->nchan ? n->nchan : 1;
    uint32_t first = n->rr < nchan ? n->rr : 0;
    n->rr = (first + 1) % nchan;
    for (uint32_t k = 0; k < nchan; k++) {
        int rc = chan_process(n, &n->q[(first + k) % nchan], cb, ctx, budget, &frames);
        if (rc < 0)
            return rc;
    }
    return frames;
}

int netvsc_poll(struct netvsc *n, netvsc_rx_cb cb, void *ctx, int budget)
{
    if (vmbus_gchan_rescinded(n->ch))
        return -ENOTCONN;
    return process(n, cb, ctx, budget);
}

/* Wait until pred() holds, processing the ring (frames are dropped). */
int netvsc_wait(struct netvsc *n, bool *flag)
{
    uint64_t deadline = now_ms() + (uint64_t)n->p.timeout_ms;
    struct vmbus_ring *rx = vmbus_gchan_rx(n->ch);
    for (;;) {
        int rc = process(n, NULL, NULL, 64);
        if (rc < 0)
            return rc;
        if (*flag)
            return 0;
        if (vmbus_gchan_rescinded(n->ch))
            return -ENOTCONN;
        uint64_t now = now_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        if (vmbus_ring_intr_unmask(rx)) {
            vmbus_ring_intr_mask(rx);
            continue;
        }
        rc = vmbus_gchan_wait(n->ch, (int)(deadline - now) < 20 ? (int)(deadline - now) : 20);
        vmbus_ring_intr_mask(rx);
        vmbus_gchan_event(n->ch);
        if (rc < 0)
            return rc;
        rc = vmbus_client_poll(n->client);
        if (rc < 0)
            return rc;
    }
}

bool netvsc_tx_blocked(const struct netvsc *n)
{
    return n->tx_blocked;
}

bool netvsc_tx_alloc(struct netvsc *n, uint32_t max_len, struct netvsc_txbuf *tb)
{
    uint32_t small_cap = n->section_size - TX_HDR_ROOM;
    if (max_len > n->info.tx_frame_max)
        return false; /* never: not a reason to wait */
    if (n->nfree_sections == 0)
        goto none;
    if (max_len <= small_cap) {
        uint32_t sec = n->free_sections[--n->nfree_sections];
        tb->data = n->sbuf + (size_t)sec * n->section_size + TX_HDR_ROOM;
        tb->cap = small_cap;
        tb->slot = sec;
        tb->spill = NULL;
        tb->spill_cap = 0;
        return true;
    }
    if (!n->chunk_pages || n->nfree_chunks == 0 ||
        max_len > n->chunk_pages * HV_PAGE_SIZE)
        goto none;
    uint32_t sec = n->free_sections[--n->nfree_sections];
    uint32_t chunk = n->free_chunks[--n->nfree_chunks];
    tb->data = hv_guest_pfn_ptr(n->g, n->chunk_pfn + (uint64_t)chunk * n->chunk_pages);
    tb->cap = n->chunk_pages * HV_PAGE_SIZE;
    tb->slot = SLOT_BIG | (chunk << SLOT_CHUNK_SHIFT) | sec;
    tb->spill = NULL;
    tb->spill_cap = 0;
    return true;
none:
    n->stats.tx_no_buffer++;
    n->tx_blocked = true;
    return false;
}

bool netvsc_tx_alloc_split(struct netvsc *n, uint32_t max_len, struct netvsc_txbuf *tb)
{
    uint32_t small_cap = n->section_size - TX_HDR_ROOM;
    if (max_len <= small_cap || !n->chunk_pages || n->nfree_chunks == 0 ||
        max_len > n->chunk_pages * HV_PAGE_SIZE)
        return netvsc_tx_alloc(n, max_len < small_cap ? max_len : small_cap, tb);
    if (n->nfree_sections == 0) {
        n->stats.tx_no_buffer++;
        n->tx_blocked = true;
        return false;
    }
    uint32_t sec = n->free_sections[--n->nfree_sections];
    uint32_t chunk = n->free_chunks[--n->nfree_chunks];
    tb->data = n->sbuf + (size_t)sec * n->section_size + TX_HDR_ROOM;
    tb->cap = small_cap;
    tb->slot = SLOT_BIG | SLOT_SPLIT | (chunk << SLOT_CHUNK_SHIFT) | sec;
    tb->spill = (uint8_t *)hv_guest_pfn_ptr(n->g, n->chunk_pfn + (uint64_t)chunk * n->chunk_pages) +
                small_cap;
    tb->spill_cap = n->chunk_pages * HV_PAGE_SIZE - small_cap;
    return true;
}

bool netvsc_tx_join(struct netvsc *n, struct netvsc_txbuf *tb, uint32_t len)
{
    if (!(tb->slot & SLOT_SPLIT))
        return len <= tb->cap;
    if (len > tb->cap + tb->spill_cap)
        return false;
    if (len <= tb->cap) {
        free_chunk(n, SLOT_CHUNK(tb->slot));
        tb->slot &= SLOT_SECTION_MASK;
    } else {
        uint8_t *chunk = (uint8_t *)tb->spill - tb->cap;
        memcpy(chunk, tb->data, tb->cap);
        tb->data = chunk;
        tb->cap += tb->spill_cap;
        tb->slot &= ~SLOT_SPLIT;
    }
    tb->spill = NULL;
    tb->spill_cap = 0;
    return true;
}

void netvsc_tx_abort(struct netvsc *n, struct netvsc_txbuf *tb)
{
    free_send_slot(n, tb->slot);
}

static uint32_t put_ppi(uint8_t *p, uint32_t type, uint32_t value)
{
    struct rndis_ppi ppi = {.size = RNDIS_PPI_U32_SIZE, .type = type, .ppi_offset = sizeof(ppi)};
    memcpy(p, &ppi, sizeof(ppi));
    memcpy(p + sizeof(ppi), &value, sizeof(value));
    return ppi.size;
}

int netvsc_tx_ppis(const struct netvsc_info *info, const struct netvsc_meta *meta, uint32_t len,
                   uint8_t ppis[NETVSC_TX_PPI_MAX])
{
    uint32_t ppi_len = 0;
    if (!meta)
        return 0;
    if (meta->flags & NETVSC_F_VLAN)
        ppi_len += put_ppi(ppis + ppi_len, RNDIS_PPI_VLAN,
                           RNDIS_VLAN_MAKE(meta->vlan_tci & 0xfff, meta->vlan_tci >> 13));
    if (meta->flags & NETVSC_F_LSO) {
        /* As hv_netvsc: the LSOv2 PPI alone, no checksum PPI (the root
         * finishes every segment's checksums). The TCP header must start
         * inside the frame with room for its fixed part and one payload
         * byte behind it. */
        if (!info->lso || meta->mss == 0 || meta->mss > RNDIS_LSO_MSS_MASK ||
            meta->l4_offset < TX_L4_OFFSET_MIN || meta->l4_offset > RNDIS_LSO_THOFF_MASK ||
            (uint32_t)meta->l4_offset + TX_TCP_HLEN_MIN >= len ||
            (info->lso_max && len > info->lso_max))
            return -EINVAL;
        uint32_t v = meta->mss | ((uint32_t)meta->l4_offset << RNDIS_LSO_THOFF_SHIFT) |
                     RNDIS_LSO_TYPE_V2 | ((meta->flags & NETVSC_F_IPV6) ? RNDIS_LSO_IPV6 : 0);
        ppi_len += put_ppi(ppis + ppi_len, RNDIS_PPI_LSO, v);
    } else if (meta->flags & NETVSC_F_CSUM) {
        if (!info->csum_offload || meta->l4_offset < TX_L4_OFFSET_MIN ||
            meta->l4_offset > RNDIS_TXCSUM_THOFF_MASK ||
            (meta->l4_proto != IPPROTO_TCP && meta->l4_proto != IPPROTO_UDP))
            return -EINVAL;
        uint32_t v = ((meta->flags & NETVSC_F_IPV6) ? RNDIS_TXCSUM_IPV6 : RNDIS_TXCSUM_IPV4) |
                     (meta->l4_proto == IPPROTO_TCP ? RNDIS_TXCSUM_TCP : RNDIS_TXCSUM_UDP) |
                     ((uint32_t)meta->l4_offset << RNDIS_TXCSUM_THOFF_SHIFT);
        ppi_len += put_ppi(ppis + ppi_len, RNDIS_PPI_CSUM_INFO, v);
    }
    return (int)ppi_len;
}

static inline void put_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}

/*
 * A PACKET_MSG header at p, field by field. Built as a struct on the stack
 * and copied, it was read back with loads wider than its stores (a
 * store-forwarding stall; perf annotate put 70 % of netvsc_batch_append's
 * samples there).
 */
static void put_packet_hdr(uint8_t *p, uint32_t msg_len, uint32_t data_offset, uint32_t data_len,
                           uint32_t ppi_len)
{
    memset(p, 0, sizeof(struct rndis_packet_msg));
    put_u32(p + offsetof(struct rndis_packet_msg, hdr.type), RNDIS_MSG_PACKET);
    put_u32(p + offsetof(struct rndis_packet_msg, hdr.len), msg_len);
    put_u32(p + offsetof(struct rndis_packet_msg, data_offset), data_offset);
    put_u32(p + offsetof(struct rndis_packet_msg, data_len), data_len);
    if (ppi_len) {
        put_u32(p + offsetof(struct rndis_packet_msg, ppi_offset), RNDIS_PACKET_OFFSET_MIN);
        put_u32(p + offsetof(struct rndis_packet_msg, ppi_len), ppi_len);
    }
}

void netvsc_tx_set_batching(struct netvsc *n, uint32_t max_pkts_per_msg, uint32_t align_factor)
{
    n->tx_max_pkts = max_pkts_per_msg < TX_BATCH_MAX ? max_pkts_per_msg : TX_BATCH_MAX;
    if (align_factor > TX_ALIGN_SHIFT_MAX)
        n->tx_max_pkts = 1;
    n->tx_align = align_factor > 3 && align_factor <= TX_ALIGN_SHIFT_MAX ? 1u << align_factor : 8u;
}

bool netvsc_batch_append(struct netvsc *n, struct netvsc_chan *q, const void *frame, uint32_t len,
                         const uint8_t *ppis, uint32_t ppi_len)
{
    if (!q->batch_count || q->batch_count >= n->tx_max_pkts)
        return false;
    uint32_t at = (q->batch_len + n->tx_align - 1) & ~(n->tx_align - 1);
    uint32_t need = (uint32_t)sizeof(struct rndis_packet_msg) + ppi_len + len;
    if (at > n->section_size || need > n->section_size - at)
        return false;
    uint8_t *s = n->sbuf + (size_t)q->batch_sec * n->section_size;
    if (at != q->batch_len) {
        /* The padding belongs to the message before (hv_netvsc, FreeBSD
         * hn and DPDK net_netvsc pack so; roots walk at message_length). */
        memset(s + q->batch_len, 0, at - q->batch_len);
        put_u32(s + q->batch_last + offsetof(struct rndis_msg_hdr, len),
                q->batch_last_len + (at - q->batch_len));
    }
    uint8_t *p = s + at;
    put_packet_hdr(p, need, RNDIS_PACKET_OFFSET_MIN + ppi_len, len, ppi_len);
    if (ppi_len)
        memcpy(p + sizeof(struct rndis_packet_msg), ppis, ppi_len);
    memcpy(p + sizeof(struct rndis_packet_msg) + ppi_len, frame, len);
    q->batch_last = at;
    q->batch_last_len = need;
    q->batch_len = at + need;
    q->batch_count++;
    return true;
}

/* What a put of one send to the root's ring came to: -EAGAIN marks the
 * sender blocked on ring space; 0 counts the send to flush. */
static int put_done(struct netvsc *n, struct netvsc_chan *q, int rc)
{
    if (rc == -EAGAIN) {
        n->tx_blocked = true;
        q->tx_ring_full = true;
        return rc;
    }
    if (rc < 0)
        return rc;
    q->tx_ring_full = false;
    q->unflushed++;
    return 0;
}

/* Send the open section's frames as one NVSP send. -EAGAIN: our ring is
 * full, the section stays open (the next flush or poll tries again). */
static int batch_put(struct netvsc *n, struct netvsc_chan *q)
{
    if (!q->batch_count)
        return 0;
    struct nvsp_msg_rndis_pkt m = {.type = NVSP_MSG1_SEND_RNDIS_PKT,
                                   .channel_type = NVSP_CHANNEL_TYPE_DATA,
                                   .send_buf_section_index = q->batch_sec,
                                   .send_buf_section_size = q->batch_len};
    uint8_t body[NVSP_MSG_SIZE_61] = {0};
    memcpy(body, &m, sizeof(m));
    int rc = vmbus_ring_put_inband(vmbus_gchan_tx(q->ch), VMBUS_PKT_DATA_INBAND,
                                   VMBUS_PKT_FLAG_COMPLETION_REQUESTED, TID_SEND | q->batch_sec,
                                   body, n->msg_size);
    if ((rc = put_done(n, q, rc)) < 0)
        return rc;
    q->batch_count = 0;
    return 0;
}

static void count_tx(struct netvsc *n, struct netvsc_chan *q, uint32_t len, bool big)
{
    n->stats.tx_frames++;
    n->stats.tx_bytes += len;
    q->st.tx_frames++;
    q->st.tx_bytes += len;
    n->stats.tx_gpa_direct += big;
}

/* A frame packed into the open section: send the section once it is full
 * (a full ring leaves it open for the next flush: the frame is taken). */
static void batch_took(struct netvsc *n, struct netvsc_chan *q, uint32_t len)
{
    count_tx(n, q, len, false);
    if (q->batch_count == n->tx_max_pkts)
        batch_put(n, q);
}

/* The channel a frame goes on: the root's send table by the frame's
 * hash, as Linux's netvsc_get_tx_queue picks; the primary without a
 * table or a hash. */
static struct netvsc_chan *tx_chan(struct netvsc *n, const void *frame, uint32_t len)
{
    uint32_t h;
    if (!n->send_tab_set || !netvsc_frame_hash(frame, len, &h))
        return &n->q[0];
    uint32_t c = n->send_tab[h % NETVSC_SEND_TAB];
    return c < n->nchan ? &n->q[c] : &n->q[0];
}

int netvsc_tx_submit(struct netvsc *n, struct netvsc_txbuf *tb, uint32_t len,
                     const struct netvsc_meta *meta)
{
    if ((tb->slot & SLOT_SPLIT) && !netvsc_tx_join(n, tb, len))
        return -EINVAL;
    if (len < JUMBO_ETH_HLEN || len > tb->cap)
        return -EINVAL;
    struct netvsc_chan *q = tx_chan(n, tb->data, len);
    uint32_t sec = tb->slot & SLOT_SECTION_MASK;
    bool big = tb->slot & SLOT_BIG;
    uint64_t tid = TID_SEND | tb->slot;
    uint8_t *s = n->sbuf + (size_t)sec * n->section_size;
    uint8_t ppis[TX_PPI_MAX];
    int pl = netvsc_tx_ppis(&n->info, meta, len, ppis);
    if (pl < 0)
        return pl;
    uint32_t ppi_len = (uint32_t)pl;
    int rc;
    if (!big && netvsc_batch_append(n, q, tb->data, len, ppis, ppi_len)) {
        /* Copied into the open section: tb's own goes back. */
        if (sec < n->nsections && n->nfree_sections < n->nsections)
            n->free_sections[n->nfree_sections++] = sec;
        batch_took(n, q, len);
        return 0;
    }
    /* Frames reach the root in the order they were submitted (on their
     * channel). */
    if ((rc = batch_put(n, q)) < 0)
        return rc;

    const uint32_t hdr = (uint32_t)sizeof(struct rndis_packet_msg);
    uint32_t section_bytes;
    if (!big) {
        /* Frame already at TX_HDR_ROOM; zero the gap so nothing of ours leaks. */
        section_bytes = TX_HDR_ROOM + len;
        put_packet_hdr(s, section_bytes, TX_HDR_ROOM - RNDIS_HEADER_SIZE, len, ppi_len);
        memset(s + hdr + ppi_len, 0, TX_HDR_ROOM - hdr - ppi_len);
    } else {
        section_bytes = hdr + ppi_len;
        put_packet_hdr(s, hdr + ppi_len + len, RNDIS_PACKET_OFFSET_MIN + ppi_len, len, ppi_len);
    }
    memcpy(s + hdr, ppis, ppi_len);

    if (!big && n->tx_max_pkts > 1) {
        /* The first frame of a new send: later ones are packed behind it. */
        q->batch_sec = sec;
        q->batch_len = section_bytes;
        q->batch_last = 0;
        q->batch_last_len = section_bytes;
        q->batch_count = 1;
        count_tx(n, q, len, false);
        return 0;
    }

    struct nvsp_msg_rndis_pkt m = {.type = NVSP_MSG1_SEND_RNDIS_PKT,
                                   .channel_type = NVSP_CHANNEL_TYPE_DATA,
                                   .send_buf_section_index = sec,
                                   .send_buf_section_size = section_bytes};
    uint8_t body[NVSP_MSG_SIZE_61] = {0};
    memcpy(body, &m, sizeof(m));
    struct iovec iov = {.iov_base = body, .iov_len = n->msg_size};
    struct vmbus_ring *tx = vmbus_gchan_tx(q->ch);
    if (!big) {
        rc = vmbus_ring_put(tx, VMBUS_PKT_DATA_INBAND, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, tid,
                            NULL, 0, &iov, 1);
    } else {
        /* The frame's pages, one range: reserved, count, then the range. */
        uint32_t chunk = SLOT_CHUNK(tb->slot);
        uint64_t first = n->chunk_pfn + (uint64_t)chunk * n->chunk_pages;
        uint32_t npfn = (len + HV_PAGE_SIZE - 1) / HV_PAGE_SIZE;
        uint8_t ext[8 + 8 + 8 * 17];
        uint32_t hdr2[2] = {0, 1};
        struct vmbus_gpa_range rg = {.byte_count = len, .byte_offset = 0};
        if (npfn > 17)
            return -EINVAL;
        memcpy(ext, hdr2, 8);
        memcpy(ext + 8, &rg, 8);
        for (uint32_t i = 0; i < npfn; i++) {
            uint64_t pfn = first + i;
            memcpy(ext + 16 + 8 * i, &pfn, 8);
        }
        rc = vmbus_ring_put(tx, VMBUS_PKT_DATA_USING_GPA_DIRECT,
                            VMBUS_PKT_FLAG_COMPLETION_REQUESTED, tid, ext, 16 + 8 * npfn, &iov, 1);
    }
    if ((rc = put_done(n, q, rc)) < 0)
        return rc;
    count_tx(n, q, len, big);
    return 0;
}

int netvsc_tx_flush(struct netvsc *n)
{
    int ret = 0;
    uint32_t nchan = n->nchan ? n->nchan : 1;
    for (uint32_t i = 0; i < nchan; i++) {
        struct netvsc_chan *q = &n->q[i];
        int rc = batch_put(n, q);
        if (rc < 0 && rc != -EAGAIN && ret == 0)
            ret = rc;
        if (!q->unflushed)
            continue;
        q->unflushed = 0;
        rc = chan_signal_if(q->ch, vmbus_ring_publish(vmbus_gchan_tx(q->ch)));
        if (rc < 0 && ret == 0)
            ret = rc;
    }
    return ret;
}

int netvsc_send(struct netvsc *n, const void *frame, uint32_t len, const struct netvsc_meta *meta)
{
    struct netvsc_txbuf tb;
    /* Straight into the open section if it has room: one copy. The same
     * frames as a section of its own takes. */
    struct netvsc_chan *q = len >= JUMBO_ETH_HLEN ? tx_chan(n, frame, len) : &n->q[0];
    if (q->batch_count && len >= JUMBO_ETH_HLEN && len <= n->info.tx_frame_max &&
        len <= n->section_size - TX_HDR_ROOM) {
        uint8_t ppis[TX_PPI_MAX];
        int pl = netvsc_tx_ppis(&n->info, meta, len, ppis);
        if (pl < 0)
            return pl;
        if (netvsc_batch_append(n, q, frame, len, ppis, (uint32_t)pl)) {
            batch_took(n, q, len);
            return 0;
        }
    }
    if (!netvsc_tx_alloc(n, len, &tb))
        return -EAGAIN;
    memcpy(tb.data, frame, len);
    int rc = netvsc_tx_submit(n, &tb, len, meta);
    if (rc < 0)
        netvsc_tx_abort(n, &tb);
    return rc;
}

bool netvsc_intr_arm(struct netvsc *n)
{
    /* Frames of a transfer a poll's budget left are work the ring no
     * longer shows. Every channel is unmasked, whatever the others hold. */
    bool pending = false;
    uint32_t nchan = n->nchan ? n->nchan : 1;
    for (uint32_t i = 0; i < nchan; i++) {
        struct netvsc_chan *q = &n->q[i];
        pending |= vmbus_ring_intr_unmask(vmbus_gchan_rx(q->ch));
        pending |= q->xfer.nr != 0;
    }
    for (uint32_t i = 0; i < nchan && !pending; i++) {
        /* Blocked on ring space: ask to be told when the root drains it.
         * Blocked on send sections only, the root's completions free them:
         * they arrive on the rings just unmasked, and asking for space the
         * ring has would say "work pending" and keep the owner polling. */
        struct netvsc_chan *q = &n->q[i];
        if (!q->tx_ring_full)
            continue;
        int r = vmbus_ring_arm_space(vmbus_gchan_tx(q->ch),
                                     vmbus_ring_pkt_size(8 + 8 + 8 * 17, NVSP_MSG_SIZE_61));
        pending = r == 1;
    }
    return pending;
}

void netvsc_intr_disarm(struct netvsc *n)
{
    uint32_t nchan = n->nchan ? n->nchan : 1;
    for (uint32_t i = 0; i < nchan; i++)
        vmbus_ring_intr_mask(vmbus_gchan_rx(n->q[i].ch));
}

bool netvsc_event(struct netvsc *n)
{
    /* Every flag cleared: one left set suppresses that channel's next
     * signal. */
    bool ev = false;
    uint32_t nchan = n->nchan ? n->nchan : 1;
    for (uint32_t i = 0; i < nchan; i++)
        ev |= vmbus_gchan_event(n->q[i].ch);
    return ev;
}
