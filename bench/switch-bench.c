/*
 * hv-switch-bench: frames per second through the switch, VM to VM, with no
 * kernel stack in the way: a private switch in this process (the root) and
 * two child partitions running hv-rawguest, A sending a stream of frames of
 * one size to B as fast as its NIC takes them. Each frame crosses A's
 * VMBus ring, netvsp, the switch's forwarding, netvsp again and B's ring.
 * B times the stream from its first to its last frame.
 *
 *   hv-switch-bench [--sizes 64,1514,9014] [--count N] [--runs N] [--guest PATH]
 *
 * For each size: the median of --runs runs (frames/s, Gbit/s of frame
 * bytes), with the frames lost and what the switch counted as drops in
 * that run, by port and reason, and the worker's cycles per packet and busy
 * share over the run (its counters, as worker-show prints them: busy
 * cycles over frames received, guest start-up and hello frames included).
 * A's hello frames, sent until B's NIC is up
 * and answers, are usually one no_destination drop on port a: B's port
 * was not up yet. --count is the number of frames of the largest size; smaller
 * sizes send proportionally more (capped at 20x), so each run moves a
 * similar number of bytes.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_lcore.h>

#include "hv.h"
#include "netvsp.h"
#include "vmbus-server.h"
#include "vsw-port-provider.h"
#include "vsw.h"

#define MAX_SIZES 8
#define MAX_RUNS 15

struct run {
    double fps;
    double cpp, busy_pct; /* the worker's, over the run */
    uint64_t received, lost, drops;
    char why[160]; /* the drops by reason and port, "" if none */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int hugepages_free(void)
{
    FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "r");
    int n = 0;
    if (f) {
        if (fscanf(f, "%d", &n) != 1)
            n = 0;
        fclose(f);
    }
    return n;
}

static int cmp_run(const void *a, const void *b)
{
    double x = ((const struct run *)a)->fps, y = ((const struct run *)b)->fps;
    return (x > y) - (x < y);
}

/* One run: A sends count frames of size to B. */
static int one_run(struct vsw_dp *dp, struct vsw_switch *sw, struct hv_host *host,
                   const char *guest, uint32_t size, uint64_t count, struct run *out)
{
    static unsigned seq;
    struct {
        const char *tag;
        uint8_t mac[6];
        char name[48], result[128], peer[24], count[24], size[16];
        struct hv_partition *p;
        struct vmbus_server *srv;
        struct netvsp *nic;
    } v[2] = {{.tag = "a", .mac = {0x02, 0, 0, 0xbe, 0, 0x0a}},
              {.tag = "b", .mac = {0x02, 0, 0, 0xbe, 0, 0x0b}}};
    int rc = 0;
    seq++;
    for (int i = 0; i < 2; i++) {
        const uint8_t *pm = v[1 - i].mac;
        snprintf(v[i].name, sizeof(v[i].name), "bench%s-%d-%u", v[i].tag, (int)getpid(), seq);
        snprintf(v[i].result, sizeof(v[i].result), "/tmp/hv-switch-bench-%d-%u-%s.txt",
                 (int)getpid(), seq, v[i].tag);
        snprintf(v[i].peer, sizeof(v[i].peer), "%02x:%02x:%02x:%02x:%02x:%02x", pm[0], pm[1],
                 pm[2], pm[3], pm[4], pm[5]);
        snprintf(v[i].count, sizeof(v[i].count), "%" PRIu64, i == 0 ? count : 0);
        snprintf(v[i].size, sizeof(v[i].size), "%u", size);
        const char *argv[] = {guest,     "--peer", v[i].peer,   "--count", v[i].count, "--size",
                              v[i].size, "--bench", "--result", v[i].result, NULL};
        struct hv_partition_params pp = {.name = v[i].name, .memory_bytes = 128ull << 20,
                                         .argv = argv};
        if ((rc = hv_partition_create(host, &pp, &v[i].p)) < 0 ||
            (rc = vmbus_server_create(v[i].p, &v[i].srv)) < 0)
            return rc;
        char port[32];
        snprintf(port, sizeof(port), "%s/eth0", v[i].tag);
        struct netvsp_params np = {.port_name = port, .nic_name = "eth0", .mtu = 9000,
                                   .pool = vsw_dp_mempool(dp)};
        memcpy(np.mac, v[i].mac, 6);
        np.instance.b[0] = (uint8_t)i;
        if ((rc = netvsp_create(v[i].srv, &np, &v[i].nic)) < 0 ||
            (rc = vsw_port_attach(sw, netvsp_port(v[i].nic))) < 0)
            return rc;
    }
    struct vsw_worker_stats w0, w1;
    vsw_dp_worker_stats(dp, &w0, 1);
    for (int i = 0; i < 2; i++)
        if ((rc = hv_partition_start(v[i].p)) < 0)
            return rc;
    double t0 = now_s();
    while (hv_partition_state(v[0].p) == HV_PARTITION_RUNNING ||
           hv_partition_state(v[1].p) == HV_PARTITION_RUNNING) {
        if (now_s() - t0 > 300) {
            fprintf(stderr, "hv-switch-bench: guests did not finish in 300 s\n");
            return -ETIMEDOUT;
        }
        hv_host_run(host, 20);
        vsw_dp_process(dp);
    }
    vsw_dp_worker_stats(dp, &w1, 1);
    vsw_worker_stats_sub(&w1, &w0);
    out->cpp = vsw_worker_cycles_per_packet(&w1);
    out->busy_pct = vsw_worker_busy_pct(&w1);
    uint64_t sent, fins, rx, fins_rx, lost, bad, rx_ns = 0;
    unsigned m[6], mtu;
    FILE *f = fopen(v[1].result, "r");
    int n = f ? fscanf(f,
                       "sent %" SCNu64 " fins %" SCNu64 " received %" SCNu64 " fins_rx %" SCNu64
                       " lost %" SCNu64 " bad %" SCNu64 " mac %x:%x:%x:%x:%x:%x mtu %u rx_ns %" SCNu64,
                       &sent, &fins, &rx, &fins_rx, &lost, &bad, &m[0], &m[1], &m[2], &m[3], &m[4],
                       &m[5], &mtu, &rx_ns)
              : 0;
    if (f)
        fclose(f);
    unlink(v[0].result);
    unlink(v[1].result);
    out->drops = 0;
    out->why[0] = '\0';
    for (int i = 0; i < 2; i++) {
        struct vsw_port_stats ps;
        vsw_port_get_stats(netvsp_port(v[i].nic), &ps);
        for (int d = 0; d < VSW_DROP_COUNT; d++) {
            out->drops += ps.drops[d];
            size_t used = strlen(out->why);
            if (ps.drops[d] && used < sizeof(out->why))
                snprintf(out->why + used, sizeof(out->why) - used, " %s:%s=%" PRIu64, v[i].tag,
                         vsw_drop_name((enum vsw_drop)d), ps.drops[d]);
        }
        vsw_port_destroy(netvsp_port(v[i].nic));
        vmbus_server_destroy(v[i].srv);
        hv_partition_destroy(v[i].p);
    }
    if (n != 14 || bad) {
        fprintf(stderr, "hv-switch-bench: B's result is missing or shows %" PRIu64
                        " corrupted frames\n",
                bad);
        return -EPROTO;
    }
    out->received = rx;
    out->lost = lost;
    out->fps = rx > 1 && rx_ns ? (double)(rx - 1) * 1e9 / (double)rx_ns : 0;
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    uint32_t sizes[MAX_SIZES] = {64, 1514, 9014};
    int nsizes = 3, runs = 3;
    uint64_t count = 200000;
    char guest[PATH_MAX];
    char self[PATH_MAX];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[sl > 0 ? sl : 0] = '\0';
    snprintf(guest, sizeof(guest), "%s/hv-rawguest", dirname(self));
    static const struct option opts[] = {
        {"sizes", required_argument, NULL, 's'}, {"count", required_argument, NULL, 'c'},
        {"runs", required_argument, NULL, 'r'},  {"guest", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 's': {
            nsizes = 0;
            char *save = NULL, *list = strdup(optarg);
            for (char *t = strtok_r(list, ",", &save); t && nsizes < MAX_SIZES;
                 t = strtok_r(NULL, ",", &save)) {
                unsigned long v = strtoul(t, NULL, 10);
                if (v < 64 || v > 9014) {
                    fprintf(stderr, "hv-switch-bench: sizes are 64..9014\n");
                    return 2;
                }
                sizes[nsizes++] = (uint32_t)v;
            }
            free(list);
            break;
        }
        case 'c':
            count = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            runs = atoi(optarg);
            break;
        case 'g':
            snprintf(guest, sizeof(guest), "%s", optarg);
            break;
        case 'h':
            printf("usage: hv-switch-bench [--sizes 64,1514,9014] [--count N] [--runs N] "
                   "[--guest PATH]\n");
            return 0;
        default:
            return 2;
        }
    }
    if (nsizes == 0 || runs < 1 || runs > MAX_RUNS || count < 1000) {
        fprintf(stderr, "hv-switch-bench: need sizes, 1..%d runs, --count >= 1000\n", MAX_RUNS);
        return 2;
    }
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "--file-prefix=hvbench%d", (int)getpid());
    char *eal[16] = {argv[0],       "-l",          "0,1",           prefix,
                     "--no-pci",    "--no-shconf", "--no-telemetry", "--log-level=*:warning"};
    int ne = 8;
    if (hugepages_free() >= 512) {
        eal[ne++] = "-m";
        eal[ne++] = "512";
        eal[ne++] = "--huge-unlink";
    } else {
        eal[ne++] = "--no-huge";
        eal[ne++] = "-m";
        eal[ne++] = "768";
    }
    if (rte_eal_init(ne, eal) < 0) {
        fprintf(stderr, "hv-switch-bench: DPDK did not start\n");
        return 1;
    }
    /* EAL leaves an empty runtime directory behind (--no-shconf). */
    rmdir(rte_eal_get_runtime_dir());
    struct vsw_dp *dp;
    struct vsw_switch *sw;
    struct hv_host *host;
    struct vsw_switch_params sp = {.name = "bench", .kind = VSW_SWITCH_PRIVATE, .mtu = 9000};
    if (vsw_dp_create(NULL, &dp) < 0 || vsw_switch_create(dp, &sp, &sw) < 0 ||
        hv_host_create(&host) < 0) {
        fprintf(stderr, "hv-switch-bench: cannot set up the switch\n");
        return 1;
    }
    uint32_t largest = 0;
    for (int i = 0; i < nsizes; i++)
        largest = sizes[i] > largest ? sizes[i] : largest;
    printf("# hv-switch-bench: VM -> switch -> VM, raw frames (hv-rawguest), %d run(s) each, "
           "median; 1 switch worker lcore\n",
           runs);
    printf("%8s %10s %12s %10s %10s %8s %8s %6s\n", "size", "frames", "frames/s", "Gbit/s",
           "lost", "cyc/pkt", "busy%", "drops");
    int status = 0;
    for (int i = 0; i < nsizes; i++) {
        uint64_t c = count * largest / sizes[i];
        if (c > count * 20)
            c = count * 20;
        struct run r[MAX_RUNS];
        int ok = 0;
        for (int k = 0; k < runs; k++) {
            int rc = one_run(dp, sw, host, guest, sizes[i], c, &r[ok]);
            if (rc < 0) {
                fprintf(stderr, "hv-switch-bench: size %u: %s\n", sizes[i], strerror(-rc));
                status = 1;
                continue;
            }
            ok++;
        }
        if (!ok)
            continue;
        qsort(r, (size_t)ok, sizeof(r[0]), cmp_run);
        const struct run *med = &r[ok / 2];
        printf("%8u %10" PRIu64 " %12.0f %10.2f %10" PRIu64 " %8.0f %8.1f %6" PRIu64 "%s\n",
               sizes[i], med->received, med->fps, med->fps * sizes[i] * 8 / 1e9, med->lost,
               med->cpp, med->busy_pct, med->drops, med->why);
    }
    hv_host_destroy(host);
    vsw_switch_destroy(sw);
    vsw_dp_destroy(dp);
    rte_eal_cleanup();
    return status;
}
