/* --search: the controller. Runs the search of pktgen-search.h per frame
 * size, each trial on the local port and on the agents named by MAC, and
 * writes one JSON document.
 *
 * A trial, whoever generates and whoever sinks:
 * 1. a remote sink or reflector is started first (START, ACK), with a
 *    duration bound well past the trial: a STOP ends it;
 * 2. the generator runs: locally (receiving too when no remote sink counts:
 *    pvp, or a plain reflector), or on the remote generator, which starts
 *    GEN_DELAY_MS after its ACK while this process sinks locally (v2p) or
 *    just waits (v2v);
 * 3. after the drain time, STOP to each agent; its REPORT gives its
 *    counters. Loss = frames the generator sent - distinct frames of the
 *    trial's stream the sink received.
 * Each trial has its own stream id (trial id mod PKTGEN_MAX_STREAMS), so
 * that a late frame of the previous trial does not count in this one.
 * Each request is sent up to CTL_TRIES times, CTL_TIMEOUT_S apart, until
 * the agent answers for this nonce and trial. */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>
#include <rte_cycles.h>
#include <rte_mbuf.h>
#include <rte_random.h>

#include "pktgen-ctl.h"
#include "pktgen-private.h"
#include "pktgen-search.h"

#define CTL_TRIES 10
#define CTL_TIMEOUT_S 0.25
#define GEN_DELAY_MS 300u
/* A remote sink or reflector ends at the STOP; its bound only sends it
 * back to waiting if this controller is gone. It allows for a generator
 * reaching a quarter of the rate it was asked for (a loaded CPU), and a
 * minute more. */
#define BOUND_SLOW 4.0
#define BOUND_EXTRA_S 60.0
/* The same for this process's wait for a remote generator's report (after
 * it, a STOP asks for the report again). */
#define LOCAL_EXTRA_S 10.0

extern char **environ;

struct ctrl {
    const struct pg_opts *o;
    const struct pg_search_opts *so;
    struct pg_ports *ports;
    struct pg_ctl_io io;
    uint64_t nonce;
    uint32_t trial_id;
    bool imix;
    uint16_t frame_len;
    char size_name[8];
    double ceiling_hint;
    struct pg_result res;
    bool have_gen_rep;   /* the remote generator reported by itself */
    struct pktgen_ctl_report gen_rep;
};

static const char *mac_str(const uint8_t m[6], char buf[18])
{
    snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
    return buf;
}

static const char *const type_names[] = {"?", "START", "ACK", "STOP", "REPORT"};

/* Sends `m` to dst until an answer of type `want` (or a refusing ACK) for
 * this nonce and trial comes from dst. 0, -ETIMEDOUT, -EINTR, or the
 * agent's refusal as -errno. */
static int request(struct ctrl *c, const uint8_t dst[6], const struct pktgen_ctl_msg *m,
                   uint8_t want, struct pktgen_ctl_msg *reply)
{
    uint64_t hz = rte_get_tsc_hz();
    for (int t = 0; t < CTL_TRIES && !pg_stop; t++) {
        int sent = pg_ctl_send(&c->io, dst, m);
        if (sent < 0 && t == 0)
            fprintf(stderr, "pktgen search: cannot send a control frame: %s\n", strerror(-sent));
        uint64_t end = rte_rdtsc() + (uint64_t)(CTL_TIMEOUT_S * (double)hz);
        for (;;) {
            uint64_t now = rte_rdtsc();
            if (now >= end)
                break;
            uint8_t src[6];
            if (pg_ctl_recv(&c->io, (double)(end - now) / (double)hz, reply, src) != 1)
                break;
            if (reply->nonce != m->nonce || reply->trial != m->trial || memcmp(src, dst, 6) != 0) {
                c->io.ignored++;
                continue;
            }
            if (reply->type == PKTGEN_CTL_ACK && reply->status)
                return -(int)reply->status;
            if (reply->type == want)
                return 0;
            c->io.ignored++;
        }
    }
    if (pg_stop)
        return -EINTR;
    char b[18];
    fprintf(stderr, "pktgen search: no %s from agent %s to %s trial %u after %d tries\n",
            type_names[want], mac_str(dst, b), type_names[m->type], m->trial, CTL_TRIES);
    return -ETIMEDOUT;
}

static int start_remote(struct ctrl *c, const uint8_t dst[6], const struct pktgen_ctl_start *s)
{
    struct pktgen_ctl_msg m = {.type = PKTGEN_CTL_START, .nonce = c->nonce, .trial = c->trial_id};
    m.u.start = *s;
    struct pktgen_ctl_msg reply;
    int rc = request(c, dst, &m, PKTGEN_CTL_ACK, &reply);
    if (rc < 0 && rc != -ETIMEDOUT && rc != -EINTR) {
        char b[18];
        fprintf(stderr, "pktgen search: agent %s refused trial %u: %s\n", mac_str(dst, b),
                c->trial_id, strerror(-rc));
    }
    return rc;
}

static int stop_remote(struct ctrl *c, const uint8_t dst[6], struct pktgen_ctl_report *rep)
{
    struct pktgen_ctl_msg m = {.type = PKTGEN_CTL_STOP, .nonce = c->nonce, .trial = c->trial_id};
    struct pktgen_ctl_msg reply;
    int rc = request(c, dst, &m, PKTGEN_CTL_REPORT, &reply);
    if (rc == 0)
        *rep = reply.u.report;
    else if (rc == -ESRCH) {
        char b[18];
        fprintf(stderr, "pktgen search: agent %s does not know trial %u (restarted?)\n",
                mac_str(dst, b), c->trial_id);
    }
    return rc;
}

static bool is_gen_report(struct ctrl *c, const struct pktgen_ctl_msg *m, const uint8_t src[6])
{
    return m->type == PKTGEN_CTL_REPORT && m->nonce == c->nonce && m->trial == c->trial_id &&
           memcmp(src, c->so->remote_gen, 6) == 0;
}

/* The local sink's look at control frames: the remote generator's report
 * ends the sink (the drain follows). */
static bool ctrl_gen_done(void *arg, const struct rte_mbuf *mb)
{
    struct ctrl *c = arg;
    struct pktgen_ctl_msg m;
    uint8_t src[6];
    if (pktgen_ctl_parse(mb, &m, src) != PKTGEN_CTL_OK) {
        c->io.bad++;
        return false;
    }
    if (memcmp(rte_pktmbuf_mtod(mb, const uint8_t *), c->io.mac, 6) != 0 ||
        !is_gen_report(c, &m, src)) {
        c->io.ignored++;
        return false;
    }
    c->gen_rep = m.u.report;
    c->have_gen_rep = true;
    return true;
}

/* v2v: waits up to `seconds` for the remote generator's report. */
static void wait_gen_done(struct ctrl *c, double seconds)
{
    struct pktgen_ctl_msg m;
    uint8_t src[6];
    uint64_t hz = rte_get_tsc_hz();
    uint64_t end = rte_rdtsc() + (uint64_t)(seconds * (double)hz);
    for (uint64_t now = rte_rdtsc(); now < end && !pg_stop; now = rte_rdtsc()) {
        if (pg_ctl_recv(&c->io, (double)(end - now) / (double)hz, &m, src) != 1)
            continue;
        if (is_gen_report(c, &m, src)) {
            c->gen_rep = m.u.report;
            c->have_gen_rep = true;
            return;
        }
        c->io.ignored++;
    }
}

/* Waits, dropping what arrives (late data frames). */
static void idle(struct ctrl *c, double seconds)
{
    struct pktgen_ctl_msg m;
    uint8_t src[6];
    uint64_t hz = rte_get_tsc_hz();
    uint64_t end = rte_rdtsc() + (uint64_t)(seconds * (double)hz);
    for (uint64_t now = rte_rdtsc(); now < end && !pg_stop; now = rte_rdtsc())
        if (pg_ctl_recv(&c->io, (double)(end - now) / (double)hz, &m, src) == 1)
            c->io.ignored++;
}

static void lat_from_hist(const struct pktgen_hist *h, uint64_t out[PKTGEN_N_PCT])
{
    static const double pct[PKTGEN_N_PCT] = {50, 90, 99, 99.9, 100};
    for (int i = 0; i < PKTGEN_N_PCT; i++)
        out[i] = pktgen_hist_percentile(h, pct[i]);
}

static void from_sink_report(const struct pktgen_ctl_report *rep, struct pktgen_trial_res *res)
{
    res->rx = rep->rx_frames - rep->duplicates;
    res->reordered = rep->reordered;
    res->duplicates = rep->duplicates;
    memcpy(res->lat_ns, rep->lat_ns, sizeof(res->lat_ns));
}

static int ctrl_trial(void *arg, const struct pktgen_trial_req *req, struct pktgen_trial_res *res)
{
    struct ctrl *c = arg;
    const struct pg_search_opts *so = c->so;
    memset(res, 0, sizeof(*res));
    c->trial_id++;
    uint16_t stream = (uint16_t)(c->trial_id % PKTGEN_MAX_STREAMS);
    double hint = c->ceiling_hint > 1000 ? c->ceiling_hint : 1000;
    double expect_s = req->count ? 2 * (double)req->count / hint + 0.1 : req->seconds;
    double drain = c->o->drain_s;
    double bound_s = GEN_DELAY_MS / 1000.0 + BOUND_SLOW * expect_s + drain + BOUND_EXTRA_S;
    uint32_t bound_ms = bound_s * 1000 < PKTGEN_CTL_MAX_DURATION_MS ? (uint32_t)(bound_s * 1000)
                                                                    : PKTGEN_CTL_MAX_DURATION_MS;
    int rc;

    struct pktgen_ctl_start listen = {.stream = stream, .duration_ms = bound_ms};
    if (so->have_sink) {
        listen.role = PKTGEN_CTL_ROLE_SINK;
        if ((rc = start_remote(c, so->remote_sink, &listen)) < 0)
            return rc;
    }
    if (so->have_reflect) {
        listen.role = PKTGEN_CTL_ROLE_REFLECT;
        if ((rc = start_remote(c, so->remote_reflect, &listen)) < 0)
            return rc;
    }

    struct pg_opts o = *c->o;
    o.quiet = true;
    o.json_path = o.csv_path = NULL;
    o.stream = stream;
    o.stream_only = true;
    o.imix = c->imix;
    o.frame_len = c->frame_len;
    o.count = req->count;
    o.duration_s = req->count ? 0 : req->seconds;
    o.ctl = NULL;
    struct pg_result *r = &c->res;
    struct pktgen_ctl_report rep;
    if (so->have_gen) {
        struct pktgen_ctl_start g = {
            .role = PKTGEN_CTL_ROLE_GEN,
            .flags = (uint8_t)((c->imix ? PKTGEN_CTL_F_IMIX : 0) |
                               (req->rate_pps > 0 ? 0 : PKTGEN_CTL_F_UNPACED)),
            .frame_len = c->imix ? 0 : c->frame_len, .stream = stream, .delay_ms = GEN_DELAY_MS,
            .duration_ms = req->count ? 0 : (uint32_t)ceil(req->seconds * 1000),
            .rate_pps = req->rate_pps > 0 ? (uint64_t)llround(req->rate_pps > 1 ? req->rate_pps : 1)
                                          : 0,
            .count = req->count,
            .src_ip = (uint32_t)o.flow.src_ip.lo, .dst_ip = (uint32_t)o.flow.dst_ip.lo,
            .src_port = (uint16_t)o.flow.src_port.lo, .dst_port = (uint16_t)o.flow.dst_port.lo};
        memcpy(g.dst_mac, so->have_sink ? so->remote_sink : c->io.mac, 6);
        if ((rc = start_remote(c, so->remote_gen, &g)) < 0)
            return rc;
        /* The agent reports by itself when it is done; until then this
         * process sinks (or waits), then drains. */
        c->have_gen_rep = false;
        double bound = GEN_DELAY_MS / 1000.0 + BOUND_SLOW * expect_s + drain + LOCAL_EXTRA_S;
        if (!so->have_sink) {
            o.role = PG_SINK;
            o.count = 0;
            o.duration_s = bound;
            o.ctl = ctrl_gen_done;
            o.ctl_arg = c;
            if ((rc = pg_run(&o, c->ports, r)) < 0)
                return rc;
            uint64_t rx = r->stream_rx, re = r->reordered;
            uint64_t dup = r->duplicates + r->late + r->bad_seq;
            struct pktgen_hist *lat = malloc(sizeof(*lat));
            if (!lat)
                return -ENOMEM;
            *lat = r->lat;
            o.ctl = NULL;
            o.duration_s = drain;
            if (drain > 0 && (rc = pg_run(&o, c->ports, r)) < 0) {
                free(lat);
                return rc;
            }
            if (drain > 0) {
                rx += r->stream_rx;
                re += r->reordered;
                dup += r->duplicates + r->late + r->bad_seq;
                pktgen_hist_merge(lat, &r->lat);
            }
            res->rx = rx;
            res->reordered = re;
            res->duplicates = dup;
            lat_from_hist(lat, res->lat_ns);
            free(lat);
        } else {
            wait_gen_done(c, bound);
            idle(c, drain);
        }
        if (c->have_gen_rep)
            rep = c->gen_rep;
        else if ((rc = stop_remote(c, so->remote_gen, &rep)) < 0)
            return rc;
        res->tx = rep.tx_frames;
        res->tx_pps = rep.achieved_mpps_milli / 1000.0;
        res->seconds = rep.duration_us / 1e6;
    } else {
        o.role = PG_GEN;
        o.rx = !so->have_sink;
        o.rate = req->rate_pps > 0
                     ? (struct pktgen_rate){.kind = PKTGEN_RATE_PPS, .value = req->rate_pps}
                     : (struct pktgen_rate){.kind = PKTGEN_RATE_UNLIMITED};
        if (so->have_sink)
            pg_range_single(&o.flow.dst_mac, pg_mac_to_u64(so->remote_sink));
        else if (so->have_reflect)
            pg_range_single(&o.flow.dst_mac, pg_mac_to_u64(so->remote_reflect));
        if ((rc = pg_run(&o, c->ports, r)) < 0)
            return rc;
        res->tx = r->tx_frames;
        res->seconds = r->seconds;
        res->tx_pps = r->seconds > 0 ? (double)r->tx_frames / r->seconds : 0;
        if (o.rx) {
            res->rx = r->stream_rx;
            res->reordered = r->reordered;
            res->duplicates = r->duplicates + r->late + r->bad_seq;
            lat_from_hist(&r->lat, res->lat_ns);
        } else {
            idle(c, drain);
        }
    }
    if (so->have_sink) {
        if ((rc = stop_remote(c, so->remote_sink, &rep)) < 0)
            return rc;
        from_sink_report(&rep, res);
    }
    /* The reflector's counts are its own business; STOP ends its trial. */
    if (so->have_reflect && (rc = stop_remote(c, so->remote_reflect, &rep)) < 0)
        return rc;
    if (req->kind == PKTGEN_TRIAL_CEILING)
        c->ceiling_hint = res->tx_pps;
    return pg_stop ? -EINTR : 0;
}

/* A paced trial whose generator reached less than 98 % of the rate asked. */
static bool gen_short(const struct pktgen_trial *t)
{
    return t->req.rate_pps > 0 && t->res.tx_pps < 0.98 * t->req.rate_pps;
}

static void ctrl_progress(void *arg, const struct pktgen_trial *t, double left_s)
{
    struct ctrl *c = arg;
    char offered[48];
    if (t->req.rate_pps > 0)
        snprintf(offered, sizeof(offered), "%.3f Mpps", t->req.rate_pps / 1e6);
    else
        snprintf(offered, sizeof(offered), "unpaced");
    char what[48] = "";
    if (t->req.count)
        snprintf(what, sizeof(what), " burst %llu", (unsigned long long)t->req.count);
    fprintf(stderr,
            "pktgen search: %s%s trial %u %s%s: offered %s (reached %.3f Mpps), sent %llu, "
            "received %llu, loss %.4f %%, ~%.0f s left for this size%s\n",
            c->size_name, c->imix ? "" : " B", c->trial_id, pktgen_trial_kind_names[t->req.kind], what, offered,
            t->res.tx_pps / 1e6, (unsigned long long)t->res.tx, (unsigned long long)t->res.rx,
            t->loss_pct, left_s, gen_short(t) ? " (generator short of the rate)" : "");
}

/* --trial-hook CMD, as `/bin/sh -c 'CMD "$@"' sh begin|end SIZE`. */
static void ctrl_hook(void *arg, bool begin)
{
    struct ctrl *c = arg;
    if (!c->so->hook_cmd)
        return;
    size_t n = strlen(c->so->hook_cmd) + 8;
    char *script = malloc(n);
    if (!script)
        return;
    snprintf(script, n, "%s \"$@\"", c->so->hook_cmd);
    char *argv[] = {"sh", "-c", script, "sh", begin ? "begin" : "end", c->size_name, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);
    int st = 0;
    if (rc == 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        free(script);
        return;
    }
    fprintf(stderr, "pktgen search: --trial-hook %s %s: %s\n", argv[4], c->size_name,
            rc ? strerror(rc) : "failed");
    free(script);
}

static json_t *lat_json(const uint64_t ns[PKTGEN_N_PCT])
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f}", "p50", ns[PKTGEN_P50] / 1e3, "p90",
                     ns[PKTGEN_P90] / 1e3, "p99", ns[PKTGEN_P99] / 1e3, "p99_9",
                     ns[PKTGEN_P99_9] / 1e3, "max", ns[PKTGEN_PMAX] / 1e3);
}

static double frame_bytes(const struct ctrl *c)
{
    if (!c->imix)
        return c->frame_len;
    double sum = 0;
    for (unsigned i = 0; i < PKTGEN_IMIX_LEN; i++)
        sum += pktgen_imix[i];
    return sum / PKTGEN_IMIX_LEN;
}

static json_t *size_json(const struct ctrl *c, const struct pktgen_search_result *r, int rc)
{
    double line = (frame_bytes(c) + PKTGEN_WIRE_OVERHEAD) * 8 / 1e9;
    json_t *trials = json_array();
    unsigned short_trials = 0;
    double ndr_achieved = 0;
    for (size_t i = 0; i < r->n_trials; i++) {
        const struct pktgen_trial *t = &r->trials[i];
        short_trials += gen_short(t);
        if (t->req.kind == PKTGEN_TRIAL_VERIFY)
            ndr_achieved = t->res.tx_pps;
        json_array_append_new(
            trials,
            json_pack("{s:s, s:f, s:I, s:f, s:I, s:I, s:f, s:f, s:I, s:I, s:o}", "kind",
                      pktgen_trial_kind_names[t->req.kind], "rate_mpps", t->req.rate_pps / 1e6,
                      "count", (json_int_t)t->req.count, "seconds", t->res.seconds, "tx",
                      (json_int_t)t->res.tx, "rx", (json_int_t)t->res.rx, "loss_pct", t->loss_pct,
                      "achieved_mpps", t->res.tx_pps / 1e6, "reordered",
                      (json_int_t)t->res.reordered, "duplicates", (json_int_t)t->res.duplicates,
                      "latency_us", lat_json(t->res.lat_ns)));
    }
    json_t *lat = json_object();
    if (r->have_latency)
        for (unsigned i = 0; i < PKTGEN_LAT_POINTS; i++) {
            char k[8];
            snprintf(k, sizeof(k), "%u", r->lat_pct[i]);
            json_object_set_new(lat, k, lat_json(r->lat_ns[i]));
        }
    json_t *steps = json_array();
    for (unsigned i = 0; i < r->n_loss_steps; i++)
        json_array_append_new(steps, json_pack("{s:i, s:f, s:f}", "pct", (int)r->loss_steps[i].pct,
                                               "offered_mpps", r->loss_steps[i].offered_pps / 1e6,
                                               "loss_pct", r->loss_steps[i].loss_pct));
    json_t *b2b = json_pack("{s:f, s:i, s:b, s:o}", "frames", r->b2b_frames, "trials",
                            (int)r->b2b_runs, "capped", r->b2b_capped, "buffer_us",
                            r->b2b_buffer_us >= 0 ? json_real(r->b2b_buffer_us) : json_null());
    json_t *j = json_pack(
        "{s:s, s:f, s:f, s:b, s:f, s:f, s:b, s:f, s:f, s:f, s:o, s:o, s:o, s:o}", "frame",
        c->size_name, "frame_bytes", frame_bytes(c), "ceiling_mpps", r->ceiling_pps / 1e6,
        "generator_limited", r->generator_limited, "ndr_mpps", r->ndr_pps / 1e6, "pdr_mpps",
        r->pdr_pps / 1e6, "ndr_verified", r->ndr_verified, "resolution_mpps",
        r->resolution_pps / 1e6, "gbps_at_ndr", r->ndr_pps * line, "gbps_at_pdr",
        r->pdr_pps * line, "latency_us", lat, "loss_steps", steps, "back_to_back", b2b,
        "trials", trials);
    /* The search judges the rate offered (asked for), as RFC 2544 does; a
     * generator that could not keep it up (a busy CPU) is reported here. */
    json_object_set_new(j, "ndr_achieved_mpps", json_real(ndr_achieved / 1e6));
    json_object_set_new(j, "generator_short_trials", json_integer(short_trials));
    if (rc < 0)
        json_object_set_new(j, "error", json_string(strerror(-rc)));
    return j;
}

static const char *scenario(const struct pg_search_opts *so)
{
    if (so->have_gen)
        return so->have_sink ? "v2v" : "v2p";
    if (so->have_sink)
        return "p2v";
    return "pvp";
}

int pg_search(const struct pg_opts *o, const struct pg_search_opts *so, struct pg_ports *ports)
{
    struct ctrl *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->o = o;
    c->so = so;
    c->ports = ports;
    c->io.ports = ports;
    for (int i = 5, v = 0; i >= 0; i--, v += 8)
        c->io.mac[i] = (uint8_t)(o->flow.src_mac.lo >> v);
    c->nonce = rte_rand();
    json_t *results = json_array();
    int rc = 0;
    for (unsigned i = 0; i < so->n_sizes && rc == 0; i++) {
        c->imix = so->sizes[i] == 0;
        c->frame_len = c->imix ? 64 : so->sizes[i];
        if (c->imix)
            snprintf(c->size_name, sizeof(c->size_name), "imix");
        else
            snprintf(c->size_name, sizeof(c->size_name), "%u", so->sizes[i]);
        c->ceiling_hint = 0;
        struct pktgen_search_cfg cfg = {
            .trial_s = so->trial_s, .resolution_pct = so->resolution_pct,
            .resolution_pps = so->resolution_pps, .pdr_loss_pct = so->pdr_loss_pct,
            .b2b_trials = so->b2b_trials, .no_loss_steps = so->no_loss_steps, .trial = ctrl_trial, .hook = ctrl_hook,
            .progress = ctrl_progress, .arg = c};
        struct pktgen_search_result r;
        rc = pktgen_search_run(&cfg, &r);
        if (rc == -EIO)
            fprintf(stderr, "pktgen search: %s%s: a trial received nothing at all (agent gone, "
                            "or no path from generator to sink): no result\n", c->size_name,
                    c->imix ? "" : " B");
        else if (rc < 0)
            fprintf(stderr, "pktgen search: %s%s: %s\n", c->size_name, c->imix ? "" : " B",
                    strerror(-rc));
        else
            printf("search %s%s: ceiling %.3f Mpps (%s), NDR %.3f Mpps%s, PDR %.3f Mpps, "
                   "%zu trials\n", c->size_name, c->imix ? "" : " B", r.ceiling_pps / 1e6,
                   r.generator_limited ? "generator-limited" : "device-limited", r.ndr_pps / 1e6,
                   r.ndr_verified ? "" : " (verification lost frames)", r.pdr_pps / 1e6,
                   r.n_trials);
        json_array_append_new(results, size_json(c, &r, rc));
        pktgen_search_result_free(&r);
    }
    fflush(stdout);
    json_t *doc = json_pack(
        "{s:s, s:s, s:f, s:f, s:f, s:f, s:i, s:b, s:s, s:I, s:I, s:o}", "mode", "search", "scenario",
        scenario(so), "trial_s", so->trial_s, "pdr_loss_pct", so->pdr_loss_pct,
        "resolution_pct", so->resolution_pps > 0 ? 0.0 : so->resolution_pct, "resolution_pps",
        so->resolution_pps, "b2b_trials", (int)so->b2b_trials, "loss_steps",
        !so->no_loss_steps, "line_rate",
        "frame bytes (no FCS) + 20 B preamble/SFD/IFG per frame", "ctl_bad",
        (json_int_t)c->io.bad, "ctl_ignored", (json_int_t)c->io.ignored, "results", results);
    if (rc < 0)
        json_object_set_new(doc, "error", json_string(strerror(-rc)));
    if (o->json_path && (!doc || json_dump_file(doc, o->json_path, JSON_INDENT(2)) < 0)) {
        fprintf(stderr, "pktgen search: cannot write %s\n", o->json_path);
        if (rc == 0)
            rc = -EIO;
    }
    json_decref(doc);
    free(c);
    return rc;
}
