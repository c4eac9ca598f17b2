/*
 * Receive-side scaling: the guest's RSS parameters, parsed once from its
 * copy of the OID buffer and checked, and the Toeplitz hash of a frame
 * under them (DPDK's rte_softrss_be on the converted key).
 */
#include <errno.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_thash.h>

#include "netvsp-private.h"

/* The hash types we compute, the ones our capabilities name (IPv6
 * extension-header variants are not). */
#define HASH_TYPES_OK (NDIS_HASH_IPV4 | NDIS_HASH_TCP_IPV4 | NDIS_HASH_IPV6 | NDIS_HASH_TCP_IPV6)

static const char *const rss_err_names[NETVSP_RSS_ERR_COUNT] = {
    [NETVSP_RSS_LENGTH] = "length",         [NETVSP_RSS_HEADER] = "header",
    [NETVSP_RSS_FUNCTION] = "hash_function", [NETVSP_RSS_HASH_TYPE] = "hash_type",
    [NETVSP_RSS_KEY] = "key_length",         [NETVSP_RSS_ITAB_SIZE] = "table_size",
    [NETVSP_RSS_ITAB_ENTRY] = "table_entry", [NETVSP_RSS_UNCHANGED] = "unchanged_unset",
};

const char *netvsp_rss_err_name(enum netvsp_rss_err r)
{
    return r < NETVSP_RSS_ERR_COUNT ? rss_err_names[r] : "invalid";
}

/* The size of each revision's fields (NDIS_SIZEOF_RECEIVE_SCALE_PARAMETERS_
 * REVISION_n): revision 2 adds the processor masks, 3 the default
 * processor number. A header smaller than its revision says is malformed. */
static const uint16_t rev_size[4] = {0, NDIS_RSS_PARAMS_SIZE_REV1, sizeof(struct ndis_rss_params),
                                     sizeof(struct ndis_rss_params) + 4};

/* off/size name bytes inside a buffer of len. */
static bool inside(uint32_t off, uint32_t size, uint32_t len)
{
    return off <= len && size <= len - off;
}

static int refuse(enum netvsp_rss_err *why, enum netvsp_rss_err r)
{
    *why = r;
    return -EINVAL;
}

int netvsp_rss_parse(const uint8_t *in, uint32_t len, uint32_t nchan,
                     const struct netvsp_rss *cur, struct netvsp_rss *out,
                     enum netvsp_rss_err *why)
{
    struct ndis_rss_params p = {0};
    if (len < NDIS_RSS_PARAMS_SIZE_REV1)
        return refuse(why, NETVSP_RSS_LENGTH);
    memcpy(&p, in, len < sizeof(p) ? len : sizeof(p));
    if (p.hdr.type != NDIS_OBJTYPE_RSS_PARAMS || p.hdr.revision < 1 || p.hdr.revision > 3 ||
        p.hdr.size < rev_size[p.hdr.revision] || p.hdr.size > len)
        return refuse(why, NETVSP_RSS_HEADER);
    /* Built aside: the parameters in force stay until all is checked. */
    struct netvsp_rss n = *cur;
    if (p.flags & NDIS_RSS_FLAG_DISABLE) {
        /* Linux sends this first, with nothing else worth reading. */
        n.on = false;
        *out = n;
        return 0;
    }
    if (p.flags & NDIS_RSS_FLAG_HASH_INFO_UNCHANGED) {
        if (!cur->hash_types)
            return refuse(why, NETVSP_RSS_UNCHANGED);
    } else {
        if ((p.hash_info & NDIS_HASH_FUNCTION_MASK) != NDIS_HASH_FUNCTION_TOEPLITZ)
            return refuse(why, NETVSP_RSS_FUNCTION);
        uint32_t types = p.hash_info & ~NDIS_HASH_FUNCTION_MASK;
        if (!types || (types & ~HASH_TYPES_OK))
            return refuse(why, NETVSP_RSS_HASH_TYPE);
        n.hash_types = types;
    }
    if (p.flags & NDIS_RSS_FLAG_KEY_UNCHANGED) {
        if (!cur->hash_types)
            return refuse(why, NETVSP_RSS_UNCHANGED);
    } else {
        if (p.hashkey_size != NDIS_RSS_KEY_LEN)
            return refuse(why, NETVSP_RSS_KEY);
        /* The key and the table follow the header (as every guest lays
         * them out): never the header's own fields read as data. */
        if (p.hashkey_offset < p.hdr.size || !inside(p.hashkey_offset, p.hashkey_size, len))
            return refuse(why, NETVSP_RSS_LENGTH);
        memcpy(n.key, in + p.hashkey_offset, NDIS_RSS_KEY_LEN);
        rte_convert_rss_key((const uint32_t *)(const void *)n.key, n.key_be, NDIS_RSS_KEY_LEN);
    }
    if (p.flags & NDIS_RSS_FLAG_ITABLE_UNCHANGED) {
        if (!cur->nitab)
            return refuse(why, NETVSP_RSS_UNCHANGED);
        /* The channels may have changed under an old table. */
        for (uint32_t i = 0; i < n.nitab; i++)
            if (n.itab[i] >= nchan)
                return refuse(why, NETVSP_RSS_ITAB_ENTRY);
    } else {
        uint32_t bytes = p.indirect_tabsize, k = bytes / 4;
        if (bytes % 4 || k == 0 || k > NDIS_RSS_ITAB_MAX || (k & (k - 1)))
            return refuse(why, NETVSP_RSS_ITAB_SIZE);
        if (p.indirect_taboffset < p.hdr.size || !inside(p.indirect_taboffset, bytes, len))
            return refuse(why, NETVSP_RSS_LENGTH);
        for (uint32_t i = 0; i < k; i++) {
            uint32_t e;
            memcpy(&e, in + p.indirect_taboffset + 4 * i, sizeof(e));
            if (e >= nchan)
                return refuse(why, NETVSP_RSS_ITAB_ENTRY);
            n.itab[i] = (uint16_t)e;
        }
        n.nitab = k;
    }
    n.on = true;
    *out = n;
    return 0;
}

static uint32_t be32_at(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return rte_be_to_cpu_32(v);
}

bool netvsp_rss_hash(const struct netvsp_rss *r, const uint8_t *f, uint32_t len, uint32_t *hash,
                     uint32_t *type)
{
    uint32_t t[RTE_THASH_V6_L4_LEN];
    uint32_t off = RTE_ETHER_HDR_LEN, nw = 0, l4 = 0;
    bool tcp = false;
    uint16_t et;
    if (!r->on || len < off)
        return false;
    memcpy(&et, f + 12, sizeof(et));
    if (et == rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN)) {
        if (len < off + 4)
            return false;
        memcpy(&et, f + 16, sizeof(et));
        off += 4;
    }
    if (et == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4)) {
        const uint32_t ih = off;
        if (len < ih + sizeof(struct rte_ipv4_hdr) || (f[ih] >> 4) != 4)
            return false;
        uint32_t ihl = (uint32_t)(f[ih] & 0xf) * 4;
        uint16_t frag;
        memcpy(&frag, f + ih + offsetof(struct rte_ipv4_hdr, fragment_offset), sizeof(frag));
        /* A fragment has no ports: every piece of a datagram hashes alike. */
        tcp = f[ih + offsetof(struct rte_ipv4_hdr, next_proto_id)] == IPPROTO_TCP &&
              !(rte_be_to_cpu_16(frag) & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) &&
              ihl >= sizeof(struct rte_ipv4_hdr) && len >= ih + ihl + 4 &&
              (r->hash_types & NDIS_HASH_TCP_IPV4);
        if (!tcp && !(r->hash_types & NDIS_HASH_IPV4))
            return false;
        t[nw++] = be32_at(f + ih + offsetof(struct rte_ipv4_hdr, src_addr));
        t[nw++] = be32_at(f + ih + offsetof(struct rte_ipv4_hdr, dst_addr));
        l4 = ih + ihl;
        *type = tcp ? NDIS_HASH_TCP_IPV4 : NDIS_HASH_IPV4;
    } else if (et == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6)) {
        const uint32_t ih = off;
        if (len < ih + sizeof(struct rte_ipv6_hdr) || (f[ih] >> 4) != 6)
            return false;
        /* TCP right after the fixed header; extension headers would need
         * the _EX types, which we do not offer. */
        tcp = f[ih + offsetof(struct rte_ipv6_hdr, proto)] == IPPROTO_TCP &&
              len >= ih + sizeof(struct rte_ipv6_hdr) + 4 && (r->hash_types & NDIS_HASH_TCP_IPV6);
        if (!tcp && !(r->hash_types & NDIS_HASH_IPV6))
            return false;
        for (uint32_t i = 0; i < 8; i++)
            t[nw++] = be32_at(f + ih + offsetof(struct rte_ipv6_hdr, src_addr) + 4 * i);
        l4 = ih + sizeof(struct rte_ipv6_hdr);
        *type = tcp ? NDIS_HASH_TCP_IPV6 : NDIS_HASH_IPV6;
    } else {
        return false;
    }
    if (tcp)
        t[nw++] = be32_at(f + l4); /* source port, destination port */
    *hash = rte_softrss_be(t, nw, (const uint8_t *)r->key_be);
    return true;
}
