/*
 * Unit tests of netvsp, the root's network VSP (netvsp.h), with the fake
 * guest of netvsp-fixture.h: RNDIS control (rndis-ctl.c): INIT, QUERY and SET of each OID,
 * KEEPALIVE, RESET, HALT, malformed information buffers, and control
 * answers queued when the control sub-allocations run out.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "netvsp-fixture.h"

static void rndis_init__valid__init_c_fields(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    assert_false(nstats(v).rndis_ready);
    struct rndis_init_cmplt c;
    rndis_init(v, &c);
    assert_int_equal(c.hdr.len, sizeof(c));
    assert_int_equal(c.req_id, v->next_req);
    assert_int_equal(c.major, RNDIS_VERSION_MAJOR);
    assert_int_equal(c.minor, RNDIS_VERSION_MINOR);
    assert_int_equal(c.device_flags, RNDIS_DEVICE_FLAG_CONNECTIONLESS);
    assert_int_equal(c.medium, RNDIS_MEDIUM_802_3);
    assert_true(c.max_pkts_per_msg >= 1);
    assert_true(c.max_xfer_size >= FRAME_1514);
    assert_true(c.align_factor <= 12);
    assert_int_equal(c.af_list_offset, 0);
    assert_int_equal(c.af_list_size, 0);
    assert_true(nstats(v).rndis_ready);
    /* Ready, but no packet filter yet: the link stays down. */
    assert_false(vsw_port_link(v->port));
}

static void rndis_query__gen_and_802_3_oids__answered(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    rndis_init(v, NULL);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE), 1500);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_LINK_SPEED), RNDIS_LINK_SPEED_10G);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_MEDIA_CONNECT_STATUS), RNDIS_MEDIA_STATE_CONNECTED);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_VENDOR_ID), 0x155d);
    uint8_t mac[8];
    uint32_t len = sizeof(mac);
    assert_int_equal(rndis_query(v, RNDIS_OID_802_3_PERMANENT_ADDRESS, NULL, 0, mac, &len),
                     RNDIS_STATUS_SUCCESS);
    assert_int_equal(len, 6);
    assert_memory_equal(mac, MAC_A, 6);
    len = sizeof(mac);
    assert_int_equal(rndis_query(v, RNDIS_OID_802_3_CURRENT_ADDRESS, NULL, 0, mac, &len),
                     RNDIS_STATUS_SUCCESS);
    assert_memory_equal(mac, MAC_A, 6);
    uint32_t list[64];
    len = sizeof(list);
    assert_int_equal(rndis_query(v, RNDIS_OID_GEN_SUPPORTED_LIST, NULL, 0, list, &len),
                     RNDIS_STATUS_SUCCESS);
    assert_int_equal(len % 4, 0);
    bool has_frame = false;
    for (uint32_t i = 0; i < len / 4; i++)
        has_frame |= list[i] == RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE;
    assert_true(has_frame);
    struct ndis_rss_caps rss;
    len = sizeof(rss);
    assert_int_equal(rndis_query(v, RNDIS_OID_GEN_RECEIVE_SCALE_CAPABILITIES, NULL, 0, &rss, &len),
                     RNDIS_STATUS_SUCCESS);
    assert_int_equal(rss.hdr.type, NDIS_OBJTYPE_RSS_CAPS);
    assert_true(rss.num_indirect_entries > 0); /* DPDK guests need a table */
    struct netvsp_stats b = nstats(v);
    assert_int_equal(rndis_query(v, 0x12345678u, NULL, 0, NULL, NULL), RNDIS_STATUS_NOT_SUPPORTED);
    expect_no_err(v, &b);
}

static void rndis_query__offload_caps__size_of_requested_revision(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    rndis_init(v, NULL);
    static const struct {
        uint8_t rev;
        uint16_t size;
    } cases[] = {{1, NDIS_OFFLOAD_SIZE_REV1}, {2, NDIS_OFFLOAD_SIZE_REV2},
                 {3, NDIS_OFFLOAD_SIZE_REV3}, {4, NDIS_OFFLOAD_SIZE_REV3}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ndis_offload q = {0}, a;
        q.hdr.type = NDIS_OBJTYPE_OFFLOAD;
        q.hdr.revision = cases[i].rev;
        q.hdr.size = cases[i].size;
        memset(&a, 0, sizeof(a));
        uint32_t len = sizeof(a);
        assert_int_equal(rndis_query(v, RNDIS_OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES, &q,
                                     cases[i].size, &a, &len),
                         RNDIS_STATUS_SUCCESS);
        assert_int_equal(len, cases[i].size);
        assert_int_equal(a.hdr.type, NDIS_OBJTYPE_OFFLOAD);
        assert_int_equal(a.hdr.revision, cases[i].rev > 3 ? 3 : cases[i].rev);
        assert_int_equal(a.hdr.size, cases[i].size);
        /* What Linux needs to turn on TCP/IPv4 checksum offload. */
        uint32_t need4 = NDIS_TXCSUM_CAP_TCP4 | NDIS_TXCSUM_CAP_TCP4OPT;
        assert_int_equal(a.csum.ip4_txcsum & need4, need4);
        assert_int_equal(a.csum.ip4_txenc, NDIS_OFFLOAD_ENCAP_8023);
        /* LSOv2 both ways, as vmswitch offers it, and what Linux needs
         * to turn TSO6 on. */
        assert_int_equal(a.lsov2.ip4_encap, NDIS_OFFLOAD_ENCAP_8023);
        assert_int_equal(a.lsov2.ip4_maxsz, RNDIS_LSO_MAX_SIZE);
        assert_int_equal(a.lsov2.ip4_minsg, RNDIS_LSO_MIN_SEGS);
        assert_int_equal(a.lsov2.ip6_encap, NDIS_OFFLOAD_ENCAP_8023);
        assert_int_equal(a.lsov2.ip6_maxsz, RNDIS_LSO_MAX_SIZE);
        assert_int_equal(a.lsov2.ip6_minsg, RNDIS_LSO_MIN_SEGS);
        assert_int_equal(a.lsov2.ip6_opts, NDIS_LSOV2_CAP_IP6EXT | NDIS_LSOV2_CAP_TCP6OPT);
        /* No receive coalescing offered (rev 3 has room to say so). */
        if (cases[i].rev >= 3)
            assert_int_equal(a.rsc_ip4 | a.rsc_ip6, 0);
    }
    /* No input object: the newest revision. */
    struct ndis_offload a;
    uint32_t len = sizeof(a);
    assert_int_equal(rndis_query(v, RNDIS_OID_TCP_OFFLOAD_CURRENT_CONFIG, NULL, 0, &a, &len),
                     RNDIS_STATUS_SUCCESS);
    assert_int_equal(len, NDIS_OFFLOAD_SIZE_REV3);
}

static void rndis_query__offload_caps_bad_ndis_header__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    rndis_init(v, NULL);
    static const struct ndis_obj_hdr bad[] = {
        {NDIS_OBJTYPE_DEFAULT, 3, NDIS_OFFLOAD_SIZE_REV3}, /* wrong type */
        {NDIS_OBJTYPE_OFFLOAD, 0, NDIS_OFFLOAD_SIZE_REV3}, /* revision 0 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t q[NDIS_OFFLOAD_SIZE_REV3] = {0};
        memcpy(q, &bad[i], sizeof(bad[i]));
        struct netvsp_stats b = nstats(v);
        assert_int_equal(rndis_query(v, RNDIS_OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES, q, sizeof(q),
                                     NULL, NULL),
                         RNDIS_STATUS_INVALID_DATA);
        expect_err(v, &b, NETVSP_ERR_OID);
    }
}

static void rndis_set__packet_filter__link_follows(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    rndis_init(v, NULL);
    assert_false(vsw_port_link(v->port));
    set_filter(v, RNDIS_FILTER_DIRECTED | RNDIS_FILTER_MULTICAST | RNDIS_FILTER_BROADCAST);
    assert_true(vsw_port_link(v->port));
    uint32_t want = RNDIS_FILTER_DIRECTED | RNDIS_FILTER_MULTICAST | RNDIS_FILTER_BROADCAST;
    assert_int_equal(nstats(v).packet_filter, want);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_CURRENT_PACKET_FILTER), want);
    set_filter(v, 0);
    assert_false(vsw_port_link(v->port));
    set_filter(v, RNDIS_FILTER_PROMISCUOUS);
    assert_true(vsw_port_link(v->port));
    /* Too short a value: refused and counted, filter unchanged. */
    struct netvsp_stats b = nstats(v);
    uint16_t shortv = 0;
    assert_int_equal(rndis_set(v, RNDIS_OID_GEN_CURRENT_PACKET_FILTER, &shortv, 2),
                     RNDIS_STATUS_INVALID_LENGTH);
    expect_err(v, &b, NETVSP_ERR_OID);
    assert_int_equal(nstats(v).packet_filter, RNDIS_FILTER_PROMISCUOUS);
}

static void rndis_set__other_oids__accepted_or_not_supported(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct netvsp_stats b = nstats(v);
    uint8_t mc[12] = {0x01, 0x00, 0x5e, 0, 0, 1, 0x01, 0x00, 0x5e, 0, 0, 2};
    assert_int_equal(rndis_set(v, RNDIS_OID_802_3_MULTICAST_LIST, mc, sizeof(mc)),
                     RNDIS_STATUS_SUCCESS);
    uint32_t x = 1;
    assert_int_equal(rndis_set(v, 0x0bad0bad, &x, 4), RNDIS_STATUS_NOT_SUPPORTED);
    assert_int_equal(rndis_set_type(v, RNDIS_MSG_SET_EX, RNDIS_OID_GEN_CURRENT_PACKET_FILTER, &x, 4),
                     RNDIS_STATUS_NOT_SUPPORTED);
    expect_no_err(v, &b);
}

static void rndis_keepalive__answered_with_request_id(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct rndis_keepalive_req r = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(r)},
                                    .req_id = 0x4b41};
    uint8_t resp[64];
    uint32_t rl;
    assert_int_equal(rndis_ctrl(v, &r, sizeof(r), resp, sizeof(resp), &rl), NVSP_STAT_SUCCESS);
    struct rndis_keepalive_cmplt c;
    assert_int_equal(rl, sizeof(c));
    memcpy(&c, resp, sizeof(c));
    assert_int_equal(c.hdr.type, RNDIS_MSG_KEEPALIVE_C);
    assert_int_equal(c.req_id, 0x4b41);
    assert_int_equal(c.status, RNDIS_STATUS_SUCCESS);
}

static void rndis_reset__answered_reset_c(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct rndis_reset_req r = {.hdr = {.type = RNDIS_MSG_RESET, .len = sizeof(r)}};
    uint8_t resp[64];
    uint32_t rl;
    assert_int_equal(rndis_ctrl(v, &r, sizeof(r), resp, sizeof(resp), &rl), NVSP_STAT_SUCCESS);
    struct rndis_reset_cmplt c;
    assert_int_equal(rl, sizeof(c));
    memcpy(&c, resp, sizeof(c));
    assert_int_equal(c.hdr.type, RNDIS_MSG_RESET_C);
    assert_int_equal(c.status, RNDIS_STATUS_SUCCESS);
    assert_int_equal(c.addressing_reset, 0);
}

static void rndis_halt__no_answer__link_down(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct rndis_halt_req r = {.hdr = {.type = RNDIS_MSG_HALT, .len = sizeof(r)}, .req_id = 9};
    uint8_t resp[64];
    uint32_t rl;
    assert_int_equal(rndis_ctrl(v, &r, sizeof(r), resp, sizeof(resp), &rl), NVSP_STAT_SUCCESS);
    assert_int_equal(rl, 0);
    assert_false(vsw_port_link(v->port));
    assert_false(nstats(v).rndis_ready);
}

static void rndis__type_not_allowed__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    static const uint32_t types[] = {0, RNDIS_MSG_INDICATE, 0x77, RNDIS_MSG_INIT_C,
                                     RNDIS_MSG_KEEPALIVE_C, 0xffffffffu};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        uint32_t m[8] = {types[i], 32, 1, 2, 3, 4, 5, 6};
        struct netvsp_stats b = nstats(v);
        uint8_t resp[64];
        uint32_t rl;
        rndis_ctrl(v, m, sizeof(m), resp, sizeof(resp), &rl);
        assert_int_equal(rl, 0);
        expect_err(v, &b, NETVSP_ERR_RNDIS_TYPE);
    }
    /* A control message on the data channel. */
    struct rndis_keepalive_req k = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(k)}};
    struct netvsp_stats b = nstats(v);
    inbox_clear(v);
    uint64_t tid = rndis_send_section(v, 2, NVSP_CHANNEL_TYPE_DATA, &k, sizeof(k));
    pump(v);
    collect(v);
    expect_err(v, &b, NETVSP_ERR_RNDIS_TYPE);
    assert_int_equal(v->nxfer, 0);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                     NVSP_STAT_INVALID_RNDIS_PKT);
}

static void rndis_oid__info_buffer_outside_message__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    static const struct {
        uint32_t type, info_len, info_offset, msg_extra;
    } cases[] = {
        {RNDIS_MSG_QUERY, 4, 16, 4},          /* overlaps the request header */
        {RNDIS_MSG_QUERY, 100, 20, 4},        /* runs past the message */
        {RNDIS_MSG_QUERY, 4, 0xfffffff8u, 4}, /* offset wraps */
        {RNDIS_MSG_QUERY, 0xffffffffu, 20, 4},
        {RNDIS_MSG_SET, 4, 16, 4},
        {RNDIS_MSG_SET, 8, 20, 4},
        {RNDIS_MSG_SET, 4, 0xfffffffcu, 4},
        {RNDIS_MSG_SET, 0xfffffff0u, 24, 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t req[64] = {0}, resp[64];
        uint32_t filter = RNDIS_FILTER_PROMISCUOUS;
        struct rndis_query_req q = {
            .hdr = {.type = cases[i].type, .len = (uint32_t)sizeof(q) + cases[i].msg_extra},
            .req_id = 0x5150 + (uint32_t)i,
            .oid = cases[i].type == RNDIS_MSG_SET ? RNDIS_OID_GEN_CURRENT_PACKET_FILTER
                                                  : RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE,
            .info_len = cases[i].info_len,
            .info_offset = cases[i].info_offset,
        };
        memcpy(req, &q, sizeof(q));
        memcpy(req + sizeof(q), &filter, 4);
        struct netvsp_stats b = nstats(v);
        uint32_t rl;
        assert_int_equal(rndis_ctrl(v, req, q.hdr.len, resp, sizeof(resp), &rl), NVSP_STAT_SUCCESS);
        expect_err(v, &b, NETVSP_ERR_OID);
        struct rndis_set_cmplt c;
        assert_true(rl >= sizeof(c));
        memcpy(&c, resp, sizeof(c));
        assert_int_equal(c.hdr.type, cases[i].type | 0x80000000u);
        /* A QUERY_C has the QUERY_C layout (netvsc refuses shorter ones). */
        if (cases[i].type == RNDIS_MSG_QUERY) {
            assert_int_equal(c.hdr.len, sizeof(struct rndis_query_cmplt));
            assert_int_equal(rl, sizeof(struct rndis_query_cmplt));
        }
        assert_int_equal(c.req_id, q.req_id);
        assert_int_not_equal(c.status, RNDIS_STATUS_SUCCESS);
        assert_int_equal(nstats(v).packet_filter, /* unchanged */
                         RNDIS_FILTER_DIRECTED | RNDIS_FILTER_MULTICAST | RNDIS_FILTER_BROADCAST);
    }
}

static void rndis_set__offload_params_bad_ndis_header__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct ndis_offload_params good = {.hdr = {NDIS_OBJTYPE_DEFAULT, 3, sizeof(good)},
                                       .tcp4_csum = NDIS_OFFLOAD_PARAM_TXRX,
                                       .udp4_csum = NDIS_OFFLOAD_PARAM_TXRX};
    struct netvsp_stats b = nstats(v);
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &good, sizeof(good)),
                     RNDIS_STATUS_SUCCESS);
    expect_no_err(v, &b);
    enum { TYPE, REV0, SIZE_SMALL, SIZE_PAST, SHORT, CSUM_VALUE, LSO_VALUE, RSC_VALUE, NCASES };
    for (int i = 0; i < NCASES; i++) {
        struct ndis_offload_params p = good;
        uint32_t len = sizeof(p);
        switch (i) {
        case TYPE: p.hdr.type = NDIS_OBJTYPE_OFFLOAD; break;
        case REV0: p.hdr.revision = 0; break;
        case SIZE_SMALL: p.hdr.size = NDIS_OFFLOAD_PARAMS_SIZE_REV1 - 1; break;
        case SIZE_PAST: p.hdr.size = sizeof(p) + 1; break;
        case SHORT: len = NDIS_OFFLOAD_PARAMS_SIZE_REV1 - 4; break;
        case CSUM_VALUE: p.tcp6_csum = NDIS_OFFLOAD_PARAM_TXRX + 1; break;
        case LSO_VALUE: p.lsov2_ip6 = NDIS_OFFLOAD_LSOV2_ON + 1; break;
        case RSC_VALUE: p.rsc_ip4 = NDIS_OFFLOAD_LSOV2_ON + 1; break;
        }
        b = nstats(v);
        assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &p, len),
                         RNDIS_STATUS_INVALID_DATA);
        if (nstats(v).errors[NETVSP_ERR_OID] != b.errors[NETVSP_ERR_OID] + 1)
            fail_msg("offload parameters case %d not counted", i);
        expect_err(v, &b, NETVSP_ERR_OID);
    }
    /* LSOv1 and RSC cannot be switched on (not offered): refused, not a
     * protocol error, and nothing of the request applies. */
    struct ndis_offload_params lso = good;
    lso.lsov1 = NDIS_OFFLOAD_LSOV2_ON;
    lso.lsov2_ip4 = NDIS_OFFLOAD_LSOV2_ON;
    b = nstats(v);
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &lso, sizeof(lso)),
                     RNDIS_STATUS_NOT_SUPPORTED);
    lso = good;
    lso.rsc_ip6 = NDIS_OFFLOAD_LSOV2_ON;
    lso.lsov2_ip4 = NDIS_OFFLOAD_LSOV2_ON;
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &lso, sizeof(lso)),
                     RNDIS_STATUS_NOT_SUPPORTED);
    expect_no_err(v, &b);
    assert_false(nstats(v).lso4);
}

static void rndis_set__offload_params__lso_and_rx_csum_state_kept_per_nic(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct netvsp_stats s = nstats(v);
    assert_false(s.lso4 || s.lso6 || s.rx_csum);
    assert_int_equal(vsw_port_tx_offloads(v->port), 0);
    /* What Linux sends (rev 3, NVSP >= 5): checksums both ways, LSOv2 on. */
    struct ndis_offload_params p = {.hdr = {NDIS_OBJTYPE_DEFAULT, 3, sizeof(p)},
                                    .ip4_csum = NDIS_OFFLOAD_PARAM_OFF,
                                    .tcp4_csum = NDIS_OFFLOAD_PARAM_TXRX,
                                    .udp4_csum = NDIS_OFFLOAD_PARAM_TXRX,
                                    .tcp6_csum = NDIS_OFFLOAD_PARAM_TXRX,
                                    .udp6_csum = NDIS_OFFLOAD_PARAM_TXRX,
                                    .lsov2_ip4 = NDIS_OFFLOAD_LSOV2_ON,
                                    .lsov2_ip6 = NDIS_OFFLOAD_LSOV2_ON};
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &p, sizeof(p)),
                     RNDIS_STATUS_SUCCESS);
    s = nstats(v);
    assert_true(s.lso4 && s.lso6 && s.rx_csum);
    assert_int_equal(vsw_port_tx_offloads(v->port), VSW_TX_CSUM);
    /* "No change" leaves each as it is; IPv6 LSO off alone. */
    struct ndis_offload_params q = {.hdr = {NDIS_OBJTYPE_DEFAULT, 3, sizeof(q)},
                                    .lsov2_ip6 = NDIS_OFFLOAD_LSOV2_OFF};
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &q, sizeof(q)),
                     RNDIS_STATUS_SUCCESS);
    s = nstats(v);
    assert_true(s.lso4 && !s.lso6 && s.rx_csum);
    /* Receive checksums off for some: still on for the others. */
    q = (struct ndis_offload_params){.hdr = {NDIS_OBJTYPE_DEFAULT, 3, sizeof(q)},
                                     .tcp4_csum = NDIS_OFFLOAD_PARAM_TX,
                                     .udp4_csum = NDIS_OFFLOAD_PARAM_OFF,
                                     .tcp6_csum = NDIS_OFFLOAD_PARAM_TX};
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &q, sizeof(q)),
                     RNDIS_STATUS_SUCCESS);
    assert_true(nstats(v).rx_csum);
    assert_int_equal(vsw_port_tx_offloads(v->port), VSW_TX_CSUM);
    /* ... and off for the last: the switch finishes checksums for us. */
    q.tcp4_csum = q.tcp6_csum = q.udp4_csum = NDIS_OFFLOAD_PARAM_NOCHG;
    q.udp6_csum = NDIS_OFFLOAD_PARAM_OFF;
    assert_int_equal(rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &q, sizeof(q)),
                     RNDIS_STATUS_SUCCESS);
    assert_false(nstats(v).rx_csum);
    assert_int_equal(vsw_port_tx_offloads(v->port), 0);
    /* A rev 1 object (20 bytes): the LSO fields are read, RSC's are not
     * there. */
    assert_int_equal(
        rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &p, NDIS_OFFLOAD_PARAMS_SIZE_REV1),
                     RNDIS_STATUS_INVALID_DATA); /* its header still says 28 */
    p.hdr.size = NDIS_OFFLOAD_PARAMS_SIZE_REV1;
    p.hdr.revision = 1;
    p.lsov2_ip4 = NDIS_OFFLOAD_LSOV2_OFF;
    assert_int_equal(
        rndis_set(v, RNDIS_OID_TCP_OFFLOAD_PARAMETERS, &p, NDIS_OFFLOAD_PARAMS_SIZE_REV1),
                     RNDIS_STATUS_SUCCESS);
    s = nstats(v);
    assert_true(!s.lso4 && s.lso6 && s.rx_csum);
    assert_int_equal(vsw_port_tx_offloads(v->port), VSW_TX_CSUM);
    /* A new RNDIS adapter starts with everything off again. */
    rndis_init(v, NULL);
    s = nstats(v);
    assert_false(s.lso4 || s.lso6 || s.rx_csum);
    assert_int_equal(vsw_port_tx_offloads(v->port), 0);
}

/* OID_GEN_RNDIS_CONFIG_PARAMETER with a UTF-16 name and value. */
static uint32_t config_param(uint8_t *out, const char *name, const char *value)
{
    struct rndis_config_param cp = {.name_offset = sizeof(cp), .param_type = 2};
    uint32_t off = sizeof(cp);
    for (const char *s = name; *s; s++, off += 2) {
        out[off] = (uint8_t)*s;
        out[off + 1] = 0;
    }
    cp.name_len = off - (uint32_t)sizeof(cp);
    cp.value_offset = off;
    for (const char *s = value; *s; s++, off += 2) {
        out[off] = (uint8_t)*s;
        out[off + 1] = 0;
    }
    cp.value_len = off - cp.value_offset;
    memcpy(out, &cp, sizeof(cp));
    return off;
}

static void rndis_set__config_param_network_address__refused_mac_unchanged(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t buf[256];
    uint32_t len = config_param(buf, "NetworkAddress", "0015DDEEFF00");
    struct netvsp_stats b = nstats(v);
    assert_int_not_equal(rndis_set(v, RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER, buf, len),
                         RNDIS_STATUS_SUCCESS);
    expect_no_err(v, &b);
    uint8_t mac[6];
    uint32_t ml = sizeof(mac);
    assert_int_equal(rndis_query(v, RNDIS_OID_802_3_CURRENT_ADDRESS, NULL, 0, mac, &ml),
                     RNDIS_STATUS_SUCCESS);
    assert_memory_equal(mac, MAC_A, 6);
    /* Other parameters are accepted. */
    len = config_param(buf, "*TCPChecksumOffloadIPv4", "3");
    assert_int_equal(rndis_set(v, RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER, buf, len),
                     RNDIS_STATUS_SUCCESS);
    expect_no_err(v, &b);
}

static void rndis_set__config_param_malformed__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    enum { SHORT, NAME_ODD, NAME_PAST, VALUE_PAST, NAME_LONG, VALUE_LONG, NAME_OFF_WRAP,
           VALUE_LEN_WRAP, NCASES };
    for (int i = 0; i < NCASES; i++) {
        uint8_t buf[1200] = {0};
        uint32_t len = config_param(buf, "NetworkAddress", "001122334455");
        struct rndis_config_param cp;
        memcpy(&cp, buf, sizeof(cp));
        switch (i) {
        case SHORT: len = sizeof(cp) - 4; break;
        case NAME_ODD: cp.name_len = 27; break;
        case NAME_PAST: cp.name_offset = len - 10; break;
        case VALUE_PAST: cp.value_len = len; break;
        case NAME_LONG:
            cp.name_len = 512;
            len = 20 + 512 + 24;
            break;
        case VALUE_LONG:
            cp.value_offset = 20;
            cp.value_len = 512;
            len = 20 + 512 + 24;
            break;
        case NAME_OFF_WRAP: cp.name_offset = 0xffffffe0u; break;
        case VALUE_LEN_WRAP: cp.value_offset = 0xfffffff0u; cp.value_len = 0x20; break;
        }
        memcpy(buf, &cp, sizeof(cp));
        struct netvsp_stats b = nstats(v);
        assert_int_equal(rndis_set(v, RNDIS_OID_GEN_RNDIS_CONFIG_PARAMETER, buf, len),
                         RNDIS_STATUS_INVALID_DATA);
        if (nstats(v).errors[NETVSP_ERR_OID] != b.errors[NETVSP_ERR_OID] + 1)
            fail_msg("config parameter case %d not counted", i);
        expect_err(v, &b, NETVSP_ERR_OID);
    }
}

/* Child side of the next test: no cmocka in a forked process. Completes
 * the control transfers one at a time and counts KEEPALIVE_C answers. */
static int pending_ctrl_child(struct vm *v, unsigned want)
{
    unsigned answers = 0;
    for (unsigned i = 0; i < v->nxfer; i++) {
        struct xfer *x = &v->xfer[i];
        if (x->nvsp.channel_type == NVSP_CHANNEL_TYPE_CONTROL && x->nranges == 1) {
            struct rndis_msg_hdr h;
            memcpy(&h, v->rbuf + x->r[0].byte_offset, sizeof(h));
            answers += h.type == RNDIS_MSG_KEEPALIVE_C;
        }
    }
    for (unsigned i = 0; i < v->nxfer; i++) { /* the inbox grows as we go */
        if (v->xfer[i].completed)
            continue;
        complete_xfer_raw(v, v->xfer[i].tid);
        v->xfer[i].completed = true;
        unsigned before = v->nxfer;
        pump(v);
        if (collect_raw(v) < 0)
            return 2;
        for (unsigned j = before; j < v->nxfer; j++) {
            struct rndis_msg_hdr h;
            memcpy(&h, v->rbuf + v->xfer[j].r[0].byte_offset, sizeof(h));
            answers += h.type == RNDIS_MSG_KEEPALIVE_C;
        }
    }
    return answers == want ? 0 : 3;
}

/*
 * More control requests than control sub-allocations: the answers that do
 * not fit wait in netvsp's queue and go out as the guest completes earlier
 * ones. With two or more waiting, flush_pending_ctrl() re-queues the
 * message it just took instead of sending it and never returns (the switch
 * worker hangs in rx_burst). Run in a child so a hang fails the test.
 */
static void rndis_control__answers_queued_beyond_control_subs__delivered_without_hang(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    const unsigned n = CTRL_SUBS + 2;
    uint64_t tids[CTRL_SUBS + 2];
    for (unsigned i = 0; i < n; i++) {
        struct rndis_keepalive_req k = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(k)},
                                        .req_id = 1000 + i};
        tids[i] = rndis_send_section(v, 1 + i, NVSP_CHANNEL_TYPE_CONTROL, &k, sizeof(k));
    }
    inbox_clear(v);
    pump(v);
    collect(v);
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(comp_status(v, tids[i], NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                         NVSP_STAT_SUCCESS);
    assert_int_equal(v->nxfer, CTRL_SUBS); /* two answers wait */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(30);
        _exit(pending_ctrl_child(v, n));
    }
    int st = 0;
    bool done = false;
    for (int i = 0; i < 1000 && !done; i++) { /* 10 s */
        pid_t r = waitpid(pid, &st, WNOHANG);
        assert_true(r >= 0);
        done = r == pid;
        if (!done)
            usleep(10000);
    }
    if (!done) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        fail_msg("rx_burst did not return after the guest completed a control transfer "
                 "while two RNDIS answers were queued (flush_pending_ctrl loops)");
    }
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) != 0)
        fail_msg("queued RNDIS answers not delivered (child status %d)", WEXITSTATUS(st));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(rndis_init__valid__init_c_fields),
        T(rndis_query__gen_and_802_3_oids__answered),
        T(rndis_query__offload_caps__size_of_requested_revision),
        T(rndis_query__offload_caps_bad_ndis_header__refused_and_counted),
        T(rndis_set__packet_filter__link_follows),
        T(rndis_set__other_oids__accepted_or_not_supported),
        T(rndis_keepalive__answered_with_request_id),
        T(rndis_reset__answered_reset_c),
        T(rndis_halt__no_answer__link_down),
        T(rndis__type_not_allowed__refused_and_counted),
        T(rndis_oid__info_buffer_outside_message__refused_and_counted),
        T(rndis_set__offload_params_bad_ndis_header__refused_and_counted),
        T(rndis_set__offload_params__lso_and_rx_csum_state_kept_per_nic),
        T(rndis_set__config_param_network_address__refused_mac_unchanged),
        T(rndis_set__config_param_malformed__refused_and_counted),
        T(rndis_control__answers_queued_beyond_control_subs__delivered_without_hang),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
