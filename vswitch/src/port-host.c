/*
 * Host vNIC port: a TAP device in the root namespace (Hyper-V's "vEthernet"
 * adapter of an internal switch, or of an external one with the management
 * OS allowed). The host's stack sends and receives through it.
 *
 * Frames cross with a virtio-net header, and the TAP takes checksum and TCP
 * segmentation offload (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6), as a
 * virtio-net NIC does: a frame with a partial checksum becomes an mbuf with
 * the checksum-offload flags set (contract A), a TCP segment of up to 64 KiB
 * the kernel left to the NIC to cut becomes one large segment (contract B,
 * vsw_frame_tso_request), and both go back to the kernel the same way, whole.
 * Reading and writing a TAP costs a system call per frame; that is the
 * kernel's interface, not a choice made here, and with TSO one frame carries
 * up to 64 KiB.
 */
#include <errno.h>
#include <linux/virtio_net.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "nettap.h"
#include "jumbo.h"
#include "vsw-frame.h"
#include "vsw-host.h"
#include "vsw-private.h"

/* One read takes the largest frame the kernel hands a TSO NIC (tags, then
 * VSW_TSO_L3_MAX bytes of IP) plus one byte, to see a longer one as such:
 * 33 segments of 2 KiB; room for smaller pools' segments too. */
#define HOST_RX_SEGS 48
#define HOST_RX_LEN (JUMBO_TAGGED_OVERHEAD + 4u + VSW_TSO_L3_MAX + 1u)
/* iovecs one write may use: the chains of large segments from VMs. A
 * longer chain is copied into full segments first. */
#define HOST_TX_IOV 128
/* Headers copied to be given their pseudo-header sum: Ethernet with tags
 * (l2_len < 128), IP with options or extension headers (l3_len < 512), TCP
 * with options. */
#define HOST_TX_HDR_MAX 768

struct host_port {
    struct vsw_port port;
    struct nettap *tap;
    int fd;
    struct rte_mempool *pool;
    uint16_t seg_room; /* data room of one mbuf */
    uint32_t rx_segs;  /* segments one read fills at most */
    uint32_t frame_max;
    uint32_t mtu;
    uint64_t rx_bad_vnet; /* header the kernel gave us that we cannot map */
    /* Worker only: mbufs allocated for reads and not used yet (a read of a
     * small frame takes one of them, not all), used from the top. */
    uint32_t nspare;
    struct rte_mbuf *spare[HOST_RX_SEGS];
};

static struct host_port *hp_of(struct vsw_port *p)
{
    return container_of(p, struct host_port, port);
}

int vsw_host_vnet_to_mbuf(const struct virtio_net_hdr *vh, struct rte_mbuf *m,
                          uint32_t frame_max, uint32_t mtu)
{
    const uint8_t gso = vh->gso_type & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;
    const bool partial = vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM;
    if (vh->gso_type == VIRTIO_NET_HDR_GSO_NONE) {
        if (m->pkt_len > frame_max)
            return -EMSGSIZE;
        if (!partial)
            return 0;
        if (vh->csum_offset != 16 && vh->csum_offset != 6)
            return -EINVAL;
        return vsw_frame_csum_request(m, vh->csum_start, vh->csum_offset == 16, 0);
    }
    /* A TCP segment to cut: the kernel leaves the TCP checksum partial
     * (csum_start at the TCP header, which vsw_frame_tso_request checks
     * against the IP header) and hdr_len, the bytes it put in the linear
     * part, inside the frame. The segments it becomes, not the frame, are
     * held to the MTU. */
    if ((gso != VIRTIO_NET_HDR_GSO_TCPV4 && gso != VIRTIO_NET_HDR_GSO_TCPV6) || !partial ||
        vh->csum_offset != offsetof(struct rte_tcp_hdr, cksum) || vh->hdr_len > m->pkt_len)
        return -EINVAL;
    return vsw_frame_tso_request(m, vh->csum_start, vh->gso_size,
                                 gso == VIRTIO_NET_HDR_GSO_TCPV4 ? 4 : 6, mtu);
}

static uint16_t host_rx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n)
{
    struct host_port *hp = hp_of(port);
    uint16_t got = 0;
    uint32_t frame_max = __atomic_load_n(&hp->frame_max, __ATOMIC_ACQUIRE);
    uint32_t mtu = __atomic_load_n(&hp->mtu, __ATOMIC_ACQUIRE);
    const uint32_t nseg = hp->rx_segs;
    while (got < n) {
        if (hp->nspare < nseg) {
            if (rte_pktmbuf_alloc_bulk(hp->pool, hp->spare + hp->nspare, nseg - hp->nspare) != 0) {
                vsw_port_drop(port, VSW_DROP_NO_MBUF, 1);
                break;
            }
            hp->nspare = nseg;
        }
        /* spare[nseg - 1] first: what the frame uses is taken from the top. */
        struct rte_mbuf **segs = hp->spare;
        struct virtio_net_hdr vh;
        struct iovec iov[HOST_RX_SEGS + 1];
        iov[0].iov_base = &vh;
        iov[0].iov_len = sizeof(vh);
        for (uint32_t i = 0; i < nseg; i++) {
            struct rte_mbuf *s = segs[nseg - 1 - i];
            iov[i + 1].iov_base = rte_pktmbuf_mtod(s, void *);
            iov[i + 1].iov_len = hp->seg_room;
        }
        ssize_t r = readv(hp->fd, iov, (int)nseg + 1);
        if (r <= (ssize_t)sizeof(vh))
            break; /* EAGAIN: nothing more now */
        uint32_t len = (uint32_t)r - (uint32_t)sizeof(vh);
        if (len >= (uint32_t)nseg * hp->seg_room) {
            /* Filled every byte: longer than any frame taken, maybe cut. */
            vsw_port_drop(port, VSW_DROP_RX_TOO_BIG, 1);
            continue;
        }
        uint32_t used = jumbo_segments(len, hp->seg_room);
        struct rte_mbuf *head = segs[nseg - 1];
        uint32_t left = len;
        for (uint32_t i = 0; i < used; i++) {
            struct rte_mbuf *s = segs[nseg - 1 - i];
            s->data_len = (uint16_t)(left < hp->seg_room ? left : hp->seg_room);
            s->next = i + 1 < used ? segs[nseg - 2 - i] : NULL;
            left -= s->data_len;
        }
        hp->nspare = nseg - used;
        head->nb_segs = (uint16_t)used;
        head->pkt_len = len;
        int rc = vsw_host_vnet_to_mbuf(&vh, head, frame_max, mtu);
        if (rc < 0) {
            if (rc == -EMSGSIZE) {
                vsw_port_drop(port, VSW_DROP_RX_TOO_BIG, 1);
            } else {
                hp->rx_bad_vnet++;
                vsw_port_drop(port, VSW_DROP_PORT_SPECIFIC, 1);
            }
            rte_pktmbuf_free(head);
            continue;
        }
        pkts[got++] = head;
    }
    return got;
}

/*
 * The pseudo-header sum the kernel expects in the checksum field of a
 * partial checksum (and of each segment's, counting the whole length, of a
 * large segment), over the transport length the IP header says: hdr holds
 * the frame's first bytes, the IP header at l2_len. IPv6's from a copy of
 * its fixed header with the transport's length and protocol, as
 * rte_ipv6_phdr_cksum() reads them from there.
 */
static uint16_t pseudo_sum(const uint8_t *hdr, const struct rte_mbuf *m, uint8_t proto)
{
    const uint8_t *l3 = hdr + m->l2_len;
    if (m->ol_flags & RTE_MBUF_F_TX_IPV4)
        return rte_ipv4_phdr_cksum((const struct rte_ipv4_hdr *)l3, 0);
    struct rte_ipv6_hdr ip;
    memcpy(&ip, l3, sizeof(ip));
    uint32_t l4 = rte_be_to_cpu_16(ip.payload_len) + sizeof(ip) - m->l3_len;
    ip.payload_len = rte_cpu_to_be_16((uint16_t)l4);
    ip.proto = proto;
    return rte_ipv6_phdr_cksum(&ip, 0);
}

/*
 * The virtio-net header of m for the kernel, and the bytes of its headers
 * to write from hdr instead of from m (*hlen, 0 for none): a frame that
 * leaves its checksum to the network goes with NEEDS_CSUM, a large segment
 * with GSO_TCPV4/6 as well, the pseudo-header sum in a copy of the checksum
 * field (m may be shared with other ports: it is not written). false if m's
 * offsets do not fit in it.
 */
static bool mbuf_to_vnet(const struct rte_mbuf *m, struct virtio_net_hdr *vh,
                         uint8_t hdr[HOST_TX_HDR_MAX], uint32_t *hlen)
{
    memset(vh, 0, sizeof(*vh));
    vh->gso_type = VIRTIO_NET_HDR_GSO_NONE;
    *hlen = 0;
    const uint64_t l4 = m->ol_flags & RTE_MBUF_F_TX_L4_MASK;
    const bool tso = m->ol_flags & RTE_MBUF_F_TX_TCP_SEG;
    if (!tso && l4 != RTE_MBUF_F_TX_TCP_CKSUM && l4 != RTE_MBUF_F_TX_UDP_CKSUM)
        return true;
    const bool tcp = tso || l4 == RTE_MBUF_F_TX_TCP_CKSUM;
    const uint32_t l4_off = (uint32_t)m->l2_len + m->l3_len;
    const uint32_t field = tcp ? offsetof(struct rte_tcp_hdr, cksum)
                               : offsetof(struct rte_udp_hdr, dgram_cksum);
    uint32_t n = tso ? l4_off + m->l4_len : l4_off + field + 2;
    if (n > HOST_TX_HDR_MAX || n > m->pkt_len || (tso && n == m->pkt_len) ||
        !(m->ol_flags & (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IPV6)))
        return false;
    const uint8_t *p = rte_pktmbuf_read(m, 0, n, hdr);
    if (p != hdr)
        memcpy(hdr, p, n);
    uint16_t ps = pseudo_sum(hdr, m, tcp ? IPPROTO_TCP : IPPROTO_UDP);
    memcpy(hdr + l4_off + field, &ps, sizeof(ps));
    vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    vh->csum_start = (uint16_t)l4_off;
    vh->csum_offset = (uint16_t)field;
    if (tso) {
        const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)(hdr + l4_off);
        vh->gso_type = (m->ol_flags & RTE_MBUF_F_TX_IPV4) ? VIRTIO_NET_HDR_GSO_TCPV4
                                                          : VIRTIO_NET_HDR_GSO_TCPV6;
        /* CWR set: the kernel puts it on the first segment only. */
        if (th->tcp_flags & RTE_TCP_CWR_FLAG)
            vh->gso_type |= VIRTIO_NET_HDR_GSO_ECN;
        vh->gso_size = m->tso_segsz;
        vh->hdr_len = (uint16_t)n;
    }
    *hlen = n;
    return true;
}

static uint16_t host_tx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n)
{
    struct host_port *hp = hp_of(port);
    struct vsw_port_counters *ctr = &port->counters[rte_lcore_id()];
    uint16_t sent = 0;
    for (uint16_t i = 0; i < n; i++) {
        struct rte_mbuf *m = pkts[i];
        struct virtio_net_hdr vh;
        uint8_t hdr[HOST_TX_HDR_MAX];
        uint32_t hlen;
        if (!mbuf_to_vnet(m, &vh, hdr, &hlen)) {
            vsw_port_drop(port, VSW_DROP_OFFLOAD, 1);
            rte_pktmbuf_free(m);
            continue;
        }
        if (m->nb_segs > HOST_TX_IOV - 2) {
            struct rte_mbuf *c = rte_pktmbuf_copy(m, hp->pool, 0, UINT32_MAX);
            rte_pktmbuf_free(m);
            if (!c) {
                vsw_port_drop(port, VSW_DROP_NO_MBUF, 1);
                continue;
            }
            m = c;
        }
        struct iovec iov[HOST_TX_IOV];
        int k = 0;
        iov[k].iov_base = &vh;
        iov[k++].iov_len = sizeof(vh);
        if (hlen) {
            iov[k].iov_base = hdr;
            iov[k++].iov_len = hlen;
        }
        uint32_t skip = hlen;
        for (struct rte_mbuf *s = m; s; s = s->next) {
            if (skip >= s->data_len) {
                skip -= s->data_len;
                continue;
            }
            iov[k].iov_base = rte_pktmbuf_mtod_offset(s, uint8_t *, skip);
            iov[k++].iov_len = s->data_len - skip;
            skip = 0;
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
    rte_pktmbuf_free_bulk(hp->spare, hp->nspare);
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
        .tso = true,
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
    hp->rx_segs = jumbo_segments(HOST_RX_LEN, hp->seg_room);
    if (hp->rx_segs > HOST_RX_SEGS)
        hp->rx_segs = HOST_RX_SEGS;
    hp->frame_max = jumbo_frame_tagged(p->mtu);
    hp->mtu = p->mtu;
    vsw_port_set_max_frame(&hp->port, jumbo_frame(p->mtu));
    /* The kernel finishes what the virtio-net header leaves it (NEEDS_CSUM)
     * and cuts large segments itself where it must (GSO_TCPV4/6). */
    vsw_port_set_tx_offloads(&hp->port, VSW_TX_CSUM | VSW_TX_TSO);
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
    /* Receive limits first: the worker takes frames up to frame_max and
     * large segments cut to mtu. */
    __atomic_store_n(&hp->frame_max, jumbo_frame_tagged(mtu), __ATOMIC_RELEASE);
    __atomic_store_n(&hp->mtu, mtu, __ATOMIC_RELEASE);
    vsw_port_set_max_frame(port, jumbo_frame(mtu));
    return 0;
}

uint64_t vsw_host_port_bad_headers(const struct vsw_port *port)
{
    return container_of(port, const struct host_port, port)->rx_bad_vnet;
}
