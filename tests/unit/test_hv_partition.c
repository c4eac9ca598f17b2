/*
 * Unit tests of hv-core's root side: the partition state machine and table,
 * the process backend (a real child per partition), the hypercall broker
 * (through direct partitions, record by record), the SynIC, and views of
 * guest memory.
 *
 * Direct partitions make the guest this process: hypercalls of the guest
 * handle go synchronously into hv_hypercall(), so every answer and counter
 * can be checked exactly. Process partitions run /bin/sh, /bin/sleep or
 * hv-abuse-guest (HV_ABUSE_GUEST) and are driven with hv_host_run().
 *
 * Scenarios that can corrupt this process if hv-core is wrong (re-entrant
 * calls from listeners, undefined behaviour the sanitizers abort on) run in
 * a forked child that reports through its exit status.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "hv-guest.h"
#include "hv-log.h"
#include "hv.h"

#define HVT_MEM (4ull << 20)
#define HVT_HDR offsetof(struct hv_hc_request, input)
#define HVT_POST_HDR offsetof(struct hv_input_post_message, payload)
#define HVT_CONN_MSG 7
#define HVT_CONN_EVENT 9
#define HVT_CONN_UNKNOWN 0x7777
#define HVT_SINT 2
#define HVT_WAIT_MS 20000

struct hvt_fix {
    struct hv_host *host;
    struct hv_partition *p; /* direct, running (setup_direct) */
    struct hv_guest *g;     /* attached to p */
};

static int64_t hvt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct hv_partition *hvt_direct(struct hv_host *h, const char *name, uint64_t bytes,
                                       bool start)
{
    struct hv_partition_params prm = {
        .name = name,
        .memory_bytes = bytes,
        .cls = &hv_direct_partition_class,
    };
    struct hv_partition *p = NULL;
    assert_int_equal(hv_partition_create(h, &prm, &p), 0);
    assert_non_null(p);
    if (start)
        assert_int_equal(hv_partition_start(p), 0);
    return p;
}

static struct hv_partition *hvt_process(struct hv_host *h, const char *name,
                                        const char *const *argv, const char *const *envp)
{
    struct hv_partition_params prm = {
        .name = name,
        .memory_bytes = 1ull << 20,
        .argv = argv,
        .envp = envp,
    };
    struct hv_partition *p = NULL;
    assert_int_equal(hv_partition_create(h, &prm, &p), 0);
    return p;
}

static struct hv_guest *hvt_attach(struct hv_partition *p)
{
    struct hv_guest *g = NULL;
    assert_int_equal(hv_direct_partition_attach(p, &g), 0);
    assert_non_null(g);
    return g;
}

static int setup_host(void **state)
{
    struct hvt_fix *f = calloc(1, sizeof(*f));
    if (!f || hv_host_create(&f->host) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup_direct(void **state)
{
    if (setup_host(state) != 0)
        return -1;
    struct hvt_fix *f = *state;
    struct hv_partition_params prm = {
        .name = "direct0",
        .memory_bytes = HVT_MEM,
        .cls = &hv_direct_partition_class,
    };
    if (hv_partition_create(f->host, &prm, &f->p) != 0 || hv_partition_start(f->p) != 0 ||
        hv_direct_partition_attach(f->p, &f->g) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    struct hvt_fix *f = *state;
    if (!f)
        return 0;
    hv_guest_detach(f->g);
    hv_host_destroy(f->host);
    free(f);
    return 0;
}

/* Serve the host until p leaves RUNNING or timeout_ms passes. */
static bool hvt_run_until_stopped(struct hv_host *h, struct hv_partition *p, int timeout_ms)
{
    int64_t end = hvt_now_ms() + timeout_ms;
    while (hv_partition_state(p) == HV_PARTITION_RUNNING) {
        if (hvt_now_ms() > end)
            return false;
        if (hv_host_run(h, 50) < 0)
            return false;
    }
    return true;
}

/* Wait until pid has exec'd a program called comm and, where the kernel
 * tells (/proc/<pid>/syscall), is blocked in a sleep: until then the dynamic
 * loader of the new program may hold descriptors of its own. */
static bool hvt_wait_comm(pid_t pid, const char *comm, int timeout_ms)
{
    char path[64], buf[128];
    int64_t end = hvt_now_ms() + timeout_ms;
    bool named = false;
    while (hvt_now_ms() <= end) {
        if (!named) {
            snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
            FILE *fp = fopen(path, "r");
            if (fp) {
                size_t n = strlen(comm);
                named = fgets(buf, sizeof(buf), fp) && strncmp(buf, comm, n) == 0 &&
                        (buf[n] == '\n' || buf[n] == '\0');
                fclose(fp);
            }
        }
        if (named) {
            snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
            FILE *fp = fopen(path, "r");
            if (!fp)
                return true; /* no way to tell: exec'd is the best we know */
            long nr = -1;
            bool got = fgets(buf, sizeof(buf), fp) && sscanf(buf, "%ld", &nr) == 1;
            fclose(fp);
            if (got && (nr == SYS_clock_nanosleep || nr == SYS_nanosleep))
                return true;
        }
        usleep(2000);
    }
    return false;
}

static size_t hvt_rec(struct hv_hc_request *r, uint16_t code, uint32_t isize)
{
    memset(r, 0, sizeof(*r));
    r->magic = HV_HC_MAGIC;
    r->call_code = code;
    r->seq = 77;
    r->input_size = isize;
    return HVT_HDR + isize;
}

static size_t hvt_post_rec(struct hv_hc_request *r, uint32_t conn, uint32_t type,
                           uint32_t payload_size)
{
    size_t len = hvt_rec(r, HVCALL_POST_MESSAGE, (uint32_t)HVT_POST_HDR + payload_size);
    r->input.post_message.connection_id = conn;
    r->input.post_message.message_type = type;
    r->input.post_message.payload_size = payload_size;
    return len;
}

static size_t hvt_signal_rec(struct hv_hc_request *r, uint32_t conn, uint16_t flag)
{
    size_t len = hvt_rec(r, HVCALL_SIGNAL_EVENT, sizeof(struct hv_input_signal_event));
    r->input.signal_event.connection_id = conn;
    r->input.signal_event.flag_number = flag;
    return len;
}

static size_t hvt_setup_rec(struct hv_hc_request *r, uint64_t simp, uint64_t siefp, uint32_t mask)
{
    size_t len = hvt_rec(r, HVCALL_EXT_SYNIC_SETUP, sizeof(struct hv_input_synic_setup));
    r->input.synic_setup.simp_gpa = simp;
    r->input.synic_setup.siefp_gpa = siefp;
    r->input.synic_setup.sint_mask = mask;
    return len;
}

/* Through the guest library's raw call (the guest's view). */
static int hvt_raw(struct hv_guest *g, const void *rec, size_t len)
{
    int fd = -1;
    int st = hv_guest_raw_hypercall(g, rec, (uint32_t)len, &fd);
    if (fd >= 0)
        close(fd);
    return st;
}

/* Straight into the broker. */
static int hvt_broker(struct hv_partition *p, const void *rec, size_t len)
{
    int fd = 1234;
    int st = hv_hypercall(p, rec, len, &fd);
    assert_int_equal(fd, -1);
    return st;
}

/* Read (and reset) an eventfd's counter; 0 if it was 0. */
static uint64_t hvt_take(int efd)
{
    uint64_t v = 0;
    if (read(efd, &v, sizeof(v)) != sizeof(v)) {
        assert_int_equal(errno, EAGAIN);
        return 0;
    }
    return v;
}

static struct hv_partition_stats hvt_stats(struct hv_partition *p)
{
    struct hv_partition_stats s;
    hv_partition_get_stats(p, &s);
    return s;
}

/* Run fn(ctx) in a forked child; its return value is the child's exit
 * status. Returns the wait status. The child must not use cmocka asserts. */
static int hvt_in_child(int (*fn)(void *ctx), void *ctx)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(60);
        _exit(fn(ctx));
    }
    int ws = 0;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    return ws;
}

static void hvt_assert_exit(int ws, int code)
{
    if (!WIFEXITED(ws))
        fail_msg("child did not exit (signal %d)", WIFSIGNALED(ws) ? WTERMSIG(ws) : -1);
    assert_int_equal(WEXITSTATUS(ws), code);
}

static void hv_partition_transition_ok__every_pair__matches_table(void **state)
{
    (void)state;
    const enum hv_partition_state C = HV_PARTITION_CREATED, R = HV_PARTITION_RUNNING,
                                  S = HV_PARTITION_STOPPED, D = HV_PARTITION_DESTROYED;
    bool want[4][4] = {{false}};
    want[C][R] = want[C][D] = true;
    want[R][S] = true;
    want[S][R] = want[S][D] = true;
    for (int from = 0; from <= (int)D; from++)
        for (int to = 0; to <= (int)D; to++) {
            bool ok = hv_partition_transition_ok((enum hv_partition_state)from,
                                                 (enum hv_partition_state)to);
            if (ok != want[from][to])
                fail_msg("%s -> %s: %d, expected %d",
                         hv_partition_state_name((enum hv_partition_state)from),
                         hv_partition_state_name((enum hv_partition_state)to), ok, want[from][to]);
        }
    assert_false(hv_partition_transition_ok((enum hv_partition_state)(D + 1), R));
    assert_false(hv_partition_transition_ok(C, (enum hv_partition_state)(D + 1)));
    assert_string_equal(hv_partition_state_name(HV_PARTITION_CREATED), "created");
    assert_string_equal(hv_partition_state_name(HV_PARTITION_RUNNING), "running");
    assert_string_equal(hv_partition_state_name(HV_PARTITION_STOPPED), "stopped");
    assert_string_equal(hv_partition_state_name(HV_PARTITION_DESTROYED), "destroyed");
}

static void hv_partition_start__already_running__ebusy(void **state)
{
    struct hvt_fix *f = *state;
    assert_int_equal(hv_partition_state(f->p), HV_PARTITION_RUNNING);
    assert_int_equal(hv_partition_start(f->p), -EBUSY);
    assert_int_equal(hv_partition_state(f->p), HV_PARTITION_RUNNING);
}

static void hv_partition_destroy__running__ebusy(void **state)
{
    struct hvt_fix *f = *state;
    assert_int_equal(hv_partition_destroy(f->p), -EBUSY);
    assert_int_equal(hv_partition_state(f->p), HV_PARTITION_RUNNING);
    assert_ptr_equal(hv_host_find_name(f->host, "direct0"), f->p);
    assert_int_equal(hv_partition_destroy(NULL), 0);
}

static void hv_partition_stop__not_running__einval(void **state)
{
    struct hvt_fix *f = *state;
    struct hv_partition *q = hvt_direct(f->host, "never-started", HVT_MEM, false);
    assert_int_equal(hv_partition_stop(q, 0), -EINVAL);
    assert_int_equal(hv_partition_state(q), HV_PARTITION_CREATED);
    assert_int_equal(hv_partition_exit_status(q), -1);

    assert_int_equal(hv_partition_stop(f->p, 0), 0);
    assert_int_equal(hv_partition_stop(f->p, 0), -EINVAL);
    assert_int_equal(hv_partition_state(f->p), HV_PARTITION_STOPPED);
    assert_false(hv_partition_crashed(f->p));
}

static void hv_partition_start__after_stop__fresh_zeroed_memory(void **state)
{
    struct hvt_fix *f = *state;
    uint64_t pages = hv_partition_memory_pages(f->p);
    assert_int_equal(pages, HVT_MEM >> HV_PAGE_SHIFT);
    memset(hv_guest_pfn_ptr(f->g, 3), 0xab, HV_PAGE_SIZE);
    memset(hv_guest_pfn_ptr(f->g, pages - 1), 0xcd, HV_PAGE_SIZE);

    assert_int_equal(hv_partition_stop(f->p, 0), 0);
    struct hv_guest *g2 = NULL;
    assert_int_equal(hv_direct_partition_attach(f->p, &g2), -ENODEV);
    assert_int_equal(hv_partition_start(f->p), 0);
    assert_int_equal(hv_partition_state(f->p), HV_PARTITION_RUNNING);
    assert_int_equal(hv_partition_exit_status(f->p), -1);
    g2 = hvt_attach(f->p);

    assert_int_equal(hv_guest_mem_size(g2), HVT_MEM);
    const uint8_t *m = hv_guest_mem(g2);
    for (uint64_t i = 0; i < HVT_MEM; i++)
        if (m[i] != 0)
            fail_msg("byte %llu of restarted memory is %#x", (unsigned long long)i, m[i]);
    /* A new memory object: the old guest handle no longer shares it. */
    hv_guest_mem(g2)[3 * HV_PAGE_SIZE] = 0x11;
    assert_int_equal(*(uint8_t *)hv_guest_pfn_ptr(f->g, 3), 0xab);
    /* The restarted partition works as before. */
    assert_int_equal(hv_guest_synic_enable(g2, 1u << HVT_SINT), HV_STATUS_SUCCESS);
    assert_int_equal(hv_synic_post(f->p, HVT_SINT, HVMSG_VMBUS, "again", 5), 0);
    struct hv_message msg;
    assert_int_equal(hv_guest_recv_message(g2, HVT_SINT, &msg), 0);
    assert_memory_equal(msg.payload, "again", 5);
    hv_guest_detach(g2);
}

struct hvt_trans {
    struct hv_partition *p;
    enum hv_partition_state from, to;
};

struct hvt_log {
    struct hvt_trans t[16];
    int n;
    bool unlisten_self;
};

static void hvt_log_fn(void *ctx, struct hv_partition *p, enum hv_partition_state from,
                       enum hv_partition_state to)
{
    struct hvt_log *log = ctx;
    if (log->n < 16)
        log->t[log->n] = (struct hvt_trans){p, from, to};
    log->n++;
    if (log->unlisten_self)
        hv_partition_unlisten(p, hvt_log_fn, ctx);
}

static void hv_partition_listen__full_lifecycle__transitions_in_order(void **state)
{
    struct hvt_fix *f = *state;
    struct hvt_log all = {0}, once = {.unlisten_self = true}, removed = {0};
    struct hv_partition *p = hvt_direct(f->host, "listened", HVT_MEM, false);
    assert_int_equal(hv_partition_listen(p, hvt_log_fn, &all), 0);
    assert_int_equal(hv_partition_listen(p, hvt_log_fn, &once), 0);
    assert_int_equal(hv_partition_listen(p, hvt_log_fn, &removed), 0);
    hv_partition_unlisten(p, hvt_log_fn, &removed);

    assert_int_equal(hv_partition_start(p), 0);
    assert_int_equal(hv_partition_stop(p, 0), 0);
    assert_int_equal(hv_partition_start(p), 0);
    assert_int_equal(hv_partition_stop(p, 100), 0);
    assert_int_equal(hv_partition_destroy(p), 0);

    static const enum hv_partition_state want[][2] = {
        {HV_PARTITION_CREATED, HV_PARTITION_RUNNING},
        {HV_PARTITION_RUNNING, HV_PARTITION_STOPPED},
        {HV_PARTITION_STOPPED, HV_PARTITION_RUNNING},
        {HV_PARTITION_RUNNING, HV_PARTITION_STOPPED},
        {HV_PARTITION_STOPPED, HV_PARTITION_DESTROYED},
    };
    assert_int_equal(all.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_ptr_equal(all.t[i].p, p);
        assert_int_equal(all.t[i].from, want[i][0]);
        assert_int_equal(all.t[i].to, want[i][1]);
    }
    assert_int_equal(once.n, 1);
    assert_int_equal(once.t[0].to, HV_PARTITION_RUNNING);
    assert_int_equal(removed.n, 0);
    assert_null(hv_host_find_name(f->host, "listened"));
}

struct hvt_stop_seen {
    int calls;
    bool synic_on;
    int map_rc;
    uint8_t byte;
    enum hv_partition_state state;
};

static void hvt_stop_seen_fn(void *ctx, struct hv_partition *p, enum hv_partition_state from,
                             enum hv_partition_state to)
{
    struct hvt_stop_seen *s = ctx;
    (void)from;
    if (to != HV_PARTITION_STOPPED)
        return;
    s->calls++;
    s->state = hv_partition_state(p);
    s->synic_on = hv_synic_enabled(p, HVT_SINT);
    uint64_t pfn = 40;
    void *view = NULL;
    s->map_rc = hv_partition_map_pages(p, &pfn, 1, &view);
    if (s->map_rc == 0) {
        s->byte = *(uint8_t *)view;
        hv_partition_unmap(p, view, &pfn, 1, false);
    }
}

static void hv_partition_listen__stopped__memory_and_synic_still_there(void **state)
{
    struct hvt_fix *f = *state;
    struct hvt_stop_seen seen = {.map_rc = 1};
    assert_int_equal(hv_guest_synic_enable(f->g, 1u << HVT_SINT), HV_STATUS_SUCCESS);
    *(uint8_t *)hv_guest_pfn_ptr(f->g, 40) = 0x5a;
    assert_int_equal(hv_partition_listen(f->p, hvt_stop_seen_fn, &seen), 0);
    assert_int_equal(hv_partition_stop(f->p, 0), 0);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.state, HV_PARTITION_STOPPED);
    assert_true(seen.synic_on);
    assert_int_equal(seen.map_rc, 0);
    assert_int_equal(seen.byte, 0x5a);
    /* Released once the listeners ran. */
    assert_false(hv_synic_enabled(f->p, HVT_SINT));
    uint64_t pfn = 40;
    void *view = NULL;
    assert_int_equal(hv_partition_map_pages(f->p, &pfn, 1, &view), -ENODEV);
}

static void hv_partition_create__bad_names__einval(void **state)
{
    struct hvt_fix *f = *state;
    static const char *const bad[] = {
        "",         "has space",     "slash/name", "colon:name", "tab\tname",
        "nl\nname", "utf8-\xc3\xa4", "star*",      "dollar$",    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    struct hv_partition *p = NULL;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct hv_partition_params prm = {
            .name = bad[i], .memory_bytes = HVT_MEM, .cls = &hv_direct_partition_class};
        if (hv_partition_create(f->host, &prm, &p) != -EINVAL)
            fail_msg("name \"%s\" was not refused", bad[i]);
    }
    struct hv_partition_params prm = {.memory_bytes = HVT_MEM, .cls = &hv_direct_partition_class};
    assert_int_equal(hv_partition_create(f->host, &prm, &p), -EINVAL); /* NULL name */
    assert_int_equal(hv_partition_create(f->host, NULL, &p), -EINVAL);
    assert_int_equal(hv_host_list(f->host, NULL, 0), 0);

    /* The limits themselves are fine. */
    p = hvt_direct(f->host, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", HVT_MEM, false);
    assert_int_equal(strlen(hv_partition_name(p)), HV_PARTITION_NAME_MAX);
    p = hvt_direct(f->host, "A", HVT_MEM, false);
    p = hvt_direct(f->host, "ok_-.Name9", HVT_MEM, false);
    assert_string_equal(hv_partition_name(p), "ok_-.Name9");
}

static void hv_partition_create__duplicate_name__eexist(void **state)
{
    struct hvt_fix *f = *state;
    struct hv_partition *p = hvt_direct(f->host, "dup", HVT_MEM, false);
    struct hv_partition *q = NULL;
    struct hv_partition_params prm = {
        .name = "dup", .memory_bytes = HVT_MEM, .cls = &hv_direct_partition_class};
    assert_int_equal(hv_partition_create(f->host, &prm, &q), -EEXIST);
    static const char *const argv[] = {"/bin/true", NULL};
    struct hv_partition_params pprm = {.name = "dup", .memory_bytes = HVT_MEM, .argv = argv};
    assert_int_equal(hv_partition_create(f->host, &pprm, &q), -EEXIST);
    /* Names of running partitions are taken too. */
    assert_int_equal(
        hv_partition_create(f->host,
                            &(struct hv_partition_params){.name = "direct0",
                                                          .memory_bytes = HVT_MEM,
                                                          .cls = &hv_direct_partition_class},
                            &q),
        -EEXIST);
    /* The name is free again once destroyed. */
    assert_int_equal(hv_partition_destroy(p), 0);
    q = hvt_direct(f->host, "dup", HVT_MEM, false);
    assert_ptr_equal(hv_host_find_name(f->host, "dup"), q);
}

static void hv_partition_create__bad_memory_size__einval(void **state)
{
    struct hvt_fix *f = *state;
    static const uint64_t bad[] = {
        0,
        HV_PAGE_SIZE,
        HV_PARTITION_MEM_MIN - HV_PAGE_SIZE,
        HV_PARTITION_MEM_MIN + 1,
        HV_PARTITION_MEM_MIN + HV_PAGE_SIZE / 2,
        HV_PARTITION_MEM_MAX + HV_PAGE_SIZE,
        HV_PARTITION_MEM_MAX - 1,
        UINT64_MAX,
    };
    struct hv_partition *p = NULL;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct hv_partition_params prm = {
            .name = "sized", .memory_bytes = bad[i], .cls = &hv_direct_partition_class};
        if (hv_partition_create(f->host, &prm, &p) != -EINVAL)
            fail_msg("memory size %llu was not refused", (unsigned long long)bad[i]);
    }
    p = hvt_direct(f->host, "min", HV_PARTITION_MEM_MIN, false);
    assert_int_equal(hv_partition_memory_size(p), HV_PARTITION_MEM_MIN);
    assert_int_equal(hv_partition_memory_pages(p), HV_PARTITION_MEM_MIN >> HV_PAGE_SHIFT);
    p = hvt_direct(f->host, "max", HV_PARTITION_MEM_MAX, false);
    assert_int_equal(hv_partition_memory_size(p), HV_PARTITION_MEM_MAX);
    assert_int_equal(hv_partition_destroy(p), 0);
}

static void hv_partition_create__process_without_program__einval(void **state)
{
    struct hvt_fix *f = *state;
    struct hv_partition *p = NULL;
    struct hv_partition_params prm = {.name = "noprog", .memory_bytes = HVT_MEM};
    assert_int_equal(hv_partition_create(f->host, &prm, &p), -EINVAL);
    static const char *const empty[] = {NULL};
    prm.argv = empty;
    assert_int_equal(hv_partition_create(f->host, &prm, &p), -EINVAL);
    assert_null(hv_host_find_name(f->host, "noprog"));
}

static void hv_host_find__several_partitions__ids_in_order(void **state)
{
    struct hvt_fix *f = *state;
    struct hv_partition *a = hvt_direct(f->host, "a", HVT_MEM, false);
    struct hv_partition *b = hvt_direct(f->host, "b", HVT_MEM, true);
    assert_true(hv_partition_id(f->p) >= 1);
    assert_true(hv_partition_id(a) > hv_partition_id(f->p));
    assert_true(hv_partition_id(b) > hv_partition_id(a));
    assert_ptr_equal(hv_host_find(f->host, hv_partition_id(a)), a);
    assert_ptr_equal(hv_host_find(f->host, hv_partition_id(b)), b);
    assert_null(hv_host_find(f->host, 999));
    assert_null(hv_host_find_name(f->host, "c"));
    assert_ptr_equal(hv_partition_host(a), f->host);
    struct hv_partition *list[2];
    assert_int_equal(hv_host_list(f->host, list, 2), 3);
    assert_ptr_equal(list[0], f->p);
    assert_ptr_equal(list[1], a);
    struct hv_host_stats hs;
    hv_host_get_stats(f->host, &hs);
    assert_int_equal(hs.partitions_created, 3);
    assert_int_equal(hs.partitions_crashed, 0);
    assert_true(hv_host_fd(f->host) >= 0);
}

/*
 * A listener that restarts the partition when it stops (an "always
 * restart" policy). Either hv-core refuses the start while it is still
 * reporting the stop, or the restarted partition must be whole: its own
 * fresh memory and SINT eventfd, not the ones of the run that just ended.
 */
struct hvt_restart {
    bool armed;
    int rc;
};

static void hvt_restart_fn(void *ctx, struct hv_partition *p, enum hv_partition_state from,
                           enum hv_partition_state to)
{
    struct hvt_restart *r = ctx;
    (void)from;
    if (to != HV_PARTITION_STOPPED || !r->armed)
        return;
    r->armed = false;
    r->rc = hv_partition_start(p);
}

static void hv_partition_start__from_stopped_listener__refused_or_whole(void **state)
{
    struct hvt_fix *f = *state;
    struct hvt_restart r = {.armed = true, .rc = 1};
    memset(hv_guest_pfn_ptr(f->g, 7), 0x77, HV_PAGE_SIZE);
    assert_int_equal(hv_partition_listen(f->p, hvt_restart_fn, &r), 0);
    hv_partition_stop(f->p, 0);
    hv_partition_unlisten(f->p, hvt_restart_fn, &r);
    assert_false(r.armed);
    if (r.rc != 0) {
        assert_int_equal(hv_partition_state(f->p), HV_PARTITION_STOPPED);
        return;
    }
    assert_int_equal(hv_partition_state(f->p), HV_PARTITION_RUNNING);
    struct hv_guest *g2 = NULL;
    int rc = hv_direct_partition_attach(f->p, &g2);
    if (rc != 0)
        fail_msg("restarted from a listener, but the partition has no memory/SINT left "
                 "(attach: %s)",
                 strerror(-rc));
    bool fresh = *(uint8_t *)hv_guest_pfn_ptr(g2, 7) == 0;
    int st = hv_guest_synic_enable(g2, 1u << HVT_SINT);
    hv_guest_detach(g2);
    assert_true(fresh);
    assert_int_equal(st, HV_STATUS_SUCCESS);
}

/*
 * A listener that destroys the partition when it stops ("remove on exit").
 * Either refused while the stop is being reported, or hv-core must not touch
 * the partition afterwards. Runs in a child: hv-core reads and closes
 * through the freed partition (ASan: heap-use-after-free; without ASan, the
 * memory fd is closed a second time, which shows up as our own descriptor
 * that we placed on that number being closed).
 */
struct hvt_destroy {
    int mem_fd;
    int destroy_rc;
    int devnull;
};

static void hvt_destroy_fn(void *ctx, struct hv_partition *p, enum hv_partition_state from,
                           enum hv_partition_state to)
{
    struct hvt_destroy *d = ctx;
    (void)from;
    if (to != HV_PARTITION_STOPPED)
        return;
    d->destroy_rc = hv_partition_destroy(p);
    if (d->destroy_rc == 0 && d->mem_fd >= 0)
        dup2(d->devnull, d->mem_fd); /* the number hv-core just closed */
}

/* The descriptor number of partition `id`'s memfd in this process, if
 * exactly one matches. */
static int hvt_find_memfd(uint32_t id, const char *name)
{
    char want[96], link[256], path[300];
    snprintf(want, sizeof(want), "/memfd:hv-part-%u-%s ", id, name);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int found = -1, n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, link, sizeof(link) - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        if (strncmp(link, want, strlen(want)) == 0) {
            found = atoi(e->d_name);
            n++;
        }
    }
    closedir(d);
    return n == 1 ? found : -1;
}

static int hvt_destroy_child(void *ctx)
{
    (void)ctx;
    struct hv_host *h = NULL;
    struct hv_partition *p = NULL;
    if (hv_host_create(&h) != 0)
        return 10;
    struct hv_partition_params prm = {
        .name = "doomed", .memory_bytes = HVT_MEM, .cls = &hv_direct_partition_class};
    if (hv_partition_create(h, &prm, &p) != 0 || hv_partition_start(p) != 0)
        return 11;
    struct hvt_destroy d = {.destroy_rc = 1};
    d.mem_fd = hvt_find_memfd(hv_partition_id(p), "doomed");
    d.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (d.mem_fd < 0 || d.devnull < 0)
        return 12;
    if (hv_partition_listen(p, hvt_destroy_fn, &d) != 0)
        return 13;
    int stop_rc = hv_partition_stop(p, 0);
    if (d.destroy_rc == 0) {
        if (fcntl(d.mem_fd, F_GETFD) < 0) {
            fprintf(stderr,
                    "destroy from a stopped listener: hv-core closed descriptor %d "
                    "again after freeing the partition\n",
                    d.mem_fd);
            return 1;
        }
    } else {
        if (d.destroy_rc != -EBUSY || stop_rc != 0 || hv_partition_state(p) != HV_PARTITION_STOPPED)
            return 14;
        hv_partition_unlisten(p, hvt_destroy_fn, &d);
        if (hv_partition_destroy(p) != 0)
            return 15;
    }
    hv_host_destroy(h);
    return 0;
}

static void hv_partition_destroy__from_stopped_listener__no_use_after_free(void **state)
{
    (void)state;
    hvt_assert_exit(hvt_in_child(hvt_destroy_child, NULL), 0);
}

static void hv_host_run__guest_exits_3__stopped_crashed_status_3(void **state)
{
    struct hvt_fix *f = *state;
    static const char *const argv[] = {"/bin/sh", "-c", "exit 3", NULL};
    struct hv_partition *p = hvt_process(f->host, "exit3", argv, NULL);
    struct hvt_log log = {0};
    assert_int_equal(hv_partition_listen(p, hvt_log_fn, &log), 0);
    assert_int_equal(hv_process_partition_pid(p), -1);
    assert_int_equal(hv_partition_start(p), 0);
    assert_true(hv_process_partition_pid(p) > 0);
    assert_true(hvt_run_until_stopped(f->host, p, HVT_WAIT_MS));
    assert_int_equal(hv_partition_state(p), HV_PARTITION_STOPPED);
    int ws = hv_partition_exit_status(p);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 3);
    assert_true(hv_partition_crashed(p));
    assert_int_equal(hv_process_partition_pid(p), -1);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.t[1].from, HV_PARTITION_RUNNING);
    assert_int_equal(log.t[1].to, HV_PARTITION_STOPPED);
    struct hv_host_stats hs;
    hv_host_get_stats(f->host, &hs);
    assert_int_equal(hs.partitions_crashed, 1);
    /* Stopped partitions are not stopped again; they can be destroyed. */
    assert_int_equal(hv_partition_stop(p, 0), -EINVAL);
    assert_int_equal(hv_partition_destroy(p), 0);
}

static void hv_partition_stop__sleeping_guest__stopped_not_crashed(void **state)
{
    struct hvt_fix *f = *state;
    static const char *const argv[] = {"/bin/sleep", "60", NULL};
    struct hv_partition *p = hvt_process(f->host, "sleeper", argv, NULL);
    assert_int_equal(hv_partition_start(p), 0);
    pid_t pid = hv_process_partition_pid(p);
    assert_true(pid > 0);
    assert_true(hvt_wait_comm(pid, "sleep", HVT_WAIT_MS));
    int64_t t0 = hvt_now_ms();
    assert_int_equal(hv_partition_stop(p, 5000), 0);
    assert_true(hvt_now_ms() - t0 < 4000); /* SIGTERM did it, not the grace timeout */
    assert_int_equal(hv_partition_state(p), HV_PARTITION_STOPPED);
    assert_false(hv_partition_crashed(p));
    int ws = hv_partition_exit_status(p);
    assert_true(WIFSIGNALED(ws));
    assert_int_equal(WTERMSIG(ws), SIGTERM);
    assert_int_equal(kill(pid, 0), -1); /* reaped */
    assert_int_equal(errno, ESRCH);
    struct hv_host_stats hs;
    hv_host_get_stats(f->host, &hs);
    assert_int_equal(hs.partitions_crashed, 0);

    /* And it starts again, as a new child. */
    assert_int_equal(hv_partition_start(p), 0);
    assert_true(hv_process_partition_pid(p) > 0);
    assert_int_equal(hv_partition_exit_status(p), -1);
    assert_false(hv_partition_crashed(p));
    assert_int_equal(hv_partition_stop(p, 0), 0);
    ws = hv_partition_exit_status(p);
    assert_true(WIFSIGNALED(ws));
    assert_int_equal(WTERMSIG(ws), SIGKILL);
    assert_false(hv_partition_crashed(p));
}

static void hv_partition_stop__guest_ignores_sigterm__killed_after_grace(void **state)
{
    struct hvt_fix *f = *state;
    static const char *const argv[] = {"/bin/sh", "-c", "trap '' TERM; exec /bin/sleep 60", NULL};
    struct hv_partition *p = hvt_process(f->host, "stubborn", argv, NULL);
    assert_int_equal(hv_partition_start(p), 0);
    assert_true(hvt_wait_comm(hv_process_partition_pid(p), "sleep", HVT_WAIT_MS));
    int64_t t0 = hvt_now_ms();
    assert_int_equal(hv_partition_stop(p, 300), 0);
    int64_t took = hvt_now_ms() - t0;
    assert_true(took >= 250);
    assert_true(took < 10000);
    int ws = hv_partition_exit_status(p);
    assert_true(WIFSIGNALED(ws));
    assert_int_equal(WTERMSIG(ws), SIGKILL);
    assert_false(hv_partition_crashed(p));
}

static void hv_host_run__guest_killed__stopped_crashed(void **state)
{
    struct hvt_fix *f = *state;
    static const char *const argv[] = {"/bin/sleep", "60", NULL};
    struct hv_partition *p = hvt_process(f->host, "victim", argv, NULL);
    assert_int_equal(hv_partition_start(p), 0);
    pid_t pid = hv_process_partition_pid(p);
    assert_true(pid > 0);
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_true(hvt_run_until_stopped(f->host, p, HVT_WAIT_MS));
    assert_int_equal(hv_partition_state(p), HV_PARTITION_STOPPED);
    assert_true(hv_partition_crashed(p));
    int ws = hv_partition_exit_status(p);
    assert_true(WIFSIGNALED(ws));
    assert_int_equal(WTERMSIG(ws), SIGKILL);
    assert_int_equal(hv_process_partition_pid(p), -1);
    struct hv_host_stats hs;
    hv_host_get_stats(f->host, &hs);
    assert_int_equal(hs.partitions_crashed, 1);
    /* Nothing else pending for this host. */
    assert_int_equal(hv_host_run(f->host, 0), 0);
}

static void hv_partition_start__bad_program__stopped_status_127(void **state)
{
    struct hvt_fix *f = *state;
    static const char *const argv[] = {"/nonexistent/hvt-no-such-program", NULL};
    struct hv_partition *p = hvt_process(f->host, "noexec", argv, NULL);
    assert_int_equal(hv_partition_start(p), 0);
    assert_true(hvt_run_until_stopped(f->host, p, HVT_WAIT_MS));
    assert_int_equal(hv_partition_state(p), HV_PARTITION_STOPPED);
    int ws = hv_partition_exit_status(p);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 127);
    assert_true(hv_partition_crashed(p));
}

static void hv_partition_start__child__sees_only_its_fds(void **state)
{
    struct hvt_fix *f = *state;
    /* Bait: descriptors of ours without close-on-exec, low and high. */
    int bait = open("/dev/null", O_RDONLY);
    assert_true(bait >= 0);
    int bait_hi = fcntl(bait, F_DUPFD, 200);
    assert_true(bait_hi >= 200);
    static const char *const argv[] = {"/bin/sleep", "60", NULL};
    struct hv_partition *p = hvt_process(f->host, "fds", argv, NULL);
    assert_int_equal(hv_partition_start(p), 0);
    close(bait);
    close(bait_hi);
    pid_t pid = hv_process_partition_pid(p);
    assert_true(hvt_wait_comm(pid, "sleep", HVT_WAIT_MS));

    char path[300], link[256];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    bool have[6] = {false};
    int extra = -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int fd = atoi(e->d_name);
        if (fd >= 0 && fd < 6)
            have[fd] = true;
        else
            extra = fd;
    }
    closedir(d);
    if (extra >= 0)
        fail_msg("the guest process holds descriptor %d", extra);
    assert_true(have[HV_CHILD_FD_MEM] && have[HV_CHILD_FD_HYPERCALL] && have[HV_CHILD_FD_SINT]);

    static const struct {
        int fd;
        const char *prefix;
    } kinds[] = {
        {HV_CHILD_FD_MEM, "/memfd:hv-part-"},
        {HV_CHILD_FD_HYPERCALL, "socket:"},
        {HV_CHILD_FD_SINT, "anon_inode:[eventfd]"},
    };
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, kinds[i].fd);
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        assert_true(n > 0);
        link[n] = '\0';
        if (strncmp(link, kinds[i].prefix, strlen(kinds[i].prefix)) != 0)
            fail_msg("guest fd %d is %s, expected %s...", kinds[i].fd, link, kinds[i].prefix);
    }
    assert_int_equal(hv_partition_stop(p, 0), 0);
}

/* Read /proc/<pid>/environ and count entries starting with key. */
static int hvt_env_count(const char *env, size_t len, const char *key, const char **value)
{
    int n = 0;
    for (size_t off = 0; off < len; off += strlen(env + off) + 1) {
        if (strncmp(env + off, key, strlen(key)) == 0) {
            n++;
            *value = env + off + strlen(key);
        }
    }
    return n;
}

static void hv_partition_start__child__environment_set(void **state)
{
    struct hvt_fix *f = *state;
    static const char *const argv[] = {"/bin/sleep", "60", NULL};
    static const char *const envp[] = {"HVT_EXTRA=yes", NULL};
    struct hv_partition *p = hvt_process(f->host, "env-proc", argv, envp);
    /* A root that is itself a guest: its own HV_PARTITION_* must not leak. */
    assert_int_equal(setenv("HV_PARTITION_ID", "999", 1), 0);
    assert_int_equal(setenv("HV_PARTITION_NAME", "outer", 1), 0);
    int rc = hv_partition_start(p);
    unsetenv("HV_PARTITION_ID");
    unsetenv("HV_PARTITION_NAME");
    assert_int_equal(rc, 0);
    pid_t pid = hv_process_partition_pid(p);
    assert_true(hvt_wait_comm(pid, "sleep", HVT_WAIT_MS));

    char path[64], want_id[16];
    static char env[1 << 16];
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t len = fread(env, 1, sizeof(env) - 1, fp);
    fclose(fp);
    env[len] = '\0';
    const char *v = NULL;
    assert_int_equal(hvt_env_count(env, len, "HV_PARTITION_FDS=", &v), 1);
    assert_string_equal(v, "3,4,5");
    assert_int_equal(hvt_env_count(env, len, "HV_PARTITION_NAME=", &v), 1);
    assert_string_equal(v, "env-proc");
    assert_int_equal(hvt_env_count(env, len, "HV_PARTITION_ID=", &v), 1);
    snprintf(want_id, sizeof(want_id), "%u", hv_partition_id(p));
    assert_string_equal(v, want_id);
    assert_int_equal(hvt_env_count(env, len, "HVT_EXTRA=", &v), 1);
    assert_string_equal(v, "yes");
    assert_int_equal(hv_partition_stop(p, 0), 0);
}

/* The same from inside the guest, as a shell sees it. */
static void hv_partition_start__child_shell__environment_and_fds(void **state)
{
    struct hvt_fix *f = *state;
    static const char *const argv[] = {
        "/bin/sh", "-c",
        "test \"$HV_PARTITION_FDS\" = 3,4,5 || exit 10; "
        "test \"$HV_PARTITION_NAME\" = env-sh || exit 11; "
        "test \"$HV_PARTITION_ID\" = \"$HVT_WANT_ID\" || exit 12; "
        "for i in 3 4 5; do test -e /proc/self/fd/$i || exit 13; done; "
        "i=6; while [ $i -lt 256 ]; do test -e /proc/self/fd/$i && exit 14; i=$((i+1)); done; "
        "exit 0",
        NULL};
    char want[48];
    /* Ids are handed out in order from the host's counter: the next one is
     * one more than the newest partition's. */
    snprintf(want, sizeof(want), "HVT_WANT_ID=%u", hv_partition_id(f->p) + 1);
    const char *const envp[] = {want, NULL};
    struct hv_partition *p = hvt_process(f->host, "env-sh", argv, envp);
    assert_int_equal(hv_partition_id(p), hv_partition_id(f->p) + 1);
    assert_int_equal(hv_partition_start(p), 0);
    assert_true(hvt_run_until_stopped(f->host, p, HVT_WAIT_MS));
    int ws = hv_partition_exit_status(p);
    assert_true(WIFEXITED(ws));
    if (WEXITSTATUS(ws) != 0)
        fail_msg("guest shell check %d failed (10 fds var, 11 name, 12 id, 13 missing fd, "
                 "14 extra fd)",
                 WEXITSTATUS(ws));
}

/* --- virtual processors ------------------------------------------------- */

static struct hv_partition *hvt_direct_vps(struct hv_host *h, const char *name, uint32_t vps)
{
    struct hv_partition_params prm = {
        .name = name,
        .memory_bytes = HVT_MEM,
        .vp_count = vps,
        .cls = &hv_direct_partition_class,
    };
    struct hv_partition *p = NULL;
    assert_int_equal(hv_partition_create(h, &prm, &p), 0);
    return p;
}

static void hv_partition_create__vp_count__1_to_max_else_einval(void **state)
{
    struct hvt_fix *f = *state;
    struct hv_partition_params prm = {.name = "vps", .memory_bytes = HVT_MEM,
                                      .vp_count = HV_PARTITION_VPS_MAX + 1,
                                      .cls = &hv_direct_partition_class};
    struct hv_partition *p = NULL;
    assert_int_equal(hv_partition_create(f->host, &prm, &p), -EINVAL);
    prm.vp_count = UINT32_MAX;
    assert_int_equal(hv_partition_create(f->host, &prm, &p), -EINVAL);
    assert_int_equal(hv_host_list(f->host, NULL, 0), 0);
    assert_int_equal(hv_partition_vp_count(hvt_direct_vps(f->host, "vps0", 0)), 1);
    assert_int_equal(hv_partition_vp_count(hvt_direct_vps(f->host, "vps1", 1)), 1);
    assert_int_equal(hv_partition_vp_count(hvt_direct_vps(f->host, "vpsmax",
                                                          HV_PARTITION_VPS_MAX)),
                     HV_PARTITION_VPS_MAX);
}

static bool hvt_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

/*
 * Hyper-V has a SynIC per virtual processor: each VP names its own SIMP
 * and SIEF pages, and has its own message slots, queues and SINT. A message
 * or event for VP 1 lands in VP 1's pages and asserts VP 1's SINT eventfd
 * (which the guest got with VP 1's set-up), and nothing of VP 0's.
 */
static void hv_synic__two_vps__own_pages_slots_events_and_sint(void **state)
{
    struct hvt_fix *f = *state;
    struct hv_partition *p = hvt_direct_vps(f->host, "twovp", 2);
    assert_int_equal(hv_partition_start(p), 0);
    struct hv_guest *g = hvt_attach(p);
    assert_int_equal(hv_guest_vp_count(g), 2);
    assert_int_equal(hv_guest_vp_sint_fd(g, 1), -1); /* not set up yet */
    /* VP 1 before VP 0 is fine: each has its own. */
    assert_int_equal(hv_guest_synic_enable_vp(g, 1, 1u << HVT_SINT), HV_STATUS_SUCCESS);
    assert_true(hv_synic_enabled_vp(p, 1, HVT_SINT));
    assert_false(hv_synic_enabled_vp(p, 0, HVT_SINT));
    assert_int_equal(hv_guest_synic_enable_vp(g, 0, 1u << HVT_SINT), HV_STATUS_SUCCESS);
    assert_int_equal(hv_guest_synic_enable_vp(g, 2, 1u << HVT_SINT), -EINVAL);
    int fd0 = hv_guest_vp_sint_fd(g, 0), fd1 = hv_guest_vp_sint_fd(g, 1);
    assert_true(fd0 >= 0 && fd1 >= 0 && fd0 != fd1);
    hvt_take(fd0);
    hvt_take(fd1);

    /* Messages: VP 1's slot only. */
    assert_int_equal(hv_synic_post_vp(p, 1, HVT_SINT, HVMSG_VMBUS, "one", 3), 0);
    assert_int_equal(hv_synic_post_vp(p, 1, HVT_SINT, HVMSG_VMBUS, "two", 3), 0);
    assert_false(hvt_readable(fd0));
    assert_true(hvt_readable(fd1));
    hvt_take(fd1);
    struct hv_message m;
    assert_int_equal(hv_guest_recv_message_vp(g, 0, HVT_SINT, &m), -EAGAIN);
    assert_int_equal(hv_guest_recv_message_vp(g, 1, HVT_SINT, &m), 0);
    assert_memory_equal(m.payload, "one", 3);
    /* Its EOM (MessagePending was set) delivers VP 1's next one. */
    assert_true(hvt_readable(fd1));
    hvt_take(fd1);
    assert_int_equal(hv_guest_recv_message_vp(g, 1, HVT_SINT, &m), 0);
    assert_memory_equal(m.payload, "two", 3);
    assert_int_equal(hv_synic_queue_room_vp(p, 1, HVT_SINT), HV_SYNIC_QUEUE_LEN);
    assert_int_equal(hv_synic_post_vp(p, 2, HVT_SINT, HVMSG_VMBUS, "x", 1), -EINVAL);

    /* Events: VP 1's SIEF page and SINT only. */
    assert_int_equal(hv_synic_signal_vp(p, 1, HVT_SINT, 5), 0);
    assert_true(hvt_readable(fd1));
    assert_false(hvt_readable(fd0));
    assert_false(hv_guest_event_test_clear_vp(g, 0, HVT_SINT, 5));
    assert_true(hv_guest_event_test_clear_vp(g, 1, HVT_SINT, 5));
    hvt_take(fd1);
    assert_int_equal(hv_synic_signal_vp(p, 0, HVT_SINT, 5), 0);
    assert_true(hvt_readable(fd0));
    assert_false(hvt_readable(fd1));
    assert_true(hv_guest_event_test_clear_vp(g, 0, HVT_SINT, 5));
    assert_int_equal(hv_synic_signal_vp(p, 2, HVT_SINT, 5), -EINVAL);
    /* Waiting on both VPs wakes for either. */
    assert_int_equal(hv_guest_wait_vps(g, 3, 0), 1); /* consumes fd0's */
    assert_int_equal(hv_guest_wait_vps(g, 3, 0), 0);

    /* Stopped: both VPs' SynICs go. */
    hv_guest_detach(g);
    assert_int_equal(hv_partition_stop(p, 0), 0);
    assert_false(hv_synic_enabled_vp(p, 0, HVT_SINT));
    assert_false(hv_synic_enabled_vp(p, 1, HVT_SINT));
}

/* A VP the partition does not have is refused by number (TLFS
 * HV_STATUS_INVALID_VP_INDEX), in set-up and EOM alike. */
static void hv_synic_setup__vp_beyond_partition__invalid_vp_index(void **state)
{
    struct hvt_fix *f = *state;
    struct hv_partition *p = hvt_direct_vps(f->host, "threevp", 3);
    assert_int_equal(hv_partition_start(p), 0);
    struct hv_guest *g = hvt_attach(p);
    struct hv_hc_request r;
    uint64_t pg = HV_PAGE_SIZE;
    size_t len = hvt_setup_rec(&r, 8 * pg, 9 * pg, 1u << HVT_SINT);
    for (uint32_t vp = 3; vp != 0; vp = vp < 64 ? vp * 2 : (vp == 64 ? UINT32_MAX : 0)) {
        r.input.synic_setup.vp_index = vp;
        assert_int_equal(hvt_raw(g, &r, len), HV_STATUS_INVALID_VP_INDEX);
    }
    r.input.synic_setup.vp_index = 2;
    assert_int_equal(hvt_raw(g, &r, len), HV_STATUS_SUCCESS);
    assert_true(hv_synic_enabled_vp(p, 2, HVT_SINT));
    len = hvt_rec(&r, HVCALL_EXT_EOM, sizeof(struct hv_input_eom));
    r.input.eom.sint = HVT_SINT;
    r.input.eom.vp_index = 3;
    assert_int_equal(hvt_raw(g, &r, len), HV_STATUS_INVALID_VP_INDEX);
    r.input.eom.vp_index = 2;
    assert_int_equal(hvt_raw(g, &r, len), HV_STATUS_SUCCESS);
    hv_guest_detach(g);
    assert_int_equal(hv_partition_stop(p, 0), 0);
}

/* A process partition's guest learns how many VPs it has from
 * HV_PARTITION_VPS, as a real guest from its firmware tables. */
static void hv_partition_start__child_shell__vp_count_in_environment(void **state)
{
    struct hvt_fix *f = *state;
    static const char *const argv[] = {"/bin/sh", "-c",
                                       "test \"$HV_PARTITION_VPS\" = 3 || exit 10; exit 0", NULL};
    struct hv_partition_params prm = {
        .name = "vps-sh",
        .memory_bytes = 1ull << 20,
        .vp_count = 3,
        .argv = argv,
    };
    struct hv_partition *p = NULL;
    assert_int_equal(hv_partition_create(f->host, &prm, &p), 0);
    assert_int_equal(hv_partition_start(p), 0);
    assert_true(hvt_run_until_stopped(f->host, p, HVT_WAIT_MS));
    int ws = hv_partition_exit_status(p);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
}

static void hv_host_destroy__running_process__child_reaped(void **state)
{
    struct hvt_fix *f = *state;
    static const char *const argv[] = {"/bin/sleep", "60", NULL};
    struct hv_partition *p = hvt_process(f->host, "orphan", argv, NULL);
    assert_int_equal(hv_partition_start(p), 0);
    pid_t pid = hv_process_partition_pid(p);
    assert_true(pid > 0);
    hv_host_destroy(f->host);
    f->host = NULL;
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    hv_host_destroy(NULL);
}

/* The guest runs on the CPUs it is given, not on the root's. */
static void hv_partition_start__process_with_cpuset__child_affinity_is_it(void **state)
{
    struct hvt_fix *f = *state;
    cpu_set_t mine, want;
    assert_int_equal(sched_getaffinity(0, sizeof(mine), &mine), 0);
    int first = -1;
    for (int c = 0; c < CPU_SETSIZE && first < 0; c++)
        if (CPU_ISSET(c, &mine))
            first = c;
    assert_true(first >= 0);
    CPU_ZERO(&want);
    CPU_SET(first, &want);
    static const char *const argv[] = {"/bin/sleep", "60", NULL};
    struct hv_partition_params prm = {
        .name = "pinned",
        .memory_bytes = 1ull << 20,
        .argv = argv,
        .cpuset = &want,
        .cpuset_size = sizeof(want),
    };
    struct hv_partition *p = NULL;
    assert_int_equal(hv_partition_create(f->host, &prm, &p), 0);
    assert_int_equal(hv_partition_start(p), 0);
    pid_t pid = hv_process_partition_pid(p);
    cpu_set_t got;
    CPU_ZERO(&got);
    for (int i = 0; i < 200; i++) { /* until exec has happened */
        assert_int_equal(sched_getaffinity(pid, sizeof(got), &got), 0);
        if (CPU_EQUAL(&got, &want))
            break;
        usleep(5000);
    }
    assert_true(CPU_EQUAL(&got, &want));
    assert_int_equal(hv_partition_stop(p, 0), 0);
    assert_int_equal(hv_partition_destroy(p), 0);
    /* A set of size 0 is refused. */
    prm.cpuset_size = 0;
    assert_int_equal(hv_partition_create(f->host, &prm, &p), -EINVAL);
}

/* The root side of hv-abuse-guest (see hv_abuse_guest.c). */
struct hvt_abuse {
    int posts;
    int pong_rc;
};

static int hvt_abuse_msg(void *ctx, struct hv_partition *p, uint32_t conn_id, uint32_t msg_type,
                         const void *payload, uint32_t len)
{
    struct hvt_abuse *a = ctx;
    (void)conn_id;
    (void)msg_type;
    a->posts++;
    if (len == 5 && memcmp(payload, "ready", 5) == 0)
        a->pong_rc = hv_synic_post(p, HVT_SINT, HVMSG_VMBUS, "pong", 4);
    return HV_STATUS_SUCCESS;
}

static struct hv_partition *hvt_run_abuse_jailed(struct hvt_fix *f, const char *mode,
                                                 const char *arg, struct hvt_abuse *a, int efd,
                                                 const struct hv_process_jail *jail)
{
#ifndef HV_ABUSE_GUEST
    (void)f;
    (void)mode;
    (void)arg;
    (void)a;
    (void)efd;
    (void)jail;
    skip();
    return NULL;
#else
    const char *const argv[] = {HV_ABUSE_GUEST, mode, arg, NULL};
    struct hv_partition *p = hvt_process(f->host, "abuse", argv, NULL);
    if (jail)
        assert_int_equal(hv_process_partition_set_jail(p, jail), 0);
    assert_int_equal(hv_partition_port_msg(p, HVT_CONN_MSG, hvt_abuse_msg, a), 0);
    assert_int_equal(hv_partition_port_event(p, HVT_CONN_EVENT, efd), 0);
    assert_int_equal(hv_partition_start(p), 0);
    if (!hvt_run_until_stopped(f->host, p, 60000)) {
        hv_partition_stop(p, 0);
        fail_msg("hv-abuse-guest did not finish");
    }
    return p;
#endif
}

static struct hv_partition *hvt_run_abuse(struct hvt_fix *f, const char *mode, const char *arg,
                                          struct hvt_abuse *a, int efd)
{
    return hvt_run_abuse_jailed(f, mode, arg, a, efd, NULL);
}

/* The abuse sequence and the counters it must leave (see hv_abuse_guest.c). */
static void hvt_check_abuse(struct hv_partition *p, struct hvt_abuse *a, int efd)
{
    int ws = hv_partition_exit_status(p);
    uint64_t signals = hvt_take(efd);
    assert_true(WIFEXITED(ws));
    if (WEXITSTATUS(ws) != 0)
        fail_msg("hv-abuse-guest exited %d (its stderr says why)", WEXITSTATUS(ws));
    struct hv_partition_stats s = hvt_stats(p);
    /* Oversized by 64 and by 1, and one with more descriptors than fit. */
    assert_int_equal(s.bad_records, 3);
    assert_int_equal(s.bad_callers, 1);
    /* Broker: short, bad magic, reserved, input_size, code, signal with an
     * fd, SynIC setup, 2 posts to unknown, post "ready", event fd, signal. */
    assert_int_equal(s.hypercalls, 12);
    assert_int_equal(s.hypercalls_failed, 7);
    assert_int_equal(s.messages_posted, 1);
    assert_int_equal(s.messages_delivered, 1);
    assert_int_equal(s.guest_signals, 2);
    assert_int_equal(a->posts, 1);
    assert_int_equal(a->pong_rc, 0);
    /* Signal with a descriptor, eventfd write, signal: not the bad ones. */
    assert_int_equal(signals, 3);
}

static void hv_host_run__abuse_guest__answered_and_counted(void **state)
{
    struct hvt_fix *f = *state;
    struct hvt_abuse a = {.pong_rc = 1};
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(efd >= 0);
    struct hv_partition *p = hvt_run_abuse(f, NULL, NULL, &a, efd);
    hvt_check_abuse(p, &a, efd);
    close(efd);
}

static void hv_host_run__zero_length_record__answered(void **state)
{
    struct hvt_fix *f = *state;
    struct hvt_abuse a = {.pong_rc = 1};
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(efd >= 0);
    struct hv_partition *p = hvt_run_abuse(f, "--empty-record", NULL, &a, efd);
    close(efd);
    int ws = hv_partition_exit_status(p);
    assert_true(WIFEXITED(ws));
    if (WEXITSTATUS(ws) != 0)
        fail_msg("hv-abuse-guest --empty-record exited %d: a zero-length record was not "
                 "answered, or the root stopped serving the guest after it",
                 WEXITSTATUS(ws));
    struct hv_partition_stats s = hvt_stats(p);
    assert_true(s.bad_records + s.hypercalls_failed >= 2);
}

/* This process's stderr (fd 2), where the root's log goes by default,
 * captured in a temporary file; the limiters' clock stands still, so every
 * line falls in one window whatever the machine's load. */
struct hvt_capture {
    int saved;
    FILE *f;
};

static uint64_t hvt_frozen_clock(void)
{
    return 42ull * 1000000000ull;
}

static void hvt_log_capture(struct hvt_capture *c)
{
    fflush(stderr);
    c->f = tmpfile();
    assert_non_null(c->f);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_true(dup2(fileno(c->f), STDERR_FILENO) >= 0);
    hv_log_set_clock(hvt_frozen_clock);
}

/* Stop capturing; the number of lines containing needle, the first of them
 * copied to first. */
static unsigned hvt_log_release(struct hvt_capture *c, const char *needle, char *first,
                                size_t first_size)
{
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    hv_log_set_clock(NULL);
    rewind(c->f);
    char line[1024];
    unsigned n = 0;
    if (first_size)
        first[0] = '\0';
    while (fgets(line, sizeof(line), c->f)) {
        if (!strstr(line, needle))
            continue;
        if (n++ == 0 && first_size) {
            line[strcspn(line, "\n")] = '\0';
            size_t k = strlen(line) < first_size - 1 ? strlen(line) : first_size - 1;
            memcpy(first, line, k);
            first[k] = '\0';
        }
    }
    fclose(c->f);
    return n;
}

/*
 * A guest that never reads its hypercall answers: once its socket is full,
 * every answer the root cannot deliver was a line in the root's log (1.4
 * MB/s). Now a burst of them is logged and the rest counted; the guest is
 * still served to the end.
 */
static void hv_host_run__guest_never_reads_answers__log_bounded_and_counted(void **state)
{
    struct hvt_fix *f = *state;
    enum { N = 3000 };
    struct hvt_abuse a = {.pong_rc = 1};
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(efd >= 0);
    char n[16];
    snprintf(n, sizeof(n), "%d", N);
    struct hvt_capture cap;
    hvt_log_capture(&cap);
    struct hv_partition *p = hvt_run_abuse(f, "--flood-unread", n, &a, efd);
    char first[256];
    unsigned lines = hvt_log_release(&cap, "hypercall answer", first, sizeof(first));
    close(efd);
    int ws = hv_partition_exit_status(p);
    assert_true(WIFEXITED(ws));
    if (WEXITSTATUS(ws) != 0)
        fail_msg("hv-abuse-guest --flood-unread exited %d", WEXITSTATUS(ws));
    struct hv_partition_stats s = hvt_stats(p);
    print_message("%u log lines, %llu suppressed; first: %s\n", lines,
                  (unsigned long long)s.log_suppressed, first);
    /* The guest may exit before the root has taken its last records. */
    assert_true(s.hypercalls > N / 2 && s.hypercalls <= N);
    if (lines > HV_RATELIMIT_BURST)
        fail_msg("%u lines about undeliverable answers: at most %u expected", lines,
                 HV_RATELIMIT_BURST);
    assert_int_equal(lines, HV_RATELIMIT_BURST);
    assert_true(strstr(first, "partition abuse") != NULL);
    /* Most answers could not be delivered: counted, not logged. */
    assert_true(s.log_suppressed > 0);
    assert_true(s.log_suppressed + lines <= s.hypercalls);
}

/*
 * What a guest's worker process prints reaches the root's log only through
 * the root: prefixed with the partition's name, control characters replaced,
 * a line without its newline at exit kept, and a flood of lines limited and
 * counted.
 */
static void hv_partition_start__child_output__root_log_prefixed_sanitised_limited(void **state)
{
    struct hvt_fix *f = *state;
    static const char *const argv1[] = {
        "/bin/sh", "-c", "printf 'hello\\033[2Jworld\\n'; printf 'no newline at exit'", NULL};
    struct hvt_capture cap;
    hvt_log_capture(&cap);
    struct hv_partition *p = hvt_process(f->host, "out1", argv1, NULL);
    assert_int_equal(hv_partition_start(p), 0);
    bool stopped = hvt_run_until_stopped(f->host, p, HVT_WAIT_MS);
    char first[256], last[256];
    unsigned hello = hvt_log_release(&cap, "hello", first, sizeof(first));
    assert_true(stopped);
    assert_int_equal(hello, 1);
    assert_string_equal(first, "partition out1: hello?[2Jworld");
    hvt_log_capture(&cap);
    p = hvt_process(f->host, "out2", argv1, NULL);
    assert_int_equal(hv_partition_start(p), 0);
    stopped = hvt_run_until_stopped(f->host, p, HVT_WAIT_MS);
    unsigned tail = hvt_log_release(&cap, "no newline", last, sizeof(last));
    assert_true(stopped);
    assert_int_equal(tail, 1);
    assert_string_equal(last, "partition out2: no newline at exit");

    enum { N = 2000 };
    static const char *const argv2[] = {
        "/bin/sh", "-c", "i=0; while [ $i -lt 2000 ]; do echo \"flood line $i\"; i=$((i+1)); done",
        NULL};
    hvt_log_capture(&cap);
    p = hvt_process(f->host, "flood", argv2, NULL);
    assert_int_equal(hv_partition_start(p), 0);
    stopped = hvt_run_until_stopped(f->host, p, 60000);
    unsigned lines = hvt_log_release(&cap, "flood line", first, sizeof(first));
    assert_true(stopped);
    struct hv_partition_stats s = hvt_stats(p);
    print_message("%u of %d lines logged, %llu suppressed\n", lines, N,
                  (unsigned long long)s.log_suppressed);
    if (lines > HV_RATELIMIT_BURST)
        fail_msg("%u of the guest's %d lines in the root's log: at most %u expected", lines, N,
                 HV_RATELIMIT_BURST);
    assert_int_equal(lines, HV_RATELIMIT_BURST);
    assert_string_equal(first, "partition flood: flood line 0");
    assert_int_equal(s.log_suppressed, N - HV_RATELIMIT_BURST);
}

struct hvt_msg_seen {
    int calls;
    struct hv_partition *p;
    uint32_t conn, type, len;
    uint8_t payload[HV_MESSAGE_PAYLOAD_MAX];
    int status;
};

static int hvt_msg_fn(void *ctx, struct hv_partition *p, uint32_t conn_id, uint32_t msg_type,
                      const void *payload, uint32_t len)
{
    struct hvt_msg_seen *m = ctx;
    m->calls++;
    m->p = p;
    m->conn = conn_id;
    m->type = msg_type;
    m->len = len;
    if (len <= sizeof(m->payload))
        memcpy(m->payload, payload, len);
    return m->status;
}

static void hv_hypercall__malformed_records__invalid_input(void **state)
{
    struct hvt_fix *f = *state;
    struct hvt_msg_seen seen = {0};
    assert_int_equal(hv_partition_port_msg(f->p, HVT_CONN_MSG, hvt_msg_fn, &seen), 0);
    struct hv_hc_request r;
    size_t len;

    len = hvt_post_rec(&r, HVT_CONN_MSG, HVMSG_VMBUS, 4);
    r.magic ^= 1;
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_HYPERCALL_INPUT);
    assert_int_equal(hvt_broker(f->p, &r, len), HV_STATUS_INVALID_HYPERCALL_INPUT);

    len = hvt_post_rec(&r, HVT_CONN_MSG, HVMSG_VMBUS, 4);
    r.reserved = 0x100;
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_HYPERCALL_INPUT);

    len = hvt_post_rec(&r, HVT_CONN_MSG, HVMSG_VMBUS, 4);
    r.input.post_message.reserved = 1;
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_HYPERCALL_INPUT);

    len = hvt_signal_rec(&r, HVT_CONN_EVENT, 0);
    r.input.signal_event.reserved = 1;
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_HYPERCALL_INPUT);

    /* input_size must be exactly what follows the header. */
    len = hvt_post_rec(&r, HVT_CONN_MSG, HVMSG_VMBUS, 4);
    assert_int_equal(hvt_raw(f->g, &r, len - 1), HV_STATUS_INVALID_HYPERCALL_INPUT);
    assert_int_equal(hvt_raw(f->g, &r, len + 1), HV_STATUS_INVALID_HYPERCALL_INPUT);
    r.input_size++;
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_HYPERCALL_INPUT);
    r.input_size = UINT32_MAX;
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_HYPERCALL_INPUT);
    len = hvt_post_rec(&r, HVT_CONN_MSG, HVMSG_VMBUS, 0);
    r.input_size = (uint32_t)HVT_POST_HDR - 1; /* shorter than the post input */
    assert_int_equal(hvt_raw(f->g, &r, HVT_HDR + r.input_size), HV_STATUS_INVALID_HYPERCALL_INPUT);
    len = hvt_signal_rec(&r, HVT_CONN_EVENT, 0);
    r.input_size = 4;
    assert_int_equal(hvt_raw(f->g, &r, HVT_HDR + 4), HV_STATUS_INVALID_HYPERCALL_INPUT);

    /* Shorter than the header (only the broker can be handed these). */
    len = hvt_post_rec(&r, HVT_CONN_MSG, HVMSG_VMBUS, 4);
    assert_int_equal(hvt_broker(f->p, &r, 0), HV_STATUS_INVALID_HYPERCALL_INPUT);
    assert_int_equal(hvt_broker(f->p, &r, 1), HV_STATUS_INVALID_HYPERCALL_INPUT);
    assert_int_equal(hvt_broker(f->p, &r, HVT_HDR - 1), HV_STATUS_INVALID_HYPERCALL_INPUT);
    assert_int_equal(hv_guest_raw_hypercall(f->g, &r, (uint32_t)HVT_HDR - 1, NULL), -EINVAL);

    /* Longer than any record. */
    union {
        struct hv_hc_request req;
        uint8_t raw[2 * sizeof(struct hv_hc_request)];
    } big;
    memset(&big, 0, sizeof(big));
    hvt_post_rec(&big.req, HVT_CONN_MSG, HVMSG_VMBUS, 4);
    big.req.input_size = sizeof(struct hv_hc_request) + 1 - HVT_HDR;
    assert_int_equal(hvt_raw(f->g, big.raw, sizeof(struct hv_hc_request) + 1),
                     HV_STATUS_INVALID_HYPERCALL_INPUT);
    /* A complete, self-consistent record followed by one more byte. */
    hvt_post_rec(&big.req, HVT_CONN_MSG, HVMSG_VMBUS, HV_MESSAGE_PAYLOAD_MAX);
    assert_int_equal(hvt_raw(f->g, big.raw, sizeof(struct hv_hc_request) + 1),
                     HV_STATUS_INVALID_HYPERCALL_INPUT);
    big.req.input_size = sizeof(big.raw) - HVT_HDR;
    assert_int_equal(hvt_broker(f->p, big.raw, sizeof(big.raw)), HV_STATUS_INVALID_HYPERCALL_INPUT);
    assert_int_equal(hvt_broker(f->p, big.raw, SIZE_MAX), HV_STATUS_INVALID_HYPERCALL_INPUT);
    /* The full-size record itself is fine. */
    len = hvt_post_rec(&r, HVT_CONN_MSG, HVMSG_VMBUS, HV_MESSAGE_PAYLOAD_MAX);
    assert_int_equal(len, sizeof(r));
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_SUCCESS);

    /* None of the bad ones reached the port. */
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.len, HV_MESSAGE_PAYLOAD_MAX);
}

static void hv_hypercall__unknown_code__invalid_code(void **state)
{
    struct hvt_fix *f = *state;
    static const uint16_t codes[] = {0, 1, 0x5b, 0x5e, 0x8000, 0x8004, 0xffff};
    struct hv_hc_request r;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        size_t len = hvt_rec(&r, codes[i], 8);
        if (hvt_raw(f->g, &r, len) != HV_STATUS_INVALID_HYPERCALL_CODE)
            fail_msg("call code %#x was not refused", codes[i]);
    }
}

static void hv_hypercall__post_bad_message__invalid_parameter(void **state)
{
    struct hvt_fix *f = *state;
    struct hvt_msg_seen seen = {0};
    assert_int_equal(hv_partition_port_msg(f->p, HVT_CONN_MSG, hvt_msg_fn, &seen), 0);
    struct hv_hc_request r;
    size_t len;

    /* payload_size beyond 240, with the record at its full size. */
    static const uint32_t sizes[] = {HV_MESSAGE_PAYLOAD_MAX + 1, 255, 256, 0x10000, UINT32_MAX};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        len = hvt_post_rec(&r, HVT_CONN_MSG, HVMSG_VMBUS, HV_MESSAGE_PAYLOAD_MAX);
        r.input.post_message.payload_size = sizes[i];
        if (hvt_raw(f->g, &r, len) != HV_STATUS_INVALID_PARAMETER)
            fail_msg("payload_size %u was not refused", sizes[i]);
    }
    /* payload_size larger than what the record carries. */
    len = hvt_post_rec(&r, HVT_CONN_MSG, HVMSG_VMBUS, 8);
    r.input.post_message.payload_size = 9;
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_PARAMETER);

    static const uint32_t types[] = {HVMSG_NONE, 0x80000000u, 0x80000001u, UINT32_MAX};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        len = hvt_post_rec(&r, HVT_CONN_MSG, types[i], 4);
        if (hvt_raw(f->g, &r, len) != HV_STATUS_INVALID_PARAMETER)
            fail_msg("message type %#x was not refused", types[i]);
    }
    assert_int_equal(seen.calls, 0);
    /* The largest allowed type goes through. */
    len = hvt_post_rec(&r, HVT_CONN_MSG, 0x7fffffffu, 4);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_SUCCESS);
    assert_int_equal(seen.type, 0x7fffffffu);
}

static void hv_hypercall__unknown_connection__invalid_connection_id(void **state)
{
    struct hvt_fix *f = *state;
    struct hvt_msg_seen seen = {0};
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(efd >= 0);
    assert_int_equal(hv_partition_port_msg(f->p, HVT_CONN_MSG, hvt_msg_fn, &seen), 0);
    assert_int_equal(hv_partition_port_event(f->p, HVT_CONN_EVENT, efd), 0);

    assert_int_equal(hv_guest_post_message(f->g, HVT_CONN_UNKNOWN, HVMSG_VMBUS, "x", 1),
                     HV_STATUS_INVALID_CONNECTION_ID);
    assert_int_equal(hv_guest_post_message(f->g, 0, HVMSG_VMBUS, "x", 1),
                     HV_STATUS_INVALID_CONNECTION_ID);
    assert_int_equal(hv_guest_signal_event(f->g, HVT_CONN_UNKNOWN, 0),
                     HV_STATUS_INVALID_CONNECTION_ID);
    assert_int_equal(hv_guest_signal_event(f->g, 0, 0), HV_STATUS_INVALID_CONNECTION_ID);
    int fd = -1;
    assert_int_equal(hv_guest_get_event_fd(f->g, HVT_CONN_UNKNOWN, &fd),
                     HV_STATUS_INVALID_CONNECTION_ID);
    assert_int_equal(fd, -1);

    /* The wrong kind of port is no port at all. */
    assert_int_equal(hv_guest_post_message(f->g, HVT_CONN_EVENT, HVMSG_VMBUS, "x", 1),
                     HV_STATUS_INVALID_CONNECTION_ID);
    assert_int_equal(hv_guest_signal_event(f->g, HVT_CONN_MSG, 0), HV_STATUS_INVALID_CONNECTION_ID);
    assert_int_equal(hv_guest_get_event_fd(f->g, HVT_CONN_MSG, &fd),
                     HV_STATUS_INVALID_CONNECTION_ID);
    assert_int_equal(fd, -1);

    /* A removed port is gone. */
    hv_partition_port_remove(f->p, HVT_CONN_MSG);
    assert_int_equal(hv_guest_post_message(f->g, HVT_CONN_MSG, HVMSG_VMBUS, "x", 1),
                     HV_STATUS_INVALID_CONNECTION_ID);
    assert_int_equal(seen.calls, 0);
    assert_int_equal(hvt_take(efd), 0);
    struct hv_partition_stats s = hvt_stats(f->p);
    assert_int_equal(s.messages_posted, 0);
    assert_int_equal(s.guest_signals, 0);
    close(efd);
}

static void hv_hypercall__signal_flag_nonzero__invalid_parameter(void **state)
{
    struct hvt_fix *f = *state;
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(efd >= 0);
    assert_int_equal(hv_partition_port_event(f->p, HVT_CONN_EVENT, efd), 0);
    assert_int_equal(hv_guest_signal_event(f->g, HVT_CONN_EVENT, 1), HV_STATUS_INVALID_PARAMETER);
    assert_int_equal(hv_guest_signal_event(f->g, HVT_CONN_EVENT, 0xffff),
                     HV_STATUS_INVALID_PARAMETER);
    assert_int_equal(hvt_take(efd), 0);
    assert_int_equal(hv_guest_signal_event(f->g, HVT_CONN_EVENT, 0), HV_STATUS_SUCCESS);
    assert_int_equal(hv_guest_signal_event(f->g, HVT_CONN_EVENT, 0), HV_STATUS_SUCCESS);
    assert_int_equal(hvt_take(efd), 2);
    assert_int_equal(hvt_stats(f->p).guest_signals, 2);

    /* The eventfd itself, handed to the guest: signalling without a call. */
    int gfd = -1;
    assert_int_equal(hv_guest_get_event_fd(f->g, HVT_CONN_EVENT, &gfd), HV_STATUS_SUCCESS);
    assert_true(gfd >= 0);
    assert_int_not_equal(gfd, efd);
    uint64_t one = 1;
    assert_int_equal(write(gfd, &one, sizeof(one)), sizeof(one));
    assert_int_equal(hvt_take(efd), 1);
    close(gfd);
    close(efd);
}

static void hv_hypercall__not_running__invalid_partition_state(void **state)
{
    struct hvt_fix *f = *state;
    struct hvt_msg_seen seen = {0};
    assert_int_equal(hv_partition_port_msg(f->p, HVT_CONN_MSG, hvt_msg_fn, &seen), 0);
    struct hv_hc_request r;
    size_t len = hvt_post_rec(&r, HVT_CONN_MSG, HVMSG_VMBUS, 4);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_SUCCESS);
    assert_int_equal(hv_partition_stop(f->p, 0), 0);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_PARTITION_STATE);
    assert_int_equal(hv_guest_synic_enable(f->g, 1u << HVT_SINT),
                     HV_STATUS_INVALID_PARTITION_STATE);
    len = hvt_rec(&r, 0x4242, 0);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_PARTITION_STATE);
    assert_int_equal(seen.calls, 1);

    struct hv_partition *q = hvt_direct(f->host, "created", HVT_MEM, false);
    len = hvt_post_rec(&r, HVT_CONN_MSG, HVMSG_VMBUS, 4);
    assert_int_equal(hvt_broker(q, &r, len), HV_STATUS_INVALID_PARTITION_STATE);
    struct hv_partition_stats s = hvt_stats(q);
    assert_int_equal(s.hypercalls, 1);
    assert_int_equal(s.hypercalls_failed, 1);
}

static void hv_hypercall__handler_status__returned(void **state)
{
    struct hvt_fix *f = *state;
    struct hvt_msg_seen seen = {.status = HV_STATUS_INSUFFICIENT_BUFFERS};
    assert_int_equal(hv_partition_port_msg(f->p, HVT_CONN_MSG, hvt_msg_fn, &seen), 0);
    assert_int_equal(hv_guest_post_message(f->g, HVT_CONN_MSG, 5, "hello", 5),
                     HV_STATUS_INSUFFICIENT_BUFFERS);
    assert_int_equal(seen.calls, 1);
    assert_ptr_equal(seen.p, f->p);
    assert_int_equal(seen.conn, HVT_CONN_MSG);
    assert_int_equal(seen.type, 5);
    assert_int_equal(seen.len, 5);
    assert_memory_equal(seen.payload, "hello", 5);
    assert_int_equal(hvt_stats(f->p).messages_posted, 0);

    seen.status = HV_STATUS_INSUFFICIENT_MEMORY;
    assert_int_equal(hv_guest_post_message(f->g, HVT_CONN_MSG, 5, "x", 1),
                     HV_STATUS_INSUFFICIENT_MEMORY);
    seen.status = HV_STATUS_SUCCESS;
    uint8_t full[HV_MESSAGE_PAYLOAD_MAX];
    for (size_t i = 0; i < sizeof(full); i++)
        full[i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(hv_guest_post_message(f->g, HVT_CONN_MSG, HVMSG_VMBUS, full, sizeof(full)),
                     HV_STATUS_SUCCESS);
    assert_int_equal(seen.len, sizeof(full));
    assert_memory_equal(seen.payload, full, sizeof(full));
    assert_int_equal(hv_guest_post_message(f->g, HVT_CONN_MSG, HVMSG_VMBUS, full, 0),
                     HV_STATUS_SUCCESS);
    assert_int_equal(seen.len, 0);
    assert_int_equal(hvt_stats(f->p).messages_posted, 2);
    assert_int_equal(
        hv_guest_post_message(f->g, HVT_CONN_MSG, HVMSG_VMBUS, full, HV_MESSAGE_PAYLOAD_MAX + 1),
        -EINVAL);
}

static void hv_hypercall__mixed_calls__stats_count_them(void **state)
{
    struct hvt_fix *f = *state;
    struct hvt_msg_seen seen = {0};
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(efd >= 0);
    assert_int_equal(hv_partition_port_msg(f->p, HVT_CONN_MSG, hvt_msg_fn, &seen), 0);
    assert_int_equal(hv_partition_port_event(f->p, HVT_CONN_EVENT, efd), 0);
    struct hv_partition_stats s = hvt_stats(f->p);
    assert_int_equal(s.hypercalls, 0);
    assert_int_equal(s.hypercalls_failed, 0);

    struct hv_hc_request r;
    size_t len = hvt_rec(&r, HVCALL_POST_MESSAGE, 0);
    r.magic = 0;
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_HYPERCALL_INPUT); /* fail */
    assert_int_equal(hv_guest_post_message(f->g, HVT_CONN_MSG, 1, "a", 1), 0);   /* ok */
    assert_int_equal(hv_guest_post_message(f->g, 99, 1, "a", 1),
                     HV_STATUS_INVALID_CONNECTION_ID);                            /* fail */
    assert_int_equal(hv_guest_signal_event(f->g, HVT_CONN_EVENT, 0), 0);          /* ok */
    assert_int_equal(hv_guest_synic_enable(f->g, 1u << HVT_SINT), 0);             /* ok */
    assert_int_equal(hvt_broker(f->p, &r, 3), HV_STATUS_INVALID_HYPERCALL_INPUT); /* fail */
    s = hvt_stats(f->p);
    assert_int_equal(s.hypercalls, 6);
    assert_int_equal(s.hypercalls_failed, 3);
    assert_int_equal(s.messages_posted, 1);
    assert_int_equal(s.guest_signals, 1);
    assert_int_equal(s.bad_records, 0);
    assert_int_equal(s.bad_callers, 0);
    close(efd);
}

static void hv_partition_port__bad_registrations__refused(void **state)
{
    struct hvt_fix *f = *state;
    struct hvt_msg_seen seen = {0};
    assert_int_equal(hv_partition_port_msg(f->p, 0, hvt_msg_fn, &seen), -EINVAL);
    assert_int_equal(hv_partition_port_msg(f->p, 5, NULL, &seen), -EINVAL);
    assert_int_equal(hv_partition_port_event(f->p, 5, -1), -EINVAL);
    assert_int_equal(hv_partition_port_msg(f->p, 5, hvt_msg_fn, &seen), 0);
    assert_int_equal(hv_partition_port_msg(f->p, 5, hvt_msg_fn, &seen), -EEXIST);
    assert_int_equal(hv_partition_port_event(f->p, 5, 0), -EEXIST);
    for (uint32_t c = 100; c < 100 + HV_PARTITION_PORTS_MAX - 1; c++)
        assert_int_equal(hv_partition_port_msg(f->p, c, hvt_msg_fn, &seen), 0);
    assert_int_equal(hv_partition_port_msg(f->p, 6, hvt_msg_fn, &seen), -ENOSPC);
    hv_partition_port_remove(f->p, 5);
    hv_partition_port_remove(f->p, 5);
    assert_int_equal(hv_partition_port_msg(f->p, 6, hvt_msg_fn, &seen), 0);
}

static void hv_hypercall__eom_bad_input__refused(void **state)
{
    struct hvt_fix *f = *state;
    struct hv_hc_request r;
    size_t len = hvt_rec(&r, HVCALL_EXT_EOM, sizeof(struct hv_input_eom));
    r.input.eom.sint = HVT_SINT;
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_PARTITION_STATE); /* no SynIC */
    assert_int_equal(hv_guest_synic_enable(f->g, 1u << HVT_SINT), 0);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_SUCCESS); /* spurious EOM is harmless */
    r.input.eom.sint = 3;
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_PARTITION_STATE); /* not enabled */
    r.input.eom.sint = HV_SINT_COUNT;
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_PARAMETER);
    r.input.eom.sint = HVT_SINT;
    r.input.eom.vp_index = 1; /* the partition has VP 0 only */
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_VP_INDEX);

    len = hvt_rec(&r, HVCALL_EXT_EVENT_FD, sizeof(struct hv_input_event_fd));
    r.input.event_fd.connection_id = HVT_CONN_UNKNOWN;
    r.input.event_fd.reserved = 1;
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_HYPERCALL_INPUT);
}

static void hv_synic_setup__unaligned__invalid_alignment(void **state)
{
    struct hvt_fix *f = *state;
    struct hv_hc_request r;
    uint64_t pg = HV_PAGE_SIZE;
    size_t len = hvt_setup_rec(&r, 8 * pg + 1, 9 * pg, 1u << HVT_SINT);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_ALIGNMENT);
    len = hvt_setup_rec(&r, 8 * pg, 9 * pg + 0x800, 1u << HVT_SINT);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_ALIGNMENT);
    len = hvt_setup_rec(&r, 8 * pg + pg - 1, 9 * pg + 4, 1u << HVT_SINT);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_ALIGNMENT);
    assert_false(hv_synic_enabled(f->p, HVT_SINT));
}

static void hv_synic_setup__bad_pages_or_mask__invalid_parameter(void **state)
{
    struct hvt_fix *f = *state;
    struct hv_hc_request r;
    uint64_t pg = HV_PAGE_SIZE, end = HVT_MEM;
    size_t len = hvt_setup_rec(&r, end, 9 * pg, 1u << HVT_SINT);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_PARAMETER);
    len = hvt_setup_rec(&r, 8 * pg, end, 1u << HVT_SINT);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_PARAMETER);
    len = hvt_setup_rec(&r, UINT64_MAX & ~(uint64_t)(pg - 1), 9 * pg, 1u << HVT_SINT);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_PARAMETER);
    len = hvt_setup_rec(&r, 8 * pg, 8 * pg, 1u << HVT_SINT);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_PARAMETER);
    len = hvt_setup_rec(&r, 8 * pg, 9 * pg, 0);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_PARAMETER);
    len = hvt_setup_rec(&r, 8 * pg, 9 * pg, 1u << HV_SINT_COUNT);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_PARAMETER);
    len = hvt_setup_rec(&r, 8 * pg, 9 * pg, 1u << HVT_SINT);
    r.input.synic_setup.vp_index = 1; /* the partition has VP 0 only */
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_VP_INDEX);
    assert_false(hv_synic_enabled(f->p, HVT_SINT));
    /* The last page is inside memory. */
    len = hvt_setup_rec(&r, end - pg, end - 2 * pg, 1u << HVT_SINT);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_SUCCESS);
    assert_true(hv_synic_enabled(f->p, HVT_SINT));
    assert_false(hv_synic_enabled(f->p, 3));
    assert_false(hv_synic_enabled(f->p, HV_SINT_COUNT));
}

static void hv_synic_setup__twice__invalid_partition_state(void **state)
{
    struct hvt_fix *f = *state;
    assert_int_equal(hv_guest_synic_enable(f->g, 1u << HVT_SINT), HV_STATUS_SUCCESS);
    assert_int_equal(hv_guest_synic_enable(f->g, 1u << 3), HV_STATUS_INVALID_PARTITION_STATE);
    struct hv_hc_request r;
    size_t len = hvt_setup_rec(&r, 100 * HV_PAGE_SIZE, 101 * HV_PAGE_SIZE, 1u << 3);
    assert_int_equal(hvt_raw(f->g, &r, len), HV_STATUS_INVALID_PARTITION_STATE);
    /* The first setup stands. */
    assert_true(hv_synic_enabled(f->p, HVT_SINT));
    assert_false(hv_synic_enabled(f->p, 3));
    assert_int_equal(hv_synic_post(f->p, HVT_SINT, HVMSG_VMBUS, "one", 3), 0);
    struct hv_message m;
    assert_int_equal(hv_guest_recv_message(f->g, HVT_SINT, &m), 0);
    assert_memory_equal(m.payload, "one", 3);
}

static void hv_synic_post__before_setup__enotconn(void **state)
{
    struct hvt_fix *f = *state;
    assert_int_equal(hv_synic_post(f->p, HVT_SINT, HVMSG_VMBUS, "x", 1), -ENOTCONN);
    assert_int_equal(hv_synic_queue_room(f->p, HVT_SINT), 0);
    struct hv_message m;
    assert_int_equal(hv_guest_recv_message(f->g, HVT_SINT, &m), -ENOTCONN);
    assert_int_equal(hv_guest_synic_enable(f->g, 1u << HVT_SINT), 0);
    /* A SINT outside the mask is not connected either. */
    assert_int_equal(hv_synic_post(f->p, 3, HVMSG_VMBUS, "x", 1), -ENOTCONN);
    assert_int_equal(hv_synic_queue_room(f->p, 3), 0);
    assert_int_equal(hv_synic_post(f->p, HV_SINT_COUNT, HVMSG_VMBUS, "x", 1), -EINVAL);
    assert_int_equal(hv_synic_post(f->p, HVT_SINT, HVMSG_NONE, "x", 1), -EINVAL);
    uint8_t big[HV_MESSAGE_PAYLOAD_MAX + 1] = {0};
    assert_int_equal(hv_synic_post(f->p, HVT_SINT, HVMSG_VMBUS, big, sizeof(big)), -EINVAL);
    assert_int_equal(hv_synic_queue_room(f->p, HV_SINT_COUNT), 0);
    assert_int_equal(hv_synic_queue_room(f->p, HVT_SINT), HV_SYNIC_QUEUE_LEN);
    assert_int_equal(hv_guest_recv_message(f->g, HVT_SINT, &m), -EAGAIN);
    assert_int_equal(hvt_stats(f->p).messages_delivered, 0);
}

static void hv_synic_post__several__one_in_slot_rest_queued_in_order(void **state)
{
    struct hvt_fix *f = *state;
    int sint_fd = hv_guest_sint_fd(f->g);
    assert_int_equal(hv_guest_synic_enable(f->g, 1u << HVT_SINT), 0);
    assert_int_equal(hvt_take(sint_fd), 0);
    for (uint8_t i = 0; i < 5; i++) {
        uint8_t payload[3] = {i, (uint8_t)(i + 100), 0xee};
        assert_int_equal(hv_synic_post(f->p, HVT_SINT, 10 + i, payload, sizeof(payload)), 0);
    }
    /* Only the first is in the slot, and the SINT was asserted for it. */
    struct hv_partition_stats s = hvt_stats(f->p);
    assert_int_equal(s.messages_delivered, 1);
    assert_int_equal(hv_synic_queue_room(f->p, HVT_SINT), HV_SYNIC_QUEUE_LEN - 4);
    assert_int_equal(hvt_take(sint_fd), 1);

    for (uint8_t i = 0; i < 5; i++) {
        struct hv_message m;
        assert_int_equal(hv_guest_recv_message(f->g, HVT_SINT, &m), 0);
        assert_int_equal(m.message_type, 10 + i);
        assert_int_equal(m.payload_size, 3);
        assert_int_equal(m.payload[0], i);
        assert_int_equal(m.payload[1], i + 100);
        assert_int_equal(m.payload[2], 0xee);
        /* MessagePending tells the guest more are queued behind it. */
        assert_int_equal(!!(m.flags & HV_MESSAGE_FLAG_PENDING), i < 4);
        /* The EOM delivered the next one already. */
        assert_int_equal(hvt_stats(f->p).messages_delivered, (uint64_t)(i < 4 ? i + 2 : 5));
        assert_int_equal(hvt_take(sint_fd), i < 4 ? 1 : 0);
    }
    struct hv_message m;
    assert_int_equal(hv_guest_recv_message(f->g, HVT_SINT, &m), -EAGAIN);
    assert_int_equal(hv_synic_queue_room(f->p, HVT_SINT), HV_SYNIC_QUEUE_LEN);
    /* Slot free again: the next post is delivered at once, not pending. */
    assert_int_equal(hv_synic_post(f->p, HVT_SINT, HVMSG_VMBUS, "z", 1), 0);
    assert_int_equal(hv_guest_recv_message(f->g, HVT_SINT, &m), 0);
    assert_int_equal(m.flags & HV_MESSAGE_FLAG_PENDING, 0);
    assert_int_equal(m.payload[0], 'z');
}

static void hvt_fill_queue(struct hv_partition *p, uint32_t sint)
{
    for (uint32_t i = 0; i < HV_SYNIC_QUEUE_LEN + 1; i++) {
        uint8_t idx[2] = {(uint8_t)(i & 0xff), (uint8_t)(i >> 8)};
        assert_int_equal(hv_synic_post(p, sint, HVMSG_VMBUS, idx, sizeof(idx)), 0);
    }
}

static void hv_synic_post__queue_full__enospc_counted(void **state)
{
    struct hvt_fix *f = *state;
    assert_int_equal(hv_guest_synic_enable(f->g, 1u << HVT_SINT), 0);
    /* One in the slot, HV_SYNIC_QUEUE_LEN behind it. */
    hvt_fill_queue(f->p, HVT_SINT);
    assert_int_equal(hv_synic_queue_room(f->p, HVT_SINT), 0);
    uint8_t lost[2] = {0xff, 0xff};
    assert_int_equal(hv_synic_post(f->p, HVT_SINT, HVMSG_VMBUS, lost, 2), -ENOSPC);
    assert_int_equal(hv_synic_post(f->p, HVT_SINT, HVMSG_VMBUS, lost, 2), -ENOSPC);
    struct hv_partition_stats s = hvt_stats(f->p);
    assert_int_equal(s.messages_dropped, 2);
    assert_int_equal(s.messages_delivered, 1);

    for (uint32_t i = 0; i < HV_SYNIC_QUEUE_LEN + 1; i++) {
        struct hv_message m;
        assert_int_equal(hv_guest_recv_message(f->g, HVT_SINT, &m), 0);
        uint32_t idx = m.payload[0] | (uint32_t)m.payload[1] << 8;
        if (idx != i)
            fail_msg("message %u arrived as number %u", idx, i);
    }
    struct hv_message m;
    assert_int_equal(hv_guest_recv_message(f->g, HVT_SINT, &m), -EAGAIN);
    assert_int_equal(hv_synic_queue_room(f->p, HVT_SINT), HV_SYNIC_QUEUE_LEN);
    assert_int_equal(hvt_stats(f->p).messages_delivered, HV_SYNIC_QUEUE_LEN + 1);
}

static void hv_synic_post__slot_never_freed__only_own_queue_fills(void **state)
{
    struct hvt_fix *f = *state;
    assert_int_equal(hv_guest_synic_enable(f->g, (1u << HVT_SINT) | (1u << 3)), 0);
    struct hv_partition *pb = hvt_direct(f->host, "neighbour", HVT_MEM, true);
    struct hv_guest *gb = hvt_attach(pb);
    assert_int_equal(hv_guest_synic_enable(gb, 1u << HVT_SINT), 0);

    /* f's guest never takes its message. */
    hvt_fill_queue(f->p, HVT_SINT);
    for (int i = 0; i < 10; i++)
        assert_int_equal(hv_synic_post(f->p, HVT_SINT, HVMSG_VMBUS, "x", 1), -ENOSPC);
    assert_int_equal(hvt_stats(f->p).messages_dropped, 10);

    /* The other partition, and f's other SINT, are not affected. */
    assert_int_equal(hv_synic_queue_room(pb, HVT_SINT), HV_SYNIC_QUEUE_LEN);
    for (int i = 0; i < 3; i++)
        assert_int_equal(hv_synic_post(pb, HVT_SINT, HVMSG_VMBUS, "b", 1), 0);
    struct hv_message m;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hv_guest_recv_message(gb, HVT_SINT, &m), 0);
        assert_int_equal(m.payload[0], 'b');
    }
    assert_int_equal(hv_synic_queue_room(f->p, 3), HV_SYNIC_QUEUE_LEN);
    assert_int_equal(hv_synic_post(f->p, 3, HVMSG_VMBUS, "3", 1), 0);
    assert_int_equal(hv_guest_recv_message(f->g, 3, &m), 0);
    assert_int_equal(m.payload[0], '3');
    struct hv_partition_stats sb = hvt_stats(pb);
    assert_int_equal(sb.messages_dropped, 0);
    assert_int_equal(sb.messages_delivered, 3);
    assert_int_equal(hv_synic_queue_room(f->p, HVT_SINT), 0);
    hv_guest_detach(gb);
}

static void hv_synic_signal__set_twice__sint_written_once(void **state)
{
    struct hvt_fix *f = *state;
    int sint_fd = hv_guest_sint_fd(f->g);
    assert_int_equal(hv_synic_signal(f->p, HVT_SINT, 5), -ENOTCONN);
    assert_int_equal(hv_guest_synic_enable(f->g, (1u << HVT_SINT) | (1u << 3)), 0);
    assert_int_equal(hvt_take(sint_fd), 0);

    assert_int_equal(hv_synic_signal(f->p, HVT_SINT, 5), 0);
    assert_int_equal(hvt_stats(f->p).events_signalled, 1);
    assert_int_equal(hv_synic_signal(f->p, HVT_SINT, 5), 0);
    assert_int_equal(hv_synic_signal(f->p, HVT_SINT, 5), 0);
    assert_int_equal(hvt_take(sint_fd), 1);
    assert_int_equal(hvt_stats(f->p).events_signalled, 1);
    /* Still set: no new assertion. */
    assert_int_equal(hv_synic_signal(f->p, HVT_SINT, 5), 0);
    assert_int_equal(hvt_take(sint_fd), 0);
    /* Another flag, and the same flag on another SINT, are transitions. */
    assert_int_equal(hv_synic_signal(f->p, HVT_SINT, 6), 0);
    assert_int_equal(hvt_take(sint_fd), 1);
    assert_int_equal(hv_synic_signal(f->p, 3, 5), 0);
    assert_int_equal(hvt_take(sint_fd), 1);

    assert_true(hv_guest_event_test_clear(f->g, HVT_SINT, 5));
    assert_false(hv_guest_event_test_clear(f->g, HVT_SINT, 5));
    assert_false(hv_guest_event_test_clear(f->g, HVT_SINT, 7));
    assert_int_equal(hv_synic_signal(f->p, HVT_SINT, 5), 0);
    assert_int_equal(hvt_take(sint_fd), 1);
    assert_true(hv_guest_event_test_clear(f->g, HVT_SINT, 5));
    assert_true(hv_guest_event_test_clear(f->g, HVT_SINT, 6));
    assert_true(hv_guest_event_test_clear(f->g, 3, 5));
    assert_false(hv_guest_event_test_clear(f->g, 3, 6));
    assert_int_equal(hvt_stats(f->p).events_signalled, 4);
    /* The guest's wait consumes the wake-up. */
    assert_int_equal(hv_synic_signal(f->p, HVT_SINT, 9), 0);
    assert_int_equal(hv_guest_wait(f->g, 1000), 1);
    assert_int_equal(hv_guest_wait(f->g, 0), 0);
    assert_true(hv_guest_event_test_clear(f->g, HVT_SINT, 9));
}

static void hv_synic_signal__flag_limits__2047_ok_2048_einval(void **state)
{
    struct hvt_fix *f = *state;
    int sint_fd = hv_guest_sint_fd(f->g);
    assert_int_equal(hv_guest_synic_enable(f->g, (1u << HVT_SINT) | (1u << 3)), 0);
    assert_int_equal(hv_synic_signal(f->p, HVT_SINT, HV_EVENT_FLAGS_COUNT - 1), 0);
    assert_int_equal(hvt_take(sint_fd), 1);
    assert_int_equal(hv_synic_signal(f->p, HVT_SINT, 0), 0);
    assert_int_equal(hvt_take(sint_fd), 1);
    assert_int_equal(hv_synic_signal(f->p, HVT_SINT, HV_EVENT_FLAGS_COUNT), -EINVAL);
    assert_int_equal(hv_synic_signal(f->p, HVT_SINT, UINT32_MAX), -EINVAL);
    assert_int_equal(hv_synic_signal(f->p, HV_SINT_COUNT, 0), -EINVAL);
    assert_int_equal(hv_synic_signal(f->p, 4, 0), -ENOTCONN);
    assert_int_equal(hvt_take(sint_fd), 0);
    /* Flag 2047 of one SINT is not flag 0 of the next. */
    assert_false(hv_guest_event_test_clear(f->g, 3, 0));
    assert_false(hv_guest_event_test_clear(f->g, HVT_SINT, HV_EVENT_FLAGS_COUNT));
    assert_true(hv_guest_event_test_clear(f->g, HVT_SINT, HV_EVENT_FLAGS_COUNT - 1));
    assert_true(hv_guest_event_test_clear(f->g, HVT_SINT, 0));
    assert_int_equal(hv_synic_signal(f->p, 3, HV_EVENT_FLAGS_COUNT - 1), 0);
    assert_false(hv_guest_event_test_clear(f->g, 4, 0));
    assert_true(hv_guest_event_test_clear(f->g, 3, HV_EVENT_FLAGS_COUNT - 1));
    assert_int_equal(hvt_stats(f->p).events_signalled, 3);
}

static void hv_partition_stop__synic_enabled__reset_for_next_run(void **state)
{
    struct hvt_fix *f = *state;
    assert_int_equal(hv_guest_synic_enable(f->g, 1u << HVT_SINT), 0);
    assert_int_equal(hv_synic_post(f->p, HVT_SINT, HVMSG_VMBUS, "a", 1), 0);
    assert_int_equal(hv_synic_post(f->p, HVT_SINT, HVMSG_VMBUS, "b", 1), 0);
    assert_int_equal(hv_partition_stop(f->p, 0), 0);
    assert_false(hv_synic_enabled(f->p, HVT_SINT));
    assert_int_equal(hv_synic_post(f->p, HVT_SINT, HVMSG_VMBUS, "c", 1), -ENOTCONN);
    assert_int_equal(hv_synic_signal(f->p, HVT_SINT, 1), -ENOTCONN);
    assert_int_equal(hv_synic_queue_room(f->p, HVT_SINT), 0);

    assert_int_equal(hv_partition_start(f->p), 0);
    assert_false(hv_synic_enabled(f->p, HVT_SINT));
    struct hv_guest *g2 = hvt_attach(f->p);
    assert_int_equal(hv_guest_synic_enable(g2, 1u << HVT_SINT), 0);
    /* Nothing of the previous run is left queued. */
    assert_int_equal(hv_synic_queue_room(f->p, HVT_SINT), HV_SYNIC_QUEUE_LEN);
    struct hv_message m;
    assert_int_equal(hv_guest_recv_message(g2, HVT_SINT, &m), -EAGAIN);
    assert_int_equal(hv_synic_post(f->p, HVT_SINT, HVMSG_VMBUS, "d", 1), 0);
    assert_int_equal(hv_guest_recv_message(g2, HVT_SINT, &m), 0);
    assert_int_equal(m.payload[0], 'd');
    hv_guest_detach(g2);
}

/* Empty messages, named by a NULL payload: legal C callers, so no UB (the
 * sanitizer build aborts on memcpy(dst, NULL, 0)). In a child for that. */
static int hvt_empty_payload_child(void *ctx)
{
    (void)ctx;
    struct hv_host *h = NULL;
    struct hv_partition *p = NULL;
    struct hv_guest *g = NULL;
    struct hvt_msg_seen seen = {0};
    if (hv_host_create(&h) != 0)
        return 10;
    struct hv_partition_params prm = {
        .name = "empty", .memory_bytes = HVT_MEM, .cls = &hv_direct_partition_class};
    if (hv_partition_create(h, &prm, &p) != 0 || hv_partition_start(p) != 0 ||
        hv_direct_partition_attach(p, &g) != 0 || hv_guest_synic_enable(g, 1u << HVT_SINT) != 0 ||
        hv_partition_port_msg(p, HVT_CONN_MSG, hvt_msg_fn, &seen) != 0)
        return 11;
    if (hv_synic_post(p, HVT_SINT, HVMSG_VMBUS, NULL, 0) != 0)
        return 12;
    struct hv_message m;
    if (hv_guest_recv_message(g, HVT_SINT, &m) != 0 || m.payload_size != 0)
        return 13;
    if (hv_guest_post_message(g, HVT_CONN_MSG, HVMSG_VMBUS, NULL, 0) != HV_STATUS_SUCCESS ||
        seen.calls != 1 || seen.len != 0)
        return 14;
    hv_guest_detach(g);
    hv_host_destroy(h);
    return 0;
}

static void hv_synic_post__null_empty_payload__delivered(void **state)
{
    (void)state;
    hvt_assert_exit(hvt_in_child(hvt_empty_payload_child, NULL), 0);
}

static void hv_partition_map_pages__pfn_outside__erange(void **state)
{
    struct hvt_fix *f = *state;
    uint64_t n = hv_partition_memory_pages(f->p);
    void *view = (void *)0x1;
    uint64_t one[] = {n};
    assert_int_equal(hv_partition_map_pages(f->p, one, 1, &view), -ERANGE);
    uint64_t mixed[] = {1, 2, n + 5, 3};
    assert_int_equal(hv_partition_map_pages(f->p, mixed, 4, &view), -ERANGE);
    uint64_t huge[] = {UINT64_MAX};
    assert_int_equal(hv_partition_map_pages(f->p, huge, 1, &view), -ERANGE);
    uint64_t wrap[] = {UINT64_MAX >> HV_PAGE_SHIFT, 0};
    assert_int_equal(hv_partition_map_pages(f->p, wrap, 2, &view), -ERANGE);
    uint64_t ring[] = {1, 2, n};
    assert_int_equal(hv_partition_map_ring(f->p, ring, 3, &view), -ERANGE);
    uint64_t ring_hdr[] = {n, 2, 3};
    assert_int_equal(hv_partition_map_ring(f->p, ring_hdr, 3, &view), -ERANGE);
    assert_ptr_equal(view, (void *)0x1);
    assert_int_equal(hvt_stats(f->p).map_refused, 6);
    /* Bad shapes. */
    uint64_t last[] = {n - 1};
    assert_int_equal(hv_partition_map_pages(f->p, last, 0, &view), -EINVAL);
    assert_int_equal(hv_partition_map_ring(f->p, last, 1, &view), -EINVAL);
    /* The last page is fine, and the refusals did not use up budget. */
    assert_int_equal(hv_partition_map_pages(f->p, last, 1, &view), 0);
    hv_partition_unmap(f->p, view, last, 1, false);
}

static void hv_partition_map_pages__guest_wrote__view_shows_it(void **state)
{
    struct hvt_fix *f = *state;
    /* Out of order, with a contiguous run in the middle. */
    static const uint64_t pfns[] = {50, 11, 12, 13, 3, 900};
    const uint32_t n = sizeof(pfns) / sizeof(pfns[0]);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *pg = hv_guest_pfn_ptr(f->g, pfns[i]);
        for (uint32_t b = 0; b < HV_PAGE_SIZE; b += 512)
            pg[b] = (uint8_t)(i * 16 + b / 512 + 1);
    }
    void *view = NULL;
    assert_int_equal(hv_partition_map_pages(f->p, pfns, n, &view), 0);
    assert_non_null(view);
    uint8_t *v = view;
    for (uint32_t i = 0; i < n; i++)
        assert_memory_equal(v + (size_t)i * HV_PAGE_SIZE, hv_guest_pfn_ptr(f->g, pfns[i]),
                            HV_PAGE_SIZE);
    /* Both ways: the root's writes reach guest memory. */
    v[4 * HV_PAGE_SIZE + 7] = 0x99;
    assert_int_equal(((uint8_t *)hv_guest_pfn_ptr(f->g, 3))[7], 0x99);
    ((uint8_t *)hv_guest_pfn_ptr(f->g, 900))[HV_PAGE_SIZE - 1] = 0x42;
    assert_int_equal(v[6 * HV_PAGE_SIZE - 1], 0x42);
    /* Pages not granted are not in the view. */
    ((uint8_t *)hv_guest_pfn_ptr(f->g, 14))[0] = 0x33;
    assert_int_not_equal(v[4 * HV_PAGE_SIZE], 0x33);
    hv_partition_unmap(f->p, view, pfns, n, false);
    hv_partition_unmap(f->p, NULL, pfns, n, false);
}

static void hv_partition_map_ring__data_area__mapped_twice(void **state)
{
    struct hvt_fix *f = *state;
    /* Header, then a scattered data area of 4 pages. */
    static const uint64_t pfns[] = {60, 70, 71, 90, 80};
    const uint32_t n = sizeof(pfns) / sizeof(pfns[0]);
    const size_t dsize = (size_t)(n - 1) * HV_PAGE_SIZE;
    for (uint32_t i = 0; i < n; i++)
        memset(hv_guest_pfn_ptr(f->g, pfns[i]), 0x10 + i, HV_PAGE_SIZE);
    ((uint8_t *)hv_guest_pfn_ptr(f->g, 90))[123] = 0xfe;
    void *view = NULL;
    assert_int_equal(hv_partition_map_ring(f->p, pfns, n, &view), 0);
    uint8_t *hdr = view;
    uint8_t *data = hdr + HV_PAGE_SIZE;
    assert_int_equal(hdr[0], 0x10);
    for (size_t i = 0; i < dsize; i++)
        if (data[i] != data[i + dsize])
            fail_msg("data[%zu] = %#x but data[%zu] = %#x", i, data[i], i + dsize, data[i + dsize]);
    assert_int_equal(data[2 * HV_PAGE_SIZE + 123], 0xfe);
    assert_int_equal(data[3 * HV_PAGE_SIZE], 0x14);
    /* A write across the wrap lands at the start of the data area. */
    memcpy(data + dsize - 2, "WRAP", 4);
    assert_memory_equal(data, "AP", 2);
    assert_memory_equal((uint8_t *)hv_guest_pfn_ptr(f->g, 70), "AP", 2);
    assert_memory_equal((uint8_t *)hv_guest_pfn_ptr(f->g, 80) + HV_PAGE_SIZE - 2, "WR", 2);
    hv_partition_unmap(f->p, view, pfns, n, true);
}

static void hv_partition_map_pages__scattered_beyond_budget__enospc_until_unmap(void **state)
{
    struct hvt_fix *f = *state;
    /* Enough pages for HV_PARTITION_MAP_RUNS_MAX + 1 separate runs. */
    struct hv_partition *p = hvt_direct(f->host, "budget", 64ull << 20, true);
    const uint32_t max = HV_PARTITION_MAP_RUNS_MAX;
    uint64_t *pfns = calloc(max + 1, sizeof(*pfns));
    assert_non_null(pfns);
    for (uint32_t i = 0; i < max + 1; i++)
        pfns[i] = 2 + 2 * (uint64_t)i;
    assert_true(pfns[max] < hv_partition_memory_pages(p));

    void *all = NULL, *one = NULL, *small = NULL;
    assert_int_equal(hv_partition_map_pages(p, pfns, max + 1, &all), -ENOSPC);
    assert_int_equal(hvt_stats(p).map_refused, 1);
    assert_int_equal(hv_partition_map_pages(p, pfns, max, &all), 0);
    uint64_t other = 3;
    assert_int_equal(hv_partition_map_pages(p, &other, 1, &one), -ENOSPC);
    uint64_t ring[] = {5, 7};
    assert_int_equal(hv_partition_map_ring(p, ring, 2, &one), -ENOSPC);
    assert_int_equal(hvt_stats(p).map_refused, 3);

    /* Unmapping gives the budget back. */
    hv_partition_unmap(p, all, pfns, max, false);
    assert_int_equal(hv_partition_map_pages(p, &other, 1, &one), 0);
    /* A contiguous grant is one run however long it is. */
    uint64_t *run = calloc(max + 1, sizeof(*run));
    assert_non_null(run);
    for (uint32_t i = 0; i < max + 1; i++)
        run[i] = 10 + i;
    assert_int_equal(hv_partition_map_pages(p, run, max + 1, &all), 0);
    /* 1 (other) + 1 (run) used: max - 2 single pages still fit, not max - 1. */
    assert_int_equal(hv_partition_map_pages(p, pfns, max - 1, &small), -ENOSPC);
    assert_int_equal(hv_partition_map_pages(p, pfns, max - 2, &small), 0);
    hv_partition_unmap(p, small, pfns, max - 2, false);
    hv_partition_unmap(p, all, run, max + 1, false);
    hv_partition_unmap(p, one, &other, 1, false);
    /* Everything back: the full budget again. */
    assert_int_equal(hv_partition_map_pages(p, pfns, max, &all), 0);
    hv_partition_unmap(p, all, pfns, max, false);
    free(run);
    free(pfns);
}

static void hv_partition_map_pages__stopped__enodev(void **state)
{
    struct hvt_fix *f = *state;
    assert_int_equal(hv_partition_stop(f->p, 0), 0);
    uint64_t pfn = 1;
    void *view = NULL;
    assert_int_equal(hv_partition_map_pages(f->p, &pfn, 1, &view), -ENODEV);
    uint64_t ring[] = {1, 2};
    assert_int_equal(hv_partition_map_ring(f->p, ring, 2, &view), -ENODEV);
    assert_null(view);
}

static void hv_guest_mem_fd__guest__cannot_resize_or_reseal(void **state)
{
    struct hvt_fix *f = *state;
    int fd = hv_guest_mem_fd(f->g);
    int seals = fcntl(fd, F_GET_SEALS);
    assert_true(seals >= 0);
    assert_true((seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) ==
                (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
    assert_int_equal(ftruncate(fd, HVT_MEM / 2), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(ftruncate(fd, HVT_MEM * 2), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
    assert_int_equal(errno, EPERM);
    assert_int_equal(hv_guest_mem_size(f->g), HVT_MEM);
}

/* --- Jails ---------------------------------------------------------------- */

#define HVT_JAIL_UID 1879113728u /* 0x70010000: no user of this machine */
#define HVT_JAIL_GID 1879113729u

static const char *const hvt_jail_root[] = {"/usr",   "/lib", "/lib64", "/lib32", "/libx32",
                                            "/bin",   "/etc/ld.so.cache", NULL};

static void hvt_need_root(void)
{
    if (geteuid() != 0)
        skip(); /* jails need CAP_SYS_ADMIN and CAP_SETUID */
}

/* The value of "Key:" in /proc/<pid>/status, tabs made spaces, or "". */
static void hvt_status(pid_t pid, const char *key, char *out, size_t len)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    out[0] = '\0';
    FILE *fp = fopen(path, "r");
    if (!fp)
        return;
    size_t klen = strlen(key);
    while (fgets(line, sizeof(line), fp)) {
        if (strncmp(line, key, klen) != 0 || line[klen] != ':')
            continue;
        char *v = line + klen + 1;
        while (*v == '\t' || *v == ' ')
            v++;
        v[strcspn(v, "\n")] = '\0';
        for (char *c = v; *c; c++)
            if (*c == '\t')
                *c = ' ';
        snprintf(out, len, "%s", v);
        break;
    }
    fclose(fp);
}

static void hvt_assert_status(pid_t pid, const char *key, const char *want)
{
    char got[128];
    hvt_status(pid, key, got, sizeof(got));
    if (strcmp(got, want) != 0)
        fail_msg("guest %s: '%s', expected '%s'", key, got, want);
}

static struct hv_partition *hvt_jailed(struct hvt_fix *f, const char *name,
                                       const char *const *argv, const char *netns)
{
    struct hv_partition *p = hvt_process(f->host, name, argv, NULL);
    struct hv_process_jail jail = {
        .uid = HVT_JAIL_UID,
        .gid = HVT_JAIL_GID,
        .netns_path = netns,
        .root_paths = hvt_jail_root,
    };
    assert_int_equal(hv_process_partition_set_jail(p, &jail), 0);
    return p;
}

static void hv_process_partition_set_jail__bad_jails__einval(void **state)
{
    struct hvt_fix *f = *state;
    struct hv_process_jail ok = {.uid = HVT_JAIL_UID, .gid = HVT_JAIL_GID};
    assert_int_equal(hv_process_partition_set_jail(f->p, &ok), -EINVAL); /* direct */
    assert_int_equal(hv_process_partition_pass_fds(f->p, NULL, 0), -EINVAL);

    static const char *const argv[] = {"/bin/sleep", "60", NULL};
    struct hv_partition *p = hvt_process(f->host, "jailcheck", argv, NULL);
    struct hv_process_jail j = ok;
    j.uid = 0;
    assert_int_equal(hv_process_partition_set_jail(p, &j), -EINVAL);
    j = ok;
    j.gid = 0;
    assert_int_equal(hv_process_partition_set_jail(p, &j), -EINVAL);
    j = ok;
    j.netns_path = "run/netns/x";
    assert_int_equal(hv_process_partition_set_jail(p, &j), -EINVAL);
    static const char *const bad_roots[][2] = {
        {"usr", NULL}, {"/run/hv-jail", NULL}, {"/run/hv-jail/x", NULL}, {"/usr/../etc", NULL}, {"/usr/..", NULL},
    };
    for (size_t i = 0; i < sizeof(bad_roots) / sizeof(bad_roots[0]); i++) {
        j = ok;
        j.root_paths = bad_roots[i];
        if (hv_process_partition_set_jail(p, &j) != -EINVAL)
            fail_msg("root path %s accepted", bad_roots[i][0]);
    }
    static const char *const fine[] = {"/usr", "/tmp", "/run/hv-jailfoo", NULL};
    j = ok;
    j.root_paths = fine;
    assert_int_equal(hv_process_partition_set_jail(p, &j), 0);
    assert_int_equal(hv_process_partition_set_jail(p, NULL), 0);

    int fds[HV_PROCESS_EXTRA_FDS_MAX + 1];
    for (int i = 0; i <= HV_PROCESS_EXTRA_FDS_MAX; i++)
        fds[i] = 0;
    assert_int_equal(hv_process_partition_pass_fds(p, fds, HV_PROCESS_EXTRA_FDS_MAX + 1), -EINVAL);
    fds[0] = -1;
    assert_int_equal(hv_process_partition_pass_fds(p, fds, 1), -EINVAL);

    assert_int_equal(hv_partition_start(p), 0);
    assert_int_equal(hv_process_partition_set_jail(p, &ok), -EBUSY);
    assert_int_equal(hv_process_partition_pass_fds(p, NULL, 0), -EBUSY);
    assert_int_equal(hv_partition_stop(p, 0), 0);
}

/* Seen from the root: the guest's credentials, capabilities, mount
 * namespace, root directory and descriptors. */
static void hv_partition_start__jailed__unprivileged_in_own_root(void **state)
{
    hvt_need_root();
    struct hvt_fix *f = *state;
    static const char *const argv[] = {"/bin/sleep", "60", NULL};
    struct hv_partition *p = hvt_jailed(f, "jailed", argv, NULL);
    assert_int_equal(hv_partition_start(p), 0);
    pid_t pid = hv_process_partition_pid(p);
    assert_true(hvt_wait_comm(pid, "sleep", HVT_WAIT_MS));

    char want[128];
    snprintf(want, sizeof(want), "%u %u %u %u", HVT_JAIL_UID, HVT_JAIL_UID, HVT_JAIL_UID,
             HVT_JAIL_UID);
    hvt_assert_status(pid, "Uid", want);
    snprintf(want, sizeof(want), "%u %u %u %u", HVT_JAIL_GID, HVT_JAIL_GID, HVT_JAIL_GID,
             HVT_JAIL_GID);
    hvt_assert_status(pid, "Gid", want);
    hvt_assert_status(pid, "Groups", "");
    static const char *const caps[] = {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"};
    for (size_t i = 0; i < 5; i++)
        hvt_assert_status(pid, caps[i], "0000000000000000");
    hvt_assert_status(pid, "NoNewPrivs", "1");

    char path[300], mine[64], theirs[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
    ssize_t n1 = readlink("/proc/self/ns/mnt", mine, sizeof(mine) - 1);
    ssize_t n2 = readlink(path, theirs, sizeof(theirs) - 1);
    assert_true(n1 > 0 && n2 > 0);
    mine[n1] = theirs[n2] = '\0';
    if (strcmp(mine, theirs) == 0)
        fail_msg("the guest shares the root's mount namespace");

    /* Its root holds what the program loads from, and /proc: no /tmp,
     * /run, /var, /home or this test's directory. */
    snprintf(path, sizeof(path), "/proc/%d/root", (int)pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    bool have_proc = false;
    struct dirent *e;
    while ((e = readdir(d))) {
        static const char *const allowed[] = {".",     "..",   "usr",  "lib", "lib64", "lib32",
                                              "libx32", "bin", "etc",  "proc"};
        bool ok = false;
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]) && !ok; i++)
            ok = strcmp(e->d_name, allowed[i]) == 0;
        if (!ok)
            fail_msg("the guest's root holds /%s", e->d_name);
        have_proc |= strcmp(e->d_name, "proc") == 0;
    }
    closedir(d);
    assert_true(have_proc);
    snprintf(path, sizeof(path), "/proc/%d/root/etc", (int)pid);
    d = opendir(path);
    assert_non_null(d);
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && strcmp(e->d_name, "ld.so.cache") != 0)
            fail_msg("the guest's /etc holds %s", e->d_name);
    closedir(d);

    /* The program's descriptor closed at exec: the guest has 0..5 only. */
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    d = opendir(path);
    assert_non_null(d);
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && atoi(e->d_name) > HV_CHILD_FD_SINT)
            fail_msg("the jailed guest holds descriptor %s", e->d_name);
    closedir(d);
    assert_int_equal(hv_partition_stop(p, 0), 0);
}

/* Seen from inside: what the guest can reach. */
static void hv_partition_start__jailed__guest_sees_only_itself(void **state)
{
    hvt_need_root();
    struct hvt_fix *f = *state;
    char script[1024];
    snprintf(script, sizeof(script),
             "grep -q '^Uid:[[:space:]]*%u[[:space:]]' /proc/self/status || exit 10; "
             "test -e /proc/$PPID && exit 11; "
             "test -e /proc/1 && exit 12; "
             "(: >/newfile) && exit 13; "
             "test -e /tmp && exit 14; "
             "test -e /run && exit 15; "
             "test -e /proc/self/fd/%d || exit 16; "
             "test -w /usr/bin && exit 17; "
             "grep -q '^NoNewPrivs:[[:space:]]*1' /proc/self/status || exit 18; "
             "exit 0",
             HVT_JAIL_UID, HV_CHILD_FD_HYPERCALL);
    const char *const argv[] = {"/bin/sh", "-c", script, NULL};
    struct hv_partition *p = hvt_jailed(f, "jailsh", argv, NULL);
    assert_int_equal(hv_partition_start(p), 0);
    assert_true(hvt_run_until_stopped(f->host, p, HVT_WAIT_MS));
    int ws = hv_partition_exit_status(p);
    assert_true(WIFEXITED(ws));
    if (WEXITSTATUS(ws) != 0)
        fail_msg("jailed guest check %d failed (10 uid, 11 root's process visible, 12 init "
                 "visible, 13 root writable, 14 /tmp, 15 /run, 16 no hypercall fd, "
                 "17 /usr writable, 18 no_new_privs; 126 jail set-up)",
                 WEXITSTATUS(ws));
}

/* Hypercalls (the kernel-checked sender pid), memory and the SINT all work
 * for a jailed guest: the abuse sequence gives the same answers. */
static void hv_host_run__abuse_guest_jailed__answered_and_counted(void **state)
{
    hvt_need_root();
    struct hvt_fix *f = *state;
    struct hvt_abuse a = {.pong_rc = 1};
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    assert_true(efd >= 0);
    struct hv_process_jail jail = {
        .uid = HVT_JAIL_UID, .gid = HVT_JAIL_GID, .root_paths = hvt_jail_root};
    struct hv_partition *p = hvt_run_abuse_jailed(f, NULL, NULL, &a, efd, &jail);
    hvt_check_abuse(p, &a, efd);
    close(efd);
}

static void hv_partition_start__jailed_netns__guest_in_it(void **state)
{
    hvt_need_root();
    struct hvt_fix *f = *state;
    int sync[2];
    assert_int_equal(pipe2(sync, O_CLOEXEC), 0);
    pid_t holder = fork();
    assert_true(holder >= 0);
    if (holder == 0) {
        char c = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
        if (write(sync[1], &c, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char c = 0;
    assert_int_equal(read(sync[0], &c, 1), 1);
    close(sync[0]);
    close(sync[1]);
    assert_int_equal(c, 'y');
    char ns[64], path[64];
    snprintf(ns, sizeof(ns), "/proc/%d/ns/net", (int)holder);
    static const char *const argv[] = {"/bin/sleep", "60", NULL};
    struct hv_partition *p = hvt_jailed(f, "jailnet", argv, ns);
    int rc = hv_partition_start(p);
    if (rc == 0) {
        pid_t pid = hv_process_partition_pid(p);
        assert_true(hvt_wait_comm(pid, "sleep", HVT_WAIT_MS));
        snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
        struct stat want, got;
        rc = stat(ns, &want) == 0 && stat(path, &got) == 0 && want.st_ino == got.st_ino ? 0 : -1;
        hv_partition_stop(p, 0);
    }
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    assert_int_equal(rc, 0);
    /* A namespace that is gone fails the start, not the child. */
    assert_int_equal(hv_partition_start(p), -ENOENT);
}

/* A uid change clears the parent-death signal: it must be set after it,
 * or jailed guests would outlive a root killed with SIGKILL. */
static int hvt_start_and_vanish(void *ctx)
{
    int wfd = *(int *)ctx;
    struct hv_host *h = NULL;
    struct hv_partition *p = NULL;
    static const char *const argv[] = {"/bin/sleep", "60", NULL};
    struct hv_partition_params prm = {.name = "orphan", .memory_bytes = 1ull << 20, .argv = argv};
    struct hv_process_jail jail = {
        .uid = HVT_JAIL_UID, .gid = HVT_JAIL_GID, .root_paths = hvt_jail_root};
    if (hv_host_create(&h) < 0 || hv_partition_create(h, &prm, &p) < 0 ||
        hv_process_partition_set_jail(p, &jail) < 0 || hv_partition_start(p) < 0)
        return 1;
    pid_t pid = hv_process_partition_pid(p);
    if (!hvt_wait_comm(pid, "sleep", HVT_WAIT_MS) || write(wfd, &pid, sizeof(pid)) != sizeof(pid))
        return 2;
    return 0; /* gone without stopping it */
}

static void hv_partition_start__jailed_root_dies__guest_killed(void **state)
{
    hvt_need_root();
    (void)state;
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    /* Orphans come to us, so we can reap the guest and see how it ended. */
    assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    int ws = hvt_in_child(hvt_start_and_vanish, &pfd[1]);
    pid_t guest = -1;
    ssize_t n = read(pfd[0], &guest, sizeof(guest));
    close(pfd[0]);
    close(pfd[1]);
    hvt_assert_exit(ws, 0);
    assert_int_equal(n, (ssize_t)sizeof(guest));
    int gws = 0;
    pid_t r = 0;
    for (int i = 0; i < 500 && r == 0; i++) {
        r = waitpid(guest, &gws, WNOHANG);
        if (r == 0)
            usleep(10000);
    }
    if (r == 0) {
        kill(guest, SIGKILL);
        waitpid(guest, NULL, 0);
    }
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    if (r != guest)
        fail_msg("the jailed guest outlived its root");
    assert_true(WIFSIGNALED(gws));
    assert_int_equal(WTERMSIG(gws), SIGKILL);
}

/* Extra descriptors reach the child at 6.. for one start only. */
static void hv_partition_start__extra_fds__at_6_for_one_start(void **state)
{
    struct hvt_fix *f = *state;
    static const char *const argv[] = {"/bin/sh", "-c", "echo hi >&6", NULL};
    struct hv_partition *p = hvt_process(f->host, "extrafd", argv, NULL);
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    assert_int_equal(hv_process_partition_pass_fds(p, &pfd[1], 1), 0);
    close(pfd[1]);
    assert_int_equal(hv_partition_start(p), 0);
    assert_true(hvt_run_until_stopped(f->host, p, HVT_WAIT_MS));
    hvt_assert_exit(hv_partition_exit_status(p), 0);
    char buf[8] = {0};
    assert_int_equal(read(pfd[0], buf, sizeof(buf)), 3); /* every writer gone: no block */
    assert_memory_equal(buf, "hi\n", 3);
    close(pfd[0]);
    assert_int_equal(hv_partition_start(p), 0);
    assert_true(hvt_run_until_stopped(f->host, p, HVT_WAIT_MS));
    int ws = hv_partition_exit_status(p);
    assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) != 0);
}

/* The guest's stdin is /dev/null, not the root's (which here holds a line
 * it must not see); what it prints reaches the root's log. */
static void hv_partition_start__child_stdin__dev_null_not_the_roots(void **state)
{
    struct hvt_fix *f = *state;
    static const char *const argv[] = {"/bin/sh", "-c", "read x; echo \"in:$x.\"", NULL};
    struct hv_partition *p = hvt_process(f->host, "stdin", argv, NULL);
    int in[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(write(in[1], "root's\n", 7), 7);
    close(in[1]);
    int saved_in = dup(STDIN_FILENO);
    assert_true(saved_in >= 0);
    assert_int_equal(dup2(in[0], STDIN_FILENO), STDIN_FILENO);
    struct hvt_capture cap;
    hvt_log_capture(&cap);
    int rc = hv_partition_start(p);
    dup2(saved_in, STDIN_FILENO);
    close(saved_in);
    close(in[0]);
    bool stopped = rc == 0 && hvt_run_until_stopped(f->host, p, HVT_WAIT_MS);
    char line[256] = "";
    unsigned n = hvt_log_release(&cap, "in:", line, sizeof(line));
    assert_int_equal(rc, 0);
    assert_true(stopped);
    hvt_assert_exit(hv_partition_exit_status(p), 0);
    assert_int_equal(n, 1);
    assert_string_equal(line, "partition stdin: in:.");
}

#define HVT_DIRECT(fn) cmocka_unit_test_setup_teardown(fn, setup_direct, teardown)
#define HVT_HOST(fn) cmocka_unit_test_setup_teardown(fn, setup_host, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hv_partition_transition_ok__every_pair__matches_table),
        HVT_DIRECT(hv_partition_start__already_running__ebusy),
        HVT_DIRECT(hv_partition_destroy__running__ebusy),
        HVT_DIRECT(hv_partition_stop__not_running__einval),
        HVT_DIRECT(hv_partition_start__after_stop__fresh_zeroed_memory),
        HVT_DIRECT(hv_partition_listen__full_lifecycle__transitions_in_order),
        HVT_DIRECT(hv_partition_listen__stopped__memory_and_synic_still_there),
        HVT_HOST(hv_partition_create__bad_names__einval),
        HVT_HOST(hv_partition_create__vp_count__1_to_max_else_einval),
        HVT_HOST(hv_synic__two_vps__own_pages_slots_events_and_sint),
        HVT_HOST(hv_synic_setup__vp_beyond_partition__invalid_vp_index),
        HVT_HOST(hv_partition_start__child_shell__vp_count_in_environment),
        HVT_DIRECT(hv_partition_create__duplicate_name__eexist),
        HVT_HOST(hv_partition_create__bad_memory_size__einval),
        HVT_HOST(hv_partition_create__process_without_program__einval),
        HVT_DIRECT(hv_host_find__several_partitions__ids_in_order),
        HVT_DIRECT(hv_partition_start__from_stopped_listener__refused_or_whole),
        cmocka_unit_test(hv_partition_destroy__from_stopped_listener__no_use_after_free),

        HVT_HOST(hv_host_run__guest_exits_3__stopped_crashed_status_3),
        HVT_HOST(hv_partition_stop__sleeping_guest__stopped_not_crashed),
        HVT_HOST(hv_partition_stop__guest_ignores_sigterm__killed_after_grace),
        HVT_HOST(hv_host_run__guest_killed__stopped_crashed),
        HVT_HOST(hv_partition_start__bad_program__stopped_status_127),
        HVT_HOST(hv_partition_start__child__sees_only_its_fds),
        HVT_HOST(hv_partition_start__child__environment_set),
        HVT_DIRECT(hv_partition_start__child_shell__environment_and_fds),
        HVT_HOST(hv_host_destroy__running_process__child_reaped),
        HVT_HOST(hv_partition_start__process_with_cpuset__child_affinity_is_it),
        HVT_HOST(hv_host_run__abuse_guest__answered_and_counted),
        HVT_HOST(hv_host_run__zero_length_record__answered),
        HVT_HOST(hv_host_run__guest_never_reads_answers__log_bounded_and_counted),
        HVT_HOST(hv_partition_start__child_output__root_log_prefixed_sanitised_limited),
        HVT_HOST(hv_partition_start__child_stdin__dev_null_not_the_roots),
        HVT_DIRECT(hv_process_partition_set_jail__bad_jails__einval),
        HVT_HOST(hv_partition_start__jailed__unprivileged_in_own_root),
        HVT_HOST(hv_partition_start__jailed__guest_sees_only_itself),
        HVT_HOST(hv_host_run__abuse_guest_jailed__answered_and_counted),
        HVT_HOST(hv_partition_start__jailed_netns__guest_in_it),
        HVT_HOST(hv_partition_start__jailed_root_dies__guest_killed),
        HVT_HOST(hv_partition_start__extra_fds__at_6_for_one_start),

        HVT_DIRECT(hv_hypercall__malformed_records__invalid_input),
        HVT_DIRECT(hv_hypercall__unknown_code__invalid_code),
        HVT_DIRECT(hv_hypercall__post_bad_message__invalid_parameter),
        HVT_DIRECT(hv_hypercall__unknown_connection__invalid_connection_id),
        HVT_DIRECT(hv_hypercall__signal_flag_nonzero__invalid_parameter),
        HVT_DIRECT(hv_hypercall__not_running__invalid_partition_state),
        HVT_DIRECT(hv_hypercall__handler_status__returned),
        HVT_DIRECT(hv_hypercall__mixed_calls__stats_count_them),
        HVT_DIRECT(hv_partition_port__bad_registrations__refused),
        HVT_DIRECT(hv_hypercall__eom_bad_input__refused),

        HVT_DIRECT(hv_synic_setup__unaligned__invalid_alignment),
        HVT_DIRECT(hv_synic_setup__bad_pages_or_mask__invalid_parameter),
        HVT_DIRECT(hv_synic_setup__twice__invalid_partition_state),
        HVT_DIRECT(hv_synic_post__before_setup__enotconn),
        HVT_DIRECT(hv_synic_post__several__one_in_slot_rest_queued_in_order),
        HVT_DIRECT(hv_synic_post__queue_full__enospc_counted),
        HVT_DIRECT(hv_synic_post__slot_never_freed__only_own_queue_fills),
        HVT_DIRECT(hv_synic_signal__set_twice__sint_written_once),
        HVT_DIRECT(hv_synic_signal__flag_limits__2047_ok_2048_einval),
        HVT_DIRECT(hv_partition_stop__synic_enabled__reset_for_next_run),
        cmocka_unit_test(hv_synic_post__null_empty_payload__delivered),

        HVT_DIRECT(hv_partition_map_pages__pfn_outside__erange),
        HVT_DIRECT(hv_partition_map_pages__guest_wrote__view_shows_it),
        HVT_DIRECT(hv_partition_map_ring__data_area__mapped_twice),
        HVT_DIRECT(hv_partition_map_pages__scattered_beyond_budget__enospc_until_unmap),
        HVT_DIRECT(hv_partition_map_pages__stopped__enodev),
        HVT_DIRECT(hv_guest_mem_fd__guest__cannot_resize_or_reseal),
    };
    return cmocka_run_group_tests_name("hv_partition", tests, NULL, NULL);
}
