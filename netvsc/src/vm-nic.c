/*
 * The guest front end's NICs: one NIC and its TAP device, frames both ways,
 * and everything that starts the NIC or the TAP over.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/virtio_net.h>

#include "nettap-broker.h"
#include "vm-private.h"
#include "vmnic.h"

/* What a TAP read first goes into: room for a standard frame, i.e. a
 * send-buffer section, not pages for a jumbo frame that most reads are not. */
#define NETVSC_VM_FIRST_BUF jumbo_frame_tagged(JUMBO_MTU_DEFAULT)

static const char *nvsp_name(uint32_t v, char *buf, size_t len)
{
    const char *name = vmnic_nvsp_version_name(v);
    if (name)
        return name;
    snprintf(buf, len, "%#x", v);
    return buf;
}

/* The NIC's name inside the VM: the offer's user-defined bytes if they hold
 * a usable interface name, eth<relid> otherwise. */
static bool offer_nic_name(const struct vmbus_offer_info *oi, char *buf, size_t len)
{
    const char *ud = (const char *)oi->user_defined;
    size_t n = strnlen(ud, sizeof(oi->user_defined));
    if (n < sizeof(oi->user_defined) && nettap_name_valid(ud)) {
        snprintf(buf, len, "%.*s", (int)(len - 1), ud);
        return true;
    }
    snprintf(buf, len, "eth%u", oi->relid);
    return false;
}

static int nic_set_tap_interest(struct nic *x, bool in)
{
    if (x->tap_in == in)
        return 0;
    struct epoll_event ev = {.events = in ? EPOLLIN : 0,
                             .data.u64 = NETVSC_VM_TAG_NIC0 + (uint64_t)x->slot};
    if (epoll_ctl(x->env->ep, EPOLL_CTL_MOD, x->tap_fd, &ev) < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s: epoll: %s\n", x->env->name, x->name, strerror(errno));
        return -errno;
    }
    x->tap_in = in;
    return 0;
}

void netvsc_vm_nic_set_limits(struct nic *x, bool tso)
{
    x->tso = tso;
    x->frame_max = jumbo_frame_tagged(x->info.mtu);
    x->tx_frame_cap = tso ? NETVSC_VM_GSO_FRAME_MAX : x->frame_max;
}

static void nic_free(struct nic *x)
{
    free(x->bounce);
    free(x);
}

/* Watch the TAP for frames and for link changes made inside the VM. */
static int nic_watch_tap(struct nic *x)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = NETVSC_VM_TAG_NIC0 + (uint64_t)x->slot};
    if (epoll_ctl(x->env->ep, EPOLL_CTL_ADD, x->tap_fd, &ev) < 0)
        return -errno;
    struct epoll_event lev = {.events = EPOLLIN,
                              .data.u64 = NETVSC_VM_TAG_TAPEV0 + (uint64_t)x->slot};
    int efd = nettap_events_fd(x->tap);
    if (efd >= 0 && epoll_ctl(x->env->ep, EPOLL_CTL_ADD, efd, &lev) < 0) {
        int rc = -errno;
        epoll_ctl(x->env->ep, EPOLL_CTL_DEL, x->tap_fd, NULL);
        return rc;
    }
    x->tap_in = true;
    x->tap_ready = true;
    return 0;
}

static void nic_unwatch_tap(struct nic *x)
{
    if (x->tap_fd >= 0)
        epoll_ctl(x->env->ep, EPOLL_CTL_DEL, x->tap_fd, NULL);
    int efd = x->tap ? nettap_events_fd(x->tap) : -1;
    if (efd >= 0)
        epoll_ctl(x->env->ep, EPOLL_CTL_DEL, efd, NULL);
}

int netvsc_vm_nic_open(struct netvsc_vm_env *env, const struct vmbus_offer_info *oi, int slot,
                       struct nic **out)
{
    char name[NETTAP_NAME_MAX + 1];
    bool named = offer_nic_name(oi, name, sizeof(name));
    if (slot < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s (relid %u): more than %d NICs, not opened\n", env->name,
                name, oi->relid, NETVSC_VM_MAX_NICS);
        return -ENOSPC;
    }
    struct nic *x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->env = env;
    x->slot = slot;
    x->relid = oi->relid;
    x->instance = oi->instance_id;
    x->tap_fd = -1;

    x->vp = env->next_vp;
    env->next_vp = (env->next_vp + 1) % env->nvp;
    /* the root's MTU wins */
    struct netvsc_params np = {.mtu = JUMBO_MTU_MAX, .target_vp = x->vp, .rsc = true,
                               .no_offload = env->no_offload};
    int rc = netvsc_open(x->env->c, oi->relid, &np, &x->n);
    if (rc < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s (relid %u): open failed: %s\n", x->env->name, name,
                oi->relid, strerror(-rc));
        goto err;
    }
    netvsc_get_info(x->n, &x->info);
    struct nettap_params tp;
    netvsc_vm_tap_params(&x->info, name, &tp);
    rc = nettap_create_brokered(x->env->tap_broker, &tp, &x->tap);
    if (rc == -EEXIST && named) {
        /* The root named two NICs alike, or the VM has such an interface. */
        char alt[NETTAP_NAME_MAX + 1];
        snprintf(alt, sizeof(alt), "eth%u", oi->relid);
        fprintf(stderr, "hv-vm %s: NIC %s (relid %u): %s; using %s\n", x->env->name, name,
                oi->relid, nettap_last_error(), alt);
        snprintf(name, sizeof(name), "%s", alt);
        netvsc_vm_tap_params(&x->info, name, &tp);
        rc = nettap_create_brokered(x->env->tap_broker, &tp, &x->tap);
    }
    if (rc < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s (relid %u): %s\n", x->env->name, name, oi->relid,
                nettap_last_error());
        goto err;
    }
    snprintf(x->name, sizeof(x->name), "%s", name);
    x->tap_fd = nettap_fd(x->tap);
    netvsc_vm_nic_set_limits(x, tp.tso);
    if (!(x->bounce = malloc(NETVSC_VM_GSO_FRAME_MAX))) {
        rc = -ENOMEM;
        fprintf(stderr, "hv-vm %s: NIC %s: out of memory\n", x->env->name, name);
        goto err;
    }
    if ((rc = nic_watch_tap(x)) < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s: epoll: %s\n", x->env->name, name, strerror(-rc));
        goto err;
    }
    *out = x;

    char nv[16];
    const uint8_t *m = x->info.mac;
    printf("hv-vm %s: NIC %s up, MAC %02x:%02x:%02x:%02x:%02x:%02x, MTU %u, NVSP %s, offloads %s, "
           "VP %u\n",
           x->env->name, x->name, m[0], m[1], m[2], m[3], m[4], m[5], x->info.mtu,
           nvsp_name(x->info.nvsp_version, nv, sizeof(nv)),
           tp.tso ? "csum/lso" : (tp.csum ? "csum" : "none"), x->info.target_vp);
    if (x->env->verbose)
        printf("hv-vm %s: NIC %s: relid %u, NDIS %u.%u, link %s, %u Mbit/s, LSO max %u, "
               "TAP ifindex %d in %s\n",
               x->env->name, x->name, x->relid, x->info.ndis_version >> 16,
               x->info.ndis_version & 0xffff, x->info.link_up ? "up" : "down",
               x->info.link_speed_mbps, x->info.lso_max, nettap_ifindex(x->tap), x->env->netns);
    fflush(stdout);
    return 0;
err:
    nettap_destroy(x->tap);
    netvsc_close(x->n);
    nic_free(x);
    return rc;
}

static void nic_print_counters(const struct nic *x)
{
    struct netvsc_stats s;
    memset(&s, 0, sizeof(s));
    if (x->n)
        netvsc_get_stats(x->n, &s);
    const struct netvsc_vm_nic_counters *c = &x->ct;
    /* Four lines: the root keeps at most 200 characters of a line a VM
     * prints (hv-core's process.c). */
    printf("hv-vm %s: NIC %s: to root %" PRIu64 " frames %" PRIu64 " bytes (csum %" PRIu64
           ", lso %" PRIu64 "), from root %" PRIu64 " frames %" PRIu64 " bytes\n",
           x->env->name, x->name, c->to_root_frames, c->to_root_bytes, c->to_root_csum,
           c->to_root_lso, c->to_tap_frames, c->to_tap_bytes);
    printf("hv-vm %s: NIC %s: from root: csum ok %" PRIu64 ", partial %" PRIu64
           ", coalesced %" PRIu64 "; drops: tap-full %" PRIu64 ", tap-write %" PRIu64
           ", oversize %" PRIu64 ", runt %" PRIu64 "\n",
           x->env->name, x->name, c->to_tap_csum_ok, c->to_tap_partial, c->to_tap_rsc,
           c->drop_tap_full, c->drop_tap_write, c->drop_oversize, c->drop_runt);
    printf("hv-vm %s: NIC %s: drops: bad-offload %" PRIu64 ", gso-type %" PRIu64
           ", bad-rsc %" PRIu64 ", rejected %" PRIu64 "; bounced %" PRIu64 ", sw-csum %" PRIu64
           ", tx-stalls %" PRIu64 ", ring-full %" PRIu64 "\n",
           x->env->name, x->name, c->drop_bad_offload, c->drop_gso_type, c->drop_rsc,
           c->drop_rejected, c->bounced, c->sw_csum, c->tx_stalls, c->ring_full);
    printf("hv-vm %s: NIC %s: link-changes %" PRIu64 ", reopens %" PRIu64 ", restarts %" PRIu64
           "; netvsc: tx %" PRIu64 " (gpa-direct %" PRIu64 "), rx %" PRIu64 ", no-buffer %" PRIu64
           ", rx-bad %" PRIu64 "\n",
           x->env->name, x->name, c->link_changes, c->reopens, c->restarts, s.tx_frames,
           s.tx_gpa_direct, s.rx_frames, s.tx_no_buffer, s.rx_bad);
}

static void nic_drop_pending(struct nic *x)
{
    if (x->pend == PEND_SUBMIT && x->n)
        netvsc_tx_abort(x->n, &x->pend_tb);
    x->pend = PEND_NONE;
}

/* Delete the NIC's TAP, then close the NIC. The TAP goes first so the
 * interface leaves the VM at once, however long the channel takes to
 * close. */
void netvsc_vm_nic_close(struct nic *x, const char *why)
{
    printf("hv-vm %s: NIC %s %s\n", x->env->name, x->name, why);
    nic_print_counters(x);
    fflush(stdout);
    nic_drop_pending(x);
    nic_unwatch_tap(x);
    nettap_destroy(x->tap);
    netvsc_close(x->n);
    nic_free(x);
}

/* Start the NIC over (RNDIS halt, buffers revoked, channel closed and
 * opened again, NVSP and RNDIS negotiated anew) asking for mtu, keeping its
 * TAP and with it the VM's addresses and routes: what a guest does after an
 * MTU change, and after a protocol error. */
static int nic_restart(struct nic *x, uint32_t mtu)
{
    nic_drop_pending(x);
    netvsc_close(x->n);
    x->n = NULL;
    nettap_set_carrier(x->tap, false);

    struct netvsc_params np = {.mtu = mtu, .target_vp = x->vp, .rsc = true,
                               .no_offload = x->env->no_offload};
    int rc = netvsc_open(x->env->c, x->relid, &np, &x->n);
    if (rc < 0) {
        x->n = NULL;
        fprintf(stderr, "hv-vm %s: NIC %s: reopen failed: %s\n", x->env->name, x->name,
                strerror(-rc));
        return rc;
    }
    struct netvsc_info info;
    netvsc_get_info(x->n, &info);
    struct nettap_params tp;
    netvsc_vm_tap_params(&info, x->name, &tp);
    /* Always: the VM may have set its interface above what it got. */
    if ((rc = nettap_set_mtu(x->tap, info.mtu)) < 0 ||
        (memcmp(info.mac, x->info.mac, 6) != 0 &&
         (rc = nettap_set_mac(x->tap, info.mac)) < 0) ||
        (rc = nettap_set_offload(x->tap, tp.csum, tp.tso)) < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s: %s\n", x->env->name, x->name, nettap_last_error());
        return rc;
    }
    x->info = info;
    struct netvsc_stats st;
    netvsc_get_stats(x->n, &st);
    x->link_changes_seen = st.link_changes; /* a new netvsc counts from zero */
    netvsc_vm_nic_set_limits(x, tp.tso);
    nettap_set_carrier(x->tap, info.link_up);
    x->tap_ready = true;
    nic_set_tap_interest(x, true);
    printf("hv-vm %s: NIC %s started over, MTU %u, link %s\n", x->env->name, x->name, info.mtu,
           info.link_up ? "up" : "down");
    fflush(stdout);
    return 0;
}

/* The MTU the VM wants: its own choice, or the most the root allows. */
static uint32_t nic_mtu_wanted(const struct nic *x)
{
    return x->want_mtu ? x->want_mtu : JUMBO_MTU_MAX;
}

/* -EPROTO: the root broke the protocol on this channel. Start over once. */
static int nic_reopen(struct nic *x)
{
    fprintf(stderr, "hv-vm %s: NIC %s: protocol error from the root; reopening\n", x->env->name,
            x->name);
    x->reopened = true;
    x->ct.reopens++;
    return nic_restart(x, nic_mtu_wanted(x));
}

/* Link notifications from the TAP: someone inside the VM changed its MTU
 * (ip link set eth0 mtu N). As a guest driver does, start the NIC over
 * with it; the root may allow less, and then the TAP gets that. Changes
 * hv-vm made itself come back here too and are ignored. */
static int nic_tap_events(struct nic *x)
{
    x->tap_event = false;
    struct nettap_event ev;
    int rc = nettap_events_read(x->tap, &ev);
    if (rc <= 0) {
        if (rc < 0)
            fprintf(stderr, "hv-vm %s: NIC %s: %s\n", x->env->name, x->name,
                    nettap_last_error());
        return 0;
    }
    if (ev.gone) {
        x->tap_lost = true;
        return 0;
    }
    if (ev.mtu == x->info.mtu || ev.mtu < JUMBO_MTU_MIN)
        return 0;
    printf("hv-vm %s: NIC %s: the VM set MTU %u (was %u); starting the NIC over\n", x->env->name,
           x->name, ev.mtu, x->info.mtu);
    fflush(stdout);
    x->want_mtu = ev.mtu > JUMBO_MTU_MAX ? JUMBO_MTU_MAX : ev.mtu;
    x->ct.restarts++;
    rc = nic_restart(x, x->want_mtu);
    if (rc == 0 && x->info.mtu < ev.mtu)
        printf("hv-vm %s: NIC %s: the root allows MTU %u at most\n", x->env->name, x->name,
               x->info.mtu);
    fflush(stdout);
    return rc;
}

/* Reflect the NIC's link state (and a changed MTU) in the TAP. */
static void nic_sync_info(struct nic *x)
{
    struct netvsc_info info;
    struct netvsc_stats st;
    netvsc_get_info(x->n, &info);
    netvsc_get_stats(x->n, &st);
    /* A cable pulled and plugged back within one poll still has to reach
     * the VM's stack as a carrier loss (it renews what it learned). */
    bool bounced = st.link_changes != x->link_changes_seen && info.link_up == x->info.link_up &&
                   info.link_up;
    x->link_changes_seen = st.link_changes;
    if (bounced) {
        x->ct.link_changes += 2;
        if (nettap_set_carrier(x->tap, false) < 0 || nettap_set_carrier(x->tap, true) < 0)
            fprintf(stderr, "hv-vm %s: %s\n", x->env->name, nettap_last_error());
        printf("hv-vm %s: NIC %s link bounced\n", x->env->name, x->name);
        fflush(stdout);
    } else if (info.link_up != x->info.link_up) {
        x->ct.link_changes++;
        if (nettap_set_carrier(x->tap, info.link_up) < 0)
            fprintf(stderr, "hv-vm %s: %s\n", x->env->name, nettap_last_error());
        printf("hv-vm %s: NIC %s link %s\n", x->env->name, x->name, info.link_up ? "up" : "down");
        fflush(stdout);
    }
    if (info.mtu != x->info.mtu) {
        if (nettap_set_mtu(x->tap, info.mtu) < 0)
            fprintf(stderr, "hv-vm %s: %s\n", x->env->name, nettap_last_error());
        else if (x->env->verbose)
            printf("hv-vm %s: NIC %s MTU %u\n", x->env->name, x->name, info.mtu);
    }
    x->info = info;
    netvsc_vm_nic_set_limits(x, x->tso);
}

/* Root -> TAP, one frame (netvsc_vm_rx_iov). The TAP queue is the VM's
 * receive queue: when it is full the frame is dropped, as a NIC would. */
void netvsc_vm_nic_rx_frame(void *ctx, const void *frame, uint32_t len,
                            const struct netvsc_meta *meta)
{
    struct nic *x = ctx;
    struct virtio_net_hdr vh;
    uint8_t tag[JUMBO_VLAN_HLEN];
    uint8_t hdr[NETVSC_VM_RSC_HDR_MAX];
    struct iovec iov[5];
    int cnt;
    if (meta->flags & NETVSC_F_RSC) {
        cnt = netvsc_vm_rx_rsc_iov(frame, len, meta, x->info.mtu, &vh, hdr, tag, iov);
        if (cnt < 0) {
            x->ct.drop_rsc++;
            return;
        }
        x->ct.to_tap_rsc++;
    } else {
        enum netvsc_vm_rx_csum csum;
        cnt = netvsc_vm_rx_iov(frame, len, meta, &vh, tag, iov, &csum);
        x->ct.to_tap_csum_ok += csum != NETVSC_VM_RX_CSUM_NONE;
        x->ct.to_tap_partial += csum == NETVSC_VM_RX_CSUM_PARTIAL;
    }
    if (writev(x->tap_fd, iov, cnt) < 0) {
        if (errno == EAGAIN)
            x->ct.drop_tap_full++;
        else
            x->ct.drop_tap_write++;
        return;
    }
    x->ct.to_tap_frames++;
    x->ct.to_tap_bytes += len;
}

/* netvsc_vm_tx_meta() for a frame from the TAP, its verdict counted.
 * false: drop the frame. */
static bool nic_tx_meta(struct nic *x, const struct virtio_net_hdr *vh, uint8_t *f, uint32_t len,
                        struct netvsc_meta *meta)
{
    switch (netvsc_vm_tx_meta(&x->info, vh, f, len, meta)) {
    case NETVSC_VM_TX_OK:
        return true;
    case NETVSC_VM_TX_SW_CSUM:
        x->ct.sw_csum++;
        return true;
    case NETVSC_VM_TX_BAD_OFFLOAD:
        x->ct.drop_bad_offload++;
        return false;
    case NETVSC_VM_TX_GSO_TYPE:
        x->ct.drop_gso_type++;
        return false;
    }
    return false;
}

/* Hand one frame to the NIC. false if the NIC has no room for it now; the
 * frame is then kept as the NIC's pending frame. */
static bool nic_submit(struct nic *x, struct netvsc_txbuf *tb, uint32_t len,
                       const struct netvsc_meta *meta)
{
    int rc = netvsc_tx_submit(x->n, tb, len, meta);
    if (rc == 0) {
        x->ct.to_root_frames++;
        x->ct.to_root_bytes += len;
        x->ct.to_root_csum += (meta->flags & NETVSC_F_CSUM) != 0;
        x->ct.to_root_lso += (meta->flags & NETVSC_F_LSO) != 0;
        return true;
    }
    if (rc == -EAGAIN) {
        x->ct.ring_full++;
        x->pend = PEND_SUBMIT;
        x->pend_tb = *tb;
        x->pend_len = len;
        x->pend_meta = *meta;
        return false;
    }
    netvsc_tx_abort(x->n, tb);
    x->ct.drop_rejected++;
    return true;
}

/* A frame sits whole in the bounce buffer: copy it into room big enough
 * for it. false if there is none now (it stays pending). */
static bool nic_send_bounce(struct nic *x, uint32_t len, const struct netvsc_meta *meta)
{
    struct netvsc_txbuf tb;
    if (!netvsc_tx_alloc(x->n, len, &tb)) {
        x->pend = PEND_BOUNCE;
        x->pend_len = len;
        x->pend_meta = *meta;
        return false;
    }
    if (tb.cap < len) {
        netvsc_tx_abort(x->n, &tb);
        x->ct.drop_oversize++;
        return true;
    }
    memcpy(tb.data, x->bounce, len);
    return nic_submit(x, &tb, len, meta);
}

/* The pending frame, again. true if it is gone (sent or dropped). */
static bool nic_retry_pending(struct nic *x)
{
    enum pending_kind k = x->pend;
    x->pend = PEND_NONE;
    if (k == PEND_SUBMIT) {
        struct netvsc_txbuf tb = x->pend_tb;
        struct netvsc_meta meta = x->pend_meta;
        return nic_submit(x, &tb, x->pend_len, &meta);
    }
    if (k == PEND_BOUNCE) {
        struct netvsc_meta meta = x->pend_meta;
        return nic_send_bounce(x, x->pend_len, &meta);
    }
    return true;
}

/*
 * TAP -> root, one burst (netvsc_vm_nic_tx). A frame is read straight into send room in guest
 * memory: the virtio_net_hdr into a local, the frame into a send-buffer
 * section's room, and where frames may be longer (jumbo, or GSO with LSO)
 * the rest into a page chunk of netvsc_tx_alloc_split(), in one readv. A
 * frame that fit the section goes from there (the chunk back at once); a
 * longer one goes GPA-direct from the chunk, its first section's worth
 * moved in front (netvsc_tx_join): one 64 KiB read, one copy of about
 * 1.5 KB. Only when every chunk is in flight does a longer frame spill
 * into the bounce buffer instead, to be put together there and copied
 * into room of its own size once some is free.
 *
 * Without send room the TAP is left unread (EPOLLIN off) until completions
 * free some (netvsc_tx_blocked() turns false): the kernel queues, then
 * drops, meanwhile, as it would for a busy NIC. `force` retries even while
 * netvsc says blocked (after a bounded sleep, against a lost wake-up).
 * Returns frames taken from the TAP, or -errno if the TAP is gone.
 */
int netvsc_vm_nic_tx(struct nic *x, bool force)
{
    int done = 0, sent = 0;
    bool stalled = x->pend != PEND_NONE || (x->tap_ready && !x->tap_in);
    if (stalled && !force && netvsc_tx_blocked(x->n))
        return 0;
    if (x->pend != PEND_NONE) {
        if (!nic_retry_pending(x))
            return 0; /* flushed when it became pending */
        done++;
        sent++;
    }
    uint32_t first = x->frame_max < NETVSC_VM_FIRST_BUF ? x->frame_max : NETVSC_VM_FIRST_BUF;
    while (x->tap_ready && done < NETVSC_VM_BURST) {
        struct netvsc_txbuf tb;
        bool ok = x->tx_frame_cap > first ? netvsc_tx_alloc_split(x->n, x->tx_frame_cap, &tb)
                                          : netvsc_tx_alloc(x->n, first, &tb);
        if (!ok) {
            if (x->tap_in)
                x->ct.tx_stalls++;
            nic_set_tap_interest(x, false);
            break;
        }
        nic_set_tap_interest(x, true);
        struct virtio_net_hdr vh;
        struct iovec iov[3] = {{&vh, NETVSC_VM_VNET_HDR_LEN}, {tb.data, tb.cap}, {NULL, 0}};
        int cnt = 2;
        if (tb.spill) {
            uint32_t more = x->tx_frame_cap - tb.cap;
            iov[2] = (struct iovec){tb.spill, tb.spill_cap < more ? tb.spill_cap : more};
            cnt = 3;
        } else if (tb.cap < x->tx_frame_cap) {
            iov[2] = (struct iovec){x->bounce + tb.cap, x->tx_frame_cap - tb.cap};
            cnt = 3;
        }
        ssize_t r = readv(x->tap_fd, iov, cnt);
        if (r < 0) {
            int err = errno;
            netvsc_tx_abort(x->n, &tb);
            if (err == EINTR)
                continue;
            x->tap_ready = false;
            if (err == EAGAIN)
                break;
            fprintf(stderr, "hv-vm %s: NIC %s: TAP read: %s\n", x->env->name, x->name,
                    strerror(err));
            return -err;
        }
        done++;
        if ((size_t)r < NETVSC_VM_VNET_HDR_LEN + JUMBO_ETH_HLEN) {
            netvsc_tx_abort(x->n, &tb);
            x->ct.drop_runt++;
            continue;
        }
        uint32_t len = (uint32_t)((size_t)r - NETVSC_VM_VNET_HDR_LEN);
        struct netvsc_meta meta;
        /* Read into a section and a chunk: made one where it is. */
        if (tb.spill && len <= x->tx_frame_cap && !netvsc_tx_join(x->n, &tb, len)) {
            netvsc_tx_abort(x->n, &tb);
            x->ct.drop_oversize++;
            continue;
        }
        if (len <= tb.cap) {
            if (!nic_tx_meta(x, &vh, tb.data, len, &meta)) {
                netvsc_tx_abort(x->n, &tb);
                continue;
            }
            if (!nic_submit(x, &tb, len, &meta))
                break;
            sent++;
            continue;
        }
        /* The read result counts bytes the iovecs had no room for too:
         * longer than we allow means cut short, and dropped. */
        if (cnt < 3 || len > x->tx_frame_cap) {
            netvsc_tx_abort(x->n, &tb);
            x->ct.drop_oversize++;
            continue;
        }
        memcpy(x->bounce, tb.data, tb.cap);
        netvsc_tx_abort(x->n, &tb);
        x->ct.bounced++;
        if (!nic_tx_meta(x, &vh, x->bounce, len, &meta))
            continue;
        if (!nic_send_bounce(x, len, &meta))
            break;
        sent++;
    }
    if (x->pend != PEND_NONE)
        nic_set_tap_interest(x, false);
    if (sent || x->pend != PEND_NONE)
        netvsc_tx_flush(x->n);
    return done;
}

/* The TAP went away under us (deleted inside the VM): make it again, so
 * the NIC stays usable. */
static int nic_tap_recreate(struct nic *x)
{
    fprintf(stderr, "hv-vm %s: NIC %s: TAP lost; creating it again\n", x->env->name, x->name);
    nic_drop_pending(x);
    nic_unwatch_tap(x);
    nettap_destroy(x->tap);
    x->tap = NULL;
    x->tap_fd = -1;
    x->want_mtu = 0; /* a new interface starts at the NIC's MTU, the VM's choice gone */
    struct nettap_params tp;
    netvsc_vm_tap_params(&x->info, x->name, &tp);
    int rc = nettap_create_brokered(x->env->tap_broker, &tp, &x->tap);
    if (rc < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s: %s\n", x->env->name, x->name, nettap_last_error());
        return rc;
    }
    x->tap_fd = nettap_fd(x->tap);
    if ((rc = nic_watch_tap(x)) < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s: epoll: %s\n", x->env->name, x->name, strerror(-rc));
        return rc;
    }
    x->tap_lost = false;
    return 0;
}

bool netvsc_vm_nic_stalled(const struct nic *x)
{
    return x->pend != PEND_NONE || (x->tap_ready && !x->tap_in) || netvsc_tx_blocked(x->n);
}

static int nic_end(struct netvsc_vm_nic_end *end, const char *why, bool failed)
{
    end->why = why;
    end->failed = failed;
    return -1;
}

int netvsc_vm_nic_service(struct nic *x, bool force, struct netvsc_vm_nic_end *end)
{
    int rx = netvsc_poll(x->n, netvsc_vm_nic_rx_frame, x, NETVSC_VM_BURST);
    if (rx == -ENOTCONN)
        return nic_end(end, "removed (channel rescinded)", false);
    if (rx == -EPROTO && !x->reopened) {
        if (nic_reopen(x) == 0)
            return 1;
        return nic_end(end, "closed (reopen failed)", true);
    }
    if (rx < 0) {
        fprintf(stderr, "hv-vm %s: NIC %s: %s\n", x->env->name, x->name, strerror(-rx));
        return nic_end(end, "closed (channel failed)", true);
    }
    if (netvsc_reinit_wanted(x->n)) {
        /* The root changed the NIC (its MTU): start over as a guest does. */
        printf("hv-vm %s: NIC %s: network change from the root; starting the NIC over\n",
               x->env->name, x->name);
        x->ct.restarts++;
        if (nic_restart(x, nic_mtu_wanted(x)) == 0)
            return 1;
        return nic_end(end, "closed (restart failed)", true);
    }
    if (x->tap_event && nic_tap_events(x) < 0)
        return nic_end(end, "closed (restart failed)", true);
    nic_sync_info(x);
    int tx = x->tap_lost ? -EBADFD : netvsc_vm_nic_tx(x, force);
    if (tx < 0) {
        if (nic_tap_recreate(x) == 0)
            return 1;
        return nic_end(end, "closed (no TAP)", true);
    }
    return rx + tx;
}
