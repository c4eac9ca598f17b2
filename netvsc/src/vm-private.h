/*
 * Inside hv-vm's front end: a VM's NICs, each bound to a TAP device, and
 * the loop that moves frames between them. Files, callers above callees:
 *
 *   vm.c        the VM: the NIC set following the root's offers, the
 *               event loop, the VPs' SINTs
 *   vm-nic.c    one NIC and its TAP: open, close, restart (MTU changes,
 *               protocol errors), the TAP recreated, frames both ways
 *   vm-frame.c  translation between a TAP's virtio_net_hdr and netvsc's
 *               per-frame metadata: checksums, offloads
 */
#ifndef NETVSC_VM_PRIVATE_H
#define NETVSC_VM_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/if_ether.h>
#include <linux/virtio_net.h>

#include "hv-guest.h"
#include "netvsc-tap.h"
#include "netvsc.h"
#include "vmbus-client.h"

#define HV_VM_BURST 32 /* frames per NIC per direction per round */
#define HV_VM_MAX_NICS 64
#define VLAN_HLEN 4u
#define VNET_HDR_LEN sizeof(struct virtio_net_hdr)
/* A GSO frame from the kernel: at most 64 KiB of IP packet (IPv6 header
 * not counted in its payload length) plus the L2 header and a tag. */
#define HV_VM_GSO_FRAME_MAX (65536u + 40u + ETH_HLEN + VLAN_HLEN)

/* epoll tags: the signalfd, then NIC slot + 2, then each VP's SINT eventfd. */
#define TAG_SIGNAL 1u
#define TAG_NIC0 2u
#define TAG_TAPEV0 (TAG_NIC0 + HV_VM_MAX_NICS) /* link notifications of NIC i's TAP */
#define TAG_VP0 (TAG_TAPEV0 + HV_VM_MAX_NICS)  /* SINT eventfd of VP v */

/* Frames dropped or worked around in hv-vm itself, by reason (netvsc
 * counts its own). */
struct nic_counters {
    uint64_t to_root_frames, to_root_bytes; /* TAP -> NIC, submitted */
    uint64_t to_tap_frames, to_tap_bytes;   /* NIC -> TAP, written */
    uint64_t to_tap_csum_ok;                /* of which the root vouched for the checksums */
    uint64_t to_tap_partial;                /* ... handed to the TAP as partial checksums */
    uint64_t to_root_csum, to_root_lso;     /* offloads asked of the root */
    uint64_t drop_tap_full;                 /* TAP would block: frame from the root dropped */
    uint64_t drop_tap_write;                /* other TAP write errors */
    uint64_t drop_oversize;                 /* frame from the TAP larger than the NIC can send */
    uint64_t drop_runt;                     /* read shorter than a virtio_net_hdr + header */
    uint64_t drop_bad_offload;              /* offload request we cannot express or check */
    uint64_t drop_gso_type;                 /* GSO type the root does not take (UDP, or no LSO) */
    uint64_t drop_rejected;                 /* netvsc_tx_submit said -EINVAL */
    uint64_t sw_csum;                       /* checksums finished here instead of by the root */
    uint64_t tx_stalls;                     /* no send room: stopped reading the TAP */
    uint64_t ring_full;                     /* netvsc_tx_submit said -EAGAIN */
    uint64_t link_changes;
    uint64_t reopens;
    uint64_t restarts; /* re-initialisations for an MTU change (root's or the VM's) */
};

enum pending_kind { PEND_NONE, PEND_SUBMIT, PEND_BOUNCE };

struct nic {
    struct netvsc *n;
    struct netvsc_tap *tap;
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
    uint8_t *bounce; /* frames too big for the first buffer (HV_VM_GSO_FRAME_MAX) */
    struct nic_counters ct;
    char name[NETVSC_TAP_NAME_MAX + 1];
};

struct vm {
    const char *name;
    const char *netns;
    int tap_broker; /* the root's TAP broker (--tap-broker-fd) */
    bool verbose;
    struct hv_guest *g;
    struct vmbus_client *c;
    int ep;
    int sfd;
    uint32_t nvp;
    uint32_t next_vp; /* where the next NIC opened goes (round-robin) */
    struct nic *nics[HV_VM_MAX_NICS];
    uint32_t failed[HV_VM_MAX_NICS]; /* relids that would not open: not retried */
    int nfailed;
    bool stop;
};

/* vm-frame.c */
void tap_params_from_info(const struct netvsc_info *info, const char *name,
                          struct netvsc_tap_params *tp);
bool rx_partial_csum(const uint8_t *frame, uint32_t len, uint16_t *start, uint16_t *offset);
bool vnet_to_meta(struct nic *x, const struct virtio_net_hdr *vh, uint8_t *f, uint32_t len,
                  struct netvsc_meta *meta);

/* vm-nic.c */
int nic_open(struct vm *vm, const struct vmbus_offer_info *oi);
void nic_close(struct vm *vm, struct nic *x, const char *why);
int nic_service(struct vm *vm, struct nic *x, bool force);

/* vm.c */
void remember_failed(struct vm *vm, uint32_t relid);
void sync_offers(struct vm *vm);
int run(struct vm *vm);
int setup_events(struct vm *vm);
int watch_vps(struct vm *vm);

#endif
