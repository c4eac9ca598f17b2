/*
 * Host vNIC port: a TAP device in the root namespace (Hyper-V's "vEthernet"
 * adapter of an internal switch, or of an external one with the management
 * OS allowed). The host's stack sends and receives through it.
 *
 * Frames cross with a virtio-net header, so checksums the host leaves to
 * the network and checksums VMs left to the network stay unfinished on both
 * sides: a frame from the kernel with a partial checksum becomes an mbuf
 * with the checksum-offload flags set, and an mbuf with them set goes to
 * the kernel marked NEEDS_CSUM. Reading and writing a TAP costs a system
 * call per frame; that is the kernel's interface, not a choice made here.
 */
#include <errno.h>
#include <linux/virtio_net.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "nettap.h"
#include "jumbo.h"
#include "vsw-frame.h"
#include "vsw-host.h"
#include "vsw-private.h"

#define HOST_MAX_SEGS 40 /* 64 KiB of 2 KiB segments, with room */

struct host_port {
    struct vsw_port port;
    struct nettap *tap;
    int fd;
    struct rte_mempool *pool;
    uint16_t seg_room; /* data room of one mbuf */
    uint32_t frame_max;
    uint64_t rx_bad_vnet; /* header the kernel gave us that we cannot map */
};

static struct host_port *hp_of(struct vsw_port *p)
{
    return container_of(p, struct host_port, port);
}

/* The kernel's virtio header -> mbuf offload flags. The checksum start
 * counts any VLAN tags the host put into the frame (a VLAN interface on
 * the vNIC): the header offsets come from the frame as the switch reads
 * it. */
static bool vnet_to_mbuf(const struct virtio_net_hdr *vh, struct rte_mbuf *m)
{
    if (vh->gso_type != VIRTIO_NET_HDR_GSO_NONE)
        return false; /* TSO is not turned on for the TAP */
    if (!(vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM))
        return true;
    if (vh->csum_offset != 16 && vh->csum_offset != 6)
        return false;
    return vsw_frame_csum_request(m, vh->csum_start, vh->csum_offset == 16, 0) == 0;
}

static uint16_t host_rx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n)
{
    struct host_port *hp = hp_of(port);
    uint16_t got = 0;
    /* Room for one byte more than the largest frame: a longer one (the
     * host raised the vNIC's MTU above the switch's by hand) shows up as
     * such, whatever the TAP does with what does not fit, and is dropped
     * and counted instead of cut short. */
    uint32_t frame_max = __atomic_load_n(&hp->frame_max, __ATOMIC_ACQUIRE);
    uint32_t nseg = jumbo_segments(frame_max + 1, hp->seg_room);
    if (nseg > HOST_MAX_SEGS - 1)
        nseg = HOST_MAX_SEGS - 1;
    while (got < n) {
        struct rte_mbuf *segs[HOST_MAX_SEGS];
        if (rte_pktmbuf_alloc_bulk(hp->pool, segs, nseg) != 0) {
            vsw_port_drop(port, VSW_DROP_NO_MBUF, 1);
            break;
        }
        struct virtio_net_hdr vh;
        struct iovec iov[HOST_MAX_SEGS];
        iov[0].iov_base = &vh;
        iov[0].iov_len = sizeof(vh);
        for (uint32_t i = 0; i < nseg; i++) {
            iov[i + 1].iov_base = rte_pktmbuf_mtod(segs[i], void *);
            iov[i + 1].iov_len = rte_pktmbuf_tailroom(segs[i]);
        }
        ssize_t r = readv(hp->fd, iov, (int)nseg + 1);
        if (r <= (ssize_t)sizeof(vh)) {
            rte_pktmbuf_free_bulk(segs, nseg);
            break; /* EAGAIN: nothing more now */
        }
        uint32_t len = (uint32_t)r - (uint32_t)sizeof(vh);
        if (len > frame_max) {
            vsw_port_drop(port, VSW_DROP_RX_TOO_BIG, 1);
            rte_pktmbuf_free_bulk(segs, nseg);
            continue;
        }
        /* Chain the segments the frame used; give back the rest. */
        struct rte_mbuf *head = segs[0];
        uint32_t left = len, used = 0;
        for (uint32_t i = 0; i < nseg && left; i++) {
            uint16_t k = (uint16_t)(left < iov[i + 1].iov_len ? left : iov[i + 1].iov_len);
            segs[i]->data_len = k;
            if (i)
                segs[i - 1]->next = segs[i];
            left -= k;
            used++;
        }
        head->nb_segs = (uint16_t)used;
        head->pkt_len = len;
        if (used < nseg)
            rte_pktmbuf_free_bulk(segs + used, nseg - used);
        if (!vnet_to_mbuf(&vh, head)) {
            hp->rx_bad_vnet++;
            vsw_port_drop(port, VSW_DROP_PORT_SPECIFIC, 1);
            rte_pktmbuf_free(head);
            continue;
        }
        pkts[got++] = head;
    }
    return got;
}

static uint16_t host_tx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n)
{
    struct host_port *hp = hp_of(port);
    struct vsw_port_counters *ctr = &port->counters[rte_lcore_id()];
    uint16_t sent = 0;
    for (uint16_t i = 0; i < n; i++) {
        struct rte_mbuf *m = pkts[i];
        struct virtio_net_hdr vh = {.gso_type = VIRTIO_NET_HDR_GSO_NONE};
        uint64_t l4 = m->ol_flags & RTE_MBUF_F_TX_L4_MASK;
        if (l4 == RTE_MBUF_F_TX_TCP_CKSUM || l4 == RTE_MBUF_F_TX_UDP_CKSUM) {
            /* Left to the network: the kernel finishes it (or trusts it). */
            vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
            vh.csum_start = (uint16_t)(m->l2_len + m->l3_len);
            vh.csum_offset = l4 == RTE_MBUF_F_TX_TCP_CKSUM ? 16 : 6;
        }
        struct iovec iov[HOST_MAX_SEGS];
        int k = 0;
        iov[k].iov_base = &vh;
        iov[k++].iov_len = sizeof(vh);
        for (struct rte_mbuf *s = m; s && k < HOST_MAX_SEGS; s = s->next) {
            iov[k].iov_base = rte_pktmbuf_mtod(s, void *);
            iov[k++].iov_len = s->data_len;
        }
        ssize_t w = writev(hp->fd, iov, k);
        if (w < 0) {
            vsw_port_drop(port, VSW_DROP_QUEUE_FULL, 1);
        } else {
            ctr->tx_packets++;
            ctr->tx_bytes += m->pkt_len;
            sent++;
        }
        rte_pktmbuf_free(m);
    }
    return sent;
}

static int host_wait_fd(struct vsw_port *port)
{
    return hp_of(port)->fd;
}

static bool host_wait_arm(struct vsw_port *port)
{
    (void)port;
    return false; /* the fd is level-triggered readable */
}

static void host_destroy(struct vsw_port *port)
{
    struct host_port *hp = hp_of(port);
    nettap_destroy(hp->tap);
    free(hp);
}

static const struct vsw_port_class host_class = {
    .type = "host",
    .rx_burst = host_rx_burst,
    .tx_burst = host_tx_burst,
    .wait_fd = host_wait_fd,
    .wait_arm = host_wait_arm,
    .destroy = host_destroy,
    .inband_vlan = true,
};

int vsw_host_port_create(const struct vsw_host_params *p, struct vsw_port **out)
{
    if (!p->pool || !nettap_name_valid(p->ifname) || !jumbo_mtu_valid(p->mtu))
        return -EINVAL;
    /* struct vsw_port holds cache-aligned per-lcore counters. */
    struct host_port *hp = NULL;
    if (posix_memalign((void **)&hp, _Alignof(struct host_port), sizeof(*hp)) != 0)
        return -ENOMEM;
    memset(hp, 0, sizeof(*hp));
    vsw_port_init(&hp->port, &host_class, p->port_name ? p->port_name : p->ifname);
    struct nettap_params tp = {
        .name = p->ifname,
        .mtu = p->mtu,
        .csum = true,
        .up = true,
        .carrier = true,
        .netns_fd = -1,
    };
    memcpy(tp.mac, p->mac, 6);
    int rc = nettap_create(&tp, &hp->tap);
    if (rc < 0) {
        free(hp);
        return rc;
    }
    hp->fd = nettap_fd(hp->tap);
    hp->pool = p->pool;
    hp->seg_room = (uint16_t)(rte_pktmbuf_data_room_size(p->pool) - RTE_PKTMBUF_HEADROOM);
    hp->frame_max = jumbo_frame_tagged(p->mtu);
    vsw_port_set_max_frame(&hp->port, jumbo_frame(p->mtu));
    /* The kernel finishes what the virtio-net header leaves it (NEEDS_CSUM). */
    vsw_port_set_tx_offloads(&hp->port, VSW_TX_CSUM);
    vsw_port_set_link(&hp->port, true);
    *out = &hp->port;
    return 0;
}

bool vsw_is_host_port(const struct vsw_port *port)
{
    return port->cls == &host_class;
}

const char *vsw_host_port_ifname(const struct vsw_port *port)
{
    return nettap_name(container_of(port, const struct host_port, port)->tap);
}

int vsw_host_port_set_mtu(struct vsw_port *port, uint32_t mtu)
{
    struct host_port *hp = hp_of(port);
    if (!jumbo_mtu_valid(mtu))
        return -EINVAL;
    int rc = nettap_set_mtu(hp->tap, mtu);
    if (rc < 0)
        return rc;
    /* Receive room first: the worker reads up to frame_max. */
    __atomic_store_n(&hp->frame_max, jumbo_frame_tagged(mtu), __ATOMIC_RELEASE);
    vsw_port_set_max_frame(port, jumbo_frame(mtu));
    return 0;
}

uint64_t vsw_host_port_bad_headers(const struct vsw_port *port)
{
    return container_of(port, const struct host_port, port)->rx_bad_vnet;
}
