/*
 * Unit tests for the uplink port's queues (vswitch/src/port-uplink*.c):
 * where the peer picks the queue it sends on, every RX queue is configured
 * and polled, under one burst per round.
 *
 * The uplink is a net_ring device this test builds from its own rings
 * (rte_eth_from_rings: 2 RX rings, 1 TX ring), so that frames can be put on
 * RX queue 1 exactly as a peer sending from its second thread would, and
 * what the port sends read back from its TX ring. The port is not attached
 * to a switch: the test calls its rx_burst/tx_burst as its worker would.
 * The control cases use net_null, a PMD whose peer picks nothing, and a
 * memif server without a peer (its queue count is the devargs' queues=N).
 *
 * Large TCP segments (port-uplink-tso.h): which PMDs take them whole, within
 * which limits, and how a frame is made ready for a PMD that cuts it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ip.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include "port-uplink-tso.h"
#include "vsw-frame.h"
#include "vsw-port-provider.h"
#include "vsw-uplink.h"
#include "vsw.h"

#define BURST 32u

static struct rte_mempool *g_pool;
static unsigned g_seq;

struct fixture {
    char name[RTE_DEV_NAME_MAX_LEN];
    struct rte_ring *rx[2];
    struct rte_ring *tx;
    struct vsw_port *port;
};

static struct rte_mbuf *frame(uint8_t tag)
{
    struct rte_mbuf *m = rte_pktmbuf_alloc(g_pool);
    assert_non_null(m);
    uint8_t f[60] = {0};
    memset(f, 0xff, 6); /* broadcast */
    f[6] = 0x02;        /* a local unicast source */
    f[11] = tag;
    f[12] = 0x88, f[13] = 0xb5; /* local experimental EtherType */
    f[14] = tag;
    assert_non_null(rte_pktmbuf_append(m, sizeof(f)));
    memcpy(rte_pktmbuf_mtod(m, void *), f, sizeof(f));
    return m;
}

static void fill(struct rte_ring *r, unsigned n, uint8_t tag)
{
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(rte_ring_enqueue(r, frame(tag)), 0);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    unsigned id = g_seq++;
    char dev[16];
    snprintf(dev, sizeof(dev), "tuq%u", id);
    snprintf(f->name, sizeof(f->name), "net_ring_%s", dev); /* the name it gets */
    for (unsigned i = 0; i < 2; i++) {
        char rn[RTE_RING_NAMESIZE];
        snprintf(rn, sizeof(rn), "tuq%u_rx%u", id, i);
        f->rx[i] = rte_ring_create(rn, 256, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
    }
    char rn[RTE_RING_NAMESIZE];
    snprintf(rn, sizeof(rn), "tuq%u_tx", id);
    f->tx = rte_ring_create(rn, 256, (int)rte_socket_id(), RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (!f->rx[0] || !f->rx[1] || !f->tx ||
        rte_eth_from_rings(dev, f->rx, 2, &f->tx, 1, rte_socket_id()) < 0) {
        print_error("cannot build %s\n", f->name);
        return -1;
    }
    struct vsw_uplink_params up = {
        .devargs = f->name, .port_name = "uplink", .mtu = 1500, .pool = g_pool};
    int rc = vsw_uplink_port_create(&up, &f->port);
    if (rc != 0) {
        print_error("vsw_uplink_port_create(%s): %s\n", f->name, strerror(-rc));
        return -1;
    }
    *state = f;
    return 0;
}

static void ring_free(struct rte_ring *r)
{
    void *m = NULL;
    while (rte_ring_dequeue(r, &m) == 0)
        rte_pktmbuf_free(m);
    rte_ring_free(r);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vsw_port_destroy(f->port); /* removes the net_ring device; the rings are ours */
    ring_free(f->rx[0]);
    ring_free(f->rx[1]);
    ring_free(f->tx);
    free(f);
    return 0;
}

static uint16_t rx(struct vsw_port *p, struct rte_mbuf **pkts, uint16_t n)
{
    return p->cls->rx_burst(p, pkts, n);
}

static void uplink_create__peer_picks_queues__all_rx_queues_configured(void **state)
{
    struct fixture *f = *state;
    struct vsw_uplink_info in;
    vsw_uplink_port_get_info(f->port, &in);
    assert_string_equal(in.driver, "net_ring");
    assert_int_equal(in.rx_queues, 2); /* what the device has (fewer than CPUs + 1) */
    assert_int_equal(in.tx_queues, 1);
    assert_false(in.rx_interrupts); /* several queues: polled */
}

static void uplink_rx_burst__frames_on_queue_1__received(void **state)
{
    struct fixture *f = *state;
    fill(f->rx[1], 5, 0x11);
    struct rte_mbuf *pkts[BURST];
    unsigned got = 0;
    /* At most one round per queue before every frame is in. */
    for (unsigned round = 0; round < 2; round++) {
        uint16_t n = rx(f->port, pkts, BURST);
        for (uint16_t i = 0; i < n; i++) {
            assert_int_equal(rte_pktmbuf_mtod(pkts[i], uint8_t *)[14], 0x11);
            rte_pktmbuf_free(pkts[i]);
        }
        got += n;
    }
    assert_int_equal(got, 5);
    assert_int_equal(rte_ring_count(f->rx[1]), 0);
}

static void uplink_rx_burst__both_queues_busy__one_burst_per_round_shared(void **state)
{
    struct fixture *f = *state;
    fill(f->rx[0], 3 * BURST, 0x20);
    fill(f->rx[1], 3 * BURST, 0x21);
    struct rte_mbuf *pkts[BURST];
    unsigned from[2] = {0, 0};
    for (unsigned round = 0; round < 4; round++) {
        uint16_t n = rx(f->port, pkts, BURST);
        /* The port's budget, not the budget per queue. */
        assert_int_equal(n, BURST);
        for (uint16_t i = 0; i < n; i++) {
            from[rte_pktmbuf_mtod(pkts[i], uint8_t *)[14] & 1]++;
            rte_pktmbuf_free(pkts[i]);
        }
    }
    /* Neither queue starves the other: over four rounds each had its share. */
    assert_int_equal(from[0], 2 * BURST);
    assert_int_equal(from[1], 2 * BURST);
    /* A small ask is still a bound. */
    assert_int_equal(rx(f->port, pkts, 3), 3);
    rte_pktmbuf_free_bulk(pkts, 3);
}

static void uplink_rx_burst__one_queue_empty__other_gets_whole_burst(void **state)
{
    struct fixture *f = *state;
    fill(f->rx[1], 2 * BURST, 0x31);
    struct rte_mbuf *pkts[BURST];
    for (unsigned round = 0; round < 2; round++) {
        uint16_t n = rx(f->port, pkts, BURST);
        assert_int_equal(n, BURST); /* whichever queue is polled first */
        rte_pktmbuf_free_bulk(pkts, n);
    }
    assert_int_equal(rte_ring_count(f->rx[1]), 0);
}

static void uplink_tx_burst__any_frame__sent_on_queue_0(void **state)
{
    struct fixture *f = *state;
    struct rte_mbuf *pkts[4];
    for (unsigned i = 0; i < 4; i++)
        pkts[i] = frame(0x40);
    assert_int_equal(f->port->cls->tx_burst(f->port, pkts, 4), 4);
    assert_int_equal(rte_ring_count(f->tx), 4);
}

static void uplink_create__peer_picks_nothing__one_queue_pair(void **state)
{
    (void)state;
    struct vsw_uplink_params up = {
        .devargs = "net_null_tuq", .port_name = "null", .mtu = 1500, .pool = g_pool};
    struct vsw_port *p = NULL;
    assert_int_equal(vsw_uplink_port_create(&up, &p), 0);
    struct vsw_uplink_info in;
    vsw_uplink_port_get_info(p, &in);
    assert_string_equal(in.driver, "net_null");
    assert_int_equal(in.rx_queues, 1);
    assert_int_equal(in.tx_queues, 1);
    vsw_port_destroy(p);
}

/* A fresh device name and socket each time: DPDK 22.11's memif does not
 * take a removed device's name again. */
static struct vsw_port *memif(const char *args, int *rc)
{
    static unsigned n;
    char devargs[256];
    n++;
    snprintf(devargs, sizeof(devargs), "net_memif_tuq%d_%u,role=server,socket=/tmp/tuq%d-%u.sock%s",
             (int)getpid(), n, (int)getpid(), n, args);
    struct vsw_uplink_params up = {
        .devargs = devargs, .port_name = "memif", .mtu = 1500, .pool = g_pool};
    struct vsw_port *p = NULL;
    *rc = vsw_uplink_port_create(&up, &p);
    return p;
}

static void uplink_create__memif_queues__that_many_queue_pairs(void **state)
{
    (void)state;
    static const struct {
        const char *args;
        int rc;
        uint16_t queues;
    } cases[] = {
        {"", 0, 1},          /* not given: one pair */
        {",queues=2", 0, 2}, /* OVS-DPDK with one PMD thread */
        {",queues=16", 0, 16},
        {",queues=0", -EINVAL, 0},
        {",queues=17", -EINVAL, 0},
        {",queues=2x", -EINVAL, 0},
        {",queues=", -EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc;
        struct vsw_port *p = memif(cases[i].args, &rc);
        if (rc != cases[i].rc)
            fail_msg("'%s': %d, expected %d", cases[i].args, rc, cases[i].rc);
        if (rc != 0)
            continue;
        struct vsw_uplink_info in;
        vsw_uplink_port_get_info(p, &in);
        assert_string_equal(in.driver, "net_memif");
        assert_int_equal(in.rx_queues, cases[i].queues);
        assert_int_equal(in.tx_queues, cases[i].queues);
        vsw_port_destroy(p);
    }
}


/* ---- Large TCP segments ------------------------------------------------- */

#define TSO_HDR4 (14u + 20u + 32u) /* Ethernet, IPv4, TCP with timestamps */
#define TSO_HDR6 (14u + 40u + 32u)

/*
 * A large TCP segment of payload bytes at mss, IPv4 or IPv6, asked for with
 * vsw_frame_tso_request(): its headers in a first mbuf of first bytes
 * (first >= the headers), the rest in pool mbufs of at most 1500 bytes.
 * Payload byte i is (uint8_t)i.
 */
static struct rte_mbuf *tso_frame(bool v6, uint32_t payload, uint16_t mss, uint32_t first)
{
    static uint8_t f[70000];
    const uint32_t l3 = v6 ? 40 : 20, hdr = 14 + l3 + 32, len = hdr + payload;
    memset(f, 0, hdr);
    memset(f, 0x02, 12);
    f[12] = v6 ? 0x86 : 0x08, f[13] = v6 ? 0xdd : 0x00;
    uint8_t *ip = f + 14, *t = f + 14 + l3;
    if (v6) {
        ip[0] = 0x60;
        ip[4] = (uint8_t)((len - 14 - 40) >> 8), ip[5] = (uint8_t)(len - 14 - 40);
        ip[6] = IPPROTO_TCP, ip[7] = 64;
        ip[23] = 1, ip[39] = 2;
    } else {
        ip[0] = 0x45;
        ip[2] = (uint8_t)((len - 14) >> 8), ip[3] = (uint8_t)(len - 14);
        ip[4] = 0x12, ip[5] = 0x34;
        ip[8] = 64, ip[9] = IPPROTO_TCP;
        ip[12] = 10, ip[15] = 1, ip[16] = 10, ip[19] = 2;
    }
    t[0] = 0x30, t[1] = 0x39, t[2] = 0x14, t[3] = 0x51;
    t[7] = 1;
    t[12] = 8 << 4; /* 32-byte header */
    t[13] = RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG;
    t[14] = 0xff;
    for (uint32_t i = 0; i < payload; i++)
        f[hdr + i] = (uint8_t)i;
    struct rte_mbuf *m = NULL;
    for (uint32_t off = 0; off < len;) {
        uint32_t k = off == 0 ? first : RTE_MIN(1500u, len - off);
        struct rte_mbuf *s = rte_pktmbuf_alloc(g_pool);
        assert_non_null(s);
        assert_non_null(rte_pktmbuf_append(s, (uint16_t)k));
        memcpy(rte_pktmbuf_mtod(s, void *), f + off, k);
        if (!m)
            m = s;
        else
            assert_int_equal(rte_pktmbuf_chain(m, s), 0);
        off += k;
    }
    assert_int_equal(vsw_frame_tso_request(m, 14 + l3, mss, v6 ? 6 : 4, 1500), 0);
    return m;
}

static void uplink_tso_caps__by_pmd__tap_ipv4_only_virtio_both_others_none(void **state)
{
    (void)state;
    const uint64_t all = RTE_ETH_TX_OFFLOAD_TCP_TSO | RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
                         RTE_ETH_TX_OFFLOAD_UDP_CKSUM | RTE_ETH_TX_OFFLOAD_IPV4_CKSUM |
                         RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    struct vsw_uplink_tso_limits lim;
    /* net_tap as 22.11 reports it: rte_gso inside, TCP/IPv4 only. */
    assert_int_equal(vsw_uplink_tso_caps("net_tap", all, 1500, &lim), VSW_TX_TSO4);
    assert_int_equal(lim.max_frame, 1500);
    assert_int_equal(lim.max_segs, 64);
    assert_int_equal(lim.max_hdr, 128);
    assert_int_equal(vsw_uplink_tso_caps("net_virtio_user", all, 1500, &lim), VSW_TX_TSO);
    assert_int_equal(lim.max_frame, 0);
    assert_int_equal(lim.max_segs, 0);
    /* Without TSO, or TSO without TCP checksums or chains: nothing whole. */
    assert_int_equal(vsw_uplink_tso_caps("net_af_packet", RTE_ETH_TX_OFFLOAD_MULTI_SEGS, 1500, &lim),
                     0);
    assert_int_equal(vsw_uplink_tso_caps("net_tap", all & ~RTE_ETH_TX_OFFLOAD_TCP_TSO, 1500, &lim),
                     0);
    assert_int_equal(
        vsw_uplink_tso_caps("net_virtio_user", all & ~RTE_ETH_TX_OFFLOAD_TCP_CKSUM, 1500, &lim), 0);
    assert_int_equal(
        vsw_uplink_tso_caps("net_virtio_user", all & ~RTE_ETH_TX_OFFLOAD_MULTI_SEGS, 1500, &lim), 0);
}

static void uplink_tso_within__tap_limits__mss_segments_headers_and_tag_judged(void **state)
{
    (void)state;
    struct vsw_uplink_tso_limits tap;
    vsw_uplink_tso_caps("net_tap", RTE_ETH_TX_OFFLOAD_TCP_TSO | RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
                                       RTE_ETH_TX_OFFLOAD_MULTI_SEGS,
                        1500, &tap);
    const struct vsw_uplink_tso_limits none = {0};
    /* The full MSS of MTU 1500: a 1514-byte segment frame, beyond net_tap's
     * MTU check; 1434 is the largest MSS it takes, 1430 with a tag. */
    struct rte_mbuf *full = tso_frame(false, 20000, 1448, TSO_HDR4);
    struct rte_mbuf *fits = tso_frame(false, 20000, 1434, TSO_HDR4);
    assert_false(vsw_uplink_tso_within(&tap, full, 0));
    assert_true(vsw_uplink_tso_within(&none, full, 0));
    assert_true(vsw_uplink_tso_within(&tap, fits, 0));
    assert_false(vsw_uplink_tso_within(&tap, fits, 100));
    /* 65 segments: more than net_tap's GSO output array. */
    struct rte_mbuf *many = tso_frame(false, 64u * 500u + 1u, 500, TSO_HDR4);
    assert_int_equal(vsw_uplink_tso_segs(many), 65);
    assert_false(vsw_uplink_tso_within(&tap, many, 0));
    assert_true(vsw_uplink_tso_within(&none, many, 0));
    struct rte_mbuf *n64 = tso_frame(false, 64u * 500u, 500, TSO_HDR4);
    assert_true(vsw_uplink_tso_within(&tap, n64, 0));
    /* Headers beyond its 128-byte header mbufs. */
    n64->l3_len = 60;
    n64->l4_len = 60;
    assert_false(vsw_uplink_tso_within(&tap, n64, 0));
    /* A chain split at an odd distance into a segment's payload: net_tap
     * would sum it wrong. An even split is fine. */
    struct rte_mbuf *odd = tso_frame(false, 20000, 1400, TSO_HDR4 + 333);
    struct rte_mbuf *even = tso_frame(false, 20000, 1400, TSO_HDR4 + 334);
    assert_false(vsw_uplink_tso_within(&tap, odd, 0));
    assert_true(vsw_uplink_tso_within(&none, odd, 0));
    assert_true(vsw_uplink_tso_within(&tap, even, 0));
    /* The same rule for a frame's checksum alone: one segment from L4 on. */
    assert_false(vsw_uplink_pieces_even(odd, 14 + 20, 0));
    assert_true(vsw_uplink_pieces_even(even, 14 + 20, 0));
    rte_pktmbuf_free(odd);
    rte_pktmbuf_free(even);
    rte_pktmbuf_free(full);
    rte_pktmbuf_free(fits);
    rte_pktmbuf_free(many);
    rte_pktmbuf_free(n64);
}

/* m's bytes from off on are payload bytes from pay_off on. */
static void check_payload(const struct rte_mbuf *m, uint32_t off, uint32_t pay_off, uint32_t n)
{
    static uint8_t buf[70000];
    const uint8_t *p = rte_pktmbuf_read(m, off, n, buf);
    assert_non_null(p);
    for (uint32_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)(pay_off + i))
            fail_msg("payload byte %u: %u", i, p[i]);
}

static void uplink_tso_prepare__shared_ipv4_frame__private_head_rest_referenced(void **state)
{
    (void)state;
    const uint32_t payload = 20000;
    struct rte_mbuf *m = tso_frame(false, payload, 1400, TSO_HDR4 + 100);
    rte_pktmbuf_refcnt_update(m, 1); /* another port holds it too */
    const uint64_t flags = m->ol_flags;
    uint8_t before[TSO_HDR4];
    memcpy(before, rte_pktmbuf_mtod(m, void *), TSO_HDR4);
    struct rte_mbuf *p = m;
    /* A port that offers TSO4 only: the IPv4 frame is taken. */
    assert_int_equal(vsw_uplink_tso_prepare(g_pool, &p, VSW_TX_TSO4,
                                            RTE_ETH_TX_OFFLOAD_TCP_TSO |
                                                RTE_ETH_TX_OFFLOAD_TCP_CKSUM),
                     0);
    assert_ptr_not_equal(p, m);
    assert_true(RTE_MBUF_DIRECT(p));
    assert_int_equal(rte_mbuf_refcnt_read(p), 1);
    assert_int_equal(p->data_len, TSO_HDR4);
    assert_int_equal(p->pkt_len, m->pkt_len);
    assert_memory_equal(rte_pktmbuf_mtod(p, void *), before, TSO_HDR4);
    check_payload(p, TSO_HDR4, 0, payload);
    assert_int_equal(p->l2_len, 14);
    assert_int_equal(p->l3_len, 20);
    assert_int_equal(p->l4_len, 32);
    assert_int_equal(p->tso_segsz, 1400);
    assert_int_equal(p->ol_flags & (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_L4_MASK |
                                    RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM),
                     RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_TCP_CKSUM | RTE_MBUF_F_TX_IPV4);
    assert_int_equal(p->ol_flags & (RTE_MBUF_F_INDIRECT | RTE_MBUF_F_EXTERNAL), 0);
    /* The other holder's frame is as it was; the new one references it. */
    assert_int_equal(m->ol_flags, flags);
    assert_memory_equal(rte_pktmbuf_mtod(m, void *), before, TSO_HDR4);
    /* The reference handed in went; the other holder's and the indirect
     * mbuf's over the rest of its first segment remain. */
    assert_int_equal(rte_mbuf_refcnt_read(m), 2);
    rte_pktmbuf_free(p);
    assert_int_equal(rte_mbuf_refcnt_read(m), 1);
    check_payload(m, TSO_HDR4, 0, payload);
    rte_pktmbuf_free(m);
}

static void uplink_tso_prepare__private_frame__prepared_in_place(void **state)
{
    (void)state;
    struct rte_mbuf *m = tso_frame(false, 9000, 1400, TSO_HDR4);
    struct rte_mbuf *p = m;
    /* The IPv4 header checksum request stays where the PMD offers it. */
    assert_int_equal(vsw_uplink_tso_prepare(g_pool, &p, VSW_TX_TSO,
                                            RTE_ETH_TX_OFFLOAD_TCP_TSO |
                                                RTE_ETH_TX_OFFLOAD_TCP_CKSUM |
                                                RTE_ETH_TX_OFFLOAD_IPV4_CKSUM),
                     0);
    assert_ptr_equal(p, m);
    assert_int_equal(p->ol_flags & (RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_L4_MASK),
                     RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_TCP_CKSUM);
    rte_pktmbuf_free(p);
}

static void uplink_tso_prepare__ipv6_to_tso4_port__refused_unchanged(void **state)
{
    (void)state;
    struct rte_mbuf *m = tso_frame(true, 9000, 1400, TSO_HDR6);
    const uint64_t flags = m->ol_flags;
    struct rte_mbuf *p = m;
    assert_int_equal(vsw_uplink_tso_prepare(g_pool, &p, VSW_TX_TSO4,
                                            RTE_ETH_TX_OFFLOAD_TCP_TSO |
                                                RTE_ETH_TX_OFFLOAD_TCP_CKSUM),
                     -EINVAL);
    assert_ptr_equal(p, m);
    assert_int_equal(m->ol_flags, flags);
    /* To a port that takes both, it goes. */
    assert_int_equal(vsw_uplink_tso_prepare(g_pool, &p, VSW_TX_TSO,
                                            RTE_ETH_TX_OFFLOAD_TCP_TSO |
                                                RTE_ETH_TX_OFFLOAD_TCP_CKSUM),
                     0);
    assert_int_equal(p->ol_flags & (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV6),
                     RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_IPV6);
    rte_pktmbuf_free(p);
}

static void uplink_create__pmd_without_tso__large_segments_cut_by_switch(void **state)
{
    struct fixture *f = *state;
    /* net_ring offers no TSO: the port's word asks the switch to cut. */
    assert_int_equal(vsw_port_tx_offloads(f->port) & VSW_TX_TSO, 0);
    struct vsw_uplink_info in;
    vsw_uplink_port_get_info(f->port, &in);
    assert_int_equal(in.tx_tso, 0);
}

static int group_setup(void **state)
{
    (void)state;
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "tuq%d", (int)getpid());
    char *argv[] = {"test",          "-l",     "0",         "--no-huge",   "-m",
                    "128",           "--no-pci", "--file-prefix", prefix, "--log-level",
                    "*:error",       "--no-shconf", "--no-telemetry"};
    int argc = (int)(sizeof(argv) / sizeof(argv[0]));
    if (rte_eal_init(argc, argv) < 0) {
        print_error("rte_eal_init failed\n");
        return -1;
    }
    rmdir(rte_eal_get_runtime_dir()); /* EAL leaves it empty (--no-shconf) */
    g_pool = rte_pktmbuf_pool_create("tuq_pool", 4096, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(uplink_create__peer_picks_queues__all_rx_queues_configured,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(uplink_rx_burst__frames_on_queue_1__received, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            uplink_rx_burst__both_queues_busy__one_burst_per_round_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(uplink_rx_burst__one_queue_empty__other_gets_whole_burst,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(uplink_tx_burst__any_frame__sent_on_queue_0, setup,
                                        teardown),
        cmocka_unit_test(uplink_create__peer_picks_nothing__one_queue_pair),
        cmocka_unit_test(uplink_create__memif_queues__that_many_queue_pairs),
        cmocka_unit_test(uplink_tso_caps__by_pmd__tap_ipv4_only_virtio_both_others_none),
        cmocka_unit_test(uplink_tso_within__tap_limits__mss_segments_headers_and_tag_judged),
        cmocka_unit_test(uplink_tso_prepare__shared_ipv4_frame__private_head_rest_referenced),
        cmocka_unit_test(uplink_tso_prepare__private_frame__prepared_in_place),
        cmocka_unit_test(uplink_tso_prepare__ipv6_to_tso4_port__refused_unchanged),
        cmocka_unit_test_setup_teardown(uplink_create__pmd_without_tso__large_segments_cut_by_switch,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
