#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vsd-util.h"

int vsd_fail(struct vsd_err *e, int code, const char *fmt, ...)
{
    va_list ap;
    e->code = code;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    /* One line, always. */
    for (char *p = e->msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return -1;
}

void vsd_change_open(struct vsd_change *c, void (*commit)(void *), void (*undo)(void *),
                     const void *rec, size_t size)
{
    if (!c) {
        /* Nobody saves: final at once. The record is copied all the same,
         * so that commit sees it as it would in a change. */
        _Alignas(max_align_t) unsigned char now[VSD_CHANGE_REC_SIZE];
        memcpy(now, rec, size);
        commit(now);
        return;
    }
    c->open = true;
    c->commit = commit;
    c->undo = undo;
    memcpy(c->rec, rec, size);
}

void vsd_change_commit(struct vsd_change *c)
{
    if (!c->open)
        return;
    c->open = false;
    c->commit(c->rec);
}

void vsd_change_undo(struct vsd_change *c)
{
    if (!c->open)
        return;
    c->open = false;
    c->undo(c->rec);
}

bool vsd_name_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

int vsd_check_name(struct vsd_err *e, const char *key, const char *s, size_t max, bool ifname)
{
    if (!vsd_name_ok(s, max) || (ifname && strcmp(s, "lo") == 0))
        return vsd_fail(e, VSD_BAD_PARAMS,
                        "bad %s name '%s': use 1..%zu characters of A-Z a-z 0-9 _ . -%s", key,
                        s ? s : "", max, ifname ? ", not 'lo'" : "");
    return 0;
}

int vsd_check_range(struct vsd_err *e, const char *key, long long v, long long min, long long max)
{
    if (v < min || v > max)
        return vsd_fail(e, VSD_BAD_PARAMS, "%s %lld is out of range (%lld..%lld)", key, v, min,
                        max);
    return 0;
}

int vsd_parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    if (!s || strlen(s) != 17 ||
        sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) !=
            6)
        return -1;
    for (int i = 0; i < 6; i++) {
        if (s[i * 3 + 2] != (i == 5 ? '\0' : ':'))
            return -1;
        mac[i] = (uint8_t)v[i];
    }
    return 0;
}

void vsd_format_mac(const uint8_t mac[6], char out[18])
{
    snprintf(out, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
             mac[5]);
}

double vsd_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Every line of the root's log, hv-core's included: timestamp, name, the
 * line, in one write (workers may log too). */
static void log_sink(void *ctx, const char *line)
{
    (void)ctx;
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s vswitchd: %s\n", ts, line);
}

void vsd_log_init(void)
{
    hv_log_set_sink(log_sink, NULL);
}

void vsd_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hv_vlog(fmt, ap);
    va_end(ap);
}

void vsd_log_limited(struct hv_ratelimit *rl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hv_vlog_limited(rl, fmt, ap);
    va_end(ap);
}
