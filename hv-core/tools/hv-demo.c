/*
 * hv-demo: the foundation at work. Starts a root with two child partitions
 * (process partitions running hv-testguest), offers each a VMBus channel,
 * lets both exchange a checked packet stream with the root in both
 * directions at once, and prints what happened.
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
#include "vmbus-msg.h"
#include "vmbus-server.h"

#define NPART 2

struct vm {
    const char *name;
    struct hv_partition *p;
    struct vmbus_server *srv;
    struct traffic_dev *dev;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: hv-demo [--count N] [--size BYTES] [--events] [--guest PATH]\n"
               "  --count N      packets each way per partition (default 200000)\n"
               "  --size BYTES   payload size 16..9000 (default: mixed sizes)\n"
               "  --events       sleep on signals when idle instead of polling\n"
               "  --guest PATH   guest program (default: hv-testguest beside hv-demo)\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (status < 0)
        snprintf(buf, len, "unknown");
    else if (WIFEXITED(status))
        snprintf(buf, len, "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, len, "status %#x", status);
}

int main(int argc, char **argv)
{
    struct traffic_cfg cfg = {.tx_count = 200000, .rx_count = 200000};
    char guest[PATH_MAX] = "";
    static const struct option opts[] = {
        {"count", required_argument, NULL, 'c'}, {"size", required_argument, NULL, 's'},
        {"events", no_argument, NULL, 'e'},      {"guest", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    int o;
    char *end;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'c':
            cfg.tx_count = cfg.rx_count = strtoull(optarg, &end, 10);
            if (*end || cfg.tx_count == 0) {
                fprintf(stderr, "hv-demo: --count needs a positive number\n");
                return 2;
            }
            break;
        case 's':
            cfg.size = (uint32_t)strtoul(optarg, &end, 10);
            if (*end || cfg.size < TRAFFIC_MIN_PAYLOAD || cfg.size > TRAFFIC_MAX_PAYLOAD) {
                fprintf(stderr, "hv-demo: --size must be %u..%u\n", TRAFFIC_MIN_PAYLOAD,
                        TRAFFIC_MAX_PAYLOAD);
                return 2;
            }
            break;
        case 'e':
            cfg.events = true;
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
    if (!guest[0]) {
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n < 0) {
            perror("hv-demo: /proc/self/exe");
            return 1;
        }
        self[n] = '\0';
        snprintf(guest, sizeof(guest), "%s/hv-testguest", dirname(self));
    }
    if (access(guest, X_OK) != 0) {
        fprintf(stderr, "hv-demo: guest program %s: %s\n", guest, strerror(errno));
        return 1;
    }

    char count[32], size[32];
    snprintf(count, sizeof(count), "%" PRIu64, cfg.tx_count);
    snprintf(size, sizeof(size), "%u", cfg.size);
    const char *gargv[8] = {guest, "--count", count};
    int ga = 3;
    if (cfg.size) {
        gargv[ga++] = "--size";
        gargv[ga++] = size;
    }
    if (cfg.events)
        gargv[ga++] = "--events";
    gargv[ga] = NULL;

    struct hv_host *host;
    int rc = hv_host_create(&host);
    if (rc < 0) {
        fprintf(stderr, "hv-demo: host: %s\n", strerror(-rc));
        return 1;
    }
    struct vm vms[NPART] = {{.name = "vm-a"}, {.name = "vm-b"}};
    printf("root: %u partitions, %" PRIu64 " packets each way per partition, %s sizes, %s\n",
           NPART, cfg.tx_count, cfg.size ? size : "mixed", cfg.events ? "event-driven" : "polling");
    for (int i = 0; i < NPART; i++) {
        struct hv_partition_params pp = {
            .name = vms[i].name,
            .memory_bytes = 64ull << 20,
            .argv = gargv,
        };
        if ((rc = hv_partition_create(host, &pp, &vms[i].p)) < 0 ||
            (rc = vmbus_server_create(vms[i].p, &vms[i].srv)) < 0 ||
            (rc = traffic_dev_create(vms[i].srv, &cfg, &vms[i].dev)) < 0) {
            fprintf(stderr, "hv-demo: set up %s: %s\n", vms[i].name, strerror(-rc));
            return 1;
        }
    }
    double t0 = now_s();
    for (int i = 0; i < NPART; i++) {
        rc = hv_partition_start(vms[i].p);
        if (rc < 0) {
            fprintf(stderr, "hv-demo: start %s: %s\n", vms[i].name, strerror(-rc));
            return 1;
        }
        printf("root: partition %u '%s' running as pid %d with %" PRIu64 " MiB\n",
               hv_partition_id(vms[i].p), vms[i].name, hv_process_partition_pid(vms[i].p),
               hv_partition_memory_size(vms[i].p) >> 20);
    }
    fflush(stdout);

    for (;;) {
        int running = 0;
        for (int i = 0; i < NPART; i++)
            running += hv_partition_state(vms[i].p) == HV_PARTITION_RUNNING;
        if (!running)
            break;
        if (now_s() - t0 > 600) {
            fprintf(stderr, "hv-demo: guests still running after 600 s, stopping them\n");
            for (int i = 0; i < NPART; i++)
                if (hv_partition_state(vms[i].p) == HV_PARTITION_RUNNING)
                    hv_partition_stop(vms[i].p, 1000);
            break;
        }
        hv_host_run(host, 200);
    }

    bool all_ok = true;
    printf("\n%-6s %-8s %-10s %12s %12s %10s %9s %s\n", "vm", "state", "guest", "root rx pkts",
           "root tx pkts", "rx MB", "Mpps", "verdict");
    for (int i = 0; i < NPART; i++) {
        struct traffic_stats st;
        bool done;
        traffic_dev_result(vms[i].dev, &st, &done);
        char ex[48];
        int status = hv_partition_exit_status(vms[i].p);
        describe_exit(status, ex, sizeof(ex));
        bool ok = done && traffic_ok(&st, &cfg) && status == 0;
        all_ok &= ok;
        double secs = (double)st.elapsed_ns / 1e9;
        printf("%-6s %-8s %-10s %12" PRIu64 " %12" PRIu64 " %10.1f %9.2f %s\n", vms[i].name,
               hv_partition_state_name(hv_partition_state(vms[i].p)), ex, st.rx_packets,
               st.tx_packets, (double)st.rx_bytes / 1e6,
               secs > 0 ? (double)(st.rx_packets + st.tx_packets) / secs / 1e6 : 0.0,
               ok ? "OK" : "FAILED");
    }
    printf("\nVMBus, as the root saw it:\n");
    for (int i = 0; i < NPART; i++) {
        struct vmbus_server_stats vs;
        struct hv_partition_stats ps;
        vmbus_server_get_stats(vms[i].srv, &vs);
        hv_partition_get_stats(vms[i].p, &ps);
        printf("  %s: messages in:", vms[i].name);
        for (int t = 0; t < VMBUS_MSG_TYPE_MAX; t++)
            if (vs.msgs_in[t])
                printf(" %s=%" PRIu64, vmbus_msg_name((uint32_t)t), vs.msgs_in[t]);
        uint64_t errs = 0;
        for (int e = 0; e < VMBUS_SRV_ERR_COUNT; e++)
            errs += vs.errors[e];
        printf("; out %" PRIu64 "; refused %" PRIu64 "\n", vs.msgs_out, errs);
        printf("  %s: hypercalls %" PRIu64 " (failed %" PRIu64 "), SynIC messages delivered %" PRIu64
               ", guest signals %" PRIu64 ", root signals %" PRIu64 "\n",
               vms[i].name, ps.hypercalls, ps.hypercalls_failed, ps.messages_delivered,
               ps.guest_signals, ps.events_signalled);
    }
    printf("\nelapsed %.2f s; %s\n", now_s() - t0, all_ok ? "all partitions OK" : "FAILURES");

    for (int i = 0; i < NPART; i++) {
        vmbus_server_destroy(vms[i].srv);
        traffic_dev_destroy(vms[i].dev);
    }
    hv_host_destroy(host);
    return all_ok ? 0 : 1;
}
