/*
 * Uplink ports: any DPDK ethdev named by devargs (a NIC bound to vfio-pci by
 * its PCI address, net_af_packet or net_af_xdp on a kernel interface,
 * net_tap, net_memif, net_pcap, net_ring...) as the external side of a
 * switch. Control thread.
 */
#ifndef VSW_UPLINK_H
#define VSW_UPLINK_H

#include <stdbool.h>
#include <stdint.h>

struct rte_mempool;
struct vsw_port;

struct vsw_uplink_params {
    const char *devargs;   /* e.g. "net_af_packet0,iface=eth1" or "0000:03:00.0" */
    const char *port_name; /* the switch port's name; NULL = "uplink" */
    uint32_t mtu;          /* L3 MTU, jumbo_mtu_valid() (68..9000) */
    struct rte_mempool *pool;
    /* Optional: mbufs that hold a whole frame of any MTU (the jumbo
     * module's single-segment class), used instead of pool for PMDs that
     * copy each frame into one mbuf (net_af_packet). */
    struct rte_mempool *single_seg_pool;
};

/* Probe the device (rte_dev_probe), configure its queues, set the MTU
 * (and whatever a PMD needs for it), enable promiscuous mode, start it.
 * -EINVAL bad parameters, -ENODEV the devargs name no device, -EEXIST the
 * device is in use, else the PMD's error. Nothing is left probed on
 * failure. Destroy with vsw_port_destroy() (stops, closes, removes).
 *
 * The port owns the ethdev (rte_eth_dev_owner_set): RTE_ETH_FOREACH_DEV and
 * rte_eth_dev_count_avail() no longer see it; rte_eth_dev_count_total() does.
 * A device probed earlier (EAL command line) is taken over if nobody owns it
 * and it is not started.
 *
 * The pool feeds the RX queue and private copies of frames this port must
 * modify. Mbuf size per PMD:
 *  - net_af_packet copies each frame into one mbuf. With mbufs of at least
 *    16352 bytes of data room (RTE_PKTMBUF_HEADROOM + 16384 as
 *    rte_pktmbuf_pool_create's data_room_size) and no framesz/blocksz in the
 *    devargs, ",framesz=16384,blocksz=16384" is appended and any MTU up to
 *    9000 works. With smaller mbufs (the default 2048) the PMD's 2048-byte
 *    ring stays and an MTU above 1964 is -EINVAL (the PMD would truncate).
 *  - net_tap (scatter), net_memif, net_pcap, net_ring and NICs with scatter
 *    take jumbo frames into chains of any mbuf size.
 * net_tap (22.11) receives jumbo frames but sends none longer than 1526
 * bytes; the port's frame limit says so, and the switch drops longer frames
 * to it as too_big.
 * net_memif gets ",bsize=16384" appended for an MTU above 1500 when the
 * devargs have no bsize (smaller buffers corrupt 9000-byte frames in DPDK
 * 22.11); its peer should use the same. Where ethdev refuses the MTU but the
 * device carries it (net_af_packet, net_tap), the kernel interface's MTU is
 * set instead, and put back by destroy.
 *
 * Queues: where the peer picks the queue it sends on, every RX queue it may
 * use is configured and polled by the owner within its one burst per
 * round; TX queue 0 alone is used. net_ring, net_vhost: as many queue
 * pairs as the PMD allows, up to the host's CPUs plus one (16 at most).
 * net_memif: "queues=N" in the devargs (hvnet's own, 1..16, default 1;
 * -EINVAL outside): N queue pairs. N must equal the number of TX queues
 * the peer sends on (OVS-DPDK: its PMD threads plus one) and be at least
 * its RX queues. hvnet should be the memif server: as a client it
 * announces N rings each way, which a server takes only if it has at
 * least as many queues each way. Every other PMD gets one queue pair. */
int vsw_uplink_port_create(const struct vsw_uplink_params *p, struct vsw_port **out);
/* Does the device these devargs name copy each frame into one mbuf (so
 * that jumbo frames need single_seg_pool)? */
bool vsw_uplink_needs_whole_frames(const char *devargs);
bool vsw_is_uplink_port(const struct vsw_port *port);
/* Runtime MTU change (jumbo_mtu_valid()), same rules as at create. */
int vsw_uplink_port_set_mtu(struct vsw_port *port, uint32_t mtu);

struct vsw_uplink_info {
    char driver[32];
    uint16_t port_id;
    bool link_up;
    uint32_t speed_mbps;
    uint64_t rx_missed;      /* rte_eth_stats imissed */
    uint64_t rx_errors;      /* ierrors */
    uint64_t tx_errors;      /* oerrors */
    uint64_t sw_checksums;   /* frames whose checksums were finished in software */
    uint64_t tx_tso;          /* large TCP segments handed to the PMD whole (TSO) */
    uint64_t tx_tso_segments; /* the segments the PMD cut them into */
    uint64_t tx_bad_offload; /* dropped: an offload request that could not be met
                              * (TSO, SCTP, tunnels, inconsistent headers) */
    bool rx_interrupts;      /* the owner sleeps on RX interrupts (else it polls) */
    uint32_t mtu;
    uint16_t rx_queues; /* configured and polled */
    uint16_t tx_queues; /* configured; frames go out on queue 0 */
};
void vsw_uplink_port_get_info(const struct vsw_port *port, struct vsw_uplink_info *out);

#endif
