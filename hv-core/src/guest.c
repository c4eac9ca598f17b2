/*
 * Guest side of hv-core: memory, page allocator, hypercall client, SynIC.
 */
#define _GNU_SOURCE
#include "hv-guest.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* One virtual processor's SynIC, as the guest sees it. */
struct hv_guest_vp {
    struct hv_message *simp;
    uint8_t *siefp;
    uint64_t simp_pfn, siefp_pfn;
    int sint_fd; /* -1 until known (VP 0: from the start; others: set-up) */
};

struct hv_guest {
    int mem_fd;
    int hc_fd; /* -1 with a custom transport */
    hv_guest_transport_fn transport;
    void *transport_ctx;
    uint8_t *mem;
    uint64_t mem_size;
    uint64_t npages;
    uint64_t *used; /* page bitmap */
    uint64_t free_pages;
    uint64_t scan_hint;
    uint32_t seq;
    uint32_t nvp;
    struct hv_guest_vp vp[HV_PARTITION_VPS_MAX];
};

static bool page_used(const struct hv_guest *g, uint64_t pfn)
{
    return g->used[pfn / 64] & (1ull << (pfn % 64));
}

static void page_set(struct hv_guest *g, uint64_t pfn, bool used)
{
    if (used)
        g->used[pfn / 64] |= 1ull << (pfn % 64);
    else
        g->used[pfn / 64] &= ~(1ull << (pfn % 64));
}

int hv_guest_attach(int mem_fd, int hc_fd, int sint_fd, struct hv_guest **out)
{
    struct stat st;
    if (fstat(mem_fd, &st) < 0)
        return -errno;
    if (st.st_size <= 0 || (st.st_size & (HV_PAGE_SIZE - 1)))
        return -EINVAL;
    struct hv_guest *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->mem_fd = mem_fd;
    g->hc_fd = hc_fd;
    g->nvp = 1;
    for (uint32_t v = 0; v < HV_PARTITION_VPS_MAX; v++)
        g->vp[v].sint_fd = -1;
    g->vp[0].sint_fd = sint_fd;
    g->mem_size = (uint64_t)st.st_size;
    g->npages = g->mem_size >> HV_PAGE_SHIFT;
    g->mem = mmap(NULL, g->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, mem_fd, 0);
    if (g->mem == MAP_FAILED) {
        int err = -errno;
        free(g);
        return err;
    }
    g->used = calloc((g->npages + 63) / 64, sizeof(uint64_t));
    if (!g->used) {
        munmap(g->mem, g->mem_size);
        free(g);
        return -ENOMEM;
    }
    page_set(g, 0, true); /* GPA 0 stays unused so that 0 can mean "none" */
    g->free_pages = g->npages - 1;
    g->scan_hint = 1;
    *out = g;
    return 0;
}

int hv_guest_attach_transport(int mem_fd, int sint_fd, hv_guest_transport_fn hc, void *ctx,
                              struct hv_guest **out)
{
    if (!hc)
        return -EINVAL;
    int rc = hv_guest_attach(mem_fd, -1, sint_fd, out);
    if (rc == 0) {
        (*out)->transport = hc;
        (*out)->transport_ctx = ctx;
    }
    return rc;
}

int hv_guest_attach_env(struct hv_guest **out)
{
    const char *s = getenv(HV_ENV_FDS);
    int m, h, e;
    if (!s || sscanf(s, "%d,%d,%d", &m, &h, &e) != 3)
        return -ENOENT;
    unsigned nvp = 1;
    const char *vps = getenv(HV_ENV_VPS);
    char extra;
    if (vps && sscanf(vps, "%u%c", &nvp, &extra) != 1)
        return -EINVAL;
    if (nvp == 0 || nvp > HV_PARTITION_VPS_MAX)
        return -EINVAL;
    int rc = hv_guest_attach(m, h, e, out);
    if (rc == 0)
        (*out)->nvp = nvp;
    return rc;
}

int hv_guest_set_vp_count(struct hv_guest *g, uint32_t n)
{
    if (n == 0 || n > HV_PARTITION_VPS_MAX)
        return -EINVAL;
    for (uint32_t v = 0; v < g->nvp; v++)
        if (g->vp[v].simp)
            return -EBUSY;
    g->nvp = n;
    return 0;
}

uint32_t hv_guest_vp_count(const struct hv_guest *g)
{
    return g->nvp;
}

void hv_guest_detach(struct hv_guest *g)
{
    if (!g)
        return;
    munmap(g->mem, g->mem_size);
    free(g->used);
    close(g->mem_fd);
    if (g->hc_fd >= 0)
        close(g->hc_fd);
    for (uint32_t v = 0; v < HV_PARTITION_VPS_MAX; v++)
        if (g->vp[v].sint_fd >= 0)
            close(g->vp[v].sint_fd);
    free(g);
}

uint8_t *hv_guest_mem(const struct hv_guest *g)
{
    return g->mem;
}

uint64_t hv_guest_mem_size(const struct hv_guest *g)
{
    return g->mem_size;
}

int hv_guest_mem_fd(const struct hv_guest *g)
{
    return g->mem_fd;
}

uint64_t hv_guest_free_page_count(const struct hv_guest *g)
{
    return g->free_pages;
}

int hv_guest_alloc_pages(struct hv_guest *g, uint32_t n, uint64_t *first_pfn)
{
    if (n == 0 || n > g->free_pages)
        return -ENOMEM;
    /* First fit from the hint, wrapping once. */
    for (int pass = 0; pass < 2; pass++) {
        uint64_t start = pass == 0 ? g->scan_hint : 1;
        uint64_t run = 0;
        for (uint64_t pfn = start; pfn < g->npages; pfn++) {
            if (page_used(g, pfn)) {
                run = 0;
                continue;
            }
            if (++run == n) {
                uint64_t first = pfn + 1 - n;
                for (uint64_t i = first; i <= pfn; i++)
                    page_set(g, i, true);
                memset(g->mem + (first << HV_PAGE_SHIFT), 0, (size_t)n << HV_PAGE_SHIFT);
                g->free_pages -= n;
                g->scan_hint = pfn + 1;
                *first_pfn = first;
                return 0;
            }
        }
    }
    return -ENOMEM;
}

int hv_guest_alloc_scattered(struct hv_guest *g, uint32_t n, uint64_t *pfns)
{
    if (n == 0 || n > g->free_pages)
        return -ENOMEM;
    /* Take every other free page first, then fill in. */
    uint32_t got = 0;
    for (int pass = 0; pass < 2 && got < n; pass++) {
        bool skip = false;
        for (uint64_t pfn = 1; pfn < g->npages && got < n; pfn++) {
            if (page_used(g, pfn))
                continue;
            if (pass == 0) {
                skip = !skip;
                if (!skip)
                    continue;
            }
            page_set(g, pfn, true);
            memset(g->mem + (pfn << HV_PAGE_SHIFT), 0, HV_PAGE_SIZE);
            pfns[got++] = pfn;
        }
    }
    g->free_pages -= got;
    if (got < n) {
        hv_guest_free_pages(g, pfns, got);
        return -ENOMEM;
    }
    return 0;
}

void hv_guest_free_pages(struct hv_guest *g, const uint64_t *pfns, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (pfns[i] != 0 && pfns[i] < g->npages && page_used(g, pfns[i])) {
            page_set(g, pfns[i], false);
            g->free_pages++;
        }
    }
}

void hv_guest_free_range(struct hv_guest *g, uint64_t first_pfn, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint64_t pfn = first_pfn + i;
        if (pfn != 0 && pfn < g->npages && page_used(g, pfn)) {
            page_set(g, pfn, false);
            g->free_pages++;
        }
    }
    if (first_pfn < g->scan_hint)
        g->scan_hint = first_pfn ? first_pfn : 1;
}

static int hypercall(struct hv_guest *g, const void *rec, size_t len, int *fd_out)
{
    if (fd_out)
        *fd_out = -1;
    if (g->transport) {
        int fd = -1;
        int st = g->transport(g->transport_ctx, rec, len, &fd);
        if (fd_out)
            *fd_out = fd;
        else if (fd >= 0)
            close(fd);
        return st;
    }
    uint32_t seq;
    memcpy(&seq, (const uint8_t *)rec + offsetof(struct hv_hc_request, seq), sizeof(seq));
    ssize_t n;
    do {
        n = send(g->hc_fd, rec, len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;

    for (;;) {
        struct hv_hc_response resp;
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {.iov_base = &resp, .iov_len = sizeof(resp)};
        struct msghdr mh = {
            .msg_iov = &iov,
            .msg_iovlen = 1,
            .msg_control = ctl.buf,
            .msg_controllen = sizeof(ctl.buf),
        };
        n = recvmsg(g->hc_fd, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -ECONNRESET;
        int fd = -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                c->cmsg_len >= CMSG_LEN(sizeof(int)))
                memcpy(&fd, CMSG_DATA(c), sizeof(int));
        if ((size_t)n != sizeof(resp) || resp.magic != HV_HC_MAGIC || resp.seq != seq) {
            if (fd >= 0)
                close(fd);
            if ((size_t)n == sizeof(resp) && resp.magic == HV_HC_MAGIC && resp.seq != seq)
                continue; /* an answer to an abandoned call */
            return -EPROTO;
        }
        if (fd_out)
            *fd_out = fd;
        else if (fd >= 0)
            close(fd);
        return resp.status;
    }
}

static void req_init(struct hv_guest *g, struct hv_hc_request *req, uint16_t code, uint32_t isize)
{
    memset(req, 0, sizeof(*req));
    req->magic = HV_HC_MAGIC;
    req->call_code = code;
    req->seq = ++g->seq;
    req->input_size = isize;
}

#define REQ_LEN(isize) (offsetof(struct hv_hc_request, input) + (isize))

int hv_guest_post_message(struct hv_guest *g, uint32_t conn_id, uint32_t msg_type,
                          const void *payload, uint32_t len)
{
    if (len > HV_MESSAGE_PAYLOAD_MAX)
        return -EINVAL;
    struct hv_hc_request req;
    uint32_t isize = (uint32_t)offsetof(struct hv_input_post_message, payload) + len;
    req_init(g, &req, HVCALL_POST_MESSAGE, isize);
    req.input.post_message.connection_id = conn_id;
    req.input.post_message.message_type = msg_type;
    req.input.post_message.payload_size = len;
    if (len)
        memcpy(req.input.post_message.payload, payload, len);
    return hypercall(g, &req, REQ_LEN(isize), NULL);
}

int hv_guest_signal_event(struct hv_guest *g, uint32_t conn_id, uint16_t flag)
{
    struct hv_hc_request req;
    req_init(g, &req, HVCALL_SIGNAL_EVENT, sizeof(struct hv_input_signal_event));
    req.input.signal_event.connection_id = conn_id;
    req.input.signal_event.flag_number = flag;
    return hypercall(g, &req, REQ_LEN(sizeof(struct hv_input_signal_event)), NULL);
}

int hv_guest_get_event_fd(struct hv_guest *g, uint32_t conn_id, int *fd_out)
{
    struct hv_hc_request req;
    req_init(g, &req, HVCALL_EXT_EVENT_FD, sizeof(struct hv_input_event_fd));
    req.input.event_fd.connection_id = conn_id;
    int st = hypercall(g, &req, REQ_LEN(sizeof(struct hv_input_event_fd)), fd_out);
    if (st == HV_STATUS_SUCCESS && *fd_out < 0)
        return -EPROTO;
    return st;
}

int hv_guest_raw_hypercall(struct hv_guest *g, const void *rec, uint32_t len, int *fd_out)
{
    if (len < offsetof(struct hv_hc_request, input))
        return -EINVAL;
    return hypercall(g, rec, len, fd_out);
}

int hv_guest_synic_enable_vp(struct hv_guest *g, uint32_t vp, uint32_t sint_mask)
{
    if (vp >= g->nvp)
        return -EINVAL;
    uint64_t first;
    int rc = hv_guest_alloc_pages(g, 2, &first);
    if (rc < 0)
        return rc;
    struct hv_hc_request req;
    req_init(g, &req, HVCALL_EXT_SYNIC_SETUP, sizeof(struct hv_input_synic_setup));
    req.input.synic_setup.simp_gpa = first << HV_PAGE_SHIFT;
    req.input.synic_setup.siefp_gpa = (first + 1) << HV_PAGE_SHIFT;
    req.input.synic_setup.sint_mask = sint_mask;
    req.input.synic_setup.vp_index = vp;
    int fd = -1;
    int st = hypercall(g, &req, REQ_LEN(sizeof(struct hv_input_synic_setup)), &fd);
    if (st == HV_STATUS_SUCCESS && vp != 0 && fd < 0)
        st = -EPROTO; /* the root owes us this VP's SINT eventfd */
    if (st != HV_STATUS_SUCCESS) {
        if (fd >= 0)
            close(fd);
        hv_guest_free_range(g, first, 2);
        return st;
    }
    struct hv_guest_vp *v = &g->vp[vp];
    if (vp != 0) {
        if (v->sint_fd >= 0)
            close(v->sint_fd);
        v->sint_fd = fd;
    } else if (fd >= 0) {
        close(fd);
    }
    v->simp_pfn = first;
    v->siefp_pfn = first + 1;
    v->simp = hv_guest_pfn_ptr(g, first);
    v->siefp = hv_guest_pfn_ptr(g, first + 1);
    return HV_STATUS_SUCCESS;
}

int hv_guest_synic_enable(struct hv_guest *g, uint32_t sint_mask)
{
    for (uint32_t vp = 0; vp < g->nvp; vp++) {
        int st = hv_guest_synic_enable_vp(g, vp, sint_mask);
        if (st != HV_STATUS_SUCCESS)
            return st;
    }
    return HV_STATUS_SUCCESS;
}

int hv_guest_sint_fd(const struct hv_guest *g)
{
    return g->vp[0].sint_fd;
}

int hv_guest_vp_sint_fd(const struct hv_guest *g, uint32_t vp)
{
    return vp < g->nvp ? g->vp[vp].sint_fd : -1;
}

int hv_guest_recv_message_vp(struct hv_guest *g, uint32_t vp, uint32_t sint,
                             struct hv_message *out)
{
    if (vp >= g->nvp || !g->vp[vp].simp || sint >= HV_SINT_COUNT)
        return -ENOTCONN;
    struct hv_message *slot = &g->vp[vp].simp[sint];
    uint32_t type = __atomic_load_n(&slot->message_type, __ATOMIC_ACQUIRE);
    if (type == HVMSG_NONE)
        return -EAGAIN;
    memcpy(out, slot, sizeof(*out));
    out->message_type = type;
    if (out->payload_size > HV_MESSAGE_PAYLOAD_MAX)
        out->payload_size = HV_MESSAGE_PAYLOAD_MAX;
    /* Free the slot, then look for MessagePending (see synic.c). */
    __atomic_store_n(&slot->message_type, HVMSG_NONE, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    /* The flag is the root's to clear (it rewrites flags with every
     * delivery); clearing it here could erase the flag of a newer message. */
    if (__atomic_load_n(&slot->flags, __ATOMIC_RELAXED) & HV_MESSAGE_FLAG_PENDING) {
        struct hv_hc_request req;
        req_init(g, &req, HVCALL_EXT_EOM, sizeof(struct hv_input_eom));
        req.input.eom.sint = sint;
        req.input.eom.vp_index = vp;
        int st = hypercall(g, &req, REQ_LEN(sizeof(struct hv_input_eom)), NULL);
        if (st < 0)
            return st;
    }
    return 0;
}

int hv_guest_recv_message(struct hv_guest *g, uint32_t sint, struct hv_message *out)
{
    return hv_guest_recv_message_vp(g, 0, sint, out);
}

bool hv_guest_event_test_clear_vp(struct hv_guest *g, uint32_t vp, uint32_t sint, uint32_t flag)
{
    if (vp >= g->nvp || sint >= HV_SINT_COUNT || flag >= HV_EVENT_FLAGS_COUNT)
        return false;
    uint8_t *siefp = g->vp[vp].siefp;
    if (!siefp)
        return false;
    uint64_t *word = (uint64_t *)(siefp + sint * HV_EVENT_FLAGS_BYTES) + flag / 64;
    uint64_t bit = 1ull << (flag % 64);
    if (!(__atomic_load_n(word, __ATOMIC_RELAXED) & bit))
        return false;
    return __atomic_fetch_and(word, ~bit, __ATOMIC_SEQ_CST) & bit;
}

bool hv_guest_event_test_clear(struct hv_guest *g, uint32_t sint, uint32_t flag)
{
    return hv_guest_event_test_clear_vp(g, 0, sint, flag);
}

int hv_guest_wait_vps(struct hv_guest *g, uint64_t vps, int timeout_ms)
{
    struct pollfd pfd[HV_PARTITION_VPS_MAX];
    nfds_t n = 0;
    for (uint32_t v = 0; v < g->nvp; v++)
        if ((vps >> v) & 1 && g->vp[v].sint_fd >= 0)
            pfd[n++] = (struct pollfd){.fd = g->vp[v].sint_fd, .events = POLLIN};
    if (n == 0)
        return -EINVAL;
    int rc;
    do {
        rc = poll(pfd, n, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        return -errno;
    if (rc == 0)
        return 0;
    for (nfds_t i = 0; i < n; i++) {
        uint64_t v;
        if ((pfd[i].revents & POLLIN) && read(pfd[i].fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
            return -errno;
    }
    return 1;
}

int hv_guest_wait(struct hv_guest *g, int timeout_ms)
{
    return hv_guest_wait_vps(g, 1, timeout_ms);
}
