/*
 * The port methods: stats and capture. Ports as the control protocol shows
 * them (stats, switch-show): counters, drops by reason, VLAN mode, and what
 * each kind of port adds (the guest's NVSP/RNDIS state for a VM NIC, the
 * device for an uplink). capture answers when the capture ends: its answer
 * waits in a pending handle (vsd-rpc.h) that the model's completion
 * callback answers.
 */
#include <stdio.h>

#include "netvsp.h"
#include "vmnic.h"
#include "vsw-host.h"
#include "vsw-port-provider.h"
#include "vsw-uplink.h"
#include "control-private.h"

static json_t *drops_json(const struct vsw_port_stats *st)
{
    json_t *o = json_object();
    for (int i = 0; i < VSW_DROP_COUNT; i++)
        json_object_set_new(o, vsw_drop_name((enum vsw_drop)i),
                            json_integer((json_int_t)st->drops[i]));
    return o;
}

/* netvsp reports 0 until a guest has negotiated NVSP, then the version it
 * took from vmnic's table: the table names it. */
static const char *nvsp_version_str(uint32_t v)
{
    const char *name = vmnic_nvsp_version_name(v);
    return name ? name : "-";
}

static json_t *guest_json(struct vsd_nic *n)
{
    struct netvsp_stats ns;
    netvsp_get_stats(n->np, &ns);
    json_t *errs = json_object();
    for (int i = 0; i < NETVSP_ERR_COUNT; i++)
        json_object_set_new(errs, netvsp_err_name((enum netvsp_err)i),
                            json_integer((json_int_t)ns.errors[i]));
    json_t *lso = json_object();
    for (int i = 0; i < NETVSP_LSO_DROP_COUNT; i++)
        json_object_set_new(lso, netvsp_lso_drop_name((enum netvsp_lso_drop)i),
                            json_integer((json_int_t)ns.lso_drops[i]));
    json_t *rss_refused = json_object();
    for (int i = 0; i < NETVSP_RSS_ERR_COUNT; i++)
        json_object_set_new(rss_refused, netvsp_rss_err_name((enum netvsp_rss_err)i),
                            json_integer((json_int_t)ns.rss_refused[i]));
    const char *nv = nvsp_version_str(ns.nvsp_version);
    char ndis[16];
    if (ns.ndis_version)
        snprintf(ndis, sizeof(ndis), "%u.%u", ns.ndis_version >> 16, ns.ndis_version & 0xffff);
    else
        snprintf(ndis, sizeof(ndis), "-");
    json_t *subch_refused = json_object();
    for (int i = 0; i < NETVSP_SUBCH_ERR_COUNT; i++)
        json_object_set_new(subch_refused, netvsp_subch_err_name((enum netvsp_subch_err)i),
                            json_integer((json_int_t)ns.subch_refused[i]));
    /* One entry per channel the NIC may have (index 0 the primary). */
    json_t *chans = json_array();
    for (uint32_t i = 0; i < ns.queues && i < NETVSP_QUEUES_MAX; i++)
        json_array_append_new(chans, json_pack("{s:i,s:I,s:I}", "channel", (json_int_t)i,
                                               "rx_packets", (json_int_t)ns.chan_rx[i],
                                               "tx_packets", (json_int_t)ns.chan_tx[i]));
    json_t *j = json_pack("{s:i,s:i,s:I,s:I,s:o,s:I,s:o}", "queues", (json_int_t)ns.queues,
                          "channels_open", (json_int_t)ns.channels, "subchannels_granted",
                          (json_int_t)ns.subchannels_granted, "subchannel_opens",
                          (json_int_t)ns.subchannel_opens, "subchannel_refused", subch_refused,
                          "send_tables_sent", (json_int_t)ns.itab_sent, "channels", chans);
    json_t *g = json_pack("{s:s,s:s,s:b,s:i,s:i,s:b,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:b,s:b,s:b,"
                     "s:b,s:I,s:I,s:I,s:I,s:b,s:I,s:I,s:I,s:I,s:o,s:I}",
                     "nvsp_version", nv,
                     "ndis_version", ndis, "connected", ns.connected, "target_vp",
                     (json_int_t)ns.target_vp, "frame_size",
                     (json_int_t)ns.frame_size, "mtu_pending", ns.mtu_pending, "errors", errs,
                     "disconnects",
                     (json_int_t)ns.disconnects, "opens", (json_int_t)ns.opens, "tx_no_buffer",
                     (json_int_t)ns.tx_no_buffer, "tx_ring_full", (json_int_t)ns.tx_ring_full,
                     "tx_filtered", (json_int_t)ns.tx_filtered, "rx_frames_too_big",
                     (json_int_t)ns.rx_frames_too_big, "lso_frames", (json_int_t)ns.lso_frames,
                     "lso_drops", lso, "lso4", ns.lso4, "lso6", ns.lso6, "rx_csum", ns.rx_csum,
                     "rsc", ns.rsc, "rsc_frames", (json_int_t)ns.rsc_frames, "tx_rsc_refused",
                     (json_int_t)ns.tx_rsc_refused, "zc_frames", (json_int_t)ns.zc_frames,
                     "zc_fallbacks", (json_int_t)ns.zc_fallbacks, "rss", ns.rss,
                     "rss_hash_types", (json_int_t)ns.rss_hash_types, "rss_table_size",
                     (json_int_t)ns.rss_itab_size, "rss_sets", (json_int_t)ns.rss_sets,
                     "rss_hashed", (json_int_t)ns.rss_hashed, "rss_refused", rss_refused,
                     "subchannels_refused", (json_int_t)ns.subchannels_refused);
    json_object_update(g, j);
    json_decref(j);
    return g;
}

json_t *vsd_vlan_json(const struct vsw_port_policy *pol)
{
    if (pol->trunk) {
        json_t *list = json_array();
        for (int v = 1; v <= VSW_VLAN_MAX; v++)
            if (vsw_policy_allowed(pol, (uint16_t)v))
                json_array_append_new(list, json_integer(v));
        return json_pack("{s:s,s:o,s:i}", "mode", "trunk", "allowed", list, "native",
                         (json_int_t)pol->native_vlan);
    }
    if (pol->access_vlan)
        return json_pack("{s:s,s:i}", "mode", "access", "vlan", (json_int_t)pol->access_vlan);
    return json_pack("{s:s}", "mode", "untagged");
}

json_t *vsd_port_json(struct vsd_switch *s, struct vsw_port *port, struct vsd_nic *nic)
{
    struct vsw_port_stats st;
    vsw_port_get_stats(port, &st);
    struct vsw_port_policy pol;
    vsw_port_get_policy(port, &pol);
    const char *type = nic ? "vm" : vsw_is_host_port(port) ? "host" : "uplink";
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:i,s:I,s:I,s:I,s:I,s:o,s:o}", "switch", s->name,
                          "port", vsw_port_name(port), "type", type, "link",
                          vsw_port_link(port) ? "up" : "down", "mtu",
                          (json_int_t)(nic ? nic->mtu : s->mtu), "rx_packets",
                          (json_int_t)st.rx_packets, "rx_bytes", (json_int_t)st.rx_bytes,
                          "tx_packets", (json_int_t)st.tx_packets, "tx_bytes",
                          (json_int_t)st.tx_bytes, "drops", drops_json(&st), "vlan",
                          vsd_vlan_json(&pol));
    if (nic) {
        json_object_set_new(o, "vm", json_string(nic->vm->name));
        json_object_set_new(o, "nic", json_string(nic->name));
        json_object_set_new(o, "guest", guest_json(nic));
    } else if (vsw_is_uplink_port(port)) {
        struct vsw_uplink_info ui;
        vsw_uplink_port_get_info(port, &ui);
        json_object_set_new(o, "uplink",
                            json_pack("{s:s,s:s,s:i,s:b,s:i,s:I,s:I,s:I,s:I}", "devargs",
                                      s->uplink, "driver", ui.driver, "port_id",
                                      (json_int_t)ui.port_id, "carrier", ui.link_up, "speed_mbps",
                                      (json_int_t)ui.speed_mbps, "rx_missed",
                                      (json_int_t)ui.rx_missed, "rx_errors",
                                      (json_int_t)ui.rx_errors, "tx_errors",
                                      (json_int_t)ui.tx_errors, "sw_checksums",
                                      (json_int_t)ui.sw_checksums));
        json_t *uo = json_object_get(o, "uplink");
        json_object_set_new(uo, "rx_queues", json_integer(ui.rx_queues));
        json_object_set_new(uo, "tx_queues", json_integer(ui.tx_queues));
        json_object_set_new(uo, "tx_tso", json_integer((json_int_t)ui.tx_tso));
        json_object_set_new(uo, "tx_tso_segments", json_integer((json_int_t)ui.tx_tso_segments));
    } else {
        json_object_set_new(o, "ifname", json_string(vsw_host_port_ifname(port)));
    }
    return o;
}

static json_t *stats_json(struct vsd *d, const struct vsd_rpc_counters *ct, const json_t *params,
                          struct vsd_err *e)
{
    static const char *const keys[] = {"target", NULL};
    const char *target = NULL;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "target", false, &target, e) < 0)
        return NULL;
    struct vsd_switch *only_sw = NULL;
    struct vsw_port *only_port = NULL;
    if (target) {
        only_sw = vsd_find_switch(d, target);
        if (!only_sw) {
            struct vsd_switch *psw;
            only_port = vsd_find_port(d, target, &psw);
            if (!only_port) {
                vsd_fail(e, VSD_FAILED,
                         "no switch or port '%s' (give a switch, VM/NIC, a host vNIC or "
                         "SWITCH:uplink)",
                         target);
                return NULL;
            }
        }
    }
    json_t *arr = json_array();
    for (int i = 0; i < VSD_MAX_SWITCHES; i++) {
        struct vsd_switch *s = d->switches[i];
        if (!s || (only_sw && s != only_sw))
            continue;
        if (s->host && (!only_port || only_port == s->host))
            json_array_append_new(arr, vsd_port_json(s, s->host, NULL));
        if (s->uplink_port && (!only_port || only_port == s->uplink_port))
            json_array_append_new(arr, vsd_port_json(s, s->uplink_port, NULL));
    }
    for (int i = 0; i < VSD_MAX_VMS; i++) {
        for (int j = 0; d->vms[i] && j < d->vms[i]->nnics; j++) {
            struct vsd_nic *n = d->vms[i]->nics[j];
            if ((only_port && netvsp_port(n->np) != only_port) || (only_sw && n->sw != only_sw))
                continue;
            json_array_append_new(arr, vsd_port_json(n->sw, netvsp_port(n->np), n));
        }
    }
    if (target)
        return json_pack("{s:o}", "ports", arr);
    /* The whole host: add the control channel's own counters, so that an
     * operator can see refused requests without reading the log. */
    return json_pack("{s:o,s:{s:I,s:I,s:I,s:I,s:I,s:I}}", "ports", arr, "control", "requests",
                     (json_int_t)ct->requests, "malformed", (json_int_t)ct->malformed,
                     "unknown_method", (json_int_t)ct->unknown_method, "bad_params",
                     (json_int_t)ct->bad_params, "failed", (json_int_t)ct->failed,
                     "slow_clients", (json_int_t)ct->slow_clients);
}

static int stats(void *ctx, const json_t *params, struct vsd_method_call *call, json_t **result,
                 struct vsd_err *e)
{
    const struct vsd_control *c = ctx;
    (void)call;
    *result = stats_json(c->d, c->counters, params, e);
    return *result ? 0 : -1;
}

/* The model's answer to a capture, passed on. */
static void capture_ended(void *ctx, const struct vsd_capture_result *r)
{
    struct vsd_rpc_pending *pending = ctx;
    if (!r)
        vsd_rpc_pending_drop(pending);
    else
        vsd_rpc_pending_answer(pending,
                               json_pack("{s:s,s:I,s:I}", "file", r->file, "packets",
                                         (json_int_t)r->packets, "dropped",
                                         (json_int_t)r->dropped),
                               NULL);
}

static int capture(void *ctx, const json_t *params, struct vsd_method_call *call,
                   json_t **result, struct vsd_err *e)
{
    static const char *const keys[] = {"port", "file", "count", "timeout", "force", NULL};
    const struct vsd_control *c = ctx;
    struct vsd_capture_params p = {0};
    long long count = 0, timeout = 0;
    bool has_count, has_to, has_force;
    (void)result;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "port", true, &p.port, e) < 0 ||
        vsd_get_str(params, "file", true, &p.file, e) < 0 ||
        vsd_get_int(params, "count", 1, 100000000, &count, &has_count, e) < 0 ||
        vsd_get_int(params, "timeout", 1, 86400, &timeout, &has_to, e) < 0 ||
        vsd_get_bool(params, "force", &p.force, &has_force, e) < 0)
        return -1;
    p.count = has_count ? (uint64_t)count : 0;
    p.timeout_s = has_to ? (uint32_t)timeout : 0;
    struct vsd_rpc_pending *pending = vsd_method_defer(call);
    if (!pending)
        return vsd_fail(e, VSD_FAILED, "out of memory");
    return vsd_capture_start(c->d, &p, capture_ended, pending, e);
}

static const struct vsd_method_def port_methods[] = {
    {"stats", stats, 0},
    {"capture", capture, VSD_METHOD_DEFERS},
};

int vsd_port_methods_register(struct vsd_methods *t, struct vsd_control *c)
{
    return vsd_methods_register_all(t, port_methods,
                                    sizeof(port_methods) / sizeof(port_methods[0]), c);
}
