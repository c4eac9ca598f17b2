/*
 * The adaptive polling window (hv-poll.h).
 */
#include "hv-poll.h"

void hv_poll_window_init(struct hv_poll_window *w, uint64_t min, uint64_t max)
{
    w->min = min;
    w->max = max < min ? min : max;
    w->cur = min;
}

uint64_t hv_poll_window_work(struct hv_poll_window *w, uint64_t gap)
{
    if (gap <= w->max) {
        /* gap <= max, so gap * HV_POLL_GROW cannot wrap unless max is
         * beyond any real time span; the division keeps it exact. */
        uint64_t want = gap > w->max / HV_POLL_GROW ? w->max : gap * HV_POLL_GROW;
        if (want > w->cur)
            w->cur = want;
    } else {
        w->cur /= 2;
        if (w->cur < w->min)
            w->cur = w->min;
    }
    return w->cur;
}
