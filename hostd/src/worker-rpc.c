/*
 * worker-show: what each switch worker did, like ovs-appctl
 * dpif-netdev/pmd-stats-show. The figures are the data plane's
 * (vsw_dp_worker_stats_since_clear(), vsw_dp_worker_ports()): counted by
 * the workers themselves, read here, and taken since the last clear.
 * "clear": true answers the figures up to now, then starts a new baseline
 * (vsw_dp_stats_clear(), kept on this thread: nothing a worker writes is
 * reset), so that repeating it gives one interval at a time. Each port
 * lists the queues its worker serves of it (vsd_port_queues, vmq-rpc.c).
 */
#include <stdlib.h>

#include <rte_cycles.h>

#include "vsw-placement.h"
#include "vsw.h"
#include "control-private.h"

static json_t *ports_json(struct vsd *d, unsigned worker)
{
    struct vsw_dp *dp = d->dp;
    /* Counted, then read: this thread alone changes a worker's ports. */
    unsigned n = vsw_dp_worker_ports(dp, worker, NULL, 0);
    struct vsw_worker_port *wp = calloc(n ? n : 1, sizeof(*wp));
    json_t *arr = json_array();
    if (!wp || !arr)
        goto fail;
    n = vsw_dp_worker_ports(dp, worker, wp, n);
    for (unsigned i = 0; i < n; i++) {
        /* "worker": the pin as set, "auto" when placed by load. */
        json_t *pin = wp[i].pin_lcore == VSW_PIN_AUTO ? json_string("auto")
                                                       : json_integer(wp[i].pin_lcore);
        json_t *p = json_pack("{s:s,s:s,s:I,s:I,s:f,s:I,s:I,s:o,s:b}", "port",
                              vsw_port_name(wp[i].port), "switch",
                              vsw_switch_name(vsw_port_switch(wp[i].port)), "rx_packets",
                              (json_int_t)wp[i].rx_packets, "tx_packets",
                              (json_int_t)wp[i].tx_packets, "load_pct",
                              (double)(long long)(wp[i].load_pct * 10.0 + 0.5) / 10.0, "cycles",
                              (json_int_t)wp[i].cycles, "moves", (json_int_t)wp[i].moves,
                              "worker", pin, "pin_missing", wp[i].pin_missing);
        if (!p || json_array_append_new(arr, p) < 0)
            goto fail;
        /* The queues it serves of the port: all of them (vmq-rpc.c). */
        unsigned idx[VSD_PORT_QUEUES_MAX];
        unsigned nq = vsd_port_queues(d, wp[i].port, idx, VSD_PORT_QUEUES_MAX);
        json_t *q = json_array();
        for (unsigned k = 0; q && k < nq && k < VSD_PORT_QUEUES_MAX; k++)
            json_array_append_new(q, json_integer(idx[k]));
        if (json_object_set_new(p, "queues", q) < 0)
            goto fail;
    }
    free(wp);
    return arr;

fail:
    free(wp);
    json_decref(arr);
    return NULL;
}

static json_t *worker_json(struct vsd *d, unsigned idx, const struct vsw_worker_stats *s,
                           uint64_t hz)
{
    json_t *ports = ports_json(d, idx);
    if (!ports)
        return NULL;
    uint64_t all = s->busy_cycles + s->idle_cycles + s->sleep_cycles;
    return json_pack("{s:i,s:i,s:o,s:f,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f}", "worker",
                     (json_int_t)idx, "lcore", (json_int_t)s->lcore, "ports", ports, "seconds",
                     hz ? (double)all / (double)hz : 0.0, "rounds", (json_int_t)s->rounds,
                     "busy_rounds", (json_int_t)s->busy_rounds, "busy_pct",
                     vsw_worker_busy_pct(s), "busy_cycles", (json_int_t)s->busy_cycles,
                     "idle_cycles", (json_int_t)s->idle_cycles, "sleep_cycles",
                     (json_int_t)s->sleep_cycles, "sleeps", (json_int_t)s->sleeps, "wakeups",
                     (json_int_t)s->wakeups, "rx_packets", (json_int_t)s->rx_packets,
                     "tx_packets", (json_int_t)s->tx_packets, "cycles_per_packet",
                     vsw_worker_cycles_per_packet(s));
}

static int worker_show(void *ctx, const json_t *params, struct vsd_method_call *call,
                       json_t **result, struct vsd_err *e)
{
    static const char *const keys[] = {"clear", NULL};
    struct vsd *d = ctx;
    bool clear = false, has_clear;
    (void)call;
    if (vsd_check_keys(params, keys, e) < 0 ||
        vsd_get_bool(params, "clear", &clear, &has_clear, e) < 0)
        return -1;
    struct vsw_worker_stats ws[VSW_MAX_WORKERS];
    unsigned n = vsw_dp_worker_stats_since_clear(d->dp, ws, VSW_MAX_WORKERS);
    if (n > VSW_MAX_WORKERS)
        n = VSW_MAX_WORKERS;
    uint64_t hz = rte_get_tsc_hz();
    json_t *arr = json_array();
    for (unsigned i = 0; arr && i < n; i++) {
        json_t *w = worker_json(d, i, &ws[i], hz);
        if (!w || json_array_append_new(arr, w) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    if (!arr)
        return vsd_fail(e, VSD_FAILED, "out of memory");
    if (clear)
        vsw_dp_stats_clear(d->dp);
    struct vsw_placement_stats ps;
    vsw_dp_placement_stats(d->dp, &ps);
    *result = json_pack("{s:o,s:I,s:b,s:{s:b,s:i,s:I,s:I,s:I,s:I,s:I,s:I}}", "workers", arr,
                        "tsc_hz", (json_int_t)hz, "cleared", clear, "placement", "dynamic_vmq",
                        ps.dynamic, "load_threshold", (json_int_t)ps.load_threshold,
                        "samples", (json_int_t)ps.samples, "moves", (json_int_t)ps.moves,
                        "spread_moves", (json_int_t)ps.spread_moves, "pack_moves",
                        (json_int_t)ps.pack_moves, "pin_moves", (json_int_t)ps.pin_moves,
                        "move_failures", (json_int_t)ps.move_failures);
    return *result ? 0 : vsd_fail(e, VSD_FAILED, "out of memory");
}

/* worker-set: what it was, to go back to if the state cannot be saved. */
struct dyn_rec {
    struct vsd *d;
    bool old;
    unsigned old_threshold;
};

static void dyn_commit(void *rec)
{
    struct dyn_rec *r = rec;
    struct vsw_placement_stats ps;
    vsw_dp_placement_stats(r->d->dp, &ps);
    vsd_log("dynamic VMQ %s, load threshold %u %%", ps.dynamic ? "on" : "off", ps.load_threshold);
}

static void dyn_undo(void *rec)
{
    struct dyn_rec *r = rec;
    vsw_dp_set_dynamic(r->d->dp, r->old);
    vsw_dp_set_load_threshold(r->d->dp, r->old_threshold);
}

static int worker_set(void *ctx, const json_t *params, struct vsd_method_call *call,
                      json_t **result, struct vsd_err *e)
{
    static const char *const keys[] = {"dynamic_vmq", "load_threshold", NULL};
    struct vsd *d = ctx;
    bool on, has, has_t;
    long long t;
    (void)result;
    if (vsd_check_keys(params, keys, e) < 0 ||
        vsd_get_bool(params, "dynamic_vmq", &on, &has, e) < 0 ||
        vsd_get_int(params, "load_threshold", 1, 100, &t, &has_t, e) < 0)
        return -1;
    if (!has && !has_t)
        return vsd_fail(e, VSD_BAD_PARAMS, "nothing to change: give dynamic_vmq or load_threshold");
    struct vsw_placement_stats ps;
    vsw_dp_placement_stats(d->dp, &ps);
    struct dyn_rec r = {.d = d, .old = ps.dynamic, .old_threshold = ps.load_threshold};
    if ((!has || on == r.old) && (!has_t || (unsigned)t == r.old_threshold))
        return 0;
    if (has)
        vsw_dp_set_dynamic(d->dp, on);
    if (has_t)
        vsw_dp_set_load_threshold(d->dp, (unsigned)t);
    VSD_CHANGE_OPEN(vsd_method_change(call), dyn_commit, dyn_undo, r);
    return 0;
}

static const struct vsd_method_def worker_methods[] = {
    {"worker-show", worker_show, 0},
    {"worker-set", worker_set, VSD_METHOD_CHANGES_STATE},
};

int vsd_worker_methods_register(struct vsd_methods *t, struct vsd *d)
{
    return vsd_methods_register_all(t, worker_methods,
                                    sizeof(worker_methods) / sizeof(worker_methods[0]), d);
}
