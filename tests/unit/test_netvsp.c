/*
 * Unit tests of netvsp, the root's network VSP (netvsp.h): NVSP and RNDIS
 * as a guest speaks them, and everything a hostile guest can send instead.
 *
 * Each test runs a direct partition in this process with one netvsp NIC
 * offered on its VMBus server. The test is the guest: it connects with the
 * real VMBus client, opens the NIC's channel, grants a receive and a send
 * buffer, and then writes raw NVSP packets into its ring and RNDIS messages
 * into its send buffer (or pages it names GPA-direct), so that every
 * out-of-order, malformed or hostile message can be sent exactly as a bad
 * guest would. The test is the switch worker too: it calls the port's
 * rx_burst (which processes the guest's ring and hands back the frames the
 * guest sent), tx_burst (frames for the guest) and tx_flush directly. EAL
 * runs on one lcore and the port is attached to no switch, so nothing else
 * runs. Outcomes are checked through the guest's ring and receive buffer,
 * the mbufs, netvsp_get_stats() and vsw_port_get_stats().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "hv-guest.h"
#include "hv.h"
#include "netvsp.h"
#include "nvsp-proto.h"
#include "rndis-proto.h"
#include "vmbus-client.h"
#include "vmbus-ring.h"
#include "vmbus-server.h"
#include "vsw-port-provider.h"
#include "vsw.h"

#define MEM_BYTES (64ull << 20)
#define MEM_PAGES (MEM_BYTES >> HV_PAGE_SHIFT)
#define RING_PAGES 8u     /* each direction, header page included */
#define RBUF_PAGES 512u   /* 2 MiB receive buffer */
#define SBUF_PAGES 256u   /* 1 MiB send buffer */
#define SCRATCH_PAGES 16u /* guest pages for GPA-direct data */
#define SBUF_BYTES (SBUF_PAGES * HV_PAGE_SIZE)
#define NSECTIONS (SBUF_BYTES / NVSP_SEND_SECTION_SIZE)
#define NIC_MTU 9000u
#define CTRL_SEC 0u /* send section the guest uses for RNDIS control */
#define BURST 32
#define RX_KEEP 1024 /* mbufs a test may hold from rx_burst */
#define INBOX_MAX 1024
#define XFER_KEEP_RANGES 64
#define PKT_BUF (64u << 10)
#define POOL_MBUFS 4095u
#define CTRL_SUBS 16u /* receive sub-allocations netvsp keeps for control */
#define V61 NVSP_PROTOCOL_VERSION_61
#define FRAME_1514 1514u

static struct rte_mempool *g_pool;

/* A completion from the root. */
struct comp {
    uint64_t tid;
    uint32_t len; /* payload bytes, ring padding included */
    uint8_t msg[NVSP_MSG_SIZE_61];
};

/* A transfer-page packet from the root. */
struct xfer {
    uint64_t tid;
    uint16_t flags;
    uint16_t pageset;
    uint32_t payload_len;
    struct nvsp_msg_rndis_pkt nvsp;
    uint32_t nranges;
    struct vmbus_xfer_range r[XFER_KEEP_RANGES];
    bool completed;
};

/* One partition with its NIC, and the guest inside it (this test). */
struct vm {
    struct hv_partition *part;
    struct vmbus_server *srv;
    struct netvsp *nic;
    struct vsw_port *port;
    struct hv_guest *g;
    struct vmbus_client *client;
    struct vmbus_gchan *ch;
    uint32_t relid;
    uint8_t mac[6];
    uint8_t *rbuf, *sbuf, *scratch;
    uint64_t rbuf_pfn, sbuf_pfn, scratch_pfn;
    uint32_t rgpadl, sgpadl;
    uint32_t msg_size;        /* NVSP message size the guest sends */
    uint32_t sub_size, nsub;  /* receive-buffer partitioning the root chose */
    uint64_t next_tid;
    uint32_t next_req;
    struct rte_mbuf *rx[RX_KEEP];
    unsigned nrx;
    unsigned ncomp, nxfer;
    struct comp comp[INBOX_MAX];
    struct xfer xfer[INBOX_MAX];
    uint8_t pkt[PKT_BUF];
};

struct fix {
    struct hv_host *host;
    struct vm *a, *b;
};

static const uint8_t MAC_A[6] = {0x00, 0x15, 0x5d, 0x00, 0x00, 0x0a};
static const uint8_t MAC_B[6] = {0x00, 0x15, 0x5d, 0x00, 0x00, 0x0b};
static const uint8_t MAC_OTHER[6] = {0x00, 0x15, 0x5d, 0x00, 0x00, 0x77};
static const uint8_t MAC_BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t MAC_MCAST[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};

/* --- statistics ---------------------------------------------------------- */

static struct netvsp_stats nstats(struct vm *v)
{
    struct netvsp_stats s;
    netvsp_get_stats(v->nic, &s);
    return s;
}

static struct vsw_port_stats pstats(struct vm *v)
{
    struct vsw_port_stats s;
    vsw_port_get_stats(v->port, &s);
    return s;
}

/* Exactly `n` more errors of kind e than in `before`, and no other new one. */
static void expect_errs(struct vm *v, const struct netvsp_stats *before, enum netvsp_err e,
                        uint64_t n)
{
    struct netvsp_stats now = nstats(v);
    for (int i = 0; i < NETVSP_ERR_COUNT; i++) {
        uint64_t want = before->errors[i] + (i == (int)e ? n : 0);
        if (now.errors[i] != want)
            fail_msg("netvsp error %s: %llu, expected %llu", netvsp_err_name((enum netvsp_err)i),
                     (unsigned long long)now.errors[i], (unsigned long long)want);
    }
}

static void expect_err(struct vm *v, const struct netvsp_stats *before, enum netvsp_err e)
{
    expect_errs(v, before, e, 1);
}

static void expect_no_err(struct vm *v, const struct netvsp_stats *before)
{
    expect_errs(v, before, NETVSP_ERR_COUNT, 0);
}

/* --- the guest's ring ---------------------------------------------------- */

static void put_pkt(struct vm *v, uint16_t type, uint16_t flags, uint64_t tid, const void *ext,
                    uint32_t ext_len, const void *msg, uint32_t len)
{
    struct vmbus_ring *tx = vmbus_gchan_tx(v->ch);
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
    assert_int_equal(vmbus_ring_put(tx, type, flags, tid, ext, ext_len, &iov, len ? 1 : 0), 0);
    assert_true(vmbus_ring_publish(tx) >= 0);
}

/* An NVSP message in-band, padded with zeroes to the guest's message size. */
static void nvsp_send(struct vm *v, const void *msg, uint32_t len, uint64_t tid, bool want)
{
    uint8_t buf[NVSP_MSG_SIZE_61] = {0};
    assert_true(len <= sizeof(buf));
    memcpy(buf, msg, len);
    put_pkt(v, VMBUS_PKT_DATA_INBAND, want ? VMBUS_PKT_FLAG_COMPLETION_REQUESTED : 0, tid, NULL, 0,
            buf, len > v->msg_size ? len : v->msg_size);
}

/* Run the port as its worker would: rounds until the guest's ring is
 * drained (no frame and no other work), keeping the frames the guest sent;
 * then publish what netvsp answered. */
static unsigned pump(struct vm *v)
{
    unsigned total = 0;
    for (;;) {
        struct rte_mbuf *pk[BURST];
        v->port->rx_busy = false;
        uint16_t n = v->port->cls->rx_burst(v->port, pk, BURST);
        for (uint16_t i = 0; i < n; i++) {
            if (v->nrx < RX_KEEP)
                v->rx[v->nrx++] = pk[i];
            else
                rte_pktmbuf_free(pk[i]);
        }
        total += n;
        if (n == 0 && !v->port->rx_busy)
            break;
    }
    v->port->rx_busy = false;
    v->port->cls->tx_flush(v->port);
    return total;
}

static void free_rx(struct vm *v)
{
    for (unsigned i = 0; i < v->nrx; i++)
        rte_pktmbuf_free(v->rx[i]);
    v->nrx = 0;
}

static void inbox_clear(struct vm *v)
{
    v->ncomp = v->nxfer = 0;
}

/* Read everything the root put in the guest's ring into the inbox. No
 * cmocka here (used in a child process too): -1 on anything unexpected. */
static int collect_raw(struct vm *v)
{
    struct vmbus_ring *rx = vmbus_gchan_rx(v->ch);
    int n = 0;
    for (;;) {
        int len = vmbus_ring_get(rx, v->pkt, PKT_BUF);
        if (len == -EAGAIN)
            break;
        if (len < 0)
            return -1;
        struct vmbus_pkt p;
        if (vmbus_pkt_parse(v->pkt, (uint32_t)len, &p) < 0)
            return -1;
        n++;
        if (p.type == VMBUS_PKT_COMP) {
            if (v->ncomp == INBOX_MAX)
                return -1;
            struct comp *c = &v->comp[v->ncomp++];
            c->tid = p.trans_id;
            c->len = p.payload_len;
            memset(c->msg, 0, sizeof(c->msg));
            memcpy(c->msg, p.payload, p.payload_len < sizeof(c->msg) ? p.payload_len : sizeof(c->msg));
        } else if (p.type == VMBUS_PKT_DATA_USING_XFER_PAGES) {
            if (v->nxfer == INBOX_MAX)
                return -1;
            struct xfer *x = &v->xfer[v->nxfer++];
            const struct vmbus_xfer_range *r;
            int nr = vmbus_pkt_xfer_pages(&p, &x->pageset, &r, 4096);
            if (nr <= 0 || p.payload_len < sizeof(x->nvsp))
                return -1;
            x->tid = p.trans_id;
            x->flags = p.flags;
            x->payload_len = p.payload_len;
            x->nranges = (uint32_t)nr;
            x->completed = false;
            memcpy(x->r, r, sizeof(x->r[0]) * (nr < XFER_KEEP_RANGES ? nr : XFER_KEEP_RANGES));
            memcpy(&x->nvsp, p.payload, sizeof(x->nvsp));
        } else {
            return -1;
        }
    }
    if (vmbus_ring_release(rx) < 0)
        return -1;
    return n;
}

static int collect(struct vm *v)
{
    int n = collect_raw(v);
    if (n < 0)
        fail_msg("the root sent something the guest cannot parse");
    return n;
}

static const struct comp *find_comp(const struct vm *v, uint64_t tid)
{
    const struct comp *found = NULL;
    for (unsigned i = 0; i < v->ncomp; i++)
        if (v->comp[i].tid == tid)
            found = &v->comp[i];
    return found;
}

static unsigned count_comp(const struct vm *v, uint64_t tid)
{
    unsigned n = 0;
    for (unsigned i = 0; i < v->ncomp; i++)
        n += v->comp[i].tid == tid;
    return n;
}

/* The NVSP status in the completion of request tid (there must be one). */
static uint32_t comp_status(const struct vm *v, uint64_t tid, uint32_t type)
{
    const struct comp *c = find_comp(v, tid);
    if (!c)
        fail_msg("no completion for transaction %llu", (unsigned long long)tid);
    uint32_t m[2];
    memcpy(m, c->msg, sizeof(m));
    assert_int_equal(m[0], type);
    return m[1];
}

static void complete_xfer_raw(struct vm *v, uint64_t tid)
{
    struct nvsp_msg_rndis_pkt_complete c = {.type = NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE,
                                            .status = NVSP_STAT_SUCCESS};
    uint8_t buf[NVSP_MSG_SIZE_61] = {0};
    memcpy(buf, &c, sizeof(c));
    struct vmbus_ring *tx = vmbus_gchan_tx(v->ch);
    if (vmbus_ring_put_inband(tx, VMBUS_PKT_COMP, 0, tid, buf, v->msg_size) == 0)
        vmbus_ring_publish(tx);
}

/* Give every transfer in the inbox back to the root, as a guest does. */
static void complete_all(struct vm *v)
{
    for (unsigned i = 0; i < v->nxfer; i++) {
        if (v->xfer[i].completed)
            continue;
        complete_xfer_raw(v, v->xfer[i].tid);
        v->xfer[i].completed = true;
    }
    pump(v);
}

/* --- NVSP set-up --------------------------------------------------------- */

/* An NVSP request the root completes: the completion's payload and length. */
static uint64_t nvsp_request(struct vm *v, const void *msg, uint32_t len, void *out,
                             uint32_t out_size, uint32_t *ans_len)
{
    uint64_t tid = ++v->next_tid;
    inbox_clear(v);
    nvsp_send(v, msg, len, tid, true);
    pump(v);
    collect(v);
    const struct comp *c = find_comp(v, tid);
    if (!c) {
        uint32_t type;
        memcpy(&type, msg, 4);
        fail_msg("no completion for NVSP message %u", type);
    }
    memcpy(out, c->msg, out_size);
    if (ans_len)
        *ans_len = c->len;
    return tid;
}

static uint32_t nvsp_init(struct vm *v, uint32_t minv, uint32_t maxv,
                          struct nvsp_msg_init_complete *out, uint32_t *ans_len)
{
    struct nvsp_msg_init m = {.type = NVSP_MSG_INIT, .min_protocol_ver = minv,
                              .max_protocol_ver = maxv};
    struct nvsp_msg_init_complete c;
    v->msg_size = maxv >= V61 ? NVSP_MSG_SIZE_61 : NVSP_MSG_SIZE_LEGACY;
    nvsp_request(v, &m, sizeof(m), &c, sizeof(c), ans_len);
    assert_int_equal(c.type, NVSP_MSG_INIT_COMPLETE);
    if (out)
        *out = c;
    return c.status;
}

static void ndis_config(struct vm *v, uint32_t mtu)
{
    struct nvsp_msg_ndis_config m = {.type = NVSP_MSG2_SEND_NDIS_CONFIG, .mtu = mtu,
                                     .capabilities = NVSP_CAP_IEEE8021Q};
    nvsp_send(v, &m, sizeof(m), 0, false);
}

static void ndis_ver(struct vm *v)
{
    struct nvsp_msg_ndis_ver m = {.type = NVSP_MSG1_SEND_NDIS_VER, .ndis_major = 6,
                                  .ndis_minor = 30};
    nvsp_send(v, &m, sizeof(m), 0, false);
}

static uint32_t recv_buf(struct vm *v, uint32_t gpadl, struct nvsp_msg_recv_buf_complete *out,
                         uint32_t *ans_len)
{
    struct nvsp_msg_send_buf m = {.type = NVSP_MSG1_SEND_RECV_BUF, .gpadl = gpadl,
                                  .id = NVSP_RECV_BUF_ID};
    struct nvsp_msg_recv_buf_complete c;
    nvsp_request(v, &m, sizeof(m), &c, sizeof(c), ans_len);
    assert_int_equal(c.type, NVSP_MSG1_SEND_RECV_BUF_COMPLETE);
    if (c.status == NVSP_STAT_SUCCESS) {
        v->sub_size = c.sections[0].sub_alloc_size;
        v->nsub = c.sections[0].num_sub_allocs;
    }
    if (out)
        *out = c;
    return c.status;
}

static uint32_t send_buf(struct vm *v, uint32_t gpadl, struct nvsp_msg_send_buf_complete *out)
{
    struct nvsp_msg_send_buf m = {.type = NVSP_MSG1_SEND_SEND_BUF, .gpadl = gpadl,
                                  .id = NVSP_SEND_BUF_ID};
    struct nvsp_msg_send_buf_complete c;
    nvsp_request(v, &m, sizeof(m), &c, sizeof(c), NULL);
    assert_int_equal(c.type, NVSP_MSG1_SEND_SEND_BUF_COMPLETE);
    if (out)
        *out = c;
    return c.status;
}

/* INIT, NDIS_CONFIG (v >= 2), NDIS_VER, RECV_BUF, SEND_BUF, as Linux does. */
static void nvsp_setup(struct vm *v, uint32_t ver, uint32_t ndis_mtu)
{
    assert_int_equal(nvsp_init(v, ver, ver, NULL, NULL), NVSP_STAT_SUCCESS);
    if (ver >= NVSP_PROTOCOL_VERSION_2)
        ndis_config(v, ndis_mtu);
    ndis_ver(v);
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
    assert_int_equal(send_buf(v, v->sgpadl, NULL), NVSP_STAT_SUCCESS);
}

/* --- RNDIS --------------------------------------------------------------- */

static uint8_t *section(struct vm *v, uint32_t sec)
{
    return v->sbuf + (size_t)sec * NVSP_SEND_SECTION_SIZE;
}

/* SEND_RNDIS_PKT naming `len` bytes of section sec (already written). */
static uint64_t rndis_pkt_section(struct vm *v, uint32_t channel, uint32_t sec, uint32_t len)
{
    struct nvsp_msg_rndis_pkt m = {.type = NVSP_MSG1_SEND_RNDIS_PKT, .channel_type = channel,
                                   .send_buf_section_index = sec, .send_buf_section_size = len};
    uint64_t tid = ++v->next_tid;
    nvsp_send(v, &m, sizeof(m), tid, true);
    return tid;
}

static uint64_t rndis_send_section(struct vm *v, uint32_t sec, uint32_t channel, const void *msg,
                                   uint32_t len)
{
    memcpy(section(v, sec), msg, len);
    return rndis_pkt_section(v, channel, sec, len);
}

/* Check the framing of one transfer the root sent for control. */
static void check_ctrl_xfer(const struct vm *v, const struct xfer *x)
{
    assert_int_equal(x->nvsp.type, NVSP_MSG1_SEND_RNDIS_PKT);
    assert_int_equal(x->nvsp.channel_type, NVSP_CHANNEL_TYPE_CONTROL);
    assert_int_equal(x->nvsp.send_buf_section_index, NVSP_SECTION_NONE);
    assert_int_equal(x->pageset, NVSP_RECV_BUF_ID);
    assert_true(x->flags & VMBUS_PKT_FLAG_COMPLETION_REQUESTED);
    assert_int_equal(x->nranges, 1);
    assert_int_equal(x->r[0].byte_offset % v->sub_size, 0);
    assert_true(x->r[0].byte_count <= v->sub_size);
    assert_true((uint64_t)x->r[0].byte_offset + x->r[0].byte_count <=
                (uint64_t)v->sub_size * v->nsub);
    struct rndis_msg_hdr h;
    memcpy(&h, v->rbuf + x->r[0].byte_offset, sizeof(h));
    assert_int_equal(h.len, x->r[0].byte_count);
}

/*
 * One RNDIS control request from the control section: returns the NVSP
 * status of its completion and copies the RNDIS answer, if there is one, to
 * resp. Completes the answer's transfer, as a guest does.
 */
static uint32_t rndis_ctrl(struct vm *v, const void *msg, uint32_t len, void *resp, uint32_t cap,
                           uint32_t *resp_len)
{
    inbox_clear(v);
    uint64_t tid = rndis_send_section(v, CTRL_SEC, NVSP_CHANNEL_TYPE_CONTROL, msg, len);
    pump(v);
    collect(v);
    assert_int_equal(count_comp(v, tid), 1);
    uint32_t st = comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE);
    *resp_len = 0;
    assert_true(v->nxfer <= 1);
    if (v->nxfer == 1) {
        const struct xfer *x = &v->xfer[0];
        check_ctrl_xfer(v, x);
        assert_true(x->r[0].byte_count <= cap);
        memcpy(resp, v->rbuf + x->r[0].byte_offset, x->r[0].byte_count);
        *resp_len = x->r[0].byte_count;
    }
    complete_all(v);
    return st;
}

/* QUERY or SET (type) with an information buffer at the usual offset. */
static uint32_t build_oid_req(struct vm *v, uint8_t *buf, uint32_t type, uint32_t oid,
                              const void *in, uint32_t in_len)
{
    struct rndis_query_req q = {
        .hdr = {.type = type, .len = (uint32_t)sizeof(q) + in_len},
        .req_id = ++v->next_req,
        .oid = oid,
        .info_len = in_len,
        .info_offset = in_len ? (uint32_t)sizeof(q) - RNDIS_HEADER_SIZE : 0,
    };
    memcpy(buf, &q, sizeof(q));
    if (in_len)
        memcpy(buf + sizeof(q), in, in_len);
    return q.hdr.len;
}

/* The status of a QUERY; its information buffer copied to out. */
static uint32_t rndis_query(struct vm *v, uint32_t oid, const void *in, uint32_t in_len,
                            void *out, uint32_t *out_len)
{
    uint8_t req[1024], resp[1024];
    uint32_t len = build_oid_req(v, req, RNDIS_MSG_QUERY, oid, in, in_len), rl;
    assert_int_equal(rndis_ctrl(v, req, len, resp, sizeof(resp), &rl), NVSP_STAT_SUCCESS);
    struct rndis_query_cmplt c;
    assert_true(rl >= sizeof(c));
    memcpy(&c, resp, sizeof(c));
    assert_int_equal(c.hdr.type, RNDIS_MSG_QUERY_C);
    assert_int_equal(c.hdr.len, rl);
    assert_int_equal(c.req_id, v->next_req);
    if (c.status == RNDIS_STATUS_SUCCESS) {
        assert_true(c.info_offset >= 16);
        assert_true((uint64_t)c.info_offset + RNDIS_HEADER_SIZE + c.info_len <= rl);
        if (out) {
            assert_true(c.info_len <= *out_len);
            memcpy(out, resp + RNDIS_HEADER_SIZE + c.info_offset, c.info_len);
            *out_len = c.info_len;
        }
    }
    return c.status;
}

static uint32_t query_u32(struct vm *v, uint32_t oid)
{
    uint32_t val = 0xdeadbeef, len = sizeof(val);
    assert_int_equal(rndis_query(v, oid, NULL, 0, &val, &len), RNDIS_STATUS_SUCCESS);
    assert_int_equal(len, 4);
    return val;
}

/* The status of a SET (or SET_EX). */
static uint32_t rndis_set_type(struct vm *v, uint32_t type, uint32_t oid, const void *in,
                               uint32_t in_len)
{
    uint8_t req[1024], resp[1024];
    uint32_t len = build_oid_req(v, req, type, oid, in, in_len), rl;
    assert_int_equal(rndis_ctrl(v, req, len, resp, sizeof(resp), &rl), NVSP_STAT_SUCCESS);
    struct rndis_set_cmplt c;
    assert_int_equal(rl, sizeof(c));
    memcpy(&c, resp, sizeof(c));
    assert_int_equal(c.hdr.type, type | 0x80000000u);
    assert_int_equal(c.req_id, v->next_req);
    return c.status;
}

static uint32_t rndis_set(struct vm *v, uint32_t oid, const void *in, uint32_t in_len)
{
    return rndis_set_type(v, RNDIS_MSG_SET, oid, in, in_len);
}

static void set_filter(struct vm *v, uint32_t filter)
{
    assert_int_equal(rndis_set(v, RNDIS_OID_GEN_CURRENT_PACKET_FILTER, &filter, 4),
                     RNDIS_STATUS_SUCCESS);
}

static void rndis_init(struct vm *v, struct rndis_init_cmplt *out)
{
    struct rndis_init_req r = {
        .hdr = {.type = RNDIS_MSG_INIT, .len = sizeof(r)},
        .req_id = ++v->next_req,
        .major = RNDIS_VERSION_MAJOR,
        .minor = RNDIS_VERSION_MINOR,
        .max_xfer_size = 0x4000,
    };
    uint8_t resp[256];
    uint32_t rl;
    assert_int_equal(rndis_ctrl(v, &r, sizeof(r), resp, sizeof(resp), &rl), NVSP_STAT_SUCCESS);
    struct rndis_init_cmplt c;
    assert_int_equal(rl, sizeof(c));
    memcpy(&c, resp, sizeof(c));
    assert_int_equal(c.hdr.type, RNDIS_MSG_INIT_C);
    assert_int_equal(c.status, RNDIS_STATUS_SUCCESS);
    if (out)
        *out = c;
}

/* Everything Linux does before frames flow, at NVSP 6.1 and a 1514 frame. */
static void bring_up_ver(struct vm *v, uint32_t ver, uint32_t ndis_mtu)
{
    nvsp_setup(v, ver, ndis_mtu);
    rndis_init(v, NULL);
    set_filter(v, RNDIS_FILTER_DIRECTED | RNDIS_FILTER_MULTICAST | RNDIS_FILTER_BROADCAST);
    assert_true(vsw_port_link(v->port));
    inbox_clear(v);
}

static void bring_up(struct vm *v)
{
    bring_up_ver(v, V61, FRAME_1514);
}

/* --- frames -------------------------------------------------------------- */

static void make_frame(uint8_t *f, uint32_t len, const uint8_t dst[6], uint8_t seed)
{
    static const uint8_t src[6] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x99};
    for (uint32_t i = 0; i < len; i++)
        f[i] = (uint8_t)(seed + i * 7u);
    if (len >= 14) {
        memcpy(f, dst, 6);
        memcpy(f + 6, src, 6);
        f[12] = 0x08;
        f[13] = 0x00;
    }
    if (len > 14)
        f[14] = 0x45;
}

static uint32_t put_ppi(uint8_t *p, uint32_t type, uint32_t value)
{
    struct rndis_ppi r = {.size = 16, .type = type, .ppi_offset = 12};
    memcpy(p, &r, sizeof(r));
    memcpy(p + sizeof(r), &value, 4);
    return 16;
}

/* An RNDIS PACKET_MSG with the frame right after its PPIs. */
static uint32_t build_packet(uint8_t *out, const uint8_t *ppis, uint32_t ppi_len,
                             const uint8_t *frame, uint32_t flen)
{
    struct rndis_packet_msg pm = {
        .hdr = {.type = RNDIS_MSG_PACKET, .len = (uint32_t)sizeof(pm) + ppi_len + flen},
        .data_offset = 36 + ppi_len,
        .data_len = flen,
        .ppi_offset = ppi_len ? 36 : 0,
        .ppi_len = ppi_len,
    };
    memcpy(out, &pm, sizeof(pm));
    if (ppi_len)
        memcpy(out + sizeof(pm), ppis, ppi_len);
    memcpy(out + sizeof(pm) + ppi_len, frame, flen);
    return pm.hdr.len;
}

/* The same, packed as a guest packs messages into one send (Linux
 * netvsc_copy_to_send_buf, FreeBSD and DPDK hn_try_txagg): padded with
 * zeroes to the 8 bytes INIT_C announced, the padding counted in
 * message_length. Returns the padded length. */
static uint32_t build_packet_padded(uint8_t *out, const uint8_t *frame, uint32_t flen)
{
    uint32_t len = build_packet(out, NULL, 0, frame, flen);
    uint32_t padded = (len + 7u) & ~7u;
    memset(out + len, 0, padded - len);
    memcpy(out + 4, &padded, 4);
    return padded;
}

static void assert_mbuf_eq(struct rte_mbuf *m, const uint8_t *data, uint32_t len)
{
    static uint8_t tmp[16384];
    assert_non_null(m);
    assert_int_equal(rte_pktmbuf_pkt_len(m), len);
    const uint8_t *p = rte_pktmbuf_read(m, 0, len, tmp);
    assert_non_null(p);
    assert_memory_equal(p, data, len);
}

static struct rte_mbuf *frame_mbuf(const uint8_t *d, uint32_t len)
{
    struct rte_mbuf *head = rte_pktmbuf_alloc(g_pool);
    assert_non_null(head);
    uint32_t done = 0;
    while (done < len) {
        struct rte_mbuf *last = rte_pktmbuf_lastseg(head);
        uint32_t room = rte_pktmbuf_tailroom(last);
        if (room == 0) {
            struct rte_mbuf *nm = rte_pktmbuf_alloc(g_pool);
            assert_non_null(nm);
            assert_int_equal(rte_pktmbuf_chain(head, nm), 0);
            continue;
        }
        uint32_t k = len - done < room ? len - done : room;
        char *p = rte_pktmbuf_append(head, (uint16_t)k);
        assert_non_null(p);
        memcpy(p, d + done, k);
        done += k;
    }
    return head;
}

static uint16_t to_guest(struct vm *v, struct rte_mbuf **m, uint16_t n)
{
    uint16_t sent = v->port->cls->tx_burst(v->port, m, n);
    v->port->cls->tx_flush(v->port);
    return sent;
}

static uint16_t frame_to_guest(struct vm *v, const uint8_t *d, uint32_t len)
{
    struct rte_mbuf *m = frame_mbuf(d, len);
    return to_guest(v, &m, 1);
}

/*
 * The RNDIS PACKET_MSG a transfer range points at, checked as a careful
 * guest would: returns the frame and its length, and the checksum PPI value
 * (UINT32_MAX if none).
 */
static const uint8_t *rx_frame(const struct vm *v, const struct vmbus_xfer_range *r,
                               uint32_t *len, uint32_t *csum)
{
    assert_int_equal(r->byte_offset % v->sub_size, 0);
    assert_true(r->byte_count <= v->sub_size);
    assert_true((uint64_t)r->byte_offset + r->byte_count <= (uint64_t)v->sub_size * v->nsub);
    const uint8_t *msg = v->rbuf + r->byte_offset;
    struct rndis_packet_msg pm;
    memcpy(&pm, msg, sizeof(pm));
    assert_int_equal(pm.hdr.type, RNDIS_MSG_PACKET);
    assert_int_equal(pm.hdr.len, r->byte_count);
    assert_int_equal(pm.oob_data_offset | pm.oob_data_len | pm.num_oob_elements | pm.vc_handle, 0);
    assert_true(pm.data_offset >= 36);
    assert_true(pm.data_len > 0);
    assert_true((uint64_t)pm.data_offset + RNDIS_HEADER_SIZE + pm.data_len <= pm.hdr.len);
    *csum = UINT32_MAX;
    if (pm.ppi_len) {
        assert_true(pm.ppi_offset >= 36);
        assert_true((uint64_t)pm.ppi_offset + RNDIS_HEADER_SIZE + pm.ppi_len <= pm.hdr.len);
        uint32_t p = 0;
        while (p < pm.ppi_len) {
            struct rndis_ppi ppi;
            assert_true(pm.ppi_len - p >= sizeof(ppi));
            memcpy(&ppi, msg + RNDIS_HEADER_SIZE + pm.ppi_offset + p, sizeof(ppi));
            assert_true(ppi.size >= sizeof(ppi) + 4 && ppi.size <= pm.ppi_len - p);
            assert_true(ppi.ppi_offset >= sizeof(ppi) && ppi.ppi_offset + 4 <= ppi.size);
            if (ppi.type == RNDIS_PPI_CSUM_INFO)
                memcpy(csum, msg + RNDIS_HEADER_SIZE + pm.ppi_offset + p + ppi.ppi_offset, 4);
            p += ppi.size;
        }
    }
    *len = pm.data_len;
    return msg + RNDIS_HEADER_SIZE + pm.data_offset;
}

/* Data transfers in the inbox, and their frames. */
static unsigned data_frames(const struct vm *v)
{
    unsigned n = 0;
    for (unsigned i = 0; i < v->nxfer; i++) {
        if (v->xfer[i].nvsp.channel_type != NVSP_CHANNEL_TYPE_DATA)
            continue;
        assert_int_equal(v->xfer[i].nvsp.type, NVSP_MSG1_SEND_RNDIS_PKT);
        assert_int_equal(v->xfer[i].pageset, NVSP_RECV_BUF_ID);
        assert_true(v->xfer[i].flags & VMBUS_PKT_FLAG_COMPLETION_REQUESTED);
        n += v->xfer[i].nranges;
    }
    return n;
}

/* --- GPA-direct ---------------------------------------------------------- */

struct grange {
    uint32_t byte_count, byte_offset;
    uint32_t npfn;
    uint64_t pfn[8];
};

/* The GPA-direct header after the descriptor: reserved, count, ranges. */
static uint32_t gpa_ext(uint8_t *ext, const struct grange *r, uint32_t n, uint32_t count_field)
{
    uint32_t hdr[2] = {0, count_field};
    uint32_t off = 8;
    memcpy(ext, hdr, 8);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t rh[2] = {r[i].byte_count, r[i].byte_offset};
        memcpy(ext + off, rh, 8);
        off += 8;
        memcpy(ext + off, r[i].pfn, 8u * r[i].npfn);
        off += 8u * r[i].npfn;
    }
    return off;
}

static uint64_t rndis_pkt_gpa(struct vm *v, uint32_t channel, uint32_t sec, uint32_t sec_len,
                              const uint8_t *ext, uint32_t ext_len)
{
    struct nvsp_msg_rndis_pkt m = {.type = NVSP_MSG1_SEND_RNDIS_PKT, .channel_type = channel,
                                   .send_buf_section_index = sec, .send_buf_section_size = sec_len};
    uint8_t buf[NVSP_MSG_SIZE_61] = {0};
    memcpy(buf, &m, sizeof(m));
    uint64_t tid = ++v->next_tid;
    put_pkt(v, VMBUS_PKT_DATA_USING_GPA_DIRECT, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, tid, ext,
            ext_len, buf, v->msg_size);
    return tid;
}

/* A single range over contiguous scratch pages. */
static struct grange scratch_range(struct vm *v, uint32_t page, uint32_t off, uint32_t count)
{
    struct grange r = {.byte_count = count, .byte_offset = off};
    r.npfn = (off + count + HV_PAGE_SIZE - 1) / HV_PAGE_SIZE;
    assert_true(r.npfn <= 8 && page + r.npfn <= SCRATCH_PAGES);
    for (uint32_t i = 0; i < r.npfn; i++)
        r.pfn[i] = v->scratch_pfn + page + i;
    return r;
}

/* --- fixture ------------------------------------------------------------- */

static void open_chan(struct vm *v)
{
    struct vmbus_gchan_params gp = {.tx_pages = RING_PAGES, .rx_pages = RING_PAGES};
    assert_int_equal(vmbus_client_open(v->client, v->relid, &gp, &v->ch), 0);
    v->msg_size = NVSP_MSG_SIZE_61;
    v->sub_size = v->nsub = 0;
    inbox_clear(v);
}

/* Close the channel and open it again: a fresh NVSP connection. The
 * buffer GPADLs stay granted. */
static void reopen(struct vm *v)
{
    assert_int_equal(vmbus_client_close(v->ch), 0);
    v->ch = NULL;
    open_chan(v);
}

static uint32_t grant(struct vm *v, uint32_t pages, uint64_t *pfn_out)
{
    uint64_t first, *pfns = malloc(sizeof(uint64_t) * pages);
    uint32_t gpadl = 0;
    assert_non_null(pfns);
    assert_int_equal(hv_guest_alloc_pages(v->g, pages, &first), 0);
    for (uint32_t i = 0; i < pages; i++)
        pfns[i] = first + i;
    int rc = vmbus_client_gpadl_create(v->client, v->relid, pfns, pages, &gpadl);
    free(pfns);
    assert_int_equal(rc, 0);
    if (pfn_out)
        *pfn_out = first;
    return gpadl;
}

static struct vm *vm_create(struct fix *f, const char *name, const uint8_t mac[6],
                            uint32_t nic_mtu)
{
    struct vm *v = calloc(1, sizeof(*v)); /* may outlive a test body: not cmocka's */
    assert_non_null(v);
    struct hv_partition_params pp = {
        .name = name, .memory_bytes = MEM_BYTES, .cls = &hv_direct_partition_class};
    assert_int_equal(hv_partition_create(f->host, &pp, &v->part), 0);
    assert_int_equal(vmbus_server_create(v->part, &v->srv), 0);
    struct netvsp_params np = {.port_name = name, .nic_name = "eth0", .mtu = nic_mtu,
                               .pool = g_pool};
    memcpy(np.mac, mac, 6);
    memcpy(v->mac, mac, 6);
    np.instance.b[0] = mac[5];
    np.instance.b[15] = 0x4e;
    assert_int_equal(netvsp_create(v->srv, &np, &v->nic), 0);
    v->port = netvsp_port(v->nic);
    assert_int_equal(hv_partition_start(v->part), 0);
    assert_int_equal(hv_direct_partition_attach(v->part, &v->g), 0);
    assert_int_equal(vmbus_client_connect(v->g, 2000, &v->client), 0);
    struct vmbus_guid cls = VMBUS_GUID_NETVSC;
    struct vmbus_offer_info oi;
    assert_int_equal(vmbus_client_find(v->client, &cls, 0, &oi), 0);
    v->relid = oi.relid;
    open_chan(v);
    v->rgpadl = grant(v, RBUF_PAGES, &v->rbuf_pfn);
    v->sgpadl = grant(v, SBUF_PAGES, &v->sbuf_pfn);
    v->rbuf = hv_guest_pfn_ptr(v->g, v->rbuf_pfn);
    v->sbuf = hv_guest_pfn_ptr(v->g, v->sbuf_pfn);
    assert_int_equal(hv_guest_alloc_pages(v->g, SCRATCH_PAGES, &v->scratch_pfn), 0);
    v->scratch = hv_guest_pfn_ptr(v->g, v->scratch_pfn);
    return v;
}

static void vm_destroy(struct vm *v)
{
    if (!v)
        return;
    free_rx(v);
    if (v->port)
        vsw_port_destroy(v->port);
    vmbus_client_destroy(v->client);
    if (v->g)
        hv_guest_detach(v->g);
    if (v->srv)
        vmbus_server_destroy(v->srv);
    free(v);
}

static int setup(void **state)
{
    struct fix *f = test_calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(hv_host_create(&f->host), 0);
    f->a = vm_create(f, "vm-a", MAC_A, NIC_MTU);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    vm_destroy(f->b);
    vm_destroy(f->a);
    hv_host_destroy(f->host);
    test_free(f);
    /* Every mbuf back: netvsp frees what it does not pass on. */
    assert_int_equal(rte_mempool_avail_count(g_pool), POOL_MBUFS);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "--file-prefix=tnetvsp%d", (int)getpid());
    char *args[] = {"test_netvsp", "-l", "0", "--no-huge", "-m", "256", "--no-pci",
                    "--no-shconf", "--no-telemetry", prefix, "--log-level", "*:error"};
    if (rte_eal_init((int)(sizeof(args) / sizeof(args[0])), args) < 0)
        return -1;
    /* EAL leaves an empty runtime directory behind (--no-shconf). */
    rmdir(rte_eal_get_runtime_dir());
    g_pool = rte_pktmbuf_pool_create("tnetvsp", POOL_MBUFS, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
                                     (int)rte_socket_id());
    return g_pool ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    rte_mempool_free(g_pool);
    rte_eal_cleanup();
    return 0;
}

static struct fix *F(void **state)
{
    return *state;
}

/* --- bring-up ------------------------------------------------------------ */

static void init__each_supported_version__success_with_answer_size_of_version(void **state)
{
    struct vm *v = F(state)->a;
    static const uint32_t versions[] = {V61,
                                        NVSP_PROTOCOL_VERSION_6,
                                        NVSP_PROTOCOL_VERSION_5,
                                        NVSP_PROTOCOL_VERSION_4,
                                        NVSP_PROTOCOL_VERSION_2,
                                        NVSP_PROTOCOL_VERSION_1};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        uint32_t ver = versions[i];
        if (i)
            reopen(v);
        struct nvsp_msg_init_complete c;
        uint32_t len, want_len = ver >= V61 ? NVSP_MSG_SIZE_61 : 32; /* 28, padded to 8 */
        assert_int_equal(nvsp_init(v, ver, ver, &c, &len), NVSP_STAT_SUCCESS);
        assert_int_equal(len, want_len);
        assert_int_equal(c.negotiated_ver, ver == NVSP_PROTOCOL_VERSION_1 ? 2 : 0xffffffffu);
        assert_int_equal(c.max_mdl_chain_len, 34);
        assert_int_equal(nstats(v).nvsp_version, ver);
        /* Later answers have the negotiated size too. */
        if (ver >= NVSP_PROTOCOL_VERSION_2)
            ndis_config(v, FRAME_1514);
        struct nvsp_msg_recv_buf_complete rc;
        assert_int_equal(recv_buf(v, v->rgpadl, &rc, &len), NVSP_STAT_SUCCESS);
        assert_int_equal(len, want_len);
    }
}

static void init__version_range__newest_common_chosen(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_1, 0x00ffffffu, NULL, NULL),
                     NVSP_STAT_SUCCESS);
    assert_int_equal(nstats(v).nvsp_version, V61);
    reopen(v);
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_5, NULL, NULL),
                     NVSP_STAT_SUCCESS);
    assert_int_equal(nstats(v).nvsp_version, NVSP_PROTOCOL_VERSION_5);
}

static void init__unsupported_version__answered_not_success_and_retry_allowed(void **state)
{
    struct vm *v = F(state)->a;
    static const uint32_t bad[][2] = {
        {0x00070000, 0x00070000}, /* too new */
        {0x00010000, 0x00010000}, /* too old / unknown */
        {0x00030001, 0x00030001}, /* between 2 and 4 */
        {NVSP_PROTOCOL_VERSION_5, NVSP_PROTOCOL_VERSION_4}, /* min > max */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct netvsp_stats b = nstats(v);
        assert_int_not_equal(nvsp_init(v, bad[i][0], bad[i][1], NULL, NULL), NVSP_STAT_SUCCESS);
        assert_int_equal(nstats(v).nvsp_version, 0);
        expect_no_err(v, &b);
    }
    /* Not initialised: the next message is out of order. */
    struct netvsp_stats b = nstats(v);
    ndis_ver(v);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
    /* A guest walks down its list: the next supported version works. */
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_6, NVSP_PROTOCOL_VERSION_6, NULL, NULL),
                     NVSP_STAT_SUCCESS);
}

static void ndis_config__mtu_in_range__frame_size_honoured(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, 9014);
    struct netvsp_stats s = nstats(v);
    assert_int_equal(s.frame_size, 9014);
    /* Sections hold the RNDIS header, a PPI and the whole frame. */
    assert_true(v->sub_size >= 9014 + sizeof(struct rndis_packet_msg) + 16);
    rndis_init(v, NULL);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE), 9000);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_MAXIMUM_TOTAL_SIZE), 9014);
    reopen(v);
    nvsp_setup(v, V61, 4000);
    assert_int_equal(nstats(v).frame_size, 4000);
}

static void ndis_config__mtu_out_of_range__replaced_by_1514(void **state)
{
    struct vm *v = F(state)->a;
    static const uint32_t mtus[] = {0, 1, 1500, 1513, 9217, 65535, 0xffffffffu};
    for (size_t i = 0; i < sizeof(mtus) / sizeof(mtus[0]); i++) {
        if (i)
            reopen(v);
        struct netvsp_stats b = nstats(v);
        nvsp_setup(v, V61, mtus[i]);
        assert_int_equal(nstats(v).frame_size, FRAME_1514);
        assert_true(v->sub_size >= FRAME_1514 + sizeof(struct rndis_packet_msg) + 16);
        expect_no_err(v, &b);
    }
    rndis_init(v, NULL);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE), 1500);
}

static void ndis_config__above_nic_mtu__capped_to_nic(void **state)
{
    struct fix *f = F(state);
    f->b = vm_create(f, "vm-b", MAC_B, 1500);
    nvsp_setup(f->b, V61, 9014);
    assert_int_equal(nstats(f->b).frame_size, FRAME_1514);
    rndis_init(f->b, NULL);
    assert_int_equal(query_u32(f->b, RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE), 1500);
}

static void nvsp1__no_ndis_config__default_frame(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_ver(v, NVSP_PROTOCOL_VERSION_1, 0);
    assert_int_equal(nstats(v).frame_size, FRAME_1514);
    assert_int_equal(v->msg_size, NVSP_MSG_SIZE_LEGACY);
    uint8_t frame[600];
    make_frame(frame, sizeof(frame), v->mac, 3);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
    collect(v);
    assert_int_equal(data_frames(v), 1);
    /* Legacy message size: 28 bytes, padded to 32 in the ring. */
    assert_int_equal(v->xfer[0].payload_len, 32);
}

static void recv_buf__valid__one_section_at_offset_0(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, V61, V61, NULL, NULL), NVSP_STAT_SUCCESS);
    ndis_config(v, FRAME_1514);
    ndis_ver(v);
    struct nvsp_msg_recv_buf_complete c;
    assert_int_equal(recv_buf(v, v->rgpadl, &c, NULL), NVSP_STAT_SUCCESS);
    assert_int_equal(c.num_sections, 1);
    assert_int_equal(c.sections[0].offset, 0);
    assert_true(c.sections[0].sub_alloc_size >= FRAME_1514 + sizeof(struct rndis_packet_msg) + 16);
    assert_true(c.sections[0].num_sub_allocs > CTRL_SUBS);
    assert_true((uint64_t)c.sections[0].sub_alloc_size * c.sections[0].num_sub_allocs <=
                RBUF_PAGES * HV_PAGE_SIZE);
    assert_int_equal(c.sections[0].end_offset,
                     c.sections[0].sub_alloc_size * c.sections[0].num_sub_allocs);
    assert_int_equal(nstats(v).recv_sections, c.sections[0].num_sub_allocs);
}

static void send_buf__valid__section_size_6144(void **state)
{
    struct vm *v = F(state)->a;
    /* No receive buffer needed first. */
    assert_int_equal(nvsp_init(v, V61, V61, NULL, NULL), NVSP_STAT_SUCCESS);
    struct nvsp_msg_send_buf_complete c;
    assert_int_equal(send_buf(v, v->sgpadl, &c), NVSP_STAT_SUCCESS);
    assert_int_equal(c.section_size, 6144);
    assert_int_equal(nstats(v).send_sections, NSECTIONS);
}

static void buffers__unknown_or_unusable_gpadl__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, V61, V61, NULL, NULL), NVSP_STAT_SUCCESS);
    ndis_config(v, FRAME_1514);
    struct netvsp_stats b = nstats(v);
    assert_int_equal(recv_buf(v, 0x12345, NULL, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_GPADL);
    /* Too small for the control sub-allocations and one frame. */
    uint32_t small = grant(v, 4, NULL);
    b = nstats(v);
    assert_int_equal(recv_buf(v, small, NULL, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_GPADL);
    b = nstats(v);
    assert_int_equal(send_buf(v, 0x54321, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_GPADL);
    /* Smaller than one section. */
    uint32_t one = grant(v, 1, NULL);
    b = nstats(v);
    assert_int_equal(send_buf(v, one, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_GPADL);
    /* The refusals left nothing behind: the real buffers still work. */
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
    assert_int_equal(send_buf(v, v->sgpadl, NULL), NVSP_STAT_SUCCESS);
}

/* Take back a GPADL made with grant() and free its pages. */
static void grant_drop(struct vm *v, uint32_t gpadl, uint64_t pfn, uint32_t pages)
{
    assert_int_equal(vmbus_client_gpadl_teardown(v->client, v->relid, gpadl), 0);
    hv_guest_free_range(v->g, pfn, pages);
}

/*
 * Buffers larger than any real guest driver uses (NETVSP_RECV_BUF_MAX,
 * NETVSP_SEND_BUF_MAX) are refused and counted; buffers of exactly those
 * sizes are taken.
 */
static void buffers__larger_than_real_guests_use__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, V61, V61, NULL, NULL), NVSP_STAT_SUCCESS);
    ndis_config(v, FRAME_1514);
    const uint32_t rmax = NETVSP_RECV_BUF_MAX / HV_PAGE_SIZE, smax = NETVSP_SEND_BUF_MAX / HV_PAGE_SIZE;
    uint64_t pfn;
    struct netvsp_stats b = nstats(v);
    uint32_t g = grant(v, rmax + 1, &pfn);
    assert_int_equal(recv_buf(v, g, NULL, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_BUFFER_SIZE);
    grant_drop(v, g, pfn, rmax + 1);
    b = nstats(v);
    g = grant(v, smax + 1, &pfn);
    assert_int_equal(send_buf(v, g, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_BUFFER_SIZE);
    grant_drop(v, g, pfn, smax + 1);
    b = nstats(v);
    assert_int_equal(recv_buf(v, grant(v, rmax, NULL), NULL, NULL), NVSP_STAT_SUCCESS);
    assert_int_equal(send_buf(v, grant(v, smax, NULL), NULL), NVSP_STAT_SUCCESS);
    expect_no_err(v, &b);
    assert_int_equal(nstats(v).send_sections, NETVSP_SEND_BUF_MAX / NVSP_SEND_SECTION_SIZE);
}

/* Rings larger than real guests use (NETVSP_RING_PAGES_MAX a side) do not
 * open; the VMBus server counts them. Rings of that size do. */
static void open__rings_larger_than_real_guests_use__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(vmbus_client_close(v->ch), 0);
    v->ch = NULL;
    struct vmbus_server_stats s0, s1;
    vmbus_server_get_stats(v->srv, &s0);
    const struct vmbus_gchan_params big[] = {
        {.tx_pages = NETVSP_RING_PAGES_MAX + 1, .rx_pages = 8},
        {.tx_pages = 8, .rx_pages = NETVSP_RING_PAGES_MAX + 1},
    };
    for (size_t i = 0; i < 2; i++) {
        struct vmbus_gchan *ch = NULL;
        assert_true(vmbus_client_open(v->client, v->relid, &big[i], &ch) < 0);
        assert_null(ch);
    }
    vmbus_server_get_stats(v->srv, &s1);
    assert_int_equal(s1.errors[VMBUS_SRV_ERR_RING_SIZE] - s0.errors[VMBUS_SRV_ERR_RING_SIZE], 2);
    assert_false(nstats(v).connected);
    struct vmbus_gchan_params max = {.tx_pages = NETVSP_RING_PAGES_MAX,
                                     .rx_pages = NETVSP_RING_PAGES_MAX};
    assert_int_equal(vmbus_client_open(v->client, v->relid, &max, &v->ch), 0);
    assert_true(nstats(v).connected);
    v->msg_size = NVSP_MSG_SIZE_61;
    bring_up(v);
}

static void rndis_init__valid__init_c_fields(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    assert_false(nstats(v).rndis_ready);
    struct rndis_init_cmplt c;
    rndis_init(v, &c);
    assert_int_equal(c.hdr.len, sizeof(c));
    assert_int_equal(c.req_id, v->next_req);
    assert_int_equal(c.major, RNDIS_VERSION_MAJOR);
    assert_int_equal(c.minor, RNDIS_VERSION_MINOR);
    assert_int_equal(c.device_flags, RNDIS_DEVICE_FLAG_CONNECTIONLESS);
    assert_int_equal(c.medium, RNDIS_MEDIUM_802_3);
    assert_true(c.max_pkts_per_msg >= 1);
    assert_true(c.max_xfer_size >= FRAME_1514);
    assert_true(c.align_factor <= 12);
    assert_int_equal(c.af_list_offset, 0);
    assert_int_equal(c.af_list_size, 0);
    assert_true(nstats(v).rndis_ready);
    /* Ready, but no packet filter yet: the link stays down. */
    assert_false(vsw_port_link(v->port));
}

static void rndis_query__gen_and_802_3_oids__answered(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    rndis_init(v, NULL);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE), 1500);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_LINK_SPEED), RNDIS_LINK_SPEED_10G);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_MEDIA_CONNECT_STATUS), RNDIS_MEDIA_STATE_CONNECTED);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_VENDOR_ID), 0x155d);
    uint8_t mac[8];
    uint32_t len = sizeof(mac);
    assert_int_equal(rndis_query(v, RNDIS_OID_802_3_PERMANENT_ADDRESS, NULL, 0, mac, &len),
                     RNDIS_STATUS_SUCCESS);
    assert_int_equal(len, 6);
    assert_memory_equal(mac, MAC_A, 6);
    len = sizeof(mac);
    assert_int_equal(rndis_query(v, RNDIS_OID_802_3_CURRENT_ADDRESS, NULL, 0, mac, &len),
                     RNDIS_STATUS_SUCCESS);
    assert_memory_equal(mac, MAC_A, 6);
    uint32_t list[64];
    len = sizeof(list);
    assert_int_equal(rndis_query(v, RNDIS_OID_GEN_SUPPORTED_LIST, NULL, 0, list, &len),
                     RNDIS_STATUS_SUCCESS);
    assert_int_equal(len % 4, 0);
    bool has_frame = false;
    for (uint32_t i = 0; i < len / 4; i++)
        has_frame |= list[i] == RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE;
    assert_true(has_frame);
    struct ndis_rss_caps rss;
    len = sizeof(rss);
    assert_int_equal(rndis_query(v, RNDIS_OID_GEN_RECEIVE_SCALE_CAPABILITIES, NULL, 0, &rss, &len),
                     RNDIS_STATUS_SUCCESS);
    assert_int_equal(rss.hdr.type, NDIS_OBJTYPE_RSS_CAPS);
    assert_true(rss.num_indirect_entries > 0); /* DPDK guests need a table */
    struct netvsp_stats b = nstats(v);
    assert_int_equal(rndis_query(v, 0x12345678u, NULL, 0, NULL, NULL), RNDIS_STATUS_NOT_SUPPORTED);
    expect_no_err(v, &b);
}

static void rndis_query__offload_caps__size_of_requested_revision(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    rndis_init(v, NULL);
    static const struct {
        uint8_t rev;
        uint16_t size;
    } cases[] = {{1, NDIS_OFFLOAD_SIZE_REV1}, {2, NDIS_OFFLOAD_SIZE_REV2},
                 {3, NDIS_OFFLOAD_SIZE_REV3}, {4, NDIS_OFFLOAD_SIZE_REV3}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ndis_offload q = {0}, a;
        q.hdr.type = NDIS_OBJTYPE_OFFLOAD;
        q.hdr.revision = cases[i].rev;
        q.hdr.size = cases[i].size;
        memset(&a, 0, sizeof(a));
        uint32_t len = sizeof(a);
        assert_int_equal(rndis_query(v, RNDIS_OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES, &q,
                                     cases[i].size, &a, &len),
                         RNDIS_STATUS_SUCCESS);
        assert_int_equal(len, cases[i].size);
        assert_int_equal(a.hdr.type, NDIS_OBJTYPE_OFFLOAD);
        assert_int_equal(a.hdr.revision, cases[i].rev > 3 ? 3 : cases[i].rev);
        assert_int_equal(a.hdr.size, cases[i].size);
        /* What Linux needs to turn on TCP/IPv4 checksum offload. */
        uint32_t need4 = NDIS_TXCSUM_CAP_TCP4 | NDIS_TXCSUM_CAP_TCP4OPT;
        assert_int_equal(a.csum.ip4_txcsum & need4, need4);
        assert_int_equal(a.csum.ip4_txenc, NDIS_OFFLOAD_ENCAP_8023);
        /* LSO is not offered. */
        assert_int_equal(a.lsov2.ip4_encap, 0);
        assert_int_equal(a.lsov2.ip4_maxsz, 0);
    }
    /* No input object: the newest revision. */
    struct ndis_offload a;
    uint32_t len = sizeof(a);
    assert_int_equal(rndis_query(v, RNDIS_OID_TCP_OFFLOAD_CURRENT_CONFIG, NULL, 0, &a, &len),
                     RNDIS_STATUS_SUCCESS);
    assert_int_equal(len, NDIS_OFFLOAD_SIZE_REV3);
}

static void rndis_query__offload_caps_bad_ndis_header__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    rndis_init(v, NULL);
    static const struct ndis_obj_hdr bad[] = {
        {NDIS_OBJTYPE_DEFAULT, 3, NDIS_OFFLOAD_SIZE_REV3}, /* wrong type */
        {NDIS_OBJTYPE_OFFLOAD, 0, NDIS_OFFLOAD_SIZE_REV3}, /* revision 0 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t q[NDIS_OFFLOAD_SIZE_REV3] = {0};
        memcpy(q, &bad[i], sizeof(bad[i]));
        struct netvsp_stats b = nstats(v);
        assert_int_equal(rndis_query(v, RNDIS_OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES, q, sizeof(q),
                                     NULL, NULL),
                         RNDIS_STATUS_INVALID_DATA);
        expect_err(v, &b, NETVSP_ERR_OID);
    }
}

static void rndis_set__packet_filter__link_follows(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    rndis_init(v, NULL);
    assert_false(vsw_port_link(v->port));
    set_filter(v, RNDIS_FILTER_DIRECTED | RNDIS_FILTER_MULTICAST | RNDIS_FILTER_BROADCAST);
    assert_true(vsw_port_link(v->port));
    uint32_t want = RNDIS_FILTER_DIRECTED | RNDIS_FILTER_MULTICAST | RNDIS_FILTER_BROADCAST;
    assert_int_equal(nstats(v).packet_filter, want);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_CURRENT_PACKET_FILTER), want);
    set_filter(v, 0);
    assert_false(vsw_port_link(v->port));
    set_filter(v, RNDIS_FILTER_PROMISCUOUS);
    assert_true(vsw_port_link(v->port));
    /* Too short a value: refused and counted, filter unchanged. */
    struct netvsp_stats b = nstats(v);
    uint16_t shortv = 0;
    assert_int_equal(rndis_set(v, RNDIS_OID_GEN_CURRENT_PACKET_FILTER, &shortv, 2),
                     RNDIS_STATUS_INVALID_LENGTH);
    expect_err(v, &b, NETVSP_ERR_OID);
    assert_int_equal(nstats(v).packet_filter, RNDIS_FILTER_PROMISCUOUS);
}

static void rndis_set__other_oids__accepted_or_not_supported(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct netvsp_stats b = nstats(v);
    uint8_t mc[12] = {0x01, 0x00, 0x5e, 0, 0, 1, 0x01, 0x00, 0x5e, 0, 0, 2};
    assert_int_equal(rndis_set(v, RNDIS_OID_802_3_MULTICAST_LIST, mc, sizeof(mc)),
                     RNDIS_STATUS_SUCCESS);
    uint32_t x = 1;
    assert_int_equal(rndis_set(v, 0x0bad0bad, &x, 4), RNDIS_STATUS_NOT_SUPPORTED);
    assert_int_equal(rndis_set_type(v, RNDIS_MSG_SET_EX, RNDIS_OID_GEN_CURRENT_PACKET_FILTER, &x, 4),
                     RNDIS_STATUS_NOT_SUPPORTED);
    expect_no_err(v, &b);
}

static void rndis_keepalive__answered_with_request_id(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct rndis_keepalive_req r = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(r)},
                                    .req_id = 0x4b41};
    uint8_t resp[64];
    uint32_t rl;
    assert_int_equal(rndis_ctrl(v, &r, sizeof(r), resp, sizeof(resp), &rl), NVSP_STAT_SUCCESS);
    struct rndis_keepalive_cmplt c;
    assert_int_equal(rl, sizeof(c));
    memcpy(&c, resp, sizeof(c));
    assert_int_equal(c.hdr.type, RNDIS_MSG_KEEPALIVE_C);
    assert_int_equal(c.req_id, 0x4b41);
    assert_int_equal(c.status, RNDIS_STATUS_SUCCESS);
}

static void rndis_reset__answered_reset_c(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct rndis_reset_req r = {.hdr = {.type = RNDIS_MSG_RESET, .len = sizeof(r)}};
    uint8_t resp[64];
    uint32_t rl;
    assert_int_equal(rndis_ctrl(v, &r, sizeof(r), resp, sizeof(resp), &rl), NVSP_STAT_SUCCESS);
    struct rndis_reset_cmplt c;
    assert_int_equal(rl, sizeof(c));
    memcpy(&c, resp, sizeof(c));
    assert_int_equal(c.hdr.type, RNDIS_MSG_RESET_C);
    assert_int_equal(c.status, RNDIS_STATUS_SUCCESS);
    assert_int_equal(c.addressing_reset, 0);
}

static void rndis_halt__no_answer__link_down(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct rndis_halt_req r = {.hdr = {.type = RNDIS_MSG_HALT, .len = sizeof(r)}, .req_id = 9};
    uint8_t resp[64];
    uint32_t rl;
    assert_int_equal(rndis_ctrl(v, &r, sizeof(r), resp, sizeof(resp), &rl), NVSP_STAT_SUCCESS);
    assert_int_equal(rl, 0);
    assert_false(vsw_port_link(v->port));
    assert_false(nstats(v).rndis_ready);
}

static void nvsp_misc__subchannel_oid_query_ex__answered(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct netvsp_stats b = nstats(v);
    struct nvsp_msg_subchannel sc = {.type = NVSP_MSG5_SUBCHANNEL,
                                     .op_or_status = NVSP_SUBCHANNEL_ALLOCATE,
                                     .num_subchannels = 3};
    struct nvsp_msg_subchannel sa;
    nvsp_request(v, &sc, sizeof(sc), &sa, sizeof(sa), NULL);
    assert_int_equal(sa.type, NVSP_MSG5_SUBCHANNEL);
    assert_int_not_equal(sa.op_or_status, NVSP_STAT_SUCCESS);
    assert_int_equal(sa.num_subchannels, 0);
    struct nvsp_msg_oid_query_ex q = {.type = NVSP_MSG5_OID_QUERY_EX,
                                      .oid = RNDIS_OID_GEN_LINK_SPEED};
    uint32_t qa[3];
    nvsp_request(v, &q, sizeof(q), qa, sizeof(qa), NULL);
    assert_int_equal(qa[0], NVSP_MSG5_OID_QUERY_EX_COMPLETE);
    assert_int_equal(qa[1], RNDIS_STATUS_NOT_SUPPORTED);
    expect_no_err(v, &b);
}

/*
 * SWITCH_DATA_PATH is completed with an empty completion: Linux's
 * netvsc_switch_datapath() sleeps until netvsc_send_completion() sees a
 * completion with no payload for it, and OpenVMM's netvsp completes the
 * request with send_completion(id, None). A completion with a body hangs
 * Linux. Without COMPLETION_REQUESTED nothing is sent.
 */
static void switch_data_path__completion_requested__completed_without_payload(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct netvsp_stats b = nstats(v);
    for (uint32_t path = 0; path <= 1; path++) {
        struct nvsp_msg_switch_data_path sw = {.type = NVSP_MSG4_SWITCH_DATA_PATH,
                                               .active_datapath = path};
        uint32_t ans_len = 99;
        uint8_t ans[8];
        nvsp_request(v, &sw, sizeof(sw), ans, sizeof(ans), &ans_len);
        assert_int_equal(ans_len, 0);
        assert_int_equal(v->ncomp, 1);
    }
    struct nvsp_msg_switch_data_path sw = {.type = NVSP_MSG4_SWITCH_DATA_PATH};
    inbox_clear(v);
    nvsp_send(v, &sw, sizeof(sw), 4242, false);
    pump(v);
    collect(v);
    assert_int_equal(v->ncomp, 0);
    expect_no_err(v, &b);
}

/* --- data, guest to switch ----------------------------------------------- */

static void packet_msg__in_send_section__mbuf_with_exact_bytes(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct netvsp_stats b = nstats(v);
    static const uint32_t lens[] = {14, 60, 1000, FRAME_1514};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t frame[FRAME_1514], msg[2048];
        make_frame(frame, lens[i], MAC_OTHER, (uint8_t)i);
        uint32_t len = build_packet(msg, NULL, 0, frame, lens[i]);
        inbox_clear(v);
        uint64_t tid = rndis_send_section(v, 1 + (uint32_t)i, NVSP_CHANNEL_TYPE_DATA, msg, len);
        assert_int_equal(pump(v), 1);
        collect(v);
        assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
        assert_int_equal(v->nrx, 1);
        assert_mbuf_eq(v->rx[0], frame, lens[i]);
        assert_int_equal(v->rx[0]->ol_flags & RTE_MBUF_F_TX_L4_MASK, 0);
        free_rx(v);
    }
    expect_no_err(v, &b);
}

static void packet_msg__linux_partial_copy__header_in_section_frame_gpa_direct(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    /* Frame of 1400 bytes in two ranges over non-adjacent pages:
     * 500 bytes at page 5 offset 4000 (continuing on page 7), then 900
     * bytes at page 9 offset 0. */
    uint8_t frame[1400];
    make_frame(frame, sizeof(frame), MAC_OTHER, 0x21);
    memcpy(v->scratch + 5 * HV_PAGE_SIZE + 4000, frame, 96);
    memcpy(v->scratch + 7 * HV_PAGE_SIZE, frame + 96, 404);
    memcpy(v->scratch + 9 * HV_PAGE_SIZE, frame + 500, 900);
    struct grange r[2] = {
        {.byte_count = 500, .byte_offset = 4000, .npfn = 2,
         .pfn = {v->scratch_pfn + 5, v->scratch_pfn + 7}},
        {.byte_count = 900, .byte_offset = 0, .npfn = 1, .pfn = {v->scratch_pfn + 9}},
    };
    uint8_t ppis[16];
    uint32_t pl = put_ppi(ppis, RNDIS_PPI_HASH_VALUE, 0x12345678);
    struct rndis_packet_msg pm = {
        .hdr = {.type = RNDIS_MSG_PACKET, .len = (uint32_t)sizeof(pm) + pl + sizeof(frame)},
        .data_offset = 36 + pl,
        .data_len = sizeof(frame),
        .ppi_offset = 36,
        .ppi_len = pl,
    };
    memcpy(section(v, 3), &pm, sizeof(pm));
    memcpy(section(v, 3) + sizeof(pm), ppis, pl);
    uint8_t ext[256];
    uint32_t el = gpa_ext(ext, r, 2, 2);
    struct netvsp_stats b = nstats(v);
    uint64_t tid = rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, 3, (uint32_t)sizeof(pm) + pl, ext, el);
    assert_int_equal(pump(v), 1);
    collect(v);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    assert_mbuf_eq(v->rx[0], frame, sizeof(frame));
    expect_no_err(v, &b);
}

static void packet_msg__all_gpa_direct__mbuf_with_exact_bytes(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[300], msg[400];
    make_frame(frame, sizeof(frame), MAC_OTHER, 0x33);
    uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    memcpy(v->scratch + 12 * HV_PAGE_SIZE + 4000, msg, len); /* crosses into page 13 */
    struct grange r = scratch_range(v, 12, 4000, len);
    uint8_t ext[64];
    uint32_t el = gpa_ext(ext, &r, 1, 1);
    uint64_t tid = rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, NVSP_SECTION_NONE, 0, ext, el);
    assert_int_equal(pump(v), 1);
    collect(v);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    assert_mbuf_eq(v->rx[0], frame, sizeof(frame));
}

/* Send one frame of len bytes, ethertype et, GPA-direct; how many the
 * switch got. */
static int send_sized(struct vm *v, uint32_t len, uint16_t et)
{
    static uint8_t frame[2048], msg[2200];
    make_frame(frame, len, MAC_OTHER, 0x55);
    frame[12] = (uint8_t)(et >> 8);
    frame[13] = (uint8_t)et;
    uint32_t mlen = build_packet(msg, NULL, 0, frame, len);
    memcpy(v->scratch + 12 * HV_PAGE_SIZE, msg, mlen);
    struct grange r = scratch_range(v, 12, 0, mlen);
    uint8_t ext[64];
    uint32_t el = gpa_ext(ext, &r, 1, 1);
    rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, NVSP_SECTION_NONE, 0, ext, el);
    int got = pump(v);
    collect(v);
    free_rx(v);
    return got;
}

static void packet_msg__inband_vlan_tag__four_bytes_over_frame_size_allowed(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v); /* frame size 1514 */
    struct netvsp_stats b = nstats(v);
    /* A full-size frame with its 802.1Q tag in the frame: 1518 bytes. */
    assert_int_equal(send_sized(v, 1518, 0x8100), 1);
    assert_int_equal(nstats(v).rx_frames_too_big, b.rx_frames_too_big);
    /* The same length untagged is too big; so is a tagged one a byte longer. */
    assert_int_equal(send_sized(v, 1518, 0x0800), 0);
    assert_int_equal(send_sized(v, 1519, 0x8100), 0);
    assert_int_equal(nstats(v).rx_frames_too_big, b.rx_frames_too_big + 2);
}

static void packet_msg__jumbo_over_gpa_direct__chained_mbuf_exact(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_ver(v, V61, 9014);
    static uint8_t frame[9014];
    make_frame(frame, sizeof(frame), MAC_OTHER, 0x44);
    memcpy(v->scratch + HV_PAGE_SIZE, frame, sizeof(frame));
    struct rndis_packet_msg pm = {
        .hdr = {.type = RNDIS_MSG_PACKET, .len = (uint32_t)sizeof(pm) + sizeof(frame)},
        .data_offset = 36,
        .data_len = sizeof(frame),
    };
    memcpy(section(v, 2), &pm, sizeof(pm));
    struct grange r = scratch_range(v, 1, 0, sizeof(frame));
    uint8_t ext[128];
    uint32_t el = gpa_ext(ext, &r, 1, 1);
    rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, 2, sizeof(pm), ext, el);
    assert_int_equal(pump(v), 1);
    assert_int_equal(v->nrx, 1);
    assert_true(v->rx[0]->nb_segs > 1);
    assert_mbuf_eq(v->rx[0], frame, sizeof(frame));
    /* And one byte more is too big. */
    free_rx(v);
    struct netvsp_stats b = nstats(v);
    struct vsw_port_stats pb = pstats(v);
    pm.hdr.len += 1;
    pm.data_len += 1;
    memcpy(section(v, 2), &pm, sizeof(pm));
    r = scratch_range(v, 1, 0, sizeof(frame) + 1);
    el = gpa_ext(ext, &r, 1, 1);
    rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, 2, sizeof(pm), ext, el);
    assert_int_equal(pump(v), 0);
    assert_int_equal(nstats(v).rx_frames_too_big, b.rx_frames_too_big + 1);
    assert_int_equal(pstats(v).drops[VSW_DROP_RX_TOO_BIG], pb.drops[VSW_DROP_RX_TOO_BIG] + 1);
}

static void packet_msg__several_in_one_send__all_delivered_in_order(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frames[3][200], *s = section(v, 4);
    uint32_t off = 0;
    static const uint32_t lens[3] = {61, 150, 99};
    for (int i = 0; i < 3; i++) {
        make_frame(frames[i], lens[i], MAC_OTHER, (uint8_t)(0x50 + i));
        if (i < 2)
            off += build_packet_padded(s + off, frames[i], lens[i]);
        else /* the last one is not padded (Linux: no xmit_more) */
            off += build_packet(s + off, NULL, 0, frames[i], lens[i]);
    }
    uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_DATA, 4, off);
    assert_int_equal(pump(v), 3);
    collect(v);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    for (int i = 0; i < 3; i++)
        assert_mbuf_eq(v->rx[i], frames[i], lens[i]);
}

/*
 * Messages packed into one send follow one another at exactly their
 * message_length, whatever it is: OpenVMM's netvsp skips message_length
 * bytes to the next header (handle_rndis_packet_messages), as vmswitch
 * does; a walk in 8-byte-rounded steps reads the second header 3 bytes
 * late here.
 */
static void packet_msg__packed_without_padding__next_at_exact_message_length(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frames[3][200], *s = section(v, 4);
    static const uint32_t lens[3] = {61, 150, 99}; /* messages of 105, 194, 143 bytes */
    uint32_t off = 0;
    for (int i = 0; i < 3; i++) {
        make_frame(frames[i], lens[i], MAC_OTHER, (uint8_t)(0x60 + i));
        off += build_packet(s + off, NULL, 0, frames[i], lens[i]);
    }
    struct netvsp_stats b = nstats(v);
    uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_DATA, 4, off);
    assert_int_equal(pump(v), 3);
    collect(v);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    for (int i = 0; i < 3; i++)
        assert_mbuf_eq(v->rx[i], frames[i], lens[i]);
    expect_no_err(v, &b);
}

/*
 * The walk keeps every bound: a following message_length of 0, one shorter
 * than a header, one running past what was sent, and trailing bytes too
 * few for a header are all refused and counted (OpenVMM: RndisMessageTooSmall
 * or a failed read of the next header).
 */
static void packet_msg__packed_bad_next_length__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_OTHER, 0x70);
    static const struct {
        uint32_t next_len; /* message_length of the second header; 0xffff: no header */
        uint32_t supplied; /* bytes of the second message sent */
    } cases[] = {
        {0, 44}, {4, 44}, {7, 44}, {44 + 64 + 1, 44 + 64}, {0xffffffffu, 44 + 64},
        {0xffff, 4}, {0xffff, 7},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *s = section(v, 6);
        uint32_t first = build_packet(s, NULL, 0, frame, sizeof(frame));
        build_packet(s + first, NULL, 0, frame, sizeof(frame));
        if (cases[i].next_len != 0xffff)
            memcpy(s + first + 4, &cases[i].next_len, 4);
        struct netvsp_stats b = nstats(v);
        inbox_clear(v);
        uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_DATA, 6, first + cases[i].supplied);
        pump(v);
        collect(v);
        free_rx(v);
        expect_err(v, &b, NETVSP_ERR_RNDIS_LEN);
        assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                         NVSP_STAT_INVALID_RNDIS_PKT);
    }
}

static void packet_msg__more_than_max_per_message__refused_after_max(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct rndis_init_cmplt ic;
    rndis_init(v, &ic); /* again: to learn the limit */
    uint8_t frame[64], *s = section(v, 4);
    uint32_t off = 0;
    for (uint32_t i = 0; i < ic.max_pkts_per_msg + 1; i++) {
        make_frame(frame, sizeof(frame), MAC_OTHER, (uint8_t)i);
        off += build_packet_padded(s + off, frame, sizeof(frame));
    }
    struct netvsp_stats b = nstats(v);
    uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_DATA, 4, off);
    pump(v);
    collect(v);
    assert_int_equal(v->nrx, ic.max_pkts_per_msg);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                     NVSP_STAT_INVALID_RNDIS_PKT);
    expect_err(v, &b, NETVSP_ERR_RNDIS_LEN);
}

static void packet_msg__checksum_ppi__mbuf_offload_flags_set(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[200], msg[400], ppis[16];
    /* TCP over IPv4, transport header at 34. */
    make_frame(frame, sizeof(frame), MAC_OTHER, 1);
    uint32_t pl = put_ppi(ppis, RNDIS_PPI_CSUM_INFO,
                          RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP | (34u << RNDIS_TXCSUM_THOFF_SHIFT));
    uint32_t len = build_packet(msg, ppis, pl, frame, sizeof(frame));
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 1);
    struct rte_mbuf *m = v->rx[0];
    assert_mbuf_eq(m, frame, sizeof(frame));
    assert_int_equal(m->ol_flags & RTE_MBUF_F_TX_L4_MASK, RTE_MBUF_F_TX_TCP_CKSUM);
    assert_true(m->ol_flags & RTE_MBUF_F_TX_IPV4);
    assert_int_equal(m->l2_len, 14);
    assert_int_equal(m->l3_len, 20);
    free_rx(v);
    /* UDP over IPv6, transport header at 54. */
    make_frame(frame, sizeof(frame), MAC_OTHER, 2);
    frame[12] = 0x86;
    frame[13] = 0xdd;
    frame[14] = 0x60;
    pl = put_ppi(ppis, RNDIS_PPI_CSUM_INFO,
                 RNDIS_TXCSUM_IPV6 | RNDIS_TXCSUM_UDP | (54u << RNDIS_TXCSUM_THOFF_SHIFT));
    len = build_packet(msg, ppis, pl, frame, sizeof(frame));
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 1);
    m = v->rx[0];
    assert_int_equal(m->ol_flags & RTE_MBUF_F_TX_L4_MASK, RTE_MBUF_F_TX_UDP_CKSUM);
    assert_true(m->ol_flags & RTE_MBUF_F_TX_IPV6);
    assert_int_equal(m->l3_len, 40);
}

static void packet_msg__checksum_ppi_inconsistent__dropped_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    static const uint32_t bad[] = {
        RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_IPV6 | RNDIS_TXCSUM_TCP | (34u << 16), /* both IPs */
        RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP | RNDIS_TXCSUM_UDP | (34u << 16),  /* both L4 */
        RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP | (20u << 16),   /* inside the IP header */
        RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP | (190u << 16),  /* TCP header past the end */
        RNDIS_TXCSUM_IPV6 | RNDIS_TXCSUM_TCP | (54u << 16),   /* frame is IPv4 */
        RNDIS_TXCSUM_TCP | (34u << 16),                        /* no IP version */
        RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP | RNDIS_TXCSUM_IP_HDR | (34u << 16), /* not offered */
        RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_IP_HDR,               /* IP header only: not offered */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t frame[200], msg[400], ppis[16];
        make_frame(frame, sizeof(frame), MAC_OTHER, (uint8_t)i);
        uint32_t pl = put_ppi(ppis, RNDIS_PPI_CSUM_INFO, bad[i]);
        uint32_t len = build_packet(msg, ppis, pl, frame, sizeof(frame));
        struct netvsp_stats b = nstats(v);
        rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
        assert_int_equal(pump(v), 0);
        expect_err(v, &b, NETVSP_ERR_OFFLOAD);
    }
}

/* A guest that puts tags into the frame itself (a VLAN interface without
 * VLAN offload, a priority tag) and leaves its checksums to the network:
 * the transport offset counts those tags, and the IP header is found
 * behind them, never at a fixed offset. Such frames are no protocol error,
 * however many the guest sends. */
static void packet_msg__checksum_ppi_behind_inband_tags__offsets_from_the_frame_no_error(
    void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct netvsp_stats b = nstats(v);
    static const struct {
        uint16_t tci[3];
        unsigned n;
    } stacks[] = {
        {{20}, 1},                    /* VLAN 20 */
        {{(5 << 13) | 20}, 1},        /* VLAN 20, priority 5 */
        {{(2 << 13) | 20}, 1},        /* priority 2: the TCI's first nibble reads as "4" */
        {{5 << 13}, 1},               /* a priority tag */
        {{0, 3 << 13, 20}, 3},        /* priority tags, then VLAN 20 */
    };
    uint8_t frame[300], msg[400], ppis[16];
    uint32_t len = 0;
    for (size_t i = 0; i < sizeof(stacks) / sizeof(stacks[0]); i++) {
        for (int v6 = 0; v6 < 2; v6++) {
            make_frame(frame, sizeof(frame), MAC_OTHER, (uint8_t)i);
            uint32_t o = 12;
            for (unsigned k = 0; k < stacks[i].n; k++, o += 4) {
                frame[o] = 0x81, frame[o + 1] = 0x00;
                frame[o + 2] = (uint8_t)(stacks[i].tci[k] >> 8);
                frame[o + 3] = (uint8_t)stacks[i].tci[k];
            }
            frame[o] = v6 ? 0x86 : 0x08;
            frame[o + 1] = v6 ? 0xdd : 0x00;
            frame[o + 2] = v6 ? 0x60 : 0x45;
            uint32_t l3 = v6 ? 40 : 20, thoff = o + 2 + l3;
            uint32_t info = (v6 ? RNDIS_TXCSUM_IPV6 | RNDIS_TXCSUM_UDP
                                : RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP) |
                            (thoff << RNDIS_TXCSUM_THOFF_SHIFT);
            uint32_t pl = put_ppi(ppis, RNDIS_PPI_CSUM_INFO, info);
            len = build_packet(msg, ppis, pl, frame, sizeof(frame));
            rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
            assert_int_equal(pump(v), 1);
            collect(v);
            inbox_clear(v);
            struct rte_mbuf *m = v->rx[0];
            assert_mbuf_eq(m, frame, sizeof(frame)); /* the switch takes the tags out */
            assert_int_equal(m->l2_len, o + 2);
            assert_int_equal(m->l3_len, l3);
            assert_int_equal(m->ol_flags & RTE_MBUF_F_TX_L4_MASK,
                             v6 ? RTE_MBUF_F_TX_UDP_CKSUM : RTE_MBUF_F_TX_TCP_CKSUM);
            assert_true(m->ol_flags & (v6 ? RTE_MBUF_F_TX_IPV6 : RTE_MBUF_F_TX_IPV4));
            free_rx(v);
            expect_no_err(v, &b);
        }
    }
    /* Far more of them than the errors that cut a guest off. */
    for (unsigned i = 0; i < NETVSP_ERRORS_MAX + 20; i++) {
        rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
        assert_int_equal(pump(v), 1);
        collect(v);
        inbox_clear(v);
        free_rx(v);
    }
    expect_no_err(v, &b);
    assert_int_equal(nstats(v).disconnects, b.disconnects);
    assert_true(vsw_port_link(v->port));
}

/* VLANs travel out of band: the guest's VLAN PPI becomes mbuf metadata and
 * the switch decides (port policy) whether this port may send that VLAN. */
static void packet_msg__vlan_ppi__tag_handed_to_switch_as_metadata(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[100], msg[200], ppis[16];
    make_frame(frame, sizeof(frame), MAC_OTHER, 7);
    uint32_t pl = put_ppi(ppis, RNDIS_PPI_VLAN, RNDIS_VLAN_MAKE(5, 3));
    uint32_t len = build_packet(msg, ppis, pl, frame, sizeof(frame));
    struct netvsp_stats b = nstats(v);
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 1);
    assert_mbuf_eq(v->rx[0], frame, sizeof(frame)); /* the frame itself stays untagged */
    assert_true(v->rx[0]->ol_flags & RTE_MBUF_F_RX_VLAN);
    assert_int_equal(v->rx[0]->vlan_tci, 5 | (3 << 13));
    free_rx(v);
    /* Without the PPI: no tag. */
    len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 1);
    assert_false(v->rx[0]->ol_flags & RTE_MBUF_F_RX_VLAN);
    expect_no_err(v, &b);
}

static void packet_msg__lso_ppi__not_offered_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[1000], msg[1200], ppis[16];
    make_frame(frame, sizeof(frame), MAC_OTHER, 8);
    uint32_t pl = put_ppi(ppis, RNDIS_PPI_LSO,
                          1400u | (34u << RNDIS_LSO_THOFF_SHIFT) | RNDIS_LSO_TYPE_V2);
    uint32_t len = build_packet(msg, ppis, pl, frame, sizeof(frame));
    struct netvsp_stats b = nstats(v);
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 0);
    expect_err(v, &b, NETVSP_ERR_OFFLOAD);
}

static void packet_msg__oversize_and_runt__dropped_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[1600], msg[1800];
    make_frame(frame, sizeof(frame), MAC_OTHER, 9);
    struct netvsp_stats b = nstats(v);
    struct vsw_port_stats pb = pstats(v);
    uint32_t len = build_packet(msg, NULL, 0, frame, FRAME_1514 + 1);
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 0);
    assert_int_equal(nstats(v).rx_frames_too_big, b.rx_frames_too_big + 1);
    assert_int_equal(pstats(v).drops[VSW_DROP_RX_TOO_BIG], pb.drops[VSW_DROP_RX_TOO_BIG] + 1);
    len = build_packet(msg, NULL, 0, frame, 13);
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 0);
    assert_int_equal(pstats(v).drops[VSW_DROP_RUNT], pb.drops[VSW_DROP_RUNT] + 1);
    expect_no_err(v, &b);
    len = build_packet(msg, NULL, 0, frame, FRAME_1514);
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 1);
}

/* --- data, switch to guest ----------------------------------------------- */

static void tx_burst__frames__arrive_in_receive_buffer_with_rndis_header(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    static const uint32_t lens[] = {60, 14, 777, FRAME_1514};
    uint8_t frames[4][FRAME_1514];
    struct rte_mbuf *m[4];
    for (int i = 0; i < 4; i++) {
        make_frame(frames[i], lens[i], MAC_A, (uint8_t)(0x60 + i));
        m[i] = frame_mbuf(frames[i], lens[i]);
    }
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(to_guest(v, m, 4), 4);
    assert_int_equal(pstats(v).tx_packets, pb.tx_packets + 4);
    collect(v);
    assert_int_equal(v->nxfer, 1); /* one burst, one transfer */
    assert_int_equal(data_frames(v), 4);
    const struct xfer *x = &v->xfer[0];
    assert_int_equal(x->nvsp.send_buf_section_index, NVSP_SECTION_NONE);
    assert_int_equal(x->payload_len, NVSP_MSG_SIZE_61);
    for (int i = 0; i < 4; i++) {
        uint32_t len, csum;
        const uint8_t *d = rx_frame(v, &x->r[i], &len, &csum);
        assert_int_equal(len, lens[i]);
        assert_memory_equal(d, frames[i], lens[i]);
        assert_int_equal(csum, UINT32_MAX);
    }
    /* Distinct sub-allocations, none of the control ones. */
    for (int i = 0; i < 4; i++) {
        assert_true(x->r[i].byte_offset / v->sub_size >= CTRL_SUBS);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(x->r[i].byte_offset, x->r[j].byte_offset);
    }
}

static void tx_burst__jumbo_frame__one_sub_allocation(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_ver(v, V61, 9014);
    static uint8_t frame[9014];
    make_frame(frame, sizeof(frame), MAC_A, 0x70);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
    collect(v);
    assert_int_equal(data_frames(v), 1);
    uint32_t len, csum;
    const uint8_t *d = rx_frame(v, &v->xfer[0].r[0], &len, &csum);
    assert_int_equal(len, sizeof(frame));
    assert_memory_equal(d, frame, sizeof(frame));
}

static void tx_burst__l4_checksum_left_to_network__checksum_ppi_says_ok(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[120];
    make_frame(frame, sizeof(frame), MAC_A, 0x71);
    struct rte_mbuf *m[2] = {frame_mbuf(frame, sizeof(frame)), frame_mbuf(frame, sizeof(frame))};
    m[0]->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_TCP_CKSUM;
    m[1]->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM;
    assert_int_equal(to_guest(v, m, 2), 2);
    collect(v);
    assert_int_equal(data_frames(v), 2);
    uint32_t len, csum;
    const uint8_t *d = rx_frame(v, &v->xfer[0].r[0], &len, &csum);
    assert_memory_equal(d, frame, sizeof(frame));
    assert_int_equal(csum, RNDIS_RXCSUM_TCP_OK | RNDIS_RXCSUM_IP_OK);
    rx_frame(v, &v->xfer[0].r[1], &len, &csum);
    assert_int_equal(csum, RNDIS_RXCSUM_UDP_OK | RNDIS_RXCSUM_IP_OK);
}

/* Frames to each destination, and how many the guest got. */
static unsigned deliver_mix(struct vm *v)
{
    const uint8_t *dst[] = {MAC_A, MAC_OTHER, MAC_BCAST, MAC_MCAST};
    struct rte_mbuf *m[4];
    uint8_t frame[64];
    for (int i = 0; i < 4; i++) {
        make_frame(frame, sizeof(frame), dst[i], (uint8_t)i);
        m[i] = frame_mbuf(frame, sizeof(frame));
    }
    inbox_clear(v);
    to_guest(v, m, 4);
    collect(v);
    unsigned n = data_frames(v);
    complete_all(v);
    return n;
}

static void tx_burst__packet_filter__respected(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    static const struct {
        uint32_t filter;
        unsigned delivered;
    } cases[] = {
        {RNDIS_FILTER_DIRECTED, 1},
        {RNDIS_FILTER_BROADCAST, 1},
        {RNDIS_FILTER_MULTICAST, 1},
        {RNDIS_FILTER_ALL_MULTICAST, 1},
        {RNDIS_FILTER_DIRECTED | RNDIS_FILTER_MULTICAST | RNDIS_FILTER_BROADCAST, 3},
        {RNDIS_FILTER_PROMISCUOUS, 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        set_filter(v, cases[i].filter);
        struct netvsp_stats b = nstats(v);
        assert_int_equal(deliver_mix(v), cases[i].delivered);
        assert_int_equal(nstats(v).tx_filtered, b.tx_filtered + 4 - cases[i].delivered);
    }
    /* Filter 0: the link is down and frames are dropped as such. */
    set_filter(v, 0);
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(deliver_mix(v), 0);
    assert_int_equal(pstats(v).drops[VSW_DROP_LINK_DOWN], pb.drops[VSW_DROP_LINK_DOWN] + 4);
}

static void tx_burst__frame_above_frame_size__dropped_too_big(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[FRAME_1514 + 1];
    make_frame(frame, sizeof(frame), MAC_A, 1);
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 0);
    assert_int_equal(pstats(v).drops[VSW_DROP_TOO_BIG], pb.drops[VSW_DROP_TOO_BIG] + 1);
    assert_int_equal(collect(v), 0);
}

static void tx_burst__before_rndis_ready__dropped_link_down(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 1);
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 0);
    assert_int_equal(pstats(v).drops[VSW_DROP_LINK_DOWN], pb.drops[VSW_DROP_LINK_DOWN] + 1);
}

static void completion__frees_sub_allocations__delivery_resumes(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint32_t ndata = v->nsub - CTRL_SUBS;
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 0x11);
    uint32_t sent = 0;
    while (sent < ndata) {
        struct rte_mbuf *m[BURST];
        uint16_t n = ndata - sent < BURST ? (uint16_t)(ndata - sent) : BURST;
        for (uint16_t i = 0; i < n; i++)
            m[i] = frame_mbuf(frame, sizeof(frame));
        assert_int_equal(to_guest(v, m, n), n);
        sent += n;
        collect(v); /* keep the ring from filling; transfers stay outstanding */
    }
    assert_int_equal(data_frames(v), ndata);
    /* The receive buffer is full now. */
    struct netvsp_stats b = nstats(v);
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 0);
    assert_int_equal(nstats(v).tx_no_buffer, b.tx_no_buffer + 1);
    assert_int_equal(pstats(v).drops[VSW_DROP_QUEUE_FULL], pb.drops[VSW_DROP_QUEUE_FULL] + 1);
    /* Give one transfer back: exactly its sub-allocations come free. */
    struct xfer first = v->xfer[0];
    complete_xfer_raw(v, first.tid);
    pump(v);
    /* The same completion again is for nothing outstanding. */
    b = nstats(v);
    complete_xfer_raw(v, first.tid);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_COMPLETION_ID);
    inbox_clear(v);
    for (uint32_t i = 0; i < first.nranges; i++)
        assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 0);
    collect(v);
    assert_int_equal(data_frames(v), first.nranges);
    /* The ranges reuse what was given back. */
    for (unsigned i = 0; i < v->nxfer; i++) {
        bool seen = false;
        for (uint32_t j = 0; j < first.nranges; j++)
            seen |= v->xfer[i].r[0].byte_offset == first.r[j].byte_offset;
        assert_true(seen);
    }
}

/*
 * A transfer's transaction id is the index of its first receive section and
 * nothing else: OpenVMM's netvsp sends the sub-allocation index (its
 * control answers use "id as u64"), as vmswitch does, and DPDK's netvsc
 * (hn_nvs_handle_rxbuf) uses the id to index its section table, dropping a
 * transfer whose id is not a section. Linux and FreeBSD echo it back.
 */
static void xfer__transaction_id__index_of_first_section(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    /* A control answer's transfer. */
    struct rndis_keepalive_req k = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(k)},
                                    .req_id = 77};
    inbox_clear(v);
    rndis_send_section(v, CTRL_SEC, NVSP_CHANNEL_TYPE_CONTROL, &k, sizeof(k));
    pump(v);
    collect(v);
    assert_int_equal(v->nxfer, 1);
    assert_int_equal(v->xfer[0].tid, v->xfer[0].r[0].byte_offset / v->sub_size);
    assert_true(v->xfer[0].tid < CTRL_SUBS);
    complete_all(v);
    /* Data transfers, one frame and a batch. */
    inbox_clear(v);
    uint8_t frame[80];
    make_frame(frame, sizeof(frame), MAC_A, 0x21);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
    struct rte_mbuf *m[5];
    for (int i = 0; i < 5; i++)
        m[i] = frame_mbuf(frame, sizeof(frame));
    assert_int_equal(to_guest(v, m, 5), 5);
    collect(v);
    assert_int_equal(v->nxfer, 2);
    for (unsigned i = 0; i < v->nxfer; i++) {
        const struct xfer *x = &v->xfer[i];
        assert_int_equal(x->tid, x->r[0].byte_offset / v->sub_size);
        assert_true(x->tid >= CTRL_SUBS && x->tid < v->nsub);
    }
    /* Completing exactly those ids frees them, without complaint. */
    struct netvsp_stats b = nstats(v);
    complete_all(v);
    expect_no_err(v, &b);
}

static void completion__unknown_transaction_id__counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 0x12);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
    collect(v);
    uint64_t real = v->xfer[0].tid;
    const uint64_t bad[] = {0, 1, 0x1234, ~0ull, real + 1, real ^ (1ull << 40),
                            (real & ~0xffffffffull) | 0xfffffff0u};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct netvsp_stats b = nstats(v);
        complete_xfer_raw(v, bad[i]);
        pump(v);
        expect_err(v, &b, NETVSP_ERR_COMPLETION_ID);
    }
    struct netvsp_stats b = nstats(v);
    complete_xfer_raw(v, real);
    pump(v);
    expect_no_err(v, &b);
}

static void tx_burst__ring_to_guest_full__dropped_counted_then_resumes(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 0x14);
    struct netvsp_stats b = nstats(v);
    struct vsw_port_stats pb = pstats(v);
    /* The guest does not read its ring: one transfer per frame fills it
     * long before the receive buffer runs out. */
    unsigned sent = 0;
    while (sent < 4096 && frame_to_guest(v, frame, sizeof(frame)) == 1)
        sent++;
    assert_true(sent > 0 && sent < v->nsub - CTRL_SUBS);
    assert_int_equal(nstats(v).tx_ring_full, b.tx_ring_full + 1);
    assert_int_equal(nstats(v).tx_no_buffer, b.tx_no_buffer);
    assert_int_equal(pstats(v).drops[VSW_DROP_QUEUE_FULL], pb.drops[VSW_DROP_QUEUE_FULL] + 1);
    /* Its sub-allocation went back: after the guest catches up, all flows. */
    collect(v);
    assert_int_equal(data_frames(v), sent);
    complete_all(v);
    inbox_clear(v);
    for (unsigned i = 0; i < v->nsub - CTRL_SUBS; i += 64) {
        assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
        collect(v);
        complete_all(v);
    }
    expect_no_err(v, &b);
}

static bool fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* How a worker sleeps on the port: wait_fd is the channel's event fd while
 * open; wait_arm says whether work is already there; the guest's signal
 * makes the fd readable; wait_disarm consumes it. */
static void port_wait__guest_signal__fd_readable_and_arm_reports_work(void **state)
{
    struct vm *v = F(state)->a;
    const struct vsw_port_class *cls = v->port->cls;
    bring_up(v);
    int fd = cls->wait_fd(v->port);
    assert_true(fd >= 0);
    cls->wait_disarm(v->port);
    assert_false(cls->wait_arm(v->port)); /* nothing to do: may sleep */
    assert_false(fd_readable(fd));
    struct nvsp_msg_switch_data_path sw = {.type = NVSP_MSG4_SWITCH_DATA_PATH};
    nvsp_send(v, &sw, sizeof(sw), 5, true);
    assert_int_equal(vmbus_gchan_signal(v->ch), 0);
    assert_true(fd_readable(fd));
    cls->wait_disarm(v->port);
    assert_false(fd_readable(fd));
    assert_true(cls->wait_arm(v->port)); /* the message is still waiting */
    cls->wait_disarm(v->port);
    inbox_clear(v);
    pump(v);
    collect(v);
    assert_non_null(find_comp(v, 5));
    assert_false(cls->wait_arm(v->port));
    /* No channel, nothing to wait for. */
    assert_int_equal(vmbus_client_close(v->ch), 0);
    v->ch = NULL;
    assert_int_equal(cls->wait_fd(v->port), -1);
    assert_false(cls->wait_arm(v->port));
    open_chan(v);
}

/* --- NVSP validation ----------------------------------------------------- */

static void nvsp__messages_before_init__refused_out_of_order(void **state)
{
    struct vm *v = F(state)->a;
    struct nvsp_msg_ndis_config cfg = {.type = NVSP_MSG2_SEND_NDIS_CONFIG, .mtu = FRAME_1514};
    struct nvsp_msg_ndis_ver nv = {.type = NVSP_MSG1_SEND_NDIS_VER, .ndis_major = 6};
    struct nvsp_msg_send_buf rb = {.type = NVSP_MSG1_SEND_RECV_BUF, .gpadl = v->rgpadl,
                                   .id = NVSP_RECV_BUF_ID};
    struct nvsp_msg_send_buf sb = {.type = NVSP_MSG1_SEND_SEND_BUF, .gpadl = v->sgpadl};
    struct nvsp_msg_rndis_pkt rp = {.type = NVSP_MSG1_SEND_RNDIS_PKT, .channel_type = 1,
                                    .send_buf_section_index = 0, .send_buf_section_size = 24};
    struct nvsp_msg_revoke_buf rv = {.type = NVSP_MSG1_REVOKE_RECV_BUF, .id = NVSP_RECV_BUF_ID};
    struct nvsp_msg_subchannel sc = {.type = NVSP_MSG5_SUBCHANNEL, .op_or_status = 1,
                                     .num_subchannels = 1};
    const struct {
        const void *m;
        uint32_t len;
        bool want;
    } msgs[] = {
        {&cfg, sizeof(cfg), false}, {&nv, sizeof(nv), false}, {&rb, sizeof(rb), true},
        {&sb, sizeof(sb), true},    {&rp, sizeof(rp), true},  {&rv, sizeof(rv), false},
        {&sc, sizeof(sc), true},
    };
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        struct netvsp_stats b = nstats(v);
        inbox_clear(v);
        nvsp_send(v, msgs[i].m, msgs[i].len, 100 + i, msgs[i].want);
        pump(v);
        expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
        /* Dropped: no answer, no state. */
        assert_int_equal(collect(v), 0);
    }
    assert_int_equal(nstats(v).nvsp_version, 0);
}

static void nvsp__duplicate_setup_messages__refused_out_of_order(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    /* INIT again: dropped, no answer. */
    struct netvsp_stats b = nstats(v);
    struct nvsp_msg_init in = {.type = NVSP_MSG_INIT, .min_protocol_ver = V61,
                               .max_protocol_ver = V61};
    inbox_clear(v);
    nvsp_send(v, &in, sizeof(in), 77, true);
    pump(v);
    assert_int_equal(collect(v), 0);
    expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
    /* NDIS_CONFIG again (after RECV_BUF too), NDIS_VER again. */
    b = nstats(v);
    ndis_config(v, 9014);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
    assert_int_equal(nstats(v).frame_size, FRAME_1514);
    b = nstats(v);
    ndis_ver(v);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
    /* Buffers again: answered FAIL. */
    b = nstats(v);
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
    b = nstats(v);
    assert_int_equal(send_buf(v, v->sgpadl, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
    /* The first registration still stands. */
    rndis_init(v, NULL);
}

static void nvsp__ndis_config_after_recv_buf__refused(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_1, NVSP_PROTOCOL_VERSION_1, NULL, NULL),
                     NVSP_STAT_SUCCESS);
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
    reopen(v);
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_2, NULL, NULL),
                     NVSP_STAT_SUCCESS);
    ndis_config(v, FRAME_1514);
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
    struct netvsp_stats b = nstats(v);
    ndis_config(v, 9014);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
}

static void recv_buf__before_ndis_config_at_v2__refused_out_of_order(void **state)
{
    struct vm *v = F(state)->a;
    static const uint32_t vers[] = {NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_4, V61};
    for (size_t i = 0; i < sizeof(vers) / sizeof(vers[0]); i++) {
        if (i)
            reopen(v);
        assert_int_equal(nvsp_init(v, vers[i], vers[i], NULL, NULL), NVSP_STAT_SUCCESS);
        ndis_ver(v);
        struct netvsp_stats b = nstats(v);
        assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_FAIL);
        expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
        /* After NDIS_CONFIG it works. */
        ndis_config(v, FRAME_1514);
        assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
    }
    /* NVSP 1 has no NDIS_CONFIG: RECV_BUF needs none. */
    reopen(v);
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_1, NVSP_PROTOCOL_VERSION_1, NULL, NULL),
                     NVSP_STAT_SUCCESS);
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
}

static void nvsp__request_without_completion_requested__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    struct nvsp_msg_init in = {.type = NVSP_MSG_INIT, .min_protocol_ver = V61,
                               .max_protocol_ver = V61};
    struct netvsp_stats b = nstats(v);
    nvsp_send(v, &in, sizeof(in), 1, false);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NO_COMPLETION);
    assert_int_equal(collect(v), 0);
    assert_int_equal(nstats(v).nvsp_version, 0);
    assert_int_equal(nvsp_init(v, V61, V61, NULL, NULL), NVSP_STAT_SUCCESS);
    ndis_config(v, FRAME_1514);
    ndis_ver(v);
    struct nvsp_msg_send_buf rb = {.type = NVSP_MSG1_SEND_RECV_BUF, .gpadl = v->rgpadl,
                                   .id = NVSP_RECV_BUF_ID};
    struct nvsp_msg_send_buf sb = {.type = NVSP_MSG1_SEND_SEND_BUF, .gpadl = v->sgpadl};
    struct nvsp_msg_rndis_pkt rp = {.type = NVSP_MSG1_SEND_RNDIS_PKT, .channel_type = 1,
                                    .send_buf_section_index = 0, .send_buf_section_size = 24};
    const struct {
        const void *m;
        uint32_t len;
    } msgs[] = {{&rb, sizeof(rb)}, {&sb, sizeof(sb)}, {&rp, sizeof(rp)}};
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        b = nstats(v);
        inbox_clear(v);
        nvsp_send(v, msgs[i].m, msgs[i].len, 0, false);
        pump(v);
        expect_err(v, &b, NETVSP_ERR_NO_COMPLETION);
        assert_int_equal(collect(v), 0);
    }
    /* Nothing was registered. */
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
    assert_int_equal(send_buf(v, v->sgpadl, NULL), NVSP_STAT_SUCCESS);
}

static void nvsp__short_messages__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    /* Lengths after the ring's padding to 8: each below what its type needs. */
    struct nvsp_msg_init in = {.type = NVSP_MSG_INIT, .min_protocol_ver = V61,
                               .max_protocol_ver = V61};
    struct netvsp_stats b = nstats(v);
    put_pkt(v, VMBUS_PKT_DATA_INBAND, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, 1, NULL, 0, NULL, 0);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NVSP_SHORT);
    b = nstats(v);
    put_pkt(v, VMBUS_PKT_DATA_INBAND, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, 2, NULL, 0, &in, 8);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NVSP_SHORT);
    assert_int_equal(collect(v), 0);
    /* The same INIT whole is fine (12 bytes, the shortest a guest may send). */
    uint64_t tid = ++v->next_tid;
    put_pkt(v, VMBUS_PKT_DATA_INBAND, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, tid, NULL, 0, &in, 12);
    pump(v);
    collect(v);
    const struct comp *ic = find_comp(v, tid);
    assert_non_null(ic);
    struct nvsp_msg_init_complete icm;
    memcpy(&icm, ic->msg, sizeof(icm));
    assert_int_equal(icm.type, NVSP_MSG_INIT_COMPLETE);
    assert_int_equal(icm.status, NVSP_STAT_SUCCESS);
    struct nvsp_msg_ndis_config cfg = {.type = NVSP_MSG2_SEND_NDIS_CONFIG, .mtu = FRAME_1514};
    struct nvsp_msg_rndis_pkt rp = {.type = NVSP_MSG1_SEND_RNDIS_PKT, .channel_type = 1};
    struct nvsp_msg_send_buf rb = {.type = NVSP_MSG1_SEND_RECV_BUF, .gpadl = v->rgpadl};
    const struct {
        const void *m;
        uint32_t len;
    } msgs[] = {{&cfg, 16}, {&rp, 8}, {&rb, 8}};
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        b = nstats(v);
        put_pkt(v, VMBUS_PKT_DATA_INBAND, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, 10 + i, NULL, 0,
                msgs[i].m, msgs[i].len);
        pump(v);
        expect_err(v, &b, NETVSP_ERR_NVSP_SHORT);
    }
}

static void nvsp__unknown_or_version_gated_type__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_2, NULL, NULL),
                     NVSP_STAT_SUCCESS);
    static const uint32_t types[] = {
        0, NVSP_MSG_INIT_COMPLETE, NVSP_MSG1_SEND_RECV_BUF_COMPLETE, 109, 120, 999, 0xffffffffu,
        NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE, /* in-band: completions are completion packets */
        NVSP_MSG4_SWITCH_DATA_PATH,        /* NVSP 4 */
        NVSP_MSG5_SUBCHANNEL,              /* NVSP 5 */
        NVSP_MSG5_OID_QUERY_EX,            /* NVSP 5 */
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        uint32_t m[10] = {types[i], 1, 1, 1};
        struct netvsp_stats b = nstats(v);
        inbox_clear(v);
        nvsp_send(v, m, sizeof(m), 50 + i, true);
        pump(v);
        expect_err(v, &b, NETVSP_ERR_NVSP_TYPE);
        assert_int_equal(collect(v), 0);
    }
    reopen(v);
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_1, NVSP_PROTOCOL_VERSION_1, NULL, NULL),
                     NVSP_STAT_SUCCESS);
    struct netvsp_stats b = nstats(v);
    ndis_config(v, FRAME_1514); /* NVSP 2 */
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NVSP_TYPE);
}

static void rndis_pkt__send_section_out_of_range__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct rndis_keepalive_req k = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(k)}};
    memcpy(section(v, 0), &k, sizeof(k));
    memcpy(section(v, 8), &k, sizeof(k));
    static const uint32_t cases[][2] = {
        {NSECTIONS, sizeof(struct rndis_keepalive_req)},   /* one past the last */
        {0x2aaaab, sizeof(struct rndis_keepalive_req)},    /* index * 6144 wraps 32 bits to 8192 */
        {0xfffffffeu, sizeof(struct rndis_keepalive_req)}, /* 64-bit start far beyond */
        {8, NVSP_SEND_SECTION_SIZE + 1},                   /* size above a section */
        {8, 0xffffffffu},                                  /* size wraps start + size */
        {8, 0},                                            /* empty */
        {NSECTIONS - 1, 0xfffffff0u},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct netvsp_stats b = nstats(v);
        inbox_clear(v);
        uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_CONTROL, cases[i][0], cases[i][1]);
        pump(v);
        collect(v);
        expect_err(v, &b, NETVSP_ERR_SECTION);
        assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                         NVSP_STAT_INVALID_RNDIS_PKT);
        assert_int_equal(v->nxfer, 0); /* not answered */
    }
    /* The last whole section is fine. */
    memcpy(section(v, NSECTIONS - 1), &k, sizeof(k));
    inbox_clear(v);
    uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_CONTROL, NSECTIONS - 1, sizeof(k));
    pump(v);
    collect(v);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    assert_int_equal(v->nxfer, 1);
}

static void rndis_pkt__section_before_send_buf__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, V61, V61, NULL, NULL), NVSP_STAT_SUCCESS);
    ndis_config(v, FRAME_1514);
    ndis_ver(v);
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
    struct netvsp_stats b = nstats(v);
    inbox_clear(v);
    uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_CONTROL, 0, 24);
    pump(v);
    collect(v);
    expect_err(v, &b, NETVSP_ERR_SECTION);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                     NVSP_STAT_INVALID_RNDIS_PKT);
}

static void rndis_pkt__before_recv_buf__not_ready(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, V61, V61, NULL, NULL), NVSP_STAT_SUCCESS);
    struct netvsp_stats b = nstats(v);
    inbox_clear(v);
    uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_CONTROL, NVSP_SECTION_NONE, 0);
    pump(v);
    collect(v);
    expect_err(v, &b, NETVSP_ERR_NOT_READY);
    assert_int_not_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
}

static void gpa_direct__bad_ranges__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[100], msg[200];
    make_frame(frame, sizeof(frame), MAC_OTHER, 1);
    uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    memcpy(v->scratch, msg, len);
    uint64_t sp = v->scratch_pfn;
    struct grange one = scratch_range(v, 0, 0, len);
    struct {
        const char *what;
        struct grange r[2];
        uint32_t n, count_field;
    } cases[] = {
        {"pfn just past memory", {{len, 0, 1, {MEM_PAGES}}}, 1, 1},
        {"pfn far past memory", {{len, 0, 1, {1ull << 52}}}, 1, 1},
        {"pfn that wraps when shifted", {{len, 0, 1, {0xfffffffffffff000ull}}}, 1, 1},
        {"second page outside", {{4096, 100, 2, {sp, MEM_PAGES + 5}}}, 1, 1},
        {"byte_offset 4096", {{len, 4096, 1, {sp}}}, 1, 1},
        {"byte_offset huge", {{len, 0xfffffff0u, 1, {sp}}}, 1, 1},
        {"byte_count 0", {{0, 0, 1, {sp}}}, 1, 1},
        {"range count 0", {one}, 1, 0},
        {"range count above records", {one}, 1, 2},
        {"range count huge", {one}, 1, 0xffffffffu},
        {"fewer pfns than bytes", {{8192, 0, 1, {sp}}}, 1, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t ext[512];
        uint32_t el = gpa_ext(ext, cases[i].r, cases[i].n, cases[i].count_field);
        struct netvsp_stats b = nstats(v);
        inbox_clear(v);
        uint64_t tid = rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, NVSP_SECTION_NONE, 0, ext, el);
        assert_int_equal(pump(v), 0);
        collect(v);
        if (nstats(v).errors[NETVSP_ERR_GPA_RANGE] != b.errors[NETVSP_ERR_GPA_RANGE] + 1)
            fail_msg("GPA-direct case '%s' not counted", cases[i].what);
        expect_err(v, &b, NETVSP_ERR_GPA_RANGE);
        assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                         NVSP_STAT_INVALID_RNDIS_PKT);
    }
    /* 33 ranges: more than any guest sends (Linux: 32). */
    struct grange many[33];
    for (int i = 0; i < 33; i++)
        many[i] = scratch_range(v, 0, (uint32_t)i * 8u, 8);
    uint8_t ext[1024];
    uint32_t el = gpa_ext(ext, many, 33, 33);
    struct netvsp_stats b = nstats(v);
    rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, NVSP_SECTION_NONE, 0, ext, el);
    assert_int_equal(pump(v), 0);
    expect_err(v, &b, NETVSP_ERR_GPA_RANGE);
    /* And the good one goes through. */
    el = gpa_ext(ext, &one, 1, 1);
    rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, NVSP_SECTION_NONE, 0, ext, el);
    assert_int_equal(pump(v), 1);
    assert_mbuf_eq(v->rx[0], frame, sizeof(frame));
}

/* --- RNDIS validation ---------------------------------------------------- */

static void rndis__message_length_inconsistent__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct rndis_keepalive_req k = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(k)}};
    static const struct {
        uint32_t msg_len, supplied;
    } cases[] = {
        {sizeof(struct rndis_keepalive_req) + 1, sizeof(struct rndis_keepalive_req)},
        {4096, sizeof(struct rndis_keepalive_req)},
        {0xffffffffu, sizeof(struct rndis_keepalive_req)},
        {7, sizeof(struct rndis_keepalive_req)},
        {0, sizeof(struct rndis_keepalive_req)},
        {sizeof(struct rndis_keepalive_req), 4}, /* not even a header supplied */
        {8, 8},                                  /* a header only: KEEPALIVE needs 12 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        k.hdr.len = cases[i].msg_len;
        memcpy(section(v, 2), &k, sizeof(k));
        struct netvsp_stats b = nstats(v);
        inbox_clear(v);
        uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_CONTROL, 2, cases[i].supplied);
        pump(v);
        collect(v);
        expect_err(v, &b, NETVSP_ERR_RNDIS_LEN);
        assert_int_equal(v->nxfer, 0);
        assert_int_equal(count_comp(v, tid), 1);
    }
    /* Short bodies of INIT and QUERY. */
    struct rndis_init_req ir = {.hdr = {.type = RNDIS_MSG_INIT, .len = 20}};
    struct rndis_query_req qr = {.hdr = {.type = RNDIS_MSG_QUERY, .len = 24}};
    uint8_t resp[64];
    uint32_t rl;
    struct netvsp_stats b = nstats(v);
    rndis_ctrl(v, &ir, 20, resp, sizeof(resp), &rl);
    assert_int_equal(rl, 0);
    expect_err(v, &b, NETVSP_ERR_RNDIS_LEN);
    b = nstats(v);
    rndis_ctrl(v, &qr, 24, resp, sizeof(resp), &rl);
    assert_int_equal(rl, 0);
    expect_err(v, &b, NETVSP_ERR_RNDIS_LEN);
}

static void rndis__type_not_allowed__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    static const uint32_t types[] = {0, RNDIS_MSG_INDICATE, 0x77, RNDIS_MSG_INIT_C,
                                     RNDIS_MSG_KEEPALIVE_C, 0xffffffffu};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        uint32_t m[8] = {types[i], 32, 1, 2, 3, 4, 5, 6};
        struct netvsp_stats b = nstats(v);
        uint8_t resp[64];
        uint32_t rl;
        rndis_ctrl(v, m, sizeof(m), resp, sizeof(resp), &rl);
        assert_int_equal(rl, 0);
        expect_err(v, &b, NETVSP_ERR_RNDIS_TYPE);
    }
    /* A control message on the data channel. */
    struct rndis_keepalive_req k = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(k)}};
    struct netvsp_stats b = nstats(v);
    inbox_clear(v);
    uint64_t tid = rndis_send_section(v, 2, NVSP_CHANNEL_TYPE_DATA, &k, sizeof(k));
    pump(v);
    collect(v);
    expect_err(v, &b, NETVSP_ERR_RNDIS_TYPE);
    assert_int_equal(v->nxfer, 0);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                     NVSP_STAT_INVALID_RNDIS_PKT);
}

static void rndis__control_after_packet_msg__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[64], *s = section(v, 5);
    make_frame(frame, sizeof(frame), MAC_OTHER, 1);
    uint32_t off = build_packet_padded(s, frame, sizeof(frame));
    struct rndis_keepalive_req k = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(k)}};
    memcpy(s + off, &k, sizeof(k));
    struct netvsp_stats b = nstats(v);
    inbox_clear(v);
    uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_CONTROL, 5, off + (uint32_t)sizeof(k));
    pump(v);
    collect(v);
    expect_err(v, &b, NETVSP_ERR_RNDIS_TYPE);
    assert_int_equal(v->nxfer, 0); /* the keepalive is not answered */
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                     NVSP_STAT_INVALID_RNDIS_PKT);
}

static void packet_msg__before_rndis_init__not_ready(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    uint8_t frame[64], msg[128];
    make_frame(frame, sizeof(frame), MAC_OTHER, 1);
    uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    struct netvsp_stats b = nstats(v);
    inbox_clear(v);
    uint64_t tid = rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 0);
    collect(v);
    expect_err(v, &b, NETVSP_ERR_NOT_READY);
    assert_int_not_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
}

static void packet_msg__bad_header_fields__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[100];
    make_frame(frame, sizeof(frame), MAC_OTHER, 1);
    enum { OOB_OFF, OOB_LEN, OOB_NUM, VC, DLEN0, DOFF_SMALL, DATA_PAST_END, DOFF_HUGE, DLEN_HUGE,
           NCASES };
    for (int i = 0; i < NCASES; i++) {
        uint8_t msg[256];
        uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
        struct rndis_packet_msg pm;
        memcpy(&pm, msg, sizeof(pm));
        switch (i) {
        case OOB_OFF: pm.oob_data_offset = 36; break;
        case OOB_LEN: pm.oob_data_len = 4; break;
        case OOB_NUM: pm.num_oob_elements = 1; break;
        case VC: pm.vc_handle = 1; break;
        case DLEN0: pm.data_len = 0; break;
        case DOFF_SMALL: pm.data_offset = 32; break;
        case DATA_PAST_END: pm.data_len += 1; break;
        case DOFF_HUGE: pm.data_offset = 0xfffffff8u; break;
        case DLEN_HUGE: pm.data_len = 0xfffffff0u; break;
        }
        memcpy(msg, &pm, sizeof(pm));
        struct netvsp_stats b = nstats(v);
        inbox_clear(v);
        uint64_t tid = rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
        assert_int_equal(pump(v), 0);
        collect(v);
        expect_err(v, &b, NETVSP_ERR_RNDIS_PACKET);
        assert_int_equal(count_comp(v, tid), 1);
    }
    /* Shorter than a PACKET_MSG header. */
    uint8_t msg[64] = {0};
    struct rndis_msg_hdr h = {.type = RNDIS_MSG_PACKET, .len = 40};
    memcpy(msg, &h, sizeof(h));
    struct netvsp_stats b = nstats(v);
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, 40);
    assert_int_equal(pump(v), 0);
    expect_err(v, &b, NETVSP_ERR_RNDIS_LEN);
}

static void packet_msg__malformed_ppi__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[1500];
    make_frame(frame, sizeof(frame), MAC_OTHER, 1);
    enum { SIZE0, SIZE_UNALIGNED, SIZE_PAST_AREA, OFF_PAST_SIZE, OFF_IN_HEADER, AREA_PAST_MSG,
           AREA_OFF_SMALL, AREA_SHORTER_THAN_RECORD, AREA_HUGE, SIZE_SMALL, AREA_OFF_UNALIGNED,
           DATA_SHORT, NCASES };
    for (int i = 0; i < NCASES; i++) {
        uint8_t ppis[32], msg[2048];
        uint32_t pl = put_ppi(ppis, RNDIS_PPI_HASH_VALUE, 1);
        uint32_t len = build_packet(msg, ppis, pl, frame, 64);
        struct rndis_packet_msg pm;
        struct rndis_ppi r;
        uint32_t at = sizeof(pm); /* where the record goes */
        memcpy(&pm, msg, sizeof(pm));
        memcpy(&r, msg + sizeof(pm), sizeof(r));
        switch (i) {
        case SIZE0: r.size = 0; break;
        case SIZE_UNALIGNED: r.size = 14; break;
        case SIZE_PAST_AREA: r.size = 20; break;
        case OFF_PAST_SIZE: r.ppi_offset = 20; break;
        case OFF_IN_HEADER: r.ppi_offset = 8; break;
        case AREA_PAST_MSG: pm.ppi_len = len; break;
        case AREA_OFF_SMALL: pm.ppi_offset = 28; break;
        case AREA_SHORTER_THAN_RECORD: pm.ppi_len = 8; break;
        case AREA_HUGE:
            /* Inside a long message, but more PPI bytes than anyone sends. */
            len = build_packet(msg, ppis, pl, frame, sizeof(frame));
            memcpy(&pm, msg, sizeof(pm));
            pm.ppi_len = 1400;
            break;
        case SIZE_SMALL: r.size = 8; break;
        case AREA_OFF_UNALIGNED:
            /* A well-formed block and frame, 2 bytes further on. */
            memmove(msg + sizeof(pm) + 2, msg + sizeof(pm), len - sizeof(pm));
            memset(msg + sizeof(pm), 0, 2);
            at += 2;
            len += 2;
            pm.hdr.len += 2;
            pm.ppi_offset += 2;
            pm.data_offset += 2;
            break;
        case DATA_SHORT: r.ppi_offset = 14; break; /* 2 bytes: every PPI has at least 4 */
        }
        memcpy(msg, &pm, sizeof(pm));
        memcpy(msg + at, &r, sizeof(r));
        struct netvsp_stats b = nstats(v);
        rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
        assert_int_equal(pump(v), 0);
        if (nstats(v).errors[NETVSP_ERR_PPI] != b.errors[NETVSP_ERR_PPI] + 1)
            fail_msg("malformed PPI case %d not counted", i);
        expect_err(v, &b, NETVSP_ERR_PPI);
    }
}

static void rndis_oid__info_buffer_outside_message__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    static const struct {
        uint32_t type, info_len, info_offset, msg_extra;
    } cases[] = {
        {RNDIS_MSG_QUERY, 4, 16, 4},          /* overlaps the request header */
        {RNDIS_MSG_QUERY, 100, 20, 4},        /* runs past the message */
        {RNDIS_MSG_QUERY, 4, 0xfffffff8u, 4}, /* offset wraps */
        {RNDIS_MSG_QUERY, 0xffffffffu, 20, 4},
        {RNDIS_MSG_SET, 4, 16, 4},
        {RNDIS_MSG_SET, 8, 20, 4},
        {RNDIS_MSG_SET, 4, 0xfffffffcu, 4},
        {RNDIS_MSG_SET, 0xfffffff0u, 24, 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t req[64] = {0}, resp[64];
        uint32_t filter = RNDIS_FILTER_PROMISCUOUS;
        struct rndis_query_req q = {
            .hdr = {.type = cases[i].type, .len = (uint32_t)sizeof(q) + cases[i].msg_extra},
            .req_id = 0x5150 + (uint32_t)i,
            .oid = cases[i].type == RNDIS_MSG_SET ? RNDIS_OID_GEN_CURRENT_PACKET_FILTER
                                                  : RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE,
            .info_len = cases[i].info_len,
            .info_offset = cases[i].info_offset,
        };
        memcpy(req, &q, sizeof(q));
        memcpy(req + sizeof(q), &filter, 4);
        struct netvsp_stats b = nstats(v);
        uint32_t rl;
        assert_int_equal(rndis_ctrl(v, req, q.hdr.len, resp, sizeof(resp), &rl), NVSP_STAT_SUCCESS);
        expect_err(v, &b, NETVSP_ERR_OID);
        struct rndis_set_cmplt c;
        assert_true(rl >= sizeof(c));
        memcpy(&c, resp, sizeof(c));
        assert_int_equal(c.hdr.type, cases[i].type | 0x80000000u);
        /* A QUERY_C has the QUERY_C layout (netvsc refuses shorter ones). */
        if (cases[i].type == RNDIS_MSG_QUERY) {
            assert_int_equal(c.hdr.len, sizeof(struct rndis_query_cmplt));
            assert_int_equal(rl, sizeof(struct rndis_query_cmplt));
        }
        assert_int_equal(c.req_id, q.req_id);
        assert_int_not_equal(c.status, RNDIS_STATUS_SUCCESS);
        assert_int_equal(nstats(v).packet_filter, /* unchanged */
                         RNDIS_FILTER_DIRECTED | RNDIS_FILTER_MULTICAST | RNDIS_FILTER_BROADCAST);
    }
}

static void rndis_set__offload_params_bad_ndis_header__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct ndis_offload_params good = {.hdr = {NDIS_OBJTYPE_DEFAULT, 3, sizeof(good)},
                                       .tcp4_csum = NDIS_OFFLOAD_PARAM_TXRX,
                                       .udp4_csum = NDIS_OFFLOAD_PARAM_TXRX};
    struct netvsp_stats b = nstats(v);
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &good, sizeof(good)),
                     RNDIS_STATUS_SUCCESS);
    expect_no_err(v, &b);
    enum { TYPE, REV0, SIZE_SMALL, SIZE_PAST, SHORT, CSUM_VALUE, NCASES };
    for (int i = 0; i < NCASES; i++) {
        struct ndis_offload_params p = good;
        uint32_t len = sizeof(p);
        switch (i) {
        case TYPE: p.hdr.type = NDIS_OBJTYPE_OFFLOAD; break;
        case REV0: p.hdr.revision = 0; break;
        case SIZE_SMALL: p.hdr.size = NDIS_OFFLOAD_PARAMS_SIZE_REV1 - 1; break;
        case SIZE_PAST: p.hdr.size = sizeof(p) + 1; break;
        case SHORT: len = NDIS_OFFLOAD_PARAMS_SIZE_REV1 - 4; break;
        case CSUM_VALUE: p.tcp6_csum = NDIS_OFFLOAD_PARAM_TXRX + 1; break;
        }
        b = nstats(v);
        assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &p, len),
                         RNDIS_STATUS_INVALID_DATA);
        if (nstats(v).errors[NETVSP_ERR_OID] != b.errors[NETVSP_ERR_OID] + 1)
            fail_msg("offload parameters case %d not counted", i);
        expect_err(v, &b, NETVSP_ERR_OID);
    }
    /* LSO cannot be switched on (not offered): refused, not a protocol error. */
    struct ndis_offload_params lso = good;
    lso.lsov2_ip4 = NDIS_OFFLOAD_LSOV2_ON;
    b = nstats(v);
    assert_int_not_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &lso, sizeof(lso)),
                         RNDIS_STATUS_SUCCESS);
    expect_no_err(v, &b);
}

/* OID_GEN_RNDIS_CONFIG_PARAMETER with a UTF-16 name and value. */
static uint32_t config_param(uint8_t *out, const char *name, const char *value)
{
    struct rndis_config_param cp = {.name_offset = sizeof(cp), .param_type = 2};
    uint32_t off = sizeof(cp);
    for (const char *s = name; *s; s++, off += 2) {
        out[off] = (uint8_t)*s;
        out[off + 1] = 0;
    }
    cp.name_len = off - (uint32_t)sizeof(cp);
    cp.value_offset = off;
    for (const char *s = value; *s; s++, off += 2) {
        out[off] = (uint8_t)*s;
        out[off + 1] = 0;
    }
    cp.value_len = off - cp.value_offset;
    memcpy(out, &cp, sizeof(cp));
    return off;
}

static void rndis_set__config_param_network_address__refused_mac_unchanged(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t buf[256];
    uint32_t len = config_param(buf, "NetworkAddress", "0015DDEEFF00");
    struct netvsp_stats b = nstats(v);
    assert_int_not_equal(rndis_set(v, RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER, buf, len),
                         RNDIS_STATUS_SUCCESS);
    expect_no_err(v, &b);
    uint8_t mac[6];
    uint32_t ml = sizeof(mac);
    assert_int_equal(rndis_query(v, RNDIS_OID_802_3_CURRENT_ADDRESS, NULL, 0, mac, &ml),
                     RNDIS_STATUS_SUCCESS);
    assert_memory_equal(mac, MAC_A, 6);
    /* Other parameters are accepted. */
    len = config_param(buf, "*TCPChecksumOffloadIPv4", "3");
    assert_int_equal(rndis_set(v, RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER, buf, len),
                     RNDIS_STATUS_SUCCESS);
    expect_no_err(v, &b);
}

static void rndis_set__config_param_malformed__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    enum { SHORT, NAME_ODD, NAME_PAST, VALUE_PAST, NAME_LONG, VALUE_LONG, NAME_OFF_WRAP,
           VALUE_LEN_WRAP, NCASES };
    for (int i = 0; i < NCASES; i++) {
        uint8_t buf[1200] = {0};
        uint32_t len = config_param(buf, "NetworkAddress", "001122334455");
        struct rndis_config_param cp;
        memcpy(&cp, buf, sizeof(cp));
        switch (i) {
        case SHORT: len = sizeof(cp) - 4; break;
        case NAME_ODD: cp.name_len = 27; break;
        case NAME_PAST: cp.name_offset = len - 10; break;
        case VALUE_PAST: cp.value_len = len; break;
        case NAME_LONG:
            cp.name_len = 512;
            len = 20 + 512 + 24;
            break;
        case VALUE_LONG:
            cp.value_offset = 20;
            cp.value_len = 512;
            len = 20 + 512 + 24;
            break;
        case NAME_OFF_WRAP: cp.name_offset = 0xffffffe0u; break;
        case VALUE_LEN_WRAP: cp.value_offset = 0xfffffff0u; cp.value_len = 0x20; break;
        }
        memcpy(buf, &cp, sizeof(cp));
        struct netvsp_stats b = nstats(v);
        assert_int_equal(rndis_set(v, RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER, buf, len),
                         RNDIS_STATUS_INVALID_DATA);
        if (nstats(v).errors[NETVSP_ERR_OID] != b.errors[NETVSP_ERR_OID] + 1)
            fail_msg("config parameter case %d not counted", i);
        expect_err(v, &b, NETVSP_ERR_OID);
    }
}

/* --- buffers revoked, guests cut off, rings broken ----------------------- */

static void revoke_recv_buf__stops_delivery(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[64], msg[128];
    make_frame(frame, sizeof(frame), MAC_A, 1);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
    collect(v);
    uint64_t before_revoke = v->xfer[0].tid;
    struct nvsp_msg_revoke_buf r = {.type = NVSP_MSG1_REVOKE_RECV_BUF, .id = NVSP_RECV_BUF_ID};
    struct netvsp_stats b = nstats(v);
    nvsp_send(v, &r, sizeof(r), 0, false);
    pump(v);
    expect_no_err(v, &b);
    assert_false(vsw_port_link(v->port));
    assert_false(nstats(v).rndis_ready);
    /* Nothing more goes into the buffer. */
    memset(v->rbuf, 0xa5, RBUF_PAGES * HV_PAGE_SIZE);
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 0);
    assert_int_equal(pstats(v).drops[VSW_DROP_LINK_DOWN], pb.drops[VSW_DROP_LINK_DOWN] + 1);
    inbox_clear(v);
    assert_int_equal(collect(v), 0);
    /* Control requests get no answer in it either; data is not taken. */
    uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    b = nstats(v);
    uint64_t tid = rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    struct rndis_keepalive_req k = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(k)}};
    uint64_t tid2 = rndis_send_section(v, 2, NVSP_CHANNEL_TYPE_CONTROL, &k, sizeof(k));
    assert_int_equal(pump(v), 0);
    collect(v);
    assert_int_not_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    assert_int_not_equal(comp_status(v, tid2, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                         NVSP_STAT_SUCCESS);
    assert_int_equal(v->nxfer, 0);
    expect_errs(v, &b, NETVSP_ERR_NOT_READY, 2);
    for (uint32_t i = 0; i < RBUF_PAGES * HV_PAGE_SIZE; i += 509)
        assert_int_equal(v->rbuf[i], 0xa5);
    /* A completion for a transfer made before the revoke touches nothing. */
    complete_xfer_raw(v, before_revoke);
    pump(v);
    assert_int_equal(nstats(v).disconnects, 0);
    for (uint32_t i = 0; i < RBUF_PAGES * HV_PAGE_SIZE; i += 509)
        assert_int_equal(v->rbuf[i], 0xa5);
}

static void revoke_send_buf__sections_refused_gpa_direct_still_works(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct nvsp_msg_revoke_buf r = {.type = NVSP_MSG1_REVOKE_SEND_BUF, .id = NVSP_SEND_BUF_ID};
    nvsp_send(v, &r, sizeof(r), 0, false);
    pump(v);
    uint8_t frame[64], msg[128];
    make_frame(frame, sizeof(frame), MAC_OTHER, 1);
    uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    struct netvsp_stats b = nstats(v);
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 0);
    expect_err(v, &b, NETVSP_ERR_SECTION);
    memcpy(v->scratch, msg, len);
    struct grange g = scratch_range(v, 0, 0, len);
    uint8_t ext[64];
    uint32_t el = gpa_ext(ext, &g, 1, 1);
    rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, NVSP_SECTION_NONE, 0, ext, el);
    assert_int_equal(pump(v), 1);
    assert_mbuf_eq(v->rx[0], frame, sizeof(frame));
}

static void errors_max__guest_disconnected__other_vm_unaffected(void **state)
{
    struct fix *f = F(state);
    struct vm *a = f->a;
    f->b = vm_create(f, "vm-b", MAC_B, NIC_MTU);
    struct vm *b = f->b;
    bring_up(a);
    bring_up(b);
    struct netvsp_stats sb = nstats(a);
    uint32_t bad[10] = {999};
    for (int i = 0; i < NETVSP_ERRORS_MAX - 1; i++)
        nvsp_send(a, bad, sizeof(bad), 0, false);
    pump(a);
    assert_int_equal(nstats(a).disconnects, 0);
    /* The last straw, and more behind it that must not be looked at. */
    for (int i = 0; i < 5; i++)
        nvsp_send(a, bad, sizeof(bad), 0, false);
    pump(a);
    struct netvsp_stats s = nstats(a);
    assert_int_equal(s.disconnects, sb.disconnects + 1);
    assert_int_equal(s.errors[NETVSP_ERR_NVSP_TYPE],
                     sb.errors[NETVSP_ERR_NVSP_TYPE] + NETVSP_ERRORS_MAX);
    /* Cut off: no frames go to it, nothing more is read. */
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 1);
    assert_int_equal(frame_to_guest(a, frame, sizeof(frame)), 0);
    pump(a);
    assert_int_equal(nstats(a).errors[NETVSP_ERR_NVSP_TYPE], s.errors[NETVSP_ERR_NVSP_TYPE]);
    /* The control thread closes the channel. */
    assert_true(nstats(a).connected);
    hv_host_run(f->host, 0);
    assert_false(nstats(a).connected);
    struct vmbus_server_stats ss;
    vmbus_server_get_stats(a->srv, &ss);
    assert_int_equal(ss.ring_failures, 1);
    assert_false(vsw_port_link(a->port));
    /* The other NIC never noticed. */
    assert_int_equal(nstats(b).disconnects, 0);
    assert_true(nstats(b).connected);
    make_frame(frame, sizeof(frame), MAC_B, 2);
    assert_int_equal(frame_to_guest(b, frame, sizeof(frame)), 1);
    collect(b);
    assert_int_equal(data_frames(b), 1);
    uint8_t msg[128];
    uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    rndis_send_section(b, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(b), 1);
    assert_mbuf_eq(b->rx[0], frame, sizeof(frame));
    /* And the cut-off guest can start again on a fresh channel. */
    reopen(a);
    bring_up(a);
    assert_int_equal(frame_to_guest(a, frame, sizeof(frame)), 0); /* not its MAC */
    make_frame(frame, sizeof(frame), MAC_A, 3);
    assert_int_equal(frame_to_guest(a, frame, sizeof(frame)), 1);
}

static void ring__corrupt_write_index_of_ring_from_guest__fatal(void **state)
{
    struct fix *f = F(state);
    struct vm *v = f->a;
    bring_up(v);
    struct vmbus_ring *tx = vmbus_gchan_tx(v->ch);
    struct netvsp_stats b = nstats(v);
    __atomic_store_n(&tx->hdr->write_index, 12u, __ATOMIC_RELEASE); /* not a multiple of 8 */
    assert_int_equal(pump(v), 0);
    struct netvsp_stats s = nstats(v);
    assert_int_equal(s.errors[NETVSP_ERR_RING], b.errors[NETVSP_ERR_RING] + 1);
    assert_int_equal(s.disconnects, b.disconnects + 1);
    hv_host_run(f->host, 0);
    assert_false(nstats(v).connected);
    /* Past the end of the data area, on a fresh channel. */
    reopen(v);
    bring_up(v);
    tx = vmbus_gchan_tx(v->ch);
    b = nstats(v);
    __atomic_store_n(&tx->hdr->write_index, tx->dsize + 8, __ATOMIC_RELEASE);
    pump(v);
    s = nstats(v);
    assert_int_equal(s.errors[NETVSP_ERR_RING], b.errors[NETVSP_ERR_RING] + 1);
    assert_int_equal(s.disconnects, b.disconnects + 1);
    hv_host_run(f->host, 0);
    assert_false(nstats(v).connected);
}

/*
 * The ring netvsp writes into has an index the guest owns too: its read
 * index. A guest that corrupts it breaks the channel just as much; the ring
 * code reports it (-EPROTO, sticky), and netvsp must treat it as fatal like
 * a corrupt ring from the guest: count it, cut the guest off, have the
 * channel closed. Otherwise the channel silently stops being served.
 */
static void ring__corrupt_read_index_of_ring_to_guest__fatal(void **state)
{
    struct fix *f = F(state);
    struct vm *v = f->a;
    bring_up(v);
    struct vmbus_ring *rx = vmbus_gchan_rx(v->ch);
    struct netvsp_stats b = nstats(v);
    __atomic_store_n(&rx->hdr->read_index, 12u, __ATOMIC_RELEASE); /* not a multiple of 8 */
    /* Something the root must answer, and a frame for the guest. */
    struct nvsp_msg_switch_data_path sw = {.type = NVSP_MSG4_SWITCH_DATA_PATH};
    nvsp_send(v, &sw, sizeof(sw), 1, true);
    pump(v);
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 1);
    frame_to_guest(v, frame, sizeof(frame));
    pump(v);
    struct netvsp_stats s = nstats(v);
    assert_int_equal(s.errors[NETVSP_ERR_RING], b.errors[NETVSP_ERR_RING] + 1);
    assert_int_equal(s.disconnects, b.disconnects + 1);
    hv_host_run(f->host, 0);
    assert_false(nstats(v).connected);
}

static void ring__packet_type_not_for_a_vsp__fatal(void **state)
{
    struct fix *f = F(state);
    struct vm *v = f->a;
    bring_up(v);
    struct netvsp_stats b = nstats(v);
    uint8_t ext[16] = {0};
    uint32_t cnt = 1;
    memcpy(ext + 4, &cnt, 4);
    uint8_t body[NVSP_MSG_SIZE_61] = {0};
    put_pkt(v, VMBUS_PKT_DATA_USING_XFER_PAGES, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, 1, ext,
            sizeof(ext), body, sizeof(body));
    pump(v);
    assert_int_equal(nstats(v).disconnects, b.disconnects + 1);
    hv_host_run(f->host, 0);
    assert_false(nstats(v).connected);
}

/* --- bugs these tests found ---------------------------------------------- */

/*
 * struct vsw_port holds per-lcore counters that are cache-line aligned, so
 * a port type's struct that embeds it must be allocated with that
 * alignment; calloc() gives 16 bytes. (UBSan without ASan reports the
 * misaligned access at the first use; ASan's allocator happens to hide it.)
 */
/* NETWORK_CHANGE indications among the control transfers in the inbox. */
static unsigned count_network_change(struct vm *v)
{
    unsigned n = 0;
    for (unsigned i = 0; i < v->nxfer; i++) {
        if (v->xfer[i].nvsp.channel_type != NVSP_CHANNEL_TYPE_CONTROL)
            continue;
        struct rndis_indicate_status st;
        memcpy(&st, v->rbuf + v->xfer[i].r[0].byte_offset, sizeof(st));
        n += st.hdr.type == RNDIS_MSG_INDICATE && st.status == RNDIS_STATUS_NETWORK_CHANGE;
    }
    return n;
}

/* The operator changes a live NIC's MTU: the guest is told the network
 * changed (NETWORK_CHANGE, "definitely"), once; a lower limit applies at
 * once both ways. */
static void netvsp_set_mtu__live__network_change_and_lower_limit_at_once(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_ver(v, V61, 9014); /* the NIC allows 9000 */
    struct netvsp_stats b = nstats(v);
    assert_int_equal(b.frame_size, 9014);
    assert_false(b.mtu_pending);
    assert_int_equal(send_sized(v, 1514, 0x0800), 1);
    assert_int_equal(netvsp_set_mtu(v->nic, 67), -EINVAL);
    assert_int_equal(netvsp_set_mtu(v->nic, 9001), -EINVAL);
    assert_int_equal(netvsp_set_mtu(v->nic, 1400), 0);
    assert_int_equal(netvsp_mtu(v->nic), 1400);
    inbox_clear(v);
    pump(v);
    collect(v);
    assert_int_equal(v->nxfer, 1);
    const struct xfer *x = &v->xfer[0];
    check_ctrl_xfer(v, x);
    struct rndis_indicate_status st;
    assert_true(x->r[0].byte_count >= sizeof(st) + 4);
    memcpy(&st, v->rbuf + x->r[0].byte_offset, sizeof(st));
    assert_int_equal(st.hdr.type, RNDIS_MSG_INDICATE);
    assert_int_equal(st.status, RNDIS_STATUS_NETWORK_CHANGE);
    assert_int_equal(st.buf_len, 4);
    uint32_t kind;
    memcpy(&kind, v->rbuf + x->r[0].byte_offset + 8 + st.buf_offset, 4);
    assert_int_equal(kind, RNDIS_NETWORK_CHANGE_DEFINITELY);
    complete_all(v);
    struct netvsp_stats a = nstats(v);
    assert_int_equal(a.network_changes, b.network_changes + 1);
    /* Until the guest negotiates again at the new MTU. */
    assert_true(a.mtu_pending);
    /* Lower: frames above it go nowhere already, both ways. */
    assert_int_equal(a.frame_size, 1414);
    assert_int_equal(v->port->max_frame, 1414);
    assert_int_equal(send_sized(v, 1514, 0x0800), 0);
    assert_int_equal(nstats(v).rx_frames_too_big, a.rx_frames_too_big + 1);
    uint8_t big[1500];
    make_frame(big, sizeof(big), MAC_A, 0x31);
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(frame_to_guest(v, big, sizeof(big)), 0);
    assert_int_equal(pstats(v).drops[VSW_DROP_TOO_BIG], pb.drops[VSW_DROP_TOO_BIG] + 1);
    /* Only once, however many rounds follow. */
    inbox_clear(v);
    pump(v);
    collect(v);
    assert_int_equal(count_network_change(v), 0);
}

/* The ring to the guest is full when the change comes: the indication
 * waits for room rather than being lost. */
static void netvsp_set_mtu__ring_to_guest_full__indication_waits_then_goes(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_ver(v, V61, FRAME_1514);
    collect(v);
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 0x21);
    unsigned filled = 0;
    while (frame_to_guest(v, frame, sizeof(frame)) == 1)
        filled++;
    assert_true(filled > 0);
    struct netvsp_stats b = nstats(v);
    assert_int_equal(netvsp_set_mtu(v->nic, 1400), 0);
    v->port->cls->tx_flush(v->port);
    assert_int_equal(nstats(v).network_changes, b.network_changes); /* not yet */
    assert_int_equal(nstats(v).tx_ring_full, b.tx_ring_full);        /* and not lost */
    assert_int_equal(nstats(v).frame_size, 1414);                     /* the limit is */
    unsigned nc = 0;
    for (int r = 0; r < 6; r++) { /* the guest drains; the worker goes on */
        inbox_clear(v);
        collect(v);
        nc += count_network_change(v);
        complete_all(v);
        pump(v);
    }
    inbox_clear(v);
    collect(v);
    nc += count_network_change(v);
    assert_int_equal(nc, 1);
    assert_int_equal(nstats(v).network_changes, b.network_changes + 1);
}

static void netvsp_create__several_nics__each_port_cache_aligned(void **state)
{
    struct vm *v = F(state)->a;
    enum { N = 8 };
    struct netvsp *nics[N];
    unsigned misaligned = 0;
    for (int i = 0; i < N; i++) {
        struct netvsp_params np = {.port_name = "extra", .nic_name = "eth1", .mtu = 1500,
                                   .pool = g_pool};
        memcpy(np.mac, MAC_OTHER, 6);
        np.mac[5] = (uint8_t)(0x40 + i);
        np.instance.b[0] = (uint8_t)(0x80 + i);
        assert_int_equal(netvsp_create(v->srv, &np, &nics[i]), 0);
        misaligned += (uintptr_t)netvsp_port(nics[i]) % _Alignof(struct vsw_port) != 0;
    }
    for (int i = 0; i < N; i++)
        vsw_port_destroy(netvsp_port(nics[i]));
    if (misaligned)
        fail_msg("%u of %d NICs not aligned to %zu bytes (struct vsw_port's alignment)",
                 misaligned, N, _Alignof(struct vsw_port));
}

/* Child side of the next test: no cmocka in a forked process. Completes
 * the control transfers one at a time and counts KEEPALIVE_C answers. */
static int pending_ctrl_child(struct vm *v, unsigned want)
{
    unsigned answers = 0;
    for (unsigned i = 0; i < v->nxfer; i++) {
        struct xfer *x = &v->xfer[i];
        if (x->nvsp.channel_type == NVSP_CHANNEL_TYPE_CONTROL && x->nranges == 1) {
            struct rndis_msg_hdr h;
            memcpy(&h, v->rbuf + x->r[0].byte_offset, sizeof(h));
            answers += h.type == RNDIS_MSG_KEEPALIVE_C;
        }
    }
    for (unsigned i = 0; i < v->nxfer; i++) { /* the inbox grows as we go */
        if (v->xfer[i].completed)
            continue;
        complete_xfer_raw(v, v->xfer[i].tid);
        v->xfer[i].completed = true;
        unsigned before = v->nxfer;
        pump(v);
        if (collect_raw(v) < 0)
            return 2;
        for (unsigned j = before; j < v->nxfer; j++) {
            struct rndis_msg_hdr h;
            memcpy(&h, v->rbuf + v->xfer[j].r[0].byte_offset, sizeof(h));
            answers += h.type == RNDIS_MSG_KEEPALIVE_C;
        }
    }
    return answers == want ? 0 : 3;
}

/*
 * More control requests than control sub-allocations: the answers that do
 * not fit wait in netvsp's queue and go out as the guest completes earlier
 * ones. With two or more waiting, flush_pending_ctrl() re-queues the
 * message it just took instead of sending it and never returns (the switch
 * worker hangs in rx_burst). Run in a child so a hang fails the test.
 */
static void rndis_control__answers_queued_beyond_control_subs__delivered_without_hang(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    const unsigned n = CTRL_SUBS + 2;
    uint64_t tids[CTRL_SUBS + 2];
    for (unsigned i = 0; i < n; i++) {
        struct rndis_keepalive_req k = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(k)},
                                        .req_id = 1000 + i};
        tids[i] = rndis_send_section(v, 1 + i, NVSP_CHANNEL_TYPE_CONTROL, &k, sizeof(k));
    }
    inbox_clear(v);
    pump(v);
    collect(v);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(comp_status(v, tids[i], NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                         NVSP_STAT_SUCCESS);
    assert_int_equal(v->nxfer, CTRL_SUBS); /* two answers wait */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(30);
        _exit(pending_ctrl_child(v, n));
    }
    int st = 0;
    bool done = false;
    for (int i = 0; i < 1000 && !done; i++) { /* 10 s */
        pid_t r = waitpid(pid, &st, WNOHANG);
        assert_true(r >= 0);
        done = r == pid;
        if (!done)
            usleep(10000);
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        fail_msg("rx_burst did not return after the guest completed a control transfer "
                 "while two RNDIS answers were queued (flush_pending_ctrl loops)");
    }
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) != 0)
        fail_msg("queued RNDIS answers not delivered (child status %d)", WEXITSTATUS(st));
}

/* Free bytes in the root's ring to the guest, as the root's producer sees it. */
static uint32_t root_ring_free(struct vm *v)
{
    struct vmbus_ring *r = vmbus_gchan_rx(v->ch);
    uint32_t w = __atomic_load_n(&r->hdr->write_index, __ATOMIC_ACQUIRE);
    uint32_t rd = __atomic_load_n(&r->hdr->read_index, __ATOMIC_ACQUIRE);
    uint32_t used = w >= rd ? w - rd : r->dsize - rd + w;
    return r->dsize - used - 8;
}

/*
 * At NVSP 6.1 an RNDIS control request costs the root two packets in its
 * ring to the guest: the answer's transfer (80 bytes) and the request's
 * completion (64). rx_burst only checks for room for two completions (128)
 * before it takes a request, so with 128..143 bytes free the completion
 * does not fit and is silently lost: the guest never gets its send
 * section back.
 */
static void rx_burst__control_request_with_ring_nearly_full__completion_not_lost(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    collect(v);
    const uint32_t xfer_bytes = vmbus_ring_pkt_size(16, NVSP_MSG_SIZE_61);
    const uint32_t comp_bytes = vmbus_ring_pkt_size(0, NVSP_MSG_SIZE_61);
    const uint32_t target = 2 * comp_bytes + 8; /* 136: passes the check, fits only the answer */
    uint32_t fill = root_ring_free(v) - target;
    assert_int_equal(fill % 16, 0);
    /* fill = xfer_bytes * k + comp_bytes * m */
    uint32_t m = 0;
    while ((fill - comp_bytes * m) % xfer_bytes)
        m++;
    uint32_t k = (fill - comp_bytes * m) / xfer_bytes;
    assert_true(k < v->nsub - CTRL_SUBS);
    for (uint32_t i = 0; i < m; i++) {
        /* Completed with a message-sized body (comp_bytes). */
        struct nvsp_msg_oid_query_ex q = {.type = NVSP_MSG5_OID_QUERY_EX,
                                          .oid = RNDIS_OID_GEN_LINK_SPEED};
        nvsp_send(v, &q, sizeof(q), 900 + i, true);
        pump(v);
    }
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 0x13);
    for (uint32_t i = 0; i < k; i++)
        assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
    assert_int_equal(root_ring_free(v), target);
    struct rndis_keepalive_req ka = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(ka)},
                                     .req_id = 0x7777};
    uint64_t tid = rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_CONTROL, &ka, sizeof(ka));
    inbox_clear(v);
    pump(v);
    /* The guest drains its ring and the worker runs again, twice. */
    for (int round = 0; round < 3; round++) {
        collect(v);
        pump(v);
    }
    collect(v);
    unsigned answers = 0;
    for (unsigned i = 0; i < v->nxfer; i++) {
        if (v->xfer[i].nvsp.channel_type != NVSP_CHANNEL_TYPE_CONTROL)
            continue;
        struct rndis_keepalive_cmplt c;
        memcpy(&c, v->rbuf + v->xfer[i].r[0].byte_offset, sizeof(c));
        answers += c.hdr.type == RNDIS_MSG_KEEPALIVE_C && c.req_id == 0x7777;
    }
    assert_int_equal(answers, 1);
    if (count_comp(v, tid) != 1)
        fail_msg("the completion of the RNDIS request was lost (%u seen): the guest's send "
                 "section is never given back",
                 count_comp(v, tid));
}

/*
 * A guest that never reads its ring: the ring to it fills with answers,
 * and the request it sends next cannot be taken (rx_burst leaves it there
 * for want of room for its answers). That request is no work the worker
 * can do: wait_arm must let the worker sleep, asking to hear when the
 * guest makes room, instead of saying "pending" for as long as the guest
 * likes (the worker would spin without sleeping, for ever, on a request it
 * cannot take). Once the guest reads, the request is served.
 */
static void port_wait__request_waiting_for_room_to_answer__sleeps_until_guest_reads(void **state)
{
    struct vm *v = F(state)->a;
    const struct vsw_port_class *cls = v->port->cls;
    bring_up(v);
    collect(v);
    const uint32_t room = 2 * vmbus_ring_pkt_size(0, NVSP_MSG_SIZE_61) + 16;
    uint64_t tid = 1000;
    /* The guest asks and asks and reads nothing. */
    for (unsigned i = 0; root_ring_free(v) >= room; i++) {
        assert_true(i < 10000);
        struct nvsp_msg_oid_query_ex q = {.type = NVSP_MSG5_OID_QUERY_EX,
                                          .oid = RNDIS_OID_GEN_LINK_SPEED};
        nvsp_send(v, &q, sizeof(q), tid++, true);
        pump(v);
    }
    struct nvsp_msg_oid_query_ex q = {.type = NVSP_MSG5_OID_QUERY_EX,
                                      .oid = RNDIS_OID_GEN_LINK_SPEED};
    const uint64_t last = tid;
    nvsp_send(v, &q, sizeof(q), last, true);
    assert_int_equal(pump(v), 0);
    assert_false(vmbus_ring_empty(vmbus_gchan_tx(v->ch))); /* left in the guest's ring */
    cls->wait_disarm(v->port);
    if (cls->wait_arm(v->port))
        fail_msg("wait_arm reports work while the only request waits for the guest to make "
                 "room: the worker never sleeps");
    /* It asked to hear about room in the ring to the guest. */
    assert_true(__atomic_load_n(&vmbus_gchan_rx(v->ch)->hdr->pending_send_sz, __ATOMIC_ACQUIRE) >=
                room);
    cls->wait_disarm(v->port);
    inbox_clear(v);
    collect(v);
    assert_null(find_comp(v, last));
    assert_true(cls->wait_arm(v->port)); /* room now: the request is work again */
    cls->wait_disarm(v->port);
    pump(v);
    collect(v);
    assert_non_null(find_comp(v, last));
}

/*
 * REVOKE_RECV_BUF then SEND_RECV_BUF again on the same connection: the
 * second registration allocates the sub-allocation tables again without
 * freeing the first ones. A guest can repeat this without bound.
 */
static void revoke_recv_buf__registered_again_many_times__no_memory_growth(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    struct nvsp_msg_revoke_buf r = {.type = NVSP_MSG1_REVOKE_RECV_BUF, .id = NVSP_RECV_BUF_ID};
    struct mallinfo2 before = {0}, after;
    for (int i = 0; i < 64; i++) {
        if (i == 8)
            before = mallinfo2();
        nvsp_send(v, &r, sizeof(r), 0, false);
        recv_buf(v, v->rgpadl, NULL, NULL);
    }
    after = mallinfo2();
    long growth = (long)after.uordblks - (long)before.uordblks;
    if (growth > (64l << 10))
        fail_msg("heap grew by %ld bytes over 56 revoke/register cycles", growth);
}

/* --- fairness: one round's budget ------------------------------------------ */

/* Free bytes in the guest's ring to the root, as the guest sees them (the
 * root's read index included). */
static uint32_t guest_ring_free(struct vm *v)
{
    return vmbus_ring_free_bytes(vmbus_gchan_tx(v->ch));
}

/* One worker round over port v: rx_burst once with the worker's budget.
 * Returns the frames; *busy says whether it reported work beyond them. */
static uint16_t one_round(struct vm *v, struct rte_mbuf **pk, bool *busy)
{
    v->port->rx_busy = false;
    uint16_t n = v->port->cls->rx_burst(v->port, pk, BURST);
    *busy = v->port->rx_busy;
    v->port->rx_busy = false;
    return n;
}

#define FLOOD_MSGS 300u

/*
 * A guest fills its ring with NVSP messages that need no reply (a switch of
 * data path without a completion request, which Linux sends and netvsp
 * merely notes). One worker round takes at most its budget of them, says it
 * has more, and the worker's next port (B, with a frame waiting) is served
 * in that same round; the rest is taken over the next rounds, none refused.
 */
static void rx_burst__ring_full_of_messages_needing_no_reply__at_most_budget_per_round(void **state)
{
    struct fix *f = F(state);
    struct vm *a = f->a;
    f->b = vm_create(f, "vm-b", MAC_B, NIC_MTU);
    struct vm *b = f->b;
    bring_up(a);
    bring_up(b);
    struct netvsp_stats sa = nstats(a);
    uint32_t empty = guest_ring_free(a);
    struct nvsp_msg_switch_data_path sw = {.type = NVSP_MSG4_SWITCH_DATA_PATH};
    for (unsigned i = 0; i < FLOOD_MSGS; i++)
        nvsp_send(a, &sw, sizeof(sw), 0, false);
    uint32_t msg_bytes = (empty - guest_ring_free(a)) / FLOOD_MSGS;
    assert_int_equal(empty - guest_ring_free(a), msg_bytes * FLOOD_MSGS);
    uint8_t frame[64], msg[128];
    make_frame(frame, sizeof(frame), MAC_A, 0x21);
    uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    rndis_send_section(b, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);

    /* One round: A, then B. */
    struct rte_mbuf *pk[BURST];
    bool busy;
    uint32_t before = guest_ring_free(a);
    assert_int_equal(one_round(a, pk, &busy), 0);
    uint32_t taken = (guest_ring_free(a) - before) / msg_bytes;
    if (taken > BURST)
        fail_msg("one round took %u messages from the guest's ring: the budget is %u", taken,
                 BURST);
    assert_true(taken >= 1);
    assert_true(busy);
    assert_int_equal(one_round(b, pk, &busy), 1);
    assert_mbuf_eq(pk[0], frame, sizeof(frame));
    rte_pktmbuf_free(pk[0]);

    /* The rest, a budget per round. */
    unsigned rounds = 1;
    do {
        assert_int_equal(one_round(a, pk, &busy), 0);
        rounds++;
        assert_true(rounds <= FLOOD_MSGS + 1);
    } while (busy);
    assert_int_equal(guest_ring_free(a), empty);
    assert_true(rounds > FLOOD_MSGS / BURST);
    expect_no_err(a, &sa);
    /* And A is served as before (an empty completion, as Linux expects). */
    uint32_t swa[2], swa_len = 99;
    nvsp_request(a, &sw, sizeof(sw), swa, sizeof(swa), &swa_len);
    assert_int_equal(swa_len, 0);
}

/*
 * Frames cost budget whether they are kept or dropped: sends of eight
 * runt frames each (dropped, counted, not errors) are taken at most a
 * budget's worth of frames per round.
 */
static void rx_burst__sends_of_dropped_frames__frames_count_against_budget(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    enum { SENDS = 40, PER_SEND = 8, RUNT = 12 };
    uint8_t frame[RUNT], msg[PER_SEND * 64];
    make_frame(frame, RUNT, MAC_OTHER, 0x31);
    uint32_t len = 0;
    for (int i = 0; i < PER_SEND; i++)
        len += build_packet(msg + len, NULL, 0, frame, RUNT); /* 48 bytes: aligned */
    uint32_t empty = guest_ring_free(v);
    for (uint32_t i = 0; i < SENDS; i++)
        rndis_send_section(v, 1 + i, NVSP_CHANNEL_TYPE_DATA, msg, len);
    uint32_t msg_bytes = (empty - guest_ring_free(v)) / SENDS;
    uint64_t runts = pstats(v).drops[VSW_DROP_RUNT];
    struct rte_mbuf *pk[BURST];
    bool busy;
    uint32_t before = guest_ring_free(v);
    assert_int_equal(one_round(v, pk, &busy), 0);
    uint32_t taken = (guest_ring_free(v) - before) / msg_bytes;
    if (taken * PER_SEND > BURST)
        fail_msg("one round parsed %u frames: the budget is %u", taken * PER_SEND, BURST);
    assert_true(taken >= 1);
    assert_true(busy);
    assert_int_equal(pstats(v).drops[VSW_DROP_RUNT] - runts, (uint64_t)taken * PER_SEND);
    while (busy)
        assert_int_equal(one_round(v, pk, &busy), 0);
    assert_int_equal(pstats(v).drops[VSW_DROP_RUNT] - runts, (uint64_t)SENDS * PER_SEND);
    v->port->cls->tx_flush(v->port);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(init__each_supported_version__success_with_answer_size_of_version),
        T(init__version_range__newest_common_chosen),
        T(init__unsupported_version__answered_not_success_and_retry_allowed),
        T(ndis_config__mtu_in_range__frame_size_honoured),
        T(ndis_config__mtu_out_of_range__replaced_by_1514),
        T(ndis_config__above_nic_mtu__capped_to_nic),
        T(nvsp1__no_ndis_config__default_frame),
        T(recv_buf__valid__one_section_at_offset_0),
        T(send_buf__valid__section_size_6144),
        T(buffers__unknown_or_unusable_gpadl__refused_and_counted),
        T(buffers__larger_than_real_guests_use__refused_and_counted),
        T(open__rings_larger_than_real_guests_use__refused_and_counted),
        T(rndis_init__valid__init_c_fields),
        T(rndis_query__gen_and_802_3_oids__answered),
        T(rndis_query__offload_caps__size_of_requested_revision),
        T(rndis_query__offload_caps_bad_ndis_header__refused_and_counted),
        T(rndis_set__packet_filter__link_follows),
        T(rndis_set__other_oids__accepted_or_not_supported),
        T(rndis_keepalive__answered_with_request_id),
        T(rndis_reset__answered_reset_c),
        T(rndis_halt__no_answer__link_down),
        T(nvsp_misc__subchannel_oid_query_ex__answered),
        T(switch_data_path__completion_requested__completed_without_payload),
        T(packet_msg__in_send_section__mbuf_with_exact_bytes),
        T(packet_msg__linux_partial_copy__header_in_section_frame_gpa_direct),
        T(packet_msg__all_gpa_direct__mbuf_with_exact_bytes),
        T(packet_msg__jumbo_over_gpa_direct__chained_mbuf_exact),
        T(packet_msg__several_in_one_send__all_delivered_in_order),
        T(packet_msg__packed_without_padding__next_at_exact_message_length),
        T(packet_msg__packed_bad_next_length__refused_and_counted),
        T(packet_msg__more_than_max_per_message__refused_after_max),
        T(packet_msg__checksum_ppi__mbuf_offload_flags_set),
        T(packet_msg__checksum_ppi_inconsistent__dropped_and_counted),
        T(packet_msg__checksum_ppi_behind_inband_tags__offsets_from_the_frame_no_error),
        T(packet_msg__vlan_ppi__tag_handed_to_switch_as_metadata),
        T(packet_msg__lso_ppi__not_offered_counted),
        T(packet_msg__oversize_and_runt__dropped_and_counted),
        T(tx_burst__frames__arrive_in_receive_buffer_with_rndis_header),
        T(tx_burst__jumbo_frame__one_sub_allocation),
        T(tx_burst__l4_checksum_left_to_network__checksum_ppi_says_ok),
        T(tx_burst__packet_filter__respected),
        T(packet_msg__inband_vlan_tag__four_bytes_over_frame_size_allowed),
        T(tx_burst__frame_above_frame_size__dropped_too_big),
        T(tx_burst__before_rndis_ready__dropped_link_down),
        T(tx_burst__ring_to_guest_full__dropped_counted_then_resumes),
        T(port_wait__guest_signal__fd_readable_and_arm_reports_work),
        T(completion__frees_sub_allocations__delivery_resumes),
        T(completion__unknown_transaction_id__counted),
        T(xfer__transaction_id__index_of_first_section),
        T(nvsp__messages_before_init__refused_out_of_order),
        T(nvsp__duplicate_setup_messages__refused_out_of_order),
        T(nvsp__ndis_config_after_recv_buf__refused),
        T(recv_buf__before_ndis_config_at_v2__refused_out_of_order),
        T(nvsp__request_without_completion_requested__refused_and_counted),
        T(nvsp__short_messages__refused_and_counted),
        T(nvsp__unknown_or_version_gated_type__refused_and_counted),
        T(rndis_pkt__send_section_out_of_range__refused_and_counted),
        T(rndis_pkt__section_before_send_buf__refused_and_counted),
        T(rndis_pkt__before_recv_buf__not_ready),
        T(gpa_direct__bad_ranges__refused_and_counted),
        T(rndis__message_length_inconsistent__refused_and_counted),
        T(rndis__type_not_allowed__refused_and_counted),
        T(rndis__control_after_packet_msg__refused_and_counted),
        T(packet_msg__before_rndis_init__not_ready),
        T(packet_msg__bad_header_fields__refused_and_counted),
        T(packet_msg__malformed_ppi__refused_and_counted),
        T(rndis_oid__info_buffer_outside_message__refused_and_counted),
        T(rndis_set__offload_params_bad_ndis_header__refused_and_counted),
        T(rndis_set__config_param_network_address__refused_mac_unchanged),
        T(rndis_set__config_param_malformed__refused_and_counted),
        T(revoke_recv_buf__stops_delivery),
        T(revoke_send_buf__sections_refused_gpa_direct_still_works),
        T(errors_max__guest_disconnected__other_vm_unaffected),
        T(ring__corrupt_write_index_of_ring_from_guest__fatal),
        T(ring__corrupt_read_index_of_ring_to_guest__fatal),
        T(ring__packet_type_not_for_a_vsp__fatal),
        T(netvsp_set_mtu__live__network_change_and_lower_limit_at_once),
        T(netvsp_set_mtu__ring_to_guest_full__indication_waits_then_goes),
        T(netvsp_create__several_nics__each_port_cache_aligned),
        T(rndis_control__answers_queued_beyond_control_subs__delivered_without_hang),
        T(rx_burst__control_request_with_ring_nearly_full__completion_not_lost),
        T(port_wait__request_waiting_for_room_to_answer__sleeps_until_guest_reads),
        T(revoke_recv_buf__registered_again_many_times__no_memory_growth),
        T(rx_burst__ring_full_of_messages_needing_no_reply__at_most_budget_per_round),
        T(rx_burst__sends_of_dropped_frames__frames_count_against_budget),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
