/*
 * The data path both ways. From the guest: its ring, one NVSP message at a
 * time (rx_burst's budget), the RNDIS bytes of a send as one stream (a
 * send-buffer section, then GPA-direct pages), PACKET_MSGs and their PPIs
 * into mbufs with checksum requests, large sends (LSOv2, contract B of
 * vsw-frame.h) and VLAN metadata. To the guest: frames into receive-buffer
 * sub-allocations with their RNDIS header and PPIs, checksums left to the
 * network finished in the guest's copy, large segments coalesced over
 * several sub-allocations (RSC), batched into transfer packets; the
 * guest's completions free them.
 */
#include <errno.h>
#include <string.h>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_net.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "hv.h"
#include "jumbo.h"
#include "netvsp-private.h"
#include "vsw-frame.h"

#define MAX_GPA_RANGES 32u
#define STREAM_MAX (65536u + 8192u)
#define PPI_MAX 1024u /* bytes of per-packet info a PACKET_MSG may carry */

/* Checksum offload request: check it against the frame and put it into the
 * mbuf so whoever sends the frame on knows the checksum is still to do. The
 * transport offset counts any tags the guest put into the frame itself
 * (in-band VLAN or priority tags); where the IP header starts is read from
 * the frame as the switch reads it. */
static bool apply_csum(struct rte_mbuf *m, uint32_t info)
{
    uint32_t thoff = (info >> RNDIS_TXCSUM_THOFF_SHIFT) & RNDIS_TXCSUM_THOFF_MASK;
    bool v4 = info & RNDIS_TXCSUM_IPV4, v6 = info & RNDIS_TXCSUM_IPV6;
    bool tcp = info & RNDIS_TXCSUM_TCP, udp = info & RNDIS_TXCSUM_UDP;
    /* The IPv4 header checksum is not offered (fill_offload): asking for it
     * breaks the protocol, like asking for segmentation. */
    if (info & RNDIS_TXCSUM_IP_HDR)
        return false;
    if (!(tcp || udp))
        return !(info & ~(RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_IPV6));
    if (v4 == v6 || tcp == udp)
        return false;
    return vsw_frame_csum_request(m, thoff, tcp, v4 ? 4 : 6) == 0;
}

static void lso_drop(struct netvsp *np, enum netvsp_lso_drop why)
{
    np->stats.lso_drops[why]++;
    vsw_port_drop(&np->port, VSW_DROP_PORT_SPECIFIC, 1);
}

/* The longest frame a large send may be before its headers are read: the
 * TCP payload fill_offload offers (RNDIS_LSO_MAX_SIZE, checked exactly in
 * lso_apply) behind the most tags the switch reads, up to 100 bytes of IP
 * header (IPv4 with options; IPv6 with 60 bytes of extension headers) and
 * a TCP header with options. */
#define LSO_FRAME_MAX                                                                          \
    (RNDIS_LSO_MAX_SIZE + RTE_ETHER_HDR_LEN + VSW_L2_MAX_TAGS * RTE_VLAN_HLEN + 2u * 60u + 40u)

/*
 * A large send's PPI, before its frame is copied: LSOv2 of an IP version
 * the guest turned on, an MSS, a TCP header offset behind at least an
 * Ethernet and a minimal IP header with a TCP header's room in the frame,
 * a frame no longer than the most a valid one can be, and no checksum PPI
 * that says something else. Returns -1 if it may go on, else the reason
 * to drop it.
 */
static int lso_ppi_check(const struct conn *c, const struct vmnic_ppi *ppi, uint32_t data_len)
{
    uint32_t mss = ppi->lso & RNDIS_LSO_MSS_MASK;
    uint32_t thoff = (ppi->lso >> RNDIS_LSO_THOFF_SHIFT) & RNDIS_LSO_THOFF_MASK;
    bool v6 = ppi->lso & RNDIS_LSO_IPV6;
    if (!(ppi->lso & RNDIS_LSO_TYPE_V2) || !(v6 ? c->lso6 : c->lso4))
        return NETVSP_LSO_NOT_ENABLED;
    if (mss == 0)
        return NETVSP_LSO_MSS;
    uint32_t l3_min = v6 ? sizeof(struct rte_ipv6_hdr) : sizeof(struct rte_ipv4_hdr);
    if (thoff < RTE_ETHER_HDR_LEN + l3_min ||
        (uint64_t)thoff + sizeof(struct rte_tcp_hdr) > data_len)
        return NETVSP_LSO_HDR_OFFSET;
    if (data_len > LSO_FRAME_MAX)
        return NETVSP_LSO_TOO_BIG;
    if (ppi->present & VMNIC_PPI_CSUM) {
        uint32_t cs = ppi->csum;
        uint32_t cs_off = (cs >> RNDIS_TXCSUM_THOFF_SHIFT) & RNDIS_TXCSUM_THOFF_MASK;
        if (!(cs & RNDIS_TXCSUM_TCP) || (cs & RNDIS_TXCSUM_UDP) ||
            !(cs & (v6 ? RNDIS_TXCSUM_IPV6 : RNDIS_TXCSUM_IPV4)) ||
            (cs & (v6 ? RNDIS_TXCSUM_IPV4 : RNDIS_TXCSUM_IPV6)) || cs_off != thoff)
            return NETVSP_LSO_HEADERS;
    }
    return -1;
}

/*
 * Make m, the frame of a large send whose PPI passed lso_ppi_check, a
 * frame of contract B (vsw_frame_tso_request), judged by its headers as
 * DPDK's packet-type parser reads them: IP of the PPI's version, not a
 * fragment, TCP right at the PPI's offset, no more payload than offered,
 * one segment's IP packet within the NIC's MTU. Returns -1, or the reason
 * to drop it (m unchanged).
 */
static int lso_apply(const struct conn *c, struct rte_mbuf *m, const struct vmnic_ppi *ppi)
{
    uint16_t mss = (uint16_t)RTE_MIN(ppi->lso & RNDIS_LSO_MSS_MASK, UINT16_MAX);
    uint32_t thoff = (ppi->lso >> RNDIS_LSO_THOFF_SHIFT) & RNDIS_LSO_THOFF_MASK;
    bool v6 = ppi->lso & RNDIS_LSO_IPV6;
    struct rte_net_hdr_lens hl;
    uint32_t pt = rte_net_get_ptype(m, &hl, RTE_PTYPE_L2_MASK | RTE_PTYPE_L3_MASK |
                                                RTE_PTYPE_L4_MASK);
    if (v6 ? !RTE_ETH_IS_IPV6_HDR(pt) : !RTE_ETH_IS_IPV4_HDR(pt))
        return NETVSP_LSO_HEADERS;
    if ((pt & RTE_PTYPE_L4_MASK) == RTE_PTYPE_L4_FRAG)
        return NETVSP_LSO_FRAGMENT;
    if ((pt & RTE_PTYPE_L4_MASK) != RTE_PTYPE_L4_TCP)
        return NETVSP_LSO_NOT_TCP;
    if ((uint32_t)hl.l2_len + hl.l3_len != thoff)
        return NETVSP_LSO_HDR_OFFSET;
    if ((uint64_t)thoff + hl.l4_len > m->pkt_len)
        return NETVSP_LSO_HEADERS;
    if (m->pkt_len - thoff - hl.l4_len > RNDIS_LSO_MAX_SIZE)
        return NETVSP_LSO_TOO_BIG;
    uint32_t mtu = jumbo_mtu_of_frame(c->frame);
    if ((ppi->lso & RNDIS_LSO_MSS_MASK) > UINT16_MAX ||
        (uint32_t)mss + hl.l3_len + hl.l4_len > mtu)
        return NETVSP_LSO_MSS;
    if (vsw_frame_tso_request(m, thoff, mss, v6 ? 6 : 4, mtu) < 0)
        return NETVSP_LSO_HEADERS;
    return -1;
}

/*
 * One PACKET_MSG at off in the stream, len bytes long. Builds the mbuf into
 * *out, or leaves it NULL (dropped, counted).
 */
static void rndis_packet(struct netvsp *np, struct conn *c, const struct gstream *gs, uint32_t off,
                         uint32_t len, struct zc_slot *zs, struct rte_mbuf **out)
{
    struct rndis_packet_msg pm;
    *out = NULL;
    if (len < sizeof(pm) || netvsp_gs_copy(gs, off, sizeof(pm), &pm) < 0) {
        netvsp_bad(np, c, NETVSP_ERR_RNDIS_LEN);
        return;
    }
    if (pm.oob_data_offset || pm.oob_data_len || pm.num_oob_elements || pm.vc_handle ||
        !vmnic_rndis_data_ok(&pm, len)) {
        netvsp_bad(np, c, NETVSP_ERR_RNDIS_PACKET);
        return;
    }
    struct vmnic_ppi ppi = {0};
    if (pm.ppi_len) {
        uint8_t ppis[PPI_MAX];
        if (!vmnic_rndis_ppi_area_ok(&pm, len) || pm.ppi_len > PPI_MAX) {
            netvsp_bad(np, c, NETVSP_ERR_PPI);
            return;
        }
        netvsp_gs_copy(gs, off + RNDIS_HEADER_SIZE + pm.ppi_offset, pm.ppi_len, ppis);
        if (vmnic_ppi_parse(ppis, pm.ppi_len, &ppi) < 0) {
            netvsp_bad(np, c, NETVSP_ERR_PPI);
            return;
        }
    }
    /* A large send may be longer than the frame limit; it is checked
     * against what LSOv2 offers instead, and its segments against the
     * MTU (lso_apply). */
    bool lso = ppi.present & VMNIC_PPI_LSO;
    if (lso) {
        int why = lso_ppi_check(c, &ppi, pm.data_len);
        if (why >= 0) {
            lso_drop(np, (enum netvsp_lso_drop)why);
            return;
        }
    }
    /* A frame may carry a tag in-band instead of in the VLAN PPI: then it
     * is 4 bytes longer than the frame limit allows. Which tags it may
     * carry is the switch's to judge (classify_vlan). */
    if (!lso && !jumbo_frame_fits(pm.data_len, c->frame, true)) {
        np->stats.rx_frames_too_big++;
        vsw_port_drop(&np->port, VSW_DROP_RX_TOO_BIG, 1);
        return;
    }
    if (pm.data_len < RTE_ETHER_HDR_LEN) {
        vsw_port_drop(&np->port, VSW_DROP_RUNT, 1);
        return;
    }
    enum netvsp_zc_use zc;
    struct rte_mbuf *m = netvsp_gs_to_mbuf(np->pool, gs, off + RNDIS_HEADER_SIZE + pm.data_offset,
                                           pm.data_len, zs, &zc);
    if (!m) {
        vsw_port_drop(&np->port, VSW_DROP_NO_MBUF, 1);
        return;
    }
    if (zc == NETVSP_ZC_TAKEN)
        np->stats.zc_frames++;
    else if (zc == NETVSP_ZC_FALLBACK)
        np->stats.zc_fallbacks++;
    if (!lso && pm.data_len > c->frame &&
        !vsw_l2_is_tpid(rte_pktmbuf_mtod(m, const struct rte_ether_hdr *)->ether_type)) {
        np->stats.rx_frames_too_big++;
        vsw_port_drop(&np->port, VSW_DROP_RX_TOO_BIG, 1);
        rte_pktmbuf_free(m);
        return;
    }
    if (ppi.present & VMNIC_PPI_VLAN) {
        /* The switch decides whether this port may send it (trunk). */
        m->ol_flags |= RTE_MBUF_F_RX_VLAN;
        m->vlan_tci = (uint16_t)(RNDIS_VLAN_ID(ppi.vlan) | (RNDIS_VLAN_PRIO(ppi.vlan) << 13));
    }
    if (lso) {
        int why = lso_apply(c, m, &ppi);
        if (why >= 0) {
            lso_drop(np, (enum netvsp_lso_drop)why);
            rte_pktmbuf_free(m);
            return;
        }
        np->stats.lso_frames++;
    } else if ((ppi.present & VMNIC_PPI_CSUM) && !apply_csum(m, ppi.csum)) {
        netvsp_bad(np, c, NETVSP_ERR_OFFLOAD);
        rte_pktmbuf_free(m);
        return;
    }
    *out = m;
}

/* Build the stream of an NVSP send: section slice + GPA-direct ranges. */
static int build_stream(struct netvsp *np, struct conn *c, const struct vmbus_pkt *pkt,
                        const struct nvsp_msg_rndis_pkt *m, struct gstream *gs)
{
    gs->nseg = 0;
    gs->total = 0;
    if (m->send_buf_section_index != NVSP_SECTION_NONE) {
        uint64_t start = (uint64_t)m->send_buf_section_index * NVSP_SEND_SECTION_SIZE;
        if (!c->sbuf || m->send_buf_section_index >= c->nsections ||
            m->send_buf_section_size > NVSP_SEND_SECTION_SIZE ||
            start + m->send_buf_section_size > c->slen || m->send_buf_section_size == 0) {
            netvsp_bad(np, c, NETVSP_ERR_SECTION);
            return -1;
        }
        gs->seg[0].p = c->sbuf + start;
        gs->seg[0].len = m->send_buf_section_size;
        gs->seg[0].guest = false;
        gs->seg[0].pinned = false;
        gs->nseg = 1;
        gs->total = m->send_buf_section_size;
    }
    if (pkt->type == VMBUS_PKT_DATA_USING_GPA_DIRECT) {
        /* Pages a frame may keep pointing into are read through the
         * connection's own mapping, which outlives the partition's. */
        const uint8_t *mem = c->zc ? netvsp_zc_base(c->zc) : c->dma;
        struct vmbus_range rg[MAX_GPA_RANGES];
        int nr = vmbus_pkt_gpa_direct(pkt, rg, MAX_GPA_RANGES);
        if (nr < 0) {
            netvsp_bad(np, c, NETVSP_ERR_GPA_RANGE);
            return -1;
        }
        for (int i = 0; i < nr; i++) {
            uint32_t left = rg[i].byte_count, poff = rg[i].byte_offset;
            for (uint32_t j = 0; j < rg[i].pfn_count && left; j++) {
                uint64_t pfn = vmbus_range_pfn(&rg[i], j);
                uint32_t k = HV_PAGE_SIZE - poff < left ? HV_PAGE_SIZE - poff : left;
                if (pfn >= c->mem_pages || gs->nseg == GS_MAX_SEGS || gs->total + k > STREAM_MAX) {
                    netvsp_bad(np, c, NETVSP_ERR_GPA_RANGE);
                    return -1;
                }
                gs->seg[gs->nseg].p = mem + (pfn << HV_PAGE_SHIFT) + poff;
                gs->seg[gs->nseg].len = k;
                gs->seg[gs->nseg].guest = true;
                gs->seg[gs->nseg].pinned = c->zc != NULL;
                gs->nseg++;
                gs->total += k;
                left -= k;
                poff = 0;
            }
        }
    }
    if (gs->total < sizeof(struct rndis_msg_hdr)) {
        netvsp_bad(np, c, NETVSP_ERR_RNDIS_LEN);
        return -1;
    }
    return 0;
}

/*
 * NVSP SEND_RNDIS_PKT: walk the RNDIS messages of the stream. Data frames go
 * to pkts (room for MAX_PKTS_PER_MSG), their payload left in the guest's
 * pages where zs (a zero-copy slot, or NULL) allows; a control message is
 * answered. Returns the NVSP status to complete with.
 */
static uint32_t rndis_send(struct netvsp *np, struct conn *c, const struct lane *l,
                           const struct vmbus_pkt *pkt, const struct nvsp_msg_rndis_pkt *m,
                           struct rte_mbuf **pkts, uint16_t *npkts, struct zc_slot *zs)
{
    struct gstream gs;
    if (!c->rbuf) {
        netvsp_bad(np, c, NETVSP_ERR_NOT_READY);
        return NVSP_STAT_FAIL;
    }
    if (build_stream(np, c, pkt, m, &gs) < 0)
        return NVSP_STAT_INVALID_RNDIS_PKT;
    /* Concatenated messages follow one another at exactly message_length,
     * as OpenVMM's netvsp (handle_rndis_packet_messages) and vmswitch walk
     * them: guests that pack several put the alignment padding inside the
     * previous message's length (Linux netvsc_copy_to_send_buf, FreeBSD
     * and DPDK hn_try_txagg), so no rounding is ours to do. Bytes after
     * the last message that do not make a header are an error, as there. */
    uint32_t off = 0, count = 0;
    bool data_seen = false;
    while (off < gs.total) {
        struct rndis_msg_hdr h;
        if (gs.total - off < sizeof(h)) {
            netvsp_bad(np, c, NETVSP_ERR_RNDIS_LEN);
            return NVSP_STAT_INVALID_RNDIS_PKT;
        }
        netvsp_gs_copy(&gs, off, sizeof(h), &h);
        if (h.len < sizeof(h) || h.len > gs.total - off) {
            netvsp_bad(np, c, NETVSP_ERR_RNDIS_LEN);
            return NVSP_STAT_INVALID_RNDIS_PKT;
        }
        if (h.type == RNDIS_MSG_PACKET) {
            if (!c->rndis_ready) {
                netvsp_bad(np, c, NETVSP_ERR_NOT_READY);
                return NVSP_STAT_FAIL;
            }
            if (++count > MAX_PKTS_PER_MSG) {
                netvsp_bad(np, c, NETVSP_ERR_RNDIS_LEN);
                return NVSP_STAT_INVALID_RNDIS_PKT;
            }
            struct rte_mbuf *mb;
            c->frames_seen++;
            rndis_packet(np, c, &gs, off, h.len, zs, &mb);
            if (mb)
                pkts[(*npkts)++] = mb;
            data_seen = true;
        } else {
            /* Control messages travel alone, never after data, and on
             * the primary only. */
            if (l->idx != 0) {
                netvsp_bad(np, c, NETVSP_ERR_SUBCHANNEL_MSG);
                return NVSP_STAT_INVALID_RNDIS_PKT;
            }
            if (data_seen || m->channel_type != NVSP_CHANNEL_TYPE_CONTROL ||
                h.len > CTRL_MSG_MAX) {
                netvsp_bad(np, c, NETVSP_ERR_RNDIS_TYPE);
                return NVSP_STAT_INVALID_RNDIS_PKT;
            }
            netvsp_gs_copy(&gs, off, h.len, c->ctl);
            netvsp_rndis_control(np, c, h.len);
            return NVSP_STAT_SUCCESS;
        }
        off += h.len;
    }
    return NVSP_STAT_SUCCESS;
}

/* One NVSP message from the guest: its set-up messages are NVSP's; a send
 * of RNDIS messages is the data path's, completed with their status, at
 * once or, if frames still point into its pages, once they are all freed
 * (netvsp_zc_complete). */
static void nvsp_message(struct netvsp *np, struct conn *c, struct lane *l,
                         const struct vmbus_pkt *pkt, struct rte_mbuf **pkts, uint16_t *npkts)
{
    struct nvsp_msg_rndis_pkt m;
    if (!netvsp_nvs_message(np, c, l, pkt, &m))
        return;
    struct zc_slot *zs =
        pkt->type == VMBUS_PKT_DATA_USING_GPA_DIRECT ? netvsp_zc_slot_get(c->zc) : NULL;
    uint16_t before = *npkts;
    uint32_t st = rndis_send(np, c, l, pkt, &m, pkts, npkts, zs);
    np->stats.chan_rx[l->idx] += *npkts - before;
    if (zs && netvsp_zc_slot_end(c->zc, zs, l->tag, pkt->trans_id, st))
        return;
    netvsp_send_completion(c, l, pkt->trans_id, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE, st);
}

static void guest_completion(struct netvsp *np, struct conn *c, const struct vmbus_pkt *pkt)
{
    uint64_t first = pkt->trans_id;
    if (!c->rbuf || first >= c->nsub || !c->outstanding[first]) {
        netvsp_bad(np, c, NETVSP_ERR_COMPLETION_ID);
        return;
    }
    c->outstanding[first] = 0;
    netvsp_free_chain(c, (uint32_t)first);
}

/*
 * Lane l's share of a round: messages from its ring while the port's
 * budget left (n less *used) could hold the most frames one may carry and
 * its ring to the guest has room for what one may make us send. Returns
 * false when the connection died.
 */
static bool lane_round(struct netvsp *np, struct conn *c, struct lane *l, struct rte_mbuf **pkts,
                       uint16_t *got, uint32_t *used, uint16_t n)
{
    uint32_t mine = 0;
    while (*used + MAX_PKTS_PER_MSG <= n) {
        if (vmbus_ring_free_bytes(l->tx) < netvsp_reply_room()) {
            if (l->tx->error)
                netvsp_ring_fatal(np, c);
            break;
        }
        int len = vmbus_ring_get(l->rx, c->pkt, PKT_MAX);
        if (len == -EAGAIN)
            break;
        if (len < 0) {
            netvsp_ring_fatal(np, c);
            break;
        }
        uint32_t seen = c->frames_seen;
        struct vmbus_pkt pkt;
        vmbus_pkt_parse(c->pkt, (uint32_t)len, &pkt);
        switch (pkt.type) {
        case VMBUS_PKT_COMP:
            guest_completion(np, c, &pkt);
            break;
        case VMBUS_PKT_DATA_INBAND:
        case VMBUS_PKT_DATA_USING_GPA_DIRECT:
            nvsp_message(np, c, l, &pkt, pkts, got);
            break;
        default:
            netvsp_bad(np, c, NETVSP_ERR_PKT_TYPE);
            break;
        }
        uint32_t u = c->frames_seen != seen ? c->frames_seen - seen : 1;
        *used += u;
        mine += u;
        if (c->dead)
            break;
    }
    if (mine && vmbus_ring_release(l->rx) == 1)
        vmbus_chan_signal(l->chan);
    return !c->dead;
}

/*
 * One round's share of the guest's rings (see rx_burst in
 * vsw-port-provider.h): at most n units of work over all the NIC's open
 * channels together, where each frame costs one, kept or dropped, and so
 * does each message that carries none (NVSP and RNDIS control,
 * completions, refused messages). Whatever a guest sends, on however many
 * channels, the worker moves on to its other ports after this bounded
 * amount of work; the rest stays in the rings for the next round. The
 * lane served first turns round by round, so no channel of the guest
 * starves another. A request is taken only while the budget left could
 * hold the most frames it may carry.
 */
uint16_t netvsp_rx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n)
{
    struct netvsp *np = np_of(port);
    struct conn *c = __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE);
    if (!c || c->dead)
        return 0;
    uint16_t got = 0;
    uint32_t used = 0;
    if ((netvsp_zc_pending(c->zc) || c->nowed) && netvsp_zc_complete(c))
        vsw_port_rx_busy(port);
    /* The next round starts with the next lane open: turning over every
     * index a lane could have would give the primary the first turn in
     * most rounds. */
    uint32_t first = c->rr;
    for (uint32_t k = 1; k <= NETVSP_QUEUES_MAX; k++) {
        c->rr = (first + k) % NETVSP_QUEUES_MAX;
        if (__atomic_load_n(&c->lanes[c->rr], __ATOMIC_ACQUIRE))
            break;
    }
    for (uint32_t k = 0; k < NETVSP_QUEUES_MAX; k++) {
        struct lane *l = __atomic_load_n(&c->lanes[(first + k) % NETVSP_QUEUES_MAX],
                                         __ATOMIC_ACQUIRE);
        if (l && !lane_round(np, c, l, pkts, &got, &used, n))
            break;
    }
    if (used)
        netvsp_flush_pending_ctrl(np, c);
    if (c->sub_granted && !c->itab_sent)
        netvsp_send_itab(np, c);
    if (got && !media(np)) {
        /* Unplugged: the guest's frames go nowhere, but its control
         * messages are still answered (it must be able to query). */
        vsw_port_drop(port, VSW_DROP_LINK_DOWN, got);
        rte_pktmbuf_free_bulk(pkts, got);
        got = 0;
    }
    if (used > got)
        vsw_port_rx_busy(port);
    return got;
}

static bool wanted(const struct netvsp *np, const struct conn *c, const struct rte_mbuf *m)
{
    const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
    uint32_t f = c->filter;
    if (f & RNDIS_FILTER_PROMISCUOUS)
        return true;
    if (rte_is_broadcast_ether_addr(&eth->dst_addr))
        return f & RNDIS_FILTER_BROADCAST;
    if (rte_is_multicast_ether_addr(&eth->dst_addr))
        return f & (RNDIS_FILTER_MULTICAST | RNDIS_FILTER_ALL_MULTICAST);
    return (f & RNDIS_FILTER_DIRECTED) && memcmp(eth->dst_addr.addr_bytes, np->mac, 6) == 0;
}

/*
 * Finish the checksums m's sender left to the network (contract A: l2_len,
 * l3_len, the TX flags) in f, the guest's copy of m (len bytes, contiguous),
 * with DPDK's checksum functions. The offsets and lengths are the sender's
 * and checked against the copy first: -EINVAL, nothing written, if they do
 * not describe an IP header of the flagged version followed by the flagged
 * transport header, all inside the frame.
 */
static int finish_csum(const struct rte_mbuf *m, uint8_t *f, uint32_t len)
{
    const uint64_t l4 = m->ol_flags & RTE_MBUF_F_TX_L4_MASK;
    const bool v4 = m->ol_flags & RTE_MBUF_F_TX_IPV4, v6 = m->ol_flags & RTE_MBUF_F_TX_IPV6;
    const bool tcp = l4 == RTE_MBUF_F_TX_TCP_CKSUM;
    if ((l4 != RTE_MBUF_F_TX_TCP_CKSUM && l4 != RTE_MBUF_F_TX_UDP_CKSUM) || v4 == v6 ||
        m->l2_len < RTE_ETHER_HDR_LEN)
        return -EINVAL;
    const uint8_t proto = tcp ? IPPROTO_TCP : IPPROTO_UDP;
    const uint32_t l3_off = m->l2_len, l4_off = l3_off + m->l3_len;
    const uint32_t l4_min = tcp ? sizeof(struct rte_tcp_hdr) : sizeof(struct rte_udp_hdr);
    const uint32_t field = l4_off + (tcp ? offsetof(struct rte_tcp_hdr, cksum)
                                         : offsetof(struct rte_udp_hdr, dgram_cksum));
    if (m->l3_len < (v4 ? sizeof(struct rte_ipv4_hdr) : sizeof(struct rte_ipv6_hdr)) ||
        (uint64_t)l4_off + l4_min > len)
        return -EINVAL;
    uint16_t sum;
    if (v4) {
        struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(f + l3_off);
        uint32_t tot = rte_be_to_cpu_16(ip->total_length);
        if ((ip->version_ihl >> 4) != 4 || rte_ipv4_hdr_len(ip) != m->l3_len ||
            (uint64_t)l3_off + tot > len || tot < m->l3_len + l4_min ||
            ip->next_proto_id != proto)
            return -EINVAL;
        if (m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM) {
            ip->hdr_checksum = 0;
            ip->hdr_checksum = rte_ipv4_cksum(ip);
        }
        memset(f + field, 0, 2);
        sum = rte_ipv4_udptcp_cksum(ip, f + l4_off);
    } else {
        const struct rte_ipv6_hdr *ip = (const struct rte_ipv6_hdr *)(f + l3_off);
        uint32_t end = sizeof(*ip) + rte_be_to_cpu_16(ip->payload_len);
        if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6 || (uint64_t)l3_off + end > len ||
            end < m->l3_len + l4_min || (m->l3_len == sizeof(*ip) && ip->proto != proto))
            return -EINVAL;
        /* DPDK takes the pseudo header's protocol and length from the IPv6
         * header, which with extension headers names and counts the first
         * of them: give it a copy that names the transport. */
        struct rte_ipv6_hdr ph = *ip;
        ph.proto = proto;
        ph.payload_len = rte_cpu_to_be_16((uint16_t)(end - m->l3_len));
        memset(f + field, 0, 2);
        sum = rte_ipv6_udptcp_cksum(&ph, f + l4_off);
    }
    memcpy(f + field, &sum, sizeof(sum));
    return 0;
}

/*
 * What the checksum PPI of m's copy f tells the guest (RNDIS_RXCSUM_*), as
 * Windows and Linux guests read it: "succeeded" means "valid, do not look",
 * and they later forward those bytes as they are, so it is said only of a
 * checksum that is right. A checksum the sender left to the network is
 * finished here first (the switch hands such frames over unfinished to a
 * port with VSW_TX_CSUM); one an uplink verified (RTE_MBUF_F_RX_L4_CKSUM_GOOD)
 * is said to be; of anything else nothing is claimed (0), and the guest
 * checks for itself.
 */
static uint32_t rx_csum_info(const struct rte_mbuf *m, uint8_t *f, uint32_t len)
{
    uint32_t v = 0;
    if (m->ol_flags & RTE_MBUF_F_TX_L4_MASK) {
        if (finish_csum(m, f, len) < 0)
            return 0;
        v = (m->ol_flags & RTE_MBUF_F_TX_L4_MASK) == RTE_MBUF_F_TX_UDP_CKSUM ? RNDIS_RXCSUM_UDP_OK
                                                                           : RNDIS_RXCSUM_TCP_OK;
        if (m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM)
            v |= RNDIS_RXCSUM_IP_OK;
    } else if ((m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) == RTE_MBUF_F_RX_L4_CKSUM_GOOD) {
        uint32_t pt = m->packet_type & RTE_PTYPE_L4_MASK;
        if (!pt)
            pt = rte_net_get_ptype(m, NULL, RTE_PTYPE_L2_MASK | RTE_PTYPE_L3_MASK |
                                                RTE_PTYPE_L4_MASK) &
                 RTE_PTYPE_L4_MASK;
        if (pt == RTE_PTYPE_L4_TCP)
            v = RNDIS_RXCSUM_TCP_OK;
        else if (pt == RTE_PTYPE_L4_UDP)
            v = RNDIS_RXCSUM_UDP_OK;
    }
    if (v && (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_GOOD)
        v |= RNDIS_RXCSUM_IP_OK;
    return v;
}

/* The frames batched for the next transfer packet (a large segment takes
 * several of its ranges). */
struct batch {
    uint64_t bytes;
    uint32_t frames;
};

/* Emit the batched data frames; count them sent, or dropped if the ring
 * to the guest was full. */
static uint16_t emit_data(struct netvsp *np, struct conn *c, struct lane *l,
                          struct vsw_port_counters *ctr, struct batch *bt)
{
    uint32_t n = l->xn, f = bt->frames;
    if (!n)
        return 0;
    if (netvsp_xfer_emit(np, c, l, NVSP_CHANNEL_TYPE_DATA) == n) {
        np->stats.chan_tx[l->idx] += f;
        ctr->tx_packets += f;
        ctr->tx_bytes += bt->bytes;
    } else {
        ctr->drops[VSW_DROP_QUEUE_FULL] += f;
        f = 0;
    }
    bt->bytes = 0;
    bt->frames = 0;
    return (uint16_t)f;
}

/* Room the receive buffer's ranges keep unused at their end (OpenVMM: a
 * bug in newer Windows guests' netvsc reads past the message). */
#define SUB_TAIL 36u

/* PPIs a frame to the guest may carry outside RSC: checksum, VLAN, and
 * the RSS hash value and type. */
#define RX_PPI_MAX (4u * RNDIS_PPI_U32_SIZE)

/* Header bytes the RSS hash reads at most: Ethernet, a VLAN tag, IPv4 with
 * options or IPv6, the TCP ports. */
#define RSS_HDR_MAX 128u

static uint32_t put_u32_ppi(uint8_t *p, uint32_t type, uint32_t v)
{
    struct rndis_ppi r = {.size = RNDIS_PPI_U32_SIZE, .type = type, .ppi_offset = sizeof(r)};
    memcpy(p, &r, sizeof(r));
    memcpy(p + sizeof(r), &v, sizeof(v));
    return r.size;
}

/* The IP header of large segment m says what the frame is: the version
 * flagged, TCP (IPv4; IPv6 may have extension headers), and the IP length
 * the frame's, which the guest's stack goes by. */
static bool rsc_l3_ok(const struct rte_mbuf *m, bool v4)
{
    const uint32_t l3 = m->pkt_len - m->l2_len;
    if (v4) {
        const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *,
                                                                m->l2_len);
        return (ip->version_ihl >> 4) == 4 && rte_ipv4_hdr_len(ip) == m->l3_len &&
               ip->next_proto_id == IPPROTO_TCP && rte_be_to_cpu_16(ip->total_length) == l3;
    }
    const struct rte_ipv6_hdr *ip = rte_pktmbuf_mtod_offset(m, const struct rte_ipv6_hdr *,
                                                            m->l2_len);
    return (m->ol_flags & RTE_MBUF_F_TX_IPV6) && (rte_be_to_cpu_32(ip->vtc_flow) >> 28) == 6 &&
           m->l3_len >= sizeof(*ip) && (m->l3_len > sizeof(*ip) || ip->proto == IPPROTO_TCP) &&
           sizeof(*ip) + rte_be_to_cpu_16(ip->payload_len) == l3;
}

/* A frame's RSS hash, computed once: it picks the lane and goes in the
 * PPIs. */
struct fhash {
    bool ok;
    uint32_t hash, type;
};

/* The hash of frame m if the guest turned RSS on and the frame is one its
 * hash types cover. Hashed from the switch's copy: the guest may write its
 * own at any time. */
static struct fhash frame_hash(const struct conn *c, const struct rte_mbuf *m)
{
    struct fhash r = {0};
    if (!c->rss.on)
        return r;
    uint8_t hb[RSS_HDR_MAX];
    uint32_t hl = RTE_MIN(m->pkt_len, RSS_HDR_MAX);
    const uint8_t *h = rte_pktmbuf_read(m, 0, hl, hb);
    r.ok = h && netvsp_rss_hash(&c->rss, h, hl, &r.hash, &r.type);
    return r;
}

/* The lane a frame of hash fh goes out on: the one the guest's
 * indirection table names, the primary when RSS is off, the frame has no
 * hash, or that sub-channel has closed since. */
static struct lane *pick_lane(struct conn *c, const struct fhash *fh)
{
    if (!fh->ok)
        return &c->l0;
    uint32_t e = c->rss.itab[fh->hash & (c->rss.nitab - 1)];
    struct lane *l = e < NETVSP_QUEUES_MAX ? __atomic_load_n(&c->lanes[e], __ATOMIC_ACQUIRE)
                                           : NULL;
    return l ? l : &c->l0;
}

/* The hash value and type PPIs of a frame of hash fh at p; their length (0
 * if it has none). */
static uint32_t put_hash_ppis(struct netvsp *np, const struct fhash *fh, uint8_t *p)
{
    if (!fh->ok)
        return 0;
    uint32_t n = put_u32_ppi(p, RNDIS_PPI_HASH_VALUE, fh->hash);
    n += put_u32_ppi(p + n, RNDIS_PPI_HASH_INFO, NDIS_HASH_FUNCTION_TOEPLITZ | fh->type);
    np->stats.rss_hashed++;
    return n;
}

/*
 * A large segment (contract B) to a guest that turned RSC on: one
 * coalesced packet over as many receive-buffer ranges as it needs, all in
 * one transfer packet (Linux drops a packet whose fragments span two),
 * each range a PACKET_MSG with the packet-id PPI (first / last fragment),
 * the first also with the checksum PPI (and the VLAN PPI) for the whole.
 * The guest takes it as one packet whose checksum it does not check, so
 * its IPv4 header and TCP checksums are computed here, in the guest's
 * copy, with DPDK's checksum functions over the pieces (every piece but
 * the last of even length). Returns the ranges used, 0 if it was dropped
 * (counted).
 */
static uint32_t send_rsc(struct netvsp *np, struct conn *c, struct lane *l,
                         const struct fhash *fh, struct vsw_port *port, struct rte_mbuf *m,
                         uint16_t tag, struct vsw_port_counters *ctr, struct batch *bt,
                         uint16_t *sent)
{
    const uint32_t len = m->pkt_len, l3_off = m->l2_len, l4_off = l3_off + m->l3_len;
    const bool v4 = m->ol_flags & RTE_MBUF_F_TX_IPV4;
    /* Checksum, packet id, and maybe VLAN and the two hash PPIs. */
    const uint32_t first_ppi = 2 * RNDIS_PPI_U32_SIZE + (tag ? RNDIS_PPI_U32_SIZE : 0) +
                               (fh->ok ? 2 * RNDIS_PPI_U32_SIZE : 0);
    const uint32_t room = c->sub_size - SUB_TAIL - sizeof(struct rndis_packet_msg);
    /* Frame bytes per range: even, and the first holds all headers. */
    uint32_t cap0 = (room - first_ppi) & ~1u, cap = (room - RNDIS_PPI_U32_SIZE) & ~1u;
    if ((l4_off & 1u) != 0 || m->l4_len < sizeof(struct rte_tcp_hdr) ||
        l4_off + m->l4_len >= len || l4_off + m->l4_len > cap0 || m->l2_len < RTE_ETHER_HDR_LEN ||
        rte_pktmbuf_data_len(m) < l4_off + m->l4_len || !rsc_l3_ok(m, v4)) {
        vsw_port_drop(port, VSW_DROP_PORT_SPECIFIC, 1);
        np->stats.tx_rsc_refused++;
        return 0;
    }
    uint32_t nfrag = 1 + (len > cap0 ? (len - cap0 + cap - 1) / cap : 0);
    if (nfrag > XFER_BATCH || nfrag > RNDIS_RSC_MAX_FRAGS) {
        vsw_port_drop(port, VSW_DROP_TOO_BIG, 1);
        return 0;
    }
    if (l->xn + nfrag > XFER_BATCH)
        *sent += emit_data(np, c, l, ctr, bt);
    if (c->nfree_data < nfrag) {
        np->stats.tx_no_buffer++;
        vsw_port_drop(port, VSW_DROP_QUEUE_FULL, 1);
        return 0;
    }
    uint16_t id = c->rsc_pkt_id++;
    uint8_t *hdr = NULL, *csum_v = NULL;
    uint32_t sum = 0;
    for (uint32_t i = 0, off = 0; i < nfrag; i++) {
        uint32_t sub = c->free_data[--c->nfree_data];
        uint8_t *dst = c->rbuf + (size_t)sub * c->sub_size;
        uint8_t *ppi = dst + sizeof(struct rndis_packet_msg);
        uint32_t ppi_len = 0;
        if (i == 0) {
            csum_v = ppi + sizeof(struct rndis_ppi);
            ppi_len += put_u32_ppi(ppi, RNDIS_PPI_CSUM_INFO, 0);
            if (tag)
                ppi_len += put_u32_ppi(ppi + ppi_len, RNDIS_PPI_VLAN,
                                       RNDIS_VLAN_MAKE(tag, (m->vlan_tci >> 13) & 7));
            ppi_len += put_hash_ppis(np, fh, ppi + ppi_len);
        }
        struct rndis_pktinfo_id pid = {
            .version = RNDIS_PKTINFO_ID_V1,
            .flags = (uint8_t)(RNDIS_PKTINFO_SUBALLOC | (i == 0 ? RNDIS_PKTINFO_FIRST_FRAG : 0) |
                               (i == nfrag - 1 ? RNDIS_PKTINFO_LAST_FRAG : 0)),
            .pkt_id = id,
        };
        uint32_t pv;
        memcpy(&pv, &pid, sizeof(pv));
        ppi_len += put_u32_ppi(ppi + ppi_len, RNDIS_PPI_PKTINFO_ID, pv);
        uint32_t k = RTE_MIN(len - off, i == 0 ? cap0 : cap);
        uint8_t *data = ppi + ppi_len;
        const void *src = rte_pktmbuf_read(m, off, k, data);
        if (src != data)
            memcpy(data, src, k);
        struct rndis_packet_msg pm = {
            .hdr = {.type = RNDIS_MSG_PACKET,
                    .len = (uint32_t)sizeof(pm) + ppi_len + k},
            .data_offset = RNDIS_PACKET_OFFSET_MIN + ppi_len,
            .data_len = k,
            .ppi_offset = RNDIS_PACKET_OFFSET_MIN,
            .ppi_len = ppi_len,
        };
        memcpy(dst, &pm, sizeof(pm));
        if (i == 0) {
            hdr = data;
            /* The TCP checksum field is summed as 0. */
            memset(data + l4_off + offsetof(struct rte_tcp_hdr, cksum), 0, 2);
            sum += rte_raw_cksum(data + l4_off, k - l4_off);
        } else {
            sum += rte_raw_cksum(data, k);
        }
        netvsp_xfer_add(c, l, sub, pm.hdr.len);
        off += k;
    }
    uint16_t cks;
    if (v4) {
        struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(hdr + l3_off);
        ip->hdr_checksum = 0;
        ip->hdr_checksum = rte_ipv4_cksum(ip);
        sum += rte_ipv4_phdr_cksum(ip, 0);
    } else {
        struct rte_ipv6_hdr ph;
        memcpy(&ph, hdr + l3_off, sizeof(ph));
        ph.proto = IPPROTO_TCP;
        ph.payload_len = rte_cpu_to_be_16((uint16_t)(len - l4_off));
        sum += rte_ipv6_phdr_cksum(&ph, 0);
    }
    cks = (uint16_t)~__rte_raw_cksum_reduce(sum);
    memcpy(hdr + l4_off + offsetof(struct rte_tcp_hdr, cksum), &cks, sizeof(cks));
    uint32_t claim = RNDIS_RXCSUM_TCP_OK | (v4 ? RNDIS_RXCSUM_IP_OK : 0);
    memcpy(csum_v, &claim, sizeof(claim));
    np->stats.rsc_frames++;
    np->stats.rsc_ranges += nfrag;
    bt->bytes += len;
    bt->frames++;
    return nfrag;
}

static inline void put_u32(uint8_t *p, uint32_t v)
{
    memcpy(p, &v, sizeof(v));
}

/*
 * The PACKET_MSG header of a frame of len bytes behind ppi_len bytes of
 * PPIs, written field by field straight into the receive buffer. Returns
 * its message length. Built as a struct on the stack and copied, it was
 * read back wider than it was stored (a forwarding stall; perf annotate
 * put 83 % of netvsp_tx_burst's samples on that load).
 */
static inline uint32_t put_packet_msg(uint8_t *dst, uint32_t ppi_len, uint32_t len)
{
    const uint32_t msg_len = (uint32_t)sizeof(struct rndis_packet_msg) + ppi_len + len;
    memset(dst, 0, sizeof(struct rndis_packet_msg));
    put_u32(dst + offsetof(struct rndis_packet_msg, hdr.type), RNDIS_MSG_PACKET);
    put_u32(dst + offsetof(struct rndis_packet_msg, hdr.len), msg_len);
    put_u32(dst + offsetof(struct rndis_packet_msg, data_offset), RNDIS_PACKET_OFFSET_MIN + ppi_len);
    put_u32(dst + offsetof(struct rndis_packet_msg, data_len), len);
    if (ppi_len) {
        put_u32(dst + offsetof(struct rndis_packet_msg, ppi_offset), RNDIS_PACKET_OFFSET_MIN);
        put_u32(dst + offsetof(struct rndis_packet_msg, ppi_len), ppi_len);
    }
    return msg_len;
}

uint16_t netvsp_tx_burst(struct vsw_port *port, struct rte_mbuf **pkts, uint16_t n)
{
    struct netvsp *np = np_of(port);
    struct conn *c = __atomic_load_n(&np->conn, __ATOMIC_ACQUIRE);
    uint16_t sent = 0;
    if (!c || c->dead || !c->rndis_ready || !c->rbuf || !c->filter) {
        vsw_port_drop(port, VSW_DROP_LINK_DOWN, n);
        rte_pktmbuf_free_bulk(pkts, n);
        return 0;
    }
    struct vsw_port_counters *ctr = &port->counters[rte_lcore_id()];
    struct batch bt[NETVSP_QUEUES_MAX] = {0};
    /* The lanes this burst batched for (a sub-channel unpublished meanwhile
     * is still there until the round ends, and its batch must go out). */
    struct lane *lp[NETVSP_QUEUES_MAX] = {0};
    const bool rsc = c->rsc4 && c->rsc6;
    for (uint16_t i = 0; i < n; i++) {
        struct rte_mbuf *m = pkts[i];
        /* Ahead: the mbuf after next, the next one's frame (its header
         * and first bytes were a fifth of this loop's samples). */
        if (i + 2 < n)
            rte_prefetch0(pkts[i + 2]);
        if (i + 1 < n)
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
        uint32_t len = m->pkt_len;
        /* A large segment reaches a port that said it takes them
         * (VSW_TX_TSO); one staged before the guest turned RSC off is too
         * big for it now. */
        bool whole = rsc && (m->ol_flags & RTE_MBUF_F_TX_TCP_SEG);
        if (len > c->frame && !whole) {
            vsw_port_drop(port, VSW_DROP_TOO_BIG, 1);
            continue;
        }
        if (!(m->ol_flags & vsw_mirror_copy_flag) && !wanted(np, c, m)) {
            np->stats.tx_filtered++;
            continue;
        }
        const struct fhash fh = frame_hash(c, m);
        struct lane *l = pick_lane(c, &fh);
        struct batch *b = &bt[l->idx];
        lp[l->idx] = l;
        if (whole) {
            send_rsc(np, c, l, &fh, port, m, vsw_port_tx_vlan(port, m), ctr, b, &sent);
            if (l->xn == XFER_BATCH)
                sent += emit_data(np, c, l, ctr, b);
            continue;
        }
        /* Packed behind the batch's last frame if the message fits with
         * every PPI it may carry (netvsp_xfer_open() says why). */
        uint32_t at;
        if (l->psub != CHAIN_END && l->poff + (uint32_t)sizeof(struct rndis_packet_msg) +
                                            RX_PPI_MAX + len + SUB_TAIL <= c->sub_size) {
            at = l->psub * c->sub_size + l->poff;
        } else {
            if (!c->nfree_data) {
                np->stats.tx_no_buffer++;
                vsw_port_drop(port, VSW_DROP_QUEUE_FULL, 1);
                continue;
            }
            uint32_t sub = c->free_data[--c->nfree_data];
            netvsp_xfer_open(c, l, sub);
            at = sub * c->sub_size;
        }
        uint8_t *dst = c->rbuf + at;
        uint32_t ppi_len = 0;
        uint8_t *ppi = dst + sizeof(struct rndis_packet_msg);
        /* A checksum PPI only where there may be something to say: the
         * sender left the checksum to the network (finished here, in the
         * copy: the mbuf may be shared with other ports), or someone
         * verified it. Its slot is laid out before the copy so the frame
         * is copied once, straight to its place. */
        bool csum_ppi = m->ol_flags & (RTE_MBUF_F_TX_L4_MASK | RTE_MBUF_F_RX_L4_CKSUM_MASK);
        if (csum_ppi)
            ppi_len += RNDIS_PPI_U32_SIZE;
        uint16_t tag = vsw_port_tx_vlan(port, m);
        if (tag) {
            struct rndis_ppi r = {
                .size = RNDIS_PPI_U32_SIZE, .type = RNDIS_PPI_VLAN, .ppi_offset = sizeof(r)};
            uint32_t v = RNDIS_VLAN_MAKE(tag, (m->vlan_tci >> 13) & 7);
            memcpy(ppi + ppi_len, &r, sizeof(r));
            memcpy(ppi + ppi_len + sizeof(r), &v, sizeof(v));
            ppi_len += r.size;
        }
        ppi_len += put_hash_ppis(np, &fh, ppi + ppi_len);
        uint8_t *frame = ppi + ppi_len;
        const void *data = rte_pktmbuf_read(m, 0, len, frame);
        if (data != frame)
            memcpy(frame, data, len);
        if (csum_ppi) {
            struct rndis_ppi r = {.size = RNDIS_PPI_U32_SIZE,
                                  .type = RNDIS_PPI_CSUM_INFO,
                                  .ppi_offset = sizeof(r)};
            uint32_t v = rx_csum_info(m, frame, len);
            memcpy(ppi, &r, sizeof(r));
            memcpy(ppi + sizeof(r), &v, sizeof(v));
        }
        uint32_t msg_len = put_packet_msg(dst, ppi_len, len);
        netvsp_xfer_pack(c, l, at, msg_len);
        /* The next frame's place: the guest last read it, on its CPU. */
        rte_prefetch0(c->rbuf + l->psub * c->sub_size + l->poff);
        b->bytes += len;
        b->frames++;
        if (l->xn == XFER_BATCH)
            sent += emit_data(np, c, l, ctr, b);
    }
    for (uint32_t i = 0; i < NETVSP_QUEUES_MAX; i++)
        if (lp[i])
            sent += emit_data(np, c, lp[i], ctr, &bt[i]);
    /* Every frame was copied out or dropped: one bulk free. */
    rte_pktmbuf_free_bulk(pkts, n);
    return sent;
}
