/*
 * The process around the vswitchd harnesses; see fuzz_vsd_env.h.
 *
 * Isolation: as root, the harness first moves into a network namespace and
 * a mount namespace of its own, with a private tmpfs on /run/netns. Host
 * vNICs it creates are then TAPs nobody else sees, which vanish with the
 * process even if it crashes, and vm-del (which removes the namespace of a
 * VM that owned it) can only ever remove files of that tmpfs.
 */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_mempool.h>

#include "jumbo-pool.h"
#include "netvsp.h"
#include "vsw-host.h"
#include "vsw-port-provider.h"
#include "fuzz_vsd_env.h"

struct fz_env fz;

static void isolate(void)
{
    if (geteuid() != 0 || unshare(CLONE_NEWNET | CLONE_NEWNS) < 0)
        return;
    /* Nothing we mount may propagate back to the machine's namespace. */
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return;
    /* Namespaces vm-del removes are then ours, never the machine's. */
    if ((mkdir("/run/netns", 0755) < 0 && errno != EEXIST) ||
        mount("fz-netns", "/run/netns", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=1m") < 0)
        return;
    fz.own_ns = true;
}

static void remove_dir(void)
{
    DIR *dir = opendir(fz.dir);
    if (!dir)
        return;
    struct dirent *de;
    while ((de = readdir(dir))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof(p), "%s/%s", fz.dir, de->d_name);
        unlink(p);
    }
    closedir(dir);
    rmdir(fz.dir);
}

static void at_exit(void)
{
    remove_dir();
}

void fz_env_init(void)
{
    fz.out = stderr;
    fz.debug = getenv("FUZZ_VSD_DEBUG") != NULL;
    isolate();

    cpu_set_t cpus;
    int cpu = 0;
    if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
        while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &cpus))
            cpu++;
    char lcores[64], prefix[64];
    /* Main lcore and one switch worker, as vswitchd on a one-CPU machine. */
    snprintf(lcores, sizeof(lcores), "0@%d,1@%d", cpu, cpu);
    snprintf(prefix, sizeof(prefix), "--file-prefix=%.20s%d", fz_name + 5, (int)getpid());
    char *args[] = {(char *)fz_name, "--lcores", lcores, "--no-huge", "-m", "256", "--no-pci",
                    "--no-shconf", "--no-telemetry", prefix, "--log-level", "*:error"};
    FZ_CHECK(rte_eal_init((int)(sizeof(args) / sizeof(args[0])), args) >= 0);
    /* EAL leaves an empty runtime directory behind (--no-shconf). */
    rmdir(rte_eal_get_runtime_dir());

    struct jumbo_pools_params jpp = {.name = fz_name + 5, .socket = -1, .nb_std = 4095};
    FZ_CHECK(jumbo_pools_create(&jpp, &fz.pools) == 0);
    struct vsw_dp_params dpp = {.pool = jumbo_pool(fz.pools, JUMBO_POOL_STD)};
    FZ_CHECK(vsw_dp_create(&dpp, &fz.dp) == 0);
    FZ_CHECK(hv_host_create(&fz.host) == 0);

    /* State files on tmpfs: every save fsyncs. */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fz.dir, sizeof(fz.dir), "%s/%s.XXXXXX", base, fz_name);
    FZ_CHECK(mkdtemp(fz.dir) != NULL);
    atexit(at_exit);

    /* vswitchd logs every change; thousands of lines a second otherwise.
     * Sanitizer reports and libFuzzer's own output do not use this FILE. */
    if (!fz.debug) {
        FILE *null = fopen("/dev/null", "w");
        if (null)
            stderr = null;
    }
}

void fz_path(char *out, size_t size, const char *file)
{
    snprintf(out, size, "%s/%s", fz.dir, file);
}

void fz_vsd_init(struct vsd *d, const char *file)
{
    memset(d, 0, sizeof(*d));
    d->dp = fz.dp;
    d->pools = fz.pools;
    d->host = fz.host;
    fz_path(d->state_path, sizeof(d->state_path), file);
    fz_path(d->hv_vm_path, sizeof(d->hv_vm_path), "no-such-hv-vm");
}

bool fz_uplink_ok(const char *devargs)
{
    return !devargs[0] || strncmp(devargs, "net_ring", 8) == 0;
}

bool fz_tap_ok(const json_t *type, const json_t *allow_mgmt)
{
    if (fz.own_ns)
        return true;
    const char *t = json_string_value(type), *m = json_string_value(allow_mgmt);
    return !(t && strcmp(t, "internal") == 0) && !json_is_true(allow_mgmt) &&
           !(m && strcmp(m, "on") == 0);
}

bool fz_vsd_empty(const struct vsd *d)
{
    for (int i = 0; i < VSD_MAX_SWITCHES; i++)
        if (d->switches[i])
            return false;
    for (int i = 0; i < VSD_MAX_VMS; i++)
        if (d->vms[i])
            return false;
    return d->captures == NULL;
}

static bool wants_host(const struct vsd_switch *s)
{
    return s->kind == VSW_SWITCH_INTERNAL || (s->kind == VSW_SWITCH_EXTERNAL && s->allow_mgmt);
}

static bool owns_switch(const struct vsd *d, const struct vsd_switch *s)
{
    for (int i = 0; i < VSD_MAX_SWITCHES; i++)
        if (d->switches[i] == s)
            return true;
    return false;
}

static void check_switch(const struct vsd *d, const struct vsd_switch *s)
{
    FZ_CHECK(vsd_name_ok(s->name, VSD_NAME_MAX));
    FZ_CHECK(vsd_find_switch((struct vsd *)d, s->name) == s);
    FZ_CHECK(s->sw && strcmp(vsw_switch_name(s->sw), s->name) == 0);
    FZ_CHECK(s->mtu >= 68 && s->mtu <= 9000);
    FZ_CHECK(s->fdb_max >= 16 && s->fdb_max <= (1u << 20));
    FZ_CHECK(s->fdb_aging >= 10 && s->fdb_aging <= 86400u * 7);
    FZ_CHECK(s->mgmt_vlan <= VSW_VLAN_MAX);
    FZ_CHECK(!s->allow_mgmt || s->kind == VSW_SWITCH_EXTERNAL);
    FZ_CHECK((s->host != NULL) == wants_host(s));
    FZ_CHECK(!s->uplink_port || s->kind == VSW_SWITCH_EXTERNAL);
    FZ_CHECK((s->uplink[0] != '\0') == (s->kind == VSW_SWITCH_EXTERNAL));
    /* An external switch without its uplink says why and will try again. */
    if (s->kind == VSW_SWITCH_EXTERNAL && !s->uplink_port)
        FZ_CHECK(s->uplink_error[0] && s->uplink_retry_at > 0 && s->uplink_failures > 0);
    if (s->uplink_port || s->kind != VSW_SWITCH_EXTERNAL)
        FZ_CHECK(!s->uplink_error[0] && s->uplink_retry_at == 0);
    if (s->host) {
        struct vsw_port_policy pol;
        vsw_port_get_policy(s->host, &pol);
        FZ_CHECK(vsw_port_switch(s->host) == s->sw);
        FZ_CHECK(strcmp(vsw_host_port_ifname(s->host), s->host_if) == 0);
        FZ_CHECK(pol.access_vlan == s->mgmt_vlan && !pol.trunk);
    }
    if (s->uplink_port)
        FZ_CHECK(vsw_port_switch(s->uplink_port) == s->sw);
    FZ_CHECK(s->nstatics >= 0 && s->nstatics <= VSD_MAX_STATICS);
    if (s->mirror.on)
        FZ_CHECK(s->mirror.nsrc >= 1 && s->mirror.nsrc <= VSD_MIRROR_SRC_MAX);
    /* Exactly the ports the model has: nothing left over from a failure. */
    static struct vsw_port *ports[VSW_MAX_PORTS];
    unsigned n = vsw_switch_ports(s->sw, ports, VSW_MAX_PORTS);
    FZ_CHECK(n == (unsigned)vsd_switch_users((struct vsd *)d, s) + (s->host != NULL) +
                      (s->uplink_port != NULL));
    for (unsigned i = 0; i < n; i++)
        FZ_CHECK(vsw_port_switch(ports[i]) == s->sw);
}

static void check_nic(const struct vsd *d, const struct vsd_vm *vm, const struct vsd_nic *n)
{
    FZ_CHECK(n->vm == vm);
    FZ_CHECK(vsd_name_ok(n->name, VSD_NIC_NAME_MAX));
    FZ_CHECK(vsd_find_nic((struct vsd_vm *)vm, n->name) == n);
    FZ_CHECK(n->sw && owns_switch(d, n->sw));
    FZ_CHECK(n->np);
    struct vsw_port *port = netvsp_port(n->np);
    FZ_CHECK(vsw_port_switch(port) == n->sw->sw);
    FZ_CHECK(n->mtu >= 68 && n->mtu <= n->sw->mtu);
    FZ_CHECK(netvsp_mtu(n->np) == n->mtu);
    uint8_t mac[6];
    netvsp_mac(n->np, mac);
    FZ_CHECK(memcmp(mac, n->mac, 6) == 0);
    FZ_CHECK(!(mac[0] & 1) && (mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]));
    /* The options as the port's policy (nic.c: opts_to_policy). */
    const struct vsd_nic_opts *o = &n->opts;
    struct vsw_port_policy p;
    vsw_port_get_policy(port, &p);
    FZ_CHECK(p.access_vlan == o->access_vlan && p.trunk == o->trunk &&
             p.native_vlan == o->native_vlan);
    FZ_CHECK(memcmp(p.allowed, o->allowed, sizeof(p.allowed)) == 0);
    FZ_CHECK(p.spoof_guard == !o->mac_spoofing && memcmp(p.own_mac, n->mac, 6) == 0);
    FZ_CHECK(p.dhcp_guard == o->dhcp_guard && p.router_guard == o->router_guard);
    FZ_CHECK(p.max_mbps == o->max_mbps && p.storm_pps == o->storm_pps);
    FZ_CHECK(!(o->trunk && o->access_vlan) && (o->trunk || !o->native_vlan));
    /* MAC addresses are unique among NICs. */
    for (int i = 0; i < VSD_MAX_VMS; i++)
        for (int j = 0; d->vms[i] && j < d->vms[i]->nnics; j++)
            FZ_CHECK(d->vms[i]->nics[j] == n || memcmp(d->vms[i]->nics[j]->mac, n->mac, 6) != 0);
}

void fz_check_vsd(const struct vsd *d)
{
    for (int i = 0; i < VSD_MAX_SWITCHES; i++)
        if (d->switches[i])
            check_switch(d, d->switches[i]);
    for (int i = 0; i < VSD_MAX_VMS; i++) {
        const struct vsd_vm *vm = d->vms[i];
        if (!vm)
            continue;
        FZ_CHECK(vm->d == d);
        FZ_CHECK(vsd_name_ok(vm->name, VSD_NAME_MAX) && vsd_name_ok(vm->netns, VSD_NAME_MAX));
        FZ_CHECK(vsd_find_vm((struct vsd *)d, vm->name) == vm);
        for (int j = 0; j < VSD_MAX_VMS; j++)
            FZ_CHECK(j == i || !d->vms[j] || strcmp(d->vms[j]->netns, vm->netns) != 0);
        FZ_CHECK(vm->memory_mb >= 64 && vm->memory_mb <= 65536);
        FZ_CHECK(vm->p && vm->srv);
        FZ_CHECK(vm->nnics >= 0 && vm->nnics <= VSD_MAX_NICS);
        for (int j = 0; j < vm->nnics; j++)
            check_nic(d, vm, vm->nics[j]);
    }
}

void fz_vsd_fini(struct vsd *d)
{
    vsd_shutdown(d);
    FZ_CHECK(fz_vsd_empty(d));
    struct rte_mempool *mp = jumbo_pool(fz.pools, JUMBO_POOL_STD);
    FZ_CHECK(rte_mempool_avail_count(mp) == mp->size);
}
