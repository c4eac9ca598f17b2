/*
 * hv-core, root side: the partition table, partitions and their lifecycle,
 * guest memory as the root may see it, the hypercall broker, and the SynIC.
 *
 * The root owns a struct hv_host and drives it from one control thread:
 * hv_host_run() (or polling hv_host_fd() and then calling hv_host_run(h, 0))
 * serves hypercalls and notices partitions that died. Everything here is
 * control-thread only, except where a function says "any thread".
 *
 * A partition's backend decides what runs as the guest: the process backend
 * (hv_process_partition_class) runs a program in a child process that is
 * given only its memory, its hypercall socket and its SINT eventfd. Nothing
 * in this API assumes a process.
 *
 * A partition has virtual processors (VPs, 0..n-1), each with its own SynIC:
 * its own SIMP and SIEF pages and its own SINT eventfd. For a process
 * partition a VP is an interrupt target, not a thread: the guest may serve
 * every VP's SINT from one loop.
 *
 * Errors: functions return 0 or a negative errno; hypercall-level results are
 * HV_STATUS_* values (hv-proto.h).
 */
#ifndef HV_H
#define HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hv-proto.h"

struct hv_host;
struct hv_partition;
struct hv_partition_class;

/* Backends. */
extern const struct hv_partition_class hv_process_partition_class;
/* The guest is code in the calling process, driving the partition through
 * hv_direct_partition_attach(): its hypercalls go straight to the broker,
 * synchronously. For unit tests and fuzzing of the root's guest-facing
 * code with the real guest library, no child process involved. */
extern const struct hv_partition_class hv_direct_partition_class;

enum hv_partition_state {
    HV_PARTITION_CREATED,
    HV_PARTITION_RUNNING,
    HV_PARTITION_STOPPED,
    HV_PARTITION_DESTROYED,
};

const char *hv_partition_state_name(enum hv_partition_state s);

/* True if the state machine allows from -> to:
 * created -> running | destroyed; running -> stopped;
 * stopped -> running | destroyed. */
bool hv_partition_transition_ok(enum hv_partition_state from, enum hv_partition_state to);

/* Limits. */
#define HV_PARTITION_NAME_MAX 31
#define HV_PARTITION_MEM_MIN (1ull << 20)
#define HV_PARTITION_MEM_MAX (64ull << 30)
#define HV_PARTITION_PORTS_MAX 256
#define HV_SYNIC_QUEUE_LEN 256
/* Discontiguous runs of guest pages the root maps for one partition; caps
 * the VMAs a guest can make the root create with scattered grants. */
#define HV_PARTITION_MAP_RUNS_MAX 4096

int hv_host_create(struct hv_host **out);
/* Stops and destroys every partition, then frees the host. NULL is fine. */
void hv_host_destroy(struct hv_host *host);

/* An fd (epoll) that is readable whenever hv_host_run() has work. */
int hv_host_fd(const struct hv_host *host);

/* Serve what is pending, waiting up to timeout_ms (-1: forever) for the
 * first event. Returns the number of events handled or a negative errno. */
int hv_host_run(struct hv_host *host, int timeout_ms);

/* Have hv_host_run() call cb(ctx, epoll events) when fd is ready. One
 * watch per fd. For backends and for components that live beside hv-core
 * (the VMBus server's wake-up fd). */
typedef void (*hv_fd_cb)(void *ctx, uint32_t events);
int hv_host_watch(struct hv_host *host, int fd, uint32_t events, hv_fd_cb cb, void *ctx);
void hv_host_unwatch(struct hv_host *host, int fd);

struct hv_host_stats {
    uint64_t partitions_created;
    uint64_t partitions_crashed; /* stopped without being asked to */
};
void hv_host_get_stats(const struct hv_host *host, struct hv_host_stats *out);

struct hv_partition_params {
    const char *name;       /* unique per host; [A-Za-z0-9_.-], 1..31 chars */
    uint64_t memory_bytes;  /* page multiple, HV_PARTITION_MEM_MIN..MAX */
    uint32_t vp_count;      /* virtual processors, 1..HV_PARTITION_VPS_MAX; 0 means 1 */
    const struct hv_partition_class *cls; /* NULL: the process backend */
    /* Process backend: the program run as the guest (argv[0] is its path)
     * and extra "KEY=VALUE" environment entries; both NULL-terminated. */
    const char *const *argv;
    const char *const *envp;
    /* Process backend: the CPUs the guest may run on, as a cpu_set_t of
     * cpuset_size bytes (sched_setaffinity); NULL: the root's own. A root
     * that pins itself (DPDK's EAL does) passes the set it started with,
     * so that guests are not squeezed onto its main lcore. */
    const void *cpuset;
    size_t cpuset_size;
};

int hv_partition_create(struct hv_host *host, const struct hv_partition_params *params,
                        struct hv_partition **out);
/* created|stopped -> running. Memory exists (zeroed) from creation on and
 * is replaced by fresh memory when a stopped partition starts again. */
int hv_partition_start(struct hv_partition *p);
/* running -> stopped: asks the guest to stop, forces it after grace_ms.
 * Blocks, and serves no hypercalls meanwhile: use grace_ms = 0 (force) from
 * a control loop, or hv_partition_request_stop(). */
int hv_partition_stop(struct hv_partition *p, int grace_ms);
/* Ask a running guest to stop (a process gets SIGTERM) and return at once;
 * hv_host_run() notices when it has, and listeners see running -> stopped
 * (not a crash). Follow with hv_partition_stop(p, 0) if it does not. */
int hv_partition_request_stop(struct hv_partition *p);
bool hv_partition_stopping(const struct hv_partition *p);
/* created|stopped -> destroyed; frees p. -EBUSY while running. */
int hv_partition_destroy(struct hv_partition *p);

uint32_t hv_partition_id(const struct hv_partition *p);
const char *hv_partition_name(const struct hv_partition *p);
enum hv_partition_state hv_partition_state(const struct hv_partition *p);
struct hv_host *hv_partition_host(const struct hv_partition *p);
uint64_t hv_partition_memory_size(const struct hv_partition *p);
uint32_t hv_partition_vp_count(const struct hv_partition *p);
/* Why the partition last stopped: a wait status for processes, -1 if it
 * has not stopped. */
int hv_partition_exit_status(const struct hv_partition *p);
/* True if the last stop was not asked for (crash, kill from outside). */
bool hv_partition_crashed(const struct hv_partition *p);

struct hv_partition *hv_host_find(const struct hv_host *host, uint32_t id);
struct hv_partition *hv_host_find_name(const struct hv_host *host, const char *name);
/* Up to max partitions in id order; returns how many exist. */
size_t hv_host_list(const struct hv_host *host, struct hv_partition **out, size_t max);

/*
 * State listeners, called on the control thread after the state changed
 * (to = STOPPED: before the partition's memory and SynIC are released, so
 * listeners can still stop using them; to = DESTROYED: just before p is freed).
 * Listeners must not start, stop or destroy p (those return -EBUSY while
 * listeners run); a policy such as "restart on crash" defers the call.
 */
typedef void (*hv_partition_listener_fn)(void *ctx, struct hv_partition *p,
                                         enum hv_partition_state from,
                                         enum hv_partition_state to);
int hv_partition_listen(struct hv_partition *p, hv_partition_listener_fn fn, void *ctx);
void hv_partition_unlisten(struct hv_partition *p, hv_partition_listener_fn fn, void *ctx);

/*
 * Guest memory as the root sees it: nothing, except views of pages the guest
 * granted. hv_partition_map_pages() maps the given PFNs, in order, into one
 * contiguous read-write view; hv_partition_map_ring() maps a ring (first PFN
 * the header page, the rest the data area) with its data area twice, as
 * vmbus-ring.h needs. Both check every PFN against the partition's memory and
 * count against HV_PARTITION_MAP_RUNS_MAX.
 * Returns 0, -ERANGE (PFN outside memory), -ENOSPC (run budget), -ENODEV
 * (no memory: not started), -EINVAL, or an mmap errno.
 */
int hv_partition_map_pages(struct hv_partition *p, const uint64_t *pfns, uint32_t n,
                           void **view);
int hv_partition_map_ring(struct hv_partition *p, const uint64_t *pfns, uint32_t n,
                          void **view);
/* Unmap a view made by either function (n as given when mapping). */
void hv_partition_unmap(struct hv_partition *p, void *view, const uint64_t *pfns, uint32_t n,
                        bool ring);
uint64_t hv_partition_memory_pages(const struct hv_partition *p);

/*
 * A read-only view of all of the partition's memory, for a VSP that must
 * read pages a guest names per packet (GPA-direct sends): mapping those one
 * by one would cost a system call per packet. The VSP checks every PFN
 * against hv_partition_memory_pages() before reading. Reference counted;
 * the view is unmapped at the last put. Control thread; -ENODEV if the
 * partition has no memory (not running).
 */
int hv_partition_dma_get(struct hv_partition *p, const uint8_t **base);
void hv_partition_dma_put(struct hv_partition *p);

/*
 * Ports: what a guest's connection ids lead to. A message port receives
 * HvPostMessage payloads; an event port turns HvSignalEvent into a write on
 * an eventfd (the guest can also get that eventfd, HVCALL_EXT_EVENT_FD, and
 * signal without a round trip). Connection ids are unique per partition.
 * The handler returns an HV_STATUS_* for the guest's hypercall.
 */
typedef int (*hv_msg_handler)(void *ctx, struct hv_partition *p, uint32_t conn_id,
                              uint32_t msg_type, const void *payload, uint32_t len);
int hv_partition_port_msg(struct hv_partition *p, uint32_t conn_id, hv_msg_handler fn,
                          void *ctx);
int hv_partition_port_event(struct hv_partition *p, uint32_t conn_id, int event_fd);
void hv_partition_port_remove(struct hv_partition *p, uint32_t conn_id);

/*
 * SynIC, root side, per VP (the functions without _vp are for VP 0).
 * hv_synic_post_vp(): queue a message for the SINT of VP vp; it is written
 * into that VP's SIMP slot when the slot is free (one outstanding per slot,
 * the rest queued with MessagePending set) and the VP's SINT asserted.
 * -ENOTCONN if the guest has not enabled that SINT on that VP, -ENOSPC if
 * the queue is full, -EINVAL for a VP the partition does not have.
 * hv_synic_queue_room_vp(): free queue entries for sint (0 if not enabled).
 * hv_synic_signal_vp(): any thread; set event flag `flag` of `sint` in the
 * VP's SIEF page and assert its SINT if the flag was clear. -ENOTCONN if
 * not enabled.
 * hv_synic_purge_vp(): drop the messages queued for sint that are not in
 * its slot yet (the one in the slot is the guest's already); returns how
 * many.
 */
int hv_synic_post_vp(struct hv_partition *p, uint32_t vp, uint32_t sint, uint32_t msg_type,
                     const void *payload, uint32_t len);
uint32_t hv_synic_queue_room_vp(struct hv_partition *p, uint32_t vp, uint32_t sint);
bool hv_synic_enabled_vp(struct hv_partition *p, uint32_t vp, uint32_t sint);
int hv_synic_signal_vp(struct hv_partition *p, uint32_t vp, uint32_t sint, uint32_t flag);
uint32_t hv_synic_purge_vp(struct hv_partition *p, uint32_t vp, uint32_t sint);
int hv_synic_post(struct hv_partition *p, uint32_t sint, uint32_t msg_type, const void *payload,
                  uint32_t len);
uint32_t hv_synic_queue_room(struct hv_partition *p, uint32_t sint);
bool hv_synic_enabled(struct hv_partition *p, uint32_t sint);
int hv_synic_signal(struct hv_partition *p, uint32_t sint, uint32_t flag);

/*
 * The hypercall broker, independent of how the call arrived: validates the
 * request (record size, code, input) and performs it. Returns an HV_STATUS_*.
 * HVCALL_EXT_EVENT_FD, and HVCALL_EXT_SYNIC_SETUP for a VP other than 0,
 * return the fd to pass in *fd_out (owned by the partition: the transport
 * must not close it), otherwise *fd_out = -1.
 */
int hv_hypercall(struct hv_partition *p, const void *req, size_t len, int *fd_out);

struct hv_partition_stats {
    uint64_t hypercalls;
    uint64_t hypercalls_failed;   /* answered with a status other than SUCCESS */
    uint64_t bad_records;         /* malformed transport records */
    uint64_t bad_callers;         /* records from a process that is not the guest */
    uint64_t messages_posted;     /* guest -> root messages accepted */
    uint64_t messages_delivered;  /* root -> guest, written to a slot */
    uint64_t messages_dropped;    /* root -> guest, queue full */
    uint64_t messages_purged;     /* root -> guest, dropped undelivered (hv_synic_purge) */
    uint64_t events_signalled;    /* root -> guest SINT assertions for events */
    uint64_t guest_signals;       /* guest -> root HvSignalEvent */
    uint64_t map_refused;         /* views refused (range, budget) */
    uint64_t log_suppressed;      /* log lines about this guest held back (hv-log.h) */
};
void hv_partition_get_stats(const struct hv_partition *p, struct hv_partition_stats *out);

/* Process backend: the child's pid while running, else -1. */
int hv_process_partition_pid(const struct hv_partition *p);

/*
 * Process backend: confine the guest's process the way a VMM jails its
 * device processes. Every process partition gets PR_SET_NO_NEW_PRIVS, no
 * core dumps (RLIMIT_CORE 0: a crash never writes guest memory to the
 * root's disks) and a parent-death signal. A jail adds, in the child before
 * exec, in this order:
 *  - the network namespace netns_path (a namespace file such as
 *    /run/netns/NAME), opened by the root at each start: -ENOENT from the
 *    start if it is gone;
 *  - with root_paths: a mount namespace of its own whose root is an empty
 *    read-only tmpfs holding only root_paths (directories and files bind-
 *    mounted read-only, nosuid, nodev; symbolic links copied; missing paths
 *    skipped) and a /proc that shows only processes the guest could ptrace
 *    (hidepid=invisible); nothing of the root's state, sockets or /tmp;
 *  - an empty capability bounding set, no supplementary groups, then gid
 *    and uid (real, effective and saved): no capabilities remain, and
 *    NO_NEW_PRIVS keeps it so across exec;
 *  - the parent-death signal is set after the uid change, which clears it;
 *  - oom_score_adj 1000: out of memory, the kernel kills the guest first.
 * The program is executed by its path where that works inside the jail
 * (root_paths holding its directory: then a script's interpreter finds it
 * too), else from a descriptor the root opened, so that a binary need not
 * be reachable under the new root or by the uid. No PID namespace: the
 * uid already keeps the guest from signalling or tracing anyone else, and a
 * guest as PID 1 would lose SIGTERM.
 *
 * set_jail copies *jail (NULL: no jail) for every later start. -EINVAL for
 * uid or gid 0, a relative or over-long path, a path under
 * HV_PROCESS_JAIL_STAGE, or a partition of another backend; -EBUSY while
 * running; -ENOMEM; or the error making the stage directory (root-owned,
 * mode 0700) when root_paths are given.
 */
#define HV_PROCESS_JAIL_STAGE "/run/hv-jail"
struct hv_process_jail {
    uint32_t uid, gid;
    const char *netns_path;        /* NULL: the root's network namespace */
    const char *const *root_paths; /* NULL-terminated; NULL: the root's filesystem */
};
int hv_process_partition_set_jail(struct hv_partition *p, const struct hv_process_jail *jail);

/* Process backend: descriptors for the next start only, handed to the
 * child at HV_CHILD_FD_SINT + 1, + 2, ... in order (duplicated: the caller
 * keeps its own; closed here after that start, or by the next call).
 * -EINVAL for more than HV_PROCESS_EXTRA_FDS_MAX or a bad descriptor, or a
 * partition of another backend; -EBUSY while running. */
#define HV_PROCESS_EXTRA_FDS_MAX 8
int hv_process_partition_pass_fds(struct hv_partition *p, const int *fds, unsigned n);

/* Direct backend, while running: a guest handle on p's memory and SINT whose
 * hypercalls call hv_hypercall(p, ...). Free with hv_guest_detach() (before
 * or after p stops). */
struct hv_guest;
int hv_direct_partition_attach(struct hv_partition *p, struct hv_guest **out);

#endif
