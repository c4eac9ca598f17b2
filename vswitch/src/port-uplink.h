/*
 * The uplink port provider's own state, shared by its control side
 * (port-uplink.c) and its data path (port-uplink-rxtx.c).
 */
#ifndef PORT_UPLINK_H
#define PORT_UPLINK_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>

#include "vsw-private.h"
#include "port-uplink-tso.h"

/* Requests nothing here can honour without the PMD (large segments go to
 * a PMD that offers TSO: tso_caps). */
#define TX_UNSUPPORTED_FLAGS                                                                       \
    (RTE_MBUF_F_TX_TCP_SEG | RTE_MBUF_F_TX_UDP_SEG | RTE_MBUF_F_TX_TUNNEL_MASK |                   \
     RTE_MBUF_F_TX_OUTER_IP_CKSUM | RTE_MBUF_F_TX_OUTER_UDP_CKSUM | RTE_MBUF_F_TX_QINQ |           \
     RTE_MBUF_F_TX_SEC_OFFLOAD | RTE_MBUF_F_TX_MACSEC)
/* VLAN insertion is not among them: some PMDs (net_af_packet) insert in
 * software, in place, and drop a shared frame; it is done here instead. */
#define TX_OFFLOADS_WANTED                                                                         \
    (RTE_ETH_TX_OFFLOAD_MULTI_SEGS | RTE_ETH_TX_OFFLOAD_IPV4_CKSUM |                               \
     RTE_ETH_TX_OFFLOAD_TCP_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_TSO)

/* Receive checksum checks: a frame the PMD verified stays verified
 * through the switch (RTE_MBUF_F_RX_L4_CKSUM_GOOD), so that a VM that
 * offloads receive checksums is told so. */
#define RX_OFFLOADS_WANTED                                                                         \
    (RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM)

struct uplink_port {
    struct vsw_port port;

    /* Worker-owned (hot first). */
    uint16_t port_id;
    uint16_t nstash, stash_pos; /* frames wait_arm received early */
    uint16_t nrxq;              /* RX queues configured, all polled */
    uint16_t rxq_next;          /* the queue the next rx_burst starts with */
    uint64_t tx_offloads;       /* enabled at configure */
    uint64_t rx_offloads;       /* enabled at configure (RX_OFFLOADS_WANTED offered) */
    bool tx_linearize;          /* the PMD sends only the first segment of a chain */
    bool tx_linear;             /* every byte sent is copied or summed: VSW_TX_LINEAR */
    bool csum_even;             /* the PMD sums right only over even pieces (net_tap) */
    uint32_t tso_caps;          /* VSW_TX_TSO4/_TSO6 the PMD takes (port-uplink-tso.h) */
    struct vsw_uplink_tso_limits tso_lim; /* its own limits; max_frame atomic (MTU changes) */
    struct rte_mempool *pool;   /* RX, and private copies on TX */
    uint64_t link_checked;      /* TSC of the last link refresh */
    uint64_t link_period;
    uint64_t sw_checksums; /* written by the worker, read atomically */
    uint64_t tx_bad_offload;
    uint64_t tx_tso;      /* large segments the PMD took whole */
    uint64_t tx_tso_segs; /* the segments they become */
    struct rte_mbuf *stash[VSW_BURST];

    /* Set at create, read by the worker. */
    int intr_fd;      /* wait fd, or -1: the port is polled */
    bool intr_enable; /* rte_eth_dev_rx_intr_enable() arms it */
    bool intr_drain;  /* an eventfd counter, read it when woken */

    /* Control thread. */
    uint32_t link_speed; /* atomic: written by whoever refreshes the link */
    uint32_t mtu;
    uint32_t dev_max_mtu; /* what ethdev lets rte_eth_dev_set_mtu() ask for */
    uint32_t frame_cap;   /* longest frame the device can receive, 0 = unknown */
    unsigned quirks;
    uint16_t seg_room; /* data room of one pool mbuf */
    bool scatter;
    bool probed; /* we probed it, so a failed create removes it */
    uint16_t ntxq; /* TX queues configured; only queue 0 is used */
    bool owned;
    uint64_t owner_id;
    struct rte_device *dev;
    char driver[32];
    char ifname[IF_NAMESIZE]; /* the kernel interface behind it, "" if none */
    uint32_t kernel_mtu_orig; /* 0: never changed */
    bool kernel_promisc_orig;
};
static const struct vsw_port_class uplink_class_poll;

static inline struct uplink_port *up_of(struct vsw_port *p)
{
    return container_of(p, struct uplink_port, port);
}

static inline const struct uplink_port *up_of_const(const struct vsw_port *p)
{
    return container_of(p, const struct uplink_port, port);
}

/* A counter only the owning worker writes and the control thread reads. */
static inline void counter_inc(uint64_t *c)
{
    __atomic_store_n(c, *c + 1, __ATOMIC_RELAXED);
}

/* port-uplink-rxtx.c: the data path (the owning worker's). */
void vsw_uplink_link_refresh(struct uplink_port *up);
uint16_t vsw_uplink_rx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n);
uint16_t vsw_uplink_tx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n);
bool vsw_uplink_tso_fits(const struct vsw_port *port, const struct rte_mbuf *m, uint16_t tag);
int vsw_uplink_wait_fd(struct vsw_port *port);
bool vsw_uplink_wait_arm(struct vsw_port *port);
void vsw_uplink_wait_disarm(struct vsw_port *port);

#endif
