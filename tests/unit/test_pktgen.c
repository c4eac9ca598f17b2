/*
 * Unit tests for vswitch-pktgen's core: the latency histogram, sequence
 * accounting, the received-frame parser on hostile frames (flat and in
 * hand-built mbuf chains, no EAL), field ranges, rate parsing.
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
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "pktgen.h"

/* The bucket holding v reports at most v + v/32. */
static void assert_near(uint64_t got, uint64_t want)
{
    assert_true(got >= want);
    assert_true(got <= want + want / 32 + 1);
}

static void pktgen_hist_percentile__uniform__within_bucket(void **state)
{
    (void)state;
    static struct pktgen_hist h;
    pktgen_hist_init(&h);
    for (uint64_t v = 1; v <= 100000; v++)
        pktgen_hist_record(&h, v);
    assert_int_equal(h.count, 100000);
    assert_int_equal(h.min, 1);
    assert_near(pktgen_hist_percentile(&h, 50), 50000);
    assert_near(pktgen_hist_percentile(&h, 90), 90000);
    assert_near(pktgen_hist_percentile(&h, 99), 99000);
    assert_near(pktgen_hist_percentile(&h, 99.9), 99900);
    assert_int_equal(pktgen_hist_percentile(&h, 100), 100000);
}

static void pktgen_hist_percentile__small_values__exact(void **state)
{
    (void)state;
    static struct pktgen_hist h;
    pktgen_hist_init(&h);
    for (uint64_t v = 0; v < 10; v++)
        pktgen_hist_record(&h, v);
    assert_int_equal(pktgen_hist_percentile(&h, 50), 4);
    assert_int_equal(pktgen_hist_percentile(&h, 10), 0);
    assert_int_equal(pktgen_hist_percentile(&h, 90), 8);
}

static void pktgen_hist_percentile__long_tail__tail_not_averaged(void **state)
{
    (void)state;
    /* 999 fast frames and one stall: the median is the fast one, max the
     * stall, p99.9 the stall's rank exactly. */
    static struct pktgen_hist h;
    pktgen_hist_init(&h);
    for (int i = 0; i < 999; i++)
        pktgen_hist_record(&h, 2000);
    pktgen_hist_record(&h, 5000000);
    assert_near(pktgen_hist_percentile(&h, 50), 2000);
    assert_near(pktgen_hist_percentile(&h, 99.9), 2000);
    assert_int_equal(pktgen_hist_percentile(&h, 99.95), 5000000);
    assert_int_equal(h.max, 5000000);
}

static void pktgen_hist_record__extremes__no_overflow(void **state)
{
    (void)state;
    static struct pktgen_hist h, h2;
    pktgen_hist_init(&h);
    pktgen_hist_init(&h2);
    assert_int_equal(pktgen_hist_percentile(&h, 50), 0);
    pktgen_hist_record(&h, UINT64_MAX);
    pktgen_hist_record(&h2, 64);
    pktgen_hist_merge(&h, &h2);
    assert_int_equal(h.count, 2);
    assert_int_equal(h.min, 64);
    assert_int_equal(pktgen_hist_percentile(&h, 50), 65);
    assert_int_equal(pktgen_hist_percentile(&h, 100), UINT64_MAX);
}

static void pktgen_seq_record__in_order__nothing_lost(void **state)
{
    (void)state;
    static struct pktgen_seq s;
    pktgen_seq_init(&s);
    for (uint64_t q = 0; q < 10000; q++)
        pktgen_seq_record(&s, q);
    assert_int_equal(s.received, 10000);
    assert_int_equal(s.missing, 0);
    assert_int_equal(s.reordered, 0);
    assert_int_equal(s.duplicates, 0);
}

static void pktgen_seq_record__gap_dup_reorder__counted(void **state)
{
    (void)state;
    static struct pktgen_seq s;
    pktgen_seq_init(&s);
    uint64_t order[] = {0, 1, 3, 4, 2, 4, 7, 1};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        pktgen_seq_record(&s, order[i]);
    /* 5 and 6 never came; 2 came late; 4 and 1 twice. */
    assert_int_equal(s.received, 6);
    assert_int_equal(s.missing, 2);
    assert_int_equal(s.reordered, 1);
    assert_int_equal(s.duplicates, 2);
    assert_int_equal(s.top, 8);
}

static void pktgen_seq_record__window_wrap__old_bits_not_duplicates(void **state)
{
    (void)state;
    static struct pktgen_seq s;
    pktgen_seq_init(&s);
    /* 5 seen, then jumps of less than a window to 6 + W: 5 + W, skipped,
     * shares 5's bit, which must not make it a duplicate when it comes late.
     * The numbers skipped are missing until they come. */
    pktgen_seq_record(&s, 5);
    pktgen_seq_record(&s, 4 + PKTGEN_SEQ_WINDOW);
    pktgen_seq_record(&s, 6 + PKTGEN_SEQ_WINDOW);
    assert_int_equal(s.missing, 5 + PKTGEN_SEQ_WINDOW - 2 + 1);
    pktgen_seq_record(&s, 5 + PKTGEN_SEQ_WINDOW);
    assert_int_equal(s.duplicates, 0);
    assert_int_equal(s.reordered, 1);
    assert_int_equal(s.missing, 5 + PKTGEN_SEQ_WINDOW - 2);
    pktgen_seq_record(&s, 5 + PKTGEN_SEQ_WINDOW);
    assert_int_equal(s.duplicates, 1);
    /* Older than the window: neither duplicate nor reorder can be told. */
    pktgen_seq_record(&s, 5);
    assert_int_equal(s.late, 1);
    /* A jump of more than a window clears everything: 100 W + 5, skipped,
     * has 5 + W's bit. */
    pktgen_seq_record(&s, 100 * PKTGEN_SEQ_WINDOW + 6);
    pktgen_seq_record(&s, 100 * PKTGEN_SEQ_WINDOW + 5);
    assert_int_equal(s.duplicates, 1);
    assert_int_equal(s.reordered, 2);
    /* Long in-order runs across many wraps keep counting right. */
    pktgen_seq_init(&s);
    for (uint64_t q = 0; q < 10 * PKTGEN_SEQ_WINDOW; q += 2)
        pktgen_seq_record(&s, q);
    for (uint64_t q = 10 * PKTGEN_SEQ_WINDOW - 1; q > 9 * PKTGEN_SEQ_WINDOW; q -= 2)
        pktgen_seq_record(&s, q);
    assert_int_equal(s.duplicates, 0);
    assert_int_equal(s.reordered, PKTGEN_SEQ_WINDOW / 2 - 1);
    assert_int_equal(s.missing, 10 * PKTGEN_SEQ_WINDOW / 2 - (PKTGEN_SEQ_WINDOW / 2 - 1) - 1);
}

static void pktgen_seq_record__forged_huge__counted_bad_top_kept(void **state)
{
    (void)state;
    static struct pktgen_seq s;
    pktgen_seq_init(&s);
    pktgen_seq_record(&s, 10);
    /* UINT64_MAX + 1 would wrap top to 0 and make everything after look
     * new (found by fuzz_pktgen_rx). */
    pktgen_seq_record(&s, UINT64_MAX);
    pktgen_seq_record(&s, PKTGEN_SEQ_MAX);
    assert_int_equal(s.bad, 2);
    assert_int_equal(s.top, 11);
    pktgen_seq_record(&s, 10);
    assert_int_equal(s.duplicates, 1);
    pktgen_seq_record(&s, PKTGEN_SEQ_MAX - 1);
    assert_int_equal(s.top, PKTGEN_SEQ_MAX);
    assert_true(s.received <= s.top);
}

static uint8_t frame[2048];

static size_t build(uint16_t len, uint64_t seq)
{
    struct pktgen_flow f;
    assert_int_equal(pktgen_range_parse_mac("02:00:00:00:00:01", &f.src_mac), 0);
    assert_int_equal(pktgen_range_parse_mac("02:00:00:00:00:02", &f.dst_mac), 0);
    assert_int_equal(pktgen_range_parse_ipv4("10.0.0.1", &f.src_ip), 0);
    assert_int_equal(pktgen_range_parse_ipv4("10.0.0.2", &f.dst_ip), 0);
    assert_int_equal(pktgen_range_parse_port("1024", &f.src_port), 0);
    assert_int_equal(pktgen_range_parse_port("9", &f.dst_port), 0);
    struct pktgen_stamp s = {.magic = PKTGEN_MAGIC, .stream = 3, .seq = seq, .tsc = 77};
    memset(frame, 0xee, sizeof(frame));
    pktgen_frame_write(frame, len, &f, &s);
    return len;
}

static struct rte_ipv4_hdr *ip_of(uint8_t *p)
{
    return (struct rte_ipv4_hdr *)(p + RTE_ETHER_HDR_LEN);
}

static void pktgen_frame_write__64__parses_back_checksum_right(void **state)
{
    (void)state;
    size_t len = build(64, 12345);
    struct pktgen_stamp s;
    assert_int_equal(pktgen_parse_buf(frame, len, &s), PKTGEN_PARSE_OK);
    assert_int_equal(s.seq, 12345);
    assert_int_equal(s.stream, 3);
    assert_int_equal(s.tsc, 77);
    struct rte_ipv4_hdr *ip = ip_of(frame);
    /* A header with its checksum in sums to 0xffff (0 after inversion). */
    assert_int_equal(rte_ipv4_cksum(ip), 0);
    assert_int_equal(rte_be_to_cpu_16(ip->total_length), 50);
    struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
    assert_int_equal(rte_be_to_cpu_16(udp->dgram_len), 30);
    assert_int_equal(udp->dgram_cksum, 0);
}

static void pktgen_parse_buf__hostile__each_reason(void **state)
{
    (void)state;
    struct pktgen_stamp s;
    size_t len = build(128, 1);
    for (size_t cut = 0; cut < PKTGEN_HDR_LEN + sizeof(s); cut++)
        assert_int_not_equal(pktgen_parse_buf(frame, cut, &s), PKTGEN_PARSE_OK);
    assert_int_equal(pktgen_parse_buf(frame, 13, &s), PKTGEN_PARSE_SHORT);
    /* The IP header says more than the frame holds. */
    assert_int_equal(pktgen_parse_buf(frame, 100, &s), PKTGEN_PARSE_SHORT);

    frame[12] = 0x86, frame[13] = 0xdd;
    assert_int_equal(pktgen_parse_buf(frame, len, &s), PKTGEN_PARSE_NOT_IPV4);
    build(128, 1);
    ip_of(frame)->version_ihl = 0x44;
    assert_int_equal(pktgen_parse_buf(frame, len, &s), PKTGEN_PARSE_BAD_IP);
    build(128, 1);
    ip_of(frame)->total_length = rte_cpu_to_be_16(10);
    assert_int_equal(pktgen_parse_buf(frame, len, &s), PKTGEN_PARSE_BAD_IP);
    build(128, 1);
    ip_of(frame)->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG);
    assert_int_equal(pktgen_parse_buf(frame, len, &s), PKTGEN_PARSE_BAD_IP);
    build(128, 1);
    ip_of(frame)->next_proto_id = IPPROTO_TCP;
    assert_int_equal(pktgen_parse_buf(frame, len, &s), PKTGEN_PARSE_NOT_UDP);
    build(128, 1);
    struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip_of(frame) + 1);
    udp->dgram_len = rte_cpu_to_be_16(8 + 19);
    assert_int_equal(pktgen_parse_buf(frame, len, &s), PKTGEN_PARSE_BAD_UDP);
    udp->dgram_len = rte_cpu_to_be_16(128 - 14 - 20 + 1);
    assert_int_equal(pktgen_parse_buf(frame, len, &s), PKTGEN_PARSE_BAD_UDP);
    build(128, 1);
    frame[PKTGEN_HDR_LEN] ^= 1;
    assert_int_equal(pktgen_parse_buf(frame, len, &s), PKTGEN_PARSE_MAGIC);
}

static void pktgen_parse_buf__vlan_tags__seen_through(void **state)
{
    (void)state;
    static uint8_t tagged[2048];
    struct pktgen_stamp s;
    size_t len = build(100, 42);
    /* One 802.1Q tag, then QinQ (two), then three: the third is not IPv4. */
    for (int tags = 1; tags <= 3; tags++) {
        memcpy(tagged, frame, 12);
        for (int t = 0; t < tags; t++) {
            uint8_t *tag = tagged + 12 + 4 * t;
            tag[0] = t == 0 && tags > 1 ? 0x88 : 0x81;
            tag[1] = t == 0 && tags > 1 ? 0xa8 : 0x00;
            tag[2] = 0x00, tag[3] = (uint8_t)(10 + t);
        }
        memcpy(tagged + 12 + 4 * tags, frame + 12, len - 12);
        enum pktgen_parse_result r = pktgen_parse_buf(tagged, len + 4 * (size_t)tags, &s);
        if (tags < 3) {
            assert_int_equal(r, PKTGEN_PARSE_OK);
            assert_int_equal(s.seq, 42);
        } else {
            assert_int_equal(r, PKTGEN_PARSE_NOT_IPV4);
        }
    }
}

/* An mbuf chain over `frame`, cut at the given offsets; no pool, no EAL. */
static struct rte_mbuf segs[8];

static struct rte_mbuf *chain(size_t len, const size_t *cuts, int n_cuts)
{
    memset(segs, 0, sizeof(segs));
    size_t start = 0;
    for (int i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : len;
        segs[i].buf_addr = frame + start;
        segs[i].buf_len = (uint16_t)(end - start);
        segs[i].data_off = 0;
        segs[i].data_len = (uint16_t)(end - start);
        segs[i].next = i < n_cuts ? &segs[i + 1] : NULL;
        start = end;
    }
    segs[0].nb_segs = (uint16_t)(n_cuts + 1);
    segs[0].pkt_len = (uint32_t)len;
    return &segs[0];
}

static void pktgen_parse__multi_segment__headers_across_cuts(void **state)
{
    (void)state;
    struct pktgen_stamp s;
    size_t len = build(200, 9);
    /* Cuts inside the Ethernet, IPv4 and UDP headers and the stamp. */
    const size_t cuts[] = {7, 20, 38, 50, 60};
    assert_int_equal(pktgen_parse(chain(len, cuts, 5), &s), PKTGEN_PARSE_OK);
    assert_int_equal(s.seq, 9);
    /* pkt_len shorter than the IP header says: short, nothing read past. */
    struct rte_mbuf *m = chain(len, cuts, 5);
    m->pkt_len = 60;
    assert_int_equal(pktgen_parse(m, &s), PKTGEN_PARSE_SHORT);
    /* A single segment of a frame whose UDP length is past the IP length. */
    struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip_of(frame) + 1);
    udp->dgram_len = rte_cpu_to_be_16(1000);
    assert_int_equal(pktgen_parse(chain(len, cuts, 0), &s), PKTGEN_PARSE_BAD_UDP);
}

static void pktgen_range_next__ranges__step_and_wrap(void **state)
{
    (void)state;
    struct pktgen_range r;
    assert_int_equal(pktgen_range_parse_ipv4("10.0.0.1-10.0.0.3", &r), 0);
    assert_int_equal(pktgen_range_next(&r), 0x0a000001);
    assert_int_equal(pktgen_range_next(&r), 0x0a000002);
    assert_int_equal(pktgen_range_next(&r), 0x0a000003);
    assert_int_equal(pktgen_range_next(&r), 0x0a000001);
    assert_int_equal(pktgen_range_parse_port("5000", &r), 0);
    assert_int_equal(pktgen_range_next(&r), 5000);
    assert_int_equal(pktgen_range_next(&r), 5000);
    assert_int_equal(pktgen_range_parse_port("65534-65535", &r), 0);
    assert_int_equal(pktgen_range_next(&r), 65534);
    assert_int_equal(pktgen_range_next(&r), 65535);
    assert_int_equal(pktgen_range_next(&r), 65534);
    assert_int_equal(pktgen_range_parse_mac("02:00:00:00:00:ff-02:00:00:00:01:00", &r), 0);
    assert_int_equal(pktgen_range_next(&r), 0x0200000000ffull);
    assert_int_equal(pktgen_range_next(&r), 0x020000000100ull);
    assert_int_equal(pktgen_range_parse_ipv4("255.255.255.255", &r), 0);
    assert_int_equal(pktgen_range_next(&r), 0xffffffffull);

    /* Frames carry the stepped values: two destinations alternate. */
    struct pktgen_flow f = {0};
    assert_int_equal(pktgen_range_parse_ipv4("10.0.0.1-10.0.0.2", &f.dst_ip), 0);
    struct pktgen_stamp s = {.magic = PKTGEN_MAGIC};
    uint32_t seen[3];
    for (int i = 0; i < 3; i++) {
        pktgen_frame_write(frame, 64, &f, &s);
        seen[i] = rte_be_to_cpu_32(ip_of(frame)->dst_addr);
    }
    assert_int_equal(seen[0], 0x0a000001);
    assert_int_equal(seen[1], 0x0a000002);
    assert_int_equal(seen[2], 0x0a000001);
}

static void pktgen_range_parse__bad__einval(void **state)
{
    (void)state;
    struct pktgen_range r;
    const char *bad_ip[] = {"", "10.0.0", "10.0.0.256", "10.0.0.2-10.0.0.1", "10.0.0.1-",
                            "-10.0.0.1", "10.0.0.1x", "a.b.c.d", " 1.2.3.4", "1.2.3.4-5.6.7.8-9"};
    for (size_t i = 0; i < sizeof(bad_ip) / sizeof(bad_ip[0]); i++)
        assert_int_equal(pktgen_range_parse_ipv4(bad_ip[i], &r), -EINVAL);
    const char *bad_port[] = {"", "65536", "-1", "10-9", "1x", "99999999999"};
    for (size_t i = 0; i < sizeof(bad_port) / sizeof(bad_port[0]); i++)
        assert_int_equal(pktgen_range_parse_port(bad_port[i], &r), -EINVAL);
    assert_int_equal(pktgen_range_parse_mac("02:00:00:00:00", &r), -EINVAL);
    assert_int_equal(pktgen_range_parse_mac("02:00:00:00:00:02-02:00:00:00:00:01", &r), -EINVAL);
}

static void pktgen_rate_parse__units__values(void **state)
{
    (void)state;
    struct pktgen_rate r, c, out;
    assert_int_equal(pktgen_rate_parse("1.5Mpps", &r), 0);
    assert_int_equal(r.kind, PKTGEN_RATE_PPS);
    assert_true(r.value == 1.5e6);
    assert_int_equal(pktgen_rate_parse("800kpps", &r), 0);
    assert_true(r.value == 800e3);
    assert_int_equal(pktgen_rate_parse("1000", &r), 0);
    assert_int_equal(r.kind, PKTGEN_RATE_PPS);
    assert_int_equal(pktgen_rate_parse("2Gbps", &r), 0);
    assert_int_equal(r.kind, PKTGEN_RATE_BPS);
    assert_true(r.value == 2e9);
    assert_int_equal(pktgen_rate_parse("50%", &r), 0);
    assert_int_equal(r.kind, PKTGEN_RATE_PCT);
    assert_int_equal(pktgen_rate_parse("10Gbps", &c), 0);
    assert_int_equal(pktgen_rate_resolve(&r, &c, &out), 0);
    assert_int_equal(out.kind, PKTGEN_RATE_BPS);
    assert_true(out.value == 5e9);
    assert_int_equal(pktgen_rate_resolve(&r, NULL, &out), -EINVAL);
    assert_int_equal(pktgen_rate_resolve(&r, &r, &out), -EINVAL);

    const char *bad[] = {"", "0", "-1Mpps", "1Xpps", "1Mfoo", "101%", "1k%", "nan", "inf",
                         "1e999", "Mpps", "1 Mpps"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(pktgen_rate_parse(bad[i], &r), -EINVAL);
}

static void pktgen_imix__pattern__7_4_1(void **state)
{
    (void)state;
    int n64 = 0, n570 = 0, n1518 = 0;
    for (unsigned i = 0; i < PKTGEN_IMIX_LEN; i++) {
        n64 += pktgen_imix[i] == 64;
        n570 += pktgen_imix[i] == 570;
        n1518 += pktgen_imix[i] == 1518;
    }
    assert_int_equal(n64, 7);
    assert_int_equal(n570, 4);
    assert_int_equal(n1518, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pktgen_hist_percentile__uniform__within_bucket),
        cmocka_unit_test(pktgen_hist_percentile__small_values__exact),
        cmocka_unit_test(pktgen_hist_percentile__long_tail__tail_not_averaged),
        cmocka_unit_test(pktgen_hist_record__extremes__no_overflow),
        cmocka_unit_test(pktgen_seq_record__in_order__nothing_lost),
        cmocka_unit_test(pktgen_seq_record__gap_dup_reorder__counted),
        cmocka_unit_test(pktgen_seq_record__window_wrap__old_bits_not_duplicates),
        cmocka_unit_test(pktgen_seq_record__forged_huge__counted_bad_top_kept),
        cmocka_unit_test(pktgen_frame_write__64__parses_back_checksum_right),
        cmocka_unit_test(pktgen_parse_buf__hostile__each_reason),
        cmocka_unit_test(pktgen_parse_buf__vlan_tags__seen_through),
        cmocka_unit_test(pktgen_parse__multi_segment__headers_across_cuts),
        cmocka_unit_test(pktgen_range_next__ranges__step_and_wrap),
        cmocka_unit_test(pktgen_range_parse__bad__einval),
        cmocka_unit_test(pktgen_rate_parse__units__values),
        cmocka_unit_test(pktgen_imix__pattern__7_4_1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
