/* Sequence accounting and the latency histogram. */
#include <string.h>

#include "pktgen.h"

void pktgen_seq_init(struct pktgen_seq *s)
{
    memset(s, 0, sizeof(*s));
}

static bool seq_test_set(struct pktgen_seq *s, uint64_t seq)
{
    uint64_t *w = &s->bits[(seq / 64) % (PKTGEN_SEQ_WINDOW / 64)];
    uint64_t bit = 1ull << (seq % 64);
    bool was = (*w & bit) != 0;
    *w |= bit;
    return was;
}

static void seq_clear(struct pktgen_seq *s, uint64_t seq)
{
    s->bits[(seq / 64) % (PKTGEN_SEQ_WINDOW / 64)] &= ~(1ull << (seq % 64));
}

/* The bitmap holds sequence numbers [top - WINDOW, top), bit seq % WINDOW.
 * A jump forward clears the bits of the numbers it skips (they are now
 * missing) before they can be mistaken for ones seen a window ago. */
void pktgen_seq_record(struct pktgen_seq *s, uint64_t seq)
{
    if (seq >= PKTGEN_SEQ_MAX) {
        s->bad++;
        return;
    }
    if (seq >= s->top) {
        uint64_t gap = seq - s->top;
        if (gap >= PKTGEN_SEQ_WINDOW)
            memset(s->bits, 0, sizeof(s->bits));
        else
            for (uint64_t q = s->top; q <= seq; q++)
                seq_clear(s, q);
        seq_test_set(s, seq);
        s->missing += gap;
        s->top = seq + 1;
        s->received++;
        return;
    }
    if (s->top - seq > PKTGEN_SEQ_WINDOW) {
        s->late++;
        return;
    }
    if (seq_test_set(s, seq)) {
        s->duplicates++;
        return;
    }
    s->reordered++;
    s->missing--;
    s->received++;
}

void pktgen_hist_init(struct pktgen_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

static unsigned hist_index(uint64_t v)
{
    if (v < 64)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    uint64_t mant = v >> (e - 5);
    return 64u + (e - 6) * PKTGEN_HIST_SUB + (unsigned)(mant - 32);
}

static uint64_t hist_high(unsigned idx)
{
    if (idx < 64)
        return idx;
    unsigned e = (idx - 64) / PKTGEN_HIST_SUB + 6;
    uint64_t mant = (idx - 64) % PKTGEN_HIST_SUB + 32;
    /* For the last bucket (mant + 1) << shift wraps to 0: high is then
     * UINT64_MAX, as it should be. */
    return ((mant + 1) << (e - 5)) - 1;
}

void pktgen_hist_record(struct pktgen_hist *h, uint64_t v)
{
    h->buckets[hist_index(v)]++;
    h->count++;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void pktgen_hist_merge(struct pktgen_hist *to, const struct pktgen_hist *from)
{
    for (unsigned i = 0; i < PKTGEN_HIST_BUCKETS; i++)
        to->buckets[i] += from->buckets[i];
    to->count += from->count;
    if (from->min < to->min)
        to->min = from->min;
    if (from->max > to->max)
        to->max = from->max;
}

uint64_t pktgen_hist_percentile(const struct pktgen_hist *h, double p)
{
    if (h->count == 0 || !(p > 0))
        return 0;
    if (p >= 100)
        return h->max;
    /* The smallest value with at least p % of the samples at or below it.
     * p is decimal (99.9) and not exact in binary: a rank a hair above an
     * integer is that integer. */
    double want = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want - want * 1e-12)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < PKTGEN_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = hist_high(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}
