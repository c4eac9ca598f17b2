/* The run loops: one lcore, bursts, TSC pacing, no system call or
 * allocation per frame beyond rte_pktmbuf_alloc_bulk. */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "pktgen-ctl.h"
#include "pktgen-private.h"

#define REFLECT_TX_TRIES 64

volatile sig_atomic_t pg_stop;

struct rx_state {
    struct pktgen_seq seq[PKTGEN_MAX_STREAMS];
    double ns_per_tsc;
    const struct pg_opts *o;
};

/* A frame that is not stamped may be a control frame (an agent's). */
static void rx_other(const struct pg_opts *o, const struct rte_mbuf *m,
                     enum pktgen_parse_result pr, struct pg_result *r)
{
    if (o->ctl && pr == PKTGEN_PARSE_MAGIC && pktgen_ctl_is_ctl(m)) {
        r->ctl_frames++;
        if (o->ctl(o->ctl_arg, m))
            r->ctl_ended = true;
        return;
    }
    r->rx_other[pr]++;
}

static void rx_burst(struct pg_port *port, struct rx_state *st, struct pg_result *r)
{
    struct rte_mbuf *pkts[PG_BURST];
    uint16_t n = pg_port_rx(port, pkts, PG_BURST);
    if (n == 0)
        return;
    uint64_t now = rte_rdtsc();
    r->rx_total += n;
    for (uint16_t i = 0; i < n; i++) {
        struct pktgen_stamp s;
        enum pktgen_parse_result pr = pktgen_parse(pkts[i], &s);
        if (pr == PKTGEN_PARSE_OK && s.stream >= PKTGEN_MAX_STREAMS)
            pr = PKTGEN_PARSE_MAGIC;
        if (pr != PKTGEN_PARSE_OK) {
            rx_other(st->o, pkts[i], pr, r);
            continue;
        }
        if (st->o->stream_only && s.stream != st->o->stream) {
            r->other_stream++;
            continue;
        }
        r->rx_frames++;
        r->rx_bytes += rte_pktmbuf_pkt_len(pkts[i]);
        pktgen_seq_record(&st->seq[s.stream], s.seq);
        /* A stamp from the future is another clock's (or a forgery). */
        if (s.tsc <= now)
            pktgen_hist_record(&r->lat, (uint64_t)((double)(now - s.tsc) * st->ns_per_tsc));
        else
            r->bad_time++;
    }
    rte_pktmbuf_free_bulk(pkts, n);
}

static void rx_totals(const struct rx_state *st, struct pg_result *r)
{
    r->lost = r->reordered = r->duplicates = r->late = r->bad_seq = 0;
    for (unsigned i = 0; i < PKTGEN_MAX_STREAMS; i++) {
        r->lost += st->seq[i].missing;
        r->reordered += st->seq[i].reordered;
        r->duplicates += st->seq[i].duplicates;
        r->late += st->seq[i].late;
        r->bad_seq += st->seq[i].bad;
    }
    r->stream_rx = st->seq[st->o->stream].received;
}

struct progress {
    uint64_t next, last, tx, rx;
};

static void progress_tick(const struct pg_opts *o, struct progress *p, uint64_t now,
                          uint64_t t0, const struct rx_state *st, struct pg_result *r)
{
    if (now < p->next)
        return;
    uint64_t hz = rte_get_tsc_hz();
    if (st)
        rx_totals(st, r);
    pg_progress(o, r, (double)(now - t0) / (double)hz, (double)(now - p->last) / (double)hz,
                r->tx_frames - p->tx, r->rx_frames - p->rx);
    p->last = now;
    p->next = now + hz;
    p->tx = r->tx_frames;
    p->rx = r->rx_frames;
}

/* Pacing: `spent` counts the units (frames, or line bits) sent since t0 and
 * may not run ahead of what the rate allows by now. Credit left unused (the
 * port was full, the lcore was preempted) is kept for at most 1 ms, so that
 * a stall is not followed by a burst far above the rate. */
static int run_gen(const struct pg_opts *o, struct pg_ports *ports, struct pg_result *r)
{
    uint64_t hz = rte_get_tsc_hz();
    bool paced = o->rate.kind != PKTGEN_RATE_UNLIMITED;
    bool bits = o->rate.kind == PKTGEN_RATE_BPS;
    double units_per_tsc = paced ? o->rate.value / (double)hz : 0;
    double max_credit = units_per_tsc * (double)hz / 1000.0;
    struct pg_port *rx_port = &ports->port[ports->n > 1 ? 1 : 0];
    struct rx_state *st = NULL;
    if (o->rx) {
        st = rte_zmalloc("pktgen_rx", sizeof(*st), 64);
        if (!st)
            return -ENOMEM;
        st->ns_per_tsc = 1e9 / (double)hz;
        st->o = o;
    }
    struct pktgen_flow flow = o->flow;
    uint64_t seq = 0;
    unsigned imix_i = 0;
    double spent = 0;
    uint64_t t0 = rte_rdtsc();
    uint64_t end = o->duration_s > 0 ? t0 + (uint64_t)(o->duration_s * (double)hz) : UINT64_MAX;
    uint64_t t_last = t0, drain_end = 0;
    struct progress pr = {.next = t0 + hz, .last = t0};
    /* Stalls are measured apart from the pacer, as gaps between two turns
     * of the loop (the lcore lost its CPU): a pacer that fell behind
     * without a stall is not excused by them. */
    uint64_t prev = t0, credit_tsc = hz / 1000;
    while (!pg_stop && !r->ctl_ended) {
        uint64_t now = rte_rdtsc();
        uint64_t upto = now < end ? now : end;
        if (upto > prev + credit_tsc && (o->count == 0 || r->tx_frames < o->count))
            r->stalled_s += (double)(upto - prev - credit_tsc) / (double)hz;
        prev = now;
        bool sending = (o->count == 0 || r->tx_frames < o->count) && now < end;
        /* Nothing went out this turn (not due yet, or the port full): a
         * generator that does not also receive gives the CPU away here
         * with --yield, or a sink sharing its CPU waits a scheduler slice. */
        bool idle = false;
        if (sending) {
            unsigned n = PG_BURST;
            if (o->count && o->count - r->tx_frames < n)
                n = (unsigned)(o->count - r->tx_frames);
            double due = (double)(now - t0) * units_per_tsc;
            if (paced && due - spent > max_credit)
                spent = due - max_credit;
            struct rte_mbuf *pkts[PG_BURST];
            uint16_t lens[PG_BURST];
            unsigned k = 0;
            if (rte_pktmbuf_alloc_bulk(ports->tx_pool, pkts, n) == 0) {
                for (; k < n && (!paced || spent <= due); k++) {
                    uint16_t len = o->imix ? pktgen_imix[(imix_i + k) % PKTGEN_IMIX_LEN]
                                           : o->frame_len;
                    struct pktgen_stamp s = {.magic = PKTGEN_MAGIC, .stream = o->stream,
                                             .seq = seq + k, .tsc = now};
                    struct rte_mbuf *m = pkts[k];
                    m->data_len = len;
                    m->pkt_len = len;
                    pktgen_frame_write(rte_pktmbuf_mtod(m, uint8_t *), len, &flow, &s);
                    lens[k] = len;
                    spent += bits ? (double)(len + PKTGEN_WIRE_OVERHEAD) * 8 : 1;
                }
                if (k < n)
                    rte_pktmbuf_free_bulk(pkts + k, n - k);
                uint16_t sent = k ? pg_port_tx(&ports->port[0], pkts, (uint16_t)k) : 0;
                /* What the port refused was never offered: its sequence
                 * numbers and its credit are reused. */
                for (unsigned i = sent; i < k; i++)
                    spent -= bits ? (double)(lens[i] + PKTGEN_WIRE_OVERHEAD) * 8 : 1;
                if (sent < k) {
                    rte_pktmbuf_free_bulk(pkts + sent, k - sent);
                    r->tx_refused += k - sent;
                }
                for (unsigned i = 0; i < sent; i++)
                    r->tx_bytes += lens[i];
                r->tx_frames += sent;
                seq += sent;
                imix_i = (imix_i + sent) % PKTGEN_IMIX_LEN;
                if (sent)
                    t_last = now;
                idle = sent == 0;
            }
        } else {
            if (!st)
                break;
            if (!drain_end)
                drain_end = now + (uint64_t)(o->drain_s * (double)hz);
            if (st->seq[o->stream].received >= r->tx_frames || now >= drain_end)
                break;
        }
        if (st)
            rx_burst(rx_port, st, r);
        else if (idle && ports->port[0].yield)
            sched_yield();
        if (!o->quiet)
            progress_tick(o, &pr, now, t0, st, r);
    }
    r->seconds = (double)(t_last - t0) / (double)hz;
    if (st) {
        rx_totals(st, r);
        /* The sender knows what it sent: the ones never seen are lost,
         * including those after the last one received. */
        uint64_t got = st->seq[o->stream].received;
        r->lost = r->tx_frames > got ? r->tx_frames - got : 0;
        rte_free(st);
    }
    return 0;
}

static int run_sink(const struct pg_opts *o, struct pg_ports *ports, struct pg_result *r)
{
    uint64_t hz = rte_get_tsc_hz();
    struct rx_state *st = rte_zmalloc("pktgen_rx", sizeof(*st), 64);
    if (!st)
        return -ENOMEM;
    st->ns_per_tsc = 1e9 / (double)hz;
    st->o = o;
    uint64_t t0 = rte_rdtsc(), first = 0, last = 0;
    uint64_t end = o->duration_s > 0 ? t0 + (uint64_t)(o->duration_s * (double)hz) : UINT64_MAX;
    struct progress pr = {.next = t0 + hz, .last = t0};
    while (!pg_stop && !r->ctl_ended) {
        uint64_t now = rte_rdtsc();
        if (now >= end || (o->count && r->rx_frames >= o->count))
            break;
        uint64_t before = r->rx_total;
        rx_burst(&ports->port[0], st, r);
        if (r->rx_total != before) {
            if (!first)
                first = now;
            last = now;
        }
        if (!o->quiet)
            progress_tick(o, &pr, now, t0, st, r);
    }
    r->seconds = (double)(last - first) / (double)hz;
    rx_totals(st, r);
    rte_free(st);
    return 0;
}

static int run_reflect(const struct pg_opts *o, struct pg_ports *ports, struct pg_result *r)
{
    uint64_t hz = rte_get_tsc_hz();
    uint64_t t0 = rte_rdtsc(), first = 0, last = 0;
    uint64_t end = o->duration_s > 0 ? t0 + (uint64_t)(o->duration_s * (double)hz) : UINT64_MAX;
    struct progress pr = {.next = t0 + hz, .last = t0};
    struct pg_port *port = &ports->port[0];
    while (!pg_stop && !r->ctl_ended) {
        uint64_t now = rte_rdtsc();
        if (now >= end || (o->count && r->tx_frames >= o->count))
            break;
        struct rte_mbuf *pkts[PG_BURST];
        uint16_t n = pg_port_rx(port, pkts, PG_BURST), k = 0;
        r->rx_total += n;
        for (uint16_t i = 0; i < n; i++) {
            struct rte_mbuf *m = pkts[i];
            if (rte_pktmbuf_data_len(m) < sizeof(struct rte_ether_hdr)) {
                r->rx_other[PKTGEN_PARSE_SHORT]++;
                rte_pktmbuf_free(m);
                continue;
            }
            /* An agent's control frames are its own, not sent back. */
            if (o->ctl && pktgen_ctl_is_ctl(m)) {
                r->ctl_frames++;
                if (o->ctl(o->ctl_arg, m))
                    r->ctl_ended = true;
                rte_pktmbuf_free(m);
                continue;
            }
            struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
            struct rte_ether_addr tmp = eth->src_addr;
            eth->src_addr = eth->dst_addr;
            eth->dst_addr = tmp;
            r->rx_frames++;
            r->rx_bytes += rte_pktmbuf_pkt_len(m);
            pkts[k++] = m;
        }
        /* A full return ring is retried a few times before the frames are
         * dropped (and counted), as testpmd's forwarding retries: a VM that
         * drops at the first full ring measures its own scheduling. */
        uint16_t sent = 0;
        for (int tries = 0; sent < k && tries < REFLECT_TX_TRIES; tries++)
            sent += pg_port_tx(port, pkts + sent, (uint16_t)(k - sent));
        for (uint16_t i = 0; i < sent; i++)
            r->tx_bytes += rte_pktmbuf_pkt_len(pkts[i]);
        if (sent < k) {
            rte_pktmbuf_free_bulk(pkts + sent, k - sent);
            r->tx_refused += k - sent;
        }
        r->tx_frames += sent;
        if (n) {
            if (!first)
                first = now;
            last = now;
        }
        if (!o->quiet)
            progress_tick(o, &pr, now, t0, NULL, r);
    }
    r->seconds = (double)(last - first) / (double)hz;
    return 0;
}

static uint16_t ethdev_rx(struct pg_port *p, struct rte_mbuf **pkts, uint16_t n)
{
    uint16_t got = rte_eth_rx_burst(p->id, 0, pkts, n);
    for (uint16_t q = 1; q < p->nq && got < n; q++)
        got += rte_eth_rx_burst(p->id, q, pkts + got, (uint16_t)(n - got));
    if (got == 0 && p->yield)
        sched_yield();
    return got;
}

static uint16_t ethdev_tx(struct pg_port *p, struct rte_mbuf **pkts, uint16_t n)
{
    return rte_eth_tx_burst(p->id, 0, pkts, n);
}

void pg_port_ethdev(struct pg_port *p, uint16_t id, uint16_t nq)
{
    *p = (struct pg_port){.rx = ethdev_rx, .tx = ethdev_tx, .id = id, .nq = nq ? nq : 1};
}

int pg_run(const struct pg_opts *o, struct pg_ports *ports, struct pg_result *r)
{
    memset(r, 0, sizeof(*r));
    pktgen_hist_init(&r->lat);
    switch (o->role) {
    case PG_GEN:
        return run_gen(o, ports, r);
    case PG_SINK:
        return run_sink(o, ports, r);
    case PG_REFLECT:
        return run_reflect(o, ports, r);
    case PG_AGENT:
        break;
    }
    return -EINVAL;
}
