/*
 * Unit tests for the RFC 2544 / RFC 9004 search (pktgen-search.h) against a
 * simulated device: a generator that reaches gen_max pps; a device that
 * forwards everything up to x1, loses band_loss of the frames between x1
 * and x2, and above x2 forwards x2 (the rest is lost); and, for bursts, a
 * buffer of `buffer` frames draining at x2.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pktgen-search.h"

struct sim {
    double gen_max, x1, x2, band_loss, buffer;
    unsigned dead_after; /* trials that work before every frame is lost; 0: never */
    unsigned calls;
    int hook_calls[2];   /* begin, end */
    bool in_hook;
    unsigned verify_in_hook;
};

static int sim_trial(void *arg, const struct pktgen_trial_req *req, struct pktgen_trial_res *res)
{
    struct sim *s = arg;
    s->calls++;
    memset(res, 0, sizeof(*res));
    double rate = req->rate_pps > 0 && req->rate_pps < s->gen_max ? req->rate_pps : s->gen_max;
    if (req->kind == PKTGEN_TRIAL_VERIFY && s->in_hook)
        s->verify_in_hook++;
    double lost;
    if (req->count) {
        res->tx = req->count;
        double fill = rate > s->x2 ? (double)req->count * (rate - s->x2) / rate : 0;
        lost = fill > s->buffer ? fill - s->buffer : 0;
        res->seconds = (double)req->count / rate;
    } else {
        res->tx = (uint64_t)(rate * req->seconds);
        if (rate <= s->x1)
            lost = 0;
        else if (rate <= s->x2)
            lost = (double)res->tx * s->band_loss;
        else
            lost = (double)res->tx * (rate - s->x2) / rate;
        res->seconds = req->seconds;
    }
    res->rx = res->tx - (uint64_t)ceil(lost);
    if (s->dead_after && s->calls > s->dead_after)
        res->rx = 0;
    res->tx_pps = rate;
    /* Latency grows with the rate: p50 = rate / 1000 ns, so the test can
     * tell which trial a figure came from. */
    for (int i = 0; i < PKTGEN_N_PCT; i++)
        res->lat_ns[i] = (uint64_t)(rate / 1000) + (uint64_t)i;
    return 0;
}

static void sim_hook(void *arg, bool begin)
{
    struct sim *s = arg;
    s->hook_calls[begin ? 0 : 1]++;
    s->in_hook = begin;
}

static struct pktgen_search_cfg cfg_for(struct sim *s)
{
    return (struct pktgen_search_cfg){.trial_s = 1, .resolution_pct = 1, .pdr_loss_pct = 0.5,
                                      .b2b_trials = 3, .trial = sim_trial, .hook = sim_hook,
                                      .arg = s};
}

static void assert_within(double got, double truth, double tol)
{
    if (!(got <= truth + 1e-6 && got >= truth - tol))
        fail_msg("got %.1f, want %.1f - %.1f .. %.1f", got, truth, tol, truth);
}

static void pktgen_search_run__loss_above_x__ndr_pdr_within_resolution(void **state)
{
    (void)state;
    struct sim s = {.gen_max = 10e6, .x1 = 4e6, .x2 = 4e6, .buffer = 2000};
    struct pktgen_search_cfg c = cfg_for(&s);
    struct pktgen_search_result r;
    assert_int_equal(pktgen_search_run(&c, &r), 0);
    assert_true(r.ceiling_pps == 10e6);
    assert_false(r.generator_limited);
    assert_true(r.resolution_pps == 100e3);
    assert_within(r.ndr_pps, 4e6, 100e3);
    /* Loss (r - 4M) / r <= 0.5 % up to 4M / 0.995. */
    assert_within(r.pdr_pps, 4e6 / 0.995, 100e3);
    assert_true(r.pdr_pps >= r.ndr_pps);
    assert_true(r.ndr_verified);
    /* Every trial is kept, the first one unpaced. */
    assert_true(r.n_trials == s.calls);
    assert_int_equal(r.trials[0].req.kind, PKTGEN_TRIAL_CEILING);
    assert_true(r.trials[0].req.rate_pps == 0);
    pktgen_search_result_free(&r);
}

static void pktgen_search_run__lossy_band__pdr_above_band_ndr_below(void **state)
{
    (void)state;
    struct sim s = {.gen_max = 10e6, .x1 = 3e6, .x2 = 5e6, .band_loss = 0.003, .buffer = 100};
    struct pktgen_search_cfg c = cfg_for(&s);
    c.resolution_pps = 50e3;
    struct pktgen_search_result r;
    assert_int_equal(pktgen_search_run(&c, &r), 0);
    assert_true(r.resolution_pps == 50e3);
    assert_within(r.ndr_pps, 3e6, 50e3);
    assert_within(r.pdr_pps, 5e6 / 0.995, 50e3);
    pktgen_search_result_free(&r);

    /* With a PDR loss under the band's, the band fails the PDR too. */
    c.pdr_loss_pct = 0.2;
    s.calls = 0;
    assert_int_equal(pktgen_search_run(&c, &r), 0);
    assert_within(r.pdr_pps, 3e6, 50e3);
    pktgen_search_result_free(&r);
}

static void pktgen_search_run__loss_steps__stop_after_two_lossless(void **state)
{
    (void)state;
    struct sim s = {.gen_max = 10e6, .x1 = 4e6, .x2 = 4e6, .buffer = 2000};
    struct pktgen_search_cfg c = cfg_for(&s);
    struct pktgen_search_result r;
    assert_int_equal(pktgen_search_run(&c, &r), 0);
    /* 100..50 % lose (5 Mpps > 4), 40 % and 30 % do not: then stop. */
    assert_int_equal(r.n_loss_steps, 8);
    for (unsigned i = 0; i < r.n_loss_steps; i++) {
        unsigned pct = 100 - 10 * i;
        assert_int_equal(r.loss_steps[i].pct, pct);
        double rate = 10e6 * pct / 100;
        assert_true(fabs(r.loss_steps[i].offered_pps - rate) < 1);
        double want = rate > 4e6 ? 100 * (rate - 4e6) / rate : 0;
        assert_true(fabs(r.loss_steps[i].loss_pct - want) < 0.01);
    }
    pktgen_search_result_free(&r);

    /* A lossless step between lossy ones does not count towards the two. */
    s = (struct sim){.gen_max = 10e6, .x1 = 8.5e6, .x2 = 9.5e6, .band_loss = 0.01};
    c = cfg_for(&s);
    c.b2b_trials = 0;
    assert_int_equal(pktgen_search_run(&c, &r), 0);
    /* 100 lossy, 90 band-lossy, 80 and 70 lossless. */
    assert_int_equal(r.n_loss_steps, 4);
    assert_true(r.loss_steps[1].loss_pct > 0);
    assert_true(r.loss_steps[2].loss_pct == 0 && r.loss_steps[3].loss_pct == 0);
    pktgen_search_result_free(&r);
}

static void pktgen_search_run__no_loss_steps__none_run_rest_unchanged(void **state)
{
    (void)state;
    struct sim s = {.gen_max = 10e6, .x1 = 4e6, .x2 = 4e6, .buffer = 2000};
    struct pktgen_search_cfg c = cfg_for(&s);
    c.no_loss_steps = true;
    struct pktgen_search_result r;
    assert_int_equal(pktgen_search_run(&c, &r), 0);
    assert_int_equal(r.n_loss_steps, 0);
    for (unsigned i = 0; i < r.n_trials; i++)
        assert_int_not_equal(r.trials[i].req.kind, PKTGEN_TRIAL_LOSS_STEP);
    assert_within(r.ndr_pps, 4e6, 100e3);
    assert_true(r.have_latency);
    assert_true(r.b2b_runs == 3);
    pktgen_search_result_free(&r);
}

static void pktgen_search_run__buffer__back_to_back_and_buffer_time(void **state)
{
    (void)state;
    struct sim s = {.gen_max = 10e6, .x1 = 4e6, .x2 = 4e6, .buffer = 2000};
    struct pktgen_search_cfg c = cfg_for(&s);
    struct pktgen_search_result r;
    assert_int_equal(pktgen_search_run(&c, &r), 0);
    /* The buffer fills at 6 of every 10 frames: 2000 / 0.6 frames fit. */
    double truth = 2000 / 0.6;
    assert_int_equal(r.b2b_runs, 3);
    assert_false(r.b2b_capped);
    assert_true(r.b2b_frames <= truth && r.b2b_frames >= truth * 0.98);
    /* 2000 frames drained at 4 Mpps: 500 us (the NDR is within 1 % of the
     * ceiling below 4 Mpps, which moves the figure by a few %). */
    assert_true(r.b2b_buffer_us > 480 && r.b2b_buffer_us < 530);
    unsigned b2b = 0;
    for (size_t i = 0; i < r.n_trials; i++)
        if (r.trials[i].req.kind == PKTGEN_TRIAL_B2B) {
            b2b++;
            assert_true(r.trials[i].req.count > 0 && r.trials[i].req.rate_pps == 0);
        }
    assert_true(b2b > 3);
    pktgen_search_result_free(&r);
}

static void pktgen_search_run__generator_limited__said_and_b2b_capped(void **state)
{
    (void)state;
    struct sim s = {.gen_max = 2e6, .x1 = 20e6, .x2 = 20e6, .buffer = 10};
    struct pktgen_search_cfg c = cfg_for(&s);
    struct pktgen_search_result r;
    assert_int_equal(pktgen_search_run(&c, &r), 0);
    assert_true(r.generator_limited);
    assert_true(r.ndr_pps == 2e6 && r.pdr_pps == 2e6);
    assert_true(r.b2b_capped);
    assert_true(r.b2b_frames == 4e6); /* 2 s at the ceiling */
    assert_true(r.b2b_buffer_us < 0);
    /* No rate search: ceiling, verify, 3 latency, 2 loss steps, 1 burst. */
    assert_int_equal(r.n_trials, 8);
    pktgen_search_result_free(&r);
}

static void pktgen_search_run__verify_and_latency__hook_wraps_verify_only(void **state)
{
    (void)state;
    struct sim s = {.gen_max = 10e6, .x1 = 4e6, .x2 = 4e6, .buffer = 2000};
    struct pktgen_search_cfg c = cfg_for(&s);
    struct pktgen_search_result r;
    assert_int_equal(pktgen_search_run(&c, &r), 0);
    assert_int_equal(s.hook_calls[0], 1);
    assert_int_equal(s.hook_calls[1], 1);
    assert_int_equal(s.verify_in_hook, 1);
    assert_true(r.have_latency);
    unsigned seen = 0;
    for (size_t i = 0; i < r.n_trials; i++) {
        const struct pktgen_trial *t = &r.trials[i];
        if (t->req.kind == PKTGEN_TRIAL_VERIFY)
            assert_true(t->req.rate_pps == r.ndr_pps);
        if (t->req.kind != PKTGEN_TRIAL_LATENCY)
            continue;
        assert_true(fabs(t->req.rate_pps - r.ndr_pps * r.lat_pct[seen] / 100) < 1);
        assert_int_equal(r.lat_ns[seen][PKTGEN_P50], (uint64_t)(t->req.rate_pps / 1000));
        assert_int_equal(r.lat_ns[seen][PKTGEN_PMAX], (uint64_t)(t->req.rate_pps / 1000) + 4);
        seen++;
    }
    assert_int_equal(seen, 3);
    assert_int_equal(r.lat_pct[0], 10);
    assert_int_equal(r.lat_pct[1], 50);
    assert_int_equal(r.lat_pct[2], 90);
    pktgen_search_result_free(&r);
}

static void pktgen_search_run__nothing_received__eio_not_zero_ndr(void **state)
{
    (void)state;
    struct sim s = {.gen_max = 10e6, .x1 = 4e6, .x2 = 4e6, .dead_after = 0};
    struct pktgen_search_cfg c = cfg_for(&s);
    struct pktgen_search_result r;
    /* Dead from the first trial. */
    s.dead_after = 0;
    s.x1 = s.x2 = 0;
    s.gen_max = 10e6;
    /* x2 = 0: everything above 0 is lost. */
    assert_int_equal(pktgen_search_run(&c, &r), -EIO);
    assert_int_equal(r.n_trials, 1);
    assert_true(r.ndr_pps == 0);
    pktgen_search_result_free(&r);

    /* Gone in the middle of the NDR search. */
    s = (struct sim){.gen_max = 10e6, .x1 = 4e6, .x2 = 4e6, .dead_after = 3};
    c = cfg_for(&s);
    assert_int_equal(pktgen_search_run(&c, &r), -EIO);
    assert_int_equal(r.n_trials, 4);
    assert_int_equal(s.calls, 4);
    assert_int_equal(s.hook_calls[0], 0);
    pktgen_search_result_free(&r);
}

static void pktgen_search_run__loss_at_every_rate__ndr_zero_pdr_found(void **state)
{
    (void)state;
    /* 0.1 % lost at any rate up to 5 Mpps: frames flow (not an error), yet
     * no rate is lossless. */
    struct sim s = {.gen_max = 10e6, .x1 = 0, .x2 = 5e6, .band_loss = 0.001, .buffer = 100};
    struct pktgen_search_cfg c = cfg_for(&s);
    c.b2b_trials = 0;
    struct pktgen_search_result r;
    assert_int_equal(pktgen_search_run(&c, &r), 0);
    assert_true(r.ndr_pps == 0);
    assert_within(r.pdr_pps, 5e6 / 0.995, 100e3);
    assert_false(r.have_latency);
    assert_false(r.ndr_verified);
    assert_int_equal(s.hook_calls[0], 0);
    /* The loss steps never see two lossless steps: all ten run. */
    assert_int_equal(r.n_loss_steps, 10);
    pktgen_search_result_free(&r);
}

static int failing_trial(void *arg, const struct pktgen_trial_req *req,
                         struct pktgen_trial_res *res)
{
    (void)arg;
    (void)req;
    (void)res;
    return -ETIMEDOUT;
}

static void pktgen_search_run__bad_cfg_or_trial_error__returned(void **state)
{
    (void)state;
    struct sim s = {.gen_max = 10e6, .x1 = 4e6, .x2 = 4e6};
    struct pktgen_search_result r;
    struct pktgen_search_cfg c = cfg_for(&s);
    c.trial_s = 0;
    assert_int_equal(pktgen_search_run(&c, &r), -EINVAL);
    c = cfg_for(&s);
    c.resolution_pct = 0;
    assert_int_equal(pktgen_search_run(&c, &r), -EINVAL);
    c = cfg_for(&s);
    c.pdr_loss_pct = 100;
    assert_int_equal(pktgen_search_run(&c, &r), -EINVAL);
    c = cfg_for(&s);
    c.trial = NULL;
    assert_int_equal(pktgen_search_run(&c, &r), -EINVAL);
    assert_int_equal(s.calls, 0);
    c = cfg_for(&s);
    c.trial = failing_trial;
    assert_int_equal(pktgen_search_run(&c, &r), -ETIMEDOUT);
    assert_int_equal(r.n_trials, 0);
    pktgen_search_result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pktgen_search_run__loss_above_x__ndr_pdr_within_resolution),
        cmocka_unit_test(pktgen_search_run__lossy_band__pdr_above_band_ndr_below),
        cmocka_unit_test(pktgen_search_run__loss_steps__stop_after_two_lossless),
        cmocka_unit_test(pktgen_search_run__no_loss_steps__none_run_rest_unchanged),
        cmocka_unit_test(pktgen_search_run__buffer__back_to_back_and_buffer_time),
        cmocka_unit_test(pktgen_search_run__generator_limited__said_and_b2b_capped),
        cmocka_unit_test(pktgen_search_run__verify_and_latency__hook_wraps_verify_only),
        cmocka_unit_test(pktgen_search_run__nothing_received__eio_not_zero_ndr),
        cmocka_unit_test(pktgen_search_run__loss_at_every_rate__ndr_zero_pdr_found),
        cmocka_unit_test(pktgen_search_run__bad_cfg_or_trial_error__returned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
