/* hv-core internals: seen only inside hv-core/src. */
#ifndef HV_PRIVATE_H
#define HV_PRIVATE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "hv-log.h"
#include "hv.h"

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

struct hv_port {
    uint32_t conn_id; /* 0 = free slot */
    hv_msg_handler msg_fn; /* message port if set, else event port */
    void *msg_ctx;
    int event_fd;
};

struct hv_listener {
    hv_partition_listener_fn fn;
    void *ctx;
};

#define HV_LISTENERS_MAX 8

struct hv_msg_queue {
    struct hv_message *msgs; /* ring of HV_SYNIC_QUEUE_LEN, allocated on enable */
    uint32_t head;
    uint32_t count;
};

/* One virtual processor's SynIC. */
struct hv_synic_vp {
    struct hv_message *simp; /* mapped SIMP page, NULL until enabled */
    uint8_t *siefp;          /* mapped SIEF page */
    uint64_t simp_pfn, siefp_pfn;
    uint32_t sint_mask;
    int sint_fd; /* eventfd asserting this VP's SINTs; -1 unless running */
    struct hv_msg_queue queue[HV_SINT_COUNT];
};

/*
 * SynIC state, one per VP. post/eom/setup/teardown run on the control
 * thread and take `lock` (posts can also come from other threads through
 * the VMBus server's deferred GPADL teardown). signal runs on any thread,
 * lock-free: it needs a VP's siefp, sint_mask and sint_fd. The eventfds
 * exist from start to stop. setup writes sint_mask before it publishes
 * siefp with a release store (signal loads it with acquire), and
 * everything is cleared only after every channel user stopped (listeners
 * run first). A VP whose SynIC is not set up yet has siefp NULL: a signal
 * for it is refused, as a real VP that has not enabled its SynIC takes no
 * synthetic interrupt.
 */
struct hv_synic {
    pthread_mutex_t lock;
    uint32_t nvp;
    struct hv_synic_vp vp[HV_PARTITION_VPS_MAX];
};

struct hv_partition {
    const struct hv_partition_class *cls;
    struct hv_host *host;
    struct hv_partition *next; /* host list, id order */
    uint32_t id;
    char name[HV_PARTITION_NAME_MAX + 1];
    enum hv_partition_state state;
    uint64_t mem_bytes;
    int mem_fd;  /* -1 unless created/running */
    int sint_fd; /* VP 0's SINT eventfd (synic.vp[0].sint_fd): what backends
                  * hand the guest at start; -1 unless running */
    int exit_status;
    bool crashed;
    bool stopping;
    bool notifying; /* listeners are being called: no start/stop/destroy */
    uint32_t map_runs;
    const uint8_t *dma_view; /* whole memory, read-only, while dma_refs > 0 */
    uint32_t dma_refs;
    struct hv_synic synic;
    struct hv_port ports[HV_PARTITION_PORTS_MAX];
    struct hv_listener listeners[HV_LISTENERS_MAX];
    struct hv_partition_stats stats;
    /* Every log line this partition's guest can cause (any thread). */
    struct hv_ratelimit log_rl;
};

/* memory.c: guest memory (a sealed memfd) and views of its pages. */
int hv_mem_create(const char *name, uint64_t bytes, int *fd_out);
uint32_t hv_mem_count_runs(const uint64_t *pfns, uint32_t n);
/* Map pfns[0..n) of fd, in order, into one contiguous view. ring: pfns[0] is
 * a ring header page and pfns[1..n) its data area, mapped twice in a row
 * after it. Every PFN must be < npages. *len_out is the view's size. */
int hv_mem_map(int fd, uint64_t npages, const uint64_t *pfns, uint32_t n, bool ring,
               void **view, size_t *len_out);
size_t hv_mem_view_len(uint32_t n, bool ring);
void hv_mem_unmap(void *view, size_t len);

/* synic.c */
void hv_synic_init(struct hv_synic *s, uint32_t nvp);
void hv_synic_fini(struct hv_synic *s);
/* Create (start) and close (stop) every VP's SINT eventfd. */
int hv_synic_open_fds(struct hv_synic *s);
void hv_synic_close_fds(struct hv_synic *s);
/* *fd_out: the VP's SINT eventfd for a VP other than 0 (owned by s). */
int hv_synic_setup(struct hv_partition *p, const struct hv_input_synic_setup *in, int *fd_out);
int hv_synic_eom(struct hv_partition *p, uint32_t vp, uint32_t sint);
/* Unmap SynIC pages, drop queued messages (partition stopped). */
void hv_synic_reset(struct hv_partition *p);

/* partition.c */
struct hv_port *hv_partition_find_port(struct hv_partition *p, uint32_t conn_id);
void hv_partition_release_runs(struct hv_partition *p, uint32_t runs);

#endif
