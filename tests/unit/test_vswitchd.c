/*
 * Unit tests for vswitchd's control API (vswitchd_core).
 *
 * The first group needs no data plane: the state file's save and the
 * control socket (rpc.c) with vswitchd's methods (control.c), driven by an
 * epoll loop of the test's own as vswitchd's main() drives them, against
 * an empty host. A method of the test's own, "park", parks its answer as a
 * capture does, without any port, and the test answers it when it likes,
 * as a capture that ends would.
 *
 * The second group builds a host without hardware (EAL with one switch
 * worker, no hugepages, as tests/fuzz/fuzz_vsd_env.c does) and checks the
 * dispatcher's promise end to end: a change whose save fails is undone,
 * the host and the file are as before, and the save's error is answered.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_mempool.h>

#include "jumbo-pool.h"
#include "netvsp.h"
#include "vsw-placement.h"
#include "vsw.h"
#include "vswitchd.h"

/* --- fixtures ---------------------------------------------------------------- */

struct fixture {
    char dir[64];
    struct vsd d;
    struct vsd_rpc_counters counters;
    struct vsd_control ctl;
    struct vsd_methods *methods;
    struct vsd_rpc_server *srv;
    int epfd;
    char sock[96]; /* fits sockaddr_un.sun_path */
};

static void path_in(const struct fixture *f, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", f->dir, name);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_vswitchd.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    path_in(f, "state.json", f->d.state_path, sizeof(f->d.state_path));
    path_in(f, "vswitchd.sock", f->sock, sizeof(f->sock));
    f->epfd = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    vsd_rpc_server_destroy(f->srv);
    vsd_methods_destroy(f->methods);
    if (f->epfd >= 0)
        close(f->epfd);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    static char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* --- the state file ------------------------------------------------------------ */

static void tmp_path(const struct fixture *f, char *out, size_t size)
{
    snprintf(out, size, "%s.tmp.%d", f->d.state_path, (int)getpid());
}

static void vsd_state_save__symlink_at_temp_path__refused_target_untouched(void **state)
{
    struct fixture *f = *state;
    char victim[128], tmp[PATH_MAX + 32];
    path_in(f, "victim", victim, sizeof(victim));
    write_file(victim, "precious\n");
    tmp_path(f, tmp, sizeof(tmp));
    assert_int_equal(symlink(victim, tmp), 0);

    struct vsd_err e = {0};
    assert_int_equal(vsd_state_save(&f->d, &e), -1);
    assert_int_equal(e.code, VSD_FAILED);
    assert_non_null(strstr(e.msg, tmp));
    assert_non_null(strstr(e.msg, "exists"));
    /* Nothing written through the link, no state file, the link left alone. */
    assert_string_equal(read_file(victim), "precious\n");
    struct stat st;
    assert_int_equal(lstat(f->d.state_path, &st), -1);
    assert_int_equal(lstat(tmp, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
}

static void vsd_state_save__dangling_symlink_at_temp_path__nothing_created(void **state)
{
    struct fixture *f = *state;
    char target[128], tmp[PATH_MAX + 32];
    path_in(f, "made-through-the-link", target, sizeof(target));
    tmp_path(f, tmp, sizeof(tmp));
    assert_int_equal(symlink(target, tmp), 0);

    struct vsd_err e = {0};
    assert_int_equal(vsd_state_save(&f->d, &e), -1);
    assert_int_equal(access(target, F_OK), -1);
    assert_int_equal(access(f->d.state_path, F_OK), -1);
}

static void vsd_state_save__regular_file_at_temp_path__refused_file_kept(void **state)
{
    struct fixture *f = *state;
    char tmp[PATH_MAX + 32];
    tmp_path(f, tmp, sizeof(tmp));
    write_file(tmp, "someone else's\n");

    struct vsd_err e = {0};
    assert_int_equal(vsd_state_save(&f->d, &e), -1);
    assert_string_equal(read_file(tmp), "someone else's\n");
    assert_int_equal(access(f->d.state_path, F_OK), -1);
}

static void vsd_state_load__leftover_temp_of_own_pid__removed_then_saves(void **state)
{
    struct fixture *f = *state;
    char victim[128], tmp[PATH_MAX + 32];
    path_in(f, "victim", victim, sizeof(victim));
    write_file(victim, "precious\n");
    tmp_path(f, tmp, sizeof(tmp));
    /* An earlier vswitchd with our PID died mid-save (or left a link). */
    assert_int_equal(symlink(victim, tmp), 0);

    struct vsd_err e = {0};
    assert_int_equal(vsd_state_load(&f->d, &e), 0);
    struct stat st;
    assert_int_equal(lstat(tmp, &st), -1);
    assert_string_equal(read_file(victim), "precious\n");

    assert_int_equal(vsd_state_save(&f->d, &e), 0);
    assert_int_equal(lstat(f->d.state_path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(lstat(tmp, &st), -1);
    assert_non_null(strstr(read_file(f->d.state_path), "\"hvnet-state\""));
    assert_string_equal(read_file(victim), "precious\n");
}

/* --- the control socket --------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The longest a single event took the server to handle. The old server
 * waited up to 1 s for a client to read; the bounds checked against this
 * (0.5 s) leave room for a loaded machine and none for that. */
static double g_longest_event;

/* One round of the event loop: wait up to ms, hand every event over. */
static void pump(struct fixture *f, int ms)
{
    struct epoll_event evs[32];
    int n = epoll_wait(f->epfd, evs, 32, ms);
    for (int i = 0; i < n; i++) {
        double t0 = now_s();
        vsd_rpc_server_on_event(f->srv, f->epfd, evs[i].data.ptr, evs[i].events);
        double took = now_s() - t0;
        if (took > g_longest_event)
            g_longest_event = took;
    }
}

static void pump_for(struct fixture *f, double seconds)
{
    double end = now_s() + seconds;
    while (now_s() < end)
        pump(f, 5);
}

/* The parked answers of the test's method. */
static struct vsd_rpc_pending *g_parked[4];
static int g_nparked;

static int park(void *ctx, const json_t *params, struct vsd_method_call *call, json_t **result,
                struct vsd_err *e)
{
    (void)ctx, (void)params, (void)result, (void)e;
    assert_true(g_nparked < 4);
    g_parked[g_nparked] = vsd_method_defer(call);
    assert_non_null(g_parked[g_nparked]);
    g_nparked++;
    return 0;
}

static void serve(struct fixture *f, size_t out_max, double deadline_s)
{
    f->ctl = (struct vsd_control){.d = &f->d, .counters = &f->counters};
    assert_int_equal(vsd_control_create(&f->ctl, &f->methods), 0);
    assert_int_equal(vsd_methods_register(f->methods, "park", park, NULL, VSD_METHOD_DEFERS), 0);
    struct vsd_rpc_endpoint ep = {
        .handler = vsd_methods_serve, .ctx = f->methods, .counters = &f->counters};
    assert_int_equal(vsd_rpc_server_create(f->sock, &ep, &f->srv), 0);
    vsd_rpc_server_set_limits(f->srv, out_max, deadline_s);
    f->epfd = epoll_create1(EPOLL_CLOEXEC);
    assert_true(f->epfd >= 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = f->srv};
    assert_int_equal(epoll_ctl(f->epfd, EPOLL_CTL_ADD, vsd_rpc_server_fd(f->srv), &ev), 0);
    g_longest_event = 0;
}

static int client(struct fixture *f)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    pump(f, 0); /* accepted */
    return fd;
}

static const char stats_req[] = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"stats\"}\n";

/* Send requests without reading until the server no longer takes them:
 * its answers fill the socket and it stops serving this client. */
static unsigned flood(struct fixture *f, int fd)
{
    unsigned sent = 0, stuck = 0;
    size_t off = 0;
    while (stuck < 20) {
        ssize_t w = send(fd, stats_req + off, sizeof(stats_req) - 1 - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            if (off == sizeof(stats_req) - 1) {
                off = 0;
                sent++;
            }
            stuck = 0;
            continue;
        }
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
            break; /* the server gave up on us: checked by the caller */
        assert_true(w < 0 && errno == EAGAIN);
        stuck++;
        pump(f, 5);
    }
    return sent;
}

/* Read one answer line from fd within seconds, serving meanwhile. */
static bool read_line(struct fixture *f, int fd, char *buf, size_t size, double seconds)
{
    size_t len = 0;
    double end = now_s() + seconds;
    while (now_s() < end && len < size - 1) {
        ssize_t n = recv(fd, buf + len, 1, 0);
        if (n == 1) {
            if (buf[len] == '\n') {
                buf[len] = '\0';
                return true;
            }
            len++;
        } else if (n == 0) {
            return false;
        } else {
            pump(f, 5);
        }
    }
    return false;
}

/* Read until EOF (true) or an error or the time is up (false). */
static bool reaches_eof(struct fixture *f, int fd, double seconds)
{
    char buf[65536];
    double end = now_s() + seconds;
    while (now_s() < end) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n == 0)
            return true;
        if (n < 0 && errno != EAGAIN)
            return errno == ECONNRESET;
        if (n < 0)
            pump(f, 5);
    }
    return false;
}

static void rpc__client_never_reads__others_served_it_is_dropped_at_deadline(void **state)
{
    struct fixture *f = *state;
    serve(f, 1024 * 1024, 1.0);
    int slow = client(f);
    unsigned sent = flood(f, slow);
    assert_true(sent > 100);
    /* The control thread was never held by it. */
    assert_true(g_longest_event < 0.5);

    /* Another client is answered at once. */
    int other = client(f);
    const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"switch-list\"}\n";
    assert_int_equal(send(other, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
    char line[512];
    double t0 = now_s();
    assert_true(read_line(f, other, line, sizeof(line), 2));
    assert_true(now_s() - t0 < 0.5);
    assert_non_null(strstr(line, "\"switches\""));
    assert_int_equal(f->counters.slow_clients, 0);

    /* Past its deadline the slow client is dropped, and counted. */
    pump_for(f, 1.3);
    assert_int_equal(f->counters.slow_clients, 1);
    assert_true(reaches_eof(f, slow, 2));
    assert_true(g_longest_event < 0.5);

    /* The other is still served. */
    assert_int_equal(send(other, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
    assert_true(read_line(f, other, line, sizeof(line), 2));
    assert_int_equal(f->counters.slow_clients, 1);
    close(slow);
    close(other);
}

/* The deadline timer and the dropped client's own event come in one batch
 * of the loop: the client is ended by the first and must still be there
 * for the second (run under AddressSanitizer, this is a use after free if
 * it is freed early). */
static void rpc__deadline_and_client_event_in_one_batch__client_outlives_batch(void **state)
{
    struct fixture *f = *state;
    serve(f, 1024 * 1024, 0.2);
    int slow = client(f);
    assert_true(flood(f, slow) > 100);
    /* The deadline passes with nobody serving: the timer is ready first. */
    usleep(300 * 1000);
    /* Then the client reads: its connection becomes writable, second. */
    char buf[65536];
    while (recv(slow, buf, sizeof(buf), 0) > 0)
        ;
    pump(f, 0);
    assert_int_equal(f->counters.slow_clients, 1);
    assert_true(reaches_eof(f, slow, 2));
    close(slow);
    /* Connections are accepted again: the dropped one was freed. */
    int other = client(f);
    const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"vm-list\"}\n";
    assert_int_equal(send(other, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
    char line[512];
    assert_true(read_line(f, other, line, sizeof(line), 2));
    close(other);
}

static void rpc__pipelined_requests_read_slowly__all_answered_in_order(void **state)
{
    struct fixture *f = *state;
    serve(f, 1024 * 1024, 5);
    int fd = client(f);
    enum { N = 3000 };
    static char reqs[N * 64];
    size_t len = 0;
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(reqs + len, sizeof(reqs) - len,
                                "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"stats\"}\n", i);
    size_t off = 0;
    int next = 0;
    char line[1024];
    size_t lpos = 0;
    double end = now_s() + 20;
    while (next < N && now_s() < end) {
        if (off < len) {
            ssize_t w = send(fd, reqs + off, len - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
        }
        pump(f, 1);
        /* Read a little at a time: a client slower than the server. */
        char buf[512];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        for (ssize_t k = 0; k < n; k++) {
            if (buf[k] != '\n') {
                assert_true(lpos < sizeof(line) - 1);
                line[lpos++] = buf[k];
                continue;
            }
            line[lpos] = '\0';
            lpos = 0;
            char want[32];
            snprintf(want, sizeof(want), "\"id\":%d,", next);
            assert_non_null(strstr(line, want));
            assert_non_null(strstr(line, "\"control\""));
            next++;
        }
    }
    assert_int_equal(next, N);
    assert_int_equal(f->counters.slow_clients, 0);
    assert_int_equal(f->counters.requests, N);
    close(fd);
}

static void rpc__request_then_half_close__answered_then_closed(void **state)
{
    struct fixture *f = *state;
    serve(f, 1024 * 1024, 5);
    int fd = client(f);
    const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"vm-list\"}\n"
                       "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"switch-list\"}\n";
    assert_int_equal(send(fd, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    char line[512];
    assert_true(read_line(f, fd, line, sizeof(line), 2));
    assert_non_null(strstr(line, "\"vms\""));
    assert_true(read_line(f, fd, line, sizeof(line), 2));
    assert_non_null(strstr(line, "\"switches\""));
    assert_true(reaches_eof(f, fd, 2));
    close(fd);
}

static void park_two(struct fixture *f, int fd)
{
    g_nparked = 0;
    const char req[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"park\",\"params\":{}}\n"
                       "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"park\",\"params\":{}}\n";
    assert_int_equal(send(fd, req, sizeof(req) - 1, 0), (ssize_t)sizeof(req) - 1);
    for (int i = 0; i < 100 && g_nparked < 2; i++)
        pump(f, 5);
    assert_int_equal(g_nparked, 2);
}

/* A result whose answer is len bytes or a little more. */
static json_t *big_result(size_t len)
{
    char *s = malloc(len + 1);
    assert_non_null(s);
    memset(s, 'x', len);
    s[len] = '\0';
    json_t *r = json_pack("{s:s}", "blob", s);
    free(s);
    return r;
}

static void rpc__parked_answers_pile_past_bound__client_dropped(void **state)
{
    struct fixture *f = *state;
    serve(f, 64 * 1024, 30);
    int fd = client(f);
    park_two(f, fd);
    /* One answer is taken whole however large: far more than the bound and
     * than the socket holds, so most of it stays unsent. */
    vsd_rpc_pending_answer(g_parked[0], big_result(4 << 20), NULL);
    assert_int_equal(f->counters.slow_clients, 0);
    /* A second one on top of unsent output passes the bound. */
    vsd_rpc_pending_answer(g_parked[1], big_result(100), NULL);
    assert_int_equal(f->counters.slow_clients, 1);
    assert_true(reaches_eof(f, fd, 5));
    assert_true(g_longest_event < 0.5);
    close(fd);
}

static void rpc__parked_answers_read__both_delivered(void **state)
{
    struct fixture *f = *state;
    serve(f, 64 * 1024, 30);
    int fd = client(f);
    park_two(f, fd);
    vsd_rpc_pending_answer(g_parked[0], big_result(1000), NULL);
    vsd_rpc_pending_answer(g_parked[1], big_result(1000), NULL);
    static char line[4096];
    assert_true(read_line(f, fd, line, sizeof(line), 2));
    assert_non_null(strstr(line, "\"id\":1,"));
    assert_true(read_line(f, fd, line, sizeof(line), 2));
    assert_non_null(strstr(line, "\"id\":2,"));
    assert_int_equal(f->counters.slow_clients, 0);
    close(fd);
}

static struct jumbo_pools *g_pools;
static struct vsw_dp *g_dp;
static struct hv_host *g_host;

static int host_group_setup(void **state)
{
    (void)state;
    cpu_set_t cpus;
    int cpu = 0;
    if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
        while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &cpus))
            cpu++;
    char lcores[32], prefix[32];
    snprintf(lcores, sizeof(lcores), "0@%d,1@%d", cpu, cpu);
    snprintf(prefix, sizeof(prefix), "--file-prefix=tvsd%d", (int)getpid());
    char *argv[] = {"test",     "--lcores",    lcores, "--no-huge",   "-m",      "256",
                    "--no-pci", "--no-shconf", prefix, "--log-level", "*:error", "--no-telemetry"};
    if (rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])), argv) < 0)
        return -1;
    rmdir(rte_eal_get_runtime_dir());
    struct jumbo_pools_params jpp = {.name = "tvsd", .socket = -1, .nb_std = 4095};
    struct vsw_dp_params dpp = {0};
    if (jumbo_pools_create(&jpp, &g_pools) < 0 ||
        !(dpp.pool = jumbo_pool(g_pools, JUMBO_POOL_STD)) || vsw_dp_create(&dpp, &g_dp) < 0 ||
        hv_host_create(&g_host) < 0)
        return -1;
    return 0;
}

static int host_group_teardown(void **state)
{
    (void)state;
    hv_host_destroy(g_host);
    vsw_dp_destroy(g_dp);
    jumbo_pools_destroy(g_pools);
    rte_eal_cleanup();
    return 0;
}

static int host_setup(void **state)
{
    if (setup(state) < 0)
        return -1;
    struct fixture *f = *state;
    f->d.dp = g_dp;
    f->d.pools = g_pools;
    f->d.host = g_host;
    path_in(f, "no-such-hv-vm", f->d.hv_vm_path, sizeof(f->d.hv_vm_path));
    f->ctl = (struct vsd_control){.d = &f->d, .counters = &f->counters};
    if (vsd_control_create(&f->ctl, &f->methods) < 0)
        return -1;
    return 0;
}

static int host_teardown(void **state)
{
    struct fixture *f = *state;
    vsd_shutdown(&f->d);
    return teardown(state);
}

/* Serve one request line through the transport's socketless entry. */
static json_t *request(struct fixture *f, const char *method, const char *params)
{
    struct vsd_rpc_endpoint ep = {
        .handler = vsd_methods_serve, .ctx = f->methods, .counters = &f->counters};
    char line[1024];
    snprintf(line, sizeof(line), "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":%s}",
             method, params);
    char *text = vsd_rpc_serve_line(&ep, line, strlen(line));
    assert_non_null(text);
    json_t *ans = json_loads(text, 0, NULL);
    assert_non_null(ans);
    free(text);
    return ans;
}

static void ok(struct fixture *f, const char *method, const char *params)
{
    json_t *ans = request(f, method, params);
    if (!json_object_get(ans, "result"))
        fail_msg("%s %s: %s", method, params,
                 json_string_value(json_object_get(json_object_get(ans, "error"), "message")));
    json_decref(ans);
}

/* Ports of every switch, as the data plane has them. */
static unsigned all_ports(const struct vsd *d)
{
    static struct vsw_port *ports[VSW_MAX_PORTS];
    unsigned n = 0;
    for (int i = 0; i < VSD_MAX_SWITCHES; i++)
        if (d->switches[i])
            n += vsw_switch_ports(d->switches[i]->sw, ports, VSW_MAX_PORTS);
    return n;
}

static void control__save_fails__each_change_undone_host_and_file_as_before(void **state)
{
    struct fixture *f = *state;
    ok(f, "switch-add", "{\"name\":\"sw0\",\"type\":\"private\"}");
    ok(f, "switch-add", "{\"name\":\"sw1\",\"type\":\"private\",\"mtu\":9000}");
    ok(f, "vm-add", "{\"name\":\"vm0\"}");
    ok(f, "nic-add",
       "{\"vm\":\"vm0\",\"nic\":\"eth0\",\"switch\":\"sw0\",\"mac\":\"02:00:00:00:00:01\"}");
    ok(f, "nic-add",
       "{\"vm\":\"vm0\",\"nic\":\"eth1\",\"switch\":\"sw0\",\"mac\":\"02:00:00:00:00:02\"}");
    ok(f, "fdb-add", "{\"switch\":\"sw0\",\"mac\":\"02:00:00:00:00:09\",\"port\":\"vm0/eth0\"}");
    /* Each change above was saved: the file is the host. */
    json_t *before = vsd_state_to_json(&f->d);
    json_error_t jerr;
    json_t *disk = json_load_file(f->d.state_path, 0, &jerr);
    assert_true(json_equal(before, disk));
    json_decref(disk);
    char *file_before = strdup(read_file(f->d.state_path));
    unsigned ports_before = all_ports(&f->d);

    /* Saves fail from now on: the state file's directory is a file. */
    char blocker[128];
    path_in(f, "blocker", blocker, sizeof(blocker));
    write_file(blocker, "not a directory\n");
    char good_path[PATH_MAX];
    snprintf(good_path, sizeof(good_path), "%s", f->d.state_path);
    snprintf(f->d.state_path, sizeof(f->d.state_path), "%s/state.json", blocker);
    static const char *const changes[][2] = {
        {"switch-add", "{\"name\":\"sw2\",\"type\":\"private\"}"},
        {"switch-set", "{\"name\":\"sw0\",\"mtu\":9000,\"fdb_max\":1024}"},
        {"switch-del", "{\"name\":\"sw1\"}"},
        {"vm-add", "{\"name\":\"vm1\"}"},
        {"nic-add", "{\"vm\":\"vm0\",\"nic\":\"eth2\",\"switch\":\"sw1\"}"},
        {"nic-set", "{\"vm\":\"vm0\",\"nic\":\"eth0\",\"switch\":\"sw1\",\"vlan\":5}"},
        {"nic-del", "{\"vm\":\"vm0\",\"nic\":\"eth1\"}"},
        {"fdb-add", "{\"switch\":\"sw0\",\"mac\":\"02:00:00:00:00:0a\",\"port\":\"vm0/eth1\"}"},
        {"fdb-del", "{\"switch\":\"sw0\",\"mac\":\"02:00:00:00:00:09\"}"},
        {"mirror-add", "{\"switch\":\"sw0\",\"src\":[\"vm0/eth0\"],\"dst\":\"vm0/eth1\"}"},
        {"vm-del", "{\"name\":\"vm0\"}"},
    };
    for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
        uint64_t failed = f->counters.failed;
        json_t *ans = request(f, changes[i][0], changes[i][1]);
        json_t *err = json_object_get(ans, "error");
        if (!err)
            fail_msg("%s %s succeeded without a save", changes[i][0], changes[i][1]);
        assert_int_equal(json_integer_value(json_object_get(err, "code")), VSD_FAILED);
        const char *msg = json_string_value(json_object_get(err, "message"));
        if (!strstr(msg, "cannot save state to") || !strstr(msg, blocker))
            fail_msg("%s: '%s' is not the save's error", changes[i][0], msg);
        assert_int_equal(f->counters.failed, failed + 1);
        json_decref(ans);
        json_t *after = vsd_state_to_json(&f->d);
        if (!json_equal(before, after))
            fail_msg("%s %s: the host changed although its save failed", changes[i][0],
                     changes[i][1]);
        json_decref(after);
        assert_int_equal(all_ports(&f->d), ports_before);
    }
    /* The file that was saved is untouched; saving works again once the
     * path does, and the host is still whole. */
    assert_string_equal(read_file(good_path), file_before);
    snprintf(f->d.state_path, sizeof(f->d.state_path), "%s", good_path);
    ok(f, "nic-del", "{\"vm\":\"vm0\",\"nic\":\"eth1\"}");
    assert_int_equal(all_ports(&f->d), ports_before - 1);
    free(file_before);
    json_decref(before);
}

/* The error code of an answer that must be a refusal. */
static json_int_t refused(struct fixture *f, const char *method, const char *params)
{
    json_t *ans = request(f, method, params);
    json_t *err = json_object_get(ans, "error");
    if (!err)
        fail_msg("%s %s was accepted", method, params);
    json_int_t code = json_integer_value(json_object_get(err, "code"));
    json_decref(ans);
    return code;
}


/*
 * --queues: the channels a NIC's guest may open reach netvsp (its RSS
 * capabilities and sub-channel grants go by them), "auto" is the VM's
 * virtual processors, the state file keeps the setting as given, nic-set
 * changes it live, and anything outside 1..8 or "auto" is refused.
 */
static void nic_queues__add_set_auto_and_bad__netvsp_and_state_follow(void **state)
{
    struct fixture *f = *state;
    ok(f, "switch-add", "{\"name\":\"sw0\",\"type\":\"private\"}");
    ok(f, "vm-add", "{\"name\":\"vm0\"}");
    ok(f, "nic-add", "{\"vm\":\"vm0\",\"nic\":\"eth0\",\"switch\":\"sw0\",\"queues\":4}");
    ok(f, "nic-add", "{\"vm\":\"vm0\",\"nic\":\"eth1\",\"switch\":\"sw0\"}");
    struct vsd_vm *vm = vsd_find_vm(&f->d, "vm0");
    assert_non_null(vm);
    struct netvsp_stats ns;
    netvsp_get_stats(vsd_find_nic(vm, "eth0")->np, &ns);
    assert_int_equal(ns.queues, 4);
    netvsp_get_stats(vsd_find_nic(vm, "eth1")->np, &ns);
    assert_int_equal(ns.queues, vm->cpus); /* auto */
    json_t *st = vsd_state_to_json(&f->d);
    json_t *nics = json_object_get(json_array_get(json_object_get(st, "vms"), 0), "nics");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(nics, 0), "queues")), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(nics, 1), "queues")),
                        "auto");
    json_decref(st);
    ok(f, "nic-set", "{\"vm\":\"vm0\",\"nic\":\"eth0\",\"queues\":\"auto\"}");
    netvsp_get_stats(vsd_find_nic(vm, "eth0")->np, &ns);
    assert_int_equal(ns.queues, vm->cpus);
    ok(f, "nic-set", "{\"vm\":\"vm0\",\"nic\":\"eth1\",\"queues\":8}");
    netvsp_get_stats(vsd_find_nic(vm, "eth1")->np, &ns);
    assert_int_equal(ns.queues, 8);
    assert_int_equal(refused(f, "nic-add",
                             "{\"vm\":\"vm0\",\"nic\":\"eth2\",\"switch\":\"sw0\",\"queues\":9}"),
                     VSD_BAD_PARAMS);
    assert_int_equal(refused(f, "nic-set", "{\"vm\":\"vm0\",\"nic\":\"eth1\",\"queues\":0}"),
                     VSD_BAD_PARAMS);
    assert_int_equal(
        refused(f, "nic-set", "{\"vm\":\"vm0\",\"nic\":\"eth1\",\"queues\":\"all\"}"),
        VSD_BAD_PARAMS);
    netvsp_get_stats(vsd_find_nic(vm, "eth1")->np, &ns);
    assert_int_equal(ns.queues, 8);
}

/*
 * worker-show through the dispatcher: one WORKER per switch worker, with
 * the ports it polls by name and switch, every counter of
 * docs/control-protocol.md, cycles per packet and busy % derived from
 * them; bad parameters are refused as such; clear answers the figures and
 * then counts from zero.
 */
static void worker_show__host_with_a_nic__every_worker_its_ports_and_figures(void **state)
{
    struct fixture *f = *state;
    ok(f, "switch-add", "{\"name\":\"sw0\",\"type\":\"private\"}");
    ok(f, "vm-add", "{\"name\":\"vm0\"}");
    ok(f, "nic-add", "{\"vm\":\"vm0\",\"nic\":\"eth0\",\"switch\":\"sw0\"}");
    assert_int_equal(refused(f, "worker-show", "{\"clear\":\"maybe\"}"), VSD_BAD_PARAMS);
    assert_int_equal(refused(f, "worker-show", "{\"bogus\":1}"), VSD_BAD_PARAMS);

    json_t *ans = request(f, "worker-show", "{}");
    json_t *res = json_object_get(ans, "result");
    assert_non_null(res);
    assert_true(json_is_false(json_object_get(res, "cleared")));
    assert_true(json_integer_value(json_object_get(res, "tsc_hz")) > 0);
    json_t *ws = json_object_get(res, "workers");
    assert_int_equal(json_array_size(ws), vsw_dp_workers(g_dp));
    json_t *w = json_array_get(ws, 0);
    static const char *const counters[] = {"rounds",       "busy_rounds", "busy_cycles",
                                           "idle_cycles",  "sleep_cycles", "sleeps",
                                           "wakeups",      "rx_packets",  "tx_packets"};
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        if (!json_is_integer(json_object_get(w, counters[i])))
            fail_msg("no integer %s in a WORKER", counters[i]);
    assert_int_equal(json_integer_value(json_object_get(w, "worker")), 0);
    struct vsw_worker_stats raw;
    vsw_dp_worker_stats(g_dp, &raw, 1);
    assert_int_equal(json_integer_value(json_object_get(w, "lcore")), raw.lcore);
    assert_true(json_integer_value(json_object_get(w, "rounds")) > 0);
    json_int_t busy = json_integer_value(json_object_get(w, "busy_cycles"));
    json_int_t rx = json_integer_value(json_object_get(w, "rx_packets"));
    double cpp = json_number_value(json_object_get(w, "cycles_per_packet"));
    assert_true(rx ? cpp == (double)busy / (double)rx : cpp == 0.0);
    double pct = json_number_value(json_object_get(w, "busy_pct"));
    assert_true(pct >= 0.0 && pct <= 100.0);
    assert_true(json_number_value(json_object_get(w, "seconds")) > 0.0);
    json_t *ports = json_object_get(w, "ports");
    assert_int_equal(json_array_size(ports), 1);
    json_t *p = json_array_get(ports, 0);
    assert_string_equal(json_string_value(json_object_get(p, "port")), "vm0/eth0");
    assert_string_equal(json_string_value(json_object_get(p, "switch")), "sw0");
    assert_true(json_is_integer(json_object_get(p, "rx_packets")));
    assert_true(json_is_integer(json_object_get(p, "tx_packets")));
    json_decref(ans);

    /* clear: these figures, then zero (nothing moved since). */
    ans = request(f, "worker-show", "{\"clear\":true}");
    assert_true(json_is_true(json_object_get(json_object_get(ans, "result"), "cleared")));
    json_decref(ans);
    ans = request(f, "worker-show", "{\"clear\":false}");
    w = json_array_get(json_object_get(json_object_get(ans, "result"), "workers"), 0);
    assert_int_equal(json_integer_value(json_object_get(w, "rx_packets")), 0);
    assert_int_equal(json_integer_value(json_object_get(w, "tx_packets")), 0);
    assert_int_equal(json_integer_value(json_object_get(w, "busy_rounds")), 0);
    p = json_array_get(json_object_get(w, "ports"), 0);
    assert_int_equal(json_integer_value(json_object_get(p, "rx_packets")), 0);
    json_decref(ans);
}

/* The lcore worker-show names for a port, and the queues it lists for it. */
static json_int_t worker_lcore_of(struct fixture *f, const char *port, json_t **queues)
{
    json_t *ans = request(f, "worker-show", "{}");
    json_t *ws = json_object_get(json_object_get(ans, "result"), "workers");
    size_t i, j;
    json_t *w, *p;
    json_int_t lcore = -1;
    json_array_foreach(ws, i, w)
        json_array_foreach(json_object_get(w, "ports"), j, p)
            if (strcmp(json_string_value(json_object_get(p, "port")), port) == 0) {
                lcore = json_integer_value(json_object_get(w, "lcore"));
                if (queues)
                    *queues = json_incref(json_object_get(p, "queues"));
            }
    json_decref(ans);
    return lcore;
}

/* vmq-show's rows: the result's queues, checked to be an array. */
static json_t *vmq_rows(struct fixture *f, const char *params, json_t **ans)
{
    *ans = request(f, "vmq-show", params);
    json_t *res = json_object_get(*ans, "result");
    if (!res)
        fail_msg("vmq-show %s: %s", params,
                 json_string_value(json_object_get(json_object_get(*ans, "error"), "message")));
    assert_string_equal(json_string_value(json_object_get(res, "classifier")), "software");
    assert_true(json_is_false(json_object_get(res, "hardware_filters")));
    json_t *rows = json_object_get(res, "queues");
    assert_true(json_is_array(rows));
    return rows;
}

/*
 * vmq-show through the dispatcher: a NIC with one queue (its guest not
 * connected) is one row, its primary, on the worker worker-show names,
 * with the NIC's MAC and VLAN as the filter and the FDB's VLANs for it;
 * SWITCH keeps that switch's rows only; an unknown switch and bad
 * parameters are refused with a clear error. worker-show lists the queue
 * under the port.
 */
static void vmq_show__nics_on_two_switches__rows_filter_worker_and_errors(void **state)
{
    struct fixture *f = *state;
    ok(f, "switch-add", "{\"name\":\"sw0\",\"type\":\"private\"}");
    ok(f, "switch-add", "{\"name\":\"sw1\",\"type\":\"private\"}");
    ok(f, "vm-add", "{\"name\":\"vm0\"}");
    ok(f, "nic-add", "{\"vm\":\"vm0\",\"nic\":\"eth0\",\"switch\":\"sw0\",\"vlan\":10,"
                     "\"mac\":\"02:00:00:00:00:01\",\"queues\":1}");
    ok(f, "nic-add", "{\"vm\":\"vm0\",\"nic\":\"eth1\",\"switch\":\"sw1\","
                     "\"mac\":\"02:00:00:00:00:02\",\"queues\":4}");
    ok(f, "fdb-add", "{\"switch\":\"sw0\",\"mac\":\"02:00:00:00:00:01\",\"vlan\":10,"
                     "\"port\":\"vm0/eth0\"}");

    json_t *ans;
    json_t *rows = vmq_rows(f, "{}", &ans);
    assert_int_equal(json_array_size(rows), 2);
    json_t *r = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(r, "switch")), "sw0");
    assert_string_equal(json_string_value(json_object_get(r, "queue")), "vm0/eth0:0");
    assert_string_equal(json_string_value(json_object_get(r, "vm")), "vm0");
    assert_string_equal(json_string_value(json_object_get(r, "nic")), "eth0");
    assert_int_equal(json_integer_value(json_object_get(r, "index")), 0);
    assert_true(json_is_false(json_object_get(r, "open"))); /* no guest */
    assert_string_equal(json_string_value(json_object_get(r, "classifier")), "software");
    json_t *flt = json_object_get(r, "filter");
    assert_string_equal(json_string_value(json_object_get(flt, "mac")), "02:00:00:00:00:01");
    json_t *vl = json_object_get(flt, "vlan");
    assert_string_equal(json_string_value(json_object_get(vl, "mode")), "access");
    assert_int_equal(json_integer_value(json_object_get(vl, "vlan")), 10);
    json_t *want = json_pack("[i]", 10);
    assert_true(json_equal(json_object_get(flt, "fdb_vlans"), want));
    json_decref(want);
    json_t *queues = NULL;
    assert_int_equal(json_integer_value(json_object_get(r, "lcore")),
                     worker_lcore_of(f, "vm0/eth0", &queues));
    want = json_pack("[i]", 0);
    assert_true(json_equal(queues, want));
    json_decref(want);
    json_decref(queues);
    assert_true(json_is_number(json_object_get(r, "load_pct")));
    assert_string_equal(json_string_value(json_object_get(r, "load_scope")), "port");
    assert_int_equal(json_integer_value(json_object_get(r, "rx_packets")), 0);
    r = json_array_get(rows, 1);
    assert_string_equal(json_string_value(json_object_get(r, "queue")), "vm0/eth1:0");
    assert_string_equal(json_string_value(json_object_get(json_object_get(
                            json_object_get(r, "filter"), "vlan"), "mode")),
                        "untagged");
    assert_int_equal(json_array_size(json_object_get(json_object_get(r, "filter"), "fdb_vlans")),
                     0);
    json_decref(ans);

    /* SWITCH: that switch's queues only. */
    rows = vmq_rows(f, "{\"switch\":\"sw1\"}", &ans);
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "port")),
                        "vm0/eth1");
    json_decref(ans);

    /* Bad arguments: clear errors, nothing else. */
    ans = request(f, "vmq-show", "{\"switch\":\"nope\"}");
    json_t *err = json_object_get(ans, "error");
    assert_non_null(err);
    assert_int_equal(json_integer_value(json_object_get(err, "code")), VSD_FAILED);
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "no switch 'nope'"));
    json_decref(ans);
    assert_int_equal(refused(f, "vmq-show", "{\"switch\":5}"), VSD_BAD_PARAMS);
    assert_int_equal(refused(f, "vmq-show", "{\"vm\":\"vm0\"}"), VSD_BAD_PARAMS);
}

/*
 * --vmq/--vmq-weight: nic-add and nic-set (live) give the NIC's port its
 * VMQ weight (0 when off: it shares the switch's default queue), a pin and
 * VMQ off are refused together whichever comes first, bad values are
 * refused with nothing changed, and the state file and vmq-show carry the
 * setting; the state file's options read back the same.
 */
static void nic_vmq__add_set_live_pin_conflict_state_and_show(void **state)
{
    struct fixture *f = *state;
    ok(f, "switch-add", "{\"name\":\"sw0\",\"type\":\"private\"}");
    ok(f, "vm-add", "{\"name\":\"vm0\"}");
    ok(f, "nic-add", "{\"vm\":\"vm0\",\"nic\":\"eth0\",\"switch\":\"sw0\",\"vmq\":false}");
    ok(f, "nic-add", "{\"vm\":\"vm0\",\"nic\":\"eth1\",\"switch\":\"sw0\",\"vmq_weight\":30}");
    struct vsd_vm *vm = vsd_find_vm(&f->d, "vm0");
    struct vsw_port *p0 = netvsp_port(vsd_find_nic(vm, "eth0")->np);
    struct vsw_port *p1 = netvsp_port(vsd_find_nic(vm, "eth1")->np);
    assert_int_equal(vsw_port_vmq_weight(p0), 0);
    assert_int_equal(vsw_port_vmq_weight(p1), 30);

    ok(f, "nic-set", "{\"vm\":\"vm0\",\"nic\":\"eth0\",\"vmq\":true}");
    assert_int_equal(vsw_port_vmq_weight(p0), 100);
    ok(f, "nic-set", "{\"vm\":\"vm0\",\"nic\":\"eth0\",\"vmq_weight\":0}");
    assert_int_equal(vsw_port_vmq_weight(p0), 0);
    ok(f, "nic-set", "{\"vm\":\"vm0\",\"nic\":\"eth0\",\"vmq_weight\":70,\"vmq\":false}");
    assert_int_equal(vsw_port_vmq_weight(p0), 0);

    char params[160];
    unsigned lc = vsw_port_worker_lcore(p1);
    snprintf(params, sizeof(params), "{\"vm\":\"vm0\",\"nic\":\"eth0\",\"worker\":%u}", lc);
    json_t *ans = request(f, "nic-set", params);
    json_t *err = json_object_get(ans, "error");
    assert_non_null(err);
    assert_int_equal(json_integer_value(json_object_get(err, "code")), VSD_BAD_PARAMS);
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "cannot be pinned"));
    json_decref(ans);
    snprintf(params, sizeof(params),
             "{\"vm\":\"vm0\",\"nic\":\"eth2\",\"switch\":\"sw0\",\"worker\":%u,"
             "\"vmq_weight\":0}", lc);
    assert_int_equal(refused(f, "nic-add", params), VSD_BAD_PARAMS);
    snprintf(params, sizeof(params), "{\"vm\":\"vm0\",\"nic\":\"eth1\",\"worker\":%u}", lc);
    ok(f, "nic-set", params);
    assert_int_equal(refused(f, "nic-set", "{\"vm\":\"vm0\",\"nic\":\"eth1\",\"vmq\":false}"),
                     VSD_BAD_PARAMS);
    assert_int_equal(vsw_port_vmq_weight(p1), 30);
    assert_int_equal(vsw_port_pin(p1), (int)lc);
    /* Unpinned and off in one request: the pin is lifted first. */
    ok(f, "nic-set", "{\"vm\":\"vm0\",\"nic\":\"eth1\",\"worker\":\"auto\",\"vmq\":false}");
    assert_int_equal(vsw_port_vmq_weight(p1), 0);
    assert_int_equal(vsw_port_pin(p1), VSW_PIN_AUTO);
    static const char *const bad[] = {"\"vmq_weight\":101", "\"vmq_weight\":-1",
                                      "\"vmq_weight\":\"high\"", "\"vmq\":\"no\"",
                                      "\"vmq\":0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(params, sizeof(params), "{\"vm\":\"vm0\",\"nic\":\"eth0\",%s}", bad[i]);
        assert_int_equal(refused(f, "nic-set", params), VSD_BAD_PARAMS);
    }
    struct vsd_nic_opts *o0 = &vsd_find_nic(vm, "eth0")->opts;
    assert_true(o0->vmq_off);
    assert_int_equal(o0->vmq_weight, 70);
    assert_int_equal(vsw_port_vmq_weight(p0), 0);

    /* The state file: as given; read back by the same parser, the same. */
    json_t *st = vsd_state_to_json(&f->d);
    json_t *nics = json_object_get(json_array_get(json_object_get(st, "vms"), 0), "nics");
    json_t *n0 = json_array_get(nics, 0), *n1 = json_array_get(nics, 1);
    assert_true(json_is_false(json_object_get(n0, "vmq")));
    assert_int_equal(json_integer_value(json_object_get(n0, "vmq_weight")), 70);
    assert_true(json_is_false(json_object_get(n1, "vmq")));
    assert_int_equal(json_integer_value(json_object_get(n1, "vmq_weight")), 30);
    /* Read back as the state file's loader does (its options, the way
     * nic-set takes them, through the same parser), as a new NIC. */
    json_t *opts = json_deep_copy(n0);
    static const char *const drop[] = {"name", "mac", "mtu", "instance"};
    for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
        json_object_del(opts, drop[i]);
    json_object_set_new(opts, "vm", json_string("vm0"));
    json_object_set_new(opts, "nic", json_string("eth3"));
    char *text = json_dumps(opts, JSON_COMPACT);
    assert_non_null(text);
    ok(f, "nic-add", text);
    free(text);
    json_decref(opts);
    json_decref(st);
    struct vsd_nic_opts *o3 = &vsd_find_nic(vm, "eth3")->opts;
    assert_true(o3->vmq_off);
    assert_int_equal(o3->vmq_weight, 70);
    assert_int_equal(vsw_port_vmq_weight(netvsp_port(vsd_find_nic(vm, "eth3")->np)), 0);
    ok(f, "nic-del", "{\"vm\":\"vm0\",\"nic\":\"eth3\"}");

    /* vmq-show: the NIC's VMQ, and that it shares the default queue. */
    ok(f, "nic-set", "{\"vm\":\"vm0\",\"nic\":\"eth1\",\"vmq\":true}");
    json_t *rows = vmq_rows(f, "{}", &ans);
    assert_int_equal(json_array_size(rows), 2);
    json_t *r0 = json_array_get(rows, 0), *r1 = json_array_get(rows, 1);
    assert_true(json_is_false(json_object_get(r0, "vmq")));
    assert_true(json_is_true(json_object_get(r0, "shares_default")));
    assert_int_equal(json_integer_value(json_object_get(r0, "vmq_weight")), 70);
    assert_true(json_is_true(json_object_get(r1, "vmq")));
    assert_true(json_is_false(json_object_get(r1, "shares_default")));
    assert_int_equal(json_integer_value(json_object_get(r1, "vmq_weight")), 30);
    json_decref(ans);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            vsd_state_save__symlink_at_temp_path__refused_target_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_state_save__dangling_symlink_at_temp_path__nothing_created, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_state_save__regular_file_at_temp_path__refused_file_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_state_load__leftover_temp_of_own_pid__removed_then_saves, setup, teardown),
        cmocka_unit_test_setup_teardown(
            rpc__client_never_reads__others_served_it_is_dropped_at_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(
            rpc__deadline_and_client_event_in_one_batch__client_outlives_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(
            rpc__pipelined_requests_read_slowly__all_answered_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(rpc__request_then_half_close__answered_then_closed,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(rpc__parked_answers_pile_past_bound__client_dropped,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(rpc__parked_answers_read__both_delivered, setup,
                                        teardown),
    };
    const struct CMUnitTest host_tests[] = {
        cmocka_unit_test_setup_teardown(
            control__save_fails__each_change_undone_host_and_file_as_before, host_setup,
            host_teardown),
        cmocka_unit_test_setup_teardown(
            worker_show__host_with_a_nic__every_worker_its_ports_and_figures, host_setup,
            host_teardown),
        cmocka_unit_test_setup_teardown(nic_queues__add_set_auto_and_bad__netvsp_and_state_follow,
                                        host_setup, host_teardown),
        cmocka_unit_test_setup_teardown(
            vmq_show__nics_on_two_switches__rows_filter_worker_and_errors, host_setup,
            host_teardown),
        cmocka_unit_test_setup_teardown(nic_vmq__add_set_live_pin_conflict_state_and_show,
                                        host_setup, host_teardown),
    };
    int failed = cmocka_run_group_tests_name("vswitchd", tests, NULL, NULL);
    return failed + cmocka_run_group_tests_name("vswitchd_host", host_tests, host_group_setup,
                                                host_group_teardown);
}
