/*
 * libFuzzer harness for vswitch-pktgen's received-frame parser (pktgen.h),
 * which runs on whatever the port delivers: a switch's, a peer's or a
 * stranger's frames.
 *
 * Input: byte 0 chooses how the frame is cut into mbuf segments (up to 4
 * segments of 1..64 bytes, the last taking the rest); the remaining bytes are
 * the frame. The frame is parsed flat (an exact-size copy: a read past it is
 * an ASan report) and as an mbuf chain whose every segment is its own
 * exact-size allocation.
 *
 * Checked besides sanitizers: both views give the same result and the same
 * stamp; an accepted stamp carries the magic; the stamp then goes through the
 * sequence accounting and the histogram as the receiver's would.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_mbuf.h>

#include "pktgen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_pktgen_rx: check failed: %s\n", #cond);                          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_SEGS 4

static struct pktgen_seq seq;
static struct pktgen_hist hist;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 + 16384)
        return 0;
    unsigned cuts = data[0] % MAX_SEGS;
    size_t step = 1 + (data[0] >> 2);
    const uint8_t *frame = data + 1;
    size_t len = size - 1;

    uint8_t *flat = malloc(len ? len : 1);
    memcpy(flat, frame, len);
    struct pktgen_stamp a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    enum pktgen_parse_result ra = pktgen_parse_buf(flat, len, &a);

    struct rte_mbuf segs[MAX_SEGS];
    uint8_t *bufs[MAX_SEGS] = {NULL};
    memset(segs, 0, sizeof(segs));
    size_t off = 0;
    unsigned n = 0;
    for (; n <= cuts; n++) {
        size_t seg_len = n < cuts ? step : len - off;
        if (seg_len > len - off)
            seg_len = len - off;
        bufs[n] = malloc(seg_len ? seg_len : 1);
        memcpy(bufs[n], frame + off, seg_len);
        segs[n].buf_addr = bufs[n];
        segs[n].buf_len = (uint16_t)seg_len;
        segs[n].data_len = (uint16_t)seg_len;
        if (n)
            segs[n - 1].next = &segs[n];
        off += seg_len;
    }
    segs[0].nb_segs = (uint16_t)n;
    segs[0].pkt_len = (uint32_t)len;
    enum pktgen_parse_result rb = pktgen_parse(&segs[0], &b);

    CHECK(ra == rb);
    if (ra == PKTGEN_PARSE_OK) {
        CHECK(memcmp(&a, &b, sizeof(a)) == 0);
        CHECK(a.magic == PKTGEN_MAGIC);
        if (seq.top == 0 && seq.received == 0)
            pktgen_seq_init(&seq);
        if (hist.count == 0)
            pktgen_hist_init(&hist);
        pktgen_seq_record(&seq, a.seq);
        pktgen_hist_record(&hist, a.tsc);
        CHECK(pktgen_hist_percentile(&hist, 99.9) <= hist.max);
        CHECK(seq.received <= seq.top);
    }
    for (unsigned i = 0; i < n; i++)
        free(bufs[i]);
    free(flat);
    return 0;
}
