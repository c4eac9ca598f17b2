/*
 * worker-show: what each switch worker did, like ovs-appctl
 * dpif-netdev/pmd-stats-show. The figures are the data plane's
 * (vsw_dp_worker_stats_since_clear(), vsw_dp_worker_ports()): counted by
 * the workers themselves, read here, and taken since the last clear.
 * "clear": true answers the figures up to now, then starts a new baseline
 * (vsw_dp_stats_clear(), kept on this thread: nothing a worker writes is
 * reset), so that repeating it gives one interval at a time.
 */
#include <stdlib.h>

#include <rte_cycles.h>

#include "vsw.h"
#include "control-private.h"

static json_t *ports_json(struct vsw_dp *dp, unsigned worker)
{
    /* Counted, then read: this thread alone changes a worker's ports. */
    unsigned n = vsw_dp_worker_ports(dp, worker, NULL, 0);
    struct vsw_worker_port *wp = calloc(n ? n : 1, sizeof(*wp));
    json_t *arr = json_array();
    if (!wp || !arr)
        goto fail;
    n = vsw_dp_worker_ports(dp, worker, wp, n);
    for (unsigned i = 0; i < n; i++) {
        json_t *p = json_pack("{s:s,s:s,s:I,s:I}", "port", vsw_port_name(wp[i].port), "switch",
                              vsw_switch_name(vsw_port_switch(wp[i].port)), "rx_packets",
                              (json_int_t)wp[i].rx_packets, "tx_packets",
                              (json_int_t)wp[i].tx_packets);
        if (!p || json_array_append_new(arr, p) < 0)
            goto fail;
    }
    free(wp);
    return arr;

fail:
    free(wp);
    json_decref(arr);
    return NULL;
}

static json_t *worker_json(struct vsw_dp *dp, unsigned idx, const struct vsw_worker_stats *s,
                           uint64_t hz)
{
    json_t *ports = ports_json(dp, idx);
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
        json_t *w = worker_json(d->dp, i, &ws[i], hz);
        if (!w || json_array_append_new(arr, w) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    if (!arr)
        return vsd_fail(e, VSD_FAILED, "out of memory");
    if (clear)
        vsw_dp_stats_clear(d->dp);
    *result = json_pack("{s:o,s:I,s:b}", "workers", arr, "tsc_hz", (json_int_t)hz, "cleared",
                        clear);
    return *result ? 0 : vsd_fail(e, VSD_FAILED, "out of memory");
}

static const struct vsd_method_def worker_methods[] = {
    {"worker-show", worker_show, 0},
};

int vsd_worker_methods_register(struct vsd_methods *t, struct vsd *d)
{
    return vsd_methods_register_all(t, worker_methods,
                                    sizeof(worker_methods) / sizeof(worker_methods[0]), d);
}
