/*
 * hv-testguest: a guest program for process partitions. It attaches to the
 * descriptors its partition was given, connects to VMBus, opens the traffic
 * test channel and exchanges a checked packet stream with the root.
 * Exit status 0 only if every packet it received checked out.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hv-guest.h"
#include "traffic.h"
#include "vmbus-client.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hv-testguest [--count N | --tx N --rx N] [--size BYTES] [--events]\n"
            "                    [--ring-pages N] [--scattered] [--hold]\n"
            "Runs inside a process partition (needs HV_PARTITION_FDS).\n"
            "  --count N       packets each way (default 1000)\n"
            "  --size BYTES    payload size, 16..9000 (default: mixed sizes)\n"
            "  --events        sleep on signals when idle instead of polling\n"
            "  --ring-pages N  pages per ring, header included (default 128)\n"
            "  --scattered     place ring pages non-contiguously\n"
            "  --hold          after the traffic, wait to be stopped\n"
            "  --quiet         print only failures\n");
}

static int guest_signal(void *ctx)
{
    return vmbus_gchan_signal(ctx);
}

static void guest_ack(void *ctx)
{
    vmbus_gchan_event(ctx);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct traffic_cfg cfg = {.tx_count = 1000, .rx_count = 1000, .wait_peer_fin = true};
    uint64_t ring_pages = 128;
    bool scattered = false, hold = false, quiet = false;
    static const struct option opts[] = {
        {"count", required_argument, NULL, 'c'}, {"tx", required_argument, NULL, 't'},
        {"rx", required_argument, NULL, 'r'},    {"size", required_argument, NULL, 's'},
        {"events", no_argument, NULL, 'e'},      {"ring-pages", required_argument, NULL, 'p'},
        {"scattered", no_argument, NULL, 'S'},   {"hold", no_argument, NULL, 'H'},
        {"quiet", no_argument, NULL, 'q'},       {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    uint64_t v;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
        case 't':
        case 'r':
            if (parse_u64(optarg, UINT64_MAX / 2, &v) < 0) {
                fprintf(stderr, "hv-testguest: bad packet count '%s'\n", optarg);
                return 2;
            }
            if (o != 'r')
                cfg.tx_count = v;
            if (o != 't')
                cfg.rx_count = v;
            break;
        case 's':
            if (parse_u64(optarg, TRAFFIC_MAX_PAYLOAD, &v) < 0 || v < TRAFFIC_MIN_PAYLOAD) {
                fprintf(stderr, "hv-testguest: --size must be %u..%u\n", TRAFFIC_MIN_PAYLOAD,
                        TRAFFIC_MAX_PAYLOAD);
                return 2;
            }
            cfg.size = (uint32_t)v;
            break;
        case 'e':
            cfg.events = true;
            break;
        case 'p':
            if (parse_u64(optarg, 65536, &ring_pages) < 0 || ring_pages < 4) {
                fprintf(stderr, "hv-testguest: --ring-pages must be 4..65536\n");
                return 2;
            }
            break;
        case 'S':
            scattered = true;
            break;
        case 'H':
            hold = true;
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }

    const char *name = getenv(HV_ENV_NAME) ? getenv(HV_ENV_NAME) : "?";
    struct hv_guest *g;
    int rc = hv_guest_attach_env(&g);
    if (rc < 0) {
        fprintf(stderr, "hv-testguest: not inside a partition (%s)\n", strerror(-rc));
        return 2;
    }
    struct vmbus_client *c;
    rc = vmbus_client_connect(g, 10000, &c);
    if (rc < 0) {
        fprintf(stderr, "guest %s: VMBus connect failed: %s\n", name, strerror(-rc));
        return 1;
    }
    struct vmbus_guid cls = TRAFFIC_CLASS_GUID;
    struct vmbus_offer_info oi;
    rc = vmbus_client_find(c, &cls, 0, &oi);
    if (rc < 0) {
        fprintf(stderr, "guest %s: no traffic channel offered\n", name);
        return 1;
    }
    struct vmbus_gchan_params gp = {
        .tx_pages = (uint32_t)ring_pages,
        .rx_pages = (uint32_t)ring_pages,
        .scattered = scattered,
    };
    struct vmbus_gchan *ch;
    rc = vmbus_client_open(c, oi.relid, &gp, &ch);
    if (rc < 0) {
        fprintf(stderr, "guest %s: open channel %u failed: %s\n", name, oi.relid, strerror(-rc));
        return 1;
    }
    uint32_t ver = vmbus_client_version(c);
    if (!quiet)
        printf("guest %s: VMBus %u.%u, channel %u open (%s rings of %" PRIu64 " pages)\n", name,
           ver >> 16, ver & 0xffff, oi.relid, scattered ? "scattered" : "contiguous", ring_pages);
    fflush(stdout);

    struct traffic_ep ep = {
        .tx = vmbus_gchan_tx(ch),
        .rx = vmbus_gchan_rx(ch),
        .signal = guest_signal,
        .signal_ctx = ch,
        .wait_fd = hv_guest_sint_fd(g),
        .ack = guest_ack,
        .ack_ctx = ch,
    };
    struct traffic_stats st;
    traffic_run(&ep, &cfg, &st);
    double secs = (double)st.elapsed_ns / 1e9;
    bool ok = traffic_ok(&st, &cfg);
    if (!quiet || !ok)
        printf("guest %s: sent %" PRIu64 " packets (%" PRIu64 " bytes), received %" PRIu64
           " packets (%" PRIu64 " bytes) in %.2f s; bad len/seq/csum %" PRIu64 "/%" PRIu64
           "/%" PRIu64 "; %s\n",
           name, st.tx_packets, st.tx_bytes, st.rx_packets, st.rx_bytes, secs, st.rx_bad_len,
           st.rx_bad_seq, st.rx_bad_csum, traffic_ok(&st, &cfg) ? "OK" : "FAILED");
    fflush(stdout);
    if (hold) {
        for (;;)
            pause();
    }
    vmbus_client_close(ch);
    vmbus_client_destroy(c);
    hv_guest_detach(g);
    return ok ? 0 : 1;
}
