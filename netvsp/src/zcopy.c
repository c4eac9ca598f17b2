/*
 * Frames from a guest's send into mbufs (netvsp_gs_*: copied, or) without
 * copying their payload: the pages of a GPA-direct send become
 * external-buffer segments of the mbuf (see netvsp-private.h for the
 * contract). What makes it safe:
 *
 *  - The pages are read through a mapping of the guest's memory that is
 *    this connection's own, made from the partition's DMA view with
 *    mremap(old_size 0), which maps the same shared pages again: a
 *    partition that stops or is destroyed unmaps its views and closes its
 *    memory file, but the pages stay readable here until the last mbuf
 *    that points into them is freed, and only then is the mapping undone
 *    (by whichever thread frees that mbuf). hv-core offers no other way to
 *    hold the guest's memory beyond the partition's life.
 *  - Every mbuf of one NVSP send shares one rte_mbuf_ext_shared_info (a
 *    slot): its reference count counts those mbufs, their clones and the
 *    builder's own reference; the free callback runs once, when the last
 *    is gone, on any thread (worker, capture thread, a PMD's completion).
 *    It only enqueues the slot on a multi-producer ring and drops the
 *    slot's reference on this structure; the owning worker takes the ring
 *    in rx_burst and sends the guest its send completion then. The guest
 *    reuses its pages only after that completion, so nothing the switch
 *    still holds can change under it except by the guest breaking the
 *    protocol, which only hurts its own frames: the headers the switch
 *    decides on are a copy (rxtx.c).
 *  - ZC_SLOTS bound what one guest can pin: a send that finds no free slot
 *    is copied as before.
 *  - Only without PCI devices (netvsp_zc_create): extbuf segments carry no
 *    IO address.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_net.h>
#include <rte_ring.h>

#include "netvsp-private.h"

#define ZC_RING_SIZE 128u /* holds ZC_SLOTS; a power of two as rte_ring wants */
_Static_assert(ZC_RING_SIZE > ZC_SLOTS, "done ring holds every slot");

struct zc_slot {
    struct rte_mbuf_ext_shared_info shinfo;
    struct netvsp_zc *zc;
    uint64_t tid;
    uint32_t status;
    uint32_t lane_tag; /* the channel's opening the send came on, to complete it on */
    uint32_t idx;
};

struct netvsp_zc {
    const uint8_t *base; /* our own read-only mapping of the guest's memory */
    size_t len;
    uint32_t refs; /* atomic: the connection's, and one per slot in flight */
    uint32_t inflight;         /* worker: slots sent on and not reaped */
    uint32_t nfree;            /* worker */
    uint32_t free[ZC_SLOTS];   /* worker */
    struct zc_slot slot[ZC_SLOTS];
    struct rte_ring *done;     /* slot indices, any thread -> worker */
};

static void zc_destroy(struct netvsp_zc *zc)
{
    munmap((void *)zc->base, zc->len);
    free(zc->done);
    free(zc);
}

void netvsp_zc_put(struct netvsp_zc *zc)
{
    if (zc && __atomic_sub_fetch(&zc->refs, 1, __ATOMIC_ACQ_REL) == 0)
        zc_destroy(zc);
}

/* The last mbuf of a send is gone: hand its slot to the worker. Any
 * thread. */
static void zc_free_cb(void *addr, void *opaque)
{
    (void)addr;
    struct zc_slot *s = opaque;
    struct netvsp_zc *zc = s->zc;
    /* Never full: it has room for every slot and a slot is on it at most
     * once. */
    rte_ring_mp_enqueue(zc->done, (void *)(uintptr_t)s->idx);
    netvsp_zc_put(zc);
}

int netvsp_zc_create(const uint8_t *dma, uint64_t bytes, struct netvsp_zc **out)
{
    /* Guest memory has no IO address: a NIC on the PCI bus could not DMA
     * from it. Without PCI (--no-pci, vswitchd's default) every port is a
     * software one that reads frames by their virtual address. */
    if (rte_eal_has_pci())
        return -ENOTSUP;
    struct netvsp_zc *zc = calloc(1, sizeof(*zc));
    if (!zc)
        return -ENOMEM;
    ssize_t rsz = rte_ring_get_memsize(ZC_RING_SIZE);
    if (rsz < 0 || posix_memalign((void **)&zc->done, RTE_CACHE_LINE_SIZE, (size_t)rsz) != 0) {
        free(zc);
        return -ENOMEM;
    }
    int rc = rte_ring_init(zc->done, "netvsp_zc", ZC_RING_SIZE, RING_F_SC_DEQ);
    if (rc < 0)
        goto fail;
    void *v = mremap((void *)dma, 0, bytes, MREMAP_MAYMOVE);
    if (v == MAP_FAILED) {
        rc = -errno;
        goto fail;
    }
    zc->base = v;
    zc->len = bytes;
    zc->refs = 1;
    for (uint32_t i = 0; i < ZC_SLOTS; i++) {
        struct zc_slot *s = &zc->slot[i];
        s->zc = zc;
        s->idx = i;
        s->shinfo.free_cb = zc_free_cb;
        s->shinfo.fcb_opaque = s;
        zc->free[i] = ZC_SLOTS - 1 - i;
    }
    zc->nfree = ZC_SLOTS;
    *out = zc;
    return 0;
fail:
    free(zc->done);
    free(zc);
    return rc;
}

const uint8_t *netvsp_zc_base(const struct netvsp_zc *zc)
{
    return zc->base;
}

struct zc_slot *netvsp_zc_slot_get(struct netvsp_zc *zc)
{
    if (!zc || zc->nfree == 0)
        return NULL;
    struct zc_slot *s = &zc->slot[zc->free[--zc->nfree]];
    /* The builder's reference: the callback cannot run before
     * netvsp_zc_slot_end, whatever is freed meanwhile. */
    rte_mbuf_ext_refcnt_set(&s->shinfo, 1);
    return s;
}

void netvsp_zc_attach(struct zc_slot *s, struct rte_mbuf *m, const uint8_t *p, uint16_t len)
{
    rte_mbuf_ext_refcnt_update(&s->shinfo, 1);
    /* Guest memory is no DPDK memory: there is no IO address to give.
     * Ports copy it (PMDs in software, TAP writes, netvsp). */
    rte_pktmbuf_attach_extbuf(m, (void *)(uintptr_t)p, RTE_BAD_IOVA, len, &s->shinfo);
    m->data_len = len;
}

bool netvsp_zc_slot_end(struct netvsp_zc *zc, struct zc_slot *s, uint32_t lane_tag, uint64_t tid,
                        uint32_t status)
{
    s->lane_tag = lane_tag;
    s->tid = tid;
    s->status = status;
    /* The slot's reference on zc before the builder's goes: the callback
     * may run on another thread the moment it does. */
    __atomic_add_fetch(&zc->refs, 1, __ATOMIC_RELAXED);
    if (rte_mbuf_ext_refcnt_update(&s->shinfo, -1) == 0) {
        /* Nothing points into the guest's pages: done now. */
        __atomic_sub_fetch(&zc->refs, 1, __ATOMIC_RELAXED);
        zc->free[zc->nfree++] = s->idx;
        return false;
    }
    zc->inflight++;
    return true;
}

unsigned netvsp_zc_reap(struct netvsp_zc *zc, uint32_t *lane_tag, uint64_t *tid,
                        uint32_t *status)
{
    void *o = NULL;
    if (!zc || rte_ring_sc_dequeue(zc->done, &o) != 0)
        return 0;
    struct zc_slot *s = &zc->slot[(uintptr_t)o];
    *lane_tag = s->lane_tag;
    *tid = s->tid;
    *status = s->status;
    zc->free[zc->nfree++] = s->idx;
    zc->inflight--;
    return 1;
}

bool netvsp_zc_pending(const struct netvsp_zc *zc)
{
    return zc && zc->inflight;
}

int netvsp_gs_copy(const struct gstream *gs, uint32_t off, uint32_t len, void *dst)
{
    if ((uint64_t)off + len > gs->total)
        return -EINVAL;
    uint8_t *d = dst;
    for (uint32_t i = 0; i < gs->nseg && len; i++) {
        const struct gs_seg *s = &gs->seg[i];
        if (off >= s->len) {
            off -= s->len;
            continue;
        }
        uint32_t k = s->len - off < len ? s->len - off : len;
        memcpy(d, s->p + off, k);
        d += k;
        len -= k;
        off = 0;
    }
    return 0;
}

/* Copy len bytes at off of the stream onto the end of the chain head,
 * whose last segment is *last. -ENOMEM if the pool ran dry (the caller
 * frees the chain). */
static int chain_copy(struct rte_mempool *pool, struct rte_mbuf *head, struct rte_mbuf **last,
                      const struct gstream *gs, uint32_t off, uint32_t len)
{
    struct rte_mbuf *m = *last;
    uint32_t done = 0;
    while (done < len) {
        uint16_t room = rte_pktmbuf_tailroom(m);
        uint32_t k = len - done < room ? len - done : room;
        if (k == 0) {
            struct rte_mbuf *nm = rte_pktmbuf_alloc(pool);
            if (!nm)
                return -ENOMEM;
            m->next = nm;
            head->nb_segs++;
            m = nm;
            *last = m;
            continue;
        }
        netvsp_gs_copy(gs, off + done, k, rte_pktmbuf_mtod_offset(m, uint8_t *, m->data_len));
        m->data_len += (uint16_t)k;
        head->pkt_len += k;
        done += k;
    }
    return 0;
}

/*
 * Zero copy. A frame is taken without copying its payload when at least
 * ZC_MIN_PINNED of its bytes behind the first ZC_HDR lie in GPA-direct
 * pages: below that, copying costs less than an extra mbuf, its
 * shared-info reference and the deferred completion. Measured (a copy into
 * 2 KiB mbufs and the receiver's copy out, against the header copy, one
 * external segment, the callback's ring and the copy out; EPYC, cycles per
 * frame, source in cache / not): 1514 B 205/751 vs 214/731, 2048 B 230/795
 * vs 234/740, 2304 B 313/981 vs 246/917, 9000 B 850/4164 vs 383/2499,
 * 65000 B 10050/24152 vs 4435/12901. ZC_HDR bytes are always copied, and
 * zero copy is taken only when the frame's L2, L3 and L4 headers (tags,
 * IPv4 options, IPv6 extension headers, TCP options) all lie in that copy,
 * as DPDK's packet-type parser reads them, for TCP and UDP that is not a
 * fragment: whatever the switch decides on (classification, guards,
 * checksum and large-segment requests) and whatever it writes (tags, IP
 * lengths) is then in memory the guest cannot change. Anything else is
 * copied whole.
 */
#define ZC_HDR 256u
#define ZC_MIN_PINNED 2048u
#define ZC_EXT_MAX 32768u /* bytes per external segment (buf_len is 16 bits) */

/* Bytes of len at off of the stream in guest pages (pinned: in pages zero
 * copy may point into; else in GPA-direct pages at all). */
static uint32_t guest_bytes(const struct gstream *gs, uint32_t off, uint32_t len, bool pinned)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < gs->nseg && len; i++) {
        const struct gs_seg *s = &gs->seg[i];
        if (off >= s->len) {
            off -= s->len;
            continue;
        }
        uint32_t k = s->len - off < len ? s->len - off : len;
        if (pinned ? s->pinned : s->guest)
            n += k;
        len -= k;
        off = 0;
    }
    return n;
}

static bool headers_inside(struct rte_mbuf *m)
{
    struct rte_net_hdr_lens hl;
    uint32_t pt = rte_net_get_ptype(m, &hl, RTE_PTYPE_L2_MASK | RTE_PTYPE_L3_MASK |
                                               RTE_PTYPE_L4_MASK);
    uint32_t l4 = pt & RTE_PTYPE_L4_MASK;
    return (l4 == RTE_PTYPE_L4_TCP || l4 == RTE_PTYPE_L4_UDP) &&
           (uint32_t)hl.l2_len + hl.l3_len + hl.l4_len <= m->data_len;
}

/* Attach len bytes at off of the stream to the chain: pinned pages as
 * external segments of the slot zs (runs of adjacent pages as one), other
 * bytes copied. */
static int chain_attach(struct rte_mempool *pool, struct rte_mbuf *head, struct rte_mbuf **last,
                        const struct gstream *gs, uint32_t off, uint32_t len, struct zc_slot *zs)
{
    uint32_t at = 0; /* stream offset of seg[i] */
    for (uint32_t i = 0; i < gs->nseg && len; at += gs->seg[i].len, i++) {
        const struct gs_seg *s = &gs->seg[i];
        if (off >= s->len) {
            off -= s->len;
            continue;
        }
        uint32_t k = s->len - off < len ? s->len - off : len;
        if (!s->pinned) {
            if (chain_copy(pool, head, last, gs, at + off, k) < 0)
                return -ENOMEM;
            len -= k;
            off = 0;
            continue;
        }
        const uint8_t *p = s->p + off;
        uint32_t run = k;
        while (off + k == s->len && run < len && i + 1 < gs->nseg) {
            const struct gs_seg *n = &gs->seg[i + 1];
            uint32_t more = n->len < len - run ? n->len : len - run;
            if (!n->pinned || n->p != p + run || run + more > ZC_EXT_MAX)
                break;
            at += s->len;
            i++;
            s = n;
            off = 0;
            k = more;
            run += more;
        }
        struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
        if (!m)
            return -ENOMEM;
        netvsp_zc_attach(zs, m, p, (uint16_t)run);
        (*last)->next = m;
        *last = m;
        head->nb_segs++;
        head->pkt_len += run;
        len -= run;
        off = 0;
    }
    return 0;
}

struct rte_mbuf *netvsp_gs_to_mbuf(struct rte_mempool *pool, const struct gstream *gs, uint32_t off,
                                   uint32_t len, struct zc_slot *zs, enum netvsp_zc_use *use)
{
    struct rte_mbuf *head = rte_pktmbuf_alloc(pool);
    if (!head)
        return NULL;
    struct rte_mbuf *last = head;
    uint32_t h = len;
    /* Large enough, in guest pages: what zero copy is for, whether or not
     * it can be had (counted either way). */
    const bool large = len >= ZC_HDR + ZC_MIN_PINNED &&
                       guest_bytes(gs, off + ZC_HDR, len - ZC_HDR, false) >= ZC_MIN_PINNED;
    *use = large ? NETVSP_ZC_FALLBACK : NETVSP_ZC_NONE;
    if (large && zs && rte_pktmbuf_tailroom(head) >= ZC_HDR &&
        guest_bytes(gs, off + ZC_HDR, len - ZC_HDR, true) >= ZC_MIN_PINNED)
        h = ZC_HDR;
    if (chain_copy(pool, head, &last, gs, off, h) < 0)
        goto fail;
    if (h < len) {
        bool zc = headers_inside(head);
        int rc = zc ? chain_attach(pool, head, &last, gs, off + h, len - h, zs)
                    : chain_copy(pool, head, &last, gs, off + h, len - h);
        if (rc < 0)
            goto fail;
        if (zc)
            *use = NETVSP_ZC_TAKEN;
    }
    return head;
fail:
    rte_pktmbuf_free(head);
    return NULL;
}

/* The lane of tag t (struct lane) if that opening of the channel is still
 * open, else NULL. */
static struct lane *lane_of_tag(struct conn *c, uint32_t t)
{
    struct lane *l = __atomic_load_n(&c->lanes[t % NETVSP_QUEUES_MAX], __ATOMIC_ACQUIRE);
    return l && l->tag == t ? l : NULL;
}

static bool lane_room(const struct lane *l)
{
    return vmbus_ring_free_bytes(l->tx) >= netvsp_reply_room();
}

bool netvsp_zc_owed_ready(struct conn *c)
{
    for (uint32_t i = 0; i < c->nowed; i++) {
        const struct lane *l = lane_of_tag(c, c->owed[i].tag);
        if (!l || lane_room(l))
            return true;
    }
    return false;
}

/* Send or hold completion o: on its lane if that has room, held if not,
 * dropped if that opening of its channel has closed. */
static void complete_owed(struct conn *c, const struct zc_owed *o)
{
    struct lane *l = lane_of_tag(c, o->tag);
    if (l && !lane_room(l))
        c->owed[c->nowed++] = *o;
    else if (l)
        netvsp_send_completion(c, l, o->tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE, o->status);
}

/* Those held first, then those reaped now. A lane's ring room only goes
 * down here, so each lane's completions stay in order. */
uint32_t netvsp_zc_complete(struct conn *c)
{
    uint32_t n = c->nowed;
    c->nowed = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct zc_owed o = c->owed[i]; /* kept ones go to [nowed], nowed <= i */
        complete_owed(c, &o);
    }
    n -= c->nowed;
    struct zc_owed o;
    while (c->nowed < ZC_OWED_MAX && netvsp_zc_reap(c->zc, &o.tag, &o.tid, &o.status)) {
        complete_owed(c, &o);
        n++;
    }
    return n;
}
