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
    VSW_DROP_TOO_BIG,      /* longer than the egress port's frame limit */
    VSW_DROP_NO_MBUF,      /* mbuf pool empty */
    VSW_DROP_QUEUE_FULL,   /* egress port or its hand-off queue full */
    VSW_DROP_LINK_DOWN,    /* egress port not connected */
    VSW_DROP_HAIRPIN,      /* destination is the ingress port */
    VSW_DROP_NO_DEST,      /* flooded, but no other port is up */
    VSW_DROP_PORT_SPECIFIC, /* counted in the port's own statistics */
    VSW_DROP_COUNT
};
const char *vsw_drop_name(enum vsw_drop d);

struct vsw_port_stats {
    uint64_t rx_packets, rx_bytes; /* from the port into the switch */
    uint64_t tx_packets, tx_bytes; /* from the switch out of the port */
    uint64_t drops[VSW_DROP_COUNT];
};

struct vsw_dp_params {
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
struct vsw_worker_stats {
    unsigned lcore;
    unsigned ports;
    uint64_t rounds;      /* polling rounds */
    uint64_t busy_rounds; /* rounds that moved frames */
    uint64_t sleeps;      /* times it went to sleep */
    uint64_t wakeups;     /* sleeps ended by an event rather than the timeout */
};
/* Returns the number of workers, filling up to max. */
unsigned vsw_dp_worker_stats(const struct vsw_dp *dp, struct vsw_worker_stats *out, unsigned max);

/* Once a second or so: FDB aging, learning backlog. */
void vsw_dp_tick(struct vsw_dp *dp);
/* Readable when learning events wait for vsw_dp_process(). */
int vsw_dp_event_fd(const struct vsw_dp *dp);
void vsw_dp_process(struct vsw_dp *dp);

struct vsw_switch_params {
    const char *name;
    enum vsw_switch_kind kind;
    uint32_t mtu;          /* L3 MTU of the switch, 68..9000 */
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
/* Largest frame (L2, no FCS) the port accepts from the switch. */
void vsw_port_set_max_frame(struct vsw_port *port, uint32_t frame_len);

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
void vsw_fdb_flush(struct vsw_switch *sw);

#endif
