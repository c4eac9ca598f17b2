/*
 * VMBus channel-management messages, as carried in the payload of a SynIC
 * message of type HVMSG_VMBUS (at most 240 bytes). Shared by the VMBus server
 * (root) and client (guest). Layouts follow
 * docs/protocol.md §2; every struct is packed and has its
 * size asserted. Each comment says who sends the message and what answers it.
 */
#ifndef VMBUS_PROTO_H
#define VMBUS_PROTO_H

#include <stdint.h>

/* SINT the guest receives VMBus messages and channel events on. */
#define VMBUS_MESSAGE_SINT 2

/* Well-known connection ids (guest -> host). */
#define VMBUS_MESSAGE_CONNECTION_ID 1
#define VMBUS_EVENT_CONNECTION_ID 2
#define VMBUS_MONITOR_CONNECTION_ID 3
#define VMBUS_MESSAGE_CONNECTION_ID_4 4

/* Protocol versions, major << 16 | minor. */
#define VMBUS_VERSION_WS2008 0x0000000du
#define VMBUS_VERSION_WIN7 0x00010001u
#define VMBUS_VERSION_WIN8 0x00020004u
#define VMBUS_VERSION_WIN8_1 0x00030000u
#define VMBUS_VERSION_WIN10 0x00040000u
#define VMBUS_VERSION_WIN10_V4_1 0x00040001u
#define VMBUS_VERSION_WIN10_V5 0x00050000u
#define VMBUS_VERSION_WIN10_V5_1 0x00050001u
#define VMBUS_VERSION_WIN10_V5_2 0x00050002u
#define VMBUS_VERSION_WIN10_V5_3 0x00050003u

/* The first-cut profile (reference §8): these exact versions, newest first.
 * The client proposes them in this order; the server accepts only these. */
static const uint32_t vmbus_versions[] = {
    VMBUS_VERSION_WIN10_V5_3, VMBUS_VERSION_WIN10_V5_2, VMBUS_VERSION_WIN10_V5_1,
    VMBUS_VERSION_WIN10_V5,   VMBUS_VERSION_WIN10_V4_1, VMBUS_VERSION_WIN10,
    VMBUS_VERSION_WIN8_1,     VMBUS_VERSION_WIN8,
};
#define VMBUS_VERSION_COUNT (sizeof(vmbus_versions) / sizeof(vmbus_versions[0]))

enum vmbus_msg_type {
    VMBUS_MSG_INVALID = 0,
    VMBUS_MSG_OFFERCHANNEL = 1,
    VMBUS_MSG_RESCIND_CHANNELOFFER = 2,
    VMBUS_MSG_REQUESTOFFERS = 3,
    VMBUS_MSG_ALLOFFERS_DELIVERED = 4,
    VMBUS_MSG_OPENCHANNEL = 5,
    VMBUS_MSG_OPENCHANNEL_RESULT = 6,
    VMBUS_MSG_CLOSECHANNEL = 7,
    VMBUS_MSG_GPADL_HEADER = 8,
    VMBUS_MSG_GPADL_BODY = 9,
    VMBUS_MSG_GPADL_CREATED = 10,
    VMBUS_MSG_GPADL_TEARDOWN = 11,
    VMBUS_MSG_GPADL_TORNDOWN = 12,
    VMBUS_MSG_RELID_RELEASED = 13,
    VMBUS_MSG_INITIATE_CONTACT = 14,
    VMBUS_MSG_VERSION_RESPONSE = 15,
    VMBUS_MSG_UNLOAD = 16,
    VMBUS_MSG_UNLOAD_RESPONSE = 17,
    VMBUS_MSG_MODIFYCHANNEL = 22,
    VMBUS_MSG_MODIFYCHANNEL_RESPONSE = 24,
    VMBUS_MSG_TYPE_MAX = 25,
};

/* Windows mixed-endian GUID bytes as they travel on the wire. */
struct vmbus_guid {
    uint8_t b[16];
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_guid) == 16, "guid");

/* Synthetic network device class f8615163-df3e-46c5-913f-f2d2f965ed0e. */
#define VMBUS_GUID_NETVSC                                                                          \
    {                                                                                              \
        {                                                                                          \
            0x63, 0x51, 0x61, 0xf8, 0x3e, 0xdf, 0xc5, 0x46, 0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65,   \
                0xed, 0x0e                                                                         \
        }                                                                                          \
    }

/* Every channel message starts with this header. */
struct vmbus_msg_hdr {
    uint32_t msgtype;
    uint32_t padding;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_msg_hdr) == 8, "channel message header");

/* Host -> guest after REQUESTOFFERS (and for hot-added devices); no reply. */
#define VMBUS_OFFER_FLAG_ENUMERATE_DEVICE_INTERFACE 0x0001
#define VMBUS_OFFER_MONITOR_NONE 0xff
struct vmbus_msg_offer {
    struct vmbus_msg_hdr hdr;
    struct vmbus_guid interface_type;
    struct vmbus_guid interface_instance;
    uint8_t reserved1[16];
    uint16_t chan_flags;
    uint16_t mmio_megabytes;
    uint8_t user_defined[120];
    uint16_t sub_channel_index;
    uint16_t reserved2;
    uint32_t child_relid;
    uint8_t monitor_id;
    uint8_t monitor_allocated; /* bit 0 */
    uint16_t is_dedicated_interrupt; /* bit 0 */
    uint32_t connection_id;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_msg_offer) == 196, "OFFERCHANNEL");

/* Host -> guest; the guest closes and tears down, then answers RELID_RELEASED.
 * Also the layout of CLOSECHANNEL (guest -> host, no reply) and
 * RELID_RELEASED (guest -> host, no reply). */
struct vmbus_msg_relid {
    struct vmbus_msg_hdr hdr;
    uint32_t child_relid;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_msg_relid) == 12, "relid message");

/* Guest -> host; answered by OPENCHANNEL_RESULT. */
struct vmbus_msg_open {
    struct vmbus_msg_hdr hdr;
    uint32_t child_relid;
    uint32_t open_id;
    uint32_t ring_gpadl;
    uint32_t target_vp;
    uint32_t downstream_page_offset; /* first page of the host->guest ring */
    uint8_t user_data[120];
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_msg_open) == 148, "OPENCHANNEL");

/* Host -> guest; status 0 = success. */
struct vmbus_msg_open_result {
    struct vmbus_msg_hdr hdr;
    uint32_t child_relid;
    uint32_t open_id;
    uint32_t status;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_msg_open_result) == 20, "OPENCHANNEL_RESULT");

/* One GPADL range: byte_count bytes starting byte_offset into the first of
 * ceil((byte_offset + byte_count) / 4096) pages whose PFNs follow. */
struct vmbus_gpa_range {
    uint32_t byte_count;
    uint32_t byte_offset;
    uint64_t pfn[];
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_gpa_range) == 8, "gpa range header");

/* Guest -> host; continued by GPADL_BODY messages until all PFNs are sent;
 * answered by GPADL_CREATED. range_buflen counts the bytes of all range
 * records (headers and PFNs). */
struct vmbus_msg_gpadl_header {
    struct vmbus_msg_hdr hdr;
    uint32_t child_relid;
    uint32_t gpadl;
    uint16_t range_buflen;
    uint16_t rangecount;
    /* struct vmbus_gpa_range ranges[] follow, not 8-byte aligned */
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_msg_gpadl_header) == 20, "GPADL_HEADER");

/* Guest -> host; more PFNs of the in-progress GPADL `gpadl`. */
struct vmbus_msg_gpadl_body {
    struct vmbus_msg_hdr hdr;
    uint32_t msgnumber;
    uint32_t gpadl;
    /* uint64_t pfn[] follow */
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_msg_gpadl_body) == 16, "GPADL_BODY");

/* Host -> guest; status 0 = success. */
struct vmbus_msg_gpadl_created {
    struct vmbus_msg_hdr hdr;
    uint32_t child_relid;
    uint32_t gpadl;
    uint32_t status;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_msg_gpadl_created) == 20, "GPADL_CREATED");

/* Guest -> host; answered by GPADL_TORNDOWN once nothing uses it. */
struct vmbus_msg_gpadl_teardown {
    struct vmbus_msg_hdr hdr;
    uint32_t child_relid;
    uint32_t gpadl;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_msg_gpadl_teardown) == 16, "GPADL_TEARDOWN");

/* Host -> guest. */
struct vmbus_msg_gpadl_torndown {
    struct vmbus_msg_hdr hdr;
    uint32_t gpadl;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_msg_gpadl_torndown) == 12, "GPADL_TORNDOWN");

/* Guest -> host on connection id 1 (< 5.0) or 4 (>= 5.0); answered by
 * VERSION_RESPONSE. From 5.0 on, interrupt_page is replaced by
 * {msg_sint, msg_vtl, pad[2], feature_flags}. */
struct vmbus_msg_initiate_contact {
    struct vmbus_msg_hdr hdr;
    uint32_t version_requested;
    uint32_t target_vcpu;
    union {
        uint64_t interrupt_page;
        struct {
            uint8_t msg_sint;
            uint8_t msg_vtl;
            uint8_t pad[2];
            uint32_t feature_flags;
        } __attribute__((packed)) v5;
    } u;
    uint64_t monitor_page1;
    uint64_t monitor_page2;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_msg_initiate_contact) == 40, "INITIATE_CONTACT");

/* Host -> guest. msg_conn_id (>= 5.0): the connection id the guest uses for
 * all further messages. */
struct vmbus_msg_version_response {
    struct vmbus_msg_hdr hdr;
    uint8_t version_supported;
    uint8_t connection_state;
    uint16_t padding;
    uint32_t msg_conn_id;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_msg_version_response) == 16, "VERSION_RESPONSE");

/* Guest -> host (protocol >= 4.1); answered with MODIFYCHANNEL_RESPONSE
 * from 5.3 on. */
struct vmbus_msg_modify_channel {
    struct vmbus_msg_hdr hdr;
    uint32_t child_relid;
    uint32_t target_vp;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_msg_modify_channel) == 16, "MODIFYCHANNEL");

struct vmbus_msg_modify_channel_response {
    struct vmbus_msg_hdr hdr;
    uint32_t child_relid;
    uint32_t status;
} __attribute__((packed));
_Static_assert(sizeof(struct vmbus_msg_modify_channel_response) == 16, "MODIFYCHANNEL_RESPONSE");

/* Most PFNs one GPADL_HEADER with a single range, and one GPADL_BODY, carry. */
#define VMBUS_GPADL_HEADER_MAX_PFNS                                                               \
    ((240 - sizeof(struct vmbus_msg_gpadl_header) - sizeof(struct vmbus_gpa_range)) / 8)
#define VMBUS_GPADL_BODY_MAX_PFNS ((240 - sizeof(struct vmbus_msg_gpadl_body)) / 8)
_Static_assert(VMBUS_GPADL_HEADER_MAX_PFNS == 26, "26 PFNs in a header");
_Static_assert(VMBUS_GPADL_BODY_MAX_PFNS == 28, "28 PFNs in a body");

/* GPADL_CREATED / OPENCHANNEL_RESULT failure status (OVMM uses this value). */
#define VMBUS_STATUS_FAILURE 0x8000ffffu

#endif
