/*
 * NVSP, the network VSP protocol carried in VMBus channel packets
 * (docs/protocol.md §4). DPDK-free: part of vmnic,
 * included by netvsp (root) and netvsc (guest). Every struct is packed as
 * on the wire, with its size asserted; each comment says who sends it and
 * what answers it.
 *
 * Message sizes: requests are at least 4 bytes + the fields a message needs
 * (guests send 28, 32 or 40); answers are 28 bytes before NVSP 6.1 and 40
 * from 6.1 on (padded to 32/40 in the ring).
 */
#ifndef NVSP_PROTO_H
#define NVSP_PROTO_H

#include <stdint.h>

#define NVSP_PROTOCOL_VERSION_1 0x00000002u
#define NVSP_PROTOCOL_VERSION_2 0x00030002u
#define NVSP_PROTOCOL_VERSION_4 0x00040000u
#define NVSP_PROTOCOL_VERSION_5 0x00050000u
#define NVSP_PROTOCOL_VERSION_6 0x00060000u
#define NVSP_PROTOCOL_VERSION_61 0x00060001u

/* Which of these both ends speak, their names and message sizes: the
 * table in vmnic.h (vmnic_nvsp_versions). */

#define NVSP_MSG_SIZE_LEGACY 28u
#define NVSP_MSG_SIZE_61 40u

enum nvsp_msg_type {
    NVSP_MSG_INIT = 1,
    NVSP_MSG_INIT_COMPLETE = 2,
    NVSP_MSG1_SEND_NDIS_VER = 100,
    NVSP_MSG1_SEND_RECV_BUF = 101,
    NVSP_MSG1_SEND_RECV_BUF_COMPLETE = 102,
    NVSP_MSG1_REVOKE_RECV_BUF = 103,
    NVSP_MSG1_SEND_SEND_BUF = 104,
    NVSP_MSG1_SEND_SEND_BUF_COMPLETE = 105,
    NVSP_MSG1_REVOKE_SEND_BUF = 106,
    NVSP_MSG1_SEND_RNDIS_PKT = 107,
    NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE = 108,
    NVSP_MSG2_SEND_NDIS_CONFIG = 125,
    NVSP_MSG4_SEND_VF_ASSOCIATION = 128,
    NVSP_MSG4_SWITCH_DATA_PATH = 129,
    NVSP_MSG5_OID_QUERY_EX = 131,
    NVSP_MSG5_OID_QUERY_EX_COMPLETE = 132,
    NVSP_MSG5_SUBCHANNEL = 133,
    NVSP_MSG5_SEND_INDIRECTION_TABLE = 134,
};

enum nvsp_status {
    NVSP_STAT_NONE = 0,
    NVSP_STAT_SUCCESS = 1,
    NVSP_STAT_FAIL = 2,
    NVSP_STAT_PROTOCOL_TOO_NEW = 3,
    NVSP_STAT_PROTOCOL_TOO_OLD = 4,
    NVSP_STAT_INVALID_RNDIS_PKT = 5,
    NVSP_STAT_BUSY = 6,
    NVSP_STAT_PROTOCOL_UNSUPPORTED = 7,
};

/* Receive buffer id Linux and DPDK use; the VSP echoes the guest's id as the
 * transfer page set id. */
#define NVSP_RECV_BUF_ID 0xcafe
#define NVSP_SEND_BUF_ID 0
/* Send-buffer section size the VSP hands out (Hyper-V's value). */
#define NVSP_SEND_SECTION_SIZE 6144u
#define NVSP_SECTION_NONE 0xffffffffu

/* Guest -> host, in-band with completion requested; answered by
 * INIT_COMPLETE in the completion packet. */
struct nvsp_msg_init {
    uint32_t type;
    uint32_t min_protocol_ver;
    uint32_t max_protocol_ver;
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_msg_init) == 12, "NVSP INIT");

/* Host -> guest (completion). */
struct nvsp_msg_init_complete {
    uint32_t type;
    uint32_t negotiated_ver; /* deprecated; OVMM sends 0xffffffff (2 for NVSP 1) */
    uint32_t max_mdl_chain_len;
    uint32_t status;
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_msg_init_complete) == 16, "NVSP INIT_COMPLETE");

/* Guest -> host; Linux and DPDK do not request a completion. */
struct nvsp_msg_ndis_ver {
    uint32_t type;
    uint32_t ndis_major;
    uint32_t ndis_minor;
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_msg_ndis_ver) == 12, "NVSP SEND_NDIS_VER");

/* Guest -> host, completion requested; answered by RECV_BUF_COMPLETE.
 * Also the layout of SEND_SEND_BUF (answered by SEND_BUF_COMPLETE). */
struct nvsp_msg_send_buf {
    uint32_t type;
    uint32_t gpadl;
    uint16_t id;
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_msg_send_buf) == 10, "NVSP SEND_RECV/SEND_BUF");

struct nvsp_recv_section {
    uint32_t offset;
    uint32_t sub_alloc_size;
    uint32_t num_sub_allocs;
    uint32_t end_offset;
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_recv_section) == 16, "receive section");

/* Host -> guest (completion). Guests require exactly one section at offset 0. */
struct nvsp_msg_recv_buf_complete {
    uint32_t type;
    uint32_t status;
    uint32_t num_sections;
    struct nvsp_recv_section sections[1];
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_msg_recv_buf_complete) == 28, "NVSP RECV_BUF_COMPLETE");

/* Host -> guest (completion). */
struct nvsp_msg_send_buf_complete {
    uint32_t type;
    uint32_t status;
    uint32_t section_size;
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_msg_send_buf_complete) == 12, "NVSP SEND_BUF_COMPLETE");

/* Guest -> host, no answer: the VSP stops using the buffer. */
struct nvsp_msg_revoke_buf {
    uint32_t type;
    uint16_t id;
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_msg_revoke_buf) == 6, "NVSP REVOKE_*_BUF");

#define NVSP_CHANNEL_TYPE_DATA 0
#define NVSP_CHANNEL_TYPE_CONTROL 1

/* Both ways. Guest -> host: in-band or GPA-direct, completion requested;
 * the RNDIS bytes are send_buf_section_size bytes of section
 * send_buf_section_index (unless NVSP_SECTION_NONE) followed by the
 * packet's GPA-direct ranges. Host -> guest: a transfer-page packet whose
 * ranges each hold one RNDIS message; the guest answers RNDIS_PKT_COMPLETE. */
struct nvsp_msg_rndis_pkt {
    uint32_t type;
    uint32_t channel_type;
    uint32_t send_buf_section_index;
    uint32_t send_buf_section_size;
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_msg_rndis_pkt) == 16, "NVSP SEND_RNDIS_PKT");

/* Both ways (completion). */
struct nvsp_msg_rndis_pkt_complete {
    uint32_t type;
    uint32_t status;
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_msg_rndis_pkt_complete) == 8, "NVSP RNDIS_PKT_COMPLETE");

/* NDIS_CONFIG capability bits. */
#define NVSP_CAP_VMQ (1ull << 0)
#define NVSP_CAP_CHIMNEY (1ull << 1)
#define NVSP_CAP_SRIOV (1ull << 2)
#define NVSP_CAP_IEEE8021Q (1ull << 3)
#define NVSP_CAP_CORRELATION_ID (1ull << 4)
#define NVSP_CAP_TEAMING (1ull << 5)
#define NVSP_CAP_VSUBNETID (1ull << 6)
#define NVSP_CAP_RSC (1ull << 7)

/* Guest -> host (NVSP >= 2), before SEND_RECV_BUF; no completion unless
 * requested. mtu is the largest Ethernet frame: L3 MTU + 14. */
struct nvsp_msg_ndis_config {
    uint32_t type;
    uint32_t mtu;
    uint32_t reserved;
    uint64_t capabilities;
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_msg_ndis_config) == 20, "NVSP SEND_NDIS_CONFIG");

/* Frame sizes NDIS_CONFIG may ask for; outside them the VSP uses the default
 * (as vmswitch does, per OVMM). */
#define NVSP_NDIS_MTU_MIN 1514u
#define NVSP_NDIS_MTU_MAX 9216u
#define NVSP_NDIS_MTU_DEFAULT 1514u

/* Guest -> host (NVSP >= 5), completion requested; answered with the same
 * type: {type, status, num_subchannels}. */
#define NVSP_SUBCHANNEL_ALLOCATE 1
struct nvsp_msg_subchannel {
    uint32_t type;
    uint32_t op_or_status;
    uint32_t num_subchannels;
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_msg_subchannel) == 12, "NVSP SUBCHANNEL");

/* Guest -> host (NVSP >= 4), completion requested. */
struct nvsp_msg_switch_data_path {
    uint32_t type;
    uint32_t active_datapath; /* 0 synthetic, 1 VF */
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_msg_switch_data_path) == 8, "NVSP SWITCH_DATA_PATH");

/* Host -> guest (NVSP >= 5), no completion: 16 channel indices. */
#define NVSP_INDIRECTION_TABLE_ENTRIES 16
struct nvsp_msg_indirection_table {
    uint32_t type;
    uint32_t count;
    uint32_t offset; /* of the u32 table, from the start of this message */
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_msg_indirection_table) == 12, "NVSP SEND_INDIRECTION_TABLE");

/* Guest -> host (NVSP >= 5); the VSP answers NOT_SUPPORTED like OVMM. */
struct nvsp_msg_oid_query_ex {
    uint32_t type;
    uint32_t ndis_hdr;
    uint32_t oid;
} __attribute__((packed));
_Static_assert(sizeof(struct nvsp_msg_oid_query_ex) == 12, "NVSP OID_QUERY_EX");

/* Minimum length of each message a guest may send (0 = not accepted from a
 * guest), and the NVSP version that introduced it. */
static inline uint32_t nvsp_guest_msg_min_len(uint32_t type, uint32_t *min_version)
{
    switch (type) {
    case NVSP_MSG_INIT:
        *min_version = 0;
        return sizeof(struct nvsp_msg_init);
    case NVSP_MSG1_SEND_NDIS_VER:
        *min_version = NVSP_PROTOCOL_VERSION_1;
        return sizeof(struct nvsp_msg_ndis_ver);
    case NVSP_MSG1_SEND_RECV_BUF:
    case NVSP_MSG1_SEND_SEND_BUF:
        *min_version = NVSP_PROTOCOL_VERSION_1;
        return sizeof(struct nvsp_msg_send_buf);
    case NVSP_MSG1_REVOKE_RECV_BUF:
    case NVSP_MSG1_REVOKE_SEND_BUF:
        *min_version = NVSP_PROTOCOL_VERSION_1;
        return sizeof(struct nvsp_msg_revoke_buf);
    case NVSP_MSG1_SEND_RNDIS_PKT:
        *min_version = NVSP_PROTOCOL_VERSION_1;
        return sizeof(struct nvsp_msg_rndis_pkt);
    case NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE:
        *min_version = NVSP_PROTOCOL_VERSION_1;
        return sizeof(struct nvsp_msg_rndis_pkt_complete);
    case NVSP_MSG2_SEND_NDIS_CONFIG:
        *min_version = NVSP_PROTOCOL_VERSION_2;
        return sizeof(struct nvsp_msg_ndis_config);
    case NVSP_MSG4_SWITCH_DATA_PATH:
        *min_version = NVSP_PROTOCOL_VERSION_4;
        return sizeof(struct nvsp_msg_switch_data_path);
    case NVSP_MSG5_OID_QUERY_EX:
        *min_version = NVSP_PROTOCOL_VERSION_5;
        return sizeof(struct nvsp_msg_oid_query_ex);
    case NVSP_MSG5_SUBCHANNEL:
        *min_version = NVSP_PROTOCOL_VERSION_5;
        return sizeof(struct nvsp_msg_subchannel);
    default:
        *min_version = 0;
        return 0;
    }
}

#endif
