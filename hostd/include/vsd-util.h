/*
 * What every layer of vswitchd uses: errors with a one-line message, the
 * clock, the log, names and MAC addresses in text. Nothing here knows of
 * VMs, switches or the control protocol.
 */
#ifndef VSD_UTIL_H
#define VSD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv-log.h"

#define VSD_ERR_MAX 256 /* a one-line error message, with its NUL */

/* Result of an operation: 0, or an error with a one-line message. The codes
 * are JSON-RPC's, so that the control socket passes them on as they are. */
struct vsd_err {
    int code; /* VSD_BAD_PARAMS or VSD_FAILED (the transport adds its own) */
    char msg[VSD_ERR_MAX];
};

#define VSD_BAD_PARAMS (-32602) /* refused before anything changed: the request is wrong */
#define VSD_FAILED (-32000)     /* a valid request the host could not carry out */

/* Fill e (newlines become spaces); returns -1. */
int vsd_fail(struct vsd_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 1..max characters of A-Z a-z 0-9 _ . -, not "." or "..". */
bool vsd_name_ok(const char *s, size_t max);
/* "xx:xx:xx:xx:xx:xx" exactly. 0 or -1. */
int vsd_parse_mac(const char *s, uint8_t mac[6]);
void vsd_format_mac(const uint8_t mac[6], char out[18]);

/* Seconds on the monotonic clock. */
double vsd_now(void);
/* The log (stderr, or --log FILE): vsd_log_init() routes hv-core's lines
 * there too, with the same timestamp and name. Lines a guest can cause go
 * through vsd_log_limited() with a limiter of that guest's (hv-log.h). */
void vsd_log_init(void);
void vsd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vsd_log_limited(struct hv_ratelimit *rl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
