/*
 * Unit tests of the guest driver's wire choices (netvsc/src, pure
 * functions): which offloads it turns on from the root's NDIS_OFFLOAD,
 * and the PPIs it writes in front of a frame, read back with vmnic's PPI
 * parser as the root reads them. The data path against a real root is
 * test_netvsc_vm's.
 */
#include <errno.h>
#include <stdlib.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "netvsc-private.h"
#include "nvsp-proto.h"
#include "rndis-proto.h"
#include "vmbus-ring-proto.h"
#include "vmbus-ring.h"
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

/* --- a transfer from the root, hand-made in a receive buffer ------------ */

#define SUB_SIZE 4096u
#define SUBS 16u

struct got {
    unsigned n;
    const uint8_t *ptr;
    uint32_t len;
    uint8_t data[NETVSC_RSC_FRAME_MAX];
    struct netvsc_meta meta;
};

static void collect(void *ctx, const void *frame, uint32_t len, const struct netvsc_meta *meta)
{
    struct got *g = ctx;
    g->n++;
    g->ptr = frame;
    g->len = len;
    memcpy(g->data, frame, len);
    g->meta = *meta;
}

static struct netvsc *fake_nic(bool rsc)
{
    struct netvsc *n = calloc(1, sizeof(*n));
    assert_non_null(n);
    n->rbuf_len = SUB_SIZE * SUBS;
    n->rbuf = calloc(1, n->rbuf_len);
    assert_non_null(n->rbuf);
    n->sub_alloc_size = SUB_SIZE;
    n->num_sub_allocs = SUBS;
    n->info.rsc = rsc;
    n->q[0].rsc.buf = rsc ? g_rsc_buf : NULL;
    return n;
}

static void free_nic(struct netvsc *n)
{
    free(n->rbuf);
    free(n);
}

static uint32_t put_u32_ppi(uint8_t *p, uint32_t type, uint32_t v)
{
    struct rndis_ppi r = {.size = RNDIS_PPI_U32_SIZE, .type = type, .ppi_offset = sizeof(r)};
    memcpy(p, &r, sizeof(r));
    memcpy(p + sizeof(r), &v, sizeof(v));
    return RNDIS_PPI_U32_SIZE;
}

/* An RNDIS PACKET_MSG in sub-allocation sub: len bytes of fill, the PKTINFO_ID
 * PPI if pktinfo is not 0, a checksum PPI if csum is not 0, a VLAN PPI if
 * vlan is not 0. Returns its range. */
static struct vmbus_xfer_range put_msg(struct netvsc *n, unsigned sub, uint32_t len, uint8_t fill,
                                       uint32_t pktinfo, uint32_t csum, uint32_t vlan)
{
    uint8_t *m = n->rbuf + (size_t)sub * SUB_SIZE;
    uint8_t ppis[64];
    uint32_t pl = 0;
    if (pktinfo)
        pl += put_u32_ppi(ppis + pl, RNDIS_PPI_PKTINFO_ID, 1u | pktinfo << 8);
    if (csum)
        pl += put_u32_ppi(ppis + pl, RNDIS_PPI_CSUM_INFO, csum);
    if (vlan)
        pl += put_u32_ppi(ppis + pl, RNDIS_PPI_VLAN, vlan);
    struct rndis_packet_msg pm = {0};
    pm.hdr.type = RNDIS_MSG_PACKET;
    pm.ppi_offset = pl ? RNDIS_PACKET_OFFSET_MIN : 0;
    pm.ppi_len = pl;
    pm.data_offset = RNDIS_PACKET_OFFSET_MIN + pl;
    pm.data_len = len;
    pm.hdr.len = (uint32_t)sizeof(pm) + pl + len;
    assert_true(pm.hdr.len <= SUB_SIZE);
    memcpy(m, &pm, sizeof(pm));
    memcpy(m + sizeof(pm), ppis, pl);
    memset(m + sizeof(pm) + pl, fill, len);
    return (struct vmbus_xfer_range){.byte_count = pm.hdr.len,
                                     .byte_offset = sub * SUB_SIZE};
}

static void rx_ranges__rsc_fragments__one_frame_with_the_first_fragments_info(void **state)
{
    (void)state;
    struct netvsc *n = fake_nic(true);
    static struct got g;
    memset(&g, 0, sizeof(g));
    struct vmbus_xfer_range r[4];
    r[0] = put_msg(n, 0, 1000, 0xa1, FIRST, RNDIS_RXCSUM_TCP_OK, RNDIS_VLAN_MAKE(42, 0));
    r[1] = put_msg(n, 1, 1000, 0xb2, SUB, 0, 0);
    r[2] = put_msg(n, 2, 500, 0xc3, LAST, 0, 0);
    r[3] = put_msg(n, 3, 60, 0xd4, 0, 0, 0); /* and a frame of its own */
    int frames = 0;
    assert_int_equal(netvsc_rx_ranges(n, r, 4, collect, &g, &frames), NVSP_STAT_SUCCESS);
    assert_int_equal(frames, 2);
    assert_int_equal(g.n, 2);
    struct netvsc_stats st;
    netvsc_get_stats(n, &st);
    assert_int_equal(st.rx_rsc, 1);
    assert_int_equal(st.rx_frames, 2);
    assert_int_equal(st.rx_bytes, 2500 + 60);
    /* The last one delivered is the plain frame, in place. */
    assert_int_equal(g.len, 60);
    assert_ptr_equal(g.ptr, n->rbuf + 3 * SUB_SIZE + sizeof(struct rndis_packet_msg));
    /* Once more without it, to look at the coalesced one. */
    memset(&g, 0, sizeof(g));
    frames = 0;
    assert_int_equal(netvsc_rx_ranges(n, r, 3, collect, &g, &frames), NVSP_STAT_SUCCESS);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.len, 2500);
    for (uint32_t i = 0; i < 2500; i++)
        assert_int_equal(g.data[i], i < 1000 ? 0xa1 : i < 2000 ? 0xb2 : 0xc3);
    assert_int_equal(g.meta.flags, NETVSC_F_CSUM | NETVSC_F_VLAN | NETVSC_F_RSC);
    assert_int_equal(g.meta.vlan_tci, 42);
    free_nic(n);
}

static void rx_ranges__hostile_rsc_transfers__dropped_with_an_error_status(void **state)
{
    (void)state;
    static struct got g;
    struct vmbus_xfer_range r[4];
    int frames = 0;
    /* Fragments from a root we did not ask for RSC. */
    struct netvsc *n = fake_nic(false);
    memset(&g, 0, sizeof(g));
    r[0] = put_msg(n, 0, 100, 1, FIRST, 0, 0);
    r[1] = put_msg(n, 1, 100, 2, LAST, 0, 0);
    assert_int_equal(netvsc_rx_ranges(n, r, 2, collect, &g, &frames),
                     NVSP_STAT_INVALID_RNDIS_PKT);
    assert_int_equal(g.n, 0);
    free_nic(n);

    n = fake_nic(true);
    /* A range past the buffer between two fragments: no packet over the gap. */
    r[0] = put_msg(n, 0, 100, 1, FIRST, 0, 0);
    r[1] = (struct vmbus_xfer_range){.byte_count = 100, .byte_offset = SUB_SIZE * SUBS};
    r[2] = put_msg(n, 2, 100, 3, LAST, 0, 0);
    assert_int_equal(netvsc_rx_ranges(n, r, 3, collect, &g, &frames),
                     NVSP_STAT_INVALID_RNDIS_PKT);
    assert_int_equal(g.n, 0);
    /* A whole frame between two fragments: it goes, the packet does not. */
    r[0] = put_msg(n, 0, 100, 1, FIRST, 0, 0);
    r[1] = put_msg(n, 1, 70, 2, 0, 0, 0);
    r[2] = put_msg(n, 2, 100, 3, LAST, 0, 0);
    assert_int_equal(netvsc_rx_ranges(n, r, 3, collect, &g, &frames),
                     NVSP_STAT_INVALID_RNDIS_PKT);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.len, 70);
    /* A packet still open when its transfer ends, then its end in the next. */
    r[0] = put_msg(n, 0, 100, 1, FIRST, 0, 0);
    r[1] = put_msg(n, 1, 100, 2, SUB, 0, 0);
    assert_int_equal(netvsc_rx_ranges(n, r, 2, collect, &g, &frames),
                     NVSP_STAT_INVALID_RNDIS_PKT);
    r[0] = put_msg(n, 2, 100, 3, LAST, 0, 0);
    assert_int_equal(netvsc_rx_ranges(n, r, 1, collect, &g, &frames),
                     NVSP_STAT_INVALID_RNDIS_PKT);
    assert_int_equal(g.n, 1);
    struct netvsc_stats st;
    netvsc_get_stats(n, &st);
    assert_int_equal(st.rx_rsc, 0);
    assert_true(st.rx_bad >= 4);
    free_nic(n);
}

/* i10b-vmbus64: packing frames into one send (multi-send). */

#define SECTION 6144u

/* A NIC with one send section open holding one frame of first_len bytes in
 * the layout netvsc_tx_submit() gives a section's first frame (RNDIS header
 * at 0, frame at TX_HDR_ROOM), packing by the root's INIT_C limits. */
static struct netvsc *batch_nic(uint32_t max_pkts, uint32_t align_factor, uint32_t first_len)
{
    struct netvsc *n = calloc(1, sizeof(*n));
    assert_non_null(n);
    n->section_size = SECTION;
    n->nsections = 2;
    n->sbuf = calloc(2, SECTION);
    assert_non_null(n->sbuf);
    netvsc_tx_set_batching(n, max_pkts, align_factor);
    uint8_t *s = n->sbuf + SECTION;
    struct rndis_packet_msg pm = {.hdr = {.type = RNDIS_MSG_PACKET, .len = TX_HDR_ROOM + first_len},
                                  .data_offset = TX_HDR_ROOM - RNDIS_HEADER_SIZE,
                                  .data_len = first_len};
    memcpy(s, &pm, sizeof(pm));
    memset(s + TX_HDR_ROOM, 0xf0, first_len);
    n->q[0].batch_sec = 1;
    n->q[0].batch_len = n->q[0].batch_last_len = pm.hdr.len;
    n->q[0].batch_last = 0;
    n->q[0].batch_count = 1;
    return n;
}

/* Walk the open section as a root does (netvsp, OpenVMM, vmswitch: the next
 * message at exactly message_length, nothing left over) and check that
 * message i carries a frame of lens[i] bytes of fill[i] at an offset of
 * align, its PPI block (if any) as written. Returns the messages found. */
static unsigned walk_section(const struct netvsc *n, const uint32_t *lens, const uint8_t *fill,
                             uint32_t align)
{
    const uint8_t *s = n->sbuf + (size_t)n->q[0].batch_sec * n->section_size;
    uint32_t off = 0;
    unsigned i = 0;
    while (off < n->q[0].batch_len) {
        struct rndis_packet_msg pm;
        assert_true(n->q[0].batch_len - off >= sizeof(pm));
        memcpy(&pm, s + off, sizeof(pm));
        assert_int_equal(off % align, 0);
        assert_int_equal(pm.hdr.type, RNDIS_MSG_PACKET);
        assert_true(pm.hdr.len <= n->q[0].batch_len - off);
        assert_true(vmnic_rndis_data_ok(&pm, pm.hdr.len));
        assert_true(vmnic_rndis_ppi_area_ok(&pm, pm.hdr.len));
        assert_int_equal(pm.data_len, lens[i]);
        const uint8_t *d = s + off + RNDIS_HEADER_SIZE + pm.data_offset;
        for (uint32_t k = 0; k < pm.data_len; k++)
            assert_int_equal(d[k], fill[i]);
        off += pm.hdr.len;
        i++;
    }
    assert_int_equal(off, n->q[0].batch_len);
    return i;
}

static void free_batch_nic(struct netvsc *n)
{
    free(n->sbuf);
    free(n);
}

static void batch_append__frames_of_odd_lengths__padding_inside_each_message_length(void **state)
{
    (void)state;
    struct netvsc *n = batch_nic(8, 3, 61);
    uint32_t lens[8] = {61, 150, 99, 64, 77, 1514, 60, 63};
    uint8_t fill[8] = {0xf0, 1, 2, 3, 4, 5, 6, 7};
    uint8_t frame[1514];
    for (unsigned i = 1; i < 8; i++) {
        memset(frame, fill[i], lens[i]);
        assert_true(netvsc_batch_append(n, &n->q[0], frame, lens[i], NULL, 0));
    }
    assert_int_equal(n->q[0].batch_count, 8);
    assert_int_equal(walk_section(n, lens, fill, 8), 8);
    /* Full: the root said 8. */
    assert_false(netvsc_batch_append(n, &n->q[0], frame, 60, NULL, 0));
    assert_int_equal(n->q[0].batch_count, 8);
    free_batch_nic(n);
}

static void batch_append__ppis_and_a_coarser_alignment__parsed_as_the_root_does(void **state)
{
    (void)state;
    struct netvsc *n = batch_nic(8, 6, 99); /* 64-byte alignment */
    struct netvsc_info info = {.csum_offload = true};
    struct netvsc_meta vlan = {.flags = NETVSC_F_VLAN, .vlan_tci = 7 | (3u << 13)};
    struct netvsc_meta csum = {.flags = NETVSC_F_CSUM, .l4_offset = 34, .l4_proto = IPPROTO_UDP};
    uint8_t ppis[NETVSC_TX_PPI_MAX], frame[200];
    uint32_t lens[3] = {99, 100, 101};
    uint8_t fill[3] = {0xf0, 0x11, 0x22};
    int pl = netvsc_tx_ppis(&info, &vlan, 100, ppis);
    assert_true(pl > 0);
    memset(frame, 0x11, sizeof(frame));
    assert_true(netvsc_batch_append(n, &n->q[0], frame, 100, ppis, (uint32_t)pl));
    pl = netvsc_tx_ppis(&info, &csum, 101, ppis);
    assert_true(pl > 0);
    memset(frame, 0x22, sizeof(frame));
    assert_true(netvsc_batch_append(n, &n->q[0], frame, 101, ppis, (uint32_t)pl));
    assert_int_equal(walk_section(n, lens, fill, 64), 3);
    /* The PPIs read back as the root reads them. */
    const uint8_t *s = n->sbuf + (size_t)n->q[0].batch_sec * n->section_size;
    uint32_t off = 0;
    struct vmnic_ppi got[3];
    for (int i = 0; i < 3; i++) {
        struct rndis_packet_msg pm;
        memcpy(&pm, s + off, sizeof(pm));
        memset(&got[i], 0, sizeof(got[i]));
        if (pm.ppi_len)
            assert_int_equal(vmnic_ppi_parse(s + off + RNDIS_HEADER_SIZE + pm.ppi_offset,
                                             pm.ppi_len, &got[i]),
                             0);
        off += pm.hdr.len;
    }
    assert_int_equal(got[0].present, 0);
    assert_true(got[1].present & VMNIC_PPI_VLAN);
    assert_int_equal(RNDIS_VLAN_ID(got[1].vlan), 7);
    assert_true(got[2].present & VMNIC_PPI_CSUM);
    free_batch_nic(n);
}

static void batch_append__no_room_or_nothing_open__refused_nothing_written(void **state)
{
    (void)state;
    struct netvsc *n = batch_nic(8, 3, 1514);
    static uint8_t frame[SECTION];
    memset(frame, 0x33, sizeof(frame));
    uint32_t len = n->q[0].batch_len;
    /* What is left of the section, less one byte too few. */
    uint32_t at = (len + 7u) & ~7u;
    uint32_t fits = SECTION - at - (uint32_t)sizeof(struct rndis_packet_msg);
    assert_false(netvsc_batch_append(n, &n->q[0], frame, fits + 1, NULL, 0));
    assert_int_equal(n->q[0].batch_len, len);
    assert_int_equal(n->q[0].batch_count, 1);
    assert_true(netvsc_batch_append(n, &n->q[0], frame, fits, NULL, 0));
    assert_int_equal(n->q[0].batch_len, SECTION);
    assert_false(netvsc_batch_append(n, &n->q[0], frame, 60, NULL, 0));
    /* Nothing open: nothing to pack into. */
    n->q[0].batch_count = 0;
    assert_false(netvsc_batch_append(n, &n->q[0], frame, 60, NULL, 0));
    free_batch_nic(n);
}

static void tx_set_batching__root_limits__packing_only_within_them(void **state)
{
    (void)state;
    struct netvsc n;
    memset(&n, 0, sizeof(n));
    netvsc_tx_set_batching(&n, 8, 3);
    assert_int_equal(n.tx_max_pkts, 8);
    assert_int_equal(n.tx_align, 8);
    netvsc_tx_set_batching(&n, 1000, 0); /* more than hv_netvsc packs; 1-byte alignment */
    assert_int_equal(n.tx_max_pkts, TX_BATCH_MAX);
    assert_int_equal(n.tx_align, 8);
    netvsc_tx_set_batching(&n, 4, 6);
    assert_int_equal(n.tx_max_pkts, 4);
    assert_int_equal(n.tx_align, 64);
    netvsc_tx_set_batching(&n, 1, 3); /* one frame a send */
    assert_int_equal(n.tx_max_pkts, 1);
    netvsc_tx_set_batching(&n, 8, 31); /* an alignment no section could take */
    assert_int_equal(n.tx_max_pkts, 1);
    /* One frame a send: the open section takes nothing more. */
    struct netvsc *b = batch_nic(1, 3, 60);
    uint8_t frame[60] = {0};
    assert_false(netvsc_batch_append(b, &b->q[0], frame, 60, NULL, 0));
    free_batch_nic(b);
}

/* The channel of a send-path test: rings in test memory (never wrapping
 * in these tests, so one mapping of the data area is enough), reached
 * through the wrapped accessors; signals counted. */
#define T_DSIZE (64u << 10)
static uint8_t g_tx_mem[4096 + T_DSIZE] __attribute__((aligned(4096)));
static uint8_t g_rx_mem[4096 + T_DSIZE] __attribute__((aligned(4096)));
static struct vmbus_ring g_tx, g_rx, g_root_rx;
static unsigned g_signals;
static unsigned g_root_frame; /* the next frame the root should find */

struct vmbus_ring *__wrap_vmbus_gchan_tx(struct vmbus_gchan *ch);
struct vmbus_ring *__wrap_vmbus_gchan_rx(struct vmbus_gchan *ch);
int __wrap_vmbus_gchan_signal(struct vmbus_gchan *ch);

struct vmbus_ring *__wrap_vmbus_gchan_tx(struct vmbus_gchan *ch)
{
    (void)ch;
    return &g_tx;
}

struct vmbus_ring *__wrap_vmbus_gchan_rx(struct vmbus_gchan *ch)
{
    (void)ch;
    return &g_rx;
}

int __wrap_vmbus_gchan_signal(struct vmbus_gchan *ch)
{
    (void)ch;
    g_signals++;
    return 0;
}

/* A NIC on the test channel with nsec send sections, packing as netvsp's
 * INIT_C says (8 a send, 8-byte alignment) when packing is true. */
static struct netvsc *chan_nic(uint32_t nsec, bool packing, uint32_t tx_dsize)
{
    vmbus_ring_format(g_tx_mem);
    vmbus_ring_format(g_rx_mem);
    assert_int_equal(vmbus_ring_init_producer(&g_tx, g_tx_mem, tx_dsize), 0);
    assert_int_equal(vmbus_ring_init_consumer(&g_root_rx, g_tx_mem, tx_dsize,
                                              VMBUS_RING_TYPES_DEFAULT),
                     0);
    assert_int_equal(vmbus_ring_init_consumer(&g_rx, g_rx_mem, T_DSIZE, VMBUS_RING_TYPES_DEFAULT),
                     0);
    g_signals = 0;
    g_root_frame = 0;
    struct netvsc *n = calloc(1, sizeof(*n));
    assert_non_null(n);
    n->ch = (struct vmbus_gchan *)(uintptr_t)1; /* only the wrapped accessors see it */
    n->q[0].ch = n->ch;
    n->nchan = 1;
    n->msg_size = NVSP_MSG_SIZE_61;
    n->section_size = SECTION;
    n->nsections = nsec;
    n->sbuf = calloc(nsec, SECTION);
    n->free_sections = calloc(nsec, sizeof(uint32_t));
    assert_non_null(n->sbuf);
    assert_non_null(n->free_sections);
    for (uint32_t i = 0; i < nsec; i++)
        n->free_sections[n->nfree_sections++] = nsec - 1 - i;
    n->info.tx_frame_max = 1514;
    netvsc_tx_set_batching(n, packing ? 8 : 1, 3);
    return n;
}

static void free_chan_nic(struct netvsc *n)
{
    free(n->free_sections);
    free(n->sbuf);
    free(n);
}

/* What the root finds in its ring: each NVSP send's section and RNDIS
 * message count (walked at message_length), frames checked against their
 * fill byte (the frame's index, counted over the test). Returns the sends. */
static unsigned root_reads(struct netvsc *n, uint32_t *frames_per_send, unsigned max)
{
    static uint8_t pkt[4096];
    unsigned sends = 0;
    int len;
    while ((len = vmbus_ring_get(&g_root_rx, pkt, sizeof(pkt))) > 0) {
        struct vmbus_pkt p;
        struct nvsp_msg_rndis_pkt m;
        assert_int_equal(vmbus_pkt_parse(pkt, (uint32_t)len, &p), 0);
        assert_int_equal(p.type, VMBUS_PKT_DATA_INBAND);
        assert_true(p.flags & VMBUS_PKT_FLAG_COMPLETION_REQUESTED);
        memcpy(&m, p.payload, sizeof(m));
        assert_int_equal(m.type, NVSP_MSG1_SEND_RNDIS_PKT);
        assert_int_equal(m.channel_type, NVSP_CHANNEL_TYPE_DATA);
        assert_int_equal(p.trans_id, TID_SEND | m.send_buf_section_index);
        const uint8_t *s = n->sbuf + (size_t)m.send_buf_section_index * SECTION;
        uint32_t off = 0, k = 0;
        while (off < m.send_buf_section_size) {
            struct rndis_packet_msg pm;
            memcpy(&pm, s + off, sizeof(pm));
            assert_true(pm.hdr.len <= m.send_buf_section_size - off);
            assert_true(vmnic_rndis_data_ok(&pm, pm.hdr.len));
            assert_int_equal(s[off + RNDIS_HEADER_SIZE + pm.data_offset + pm.data_len - 1],
                             (uint8_t)g_root_frame);
            g_root_frame++;
            k++;
            off += pm.hdr.len;
        }
        assert_int_equal(off, m.send_buf_section_size);
        if (sends < max)
            frames_per_send[sends] = k;
        sends++;
    }
    vmbus_ring_release(&g_root_rx);
    return sends;
}

static void send_frames(struct netvsc *n, unsigned from, unsigned count)
{
    uint8_t frame[64];
    for (unsigned i = from; i < from + count; i++) {
        memset(frame, (int)i, sizeof(frame));
        assert_int_equal(netvsc_send(n, frame, sizeof(frame), NULL), 0);
    }
}

static void tx__burst_of_small_frames__packed_eight_a_send_in_order_one_signal(void **state)
{
    (void)state;
    struct netvsc *n = chan_nic(16, true, T_DSIZE);
    send_frames(n, 0, 20);
    /* Two full sends went into the ring; the third waits for the flush. */
    uint32_t per[8];
    assert_int_equal(root_reads(n, per, 8), 0); /* nothing visible before the flush */
    assert_int_equal(netvsc_tx_flush(n), 0);
    assert_int_equal(g_signals, 1);
    assert_int_equal(root_reads(n, per, 8), 3);
    assert_int_equal(per[0], 8);
    assert_int_equal(per[1], 8);
    assert_int_equal(per[2], 4);
    /* Three sections in flight, not twenty. */
    assert_int_equal(n->nfree_sections, 16 - 3);
    struct netvsc_stats st;
    netvsc_get_stats(n, &st);
    assert_int_equal(st.tx_frames, 20);
    free_chan_nic(n);
}

static void tx__root_takes_one_a_send__one_frame_a_send(void **state)
{
    (void)state;
    struct netvsc *n = chan_nic(16, false, T_DSIZE);
    send_frames(n, 0, 5);
    assert_int_equal(netvsc_tx_flush(n), 0);
    uint32_t per[8];
    assert_int_equal(root_reads(n, per, 8), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(per[i], 1);
    free_chan_nic(n);
}

static void intr_arm__blocked_on_sections_only__sleeps_without_asking_for_ring_space(
    void **state)
{
    (void)state;
    struct netvsc *n = chan_nic(2, true, T_DSIZE);
    send_frames(n, 0, 16); /* two full sends: both sections in flight */
    uint8_t frame[64] = {0};
    assert_int_equal(netvsc_send(n, frame, sizeof(frame), NULL), -EAGAIN);
    assert_true(netvsc_tx_blocked(n));
    assert_int_equal(netvsc_tx_flush(n), 0);
    /* The ring has room: the completions that free sections come on the
     * receive ring, just unmasked; nothing pending, so the owner sleeps. */
    assert_false(netvsc_intr_arm(n));
    uint32_t pending;
    memcpy(&pending, g_tx_mem + offsetof(struct vmbus_ring_hdr, pending_send_sz), 4);
    assert_int_equal(pending, 0);
    netvsc_intr_disarm(n);
    free_chan_nic(n);
}

static void intr_arm__send_found_ring_full__asks_for_space_and_flush_sends_it_later(
    void **state)
{
    (void)state;
    /* A ring with room for about one page of packets. */
    struct netvsc *n = chan_nic(1024, true, 4096);
    unsigned sent = 0;
    uint8_t frame[64];
    int rc = 0;
    while (sent < 8 * 200) {
        memset(frame, (int)sent, sizeof(frame));
        if ((rc = netvsc_send(n, frame, sizeof(frame), NULL)) < 0)
            break;
        sent++;
    }
    assert_int_equal(rc, -EAGAIN);
    /* The frames taken so far: every full send is in the ring but one, the
     * open section the full ring left open; a flush leaves it too. */
    assert_int_equal(netvsc_tx_flush(n), 0);
    assert_true(n->q[0].batch_count > 0);
    uint32_t hdr_pending;
    memcpy(&hdr_pending, g_tx_mem + offsetof(struct vmbus_ring_hdr, pending_send_sz), 4);
    assert_int_equal(hdr_pending, 0);
    assert_false(netvsc_intr_arm(n)); /* full: wait for the root, which is told to signal */
    memcpy(&hdr_pending, g_tx_mem + offsetof(struct vmbus_ring_hdr, pending_send_sz), 4);
    assert_true(hdr_pending > 0);
    netvsc_intr_disarm(n);
    /* The root reads; the next flush sends the open section: every frame
     * arrives once, in order. */
    uint32_t per[256];
    unsigned sends = root_reads(n, per, 256);
    assert_int_equal(netvsc_tx_flush(n), 0);
    assert_int_equal(n->q[0].batch_count, 0);
    unsigned more = root_reads(n, per, 256);
    assert_int_equal(more, 1);
    assert_true(sends > 1);
    assert_int_equal(g_root_frame, sent);
    free_chan_nic(n);
}

/* A receive buffer of XSUBS small sections on the test channel; frame i
 * is 64 bytes of fill i in section i % XSUBS. */
#define XSUB 256u
#define XSUBS 64u
static struct netvsc *xfer_nic(void)
{
    struct netvsc *n = chan_nic(4, false, T_DSIZE);
    n->rbuf_len = XSUB * XSUBS;
    n->rbuf = calloc(1, n->rbuf_len);
    assert_non_null(n->rbuf);
    n->sub_alloc_size = XSUB;
    n->num_sub_allocs = XSUBS;
    n->q[0].pkt = malloc(RX_PKT_MAX);
    n->q[0].backlog = calloc(COMP_BACKLOG, sizeof(*n->q[0].backlog));
    assert_non_null(n->q[0].pkt);
    assert_non_null(n->q[0].backlog);
    return n;
}

static struct vmbus_xfer_range xfer_frame(struct netvsc *n, unsigned i)
{
    uint8_t *m = n->rbuf + (size_t)(i % XSUBS) * XSUB;
    struct rndis_packet_msg pm = {0};
    pm.hdr.type = RNDIS_MSG_PACKET;
    pm.data_offset = RNDIS_PACKET_OFFSET_MIN;
    pm.data_len = 64;
    pm.hdr.len = (uint32_t)sizeof(pm) + 64;
    memcpy(m, &pm, sizeof(pm));
    memset(m + sizeof(pm), (int)i, 64);
    return (struct vmbus_xfer_range){.byte_count = pm.hdr.len,
                                     .byte_offset = (i % XSUBS) * XSUB};
}

struct seen {
    unsigned n;
    uint8_t fill[256];
};

static void seen_frame(void *ctx, const void *frame, uint32_t len, const struct netvsc_meta *meta)
{
    (void)meta;
    struct seen *s = ctx;
    assert_int_equal(len, 64);
    assert_true(s->n < 256);
    s->fill[s->n++] = ((const uint8_t *)frame)[63];
}

static void free_xfer_nic(struct netvsc *n)
{
    free(n->q[0].pkt);
    free(n->q[0].backlog);
    free(n->rbuf);
    free_chan_nic(n);
}

static void rx_xfer__more_frames_than_the_budget__gone_on_with_in_order_bad_range_counted(
    void **state)
{
    (void)state;
    struct netvsc *n = xfer_nic();
    struct vmbus_xfer_range r[40];
    for (unsigned i = 0; i < 40; i++)
        r[i] = xfer_frame(n, i);
    /* The root names bytes past the buffer in range 5. */
    r[5] = (struct vmbus_xfer_range){.byte_count = 108, .byte_offset = XSUB * XSUBS - 64};
    n->q[0].xfer = (struct netvsc_xfer){.ranges = r, .nr = 40, .status = NVSP_STAT_SUCCESS};
    struct seen s = {0};
    int frames = 0;
    assert_false(netvsc_rx_xfer(n, &n->q[0], seen_frame, &s, 16, &frames));
    assert_int_equal(frames, 16);
    assert_int_equal(n->q[0].xfer.next, 17); /* 16 frames and the bad range */
    assert_int_equal(n->q[0].xfer.status, NVSP_STAT_INVALID_RNDIS_PKT);
    frames = 0;
    assert_false(netvsc_rx_xfer(n, &n->q[0], seen_frame, &s, 16, &frames));
    assert_int_equal(frames, 16);
    frames = 0;
    assert_true(netvsc_rx_xfer(n, &n->q[0], seen_frame, &s, 16, &frames));
    assert_int_equal(frames, 7);
    assert_int_equal(n->q[0].xfer.nr, 0);
    assert_int_equal(n->q[0].xfer.status, NVSP_STAT_INVALID_RNDIS_PKT); /* kept to the end */
    assert_int_equal(s.n, 39);
    for (unsigned i = 0, f = 0; i < 40; i++) {
        if (i == 5)
            continue;
        assert_int_equal(s.fill[f++], i);
    }
    struct netvsc_stats st;
    netvsc_get_stats(n, &st);
    assert_int_equal(st.rx_bad, 1);
    assert_int_equal(st.rx_frames, 39);
    free_xfer_nic(n);
}

static struct vmbus_ring g_root_tx; /* the root's side of the receive ring */
bool __wrap_vmbus_gchan_rescinded(const struct vmbus_gchan *ch);
bool __wrap_vmbus_gchan_rescinded(const struct vmbus_gchan *ch)
{
    (void)ch;
    return false;
}

/* The completions the root finds on its ring: their transaction ids. */
static unsigned root_completions(uint64_t *tids, unsigned max)
{
    static uint8_t pkt[4096];
    unsigned k = 0;
    int len;
    while ((len = vmbus_ring_get(&g_root_rx, pkt, sizeof(pkt))) > 0) {
        struct vmbus_pkt p;
        struct nvsp_msg_rndis_pkt_complete c;
        assert_int_equal(vmbus_pkt_parse(pkt, (uint32_t)len, &p), 0);
        assert_int_equal(p.type, VMBUS_PKT_COMP);
        memcpy(&c, p.payload, sizeof(c));
        assert_int_equal(c.type, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE);
        assert_int_equal(c.status, NVSP_STAT_SUCCESS);
        assert_true(k < max);
        tids[k++] = p.trans_id;
    }
    vmbus_ring_release(&g_root_rx);
    return k;
}

static void root_xfer(struct netvsc *n, uint64_t tid, unsigned from, unsigned count)
{
    struct vmbus_xfer_range r[64];
    for (unsigned i = 0; i < count; i++)
        r[i] = xfer_frame(n, from + i);
    struct nvsp_msg_rndis_pkt m = {.type = NVSP_MSG1_SEND_RNDIS_PKT,
                                   .channel_type = NVSP_CHANNEL_TYPE_DATA};
    uint8_t body[NVSP_MSG_SIZE_61] = {0};
    memcpy(body, &m, sizeof(m));
    assert_int_equal(vmbus_ring_put_xfer_pages(&g_root_tx, tid, NVSP_RECV_BUF_ID, r, count, body,
                                               sizeof(body)),
                     0);
    assert_true(vmbus_ring_publish(&g_root_tx) >= 0);
}

static void poll__transfer_beyond_the_budget__rest_next_poll_one_completion_after_its_last(
    void **state)
{
    (void)state;
    struct netvsc *n = xfer_nic();
    assert_int_equal(vmbus_ring_init_producer(&g_root_tx, g_rx_mem, T_DSIZE), 0);
    /* 64 frames (sections 0..63) as transfer 0, then 8 (sections 0..7
     * again, written once the first is through) as transfer 1. */
    root_xfer(n, 0, 0, 64);
    struct seen s = {0};
    uint64_t tids[4];
    assert_int_equal(netvsc_poll(n, seen_frame, &s, 32), 32);
    assert_int_equal(root_completions(tids, 4), 0); /* its frames are not through */
    assert_true(netvsc_intr_arm(n));                 /* the rest is work */
    netvsc_intr_disarm(n);
    assert_int_equal(netvsc_poll(n, seen_frame, &s, 32), 32);
    assert_int_equal(root_completions(tids, 4), 1);
    assert_int_equal(tids[0], 0);
    root_xfer(n, 1, 64, 8);
    assert_int_equal(netvsc_poll(n, seen_frame, &s, 32), 8);
    assert_int_equal(root_completions(tids, 4), 1);
    assert_int_equal(tids[0], 1);
    assert_int_equal(netvsc_poll(n, seen_frame, &s, 32), 0);
    assert_false(netvsc_intr_arm(n));
    netvsc_intr_disarm(n);
    assert_int_equal(s.n, 72);
    for (unsigned i = 0; i < 72; i++)
        assert_int_equal(s.fill[i], i);
    free_xfer_nic(n);
}


/* --- vRSS: a frame's hash, the root's send table -------------------------- */

/* A frame from src:sport to dst:dport (TCP, or UDP with udp; IPv6 if v6),
 * behind a tag if tagged. Returns its length. */
static uint32_t hash_frame(uint8_t *f, bool v6, bool udp, bool tagged, const char *src,
                           uint16_t sport, const char *dst, uint16_t dport)
{
    memset(f, 0, 128);
    uint32_t off = 12;
    if (tagged) {
        f[off] = 0x81;
        f[off + 3] = 7;
        off += 4;
    }
    f[off] = v6 ? 0x86 : 0x08;
    f[off + 1] = v6 ? 0xdd : 0x00;
    off += 2;
    uint32_t l4;
    if (v6) {
        f[off] = 0x60;
        f[off + 6] = udp ? IPPROTO_UDP : IPPROTO_TCP;
        assert_int_equal(inet_pton(AF_INET6, src, f + off + 8), 1);
        assert_int_equal(inet_pton(AF_INET6, dst, f + off + 24), 1);
        l4 = off + 40;
    } else {
        f[off] = 0x45;
        f[off + 9] = udp ? IPPROTO_UDP : IPPROTO_TCP;
        assert_int_equal(inet_pton(AF_INET, src, f + off + 12), 1);
        assert_int_equal(inet_pton(AF_INET, dst, f + off + 16), 1);
        l4 = off + 20;
    }
    uint16_t p = htons(sport);
    memcpy(f + l4, &p, 2);
    p = htons(dport);
    memcpy(f + l4 + 2, &p, 2);
    return l4 + 20;
}

/* Microsoft's published verification vectors ("Verifying the RSS Hash
 * Calculation"), destination first as published. */
static void frame_hash__published_vectors__as_the_rss_specification(void **state)
{
    (void)state;
    static const struct {
        bool v6;
        const char *dst;
        uint16_t dport;
        const char *src;
        uint16_t sport;
        uint32_t ip, tcp;
    } V[] = {
        {false, "161.142.100.80", 1766, "66.9.149.187", 2794, 0x323e8fc2, 0x51ccc178},
        {false, "65.69.140.83", 4739, "199.92.111.2", 14230, 0xd718262a, 0xc626b0ea},
        {false, "202.188.127.2", 1303, "153.39.163.191", 44251, 0x5d1809c5, 0x10e828a2},
        {true, "3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2cc18cd5,
         0x40207d3d},
        {true, "ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0f0c461c,
         0xdde51bbf},
    };
    for (size_t i = 0; i < sizeof(V) / sizeof(V[0]); i++) {
        uint8_t f[128];
        uint32_t h = 0;
        uint32_t len = hash_frame(f, V[i].v6, false, false, V[i].src, V[i].sport, V[i].dst,
                                  V[i].dport);
        assert_true(netvsc_frame_hash(f, len, &h));
        assert_int_equal(h, V[i].tcp);
        /* Behind a tag: the same. */
        len = hash_frame(f, V[i].v6, false, true, V[i].src, V[i].sport, V[i].dst, V[i].dport);
        assert_true(netvsc_frame_hash(f, len, &h));
        assert_int_equal(h, V[i].tcp);
        /* UDP: by the addresses only. */
        len = hash_frame(f, V[i].v6, true, false, V[i].src, V[i].sport, V[i].dst, V[i].dport);
        assert_true(netvsc_frame_hash(f, len, &h));
        assert_int_equal(h, V[i].ip);
    }
    /* An IPv4 fragment: by its addresses; not IP, or short: no hash. */
    uint8_t f[128];
    uint32_t h = 0;
    uint32_t len = hash_frame(f, false, false, false, V[0].src, V[0].sport, V[0].dst, V[0].dport);
    f[14 + 6] = 0x20; /* more fragments */
    assert_true(netvsc_frame_hash(f, len, &h));
    assert_int_equal(h, V[0].ip);
    assert_false(netvsc_frame_hash(f, 14 + 19, &h));
    f[12] = 0x88;
    f[13] = 0xb5;
    assert_false(netvsc_frame_hash(f, len, &h));
    assert_false(netvsc_frame_hash(f, 13, &h));
}

/* A SEND_INDIRECTION_TABLE message as netvsp lays it out (offset 12):
 * entry i is (i + 1) % 4, entry 5 bad_entry. Returns its length. */
static uint32_t send_table_msg(uint8_t *m, uint32_t count, uint32_t offset, uint32_t bad_entry)
{
    struct nvsp_msg_indirection_table t = {.type = NVSP_MSG5_SEND_INDIRECTION_TABLE,
                                           .count = count, .offset = offset};
    memset(m, 0, 128);
    for (uint32_t i = 0; i < 16 && offset + 4 * i + 4 <= 128; i++) {
        uint32_t e = i == 5 ? bad_entry : (i + 1) % 4;
        memcpy(m + offset + 4 * i, &e, 4);
    }
    memcpy(m, &t, sizeof(t)); /* the fields win over entries put on them */
    return offset + 4 * 16;
}

static void send_table__wrong_count_offset_or_channel__ignored_and_counted(void **state)
{
    (void)state;
    struct netvsc *n = calloc(1, sizeof(*n));
    assert_non_null(n);
    n->nchan = 4;
    uint8_t m[128];
    uint32_t len = send_table_msg(m, 16, 12, 2);
    netvsc_on_send_table(n, m, len);
    assert_true(n->send_tab_set);
    assert_int_equal(n->stats.send_tables, 1);
    for (uint32_t i = 0; i < 16; i++)
        assert_int_equal(n->send_tab[i], i == 5 ? 2 : (i + 1) % 4);
    uint8_t kept[16];
    memcpy(kept, n->send_tab, 16);
    /* Each bad one leaves the table in force as it was. */
    len = send_table_msg(m, 16, 12, 4); /* a channel not open */
    netvsc_on_send_table(n, m, len);
    len = send_table_msg(m, 8, 12, 1); /* not 16 entries */
    netvsc_on_send_table(n, m, len);
    len = send_table_msg(m, 16, 4, 1); /* over its own fields */
    netvsc_on_send_table(n, m, len);
    len = send_table_msg(m, 16, 12, 1);
    netvsc_on_send_table(n, m, len - 1); /* the last entry cut */
    netvsc_on_send_table(n, m, 11);      /* not even the fields */
    send_table_msg(m, 16, 12, 1);
    uint32_t huge = 0xfffffff0u;
    memcpy(m + 8, &huge, 4); /* an offset past any message */
    netvsc_on_send_table(n, m, 128);
    assert_int_equal(n->stats.send_table_bad, 6);
    assert_int_equal(n->stats.send_tables, 1);
    assert_memory_equal(n->send_tab, kept, 16);
    free(n);
}

static void poll__send_table_in_band__taken_and_a_bad_one_ignored_and_counted(void **state)
{
    (void)state;
    struct netvsc *n = xfer_nic();
    assert_int_equal(vmbus_ring_init_producer(&g_root_tx, g_rx_mem, T_DSIZE), 0);
    /* One channel open: an entry 1 names none. */
    uint8_t m[128];
    uint32_t len = send_table_msg(m, 16, 12, 1);
    for (uint32_t i = 0; i < 16; i++)
        if (i != 5)
            memset(m + 12 + 4 * i, 0, 4);
    assert_int_equal(vmbus_ring_put_inband(&g_root_tx, VMBUS_PKT_DATA_INBAND, 0, 0, m, len), 0);
    assert_true(vmbus_ring_publish(&g_root_tx) >= 0);
    struct seen s = {0};
    assert_int_equal(netvsc_poll(n, seen_frame, &s, 32), 0);
    assert_false(n->send_tab_set);
    struct netvsc_stats st;
    netvsc_get_stats(n, &st);
    assert_int_equal(st.send_table_bad, 1);
    assert_int_equal(st.rx_bad, 0);
    memset(m + 12 + 4 * 5, 0, 4);
    assert_int_equal(vmbus_ring_put_inband(&g_root_tx, VMBUS_PKT_DATA_INBAND, 0, 0, m, len), 0);
    assert_true(vmbus_ring_publish(&g_root_tx) >= 0);
    assert_int_equal(netvsc_poll(n, seen_frame, &s, 32), 0);
    netvsc_get_stats(n, &st);
    assert_true(n->send_tab_set);
    assert_int_equal(st.send_tables, 1);
    assert_int_equal(st.send_table_bad, 1);
    free_xfer_nic(n);
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
        cmocka_unit_test(rx_ranges__rsc_fragments__one_frame_with_the_first_fragments_info),
        cmocka_unit_test(rx_ranges__hostile_rsc_transfers__dropped_with_an_error_status),
        cmocka_unit_test(batch_append__frames_of_odd_lengths__padding_inside_each_message_length),
        cmocka_unit_test(batch_append__ppis_and_a_coarser_alignment__parsed_as_the_root_does),
        cmocka_unit_test(batch_append__no_room_or_nothing_open__refused_nothing_written),
        cmocka_unit_test(tx_set_batching__root_limits__packing_only_within_them),
        cmocka_unit_test(tx__burst_of_small_frames__packed_eight_a_send_in_order_one_signal),
        cmocka_unit_test(tx__root_takes_one_a_send__one_frame_a_send),
        cmocka_unit_test(intr_arm__blocked_on_sections_only__sleeps_without_asking_for_ring_space),
        cmocka_unit_test(intr_arm__send_found_ring_full__asks_for_space_and_flush_sends_it_later),
        cmocka_unit_test(
            rx_xfer__more_frames_than_the_budget__gone_on_with_in_order_bad_range_counted),
        cmocka_unit_test(
            poll__transfer_beyond_the_budget__rest_next_poll_one_completion_after_its_last),
        cmocka_unit_test(frame_hash__published_vectors__as_the_rss_specification),
        cmocka_unit_test(send_table__wrong_count_offset_or_channel__ignored_and_counted),
        cmocka_unit_test(poll__send_table_in_band__taken_and_a_bad_one_ignored_and_counted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
