/*
 * Unit tests of the VMBus server (vmbus-server.h) and of the channel-message
 * checker (vmbus-msg.h).
 *
 * Each test runs a direct partition: the guest is this test, posting raw
 * channel messages with hv_guest_post_message() and reading the root's
 * answers from its SynIC slot, so every out-of-order, duplicate or malformed
 * message can be sent exactly as a hostile guest would. Outcomes are checked
 * through the answers, vmbus_server_get_stats() and the device callbacks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv-guest.h"
#include "hv.h"
#include "vmbus-msg.h"
#include "vmbus-proto.h"
#include "vmbus-server.h"

#define MEM_BYTES (16ull << 20)
#define MEM_PAGES (MEM_BYTES >> HV_PAGE_SHIFT)
#define NCHAN 2    /* channels offered by the fixture: relids 1 and 2 */
#define NVP 2      /* the fixture's partition has VPs 0 and 1 */
#define MAX_DEVS 4 /* room for hot-added channels */
#define MSG_CONN VMBUS_MESSAGE_CONNECTION_ID
#define RING_PAGES 8u
#define RING_SPLIT 4u
#define GPADL_A 0xe1e10u
#define GPADL_B 0xe1e11u
#define GPADL_C 0xe1e12u

/* A device that records what the server asks of it. */
struct dev {
    int opens;
    int closes;
    int closed_at;     /* close_seq when it last closed */
    int open_rc;       /* what open returns */
    bool fail_in_open; /* call vmbus_chan_fail() from open */
    bool rings_ok;     /* rx/tx rings and event fd were there at open */
    struct vmbus_gpadl *held; /* a reference the device took; put at close */
};

struct fix {
    struct hv_host *host;
    struct hv_partition *part;
    struct vmbus_server *srv;
    struct hv_guest *g;
    struct dev dev[MAX_DEVS];
    struct vmbus_chan *chan[MAX_DEVS];
};

static int dev_open(void *ctx, struct vmbus_chan *chan)
{
    struct dev *d = ctx;
    d->opens++;
    d->rings_ok = vmbus_chan_rx(chan) && vmbus_chan_tx(chan) && vmbus_chan_event_fd(chan) >= 0;
    if (d->fail_in_open)
        vmbus_chan_fail(chan);
    return d->open_rc;
}

static int close_seq; /* device closes, in order, across devices */

static void dev_close(void *ctx, struct vmbus_chan *chan)
{
    struct dev *d = ctx;
    (void)chan;
    d->closes++;
    d->closed_at = ++close_seq;
    if (d->held) {
        vmbus_gpadl_put(d->held);
        d->held = NULL;
    }
}

static const struct vmbus_device_ops dev_ops = {.open = dev_open, .close = dev_close};

static struct vmbus_offer_params offer_params(unsigned i)
{
    struct vmbus_offer_params op = {.class_id = VMBUS_GUID_NETVSC};
    op.instance_id.b[0] = (uint8_t)(0xa0 + i);
    op.instance_id.b[15] = 0x5a;
    op.class_id.b[15] = (uint8_t)(op.class_id.b[15] + i); /* a distinct class per device */
    return op;
}

static int offer(struct fix *f, unsigned i)
{
    struct vmbus_offer_params op = offer_params(i);
    f->dev[i] = (struct dev){0};
    return vmbus_server_offer(f->srv, &op, &dev_ops, &f->dev[i], &f->chan[i]);
}

static int attach_guest(struct fix *f)
{
    int rc = hv_direct_partition_attach(f->part, &f->g);
    if (rc < 0)
        return rc;
    return hv_guest_synic_enable(f->g, 1u << VMBUS_MESSAGE_SINT) == HV_STATUS_SUCCESS ? 0 : -EIO;
}

static int setup(void **state)
{
    struct fix *f = test_calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(hv_host_create(&f->host), 0);
    struct hv_partition_params pp = {
        .name = "vmbus-srv-test",
        .memory_bytes = MEM_BYTES,
        .vp_count = NVP,
        .cls = &hv_direct_partition_class,
    };
    assert_int_equal(hv_partition_create(f->host, &pp, &f->part), 0);
    assert_int_equal(vmbus_server_create(f->part, &f->srv), 0);
    for (unsigned i = 0; i < NCHAN; i++)
        assert_int_equal(offer(f, i), 0);
    assert_int_equal(hv_partition_start(f->part), 0);
    assert_int_equal(attach_guest(f), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fix *f = *state;
    hv_guest_detach(f->g);
    vmbus_server_destroy(f->srv);
    hv_host_destroy(f->host);
    test_free(f);
    return 0;
}

/* --- the guest's side of the conversation ------------------------------ */

static struct vmbus_server_stats stats(struct fix *f)
{
    struct vmbus_server_stats st;
    vmbus_server_get_stats(f->srv, &st);
    return st;
}

static uint64_t errs(struct fix *f, enum vmbus_srv_err e)
{
    return stats(f).errors[e];
}

static int post(struct fix *f, uint32_t conn, const void *msg, uint32_t len)
{
    return hv_guest_post_message(f->g, conn, HVMSG_VMBUS, msg, len);
}

/* Post on the message connection and require the hypercall to succeed. */
static void send_msg(struct fix *f, const void *msg, uint32_t len)
{
    assert_int_equal(post(f, MSG_CONN, msg, len), HV_STATUS_SUCCESS);
}

/* The next channel message from the root: its type, or -EAGAIN. */
static int recv_msg(struct fix *f, void *buf, uint32_t *len)
{
    struct hv_message m;
    int rc = hv_guest_recv_message(f->g, VMBUS_MESSAGE_SINT, &m);
    if (rc < 0)
        return rc;
    assert_int_equal(m.message_type, HVMSG_VMBUS);
    assert_true(m.payload_size >= sizeof(struct vmbus_msg_hdr));
    memcpy(buf, m.payload, m.payload_size);
    if (len)
        *len = m.payload_size;
    struct vmbus_msg_hdr h;
    memcpy(&h, m.payload, sizeof(h));
    return (int)h.msgtype;
}

static void expect_msg(struct fix *f, uint32_t type, void *out, size_t size)
{
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    uint32_t len = 0;
    int t = recv_msg(f, buf, &len);
    if (t != (int)type)
        fail_msg("expected %s from the root, got %s (%d)", vmbus_msg_name(type),
                 t < 0 ? "nothing" : vmbus_msg_name((uint32_t)t), t);
    assert_true(len >= size);
    if (out)
        memcpy(out, buf, size);
}

static void expect_none(struct fix *f)
{
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    int t = recv_msg(f, buf, NULL);
    if (t != -EAGAIN)
        fail_msg("expected no message from the root, got %s",
                 t < 0 ? "an error" : vmbus_msg_name((uint32_t)t));
}

static int drain(struct fix *f)
{
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    int n = 0;
    while (recv_msg(f, buf, NULL) >= 0)
        n++;
    return n;
}

/* Drain everything; true if a message of `type` whose u32 at offset 8 is
 * `key` was among it. */
static bool drain_find(struct fix *f, uint32_t type, uint32_t key)
{
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    uint32_t len;
    bool found = false;
    int t;
    while ((t = recv_msg(f, buf, &len)) >= 0) {
        uint32_t v = 0;
        if (len >= 12)
            memcpy(&v, buf + 8, sizeof(v));
        found |= (uint32_t)t == type && v == key;
    }
    return found;
}

static struct vmbus_msg_initiate_contact contact_msg(uint32_t version)
{
    struct vmbus_msg_initiate_contact m;
    memset(&m, 0, sizeof(m));
    m.hdr.msgtype = VMBUS_MSG_INITIATE_CONTACT;
    m.version_requested = version;
    if (version >= VMBUS_VERSION_WIN10_V5)
        m.u.v5.msg_sint = VMBUS_MESSAGE_SINT;
    return m;
}

static uint32_t contact_conn(uint32_t version)
{
    return version >= VMBUS_VERSION_WIN10_V5 ? VMBUS_MESSAGE_CONNECTION_ID_4
                                             : VMBUS_MESSAGE_CONNECTION_ID;
}

/* Send INITIATE_CONTACT and return the VERSION_RESPONSE. */
static struct vmbus_msg_version_response contact(struct fix *f, uint32_t conn,
                                                 const struct vmbus_msg_initiate_contact *m)
{
    struct vmbus_msg_version_response r;
    assert_int_equal(post(f, conn, m, sizeof(*m)), HV_STATUS_SUCCESS);
    expect_msg(f, VMBUS_MSG_VERSION_RESPONSE, &r, sizeof(r));
    return r;
}

static void connect_version(struct fix *f, uint32_t version)
{
    struct vmbus_msg_initiate_contact m = contact_msg(version);
    struct vmbus_msg_version_response r = contact(f, contact_conn(version), &m);
    assert_int_equal(r.version_supported, 1);
    assert_int_equal(r.connection_state, 0);
    if (version >= VMBUS_VERSION_WIN10_V5)
        assert_int_equal(r.msg_conn_id, MSG_CONN);
    assert_int_equal(stats(f).version, version);
    assert_true(vmbus_server_connected(f->srv));
}

static void send_hdr_only(struct fix *f, uint32_t type)
{
    struct vmbus_msg_hdr h = {.msgtype = type};
    send_msg(f, &h, sizeof(h));
}

/* REQUESTOFFERS; expect the offers for relids[0..n) in order, then
 * ALLOFFERS_DELIVERED. */
static void request_offers_expect(struct fix *f, const uint32_t *relids, unsigned n)
{
    send_hdr_only(f, VMBUS_MSG_REQUESTOFFERS);
    for (unsigned i = 0; i < n; i++) {
        struct vmbus_msg_offer o;
        expect_msg(f, VMBUS_MSG_OFFERCHANNEL, &o, sizeof(o));
        assert_int_equal(o.child_relid, relids[i]);
        assert_int_equal(o.connection_id, VMBUS_CHAN_CONN_ID_BASE + relids[i]);
        assert_int_equal(o.monitor_allocated, 0);
        assert_int_equal(o.is_dedicated_interrupt & 1, 1);
    }
    expect_msg(f, VMBUS_MSG_ALLOFFERS_DELIVERED, NULL, sizeof(struct vmbus_msg_hdr));
    expect_none(f);
}

static void connect_and_offers(struct fix *f)
{
    static const uint32_t relids[NCHAN] = {1, 2};
    connect_version(f, VMBUS_VERSION_WIN10_V5_3);
    request_offers_expect(f, relids, NCHAN);
}

/* One GPA range record {byte_count, byte_offset, pfn[n]} at p; returns its size. */
static size_t put_range(uint8_t *p, uint32_t byte_count, uint32_t byte_offset,
                        const uint64_t *pfns, uint32_t n)
{
    struct vmbus_gpa_range r = {.byte_count = byte_count, .byte_offset = byte_offset};
    memcpy(p, &r, sizeof(r));
    memcpy(p + sizeof(r), pfns, (size_t)n * 8u);
    return sizeof(r) + (size_t)n * 8u;
}

/*
 * Send a GPADL as the guest would: a header with the declared rangecount and
 * range_buflen and as much of the range stream as fits, then bodies with the
 * rest. Nothing is read back.
 */
static void send_gpadl_raw(struct fix *f, uint32_t relid, uint32_t id, uint16_t rangecount,
                           uint16_t range_buflen, const uint8_t *stream, size_t stream_len)
{
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    struct vmbus_msg_gpadl_header h;
    memset(&h, 0, sizeof(h));
    h.hdr.msgtype = VMBUS_MSG_GPADL_HEADER;
    h.child_relid = relid;
    h.gpadl = id;
    h.rangecount = rangecount;
    h.range_buflen = range_buflen;
    size_t room = (sizeof(buf) - sizeof(h)) & ~(size_t)7;
    size_t first = stream_len < room ? stream_len : room;
    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), stream, first);
    send_msg(f, buf, (uint32_t)(sizeof(h) + first));
    size_t sent = first;
    for (uint32_t msgno = 1; sent < stream_len; msgno++) {
        struct vmbus_msg_gpadl_body b = {{VMBUS_MSG_GPADL_BODY, 0}, msgno, id};
        size_t k = stream_len - sent;
        if (k > sizeof(buf) - sizeof(b))
            k = sizeof(buf) - sizeof(b);
        memcpy(buf, &b, sizeof(b));
        memcpy(buf + sizeof(b), stream + sent, k);
        send_msg(f, buf, (uint32_t)(sizeof(b) + k));
        sent += k;
    }
}

/* The GPADL_CREATED answer for id: its status. */
static uint32_t gpadl_answer(struct fix *f, uint32_t relid, uint32_t id)
{
    struct vmbus_msg_gpadl_created c;
    expect_msg(f, VMBUS_MSG_GPADL_CREATED, &c, sizeof(c));
    assert_int_equal(c.gpadl, id);
    assert_int_equal(c.child_relid, relid);
    return c.status;
}

/* A single-range GPADL of n whole pages; returns the GPADL_CREATED status. */
static uint32_t gpadl_create(struct fix *f, uint32_t relid, uint32_t id, const uint64_t *pfns,
                             uint32_t n)
{
    static uint8_t stream[8 + 8 * 4096];
    assert_true(n <= 4096);
    size_t len = put_range(stream, n * HV_PAGE_SIZE, 0, pfns, n);
    send_gpadl_raw(f, relid, id, 1, (uint16_t)len, stream, len);
    return gpadl_answer(f, relid, id);
}

static uint64_t alloc_run(struct fix *f, uint32_t n, uint64_t *pfns)
{
    uint64_t first;
    assert_int_equal(hv_guest_alloc_pages(f->g, n, &first), 0);
    for (uint32_t i = 0; pfns && i < n; i++)
        pfns[i] = first + i;
    return first;
}

/* Allocate RING_PAGES pages and grant them to relid as GPADL id. */
static uint64_t make_ring_gpadl(struct fix *f, uint32_t relid, uint32_t id)
{
    uint64_t pfns[RING_PAGES];
    uint64_t first = alloc_run(f, RING_PAGES, pfns);
    assert_int_equal(gpadl_create(f, relid, id, pfns, RING_PAGES), 0);
    return first;
}

static void send_open(struct fix *f, uint32_t relid, uint32_t gpadl, uint32_t split, uint32_t vp)
{
    struct vmbus_msg_open m;
    memset(&m, 0, sizeof(m));
    m.hdr.msgtype = VMBUS_MSG_OPENCHANNEL;
    m.child_relid = relid;
    m.open_id = relid + 0x1000;
    m.ring_gpadl = gpadl;
    m.target_vp = vp;
    m.downstream_page_offset = split;
    send_msg(f, &m, sizeof(m));
}

/* OPENCHANNEL; returns the OPENCHANNEL_RESULT status. */
static uint32_t open_chan(struct fix *f, uint32_t relid, uint32_t gpadl, uint32_t split,
                          uint32_t vp)
{
    send_open(f, relid, gpadl, split, vp);
    struct vmbus_msg_open_result r;
    expect_msg(f, VMBUS_MSG_OPENCHANNEL_RESULT, &r, sizeof(r));
    assert_int_equal(r.child_relid, relid);
    assert_int_equal(r.open_id, relid + 0x1000);
    return r.status;
}

static void send_relid_msg(struct fix *f, uint32_t type, uint32_t relid)
{
    struct vmbus_msg_relid m = {{type, 0}, relid};
    send_msg(f, &m, sizeof(m));
}

static void send_teardown(struct fix *f, uint32_t relid, uint32_t gpadl)
{
    struct vmbus_msg_gpadl_teardown m = {{VMBUS_MSG_GPADL_TEARDOWN, 0}, relid, gpadl};
    send_msg(f, &m, sizeof(m));
}

static void expect_torndown(struct fix *f, uint32_t gpadl)
{
    struct vmbus_msg_gpadl_torndown t;
    expect_msg(f, VMBUS_MSG_GPADL_TORNDOWN, &t, sizeof(t));
    assert_int_equal(t.gpadl, gpadl);
}

/* Connected, offers seen, channel 1 open on GPADL_A. */
static void open_channel_1(struct fix *f)
{
    connect_and_offers(f);
    make_ring_gpadl(f, 1, GPADL_A);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), 0);
    assert_int_equal(f->dev[0].opens, 1);
    assert_true(f->dev[0].rings_ok);
    assert_true(vmbus_chan_is_open(f->chan[0]));
}

/* --- version negotiation ----------------------------------------------- */

static void initiate_contact__each_supported_version_on_its_conn_id__accepted(void **state)
{
    struct fix *f = *state;
    for (size_t i = 0; i < VMBUS_VERSION_COUNT; i++) {
        connect_version(f, vmbus_versions[i]);
        expect_none(f);
    }
    /* The oldest again, after the newest: a reconnect may go down. */
    connect_version(f, VMBUS_VERSION_WIN8);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_VERSION), 0);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_CONN_ID), 0);
    assert_int_equal(stats(f).msgs_in[VMBUS_MSG_INITIATE_CONTACT], VMBUS_VERSION_COUNT + 1);
}

static void initiate_contact__unsupported_version__version_supported_0(void **state)
{
    struct fix *f = *state;
    static const uint32_t bad[] = {0x00070000u, 0x00050004u, 0x00060000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vmbus_msg_initiate_contact m = contact_msg(bad[i]);
        struct vmbus_msg_version_response r = contact(f, VMBUS_MESSAGE_CONNECTION_ID_4, &m);
        assert_int_equal(r.version_supported, 0);
        assert_false(vmbus_server_connected(f->srv));
    }
    /* Older than the profile: WS2008, WIN7, and near misses. */
    static const uint32_t old[] = {VMBUS_VERSION_WS2008, VMBUS_VERSION_WIN7, 0x00020003u,
                                   0x00040002u, 0};
    for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
        struct vmbus_msg_initiate_contact m = contact_msg(old[i]);
        struct vmbus_msg_version_response r = contact(f, VMBUS_MESSAGE_CONNECTION_ID, &m);
        assert_int_equal(r.version_supported, 0);
    }
    assert_int_equal(errs(f, VMBUS_SRV_ERR_VERSION), 9);
    assert_int_equal(stats(f).version, 0);
    /* Still not connected: offers are refused. */
    send_hdr_only(f, VMBUS_MSG_REQUESTOFFERS);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_NOT_CONNECTED), 1);
}

static void initiate_contact__wrong_conn_id__dropped_and_counted(void **state)
{
    struct fix *f = *state;
    struct vmbus_msg_initiate_contact v5 = contact_msg(VMBUS_VERSION_WIN10_V5_3);
    struct vmbus_msg_initiate_contact v4 = contact_msg(VMBUS_VERSION_WIN10);
    assert_int_equal(post(f, VMBUS_MESSAGE_CONNECTION_ID, &v5, sizeof(v5)), HV_STATUS_SUCCESS);
    assert_int_equal(post(f, VMBUS_MESSAGE_CONNECTION_ID_4, &v4, sizeof(v4)), HV_STATUS_SUCCESS);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_CONN_ID), 2);
    assert_false(vmbus_server_connected(f->srv));
    /* Ids nobody listens on are refused by the hypervisor itself. */
    assert_int_equal(post(f, 2, &v5, sizeof(v5)), HV_STATUS_INVALID_CONNECTION_ID);
    assert_int_equal(post(f, 3, &v5, sizeof(v5)), HV_STATUS_INVALID_CONNECTION_ID);

    /* Once connected, only id 1 carries messages: id 4 is counted and dropped. */
    connect_and_offers(f);
    make_ring_gpadl(f, 1, GPADL_A);
    struct vmbus_msg_open m;
    memset(&m, 0, sizeof(m));
    m.hdr.msgtype = VMBUS_MSG_OPENCHANNEL;
    m.child_relid = 1;
    m.ring_gpadl = GPADL_A;
    m.downstream_page_offset = RING_SPLIT;
    assert_int_equal(post(f, VMBUS_MESSAGE_CONNECTION_ID_4, &m, sizeof(m)), HV_STATUS_SUCCESS);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_CONN_ID), 3);
    assert_int_equal(f->dev[0].opens, 0);
}

/* A VP the partition does not have is refused (answered on VP 0) and
 * counted; before VMBus 3.0 the field means nothing (Hyper-V sends to VP 0
 * whatever it says) and is not looked at. */
static void initiate_contact__target_vcpu_beyond_partition__refused_counted(void **state)
{
    struct fix *f = *state;
    struct vmbus_msg_initiate_contact m = contact_msg(VMBUS_VERSION_WIN10_V5_3);
    m.target_vcpu = NVP;
    struct vmbus_msg_version_response r = contact(f, VMBUS_MESSAGE_CONNECTION_ID_4, &m);
    assert_int_equal(r.version_supported, 0);
    m = contact_msg(VMBUS_VERSION_WIN8_1);
    m.target_vcpu = 0xffffffffu;
    r = contact(f, VMBUS_MESSAGE_CONNECTION_ID, &m);
    assert_int_equal(r.version_supported, 0);
    assert_false(vmbus_server_connected(f->srv));
    assert_int_equal(errs(f, VMBUS_SRV_ERR_VP), 2);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_VERSION), 0);
    m = contact_msg(VMBUS_VERSION_WIN8);
    m.target_vcpu = 7;
    assert_int_equal(contact(f, VMBUS_MESSAGE_CONNECTION_ID, &m).version_supported, 1);
}

/* Other guest side of a conversation: the next message on VP vp. */
static int recv_msg_vp(struct fix *f, uint32_t vp, void *buf)
{
    struct hv_message m;
    int rc = hv_guest_recv_message_vp(f->g, vp, VMBUS_MESSAGE_SINT, &m);
    if (rc < 0)
        return rc;
    memcpy(buf, m.payload, m.payload_size);
    struct vmbus_msg_hdr h;
    memcpy(&h, m.payload, sizeof(h));
    return (int)h.msgtype;
}

static bool vp_signalled(struct fix *f, uint32_t vp)
{
    uint64_t v;
    return read(hv_guest_vp_sint_fd(f->g, vp), &v, sizeof(v)) == sizeof(v);
}

/*
 * INITIATE_CONTACT names the VP the connection's messages go to (Hyper-V
 * from VMBus 3.0 on; Linux names the VP of its VMBUS_CONNECT_CPU): the
 * answer and everything after it arrive in that VP's SIMP slot and assert
 * that VP's SINT.
 */
static void initiate_contact__target_vcpu_1__messages_on_vp_1(void **state)
{
    struct fix *f = *state;
    vp_signalled(f, 0);
    vp_signalled(f, 1);
    struct vmbus_msg_initiate_contact m = contact_msg(VMBUS_VERSION_WIN10_V5_3);
    m.target_vcpu = 1;
    assert_int_equal(post(f, VMBUS_MESSAGE_CONNECTION_ID_4, &m, sizeof(m)), HV_STATUS_SUCCESS);
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    assert_int_equal(recv_msg_vp(f, 0, buf), -EAGAIN);
    assert_false(vp_signalled(f, 0));
    assert_true(vp_signalled(f, 1));
    assert_int_equal(recv_msg_vp(f, 1, buf), VMBUS_MSG_VERSION_RESPONSE);
    struct vmbus_msg_version_response r;
    memcpy(&r, buf, sizeof(r));
    assert_int_equal(r.version_supported, 1);
    send_hdr_only(f, VMBUS_MSG_REQUESTOFFERS);
    assert_int_equal(recv_msg_vp(f, 0, buf), -EAGAIN);
    for (int i = 0; i < NCHAN; i++)
        assert_int_equal(recv_msg_vp(f, 1, buf), VMBUS_MSG_OFFERCHANNEL);
    assert_int_equal(recv_msg_vp(f, 1, buf), VMBUS_MSG_ALLOFFERS_DELIVERED);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_VP), 0);
    /* A new connection can move them back. */
    connect_version(f, VMBUS_VERSION_WIN10_V5_3);
    assert_int_equal(recv_msg_vp(f, 1, buf), -EAGAIN);
}

static void initiate_contact__monitor_pages_mixed_or_bad__refused(void **state)
{
    struct fix *f = *state;
    const uint64_t page = 16ull << HV_PAGE_SHIFT;
    const struct {
        uint64_t m1, m2;
    } bad[] = {
        {page, 0},                                /* one zero */
        {0, page},                                /* the other zero */
        {page + 8, page + HV_PAGE_SIZE},          /* not page aligned */
        {page, MEM_BYTES},                        /* outside memory */
        {~0ull & ~(uint64_t)(HV_PAGE_SIZE - 1), page},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vmbus_msg_initiate_contact m = contact_msg(VMBUS_VERSION_WIN10_V5_2);
        m.monitor_page1 = bad[i].m1;
        m.monitor_page2 = bad[i].m2;
        struct vmbus_msg_version_response r = contact(f, VMBUS_MESSAGE_CONNECTION_ID_4, &m);
        assert_int_equal(r.version_supported, 0);
        assert_false(vmbus_server_connected(f->srv));
    }
    assert_int_equal(errs(f, VMBUS_SRV_ERR_VERSION), sizeof(bad) / sizeof(bad[0]));
    /* Both given, aligned, inside memory: fine. */
    struct vmbus_msg_initiate_contact m = contact_msg(VMBUS_VERSION_WIN10_V5_2);
    m.monitor_page1 = page;
    m.monitor_page2 = page + HV_PAGE_SIZE;
    assert_int_equal(contact(f, VMBUS_MESSAGE_CONNECTION_ID_4, &m).version_supported, 1);
}

static void initiate_contact__v5_wrong_sint_or_vtl__refused(void **state)
{
    struct fix *f = *state;
    struct vmbus_msg_initiate_contact m = contact_msg(VMBUS_VERSION_WIN10_V5);
    m.u.v5.msg_sint = 3;
    assert_int_equal(contact(f, VMBUS_MESSAGE_CONNECTION_ID_4, &m).version_supported, 0);
    m = contact_msg(VMBUS_VERSION_WIN10_V5);
    m.u.v5.msg_vtl = 1;
    assert_int_equal(contact(f, VMBUS_MESSAGE_CONNECTION_ID_4, &m).version_supported, 0);
    assert_false(vmbus_server_connected(f->srv));
}

static void initiate_contact__while_connected__resets_connection(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    uint64_t pfns[3];
    alloc_run(f, 3, pfns);
    assert_int_equal(gpadl_create(f, 2, GPADL_B, pfns, 3), 0);
    assert_int_equal(stats(f).gpadls, 2);
    assert_int_equal(stats(f).gpadl_pages, RING_PAGES + 3);

    connect_version(f, VMBUS_VERSION_WIN10_V5_1);
    expect_none(f);
    assert_int_equal(f->dev[0].closes, 1);
    assert_false(vmbus_chan_is_open(f->chan[0]));
    assert_int_equal(stats(f).gpadls, 0);
    assert_int_equal(stats(f).gpadl_pages, 0);

    /* The new connection starts from scratch: offers again, old GPADL ids unknown. */
    static const uint32_t relids[NCHAN] = {1, 2};
    request_offers_expect(f, relids, NCHAN);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    assert_int_equal(f->dev[0].opens, 1);
    /* The pages are free to be granted again. */
    assert_int_equal(gpadl_create(f, 2, GPADL_B, pfns, 3), 0);
}

static void initiate_contact__refused_while_connected__still_resets(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    struct vmbus_msg_initiate_contact m = contact_msg(0x00070000u);
    assert_int_equal(contact(f, VMBUS_MESSAGE_CONNECTION_ID_4, &m).version_supported, 0);
    assert_false(vmbus_server_connected(f->srv));
    assert_int_equal(f->dev[0].closes, 1);
    assert_int_equal(stats(f).gpadls, 0);
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 1);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_NOT_CONNECTED), 1);
}

/* --- messages the server must refuse without a state change ------------ */

static void handle_message__before_initiate_contact__dropped_not_connected(void **state)
{
    struct fix *f = *state;
    uint64_t pfns[2];
    alloc_run(f, 2, pfns);
    send_hdr_only(f, VMBUS_MSG_REQUESTOFFERS);
    send_open(f, 1, GPADL_A, 2, 0);
    uint8_t stream[64];
    size_t len = put_range(stream, 2 * HV_PAGE_SIZE, 0, pfns, 2);
    send_gpadl_raw(f, 1, GPADL_A, 1, (uint16_t)len, stream, len);
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 1);
    send_teardown(f, 1, GPADL_A);
    struct vmbus_msg_gpadl_body b = {{VMBUS_MSG_GPADL_BODY, 0}, 1, GPADL_A};
    send_msg(f, &b, sizeof(b));
    expect_none(f);
    struct vmbus_server_stats st = stats(f);
    assert_int_equal(st.errors[VMBUS_SRV_ERR_NOT_CONNECTED], 6);
    assert_int_equal(st.gpadls, 0);
    assert_int_equal(st.gpadl_pages, 0);
    for (int t = 0; t < VMBUS_MSG_TYPE_MAX; t++)
        assert_int_equal(st.msgs_in[t], 0);
    assert_int_equal(f->dev[0].opens, 0);
    /* UNLOAD is allowed before contact: answered, nothing else happens. */
    send_hdr_only(f, VMBUS_MSG_UNLOAD);
    expect_msg(f, VMBUS_MSG_UNLOAD_RESPONSE, NULL, 8);
    expect_none(f);
}

static void handle_message__too_short__counted_malformed(void **state)
{
    struct fix *f = *state;
    static const uint32_t guest_types[] = {
        VMBUS_MSG_OPENCHANNEL,    VMBUS_MSG_CLOSECHANNEL,     VMBUS_MSG_GPADL_HEADER,
        VMBUS_MSG_GPADL_BODY,     VMBUS_MSG_GPADL_TEARDOWN,   VMBUS_MSG_RELID_RELEASED,
        VMBUS_MSG_INITIATE_CONTACT, VMBUS_MSG_MODIFYCHANNEL,
    };
    open_channel_1(f);
    struct vmbus_server_stats before = stats(f);
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    memset(buf, 0, sizeof(buf));
    /* Fields that would name real objects, were the message long enough. */
    uint32_t one = 1, gp = GPADL_A;
    memcpy(buf + 8, &one, 4);
    memcpy(buf + 12, &gp, 4);
    uint64_t n = 0;
    for (size_t i = 0; i < sizeof(guest_types) / sizeof(guest_types[0]); i++) {
        uint32_t type = guest_types[i];
        memcpy(buf, &type, 4);
        uint32_t min = vmbus_msg_min_len(type);
        assert_true(min > 8);
        for (uint32_t len = 8; len < min; len += (min - 8 > 16 ? 7 : 1)) {
            send_msg(f, buf, len);
            n++;
        }
        send_msg(f, buf, min - 1);
        n++;
    }
    /* Shorter than the header itself, including empty. */
    for (uint32_t len = 0; len < 8; len++) {
        send_msg(f, buf, len);
        n++;
    }
    expect_none(f);
    struct vmbus_server_stats after = stats(f);
    assert_int_equal(after.errors[VMBUS_SRV_ERR_MALFORMED] - before.errors[VMBUS_SRV_ERR_MALFORMED],
                     n);
    assert_memory_equal(after.msgs_in, before.msgs_in, sizeof(after.msgs_in));
    assert_int_equal(after.version, before.version);
    assert_int_equal(after.gpadls, 1);
    assert_true(vmbus_chan_is_open(f->chan[0]));
    assert_int_equal(f->dev[0].closes, 0);
}

static void handle_message__unknown_type__counted_malformed(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    static const uint32_t unknown[] = {0, 18, 19, 20, 21, 23, 25, 26, 29, 0x80000001u, 0xffffffffu};
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    memset(buf, 0, sizeof(buf));
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        memcpy(buf, &unknown[i], 4);
        send_msg(f, buf, sizeof(buf));
    }
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_MALFORMED), sizeof(unknown) / sizeof(unknown[0]));
    assert_true(vmbus_server_connected(f->srv));
}

static void handle_message__host_to_guest_type_from_guest__counted_malformed(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    static const uint32_t host_types[] = {
        VMBUS_MSG_OFFERCHANNEL,    VMBUS_MSG_RESCIND_CHANNELOFFER, VMBUS_MSG_ALLOFFERS_DELIVERED,
        VMBUS_MSG_OPENCHANNEL_RESULT, VMBUS_MSG_GPADL_CREATED,     VMBUS_MSG_GPADL_TORNDOWN,
        VMBUS_MSG_VERSION_RESPONSE, VMBUS_MSG_UNLOAD_RESPONSE,     VMBUS_MSG_MODIFYCHANNEL_RESPONSE,
    };
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    memset(buf, 0, sizeof(buf));
    uint32_t one = 1;
    memcpy(buf + 8, &one, 4);
    struct vmbus_server_stats before = stats(f);
    for (size_t i = 0; i < sizeof(host_types) / sizeof(host_types[0]); i++) {
        memcpy(buf, &host_types[i], 4);
        send_msg(f, buf, vmbus_msg_min_len(host_types[i]));
    }
    expect_none(f);
    struct vmbus_server_stats after = stats(f);
    assert_int_equal(after.errors[VMBUS_SRV_ERR_MALFORMED],
                     sizeof(host_types) / sizeof(host_types[0]));
    assert_memory_equal(after.msgs_in, before.msgs_in, sizeof(after.msgs_in));
    assert_true(vmbus_chan_is_open(f->chan[0]));
    assert_int_equal(f->dev[0].closes, 0);
    assert_int_equal(after.gpadls, 1);
}

static void handle_message__not_a_vmbus_message__invalid_parameter(void **state)
{
    struct fix *f = *state;
    struct vmbus_msg_initiate_contact m = contact_msg(VMBUS_VERSION_WIN10_V5_3);
    assert_int_equal(hv_guest_post_message(f->g, VMBUS_MESSAGE_CONNECTION_ID_4, 2, &m, sizeof(m)),
                     HV_STATUS_INVALID_PARAMETER);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_MALFORMED), 1);
    assert_false(vmbus_server_connected(f->srv));
}

static void modify_channel__version_gated__refused_before_4_1(void **state)
{
    struct fix *f = *state;
    connect_version(f, VMBUS_VERSION_WIN10);
    struct vmbus_msg_modify_channel m = {{VMBUS_MSG_MODIFYCHANNEL, 0}, 1, 0};
    send_msg(f, &m, sizeof(m));
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_MALFORMED), 1);
    assert_int_equal(stats(f).msgs_in[VMBUS_MSG_MODIFYCHANNEL], 0);

    /* 5.3: accepted and answered; VP NVP does not exist. */
    connect_and_offers(f);
    send_msg(f, &m, sizeof(m));
    struct vmbus_msg_modify_channel_response r;
    expect_msg(f, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, &r, sizeof(r));
    assert_int_equal(r.child_relid, 1);
    assert_int_equal(r.status, 0);
    m.target_vp = NVP;
    send_msg(f, &m, sizeof(m));
    expect_msg(f, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, &r, sizeof(r));
    assert_int_not_equal(r.status, 0);
    assert_int_equal(stats(f).msgs_in[VMBUS_MSG_MODIFYCHANNEL], 2);
}

/* --- REQUESTOFFERS ----------------------------------------------------- */

static void request_offers__connected__all_offers_then_alloffers_delivered(void **state)
{
    struct fix *f = *state;
    connect_version(f, VMBUS_VERSION_WIN10_V5_3);
    send_hdr_only(f, VMBUS_MSG_REQUESTOFFERS);
    for (uint32_t relid = 1; relid <= NCHAN; relid++) {
        struct vmbus_msg_offer o;
        expect_msg(f, VMBUS_MSG_OFFERCHANNEL, &o, sizeof(o));
        struct vmbus_offer_params want = offer_params(relid - 1);
        assert_int_equal(o.child_relid, relid);
        assert_int_equal(vmbus_chan_relid(f->chan[relid - 1]), relid);
        assert_int_equal(o.connection_id, vmbus_chan_conn_id(f->chan[relid - 1]));
        assert_memory_equal(&o.interface_type, &want.class_id, sizeof(want.class_id));
        assert_memory_equal(&o.interface_instance, &want.instance_id, sizeof(want.instance_id));
        assert_int_equal(o.sub_channel_index, 0);
        assert_int_equal(o.monitor_id, VMBUS_OFFER_MONITOR_NONE);
    }
    expect_msg(f, VMBUS_MSG_ALLOFFERS_DELIVERED, NULL, 8);
    expect_none(f);
    assert_int_equal(stats(f).msgs_in[VMBUS_MSG_REQUESTOFFERS], 1);
}

static void request_offers__twice__duplicate_no_offers_resent(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    send_hdr_only(f, VMBUS_MSG_REQUESTOFFERS);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_DUPLICATE), 1);
    /* The channels are still usable. */
    make_ring_gpadl(f, 2, GPADL_A);
    assert_int_equal(open_chan(f, 2, GPADL_A, RING_SPLIT, 0), 0);
    assert_int_equal(f->dev[1].opens, 1);
}

static void server_offer__after_request_offers__sent_at_once(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    assert_int_equal(offer(f, 2), 0);
    struct vmbus_msg_offer o;
    expect_msg(f, VMBUS_MSG_OFFERCHANNEL, &o, sizeof(o));
    assert_int_equal(o.child_relid, 3);
    assert_int_equal(vmbus_chan_relid(f->chan[2]), 3);
    expect_none(f); /* no second ALLOFFERS_DELIVERED */
    make_ring_gpadl(f, 3, GPADL_A);
    assert_int_equal(open_chan(f, 3, GPADL_A, RING_SPLIT, 0), 0);
    assert_int_equal(f->dev[2].opens, 1);
}

static void server_offer__before_contact__sent_with_the_others(void **state)
{
    struct fix *f = *state;
    assert_int_equal(offer(f, 2), 0);
    expect_none(f);
    connect_version(f, VMBUS_VERSION_WIN10_V5_3);
    expect_none(f);
    static const uint32_t relids[] = {1, 2, 3};
    request_offers_expect(f, relids, 3);
}

/* --- OPENCHANNEL / CLOSECHANNEL ---------------------------------------- */

static void open__unknown_relid__counted_not_opened(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    make_ring_gpadl(f, 1, GPADL_A);
    static const uint32_t bad[] = {0, 3, 99, VMBUS_MAX_CHANNELS, VMBUS_MAX_CHANNELS + 1,
                                   0xffffffffu};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        send_open(f, bad[i], GPADL_A, RING_SPLIT, 0);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_RELID), sizeof(bad) / sizeof(bad[0]));
    assert_int_equal(f->dev[0].opens + f->dev[1].opens, 0);
}

static void open__twice__second_refused_device_opened_once(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_CHAN_STATE), 1);
    assert_int_equal(f->dev[0].opens, 1);
    assert_int_equal(f->dev[0].closes, 0);
    assert_true(vmbus_chan_is_open(f->chan[0]));
    /* A second ring GPADL does not help either. */
    make_ring_gpadl(f, 1, GPADL_B);
    assert_int_equal(open_chan(f, 1, GPADL_B, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    assert_int_equal(f->dev[0].opens, 1);
}

static void open__unknown_gpadl__failure_status(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_GPADL_ID), 1);
    assert_int_equal(f->dev[0].opens, 0);
    assert_false(vmbus_chan_is_open(f->chan[0]));
}

static void open__gpadl_of_other_channel__failure_status(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    make_ring_gpadl(f, 2, GPADL_A);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_GPADL_ID), 1);
    assert_int_equal(f->dev[0].opens, 0);
    /* Its owner can use it. */
    assert_int_equal(open_chan(f, 2, GPADL_A, RING_SPLIT, 0), 0);
}

static void open__gpadl_still_building__failure_status(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    uint64_t pfns[RING_PAGES];
    alloc_run(f, RING_PAGES, pfns);
    uint8_t stream[8 + 8 * RING_PAGES];
    size_t len = put_range(stream, RING_PAGES * HV_PAGE_SIZE, 0, pfns, RING_PAGES);
    /* Declare one PFN more than sent: the GPADL waits for a body. */
    send_gpadl_raw(f, 1, GPADL_A, 1, (uint16_t)(len + 8), stream, len);
    expect_none(f);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    assert_int_equal(f->dev[0].opens, 0);
}

static void open__bad_downstream_offset__failure_status(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    make_ring_gpadl(f, 1, GPADL_A);
    /* 0, 1 (a ring of only a header), == pages, leaving 1 or 0 pages, beyond. */
    static const uint32_t bad[] = {0, 1, RING_PAGES, RING_PAGES - 1, RING_PAGES + 1, 0xffffffffu};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(open_chan(f, 1, GPADL_A, bad[i], 0), VMBUS_STATUS_FAILURE);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_RING_LAYOUT), sizeof(bad) / sizeof(bad[0]));
    assert_int_equal(f->dev[0].opens, 0);
    /* The extremes that are fine: 2 pages each side of the smallest split. */
    assert_int_equal(open_chan(f, 1, GPADL_A, 2, 0), 0);
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 1);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_PAGES - 2, 0), 0);
    assert_int_equal(f->dev[0].opens, 2);
}

/* A device that takes rings of at most 3 pages a side (header included):
 * a larger ring on either side fails the open and is counted; one at the
 * limit opens. Channels without a limit take any (the fixture's). */
static void open__ring_larger_than_device_takes__failure_status_counted(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    struct vmbus_offer_params op = offer_params(2);
    op.max_ring_pages = 3;
    f->dev[2] = (struct dev){0};
    assert_int_equal(vmbus_server_offer(f->srv, &op, &dev_ops, &f->dev[2], &f->chan[2]), 0);
    struct vmbus_msg_offer o;
    expect_msg(f, VMBUS_MSG_OFFERCHANNEL, &o, sizeof(o));
    assert_int_equal(o.child_relid, 3);
    make_ring_gpadl(f, 3, GPADL_A); /* 8 pages */
    static const uint32_t splits[] = {4, 5, 3, 2, 6};
    for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++)
        assert_int_equal(open_chan(f, 3, GPADL_A, splits[i], 0), VMBUS_STATUS_FAILURE);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_RING_SIZE), sizeof(splits) / sizeof(splits[0]));
    assert_int_equal(errs(f, VMBUS_SRV_ERR_RING_LAYOUT), 0);
    assert_int_equal(f->dev[2].opens, 0);
    uint64_t pfns[6];
    alloc_run(f, 6, pfns);
    assert_int_equal(gpadl_create(f, 3, GPADL_A + 1, pfns, 6), 0);
    assert_int_equal(open_chan(f, 3, GPADL_A + 1, 3, 0), 0);
    assert_int_equal(f->dev[2].opens, 1);
    /* No limit: the fixture's device takes the 8-page ring 2 + 6. */
    make_ring_gpadl(f, 1, GPADL_A + 2);
    assert_int_equal(open_chan(f, 1, GPADL_A + 2, 2, 0), 0);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_RING_SIZE), sizeof(splits) / sizeof(splits[0]));
}

static void open__target_vp_beyond_partition__failure_counted(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    make_ring_gpadl(f, 1, GPADL_A);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, NVP), VMBUS_STATUS_FAILURE);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0xffffffffu), VMBUS_STATUS_FAILURE);
    assert_int_equal(f->dev[0].opens, 0);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_VP), 2);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), 0);
}

/*
 * A channel may target any VP the partition has (Linux and FreeBSD spread
 * their NIC channels over CPUs): its interrupts set its flag in that VP's
 * SIEF page and assert that VP's SINT, no other.
 */
static void open__target_vp_1__interrupts_on_vp_1(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    make_ring_gpadl(f, 1, GPADL_A);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 1), 0);
    assert_int_equal(f->dev[0].opens, 1);
    assert_int_equal(vmbus_chan_target_vp(f->chan[0]), 1);
    vp_signalled(f, 0);
    vp_signalled(f, 1);
    assert_int_equal(vmbus_chan_signal(f->chan[0]), 0);
    assert_true(vp_signalled(f, 1));
    assert_false(vp_signalled(f, 0));
    assert_false(hv_guest_event_test_clear_vp(f->g, 0, VMBUS_MESSAGE_SINT, 1));
    assert_true(hv_guest_event_test_clear_vp(f->g, 1, VMBUS_MESSAGE_SINT, 1));
    assert_int_equal(errs(f, VMBUS_SRV_ERR_VP), 0);
}

/*
 * MODIFYCHANNEL moves a channel's interrupts to another VP the partition
 * has (answered with status 0 from 5.3 on); a VP it does not have is
 * refused with a failure status, counted, and the channel stays where it
 * was.
 */
static void modify_channel__other_vp__interrupts_move_there(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    assert_int_equal(vmbus_chan_target_vp(f->chan[0]), 0);
    struct vmbus_msg_modify_channel m = {{VMBUS_MSG_MODIFYCHANNEL, 0}, 1, 1};
    send_msg(f, &m, sizeof(m));
    struct vmbus_msg_modify_channel_response r;
    expect_msg(f, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, &r, sizeof(r));
    assert_int_equal(r.child_relid, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(vmbus_chan_target_vp(f->chan[0]), 1);
    vp_signalled(f, 0);
    vp_signalled(f, 1);
    assert_int_equal(vmbus_chan_signal(f->chan[0]), 0);
    assert_true(vp_signalled(f, 1));
    assert_false(vp_signalled(f, 0));
    assert_true(hv_guest_event_test_clear_vp(f->g, 1, VMBUS_MESSAGE_SINT, 1));
    m.target_vp = NVP;
    send_msg(f, &m, sizeof(m));
    expect_msg(f, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, &r, sizeof(r));
    assert_int_not_equal(r.status, 0);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_VP), 1);
    assert_int_equal(vmbus_chan_target_vp(f->chan[0]), 1);
    /* Back to VP 0. */
    m.target_vp = 0;
    send_msg(f, &m, sizeof(m));
    expect_msg(f, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, &r, sizeof(r));
    assert_int_equal(r.status, 0);
    assert_int_equal(vmbus_chan_signal(f->chan[0]), 0);
    assert_true(vp_signalled(f, 0));
    assert_false(vp_signalled(f, 1));
}

static void open__ring_gpadl_not_whole_pages__failure_status(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    uint64_t pfns[RING_PAGES];
    alloc_run(f, RING_PAGES, pfns);
    uint8_t stream[2 * (8 + 8 * RING_PAGES)];
    /* Starts 64 bytes into the first page. */
    size_t len = put_range(stream, RING_PAGES * HV_PAGE_SIZE - 64, 64, pfns, RING_PAGES);
    send_gpadl_raw(f, 1, GPADL_A, 1, (uint16_t)len, stream, len);
    assert_int_equal(gpadl_answer(f, 1, GPADL_A), 0);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    /* Two ranges. */
    uint64_t more[4];
    alloc_run(f, 4, more);
    len = put_range(stream, 2 * HV_PAGE_SIZE, 0, more, 2);
    len += put_range(stream + len, 2 * HV_PAGE_SIZE, 0, more + 2, 2);
    send_gpadl_raw(f, 1, GPADL_B, 2, (uint16_t)len, stream, len);
    assert_int_equal(gpadl_answer(f, 1, GPADL_B), 0);
    assert_int_equal(open_chan(f, 1, GPADL_B, 2, 0), VMBUS_STATUS_FAILURE);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_RING_LAYOUT), 2);
    assert_int_equal(f->dev[0].opens, 0);
}

static void open__guest_ring_header_corrupt__failure_status(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    uint64_t first = make_ring_gpadl(f, 1, GPADL_A);
    /* An unaligned read index in the guest->root ring header. */
    uint32_t bad = 3;
    memcpy((uint8_t *)hv_guest_pfn_ptr(f->g, first) + 4, &bad, sizeof(bad));
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    assert_int_equal(f->dev[0].opens, 0);
    memset(hv_guest_pfn_ptr(f->g, first), 0, HV_PAGE_SIZE);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), 0);
}

static void open__device_refuses__failure_status_then_retry_works(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    make_ring_gpadl(f, 1, GPADL_A);
    f->dev[0].open_rc = -EIO;
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_DEVICE), 1);
    assert_int_equal(f->dev[0].opens, 1);
    assert_int_equal(f->dev[0].closes, 0);
    assert_false(vmbus_chan_is_open(f->chan[0]));
    /* The refusal released the ring: the GPADL can be torn down at once... */
    f->dev[0].open_rc = 0;
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), 0);
    assert_int_equal(f->dev[0].opens, 2);
    assert_true(vmbus_chan_is_open(f->chan[0]));
}

static void open__device_refuses__gpadl_not_held(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    make_ring_gpadl(f, 1, GPADL_A);
    f->dev[0].open_rc = -EIO;
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    send_teardown(f, 1, GPADL_A);
    expect_torndown(f, GPADL_A);
    assert_int_equal(stats(f).gpadls, 0);
    assert_int_equal(stats(f).gpadl_pages, 0);
}

static void close__not_open__counted(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 1);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_CHAN_STATE), 1);
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 77);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_RELID), 1);
    assert_int_equal(f->dev[0].closes, 0);
    /* Twice after an open: the second is counted. */
    make_ring_gpadl(f, 1, GPADL_A);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), 0);
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 1);
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 1);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_CHAN_STATE), 2);
    assert_int_equal(f->dev[0].closes, 1);
}

static void close__open_channel__device_closed_then_reopen_works(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    int efd = vmbus_chan_event_fd(f->chan[0]);
    assert_true(efd >= 0);
    /* The guest can signal the channel's connection id while it is open. */
    assert_int_equal(hv_guest_signal_event(f->g, VMBUS_CHAN_CONN_ID_BASE + 1, 0),
                     HV_STATUS_SUCCESS);
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 1);
    expect_none(f); /* no answer to a close */
    assert_int_equal(f->dev[0].closes, 1);
    assert_false(vmbus_chan_is_open(f->chan[0]));
    assert_int_equal(hv_guest_signal_event(f->g, VMBUS_CHAN_CONN_ID_BASE + 1, 0),
                     HV_STATUS_INVALID_CONNECTION_ID);
    /* The ring GPADL survives the close and serves the next open. */
    assert_int_equal(stats(f).gpadls, 1);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), 0);
    assert_int_equal(f->dev[0].opens, 2);
    assert_true(vmbus_chan_is_open(f->chan[0]));
    assert_int_equal(hv_guest_signal_event(f->g, VMBUS_CHAN_CONN_ID_BASE + 1, 0),
                     HV_STATUS_SUCCESS);
}

/* --- GPADLs ------------------------------------------------------------ */

static void gpadl_header__single_message__created(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    uint64_t pfns[VMBUS_GPADL_HEADER_MAX_PFNS];
    alloc_run(f, VMBUS_GPADL_HEADER_MAX_PFNS, pfns);
    assert_int_equal(gpadl_create(f, 1, GPADL_A, pfns, VMBUS_GPADL_HEADER_MAX_PFNS), 0);
    expect_none(f);
    struct vmbus_server_stats st = stats(f);
    assert_int_equal(st.gpadls, 1);
    assert_int_equal(st.gpadl_pages, VMBUS_GPADL_HEADER_MAX_PFNS);
    assert_int_equal(st.msgs_in[VMBUS_MSG_GPADL_HEADER], 1);
    assert_int_equal(st.msgs_in[VMBUS_MSG_GPADL_BODY], 0);
}

static void gpadl_header_body__multi_message__created(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    /* 26 in the header, 28 + 28 + 18 in three bodies; scattered pages. */
    enum { N = 100 };
    uint64_t pfns[N];
    assert_int_equal(hv_guest_alloc_scattered(f->g, N, pfns), 0);
    assert_int_equal(gpadl_create(f, 2, GPADL_B, pfns, N), 0);
    expect_none(f);
    struct vmbus_server_stats st = stats(f);
    assert_int_equal(st.gpadls, 1);
    assert_int_equal(st.gpadl_pages, N);
    assert_int_equal(st.msgs_in[VMBUS_MSG_GPADL_BODY], 3);

    /* Several ranges spread over header and bodies. */
    uint64_t more[40];
    alloc_run(f, 40, more);
    uint8_t stream[512];
    size_t len = put_range(stream, 10 * HV_PAGE_SIZE, 0, more, 10);
    len += put_range(stream + len, 1, 4095, more + 10, 1);
    len += put_range(stream + len, 19 * HV_PAGE_SIZE + 1, 100, more + 11, 20);
    len += put_range(stream + len, 9 * HV_PAGE_SIZE - 7, 7, more + 31, 9);
    send_gpadl_raw(f, 1, GPADL_C, 4, (uint16_t)len, stream, len);
    assert_int_equal(gpadl_answer(f, 1, GPADL_C), 0);
    assert_int_equal(stats(f).gpadl_pages, N + 40);
    assert_int_equal(stats(f).gpadls, 2);
}

static void gpadl_header__extra_trailing_words__ignored(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    uint64_t pfns[27];
    alloc_run(f, 27, pfns);
    /* A header that declares 2 PFNs but carries 26 more words (some guests
     * always send full messages): the extra words are not PFNs. */
    uint8_t stream[8 + 8 * 27];
    size_t len = put_range(stream, 2 * HV_PAGE_SIZE, 0, pfns, 26);
    send_gpadl_raw(f, 1, GPADL_A, 1, 24, stream, len);
    assert_int_equal(gpadl_answer(f, 1, GPADL_A), 0);
    assert_int_equal(stats(f).gpadl_pages, 2);
    /* The pages beyond are not granted. */
    assert_int_equal(gpadl_create(f, 1, GPADL_B, pfns + 2, 25), 0);
}

static void gpadl__pfn_outside_memory__refused(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    static const uint64_t outside[] = {MEM_PAGES, MEM_PAGES + 1, 1ull << 40, ~0ull};
    uint64_t pfns[3];
    alloc_run(f, 3, pfns);
    for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        uint64_t p[4] = {pfns[0], pfns[1], outside[i], pfns[2]};
        assert_int_not_equal(gpadl_create(f, 1, GPADL_A + (uint32_t)i, p, 4), 0);
    }
    struct vmbus_server_stats st = stats(f);
    assert_int_equal(st.errors[VMBUS_SRV_ERR_GPADL_PFN], sizeof(outside) / sizeof(outside[0]));
    assert_int_equal(st.gpadls, 0);
    assert_int_equal(st.gpadl_pages, 0);
    /* The last page of memory is fine, and the good pages were not kept. */
    uint64_t p[4] = {pfns[0], pfns[1], MEM_PAGES - 1, pfns[2]};
    assert_int_equal(gpadl_create(f, 1, GPADL_A, p, 4), 0);
}

static void gpadl__page_twice_in_one__overlap(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    uint64_t pfns[4];
    alloc_run(f, 3, pfns);
    pfns[3] = pfns[1];
    assert_int_not_equal(gpadl_create(f, 1, GPADL_A, pfns, 4), 0);
    /* Across two ranges of one GPADL, too. */
    uint8_t stream[64];
    size_t len = put_range(stream, HV_PAGE_SIZE, 0, pfns, 1);
    len += put_range(stream + len, HV_PAGE_SIZE, 0, pfns, 1);
    send_gpadl_raw(f, 1, GPADL_B, 2, (uint16_t)len, stream, len);
    assert_int_not_equal(gpadl_answer(f, 1, GPADL_B), 0);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_GPADL_OVERLAP), 2);
    assert_int_equal(stats(f).gpadls, 0);
    assert_int_equal(stats(f).gpadl_pages, 0);
    assert_int_equal(gpadl_create(f, 1, GPADL_A, pfns, 3), 0);
}

static void gpadl__page_of_other_gpadl__overlap(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    uint64_t pfns[6];
    alloc_run(f, 6, pfns);
    assert_int_equal(gpadl_create(f, 1, GPADL_A, pfns, 4), 0);
    /* The last page of A again, from the other channel. */
    assert_int_not_equal(gpadl_create(f, 2, GPADL_B, pfns + 3, 3), 0);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_GPADL_OVERLAP), 1);
    assert_int_equal(stats(f).gpadls, 1);
    assert_int_equal(stats(f).gpadl_pages, 4);
    /* Pages of B that were not A's were not kept either. */
    assert_int_equal(gpadl_create(f, 2, GPADL_B, pfns + 4, 2), 0);
    /* Once A is gone its pages can be granted again. */
    send_teardown(f, 1, GPADL_A);
    expect_torndown(f, GPADL_A);
    assert_int_equal(gpadl_create(f, 2, GPADL_C, pfns, 4), 0);
    assert_int_equal(stats(f).gpadl_pages, 6);
}

static void gpadl__bad_range_records__refused(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    uint64_t pfns[4];
    alloc_run(f, 4, pfns);
    uint8_t s[128];
    size_t len;
    uint32_t id = GPADL_A;

    /* byte_offset >= 4096 */
    len = put_range(s, HV_PAGE_SIZE, HV_PAGE_SIZE, pfns, 2);
    send_gpadl_raw(f, 1, id, 1, (uint16_t)len, s, len);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);
    len = put_range(s, 1, 0xffffffffu, pfns, 2);
    send_gpadl_raw(f, 1, id, 1, (uint16_t)len, s, len);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);
    /* byte_count 0 */
    len = put_range(s, 0, 0, pfns, 1);
    send_gpadl_raw(f, 1, id, 1, (uint16_t)len, s, len);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);
    /* byte_count needing more PFNs than range_buflen holds */
    len = put_range(s, 3 * HV_PAGE_SIZE, 0, pfns, 2);
    send_gpadl_raw(f, 1, id, 1, (uint16_t)len, s, len);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);
    /* offset + count spilling into a page that was not listed */
    len = put_range(s, HV_PAGE_SIZE, 1, pfns, 1);
    send_gpadl_raw(f, 1, id, 1, (uint16_t)len, s, len);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);
    /* byte_count near 2^32 */
    len = put_range(s, 0xfffff000u, 0xfff, pfns, 4);
    send_gpadl_raw(f, 1, id, 1, (uint16_t)len, s, len);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);
    /* range_buflen larger than the records: one PFN more than needed */
    len = put_range(s, 2 * HV_PAGE_SIZE, 0, pfns, 3);
    send_gpadl_raw(f, 1, id, 1, (uint16_t)len, s, len);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);
    /* range_buflen not a multiple of 8, smaller than a record, or too small
     * for rangecount records */
    len = put_range(s, 2 * HV_PAGE_SIZE, 0, pfns, 2);
    send_gpadl_raw(f, 1, id, 1, (uint16_t)(len - 4), s, len);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);
    send_gpadl_raw(f, 1, id, 1, (uint16_t)(len + 4), s, len + 8);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);
    send_gpadl_raw(f, 1, id, 1, 8, s, len);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);
    send_gpadl_raw(f, 1, id, 2, (uint16_t)len, s, len);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);
    /* rangecount 2 with a buflen that holds one record and the header of a
     * second whose PFN is missing */
    struct vmbus_gpa_range half = {.byte_count = HV_PAGE_SIZE, .byte_offset = 0};
    memcpy(s + len, &half, sizeof(half));
    send_gpadl_raw(f, 1, id, 2, (uint16_t)(len + 8), s, len + 8);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);
    /* rangecount 0, and more ranges than the server takes */
    send_gpadl_raw(f, 1, id, 0, (uint16_t)len, s, len);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);
    send_gpadl_raw(f, 1, id, 0, 0, s, 0);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);
    send_gpadl_raw(f, 1, id, VMBUS_GPADL_MAX_RANGES + 1, 8 * 16 * 17, s, 0);
    assert_int_not_equal(gpadl_answer(f, 1, id++), 0);

    expect_none(f);
    struct vmbus_server_stats st = stats(f);
    assert_int_equal(st.errors[VMBUS_SRV_ERR_GPADL_RANGE], id - GPADL_A);
    assert_int_equal(st.gpadls, 0);
    assert_int_equal(st.gpadl_pages, 0);
    /* Refused ids are free again. */
    assert_int_equal(gpadl_create(f, 1, GPADL_A, pfns, 4), 0);
}

static void gpadl_header__duplicate_id__refused(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    uint64_t pfns[4];
    alloc_run(f, 4, pfns);
    assert_int_equal(gpadl_create(f, 1, GPADL_A, pfns, 2), 0);
    /* Same id, same or other channel: not answered (the id's owner would
     * take the answer for its own), counted, nothing granted. */
    uint8_t s[64];
    size_t len = put_range(s, 2 * HV_PAGE_SIZE, 0, pfns + 2, 2);
    send_gpadl_raw(f, 1, GPADL_A, 1, (uint16_t)len, s, len);
    send_gpadl_raw(f, 2, GPADL_A, 1, (uint16_t)len, s, len);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_GPADL_ID), 2);
    assert_int_equal(stats(f).gpadls, 1);
    assert_int_equal(stats(f).gpadl_pages, 2);
    /* Same id as one still being built. */
    send_gpadl_raw(f, 1, GPADL_B, 1, (uint16_t)(len + 8), s, len);
    send_gpadl_raw(f, 1, GPADL_B, 1, (uint16_t)len, s, len);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_GPADL_ID), 3);
    /* The first one is intact and still usable. */
    send_teardown(f, 1, GPADL_A);
    expect_torndown(f, GPADL_A);
}

static void gpadl_body__unknown_or_complete__counted_and_ignored(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    uint64_t pfns[4];
    alloc_run(f, 4, pfns);
    uint8_t buf[16 + 16];
    struct vmbus_msg_gpadl_body b = {{VMBUS_MSG_GPADL_BODY, 0}, 1, 0x12345};
    memcpy(buf, &b, sizeof(b));
    memcpy(buf + sizeof(b), pfns + 2, 16);
    send_msg(f, buf, sizeof(buf));
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_GPADL_ID), 1);

    assert_int_equal(gpadl_create(f, 1, GPADL_A, pfns, 2), 0);
    b.gpadl = GPADL_A;
    memcpy(buf, &b, sizeof(b));
    send_msg(f, buf, sizeof(buf));
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_GPADL_ID), 2);
    assert_int_equal(stats(f).gpadl_pages, 2);
    assert_int_equal(stats(f).gpadls, 1);
}

static void gpadl_header__channel_unknown_or_not_offered__counted(void **state)
{
    struct fix *f = *state;
    connect_version(f, VMBUS_VERSION_WIN10_V5_3);
    uint64_t pfns[2];
    alloc_run(f, 2, pfns);
    uint8_t s[32];
    size_t len = put_range(s, 2 * HV_PAGE_SIZE, 0, pfns, 2);
    /* Offered to no guest yet (no REQUESTOFFERS). */
    send_gpadl_raw(f, 1, GPADL_A, 1, (uint16_t)len, s, len);
    send_gpadl_raw(f, 0, GPADL_A, 1, (uint16_t)len, s, len);
    send_gpadl_raw(f, 9, GPADL_A, 1, (uint16_t)len, s, len);
    send_teardown(f, 1, GPADL_A);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_RELID), 4);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_GPADL_ID), 0);
    assert_int_equal(stats(f).gpadls, 0);
}

static void gpadl_teardown__unknown__counted(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    send_teardown(f, 1, GPADL_A);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_GPADL_ID), 1);
    /* Known GPADL, named with the wrong channel: refused, kept. */
    uint64_t pfns[2];
    alloc_run(f, 2, pfns);
    assert_int_equal(gpadl_create(f, 1, GPADL_A, pfns, 2), 0);
    send_teardown(f, 2, GPADL_A);
    send_teardown(f, 7, GPADL_A);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_GPADL_ID), 2);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_RELID), 1);
    assert_int_equal(stats(f).gpadls, 1);
    /* Twice: the second is unknown. */
    send_teardown(f, 1, GPADL_A);
    expect_torndown(f, GPADL_A);
    send_teardown(f, 1, GPADL_A);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_GPADL_ID), 3);
}

static void gpadl_teardown__ring_of_open_channel__deferred_until_close(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    send_teardown(f, 1, GPADL_A);
    expect_none(f);
    assert_int_equal(stats(f).gpadls, 1);
    assert_int_equal(stats(f).gpadl_pages, RING_PAGES);
    assert_true(vmbus_chan_is_open(f->chan[0]));
    /* A dying GPADL cannot be torn down twice nor used again. */
    send_teardown(f, 1, GPADL_A);
    expect_none(f);
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 1);
    expect_torndown(f, GPADL_A);
    expect_none(f);
    assert_int_equal(f->dev[0].closes, 1);
    assert_int_equal(stats(f).gpadls, 0);
    assert_int_equal(stats(f).gpadl_pages, 0);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
}

static void gpadl_teardown__held_by_device__deferred_until_put(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    uint64_t pfns[5];
    alloc_run(f, 5, pfns);
    assert_int_equal(gpadl_create(f, 1, GPADL_B, pfns, 5), 0);
    struct vmbus_gpadl *g = NULL;
    /* Only the channel's own, ready GPADLs. */
    assert_int_equal(vmbus_chan_gpadl_get(f->chan[0], 0x999, &g), -ENOENT);
    assert_int_equal(vmbus_chan_gpadl_get(f->chan[1], GPADL_B, &g), -ENOENT);
    assert_int_equal(vmbus_chan_gpadl_get(f->chan[0], GPADL_B, &g), 0);
    assert_int_equal(vmbus_gpadl_pages(g), 5);
    assert_int_equal(vmbus_gpadl_len(g), 5 * HV_PAGE_SIZE);

    send_teardown(f, 1, GPADL_B);
    expect_none(f);
    assert_int_equal(stats(f).gpadls, 2);
    assert_int_equal(vmbus_chan_gpadl_get(f->chan[0], GPADL_B, &(struct vmbus_gpadl *){NULL}),
                     -ENOENT);
    vmbus_gpadl_put(g);
    expect_torndown(f, GPADL_B);
    expect_none(f);
    assert_int_equal(stats(f).gpadls, 1);
    assert_int_equal(stats(f).gpadl_pages, RING_PAGES);
    assert_true(vmbus_chan_is_open(f->chan[0]));
}

static void gpadl_teardown__held_until_close__device_put_sends_torndown(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    uint64_t pfns[2];
    alloc_run(f, 2, pfns);
    assert_int_equal(gpadl_create(f, 1, GPADL_B, pfns, 2), 0);
    assert_int_equal(vmbus_chan_gpadl_get(f->chan[0], GPADL_B, &f->dev[0].held), 0);
    send_teardown(f, 1, GPADL_B);
    send_teardown(f, 1, GPADL_A);
    expect_none(f);
    /* Close: the ring is put by the server, GPADL_B by the device. */
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 1);
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    bool seen_a = false, seen_b = false;
    for (int i = 0; i < 2; i++) {
        struct vmbus_msg_gpadl_torndown t;
        assert_int_equal(recv_msg(f, buf, NULL), VMBUS_MSG_GPADL_TORNDOWN);
        memcpy(&t, buf, sizeof(t));
        seen_a |= t.gpadl == GPADL_A;
        seen_b |= t.gpadl == GPADL_B;
    }
    assert_true(seen_a && seen_b);
    expect_none(f);
    assert_int_equal(stats(f).gpadls, 0);
    assert_int_equal(stats(f).gpadl_pages, 0);
}

static void gpadl_teardown__all__stats_back_to_zero(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    uint64_t a[30], b[60];
    alloc_run(f, 30, a);
    assert_int_equal(hv_guest_alloc_scattered(f->g, 60, b), 0);
    assert_int_equal(gpadl_create(f, 1, GPADL_A, a, 30), 0);
    assert_int_equal(gpadl_create(f, 2, GPADL_B, b, 60), 0);
    assert_int_equal(stats(f).gpadls, 2);
    assert_int_equal(stats(f).gpadl_pages, 90);
    send_teardown(f, 2, GPADL_B);
    expect_torndown(f, GPADL_B);
    assert_int_equal(stats(f).gpadl_pages, 30);
    send_teardown(f, 1, GPADL_A);
    expect_torndown(f, GPADL_A);
    struct vmbus_server_stats st = stats(f);
    assert_int_equal(st.gpadls, 0);
    assert_int_equal(st.gpadl_pages, 0);
    assert_int_equal(st.msgs_in[VMBUS_MSG_GPADL_TEARDOWN], 2);
}

static void gpadl_view__guest_bytes__visible_both_ways(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    /* Scattered pages, single range starting 100 bytes in. */
    enum { N = 40 };
    uint64_t pfns[N];
    assert_int_equal(hv_guest_alloc_scattered(f->g, N, pfns), 0);
    const uint32_t off = 100, count = N * HV_PAGE_SIZE - 100 - 50;
    static uint8_t stream[8 + 8 * N];
    size_t len = put_range(stream, count, off, pfns, N);
    send_gpadl_raw(f, 1, GPADL_B, 1, (uint16_t)len, stream, len);
    assert_int_equal(gpadl_answer(f, 1, GPADL_B), 0);
    for (uint32_t i = 0; i < N; i++) {
        uint8_t *pg = hv_guest_pfn_ptr(f->g, pfns[i]);
        for (uint32_t j = 0; j < HV_PAGE_SIZE; j++)
            pg[j] = (uint8_t)(i * 7 + j * 13 + 1);
    }
    struct vmbus_gpadl *g;
    assert_int_equal(vmbus_chan_gpadl_get(f->chan[0], GPADL_B, &g), 0);
    assert_int_equal(vmbus_gpadl_len(g), count);
    assert_int_equal(vmbus_gpadl_pages(g), N);
    const uint8_t *v = vmbus_gpadl_view(g);
    for (uint32_t k = 0; k < count; k++) {
        uint32_t at = off + k;
        uint32_t i = at / HV_PAGE_SIZE, j = at % HV_PAGE_SIZE;
        if (v[k] != (uint8_t)(i * 7 + j * 13 + 1))
            fail_msg("view byte %u differs from guest page %u byte %u", k, i, j);
    }
    /* The root's writes land in the guest's pages. */
    ((uint8_t *)vmbus_gpadl_view(g))[HV_PAGE_SIZE] = 0xee;
    assert_int_equal(((uint8_t *)hv_guest_pfn_ptr(f->g, pfns[1]))[off], 0xee);
    vmbus_gpadl_put(g);

    /* Multi-range: the view is the pages in order. */
    uint64_t c[3];
    alloc_run(f, 3, c);
    len = put_range(stream, HV_PAGE_SIZE, 0, c + 2, 1);
    len += put_range(stream + len, 2 * HV_PAGE_SIZE, 0, c, 2);
    send_gpadl_raw(f, 1, GPADL_C, 2, (uint16_t)len, stream, len);
    assert_int_equal(gpadl_answer(f, 1, GPADL_C), 0);
    memset(hv_guest_pfn_ptr(f->g, c[2]), 0x33, HV_PAGE_SIZE);
    memset(hv_guest_pfn_ptr(f->g, c[0]), 0x44, HV_PAGE_SIZE);
    assert_int_equal(vmbus_chan_gpadl_get(f->chan[0], GPADL_C, &g), 0);
    v = vmbus_gpadl_view(g);
    assert_int_equal(v[0], 0x33);
    assert_int_equal(v[HV_PAGE_SIZE - 1], 0x33);
    assert_int_equal(v[HV_PAGE_SIZE], 0x44);
    assert_int_equal(vmbus_gpadl_pages(g), 3);
    vmbus_gpadl_put(g);
}

/* --- rescind ----------------------------------------------------------- */

static void chan_rescind__open_channel__closed_told_and_freed_on_release(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    vmbus_chan_rescind(f->chan[0]);
    f->chan[0] = NULL;
    assert_int_equal(f->dev[0].closes, 1);
    struct vmbus_msg_relid r;
    expect_msg(f, VMBUS_MSG_RESCIND_CHANNELOFFER, &r, sizeof(r));
    assert_int_equal(r.child_relid, 1);
    expect_none(f);
    /* The relid is not reused while the guest holds it. */
    assert_int_equal(offer(f, 2), 0);
    struct vmbus_msg_offer o;
    expect_msg(f, VMBUS_MSG_OFFERCHANNEL, &o, sizeof(o));
    assert_int_equal(o.child_relid, 3);
    /* No reopen; the guest's cleanup is accepted quietly. */
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    struct vmbus_server_stats before = stats(f);
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 1);
    send_teardown(f, 1, GPADL_A);
    expect_torndown(f, GPADL_A);
    send_relid_msg(f, VMBUS_MSG_RELID_RELEASED, 1);
    expect_none(f);
    struct vmbus_server_stats after = stats(f);
    assert_memory_equal(after.errors, before.errors, sizeof(after.errors));
    assert_int_equal(after.gpadls, 0);
    assert_int_equal(f->dev[0].closes, 1);
    /* Released: relid 1 is free for the next device; a second release is
     * for nothing. */
    assert_int_equal(offer(f, 3), 0);
    expect_msg(f, VMBUS_MSG_OFFERCHANNEL, &o, sizeof(o));
    assert_int_equal(o.child_relid, 1);
    send_relid_msg(f, VMBUS_MSG_RELID_RELEASED, 1);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_CHAN_STATE),
                     before.errors[VMBUS_SRV_ERR_CHAN_STATE] + 1);
}

static void chan_rescind__gpadls_left_behind__dropped_on_release(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    uint64_t pfns[3];
    alloc_run(f, 3, pfns);
    assert_int_equal(gpadl_create(f, 2, GPADL_A, pfns, 3), 0);
    vmbus_chan_rescind(f->chan[1]);
    f->chan[1] = NULL;
    expect_msg(f, VMBUS_MSG_RESCIND_CHANNELOFFER, NULL, 12);
    assert_int_equal(f->dev[1].closes, 0); /* it was not open */
    /* New GPADLs on a rescinded channel are refused. */
    uint64_t more[2];
    alloc_run(f, 2, more);
    uint8_t s[32];
    size_t len = put_range(s, 2 * HV_PAGE_SIZE, 0, more, 2);
    send_gpadl_raw(f, 2, GPADL_B, 1, (uint16_t)len, s, len);
    expect_none(f);
    send_relid_msg(f, VMBUS_MSG_RELID_RELEASED, 2);
    expect_none(f);
    assert_int_equal(stats(f).gpadls, 0);
    assert_int_equal(stats(f).gpadl_pages, 0);
    assert_int_equal(gpadl_create(f, 1, GPADL_A, pfns, 3), 0);
}

static void chan_rescind__not_yet_offered__freed_silently(void **state)
{
    struct fix *f = *state;
    vmbus_chan_rescind(f->chan[0]);
    f->chan[0] = NULL;
    connect_version(f, VMBUS_VERSION_WIN10_V5_3);
    static const uint32_t relids[] = {2};
    request_offers_expect(f, relids, 1);
}

static void relid_released__not_rescinded__counted(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    send_relid_msg(f, VMBUS_MSG_RELID_RELEASED, 1);
    send_relid_msg(f, VMBUS_MSG_RELID_RELEASED, 2);
    expect_none(f);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_CHAN_STATE), 2);
    send_relid_msg(f, VMBUS_MSG_RELID_RELEASED, 50);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_RELID), 1);
    assert_true(vmbus_chan_is_open(f->chan[0]));
    assert_int_equal(f->dev[0].closes, 0);
    assert_int_equal(stats(f).gpadls, 1);
}

/* --- UNLOAD ------------------------------------------------------------ */

static void unload__connected__channels_closed_gpadls_dropped_reconnect_offers(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    make_ring_gpadl(f, 2, GPADL_B);
    assert_int_equal(open_chan(f, 2, GPADL_B, 2, 0), 0);
    send_hdr_only(f, VMBUS_MSG_UNLOAD);
    expect_msg(f, VMBUS_MSG_UNLOAD_RESPONSE, NULL, 8);
    expect_none(f);
    assert_int_equal(f->dev[0].closes, 1);
    assert_int_equal(f->dev[1].closes, 1);
    assert_false(vmbus_server_connected(f->srv));
    struct vmbus_server_stats st = stats(f);
    assert_int_equal(st.gpadls, 0);
    assert_int_equal(st.gpadl_pages, 0);
    assert_int_equal(st.version, 0);
    /* Disconnected: channel messages are refused. */
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 1);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_NOT_CONNECTED), 1);

    connect_and_offers(f);
    make_ring_gpadl(f, 1, GPADL_A); /* the id is free again */
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), 0);
    assert_int_equal(f->dev[0].opens, 2);
}

/* --- sub-channels ------------------------------------------------------ */

static int offer_sub(struct fix *f, unsigned i, uint16_t index)
{
    f->dev[i] = (struct dev){0};
    return vmbus_server_offer_sub(f->chan[0], index, &dev_ops, &f->dev[i], &f->chan[i]);
}

static void offer_sub__open_primary__same_guids_own_ring_and_vp(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    assert_int_equal(offer_sub(f, 2, 1), 0);
    struct vmbus_msg_offer o;
    expect_msg(f, VMBUS_MSG_OFFERCHANNEL, &o, sizeof(o));
    struct vmbus_offer_params p = offer_params(0);
    assert_int_equal(o.child_relid, 3);
    assert_memory_equal(&o.interface_type, &p.class_id, sizeof(p.class_id));
    assert_memory_equal(&o.interface_instance, &p.instance_id, sizeof(p.instance_id));
    assert_int_equal(o.sub_channel_index, 1);
    expect_none(f);
    /* Not twice, not index 0, not of a closed channel or of a sub-channel. */
    struct vmbus_chan *x;
    assert_int_equal(vmbus_server_offer_sub(f->chan[0], 1, &dev_ops, &f->dev[3], &x), -EEXIST);
    assert_int_equal(vmbus_server_offer_sub(f->chan[0], 0, &dev_ops, &f->dev[3], &x), -EINVAL);
    assert_int_equal(vmbus_server_offer_sub(f->chan[1], 1, &dev_ops, &f->dev[3], &x), -EINVAL);
    assert_int_equal(vmbus_server_offer_sub(f->chan[2], 1, &dev_ops, &f->dev[3], &x), -EINVAL);
    expect_none(f);
    /* Opened like any channel, on its own ring, interrupting its own VP. */
    make_ring_gpadl(f, 3, GPADL_B);
    assert_int_equal(open_chan(f, 3, GPADL_B, RING_SPLIT, 1), 0);
    assert_int_equal(f->dev[2].opens, 1);
    assert_true(f->dev[2].rings_ok);
    assert_int_equal(vmbus_chan_target_vp(f->chan[2]), 1);
    assert_ptr_not_equal(vmbus_chan_rx(f->chan[2]), vmbus_chan_rx(f->chan[0]));
    /* One on a VP the partition does not have: refused, counted. */
    assert_int_equal(offer_sub(f, 3, 2), 0);
    expect_msg(f, VMBUS_MSG_OFFERCHANNEL, &o, sizeof(o));
    assert_int_equal(o.child_relid, 4);
    assert_int_equal(o.sub_channel_index, 2);
    make_ring_gpadl(f, 4, GPADL_C);
    uint64_t vp_errs = errs(f, VMBUS_SRV_ERR_VP);
    assert_int_not_equal(open_chan(f, 4, GPADL_C, RING_SPLIT, NVP), 0);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_VP), vp_errs + 1);
    assert_int_equal(f->dev[3].opens, 0);
    assert_true(vmbus_chan_is_open(f->chan[0]));
}

static void offer_sub__primary_closed__subs_closed_first_then_rescinded(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    assert_int_equal(offer_sub(f, 2, 1), 0);
    assert_int_equal(offer_sub(f, 3, 2), 0);
    drain(f);
    make_ring_gpadl(f, 3, GPADL_B);
    assert_int_equal(open_chan(f, 3, GPADL_B, RING_SPLIT, 0), 0);
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 1);
    assert_int_equal(f->dev[0].closes, 1);
    assert_int_equal(f->dev[2].closes, 1);
    assert_int_equal(f->dev[3].closes, 0); /* never opened */
    assert_true(f->dev[2].closed_at < f->dev[0].closed_at);
    struct vmbus_msg_relid r;
    expect_msg(f, VMBUS_MSG_RESCIND_CHANNELOFFER, &r, sizeof(r));
    assert_int_equal(r.child_relid, 3);
    expect_msg(f, VMBUS_MSG_RESCIND_CHANNELOFFER, &r, sizeof(r));
    assert_int_equal(r.child_relid, 4);
    expect_none(f);
    f->chan[2] = f->chan[3] = NULL;
    /* The guest lets them go; the primary reopens with none. */
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 3);
    send_teardown(f, 3, GPADL_B);
    expect_torndown(f, GPADL_B);
    send_relid_msg(f, VMBUS_MSG_RELID_RELEASED, 3);
    send_relid_msg(f, VMBUS_MSG_RELID_RELEASED, 4);
    expect_none(f);
    uint64_t bad = errs(f, VMBUS_SRV_ERR_CHAN_STATE) + errs(f, VMBUS_SRV_ERR_RELID);
    send_teardown(f, 1, GPADL_A);
    expect_torndown(f, GPADL_A);
    make_ring_gpadl(f, 1, GPADL_A);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), 0);
    assert_int_equal(offer_sub(f, 2, 1), 0);
    struct vmbus_msg_offer o;
    expect_msg(f, VMBUS_MSG_OFFERCHANNEL, &o, sizeof(o));
    assert_int_equal(o.child_relid, 3);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_CHAN_STATE) + errs(f, VMBUS_SRV_ERR_RELID), bad);
}

static void offer_sub__guest_unloads__subs_forgotten_not_reoffered(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    assert_int_equal(offer_sub(f, 2, 1), 0);
    drain(f);
    make_ring_gpadl(f, 3, GPADL_B);
    assert_int_equal(open_chan(f, 3, GPADL_B, RING_SPLIT, 0), 0);
    send_hdr_only(f, VMBUS_MSG_UNLOAD);
    expect_msg(f, VMBUS_MSG_UNLOAD_RESPONSE, NULL, 8);
    expect_none(f);
    assert_int_equal(f->dev[2].closes, 1);
    assert_true(f->dev[2].closed_at < f->dev[0].closed_at);
    f->chan[2] = NULL;
    /* The next guest is offered the devices, not the old sub-channel. */
    connect_and_offers(f);
}

/*
 * Hostile sequences on a sub-channel that took a lower relid than its
 * primary (relid 1, freed by a rescinded device and reused): a second
 * OPEN of the open sub-channel is refused and counted; its ring GPADL torn
 * down while it is open waits for the close; UNLOAD then closes the
 * sub-channel before its primary (whatever the relid order), answers the
 * teardown (to the guest that asked, before the unload's answer) and
 * forgets the sub-channel: the next guest is offered the primary's device
 * only, and no GPADL of the old connection is left.
 */
static void offer_sub__lower_relid_than_primary_dup_open_teardown_unload__closed_first_forgotten(
    void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    vmbus_chan_rescind(f->chan[0]);
    f->chan[0] = NULL;
    struct vmbus_msg_relid r;
    expect_msg(f, VMBUS_MSG_RESCIND_CHANNELOFFER, &r, sizeof(r));
    assert_int_equal(r.child_relid, 1);
    send_relid_msg(f, VMBUS_MSG_RELID_RELEASED, 1);
    make_ring_gpadl(f, 2, GPADL_A);
    assert_int_equal(open_chan(f, 2, GPADL_A, RING_SPLIT, 0), 0);
    f->dev[2] = (struct dev){0};
    assert_int_equal(vmbus_server_offer_sub(f->chan[1], 1, &dev_ops, &f->dev[2], &f->chan[2]), 0);
    struct vmbus_msg_offer o;
    expect_msg(f, VMBUS_MSG_OFFERCHANNEL, &o, sizeof(o));
    assert_int_equal(o.child_relid, 1);
    assert_int_equal(o.sub_channel_index, 1);
    make_ring_gpadl(f, 1, GPADL_B);
    assert_int_equal(open_chan(f, 1, GPADL_B, RING_SPLIT, 1), 0);
    uint64_t state_errs = errs(f, VMBUS_SRV_ERR_CHAN_STATE);
    assert_int_equal(open_chan(f, 1, GPADL_B, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_CHAN_STATE), state_errs + 1);
    assert_int_equal(f->dev[2].opens, 1);
    send_teardown(f, 1, GPADL_B);
    expect_none(f); /* the ring still uses it */
    assert_true(vmbus_chan_is_open(f->chan[2]));
    send_hdr_only(f, VMBUS_MSG_UNLOAD);
    /* The teardown it asked for, answered to it, before the unload's. */
    expect_torndown(f, GPADL_B);
    expect_msg(f, VMBUS_MSG_UNLOAD_RESPONSE, NULL, 8);
    expect_none(f);
    assert_int_equal(f->dev[2].closes, 1);
    assert_int_equal(f->dev[1].closes, 1);
    assert_true(f->dev[2].closed_at < f->dev[1].closed_at);
    f->chan[2] = NULL;
    connect_version(f, VMBUS_VERSION_WIN10_V5_3);
    request_offers_expect(f, (const uint32_t[]){2}, 1);
    assert_int_equal(stats(f).gpadls, 0);
}

static void unload__twice__answered_each_time(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    send_hdr_only(f, VMBUS_MSG_UNLOAD);
    send_hdr_only(f, VMBUS_MSG_UNLOAD);
    expect_msg(f, VMBUS_MSG_UNLOAD_RESPONSE, NULL, 8);
    expect_msg(f, VMBUS_MSG_UNLOAD_RESPONSE, NULL, 8);
    expect_none(f);
}

/* --- ring failure ------------------------------------------------------ */

static void chan_fail__open_channel__closed_on_next_run_then_reopen(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    vmbus_chan_fail(f->chan[0]);
    assert_true(vmbus_chan_is_open(f->chan[0])); /* the control thread decides */
    assert_int_equal(f->dev[0].closes, 0);
    assert_true(hv_host_run(f->host, 0) >= 1);
    assert_int_equal(f->dev[0].closes, 1);
    assert_false(vmbus_chan_is_open(f->chan[0]));
    assert_int_equal(stats(f).ring_failures, 1);
    expect_none(f);
    /* Failed: the guest must close before it opens again. */
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    assert_int_equal(f->dev[0].opens, 1);
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 1);
    assert_int_equal(f->dev[0].closes, 1);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), 0);
    assert_int_equal(f->dev[0].opens, 2);
    /* Nothing left over: another run closes nothing. */
    hv_host_run(f->host, 0);
    assert_true(vmbus_chan_is_open(f->chan[0]));
    assert_int_equal(stats(f).ring_failures, 1);
}

static void chan_fail__channel_closed_by_guest_first__nothing_to_do(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    vmbus_chan_fail(f->chan[0]);
    send_relid_msg(f, VMBUS_MSG_CLOSECHANNEL, 1);
    assert_int_equal(f->dev[0].closes, 1);
    hv_host_run(f->host, 0);
    assert_int_equal(f->dev[0].closes, 1);
    assert_int_equal(stats(f).ring_failures, 0);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), 0);
    hv_host_run(f->host, 0);
    assert_true(vmbus_chan_is_open(f->chan[0]));
}

/* A device's open may find the guest's ring unusable, call vmbus_chan_fail()
 * and refuse. That request concerns the open that failed; it must not close
 * the next, healthy, open of the channel. */
static void chan_fail__during_refused_open__next_open_not_closed(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    make_ring_gpadl(f, 1, GPADL_A);
    f->dev[0].fail_in_open = true;
    f->dev[0].open_rc = -EPROTO;
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    f->dev[0].fail_in_open = false;
    f->dev[0].open_rc = 0;
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), 0);
    hv_host_run(f->host, 0);
    assert_true(vmbus_chan_is_open(f->chan[0]));
    assert_int_equal(f->dev[0].closes, 0);
    assert_int_equal(stats(f).ring_failures, 0);
}

/* --- partition stop ---------------------------------------------------- */

static void partition_stop__open_channel__closed_unmapped_offer_kept(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    uint64_t pfns[4];
    alloc_run(f, 4, pfns);
    assert_int_equal(gpadl_create(f, 2, GPADL_B, pfns, 4), 0);
    assert_int_equal(hv_partition_stop(f->part, 0), 0);
    assert_int_equal(f->dev[0].closes, 1);
    assert_false(vmbus_chan_is_open(f->chan[0]));
    assert_false(vmbus_server_connected(f->srv));
    struct vmbus_server_stats st = stats(f);
    assert_int_equal(st.gpadls, 0);
    assert_int_equal(st.gpadl_pages, 0);

    hv_guest_detach(f->g);
    f->g = NULL;
    assert_int_equal(hv_partition_start(f->part), 0);
    assert_int_equal(attach_guest(f), 0);
    connect_and_offers(f);
    make_ring_gpadl(f, 1, GPADL_A);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), 0);
    assert_int_equal(f->dev[0].opens, 2);
}

/* --- back-pressure ----------------------------------------------------- */

/* A message whose answer is one message and that changes nothing: a
 * GPADL_HEADER with no ranges (answered with a failed GPADL_CREATED). */
static int post_answered(struct fix *f)
{
    struct vmbus_msg_gpadl_header h;
    memset(&h, 0, sizeof(h));
    h.hdr.msgtype = VMBUS_MSG_GPADL_HEADER;
    h.child_relid = 1;
    h.gpadl = 0x777;
    return post(f, MSG_CONN, &h, sizeof(h));
}

static void handle_message__guest_never_drains__insufficient_buffers(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    int accepted = 0, st = HV_STATUS_SUCCESS;
    for (int i = 0; i < 4 * HV_SYNIC_QUEUE_LEN && st == HV_STATUS_SUCCESS; i++) {
        st = post_answered(f);
        if (st == HV_STATUS_SUCCESS)
            accepted++;
    }
    assert_int_equal(st, HV_STATUS_INSUFFICIENT_BUFFERS);
    /* One in the slot, the queue full behind it. */
    assert_int_equal(accepted, HV_SYNIC_QUEUE_LEN + 1);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_BUSY), 1);
    /* It stays refused until the guest drains; then it is served again. */
    assert_int_equal(post_answered(f), HV_STATUS_INSUFFICIENT_BUFFERS);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_BUSY), 2);
    assert_int_equal(drain(f), accepted);
    assert_int_equal(post_answered(f), HV_STATUS_SUCCESS);
    assert_int_equal(gpadl_answer(f, 1, 0x777), VMBUS_STATUS_FAILURE);
    expect_none(f);
}

static void handle_message__queue_full__refused_without_state_change(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    make_ring_gpadl(f, 1, GPADL_A);
    while (post_answered(f) == HV_STATUS_SUCCESS)
        ;
    struct vmbus_server_stats before = stats(f);
    struct vmbus_msg_open m;
    memset(&m, 0, sizeof(m));
    m.hdr.msgtype = VMBUS_MSG_OPENCHANNEL;
    m.child_relid = 1;
    m.ring_gpadl = GPADL_A;
    m.downstream_page_offset = RING_SPLIT;
    assert_int_equal(post(f, MSG_CONN, &m, sizeof(m)), HV_STATUS_INSUFFICIENT_BUFFERS);
    struct vmbus_msg_hdr u = {VMBUS_MSG_UNLOAD, 0};
    assert_int_equal(post(f, MSG_CONN, &u, sizeof(u)), HV_STATUS_INSUFFICIENT_BUFFERS);
    assert_int_equal(f->dev[0].opens, 0);
    assert_true(vmbus_server_connected(f->srv));
    struct vmbus_server_stats after = stats(f);
    assert_memory_equal(after.msgs_in, before.msgs_in, sizeof(after.msgs_in));
    assert_int_equal(after.errors[VMBUS_SRV_ERR_BUSY], before.errors[VMBUS_SRV_ERR_BUSY] + 2);
    /* Draining lets the guest in again. */
    assert_int_equal(drain(f), HV_SYNIC_QUEUE_LEN + 1);
    assert_int_equal(open_chan(f, 1, GPADL_A, RING_SPLIT, 0), 0);
    assert_int_equal(f->dev[0].opens, 1);
}

static void request_offers__not_enough_room_for_all__insufficient_buffers(void **state)
{
    struct fix *f = *state;
    connect_version(f, VMBUS_VERSION_WIN10_V5_3);
    /* Leave room for two messages: the root has sent QUEUE_LEN - 1 others,
     * the first sits in the slot and QUEUE_LEN - 2 wait behind it.
     * REQUESTOFFERS needs three (two offers and ALLOFFERS_DELIVERED). */
    struct vmbus_msg_hdr filler = {VMBUS_MSG_UNLOAD_RESPONSE, 0};
    for (int i = 0; i < HV_SYNIC_QUEUE_LEN - 1; i++)
        assert_int_equal(
            hv_synic_post(f->part, VMBUS_MESSAGE_SINT, HVMSG_VMBUS, &filler, sizeof(filler)), 0);
    struct vmbus_msg_hdr ro = {VMBUS_MSG_REQUESTOFFERS, 0};
    assert_int_equal(post(f, MSG_CONN, &ro, sizeof(ro)), HV_STATUS_INSUFFICIENT_BUFFERS);
    assert_int_equal(stats(f).msgs_in[VMBUS_MSG_REQUESTOFFERS], 0);
    /* One taken out: room for three. */
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    assert_int_equal(recv_msg(f, buf, NULL), VMBUS_MSG_UNLOAD_RESPONSE);
    assert_int_equal(post(f, MSG_CONN, &ro, sizeof(ro)), HV_STATUS_SUCCESS);
    assert_int_equal(drain(f), (HV_SYNIC_QUEUE_LEN - 2) + NCHAN + 1);
}

/* A deferred GPADL_TORNDOWN is owed to the guest (Linux waits for it
 * without a timeout): it must not be dropped because the guest's queue was
 * full when the device put its last reference. */
static void gpadl_put__deferred_torndown_guest_queue_full__not_lost(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    uint64_t pfns[2];
    alloc_run(f, 2, pfns);
    assert_int_equal(gpadl_create(f, 1, GPADL_B, pfns, 2), 0);
    struct vmbus_gpadl *g;
    assert_int_equal(vmbus_chan_gpadl_get(f->chan[0], GPADL_B, &g), 0);
    send_teardown(f, 1, GPADL_B);
    expect_none(f);
    while (post_answered(f) == HV_STATUS_SUCCESS)
        ;
    vmbus_gpadl_put(g); /* the device is done with it */
    assert_int_equal(stats(f).gpadls, 1);
    assert_true(drain_find(f, VMBUS_MSG_GPADL_TORNDOWN, GPADL_B));
}

/* The same for a channel close that releases a ring whose teardown the
 * guest asked for, with a second GPADL the device put in its close. */
static void close__deferred_torndowns_guest_queue_nearly_full__not_lost(void **state)
{
    struct fix *f = *state;
    open_channel_1(f);
    uint64_t pfns[2];
    alloc_run(f, 2, pfns);
    assert_int_equal(gpadl_create(f, 1, GPADL_B, pfns, 2), 0);
    assert_int_equal(vmbus_chan_gpadl_get(f->chan[0], GPADL_B, &f->dev[0].held), 0);
    send_teardown(f, 1, GPADL_A);
    send_teardown(f, 1, GPADL_B);
    expect_none(f);
    while (post_answered(f) == HV_STATUS_SUCCESS)
        ;
    /* Make room for exactly one message, then close. */
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    assert_true(recv_msg(f, buf, NULL) >= 0);
    struct vmbus_msg_relid m = {{VMBUS_MSG_CLOSECHANNEL, 0}, 1};
    int st = post(f, MSG_CONN, &m, sizeof(m));
    if (st == HV_STATUS_INSUFFICIENT_BUFFERS) {
        /* Refused for lack of room: fine, as long as it is served later. */
        assert_int_equal(f->dev[0].closes, 0);
        drain(f);
        send_msg(f, &m, sizeof(m));
    } else {
        assert_int_equal(st, HV_STATUS_SUCCESS);
    }
    assert_int_equal(f->dev[0].closes, 1);
    uint32_t seen = 0;
    int t;
    struct vmbus_msg_gpadl_torndown td;
    while ((t = recv_msg(f, buf, NULL)) >= 0) {
        memcpy(&td, buf, sizeof(td));
        if (t == VMBUS_MSG_GPADL_TORNDOWN && td.gpadl == GPADL_A)
            seen |= 1;
        if (t == VMBUS_MSG_GPADL_TORNDOWN && td.gpadl == GPADL_B)
            seen |= 2;
    }
    assert_int_equal(seen, 3);
    assert_int_equal(stats(f).gpadls, 0);
}

/* A rescind the root could not post (the guest's queue was full) still
 * leaves the relid with the guest: it must not be given to another device
 * before the guest has been told and has released it. */
static void chan_rescind__guest_queue_full__relid_kept_until_released(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    while (post_answered(f) == HV_STATUS_SUCCESS)
        ;
    vmbus_chan_rescind(f->chan[1]);
    f->chan[1] = NULL;
    bool told = drain_find(f, VMBUS_MSG_RESCIND_CHANNELOFFER, 2);
    assert_int_equal(offer(f, 2), 0);
    assert_int_not_equal(vmbus_chan_relid(f->chan[2]), 2);
    /* The guest is told at the latest once it talks to the root again. */
    struct vmbus_msg_modify_channel mc = {{VMBUS_MSG_MODIFYCHANNEL, 0}, 1, 0};
    send_msg(f, &mc, sizeof(mc));
    told |= drain_find(f, VMBUS_MSG_RESCIND_CHANNELOFFER, 2);
    assert_true(told);
    assert_int_equal(open_chan(f, 2, GPADL_A, RING_SPLIT, 0), VMBUS_STATUS_FAILURE);
    uint64_t before = errs(f, VMBUS_SRV_ERR_CHAN_STATE);
    send_relid_msg(f, VMBUS_MSG_RELID_RELEASED, 2);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_CHAN_STATE), before);
}

/* --- connection reset: nothing of the old connection reaches the next -- */

/* Connect and collect the offers without checking them; relid 0 and 1..
 * counts go to *relids (bitmask). */
static uint32_t reconnect_offers(struct fix *f)
{
    connect_version(f, VMBUS_VERSION_WIN10_V5_3);
    send_hdr_only(f, VMBUS_MSG_REQUESTOFFERS);
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    uint32_t len, seen = 0;
    int t;
    bool done = false;
    while ((t = recv_msg(f, buf, &len)) >= 0) {
        assert_int_not_equal(t, VMBUS_MSG_RESCIND_CHANNELOFFER);
        if (t == VMBUS_MSG_OFFERCHANNEL) {
            struct vmbus_msg_offer o;
            memcpy(&o, buf, sizeof(o));
            assert_true(o.child_relid >= 1 && o.child_relid < 32);
            seen |= 1u << o.child_relid;
        }
        done |= t == VMBUS_MSG_ALLOFFERS_DELIVERED;
    }
    assert_true(done);
    return seen;
}

/*
 * A channel rescinded while the guest held it, and never released: each
 * way the connection resets (UNLOAD, a second INITIATE_CONTACT, partition
 * stop) frees it, so its relid is free again and the next connection hears
 * nothing of it (OpenVMM releases every channel of a disconnecting client;
 * Linux's vmbus_onoffer_rescind ignores a relid it does not know, which is
 * what a guest that never saw the channel would otherwise get).
 */
static void reset__rescinded_channel_never_released__freed(void **state)
{
    struct fix *f = *state;
    for (int how = 0; how < 3; how++) {
        connect_version(f, VMBUS_VERSION_WIN10_V5_3);
        send_hdr_only(f, VMBUS_MSG_REQUESTOFFERS);
        drain(f);
        unsigned dev = how == 0 ? 0 : how == 1 ? 2 : 3; /* the device on relid 1 */
        uint32_t relid = vmbus_chan_relid(f->chan[dev]);
        vmbus_chan_rescind(f->chan[dev]);
        f->chan[dev] = NULL;
        assert_true(drain_find(f, VMBUS_MSG_RESCIND_CHANNELOFFER, relid));
        /* The guest never releases it. */
        if (how == 0) {
            send_hdr_only(f, VMBUS_MSG_UNLOAD);
            expect_msg(f, VMBUS_MSG_UNLOAD_RESPONSE, NULL, 8);
        } else if (how == 2) {
            assert_int_equal(hv_partition_stop(f->part, 0), 0);
            hv_guest_detach(f->g);
            f->g = NULL;
            assert_int_equal(hv_partition_start(f->part), 0);
            assert_int_equal(attach_guest(f), 0);
        }
        uint32_t seen = reconnect_offers(f);
        assert_false(seen & (1u << relid));
        /* The relid is the next device's. */
        unsigned next = how == 0 ? 2 : how == 1 ? 3 : 0;
        assert_int_equal(offer(f, next), 0);
        assert_int_equal(vmbus_chan_relid(f->chan[next]), relid);
        drain(f);
        send_hdr_only(f, VMBUS_MSG_UNLOAD);
        drain(f);
    }
    assert_int_equal(errs(f, VMBUS_SRV_ERR_CHAN_STATE), 0);
}

/*
 * A rescind the old connection was owed (its queue was full when the
 * device went) is not told to the connection that replaces it: the reset
 * frees the channel instead.
 */
static void initiate_contact__rescind_owed_to_old_connection__new_one_not_told(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    while (post_answered(f) == HV_STATUS_SUCCESS)
        ;
    vmbus_chan_rescind(f->chan[1]);
    f->chan[1] = NULL;
    /* A new guest (a kexec'd kernel, say) finds the slot full, frees it
     * and connects. */
    drain(f);
    struct vmbus_msg_initiate_contact m = contact_msg(VMBUS_VERSION_WIN10_V5_3);
    assert_int_equal(post(f, VMBUS_MESSAGE_CONNECTION_ID_4, &m, sizeof(m)), HV_STATUS_SUCCESS);
    expect_msg(f, VMBUS_MSG_VERSION_RESPONSE, NULL, sizeof(struct vmbus_msg_version_response));
    expect_none(f);
    send_hdr_only(f, VMBUS_MSG_REQUESTOFFERS);
    struct vmbus_msg_offer o;
    expect_msg(f, VMBUS_MSG_OFFERCHANNEL, &o, sizeof(o));
    assert_int_equal(o.child_relid, 1);
    expect_msg(f, VMBUS_MSG_ALLOFFERS_DELIVERED, NULL, 8);
    expect_none(f);
    /* Relid 2 is free again. */
    assert_int_equal(offer(f, 2), 0);
    assert_int_equal(vmbus_chan_relid(f->chan[2]), 2);
}

/*
 * Messages queued for the old connection and not yet in the guest's slot
 * are dropped at the reset: after UNLOAD or a new INITIATE_CONTACT the
 * guest reads what was in its slot, then the answer to its own message,
 * never a rescind (or anything else) about a channel it was never offered.
 */
static void reset__messages_queued_for_old_connection__dropped(void **state)
{
    struct fix *f = *state;
    for (int how = 0; how < 2; how++) {
        connect_and_offers(f);
        /* Something in the slot the guest has not read yet... */
        send_relid_msg(f, VMBUS_MSG_RELID_RELEASED, 77);
        struct vmbus_msg_modify_channel mc = {{VMBUS_MSG_MODIFYCHANNEL, 0}, 1, 0};
        send_msg(f, &mc, sizeof(mc)); /* answered (5.3): MODIFYCHANNEL_RESPONSE */
        /* ...and a rescind queued behind it. */
        unsigned dev = how == 0 ? 1 : 2;
        uint32_t relid = vmbus_chan_relid(f->chan[dev]);
        vmbus_chan_rescind(f->chan[dev]);
        f->chan[dev] = NULL;
        struct hv_partition_stats before;
        hv_partition_get_stats(f->part, &before);
        uint32_t want;
        if (how == 0) {
            send_hdr_only(f, VMBUS_MSG_UNLOAD);
            want = VMBUS_MSG_UNLOAD_RESPONSE;
        } else {
            struct vmbus_msg_initiate_contact m = contact_msg(VMBUS_VERSION_WIN10_V5_3);
            assert_int_equal(post(f, VMBUS_MESSAGE_CONNECTION_ID_4, &m, sizeof(m)),
                             HV_STATUS_SUCCESS);
            want = VMBUS_MSG_VERSION_RESPONSE;
        }
        struct hv_partition_stats after;
        hv_partition_get_stats(f->part, &after);
        assert_int_equal(after.messages_purged, before.messages_purged + 1);
        expect_msg(f, VMBUS_MSG_MODIFYCHANNEL_RESPONSE, NULL, 16); /* was in the slot */
        expect_msg(f, want, NULL, 8);
        expect_none(f);
        if (how == 0)
            connect_version(f, VMBUS_VERSION_WIN10_V5_3);
        send_hdr_only(f, VMBUS_MSG_REQUESTOFFERS);
        assert_false(drain_find(f, VMBUS_MSG_RESCIND_CHANNELOFFER, relid));
        assert_int_equal(offer(f, dev + 1), 0); /* re-use: dev 2 then 3 */
        assert_int_equal(vmbus_chan_relid(f->chan[dev + 1]), relid);
        drain(f);
        send_hdr_only(f, VMBUS_MSG_UNLOAD);
        drain(f);
    }
}

/*
 * A GPADL the guest tore down while something in the root still held it,
 * and which outlives the connection: its last put answers nothing, since
 * the next connection may be using that GPADL id for one of its own.
 */
static void reset__gpadl_teardown_owed__torndown_not_sent_to_new_connection(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    uint64_t pfns[2];
    alloc_run(f, 2, pfns);
    assert_int_equal(gpadl_create(f, 1, GPADL_A, pfns, 2), 0);
    struct vmbus_gpadl *g;
    assert_int_equal(vmbus_chan_gpadl_get(f->chan[0], GPADL_A, &g), 0);
    send_teardown(f, 1, GPADL_A);
    expect_none(f); /* deferred: held */
    send_hdr_only(f, VMBUS_MSG_UNLOAD);
    expect_msg(f, VMBUS_MSG_UNLOAD_RESPONSE, NULL, 8);
    reconnect_offers(f);
    vmbus_gpadl_put(g);
    expect_none(f);
    /* The id is the new connection's to use. */
    uint64_t more[2];
    alloc_run(f, 2, more);
    assert_int_equal(gpadl_create(f, 1, GPADL_A, more, 2), 0);
    expect_none(f);
}

static void gpadl_header__too_many_gpadls__refused(void **state)
{
    struct fix *f = *state;
    connect_and_offers(f);
    uint64_t first = alloc_run(f, VMBUS_MAX_GPADLS + 1, NULL);
    for (uint32_t i = 0; i < VMBUS_MAX_GPADLS; i++) {
        uint64_t pfn = first + i;
        assert_int_equal(gpadl_create(f, 1 + i % NCHAN, 0x10000 + i, &pfn, 1), 0);
    }
    assert_int_equal(stats(f).gpadls, VMBUS_MAX_GPADLS);
    uint64_t pfn = first + VMBUS_MAX_GPADLS;
    assert_int_not_equal(gpadl_create(f, 1, 0x20000, &pfn, 1), 0);
    assert_int_equal(errs(f, VMBUS_SRV_ERR_GPADL_SIZE), 1);
    assert_int_equal(stats(f).gpadls, VMBUS_MAX_GPADLS);
    send_teardown(f, 1, 0x10000);
    expect_torndown(f, 0x10000);
    assert_int_equal(gpadl_create(f, 1, 0x20000, &pfn, 1), 0);
    /* UNLOAD drops all of them. */
    send_hdr_only(f, VMBUS_MSG_UNLOAD);
    expect_msg(f, VMBUS_MSG_UNLOAD_RESPONSE, NULL, 8);
    assert_int_equal(stats(f).gpadls, 0);
    assert_int_equal(stats(f).gpadl_pages, 0);
}

static void handle_message__synic_not_enabled__invalid_partition_state(void **state)
{
    struct fix *f = *state;
    assert_int_equal(hv_partition_stop(f->part, 0), 0);
    hv_guest_detach(f->g);
    f->g = NULL;
    assert_int_equal(hv_partition_start(f->part), 0);
    assert_int_equal(hv_direct_partition_attach(f->part, &f->g), 0);
    struct vmbus_msg_initiate_contact m = contact_msg(VMBUS_VERSION_WIN10_V5_3);
    assert_int_equal(post(f, VMBUS_MESSAGE_CONNECTION_ID_4, &m, sizeof(m)),
                     HV_STATUS_INVALID_PARTITION_STATE);
    assert_false(vmbus_server_connected(f->srv));
    assert_int_equal(errs(f, VMBUS_SRV_ERR_NOT_CONNECTED), 1);
    assert_int_equal(hv_guest_synic_enable(f->g, 1u << VMBUS_MESSAGE_SINT), HV_STATUS_SUCCESS);
    connect_and_offers(f);
}

/* --- vmbus_msg_check --------------------------------------------------- */

struct msg_rule_want {
    uint32_t type;
    uint32_t len;
    bool from_guest;
};

static const struct msg_rule_want msg_table[] = {
    {VMBUS_MSG_OFFERCHANNEL, 196, false},
    {VMBUS_MSG_RESCIND_CHANNELOFFER, 12, false},
    {VMBUS_MSG_REQUESTOFFERS, 8, true},
    {VMBUS_MSG_ALLOFFERS_DELIVERED, 8, false},
    {VMBUS_MSG_OPENCHANNEL, 148, true},
    {VMBUS_MSG_OPENCHANNEL_RESULT, 20, false},
    {VMBUS_MSG_CLOSECHANNEL, 12, true},
    {VMBUS_MSG_GPADL_HEADER, 20, true},
    {VMBUS_MSG_GPADL_BODY, 16, true},
    {VMBUS_MSG_GPADL_CREATED, 20, false},
    {VMBUS_MSG_GPADL_TEARDOWN, 16, true},
    {VMBUS_MSG_GPADL_TORNDOWN, 12, false},
    {VMBUS_MSG_RELID_RELEASED, 12, true},
    {VMBUS_MSG_INITIATE_CONTACT, 40, true},
    {VMBUS_MSG_VERSION_RESPONSE, 16, false},
    {VMBUS_MSG_UNLOAD, 8, true},
    {VMBUS_MSG_UNLOAD_RESPONSE, 8, false},
    {VMBUS_MSG_MODIFYCHANNEL, 16, true},
    {VMBUS_MSG_MODIFYCHANNEL_RESPONSE, 16, false},
};

static int check(uint32_t type, uint32_t len, bool from_guest, uint32_t version)
{
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    memset(buf, 0, sizeof(buf));
    memcpy(buf, &type, sizeof(type));
    return vmbus_msg_check(buf, len, from_guest, version);
}

static void msg_check__min_lengths__shorter_refused(void **state)
{
    (void)state;
    const uint32_t v = VMBUS_VERSION_WIN10_V5_3;
    for (size_t i = 0; i < sizeof(msg_table) / sizeof(msg_table[0]); i++) {
        const struct msg_rule_want *w = &msg_table[i];
        assert_int_equal(vmbus_msg_min_len(w->type), w->len);
        assert_int_equal(check(w->type, w->len, w->from_guest, v), (int)w->type);
        assert_int_equal(check(w->type, HV_MESSAGE_PAYLOAD_MAX, w->from_guest, v), (int)w->type);
        for (uint32_t len = 0; len < w->len; len++)
            assert_int_equal(check(w->type, len, w->from_guest, v), -VMBUS_MSG_ERR_SHORT);
        assert_string_not_equal(vmbus_msg_name(w->type), "UNKNOWN");
    }
}

static void msg_check__wrong_direction__refused(void **state)
{
    (void)state;
    const uint32_t v = VMBUS_VERSION_WIN10_V5_3;
    for (size_t i = 0; i < sizeof(msg_table) / sizeof(msg_table[0]); i++) {
        const struct msg_rule_want *w = &msg_table[i];
        assert_int_equal(check(w->type, HV_MESSAGE_PAYLOAD_MAX, !w->from_guest, v),
                         -VMBUS_MSG_ERR_DIRECTION);
        assert_int_equal(check(w->type, HV_MESSAGE_PAYLOAD_MAX, !w->from_guest, 0),
                         -VMBUS_MSG_ERR_DIRECTION);
    }
}

static void msg_check__unknown_type__refused(void **state)
{
    (void)state;
    static const uint32_t unknown[] = {0, 18, 19, 20, 21, 23, 25, 26, 0x100, 0xffffffffu};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_int_equal(check(unknown[i], HV_MESSAGE_PAYLOAD_MAX, true, VMBUS_VERSION_WIN10_V5_3),
                         -VMBUS_MSG_ERR_TYPE);
        assert_int_equal(check(unknown[i], HV_MESSAGE_PAYLOAD_MAX, false, 0), -VMBUS_MSG_ERR_TYPE);
        assert_int_equal(vmbus_msg_min_len(unknown[i]), 0);
        assert_string_equal(vmbus_msg_name(unknown[i]), "UNKNOWN");
    }
    assert_int_equal(check(VMBUS_MSG_UNLOAD, 7, true, 0), -VMBUS_MSG_ERR_SHORT);
}

static void msg_check__version_gating__by_type(void **state)
{
    (void)state;
    /* Not connected: only INITIATE_CONTACT and UNLOAD from a guest, their
     * answers from the host. */
    for (size_t i = 0; i < sizeof(msg_table) / sizeof(msg_table[0]); i++) {
        const struct msg_rule_want *w = &msg_table[i];
        bool early = w->type == VMBUS_MSG_INITIATE_CONTACT || w->type == VMBUS_MSG_UNLOAD ||
                     w->type == VMBUS_MSG_VERSION_RESPONSE || w->type == VMBUS_MSG_UNLOAD_RESPONSE;
        assert_int_equal(check(w->type, w->len, w->from_guest, 0),
                         early ? (int)w->type : -VMBUS_MSG_ERR_VERSION);
    }
    /* MODIFYCHANNEL from 4.1, its response from 5.3; the rest from the start. */
    for (size_t i = 0; i < VMBUS_VERSION_COUNT; i++) {
        uint32_t v = vmbus_versions[i];
        assert_int_equal(check(VMBUS_MSG_MODIFYCHANNEL, 16, true, v),
                         v >= VMBUS_VERSION_WIN10_V4_1 ? VMBUS_MSG_MODIFYCHANNEL
                                                       : -VMBUS_MSG_ERR_VERSION);
        assert_int_equal(check(VMBUS_MSG_MODIFYCHANNEL_RESPONSE, 16, false, v),
                         v >= VMBUS_VERSION_WIN10_V5_3 ? VMBUS_MSG_MODIFYCHANNEL_RESPONSE
                                                       : -VMBUS_MSG_ERR_VERSION);
        assert_int_equal(check(VMBUS_MSG_OPENCHANNEL, 148, true, v), VMBUS_MSG_OPENCHANNEL);
        assert_int_equal(check(VMBUS_MSG_OFFERCHANNEL, 196, false, v), VMBUS_MSG_OFFERCHANNEL);
    }
    assert_int_equal(check(VMBUS_MSG_MODIFYCHANNEL, 16, true, VMBUS_VERSION_WIN10),
                     -VMBUS_MSG_ERR_VERSION);
    assert_int_equal(check(VMBUS_MSG_MODIFYCHANNEL, 16, true, VMBUS_VERSION_WIN10_V4_1),
                     VMBUS_MSG_MODIFYCHANNEL);
}

static void version_supported__exact_list_only(void **state)
{
    (void)state;
    for (size_t i = 0; i < VMBUS_VERSION_COUNT; i++) {
        assert_true(vmbus_version_supported(vmbus_versions[i]));
        if (i > 0)
            assert_true(vmbus_versions[i] < vmbus_versions[i - 1]); /* newest first */
    }
    static const uint32_t no[] = {0, VMBUS_VERSION_WS2008, VMBUS_VERSION_WIN7, 0x00050004u,
                                  0x00060000u, 0x00070000u, 0x00040002u, 0xffffffffu};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_false(vmbus_version_supported(no[i]));
    assert_string_equal(vmbus_srv_err_name(VMBUS_SRV_ERR_GPADL_PFN), "gpadl_pfn_outside_memory");
    assert_string_equal(vmbus_srv_err_name(VMBUS_SRV_ERR_COUNT), "invalid");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(initiate_contact__each_supported_version_on_its_conn_id__accepted),
        T(initiate_contact__unsupported_version__version_supported_0),
        T(initiate_contact__wrong_conn_id__dropped_and_counted),
        T(initiate_contact__target_vcpu_beyond_partition__refused_counted),
        T(initiate_contact__target_vcpu_1__messages_on_vp_1),
        T(initiate_contact__monitor_pages_mixed_or_bad__refused),
        T(initiate_contact__v5_wrong_sint_or_vtl__refused),
        T(initiate_contact__while_connected__resets_connection),
        T(initiate_contact__refused_while_connected__still_resets),
        T(handle_message__before_initiate_contact__dropped_not_connected),
        T(handle_message__too_short__counted_malformed),
        T(handle_message__unknown_type__counted_malformed),
        T(handle_message__host_to_guest_type_from_guest__counted_malformed),
        T(handle_message__not_a_vmbus_message__invalid_parameter),
        T(modify_channel__version_gated__refused_before_4_1),
        T(request_offers__connected__all_offers_then_alloffers_delivered),
        T(request_offers__twice__duplicate_no_offers_resent),
        T(server_offer__after_request_offers__sent_at_once),
        T(server_offer__before_contact__sent_with_the_others),
        T(open__unknown_relid__counted_not_opened),
        T(open__twice__second_refused_device_opened_once),
        T(open__unknown_gpadl__failure_status),
        T(open__gpadl_of_other_channel__failure_status),
        T(open__gpadl_still_building__failure_status),
        T(open__bad_downstream_offset__failure_status),
        T(open__target_vp_beyond_partition__failure_counted),
        T(open__target_vp_1__interrupts_on_vp_1),
        T(modify_channel__other_vp__interrupts_move_there),
        T(open__ring_larger_than_device_takes__failure_status_counted),
        T(open__ring_gpadl_not_whole_pages__failure_status),
        T(open__guest_ring_header_corrupt__failure_status),
        T(open__device_refuses__failure_status_then_retry_works),
        T(open__device_refuses__gpadl_not_held),
        T(close__not_open__counted),
        T(close__open_channel__device_closed_then_reopen_works),
        T(gpadl_header__single_message__created),
        T(gpadl_header_body__multi_message__created),
        T(gpadl_header__extra_trailing_words__ignored),
        T(gpadl__pfn_outside_memory__refused),
        T(gpadl__page_twice_in_one__overlap),
        T(gpadl__page_of_other_gpadl__overlap),
        T(gpadl__bad_range_records__refused),
        T(gpadl_header__duplicate_id__refused),
        T(gpadl_body__unknown_or_complete__counted_and_ignored),
        T(gpadl_header__channel_unknown_or_not_offered__counted),
        T(gpadl_teardown__unknown__counted),
        T(gpadl_teardown__ring_of_open_channel__deferred_until_close),
        T(gpadl_teardown__held_by_device__deferred_until_put),
        T(gpadl_teardown__held_until_close__device_put_sends_torndown),
        T(gpadl_teardown__all__stats_back_to_zero),
        T(gpadl_view__guest_bytes__visible_both_ways),
        T(chan_rescind__open_channel__closed_told_and_freed_on_release),
        T(chan_rescind__gpadls_left_behind__dropped_on_release),
        T(chan_rescind__not_yet_offered__freed_silently),
        T(relid_released__not_rescinded__counted),
        T(unload__connected__channels_closed_gpadls_dropped_reconnect_offers),
        T(unload__twice__answered_each_time),
        T(offer_sub__open_primary__same_guids_own_ring_and_vp),
        T(offer_sub__primary_closed__subs_closed_first_then_rescinded),
        T(offer_sub__guest_unloads__subs_forgotten_not_reoffered),
        T(offer_sub__lower_relid_than_primary_dup_open_teardown_unload__closed_first_forgotten),
        T(chan_fail__open_channel__closed_on_next_run_then_reopen),
        T(chan_fail__channel_closed_by_guest_first__nothing_to_do),
        T(chan_fail__during_refused_open__next_open_not_closed),
        T(partition_stop__open_channel__closed_unmapped_offer_kept),
        T(handle_message__guest_never_drains__insufficient_buffers),
        T(handle_message__queue_full__refused_without_state_change),
        T(request_offers__not_enough_room_for_all__insufficient_buffers),
        T(gpadl_put__deferred_torndown_guest_queue_full__not_lost),
        T(close__deferred_torndowns_guest_queue_nearly_full__not_lost),
        T(chan_rescind__guest_queue_full__relid_kept_until_released),
        T(gpadl_header__too_many_gpadls__refused),
        T(handle_message__synic_not_enabled__invalid_partition_state),
        T(reset__rescinded_channel_never_released__freed),
        T(initiate_contact__rescind_owed_to_old_connection__new_one_not_told),
        T(reset__messages_queued_for_old_connection__dropped),
        T(reset__gpadl_teardown_owed__torndown_not_sent_to_new_connection),
        cmocka_unit_test(msg_check__min_lengths__shorter_refused),
        cmocka_unit_test(msg_check__wrong_direction__refused),
        cmocka_unit_test(msg_check__unknown_type__refused),
        cmocka_unit_test(msg_check__version_gating__by_type),
        cmocka_unit_test(version_supported__exact_list_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
