/*
 * netvsc: guest side of NVSP and RNDIS (docs/protocol.md §4, §5). This file
 * opens and closes the NIC and answers for it; netvsc-private.h says how
 * the rest is layered.
 */
#define _GNU_SOURCE
#include "netvsc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hv-guest.h"
#include "netvsc-private.h"
#include "vmbus-ring.h"

static int setup_chunks(struct netvsc *n)
{
    uint32_t max_frame = n->info.lso ? 65536u + 256u : jumbo_frame_tagged(n->info.mtu);
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

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Channel q's receive state: its ring packet copy, its completion backlog
 * and, if RSC is taken (the primary's buffer says so), its own RSC packet
 * buffer. -ENOMEM; release_memory() frees what was got. */
static int chan_alloc(struct netvsc *n, struct netvsc_chan *q)
{
    q->pkt = malloc(RX_PKT_MAX);
    q->backlog = calloc(COMP_BACKLOG, sizeof(*q->backlog));
    if (!q->pkt || !q->backlog)
        return -ENOMEM;
    if (q != &n->q[0] && n->q[0].rsc.buf && !(q->rsc.buf = malloc(NETVSC_RSC_FRAME_MAX)))
        return -ENOMEM;
    return 0;
}

/* The relid of sub-channel idx of the primary offered with inst, or 0. */
static uint32_t sub_relid(struct vmbus_offer_info *oi, int noi, const struct vmbus_guid *inst,
                          uint32_t idx)
{
    for (int k = 0; k < noi; k++)
        if (!oi[k].rescinded && oi[k].sub_channel_index == idx &&
            memcmp(&oi[k].instance_id, inst, sizeof(*inst)) == 0)
            return oi[k].relid;
    return 0;
}

/* Ask for the sub-channels p.queues wants and open those the root grants
 * and offers within p.timeout_ms, as Linux's rndis_set_subchannel and
 * netvsc_sc_open do: after RNDIS INIT, capped by the queues the RSS
 * capabilities report. Whatever fails, the NIC goes on with the channels
 * open (n->nchan), the primary at least. */
static void open_subs(struct netvsc *n)
{
    uint32_t want = n->p.queues < NETVSC_QUEUES_MAX ? n->p.queues : NETVSC_QUEUES_MAX;
    uint32_t offered, granted;
    if (want < 2 || netvsc_rndis_rss_queues(n, &offered) < 0 || offered < 2)
        return;
    uint32_t ask = (want < offered ? want : offered) - 1;
    if (netvsc_nvs_subchannels(n, ask, &granted) < 0 || granted == 0)
        return;
    struct vmbus_offer_info *oi = calloc(VMBUS_CLIENT_MAX_OFFERS, sizeof(*oi));
    if (!oi)
        return;
    int noi = vmbus_client_offers(n->client, oi, VMBUS_CLIENT_MAX_OFFERS);
    struct vmbus_guid inst;
    bool found = false;
    for (int k = 0; k < noi && !found; k++)
        if (oi[k].relid == n->relid) {
            inst = oi[k].instance_id;
            found = true;
        }
    uint32_t nvp = hv_guest_vp_count(n->g);
    uint64_t deadline = now_ms() + (uint64_t)n->p.timeout_ms;
    /* Sub-channels open in index order, so that the open ones are 0 ..
     * nchan - 1 with no gap (the root's RSS table may name only those). */
    while (found && n->nchan <= granted) {
        uint32_t relid = sub_relid(oi, noi, &inst, n->nchan);
        if (relid) {
            struct vmbus_gchan_params gp = {
                .tx_pages = n->p.ring_pages,
                .rx_pages = n->p.ring_pages,
                .target_vp = nvp ? (n->p.target_vp + n->nchan) % nvp : 0};
            struct netvsc_chan *q = &n->q[n->nchan];
            if (chan_alloc(n, q) < 0 || vmbus_client_open(n->client, relid, &gp, &q->ch) < 0)
                break;
            vmbus_ring_intr_mask(vmbus_gchan_rx(q->ch));
            n->nchan++;
            continue;
        }
        /* Offers come on the message VP, before or after the answer. */
        uint64_t now = now_ms();
        if (now >= deadline || vmbus_gchan_rescinded(n->ch))
            break;
        if (vmbus_gchan_wait(n->ch, (int)(deadline - now) < 20 ? (int)(deadline - now) : 20) < 0 ||
            vmbus_client_poll(n->client) < 0)
            break;
        noi = vmbus_client_offers(n->client, oi, VMBUS_CLIENT_MAX_OFFERS);
    }
    free(oi);
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
    for (uint32_t i = 0; i < NETVSC_QUEUES_MAX; i++) {
        free(n->q[i].rsc.buf);
        free(n->q[i].pkt);
        free(n->q[i].backlog);
    }
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
    n->nchan = 1;
    n->p = *p;
    if (!n->p.mtu)
        n->p.mtu = JUMBO_MTU_DEFAULT;
    if (!n->p.ring_pages)
        n->p.ring_pages = 256;
    if (!n->p.recv_buf_bytes)
        n->p.recv_buf_bytes = 16u << 20;
    if (!n->p.send_buf_bytes)
        n->p.send_buf_bytes = 4u << 20; /* 682 sections in flight */
    if (!n->p.timeout_ms)
        n->p.timeout_ms = 5000;
    if (!jumbo_mtu_valid(n->p.mtu) || n->p.ring_pages < 4 ||
        n->p.recv_buf_bytes < (64u << 10) || n->p.send_buf_bytes < (64u << 10)) {
        free(n);
        return -EINVAL;
    }
    if (n->p.rsc && !n->p.no_offload && !(n->q[0].rsc.buf = malloc(NETVSC_RSC_FRAME_MAX))) {
        release_memory(n);
        return -ENOMEM;
    }
    if (chan_alloc(n, &n->q[0]) < 0) {
        release_memory(n);
        return -ENOMEM;
    }
    struct vmbus_gchan_params gp = {.tx_pages = n->p.ring_pages,
                                    .rx_pages = n->p.ring_pages,
                                    .target_vp = n->p.target_vp};
    int rc = vmbus_client_open(c, relid, &gp, &n->ch);
    if (rc < 0) {
        release_memory(n);
        return rc;
    }
    n->q[0].ch = n->ch;
    vmbus_ring_intr_mask(vmbus_gchan_rx(n->ch));
    /* The RSC buffer is there before RSC can be turned on: fragments may
     * come from then on. */
    if ((rc = netvsc_nvs_attach(n)) == 0 && (rc = netvsc_rndis_attach(n)) == 0)
        rc = setup_chunks(n);
    if (rc < 0) {
        netvsc_close(n);
        return rc;
    }
    open_subs(n);
    /* Frames reach the sub-channels once the root steers by our table;
     * if it refuses, they stay on the primary (all are polled anyway). */
    if (n->nchan > 1)
        netvsc_rndis_set_rss(n);
    *out = n;
    return 0;
}

void netvsc_close(struct netvsc *n)
{
    if (!n)
        return;
    /* Sub-channels first, as Linux closes them before the primary (the
     * root would close them with it anyway). */
    for (uint32_t i = n->nchan; i-- > 1;)
        vmbus_client_close(n->q[i].ch);
    bool rescinded = vmbus_gchan_rescinded(n->ch);
    if (!rescinded && !n->ring_failed) {
        netvsc_rndis_halt(n);
        netvsc_nvs_detach(n);
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

bool netvsc_offer_is_nic(const struct vmbus_offer_info *oi)
{
    static const struct vmbus_guid netvsc_class = VMBUS_GUID_NETVSC;
    return !oi->rescinded && oi->sub_channel_index == 0 &&
           memcmp(&oi->class_id, &netvsc_class, sizeof(netvsc_class)) == 0;
}

void netvsc_get_info(const struct netvsc *n, struct netvsc_info *out)
{
    *out = n->info;
    out->target_vp = vmbus_gchan_target_vp(n->ch);
    out->channels = n->nchan;
}

uint32_t netvsc_relid(const struct netvsc *n)
{
    return n->relid;
}

uint32_t netvsc_get_channels(const struct netvsc *n, struct netvsc_chan_info *out, uint32_t max)
{
    for (uint32_t i = 0; i < n->nchan && i < max; i++) {
        struct vmbus_gchan *ch = n->q[i].ch;
        out[i] = (struct netvsc_chan_info){.relid = vmbus_gchan_relid(ch),
                                           .target_vp = vmbus_gchan_target_vp(ch)};
    }
    return n->nchan;
}

void netvsc_get_stats(const struct netvsc *n, struct netvsc_stats *out)
{
    *out = n->stats;
}

uint32_t netvsc_get_chan_stats(const struct netvsc *n, struct netvsc_chan_stats *out,
                               uint32_t max)
{
    for (uint32_t i = 0; i < n->nchan && i < max; i++)
        out[i] = n->q[i].st;
    return n->nchan;
}

bool netvsc_reinit_wanted(const struct netvsc *n)
{
    return n->reinit_wanted;
}
