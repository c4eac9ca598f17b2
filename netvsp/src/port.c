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

static void vm_tx_flush(struct vsw_port *port)
{
    struct netvsp *np = np_of(port);
    struct conn *c = __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE);
    if (c) {
        if (c->media_gen_told != __atomic_load_n(&np->media_gen, __ATOMIC_RELAXED))
            netvsp_indicate_media(np, c);
        if (c->mtu_gen_seen != __atomic_load_n(&np->mtu_gen, __ATOMIC_RELAXED))
            netvsp_indicate_mtu(np, c);
        netvsp_publish(np, c);
    }
}

static int vm_wait_fd(struct vsw_port *port)
{
    struct netvsp *np = np_of(port);
    /* chan_close unpublishes conn before it says the fd changed: the old
     * descriptor leaves the worker's epoll set while its number still
     * names it, and no number is remembered after it is closed. */
    return __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE) && np->chan &&
                   vmbus_chan_is_open(np->chan)
               ? vmbus_chan_event_fd(np->chan)
               : -1;
}

static bool vm_wait_arm(struct vsw_port *port)
{
    struct netvsp *np = np_of(port);
    struct conn *c = __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE);
    if (!c || c->dead)
        return false;
    netvsp_publish(np, c);
    bool pending = vmbus_ring_intr_unmask(c->rx);
    /* Blocked on our own ring (completions)? Then the guest's requests are
     * no work until it reads: rx_burst leaves them in its ring. Ask to hear
     * when it makes room and say whether it has already; a request waiting
     * there must not keep the worker from sleeping for as long as the guest
     * does not read. */
    if (vmbus_ring_free_bytes(c->tx) < netvsp_reply_room())
        pending = vmbus_ring_arm_space(c->tx, netvsp_reply_room()) == 1;
    /* A send whose frames are still held somewhere owes the guest a
     * completion that no event announces when another thread frees them:
     * keep polling until it is sent (while the ring has room; a full one
     * wakes us when the guest reads, above). */
    return pending || (netvsp_zc_pending(c->zc) &&
                       vmbus_ring_free_bytes(c->tx) >= netvsp_reply_room());
}

static void vm_wait_disarm(struct vsw_port *port)
{
    struct netvsp *np = np_of(port);
    struct conn *c = __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE);
    if (!c)
        return;
    vmbus_ring_intr_mask(c->rx);
    uint64_t v;
    if (read(vmbus_chan_event_fd(c->chan), &v, sizeof(v)) < 0) {
        /* not signalled */
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

static int chan_open(void *ctx, struct vmbus_chan *chan)
{
    struct netvsp *np = ctx;
    struct conn *c;
    int rc = netvsp_conn_create(np, chan, &c);
    if (rc < 0)
        return rc;
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
    (void)chan;
    struct conn *c = np->conn;
    vsw_port_set_link(&np->port, false);
    __atomic_store_n(&np->conn, NULL, __ATOMIC_RELEASE);
    /* After this no worker can be inside c. */
    vsw_port_synchronize(&np->port);
    np->stats.connected = false;
    np->stats.rndis_ready = false;
    netvsp_update_tx_offloads(np, NULL);
    /* Frames still in the switch keep the guest's pages mapped (zcopy.c);
     * their completions are owed to a channel that is gone. */
    netvsp_zc_put(c->zc);
    netvsp_conn_free(c);
    vsw_port_wait_fd_changed(&np->port);
}

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
    if (!p->pool || !p->port_name || !nic_name_ok(p->nic_name) || !jumbo_mtu_valid(p->mtu))
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
    const struct conn *c = __atomic_load_n(&n->conn, __ATOMIC_ACQUIRE);
    if (c) {
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

void netvsp_mac(const struct netvsp *n, uint8_t mac[6])
{
    memcpy(mac, n->mac, 6);
}
