/*
 * netvsc: the guest's synthetic NIC driver (the network VSC). It opens a
 * VMBus channel to the root's netvsp, negotiates NVSP and RNDIS, grants a
 * receive and a send buffer, and then moves Ethernet frames both ways.
 * No DPDK; hv-core's guest side only.
 *
 * Threads: one NIC is used by one thread. netvsc_open/close block (control
 * exchanges with the root); everything else never blocks.
 *
 * Sending is zero-copy into guest memory: netvsc_tx_alloc() hands out room
 * for one frame (in a send-buffer section, or for frames larger than a
 * section, in pages sent by GPA-direct), the caller writes the frame there
 * (e.g. read(2) from a TAP straight into it), netvsc_tx_submit() queues it,
 * netvsc_tx_flush() makes a burst visible to the root with at most one
 * signal. Receiving hands each frame to a callback with a pointer into the
 * receive buffer, valid during the callback only.
 */
#ifndef NETVSC_H
#define NETVSC_H

#include <stdbool.h>
#include <stdint.h>

#include "jumbo.h"
#include "vmbus-client.h"

struct netvsc;

struct netvsc_params {
    uint32_t mtu;            /* L3 MTU to ask for, jumbo_mtu_valid(); 0 = JUMBO_MTU_DEFAULT */
    uint32_t ring_pages;     /* per ring, header page included; 0 = 256 */
    uint32_t recv_buf_bytes; /* 0 = 16 MiB */
    uint32_t send_buf_bytes; /* 0 = 4 MiB */
    bool no_offload;         /* do not ask for checksum/LSO/RSC offloads */
    bool rsc;                /* take coalesced TCP receives (NVSP 6.1 RSC) if the root
                                offers them: frames up to NETVSC_RSC_FRAME_MAX, flagged
                                NETVSC_F_RSC, reach the receive callback */
    int timeout_ms;          /* for each control exchange; 0 = 5000 */
    uint32_t target_vp;      /* VP the channel interrupts; < the guest's VP count */
    uint32_t queues;         /* channels wanted (vRSS): 0 or 1 = the primary only; more
                                asks the root for min(queues, what it offers) - 1
                                sub-channels (NVSP 5) and opens those it grants, each on
                                the next VP round-robin from target_vp. Up to
                                NETVSC_QUEUES_MAX. With more than one open, RSS
                                parameters are set (Toeplitz over the open
                                channels), netvsc_poll() serves them all, and
                                a frame is sent on the channel the root's
                                send table names for its hash. */
};
#define NETVSC_QUEUES_MAX 8u

struct netvsc_info {
    uint8_t mac[6];
    uint32_t mtu;           /* L3 MTU in effect: min(asked, root's answer) */
    bool link_up;
    uint32_t nvsp_version;
    uint32_t ndis_version;  /* major << 16 | minor */
    uint32_t link_speed_mbps;
    bool csum_offload;      /* root takes TCP/UDP checksums to finish */
    bool lso;               /* root takes LSOv2 (TCP segmentation), IPv4 and IPv6 */
    uint32_t lso_max;       /* largest LSO frame, L2 (Ethernet header included) */
    uint32_t lso_min_segs;  /* fewest segments an LSO frame may make (0, 1 or 2) */
    bool rsc;               /* the root may coalesce TCP receives (NETVSC_F_RSC) */
    uint32_t tx_frame_max;  /* largest max_len netvsc_tx_alloc() can ever satisfy */
    uint32_t target_vp;     /* VP the channel interrupts */
    uint32_t channels;      /* open channels, the primary included (1 + sub-channels) */
};

/* Is this offer a NIC to open: a live offer of the synthetic network
 * class, and a primary channel (subchannels, vRSS, belong to their
 * primary NIC)? */
bool netvsc_offer_is_nic(const struct vmbus_offer_info *oi);

/* Open the NIC offered as relid and bring it up (NVSP version, NDIS config,
 * buffers, RNDIS initialisation, MAC, offloads, packet filter). */
int netvsc_open(struct vmbus_client *c, uint32_t relid, const struct netvsc_params *p,
                struct netvsc **out);
/* RNDIS halt, revoke buffers, close the channel, tear the GPADLs down,
 * free guest memory. NULL is fine. */
void netvsc_close(struct netvsc *n);
void netvsc_get_info(const struct netvsc *n, struct netvsc_info *out);
uint32_t netvsc_relid(const struct netvsc *n);
/* The open channels, index 0 the primary, up to max of them into out.
 * Returns how many are open (netvsc_info.channels). */
struct netvsc_chan_info {
    uint32_t relid;
    uint32_t target_vp; /* VP the channel interrupts */
};
uint32_t netvsc_get_channels(const struct netvsc *n, struct netvsc_chan_info *out, uint32_t max);

/* Per-frame metadata both ways. */
#define NETVSC_F_VLAN 0x1      /* vlan_tci valid */
/* NETVSC_F_CSUM on receive: the root vouches for the L4 checksum. For a
 * frame whose sender offloaded it (VM to VM), the checksum field may still
 * hold only the pseudo-header sum, as in vmswitch: a front end that hands
 * frames to a kernel must pass them as "checksum partial", not as
 * "verified" (a TAP ignores VIRTIO_NET_HDR_F_DATA_VALID). */
#define NETVSC_F_CSUM 0x2      /* tx: root must complete the L4 checksum; rx: see above */
#define NETVSC_F_LSO 0x4       /* tx: segment with mss (TCP) */
#define NETVSC_F_IPV6 0x8      /* csum / LSO metadata is for IPv6 */
/* rx: TCP segments the root coalesced (RSC), put together here from the
 * receive sections they came in; the root's checksum word (NETVSC_F_CSUM)
 * and tag are the first fragment's. */
#define NETVSC_F_RSC 0x10
/* The largest coalesced frame: 64 KiB of IP payload, an IPv6 header, an
 * Ethernet header and a tag. */
#define NETVSC_RSC_FRAME_MAX (65536u + 40u + 18u)
struct netvsc_meta {
    uint32_t flags;
    uint16_t vlan_tci;
    uint16_t l4_offset;   /* tx CSUM/LSO: start of the TCP/UDP header */
    uint8_t l4_proto;     /* tx CSUM: IPPROTO_TCP or IPPROTO_UDP */
    uint32_t mss;         /* tx LSO */
};

/* Room for one frame of up to max_len bytes. A max_len up to a section's
 * room takes a send section (hundreds of them); a larger one (up to
 * info.tx_frame_max) takes one of a few page chunks sent GPA-direct, so ask
 * for what the frame needs, not the most a device could produce. Returns
 * false if none is free now (wait for completions: netvsc_tx_blocked()
 * turns false when one frees room) or if max_len > tx_frame_max (never). */
struct netvsc_txbuf {
    void *data;
    uint32_t cap;
    uint32_t slot;    /* opaque */
    void *spill;      /* netvsc_tx_alloc_split(): where a longer frame goes on; else NULL */
    uint32_t spill_cap;
};
bool netvsc_tx_alloc(struct netvsc *n, uint32_t max_len, struct netvsc_txbuf *tb);
/* Room for a frame whose length is known only once it is written (one
 * read(2) from a TAP): a send section's room in data/cap, and, if a page
 * chunk is free and max_len is more than a section holds, spill/spill_cap
 * for the rest, so that data then spill take up to max_len bytes in one
 * readv(2). Without a free chunk spill is NULL (spill_cap 0): data takes
 * what a section holds. false as netvsc_tx_alloc() (no section free, or
 * max_len > tx_frame_max). */
bool netvsc_tx_alloc_split(struct netvsc *n, uint32_t max_len, struct netvsc_txbuf *tb);
/* The frame of len bytes written to a split room made one: a frame that
 * fit data stays in its section (the chunk freed); a longer one is made
 * whole in the chunk by moving the cap bytes in data in front of the
 * spilled part (a copy of one section's room, not of the frame), and
 * tb->data/cap then name the chunk. Any other tb is left as it is. false
 * if len is more than tb holds. netvsc_tx_submit() does it if the caller
 * did not (call it first to read or change the frame whole). */
bool netvsc_tx_join(struct netvsc *n, struct netvsc_txbuf *tb, uint32_t len);
/* Queue the frame of len bytes written to tb->data (and tb->spill). 0, -EINVAL (bad len or
 * metadata), -EAGAIN (ring full: flush, wait, submit again). After an error
 * the caller still owns tb: submit it again or netvsc_tx_abort() it.
 * LSO frames go as the kernel built them (IPv4 total length set, TCP
 * checksum field holding the pseudo-header sum). */
int netvsc_tx_submit(struct netvsc *n, struct netvsc_txbuf *tb, uint32_t len,
                     const struct netvsc_meta *meta);
void netvsc_tx_abort(struct netvsc *n, struct netvsc_txbuf *tb);
/* Make submitted frames visible to the root; signal it if needed. */
int netvsc_tx_flush(struct netvsc *n);
/* Convenience: copy and send one frame (alloc + memcpy + submit). */
int netvsc_send(struct netvsc *n, const void *frame, uint32_t len, const struct netvsc_meta *meta);

/*
 * Process what the root sent, up to budget frames: frames go to cb, link
 * changes update netvsc_info, send completions free sections. Completes
 * each receive packet back to the root once its frames are through cb; a
 * packet holding more frames than the budget is gone on with by the next
 * poll, before anything else in the ring (netvsc_intr_arm() counts its
 * rest as work). Returns the number of frames delivered (at most budget),
 * or a negative errno if the channel failed (-EPROTO: the root broke the
 * protocol; -ENOTCONN: rescinded).
 */
typedef void (*netvsc_rx_cb)(void *ctx, const void *frame, uint32_t len,
                             const struct netvsc_meta *meta); /* meta never NULL */
int netvsc_poll(struct netvsc *n, netvsc_rx_cb cb, void *ctx, int budget);

/* Sleeping: the channels' event flags. netvsc_intr_arm() asks the root to
 * signal on every open channel and returns true if there is already work
 * on any (do not sleep); after
 * every wake-up of any of the guest's SINT fds (the primary interrupts the
 * VP netvsc_params.target_vp named, sub-channels the next VPs), call
 * netvsc_event() on each NIC: it tells whether this NIC was signalled on
 * any channel and clears their flags (a flag left set suppresses the
 * root's next signal). */
bool netvsc_intr_arm(struct netvsc *n);
void netvsc_intr_disarm(struct netvsc *n);
bool netvsc_event(struct netvsc *n);
/* True while frames wait for send sections or ring space. */
bool netvsc_tx_blocked(const struct netvsc *n);

struct netvsc_stats {
    uint64_t tx_frames, tx_bytes, tx_gpa_direct;
    uint64_t rx_frames, rx_bytes;
    uint64_t rx_rsc;       /* frames put together from RSC fragments */
    uint64_t tx_no_buffer; /* tx_alloc found nothing free (retries count too) */
    uint64_t rx_bad;       /* malformed messages from the root, dropped */
    uint64_t link_changes;
    uint64_t network_changes; /* NETWORK_CHANGE indications from the root */
    uint64_t send_tables;     /* the root's send indirection tables taken */
    uint64_t send_table_bad;  /* and ignored (wrong size, a channel not open) */
};
void netvsc_get_stats(const struct netvsc *n, struct netvsc_stats *out);
/* Per channel (index 0 the primary): frames and bytes received on it,
 * and sent on it. Up to max into out; returns the open channels. */
struct netvsc_chan_stats {
    uint64_t rx_frames, rx_bytes;
    uint64_t tx_frames, tx_bytes;
};
uint32_t netvsc_get_chan_stats(const struct netvsc *n, struct netvsc_chan_stats *out,
                               uint32_t max);
/* The root indicated that the network changed (it does when the NIC's MTU
 * changes): the owner should start the NIC over, netvsc_close() then
 * netvsc_open(), which negotiates the new frame size, as a guest does
 * after changing its own MTU. */
bool netvsc_reinit_wanted(const struct netvsc *n);

#endif
