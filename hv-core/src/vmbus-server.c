/*
 * VMBus server (root side of one partition's VMBus).
 *
 * State lives on the control thread, with one exception: GPADLs, which a
 * device's worker may reference (vmbus_chan_gpadl_get/put) while the control
 * thread handles GPADL messages. gpadl_lock guards the GPADL list, each
 * GPADL's refcount and state, and the granted-page bitmap. Device callbacks
 * are never called with the lock held, so a device may take and drop
 * references from its close callback (or from a worker it joins there).
 *
 * Channel states:
 *   IDLE      offered by a device, not (yet) sent to this guest
 *   OFFERED   the guest knows it; may be opened
 *   OPEN      rings mapped, device running
 *   FAILED    closed by the root after a ring/protocol failure; the guest
 *             must CLOSECHANNEL before it can open again
 *   RESCINDED the device is gone; freed when the guest releases the relid
 *
 * Virtual processors: the connection's messages go to the SynIC of the VP
 * INITIATE_CONTACT named (target_vcpu, honoured from VMBus 3.0 on, VP 0
 * before, as in Hyper-V); a channel's interrupts go to the VP its
 * OPENCHANNEL named, and MODIFYCHANNEL moves them. Any VP the partition has
 * is accepted (Linux and FreeBSD spread NIC channels over their CPUs); any
 * other is refused and counted (VMBUS_SRV_ERR_VP). A channel's target is
 * read by workers when they signal, so it is an atomic.
 */
#define _GNU_SOURCE
#include "vmbus-server.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmbus-server-private.h"

static const char *const err_names[VMBUS_SRV_ERR_COUNT] = {
    [VMBUS_SRV_ERR_MALFORMED] = "malformed",
    [VMBUS_SRV_ERR_CONN_ID] = "wrong_connection_id",
    [VMBUS_SRV_ERR_NOT_CONNECTED] = "not_connected",
    [VMBUS_SRV_ERR_VERSION] = "unsupported_version",
    [VMBUS_SRV_ERR_DUPLICATE] = "duplicate",
    [VMBUS_SRV_ERR_RELID] = "unknown_relid",
    [VMBUS_SRV_ERR_CHAN_STATE] = "channel_state",
    [VMBUS_SRV_ERR_GPADL_ID] = "gpadl_id",
    [VMBUS_SRV_ERR_GPADL_RANGE] = "gpadl_range",
    [VMBUS_SRV_ERR_GPADL_PFN] = "gpadl_pfn_outside_memory",
    [VMBUS_SRV_ERR_GPADL_OVERLAP] = "gpadl_overlap",
    [VMBUS_SRV_ERR_GPADL_SIZE] = "gpadl_too_big",
    [VMBUS_SRV_ERR_RING_LAYOUT] = "ring_layout",
    [VMBUS_SRV_ERR_RESOURCES] = "resources",
    [VMBUS_SRV_ERR_DEVICE] = "device_refused",
    [VMBUS_SRV_ERR_BUSY] = "busy",
    [VMBUS_SRV_ERR_VP] = "invalid_vp",
    [VMBUS_SRV_ERR_RING_SIZE] = "ring_too_big",
};

const char *vmbus_srv_err_name(enum vmbus_srv_err e)
{
    return e < VMBUS_SRV_ERR_COUNT ? err_names[e] : "invalid";
}

void vmbus_srv_count_err(struct vmbus_server *s, enum vmbus_srv_err e)
{
    s->stats.errors[e]++;
}

static uint32_t msg_vp(const struct vmbus_server *s)
{
    return __atomic_load_n(&s->msg_vp, __ATOMIC_RELAXED);
}

int vmbus_srv_send_msg(struct vmbus_server *s, const void *msg, uint32_t len)
{
    if (!s->part)
        return -ENODEV;
    int rc = hv_synic_post_vp(s->part, msg_vp(s), VMBUS_MESSAGE_SINT, HVMSG_VMBUS, msg, len);
    if (rc == 0)
        __atomic_fetch_add(&s->stats.msgs_out, 1, __ATOMIC_RELAXED);
    return rc;
}

void vmbus_srv_msg_hdr(void *msg, uint32_t type)
{
    struct vmbus_msg_hdr h = {.msgtype = type, .padding = 0};
    memcpy(msg, &h, sizeof(h));
}

/* --- channels ---------------------------------------------------------- */

struct vmbus_chan *vmbus_srv_chan_find(struct vmbus_server *s, uint32_t relid)
{
    if (relid == 0 || relid > VMBUS_MAX_CHANNELS)
        return NULL;
    return s->chans[relid];
}

bool vmbus_srv_chan_known_to_guest(const struct vmbus_chan *c)
{
    return c && c->state != CHAN_IDLE;
}

static void send_offer(struct vmbus_server *s, struct vmbus_chan *c)
{
    struct vmbus_msg_offer m;
    memset(&m, 0, sizeof(m));
    vmbus_srv_msg_hdr(&m, VMBUS_MSG_OFFERCHANNEL);
    m.interface_type = c->params.class_id;
    m.interface_instance = c->params.instance_id;
    m.sub_channel_index = c->params.sub_channel_index;
    memcpy(m.user_defined, c->params.user_defined, sizeof(m.user_defined));
    m.child_relid = c->relid;
    m.monitor_id = VMBUS_OFFER_MONITOR_NONE;
    m.monitor_allocated = 0;
    m.is_dedicated_interrupt = 1;
    m.connection_id = VMBUS_CHAN_CONN_ID_BASE + c->relid;
    if (vmbus_srv_send_msg(s, &m, sizeof(m)) == 0)
        c->state = CHAN_OFFERED;
}

/* Stop the device and drop everything the open made. */
static void chan_free(struct vmbus_server *s, struct vmbus_chan *c);
static void chan_close(struct vmbus_server *s, struct vmbus_chan *c, enum chan_state next);

/*
 * The sub-channels of primary, which is closing: they were offered for this
 * opening of it only (the guest asks again after it reopens, as Linux
 * does), so each is closed (its device's close first) and rescinded, or,
 * when the guest's connection is gone (guest_gone), closed and forgotten
 * without a word to it. Before the primary's own close callback, so the
 * device drops its sub-channels before its connection.
 */
static void drop_subs(struct vmbus_server *s, struct vmbus_chan *primary, bool guest_gone)
{
    for (uint32_t r = 1; r <= VMBUS_MAX_CHANNELS; r++) {
        struct vmbus_chan *sub = s->chans[r];
        if (!sub || sub->primary != primary)
            continue;
        sub->primary = NULL;
        if (guest_gone) {
            chan_close(s, sub, CHAN_IDLE);
            chan_free(s, sub);
        } else {
            vmbus_chan_rescind(sub);
        }
    }
}

static void chan_close(struct vmbus_server *s, struct vmbus_chan *c, enum chan_state next)
{
    if (c->state != CHAN_OPEN) {
        c->state = next;
        return;
    }
    drop_subs(s, c, next == CHAN_IDLE);
    c->ops->close(c->ctx, c);
    if (s->part)
        hv_partition_port_remove(s->part, VMBUS_CHAN_CONN_ID_BASE + c->relid);
    if (c->event_fd >= 0) {
        close(c->event_fd);
        c->event_fd = -1;
    }
    struct vmbus_gpadl *g = c->ring_gpadl;
    for (int i = 0; i < 2; i++) {
        if (c->ring_view[i] && s->part)
            hv_partition_unmap(s->part, c->ring_view[i], g->pfns + c->ring_first[i],
                               c->ring_pages[i], true);
        c->ring_view[i] = NULL;
    }
    c->ring_gpadl = NULL;
    __atomic_store_n(&c->fail_requested, false, __ATOMIC_RELAXED);
    c->state = next;
    vmbus_gpadl_put(g);
}

static void chan_free(struct vmbus_server *s, struct vmbus_chan *c)
{
    s->chans[c->relid] = NULL;
    free(c);
}

/* Forget the guest: close channels, drop GPADLs, back to "not connected".
 * Offers stay, to be made again on the next REQUESTOFFERS. Nothing of the
 * old connection reaches the next one: channels rescinded but not released
 * are freed (their relids are free again; OpenVMM releases every channel of
 * a disconnecting client the same way), a GPADL a device still holds
 * answers no teardown when it finally goes, and messages still queued for
 * the guest are dropped, so a new connection is never told about a channel
 * or GPADL it never saw. */
static void reset_connection(struct vmbus_server *s)
{
    for (uint32_t r = 1; r <= VMBUS_MAX_CHANNELS; r++) {
        struct vmbus_chan *c = s->chans[r];
        if (!c)
            continue;
        if (c->state == CHAN_RESCINDED) {
            chan_free(s, c);
            continue;
        }
        chan_close(s, c, CHAN_IDLE);
    }
    pthread_mutex_lock(&s->gpadl_lock);
    struct vmbus_gpadl *list = NULL;
    struct vmbus_gpadl **pp = &s->gpadls;
    while (*pp) {
        struct vmbus_gpadl *g = *pp;
        if (g->refs == 0) {
            *pp = g->next;
            s->ngpadls--;
            g->next = list;
            list = g;
        } else {
            /* A device still holds it (it must not, after close): free it
             * at its last put rather than pull pages from under it. */
            hv_log_limited(&s->log_rl, "vmbus: partition %s: gpadl %#x still referenced at reset",
                           hv_partition_name(s->part), g->id);
            g->state = GPADL_DYING;
            g->send_torndown = false;
            pp = &g->next;
        }
    }
    pthread_mutex_unlock(&s->gpadl_lock);
    while (list) {
        struct vmbus_gpadl *g = list;
        list = g->next;
        g->send_torndown = false;
        vmbus_srv_gpadl_free(s, g);
    }
    if (s->part)
        hv_synic_purge_vp(s->part, msg_vp(s), VMBUS_MESSAGE_SINT);
    s->version = 0;
    s->offers_requested = false;
}

/* --- message handlers -------------------------------------------------- */

static bool monitor_pages_ok(const struct vmbus_server *s, uint64_t a, uint64_t b)
{
    if (a == 0 && b == 0)
        return true;
    if (a == 0 || b == 0)
        return false;
    if ((a | b) & (HV_PAGE_SIZE - 1))
        return false;
    return (a >> HV_PAGE_SHIFT) < s->npages && (b >> HV_PAGE_SHIFT) < s->npages;
}

/* The VP an INITIATE_CONTACT asks messages to go to: target_vcpu from
 * VMBus 3.0 on (before, Hyper-V delivers to VP 0 whatever the field says).
 * Unchecked: callers compare it with the partition's VP count. */
static uint32_t contact_target_vp(const struct vmbus_msg_initiate_contact *m)
{
    return m->version_requested >= VMBUS_VERSION_WIN8_1 ? m->target_vcpu : 0;
}

/* Where the answer to a guest message goes: the current connection's VP,
 * or for INITIATE_CONTACT the VP it asks for (VP 0 if it has no such VP,
 * to tell it so). */
static uint32_t answer_vp(const struct vmbus_server *s, int type, const uint8_t *buf)
{
    if (type != VMBUS_MSG_INITIATE_CONTACT)
        return msg_vp(s);
    struct vmbus_msg_initiate_contact m;
    memcpy(&m, buf, sizeof(m));
    uint32_t vp = contact_target_vp(&m);
    return vp < hv_partition_vp_count(s->part) ? vp : 0;
}

static void on_initiate_contact(struct vmbus_server *s, uint32_t conn_id, const uint8_t *buf)
{
    struct vmbus_msg_initiate_contact m;
    memcpy(&m, buf, sizeof(m));
    uint32_t want_conn = m.version_requested >= VMBUS_VERSION_WIN10_V5
                             ? VMBUS_MESSAGE_CONNECTION_ID_4
                             : VMBUS_MESSAGE_CONNECTION_ID;
    if (conn_id != want_conn) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_CONN_ID);
        return;
    }
    /* A new INITIATE_CONTACT while connected resets the bus. */
    if (s->version)
        reset_connection(s);

    bool vp_ok = contact_target_vp(&m) < hv_partition_vp_count(s->part);
    bool ok = vmbus_version_supported(m.version_requested) && vp_ok &&
              monitor_pages_ok(s, m.monitor_page1, m.monitor_page2);
    if (ok && m.version_requested >= VMBUS_VERSION_WIN10_V5)
        ok = m.u.v5.msg_sint == VMBUS_MESSAGE_SINT && m.u.v5.msg_vtl == 0;
    /* The answer, and from now on every message, goes to that VP. */
    __atomic_store_n(&s->msg_vp, answer_vp(s, VMBUS_MSG_INITIATE_CONTACT, buf),
                     __ATOMIC_RELAXED);
    struct vmbus_msg_version_response r = {0};
    vmbus_srv_msg_hdr(&r, VMBUS_MSG_VERSION_RESPONSE);
    if (ok) {
        s->version = m.version_requested;
        r.version_supported = 1;
        r.connection_state = 0;
        r.msg_conn_id = VMBUS_MESSAGE_CONNECTION_ID;
    } else {
        vmbus_srv_count_err(s, vp_ok ? VMBUS_SRV_ERR_VERSION : VMBUS_SRV_ERR_VP);
    }
    vmbus_srv_send_msg(s, &r, sizeof(r));
}

static void on_request_offers(struct vmbus_server *s)
{
    if (s->offers_requested) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_DUPLICATE);
        return;
    }
    s->offers_requested = true;
    for (uint32_t r = 1; r <= VMBUS_MAX_CHANNELS; r++) {
        struct vmbus_chan *c = s->chans[r];
        if (c && c->state == CHAN_IDLE)
            send_offer(s, c);
    }
    struct vmbus_msg_hdr done;
    vmbus_srv_msg_hdr(&done, VMBUS_MSG_ALLOFFERS_DELIVERED);
    vmbus_srv_send_msg(s, &done, sizeof(done));
}

static void open_result(struct vmbus_server *s, uint32_t relid, uint32_t open_id, uint32_t status)
{
    struct vmbus_msg_open_result r = {0};
    vmbus_srv_msg_hdr(&r, VMBUS_MSG_OPENCHANNEL_RESULT);
    r.child_relid = relid;
    r.open_id = open_id;
    r.status = status;
    vmbus_srv_send_msg(s, &r, sizeof(r));
}

static void on_open(struct vmbus_server *s, const uint8_t *buf)
{
    struct vmbus_msg_open m;
    memcpy(&m, buf, sizeof(m));
    struct vmbus_chan *c = vmbus_srv_chan_find(s, m.child_relid);
    enum vmbus_srv_err err;
    if (!vmbus_srv_chan_known_to_guest(c)) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_RELID);
        return;
    }
    if (c->state != CHAN_OFFERED) {
        err = VMBUS_SRV_ERR_CHAN_STATE;
        goto fail;
    }
    struct vmbus_gpadl *g = NULL;
    if (vmbus_chan_gpadl_get(c, m.ring_gpadl, &g) < 0) {
        err = VMBUS_SRV_ERR_GPADL_ID;
        goto fail;
    }
    if (m.target_vp >= hv_partition_vp_count(s->part)) {
        vmbus_gpadl_put(g);
        err = VMBUS_SRV_ERR_VP;
        goto fail;
    }
    /* One range, whole pages from offset 0; each ring a header page and at
     * least one data page. */
    uint32_t n = g->npfns, split = m.downstream_page_offset;
    if (g->nranges != 1 || g->ranges[0].byte_offset != 0 ||
        g->ranges[0].byte_count != n * HV_PAGE_SIZE || split < 2 || split > n || n - split < 2) {
        vmbus_gpadl_put(g);
        err = VMBUS_SRV_ERR_RING_LAYOUT;
        goto fail;
    }
    uint32_t max = c->params.max_ring_pages;
    if (max && (split > max || n - split > max)) {
        vmbus_gpadl_put(g);
        err = VMBUS_SRV_ERR_RING_SIZE;
        goto fail;
    }
    c->ring_gpadl = g;
    c->ring_first[0] = 0;
    c->ring_pages[0] = split;
    c->ring_first[1] = split;
    c->ring_pages[1] = n - split;
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++)
        rc = hv_partition_map_ring(s->part, g->pfns + c->ring_first[i], c->ring_pages[i],
                                   &c->ring_view[i]);
    if (rc < 0) {
        err = VMBUS_SRV_ERR_RESOURCES;
        goto fail_unmap;
    }
    if (vmbus_ring_init_consumer(&c->rx, c->ring_view[0], (split - 1) * HV_PAGE_SIZE,
                                 VMBUS_RING_TYPES_DEFAULT) < 0 ||
        vmbus_ring_init_producer(&c->tx, c->ring_view[1], (n - split - 1) * HV_PAGE_SIZE) < 0) {
        err = VMBUS_SRV_ERR_RING_LAYOUT;
        goto fail_unmap;
    }
    c->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->event_fd < 0) {
        err = VMBUS_SRV_ERR_RESOURCES;
        goto fail_unmap;
    }
    if (hv_partition_port_event(s->part, VMBUS_CHAN_CONN_ID_BASE + c->relid, c->event_fd) < 0) {
        err = VMBUS_SRV_ERR_RESOURCES;
        goto fail_fd;
    }
    __atomic_store_n(&c->target_vp, m.target_vp, __ATOMIC_RELAXED);
    c->state = CHAN_OPEN;
    if (c->ops->open(c->ctx, c) < 0) {
        c->state = CHAN_OFFERED;
        /* A failure the device reported during the refused open concerns
         * rings that are about to go; it must not close the next open. */
        __atomic_store_n(&c->fail_requested, false, __ATOMIC_RELAXED);
        hv_partition_port_remove(s->part, VMBUS_CHAN_CONN_ID_BASE + c->relid);
        err = VMBUS_SRV_ERR_DEVICE;
        goto fail_fd;
    }
    open_result(s, c->relid, m.open_id, 0);
    return;

fail_fd:
    close(c->event_fd);
    c->event_fd = -1;
fail_unmap:
    for (int i = 0; i < 2; i++) {
        if (c->ring_view[i])
            hv_partition_unmap(s->part, c->ring_view[i], g->pfns + c->ring_first[i],
                               c->ring_pages[i], true);
        c->ring_view[i] = NULL;
    }
    c->ring_gpadl = NULL;
    vmbus_gpadl_put(g);
fail:
    vmbus_srv_count_err(s, err);
    open_result(s, m.child_relid, m.open_id, VMBUS_STATUS_FAILURE);
}

static void on_close(struct vmbus_server *s, const uint8_t *buf)
{
    struct vmbus_msg_relid m;
    memcpy(&m, buf, sizeof(m));
    struct vmbus_chan *c = vmbus_srv_chan_find(s, m.child_relid);
    if (!vmbus_srv_chan_known_to_guest(c)) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_RELID);
        return;
    }
    if (c->state == CHAN_OPEN || c->state == CHAN_FAILED)
        chan_close(s, c, CHAN_OFFERED);
    else if (c->state != CHAN_RESCINDED) /* closing after a rescind is expected */
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_CHAN_STATE);
}

static void on_relid_released(struct vmbus_server *s, const uint8_t *buf)
{
    struct vmbus_msg_relid m;
    memcpy(&m, buf, sizeof(m));
    struct vmbus_chan *c = vmbus_srv_chan_find(s, m.child_relid);
    if (!c) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_RELID);
        return;
    }
    if (c->state != CHAN_RESCINDED) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_CHAN_STATE);
        return;
    }
    /* GPADLs the guest left behind for this relid go with it. */
    pthread_mutex_lock(&s->gpadl_lock);
    struct vmbus_gpadl *list = NULL;
    for (struct vmbus_gpadl **pp = &s->gpadls; *pp;) {
        struct vmbus_gpadl *g = *pp;
        if (g->relid == c->relid && g->refs == 0) {
            *pp = g->next;
            s->ngpadls--;
            g->next = list;
            list = g;
        } else {
            if (g->relid == c->relid)
                g->state = GPADL_DYING;
            pp = &g->next;
        }
    }
    pthread_mutex_unlock(&s->gpadl_lock);
    while (list) {
        struct vmbus_gpadl *g = list;
        list = g->next;
        g->send_torndown = false;
        vmbus_srv_gpadl_free(s, g);
    }
    chan_free(s, c);
}

static void on_unload(struct vmbus_server *s)
{
    reset_connection(s);
    struct vmbus_msg_hdr r;
    vmbus_srv_msg_hdr(&r, VMBUS_MSG_UNLOAD_RESPONSE);
    vmbus_srv_send_msg(s, &r, sizeof(r));
}

static void on_modify_channel(struct vmbus_server *s, const uint8_t *buf)
{
    struct vmbus_msg_modify_channel m;
    memcpy(&m, buf, sizeof(m));
    struct vmbus_chan *c = vmbus_srv_chan_find(s, m.child_relid);
    if (!vmbus_srv_chan_known_to_guest(c)) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_RELID);
        return;
    }
    /* Interrupts signalled from now on go to the new VP; one a worker is
     * raising right now may still land on the old one, which the guest
     * handles as Linux does (an event counts on whichever VP it arrives). */
    uint32_t status = 0;
    if (m.target_vp < hv_partition_vp_count(s->part)) {
        __atomic_store_n(&c->target_vp, m.target_vp, __ATOMIC_RELAXED);
    } else {
        status = VMBUS_STATUS_FAILURE;
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_VP);
    }
    if (s->version >= VMBUS_VERSION_WIN10_V5_3) {
        struct vmbus_msg_modify_channel_response r = {0};
        vmbus_srv_msg_hdr(&r, VMBUS_MSG_MODIFYCHANNEL_RESPONSE);
        r.child_relid = m.child_relid;
        r.status = status;
        vmbus_srv_send_msg(s, &r, sizeof(r));
    }
}

static uint32_t torndowns_owed(struct vmbus_server *s)
{
    pthread_mutex_lock(&s->gpadl_lock);
    uint32_t n = s->torndown_owed;
    pthread_mutex_unlock(&s->gpadl_lock);
    return n;
}

/* Queue room on vp not kept for owed GPADL_TORNDOWNs. */
static uint32_t room_unreserved_vp(struct vmbus_server *s, uint32_t vp)
{
    uint32_t room = hv_synic_queue_room_vp(s->part, vp, VMBUS_MESSAGE_SINT);
    uint32_t owed = torndowns_owed(s);
    return room > owed ? room - owed : 0;
}

static uint32_t room_unreserved(struct vmbus_server *s)
{
    return room_unreserved_vp(s, msg_vp(s));
}

static int send_rescind(struct vmbus_server *s, struct vmbus_chan *c)
{
    struct vmbus_msg_relid m = {0};
    vmbus_srv_msg_hdr(&m, VMBUS_MSG_RESCIND_CHANNELOFFER);
    m.child_relid = c->relid;
    return vmbus_srv_send_msg(s, &m, sizeof(m));
}

/* Tell the guest about rescinds that did not fit when they happened.
 * Returns how many are still owed. */
static uint32_t flush_rescinds(struct vmbus_server *s)
{
    uint32_t left = 0;
    for (uint32_t r = 1; r <= VMBUS_MAX_CHANNELS; r++) {
        struct vmbus_chan *c = s->chans[r];
        if (!c || !c->rescind_owed)
            continue;
        if (room_unreserved(s) > 0 && send_rescind(s, c) == 0)
            c->rescind_owed = false;
        else
            left++;
    }
    return left;
}

static uint32_t offers_pending(const struct vmbus_server *s)
{
    uint32_t n = 0;
    for (uint32_t r = 1; r <= VMBUS_MAX_CHANNELS; r++)
        if (s->chans[r] && s->chans[r]->state == CHAN_IDLE)
            n++;
    return n;
}

int vmbus_server_handle_message(void *arg, struct hv_partition *p, uint32_t conn_id,
                                uint32_t msg_type, const void *payload, uint32_t len)
{
    struct vmbus_server *s = arg;
    uint8_t buf[HV_MESSAGE_PAYLOAD_MAX];
    (void)p;
    if (msg_type != HVMSG_VMBUS || len > sizeof(buf)) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_MALFORMED);
        return HV_STATUS_INVALID_PARAMETER;
    }
    memcpy(buf, payload, len);
    int type = vmbus_msg_check(buf, len, true, s->version);
    if (type < 0) {
        vmbus_srv_count_err(s, type == -VMBUS_MSG_ERR_VERSION && s->version == 0
                         ? VMBUS_SRV_ERR_NOT_CONNECTED
                         : VMBUS_SRV_ERR_MALFORMED);
        return HV_STATUS_SUCCESS;
    }
    uint32_t vp = answer_vp(s, type, buf);
    if (!hv_synic_enabled_vp(s->part, vp, VMBUS_MESSAGE_SINT)) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_NOT_CONNECTED);
        return HV_STATUS_INVALID_PARTITION_STATE;
    }
    /* Back-pressure: take a message only if its answers fit in the guest's
     * message queue; otherwise the guest retries, as with a real port. */
    uint32_t need = type == VMBUS_MSG_REQUESTOFFERS ? offers_pending(s) + 1 : 1;
    /* Rescinds owed to this connection, unless the message ends it: the
     * reset frees those channels, and the next connection never saw them. */
    if (type != VMBUS_MSG_INITIATE_CONTACT && type != VMBUS_MSG_UNLOAD)
        need += flush_rescinds(s);
    if (room_unreserved_vp(s, vp) < need) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_BUSY);
        return HV_STATUS_INSUFFICIENT_BUFFERS;
    }
    if (type != VMBUS_MSG_INITIATE_CONTACT && conn_id != VMBUS_MESSAGE_CONNECTION_ID) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_CONN_ID);
        return HV_STATUS_SUCCESS;
    }
    s->stats.msgs_in[type]++;

    switch (type) {
    case VMBUS_MSG_INITIATE_CONTACT:
        on_initiate_contact(s, conn_id, buf);
        break;
    case VMBUS_MSG_REQUESTOFFERS:
        on_request_offers(s);
        break;
    case VMBUS_MSG_GPADL_HEADER:
        vmbus_srv_on_gpadl_header(s, buf, len);
        break;
    case VMBUS_MSG_GPADL_BODY:
        vmbus_srv_on_gpadl_body(s, buf, len);
        break;
    case VMBUS_MSG_GPADL_TEARDOWN:
        vmbus_srv_on_gpadl_teardown(s, buf);
        break;
    case VMBUS_MSG_OPENCHANNEL:
        on_open(s, buf);
        break;
    case VMBUS_MSG_CLOSECHANNEL:
        on_close(s, buf);
        break;
    case VMBUS_MSG_RELID_RELEASED:
        on_relid_released(s, buf);
        break;
    case VMBUS_MSG_UNLOAD:
        on_unload(s);
        break;
    case VMBUS_MSG_MODIFYCHANNEL:
        on_modify_channel(s, buf);
        break;
    default:
        /* vmbus_msg_check() lets through only guest messages handled above. */
        break;
    }
    return HV_STATUS_SUCCESS;
}

/* --- server lifecycle, device API -------------------------------------- */

static void on_wake(void *ctx, uint32_t events)
{
    struct vmbus_server *s = ctx;
    uint64_t v;
    (void)events;
    if (read(s->wake_fd, &v, sizeof(v)) < 0)
        return;
    for (uint32_t r = 1; r <= VMBUS_MAX_CHANNELS; r++) {
        struct vmbus_chan *c = s->chans[r];
        if (c && c->state == CHAN_OPEN && __atomic_load_n(&c->fail_requested, __ATOMIC_ACQUIRE)) {
            hv_log_limited(&s->log_rl,
                           "vmbus: partition %s: closing channel %u: ring or protocol failure",
                           hv_partition_name(s->part), c->relid);
            s->stats.ring_failures++;
            chan_close(s, c, CHAN_FAILED);
        }
    }
}

static void on_partition(void *ctx, struct hv_partition *p, enum hv_partition_state from,
                         enum hv_partition_state to)
{
    struct vmbus_server *s = ctx;
    (void)p;
    (void)from;
    if (to == HV_PARTITION_STOPPED || to == HV_PARTITION_DESTROYED) {
        reset_connection(s);
        __atomic_store_n(&s->msg_vp, 0, __ATOMIC_RELAXED);
    }
    if (to == HV_PARTITION_DESTROYED) {
        hv_host_unwatch(hv_partition_host(s->part), s->wake_fd);
        hv_partition_port_remove(s->part, VMBUS_MESSAGE_CONNECTION_ID);
        hv_partition_port_remove(s->part, VMBUS_MESSAGE_CONNECTION_ID_4);
        s->part = NULL;
    }
}

int vmbus_server_create(struct hv_partition *p, struct vmbus_server **out)
{
    struct vmbus_server *s = calloc(1, sizeof(*s));
    int rc;
    if (!s)
        return -ENOMEM;
    s->part = p;
    s->npages = hv_partition_memory_pages(p);
    s->granted = calloc((s->npages + 63) / 64, sizeof(uint64_t));
    if (!s->granted) {
        rc = -ENOMEM;
        goto err_free;
    }
    pthread_mutex_init(&s->gpadl_lock, NULL);
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0) {
        rc = -errno;
        goto err_lock;
    }
    rc = hv_partition_port_msg(p, VMBUS_MESSAGE_CONNECTION_ID, vmbus_server_handle_message, s);
    if (rc < 0)
        goto err_fd;
    rc = hv_partition_port_msg(p, VMBUS_MESSAGE_CONNECTION_ID_4, vmbus_server_handle_message, s);
    if (rc < 0)
        goto err_port1;
    rc = hv_host_watch(hv_partition_host(p), s->wake_fd, EPOLLIN, on_wake, s);
    if (rc < 0)
        goto err_port4;
    rc = hv_partition_listen(p, on_partition, s);
    if (rc < 0)
        goto err_watch;
    *out = s;
    return 0;

err_watch:
    hv_host_unwatch(hv_partition_host(p), s->wake_fd);
err_port4:
    hv_partition_port_remove(p, VMBUS_MESSAGE_CONNECTION_ID_4);
err_port1:
    hv_partition_port_remove(p, VMBUS_MESSAGE_CONNECTION_ID);
err_fd:
    close(s->wake_fd);
err_lock:
    pthread_mutex_destroy(&s->gpadl_lock);
    free(s->granted);
err_free:
    free(s);
    return rc;
}

void vmbus_server_destroy(struct vmbus_server *s)
{
    if (!s)
        return;
    reset_connection(s);
    for (uint32_t r = 1; r <= VMBUS_MAX_CHANNELS; r++)
        if (s->chans[r])
            chan_free(s, s->chans[r]);
    if (s->part) {
        hv_partition_unlisten(s->part, on_partition, s);
        hv_host_unwatch(hv_partition_host(s->part), s->wake_fd);
        hv_partition_port_remove(s->part, VMBUS_MESSAGE_CONNECTION_ID);
        hv_partition_port_remove(s->part, VMBUS_MESSAGE_CONNECTION_ID_4);
    }
    close(s->wake_fd);
    pthread_mutex_destroy(&s->gpadl_lock);
    free(s->granted);
    free(s);
}

void vmbus_server_get_stats(const struct vmbus_server *s, struct vmbus_server_stats *out)
{
    *out = s->stats;
    out->version = s->version;
    out->gpadls = s->ngpadls;
    out->log_suppressed = hv_ratelimit_suppressed(&s->log_rl);
}

bool vmbus_server_connected(const struct vmbus_server *s)
{
    return s->version != 0;
}

int vmbus_server_offer(struct vmbus_server *s, const struct vmbus_offer_params *params,
                       const struct vmbus_device_ops *ops, void *ctx, struct vmbus_chan **out)
{
    if (!s->part || !ops || !ops->open || !ops->close)
        return -EINVAL;
    uint32_t relid = 0;
    for (uint32_t r = 1; r <= VMBUS_MAX_CHANNELS; r++) {
        if (!s->chans[r]) {
            relid = r;
            break;
        }
    }
    if (!relid)
        return -ENOSPC;
    if (s->offers_requested && room_unreserved(s) == 0)
        return -EBUSY;
    struct vmbus_chan *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->srv = s;
    c->relid = relid;
    c->state = CHAN_IDLE;
    c->params = *params;
    c->ops = ops;
    c->ctx = ctx;
    c->event_fd = -1;
    s->chans[relid] = c;
    if (s->offers_requested)
        send_offer(s, c);
    *out = c;
    return 0;
}

int vmbus_server_offer_sub(struct vmbus_chan *primary, uint16_t index,
                           const struct vmbus_device_ops *ops, void *ctx, struct vmbus_chan **out)
{
    if (!primary || primary->primary || primary->params.sub_channel_index ||
        primary->state != CHAN_OPEN || index == 0)
        return -EINVAL;
    /* Sub-channels came with VMBus 2.4 (Windows 8), the oldest we speak. */
    struct vmbus_server *s = primary->srv;
    for (uint32_t r = 1; r <= VMBUS_MAX_CHANNELS; r++)
        if (s->chans[r] && s->chans[r]->primary == primary &&
            s->chans[r]->params.sub_channel_index == index)
            return -EEXIST;
    struct vmbus_offer_params op = primary->params;
    op.sub_channel_index = index;
    int rc = vmbus_server_offer(s, &op, ops, ctx, out);
    if (rc == 0)
        (*out)->primary = primary;
    return rc;
}

void vmbus_chan_rescind(struct vmbus_chan *c)
{
    struct vmbus_server *s = c->srv;
    c->primary = NULL;
    if (c->state == CHAN_OPEN)
        chan_close(s, c, CHAN_OFFERED);
    if (c->state == CHAN_IDLE || c->state == CHAN_RESCINDED || !s->part) {
        chan_free(s, c);
        return;
    }
    c->state = CHAN_RESCINDED;
    c->ops = NULL;
    c->ctx = NULL;
    /* The guest holds the relid until it releases it, told or not: if its
     * queue is full, tell it when it next posts (it retries after draining). */
    if (room_unreserved(s) == 0 || send_rescind(s, c) < 0)
        c->rescind_owed = true;
}

uint32_t vmbus_chan_relid(const struct vmbus_chan *c)
{
    return c->relid;
}

uint32_t vmbus_chan_conn_id(const struct vmbus_chan *c)
{
    return VMBUS_CHAN_CONN_ID_BASE + c->relid;
}

struct hv_partition *vmbus_chan_partition(const struct vmbus_chan *c)
{
    return c->srv->part;
}

bool vmbus_chan_is_open(const struct vmbus_chan *c)
{
    return c->state == CHAN_OPEN;
}

struct vmbus_ring *vmbus_chan_rx(struct vmbus_chan *c)
{
    return &c->rx;
}

struct vmbus_ring *vmbus_chan_tx(struct vmbus_chan *c)
{
    return &c->tx;
}

int vmbus_chan_event_fd(const struct vmbus_chan *c)
{
    return c->event_fd;
}

uint32_t vmbus_chan_target_vp(const struct vmbus_chan *c)
{
    return __atomic_load_n(&c->target_vp, __ATOMIC_RELAXED);
}

int vmbus_chan_signal(struct vmbus_chan *c)
{
    struct hv_partition *p = c->srv->part;
    return p ? hv_synic_signal_vp(p, vmbus_chan_target_vp(c), VMBUS_MESSAGE_SINT, c->relid)
             : -ENODEV;
}

void vmbus_chan_fail(struct vmbus_chan *c)
{
    uint64_t one = 1;
    __atomic_store_n(&c->fail_requested, true, __ATOMIC_RELEASE);
    if (write(c->srv->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        hv_log_limited(&c->srv->log_rl, "vmbus: wake: %s", strerror(errno));
}
