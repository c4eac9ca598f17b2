/*
 * Unit tests for vmnic, the wire protocol both NIC ends share: the NVSP
 * version table, and the PACKET_MSG layout checks and PPI walker with
 * hostile blocks (each expectation is what the walker must do, per the
 * contract in vmnic.h).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmnic.h"

/* --- NVSP versions ---------------------------------------------------------- */

static void vmnic_nvsp_versions__table__newest_first_with_names_and_sizes(void **state)
{
    (void)state;
    static const struct {
        uint32_t version;
        const char *name;
        uint32_t msg_size;
    } want[] = {
        {0x00060001u, "6.1", 40}, {0x00060000u, "6", 28}, {0x00050000u, "5", 28},
        {0x00040000u, "4", 28},   {0x00030002u, "2", 28}, {0x00000002u, "1", 28},
    };
    size_t n = 0;
    const struct vmnic_nvsp_version *v = vmnic_nvsp_versions(&n);
    assert_non_null(v);
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(v[i].version, want[i].version);
        assert_string_equal(v[i].name, want[i].name);
        assert_int_equal(v[i].msg_size, want[i].msg_size);
        if (i)
            assert_true(v[i].version < v[i - 1].version);
    }
}

static void vmnic_nvsp_version_find__each_and_unknown__entry_or_null(void **state)
{
    (void)state;
    size_t n;
    const struct vmnic_nvsp_version *v = vmnic_nvsp_versions(&n);
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(vmnic_nvsp_version_find(v[i].version), &v[i]);
        assert_string_equal(vmnic_nvsp_version_name(v[i].version), v[i].name);
    }
    /* NVSP 3 was never released; 0 is "not negotiated"; 6.2 is not ours. */
    static const uint32_t unknown[] = {0, 1, 0x00030000u, 0x00050001u, 0x00060002u,
                                       0x00070000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_null(vmnic_nvsp_version_find(unknown[i]));
        assert_null(vmnic_nvsp_version_name(unknown[i]));
    }
}

static void rndis_msg_completion__each_request__its_completion_type(void **state)
{
    (void)state;
    /* Both ends build or recognise a completion as request | RNDIS_MSG_COMPLETION. */
    static const uint32_t pairs[][2] = {
        {RNDIS_MSG_INIT, RNDIS_MSG_INIT_C},     {RNDIS_MSG_QUERY, RNDIS_MSG_QUERY_C},
        {RNDIS_MSG_SET, RNDIS_MSG_SET_C},       {RNDIS_MSG_RESET, RNDIS_MSG_RESET_C},
        {RNDIS_MSG_KEEPALIVE, RNDIS_MSG_KEEPALIVE_C}, {RNDIS_MSG_SET_EX, RNDIS_MSG_SET_EX_C},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        assert_int_equal(pairs[i][0] | RNDIS_MSG_COMPLETION, pairs[i][1]);
        assert_false(pairs[i][0] & RNDIS_MSG_COMPLETION);
    }
    assert_false(RNDIS_MSG_PACKET & RNDIS_MSG_COMPLETION);
    assert_false(RNDIS_MSG_INDICATE & RNDIS_MSG_COMPLETION);
    /* The offsets both ends count from, and the fixed part's end. */
    assert_int_equal(RNDIS_HEADER_SIZE, 8);
    assert_int_equal(RNDIS_PACKET_OFFSET_MIN, 36);
    assert_int_equal(offsetof(struct rndis_set_cmplt, req_id), RNDIS_HEADER_SIZE);
    assert_int_equal(offsetof(struct rndis_query_req, req_id), RNDIS_HEADER_SIZE);
}

static void vmnic_nvsp_msg_size__any_upper_bound__size_of_newest_not_above(void **state)
{
    (void)state;
    static const struct {
        uint32_t version, size;
    } cases[] = {
        {0x00060001u, 40}, {0x00060002u, 40}, {0x00ffffffu, 40}, {0xffffffffu, 40},
        {0x00060000u, 28}, {0x00050005u, 28}, {0x00030002u, 28}, {0x00000002u, 28},
        {0x00000001u, 28}, /* below the table: the oldest's */
        {0, 28},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (vmnic_nvsp_msg_size(cases[i].version) != cases[i].size)
            fail_msg("version %#x: size %u, want %u", cases[i].version,
                     vmnic_nvsp_msg_size(cases[i].version), cases[i].size);
}

/* --- PACKET_MSG layout -------------------------------------------------------- */

static struct rndis_packet_msg pkt(uint32_t data_offset, uint32_t data_len, uint32_t ppi_offset,
                                   uint32_t ppi_len)
{
    struct rndis_packet_msg pm = {.hdr = {.type = RNDIS_MSG_PACKET},
                                  .data_offset = data_offset,
                                  .data_len = data_len,
                                  .ppi_offset = ppi_offset,
                                  .ppi_len = ppi_len};
    return pm;
}

static void vmnic_rndis_data_ok__frame_inside_message__accepted(void **state)
{
    (void)state;
    assert_int_equal(RNDIS_PACKET_OFFSET_MIN, 36);
    struct rndis_packet_msg pm = pkt(36, 60, 0, 0);
    assert_true(vmnic_rndis_data_ok(&pm, 8 + 36 + 60));
    assert_true(vmnic_rndis_data_ok(&pm, 2000));
    /* After PPIs, and at an offset that is not a multiple of 4: Hyper-V
     * does not align the frame, so neither end may require it. */
    pm = pkt(36 + 16 + 2, 60, 36, 16);
    assert_true(vmnic_rndis_data_ok(&pm, 8 + 36 + 16 + 2 + 60));
}

static void vmnic_rndis_data_ok__hostile_layouts__refused(void **state)
{
    (void)state;
    static const struct {
        uint32_t data_offset, data_len, msg_len;
    } cases[] = {
        {36, 0, 200},                   /* no frame */
        {35, 60, 200},                  /* frame inside the fixed part */
        {0, 60, 200},                   /* at the header */
        {36, 60, 8 + 36 + 59},          /* one byte past the message */
        {36, 60, 40},                   /* message shorter than its fixed part */
        {0xfffffff8u, 16, 200},         /* offset + 8 wraps */
        {36, 0xfffffff0u, 200},         /* length wraps */
        {0xffffffffu, 0xffffffffu, 0},  /* both */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rndis_packet_msg pm = pkt(cases[i].data_offset, cases[i].data_len, 0, 0);
        if (vmnic_rndis_data_ok(&pm, cases[i].msg_len))
            fail_msg("case %zu accepted", i);
    }
}

static void vmnic_rndis_ppi_area_ok__none_or_aligned_inside__accepted(void **state)
{
    (void)state;
    /* No PPI block: its offset is not looked at. */
    struct rndis_packet_msg pm = pkt(36, 60, 0xdeadbeefu, 0);
    assert_true(vmnic_rndis_ppi_area_ok(&pm, 104));
    pm = pkt(36 + 32, 60, 36, 32);
    assert_true(vmnic_rndis_ppi_area_ok(&pm, 8 + 36 + 32)); /* ends at the message's end */
    pm = pkt(36 + 64, 60, 36 + 16, 32);
    assert_true(vmnic_rndis_ppi_area_ok(&pm, 200)); /* a gap before it */
}

static void vmnic_rndis_ppi_area_ok__hostile_layouts__refused(void **state)
{
    (void)state;
    static const struct {
        uint32_t ppi_offset, ppi_len, msg_len;
    } cases[] = {
        {32, 16, 200},          /* inside the fixed part */
        {0, 16, 200},           /* at the header */
        {38, 16, 200},          /* not a multiple of 4 */
        {37, 16, 200},
        {36, 16, 8 + 36 + 15},  /* one byte past the message */
        {0xfffffffcu, 16, 200}, /* offset + 8 wraps */
        {36, 0xfffffffcu, 200}, /* length wraps */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rndis_packet_msg pm = pkt(36, 4, cases[i].ppi_offset, cases[i].ppi_len);
        if (vmnic_rndis_ppi_area_ok(&pm, cases[i].msg_len))
            fail_msg("case %zu accepted", i);
    }
}

/* --- PPI walker ----------------------------------------------------------------- */

/* A record at p: size bytes, data at ppi_offset (value written there when
 * it fits). Returns size. */
static uint32_t rec(uint8_t *p, uint32_t size, uint32_t type, uint32_t ppi_offset, uint32_t value)
{
    struct rndis_ppi r = {.size = size, .type = type, .ppi_offset = ppi_offset};
    memcpy(p, &r, sizeof(r));
    if ((uint64_t)ppi_offset + 4 <= size)
        memcpy(p + ppi_offset, &value, 4);
    return size;
}

/* A well-formed record of one u32, as every real sender writes them. */
static uint32_t u32rec(uint8_t *p, uint32_t type, uint32_t value)
{
    return rec(p, RNDIS_PPI_U32_SIZE, type, sizeof(struct rndis_ppi), value);
}

static struct vmnic_ppi garbage(void)
{
    struct vmnic_ppi g;
    memset(&g, 0xa5, sizeof(g));
    return g;
}

static void expect_refused(const uint8_t *b, uint32_t len, const char *what)
{
    struct vmnic_ppi out = garbage();
    int rc = vmnic_ppi_parse(b, len, &out);
    if (rc != -EBADMSG)
        fail_msg("%s: rc %d, want -EBADMSG", what, rc);
    /* Nothing of a refused block may be used. */
    assert_int_equal(out.present, 0);
    assert_int_equal(out.csum, 0);
    assert_int_equal(out.lso, 0);
    assert_int_equal(out.vlan, 0);
}

static void vmnic_ppi_parse__empty_block__ok_nothing_present(void **state)
{
    (void)state;
    uint8_t b[4] = {0xff, 0xff, 0xff, 0xff};
    struct vmnic_ppi out = garbage();
    assert_int_equal(vmnic_ppi_parse(b, 0, &out), 0);
    assert_int_equal(out.present, 0);
}

static void vmnic_ppi_parse__csum_lso_vlan__values_and_present_bits(void **state)
{
    (void)state;
    uint8_t b[64];
    uint32_t n = 0;
    n += u32rec(b + n, RNDIS_PPI_VLAN, RNDIS_VLAN_MAKE(100, 5));
    n += u32rec(b + n, RNDIS_PPI_CSUM_INFO, RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP);
    n += u32rec(b + n, RNDIS_PPI_LSO, 1448u | RNDIS_LSO_TYPE_V2);
    struct vmnic_ppi out;
    assert_int_equal(vmnic_ppi_parse(b, n, &out), 0);
    assert_int_equal(out.present, VMNIC_PPI_VLAN | VMNIC_PPI_CSUM | VMNIC_PPI_LSO);
    assert_int_equal(RNDIS_VLAN_ID(out.vlan), 100);
    assert_int_equal(RNDIS_VLAN_PRIO(out.vlan), 5);
    assert_int_equal(out.csum, RNDIS_TXCSUM_IPV4 | RNDIS_TXCSUM_TCP);
    assert_int_equal(out.lso, 1448u | RNDIS_LSO_TYPE_V2);

    /* Only the VLAN: the others absent. */
    n = u32rec(b, RNDIS_PPI_VLAN, RNDIS_VLAN_MAKE(7, 0));
    assert_int_equal(vmnic_ppi_parse(b, n, &out), 0);
    assert_int_equal(out.present, VMNIC_PPI_VLAN);
    assert_int_equal(out.csum, 0);
}

static void vmnic_ppi_parse__unaligned_buffer_larger_records__read(void **state)
{
    (void)state;
    /* The caller's copy may sit at any address; records may be longer than
     * their data and put the data later (offset 16 of a 24-byte record). */
    uint8_t raw[64 + 1];
    uint8_t *b = raw + 1;
    uint32_t n = rec(b, 24, RNDIS_PPI_CSUM_INFO, 16, RNDIS_RXCSUM_UDP_OK);
    n += u32rec(b + n, RNDIS_PPI_VLAN, RNDIS_VLAN_MAKE(9, 1));
    struct vmnic_ppi out;
    assert_int_equal(vmnic_ppi_parse(b, n, &out), 0);
    assert_int_equal(out.present, VMNIC_PPI_CSUM | VMNIC_PPI_VLAN);
    assert_int_equal(out.csum, RNDIS_RXCSUM_UDP_OK);
    assert_int_equal(RNDIS_VLAN_ID(out.vlan), 9);
}

static void vmnic_ppi_parse__rsc_fragment_id__read(void **state)
{
    (void)state;
    uint8_t b[64];
    uint32_t n = 0;
    uint32_t id = 1u | (RNDIS_PKTINFO_SUBALLOC | RNDIS_PKTINFO_FIRST_FRAG) << 8 | (7u << 16);
    n += u32rec(b + n, RNDIS_PPI_PKTINFO_ID, id);
    n += u32rec(b + n, RNDIS_PPI_CSUM_INFO, RNDIS_RXCSUM_TCP_OK);
    struct vmnic_ppi out;
    assert_int_equal(vmnic_ppi_parse(b, n, &out), 0);
    assert_int_equal(out.present, VMNIC_PPI_PKTINFO_ID | VMNIC_PPI_CSUM);
    assert_int_equal(out.pktinfo_id, id);
    /* The same number outside the internal namespace is another PPI. */
    n = u32rec(b, RNDIS_PPI_PKTINFO_ID & ~RNDIS_PPI_INTERNAL, id);
    assert_int_equal(vmnic_ppi_parse(b, n, &out), 0);
    assert_int_equal(out.present, 0);
}

static void vmnic_ppi_parse__types_not_read__checked_and_skipped(void **state)
{
    (void)state;
    uint8_t b[64];
    uint32_t n = 0;
    n += u32rec(b + n, RNDIS_PPI_HASH_VALUE, 0x12345678);
    n += u32rec(b + n, RNDIS_PPI_HASH_INFO, 1);
    n += u32rec(b + n, RNDIS_PPI_VLAN, RNDIS_VLAN_MAKE(3, 0));
    struct vmnic_ppi out;
    assert_int_equal(vmnic_ppi_parse(b, n, &out), 0);
    assert_int_equal(out.present, VMNIC_PPI_VLAN);
    assert_int_equal(RNDIS_VLAN_ID(out.vlan), 3);

    /* ...and checked like any other: a hash record with no data is
     * malformed too. */
    n = rec(b, 12, RNDIS_PPI_HASH_VALUE, 12, 0);
    expect_refused(b, n, "hash record without data");
}

static void vmnic_ppi_parse__same_type_twice__last_counts(void **state)
{
    (void)state;
    uint8_t b[64];
    uint32_t n = 0;
    n += u32rec(b + n, RNDIS_PPI_VLAN, RNDIS_VLAN_MAKE(10, 0));
    n += u32rec(b + n, RNDIS_PPI_VLAN, RNDIS_VLAN_MAKE(20, 0));
    struct vmnic_ppi out;
    assert_int_equal(vmnic_ppi_parse(b, n, &out), 0);
    assert_int_equal(RNDIS_VLAN_ID(out.vlan), 20);
}

static void vmnic_ppi_parse__misaligned_size__refused(void **state)
{
    (void)state;
    uint8_t b[64] = {0};
    /* Room for the data, but not a multiple of 4. */
    static const uint32_t sizes[] = {17, 18, 19, 21};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint32_t n = rec(b, sizes[i], RNDIS_PPI_CSUM_INFO, 12, 1);
        expect_refused(b, n, "misaligned size");
        /* Also as the second record, the block ending right after it. */
        uint32_t m = u32rec(b, RNDIS_PPI_VLAN, 1);
        m += rec(b + m, sizes[i], RNDIS_PPI_HASH_VALUE, 12, 1);
        expect_refused(b, m, "misaligned second record");
    }
}

static void vmnic_ppi_parse__truncated__refused(void **state)
{
    (void)state;
    uint8_t b[64] = {0};
    uint32_t n = u32rec(b, RNDIS_PPI_VLAN, 1);
    /* The block ends inside the record's header, or inside its data. */
    for (uint32_t len = 1; len < n; len++)
        expect_refused(b, len, "block cut inside a record");
    /* The record claims more than the block holds. */
    rec(b, 20, RNDIS_PPI_VLAN, 12, 1);
    expect_refused(b, 16, "record past the block");
    /* Trailing bytes after the last record, too few for another. */
    n = u32rec(b, RNDIS_PPI_VLAN, 1);
    memset(b + n, 0, 11);
    expect_refused(b, n + 4, "4 trailing bytes");
    expect_refused(b, n + 11, "11 trailing bytes");
    /* 12 zero bytes are a record of size 0. */
    expect_refused(b, n + 12, "trailing zero record");
}

static void vmnic_ppi_parse__zero_or_short_size__refused(void **state)
{
    (void)state;
    uint8_t b[64] = {0};
    /* Size 0 would never advance; sizes below the header overlap the next
     * record with this one's header. */
    static const uint32_t sizes[] = {0, 4, 8};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        rec(b, sizes[i], RNDIS_PPI_VLAN, 12, 0);
        u32rec(b + 16, RNDIS_PPI_VLAN, 1);
        expect_refused(b, 32, "size below the header");
    }
    /* The header alone, no data. */
    rec(b, 12, RNDIS_PPI_CSUM_INFO, 12, 0);
    expect_refused(b, 12, "header only");
}

static void vmnic_ppi_parse__data_offset_hostile__refused(void **state)
{
    (void)state;
    uint8_t b[64] = {0};
    static const struct {
        uint32_t size, ppi_offset;
        const char *what;
    } cases[] = {
        {16, 0, "data inside the header"},
        {16, 8, "data overlapping the header"},
        {16, 11, "data one byte into the header"},
        {16, 14, "2 data bytes"},
        {16, 16, "no data, offset at the end"},
        {16, 20, "offset past the record"},
        {16, 0xfffffffcu, "offset + 4 wraps"},
        {16, 0xffffffffu, "offset at UINT32_MAX"},
        {32, 30, "2 data bytes at the end of a long record"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        /* For a type read here and for one skipped alike. */
        rec(b, cases[i].size, RNDIS_PPI_CSUM_INFO, cases[i].ppi_offset, 1);
        expect_refused(b, cases[i].size, cases[i].what);
        rec(b, cases[i].size, RNDIS_PPI_HASH_INFO, cases[i].ppi_offset, 1);
        expect_refused(b, cases[i].size, cases[i].what);
    }
}

static void vmnic_ppi_parse__overlapping_records__data_not_read_as_record(void **state)
{
    (void)state;
    uint8_t b[64] = {0};
    /* A record's data pointing at the next record's header: only 0 bytes
     * of its own data, refused. */
    rec(b, 16, RNDIS_PPI_VLAN, 16, 0);
    u32rec(b + 16, RNDIS_PPI_CSUM_INFO, 1);
    expect_refused(b, 32, "data in the next record");

    /* A record whose size swallows what looks like another record: that
     * is its data, not a record, and is not read as one. */
    uint32_t n = rec(b, 32, RNDIS_PPI_HASH_VALUE, 12, 0);
    u32rec(b + 16, RNDIS_PPI_VLAN, RNDIS_VLAN_MAKE(66, 0));
    struct vmnic_ppi out;
    assert_int_equal(vmnic_ppi_parse(b, n, &out), 0);
    assert_int_equal(out.present, 0);

    /* A size that runs to the very end of the block with records "inside"
     * it and one more past it: past the block. */
    rec(b, 48, RNDIS_PPI_HASH_VALUE, 12, 0);
    expect_refused(b, 32, "record larger than the block");
}

static void vmnic_ppi_parse__huge_size__refused(void **state)
{
    (void)state;
    uint8_t b[64] = {0};
    static const uint32_t sizes[] = {0xfffffffcu, 0x80000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        u32rec(b, RNDIS_PPI_VLAN, 1);
        rec(b + 16, sizes[i], RNDIS_PPI_VLAN, 12, 1);
        expect_refused(b, 32, "huge size");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vmnic_nvsp_versions__table__newest_first_with_names_and_sizes),
        cmocka_unit_test(vmnic_nvsp_version_find__each_and_unknown__entry_or_null),
        cmocka_unit_test(vmnic_nvsp_msg_size__any_upper_bound__size_of_newest_not_above),
        cmocka_unit_test(rndis_msg_completion__each_request__its_completion_type),
        cmocka_unit_test(vmnic_rndis_data_ok__frame_inside_message__accepted),
        cmocka_unit_test(vmnic_rndis_data_ok__hostile_layouts__refused),
        cmocka_unit_test(vmnic_rndis_ppi_area_ok__none_or_aligned_inside__accepted),
        cmocka_unit_test(vmnic_rndis_ppi_area_ok__hostile_layouts__refused),
        cmocka_unit_test(vmnic_ppi_parse__empty_block__ok_nothing_present),
        cmocka_unit_test(vmnic_ppi_parse__csum_lso_vlan__values_and_present_bits),
        cmocka_unit_test(vmnic_ppi_parse__unaligned_buffer_larger_records__read),
        cmocka_unit_test(vmnic_ppi_parse__rsc_fragment_id__read),
        cmocka_unit_test(vmnic_ppi_parse__types_not_read__checked_and_skipped),
        cmocka_unit_test(vmnic_ppi_parse__same_type_twice__last_counts),
        cmocka_unit_test(vmnic_ppi_parse__misaligned_size__refused),
        cmocka_unit_test(vmnic_ppi_parse__truncated__refused),
        cmocka_unit_test(vmnic_ppi_parse__zero_or_short_size__refused),
        cmocka_unit_test(vmnic_ppi_parse__data_offset_hostile__refused),
        cmocka_unit_test(vmnic_ppi_parse__overlapping_records__data_not_read_as_record),
        cmocka_unit_test(vmnic_ppi_parse__huge_size__refused),
    };
    return cmocka_run_group_tests_name("vmnic", tests, NULL, NULL);
}
