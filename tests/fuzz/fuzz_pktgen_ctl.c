/*
 * libFuzzer harness for vswitch-pktgen's control parser (pktgen-ctl.h),
 * which an agent runs on every control frame its port delivers (from the
 * controller, a stranger, or a switch that mangled it) and a controller on
 * every reply.
 *
 * Input: the frame, parsed flat from an exact-size copy (a read past it is
 * an ASan report) and as a two-segment mbuf cut at byte 0's value.
 *
 * Checked besides sanitizers: both views agree; an accepted message passes
 * pktgen_ctl_check, and writing it again and parsing that gives the same
 * message (the parser accepts only what the writer can produce).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_mbuf.h>

#include "pktgen-ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_pktgen_ctl: check failed: %s\n", #cond);                         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 + 1024)
        return 0;
    size_t cut = data[0];
    const uint8_t *frame = data + 1;
    size_t len = size - 1;
    if (cut > len)
        cut = len;

    uint8_t *flat = malloc(len ? len : 1);
    memcpy(flat, frame, len);
    struct pktgen_ctl_msg a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    uint8_t src_a[6], src_b[6];
    enum pktgen_ctl_result ra = pktgen_ctl_parse_buf(flat, len, &a, src_a);

    uint8_t *s0 = malloc(cut ? cut : 1), *s1 = malloc(len - cut ? len - cut : 1);
    memcpy(s0, frame, cut);
    memcpy(s1, frame + cut, len - cut);
    struct rte_mbuf segs[2];
    memset(segs, 0, sizeof(segs));
    segs[0].buf_addr = s0;
    segs[0].buf_len = segs[0].data_len = (uint16_t)cut;
    segs[1].buf_addr = s1;
    segs[1].buf_len = segs[1].data_len = (uint16_t)(len - cut);
    segs[0].next = &segs[1];
    segs[0].nb_segs = 2;
    segs[0].pkt_len = (uint32_t)len;
    enum pktgen_ctl_result rb = pktgen_ctl_parse(&segs[0], &b, src_b);
    bool is_ctl = pktgen_ctl_is_ctl(&segs[0]);

    CHECK(ra == rb);
    CHECK(is_ctl == (ra != PKTGEN_CTL_NOT_CTL));
    if (ra == PKTGEN_CTL_OK) {
        CHECK(memcmp(&a, &b, sizeof(a)) == 0);
        CHECK(memcmp(src_a, src_b, 6) == 0);
        CHECK(pktgen_ctl_check(&a) == 0);
        uint8_t again[PKTGEN_CTL_FRAME_LEN];
        static const uint8_t dst[6] = {2, 0, 0, 0, 0, 1};
        pktgen_ctl_write(again, dst, src_a, &a);
        struct pktgen_ctl_msg c;
        memset(&c, 0, sizeof(c));
        CHECK(pktgen_ctl_parse_buf(again, sizeof(again), &c, NULL) == PKTGEN_CTL_OK);
        CHECK(memcmp(&a, &c, sizeof(a)) == 0);
    }
    free(s0);
    free(s1);
    free(flat);
    return 0;
}
