/*
 * netvsp's insides, shared by its files and seen by nobody else: the NIC
 * (struct netvsp), the connection of an open channel (struct conn), and the
 * functions one layer offers the next. The layers, each calling only the
 * ones below it:
 *
 *   port.c       the switch port (vsw_port_class), create/destroy, the
 *                VMBus open/close callbacks, stats, MTU and media setters
 *   rxtx.c       the data path both ways: the guest's ring, PACKET_MSGs
 *                (large sends included) into mbufs, frames into the
 *                receive buffer (checksums finished, large segments over
 *                several sections)
 *   zcopy.c      a send's bytes into mbufs, copied or (large frames) left
 *                in the guest's pages; the completions that wait for them
 *   rndis-ctl.c  RNDIS control: INIT/QUERY/SET/KEEPALIVE/RESET/HALT, OIDs,
 *                indications (media, NETWORK_CHANGE)
 *   nvs.c        NVSP: the connection, set-up messages, receive and send
 *                buffers, transfer packets and completions to the guest,
 *                error counting
 *
 * Ownership. The control thread creates the offer and handles the channel's
 * open/close callbacks; while open, everything about the connection (struct
 * conn) belongs to the worker that owns the port: it alone reads the
 * guest->root ring, writes the root->guest ring, and touches the buffers.
 * open publishes the conn with a release store; close unpublishes it and
 * waits an RCU grace period (vsw_port_synchronize) before freeing it.
 *
 * Guest memory the worker reads: the send buffer (a GPADL view), the pages
 * of GPA-direct ranges (through the partition's read-only DMA view, after
 * checking every PFN), and nothing else. It writes only the receive buffer
 * (a GPADL view), inside sub-allocations it owns at that moment.
 */
#ifndef NETVSP_PRIVATE_H
#define NETVSP_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include "netvsp.h"
#include "vmbus-ring.h"
#include "vmbus-server.h"
#include "vmnic.h"
#include "vsw-port-provider.h"

struct rte_mbuf;
struct rte_mempool;
struct netvsp_zc;
struct zc_slot;

#define CTRL_SUBS 16u
#define XFER_BATCH 64u
#define CHAIN_END UINT32_MAX /* end of a chain of receive sub-allocations; none */
#define PKT_MAX 8192u
#define CTRL_MSG_MAX 4096u
#define PENDING_CTRL 16u
#define MAX_PKTS_PER_MSG 8u

struct pending_ctrl {
    uint32_t len;
    uint8_t data[512];
};

/* The guest's RSS parameters, validated (rss.c). */
struct netvsp_rss {
    bool on;
    uint32_t hash_types;             /* NDIS_HASH_* bits */
    uint32_t key_be[NDIS_RSS_KEY_LEN / 4]; /* the key as rte_softrss_be takes it */
    uint8_t key[NDIS_RSS_KEY_LEN];   /* as the guest sent it */
    uint32_t nitab;
    uint16_t itab[NDIS_RSS_ITAB_MAX]; /* channel of hash & (nitab - 1); nitab a power of 2 */
};

#define ZC_OWED_MAX (64u * NETVSP_QUEUES_MAX) /* ZC_SLOTS a lane */

/* One channel of a connection: the primary (lane 0) or a sub-channel the
 * guest opened (lane = its sub_channel_index). Its rings, the transfer
 * ranges batched for it, and whether its ring to the guest has writes to
 * publish. Every lane of a NIC is served by the one worker that owns the
 * port, so the connection's receive-buffer allocator and send buffer, which
 * all lanes share (NVSP establishes them on the primary), need no lock. */
struct lane {
    struct vmbus_chan *chan;
    struct vmbus_ring *rx, *tx;
    uint32_t idx;
    /* idx + NETVSP_QUEUES_MAX * (which opening of that channel): what a
     * zero-copy send remembers, so that its completion goes to the opening
     * it came on and is dropped once that opening has closed. */
    uint32_t tag;
    struct vmbus_xfer_range xr[XFER_BATCH];
    uint32_t xn, xhead, xtail;
    /* The data sub-allocation of the batch that frames are packed into
     * (CHAIN_END: none open) and the bytes used in it. */
    uint32_t psub, poff;
    bool unpublished;
};

struct conn {
    struct vmbus_chan *chan; /* the primary's (lane 0) */
    struct vmbus_ring *rx, *tx;
    struct lane l0;
    /* Open lanes by index, lanes[0] = &l0; sub-channel lanes published by
     * the control thread (release), NULL once they close. */
    struct lane *lanes[NETVSP_QUEUES_MAX];
    uint32_t rr;          /* lane the next round starts with (an open one) */
    uint32_t sub_opens;   /* sub-channel openings (control thread): lane tags */
    int epfd;             /* epoll over every open lane's event fd: the port's wait fd */
    int offer_fd;         /* eventfd: the worker asks the control thread to offer */
    uint32_t offer_n;     /* sub-channels granted, to offer (worker writes, then offer_fd) */
    bool sub_asked;       /* the guest asked for sub-channels on this connection */
    uint32_t sub_granted;
    bool itab_sent;       /* SEND_INDIRECTION_TABLE sent for the lanes granted */
    struct hv_partition *part;
    const uint8_t *dma;
    uint64_t mem_pages;
    struct netvsp_zc *zc; /* zero-copy sends (zcopy.c); NULL: every frame copied */
    /* Zero-copy sends reaped whose lane's ring to the guest had no room:
     * completed once it has, each lane in its order; a lane the guest does
     * not read holds up only its own. A lane takes no request while it
     * has no room, so at most ZC_SLOTS are held per lane. */
    struct zc_owed {
        uint32_t tag; /* the lane's (struct lane) */
        uint32_t status;
        uint64_t tid;
    } owed[ZC_OWED_MAX];
    uint32_t nowed;

    bool inited;
    uint32_t nvsp_ver;
    uint32_t msg_size;
    bool have_config, have_ndis_ver;
    uint32_t ndis_ver;
    uint32_t ndis_frame; /* NDIS_CONFIG mtu field, validated */
    uint32_t frame;      /* largest frame both ways: min(ndis_frame, jumbo_frame(NIC mtu)) */

    struct vmbus_gpadl *rgp;
    uint8_t *rbuf;
    uint64_t rlen;
    uint16_t rid;
    uint32_t sub_size, nsub;
    uint32_t *free_data;
    uint32_t nfree_data;
    uint32_t free_ctrl[CTRL_SUBS];
    uint32_t nfree_ctrl;
    uint32_t *next;
    uint8_t *outstanding;

    struct vmbus_gpadl *sgp;
    const uint8_t *sbuf;
    uint64_t slen;
    uint32_t nsections;

    bool rndis_ready;
    uint32_t filter;
    bool guest_csum; /* the guest may ask us to finish checksums */
    /* Offloads the guest turned on (OID_TCP_OFFLOAD_PARAMETERS), each
     * off until it does: LSOv2 per IP version, and whether it takes our
     * receive checksum results (any of TCP/UDP over IPv4/IPv6). */
    bool lso4, lso6;
    uint8_t rx_csum_on; /* bit per tcp4, udp4, tcp6, udp6 */
    bool rx_csum;
    /* RSC: the guest can take it (NVSP 6.1 and NDIS_CONFIG's bit), and
     * turned it on per IP version. Large segments go to it whole while
     * both are on. */
    bool rsc_cap, rsc4, rsc6;
    uint16_t rsc_pkt_id;
    struct netvsp_rss rss;

    struct pending_ctrl pend[PENDING_CTRL];
    uint32_t npend;

    uint32_t errors;
    uint32_t frames_seen; /* PACKET_MSGs parsed, kept or dropped (rx budget) */
    bool dead;
    bool media_told;         /* what the guest was last told (worker) */
    uint32_t media_gen_told; /* np->media_gen when it was told */
    uint32_t mtu_gen_seen;   /* np->mtu_gen the frame limit was computed at */
    uint64_t media_hold;     /* TSC until which a reconnect waits */
    uint8_t pkt[PKT_MAX];
    uint8_t ctl[CTRL_MSG_MAX];
};

struct netvsp {
    struct vsw_port port;
    struct vmbus_server *srv;
    struct vmbus_chan *chan;
    char nic_name[NETVSP_NIC_NAME_MAX + 1];
    uint8_t mac[6];
    uint32_t mtu;
    struct rte_mempool *pool;
    uint32_t queues;   /* channels a guest may have, primary included (1..8) */
    struct conn *conn; /* RCU-published to the worker */
    struct netvsp_subctx {
        struct netvsp *np;
        uint32_t idx;
    } sub[NETVSP_QUEUES_MAX]; /* the sub-channels' device contexts */
    bool media;        /* connected (atomic; control thread writes) */
    uint32_t media_gen; /* changes of media (atomic) */
    uint32_t mtu_gen;   /* changes of mtu (atomic) */
    struct netvsp_stats stats;
};

static inline struct netvsp *np_of(struct vsw_port *port)
{
    return container_of(port, struct netvsp, port);
}

static inline bool media(const struct netvsp *np)
{
    return __atomic_load_n(&np->media, __ATOMIC_ACQUIRE);
}

/* nvs.c */

/* The connection of a channel the guest opened: its rings, no buffers yet,
 * the frame limit of the NIC's MTU. Control thread (open callback); free
 * it only when no worker can be inside it any more. */
int netvsp_conn_create(struct netvsp *np, struct vmbus_chan *chan, struct conn **out);
void netvsp_conn_free(struct conn *c);
/* Lane idx over channel chan (open): its rings, the packet types a guest
 * may send, interrupts masked. */
void netvsp_lane_init(struct lane *l, struct vmbus_chan *chan, uint32_t idx);

/* Count a bad message; cut the guest off once it has sent too many. */
void netvsp_bad(struct netvsp *np, struct conn *c, enum netvsp_err e);
/* A ring of the channel is corrupt: count it and close the channel. */
void netvsp_ring_fatal(struct netvsp *np, struct conn *c);
/* Tell the switch what the port takes now (vsw_port_set_tx_offloads):
 * VSW_TX_CSUM while the guest has a receive checksum offload on; nothing
 * without a connection (c NULL). */
void netvsp_update_tx_offloads(struct netvsp *np, const struct conn *c);
/* Bring the port's link in line with the connection's state. */
void netvsp_update_link(struct netvsp *np, struct conn *c);
/* Transfer packets to the guest: batch receive-buffer ranges (_xfer_add),
 * send them as one packet (_xfer_emit: the number of ranges sent, 0 if the
 * ring was full and they were freed), free a chain of sub-allocations the
 * guest completed (_free_chain). */
void netvsp_xfer_add(struct conn *c, struct lane *l, uint32_t sub, uint32_t len);
/* Small frames share sub-allocations: netvsp_xfer_open() chains a fresh
 * one to the lane's batch and packs into it from its start;
 * netvsp_xfer_pack() adds a range of len bytes at byte offset off of the
 * receive buffer, inside the open one, and moves the packing point past
 * it (64-byte aligned). netvsp_xfer_add() closes packing. */
void netvsp_xfer_open(struct conn *c, struct lane *l, uint32_t sub);
void netvsp_xfer_pack(struct conn *c, struct lane *l, uint32_t off, uint32_t len);
uint32_t netvsp_xfer_emit(struct netvsp *np, struct conn *c, struct lane *l,
                          uint32_t channel_type);
void netvsp_free_chain(struct conn *c, uint32_t first);
/* Ring bytes one guest request can make us produce. */
uint32_t netvsp_reply_room(void);
/* Send an RNDIS control message (answer or indication) in a control
 * sub-allocation, or queue it (PENDING_CTRL at most) when none is free or
 * older ones wait; one that finds neither is dropped. Send queued ones,
 * oldest first, while there is room. */
void netvsp_send_ctrl(struct netvsp *np, struct conn *c, const void *msg, uint32_t len);
void netvsp_flush_pending_ctrl(struct netvsp *np, struct conn *c);
/* Complete the guest's request tid on lane l with {type, status}. */
void netvsp_send_completion(struct conn *c, struct lane *l, uint64_t tid, uint32_t type,
                            uint32_t status);
/* Make what was written to lane l's ring to the guest visible, signalling
 * if needed; _all: every open lane. */
void netvsp_publish(struct netvsp *np, struct conn *c, struct lane *l);
void netvsp_publish_all(struct netvsp *np, struct conn *c);
/* Lanes open now from 0 on without a gap: what an indirection table may
 * name (worker). */
uint32_t netvsp_open_lanes(const struct conn *c);
/* Once every granted sub-channel is open: NVSP 5 SEND_INDIRECTION_TABLE on
 * the primary, the guest's send table round-robin over the lanes (worker). */
void netvsp_send_itab(struct netvsp *np, struct conn *c);
/* One NVSP message from the guest on lane l (in-band or GPA-direct),
 * copied out of its ring packet and checked: length and version of its type, set-up
 * order, a completion asked for where the answer needs one (each refusal
 * counted by netvsp_bad). Set-up messages are handled and answered here.
 * A SEND_RNDIS_PKT that passes is copied into *rndis and true returned:
 * the caller processes its RNDIS messages and completes it. */
bool netvsp_nvs_message(struct netvsp *np, struct conn *c, struct lane *l,
                        const struct vmbus_pkt *pkt, struct nvsp_msg_rndis_pkt *rndis);

/* rndis-ctl.c */

/* An RNDIS control message, copied into c->ctl (len bytes): answered. */
void netvsp_rndis_control(struct netvsp *np, struct conn *c, uint32_t len);
/* Tell the guest its cable or its MTU changed (end of a worker round). */
void netvsp_indicate_media(struct netvsp *np, struct conn *c);
void netvsp_indicate_mtu(struct netvsp *np, struct conn *c);

/* zcopy.c: frames whose payload stays in the guest's pages.
 *
 * A connection's netvsp_zc holds its own read-only mapping of the guest's
 * memory (made from the partition's DMA view dma, bytes long; it outlives
 * the partition) and ZC_SLOTS slots, one per NVSP send whose pages mbufs
 * point into. Control thread: _create (one reference, the connection's),
 * _put (drop one; the last, on whatever thread, unmaps and frees). Owning
 * worker: _slot_get (a free slot, NULL if all are in flight), _attach (make
 * m, a fresh pool mbuf, an external-buffer segment of len bytes at p, inside
 * the mapping), _slot_end (the send is built: true if its completion must
 * wait for its mbufs, false if none is left and the caller completes now),
 * _reap (one send whose mbufs are all freed, on any thread: the lane tag
 * _slot_end named, its transaction id and status; 0 if none), _pending
 * (sends not reaped yet).
 * Extbuf segments have no IO address (RTE_BAD_IOVA): a port that sends
 * them reads them by their virtual address. */
#define ZC_SLOTS 64u
_Static_assert(ZC_OWED_MAX == ZC_SLOTS * NETVSP_QUEUES_MAX, "a conn holds every lane's slots");
int netvsp_zc_create(const uint8_t *dma, uint64_t bytes, struct netvsp_zc **out);
void netvsp_zc_put(struct netvsp_zc *zc);
const uint8_t *netvsp_zc_base(const struct netvsp_zc *zc);
struct zc_slot *netvsp_zc_slot_get(struct netvsp_zc *zc);
void netvsp_zc_attach(struct zc_slot *s, struct rte_mbuf *m, const uint8_t *p, uint16_t len);
bool netvsp_zc_slot_end(struct netvsp_zc *zc, struct zc_slot *s, uint32_t lane_tag, uint64_t tid,
                        uint32_t status);
unsigned netvsp_zc_reap(struct netvsp_zc *zc, uint32_t *lane_tag, uint64_t *tid,
                        uint32_t *status);
bool netvsp_zc_pending(const struct netvsp_zc *zc);
/* Owning worker. _complete: send the completions of the sends whose frames
 * are all freed, each on the lane it came on if that lane (the same
 * opening of its channel: struct lane's tag) has room for a reply, held in
 * c->owed if not (a lane the guest does not read holds up only its own),
 * dropped if that opening has closed; how many were sent or dropped.
 * _owed_ready: a held completion can go out now. */
uint32_t netvsp_zc_complete(struct conn *c);
bool netvsp_zc_owed_ready(struct conn *c);

/* The RNDIS bytes of one NVSP send, as rxtx.c finds them (build_stream):
 * pieces of guest memory in order. */
#define GS_MAX_SEGS 64u
struct gs_seg {
    const uint8_t *p;
    uint32_t len;
    bool guest;  /* guest pages of a GPA-direct send (not the send buffer) */
    bool pinned; /* guest pages in the connection's own mapping (zcopy.c) */
};

struct gstream {
    uint32_t nseg;
    uint32_t total;
    struct gs_seg seg[GS_MAX_SEGS];
};

/* Copy len bytes at off of the stream to dst: -EINVAL if they are not all
 * in it. */
int netvsp_gs_copy(const struct gstream *gs, uint32_t off, uint32_t len, void *dst);
/* What netvsp_gs_to_mbuf did with a frame's payload. */
enum netvsp_zc_use {
    NETVSP_ZC_NONE,     /* copied: too small, or not in guest pages */
    NETVSP_ZC_TAKEN,    /* left in the guest's pages */
    NETVSP_ZC_FALLBACK, /* large enough in guest pages, yet copied: no slot
                         * free, no zero copy on this host (PCI), headers
                         * beyond the copy, or neither TCP nor UDP */
};

/* len bytes at off of the stream (inside it) as a new mbuf chain from pool,
 * NULL if the pool ran dry: copied, or, with a slot zs, the payload of a
 * large TCP/UDP frame left in the guest's pages behind a copy of its
 * headers (zcopy.c says when). *use says which (not set on NULL). */
struct rte_mbuf *netvsp_gs_to_mbuf(struct rte_mempool *pool, const struct gstream *gs,
                                   uint32_t off, uint32_t len, struct zc_slot *zs,
                                   enum netvsp_zc_use *use);

/* rss.c */

/* Parse the OID_GEN_RECEIVE_SCALE_PARAMETERS buffer in (len bytes, a copy
 * the guest cannot change) against cur, the parameters in force, for a NIC
 * with nchan open channels: 0 and *out the new parameters (out may be cur),
 * or -EINVAL, *why, and *out untouched. */
int netvsp_rss_parse(const uint8_t *in, uint32_t len, uint32_t nchan,
                     const struct netvsp_rss *cur, struct netvsp_rss *out,
                     enum netvsp_rss_err *why);
/* The Toeplitz hash of frame f (len bytes, from its Ethernet header, as the
 * guest will see it) under r: the 4-tuple of TCP over IPv4/IPv6 or the
 * 2-tuple of any other IP packet, whichever the hash types allow. Returns
 * true with *hash and *type (the NDIS_HASH_* bit used), false when the
 * frame is none of those (no hash is reported). */
bool netvsp_rss_hash(const struct netvsp_rss *r, const uint8_t *f, uint32_t len, uint32_t *hash,
                     uint32_t *type);

/* rxtx.c: the port's rx_burst and tx_burst (vsw-port-provider.h). */
uint16_t netvsp_rx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n);
uint16_t netvsp_tx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n);

#endif
