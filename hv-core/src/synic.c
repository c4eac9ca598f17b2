/*
 * SynIC, root side: message slots and event flags in pages of guest memory
 * that the guest named (SIMP, SIEF), and the SINT "interrupt", an eventfd.
 *
 * Message slot protocol (TLFS hv_message): the root writes a message only
 * into a free slot (message_type == 0) and publishes it by storing
 * message_type last. The guest copies the message out, stores
 * message_type = 0, then reads flags: if MessagePending is set it issues EOM,
 * and the root delivers the next queued message. When the root finds the slot
 * busy it sets MessagePending, fences, and looks at message_type again: the
 * guest freeing the slot at the same moment either sees the flag (and sends
 * EOM) or the root sees the free slot (and delivers now). Full fences on both
 * sides make this a Dekker pair.
 *
 * Event flags: hv_synic_signal_vp() sets a bit with an atomic OR and asserts
 * the SINT only if the bit was clear; the guest reads the eventfd first and
 * then clears bits with atomic exchanges, so no event is lost.
 *
 * Everything is per virtual processor, as Hyper-V has a SynIC per VP: each
 * VP has its own SIMP and SIEF pages (named by its own set-up call), its
 * own message queues and its own SINT eventfd.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hv-private.h"

void hv_synic_init(struct hv_synic *s, uint32_t nvp)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->nvp = nvp;
    for (uint32_t v = 0; v < HV_PARTITION_VPS_MAX; v++)
        s->vp[v].sint_fd = -1;
}

void hv_synic_fini(struct hv_synic *s)
{
    for (uint32_t v = 0; v < s->nvp; v++)
        for (int i = 0; i < HV_SINT_COUNT; i++)
            free(s->vp[v].queue[i].msgs);
    pthread_mutex_destroy(&s->lock);
}

int hv_synic_open_fds(struct hv_synic *s)
{
    for (uint32_t v = 0; v < s->nvp; v++) {
        s->vp[v].sint_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->vp[v].sint_fd < 0) {
            int err = -errno;
            hv_synic_close_fds(s);
            return err;
        }
    }
    return 0;
}

void hv_synic_close_fds(struct hv_synic *s)
{
    for (uint32_t v = 0; v < s->nvp; v++) {
        if (s->vp[v].sint_fd >= 0)
            close(s->vp[v].sint_fd);
        s->vp[v].sint_fd = -1;
    }
}

static void assert_sint(struct hv_partition *p, struct hv_synic_vp *vp)
{
    uint64_t one = 1;
    if (vp->sint_fd >= 0 && write(vp->sint_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        hv_log_limited(&p->log_rl, "hv: partition %s: SINT eventfd write: %s", p->name,
                       strerror(errno));
}

int hv_synic_setup(struct hv_partition *p, const struct hv_input_synic_setup *in, int *fd_out)
{
    uint64_t npages = hv_partition_memory_pages(p);
    struct hv_synic *s = &p->synic;
    *fd_out = -1;
    if (in->vp_index >= s->nvp)
        return HV_STATUS_INVALID_VP_INDEX;
    if (in->sint_mask == 0 || (in->sint_mask >> HV_SINT_COUNT) != 0)
        return HV_STATUS_INVALID_PARAMETER;
    if ((in->simp_gpa & (HV_PAGE_SIZE - 1)) || (in->siefp_gpa & (HV_PAGE_SIZE - 1)))
        return HV_STATUS_INVALID_ALIGNMENT;
    uint64_t simp_pfn = in->simp_gpa >> HV_PAGE_SHIFT;
    uint64_t siefp_pfn = in->siefp_gpa >> HV_PAGE_SHIFT;
    if (simp_pfn >= npages || siefp_pfn >= npages || simp_pfn == siefp_pfn)
        return HV_STATUS_INVALID_PARAMETER;

    struct hv_synic_vp *vp = &s->vp[in->vp_index];
    pthread_mutex_lock(&s->lock);
    int st = HV_STATUS_SUCCESS;
    /* Channels signal through these pages from other threads: they are set
     * once per run and never moved under them. */
    if (vp->simp) {
        st = HV_STATUS_INVALID_PARTITION_STATE;
        goto out;
    }
    if (p->mem_fd < 0 || vp->sint_fd < 0) {
        st = HV_STATUS_INVALID_PARTITION_STATE;
        goto out;
    }
    for (int i = 0; i < HV_SINT_COUNT; i++) {
        if ((in->sint_mask & (1u << i)) && !vp->queue[i].msgs) {
            vp->queue[i].msgs = calloc(HV_SYNIC_QUEUE_LEN, sizeof(struct hv_message));
            if (!vp->queue[i].msgs) {
                st = HV_STATUS_INSUFFICIENT_MEMORY;
                goto out;
            }
        }
    }
    void *simp = NULL, *siefp = NULL;
    if (hv_partition_map_pages(p, &simp_pfn, 1, &simp) < 0) {
        st = HV_STATUS_INSUFFICIENT_MEMORY;
        goto out;
    }
    if (hv_partition_map_pages(p, &siefp_pfn, 1, &siefp) < 0) {
        hv_partition_unmap(p, simp, &simp_pfn, 1, false);
        st = HV_STATUS_INSUFFICIENT_MEMORY;
        goto out;
    }
    vp->simp_pfn = simp_pfn;
    vp->siefp_pfn = siefp_pfn;
    vp->sint_mask = in->sint_mask;
    __atomic_store_n(&vp->siefp, (uint8_t *)siefp, __ATOMIC_RELEASE);
    __atomic_store_n(&vp->simp, (struct hv_message *)simp, __ATOMIC_RELEASE);
    /* VP 0's eventfd is the one the guest started with; the others it
     * learns here, as a real VP's interrupt line comes with the VP. */
    if (in->vp_index != 0)
        *fd_out = vp->sint_fd;
out:
    pthread_mutex_unlock(&s->lock);
    return st;
}

/* Write the head of sint's queue into the VP's slot if the slot is free.
 * Called with the lock held. */
static void try_deliver(struct hv_partition *p, struct hv_synic_vp *vp, uint32_t sint)
{
    struct hv_msg_queue *q = &vp->queue[sint];
    if (!vp->simp || q->count == 0)
        return;
    struct hv_message *slot = &vp->simp[sint];
    for (;;) {
        if (__atomic_load_n(&slot->message_type, __ATOMIC_ACQUIRE) != HVMSG_NONE) {
            __atomic_fetch_or(&slot->flags, HV_MESSAGE_FLAG_PENDING, __ATOMIC_RELAXED);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            if (__atomic_load_n(&slot->message_type, __ATOMIC_ACQUIRE) != HVMSG_NONE)
                return; /* the guest will EOM */
        }
        struct hv_message *m = &q->msgs[q->head];
        memcpy(slot->payload, m->payload, m->payload_size);
        slot->payload_size = m->payload_size;
        slot->origin = m->origin;
        slot->reserved = 0;
        q->head = (q->head + 1) % HV_SYNIC_QUEUE_LEN;
        q->count--;
        __atomic_store_n(&slot->flags, q->count ? HV_MESSAGE_FLAG_PENDING : 0, __ATOMIC_RELAXED);
        __atomic_store_n(&slot->message_type, m->message_type, __ATOMIC_RELEASE);
        p->stats.messages_delivered++;
        assert_sint(p, vp);
        return;
    }
}

int hv_synic_post_vp(struct hv_partition *p, uint32_t vpi, uint32_t sint, uint32_t msg_type,
                     const void *payload, uint32_t len)
{
    struct hv_synic *s = &p->synic;
    if (vpi >= s->nvp || sint >= HV_SINT_COUNT || len > HV_MESSAGE_PAYLOAD_MAX ||
        msg_type == HVMSG_NONE)
        return -EINVAL;
    struct hv_synic_vp *vp = &s->vp[vpi];
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    struct hv_msg_queue *q = &vp->queue[sint];
    if (!vp->simp || !(vp->sint_mask & (1u << sint))) {
        rc = -ENOTCONN;
        goto out;
    }
    if (q->count == HV_SYNIC_QUEUE_LEN) {
        p->stats.messages_dropped++;
        rc = -ENOSPC;
        goto out;
    }
    struct hv_message *m = &q->msgs[(q->head + q->count) % HV_SYNIC_QUEUE_LEN];
    memset(m, 0, sizeof(*m));
    m->message_type = msg_type;
    m->payload_size = (uint8_t)len;
    if (len)
        memcpy(m->payload, payload, len);
    q->count++;
    try_deliver(p, vp, sint);
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int hv_synic_post(struct hv_partition *p, uint32_t sint, uint32_t msg_type, const void *payload,
                  uint32_t len)
{
    return hv_synic_post_vp(p, 0, sint, msg_type, payload, len);
}

uint32_t hv_synic_queue_room_vp(struct hv_partition *p, uint32_t vpi, uint32_t sint)
{
    struct hv_synic *s = &p->synic;
    uint32_t room = 0;
    if (vpi >= s->nvp || sint >= HV_SINT_COUNT)
        return 0;
    struct hv_synic_vp *vp = &s->vp[vpi];
    pthread_mutex_lock(&s->lock);
    if (vp->simp && (vp->sint_mask & (1u << sint)))
        room = HV_SYNIC_QUEUE_LEN - vp->queue[sint].count;
    pthread_mutex_unlock(&s->lock);
    return room;
}

uint32_t hv_synic_queue_room(struct hv_partition *p, uint32_t sint)
{
    return hv_synic_queue_room_vp(p, 0, sint);
}

bool hv_synic_enabled_vp(struct hv_partition *p, uint32_t vpi, uint32_t sint)
{
    struct hv_synic *s = &p->synic;
    if (vpi >= s->nvp)
        return false;
    struct hv_synic_vp *vp = &s->vp[vpi];
    bool on;
    pthread_mutex_lock(&s->lock);
    on = sint < HV_SINT_COUNT && vp->simp && (vp->sint_mask & (1u << sint));
    pthread_mutex_unlock(&s->lock);
    return on;
}

bool hv_synic_enabled(struct hv_partition *p, uint32_t sint)
{
    return hv_synic_enabled_vp(p, 0, sint);
}

int hv_synic_eom(struct hv_partition *p, uint32_t vpi, uint32_t sint)
{
    struct hv_synic *s = &p->synic;
    if (vpi >= s->nvp)
        return HV_STATUS_INVALID_VP_INDEX;
    if (sint >= HV_SINT_COUNT)
        return HV_STATUS_INVALID_PARAMETER;
    struct hv_synic_vp *vp = &s->vp[vpi];
    pthread_mutex_lock(&s->lock);
    int st = HV_STATUS_SUCCESS;
    if (!vp->simp || !(vp->sint_mask & (1u << sint)))
        st = HV_STATUS_INVALID_PARTITION_STATE;
    else
        try_deliver(p, vp, sint);
    pthread_mutex_unlock(&s->lock);
    return st;
}

int hv_synic_signal_vp(struct hv_partition *p, uint32_t vpi, uint32_t sint, uint32_t flag)
{
    if (vpi >= p->synic.nvp || sint >= HV_SINT_COUNT || flag >= HV_EVENT_FLAGS_COUNT)
        return -EINVAL;
    struct hv_synic_vp *vp = &p->synic.vp[vpi];
    uint8_t *siefp = __atomic_load_n(&vp->siefp, __ATOMIC_ACQUIRE);
    if (!siefp || !(vp->sint_mask & (1u << sint)))
        return -ENOTCONN;
    uint64_t *word = (uint64_t *)(siefp + sint * HV_EVENT_FLAGS_BYTES) + flag / 64;
    uint64_t bit = 1ull << (flag % 64);
    uint64_t old = __atomic_fetch_or(word, bit, __ATOMIC_SEQ_CST);
    if (!(old & bit)) {
        __atomic_fetch_add(&p->stats.events_signalled, 1, __ATOMIC_RELAXED);
        assert_sint(p, vp);
    }
    return 0;
}

int hv_synic_signal(struct hv_partition *p, uint32_t sint, uint32_t flag)
{
    return hv_synic_signal_vp(p, 0, sint, flag);
}

uint32_t hv_synic_purge_vp(struct hv_partition *p, uint32_t vpi, uint32_t sint)
{
    struct hv_synic *s = &p->synic;
    if (vpi >= s->nvp || sint >= HV_SINT_COUNT)
        return 0;
    struct hv_msg_queue *q = &s->vp[vpi].queue[sint];
    pthread_mutex_lock(&s->lock);
    uint32_t n = q->count;
    q->head = 0;
    q->count = 0;
    p->stats.messages_purged += n;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void hv_synic_reset(struct hv_partition *p)
{
    struct hv_synic *s = &p->synic;
    pthread_mutex_lock(&s->lock);
    for (uint32_t v = 0; v < s->nvp; v++) {
        struct hv_synic_vp *vp = &s->vp[v];
        if (vp->simp) {
            hv_partition_unmap(p, vp->simp, &vp->simp_pfn, 1, false);
            hv_partition_unmap(p, vp->siefp, &vp->siefp_pfn, 1, false);
        }
        vp->simp = NULL;
        vp->siefp = NULL;
        vp->sint_mask = 0;
        for (int i = 0; i < HV_SINT_COUNT; i++) {
            vp->queue[i].head = 0;
            vp->queue[i].count = 0;
        }
    }
    pthread_mutex_unlock(&s->lock);
}
