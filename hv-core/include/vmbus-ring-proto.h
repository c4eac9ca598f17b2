/*
 * VMBus ring buffer layout and packet formats (docs/protocol.md §3).
 * Shared by both ends of a channel; the ring code in vmbus-ring.h is the only
 * code that touches these fields in shared memory.
 */
#ifndef VMBUS_RING_PROTO_H
#define VMBUS_RING_PROTO_H

#include <stdint.h>

/*
 * Ring header page. write_index and pending_send_sz belong to the producer,
 * read_index and interrupt_mask to the consumer; feature_bits is set by the
 * producer of this ring. Indices are byte offsets into the data area that
 * follows the header page, always < data size and multiples of 8.
 * Every field is naturally aligned, so the struct needs no packing (and its
 * fields can be used with atomic builtins).
 */
#define VMBUS_RING_FEAT_PENDING_SEND_SZ 0x1u
struct vmbus_ring_hdr {
    uint32_t write_index;
    uint32_t read_index;
    uint32_t interrupt_mask;
    uint32_t pending_send_sz;
    uint32_t reserved1[12];
    uint32_t feature_bits;
    uint8_t reserved2[4096 - 68];
};
_Static_assert(sizeof(struct vmbus_ring_hdr) == 4096, "ring header is one page");
_Static_assert(__builtin_offsetof(struct vmbus_ring_hdr, interrupt_mask) == 8, "mask offset");
_Static_assert(__builtin_offsetof(struct vmbus_ring_hdr, pending_send_sz) == 12, "pending offset");
_Static_assert(__builtin_offsetof(struct vmbus_ring_hdr, feature_bits) == 64, "feature offset");

/* Packet types. */
#define VMBUS_PKT_DATA_INBAND 0x6
#define VMBUS_PKT_DATA_USING_XFER_PAGES 0x7
#define VMBUS_PKT_DATA_USING_GPA_DIRECT 0x9
#define VMBUS_PKT_COMP 0xb

#define VMBUS_PKT_FLAG_COMPLETION_REQUESTED 0x1

/* Descriptor at the start of every packet. offset8: header length in 8-byte
 * units (payload starts there); len8: packet length in 8-byte units, not
 * counting the 8-byte trailer that follows every packet. */
struct vmbus_pkt_desc {
    uint16_t type;
    uint16_t offset8;
    uint16_t len8;
    uint16_t flags;
    uint64_t trans_id;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_pkt_desc) == 16, "packet descriptor");

/* GPA-direct header: descriptor, then range_count ranges, each a
 * vmbus_gpa_range with its PFNs (vmbus-proto.h). */
struct vmbus_pkt_gpa_direct {
    struct vmbus_pkt_desc desc;
    uint32_t reserved;
    uint32_t range_count;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_pkt_gpa_direct) == 24, "gpa direct header");

/* Transfer-page header: descriptor, then range_count {byte_count, byte_offset}
 * records relative to the start of the registered transfer page set. */
struct vmbus_xfer_range {
    uint32_t byte_count;
    uint32_t byte_offset;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_xfer_range) == 8, "xfer range");

struct vmbus_pkt_xfer_pages {
    struct vmbus_pkt_desc desc;
    uint16_t xfer_pageset_id;
    uint8_t sender_owns_set;
    uint8_t reserved;
    uint32_t range_count;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_pkt_xfer_pages) == 24, "xfer pages header");

/* The 8-byte trailer: start offset of the packet in the upper 32 bits. */
#define VMBUS_RING_TRAILER_SIZE 8u

#endif
