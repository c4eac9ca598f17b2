/*
 * netvsc: guest side of NVSP and RNDIS (shared/reference §4, §5).
 *
 * Layout in guest memory: the channel's rings (vmbus_client), a receive
 * buffer the root writes frames into, a send buffer cut into sections of the
 * root's choosing, and a few page chunks for frames larger than a section
 * (sent GPA-direct). Transaction ids on our ring say what a completion frees:
 *   TID_CTRL | n        an NVSP control request (INIT, buffers)
 *   TID_SEND | slot     a send; slot = section index (| chunk << 20 | BIG)
 * The root is trusted less than our own memory: every range and length it
 * hands us is checked against what we granted before we touch it.
 */
#define _GNU_SOURCE
#include "netvsc.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hv-guest.h"
#include "nvsp-proto.h"
#include "rndis-proto.h"
#include "vmbus-ring.h"
#include "vmnic.h"

#define TID_CTRL (1ull << 62)
#define TID_SEND (1ull << 61)
#define SLOT_BIG (1u << 31)
#define SLOT_CHUNK_SHIFT 20
#define SLOT_SECTION_MASK 0xfffffu

/* Frames start this far into a send section; the RNDIS header and PPIs go
 * before them. */
#define TX_HDR_ROOM 128u
#define TX_PPI_MAX (TX_HDR_ROOM - sizeof(struct rndis_packet_msg))
#define BIG_CHUNKS 32u
#define RX_PKT_MAX 65536u
#define XFER_RANGES_MAX 1024u
#define CTRL_RESP_MAX 4096u
#define COMP_BACKLOG 16384u

struct comp_backlog {
    uint64_t tid;
    uint32_t status;
};

struct netvsc {
    struct vmbus_client *client;
    struct hv_guest *g;
    struct vmbus_gchan *ch;
    uint32_t relid;
    struct netvsc_params p;
    bool reinit_wanted; /* the root indicated a network change */
    uint32_t msg_size; /* NVSP message size we send */
    uint64_t next_ctrl;
    uint32_t next_req_id;

    /* receive buffer */
    uint64_t rbuf_pfn;
    uint32_t rbuf_pages;
    uint8_t *rbuf;
    uint32_t rbuf_len;
    uint32_t rbuf_gpadl;
    uint32_t sub_alloc_size;
    uint32_t num_sub_allocs;

    /* send buffer */
    uint64_t sbuf_pfn;
    uint32_t sbuf_pages;
    uint8_t *sbuf;
    uint32_t sbuf_gpadl;
    uint32_t section_size;
    uint32_t nsections;
    uint32_t *free_sections; /* stack */
    uint32_t nfree_sections;

    /* chunks for frames larger than a section */
    uint64_t chunk_pfn;
    uint32_t chunk_pages; /* per chunk */
    uint32_t free_chunks[BIG_CHUNKS];
    uint32_t nfree_chunks;

    bool tx_blocked;
    bool ring_failed;
    unsigned unflushed;

    /* control exchange in progress */
    uint64_t ctrl_wait_tid;
    bool ctrl_done;
    uint8_t ctrl_comp[64];
    uint32_t ctrl_req_id;
    bool rndis_done;
    uint8_t rndis_resp[CTRL_RESP_MAX];
    uint32_t rndis_resp_len;

    struct comp_backlog backlog[COMP_BACKLOG];
    uint32_t backlog_head, backlog_len;

    struct netvsc_info info;
    struct netvsc_stats stats;
    uint8_t *pkt; /* copy of the current ring packet */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int signal_if(struct netvsc *n, int rc)
{
    if (rc == 1)
        return vmbus_gchan_signal(n->ch);
    return rc < 0 ? rc : 0;
}

/* Send one NVSP message in-band, padded to our message size. */
static int nvsp_send(struct netvsc *n, const void *msg, uint32_t len, uint64_t tid, bool want_comp)
{
    uint8_t buf[NVSP_MSG_SIZE_61];
    memset(buf, 0, sizeof(buf));
    memcpy(buf, msg, len);
    int rc = vmbus_ring_put_inband(vmbus_gchan_tx(n->ch), VMBUS_PKT_DATA_INBAND,
                                   want_comp ? VMBUS_PKT_FLAG_COMPLETION_REQUESTED : 0, tid, buf,
                                   n->msg_size > len ? n->msg_size : len);
    if (rc < 0)
        return rc;
    return signal_if(n, vmbus_ring_publish(vmbus_gchan_tx(n->ch)));
}

static void free_send_slot(struct netvsc *n, uint32_t slot)
{
    uint32_t sec = slot & SLOT_SECTION_MASK;
    if (sec < n->nsections && n->nfree_sections < n->nsections)
        n->free_sections[n->nfree_sections++] = sec;
    if (slot & SLOT_BIG) {
        uint32_t chunk = (slot & ~SLOT_BIG) >> SLOT_CHUNK_SHIFT;
        if (chunk < BIG_CHUNKS && n->nfree_chunks < BIG_CHUNKS)
            n->free_chunks[n->nfree_chunks++] = chunk;
    }
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
    case RNDIS_STATUS_LINK_SPEED_CHANGE:
        if (st.buf_len >= 4 && (uint64_t)st.buf_offset + 8 + 4 <= len) {
            uint32_t speed;
            memcpy(&speed, msg + 8 + st.buf_offset, 4);
            n->info.link_speed_mbps = speed / 10000u;
        }
        break;
    default:
        break;
    }
}

/* One RNDIS data message from the receive buffer. */
static int on_rndis_packet(struct netvsc *n, const uint8_t *msg, uint32_t len, netvsc_rx_cb cb,
                           void *ctx)
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
    n->stats.rx_frames++;
    n->stats.rx_bytes += pm.data_len;
    if (cb)
        cb(ctx, msg + 8 + pm.data_offset, pm.data_len, &meta);
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
    if (!(h.type & 0x80000000u) || len < 16) {
        n->stats.rx_bad++;
        return;
    }
    uint32_t req_id;
    memcpy(&req_id, msg + 8, 4);
    if (h.type == RNDIS_MSG_RESET_C || req_id == n->ctrl_req_id) {
        uint32_t l = len < CTRL_RESP_MAX ? len : CTRL_RESP_MAX;
        memcpy(n->rndis_resp, msg, l);
        n->rndis_resp_len = l;
        n->rndis_done = true;
    }
}

static int put_completion(struct netvsc *n, uint64_t tid, uint32_t status)
{
    struct nvsp_msg_rndis_pkt_complete c = {.type = NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE,
                                            .status = status};
    uint8_t buf[NVSP_MSG_SIZE_61] = {0};
    memcpy(buf, &c, sizeof(c));
    int rc = vmbus_ring_put_inband(vmbus_gchan_tx(n->ch), VMBUS_PKT_COMP, 0, tid, buf,
                                   n->msg_size);
    if (rc == 0)
        n->unflushed++;
    return rc;
}

/* Send the completions that found our ring full earlier, oldest first. */
static int flush_backlog(struct netvsc *n)
{
    while (n->backlog_len) {
        struct comp_backlog *b = &n->backlog[n->backlog_head];
        int rc = put_completion(n, b->tid, b->status);
        if (rc < 0)
            return rc;
        n->backlog_head = (n->backlog_head + 1) % COMP_BACKLOG;
        n->backlog_len--;
    }
    return 0;
}

/* Give the receive sections of one transfer back to the root. If our ring
 * is full (of our own sends, which the root is draining), the completion
 * waits in a backlog: the root cannot have more transfers outstanding than
 * it has sections, so the backlog is bounded by that. */
static int complete_xfer(struct netvsc *n, uint64_t tid, uint32_t status)
{
    int rc = n->backlog_len ? -EAGAIN : put_completion(n, tid, status);
    if (rc == 0)
        return 0;
    if (rc != -EAGAIN)
        return rc;
    if (n->backlog_len == COMP_BACKLOG)
        return -EPROTO; /* more transfers outstanding than possible */
    n->backlog[(n->backlog_head + n->backlog_len) % COMP_BACKLOG] =
        (struct comp_backlog){.tid = tid, .status = status};
    n->backlog_len++;
    return 0;
}

/* Transfer-page packet: frames (or control answers) in the receive buffer. */
static int on_xfer(struct netvsc *n, const struct vmbus_pkt *pkt, netvsc_rx_cb cb, void *ctx,
                   int *frames)
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
    uint32_t status = NVSP_STAT_SUCCESS;
    for (int i = 0; i < nr; i++) {
        struct vmbus_xfer_range r;
        memcpy(&r, &ranges[i], sizeof(r));
        if (r.byte_count < sizeof(struct rndis_msg_hdr) || r.byte_count > n->sub_alloc_size ||
            (uint64_t)r.byte_offset + r.byte_count > n->rbuf_len) {
            n->stats.rx_bad++;
            status = NVSP_STAT_INVALID_RNDIS_PKT;
            continue;
        }
        const uint8_t *msg = n->rbuf + r.byte_offset;
        struct rndis_msg_hdr h;
        memcpy(&h, msg, sizeof(h));
        if (h.len > r.byte_count || h.len < sizeof(h)) {
            n->stats.rx_bad++;
            status = NVSP_STAT_INVALID_RNDIS_PKT;
            continue;
        }
        if (h.type == RNDIS_MSG_PACKET) {
            int rc = on_rndis_packet(n, msg, h.len, cb, ctx);
            if (rc < 0) {
                n->stats.rx_bad++;
                status = NVSP_STAT_INVALID_RNDIS_PKT;
            } else {
                (*frames)++;
            }
        } else {
            on_rndis_control(n, msg, h.len);
        }
    }
    return complete_xfer(n, pkt->trans_id, status);
}

/* Handle what is in the ring, up to budget frames. */
static int process(struct netvsc *n, netvsc_rx_cb cb, void *ctx, int budget)
{
    struct vmbus_ring *rx = vmbus_gchan_rx(n->ch);
    int frames = 0;
    if (n->ring_failed)
        return -EPROTO;
    if (n->backlog_len) {
        int rc = flush_backlog(n);
        if (rc < 0 && rc != -EAGAIN)
            return rc;
    }
    while (frames < budget) {
        int len = vmbus_ring_get(rx, n->pkt, RX_PKT_MAX);
        if (len == -EAGAIN)
            break;
        if (len < 0) {
            n->ring_failed = true;
            return -EPROTO;
        }
        struct vmbus_pkt pkt;
        vmbus_pkt_parse(n->pkt, (uint32_t)len, &pkt);
        if (pkt.type == VMBUS_PKT_COMP) {
            on_completion(n, &pkt);
        } else if (pkt.type == VMBUS_PKT_DATA_USING_XFER_PAGES) {
            int rc = on_xfer(n, &pkt, cb, ctx, &frames);
            if (rc < 0 && rc != -EPROTO) {
                n->ring_failed = true;
                return rc;
            }
        } else {
            /* In-band from the root: indirection table, VF notices. */
            n->stats.rx_bad += pkt.payload_len < 4;
        }
    }
    int rc = signal_if(n, vmbus_ring_release(rx));
    if (n->unflushed) {
        n->unflushed = 0;
        int r2 = signal_if(n, vmbus_ring_publish(vmbus_gchan_tx(n->ch)));
        if (rc == 0)
            rc = r2;
    }
    if (rc < 0 && rc != -EAGAIN)
        return rc;
    return frames;
}

int netvsc_poll(struct netvsc *n, netvsc_rx_cb cb, void *ctx, int budget)
{
    if (vmbus_gchan_rescinded(n->ch))
        return -ENOTCONN;
    return process(n, cb, ctx, budget);
}

/* Wait until pred() holds, processing the ring (frames are dropped). */
static int wait_until(struct netvsc *n, bool *flag)
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

/* An NVSP request that the root completes; copies the answer to ctrl_comp. */
static int nvsp_request(struct netvsc *n, const void *msg, uint32_t len)
{
    uint64_t tid = TID_CTRL | ++n->next_ctrl;
    n->ctrl_wait_tid = tid;
    n->ctrl_done = false;
    int rc = nvsp_send(n, msg, len, tid, true);
    if (rc == 0)
        rc = wait_until(n, &n->ctrl_done);
    n->ctrl_wait_tid = 0;
    return rc;
}

static int negotiate(struct netvsc *n)
{
    size_t nver;
    const struct vmnic_nvsp_version *vers = vmnic_nvsp_versions(&nver);
    for (size_t i = 0; i < nver; i++) {
        uint32_t v = vers[i].version;
        /* Requests are sized for the version we ask for. */
        n->msg_size = vers[i].msg_size;
        struct nvsp_msg_init init = {.type = NVSP_MSG_INIT, .min_protocol_ver = v,
                                     .max_protocol_ver = v};
        int rc = nvsp_request(n, &init, sizeof(init));
        if (rc < 0)
            return rc;
        struct nvsp_msg_init_complete c;
        memcpy(&c, n->ctrl_comp, sizeof(c));
        if (c.type == NVSP_MSG_INIT_COMPLETE && c.status == NVSP_STAT_SUCCESS) {
            n->info.nvsp_version = v;
            return 0;
        }
    }
    return -EPROTONOSUPPORT;
}

static int setup_recv_buffer(struct netvsc *n)
{
    /* The page count is recorded only once the pages are ours: on failure
     * release_memory() must free nothing (pfn 0 onwards belongs to others). */
    uint32_t pages = n->p.recv_buf_bytes / HV_PAGE_SIZE;
    int rc = hv_guest_alloc_pages(n->g, pages, &n->rbuf_pfn);
    if (rc < 0)
        return rc;
    n->rbuf_pages = pages;
    uint64_t *pfns = malloc(sizeof(uint64_t) * n->rbuf_pages);
    if (!pfns)
        return -ENOMEM;
    for (uint32_t i = 0; i < n->rbuf_pages; i++)
        pfns[i] = n->rbuf_pfn + i;
    rc = vmbus_client_gpadl_create(n->client, n->relid, pfns, n->rbuf_pages, &n->rbuf_gpadl);
    free(pfns);
    if (rc < 0)
        return rc;
    n->rbuf = hv_guest_pfn_ptr(n->g, n->rbuf_pfn);
    n->rbuf_len = n->rbuf_pages * HV_PAGE_SIZE;
    struct nvsp_msg_send_buf m = {.type = NVSP_MSG1_SEND_RECV_BUF, .gpadl = n->rbuf_gpadl,
                                  .id = NVSP_RECV_BUF_ID};
    rc = nvsp_request(n, &m, sizeof(m));
    if (rc < 0)
        return rc;
    struct nvsp_msg_recv_buf_complete c;
    memcpy(&c, n->ctrl_comp, sizeof(c));
    if (c.type != NVSP_MSG1_SEND_RECV_BUF_COMPLETE || c.status != NVSP_STAT_SUCCESS)
        return -EREMOTEIO;
    /* What Linux requires of the root's partitioning. */
    if (c.num_sections != 1 || c.sections[0].offset != 0 || c.sections[0].sub_alloc_size < 68 ||
        c.sections[0].num_sub_allocs == 0 ||
        (uint64_t)c.sections[0].sub_alloc_size * c.sections[0].num_sub_allocs > n->rbuf_len)
        return -EPROTO;
    n->sub_alloc_size = c.sections[0].sub_alloc_size;
    n->num_sub_allocs = c.sections[0].num_sub_allocs;
    return 0;
}

static int setup_send_buffer(struct netvsc *n)
{
    uint32_t pages = n->p.send_buf_bytes / HV_PAGE_SIZE; /* see setup_recv_buffer */
    int rc = hv_guest_alloc_pages(n->g, pages, &n->sbuf_pfn);
    if (rc < 0)
        return rc;
    n->sbuf_pages = pages;
    uint64_t *pfns = malloc(sizeof(uint64_t) * n->sbuf_pages);
    if (!pfns)
        return -ENOMEM;
    for (uint32_t i = 0; i < n->sbuf_pages; i++)
        pfns[i] = n->sbuf_pfn + i;
    rc = vmbus_client_gpadl_create(n->client, n->relid, pfns, n->sbuf_pages, &n->sbuf_gpadl);
    free(pfns);
    if (rc < 0)
        return rc;
    n->sbuf = hv_guest_pfn_ptr(n->g, n->sbuf_pfn);
    struct nvsp_msg_send_buf m = {.type = NVSP_MSG1_SEND_SEND_BUF, .gpadl = n->sbuf_gpadl,
                                  .id = NVSP_SEND_BUF_ID};
    rc = nvsp_request(n, &m, sizeof(m));
    if (rc < 0)
        return rc;
    struct nvsp_msg_send_buf_complete c;
    memcpy(&c, n->ctrl_comp, sizeof(c));
    if (c.type != NVSP_MSG1_SEND_SEND_BUF_COMPLETE || c.status != NVSP_STAT_SUCCESS)
        return -EREMOTEIO;
    uint32_t bytes = n->sbuf_pages * HV_PAGE_SIZE;
    if (c.section_size < TX_HDR_ROOM + 64 || c.section_size > bytes)
        return -EPROTO;
    n->section_size = c.section_size;
    n->nsections = bytes / c.section_size;
    if (n->nsections > SLOT_SECTION_MASK)
        n->nsections = SLOT_SECTION_MASK;
    n->free_sections = malloc(sizeof(uint32_t) * n->nsections);
    if (!n->free_sections)
        return -ENOMEM;
    for (uint32_t i = 0; i < n->nsections; i++)
        n->free_sections[i] = n->nsections - 1 - i;
    n->nfree_sections = n->nsections;
    return 0;
}

/* Send one RNDIS control message in a send section; wait for its answer. */
static int rndis_request(struct netvsc *n, const void *msg, uint32_t len)
{
    if (len > n->section_size || n->nfree_sections == 0)
        return -ENOSPC;
    uint32_t sec = n->free_sections[--n->nfree_sections];
    memcpy(n->sbuf + (size_t)sec * n->section_size, msg, len);
    memcpy(&n->ctrl_req_id, (const uint8_t *)msg + 8, 4);
    n->rndis_done = false;
    struct nvsp_msg_rndis_pkt m = {.type = NVSP_MSG1_SEND_RNDIS_PKT,
                                   .channel_type = NVSP_CHANNEL_TYPE_CONTROL,
                                   .send_buf_section_index = sec,
                                   .send_buf_section_size = len};
    int rc = nvsp_send(n, &m, sizeof(m), TID_SEND | sec, true);
    if (rc < 0) {
        n->free_sections[n->nfree_sections++] = sec;
        return rc;
    }
    return wait_until(n, &n->rndis_done);
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
    q.info_offset = in_len ? (uint32_t)sizeof(q) - 8 : 0;
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
    if (c.info_offset < 16 || (uint64_t)c.info_offset + 8 + c.info_len > n->rndis_resp_len)
        return -EPROTO;
    uint32_t l = c.info_len < *out_len ? c.info_len : *out_len;
    memcpy(out, n->rndis_resp + 8 + c.info_offset, l);
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
    q.info_offset = (uint32_t)sizeof(q) - 8;
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
    return 0;
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
    if (rc < 0 || len < NDIS_OFFLOAD_SIZE_REV1)
        return 0; /* no offloads: fine */
    struct ndis_offload_params op;
    memset(&op, 0, sizeof(op));
    op.hdr.type = NDIS_OBJTYPE_DEFAULT;
    op.hdr.revision = 3;
    op.hdr.size = sizeof(op);
    uint32_t need4 = NDIS_TXCSUM_CAP_TCP4 | NDIS_TXCSUM_CAP_TCP4OPT;
    bool csum = (got.csum.ip4_txcsum & need4) == need4;
    if (csum) {
        op.tcp4_csum = NDIS_OFFLOAD_PARAM_TXRX;
        op.udp4_csum = (got.csum.ip4_txcsum & NDIS_TXCSUM_CAP_UDP4) ? NDIS_OFFLOAD_PARAM_TXRX
                                                                     : NDIS_OFFLOAD_PARAM_RX;
        op.tcp6_csum = (got.csum.ip6_txcsum & NDIS_TXCSUM_CAP_TCP6) ? NDIS_OFFLOAD_PARAM_TXRX
                                                                     : NDIS_OFFLOAD_PARAM_RX;
        op.udp6_csum = (got.csum.ip6_txcsum & NDIS_TXCSUM_CAP_UDP6) ? NDIS_OFFLOAD_PARAM_TXRX
                                                                     : NDIS_OFFLOAD_PARAM_RX;
    }
    bool lso = csum && (got.lsov2.ip4_encap & NDIS_OFFLOAD_ENCAP_8023) && got.lsov2.ip4_maxsz;
    if (lso) {
        op.lsov2_ip4 = NDIS_OFFLOAD_LSOV2_ON;
        op.lsov2_ip6 = (got.lsov2.ip6_encap & NDIS_OFFLOAD_ENCAP_8023) ? NDIS_OFFLOAD_LSOV2_ON
                                                                      : NDIS_OFFLOAD_LSOV2_OFF;
    }
    if (!csum)
        return 0;
    rc = rndis_set(n, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &op, sizeof(op));
    if (rc < 0)
        return 0;
    n->info.csum_offload = true;
    n->info.lso = lso;
    n->info.lso_max = lso ? got.lsov2.ip4_maxsz : 0;
    return 0;
}

static int bring_up(struct netvsc *n)
{
    int rc = negotiate(n);
    if (rc < 0)
        return rc;
    uint32_t v = n->info.nvsp_version;
    if (v >= NVSP_PROTOCOL_VERSION_2) {
        struct nvsp_msg_ndis_config cfg = {.type = NVSP_MSG2_SEND_NDIS_CONFIG,
                                           .mtu = n->p.mtu + 14,
                                           .capabilities = NVSP_CAP_IEEE8021Q};
        if ((rc = nvsp_send(n, &cfg, sizeof(cfg), 0, false)) < 0)
            return rc;
    }
    uint32_t ndis_minor = v >= NVSP_PROTOCOL_VERSION_5 ? 30 : 1;
    struct nvsp_msg_ndis_ver nv = {.type = NVSP_MSG1_SEND_NDIS_VER, .ndis_major = 6,
                                   .ndis_minor = ndis_minor};
    if ((rc = nvsp_send(n, &nv, sizeof(nv), 0, false)) < 0)
        return rc;
    n->info.ndis_version = (6u << 16) | ndis_minor;
    if ((rc = setup_recv_buffer(n)) < 0 || (rc = setup_send_buffer(n)) < 0 ||
        (rc = rndis_init(n)) < 0)
        return rc;

    uint32_t val, len = sizeof(val);
    if ((rc = rndis_query(n, RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE, NULL, 0, &val, &len)) < 0)
        return rc;
    n->info.mtu = val < n->p.mtu ? val : n->p.mtu;
    if (n->info.mtu < NETVSC_MTU_MIN)
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

static int setup_chunks(struct netvsc *n)
{
    uint32_t max_frame = n->info.lso ? 65536u + 256u : n->info.mtu + 14u + 4u;
    n->info.tx_frame_max = n->section_size - TX_HDR_ROOM;
    if (max_frame <= n->info.tx_frame_max)
        return 0; /* every frame fits a section */
    uint32_t pages = (max_frame + HV_PAGE_SIZE - 1) / HV_PAGE_SIZE; /* see setup_recv_buffer */
    int rc = hv_guest_alloc_pages(n->g, pages * BIG_CHUNKS, &n->chunk_pfn);
    if (rc < 0)
        return rc;
    n->chunk_pages = pages;
    for (uint32_t i = 0; i < BIG_CHUNKS; i++)
        n->free_chunks[i] = BIG_CHUNKS - 1 - i;
    n->nfree_chunks = BIG_CHUNKS;
    n->info.tx_frame_max = n->chunk_pages * HV_PAGE_SIZE;
    return 0;
}

static void release_memory(struct netvsc *n)
{
    if (n->rbuf_pages)
        hv_guest_free_range(n->g, n->rbuf_pfn, n->rbuf_pages);
    if (n->sbuf_pages)
        hv_guest_free_range(n->g, n->sbuf_pfn, n->sbuf_pages);
    if (n->chunk_pages)
        hv_guest_free_range(n->g, n->chunk_pfn, n->chunk_pages * BIG_CHUNKS);
    free(n->free_sections);
    free(n->pkt);
    free(n);
}

int netvsc_open(struct vmbus_client *c, uint32_t relid, const struct netvsc_params *p,
                struct netvsc **out)
{
    struct netvsc *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->client = c;
    n->g = vmbus_client_guest(c);
    n->relid = relid;
    n->p = *p;
    if (!n->p.mtu)
        n->p.mtu = 1500;
    if (!n->p.ring_pages)
        n->p.ring_pages = 256;
    if (!n->p.recv_buf_bytes)
        n->p.recv_buf_bytes = 16u << 20;
    if (!n->p.send_buf_bytes)
        n->p.send_buf_bytes = 4u << 20; /* 682 sections in flight */
    if (!n->p.timeout_ms)
        n->p.timeout_ms = 5000;
    if (n->p.mtu < NETVSC_MTU_MIN || n->p.mtu > NETVSC_MTU_MAX || n->p.ring_pages < 4 ||
        n->p.recv_buf_bytes < (64u << 10) || n->p.send_buf_bytes < (64u << 10)) {
        free(n);
        return -EINVAL;
    }
    n->pkt = malloc(RX_PKT_MAX);
    if (!n->pkt) {
        free(n);
        return -ENOMEM;
    }
    struct vmbus_gchan_params gp = {.tx_pages = n->p.ring_pages,
                                    .rx_pages = n->p.ring_pages,
                                    .target_vp = n->p.target_vp};
    int rc = vmbus_client_open(c, relid, &gp, &n->ch);
    if (rc < 0) {
        free(n->pkt);
        free(n);
        return rc;
    }
    vmbus_ring_intr_mask(vmbus_gchan_rx(n->ch));
    rc = bring_up(n);
    if (rc == 0)
        rc = setup_chunks(n);
    if (rc < 0) {
        netvsc_close(n);
        return rc;
    }
    *out = n;
    return 0;
}

void netvsc_close(struct netvsc *n)
{
    if (!n)
        return;
    bool rescinded = vmbus_gchan_rescinded(n->ch);
    if (!rescinded && !n->ring_failed) {
        if (n->sbuf && n->nfree_sections) {
            struct rndis_halt_req h = {.hdr = {.type = RNDIS_MSG_HALT, .len = sizeof(h)},
                                       .req_id = ++n->next_req_id};
            uint32_t sec = n->free_sections[--n->nfree_sections];
            memcpy(n->sbuf + (size_t)sec * n->section_size, &h, sizeof(h));
            struct nvsp_msg_rndis_pkt m = {.type = NVSP_MSG1_SEND_RNDIS_PKT,
                                           .channel_type = NVSP_CHANNEL_TYPE_CONTROL,
                                           .send_buf_section_index = sec,
                                           .send_buf_section_size = sizeof(h)};
            nvsp_send(n, &m, sizeof(m), TID_SEND | sec, true);
        }
        if (n->rbuf) {
            struct nvsp_msg_revoke_buf r = {.type = NVSP_MSG1_REVOKE_RECV_BUF,
                                            .id = NVSP_RECV_BUF_ID};
            nvsp_send(n, &r, sizeof(r), 0, false);
        }
        if (n->sbuf) {
            struct nvsp_msg_revoke_buf r = {.type = NVSP_MSG1_REVOKE_SEND_BUF,
                                            .id = NVSP_SEND_BUF_ID};
            nvsp_send(n, &r, sizeof(r), 0, false);
        }
    }
    /* A live channel: close first, so the root drops its references and
     * the buffer GPADLs then go at once. A rescinded one: the root has
     * closed it already, and closing releases the relid, after which the
     * GPADLs of that relid are no longer ours to name: tear down first. */
    if (!rescinded)
        vmbus_client_close(n->ch);
    if (n->rbuf_gpadl)
        vmbus_client_gpadl_teardown(n->client, n->relid, n->rbuf_gpadl);
    if (n->sbuf_gpadl)
        vmbus_client_gpadl_teardown(n->client, n->relid, n->sbuf_gpadl);
    if (rescinded)
        vmbus_client_close(n->ch);
    release_memory(n);
}

void netvsc_get_info(const struct netvsc *n, struct netvsc_info *out)
{
    *out = n->info;
    out->target_vp = vmbus_gchan_target_vp(n->ch);
}

uint32_t netvsc_relid(const struct netvsc *n)
{
    return n->relid;
}

void netvsc_get_stats(const struct netvsc *n, struct netvsc_stats *out)
{
    *out = n->stats;
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
    return true;
none:
    n->stats.tx_no_buffer++;
    n->tx_blocked = true;
    return false;
}

void netvsc_tx_abort(struct netvsc *n, struct netvsc_txbuf *tb)
{
    free_send_slot(n, tb->slot);
}

static uint32_t put_ppi(uint8_t *p, uint32_t type, uint32_t value)
{
    struct rndis_ppi ppi = {.size = sizeof(ppi) + 4, .type = type, .ppi_offset = sizeof(ppi)};
    memcpy(p, &ppi, sizeof(ppi));
    memcpy(p + sizeof(ppi), &value, 4);
    return ppi.size;
}

int netvsc_tx_submit(struct netvsc *n, struct netvsc_txbuf *tb, uint32_t len,
                     const struct netvsc_meta *meta)
{
    if (len < 14 || len > tb->cap)
        return -EINVAL;
    uint32_t sec = tb->slot & SLOT_SECTION_MASK;
    bool big = tb->slot & SLOT_BIG;
    uint8_t *s = n->sbuf + (size_t)sec * n->section_size;
    uint8_t ppis[TX_PPI_MAX];
    uint32_t ppi_len = 0;
    if (meta && (meta->flags & NETVSC_F_VLAN))
        ppi_len += put_ppi(ppis + ppi_len, RNDIS_PPI_VLAN,
                           RNDIS_VLAN_MAKE(meta->vlan_tci & 0xfff, meta->vlan_tci >> 13));
    if (meta && (meta->flags & NETVSC_F_LSO)) {
        if (!n->info.lso || meta->mss == 0 || meta->l4_offset < 14 + 20 ||
            meta->l4_offset > RNDIS_LSO_THOFF_MASK)
            return -EINVAL;
        uint32_t v = (meta->mss & RNDIS_LSO_MSS_MASK) |
                     ((uint32_t)meta->l4_offset << RNDIS_LSO_THOFF_SHIFT) | RNDIS_LSO_TYPE_V2 |
                     ((meta->flags & NETVSC_F_IPV6) ? RNDIS_LSO_IPV6 : 0);
        ppi_len += put_ppi(ppis + ppi_len, RNDIS_PPI_LSO, v);
    } else if (meta && (meta->flags & NETVSC_F_CSUM)) {
        if (!n->info.csum_offload || meta->l4_offset < 14 + 20 ||
            meta->l4_offset > RNDIS_TXCSUM_THOFF_MASK ||
            (meta->l4_proto != IPPROTO_TCP && meta->l4_proto != IPPROTO_UDP))
            return -EINVAL;
        uint32_t v = ((meta->flags & NETVSC_F_IPV6) ? RNDIS_TXCSUM_IPV6 : RNDIS_TXCSUM_IPV4) |
                     (meta->l4_proto == IPPROTO_TCP ? RNDIS_TXCSUM_TCP : RNDIS_TXCSUM_UDP) |
                     ((uint32_t)meta->l4_offset << RNDIS_TXCSUM_THOFF_SHIFT);
        ppi_len += put_ppi(ppis + ppi_len, RNDIS_PPI_CSUM_INFO, v);
    }

    struct rndis_packet_msg pm = {0};
    pm.hdr.type = RNDIS_MSG_PACKET;
    pm.ppi_offset = ppi_len ? 36 : 0;
    pm.ppi_len = ppi_len;
    uint32_t section_bytes;
    if (!big) {
        /* Frame already at TX_HDR_ROOM; zero the gap so nothing of ours leaks. */
        pm.data_offset = TX_HDR_ROOM - 8;
        pm.hdr.len = TX_HDR_ROOM + len;
        section_bytes = pm.hdr.len;
        memset(s + sizeof(pm) + ppi_len, 0, TX_HDR_ROOM - sizeof(pm) - ppi_len);
    } else {
        pm.data_offset = 36 + ppi_len;
        pm.hdr.len = (uint32_t)sizeof(pm) + ppi_len + len;
        section_bytes = (uint32_t)sizeof(pm) + ppi_len;
    }
    pm.data_len = len;
    memcpy(s, &pm, sizeof(pm));
    memcpy(s + sizeof(pm), ppis, ppi_len);

    struct nvsp_msg_rndis_pkt m = {.type = NVSP_MSG1_SEND_RNDIS_PKT,
                                   .channel_type = NVSP_CHANNEL_TYPE_DATA,
                                   .send_buf_section_index = sec,
                                   .send_buf_section_size = section_bytes};
    uint8_t body[NVSP_MSG_SIZE_61] = {0};
    memcpy(body, &m, sizeof(m));
    struct iovec iov = {.iov_base = body, .iov_len = n->msg_size};
    struct vmbus_ring *tx = vmbus_gchan_tx(n->ch);
    int rc;
    uint64_t tid = TID_SEND | tb->slot;
    if (!big) {
        rc = vmbus_ring_put(tx, VMBUS_PKT_DATA_INBAND, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, tid,
                            NULL, 0, &iov, 1);
    } else {
        /* The frame's pages, one range: reserved, count, then the range. */
        uint32_t chunk = (tb->slot & ~SLOT_BIG) >> SLOT_CHUNK_SHIFT;
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
    if (rc == -EAGAIN) {
        n->tx_blocked = true;
        return rc;
    }
    if (rc < 0)
        return rc;
    n->stats.tx_frames++;
    n->stats.tx_bytes += len;
    n->stats.tx_gpa_direct += big;
    n->unflushed++;
    return 0;
}

int netvsc_tx_flush(struct netvsc *n)
{
    if (!n->unflushed)
        return 0;
    n->unflushed = 0;
    return signal_if(n, vmbus_ring_publish(vmbus_gchan_tx(n->ch)));
}

int netvsc_send(struct netvsc *n, const void *frame, uint32_t len, const struct netvsc_meta *meta)
{
    struct netvsc_txbuf tb;
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
    bool pending = vmbus_ring_intr_unmask(vmbus_gchan_rx(n->ch));
    if (n->tx_blocked && !pending) {
        /* Blocked on ring space: ask to be told when the root drains it. */
        int r = vmbus_ring_arm_space(vmbus_gchan_tx(n->ch),
                                     vmbus_ring_pkt_size(8 + 8 + 8 * 17, NVSP_MSG_SIZE_61));
        pending = r == 1;
    }
    return pending;
}

void netvsc_intr_disarm(struct netvsc *n)
{
    vmbus_ring_intr_mask(vmbus_gchan_rx(n->ch));
}

bool netvsc_event(struct netvsc *n)
{
    return vmbus_gchan_event(n->ch);
}

bool netvsc_reinit_wanted(const struct netvsc *n)
{
    return n->reinit_wanted;
}
