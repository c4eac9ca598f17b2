/*
 * vmq-show: the switch's receive queues, one row each, as Hyper-V's
 * Get-NetAdapterVmqQueue lists them. In hvnet a queue is a VM NIC's VMBus
 * channel (the primary, index 0, or a sub-channel its guest opened) with
 * its receive path in the switch; an uplink's receive queues and a host
 * vNIC's one queue are the switch's default queues.
 *
 * Frames reach a queue by software only: the worker that receives a frame
 * looks its destination up in the switch's FDB and, when another worker
 * polls the destination port, hands it over through the port's ring. No
 * hardware filter is programmed on these machines, and the rows say so
 * ("classifier": "software"). Every queue of a port is served by the worker
 * that owns the port (a NIC's channels follow it when it moves), and load
 * is measured per port (vsw-placement.h): a queue's load_pct is its port's,
 * shown on each of its queues and marked as such (load_scope), not split
 * by a guess. Per-channel packets are netvsp's own counters.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netvsp.h"
#include "vsw-host.h"
#include "vsw-placement.h"
#include "vsw-uplink.h"
#include "control-private.h"

#define CLASSIFIER "software"

/* The primary, then the sub-channels open now. */
static unsigned nic_queues(const struct netvsp *np, unsigned *idx, unsigned max)
{
    uint32_t open = netvsp_channels_open(np);
    unsigned n = 0;
    for (unsigned i = 0; i < NETVSP_QUEUES_MAX; i++) {
        if (i && !(open & (1u << i)))
            continue;
        if (n < max)
            idx[n] = i;
        n++;
    }
    return n;
}

static struct vsd_nic *nic_of_port(struct vsd *d, const struct vsw_port *port)
{
    for (int i = 0; i < VSD_MAX_VMS; i++)
        for (int j = 0; d->vms[i] && j < d->vms[i]->nnics; j++)
            if (netvsp_port(d->vms[i]->nics[j]->np) == port)
                return d->vms[i]->nics[j];
    return NULL;
}

unsigned vsd_port_queues(struct vsd *d, const struct vsw_port *port, unsigned *idx, unsigned max)
{
    struct vsd_nic *n = nic_of_port(d, port);
    if (n)
        return nic_queues(n->np, idx, max);
    unsigned nq = 1;
    if (vsw_is_uplink_port(port)) {
        struct vsw_uplink_info ui;
        vsw_uplink_port_get_info(port, &ui);
        nq = ui.rx_queues ? ui.rx_queues : 1;
    }
    for (unsigned i = 0; i < nq && i < max; i++)
        idx[i] = i;
    return nq;
}

static json_t *queue_name(const char *port, unsigned i)
{
    char q[VSW_NAME_MAX + 8];
    snprintf(q, sizeof(q), "%s:%u", port, i);
    return json_string(q);
}

/* The fields every row has. */
static json_t *row_new(const char *sw, const char *port, const char *type, unsigned i,
                       const struct vsd_vmq_place *pl)
{
    return json_pack("{s:s,s:o,s:s,s:s,s:i,s:s,s:i,s:i,s:f,s:s}", "switch", sw, "queue",
                     queue_name(port, i), "port", port, "type", type, "index", (json_int_t)i,
                     "classifier", CLASSIFIER, "worker", (json_int_t)pl->worker, "lcore",
                     (json_int_t)pl->lcore, "load_pct",
                     (double)(long long)(pl->load_pct * 10.0 + 0.5) / 10.0, "load_scope",
                     "port");
}

/* A filter: the MAC and VLAN the port is configured with, and the VLANs
 * for which the FDB sends that MAC to it now. */
static json_t *filter_json(const uint8_t mac[6], const struct vsw_port *port,
                           const json_t *fdb_vlans)
{
    char m[18];
    vsd_format_mac(mac, m);
    struct vsw_port_policy pol;
    vsw_port_get_policy(port, &pol);
    return json_pack("{s:s,s:o,s:O}", "mac", m, "vlan", vsd_vlan_json(&pol), "fdb_vlans",
                     fdb_vlans);
}

int vsd_vmq_nic_rows(struct vsd_nic *n, const struct vsd_vmq_place *pl, json_t *rows)
{
    struct netvsp_stats ns;
    netvsp_get_stats(n->np, &ns);
    uint32_t open = netvsp_channels_open(n->np);
    struct vsw_port *port = netvsp_port(n->np);
    const char *pname = vsw_port_name(port);
    unsigned idx[NETVSP_QUEUES_MAX];
    unsigned nq = nic_queues(n->np, idx, NETVSP_QUEUES_MAX);
    for (unsigned k = 0; k < nq; k++) {
        unsigned i = idx[k];
        json_t *r = row_new(n->sw->name, pname, "vm", i, pl);
        if (!r)
            return -ENOMEM;
        json_object_set_new(r, "vm", json_string(n->vm->name));
        json_object_set_new(r, "nic", json_string(n->name));
        json_object_set_new(r, "default", json_false());
        json_object_set_new(r, "vmq", json_boolean(vsd_nic_vmq_weight(&n->opts) != 0));
        json_object_set_new(r, "vmq_weight", json_integer(n->opts.vmq_weight_set
                                                              ? n->opts.vmq_weight
                                                              : VSW_VMQ_WEIGHT_DEFAULT));
        json_object_set_new(r, "shares_default", json_boolean(vsd_nic_vmq_weight(&n->opts) == 0));
        json_object_set_new(r, "open", json_boolean(open & (1u << i)));
        json_object_set_new(r, "filter", filter_json(n->mac, port, pl->fdb_vlans));
        json_object_set_new(r, "rx_packets", json_integer((json_int_t)ns.chan_rx[i]));
        json_object_set_new(r, "tx_packets", json_integer((json_int_t)ns.chan_tx[i]));
        if (json_array_append_new(rows, r) < 0)
            return -ENOMEM;
    }
    return 0;
}

/*
 * The switch's default queues: a host vNIC's TAP (one queue: its figures
 * are the port's), an uplink's receive queues. The uplink counts frames
 * per port, not per queue: with one receive queue they are the queue's,
 * with more the rows give null rather than a share made up. It sends on
 * queue 0 alone.
 */
static int default_rows(struct vsd *d, struct vsd_switch *s, struct vsw_port *port,
                        const struct vsd_vmq_place *pl, json_t *rows)
{
    bool host = vsw_is_host_port(port);
    struct vsw_port_stats st;
    vsw_port_get_stats(port, &st);
    unsigned idx[VSD_PORT_QUEUES_MAX];
    unsigned nq = vsd_port_queues(d, port, idx, VSD_PORT_QUEUES_MAX);
    if (nq > VSD_PORT_QUEUES_MAX)
        nq = VSD_PORT_QUEUES_MAX;
    for (unsigned k = 0; k < nq; k++) {
        json_t *r = row_new(s->name, vsw_port_name(port), host ? "host" : "uplink", idx[k], pl);
        if (!r)
            return -ENOMEM;
        json_object_set_new(r, "default", json_true());
        json_object_set_new(r, "open", json_true());
        json_object_set_new(r, "filter",
                            host ? filter_json(s->host_mac, port, pl->fdb_vlans) : json_null());
        json_object_set_new(r, "rx_packets",
                            nq == 1 ? json_integer((json_int_t)st.rx_packets) : json_null());
        json_object_set_new(r, "tx_packets",
                            json_integer(idx[k] == 0 ? (json_int_t)st.tx_packets : 0));
        if (json_array_append_new(rows, r) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* Each port's worker and load, from the workers' lists. */
struct served {
    const struct vsw_port *port;
    unsigned worker, lcore;
    double load_pct;
};

static struct served *served_all(struct vsw_dp *dp, unsigned *count)
{
    struct vsw_worker_stats ws[VSW_MAX_WORKERS];
    unsigned nw = vsw_dp_worker_stats(dp, ws, VSW_MAX_WORKERS);
    if (nw > VSW_MAX_WORKERS)
        nw = VSW_MAX_WORKERS;
    unsigned total = 0;
    for (unsigned w = 0; w < nw; w++)
        total += vsw_dp_worker_ports(dp, w, NULL, 0);
    struct served *out = calloc(total ? total : 1, sizeof(*out));
    struct vsw_worker_port *wp = calloc(total ? total : 1, sizeof(*wp));
    if (!out || !wp) {
        free(out);
        free(wp);
        return NULL;
    }
    unsigned n = 0;
    for (unsigned w = 0; w < nw && n < total; w++) {
        unsigned got = vsw_dp_worker_ports(dp, w, wp, total - n);
        for (unsigned i = 0; i < got && n < total; i++)
            out[n++] = (struct served){.port = wp[i].port, .worker = w, .lcore = ws[w].lcore,
                                       .load_pct = wp[i].load_pct};
    }
    free(wp);
    *count = n;
    return out;
}

struct fdb_find {
    const struct vsw_port *port;
    uint8_t mac[6];
    json_t *vlans;
};

static void fdb_cb(void *ctx, const struct vsw_fdb_entry *ent)
{
    struct fdb_find *f = ctx;
    if (ent->port == f->port && memcmp(ent->mac, f->mac, 6) == 0)
        json_array_append_new(f->vlans, json_integer(ent->vlan));
}

/* The rows of one port of s, if a worker serves it (a port is attached
 * when its switch has it; a NIC whose port is not is left out). */
static int port_rows(struct vsd *d, struct vsd_switch *s, struct vsw_port *port,
                     struct vsd_nic *nic, const struct served *sv, unsigned nsv, json_t *rows)
{
    const struct served *at = NULL;
    for (unsigned i = 0; i < nsv && !at; i++)
        if (sv[i].port == port)
            at = &sv[i];
    if (!at)
        return 0;
    struct fdb_find f = {.port = port, .vlans = json_array()};
    if (!f.vlans)
        return -ENOMEM;
    const uint8_t *mac = nic ? nic->mac : s->host_mac;
    memcpy(f.mac, mac, 6);
    if (nic || vsw_is_host_port(port))
        vsw_fdb_dump(s->sw, fdb_cb, &f);
    struct vsd_vmq_place pl = {.worker = at->worker, .lcore = at->lcore,
                               .load_pct = at->load_pct, .fdb_vlans = f.vlans};
    int rc = nic ? vsd_vmq_nic_rows(nic, &pl, rows) : default_rows(d, s, port, &pl, rows);
    json_decref(f.vlans);
    return rc;
}

static int switch_rows(struct vsd *d, struct vsd_switch *s, const struct served *sv,
                       unsigned nsv, json_t *rows)
{
    int rc = 0;
    if (s->uplink_port)
        rc = port_rows(d, s, s->uplink_port, NULL, sv, nsv, rows);
    if (rc == 0 && s->host)
        rc = port_rows(d, s, s->host, NULL, sv, nsv, rows);
    for (int i = 0; rc == 0 && i < VSD_MAX_VMS; i++)
        for (int j = 0; rc == 0 && d->vms[i] && j < d->vms[i]->nnics; j++) {
            struct vsd_nic *n = d->vms[i]->nics[j];
            if (n->sw == s)
                rc = port_rows(d, s, netvsp_port(n->np), n, sv, nsv, rows);
        }
    return rc;
}

static int vmq_show(void *ctx, const json_t *params, struct vsd_method_call *call,
                    json_t **result, struct vsd_err *e)
{
    static const char *const keys[] = {"switch", NULL};
    struct vsd *d = ctx;
    const char *name = NULL;
    (void)call;
    if (vsd_check_keys(params, keys, e) < 0 || vsd_get_str(params, "switch", false, &name, e) < 0)
        return -1;
    struct vsd_switch *only = NULL;
    if (name && !(only = vsd_find_switch(d, name)))
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", name);
    unsigned nsv = 0;
    struct served *sv = served_all(d->dp, &nsv);
    json_t *rows = json_array();
    int rc = sv && rows ? 0 : -ENOMEM;
    for (int i = 0; rc == 0 && i < VSD_MAX_SWITCHES; i++)
        if (d->switches[i] && (!only || d->switches[i] == only))
            rc = switch_rows(d, d->switches[i], sv, nsv, rows);
    free(sv);
    if (rc < 0) {
        json_decref(rows);
        return vsd_fail(e, VSD_FAILED, "out of memory");
    }
    *result = json_pack("{s:o,s:s,s:b}", "queues", rows, "classifier", CLASSIFIER,
                        "hardware_filters", false);
    return *result ? 0 : vsd_fail(e, VSD_FAILED, "out of memory");
}

static const struct vsd_method_def vmq_methods[] = {
    {"vmq-show", vmq_show, 0},
};

int vsd_vmq_methods_register(struct vsd_methods *t, struct vsd *d)
{
    return vsd_methods_register_all(t, vmq_methods, sizeof(vmq_methods) / sizeof(vmq_methods[0]),
                                    d);
}
