/*
 * Unit tests for vswitch-pktgen's control codec (pktgen-ctl.h): every
 * message round-trips through a frame; every field out of its range, and
 * every byte that should be zero and is not, is refused with its reason.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

#include "pktgen-ctl.h"

static const uint8_t ctrl_mac[6] = {0x02, 0, 0, 0, 0x0c, 0x01};
static const uint8_t agent_mac[6] = {0x02, 0, 0, 0, 0x0a, 0x01};

#define PAY PKTGEN_HDR_LEN /* payload offset in an untagged frame */

static struct pktgen_ctl_msg gen_start(void)
{
    struct pktgen_ctl_msg m = {.type = PKTGEN_CTL_START, .nonce = 0x1122334455667788ull,
                               .trial = 7};
    m.u.start = (struct pktgen_ctl_start){
        .role = PKTGEN_CTL_ROLE_GEN, .frame_len = 1518, .stream = 3, .delay_ms = 200,
        .duration_ms = 10000, .rate_pps = 1234567, .count = 0,
        .dst_mac = {0x02, 0, 0, 0, 0x0b, 0x01}, .src_ip = 0x0a000001, .dst_ip = 0x0a000002,
        .src_port = 1024, .dst_port = 5001};
    return m;
}

static struct pktgen_ctl_msg report(void)
{
    struct pktgen_ctl_msg m = {.type = PKTGEN_CTL_REPORT, .nonce = 99, .trial = 0xffffffffu};
    m.u.report = (struct pktgen_ctl_report){
        .tx_frames = 1000, .tx_bytes = 64000, .tx_refused = 5, .rx_frames = 990,
        .rx_bytes = 63360, .lost = 10, .reordered = 2, .duplicates = 1, .lat_count = 990,
        .lat_ns = {1000, 2000, 3000, 4000, 90000}, .achieved_mpps_milli = 14880000000ull,
        .duration_us = 2000000, .ctl_bad = 3};
    return m;
}

static void round_trip(const struct pktgen_ctl_msg *m)
{
    uint8_t f[PKTGEN_CTL_FRAME_LEN];
    assert_int_equal(pktgen_ctl_write(f, agent_mac, ctrl_mac, m), PKTGEN_CTL_FRAME_LEN);
    struct pktgen_ctl_msg got;
    uint8_t src[6];
    assert_int_equal(pktgen_ctl_parse_buf(f, sizeof(f), &got, src), PKTGEN_CTL_OK);
    assert_memory_equal(src, ctrl_mac, 6);
    assert_int_equal(got.type, m->type);
    assert_int_equal(got.status, m->status);
    assert_true(got.nonce == m->nonce);
    assert_int_equal(got.trial, m->trial);
    if (m->type == PKTGEN_CTL_START)
        assert_memory_equal(&got.u.start, &m->u.start, sizeof(m->u.start));
    if (m->type == PKTGEN_CTL_REPORT)
        assert_memory_equal(&got.u.report, &m->u.report, sizeof(m->u.report));
    /* The stamp parser sees a UDP frame that is not one of its own. */
    struct pktgen_stamp st;
    assert_int_equal(pktgen_parse_buf(f, sizeof(f), &st), PKTGEN_PARSE_MAGIC);
}

static void pktgen_ctl_parse_buf__every_message__round_trips(void **state)
{
    (void)state;
    struct pktgen_ctl_msg m = gen_start();
    round_trip(&m);
    m.u.start.flags = PKTGEN_CTL_F_IMIX | PKTGEN_CTL_F_UNPACED;
    m.u.start.frame_len = 0;
    m.u.start.rate_pps = 0;
    m.u.start.duration_ms = 0;
    m.u.start.count = 5000;
    round_trip(&m);
    m = (struct pktgen_ctl_msg){.type = PKTGEN_CTL_START, .nonce = 1, .trial = 2};
    m.u.start = (struct pktgen_ctl_start){.role = PKTGEN_CTL_ROLE_SINK, .stream = 15,
                                          .duration_ms = PKTGEN_CTL_MAX_DURATION_MS};
    round_trip(&m);
    m.u.start.role = PKTGEN_CTL_ROLE_REFLECT;
    round_trip(&m);
    m = report();
    round_trip(&m);
    m = (struct pktgen_ctl_msg){.type = PKTGEN_CTL_ACK, .status = EINVAL, .nonce = 5, .trial = 6};
    round_trip(&m);
    m = (struct pktgen_ctl_msg){.type = PKTGEN_CTL_STOP, .nonce = 5, .trial = 6};
    round_trip(&m);
}

/* Writes the good START, applies `mut` to its payload, expects `want`. */
struct mutation {
    const char *what;
    size_t off;     /* in the payload */
    uint8_t len;    /* 1, 2, 4 or 8 */
    uint64_t value; /* little endian */
    enum pktgen_ctl_result want;
};

static void put_le(uint8_t *p, uint8_t len, uint64_t v)
{
    for (uint8_t i = 0; i < len; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

static void expect_refused(const struct pktgen_ctl_msg *base, const struct mutation *mu, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t f[PKTGEN_CTL_FRAME_LEN];
        pktgen_ctl_write(f, agent_mac, ctrl_mac, base);
        put_le(f + PAY + mu[i].off, mu[i].len, mu[i].value);
        struct pktgen_ctl_msg got;
        enum pktgen_ctl_result rc = pktgen_ctl_parse_buf(f, sizeof(f), &got, NULL);
        if (rc != mu[i].want)
            fail_msg("%s: got %d, want %d", mu[i].what, rc, mu[i].want);
    }
}

static void pktgen_ctl_parse_buf__bad_start_fields__each_refused(void **state)
{
    (void)state;
    const struct mutation mu[] = {
        {"magic", 0, 4, 0x74437649, PKTGEN_CTL_BAD_MAGIC},
        {"version 0", 4, 1, 0, PKTGEN_CTL_BAD_VERSION},
        {"version 2", 4, 1, 2, PKTGEN_CTL_BAD_VERSION},
        {"type 0", 5, 1, 0, PKTGEN_CTL_BAD_TYPE},
        {"type 5", 5, 1, 5, PKTGEN_CTL_BAD_TYPE},
        {"status on a START", 6, 2, 1, PKTGEN_CTL_BAD_FIELD},
        {"role 0", 20, 1, 0, PKTGEN_CTL_BAD_FIELD},
        {"role 4", 20, 1, 4, PKTGEN_CTL_BAD_FIELD},
        {"unknown flag", 21, 1, 4, PKTGEN_CTL_BAD_FIELD},
        {"imix with a size", 21, 1, PKTGEN_CTL_F_IMIX, PKTGEN_CTL_BAD_FIELD},
        {"unpaced with a rate", 21, 1, PKTGEN_CTL_F_UNPACED, PKTGEN_CTL_BAD_FIELD},
        {"size 63", 22, 2, 63, PKTGEN_CTL_BAD_FIELD},
        {"size 9001", 22, 2, 9001, PKTGEN_CTL_BAD_FIELD},
        {"size 0", 22, 2, 0, PKTGEN_CTL_BAD_FIELD},
        {"stream 16", 24, 2, PKTGEN_MAX_STREAMS, PKTGEN_CTL_BAD_FIELD},
        {"delay", 26, 2, PKTGEN_CTL_MAX_DELAY_MS + 1, PKTGEN_CTL_BAD_FIELD},
        {"duration", 28, 4, PKTGEN_CTL_MAX_DURATION_MS + 1, PKTGEN_CTL_BAD_FIELD},
        {"rate 0 paced", 32, 8, 0, PKTGEN_CTL_BAD_FIELD},
        {"rate 1e9 + 1", 32, 8, 1000000001, PKTGEN_CTL_BAD_FIELD},
        {"rate 2^64 - 1", 32, 8, UINT64_MAX, PKTGEN_CTL_BAD_FIELD},
        {"count", 40, 8, PKTGEN_CTL_MAX_COUNT + 1, PKTGEN_CTL_BAD_FIELD},
        {"multicast destination", 48, 1, 0x03, PKTGEN_CTL_BAD_FIELD},
        {"zero destination", 48, 6, 0, PKTGEN_CTL_BAD_FIELD},
        {"byte after the body", 66, 1, 1, PKTGEN_CTL_BAD_FIELD},
        {"last byte", PKTGEN_CTL_PAYLOAD - 1, 1, 0x80, PKTGEN_CTL_BAD_FIELD},
    };
    struct pktgen_ctl_msg m = gen_start();
    expect_refused(&m, mu, sizeof(mu) / sizeof(mu[0]));

    /* Neither a duration nor a count. */
    const struct mutation no_end[] = {{"no end", 28, 4, 0, PKTGEN_CTL_BAD_FIELD}};
    expect_refused(&m, no_end, 1);

    /* A sink or reflector carries none of a generator's fields. */
    struct pktgen_ctl_msg s = {.type = PKTGEN_CTL_START};
    s.u.start = (struct pktgen_ctl_start){.role = PKTGEN_CTL_ROLE_SINK, .duration_ms = 100};
    const struct mutation sink[] = {
        {"sink: no duration", 28, 4, 0, PKTGEN_CTL_BAD_FIELD},
        {"sink: flags", 21, 1, 1, PKTGEN_CTL_BAD_FIELD},
        {"sink: size", 22, 2, 64, PKTGEN_CTL_BAD_FIELD},
        {"sink: delay", 26, 2, 1, PKTGEN_CTL_BAD_FIELD},
        {"sink: rate", 32, 8, 1000, PKTGEN_CTL_BAD_FIELD},
        {"sink: count", 40, 8, 1, PKTGEN_CTL_BAD_FIELD},
        {"sink: mac", 53, 1, 1, PKTGEN_CTL_BAD_FIELD},
        {"sink: src port", 54, 2, 1, PKTGEN_CTL_BAD_FIELD},
        {"sink: src ip", 56, 4, 1, PKTGEN_CTL_BAD_FIELD},
        {"sink: dst ip", 60, 4, 1, PKTGEN_CTL_BAD_FIELD},
        {"sink: dst port", 64, 2, 1, PKTGEN_CTL_BAD_FIELD},
        {"sink: stream", 24, 2, 16, PKTGEN_CTL_BAD_FIELD},
    };
    expect_refused(&s, sink, sizeof(sink) / sizeof(sink[0]));
    s.u.start.role = PKTGEN_CTL_ROLE_REFLECT;
    expect_refused(&s, sink, sizeof(sink) / sizeof(sink[0]));
}

static void pktgen_ctl_parse_buf__bad_report_ack_stop__each_refused(void **state)
{
    (void)state;
    const struct mutation mu[] = {
        {"padding", 20, 4, 1, PKTGEN_CTL_BAD_FIELD},
        {"status on a REPORT", 6, 2, 1, PKTGEN_CTL_BAD_FIELD},
        {"tx bytes > 64 KiB per frame", 24 + 8, 8, 1000ull * 65536, PKTGEN_CTL_BAD_FIELD},
        {"rx bytes > 64 KiB per frame", 24 + 32, 8, 990ull * 65536, PKTGEN_CTL_BAD_FIELD},
        {"tx frames 2^63", 24, 8, 1ull << 63, PKTGEN_CTL_BAD_FIELD},
        {"lat samples > rx", 24 + 64, 8, 991, PKTGEN_CTL_BAD_FIELD},
        {"p90 < p50", 24 + 80, 8, 999, PKTGEN_CTL_BAD_FIELD},
        {"max < p99.9", 24 + 104, 8, 3999, PKTGEN_CTL_BAD_FIELD},
        {"rate", 24 + 112, 8, UINT64_MAX, PKTGEN_CTL_BAD_FIELD},
        {"lost 2^62", 24 + 40, 8, 1ull << 62, PKTGEN_CTL_BAD_FIELD},
        {"byte after the body", 160, 1, 1, PKTGEN_CTL_BAD_FIELD},
    };
    struct pktgen_ctl_msg m = report();
    expect_refused(&m, mu, sizeof(mu) / sizeof(mu[0]));
    /* Percentiles without samples. */
    m.u.report.lat_count = 0;
    memset(m.u.report.lat_ns, 0, sizeof(m.u.report.lat_ns));
    const struct mutation nolat[] = {{"max, no samples", 24 + 104, 8, 5, PKTGEN_CTL_BAD_FIELD}};
    expect_refused(&m, nolat, 1);

    struct pktgen_ctl_msg a = {.type = PKTGEN_CTL_ACK};
    const struct mutation ack[] = {
        {"ack: errno 4096", 6, 2, 4096, PKTGEN_CTL_BAD_FIELD},
        {"ack: a body", 20, 1, 1, PKTGEN_CTL_BAD_FIELD},
    };
    expect_refused(&a, ack, 2);
    struct pktgen_ctl_msg st = {.type = PKTGEN_CTL_STOP};
    const struct mutation stop[] = {
        {"stop: status", 6, 2, 1, PKTGEN_CTL_BAD_FIELD},
        {"stop: a body", 30, 1, 1, PKTGEN_CTL_BAD_FIELD},
    };
    expect_refused(&st, stop, 2);
}

static void pktgen_ctl_parse_buf__framing__not_ctl_or_short(void **state)
{
    (void)state;
    struct pktgen_ctl_msg m = gen_start(), got;
    uint8_t f[PKTGEN_CTL_FRAME_LEN + 8];
    pktgen_ctl_write(f, agent_mac, ctrl_mac, &m);
    /* Cut anywhere: never accepted, never read past the end. */
    for (size_t len = 0; len < PKTGEN_CTL_FRAME_LEN; len++) {
        uint8_t *cut = test_malloc(len ? len : 1);
        memcpy(cut, f, len);
        assert_int_not_equal(pktgen_ctl_parse_buf(cut, len, &got, NULL), PKTGEN_CTL_OK);
        test_free(cut);
    }
    /* The UDP length short of the payload. */
    f[PAY - 4] = 0;
    f[PAY - 3] = 8 + PKTGEN_CTL_PAYLOAD - 1;
    assert_int_equal(pktgen_ctl_parse_buf(f, PKTGEN_CTL_FRAME_LEN, &got, NULL), PKTGEN_CTL_SHORT);
    /* Another UDP port, another protocol, a fragment: not control. */
    pktgen_ctl_write(f, agent_mac, ctrl_mac, &m);
    f[PAY - 8] = f[PAY - 6] = 0x13;
    assert_int_equal(pktgen_ctl_parse_buf(f, PKTGEN_CTL_FRAME_LEN, &got, NULL), PKTGEN_CTL_NOT_CTL);
    pktgen_ctl_write(f, agent_mac, ctrl_mac, &m);
    f[14 + 9] = 6;
    assert_int_equal(pktgen_ctl_parse_buf(f, PKTGEN_CTL_FRAME_LEN, &got, NULL), PKTGEN_CTL_NOT_CTL);
    pktgen_ctl_write(f, agent_mac, ctrl_mac, &m);
    f[14 + 6] = 0x20; /* MF */
    assert_int_equal(pktgen_ctl_parse_buf(f, PKTGEN_CTL_FRAME_LEN, &got, NULL), PKTGEN_CTL_NOT_CTL);
    /* An IP total length past the frame. */
    pktgen_ctl_write(f, agent_mac, ctrl_mac, &m);
    f[14 + 3] = (uint8_t)(f[14 + 3] + 1);
    assert_int_equal(pktgen_ctl_parse_buf(f, PKTGEN_CTL_FRAME_LEN, &got, NULL), PKTGEN_CTL_NOT_CTL);
}

static void pktgen_ctl_parse__vlan_tag_and_segments__accepted(void **state)
{
    (void)state;
    struct pktgen_ctl_msg m = report(), got;
    uint8_t f[PKTGEN_CTL_FRAME_LEN], tagged[PKTGEN_CTL_FRAME_LEN + 4];
    pktgen_ctl_write(f, agent_mac, ctrl_mac, &m);
    memcpy(tagged, f, 12);
    tagged[12] = 0x81;
    tagged[13] = 0x00;
    tagged[14] = 0;
    tagged[15] = 7;
    memcpy(tagged + 16, f + 12, sizeof(f) - 12);
    assert_int_equal(pktgen_ctl_parse_buf(tagged, sizeof(tagged), &got, NULL), PKTGEN_CTL_OK);
    assert_true(got.u.report.rx_frames == 990);

    /* Three segments cut inside the IP header and inside the payload. */
    static const size_t cuts[] = {20, 100, sizeof(f) - 120};
    struct rte_mbuf seg[3];
    memset(seg, 0, sizeof(seg));
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        seg[i].buf_addr = f + off;
        seg[i].buf_len = (uint16_t)cuts[i];
        seg[i].data_len = (uint16_t)cuts[i];
        seg[i].next = i < 2 ? &seg[i + 1] : NULL;
        off += cuts[i];
    }
    seg[0].nb_segs = 3;
    seg[0].pkt_len = sizeof(f);
    uint8_t src[6];
    assert_int_equal(pktgen_ctl_parse(&seg[0], &got, src), PKTGEN_CTL_OK);
    assert_memory_equal(&got.u.report, &m.u.report, sizeof(m.u.report));
    assert_memory_equal(src, ctrl_mac, 6);
    assert_true(pktgen_ctl_is_ctl(&seg[0]));
    /* A stamped data frame is not control. */
    uint8_t d[64];
    struct pktgen_flow flow;
    pktgen_range_parse_mac("02:00:00:00:00:01", &flow.src_mac);
    pktgen_range_parse_mac("02:00:00:00:00:02", &flow.dst_mac);
    pktgen_range_parse_ipv4("10.0.0.1", &flow.src_ip);
    pktgen_range_parse_ipv4("10.0.0.2", &flow.dst_ip);
    pktgen_range_parse_port("1024", &flow.src_port);
    pktgen_range_parse_port("5001", &flow.dst_port);
    struct pktgen_stamp st = {.magic = PKTGEN_MAGIC};
    pktgen_frame_write(d, sizeof(d), &flow, &st);
    struct rte_mbuf dm;
    memset(&dm, 0, sizeof(dm));
    dm.buf_addr = d;
    dm.buf_len = dm.data_len = sizeof(d);
    dm.pkt_len = sizeof(d);
    dm.nb_segs = 1;
    assert_false(pktgen_ctl_is_ctl(&dm));
    assert_int_equal(pktgen_ctl_parse(&dm, &got, NULL), PKTGEN_CTL_NOT_CTL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pktgen_ctl_parse_buf__every_message__round_trips),
        cmocka_unit_test(pktgen_ctl_parse_buf__bad_start_fields__each_refused),
        cmocka_unit_test(pktgen_ctl_parse_buf__bad_report_ack_stop__each_refused),
        cmocka_unit_test(pktgen_ctl_parse_buf__framing__not_ctl_or_short),
        cmocka_unit_test(pktgen_ctl_parse__vlan_tag_and_segments__accepted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
