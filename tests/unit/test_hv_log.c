/*
 * Unit tests of the root's log rate limiter (hv-log.h): a burst per window
 * allowed, the rest suppressed and counted, the count reported with the next
 * line let through. The clock is the test's (hv_ratelimit_allow takes the
 * time; hv_log_limited reads hv_log_set_clock's), and lines are collected
 * through hv_log_set_sink, so nothing depends on real time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "hv-log.h"

#define MS 1000000ull

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
    return fake_now;
}

struct lines {
    unsigned n;
    char last[HV_LOG_LINE_MAX];
    char prev[HV_LOG_LINE_MAX];
};

static void collect(void *ctx, const char *line)
{
    struct lines *l = ctx;
    snprintf(l->prev, sizeof(l->prev), "%s", l->last);
    snprintf(l->last, sizeof(l->last), "%s", line);
    l->n++;
}

static int setup(void **state)
{
    struct lines *l = test_calloc(1, sizeof(*l));
    hv_log_set_sink(collect, l);
    hv_log_set_clock(fake_clock);
    fake_now = 1000 * MS;
    *state = l;
    return 0;
}

static int teardown(void **state)
{
    hv_log_set_sink(NULL, NULL);
    hv_log_set_clock(NULL);
    test_free(*state);
    return 0;
}

static void hv_ratelimit_allow__burst_then_more__burst_allowed_rest_suppressed(void **state)
{
    (void)state;
    struct hv_ratelimit rl;
    hv_ratelimit_init(&rl, 1000, 3);
    uint64_t missed = 99;
    for (int i = 0; i < 3; i++) {
        assert_true(hv_ratelimit_allow(&rl, 5000 * MS + (uint64_t)i, &missed));
        assert_int_equal(missed, 0);
    }
    for (int i = 0; i < 7; i++)
        assert_false(hv_ratelimit_allow(&rl, 5100 * MS, &missed));
    assert_int_equal(hv_ratelimit_suppressed(&rl), 7);
    /* Still the same window, 1 ns before it ends. */
    assert_false(hv_ratelimit_allow(&rl, 6000 * MS - 1, NULL));
    assert_int_equal(hv_ratelimit_suppressed(&rl), 8);
}

static void hv_ratelimit_allow__next_window__allowed_and_reports_suppressed(void **state)
{
    (void)state;
    struct hv_ratelimit rl;
    hv_ratelimit_init(&rl, 1000, 2);
    uint64_t missed = 0;
    assert_true(hv_ratelimit_allow(&rl, 0, &missed));
    assert_true(hv_ratelimit_allow(&rl, 1, &missed));
    for (int i = 0; i < 5; i++)
        assert_false(hv_ratelimit_allow(&rl, 2, &missed));
    assert_true(hv_ratelimit_allow(&rl, 1000 * MS, &missed));
    assert_int_equal(missed, 5);
    /* Reported once: the next line has nothing to report. */
    assert_true(hv_ratelimit_allow(&rl, 1000 * MS + 1, &missed));
    assert_int_equal(missed, 0);
    /* The total stays. */
    assert_int_equal(hv_ratelimit_suppressed(&rl), 5);
    assert_false(hv_ratelimit_allow(&rl, 1000 * MS + 2, &missed));
    assert_int_equal(hv_ratelimit_suppressed(&rl), 6);
}

static void hv_ratelimit_allow__zeroed__defaults(void **state)
{
    (void)state;
    struct hv_ratelimit rl;
    memset(&rl, 0, sizeof(rl));
    unsigned allowed = 0;
    for (int i = 0; i < 100; i++)
        allowed += hv_ratelimit_allow(&rl, 7 * MS, NULL);
    assert_int_equal(allowed, HV_RATELIMIT_BURST);
    assert_int_equal(hv_ratelimit_suppressed(&rl), 100 - HV_RATELIMIT_BURST);
    assert_false(hv_ratelimit_allow(&rl, 7 * MS + HV_RATELIMIT_INTERVAL_MS * MS - 1, NULL));
    assert_true(hv_ratelimit_allow(&rl, 7 * MS + HV_RATELIMIT_INTERVAL_MS * MS, NULL));
}

static void hv_log_limited__flood__burst_logged_then_suppressed_line(void **state)
{
    struct lines *l = *state;
    struct hv_ratelimit rl;
    hv_ratelimit_init(&rl, 5000, 4);
    unsigned logged = 0;
    for (int i = 0; i < 1000; i++)
        logged += hv_log_limited(&rl, "guest %s: record %d", "g1", i);
    assert_int_equal(logged, 4);
    assert_int_equal(l->n, 4);
    assert_string_equal(l->last, "guest g1: record 3");
    assert_int_equal(hv_ratelimit_suppressed(&rl), 996);
    fake_now += 5000 * MS;
    assert_true(hv_log_limited(&rl, "guest %s: record %d", "g1", 1000));
    assert_int_equal(l->n, 6);
    assert_string_equal(l->prev, "996 similar messages suppressed");
    assert_string_equal(l->last, "guest g1: record 1000");
}

static void hv_log__long_line__cut_to_line_max(void **state)
{
    struct lines *l = *state;
    char big[HV_LOG_LINE_MAX * 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    hv_log("%s", big);
    assert_int_equal(l->n, 1);
    assert_int_equal(strlen(l->last), HV_LOG_LINE_MAX - 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(hv_ratelimit_allow__burst_then_more__burst_allowed_rest_suppressed),
        T(hv_ratelimit_allow__next_window__allowed_and_reports_suppressed),
        T(hv_ratelimit_allow__zeroed__defaults),
        T(hv_log_limited__flood__burst_logged_then_suppressed_line),
        T(hv_log__long_line__cut_to_line_max),
    };
    return cmocka_run_group_tests_name("hv_log", tests, NULL, NULL);
}
