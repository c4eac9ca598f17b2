/*
 * Inside the guest front end (netvsc-vm.h). Files, each calling only the
 * ones below it:
 *
 *   vm.c        the VM: the NIC set following the root's offers, the
 *               event loop, the VPs' SINTs, the signalfd
 *   vm-nic.c    one NIC and its TAP: open, close, restart (MTU changes,
 *               protocol errors), the TAP made again, frames both ways
 *               (the bounce buffer, the pending frame)
 *   vm-frame.c  translation between a TAP's virtio_net_hdr and netvsc's
 *               per-frame metadata: checksums, offloads, VLAN tags; pure
 *               functions of their arguments
 */
#ifndef NETVSC_VM_PRIVATE_H
#define NETVSC_VM_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/virtio_net.h>

#include "jumbo.h"
#include "nettap.h"
#include "netvsc-vm.h"
#include "netvsc.h"
#include "vmbus-client.h"

#define NETVSC_VM_BURST 32 /* frames per NIC per direction per round */
#define NETVSC_VM_MAX_NICS 64
#define NETVSC_VM_VNET_HDR_LEN sizeof(struct virtio_net_hdr)
/* A GSO frame from the kernel: at most 64 KiB of IP packet (IPv6 header
 * not counted in its payload length) plus the L2 header and a tag. */
#define NETVSC_VM_GSO_FRAME_MAX (65536u + 40u + JUMBO_ETH_HLEN + JUMBO_VLAN_HLEN)

/* epoll tags: the signalfd, then NIC slot + 2, then each VP's SINT eventfd. */
#define NETVSC_VM_TAG_SIGNAL 1u
#define NETVSC_VM_TAG_NIC0 2u
/* link notifications of NIC i's TAP */
#define NETVSC_VM_TAG_TAPEV0 (NETVSC_VM_TAG_NIC0 + NETVSC_VM_MAX_NICS)
/* SINT eventfd of VP v */
#define NETVSC_VM_TAG_VP0 (NETVSC_VM_TAG_TAPEV0 + NETVSC_VM_MAX_NICS)

/* What a NIC needs of its VM. The VM owns it; its NICs point to it. */
struct netvsc_vm_env {
    const char *name;  /* VM name, for messages */
    const char *netns; /* for messages */
    struct vmbus_client *c;
    int ep;         /* the loop's epoll */
    int tap_broker; /* the root's TAP broker */
    bool verbose;
    bool no_offload;  /* netvsc_vm_params.no_offload */
    uint32_t nvp;     /* the partition's VPs */
    uint32_t next_vp; /* where the next NIC opened goes (round-robin) */
};

enum pending_kind { PEND_NONE, PEND_SUBMIT, PEND_BOUNCE };

struct nic {
    const struct netvsc_vm_env *env;
    struct netvsc *n;
    struct nettap *tap;
    int tap_fd;
    int slot;
    uint32_t relid;
    uint32_t vp; /* the VP its channel interrupts, kept across reopens */
    struct vmbus_guid instance;
    struct netvsc_info info; /* as last applied to the TAP */
    uint64_t link_changes_seen; /* netvsc_stats.link_changes at the last sync */
    uint32_t frame_max;      /* largest non-GSO frame: MTU + Ethernet header + tag */
    uint32_t tx_frame_cap;   /* largest frame taken from the TAP (GSO frames with LSO) */
    bool tap_ready;          /* the TAP may have frames (no EAGAIN since epoll said so) */
    bool tap_in;             /* EPOLLIN registered */
    bool reopened;           /* already reopened once after -EPROTO */
    bool tso;                /* the TAP hands us GSO frames */
    bool tap_lost;           /* EPOLLERR/EPOLLHUP: the device was deleted under us */
    bool tap_event;          /* link notifications wait on the TAP's netlink socket */
    uint32_t want_mtu;       /* the MTU the VM set on its interface; 0 = what the root allows */
    /* One frame read from the TAP that the NIC could not take yet. */
    enum pending_kind pend;
    struct netvsc_txbuf pend_tb;
    uint32_t pend_len;
    struct netvsc_meta pend_meta;
    uint8_t *bounce; /* frames too big for the first buffer (NETVSC_VM_GSO_FRAME_MAX) */
    struct netvsc_vm_nic_counters ct;
    char name[NETTAP_NAME_MAX + 1];
};

/* vm-frame.c */

/* The TAP a NIC with this info gets: its MAC, MTU and link state, and the
 * offloads the root takes (partial checksums only if the root finishes
 * them, GSO frames only with LSO, none larger than the root's LSO limit). */
void netvsc_vm_tap_params(const struct netvsc_info *info, const char *name,
                          struct nettap_params *tp);

/* Does this frame's TCP/UDP checksum field hold just the pseudo-header sum
 * (a checksum left to the network)? If so, *start and *offset say where
 * the L4 header and the field in it are. Reads a copy of at most the
 * headers; any len and content is safe. */
bool netvsc_vm_rx_partial_csum(const uint8_t *frame, uint32_t len, uint16_t *start,
                               uint16_t *offset);

/* How a frame from the root is handed to the TAP. */
enum netvsc_vm_rx_csum {
    NETVSC_VM_RX_CSUM_NONE,    /* the root did not vouch for it: the kernel checks */
    NETVSC_VM_RX_CSUM_VALID,   /* VIRTIO_NET_HDR_F_DATA_VALID */
    NETVSC_VM_RX_CSUM_PARTIAL, /* VIRTIO_NET_HDR_F_NEEDS_CSUM */
};

/* NIC -> TAP, one frame: the virtio_net_hdr for it in *vh, and the iovecs
 * of one writev (vh, then the frame, its VLAN tag put back after the MACs
 * if the root passed it out of band, the 4 tag bytes in tag). Returns the
 * iovec count (2 or 4); *csum says how its checksum is handed over. The
 * iovecs point into frame, vh and tag. */
int netvsc_vm_rx_iov(const void *frame, uint32_t len, const struct netvsc_meta *meta,
                     struct virtio_net_hdr *vh, uint8_t tag[JUMBO_VLAN_HLEN],
                     struct iovec iov[4], enum netvsc_vm_rx_csum *csum);

/* The most header bytes of a coalesced frame the front end rewrites:
 * Ethernet, a tag, the largest IPv4 header, the largest TCP header. */
#define NETVSC_VM_RSC_HDR_MAX (JUMBO_ETH_HLEN + JUMBO_VLAN_HLEN + 60u + 60u)

/* NIC -> TAP, a frame the root coalesced (NETVSC_F_RSC) for a NIC of MTU
 * mtu: a GSO frame for the VM's kernel (TCPV4/V6, gso_size the largest
 * segment the MTU allows behind these headers, the checksum partial), its
 * headers copied into hdr with the TCP checksum field set to the
 * pseudo-header sum the kernel expects of a partial checksum, the tag put
 * back if the root passed it out of band. Returns the iovec count (up to
 * 5), or -EPROTO if the frame cannot be one: no checksum the root vouched
 * for, not TCP over IPv4 (not a fragment) or IPv6 (no extension header),
 * lengths that disagree with the frame, no payload. */
int netvsc_vm_rx_rsc_iov(const void *frame, uint32_t len, const struct netvsc_meta *meta,
                         uint32_t mtu, struct virtio_net_hdr *vh,
                         uint8_t hdr[NETVSC_VM_RSC_HDR_MAX], uint8_t tag[JUMBO_VLAN_HLEN],
                         struct iovec iov[5]);

/* What becomes of a frame from the TAP. */
enum netvsc_vm_tx_verdict {
    NETVSC_VM_TX_OK,          /* send it with *meta */
    NETVSC_VM_TX_SW_CSUM,     /* send it; its checksum was finished here */
    NETVSC_VM_TX_BAD_OFFLOAD, /* drop: an offload request we cannot express or check */
    NETVSC_VM_TX_GSO_TYPE,    /* drop: a GSO type the root does not take */
};

/* TAP -> NIC: translate the TAP's virtio_net_hdr of the frame f (len
 * bytes) into netvsc metadata for a NIC with this info. A partial checksum
 * the root cannot finish is finished in f. */
enum netvsc_vm_tx_verdict netvsc_vm_tx_meta(const struct netvsc_info *info,
                                            const struct virtio_net_hdr *vh, uint8_t *f,
                                            uint32_t len, struct netvsc_meta *meta);

/* vm-nic.c */

/* Open the NIC offered as oi into slot (< 0: none free, refused with
 * -ENOSPC) on the VP env->next_vp (then advanced), with a TAP made through
 * env->tap_broker and watched on env->ep. Reports what it did. */
int netvsc_vm_nic_open(struct netvsc_vm_env *env, const struct vmbus_offer_info *oi, int slot,
                       struct nic **out);
/* Report why and the NIC's counters, delete its TAP, close the NIC, free x. */
void netvsc_vm_nic_close(struct nic *x, const char *why);

/* Why netvsc_vm_nic_service() gave a NIC up. */
struct netvsc_vm_nic_end {
    const char *why; /* for netvsc_vm_nic_close() */
    bool failed;     /* do not open its relid again while it is offered */
};
/* One round for one NIC: a burst from the root, then a burst to it, and
 * whatever the NIC or its TAP needs (restart, link state, TAP made again).
 * Returns the work done, or -1 if the NIC cannot go on (*end says why;
 * close it). force: retry sending even while netvsc says blocked (after a
 * bounded sleep, against a lost wake-up). */
int netvsc_vm_nic_service(struct nic *x, bool force, struct netvsc_vm_nic_end *end);
/* Frames wait for send room (a pending frame, or the TAP left unread). */
bool netvsc_vm_nic_stalled(const struct nic *x);

/* The data path, for netvsc_vm_nic_service() and tests. The TAP may be any
 * descriptor that keeps record boundaries (a SOCK_SEQPACKET socket). */
void netvsc_vm_nic_set_limits(struct nic *x, bool tso);
/* netvsc_rx_cb: one frame from the root written to the TAP (ctx: x). */
void netvsc_vm_nic_rx_frame(void *ctx, const void *frame, uint32_t len,
                            const struct netvsc_meta *meta);
/* TAP -> NIC, one burst. Returns frames taken from the TAP, or -errno if
 * the TAP is gone. */
int netvsc_vm_nic_tx(struct nic *x, bool force);

#endif
