/*
 * The root's log and its rate limiter (hv-log.h).
 *
 * The limiter is a fixed window, like Linux's ___ratelimit(): the first line
 * after the window ran out opens a new one; up to `burst` lines pass in it.
 * Unlike Linux, the suppressed count is reported with the next line let
 * through rather than when the window closes: nothing runs when a guest goes
 * quiet, and a count without the line that follows it says little.
 */
#define _GNU_SOURCE
#include "hv-log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void (*log_sink)(void *ctx, const char *line);
static void *log_sink_ctx;
static uint64_t (*log_clock)(void);

void hv_ratelimit_init(struct hv_ratelimit *rl, uint32_t interval_ms, uint32_t burst)
{
    memset(rl, 0, sizeof(*rl));
    rl->interval_ns = (uint64_t)interval_ms * 1000000u;
    rl->burst = burst;
}

bool hv_ratelimit_allow(struct hv_ratelimit *rl, uint64_t now_ns, uint64_t *missed)
{
    uint64_t interval = rl->interval_ns ? rl->interval_ns
                                        : (uint64_t)HV_RATELIMIT_INTERVAL_MS * 1000000u;
    uint32_t burst = rl->burst ? rl->burst : HV_RATELIMIT_BURST;
    bool allow;
    while (__atomic_test_and_set(&rl->lock, __ATOMIC_ACQUIRE)) {
        /* held for a few instructions */
    }
    /* Unsigned: a clock that went back (a test's) opens a window too. */
    if (!rl->started || now_ns - rl->window_start >= interval) {
        rl->started = true;
        rl->window_start = now_ns;
        rl->used = 0;
    }
    allow = rl->used < burst;
    if (allow) {
        rl->used++;
        if (missed)
            *missed = rl->missed;
        rl->missed = 0;
    } else {
        rl->missed++;
        __atomic_add_fetch(&rl->suppressed, 1, __ATOMIC_RELAXED);
    }
    __atomic_clear(&rl->lock, __ATOMIC_RELEASE);
    return allow;
}

uint64_t hv_ratelimit_suppressed(const struct hv_ratelimit *rl)
{
    return __atomic_load_n(&rl->suppressed, __ATOMIC_RELAXED);
}

void hv_log_set_sink(void (*sink)(void *ctx, const char *line), void *ctx)
{
    log_sink = sink;
    log_sink_ctx = ctx;
}

void hv_log_set_clock(uint64_t (*now_ns)(void))
{
    log_clock = now_ns;
}

uint64_t hv_log_now_ns(void)
{
    if (log_clock)
        return log_clock();
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void emit(const char *line)
{
    if (log_sink) {
        log_sink(log_sink_ctx, line);
        return;
    }
    /* One write per line, so that lines from several threads do not mix. */
    fprintf(stderr, "%s\n", line);
}

void hv_vlog(const char *fmt, va_list ap)
{
    char line[HV_LOG_LINE_MAX];
    vsnprintf(line, sizeof(line), fmt, ap);
    emit(line);
}

void hv_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hv_vlog(fmt, ap);
    va_end(ap);
}

bool hv_vlog_limited(struct hv_ratelimit *rl, const char *fmt, va_list ap)
{
    uint64_t missed = 0;
    if (!hv_ratelimit_allow(rl, hv_log_now_ns(), &missed))
        return false;
    if (missed)
        hv_log("%llu similar messages suppressed", (unsigned long long)missed);
    hv_vlog(fmt, ap);
    return true;
}

bool hv_log_limited(struct hv_ratelimit *rl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool logged = hv_vlog_limited(rl, fmt, ap);
    va_end(ap);
    return logged;
}
