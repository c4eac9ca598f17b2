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

/*
 * A change of the host's configuration that an operation has applied but
 * not finished. Whoever asked for it ends it, once: vsd_change_commit()
 * after the configuration is saved (the operation does then what had to
 * wait for the save: removing what was deleted, logging it), or
 * vsd_change_undo() when it could not be saved (the host is then as before
 * the operation). An operation that fails, or changes nothing that is
 * saved, leaves the change closed; both calls do nothing then.
 *
 * The operation keeps its record in the change itself (no allocation, so
 * no failure after the fact): VSD_CHANGE_OPEN copies it in, or, given no
 * change to record in (NULL: the state loader, tests), commits at once.
 */
#define VSD_CHANGE_REC_SIZE 1024

struct vsd_change {
    bool open;
    void (*commit)(void *rec);
    void (*undo)(void *rec);
    _Alignas(max_align_t) unsigned char rec[VSD_CHANGE_REC_SIZE];
};

void vsd_change_commit(struct vsd_change *c);
void vsd_change_undo(struct vsd_change *c);
void vsd_change_open(struct vsd_change *c, void (*commit)(void *), void (*undo)(void *),
                     const void *rec, size_t size);
#define VSD_CHANGE_OPEN(c, commit, undo, rec)                                                      \
    do {                                                                                           \
        _Static_assert(sizeof(rec) <= VSD_CHANGE_REC_SIZE, "change record too large");            \
        vsd_change_open((c), (commit), (undo), &(rec), sizeof(rec));                               \
    } while (0)

/* Fill e (newlines become spaces); returns -1. */
int vsd_fail(struct vsd_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* 1..max characters of A-Z a-z 0-9 _ . -, not "." or "..". */
bool vsd_name_ok(const char *s, size_t max);
/* The same, or e filled (VSD_BAD_PARAMS) naming what it is (key); an
 * interface name (ifname) may not be "lo" either. 0 or -1. */
int vsd_check_name(struct vsd_err *e, const char *key, const char *s, size_t max, bool ifname);
/* min <= v <= max, or e filled (VSD_BAD_PARAMS) naming key. 0 or -1. */
int vsd_check_range(struct vsd_err *e, const char *key, long long v, long long min, long long max);
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
