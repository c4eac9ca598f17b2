/*
 * The root's log, and the rate limiter every line a guest can cause goes
 * through. libc only: hv-core uses it, and so does the DPDK side (netvsp,
 * vswitchd).
 *
 * A line goes to the sink: stderr by default, or a function the program sets
 * (vswitchd adds a timestamp and its name; tests count lines). A guest must
 * not be able to fill the root's log or disk, so a line whose cause is in a
 * guest's hands (a hypercall answer it never reads, a ring it corrupted, what
 * its worker process prints) is logged with hv_log_limited() through a
 * limiter of that guest's: `burst` lines per `interval`, the rest counted.
 * The next line the limiter lets through is preceded by one saying how many
 * were suppressed, and the count stays readable (hv_ratelimit_suppressed) for
 * the statistics an operator reads.
 *
 * Time is CLOCK_MONOTONIC in nanoseconds, or what hv_log_set_clock() gives
 * (tests).
 *
 * Threads: everything here may run on any thread, and the sink must allow
 * that. A limiter takes a spinlock for the few instructions of its decision:
 * a partition's is used by the control thread and by the workers that signal
 * its guest.
 */
#ifndef HV_LOG_H
#define HV_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

/* What a zeroed limiter allows: 10 lines per 5 seconds, as Linux's
 * printk_ratelimit() does. */
#define HV_RATELIMIT_INTERVAL_MS 5000u
#define HV_RATELIMIT_BURST 10u
/* Longest line hv_log writes; longer ones are cut. */
#define HV_LOG_LINE_MAX 512u

struct hv_ratelimit {
    uint64_t interval_ns; /* 0: HV_RATELIMIT_INTERVAL_MS */
    uint32_t burst;       /* 0: HV_RATELIMIT_BURST */
    bool lock;            /* atomic flag: the fields below */
    bool started;
    uint32_t used;        /* lines let through in the current window */
    uint64_t window_start;
    uint64_t missed;     /* suppressed since the last line let through */
    uint64_t suppressed; /* suppressed in all (atomic) */
};

/* A limiter of burst lines per interval_ms; a zeroed struct is a valid
 * limiter with the defaults. */
void hv_ratelimit_init(struct hv_ratelimit *rl, uint32_t interval_ms, uint32_t burst);

/* May a line go out at now_ns? true: yes, and *missed (if not NULL) is how
 * many were suppressed since the previous one, to be reported; false: no,
 * and it is counted. */
bool hv_ratelimit_allow(struct hv_ratelimit *rl, uint64_t now_ns, uint64_t *missed);

/* Lines rl suppressed in all. Any thread. */
uint64_t hv_ratelimit_suppressed(const struct hv_ratelimit *rl);

/* Where lines go (NULL: stderr). line has no newline. Set before other
 * threads log. */
void hv_log_set_sink(void (*sink)(void *ctx, const char *line), void *ctx);
/* The clock limiters are read with (NULL: CLOCK_MONOTONIC). For tests. */
void hv_log_set_clock(uint64_t (*now_ns)(void));
uint64_t hv_log_now_ns(void);

void hv_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hv_vlog(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* One line through rl: logged if it allows (after a "N similar messages
 * suppressed" line if it held some back), else counted. Returns whether it
 * was logged. */
bool hv_log_limited(struct hv_ratelimit *rl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
bool hv_vlog_limited(struct hv_ratelimit *rl, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#endif
