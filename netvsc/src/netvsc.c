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

static void release_memory(struct netvsc *n)
{
    if (n->rbuf_pages)
        hv_guest_free_range(n->g, n->rbuf_pfn, n->rbuf_pages);
    if (n->sbuf_pages)
        hv_guest_free_range(n->g, n->sbuf_pfn, n->sbuf_pages);
    if (n->chunk_pages)
        hv_guest_free_range(n->g, n->chunk_pfn, n->chunk_pages * BIG_CHUNKS);
    free(n->free_sections);
    free(n->rsc.buf);
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
    /* Before RSC can be turned on: fragments may come from then on. */
    if (n->p.rsc && !n->p.no_offload && !(n->rsc.buf = malloc(NETVSC_RSC_FRAME_MAX)))
        rc = -ENOMEM;
    else if ((rc = netvsc_nvs_attach(n)) == 0 && (rc = netvsc_rndis_attach(n)) == 0)
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
}

uint32_t netvsc_relid(const struct netvsc *n)
{
    return n->relid;
}

void netvsc_get_stats(const struct netvsc *n, struct netvsc_stats *out)
{
    *out = n->stats;
}

bool netvsc_reinit_wanted(const struct netvsc *n)
{
    return n->reinit_wanted;
}
