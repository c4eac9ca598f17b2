/*
 * Inside netvsc: the NIC's state, which every file of the driver works on,
 * and what its files call across. The driver is layered as the protocol is
 * (callers above callees, no file calls one above it):
 *
 *   netvsc.c  open/close, info, stats (the glue to the rest)
 *   rndis.c   RNDIS control: INIT, queries, sets, offload negotiation
 *   nvs.c     NVSP: version, NDIS config, receive and send buffers
 *   rxtx.c    the ring: frames both ways, completions, what the root
 *             indicates, and the wait of a control exchange
 *   vrss.c    a frame's Toeplitz hash, the root's send table
 *
 * Layout in guest memory: the channel's rings (vmbus_client), a receive
 * buffer the root writes frames into, a send buffer cut into sections of the
 * root's choosing, and a few page chunks for frames larger than a section
 * (sent GPA-direct). Transaction ids on our ring say what a completion frees:
 *   TID_CTRL | n        an NVSP control request (INIT, buffers)
 *   TID_SEND | slot     a send; slot = section index (| chunk << 20 | BIG)
 * (a split slot, section plus chunk, is sent as one or the other)
 * The root is trusted less than our own memory: every range and length it
 * hands us is checked against what we granted before we touch it.
 */
#ifndef NETVSC_PRIVATE_H
#define NETVSC_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "netvsc.h"
#include "rndis-proto.h"
#include "vmbus-client.h"

struct vmbus_xfer_range;

#define TID_CTRL (1ull << 62)
#define TID_SEND (1ull << 61)
#define SLOT_BIG (1u << 31)
#define SLOT_SPLIT (1u << 30) /* with SLOT_BIG: netvsc_tx_alloc_split() room */
#define SLOT_CHUNK_SHIFT 20
#define SLOT_CHUNK(slot) (((slot) >> SLOT_CHUNK_SHIFT) & 0x3ffu)
#define SLOT_SECTION_MASK 0xfffffu

/* Frames start this far into a send section; the RNDIS header and PPIs go
 * before them. */
#define TX_HDR_ROOM 128u
#define BIG_CHUNKS 32u
#define RX_PKT_MAX 65536u
#define CTRL_RESP_MAX 4096u
#define COMP_BACKLOG 16384u
/* Most frames packed into one send (hv_netvsc's RNDIS_MAX_PKT_DEFAULT),
 * whatever more the root says it takes, and the coarsest alignment of the
 * packed messages taken (log2; a root asking more gets one frame a send). */
#define TX_BATCH_MAX 8u
#define TX_ALIGN_SHIFT_MAX 12u

struct comp_backlog {
    uint64_t tid;
    uint32_t status;
};

/* An RSC packet being put together from its fragments (netvsc_rsc_add). */
#define RSC_FRAGS_MAX 562u /* fragments of one packet, as Linux's NVSP_RSC_MAX */
struct netvsc_rsc {
    uint8_t *buf; /* NETVSC_RSC_FRAME_MAX bytes */
    uint32_t len;
    uint32_t frags; /* 0: none in progress */
    struct netvsc_meta meta; /* the first fragment's */
};

/* The transfer-page packet being delivered: a poll's budget may end
 * inside it (the root packs up to 64 frames into one), and the next poll
 * goes on where it stopped before reading the ring again, so that its
 * ranges, which point into n->pkt, stay valid. Completed to the root once
 * its last range is through. */
struct netvsc_xfer {
    const struct vmbus_xfer_range *ranges; /* into n->pkt */
    uint32_t nr;     /* 0: none open */
    uint32_t next;   /* the next range to deliver */
    uint64_t tid;
    uint32_t status; /* what to complete it with */
};

/* One channel (vRSS: q[0] is the primary, q[i] the sub-channel of index
 * i). Each has its own ring packet copy, open transfer and RSC packet,
 * since a poll's budget may end inside a transfer of one channel while
 * another starts one; a transfer is completed on the channel it came on.
 * Each has its own open multi-send section: frames of one flow go on one
 * channel (the root's send table), in order, and a send's completion
 * comes back on the channel it went on. The send buffer's sections and
 * the receive buffer are the NIC's, shared by all. */
struct netvsc_chan {
    struct vmbus_gchan *ch;
    uint8_t *pkt; /* copy of the current ring packet (RX_PKT_MAX) */
    struct netvsc_xfer xfer; /* its ranges point into pkt */
    struct netvsc_rsc rsc;
    struct comp_backlog *backlog; /* COMP_BACKLOG entries */
    uint32_t backlog_head, backlog_len;
    unsigned unflushed; /* sends and completions put on ch, not yet published */
    /* Multi-send: small frames packed into one open send section, as
     * RNDIS messages one after the other, sent as one NVSP send (one ring
     * packet, one completion) when it is full or at netvsc_tx_flush(). */
    uint32_t batch_count; /* frames in the open section; 0: none open */
    uint32_t batch_sec;
    uint32_t batch_len;  /* RNDIS bytes in it */
    uint32_t batch_last; /* offset of its last message */
    uint32_t batch_last_len; /* and its length (not read back from shared memory) */
    bool tx_ring_full; /* the last put found ch's ring full (not just no section) */
    struct netvsc_chan_stats st;
};

/* The root's send indirection table (NVSP 5): a frame goes on channel
 * send_tab[hash % NVSP_INDIRECTION_TABLE_ENTRIES]. */
#define NETVSC_SEND_TAB 16u

struct netvsc {
    struct vmbus_client *client;
    struct hv_guest *g;
    struct vmbus_gchan *ch; /* the primary (q[0].ch): control, sends */
    uint32_t relid;
    /* Every open channel, 0 .. nchan - 1 (sub-channels opened after
     * RNDIS bring-up, see netvsc_params.queues); each polled. */
    struct netvsc_chan q[NETVSC_QUEUES_MAX];
    uint32_t nchan; /* open channels, the primary included */
    uint32_t rr;    /* the channel a poll serves first (rotates) */
    struct netvsc_params p;
    bool reinit_wanted; /* the root indicated a network change */
    uint32_t msg_size; /* NVSP message size we send */
    uint64_t next_ctrl;
    uint32_t next_req_id;

    /* receive buffer */
    uint64_t rbuf_pfn;
    uint32_t rbuf_pages;
    uint8_t *rbuf;
    uint32_t rbuf_len;
    uint32_t rbuf_gpadl;
    uint32_t sub_alloc_size;
    uint32_t num_sub_allocs;

    /* send buffer */
    uint64_t sbuf_pfn;
    uint32_t sbuf_pages;
    uint8_t *sbuf;
    uint32_t sbuf_gpadl;
    uint32_t section_size;
    uint32_t nsections;
    uint32_t *free_sections; /* stack */
    uint32_t nfree_sections;

    /* chunks for frames larger than a section */
    uint64_t chunk_pfn;
    uint32_t chunk_pages; /* per chunk */
    uint32_t free_chunks[BIG_CHUNKS];
    uint32_t nfree_chunks;

    bool tx_blocked;
    bool ring_failed;

    /* Multi-send (struct netvsc_chan): the root's limits from RNDIS INIT_C. */
    uint32_t tx_max_pkts; /* 0 or 1: every frame its own send */
    uint32_t tx_align;    /* each packed message starts at a multiple */

    /* vRSS: the root's send table, once a valid one came (each entry an
     * open channel); until then every frame goes on the primary. */
    uint8_t send_tab[NETVSC_SEND_TAB];
    bool send_tab_set;

    /* control exchange in progress */
    uint64_t ctrl_wait_tid;
    bool ctrl_done;
    uint8_t ctrl_comp[64];
    uint32_t ctrl_req_id;
    bool rndis_done;
    uint8_t rndis_resp[CTRL_RESP_MAX];
    uint32_t rndis_resp_len;

    struct netvsc_info info;
    struct netvsc_stats stats;
};

/* rxtx.c: the bottom layer, which the others call. */

/* rc is what a ring operation returned: 1 means the root asked to be
 * signalled, so signal the channel. Returns 0 or the negative errno. */
int netvsc_signal_if(struct netvsc *n, int rc);
/* Process the ring (frames are dropped) until *flag turns true: the wait
 * of a control exchange. 0, -ETIMEDOUT after p.timeout_ms, -ENOTCONN if
 * the channel was rescinded, or the ring's error. */
int netvsc_wait(struct netvsc *n, bool *flag);

/* The PPIs in front of one frame (RNDIS_PACKET_OFFSET_MIN + them + the
 * frame must fit TX_HDR_ROOM's layout). */
#define NETVSC_TX_PPI_MAX (TX_HDR_ROOM - sizeof(struct rndis_packet_msg))
/* The PPI block of a frame of len bytes sent with meta by a NIC with this
 * info into ppis: the VLAN PPI, then the LSOv2 PPI or the checksum PPI.
 * Returns its length, or -EINVAL if meta asks what info does not offer or
 * names positions the frame cannot have. */
int netvsc_tx_ppis(const struct netvsc_info *info, const struct netvsc_meta *meta, uint32_t len,
                   uint8_t ppis[NETVSC_TX_PPI_MAX]);

/* The RNDIS INIT_C limits on packing frames into one send (max_pkts_per_msg,
 * align_factor) into n: packing only where the root takes more than one
 * and an alignment up to 2^TX_ALIGN_SHIFT_MAX; messages aligned to 8 bytes
 * at least (padding inside a message's length is every root's to skip). */
void netvsc_tx_set_batching(struct netvsc *n, uint32_t max_pkts_per_msg, uint32_t align_factor);
/* Append one frame of len bytes with its PPI block to channel q's open
 * send section (q->batch_*), the previous message padded to n->tx_align
 * inside its length. false, nothing written, if no section is open, it
 * holds tx_max_pkts frames already, or the message does not fit its room. */
bool netvsc_batch_append(struct netvsc *n, struct netvsc_chan *q, const void *frame, uint32_t len,
                         const uint8_t *ppis, uint32_t ppi_len);

/* The Toeplitz hash (netvsc_rss_key) of a frame by the types the RSS
 * parameters name: IPv4 or IPv6 addresses, and the ports for TCP (not
 * for a fragment), behind at most one 802.1Q tag. false: no hash (not
 * IP, too short), the frame goes on the primary. */
bool netvsc_frame_hash(const uint8_t *f, uint32_t len, uint32_t *hash);
/* The root's SEND_INDIRECTION_TABLE message of len bytes: taken into
 * n->send_tab if it has NETVSC_SEND_TAB entries inside the message, each
 * an open channel; else ignored and counted (send_table_bad). */
void netvsc_on_send_table(struct netvsc *n, const uint8_t *msg, uint32_t len);

/* One RNDIS data message that is an RSC fragment (its PKTINFO_ID flags
 * have RNDIS_PKTINFO_SUBALLOC) into r, by hv_netvsc's rules: a first
 * fragment starts a packet over, any other needs one started; a packet
 * must end (LAST_FRAG) in the transfer it started in (last_range: no
 * range follows this one); at most RSC_FRAGS_MAX fragments and
 * NETVSC_RSC_FRAME_MAX bytes. The data is copied. Returns 1 when the
 * packet is whole (r->buf, r->len, r->meta with NETVSC_F_RSC; the caller
 * delivers it and sets r->frags to 0), 0 when more is to come, -EPROTO
 * when the fragment breaks a rule (the packet in progress dropped). */
int netvsc_rsc_add(struct netvsc_rsc *r, uint32_t pktinfo_flags, const void *data, uint32_t len,
                   const struct netvsc_meta *meta, bool last_range);

/* Deliver channel q's open transfer q->xfer from range q->xfer.next on, until
 * *frames reaches budget or its last range is through. Each range is an
 * RNDIS message in the receive buffer, checked against it before it is
 * read: frames to cb (*frames counts them), RSC fragments put together,
 * control answers and indications taken; a bad range is counted (rx_bad)
 * and makes the transfer's status NVSP_STAT_INVALID_RNDIS_PKT, the other
 * ranges still go. Returns true when the transfer is through (n->xfer.nr
 * is then 0 and n->xfer.status what to complete it with), false if the
 * budget ended it first (q->xfer.next says where to go on). RSC packets
 * are put together in q->rsc. */
bool netvsc_rx_xfer(struct netvsc *n, struct netvsc_chan *q, netvsc_rx_cb cb, void *ctx,
                    int budget, int *frames);
/* All nr ranges of one transfer on the primary (q[0]) as netvsc_rx_xfer()
 * without a budget.
 * Returns the status to complete the transfer with. */
uint32_t netvsc_rx_ranges(struct netvsc *n, const struct vmbus_xfer_range *ranges, uint32_t nr,
                          netvsc_rx_cb cb, void *ctx, int *frames);

/* nvs.c */

/* Send one NVSP message in-band (padded to msg_size), tid its transaction
 * id; ask for a completion if want_comp. */
int netvsc_nvs_send(struct netvsc *n, const void *msg, uint32_t len, uint64_t tid,
                    bool want_comp);
/* NVSP bring-up: the newest common version, NDIS config and version, the
 * receive and the send buffer granted. Fills info.nvsp_version and
 * info.ndis_version. On failure, what was set up is left for
 * netvsc_close() to undo. */
int netvsc_nvs_attach(struct netvsc *n);
/* NVSP 5 SUBCHANNEL ALLOCATE for ask sub-channels; *granted what the
 * root grants (at most ask). -EOPNOTSUPP if the root is older than NVSP 5
 * or refuses (*granted 0); the NIC stays usable either way. */
int netvsc_nvs_subchannels(struct netvsc *n, uint32_t ask, uint32_t *granted);
/* Revoke both buffers (the root answers nothing). */
void netvsc_nvs_detach(struct netvsc *n);

/* rndis.c */

/* What netvsc_offload_choose() turned on. */
struct netvsc_offload_choice {
    bool csum;             /* TCP/UDP checksums, IPv4 and IPv6 */
    bool lso;              /* LSOv2, IPv4 and IPv6 */
    uint32_t lso_max;      /* largest LSO frame, at most NETVSC_LSO_MAX */
    uint32_t lso_min_segs; /* the root's minimum segment count (0 or 1: any) */
    bool rsc;              /* RSC, IPv4 and IPv6 */
};
/* LSO is left off if the root wants more segments per frame than this. */
#define NETVSC_LSO_MIN_SEGS_MAX 2u
/* The largest LSO frame we send, whatever the root allows: 64 KiB of IP
 * packet behind an Ethernet header and a tag. */
#define NETVSC_LSO_MAX (65536u + 18u)
/* From the root's NDIS_OFFLOAD (got_len bytes of it; any content), the
 * OFFLOAD_PARAMETERS to set and what they turn on; RSC only if want_rsc.
 * false: nothing to set (neither IPv4 checksums nor RSC). */
bool netvsc_offload_choose(const struct ndis_offload *got, uint32_t got_len, bool want_rsc,
                           struct ndis_offload_params *op, struct netvsc_offload_choice *out);

/* RNDIS bring-up over the NVSP set up: INIT, frame size (info.mtu), MAC,
 * offloads, link state and speed, packet filter. */
int netvsc_rndis_attach(struct netvsc *n);
/* The receive queues the root offers (OID_GEN_RECEIVE_SCALE_CAPABILITIES,
 * at least 1). On an error *queues is 1. */
int netvsc_rndis_rss_queues(struct netvsc *n, uint32_t *queues);
/* OID_GEN_RECEIVE_SCALE_PARAMETERS: Toeplitz with NETVSC_RSS_KEY, hash
 * types IPv4, TCP/IPv4, IPv6, TCP/IPv6, an indirection table of
 * NETVSC_RSS_ITAB entries spread over the n->nchan open channels. 0, or
 * the error of the set (the root then steers everything to the primary). */
#define NETVSC_RSS_ITAB 64u
extern const uint8_t netvsc_rss_key[NDIS_RSS_KEY_LEN];
int netvsc_rndis_set_rss(struct netvsc *n);
/* RNDIS HALT in a free send section, if there is one (no answer comes). */
void netvsc_rndis_halt(struct netvsc *n);

#endif
