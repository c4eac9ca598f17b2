/* vswitch-pktgen the program: options, the run loops, the report. */
#ifndef PKTGEN_PRIVATE_H
#define PKTGEN_PRIVATE_H

#include <signal.h>
#include <stdint.h>

#include "pktgen.h"

struct rte_mempool;

enum pg_role { PG_GEN, PG_SINK, PG_REFLECT };

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
    struct pktgen_hist lat;  /* ns */
};

/* Runs the role until its count, duration or a signal; fills *res. */
int pg_run(const struct pg_opts *o, struct pg_ports *ports, struct pg_result *res);

/* The per-second line (stderr). */
void pg_progress(const struct pg_opts *o, const struct pg_result *r, double elapsed,
                 double dt, uint64_t dtx, uint64_t drx);
/* The summary to stdout, then --json and --csv files; 0 or -errno. */
int pg_report(const struct pg_opts *o, const struct pg_result *r);

/* Set by SIGINT/SIGTERM. */
extern volatile sig_atomic_t pg_stop;

#endif
