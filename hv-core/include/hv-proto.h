/*
 * Hypervisor wire formats: TLFS hypercall codes and status values, the SynIC
 * message slot, and the records of the process-partition hypercall socket.
 *
 * Shared by the root (hypercall broker, SynIC) and the guest (hypercall
 * client). Every struct is packed as the protocol lays it out and carries a
 * size assertion. Offsets and values follow the Hyper-V TLFS; see
 * docs/protocol.md §1.
 */
#ifndef HV_PROTO_H
#define HV_PROTO_H

#include <stdint.h>

#define HV_PAGE_SHIFT 12
#define HV_PAGE_SIZE (1u << HV_PAGE_SHIFT)

/* Hypercall codes (TLFS). */
#define HVCALL_POST_MESSAGE 0x005c
#define HVCALL_SIGNAL_EVENT 0x005d

/*
 * Calls of our own for what a real partition does with MSR writes or
 * KVM-style registrations; numbered above the TLFS range so they can never
 * collide with a real hypercall code.
 *   SYNIC_SETUP  = writing SIMP/SIEFP/SINTx MSRs
 *   EOM          = writing the EOM MSR
 *   EVENT_FD     = ask for the eventfd behind a connection id, so the guest
 *                  can signal it without a round trip (like a KVM ioeventfd)
 */
#define HVCALL_EXT_SYNIC_SETUP 0x8001
#define HVCALL_EXT_EOM 0x8002
#define HVCALL_EXT_EVENT_FD 0x8003

/* Hypercall status values (TLFS HV_STATUS). */
#define HV_STATUS_SUCCESS 0
#define HV_STATUS_INVALID_HYPERCALL_CODE 2
#define HV_STATUS_INVALID_HYPERCALL_INPUT 3
#define HV_STATUS_INVALID_ALIGNMENT 4
#define HV_STATUS_INVALID_PARAMETER 5
#define HV_STATUS_ACCESS_DENIED 6
#define HV_STATUS_INVALID_PARTITION_STATE 7
#define HV_STATUS_OPERATION_DENIED 8
#define HV_STATUS_INSUFFICIENT_MEMORY 11
#define HV_STATUS_INVALID_VP_INDEX 14
#define HV_STATUS_INVALID_PORT_ID 17
#define HV_STATUS_INVALID_CONNECTION_ID 18
#define HV_STATUS_INSUFFICIENT_BUFFERS 19

/*
 * Virtual processors: a partition has 1..HV_PARTITION_VPS_MAX, numbered
 * from 0, each with a SynIC of its own (SIMP and SIEF pages, SINTs), as in
 * Hyper-V. 64 is the most queues (VMBus sub-channels) a synthetic NIC can
 * have, so that each can interrupt a VP of its own.
 */
#define HV_PARTITION_VPS_MAX 64

/* SynIC geometry. */
#define HV_SINT_COUNT 16
#define HV_MESSAGE_SLOT_SIZE 256
#define HV_MESSAGE_PAYLOAD_MAX 240
#define HV_EVENT_FLAGS_BYTES 256 /* per SINT in the SIEF page */
#define HV_EVENT_FLAGS_COUNT (HV_EVENT_FLAGS_BYTES * 8)

/* HV_MESSAGE.message_type values. */
#define HVMSG_NONE 0
#define HVMSG_VMBUS 1

#define HV_MESSAGE_FLAG_PENDING 0x01

/*
 * One SynIC message slot (HV_MESSAGE), 256 bytes; the SIMP page holds one
 * per SINT. Written by the hypervisor (root) into a free slot
 * (message_type == 0); freed by the guest, which writes message_type = 0 and
 * then, if MessagePending was set, issues EOM.
 */
struct hv_message {
    uint32_t message_type;
    uint8_t payload_size;
    uint8_t flags;
    uint16_t reserved;
    uint64_t origin;
    uint8_t payload[HV_MESSAGE_PAYLOAD_MAX];
} __attribute__((packed, aligned(8))); /* slots are 256-byte aligned in the SIMP page;
                                        * the atomics on message_type need it */
_Static_assert(sizeof(struct hv_message) == HV_MESSAGE_SLOT_SIZE, "HV_MESSAGE is 256 bytes");

/* HvCallPostMessage input. message_type must be non-zero with the high bit clear. */
struct hv_input_post_message {
    uint32_t connection_id;
    uint32_t reserved;
    uint32_t message_type;
    uint32_t payload_size;
    uint8_t payload[HV_MESSAGE_PAYLOAD_MAX];
} __attribute__((packed));
_Static_assert(sizeof(struct hv_input_post_message) == 256, "post message input");

/* HvCallSignalEvent input. */
struct hv_input_signal_event {
    uint32_t connection_id;
    uint16_t flag_number;
    uint16_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct hv_input_signal_event) == 8, "signal event input");

/* HVCALL_EXT_SYNIC_SETUP input: GPAs of the SIMP and SIEF pages (page
 * aligned, inside guest memory, distinct) and the SINTs to enable, on VP
 * vp_index (what that VP's MSR writes do on real hardware). The answer for
 * a VP other than 0 carries that VP's SINT eventfd as SCM_RIGHTS (VP 0's is
 * the one the partition started with). */
struct hv_input_synic_setup {
    uint64_t simp_gpa;
    uint64_t siefp_gpa;
    uint32_t sint_mask;
    uint32_t vp_index;
} __attribute__((packed));
_Static_assert(sizeof(struct hv_input_synic_setup) == 24, "synic setup input");

/* HVCALL_EXT_EOM input: the SINT whose slot the guest freed, on VP vp_index. */
struct hv_input_eom {
    uint32_t sint;
    uint32_t vp_index;
} __attribute__((packed));
_Static_assert(sizeof(struct hv_input_eom) == 8, "eom input");

/* HVCALL_EXT_EVENT_FD input: the connection id whose eventfd is wanted. The
 * answer carries the fd as SCM_RIGHTS. */
struct hv_input_event_fd {
    uint32_t connection_id;
    uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct hv_input_event_fd) == 8, "event fd input");

/*
 * Process partitions: one SOCK_SEQPACKET record per hypercall, guest to root,
 * answered by exactly one hv_hc_response. The root checks the sender's
 * credentials, the record length against the call's input size, and the
 * input itself.
 */
#define HV_HC_MAGIC 0x48564843u /* "HVHC" */

struct hv_hc_request {
    uint32_t magic;
    uint16_t call_code;
    uint16_t reserved;
    uint32_t seq; /* echoed in the response */
    uint32_t input_size;
    union {
        struct hv_input_post_message post_message;
        struct hv_input_signal_event signal_event;
        struct hv_input_synic_setup synic_setup;
        struct hv_input_eom eom;
        struct hv_input_event_fd event_fd;
        uint8_t raw[256];
    } input;
} __attribute__((packed));
_Static_assert(sizeof(struct hv_hc_request) == 16 + 256, "hypercall request record");

struct hv_hc_response {
    uint32_t magic;
    uint16_t status; /* HV_STATUS_* */
    uint16_t reserved;
    uint32_t seq;
    uint32_t reserved2;
} __attribute__((packed));
_Static_assert(sizeof(struct hv_hc_response) == 16, "hypercall response record");

/* The process backend hands the child exactly these descriptors, at these
 * numbers, and names them in the environment variable HV_PARTITION_FDS as
 * "mem,hypercall,sint" (e.g. "3,4,5"); sint is VP 0's SINT eventfd. The
 * number of VPs is in HV_PARTITION_VPS (what firmware tables tell a real
 * guest; absent means 1); the other VPs' SINT eventfds come with the
 * answers to their SynIC set-up calls. */
#define HV_ENV_FDS "HV_PARTITION_FDS"
#define HV_ENV_NAME "HV_PARTITION_NAME"
#define HV_ENV_ID "HV_PARTITION_ID"
#define HV_ENV_VPS "HV_PARTITION_VPS"
#define HV_CHILD_FD_MEM 3
#define HV_CHILD_FD_HYPERCALL 4
#define HV_CHILD_FD_SINT 5

#endif
