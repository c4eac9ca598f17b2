/* vswitch internals. */
#ifndef VSW_PRIVATE_H
#define VSW_PRIVATE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_gso.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_meter.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_mbuf_dyn.h>

#include "vsw-placement.h"
#include "vsw-port-provider.h"
#include "vsw.h"

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

#define VSW_STAGE 64          /* frames staged per egress port per round */
#define VSW_HANDOFF_SIZE 1024 /* per port, from other workers */
#define VSW_LEARN_RING 4096
#define VSW_LEARN_CACHE 256
#define VSW_MAX_SWITCHES 256

/* Published to workers with RCU: replaced, never modified in place. */
struct vsw_port_set {
    unsigned n;
    bool has_unsleepable; /* some port has no wait fd */
    struct vsw_port *ports[];
};

struct vsw_stage {
    uint16_t n;
    bool listed; /* in the worker's touched list this round */
    struct vsw_port *port; /* valid until the end of the round (RCU) */
    struct rte_mbuf *pkts[VSW_STAGE];
};

/* A learning request from a worker to the control thread. */
struct vsw_learn_ev {
    uint16_t sw_id;
    uint16_t port_index;
    uint16_t port_gen;
    uint16_t vlan;
    uint8_t mac[6];
    uint8_t pad[2];
};
_Static_assert(sizeof(struct vsw_learn_ev) == 16, "learn event is 16 bytes");

struct vsw_worker {
    struct vsw_dp *dp;
    unsigned idx;
    unsigned lcore;
    struct vsw_port_set *ports; /* RCU */
    int epfd;
    int wake_fd;
    bool sleeping; /* atomic */
    bool stop;     /* atomic */
    unsigned nports_ctl; /* control thread's count, for placement */
    /* worker-private */
    uint16_t ntouched;
    uint16_t touched[VSW_MAX_PORTS];
    unsigned sent_early; /* frames sent by stages flushed when full, this round */
    struct vsw_stage *stage; /* VSW_MAX_PORTS entries */
    struct rte_gso_ctx gso;  /* cutting large TCP segments (egress.c) */
    uint64_t round_tsc;      /* TSC at the start of this round: the round's "now" */
    uint64_t learn_cache[VSW_LEARN_CACHE];
    uint32_t learn_cache_ts[VSW_LEARN_CACHE];
    uint16_t learn_cache_seen[VSW_LEARN_CACHE]; /* FDB's port index when asked */
    /* Written by the worker alone (relaxed stores, vsw_worker_count()),
     * read by the control thread. */
    uint64_t rounds, busy_rounds, sleeps, wakeups;
    uint64_t busy_cycles, idle_cycles, sleep_cycles;
    uint64_t rx_packets, tx_packets;
    /* control thread: the counters at the last vsw_dp_stats_clear() */
    struct vsw_worker_stats clear_base;
    /* control thread: busy and all cycles at the last load sample, and
     * the busy share of the interval before it (placement.c) */
    uint64_t sample_busy, sample_all;
    double busy_pct_last;
} __rte_cache_aligned;

/* The worker adds to one of its own counters. A relaxed store, not an
 * atomic add: nobody else writes it, and readers only need whole values. */
static inline void vsw_worker_count(uint64_t *counter, uint64_t n)
{
    __atomic_store_n(counter, *counter + n, __ATOMIC_RELAXED);
}

/* A port's policy with the state the owning worker keeps for it (meter,
 * storm window): replaced whole on change, so the state restarts. Only the
 * owning worker writes the state. */
struct vsw_policy_full {
    struct vsw_policy_rt rt;
    bool metered;
    struct rte_meter_srtcm_profile prof;
    struct rte_meter_srtcm meter;
    uint64_t storm_start;  /* TSC of the current one-second window */
    uint32_t storm_count;
};

struct vsw_mirror {
    struct vsw_port *dst;
    unsigned nsrc;
    struct vsw_port *src[];
};

struct vsw_capture {
    struct vsw_port *port; /* NULL once the port is destroyed */
    struct vsw_dp *dp;
    struct rte_ring *ring;
    struct rte_mempool *pool;
    uint64_t dropped; /* atomic */
    /* Workers stamp copies with the TSC; the reader turns that into wall
     * time from this pair, taken at start. */
    uint64_t base_tsc;
    uint64_t base_ns;
};

struct fdb_slot {
    uint16_t port_index; /* atomic */
    uint16_t port_gen;
    uint8_t is_static;
    uint8_t pad[3];
    uint32_t last_seen; /* seconds, atomic */
};

struct fdb_key {
    uint8_t mac[6];
    uint16_t vlan;
};
_Static_assert(sizeof(struct fdb_key) == 8, "fdb key is 8 bytes");
_Static_assert(offsetof(struct fdb_key, vlan) == 6, "the VLAN in a key's last 2 bytes");

static inline bool vsw_fdb_key_eq(const struct fdb_key *a, const struct fdb_key *b)
{
    uint64_t x, y;
    memcpy(&x, a, sizeof(x));
    memcpy(&y, b, sizeof(y));
    return x == y;
}

/* The FDB's hash of a key: CRC32-C of its 8 bytes, the value rte_hash_crc()
 * gives for them, inline. The table is created with it as its hash
 * function, so the workers' precomputed hashes are the table's own. */
static inline uint32_t vsw_fdb_hash(const struct fdb_key *k)
{
    uint64_t v;
    memcpy(&v, k, sizeof(v));
    return rte_hash_crc_8byte(v, 0);
}

/* Frames a worker switches together: admitted, then looked up in the FDB
 * in one bulk lookup of sources and one of destinations. */
#define VSW_FWD_CHUNK 32
_Static_assert(VSW_FWD_CHUNK <= RTE_HASH_LOOKUP_BULK_MAX, "one bulk lookup per chunk");

/* The FDB of a switch: published whole (RCU), so it can be resized. */
struct vsw_fdb_tab {
    struct rte_hash *h;
    struct fdb_slot *slots;
    uint32_t nslots;
    uint32_t max;
    unsigned gen; /* for unique rte_hash names */
};

struct vsw_switch {
    struct vsw_dp *dp;
    uint16_t id;
    char name[VSW_NAME_MAX];
    enum vsw_switch_kind kind;
    uint32_t mtu;
    struct vsw_port_set *ports; /* RCU: the flood set */
    struct vsw_fdb_tab *fdb;    /* RCU */
    uint32_t fdb_count;
    uint32_t aging_s;
    unsigned fdb_gen;
    uint64_t fdb_full; /* learning refused: table full */
    uint64_t fdb_moves;
    struct vsw_mirror *mirror; /* control thread's copy */
};

struct vsw_dp {
    struct rte_mempool *pool;
    bool own_pool; /* made here (else the caller's) */
    struct rte_rcu_qsbr *qsbr;
    unsigned nworkers;
    struct vsw_worker *workers;
    struct vsw_port *ports[VSW_MAX_PORTS]; /* RCU-published by index */
    uint16_t port_gen[VSW_MAX_PORTS];
    struct vsw_switch *switches[VSW_MAX_SWITCHES];
    struct rte_ring *learn_ring;
    int learn_fd;
    bool learn_signalled; /* atomic: learn_fd written, not yet drained */
    unsigned idle_sleep_us;
    uint64_t tsc_hz;
    int ts_offset; /* mbuf dynfield holding capture timestamps (ns) */
    /* control thread: placement and dynamic VMQ (placement.c) */
    struct vsw_rb_state rb;
    struct vsw_rb_params rb_params;
    struct vsw_placement_stats pstats;
};

/* Seconds since boot from the TSC; cheap on the data path. */
static inline uint32_t vsw_now_s(const struct vsw_dp *dp)
{
    return (uint32_t)(rte_get_tsc_cycles() / dp->tsc_hz);
}

/* fdb.c */
int vsw_fdb_init(struct vsw_switch *sw, uint32_t max);
void vsw_fdb_fini(struct vsw_switch *sw);
void vsw_fdb_learn(struct vsw_switch *sw, const struct vsw_learn_ev *ev, uint32_t now);
void vsw_fdb_age(struct vsw_switch *sw, uint32_t now);
void vsw_fdb_flush_port(struct vsw_switch *sw, uint16_t port_index);

/* forward.c: one received burst from `in` (owned by worker w). */
void vsw_forward(struct vsw_worker *w, struct vsw_port *in, struct rte_mbuf **pkts, uint16_t n);
/* Send everything staged this round. Returns the frames given to the
 * tx_burst of ports w owns (the rest went to other workers' hand-off
 * rings, and their owners count them). */
unsigned vsw_flush_stages(struct vsw_worker *w);
/* Queue m for out in this round's batch (sending the batch first if it is
 * full). */
void vsw_stage_one(struct vsw_worker *w, struct vsw_port *out, struct rte_mbuf *m);

/* egress.c */
/* A copy of m for one consumer (capture, mirror, a port that needs its
 * own), with tag put back into the frame if non-zero. NULL if out of mbufs. */
struct rte_mbuf *vsw_wire_copy(struct rte_mempool *pool, struct rte_mbuf *m, uint16_t tag);
/* Make m (one reference of it) fit out and stage what it becomes
 * (vsw_stage_one); tag: the port's tag to put into the frame, or 0. */
void vsw_deliver(struct vsw_worker *w, struct vsw_port *out, struct rte_mbuf *m, uint16_t tag);
/* The longest frame m puts on a wire: itself, or if it is a large TCP
 * segment (vsw_frame_tso_request) the longest segment it becomes. */
static inline uint32_t vsw_egress_len(const struct rte_mbuf *m)
{
    if (likely(!(m->ol_flags & RTE_MBUF_F_TX_TCP_SEG)))
        return m->pkt_len;
    uint32_t seg = (uint32_t)m->l2_len + m->l3_len + m->l4_len + m->tso_segsz;
    return RTE_MIN(seg, m->pkt_len);
}

/* Does out take the large TCP segment m whole, with tag (0: none) put
 * into it: its word (offl) has the IP version's VSW_TX_TSO4/_TSO6, and its
 * class's tso_fits, if any, agrees? Otherwise vsw_deliver cuts it. */
bool vsw_tso_whole(const struct vsw_port *out, uint32_t offl, const struct rte_mbuf *m,
                   uint16_t tag);

/* Chain to s indirect mbufs over len bytes at off of m (as DPDK's GSO does
 * for IPv4): the payload is not copied, and m's segments may be direct,
 * indirect or external. 0, or -ENOMEM (s keeps what it got). Data path. */
int vsw_attach_range(struct rte_mempool *pool, struct rte_mbuf *s, struct rte_mbuf *m,
                     uint32_t off, uint32_t len);

/* May m be written in place: every segment its own, none shared? */
static inline bool vsw_mbuf_writable(const struct rte_mbuf *m)
{
    for (const struct rte_mbuf *s = m; s; s = s->next)
        if (!RTE_MBUF_DIRECT(s) || rte_mbuf_refcnt_read(s) != 1)
            return false;
    return true;
}

/* dp.c */
struct vsw_port_set *vsw_port_set_with(const struct vsw_port_set *old, struct vsw_port *add,
                                       const struct vsw_port *remove);
/* Wake worker w if it sleeps. Any thread. */
void vsw_worker_wake(struct vsw_worker *w);
/* Add port's wait fd to worker w's sleep set / take it out. Control thread. */
void vsw_worker_watch_port(struct vsw_worker *w, struct vsw_port *port);
void vsw_worker_unwatch_port(struct vsw_worker *w, struct vsw_port *port);

/* placement.c */
/* The worker a port being attached goes to: its pin, else the least busy
 * (last load sample, in 10-point steps), ties by fewest ports. */
unsigned vsw_place_pick(struct vsw_switch *sw, struct vsw_port *port);
/* If port (just attached or moved) serves its switch's default queue,
 * move the switch's VMQ-off ports to its worker. */
void vsw_place_followers(struct vsw_port *port);
/* The second half of a move, on worker w, which polls p for the first time
 * in a round over set and is the one to take it over (p->take_by): data
 * path. Returns frames sent. */
unsigned vsw_port_take_over(struct vsw_worker *w, const struct vsw_port_set *set,
                            struct vsw_port *p);

#endif
