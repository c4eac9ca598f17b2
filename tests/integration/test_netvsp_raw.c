/*
 * VM NICs end to end without a kernel stack: a real DPDK data plane with a
 * private switch, two child partitions each with a synthetic NIC (netvsp in
 * this root, netvsc in hv-rawguest), raw frames through the switch.
 *
 *   test_netvsp_raw RAWGUEST oneway COUNT SIZE
 *       A sends, B only listens: every frame A sent either reached B or is
 *       counted as a drop somewhere (nothing lost without a count), and
 *       nothing arrived corrupted or out of order.
 *   test_netvsp_raw RAWGUEST twoway COUNT SIZE
 *       both send at once; nothing corrupted; both receive.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_lcore.h>

#include "hv.h"
#include "netvsp.h"
#include "vmbus-server.h"
#include "vsw-port-provider.h"
#include "vsw.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                       \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)

struct result {
    uint64_t sent, fins, received, fins_rx, lost, bad;
};

struct vm {
    const char *tag;
    uint8_t mac[6];
    char name[48], result[128], mac_s[24], peer_s[24], count_s[24], size_s[16];
    struct hv_partition *p;
    struct vmbus_server *srv;
    struct netvsp *nic;
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

static void eal_init(void)
{
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "--file-prefix=hvt-raw-%d", (int)getpid());
    char *args[16] = {"test_netvsp_raw", "-l",          "0,1",           prefix,
                      "--no-pci",        "--no-shconf", "--no-telemetry", "--log-level=*:warning"};
    int n = 8;
    if (hugepages_free() >= 256) {
        args[n++] = "-m";
        args[n++] = "256";
        args[n++] = "--huge-unlink";
    } else {
        args[n++] = "--no-huge";
        args[n++] = "-m";
        args[n++] = "512";
    }
    if (rte_eal_init(n, args) < 0)
        FAIL("rte_eal_init failed");
    /* EAL leaves an empty runtime directory behind (--no-shconf). */
    rmdir(rte_eal_get_runtime_dir());
}

static void read_result(const char *path, struct result *r)
{
    FILE *f = fopen(path, "r");
    if (!f)
        FAIL("no result in %s", path);
    int n = fscanf(f,
                   "sent %" SCNu64 " fins %" SCNu64 " received %" SCNu64 " fins_rx %" SCNu64
                   " lost %" SCNu64 " bad %" SCNu64,
                   &r->sent, &r->fins, &r->received, &r->fins_rx, &r->lost, &r->bad);
    fclose(f);
    unlink(path);
    if (n != 6)
        FAIL("malformed result in %s", path);
}

static uint64_t drops(const struct vsw_port_stats *s)
{
    uint64_t d = 0;
    for (int i = 0; i < VSW_DROP_COUNT; i++)
        d += s->drops[i];
    return d;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 5)
        FAIL("usage: test_netvsp_raw RAWGUEST oneway|twoway COUNT SIZE");
    const char *guest = argv[1];
    bool oneway = strcmp(argv[2], "oneway") == 0;
    eal_init();

    struct vsw_dp *dp;
    int rc = vsw_dp_create(NULL, &dp);
    if (rc < 0)
        FAIL("data plane: %s", strerror(-rc));
    struct vsw_switch *sw;
    struct vsw_switch_params sp = {.name = "raw", .kind = VSW_SWITCH_PRIVATE, .mtu = 9000};
    if ((rc = vsw_switch_create(dp, &sp, &sw)) < 0)
        FAIL("switch: %s", strerror(-rc));
    struct hv_host *host;
    if (hv_host_create(&host) < 0)
        FAIL("host");

    struct vm vms[2] = {{.tag = "a", .mac = {0x02, 0, 0, 0, 0, 0x0a}},
                        {.tag = "b", .mac = {0x02, 0, 0, 0, 0, 0x0b}}};
    for (int i = 0; i < 2; i++) {
        struct vm *v = &vms[i], *peer = &vms[1 - i];
        snprintf(v->name, sizeof(v->name), "raw%s-%d", v->tag, (int)getpid());
        snprintf(v->result, sizeof(v->result), "/tmp/hvt-raw-%d-%s.txt", (int)getpid(), v->tag);
        snprintf(v->peer_s, sizeof(v->peer_s), "%02x:%02x:%02x:%02x:%02x:%02x", peer->mac[0],
                 peer->mac[1], peer->mac[2], peer->mac[3], peer->mac[4], peer->mac[5]);
        snprintf(v->count_s, sizeof(v->count_s), "%s", (oneway && i == 1) ? "0" : argv[3]);
        snprintf(v->size_s, sizeof(v->size_s), "%s", argv[4]);
        const char *gargv[] = {guest,     "--peer", v->peer_s, "--count", v->count_s, "--size",
                               v->size_s, "--result", v->result, NULL};
        struct hv_partition_params pp = {.name = v->name, .memory_bytes = 128ull << 20,
                                         .argv = gargv};
        if ((rc = hv_partition_create(host, &pp, &v->p)) < 0 ||
            (rc = vmbus_server_create(v->p, &v->srv)) < 0)
            FAIL("partition %s: %s", v->tag, strerror(-rc));
        char port[32];
        snprintf(port, sizeof(port), "%s/eth0", v->tag);
        struct netvsp_params np = {.port_name = port, .nic_name = "eth0", .mtu = 9000,
                                   .pool = vsw_dp_mempool(dp)};
        memcpy(np.mac, v->mac, 6);
        np.instance.b[0] = (uint8_t)i;
        if ((rc = netvsp_create(v->srv, &np, &v->nic)) < 0)
            FAIL("nic %s: %s", v->tag, strerror(-rc));
        if ((rc = vsw_port_attach(sw, netvsp_port(v->nic))) < 0)
            FAIL("attach %s: %s", v->tag, strerror(-rc));
    }
    for (int i = 0; i < 2; i++)
        if (hv_partition_start(vms[i].p) < 0)
            FAIL("start");
    double t0 = now_s();
    while (hv_partition_state(vms[0].p) == HV_PARTITION_RUNNING ||
           hv_partition_state(vms[1].p) == HV_PARTITION_RUNNING) {
        if (now_s() - t0 > 300)
            FAIL("guests did not finish in 300 s");
        hv_host_run(host, 20);
        vsw_dp_process(dp);
    }
    double secs = now_s() - t0;

    struct result r[2];
    struct vsw_port_stats ps[2];
    struct netvsp_stats ns[2];
    for (int i = 0; i < 2; i++) {
        int st = hv_partition_exit_status(vms[i].p);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            FAIL("guest %s failed (status %#x)", vms[i].tag, st);
        read_result(vms[i].result, &r[i]);
        vsw_port_get_stats(netvsp_port(vms[i].nic), &ps[i]);
        netvsp_get_stats(vms[i].nic, &ns[i]);
        uint64_t errs = 0;
        for (int e = 0; e < NETVSP_ERR_COUNT; e++)
            errs += ns[i].errors[e];
        printf("%s: sent %" PRIu64 " (+%" PRIu64 " fin) received %" PRIu64 " lost %" PRIu64
               " | port rx %" PRIu64 " tx %" PRIu64 " drops %" PRIu64 " filtered %" PRIu64
               " protocol errors %" PRIu64 "\n",
               vms[i].tag, r[i].sent, r[i].fins, r[i].received, r[i].lost, ps[i].rx_packets,
               ps[i].tx_packets, drops(&ps[i]), ns[i].tx_filtered, errs);
        if (r[i].bad)
            FAIL("%s received %" PRIu64 " corrupted or reordered frames", vms[i].tag, r[i].bad);
        if (errs)
            FAIL("%s: the guest's NIC driver broke the protocol %" PRIu64 " times", vms[i].tag,
                 errs);
    }
    struct vsw_worker_stats ws;
    vsw_dp_worker_stats(dp, &ws, 1);
    printf("worker lcore %u: %" PRIu64 " rounds (%" PRIu64 " busy), %" PRIu64 " sleeps, %" PRIu64
           " woken by events\n",
           ws.lcore, ws.rounds, ws.busy_rounds, ws.sleeps, ws.wakeups);
    if (oneway) {
        /* Conservation over both directions (B answers with its fins, which
         * may be dropped and counted too): every frame sent was received
         * or counted. */
        uint64_t in = r[1].received + r[1].fins_rx;
        uint64_t out_all = r[0].sent + r[0].fins + r[1].sent + r[1].fins;
        uint64_t in_all = in + r[0].received + r[0].fins_rx;
        uint64_t counted = drops(&ps[0]) + drops(&ps[1]) + ns[0].tx_filtered + ns[1].tx_filtered;
        printf("A->B: %" PRIu64 " sent, %" PRIu64 " received; all frames: %" PRIu64
               " sent = %" PRIu64 " received + %" PRIu64 " counted drops; %.2f Mpps\n",
               r[0].sent + r[0].fins, in, out_all, in_all, counted, (double)in / secs / 1e6);
        if (out_all != in_all + counted)
            FAIL("%" PRId64 " frames lost without a count", (int64_t)(out_all - in_all - counted));
        if (r[1].received == 0)
            FAIL("B received nothing");
        if (ps[1].tx_packets != in)
            FAIL("B's port says it sent %" PRIu64 ", B's guest got %" PRIu64, ps[1].tx_packets, in);
    } else {
        if (r[0].received == 0 || r[1].received == 0)
            FAIL("a direction carried nothing");
    }
    for (int i = 0; i < 2; i++) {
        vsw_port_destroy(netvsp_port(vms[i].nic));
        vmbus_server_destroy(vms[i].srv);
    }
    hv_host_destroy(host);
    vsw_switch_destroy(sw);
    vsw_dp_destroy(dp);
    rte_eal_cleanup();
    printf("PASS %s\n", argv[2]);
    return 0;
}
