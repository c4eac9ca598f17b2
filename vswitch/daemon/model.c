/*
 * The host model: switches, VMs and their NICs, and the operations on them.
 *
 * Every operation follows the same order: check every parameter and every
 * precondition; apply; save the state file; if the save fails, undo the
 * change and report it. A VM exists as a partition from vm-add on (created
 * or stopped when not running); each NIC is a netvsp port, attached to its
 * switch and offered on the VM's VMBus, from nic-add on.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netvsp.h"
#include "vmbus-server.h"
#include "vsw-port-provider.h"
#include "vswitchd.h"

/* --- parameter access ----------------------------------------------------- */

static int check_keys(const json_t *params, const char *const *allowed, struct vsd_err *e)
{
    const char *key;
    json_t *v;
    if (!json_is_object(params))
        return vsd_fail(e, VSD_BAD_PARAMS, "parameters must be an object");
    json_object_foreach((json_t *)params, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = true;
        if (!ok)
            return vsd_fail(e, VSD_BAD_PARAMS, "unknown parameter '%s'", key);
    }
    return 0;
}

static int get_str(const json_t *params, const char *key, bool required, const char **out,
                   struct vsd_err *e)
{
    json_t *v = json_object_get(params, key);
    *out = NULL;
    if (!v) {
        if (required)
            return vsd_fail(e, VSD_BAD_PARAMS, "missing parameter '%s'", key);
        return 0;
    }
    if (!json_is_string(v))
        return vsd_fail(e, VSD_BAD_PARAMS, "parameter '%s' must be a string", key);
    *out = json_string_value(v);
    return 0;
}

static int get_int(const json_t *params, const char *key, long long min, long long max,
                   long long *out, bool *present, struct vsd_err *e)
{
    json_t *v = json_object_get(params, key);
    *present = v != NULL;
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return vsd_fail(e, VSD_BAD_PARAMS, "parameter '%s' must be an integer", key);
    long long x = json_integer_value(v);
    if (x < min || x > max)
        return vsd_fail(e, VSD_BAD_PARAMS, "%s %lld is out of range (%lld..%lld)", key, x, min,
                        max);
    *out = x;
    return 0;
}

static int get_name(const json_t *params, const char *key, size_t max, const char **out,
                    struct vsd_err *e)
{
    if (get_str(params, key, true, out, e) < 0)
        return -1;
    if (!vsd_name_ok(*out, max) || (max == VSD_NIC_NAME_MAX && strcmp(*out, "lo") == 0))
        return vsd_fail(e, VSD_BAD_PARAMS,
                        "bad %s name '%s': use 1..%zu characters of A-Z a-z 0-9 _ . -%s", key, *out,
                        max, max == VSD_NIC_NAME_MAX ? ", not 'lo'" : "");
    return 0;
}

/* NIC options of later releases: refused by name rather than ignored. */
static const char *const later_nic_options[] = {
    "vlan", "trunk", "vmq", "queues", "mac_spoofing", "dhcp_guard", "router_guard", "max_mbps",
    NULL,
};

static int refuse_later(const json_t *params, struct vsd_err *e)
{
    for (const char *const *o = later_nic_options; *o; o++)
        if (json_object_get(params, *o))
            return vsd_fail(e, VSD_BAD_PARAMS, "option '%s' is not supported by this vswitchd yet",
                            *o);
    return 0;
}

/* --- lookups -------------------------------------------------------------- */

static struct vsd_switch *find_switch(struct vsd *d, const char *name)
{
    for (int i = 0; i < VSD_MAX_SWITCHES; i++)
        if (d->switches[i] && strcmp(d->switches[i]->name, name) == 0)
            return d->switches[i];
    return NULL;
}

static struct vsd_vm *find_vm(struct vsd *d, const char *name)
{
    for (int i = 0; i < VSD_MAX_VMS; i++)
        if (d->vms[i] && strcmp(d->vms[i]->name, name) == 0)
            return d->vms[i];
    return NULL;
}

static struct vsd_nic *find_nic(struct vsd_vm *vm, const char *name)
{
    for (int i = 0; i < vm->nnics; i++)
        if (strcmp(vm->nics[i]->name, name) == 0)
            return vm->nics[i];
    return NULL;
}

static int switch_users(struct vsd *d, const struct vsd_switch *sw)
{
    int n = 0;
    for (int i = 0; i < VSD_MAX_VMS; i++)
        for (int j = 0; d->vms[i] && j < d->vms[i]->nnics; j++)
            n += d->vms[i]->nics[j]->sw == sw;
    return n;
}

const char *vsd_vm_state_name(const struct vsd_vm *vm)
{
    if (vm->p && hv_partition_state(vm->p) == HV_PARTITION_RUNNING)
        return hv_partition_stopping(vm->p) ? "stopping" : "running";
    return vm->crashed ? "crashed" : "stopped";
}

static int save_or_undo(struct vsd *d, struct vsd_err *e)
{
    if (d->loading)
        return 0;
    return vsd_state_save(d, e);
}

/* --- switches ------------------------------------------------------------- */

static int switch_create_rt(struct vsd *d, struct vsd_switch *s, struct vsd_err *e)
{
    struct vsw_switch_params p = {
        .name = s->name,
        .kind = s->kind,
        .mtu = s->mtu,
        .fdb_max = s->fdb_max,
        .fdb_aging_s = s->fdb_aging,
    };
    int rc = vsw_switch_create(d->dp, &p, &s->sw);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "cannot create switch '%s': %s", s->name, strerror(-rc));
    return 0;
}

int vsd_switch_add(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"name", "type", "uplink", "allow_management_os", "mtu",
                                       NULL};
    const char *name, *type;
    long long mtu = 1500;
    bool has_mtu;
    if (check_keys(params, keys, e) < 0 || get_name(params, "name", VSD_NAME_MAX, &name, e) < 0 ||
        get_str(params, "type", true, &type, e) < 0 ||
        get_int(params, "mtu", 68, 9000, &mtu, &has_mtu, e) < 0)
        return -1;
    enum vsw_switch_kind kind;
    if (vsw_switch_kind_parse(type, &kind) < 0)
        return vsd_fail(e, VSD_BAD_PARAMS, "bad switch type '%s': use private, internal or external",
                        type);
    if (kind != VSW_SWITCH_PRIVATE)
        return vsd_fail(e, VSD_BAD_PARAMS, "switch type '%s' is not supported by this vswitchd yet",
                        type);
    if (json_object_get(params, "uplink") || json_object_get(params, "allow_management_os"))
        return vsd_fail(e, VSD_BAD_PARAMS, "a private switch takes no uplink and no management OS");
    if (find_switch(d, name))
        return vsd_fail(e, VSD_FAILED, "switch '%s' already exists", name);
    int slot = -1;
    for (int i = 0; i < VSD_MAX_SWITCHES && slot < 0; i++)
        if (!d->switches[i])
            slot = i;
    if (slot < 0)
        return vsd_fail(e, VSD_FAILED, "too many switches (at most %d)", VSD_MAX_SWITCHES);

    struct vsd_switch *s = calloc(1, sizeof(*s));
    if (!s)
        return vsd_fail(e, VSD_FAILED, "out of memory");
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->kind = kind;
    s->mtu = (uint32_t)mtu;
    s->fdb_max = 8192;
    s->fdb_aging = 300;
    if (switch_create_rt(d, s, e) < 0) {
        free(s);
        return -1;
    }
    d->switches[slot] = s;
    if (save_or_undo(d, e) < 0) {
        d->switches[slot] = NULL;
        vsw_switch_destroy(s->sw);
        free(s);
        return -1;
    }
    vsd_log("switch %s added (%s, MTU %u)", s->name, type, s->mtu);
    return 0;
}

int vsd_switch_del(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"name", NULL};
    const char *name;
    if (check_keys(params, keys, e) < 0 || get_str(params, "name", true, &name, e) < 0)
        return -1;
    struct vsd_switch *s = find_switch(d, name);
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", name);
    int users = switch_users(d, s);
    if (users)
        return vsd_fail(e, VSD_FAILED, "switch '%s' is used by %d NIC(s): delete or move them first",
                        name, users);
    int slot = 0;
    while (d->switches[slot] != s)
        slot++;
    d->switches[slot] = NULL;
    if (save_or_undo(d, e) < 0) {
        d->switches[slot] = s;
        return -1;
    }
    vsw_switch_destroy(s->sw);
    vsd_log("switch %s deleted", name);
    free(s);
    return 0;
}

int vsd_switch_set(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"name", "mtu", NULL};
    const char *name;
    long long mtu = 0;
    bool has_mtu;
    if (check_keys(params, keys, e) < 0 || get_str(params, "name", true, &name, e) < 0 ||
        get_int(params, "mtu", 68, 9000, &mtu, &has_mtu, e) < 0)
        return -1;
    struct vsd_switch *s = find_switch(d, name);
    if (!s)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", name);
    if (!has_mtu)
        return vsd_fail(e, VSD_BAD_PARAMS, "nothing to change: give --mtu");
    uint32_t old = s->mtu;
    s->mtu = (uint32_t)mtu;
    if (save_or_undo(d, e) < 0) {
        s->mtu = old;
        return -1;
    }
    vsd_log("switch %s: MTU %u -> %u", s->name, old, s->mtu);
    return 0;
}

json_t *vsd_switch_list(struct vsd *d)
{
    json_t *arr = json_array();
    for (int i = 0; i < VSD_MAX_SWITCHES; i++) {
        struct vsd_switch *s = d->switches[i];
        if (!s)
            continue;
        json_array_append_new(arr, json_pack("{s:s,s:s,s:i,s:i}", "name", s->name, "type",
                                             vsw_switch_kind_name(s->kind), "mtu", (json_int_t)s->mtu,
                                             "ports", (json_int_t)switch_users(d, s)));
    }
    return json_pack("{s:o}", "switches", arr);
}

/* --- ports as JSON -------------------------------------------------------- */

static json_t *drops_json(const struct vsw_port_stats *st)
{
    json_t *o = json_object();
    for (int i = 0; i < VSW_DROP_COUNT; i++)
        json_object_set_new(o, vsw_drop_name((enum vsw_drop)i), json_integer((json_int_t)st->drops[i]));
    return o;
}

static void version_str(uint32_t v, char *buf, size_t len)
{
    if (v == 0) {
        snprintf(buf, len, "-");
        return;
    }
    switch (v) {
    case 0x00000002:
        snprintf(buf, len, "1");
        return;
    case 0x00030002:
        snprintf(buf, len, "2");
        return;
    default:
        break;
    }
    if ((v & 0xffff) == 0)
        snprintf(buf, len, "%u", v >> 16);
    else
        snprintf(buf, len, "%u.%u", v >> 16, v & 0xffff);
}

static json_t *nic_port_json(struct vsd_nic *n)
{
    struct vsw_port *port = netvsp_port(n->np);
    struct vsw_port_stats st;
    struct netvsp_stats ns;
    vsw_port_get_stats(port, &st);
    netvsp_get_stats(n->np, &ns);
    json_t *errs = json_object();
    for (int i = 0; i < NETVSP_ERR_COUNT; i++)
        json_object_set_new(errs, netvsp_err_name((enum netvsp_err)i),
                            json_integer((json_int_t)ns.errors[i]));
    char nv[16], ndis[16];
    version_str(ns.nvsp_version, nv, sizeof(nv));
    if (ns.ndis_version)
        snprintf(ndis, sizeof(ndis), "%u.%u", ns.ndis_version >> 16, ns.ndis_version & 0xffff);
    else
        snprintf(ndis, sizeof(ndis), "-");
    json_t *guest = json_pack(
        "{s:s,s:s,s:b,s:i,s:o,s:I,s:I,s:I,s:I,s:I,s:I}", "nvsp_version", nv, "ndis_version", ndis,
        "connected", ns.connected, "frame_size", (json_int_t)ns.frame_size, "errors", errs,
        "disconnects", (json_int_t)ns.disconnects, "opens", (json_int_t)ns.opens, "tx_no_buffer",
        (json_int_t)ns.tx_no_buffer, "tx_ring_full", (json_int_t)ns.tx_ring_full, "tx_filtered",
        (json_int_t)ns.tx_filtered, "rx_frames_too_big", (json_int_t)ns.rx_frames_too_big);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:I,s:I,s:I,s:I,s:o,s:o}", "switch", n->sw->name,
                     "port", vsw_port_name(port), "type", "vm", "vm", n->vm->name, "nic", n->name,
                     "link", vsw_port_link(port) ? "up" : "down", "mtu", (json_int_t)n->mtu,
                     "rx_packets", (json_int_t)st.rx_packets, "rx_bytes", (json_int_t)st.rx_bytes,
                     "tx_packets", (json_int_t)st.tx_packets, "tx_bytes", (json_int_t)st.tx_bytes,
                     "drops", drops_json(&st), "guest", guest);
}

static void count_entry(void *ctx, const struct vsw_fdb_entry *ent)
{
    (void)ent;
    (*(unsigned *)ctx)++;
}

json_t *vsd_switch_show(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"name", NULL};
    const char *name;
    if (check_keys(params, keys, e) < 0 || get_str(params, "name", true, &name, e) < 0)
        return NULL;
    struct vsd_switch *s = find_switch(d, name);
    if (!s) {
        vsd_fail(e, VSD_FAILED, "no switch '%s'", name);
        return NULL;
    }
    json_t *ports = json_array();
    for (int i = 0; i < VSD_MAX_VMS; i++)
        for (int j = 0; d->vms[i] && j < d->vms[i]->nnics; j++)
            if (d->vms[i]->nics[j]->sw == s)
                json_array_append_new(ports, nic_port_json(d->vms[i]->nics[j]));
    unsigned entries = 0;
    vsw_fdb_dump(s->sw, count_entry, &entries);
    return json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:o}", "name", s->name, "type",
                     vsw_switch_kind_name(s->kind), "mtu", (json_int_t)s->mtu, "fdb_max",
                     (json_int_t)s->fdb_max, "fdb_aging", (json_int_t)s->fdb_aging, "fdb_entries",
                     (json_int_t)entries, "ports", ports);
}

/* --- namespaces ----------------------------------------------------------- */

static bool netns_exists(const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "/run/netns/%s", name);
    return access(path, F_OK) == 0;
}

/* What `ip netns del` does: detach the bind mount, remove the file. */
static void netns_delete(const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "/run/netns/%s", name);
    umount2(path, MNT_DETACH);
    if (unlink(path) < 0 && errno != ENOENT)
        vsd_log("cannot remove namespace %s: %s", name, strerror(errno));
}

/* --- VMs ------------------------------------------------------------------ */

static void vm_partition_event(void *ctx, struct hv_partition *p, enum hv_partition_state from,
                               enum hv_partition_state to);

static int vm_create_rt(struct vsd *d, struct vsd_vm *vm, struct vsd_err *e)
{
    const char *argv[] = {d->hv_vm_path, "--name", vm->name, "--netns", vm->netns, NULL};
    struct hv_partition_params pp = {
        .name = vm->name,
        .memory_bytes = (uint64_t)vm->memory_mb << 20,
        .argv = argv,
    };
    int rc = hv_partition_create(d->host, &pp, &vm->p);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "cannot create partition for VM '%s': %s", vm->name,
                        strerror(-rc));
    rc = vmbus_server_create(vm->p, &vm->srv);
    if (rc == 0)
        rc = hv_partition_listen(vm->p, vm_partition_event, vm);
    if (rc < 0) {
        vmbus_server_destroy(vm->srv);
        hv_partition_destroy(vm->p);
        vm->p = NULL;
        vm->srv = NULL;
        return vsd_fail(e, VSD_FAILED, "cannot set up VMBus for VM '%s': %s", vm->name,
                        strerror(-rc));
    }
    return 0;
}

static void nic_destroy_rt(struct vsd_nic *n);

static void vm_destroy_rt(struct vsd_vm *vm)
{
    for (int i = 0; i < vm->nnics; i++)
        nic_destroy_rt(vm->nics[i]);
    if (vm->p)
        hv_partition_unlisten(vm->p, vm_partition_event, vm);
    vmbus_server_destroy(vm->srv);
    if (vm->p) {
        if (hv_partition_state(vm->p) == HV_PARTITION_RUNNING)
            hv_partition_stop(vm->p, 0);
        hv_partition_destroy(vm->p);
    }
    vm->p = NULL;
    vm->srv = NULL;
}

int vsd_vm_add(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"name", "netns", "memory_mb", NULL};
    const char *name, *netns = NULL;
    long long mem = VSD_MEMORY_DEFAULT_MB;
    bool has_mem;
    if (check_keys(params, keys, e) < 0 || get_name(params, "name", VSD_NAME_MAX, &name, e) < 0 ||
        get_str(params, "netns", false, &netns, e) < 0 ||
        get_int(params, "memory_mb", 64, 65536, &mem, &has_mem, e) < 0)
        return -1;
    if (netns && !vsd_name_ok(netns, VSD_NAME_MAX))
        return vsd_fail(e, VSD_BAD_PARAMS,
                        "bad namespace name '%s': use 1..%d characters of A-Z a-z 0-9 _ . -", netns,
                        VSD_NAME_MAX);
    if (find_vm(d, name))
        return vsd_fail(e, VSD_FAILED, "VM '%s' already exists", name);
    const char *ns = netns ? netns : name;
    for (int i = 0; i < VSD_MAX_VMS; i++)
        if (d->vms[i] && strcmp(d->vms[i]->netns, ns) == 0)
            return vsd_fail(e, VSD_FAILED, "namespace '%s' is already used by VM '%s'", ns,
                            d->vms[i]->name);
    int slot = -1;
    for (int i = 0; i < VSD_MAX_VMS && slot < 0; i++)
        if (!d->vms[i])
            slot = i;
    if (slot < 0)
        return vsd_fail(e, VSD_FAILED, "too many VMs (at most %d)", VSD_MAX_VMS);
    struct vsd_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return vsd_fail(e, VSD_FAILED, "out of memory");
    vm->d = d;
    snprintf(vm->name, sizeof(vm->name), "%s", name);
    snprintf(vm->netns, sizeof(vm->netns), "%s", ns);
    vm->memory_mb = (uint32_t)mem;
    if (!d->loading)
        vm->netns_owned = !netns_exists(vm->netns);
    if (vm_create_rt(d, vm, e) < 0) {
        free(vm);
        return -1;
    }
    d->vms[slot] = vm;
    if (save_or_undo(d, e) < 0) {
        d->vms[slot] = NULL;
        vm_destroy_rt(vm);
        free(vm);
        return -1;
    }
    if (!d->loading)
        vsd_log("VM %s added (namespace %s, %u MiB)", vm->name, vm->netns, vm->memory_mb);
    return 0;
}

/* Partition events: crashes and stops, seen on the control thread. */
static void vm_partition_event(void *ctx, struct hv_partition *p, enum hv_partition_state from,
                               enum hv_partition_state to)
{
    struct vsd_vm *vm = ctx;
    (void)p;
    if (from != HV_PARTITION_RUNNING || to != HV_PARTITION_STOPPED)
        return;
    int status = hv_partition_exit_status(vm->p);
    vm->crashed = hv_partition_crashed(vm->p);
    vm->stop_deadline = 0;
    if (vm->crashed) {
        if (status >= 0 && WIFSIGNALED(status))
            vsd_log("VM %s crashed: its worker was killed by signal %d; its NICs are down and its "
                    "memory is unmapped",
                    vm->name, WTERMSIG(status));
        else
            vsd_log("VM %s crashed: its worker exited with status %d; its NICs are down and its "
                    "memory is unmapped",
                    vm->name, status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    } else {
        vsd_log("VM %s stopped", vm->name);
    }
    for (int i = 0; i < vm->nwaiters; i++) {
        rpc_reply_deferred(vm->waiters[i].conn, vm->waiters[i].id,
                           json_pack("{s:s}", "state", vsd_vm_state_name(vm)), NULL);
    }
    vm->nwaiters = 0;
}

static struct vsd_vm *vm_param(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"name", NULL};
    const char *name;
    if (check_keys(params, keys, e) < 0 || get_str(params, "name", true, &name, e) < 0)
        return NULL;
    struct vsd_vm *vm = find_vm(d, name);
    if (!vm)
        vsd_fail(e, VSD_FAILED, "no VM '%s'", name);
    return vm;
}

int vsd_vm_start_rt(struct vsd *d, struct vsd_vm *vm, struct vsd_err *e)
{
    if (access(d->hv_vm_path, X_OK) != 0)
        return vsd_fail(e, VSD_FAILED, "cannot run the VM worker %s: %s", d->hv_vm_path,
                        strerror(errno));
    int rc = hv_partition_start(vm->p);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "cannot start VM '%s': %s", vm->name, strerror(-rc));
    vm->crashed = false;
    vsd_log("VM %s started (worker pid %d)", vm->name, hv_process_partition_pid(vm->p));
    return 0;
}

json_t *vsd_vm_start(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    struct vsd_vm *vm = vm_param(d, params, e);
    if (!vm)
        return NULL;
    if (hv_partition_state(vm->p) == HV_PARTITION_RUNNING) {
        vsd_fail(e, VSD_FAILED, "VM '%s' is already %s", vm->name, vsd_vm_state_name(vm));
        return NULL;
    }
    if (vsd_vm_start_rt(d, vm, e) < 0)
        return NULL;
    vm->want_running = true;
    if (save_or_undo(d, e) < 0) {
        vm->want_running = false;
        hv_partition_stop(vm->p, 0);
        return NULL;
    }
    return json_pack("{s:s,s:i}", "state", "running", "pid",
                     (json_int_t)hv_process_partition_pid(vm->p));
}

json_t *vsd_vm_stop(struct vsd *d, const json_t *params, struct rpc_conn *conn, json_t *id,
                    bool *deferred, struct vsd_err *e)
{
    *deferred = false;
    struct vsd_vm *vm = vm_param(d, params, e);
    if (!vm)
        return NULL;
    bool was_wanted = vm->want_running;
    vm->want_running = false;
    if (save_or_undo(d, e) < 0) {
        vm->want_running = was_wanted;
        return NULL;
    }
    if (hv_partition_state(vm->p) != HV_PARTITION_RUNNING)
        return json_pack("{s:s}", "state", vsd_vm_state_name(vm));
    if (vm->nwaiters == (int)(sizeof(vm->waiters) / sizeof(vm->waiters[0]))) {
        vsd_fail(e, VSD_FAILED, "too many clients waiting for VM '%s' to stop", vm->name);
        return NULL;
    }
    if (!hv_partition_stopping(vm->p)) {
        int rc = hv_partition_request_stop(vm->p);
        if (rc < 0) {
            vsd_fail(e, VSD_FAILED, "cannot stop VM '%s': %s", vm->name, strerror(-rc));
            return NULL;
        }
        vm->stop_deadline = vsd_now() + VSD_STOP_GRACE_S;
        vsd_log("VM %s: stopping", vm->name);
    }
    vm->waiters[vm->nwaiters].conn = conn;
    vm->waiters[vm->nwaiters].id = json_incref(id);
    vm->nwaiters++;
    *deferred = true;
    return NULL;
}

int vsd_vm_del(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    struct vsd_vm *vm = vm_param(d, params, e);
    if (!vm)
        return -1;
    if (hv_partition_state(vm->p) == HV_PARTITION_RUNNING)
        return vsd_fail(e, VSD_FAILED, "VM '%s' is running: stop it first", vm->name);
    int slot = 0;
    while (d->vms[slot] != vm)
        slot++;
    d->vms[slot] = NULL;
    if (save_or_undo(d, e) < 0) {
        d->vms[slot] = vm;
        return -1;
    }
    vm_destroy_rt(vm);
    if (vm->netns_owned)
        netns_delete(vm->netns);
    vsd_log("VM %s deleted", vm->name);
    for (int i = 0; i < vm->nnics; i++)
        free(vm->nics[i]);
    free(vm);
    return 0;
}

json_t *vsd_vm_list(struct vsd *d)
{
    json_t *arr = json_array();
    for (int i = 0; i < VSD_MAX_VMS; i++) {
        struct vsd_vm *vm = d->vms[i];
        if (!vm)
            continue;
        int pid = hv_process_partition_pid(vm->p);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:i,s:s,s:i,s:i}", "name", vm->name, "netns",
                                             vm->netns, "memory_mb", (json_int_t)vm->memory_mb,
                                             "state", vsd_vm_state_name(vm), "pid",
                                             (json_int_t)(pid > 0 ? pid : 0), "nics",
                                             (json_int_t)vm->nnics));
    }
    return json_pack("{s:o}", "vms", arr);
}

/* --- NICs ----------------------------------------------------------------- */

static int nic_create_rt(struct vsd *d, struct vsd_nic *n, struct vsd_err *e)
{
    char port[VSW_NAME_MAX];
    snprintf(port, sizeof(port), "%s/%s", n->vm->name, n->name);
    struct netvsp_params p = {
        .port_name = port,
        .nic_name = n->name,
        .mtu = n->mtu,
        .instance = n->instance,
        .pool = vsw_dp_mempool(d->dp),
    };
    memcpy(p.mac, n->mac, 6);
    int rc = netvsp_create(n->vm->srv, &p, &n->np);
    if (rc < 0)
        return vsd_fail(e, VSD_FAILED, "cannot create NIC %s: %s", port, strerror(-rc));
    rc = vsw_port_attach(n->sw->sw, netvsp_port(n->np));
    if (rc < 0) {
        vsw_port_destroy(netvsp_port(n->np));
        n->np = NULL;
        return vsd_fail(e, VSD_FAILED, "cannot attach NIC %s to switch %s: %s", port, n->sw->name,
                        strerror(-rc));
    }
    return 0;
}

static void nic_destroy_rt(struct vsd_nic *n)
{
    if (n->np)
        vsw_port_destroy(netvsp_port(n->np));
    n->np = NULL;
}

static int random_bytes(void *buf, size_t len)
{
    return getrandom(buf, len, 0) == (ssize_t)len ? 0 : -1;
}

json_t *vsd_nic_add(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"vm", "nic", "switch", "mac", "mtu", "vlan", "trunk", "vmq",
                                       "queues", "mac_spoofing", "dhcp_guard", "router_guard",
                                       "max_mbps", NULL};
    const char *vmname, *nicname, *swname, *mac_s = NULL;
    long long mtu = 0;
    bool has_mtu;
    if (check_keys(params, keys, e) < 0 || refuse_later(params, e) < 0 ||
        get_str(params, "vm", true, &vmname, e) < 0 ||
        get_name(params, "nic", VSD_NIC_NAME_MAX, &nicname, e) < 0 ||
        get_str(params, "switch", true, &swname, e) < 0 ||
        get_str(params, "mac", false, &mac_s, e) < 0 ||
        get_int(params, "mtu", 68, 9000, &mtu, &has_mtu, e) < 0)
        return NULL;
    struct vsd_vm *vm = find_vm(d, vmname);
    if (!vm) {
        vsd_fail(e, VSD_FAILED, "no VM '%s'", vmname);
        return NULL;
    }
    struct vsd_switch *sw = find_switch(d, swname);
    if (!sw) {
        vsd_fail(e, VSD_FAILED, "no switch '%s'", swname);
        return NULL;
    }
    if (find_nic(vm, nicname)) {
        vsd_fail(e, VSD_FAILED, "VM '%s' already has a NIC '%s'", vmname, nicname);
        return NULL;
    }
    if (vm->nnics == VSD_MAX_NICS) {
        vsd_fail(e, VSD_FAILED, "VM '%s' already has %d NICs, the most it can have", vmname,
                 VSD_MAX_NICS);
        return NULL;
    }
    uint8_t mac[6];
    if (mac_s) {
        if (vsd_parse_mac(mac_s, mac) < 0) {
            vsd_fail(e, VSD_BAD_PARAMS, "bad MAC address '%s': use xx:xx:xx:xx:xx:xx", mac_s);
            return NULL;
        }
        if ((mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5])) {
            vsd_fail(e, VSD_BAD_PARAMS, "MAC address %s must be unicast and not all zero", mac_s);
            return NULL;
        }
    } else if (random_bytes(mac, 6) < 0) {
        vsd_fail(e, VSD_FAILED, "cannot generate a MAC address: %s", strerror(errno));
        return NULL;
    } else {
        mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02); /* locally administered unicast */
    }
    for (int i = 0; i < VSD_MAX_VMS; i++)
        for (int j = 0; d->vms[i] && j < d->vms[i]->nnics; j++)
            if (memcmp(d->vms[i]->nics[j]->mac, mac, 6) == 0) {
                char m[18];
                vsd_format_mac(mac, m);
                vsd_fail(e, VSD_FAILED, "MAC address %s is already used by %s/%s", m,
                         d->vms[i]->name, d->vms[i]->nics[j]->name);
                return NULL;
            }
    struct vsd_nic *n = calloc(1, sizeof(*n));
    if (!n) {
        vsd_fail(e, VSD_FAILED, "out of memory");
        return NULL;
    }
    n->vm = vm;
    snprintf(n->name, sizeof(n->name), "%s", nicname);
    n->sw = sw;
    memcpy(n->mac, mac, 6);
    n->mtu = has_mtu ? (uint32_t)mtu : sw->mtu;
    if (random_bytes(&n->instance, sizeof(n->instance)) < 0 || nic_create_rt(d, n, e) < 0) {
        if (!e->msg[0])
            vsd_fail(e, VSD_FAILED, "cannot generate a device id: %s", strerror(errno));
        free(n);
        return NULL;
    }
    vm->nics[vm->nnics++] = n;
    if (save_or_undo(d, e) < 0) {
        vm->nnics--;
        nic_destroy_rt(n);
        free(n);
        return NULL;
    }
    char m[18];
    vsd_format_mac(n->mac, m);
    vsd_log("NIC %s/%s added on switch %s (MAC %s, MTU %u)", vm->name, n->name, sw->name, m, n->mtu);
    return json_pack("{s:s}", "mac", m);
}

int vsd_nic_restore(struct vsd *d, struct vsd_vm *vm, const char *name, const char *swname,
                    const uint8_t mac[6], uint32_t mtu, const struct vmbus_guid *instance,
                    struct vsd_err *e)
{
    struct vsd_switch *sw = find_switch(d, swname);
    if (!sw)
        return vsd_fail(e, VSD_FAILED, "NIC %s/%s: no switch '%s'", vm->name, name, swname);
    if (!vsd_name_ok(name, VSD_NIC_NAME_MAX) || find_nic(vm, name) || vm->nnics == VSD_MAX_NICS ||
        mtu < 68 || mtu > 9000)
        return vsd_fail(e, VSD_FAILED, "NIC %s/%s: invalid", vm->name, name);
    struct vsd_nic *n = calloc(1, sizeof(*n));
    if (!n)
        return vsd_fail(e, VSD_FAILED, "out of memory");
    n->vm = vm;
    snprintf(n->name, sizeof(n->name), "%s", name);
    n->sw = sw;
    memcpy(n->mac, mac, 6);
    n->mtu = mtu;
    n->instance = *instance;
    if (nic_create_rt(d, n, e) < 0) {
        free(n);
        return -1;
    }
    vm->nics[vm->nnics++] = n;
    return 0;
}

struct vsd_vm *vsd_find_vm(struct vsd *d, const char *name)
{
    return find_vm(d, name);
}

static struct vsd_nic *nic_param(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    const char *vmname, *nicname;
    if (get_str(params, "vm", true, &vmname, e) < 0 || get_str(params, "nic", true, &nicname, e) < 0)
        return NULL;
    struct vsd_vm *vm = find_vm(d, vmname);
    if (!vm) {
        vsd_fail(e, VSD_FAILED, "no VM '%s'", vmname);
        return NULL;
    }
    struct vsd_nic *n = find_nic(vm, nicname);
    if (!n)
        vsd_fail(e, VSD_FAILED, "VM '%s' has no NIC '%s'", vmname, nicname);
    return n;
}

int vsd_nic_set(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"vm", "nic", "switch", "mac", "mtu", "vlan", "trunk", "vmq",
                                       "queues", "mac_spoofing", "dhcp_guard", "router_guard",
                                       "max_mbps", NULL};
    const char *swname = NULL;
    if (check_keys(params, keys, e) < 0 || refuse_later(params, e) < 0)
        return -1;
    struct vsd_nic *n = nic_param(d, params, e);
    if (!n || get_str(params, "switch", false, &swname, e) < 0)
        return -1;
    if (json_object_get(params, "mac"))
        return vsd_fail(e, VSD_BAD_PARAMS, "a NIC's MAC address cannot be changed: delete and re-add it");
    if (json_object_get(params, "mtu"))
        return vsd_fail(e, VSD_BAD_PARAMS, "changing a NIC's MTU is not supported by this vswitchd yet");
    if (!swname)
        return vsd_fail(e, VSD_BAD_PARAMS, "nothing to change: give --switch");
    struct vsd_switch *sw = find_switch(d, swname);
    if (!sw)
        return vsd_fail(e, VSD_FAILED, "no switch '%s'", swname);
    if (sw == n->sw)
        return 0;
    struct vsd_switch *old = n->sw;
    struct vsw_port *port = netvsp_port(n->np);
    /* As Hyper-V does: the guest sees its cable pulled and plugged back in,
     * so it renews what it learned on the old network. */
    netvsp_set_media(n->np, false);
    vsw_port_detach(port);
    int rc = vsw_port_attach(sw->sw, port);
    if (rc < 0) {
        vsw_port_attach(old->sw, port);
        netvsp_set_media(n->np, true);
        return vsd_fail(e, VSD_FAILED, "cannot move NIC to switch %s: %s", sw->name, strerror(-rc));
    }
    netvsp_set_media(n->np, true);
    n->sw = sw;
    if (save_or_undo(d, e) < 0) {
        vsw_port_detach(port);
        vsw_port_attach(old->sw, port);
        n->sw = old;
        return -1;
    }
    vsd_log("NIC %s/%s moved from switch %s to %s", n->vm->name, n->name, old->name, sw->name);
    return 0;
}

int vsd_nic_del(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"vm", "nic", NULL};
    if (check_keys(params, keys, e) < 0)
        return -1;
    struct vsd_nic *n = nic_param(d, params, e);
    if (!n)
        return -1;
    struct vsd_vm *vm = n->vm;
    int idx = 0;
    while (vm->nics[idx] != n)
        idx++;
    memmove(&vm->nics[idx], &vm->nics[idx + 1], sizeof(vm->nics[0]) * (size_t)(vm->nnics - idx - 1));
    vm->nnics--;
    if (save_or_undo(d, e) < 0) {
        memmove(&vm->nics[idx + 1], &vm->nics[idx], sizeof(vm->nics[0]) * (size_t)(vm->nnics - idx));
        vm->nics[idx] = n;
        vm->nnics++;
        return -1;
    }
    nic_destroy_rt(n);
    vsd_log("NIC %s/%s deleted", vm->name, n->name);
    free(n);
    return 0;
}

json_t *vsd_nic_list(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"vm", NULL};
    const char *vmname = NULL;
    if (check_keys(params, keys, e) < 0 || get_str(params, "vm", false, &vmname, e) < 0)
        return NULL;
    if (vmname && !find_vm(d, vmname)) {
        vsd_fail(e, VSD_FAILED, "no VM '%s'", vmname);
        return NULL;
    }
    json_t *arr = json_array();
    for (int i = 0; i < VSD_MAX_VMS; i++) {
        struct vsd_vm *vm = d->vms[i];
        if (!vm || (vmname && strcmp(vm->name, vmname) != 0))
            continue;
        for (int j = 0; j < vm->nnics; j++) {
            struct vsd_nic *n = vm->nics[j];
            char m[18];
            vsd_format_mac(n->mac, m);
            json_array_append_new(
                arr, json_pack("{s:s,s:s,s:s,s:s,s:i,s:s}", "vm", vm->name, "nic", n->name,
                               "switch", n->sw->name, "mac", m, "mtu", (json_int_t)n->mtu, "link",
                               vsw_port_link(netvsp_port(n->np)) ? "up" : "down"));
        }
    }
    return json_pack("{s:o}", "nics", arr);
}

/* --- FDB, stats ----------------------------------------------------------- */

static void fdb_cb(void *ctx, const struct vsw_fdb_entry *ent)
{
    json_t *arr = ctx;
    char m[18];
    vsd_format_mac(ent->mac, m);
    json_array_append_new(arr, json_pack("{s:s,s:i,s:s,s:i,s:b}", "port", vsw_port_name(ent->port),
                                         "vlan", (json_int_t)ent->vlan, "mac", m, "age",
                                         (json_int_t)ent->age_s, "static", ent->is_static));
}

json_t *vsd_fdb_show(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"switch", NULL};
    const char *name;
    if (check_keys(params, keys, e) < 0 || get_str(params, "switch", true, &name, e) < 0)
        return NULL;
    struct vsd_switch *s = find_switch(d, name);
    if (!s) {
        vsd_fail(e, VSD_FAILED, "no switch '%s'", name);
        return NULL;
    }
    json_t *arr = json_array();
    vsw_fdb_dump(s->sw, fdb_cb, arr);
    return json_pack("{s:o}", "entries", arr);
}

json_t *vsd_stats(struct vsd *d, const json_t *params, struct vsd_err *e)
{
    static const char *const keys[] = {"target", NULL};
    const char *target = NULL;
    if (check_keys(params, keys, e) < 0 || get_str(params, "target", false, &target, e) < 0)
        return NULL;
    struct vsd_switch *only_sw = NULL;
    struct vsd_nic *only_nic = NULL;
    if (target) {
        const char *slash = strchr(target, '/');
        if (slash) {
            char vmname[VSD_NAME_MAX + 1];
            size_t n = (size_t)(slash - target);
            if (n > VSD_NAME_MAX) {
                vsd_fail(e, VSD_FAILED, "no NIC '%s'", target);
                return NULL;
            }
            memcpy(vmname, target, n);
            vmname[n] = '\0';
            struct vsd_vm *vm = find_vm(d, vmname);
            only_nic = vm ? find_nic(vm, slash + 1) : NULL;
            if (!only_nic) {
                vsd_fail(e, VSD_FAILED, "no NIC '%s' (use VM/NIC)", target);
                return NULL;
            }
        } else {
            only_sw = find_switch(d, target);
            if (!only_sw) {
                vsd_fail(e, VSD_FAILED, "no switch '%s' (give a switch, or VM/NIC)", target);
                return NULL;
            }
        }
    }
    json_t *arr = json_array();
    for (int i = 0; i < VSD_MAX_VMS; i++) {
        for (int j = 0; d->vms[i] && j < d->vms[i]->nnics; j++) {
            struct vsd_nic *n = d->vms[i]->nics[j];
            if ((only_nic && n != only_nic) || (only_sw && n->sw != only_sw))
                continue;
            json_array_append_new(arr, nic_port_json(n));
        }
    }
    return json_pack("{s:o}", "ports", arr);
}

/* --- housekeeping --------------------------------------------------------- */

void vsd_tick(struct vsd *d)
{
    vsw_dp_tick(d->dp);
    double now = vsd_now();
    for (int i = 0; i < VSD_MAX_VMS; i++) {
        struct vsd_vm *vm = d->vms[i];
        if (vm && vm->stop_deadline && now > vm->stop_deadline &&
            hv_partition_state(vm->p) == HV_PARTITION_RUNNING) {
            vsd_log("VM %s did not stop within %d s: forcing it off", vm->name, VSD_STOP_GRACE_S);
            vm->stop_deadline = 0;
            hv_partition_stop(vm->p, 0);
        }
    }
}

void vsd_shutdown(struct vsd *d)
{
    for (int i = 0; i < VSD_MAX_VMS; i++) {
        struct vsd_vm *vm = d->vms[i];
        if (!vm)
            continue;
        for (int w = 0; w < vm->nwaiters; w++)
            json_decref(vm->waiters[w].id);
        vm->nwaiters = 0;
        vm_destroy_rt(vm);
        for (int j = 0; j < vm->nnics; j++)
            free(vm->nics[j]);
        free(vm);
        d->vms[i] = NULL;
    }
    for (int i = 0; i < VSD_MAX_SWITCHES; i++) {
        if (d->switches[i]) {
            vsw_switch_destroy(d->switches[i]->sw);
            free(d->switches[i]);
            d->switches[i] = NULL;
        }
    }
}

