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
#include <rte_ring.h>

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
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
