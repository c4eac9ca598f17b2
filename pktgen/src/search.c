/* The RFC 2544 / RFC 9004 search over a trial callback (pktgen-search.h).
 * Binary search, not MLRsearch: with a known ceiling and a resolution of
 * 1 % it needs about 7 trials per rate, and its result is easy to check. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pktgen-search.h"

const char *const pktgen_trial_kind_names[PKTGEN_TRIAL_N_KINDS] = {
    "ceiling", "ndr", "pdr", "verify", "latency", "loss_step", "back_to_back",
};

/* RFC 9004 asks for bursts of at least 2 s worth of frames before a device
 * counts as not buffer-limited. */
#define B2B_MAX_SECONDS 2.0

struct search {
    const struct pktgen_search_cfg *cfg;
    struct pktgen_search_result *out;
    size_t cap;
    /* For the estimate of the time left. */
    unsigned trials_left;
};

double pktgen_trial_loss_pct(const struct pktgen_trial_res *res)
{
    if (res->tx == 0 || res->rx >= res->tx)
        return 0;
    return 100.0 * (double)(res->tx - res->rx) / (double)res->tx;
}

int pktgen_search_cfg_check(const struct pktgen_search_cfg *cfg)
{
    if (!cfg->trial || !(cfg->trial_s > 0) || !isfinite(cfg->trial_s))
        return -EINVAL;
    if (cfg->resolution_pps > 0 ? !isfinite(cfg->resolution_pps)
                                : !(cfg->resolution_pct > 0 && cfg->resolution_pct <= 50))
        return -EINVAL;
    if (!(cfg->pdr_loss_pct >= 0 && cfg->pdr_loss_pct < 100))
        return -EINVAL;
    return 0;
}

static int run_trial(struct search *s, enum pktgen_trial_kind kind, double rate, uint64_t count,
                     struct pktgen_trial **out)
{
    struct pktgen_search_result *r = s->out;
    if (r->n_trials == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        struct pktgen_trial *t = realloc(r->trials, cap * sizeof(*t));
        if (!t)
            return -ENOMEM;
        r->trials = t;
        s->cap = cap;
    }
    struct pktgen_trial *t = &r->trials[r->n_trials];
    memset(t, 0, sizeof(*t));
    t->req = (struct pktgen_trial_req){.kind = kind, .rate_pps = rate,
                                       .seconds = count ? 0 : s->cfg->trial_s, .count = count};
    int rc = s->cfg->trial(s->cfg->arg, &t->req, &t->res);
    if (rc < 0)
        return rc;
    r->n_trials++;
    t->loss_pct = pktgen_trial_loss_pct(&t->res);
    if (s->trials_left)
        s->trials_left--;
    if (s->cfg->progress)
        s->cfg->progress(s->cfg->arg, t, s->trials_left * s->cfg->trial_s);
    /* Nothing sent, or nothing at all came back: the path or the agent is
     * gone; no rate follows from that. */
    if (t->res.tx == 0 || t->res.rx == 0)
        return -EIO;
    *out = t;
    return 0;
}

static unsigned steps(double width, double res)
{
    unsigned n = 0;
    while (width > res && n < 64) {
        width /= 2;
        n++;
    }
    return n;
}

struct bounds {
    double pass, fail; /* highest rate known to pass, lowest known to fail */
};

static void bounds_note(struct bounds *b, double rate, bool pass)
{
    if (pass && rate > b->pass)
        b->pass = rate;
    if (!pass && rate < b->fail)
        b->fail = rate;
}

/* NDR then PDR; every trial narrows both (loss grows with the rate). */
static int search_rates(struct search *s, const struct pktgen_trial *ceil_trial)
{
    struct pktgen_search_result *r = s->out;
    double res = r->resolution_pps, pdr = s->cfg->pdr_loss_pct;
    struct bounds ndr = {0, r->ceiling_pps}, pdrb = {0, r->ceiling_pps};
    bounds_note(&ndr, r->ceiling_pps, ceil_trial->loss_pct == 0);
    bounds_note(&pdrb, r->ceiling_pps, ceil_trial->loss_pct <= pdr);
    s->trials_left = steps(ndr.fail - ndr.pass, res) + steps(pdrb.fail - pdrb.pass, res) + 4 +
                     PKTGEN_LOSS_STEPS;
    for (int which = 0; which < 2; which++) {
        struct bounds *b = which == 0 ? &ndr : &pdrb;
        while (b->pass < b->fail && b->fail - b->pass > res) {
            double mid = (b->pass + b->fail) / 2;
            struct pktgen_trial *t;
            int rc = run_trial(s, which == 0 ? PKTGEN_TRIAL_NDR : PKTGEN_TRIAL_PDR, mid, 0, &t);
            if (rc < 0)
                return rc;
            bounds_note(&ndr, mid, t->loss_pct == 0);
            bounds_note(&pdrb, mid, t->loss_pct <= pdr);
            /* A rate that passes above one that failed (noise) moves the
             * failing bound up: the answer is the highest rate seen to pass. */
            if (ndr.fail < ndr.pass)
                ndr.fail = r->ceiling_pps;
            if (pdrb.fail < pdrb.pass)
                pdrb.fail = r->ceiling_pps;
        }
    }
    r->ndr_pps = ndr.pass;
    r->pdr_pps = pdrb.pass > ndr.pass ? pdrb.pass : ndr.pass;
    return 0;
}

static int search_b2b(struct search *s)
{
    struct pktgen_search_result *r = s->out;
    const struct pktgen_search_cfg *c = s->cfg;
    uint64_t max = c->b2b_max ? c->b2b_max : (uint64_t)(r->ceiling_pps * B2B_MAX_SECONDS);
    if (max < 1)
        max = 1;
    double res_pct = c->resolution_pps > 0 && r->ceiling_pps > 0
                         ? 100.0 * c->resolution_pps / r->ceiling_pps
                         : c->resolution_pct;
    double sum = 0;
    struct pktgen_trial *t;
    int rc = run_trial(s, PKTGEN_TRIAL_B2B, 0, max, &t);
    if (rc < 0)
        return rc;
    if (t->loss_pct == 0) {
        r->b2b_capped = true;
        r->b2b_runs = 1;
        r->b2b_frames = (double)max;
        r->b2b_buffer_us = -1;
        return 0;
    }
    for (unsigned run = 0; run < c->b2b_trials; run++) {
        uint64_t pass = 0, fail = max;
        for (;;) {
            uint64_t gap = (uint64_t)((double)pass * res_pct / 100);
            if (fail - pass <= (gap > 1 ? gap : 1))
                break;
            uint64_t mid = pass + (fail - pass) / 2;
            if ((rc = run_trial(s, PKTGEN_TRIAL_B2B, 0, mid, &t)) < 0)
                return rc;
            if (t->loss_pct == 0)
                pass = mid;
            else
                fail = mid;
        }
        sum += (double)pass;
    }
    r->b2b_runs = c->b2b_trials;
    r->b2b_frames = sum / c->b2b_trials;
    /* Frames arrive at the ceiling and leave at the NDR: the buffer filled
     * at (ceiling - NDR) for b2b_frames / ceiling seconds and drains at the
     * NDR (RFC 9004 section 3, corrected buffer time). */
    double R = r->ceiling_pps, T = r->ndr_pps;
    r->b2b_buffer_us = T > 0 && T < R ? r->b2b_frames / R * (R - T) / T * 1e6 : -1;
    return 0;
}

int pktgen_search_run(const struct pktgen_search_cfg *cfg, struct pktgen_search_result *out)
{
    memset(out, 0, sizeof(*out));
    out->b2b_buffer_us = -1;
    int rc = pktgen_search_cfg_check(cfg);
    if (rc < 0)
        return rc;
    struct search s = {.cfg = cfg, .out = out, .trials_left = 1};
    struct pktgen_trial *t;
    if ((rc = run_trial(&s, PKTGEN_TRIAL_CEILING, 0, 0, &t)) < 0)
        return rc;
    if (!(t->res.tx_pps > 0))
        return -EIO;
    out->ceiling_pps = t->res.tx_pps;
    out->generator_limited = t->loss_pct == 0;
    out->resolution_pps = cfg->resolution_pps > 0 ? cfg->resolution_pps
                                                   : out->ceiling_pps * cfg->resolution_pct / 100;
    if ((rc = search_rates(&s, t)) < 0)
        return rc;

    if (out->ndr_pps > 0) {
        if (cfg->hook)
            cfg->hook(cfg->arg, true);
        rc = run_trial(&s, PKTGEN_TRIAL_VERIFY, out->ndr_pps, 0, &t);
        if (cfg->hook)
            cfg->hook(cfg->arg, false);
        if (rc < 0)
            return rc;
        out->ndr_verified = t->loss_pct == 0;
        static const unsigned pcts[PKTGEN_LAT_POINTS] = {10, 50, 90};
        for (unsigned i = 0; i < PKTGEN_LAT_POINTS; i++) {
            if ((rc = run_trial(&s, PKTGEN_TRIAL_LATENCY, out->ndr_pps * pcts[i] / 100, 0, &t)) < 0)
                return rc;
            out->lat_pct[i] = pcts[i];
            memcpy(out->lat_ns[i], t->res.lat_ns, sizeof(out->lat_ns[i]));
        }
        out->have_latency = true;
    }

    unsigned lossless = 0;
    for (unsigned pct = 100; !cfg->no_loss_steps && pct >= 10 && lossless < 2; pct -= 10) {
        double rate = out->ceiling_pps * pct / 100;
        if ((rc = run_trial(&s, PKTGEN_TRIAL_LOSS_STEP, rate, 0, &t)) < 0)
            return rc;
        out->loss_steps[out->n_loss_steps++] =
            (struct pktgen_loss_step){.pct = pct, .offered_pps = rate, .loss_pct = t->loss_pct};
        lossless = t->loss_pct == 0 ? lossless + 1 : 0;
    }

    if (cfg->b2b_trials > 0 && (rc = search_b2b(&s)) < 0)
        return rc;
    return 0;
}

void pktgen_search_result_free(struct pktgen_search_result *r)
{
    free(r->trials);
    r->trials = NULL;
    r->n_trials = 0;
}
