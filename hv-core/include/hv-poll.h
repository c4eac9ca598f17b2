/*
 * An adaptive polling window: how long a polling loop keeps polling after
 * its last work before it arms its interrupts and sleeps. Pure
 * arithmetic in the caller's time unit (nanoseconds in hv-vm), so tests can
 * drive it.
 *
 * A request/response exchange (a ping, a TCP ACK) comes back after a gap of
 * a few hundred microseconds. A loop that sleeps before the answer pays a
 * wake-up for it; one that polls forever burns a core when nothing flows.
 * The window follows the gaps between bursts of work:
 *
 * - work after a gap no longer than `max` (traffic still flows): the window
 *   grows to HV_POLL_GROW times that gap (capped at `max`), so the next
 *   answer that takes as long finds the loop still polling even after one
 *   halving;
 * - work after a gap longer than `max` (traffic had stopped): the window
 *   halves, never below `min`. A loop that wakes only now and then thus
 *   polls `min` after each wake-up again within a few of them.
 *
 * The window never changes while nothing happens: an idle loop sleeps, and
 * sleeping costs nothing whatever the window.
 */
#ifndef HV_POLL_H
#define HV_POLL_H

#include <stdint.h>

/* The window grows to this many times an observed gap. */
#define HV_POLL_GROW 4u

struct hv_poll_window {
    uint64_t min; /* never polls less than this after work */
    uint64_t max; /* never more; gaps above it mean traffic stopped */
    uint64_t cur; /* the window now, min <= cur <= max */
};

/* A window between min and max (max < min is taken as max = min), starting
 * at min. */
void hv_poll_window_init(struct hv_poll_window *w, uint64_t min, uint64_t max);

/* Work came after `gap` (time since the last work, slept or not): adapt
 * the window. Returns the new window. Call it when work follows a round
 * without work, not in every busy round (a gap of 0 changes nothing). */
uint64_t hv_poll_window_work(struct hv_poll_window *w, uint64_t gap);

#endif
