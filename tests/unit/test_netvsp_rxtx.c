/*
 * Unit tests of netvsp, the root's network VSP (netvsp.h), with the fake
 * guest of netvsp-fixture.h: the data path (rxtx.c): PACKET_MSGs from send sections and
 * GPA-direct pages into mbufs, their PPIs (checksum, VLAN, LSO), packing
 * and limits; frames to the guest in transfer packets, the packet filter,
 * completions; rx_burst's budget.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>

#include "netvsp-fixture.h"
#include "vsw-frame.h"

static void packet_msg__in_send_section__mbuf_with_exact_bytes(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct netvsp_stats b = nstats(v);
    static const uint32_t lens[] = {14, 60, 1000, FRAME_1514};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        uint8_t frame[FRAME_1514], msg[2048];
        make_frame(frame, lens[i], MAC_OTHER, (uint8_t)i);
        uint32_t len = build_packet(msg, NULL, 0, frame, lens[i]);
        inbox_clear(v);
        uint64_t tid = rndis_send_section(v, 1 + (uint32_t)i, NVSP_CHANNEL_TYPE_DATA, msg, len);
        assert_int_equal(pump(v), 1);
        collect(v);
        assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
        assert_int_equal(v->nrx, 1);
        assert_mbuf_eq(v->rx[0], frame, lens[i]);
        assert_int_equal(v->rx[0]->ol_flags & RTE_MBUF_F_TX_L4_MASK, 0);
        free_rx(v);
    }
    expect_no_err(v, &b);
}

static void packet_msg__linux_partial_copy__header_in_section_frame_gpa_direct(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    /* Frame of 1400 bytes in two ranges over non-adjacent pages:
     * 500 bytes at page 5 offset 4000 (continuing on page 7), then 900
     * bytes at page 9 offset 0. */
    uint8_t frame[1400];
    make_frame(frame, sizeof(frame), MAC_OTHER, 0x21);
    memcpy(v->scratch + 5 * HV_PAGE_SIZE + 4000, frame, 96);
    memcpy(v->scratch + 7 * HV_PAGE_SIZE, frame + 96, 404);
    memcpy(v->scratch + 9 * HV_PAGE_SIZE, frame + 500, 900);
    struct grange r[2] = {
        {.byte_count = 500, .byte_offset = 4000, .npfn = 2,
         .pfn = {v->scratch_pfn + 5, v->scratch_pfn + 7}},
        {.byte_count = 900, .byte_offset = 0, .npfn = 1, .pfn = {v->scratch_pfn + 9}},
    };
    uint8_t ppis[16];
    uint32_t pl = put_ppi(ppis, RNDIS_PPI_HASH_VALUE, 0x12345678);
    struct rndis_packet_msg pm = {
        .hdr = {.type = RNDIS_MSG_PACKET, .len = (uint32_t)sizeof(pm) + pl + sizeof(frame)},
        .data_offset = 36 + pl,
        .data_len = sizeof(frame),
        .ppi_offset = 36,
        .ppi_len = pl,
    };
    memcpy(section(v, 3), &pm, sizeof(pm));
    memcpy(section(v, 3) + sizeof(pm), ppis, pl);
    uint8_t ext[256];
    uint32_t el = gpa_ext(ext, r, 2, 2);
    struct netvsp_stats b = nstats(v);
    uint64_t tid = rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, 3, (uint32_t)sizeof(pm) + pl, ext, el);
    assert_int_equal(pump(v), 1);
    collect(v);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    assert_mbuf_eq(v->rx[0], frame, sizeof(frame));
    expect_no_err(v, &b);
}

static void packet_msg__all_gpa_direct__mbuf_with_exact_bytes(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[300], msg[400];
    make_frame(frame, sizeof(frame), MAC_OTHER, 0x33);
    uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    memcpy(v->scratch + 12 * HV_PAGE_SIZE + 4000, msg, len); /* crosses into page 13 */
    struct grange r = scratch_range(v, 12, 4000, len);
    uint8_t ext[64];
    uint32_t el = gpa_ext(ext, &r, 1, 1);
    uint64_t tid = rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, NVSP_SECTION_NONE, 0, ext, el);
    assert_int_equal(pump(v), 1);
    collect(v);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    assert_mbuf_eq(v->rx[0], frame, sizeof(frame));
}

static void packet_msg__inband_vlan_tag__four_bytes_over_frame_size_allowed(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v); /* frame size 1514 */
    struct netvsp_stats b = nstats(v);
    /* A full-size frame with its 802.1Q tag in the frame: 1518 bytes. */
    assert_int_equal(send_sized(v, 1518, 0x8100), 1);
    assert_int_equal(nstats(v).rx_frames_too_big, b.rx_frames_too_big);
    /* The same length untagged is too big; so is a tagged one a byte longer. */
    assert_int_equal(send_sized(v, 1518, 0x0800), 0);
    assert_int_equal(send_sized(v, 1519, 0x8100), 0);
    assert_int_equal(nstats(v).rx_frames_too_big, b.rx_frames_too_big + 2);
}

static void packet_msg__jumbo_over_gpa_direct__chained_mbuf_exact(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_ver(v, V61, 9014);
    static uint8_t frame[9014];
    make_frame(frame, sizeof(frame), MAC_OTHER, 0x44);
    memcpy(v->scratch + HV_PAGE_SIZE, frame, sizeof(frame));
    struct rndis_packet_msg pm = {
        .hdr = {.type = RNDIS_MSG_PACKET, .len = (uint32_t)sizeof(pm) + sizeof(frame)},
        .data_offset = 36,
        .data_len = sizeof(frame),
    };
    memcpy(section(v, 2), &pm, sizeof(pm));
    struct grange r = scratch_range(v, 1, 0, sizeof(frame));
    uint8_t ext[128];
    uint32_t el = gpa_ext(ext, &r, 1, 1);
    rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, 2, sizeof(pm), ext, el);
    assert_int_equal(pump(v), 1);
    assert_int_equal(v->nrx, 1);
    assert_true(v->rx[0]->nb_segs > 1);
    assert_mbuf_eq(v->rx[0], frame, sizeof(frame));
    /* And one byte more is too big. */
    free_rx(v);
    struct netvsp_stats b = nstats(v);
    struct vsw_port_stats pb = pstats(v);
    pm.hdr.len += 1;
    pm.data_len += 1;
    memcpy(section(v, 2), &pm, sizeof(pm));
    r = scratch_range(v, 1, 0, sizeof(frame) + 1);
    el = gpa_ext(ext, &r, 1, 1);
    rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, 2, sizeof(pm), ext, el);
    assert_int_equal(pump(v), 0);
    assert_int_equal(nstats(v).rx_frames_too_big, b.rx_frames_too_big + 1);
    assert_int_equal(pstats(v).drops[VSW_DROP_RX_TOO_BIG], pb.drops[VSW_DROP_RX_TOO_BIG] + 1);
}

static void packet_msg__several_in_one_send__all_delivered_in_order(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frames[3][200], *s = section(v, 4);
    uint32_t off = 0;
    static const uint32_t lens[3] = {61, 150, 99};
    for (int i = 0; i < 3; i++) {
        make_frame(frames[i], lens[i], MAC_OTHER, (uint8_t)(0x50 + i));
        if (i < 2)
            off += build_packet_padded(s + off, frames[i], lens[i]);
        else /* the last one is not padded (Linux: no xmit_more) */
            off += build_packet(s + off, NULL, 0, frames[i], lens[i]);
    }
    uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_DATA, 4, off);
    assert_int_equal(pump(v), 3);
    collect(v);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    for (int i = 0; i < 3; i++)
        assert_mbuf_eq(v->rx[i], frames[i], lens[i]);
}

/*
 * Messages packed into one send follow one another at exactly their
 * message_length, whatever it is: OpenVMM's netvsp skips message_length
 * bytes to the next header (handle_rndis_packet_messages), as vmswitch
 * does; a walk in 8-byte-rounded steps reads the second header 3 bytes
 * late here.
 */
static void packet_msg__packed_without_padding__next_at_exact_message_length(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frames[3][200], *s = section(v, 4);
    static const uint32_t lens[3] = {61, 150, 99}; /* messages of 105, 194, 143 bytes */
    uint32_t off = 0;
    for (int i = 0; i < 3; i++) {
        make_frame(frames[i], lens[i], MAC_OTHER, (uint8_t)(0x60 + i));
        off += build_packet(s + off, NULL, 0, frames[i], lens[i]);
    }
    struct netvsp_stats b = nstats(v);
    uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_DATA, 4, off);
    assert_int_equal(pump(v), 3);
    collect(v);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    for (int i = 0; i < 3; i++)
        assert_mbuf_eq(v->rx[i], frames[i], lens[i]);
    expect_no_err(v, &b);
}

/*
 * The walk keeps every bound: a following message_length of 0, one shorter
 * than a header, one running past what was sent, and trailing bytes too
 * few for a header are all refused and counted (OpenVMM: RndisMessageTooSmall
 * or a failed read of the next header).
 */
static void packet_msg__packed_bad_next_length__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_OTHER, 0x70);
    static const struct {
        uint32_t next_len; /* message_length of the second header; 0xffff: no header */
        uint32_t supplied; /* bytes of the second message sent */
    } cases[] = {
        {0, 44}, {4, 44}, {7, 44}, {44 + 64 + 1, 44 + 64}, {0xffffffffu, 44 + 64},
        {0xffff, 4}, {0xffff, 7},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *s = section(v, 6);
        uint32_t first = build_packet(s, NULL, 0, frame, sizeof(frame));
        build_packet(s + first, NULL, 0, frame, sizeof(frame));
        if (cases[i].next_len != 0xffff)
            memcpy(s + first + 4, &cases[i].next_len, 4);
        struct netvsp_stats b = nstats(v);
        inbox_clear(v);
        uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_DATA, 6, first + cases[i].supplied);
        pump(v);
        collect(v);
        free_rx(v);
        expect_err(v, &b, NETVSP_ERR_RNDIS_LEN);
        assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                         NVSP_STAT_INVALID_RNDIS_PKT);
    }
}

static void packet_msg__more_than_max_per_message__refused_after_max(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct rndis_init_cmplt ic;
    rndis_init(v, &ic); /* again: to learn the limit */
    uint8_t frame[64], *s = section(v, 4);
    uint32_t off = 0;
    for (uint32_t i = 0; i < ic.max_pkts_per_msg + 1; i++) {
        make_frame(frame, sizeof(frame), MAC_OTHER, (uint8_t)i);
        off += build_packet_padded(s + off, frame, sizeof(frame));
    }
    struct netvsp_stats b = nstats(v);
    uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_DATA, 4, off);
    pump(v);
    collect(v);
    assert_int_equal(v->nrx, ic.max_pkts_per_msg);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                     NVSP_STAT_INVALID_RNDIS_PKT);
    expect_err(v, &b, NETVSP_ERR_RNDIS_LEN);
}

static void packet_msg__checksum_ppi__mbuf_offload_flags_set(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[200], msg[400], ppis[16];
    /* TCP over IPv4, transport header at 34. */
    make_frame(frame, sizeof(frame), MAC_OTHER, 1);
    uint32_t pl = put_ppi(ppis, RNDIS_PPI_CSUM_INFO,
                          RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP | (34u << RNDIS_TXCSUM_THOFF_SHIFT));
    uint32_t len = build_packet(msg, ppis, pl, frame, sizeof(frame));
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 1);
    struct rte_mbuf *m = v->rx[0];
    assert_mbuf_eq(m, frame, sizeof(frame));
    assert_int_equal(m->ol_flags & RTE_MBUF_F_TX_L4_MASK, RTE_MBUF_F_TX_TCP_CKSUM);
    assert_true(m->ol_flags & RTE_MBUF_F_TX_IPV4);
    assert_int_equal(m->l2_len, 14);
    assert_int_equal(m->l3_len, 20);
    free_rx(v);
    /* UDP over IPv6, transport header at 54. */
    make_frame(frame, sizeof(frame), MAC_OTHER, 2);
    frame[12] = 0x86;
    frame[13] = 0xdd;
    frame[14] = 0x60;
    pl = put_ppi(ppis, RNDIS_PPI_CSUM_INFO,
                 RNDIS_TXCSUM_IPV6 | RNDIS_TXCSUM_UDP | (54u << RNDIS_TXCSUM_THOFF_SHIFT));
    len = build_packet(msg, ppis, pl, frame, sizeof(frame));
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 1);
    m = v->rx[0];
    assert_int_equal(m->ol_flags & RTE_MBUF_F_TX_L4_MASK, RTE_MBUF_F_TX_UDP_CKSUM);
    assert_true(m->ol_flags & RTE_MBUF_F_TX_IPV6);
    assert_int_equal(m->l3_len, 40);
}

static void packet_msg__checksum_ppi_inconsistent__dropped_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    static const uint32_t bad[] = {
        RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_IPV6 | RNDIS_TXCSUM_TCP | (34u << 16), /* both IPs */
        RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP | RNDIS_TXCSUM_UDP | (34u << 16),  /* both L4 */
        RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP | (20u << 16),   /* inside the IP header */
        RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP | (190u << 16),  /* TCP header past the end */
        RNDIS_TXCSUM_IPV6 | RNDIS_TXCSUM_TCP | (54u << 16),   /* frame is IPv4 */
        RNDIS_TXCSUM_TCP | (34u << 16),                        /* no IP version */
        RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP | RNDIS_TXCSUM_IP_HDR | (34u << 16), /* not offered */
        RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_IP_HDR,               /* IP header only: not offered */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t frame[200], msg[400], ppis[16];
        make_frame(frame, sizeof(frame), MAC_OTHER, (uint8_t)i);
        uint32_t pl = put_ppi(ppis, RNDIS_PPI_CSUM_INFO, bad[i]);
        uint32_t len = build_packet(msg, ppis, pl, frame, sizeof(frame));
        struct netvsp_stats b = nstats(v);
        rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
        assert_int_equal(pump(v), 0);
        expect_err(v, &b, NETVSP_ERR_OFFLOAD);
    }
}

/* A guest that puts tags into the frame itself (a VLAN interface without
 * VLAN offload, a priority tag) and leaves its checksums to the network:
 * the transport offset counts those tags, and the IP header is found
 * behind them, never at a fixed offset. Such frames are no protocol error,
 * however many the guest sends. */
static void packet_msg__checksum_ppi_behind_inband_tags__offsets_from_the_frame_no_error(
    void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct netvsp_stats b = nstats(v);
    static const struct {
        uint16_t tci[3];
        unsigned n;
    } stacks[] = {
        {{20}, 1},                    /* VLAN 20 */
        {{(5 << 13) | 20}, 1},        /* VLAN 20, priority 5 */
        {{(2 << 13) | 20}, 1},        /* priority 2: the TCI's first nibble reads as "4" */
        {{5 << 13}, 1},               /* a priority tag */
        {{0, 3 << 13, 20}, 3},        /* priority tags, then VLAN 20 */
    };
    uint8_t frame[300], msg[400], ppis[16];
    uint32_t len = 0;
    for (size_t i = 0; i < sizeof(stacks) / sizeof(stacks[0]); i++) {
        for (int v6 = 0; v6 < 2; v6++) {
            make_frame(frame, sizeof(frame), MAC_OTHER, (uint8_t)i);
            uint32_t o = 12;
            for (unsigned k = 0; k < stacks[i].n; k++, o += 4) {
                frame[o] = 0x81, frame[o + 1] = 0x00;
                frame[o + 2] = (uint8_t)(stacks[i].tci[k] >> 8);
                frame[o + 3] = (uint8_t)stacks[i].tci[k];
            }
            frame[o] = v6 ? 0x86 : 0x08;
            frame[o + 1] = v6 ? 0xdd : 0x00;
            frame[o + 2] = v6 ? 0x60 : 0x45;
            uint32_t l3 = v6 ? 40 : 20, thoff = o + 2 + l3;
            uint32_t info = (v6 ? RNDIS_TXCSUM_IPV6 | RNDIS_TXCSUM_UDP
                                : RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP) |
                            (thoff << RNDIS_TXCSUM_THOFF_SHIFT);
            uint32_t pl = put_ppi(ppis, RNDIS_PPI_CSUM_INFO, info);
            len = build_packet(msg, ppis, pl, frame, sizeof(frame));
            rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
            assert_int_equal(pump(v), 1);
            collect(v);
            inbox_clear(v);
            struct rte_mbuf *m = v->rx[0];
            assert_mbuf_eq(m, frame, sizeof(frame)); /* the switch takes the tags out */
            assert_int_equal(m->l2_len, o + 2);
            assert_int_equal(m->l3_len, l3);
            assert_int_equal(m->ol_flags & RTE_MBUF_F_TX_L4_MASK,
                             v6 ? RTE_MBUF_F_TX_UDP_CKSUM : RTE_MBUF_F_TX_TCP_CKSUM);
            assert_true(m->ol_flags & (v6 ? RTE_MBUF_F_TX_IPV6 : RTE_MBUF_F_TX_IPV4));
            free_rx(v);
            expect_no_err(v, &b);
        }
    }
    /* Far more of them than the errors that cut a guest off. */
    for (unsigned i = 0; i < NETVSP_ERRORS_MAX + 20; i++) {
        rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
        assert_int_equal(pump(v), 1);
        collect(v);
        inbox_clear(v);
        free_rx(v);
    }
    expect_no_err(v, &b);
    assert_int_equal(nstats(v).disconnects, b.disconnects);
    assert_true(vsw_port_link(v->port));
}

/* VLANs travel out of band: the guest's VLAN PPI becomes mbuf metadata and
 * the switch decides (port policy) whether this port may send that VLAN. */
static void packet_msg__vlan_ppi__tag_handed_to_switch_as_metadata(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[100], msg[200], ppis[16];
    make_frame(frame, sizeof(frame), MAC_OTHER, 7);
    uint32_t pl = put_ppi(ppis, RNDIS_PPI_VLAN, RNDIS_VLAN_MAKE(5, 3));
    uint32_t len = build_packet(msg, ppis, pl, frame, sizeof(frame));
    struct netvsp_stats b = nstats(v);
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 1);
    assert_mbuf_eq(v->rx[0], frame, sizeof(frame)); /* the frame itself stays untagged */
    assert_true(v->rx[0]->ol_flags & RTE_MBUF_F_RX_VLAN);
    assert_int_equal(v->rx[0]->vlan_tci, 5 | (3 << 13));
    free_rx(v);
    /* Without the PPI: no tag. */
    len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 1);
    assert_false(v->rx[0]->ol_flags & RTE_MBUF_F_RX_VLAN);
    expect_no_err(v, &b);
}

/* LSOv2 turned on or off for both IP versions, as Linux does it. */
static void set_lso(struct vm *v, bool on)
{
    struct ndis_offload_params p = {
        .hdr = {NDIS_OBJTYPE_DEFAULT, 3, sizeof(p)},
        .tcp4_csum = NDIS_OFFLOAD_PARAM_TXRX,
        .tcp6_csum = NDIS_OFFLOAD_PARAM_TXRX,
        .lsov2_ip4 = on ? NDIS_OFFLOAD_LSOV2_ON : NDIS_OFFLOAD_LSOV2_OFF,
        .lsov2_ip6 = on ? NDIS_OFFLOAD_LSOV2_ON : NDIS_OFFLOAD_LSOV2_OFF,
    };
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &p, sizeof(p)),
                     RNDIS_STATUS_SUCCESS);
}

static uint32_t lso_ppi(uint32_t mss, uint32_t thoff, bool v6)
{
    return mss | (thoff << RNDIS_LSO_THOFF_SHIFT) | RNDIS_LSO_TYPE_V2 | (v6 ? RNDIS_LSO_IPV6 : 0);
}

/* One large send as Linux makes it: RNDIS header and PPIs in a send
 * section, the frame GPA-direct over the scratch pages (8 a range): posted
 * (its transaction id), or sent (how many frames the switch got, kept in
 * v->rx, and the send completed). */
static uint64_t lso_post(struct vm *v, const uint8_t *frame, uint32_t flen, const uint8_t *ppis,
                         uint32_t pl)
{
    assert_true(flen <= SCRATCH_PAGES * HV_PAGE_SIZE);
    memcpy(v->scratch, frame, flen);
    struct rndis_packet_msg pm = {
        .hdr = {.type = RNDIS_MSG_PACKET, .len = (uint32_t)sizeof(pm) + pl + flen},
        .data_offset = 36 + pl,
        .data_len = flen,
        .ppi_offset = 36,
        .ppi_len = pl,
    };
    memcpy(section(v, 2), &pm, sizeof(pm));
    memcpy(section(v, 2) + sizeof(pm), ppis, pl);
    struct grange r[SCRATCH_PAGES / 8];
    uint32_t n = 0;
    for (uint32_t done = 0; done < flen; n++) {
        uint32_t k = RTE_MIN(flen - done, 8 * HV_PAGE_SIZE);
        r[n] = scratch_range(v, done / HV_PAGE_SIZE, 0, k);
        done += k;
    }
    uint8_t ext[512];
    uint32_t el = gpa_ext(ext, r, n, n);
    return rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, 2, (uint32_t)sizeof(pm) + pl, ext, el);
}

static unsigned send_lso(struct vm *v, const uint8_t *frame, uint32_t flen, const uint8_t *ppis,
                         uint32_t pl)
{
    uint64_t tid = lso_post(v, frame, flen, ppis, pl);
    unsigned got = pump(v);
    /* A frame whose payload stays in the guest's pages holds the send's
     * completion until it is freed (zcopy.c): keep a copy of it instead,
     * and let the root complete the send. */
    for (unsigned i = v->nrx - got; i < v->nrx; i++) {
        struct rte_mbuf *c = rte_pktmbuf_copy(v->rx[i], g_pool, 0, UINT32_MAX);
        assert_non_null(c);
        rte_pktmbuf_free(v->rx[i]);
        v->rx[i] = c;
    }
    pump(v);
    collect(v);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    return got;
}

static unsigned send_lso1(struct vm *v, const uint8_t *frame, uint32_t flen, uint32_t lso)
{
    uint8_t ppis[16];
    uint32_t pl = put_ppi(ppis, RNDIS_PPI_LSO, lso);
    return send_lso(v, frame, flen, ppis, pl);
}

static void expect_lso_drop(struct vm *v, const struct netvsp_stats *b, enum netvsp_lso_drop why)
{
    struct netvsp_stats s = nstats(v);
    for (int i = 0; i < NETVSP_LSO_DROP_COUNT; i++)
        if (s.lso_drops[i] != b->lso_drops[i] + (i == (int)why))
            fail_msg("lso drop %s: %llu, was %llu", netvsp_lso_drop_name((enum netvsp_lso_drop)i),
                     (unsigned long long)s.lso_drops[i], (unsigned long long)b->lso_drops[i]);
    assert_int_equal(s.lso_frames, b->lso_frames);
    expect_no_err(v, b);
}

static uint8_t g_big[64u << 10];

static void packet_msg__lso_ipv4__one_super_frame_of_contract_b(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    set_lso(v, true);
    /* As Linux sends it: IPv4 total length 0, TCP options, 40 KB. */
    uint32_t flen = 40000;
    uint32_t l4 = make_l4_frame(g_big, flen, MAC_OTHER, 4, IPPROTO_TCP, 0, 12);
    g_big[16] = g_big[17] = 0;
    struct netvsp_stats b = nstats(v);
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(send_lso1(v, g_big, flen, lso_ppi(1448, l4, false)), 1);
    struct rte_mbuf *m = v->rx[0];
    assert_int_equal(m->pkt_len, flen);
    assert_true(m->ol_flags & RTE_MBUF_F_TX_TCP_SEG);
    assert_true(m->ol_flags & RTE_MBUF_F_TX_IPV4);
    assert_int_equal(m->tso_segsz, 1448);
    assert_int_equal(m->l2_len, 14);
    assert_int_equal(m->l3_len, 20);
    assert_int_equal(m->l4_len, 32);
    /* The IP total length the sender left 0 is the frame's now. */
    uint16_t tot;
    const uint16_t *tp = rte_pktmbuf_read(m, 16, 2, &tot);
    assert_non_null(tp);
    assert_int_equal(rte_be_to_cpu_16(*tp), flen - 14);
    assert_int_equal(nstats(v).lso_frames, b.lso_frames + 1);
    assert_int_equal(pstats(v).drops[VSW_DROP_RX_TOO_BIG], pb.drops[VSW_DROP_RX_TOO_BIG]);
    expect_no_err(v, &b);
}

static void packet_msg__lso_ipv6_and_ipv4_options__taken(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    set_lso(v, true);
    uint32_t flen = 9000;
    uint32_t l4 = make_l4_frame(g_big, flen, MAC_OTHER, 6, IPPROTO_TCP, 0, 0);
    assert_int_equal(send_lso1(v, g_big, flen, lso_ppi(1440, l4, true)), 1);
    assert_true(v->rx[0]->ol_flags & RTE_MBUF_F_TX_IPV6);
    assert_int_equal(v->rx[0]->l3_len, 40);
    assert_int_equal(v->rx[0]->tso_segsz, 1440);
    free_rx(v);
    l4 = make_l4_frame(g_big, flen, MAC_OTHER, 4, IPPROTO_TCP, 8, 0);
    assert_int_equal(send_lso1(v, g_big, flen, lso_ppi(1400, l4, false)), 1);
    assert_int_equal(v->rx[0]->l3_len, 28);
    /* With a checksum PPI that says the same. */
    free_rx(v);
    uint8_t ppis[32];
    uint32_t pl = put_ppi(ppis, RNDIS_PPI_LSO, lso_ppi(1400, l4, false));
    pl += put_ppi(ppis + pl, RNDIS_PPI_CSUM_INFO,
                  RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP | (l4 << RNDIS_TXCSUM_THOFF_SHIFT));
    assert_int_equal(send_lso(v, g_big, flen, ppis, pl), 1);
    assert_true(v->rx[0]->ol_flags & RTE_MBUF_F_TX_TCP_SEG);
}

static void packet_msg__lso_tagged__offsets_behind_the_tags(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    set_lso(v, true);
    /* An 802.1Q tag in the frame: the TCP header offset counts it. */
    static uint8_t f[12004];
    uint32_t l4 = make_l4_frame(f + 4, sizeof(f) - 4, MAC_OTHER, 4, IPPROTO_TCP, 0, 0);
    memmove(f, f + 4, 12);
    f[12] = 0x81;
    f[13] = 0x00;
    f[14] = 0x00;
    f[15] = 0x05;
    f[16] = 0x08;
    f[17] = 0x00;
    l4 += 4;
    assert_int_equal(send_lso1(v, f, sizeof(f), lso_ppi(1448, l4, false)), 1);
    assert_int_equal(v->rx[0]->l2_len, 18);
    assert_int_equal(v->rx[0]->l3_len, 20);
    assert_true(v->rx[0]->ol_flags & RTE_MBUF_F_TX_TCP_SEG);
    free_rx(v);
    /* The offset of the untagged frame is inside the IP header now. */
    struct netvsp_stats b = nstats(v);
    assert_int_equal(send_lso1(v, f, sizeof(f), lso_ppi(1448, l4 - 4, false)), 0);
    expect_lso_drop(v, &b, NETVSP_LSO_HDR_OFFSET);
    /* The tag out of band (VLAN PPI) instead: metadata, offsets of the
     * untagged frame. */
    make_l4_frame(f, 12000, MAC_OTHER, 4, IPPROTO_TCP, 0, 0);
    uint8_t ppis[32];
    uint32_t pl = put_ppi(ppis, RNDIS_PPI_LSO, lso_ppi(1448, 34, false));
    pl += put_ppi(ppis + pl, RNDIS_PPI_VLAN, RNDIS_VLAN_MAKE(5, 0));
    assert_int_equal(send_lso(v, f, 12000, ppis, pl), 1);
    assert_true(v->rx[0]->ol_flags & RTE_MBUF_F_RX_VLAN);
    assert_int_equal(v->rx[0]->l2_len, 14);
    assert_int_equal(v->rx[0]->tso_segsz, 1448);
}

static void packet_msg__lso_not_enabled__dropped_counted_connection_kept(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint32_t flen = 9000;
    uint32_t l4 = make_l4_frame(g_big, flen, MAC_OTHER, 4, IPPROTO_TCP, 0, 0);
    struct netvsp_stats b = nstats(v);
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(send_lso1(v, g_big, flen, lso_ppi(1448, l4, false)), 0);
    expect_lso_drop(v, &b, NETVSP_LSO_NOT_ENABLED);
    assert_int_equal(pstats(v).drops[VSW_DROP_PORT_SPECIFIC],
                     pb.drops[VSW_DROP_PORT_SPECIFIC] + 1);
    /* IPv4 on, IPv6 not. */
    struct ndis_offload_params p = {.hdr = {NDIS_OBJTYPE_DEFAULT, 3, sizeof(p)},
                                    .lsov2_ip4 = NDIS_OFFLOAD_LSOV2_ON};
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &p, sizeof(p)),
                     RNDIS_STATUS_SUCCESS);
    l4 = make_l4_frame(g_big, flen, MAC_OTHER, 6, IPPROTO_TCP, 0, 0);
    b = nstats(v);
    assert_int_equal(send_lso1(v, g_big, flen, lso_ppi(1440, l4, true)), 0);
    expect_lso_drop(v, &b, NETVSP_LSO_NOT_ENABLED);
    /* LSOv1 (type bit clear) is never offered. */
    l4 = make_l4_frame(g_big, flen, MAC_OTHER, 4, IPPROTO_TCP, 0, 0);
    b = nstats(v);
    assert_int_equal(send_lso1(v, g_big, flen, lso_ppi(1448, l4, false) & ~RNDIS_LSO_TYPE_V2), 0);
    expect_lso_drop(v, &b, NETVSP_LSO_NOT_ENABLED);
    /* Turned off again. */
    set_lso(v, false);
    b = nstats(v);
    assert_int_equal(send_lso1(v, g_big, flen, lso_ppi(1448, l4, false)), 0);
    expect_lso_drop(v, &b, NETVSP_LSO_NOT_ENABLED);
    assert_true(nstats(v).connected);
}

static void packet_msg__lso_hostile_values__each_dropped_with_its_reason(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v); /* MTU 1500 */
    set_lso(v, true);
    const uint32_t flen = 20000;
    uint32_t l4;
    struct netvsp_stats b;
#define EXPECT_DROP(lso, why)                                                                  \
    do {                                                                                       \
        b = nstats(v);                                                                         \
        assert_int_equal(send_lso1(v, g_big, flen, (lso)), 0);                                 \
        expect_lso_drop(v, &b, (why));                                                         \
    } while (0)
    l4 = make_l4_frame(g_big, flen, MAC_OTHER, 4, IPPROTO_TCP, 0, 0);
    /* MSS 0; MSS so a segment is above the MTU; MSS past 16 bits. */
    EXPECT_DROP(lso_ppi(0, l4, false), NETVSP_LSO_MSS);
    EXPECT_DROP(lso_ppi(1461, l4, false), NETVSP_LSO_MSS);
    EXPECT_DROP(lso_ppi(RNDIS_LSO_MSS_MASK, l4, false), NETVSP_LSO_MSS);
    /* The largest MSS that fits is fine. */
    assert_int_equal(send_lso1(v, g_big, flen, lso_ppi(1460, l4, false)), 1);
    free_rx(v);
    /* Header offset inside the IP header, past the frame, at the end of
     * it, behind the real TCP header, and the IPv6 minimum for IPv4. */
    EXPECT_DROP(lso_ppi(1448, 20, false), NETVSP_LSO_HDR_OFFSET);
    EXPECT_DROP(lso_ppi(1448, 1000, false), NETVSP_LSO_HDR_OFFSET);
    EXPECT_DROP(lso_ppi(1448, 40, false), NETVSP_LSO_HDR_OFFSET);
    /* Header offset past a short frame. */
    b = nstats(v);
    assert_int_equal(send_lso1(v, g_big, 40, lso_ppi(1448, 34, false)), 0);
    expect_lso_drop(v, &b, NETVSP_LSO_HDR_OFFSET);
    /* UDP; an IPv4 fragment (more fragments, then an offset). */
    l4 = make_l4_frame(g_big, flen, MAC_OTHER, 4, IPPROTO_UDP, 0, 0);
    EXPECT_DROP(lso_ppi(1448, l4, false), NETVSP_LSO_NOT_TCP);
    l4 = make_l4_frame(g_big, flen, MAC_OTHER, 4, IPPROTO_TCP, 0, 0);
    g_big[20] = 0x20;
    EXPECT_DROP(lso_ppi(1448, l4, false), NETVSP_LSO_FRAGMENT);
    g_big[20] = 0x00;
    g_big[21] = 0x10;
    EXPECT_DROP(lso_ppi(1448, l4, false), NETVSP_LSO_FRAGMENT);
    /* IPv6 PPI on an IPv4 frame (whose options put TCP where IPv6's
     * would be); a checksum PPI that says UDP. */
    l4 = make_l4_frame(g_big, flen, MAC_OTHER, 4, IPPROTO_TCP, 20, 0);
    EXPECT_DROP(lso_ppi(1400, l4, true), NETVSP_LSO_HEADERS);
    l4 = make_l4_frame(g_big, flen, MAC_OTHER, 4, IPPROTO_TCP, 0, 0);
    uint8_t ppis[32];
    uint32_t pl = put_ppi(ppis, RNDIS_PPI_LSO, lso_ppi(1448, l4, false));
    pl += put_ppi(ppis + pl, RNDIS_PPI_CSUM_INFO,
                  RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_UDP | (l4 << RNDIS_TXCSUM_THOFF_SHIFT));
    b = nstats(v);
    assert_int_equal(send_lso(v, g_big, flen, ppis, pl), 0);
    expect_lso_drop(v, &b, NETVSP_LSO_HEADERS);
    /* A TCP data offset past the frame's end. */
    make_l4_frame(g_big, 60, MAC_OTHER, 4, IPPROTO_TCP, 0, 0);
    g_big[l4 + 12] = 0xf0;
    b = nstats(v);
    assert_int_equal(send_lso1(v, g_big, 60, lso_ppi(1448, l4, false)), 0);
    expect_lso_drop(v, &b, NETVSP_LSO_HEADERS);
    /* More payload than offered: one byte over, and far over. */
    uint32_t over = 14 + 20 + 20 + RNDIS_LSO_MAX_SIZE + 1;
    l4 = make_l4_frame(g_big, over, MAC_OTHER, 4, IPPROTO_TCP, 0, 0);
    b = nstats(v);
    assert_int_equal(send_lso1(v, g_big, over, lso_ppi(1448, l4, false)), 0);
    expect_lso_drop(v, &b, NETVSP_LSO_TOO_BIG);
    b = nstats(v);
    assert_int_equal(send_lso1(v, g_big, over - 1, lso_ppi(1448, l4, false)), 0);
    expect_lso_drop(v, &b, NETVSP_LSO_HEADERS); /* its IP length says one more */
    make_l4_frame(g_big, over - 1, MAC_OTHER, 4, IPPROTO_TCP, 0, 0);
    assert_int_equal(send_lso1(v, g_big, over - 1, lso_ppi(1448, l4, false)), 1);
#undef EXPECT_DROP
}

static void packet_msg__oversize_and_runt__dropped_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[1600], msg[1800];
    make_frame(frame, sizeof(frame), MAC_OTHER, 9);
    struct netvsp_stats b = nstats(v);
    struct vsw_port_stats pb = pstats(v);
    uint32_t len = build_packet(msg, NULL, 0, frame, FRAME_1514 + 1);
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 0);
    assert_int_equal(nstats(v).rx_frames_too_big, b.rx_frames_too_big + 1);
    assert_int_equal(pstats(v).drops[VSW_DROP_RX_TOO_BIG], pb.drops[VSW_DROP_RX_TOO_BIG] + 1);
    len = build_packet(msg, NULL, 0, frame, 13);
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 0);
    assert_int_equal(pstats(v).drops[VSW_DROP_RUNT], pb.drops[VSW_DROP_RUNT] + 1);
    expect_no_err(v, &b);
    len = build_packet(msg, NULL, 0, frame, FRAME_1514);
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 1);
}

static void tx_burst__frames__arrive_in_receive_buffer_with_rndis_header(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    static const uint32_t lens[] = {60, 14, 777, FRAME_1514};
    uint8_t frames[4][FRAME_1514];
    struct rte_mbuf *m[4];
    for (int i = 0; i < 4; i++) {
        make_frame(frames[i], lens[i], MAC_A, (uint8_t)(0x60 + i));
        m[i] = frame_mbuf(frames[i], lens[i]);
    }
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(to_guest(v, m, 4), 4);
    assert_int_equal(pstats(v).tx_packets, pb.tx_packets + 4);
    collect(v);
    assert_int_equal(v->nxfer, 1); /* one burst, one transfer */
    assert_int_equal(data_frames(v), 4);
    const struct xfer *x = &v->xfer[0];
    assert_int_equal(x->nvsp.send_buf_section_index, NVSP_SECTION_NONE);
    assert_int_equal(x->payload_len, NVSP_MSG_SIZE_61);
    for (int i = 0; i < 4; i++) {
        uint32_t len, csum;
        const uint8_t *d = rx_frame(v, &x->r[i], &len, &csum);
        assert_int_equal(len, lens[i]);
        assert_memory_equal(d, frames[i], lens[i]);
        assert_int_equal(csum, UINT32_MAX);
    }
    /* Distinct sub-allocations, none of the control ones. */
    for (int i = 0; i < 4; i++) {
        assert_true(x->r[i].byte_offset / v->sub_size >= CTRL_SUBS);
        for (int j = 0; j < i; j++)
            assert_int_not_equal(x->r[i].byte_offset, x->r[j].byte_offset);
    }
}

static void tx_burst__jumbo_frame__one_sub_allocation(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_ver(v, V61, 9014);
    static uint8_t frame[9014];
    make_frame(frame, sizeof(frame), MAC_A, 0x70);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
    collect(v);
    assert_int_equal(data_frames(v), 1);
    uint32_t len, csum;
    const uint8_t *d = rx_frame(v, &v->xfer[0].r[0], &len, &csum);
    assert_int_equal(len, sizeof(frame));
    assert_memory_equal(d, frame, sizeof(frame));
}

/* Small frames of one burst share sub-allocations, in order, each message
 * 64-byte aligned; a frame that does not fit behind them (a jumbo one)
 * opens a sub-allocation of its own; every frame arrives intact. */
static void tx_burst__small_frames__packed_into_shared_sub_allocations(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_ver(v, V61, 9014);
    enum { N = 24 };
    static uint8_t small[N][64], jumbo[9014];
    struct rte_mbuf *m[N + 1];
    for (unsigned i = 0; i < N; i++) {
        make_frame(small[i], sizeof(small[i]), MAC_A, (uint8_t)(0x40 + i));
        m[i < N / 2 ? i : i + 1] = frame_mbuf(small[i], sizeof(small[i]));
    }
    make_frame(jumbo, sizeof(jumbo), MAC_A, 0x7f);
    m[N / 2] = frame_mbuf(jumbo, sizeof(jumbo));
    assert_int_equal(to_guest(v, m, N + 1), N + 1);
    collect(v);
    assert_int_equal(v->nxfer, 1);
    const struct xfer *x = &v->xfer[0];
    assert_int_equal(x->nranges, N + 1);
    uint32_t subs[N + 1], nsubs = 0;
    for (uint32_t j = 0; j < x->nranges; j++) {
        uint32_t len, csum, s = x->r[j].byte_offset / v->sub_size;
        const uint8_t *d = rx_frame(v, &x->r[j], &len, &csum);
        bool big = j == N / 2;
        unsigned k = j < N / 2 ? j : j - 1;
        assert_int_equal(len, big ? sizeof(jumbo) : sizeof(small[0]));
        assert_memory_equal(d, big ? jumbo : small[k], len);
        assert_int_equal(x->r[j].byte_offset % 64, 0);
        if (nsubs == 0 || subs[nsubs - 1] != s) {
            subs[nsubs++] = s;
            /* A new one starts at its beginning. */
            assert_int_equal(x->r[j].byte_offset % v->sub_size, 0);
        } else {
            assert_true(x->r[j].byte_offset > x->r[j - 1].byte_offset);
        }
    }
    /* The first half shares one, the jumbo frame fills one, the second
     * half shares a third. */
    assert_int_equal(nsubs, 3);
    complete_xfer_raw(v, x->tid);
    pump(v);
}

/* A frame of contract A: its sender left the L4 (and for IPv4 maybe the
 * IP header) checksum to the network. */
static struct rte_mbuf *csum_request_mbuf(const uint8_t *f, uint32_t len, unsigned ipv,
                                          bool tcp, uint32_t l3_len)
{
    struct rte_mbuf *m = frame_mbuf(f, len);
    m->ol_flags |= (ipv == 4 ? RTE_MBUF_F_TX_IPV4 : RTE_MBUF_F_TX_IPV6) |
                   (tcp ? RTE_MBUF_F_TX_TCP_CKSUM : RTE_MBUF_F_TX_UDP_CKSUM);
    m->l2_len = 14;
    m->l3_len = l3_len;
    return m;
}

static void tx_burst__l4_checksum_left_to_network__finished_in_copy_then_claimed(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t f[4][300];
    make_l4_frame(f[0], 300, MAC_A, 4, IPPROTO_TCP, 0, 12);
    make_l4_frame(f[1], 300, MAC_A, 4, IPPROTO_UDP, 0, 0);
    make_l4_frame(f[2], 299, MAC_A, 6, IPPROTO_TCP, 0, 0);
    make_l4_frame(f[3], 300, MAC_A, 4, IPPROTO_TCP, 8, 0);
    struct rte_mbuf *m[4] = {
        csum_request_mbuf(f[0], 300, 4, true, 20), csum_request_mbuf(f[1], 300, 4, false, 20),
        csum_request_mbuf(f[2], 299, 6, true, 40), csum_request_mbuf(f[3], 300, 4, true, 28)};
    /* The mbuf the switch hands over may be shared: it stays as it was. */
    struct rte_mbuf *keep = rte_pktmbuf_clone(m[0], g_pool);
    assert_non_null(keep);
    assert_int_equal(to_guest(v, m, 4), 4);
    assert_memory_equal(rte_pktmbuf_mtod(keep, uint8_t *), f[0], 300);
    rte_pktmbuf_free(keep);
    collect(v);
    assert_int_equal(data_frames(v), 4);
    static const uint32_t want[] = {RNDIS_RXCSUM_TCP_OK, RNDIS_RXCSUM_UDP_OK, RNDIS_RXCSUM_TCP_OK,
                                    RNDIS_RXCSUM_TCP_OK};
    for (int i = 0; i < 4; i++) {
        uint32_t len, csum;
        const uint8_t *d = rx_frame(v, &v->xfer[0].r[i], &len, &csum);
        assert_int_equal(csum, want[i]);
        assert_true(l4_csum_ok(d, len));
        assert_false(l4_csum_ok(f[i], len));
        /* Only the checksum field differs from what was sent. */
        uint32_t field = 14 + (i == 2 ? 40 : i == 3 ? 28 : 20) + (i == 1 ? 6 : 16);
        assert_memory_equal(d, f[i], field);
        assert_memory_equal(d + field + 2, f[i] + field + 2, len - field - 2);
    }
}

static void tx_burst__checksum_request_not_matching_frame__delivered_without_claim(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t f[200];
    make_l4_frame(f, sizeof(f), MAC_A, 4, IPPROTO_TCP, 0, 0);
    struct rte_mbuf *m[4] = {
        /* l3_len not the IPv4 header's length */
        csum_request_mbuf(f, sizeof(f), 4, true, 24),
        /* UDP asked of a TCP frame */
        csum_request_mbuf(f, sizeof(f), 4, false, 20),
        /* IPv6 asked of an IPv4 frame */
        csum_request_mbuf(f, sizeof(f), 6, true, 40),
        /* transport header past the frame */
        csum_request_mbuf(f, 40, 4, true, 20),
    };
    assert_int_equal(to_guest(v, m, 4), 4);
    collect(v);
    assert_int_equal(data_frames(v), 4);
    for (int i = 0; i < 4; i++) {
        uint32_t len, csum;
        const uint8_t *d = rx_frame(v, &v->xfer[0].r[i], &len, &csum);
        assert_int_equal(csum, 0);
        assert_memory_equal(d, f, len);
    }
}

static void tx_burst__verified_by_uplink_or_unknown__claim_only_the_verified(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t f[2][200];
    make_l4_frame(f[0], 200, MAC_A, 4, IPPROTO_TCP, 0, 0);
    make_l4_frame(f[1], 200, MAC_A, 6, IPPROTO_UDP, 0, 0);
    struct rte_mbuf *m[4] = {frame_mbuf(f[0], 200), frame_mbuf(f[1], 200), frame_mbuf(f[0], 200),
                             frame_mbuf(f[0], 200)};
    m[0]->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_GOOD | RTE_MBUF_F_RX_IP_CKSUM_GOOD;
    m[1]->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    m[2]->ol_flags |= RTE_MBUF_F_RX_L4_CKSUM_BAD;
    assert_int_equal(to_guest(v, m, 4), 4);
    collect(v);
    static const uint32_t want[] = {RNDIS_RXCSUM_TCP_OK | RNDIS_RXCSUM_IP_OK, RNDIS_RXCSUM_UDP_OK,
                                    0, UINT32_MAX};
    for (int i = 0; i < 4; i++) {
        uint32_t len, csum;
        const uint8_t *d = rx_frame(v, &v->xfer[0].r[i], &len, &csum);
        assert_int_equal(csum, want[i]);
        assert_memory_equal(d, f[i == 1], 200);
    }
}

/* A guest that takes receive coalescing: NVSP 6.1 with NDIS_CONFIG's RSC
 * bit, RSC turned on for both IP versions, receive checksums on. */
static void bring_up_rsc(struct vm *v, uint32_t ndis_mtu)
{
    v->caps_extra = NVSP_CAP_RSC;
    bring_up_ver(v, V61, ndis_mtu);
    struct ndis_offload_params p = {.hdr = {NDIS_OBJTYPE_DEFAULT, 3, sizeof(p)},
                                    .tcp4_csum = NDIS_OFFLOAD_PARAM_TXRX,
                                    .tcp6_csum = NDIS_OFFLOAD_PARAM_TXRX,
                                    .rsc_ip4 = NDIS_OFFLOAD_RSC_ON,
                                    .rsc_ip6 = NDIS_OFFLOAD_RSC_ON};
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &p, sizeof(p)),
                     RNDIS_STATUS_SUCCESS);
    inbox_clear(v);
}

/* A large segment as the switch hands it over (contract B), made from a
 * frame with real headers by the switch's own validator. */
static struct rte_mbuf *tso_mbuf(const uint8_t *f, uint32_t len, uint32_t l4, uint16_t mss,
                                 unsigned ipv)
{
    struct rte_mbuf *m = frame_mbuf(f, len);
    assert_int_equal(vsw_frame_tso_request(m, l4, mss, ipv, 9000), 0);
    return m;
}

/* What the fake guest makes of the ranges of transfer x from first on, as
 * Linux's netvsc_receive / rsc_add_data do: a range without the packet-id
 * PPI is a packet of its own; with it, the first fragment starts a packet
 * (its checksum PPI stands for the whole), the last ends it. The packet
 * goes to out (its length returned, 0 if the guest would drop it), *csum
 * gets the first range's checksum PPI, *used the ranges it took. */
static uint32_t guest_reassemble(const struct vm *v, const struct xfer *x, uint32_t first,
                                 uint8_t *out, uint32_t cap, uint32_t *csum, uint32_t *used)
{
    uint32_t len = 0;
    int pkt_id = -1;
    for (uint32_t i = first; i < x->nranges; i++) {
        uint32_t flen, cs;
        const uint8_t *d = rx_frame(v, &x->r[i], &flen, &cs);
        const uint8_t *msg = v->rbuf + x->r[i].byte_offset;
        struct rndis_packet_msg pm;
        memcpy(&pm, msg, sizeof(pm));
        struct rndis_pktinfo_id pid = {0};
        bool has_id = false;
        for (uint32_t p = 0; p < pm.ppi_len;) {
            struct rndis_ppi r;
            memcpy(&r, msg + 8 + pm.ppi_offset + p, sizeof(r));
            if (r.type == RNDIS_PPI_PKTINFO_ID) {
                memcpy(&pid, msg + 8 + pm.ppi_offset + p + r.ppi_offset, sizeof(pid));
                has_id = true;
            }
            p += r.size;
        }
        if (i == first)
            *csum = cs;
        else if (cs != UINT32_MAX)
            return 0; /* only the first says */
        assert_true(len + flen <= cap);
        memcpy(out + len, d, flen);
        len += flen;
        *used = i - first + 1;
        if (!has_id || !(pid.flags & RNDIS_PKTINFO_SUBALLOC))
            return i == first ? len : 0;
        if (pid.version != RNDIS_PKTINFO_ID_V1)
            return 0;
        if ((i == first) != !!(pid.flags & RNDIS_PKTINFO_FIRST_FRAG))
            return 0;
        if (pkt_id >= 0 && pid.pkt_id != pkt_id)
            return 0;
        pkt_id = pid.pkt_id;
        if (pid.flags & RNDIS_PKTINFO_LAST_FRAG)
            return len;
    }
    return 0; /* no last fragment in this transfer: Linux drops it */
}

static uint8_t g_rsc[64u << 10];

static void tx_burst__large_segment_to_rsc_guest__one_packet_over_sections(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_rsc(v, FRAME_1514);
    assert_int_equal(vsw_port_tx_offloads(v->port), VSW_TX_CSUM | VSW_TX_TSO);
    static uint8_t f4[40000], f6[30001];
    uint32_t l4a = make_l4_frame(f4, sizeof(f4), MAC_A, 4, IPPROTO_TCP, 0, 12);
    uint32_t l4b = make_l4_frame(f6, sizeof(f6), MAC_A, 6, IPPROTO_TCP, 0, 0);
    uint8_t small[200];
    make_l4_frame(small, sizeof(small), MAC_A, 4, IPPROTO_UDP, 0, 0);
    struct rte_mbuf *m[3] = {tso_mbuf(f4, sizeof(f4), l4a, 1448, 4), frame_mbuf(small, 200),
                             tso_mbuf(f6, sizeof(f6), l4b, 1440, 6)};
    struct netvsp_stats b = nstats(v);
    assert_int_equal(to_guest(v, m, 3), 3);
    collect(v);
    struct netvsp_stats a = nstats(v);
    assert_int_equal(a.rsc_frames, b.rsc_frames + 2);
    /* Every fragment of a packet in one transfer, in order. */
    uint32_t got[3] = {0}, csum[3] = {0}, used = 0, k = 0;
    const uint8_t *want[3] = {f4, small, f6};
    const uint32_t wlen[3] = {sizeof(f4), sizeof(small), sizeof(f6)};
    for (unsigned t = 0; t < v->nxfer && k < 3; t++) {
        const struct xfer *x = &v->xfer[t];
        if (x->nvsp.channel_type != NVSP_CHANNEL_TYPE_DATA)
            continue;
        for (uint32_t r = 0; r < x->nranges && k < 3; r += used, k++) {
            got[k] = guest_reassemble(v, x, r, g_rsc, sizeof(g_rsc), &csum[k], &used);
            assert_int_equal(got[k], wlen[k]);
            /* Headers and payload as sent, the checksums right. */
            assert_true(l4_csum_ok(g_rsc, got[k]) || k == 1);
            uint32_t l4 = k == 0 ? l4a : k == 2 ? l4b : 0;
            if (k != 1) {
                /* The sender's IPv4 header checksum was right already. */
                assert_memory_equal(g_rsc, want[k], l4 + 16);
                assert_memory_equal(g_rsc + l4 + 18, want[k] + l4 + 18, wlen[k] - l4 - 18);
            }
            if (k == 0)
                assert_true(used > 20);
        }
    }
    assert_int_equal(k, 3);
    assert_int_equal(csum[0], RNDIS_RXCSUM_TCP_OK | RNDIS_RXCSUM_IP_OK);
    assert_int_equal(csum[1], UINT32_MAX);
    assert_int_equal(csum[2], RNDIS_RXCSUM_TCP_OK);
    expect_no_err(v, &b);
}

static void tx_burst__large_segment_to_rss_guest__first_fragment_carries_hash(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_rsc(v, FRAME_1514);
    struct {
        struct ndis_rss_params p;
        uint32_t itab[NDIS_RSS_ITAB_MAX];
        uint8_t key[NDIS_RSS_KEY_LEN];
    } __attribute__((packed)) rp = {
        .p = {.hdr = {NDIS_OBJTYPE_RSS_PARAMS, 2, sizeof(rp.p)},
              .hash_info = NDIS_HASH_FUNCTION_TOEPLITZ | NDIS_HASH_TCP_IPV4 | NDIS_HASH_IPV4,
              .indirect_tabsize = sizeof(rp.itab),
              .indirect_taboffset = sizeof(rp.p),
              .hashkey_size = NDIS_RSS_KEY_LEN,
              .hashkey_offset = sizeof(rp.p) + sizeof(rp.itab)}};
    for (uint32_t i = 0; i < NDIS_RSS_KEY_LEN; i++)
        rp.key[i] = (uint8_t)(i * 37 + 11);
    assert_int_equal(rndis_set(v, RNDIS_OID_GEN_RECEIVE_SCALE_PARAMETERS, &rp, sizeof(rp)),
                     RNDIS_STATUS_SUCCESS);
    static uint8_t big[20000];
    uint32_t l4 = make_l4_frame(big, sizeof(big), MAC_A, 4, IPPROTO_TCP, 0, 0);
    /* A small frame of the same flow: its hash is the one to expect. */
    uint8_t small[200];
    memcpy(small, big, l4 + 20);
    uint16_t tl = rte_cpu_to_be_16(sizeof(small) - 14);
    memcpy(small + 14 + offsetof(struct rte_ipv4_hdr, total_length), &tl, 2);
    struct rte_mbuf *m[2] = {tso_mbuf(big, sizeof(big), l4, 1448, 4),
                             frame_mbuf(small, sizeof(small))};
    assert_int_equal(to_guest(v, m, 2), 2);
    collect(v);
    const struct xfer *x = NULL;
    for (unsigned t = 0; t < v->nxfer && !x; t++)
        if (v->xfer[t].nvsp.channel_type == NVSP_CHANNEL_TYPE_DATA)
            x = &v->xfer[t];
    assert_non_null(x);
    uint32_t used = 0, csum, hv[2], hi;
    assert_int_equal(guest_reassemble(v, x, 0, g_rsc, sizeof(g_rsc), &csum, &used), sizeof(big));
    assert_true(used > 1 && used < x->nranges);
    assert_true(range_ppi(v, &x->r[0], RNDIS_PPI_HASH_VALUE, &hv[0]));
    assert_true(range_ppi(v, &x->r[0], RNDIS_PPI_HASH_INFO, &hi));
    assert_int_equal(hi, NDIS_HASH_FUNCTION_TOEPLITZ | NDIS_HASH_TCP_IPV4);
    assert_false(range_ppi(v, &x->r[1], RNDIS_PPI_HASH_VALUE, &hv[1]));
    assert_true(range_ppi(v, &x->r[used], RNDIS_PPI_HASH_VALUE, &hv[1]));
    assert_int_equal(hv[0], hv[1]);
}

static void tx_burst__large_segment_without_rsc__dropped_too_big(void **state)
{
    struct vm *v = F(state)->a;
    /* The guest can take RSC but did not turn it on; then one that cannot. */
    for (int i = 0; i < 2; i++) {
        v->caps_extra = i == 0 ? NVSP_CAP_RSC : 0;
        if (i)
            reopen(v);
        bring_up_ver(v, V61, FRAME_1514);
        assert_int_equal(vsw_port_tx_offloads(v->port) & VSW_TX_TSO, 0);
        static uint8_t f[20000];
        uint32_t l4 = make_l4_frame(f, sizeof(f), MAC_A, 4, IPPROTO_TCP, 0, 0);
        struct rte_mbuf *m = tso_mbuf(f, sizeof(f), l4, 1448, 4);
        struct vsw_port_stats pb = pstats(v);
        assert_int_equal(to_guest(v, &m, 1), 0);
        assert_int_equal(pstats(v).drops[VSW_DROP_TOO_BIG], pb.drops[VSW_DROP_TOO_BIG] + 1);
        assert_int_equal(nstats(v).rsc_frames, 0);
    }
    /* Without the capability RSC is neither offered nor taken. */
    struct ndis_offload q = {.hdr = {NDIS_OBJTYPE_OFFLOAD, 3, NDIS_OFFLOAD_SIZE_REV3}}, a;
    uint32_t len = sizeof(a);
    assert_int_equal(rndis_query(v, RNDIS_OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES, &q,
                                 sizeof(q), &a, &len),
                     RNDIS_STATUS_SUCCESS);
    assert_int_equal(a.rsc_ip4 | a.rsc_ip6, 0);
    struct ndis_offload_params p = {.hdr = {NDIS_OBJTYPE_DEFAULT, 3, sizeof(p)},
                                    .rsc_ip4 = NDIS_OFFLOAD_RSC_ON,
                                    .rsc_ip6 = NDIS_OFFLOAD_RSC_ON};
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &p, sizeof(p)),
                     RNDIS_STATUS_NOT_SUPPORTED);
    assert_false(nstats(v).rsc);
}

static void rndis_offload__rsc_capable_guest__offered_and_port_takes_large_segments(void **state)
{
    struct vm *v = F(state)->a;
    v->caps_extra = NVSP_CAP_RSC;
    bring_up_ver(v, V61, FRAME_1514);
    struct ndis_offload q = {.hdr = {NDIS_OBJTYPE_OFFLOAD, 3, NDIS_OFFLOAD_SIZE_REV3}}, a;
    uint32_t len = sizeof(a);
    assert_int_equal(rndis_query(v, RNDIS_OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES, &q,
                                 sizeof(q), &a, &len),
                     RNDIS_STATUS_SUCCESS);
    assert_int_equal(a.rsc_ip4, 1);
    assert_int_equal(a.rsc_ip6, 1);
    /* One version on is not enough for the port (the switch cannot cut
     * only some); both are. */
    struct ndis_offload_params p = {.hdr = {NDIS_OBJTYPE_DEFAULT, 3, sizeof(p)},
                                    .rsc_ip4 = NDIS_OFFLOAD_RSC_ON};
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &p, sizeof(p)),
                     RNDIS_STATUS_SUCCESS);
    assert_int_equal(vsw_port_tx_offloads(v->port) & VSW_TX_TSO, 0);
    p.rsc_ip4 = 0;
    p.rsc_ip6 = NDIS_OFFLOAD_RSC_ON;
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &p, sizeof(p)),
                     RNDIS_STATUS_SUCCESS);
    assert_int_equal(vsw_port_tx_offloads(v->port), VSW_TX_TSO);
    assert_true(nstats(v).rsc);
    p.rsc_ip6 = NDIS_OFFLOAD_RSC_OFF;
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &p, sizeof(p)),
                     RNDIS_STATUS_SUCCESS);
    assert_int_equal(vsw_port_tx_offloads(v->port), 0);
}

static void tx_burst__large_segment_bad_ip_length__refused_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_rsc(v, FRAME_1514);
    static uint8_t f[20000];
    uint32_t l4 = make_l4_frame(f, sizeof(f), MAC_A, 4, IPPROTO_TCP, 0, 0);
    struct rte_mbuf *m = tso_mbuf(f, sizeof(f), l4, 1448, 4);
    /* A producer that broke B after the fact. */
    rte_pktmbuf_mtod(m, uint8_t *)[16] ^= 0x10;
    struct netvsp_stats b = nstats(v);
    assert_int_equal(to_guest(v, &m, 1), 0);
    assert_int_equal(nstats(v).tx_rsc_refused, b.tx_rsc_refused + 1);
    collect(v);
    assert_int_equal(data_frames(v), 0);
}

/* Frames to each destination, and how many the guest got. */
static unsigned deliver_mix(struct vm *v)
{
    const uint8_t *dst[] = {MAC_A, MAC_OTHER, MAC_BCAST, MAC_MCAST};
    struct rte_mbuf *m[4];
    uint8_t frame[64];
    for (int i = 0; i < 4; i++) {
        make_frame(frame, sizeof(frame), dst[i], (uint8_t)i);
        m[i] = frame_mbuf(frame, sizeof(frame));
    }
    inbox_clear(v);
    to_guest(v, m, 4);
    collect(v);
    unsigned n = data_frames(v);
    complete_all(v);
    return n;
}

static void tx_burst__packet_filter__respected(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    static const struct {
        uint32_t filter;
        unsigned delivered;
    } cases[] = {
        {RNDIS_FILTER_DIRECTED, 1},
        {RNDIS_FILTER_BROADCAST, 1},
        {RNDIS_FILTER_MULTICAST, 1},
        {RNDIS_FILTER_ALL_MULTICAST, 1},
        {RNDIS_FILTER_DIRECTED | RNDIS_FILTER_MULTICAST | RNDIS_FILTER_BROADCAST, 3},
        {RNDIS_FILTER_PROMISCUOUS, 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        set_filter(v, cases[i].filter);
        struct netvsp_stats b = nstats(v);
        assert_int_equal(deliver_mix(v), cases[i].delivered);
        assert_int_equal(nstats(v).tx_filtered, b.tx_filtered + 4 - cases[i].delivered);
    }
    /* Filter 0: the link is down and frames are dropped as such. */
    set_filter(v, 0);
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(deliver_mix(v), 0);
    assert_int_equal(pstats(v).drops[VSW_DROP_LINK_DOWN], pb.drops[VSW_DROP_LINK_DOWN] + 4);
}

static void tx_burst__frame_above_frame_size__dropped_too_big(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[FRAME_1514 + 1];
    make_frame(frame, sizeof(frame), MAC_A, 1);
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 0);
    assert_int_equal(pstats(v).drops[VSW_DROP_TOO_BIG], pb.drops[VSW_DROP_TOO_BIG] + 1);
    assert_int_equal(collect(v), 0);
}

static void tx_burst__before_rndis_ready__dropped_link_down(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 1);
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 0);
    assert_int_equal(pstats(v).drops[VSW_DROP_LINK_DOWN], pb.drops[VSW_DROP_LINK_DOWN] + 1);
}

/* Bursts of 64-byte frames to the guest until one is refused; returns the
 * frames delivered. Transfers stay outstanding (the ring is emptied). */
static uint32_t fill_rbuf(struct vm *v, const uint8_t *frame, uint32_t len)
{
    uint32_t sent = 0;
    for (;;) {
        struct rte_mbuf *m[BURST];
        for (uint16_t i = 0; i < BURST; i++)
            m[i] = frame_mbuf(frame, len);
        uint16_t k = to_guest(v, m, BURST);
        sent += k;
        collect(v);
        if (k < BURST)
            return sent;
    }
}

static void completion__frees_sub_allocations__delivery_resumes(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint32_t ndata = v->nsub - CTRL_SUBS;
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 0x11);
    struct netvsp_stats b = nstats(v);
    struct vsw_port_stats pb = pstats(v);
    /* Small frames share sub-allocations: the buffer holds several per
     * sub-allocation (one each, before). */
    uint32_t held = fill_rbuf(v, frame, sizeof(frame));
    assert_int_equal(data_frames(v), held);
    assert_true(held >= 4 * ndata);
    assert_true(nstats(v).tx_no_buffer > b.tx_no_buffer);
    assert_true(pstats(v).drops[VSW_DROP_QUEUE_FULL] > pb.drops[VSW_DROP_QUEUE_FULL]);
    /* Give one transfer back: exactly its sub-allocations come free. */
    struct xfer first = v->xfer[0];
    bool mine[4096] = {false};
    assert_true(v->nsub <= 4096);
    for (uint32_t j = 0; j < first.nranges; j++)
        mine[first.r[j].byte_offset / v->sub_size] = true;
    complete_xfer_raw(v, first.tid);
    pump(v);
    /* The same completion again is for nothing outstanding. */
    b = nstats(v);
    complete_xfer_raw(v, first.tid);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_COMPLETION_ID);
    inbox_clear(v);
    uint32_t again = fill_rbuf(v, frame, sizeof(frame));
    assert_true(again >= first.nranges);
    assert_int_equal(data_frames(v), again);
    /* The ranges reuse what was given back, and nothing else. */
    for (unsigned i = 0; i < v->nxfer; i++)
        for (uint32_t j = 0; j < v->xfer[i].nranges; j++)
            assert_true(mine[v->xfer[i].r[j].byte_offset / v->sub_size]);
}

/*
 * A transfer's transaction id is the index of its first receive section and
 * nothing else: OpenVMM's netvsp sends the sub-allocation index (its
 * control answers use "id as u64"), as vmswitch does, and DPDK's netvsc
 * (hn_nvs_handle_rxbuf) uses the id to index its section table, dropping a
 * transfer whose id is not a section. Linux and FreeBSD echo it back.
 */
static void xfer__transaction_id__index_of_first_section(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    /* A control answer's transfer. */
    struct rndis_keepalive_req k = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(k)},
                                    .req_id = 77};
    inbox_clear(v);
    rndis_send_section(v, CTRL_SEC, NVSP_CHANNEL_TYPE_CONTROL, &k, sizeof(k));
    pump(v);
    collect(v);
    assert_int_equal(v->nxfer, 1);
    assert_int_equal(v->xfer[0].tid, v->xfer[0].r[0].byte_offset / v->sub_size);
    assert_true(v->xfer[0].tid < CTRL_SUBS);
    complete_all(v);
    /* Data transfers, one frame and a batch. */
    inbox_clear(v);
    uint8_t frame[80];
    make_frame(frame, sizeof(frame), MAC_A, 0x21);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
    struct rte_mbuf *m[5];
    for (int i = 0; i < 5; i++)
        m[i] = frame_mbuf(frame, sizeof(frame));
    assert_int_equal(to_guest(v, m, 5), 5);
    collect(v);
    assert_int_equal(v->nxfer, 2);
    for (unsigned i = 0; i < v->nxfer; i++) {
        const struct xfer *x = &v->xfer[i];
        assert_int_equal(x->tid, x->r[0].byte_offset / v->sub_size);
        assert_true(x->tid >= CTRL_SUBS && x->tid < v->nsub);
    }
    /* Completing exactly those ids frees them, without complaint. */
    struct netvsp_stats b = nstats(v);
    complete_all(v);
    expect_no_err(v, &b);
}

static void completion__unknown_transaction_id__counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 0x12);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
    collect(v);
    uint64_t real = v->xfer[0].tid;
    const uint64_t bad[] = {0, 1, 0x1234, ~0ull, real + 1, real ^ (1ull << 40),
                            (real & ~0xffffffffull) | 0xfffffff0u};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct netvsp_stats b = nstats(v);
        complete_xfer_raw(v, bad[i]);
        pump(v);
        expect_err(v, &b, NETVSP_ERR_COMPLETION_ID);
    }
    struct netvsp_stats b = nstats(v);
    complete_xfer_raw(v, real);
    pump(v);
    expect_no_err(v, &b);
}

static void tx_burst__ring_to_guest_full__dropped_counted_then_resumes(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 0x14);
    struct netvsp_stats b = nstats(v);
    struct vsw_port_stats pb = pstats(v);
    /* The guest does not read its ring: one transfer per frame fills it
     * long before the receive buffer runs out. */
    unsigned sent = 0;
    while (sent < 4096 && frame_to_guest(v, frame, sizeof(frame)) == 1)
        sent++;
    assert_true(sent > 0 && sent < v->nsub - CTRL_SUBS);
    assert_int_equal(nstats(v).tx_ring_full, b.tx_ring_full + 1);
    assert_int_equal(nstats(v).tx_no_buffer, b.tx_no_buffer);
    assert_int_equal(pstats(v).drops[VSW_DROP_QUEUE_FULL], pb.drops[VSW_DROP_QUEUE_FULL] + 1);
    /* Its sub-allocation went back: after the guest catches up, all flows. */
    collect(v);
    assert_int_equal(data_frames(v), sent);
    complete_all(v);
    inbox_clear(v);
    for (unsigned i = 0; i < v->nsub - CTRL_SUBS; i += 64) {
        assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
        collect(v);
        complete_all(v);
    }
    expect_no_err(v, &b);
}

static void rndis_pkt__send_section_out_of_range__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct rndis_keepalive_req k = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(k)}};
    memcpy(section(v, 0), &k, sizeof(k));
    memcpy(section(v, 8), &k, sizeof(k));
    static const uint32_t cases[][2] = {
        {NSECTIONS, sizeof(struct rndis_keepalive_req)},   /* one past the last */
        {0x2aaaab, sizeof(struct rndis_keepalive_req)},    /* index * 6144 wraps 32 bits to 8192 */
        {0xfffffffeu, sizeof(struct rndis_keepalive_req)}, /* 64-bit start far beyond */
        {8, NVSP_SEND_SECTION_SIZE + 1},                   /* size above a section */
        {8, 0xffffffffu},                                  /* size wraps start + size */
        {8, 0},                                            /* empty */
        {NSECTIONS - 1, 0xfffffff0u},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct netvsp_stats b = nstats(v);
        inbox_clear(v);
        uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_CONTROL, cases[i][0], cases[i][1]);
        pump(v);
        collect(v);
        expect_err(v, &b, NETVSP_ERR_SECTION);
        assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                         NVSP_STAT_INVALID_RNDIS_PKT);
        assert_int_equal(v->nxfer, 0); /* not answered */
    }
    /* The last whole section is fine. */
    memcpy(section(v, NSECTIONS - 1), &k, sizeof(k));
    inbox_clear(v);
    uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_CONTROL, NSECTIONS - 1, sizeof(k));
    pump(v);
    collect(v);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    assert_int_equal(v->nxfer, 1);
}

static void rndis_pkt__section_before_send_buf__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, V61, V61, NULL, NULL), NVSP_STAT_SUCCESS);
    ndis_config(v, FRAME_1514);
    ndis_ver(v);
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
    struct netvsp_stats b = nstats(v);
    inbox_clear(v);
    uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_CONTROL, 0, 24);
    pump(v);
    collect(v);
    expect_err(v, &b, NETVSP_ERR_SECTION);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                     NVSP_STAT_INVALID_RNDIS_PKT);
}

static void rndis_pkt__before_recv_buf__not_ready(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, V61, V61, NULL, NULL), NVSP_STAT_SUCCESS);
    struct netvsp_stats b = nstats(v);
    inbox_clear(v);
    uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_CONTROL, NVSP_SECTION_NONE, 0);
    pump(v);
    collect(v);
    expect_err(v, &b, NETVSP_ERR_NOT_READY);
    assert_int_not_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
}

static void gpa_direct__bad_ranges__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[100], msg[200];
    make_frame(frame, sizeof(frame), MAC_OTHER, 1);
    uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    memcpy(v->scratch, msg, len);
    uint64_t sp = v->scratch_pfn;
    struct grange one = scratch_range(v, 0, 0, len);
    struct {
        const char *what;
        struct grange r[2];
        uint32_t n, count_field;
    } cases[] = {
        {"pfn just past memory", {{len, 0, 1, {MEM_PAGES}}}, 1, 1},
        {"pfn far past memory", {{len, 0, 1, {1ull << 52}}}, 1, 1},
        {"pfn that wraps when shifted", {{len, 0, 1, {0xfffffffffffff000ull}}}, 1, 1},
        {"second page outside", {{4096, 100, 2, {sp, MEM_PAGES + 5}}}, 1, 1},
        {"byte_offset 4096", {{len, 4096, 1, {sp}}}, 1, 1},
        {"byte_offset huge", {{len, 0xfffffff0u, 1, {sp}}}, 1, 1},
        {"byte_count 0", {{0, 0, 1, {sp}}}, 1, 1},
        {"range count 0", {one}, 1, 0},
        {"range count above records", {one}, 1, 2},
        {"range count huge", {one}, 1, 0xffffffffu},
        {"fewer pfns than bytes", {{8192, 0, 1, {sp}}}, 1, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t ext[512];
        uint32_t el = gpa_ext(ext, cases[i].r, cases[i].n, cases[i].count_field);
        struct netvsp_stats b = nstats(v);
        inbox_clear(v);
        uint64_t tid = rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, NVSP_SECTION_NONE, 0, ext, el);
        assert_int_equal(pump(v), 0);
        collect(v);
        if (nstats(v).errors[NETVSP_ERR_GPA_RANGE] != b.errors[NETVSP_ERR_GPA_RANGE] + 1)
            fail_msg("GPA-direct case '%s' not counted", cases[i].what);
        expect_err(v, &b, NETVSP_ERR_GPA_RANGE);
        assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                         NVSP_STAT_INVALID_RNDIS_PKT);
    }
    /* 33 ranges: more than any guest sends (Linux: 32). */
    struct grange many[33];
    for (int i = 0; i < 33; i++)
        many[i] = scratch_range(v, 0, (uint32_t)i * 8u, 8);
    uint8_t ext[1024];
    uint32_t el = gpa_ext(ext, many, 33, 33);
    struct netvsp_stats b = nstats(v);
    rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, NVSP_SECTION_NONE, 0, ext, el);
    assert_int_equal(pump(v), 0);
    expect_err(v, &b, NETVSP_ERR_GPA_RANGE);
    /* And the good one goes through. */
    el = gpa_ext(ext, &one, 1, 1);
    rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, NVSP_SECTION_NONE, 0, ext, el);
    assert_int_equal(pump(v), 1);
    assert_mbuf_eq(v->rx[0], frame, sizeof(frame));
}

static void rndis__message_length_inconsistent__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct rndis_keepalive_req k = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(k)}};
    static const struct {
        uint32_t msg_len, supplied;
    } cases[] = {
        {sizeof(struct rndis_keepalive_req) + 1, sizeof(struct rndis_keepalive_req)},
        {4096, sizeof(struct rndis_keepalive_req)},
        {0xffffffffu, sizeof(struct rndis_keepalive_req)},
        {7, sizeof(struct rndis_keepalive_req)},
        {0, sizeof(struct rndis_keepalive_req)},
        {sizeof(struct rndis_keepalive_req), 4}, /* not even a header supplied */
        {8, 8},                                  /* a header only: KEEPALIVE needs 12 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        k.hdr.len = cases[i].msg_len;
        memcpy(section(v, 2), &k, sizeof(k));
        struct netvsp_stats b = nstats(v);
        inbox_clear(v);
        uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_CONTROL, 2, cases[i].supplied);
        pump(v);
        collect(v);
        expect_err(v, &b, NETVSP_ERR_RNDIS_LEN);
        assert_int_equal(v->nxfer, 0);
        assert_int_equal(count_comp(v, tid), 1);
    }
    /* Short bodies of INIT and QUERY. */
    struct rndis_init_req ir = {.hdr = {.type = RNDIS_MSG_INIT, .len = 20}};
    struct rndis_query_req qr = {.hdr = {.type = RNDIS_MSG_QUERY, .len = 24}};
    uint8_t resp[64];
    uint32_t rl;
    struct netvsp_stats b = nstats(v);
    rndis_ctrl(v, &ir, 20, resp, sizeof(resp), &rl);
    assert_int_equal(rl, 0);
    expect_err(v, &b, NETVSP_ERR_RNDIS_LEN);
    b = nstats(v);
    rndis_ctrl(v, &qr, 24, resp, sizeof(resp), &rl);
    assert_int_equal(rl, 0);
    expect_err(v, &b, NETVSP_ERR_RNDIS_LEN);
}

static void rndis__control_after_packet_msg__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[64], *s = section(v, 5);
    make_frame(frame, sizeof(frame), MAC_OTHER, 1);
    uint32_t off = build_packet_padded(s, frame, sizeof(frame));
    struct rndis_keepalive_req k = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(k)}};
    memcpy(s + off, &k, sizeof(k));
    struct netvsp_stats b = nstats(v);
    inbox_clear(v);
    uint64_t tid = rndis_pkt_section(v, NVSP_CHANNEL_TYPE_CONTROL, 5, off + (uint32_t)sizeof(k));
    pump(v);
    collect(v);
    expect_err(v, &b, NETVSP_ERR_RNDIS_TYPE);
    assert_int_equal(v->nxfer, 0); /* the keepalive is not answered */
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                     NVSP_STAT_INVALID_RNDIS_PKT);
}

static void packet_msg__before_rndis_init__not_ready(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    uint8_t frame[64], msg[128];
    make_frame(frame, sizeof(frame), MAC_OTHER, 1);
    uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    struct netvsp_stats b = nstats(v);
    inbox_clear(v);
    uint64_t tid = rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 0);
    collect(v);
    expect_err(v, &b, NETVSP_ERR_NOT_READY);
    assert_int_not_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
}

static void packet_msg__bad_header_fields__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[100];
    make_frame(frame, sizeof(frame), MAC_OTHER, 1);
    enum { OOB_OFF, OOB_LEN, OOB_NUM, VC, DLEN0, DOFF_SMALL, DATA_PAST_END, DOFF_HUGE, DLEN_HUGE,
           NCASES };
    for (int i = 0; i < NCASES; i++) {
        uint8_t msg[256];
        uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
        struct rndis_packet_msg pm;
        memcpy(&pm, msg, sizeof(pm));
        switch (i) {
        case OOB_OFF: pm.oob_data_offset = 36; break;
        case OOB_LEN: pm.oob_data_len = 4; break;
        case OOB_NUM: pm.num_oob_elements = 1; break;
        case VC: pm.vc_handle = 1; break;
        case DLEN0: pm.data_len = 0; break;
        case DOFF_SMALL: pm.data_offset = 32; break;
        case DATA_PAST_END: pm.data_len += 1; break;
        case DOFF_HUGE: pm.data_offset = 0xfffffff8u; break;
        case DLEN_HUGE: pm.data_len = 0xfffffff0u; break;
        }
        memcpy(msg, &pm, sizeof(pm));
        struct netvsp_stats b = nstats(v);
        inbox_clear(v);
        uint64_t tid = rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
        assert_int_equal(pump(v), 0);
        collect(v);
        expect_err(v, &b, NETVSP_ERR_RNDIS_PACKET);
        assert_int_equal(count_comp(v, tid), 1);
    }
    /* Shorter than a PACKET_MSG header. */
    uint8_t msg[64] = {0};
    struct rndis_msg_hdr h = {.type = RNDIS_MSG_PACKET, .len = 40};
    memcpy(msg, &h, sizeof(h));
    struct netvsp_stats b = nstats(v);
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, 40);
    assert_int_equal(pump(v), 0);
    expect_err(v, &b, NETVSP_ERR_RNDIS_LEN);
}

static void packet_msg__malformed_ppi__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[1500];
    make_frame(frame, sizeof(frame), MAC_OTHER, 1);
    enum { SIZE0, SIZE_UNALIGNED, SIZE_PAST_AREA, OFF_PAST_SIZE, OFF_IN_HEADER, AREA_PAST_MSG,
           AREA_OFF_SMALL, AREA_SHORTER_THAN_RECORD, AREA_HUGE, SIZE_SMALL, AREA_OFF_UNALIGNED,
           DATA_SHORT, NCASES };
    for (int i = 0; i < NCASES; i++) {
        uint8_t ppis[32], msg[2048];
        uint32_t pl = put_ppi(ppis, RNDIS_PPI_HASH_VALUE, 1);
        uint32_t len = build_packet(msg, ppis, pl, frame, 64);
        struct rndis_packet_msg pm;
        struct rndis_ppi r;
        uint32_t at = sizeof(pm); /* where the record goes */
        memcpy(&pm, msg, sizeof(pm));
        memcpy(&r, msg + sizeof(pm), sizeof(r));
        switch (i) {
        case SIZE0: r.size = 0; break;
        case SIZE_UNALIGNED: r.size = 14; break;
        case SIZE_PAST_AREA: r.size = 20; break;
        case OFF_PAST_SIZE: r.ppi_offset = 20; break;
        case OFF_IN_HEADER: r.ppi_offset = 8; break;
        case AREA_PAST_MSG: pm.ppi_len = len; break;
        case AREA_OFF_SMALL: pm.ppi_offset = 28; break;
        case AREA_SHORTER_THAN_RECORD: pm.ppi_len = 8; break;
        case AREA_HUGE:
            /* Inside a long message, but more PPI bytes than anyone sends. */
            len = build_packet(msg, ppis, pl, frame, sizeof(frame));
            memcpy(&pm, msg, sizeof(pm));
            pm.ppi_len = 1400;
            break;
        case SIZE_SMALL: r.size = 8; break;
        case AREA_OFF_UNALIGNED:
            /* A well-formed block and frame, 2 bytes further on. */
            memmove(msg + sizeof(pm) + 2, msg + sizeof(pm), len - sizeof(pm));
            memset(msg + sizeof(pm), 0, 2);
            at += 2;
            len += 2;
            pm.hdr.len += 2;
            pm.ppi_offset += 2;
            pm.data_offset += 2;
            break;
        case DATA_SHORT: r.ppi_offset = 14; break; /* 2 bytes: every PPI has at least 4 */
        }
        memcpy(msg, &pm, sizeof(pm));
        memcpy(msg + at, &r, sizeof(r));
        struct netvsp_stats b = nstats(v);
        rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
        assert_int_equal(pump(v), 0);
        if (nstats(v).errors[NETVSP_ERR_PPI] != b.errors[NETVSP_ERR_PPI] + 1)
            fail_msg("malformed PPI case %d not counted", i);
        expect_err(v, &b, NETVSP_ERR_PPI);
    }
}

/*
 * At NVSP 6.1 an RNDIS control request costs the root two packets in its
 * ring to the guest: the answer's transfer (80 bytes) and the request's
 * completion (64). rx_burst only checks for room for two completions (128)
 * before it takes a request, so with 128..143 bytes free the completion
 * does not fit and is silently lost: the guest never gets its send
 * section back.
 */
static void rx_burst__control_request_with_ring_nearly_full__completion_not_lost(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    collect(v);
    const uint32_t xfer_bytes = vmbus_ring_pkt_size(16, NVSP_MSG_SIZE_61);
    const uint32_t comp_bytes = vmbus_ring_pkt_size(0, NVSP_MSG_SIZE_61);
    const uint32_t target = 2 * comp_bytes + 8; /* 136: passes the check, fits only the answer */
    uint32_t fill = root_ring_free(v) - target;
    assert_int_equal(fill % 16, 0);
    /* fill = xfer_bytes * k + comp_bytes * m */
    uint32_t m = 0;
    while ((fill - comp_bytes * m) % xfer_bytes)
        m++;
    uint32_t k = (fill - comp_bytes * m) / xfer_bytes;
    assert_true(k < v->nsub - CTRL_SUBS);
    for (uint32_t i = 0; i < m; i++) {
        /* Completed with a message-sized body (comp_bytes). */
        struct nvsp_msg_oid_query_ex q = {.type = NVSP_MSG5_OID_QUERY_EX,
                                          .oid = RNDIS_OID_GEN_LINK_SPEED};
        nvsp_send(v, &q, sizeof(q), 900 + i, true);
        pump(v);
    }
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 0x13);
    for (uint32_t i = 0; i < k; i++)
        assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
    assert_int_equal(root_ring_free(v), target);
    struct rndis_keepalive_req ka = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(ka)},
                                     .req_id = 0x7777};
    uint64_t tid = rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_CONTROL, &ka, sizeof(ka));
    inbox_clear(v);
    pump(v);
    /* The guest drains its ring and the worker runs again, twice. */
    for (int round = 0; round < 3; round++) {
        collect(v);
        pump(v);
    }
    collect(v);
    unsigned answers = 0;
    for (unsigned i = 0; i < v->nxfer; i++) {
        if (v->xfer[i].nvsp.channel_type != NVSP_CHANNEL_TYPE_CONTROL)
            continue;
        struct rndis_keepalive_cmplt c;
        memcpy(&c, v->rbuf + v->xfer[i].r[0].byte_offset, sizeof(c));
        answers += c.hdr.type == RNDIS_MSG_KEEPALIVE_C && c.req_id == 0x7777;
    }
    assert_int_equal(answers, 1);
    if (count_comp(v, tid) != 1)
        fail_msg("the completion of the RNDIS request was lost (%u seen): the guest's send "
                 "section is never given back",
                 count_comp(v, tid));
}

/* Free bytes in the guest's ring to the root, as the guest sees them (the
 * root's read index included). */
static uint32_t guest_ring_free(struct vm *v)
{
    return vmbus_ring_free_bytes(vmbus_gchan_tx(v->ch));
}

/* One worker round over port v: rx_burst once with the worker's budget.
 * Returns the frames; *busy says whether it reported work beyond them. */
static uint16_t one_round(struct vm *v, struct rte_mbuf **pk, bool *busy)
{
    v->port->rx_busy = false;
    uint16_t n = v->port->cls->rx_burst(v->port, pk, BURST);
    *busy = v->port->rx_busy;
    v->port->rx_busy = false;
    return n;
}

#define FLOOD_MSGS 300u

/*
 * A guest fills its ring with NVSP messages that need no reply (a switch of
 * data path without a completion request, which Linux sends and netvsp
 * merely notes). One worker round takes at most its budget of them, says it
 * has more, and the worker's next port (B, with a frame waiting) is served
 * in that same round; the rest is taken over the next rounds, none refused.
 */
static void rx_burst__ring_full_of_messages_needing_no_reply__at_most_budget_per_round(void **state)
{
    struct fix *f = F(state);
    struct vm *a = f->a;
    f->b = vm_create(f, "vm-b", MAC_B, NIC_MTU);
    struct vm *b = f->b;
    bring_up(a);
    bring_up(b);
    struct netvsp_stats sa = nstats(a);
    uint32_t empty = guest_ring_free(a);
    struct nvsp_msg_switch_data_path sw = {.type = NVSP_MSG4_SWITCH_DATA_PATH};
    for (unsigned i = 0; i < FLOOD_MSGS; i++)
        nvsp_send(a, &sw, sizeof(sw), 0, false);
    uint32_t msg_bytes = (empty - guest_ring_free(a)) / FLOOD_MSGS;
    assert_int_equal(empty - guest_ring_free(a), msg_bytes * FLOOD_MSGS);
    uint8_t frame[64], msg[128];
    make_frame(frame, sizeof(frame), MAC_A, 0x21);
    uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    rndis_send_section(b, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);

    /* One round: A, then B. */
    struct rte_mbuf *pk[BURST];
    bool busy;
    uint32_t before = guest_ring_free(a);
    assert_int_equal(one_round(a, pk, &busy), 0);
    uint32_t taken = (guest_ring_free(a) - before) / msg_bytes;
    if (taken > BURST)
        fail_msg("one round took %u messages from the guest's ring: the budget is %u", taken,
                 BURST);
    assert_true(taken >= 1);
    assert_true(busy);
    assert_int_equal(one_round(b, pk, &busy), 1);
    assert_mbuf_eq(pk[0], frame, sizeof(frame));
    rte_pktmbuf_free(pk[0]);

    /* The rest, a budget per round. */
    unsigned rounds = 1;
    do {
        assert_int_equal(one_round(a, pk, &busy), 0);
        rounds++;
        assert_true(rounds <= FLOOD_MSGS + 1);
    } while (busy);
    assert_int_equal(guest_ring_free(a), empty);
    assert_true(rounds > FLOOD_MSGS / BURST);
    expect_no_err(a, &sa);
    /* And A is served as before (an empty completion, as Linux expects). */
    uint32_t swa[2], swa_len = 99;
    nvsp_request(a, &sw, sizeof(sw), swa, sizeof(swa), &swa_len);
    assert_int_equal(swa_len, 0);
}

/*
 * Frames cost budget whether they are kept or dropped: sends of eight
 * runt frames each (dropped, counted, not errors) are taken at most a
 * budget's worth of frames per round.
 */
static void rx_burst__sends_of_dropped_frames__frames_count_against_budget(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    enum { SENDS = 40, PER_SEND = 8, RUNT = 12 };
    uint8_t frame[RUNT], msg[PER_SEND * 64];
    make_frame(frame, RUNT, MAC_OTHER, 0x31);
    uint32_t len = 0;
    for (int i = 0; i < PER_SEND; i++)
        len += build_packet(msg + len, NULL, 0, frame, RUNT); /* 48 bytes: aligned */
    uint32_t empty = guest_ring_free(v);
    for (uint32_t i = 0; i < SENDS; i++)
        rndis_send_section(v, 1 + i, NVSP_CHANNEL_TYPE_DATA, msg, len);
    uint32_t msg_bytes = (empty - guest_ring_free(v)) / SENDS;
    uint64_t runts = pstats(v).drops[VSW_DROP_RUNT];
    struct rte_mbuf *pk[BURST];
    bool busy;
    uint32_t before = guest_ring_free(v);
    assert_int_equal(one_round(v, pk, &busy), 0);
    uint32_t taken = (guest_ring_free(v) - before) / msg_bytes;
    if (taken * PER_SEND > BURST)
        fail_msg("one round parsed %u frames: the budget is %u", taken * PER_SEND, BURST);
    assert_true(taken >= 1);
    assert_true(busy);
    assert_int_equal(pstats(v).drops[VSW_DROP_RUNT] - runts, (uint64_t)taken * PER_SEND);
    while (busy)
        assert_int_equal(one_round(v, pk, &busy), 0);
    assert_int_equal(pstats(v).drops[VSW_DROP_RUNT] - runts, (uint64_t)SENDS * PER_SEND);
    v->port->cls->tx_flush(v->port);
}

/*
 * Zero copy (zcopy.c): a large GPA-direct frame's payload stays in the
 * guest's pages, its headers are copied, and the send completes only once
 * every mbuf pointing into those pages is freed, on whatever thread.
 */
#define ZC_HDR_BYTES 256u /* what rxtx.c copies of a zero-copy frame */

static uint64_t zc_post(struct vm *v, const uint8_t *frame, uint32_t flen, uint32_t l4)
{
    uint8_t ppis[16];
    uint32_t pl = put_ppi(ppis, RNDIS_PPI_LSO, lso_ppi(1448, l4, false));
    return lso_post(v, frame, flen, ppis, pl);
}

/* Bytes of m in external (guest) segments; -1 if one comes before a
 * direct one or the first is not direct. */
static long ext_bytes(const struct rte_mbuf *m)
{
    if (!RTE_MBUF_DIRECT(m))
        return -1;
    long n = 0;
    for (const struct rte_mbuf *s = m->next; s; s = s->next)
        if (RTE_MBUF_HAS_EXTBUF(s))
            n += s->data_len;
    return n;
}

/* m holds exactly data (any size; assert_mbuf_eq takes up to 16 KiB). */
static void zc_mbuf_eq(const struct rte_mbuf *m, const uint8_t *data, uint32_t len)
{
    static uint8_t tmp[65536];
    assert_int_equal(m->pkt_len, len);
    assert_true(len <= sizeof(tmp));
    const uint8_t *p = rte_pktmbuf_read(m, 0, len, tmp);
    assert_non_null(p);
    assert_memory_equal(p, data, len);
}

static void zcopy__large_send__payload_in_guest_pages_headers_copied(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    set_lso(v, true);
    const uint32_t flen = 40000;
    static uint8_t f[40000];
    uint32_t l4 = make_l4_frame(f, flen, MAC_OTHER, 4, IPPROTO_TCP, 0, 12);
    struct netvsp_stats b = nstats(v);
    inbox_clear(v);
    uint64_t tid = zc_post(v, f, flen, l4);
    assert_int_equal(pump(v), 1);
    struct rte_mbuf *m = v->rx[0];
    assert_int_equal(m->pkt_len, flen);
    assert_int_equal(m->data_len, ZC_HDR_BYTES);
    assert_int_equal(ext_bytes(m), flen - ZC_HDR_BYTES);
    zc_mbuf_eq(m, f, flen);
    /* What the switch's egress asks before writing into a frame (egress.c
     * writable()): the guest's segments are not direct, so never written. */
    for (const struct rte_mbuf *s = m->next; s; s = s->next)
        assert_false(RTE_MBUF_DIRECT(s));
    /* The payload is the guest's page: a change there shows in the mbuf. */
    v->scratch[30000] ^= 0xff;
    uint8_t byte;
    assert_int_equal(*(const uint8_t *)rte_pktmbuf_read(m, 30000, 1, &byte), f[30000] ^ 0xff);
    /* A guest rewriting its headers after the send changes nothing the
     * switch reads: they are a copy. */
    memset(v->scratch, 0xee, ZC_HDR_BYTES);
    assert_memory_equal(rte_pktmbuf_mtod(m, const uint8_t *), f, ZC_HDR_BYTES);
    assert_int_equal(m->l2_len + m->l3_len + m->l4_len, l4 + 32);
    /* No completion while the frame is held; one when it is freed. */
    collect(v);
    assert_null(find_comp(v, tid));
    free_rx(v);
    pump(v);
    collect(v);
    assert_int_equal(count_comp(v, tid), 1);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    expect_no_err(v, &b);
    struct netvsp_stats a = nstats(v);
    assert_int_equal(a.zc_frames - b.zc_frames, 1);
    assert_int_equal(a.zc_fallbacks - b.zc_fallbacks, 0);
}

static void *free_on_thread(void *arg)
{
    rte_pktmbuf_free(arg);
    return NULL;
}

static void zcopy__frame_freed_by_another_thread__owner_sends_completion(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    set_lso(v, true);
    const uint32_t flen = 20000;
    uint32_t l4 = make_l4_frame(g_big, flen, MAC_OTHER, 6, IPPROTO_TCP, 0, 0);
    inbox_clear(v);
    uint8_t ppis[16];
    uint32_t pl = put_ppi(ppis, RNDIS_PPI_LSO, lso_ppi(1440, l4, true));
    uint64_t tid = lso_post(v, g_big, flen, ppis, pl);
    assert_int_equal(pump(v), 1);
    struct rte_mbuf *m = v->rx[0];
    v->nrx = 0;
    assert_true(ext_bytes(m) > 0);
    /* The clone a flood or capture would hold keeps it too. */
    struct rte_mbuf *clone = rte_pktmbuf_clone(m, g_pool);
    assert_non_null(clone);
    /* A completion is owed: the worker must not sleep on the guest's
     * event alone. */
    assert_true(v->port->cls->wait_arm(v->port));
    v->port->cls->wait_disarm(v->port);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, free_on_thread, m), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    pump(v);
    collect(v);
    assert_null(find_comp(v, tid));
    assert_int_equal(pthread_create(&t, NULL, free_on_thread, clone), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    pump(v);
    collect(v);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    assert_int_equal(count_comp(v, tid), 1);
}

static void zcopy__channel_closed_then_vm_torn_down_in_flight__pages_stay_readable(void **state)
{
    struct fix *fx = F(state);
    struct vm *v = fx->a;
    bring_up(v);
    set_lso(v, true);
    const uint32_t flen = 30000;
    static uint8_t f[30000];
    uint32_t l4 = make_l4_frame(f, flen, MAC_OTHER, 4, IPPROTO_TCP, 0, 0);
    inbox_clear(v);
    uint64_t tid = zc_post(v, f, flen, l4);
    assert_int_equal(pump(v), 1);
    struct rte_mbuf *m = v->rx[0];
    v->nrx = 0;
    assert_int_equal(ext_bytes(m), flen - ZC_HDR_BYTES);
    /* The guest closes its channel: the new connection is never told
     * about the old send. */
    reopen(v);
    pump(v);
    collect(v);
    assert_null(find_comp(v, tid));
    zc_mbuf_eq(m, f, flen);
    /* The VM goes: NIC, VMBus server, partition (its memory file and
     * views). The frame still reads what the guest sent. */
    struct hv_partition *part = v->part;
    vm_destroy(v);
    fx->a = NULL;
    if (hv_partition_state(part) == HV_PARTITION_RUNNING)
        assert_int_equal(hv_partition_stop(part, 0), 0);
    assert_int_equal(hv_partition_destroy(part), 0);
    zc_mbuf_eq(m, f, flen);
    rte_pktmbuf_free(m); /* the last reference: unmapped now */
}

/* A frame whose headers do not all fit in the copy: IPv6 with a
 * hop-by-hop header of hbh bytes before TCP. */
static void v6_hbh_frame(uint8_t *f, uint32_t len, uint32_t hbh)
{
    make_l4_frame(f + hbh, len - hbh, MAC_OTHER, 6, IPPROTO_TCP, 0, 0);
    memmove(f, f + hbh, 54);
    memset(f + 54, 0, hbh);
    f[54] = IPPROTO_TCP;
    f[55] = (uint8_t)(hbh / 8 - 1);
    f[14 + 6] = IPPROTO_HOPOPTS;
    uint16_t pl = rte_cpu_to_be_16((uint16_t)(len - 54));
    memcpy(f + 14 + 4, &pl, 2);
}

static void zcopy__small_or_headers_not_in_copy__copied_and_completed_at_once(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_ver(v, V61, 9014);
    set_lso(v, true);
    struct {
        uint32_t len;
        int kind; /* 0 TCP, 1 not TCP/UDP, 2 hop-by-hop of 248 bytes, 3 of 64 */
        bool zero_copy;
        bool fallback; /* large enough, copied all the same: counted */
    } cases[] = {
        {2000, 0, false, false}, {ZC_HDR_BYTES + 2047, 0, false, false}, {9000, 1, false, true},
        {9000, 2, false, true},  {9000, 3, true, false},                  {9000, 0, true, false},
    };
    static uint8_t f[9000];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t len = cases[i].len;
        if (cases[i].kind == 0)
            make_l4_frame(f, len, MAC_OTHER, 4, IPPROTO_TCP, 0, 0);
        else if (cases[i].kind == 1)
            make_frame(f, len, MAC_OTHER, 0x71);
        else
            v6_hbh_frame(f, len, cases[i].kind == 2 ? 248 : 64);
        /* A plain frame (no LSO), GPA-direct. */
        uint8_t msg[64];
        uint32_t hl = build_packet(msg, NULL, 0, f, 0);
        struct rndis_packet_msg pm;
        memcpy(&pm, msg, sizeof(pm));
        pm.hdr.len += len;
        pm.data_len = len;
        memcpy(section(v, 2), &pm, sizeof(pm));
        memcpy(v->scratch, f, len);
        struct grange r = scratch_range(v, 0, 0, len);
        uint8_t ext[64];
        uint32_t el = gpa_ext(ext, &r, 1, 1);
        inbox_clear(v);
        struct netvsp_stats b = nstats(v);
        uint64_t tid = rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, 2, hl, ext, el);
        assert_int_equal(pump(v), 1);
        zc_mbuf_eq(v->rx[0], f, len);
        struct netvsp_stats a = nstats(v);
        if (a.zc_frames - b.zc_frames != cases[i].zero_copy ||
            a.zc_fallbacks - b.zc_fallbacks != cases[i].fallback)
            fail_msg("case %zu: zc_frames +%" PRIu64 ", zc_fallbacks +%" PRIu64, i,
                     a.zc_frames - b.zc_frames, a.zc_fallbacks - b.zc_fallbacks);
        collect(v);
        if (cases[i].zero_copy) {
            assert_int_equal(ext_bytes(v->rx[0]), len - ZC_HDR_BYTES);
            assert_null(find_comp(v, tid));
            free_rx(v);
            pump(v);
            collect(v);
        } else {
            if (ext_bytes(v->rx[0]) != 0)
                fail_msg("case %zu: %ld bytes not copied", i, ext_bytes(v->rx[0]));
            free_rx(v);
        }
        assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    }
}

/* What one guest can pin is bounded: sends beyond the slots (64,
 * netvsp-private.h's ZC_SLOTS) are copied and completed at once. */
static void zcopy__more_sends_in_flight_than_slots__rest_copied(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    set_lso(v, true);
    const uint32_t flen = 9000, sends = 70;
    uint32_t l4 = make_l4_frame(g_big, flen, MAC_OTHER, 4, IPPROTO_TCP, 0, 0);
    uint64_t tids[70];
    unsigned zc = 0;
    inbox_clear(v);
    struct netvsp_stats b = nstats(v);
    for (uint32_t i = 0; i < sends; i++) {
        tids[i] = zc_post(v, g_big, flen, l4);
        assert_int_equal(pump(v), 1);
        long e = ext_bytes(v->rx[v->nrx - 1]);
        assert_true(e == 0 || e == (long)(flen - ZC_HDR_BYTES));
        zc += e != 0;
        collect(v);
        assert_true((find_comp(v, tids[i]) == NULL) == (e != 0));
    }
    assert_int_equal(zc, 64);
    /* Counted: 64 taken, the 6 beyond the slots copied as fallbacks. */
    struct netvsp_stats a = nstats(v);
    assert_int_equal(a.zc_frames - b.zc_frames, 64);
    assert_int_equal(a.zc_fallbacks - b.zc_fallbacks, sends - 64);
    free_rx(v);
    pump(v);
    collect(v);
    for (uint32_t i = 0; i < sends; i++)
        assert_int_equal(count_comp(v, tids[i]), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(packet_msg__in_send_section__mbuf_with_exact_bytes),
        T(packet_msg__linux_partial_copy__header_in_section_frame_gpa_direct),
        T(packet_msg__all_gpa_direct__mbuf_with_exact_bytes),
        T(packet_msg__jumbo_over_gpa_direct__chained_mbuf_exact),
        T(packet_msg__several_in_one_send__all_delivered_in_order),
        T(packet_msg__packed_without_padding__next_at_exact_message_length),
        T(packet_msg__packed_bad_next_length__refused_and_counted),
        T(packet_msg__more_than_max_per_message__refused_after_max),
        T(packet_msg__checksum_ppi__mbuf_offload_flags_set),
        T(packet_msg__checksum_ppi_inconsistent__dropped_and_counted),
        T(packet_msg__checksum_ppi_behind_inband_tags__offsets_from_the_frame_no_error),
        T(packet_msg__vlan_ppi__tag_handed_to_switch_as_metadata),
        T(packet_msg__lso_ipv4__one_super_frame_of_contract_b),
        T(packet_msg__lso_ipv6_and_ipv4_options__taken),
        T(packet_msg__lso_tagged__offsets_behind_the_tags),
        T(packet_msg__lso_not_enabled__dropped_counted_connection_kept),
        T(packet_msg__lso_hostile_values__each_dropped_with_its_reason),
        T(packet_msg__oversize_and_runt__dropped_and_counted),
        T(tx_burst__frames__arrive_in_receive_buffer_with_rndis_header),
        T(tx_burst__jumbo_frame__one_sub_allocation),
        T(tx_burst__small_frames__packed_into_shared_sub_allocations),
        T(tx_burst__l4_checksum_left_to_network__finished_in_copy_then_claimed),
        T(tx_burst__checksum_request_not_matching_frame__delivered_without_claim),
        T(tx_burst__verified_by_uplink_or_unknown__claim_only_the_verified),
        T(tx_burst__large_segment_to_rsc_guest__one_packet_over_sections),
        T(tx_burst__large_segment_to_rss_guest__first_fragment_carries_hash),
        T(tx_burst__large_segment_without_rsc__dropped_too_big),
        T(rndis_offload__rsc_capable_guest__offered_and_port_takes_large_segments),
        T(tx_burst__large_segment_bad_ip_length__refused_counted),
        T(tx_burst__packet_filter__respected),
        T(packet_msg__inband_vlan_tag__four_bytes_over_frame_size_allowed),
        T(tx_burst__frame_above_frame_size__dropped_too_big),
        T(tx_burst__before_rndis_ready__dropped_link_down),
        T(tx_burst__ring_to_guest_full__dropped_counted_then_resumes),
        T(completion__frees_sub_allocations__delivery_resumes),
        T(completion__unknown_transaction_id__counted),
        T(xfer__transaction_id__index_of_first_section),
        T(rndis_pkt__send_section_out_of_range__refused_and_counted),
        T(rndis_pkt__section_before_send_buf__refused_and_counted),
        T(rndis_pkt__before_recv_buf__not_ready),
        T(gpa_direct__bad_ranges__refused_and_counted),
        T(rndis__message_length_inconsistent__refused_and_counted),
        T(rndis__control_after_packet_msg__refused_and_counted),
        T(packet_msg__before_rndis_init__not_ready),
        T(packet_msg__bad_header_fields__refused_and_counted),
        T(packet_msg__malformed_ppi__refused_and_counted),
        T(rx_burst__control_request_with_ring_nearly_full__completion_not_lost),
        T(rx_burst__ring_full_of_messages_needing_no_reply__at_most_budget_per_round),
        T(rx_burst__sends_of_dropped_frames__frames_count_against_budget),
        T(zcopy__large_send__payload_in_guest_pages_headers_copied),
        T(zcopy__frame_freed_by_another_thread__owner_sends_completion),
        T(zcopy__channel_closed_then_vm_torn_down_in_flight__pages_stay_readable),
        T(zcopy__small_or_headers_not_in_copy__copied_and_completed_at_once),
        T(zcopy__more_sends_in_flight_than_slots__rest_copied),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
