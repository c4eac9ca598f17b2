/*
 * hv-core, guest side: what code running in a child partition has. Its
 * memory (mapped whole, addressed by guest-physical address), a page
 * allocator over it, hypercalls, and a SynIC per virtual processor
 * (message slots and event flags in two of its own pages, and a SINT
 * eventfd). A VP is an interrupt target here, not a thread: one thread may
 * serve every VP's SINT (poll their eventfds together). Functions without
 * _vp act on VP 0.
 *
 * Single-threaded: one struct hv_guest is used by one thread at a time
 * (hypercalls are synchronous request/answer pairs on one socket), except
 * hv_guest_event_test_clear(), which any thread may call.
 */
#ifndef HV_GUEST_H
#define HV_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv-proto.h"

struct hv_guest;

/* Attach to the descriptors a partition backend gave us. Takes ownership
 * of the fds. Maps all of memory. */
int hv_guest_attach(int mem_fd, int hc_fd, int sint_fd, struct hv_guest **out);
/* Attach with a custom hypercall transport instead of a socket: hc(ctx,
 * record, len, &fd) returns an HV_STATUS_* or a negative errno, and an fd the
 * guest then owns (or -1). Used by in-process partitions (tests, fuzzing). */
typedef int (*hv_guest_transport_fn)(void *ctx, const void *rec, size_t len, int *fd_out);
int hv_guest_attach_transport(int mem_fd, int sint_fd, hv_guest_transport_fn hc, void *ctx,
                              struct hv_guest **out);
/* Same, with the fds named in HV_PARTITION_FDS and the number of VPs in
 * HV_PARTITION_VPS. -ENOENT if not a guest, -EINVAL for a bad VP count. */
int hv_guest_attach_env(struct hv_guest **out);
void hv_guest_detach(struct hv_guest *g);

/* Virtual processors: 1 after hv_guest_attach(); set (1..
 * HV_PARTITION_VPS_MAX) before the SynIC is enabled: -EBUSY after. */
int hv_guest_set_vp_count(struct hv_guest *g, uint32_t n);
uint32_t hv_guest_vp_count(const struct hv_guest *g);

uint8_t *hv_guest_mem(const struct hv_guest *g);
uint64_t hv_guest_mem_size(const struct hv_guest *g);
int hv_guest_mem_fd(const struct hv_guest *g);

static inline void *hv_guest_pfn_ptr(const struct hv_guest *g, uint64_t pfn)
{
    return hv_guest_mem(g) + (pfn << HV_PAGE_SHIFT);
}

/*
 * Page allocator over guest memory (guest-private bookkeeping). alloc gives
 * n contiguous zeroed pages; alloc_scattered gives n zeroed pages that are
 * deliberately not contiguous where memory allows (to exercise multi-run
 * grants), their PFNs in pfns[]. Page 0 is never handed out.
 */
int hv_guest_alloc_pages(struct hv_guest *g, uint32_t n, uint64_t *first_pfn);
int hv_guest_alloc_scattered(struct hv_guest *g, uint32_t n, uint64_t *pfns);
void hv_guest_free_pages(struct hv_guest *g, const uint64_t *pfns, uint32_t n);
void hv_guest_free_range(struct hv_guest *g, uint64_t first_pfn, uint32_t n);
uint64_t hv_guest_free_page_count(const struct hv_guest *g);

/* Hypercalls. Each returns an HV_STATUS_* (>= 0) or a negative errno if the
 * transport failed (the root is gone). */
int hv_guest_post_message(struct hv_guest *g, uint32_t conn_id, uint32_t msg_type,
                          const void *payload, uint32_t len);
int hv_guest_signal_event(struct hv_guest *g, uint32_t conn_id, uint16_t flag);
/* The eventfd behind conn_id; writing 1 to it is HvSignalEvent(conn_id, 0)
 * without a round trip. The caller owns the returned fd. */
int hv_guest_get_event_fd(struct hv_guest *g, uint32_t conn_id, int *fd_out);
/* Send a raw record (tests of the root's validation). */
int hv_guest_raw_hypercall(struct hv_guest *g, const void *rec, uint32_t len, int *fd_out);

/* Enable the SynIC of VP vp: allocates its SIMP and SIEF pages and tells
 * the root, which answers a VP other than 0 with its SINT eventfd.
 * hv_guest_synic_enable() does it for every VP, VP 0 first, stopping at
 * the first failure. */
int hv_guest_synic_enable_vp(struct hv_guest *g, uint32_t vp, uint32_t sint_mask);
int hv_guest_synic_enable(struct hv_guest *g, uint32_t sint_mask);

/* A VP's SINT eventfd: readable when a message or an event flag may be
 * waiting on that VP. -1 for a VP whose SynIC is not enabled (but VP 0). */
int hv_guest_vp_sint_fd(const struct hv_guest *g, uint32_t vp);
int hv_guest_sint_fd(const struct hv_guest *g);

/* Take the message in sint's slot of VP vp, if any: copies it out, frees
 * the slot, and sends EOM if the root has more queued. 0 or -EAGAIN. */
int hv_guest_recv_message_vp(struct hv_guest *g, uint32_t vp, uint32_t sint,
                             struct hv_message *out);
int hv_guest_recv_message(struct hv_guest *g, uint32_t sint, struct hv_message *out);

/* Atomically test and clear event flag `flag` of `sint` on VP vp. */
bool hv_guest_event_test_clear_vp(struct hv_guest *g, uint32_t vp, uint32_t sint, uint32_t flag);
bool hv_guest_event_test_clear(struct hv_guest *g, uint32_t sint, uint32_t flag);

/* Wait up to timeout_ms (-1 forever) for the SINT of any VP in the mask
 * vps (bit v = VP v); consumes the wake-ups. Returns 1 if signalled, 0 on
 * timeout, negative errno on failure (-EINVAL: no such VP with an fd).
 * hv_guest_wait() waits for VP 0. */
int hv_guest_wait_vps(struct hv_guest *g, uint64_t vps, int timeout_ms);
int hv_guest_wait(struct hv_guest *g, int timeout_ms);

#endif
