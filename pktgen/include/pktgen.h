/* vswitch-pktgen's core (library pktgen_core): the parts of the generator
 * that need no running port, so that unit tests and the fuzzer reach them.
 *
 * - field ranges (MAC, IPv4, UDP port) stepped once per frame;
 * - rates (pps, bit/s, % of a ceiling) and the IMIX size pattern;
 * - the frame template, the payload stamp and the received-frame parser;
 * - per-stream sequence accounting (loss, reorder, duplicates);
 * - a log-linear latency histogram (ns) and its percentiles.
 *
 * Frame sizes are L2 bytes as the port carries them (Ethernet header to the
 * end of the payload, no FCS: memif, null, pcap, af_packet and virtio carry
 * none). The line-rate figure adds 20 B (preamble, SFD, inter-frame gap) per
 * frame. None of these functions is thread-safe on the same object; the
 * program uses each object from one lcore.
 */
#ifndef PKTGEN_H
#define PKTGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rte_mbuf;

#define PKTGEN_MIN_FRAME 64u
#define PKTGEN_MAX_FRAME 9000u
/* Per-frame overhead on the wire counted in the line-rate figure. */
#define PKTGEN_WIRE_OVERHEAD 20u
#define PKTGEN_MAGIC 0x4876u /* "Hv" */
#define PKTGEN_MAX_STREAMS 16u
#define PKTGEN_IMIX_LEN 12u

/* An inclusive range [lo, hi] and the value the next frame gets. */
struct pktgen_range {
    uint64_t lo;
    uint64_t hi;
    uint64_t cur;
};

/* "A" or "A-B" with A <= B. Returns 0, or -EINVAL (bad syntax, A > B, a
 * value out of the field's range). */
int pktgen_range_parse_ipv4(const char *s, struct pktgen_range *out);
int pktgen_range_parse_port(const char *s, struct pktgen_range *out);
int pktgen_range_parse_mac(const char *s, struct pktgen_range *out);

/* The current value; the range then steps to the next one (wrapping from hi
 * to lo). */
uint64_t pktgen_range_next(struct pktgen_range *r);

enum pktgen_rate_kind {
    PKTGEN_RATE_UNLIMITED,
    PKTGEN_RATE_PPS,
    PKTGEN_RATE_BPS, /* line rate: frame + PKTGEN_WIRE_OVERHEAD bytes */
    PKTGEN_RATE_PCT, /* of a ceiling */
};

struct pktgen_rate {
    enum pktgen_rate_kind kind;
    double value; /* pps, bit/s or percent */
};

/* "1.5Mpps", "800kpps", "2Gbps", "100Mbps", "50%", or a bare number of pps;
 * k, M and G prefixes. Returns 0, or -EINVAL (syntax, not > 0, a percentage
 * over 100). */
int pktgen_rate_parse(const char *s, struct pktgen_rate *out);

/* Resolves a % rate against `ceiling` (pps or bit/s, not itself a %): the
 * result has the ceiling's kind. Returns 0, -EINVAL if a % rate has no
 * usable ceiling. Other rates are copied. */
int pktgen_rate_resolve(const struct pktgen_rate *rate, const struct pktgen_rate *ceiling,
                        struct pktgen_rate *out);

/* 7:4:1 of 64/570/1518 B, interleaved so that any 12 consecutive frames
 * hold the whole mix. */
extern const uint16_t pktgen_imix[PKTGEN_IMIX_LEN];

/* The payload stamp, right after the UDP header. 20 bytes, so that a 64 B
 * frame (14 + 20 + 8 + 20 = 62) holds it. Multi-byte fields are little
 * endian (written and read by this program only, on x86). */
struct pktgen_stamp {
    uint16_t magic;
    uint16_t stream;
    uint64_t seq;
    uint64_t tsc;
} __attribute__((packed));
_Static_assert(sizeof(struct pktgen_stamp) == 20, "stamp is 20 bytes");

#define PKTGEN_HDR_LEN 42u /* Ethernet 14 + IPv4 20 + UDP 8 */

/* What varies per frame; the rest of the header is in the template. */
struct pktgen_flow {
    struct pktgen_range src_mac, dst_mac, src_ip, dst_ip, src_port, dst_port;
};

/* Writes the 42-byte Ethernet/IPv4/UDP header for a frame of `frame_len`
 * bytes with the flow's current values (stepping each range once), and the
 * stamp after it. The IPv4 checksum is computed; the UDP checksum is 0 (no
 * checksum, valid for IPv4: computing it over up to 9 kB per frame would
 * cost more than the rest of the send path). `frame` has frame_len bytes;
 * bytes after the stamp are left as they are (the pool's fill). */
void pktgen_frame_write(uint8_t *frame, uint16_t frame_len, struct pktgen_flow *flow,
                        const struct pktgen_stamp *stamp);

/* Why a received frame is not one of ours; counted per reason. */
enum pktgen_parse_result {
    PKTGEN_PARSE_OK = 0,
    PKTGEN_PARSE_SHORT,     /* ends before a header or the stamp */
    PKTGEN_PARSE_NOT_IPV4,  /* ethertype (after up to two VLAN tags) */
    PKTGEN_PARSE_BAD_IP,    /* version, IHL, total length, fragment */
    PKTGEN_PARSE_NOT_UDP,
    PKTGEN_PARSE_BAD_UDP,   /* UDP length too short or past the IP packet */
    PKTGEN_PARSE_MAGIC,
    PKTGEN_PARSE_N_RESULTS,
};

/* Finds and copies out the stamp of a received frame, reading through
 * rte_pktmbuf_read (any segmentation; nothing read past pkt_len). Returns
 * PKTGEN_PARSE_OK with *out filled, or the reason. */
enum pktgen_parse_result pktgen_parse(const struct rte_mbuf *m, struct pktgen_stamp *out);

/* The same on a flat buffer (a single-segment view; the fuzzer's entry). */
enum pktgen_parse_result pktgen_parse_buf(const uint8_t *p, size_t len, struct pktgen_stamp *out);

/* Sequence accounting of one stream over a window of PKTGEN_SEQ_WINDOW
 * sequence numbers below the highest seen. */
#define PKTGEN_SEQ_WINDOW 4096u
/* Sequence numbers at or above this are counted bad and otherwise ignored,
 * so that top (highest + 1) never wraps. At 100 Mpps a generator reaches
 * it after 2,900 years. */
#define PKTGEN_SEQ_MAX (1ull << 63)
struct pktgen_seq {
    uint64_t top;      /* highest sequence seen + 1; 0 before the first */
    uint64_t received; /* distinct sequence numbers */
    uint64_t missing;  /* gaps below top not (yet) filled */
    uint64_t reordered;
    uint64_t duplicates;
    uint64_t late;     /* older than the window: duplicate or late, unknowable */
    uint64_t bad;      /* >= PKTGEN_SEQ_MAX: no generator gets there (forged) */
    uint64_t bits[PKTGEN_SEQ_WINDOW / 64];
};

void pktgen_seq_init(struct pktgen_seq *s);
void pktgen_seq_record(struct pktgen_seq *s, uint64_t seq);

/* Log-linear histogram of values in ns: exact below 64, then 32 sub-buckets
 * per power of two (a value is reported at most 1/32 above what it was). */
#define PKTGEN_HIST_SUB 32u
#define PKTGEN_HIST_BUCKETS (64u + 58u * PKTGEN_HIST_SUB)
struct pktgen_hist {
    uint64_t count;
    uint64_t min;
    uint64_t max;
    uint64_t buckets[PKTGEN_HIST_BUCKETS];
};

void pktgen_hist_init(struct pktgen_hist *h);
void pktgen_hist_record(struct pktgen_hist *h, uint64_t v);
/* Adds `from` into `to`. */
void pktgen_hist_merge(struct pktgen_hist *to, const struct pktgen_hist *from);
/* The value at percentile p (0 < p <= 100): the highest value of the bucket
 * holding that rank, never above max; 0 if the histogram is empty. */
uint64_t pktgen_hist_percentile(const struct pktgen_hist *h, double p);

#endif
