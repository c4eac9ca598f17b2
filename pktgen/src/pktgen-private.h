/* vswitch-pktgen the program: options, the run loops, the report. */
#ifndef PKTGEN_PRIVATE_H
#define PKTGEN_PRIVATE_H

#include <signal.h>
#include <stdint.h>

#include "pktgen.h"

struct rte_mempool;

enum pg_role { PG_GEN, PG_SINK, PG_REFLECT, PG_AGENT };

#define PG_BURST 32u
#define PG_MAX_PORTS 2

struct pg_opts {
    enum pg_role role;
    bool rx;               /* gen: receive and time what comes back */
    bool imix;
    uint16_t frame_len;    /* when !imix */
    struct pktgen_flow flow;
    struct pktgen_rate rate; /* resolved: unlimited, pps or bit/s */
    double duration_s;     /* 0: none */
    uint64_t count;        /* 0: none */
    uint16_t stream;
    double drain_s;        /* gen --rx: how long to wait for the last frames */
    const char *json_path;
    const char *csv_path;
    bool quiet;
    /* Receive sides count and time only frames of `stream` (others are
     * counted in other_stream): a late frame of an earlier trial, which
     * had another stream id, does not count in this one. */
    bool stream_only;
    /* Control frames seen by a receiving role (sink, reflect, gen --rx):
     * ctl(ctl_arg, frame) is called for each UDP/IPv4 frame to or from the
     * control port; it returns true to end the run. NULL: such frames are
     * counted as not ours (reflect: sent back like any other). */
    bool (*ctl)(void *ctl_arg, const struct rte_mbuf *m);
    void *ctl_arg;
};

/* A port as the run loops see it: bursts of mbufs in and out, whatever
 * carries them (an ethdev queue, or a backend of this program's own). The
 * run loops call only these; tx takes over the mbufs it accepts (the first
 * returned), the caller keeps the rest. */
struct pg_port {
    uint16_t (*rx)(struct pg_port *p, struct rte_mbuf **pkts, uint16_t n);
    uint16_t (*tx)(struct pg_port *p, struct rte_mbuf **pkts, uint16_t n);
    uint16_t id;  /* the ethdev port id, for an ethdev port */
    uint16_t nq;  /* ethdev: receive queues polled (sending is on queue 0) */
    bool yield;   /* sched_yield() after a receive that found nothing */
    void *ctx;    /* the backend's */
};

static inline uint16_t pg_port_rx(struct pg_port *p, struct rte_mbuf **pkts, uint16_t n)
{
    return p->rx(p, pkts, n);
}

static inline uint16_t pg_port_tx(struct pg_port *p, struct rte_mbuf **pkts, uint16_t n)
{
    return p->tx(p, pkts, n);
}

/* A MAC address as the 48-bit number pktgen's ranges hold, and back. */
static inline uint64_t pg_mac_to_u64(const uint8_t mac[6])
{
    uint64_t v = 0;
    for (int i = 0; i < 6; i++)
        v = v << 8 | mac[i];
    return v;
}

static inline void pg_mac_from_u64(uint64_t v, uint8_t mac[6])
{
    for (int i = 5; i >= 0; i--, v >>= 8)
        mac[i] = (uint8_t)v;
}

/* A range of the one value v. */
static inline void pg_range_single(struct pktgen_range *r, uint64_t v)
{
    *r = (struct pktgen_range){.lo = v, .hi = v, .cur = v};
}

/* Ethdev port `id`: sends on queue 0, receives from queues 0..nq-1 (a
 * peer may send on any queue it has: OVS's PMD thread sends on memif
 * queue 1). */
void pg_port_ethdev(struct pg_port *p, uint16_t id, uint16_t nq);

/* Port 0 is where the role sends (and receives, unless there is a port 1,
 * where a gen's receive side then is). */
struct pg_ports {
    struct pg_port port[PG_MAX_PORTS];
    int n;
    struct rte_mempool *tx_pool;
};

/* What a run measured. */
struct pg_result {
    double seconds;          /* from the first send (or receive) to the end */
    uint64_t tx_frames, tx_bytes, tx_refused;
    double stalled_s;        /* gen: loop stalls beyond 1 ms while sending (s) */
    uint64_t rx_frames, rx_bytes; /* ours: stamp valid */
    uint64_t rx_other[PKTGEN_PARSE_N_RESULTS]; /* not ours, by reason */
    uint64_t rx_total;       /* every frame received, ours or not */
    uint64_t lost, reordered, duplicates, late, bad_seq, bad_time;
    uint64_t stream_rx;      /* distinct frames of the options' stream */
    uint64_t other_stream;   /* stream_only: stamped frames of other streams */
    uint64_t ctl_frames;     /* control frames handed to ctl */
    bool ctl_ended;          /* ctl ended the run */
    struct pktgen_hist lat;  /* ns */
};

/* Runs the role until its count, duration or a signal; fills *res. */
int pg_run(const struct pg_opts *o, struct pg_ports *ports, struct pg_result *res);

/* The per-second line (stderr). */
void pg_progress(const struct pg_opts *o, const struct pg_result *r, double elapsed,
                 double dt, uint64_t dtx, uint64_t drx);
/* The summary to stdout, then --json and --csv files; 0 or -errno. */
int pg_report(const struct pg_opts *o, const struct pg_result *r);

/* In-band control on the ports (agent.c): control frames to and from
 * `mac`, sent from `pool`, received on every port. */
struct pktgen_ctl_msg;
struct pg_ctl_io {
    struct pg_ports *ports;
    uint8_t mac[6];
    uint64_t bad;      /* control frames refused by the parser */
    uint64_t ignored;  /* valid, but for another station or stale */
};

/* Sends one control message to dst; 0 or -EAGAIN (no mbuf, port full). */
int pg_ctl_send(struct pg_ctl_io *io, const uint8_t dst[6], const struct pktgen_ctl_msg *m);
/* Polls the ports for up to timeout_s for a valid control message to
 * io->mac: 1 with *m and src filled, 0 on timeout or signal. Every other
 * frame is dropped (between trials: late data frames). */
int pg_ctl_recv(struct pg_ctl_io *io, double timeout_s, struct pktgen_ctl_msg *m, uint8_t src[6]);

/* --role agent: waits for a controller's commands on the ports and runs
 * the trials they ask for, until a signal. 0 or -errno. */
int pg_agent(const struct pg_opts *o, struct pg_ports *ports);

/* --search: the controller side. */
struct pg_search_opts {
    bool on;
    bool have_sink, have_gen, have_reflect;
    uint8_t remote_sink[6], remote_gen[6], remote_reflect[6];
    unsigned n_sizes;
    uint16_t sizes[16];    /* 0: IMIX */
    double trial_s;
    double resolution_pct, resolution_pps;
    double pdr_loss_pct;
    unsigned b2b_trials;
    bool no_loss_steps;
    const char *hook_cmd;
};

/* Runs the search per size on the ports and writes o->json_path; 0 or
 * -errno (an agent did not answer, a trial received nothing). */
int pg_search(const struct pg_opts *o, const struct pg_search_opts *so, struct pg_ports *ports);

/* Set by SIGINT/SIGTERM. */
extern volatile sig_atomic_t pg_stop;

#endif
