/*
 * netvsp as a switch port: the vsw_port_class operations, creating and
 * destroying a NIC, its VMBus offer and the channel's open/close
 * callbacks, stats, and the MTU and media setters the control thread
 * calls.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "jumbo.h"
#include "netvsp-private.h"

static const char *const err_names[NETVSP_ERR_COUNT] = {
    [NETVSP_ERR_RING] = "ring_corrupt",
    [NETVSP_ERR_PKT_TYPE] = "packet_type",
    [NETVSP_ERR_NVSP_SHORT] = "nvsp_short",
    [NETVSP_ERR_NVSP_TYPE] = "nvsp_type",
    [NETVSP_ERR_NVSP_ORDER] = "nvsp_order",
    [NETVSP_ERR_NO_COMPLETION] = "no_completion_requested",
    [NETVSP_ERR_GPADL] = "gpadl",
    [NETVSP_ERR_SECTION] = "send_section",
    [NETVSP_ERR_GPA_RANGE] = "gpa_range",
    [NETVSP_ERR_RNDIS_LEN] = "rndis_length",
    [NETVSP_ERR_RNDIS_TYPE] = "rndis_type",
    [NETVSP_ERR_RNDIS_PACKET] = "rndis_packet",
    [NETVSP_ERR_PPI] = "ppi",
    [NETVSP_ERR_OFFLOAD] = "offload_metadata",
    [NETVSP_ERR_OID] = "oid_buffer",
    [NETVSP_ERR_COMPLETION_ID] = "completion_id",
    [NETVSP_ERR_NOT_READY] = "not_ready",
    [NETVSP_ERR_BUFFER_SIZE] = "buffer_too_big",
    [NETVSP_ERR_SUBCHANNEL_MSG] = "subchannel_message",
};

const char *netvsp_err_name(enum netvsp_err e)
{
    return e < NETVSP_ERR_COUNT ? err_names[e] : "invalid";
}

static const char *const lso_drop_names[NETVSP_LSO_DROP_COUNT] = {
    [NETVSP_LSO_NOT_ENABLED] = "not_enabled",
    [NETVSP_LSO_MSS] = "mss",
    [NETVSP_LSO_HDR_OFFSET] = "header_offset",
    [NETVSP_LSO_NOT_TCP] = "not_tcp",
    [NETVSP_LSO_FRAGMENT] = "fragment",
    [NETVSP_LSO_TOO_BIG] = "too_big",
    [NETVSP_LSO_HEADERS] = "headers",
};

const char *netvsp_lso_drop_name(enum netvsp_lso_drop r)
{
    return r < NETVSP_LSO_DROP_COUNT ? lso_drop_names[r] : "invalid";
}

static const char *const subch_names[NETVSP_SUBCH_ERR_COUNT] = {
    [NETVSP_SUBCH_TOO_MANY] = "too_many",
    [NETVSP_SUBCH_REPEATED] = "repeated",
    [NETVSP_SUBCH_NOT_READY] = "not_ready",
    [NETVSP_SUBCH_OPERATION] = "operation",
};

const char *netvsp_subch_err_name(enum netvsp_subch_err r)
{
    return r < NETVSP_SUBCH_ERR_COUNT ? subch_names[r] : "invalid";
}

static void vm_tx_flush(struct vsw_port *port)
{
    struct netvsp *np = np_of(port);
    struct conn *c = __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE);
    if (c) {
        if (c->media_gen_told != __atomic_load_n(&np->media_gen, __ATOMIC_RELAXED))
            netvsp_indicate_media(np, c);
        if (c->mtu_gen_seen != __atomic_load_n(&np->mtu_gen, __ATOMIC_RELAXED))
            netvsp_indicate_mtu(np, c);
        netvsp_publish_all(np, c);
    }
}

static int vm_wait_fd(struct vsw_port *port)
{
    struct netvsp *np = np_of(port);
    /* The connection's epoll set over its lanes' event fds. chan_close
     * unpublishes conn before it says the fd changed and closes the set
     * only after: the old descriptor leaves the worker's epoll set while
     * its number still names it, and no number is remembered after it is
     * closed. */
    struct conn *c = __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE);
    return c && np->chan && vmbus_chan_is_open(np->chan) ? c->epfd : -1;
}

static bool vm_wait_arm(struct vsw_port *port)
{
    struct netvsp *np = np_of(port);
    struct conn *c = __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE);
    if (!c || c->dead)
        return false;
    bool pending = false;
    for (uint32_t i = 0; i < NETVSP_QUEUES_MAX; i++) {
        struct lane *l = __atomic_load_n(&c->lanes[i], __ATOMIC_ACQUIRE);
        if (!l)
            continue;
        netvsp_publish(np, c, l);
        bool p = vmbus_ring_intr_unmask(l->rx);
        /* Blocked on our own ring (completions)? Then the guest's requests
         * are no work until it reads: rx_burst leaves them in its ring. Ask
         * to hear when it makes room and say whether it has already; a
         * request waiting there must not keep the worker from sleeping for
         * as long as the guest does not read. */
        if (vmbus_ring_free_bytes(l->tx) < netvsp_reply_room())
            p = vmbus_ring_arm_space(l->tx, netvsp_reply_room()) == 1;
        pending |= p;
    }
    /* A send whose frames are still held somewhere owes the guest a
     * completion that no event announces when another thread frees them:
     * keep polling until they are freed (reaped, the completion is sent or,
     * if its lane's ring is full, held: that ring wakes us when the guest
     * reads, above, so a guest that does not read cannot keep us polling).
     * So does a held completion whose lane has room now, and the send
     * table once the sub-channels granted are open and the primary's ring
     * has room for it. */
    return pending || netvsp_zc_pending(c->zc) || netvsp_zc_owed_ready(c) ||
           (vmbus_ring_free_bytes(c->l0.tx) >= netvsp_reply_room() && c->sub_granted &&
            !c->itab_sent && netvsp_open_lanes(c) == c->sub_granted + 1);
}

static void vm_wait_disarm(struct vsw_port *port)
{
    struct netvsp *np = np_of(port);
    struct conn *c = __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE);
    if (!c)
        return;
    for (uint32_t i = 0; i < NETVSP_QUEUES_MAX; i++) {
        struct lane *l = __atomic_load_n(&c->lanes[i], __ATOMIC_ACQUIRE);
        if (!l)
            continue;
        vmbus_ring_intr_mask(l->rx);
        uint64_t v;
        if (read(vmbus_chan_event_fd(l->chan), &v, sizeof(v)) < 0) {
            /* not signalled */
        }
    }
}

void netvsp_update_tx_offloads(struct netvsp *np, const struct conn *c)
{
    uint32_t f = 0;
    if (c && c->rx_csum)
        f |= VSW_TX_CSUM;
    if (c && c->rsc4 && c->rsc6)
        f |= VSW_TX_TSO;
    vsw_port_set_tx_offloads(&np->port, f);
}

static int epoll_add(int epfd, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static const struct vmbus_device_ops sub_ops;

/* The worker granted sub-channels (nvs.c): offer them. Control thread,
 * only while the connection is there (watched from open to close). */
static void on_offer(void *ctx, uint32_t events)
{
    struct netvsp *np = ctx;
    (void)events;
    struct conn *c = np->conn;
    uint64_t v;
    if (!c || read(c->offer_fd, &v, sizeof(v)) < 0)
        return;
    uint32_t n = __atomic_load_n(&c->offer_n, __ATOMIC_ACQUIRE);
    for (uint32_t i = 1; i <= n && i < NETVSP_QUEUES_MAX; i++) {
        struct vmbus_chan *sub;
        np->sub[i].np = np;
        np->sub[i].idx = i;
        /* -EEXIST: offered already. Anything else leaves the guest with
         * fewer channels than it was told, as a host out of channel ids
         * would; it keeps using those it has. */
        if (vmbus_server_offer_sub(np->chan, (uint16_t)i, &sub_ops, &np->sub[i], &sub) < 0)
            continue;
    }
}

static int chan_open(void *ctx, struct vmbus_chan *chan)
{
    struct netvsp *np = ctx;
    struct conn *c;
    int rc = netvsp_conn_create(np, chan, &c);
    if (rc < 0)
        return rc;
    struct hv_host *host = hv_partition_host(vmbus_chan_partition(chan));
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    c->offer_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    rc = c->epfd < 0 || c->offer_fd < 0 ? -errno : epoll_add(c->epfd, vmbus_chan_event_fd(chan));
    if (rc == 0)
        rc = hv_host_watch(host, c->offer_fd, EPOLLIN, on_offer, np);
    if (rc < 0) {
        if (c->epfd >= 0)
            close(c->epfd);
        if (c->offer_fd >= 0)
            close(c->offer_fd);
        netvsp_conn_free(c);
        return rc;
    }
    /* Without its own mapping of the guest's memory (or with PCI devices,
     * zcopy.c) the connection copies every frame, as it always may. */
    if (c->dma && netvsp_zc_create(c->dma, c->mem_pages << HV_PAGE_SHIFT, &c->zc) < 0)
        c->zc = NULL;
    memset(&np->stats.connected, 0, sizeof(np->stats) - offsetof(struct netvsp_stats, connected));
    np->stats.connected = true;
    np->stats.opens++;
    netvsp_update_tx_offloads(np, NULL);
    __atomic_store_n(&np->conn, c, __ATOMIC_RELEASE);
    vsw_port_wait_fd_changed(&np->port);
    return 0;
}

static void chan_close(void *ctx, struct vmbus_chan *chan)
{
    struct netvsp *np = ctx;
    struct conn *c = np->conn;
    /* hv-core closed every sub-channel first (sub_close): only the
     * primary's lane is left. */
    vsw_port_set_link(&np->port, false);
    __atomic_store_n(&np->conn, NULL, __ATOMIC_RELEASE);
    /* After this no worker can be inside c. */
    vsw_port_synchronize(&np->port);
    hv_host_unwatch(hv_partition_host(vmbus_chan_partition(chan)), c->offer_fd);
    close(c->offer_fd);
    np->stats.connected = false;
    np->stats.rndis_ready = false;
    netvsp_update_tx_offloads(np, NULL);
    /* Frames still in the switch keep the guest's pages mapped (zcopy.c);
     * their completions are owed to a channel that is gone. */
    netvsp_zc_put(c->zc);
    int epfd = c->epfd;
    netvsp_conn_free(c);
    vsw_port_wait_fd_changed(&np->port);
    close(epfd);
}

/*
 * A sub-channel the guest opened: a lane of the connection, published to
 * the worker, its event fd in the port's wait set. Refused (the guest
 * keeps the channels it has) without a connection, for an index the NIC
 * did not grant, or twice.
 */
static int sub_open(void *ctx, struct vmbus_chan *chan)
{
    struct netvsp_subctx *sc = ctx;
    struct netvsp *np = sc->np;
    struct conn *c = np->conn;
    if (!c || sc->idx == 0 || sc->idx > c->sub_granted || c->lanes[sc->idx])
        return -EINVAL;
    struct lane *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    netvsp_lane_init(l, chan, sc->idx);
    /* This opening's own tag: a zero-copy completion owed to an earlier
     * one of this channel is not this one's to get. */
    l->tag = sc->idx + NETVSP_QUEUES_MAX * ++c->sub_opens;
    int rc = epoll_add(c->epfd, vmbus_chan_event_fd(chan));
    if (rc < 0) {
        free(l);
        return rc;
    }
    np->stats.subchannel_opens++;
    __atomic_store_n(&c->lanes[sc->idx], l, __ATOMIC_RELEASE);
    /* The worker sends the send table once they are all open. */
    vsw_port_kick(&np->port);
    return 0;
}

/* The sub-channel is closing (the guest closed it, or its primary is
 * closing, hv-core closing sub-channels first): the worker stops using
 * its lane before its rings go. Its transfers still outstanding stay in
 * the shared allocator until the guest completes them (on any channel) or
 * the connection goes; its zero-copy completions are dropped. */
static void sub_close(void *ctx, struct vmbus_chan *chan)
{
    struct netvsp_subctx *sc = ctx;
    struct netvsp *np = sc->np;
    struct conn *c = np->conn;
    if (!c)
        return;
    struct lane *l = c->lanes[sc->idx];
    if (!l || l->chan != chan)
        return;
    __atomic_store_n(&c->lanes[sc->idx], NULL, __ATOMIC_RELEASE);
    vsw_port_synchronize(&np->port);
    epoll_ctl(c->epfd, EPOLL_CTL_DEL, vmbus_chan_event_fd(chan), NULL);
    free(l);
}

static const struct vmbus_device_ops sub_ops = {
    .open = sub_open,
    .close = sub_close,
};

static const struct vmbus_device_ops dev_ops = {
    .open = chan_open,
    .close = chan_close,
};

static void vm_destroy(struct vsw_port *port)
{
    struct netvsp *np = np_of(port);
    if (np->chan)
        vmbus_chan_rescind(np->chan); /* closes first if open */
    np->chan = NULL;
    free(np);
}

static const struct vsw_port_class netvsp_class = {
    .type = "vm",
    .rx_burst = netvsp_rx_burst,
    .tx_burst = netvsp_tx_burst,
    .tx_flush = vm_tx_flush,
    .wait_fd = vm_wait_fd,
    .wait_arm = vm_wait_arm,
    .wait_disarm = vm_wait_disarm,
    .destroy = vm_destroy,
};

static bool nic_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > NETVSP_NIC_NAME_MAX || strcmp(s, "lo") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

int netvsp_create(struct vmbus_server *srv, const struct netvsp_params *p, struct netvsp **out)
{
    if (!p->pool || !p->port_name || !nic_name_ok(p->nic_name) || !jumbo_mtu_valid(p->mtu) ||
        p->queues > NETVSP_QUEUES_MAX)
        return -EINVAL;
    if ((p->mac[0] & 1) || !(p->mac[0] | p->mac[1] | p->mac[2] | p->mac[3] | p->mac[4] | p->mac[5]))
        return -EINVAL;
    /* struct vsw_port holds cache-aligned per-lcore counters: calloc()'s
     * 16-byte alignment is not enough. */
    struct netvsp *np = NULL;
    if (posix_memalign((void **)&np, _Alignof(struct netvsp), sizeof(*np)) != 0)
        return -ENOMEM;
    memset(np, 0, sizeof(*np));
    vsw_port_init(&np->port, &netvsp_class, p->port_name);
    np->srv = srv;
    snprintf(np->nic_name, sizeof(np->nic_name), "%s", p->nic_name);
    memcpy(np->mac, p->mac, 6);
    np->mtu = p->mtu;
    np->pool = p->pool;
    np->queues = p->queues ? p->queues : 1;
    np->media = true;
    vsw_port_set_max_frame(&np->port, jumbo_frame(p->mtu));
    struct vmbus_offer_params op = {.class_id = VMBUS_GUID_NETVSC,
                                    .instance_id = p->instance,
                                    .max_ring_pages = NETVSP_RING_PAGES_MAX};
    memcpy(op.user_defined, np->nic_name, strlen(np->nic_name));
    int rc = vmbus_server_offer(srv, &op, &dev_ops, np, &np->chan);
    if (rc < 0) {
        free(np);
        return rc;
    }
    *out = np;
    return 0;
}

struct vsw_port *netvsp_port(struct netvsp *n)
{
    return &n->port;
}

bool netvsp_is_port(const struct vsw_port *port)
{
    return port->cls == &netvsp_class;
}

struct netvsp *netvsp_from_port(struct vsw_port *port)
{
    return netvsp_is_port(port) ? np_of(port) : NULL;
}

void netvsp_get_stats(const struct netvsp *n, struct netvsp_stats *out)
{
    *out = n->stats;
    out->queues = __atomic_load_n(&n->queues, __ATOMIC_RELAXED);
    const struct conn *c = __atomic_load_n(&n->conn, __ATOMIC_ACQUIRE);
    if (c) {
        for (uint32_t i = 0; i < NETVSP_QUEUES_MAX; i++)
            out->channels += __atomic_load_n(&c->lanes[i], __ATOMIC_ACQUIRE) != NULL;
        out->rndis_ready = c->rndis_ready;
        out->frame_size = c->frame;
        out->packet_filter = c->filter;
        out->lso4 = c->lso4;
        out->lso6 = c->lso6;
        out->rx_csum = c->rx_csum;
        out->rsc = c->rsc4 && c->rsc6;
        out->rss = c->rss.on;
        out->rss_hash_types = c->rss.on ? c->rss.hash_types : 0;
        out->rss_itab_size = c->rss.on ? c->rss.nitab : 0;
        out->target_vp = vmbus_chan_target_vp(c->chan);
    }
}

uint32_t netvsp_channels_open(const struct netvsp *n)
{
    const struct conn *c = __atomic_load_n(&n->conn, __ATOMIC_ACQUIRE);
    uint32_t mask = 0;
    for (uint32_t i = 0; c && i < NETVSP_QUEUES_MAX; i++)
        if (__atomic_load_n(&c->lanes[i], __ATOMIC_ACQUIRE))
            mask |= 1u << i;
    return mask;
}

uint32_t netvsp_mtu(const struct netvsp *n)
{
    return __atomic_load_n(&n->mtu, __ATOMIC_ACQUIRE);
}

int netvsp_set_mtu(struct netvsp *n, uint32_t mtu)
{
    if (!jumbo_mtu_valid(mtu))
        return -EINVAL;
    __atomic_store_n(&n->mtu, mtu, __ATOMIC_RELEASE);
    __atomic_add_fetch(&n->mtu_gen, 1, __ATOMIC_RELEASE);
    /* The owning worker applies it at the end of its next round. */
    vsw_port_kick(&n->port);
    return 0;
}

void netvsp_set_media(struct netvsp *n, bool connected)
{
    __atomic_store_n(&n->media, connected, __ATOMIC_RELEASE);
    __atomic_add_fetch(&n->media_gen, 1, __ATOMIC_RELEASE);
    if (!connected)
        vsw_port_set_link(&n->port, false);
    /* The owning worker tells the guest at the end of its next round. */
    vsw_port_kick(&n->port);
}

int netvsp_set_queues(struct netvsp *n, uint32_t queues)
{
    if (queues < 1 || queues > NETVSP_QUEUES_MAX)
        return -EINVAL;
    __atomic_store_n(&n->queues, queues, __ATOMIC_RELAXED);
    return 0;
}

void netvsp_mac(const struct netvsp *n, uint8_t mac[6])
{
    memcpy(mac, n->mac, 6);
}
