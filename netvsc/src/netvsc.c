/*
 * netvsc: guest side of NVSP and RNDIS (shared/reference §4, §5). This file
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
#include "nvsp-proto.h"
#include "rndis-proto.h"
#include "vmbus-ring.h"

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

bool netvsc_reinit_wanted(const struct netvsc *n)
{
    return n->reinit_wanted;
}
