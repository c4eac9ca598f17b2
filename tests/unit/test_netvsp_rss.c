/*
 * Unit tests of netvsp's receive-side scaling (rss.c): the Toeplitz hash
 * against Microsoft's published verification vectors ("Verifying the RSS
 * Hash Calculation"), the RSS parameters a guest sets (each bad one refused
 * with its reason, the ones in force kept), and, through the fake guest of
 * netvsp-fixture.h, the hash value and type PPIs on frames to the guest;
 * then sub-channels (vRSS): granted up to the NIC's queues, offered,
 * opened and served, frames steered to the channel the guest's table
 * names, the send table, closing, and the one budget of all channels.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>

#include "netvsp-fixture.h"
#include "netvsp-private.h"

/* The key of the published vectors. */
static const uint8_t MS_KEY[NDIS_RSS_KEY_LEN] = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

#define ALL_TYPES (NDIS_HASH_IPV4 | NDIS_HASH_TCP_IPV4 | NDIS_HASH_IPV6 | NDIS_HASH_TCP_IPV6)

/* RSS parameters as Linux's netvsc lays them out: header, 128-entry table
 * right after it, then the key. */
struct params_buf {
    struct ndis_rss_params p;
    uint32_t itab[NDIS_RSS_ITAB_MAX];
    uint8_t key[NDIS_RSS_KEY_LEN];
} __attribute__((packed));

static void linux_params(struct params_buf *b, uint32_t types, uint32_t nchan)
{
    memset(b, 0, sizeof(*b));
    b->p.hdr.type = NDIS_OBJTYPE_RSS_PARAMS;
    b->p.hdr.revision = 2;
    b->p.hdr.size = sizeof(b->p);
    b->p.hash_info = NDIS_HASH_FUNCTION_TOEPLITZ | types;
    b->p.indirect_tabsize = sizeof(b->itab);
    b->p.indirect_taboffset = offsetof(struct params_buf, itab);
    b->p.hashkey_size = NDIS_RSS_KEY_LEN;
    b->p.hashkey_offset = offsetof(struct params_buf, key);
    for (uint32_t i = 0; i < NDIS_RSS_ITAB_MAX; i++)
        b->itab[i] = i % nchan;
    memcpy(b->key, MS_KEY, sizeof(MS_KEY));
}

static struct netvsp_rss ms_rss(uint32_t types)
{
    struct params_buf b;
    linux_params(&b, types, 1);
    struct netvsp_rss zero = {0}, r;
    enum netvsp_rss_err why;
    assert_int_equal(netvsp_rss_parse((const uint8_t *)&b, sizeof(b), 1, &zero, &r, &why), 0);
    return r;
}

/* A TCP frame (or UDP with udp) from src:sport to dst:dport. */
static uint32_t v4_frame(uint8_t *f, const char *src, uint16_t sport, const char *dst,
                         uint16_t dport, bool udp)
{
    uint32_t len = 80;
    uint32_t l4 = make_l4_frame(f, len, MAC_A, 4, udp ? IPPROTO_UDP : IPPROTO_TCP, 0, 0);
    struct in_addr a;
    assert_int_equal(inet_pton(AF_INET, src, &a), 1);
    memcpy(f + 14 + offsetof(struct rte_ipv4_hdr, src_addr), &a, 4);
    assert_int_equal(inet_pton(AF_INET, dst, &a), 1);
    memcpy(f + 14 + offsetof(struct rte_ipv4_hdr, dst_addr), &a, 4);
    uint16_t p = htons(sport);
    memcpy(f + l4, &p, 2);
    p = htons(dport);
    memcpy(f + l4 + 2, &p, 2);
    return len;
}

static uint32_t v6_frame(uint8_t *f, const char *src, uint16_t sport, const char *dst,
                         uint16_t dport)
{
    uint32_t len = 100;
    uint32_t l4 = make_l4_frame(f, len, MAC_A, 6, IPPROTO_TCP, 0, 0);
    assert_int_equal(inet_pton(AF_INET6, src, f + 14 + offsetof(struct rte_ipv6_hdr, src_addr)),
                     1);
    assert_int_equal(inet_pton(AF_INET6, dst, f + 14 + offsetof(struct rte_ipv6_hdr, dst_addr)),
                     1);
    uint16_t p = htons(sport);
    memcpy(f + l4, &p, 2);
    p = htons(dport);
    memcpy(f + l4 + 2, &p, 2);
    return len;
}

/* The published table lists destination first; the hash input is source
 * address, destination address, source port, destination port. */
static const struct {
    const char *dst;
    uint16_t dport;
    const char *src;
    uint16_t sport;
    uint32_t ip, tcp;
} V4[] = {
    {"161.142.100.80", 1766, "66.9.149.187", 2794, 0x323e8fc2, 0x51ccc178},
    {"65.69.140.83", 4739, "199.92.111.2", 14230, 0xd718262a, 0xc626b0ea},
    {"12.22.207.184", 38024, "24.19.198.95", 12898, 0xd2d0a5de, 0x5c2b394a},
    {"209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xafc7327f},
    {"202.188.127.2", 1303, "153.39.163.191", 44251, 0x5d1809c5, 0x10e828a2},
};

static const struct {
    const char *dst;
    uint16_t dport;
    const char *src;
    uint16_t sport;
    uint32_t ip, tcp;
} V6[] = {
    {"3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2cc18cd5, 0x40207d3d},
    {"ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0f0c461c, 0xdde51bbf},
    {"fe80::200:f8ff:fe21:67cf", 38024, "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251, 0x4b61e985,
     0x02d1feef},
};

static void rss_hash__published_ipv4_vectors__match(void **state)
{
    (void)state;
    struct netvsp_rss all = ms_rss(ALL_TYPES), ip_only = ms_rss(NDIS_HASH_IPV4);
    for (size_t i = 0; i < sizeof(V4) / sizeof(V4[0]); i++) {
        uint8_t f[128];
        uint32_t len = v4_frame(f, V4[i].src, V4[i].sport, V4[i].dst, V4[i].dport, false);
        uint32_t h = 0, t = 0;
        assert_true(netvsp_rss_hash(&all, f, len, &h, &t));
        assert_int_equal(h, V4[i].tcp);
        assert_int_equal(t, NDIS_HASH_TCP_IPV4);
        assert_true(netvsp_rss_hash(&ip_only, f, len, &h, &t));
        assert_int_equal(h, V4[i].ip);
        assert_int_equal(t, NDIS_HASH_IPV4);
        /* UDP is hashed by its addresses only. */
        len = v4_frame(f, V4[i].src, V4[i].sport, V4[i].dst, V4[i].dport, true);
        assert_true(netvsp_rss_hash(&all, f, len, &h, &t));
        assert_int_equal(h, V4[i].ip);
        assert_int_equal(t, NDIS_HASH_IPV4);
    }
}

static void rss_hash__published_ipv6_vectors__match(void **state)
{
    (void)state;
    struct netvsp_rss all = ms_rss(ALL_TYPES), ip_only = ms_rss(NDIS_HASH_IPV6);
    for (size_t i = 0; i < sizeof(V6) / sizeof(V6[0]); i++) {
        uint8_t f[128];
        uint32_t len = v6_frame(f, V6[i].src, V6[i].sport, V6[i].dst, V6[i].dport);
        uint32_t h = 0, t = 0;
        assert_true(netvsp_rss_hash(&all, f, len, &h, &t));
        assert_int_equal(h, V6[i].tcp);
        assert_int_equal(t, NDIS_HASH_TCP_IPV6);
        assert_true(netvsp_rss_hash(&ip_only, f, len, &h, &t));
        assert_int_equal(h, V6[i].ip);
        assert_int_equal(t, NDIS_HASH_IPV6);
    }
}

static void rss_hash__fragment_other_or_short__addresses_or_nothing(void **state)
{
    (void)state;
    struct netvsp_rss all = ms_rss(ALL_TYPES);
    uint8_t f[128];
    uint32_t len = v4_frame(f, V4[0].src, V4[0].sport, V4[0].dst, V4[0].dport, false);
    uint32_t h = 0, t = 0;
    /* A fragment: its addresses only. */
    f[14 + offsetof(struct rte_ipv4_hdr, fragment_offset)] = 0x20; /* MF */
    assert_true(netvsp_rss_hash(&all, f, len, &h, &t));
    assert_int_equal(h, V4[0].ip);
    assert_int_equal(t, NDIS_HASH_IPV4);
    /* IPv4 asked for neither type: nothing. */
    struct netvsp_rss v6 = ms_rss(NDIS_HASH_IPV6 | NDIS_HASH_TCP_IPV6);
    assert_false(netvsp_rss_hash(&v6, f, len, &h, &t));
    /* Not IP, cut short, RSS off. */
    f[12] = 0x08;
    f[13] = 0x06;
    assert_false(netvsp_rss_hash(&all, f, len, &h, &t));
    len = v4_frame(f, V4[0].src, V4[0].sport, V4[0].dst, V4[0].dport, false);
    assert_false(netvsp_rss_hash(&all, f, 14 + 19, &h, &t));
    all.on = false;
    assert_false(netvsp_rss_hash(&all, f, len, &h, &t));
}

static void rss_parse__linux_layout_and_disable__taken(void **state)
{
    (void)state;
    struct params_buf b;
    linux_params(&b, ALL_TYPES, 1);
    struct netvsp_rss r = {0};
    enum netvsp_rss_err why;
    assert_int_equal(netvsp_rss_parse((const uint8_t *)&b, sizeof(b), 1, &r, &r, &why), 0);
    assert_true(r.on);
    assert_int_equal(r.hash_types, ALL_TYPES);
    assert_int_equal(r.nitab, NDIS_RSS_ITAB_MAX);
    assert_memory_equal(r.key, MS_KEY, sizeof(MS_KEY));
    /* Linux disables first; only the flag matters then. */
    struct ndis_rss_params d = {.hdr = {NDIS_OBJTYPE_RSS_PARAMS, 2, sizeof(d)},
                                .flags = NDIS_RSS_FLAG_DISABLE};
    assert_int_equal(netvsp_rss_parse((const uint8_t *)&d, sizeof(d), 1, &r, &r, &why), 0);
    assert_false(r.on);
    /* Every "unchanged" flag: the earlier parameters, on again. */
    d.flags = NDIS_RSS_FLAG_HASH_INFO_UNCHANGED | NDIS_RSS_FLAG_KEY_UNCHANGED |
              NDIS_RSS_FLAG_ITABLE_UNCHANGED;
    assert_int_equal(netvsp_rss_parse((const uint8_t *)&d, sizeof(d), 1, &r, &r, &why), 0);
    assert_true(r.on);
    assert_memory_equal(r.key, MS_KEY, sizeof(MS_KEY));
}

static void rss_parse__each_bad_field__refused_with_reason_state_kept(void **state)
{
    (void)state;
    struct params_buf good;
    linux_params(&good, NDIS_HASH_IPV4, 1);
    struct netvsp_rss cur = {0};
    enum netvsp_rss_err why;
    assert_int_equal(netvsp_rss_parse((const uint8_t *)&good, sizeof(good), 1, &cur, &cur, &why),
                     0);
    const struct netvsp_rss before = cur;
    for (int i = 0; i < 13; i++) {
        struct params_buf b = good;
        uint32_t len = sizeof(b), nchan = 1;
        enum netvsp_rss_err want;
        switch (i) {
        case 0: len = NDIS_RSS_PARAMS_SIZE_REV1 - 1; want = NETVSP_RSS_LENGTH; break;
        case 1: b.p.hdr.type = NDIS_OBJTYPE_RSS_CAPS; want = NETVSP_RSS_HEADER; break;
        case 2: b.p.hdr.size = (uint16_t)(len + 1); want = NETVSP_RSS_HEADER; break;
        case 3: b.p.hash_info = 2 | NDIS_HASH_IPV4; want = NETVSP_RSS_FUNCTION; break;
        case 4: b.p.hash_info = NDIS_HASH_FUNCTION_TOEPLITZ; want = NETVSP_RSS_HASH_TYPE; break;
        case 5:
            b.p.hash_info = NDIS_HASH_FUNCTION_TOEPLITZ | NDIS_HASH_IPV6_EX;
            want = NETVSP_RSS_HASH_TYPE;
            break;
        case 6: b.p.hashkey_size = 16; want = NETVSP_RSS_KEY; break;
        case 7: b.p.hashkey_offset = sizeof(b) - 8; want = NETVSP_RSS_LENGTH; break;
        case 8: b.p.indirect_tabsize = 0; want = NETVSP_RSS_ITAB_SIZE; break;
        case 9: b.p.indirect_tabsize = 3 * 4; want = NETVSP_RSS_ITAB_SIZE; break;
        case 10: b.p.indirect_tabsize = 256 * 4; want = NETVSP_RSS_ITAB_SIZE; break;
        case 11:
            /* Channel 1 before any sub-channel exists. */
            b.itab[5] = 1;
            want = NETVSP_RSS_ITAB_ENTRY;
            break;
        default:
            /* Two channels' table, then one channel left under it. */
            linux_params(&b, NDIS_HASH_IPV4, 2);
            nchan = 2;
            want = NETVSP_RSS_ERR_COUNT;
            break;
        }
        struct netvsp_rss out = cur;
        int rc = netvsp_rss_parse((const uint8_t *)&b, len, nchan, &cur, &out, &why);
        if (want == NETVSP_RSS_ERR_COUNT) {
            assert_int_equal(rc, 0);
            struct ndis_rss_params d = {.hdr = {NDIS_OBJTYPE_RSS_PARAMS, 2, sizeof(d)},
                                        .flags = NDIS_RSS_FLAG_ITABLE_UNCHANGED |
                                                 NDIS_RSS_FLAG_KEY_UNCHANGED |
                                                 NDIS_RSS_FLAG_HASH_INFO_UNCHANGED};
            struct netvsp_rss again = out;
            assert_int_equal(
                netvsp_rss_parse((const uint8_t *)&d, sizeof(d), 1, &out, &again, &why), -EINVAL);
            assert_int_equal(why, NETVSP_RSS_ITAB_ENTRY);
            continue;
        }
        assert_int_equal(rc, -EINVAL);
        assert_int_equal(why, want);
        assert_memory_equal(&out, &before, sizeof(before));
    }
    /* "Unchanged" with nothing set before. */
    struct netvsp_rss zero = {0}, out = {0};
    struct ndis_rss_params d = {.hdr = {NDIS_OBJTYPE_RSS_PARAMS, 2, sizeof(d)},
                                .flags = NDIS_RSS_FLAG_HASH_INFO_UNCHANGED |
                                         NDIS_RSS_FLAG_KEY_UNCHANGED |
                                         NDIS_RSS_FLAG_ITABLE_UNCHANGED};
    assert_int_equal(netvsp_rss_parse((const uint8_t *)&d, sizeof(d), 1, &zero, &out, &why),
                     -EINVAL);
    assert_int_equal(why, NETVSP_RSS_UNCHANGED);
}

/*
 * The header's size must cover its revision's fields (28 bytes for
 * revision 1, 40 for 2, 44 for 3), and the key and the table lie after
 * the header: a revision-2 header claiming revision 1's size, a
 * revision-3 one of revision 2's size, a table or a key inside the
 * header's own fields are refused, the parameters in force kept. A
 * revision-1 header of revision 1's size, its data after it, is taken.
 */
static void rss_parse__revision_size_or_data_inside_header__refused(void **state)
{
    (void)state;
    struct params_buf good;
    linux_params(&good, NDIS_HASH_IPV4, 1);
    struct netvsp_rss cur = {0};
    enum netvsp_rss_err why;
    assert_int_equal(netvsp_rss_parse((const uint8_t *)&good, sizeof(good), 1, &cur, &cur, &why),
                     0);
    const struct netvsp_rss before = cur;
    for (int i = 0; i < 4; i++) {
        struct params_buf b = good;
        enum netvsp_rss_err want = NETVSP_RSS_HEADER;
        switch (i) {
        case 0: b.p.hdr.size = NDIS_RSS_PARAMS_SIZE_REV1; break;
        case 1: b.p.hdr.revision = 3; break;
        case 2:
            /* One entry, at the (zero) processor-mask offset. */
            b.p.indirect_tabsize = 4;
            b.p.indirect_taboffset = offsetof(struct ndis_rss_params, procmask_offset);
            want = NETVSP_RSS_LENGTH;
            break;
        default:
            b.p.hashkey_offset = 0;
            want = NETVSP_RSS_LENGTH;
            break;
        }
        struct netvsp_rss out = cur;
        assert_int_equal(netvsp_rss_parse((const uint8_t *)&b, sizeof(b), 1, &cur, &out, &why),
                         -EINVAL);
        assert_int_equal(why, want);
        assert_memory_equal(&out, &before, sizeof(before));
    }
    struct params_buf r1 = good;
    r1.p.hdr.revision = 1;
    r1.p.hdr.size = NDIS_RSS_PARAMS_SIZE_REV1;
    struct netvsp_rss zero = {0}, out;
    assert_int_equal(netvsp_rss_parse((const uint8_t *)&r1, sizeof(r1), 1, &zero, &out, &why), 0);
    assert_memory_equal(&out, &before, sizeof(before));
}

/* The first data range the guest got. */
static const struct vmbus_xfer_range *data_range(const struct vm *v)
{
    for (unsigned i = 0; i < v->nxfer; i++)
        if (v->xfer[i].nvsp.channel_type == NVSP_CHANNEL_TYPE_DATA && v->xfer[i].nranges)
            return &v->xfer[i].r[0];
    fail_msg("no data frame");
    return NULL;
}

static void rss_set__guest_params__frames_carry_hash_value_and_type(void **state)
{
    struct vm *v = F(state)->a;
    bring_up(v);
    struct ndis_rss_caps caps;
    uint32_t clen = sizeof(caps);
    assert_int_equal(
        rndis_query(v, RNDIS_OID_GEN_RECEIVE_SCALE_CAPABILITIES, NULL, 0, &caps, &clen),
        RNDIS_STATUS_SUCCESS);
    /* The one channel there is: a guest asks for no sub-channels. */
    assert_int_equal(caps.num_recv_queues, 1);
    uint8_t f[128];
    uint32_t len = v4_frame(f, V4[1].src, V4[1].sport, V4[1].dst, V4[1].dport, false);
    /* Before RSS is set: no hash. */
    assert_int_equal(frame_to_guest(v, f, len), 1);
    collect(v);
    uint32_t val;
    assert_int_equal(data_frames(v), 1);
    assert_false(range_ppi(v, data_range(v), RNDIS_PPI_HASH_VALUE, &val));
    complete_all(v);
    inbox_clear(v);

    struct params_buf b;
    linux_params(&b, ALL_TYPES, 1);
    struct netvsp_stats s0 = nstats(v);
    assert_int_equal(rndis_set(v, RNDIS_OID_GEN_RECEIVE_SCALE_PARAMETERS, &b, sizeof(b)),
                     RNDIS_STATUS_SUCCESS);
    assert_int_equal(nstats(v).rss_sets, s0.rss_sets + 1);
    assert_true(nstats(v).rss);
    assert_int_equal(frame_to_guest(v, f, len), 1);
    collect(v);
    assert_int_equal(data_frames(v), 1);
    assert_true(range_ppi(v, data_range(v), RNDIS_PPI_HASH_VALUE, &val));
    assert_int_equal(val, V4[1].tcp);
    assert_true(range_ppi(v, data_range(v), RNDIS_PPI_HASH_INFO, &val));
    assert_int_equal(val, NDIS_HASH_FUNCTION_TOEPLITZ | NDIS_HASH_TCP_IPV4);
    uint32_t flen, csum;
    assert_memory_equal(rx_frame(v, data_range(v), &flen, &csum), f, len);
    assert_int_equal(nstats(v).rss_hashed, s0.rss_hashed + 1);
    complete_all(v);
    inbox_clear(v);

    /* A table naming channel 1 (no sub-channel exists): refused and
     * counted; the NIC keeps its parameters and its connection. */
    b.itab[3] = 1;
    assert_int_equal(rndis_set(v, RNDIS_OID_GEN_RECEIVE_SCALE_PARAMETERS, &b, sizeof(b)),
                     RNDIS_STATUS_INVALID_DATA);
    struct netvsp_stats s1 = nstats(v);
    assert_int_equal(s1.rss_refused[NETVSP_RSS_ITAB_ENTRY],
                     s0.rss_refused[NETVSP_RSS_ITAB_ENTRY] + 1);
    assert_int_equal(s1.disconnects, s0.disconnects);
    assert_true(s1.rss);
    assert_int_equal(frame_to_guest(v, f, len), 1);
    collect(v);
    assert_true(range_ppi(v, data_range(v), RNDIS_PPI_HASH_VALUE, &val));
    assert_int_equal(val, V4[1].tcp);
    complete_all(v);
    inbox_clear(v);

    /* RNDIS re-initialised: RSS starts off again. */
    rndis_init(v, NULL);
    assert_false(nstats(v).rss);
}


/* A NIC of `queues` channels on VM b, brought up as Linux does. */
static struct vm *q_vm(void **state, uint32_t queues)
{
    struct fix *f = F(state);
    f->b = vm_create_q(f, "vm-q", MAC_B, NIC_MTU, queues);
    bring_up(f->b);
    return f->b;
}

/* One frame from the guest on channel ch, in send section sec: returns the
 * transaction id. */
static uint64_t send_on(struct vm *v, uint32_t ch, uint32_t sec, uint8_t seed)
{
    uint8_t frame[128], msg[256];
    make_frame(frame, 100, MAC_OTHER, seed);
    uint32_t len = build_packet(msg, NULL, 0, frame, 100);
    use_chan(v, ch);
    return rndis_send_section(v, sec, NVSP_CHANNEL_TYPE_DATA, msg, len);
}

/* What the root sent on channel ch since the last look (inbox). */
static void collect_on(struct vm *v, uint32_t ch)
{
    use_chan(v, ch);
    inbox_clear(v);
    collect(v);
}

static void subchannel__queues_4__three_granted_opened_excess_counted(void **state)
{
    struct fix *f = F(state);
    f->b = vm_create_q(f, "vm-q", MAC_B, NIC_MTU, 4);
    struct vm *v = f->b;
    /* Before RNDIS INIT: refused, counted, nothing offered. */
    nvsp_setup(v, V61, FRAME_1514);
    struct netvsp_stats s0 = nstats(v);
    uint32_t st;
    assert_int_equal(open_subs(v, 3, &st), 0);
    assert_int_equal(st, NVSP_STAT_FAIL);
    assert_int_equal(nstats(v).subch_refused[NETVSP_SUBCH_NOT_READY], 1);
    assert_int_equal(nstats(v).subchannels_refused, 3);
    rndis_init(v, NULL);
    set_filter(v, RNDIS_FILTER_DIRECTED);
    /* The capabilities name the NIC's four queues. */
    struct ndis_rss_caps caps;
    uint32_t clen = sizeof(caps);
    assert_int_equal(
        rndis_query(v, RNDIS_OID_GEN_RECEIVE_SCALE_CAPABILITIES, NULL, 0, &caps, &clen),
        RNDIS_STATUS_SUCCESS);
    assert_int_equal(caps.num_recv_queues, 4);
    /* Seven asked: three granted, offered and opened; four counted. */
    assert_int_equal(open_subs(v, 7, &st), 3);
    assert_int_equal(st, NVSP_STAT_SUCCESS);
    struct netvsp_stats s = nstats(v);
    assert_int_equal(s.subch_refused[NETVSP_SUBCH_TOO_MANY], 1);
    assert_int_equal(s.subchannels_refused, 3 + 4);
    assert_int_equal(s.subchannels_granted, 3);
    assert_int_equal(s.subchannel_opens, 3);
    assert_int_equal(s.channels, 4);
    assert_int_equal(s.queues, 4);
    /* Asking again: refused and counted; the channels stay. */
    assert_int_equal(open_subs(v, 2, &st), 0);
    assert_int_equal(st, NVSP_STAT_FAIL);
    s = nstats(v);
    assert_int_equal(s.subch_refused[NETVSP_SUBCH_REPEATED], 1);
    assert_int_equal(s.channels, 4);
    expect_no_err(v, &s0);
    /* A sub-channel carries data only: NVSP set-up and RNDIS control on
     * one are refused and counted; the NIC stays usable. */
    use_chan(v, 2);
    struct nvsp_msg_init m = {.type = NVSP_MSG_INIT, .min_protocol_ver = V61,
                              .max_protocol_ver = V61};
    nvsp_send(v, &m, sizeof(m), 77, true);
    pump(v);
    uint8_t req[256];
    uint32_t rl = build_oid_req(v, req, RNDIS_MSG_QUERY, RNDIS_OID_GEN_LINK_SPEED, NULL, 0);
    uint64_t tid = rndis_send_section(v, CTRL_SEC, NVSP_CHANNEL_TYPE_CONTROL, req, rl);
    pump(v);
    collect_on(v, 2);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                     NVSP_STAT_INVALID_RNDIS_PKT);
    expect_errs(v, &s0, NETVSP_ERR_SUBCHANNEL_MSG, 2);
    use_chan(v, 0);
    assert_int_equal(query_u32(v, RNDIS_OID_GEN_MEDIA_CONNECT_STATUS), 0);
}

static void subchannel_send__each_channel__to_switch_completed_on_that_channel(void **state)
{
    struct vm *v = q_vm(state, 4);
    assert_int_equal(open_subs(v, 3, NULL), 3);
    struct netvsp_stats s0 = nstats(v);
    for (uint32_t ch = 0; ch < 4; ch++) {
        for (uint32_t k = 0; k < 4; k++)
            collect_on(v, k);
        uint64_t tid = send_on(v, ch, 1 + ch, (uint8_t)(0x10 + ch));
        free_rx(v);
        assert_int_equal(pump(v), 1);
        uint8_t frame[128];
        make_frame(frame, 100, MAC_OTHER, (uint8_t)(0x10 + ch));
        assert_mbuf_eq(v->rx[0], frame, 100);
        free_rx(v);
        for (uint32_t k = 0; k < 4; k++) {
            collect_on(v, k);
            assert_int_equal(count_comp(v, tid), k == ch ? 1 : 0);
            if (k == ch)
                assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE),
                                 NVSP_STAT_SUCCESS);
        }
        assert_int_equal(nstats(v).chan_rx[ch], s0.chan_rx[ch] + 1);
    }
    expect_no_err(v, &s0);
    use_chan(v, 0);
}

static void subchannel_recv__rss_table__flows_land_on_channels_it_names(void **state)
{
    struct vm *v = q_vm(state, 4);
    assert_int_equal(open_subs(v, 3, NULL), 3);
    struct params_buf b;
    linux_params(&b, ALL_TYPES, 1); /* all on the primary ... */
    uint32_t e1 = V4[1].tcp & (NDIS_RSS_ITAB_MAX - 1), e3 = V4[3].tcp & (NDIS_RSS_ITAB_MAX - 1);
    assert_int_not_equal(e1, e3);
    b.itab[e1] = 1; /* ... but these two flows */
    b.itab[e3] = 3;
    use_chan(v, 0);
    assert_int_equal(rndis_set(v, RNDIS_OID_GEN_RECEIVE_SCALE_PARAMETERS, &b, sizeof(b)),
                     RNDIS_STATUS_SUCCESS);
    for (uint32_t k = 0; k < 4; k++)
        collect_on(v, k);
    struct netvsp_stats s0 = nstats(v);
    uint8_t f1[128], f3[128], arp[64];
    uint32_t l1 = v4_frame(f1, V4[1].src, V4[1].sport, V4[1].dst, V4[1].dport, false);
    uint32_t l3 = v4_frame(f3, V4[3].src, V4[3].sport, V4[3].dst, V4[3].dport, false);
    make_frame(arp, 60, v->mac, 3);
    memcpy(f1, v->mac, 6);
    memcpy(f3, v->mac, 6);
    arp[12] = 0x08;
    arp[13] = 0x06;
    struct rte_mbuf *m[3] = {frame_mbuf(f1, l1), frame_mbuf(f3, l3), frame_mbuf(arp, 60)};
    assert_int_equal(to_guest(v, m, 3), 3);
    const uint8_t *want[4] = {arp, f1, NULL, f3};
    const uint32_t wlen[4] = {60, l1, 0, l3};
    for (uint32_t k = 0; k < 4; k++) {
        collect_on(v, k);
        assert_int_equal(data_frames(v), want[k] ? 1 : 0);
        if (!want[k])
            continue;
        uint32_t flen, csum, val;
        assert_memory_equal(rx_frame(v, &v->xfer[0].r[0], &flen, &csum), want[k], wlen[k]);
        assert_int_equal(flen, wlen[k]);
        if (k)
            assert_true(range_ppi(v, &v->xfer[0].r[0], RNDIS_PPI_HASH_VALUE, &val) &&
                        val == (k == 1 ? V4[1].tcp : V4[3].tcp));
        assert_int_equal(nstats(v).chan_tx[k], s0.chan_tx[k] + 1);
        /* Completed on the channel it came on. */
        complete_all(v);
    }
    struct netvsp_stats s = nstats(v);
    assert_int_equal(s.chan_tx[2], s0.chan_tx[2]);
    expect_no_err(v, &s0);
    use_chan(v, 0);
}

static void subchannel_itab__all_open__guest_gets_round_robin_send_table(void **state)
{
    struct vm *v = q_vm(state, 3);
    assert_int_equal(open_subs(v, 2, NULL), 2);
    pump(v);
    collect_on(v, 0);
    assert_int_equal(v->ninband, 1);
    struct nvsp_msg_indirection_table t;
    assert_true(v->inband[0].len >= sizeof(t));
    memcpy(&t, v->inband[0].msg, sizeof(t));
    assert_int_equal(t.type, NVSP_MSG5_SEND_INDIRECTION_TABLE);
    assert_int_equal(t.count, NVSP_INDIRECTION_TABLE_ENTRIES);
    assert_true(t.offset + 4u * t.count <= v->inband[0].len);
    for (uint32_t i = 0; i < NVSP_INDIRECTION_TABLE_ENTRIES; i++) {
        uint32_t e;
        memcpy(&e, v->inband[0].msg + t.offset + 4 * i, 4);
        assert_int_equal(e, i % 3);
    }
    assert_int_equal(nstats(v).itab_sent, 1);
    /* Once. */
    pump(v);
    collect_on(v, 0);
    assert_int_equal(v->ninband, 0);
}

static void subchannel_rss__table_naming_channel_not_open__refused(void **state)
{
    struct vm *v = q_vm(state, 4);
    assert_int_equal(open_subs(v, 1, NULL), 1);
    use_chan(v, 0);
    struct params_buf b;
    linux_params(&b, ALL_TYPES, 3); /* names channel 2: not there */
    struct netvsp_stats s0 = nstats(v);
    assert_int_equal(rndis_set(v, RNDIS_OID_GEN_RECEIVE_SCALE_PARAMETERS, &b, sizeof(b)),
                     RNDIS_STATUS_INVALID_DATA);
    assert_int_equal(nstats(v).rss_refused[NETVSP_RSS_ITAB_ENTRY],
                     s0.rss_refused[NETVSP_RSS_ITAB_ENTRY] + 1);
    assert_false(nstats(v).rss);
    linux_params(&b, ALL_TYPES, 2);
    assert_int_equal(rndis_set(v, RNDIS_OID_GEN_RECEIVE_SCALE_PARAMETERS, &b, sizeof(b)),
                     RNDIS_STATUS_SUCCESS);
    assert_true(nstats(v).rss);
    expect_no_err(v, &s0);
}

/*
 * The guest closes one sub-channel, then the primary with the two others
 * open, one holding a transfer not completed and one a send not yet taken
 * by the root:
 * the sub-channels close first, the port stops using their lanes before
 * their rings go (ASan sees any use after that), nothing leaks, and the
 * NIC opens again with new sub-channels.
 */
static void subchannel_close__primary_with_subs_open__subs_first_nothing_left(void **state)
{
    struct vm *v = q_vm(state, 4);
    assert_int_equal(open_subs(v, 3, NULL), 3);
    uint8_t f1[128];
    uint32_t l1 = v4_frame(f1, V4[1].src, V4[1].sport, V4[1].dst, V4[1].dport, false);
    struct params_buf b;
    linux_params(&b, ALL_TYPES, 4);
    use_chan(v, 0);
    assert_int_equal(rndis_set(v, RNDIS_OID_GEN_RECEIVE_SCALE_PARAMETERS, &b, sizeof(b)),
                     RNDIS_STATUS_SUCCESS);
    memcpy(f1, v->mac, 6);
    /* The guest closes sub-channel 2 alone: the port stops using it, and
     * what its table names for it goes to the primary. */
    assert_int_equal(vmbus_client_close(v->sub[2]), 0);
    v->sub[2] = NULL;
    assert_int_equal(nstats(v).channels, 3);
    uint64_t tx0 = nstats(v).chan_tx[0];
    assert_int_equal(frame_to_guest(v, f1, l1), 1); /* hash 0xc626b0ea: channel 2 */
    assert_int_equal(nstats(v).chan_tx[0], tx0 + 1);
    send_on(v, 1, 4, 3);
    assert_int_equal(pump(v), 1);
    free_rx(v);
    uint8_t f3[128];
    uint32_t l3 = v4_frame(f3, V4[3].src, V4[3].sport, V4[3].dst, V4[3].dport, false);
    memcpy(f3, v->mac, 6);
    uint64_t tx3 = nstats(v).chan_tx[3];
    assert_int_equal(frame_to_guest(v, f3, l3), 1); /* channel 3, never completed */
    assert_int_equal(nstats(v).chan_tx[3], tx3 + 1);
    send_on(v, 3, 5, 1);                            /* in the ring, not taken yet */
    use_chan(v, 0);
    assert_int_equal(vmbus_client_close(v->prim), 0);
    v->prim = v->ch = NULL;
    struct netvsp_stats s = nstats(v);
    assert_false(s.connected);
    assert_int_equal(s.channels, 0);
    /* The root rescinded the sub-channels: the guest lets them go. */
    assert_true(vmbus_client_poll(v->client) >= 0);
    for (uint32_t i = 1; i < 4; i += 2) {
        assert_true(vmbus_gchan_rescinded(v->sub[i]));
        assert_int_equal(vmbus_client_close(v->sub[i]), 0);
        v->sub[i] = NULL;
    }
    /* The port has nothing to poll. */
    struct rte_mbuf *pk[BURST];
    assert_int_equal(v->port->cls->rx_burst(v->port, pk, BURST), 0);
    open_chan(v);
    bring_up(v);
    assert_int_equal(nstats(v).channels, 1);
    assert_int_equal(open_subs(v, 3, NULL), 3);
    assert_int_equal(nstats(v).channels, 4);
    send_on(v, 1, 6, 2);
    assert_int_equal(pump(v), 1);
    free_rx(v);
    use_chan(v, 0);
}

/*
 * The port's budget per round is the NIC's, over all its channels: a
 * guest flooding four channels gets no more frames into one round than a
 * guest flooding one; and round by round every channel is served.
 */
static void subchannel_budget__flood_on_four_channels__one_channels_share(void **state)
{
    struct vm *v = q_vm(state, 4);
    assert_int_equal(open_subs(v, 3, NULL), 3);
    struct rte_mbuf *pk[BURST];
    for (uint32_t i = 0; i < 64; i++)
        send_on(v, 0, 1 + i, (uint8_t)i);
    uint16_t one = v->port->cls->rx_burst(v->port, pk, BURST);
    rte_pktmbuf_free_bulk(pk, one);
    assert_true(one > 0 && one <= BURST);
    pump(v);
    free_rx(v);
    for (uint32_t k = 0; k < 4; k++)
        collect_on(v, k);
    struct netvsp_stats s0 = nstats(v);
    for (uint32_t i = 0; i < 64; i++)
        send_on(v, i % 4, 1 + i, (uint8_t)i);
    uint16_t four = v->port->cls->rx_burst(v->port, pk, BURST);
    rte_pktmbuf_free_bulk(pk, four);
    assert_int_equal(four, one);
    for (int r = 0; r < 3; r++) {
        uint16_t n = v->port->cls->rx_burst(v->port, pk, BURST);
        assert_true(n <= one);
        rte_pktmbuf_free_bulk(pk, n);
    }
    struct netvsp_stats s = nstats(v);
    for (uint32_t k = 0; k < 4; k++)
        assert_true(s.chan_rx[k] > s0.chan_rx[k]);
    pump(v);
    free_rx(v);
    s = nstats(v);
    for (uint32_t k = 0; k < 4; k++)
        assert_int_equal(s.chan_rx[k], s0.chan_rx[k] + 16);
    use_chan(v, 0);
}

/*
 * Two channels flooding: the lane a round serves first turns over the
 * lanes that are open, not over every index a lane could have, so each
 * channel is first in every other round and gets the same share.
 */
static void subchannel_budget__two_channels_flooding__each_served_first_in_turn(void **state)
{
    struct vm *v = q_vm(state, 2);
    assert_int_equal(open_subs(v, 1, NULL), 1);
    pump(v);
    free_rx(v);
    struct netvsp_stats s0 = nstats(v);
    for (uint32_t i = 0; i < 60; i++) {
        send_on(v, 0, 1 + i, (uint8_t)i);
        send_on(v, 1, 61 + i, (uint8_t)i);
    }
    struct rte_mbuf *pk[BURST];
    for (int r = 0; r < 4; r++) {
        uint16_t n = v->port->cls->rx_burst(v->port, pk, BURST);
        assert_true(n > 0);
        rte_pktmbuf_free_bulk(pk, n);
    }
    struct netvsp_stats s = nstats(v);
    assert_true(s.chan_rx[0] > s0.chan_rx[0]);
    assert_int_equal(s.chan_rx[0] - s0.chan_rx[0], s.chan_rx[1] - s0.chan_rx[1]);
    pump(v);
    free_rx(v);
    s = nstats(v);
    assert_int_equal(s.chan_rx[0], s0.chan_rx[0] + 60);
    assert_int_equal(s.chan_rx[1], s0.chan_rx[1] + 60);
    use_chan(v, 0);
}

/* A NIC of `queues` channels on VM b whose guest takes frames up to its
 * MTU (zero-copy sends are at least ZC_FRAME bytes). */
#define ZC_FRAME 4000u
static struct vm *q_vm_big(void **state, uint32_t queues)
{
    struct fix *f = F(state);
    f->b = vm_create_q(f, "vm-q", MAC_B, NIC_MTU, queues);
    bring_up_ver(f->b, V61, NIC_MTU);
    return f->b;
}

/* One ZC_FRAME-byte UDP frame GPA-direct from the scratch pages on channel ch
 * (its RNDIS header in send section sec), large enough for its payload to
 * stay in the guest's pages (zcopy.c): its transaction id. */
static uint64_t zc_send_on(struct vm *v, uint32_t ch, uint32_t sec)
{
    static uint8_t f[ZC_FRAME];
    make_l4_frame(f, ZC_FRAME, MAC_OTHER, 4, IPPROTO_UDP, 0, 0);
    memcpy(v->scratch, f, ZC_FRAME);
    struct rndis_packet_msg pm = {
        .hdr = {.type = RNDIS_MSG_PACKET, .len = (uint32_t)sizeof(pm) + ZC_FRAME},
        .data_offset = 36,
        .data_len = ZC_FRAME,
    };
    memcpy(section(v, sec), &pm, sizeof(pm));
    struct grange r = scratch_range(v, 0, 0, ZC_FRAME);
    uint8_t ext[128];
    uint32_t el = gpa_ext(ext, &r, 1, 1);
    use_chan(v, ch);
    return rndis_pkt_gpa(v, NVSP_CHANNEL_TYPE_DATA, sec, (uint32_t)sizeof(pm), ext, el);
}

/* Sends on channel ch, their completions left unread, until the root's
 * ring to the guest on ch has no room for one more reply. */
static void fill_root_ring(struct vm *v, uint32_t ch)
{
    for (uint32_t i = 0;; i++) {
        assert_true(i < 4096);
        use_chan(v, ch);
        if (root_ring_free(v) < netvsp_reply_room())
            break;
        send_on(v, ch, 1 + i % 100, (uint8_t)i);
        pump(v);
        free_rx(v);
    }
}

/*
 * A guest that does not read one channel holds up that channel's
 * completions only: a zero-copy send on the primary is completed as soon
 * as its frame is freed (and the worker is told to poll for it), while
 * sub-channel 1's ring to the guest is full.
 */
static void subchannel_zcopy__other_channel_not_read__completion_still_sent(void **state)
{
    struct vm *v = q_vm_big(state, 2);
    assert_int_equal(open_subs(v, 1, NULL), 1);
    pump(v);
    fill_root_ring(v, 1);
    collect_on(v, 0);
    struct netvsp_stats s0 = nstats(v);
    uint64_t tid = zc_send_on(v, 0, 120);
    assert_int_equal(pump(v), 1);
    assert_int_equal(nstats(v).zc_frames, s0.zc_frames + 1);
    free_rx(v);
    /* Freed: a completion is owed on a channel with room. */
    assert_true(v->port->cls->wait_arm(v->port));
    v->port->cls->wait_disarm(v->port);
    pump(v);
    collect_on(v, 0);
    assert_int_equal(count_comp(v, tid), 1);
    assert_int_equal(comp_status(v, tid, NVSP_MSG1_SEND_RNDIS_PKT_COMPLETE), NVSP_STAT_SUCCESS);
    /* The guest reads channel 1: its sends go on being served. */
    collect_on(v, 1);
    uint64_t t1 = send_on(v, 1, 3, 3);
    assert_int_equal(pump(v), 1);
    free_rx(v);
    collect_on(v, 1);
    assert_int_equal(count_comp(v, t1), 1);
    expect_no_err(v, &s0);
    use_chan(v, 0);
}

static void close_sub(struct vm *v, uint32_t i)
{
    assert_int_equal(vmbus_client_close(v->sub[i]), 0);
    v->sub[i] = NULL;
}

/* Sub-channel i closed by the guest and opened again (same offer). */
static void reopen_sub(struct vm *v, uint32_t i)
{
    close_sub(v, i);
    open_sub(v, i);
}

/*
 * A zero-copy send's completion is owed to the opening of the channel it
 * came on: the guest closes sub-channel 1 while the frame is held, opens
 * it again, and the frame is then freed: the new opening gets no
 * completion for a send it never made (a Linux guest takes a completion's
 * id for its packet's address), and its own sends are served.
 */
static void subchannel_zcopy__channel_reopened_while_held__old_completion_dropped(void **state)
{
    struct vm *v = q_vm_big(state, 2);
    assert_int_equal(open_subs(v, 1, NULL), 1);
    pump(v);
    collect_on(v, 1);
    struct netvsp_stats s0 = nstats(v);
    uint64_t tid = zc_send_on(v, 1, 120);
    assert_int_equal(pump(v), 1);
    assert_int_equal(nstats(v).zc_frames, s0.zc_frames + 1);
    struct rte_mbuf *m = v->rx[0];
    v->nrx = 0;
    reopen_sub(v, 1);
    assert_int_equal(nstats(v).channels, 2);
    rte_pktmbuf_free(m);
    pump(v);
    collect_on(v, 1);
    assert_int_equal(count_comp(v, tid), 0);
    collect_on(v, 0);
    assert_int_equal(count_comp(v, tid), 0);
    uint64_t t1 = send_on(v, 1, 3, 3);
    assert_int_equal(pump(v), 1);
    free_rx(v);
    collect_on(v, 1);
    assert_int_equal(count_comp(v, t1), 1);
    expect_no_err(v, &s0);
    use_chan(v, 0);
}

/*
 * A guest completes a receive transfer on another channel than the one it
 * came on (allowed: the receive buffer is the connection's), then again on
 * a third: the second is refused and counted, the chain is freed once, and
 * frames go on being delivered.
 */
static void subchannel_recv__completed_twice_on_two_channels__second_refused(void **state)
{
    struct vm *v = q_vm(state, 4);
    assert_int_equal(open_subs(v, 3, NULL), 3);
    struct params_buf b;
    linux_params(&b, ALL_TYPES, 1);
    b.itab[V4[1].tcp & (NDIS_RSS_ITAB_MAX - 1)] = 1;
    use_chan(v, 0);
    assert_int_equal(rndis_set(v, RNDIS_OID_GEN_RECEIVE_SCALE_PARAMETERS, &b, sizeof(b)),
                     RNDIS_STATUS_SUCCESS);
    uint8_t f1[128];
    uint32_t l1 = v4_frame(f1, V4[1].src, V4[1].sport, V4[1].dst, V4[1].dport, false);
    memcpy(f1, v->mac, 6);
    for (uint32_t k = 0; k < 4; k++)
        collect_on(v, k);
    struct netvsp_stats s0 = nstats(v);
    assert_int_equal(frame_to_guest(v, f1, l1), 1);
    collect_on(v, 1);
    assert_int_equal(data_frames(v), 1);
    uint64_t x = v->xfer[0].tid;
    use_chan(v, 2);
    complete_xfer_raw(v, x);
    pump(v);
    expect_no_err(v, &s0);
    use_chan(v, 0);
    complete_xfer_raw(v, x);
    pump(v);
    expect_err(v, &s0, NETVSP_ERR_COMPLETION_ID);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(frame_to_guest(v, f1, l1), 1);
        collect_on(v, 1);
        assert_int_equal(data_frames(v), 1);
        uint32_t flen, csum;
        assert_memory_equal(rx_frame(v, &v->xfer[0].r[0], &flen, &csum), f1, l1);
        complete_all(v);
    }
    expect_err(v, &s0, NETVSP_ERR_COMPLETION_ID);
    use_chan(v, 0);
}

/*
 * The send table waits for room on the primary only: with sub-channel 1's
 * ring to the guest full when the last sub-channel opens, the worker is
 * told there is work (it must not sleep on a ring the table does not
 * use), and the table goes out.
 */
static void subchannel_itab__other_channel_full__sent_on_primary(void **state)
{
    struct vm *v = q_vm(state, 3);
    assert_int_equal(open_subs(v, 2, NULL), 2);
    close_sub(v, 2);
    fill_root_ring(v, 1);
    collect_on(v, 0);
    assert_int_equal(v->ninband, 0);
    open_sub(v, 2);
    assert_true(v->port->cls->wait_arm(v->port));
    v->port->cls->wait_disarm(v->port);
    pump(v);
    collect_on(v, 0);
    assert_int_equal(v->ninband, 1);
    assert_int_equal(nstats(v).itab_sent, 1);
    collect_on(v, 1);
    use_chan(v, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rss_hash__published_ipv4_vectors__match),
        cmocka_unit_test(rss_hash__published_ipv6_vectors__match),
        cmocka_unit_test(rss_hash__fragment_other_or_short__addresses_or_nothing),
        cmocka_unit_test(rss_parse__linux_layout_and_disable__taken),
        cmocka_unit_test(rss_parse__each_bad_field__refused_with_reason_state_kept),
        cmocka_unit_test(rss_parse__revision_size_or_data_inside_header__refused),
        T(rss_set__guest_params__frames_carry_hash_value_and_type),
        T(subchannel__queues_4__three_granted_opened_excess_counted),
        T(subchannel_send__each_channel__to_switch_completed_on_that_channel),
        T(subchannel_recv__rss_table__flows_land_on_channels_it_names),
        T(subchannel_itab__all_open__guest_gets_round_robin_send_table),
        T(subchannel_rss__table_naming_channel_not_open__refused),
        T(subchannel_close__primary_with_subs_open__subs_first_nothing_left),
        T(subchannel_budget__flood_on_four_channels__one_channels_share),
        T(subchannel_budget__two_channels_flooding__each_served_first_in_turn),
        T(subchannel_zcopy__other_channel_not_read__completion_still_sent),
        T(subchannel_zcopy__channel_reopened_while_held__old_completion_dropped),
        T(subchannel_recv__completed_twice_on_two_channels__second_refused),
        T(subchannel_itab__other_channel_full__sent_on_primary),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
