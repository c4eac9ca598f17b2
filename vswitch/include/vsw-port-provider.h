/*
 * What a port type implements to plug into the switch: VM NICs (netvsp),
 * host vNICs and uplinks. The forwarding core never includes a concrete
 * port type; it only calls these operations.
 *
 * A port type embeds struct vsw_port as the first member of its own struct
 * and recovers it with container_of().
 *
 * Threads. Data-path operations (rx_burst, tx_burst, tx_flush, wait_*) run
 * only on the worker lcore that owns the port, one at a time: a port needs no
 * locks against itself. Other workers never call them; frames for a port
 * owned by another worker travel through a hand-off ring the owner drains.
 * Control operations run on the control thread.
 */
#ifndef VSW_PORT_PROVIDER_H
#define VSW_PORT_PROVIDER_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "vsw.h"

struct rte_ring;

#define VSW_WORKER_NONE UINT16_MAX

struct vsw_port_class {
    const char *type; /* "vm", "host", "uplink" */

    /* The port's share of one worker round: receive up to n frames into
     * pkts (mbufs from the pool), doing at most n units of work, where a
     * frame costs one unit and so does every other message the port takes
     * from its peer (a guest's control requests, completions, refused
     * messages). Whatever is left waits for the next round, so that one
     * port cannot hold its worker's other ports up. A call that did work
     * but returns fewer frames than that work (control messages only, or
     * a budget spent with more waiting) says so with vsw_port_rx_busy(),
     * so that the worker neither naps nor sleeps with work pending. */
    uint16_t (*rx_burst)(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n);
    /* Send n frames; takes ownership of all of them. Frames it cannot send
     * it frees and counts (vsw_port_drop). Returns frames sent. */
    uint16_t (*tx_burst)(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n);
    /* Optional: end of a worker round; push out what tx_burst batched. */
    void (*tx_flush)(struct vsw_port *port);
    /* Optional, for a port whose word says VSW_TX_TSO4/_TSO6: does it take
     * this large segment (headers in its first segment, of an IP version
     * it takes) whole, once the switch has put tag into it (0: none)?
     * false: the switch cuts it first. For a device's own limits on the
     * MSS, the segment count or the header length. NULL: it takes every
     * one its word says. Owning worker. */
    bool (*tso_fits)(const struct vsw_port *port, const struct rte_mbuf *m, uint16_t tag);

    /* Sleeping. wait_fd: readable when rx_burst may find work, or -1 when
     * there is nothing to wait for right now (e.g. a VM NIC no guest has
     * opened). A class without wait_fd can only be polled: its worker then
     * naps at most a millisecond. wait_arm: ask for that wake-up; return true
     * if work is already pending (then the worker does not sleep).
     * wait_disarm: the worker is polling again; drain the wait fd. */
    int (*wait_fd)(struct vsw_port *port);
    bool (*wait_arm)(struct vsw_port *port);
    void (*wait_disarm)(struct vsw_port *port);

    /* Control thread: free the port (it is detached). */
    void (*destroy)(struct vsw_port *port);

    /* How the port carries VLANs on its wire. true: as 802.1Q tags in the
     * frame (host vNICs, uplinks): the switch inserts them before tx_burst
     * and strips them on receive. false: out of band (VM NICs: the RNDIS
     * VLAN PPI): the port type reads vsw_port_tx_vlan() itself and marks
     * received tags with RTE_MBUF_F_RX_VLAN + vlan_tci. */
    bool inband_vlan;
    /* tx_burst may write to the frames (checksums, tags): the switch hands
     * it frames no other port shares (copying flooded ones, and the
     * segments of a large segment it cut, whose payload is the original's).
     * Without it a frame may be shared or indirect: read it only. */
    bool tx_writes;
};

/* Per-lcore counters: written only by their lcore, summed on read. */
struct vsw_port_counters {
    uint64_t rx_packets, rx_bytes;
    uint64_t tx_packets, tx_bytes;
    uint64_t drops[VSW_DROP_COUNT];
} __rte_cache_aligned;

struct vsw_policy_rt;
struct vsw_capture;

struct vsw_port {
    const struct vsw_port_class *cls;
    char name[VSW_NAME_MAX];
    struct vsw_policy_rt *policy;   /* RCU; never NULL once attached */
    struct vsw_port *mirror_to;     /* RCU: mirror destination, or NULL */
    struct vsw_capture *capture;    /* RCU: active capture, or NULL */
    /* Set by the switch core. */
    struct vsw_switch *sw;
    uint16_t index;        /* in the data plane's port table */
    uint16_t worker;       /* owning worker (the one that polls it), by index */
    /* atomic: the worker whose frames for this port go to tx_burst
     * directly (the owner, once it has taken the port over), or
     * VSW_WORKER_NONE while the port moves (vsw-placement.h). */
    uint16_t tx_worker;
    /* atomic: the worker that is to take the port over in a move, or
     * VSW_WORKER_NONE. */
    uint16_t take_by;
    struct rte_ring *handoff; /* frames from other workers */
    uint32_t max_frame;    /* to the port: longer frames are dropped, too_big */
    uint32_t rx_max_frame; /* from the port (tag stripped): longer ones too_big */
    int wait_fd_registered; /* in the owner's sleep set, or -1 */
    bool rx_busy;          /* owner: rx_burst did work beyond its frames */
    bool link_up;          /* atomic; set by the port type */
    uint32_t tx_offloads;  /* atomic: VSW_TX_* the port takes (vsw_port_set_tx_offloads) */
    /* Owner: TSC cycles charged to the port's work (relaxed stores). */
    uint64_t busy_cycles;
    /* Control thread: placement (vsw-placement.h). */
    int pin_lcore;          /* VSW_PIN_AUTO or the lcore it is pinned to */
    bool pin_missing;       /* pinned to an lcore no worker runs on */
    uint8_t vmq_weight;     /* 0: VMQ off; 1..100 (vsw_port_set_vmq) */
    uint64_t moves;
    uint64_t last_move_sample;
    uint64_t sample_cycles; /* busy_cycles at the last load sample */
    double load_pct;        /* its share of its worker's time, last interval */
    double load_avg;        /* dynamic VMQ: its smoothed load; negative: none yet */
    /* Control thread: rx/tx packets at the last vsw_dp_stats_clear(). */
    uint64_t clear_rx_packets, clear_tx_packets;
    struct vsw_port_counters counters[RTE_MAX_LCORE];
};

/* The policy as the data path sees it (the public part first). */
struct vsw_policy_rt {
    struct vsw_port_policy pol;
};

/* The VLAN tag frame m wears on this port's wire, 0 for none: for port
 * types that carry VLANs out of band. Data path. */
static inline uint16_t vsw_port_tx_vlan(const struct vsw_port *port, const struct rte_mbuf *m)
{
    const struct vsw_policy_rt *p = __atomic_load_n(&port->policy, __ATOMIC_ACQUIRE);
    uint16_t vid = m->vlan_tci & 0xfff;
    if (!p || !p->pol.trunk || vid == 0 || vid == p->pol.native_vlan)
        return 0;
    return vid;
}

/* Set on mirror copies: a port delivers them whatever its own filter says
 * (a VM's packet filter would otherwise drop frames for other MACs). */
extern uint64_t vsw_mirror_copy_flag;

/* For port types: fill in the common part. */
void vsw_port_init(struct vsw_port *port, const struct vsw_port_class *cls, const char *name);

static inline void vsw_port_drop(struct vsw_port *port, enum vsw_drop why, uint32_t n)
{
    port->counters[rte_lcore_id()].drops[why] += n;
}

/* For rx_burst: this call did work that its returned frames do not show
 * (see rx_burst). The owning worker counts the round as busy. */
static inline void vsw_port_rx_busy(struct vsw_port *port)
{
    port->rx_busy = true;
}

/*
 * What a port takes from the switch, beyond finished frames (vsw-frame.h
 * says what the requests are). VSW_TX_CSUM: frames whose TCP/UDP checksum
 * is left to the network (RTE_MBUF_F_TX_TCP_CKSUM/_UDP_CKSUM with l2_len,
 * l3_len, RTE_MBUF_F_TX_IPV4/_IPV6), as they are. VSW_TX_TSO4 / _TSO6:
 * large TCP segments (RTE_MBUF_F_TX_TCP_SEG, vsw_frame_tso_request()) over
 * IPv4 / IPv6 whole, as far as the class's tso_fits agrees; VSW_TX_TSO is
 * both. Before a frame reaches tx_burst the switch makes it fit: a large
 * segment the port does not take whole is cut into segments, and
 * checksums a port without VSW_TX_CSUM does not take are finished in
 * software.
 *
 * A port type sets its word when it creates the port and whenever what
 * its peer negotiated changes; any thread, relaxed: frames already staged
 * when the word changes reach tx_burst as they were made to fit. Until a
 * port type sets it, vsw_port_init() leaves 0 (finished frames only),
 * except for ports of type "vm", which start with VSW_TX_CSUM: what VM NICs
 * took before they said so.
 */
#define VSW_TX_CSUM (1u << 0)
#define VSW_TX_TSO4 (1u << 1)
#define VSW_TX_TSO6 (1u << 3)
#define VSW_TX_TSO (VSW_TX_TSO4 | VSW_TX_TSO6)
/* Not an offload but a hint: the port copies or sums every byte of each
 * frame anyway (net_af_packet's ring, software checksums), so segments cut
 * for it come best as one private mbuf each, built by one copy, rather
 * than as header mbufs chained to indirect ones over the large segment. */
#define VSW_TX_LINEAR (1u << 2)

static inline void vsw_port_set_tx_offloads(struct vsw_port *port, uint32_t flags)
{
    __atomic_store_n(&port->tx_offloads, flags, __ATOMIC_RELAXED);
}

static inline uint32_t vsw_port_tx_offloads(const struct vsw_port *port)
{
    return __atomic_load_n(&port->tx_offloads, __ATOMIC_RELAXED);
}

static inline void vsw_port_set_link(struct vsw_port *port, bool up)
{
    __atomic_store_n(&port->link_up, up, __ATOMIC_RELEASE);
}

static inline bool vsw_port_link(const struct vsw_port *port)
{
    return __atomic_load_n(&port->link_up, __ATOMIC_ACQUIRE);
}

/* For port types whose wake-up source changes while attached (a VM NIC's
 * channel opens and closes): re-read wait_fd and update the owner's sleep
 * set. Control thread. */
void vsw_port_wait_fd_changed(struct vsw_port *port);

/* Wake the worker that owns the port (if it sleeps), so that it runs a
 * round soon: for changes a port type hands to its worker. Any thread. */
void vsw_port_kick(struct vsw_port *port);

/* Block until no worker can still be using something the port just
 * unpublished (RCU grace period). Control thread. */
void vsw_port_synchronize(struct vsw_port *port);

#endif
