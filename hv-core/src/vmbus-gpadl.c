/*
 * VMBus server: GPADLs, the guest's grants of its pages. The table, each
 * GPADL's references and state, and the granted-page bitmap are guarded by
 * gpadl_lock, because a device's worker may take and drop references
 * (vmbus_chan_gpadl_get/put) while the control thread handles the GPADL
 * messages here. A GPADL is built from a GPADL_HEADER and its BODY
 * messages, checked (ranges, PFNs inside the partition's memory, no page
 * granted twice, size), mapped into one contiguous view, and torn down when
 * the guest asks and the last reference is gone.
 */
#define _GNU_SOURCE
#include "vmbus-server-private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool granted_test(const struct vmbus_server *s, uint64_t pfn)
{
    return s->granted[pfn / 64] & (1ull << (pfn % 64));
}

static void granted_set(struct vmbus_server *s, uint64_t pfn, bool on)
{
    if (on)
        s->granted[pfn / 64] |= 1ull << (pfn % 64);
    else
        s->granted[pfn / 64] &= ~(1ull << (pfn % 64));
}

static struct vmbus_gpadl *gpadl_find_locked(struct vmbus_server *s, uint32_t id)
{
    for (struct vmbus_gpadl *g = s->gpadls; g; g = g->next)
        if (g->id == id)
            return g;
    return NULL;
}

static void gpadl_unlink_locked(struct vmbus_server *s, struct vmbus_gpadl *g)
{
    for (struct vmbus_gpadl **pp = &s->gpadls; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            s->ngpadls--;
            return;
        }
    }
}

/* Unmap and free an unlinked GPADL; tell the guest if it asked for the
 * teardown. Any thread. */
void vmbus_srv_gpadl_free(struct vmbus_server *s, struct vmbus_gpadl *g)
{
    if (g->view && s->part)
        hv_partition_unmap(s->part, g->view, g->pfns, g->npfns, false);
    if (g->state != GPADL_BUILDING && g->pfns) {
        pthread_mutex_lock(&s->gpadl_lock);
        for (uint32_t i = 0; i < g->npfns; i++)
            granted_set(s, g->pfns[i], false);
        s->stats.gpadl_pages -= g->npfns;
        pthread_mutex_unlock(&s->gpadl_lock);
    }
    if (g->send_torndown) {
        struct vmbus_msg_gpadl_torndown m = {0};
        vmbus_srv_msg_hdr(&m, VMBUS_MSG_GPADL_TORNDOWN);
        m.gpadl = g->id;
        vmbus_srv_send_msg(s, &m, sizeof(m));
    }
    if (g->torndown_owed) {
        pthread_mutex_lock(&s->gpadl_lock);
        s->torndown_owed--;
        pthread_mutex_unlock(&s->gpadl_lock);
    }
    free(g->words);
    free(g->pfns);
    free(g);
}

void vmbus_gpadl_put(struct vmbus_gpadl *g)
{
    if (!g)
        return;
    struct vmbus_server *s = g->srv;
    pthread_mutex_lock(&s->gpadl_lock);
    bool last = --g->refs == 0 && g->state == GPADL_DYING;
    if (last)
        gpadl_unlink_locked(s, g);
    pthread_mutex_unlock(&s->gpadl_lock);
    if (last)
        vmbus_srv_gpadl_free(s, g);
}

int vmbus_chan_gpadl_get(struct vmbus_chan *chan, uint32_t id, struct vmbus_gpadl **out)
{
    struct vmbus_server *s = chan->srv;
    int rc = -ENOENT;
    pthread_mutex_lock(&s->gpadl_lock);
    struct vmbus_gpadl *g = gpadl_find_locked(s, id);
    if (g && g->state == GPADL_READY && g->relid == chan->relid) {
        g->refs++;
        *out = g;
        rc = 0;
    }
    pthread_mutex_unlock(&s->gpadl_lock);
    return rc;
}

void *vmbus_gpadl_view(const struct vmbus_gpadl *g)
{
    return g->nranges == 1 ? (uint8_t *)g->view + g->ranges[0].byte_offset : g->view;
}

uint64_t vmbus_gpadl_len(const struct vmbus_gpadl *g)
{
    return g->byte_len;
}

uint32_t vmbus_gpadl_pages(const struct vmbus_gpadl *g)
{
    return g->npfns;
}

static void gpadl_created(struct vmbus_server *s, uint32_t relid, uint32_t id, uint32_t status)
{
    struct vmbus_msg_gpadl_created m = {0};
    vmbus_srv_msg_hdr(&m, VMBUS_MSG_GPADL_CREATED);
    m.child_relid = relid;
    m.gpadl = id;
    m.status = status;
    vmbus_srv_send_msg(s, &m, sizeof(m));
}

/* All range words are in: parse, check every page, map, answer. */
static void gpadl_finish(struct vmbus_server *s, struct vmbus_gpadl *g)
{
    enum vmbus_srv_err err;
    struct vmbus_range rg[VMBUS_GPADL_MAX_RANGES];
    uint32_t len = g->words_total * 8u;
    int used = vmbus_parse_gpa_ranges((const uint8_t *)g->words, len, g->rangecount, rg,
                                      VMBUS_GPADL_MAX_RANGES);
    if (used < 0 || (uint32_t)used != len) {
        err = VMBUS_SRV_ERR_GPADL_RANGE;
        goto fail;
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < g->rangecount; i++)
        total += rg[i].pfn_count;
    if (total == 0 || total > VMBUS_GPADL_MAX_PAGES) {
        err = VMBUS_SRV_ERR_GPADL_SIZE;
        goto fail;
    }
    g->pfns = malloc(total * sizeof(uint64_t));
    if (!g->pfns) {
        err = VMBUS_SRV_ERR_RESOURCES;
        goto fail;
    }
    g->nranges = g->rangecount;
    g->byte_len = 0;
    uint32_t k = 0;
    for (uint32_t i = 0; i < g->rangecount; i++) {
        g->ranges[i].byte_count = rg[i].byte_count;
        g->ranges[i].byte_offset = rg[i].byte_offset;
        g->ranges[i].pfn_count = rg[i].pfn_count;
        g->byte_len += rg[i].byte_count;
        for (uint32_t j = 0; j < rg[i].pfn_count; j++)
            g->pfns[k++] = vmbus_range_pfn(&rg[i], j);
    }
    g->npfns = k;
    for (uint32_t i = 0; i < k; i++) {
        if (g->pfns[i] >= s->npages) {
            err = VMBUS_SRV_ERR_GPADL_PFN;
            goto fail;
        }
    }

    /* Claim the pages: none may be granted already, nor twice in this one. */
    pthread_mutex_lock(&s->gpadl_lock);
    uint32_t claimed = 0;
    for (; claimed < k; claimed++) {
        if (granted_test(s, g->pfns[claimed]))
            break;
        granted_set(s, g->pfns[claimed], true);
    }
    if (claimed < k) {
        for (uint32_t i = 0; i < claimed; i++)
            granted_set(s, g->pfns[i], false);
        pthread_mutex_unlock(&s->gpadl_lock);
        err = VMBUS_SRV_ERR_GPADL_OVERLAP;
        goto fail;
    }
    s->stats.gpadl_pages += k;
    pthread_mutex_unlock(&s->gpadl_lock);

    int rc = hv_partition_map_pages(s->part, g->pfns, k, &g->view);
    if (rc < 0) {
        pthread_mutex_lock(&s->gpadl_lock);
        for (uint32_t i = 0; i < k; i++)
            granted_set(s, g->pfns[i], false);
        s->stats.gpadl_pages -= k;
        pthread_mutex_unlock(&s->gpadl_lock);
        g->view = NULL;
        err = rc == -ENOSPC ? VMBUS_SRV_ERR_GPADL_SIZE
              : rc == -ERANGE ? VMBUS_SRV_ERR_GPADL_PFN
                              : VMBUS_SRV_ERR_RESOURCES;
        goto fail;
    }
    free(g->words);
    g->words = NULL;
    pthread_mutex_lock(&s->gpadl_lock);
    g->state = GPADL_READY;
    pthread_mutex_unlock(&s->gpadl_lock);
    gpadl_created(s, g->relid, g->id, 0);
    return;

fail:
    vmbus_srv_count_err(s, err);
    pthread_mutex_lock(&s->gpadl_lock);
    gpadl_unlink_locked(s, g);
    pthread_mutex_unlock(&s->gpadl_lock);
    gpadl_created(s, g->relid, g->id, VMBUS_STATUS_FAILURE);
    free(g->pfns);
    g->pfns = NULL;
    g->npfns = 0;
    free(g->words);
    free(g);
}

static void gpadl_append(struct vmbus_server *s, struct vmbus_gpadl *g, const uint8_t *data,
                         uint32_t bytes)
{
    uint32_t words = bytes / 8u;
    uint32_t room = g->words_total - g->words_got;
    if (words > room)
        words = room; /* extra words: some guests always send full messages */
    memcpy(g->words + g->words_got, data, (size_t)words * 8u);
    g->words_got += words;
    if (g->words_got == g->words_total)
        gpadl_finish(s, g);
}


void vmbus_srv_on_gpadl_header(struct vmbus_server *s, const uint8_t *buf, uint32_t len)
{
    struct vmbus_msg_gpadl_header m;
    memcpy(&m, buf, sizeof(m));
    struct vmbus_chan *c = vmbus_srv_chan_find(s, m.child_relid);
    if (!vmbus_srv_chan_known_to_guest(c) || c->state == CHAN_RESCINDED) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_RELID);
        return;
    }
    pthread_mutex_lock(&s->gpadl_lock);
    bool dup = gpadl_find_locked(s, m.gpadl) != NULL;
    bool full = s->ngpadls >= VMBUS_MAX_GPADLS;
    pthread_mutex_unlock(&s->gpadl_lock);
    if (dup) {
        /* The id is taken: answering would confuse the owner of that id. */
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_GPADL_ID);
        return;
    }
    if (full) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_GPADL_SIZE);
        gpadl_created(s, m.child_relid, m.gpadl, VMBUS_STATUS_FAILURE);
        return;
    }
    if (m.rangecount == 0 || m.rangecount > VMBUS_GPADL_MAX_RANGES || m.range_buflen % 8 != 0 ||
        m.range_buflen < 16u * m.rangecount) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_GPADL_RANGE);
        gpadl_created(s, m.child_relid, m.gpadl, VMBUS_STATUS_FAILURE);
        return;
    }
    struct vmbus_gpadl *g = calloc(1, sizeof(*g));
    if (g)
        g->words = malloc(m.range_buflen);
    if (!g || !g->words) {
        if (g)
            free(g);
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_RESOURCES);
        gpadl_created(s, m.child_relid, m.gpadl, VMBUS_STATUS_FAILURE);
        return;
    }
    g->srv = s;
    g->id = m.gpadl;
    g->relid = m.child_relid;
    g->state = GPADL_BUILDING;
    g->rangecount = m.rangecount;
    g->words_total = m.range_buflen / 8u;
    pthread_mutex_lock(&s->gpadl_lock);
    g->next = s->gpadls;
    s->gpadls = g;
    s->ngpadls++;
    pthread_mutex_unlock(&s->gpadl_lock);
    gpadl_append(s, g, buf + sizeof(m), len - (uint32_t)sizeof(m));
}

void vmbus_srv_on_gpadl_body(struct vmbus_server *s, const uint8_t *buf, uint32_t len)
{
    struct vmbus_msg_gpadl_body m;
    memcpy(&m, buf, sizeof(m));
    pthread_mutex_lock(&s->gpadl_lock);
    struct vmbus_gpadl *g = gpadl_find_locked(s, m.gpadl);
    bool ok = g && g->state == GPADL_BUILDING;
    pthread_mutex_unlock(&s->gpadl_lock);
    if (!ok) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_GPADL_ID);
        return;
    }
    gpadl_append(s, g, buf + sizeof(m), len - (uint32_t)sizeof(m));
}

void vmbus_srv_on_gpadl_teardown(struct vmbus_server *s, const uint8_t *buf)
{
    struct vmbus_msg_gpadl_teardown m;
    memcpy(&m, buf, sizeof(m));
    if (!vmbus_srv_chan_known_to_guest(vmbus_srv_chan_find(s, m.child_relid))) {
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_RELID);
        return;
    }
    pthread_mutex_lock(&s->gpadl_lock);
    struct vmbus_gpadl *g = gpadl_find_locked(s, m.gpadl);
    if (!g || g->relid != m.child_relid || g->state != GPADL_READY) {
        pthread_mutex_unlock(&s->gpadl_lock);
        vmbus_srv_count_err(s, VMBUS_SRV_ERR_GPADL_ID);
        return;
    }
    g->state = GPADL_DYING;
    g->send_torndown = true;
    bool now = g->refs == 0;
    if (now) {
        gpadl_unlink_locked(s, g);
    } else {
        g->torndown_owed = true;
        s->torndown_owed++;
    }
    pthread_mutex_unlock(&s->gpadl_lock);
    /* Otherwise the last vmbus_gpadl_put() (ring close, device) frees it. */
    if (now)
        vmbus_srv_gpadl_free(s, g);
}
