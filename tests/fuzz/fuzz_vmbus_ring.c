/*
 * libFuzzer harness for the VMBus ring code as it faces a hostile peer.
 *
 * The input is what the peer left in the ring's shared pages, plus a short
 * script of what it does between our calls:
 *
 *   off  size
 *   0    1    bits 0-1: data pages - 1 (1..4); bit 2: indices taken raw
 *             (else reduced below dsize and 8-aligned); bit 3: the consumer
 *             accepts every type; bit 4: FEAT_PENDING_SEND_SZ cleared
 *   1    4    write_index
 *   5    4    read_index
 *   9    4    interrupt_mask
 *   13   4    pending_send_sz
 *   17   2    consumer buffer size (0: large enough for any packet)
 *   19   1    release after every N gets (0: once at the end)
 *   20   16   script: one byte per step, see peer_step() and produce()
 *   36   ...  data area contents (the rest of the area is zero)
 *
 * First a consumer drains the ring (vmbus_ring_get() into exact-size heap
 * buffers, then every parser on an exact-size copy of each packet) while the
 * peer moves indices and rewrites descriptors; then a producer writes
 * packets against the peer's hostile read_index, and an honest consumer reads
 * back whatever is in the ring. Invariants the API promises are checked, and
 * a broken one aborts. The ring views live in one memfd mapped once per data
 * size, with an inaccessible page on either side of each view.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vmbus-ring.h"

#define PAGE 4096u
#define MAX_DPAGES 4u
#define IN_HDR 36u
#define SCRIPT_LEN 16u
#define MAX_GETS 1024u
#define MAX_GPA_RANGES 32u
#define MAX_XFER_RANGES 562u

struct view {
    struct vmbus_ring_hdr *hdr;
    uint8_t *data; /* dsize bytes, then the same bytes again */
    uint32_t dsize;
};

struct input {
    uint32_t dsize;
    bool raw;
    bool all_types;
    bool no_feat;
    uint32_t w, rd, mask, pending;
    uint32_t bufsize;
    uint32_t release_every;
    const uint8_t *script;
    const uint8_t *data;
    size_t data_len;
};

static struct view views[MAX_DPAGES];
static uint8_t payload_src[MAX_DPAGES * PAGE];
static uint8_t scratch[MAX_DPAGES * PAGE];
static volatile uint64_t sink;

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_vmbus_ring: invariant broken: %s\n", what);
        abort();
    }
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One memfd: header page, then MAX_DPAGES data pages. View d maps the header
 * and the first d + 1 data pages twice, between two PROT_NONE pages. */
static void views_init(void)
{
    int fd = memfd_create("fuzz_vmbus_ring", MFD_CLOEXEC);
    check(fd >= 0, "memfd_create");
    check(ftruncate(fd, (off_t)(1 + MAX_DPAGES) * PAGE) == 0, "ftruncate");
    for (uint32_t d = 0; d < MAX_DPAGES; d++) {
        size_t dlen = (size_t)(d + 1) * PAGE;
        size_t len = 3 * (size_t)PAGE + 2 * dlen;
        uint8_t *base =
            mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        check(base != MAP_FAILED, "reserve view");
        uint8_t *h = base + PAGE;
        int prot = PROT_READ | PROT_WRITE;
        check(mmap(h, PAGE, prot, MAP_SHARED | MAP_FIXED, fd, 0) != MAP_FAILED, "map header");
        check(mmap(h + PAGE, dlen, prot, MAP_SHARED | MAP_FIXED, fd, PAGE) != MAP_FAILED,
              "map data");
        check(mmap(h + PAGE + dlen, dlen, prot, MAP_SHARED | MAP_FIXED, fd, PAGE) != MAP_FAILED,
              "map data again");
        views[d].hdr = (struct vmbus_ring_hdr *)h;
        views[d].data = h + PAGE;
        views[d].dsize = (uint32_t)dlen;
    }
    close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    views_init();
    return 0;
}

/* An index as the peer writes it: raw, or made plausible so that the ring
 * code gets past its index checks and into the packets. */
static uint32_t peer_index(const struct input *in, uint32_t v)
{
    return in->raw ? v : (v % in->dsize) & ~7u;
}

static void load_ring(const struct input *in, const struct view *v)
{
    vmbus_ring_format(v->hdr);
    memset(v->data, 0, in->dsize);
    memcpy(v->data, in->data, in->data_len < in->dsize ? in->data_len : in->dsize);
    v->hdr->write_index = peer_index(in, in->w);
    v->hdr->read_index = peer_index(in, in->rd);
    v->hdr->interrupt_mask = in->mask;
    v->hdr->pending_send_sz = in->pending;
    v->hdr->feature_bits = in->no_feat ? 0 : VMBUS_RING_FEAT_PENDING_SEND_SZ;
}

/* Everything a caller may do with a packet get() handed over, on an
 * exact-size copy so that any read past it is caught. */
static void parse_packet(const uint8_t *buf, uint32_t len, uint32_t type_mask)
{
    uint8_t *copy = malloc(len);
    check(copy != NULL, "malloc");
    memcpy(copy, buf, len);

    struct vmbus_pkt pkt;
    check(vmbus_pkt_parse(copy, len, &pkt) == 0, "get() returned an unparsable packet");
    check((pkt.flags & ~VMBUS_PKT_FLAG_COMPLETION_REQUESTED) == 0, "unknown flags accepted");
    check(pkt.type < 32 && (type_mask & (1u << pkt.type)), "type outside the mask accepted");
    check(pkt.ext == copy + 16 && pkt.payload == pkt.ext + pkt.ext_len, "packet layout");
    check(16 + pkt.ext_len + pkt.payload_len == len, "packet lengths");
    uint64_t acc = pkt.trans_id;
    for (uint32_t i = 0; i < pkt.payload_len; i++)
        acc += pkt.payload[i];

    if (pkt.type == VMBUS_PKT_DATA_USING_GPA_DIRECT) {
        const uint32_t maxes[] = {1, MAX_GPA_RANGES};
        for (int m = 0; m < 2; m++) {
            struct vmbus_range *rg = malloc(maxes[m] * sizeof(*rg));
            check(rg != NULL, "malloc");
            int n = vmbus_pkt_gpa_direct(&pkt, rg, maxes[m]);
            check(n == -EPROTO || (n >= 1 && (uint32_t)n <= maxes[m]), "gpa_direct result");
            for (int i = 0; i < n; i++) {
                check(rg[i].byte_count != 0 && rg[i].byte_offset < PAGE, "gpa range fields");
                uint64_t span = (uint64_t)rg[i].byte_offset + rg[i].byte_count;
                check(rg[i].pfn_count == (span + PAGE - 1) / PAGE, "gpa pfn count");
                check(rg[i].pfns >= pkt.ext &&
                          rg[i].pfns + (size_t)rg[i].pfn_count * 8 <= pkt.ext + pkt.ext_len,
                      "gpa pfns outside the header");
                for (uint32_t j = 0; j < rg[i].pfn_count; j++)
                    acc += vmbus_range_pfn(&rg[i], j);
            }
            free(rg);
        }
    }
    if (pkt.type == VMBUS_PKT_DATA_USING_XFER_PAGES) {
        const uint32_t maxes[] = {1, MAX_XFER_RANGES};
        for (int m = 0; m < 2; m++) {
            uint16_t pageset = 0;
            const struct vmbus_xfer_range *rg = NULL;
            int n = vmbus_pkt_xfer_pages(&pkt, &pageset, &rg, maxes[m]);
            check(n == -EPROTO || (n >= 1 && (uint32_t)n <= maxes[m]), "xfer_pages result");
            if (n > 0)
                check((const uint8_t *)rg >= pkt.ext &&
                          (const uint8_t *)(rg + n) <= pkt.ext + pkt.ext_len,
                      "xfer ranges outside the header");
            for (int i = 0; i < n; i++) {
                struct vmbus_xfer_range x;
                memcpy(&x, rg + i, sizeof(x));
                acc += x.byte_count + x.byte_offset + pageset;
            }
        }
    }
    sink += acc;
    free(copy);
}

/* The peer acts between two of our calls, as script byte s says. */
static void peer_step(const struct input *in, const struct view *v, const struct vmbus_ring *r,
                      uint8_t s, uint32_t step)
{
    uint32_t arg = s & 31u;
    switch (s >> 5) {
    case 2: /* writes more (whatever is there) */
        v->hdr->write_index = (v->hdr->write_index + arg * 8u) % in->dsize;
        break;
    case 3: /* takes it all back */
        v->hdr->write_index = r->rindex;
        break;
    case 4: /* rewrites the next descriptor */
        v->data[r->rindex + (arg & 15u)] ^= (uint8_t)(s * 37u + step);
        break;
    case 5: /* asks for space */
        v->hdr->pending_send_sz = arg * 128u + (s & 7u);
        v->hdr->feature_bits ^= (step & 1u) ? VMBUS_RING_FEAT_PENDING_SEND_SZ : 0;
        break;
    case 6: /* rewrites the consumer's own fields */
        v->hdr->interrupt_mask ^= 1;
        v->hdr->read_index = peer_index(in, arg * 264u);
        break;
    case 7: /* a write index that may be out of range or unaligned */
        v->hdr->write_index = (arg << 8) | (s & 4u);
        break;
    default:
        break;
    }
}

static void consume(const struct input *in, const struct view *v, uint32_t type_mask,
                    uint32_t bufsize, uint32_t release_every)
{
    struct vmbus_ring r;
    int rc = vmbus_ring_init_consumer(&r, v->hdr, in->dsize, type_mask);
    if (rc < 0) {
        check(rc == -EPROTO && r.stats.errors[VMBUS_RING_ERR_READ_INDEX] == 1, "consumer init");
        return;
    }
    for (uint32_t i = 0; i < MAX_GETS; i++) {
        uint32_t before = r.rindex;
        uint32_t w = v->hdr->write_index;
        uint32_t avail = w >= before ? w - before : in->dsize - before + w;
        uint32_t size = bufsize ? bufsize : in->dsize;
        uint8_t *buf = malloc(size ? size : 1);
        check(buf != NULL, "malloc");
        rc = vmbus_ring_get(&r, buf, size);
        if (rc == -EMSGSIZE) {
            check(r.rindex == before && r.error == 0, "-EMSGSIZE consumed something");
            free(buf);
            size = in->dsize;
            buf = malloc(size);
            check(buf != NULL, "malloc");
            rc = vmbus_ring_get(&r, buf, size);
            check(rc != -EMSGSIZE, "-EMSGSIZE with a buffer as large as the ring");
        }
        if (rc >= 0) {
            uint32_t len = (uint32_t)rc;
            check(len >= 16 && len % 8 == 0 && len <= size, "packet length");
            check(len + VMBUS_RING_TRAILER_SIZE <= avail, "packet and trailer beyond write_index");
            check(r.rindex == (before + len + VMBUS_RING_TRAILER_SIZE) % in->dsize,
                  "read index advance");
            parse_packet(buf, len, type_mask);
        }
        free(buf);
        if (rc == -EPROTO) {
            check(r.error == -EPROTO, "-EPROTO without a sticky error");
            check(vmbus_ring_get(&r, scratch, sizeof(scratch)) == -EPROTO &&
                      vmbus_ring_release(&r) == -EPROTO && !vmbus_ring_empty(&r),
                  "corrupt ring not sticky");
            break;
        }
        check(rc >= 0 || rc == -EAGAIN, "get() result");
        if (rc == -EAGAIN) {
            check(r.rindex == before, "-EAGAIN consumed something");
            if (i >= SCRIPT_LEN)
                break;
        }
        peer_step(in, v, &r, in->script[i % SCRIPT_LEN], i);
        if (release_every && (i + 1) % release_every == 0) {
            rc = vmbus_ring_release(&r);
            check(rc == 0 || rc == 1 || rc == -EPROTO, "release() result");
        }
    }
    rc = vmbus_ring_release(&r);
    check(rc == 0 || rc == 1 || rc == -EPROTO, "release() result");
    if (vmbus_ring_intr_unmask(&r))
        sink += (uint64_t)vmbus_ring_get(&r, scratch, sizeof(scratch));
    vmbus_ring_intr_mask(&r);
    uint64_t errs = 0;
    for (int e = 0; e < VMBUS_RING_ERR_COUNT; e++)
        errs += r.stats.errors[e];
    check(errs == (r.error ? 1u : 0u), "one error counted per corrupt ring");
}

static int put_one(struct vmbus_ring *p, uint8_t s, uint32_t step, uint32_t dsize)
{
    uint32_t len = (s * 29u + step * 131u) % (dsize / (1u + (s & 3u)));
    uint64_t id = ((uint64_t)s << 32) | step;
    switch ((s >> 2) & 3u) {
    case 0:
        return vmbus_ring_put_inband(p, VMBUS_PKT_DATA_INBAND, s & 1u, id, payload_src, len);
    case 1:
        return vmbus_ring_put_inband(p, VMBUS_PKT_COMP, 0, id, payload_src, len);
    case 2: {
        struct vmbus_xfer_range rg[8];
        uint32_t n = 1 + (s >> 4) % 8u;
        memcpy(rg, payload_src + step, sizeof(rg));
        return vmbus_ring_put_xfer_pages(p, id, (uint16_t)step, rg, n, payload_src, len);
    }
    default: {
        uint8_t ext[8 + 8 + 8 * 3];
        uint32_t hdr[4] = {0, 1, 1 + (s * 77u + step) % 8000u, (s * 13u) % PAGE};
        uint32_t npfn = (hdr[2] + hdr[3] + PAGE - 1) / PAGE;
        memcpy(ext, hdr, sizeof(hdr));
        memcpy(ext + 16, payload_src + step, 8 * npfn);
        struct iovec iov[2] = {{payload_src, len / 2}, {payload_src + len / 2, len - len / 2}};
        return vmbus_ring_put(p, VMBUS_PKT_DATA_USING_GPA_DIRECT,
                              VMBUS_PKT_FLAG_COMPLETION_REQUESTED, id, ext, 16 + 8 * npfn, iov, 2);
    }
    }
}

/* A producer facing a consumer that moves read_index as it likes. */
static void produce(const struct input *in, const struct view *v)
{
    struct vmbus_ring p;
    int rc = vmbus_ring_init_producer(&p, v->hdr, in->dsize);
    if (rc < 0) {
        check(rc == -EPROTO && p.stats.errors[VMBUS_RING_ERR_WRITE_INDEX] == 1, "producer init");
        return;
    }
    for (uint32_t i = 0; i < 2 * SCRIPT_LEN && !p.error; i++) {
        uint8_t s = in->script[i % SCRIPT_LEN] ^ (uint8_t)(i / SCRIPT_LEN * 0x5au);
        uint32_t start = p.windex;
        rc = put_one(&p, s, i, in->dsize);
        check(rc == 0 || rc == -EAGAIN || rc == -EMSGSIZE || rc == -EPROTO, "put() result");
        if (rc == 0) {
            struct vmbus_pkt_desc d;
            memcpy(&d, v->data + start, sizeof(d));
            uint32_t total = (uint32_t)d.len8 * 8u + VMBUS_RING_TRAILER_SIZE;
            uint64_t trailer;
            memcpy(&trailer, v->data + start + total - VMBUS_RING_TRAILER_SIZE, 8);
            check(d.offset8 >= 2 && d.len8 >= d.offset8 && total + 8 <= in->dsize,
                  "put() wrote a bad descriptor");
            check(trailer == (uint64_t)start << 32, "put() wrote a bad trailer");
            check(p.windex == (start + total) % in->dsize, "write index advance");
        }
        uint32_t f = vmbus_ring_free_bytes(&p);
        check(f + 8 <= in->dsize, "free bytes beyond the ring");
        if (s & 0x40)
            v->hdr->read_index = peer_index(in, le32(in->script + (i % 13u)) ^ (s * 8u));
        if (s & 0x80) {
            rc = vmbus_ring_publish(&p);
            check(rc == 0 || rc == 1 || rc == -EPROTO, "publish() result");
        }
        if (s & 0x20) {
            rc = vmbus_ring_arm_space(&p, vmbus_ring_pkt_size(0, (s & 31u) * 600u));
            check(rc == 0 || rc == 1 || rc == -EPROTO || rc == -EMSGSIZE, "arm_space() result");
        }
        if (s & 0x10)
            v->hdr->interrupt_mask ^= 1;
    }
    rc = vmbus_ring_publish(&p);
    check(rc == 0 || rc == 1 || rc == -EPROTO, "publish() result");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < IN_HDR)
        return 0;
    struct input in = {
        .dsize = ((data[0] & 3u) + 1) * PAGE,
        .raw = data[0] & 4u,
        .all_types = data[0] & 8u,
        .no_feat = data[0] & 16u,
        .w = le32(data + 1),
        .rd = le32(data + 5),
        .mask = le32(data + 9),
        .pending = le32(data + 13),
        .bufsize = (uint32_t)data[17] | (uint32_t)data[18] << 8,
        .release_every = data[19],
        .script = data + 20,
        .data = data + IN_HDR,
        .data_len = size - IN_HDR,
    };
    const struct view *v = &views[(data[0] & 3u)];
    uint32_t type_mask = in.all_types ? 0xffffffffu : VMBUS_RING_TYPES_DEFAULT;

    memset(payload_src, 0, sizeof(payload_src));
    memcpy(payload_src, in.data,
           in.data_len < sizeof(payload_src) ? in.data_len : sizeof(payload_src));

    load_ring(&in, v);
    consume(&in, v, type_mask, in.bufsize, in.release_every);

    load_ring(&in, v);
    produce(&in, v);
    /* Whatever the producer left, as an honest consumer reads it. */
    consume(&in, v, VMBUS_RING_TYPES_DEFAULT, 0, 1);
    return 0;
}
