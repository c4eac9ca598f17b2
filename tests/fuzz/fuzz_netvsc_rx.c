/*
 * libFuzzer harness for netvsc's receive of one transfer-page packet
 * (netvsc_rx_xfer, netvsc-private.h): what the guest reads of what the
 * root wrote into the receive buffer and named in the packet's ranges.
 *
 * Input: a budget byte, a range count byte (1..64), the ranges (8 bytes
 * each: byte_count, byte_offset), then the receive buffer's bytes (a
 * buffer of RBUF_LEN, sections of SUB_SIZE; the input fills it from the
 * start, the rest is zero). The harness delivers the transfer poll by poll
 * with the budget (as netvsc_poll does), with RSC taken, so every message
 * type is reached.
 *
 * Checked besides sanitizers: no poll delivers more frames than its
 * budget and each delivers at least one while ranges are left (no stall);
 * every frame handed to the callback lies inside the receive buffer (or is
 * the RSC buffer's packet, at most NETVSC_RSC_FRAME_MAX); every range is
 * taken once; a range outside the buffer makes the status an error and is
 * counted. The bytes after the two header bytes are then also read as the
 * root's send indirection table (netvsc_on_send_table) on 1..8 open
 * channels: taken or counted bad, and a table taken names open channels
 * only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netvsc-private.h"
#include "nvsp-proto.h"
#include "vmbus-ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_netvsc_rx: invariant failed at line %d: %s\n", __LINE__,       \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define SUB_SIZE 1024u
#define SUBS 16u
#define RBUF_LEN (SUB_SIZE * SUBS)

static uint8_t g_rsc[NETVSC_RSC_FRAME_MAX];
static struct netvsc g_n;
static volatile uint8_t sink;

static void frame(void *ctx, const void *f, uint32_t len, const struct netvsc_meta *meta)
{
    const struct netvsc *n = ctx;
    const uint8_t *p = f;
    CHECK(meta != NULL);
    if (meta->flags & NETVSC_F_RSC) {
        CHECK(p == n->q[0].rsc.buf && len <= NETVSC_RSC_FRAME_MAX);
    } else {
        CHECK(p >= n->rbuf && len <= RBUF_LEN && p - n->rbuf <= (ptrdiff_t)(RBUF_LEN - len));
    }
    if (len)
        sink ^= p[0] ^ p[len - 1];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    int budget = 1 + data[0] % 40;
    uint32_t nr = 1 + data[1] % 64;
    data += 2, size -= 2;
    const uint8_t *whole = data;
    size_t whole_size = size;
    struct vmbus_xfer_range ranges[64];
    memset(ranges, 0, sizeof(ranges));
    size_t rl = size < nr * sizeof(ranges[0]) ? size : nr * sizeof(ranges[0]);
    memcpy(ranges, data, rl);
    data += rl, size -= rl;
    uint8_t *rbuf = calloc(1, RBUF_LEN);
    if (!rbuf)
        return 0;
    memcpy(rbuf, data, size < RBUF_LEN ? size : RBUF_LEN);

    memset(&g_n, 0, sizeof(g_n));
    struct netvsc *n = &g_n;
    n->rbuf = rbuf;
    n->rbuf_len = RBUF_LEN;
    n->sub_alloc_size = SUB_SIZE;
    n->num_sub_allocs = SUBS;
    n->info.rsc = true;
    n->q[0].rsc.buf = g_rsc;
    n->q[0].xfer = (struct netvsc_xfer){.ranges = ranges, .nr = nr, .status = NVSP_STAT_SUCCESS};

    bool outside = false;
    for (uint32_t i = 0; i < nr; i++)
        outside |= (uint64_t)ranges[i].byte_offset + ranges[i].byte_count > RBUF_LEN;
    uint32_t polls = 0;
    bool done = false;
    while (!done) {
        int frames = 0;
        uint32_t before = n->q[0].xfer.next;
        done = netvsc_rx_xfer(n, &n->q[0], frame, n, budget, &frames);
        CHECK(frames <= budget);
        CHECK(done || (frames == budget && n->q[0].xfer.next > before));
        CHECK(++polls <= nr + 1);
    }
    CHECK(n->q[0].xfer.nr == 0);
    if (outside)
        CHECK(n->q[0].xfer.status == NVSP_STAT_INVALID_RNDIS_PKT && n->stats.rx_bad > 0);
    CHECK(n->stats.rx_frames <= nr);

    /* The same bytes as the root's send table, on 1 to 8 open channels. */
    n->nchan = 1 + nr % 8;
    n->stats.send_tables = n->stats.send_table_bad = 0;
    netvsc_on_send_table(n, whole, (uint32_t)whole_size);
    CHECK(n->stats.send_tables + n->stats.send_table_bad == 1);
    CHECK(n->send_tab_set == (n->stats.send_tables == 1));
    for (uint32_t i = 0; n->send_tab_set && i < NETVSC_SEND_TAB; i++)
        CHECK(n->send_tab[i] < n->nchan);
    free(rbuf);
    return 0;
}
