/*
 * netvsc-vm: the guest front end, what hv-vm runs. A child partition's
 * synthetic NICs (netvsc.h), each bound to a TAP device named after it in
 * the VM's network namespace (nettap.h), and one loop that moves
 * frames between them.
 *
 * netvsc_vm_create() connects VMBus on an attached partition and opens
 * every NIC the root offers; from then on the NIC set follows the offers
 * (hot-added NICs opened, rescinded ones closed). Each NIC's TAP is made by
 * the root's TAP broker (the caller holds no privilege) with the MAC, MTU,
 * link state and offloads the NIC negotiated. A NIC is started over
 * (netvsc_close() + netvsc_open(), its TAP and with it the VM's addresses
 * kept) when the root indicates a network change (its MTU changed), when
 * the VM sets its interface's MTU, and once after a protocol error from
 * the root; a TAP deleted inside the VM is made again.
 *
 * Frames, NIC -> TAP: a virtio_net_hdr in front; a VLAN tag the root
 * passed out of band is put back into the frame; a checksum the root
 * vouched for is handed over as verified, or as partial when the field
 * holds only the pseudo-header sum (the sender left it to the network).
 * NICs ask for RSC: TCP segments the root coalesced reach the TAP as one
 * GSO frame (a TAP takes GSO frames written to it whatever offloads it
 * was given; TUNSETOFFLOAD says only what it hands us).
 * TAP -> NIC: partial checksums and TCP segmentation go to the root as
 * offloads where it takes them, else checksums are finished here; frames
 * are read straight into send room in guest memory, frames larger than a
 * send section into a section and a page chunk sent GPA-direct (through a
 * bounce buffer only while every chunk is in flight). What cannot be sent is dropped and
 * counted by reason (struct netvsc_vm_nic_counters).
 *
 * Virtual processors: the partition's VPs are interrupt targets, not
 * threads. NICs are spread over them round-robin in the order they are
 * opened, and the loop waits on every VP's SINT eventfd.
 *
 * The loop: per round, every NIC gets at most one burst each way, so one
 * busy NIC cannot starve the others. After the last work it keeps polling
 * for a short while, then arms every NIC's interrupt and sleeps in
 * epoll_wait on the SINT eventfds, the TAPs and the signalfd.
 *
 * Messages: one line each, "hv-vm NAME: ...", events on stdout (flushed),
 * errors on stderr.
 *
 * Threads: one. After netvsc_vm_create() returns, the library makes only
 * the system calls netvsc-sandbox.h's filter allows.
 */
#ifndef NETVSC_VM_H
#define NETVSC_VM_H

#include <stdbool.h>
#include <stdint.h>

#include "nettap.h"
#include "netvsc.h"

struct hv_guest;
struct netvsc_vm;

#define NETVSC_VM_CONNECT_MS 10000

struct netvsc_vm_params {
    const char *name;       /* the VM's name, for messages */
    const char *netns;      /* its network namespace's name, for messages */
    struct hv_guest *guest; /* attached (hv-guest.h); not taken over */
    int tap_broker;         /* the root's TAP broker; not taken over */
    int signal_fd;          /* a signalfd whose signals stop netvsc_vm_run(); -1: none */
    int connect_ms;         /* VMBus connect timeout; 0 = NETVSC_VM_CONNECT_MS */
    bool verbose;           /* also report offers, link and MTU changes in detail */
    bool no_offload;        /* ask for no checksum/LSO/RSC offloads: a guest that turned
                               them off in its adapter's settings */
};

/* Watch the VM's events, connect VMBus, open the NICs offered so far. The
 * calling thread must be in the VM's network namespace (the TAPs'
 * notifications are read there). 0, or a negative errno (reported). */
int netvsc_vm_create(const struct netvsc_vm_params *p, struct netvsc_vm **out);

/* Close every NIC (its TAP deleted, its counters reported), disconnect
 * VMBus. The guest, the broker and the signalfd stay the caller's. NULL is
 * fine. */
void netvsc_vm_destroy(struct netvsc_vm *vm);

/* Run the loop until a signal arrives on signal_fd (0) or the loop fails
 * (a negative errno: VMBus or epoll broke; reported). */
int netvsc_vm_run(struct netvsc_vm *vm);

/* One round of the loop, sleeping at most timeout_ms (-1: as long as the
 * loop would) for events. 0, or a negative errno as netvsc_vm_run(). */
int netvsc_vm_poll(struct netvsc_vm *vm, int timeout_ms);

/* Frames dropped or worked around in the front end, by reason (netvsc
 * counts its own). */
struct netvsc_vm_nic_counters {
    uint64_t to_root_frames, to_root_bytes; /* TAP -> NIC, submitted */
    uint64_t to_tap_frames, to_tap_bytes;   /* NIC -> TAP, written */
    uint64_t to_tap_csum_ok;                /* of which the root vouched for the checksums */
    uint64_t to_tap_partial;                /* ... handed to the TAP as partial checksums */
    uint64_t to_tap_rsc;                    /* ... coalesced by the root, handed as GSO frames */
    uint64_t to_root_csum, to_root_lso;     /* offloads asked of the root */
    uint64_t drop_tap_full;                 /* TAP would block: frame from the root dropped */
    uint64_t drop_tap_write;                /* other TAP write errors */
    uint64_t drop_oversize;                 /* frame from the TAP larger than the NIC can send */
    uint64_t drop_runt;                     /* read shorter than a virtio_net_hdr + header */
    uint64_t drop_bad_offload;              /* offload request we cannot express or check */
    uint64_t drop_gso_type;                 /* GSO type the root does not take (UDP, or no LSO) */
    uint64_t drop_rsc;                      /* coalesced frame from the root that is not a
                                               checked TCP segment (netvsc_vm_rx_rsc_iov) */
    uint64_t drop_rejected;                 /* netvsc_tx_submit said -EINVAL */
    uint64_t bounced;                       /* long frames put together in the bounce buffer
                                               (no page chunk free to read into) */
    uint64_t sw_csum;                       /* checksums finished here instead of by the root */
    uint64_t tx_stalls;                     /* no send room: stopped reading the TAP */
    uint64_t ring_full;                     /* netvsc_tx_submit said -EAGAIN */
    uint64_t link_changes;
    uint64_t reopens;
    uint64_t restarts; /* re-initialisations for an MTU change (root's or the VM's) */
};

/* One open NIC as the front end sees it. */
struct netvsc_vm_nic_state {
    char name[NETTAP_NAME_MAX + 1]; /* its TAP's name in the VM */
    uint32_t relid;
    uint32_t vp;           /* the VP its channel interrupts */
    int tap_ifindex;
    struct netvsc_info info; /* as last applied to the TAP */
    struct netvsc_vm_nic_counters counters;
};

/* The open NICs, up to max of them in out, in slot order; returns how
 * many there are. */
unsigned netvsc_vm_nics(const struct netvsc_vm *vm, struct netvsc_vm_nic_state *out,
                        unsigned max);

#endif
