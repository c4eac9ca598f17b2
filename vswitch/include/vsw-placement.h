/*
 * Port placement on worker lcores, and dynamic VMQ: which worker polls
 * each port, chosen by measured load, pinned by the operator, or moved by
 * the rebalancer as load changes.
 *
 * Load is measured, as OVS's pmd threads measure their rx queues: a worker
 * reads the TSC after each port of a round that did work and charges the
 * cycles since the previous mark to that port (the end of the round, the
 * batches it sends, goes to the last port that worked). The control thread
 * samples every worker's busy share and every port's cycles
 * (vsw_dp_load_sample(), every VSW_LOAD_SAMPLE_MS); a port's load is its
 * share of its worker's busy cycles in the last interval, as a percentage
 * of the worker's whole time.
 *
 * Placement is per data plane, not per switch: the workers are shared by
 * every switch, and a worker's load is the sum over all the ports it polls,
 * whatever switch they are in.
 *
 * Threads: control thread only.
 */
#ifndef VSW_PLACEMENT_H
#define VSW_PLACEMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "vsw.h"

#define VSW_LOAD_SAMPLE_MS 500
#define VSW_PIN_AUTO (-1)

/* Pin the port to the worker on lcore (a worker lcore, not the main one),
 * or VSW_PIN_AUTO: placed by load and moved by the rebalancer. An attached
 * port moves at once (vsw_port_move()). -ENOENT: no worker runs on lcore
 * (the pin is not taken); -EBUSY: the port has VMQ off (it follows its
 * switch's default queue, vsw_port_set_vmq()). A detached port keeps the
 * pin for its attach. */
int vsw_port_set_pin(struct vsw_port *port, int lcore);
/* The pin as set (an lcore, or VSW_PIN_AUTO). */
int vsw_port_pin(const struct vsw_port *port);
/* The port is pinned to an lcore no worker runs on (the pin came from a
 * state file written with other lcores): it was placed automatically, and
 * the pin is kept, reported here, until it is changed. */
bool vsw_port_pin_missing(const struct vsw_port *port);
/*
 * VMQ, with Hyper-V's semantics mapped onto the workers. weight 1..100:
 * the port has a queue of its own (placed by load, or pinned), and under
 * dynamic VMQ a higher weight gets a worker of its own first (see
 * vsw_rb_decide()). weight 0: VMQ off, the port shares its switch's
 * default queue: it is polled by the worker of the switch's default-queue
 * port (vsw_switch_default_port()), follows that port when it moves (pin,
 * dynamic VMQ), and is never moved by the rebalancer on its own. A switch
 * without a default-queue port (private) has its VMQ-off ports on the
 * first worker (index 0), as one shared queue. An attached port moves at
 * once: off → to the default queue's worker; on again → by load.
 * -EINVAL: weight above 100, or not a port of a VM NIC (an uplink or host
 * vNIC is itself the default queue); -EBUSY: turning VMQ off on a pinned
 * port (a pin and a shared queue contradict each other: unpin first);
 * -errno of a move (the setting is then unchanged).
 */
#define VSW_VMQ_WEIGHT_DEFAULT 100
#define VSW_VMQ_WEIGHT_MAX 100
int vsw_port_set_vmq(struct vsw_port *port, unsigned weight);
/* 0 (VMQ off) or 1..100. */
unsigned vsw_port_vmq_weight(const struct vsw_port *port);
/* The attached port that serves sw's default queue: its uplink, else its
 * host vNIC; NULL (a private switch) if neither. */
struct vsw_port *vsw_switch_default_port(const struct vsw_switch *sw);

/* The lcore of the worker that polls the attached port. */
unsigned vsw_port_worker_lcore(const struct vsw_port *port);

/*
 * Move an attached port to worker `worker` (an index below
 * vsw_dp_workers()), under traffic, losing and reordering nothing:
 *  1. Nobody sends to the port directly any more (its direct sender is
 *     cleared): every worker's frames for it go into its hand-off ring,
 *     in order. The old owner's set no longer lists it. After a grace
 *     period the old owner has finished the last round that polled it:
 *     its receive work, its staged batches and the port's tx_flush.
 *  2. The new owner's set lists it, and the port names it as the one to
 *     take it over (take_by). In its first round with the port,
 *     before anything else touches it, the new owner makes itself the
 *     direct sender and sends on everything the hand-off ring held at
 *     that moment (frames other workers, or it, handed over earlier):
 *     only then do its own frames go to tx_burst directly.
 * Frames of other workers go through the ring throughout, as always.
 * 0, -EINVAL (not attached, bad worker), -ENOMEM. Counted in the port's
 * moves.
 */
int vsw_port_move(struct vsw_port *port, unsigned worker);

/* The rebalancer's thresholds, in percent of a worker's time and in
 * samples (VSW_LOAD_SAMPLE_MS each). */
struct vsw_rb_params {
    double high_pct;        /* a worker this busy ... */
    unsigned high_samples;  /* ... for this many samples in a row is overloaded */
    double low_pct;         /* every worker below this ... */
    unsigned low_samples;   /* ... for this many samples: pack */
    double pack_ceil_pct;   /* packing never loads a worker beyond this */
    double margin_pct;      /* a spread move must lower the busier worker by this */
    unsigned port_gap;      /* samples between two moves of one port */
    unsigned move_gap;      /* samples between any two moves */
};
/* 80 % for 2 samples (1 s), all below 30 % for 6 (3 s), pack up to 50 %,
 * margin 10 points, 20 samples (10 s) per port, 2 (1 s) between moves. */
extern const struct vsw_rb_params vsw_rb_defaults;
/* The defaults scaled to another overload threshold (as OVS's
 * pmd-auto-lb-load-threshold): the low mark, the packing ceiling and the
 * margin keep their proportions to it (3/8, 5/8, 1/8), so that packing
 * never loads a worker up to where spreading would start. */
struct vsw_rb_params vsw_rb_params_for(double high_pct);

struct vsw_rb_worker {
    double busy_pct; /* in the last interval */
};
struct vsw_rb_port {
    unsigned worker;
    double load_pct; /* of its worker's time, last interval */
    bool movable;    /* not pinned, VMQ on */
    uint64_t last_move; /* sample number of its last move; 0: never */
    unsigned weight; /* VMQ weight: priority for a worker of its own */
    /* In and out, kept by the caller between samples (as last_move):
     * the smoothed load vsw_rb_decide() decides on; negative for a port
     * it has not seen yet. */
    double avg_pct;
};
/* What the rebalancer remembers between samples. Zero it to start. */
struct vsw_rb_state {
    uint64_t sample; /* samples seen; the first is 1 */
    bool smoothed;   /* avg holds the workers' smoothed loads */
    double avg[VSW_MAX_WORKERS];
    unsigned high_run[VSW_MAX_WORKERS];
    unsigned low_run;
    uint64_t last_move;
    unsigned flaps; /* moves each within VSW_RB_QUIET of the one before */
};
/* Samples without a move after which the gap between moves is move_gap
 * again (5 min), and the most it doubles (64 times: about a minute). */
#define VSW_RB_QUIET 600u
#define VSW_RB_MAX_FLAPS 6u
enum vsw_rb_reason {
    VSW_RB_NONE,
    VSW_RB_SPREAD, /* off a worker that stayed overloaded */
    VSW_RB_PACK,   /* onto fewer workers: load is low */
};
const char *vsw_rb_reason_name(enum vsw_rb_reason r);
struct vsw_rb_move {
    unsigned port; /* index into the ports given */
    unsigned from, to;
    double from_before, to_before; /* the workers' busy % */
    double from_after, to_after;   /* estimated after the move */
};

/*
 * One sample's decision: at most one move. A pure function of its inputs
 * and *st and the ports' avg_pct (which it updates), so that it can be
 * tested on synthetic load series. It decides on smoothed loads (each
 * sample weighs half, the past half): measured over half a second, a
 * port's share of its worker swings by tens of points from one sample to
 * the next, and on the raw figures workers near the threshold traded
 * ports for ever. Spread: a worker at or above high_pct for high_samples
 * samples gives a movable port whose move lowers the pair's maximum by
 * margin_pct to the least busy worker (a port that would only carry the
 * overload across is not moved): of those, the highest VMQ weight, then
 * the heaviest. Pack: when every worker stayed below low_pct for
 * low_samples, the least busy worker that polls a movable port gives one,
 * the lowest weight, then the lightest, to the busiest other worker with
 * ports that stays below pack_ceil_pct with it. Neither moves a port moved
 * within port_gap samples, nor moves anything within move_gap of the last
 * move; that gap doubles with each move that follows the one before within
 * VSW_RB_QUIET samples (up to VSW_RB_MAX_FLAPS times), so that loads
 * hovering where every move looks worth it (noise beyond what smoothing
 * takes out) get at most a move a minute, as OVS's pmd-auto-lb at best.
 * The move's figures (out) are the smoothed ones.
 */
enum vsw_rb_reason vsw_rb_decide(const struct vsw_rb_params *prm, struct vsw_rb_state *st,
                                 const struct vsw_rb_worker *w, unsigned nw,
                                 struct vsw_rb_port *p, unsigned np, struct vsw_rb_move *out);

/* Dynamic VMQ for the whole data plane (default off). */
void vsw_dp_set_dynamic(struct vsw_dp *dp, bool on);
/* Its overload threshold, 1..100 % (default 80; vsw_rb_params_for()).
 * -EINVAL out of range. */
int vsw_dp_set_load_threshold(struct vsw_dp *dp, unsigned pct);
bool vsw_dp_dynamic(const struct vsw_dp *dp);

/* A move the rebalancer made, for the caller's log. */
struct vsw_move_report {
    char port[VSW_NAME_MAX];
    unsigned from_lcore, to_lcore;
    enum vsw_rb_reason reason;
    struct vsw_rb_move est;
};
/*
 * Every VSW_LOAD_SAMPLE_MS: take a load sample (workers' busy share,
 * ports' load); with dynamic VMQ on, decide and make at most one move.
 * Returns 1 and fills *out if a port moved, 0 if not, -errno if a move
 * failed (nothing changed).
 */
int vsw_dp_load_sample(struct vsw_dp *dp, struct vsw_move_report *out);

struct vsw_placement_stats {
    bool dynamic;
    unsigned load_threshold; /* % */
    uint64_t samples;
    uint64_t moves;        /* all moves, any reason */
    uint64_t spread_moves; /* by the rebalancer, off an overloaded worker */
    uint64_t pack_moves;   /* by the rebalancer, packing */
    uint64_t pin_moves;    /* made by a pin */
    uint64_t move_failures;
};
void vsw_dp_placement_stats(const struct vsw_dp *dp, struct vsw_placement_stats *out);

#endif
