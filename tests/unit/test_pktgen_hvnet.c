/*
 * Unit tests of vswitch-pktgen's hvnet NIC port without a NIC
 * (pktgen/src/hvnet-frame.c): the copy of an mbuf chain into a NIC buffer,
 * the copy of a received frame into a chain of stash mbufs and its queue,
 * and the MTU check that refuses a frame the NIC may not send. No EAL: the
 * mbufs are hand-built over static buffers, set as rte_pktmbuf_alloc_bulk
 * leaves them.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "port-hvnet.h"

#define FRAME_MAX 9018u
#define ROOM 2048u   /* as the rx pool's RTE_MBUF_DEFAULT_BUF_SIZE */
#define HEADROOM 128u
#define NMBUF 1100u

static uint8_t src[FRAME_MAX + 64], dst[FRAME_MAX + 64];
static struct rte_mbuf mb[NMBUF];
static uint8_t buf[NMBUF][HEADROOM + ROOM];

static void pattern(uint8_t *p, uint32_t n, uint32_t seed)
{
    for (uint32_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 131u + seed * 7u + (i >> 8));
}

/* A chain over src, cut every `seg` bytes (the last segment 3 bytes
 * longer than pkt_len when `slack`: only pkt_len counts). */
static struct rte_mbuf chain_seg[FRAME_MAX + 1];
static struct rte_mbuf *chain(uint32_t len, uint32_t seg, bool slack)
{
    uint32_t n = (len + seg - 1) / seg, off = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct rte_mbuf *m = &chain_seg[i];
        memset(m, 0, sizeof(*m));
        uint32_t l = len - off < seg ? len - off : seg;
        if (i == n - 1 && slack)
            l += 3;
        m->buf_addr = src + off;
        m->buf_len = (uint16_t)l;
        m->data_len = (uint16_t)l;
        m->next = i + 1 < n ? &chain_seg[i + 1] : NULL;
        off += seg;
    }
    chain_seg[0].nb_segs = (uint16_t)n;
    chain_seg[0].pkt_len = len;
    return &chain_seg[0];
}

static const uint32_t sizes[] = {64, 65, 127, 128, 1500, 1514, 1518, 2047, 2048, 2049, 4096, 8999, 9000, 9018};

static void pg_hvnet_copy_out__chains_and_sizes__bytes_exact(void **state)
{
    (void)state;
    static const uint32_t segs[] = {1, 7, 64, 100, 2048, 65535};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        for (size_t g = 0; g < sizeof(segs) / sizeof(segs[0]); g++) {
            uint32_t len = sizes[s];
            pattern(src, len + 3, (uint32_t)(s * 10 + g));
            memset(dst, 0xee, sizeof(dst));
            assert_int_equal(pg_hvnet_copy_out(chain(len, segs[g], g % 2 == 1), dst, len), len);
            assert_memory_equal(dst, src, len);
            assert_int_equal(dst[len], 0xee); /* nothing past the frame */
            /* One byte short of room: refused, nothing written. */
            memset(dst, 0xee, sizeof(dst));
            assert_int_equal(pg_hvnet_copy_out(chain(len, segs[g], false), dst, len - 1),
                             -EMSGSIZE);
            assert_int_equal(dst[0], 0xee);
        }
    }
}

static void pg_hvnet_copy_out__chain_shorter_than_pkt_len__refused(void **state)
{
    (void)state;
    struct rte_mbuf *m = chain(1000, 300, false);
    m->pkt_len = 1200; /* the segments hold 1000 */
    assert_int_equal(pg_hvnet_copy_out(m, dst, sizeof(dst)), -EINVAL);
}

static struct rte_mbuf *frame_mbuf(uint32_t len, uint16_t ethertype)
{
    struct rte_mbuf *m = chain(len, 2048, false);
    if (len >= RTE_ETHER_HDR_LEN) {
        struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
        eth->ether_type = rte_cpu_to_be_16(ethertype);
    }
    return m;
}

static void pg_hvnet_frame_fits__mtu__untagged_and_tagged(void **state)
{
    (void)state;
    /* MTU 1500: 1514 B untagged, 1518 B with a tag in-band. */
    assert_true(pg_hvnet_frame_fits(frame_mbuf(64, RTE_ETHER_TYPE_IPV4), 1500));
    assert_true(pg_hvnet_frame_fits(frame_mbuf(1514, RTE_ETHER_TYPE_IPV4), 1500));
    assert_false(pg_hvnet_frame_fits(frame_mbuf(1515, RTE_ETHER_TYPE_IPV4), 1500));
    assert_false(pg_hvnet_frame_fits(frame_mbuf(1518, RTE_ETHER_TYPE_IPV4), 1500));
    assert_true(pg_hvnet_frame_fits(frame_mbuf(1518, RTE_ETHER_TYPE_VLAN), 1500));
    assert_true(pg_hvnet_frame_fits(frame_mbuf(1518, RTE_ETHER_TYPE_QINQ), 1500));
    assert_false(pg_hvnet_frame_fits(frame_mbuf(1519, RTE_ETHER_TYPE_VLAN), 1500));
    /* MTU 9000: 9014 / 9018. */
    assert_true(pg_hvnet_frame_fits(frame_mbuf(9014, RTE_ETHER_TYPE_IPV4), 9000));
    assert_false(pg_hvnet_frame_fits(frame_mbuf(9015, RTE_ETHER_TYPE_IPV4), 9000));
    assert_true(pg_hvnet_frame_fits(frame_mbuf(9018, RTE_ETHER_TYPE_VLAN), 9000));
    assert_false(pg_hvnet_frame_fits(frame_mbuf(9019, RTE_ETHER_TYPE_VLAN), 9000));
    /* A frame whose first segment holds no whole Ethernet header is judged
     * untagged (never read past its data). */
    struct rte_mbuf *m = chain(1518, 10, false);
    src[12] = 0x81, src[13] = 0x00;
    assert_false(pg_hvnet_frame_fits(m, 1500));
}

/* n stash mbufs as rte_pktmbuf_alloc_bulk leaves them. */
static void stash_fill(struct pg_hvnet_rxq *q, unsigned n)
{
    memset(q, 0, sizeof(*q));
    for (unsigned i = 0; i < n; i++) {
        struct rte_mbuf *m = &mb[i];
        memset(m, 0, sizeof(*m));
        m->buf_addr = buf[i];
        m->buf_len = HEADROOM + ROOM;
        m->data_off = HEADROOM;
        m->nb_segs = 1;
        q->stash[q->nstash++] = m;
    }
}

static struct pg_hvnet_rxq q;

static void pg_hvnet_rxq_put__sizes__chains_of_stash_mbufs(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint32_t len = sizes[s];
        stash_fill(&q, 64);
        pattern(src, len, (uint32_t)s);
        assert_int_equal(pg_hvnet_rxq_put(&q, src, len), 0);
        uint32_t nseg = (len + ROOM - 1) / ROOM;
        assert_int_equal(q.nstash, 64 - nseg);
        assert_int_equal(pg_hvnet_rxq_count(&q), 1);
        struct rte_mbuf *got[4];
        assert_int_equal(pg_hvnet_rxq_take(&q, got, 4), 1);
        assert_int_equal(got[0]->pkt_len, len);
        assert_int_equal(got[0]->nb_segs, nseg);
        uint32_t sum = 0, k = 0;
        for (struct rte_mbuf *m = got[0]; m; m = m->next, k++) {
            assert_true(m->data_len > 0 && m->data_len <= ROOM);
            assert_int_equal(m->data_off, HEADROOM); /* headroom kept */
            sum += m->data_len;
        }
        assert_int_equal(k, nseg);
        assert_int_equal(sum, len);
        memset(dst, 0, sizeof(dst));
        assert_int_equal(pg_hvnet_copy_out(got[0], dst, sizeof(dst)), len);
        assert_memory_equal(dst, src, len);
        assert_int_equal(q.frames, 1);
        assert_int_equal(q.bytes, len);
    }
}

static void put_numbered(uint32_t i)
{
    pattern(src, 64, i);
    src[0] = (uint8_t)i, src[1] = (uint8_t)(i >> 8);
    assert_int_equal(pg_hvnet_rxq_put(&q, src, 64), 0);
}

static void take_numbered(uint32_t from, uint32_t n)
{
    struct rte_mbuf *got[32];
    while (n) {
        uint16_t k = pg_hvnet_rxq_take(&q, got, (uint16_t)(n < 32 ? n : 32));
        assert_true(k > 0);
        for (uint16_t i = 0; i < k; i++, from++) {
            const uint8_t *d = rte_pktmbuf_mtod(got[i], const uint8_t *);
            assert_int_equal(d[0] | d[1] << 8, from & 0xffff);
        }
        n -= k;
    }
}

static void pg_hvnet_rxq_put__full_queue__dropped_counted_order_kept(void **state)
{
    (void)state;
    stash_fill(&q, PG_HVNET_RXQ + 64 + 8);
    for (uint32_t i = 0; i < PG_HVNET_RXQ; i++)
        put_numbered(i);
    assert_int_equal(pg_hvnet_rxq_put(&q, src, 64), -ENOBUFS);
    assert_int_equal(q.full, 1);
    assert_int_equal(q.frames, PG_HVNET_RXQ);
    assert_int_equal(q.nstash, 64 + 8); /* the dropped frame took none */
    /* Oldest first, across the ring's wrap. */
    take_numbered(0, 64);
    for (uint32_t i = PG_HVNET_RXQ; i < PG_HVNET_RXQ + 64; i++)
        put_numbered(i);
    assert_int_equal(pg_hvnet_rxq_count(&q), PG_HVNET_RXQ);
    take_numbered(64, PG_HVNET_RXQ);
    struct rte_mbuf *none[1];
    assert_int_equal(pg_hvnet_rxq_take(&q, none, 1), 0);
}

static void pg_hvnet_rxq_put__stash_short__dropped_no_mbuf(void **state)
{
    (void)state;
    stash_fill(&q, 2);
    pattern(src, 9000, 1);
    assert_int_equal(pg_hvnet_rxq_put(&q, src, 9000), -ENOBUFS); /* needs 5 */
    assert_int_equal(q.no_mbuf, 1);
    assert_int_equal(q.nstash, 2);
    assert_int_equal(mb[0].data_len, 0); /* untouched */
    assert_int_equal(mb[1].data_len, 0);
    assert_int_equal(pg_hvnet_rxq_count(&q), 0);
    /* What fits the stash still goes in. */
    assert_int_equal(pg_hvnet_rxq_put(&q, src, 4096), 0);
    assert_int_equal(q.nstash, 0);
    assert_int_equal(pg_hvnet_rxq_put(&q, src, 64), -ENOBUFS);
    assert_int_equal(q.no_mbuf, 2);
    /* An empty stash and a zero-length frame: refused, not a chain of none. */
    assert_int_equal(pg_hvnet_rxq_put(&q, src, 0), -ENOBUFS);
}

static void pg_hvnet_frame_in__fits_one_mbuf__one_segment_stale_links_cleared(void **state)
{
    (void)state;
    static const uint32_t lens[] = {1, 60, 64, 1518, ROOM - 1, ROOM, ROOM + 1};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint32_t len = lens[i];
        stash_fill(&q, 8);
        /* The top mbuf as one that was a chain's head before it was freed
         * would not be (the mempool's invariant), but stated here. */
        q.stash[7]->next = q.stash[0];
        q.stash[7]->nb_segs = 3;
        pattern(src, len, (uint32_t)i);
        struct rte_mbuf *m = pg_hvnet_frame_in(&q, src, len);
        assert_non_null(m);
        assert_ptr_equal(m, &mb[7]); /* the stash's top */
        uint32_t nseg = len <= ROOM ? 1 : 2;
        assert_int_equal(m->nb_segs, nseg);
        assert_int_equal(q.nstash, 8 - nseg);
        assert_int_equal(m->pkt_len, len);
        assert_int_equal(m->data_off, HEADROOM);
        if (nseg == 1) {
            assert_null(m->next);
            assert_int_equal(m->data_len, len);
        }
        memset(dst, 0, sizeof(dst));
        assert_int_equal(pg_hvnet_copy_out(m, dst, sizeof(dst)), len);
        assert_memory_equal(dst, src, len);
        assert_int_equal(q.frames, 1);
        assert_int_equal(q.bytes, len);
        assert_int_equal(pg_hvnet_rxq_count(&q), 0); /* not queued */
    }
    /* An empty stash: none, counted. */
    stash_fill(&q, 0);
    assert_null(pg_hvnet_frame_in(&q, src, 64));
    assert_int_equal(q.no_mbuf, 1);
}

static void pg_hvnet_stash_want__levels__a_bursts_need_kept_low(void **state)
{
    (void)state;
    /* 64 B frames at MTU 1500: a burst of 32 mbufs. */
    assert_int_equal(pg_hvnet_stash_want(32, 32, 1), 0);
    assert_int_equal(pg_hvnet_stash_want(100, 32, 1), 0);
    assert_int_equal(pg_hvnet_stash_want(31, 32, 1), PG_BURST); /* at least a burst */
    assert_int_equal(pg_hvnet_stash_want(0, 32, 1), 32);
    assert_int_equal(pg_hvnet_stash_want(0, 0, 1), 0);
    /* Jumbo frames (5 mbufs each): what is short, never past the stash. */
    assert_int_equal(pg_hvnet_stash_want(0, 32, 5), 160);
    assert_int_equal(pg_hvnet_stash_want(150, 32, 5), PG_BURST);
    assert_int_equal(pg_hvnet_stash_want(0, 32, 0), 32); /* segs 0 taken as 1 */
    assert_int_equal(pg_hvnet_stash_want(0, 512, 5), PG_HVNET_STASH);
    assert_int_equal(pg_hvnet_stash_want(PG_HVNET_STASH - 8, 512, 5), 8); /* to the top */
    assert_int_equal(pg_hvnet_stash_want(PG_HVNET_STASH, 512, 5), 0);
    assert_int_equal(pg_hvnet_stash_want(1000, 1000, 2), PG_HVNET_STASH - 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pg_hvnet_copy_out__chains_and_sizes__bytes_exact),
        cmocka_unit_test(pg_hvnet_copy_out__chain_shorter_than_pkt_len__refused),
        cmocka_unit_test(pg_hvnet_frame_fits__mtu__untagged_and_tagged),
        cmocka_unit_test(pg_hvnet_rxq_put__sizes__chains_of_stash_mbufs),
        cmocka_unit_test(pg_hvnet_rxq_put__full_queue__dropped_counted_order_kept),
        cmocka_unit_test(pg_hvnet_rxq_put__stash_short__dropped_no_mbuf),
        cmocka_unit_test(pg_hvnet_frame_in__fits_one_mbuf__one_segment_stale_links_cleared),
        cmocka_unit_test(pg_hvnet_stash_want__levels__a_bursts_need_kept_low),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
