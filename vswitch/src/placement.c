/*
 * Placement of ports on workers: the pick for a new port, pins, moves
 * under traffic (the hand-over protocol is in vsw-placement.h), load
 * samples and the dynamic-VMQ rebalancer.
 *
 * The rebalancer is split in two: vsw_rb_decide() is a pure function of
 * one sample's loads and its remembered runs, so its rules are tested on
 * synthetic series; vsw_dp_load_sample() measures and carries a decision
 * out.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_atomic.h>
#include <rte_cycles.h>
#include <rte_rcu_qsbr.h>

#include "vsw-host.h"
#include "vsw-private.h"
#include "vsw-uplink.h"

const struct vsw_rb_params vsw_rb_defaults = {
    .high_pct = 80.0,
    .high_samples = 2,
    .low_pct = 30.0,
    .low_samples = 6,
    .pack_ceil_pct = 50.0,
    .margin_pct = 10.0,
    .port_gap = 20,
    .move_gap = 2,
};

const char *vsw_rb_reason_name(enum vsw_rb_reason r)
{
    switch (r) {
    case VSW_RB_NONE:
        return "none";
    case VSW_RB_SPREAD:
        return "spread";
    case VSW_RB_PACK:
        return "pack";
    }
    return "invalid";
}

static int worker_of_lcore(const struct vsw_dp *dp, int lcore)
{
    for (unsigned i = 0; i < dp->nworkers; i++)
        if ((int)dp->workers[i].lcore == lcore)
            return (int)i;
    return -1;
}

/* Load in 10-point steps first: samples of two workers a few points apart
 * are the same load, and ports attached in a burst (before the next sample
 * shows what they cost) should then spread by count, not all land on the
 * worker that was marginally less busy. */
unsigned vsw_place_pick(struct vsw_switch *sw, struct vsw_port *port)
{
    struct vsw_dp *dp = sw->dp;
    port->pin_missing = false;
    if (port->vmq_weight == 0) {
        const struct vsw_port *def = vsw_switch_default_port(sw);
        return def && def != port ? def->worker : 0;
    }
    if (port->pin_lcore != VSW_PIN_AUTO) {
        int wi = worker_of_lcore(dp, port->pin_lcore);
        if (wi >= 0)
            return (unsigned)wi;
        port->pin_missing = true;
    }
    unsigned best = 0;
    for (unsigned i = 1; i < dp->nworkers; i++) {
        unsigned li = (unsigned)(dp->workers[i].busy_pct_last / 10.0);
        unsigned lb = (unsigned)(dp->workers[best].busy_pct_last / 10.0);
        if (li < lb || (li == lb && dp->workers[i].nports_ctl < dp->workers[best].nports_ctl))
            best = i;
    }
    return best;
}

int vsw_port_move(struct vsw_port *port, unsigned to)
{
    struct vsw_switch *sw = port->sw;
    if (!sw || to >= sw->dp->nworkers)
        return -EINVAL;
    struct vsw_dp *dp = sw->dp;
    unsigned from = port->worker;
    if (from == to)
        return 0;
    struct vsw_worker *o = &dp->workers[from], *n = &dp->workers[to];
    struct vsw_port_set *o_set = vsw_port_set_with(o->ports, NULL, port);
    struct vsw_port_set *n_set = vsw_port_set_with(n->ports, port, NULL);
    if (!o_set || !n_set) {
        free(o_set);
        free(n_set);
        dp->pstats.move_failures++;
        return -ENOMEM;
    }
    /* 1. Nobody sends directly; the old owner lets go. The release store
     * of its set orders the cleared sender before it: a round of the old
     * owner that no longer lists the port no longer sends to it directly
     * either, and the grace period waits out the rounds that did. A round
     * of the old owner that still lists the port sees no direct sender but
     * does not take it over: take_by names nobody yet (the previous
     * take-over cleared it). */
    struct vsw_port_set *old = o->ports;
    __atomic_store_n(&port->tx_worker, VSW_WORKER_NONE, __ATOMIC_RELAXED);
    __atomic_store_n(&o->ports, o_set, __ATOMIC_RELEASE);
    vsw_worker_wake(o);
    rte_rcu_qsbr_synchronize(dp->qsbr, RTE_QSBR_THRID_INVALID);
    free(old);
    vsw_worker_unwatch_port(o, port);
    o->nports_ctl--;
    /* 2. The new owner takes it over (vsw_port_take_over()) in its next
     * round. */
    vsw_worker_watch_port(n, port);
    old = n->ports;
    __atomic_store_n(&port->worker, (uint16_t)to, __ATOMIC_RELAXED);
    __atomic_store_n(&port->take_by, (uint16_t)to, __ATOMIC_RELAXED);
    /* Pairs with the fence in flush_stage() (forward.c) before a sender
     * reads the owner: one that still reads the old owner enqueued
     * before this, and the new owner, which sees the port only after
     * this, finds those frames in the ring when it takes the port. */
    rte_atomic_thread_fence(__ATOMIC_SEQ_CST);
    __atomic_store_n(&n->ports, n_set, __ATOMIC_RELEASE);
    n->nports_ctl++;
    /* Wait for the take-over itself, not only for a grace period: a
     * round that listed the port may not have reached it yet (or the new
     * owner may have been asleep, offline to RCU), and a take-over still
     * pending when the port's next move clears its direct sender would
     * set it again behind that move's back. The new owner lists the port
     * and is woken: its next round takes it over. */
    do {
        vsw_worker_wake(n);
        rte_delay_us_sleep(20);
    } while (__atomic_load_n(&port->tx_worker, __ATOMIC_ACQUIRE) != to);
    rte_rcu_qsbr_synchronize(dp->qsbr, RTE_QSBR_THRID_INVALID);
    free(old);
    port->moves++;
    port->last_move_sample = dp->rb.sample;
    dp->pstats.moves++;
    vsw_place_followers(port);
    return 0;
}

/* A private switch has no default queue, hence no port to follow: its
 * VMQ-off ports share the first worker (vsw_place_pick()), a fixed place
 * that, like a default queue, no rebalancing moves. */
struct vsw_port *vsw_switch_default_port(const struct vsw_switch *sw)
{
    const struct vsw_port_set *set = sw->ports;
    struct vsw_port *host = NULL;
    for (unsigned i = 0; set && i < set->n; i++) {
        if (vsw_is_uplink_port(set->ports[i]))
            return set->ports[i];
        if (!host && vsw_is_host_port(set->ports[i]))
            host = set->ports[i];
    }
    return host;
}

/* A follower that fails to move stays where it is, still served (by
 * another worker than the default queue's); the next move or attach of
 * the default-queue port tries again. */
void vsw_place_followers(struct vsw_port *port)
{
    struct vsw_switch *sw = port->sw;
    if (!sw || vsw_switch_default_port(sw) != port)
        return;
    const struct vsw_port_set *set = sw->ports;
    for (unsigned i = 0; set && i < set->n; i++) {
        struct vsw_port *f = set->ports[i];
        if (f != port && f->vmq_weight == 0 && f->worker != port->worker)
            vsw_port_move(f, port->worker);
    }
}

int vsw_port_set_vmq(struct vsw_port *port, unsigned weight)
{
    if (weight > VSW_VMQ_WEIGHT_MAX || vsw_is_uplink_port(port) || vsw_is_host_port(port))
        return -EINVAL;
    if (weight == 0 && port->pin_lcore != VSW_PIN_AUTO)
        return -EBUSY;
    uint8_t old = port->vmq_weight;
    port->vmq_weight = (uint8_t)weight;
    if (!port->sw || (old == 0) == (weight == 0))
        return 0;
    /* Off: onto the default queue's worker; on again: by load. */
    int rc = vsw_port_move(port, vsw_place_pick(port->sw, port));
    if (rc < 0)
        port->vmq_weight = old;
    return rc;
}

unsigned vsw_port_vmq_weight(const struct vsw_port *port)
{
    return port->vmq_weight;
}

/* Send on the frames p's hand-off ring holds now (not those enqueued
 * while this runs). Returns how many. */
static unsigned send_handed_off(struct vsw_port *p)
{
    struct rte_mbuf *pkts[VSW_BURST];
    unsigned left = rte_ring_count(p->handoff), sent = 0;
    while (left) {
        unsigned h = rte_ring_sc_dequeue_burst(p->handoff, (void **)pkts,
                                               left < VSW_BURST ? left : VSW_BURST, NULL);
        if (!h)
            break;
        left -= h;
        sent += h;
        p->cls->tx_burst(p, pkts, (uint16_t)h);
    }
    return sent;
}

/* The second half of a move (vsw_port_move()): w polls p for the first
 * time, set being the ports of its round. Send on everything p's hand-off
 * ring holds now: that includes every frame this worker handed over
 * before (all of them enqueued before this point), so none of its own
 * frames sent directly once it is the direct sender can overtake one of
 * them. Frames of other workers keep going through the ring after these,
 * in order.
 * p is also a sender: its old owner handed the frames p received to the
 * rings of the ports w owns, and from now on w sends p's frames to them
 * directly. Those rings may hold more than a round takes from them (a
 * busy w falls behind), so they are sent on first too, or p's next
 * frames would overtake its earlier ones (the old owner's last round
 * with p ended before this: the move's first grace period).
 * The old owner may have left p's wake-up armed: disarm it. Then become
 * the direct sender. Returns frames sent. */
unsigned vsw_port_take_over(struct vsw_worker *w, const struct vsw_port_set *set,
                            struct vsw_port *p)
{
    unsigned sent = send_handed_off(p);
    for (unsigned i = 0; i < set->n; i++) {
        struct vsw_port *x = set->ports[i];
        if (x != p && __atomic_load_n(&x->tx_worker, __ATOMIC_RELAXED) == w->idx)
            sent += send_handed_off(x);
    }
    if (p->cls->wait_disarm)
        p->cls->wait_disarm(p);
    /* Last: the control thread waits for this store (vsw_port_move()). */
    __atomic_store_n(&p->take_by, VSW_WORKER_NONE, __ATOMIC_RELAXED);
    __atomic_store_n(&p->tx_worker, (uint16_t)w->idx, __ATOMIC_RELEASE);
    return sent;
}

int vsw_port_set_pin(struct vsw_port *port, int lcore)
{
    if (lcore != VSW_PIN_AUTO && lcore < 0)
        return -EINVAL;
    if (lcore != VSW_PIN_AUTO && port->vmq_weight == 0)
        return -EBUSY;
    int wi = -1;
    if (port->sw && lcore != VSW_PIN_AUTO) {
        wi = worker_of_lcore(port->sw->dp, lcore);
        if (wi < 0)
            return -ENOENT;
    }
    port->pin_lcore = lcore;
    port->pin_missing = false;
    if (wi >= 0 && (unsigned)wi != port->worker) {
        int rc = vsw_port_move(port, (unsigned)wi);
        if (rc < 0)
            return rc;
        port->sw->dp->pstats.pin_moves++;
    }
    return 0;
}

int vsw_port_pin(const struct vsw_port *port)
{
    return port->pin_lcore;
}

bool vsw_port_pin_missing(const struct vsw_port *port)
{
    return port->pin_missing;
}

unsigned vsw_port_worker_lcore(const struct vsw_port *port)
{
    return port->sw ? port->sw->dp->workers[port->worker].lcore : 0;
}

static bool port_may_move(const struct vsw_rb_params *prm, const struct vsw_rb_state *st,
                          const struct vsw_rb_port *p)
{
    return p->movable && (p->last_move == 0 || st->sample - p->last_move >= prm->port_gap);
}

static double max2(double a, double b)
{
    return a > b ? a : b;
}

static enum vsw_rb_reason spread(const struct vsw_rb_params *prm, struct vsw_rb_state *st,
                                 const struct vsw_rb_worker *w, unsigned nw,
                                 const struct vsw_rb_port *p, unsigned np, struct vsw_rb_move *out)
{
    int hot = -1;
    for (unsigned i = 0; i < nw; i++)
        if (st->high_run[i] >= prm->high_samples && (hot < 0 || w[i].busy_pct > w[hot].busy_pct))
            hot = (int)i;
    if (hot < 0)
        return VSW_RB_NONE;
    int cold = -1;
    for (unsigned i = 0; i < nw; i++)
        if ((int)i != hot && (cold < 0 || w[i].busy_pct < w[cold].busy_pct))
            cold = (int)i;
    if (cold < 0)
        return VSW_RB_NONE;
    const double hb = w[hot].busy_pct, cb = w[cold].busy_pct;
    int best = -1;
    for (unsigned j = 0; j < np; j++) {
        if (p[j].worker != (unsigned)hot || !port_may_move(prm, st, &p[j]) || p[j].avg_pct <= 0)
            continue;
        double after = max2(hb - p[j].avg_pct, cb + p[j].avg_pct);
        if (after > hb - prm->margin_pct)
            continue;
        if (best < 0 || p[j].weight > p[best].weight ||
            (p[j].weight == p[best].weight && p[j].avg_pct > p[best].avg_pct))
            best = (int)j;
    }
    if (best < 0)
        return VSW_RB_NONE;
    double l = p[best].avg_pct;
    *out = (struct vsw_rb_move){.port = (unsigned)best, .from = (unsigned)hot,
                                .to = (unsigned)cold, .from_before = hb, .to_before = cb,
                                .from_after = hb - l, .to_after = cb + l};
    st->high_run[hot] = 0;
    return VSW_RB_SPREAD;
}

static enum vsw_rb_reason pack(const struct vsw_rb_params *prm, struct vsw_rb_state *st,
                               const struct vsw_rb_worker *w, unsigned nw,
                               const struct vsw_rb_port *p, unsigned np, struct vsw_rb_move *out)
{
    unsigned nports[VSW_MAX_WORKERS] = {0};
    bool stuck[VSW_MAX_WORKERS] = {false}; /* polls a port that may not move */
    int light[VSW_MAX_WORKERS]; /* each worker's port to give: lowest weight, lightest */
    for (unsigned i = 0; i < nw; i++)
        light[i] = -1;
    for (unsigned j = 0; j < np; j++) {
        unsigned wi = p[j].worker;
        if (wi >= nw)
            continue;
        nports[wi]++;
        if (!port_may_move(prm, st, &p[j]))
            stuck[wi] = true;
        else if (light[wi] < 0 || p[j].weight < p[light[wi]].weight ||
                 (p[j].weight == p[light[wi]].weight && p[j].avg_pct < p[light[wi]].avg_pct))
            light[wi] = (int)j;
    }
    /* Only a worker that can be emptied gives ports away: one with a
     * pinned port (or one that moved lately) would stay awake anyway. */
    int src = -1;
    for (unsigned i = 0; i < nw; i++)
        if (light[i] >= 0 && !stuck[i] && (src < 0 || w[i].busy_pct < w[src].busy_pct ||
                              (w[i].busy_pct == w[src].busy_pct && nports[i] < nports[src])))
            src = (int)i;
    if (src < 0)
        return VSW_RB_NONE;
    const struct vsw_rb_port *mv = &p[light[src]];
    int dst = -1;
    for (unsigned i = 0; i < nw; i++) {
        if ((int)i == src || nports[i] == 0 || w[i].busy_pct + mv->avg_pct >= prm->pack_ceil_pct)
            continue;
        if (dst < 0 || w[i].busy_pct > w[dst].busy_pct)
            dst = (int)i;
    }
    if (dst < 0)
        return VSW_RB_NONE;
    *out = (struct vsw_rb_move){.port = (unsigned)light[src], .from = (unsigned)src,
                                .to = (unsigned)dst, .from_before = w[src].busy_pct,
                                .to_before = w[dst].busy_pct,
                                .from_after = w[src].busy_pct - mv->avg_pct,
                                .to_after = w[dst].busy_pct + mv->avg_pct};
    return VSW_RB_PACK;
}

/* The smoothed value after sample x (the first one taken as it is). */
static double smooth(double avg, double x, bool first)
{
    return first ? x : (avg + x) / 2;
}

enum vsw_rb_reason vsw_rb_decide(const struct vsw_rb_params *prm, struct vsw_rb_state *st,
                                 const struct vsw_rb_worker *wl, unsigned nw,
                                 struct vsw_rb_port *p, unsigned np, struct vsw_rb_move *out)
{
    if (nw > VSW_MAX_WORKERS)
        nw = VSW_MAX_WORKERS;
    st->sample++;
    struct vsw_rb_worker w[VSW_MAX_WORKERS];
    for (unsigned i = 0; i < nw; i++)
        w[i].busy_pct = st->avg[i] = smooth(st->avg[i], wl[i].busy_pct, !st->smoothed);
    st->smoothed = true;
    for (unsigned j = 0; j < np; j++)
        p[j].avg_pct = smooth(p[j].avg_pct, p[j].load_pct, p[j].avg_pct < 0);
    bool all_low = nw > 0;
    for (unsigned i = 0; i < nw; i++) {
        st->high_run[i] = w[i].busy_pct >= prm->high_pct ? st->high_run[i] + 1 : 0;
        if (w[i].busy_pct >= prm->low_pct)
            all_low = false;
    }
    st->low_run = all_low ? st->low_run + 1 : 0;
    const uint64_t gap = (uint64_t)prm->move_gap << st->flaps;
    if (nw < 2 || (st->last_move && st->sample - st->last_move < gap))
        return VSW_RB_NONE;
    enum vsw_rb_reason r = spread(prm, st, w, nw, p, np, out);
    if (r == VSW_RB_NONE && st->low_run >= prm->low_samples)
        r = pack(prm, st, w, nw, p, np, out);
    if (r != VSW_RB_NONE) {
        /* Damping: moves that keep following each other (loads that
         * hover where every move looks worth it) wait twice as long each
         * time, up to VSW_RB_MAX_FLAPS doublings; a quiet spell of
         * VSW_RB_QUIET samples restores the quick reaction. */
        if (st->last_move && st->sample - st->last_move < VSW_RB_QUIET)
            st->flaps = st->flaps < VSW_RB_MAX_FLAPS ? st->flaps + 1 : VSW_RB_MAX_FLAPS;
        else
            st->flaps = 0;
        st->last_move = st->sample;
    }
    return r;
}

struct vsw_rb_params vsw_rb_params_for(double high_pct)
{
    const double k = high_pct / vsw_rb_defaults.high_pct;
    struct vsw_rb_params p = vsw_rb_defaults;
    p.high_pct = high_pct;
    p.low_pct *= k;
    p.pack_ceil_pct *= k;
    p.margin_pct *= k;
    return p;
}

int vsw_dp_set_load_threshold(struct vsw_dp *dp, unsigned pct)
{
    if (pct < 1 || pct > 100)
        return -EINVAL;
    dp->rb_params = vsw_rb_params_for((double)pct);
    dp->pstats.load_threshold = pct;
    return 0;
}

void vsw_dp_set_dynamic(struct vsw_dp *dp, bool on)
{
    if (dp->pstats.dynamic != on) {
        memset(dp->rb.high_run, 0, sizeof(dp->rb.high_run));
        dp->rb.low_run = 0;
        /* Loads are smoothed only while it runs: start afresh. */
        dp->rb.smoothed = false;
        for (unsigned i = 0; i < VSW_MAX_PORTS; i++)
            if (dp->ports[i])
                dp->ports[i]->load_avg = -1.0;
    }
    dp->pstats.dynamic = on;
}

bool vsw_dp_dynamic(const struct vsw_dp *dp)
{
    return dp->pstats.dynamic;
}

void vsw_dp_placement_stats(const struct vsw_dp *dp, struct vsw_placement_stats *out)
{
    *out = dp->pstats;
}

int vsw_dp_load_sample(struct vsw_dp *dp, struct vsw_move_report *out)
{
    struct vsw_rb_worker wl[VSW_MAX_WORKERS];
    uint64_t all[VSW_MAX_WORKERS];
    for (unsigned i = 0; i < dp->nworkers; i++) {
        struct vsw_worker *w = &dp->workers[i];
        uint64_t busy = __atomic_load_n(&w->busy_cycles, __ATOMIC_RELAXED);
        uint64_t a = busy + __atomic_load_n(&w->idle_cycles, __ATOMIC_RELAXED) +
                     __atomic_load_n(&w->sleep_cycles, __ATOMIC_RELAXED);
        uint64_t db = busy - w->sample_busy;
        all[i] = a - w->sample_all;
        w->sample_busy = busy;
        w->sample_all = a;
        w->busy_pct_last = all[i] ? 100.0 * (double)db / (double)all[i] : 0.0;
        if (w->busy_pct_last > 100.0)
            w->busy_pct_last = 100.0;
        wl[i].busy_pct = w->busy_pct_last;
    }
    struct vsw_rb_port *rp = malloc(sizeof(*rp) * VSW_MAX_PORTS);
    struct vsw_port **pp = malloc(sizeof(*pp) * VSW_MAX_PORTS);
    if (!rp || !pp) {
        free(rp);
        free(pp);
        return -ENOMEM;
    }
    unsigned np = 0;
    for (unsigned i = 0; i < VSW_MAX_PORTS; i++) {
        struct vsw_port *p = dp->ports[i];
        if (!p)
            continue;
        uint64_t c = __atomic_load_n(&p->busy_cycles, __ATOMIC_RELAXED);
        uint64_t a = all[p->worker];
        p->load_pct = a ? 100.0 * (double)(c - p->sample_cycles) / (double)a : 0.0;
        if (p->load_pct > wl[p->worker].busy_pct)
            p->load_pct = wl[p->worker].busy_pct;
        p->sample_cycles = c;
        pp[np] = p;
        rp[np++] = (struct vsw_rb_port){.worker = p->worker, .load_pct = p->load_pct,
                                        .movable = (p->pin_lcore == VSW_PIN_AUTO ||
                                                    p->pin_missing) && p->vmq_weight != 0,
                                        .last_move = p->last_move_sample,
                                        .weight = p->vmq_weight,
                                        .avg_pct = p->load_avg};
    }
    /* A VMQ-off port moves with its switch's default-queue port: that
     * port's move carries their load too (smoothed with its own). */
    for (unsigned j = 0; j < np; j++) {
        if (pp[j]->vmq_weight != 0)
            continue;
        const struct vsw_port *def = vsw_switch_default_port(pp[j]->sw);
        for (unsigned k = 0; def && k < np; k++)
            if (pp[k] == def && rp[k].worker == rp[j].worker)
                rp[k].load_pct += rp[j].load_pct;
    }
    dp->pstats.samples++;
    int rc = 0;
    if (!dp->pstats.dynamic) {
        dp->rb.sample++;
    } else {
        struct vsw_rb_move mv;
        enum vsw_rb_reason r =
            vsw_rb_decide(&dp->rb_params, &dp->rb, wl, dp->nworkers, rp, np, &mv);
        for (unsigned j = 0; j < np; j++)
            pp[j]->load_avg = rp[j].avg_pct;
        if (r != VSW_RB_NONE) {
            struct vsw_port *p = pp[mv.port];
            rc = vsw_port_move(p, mv.to);
            if (rc == 0) {
                if (r == VSW_RB_SPREAD)
                    dp->pstats.spread_moves++;
                else
                    dp->pstats.pack_moves++;
                *out = (struct vsw_move_report){.from_lcore = dp->workers[mv.from].lcore,
                                                .to_lcore = dp->workers[mv.to].lcore,
                                                .reason = r, .est = mv};
                snprintf(out->port, sizeof(out->port), "%s", p->name);
                rc = 1;
            }
        }
    }
    free(rp);
    free(pp);
    return rc;
}
