/*
 * VMBus ring buffers: one producer, one consumer, in shared memory that the
 * peer may rewrite at any moment.
 *
 * A ring is a header page followed by a data area of dsize bytes. The data
 * area must be mapped twice back to back (data[i] and data[i + dsize] are the
 * same byte), so that every packet is contiguous in virtual memory; see
 * hv_mem_map_ring(). Both the root and the guest use this code.
 *
 * The producer stages packets with vmbus_ring_put() and makes them visible
 * with vmbus_ring_publish(); the consumer copies packets out with
 * vmbus_ring_get() and frees their space with vmbus_ring_release(). Staging
 * several packets before one publish/release is the burst interface: one
 * index store and at most one signal per burst.
 *
 * Thread-safety: a struct vmbus_ring is used by one thread as producer or as
 * consumer, never both, never concurrently with itself. The two ends of a
 * shared ring are two struct vmbus_ring in two processes.
 *
 * Errors: indices or descriptors that break the layout make the ring
 * corrupt: the call returns -EPROTO, the reason is counted in stats, and
 * every later call returns -EPROTO. The owner then closes the channel.
 */
#ifndef VMBUS_RING_H
#define VMBUS_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmbus-ring-proto.h"

enum vmbus_ring_error {
    VMBUS_RING_ERR_WRITE_INDEX, /* peer's write index out of range or unaligned */
    VMBUS_RING_ERR_READ_INDEX,  /* peer's read index out of range or unaligned */
    VMBUS_RING_ERR_TRUNCATED,   /* fewer bytes than a descriptor + trailer */
    VMBUS_RING_ERR_DESC,        /* offset8/len8 inconsistent or beyond data */
    VMBUS_RING_ERR_TYPE,        /* packet type not accepted on this ring */
    VMBUS_RING_ERR_FLAGS,       /* unknown flag bits */
    VMBUS_RING_ERR_COUNT
};

struct vmbus_ring_stats {
    uint64_t packets;   /* put (producer) or got (consumer) */
    uint64_t bytes;     /* ring bytes, descriptors and trailers included */
    uint64_t signals;   /* publish/release results that asked for a signal */
    uint64_t full;      /* puts refused for lack of space */
    uint64_t errors[VMBUS_RING_ERR_COUNT];
};

struct vmbus_ring {
    struct vmbus_ring_hdr *hdr; /* shared */
    uint8_t *data;              /* shared, double-mapped */
    uint32_t dsize;
    uint32_t type_mask; /* bit t set: packet type t accepted by get() */
    /* producer */
    uint32_t windex;     /* next write offset, staged */
    uint32_t pub_windex; /* last published write index */
    bool pending_armed;
    /* consumer */
    uint32_t rindex;     /* next read offset, consumed but maybe unpublished */
    uint32_t pub_rindex; /* last published read index */
    int error;           /* 0 or -EPROTO, sticky */
    struct vmbus_ring_stats stats;
};

/* Types a consumer accepts unless told otherwise. */
#define VMBUS_RING_TYPES_DEFAULT                                                                   \
    ((1u << VMBUS_PKT_DATA_INBAND) | (1u << VMBUS_PKT_DATA_USING_XFER_PAGES) |                     \
     (1u << VMBUS_PKT_DATA_USING_GPA_DIRECT) | (1u << VMBUS_PKT_COMP))

/* Smallest data area the ring code accepts, and the largest (indices are u32;
 * the cap keeps every sum in 32 bits). */
#define VMBUS_RING_DSIZE_MIN 4096u
#define VMBUS_RING_DSIZE_MAX (1u << 30)

/*
 * Attach to a ring whose header page is at `view` and whose data area of
 * `dsize` bytes (page multiple) is mapped twice right after it.
 * As producer: reads and validates the current write index once, and sets
 * FEAT_PENDING_SEND_SZ on the ring. As consumer: reads and validates the
 * current read index once. Returns 0, -EINVAL (bad geometry) or -EPROTO
 * (the shared index is invalid).
 */
int vmbus_ring_init_producer(struct vmbus_ring *r, void *view, uint32_t dsize);
int vmbus_ring_init_consumer(struct vmbus_ring *r, void *view, uint32_t dsize, uint32_t type_mask);

/* Zero a ring's header before first use (the side that allocates the ring
 * does this before handing it to the peer). */
void vmbus_ring_format(void *view);

/* Ring bytes a packet with `ext_len` header bytes after the descriptor and
 * `payload_len` payload bytes occupies, trailer included. */
static inline uint32_t vmbus_ring_pkt_size(uint32_t ext_len, uint32_t payload_len)
{
    return ((16u + ext_len + payload_len + 7u) & ~7u) + VMBUS_RING_TRAILER_SIZE;
}

/*
 * Producer: stage one packet of `type` whose descriptor is followed by
 * `ext_len` bytes of type-specific header (a multiple of 8; 0 for in-band and
 * completion packets) and then the payload gathered from iov. The payload is
 * padded to 8 bytes with zeroes. Nothing is visible to the consumer before
 * vmbus_ring_publish().
 * Returns 0; -EAGAIN if there is no room now (publish what is staged, then
 * vmbus_ring_arm_space() and wait for a signal); -EMSGSIZE if the packet can
 * never fit; -EINVAL for a bad ext_len; -EPROTO if the ring is corrupt.
 */
int vmbus_ring_put(struct vmbus_ring *r, uint16_t type, uint16_t flags, uint64_t trans_id,
                   const void *ext, uint32_t ext_len, const struct iovec *iov, int iovcnt);

/* Producer convenience: one in-band (or completion) packet with a flat payload. */
int vmbus_ring_put_inband(struct vmbus_ring *r, uint16_t type, uint16_t flags, uint64_t trans_id,
                          const void *payload, uint32_t len);

/*
 * Producer: make every staged packet visible. Returns 1 if the consumer must
 * be signalled (it had nothing to read and has interrupts unmasked), 0 if
 * not, -EPROTO if the ring is corrupt.
 */
int vmbus_ring_publish(struct vmbus_ring *r);

/*
 * Producer: ask the consumer to signal once `bytes` (a vmbus_ring_pkt_size())
 * are free. Returns 1 if the space is already there (do not wait), 0 if the
 * caller should wait for the signal, -EMSGSIZE if no packet of that size can
 * ever fit (nothing armed), -EPROTO if the ring is corrupt. The request is
 * withdrawn by the next successful put.
 */
int vmbus_ring_arm_space(struct vmbus_ring *r, uint32_t bytes);

/* Producer: bytes that can be staged now (a packet needs pkt_size < this + 1). */
uint32_t vmbus_ring_free_bytes(struct vmbus_ring *r);

/*
 * Consumer: copy the next packet, descriptor included, into buf and consume
 * it. The copy is taken once and its descriptor is validated; callers parse
 * only the copy (vmbus_pkt_parse()). Returns the packet length in bytes
 * (len8 * 8), -EAGAIN if the ring is empty, -EMSGSIZE if the packet is longer
 * than `size` (nothing consumed), -EPROTO if the ring is corrupt.
 */
int vmbus_ring_get(struct vmbus_ring *r, void *buf, uint32_t size);

/*
 * Consumer: publish the space of every packet got so far. Returns 1 if the
 * producer must be signalled (it asked for space with pending_send_sz and the
 * free space just crossed that threshold), 0 if not, -EPROTO if corrupt.
 */
int vmbus_ring_release(struct vmbus_ring *r);

/* Consumer: true if no unconsumed packet is visible. A corrupt ring reads as
 * not empty so that the next get() reports it. */
bool vmbus_ring_empty(struct vmbus_ring *r);

/*
 * Consumer interrupt control. mask: "I am polling, do not signal". unmask:
 * "signal me on new data"; returns true if data arrived before the unmask took
 * effect, in which case the caller must poll again rather than sleep.
 */
void vmbus_ring_intr_mask(struct vmbus_ring *r);
bool vmbus_ring_intr_unmask(struct vmbus_ring *r);

/* Parsed view of a packet copied out by vmbus_ring_get(). */
struct vmbus_pkt {
    uint16_t type;
    uint16_t flags;
    uint64_t trans_id;
    const uint8_t *ext; /* type-specific header after the descriptor */
    uint32_t ext_len;
    const uint8_t *payload; /* from offset8 * 8 to the end, padding included */
    uint32_t payload_len;
};

/* Split a copied packet into its parts. Returns 0 or -EPROTO if the copy is
 * not a packet (only possible if it did not come from vmbus_ring_get()). */
int vmbus_pkt_parse(const void *buf, uint32_t len, struct vmbus_pkt *out);

/* One range of a GPA-direct packet or GPADL, validated. */
struct vmbus_range {
    uint32_t byte_count;
    uint32_t byte_offset; /* < 4096 */
    uint32_t pfn_count;   /* ceil((byte_offset + byte_count) / 4096) */
    const uint8_t *pfns;  /* pfn_count unaligned little-endian u64 */
};

static inline uint64_t vmbus_range_pfn(const struct vmbus_range *rg, uint32_t i)
{
    uint64_t v;
    __builtin_memcpy(&v, rg->pfns + (size_t)i * 8, 8);
    return v;
}

/*
 * Parse `count` GPA range records from buf[0..len). Each record must have
 * byte_count != 0, byte_offset < 4096, and all its PFNs inside buf. Fills at
 * most max_ranges entries. Returns the bytes the records occupy, or -EPROTO.
 * PFNs are not checked against any memory: that is the caller's job.
 */
int vmbus_parse_gpa_ranges(const uint8_t *buf, uint32_t len, uint32_t count,
                           struct vmbus_range *ranges, uint32_t max_ranges);

/* GPA-direct packet: its ranges (as above) and the payload after them. At
 * most max_ranges ranges. Returns the range count or -EPROTO. */
int vmbus_pkt_gpa_direct(const struct vmbus_pkt *pkt, struct vmbus_range *ranges,
                         uint32_t max_ranges);

/* Transfer-page packet: pageset id and ranges (pointer into the copy), at most
 * max_ranges. Returns the range count or -EPROTO. */
int vmbus_pkt_xfer_pages(const struct vmbus_pkt *pkt, uint16_t *pageset_id,
                         const struct vmbus_xfer_range **ranges, uint32_t max_ranges);

/* Producer helpers for the two structured packet types. ranges/pfns are
 * written as given; the caller builds them from memory it granted. */
int vmbus_ring_put_xfer_pages(struct vmbus_ring *r, uint64_t trans_id, uint16_t pageset_id,
                              const struct vmbus_xfer_range *ranges, uint32_t nranges,
                              const void *payload, uint32_t len);

#endif
