/*
 * hv-ring-bench: packets per second over one VMBus channel between the root
 * (this process) and a child partition (hv-testguest), one direction at a
 * time, for 64, 1518 and 9000-byte payloads, polling and event-driven.
 *
 * Every packet is checked on arrival (sequence and checksum), as in the
 * tests: the figures include that work on the receiving side and the
 * checksum on the sending side. Each cell is the median of --runs runs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv.h"
#include "traffic.h"
#include "vmbus-server.h"

struct result {
    double mpps;
    double gbps;
    uint64_t signals;
    uint64_t sleeps;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_one(const char *guest, uint32_t size, uint64_t count, bool events, bool to_root,
                   uint32_t ring_pages, struct result *out)
{
    char cnt[32], sz[16], pages[16], name[48];
    snprintf(cnt, sizeof(cnt), "%" PRIu64, count);
    snprintf(sz, sizeof(sz), "%u", size);
    snprintf(pages, sizeof(pages), "%u", ring_pages);
    snprintf(name, sizeof(name), "bench-%d", (int)getpid());
    const char *argv[12] = {guest,  to_root ? "--tx" : "--rx", cnt, to_root ? "--rx" : "--tx",
                            "0",    "--size", sz, "--ring-pages", pages, "--quiet"};
    int n = 10;
    if (events)
        argv[n++] = "--events";
    argv[n] = NULL;

    struct hv_host *host;
    struct hv_partition *p;
    struct vmbus_server *srv;
    struct traffic_dev *dev;
    struct traffic_cfg cfg = {
        .tx_count = to_root ? 0 : count,
        .rx_count = to_root ? count : 0,
        .size = size,
        .events = events,
    };
    struct hv_partition_params pp = {.name = name, .memory_bytes = 64ull << 20, .argv = argv};
    int rc;
    if ((rc = hv_host_create(&host)) < 0)
        return rc;
    if ((rc = hv_partition_create(host, &pp, &p)) < 0 || (rc = vmbus_server_create(p, &srv)) < 0 ||
        (rc = traffic_dev_create(srv, &cfg, &dev)) < 0 || (rc = hv_partition_start(p)) < 0) {
        hv_host_destroy(host);
        return rc;
    }
    double t0 = now_s();
    while (hv_partition_state(p) == HV_PARTITION_RUNNING && now_s() - t0 < 300)
        hv_host_run(host, 100);
    if (hv_partition_state(p) == HV_PARTITION_RUNNING)
        hv_partition_stop(p, 0);
    struct traffic_stats st;
    bool done;
    traffic_dev_result(dev, &st, &done);
    int status = hv_partition_exit_status(p);
    struct hv_partition_stats ps;
    hv_partition_get_stats(p, &ps);
    vmbus_server_destroy(srv);
    traffic_dev_destroy(dev);
    hv_host_destroy(host);
    if (!done || !traffic_ok(&st, &cfg) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -EIO;
    double secs = (double)st.elapsed_ns / 1e9;
    out->mpps = (double)count / secs / 1e6;
    out->gbps = (double)count * size * 8 / secs / 1e9;
    out->signals = st.signals_sent + ps.events_signalled;
    out->sleeps = st.sleeps;
    return 0;
}

static int cmp_mpps(const void *a, const void *b)
{
    double x = ((const struct result *)a)->mpps, y = ((const struct result *)b)->mpps;
    return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: hv-ring-bench [--runs N] [--scale F] [--ring-pages N] [--guest PATH]\n"
               "  --runs N        runs per cell, median reported (default 3)\n"
               "  --scale F       multiply packet counts (default 1.0)\n"
               "  --ring-pages N  pages per ring incl. header (default 256)\n");
}

int main(int argc, char **argv)
{
    int runs = 3;
    double scale = 1.0;
    uint32_t ring_pages = 256;
    char guest[PATH_MAX] = "";
    static const struct option opts[] = {
        {"runs", required_argument, NULL, 'r'},  {"scale", required_argument, NULL, 's'},
        {"ring-pages", required_argument, NULL, 'p'}, {"guest", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'r':
            runs = atoi(optarg);
            break;
        case 's':
            scale = atof(optarg);
            break;
        case 'p':
            ring_pages = (uint32_t)atoi(optarg);
            break;
        case 'g':
            snprintf(guest, sizeof(guest), "%s", optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (runs < 1 || runs > 15 || scale <= 0 || ring_pages < 4) {
        usage(stderr);
        return 2;
    }
    if (!guest[0]) {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n < 0)
            return 1;
        self[n] = '\0';
        snprintf(guest, sizeof(guest), "%s/hv-testguest", dirname(self));
    }

    static const struct {
        uint32_t size;
        uint64_t count;
    } cells[] = {{64, 10000000}, {1518, 4000000}, {9000, 1000000}};
    printf("# hv-ring-bench: one VMBus channel, root <-> child process, rings of %u pages, "
           "median of %d runs\n",
           ring_pages, runs);
    printf("%-11s %-6s %7s %10s %9s %9s %11s\n", "direction", "mode", "payload", "packets",
           "Mpps", "Gbit/s", "signals");
    for (int dir = 0; dir < 2; dir++) {
        for (size_t c = 0; c < sizeof(cells) / sizeof(cells[0]); c++) {
            for (int ev = 0; ev < 2; ev++) {
                struct result res[15];
                uint64_t count = (uint64_t)((double)cells[c].count * scale);
                if (count == 0)
                    count = 1;
                for (int r = 0; r < runs; r++) {
                    int rc = run_one(guest, cells[c].size, count, ev, dir == 0, ring_pages, &res[r]);
                    if (rc < 0) {
                        fprintf(stderr, "hv-ring-bench: run failed: %s\n", strerror(-rc));
                        return 1;
                    }
                }
                qsort(res, (size_t)runs, sizeof(res[0]), cmp_mpps);
                struct result *m = &res[runs / 2];
                printf("%-11s %-6s %7u %10" PRIu64 " %9.2f %9.2f %11" PRIu64 "\n",
                       dir == 0 ? "guest->root" : "root->guest", ev ? "event" : "poll",
                       cells[c].size, count, m->mpps, m->gbps, m->signals);
                fflush(stdout);
            }
        }
    }
    return 0;
}
