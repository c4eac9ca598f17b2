/*
 * VMBus ring buffer, both ends.
 *
 * Concurrency contract (docs/protocol.md §3.4–§3.6). Each ring has one
 * producer and one consumer, in different processes. Who writes what:
 *   write_index, pending_send_sz, feature_bits   the producer
 *   read_index, interrupt_mask                   the consumer
 * and each side keeps its own copy of its own index: it never trusts the
 * shared copy of an index it owns, and validates the peer's index on every
 * load (the peer may be hostile and rewrite it at any time).
 *
 * Barrier pairs (letters as in docs/protocol.md §3.5):
 *   C  producer writes packet bytes, then release-stores write_index;
 *      consumer acquire-loads write_index, then reads packet bytes.
 *   B  consumer copies packet bytes out, full fence, stores read_index;
 *      producer loads read_index, full fence, then overwrites that space.
 *   A  producer stores pending_send_sz, full fence, loads read_index;
 *      consumer stores read_index, full fence, loads pending_send_sz.
 *      Whichever runs second sees the other's store, so a producer that
 *      decided to wait is always signalled.
 *   E  (empty->non-empty) producer stores write_index, full fence, loads
 *      interrupt_mask and read_index; consumer stores interrupt_mask = 0,
 *      full fence, loads write_index. Either the producer sees the unmask and
 *      signals, or the consumer sees the new data and keeps polling.
 *
 * Signals: the producer signals only when the consumer had drained the ring
 * (read_index == the write index before this publish) and has interrupts
 * unmasked; the consumer signals only when free space crosses the producer's
 * pending_send_sz. Anything more would be an interrupt storm.
 */
#include "vmbus-ring.h"

#include <errno.h>
#include <string.h>

#include "hv-proto.h"
#include "vmbus-proto.h"

static inline uint32_t load_acquire(const uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline uint32_t load_relaxed(const uint32_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void store_release(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}

static inline void store_relaxed(uint32_t *p, uint32_t v)
{
    __atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline void full_fence(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

static int ring_fail(struct vmbus_ring *r, enum vmbus_ring_error why)
{
    r->stats.errors[why]++;
    r->error = -EPROTO;
    return -EPROTO;
}

static inline bool index_ok(const struct vmbus_ring *r, uint32_t idx)
{
    return idx < r->dsize && (idx & 7u) == 0;
}

/* Bytes between from and to going forward around the ring. */
static inline uint32_t ring_dist(const struct vmbus_ring *r, uint32_t from, uint32_t to)
{
    return to >= from ? to - from : r->dsize - from + to;
}

static inline uint32_t ring_add(const struct vmbus_ring *r, uint32_t idx, uint32_t n)
{
    uint32_t v = idx + n;
    return v >= r->dsize ? v - r->dsize : v;
}

static int ring_attach(struct vmbus_ring *r, void *view, uint32_t dsize)
{
    if (view == NULL || dsize < VMBUS_RING_DSIZE_MIN || dsize > VMBUS_RING_DSIZE_MAX ||
        (dsize & (HV_PAGE_SIZE - 1)) != 0)
        return -EINVAL;
    memset(r, 0, sizeof(*r));
    r->hdr = view;
    r->data = (uint8_t *)view + HV_PAGE_SIZE;
    r->dsize = dsize;
    return 0;
}

void vmbus_ring_format(void *view)
{
    memset(view, 0, HV_PAGE_SIZE);
}

int vmbus_ring_init_producer(struct vmbus_ring *r, void *view, uint32_t dsize)
{
    int rc = ring_attach(r, view, dsize);
    if (rc < 0)
        return rc;
    uint32_t w = load_acquire(&r->hdr->write_index);
    if (!index_ok(r, w))
        return ring_fail(r, VMBUS_RING_ERR_WRITE_INDEX);
    r->windex = r->pub_windex = w;
    __atomic_fetch_or(&r->hdr->feature_bits, VMBUS_RING_FEAT_PENDING_SEND_SZ, __ATOMIC_RELAXED);
    store_relaxed(&r->hdr->pending_send_sz, 0);
    return 0;
}

int vmbus_ring_init_consumer(struct vmbus_ring *r, void *view, uint32_t dsize, uint32_t type_mask)
{
    int rc = ring_attach(r, view, dsize);
    if (rc < 0)
        return rc;
    uint32_t rd = load_acquire(&r->hdr->read_index);
    if (!index_ok(r, rd))
        return ring_fail(r, VMBUS_RING_ERR_READ_INDEX);
    r->rindex = r->pub_rindex = rd;
    r->type_mask = type_mask;
    return 0;
}

/*
 * Free bytes for the producer: the space between the staged write position
 * and the consumer's published read index, minus the 8 bytes that keep the
 * ring from ever looking empty when full. Returns -EPROTO via *err.
 */
static int producer_free(struct vmbus_ring *r, uint32_t *free_out)
{
    uint32_t rd = load_acquire(&r->hdr->read_index);
    if (!index_ok(r, rd))
        return ring_fail(r, VMBUS_RING_ERR_READ_INDEX);
    /* Pair B: do not overwrite space before the consumer's copies are done. */
    full_fence();
    uint32_t used = ring_dist(r, rd, r->windex);
    *free_out = r->dsize - used;
    return 0;
}

uint32_t vmbus_ring_free_bytes(struct vmbus_ring *r)
{
    uint32_t f;
    if (r->error || producer_free(r, &f) < 0)
        return 0;
    return f > 8 ? f - 8 : 0;
}

int vmbus_ring_put(struct vmbus_ring *r, uint16_t type, uint16_t flags, uint64_t trans_id,
                   const void *ext, uint32_t ext_len, const struct iovec *iov, int iovcnt)
{
    if (r->error)
        return r->error;
    if ((ext_len & 7u) != 0 || (ext_len != 0 && ext == NULL) || iovcnt < 0)
        return -EINVAL;

    uint64_t payload_len = 0;
    for (int i = 0; i < iovcnt; i++)
        payload_len += iov[i].iov_len;
    uint64_t body = 16u + (uint64_t)ext_len + payload_len;
    uint64_t total = ((body + 7u) & ~(uint64_t)7u) + VMBUS_RING_TRAILER_SIZE;
    /* len8 is 16 bits and the packet must leave the ring non-full. */
    if (total - VMBUS_RING_TRAILER_SIZE > 0xffffu * 8u || total + 8u > r->dsize)
        return -EMSGSIZE;

    uint32_t free_bytes;
    int rc = producer_free(r, &free_bytes);
    if (rc < 0)
        return rc;
    if (free_bytes <= total) {
        r->stats.full++;
        return -EAGAIN;
    }

    uint32_t start = r->windex;
    uint8_t *p = r->data + start; /* contiguous thanks to the double mapping */
    struct vmbus_pkt_desc desc = {
        .type = type,
        .offset8 = (uint16_t)((16u + ext_len) / 8u),
        .len8 = (uint16_t)((total - VMBUS_RING_TRAILER_SIZE) / 8u),
        .flags = flags,
        .trans_id = trans_id,
    };
    memcpy(p, &desc, sizeof(desc));
    size_t off = sizeof(desc);
    if (ext_len) {
        memcpy(p + off, ext, ext_len);
        off += ext_len;
    }
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len) {
            memcpy(p + off, iov[i].iov_base, iov[i].iov_len);
            off += iov[i].iov_len;
        }
    }
    size_t padded = total - VMBUS_RING_TRAILER_SIZE;
    if (off < padded)
        memset(p + off, 0, padded - off);
    uint64_t trailer = (uint64_t)start << 32;
    memcpy(p + padded, &trailer, sizeof(trailer));

    r->windex = ring_add(r, start, (uint32_t)total);
    r->stats.packets++;
    r->stats.bytes += total;
    if (r->pending_armed) {
        store_relaxed(&r->hdr->pending_send_sz, 0);
        r->pending_armed = false;
    }
    return 0;
}

int vmbus_ring_put_inband(struct vmbus_ring *r, uint16_t type, uint16_t flags, uint64_t trans_id,
                          const void *payload, uint32_t len)
{
    struct iovec iov = {.iov_base = (void *)payload, .iov_len = len};
    return vmbus_ring_put(r, type, flags, trans_id, NULL, 0, &iov, len ? 1 : 0);
}

int vmbus_ring_put_xfer_pages(struct vmbus_ring *r, uint64_t trans_id, uint16_t pageset_id,
                              const struct vmbus_xfer_range *ranges, uint32_t nranges,
                              const void *payload, uint32_t len)
{
    /* Header after the descriptor: pageset id, owns-set, reserved, count. */
    uint8_t ext[8 + 8 * 64];
    if (nranges == 0 || nranges > 64)
        return -EINVAL;
    struct vmbus_pkt_xfer_pages h = {0};
    h.xfer_pageset_id = pageset_id;
    h.range_count = nranges;
    memcpy(ext, (const uint8_t *)&h + sizeof(h.desc), 8);
    memcpy(ext + 8, ranges, (size_t)nranges * sizeof(*ranges));
    struct iovec iov = {.iov_base = (void *)payload, .iov_len = len};
    return vmbus_ring_put(r, VMBUS_PKT_DATA_USING_XFER_PAGES,
                          VMBUS_PKT_FLAG_COMPLETION_REQUESTED, trans_id, ext,
                          8 + nranges * (uint32_t)sizeof(*ranges), &iov, len ? 1 : 0);
}

int vmbus_ring_publish(struct vmbus_ring *r)
{
    if (r->error)
        return r->error;
    uint32_t old = r->pub_windex;
    if (r->windex == old)
        return 0;
    /* Pair C: packet bytes before the index. */
    store_release(&r->hdr->write_index, r->windex);
    r->pub_windex = r->windex;
    /* Pair E: the index before sampling the consumer's mask and position. */
    full_fence();
    uint32_t mask = load_relaxed(&r->hdr->interrupt_mask);
    uint32_t rd = load_relaxed(&r->hdr->read_index);
    if (!index_ok(r, rd))
        return ring_fail(r, VMBUS_RING_ERR_READ_INDEX);
    if (mask == 0 && rd == old) {
        r->stats.signals++;
        return 1;
    }
    return 0;
}

int vmbus_ring_arm_space(struct vmbus_ring *r, uint32_t bytes)
{
    if (r->error)
        return r->error;
    /* The consumer signals when free space reaches pending_send_sz; the
     * put needs strictly more than `bytes` free, hence + 8. The largest
     * packet put() accepts (dsize - 8) needs the whole ring; compare before
     * adding so that no size wraps around to a small request. */
    if (bytes > r->dsize - 8u)
        return -EMSGSIZE;
    uint32_t want = bytes + 8u;
    store_relaxed(&r->hdr->pending_send_sz, want);
    r->pending_armed = true;
    /* Pair A: the request before re-reading the consumer's progress. */
    full_fence();
    uint32_t free_bytes;
    int rc = producer_free(r, &free_bytes);
    if (rc < 0)
        return rc;
    return free_bytes >= want ? 1 : 0;
}

int vmbus_ring_get(struct vmbus_ring *r, void *buf, uint32_t size)
{
    if (r->error)
        return r->error;
    uint32_t w = load_acquire(&r->hdr->write_index); /* pair C */
    if (!index_ok(r, w))
        return ring_fail(r, VMBUS_RING_ERR_WRITE_INDEX);
    uint32_t avail = ring_dist(r, r->rindex, w);
    if (avail == 0)
        return -EAGAIN;
    if (avail < sizeof(struct vmbus_pkt_desc) + VMBUS_RING_TRAILER_SIZE)
        return ring_fail(r, VMBUS_RING_ERR_TRUNCATED);

    const uint8_t *p = r->data + r->rindex;
    struct vmbus_pkt_desc desc;
    memcpy(&desc, p, sizeof(desc)); /* one read of the descriptor */
    uint32_t len = (uint32_t)desc.len8 * 8u;
    if (desc.offset8 < 2 || desc.len8 < desc.offset8 || len + VMBUS_RING_TRAILER_SIZE > avail)
        return ring_fail(r, VMBUS_RING_ERR_DESC);
    if (desc.flags & ~VMBUS_PKT_FLAG_COMPLETION_REQUESTED)
        return ring_fail(r, VMBUS_RING_ERR_FLAGS);
    if (desc.type >= 32 || !(r->type_mask & (1u << desc.type)))
        return ring_fail(r, VMBUS_RING_ERR_TYPE);
    if (len > size)
        return -EMSGSIZE;

    memcpy(buf, p, len);
    /* The copy's descriptor is what the caller parses: make it the one that
     * was validated, whatever the peer wrote in between. */
    memcpy(buf, &desc, sizeof(desc));

    r->rindex = ring_add(r, r->rindex, len + VMBUS_RING_TRAILER_SIZE);
    r->stats.packets++;
    r->stats.bytes += len + VMBUS_RING_TRAILER_SIZE;
    return (int)len;
}

int vmbus_ring_release(struct vmbus_ring *r)
{
    if (r->error)
        return r->error;
    uint32_t old = r->pub_rindex;
    if (r->rindex == old)
        return 0;
    /* Pair B: copies out of the ring are complete before the space is freed. */
    full_fence();
    store_relaxed(&r->hdr->read_index, r->rindex);
    r->pub_rindex = r->rindex;
    /* Pair A: the new read index before looking at the producer's request. */
    full_fence();
    uint32_t feat = load_relaxed(&r->hdr->feature_bits);
    if (!(feat & VMBUS_RING_FEAT_PENDING_SEND_SZ))
        return 0;
    /* A hint only; some producers write "ring size - 1". */
    uint32_t pending = load_relaxed(&r->hdr->pending_send_sz) & ~7u;
    if (pending == 0)
        return 0;
    uint32_t w = load_acquire(&r->hdr->write_index);
    if (!index_ok(r, w))
        return ring_fail(r, VMBUS_RING_ERR_WRITE_INDEX);
    uint32_t free_after = r->dsize - ring_dist(r, r->rindex, w);
    uint32_t free_before = r->dsize - ring_dist(r, old, w);
    if (free_before < pending && pending <= free_after) {
        r->stats.signals++;
        return 1;
    }
    return 0;
}

bool vmbus_ring_empty(struct vmbus_ring *r)
{
    if (r->error)
        return false;
    uint32_t w = load_acquire(&r->hdr->write_index);
    return w == r->rindex;
}

void vmbus_ring_intr_mask(struct vmbus_ring *r)
{
    store_relaxed(&r->hdr->interrupt_mask, 1);
}

bool vmbus_ring_intr_unmask(struct vmbus_ring *r)
{
    store_relaxed(&r->hdr->interrupt_mask, 0);
    /* Pair E: the unmask before the last look at the producer's index. */
    full_fence();
    return !vmbus_ring_empty(r);
}

int vmbus_pkt_parse(const void *buf, uint32_t len, struct vmbus_pkt *out)
{
    struct vmbus_pkt_desc desc;
    if (len < sizeof(desc))
        return -EPROTO;
    memcpy(&desc, buf, sizeof(desc));
    uint32_t hdr_len = (uint32_t)desc.offset8 * 8u;
    if (desc.offset8 < 2 || (uint32_t)desc.len8 * 8u != len || hdr_len > len)
        return -EPROTO;
    out->type = desc.type;
    out->flags = desc.flags;
    out->trans_id = desc.trans_id;
    out->ext = (const uint8_t *)buf + sizeof(desc);
    out->ext_len = hdr_len - (uint32_t)sizeof(desc);
    out->payload = (const uint8_t *)buf + hdr_len;
    out->payload_len = len - hdr_len;
    return 0;
}

int vmbus_parse_gpa_ranges(const uint8_t *buf, uint32_t len, uint32_t count,
                           struct vmbus_range *ranges, uint32_t max_ranges)
{
    uint32_t off = 0;
    if (count > max_ranges)
        return -EPROTO;
    for (uint32_t i = 0; i < count; i++) {
        struct vmbus_gpa_range h;
        if (len - off < sizeof(h))
            return -EPROTO;
        memcpy(&h, buf + off, sizeof(h));
        off += (uint32_t)sizeof(h);
        if (h.byte_count == 0 || h.byte_offset >= HV_PAGE_SIZE)
            return -EPROTO;
        uint64_t span = (uint64_t)h.byte_offset + h.byte_count;
        uint64_t npfn = (span + HV_PAGE_SIZE - 1) >> HV_PAGE_SHIFT;
        if (npfn > (len - off) / 8u)
            return -EPROTO;
        ranges[i].byte_count = h.byte_count;
        ranges[i].byte_offset = h.byte_offset;
        ranges[i].pfn_count = (uint32_t)npfn;
        ranges[i].pfns = buf + off;
        off += (uint32_t)npfn * 8u;
    }
    return (int)off;
}

int vmbus_pkt_gpa_direct(const struct vmbus_pkt *pkt, struct vmbus_range *ranges,
                         uint32_t max_ranges)
{
    uint32_t hdr[2];
    if (pkt->type != VMBUS_PKT_DATA_USING_GPA_DIRECT || pkt->ext_len < sizeof(hdr))
        return -EPROTO;
    memcpy(hdr, pkt->ext, sizeof(hdr));
    uint32_t count = hdr[1];
    if (count == 0)
        return -EPROTO;
    int used = vmbus_parse_gpa_ranges(pkt->ext + sizeof(hdr), pkt->ext_len - (uint32_t)sizeof(hdr),
                                      count, ranges, max_ranges);
    if (used < 0)
        return used;
    return (int)count;
}

int vmbus_pkt_xfer_pages(const struct vmbus_pkt *pkt, uint16_t *pageset_id,
                         const struct vmbus_xfer_range **ranges, uint32_t max_ranges)
{
    uint8_t hdr[8];
    if (pkt->type != VMBUS_PKT_DATA_USING_XFER_PAGES || pkt->ext_len < sizeof(hdr))
        return -EPROTO;
    memcpy(hdr, pkt->ext, sizeof(hdr));
    uint32_t count;
    memcpy(&count, hdr + 4, sizeof(count));
    if (count == 0 || count > max_ranges ||
        count > (pkt->ext_len - sizeof(hdr)) / sizeof(struct vmbus_xfer_range))
        return -EPROTO;
    memcpy(pageset_id, hdr, sizeof(*pageset_id));
    *ranges = (const struct vmbus_xfer_range *)(pkt->ext + sizeof(hdr));
    return (int)count;
}
