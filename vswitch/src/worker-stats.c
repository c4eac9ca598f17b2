/*
 * The workers' own accounting, read on the control thread: snapshots of
 * what each worker counts (rounds, busy/idle/asleep TSC cycles, frames),
 * the figures derived from them, and clears as baselines kept here, never
 * as resets written into a worker's counters (which only it writes).
 */
#include <stdint.h>
#include <string.h>

#include "vsw-private.h"

static void worker_snapshot(const struct vsw_worker *w, struct vsw_worker_stats *out)
{
    *out = (struct vsw_worker_stats){
        .lcore = w->lcore,
        .ports = w->nports_ctl,
        .rounds = __atomic_load_n(&w->rounds, __ATOMIC_RELAXED),
        .busy_rounds = __atomic_load_n(&w->busy_rounds, __ATOMIC_RELAXED),
        .sleeps = __atomic_load_n(&w->sleeps, __ATOMIC_RELAXED),
        .wakeups = __atomic_load_n(&w->wakeups, __ATOMIC_RELAXED),
        .busy_cycles = __atomic_load_n(&w->busy_cycles, __ATOMIC_RELAXED),
        .idle_cycles = __atomic_load_n(&w->idle_cycles, __ATOMIC_RELAXED),
        .sleep_cycles = __atomic_load_n(&w->sleep_cycles, __ATOMIC_RELAXED),
        .rx_packets = __atomic_load_n(&w->rx_packets, __ATOMIC_RELAXED),
        .tx_packets = __atomic_load_n(&w->tx_packets, __ATOMIC_RELAXED),
    };
}

unsigned vsw_dp_worker_stats(const struct vsw_dp *dp, struct vsw_worker_stats *out, unsigned max)
{
    for (unsigned i = 0; i < dp->nworkers && i < max; i++)
        worker_snapshot(&dp->workers[i], &out[i]);
    return dp->nworkers;
}

void vsw_worker_stats_sub(struct vsw_worker_stats *a, const struct vsw_worker_stats *b)
{
    a->rounds -= b->rounds;
    a->busy_rounds -= b->busy_rounds;
    a->sleeps -= b->sleeps;
    a->wakeups -= b->wakeups;
    a->busy_cycles -= b->busy_cycles;
    a->idle_cycles -= b->idle_cycles;
    a->sleep_cycles -= b->sleep_cycles;
    a->rx_packets -= b->rx_packets;
    a->tx_packets -= b->tx_packets;
}

double vsw_worker_cycles_per_packet(const struct vsw_worker_stats *s)
{
    return s->rx_packets ? (double)s->busy_cycles / (double)s->rx_packets : 0.0;
}

double vsw_worker_busy_pct(const struct vsw_worker_stats *s)
{
    uint64_t all = s->busy_cycles + s->idle_cycles + s->sleep_cycles;
    return all ? 100.0 * (double)s->busy_cycles / (double)all : 0.0;
}

void vsw_dp_stats_clear(struct vsw_dp *dp)
{
    for (unsigned i = 0; i < dp->nworkers; i++)
        worker_snapshot(&dp->workers[i], &dp->workers[i].clear_base);
    for (unsigned i = 0; i < VSW_MAX_PORTS; i++) {
        struct vsw_port *p = dp->ports[i];
        if (!p)
            continue;
        struct vsw_port_stats st;
        vsw_port_get_stats(p, &st);
        p->clear_rx_packets = st.rx_packets;
        p->clear_tx_packets = st.tx_packets;
    }
}

unsigned vsw_dp_worker_stats_since_clear(const struct vsw_dp *dp, struct vsw_worker_stats *out,
                                         unsigned max)
{
    for (unsigned i = 0; i < dp->nworkers && i < max; i++) {
        worker_snapshot(&dp->workers[i], &out[i]);
        vsw_worker_stats_sub(&out[i], &dp->workers[i].clear_base);
    }
    return dp->nworkers;
}

unsigned vsw_dp_worker_ports(const struct vsw_dp *dp, unsigned worker, struct vsw_worker_port *out,
                             unsigned max)
{
    if (worker >= dp->nworkers)
        return 0;
    /* The control thread publishes the set, so it may read it as is. */
    const struct vsw_port_set *set = dp->workers[worker].ports;
    for (unsigned i = 0; i < set->n && i < max; i++) {
        const struct vsw_port *p = set->ports[i];
        struct vsw_port_stats st;
        vsw_port_get_stats(p, &st);
        out[i] = (struct vsw_worker_port){
            .port = p,
            .rx_packets = st.rx_packets - p->clear_rx_packets,
            .tx_packets = st.tx_packets - p->clear_tx_packets,
            .cycles = __atomic_load_n(&p->busy_cycles, __ATOMIC_RELAXED),
            .load_pct = p->load_pct,
            .moves = p->moves,
            .pin_lcore = p->pin_lcore,
            .pin_missing = p->pin_missing,
        };
    }
    return set->n;
}
