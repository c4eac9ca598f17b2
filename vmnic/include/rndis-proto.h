/*
 * RNDIS over NVSP (docs/protocol.md §5). DPDK-free:
 * part of vmnic, included by netvsp (root) and netvsc (guest). All offsets
 * in RNDIS messages are relative to byte 8 of the message (the end of the
 * common header); PPI data offsets are relative to the PPI record.
 */
#ifndef RNDIS_PROTO_H
#define RNDIS_PROTO_H

#include <stdint.h>

/* Message types; a completion's is its request's with RNDIS_MSG_COMPLETION
 * set. */
#define RNDIS_MSG_COMPLETION 0x80000000u
#define RNDIS_MSG_PACKET 0x00000001u
#define RNDIS_MSG_INIT 0x00000002u
#define RNDIS_MSG_INIT_C 0x80000002u
#define RNDIS_MSG_HALT 0x00000003u
#define RNDIS_MSG_QUERY 0x00000004u
#define RNDIS_MSG_QUERY_C 0x80000004u
#define RNDIS_MSG_SET 0x00000005u
#define RNDIS_MSG_SET_C 0x80000005u
#define RNDIS_MSG_RESET 0x00000006u
#define RNDIS_MSG_RESET_C 0x80000006u
#define RNDIS_MSG_INDICATE 0x00000007u
#define RNDIS_MSG_KEEPALIVE 0x00000008u
#define RNDIS_MSG_KEEPALIVE_C 0x80000008u
#define RNDIS_MSG_SET_EX 0x00000009u
#define RNDIS_MSG_SET_EX_C 0x80000009u

/* Status values. */
#define RNDIS_STATUS_SUCCESS 0x00000000u
#define RNDIS_STATUS_FAILURE 0xc0000001u
#define RNDIS_STATUS_RESOURCES 0xc000009au
#define RNDIS_STATUS_NOT_SUPPORTED 0xc00000bbu
#define RNDIS_STATUS_BAD_VERSION 0xc0010004u
#define RNDIS_STATUS_INVALID_LENGTH 0xc0010014u
#define RNDIS_STATUS_INVALID_DATA 0xc0010015u
#define RNDIS_STATUS_BUFFER_TOO_SHORT 0xc0010016u
#define RNDIS_STATUS_INVALID_OID 0xc0010017u
#define RNDIS_STATUS_MEDIA_CONNECT 0x4001000bu
#define RNDIS_STATUS_MEDIA_DISCONNECT 0x4001000cu
#define RNDIS_STATUS_LINK_SPEED_CHANGE 0x40010013u
#define RNDIS_STATUS_NETWORK_CHANGE 0x40010018u
/* Its optional u32 (NDIS_NETWORK_CHANGE_TYPE): possibly 1, definitely 2,
 * from a media connect 3. */
#define RNDIS_NETWORK_CHANGE_DEFINITELY 2u
#define RNDIS_STATUS_TASK_OFFLOAD_CURRENT_CONFIG 0x40020006u

/* OIDs. */
#define RNDIS_OID_GEN_SUPPORTED_LIST 0x00010101u
#define RNDIS_OID_GEN_HARDWARE_STATUS 0x00010102u
#define RNDIS_OID_GEN_MEDIA_SUPPORTED 0x00010103u
#define RNDIS_OID_GEN_MEDIA_IN_USE 0x00010104u
#define RNDIS_OID_GEN_MAXIMUM_LOOKAHEAD 0x00010105u
#define RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE 0x00010106u
#define RNDIS_OID_GEN_LINK_SPEED 0x00010107u
#define RNDIS_OID_GEN_TRANSMIT_BUFFER_SPACE 0x00010108u
#define RNDIS_OID_GEN_RECEIVE_BUFFER_SPACE 0x00010109u
#define RNDIS_OID_GEN_TRANSMIT_BLOCK_SIZE 0x0001010au
#define RNDIS_OID_GEN_RECEIVE_BLOCK_SIZE 0x0001010bu
#define RNDIS_OID_GEN_VENDOR_ID 0x0001010cu
#define RNDIS_OID_GEN_VENDOR_DESCRIPTION 0x0001010du
#define RNDIS_OID_GEN_CURRENT_PACKET_FILTER 0x0001010eu
#define RNDIS_OID_GEN_CURRENT_LOOKAHEAD 0x0001010fu
#define RNDIS_OID_GEN_DRIVER_VERSION 0x00010110u
#define RNDIS_OID_GEN_MAXIMUM_TOTAL_SIZE 0x00010111u
#define RNDIS_OID_GEN_MAC_OPTIONS 0x00010113u
#define RNDIS_OID_GEN_MEDIA_CONNECT_STATUS 0x00010114u
#define RNDIS_OID_GEN_MAXIMUM_SEND_PACKETS 0x00010115u
#define RNDIS_OID_GEN_VENDOR_DRIVER_VERSION 0x00010116u
#define RNDIS_OID_GEN_NETWORK_LAYER_ADDRESSES 0x00010118u
#define RNDIS_OID_GEN_RECEIVE_SCALE_CAPABILITIES 0x00010203u
#define RNDIS_OID_GEN_RECEIVE_SCALE_PARAMETERS 0x00010204u
#define RNDIS_OID_GEN_MAX_LINK_SPEED 0x00010206u
#define RNDIS_OID_GEN_LINK_STATE 0x00010207u
#define RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER 0x0001021bu
#define RNDIS_OID_GEN_FRIENDLY_NAME 0x00020216u
#define RNDIS_OID_802_3_PERMANENT_ADDRESS 0x01010101u
#define RNDIS_OID_802_3_CURRENT_ADDRESS 0x01010102u
#define RNDIS_OID_802_3_MULTICAST_LIST 0x01010103u
#define RNDIS_OID_802_3_MAXIMUM_LIST_SIZE 0x01010104u
#define RNDIS_OID_OFFLOAD_ENCAPSULATION 0x0101010au
#define RNDIS_OID_TCP_OFFLOAD_CURRENT_CONFIG 0xfc01020bu
#define RNDIS_OID_TCP_OFFLOAD_PARAMETERS 0xfc01020cu
#define RNDIS_OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES 0xfc01020du

/* OID_GEN_CURRENT_PACKET_FILTER bits. */
#define RNDIS_FILTER_DIRECTED 0x00000001u
#define RNDIS_FILTER_MULTICAST 0x00000002u
#define RNDIS_FILTER_ALL_MULTICAST 0x00000004u
#define RNDIS_FILTER_BROADCAST 0x00000008u
#define RNDIS_FILTER_PROMISCUOUS 0x00000020u

#define RNDIS_MEDIA_STATE_CONNECTED 0
#define RNDIS_MEDIA_STATE_DISCONNECTED 1

/* OID_GEN_MAC_OPTIONS bits (NDIS_MAC_OPTION_*). */
#define RNDIS_MAC_OPTION_COPY_LOOKAHEAD_DATA 0x00000001u
#define RNDIS_MAC_OPTION_TRANSFERS_NOT_PEND 0x00000002u
#define RNDIS_MAC_OPTION_NO_LOOPBACK 0x00000008u
#define RNDIS_MAC_OPTION_8021P_PRIORITY 0x00000040u
#define RNDIS_MAC_OPTION_8021Q_VLAN 0x00000200u

struct rndis_msg_hdr {
    uint32_t type;
    uint32_t len; /* whole message, from byte 0 */
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_msg_hdr) == 8, "RNDIS header");

#define RNDIS_HEADER_SIZE 8u

/* Guest -> host; answered by INIT_C. */
struct rndis_init_req {
    struct rndis_msg_hdr hdr;
    uint32_t req_id;
    uint32_t major;
    uint32_t minor;
    uint32_t max_xfer_size;
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_init_req) == 24, "RNDIS INIT");

#define RNDIS_VERSION_MAJOR 1
#define RNDIS_VERSION_MINOR 0
#define RNDIS_DEVICE_FLAG_CONNECTIONLESS 1
#define RNDIS_MEDIUM_802_3 0

struct rndis_init_cmplt {
    struct rndis_msg_hdr hdr;
    uint32_t req_id;
    uint32_t status;
    uint32_t major;
    uint32_t minor;
    uint32_t device_flags;
    uint32_t medium;
    uint32_t max_pkts_per_msg;
    uint32_t max_xfer_size;
    uint32_t align_factor; /* log2 of packet alignment */
    uint32_t af_list_offset;
    uint32_t af_list_size;
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_init_cmplt) == 52, "RNDIS INIT_C");

/* Guest -> host; no answer. */
struct rndis_halt_req {
    struct rndis_msg_hdr hdr;
    uint32_t req_id;
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_halt_req) == 12, "RNDIS HALT");

/* Guest -> host; QUERY answered by QUERY_C, SET by SET_C (SET_EX by SET_EX_C).
 * The information buffer is info_len bytes at 8 + info_offset. */
struct rndis_query_req {
    struct rndis_msg_hdr hdr;
    uint32_t req_id;
    uint32_t oid;
    uint32_t info_len;
    uint32_t info_offset;
    uint32_t dev_vc_handle;
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_query_req) == 28, "RNDIS QUERY/SET");

struct rndis_query_cmplt {
    struct rndis_msg_hdr hdr;
    uint32_t req_id;
    uint32_t status;
    uint32_t info_len;
    uint32_t info_offset;
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_query_cmplt) == 24, "RNDIS QUERY_C");

struct rndis_set_cmplt {
    struct rndis_msg_hdr hdr;
    uint32_t req_id;
    uint32_t status;
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_set_cmplt) == 16, "RNDIS SET_C");

/* Guest -> host; answered by RESET_C. */
struct rndis_reset_req {
    struct rndis_msg_hdr hdr;
    uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_reset_req) == 12, "RNDIS RESET");

struct rndis_reset_cmplt {
    struct rndis_msg_hdr hdr;
    uint32_t status;
    uint32_t addressing_reset;
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_reset_cmplt) == 16, "RNDIS RESET_C");

/* Host -> guest; no answer. */
struct rndis_indicate_status {
    struct rndis_msg_hdr hdr;
    uint32_t status;
    uint32_t buf_len;
    uint32_t buf_offset;
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_indicate_status) == 20, "RNDIS INDICATE_STATUS");

/* Guest -> host; answered by KEEPALIVE_C {req_id, status}. */
struct rndis_keepalive_req {
    struct rndis_msg_hdr hdr;
    uint32_t req_id;
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_keepalive_req) == 12, "RNDIS KEEPALIVE");

struct rndis_keepalive_cmplt {
    struct rndis_msg_hdr hdr;
    uint32_t req_id;
    uint32_t status;
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_keepalive_cmplt) == 16, "RNDIS KEEPALIVE_C");

/* Both ways: one Ethernet frame (untagged; VLAN travels in a PPI). Offsets
 * are from byte 8; OOB fields and vc_handle must be zero. */
struct rndis_packet_msg {
    struct rndis_msg_hdr hdr;
    uint32_t data_offset;
    uint32_t data_len;
    uint32_t oob_data_offset;
    uint32_t oob_data_len;
    uint32_t num_oob_elements;
    uint32_t ppi_offset;
    uint32_t ppi_len;
    uint32_t vc_handle;
    uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_packet_msg) == 44, "RNDIS PACKET_MSG");

/* The smallest data, OOB or PPI offset of a PACKET_MSG: the end of its
 * fixed part, counted from byte 8. */
#define RNDIS_PACKET_OFFSET_MIN ((uint32_t)(sizeof(struct rndis_packet_msg) - RNDIS_HEADER_SIZE))
/* The PPI block's offset and every PPI record's size are multiples of 4
 * (the RNDIS spec; FreeBSD hn(4) and DPDK net_netvsc refuse anything else,
 * and every sender pads to it). The frame's offset need not be: Hyper-V
 * itself does not align it. */
#define RNDIS_PPI_ALIGN 4u

/* Per-packet info record; data starts ppi_offset bytes into the record. */
struct rndis_ppi {
    uint32_t size; /* whole record, a multiple of 4 */
    uint32_t type; /* bit 31: internal namespace */
    uint32_t ppi_offset;
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_ppi) == 12, "RNDIS PPI");

/* Every NDIS per-packet info is a 32-bit value or larger. The ones both
 * ends use carry one u32 right after the record's header: a record of
 * RNDIS_PPI_U32_SIZE bytes whose ppi_offset is sizeof(struct rndis_ppi). */
#define RNDIS_PPI_DATA_MIN 4u
#define RNDIS_PPI_U32_SIZE ((uint32_t)sizeof(struct rndis_ppi) + 4u)

#define RNDIS_PPI_INTERNAL 0x80000000u
#define RNDIS_PPI_CSUM_INFO 0u
#define RNDIS_PPI_LSO 2u
#define RNDIS_PPI_VLAN 6u
#define RNDIS_PPI_HASH_VALUE 8u
#define RNDIS_PPI_HASH_INFO 9u
#define RNDIS_PPI_PKTINFO_ID (RNDIS_PPI_INTERNAL | 1u)

/* Checksum PPI, transmit (guest -> host) bits. */
#define RNDIS_TXCSUM_IPV4 0x00000001u
#define RNDIS_TXCSUM_IPV6 0x00000002u
#define RNDIS_TXCSUM_TCP 0x00000004u
#define RNDIS_TXCSUM_UDP 0x00000008u
#define RNDIS_TXCSUM_IP_HDR 0x00000010u
#define RNDIS_TXCSUM_THOFF_SHIFT 16
#define RNDIS_TXCSUM_THOFF_MASK 0x3ffu
/* Checksum PPI, receive (host -> guest) bits. */
#define RNDIS_RXCSUM_TCP_FAILED 0x00000001u
#define RNDIS_RXCSUM_UDP_FAILED 0x00000002u
#define RNDIS_RXCSUM_IP_FAILED 0x00000004u
#define RNDIS_RXCSUM_TCP_OK 0x00000008u
#define RNDIS_RXCSUM_UDP_OK 0x00000010u
#define RNDIS_RXCSUM_IP_OK 0x00000020u

/* LSOv2 PPI (guest -> host). */
#define RNDIS_LSO_MSS_MASK 0x000fffffu
#define RNDIS_LSO_THOFF_SHIFT 20
#define RNDIS_LSO_THOFF_MASK 0x3ffu
#define RNDIS_LSO_TYPE_V2 0x40000000u
#define RNDIS_LSO_IPV6 0x80000000u
/* Largest LSO frame vmswitch takes (OVMM), and the smallest segment count. */
#define RNDIS_LSO_MAX_SIZE 0xf53cu
#define RNDIS_LSO_MIN_SEGS 2u

/* Packet-id PPI (RNDIS_PPI_PKTINFO_ID, host -> guest, NVSP 6.1 RSC): one
 * coalesced packet spread over several receive-buffer ranges of one
 * transfer packet, each range a PACKET_MSG with this PPI; the first says
 * FIRST_FRAG, the last LAST_FRAG, all SUBALLOC. The checksum and VLAN PPIs
 * of the first stand for the whole packet. */
struct rndis_pktinfo_id {
    uint8_t version; /* RNDIS_PKTINFO_ID_V1 */
    uint8_t flags;
    uint16_t pkt_id;
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_pktinfo_id) == 4, "RNDIS packet-id PPI");
#define RNDIS_PKTINFO_ID_V1 1u
#define RNDIS_PKTINFO_SUBALLOC 0x01u
#define RNDIS_PKTINFO_FIRST_FRAG 0x02u
#define RNDIS_PKTINFO_LAST_FRAG 0x04u
/* The flags of a packet-id PPI's value read as one little-endian u32 (as
 * vmnic_ppi_parse reports it): bits 8-15. */
#define RNDIS_PKTINFO_FLAGS(u32) ((uint8_t)((u32) >> 8))
/* Most ranges Linux takes for one coalesced packet (NVSP_RSC_MAX). */
#define RNDIS_RSC_MAX_FRAGS 562u

/* VLAN PPI: bits 0-2 priority, 3 CFI, 4-15 VLAN id. */
#define RNDIS_VLAN_ID(v) (((v) >> 4) & 0xfffu)
#define RNDIS_VLAN_PRIO(v) ((v)&0x7u)
#define RNDIS_VLAN_MAKE(id, prio) ((((uint32_t)(id)&0xfffu) << 4) | ((uint32_t)(prio)&0x7u))

/* NDIS object header, at the start of NDIS structures. */
struct ndis_obj_hdr {
    uint8_t type;
    uint8_t revision;
    uint16_t size;
} __attribute__((packed));
_Static_assert(sizeof(struct ndis_obj_hdr) == 4, "NDIS object header");

#define NDIS_OBJTYPE_DEFAULT 0x80
#define NDIS_OBJTYPE_RSS_CAPS 0x88
#define NDIS_OBJTYPE_RSS_PARAMS 0x89
#define NDIS_OBJTYPE_OFFLOAD 0xa7

/* NDIS_OFFLOAD (type 0xa7): checksum / LSOv2 capabilities. */
#define NDIS_OFFLOAD_ENCAP_8023 0x00000002u
#define NDIS_TXCSUM_CAP_IP4OPT 0x001u
#define NDIS_TXCSUM_CAP_TCP4OPT 0x004u
#define NDIS_TXCSUM_CAP_TCP4 0x010u
#define NDIS_TXCSUM_CAP_UDP4 0x040u
#define NDIS_TXCSUM_CAP_IP4 0x100u
#define NDIS_TXCSUM_CAP_IP6EXT 0x001u
#define NDIS_TXCSUM_CAP_TCP6OPT 0x004u
#define NDIS_TXCSUM_CAP_TCP6 0x010u
#define NDIS_TXCSUM_CAP_UDP6 0x040u
#define NDIS_LSOV2_CAP_IP6EXT 0x001u
#define NDIS_LSOV2_CAP_TCP6OPT 0x004u

struct ndis_csum_offload {
    uint32_t ip4_txenc, ip4_txcsum, ip4_rxenc, ip4_rxcsum;
    uint32_t ip6_txenc, ip6_txcsum, ip6_rxenc, ip6_rxcsum;
} __attribute__((packed));

struct ndis_lsov2_offload {
    uint32_t ip4_encap, ip4_maxsz, ip4_minsg;
    uint32_t ip6_encap, ip6_maxsz, ip6_minsg, ip6_opts;
} __attribute__((packed));

struct ndis_offload {
    struct ndis_obj_hdr hdr;
    struct ndis_csum_offload csum;
    uint32_t lsov1[4];
    uint32_t ipsecv1[7];
    struct ndis_lsov2_offload lsov2;
    uint32_t flags;
    uint8_t ipsecv2[32];
    uint8_t rsc_ip4, rsc_ip6;
    uint8_t rsc_pad[2];
    uint32_t encap_gre_flags;
    uint32_t encap_gre_maxhdr;
} __attribute__((packed));
_Static_assert(sizeof(struct ndis_offload) == 156, "NDIS_OFFLOAD rev 3");
#define NDIS_OFFLOAD_SIZE_REV1 112u
#define NDIS_OFFLOAD_SIZE_REV2 144u
#define NDIS_OFFLOAD_SIZE_REV3 156u

/* OID_TCP_OFFLOAD_PARAMETERS (type 0x80). */
#define NDIS_OFFLOAD_PARAM_NOCHG 0
#define NDIS_OFFLOAD_PARAM_OFF 1
#define NDIS_OFFLOAD_PARAM_TX 2
#define NDIS_OFFLOAD_PARAM_RX 3
#define NDIS_OFFLOAD_PARAM_TXRX 4
#define NDIS_OFFLOAD_LSOV2_OFF 1
#define NDIS_OFFLOAD_LSOV2_ON 2
#define NDIS_OFFLOAD_RSC_OFF 1
#define NDIS_OFFLOAD_RSC_ON 2

struct ndis_offload_params {
    struct ndis_obj_hdr hdr;
    uint8_t ip4_csum, tcp4_csum, udp4_csum, tcp6_csum, udp6_csum;
    uint8_t lsov1;
    uint8_t ipsecv1;
    uint8_t lsov2_ip4, lsov2_ip6;
    uint8_t tcp_conn_ip4, tcp_conn_ip6;
    uint8_t pad;
    uint32_t flags;
    uint8_t ipsecv2, ipsecv2_ip4;
    uint8_t rsc_ip4, rsc_ip6;
    uint8_t encap;
    uint8_t encap_types;
    uint8_t pad2[2];
} __attribute__((packed));
_Static_assert(sizeof(struct ndis_offload_params) == 28, "NDIS_OFFLOAD_PARAMETERS rev 3");
#define NDIS_OFFLOAD_PARAMS_SIZE_REV1 20u

/* RSS capabilities (type 0x88). */
struct ndis_rss_caps {
    struct ndis_obj_hdr hdr;
    uint32_t caps;
    uint32_t num_int_msgs;
    uint32_t num_recv_queues;
    uint16_t num_indirect_entries;
} __attribute__((packed));
_Static_assert(sizeof(struct ndis_rss_caps) == 18, "NDIS RSS capabilities rev 2");
#define NDIS_RSS_CAP_TOEPLITZ 0x00000001u
#define NDIS_RSS_CAP_IPV4 0x00000100u
#define NDIS_RSS_CAP_IPV6 0x00000200u

/* OID_GEN_RECEIVE_SCALE_PARAMETERS (type 0x89): NDIS_RECEIVE_SCALE_PARAMETERS
 * as guests lay it out (natural alignment, hence the pads). Offsets count
 * from the start of this structure; the indirection table is u32 channel
 * indices (indirect_tabsize is in bytes), the key hashkey_size bytes.
 * Revision 1 ends after hashkey_offset. */
struct ndis_rss_params {
    struct ndis_obj_hdr hdr;
    uint16_t flags;
    uint16_t base_cpu;
    uint32_t hash_info;
    uint16_t indirect_tabsize;
    uint16_t pad0;
    uint32_t indirect_taboffset;
    uint16_t hashkey_size;
    uint16_t pad1;
    uint32_t hashkey_offset;
    uint32_t procmask_offset;
    uint32_t num_procmasks;
    uint32_t procmask_entry_size;
} __attribute__((packed));
_Static_assert(sizeof(struct ndis_rss_params) == 40, "NDIS RSS parameters rev 2");
#define NDIS_RSS_PARAMS_SIZE_REV1 28u
#define NDIS_RSS_FLAG_BASE_CPU_UNCHANGED 0x0001u
#define NDIS_RSS_FLAG_HASH_INFO_UNCHANGED 0x0002u
#define NDIS_RSS_FLAG_ITABLE_UNCHANGED 0x0004u
#define NDIS_RSS_FLAG_KEY_UNCHANGED 0x0008u
#define NDIS_RSS_FLAG_DISABLE 0x0010u
/* hash_info: the function in the low byte, the hash types above it (the
 * same bits name the type in a received frame's HASH_INFO PPI). */
#define NDIS_HASH_FUNCTION_MASK 0x000000ffu
#define NDIS_HASH_FUNCTION_TOEPLITZ 0x00000001u
#define NDIS_HASH_IPV4 0x00000100u
#define NDIS_HASH_TCP_IPV4 0x00000200u
#define NDIS_HASH_IPV6 0x00000400u
#define NDIS_HASH_IPV6_EX 0x00000800u
#define NDIS_HASH_TCP_IPV6 0x00001000u
#define NDIS_HASH_TCP_IPV6_EX 0x00002000u
#define NDIS_HASH_TYPE_MASK 0x00ffff00u
/* The Toeplitz key guests send (Linux NETVSC_HASH_KEYLEN, NDIS's
 * revision-2 maximum) and the largest indirection table (ITAB_NUM). */
#define NDIS_RSS_KEY_LEN 40u
#define NDIS_RSS_ITAB_MAX 128u

/* OID_GEN_RNDIS_CONFIG_PARAMETER body; strings are UTF-16LE at offsets
 * relative to this struct. */
struct rndis_config_param {
    uint32_t name_offset;
    uint32_t name_len; /* bytes */
    uint32_t param_type; /* 0 integer, 2 string */
    uint32_t value_offset;
    uint32_t value_len; /* bytes */
} __attribute__((packed));
_Static_assert(sizeof(struct rndis_config_param) == 20, "RNDIS config parameter");

/* Link speed in OID_GEN_LINK_SPEED units (100 bit/s): 10 Gbit/s. */
#define RNDIS_LINK_SPEED_10G 100000000u

#endif
