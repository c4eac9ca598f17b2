/*
 * Partition backends implement this table. The common partition code owns
 * the state machine, memory, SynIC and ports; a backend only makes the guest
 * run and stop, and tells the common code when it ended.
 *
 * A backend allocates its own struct with struct hv_partition embedded as the
 * first member and recovers it with container_of().
 */
#ifndef HV_PROVIDER_H
#define HV_PROVIDER_H

#include "hv-private.h"

struct hv_partition_class {
    const char *name;
    struct hv_partition *(*alloc)(void);
    /* Copy what the backend needs out of params; 0 or -errno. */
    int (*construct)(struct hv_partition *p, const struct hv_partition_params *params);
    /* Make the guest run. Memory (p->mem_fd) and the SINT eventfd
     * (p->sint_fd) exist. On success the backend calls hv_partition_exited()
     * when the guest ends. */
    int (*start)(struct hv_partition *p);
    /* Ask the guest to end, forcing after grace_ms; returns when it has
     * ended and hv_partition_exited() was called. */
    void (*stop)(struct hv_partition *p, int grace_ms);
    /* Ask the guest to end without waiting; 0 or -errno. */
    int (*request_stop)(struct hv_partition *p);
    void (*destruct)(struct hv_partition *p);
    void (*dealloc)(struct hv_partition *p);
};

/* Backends report the end of the guest here (control thread). `status` is
 * backend-specific (a wait status for processes); `asked` is true if it
 * followed a stop request. */
void hv_partition_exited(struct hv_partition *p, int status, bool asked);

#endif
