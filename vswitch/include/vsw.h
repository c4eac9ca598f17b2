/*
 * vswitch: the DPDK data plane. A struct vsw_dp owns the mbuf pool, the
 * worker lcores and the port table; switches group ports and forward
 * between them (MAC learning with aging, flooding within the switch).
 *
 * Threads: every function here is for the control thread (the EAL main
 * lcore), which is never a data-path reader. Workers pick up configuration
 * changes without stopping: the control thread publishes a new version and
 * waits (RCU quiescent-state based reclamation) before freeing the old one.
 */
#ifndef VSW_H
#define VSW_H

#include <stdbool.h>
#include <stdint.h>

#define VSW_BURST 32
#define VSW_NAME_MAX 48 /* "VM/NIC" names fit: 31 + 1 + 15 */
#define VSW_MAX_PORTS 1024
#define VSW_MAX_WORKERS 16

struct rte_mempool;
struct rte_mbuf;
struct vsw_dp;
struct vsw_switch;
struct vsw_port;

enum vsw_switch_kind {
    VSW_SWITCH_PRIVATE,
    VSW_SWITCH_INTERNAL,
    VSW_SWITCH_EXTERNAL,
};
const char *vsw_switch_kind_name(enum vsw_switch_kind k);
int vsw_switch_kind_parse(const char *s, enum vsw_switch_kind *out);

/* Why a frame was dropped; every drop is counted on a port with one. */
enum vsw_drop {
    VSW_DROP_RUNT,         /* shorter than an Ethernet header */
    VSW_DROP_BAD_SRC_MAC,  /* multicast or zero source address */
    VSW_DROP_TOO_BIG,      /* longer than the egress port's frame limit (its MTU) */
    VSW_DROP_RX_TOO_BIG,   /* the port sent a frame longer than its MTU allows */
    VSW_DROP_NO_MBUF,      /* mbuf pool empty */
    VSW_DROP_QUEUE_FULL,   /* egress port or its hand-off queue full */
    VSW_DROP_LINK_DOWN,    /* egress port not connected */
    VSW_DROP_HAIRPIN,      /* destination is the ingress port */
    VSW_DROP_NO_DEST,      /* flooded, but no other port is up */
    VSW_DROP_VLAN,         /* VLAN not allowed on the port (or tag where none may be) */
    VSW_DROP_MAC_SPOOF,    /* source MAC not the port's own (spoofing off) */
    VSW_DROP_DHCP_GUARD,   /* DHCP server message from a guarded port */
    VSW_DROP_ROUTER_GUARD, /* router advertisement / redirect from a guarded port */
    VSW_DROP_RATE_LIMIT,   /* above the port's bandwidth limit */
    VSW_DROP_STORM,        /* broadcast/multicast above the port's storm limit */
    VSW_DROP_PORT_SPECIFIC, /* counted in the port's own statistics */
    VSW_DROP_OFFLOAD,      /* an offload request the switch could not carry out for the port */
    VSW_DROP_COUNT
};
const char *vsw_drop_name(enum vsw_drop d);

struct vsw_port_stats {
    uint64_t rx_packets, rx_bytes; /* from the port into the switch */
    uint64_t tx_packets, tx_bytes; /* from the switch out of the port */
    uint64_t drops[VSW_DROP_COUNT];
};

struct vsw_dp_params {
    /* The pool for copies the switch makes (floods to ports that write,
     * tags, mirrors, captures): given (the caller keeps it; the jumbo
     * module's std class in vswitchd), or made from the two below. */
    struct rte_mempool *pool;
    unsigned nb_mbufs;       /* default 16383 */
    uint16_t mbuf_data_size; /* per segment; default RTE_MBUF_DEFAULT_BUF_SIZE */
    unsigned idle_sleep_us;  /* idle time before a worker sleeps; default 200 */
};

/* After rte_eal_init(): creates the pool and launches one worker on every
 * EAL worker lcore (at least one is required). */
int vsw_dp_create(const struct vsw_dp_params *params, struct vsw_dp **out);
/* Stops the workers; every port must be detached and every switch gone. */
void vsw_dp_destroy(struct vsw_dp *dp);
struct rte_mempool *vsw_dp_mempool(const struct vsw_dp *dp);
unsigned vsw_dp_workers(const struct vsw_dp *dp);
/*
 * What a worker did, like OVS's pmd-stats-show. Every count is written only
 * by the worker (relaxed stores) and read here with relaxed loads: a
 * snapshot is consistent per field, not across fields.
 *
 * Cycles are TSC cycles. The worker reads the TSC once per round: a round
 * that did work (frames, hand-offs or a port's control messages) goes to
 * busy_cycles, a round that found nothing to idle_cycles, and the time from
 * deciding to sleep until it polls again (arming the ports' wake-ups, the
 * epoll wait, disarming) to sleep_cycles. busy + idle + sleep is the
 * worker's whole time since it started (or since the baseline).
 */
struct vsw_worker_stats {
    unsigned lcore;
    unsigned ports;
    uint64_t rounds;       /* polling rounds */
    uint64_t busy_rounds;  /* rounds that moved frames or took control messages */
    uint64_t sleeps;       /* times it went to sleep */
    uint64_t wakeups;      /* sleeps ended by an event rather than the timeout */
    uint64_t busy_cycles;  /* in rounds that did work */
    uint64_t idle_cycles;  /* in rounds that found none */
    uint64_t sleep_cycles; /* from deciding to sleep until polling again */
    uint64_t rx_packets;   /* frames its ports' rx_burst returned */
    uint64_t tx_packets;   /* frames it gave its ports' tx_burst (own or handed over) */
};
/* Totals since the workers started. Returns the number of workers, filling
 * up to max. */
unsigned vsw_dp_worker_stats(const struct vsw_dp *dp, struct vsw_worker_stats *out, unsigned max);

/*
 * A baseline, as ovs-appctl dpif-netdev/pmd-stats-clear: the control
 * thread snapshots every worker's counters and every attached port's packet
 * counts; nothing the workers write is reset. The *_since_clear readers
 * subtract it (a port attached after the clear counts from its creation).
 */
void vsw_dp_stats_clear(struct vsw_dp *dp);
unsigned vsw_dp_worker_stats_since_clear(const struct vsw_dp *dp, struct vsw_worker_stats *out,
                                         unsigned max);
struct vsw_worker_port {
    const struct vsw_port *port;
    uint64_t rx_packets; /* the port's rx_packets / tx_packets (vsw_port_stats) */
    uint64_t tx_packets; /* since the last vsw_dp_stats_clear() */
    uint64_t cycles;     /* busy TSC cycles charged to it, all time (vsw-placement.h) */
    double load_pct;     /* its share of the worker's time at the last load sample */
    uint64_t moves;      /* times it moved between workers */
    int pin_lcore;       /* VSW_PIN_AUTO (-1) or the lcore it is pinned to */
    bool pin_missing;    /* pinned to an lcore no worker runs on: placed by load */
};
/* The ports worker (an index below vsw_dp_workers()) polls, in polling
 * order. Returns how many there are, filling up to max (out may be NULL
 * when max is 0); 0 for a worker index out of range. */
unsigned vsw_dp_worker_ports(const struct vsw_dp *dp, unsigned worker, struct vsw_worker_port *out,
                             unsigned max);
/* a -= b, counter by counter (lcore and ports kept from a): the figures
 * between two snapshots. */
void vsw_worker_stats_sub(struct vsw_worker_stats *a, const struct vsw_worker_stats *b);
/* Busy cycles per received frame (OVS's "avg processing cycles per
 * packet"); 0 when nothing was received. */
double vsw_worker_cycles_per_packet(const struct vsw_worker_stats *s);
/* Busy cycles as a percentage of all (busy + idle + sleep); 0 if none. */
double vsw_worker_busy_pct(const struct vsw_worker_stats *s);

/* Once a second or so: FDB aging, learning backlog. */
void vsw_dp_tick(struct vsw_dp *dp);
/* Readable when learning events wait for vsw_dp_process(). */
int vsw_dp_event_fd(const struct vsw_dp *dp);
void vsw_dp_process(struct vsw_dp *dp);

struct vsw_switch_params {
    const char *name;
    enum vsw_switch_kind kind;
    uint32_t mtu;          /* L3 MTU of the switch, jumbo_mtu_valid() (68..9000) */
    uint32_t fdb_max;      /* entries; default 8192 */
    uint32_t fdb_aging_s;  /* default 300 */
};

int vsw_switch_create(struct vsw_dp *dp, const struct vsw_switch_params *params,
                      struct vsw_switch **out);
/* -EBUSY while ports are attached. */
int vsw_switch_destroy(struct vsw_switch *sw);
const char *vsw_switch_name(const struct vsw_switch *sw);
struct vsw_switch *vsw_switch_find(const struct vsw_dp *dp, const char *name);

/* Put a port into a switch: from now on a worker polls it and the switch
 * forwards to it. */
int vsw_port_attach(struct vsw_switch *sw, struct vsw_port *port);
/* Take it out; returns once no worker can touch it any more. Its learned
 * addresses are flushed. */
void vsw_port_detach(struct vsw_port *port);
/* Free a detached port (its class's destroy). NULL is fine. */
void vsw_port_destroy(struct vsw_port *port);

const char *vsw_port_name(const struct vsw_port *port);
struct vsw_switch *vsw_port_switch(const struct vsw_port *port);
void vsw_port_get_stats(const struct vsw_port *port, struct vsw_port_stats *out);
/* Largest frame (L2, no FCS, 802.1Q tag not counted) the port accepts
 * from the switch, and the largest the switch accepts from the port: both
 * (its MTU's frame), or the second alone where a device receives more than
 * it can send. Longer frames are dropped and counted too_big on the port. */
void vsw_port_set_max_frame(struct vsw_port *port, uint32_t frame_len);
void vsw_port_set_rx_max_frame(struct vsw_port *port, uint32_t frame_len);

/*
 * Port policy: VLAN mode, guards and limits. Replaced whole (RCU) and
 * applied by the switch from the next burst on. The defaults (all zero)
 * are an untagged port without guards or limits.
 *
 * VLANs: frames inside the switch carry their VLAN as metadata. An access
 * port (access_vlan != 0) takes untagged frames into that VLAN and delivers
 * that VLAN untagged; a trunk port takes tagged frames of the allowed VLANs
 * and untagged ones into native_vlan (0: the untagged network, VLAN 0),
 * and delivers them tagged (native untagged); an untagged port (neither) is VLAN 0 only; tagged
 * frames where no tag may be are dropped (VSW_DROP_VLAN). A frame's VLAN
 * comes from all its tags (vsw-frame.h): priority tags (VLAN 0) are
 * skipped, one 802.1Q VLAN tag at most is carried, any other tag stack is
 * dropped (VSW_DROP_VLAN); every tag is stripped at ingress, so guards,
 * limits and receivers see the frame untagged. Flooding and learning are
 * per VLAN; no frame crosses VLANs.
 */
#define VSW_VLAN_MAX 4094
struct vsw_port_policy {
    uint16_t access_vlan;          /* 1..4094, or 0 */
    bool trunk;
    uint16_t native_vlan;          /* trunk: VLAN of untagged frames; 0 = the
                                    * untagged network (NICs without a VLAN) */
    uint64_t allowed[64];          /* trunk: bitmap of VLANs 1..4094 */
    bool spoof_guard;              /* only own_mac may be a source */
    uint8_t own_mac[6];
    bool dhcp_guard;               /* drop DHCP/DHCPv6 server messages from the port */
    bool router_guard;             /* drop RAs and redirects from the port */
    uint32_t max_mbps;             /* ingress (from the port) limit, 0 = none */
    uint32_t storm_pps;            /* ingress broadcast+multicast limit, 0 = none */
};

static inline void vsw_policy_allow(struct vsw_port_policy *p, uint16_t vlan)
{
    p->allowed[vlan / 64] |= 1ull << (vlan % 64);
}

static inline bool vsw_policy_allowed(const struct vsw_port_policy *p, uint16_t vlan)
{
    return p->allowed[vlan / 64] & (1ull << (vlan % 64));
}

/* Apply a new policy (copied). -EINVAL if inconsistent (access and trunk,
 * VLAN ids out of range). Takes effect at once; returns after workers
 * stopped using the old one. */
int vsw_port_set_policy(struct vsw_port *port, const struct vsw_port_policy *pol);
void vsw_port_get_policy(const struct vsw_port *port, struct vsw_port_policy *out);

/* Ports of a switch, in attach order. Returns how many there are. */
unsigned vsw_switch_ports(const struct vsw_switch *sw, struct vsw_port **out, unsigned max);

struct vsw_fdb_entry {
    uint8_t mac[6];
    uint16_t vlan;
    const struct vsw_port *port;
    uint32_t age_s;
    bool is_static;
};
/* Calls cb for each learned or static entry. */
void vsw_fdb_dump(struct vsw_switch *sw, void (*cb)(void *ctx, const struct vsw_fdb_entry *e),
                  void *ctx);
/* Drop every learned entry (static ones stay). */
void vsw_fdb_flush(struct vsw_switch *sw);
/* Static entries: never aged, never moved by learning. -ENOSPC table full,
 * -EINVAL bad MAC or VLAN, -ENODEV port not on this switch. */
int vsw_fdb_add_static(struct vsw_switch *sw, const uint8_t mac[6], uint16_t vlan,
                       struct vsw_port *port);
int vsw_fdb_del(struct vsw_switch *sw, const uint8_t mac[6], uint16_t vlan);
unsigned vsw_fdb_count(const struct vsw_switch *sw);
/* Aging time (seconds, >= 10) applies at once; a new size (>= 16) rebuilds
 * the table empty, keeping static entries. */
int vsw_switch_set_fdb(struct vsw_switch *sw, uint32_t fdb_max, uint32_t aging_s);
uint64_t vsw_switch_fdb_full(const struct vsw_switch *sw);

/*
 * Port mirroring: copies of every frame received from or sent to a source
 * port also go to the destination port. One mirror per switch.
 */
int vsw_mirror_set(struct vsw_switch *sw, struct vsw_port *const *srcs, unsigned nsrc,
                   struct vsw_port *dst);
void vsw_mirror_clear(struct vsw_switch *sw);

/*
 * Capture: copies of frames received from and sent to a port go to a ring
 * the control thread drains (as seen on that port: VLAN tags of trunk ports
 * included). Frames that do not fit the ring are counted, not queued.
 */
struct vsw_capture;
int vsw_capture_start(struct vsw_port *port, unsigned ring_size, struct vsw_capture **out);
/* Up to n captured frames (caller frees the mbufs); their timestamps in
 * ns since the epoch (wall clock, as pcap wants). */
unsigned vsw_capture_read(struct vsw_capture *cap, struct rte_mbuf **pkts, uint64_t *ts_ns,
                          unsigned n);
uint64_t vsw_capture_dropped(const struct vsw_capture *cap);
/* The port was destroyed: nothing more will come; read the rest and stop. */
bool vsw_capture_port_gone(const struct vsw_capture *cap);
/* Stop and free (also after the port is gone). */
void vsw_capture_stop(struct vsw_capture *cap);

#endif
