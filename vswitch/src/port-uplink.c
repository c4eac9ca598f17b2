/*
 * Uplink port: one DPDK ethdev, named by devargs, as the external side of a
 * switch. Its queues are used only by the worker that owns the port;
 * everything else (probe, configure, MTU, removal, statistics) is the
 * control thread's.
 *
 * Queues. Where the peer chooses the queue a frame arrives on (software on
 * this host sending from one queue per thread), every queue it may use is
 * configured and polled:
 *  - net_ring, net_vhost: as many as the PMD allows, up to one per CPU of
 *    this host plus one (a peer's polling threads and its main thread), at
 *    most UPLINK_MAX_QUEUES; a queue the peer never fills costs a poll.
 *  - net_memif: exactly the peer's count, given as queues=N in the devargs
 *    (hvnet's own argument, taken out before probing; default 1). DPDK
 *    22.11's memif cannot be over-provisioned: a server refuses a client
 *    ring beyond its own queues ("Invalid ring index"), and a queue the
 *    client did not announce keeps ring offset 0, so polling it reads and
 *    moves the tail of ring 0 under queue 0's feet (frames received twice,
 *    seen here: three RX queues against a one-ring client received every
 *    frame three times). OVS-DPDK uses one TX queue per PMD thread plus
 *    one for its main thread, and sends from queue 1 with one PMD thread:
 *    queues=2 for it.
 * Other PMDs (NICs without RSS configured, af_packet, af_xdp, tap, pcap)
 * deliver on queue 0 alone, or would duplicate frames across queues
 * (af_packet's sockets each see every frame): one queue pair. Frames go
 * out on TX queue 0 only: one worker owns the port, so one queue is never
 * contended, and the peer polls all of its RX queues.
 *
 * What frames look like across this port. Into the switch: frames as the
 * wire had them, with none of the PMD's receive metadata (offload flags,
 * packet type, stripped VLAN tags are put back) but one: a TCP/UDP or IPv4
 * header checksum the PMD verified as good stays marked so
 * (RTE_MBUF_F_RX_L4_CKSUM_GOOD, _IP_CKSUM_GOOD); a bad or unchecked one is
 * "unknown", left to the receiver. Out of the switch: frames
 * whose senders left checksums to the network (RTE_MBUF_F_TX_*_CKSUM with
 * l2_len/l3_len set) leave either with those flags for a PMD that offers the
 * matching transmit offload, or with the checksum finished here. Large TCP
 * segments leave whole (RTE_MBUF_F_TX_TCP_SEG) to a PMD that segments them,
 * within its limits (port-uplink-tso.c: net_tap for IPv4 only); the switch
 * cuts all others before they get here. Flooded
 * frames are shared by reference count with other egress ports, which may
 * be sending them at the same moment: such a frame is copied before
 * anything in it is written.
 *
 * PMD quirks handled here (DPDK 22.11, see docs/platform.md §2.1):
 *  - net_af_packet and net_tap report a 1518/1522-byte frame limit, so
 *    rte_eth_dev_set_mtu() refuses jumbo MTUs, yet both carry jumbo frames
 *    once the kernel interface's MTU allows it: above the PMD's limit the
 *    kernel interface's MTU is set instead (SIOCSIFMTU) and restored when
 *    the port goes away.
 *  - net_af_packet copies each frame into one mbuf and silently truncates
 *    frames longer than its ring frame minus 66 bytes (1982 B with the
 *    default framesz=2048); see the devargs rule in make_devargs(). It also
 *    ignores TP_STATUS_CSUMNOTREADY: frames the local stack sent through
 *    the interface with checksum offload (a veth peer's TCP, say) arrive with
 *    unfinished checksums and no flag saying so. Nothing here can tell;
 *    turn TX checksumming off on such peers (ethtool -K IF tx off).
 *  - net_memif corrupts 9000-byte frames with its default bsize=2048.
 *  - net_tap has no rx_queue_intr_enable, but its RX interrupt descriptor is
 *    the TAP descriptor itself: level-triggered readable while frames wait.
 *  - net_tap's TX checksums (DPDK 22.11) are summed mbuf by mbuf and come
 *    out wrong after a piece of odd length: such frames get their
 *    checksums here.
 *  - net_tap refuses to send frames longer than its ethdev MTU + 22, and
 *    ethdev keeps that MTU at 1504 or below: it receives jumbo frames (with
 *    the kernel MTU raised) but cannot send them. The port's frame limit is
 *    lowered to what it can send, so the switch drops bigger frames as
 *    too_big instead of the PMD refusing them.
 *  - PMDs stop a burst at the first frame they refuse (net_tap: too long, or
 *    offload headers not in the first segment): that frame is dropped and
 *    the rest tried again; when a try takes nothing the queue is full and
 *    the rest is dropped (queue_full), never waited for.
 */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rte_bus.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_kvargs.h>
#include <rte_log.h>
#include <rte_mbuf.h>

#include "jumbo.h"
#include "vsw-frame.h"
#include "vsw-private.h"
#include "vsw-uplink.h"
#include "port-uplink.h"

RTE_LOG_REGISTER(vsw_uplink_logtype, hvnet.vswitch.uplink, INFO);
#define UPLINK_LOG(level, fmt, ...)                                                                \
    rte_log(RTE_LOG_##level, vsw_uplink_logtype, "uplink " fmt "\n", ##__VA_ARGS__)

#define UPLINK_RX_DESC 512
#define UPLINK_TX_DESC 512
/* Bound on the queues of a peer-chosen-queue PMD: each one costs a memif
 * ring (2^rsize buffers of bsize bytes) when hvnet is the memif client. */
#define UPLINK_MAX_QUEUES 16u
/* net_af_packet: a TPACKET_V2 frame holds the packet at offset 66
 * (TPACKET_ALIGN(52 + 16) - 14), and rx_queue_setup() demands mbufs of
 * framesz - 32 bytes. */
#define AFP_MAC_OFFSET 66u
#define AFP_MBUF_SLACK 32u
#define AFP_DEFAULT_FRAMESZ 2048u
#define AFP_JUMBO_FRAMESZ 16384u

/* What a PMD needs beyond the ethdev API (matched on the driver name). */
enum {
    QUIRK_KERNEL_MTU = 1u << 0,    /* MTU above the PMD's limit: set the kernel interface's */
    QUIRK_AFP_RING = 1u << 1,      /* frame size bounded by framesz, one mbuf per frame */
    QUIRK_MTU_UNCHECKED = 1u << 2, /* carries frames beyond its reported limit */
    QUIRK_RXQ_FD_LEVEL = 1u << 3,  /* RX interrupt fd is a level-triggered data fd */
    QUIRK_TX_MTU_BOUND = 1u << 4,  /* sends frames of at most ethdev MTU + 22 bytes */
    QUIRK_TX_CHAINS_OK = 1u << 5,  /* sends mbuf chains without offering MULTI_SEGS */
    QUIRK_TX_COPIES = 1u << 6,     /* copies every frame it sends (into a ring) */
    QUIRK_PEER_QUEUES = 1u << 7,   /* the peer picks the RX queue: serve them all */
    QUIRK_CSUM_EVEN = 1u << 8,     /* its checksums need pieces of even length (tx_fixup) */
};
/* net_tap's own TX limit beyond its MTU: Ethernet header, CRC, one tag. */
#define TAP_TX_OVERHEAD (RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN + RTE_VLAN_HLEN)

static const struct {
    const char *driver;
    unsigned quirks;
} pmd_quirks[] = {
    {"net_af_packet", QUIRK_KERNEL_MTU | QUIRK_AFP_RING | QUIRK_TX_COPIES},
    {"net_tap", QUIRK_KERNEL_MTU | QUIRK_RXQ_FD_LEVEL | QUIRK_TX_MTU_BOUND | QUIRK_CSUM_EVEN},
    {"net_memif", QUIRK_MTU_UNCHECKED},
    {"net_pcap", QUIRK_TX_CHAINS_OK},
    {"net_ring", QUIRK_PEER_QUEUES},
    {"net_vhost", QUIRK_PEER_QUEUES},
};


static const struct vsw_port_class uplink_class_intr;

/* ---- Control: kernel interface ----------------------------------------- */

static int kernel_ifreq(unsigned long req, struct ifreq *ifr)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -errno;
    int rc = ioctl(s, req, ifr) < 0 ? -errno : 0;
    close(s);
    return rc;
}

static int kernel_get_mtu(const char *ifname, uint32_t *mtu)
{
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    int rc = kernel_ifreq(SIOCGIFMTU, &ifr);
    if (rc == 0)
        *mtu = (uint32_t)ifr.ifr_mtu;
    return rc;
}

static int kernel_set_mtu(const char *ifname, uint32_t mtu)
{
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    ifr.ifr_mtu = (int)mtu;
    return kernel_ifreq(SIOCSIFMTU, &ifr);
}

static int kernel_get_promisc(const char *ifname, bool *on)
{
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    int rc = kernel_ifreq(SIOCGIFFLAGS, &ifr);
    if (rc == 0)
        *on = (ifr.ifr_flags & IFF_PROMISC) != 0;
    return rc;
}

/* ---- Control: devargs ---------------------------------------------------- */

/* What rte_devargs_reset() does; that one is still experimental in 22.11. */
static void devargs_free(struct rte_devargs *da)
{
    free(da->data);
    da->data = NULL;
}

static bool name_is(const char *devname, const char *driver)
{
    /* vdev names are the driver name (or its eth_ alias) plus a suffix. */
    size_t n = strlen(driver);
    if (strncmp(devname, driver, n) == 0)
        return true;
    return strncmp(driver, "net_", 4) == 0 && strncmp(devname, "eth_", 4) == 0 &&
           strncmp(devname + 4, driver + 4, n - 4) == 0;
}

static uint32_t kvarg_u32(struct rte_kvargs *kv, const char *key, uint32_t dflt)
{
    const char *v = kv ? rte_kvargs_get(kv, key) : NULL;
    if (!v)
        return dflt;
    char *end;
    unsigned long x = strtoul(v, &end, 0);
    return (*end || x > UINT32_MAX) ? 0 : (uint32_t)x;
}

/*
 * The devargs actually probed. Two PMDs get arguments appended when the
 * user gave none of their own:
 *  - net_af_packet: framesz=16384,blocksz=16384 whenever the pool's mbufs
 *    can take 16352-byte frames (the PMD's requirement for that ring): the
 *    ring then carries jumbo frames, and a later MTU rise needs no
 *    re-probe. With smaller mbufs the default 2048-byte ring stays, and
 *    MTUs above 1964 are refused rather than truncated.
 *  - net_memif: bsize=16384 for MTUs above 1500 (2048-byte buffers corrupt
 *    9000-byte frames in 22.11). The peer should use the same.
 * One is hvnet's own and taken out: net_memif's queues=N, its queue pairs
 * (*memif_queues; 1 when not given, 0 for other PMDs).
 * Also reports the ring frame size for af_packet (*afp_framesz).
 */
static int make_devargs(const struct vsw_uplink_params *p, const struct rte_devargs *da,
                        uint16_t seg_room, char **out, uint32_t *afp_framesz,
                        uint16_t *memif_queues)
{
    const char *args = da->args ? da->args : "";
    struct rte_kvargs *kv = args[0] ? rte_kvargs_parse(args, NULL) : NULL;
    if (args[0] && !kv) {
        UPLINK_LOG(ERR, "cannot parse the arguments of '%s'", p->devargs);
        return -EINVAL;
    }
    const char *extra = "";
    *afp_framesz = 0;
    *memif_queues = 0;
    bool strip_queues = false;
    if (name_is(da->name, "net_af_packet")) {
        bool have = kv && (rte_kvargs_count(kv, "framesz") || rte_kvargs_count(kv, "blocksz"));
        *afp_framesz = kvarg_u32(kv, "framesz", AFP_DEFAULT_FRAMESZ);
        if (!have && seg_room >= AFP_JUMBO_FRAMESZ - AFP_MBUF_SLACK) {
            extra = ",framesz=16384,blocksz=16384";
            *afp_framesz = AFP_JUMBO_FRAMESZ;
        }
    } else if (name_is(da->name, "net_memif")) {
        if (p->mtu > RTE_ETHER_MTU && !(kv && rte_kvargs_count(kv, "bsize")))
            extra = ",bsize=16384";
        const char *q = kv ? rte_kvargs_get(kv, "queues") : NULL;
        *memif_queues = 1;
        if (q) {
            char *end;
            unsigned long n = strtoul(q, &end, 10);
            if (!q[0] || *end || n < 1 || n > UPLINK_MAX_QUEUES) {
                UPLINK_LOG(ERR, "'%s': queues=%s, expected 1..%u (the peer's queue pairs)",
                           p->devargs, q, UPLINK_MAX_QUEUES);
                rte_kvargs_free(kv);
                return -EINVAL;
            }
            *memif_queues = (uint16_t)n;
            strip_queues = true;
        }
    }
    rte_kvargs_free(kv);
    size_t len = strlen(p->devargs) + strlen(extra) + 1;
    *out = malloc(len);
    if (!*out)
        return -ENOMEM;
    if (!strip_queues) {
        snprintf(*out, len, "%s%s", p->devargs, extra);
        return 0;
    }
    /* Every comma-separated item but queues=. */
    char *w = *out;
    for (const char *r = p->devargs; *r;) {
        size_t n = strcspn(r, ",");
        if (!(r != p->devargs && strncmp(r, "queues=", 7) == 0)) {
            if (w != *out)
                *w++ = ',';
            memcpy(w, r, n);
            w += n;
        }
        r += n;
        if (*r == ',')
            r++;
    }
    snprintf(w, len - (size_t)(w - *out), "%s", extra);
    return 0;
}

/* The first ethdev of the device named devname; with devargs, also the
 * first ethdev the devargs match (a device name spelt differently). */
static int find_port(const char *devname, const char *devargs, uint16_t *out)
{
    for (uint16_t pid = 0; pid < RTE_MAX_ETHPORTS; pid++) {
        struct rte_eth_dev_info di;
        if (!rte_eth_dev_is_valid_port(pid) || rte_eth_dev_info_get(pid, &di) != 0 || !di.device)
            continue;
        if (strcmp(rte_dev_name(di.device), devname) == 0) {
            *out = pid;
            return 0;
        }
    }
    if (!devargs)
        return -ENODEV;
    struct rte_dev_iterator it;
    uint16_t pid;
    RTE_ETH_FOREACH_MATCHING_DEV(pid, devargs, &it)
    {
        rte_eth_iterator_cleanup(&it);
        *out = pid;
        return 0;
    }
    return -ENODEV;
}

/* ---- Control: configuration ------------------------------------------- */

static int frame_check(const struct uplink_port *up, uint32_t mtu)
{
    uint32_t frame = jumbo_frame_tagged(mtu); /* receive room: header + one tag */
    if (up->frame_cap && frame > up->frame_cap) {
        if (up->quirks & QUIRK_AFP_RING)
            UPLINK_LOG(ERR,
                       "%s: MTU %u needs %u-byte frames, the af_packet ring holds %u (framesz=%u);"
                       " give framesz=16384,blocksz=16384 and a pool of mbufs with %u bytes of"
                       " data room, or an MTU of at most %u",
                       up->port.name, mtu, frame, up->frame_cap, up->frame_cap + AFP_MAC_OFFSET,
                       AFP_JUMBO_FRAMESZ - AFP_MBUF_SLACK, up->frame_cap - JUMBO_TAGGED_OVERHEAD);
        else
            UPLINK_LOG(ERR, "%s: MTU %u needs %u-byte frames; %s takes at most %u", up->port.name,
                       mtu, frame, up->driver, up->frame_cap);
        return -EINVAL;
    }
    return 0;
}

/* The ethdev MTU apply_mtu() leaves at this MTU, which net_tap's
 * segmentation checks each segment's frame against. */
static uint32_t tso_mtu(const struct uplink_port *up, uint32_t mtu)
{
    return RTE_MIN(mtu, up->dev_max_mtu);
}

/* The longest frame the switch may hand this port at this MTU. */
static uint32_t tx_max_frame(const struct uplink_port *up, uint32_t mtu)
{
    uint32_t frame = jumbo_frame(mtu);
    if (up->quirks & QUIRK_TX_MTU_BOUND)
        frame = RTE_MIN(frame, RTE_MIN(mtu, up->dev_max_mtu) + TAP_TX_OVERHEAD);
    if (up->tx_linearize)
        frame = RTE_MIN(frame, up->seg_room);
    return frame;
}

static void warn_tx_limit(const struct uplink_port *up, uint32_t mtu)
{
    uint32_t frame = tx_max_frame(up, mtu);
    if (frame >= jumbo_frame(mtu))
        return;
    if (up->tx_linearize && frame == up->seg_room)
        UPLINK_LOG(WARNING,
                   "%s: %s sends no mbuf chains, so frames to it must fit one mbuf of the pool"
                   " (%u bytes): longer frames are dropped (too_big)",
                   up->port.name, up->driver, frame);
    else
        UPLINK_LOG(WARNING,
                   "%s: %s sends frames of at most %u bytes (its ethdev MTU stops at %u): it"
                   " receives up to MTU %u, longer frames to it are dropped (too_big)",
                   up->port.name, up->driver, frame, up->dev_max_mtu, mtu);
}

/* Set the device's MTU: through ethdev where it allows it, through the
 * kernel interface where the PMD understates its limit. */
static int apply_mtu(struct uplink_port *up, uint32_t mtu)
{
    if (mtu <= up->dev_max_mtu) {
        int rc = rte_eth_dev_set_mtu(up->port_id, (uint16_t)mtu);
        if (rc == 0 || rc == -ENOTSUP)
            return 0; /* -ENOTSUP: the PMD has no MTU to set (the configured one stands) */
        if (!(up->quirks & QUIRK_KERNEL_MTU) || !up->ifname[0]) {
            UPLINK_LOG(ERR, "%s: %s refuses MTU %u: %s", up->port.name, up->driver, mtu,
                       strerror(-rc));
            return rc;
        }
    } else if (up->quirks & QUIRK_MTU_UNCHECKED) {
        return 0;
    } else if (!(up->quirks & QUIRK_KERNEL_MTU) || !up->ifname[0]) {
        UPLINK_LOG(ERR, "%s: %s accepts an MTU of at most %u, not %u", up->port.name, up->driver,
                   up->dev_max_mtu, mtu);
        return -EINVAL;
    }
    /* The PMD's own idea of the MTU as high as ethdev lets it go (net_tap
     * checks sent frames against it), then the kernel's. */
    rte_eth_dev_set_mtu(up->port_id, (uint16_t)up->dev_max_mtu);
    int rc = kernel_set_mtu(up->ifname, mtu);
    if (rc < 0)
        UPLINK_LOG(ERR, "%s: setting the MTU of %s to %u: %s", up->port.name, up->ifname, mtu,
                   strerror(-rc));
    return rc;
}

static int configure(struct uplink_port *up, const struct rte_eth_dev_info *di, bool rxq_intr)
{
    struct rte_eth_conf conf = {0};
    conf.rxmode.mtu = RTE_MIN(up->mtu, up->dev_max_mtu);
    if (up->scatter)
        conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
    conf.rxmode.offloads |= up->rx_offloads;
    conf.txmode.offloads = up->tx_offloads;
    conf.intr_conf.rxq = rxq_intr;
    int rc = rte_eth_dev_configure(up->port_id, up->nrxq, up->ntxq, &conf);
    if (rc < 0)
        return rc;
    uint16_t nrx = UPLINK_RX_DESC, ntx = UPLINK_TX_DESC;
    rc = rte_eth_dev_adjust_nb_rx_tx_desc(up->port_id, &nrx, &ntx);
    if (rc < 0)
        return rc;
    struct rte_eth_rxconf rxc = di->default_rxconf;
    rxc.offloads = conf.rxmode.offloads;
    int socket = rte_eth_dev_socket_id(up->port_id);
    if (socket < 0)
        socket = (int)rte_socket_id();
    for (uint16_t q = 0; q < up->nrxq; q++) {
        rc = rte_eth_rx_queue_setup(up->port_id, q, nrx, (unsigned)socket, &rxc, up->pool);
        if (rc < 0)
            return rc;
    }
    struct rte_eth_txconf txc = di->default_txconf;
    txc.offloads = conf.txmode.offloads;
    for (uint16_t q = 0; q < up->ntxq; q++) {
        rc = rte_eth_tx_queue_setup(up->port_id, q, ntx, (unsigned)socket, &txc);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static bool fd_is_eventfd(int fd)
{
    char path[64], target[64] = "";
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    return n > 0 && strstr(target, "eventfd") != NULL;
}

/* How the worker can sleep on this port, if at all. */
static void setup_wait(struct uplink_port *up)
{
    up->intr_fd = -1;
    int rc = rte_eth_dev_rx_intr_enable(up->port_id, 0);
    if (rc == 0) {
        int fd = rte_eth_dev_rx_intr_ctl_q_get_fd(up->port_id, 0);
        rte_eth_dev_rx_intr_disable(up->port_id, 0);
        if (fd >= 0) {
            up->intr_fd = fd;
            up->intr_enable = true;
            up->intr_drain = fd_is_eventfd(fd);
        }
    } else if (up->quirks & QUIRK_RXQ_FD_LEVEL) {
        int fd = rte_eth_dev_rx_intr_ctl_q_get_fd(up->port_id, 0);
        if (fd >= 0)
            up->intr_fd = fd;
    }
}

/* Configure (with RX interrupts if the PMD takes them), set the MTU, start,
 * go promiscuous. */
static int start_port(struct uplink_port *up, const struct rte_eth_dev_info *di)
{
    /* The worker sleeps on one descriptor per port: with several RX
     * queues it polls them instead (and naps at most a millisecond). */
    bool rxq_intr = up->nrxq == 1;
    int rc;
    for (;;) {
        rc = configure(up, di, rxq_intr);
        if (rc == -EBUSY) {
            UPLINK_LOG(ERR, "%s: %s is started by someone else", up->port.name, up->driver);
            return -EEXIST;
        }
        if (rc < 0) {
            UPLINK_LOG(ERR, "%s: configuring %s: %s", up->port.name, up->driver, strerror(-rc));
            return rc;
        }
        rc = apply_mtu(up, up->mtu);
        if (rc < 0)
            return rc;
        rc = rte_eth_dev_start(up->port_id);
        if (rc == 0)
            break;
        if (!rxq_intr) {
            UPLINK_LOG(ERR, "%s: starting %s: %s", up->port.name, up->driver, strerror(-rc));
            return rc;
        }
        rxq_intr = false; /* some PMDs refuse to start with RX interrupts they lack */
    }
    if (rxq_intr)
        setup_wait(up);
    rc = rte_eth_promiscuous_enable(up->port_id);
    if (rc < 0 && rc != -ENOTSUP) {
        UPLINK_LOG(ERR, "%s: promiscuous mode on %s: %s", up->port.name, up->driver, strerror(-rc));
        rte_eth_dev_stop(up->port_id);
        return rc;
    }
    return 0;
}

/* Undo what create did to the device and the kernel interface behind it. */
static void release_device(struct uplink_port *up, bool started)
{
    if (started) {
        if (up->ifname[0] && !up->kernel_promisc_orig)
            rte_eth_promiscuous_disable(up->port_id);
        rte_eth_dev_stop(up->port_id);
    }
    if (up->kernel_mtu_orig) {
        uint32_t now = 0;
        if (kernel_get_mtu(up->ifname, &now) == 0 && now != up->kernel_mtu_orig)
            kernel_set_mtu(up->ifname, up->kernel_mtu_orig);
    }
    if (up->owned) {
        rte_eth_dev_owner_unset(up->port_id, up->owner_id);
        up->owned = false;
    }
}

static void remove_device(struct uplink_port *up)
{
    rte_eth_dev_close(up->port_id);
    int rc = rte_dev_remove(up->dev);
    if (rc < 0)
        UPLINK_LOG(WARNING, "%s: removing %s: %s", up->port.name, up->driver, strerror(-rc));
}

static void uplink_destroy(struct vsw_port *port)
{
    struct uplink_port *up = up_of(port);
    if (up->nstash)
        rte_pktmbuf_free_bulk(up->stash + up->stash_pos, up->nstash);
    release_device(up, true);
    remove_device(up);
    free(up);
}

static const struct vsw_port_class uplink_class_intr = {
    .type = "uplink",
    .inband_vlan = true, /* 802.1Q tags on the wire: the switch pushes and pops them */
    .rx_burst = vsw_uplink_rx_burst,
    .tx_burst = vsw_uplink_tx_burst,
    .tso_fits = vsw_uplink_tso_fits,
    .wait_fd = vsw_uplink_wait_fd,
    .wait_arm = vsw_uplink_wait_arm,
    .wait_disarm = vsw_uplink_wait_disarm,
    .destroy = uplink_destroy,
};

/* No RX interrupts (net_af_packet, net_memif, net_pcap, net_ring...): the
 * owner polls it and naps at most a millisecond. */
static const struct vsw_port_class uplink_class_poll = {
    .type = "uplink",
    .inband_vlan = true, /* 802.1Q tags on the wire: the switch pushes and pops them */
    .rx_burst = vsw_uplink_rx_burst,
    .tx_burst = vsw_uplink_tx_burst,
    .tso_fits = vsw_uplink_tso_fits,
    .destroy = uplink_destroy,
};

/* Claim the ethdev: nobody else may own it, and once ours, other code that
 * walks ports with RTE_ETH_FOREACH_DEV leaves it alone. */
static int claim(struct uplink_port *up)
{
    struct rte_eth_dev_owner cur;
    int rc = rte_eth_dev_owner_get(up->port_id, &cur);
    if (rc < 0)
        return rc;
    if (cur.id != RTE_ETH_DEV_NO_OWNER) {
        UPLINK_LOG(ERR, "%s: %s is in use by '%s'", up->port.name, rte_dev_name(up->dev), cur.name);
        return -EEXIST;
    }
    struct rte_eth_dev_owner me = {0};
    if ((rc = rte_eth_dev_owner_new(&me.id)) < 0)
        return rc;
    snprintf(me.name, sizeof(me.name), "hvnet uplink %s", up->port.name);
    if ((rc = rte_eth_dev_owner_set(up->port_id, &me)) < 0)
        return rc == -EBUSY ? -EEXIST : rc;
    up->owner_id = me.id;
    up->owned = true;
    return 0;
}

/* Everything about the device that does not change while it runs. */
/* Queues a peer on this host may send from: one per CPU plus its main
 * thread's (see the top of this file). */
static uint16_t peer_queues(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_CONF);
    return (uint16_t)RTE_MIN((unsigned long)(cpus > 0 ? cpus : 1) + 1, UPLINK_MAX_QUEUES);
}

static int study(struct uplink_port *up, struct rte_eth_dev_info *di, uint32_t afp_framesz,
                 uint16_t memif_queues)
{
    int rc = rte_eth_dev_info_get(up->port_id, di);
    if (rc < 0)
        return rc;
    up->dev = di->device;
    snprintf(up->driver, sizeof(up->driver), "%s", di->driver_name);
    for (size_t i = 0; i < RTE_DIM(pmd_quirks); i++)
        if (strcmp(up->driver, pmd_quirks[i].driver) == 0)
            up->quirks = pmd_quirks[i].quirks;
    up->nrxq = up->ntxq = 1;
    if (memif_queues) {
        up->nrxq = RTE_MIN(di->max_rx_queues, memif_queues);
        up->ntxq = RTE_MIN(di->max_tx_queues, memif_queues);
    } else if (up->quirks & QUIRK_PEER_QUEUES) {
        up->nrxq = RTE_MAX(RTE_MIN(di->max_rx_queues, peer_queues()), 1);
        up->ntxq = RTE_MAX(RTE_MIN(di->max_tx_queues, peer_queues()), 1);
    }
    /* ethdev's own MTU ceiling: the frame limit less its notion of the
     * overhead (rte_ethdev.c, eth_dev_get_overhead_len). */
    uint32_t overhead = (di->max_mtu != UINT16_MAX && di->max_rx_pktlen > di->max_mtu)
                            ? di->max_rx_pktlen - di->max_mtu
                            : RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN;
    uint64_t lim = di->max_rx_pktlen > overhead ? di->max_rx_pktlen - overhead : RTE_ETHER_MIN_MTU;
    up->dev_max_mtu = (uint32_t)RTE_MIN(lim, (uint64_t)RTE_MIN(di->max_mtu, JUMBO_MTU_MAX));
    if (di->if_index && !if_indextoname(di->if_index, up->ifname))
        up->ifname[0] = '\0';
    /* Other PMDs' limits are checked by ethdev, through apply_mtu(). */
    if (up->quirks & QUIRK_AFP_RING)
        up->frame_cap = afp_framesz > AFP_MAC_OFFSET ? afp_framesz - AFP_MAC_OFFSET : 0;
    /* Scatter if a frame at the largest MTU would not fit one mbuf, so the
     * MTU can rise later without reconfiguring (net_tap would otherwise
     * truncate jumbo frames to one mbuf). PMDs without it (memif, pcap)
     * chain on their own or copy into one mbuf. */
    up->scatter = (di->rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER) &&
                  JUMBO_FRAME_MAX > up->seg_room;
    up->tx_offloads = di->tx_offload_capa & TX_OFFLOADS_WANTED;
    up->rx_offloads = di->rx_offload_capa & RX_OFFLOADS_WANTED;
    /* Segmentation enabled only where large segments will be sent whole. */
    up->tso_caps = vsw_uplink_tso_caps(up->driver, up->tx_offloads, tso_mtu(up, up->mtu),
                                       &up->tso_lim);
    if (!up->tso_caps)
        up->tx_offloads &= ~RTE_ETH_TX_OFFLOAD_TCP_TSO;
    /* Without MULTI_SEGS some PMDs send the first segment alone (net_af_xdp
     * in copy mode); others take chains all the same (the quirk). */
    up->tx_linearize =
        !(up->tx_offloads & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) && !(up->quirks & QUIRK_TX_CHAINS_OK);
    up->csum_even = up->quirks & QUIRK_CSUM_EVEN;
    up->tx_linear = (up->quirks & QUIRK_TX_COPIES) || up->tx_linearize ||
                    !(up->tx_offloads & RTE_ETH_TX_OFFLOAD_TCP_CKSUM);
    if (up->ifname[0] && (up->quirks & QUIRK_KERNEL_MTU)) {
        if (kernel_get_mtu(up->ifname, &up->kernel_mtu_orig) < 0)
            up->kernel_mtu_orig = 0;
        if (kernel_get_promisc(up->ifname, &up->kernel_promisc_orig) < 0)
            up->kernel_promisc_orig = false;
    }
    return 0;
}

bool vsw_uplink_needs_whole_frames(const char *devargs)
{
    if (!devargs)
        return false;
    struct rte_devargs da;
    memset(&da, 0, sizeof(da));
    if (rte_devargs_parse(&da, devargs) < 0)
        return false;
    bool r = name_is(da.name, "net_af_packet");
    devargs_free(&da);
    return r;
}

int vsw_uplink_port_create(const struct vsw_uplink_params *p, struct vsw_port **out)
{
    if (!p || !out || !p->devargs || !p->devargs[0] || !p->pool ||
        !jumbo_mtu_valid(p->mtu))
        return -EINVAL;
    const char *name = p->port_name ? p->port_name : "uplink";
    if (!name[0] || strlen(name) >= VSW_NAME_MAX)
        return -EINVAL;

    struct rte_devargs da;
    memset(&da, 0, sizeof(da));
    int rc = rte_devargs_parse(&da, p->devargs);
    if (rc < 0) {
        UPLINK_LOG(ERR, "'%s' names no device a bus or driver here knows", p->devargs);
        return -ENODEV;
    }
    /* net_af_packet copies each frame into one mbuf: give it the pool of
     * whole-frame mbufs if there is one. */
    struct rte_mempool *pool = p->pool;
    if (p->single_seg_pool && name_is(da.name, "net_af_packet"))
        pool = p->single_seg_pool;
    uint32_t room = rte_pktmbuf_data_room_size(pool);
    if (room <= RTE_PKTMBUF_HEADROOM || room - RTE_PKTMBUF_HEADROOM > UINT16_MAX) {
        devargs_free(&da);
        return -EINVAL;
    }
    /* struct vsw_port holds cache-aligned per-lcore counters. */
    struct uplink_port *up = NULL;
    if (posix_memalign((void **)&up, _Alignof(struct uplink_port), sizeof(*up)) == 0)
        memset(up, 0, sizeof(*up));
    else
        up = NULL;
    char *devargs = NULL;
    char devname[RTE_DEV_NAME_MAX_LEN], busname[32];
    snprintf(devname, sizeof(devname), "%s", da.name);
    snprintf(busname, sizeof(busname), "%s", da.bus ? rte_bus_name(da.bus) : "");
    if (!up) {
        rc = -ENOMEM;
        goto fail_devargs;
    }
    vsw_port_init(&up->port, &uplink_class_poll, name);
    up->pool = pool;
    up->mtu = p->mtu;
    up->intr_fd = -1;
    up->seg_room = (uint16_t)(room - RTE_PKTMBUF_HEADROOM);
    up->link_period = rte_get_tsc_hz();
    uint32_t afp_framesz;
    uint16_t memif_queues;
    rc = make_devargs(p, &da, up->seg_room, &devargs, &afp_framesz, &memif_queues);
    if (rc < 0)
        goto fail_up;

    if (find_port(devname, NULL, &up->port_id) == 0) {
        /* Probed before (EAL command line, or another uplink): usable only
         * if nobody has claimed it. */
        UPLINK_LOG(INFO, "%s: %s is already probed; taking it over if it is free", name, devname);
    } else {
        rc = rte_dev_probe(devargs);
        if (rc < 0) {
            UPLINK_LOG(ERR, "%s: probing '%s' failed: %s", name, devargs,
                       rc == -EEXIST ? "the device is in use"
                       : rc == -1    ? "the driver refused it (its reason is logged above)"
                                     : strerror(-rc));
            /* Most vdev drivers fail with a bare -1, which is not -EPERM. */
            rc = rc == -EEXIST ? -EEXIST : rc == -1 ? -ENODEV : rc;
            goto fail_up;
        }
        up->probed = true;
        rc = find_port(devname, devargs, &up->port_id);
        if (rc < 0) {
            UPLINK_LOG(ERR, "%s: '%s' is not a network device", name, devargs);
            rte_eal_hotplug_remove(busname, devname);
            goto fail_up;
        }
    }
    struct rte_eth_dev_info di;
    rc = study(up, &di, afp_framesz, memif_queues);
    if (rc < 0)
        goto fail_probe;
    rc = claim(up);
    if (rc < 0)
        goto fail_probe;
    /* Checksum requests go to the PMD where it offers them and are
     * finished in software where it does not (tx_fixup); large segments
     * go whole where it segments them (port-uplink-tso.c). Where every byte
     * is summed here or copied by the PMD anyway, segments cut for it come
     * linear (measured: cheaper than indirect chains copied again). */
    vsw_port_set_tx_offloads(&up->port,
                             VSW_TX_CSUM | up->tso_caps | (up->tx_linear ? VSW_TX_LINEAR : 0));
    if (up->quirks & QUIRK_AFP_RING && up->seg_room + AFP_MBUF_SLACK < afp_framesz) {
        UPLINK_LOG(ERR,
                   "%s: net_af_packet with framesz=%u needs mbufs with %u bytes of data room,"
                   " the pool's have %u",
                   name, afp_framesz, afp_framesz - AFP_MBUF_SLACK, up->seg_room);
        rc = -EINVAL;
        goto fail_claim;
    }
    rc = frame_check(up, p->mtu);
    if (rc < 0)
        goto fail_claim;
    rc = start_port(up, &di);
    if (rc < 0)
        goto fail_claim;

    if (up->intr_fd >= 0)
        up->port.cls = &uplink_class_intr;
    vsw_uplink_link_refresh(up);
    up->link_checked = rte_get_tsc_cycles();
    vsw_port_set_max_frame(&up->port, tx_max_frame(up, p->mtu));
    vsw_port_set_rx_max_frame(&up->port, jumbo_frame(p->mtu));
    warn_tx_limit(up, p->mtu);
    UPLINK_LOG(INFO, "%s: %s (port %u, %s) MTU %u, %u RX and %u TX queues%s%s%s, %s", name,
               devargs, up->port_id, up->driver, p->mtu, up->nrxq, up->ntxq,
               up->scatter ? ", scatter" : "",
               (up->tx_offloads & RTE_ETH_TX_OFFLOAD_TCP_CKSUM) ? ", checksum offload" : "",
               up->tso_caps == VSW_TX_TSO    ? ", TSO"
               : up->tso_caps == VSW_TX_TSO4 ? ", TSO (IPv4)"
                                             : "",
               up->intr_fd >= 0 ? "RX interrupts" : "polled");
    free(devargs);
    devargs_free(&da);
    *out = &up->port;
    return 0;

fail_claim:
    release_device(up, false);
fail_probe:
    if (up->probed)
        remove_device(up);
fail_up:
    free(devargs);
    free(up);
fail_devargs:
    devargs_free(&da);
    return rc;
}

bool vsw_is_uplink_port(const struct vsw_port *port)
{
    return port && (port->cls == &uplink_class_intr || port->cls == &uplink_class_poll);
}

int vsw_uplink_port_set_mtu(struct vsw_port *port, uint32_t mtu)
{
    if (!vsw_is_uplink_port(port) || !jumbo_mtu_valid(mtu))
        return -EINVAL;
    struct uplink_port *up = up_of(port);
    int rc = frame_check(up, mtu);
    if (rc < 0)
        return rc;
    uint32_t old_frame = tx_max_frame(up, up->mtu), new_frame = tx_max_frame(up, mtu);
    uint32_t old_tso = tso_mtu(up, up->mtu), new_tso = tso_mtu(up, mtu);
    uint32_t *tso_max = &up->tso_lim.max_frame;
    bool tso_lim = __atomic_load_n(tso_max, __ATOMIC_RELAXED) != 0;
    /* Shrinking: stop sending big frames before the device refuses them. */
    if (new_frame < old_frame)
        vsw_port_set_max_frame(port, new_frame);
    if (tso_lim && new_tso < old_tso)
        __atomic_store_n(tso_max, new_tso, __ATOMIC_RELAXED);
    rc = apply_mtu(up, mtu);
    if (rc < 0) {
        vsw_port_set_max_frame(port, old_frame);
        if (tso_lim)
            __atomic_store_n(tso_max, old_tso, __ATOMIC_RELAXED);
        return rc;
    }
    up->mtu = mtu;
    vsw_port_set_max_frame(port, new_frame);
    if (tso_lim)
        __atomic_store_n(tso_max, new_tso, __ATOMIC_RELAXED);
    vsw_port_set_rx_max_frame(port, jumbo_frame(mtu)); /* it may receive more than it sends */
    warn_tx_limit(up, mtu);
    return 0;
}

void vsw_uplink_port_get_info(const struct vsw_port *port, struct vsw_uplink_info *out)
{
    memset(out, 0, sizeof(*out));
    if (!vsw_is_uplink_port(port))
        return;
    const struct uplink_port *up = up_of_const(port);
    snprintf(out->driver, sizeof(out->driver), "%s", up->driver);
    out->port_id = up->port_id;
    if (port->sw) {
        /* Attached: the worker refreshes it; do not race it on the device. */
        out->link_up = vsw_port_link(port);
        out->speed_mbps = __atomic_load_n(&up->link_speed, __ATOMIC_RELAXED);
    } else {
        struct rte_eth_link link;
        if (rte_eth_link_get_nowait(up->port_id, &link) == 0) {
            out->link_up = link.link_status == RTE_ETH_LINK_UP;
            out->speed_mbps = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
        }
    }
    struct rte_eth_stats st;
    if (rte_eth_stats_get(up->port_id, &st) == 0) {
        out->rx_missed = st.imissed;
        out->rx_errors = st.ierrors;
        out->tx_errors = st.oerrors;
    }
    out->sw_checksums = __atomic_load_n(&up->sw_checksums, __ATOMIC_RELAXED);
    out->tx_bad_offload = __atomic_load_n(&up->tx_bad_offload, __ATOMIC_RELAXED);
    out->tx_tso = __atomic_load_n(&up->tx_tso, __ATOMIC_RELAXED);
    out->tx_tso_segments = __atomic_load_n(&up->tx_tso_segs, __ATOMIC_RELAXED);
    out->rx_interrupts = up->intr_fd >= 0;
    out->mtu = up->mtu;
    out->rx_queues = up->nrxq;
    out->tx_queues = up->ntxq;
}
