/*
 * netvsc's vRSS helpers, below rxtx.c: the Toeplitz hash of a frame with
 * the key our RSS parameters give the root, and the root's send
 * indirection table, which picks the channel a frame is sent on.
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <string.h>

#include "jumbo.h"
#include "netvsc-private.h"
#include "nvsp-proto.h"

/* Toeplitz over in (at most NDIS_RSS_KEY_LEN - 4 bytes): for every set
 * bit of the input, the 32 key bits starting at that bit's position.
 * Written out rather than DPDK's rte_softrss because netvsc is the guest
 * side and is built and run without DPDK (hv-vm, hv-rawguest; see
 * netvsc/CMakeLists.txt); test_netvsc checks it against the published
 * vectors and test_netvsc_vm against rte_softrss with the same key. It
 * runs only once the root sent a send table (more than one channel). */
static uint32_t toeplitz(const uint8_t *in, uint32_t len)
{
    const uint8_t *k = netvsc_rss_key;
    uint32_t h = 0;
    uint32_t win = (uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 | (uint32_t)k[2] << 8 | k[3];
    for (uint32_t i = 0; i < len; i++) {
        for (uint32_t b = 0; b < 8; b++) {
            if (in[i] & (0x80u >> b))
                h ^= win;
            win = win << 1 | ((k[i + 4] >> (7 - b)) & 1u);
        }
    }
    return h;
}

bool netvsc_frame_hash(const uint8_t *f, uint32_t len, uint32_t *hash)
{
    uint8_t t[36]; /* addresses and ports, as on the wire */
    uint32_t off = JUMBO_ETH_HLEN, n;
    if (len < off)
        return false;
    uint16_t et = (uint16_t)(f[12] << 8 | f[13]);
    if (et == 0x8100) {
        if (len < off + 4)
            return false;
        et = (uint16_t)(f[16] << 8 | f[17]);
        off += 4;
    }
    bool tcp;
    uint32_t l4;
    if (et == 0x0800) {
        if (len < off + 20 || (f[off] >> 4) != 4)
            return false;
        uint32_t ihl = (uint32_t)(f[off] & 0xf) * 4;
        uint16_t frag = (uint16_t)(f[off + 6] << 8 | f[off + 7]);
        /* A fragment has no ports: every piece of a datagram hashes alike. */
        tcp = f[off + 9] == IPPROTO_TCP && !(frag & 0x3fff) && ihl >= 20 &&
              len >= off + ihl + 4;
        memcpy(t, f + off + 12, 8);
        n = 8;
        l4 = off + ihl;
    } else if (et == 0x86dd) {
        if (len < off + 40 || (f[off] >> 4) != 6)
            return false;
        /* TCP right after the fixed header only (no _EX hash types). */
        tcp = f[off + 6] == IPPROTO_TCP && len >= off + 40 + 4;
        memcpy(t, f + off + 8, 32);
        n = 32;
        l4 = off + 40;
    } else {
        return false;
    }
    if (tcp) {
        memcpy(t + n, f + l4, 4); /* source port, destination port */
        n += 4;
    }
    *hash = toeplitz(t, n);
    return true;
}

_Static_assert(NETVSC_SEND_TAB == NVSP_INDIRECTION_TABLE_ENTRIES, "the root's send table");

void netvsc_on_send_table(struct netvsc *n, const uint8_t *msg, uint32_t len)
{
    struct nvsp_msg_indirection_table m;
    uint8_t tab[NETVSC_SEND_TAB];
    if (len < sizeof(m))
        goto ignored;
    memcpy(&m, msg, sizeof(m));
    /* The table at offset from the message's start (Linux >= 5.5 reads it
     * there), inside the message, after the fixed fields. */
    if (m.count != NETVSC_SEND_TAB || m.offset < sizeof(m) || m.offset > len ||
        len - m.offset < 4u * NETVSC_SEND_TAB)
        goto ignored;
    for (uint32_t i = 0; i < NETVSC_SEND_TAB; i++) {
        uint32_t e;
        memcpy(&e, msg + m.offset + 4 * i, sizeof(e));
        if (e >= n->nchan)
            goto ignored;
        tab[i] = (uint8_t)e;
    }
    memcpy(n->send_tab, tab, sizeof(tab));
    n->send_tab_set = true;
    n->stats.send_tables++;
    return;
ignored:
    n->stats.send_table_bad++;
}
