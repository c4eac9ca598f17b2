/* VMBus client (guest side). */
#define _GNU_SOURCE
#include "vmbus-client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hv-private.h"
#include "vmbus-msg.h"

#define RESP_QUEUE_LEN 32

struct resp {
    uint32_t type;
    uint32_t len;
    uint8_t data[HV_MESSAGE_PAYLOAD_MAX];
};

struct vmbus_gchan {
    struct vmbus_client *client;
    struct vmbus_gchan *next;
    uint32_t relid;
    uint32_t conn_id;
    uint32_t gpadl;
    uint32_t npages;
    uint64_t *pfns;
    uint32_t split;
    uint32_t vp; /* target VP of the channel's interrupts */
    void *view[2];
    struct vmbus_ring tx, rx;
    int event_fd;
    bool rescinded;
};

struct vmbus_client {
    struct hv_guest *g;
    int timeout_ms;
    uint32_t version;
    uint32_t msg_conn_id;
    uint32_t next_gpadl;
    struct vmbus_offer_info offers[VMBUS_CLIENT_MAX_OFFERS];
    int noffers;
    bool offers_done;
    bool offers_changed;
    struct vmbus_gchan *chans;
    struct resp queue[RESP_QUEUE_LEN];
    int qhead, qcount;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct vmbus_offer_info *offer_by_relid(struct vmbus_client *c, uint32_t relid)
{
    for (int i = 0; i < c->noffers; i++)
        if (c->offers[i].relid == relid)
            return &c->offers[i];
    return NULL;
}

static void drop_offer(struct vmbus_client *c, uint32_t relid)
{
    for (int i = 0; i < c->noffers; i++) {
        if (c->offers[i].relid == relid) {
            c->offers[i] = c->offers[--c->noffers];
            return;
        }
    }
}

static struct vmbus_gchan *gchan_by_relid(struct vmbus_client *c, uint32_t relid)
{
    for (struct vmbus_gchan *ch = c->chans; ch; ch = ch->next)
        if (ch->relid == relid)
            return ch;
    return NULL;
}

static int post(struct vmbus_client *c, uint32_t conn_id, const void *msg, uint32_t len);

/* Handle one message from the root: offers and rescinds update state,
 * everything else is an answer someone waits for. */
static void dispatch(struct vmbus_client *c, const struct hv_message *m)
{
    if (m->message_type != HVMSG_VMBUS)
        return;
    int type = vmbus_msg_check(m->payload, m->payload_size, false, c->version);
    if (type < 0) {
        fprintf(stderr, "vmbus-client: dropping malformed message from root (%d)\n", -type);
        return;
    }
    if (type == VMBUS_MSG_OFFERCHANNEL) {
        struct vmbus_msg_offer o;
        memcpy(&o, m->payload, sizeof(o));
        if (o.child_relid == 0 || offer_by_relid(c, o.child_relid) ||
            c->noffers == VMBUS_CLIENT_MAX_OFFERS)
            return;
        struct vmbus_offer_info *oi = &c->offers[c->noffers++];
        memset(oi, 0, sizeof(*oi));
        oi->class_id = o.interface_type;
        oi->instance_id = o.interface_instance;
        oi->relid = o.child_relid;
        oi->conn_id = o.connection_id;
        oi->sub_channel_index = o.sub_channel_index;
        memcpy(oi->user_defined, o.user_defined, sizeof(oi->user_defined));
        c->offers_changed = true;
        return;
    }
    if (type == VMBUS_MSG_ALLOFFERS_DELIVERED) {
        c->offers_done = true;
        return;
    }
    if (type == VMBUS_MSG_RESCIND_CHANNELOFFER) {
        struct vmbus_msg_relid r;
        memcpy(&r, m->payload, sizeof(r));
        struct vmbus_gchan *ch = gchan_by_relid(c, r.child_relid);
        c->offers_changed = true;
        if (ch) {
            ch->rescinded = true; /* released when the owner closes it */
            struct vmbus_offer_info *oi = offer_by_relid(c, r.child_relid);
            if (oi)
                oi->rescinded = true;
        } else if (offer_by_relid(c, r.child_relid)) {
            drop_offer(c, r.child_relid);
            struct vmbus_msg_relid rel = {{VMBUS_MSG_RELID_RELEASED, 0}, r.child_relid};
            post(c, c->msg_conn_id, &rel, sizeof(rel));
        }
        return;
    }
    if (c->qcount == RESP_QUEUE_LEN) {
        fprintf(stderr, "vmbus-client: answer queue full, dropping %s\n", vmbus_msg_name(type));
        return;
    }
    struct resp *r = &c->queue[(c->qhead + c->qcount) % RESP_QUEUE_LEN];
    r->type = (uint32_t)type;
    r->len = m->payload_size;
    memcpy(r->data, m->payload, m->payload_size);
    c->qcount++;
}

static int drain(struct vmbus_client *c)
{
    struct hv_message m;
    int n = 0, rc;
    while ((rc = hv_guest_recv_message(c->g, VMBUS_MESSAGE_SINT, &m)) == 0) {
        dispatch(c, &m);
        n++;
    }
    return rc == -EAGAIN ? n : rc;
}

int vmbus_client_poll(struct vmbus_client *c)
{
    return drain(c);
}

bool vmbus_client_offers_changed(struct vmbus_client *c)
{
    bool v = c->offers_changed;
    c->offers_changed = false;
    return v;
}

/* Post, retrying while the root's queue for us is full (draining our own
 * slot so that it can make progress). */
static int post(struct vmbus_client *c, uint32_t conn_id, const void *msg, uint32_t len)
{
    uint64_t deadline = now_ms() + (uint64_t)c->timeout_ms;
    for (;;) {
        int st = hv_guest_post_message(c->g, conn_id, HVMSG_VMBUS, msg, len);
        if (st < 0)
            return st;
        if (st == HV_STATUS_SUCCESS)
            return 0;
        if (st != HV_STATUS_INSUFFICIENT_BUFFERS)
            return -EIO;
        int rc = drain(c);
        if (rc < 0)
            return rc;
        if (now_ms() >= deadline)
            return -ETIMEDOUT;
        if (rc == 0)
            usleep(1000);
    }
}

/* Wait for the next answer of `type`; a match function narrows it down. */
static int wait_for(struct vmbus_client *c, uint32_t type,
                    bool (*match)(const struct resp *, const void *), const void *arg,
                    struct resp *out, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)(timeout_ms < 0 ? c->timeout_ms : timeout_ms);
    for (;;) {
        int rc = drain(c);
        if (rc < 0)
            return rc;
        for (int i = 0; i < c->qcount; i++) {
            int idx = (c->qhead + i) % RESP_QUEUE_LEN;
            struct resp *r = &c->queue[idx];
            if (r->type == type && (!match || match(r, arg))) {
                *out = *r;
                /* Remove entry i, keeping the others in order. */
                for (int j = i; j > 0; j--)
                    c->queue[(c->qhead + j) % RESP_QUEUE_LEN] =
                        c->queue[(c->qhead + j - 1) % RESP_QUEUE_LEN];
                c->qhead = (c->qhead + 1) % RESP_QUEUE_LEN;
                c->qcount--;
                return 0;
            }
        }
        uint64_t now = now_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        rc = hv_guest_wait(c->g, (int)(deadline - now));
        if (rc < 0)
            return rc;
    }
}

static int negotiate(struct vmbus_client *c)
{
    for (size_t i = 0; i < VMBUS_VERSION_COUNT; i++) {
        uint32_t ver = vmbus_versions[i];
        struct vmbus_msg_initiate_contact m;
        memset(&m, 0, sizeof(m));
        m.hdr.msgtype = VMBUS_MSG_INITIATE_CONTACT;
        m.version_requested = ver;
        m.target_vcpu = 0;
        uint32_t conn = VMBUS_MESSAGE_CONNECTION_ID;
        if (ver >= VMBUS_VERSION_WIN10_V5) {
            m.u.v5.msg_sint = VMBUS_MESSAGE_SINT;
            conn = VMBUS_MESSAGE_CONNECTION_ID_4;
        }
        int rc = post(c, conn, &m, sizeof(m));
        if (rc < 0)
            return rc;
        struct resp r;
        /* Answers before VERSION_RESPONSE are judged as "not connected". */
        rc = wait_for(c, VMBUS_MSG_VERSION_RESPONSE, NULL, NULL, &r, -1);
        if (rc < 0)
            return rc;
        struct vmbus_msg_version_response vr;
        memcpy(&vr, r.data, sizeof(vr));
        if (vr.version_supported) {
            c->version = ver;
            c->msg_conn_id = ver >= VMBUS_VERSION_WIN10_V5 ? vr.msg_conn_id
                                                            : VMBUS_MESSAGE_CONNECTION_ID;
            return 0;
        }
    }
    return -EPROTONOSUPPORT;
}

static int request_offers(struct vmbus_client *c)
{
    struct vmbus_msg_hdr h = {VMBUS_MSG_REQUESTOFFERS, 0};
    c->noffers = 0;
    c->offers_done = false;
    int rc = post(c, c->msg_conn_id, &h, sizeof(h));
    if (rc < 0)
        return rc;
    uint64_t deadline = now_ms() + (uint64_t)c->timeout_ms;
    while (!c->offers_done) {
        rc = drain(c);
        if (rc < 0)
            return rc;
        if (c->offers_done)
            break;
        uint64_t now = now_ms();
        if (now >= deadline)
            return -ETIMEDOUT;
        rc = hv_guest_wait(c->g, (int)(deadline - now));
        if (rc < 0)
            return rc;
    }
    return 0;
}

int vmbus_client_reconnect(struct vmbus_client *c)
{
    int rc = negotiate(c);
    if (rc == 0)
        rc = request_offers(c);
    return rc;
}

int vmbus_client_connect(struct hv_guest *g, int timeout_ms, struct vmbus_client **out)
{
    struct vmbus_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->g = g;
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    c->next_gpadl = VMBUS_CLIENT_GPADL_BASE;
    int st = hv_guest_synic_enable(g, 1u << VMBUS_MESSAGE_SINT);
    /* Already enabled by an earlier client of this guest is fine. */
    if (st < 0 || (st != HV_STATUS_SUCCESS && st != HV_STATUS_INVALID_PARTITION_STATE)) {
        free(c);
        return st < 0 ? st : -EIO;
    }
    int rc = vmbus_client_reconnect(c);
    if (rc < 0) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static void gchan_free(struct vmbus_gchan *ch)
{
    struct vmbus_client *c = ch->client;
    for (struct vmbus_gchan **pp = &c->chans; *pp; pp = &(*pp)->next) {
        if (*pp == ch) {
            *pp = ch->next;
            break;
        }
    }
    if (ch->view[0])
        hv_mem_unmap(ch->view[0], hv_mem_view_len(ch->split, true));
    if (ch->view[1])
        hv_mem_unmap(ch->view[1], hv_mem_view_len(ch->npages - ch->split, true));
    if (ch->event_fd >= 0)
        close(ch->event_fd);
    if (ch->pfns) {
        hv_guest_free_pages(c->g, ch->pfns, ch->npages);
        free(ch->pfns);
    }
    free(ch);
}

int vmbus_client_unload(struct vmbus_client *c)
{
    struct vmbus_msg_hdr h = {VMBUS_MSG_UNLOAD, 0};
    int rc = post(c, c->msg_conn_id ? c->msg_conn_id : VMBUS_MESSAGE_CONNECTION_ID, &h, sizeof(h));
    if (rc == 0) {
        struct resp r;
        rc = wait_for(c, VMBUS_MSG_UNLOAD_RESPONSE, NULL, NULL, &r, -1);
    }
    while (c->chans)
        gchan_free(c->chans);
    c->version = 0;
    c->noffers = 0;
    c->qcount = 0;
    return rc;
}

void vmbus_client_destroy(struct vmbus_client *c)
{
    if (!c)
        return;
    if (c->version) {
        int saved = c->timeout_ms;
        c->timeout_ms = saved < 1000 ? saved : 1000;
        vmbus_client_unload(c);
    }
    while (c->chans)
        gchan_free(c->chans);
    free(c);
}

uint32_t vmbus_client_version(const struct vmbus_client *c)
{
    return c->version;
}

struct hv_guest *vmbus_client_guest(const struct vmbus_client *c)
{
    return c->g;
}

int vmbus_client_find(const struct vmbus_client *c, const struct vmbus_guid *class_id,
                      unsigned idx, struct vmbus_offer_info *out)
{
    for (int i = 0; i < c->noffers; i++) {
        if (!c->offers[i].rescinded &&
            memcmp(&c->offers[i].class_id, class_id, sizeof(*class_id)) == 0) {
            if (idx-- == 0) {
                *out = c->offers[i];
                return 0;
            }
        }
    }
    return -ENOENT;
}

int vmbus_client_offers(const struct vmbus_client *c, struct vmbus_offer_info *out, int max)
{
    for (int i = 0; i < c->noffers && i < max; i++)
        out[i] = c->offers[i];
    return c->noffers;
}

static bool match_gpadl_created(const struct resp *r, const void *arg)
{
    struct vmbus_msg_gpadl_created m;
    memcpy(&m, r->data, sizeof(m));
    return m.gpadl == *(const uint32_t *)arg;
}

int vmbus_client_gpadl_create(struct vmbus_client *c, uint32_t relid, const uint64_t *pfns,
                              uint32_t n, uint32_t *gpadl_out)
{
    if (n == 0 || (uint64_t)n * 8 + 8 > 0xffff)
        return -EINVAL;
    uint32_t id = c->next_gpadl++;
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    struct vmbus_msg_gpadl_header h;
    memset(&h, 0, sizeof(h));
    h.hdr.msgtype = VMBUS_MSG_GPADL_HEADER;
    h.child_relid = relid;
    h.gpadl = id;
    h.rangecount = 1;
    h.range_buflen = (uint16_t)(sizeof(struct vmbus_gpa_range) + (size_t)n * 8u);
    struct vmbus_gpa_range rg = {.byte_count = n * HV_PAGE_SIZE, .byte_offset = 0};
    uint32_t first = n < VMBUS_GPADL_HEADER_MAX_PFNS ? n : (uint32_t)VMBUS_GPADL_HEADER_MAX_PFNS;
    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), &rg, sizeof(rg));
    memcpy(buf + sizeof(h) + sizeof(rg), pfns, (size_t)first * 8u);
    int rc = post(c, c->msg_conn_id, buf, (uint32_t)(sizeof(h) + sizeof(rg) + first * 8u));
    uint32_t sent = first;
    for (uint32_t msgno = 1; rc == 0 && sent < n; msgno++) {
        uint32_t k = n - sent;
        if (k > VMBUS_GPADL_BODY_MAX_PFNS)
            k = (uint32_t)VMBUS_GPADL_BODY_MAX_PFNS;
        struct vmbus_msg_gpadl_body b = {{VMBUS_MSG_GPADL_BODY, 0}, msgno, id};
        memcpy(buf, &b, sizeof(b));
        memcpy(buf + sizeof(b), pfns + sent, (size_t)k * 8u);
        rc = post(c, c->msg_conn_id, buf, (uint32_t)(sizeof(b) + k * 8u));
        sent += k;
    }
    if (rc < 0)
        return rc;
    struct resp r;
    rc = wait_for(c, VMBUS_MSG_GPADL_CREATED, match_gpadl_created, &id, &r, -1);
    if (rc < 0)
        return rc;
    struct vmbus_msg_gpadl_created m;
    memcpy(&m, r.data, sizeof(m));
    if (m.status != 0)
        return -EREMOTEIO;
    *gpadl_out = id;
    return 0;
}

static bool match_torndown(const struct resp *r, const void *arg)
{
    struct vmbus_msg_gpadl_torndown m;
    memcpy(&m, r->data, sizeof(m));
    return m.gpadl == *(const uint32_t *)arg;
}

int vmbus_client_gpadl_teardown(struct vmbus_client *c, uint32_t relid, uint32_t gpadl)
{
    struct vmbus_msg_gpadl_teardown m = {{VMBUS_MSG_GPADL_TEARDOWN, 0}, relid, gpadl};
    int rc = post(c, c->msg_conn_id, &m, sizeof(m));
    if (rc < 0)
        return rc;
    struct resp r;
    return wait_for(c, VMBUS_MSG_GPADL_TORNDOWN, match_torndown, &gpadl, &r, -1);
}

static bool match_open_result(const struct resp *r, const void *arg)
{
    struct vmbus_msg_open_result m;
    memcpy(&m, r->data, sizeof(m));
    return m.child_relid == *(const uint32_t *)arg;
}

int vmbus_client_open(struct vmbus_client *c, uint32_t relid, const struct vmbus_gchan_params *p,
                      struct vmbus_gchan **out)
{
    struct vmbus_offer_info *oi = offer_by_relid(c, relid);
    if (!oi || oi->rescinded)
        return -ENOENT;
    if (gchan_by_relid(c, relid))
        return -EBUSY;
    if (p->tx_pages < 2 || p->rx_pages < 2 || p->target_vp >= hv_guest_vp_count(c->g))
        return -EINVAL;
    struct vmbus_gchan *ch = calloc(1, sizeof(*ch));
    if (!ch)
        return -ENOMEM;
    ch->client = c;
    ch->relid = relid;
    ch->conn_id = oi->conn_id;
    ch->event_fd = -1;
    ch->vp = p->target_vp;
    ch->npages = p->tx_pages + p->rx_pages;
    ch->split = p->tx_pages;
    ch->next = c->chans;
    c->chans = ch;
    int rc;
    ch->pfns = calloc(ch->npages, sizeof(uint64_t));
    if (!ch->pfns) {
        rc = -ENOMEM;
        goto fail;
    }
    if (p->scattered) {
        rc = hv_guest_alloc_scattered(c->g, ch->npages, ch->pfns);
    } else {
        uint64_t first;
        rc = hv_guest_alloc_pages(c->g, ch->npages, &first);
        for (uint32_t i = 0; rc == 0 && i < ch->npages; i++)
            ch->pfns[i] = first + i;
    }
    if (rc < 0) {
        free(ch->pfns);
        ch->pfns = NULL;
        goto fail;
    }
    uint64_t npages = hv_guest_mem_size(c->g) >> HV_PAGE_SHIFT;
    int fd = hv_guest_mem_fd(c->g);
    rc = hv_mem_map(fd, npages, ch->pfns, ch->split, true, &ch->view[0], NULL);
    if (rc == 0)
        rc = hv_mem_map(fd, npages, ch->pfns + ch->split, ch->npages - ch->split, true,
                        &ch->view[1], NULL);
    if (rc < 0)
        goto fail;
    vmbus_ring_format(ch->view[0]);
    vmbus_ring_format(ch->view[1]);
    if ((rc = vmbus_ring_init_producer(&ch->tx, ch->view[0], (ch->split - 1) * HV_PAGE_SIZE)) < 0 ||
        (rc = vmbus_ring_init_consumer(&ch->rx, ch->view[1],
                                       (ch->npages - ch->split - 1) * HV_PAGE_SIZE,
                                       VMBUS_RING_TYPES_DEFAULT)) < 0)
        goto fail;

    rc = vmbus_client_gpadl_create(c, relid, ch->pfns, ch->npages, &ch->gpadl);
    if (rc < 0)
        goto fail;
    struct vmbus_msg_open m;
    memset(&m, 0, sizeof(m));
    m.hdr.msgtype = VMBUS_MSG_OPENCHANNEL;
    m.child_relid = relid;
    m.open_id = relid;
    m.ring_gpadl = ch->gpadl;
    m.target_vp = ch->vp;
    m.downstream_page_offset = ch->split;
    rc = post(c, c->msg_conn_id, &m, sizeof(m));
    struct resp r;
    if (rc == 0)
        rc = wait_for(c, VMBUS_MSG_OPENCHANNEL_RESULT, match_open_result, &relid, &r, -1);
    if (rc == 0) {
        struct vmbus_msg_open_result res;
        memcpy(&res, r.data, sizeof(res));
        if (res.status != 0)
            rc = -EREMOTEIO;
    }
    if (rc < 0) {
        vmbus_client_gpadl_teardown(c, relid, ch->gpadl);
        goto fail;
    }
    int st = hv_guest_get_event_fd(c->g, ch->conn_id, &ch->event_fd);
    if (st != HV_STATUS_SUCCESS) {
        ch->event_fd = -1;
        rc = st < 0 ? st : -EIO;
        vmbus_client_close(ch);
        return rc;
    }
    *out = ch;
    return 0;

fail:
    gchan_free(ch);
    return rc;
}

int vmbus_client_close(struct vmbus_gchan *ch)
{
    struct vmbus_client *c = ch->client;
    struct vmbus_msg_relid m = {{VMBUS_MSG_CLOSECHANNEL, 0}, ch->relid};
    int rc = post(c, c->msg_conn_id, &m, sizeof(m));
    if (rc == 0)
        rc = vmbus_client_gpadl_teardown(c, ch->relid, ch->gpadl);
    uint32_t relid = ch->relid;
    bool rescinded = ch->rescinded;
    gchan_free(ch);
    if (rescinded) {
        drop_offer(c, relid);
        struct vmbus_msg_relid rel = {{VMBUS_MSG_RELID_RELEASED, 0}, relid};
        int rc2 = post(c, c->msg_conn_id, &rel, sizeof(rel));
        if (rc == 0)
            rc = rc2;
    }
    return rc;
}

struct vmbus_ring *vmbus_gchan_tx(struct vmbus_gchan *ch)
{
    return &ch->tx;
}

struct vmbus_ring *vmbus_gchan_rx(struct vmbus_gchan *ch)
{
    return &ch->rx;
}

uint32_t vmbus_gchan_relid(const struct vmbus_gchan *ch)
{
    return ch->relid;
}

int vmbus_gchan_signal(struct vmbus_gchan *ch)
{
    uint64_t one = 1;
    if (write(ch->event_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        return -errno;
    return 0;
}

uint32_t vmbus_gchan_target_vp(const struct vmbus_gchan *ch)
{
    return ch->vp;
}

bool vmbus_gchan_event(struct vmbus_gchan *ch)
{
    struct hv_guest *g = ch->client->g;
    bool ev = hv_guest_event_test_clear_vp(g, ch->vp, VMBUS_MESSAGE_SINT, ch->relid);
    /* A flag left set on another VP would swallow the wake-up of a later
     * signal there: clear them all. */
    uint32_t nvp = hv_guest_vp_count(g);
    for (uint32_t vp = 0; vp < nvp; vp++)
        if (vp != ch->vp)
            ev |= hv_guest_event_test_clear_vp(g, vp, VMBUS_MESSAGE_SINT, ch->relid);
    return ev;
}

int vmbus_gchan_wait(struct vmbus_gchan *ch, int timeout_ms)
{
    return hv_guest_wait_vps(ch->client->g, (1ull << ch->vp) | 1u, timeout_ms);
}

bool vmbus_gchan_rescinded(const struct vmbus_gchan *ch)
{
    return ch->rescinded;
}

int vmbus_client_post(struct vmbus_client *c, const void *msg, uint32_t len)
{
    return post(c, c->msg_conn_id ? c->msg_conn_id : VMBUS_MESSAGE_CONNECTION_ID, msg, len);
}

int vmbus_client_wait(struct vmbus_client *c, uint32_t type, void *out, uint32_t *len,
                      int timeout_ms)
{
    struct resp r;
    int rc = wait_for(c, type, NULL, NULL, &r, timeout_ms);
    if (rc < 0)
        return rc;
    memcpy(out, r.data, r.len);
    if (len)
        *len = r.len;
    return 0;
}
