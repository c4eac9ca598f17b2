/* The progress line, the summary, JSON and CSV. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "pktgen-private.h"

static const char *const role_names[] = {"gen", "sink", "reflect", "agent"};

static double rate(uint64_t n, double s)
{
    return s > 0 ? (double)n / s : 0;
}

/* Gbit/s of frame bytes, and with PKTGEN_WIRE_OVERHEAD per frame. */
static double gbps(uint64_t bytes, uint64_t frames, double s, bool line)
{
    return rate(bytes + (line ? frames * PKTGEN_WIRE_OVERHEAD : 0), s) * 8 / 1e9;
}

void pg_progress(const struct pg_opts *o, const struct pg_result *r, double elapsed, double dt,
                 uint64_t dtx, uint64_t drx)
{
    uint64_t done = o->role == PG_SINK ? r->rx_frames : r->tx_frames;
    char left[48] = "";
    if (o->duration_s > 0)
        snprintf(left, sizeof(left), ", %.0f s left",
                 o->duration_s > elapsed ? o->duration_s - elapsed : 0);
    else if (o->count)
        snprintf(left, sizeof(left), ", %llu frames left",
                 (unsigned long long)(o->count > done ? o->count - done : 0));
    char sent[48] = "";
    if (o->role != PG_SINK)
        snprintf(sent, sizeof(sent), "%s %.3f Mpps, ",
                 o->role == PG_REFLECT ? "sent back" : "offered", rate(dtx, dt) / 1e6);
    /* A sink can tell only its gaps lost, out of what it saw or missed. */
    uint64_t expected = o->role == PG_SINK ? r->rx_frames + r->lost : r->tx_frames;
    fprintf(stderr, "pktgen: %5.1f s %sreceived %.3f Mpps, lost %llu (%.3f %%)%s\n", elapsed,
            sent, rate(drx, dt) / 1e6, (unsigned long long)r->lost,
            expected ? 100.0 * (double)r->lost / (double)expected : 0, left);
}

static uint64_t other_total(const struct pg_result *r)
{
    uint64_t n = 0;
    for (int i = 1; i < PKTGEN_PARSE_N_RESULTS; i++)
        n += r->rx_other[i];
    return n;
}

static json_t *to_json(const struct pg_opts *o, const struct pg_result *r)
{
    const struct pktgen_hist *h = &r->lat;
    json_t *lat = json_pack(
        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "count", (json_int_t)h->count, "min",
        (json_int_t)(h->count ? h->min : 0), "p50", (json_int_t)pktgen_hist_percentile(h, 50),
        "p90", (json_int_t)pktgen_hist_percentile(h, 90), "p99",
        (json_int_t)pktgen_hist_percentile(h, 99), "p99_9",
        (json_int_t)pktgen_hist_percentile(h, 99.9), "max", (json_int_t)h->max);
    json_t *other = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "short",
                              (json_int_t)r->rx_other[PKTGEN_PARSE_SHORT], "not_ipv4",
                              (json_int_t)r->rx_other[PKTGEN_PARSE_NOT_IPV4], "bad_ip",
                              (json_int_t)r->rx_other[PKTGEN_PARSE_BAD_IP], "not_udp",
                              (json_int_t)r->rx_other[PKTGEN_PARSE_NOT_UDP], "bad_udp",
                              (json_int_t)r->rx_other[PKTGEN_PARSE_BAD_UDP], "bad_magic",
                              (json_int_t)r->rx_other[PKTGEN_PARSE_MAGIC]);
    json_t *j = json_pack(
        "{s:s, s:s, s:i, s:f, s:I, s:I, s:f, s:f, s:f, s:I, s:I, s:f, s:f, s:f, s:I, s:f,"
        " s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:o, s:o, s:s}",
        "role", role_names[o->role], "frame", o->imix ? "imix" : "fixed", "frame_bytes",
        o->imix ? 0 : (int)o->frame_len, "seconds", r->seconds, "tx_frames",
        (json_int_t)r->tx_frames, "tx_bytes", (json_int_t)r->tx_bytes, "tx_pps",
        rate(r->tx_frames, r->seconds), "tx_gbps", gbps(r->tx_bytes, r->tx_frames, r->seconds, false),
        "tx_line_gbps", gbps(r->tx_bytes, r->tx_frames, r->seconds, true), "tx_refused",
        (json_int_t)r->tx_refused, "rx_frames", (json_int_t)r->rx_frames, "rx_pps",
        rate(r->rx_frames, r->seconds), "rx_gbps", gbps(r->rx_bytes, r->rx_frames, r->seconds, false),
        "rx_line_gbps", gbps(r->rx_bytes, r->rx_frames, r->seconds, true), "lost",
        (json_int_t)r->lost, "loss_pct",
        r->tx_frames ? 100.0 * (double)r->lost / (double)r->tx_frames : 0.0, "reordered",
        (json_int_t)r->reordered, "duplicates", (json_int_t)r->duplicates, "late",
        (json_int_t)r->late, "bad_seq", (json_int_t)r->bad_seq, "bad_time", (json_int_t)r->bad_time, "rx_not_ours",
        (json_int_t)other_total(r), "stalled_seconds", r->stalled_s, "rx_not_ours_by_reason", other, "latency_ns", lat,
        "line_rate", "frame bytes (no FCS) + 20 B preamble/SFD/IFG per frame");
    return j;
}

int pg_report(const struct pg_opts *o, const struct pg_result *r)
{
    const struct pktgen_hist *h = &r->lat;
    printf("%s: %.3f s, sent %llu (%.3f Mpps, %.3f Gbit/s line), received %llu (%.3f Mpps), "
           "lost %llu, reordered %llu, duplicates %llu, not ours %llu\n",
           role_names[o->role], r->seconds, (unsigned long long)r->tx_frames,
           rate(r->tx_frames, r->seconds) / 1e6, gbps(r->tx_bytes, r->tx_frames, r->seconds, true),
           (unsigned long long)r->rx_frames, rate(r->rx_frames, r->seconds) / 1e6,
           (unsigned long long)r->lost, (unsigned long long)r->reordered,
           (unsigned long long)r->duplicates, (unsigned long long)other_total(r));
    if (h->count)
        printf("latency ns: p50 %llu, p90 %llu, p99 %llu, p99.9 %llu, max %llu (%llu samples)\n",
               (unsigned long long)pktgen_hist_percentile(h, 50),
               (unsigned long long)pktgen_hist_percentile(h, 90),
               (unsigned long long)pktgen_hist_percentile(h, 99),
               (unsigned long long)pktgen_hist_percentile(h, 99.9), (unsigned long long)h->max,
               (unsigned long long)h->count);
    fflush(stdout);
    int rc = 0;
    if (o->json_path) {
        json_t *j = to_json(o, r);
        if (!j || json_dump_file(j, o->json_path, JSON_INDENT(2)) < 0) {
            fprintf(stderr, "pktgen: cannot write %s\n", o->json_path);
            rc = -EIO;
        }
        json_decref(j);
    }
    if (o->csv_path) {
        FILE *f = fopen(o->csv_path, "w");
        if (!f) {
            fprintf(stderr, "pktgen: %s: %s\n", o->csv_path, strerror(errno));
            return -errno;
        }
        fprintf(f, "role,frame,seconds,tx_frames,tx_pps,tx_gbps,tx_line_gbps,rx_frames,rx_pps,"
                   "rx_gbps,rx_line_gbps,lost,reordered,duplicates,late,rx_not_ours,"
                   "lat_p50_ns,lat_p90_ns,lat_p99_ns,lat_p99_9_ns,lat_max_ns\n");
        fprintf(f, "%s,%s,%.6f,%llu,%.1f,%.6f,%.6f,%llu,%.1f,%.6f,%.6f,%llu,%llu,%llu,%llu,%llu,"
                   "%llu,%llu,%llu,%llu,%llu\n",
                role_names[o->role], o->imix ? "imix" : "fixed", r->seconds,
                (unsigned long long)r->tx_frames, rate(r->tx_frames, r->seconds),
                gbps(r->tx_bytes, r->tx_frames, r->seconds, false),
                gbps(r->tx_bytes, r->tx_frames, r->seconds, true),
                (unsigned long long)r->rx_frames, rate(r->rx_frames, r->seconds),
                gbps(r->rx_bytes, r->rx_frames, r->seconds, false),
                gbps(r->rx_bytes, r->rx_frames, r->seconds, true), (unsigned long long)r->lost,
                (unsigned long long)r->reordered, (unsigned long long)r->duplicates,
                (unsigned long long)r->late, (unsigned long long)other_total(r),
                (unsigned long long)pktgen_hist_percentile(h, 50),
                (unsigned long long)pktgen_hist_percentile(h, 90),
                (unsigned long long)pktgen_hist_percentile(h, 99),
                (unsigned long long)pktgen_hist_percentile(h, 99.9), (unsigned long long)h->max);
        if (fclose(f) != 0)
            rc = -EIO;
    }
    return rc;
}
