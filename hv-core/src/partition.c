/*
 * The partition table, the partition state machine, ports, and the
 * hypercall broker. Control thread only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv-provider.h"

struct hv_watch {
    int fd;
    bool dead;
    hv_fd_cb cb;
    void *ctx;
    struct hv_watch *next;
};

struct hv_host {
    int epfd;
    uint32_t next_id;
    struct hv_partition *parts; /* id order */
    struct hv_watch *watches;
    bool dispatching;
    struct hv_host_stats stats;
};

int hv_host_create(struct hv_host **out)
{
    struct hv_host *h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (h->epfd < 0) {
        int err = -errno;
        free(h);
        return err;
    }
    h->next_id = 1;
    *out = h;
    return 0;
}

static void reap_dead_watches(struct hv_host *h)
{
    struct hv_watch **pp = &h->watches;
    while (*pp) {
        struct hv_watch *w = *pp;
        if (w->dead) {
            *pp = w->next;
            free(w);
        } else {
            pp = &w->next;
        }
    }
}

void hv_host_destroy(struct hv_host *h)
{
    if (!h)
        return;
    while (h->parts) {
        struct hv_partition *p = h->parts;
        if (p->state == HV_PARTITION_RUNNING)
            hv_partition_stop(p, 0);
        hv_partition_destroy(p);
    }
    for (struct hv_watch *w = h->watches; w; w = w->next)
        w->dead = true;
    reap_dead_watches(h);
    close(h->epfd);
    free(h);
}

int hv_host_fd(const struct hv_host *h)
{
    return h->epfd;
}

int hv_host_watch(struct hv_host *h, int fd, uint32_t events, hv_fd_cb cb, void *ctx)
{
    struct hv_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->fd = fd;
    w->cb = cb;
    w->ctx = ctx;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(h->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = -errno;
        free(w);
        return err;
    }
    w->next = h->watches;
    h->watches = w;
    return 0;
}

void hv_host_unwatch(struct hv_host *h, int fd)
{
    for (struct hv_watch *w = h->watches; w; w = w->next) {
        if (!w->dead && w->fd == fd) {
            epoll_ctl(h->epfd, EPOLL_CTL_DEL, fd, NULL);
            /* Freed after the current dispatch round: an event for it may
             * still be in this round's batch. */
            w->dead = true;
            break;
        }
    }
    if (!h->dispatching)
        reap_dead_watches(h);
}

int hv_host_run(struct hv_host *h, int timeout_ms)
{
    struct epoll_event evs[32];
    int n = epoll_wait(h->epfd, evs, 32, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    h->dispatching = true;
    for (int i = 0; i < n; i++) {
        struct hv_watch *w = evs[i].data.ptr;
        if (!w->dead)
            w->cb(w->ctx, evs[i].events);
    }
    h->dispatching = false;
    reap_dead_watches(h);
    return n;
}

void hv_host_get_stats(const struct hv_host *h, struct hv_host_stats *out)
{
    *out = h->stats;
}

const char *hv_partition_state_name(enum hv_partition_state s)
{
    switch (s) {
    case HV_PARTITION_CREATED:
        return "created";
    case HV_PARTITION_RUNNING:
        return "running";
    case HV_PARTITION_STOPPED:
        return "stopped";
    case HV_PARTITION_DESTROYED:
        return "destroyed";
    }
    return "invalid";
}

bool hv_partition_transition_ok(enum hv_partition_state from, enum hv_partition_state to)
{
    switch (from) {
    case HV_PARTITION_CREATED:
        return to == HV_PARTITION_RUNNING || to == HV_PARTITION_DESTROYED;
    case HV_PARTITION_RUNNING:
        return to == HV_PARTITION_STOPPED;
    case HV_PARTITION_STOPPED:
        return to == HV_PARTITION_RUNNING || to == HV_PARTITION_DESTROYED;
    case HV_PARTITION_DESTROYED:
        return false;
    }
    return false;
}

static void set_state(struct hv_partition *p, enum hv_partition_state to)
{
    enum hv_partition_state from = p->state;
    p->state = to;
    /* Listeners may unlisten themselves: iterate over a copy. They may not
     * start, stop or destroy p: the caller of set_state() still has work to
     * do on p (release its memory, free it), which a nested transition
     * would pull from under it. */
    struct hv_listener ls[HV_LISTENERS_MAX];
    memcpy(ls, p->listeners, sizeof(ls));
    bool outer = p->notifying;
    p->notifying = true;
    for (int i = 0; i < HV_LISTENERS_MAX; i++)
        if (ls[i].fn)
            ls[i].fn(ls[i].ctx, p, from, to);
    p->notifying = outer;
}

static bool name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > HV_PARTITION_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static int create_memory(struct hv_partition *p)
{
    char mname[64];
    snprintf(mname, sizeof(mname), "hv-part-%u-%s", p->id, p->name);
    return hv_mem_create(mname, p->mem_bytes, &p->mem_fd);
}

int hv_partition_create(struct hv_host *h, const struct hv_partition_params *params,
                        struct hv_partition **out)
{
    if (!params || !name_ok(params->name))
        return -EINVAL;
    if (params->memory_bytes < HV_PARTITION_MEM_MIN || params->memory_bytes > HV_PARTITION_MEM_MAX ||
        (params->memory_bytes & (HV_PAGE_SIZE - 1)) != 0)
        return -EINVAL;
    if (params->vp_count > HV_PARTITION_VPS_MAX)
        return -EINVAL;
    if (hv_host_find_name(h, params->name))
        return -EEXIST;
    const struct hv_partition_class *cls = params->cls ? params->cls : &hv_process_partition_class;

    struct hv_partition *p = cls->alloc();
    if (!p)
        return -ENOMEM;
    p->cls = cls;
    p->host = h;
    p->id = h->next_id;
    snprintf(p->name, sizeof(p->name), "%s", params->name);
    p->state = HV_PARTITION_CREATED;
    p->mem_bytes = params->memory_bytes;
    p->mem_fd = -1;
    p->sint_fd = -1;
    p->exit_status = -1;
    hv_synic_init(&p->synic, params->vp_count ? params->vp_count : 1);

    int rc = cls->construct(p, params);
    if (rc < 0)
        goto err_dealloc;
    rc = create_memory(p);
    if (rc < 0)
        goto err_destruct;

    h->next_id++;
    struct hv_partition **pp = &h->parts;
    while (*pp)
        pp = &(*pp)->next;
    *pp = p;
    h->stats.partitions_created++;
    *out = p;
    return 0;

err_destruct:
    cls->destruct(p);
err_dealloc:
    hv_synic_fini(&p->synic);
    cls->dealloc(p);
    return rc;
}

int hv_partition_start(struct hv_partition *p)
{
    if (p->notifying)
        return -EBUSY;
    if (!hv_partition_transition_ok(p->state, HV_PARTITION_RUNNING))
        return -EBUSY;
    int rc;
    if (p->mem_fd < 0) {
        rc = create_memory(p);
        if (rc < 0)
            return rc;
    }
    rc = hv_synic_open_fds(&p->synic);
    if (rc < 0)
        return rc;
    p->sint_fd = p->synic.vp[0].sint_fd;
    p->exit_status = -1;
    p->crashed = false;
    p->stopping = false;
    rc = p->cls->start(p);
    if (rc < 0) {
        hv_synic_close_fds(&p->synic);
        p->sint_fd = -1;
        return rc;
    }
    set_state(p, HV_PARTITION_RUNNING);
    return 0;
}

void hv_partition_exited(struct hv_partition *p, int status, bool asked)
{
    if (p->state != HV_PARTITION_RUNNING)
        return;
    p->exit_status = status;
    p->crashed = !asked;
    if (!asked)
        p->host->stats.partitions_crashed++;
    /* Listeners first: they stop every use of the guest's pages. */
    set_state(p, HV_PARTITION_STOPPED);
    hv_synic_reset(p);
    if (p->map_runs != 0)
        hv_log_limited(&p->log_rl, "hv: partition %s stopped with %u page runs still mapped",
                       p->name, p->map_runs);
    if (p->dma_view) {
        hv_log_limited(&p->log_rl, "hv: partition %s stopped with its DMA view still held",
                       p->name);
        munmap((void *)p->dma_view, p->mem_bytes);
        p->dma_view = NULL;
        p->dma_refs = 0;
    }
    if (p->mem_fd >= 0) {
        close(p->mem_fd);
        p->mem_fd = -1;
    }
    hv_synic_close_fds(&p->synic);
    p->sint_fd = -1;
}

int hv_partition_stop(struct hv_partition *p, int grace_ms)
{
    if (p->notifying)
        return -EBUSY;
    if (!hv_partition_transition_ok(p->state, HV_PARTITION_STOPPED))
        return -EINVAL;
    p->stopping = true;
    p->cls->stop(p, grace_ms);
    return p->state == HV_PARTITION_STOPPED ? 0 : -EIO;
}

int hv_partition_request_stop(struct hv_partition *p)
{
    if (p->notifying)
        return -EBUSY;
    if (p->state != HV_PARTITION_RUNNING)
        return -EINVAL;
    p->stopping = true;
    return p->cls->request_stop(p);
}

bool hv_partition_stopping(const struct hv_partition *p)
{
    return p->state == HV_PARTITION_RUNNING && p->stopping;
}

int hv_partition_destroy(struct hv_partition *p)
{
    if (!p)
        return 0;
    if (p->state == HV_PARTITION_RUNNING || p->notifying)
        return -EBUSY;
    if (!hv_partition_transition_ok(p->state, HV_PARTITION_DESTROYED))
        return -EINVAL;
    set_state(p, HV_PARTITION_DESTROYED);
    struct hv_host *h = p->host;
    for (struct hv_partition **pp = &h->parts; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    if (p->mem_fd >= 0)
        close(p->mem_fd);
    p->cls->destruct(p);
    hv_synic_fini(&p->synic);
    p->cls->dealloc(p);
    return 0;
}

uint32_t hv_partition_id(const struct hv_partition *p)
{
    return p->id;
}

const char *hv_partition_name(const struct hv_partition *p)
{
    return p->name;
}

enum hv_partition_state hv_partition_state(const struct hv_partition *p)
{
    return p->state;
}

struct hv_host *hv_partition_host(const struct hv_partition *p)
{
    return p->host;
}

uint64_t hv_partition_memory_size(const struct hv_partition *p)
{
    return p->mem_bytes;
}

uint32_t hv_partition_vp_count(const struct hv_partition *p)
{
    return p->synic.nvp;
}

uint64_t hv_partition_memory_pages(const struct hv_partition *p)
{
    return p->mem_bytes >> HV_PAGE_SHIFT;
}

int hv_partition_exit_status(const struct hv_partition *p)
{
    return p->exit_status;
}

bool hv_partition_crashed(const struct hv_partition *p)
{
    return p->crashed;
}

struct hv_partition *hv_host_find(const struct hv_host *h, uint32_t id)
{
    for (struct hv_partition *p = h->parts; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

struct hv_partition *hv_host_find_name(const struct hv_host *h, const char *name)
{
    for (struct hv_partition *p = h->parts; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

size_t hv_host_list(const struct hv_host *h, struct hv_partition **out, size_t max)
{
    size_t n = 0;
    for (struct hv_partition *p = h->parts; p; p = p->next) {
        if (n < max)
            out[n] = p;
        n++;
    }
    return n;
}

int hv_partition_listen(struct hv_partition *p, hv_partition_listener_fn fn, void *ctx)
{
    for (int i = 0; i < HV_LISTENERS_MAX; i++) {
        if (!p->listeners[i].fn) {
            p->listeners[i].fn = fn;
            p->listeners[i].ctx = ctx;
            return 0;
        }
    }
    return -ENOSPC;
}

void hv_partition_unlisten(struct hv_partition *p, hv_partition_listener_fn fn, void *ctx)
{
    for (int i = 0; i < HV_LISTENERS_MAX; i++) {
        if (p->listeners[i].fn == fn && p->listeners[i].ctx == ctx) {
            p->listeners[i].fn = NULL;
            p->listeners[i].ctx = NULL;
        }
    }
}

static int map_common(struct hv_partition *p, const uint64_t *pfns, uint32_t n, bool ring,
                      void **view)
{
    if (p->mem_fd < 0)
        return -ENODEV;
    uint32_t runs = hv_mem_count_runs(pfns, n);
    if (ring)
        runs = 1 + 2 * hv_mem_count_runs(pfns + 1, n > 0 ? n - 1 : 0);
    /* Only the control thread adds runs; deferred GPADL teardown may release
     * them from another thread, hence the atomics. */
    if (runs > HV_PARTITION_MAP_RUNS_MAX - __atomic_load_n(&p->map_runs, __ATOMIC_RELAXED)) {
        p->stats.map_refused++;
        return -ENOSPC;
    }
    int rc = hv_mem_map(p->mem_fd, hv_partition_memory_pages(p), pfns, n, ring, view, NULL);
    if (rc < 0) {
        p->stats.map_refused++;
        return rc;
    }
    __atomic_add_fetch(&p->map_runs, runs, __ATOMIC_RELAXED);
    return 0;
}

int hv_partition_map_pages(struct hv_partition *p, const uint64_t *pfns, uint32_t n, void **view)
{
    return map_common(p, pfns, n, false, view);
}

int hv_partition_map_ring(struct hv_partition *p, const uint64_t *pfns, uint32_t n, void **view)
{
    return map_common(p, pfns, n, true, view);
}

void hv_partition_unmap(struct hv_partition *p, void *view, const uint64_t *pfns, uint32_t n,
                        bool ring)
{
    if (!view)
        return;
    uint32_t runs = ring ? 1 + 2 * hv_mem_count_runs(pfns + 1, n - 1) : hv_mem_count_runs(pfns, n);
    hv_mem_unmap(view, hv_mem_view_len(n, ring));
    hv_partition_release_runs(p, runs);
}

int hv_partition_dma_get(struct hv_partition *p, const uint8_t **base)
{
    if (p->mem_fd < 0)
        return -ENODEV;
    if (!p->dma_view) {
        void *v = mmap(NULL, p->mem_bytes, PROT_READ, MAP_SHARED, p->mem_fd, 0);
        if (v == MAP_FAILED)
            return -errno;
        p->dma_view = v;
    }
    p->dma_refs++;
    *base = p->dma_view;
    return 0;
}

void hv_partition_dma_put(struct hv_partition *p)
{
    if (p->dma_refs == 0 || --p->dma_refs > 0)
        return;
    munmap((void *)p->dma_view, p->mem_bytes);
    p->dma_view = NULL;
}

void hv_partition_release_runs(struct hv_partition *p, uint32_t runs)
{
    __atomic_sub_fetch(&p->map_runs, runs, __ATOMIC_RELAXED);
}

struct hv_port *hv_partition_find_port(struct hv_partition *p, uint32_t conn_id)
{
    if (conn_id == 0)
        return NULL;
    for (int i = 0; i < HV_PARTITION_PORTS_MAX; i++)
        if (p->ports[i].conn_id == conn_id)
            return &p->ports[i];
    return NULL;
}

static int port_add(struct hv_partition *p, uint32_t conn_id, hv_msg_handler fn, void *ctx,
                    int event_fd)
{
    if (conn_id == 0)
        return -EINVAL;
    if (hv_partition_find_port(p, conn_id))
        return -EEXIST;
    for (int i = 0; i < HV_PARTITION_PORTS_MAX; i++) {
        struct hv_port *port = &p->ports[i];
        if (port->conn_id == 0) {
            port->conn_id = conn_id;
            port->msg_fn = fn;
            port->msg_ctx = ctx;
            port->event_fd = event_fd;
            return 0;
        }
    }
    return -ENOSPC;
}

int hv_partition_port_msg(struct hv_partition *p, uint32_t conn_id, hv_msg_handler fn, void *ctx)
{
    if (!fn)
        return -EINVAL;
    return port_add(p, conn_id, fn, ctx, -1);
}

int hv_partition_port_event(struct hv_partition *p, uint32_t conn_id, int event_fd)
{
    if (event_fd < 0)
        return -EINVAL;
    return port_add(p, conn_id, NULL, NULL, event_fd);
}

void hv_partition_port_remove(struct hv_partition *p, uint32_t conn_id)
{
    struct hv_port *port = hv_partition_find_port(p, conn_id);
    if (port)
        memset(port, 0, sizeof(*port));
}

static void signal_eventfd(struct hv_partition *p, int fd)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is saturated: the reader is woken anyway. */
    if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        hv_log_limited(&p->log_rl, "hv: partition %s: eventfd write: %s", p->name,
                       strerror(errno));
}

static int hc_post_message(struct hv_partition *p, const struct hv_hc_request *req)
{
    const struct hv_input_post_message *in = &req->input.post_message;
    if (req->input_size < offsetof(struct hv_input_post_message, payload))
        return HV_STATUS_INVALID_HYPERCALL_INPUT;
    if (in->reserved != 0)
        return HV_STATUS_INVALID_HYPERCALL_INPUT;
    if (in->payload_size > HV_MESSAGE_PAYLOAD_MAX ||
        req->input_size < offsetof(struct hv_input_post_message, payload) + in->payload_size)
        return HV_STATUS_INVALID_PARAMETER;
    if (in->message_type == 0 || (in->message_type & 0x80000000u))
        return HV_STATUS_INVALID_PARAMETER;
    struct hv_port *port = hv_partition_find_port(p, in->connection_id);
    if (!port || !port->msg_fn)
        return HV_STATUS_INVALID_CONNECTION_ID;
    int st = port->msg_fn(port->msg_ctx, p, in->connection_id, in->message_type, in->payload,
                          in->payload_size);
    if (st == HV_STATUS_SUCCESS)
        p->stats.messages_posted++;
    return st;
}

static int hc_signal_event(struct hv_partition *p, const struct hv_hc_request *req)
{
    const struct hv_input_signal_event *in = &req->input.signal_event;
    if (req->input_size != sizeof(*in) || in->reserved != 0)
        return HV_STATUS_INVALID_HYPERCALL_INPUT;
    struct hv_port *port = hv_partition_find_port(p, in->connection_id);
    if (!port || port->msg_fn)
        return HV_STATUS_INVALID_CONNECTION_ID;
    /* Our event ports have a single flag. */
    if (in->flag_number != 0)
        return HV_STATUS_INVALID_PARAMETER;
    signal_eventfd(p, port->event_fd);
    p->stats.guest_signals++;
    return HV_STATUS_SUCCESS;
}

static int hc_event_fd(struct hv_partition *p, const struct hv_hc_request *req, int *fd_out)
{
    const struct hv_input_event_fd *in = &req->input.event_fd;
    if (req->input_size != sizeof(*in) || in->reserved != 0)
        return HV_STATUS_INVALID_HYPERCALL_INPUT;
    struct hv_port *port = hv_partition_find_port(p, in->connection_id);
    if (!port || port->msg_fn)
        return HV_STATUS_INVALID_CONNECTION_ID;
    *fd_out = port->event_fd;
    return HV_STATUS_SUCCESS;
}

static int hypercall_dispatch(struct hv_partition *p, const void *buf, size_t len, int *fd_out)
{
    struct hv_hc_request req;
    size_t hdr = offsetof(struct hv_hc_request, input);
    if (len < hdr || len > sizeof(req))
        return HV_STATUS_INVALID_HYPERCALL_INPUT;
    memset(&req, 0, sizeof(req));
    memcpy(&req, buf, len); /* one copy; everything below reads the copy */
    if (req.magic != HV_HC_MAGIC || req.reserved != 0 || req.input_size != len - hdr)
        return HV_STATUS_INVALID_HYPERCALL_INPUT;
    if (p->state != HV_PARTITION_RUNNING)
        return HV_STATUS_INVALID_PARTITION_STATE;

    switch (req.call_code) {
    case HVCALL_POST_MESSAGE:
        return hc_post_message(p, &req);
    case HVCALL_SIGNAL_EVENT:
        return hc_signal_event(p, &req);
    case HVCALL_EXT_SYNIC_SETUP:
        if (req.input_size != sizeof(struct hv_input_synic_setup))
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        return hv_synic_setup(p, &req.input.synic_setup, fd_out);
    case HVCALL_EXT_EOM:
        if (req.input_size != sizeof(struct hv_input_eom))
            return HV_STATUS_INVALID_HYPERCALL_INPUT;
        return hv_synic_eom(p, req.input.eom.vp_index, req.input.eom.sint);
    case HVCALL_EXT_EVENT_FD:
        return hc_event_fd(p, &req, fd_out);
    default:
        return HV_STATUS_INVALID_HYPERCALL_CODE;
    }
}

int hv_hypercall(struct hv_partition *p, const void *buf, size_t len, int *fd_out)
{
    *fd_out = -1;
    int st = hypercall_dispatch(p, buf, len, fd_out);
    p->stats.hypercalls++;
    if (st != HV_STATUS_SUCCESS)
        p->stats.hypercalls_failed++;
    return st;
}

void hv_partition_get_stats(const struct hv_partition *p, struct hv_partition_stats *out)
{
    *out = p->stats;
    out->log_suppressed = hv_ratelimit_suppressed(&p->log_rl);
}
