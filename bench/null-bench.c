/*
 * hv-null-bench: the switching core alone, in cycles per packet, the figure
 * OVS-DPDK's `dpif-netdev/pmd-stats-show` calls "avg processing cycles per
 * packet" (docs/control-protocol.md, worker-show).
 *
 *   hv-null-bench [--seconds S] [--runs N] [--size BYTES] [--json]
 *
 * One switch, one worker lcore (CPU 1; the control thread on CPU 0), two
 * uplink ports on DPDK's null PMD, attached through vsw_uplink_port_create()
 * as any uplink is, so every frame takes the path an uplink's frames take:
 * the uplink's rx_burst, vsw_forward() with MAC learning on (the source
 * is looked up, learned once, then refreshed), a destination lookup that
 * finds port B, staging, and B's tx_burst, which frees the frames. Port A
 * (`net_null0,size=BYTES`) receives as fast as it is polled; port B
 * (`net_null1,no-rx=1`) only sends. B's MAC is a static FDB entry, as the
 * reference OVS run pre-learns it with `ovs-appctl fdb/add`: the lookup is
 * the same hash and slot as for a learned entry, and a static entry cannot
 * age or move while the run lasts.
 *
 * The frames. DPDK 22.11's net_null allocates mbufs from the queue's pool
 * and sets their lengths, but writes nothing into them (its `copy=1` mode
 * copies a zeroed dummy packet in, at the cost of a memcpy per frame that is
 * the PMD's, not the switch's). A frame of zeros has a zero source MAC,
 * which the switch drops as bad_src_mac before any switching. So the pool
 * is made here and every mbuf in it is written once, before the ports
 * start, with a frame from A's MAC to B's (IPv4/UDP, checksums right):
 * whatever mbuf net_null hands out carries that frame, and nothing on the
 * path writes to frames (untagged ports, no offloads), so it stays so. No
 * generator core and no copy per frame: the worker's cycles are the PMD's
 * allocation and free and the switch's work, which is what OVS's 95 cycles
 * on null ports also contain.
 *
 * Each run clears the worker's counters (vsw_dp_stats_clear(), what
 * `worker-show --clear` does), lets the worker run S seconds, and reads
 * them back (vsw_dp_worker_stats_since_clear()): Mpps is frames received
 * per wall-clock second, cycles per packet is the worker's busy cycles over
 * the frames its ports received, the numbers worker-show prints. Those are
 * TSC cycles of wall time, as OVS's are, so they include whatever time the
 * worker thread spent preempted by other processes on its CPU; "on-CPU"
 * cycles per packet counts only the time the thread ran (its /proc
 * schedstat, at the TSC's rate), with the share of the run's wall time that
 * was. On a loaded machine compare the on-CPU figures; at 100 % they equal
 * the others. A run in
 * which B did not send every frame A received that the switch did not drop,
 * or in which anything was dropped, is reported as such. Output: one line
 * per run, then the median and the spread (min..max); with --json one JSON
 * object instead. The machine's other load shows in the spread: run it on
 * an otherwise idle machine, and interleave it with the peer
 * (bench/null-peers.sh runs OVS-DPDK beside it).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_udp.h>

#include "vsw-uplink.h"
#include "vsw.h"

#define MAX_RUNS 31
#define POOL_MBUFS 8191

struct run {
    double mpps;
    double cpp;      /* busy cycles per received frame */
    double busy_pct; /* of all the worker's cycles */
    double cpu_cpp;  /* TSC cycles the worker thread was on its CPU, per frame */
    double cpu_pct;  /* of the run's wall time the worker thread was on its CPU */
    uint64_t rx, tx; /* the worker's frames received and sent */
    uint64_t drops;  /* on either port */
    bool lost;       /* B sent fewer frames than A's counted in */
};

static const struct rte_ether_addr mac_a = {{0x02, 0x00, 0x00, 0x00, 0x0a, 0x01}};
static const struct rte_ether_addr mac_b = {{0x02, 0x00, 0x00, 0x00, 0x0b, 0x01}};

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

/* rte_mempool_obj_iter callback: the frame A sends, in the data room where
 * net_null's allocation leaves data_off (rte_pktmbuf_reset). */
static void fill_frame(struct rte_mempool *mp, void *arg, void *obj, unsigned idx)
{
    (void)mp;
    (void)idx;
    const uint16_t size = *(const uint16_t *)arg;
    struct rte_mbuf *m = obj;
    uint8_t *p = (uint8_t *)m->buf_addr + RTE_PKTMBUF_HEADROOM;
    memset(p, 0, size);
    struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p;
    rte_ether_addr_copy(&mac_b, &eth->dst_addr);
    rte_ether_addr_copy(&mac_a, &eth->src_addr);
    eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
    struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
    uint16_t ip_len = (uint16_t)(size - sizeof(*eth));
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->total_length = rte_cpu_to_be_16(ip_len);
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_UDP;
    ip->src_addr = rte_cpu_to_be_32(0x0a400001);
    ip->dst_addr = rte_cpu_to_be_32(0x0a400002);
    ip->hdr_checksum = rte_ipv4_cksum(ip);
    struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
    udp->src_port = rte_cpu_to_be_16(1024);
    udp->dst_port = rte_cpu_to_be_16(9);
    udp->dgram_len = rte_cpu_to_be_16((uint16_t)(ip_len - sizeof(*ip)));
    udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
}

/*
 * The worker thread's time on a CPU so far, in ns (the first field of its
 * /proc schedstat), or -1. The switch's cycles per packet count TSC cycles
 * of busy rounds, as OVS's do: time the thread spent preempted by another
 * process on its CPU counts too. On a shared machine that inflates both
 * switches' figures; the TSC cycles the thread actually ran, per frame,
 * do not have that part.
 */
static char worker_stat[64];

static void find_worker_thread(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        char path[64], comm[32] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%.16s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (!fgets(comm, sizeof(comm), f))
            comm[0] = 0;
        fclose(f);
        if (strncmp(comm, "rte-worker-", 11) == 0) {
            snprintf(worker_stat, sizeof(worker_stat), "/proc/self/task/%.16s/schedstat",
                     e->d_name);
            break;
        }
    }
    closedir(d);
}

static double worker_oncpu_ns(void)
{
    unsigned long long ns;
    FILE *f = worker_stat[0] ? fopen(worker_stat, "r") : NULL;
    if (!f)
        return -1;
    int ok = fscanf(f, "%llu", &ns) == 1;
    fclose(f);
    return ok ? (double)ns : -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct summary {
    double median, min, max;
};

static struct summary summarize(const struct run *r, int n, size_t field)
{
    double v[MAX_RUNS];
    for (int i = 0; i < n; i++)
        v[i] = *(const double *)((const char *)&r[i] + field);
    qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
    struct summary s = {.min = v[0], .max = v[n - 1]};
    s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return s;
}

static uint64_t drops_of(const struct vsw_port *p)
{
    struct vsw_port_stats st;
    vsw_port_get_stats(p, &st);
    uint64_t n = 0;
    for (int d = 0; d < VSW_DROP_COUNT; d++)
        n += st.drops[d];
    return n;
}

/* The control thread's part while the worker runs: learning requests and
 * the 1 s tick, as vswitchd's loop does them. */
static void control_for(struct vsw_dp *dp, double seconds)
{
    double end = now_s() + seconds, tick = now_s() + 1;
    struct pollfd pfd = {.fd = vsw_dp_event_fd(dp), .events = POLLIN};
    for (double t = now_s(); t < end; t = now_s()) {
        int ms = (int)((end - t) * 1000) + 1;
        if (ms > 100)
            ms = 100;
        if (poll(&pfd, 1, ms) > 0)
            vsw_dp_process(dp);
        if (now_s() >= tick) {
            vsw_dp_tick(dp);
            tick += 1;
        }
    }
}

static int one_run(struct vsw_dp *dp, struct vsw_port *a, struct vsw_port *b, double seconds,
                   struct run *out)
{
    uint64_t drops0 = drops_of(a) + drops_of(b);
    vsw_dp_stats_clear(dp);
    double t0 = now_s(), c0 = worker_oncpu_ns();
    control_for(dp, seconds);
    struct vsw_worker_stats ws;
    vsw_dp_worker_stats_since_clear(dp, &ws, 1);
    double c1 = worker_oncpu_ns();
    struct vsw_worker_port wp[2], wq[2];
    double t1 = now_s();
    /* A's count first, B's after it (the worker runs on): B's then covers
     * every frame A's counted but the round in flight. Read in one pass,
     * B before A (the order of the worker's port set), B would lag by
     * whatever the worker forwarded in between. */
    if (vsw_dp_worker_ports(dp, 0, wp, 2) != 2 || vsw_dp_worker_ports(dp, 0, wq, 2) != 2)
        return -ENODEV;
    uint64_t a_rx = wp[0].port == a ? wp[0].rx_packets : wp[1].rx_packets;
    uint64_t b_tx = wq[0].port == b ? wq[0].tx_packets : wq[1].tx_packets;
    *out = (struct run){
        .mpps = (double)ws.rx_packets / (t1 - t0) / 1e6,
        .cpp = vsw_worker_cycles_per_packet(&ws),
        .busy_pct = vsw_worker_busy_pct(&ws),
        .cpu_cpp = c0 < 0 || c1 < 0 || !ws.rx_packets
                       ? 0
                       : (c1 - c0) / 1e9 * (double)rte_get_tsc_hz() / (double)ws.rx_packets,
        .cpu_pct = c0 < 0 || c1 < 0 ? 0 : 100.0 * (c1 - c0) / 1e9 / (t1 - t0),
        .rx = ws.rx_packets,
        .tx = ws.tx_packets,
        .drops = drops_of(a) + drops_of(b) - drops0,
    };
    /* Read a moment apart, the two counts differ by the frames of a round
     * or two at most. */
    out->lost = b_tx + 2 * VSW_BURST < a_rx;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: hv-null-bench [--seconds S] [--runs N] [--size BYTES] [--json]\n"
               "  --seconds S   length of each run (default 2)\n"
               "  --runs N      repetitions, 1..%d (default 5)\n"
               "  --size BYTES  frame length, 60..1514 (default 64)\n"
               "  --json        one JSON object instead of the text lines\n",
            MAX_RUNS);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    double seconds = 2;
    int runs = 5;
    unsigned size = 64;
    bool json = false;
    static const struct option opts[] = {
        {"seconds", required_argument, NULL, 's'}, {"runs", required_argument, NULL, 'r'},
        {"size", required_argument, NULL, 'z'},    {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (o) {
        case 's':
            seconds = strtod(optarg, &end);
            if (!end || *end || seconds < 0.1 || seconds > 600) {
                fprintf(stderr, "hv-null-bench: --seconds is 0.1..600\n");
                return 2;
            }
            break;
        case 'r':
            runs = (int)strtol(optarg, &end, 10);
            if (!end || *end || runs < 1 || runs > MAX_RUNS) {
                fprintf(stderr, "hv-null-bench: --runs is 1..%d\n", MAX_RUNS);
                return 2;
            }
            break;
        case 'z':
            size = (unsigned)strtoul(optarg, &end, 10);
            if (!end || *end || size < 60 || size > 1514) {
                fprintf(stderr, "hv-null-bench: --size is 60..1514\n");
                return 2;
            }
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    char prefix[48];
    snprintf(prefix, sizeof(prefix), "--file-prefix=hvnull%d", (int)getpid());
    char *eal[16] = {argv[0],       "-l",          "0,1",           prefix,
                     "--no-pci",    "--no-shconf", "--no-telemetry", "--log-level=*:warning"};
    int ne = 8;
    /* Not --in-memory: EAL refuses it with --no-huge (legacy memory). */
    if (hugepages_free() >= 128) {
        eal[ne++] = "-m";
        eal[ne++] = "256";
        eal[ne++] = "--huge-unlink";
    } else {
        eal[ne++] = "--no-huge";
        eal[ne++] = "-m";
        eal[ne++] = "256";
    }
    if (rte_eal_init(ne, eal) < 0) {
        fprintf(stderr, "hv-null-bench: DPDK did not start (needs 2 CPUs)\n");
        return 1;
    }
    int status = 1;
    struct vsw_dp *dp = NULL;
    struct vsw_switch *sw = NULL;
    struct vsw_port *a = NULL, *b = NULL;
    struct rte_mempool *pool = rte_pktmbuf_pool_create("hvnull", POOL_MBUFS, 256, 0,
                                                       RTE_MBUF_DEFAULT_BUF_SIZE,
                                                       (int)rte_socket_id());
    if (!pool) {
        fprintf(stderr, "hv-null-bench: no mbuf pool\n");
        goto out;
    }
    uint16_t fsize = (uint16_t)size;
    rte_mempool_obj_iter(pool, fill_frame, &fsize);
    struct vsw_dp_params dpp = {.pool = pool};
    struct vsw_switch_params sp = {.name = "null", .kind = VSW_SWITCH_PRIVATE, .mtu = 1500};
    if (vsw_dp_create(&dpp, &dp) < 0 || vsw_switch_create(dp, &sp, &sw) < 0) {
        fprintf(stderr, "hv-null-bench: cannot set up the switch\n");
        goto out;
    }
    char da[64];
    snprintf(da, sizeof(da), "net_null0,size=%u", size);
    struct vsw_uplink_params ua = {.devargs = da, .port_name = "null-a", .mtu = 1500,
                                   .pool = pool};
    struct vsw_uplink_params ub = {.devargs = "net_null1,no-rx=1", .port_name = "null-b",
                                   .mtu = 1500, .pool = pool};
    int rc;
    if ((rc = vsw_uplink_port_create(&ub, &b)) < 0 || (rc = vsw_port_attach(sw, b)) < 0 ||
        (rc = vsw_fdb_add_static(sw, mac_b.addr_bytes, 0, b)) < 0 ||
        (rc = vsw_uplink_port_create(&ua, &a)) < 0 || (rc = vsw_port_attach(sw, a)) < 0) {
        fprintf(stderr, "hv-null-bench: null ports: %s\n", strerror(-rc));
        goto out;
    }
    /* Warm-up: A's MAC learned, caches and the pool's per-lcore cache warm. */
    control_for(dp, 0.5);
    find_worker_thread();

    struct run r[MAX_RUNS];
    bool bad = false;
    if (!json)
        printf("# hv-null-bench: net_null -> switch (MAC learning, learned destination) -> "
               "net_null, %u B, %d run(s) of %.1f s, 1 worker lcore, TSC %.0f MHz\n",
               size, runs, seconds, (double)rte_get_tsc_hz() / 1e6);
    for (int i = 0; i < runs; i++) {
        if ((rc = one_run(dp, a, b, seconds, &r[i])) < 0) {
            fprintf(stderr, "hv-null-bench: run %d: %s\n", i + 1, strerror(-rc));
            goto out;
        }
        bad |= r[i].drops || r[i].lost;
        if (!json)
            printf("run %2d: %7.3f Mpps  %7.1f cycles/packet  busy %5.1f %%  on-CPU %7.1f "
                   "cycles/packet, %5.1f %%  rx %" PRIu64 " tx %" PRIu64 "%s\n",
                   i + 1, r[i].mpps, r[i].cpp, r[i].busy_pct, r[i].cpu_cpp, r[i].cpu_pct,
                   r[i].rx, r[i].tx,
                   r[i].drops ? "  DROPS" : r[i].lost ? "  LOST" : "");
    }
    struct summary mpps = summarize(r, runs, offsetof(struct run, mpps));
    struct summary cpp = summarize(r, runs, offsetof(struct run, cpp));
    struct summary busy = summarize(r, runs, offsetof(struct run, busy_pct));
    struct summary ccpp = summarize(r, runs, offsetof(struct run, cpu_cpp));
    struct summary cpct = summarize(r, runs, offsetof(struct run, cpu_pct));
    if (json) {
        printf("{\"bench\":\"hv-null-bench\",\"size\":%u,\"seconds\":%.3f,\"tsc_hz\":%" PRIu64
               ",\"runs\":[",
               size, seconds, rte_get_tsc_hz());
        for (int i = 0; i < runs; i++)
            printf("%s{\"mpps\":%.4f,\"cycles_per_packet\":%.2f,\"busy_pct\":%.2f,"
                   "\"oncpu_cycles_per_packet\":%.2f,\"oncpu_pct\":%.2f,"
                   "\"rx_packets\":%" PRIu64 ",\"tx_packets\":%" PRIu64 ",\"drops\":%" PRIu64
                   ",\"lost\":%s}",
                   i ? "," : "", r[i].mpps, r[i].cpp, r[i].busy_pct, r[i].cpu_cpp, r[i].cpu_pct,
                   r[i].rx, r[i].tx,
                   r[i].drops, r[i].lost ? "true" : "false");
        printf("],\"mpps\":{\"median\":%.4f,\"min\":%.4f,\"max\":%.4f},"
               "\"cycles_per_packet\":{\"median\":%.2f,\"min\":%.2f,\"max\":%.2f},"
               "\"busy_pct\":{\"median\":%.2f},"
               "\"oncpu_cycles_per_packet\":{\"median\":%.2f,\"min\":%.2f,\"max\":%.2f},"
               "\"oncpu_pct\":{\"median\":%.2f},\"clean\":%s}\n",
               mpps.median, mpps.min, mpps.max, cpp.median, cpp.min, cpp.max, busy.median,
               ccpp.median, ccpp.min, ccpp.max, cpct.median, bad ? "false" : "true");
    } else {
        printf("hv-null-bench: %u B: %.3f Mpps (%.3f..%.3f), %.1f cycles/packet (%.1f..%.1f), "
               "busy %.1f %%, on-CPU %.1f cycles/packet (%.1f..%.1f) at %.1f %% on CPU, "
               "median of %d\n",
               size, mpps.median, mpps.min, mpps.max, cpp.median, cpp.min, cpp.max,
               busy.median, ccpp.median, ccpp.min, ccpp.max, cpct.median, runs);
    }
    if (bad)
        fprintf(stderr, "hv-null-bench: frames were dropped or lost in some run: the figures "
                        "do not measure the forwarding path alone\n");
    status = bad ? 1 : 0;
out:
    if (a)
        vsw_port_destroy(a);
    if (b)
        vsw_port_destroy(b);
    if (sw)
        vsw_switch_destroy(sw);
    vsw_dp_destroy(dp);
    rte_mempool_free(pool);
    rte_eal_cleanup();
    return status;
}
