/* The uplink port's data path: receive, transmit (checksums left to the network), sleeping. */
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

#define UPLINK_TX_CHUNK 64

/* ---- Data path: receive ------------------------------------------------ */

void vsw_uplink_link_refresh(struct uplink_port *up)
{
    struct rte_eth_link link;
    if (rte_eth_link_get_nowait(up->port_id, &link) != 0)
        return;
    bool on = link.link_status == RTE_ETH_LINK_UP;
    if (vsw_port_link(&up->port) != on)
        vsw_port_set_link(&up->port, on);
    uint32_t speed = link.link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? 0 : link.link_speed;
    __atomic_store_n(&up->link_speed, speed, __ATOMIC_RELAXED);
}

/* Strip the PMD's receive metadata but its "checksum good" verdicts; put a
 * stripped VLAN tag back. Returns false if the frame had to be dropped (it
 * is freed). */
static bool rx_clean(struct uplink_port *up, struct rte_mbuf **mp)
{
    struct rte_mbuf *m = *mp;
    if (unlikely(m->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED)) {
        if (rte_vlan_insert(mp) != 0) {
            vsw_port_drop(&up->port, VSW_DROP_PORT_SPECIFIC, 1);
            rte_pktmbuf_free(m);
            return false;
        }
        m = *mp;
    }
    uint64_t keep = RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT;
    if ((m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
        keep |= RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    if ((m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD)
        keep |= RTE_MBUF_F_RX_IP_CKSUM_GOOD;
    m->ol_flags &= keep;
    m->packet_type = 0;
    m->tx_offload = 0;
    m->vlan_tci = 0;
    return true;
}

uint16_t vsw_uplink_rx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n)
{
    struct uplink_port *up = up_of(port);
    uint16_t got = 0;
    if (unlikely(up->nstash)) {
        while (up->nstash && got < n) {
            pkts[got++] = up->stash[up->stash_pos++];
            up->nstash--;
        }
    }
    /* Every queue the peer may send on, within the port's one burst per
     * round: each queue gets what the ones before it left, and the first
     * queue polled turns round by round so that a busy queue cannot starve
     * the others. */
    uint16_t q = up->rxq_next;
    for (uint16_t i = 0; i < up->nrxq && got < n; i++) {
        got = (uint16_t)(got + rte_eth_rx_burst(up->port_id, q, pkts + got, (uint16_t)(n - got)));
        if (++q == up->nrxq)
            q = 0;
    }
    if (up->nrxq > 1)
        up->rxq_next = up->rxq_next + 1 == up->nrxq ? 0 : (uint16_t)(up->rxq_next + 1);

    uint16_t k = 0;
    for (uint16_t i = 0; i < got; i++) {
        struct rte_mbuf *m = pkts[i];
        if (rx_clean(up, &m))
            pkts[k++] = m;
    }

    /* The link is read here, so that it costs the data path one TSC read
     * per burst and needs no timer: about once a second while it is up;
     * while it is down, about every millisecond, and at once when frames
     * come in (a memif peer sends, or waits for frames, as soon as it has
     * connected: up to its first second of frames, or of the replies to
     * them, were dropped as link_down). */
    uint64_t now = rte_get_tsc_cycles();
    bool link = vsw_port_link(&up->port);
    if (unlikely(now - up->link_checked > (link ? up->link_period : up->link_period >> 10) ||
                 (got && !link))) {
        up->link_checked = now;
        vsw_uplink_link_refresh(up);
    }
    return k;
}

/* ---- Data path: checksums left to the network ----------------------- */

/* A private copy of m in full segments of the port's pool; m is freed.
 * NULL (counted) if out of mbufs. */
static struct rte_mbuf *private_copy(struct uplink_port *up, struct rte_mbuf *m)
{
    struct rte_mbuf *c = rte_pktmbuf_copy(m, up->pool, 0, UINT32_MAX);
    rte_pktmbuf_free(m);
    if (!c)
        vsw_port_drop(&up->port, VSW_DROP_NO_MBUF, 1);
    return c;
}

/* Length of the TCP or UDP header. */
static int l4_hdr_len(const struct rte_mbuf *m, uint64_t l4, uint32_t *out)
{
    if (l4 == RTE_MBUF_F_TX_UDP_CKSUM) {
        *out = sizeof(struct rte_udp_hdr);
        return 0;
    }
    uint8_t b;
    const uint8_t *doff = rte_pktmbuf_read(m, (uint32_t)m->l2_len + m->l3_len + 12u, 1, &b);
    if (!doff || (*doff >> 4) < 5)
        return -EINVAL;
    *out = (uint32_t)(*doff >> 4) * 4u;
    return 0;
}

bool vsw_uplink_tso_fits(const struct vsw_port *port, const struct rte_mbuf *m, uint16_t tag)
{
    const struct uplink_port *up = up_of_const(port);
    const struct vsw_uplink_tso_limits lim = {
        .max_frame = __atomic_load_n(&up->tso_lim.max_frame, __ATOMIC_RELAXED),
        .max_segs = up->tso_lim.max_segs,
        .max_hdr = up->tso_lim.max_hdr,
        .even_pieces = up->tso_lim.even_pieces,
    };
    return vsw_uplink_tso_within(&lim, m, tag);
}

/* A large segment for a PMD that segments it: returns what to send, or
 * NULL if it was dropped (freed and counted). */
static struct rte_mbuf *tx_tso(struct uplink_port *up, struct rte_mbuf *m)
{
    int rc = (m->ol_flags & (TX_UNSUPPORTED_FLAGS & ~RTE_MBUF_F_TX_TCP_SEG))
                 ? -EINVAL
                 : vsw_uplink_tso_prepare(up->pool, &m, up->tso_caps, up->tx_offloads);
    if (rc == 0 && (m->ol_flags & RTE_MBUF_F_TX_VLAN) && rte_vlan_insert(&m) != 0)
        rc = -EINVAL;
    if (rc == 0)
        return m;
    if (rc == -EINVAL)
        counter_inc(&up->tx_bad_offload);
    vsw_port_drop(&up->port, rc == -ENOMEM ? VSW_DROP_NO_MBUF : VSW_DROP_PORT_SPECIFIC, 1);
    rte_pktmbuf_free(m);
    return NULL;
}

/* A frame with transmit offload requests: returns what to send (the frame,
 * or a private copy of it), or NULL if it was dropped (freed and counted). */
static struct rte_mbuf *tx_fixup(struct uplink_port *up, struct rte_mbuf *m)
{
    const uint64_t f = m->ol_flags;
    const uint64_t l4 = f & RTE_MBUF_F_TX_L4_MASK;
    const uint64_t txo = up->tx_offloads;
    if (f & RTE_MBUF_F_TX_TCP_SEG)
        return tx_tso(up, m);
    if ((f & TX_UNSUPPORTED_FLAGS) || l4 == RTE_MBUF_F_TX_SCTP_CKSUM)
        goto bad;
    if ((f & VSW_TX_CSUM_FLAGS) &&
        (m->l2_len < RTE_ETHER_HDR_LEN || m->l3_len < sizeof(struct rte_ipv4_hdr) ||
         !(f & (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IPV6))))
        goto bad;

    bool sw_ip = (f & RTE_MBUF_F_TX_IP_CKSUM) && !(txo & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM);
    bool sw_l4 = (l4 == RTE_MBUF_F_TX_TCP_CKSUM && !(txo & RTE_ETH_TX_OFFLOAD_TCP_CKSUM)) ||
                 (l4 == RTE_MBUF_F_TX_UDP_CKSUM && !(txo & RTE_ETH_TX_OFFLOAD_UDP_CKSUM));
    const bool sw_vlan = (f & RTE_MBUF_F_TX_VLAN) != 0;
    uint32_t l4_hlen = 0;
    /* A PMD reads the headers it completes from the first segment (net_tap
     * refuses the frame otherwise), and net_tap sums the rest mbuf by mbuf,
     * wrongly after one of odd length: finish such frames here instead. */
    if (l4 && !sw_l4) {
        if (l4_hdr_len(m, l4, &l4_hlen) < 0)
            goto bad;
        if ((uint32_t)m->l2_len + m->l3_len + l4_hlen > m->data_len ||
            (up->csum_even && !vsw_uplink_pieces_even(m, (uint32_t)m->l2_len + m->l3_len, 0)))
            sw_l4 = true;
    }
    if ((f & RTE_MBUF_F_TX_IP_CKSUM) && !sw_ip && (uint32_t)m->l2_len + m->l3_len > m->data_len)
        sw_ip = true;
    const bool hw_l4 = l4 && !sw_l4;
    const bool hw_ip = (f & RTE_MBUF_F_TX_IP_CKSUM) && !sw_ip;
    if (!sw_ip && !sw_l4 && !sw_vlan && !hw_l4 && !hw_ip)
        return m; /* only informational flags, or a tag the PMD inserts */

    /* Checksums are written into the frame (here, or by the PMD's
     * tx_prepare), and l4_len into its metadata: a frame other ports may be
     * reading gets copied. */
    if (!vsw_mbuf_writable(m) && !(m = private_copy(up, m)))
        return NULL;
    uint64_t sw = (sw_ip ? RTE_MBUF_F_TX_IP_CKSUM : 0) | (sw_l4 ? l4 : 0);
    if (sw) {
        int rc = vsw_frame_cksum_finish(m, sw);
        if (rc == -EAGAIN) {
            /* Headers across segments, or a chain DPDK's checksum cannot
             * sum in place (vsw-frame.h): a copy in full segments can. */
            if (!(m = private_copy(up, m)))
                return NULL;
            rc = vsw_frame_cksum_finish(m, sw);
        }
        if (rc < 0)
            goto bad;
        counter_inc(&up->sw_checksums);
    }
    /* For PMDs that find the payload through l4_len even when only a
     * checksum, not segmentation, is asked for; harmless for the others. */
    if (hw_l4 && !m->l4_len)
        m->l4_len = l4_hlen;
    if (!(m->ol_flags & VSW_TX_CSUM_FLAGS))
        m->ol_flags &= ~(RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IPV6);
    if (sw_vlan && rte_vlan_insert(&m) != 0)
        goto bad;
    return m;

bad:
    counter_inc(&up->tx_bad_offload);
    vsw_port_drop(&up->port, VSW_DROP_PORT_SPECIFIC, 1);
    rte_pktmbuf_free(m);
    return NULL;
}

/* One segment for a PMD that sends only the first (the port's frame limit
 * keeps frames within one mbuf of the pool). NULL if dropped. */
static struct rte_mbuf *tx_linearize(struct uplink_port *up, struct rte_mbuf *m)
{
    struct rte_mbuf *c = rte_pktmbuf_copy(m, up->pool, 0, UINT32_MAX);
    rte_pktmbuf_free(m);
    if (!c || c->nb_segs != 1) {
        vsw_port_drop(&up->port, c ? VSW_DROP_TOO_BIG : VSW_DROP_NO_MBUF, 1);
        rte_pktmbuf_free(c);
        return NULL;
    }
    return c;
}

/* rte_eth_tx_prepare() stops at the first frame the PMD cannot take:
 * drop that one and go on with the rest (len and segs follow v). */
static uint16_t tx_prepare(struct uplink_port *up, struct rte_mbuf **v, uint32_t *len,
                           uint16_t *segs, uint16_t k)
{
    uint16_t done = 0;
    while (done < k) {
        uint16_t ok = rte_eth_tx_prepare(up->port_id, 0, v + done, (uint16_t)(k - done));
        done = (uint16_t)(done + ok);
        if (done == k)
            break;
        counter_inc(&up->tx_bad_offload);
        vsw_port_drop(&up->port, VSW_DROP_PORT_SPECIFIC, 1);
        rte_pktmbuf_free(v[done]);
        memmove(v + done, v + done + 1, sizeof(v[0]) * (size_t)(k - done - 1));
        memmove(len + done, len + done + 1, sizeof(len[0]) * (size_t)(k - done - 1));
        memmove(segs + done, segs + done + 1, sizeof(segs[0]) * (size_t)(k - done - 1));
        k--;
    }
    return k;
}

uint16_t vsw_uplink_tx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n)
{
    struct uplink_port *up = up_of(port);
    struct vsw_port_counters *ctr = &port->counters[rte_lcore_id()];
    uint16_t sent_total = 0;

    for (uint16_t base = 0; base < n; base = (uint16_t)(base + UPLINK_TX_CHUNK)) {
        uint16_t cnt = (uint16_t)RTE_MIN(n - base, UPLINK_TX_CHUNK);
        struct rte_mbuf **v = pkts + base;
        uint32_t len[UPLINK_TX_CHUNK];
        uint16_t segs[UPLINK_TX_CHUNK]; /* large segments: what the PMD cuts them into */
        uint16_t k = 0;
        bool tso = false;
        for (uint16_t i = 0; i < cnt; i++) {
            struct rte_mbuf *m = v[i];
            if (unlikely(m->ol_flags & RTE_MBUF_F_TX_OFFLOAD_MASK)) {
                m = tx_fixup(up, m);
                if (!m)
                    continue;
            }
            if (unlikely(m->nb_segs > 1 && up->tx_linearize)) {
                m = tx_linearize(up, m);
                if (!m)
                    continue;
            }
            v[k] = m;
            segs[k] = 0;
            if (unlikely(m->ol_flags & RTE_MBUF_F_TX_TCP_SEG)) {
                segs[k] = (uint16_t)vsw_uplink_tso_segs(m);
                tso = true;
            }
            len[k++] = m->pkt_len;
        }
        if (k && (up->tx_offloads & ~RTE_ETH_TX_OFFLOAD_MULTI_SEGS))
            k = tx_prepare(up, v, len, segs, k);
        /* A PMD stops at the first frame it does not take: refused (drop
         * it, go on with the rest) or out of room (then the next try sends
         * nothing, and the rest is dropped). */
        uint16_t i = 0, sent = 0;
        uint64_t bytes = 0;
        while (i < k) {
            uint16_t s = rte_eth_tx_burst(up->port_id, 0, v + i, (uint16_t)(k - i));
            for (uint16_t j = i; j < i + s; j++) {
                bytes += len[j];
                if (unlikely(tso) && segs[j]) {
                    counter_inc(&up->tx_tso);
                    __atomic_store_n(&up->tx_tso_segs, up->tx_tso_segs + segs[j],
                                     __ATOMIC_RELAXED);
                }
            }
            sent = (uint16_t)(sent + s);
            i = (uint16_t)(i + s);
            if (i == k)
                break;
            uint16_t lost = s ? 1 : (uint16_t)(k - i);
            vsw_port_drop(port, VSW_DROP_QUEUE_FULL, lost);
            rte_pktmbuf_free_bulk(v + i, lost);
            i = (uint16_t)(i + lost);
        }
        ctr->tx_packets += sent;
        ctr->tx_bytes += bytes;
        sent_total = (uint16_t)(sent_total + sent);
    }
    return sent_total;
}

/* ---- Data path: sleeping ------------------------------------------------ */

int vsw_uplink_wait_fd(struct vsw_port *port)
{
    return up_of(port)->intr_fd;
}

/* Arm the interrupt, then look once more: a frame that arrived before the
 * interrupt was armed raises none, so it is received now and kept for the
 * next rx_burst. */
bool vsw_uplink_wait_arm(struct vsw_port *port)
{
    struct uplink_port *up = up_of(port);
    if (up->intr_enable)
        rte_eth_dev_rx_intr_enable(up->port_id, 0);
    if (up->nstash)
        return true;
    up->stash_pos = 0;
    up->nstash = rte_eth_rx_burst(up->port_id, 0, up->stash, VSW_BURST);
    return up->nstash != 0;
}

void vsw_uplink_wait_disarm(struct vsw_port *port)
{
    struct uplink_port *up = up_of(port);
    if (up->intr_enable)
        rte_eth_dev_rx_intr_disable(up->port_id, 0);
    if (up->intr_drain) {
        /* The PMD's eventfd may be blocking: read it only when readable. */
        struct pollfd pfd = {.fd = up->intr_fd, .events = POLLIN};
        uint64_t v;
        if (poll(&pfd, 1, 0) > 0 && read(up->intr_fd, &v, sizeof(v)) < 0) {
            /* someone else drained it */
        }
    }
}
