/*
 * libFuzzer harness for vswitchd's control protocol: JSON-RPC 2.0 request
 * lines as an operator (vswitch-ctl or anything else on the socket) sends
 * them, served by rpc.c (vsd_rpc_serve_line: its own parsing and checks),
 * the method table (methods.c: the dispatch, the save), vswitchd's methods
 * (control.c) and the model behind them, and the answer.
 *
 * Made once: the process of fuzz_vsd_env.c (EAL with one switch worker,
 * the jumbo pools, the data plane, the partition table; its own network
 * namespace as root). Every input starts from the same host, built through
 * the model's C API as the state file would be (final at once, then one
 * save):
 *   switches  sw0 (private), sw1 (private, MTU 9000)
 *   VMs       vm0, vm1 (namespace ns1, 128 MiB), never started
 *   NICs      vm0/eth0 on sw0 (00:15:5d:00:00:01), vm0/eth1 on sw1 (MTU
 *             9000, trunk 10,20), vm1/eth0 on sw0 (VLAN 5)
 *   static    02:00:00:00:00:09 -> vm0/eth0 on sw0
 * and is torn down completely after it (vsd_shutdown), so inputs are
 * independent, crashes reproduce and LeakSanitizer sees every leak. No
 * internal switch is part of it: deleting a TAP takes the kernel some 30 ms
 * (RTM_DELLINK waits for an RCU grace period), six times what the rest of
 * an input costs. Inputs make their own (switch-add type internal,
 * switch-set, allow_management_os; see the seeds), as root in the
 * harness's own network namespace.
 *
 * Input: request lines separated by '\n', each served in turn. Skipped
 * rather than served:
 *   - vm-start and vm-stop (they start and stop a worker process and wait
 *     for it) and capture (its answer waits for frames or a timeout);
 *     vsd_rpc_serve_line would refuse the last two anyway;
 *   - switch-add / switch-set with an uplink other than net_ring devargs
 *     (a fuzzer must not attach host devices or write pcap files);
 *   - without a namespace of our own, requests that would create a TAP,
 *     and vm-del (it removes a namespace vm-add made);
 *   - lines of 64 KiB or more, which the socket refuses before parsing.
 *
 * Checked after every request, besides the sanitizers:
 *   - the answer is one JSON-RPC 2.0 response: the request's id (null when
 *     the request had none or was not JSON), exactly one of result and
 *     error, a known error code;
 *   - a refused request (any error) changed nothing: vsd_state_to_json()
 *     before and after are equal;
 *   - the state file on disk parses and equals vsd_state_to_json(): nothing
 *     half-applied, nothing changed without being saved;
 *   - fz_check_vsd(): the model agrees with the data plane (the ports each
 *     switch has, every NIC on its switch with its MTU, MAC and options);
 *   - after the teardown, every mbuf is back in the pool.
 * With FUZZ_VSD_DEBUG set, vswitchd's log and each request with its answer
 * are printed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_vsd_env.h"

#define MAX_LINE (64 * 1024) /* rpc.c's RPC_MAX_REQUEST */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

const char *fz_name = "fuzz_vsd_rpc";

static bool ready;
static struct vsd d;
static struct vsd_methods *methods;
static struct vsd_rpc_counters counters;
static struct vsd_control ctl = {.d = &d, .counters = &counters};
static char state_file[PATH_MAX];

static void ok(int rc, const char *what, const struct vsd_err *e)
{
    if (rc < 0) {
        fprintf(fz.out, "fuzz_vsd_rpc: baseline %s: %s\n", what, e->msg);
        abort();
    }
}

static void baseline(void)
{
    struct vsd_err e = {0};
    fz_vsd_init(&d, "state.json");
    struct vsd_switch_params sp;
    vsd_switch_params_init(&sp, "sw0", VSW_SWITCH_PRIVATE);
    ok(vsd_switch_add(&d, &sp, NULL, &e), "sw0", &e);
    vsd_switch_params_init(&sp, "sw1", VSW_SWITCH_PRIVATE);
    sp.mtu = 9000;
    ok(vsd_switch_add(&d, &sp, NULL, &e), "sw1", &e);
    /* As the state file would make them: not counted as made by vm-add
     * (restore), so vm-del leaves their namespaces alone. */
    struct vsd_vm_params vp;
    vsd_vm_params_init(&vp, "vm0");
    vp.restore = true;
    ok(vsd_vm_add(&d, &vp, NULL, &e), "vm0", &e);
    vsd_vm_params_init(&vp, "vm1");
    vp.netns = "ns1";
    vp.memory_mb = 128;
    vp.restore = true;
    ok(vsd_vm_add(&d, &vp, NULL, &e), "vm1", &e);
    struct vsd_nic_params np = {.vm = "vm0", .nic = "eth0", .sw = "sw0", .has_mac = true,
                                .mac = {0x00, 0x15, 0x5d, 0, 0, 0x01}};
    ok(vsd_nic_add(&d, &np, NULL, NULL, &e), "vm0/eth0", &e);
    np = (struct vsd_nic_params){.vm = "vm0", .nic = "eth1", .sw = "sw1", .has_mac = true,
                                 .mac = {0x00, 0x15, 0x5d, 0, 0, 0x02}, .mtu = 9000,
                                 .opts = {.trunk = true}};
    np.opts.allowed[0] = (1ull << 10) | (1ull << 20);
    ok(vsd_nic_add(&d, &np, NULL, NULL, &e), "vm0/eth1", &e);
    np = (struct vsd_nic_params){.vm = "vm1", .nic = "eth0", .sw = "sw0", .has_mac = true,
                                 .mac = {0x00, 0x15, 0x5d, 0, 0, 0x03}, .opts = {.access_vlan = 5}};
    ok(vsd_nic_add(&d, &np, NULL, NULL, &e), "vm1/eth0", &e);
    static const uint8_t mac9[6] = {0x02, 0, 0, 0, 0, 0x09};
    ok(vsd_fdb_add(&d, "sw0", mac9, 0, "vm0/eth0", NULL, &e), "static entry", &e);
    FZ_CHECK(vsd_state_save(&d, &e) == 0);
}

/* Should this line reach vswitchd? See the header comment. */
static bool servable(const char *line, size_t len)
{
    if (len >= MAX_LINE)
        return false;
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    if (!req)
        return true;
    bool ok = true;
    const char *m = json_string_value(json_object_get(req, "method"));
    json_t *params = json_object_get(req, "params");
    if (m && (strcmp(m, "vm-start") == 0 || strcmp(m, "vm-stop") == 0 ||
              strcmp(m, "capture") == 0))
        ok = false;
    /* vm-del removes the VM's namespace if vm-add made it: only in ours. */
    if (m && !fz.own_ns && strcmp(m, "vm-del") == 0)
        ok = false;
    if (m && (strcmp(m, "switch-add") == 0 || strcmp(m, "switch-set") == 0)) {
        const char *up = json_string_value(json_object_get(params, "uplink"));
        if (up && !fz_uplink_ok(up))
            ok = false;
        if (!fz_tap_ok(json_object_get(params, "type"),
                       json_object_get(params, "allow_management_os")))
            ok = false;
    }
    json_decref(req);
    return ok;
}

static void check_answer(const char *line, size_t len, const char *text, bool *is_error)
{
    FZ_CHECK(text);
    FZ_CHECK(!strchr(text, '\n'));
    json_t *ans = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    FZ_CHECK(json_is_object(ans));
    const char *ver = json_string_value(json_object_get(ans, "jsonrpc"));
    FZ_CHECK(ver && strcmp(ver, "2.0") == 0);
    json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *want = req ? json_object_get(req, "id") : NULL;
    json_t *id = json_object_get(ans, "id");
    FZ_CHECK(id && (want ? json_equal(id, want) : json_is_null(id)));
    json_t *result = json_object_get(ans, "result"), *error = json_object_get(ans, "error");
    FZ_CHECK((result != NULL) != (error != NULL));
    FZ_CHECK(json_object_size(ans) == 3);
    if (error) {
        json_int_t code = json_integer_value(json_object_get(error, "code"));
        FZ_CHECK(code == -32700 || code == -32600 || code == -32601 || code == VSD_BAD_PARAMS ||
                 code == VSD_FAILED);
        FZ_CHECK(json_is_string(json_object_get(error, "message")));
    }
    *is_error = error != NULL;
    json_decref(req);
    json_decref(ans);
}

static void serve(const char *line, size_t len)
{
    json_t *before = vsd_state_to_json(&d);
    uint64_t requests = counters.requests;
    struct vsd_rpc_endpoint ep = {
        .handler = vsd_methods_serve, .ctx = methods, .counters = &counters};
    char *text = vsd_rpc_serve_line(&ep, line, len);
    if (fz.debug)
        fprintf(fz.out, "> %.*s\n< %s\n", (int)len, line, text ? text : "(null)");
    bool is_error;
    check_answer(line, len, text, &is_error);
    free(text);
    FZ_CHECK(counters.requests == requests + 1);
    json_t *after = vsd_state_to_json(&d);
    FZ_CHECK(before && after);
    if (is_error)
        FZ_CHECK(json_equal(before, after));
    json_error_t jerr;
    json_t *disk = json_load_file(state_file, JSON_REJECT_DUPLICATES, &jerr);
    FZ_CHECK(disk);
    FZ_CHECK(json_equal(disk, after));
    json_decref(disk);
    json_decref(before);
    json_decref(after);
    fz_check_vsd(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        fz_env_init();
        fz_path(state_file, sizeof(state_file), "state.json");
        ready = true;
    }
    baseline();
    FZ_CHECK(vsd_control_create(&ctl, &methods) == 0);
    fz_check_vsd(&d);
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (servable(p, len))
            serve(p, len);
        p += len + 1;
    }
    vsd_methods_destroy(methods);
    fz_vsd_fini(&d);
    return 0;
}
