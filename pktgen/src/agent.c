/* In-band control: sending and receiving control frames, and the agent
 * (--role agent), a pktgen that a controller drives through its port
 * because nothing else reaches it (a pktgen in a VM).
 *
 * The agent keeps one trial: the last START it accepted (controller nonce
 * and trial id) and, once the trial ran, its report. A START it already
 * has is acknowledged again, not run again (the controller retries when an
 * ACK is lost); a STOP for it is answered with the report (retried STOPs
 * get the same report).
 *
 * While a trial runs, the agent does the data path only:
 * - a sink or reflector looks at control frames as they come (the data path
 *   already tells them apart): a STOP for its trial ends the trial, then the
 *   report is sent; a repeated START for its trial is acknowledged on the
 *   spot; anything else is counted and dropped (the controller retries);
 * - a generator does not receive at all: control frames queue in its port's
 *   receive ring and are handled when the trial ends.
 * A generator reports by itself when it is done (the controller waits for
 * that, not for a time it guessed); STOP asks again if that report is lost.
 * A trial also ends at its duration (for a sink or reflector, the bound the
 * controller gave), so that an agent whose controller is gone goes back to
 * waiting. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_mbuf.h>

#include "pktgen-ctl.h"
#include "pktgen-private.h"

#define CTL_TX_TRIES 1000

int pg_ctl_send(struct pg_ctl_io *io, const uint8_t dst[6], const struct pktgen_ctl_msg *m)
{
    struct rte_mbuf *mb = rte_pktmbuf_alloc(io->ports->tx_pool);
    if (!mb)
        return -EAGAIN;
    uint8_t *p = (uint8_t *)rte_pktmbuf_append(mb, PKTGEN_CTL_FRAME_LEN);
    if (!p) {
        rte_pktmbuf_free(mb);
        return -EAGAIN;
    }
    pktgen_ctl_write(p, dst, io->mac, m);
    for (int i = 0; i < CTL_TX_TRIES; i++) {
        if (pg_port_tx(&io->ports->port[0], &mb, 1) == 1)
            return 0;
        rte_pause();
    }
    rte_pktmbuf_free(mb);
    return -EAGAIN;
}

int pg_ctl_recv(struct pg_ctl_io *io, double timeout_s, struct pktgen_ctl_msg *m, uint8_t src[6])
{
    uint64_t hz = rte_get_tsc_hz();
    uint64_t end = rte_rdtsc() + (uint64_t)(timeout_s * (double)hz);
    int found = 0;
    while (!pg_stop && !found) {
        for (int pi = 0; pi < io->ports->n && !found; pi++) {
            struct rte_mbuf *pkts[PG_BURST];
            uint16_t n = pg_port_rx(&io->ports->port[pi], pkts, PG_BURST);
            for (uint16_t i = 0; i < n; i++) {
                /* A burst may hold more than one message: the ones after
                 * the first are dropped, as a lost frame would be. */
                if (found)
                    continue;
                enum pktgen_ctl_result rc = pktgen_ctl_parse(pkts[i], m, src);
                if (rc == PKTGEN_CTL_NOT_CTL)
                    continue;
                if (rc != PKTGEN_CTL_OK) {
                    io->bad++;
                    continue;
                }
                const uint8_t *dst = rte_pktmbuf_mtod(pkts[i], const uint8_t *);
                if (memcmp(dst, io->mac, 6) != 0) {
                    io->ignored++;
                    continue;
                }
                found = 1;
            }
            if (n)
                rte_pktmbuf_free_bulk(pkts, n);
        }
        if (!found && rte_rdtsc() >= end)
            break;
    }
    return found;
}

struct agent {
    struct pg_ctl_io io;
    const struct pg_opts *base;
    uint16_t max_frame;
    bool have;           /* a trial was accepted */
    uint64_t nonce;
    uint32_t trial;
    uint16_t status;     /* its ACK status */
    bool done;           /* it ran; rep holds its report */
    struct pktgen_ctl_report rep;
    uint8_t ctrl[6];     /* the controller of that trial */
};

static void agent_reply(struct agent *a, uint8_t type, uint16_t status)
{
    struct pktgen_ctl_msg m = {.type = type, .status = status, .nonce = a->nonce,
                               .trial = a->trial};
    if (type == PKTGEN_CTL_REPORT) {
        m.u.report = a->rep;
        m.u.report.ctl_bad = a->io.bad;
    }
    if (pg_ctl_send(&a->io, a->ctrl, &m) < 0 && !a->base->quiet)
        fprintf(stderr, "pktgen agent: could not send a control frame (port full)\n");
}

static bool same_trial(const struct agent *a, const struct pktgen_ctl_msg *m)
{
    return a->have && m->nonce == a->nonce && m->trial == a->trial;
}

/* The data path's look at a control frame (sink, reflect). */
static bool agent_ctl_hook(void *arg, const struct rte_mbuf *mb)
{
    struct agent *a = arg;
    struct pktgen_ctl_msg m;
    uint8_t src[6];
    if (pktgen_ctl_parse(mb, &m, src) != PKTGEN_CTL_OK) {
        a->io.bad++;
        return false;
    }
    if (memcmp(rte_pktmbuf_mtod(mb, const uint8_t *), a->io.mac, 6) != 0 || !same_trial(a, &m)) {
        a->io.ignored++;
        return false;
    }
    if (m.type == PKTGEN_CTL_START) {
        agent_reply(a, PKTGEN_CTL_ACK, a->status);
        return false;
    }
    return m.type == PKTGEN_CTL_STOP;
}

/* A generator's delay: the controller's sink gets ready. Repeated STARTs
 * are acknowledged meanwhile; the rest waits for the next turn. */
static void agent_delay(struct agent *a, unsigned ms)
{
    uint64_t hz = rte_get_tsc_hz();
    uint64_t end = rte_rdtsc() + hz * ms / 1000;
    while (!pg_stop) {
        uint64_t now = rte_rdtsc();
        if (now >= end)
            break;
        struct pktgen_ctl_msg m;
        uint8_t src[6];
        if (pg_ctl_recv(&a->io, (double)(end - now) / (double)hz, &m, src) == 1) {
            if (m.type == PKTGEN_CTL_START && same_trial(a, &m))
                agent_reply(a, PKTGEN_CTL_ACK, a->status);
            else
                a->io.ignored++;
        }
    }
}

static void agent_run(struct agent *a, const struct pktgen_ctl_start *s, struct pg_ports *ports)
{
    struct pg_opts o = *a->base;
    o.rx = false;
    o.quiet = true;
    o.json_path = o.csv_path = NULL;
    o.stream = s->stream;
    o.stream_only = true;
    o.count = s->count;
    o.duration_s = s->duration_ms / 1000.0;
    o.ctl = NULL;
    switch (s->role) {
    case PKTGEN_CTL_ROLE_GEN:
        o.role = PG_GEN;
        o.imix = (s->flags & PKTGEN_CTL_F_IMIX) != 0;
        o.frame_len = o.imix ? 64 : s->frame_len;
        o.rate = s->flags & PKTGEN_CTL_F_UNPACED
                     ? (struct pktgen_rate){.kind = PKTGEN_RATE_UNLIMITED}
                     : (struct pktgen_rate){.kind = PKTGEN_RATE_PPS, .value = (double)s->rate_pps};
        pg_range_single(&o.flow.src_mac, pg_mac_to_u64(a->io.mac));
        pg_range_single(&o.flow.dst_mac, pg_mac_to_u64(s->dst_mac));
        pg_range_single(&o.flow.src_ip, s->src_ip);
        pg_range_single(&o.flow.dst_ip, s->dst_ip);
        pg_range_single(&o.flow.src_port, s->src_port);
        pg_range_single(&o.flow.dst_port, s->dst_port);
        agent_delay(a, s->delay_ms);
        break;
    case PKTGEN_CTL_ROLE_SINK:
    case PKTGEN_CTL_ROLE_REFLECT:
        o.role = s->role == PKTGEN_CTL_ROLE_SINK ? PG_SINK : PG_REFLECT;
        o.ctl = agent_ctl_hook;
        o.ctl_arg = a;
        break;
    }
    static struct pg_result r;
    int rc = pg_run(&o, ports, &r);
    memset(&a->rep, 0, sizeof(a->rep));
    a->done = true;
    if (rc < 0) {
        fprintf(stderr, "pktgen agent: trial %u: %s\n", a->trial, strerror(-rc));
        return;
    }
    struct pktgen_ctl_report *p = &a->rep;
    p->tx_frames = r.tx_frames;
    p->tx_bytes = r.tx_bytes;
    p->tx_refused = r.tx_refused;
    p->rx_frames = r.rx_frames;
    p->rx_bytes = r.rx_bytes;
    p->lost = r.lost;
    p->reordered = r.reordered;
    /* Frames that are not distinct: the controller subtracts them. */
    p->duplicates = r.duplicates + r.late + r.bad_seq;
    p->lat_count = r.lat.count;
    static const double pct[5] = {50, 90, 99, 99.9, 100};
    for (int i = 0; i < 5; i++)
        p->lat_ns[i] = pktgen_hist_percentile(&r.lat, pct[i]);
    uint64_t frames = o.role == PG_SINK ? r.rx_frames : r.tx_frames;
    p->achieved_mpps_milli = r.seconds > 0 ? (uint64_t)((double)frames / r.seconds * 1000) : 0;
    p->duration_us = (uint64_t)(r.seconds * 1e6);
    if (!a->base->quiet)
        fprintf(stderr, "pktgen agent: trial %u done: sent %llu, received %llu%s\n", a->trial,
                (unsigned long long)r.tx_frames, (unsigned long long)r.rx_frames,
                r.ctl_ended ? " (stopped)" : "");
    /* A sink or reflector stopped by the controller, and a generator,
     * whose end the controller waits for, report at once. */
    if (r.ctl_ended || o.role == PG_GEN)
        agent_reply(a, PKTGEN_CTL_REPORT, 0);
}

static void agent_handle(struct agent *a, const struct pktgen_ctl_msg *m, const uint8_t src[6],
                         struct pg_ports *ports)
{
    switch (m->type) {
    case PKTGEN_CTL_START: {
        if (same_trial(a, m)) {
            memcpy(a->ctrl, src, 6);
            agent_reply(a, PKTGEN_CTL_ACK, a->status);
            return;
        }
        const struct pktgen_ctl_start *s = &m->u.start;
        a->have = true;
        a->done = false;
        a->nonce = m->nonce;
        a->trial = m->trial;
        memcpy(a->ctrl, src, 6);
        /* The transmit pool's buffers hold frames up to max_frame. */
        bool imix = s->flags & PKTGEN_CTL_F_IMIX;
        a->status = s->role == PKTGEN_CTL_ROLE_GEN && (imix ? 1518 : s->frame_len) > a->max_frame
                        ? EMSGSIZE
                        : 0;
        agent_reply(a, PKTGEN_CTL_ACK, a->status);
        if (a->status) {
            memset(&a->rep, 0, sizeof(a->rep));
            a->done = true;
            return;
        }
        agent_run(a, s, ports);
        return;
    }
    case PKTGEN_CTL_STOP:
        if (same_trial(a, m) && a->done) {
            memcpy(a->ctrl, src, 6);
            agent_reply(a, PKTGEN_CTL_REPORT, 0);
        } else {
            /* Not a trial this agent has (it restarted): say so. */
            struct agent other = *a;
            other.nonce = m->nonce;
            other.trial = m->trial;
            memcpy(other.ctrl, src, 6);
            agent_reply(&other, PKTGEN_CTL_ACK, ESRCH);
        }
        return;
    default:
        a->io.ignored++;
    }
}

int pg_agent(const struct pg_opts *o, struct pg_ports *ports)
{
    static struct agent a;
    memset(&a, 0, sizeof(a));
    a.io.ports = ports;
    a.base = o;
    pg_mac_from_u64(o->flow.src_mac.lo, a.io.mac);
    a.max_frame = (uint16_t)(rte_pktmbuf_data_room_size(ports->tx_pool) - RTE_PKTMBUF_HEADROOM);
    if (!o->quiet)
        fprintf(stderr, "pktgen agent: %02x:%02x:%02x:%02x:%02x:%02x waiting for a controller\n",
                a.io.mac[0], a.io.mac[1], a.io.mac[2], a.io.mac[3], a.io.mac[4], a.io.mac[5]);
    while (!pg_stop) {
        struct pktgen_ctl_msg m;
        uint8_t src[6];
        if (pg_ctl_recv(&a.io, 0.1, &m, src) == 1)
            agent_handle(&a, &m, src, ports);
    }
    if (!o->quiet)
        fprintf(stderr, "pktgen agent: %llu bad control frames, %llu ignored\n",
                (unsigned long long)a.io.bad, (unsigned long long)a.io.ignored);
    return 0;
}
