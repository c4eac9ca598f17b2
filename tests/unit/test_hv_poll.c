/*
 * Unit tests of the adaptive polling window (hv-poll.h): it grows to cover
 * the gaps of traffic that keeps flowing, never beyond its cap, halves back
 * towards its minimum when traffic stops, and a request/response pattern
 * (a short gap then a long one, as ping makes) keeps a window that covers
 * the short gap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hv-poll.h"

#define US 1000ull

static void init__starts_at_min(void **state)
{
    (void)state;
    struct hv_poll_window w;
    hv_poll_window_init(&w, 75 * US, 2000 * US);
    assert_int_equal(w.cur, 75 * US);
    assert_int_equal(w.min, 75 * US);
    assert_int_equal(w.max, 2000 * US);
}

static void init__max_below_min__max_is_min(void **state)
{
    (void)state;
    struct hv_poll_window w;
    hv_poll_window_init(&w, 200 * US, 100 * US);
    assert_int_equal(w.max, 200 * US);
    assert_int_equal(hv_poll_window_work(&w, 150 * US), 200 * US);
}

static void work__short_gap__grows_to_four_gaps(void **state)
{
    (void)state;
    struct hv_poll_window w;
    hv_poll_window_init(&w, 75 * US, 2000 * US);
    assert_int_equal(hv_poll_window_work(&w, 300 * US), 1200 * US);
}

static void work__tiny_gap__keeps_larger_window(void **state)
{
    (void)state;
    struct hv_poll_window w;
    hv_poll_window_init(&w, 75 * US, 2000 * US);
    hv_poll_window_work(&w, 300 * US);
    /* Back-to-back work does not shrink what a slower answer needed. */
    assert_int_equal(hv_poll_window_work(&w, 0), 1200 * US);
    assert_int_equal(hv_poll_window_work(&w, 10 * US), 1200 * US);
}

static void work__gap_near_max__capped(void **state)
{
    (void)state;
    struct hv_poll_window w;
    hv_poll_window_init(&w, 75 * US, 2000 * US);
    assert_int_equal(hv_poll_window_work(&w, 600 * US), 2000 * US);
    assert_int_equal(hv_poll_window_work(&w, 2000 * US), 2000 * US);
}

static void work__huge_max__no_wrap(void **state)
{
    (void)state;
    struct hv_poll_window w;
    hv_poll_window_init(&w, 1, UINT64_MAX);
    assert_int_equal(hv_poll_window_work(&w, UINT64_MAX / 2), UINT64_MAX);
    hv_poll_window_init(&w, 1, UINT64_MAX);
    assert_int_equal(hv_poll_window_work(&w, 1000), 4000);
}

static void work__long_gaps__halves_down_to_min(void **state)
{
    (void)state;
    struct hv_poll_window w;
    hv_poll_window_init(&w, 75 * US, 2000 * US);
    hv_poll_window_work(&w, 500 * US);
    assert_int_equal(w.cur, 2000 * US);
    /* Traffic stopped: each lone burst after a long silence halves it. */
    assert_int_equal(hv_poll_window_work(&w, 2001 * US), 1000 * US);
    assert_int_equal(hv_poll_window_work(&w, 10000 * US), 500 * US);
    assert_int_equal(hv_poll_window_work(&w, 10000 * US), 250 * US);
    assert_int_equal(hv_poll_window_work(&w, 10000 * US), 125 * US);
    assert_int_equal(hv_poll_window_work(&w, 10000 * US), 75 * US);
    assert_int_equal(hv_poll_window_work(&w, 10000 * US), 75 * US);
}

static void work__ping_pattern__covers_the_answer(void **state)
{
    (void)state;
    struct hv_poll_window w;
    hv_poll_window_init(&w, 75 * US, 2000 * US);
    /* A ping every 10 ms, answered 400 us after the request: after the
     * first answer taught it, the window left after a request (following a
     * long gap) still covers the answer's gap. */
    hv_poll_window_work(&w, 10000 * US);
    hv_poll_window_work(&w, 400 * US);
    for (int i = 0; i < 20; i++) {
        uint64_t after_request = hv_poll_window_work(&w, 10000 * US);
        assert_true(after_request >= 400 * US);
        hv_poll_window_work(&w, 400 * US);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init__starts_at_min),
        cmocka_unit_test(init__max_below_min__max_is_min),
        cmocka_unit_test(work__short_gap__grows_to_four_gaps),
        cmocka_unit_test(work__tiny_gap__keeps_larger_window),
        cmocka_unit_test(work__gap_near_max__capped),
        cmocka_unit_test(work__huge_max__no_wrap),
        cmocka_unit_test(work__long_gaps__halves_down_to_min),
        cmocka_unit_test(work__ping_pattern__covers_the_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
