/*
 * netvsp: the network VSP, the root's end of a VM NIC. It offers a VMBus
 * channel of the synthetic network class to one partition, speaks NVSP and
 * RNDIS with the guest's netvsc over it, and is a switch port: frames the
 * guest sends come out of rx_burst, frames the switch sends go into the
 * guest's receive buffer.
 *
 * Everything the guest wrote is hostile: ring packets are copied once
 * (vmbus_ring_get), NVSP and RNDIS headers are copied into locals before they
 * are checked, frame bytes are read once from guest memory straight into
 * mbufs, and every offset, length, index and page is checked against what the
 * guest granted. A bad message is dropped and counted by reason on this NIC;
 * a guest that keeps sending them is disconnected (its channel closed); other
 * NICs never notice.
 *
 * Threads: netvsp_create/destroy and the getters run on the control thread;
 * the protocol runs on the switch worker that owns the port.
 */
#ifndef NETVSP_H
#define NETVSP_H

#include <stdbool.h>
#include <stdint.h>

#include "vmbus-server.h"

struct rte_mempool;
struct vsw_port;
struct netvsp;

#define NETVSP_NIC_NAME_MAX 15
/* Bad messages a guest may send on one connection before it is cut off. */
#define NETVSP_ERRORS_MAX 100
/* The largest receive buffer, send buffer and rings a guest may give a NIC:
 * the most that real guest drivers use. Receive: 31 MiB (Linux hv_netvsc's
 * limit, uio_hv_generic's buffer for DPDK's net_netvsc); send: 16 MiB
 * (uio_hv_generic; Linux and FreeBSD hn(4) use at most 15 MiB); rings: 2 MiB
 * of data plus the header page per direction (uio_hv_generic; Linux's
 * default is 128 pages, FreeBSD's 128). Larger ones are refused and counted
 * (buffer_too_big; the VMBus server's ring_too_big). */
#define NETVSP_RECV_BUF_MAX (31u << 20)
#define NETVSP_SEND_BUF_MAX (16u << 20)
#define NETVSP_RING_PAGES_MAX 513u
/* Channels (queues) a NIC may serve: the primary and up to 7 sub-channels
 * (vRSS), as Linux's netvsc takes at most 8 by default. */
#define NETVSP_QUEUES_MAX 8u

struct netvsp_params {
    const char *port_name; /* the switch port's name, e.g. "vm1/eth0" */
    const char *nic_name;  /* the interface name inside the VM */
    uint8_t mac[6];
    uint32_t mtu;          /* L3 MTU the NIC allows, jumbo_mtu_valid() (68..9000) */
    struct vmbus_guid instance;
    struct rte_mempool *pool;
    /* Channels the guest may have, primary included: 1..NETVSP_QUEUES_MAX;
     * 0 means 1. The RSS capabilities report it; an NVSP 5 SUBCHANNEL
     * request gets at most queues - 1 sub-channels. */
    uint32_t queues;
};

int netvsp_create(struct vmbus_server *srv, const struct netvsp_params *p, struct netvsp **out);
/* The switch port; destroy the NIC with vsw_port_destroy() on it (that
 * rescinds the channel). */
struct vsw_port *netvsp_port(struct netvsp *n);
struct netvsp *netvsp_from_port(struct vsw_port *port);
bool netvsp_is_port(const struct vsw_port *port);

/* Reasons a guest message was refused. */
enum netvsp_err {
    NETVSP_ERR_RING,           /* ring corrupt (fatal) */
    NETVSP_ERR_PKT_TYPE,       /* VMBus packet type not allowed from a guest */
    NETVSP_ERR_NVSP_SHORT,     /* NVSP message shorter than its type needs */
    NETVSP_ERR_NVSP_TYPE,      /* unknown or not at this NVSP version */
    NETVSP_ERR_NVSP_ORDER,     /* out of order (e.g. buffer before INIT) or repeated */
    NETVSP_ERR_NO_COMPLETION,  /* a request that needs an answer did not ask for one */
    NETVSP_ERR_GPADL,          /* unknown GPADL or unusable layout */
    NETVSP_ERR_SECTION,        /* send-buffer section index/size out of range */
    NETVSP_ERR_GPA_RANGE,      /* GPA-direct range malformed or outside memory */
    NETVSP_ERR_RNDIS_LEN,      /* RNDIS message length inconsistent */
    NETVSP_ERR_RNDIS_TYPE,     /* RNDIS message type not allowed here */
    NETVSP_ERR_RNDIS_PACKET,   /* PACKET_MSG offsets/lengths/OOB fields bad */
    NETVSP_ERR_PPI,            /* per-packet info malformed */
    NETVSP_ERR_OFFLOAD,        /* checksum/LSO metadata inconsistent with the frame */
    NETVSP_ERR_OID,            /* QUERY/SET buffer malformed */
    NETVSP_ERR_COMPLETION_ID,  /* completion for a transfer we do not have outstanding */
    NETVSP_ERR_NOT_READY,      /* data before NVSP/RNDIS set-up finished */
    NETVSP_ERR_BUFFER_SIZE,    /* receive or send buffer larger than guests use */
    NETVSP_ERR_SUBCHANNEL_MSG, /* set-up or control message on a sub-channel */
    NETVSP_ERR_COUNT
};
const char *netvsp_err_name(enum netvsp_err e);

/* Why a large send (LSOv2 PPI) from the guest was dropped. Each is a
 * dropped frame, not a protocol error: the guest keeps its connection. */
enum netvsp_lso_drop {
    NETVSP_LSO_NOT_ENABLED, /* LSOv2 of that IP version not turned on by the guest, or LSOv1 */
    NETVSP_LSO_MSS,         /* MSS 0, or MSS + IP + TCP headers above the NIC's MTU */
    NETVSP_LSO_HDR_OFFSET,  /* the PPI's TCP header offset is not where the TCP header is */
    NETVSP_LSO_NOT_TCP,     /* not TCP (UDP, ...) */
    NETVSP_LSO_FRAGMENT,    /* an IP fragment */
    NETVSP_LSO_TOO_BIG,     /* more TCP payload than NDIS_OFFLOAD's LSOv2 maximum */
    NETVSP_LSO_HEADERS,     /* headers disagree with the PPI or with themselves (lengths) */
    NETVSP_LSO_DROP_COUNT
};
const char *netvsp_lso_drop_name(enum netvsp_lso_drop r);

/* Why a guest's RSS parameters (OID_GEN_RECEIVE_SCALE_PARAMETERS) were
 * refused. The NIC keeps the parameters it had. */
enum netvsp_rss_err {
    NETVSP_RSS_LENGTH,      /* shorter than its header, or fields outside the buffer */
    NETVSP_RSS_HEADER,      /* not an RSS-parameters object of a known revision/size */
    NETVSP_RSS_FUNCTION,    /* hash function other than Toeplitz */
    NETVSP_RSS_HASH_TYPE,   /* no hash type, or one not in our capabilities */
    NETVSP_RSS_KEY,         /* key not 40 bytes */
    NETVSP_RSS_ITAB_SIZE,   /* table empty, larger than 128, or not whole entries */
    NETVSP_RSS_ITAB_ENTRY,  /* an entry names a channel that is not open */
    NETVSP_RSS_UNCHANGED,   /* "unchanged" flag with nothing set before */
    NETVSP_RSS_ERR_COUNT
};
const char *netvsp_rss_err_name(enum netvsp_rss_err r);

/* Why an NVSP 5 SUBCHANNEL request was refused or cut down. The NIC stays
 * usable on the channels it has. */
enum netvsp_subch_err {
    NETVSP_SUBCH_TOO_MANY,  /* more than the NIC's queues less the primary: capped */
    NETVSP_SUBCH_REPEATED,  /* asked again on the same connection */
    NETVSP_SUBCH_NOT_READY, /* before the receive and send buffers and RNDIS INIT */
    NETVSP_SUBCH_OPERATION, /* an operation other than ALLOCATE */
    NETVSP_SUBCH_ERR_COUNT
};
const char *netvsp_subch_err_name(enum netvsp_subch_err r);

struct netvsp_stats {
    uint64_t errors[NETVSP_ERR_COUNT];
    uint64_t disconnects;       /* connections cut off for errors */
    uint64_t network_changes;   /* NETWORK_CHANGE indications sent (MTU changed) */
    uint64_t opens;             /* channel opens */
    uint64_t rx_frames_too_big; /* from the guest, above the NIC's frame limit */
    uint64_t tx_no_buffer;      /* to the guest: receive buffer full */
    uint64_t tx_ring_full;      /* to the guest: ring full */
    uint64_t tx_filtered;       /* to the guest: not wanted by its packet filter */
    uint64_t control_msgs;      /* RNDIS control messages answered */
    uint64_t lso_frames;        /* large sends from the guest taken (one per super-frame) */
    uint64_t lso_drops[NETVSP_LSO_DROP_COUNT]; /* large sends dropped, by reason */
    uint64_t rsc_frames;        /* large segments to the guest whole (RSC) */
    uint64_t rsc_ranges;        /* receive-buffer ranges they took */
    uint64_t tx_rsc_refused;    /* large segments whose header lengths do not fit the rules */
    uint64_t zc_frames;         /* large frames from the guest taken without copying their payload */
    uint64_t zc_fallbacks;      /* large frames in guest pages copied all the same (no slot
                                 * free, PCI devices on the host, headers beyond the copy) */
    uint64_t rss_refused[NETVSP_RSS_ERR_COUNT]; /* RSS parameters refused, by reason */
    uint64_t rss_sets;          /* RSS parameters taken (a disable included) */
    uint64_t rss_hashed;        /* frames to the guest with a hash value and type */
    uint64_t subchannels_refused; /* sub-channels asked for and not granted */
    uint64_t subch_refused[NETVSP_SUBCH_ERR_COUNT]; /* SUBCHANNEL requests, by reason */
    uint64_t subchannels_granted;
    uint64_t subchannel_opens;
    uint64_t itab_sent;         /* SEND_INDIRECTION_TABLE messages sent */
    /* Per channel (index 0 the primary): frames from the guest handed to
     * the switch, frames to the guest put in its receive buffer. */
    uint64_t chan_rx[NETVSP_QUEUES_MAX];
    uint64_t chan_tx[NETVSP_QUEUES_MAX];
    /* State of the current connection. */
    bool connected;
    bool rndis_ready;
    uint32_t nvsp_version;      /* 0, or the version of vmnic's table negotiated */
    uint32_t ndis_version;
    uint32_t frame_size;        /* largest frame in each direction now */
    bool mtu_pending;           /* the MTU changed and the guest has not re-initialised */
    uint32_t packet_filter;
    bool lso4, lso6;            /* LSOv2 the guest turned on */
    bool rx_csum;               /* the guest turned on a receive checksum offload */
    bool rsc;                   /* the guest turned RSC on (IPv4 and IPv6) */
    bool rss;                   /* the guest turned RSS on (Toeplitz, its key and table) */
    uint32_t rss_hash_types;    /* NDIS_HASH_* it asked for */
    uint32_t rss_itab_size;     /* entries of its indirection table */
    uint32_t recv_sections, send_sections;
    uint32_t target_vp;         /* the guest VP the channel interrupts */
    uint32_t queues;            /* the NIC's setting */
    uint32_t channels;          /* open now, primary included */
};
void netvsp_get_stats(const struct netvsp *n, struct netvsp_stats *out);
/* The channels open now, one bit each (bit 0 the primary, bit i
 * sub-channel i): 0 while no guest is connected. A sub-channel the guest
 * closed alone leaves a gap. Control thread. */
uint32_t netvsp_channels_open(const struct netvsp *n);
uint32_t netvsp_mtu(const struct netvsp *n);
/* Change the NIC's MTU (jumbo_mtu_valid()) live. A connected guest gets an RNDIS
 * NETWORK_CHANGE indication ("definitely" changed) and picks the new MTU
 * up when it re-initialises its NIC, as hvnet's guest does on that
 * indication and any guest does after changing its own MTU; one that does
 * neither keeps its old MTU (stats: mtu_pending). A lower MTU limits frames
 * at once, both ways. Control thread. */
int netvsp_set_mtu(struct netvsp *n, uint32_t mtu);
/* The NIC's cable: connected (the default) or not. The guest is told with
 * an RNDIS media connect / disconnect indication, and queries answer it; a
 * disconnected NIC neither sends nor receives. Control thread. */
void netvsp_set_media(struct netvsp *n, bool connected);
void netvsp_mac(const struct netvsp *n, uint8_t mac[6]);
/* The channels a guest may have from now on (1..NETVSP_QUEUES_MAX): what
 * the RSS capabilities report and an NVSP 5 SUBCHANNEL request is granted
 * at most (less the primary). Sub-channels open stay; a guest sees the
 * change when it next opens the NIC. -EINVAL out of range. Control
 * thread. */
int netvsp_set_queues(struct netvsp *n, uint32_t queues);

#endif
