/*
 * netvsc's NVSP layer: NVSP messages on the channel, the version
 * negotiation, and the receive and send buffers granted to the root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hv-guest.h"
#include "jumbo.h"
#include "netvsc-private.h"
#include "nvsp-proto.h"
#include "vmbus-ring.h"
#include "vmnic.h"

/* Send one NVSP message in-band, padded to our message size. */
int netvsc_nvs_send(struct netvsc *n, const void *msg, uint32_t len, uint64_t tid,
                    bool want_comp)
{
    uint8_t buf[NVSP_MSG_SIZE_61];
    memset(buf, 0, sizeof(buf));
    memcpy(buf, msg, len);
    int rc = vmbus_ring_put_inband(vmbus_gchan_tx(n->ch), VMBUS_PKT_DATA_INBAND,
                                   want_comp ? VMBUS_PKT_FLAG_COMPLETION_REQUESTED : 0, tid, buf,
                                   n->msg_size > len ? n->msg_size : len);
    if (rc < 0)
        return rc;
    return netvsc_signal_if(n, vmbus_ring_publish(vmbus_gchan_tx(n->ch)));
}

/* An NVSP request that the root completes; copies the answer to ctrl_comp. */
static int nvsp_request(struct netvsc *n, const void *msg, uint32_t len)
{
    uint64_t tid = TID_CTRL | ++n->next_ctrl;
    n->ctrl_wait_tid = tid;
    n->ctrl_done = false;
    int rc = netvsc_nvs_send(n, msg, len, tid, true);
    if (rc == 0)
        rc = netvsc_wait(n, &n->ctrl_done);
    n->ctrl_wait_tid = 0;
    return rc;
}

int netvsc_nvs_subchannels(struct netvsc *n, uint32_t ask, uint32_t *granted)
{
    *granted = 0;
    if (n->info.nvsp_version < NVSP_PROTOCOL_VERSION_5)
        return -EOPNOTSUPP;
    struct nvsp_msg_subchannel q = {.type = NVSP_MSG5_SUBCHANNEL,
                                    .op_or_status = NVSP_SUBCHANNEL_ALLOCATE,
                                    .num_subchannels = ask},
                               a;
    int rc = nvsp_request(n, &q, sizeof(q));
    if (rc < 0)
        return rc;
    memcpy(&a, n->ctrl_comp, sizeof(a));
    if (a.type != NVSP_MSG5_SUBCHANNEL || a.op_or_status != NVSP_STAT_SUCCESS)
        return -EOPNOTSUPP;
    /* The root may grant fewer, never more than asked. */
    *granted = a.num_subchannels < ask ? a.num_subchannels : ask;
    return 0;
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
    /* What Linux requires of the root's partitioning: one section whose
     * sub-allocations are at least the smallest MTU long (its
     * NETVSC_MTU_MIN, which is JUMBO_MTU_MIN). */
    if (c.num_sections != 1 || c.sections[0].offset != 0 ||
        c.sections[0].sub_alloc_size < JUMBO_MTU_MIN ||
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

int netvsc_nvs_attach(struct netvsc *n)
{
    int rc = negotiate(n);
    if (rc < 0)
        return rc;
    uint32_t v = n->info.nvsp_version;
    if (v >= NVSP_PROTOCOL_VERSION_2) {
        struct nvsp_msg_ndis_config cfg = {.type = NVSP_MSG2_SEND_NDIS_CONFIG,
                                           .mtu = jumbo_frame(n->p.mtu),
                                           .capabilities = NVSP_CAP_IEEE8021Q};
        if (v >= NVSP_PROTOCOL_VERSION_61 && n->p.rsc && !n->p.no_offload)
            cfg.capabilities |= NVSP_CAP_RSC;
        if ((rc = netvsc_nvs_send(n, &cfg, sizeof(cfg), 0, false)) < 0)
            return rc;
    }
    uint32_t ndis_minor = v >= NVSP_PROTOCOL_VERSION_5 ? 30 : 1;
    struct nvsp_msg_ndis_ver nv = {.type = NVSP_MSG1_SEND_NDIS_VER, .ndis_major = 6,
                                   .ndis_minor = ndis_minor};
    if ((rc = netvsc_nvs_send(n, &nv, sizeof(nv), 0, false)) < 0)
        return rc;
    n->info.ndis_version = (6u << 16) | ndis_minor;
    if ((rc = setup_recv_buffer(n)) < 0 || (rc = setup_send_buffer(n)) < 0)
        return rc;
    return 0;
}

void netvsc_nvs_detach(struct netvsc *n)
{
    if (n->rbuf) {
        struct nvsp_msg_revoke_buf r = {.type = NVSP_MSG1_REVOKE_RECV_BUF,
                                        .id = NVSP_RECV_BUF_ID};
        netvsc_nvs_send(n, &r, sizeof(r), 0, false);
    }
    if (n->sbuf) {
        struct nvsp_msg_revoke_buf r = {.type = NVSP_MSG1_REVOKE_SEND_BUF,
                                        .id = NVSP_SEND_BUF_ID};
        netvsc_nvs_send(n, &r, sizeof(r), 0, false);
    }
}
