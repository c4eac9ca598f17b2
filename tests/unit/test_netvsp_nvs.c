/*
 * Unit tests of netvsp, the root's network VSP (netvsp.h), with the fake
 * guest of netvsp-fixture.h: NVSP (nvs.c): version negotiation, NDIS config and version, the
 * receive and send buffers and their revocation, set-up order and message
 * checks, bad messages counted until the guest is cut off, broken rings.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "netvsp-fixture.h"

static void init__each_supported_version__success_with_answer_size_of_version(void **state)
{
    struct vm *v = F(state)->a;
    static const uint32_t versions[] = {V61,
                                        NVSP_PROTOCOL_VERSION_6,
                                        NVSP_PROTOCOL_VERSION_5,
                                        NVSP_PROTOCOL_VERSION_4,
                                        NVSP_PROTOCOL_VERSION_2,
                                        NVSP_PROTOCOL_VERSION_1};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        uint32_t ver = versions[i];
        if (i)
            reopen(v);
        struct nvsp_msg_init_complete c;
        uint32_t len, want_len = ver >= V61 ? NVSP_MSG_SIZE_61 : 32; /* 28, padded to 8 */
        assert_int_equal(nvsp_init(v, ver, ver, &c, &len), NVSP_STAT_SUCCESS);
        assert_int_equal(len, want_len);
        assert_int_equal(c.negotiated_ver, ver == NVSP_PROTOCOL_VERSION_1 ? 2 : 0xffffffffu);
        assert_int_equal(c.max_mdl_chain_len, 34);
        assert_int_equal(nstats(v).nvsp_version, ver);
        /* Later answers have the negotiated size too. */
        if (ver >= NVSP_PROTOCOL_VERSION_2)
            ndis_config(v, FRAME_1514);
        struct nvsp_msg_recv_buf_complete rc;
        assert_int_equal(recv_buf(v, v->rgpadl, &rc, &len), NVSP_STAT_SUCCESS);
        assert_int_equal(len, want_len);
    }
}

static void init__version_range__newest_common_chosen(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_1, 0x00ffffffu, NULL, NULL),
                     NVSP_STAT_SUCCESS);
    assert_int_equal(nstats(v).nvsp_version, V61);
    reopen(v);
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_5, NULL, NULL),
                     NVSP_STAT_SUCCESS);
    assert_int_equal(nstats(v).nvsp_version, NVSP_PROTOCOL_VERSION_5);
}

static void init__unsupported_version__answered_not_success_and_retry_allowed(void **state)
{
    struct vm *v = F(state)->a;
    static const uint32_t bad[][2] = {
        {0x00070000, 0x00070000}, /* too new */
        {0x00010000, 0x00010000}, /* too old / unknown */
        {0x00030001, 0x00030001}, /* between 2 and 4 */
        {NVSP_PROTOCOL_VERSION_5, NVSP_PROTOCOL_VERSION_4}, /* min > max */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct netvsp_stats b = nstats(v);
        assert_int_not_equal(nvsp_init(v, bad[i][0], bad[i][1], NULL, NULL), NVSP_STAT_SUCCESS);
        assert_int_equal(nstats(v).nvsp_version, 0);
        expect_no_err(v, &b);
    }
    /* Not initialised: the next message is out of order. */
    struct netvsp_stats b = nstats(v);
    ndis_ver(v);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
    /* A guest walks down its list: the next supported version works. */
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_6, NVSP_PROTOCOL_VERSION_6, NULL, NULL),
                     NVSP_STAT_SUCCESS);
}

static void ndis_config__mtu_in_range__frame_size_honoured(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, 9014);
    struct netvsp_stats s = nstats(v);
    assert_int_equal(s.frame_size, 9014);
    /* Sections hold the RNDIS header, a PPI and the whole frame. */
    assert_true(v->sub_size >= 9014 + sizeof(struct rndis_packet_msg) + 16);
    rndis_init(v, NULL);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE), 9000);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_MAXIMUM_TOTAL_SIZE), 9014);
    reopen(v);
    nvsp_setup(v, V61, 4000);
    assert_int_equal(nstats(v).frame_size, 4000);
}

static void ndis_config__mtu_out_of_range__replaced_by_1514(void **state)
{
    struct vm *v = F(state)->a;
    static const uint32_t mtus[] = {0, 1, 1500, 1513, 9217, 65535, 0xffffffffu};
    for (size_t i = 0; i < sizeof(mtus) / sizeof(mtus[0]); i++) {
        if (i)
            reopen(v);
        struct netvsp_stats b = nstats(v);
        nvsp_setup(v, V61, mtus[i]);
        assert_int_equal(nstats(v).frame_size, FRAME_1514);
        assert_true(v->sub_size >= FRAME_1514 + sizeof(struct rndis_packet_msg) + 16);
        expect_no_err(v, &b);
    }
    rndis_init(v, NULL);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE), 1500);
}

static void ndis_config__above_nic_mtu__capped_to_nic(void **state)
{
    struct fix *f = F(state);
    f->b = vm_create(f, "vm-b", MAC_B, 1500);
    nvsp_setup(f->b, V61, 9014);
    assert_int_equal(nstats(f->b).frame_size, FRAME_1514);
    rndis_init(f->b, NULL);
    assert_int_equal(query_u32(f->b, RNDIS_OID_GEN_MAXIMUM_FRAME_SIZE), 1500);
}

static void nvsp1__no_ndis_config__default_frame(void **state)
{
    struct vm *v = F(state)->a;
    bring_up_ver(v, NVSP_PROTOCOL_VERSION_1, 0);
    assert_int_equal(nstats(v).frame_size, FRAME_1514);
    assert_int_equal(v->msg_size, NVSP_MSG_SIZE_LEGACY);
    uint8_t frame[600];
    make_frame(frame, sizeof(frame), v->mac, 3);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
    collect(v);
    assert_int_equal(data_frames(v), 1);
    /* Legacy message size: 28 bytes, padded to 32 in the ring. */
    assert_int_equal(v->xfer[0].payload_len, 32);
}

static void recv_buf__valid__one_section_at_offset_0(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, V61, V61, NULL, NULL), NVSP_STAT_SUCCESS);
    ndis_config(v, FRAME_1514);
    ndis_ver(v);
    struct nvsp_msg_recv_buf_complete c;
    assert_int_equal(recv_buf(v, v->rgpadl, &c, NULL), NVSP_STAT_SUCCESS);
    assert_int_equal(c.num_sections, 1);
    assert_int_equal(c.sections[0].offset, 0);
    assert_true(c.sections[0].sub_alloc_size >= FRAME_1514 + sizeof(struct rndis_packet_msg) + 16);
    assert_true(c.sections[0].num_sub_allocs > CTRL_SUBS);
    assert_true((uint64_t)c.sections[0].sub_alloc_size * c.sections[0].num_sub_allocs <=
                RBUF_PAGES * HV_PAGE_SIZE);
    assert_int_equal(c.sections[0].end_offset,
                     c.sections[0].sub_alloc_size * c.sections[0].num_sub_allocs);
    assert_int_equal(nstats(v).recv_sections, c.sections[0].num_sub_allocs);
}

static void send_buf__valid__section_size_6144(void **state)
{
    struct vm *v = F(state)->a;
    /* No receive buffer needed first. */
    assert_int_equal(nvsp_init(v, V61, V61, NULL, NULL), NVSP_STAT_SUCCESS);
    struct nvsp_msg_send_buf_complete c;
    assert_int_equal(send_buf(v, v->sgpadl, &c), NVSP_STAT_SUCCESS);
    assert_int_equal(c.section_size, 6144);
    assert_int_equal(nstats(v).send_sections, NSECTIONS);
}

static void buffers__unknown_or_unusable_gpadl__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, V61, V61, NULL, NULL), NVSP_STAT_SUCCESS);
    ndis_config(v, FRAME_1514);
    struct netvsp_stats b = nstats(v);
    assert_int_equal(recv_buf(v, 0x12345, NULL, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_GPADL);
    /* Too small for the control sub-allocations and one frame. */
    uint32_t small = grant(v, 4, NULL);
    b = nstats(v);
    assert_int_equal(recv_buf(v, small, NULL, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_GPADL);
    b = nstats(v);
    assert_int_equal(send_buf(v, 0x54321, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_GPADL);
    /* Smaller than one section. */
    uint32_t one = grant(v, 1, NULL);
    b = nstats(v);
    assert_int_equal(send_buf(v, one, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_GPADL);
    /* The refusals left nothing behind: the real buffers still work. */
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
    assert_int_equal(send_buf(v, v->sgpadl, NULL), NVSP_STAT_SUCCESS);
}

/* Take back a GPADL made with grant() and free its pages. */
static void grant_drop(struct vm *v, uint32_t gpadl, uint64_t pfn, uint32_t pages)
{
    assert_int_equal(vmbus_client_gpadl_teardown(v->client, v->relid, gpadl), 0);
    hv_guest_free_range(v->g, pfn, pages);
}

/*
 * Buffers larger than any real guest driver uses (NETVSP_RECV_BUF_MAX,
 * NETVSP_SEND_BUF_MAX) are refused and counted; buffers of exactly those
 * sizes are taken.
 */
static void buffers__larger_than_real_guests_use__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, V61, V61, NULL, NULL), NVSP_STAT_SUCCESS);
    ndis_config(v, FRAME_1514);
    const uint32_t rmax = NETVSP_RECV_BUF_MAX / HV_PAGE_SIZE, smax = NETVSP_SEND_BUF_MAX / HV_PAGE_SIZE;
    uint64_t pfn;
    struct netvsp_stats b = nstats(v);
    uint32_t g = grant(v, rmax + 1, &pfn);
    assert_int_equal(recv_buf(v, g, NULL, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_BUFFER_SIZE);
    grant_drop(v, g, pfn, rmax + 1);
    b = nstats(v);
    g = grant(v, smax + 1, &pfn);
    assert_int_equal(send_buf(v, g, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_BUFFER_SIZE);
    grant_drop(v, g, pfn, smax + 1);
    b = nstats(v);
    assert_int_equal(recv_buf(v, grant(v, rmax, NULL), NULL, NULL), NVSP_STAT_SUCCESS);
    assert_int_equal(send_buf(v, grant(v, smax, NULL), NULL), NVSP_STAT_SUCCESS);
    expect_no_err(v, &b);
    assert_int_equal(nstats(v).send_sections, NETVSP_SEND_BUF_MAX / NVSP_SEND_SECTION_SIZE);
}

static void nvsp_misc__subchannel_oid_query_ex__answered(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct netvsp_stats b = nstats(v);
    struct nvsp_msg_subchannel sc = {.type = NVSP_MSG5_SUBCHANNEL,
                                     .op_or_status = NVSP_SUBCHANNEL_ALLOCATE,
                                     .num_subchannels = 3};
    struct nvsp_msg_subchannel sa;
    /* One queue: granted none of the three, which are counted. */
    nvsp_request(v, &sc, sizeof(sc), &sa, sizeof(sa), NULL);
    assert_int_equal(sa.type, NVSP_MSG5_SUBCHANNEL);
    assert_int_equal(sa.op_or_status, NVSP_STAT_SUCCESS);
    assert_int_equal(sa.num_subchannels, 0);
    assert_int_equal(nstats(v).subchannels_refused, b.subchannels_refused + 3);
    assert_int_equal(nstats(v).subch_refused[NETVSP_SUBCH_TOO_MANY],
                     b.subch_refused[NETVSP_SUBCH_TOO_MANY] + 1);
    /* An operation other than ALLOCATE: refused, counted by its reason,
     * not a protocol error. */
    sc.op_or_status = 7;
    nvsp_request(v, &sc, sizeof(sc), &sa, sizeof(sa), NULL);
    assert_int_equal(sa.op_or_status, NVSP_STAT_FAIL);
    assert_int_equal(sa.num_subchannels, 0);
    assert_int_equal(nstats(v).subch_refused[NETVSP_SUBCH_OPERATION],
                     b.subch_refused[NETVSP_SUBCH_OPERATION] + 1);
    expect_no_err(v, &b);
    b = nstats(v);
    struct nvsp_msg_oid_query_ex q = {.type = NVSP_MSG5_OID_QUERY_EX,
                                      .oid = RNDIS_OID_GEN_LINK_SPEED};
    uint32_t qa[3];
    nvsp_request(v, &q, sizeof(q), qa, sizeof(qa), NULL);
    assert_int_equal(qa[0], NVSP_MSG5_OID_QUERY_EX_COMPLETE);
    assert_int_equal(qa[1], RNDIS_STATUS_NOT_SUPPORTED);
    expect_no_err(v, &b);
}

/*
 * SWITCH_DATA_PATH is completed with an empty completion: Linux's
 * netvsc_switch_datapath() sleeps until netvsc_send_completion() sees a
 * completion with no payload for it, and OpenVMM's netvsp completes the
 * request with send_completion(id, None). A completion with a body hangs
 * Linux. Without COMPLETION_REQUESTED nothing is sent.
 */
static void switch_data_path__completion_requested__completed_without_payload(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct netvsp_stats b = nstats(v);
    for (uint32_t path = 0; path <= 1; path++) {
        struct nvsp_msg_switch_data_path sw = {.type = NVSP_MSG4_SWITCH_DATA_PATH,
                                               .active_datapath = path};
        uint32_t ans_len = 99;
        uint8_t ans[8];
        nvsp_request(v, &sw, sizeof(sw), ans, sizeof(ans), &ans_len);
        assert_int_equal(ans_len, 0);
        assert_int_equal(v->ncomp, 1);
    }
    struct nvsp_msg_switch_data_path sw = {.type = NVSP_MSG4_SWITCH_DATA_PATH};
    inbox_clear(v);
    nvsp_send(v, &sw, sizeof(sw), 4242, false);
    pump(v);
    collect(v);
    assert_int_equal(v->ncomp, 0);
    expect_no_err(v, &b);
}

static void nvsp__messages_before_init__refused_out_of_order(void **state)
{
    struct vm *v = F(state)->a;
    struct nvsp_msg_ndis_config cfg = {.type = NVSP_MSG2_SEND_NDIS_CONFIG, .mtu = FRAME_1514};
    struct nvsp_msg_ndis_ver nv = {.type = NVSP_MSG1_SEND_NDIS_VER, .ndis_major = 6};
    struct nvsp_msg_send_buf rb = {.type = NVSP_MSG1_SEND_RECV_BUF, .gpadl = v->rgpadl,
                                   .id = NVSP_RECV_BUF_ID};
    struct nvsp_msg_send_buf sb = {.type = NVSP_MSG1_SEND_SEND_BUF, .gpadl = v->sgpadl};
    struct nvsp_msg_rndis_pkt rp = {.type = NVSP_MSG1_SEND_RNDIS_PKT, .channel_type = 1,
                                    .send_buf_section_index = 0, .send_buf_section_size = 24};
    struct nvsp_msg_revoke_buf rv = {.type = NVSP_MSG1_REVOKE_RECV_BUF, .id = NVSP_RECV_BUF_ID};
    struct nvsp_msg_subchannel sc = {.type = NVSP_MSG5_SUBCHANNEL, .op_or_status = 1,
                                     .num_subchannels = 1};
    const struct {
        const void *m;
        uint32_t len;
        bool want;
    } msgs[] = {
        {&cfg, sizeof(cfg), false}, {&nv, sizeof(nv), false}, {&rb, sizeof(rb), true},
        {&sb, sizeof(sb), true},    {&rp, sizeof(rp), true},  {&rv, sizeof(rv), false},
        {&sc, sizeof(sc), true},
    };
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        struct netvsp_stats b = nstats(v);
        inbox_clear(v);
        nvsp_send(v, msgs[i].m, msgs[i].len, 100 + i, msgs[i].want);
        pump(v);
        expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
        /* Dropped: no answer, no state. */
        assert_int_equal(collect(v), 0);
    }
    assert_int_equal(nstats(v).nvsp_version, 0);
}

static void nvsp__duplicate_setup_messages__refused_out_of_order(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    /* INIT again: dropped, no answer. */
    struct netvsp_stats b = nstats(v);
    struct nvsp_msg_init in = {.type = NVSP_MSG_INIT, .min_protocol_ver = V61,
                               .max_protocol_ver = V61};
    inbox_clear(v);
    nvsp_send(v, &in, sizeof(in), 77, true);
    pump(v);
    assert_int_equal(collect(v), 0);
    expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
    /* NDIS_CONFIG again (after RECV_BUF too), NDIS_VER again. */
    b = nstats(v);
    ndis_config(v, 9014);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
    assert_int_equal(nstats(v).frame_size, FRAME_1514);
    b = nstats(v);
    ndis_ver(v);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
    /* Buffers again: answered FAIL. */
    b = nstats(v);
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
    b = nstats(v);
    assert_int_equal(send_buf(v, v->sgpadl, NULL), NVSP_STAT_FAIL);
    expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
    /* The first registration still stands. */
    rndis_init(v, NULL);
}

static void nvsp__ndis_config_after_recv_buf__refused(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_1, NVSP_PROTOCOL_VERSION_1, NULL, NULL),
                     NVSP_STAT_SUCCESS);
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
    reopen(v);
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_2, NULL, NULL),
                     NVSP_STAT_SUCCESS);
    ndis_config(v, FRAME_1514);
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
    struct netvsp_stats b = nstats(v);
    ndis_config(v, 9014);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
}

static void recv_buf__before_ndis_config_at_v2__refused_out_of_order(void **state)
{
    struct vm *v = F(state)->a;
    static const uint32_t vers[] = {NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_4, V61};
    for (size_t i = 0; i < sizeof(vers) / sizeof(vers[0]); i++) {
        if (i)
            reopen(v);
        assert_int_equal(nvsp_init(v, vers[i], vers[i], NULL, NULL), NVSP_STAT_SUCCESS);
        ndis_ver(v);
        struct netvsp_stats b = nstats(v);
        assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_FAIL);
        expect_err(v, &b, NETVSP_ERR_NVSP_ORDER);
        /* After NDIS_CONFIG it works. */
        ndis_config(v, FRAME_1514);
        assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
    }
    /* NVSP 1 has no NDIS_CONFIG: RECV_BUF needs none. */
    reopen(v);
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_1, NVSP_PROTOCOL_VERSION_1, NULL, NULL),
                     NVSP_STAT_SUCCESS);
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
}

static void nvsp__request_without_completion_requested__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    struct nvsp_msg_init in = {.type = NVSP_MSG_INIT, .min_protocol_ver = V61,
                               .max_protocol_ver = V61};
    struct netvsp_stats b = nstats(v);
    nvsp_send(v, &in, sizeof(in), 1, false);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NO_COMPLETION);
    assert_int_equal(collect(v), 0);
    assert_int_equal(nstats(v).nvsp_version, 0);
    assert_int_equal(nvsp_init(v, V61, V61, NULL, NULL), NVSP_STAT_SUCCESS);
    ndis_config(v, FRAME_1514);
    ndis_ver(v);
    struct nvsp_msg_send_buf rb = {.type = NVSP_MSG1_SEND_RECV_BUF, .gpadl = v->rgpadl,
                                   .id = NVSP_RECV_BUF_ID};
    struct nvsp_msg_send_buf sb = {.type = NVSP_MSG1_SEND_SEND_BUF, .gpadl = v->sgpadl};
    struct nvsp_msg_rndis_pkt rp = {.type = NVSP_MSG1_SEND_RNDIS_PKT, .channel_type = 1,
                                    .send_buf_section_index = 0, .send_buf_section_size = 24};
    const struct {
        const void *m;
        uint32_t len;
    } msgs[] = {{&rb, sizeof(rb)}, {&sb, sizeof(sb)}, {&rp, sizeof(rp)}};
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        b = nstats(v);
        inbox_clear(v);
        nvsp_send(v, msgs[i].m, msgs[i].len, 0, false);
        pump(v);
        expect_err(v, &b, NETVSP_ERR_NO_COMPLETION);
        assert_int_equal(collect(v), 0);
    }
    /* Nothing was registered. */
    assert_int_equal(recv_buf(v, v->rgpadl, NULL, NULL), NVSP_STAT_SUCCESS);
    assert_int_equal(send_buf(v, v->sgpadl, NULL), NVSP_STAT_SUCCESS);
}

static void nvsp__short_messages__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    /* Lengths after the ring's padding to 8: each below what its type needs. */
    struct nvsp_msg_init in = {.type = NVSP_MSG_INIT, .min_protocol_ver = V61,
                               .max_protocol_ver = V61};
    struct netvsp_stats b = nstats(v);
    put_pkt(v, VMBUS_PKT_DATA_INBAND, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, 1, NULL, 0, NULL, 0);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NVSP_SHORT);
    b = nstats(v);
    put_pkt(v, VMBUS_PKT_DATA_INBAND, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, 2, NULL, 0, &in, 8);
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NVSP_SHORT);
    assert_int_equal(collect(v), 0);
    /* The same INIT whole is fine (12 bytes, the shortest a guest may send). */
    uint64_t tid = ++v->next_tid;
    put_pkt(v, VMBUS_PKT_DATA_INBAND, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, tid, NULL, 0, &in, 12);
    pump(v);
    collect(v);
    const struct comp *ic = find_comp(v, tid);
    assert_non_null(ic);
    struct nvsp_msg_init_complete icm;
    memcpy(&icm, ic->msg, sizeof(icm));
    assert_int_equal(icm.type, NVSP_MSG_INIT_COMPLETE);
    assert_int_equal(icm.status, NVSP_STAT_SUCCESS);
    struct nvsp_msg_ndis_config cfg = {.type = NVSP_MSG2_SEND_NDIS_CONFIG, .mtu = FRAME_1514};
    struct nvsp_msg_rndis_pkt rp = {.type = NVSP_MSG1_SEND_RNDIS_PKT, .channel_type = 1};
    struct nvsp_msg_send_buf rb = {.type = NVSP_MSG1_SEND_RECV_BUF, .gpadl = v->rgpadl};
    const struct {
        const void *m;
        uint32_t len;
    } msgs[] = {{&cfg, 16}, {&rp, 8}, {&rb, 8}};
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        b = nstats(v);
        put_pkt(v, VMBUS_PKT_DATA_INBAND, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, 10 + i, NULL, 0,
                msgs[i].m, msgs[i].len);
        pump(v);
        expect_err(v, &b, NETVSP_ERR_NVSP_SHORT);
    }
}

static void nvsp__unknown_or_version_gated_type__refused_and_counted(void **state)
{
    struct vm *v = F(state)->a;
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_2, NVSP_PROTOCOL_VERSION_2, NULL, NULL),
                     NVSP_STAT_SUCCESS);
    static const uint32_t types[] = {
        0, NVSP_MSG_INIT_COMPLETE, NVSP_MSG1_SEND_RECV_BUF_COMPLETE, 109, 120, 999, 0xffffffffu,
        NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE, /* in-band: completions are completion packets */
        NVSP_MSG4_SWITCH_DATA_PATH,        /* NVSP 4 */
        NVSP_MSG5_SUBCHANNEL,              /* NVSP 5 */
        NVSP_MSG5_OID_QUERY_EX,            /* NVSP 5 */
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        uint32_t m[10] = {types[i], 1, 1, 1};
        struct netvsp_stats b = nstats(v);
        inbox_clear(v);
        nvsp_send(v, m, sizeof(m), 50 + i, true);
        pump(v);
        expect_err(v, &b, NETVSP_ERR_NVSP_TYPE);
        assert_int_equal(collect(v), 0);
    }
    reopen(v);
    assert_int_equal(nvsp_init(v, NVSP_PROTOCOL_VERSION_1, NVSP_PROTOCOL_VERSION_1, NULL, NULL),
                     NVSP_STAT_SUCCESS);
    struct netvsp_stats b = nstats(v);
    ndis_config(v, FRAME_1514); /* NVSP 2 */
    pump(v);
    expect_err(v, &b, NETVSP_ERR_NVSP_TYPE);
}

static void revoke_recv_buf__stops_delivery(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    uint8_t frame[64], msg[128];
    make_frame(frame, sizeof(frame), MAC_A, 1);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 1);
    collect(v);
    uint64_t before_revoke = v->xfer[0].tid;
    struct nvsp_msg_revoke_buf r = {.type = NVSP_MSG1_REVOKE_RECV_BUF, .id = NVSP_RECV_BUF_ID};
    struct netvsp_stats b = nstats(v);
    nvsp_send(v, &r, sizeof(r), 0, false);
    pump(v);
    expect_no_err(v, &b);
    assert_false(vsw_port_link(v->port));
    assert_false(nstats(v).rndis_ready);
    /* Nothing more goes into the buffer. */
    memset(v->rbuf, 0xa5, RBUF_PAGES * HV_PAGE_SIZE);
    struct vsw_port_stats pb = pstats(v);
    assert_int_equal(frame_to_guest(v, frame, sizeof(frame)), 0);
    assert_int_equal(pstats(v).drops[VSW_DROP_LINK_DOWN], pb.drops[VSW_DROP_LINK_DOWN] + 1);
    inbox_clear(v);
    assert_int_equal(collect(v), 0);
    /* Control requests get no answer in it either; data is not taken. */
    uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    b = nstats(v);
    uint64_t tid = rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    struct rndis_keepalive_req k = {.hdr = {.type = RNDIS_MSG_KEEPALIVE, .len = sizeof(k)}};
    uint64_t tid2 = rndis_send_section(v, 2, NVSP_CHANNEL_TYPE_CONTROL, &k, sizeof(k));
    assert_int_equal(pump(v), 0);
    collect(v);
    assert_int_not_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    assert_int_not_equal(comp_status(v, tid2, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                         NVSP_STAT_SUCCESS);
    assert_int_equal(v->nxfer, 0);
    expect_errs(v, &b, NETVSP_ERR_NOT_READY, 2);
    for (uint32_t i = 0; i < RBUF_PAGES * HV_PAGE_SIZE; i += 509)
        assert_int_equal(v->rbuf[i], 0xa5);
    /* A completion for a transfer made before the revoke touches nothing. */
    complete_xfer_raw(v, before_revoke);
    pump(v);
    assert_int_equal(nstats(v).disconnects, 0);
    for (uint32_t i = 0; i < RBUF_PAGES * HV_PAGE_SIZE; i += 509)
        assert_int_equal(v->rbuf[i], 0xa5);
}

static void revoke_send_buf__sections_refused_gpa_direct_still_works(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct nvsp_msg_revoke_buf r = {.type = NVSP_MSG1_REVOKE_SEND_BUF, .id = NVSP_SEND_BUF_ID};
    nvsp_send(v, &r, sizeof(r), 0, false);
    pump(v);
    uint8_t frame[64], msg[128];
    make_frame(frame, sizeof(frame), MAC_OTHER, 1);
    uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    struct netvsp_stats b = nstats(v);
    rndis_send_section(v, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(v), 0);
    expect_err(v, &b, NETVSP_ERR_SECTION);
    memcpy(v->scratch, msg, len);
    struct grange g = scratch_range(v, 0, 0, len);
    uint8_t ext[64];
    uint32_t el = gpa_ext(ext, &g, 1, 1);
    rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, NVSP_SECTION_NONE, 0, ext, el);
    assert_int_equal(pump(v), 1);
    assert_mbuf_eq(v->rx[0], frame, sizeof(frame));
}

static void errors_max__guest_disconnected__other_vm_unaffected(void **state)
{
    struct fix *f = F(state);
    struct vm *a = f->a;
    f->b = vm_create(f, "vm-b", MAC_B, NIC_MTU);
    struct vm *b = f->b;
    bring_up(a);
    bring_up(b);
    struct netvsp_stats sb = nstats(a);
    uint32_t bad[10] = {999};
    for (int i = 0; i < NETVSP_ERRORS_MAX - 1; i++)
        nvsp_send(a, bad, sizeof(bad), 0, false);
    pump(a);
    assert_int_equal(nstats(a).disconnects, 0);
    /* The last straw, and more behind it that must not be looked at. */
    for (int i = 0; i < 5; i++)
        nvsp_send(a, bad, sizeof(bad), 0, false);
    pump(a);
    struct netvsp_stats s = nstats(a);
    assert_int_equal(s.disconnects, sb.disconnects + 1);
    assert_int_equal(s.errors[NETVSP_ERR_NVSP_TYPE],
                     sb.errors[NETVSP_ERR_NVSP_TYPE] + NETVSP_ERRORS_MAX);
    /* Cut off: no frames go to it, nothing more is read. */
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 1);
    assert_int_equal(frame_to_guest(a, frame, sizeof(frame)), 0);
    pump(a);
    assert_int_equal(nstats(a).errors[NETVSP_ERR_NVSP_TYPE], s.errors[NETVSP_ERR_NVSP_TYPE]);
    /* The control thread closes the channel. */
    assert_true(nstats(a).connected);
    hv_host_run(f->host, 0);
    assert_false(nstats(a).connected);
    struct vmbus_server_stats ss;
    vmbus_server_get_stats(a->srv, &ss);
    assert_int_equal(ss.ring_failures, 1);
    assert_false(vsw_port_link(a->port));
    /* The other NIC never noticed. */
    assert_int_equal(nstats(b).disconnects, 0);
    assert_true(nstats(b).connected);
    make_frame(frame, sizeof(frame), MAC_B, 2);
    assert_int_equal(frame_to_guest(b, frame, sizeof(frame)), 1);
    collect(b);
    assert_int_equal(data_frames(b), 1);
    uint8_t msg[128];
    uint32_t len = build_packet(msg, NULL, 0, frame, sizeof(frame));
    rndis_send_section(b, 1, NVSP_CHANNEL_TYPE_DATA, msg, len);
    assert_int_equal(pump(b), 1);
    assert_mbuf_eq(b->rx[0], frame, sizeof(frame));
    /* And the cut-off guest can start again on a fresh channel. */
    reopen(a);
    bring_up(a);
    assert_int_equal(frame_to_guest(a, frame, sizeof(frame)), 0); /* not its MAC */
    make_frame(frame, sizeof(frame), MAC_A, 3);
    assert_int_equal(frame_to_guest(a, frame, sizeof(frame)), 1);
}

static void ring__corrupt_write_index_of_ring_from_guest__fatal(void **state)
{
    struct fix *f = F(state);
    struct vm *v = f->a;
    bring_up(v);
    struct vmbus_ring *tx = vmbus_gchan_tx(v->ch);
    struct netvsp_stats b = nstats(v);
    __atomic_store_n(&tx->hdr->write_index, 12u, __ATOMIC_RELEASE); /* not a multiple of 8 */
    assert_int_equal(pump(v), 0);
    struct netvsp_stats s = nstats(v);
    assert_int_equal(s.errors[NETVSP_ERR_RING], b.errors[NETVSP_ERR_RING] + 1);
    assert_int_equal(s.disconnects, b.disconnects + 1);
    hv_host_run(f->host, 0);
    assert_false(nstats(v).connected);
    /* Past the end of the data area, on a fresh channel. */
    reopen(v);
    bring_up(v);
    tx = vmbus_gchan_tx(v->ch);
    b = nstats(v);
    __atomic_store_n(&tx->hdr->write_index, tx->dsize + 8, __ATOMIC_RELEASE);
    pump(v);
    s = nstats(v);
    assert_int_equal(s.errors[NETVSP_ERR_RING], b.errors[NETVSP_ERR_RING] + 1);
    assert_int_equal(s.disconnects, b.disconnects + 1);
    hv_host_run(f->host, 0);
    assert_false(nstats(v).connected);
}

/*
 * The ring netvsp writes into has an index the guest owns too: its read
 * index. A guest that corrupts it breaks the channel just as much; the ring
 * code reports it (-EPROTO, sticky), and netvsp must treat it as fatal like
 * a corrupt ring from the guest: count it, cut the guest off, have the
 * channel closed. Otherwise the channel silently stops being served.
 */
static void ring__corrupt_read_index_of_ring_to_guest__fatal(void **state)
{
    struct fix *f = F(state);
    struct vm *v = f->a;
    bring_up(v);
    struct vmbus_ring *rx = vmbus_gchan_rx(v->ch);
    struct netvsp_stats b = nstats(v);
    __atomic_store_n(&rx->hdr->read_index, 12u, __ATOMIC_RELEASE); /* not a multiple of 8 */
    /* Something the root must answer, and a frame for the guest. */
    struct nvsp_msg_switch_data_path sw = {.type = NVSP_MSG4_SWITCH_DATA_PATH};
    nvsp_send(v, &sw, sizeof(sw), 1, true);
    pump(v);
    uint8_t frame[64];
    make_frame(frame, sizeof(frame), MAC_A, 1);
    frame_to_guest(v, frame, sizeof(frame));
    pump(v);
    struct netvsp_stats s = nstats(v);
    assert_int_equal(s.errors[NETVSP_ERR_RING], b.errors[NETVSP_ERR_RING] + 1);
    assert_int_equal(s.disconnects, b.disconnects + 1);
    hv_host_run(f->host, 0);
    assert_false(nstats(v).connected);
}

static void ring__packet_type_not_for_a_vsp__fatal(void **state)
{
    struct fix *f = F(state);
    struct vm *v = f->a;
    bring_up(v);
    struct netvsp_stats b = nstats(v);
    uint8_t ext[16] = {0};
    uint32_t cnt = 1;
    memcpy(ext + 4, &cnt, 4);
    uint8_t body[NVSP_MSG_SIZE_61] = {0};
    put_pkt(v, VMBUS_PKT_DATA_USING_XFER_PAGES, VMBUS_PKT_FLAG_COMPLETION_REQUESTED, 1, ext,
            sizeof(ext), body, sizeof(body));
    pump(v);
    assert_int_equal(nstats(v).disconnects, b.disconnects + 1);
    hv_host_run(f->host, 0);
    assert_false(nstats(v).connected);
}

/*
 * REVOKE_RECV_BUF then SEND_RECV_BUF again on the same connection: the
 * second registration allocates the sub-allocation tables again without
 * freeing the first ones. A guest can repeat this without bound.
 */
static void revoke_recv_buf__registered_again_many_times__no_memory_growth(void **state)
{
    struct vm *v = F(state)->a;
    nvsp_setup(v, V61, FRAME_1514);
    struct nvsp_msg_revoke_buf r = {.type = NVSP_MSG1_REVOKE_RECV_BUF, .id = NVSP_RECV_BUF_ID};
    struct mallinfo2 before = {0}, after;
    for (int i = 0; i < 64; i++) {
        if (i == 8)
            before = mallinfo2();
        nvsp_send(v, &r, sizeof(r), 0, false);
        recv_buf(v, v->rgpadl, NULL, NULL);
    }
    after = mallinfo2();
    long growth = (long)after.uordblks - (long)before.uordblks;
    if (growth > (64l << 10))
        fail_msg("heap grew by %ld bytes over 56 revoke/register cycles", growth);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(init__each_supported_version__success_with_answer_size_of_version),
        T(init__version_range__newest_common_chosen),
        T(init__unsupported_version__answered_not_success_and_retry_allowed),
        T(ndis_config__mtu_in_range__frame_size_honoured),
        T(ndis_config__mtu_out_of_range__replaced_by_1514),
        T(ndis_config__above_nic_mtu__capped_to_nic),
        T(nvsp1__no_ndis_config__default_frame),
        T(recv_buf__valid__one_section_at_offset_0),
        T(send_buf__valid__section_size_6144),
        T(buffers__unknown_or_unusable_gpadl__refused_and_counted),
        T(buffers__larger_than_real_guests_use__refused_and_counted),
        T(nvsp_misc__subchannel_oid_query_ex__answered),
        T(switch_data_path__completion_requested__completed_without_payload),
        T(nvsp__messages_before_init__refused_out_of_order),
        T(nvsp__duplicate_setup_messages__refused_out_of_order),
        T(nvsp__ndis_config_after_recv_buf__refused),
        T(recv_buf__before_ndis_config_at_v2__refused_out_of_order),
        T(nvsp__request_without_completion_requested__refused_and_counted),
        T(nvsp__short_messages__refused_and_counted),
        T(nvsp__unknown_or_version_gated_type__refused_and_counted),
        T(revoke_recv_buf__stops_delivery),
        T(revoke_send_buf__sections_refused_gpa_direct_still_works),
        T(errors_max__guest_disconnected__other_vm_unaffected),
        T(ring__corrupt_write_index_of_ring_from_guest__fatal),
        T(ring__corrupt_read_index_of_ring_to_guest__fatal),
        T(ring__packet_type_not_for_a_vsp__fatal),
        T(revoke_recv_buf__registered_again_many_times__no_memory_growth),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
