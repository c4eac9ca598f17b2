/*
 * Unit tests for the VMBus ring buffer (hv-core/src/vmbus-ring.c).
 *
 * Every fixture builds a ring the way a channel does: a memfd whose first
 * page is the ring header and whose other pages are the data area, mapped
 * twice back to back after the header, with an inaccessible page on either
 * side of the view so that any stray access faults. The producer and the
 * consumer attach to two different views of the same pages, as the two ends
 * of a channel do. Tests that play a hostile peer write the shared header
 * and data directly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmbus-ring.h"

#define PAGE 4096u
#define DESC_SIZE 16u
#define TRAILER 8u
#define MAX_PKT (64u << 10)

struct ring_view {
    uint8_t *base; /* reservation: guard page, header, data, data again, guard page */
    size_t len;
    struct vmbus_ring_hdr *hdr;
    uint8_t *data; /* dsize bytes, then the same dsize bytes again */
};

struct fixture {
    int fd;
    uint32_t dsize;
    struct ring_view pv; /* the producer's view */
    struct ring_view cv; /* the consumer's view of the same pages */
    struct vmbus_ring prod;
    struct vmbus_ring cons;
    uint8_t src[MAX_PKT];
    uint8_t buf[MAX_PKT];
};

static int view_map(int fd, uint32_t dpages, struct ring_view *v)
{
    size_t dlen = (size_t)dpages * PAGE;
    v->len = 3 * (size_t)PAGE + 2 * dlen;
    v->base = mmap(NULL, v->len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (v->base == MAP_FAILED) {
        v->base = NULL;
        return -1;
    }
    uint8_t *h = v->base + PAGE;
    int prot = PROT_READ | PROT_WRITE;
    if (mmap(h, PAGE, prot, MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED ||
        mmap(h + PAGE, dlen, prot, MAP_SHARED | MAP_FIXED, fd, PAGE) == MAP_FAILED ||
        mmap(h + PAGE + dlen, dlen, prot, MAP_SHARED | MAP_FIXED, fd, PAGE) == MAP_FAILED) {
        munmap(v->base, v->len);
        v->base = NULL;
        return -1;
    }
    v->hdr = (struct vmbus_ring_hdr *)h;
    v->data = h + PAGE;
    return 0;
}

static void view_unmap(struct ring_view *v)
{
    if (v->base)
        munmap(v->base, v->len);
    v->base = NULL;
}

static int setup_ring(void **state, uint32_t dpages)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    fx->dsize = dpages * PAGE;
    fx->fd = memfd_create("test_vmbus_ring", MFD_CLOEXEC);
    if (fx->fd < 0)
        goto err_free;
    if (ftruncate(fx->fd, (off_t)(1 + dpages) * PAGE) < 0)
        goto err_close;
    if (view_map(fx->fd, dpages, &fx->pv) < 0)
        goto err_close;
    if (view_map(fx->fd, dpages, &fx->cv) < 0)
        goto err_unmap_pv;
    vmbus_ring_format(fx->pv.hdr);
    if (vmbus_ring_init_producer(&fx->prod, fx->pv.hdr, fx->dsize) != 0)
        goto err_unmap_cv;
    if (vmbus_ring_init_consumer(&fx->cons, fx->cv.hdr, fx->dsize, VMBUS_RING_TYPES_DEFAULT) != 0)
        goto err_unmap_cv;
    *state = fx;
    return 0;

err_unmap_cv:
    view_unmap(&fx->cv);
err_unmap_pv:
    view_unmap(&fx->pv);
err_close:
    close(fx->fd);
err_free:
    free(fx);
    return -1;
}

static int setup_one_page(void **state)
{
    return setup_ring(state, 1);
}

static int setup_four_pages(void **state)
{
    return setup_ring(state, 4);
}

static int teardown_ring(void **state)
{
    struct fixture *fx = *state;
    view_unmap(&fx->cv);
    view_unmap(&fx->pv);
    close(fx->fd);
    free(fx);
    return 0;
}

/* Deterministic bytes that differ per packet, so a misplaced copy shows. */
static void fill_pattern(uint8_t *p, uint32_t n, uint64_t seed)
{
    for (uint32_t i = 0; i < n; i++)
        p[i] = (uint8_t)((seed * 131u) + i * 7u + (i >> 8));
}

static bool pattern_ok(const uint8_t *p, uint32_t n, uint64_t seed)
{
    for (uint32_t i = 0; i < n; i++)
        if (p[i] != (uint8_t)((seed * 131u) + i * 7u + (i >> 8)))
            return false;
    return true;
}

static bool all_zero(const uint8_t *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (p[i] != 0)
            return false;
    return true;
}

static uint32_t round8(uint32_t n)
{
    return (n + 7u) & ~7u;
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* Bytes between two indices going forward, as both ends compute it. */
static uint32_t dist(const struct fixture *fx, uint32_t from, uint32_t to)
{
    return to >= from ? to - from : fx->dsize - from + to;
}

/* Free bytes of the shared ring as the two published indices say. */
static uint32_t shared_free(const struct fixture *fx)
{
    return fx->dsize - dist(fx, fx->cv.hdr->read_index, fx->pv.hdr->write_index);
}

/* Payload bytes that make an in-band packet take pkt_size ring bytes. */
static uint32_t inband_payload_for(uint32_t pkt_size)
{
    return pkt_size - TRAILER - DESC_SIZE;
}

/* Play the hostile producer: write a descriptor at data offset `at`. */
static void poke_desc(struct fixture *fx, uint32_t at, uint16_t type, uint16_t offset8,
                      uint16_t len8, uint16_t flags, uint64_t trans_id)
{
    struct vmbus_pkt_desc d = {
        .type = type, .offset8 = offset8, .len8 = len8, .flags = flags, .trans_id = trans_id};
    memcpy(fx->pv.data + at, &d, sizeof(d));
}

static void assert_only_error(const struct vmbus_ring *r, enum vmbus_ring_error why)
{
    for (int i = 0; i < VMBUS_RING_ERR_COUNT; i++)
        assert_int_equal(r->stats.errors[i], i == (int)why ? 1 : 0);
}

static void assert_no_errors(const struct vmbus_ring *r)
{
    for (int i = 0; i < VMBUS_RING_ERR_COUNT; i++)
        assert_int_equal(r->stats.errors[i], 0);
}

/*
 * A corrupt consumer stays corrupt: repair the shared state (one valid packet
 * at the consumer's position) and every call still fails, without counting
 * the same corruption again.
 */
static void assert_consumer_sticky(struct fixture *fx, enum vmbus_ring_error why)
{
    uint32_t at = fx->cons.rindex;
    poke_desc(fx, at, VMBUS_PKT_DATA_INBAND, 2, 2, 0, 1);
    fx->pv.hdr->write_index = (at + 24u) % fx->dsize;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EPROTO);
        assert_int_equal(vmbus_ring_release(&fx->cons), -EPROTO);
        assert_false(vmbus_ring_empty(&fx->cons));
    }
    assert_int_equal(fx->cons.stats.packets, 0);
    assert_only_error(&fx->cons, why);
}

static void assert_producer_sticky(struct fixture *fx, enum vmbus_ring_error why)
{
    fx->cv.hdr->read_index = fx->pv.hdr->write_index;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 1, "x", 1),
                         -EPROTO);
        assert_int_equal(vmbus_ring_publish(&fx->prod), -EPROTO);
        assert_int_equal(vmbus_ring_arm_space(&fx->prod, 64), -EPROTO);
        assert_int_equal(vmbus_ring_free_bytes(&fx->prod), 0);
    }
    assert_only_error(&fx->prod, why);
}

static int put_publish(struct fixture *fx, uint16_t type, uint64_t id, uint32_t len)
{
    fill_pattern(fx->src, len, id);
    int rc = vmbus_ring_put_inband(&fx->prod, type, 0, id, fx->src, len);
    if (rc == 0)
        rc = vmbus_ring_publish(&fx->prod) < 0 ? -EPROTO : 0;
    return rc;
}

/* Stage in-band packets of pkt_size ring bytes until the ring refuses one;
 * returns how many went in. Bounded, so a ring that never fills fails. */
static uint32_t fill_ring(struct fixture *fx, uint32_t pkt_size, uint64_t first_id)
{
    uint32_t n = 0;
    int rc;
    while ((rc = vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, first_id + n, fx->src,
                                       inband_payload_for(pkt_size))) == 0) {
        n++;
        assert_true(n <= fx->dsize / pkt_size);
    }
    assert_int_equal(rc, -EAGAIN);
    return n;
}

/* Get one in-band packet and check it carries `len` pattern bytes of `id`. */
static void get_check(struct fixture *fx, uint16_t type, uint64_t id, uint32_t len)
{
    int rc = vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf));
    assert_int_equal(rc, round8(DESC_SIZE + len));
    struct vmbus_pkt pkt;
    assert_int_equal(vmbus_pkt_parse(fx->buf, (uint32_t)rc, &pkt), 0);
    assert_int_equal(pkt.type, type);
    assert_int_equal(pkt.trans_id, id);
    assert_int_equal(pkt.ext_len, 0);
    assert_int_equal(pkt.payload_len, round8(len));
    assert_true(pattern_ok(pkt.payload, len, id));
    assert_true(all_zero(pkt.payload + len, pkt.payload_len - len));
}

/* --- geometry and init -------------------------------------------------- */

static void fixture__write_through_one_view__seen_twice_in_the_other(void **state)
{
    struct fixture *fx = *state;
    fx->pv.data[5] = 0x5a;
    fx->pv.data[fx->dsize - 1] = 0xa5;
    assert_int_equal(fx->cv.data[5], 0x5a);
    assert_int_equal(fx->cv.data[fx->dsize + 5], 0x5a);
    assert_int_equal(fx->cv.data[2 * fx->dsize - 1], 0xa5);
    assert_int_equal(fx->pv.hdr->feature_bits & VMBUS_RING_FEAT_PENDING_SEND_SZ,
                     VMBUS_RING_FEAT_PENDING_SEND_SZ);
}

static void init__bad_geometry__einval(void **state)
{
    struct fixture *fx = *state;
    struct vmbus_ring r;
    assert_int_equal(vmbus_ring_init_producer(&r, NULL, fx->dsize), -EINVAL);
    assert_int_equal(vmbus_ring_init_consumer(&r, NULL, fx->dsize, VMBUS_RING_TYPES_DEFAULT),
                     -EINVAL);
    const uint32_t bad[] = {0, 8, PAGE - 8, PAGE + 8, PAGE + PAGE / 2, VMBUS_RING_DSIZE_MAX + PAGE};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(vmbus_ring_init_producer(&r, fx->pv.hdr, bad[i]), -EINVAL);
        assert_int_equal(vmbus_ring_init_consumer(&r, fx->cv.hdr, bad[i], VMBUS_RING_TYPES_DEFAULT),
                         -EINVAL);
    }
}

static void init_producer__garbage_write_index__eproto(void **state)
{
    struct fixture *fx = *state;
    const uint32_t bad[] = {4, 12, fx->dsize, fx->dsize + 8, 0xfffffff8u, 0xffffffffu};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vmbus_ring r;
        fx->pv.hdr->write_index = bad[i];
        assert_int_equal(vmbus_ring_init_producer(&r, fx->pv.hdr, fx->dsize), -EPROTO);
        assert_only_error(&r, VMBUS_RING_ERR_WRITE_INDEX);
        assert_int_equal(vmbus_ring_put_inband(&r, VMBUS_PKT_DATA_INBAND, 0, 1, NULL, 0), -EPROTO);
    }
}

static void init_consumer__garbage_read_index__eproto(void **state)
{
    struct fixture *fx = *state;
    const uint32_t bad[] = {1, 4, fx->dsize, fx->dsize + 8, 0x80000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct vmbus_ring r;
        fx->cv.hdr->read_index = bad[i];
        assert_int_equal(
            vmbus_ring_init_consumer(&r, fx->cv.hdr, fx->dsize, VMBUS_RING_TYPES_DEFAULT), -EPROTO);
        assert_only_error(&r, VMBUS_RING_ERR_READ_INDEX);
        assert_int_equal(vmbus_ring_get(&r, fx->buf, sizeof(fx->buf)), -EPROTO);
    }
}

static void init__indices_mid_ring__both_ends_resume_there(void **state)
{
    struct fixture *fx = *state;
    fx->pv.hdr->write_index = fx->dsize - 16;
    fx->pv.hdr->read_index = fx->dsize - 16;
    assert_int_equal(vmbus_ring_init_producer(&fx->prod, fx->pv.hdr, fx->dsize), 0);
    assert_int_equal(
        vmbus_ring_init_consumer(&fx->cons, fx->cv.hdr, fx->dsize, VMBUS_RING_TYPES_DEFAULT), 0);
    assert_int_equal(put_publish(fx, VMBUS_PKT_DATA_INBAND, 77, 100), 0);
    get_check(fx, VMBUS_PKT_DATA_INBAND, 77, 100);
    assert_int_equal(fx->cons.rindex, vmbus_ring_pkt_size(0, 100) - 16);
}

/* --- round trips -------------------------------------------------------- */

static void put_inband__payload_sizes__round_trip_padded_with_zeroes(void **state)
{
    struct fixture *fx = *state;
    const uint32_t max_payload = fx->dsize - TRAILER - TRAILER - DESC_SIZE;
    const uint32_t sizes[] = {0,
                              1,
                              2,
                              3,
                              4,
                              5,
                              6,
                              7,
                              8,
                              9,
                              15,
                              16,
                              17,
                              23,
                              24,
                              25,
                              31,
                              32,
                              33,
                              63,
                              64,
                              65,
                              127,
                              128,
                              129,
                              255,
                              256,
                              257,
                              511,
                              1000,
                              1023,
                              1024,
                              1025,
                              1500,
                              2048,
                              4000,
                              4096,
                              4097,
                              8000,
                              9000,
                              max_payload - 1,
                              max_payload};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint32_t len = sizes[i];
        uint64_t id = 0xfedcba9800000000ull | i;
        uint16_t flags = (i & 1) ? VMBUS_PKT_FLAG_COMPLETION_REQUESTED : 0;
        /* Stale bytes where the padding will go, so zeroing is observable. */
        memset(fx->pv.data, 0xa5, fx->dsize);
        fill_pattern(fx->src, len, id);
        assert_int_equal(
            vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, flags, id, fx->src, len), 0);
        assert_int_equal(vmbus_ring_publish(&fx->prod), 1);
        uint32_t start = fx->cons.rindex;
        int rc = vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf));
        assert_int_equal(rc, round8(DESC_SIZE + len));
        assert_int_equal(fx->cons.rindex, (start + (uint32_t)rc + TRAILER) % fx->dsize);

        struct vmbus_pkt pkt;
        assert_int_equal(vmbus_pkt_parse(fx->buf, (uint32_t)rc, &pkt), 0);
        assert_int_equal(pkt.type, VMBUS_PKT_DATA_INBAND);
        assert_int_equal(pkt.flags, flags);
        assert_int_equal(pkt.trans_id, id);
        assert_int_equal(pkt.ext_len, 0);
        assert_ptr_equal(pkt.payload, fx->buf + DESC_SIZE);
        assert_int_equal(pkt.payload_len, round8(len));
        assert_memory_equal(pkt.payload, fx->src, len);
        assert_true(all_zero(pkt.payload + len, pkt.payload_len - len));
        /* The trailer holds the packet's start offset in its upper half. */
        uint64_t trailer;
        memcpy(&trailer, fx->cv.data + start + (uint32_t)rc, sizeof(trailer));
        assert_int_equal(trailer, (uint64_t)start << 32);
        assert_int_equal(vmbus_ring_release(&fx->cons), 0);
        assert_true(vmbus_ring_empty(&fx->cons));
    }
    size_t n = sizeof(sizes) / sizeof(sizes[0]);
    assert_int_equal(fx->prod.stats.packets, n);
    assert_int_equal(fx->cons.stats.packets, n);
    assert_int_equal(fx->prod.stats.bytes, fx->cons.stats.bytes);
    assert_no_errors(&fx->cons);
}

static void put_inband__completion_packets__type_and_trans_id_preserved(void **state)
{
    struct fixture *fx = *state;
    const uint32_t sizes[] = {0, 1, 7, 8, 9, 40, 1000};
    const uint64_t ids[] = {0, 1, 0x8000000000000000ull, 0xffffffffffffffffull, 42, 0x1234, 7};
    for (size_t i = 0; i < 7; i++) {
        fill_pattern(fx->src, sizes[i], ids[i]);
        assert_int_equal(
            vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_COMP, 0, ids[i], fx->src, sizes[i]), 0);
    }
    assert_int_equal(vmbus_ring_publish(&fx->prod), 1);
    for (size_t i = 0; i < 7; i++)
        get_check(fx, VMBUS_PKT_COMP, ids[i], sizes[i]);
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EAGAIN);
}

static void put__gathered_iovecs__payload_concatenated(void **state)
{
    struct fixture *fx = *state;
    fill_pattern(fx->src, 300, 9);
    struct iovec iov[] = {
        {fx->src, 1}, {fx->src + 1, 0}, {fx->src + 1, 6}, {fx->src + 7, 93}, {fx->src + 100, 200}};
    assert_int_equal(vmbus_ring_put(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 9, NULL, 0, iov, 5), 0);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 1);
    get_check(fx, VMBUS_PKT_DATA_INBAND, 9, 300);
}

static void put__bad_ext_len__einval(void **state)
{
    struct fixture *fx = *state;
    uint8_t ext[16] = {0};
    assert_int_equal(vmbus_ring_put(&fx->prod, 6, 0, 1, ext, 4, NULL, 0), -EINVAL);
    assert_int_equal(vmbus_ring_put(&fx->prod, 6, 0, 1, NULL, 8, NULL, 0), -EINVAL);
    assert_int_equal(vmbus_ring_put(&fx->prod, 6, 0, 1, NULL, 0, NULL, -1), -EINVAL);
    assert_int_equal(fx->prod.stats.packets, 0);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 0);
}

static void put_xfer_pages__range_counts_and_payloads__round_trip(void **state)
{
    struct fixture *fx = *state;
    const uint32_t nranges[] = {1, 2, 3, 17, 64};
    const uint32_t lens[] = {0, 1, 7, 8, 9, 40, 1000};
    struct vmbus_xfer_range rg[64];
    for (uint32_t i = 0; i < 64; i++) {
        rg[i].byte_count = 1514 + i;
        rg[i].byte_offset = 0x10000u * i + 8 * i;
    }
    uint64_t id = 100;
    for (size_t a = 0; a < sizeof(nranges) / sizeof(nranges[0]); a++) {
        for (size_t b = 0; b < sizeof(lens) / sizeof(lens[0]); b++, id++) {
            uint32_t n = nranges[a], len = lens[b];
            memset(fx->pv.data, 0xa5, fx->dsize);
            fill_pattern(fx->src, len, id);
            assert_int_equal(vmbus_ring_put_xfer_pages(&fx->prod, id, (uint16_t)(0xbe00 + a), rg, n,
                                                       fx->src, len),
                             0);
            assert_int_equal(vmbus_ring_publish(&fx->prod), 1);
            int rc = vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf));
            assert_int_equal(rc, round8(24 + 8 * n + len));

            struct vmbus_pkt pkt;
            assert_int_equal(vmbus_pkt_parse(fx->buf, (uint32_t)rc, &pkt), 0);
            assert_int_equal(pkt.type, VMBUS_PKT_DATA_USING_XFER_PAGES);
            assert_int_equal(pkt.flags, VMBUS_PKT_FLAG_COMPLETION_REQUESTED);
            assert_int_equal(pkt.trans_id, id);
            assert_int_equal(pkt.ext_len, 8 + 8 * n);
            assert_int_equal(pkt.payload_len, round8(len));
            assert_memory_equal(pkt.payload, fx->src, len);
            assert_true(all_zero(pkt.payload + len, pkt.payload_len - len));

            uint16_t pageset = 0;
            const struct vmbus_xfer_range *got = NULL;
            assert_int_equal(vmbus_pkt_xfer_pages(&pkt, &pageset, &got, 64), (int)n);
            assert_int_equal(pageset, 0xbe00 + a);
            assert_memory_equal(got, rg, 8 * n);
            assert_int_equal(pkt.ext[2], 0); /* sender_owns_set */
            assert_int_equal(pkt.ext[3], 0); /* reserved */
            assert_int_equal(vmbus_ring_release(&fx->cons), 0);
        }
    }
    assert_int_equal(vmbus_ring_put_xfer_pages(&fx->prod, 1, 0, rg, 0, NULL, 0), -EINVAL);
    assert_int_equal(vmbus_ring_put_xfer_pages(&fx->prod, 1, 0, rg, 65, NULL, 0), -EINVAL);
}

/* Build a GPA-direct header (reserved, count, ranges with PFNs) in ext. */
static uint32_t build_gpa_ext(uint8_t *ext, uint32_t count, const uint32_t *byte_count,
                              const uint32_t *byte_offset, uint64_t pfn_base)
{
    uint32_t hdr[2] = {0, count};
    memcpy(ext, hdr, sizeof(hdr));
    uint32_t off = sizeof(hdr);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t h[2] = {byte_count[i], byte_offset[i]};
        memcpy(ext + off, h, sizeof(h));
        off += sizeof(h);
        uint32_t npfn = (uint32_t)(((uint64_t)byte_offset[i] + byte_count[i] + PAGE - 1) / PAGE);
        for (uint32_t j = 0; j < npfn; j++) {
            uint64_t pfn = pfn_base + 0x100u * i + j;
            memcpy(ext + off, &pfn, sizeof(pfn));
            off += sizeof(pfn);
        }
    }
    return off;
}

static void put_gpa_direct__multi_range_packets__round_trip(void **state)
{
    struct fixture *fx = *state;
    const uint32_t bc[] = {1, 4096, 1514, 9000, 2, 60};
    const uint32_t bo[] = {0, 0, 4000, 100, 4095, 8};
    const uint32_t npfn[] = {1, 1, 2, 3, 2, 1};
    const uint32_t lens[] = {0, 1, 7, 8, 9, 200};
    uint8_t ext[512];
    for (uint32_t count = 1; count <= 6; count++) {
        uint32_t len = lens[count - 1];
        uint64_t id = 0xabc0 + count;
        uint64_t base = 0x123456789ull * count;
        uint32_t ext_len = build_gpa_ext(ext, count, bc, bo, base);
        fill_pattern(fx->src, len, id);
        struct iovec iov = {fx->src, len};
        assert_int_equal(vmbus_ring_put(&fx->prod, VMBUS_PKT_DATA_USING_GPA_DIRECT,
                                        VMBUS_PKT_FLAG_COMPLETION_REQUESTED, id, ext, ext_len, &iov,
                                        1),
                         0);
        assert_int_equal(vmbus_ring_publish(&fx->prod), 1);
        int rc = vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf));
        assert_int_equal(rc, round8(DESC_SIZE + ext_len + len));

        struct vmbus_pkt pkt;
        assert_int_equal(vmbus_pkt_parse(fx->buf, (uint32_t)rc, &pkt), 0);
        assert_int_equal(pkt.type, VMBUS_PKT_DATA_USING_GPA_DIRECT);
        assert_int_equal(pkt.trans_id, id);
        assert_int_equal(pkt.ext_len, ext_len);
        assert_memory_equal(pkt.payload, fx->src, len);
        assert_true(all_zero(pkt.payload + len, pkt.payload_len - len));

        struct vmbus_range rg[6];
        assert_int_equal(vmbus_pkt_gpa_direct(&pkt, rg, 6), (int)count);
        for (uint32_t i = 0; i < count; i++) {
            assert_int_equal(rg[i].byte_count, bc[i]);
            assert_int_equal(rg[i].byte_offset, bo[i]);
            assert_int_equal(rg[i].pfn_count, npfn[i]);
            for (uint32_t j = 0; j < npfn[i]; j++)
                assert_int_equal(vmbus_range_pfn(&rg[i], j), base + 0x100u * i + j);
        }
        assert_int_equal(vmbus_ring_release(&fx->cons), 0);
    }
}

/* --- wraparound --------------------------------------------------------- */

static uint32_t wrap_len_for(uint64_t id)
{
    uint32_t h = (uint32_t)(id * 2654435761u);
    return (h >> 7) % 8 == 0 ? 1200 + (h >> 11) % 1500 : (h >> 11) % 600;
}

static void put_get__many_packets_through_one_page__wrap_and_straddle_intact(void **state)
{
    struct fixture *fx = *state;
    uint32_t seed = 12345;
    uint64_t next_put = 1, next_get = 1;
    unsigned wraps = 0, straddles = 0;
    for (int round = 0; round < 4000; round++) {
        uint32_t batch = 1 + lcg(&seed) % 3;
        for (uint32_t b = 0; b < batch; b++) {
            uint32_t len = wrap_len_for(next_put);
            fill_pattern(fx->src, len, next_put);
            int rc =
                vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, next_put, fx->src, len);
            if (rc == -EAGAIN)
                break;
            assert_int_equal(rc, 0);
            next_put++;
        }
        assert_in_range(vmbus_ring_publish(&fx->prod), 0, 1);
        bool release_each = lcg(&seed) & 1;
        for (;;) {
            uint32_t start = fx->cons.rindex;
            int rc = vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf));
            if (rc == -EAGAIN)
                break;
            uint32_t len = wrap_len_for(next_get);
            assert_int_equal(rc, round8(DESC_SIZE + len));
            struct vmbus_pkt pkt;
            assert_int_equal(vmbus_pkt_parse(fx->buf, (uint32_t)rc, &pkt), 0);
            assert_int_equal(pkt.trans_id, next_get);
            assert_true(pattern_ok(pkt.payload, len, next_get));
            assert_true(all_zero(pkt.payload + len, pkt.payload_len - len));
            uint64_t trailer;
            memcpy(&trailer, fx->cv.data + start + (uint32_t)rc, sizeof(trailer));
            assert_int_equal(trailer, (uint64_t)start << 32);
            if (start + (uint32_t)rc + TRAILER > fx->dsize)
                straddles++;
            if (fx->cons.rindex <= start)
                wraps++;
            next_get++;
            if (release_each)
                assert_in_range(vmbus_ring_release(&fx->cons), 0, 1);
        }
        assert_in_range(vmbus_ring_release(&fx->cons), 0, 1);
    }
    assert_int_equal(next_get, next_put);
    assert_true(next_get > 4000);
    assert_true(wraps > 200);
    assert_true(straddles > 200);
    assert_int_equal(fx->prod.stats.bytes, fx->cons.stats.bytes);
    assert_no_errors(&fx->cons);
    assert_no_errors(&fx->prod);
}

/* --- full and empty ----------------------------------------------------- */

static void get__empty_ring__eagain(void **state)
{
    struct fixture *fx = *state;
    assert_true(vmbus_ring_empty(&fx->cons));
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EAGAIN);
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EAGAIN);
    assert_int_equal(vmbus_ring_release(&fx->cons), 0);
    assert_int_equal(fx->cons.stats.packets, 0);
    /* Staged but unpublished packets are invisible too. */
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 1, "abc", 3), 0);
    assert_true(vmbus_ring_empty(&fx->cons));
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EAGAIN);
    assert_no_errors(&fx->cons);
}

static void put__until_full__eagain_leaves_ring_never_exactly_full(void **state)
{
    struct fixture *fx = *state;
    /* Sizes that divide the data area exactly and sizes that do not. */
    const uint32_t pkt_sizes[] = {24, 32, 64, 72, 512, 1000, 1024, 2048, 2056, 4088};
    uint64_t id = 1;
    for (size_t i = 0; i < sizeof(pkt_sizes) / sizeof(pkt_sizes[0]); i++) {
        uint32_t size = pkt_sizes[i];
        uint32_t len = inband_payload_for(size);
        assert_int_equal(vmbus_ring_pkt_size(0, len), size);
        uint32_t expect = (fx->dsize - 8) / size;
        uint64_t full_before = fx->prod.stats.full;
        uint32_t n = fill_ring(fx, size, id);
        assert_int_equal(n, expect);
        assert_int_equal(fx->prod.stats.full, full_before + 1);
        assert_true(vmbus_ring_free_bytes(&fx->prod) < size);
        assert_int_equal(vmbus_ring_publish(&fx->prod), 1);
        uint32_t free_now = shared_free(fx);
        assert_true(free_now >= 8);
        assert_true(free_now <= size);
        assert_int_not_equal(fx->pv.hdr->write_index, fx->cv.hdr->read_index);
        assert_false(vmbus_ring_empty(&fx->cons));
        /* Still full after another try. */
        assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 0, NULL, 0) ==
                             0,
                         free_now > 24);
        if (free_now > 24) {
            n++;
            assert_int_equal(vmbus_ring_publish(&fx->prod), 0);
        }
        for (uint32_t k = 0; k < n; k++)
            assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
        assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EAGAIN);
        assert_int_equal(vmbus_ring_release(&fx->cons), 0);
        assert_int_equal(vmbus_ring_free_bytes(&fx->prod), fx->dsize - 8);
        id += n;
    }
}

static void put__packet_of_exactly_free_bytes__fits_and_leaves_8_bytes(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(vmbus_ring_free_bytes(&fx->prod), fx->dsize - 8);
    assert_int_equal(put_publish(fx, VMBUS_PKT_DATA_INBAND, 1, 1000), 0);
    uint32_t f = vmbus_ring_free_bytes(&fx->prod);
    assert_int_equal(f, fx->dsize - 8 - vmbus_ring_pkt_size(0, 1000));
    /* One byte more than what is free: refused; exactly what is free: fits. */
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 2, fx->src,
                                           inband_payload_for(f) + 1),
                     -EAGAIN);
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 2, fx->src,
                                           inband_payload_for(f)),
                     0);
    assert_int_equal(vmbus_ring_free_bytes(&fx->prod), 0);
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 3, NULL, 0),
                     -EAGAIN);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 0);
    assert_int_equal(shared_free(fx), 8);
}

static void put__packet_larger_than_ring__emsgsize_even_when_empty(void **state)
{
    struct fixture *fx = *state;
    uint32_t biggest = inband_payload_for(fx->dsize - 8);
    assert_int_equal(
        vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 1, fx->src, biggest + 1),
        -EMSGSIZE);
    assert_int_equal(
        vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 1, fx->src, fx->dsize),
        -EMSGSIZE);
    struct iovec huge[2] = {{fx->src, 0x7fffffff}, {fx->src, 0x7fffffff}};
    assert_int_equal(vmbus_ring_put(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 1, NULL, 0, huge, 2),
                     -EMSGSIZE);
    assert_int_equal(fx->prod.stats.full, 0);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 0);
    assert_true(vmbus_ring_empty(&fx->cons));
    /* The largest packet that can ever fit does fit an empty ring... */
    assert_int_equal(put_publish(fx, VMBUS_PKT_DATA_INBAND, 2, biggest), 0);
    assert_int_equal(shared_free(fx), 8);
    get_check(fx, VMBUS_PKT_DATA_INBAND, 2, biggest);
    assert_int_equal(vmbus_ring_release(&fx->cons), 0);
    /* ...and, with something in the ring, has to wait rather than fail. */
    assert_int_equal(put_publish(fx, VMBUS_PKT_DATA_INBAND, 3, 0), 0);
    assert_int_equal(
        vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 4, fx->src, biggest), -EAGAIN);
}

static void get__buffer_too_small__emsgsize_and_nothing_consumed(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(put_publish(fx, VMBUS_PKT_DATA_INBAND, 5, 100), 0);
    uint32_t len = round8(DESC_SIZE + 100);
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, 0), -EMSGSIZE);
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, 16), -EMSGSIZE);
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, len - 1), -EMSGSIZE);
    assert_int_equal(fx->cons.rindex, 0);
    assert_int_equal(fx->cons.stats.packets, 0);
    assert_false(vmbus_ring_empty(&fx->cons));
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, len), (int)len);
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, len), -EAGAIN);
    assert_no_errors(&fx->cons);
}

static void release__after_get__space_returns_to_producer(void **state)
{
    struct fixture *fx = *state;
    uint32_t size = 512, len = inband_payload_for(size);
    uint64_t id = 1 + fill_ring(fx, size, 1);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 1);
    uint32_t f0 = vmbus_ring_free_bytes(&fx->prod);
    assert_true(f0 < size);
    assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
    assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
    /* Got but not released: the producer may not reuse the space yet. */
    assert_int_equal(vmbus_ring_free_bytes(&fx->prod), f0);
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, id, fx->src, len),
                     -EAGAIN);
    assert_int_equal(vmbus_ring_release(&fx->cons), 0);
    assert_int_equal(fx->cv.hdr->read_index, 2 * size);
    assert_int_equal(vmbus_ring_free_bytes(&fx->prod), f0 + 2 * size);
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, id, fx->src, len),
                     0);
    assert_int_equal(
        vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, id + 1, fx->src, len), 0);
    assert_int_equal(
        vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, id + 2, fx->src, len), -EAGAIN);
}

/* --- corruption --------------------------------------------------------- */

static void get__write_index_out_of_range__eproto_sticky(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(put_publish(fx, VMBUS_PKT_DATA_INBAND, 1, 10), 0);
    fx->pv.hdr->write_index = fx->dsize;
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EPROTO);
    assert_only_error(&fx->cons, VMBUS_RING_ERR_WRITE_INDEX);
    assert_consumer_sticky(fx, VMBUS_RING_ERR_WRITE_INDEX);
}

static void get__write_index_unaligned__eproto_sticky(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(put_publish(fx, VMBUS_PKT_DATA_INBAND, 1, 10), 0);
    fx->pv.hdr->write_index = 36;
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EPROTO);
    assert_only_error(&fx->cons, VMBUS_RING_ERR_WRITE_INDEX);
    assert_consumer_sticky(fx, VMBUS_RING_ERR_WRITE_INDEX);
}

static void empty__write_index_garbage__reads_not_empty_then_get_fails(void **state)
{
    struct fixture *fx = *state;
    fx->pv.hdr->write_index = 0xfffffff0u;
    assert_false(vmbus_ring_empty(&fx->cons));
    assert_true(vmbus_ring_intr_unmask(&fx->cons));
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EPROTO);
    assert_consumer_sticky(fx, VMBUS_RING_ERR_WRITE_INDEX);
}

static void put__read_index_out_of_range__eproto_sticky(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(put_publish(fx, VMBUS_PKT_DATA_INBAND, 1, 10), 0);
    fx->cv.hdr->read_index = fx->dsize + 8;
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 2, "x", 1),
                     -EPROTO);
    assert_only_error(&fx->prod, VMBUS_RING_ERR_READ_INDEX);
    assert_producer_sticky(fx, VMBUS_RING_ERR_READ_INDEX);
}

static void put__read_index_unaligned__eproto_sticky(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(put_publish(fx, VMBUS_PKT_DATA_INBAND, 1, 10), 0);
    fx->cv.hdr->read_index = 4;
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 2, "x", 1),
                     -EPROTO);
    assert_only_error(&fx->prod, VMBUS_RING_ERR_READ_INDEX);
    assert_producer_sticky(fx, VMBUS_RING_ERR_READ_INDEX);
}

static void publish__read_index_corrupted_after_put__eproto_sticky(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 1, "x", 1), 0);
    fx->cv.hdr->read_index = 0xffffffffu;
    assert_int_equal(vmbus_ring_publish(&fx->prod), -EPROTO);
    assert_only_error(&fx->prod, VMBUS_RING_ERR_READ_INDEX);
    assert_producer_sticky(fx, VMBUS_RING_ERR_READ_INDEX);
}

static void free_bytes__read_index_corrupted__zero_and_sticky(void **state)
{
    struct fixture *fx = *state;
    fx->cv.hdr->read_index = 2 * fx->dsize;
    assert_int_equal(vmbus_ring_free_bytes(&fx->prod), 0);
    assert_only_error(&fx->prod, VMBUS_RING_ERR_READ_INDEX);
    assert_producer_sticky(fx, VMBUS_RING_ERR_READ_INDEX);
}

static void arm_space__read_index_corrupted__eproto_sticky(void **state)
{
    struct fixture *fx = *state;
    fx->cv.hdr->read_index = 12;
    assert_int_equal(vmbus_ring_arm_space(&fx->prod, 64), -EPROTO);
    assert_only_error(&fx->prod, VMBUS_RING_ERR_READ_INDEX);
    assert_producer_sticky(fx, VMBUS_RING_ERR_READ_INDEX);
}

static void get__offset8_below_2__eproto_desc(void **state)
{
    struct fixture *fx = *state;
    for (uint16_t off8 = 0; off8 < 2; off8++) {
        vmbus_ring_format(fx->pv.hdr);
        assert_int_equal(
            vmbus_ring_init_consumer(&fx->cons, fx->cv.hdr, fx->dsize, VMBUS_RING_TYPES_DEFAULT),
            0);
        poke_desc(fx, 0, VMBUS_PKT_DATA_INBAND, off8, 4, 0, 1);
        fx->pv.hdr->write_index = 40;
        assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EPROTO);
        assert_only_error(&fx->cons, VMBUS_RING_ERR_DESC);
        assert_consumer_sticky(fx, VMBUS_RING_ERR_DESC);
    }
}

static void get__len8_below_offset8__eproto_desc(void **state)
{
    struct fixture *fx = *state;
    poke_desc(fx, 0, VMBUS_PKT_DATA_INBAND, 4, 3, 0, 1);
    fx->pv.hdr->write_index = 64;
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EPROTO);
    assert_only_error(&fx->cons, VMBUS_RING_ERR_DESC);
    assert_consumer_sticky(fx, VMBUS_RING_ERR_DESC);
}

static void get__len8_beyond_available__eproto_desc(void **state)
{
    struct fixture *fx = *state;
    /* Available bytes cover the packet but not its trailer. */
    const uint16_t len8s[] = {8, 9, 0xffff};
    for (size_t i = 0; i < 3; i++) {
        vmbus_ring_format(fx->pv.hdr);
        assert_int_equal(
            vmbus_ring_init_consumer(&fx->cons, fx->cv.hdr, fx->dsize, VMBUS_RING_TYPES_DEFAULT),
            0);
        poke_desc(fx, 0, VMBUS_PKT_DATA_INBAND, 2, len8s[i], 0, 1);
        fx->pv.hdr->write_index = 64;
        assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EPROTO);
        assert_only_error(&fx->cons, VMBUS_RING_ERR_DESC);
        assert_consumer_sticky(fx, VMBUS_RING_ERR_DESC);
    }
}

static void get__len8_beyond_available_across_the_end__eproto_desc(void **state)
{
    struct fixture *fx = *state;
    uint32_t at = fx->dsize - 16;
    fx->pv.hdr->write_index = at;
    fx->pv.hdr->read_index = at;
    assert_int_equal(
        vmbus_ring_init_consumer(&fx->cons, fx->cv.hdr, fx->dsize, VMBUS_RING_TYPES_DEFAULT), 0);
    poke_desc(fx, at, VMBUS_PKT_DATA_INBAND, 2, 6, 0, 1);
    fx->pv.hdr->write_index = 32; /* 48 bytes available, the packet needs 56 */
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EPROTO);
    assert_only_error(&fx->cons, VMBUS_RING_ERR_DESC);
    assert_consumer_sticky(fx, VMBUS_RING_ERR_DESC);
}

static void get__unknown_flags__eproto_flags(void **state)
{
    struct fixture *fx = *state;
    const uint16_t flags[] = {2, 0x8000, 0xffff};
    for (size_t i = 0; i < 3; i++) {
        vmbus_ring_format(fx->pv.hdr);
        assert_int_equal(
            vmbus_ring_init_consumer(&fx->cons, fx->cv.hdr, fx->dsize, VMBUS_RING_TYPES_DEFAULT),
            0);
        poke_desc(fx, 0, VMBUS_PKT_DATA_INBAND, 2, 4, flags[i], 1);
        fx->pv.hdr->write_index = 40;
        assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EPROTO);
        assert_only_error(&fx->cons, VMBUS_RING_ERR_FLAGS);
        assert_consumer_sticky(fx, VMBUS_RING_ERR_FLAGS);
    }
}

static void get__type_not_in_mask__eproto_type(void **state)
{
    struct fixture *fx = *state;
    /* A guest->host ring of a netvsc channel: transfer pages not accepted. */
    const uint32_t mask = (1u << VMBUS_PKT_DATA_INBAND) | (1u << VMBUS_PKT_DATA_USING_GPA_DIRECT) |
                          (1u << VMBUS_PKT_COMP);
    const uint16_t types[] = {0, 1, VMBUS_PKT_DATA_USING_XFER_PAGES, 8, 31, 32, 38, 0xffff};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        vmbus_ring_format(fx->pv.hdr);
        assert_int_equal(vmbus_ring_init_consumer(&fx->cons, fx->cv.hdr, fx->dsize, mask), 0);
        poke_desc(fx, 0, types[i], 2, 4, 0, 1);
        fx->pv.hdr->write_index = 40;
        assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EPROTO);
        assert_only_error(&fx->cons, VMBUS_RING_ERR_TYPE);
        assert_consumer_sticky(fx, VMBUS_RING_ERR_TYPE);
    }
}

static void get__fewer_than_24_bytes__eproto_truncated(void **state)
{
    struct fixture *fx = *state;
    const uint32_t avail[] = {8, 16};
    for (size_t i = 0; i < 2; i++) {
        vmbus_ring_format(fx->pv.hdr);
        assert_int_equal(
            vmbus_ring_init_consumer(&fx->cons, fx->cv.hdr, fx->dsize, VMBUS_RING_TYPES_DEFAULT),
            0);
        poke_desc(fx, 0, VMBUS_PKT_DATA_INBAND, 2, 2, 0, 1);
        fx->pv.hdr->write_index = avail[i];
        assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EPROTO);
        assert_only_error(&fx->cons, VMBUS_RING_ERR_TRUNCATED);
        assert_consumer_sticky(fx, VMBUS_RING_ERR_TRUNCATED);
    }
}

static void get__corrupt_packet_after_good_ones__good_ones_delivered_first(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(put_publish(fx, VMBUS_PKT_DATA_INBAND, 1, 10), 0);
    assert_int_equal(put_publish(fx, VMBUS_PKT_DATA_INBAND, 2, 20), 0);
    uint32_t at = fx->pv.hdr->write_index;
    poke_desc(fx, at, VMBUS_PKT_DATA_INBAND, 2, 4, 0x10, 3);
    fx->pv.hdr->write_index = at + 40;
    get_check(fx, VMBUS_PKT_DATA_INBAND, 1, 10);
    get_check(fx, VMBUS_PKT_DATA_INBAND, 2, 20);
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EPROTO);
    assert_int_equal(fx->cons.stats.errors[VMBUS_RING_ERR_FLAGS], 1);
    /* The good packets' space is not published by a corrupt ring. */
    assert_int_equal(vmbus_ring_release(&fx->cons), -EPROTO);
    assert_int_equal(fx->cv.hdr->read_index, 0);
}

static void release__write_index_corrupted_while_producer_waits__eproto(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(fill_ring(fx, 512, 1), 7);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 1);
    assert_int_equal(vmbus_ring_arm_space(&fx->prod, 1024), 0);
    assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
    fx->pv.hdr->write_index = 3;
    assert_int_equal(vmbus_ring_release(&fx->cons), -EPROTO);
    assert_only_error(&fx->cons, VMBUS_RING_ERR_WRITE_INDEX);
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EPROTO);
}

/* --- TOCTOU ------------------------------------------------------------- */

static void get__shared_descriptor_rewritten_after_get__copy_unaffected(void **state)
{
    struct fixture *fx = *state;
    fill_pattern(fx->src, 40, 0x77);
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND,
                                           VMBUS_PKT_FLAG_COMPLETION_REQUESTED, 0x77, fx->src, 40),
                     0);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 1);
    int rc = vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf));
    assert_int_equal(rc, 56);
    /* The peer rewrites the packet it just handed over. */
    poke_desc(fx, 0, 0x1f, 0, 0xffff, 0xffff, 0xdeadbeef);
    memset(fx->pv.data + DESC_SIZE, 0xee, 40);

    struct vmbus_pkt pkt;
    assert_int_equal(vmbus_pkt_parse(fx->buf, (uint32_t)rc, &pkt), 0);
    assert_int_equal(pkt.type, VMBUS_PKT_DATA_INBAND);
    assert_int_equal(pkt.flags, VMBUS_PKT_FLAG_COMPLETION_REQUESTED);
    assert_int_equal(pkt.trans_id, 0x77);
    assert_int_equal(pkt.payload_len, 40);
    assert_memory_equal(pkt.payload, fx->src, 40);
    /* The consumer does not look at a consumed packet again. */
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EAGAIN);
    assert_int_equal(vmbus_ring_release(&fx->cons), 0);
    assert_no_errors(&fx->cons);
}

#if defined(__x86_64__)
/*
 * A peer that rewrites the descriptor between any two reads the consumer
 * makes of it. The consumer's view of the data page is made inaccessible;
 * every instruction that touches it faults, is let through for exactly that
 * one instruction (trap flag), and then the peer, through its own view, bumps
 * len8. Each read of the descriptor therefore sees a larger len8 than the
 * read before it.
 */
static struct {
    uint8_t *page;      /* the consumer's view of the descriptor's page */
    uint8_t *peer_desc; /* the same descriptor through the producer's view */
    volatile unsigned accesses;
    struct sigaction old_segv;
} grower;

#define X86_TRAP_FLAG 0x100

static void grower_segv(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;
    uint8_t *addr = si->si_addr;
    if (addr < grower.page || addr >= grower.page + PAGE) {
        sigaction(sig, &grower.old_segv, NULL); /* a real crash: fault again */
        return;
    }
    mprotect(grower.page, PAGE, PROT_READ);
    uc->uc_mcontext.gregs[REG_EFL] |= X86_TRAP_FLAG;
}

static void grower_trap(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)si;
    ucontext_t *uc = ctx;
    uc->uc_mcontext.gregs[REG_EFL] &= ~(greg_t)X86_TRAP_FLAG;
    mprotect(grower.page, PAGE, PROT_NONE);
    grower.accesses++;
    uint16_t len8 = (uint16_t)(4 + grower.accesses);
    memcpy(grower.peer_desc + 4, &len8, sizeof(len8));
}

static void get__descriptor_rewritten_between_reads__copy_carries_validated_one(void **state)
{
    struct fixture *fx = *state;
    poke_desc(fx, 0, VMBUS_PKT_DATA_INBAND, 2, 4, 0, 0x8888);
    fx->pv.hdr->write_index = fx->dsize - 8; /* any len8 the peer reaches fits */
    grower.page = fx->cv.data;
    grower.peer_desc = fx->pv.data;
    grower.accesses = 0;

    struct sigaction sa = {.sa_flags = SA_SIGINFO}, old_trap;
    sigemptyset(&sa.sa_mask);
    sa.sa_sigaction = grower_segv;
    assert_int_equal(sigaction(SIGSEGV, &sa, &grower.old_segv), 0);
    sa.sa_sigaction = grower_trap;
    assert_int_equal(sigaction(SIGTRAP, &sa, &old_trap), 0);
    assert_int_equal(mprotect(grower.page, PAGE, PROT_NONE), 0);
    int rc = vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf));
    mprotect(grower.page, PAGE, PROT_READ | PROT_WRITE);
    sigaction(SIGTRAP, &old_trap, NULL);
    sigaction(SIGSEGV, &grower.old_segv, NULL);

    /* Read for validation, then read again for the copy: the peer got in. */
    assert_true(grower.accesses >= 2);
    assert_true(rc >= 32 && rc < (int)(8 * (4 + grower.accesses)));
    struct vmbus_pkt_desc d;
    memcpy(&d, fx->buf, sizeof(d));
    assert_int_equal((uint32_t)d.len8 * 8u, (uint32_t)rc);
    assert_int_equal(fx->cons.rindex, (uint32_t)rc + TRAILER);
    struct vmbus_pkt pkt;
    assert_int_equal(vmbus_pkt_parse(fx->buf, (uint32_t)rc, &pkt), 0);
    assert_int_equal(pkt.trans_id, 0x8888);
}
#else
static void get__descriptor_rewritten_between_reads__copy_carries_validated_one(void **state)
{
    (void)state;
    skip();
}
#endif

/* --- signalling --------------------------------------------------------- */

static void publish__consumer_drained_and_unmasked__signals(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 1, "a", 1), 0);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 1);
    assert_int_equal(fx->prod.stats.signals, 1);
    /* Drained and released: the next publish signals again. */
    assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
    assert_int_equal(vmbus_ring_release(&fx->cons), 0);
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 2, "b", 1), 0);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 1);
    assert_int_equal(fx->prod.stats.signals, 2);
}

static void publish__nothing_staged__no_signal(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(vmbus_ring_publish(&fx->prod), 0);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 0);
    assert_int_equal(fx->prod.stats.signals, 0);
    assert_int_equal(fx->pv.hdr->write_index, 0);
}

static void publish__interrupts_masked__no_signal(void **state)
{
    struct fixture *fx = *state;
    vmbus_ring_intr_mask(&fx->cons);
    assert_int_equal(fx->cv.hdr->interrupt_mask, 1);
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 1, "a", 1), 0);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 0);
    assert_int_equal(fx->prod.stats.signals, 0);
    /* Unmasking finds the data that arrived meanwhile. */
    assert_true(vmbus_ring_intr_unmask(&fx->cons));
    assert_int_equal(fx->cv.hdr->interrupt_mask, 0);
}

static void publish__consumer_behind__no_signal(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(put_publish(fx, VMBUS_PKT_DATA_INBAND, 1, 8), 0);
    assert_int_equal(fx->prod.stats.signals, 1);
    /* Nothing read yet. */
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 2, "a", 1), 0);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 0);
    /* Read but not released: still behind as far as the producer can see. */
    assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
    assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 3, "a", 1), 0);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 0);
    /* Released up to an older write index: still behind. */
    assert_int_equal(vmbus_ring_release(&fx->cons), 0);
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 4, "a", 1), 0);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 0);
    assert_int_equal(fx->prod.stats.signals, 1);
}

static void publish__batch_of_puts__at_most_one_signal(void **state)
{
    struct fixture *fx = *state;
    for (uint64_t id = 1; id <= 10; id++)
        assert_int_equal(
            vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, id, fx->src, 30), 0);
    assert_true(vmbus_ring_empty(&fx->cons));
    assert_int_equal(vmbus_ring_publish(&fx->prod), 1);
    assert_int_equal(vmbus_ring_publish(&fx->prod), 0);
    assert_int_equal(fx->prod.stats.signals, 1);
    assert_int_equal(fx->pv.hdr->write_index, 10 * vmbus_ring_pkt_size(0, 30));
    for (int i = 0; i < 10; i++)
        assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
    assert_int_equal(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)), -EAGAIN);
}

static void intr_unmask__ring_empty__returns_false(void **state)
{
    struct fixture *fx = *state;
    vmbus_ring_intr_mask(&fx->cons);
    assert_false(vmbus_ring_intr_unmask(&fx->cons));
    assert_int_equal(fx->cv.hdr->interrupt_mask, 0);
    /* After draining too. */
    assert_int_equal(put_publish(fx, VMBUS_PKT_DATA_INBAND, 1, 8), 0);
    assert_true(vmbus_ring_intr_unmask(&fx->cons));
    assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
    assert_false(vmbus_ring_intr_unmask(&fx->cons));
}

/* Fill a one-page ring with 512-byte packets: 7 fit, 512 bytes stay free. */
static void fill_with_512(struct fixture *fx)
{
    assert_int_equal(fill_ring(fx, 512, 1), 7);
    assert_in_range(vmbus_ring_publish(&fx->prod), 0, 1);
    assert_int_equal(shared_free(fx), 512);
}

static void release__free_space_crosses_pending_send_sz__signals_once(void **state)
{
    struct fixture *fx = *state;
    fill_with_512(fx);
    /* Waiting for a 1536-byte packet: needs 1544 free. */
    assert_int_equal(vmbus_ring_arm_space(&fx->prod, 1536), 0);
    assert_int_equal(fx->pv.hdr->pending_send_sz, 1544);
    const int expect[] = {0, 0, 1, 0, 0, 0, 0};
    for (int i = 0; i < 7; i++) {
        assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
        assert_int_equal(vmbus_ring_release(&fx->cons), expect[i]);
    }
    assert_int_equal(fx->cons.stats.signals, 1);
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 9, fx->src,
                                           inband_payload_for(1536)),
                     0);
    /* A successful put withdraws the request. */
    assert_int_equal(fx->pv.hdr->pending_send_sz, 0);
}

static void release__batched_gets_crossing_threshold__one_signal(void **state)
{
    struct fixture *fx = *state;
    fill_with_512(fx);
    assert_int_equal(vmbus_ring_arm_space(&fx->prod, 1024), 0);
    for (int i = 0; i < 5; i++)
        assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
    assert_int_equal(vmbus_ring_release(&fx->cons), 1);
    assert_int_equal(vmbus_ring_release(&fx->cons), 0);
    assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
    assert_int_equal(vmbus_ring_release(&fx->cons), 0);
    assert_int_equal(fx->cons.stats.signals, 1);
}

static void release__no_pending_request__never_signals(void **state)
{
    struct fixture *fx = *state;
    fill_with_512(fx);
    for (int i = 0; i < 7; i++) {
        assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
        assert_int_equal(vmbus_ring_release(&fx->cons), 0);
    }
    assert_int_equal(fx->cons.stats.signals, 0);
}

static void release__producer_without_feature_bit__never_signals(void **state)
{
    struct fixture *fx = *state;
    fill_with_512(fx);
    fx->pv.hdr->feature_bits = 0;
    fx->pv.hdr->pending_send_sz = 1024;
    for (int i = 0; i < 7; i++) {
        assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
        assert_int_equal(vmbus_ring_release(&fx->cons), 0);
    }
}

static void release__pending_send_sz_unaligned_hint__low_bits_ignored(void **state)
{
    struct fixture *fx = *state;
    fill_with_512(fx);
    /* Read as 1024: reached exactly by the first release. */
    fx->pv.hdr->pending_send_sz = 1024 + 7;
    assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
    assert_int_equal(vmbus_ring_release(&fx->cons), 1);
    /* "ring size - 1", as some producers write: read as dsize - 8. */
    fx->pv.hdr->pending_send_sz = fx->dsize - 1;
    for (int i = 0; i < 5; i++) {
        assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
        assert_int_equal(vmbus_ring_release(&fx->cons), 0);
    }
    assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
    assert_int_equal(vmbus_ring_release(&fx->cons), 1);
}

static void arm_space__space_already_free__returns_1(void **state)
{
    struct fixture *fx = *state;
    assert_int_equal(vmbus_ring_arm_space(&fx->prod, 512), 1);
    fill_with_512(fx);
    assert_int_equal(vmbus_ring_arm_space(&fx->prod, 504), 1);
    assert_int_equal(vmbus_ring_arm_space(&fx->prod, 512), 0);
    /* Released before the request was made: arm_space sees it itself. */
    assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
    fx->pv.hdr->pending_send_sz = 0;
    assert_int_equal(vmbus_ring_release(&fx->cons), 0);
    assert_int_equal(vmbus_ring_arm_space(&fx->prod, 512), 1);
}

/*
 * The largest packet put() accepts (pkt_size == dsize - 8) has to wait when
 * the ring is not empty; arm_space() must let the producer wait for it, and
 * the consumer's release that empties the ring must signal.
 * Fails against hv-core as of this test: arm_space() returns -EMSGSIZE.
 */
static void arm_space__largest_packet_put_accepts__armed_and_signalled(void **state)
{
    struct fixture *fx = *state;
    uint32_t biggest = fx->dsize - 8;
    assert_int_equal(put_publish(fx, VMBUS_PKT_DATA_INBAND, 1, 0), 0);
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 2, fx->src,
                                           inband_payload_for(biggest)),
                     -EAGAIN);
    assert_int_equal(vmbus_ring_arm_space(&fx->prod, biggest), 0);
    assert_true(vmbus_ring_get(&fx->cons, fx->buf, sizeof(fx->buf)) > 0);
    assert_int_equal(vmbus_ring_release(&fx->cons), 1);
    assert_int_equal(vmbus_ring_put_inband(&fx->prod, VMBUS_PKT_DATA_INBAND, 0, 2, fx->src,
                                           inband_payload_for(biggest)),
                     0);
}

/* A size no packet can have is refused, not armed as a tiny request.
 * Fails against hv-core as of this test: bytes + 8 wraps and it returns 1. */
static void arm_space__size_beyond_ring__emsgsize_not_armed(void **state)
{
    struct fixture *fx = *state;
    const uint32_t bad[] = {fx->dsize, fx->dsize + 8, 0xfffffff8u, 0xffffffffu};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(vmbus_ring_arm_space(&fx->prod, bad[i]), -EMSGSIZE);
        assert_int_equal(fx->pv.hdr->pending_send_sz, 0);
    }
}

/* --- parsers ------------------------------------------------------------ */

static void put_range(uint8_t *p, uint32_t byte_count, uint32_t byte_offset)
{
    uint32_t h[2] = {byte_count, byte_offset};
    memcpy(p, h, sizeof(h));
}

static void parse_gpa_ranges__byte_offset_4096_or_more__eproto(void **state)
{
    (void)state;
    uint8_t b[64] = {0};
    struct vmbus_range rg[4];
    put_range(b, 1, 4095);
    assert_int_equal(vmbus_parse_gpa_ranges(b, 16, 1, rg, 4), 16);
    const uint32_t offs[] = {4096, 4097, 8192, 0xffffffffu};
    for (size_t i = 0; i < 4; i++) {
        put_range(b, 1, offs[i]);
        assert_int_equal(vmbus_parse_gpa_ranges(b, sizeof(b), 1, rg, 4), -EPROTO);
    }
}

static void parse_gpa_ranges__byte_count_zero__eproto(void **state)
{
    (void)state;
    uint8_t b[64] = {0};
    struct vmbus_range rg[4];
    put_range(b, 0, 0);
    assert_int_equal(vmbus_parse_gpa_ranges(b, sizeof(b), 1, rg, 4), -EPROTO);
    /* The second of two ranges. */
    put_range(b, 10, 0);
    put_range(b + 16, 0, 100);
    assert_int_equal(vmbus_parse_gpa_ranges(b, sizeof(b), 2, rg, 4), -EPROTO);
}

static void parse_gpa_ranges__pfns_beyond_buffer__eproto(void **state)
{
    (void)state;
    uint8_t b[64] = {0};
    struct vmbus_range rg[4];
    /* Needs two PFNs, 16 bytes after the 8-byte header. */
    put_range(b, 2, 4095);
    assert_int_equal(vmbus_parse_gpa_ranges(b, 24, 1, rg, 4), 24);
    assert_int_equal(vmbus_parse_gpa_ranges(b, 23, 1, rg, 4), -EPROTO);
    assert_int_equal(vmbus_parse_gpa_ranges(b, 16, 1, rg, 4), -EPROTO);
    /* A range header cut short, and none at all. */
    assert_int_equal(vmbus_parse_gpa_ranges(b, 7, 1, rg, 4), -EPROTO);
    assert_int_equal(vmbus_parse_gpa_ranges(b, 0, 1, rg, 4), -EPROTO);
    /* A byte count so large its PFN array cannot be anywhere near the buffer. */
    put_range(b, 0xffffffffu, 4095);
    assert_int_equal(vmbus_parse_gpa_ranges(b, sizeof(b), 1, rg, 4), -EPROTO);
    /* The second range runs past the end. */
    put_range(b, 4096, 0);
    put_range(b + 16, 4096 * 5, 0);
    assert_int_equal(vmbus_parse_gpa_ranges(b, sizeof(b), 2, rg, 4), 64);
    put_range(b + 16, 4096 * 5 + 1, 0);
    assert_int_equal(vmbus_parse_gpa_ranges(b, sizeof(b), 2, rg, 4), -EPROTO);
}

static void parse_gpa_ranges__more_than_max_ranges__eproto(void **state)
{
    (void)state;
    uint8_t b[256] = {0};
    struct vmbus_range rg[8];
    for (int i = 0; i < 8; i++)
        put_range(b + 16 * i, 8, 0);
    assert_int_equal(vmbus_parse_gpa_ranges(b, sizeof(b), 8, rg, 8), 128);
    assert_int_equal(vmbus_parse_gpa_ranges(b, sizeof(b), 8, rg, 7), -EPROTO);
    assert_int_equal(vmbus_parse_gpa_ranges(b, sizeof(b), 0xffffffffu, rg, 8), -EPROTO);
}

static void parse_gpa_ranges__valid_multi_range__pfn_counts_right(void **state)
{
    (void)state;
    const uint32_t bc[] = {4096, 1, 2, 8192, 4097, 1514};
    const uint32_t bo[] = {0, 4095, 4095, 100, 0, 3000};
    const uint32_t npfn[] = {1, 1, 2, 3, 2, 2};
    uint8_t b[512];
    uint32_t used = build_gpa_ext(b, 6, bc, bo, 0x5000) - 8;
    struct vmbus_range rg[6];
    assert_int_equal(vmbus_parse_gpa_ranges(b + 8, used, 6, rg, 6), (int)used);
    assert_int_equal(used, 6 * 8 + 8 * (1 + 1 + 2 + 3 + 2 + 2));
    for (int i = 0; i < 6; i++) {
        assert_int_equal(rg[i].byte_count, bc[i]);
        assert_int_equal(rg[i].byte_offset, bo[i]);
        assert_int_equal(rg[i].pfn_count, npfn[i]);
        for (uint32_t j = 0; j < npfn[i]; j++)
            assert_int_equal(vmbus_range_pfn(&rg[i], j), 0x5000u + 0x100u * (uint32_t)i + j);
    }
    /* Trailing bytes after the records are not the parser's business. */
    assert_int_equal(vmbus_parse_gpa_ranges(b + 8, used + 16, 6, rg, 6), (int)used);
    assert_int_equal(vmbus_parse_gpa_ranges(b + 8, used, 0, rg, 6), 0);
}

/* Build a whole packet copy in b: descriptor, ext, payload. */
static uint32_t build_pkt(uint8_t *b, uint16_t type, const void *ext, uint32_t ext_len,
                          uint32_t payload_len)
{
    uint32_t len = DESC_SIZE + ext_len + round8(payload_len);
    struct vmbus_pkt_desc d = {.type = type,
                               .offset8 = (uint16_t)((DESC_SIZE + ext_len) / 8),
                               .len8 = (uint16_t)(len / 8),
                               .flags = 0,
                               .trans_id = 1};
    memcpy(b, &d, sizeof(d));
    if (ext_len)
        memcpy(b + DESC_SIZE, ext, ext_len);
    memset(b + DESC_SIZE + ext_len, 0x3c, round8(payload_len));
    return len;
}

static void pkt_gpa_direct__bad_headers__eproto(void **state)
{
    (void)state;
    const uint32_t bc[] = {100};
    const uint32_t bo[] = {0};
    uint8_t ext[64], b[256];
    struct vmbus_pkt pkt;
    struct vmbus_range rg[4];
    uint32_t ext_len = build_gpa_ext(ext, 1, bc, bo, 7);
    uint32_t len = build_pkt(b, VMBUS_PKT_DATA_USING_GPA_DIRECT, ext, ext_len, 10);
    assert_int_equal(vmbus_pkt_parse(b, len, &pkt), 0);
    assert_int_equal(vmbus_pkt_gpa_direct(&pkt, rg, 4), 1);
    assert_int_equal(vmbus_range_pfn(&rg[0], 0), 7);
    /* Wrong type. */
    len = build_pkt(b, VMBUS_PKT_DATA_INBAND, ext, ext_len, 10);
    assert_int_equal(vmbus_pkt_parse(b, len, &pkt), 0);
    assert_int_equal(vmbus_pkt_gpa_direct(&pkt, rg, 4), -EPROTO);
    /* No ranges. */
    uint32_t zero[2] = {0, 0};
    len = build_pkt(b, VMBUS_PKT_DATA_USING_GPA_DIRECT, zero, 8, 10);
    assert_int_equal(vmbus_pkt_parse(b, len, &pkt), 0);
    assert_int_equal(vmbus_pkt_gpa_direct(&pkt, rg, 4), -EPROTO);
    /* No room for the header. */
    len = build_pkt(b, VMBUS_PKT_DATA_USING_GPA_DIRECT, NULL, 0, 24);
    assert_int_equal(vmbus_pkt_parse(b, len, &pkt), 0);
    assert_int_equal(vmbus_pkt_gpa_direct(&pkt, rg, 4), -EPROTO);
    /* A range count beyond the header, though the payload would hold it. */
    uint32_t two[2] = {0, 2};
    memcpy(ext, two, sizeof(two));
    len = build_pkt(b, VMBUS_PKT_DATA_USING_GPA_DIRECT, ext, ext_len, 64);
    assert_int_equal(vmbus_pkt_parse(b, len, &pkt), 0);
    assert_int_equal(vmbus_pkt_gpa_direct(&pkt, rg, 4), -EPROTO);
    /* More ranges than the caller has room for. */
    const uint32_t bc2[] = {100, 200};
    const uint32_t bo2[] = {0, 0};
    ext_len = build_gpa_ext(ext, 2, bc2, bo2, 7);
    len = build_pkt(b, VMBUS_PKT_DATA_USING_GPA_DIRECT, ext, ext_len, 0);
    assert_int_equal(vmbus_pkt_parse(b, len, &pkt), 0);
    assert_int_equal(vmbus_pkt_gpa_direct(&pkt, rg, 2), 2);
    assert_int_equal(vmbus_pkt_gpa_direct(&pkt, rg, 1), -EPROTO);
}

static void pkt_xfer_pages__range_count_beyond_header__eproto(void **state)
{
    (void)state;
    uint8_t ext[8 + 3 * 8] = {0};
    uint8_t b[256];
    struct vmbus_pkt pkt;
    uint16_t pageset = 0;
    const struct vmbus_xfer_range *rg = NULL;
    ext[0] = 0x34;
    ext[1] = 0x12;
    uint32_t count = 3;
    memcpy(ext + 4, &count, 4);
    uint32_t len = build_pkt(b, VMBUS_PKT_DATA_USING_XFER_PAGES, ext, sizeof(ext), 40);
    assert_int_equal(vmbus_pkt_parse(b, len, &pkt), 0);
    assert_int_equal(vmbus_pkt_xfer_pages(&pkt, &pageset, &rg, 8), 3);
    assert_int_equal(pageset, 0x1234);
    assert_ptr_equal(rg, (const void *)(b + DESC_SIZE + 8));
    assert_int_equal(vmbus_pkt_xfer_pages(&pkt, &pageset, &rg, 2), -EPROTO);

    const uint32_t bad[] = {0, 4, 5, 0xffffffffu};
    for (size_t i = 0; i < 4; i++) {
        memcpy(ext + 4, &bad[i], 4);
        len = build_pkt(b, VMBUS_PKT_DATA_USING_XFER_PAGES, ext, sizeof(ext), 40);
        assert_int_equal(vmbus_pkt_parse(b, len, &pkt), 0);
        assert_int_equal(vmbus_pkt_xfer_pages(&pkt, &pageset, &rg, 0xffffffffu), -EPROTO);
    }
    /* Wrong type; no room for the header. */
    len = build_pkt(b, VMBUS_PKT_DATA_INBAND, ext, sizeof(ext), 0);
    assert_int_equal(vmbus_pkt_parse(b, len, &pkt), 0);
    assert_int_equal(vmbus_pkt_xfer_pages(&pkt, &pageset, &rg, 8), -EPROTO);
    len = build_pkt(b, VMBUS_PKT_DATA_USING_XFER_PAGES, NULL, 0, 32);
    assert_int_equal(vmbus_pkt_parse(b, len, &pkt), 0);
    assert_int_equal(vmbus_pkt_xfer_pages(&pkt, &pageset, &rg, 8), -EPROTO);
}

static void pkt_parse__inconsistent_copy__eproto(void **state)
{
    (void)state;
    uint8_t b[64] = {0};
    struct vmbus_pkt pkt;
    struct vmbus_pkt_desc d = {.type = 6, .offset8 = 2, .len8 = 4, .flags = 0, .trans_id = 5};
    memcpy(b, &d, sizeof(d));
    assert_int_equal(vmbus_pkt_parse(b, 32, &pkt), 0);
    assert_int_equal(pkt.payload_len, 16);
    assert_int_equal(pkt.trans_id, 5);
    assert_int_equal(vmbus_pkt_parse(b, 40, &pkt), -EPROTO); /* len8 disagrees */
    assert_int_equal(vmbus_pkt_parse(b, 15, &pkt), -EPROTO);
    d.offset8 = 1;
    memcpy(b, &d, sizeof(d));
    assert_int_equal(vmbus_pkt_parse(b, 32, &pkt), -EPROTO);
    d.offset8 = 5;
    memcpy(b, &d, sizeof(d));
    assert_int_equal(vmbus_pkt_parse(b, 32, &pkt), -EPROTO);
    d.offset8 = 4;
    memcpy(b, &d, sizeof(d));
    assert_int_equal(vmbus_pkt_parse(b, 32, &pkt), 0);
    assert_int_equal(pkt.ext_len, 16);
    assert_int_equal(pkt.payload_len, 0);
}

#define T1(f) cmocka_unit_test_setup_teardown(f, setup_one_page, teardown_ring)
#define T4(f) cmocka_unit_test_setup_teardown(f, setup_four_pages, teardown_ring)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T1(fixture__write_through_one_view__seen_twice_in_the_other),
        T4(fixture__write_through_one_view__seen_twice_in_the_other),
        T1(init__bad_geometry__einval),
        T1(init_producer__garbage_write_index__eproto),
        T1(init_consumer__garbage_read_index__eproto),
        T1(init__indices_mid_ring__both_ends_resume_there),

        T4(put_inband__payload_sizes__round_trip_padded_with_zeroes),
        T1(put_inband__completion_packets__type_and_trans_id_preserved),
        T1(put__gathered_iovecs__payload_concatenated),
        T1(put__bad_ext_len__einval),
        T4(put_xfer_pages__range_counts_and_payloads__round_trip),
        T1(put_gpa_direct__multi_range_packets__round_trip),

        T1(put_get__many_packets_through_one_page__wrap_and_straddle_intact),

        T1(get__empty_ring__eagain),
        T1(put__until_full__eagain_leaves_ring_never_exactly_full),
        T4(put__until_full__eagain_leaves_ring_never_exactly_full),
        T1(put__packet_of_exactly_free_bytes__fits_and_leaves_8_bytes),
        T1(put__packet_larger_than_ring__emsgsize_even_when_empty),
        T4(put__packet_larger_than_ring__emsgsize_even_when_empty),
        T1(get__buffer_too_small__emsgsize_and_nothing_consumed),
        T1(release__after_get__space_returns_to_producer),

        T1(get__write_index_out_of_range__eproto_sticky),
        T1(get__write_index_unaligned__eproto_sticky),
        T1(empty__write_index_garbage__reads_not_empty_then_get_fails),
        T1(put__read_index_out_of_range__eproto_sticky),
        T1(put__read_index_unaligned__eproto_sticky),
        T1(publish__read_index_corrupted_after_put__eproto_sticky),
        T1(free_bytes__read_index_corrupted__zero_and_sticky),
        T1(arm_space__read_index_corrupted__eproto_sticky),
        T1(get__offset8_below_2__eproto_desc),
        T1(get__len8_below_offset8__eproto_desc),
        T1(get__len8_beyond_available__eproto_desc),
        T1(get__len8_beyond_available_across_the_end__eproto_desc),
        T1(get__unknown_flags__eproto_flags),
        T1(get__type_not_in_mask__eproto_type),
        T1(get__fewer_than_24_bytes__eproto_truncated),
        T1(get__corrupt_packet_after_good_ones__good_ones_delivered_first),
        T1(release__write_index_corrupted_while_producer_waits__eproto),

        T1(get__shared_descriptor_rewritten_after_get__copy_unaffected),
        T1(get__descriptor_rewritten_between_reads__copy_carries_validated_one),

        T1(publish__consumer_drained_and_unmasked__signals),
        T1(publish__nothing_staged__no_signal),
        T1(publish__interrupts_masked__no_signal),
        T1(publish__consumer_behind__no_signal),
        T1(publish__batch_of_puts__at_most_one_signal),
        T1(intr_unmask__ring_empty__returns_false),
        T1(release__free_space_crosses_pending_send_sz__signals_once),
        T1(release__batched_gets_crossing_threshold__one_signal),
        T1(release__no_pending_request__never_signals),
        T1(release__producer_without_feature_bit__never_signals),
        T1(release__pending_send_sz_unaligned_hint__low_bits_ignored),
        T1(arm_space__space_already_free__returns_1),
        T1(arm_space__largest_packet_put_accepts__armed_and_signalled),
        T4(arm_space__largest_packet_put_accepts__armed_and_signalled),
        T1(arm_space__size_beyond_ring__emsgsize_not_armed),

        cmocka_unit_test(parse_gpa_ranges__byte_offset_4096_or_more__eproto),
        cmocka_unit_test(parse_gpa_ranges__byte_count_zero__eproto),
        cmocka_unit_test(parse_gpa_ranges__pfns_beyond_buffer__eproto),
        cmocka_unit_test(parse_gpa_ranges__more_than_max_ranges__eproto),
        cmocka_unit_test(parse_gpa_ranges__valid_multi_range__pfn_counts_right),
        cmocka_unit_test(pkt_gpa_direct__bad_headers__eproto),
        cmocka_unit_test(pkt_xfer_pages__range_count_beyond_header__eproto),
        cmocka_unit_test(pkt_parse__inconsistent_copy__eproto),
    };
    return cmocka_run_group_tests_name("vmbus_ring", tests, NULL, NULL);
}
