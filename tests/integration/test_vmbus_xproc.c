/*
 * Cross-process VMBus tests: a real root (this program) and real child
 * partitions (hv-testguest processes).
 *
 *   test_vmbus_xproc exchange GUEST COUNT [guest options...]
 *       one partition; COUNT checked packets each way; nothing may be lost,
 *       reordered or corrupted in either direction.
 *   test_vmbus_xproc kill GUEST
 *       two partitions exchanging traffic; kill -9 the first mid-stream; the
 *       root must tear it down (channel closed, GPADLs and memory unmapped,
 *       its memfd gone from the root) and keep serving the second; then the
 *       first is started again and works.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hv.h"
#include "traffic.h"
#include "vmbus-server.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                       \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)

struct vm {
    struct hv_partition *p;
    struct vmbus_server *srv;
    struct traffic_dev *dev;
    struct traffic_cfg cfg;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void vm_setup(struct hv_host *host, struct vm *vm, const char *name, const char *const *argv,
                     uint64_t count, bool events)
{
    char unique[64];
    snprintf(unique, sizeof(unique), "%s-%d", name, (int)getpid());
    struct hv_partition_params pp = {
        .name = unique,
        .memory_bytes = 64ull << 20,
        .argv = argv,
    };
    vm->cfg = (struct traffic_cfg){.tx_count = count, .rx_count = count, .events = events};
    int rc = hv_partition_create(host, &pp, &vm->p);
    if (rc < 0)
        FAIL("create %s: %s", name, strerror(-rc));
    if ((rc = vmbus_server_create(vm->p, &vm->srv)) < 0)
        FAIL("vmbus server %s: %s", name, strerror(-rc));
    if ((rc = traffic_dev_create(vm->srv, &vm->cfg, &vm->dev)) < 0)
        FAIL("device %s: %s", name, strerror(-rc));
}

static void run_until(struct hv_host *host, bool (*cond)(void *), void *arg, double timeout_s,
                      const char *what)
{
    double t0 = now_s();
    while (!cond(arg)) {
        if (now_s() - t0 > timeout_s)
            FAIL("timed out after %.0f s waiting for %s", timeout_s, what);
        hv_host_run(host, 50);
    }
}

static bool stopped(void *arg)
{
    return hv_partition_state(((struct vm *)arg)->p) == HV_PARTITION_STOPPED;
}

static bool opened(void *arg)
{
    return traffic_dev_opens(((struct vm *)arg)->dev) > 0;
}

static void check_clean_exit(struct vm *vm, const char *name)
{
    int status = hv_partition_exit_status(vm->p);
    if (status < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        FAIL("%s: guest did not exit cleanly (status %#x)", name, status);
    struct traffic_stats st;
    bool done;
    traffic_dev_result(vm->dev, &st, &done);
    if (!done || !traffic_ok(&st, &vm->cfg))
        FAIL("%s: root side: done=%d error=%d rx %" PRIu64 "/%" PRIu64 " tx %" PRIu64 "/%" PRIu64
             " bad len/seq/csum %" PRIu64 "/%" PRIu64 "/%" PRIu64,
             name, done, st.error, st.rx_packets, vm->cfg.rx_count, st.tx_packets,
             vm->cfg.tx_count, st.rx_bad_len, st.rx_bad_seq, st.rx_bad_csum);
    printf("%s: root received %" PRIu64 " packets (%" PRIu64 " bytes) and sent %" PRIu64
           " in %.2f s, all checked\n",
           name, st.rx_packets, st.rx_bytes, st.tx_packets, (double)st.elapsed_ns / 1e9);
}

static void vm_teardown(struct vm *vm)
{
    vmbus_server_destroy(vm->srv);
    traffic_dev_destroy(vm->dev);
}

static int cmd_exchange(int argc, char **argv)
{
    if (argc < 4)
        FAIL("usage: exchange GUEST COUNT [guest options]");
    uint64_t count = strtoull(argv[3], NULL, 10);
    const char *gargv[16] = {argv[2], "--count", argv[3]};
    int n = 3;
    for (int i = 4; i < argc && n < 15; i++)
        gargv[n++] = argv[i];
    gargv[n] = NULL;

    struct hv_host *host;
    if (hv_host_create(&host) < 0)
        FAIL("host");
    bool events = false;
    for (int i = 4; i < argc; i++)
        events |= strcmp(argv[i], "--events") == 0;
    struct vm vm;
    vm_setup(host, &vm, "xproc", gargv, count, events);
    if (hv_partition_start(vm.p) < 0)
        FAIL("start");
    run_until(host, stopped, &vm, 900, "the guest to finish");
    check_clean_exit(&vm, "xproc");
    struct vmbus_server_stats vs;
    vmbus_server_get_stats(vm.srv, &vs);
    if (vs.gpadls != 0 || vs.gpadl_pages != 0)
        FAIL("GPADLs left after the guest stopped: %u (%" PRIu64 " pages)", vs.gpadls,
             vs.gpadl_pages);
    vm_teardown(&vm);
    hv_host_destroy(host);
    printf("PASS exchange\n");
    return 0;
}

/* Mappings and descriptors of the root that belong to a partition's memfd. */
static int count_memfd_refs(const char *memfd_name)
{
    int refs = 0;
    char line[1024];
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        FAIL("/proc/self/maps: %s", strerror(errno));
    while (fgets(line, sizeof(line), f))
        if (strstr(line, memfd_name))
            refs++;
    fclose(f);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        FAIL("/proc/self/fd: %s", strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], target[512];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            if (strstr(target, memfd_name))
                refs++;
        }
    }
    closedir(d);
    return refs;
}

static int cmd_kill(int argc, char **argv)
{
    if (argc < 3)
        FAIL("usage: kill GUEST");
    const char *victim_argv[] = {argv[2], "--count", "1000000000", NULL};
    const char *survivor_argv[] = {argv[2], "--count", "3000000", "--events", NULL};
    struct hv_host *host;
    if (hv_host_create(&host) < 0)
        FAIL("host");
    struct vm a, b;
    vm_setup(host, &a, "victim", victim_argv, 1000000000ull, false);
    /* The survivor sleeps when idle, so the two really share the CPUs. */
    vm_setup(host, &b, "survivor", survivor_argv, 3000000ull, true);

    if (hv_partition_start(a.p) < 0 || hv_partition_start(b.p) < 0)
        FAIL("start");
    run_until(host, opened, &a, 30, "the victim's channel to open");
    run_until(host, opened, &b, 30, "the survivor's channel to open");
    double t0 = now_s();
    while (now_s() - t0 < 0.3)
        hv_host_run(host, 50);

    char memfd_name[96];
    snprintf(memfd_name, sizeof(memfd_name), "hv-part-%u-%s", hv_partition_id(a.p),
             hv_partition_name(a.p));
    if (count_memfd_refs(memfd_name) == 0)
        FAIL("expected the victim's memory (%s) to be mapped while it runs", memfd_name);
    struct vmbus_server_stats vs;
    vmbus_server_get_stats(a.srv, &vs);
    if (vs.gpadls == 0)
        FAIL("expected the victim to have GPADLs while it runs");

    pid_t pid = hv_process_partition_pid(a.p);
    printf("killing victim pid %d mid-stream\n", (int)pid);
    if (kill(pid, SIGKILL) < 0)
        FAIL("kill: %s", strerror(errno));
    run_until(host, stopped, &a, 30, "the root to notice the victim died");

    if (!hv_partition_crashed(a.p))
        FAIL("victim not reported as crashed");
    int status = hv_partition_exit_status(a.p);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
        FAIL("victim exit status %#x, expected SIGKILL", status);
    struct traffic_stats st;
    bool done;
    traffic_dev_result(a.dev, &st, &done);
    if (!done || st.error != -ECANCELED || st.rx_packets == 0)
        FAIL("victim's device: done=%d error=%d rx=%" PRIu64 " (expected a stopped stream)", done,
             st.error, st.rx_packets);
    vmbus_server_get_stats(a.srv, &vs);
    if (vs.gpadls != 0 || vs.gpadl_pages != 0)
        FAIL("victim's GPADLs still there: %u", vs.gpadls);
    int refs = count_memfd_refs(memfd_name);
    if (refs != 0)
        FAIL("victim's memory still referenced by the root %d time(s)", refs);
    printf("victim torn down after %" PRIu64 " packets: memory unmapped, GPADLs gone\n",
           st.rx_packets);

    if (hv_partition_state(b.p) != HV_PARTITION_RUNNING)
        FAIL("survivor stopped along with the victim");
    run_until(host, stopped, &b, 600, "the survivor to finish");
    check_clean_exit(&b, "survivor");

    /* The host still serves the victim's slot: start it again, briefly. */
    vmbus_server_destroy(a.srv);
    traffic_dev_destroy(a.dev);
    hv_partition_destroy(a.p);
    const char *again_argv[] = {argv[2], "--count", "100000", NULL};
    vm_setup(host, &a, "again", again_argv, 100000, false);
    if (hv_partition_start(a.p) < 0)
        FAIL("restart");
    run_until(host, stopped, &a, 120, "the restarted partition to finish");
    check_clean_exit(&a, "again");

    vm_teardown(&a);
    vm_teardown(&b);
    hv_host_destroy(host);
    printf("PASS kill\n");
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc >= 2 && strcmp(argv[1], "exchange") == 0)
        return cmd_exchange(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "kill") == 0)
        return cmd_kill(argc, argv);
    fprintf(stderr, "usage: test_vmbus_xproc exchange GUEST COUNT [opts] | kill GUEST\n");
    return 2;
}
