/*
 * Unit tests of the guest driver's wire choices (netvsc/src, pure
 * functions): which offloads it turns on from the root's NDIS_OFFLOAD,
 * and the PPIs it writes in front of a frame, read back with vmnic's PPI
 * parser as the root reads them. The data path against a real root is
 * test_netvsc_vm's.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "netvsc-private.h"
#include "rndis-proto.h"
#include "vmnic.h"

/* What vmswitch reports (../shared/reference: LSO max 0xF53C, two
 * segments at least), IPv4 and IPv6 alike. */
static struct ndis_offload vmswitch_offload(void)
{
    struct ndis_offload o;
    memset(&o, 0, sizeof(o));
    o.hdr.type = NDIS_OBJTYPE_OFFLOAD;
    o.hdr.revision = 3;
    o.hdr.size = NDIS_OFFLOAD_SIZE_REV3;
    o.csum.ip4_txenc = NDIS_OFFLOAD_ENCAP_8023;
    o.csum.ip4_txcsum = NDIS_TXCSUM_CAP_TCP4 | NDIS_TXCSUM_CAP_TCP4OPT | NDIS_TXCSUM_CAP_UDP4 |
                        NDIS_TXCSUM_CAP_IP4OPT;
    o.csum.ip6_txenc = NDIS_OFFLOAD_ENCAP_8023;
    o.csum.ip6_txcsum = NDIS_TXCSUM_CAP_TCP6 | NDIS_TXCSUM_CAP_TCP6OPT | NDIS_TXCSUM_CAP_UDP6 |
                        NDIS_TXCSUM_CAP_IP6EXT;
    o.lsov2.ip4_encap = NDIS_OFFLOAD_ENCAP_8023;
    o.lsov2.ip4_maxsz = RNDIS_LSO_MAX_SIZE;
    o.lsov2.ip4_minsg = RNDIS_LSO_MIN_SEGS;
    o.lsov2.ip6_encap = NDIS_OFFLOAD_ENCAP_8023;
    o.lsov2.ip6_maxsz = RNDIS_LSO_MAX_SIZE;
    o.lsov2.ip6_minsg = RNDIS_LSO_MIN_SEGS;
    o.lsov2.ip6_opts = NDIS_LSOV2_CAP_IP6EXT | NDIS_LSOV2_CAP_TCP6OPT;
    return o;
}

static void offload_choose__lsov2_offered__enabled_for_both_versions(void **state)
{
    (void)state;
    struct ndis_offload o = vmswitch_offload();
    struct ndis_offload_params op;
    struct netvsc_offload_choice ch;
    assert_true(netvsc_offload_choose(&o, sizeof(o), false, &op, &ch));
    assert_true(ch.csum);
    assert_true(ch.lso);
    assert_int_equal(ch.lso_max, RNDIS_LSO_MAX_SIZE);
    assert_int_equal(ch.lso_min_segs, 2);
    assert_int_equal(op.hdr.type, NDIS_OBJTYPE_DEFAULT);
    assert_int_equal(op.hdr.size, sizeof(op));
    assert_int_equal(op.lsov2_ip4, NDIS_OFFLOAD_LSOV2_ON);
    assert_int_equal(op.lsov2_ip6, NDIS_OFFLOAD_LSOV2_ON);
    assert_int_equal(op.lsov1, 0);
    assert_int_equal(op.tcp4_csum, NDIS_OFFLOAD_PARAM_TXRX);
    assert_int_equal(op.tcp6_csum, NDIS_OFFLOAD_PARAM_TXRX);
    assert_int_equal(op.udp4_csum, NDIS_OFFLOAD_PARAM_TXRX);
    assert_int_equal(op.udp6_csum, NDIS_OFFLOAD_PARAM_TXRX);
    /* A root allowing more than 64 KiB: our own limit. */
    o.lsov2.ip4_maxsz = o.lsov2.ip6_maxsz = 1u << 20;
    assert_true(netvsc_offload_choose(&o, sizeof(o), false, &op, &ch));
    assert_true(ch.lso);
    assert_int_equal(ch.lso_max, NETVSC_LSO_MAX);
    /* The smaller of the two versions' limits. */
    o.lsov2.ip6_maxsz = 32000;
    assert_true(netvsc_offload_choose(&o, sizeof(o), false, &op, &ch));
    assert_int_equal(ch.lso_max, 32000);
}

static void offload_choose__no_lsov2__checksums_only(void **state)
{
    (void)state;
    struct ndis_offload o = vmswitch_offload();
    memset(&o.lsov2, 0, sizeof(o.lsov2)); /* today's netvsp */
    struct ndis_offload_params op;
    struct netvsc_offload_choice ch;
    assert_true(netvsc_offload_choose(&o, sizeof(o), false, &op, &ch));
    assert_true(ch.csum);
    assert_false(ch.lso);
    assert_int_equal(ch.lso_max, 0);
    assert_int_equal(op.lsov2_ip4, NDIS_OFFLOAD_PARAM_NOCHG);
    assert_int_equal(op.lsov2_ip6, NDIS_OFFLOAD_PARAM_NOCHG);
    assert_int_equal(op.tcp4_csum, NDIS_OFFLOAD_PARAM_TXRX);
}

static void offload_choose__partial_or_hostile_lsov2__left_off(void **state)
{
    (void)state;
    struct ndis_offload_params op;
    struct netvsc_offload_choice ch;
    struct ndis_offload o = vmswitch_offload();
    o.lsov2.ip6_encap = 0; /* IPv4 only: the TAP's TSO is both or none */
    assert_true(netvsc_offload_choose(&o, sizeof(o), false, &op, &ch));
    assert_true(ch.csum);
    assert_false(ch.lso);
    assert_int_equal(op.lsov2_ip4, NDIS_OFFLOAD_PARAM_NOCHG);
    o = vmswitch_offload();
    o.lsov2.ip6_opts = NDIS_LSOV2_CAP_TCP6OPT; /* no extension headers (hv_netvsc's rule) */
    assert_true(netvsc_offload_choose(&o, sizeof(o), false, &op, &ch));
    assert_false(ch.lso);
    o = vmswitch_offload();
    o.lsov2.ip4_minsg = 3; /* a kernel's GSO frame may have two segments */
    assert_true(netvsc_offload_choose(&o, sizeof(o), false, &op, &ch));
    assert_false(ch.lso);
    o = vmswitch_offload();
    o.lsov2.ip4_maxsz = 1000; /* not even one standard frame */
    assert_true(netvsc_offload_choose(&o, sizeof(o), false, &op, &ch));
    assert_false(ch.lso);
    o = vmswitch_offload();
    o.lsov2.ip6_maxsz = 0;
    assert_true(netvsc_offload_choose(&o, sizeof(o), false, &op, &ch));
    assert_false(ch.lso);
    /* No IPv6 checksums: no checksum offload at all, and no LSO. */
    o = vmswitch_offload();
    o.csum.ip6_txcsum = NDIS_TXCSUM_CAP_TCP6 | NDIS_TXCSUM_CAP_TCP6OPT;
    assert_true(netvsc_offload_choose(&o, sizeof(o), false, &op, &ch));
    assert_false(ch.csum);
    assert_false(ch.lso);
    assert_int_equal(op.tcp6_csum, NDIS_OFFLOAD_PARAM_RX);
    assert_int_equal(op.lsov2_ip4, NDIS_OFFLOAD_PARAM_NOCHG);
    /* No IPv4 TCP checksums, or an answer shorter than revision 1: nothing. */
    o = vmswitch_offload();
    o.csum.ip4_txcsum = NDIS_TXCSUM_CAP_TCP4;
    assert_false(netvsc_offload_choose(&o, sizeof(o), false, &op, &ch));
    assert_false(ch.csum || ch.lso);
    o = vmswitch_offload();
    assert_false(netvsc_offload_choose(&o, NDIS_OFFLOAD_SIZE_REV1 - 1, false, &op, &ch));
    assert_false(ch.csum || ch.lso);
}

static const struct netvsc_info INFO_LSO = {.mtu = 1500, .csum_offload = true, .lso = true,
                                            .lso_max = RNDIS_LSO_MAX_SIZE, .lso_min_segs = 2};

static void tx_ppis__lso__the_lsov2_ppi_alone(void **state)
{
    (void)state;
    uint8_t ppis[NETVSC_TX_PPI_MAX];
    struct netvsc_meta m = {.flags = NETVSC_F_LSO, .l4_offset = 34, .l4_proto = IPPROTO_TCP,
                            .mss = 1448};
    int len = netvsc_tx_ppis(&INFO_LSO, &m, 60000, ppis);
    assert_int_equal(len, RNDIS_PPI_U32_SIZE);
    struct vmnic_ppi p;
    assert_int_equal(vmnic_ppi_parse(ppis, (uint32_t)len, &p), 0);
    assert_int_equal(p.present, VMNIC_PPI_LSO); /* no checksum PPI with LSO, as hv_netvsc */
    assert_int_equal(p.lso & RNDIS_LSO_MSS_MASK, 1448);
    assert_int_equal((p.lso >> RNDIS_LSO_THOFF_SHIFT) & RNDIS_LSO_THOFF_MASK, 34);
    assert_true(p.lso & RNDIS_LSO_TYPE_V2);
    assert_false(p.lso & RNDIS_LSO_IPV6);
    /* IPv6, tagged (out of band). */
    m = (struct netvsc_meta){.flags = NETVSC_F_LSO | NETVSC_F_IPV6 | NETVSC_F_VLAN,
                             .vlan_tci = (5 << 13) | 100, .l4_offset = 54,
                             .l4_proto = IPPROTO_TCP, .mss = 1428};
    len = netvsc_tx_ppis(&INFO_LSO, &m, 20000, ppis);
    assert_int_equal(len, 2 * RNDIS_PPI_U32_SIZE);
    assert_int_equal(vmnic_ppi_parse(ppis, (uint32_t)len, &p), 0);
    assert_int_equal(p.present, VMNIC_PPI_LSO | VMNIC_PPI_VLAN);
    assert_int_equal(p.lso & RNDIS_LSO_MSS_MASK, 1428);
    assert_int_equal((p.lso >> RNDIS_LSO_THOFF_SHIFT) & RNDIS_LSO_THOFF_MASK, 54);
    assert_true(p.lso & RNDIS_LSO_IPV6);
    assert_int_equal(RNDIS_VLAN_ID(p.vlan), 100);
    assert_int_equal(RNDIS_VLAN_PRIO(p.vlan), 5);
}

static void tx_ppis__hostile_lso__refused(void **state)
{
    (void)state;
    uint8_t ppis[NETVSC_TX_PPI_MAX];
    struct netvsc_meta good = {.flags = NETVSC_F_LSO, .l4_offset = 34, .l4_proto = IPPROTO_TCP,
                               .mss = 1448};
    assert_true(netvsc_tx_ppis(&INFO_LSO, &good, 3000, ppis) > 0);
    struct netvsc_info no_lso = INFO_LSO;
    no_lso.lso = false; /* today's root */
    assert_int_equal(netvsc_tx_ppis(&no_lso, &good, 3000, ppis), -EINVAL);
    struct netvsc_meta m = good;
    m.mss = 0;
    assert_int_equal(netvsc_tx_ppis(&INFO_LSO, &m, 3000, ppis), -EINVAL);
    m = good;
    m.mss = RNDIS_LSO_MSS_MASK + 1;
    assert_int_equal(netvsc_tx_ppis(&INFO_LSO, &m, 3000, ppis), -EINVAL);
    m = good;
    m.l4_offset = 20; /* inside the Ethernet and IP headers */
    assert_int_equal(netvsc_tx_ppis(&INFO_LSO, &m, 3000, ppis), -EINVAL);
    m = good;
    m.l4_offset = RNDIS_LSO_THOFF_MASK + 1;
    assert_int_equal(netvsc_tx_ppis(&INFO_LSO, &m, 3000, ppis), -EINVAL);
    /* The TCP header and a byte of payload past the frame. */
    assert_int_equal(netvsc_tx_ppis(&INFO_LSO, &good, 34 + 20, ppis), -EINVAL);
    assert_true(netvsc_tx_ppis(&INFO_LSO, &good, 34 + 21, ppis) > 0);
    /* Larger than the root takes. */
    assert_int_equal(netvsc_tx_ppis(&INFO_LSO, &good, RNDIS_LSO_MAX_SIZE + 1, ppis), -EINVAL);
}

static void offload_choose__rsc_offered__only_when_wanted(void **state)
{
    (void)state;
    struct ndis_offload o = vmswitch_offload();
    o.rsc_ip4 = o.rsc_ip6 = 1;
    struct ndis_offload_params op;
    struct netvsc_offload_choice ch;
    assert_true(netvsc_offload_choose(&o, sizeof(o), true, &op, &ch));
    assert_true(ch.rsc);
    assert_int_equal(op.rsc_ip4, NDIS_OFFLOAD_RSC_ON);
    assert_int_equal(op.rsc_ip6, NDIS_OFFLOAD_RSC_ON);
    assert_true(netvsc_offload_choose(&o, sizeof(o), false, &op, &ch));
    assert_false(ch.rsc);
    assert_int_equal(op.rsc_ip4, NDIS_OFFLOAD_PARAM_NOCHG);
    /* One version only, or an answer too short to carry it: no RSC. */
    o.rsc_ip6 = 0;
    assert_true(netvsc_offload_choose(&o, sizeof(o), true, &op, &ch));
    assert_false(ch.rsc);
    o.rsc_ip6 = 1;
    assert_true(netvsc_offload_choose(&o, NDIS_OFFLOAD_SIZE_REV2, true, &op, &ch));
    assert_false(ch.rsc);
    assert_int_equal(op.rsc_ip4, NDIS_OFFLOAD_PARAM_NOCHG);
}

/* RSC fragments as the root sends them: PKTINFO_ID flags per fragment. */
#define SUB RNDIS_PKTINFO_SUBALLOC
#define FIRST (SUB | RNDIS_PKTINFO_FIRST_FRAG)
#define LAST (SUB | RNDIS_PKTINFO_LAST_FRAG)

static uint8_t g_rsc_buf[NETVSC_RSC_FRAME_MAX];

static void rsc_add__fragments_in_one_transfer__one_frame_with_the_first_meta(void **state)
{
    (void)state;
    struct netvsc_rsc r = {.buf = g_rsc_buf};
    uint8_t a[1500], b[1448], c[100];
    memset(a, 0xa1, sizeof(a));
    memset(b, 0xb2, sizeof(b));
    memset(c, 0xc3, sizeof(c));
    struct netvsc_meta m1 = {.flags = NETVSC_F_CSUM | NETVSC_F_VLAN, .vlan_tci = 42};
    struct netvsc_meta m2 = {0};
    assert_int_equal(netvsc_rsc_add(&r, FIRST, a, sizeof(a), &m1, false), 0);
    assert_int_equal(netvsc_rsc_add(&r, SUB, b, sizeof(b), &m2, false), 0);
    assert_int_equal(netvsc_rsc_add(&r, LAST, c, sizeof(c), &m2, true), 1);
    assert_int_equal(r.len, sizeof(a) + sizeof(b) + sizeof(c));
    assert_int_equal(r.frags, 3);
    assert_memory_equal(r.buf, a, sizeof(a));
    assert_memory_equal(r.buf + sizeof(a), b, sizeof(b));
    assert_memory_equal(r.buf + sizeof(a) + sizeof(b), c, sizeof(c));
    assert_int_equal(r.meta.flags, NETVSC_F_CSUM | NETVSC_F_VLAN | NETVSC_F_RSC);
    assert_int_equal(r.meta.vlan_tci, 42);
    /* A packet of one fragment (first and last). */
    r.frags = 0;
    assert_int_equal(netvsc_rsc_add(&r, FIRST | LAST, c, sizeof(c), &m2, true), 1);
    assert_int_equal(r.len, sizeof(c));
}

static void rsc_add__hostile_fragment_orders__dropped(void **state)
{
    (void)state;
    struct netvsc_rsc r = {.buf = g_rsc_buf};
    uint8_t d[1500] = {0};
    struct netvsc_meta m = {0};
    /* A middle or last fragment with no first. */
    assert_int_equal(netvsc_rsc_add(&r, SUB, d, sizeof(d), &m, false), -EPROTO);
    assert_int_equal(netvsc_rsc_add(&r, LAST, d, sizeof(d), &m, true), -EPROTO);
    /* A packet still open at the transfer's last range. */
    assert_int_equal(netvsc_rsc_add(&r, FIRST, d, sizeof(d), &m, false), 0);
    assert_int_equal(netvsc_rsc_add(&r, SUB, d, sizeof(d), &m, true), -EPROTO);
    assert_int_equal(r.frags, 0);
    assert_int_equal(netvsc_rsc_add(&r, LAST, d, sizeof(d), &m, true), -EPROTO);
    /* More than fits the largest coalesced frame. */
    assert_int_equal(netvsc_rsc_add(&r, FIRST, d, sizeof(d), &m, false), 0);
    int rc = 0;
    for (unsigned i = 0; i < 100 && rc == 0; i++)
        rc = netvsc_rsc_add(&r, SUB, d, sizeof(d), &m, false);
    assert_int_equal(rc, -EPROTO);
    assert_int_equal(r.frags, 0);
    /* More fragments than a packet may have. */
    assert_int_equal(netvsc_rsc_add(&r, FIRST, d, 1, &m, false), 0);
    for (unsigned i = 1; i < RSC_FRAGS_MAX; i++)
        assert_int_equal(netvsc_rsc_add(&r, SUB, d, 1, &m, false), 0);
    assert_int_equal(netvsc_rsc_add(&r, LAST, d, 1, &m, true), -EPROTO);
    /* A new first fragment starts over what was in progress. */
    assert_int_equal(netvsc_rsc_add(&r, FIRST, d, 100, &m, false), 0);
    assert_int_equal(netvsc_rsc_add(&r, FIRST, d, 10, &m, false), 0);
    assert_int_equal(netvsc_rsc_add(&r, LAST, d, 10, &m, true), 1);
    assert_int_equal(r.len, 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(offload_choose__lsov2_offered__enabled_for_both_versions),
        cmocka_unit_test(offload_choose__no_lsov2__checksums_only),
        cmocka_unit_test(offload_choose__partial_or_hostile_lsov2__left_off),
        cmocka_unit_test(tx_ppis__lso__the_lsov2_ppi_alone),
        cmocka_unit_test(tx_ppis__hostile_lso__refused),
        cmocka_unit_test(offload_choose__rsc_offered__only_when_wanted),
        cmocka_unit_test(rsc_add__fragments_in_one_transfer__one_frame_with_the_first_meta),
        cmocka_unit_test(rsc_add__hostile_fragment_orders__dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
