/*
 * The fake guest the netvsp unit tests share: see netvsp-fixture.h.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* rte_ipv4/6_udptcp_cksum_verify: experimental in DPDK 22.11, and the
 * reference the tests check checksums against. */
#define ALLOW_EXPERIMENTAL_API
#include "netvsp-fixture.h"

struct rte_mempool *g_pool;

const uint8_t MAC_A[6] = {0x00, 0x15, 0x5d, 0x00, 0x00, 0x0a};
const uint8_t MAC_B[6] = {0x00, 0x15, 0x5d, 0x00, 0x00, 0x0b};
const uint8_t MAC_OTHER[6] = {0x00, 0x15, 0x5d, 0x00, 0x00, 0x77};
const uint8_t MAC_BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
const uint8_t MAC_MCAST[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};

struct netvsp_stats nstats(struct vm *v)
{
    struct netvsp_stats s;
    netvsp_get_stats(v->nic, &s);
    return s;
}

struct vsw_port_stats pstats(struct vm *v)
{
    struct vsw_port_stats s;
    vsw_port_get_stats(v->port, &s);
    return s;
}

/* Exactly `n` more errors of kind e than in `before`, and no other new one. */
void expect_errs(struct vm *v, const struct netvsp_stats *before, enum netvsp_err e,
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

void expect_err(struct vm *v, const struct netvsp_stats *before, enum netvsp_err e)
{
    expect_errs(v, before, e, 1);
}

void expect_no_err(struct vm *v, const struct netvsp_stats *before)
{
    expect_errs(v, before, NETVSP_ERR_COUNT, 0);
}

void put_pkt(struct vm *v, uint16_t type, uint16_t flags, uint64_t tid, const void *ext,
             uint32_t ext_len, const void *msg, uint32_t len)
{
    struct vmbus_ring *tx = vmbus_gchan_tx(v->ch);
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
    assert_int_equal(vmbus_ring_put(tx, type, flags, tid, ext, ext_len, &iov, len ? 1 : 0), 0);
    assert_true(vmbus_ring_publish(tx) >= 0);
}

/* An NVSP message in-band, padded with zeroes to the guest's message size. */
void nvsp_send(struct vm *v, const void *msg, uint32_t len, uint64_t tid, bool want)
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
unsigned pump(struct vm *v)
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

void free_rx(struct vm *v)
{
    for (unsigned i = 0; i < v->nrx; i++)
        rte_pktmbuf_free(v->rx[i]);
    v->nrx = 0;
}

void inbox_clear(struct vm *v)
{
    v->ncomp = v->nxfer = v->ninband = 0;
}

/* Read everything the root put in the guest's ring into the inbox. No
 * cmocka here (used in a child process too): -1 on anything unexpected. */
int collect_raw(struct vm *v)
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
        } else if (p.type == VMBUS_PKT_DATA_INBAND) {
            if (v->ninband == sizeof(v->inband) / sizeof(v->inband[0]) ||
                p.payload_len > sizeof(v->inband[0].msg))
                return -1;
            struct inband *ib = &v->inband[v->ninband++];
            ib->len = p.payload_len;
            memcpy(ib->msg, p.payload, p.payload_len);
        } else {
            return -1;
        }
    }
    if (vmbus_ring_release(rx) < 0)
        return -1;
    return n;
}

int collect(struct vm *v)
{
    int n = collect_raw(v);
    if (n < 0)
        fail_msg("the root sent something the guest cannot parse");
    return n;
}

const struct comp *find_comp(const struct vm *v, uint64_t tid)
{
    const struct comp *found = NULL;
    for (unsigned i = 0; i < v->ncomp; i++)
        if (v->comp[i].tid == tid)
            found = &v->comp[i];
    return found;
}

unsigned count_comp(const struct vm *v, uint64_t tid)
{
    unsigned n = 0;
    for (unsigned i = 0; i < v->ncomp; i++)
        n += v->comp[i].tid == tid;
    return n;
}

/* The NVSP status in the completion of request tid (there must be one). */
uint32_t comp_status(const struct vm *v, uint64_t tid, uint32_t type)
{
    const struct comp *c = find_comp(v, tid);
    if (!c)
        fail_msg("no completion for transaction %llu", (unsigned long long)tid);
    uint32_t m[2];
    memcpy(m, c->msg, sizeof(m));
    assert_int_equal(m[0], type);
    return m[1];
}

void complete_xfer_raw(struct vm *v, uint64_t tid)
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
void complete_all(struct vm *v)
{
    for (unsigned i = 0; i < v->nxfer; i++) {
        if (v->xfer[i].completed)
            continue;
        complete_xfer_raw(v, v->xfer[i].tid);
        v->xfer[i].completed = true;
    }
    pump(v);
}

/* An NVSP request the root completes: the completion's payload and length. */
uint64_t nvsp_request(struct vm *v, const void *msg, uint32_t len, void *out,
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

uint32_t nvsp_init(struct vm *v, uint32_t minv, uint32_t maxv,
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

void ndis_config(struct vm *v, uint32_t mtu)
{
    struct nvsp_msg_ndis_config m = {.type = NVSP_MSG2_SEND_NDIS_CONFIG, .mtu = mtu,
                                     .capabilities = NVSP_CAP_IEEE8021Q | v->caps_extra};
    nvsp_send(v, &m, sizeof(m), 0, false);
}

void ndis_ver(struct vm *v)
{
    struct nvsp_msg_ndis_ver m = {.type = NVSP_MSG1_SEND_NDIS_VER, .ndis_major = 6,
                                  .ndis_minor = 30};
    nvsp_send(v, &m, sizeof(m), 0, false);
}

uint32_t recv_buf(struct vm *v, uint32_t gpadl, struct nvsp_msg_recv_buf_complete *out,
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

uint32_t send_buf(struct vm *v, uint32_t gpadl, struct nvsp_msg_send_buf_complete *out)
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
void nvsp_setup(struct vm *v, uint32_t ver, uint32_t ndis_mtu)
{
    assert_int_equal(nvsp_init(v, ver, ver, NULL, NULL), NVSP_STAT_SUCCESS);
    if (ver >= NVSP_PROTOCOL_VERSION_2)
        ndis_config(v, ndis_mtu);
    ndis_ver(v);
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
    assert_int_equal(send_buf(v, v->sgpadl, NULL), NVSP_STAT_SUCCESS);
}

uint8_t *section(struct vm *v, uint32_t sec)
{
    return v->sbuf + (size_t)sec * NVSP_SEND_SECTION_SIZE;
}

/* SEND_RNDIS_PKT naming `len` bytes of section sec (already written). */
uint64_t rndis_pkt_section(struct vm *v, uint32_t channel, uint32_t sec, uint32_t len)
{
    struct nvsp_msg_rndis_pkt m = {.type = NVSP_MSG1_SEND_RNDIS_PKT, .channel_type = channel,
                                   .send_buf_section_index = sec, .send_buf_section_size = len};
    uint64_t tid = ++v->next_tid;
    nvsp_send(v, &m, sizeof(m), tid, true);
    return tid;
}

uint64_t rndis_send_section(struct vm *v, uint32_t sec, uint32_t channel, const void *msg,
                            uint32_t len)
{
    memcpy(section(v, sec), msg, len);
    return rndis_pkt_section(v, channel, sec, len);
}

/* Check the framing of one transfer the root sent for control. */
void check_ctrl_xfer(const struct vm *v, const struct xfer *x)
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
uint32_t rndis_ctrl(struct vm *v, const void *msg, uint32_t len, void *resp, uint32_t cap,
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
uint32_t build_oid_req(struct vm *v, uint8_t *buf, uint32_t type, uint32_t oid,
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
uint32_t rndis_query(struct vm *v, uint32_t oid, const void *in, uint32_t in_len,
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

uint32_t query_u32(struct vm *v, uint32_t oid)
{
    uint32_t val = 0xdeadbeef, len = sizeof(val);
    assert_int_equal(rndis_query(v, oid, NULL, 0, &val, &len), RNDIS_STATUS_SUCCESS);
    assert_int_equal(len, 4);
    return val;
}

/* The status of a SET (or SET_EX). */
uint32_t rndis_set_type(struct vm *v, uint32_t type, uint32_t oid, const void *in,
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

uint32_t rndis_set(struct vm *v, uint32_t oid, const void *in, uint32_t in_len)
{
    return rndis_set_type(v, RNDIS_MSG_SET, oid, in, in_len);
}

void set_filter(struct vm *v, uint32_t filter)
{
    assert_int_equal(rndis_set(v, RNDIS_OID_GEN_CURRENT_PACKET_FILTER, &filter, 4),
                     RNDIS_STATUS_SUCCESS);
}

void rndis_init(struct vm *v, struct rndis_init_cmplt *out)
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
void bring_up_ver(struct vm *v, uint32_t ver, uint32_t ndis_mtu)
{
    nvsp_setup(v, ver, ndis_mtu);
    rndis_init(v, NULL);
    set_filter(v, RNDIS_FILTER_DIRECTED | RNDIS_FILTER_MULTICAST | RNDIS_FILTER_BROADCAST);
    assert_true(vsw_port_link(v->port));
    inbox_clear(v);
}

void bring_up(struct vm *v)
{
    bring_up_ver(v, V61, FRAME_1514);
}

void make_frame(uint8_t *f, uint32_t len, const uint8_t dst[6], uint8_t seed)
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

uint32_t make_l4_frame(uint8_t *f, uint32_t len, const uint8_t dst[6], unsigned ipv,
                       uint8_t proto, uint32_t ip_opt, uint32_t tcp_opt)
{
    make_frame(f, len, dst, 0x3c);
    uint32_t l3 = ipv == 4 ? 20 + ip_opt : 40;
    uint32_t l4 = proto == IPPROTO_TCP ? 20 + tcp_opt : 8;
    assert_true(len >= 14 + l3 + l4);
    if (ipv == 4) {
        struct rte_ipv4_hdr ip = {
            .version_ihl = (uint8_t)(0x40 | (l3 / 4)),
            .total_length = rte_cpu_to_be_16((uint16_t)(len - 14)),
            .time_to_live = 64,
            .next_proto_id = proto,
            .src_addr = RTE_BE32(0x0a000001),
            .dst_addr = RTE_BE32(0x0a000002),
        };
        memcpy(f + 14, &ip, sizeof(ip));
        memset(f + 14 + sizeof(ip), 1, ip_opt); /* NOP options */
        ip.hdr_checksum = 0;
        uint16_t c = rte_ipv4_cksum((const struct rte_ipv4_hdr *)(f + 14));
        memcpy(f + 14 + offsetof(struct rte_ipv4_hdr, hdr_checksum), &c, 2);
    } else {
        f[12] = 0x86;
        f[13] = 0xdd;
        struct rte_ipv6_hdr ip = {
            .vtc_flow = RTE_BE32(0x60000000),
            .payload_len = rte_cpu_to_be_16((uint16_t)(len - 14 - 40)),
            .proto = proto,
            .hop_limits = 64,
            .src_addr = {0xfd, [15] = 1},
            .dst_addr = {0xfd, [15] = 2},
        };
        memcpy(f + 14, &ip, sizeof(ip));
    }
    uint8_t *t = f + 14 + l3;
    if (proto == IPPROTO_TCP) {
        struct rte_tcp_hdr th = {
            .src_port = RTE_BE16(5001),
            .dst_port = RTE_BE16(80),
            .sent_seq = RTE_BE32(1000),
            .data_off = (uint8_t)((l4 / 4) << 4),
            .tcp_flags = RTE_TCP_ACK_FLAG,
            .rx_win = RTE_BE16(1024),
            .cksum = RTE_BE16(0x1234),
        };
        memcpy(t, &th, sizeof(th));
        memset(t + sizeof(th), 1, tcp_opt);
    } else {
        struct rte_udp_hdr uh = {
            .src_port = RTE_BE16(5001),
            .dst_port = RTE_BE16(53),
            .dgram_len = rte_cpu_to_be_16((uint16_t)(len - 14 - l3)),
            .dgram_cksum = RTE_BE16(0x1234),
        };
        memcpy(t, &uh, sizeof(uh));
    }
    return 14 + l3;
}

bool l4_csum_ok(const uint8_t *f, uint32_t len)
{
    uint8_t buf[PKT_BUF];
    assert_true(len <= sizeof(buf));
    memcpy(buf, f, len);
    if (buf[12] == 0x08) {
        const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(buf + 14);
        return rte_ipv4_udptcp_cksum_verify(ip, buf + 14 + rte_ipv4_hdr_len(ip)) == 0;
    }
    const struct rte_ipv6_hdr *ip = (const struct rte_ipv6_hdr *)(buf + 14);
    return rte_ipv6_udptcp_cksum_verify(ip, buf + 14 + 40) == 0;
}

uint32_t put_ppi(uint8_t *p, uint32_t type, uint32_t value)
{
    struct rndis_ppi r = {.size = 16, .type = type, .ppi_offset = 12};
    memcpy(p, &r, sizeof(r));
    memcpy(p + sizeof(r), &value, 4);
    return 16;
}

/* An RNDIS PACKET_MSG with the frame right after its PPIs. */
uint32_t build_packet(uint8_t *out, const uint8_t *ppis, uint32_t ppi_len,
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
uint32_t build_packet_padded(uint8_t *out, const uint8_t *frame, uint32_t flen)
{
    uint32_t len = build_packet(out, NULL, 0, frame, flen);
    uint32_t padded = (len + 7u) & ~7u;
    memset(out + len, 0, padded - len);
    memcpy(out + 4, &padded, 4);
    return padded;
}

void assert_mbuf_eq(struct rte_mbuf *m, const uint8_t *data, uint32_t len)
{
    static uint8_t tmp[16384];
    assert_non_null(m);
    assert_int_equal(rte_pktmbuf_pkt_len(m), len);
    const uint8_t *p = rte_pktmbuf_read(m, 0, len, tmp);
    assert_non_null(p);
    assert_memory_equal(p, data, len);
}

struct rte_mbuf *frame_mbuf(const uint8_t *d, uint32_t len)
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

uint16_t to_guest(struct vm *v, struct rte_mbuf **m, uint16_t n)
{
    uint16_t sent = v->port->cls->tx_burst(v->port, m, n);
    v->port->cls->tx_flush(v->port);
    return sent;
}

uint16_t frame_to_guest(struct vm *v, const uint8_t *d, uint32_t len)
{
    struct rte_mbuf *m = frame_mbuf(d, len);
    return to_guest(v, &m, 1);
}

/*
 * The RNDIS PACKET_MSG a transfer range points at, checked as a careful
 * guest would: returns the frame and its length, and the checksum PPI value
 * (UINT32_MAX if none).
 */
const uint8_t *rx_frame(const struct vm *v, const struct vmbus_xfer_range *r,
                        uint32_t *len, uint32_t *csum)
{
    /* Where the root puts a message is its own business (small frames
     * share a sub-allocation); a message is 8-byte aligned and lies in
     * one sub-allocation, inside the buffer. */
    assert_int_equal(r->byte_offset % 8, 0);
    assert_true(r->byte_count <= v->sub_size);
    assert_int_equal(r->byte_offset / v->sub_size,
                     (r->byte_offset + r->byte_count - 1) / v->sub_size);
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
unsigned data_frames(const struct vm *v)
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

/* The GPA-direct header after the descriptor: reserved, count, ranges. */
uint32_t gpa_ext(uint8_t *ext, const struct grange *r, uint32_t n, uint32_t count_field)
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

uint64_t rndis_pkt_gpa(struct vm *v, uint32_t channel, uint32_t sec, uint32_t sec_len,
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
struct grange scratch_range(struct vm *v, uint32_t page, uint32_t off, uint32_t count)
{
    struct grange r = {.byte_count = count, .byte_offset = off};
    r.npfn = (off + count + HV_PAGE_SIZE - 1) / HV_PAGE_SIZE;
    assert_true(r.npfn <= 8 && page + r.npfn <= SCRATCH_PAGES);
    for (uint32_t i = 0; i < r.npfn; i++)
        r.pfn[i] = v->scratch_pfn + page + i;
    return r;
}

void open_chan(struct vm *v)
{
    struct vmbus_gchan_params gp = {.tx_pages = RING_PAGES, .rx_pages = RING_PAGES};
    assert_int_equal(vmbus_client_open(v->client, v->relid, &gp, &v->ch), 0);
    v->prim = v->ch;
    memset(v->sub, 0, sizeof(v->sub)); /* closed with the primary by the root */
    v->msg_size = NVSP_MSG_SIZE_61;
    v->sub_size = v->nsub = 0;
    inbox_clear(v);
}

/* Close the channel and open it again: a fresh NVSP connection. The
 * buffer GPADLs stay granted. */
void reopen(struct vm *v)
{
    use_chan(v, 0);
    /* The root rescinds the sub-channels when the primary closes: close
     * them first, as a guest does (Linux closes sub-channels before the
     * primary). */
    for (uint32_t i = 1; i < SUBS_MAX; i++)
        if (v->sub[i])
            assert_int_equal(vmbus_client_close(v->sub[i]), 0);
    assert_int_equal(vmbus_client_close(v->ch), 0);
    v->ch = NULL;
    open_chan(v);
}

uint32_t grant(struct vm *v, uint32_t pages, uint64_t *pfn_out)
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

struct vm *vm_create(struct fix *f, const char *name, const uint8_t mac[6],
                     uint32_t nic_mtu)
{
    return vm_create_q(f, name, mac, nic_mtu, 1);
}

void use_chan(struct vm *v, uint32_t i)
{
    assert_true(i < SUBS_MAX);
    v->ch = i ? v->sub[i] : v->prim;
    assert_non_null(v->ch);
}

/* The guest opens sub-channel i's offer (again). */
void open_sub(struct vm *v, uint32_t i)
{
    struct vmbus_offer_info oi[VMBUS_CLIENT_MAX_OFFERS];
    int n = vmbus_client_offers(v->client, oi, VMBUS_CLIENT_MAX_OFFERS);
    uint32_t relid = 0;
    for (int k = 0; k < n; k++)
        if (!oi[k].rescinded && oi[k].sub_channel_index == i)
            relid = oi[k].relid;
    assert_int_not_equal(relid, 0);
    struct vmbus_gchan_params gp = {.tx_pages = RING_PAGES, .rx_pages = RING_PAGES};
    assert_int_equal(vmbus_client_open(v->client, relid, &gp, &v->sub[i]), 0);
}

uint32_t open_subs(struct vm *v, uint32_t ask, uint32_t *status)
{
    struct nvsp_msg_subchannel q = {.type = NVSP_MSG5_SUBCHANNEL,
                                    .op_or_status = NVSP_SUBCHANNEL_ALLOCATE,
                                    .num_subchannels = ask},
                               a;
    use_chan(v, 0);
    nvsp_request(v, &q, sizeof(q), &a, sizeof(a), NULL);
    assert_int_equal(a.type, NVSP_MSG5_SUBCHANNEL);
    if (status)
        *status = a.op_or_status;
    if (a.op_or_status != NVSP_STAT_SUCCESS)
        return 0;
    assert_true(a.num_subchannels <= ask && a.num_subchannels < SUBS_MAX);
    /* The control thread offers them; the guest hears of them. */
    while (hv_host_run(v->host, 0) > 0)
        ;
    assert_true(vmbus_client_poll(v->client) >= 0);
    for (uint32_t i = 1; i <= a.num_subchannels; i++)
        open_sub(v, i);
    return a.num_subchannels;
}

struct vm *vm_create_q(struct fix *f, const char *name, const uint8_t mac[6], uint32_t nic_mtu,
                       uint32_t queues)
{
    struct vm *v = calloc(1, sizeof(*v)); /* may outlive a test body: not cmocka's */
    assert_non_null(v);
    struct hv_partition_params pp = {
        .name = name, .memory_bytes = MEM_BYTES, .cls = &hv_direct_partition_class};
    assert_int_equal(hv_partition_create(f->host, &pp, &v->part), 0);
    assert_int_equal(vmbus_server_create(v->part, &v->srv), 0);
    struct netvsp_params np = {.port_name = name, .nic_name = "eth0", .mtu = nic_mtu,
                               .pool = g_pool, .queues = queues};
    v->host = f->host;
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

void vm_destroy(struct vm *v)
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

int setup(void **state)
{
    struct fix *f = test_calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(hv_host_create(&f->host), 0);
    f->a = vm_create(f, "vm-a", MAC_A, NIC_MTU);
    *state = f;
    return 0;
}

int teardown(void **state)
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

int group_setup(void **state)
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

int group_teardown(void **state)
{
    (void)state;
    rte_mempool_free(g_pool);
    rte_eal_cleanup();
    return 0;
}

/* Send one frame of len bytes, ethertype et, GPA-direct; how many the
 * switch got. */
int send_sized(struct vm *v, uint32_t len, uint16_t et)
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

/* Free bytes in the root's ring to the guest, as the root's producer sees it. */
uint32_t root_ring_free(struct vm *v)
{
    struct vmbus_ring *r = vmbus_gchan_rx(v->ch);
    uint32_t w = __atomic_load_n(&r->hdr->write_index, __ATOMIC_ACQUIRE);
    uint32_t rd = __atomic_load_n(&r->hdr->read_index, __ATOMIC_ACQUIRE);
    uint32_t used = w >= rd ? w - rd : r->dsize - rd + w;
    return r->dsize - used - 8;
}

bool range_ppi(const struct vm *v, const struct vmbus_xfer_range *r, uint32_t type,
               uint32_t *val)
{
    const uint8_t *msg = v->rbuf + r->byte_offset;
    struct rndis_packet_msg pm;
    memcpy(&pm, msg, sizeof(pm));
    for (uint32_t p = 0; p + sizeof(struct rndis_ppi) <= pm.ppi_len;) {
        struct rndis_ppi ppi;
        memcpy(&ppi, msg + RNDIS_HEADER_SIZE + pm.ppi_offset + p, sizeof(ppi));
        assert_true(ppi.size >= sizeof(ppi) + 4);
        if (ppi.type == type) {
            memcpy(val, msg + RNDIS_HEADER_SIZE + pm.ppi_offset + p + ppi.ppi_offset, 4);
            return true;
        }
        p += ppi.size;
    }
    return false;
}
