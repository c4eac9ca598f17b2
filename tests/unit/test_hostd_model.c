/*
 * Unit tests for vswitchd's host model (hostd_model, vsd-model.h) called
 * in C, without JSON, the control socket or the state file: the library is
 * linked alone. The host is built as tests/fuzz/fuzz_vsd_env.c builds it,
 * without hardware: EAL with one switch worker on the first CPU we may use,
 * no hugepages, no PCI, the jumbo pools, the data plane, the partition
 * table. VMs name a worker program that does not exist, so none starts;
 * switches are private (no TAP, no device).
 *
 * Each operation's change is left open where the test says so, and then
 * committed or undone as the dispatcher would after a save.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <rte_eal.h>
#include <rte_mempool.h>

#include "jumbo-pool.h"
#include "netvsp.h"
#include "vsd-model.h"
#include "vsw-port-provider.h"

static struct jumbo_pools *g_pools;
static struct vsw_dp *g_dp;
static struct hv_host *g_host;

static int group_setup(void **state)
{
    (void)state;
    cpu_set_t cpus;
    int cpu = 0;
    if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0)
        while (cpu < CPU_SETSIZE - 1 && !CPU_ISSET(cpu, &cpus))
            cpu++;
    char lcores[32], prefix[32];
    snprintf(lcores, sizeof(lcores), "0@%d,1@%d", cpu, cpu);
    snprintf(prefix, sizeof(prefix), "--file-prefix=thm%d", (int)getpid());
    char *argv[] = {"test",     "--lcores",    lcores,           "--no-huge", "-m",
                    "256",      "--no-pci",    "--no-shconf",    prefix,      "--log-level",
                    "*:error",  "--no-telemetry"};
    if (rte_eal_init((int)(sizeof(argv) / sizeof(argv[0])), argv) < 0) {
        print_error("rte_eal_init failed\n");
        return -1;
    }
    /* EAL leaves an empty runtime directory behind (--no-shconf). */
    rmdir(rte_eal_get_runtime_dir());
    struct jumbo_pools_params jpp = {.name = "thm", .socket = -1, .nb_std = 4095};
    struct vsw_dp_params dpp = {0};
    if (jumbo_pools_create(&jpp, &g_pools) < 0 ||
        !(dpp.pool = jumbo_pool(g_pools, JUMBO_POOL_STD)) || vsw_dp_create(&dpp, &g_dp) < 0 ||
        hv_host_create(&g_host) < 0) {
        print_error("cannot build the host\n");
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    hv_host_destroy(g_host);
    vsw_dp_destroy(g_dp);
    jumbo_pools_destroy(g_pools);
    rte_eal_cleanup();
    return 0;
}

static int setup(void **state)
{
    struct vsd *d = calloc(1, sizeof(*d));
    if (!d)
        return -1;
    d->dp = g_dp;
    d->pools = g_pools;
    d->host = g_host;
    /* Nothing in the model writes it: the model does not save. */
    snprintf(d->state_path, sizeof(d->state_path), "/nonexistent/state.json");
    snprintf(d->hv_vm_path, sizeof(d->hv_vm_path), "/nonexistent/hv-vm");
    d->vm_uid_base = VSD_VM_UID_BASE_DEFAULT;
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct vsd *d = *state;
    vsd_shutdown(d);
    for (int i = 0; i < VSD_MAX_SWITCHES; i++)
        assert_null(d->switches[i]);
    for (int i = 0; i < VSD_MAX_VMS; i++)
        assert_null(d->vms[i]);
    /* Every port and buffer went back. */
    struct rte_mempool *mp = jumbo_pool(g_pools, JUMBO_POOL_STD);
    assert_int_equal(rte_mempool_avail_count(mp), mp->size);
    free(d);
    return 0;
}

static void add_switch(struct vsd *d, const char *name, uint32_t mtu)
{
    struct vsd_switch_params p;
    struct vsd_err e = {0};
    vsd_switch_params_init(&p, name, VSW_SWITCH_PRIVATE);
    p.mtu = mtu;
    assert_int_equal(vsd_switch_add(d, &p, NULL, &e), 0);
}

static void add_vm(struct vsd *d, const char *name)
{
    struct vsd_vm_params p;
    struct vsd_err e = {0};
    vsd_vm_params_init(&p, name);
    /* As the state file would: no namespace of ours to remove later. */
    p.restore = true;
    assert_int_equal(vsd_vm_add(d, &p, NULL, &e), 0);
}

static struct vsd_nic *add_nic(struct vsd *d, const char *vm, const char *nic, const char *sw,
                               uint8_t last)
{
    struct vsd_nic_params p = {.vm = vm, .nic = nic, .sw = sw, .has_mac = true,
                               .mac = {0x02, 0, 0, 0, 0, last}};
    struct vsd_nic *n = NULL;
    struct vsd_err e = {0};
    assert_int_equal(vsd_nic_add(d, &p, &n, NULL, &e), 0);
    assert_non_null(n);
    return n;
}

static unsigned ports_of(const struct vsd_switch *s)
{
    struct vsw_port *ports[VSW_MAX_PORTS];
    return vsw_switch_ports(s->sw, ports, VSW_MAX_PORTS);
}

static void vsd_switch_add__c_params__in_the_model_and_the_data_plane(void **state)
{
    struct vsd *d = *state;
    add_switch(d, "sw0", 9000);
    struct vsd_switch *s = vsd_find_switch(d, "sw0");
    assert_non_null(s);
    assert_string_equal(vsw_switch_name(s->sw), "sw0");
    assert_int_equal(s->mtu, 9000);
    assert_int_equal(s->kind, VSW_SWITCH_PRIVATE);
    assert_null(s->host);
    assert_int_equal(ports_of(s), 0);
}

static void vsd_switch_add__bad_settings__refused_with_the_protocols_message(void **state)
{
    struct vsd *d = *state;
    struct vsd_switch_params p;
    struct vsd_err e = {0};
    vsd_switch_params_init(&p, "sw0", VSW_SWITCH_PRIVATE);
    p.mtu = 9001;
    assert_int_equal(vsd_switch_add(d, &p, NULL, &e), -1);
    assert_int_equal(e.code, VSD_BAD_PARAMS);
    assert_string_equal(e.msg, "mtu 9001 is out of range (68..9000)");
    vsd_switch_params_init(&p, "a/b", VSW_SWITCH_PRIVATE);
    assert_int_equal(vsd_switch_add(d, &p, NULL, &e), -1);
    assert_non_null(strstr(e.msg, "bad name name 'a/b'"));
    vsd_switch_params_init(&p, "ext", VSW_SWITCH_EXTERNAL);
    assert_int_equal(vsd_switch_add(d, &p, NULL, &e), -1);
    assert_string_equal(e.msg, "an external switch needs --uplink DEVARGS");
    assert_null(vsd_find_switch(d, "sw0"));
}

static void vsd_nic_add__vm_and_nic_in_c__port_attached_with_its_mac_mtu_and_options(
    void **state)
{
    struct vsd *d = *state;
    add_switch(d, "sw0", 9000);
    add_vm(d, "vm0");
    struct vsd_nic_params p = {.vm = "vm0", .nic = "eth0", .sw = "sw0", .has_mac = true,
                               .mac = {0x02, 0x15, 0x5d, 0, 0, 0x01}, .mtu = 1400,
                               .opts = {.access_vlan = 7, .dhcp_guard = true}};
    struct vsd_nic *n = NULL;
    struct vsd_err e = {0};
    assert_int_equal(vsd_nic_add(d, &p, &n, NULL, &e), 0);
    struct vsd_switch *s = vsd_find_switch(d, "sw0");
    struct vsd_vm *vm = vsd_find_vm(d, "vm0");
    assert_ptr_equal(vsd_find_nic(vm, "eth0"), n);
    assert_ptr_equal(n->sw, s);
    struct vsw_port *port = netvsp_port(n->np);
    assert_ptr_equal(vsw_port_switch(port), s->sw);
    assert_string_equal(vsw_port_name(port), "vm0/eth0");
    assert_int_equal(netvsp_mtu(n->np), 1400);
    uint8_t mac[6];
    netvsp_mac(n->np, mac);
    assert_memory_equal(mac, p.mac, 6);
    struct vsw_port_policy pol;
    vsw_port_get_policy(port, &pol);
    assert_int_equal(pol.access_vlan, 7);
    assert_true(pol.dhcp_guard);
    assert_true(pol.spoof_guard);
    assert_int_equal(vsd_switch_users(d, s), 1);
    assert_int_equal(ports_of(s), 1);
    struct vsd_switch *ps = NULL;
    assert_ptr_equal(vsd_find_port(d, "vm0/eth0", &ps), port);
    assert_ptr_equal(ps, s);

    /* The same MAC twice, the same name twice, an MTU above the switch's. */
    p.nic = "eth1";
    assert_int_equal(vsd_nic_add(d, &p, NULL, NULL, &e), -1);
    assert_non_null(strstr(e.msg, "is already used by vm0/eth0"));
    p.nic = "eth0";
    p.mac[5] = 2;
    assert_int_equal(vsd_nic_add(d, &p, NULL, NULL, &e), -1);
    assert_string_equal(e.msg, "VM 'vm0' already has a NIC 'eth0'");
    assert_int_equal(vm->nnics, 1);
}

static void vsd_nic_add__change_undone__nic_and_port_gone(void **state)
{
    struct vsd *d = *state;
    add_switch(d, "sw0", 1500);
    add_vm(d, "vm0");
    struct vsd_nic_params p = {.vm = "vm0", .nic = "eth0", .sw = "sw0"};
    struct vsd_change chg = {0};
    struct vsd_err e = {0};
    assert_int_equal(vsd_nic_add(d, &p, NULL, &chg, &e), 0);
    assert_true(chg.open);
    struct vsd_vm *vm = vsd_find_vm(d, "vm0");
    assert_int_equal(vm->nnics, 1);
    /* A random, locally administered unicast MAC, and the switch's MTU. */
    assert_int_equal(vm->nics[0]->mac[0] & 0x03, 0x02);
    assert_int_equal(vm->nics[0]->mtu, 1500);
    vsd_change_undo(&chg);
    assert_false(chg.open);
    assert_int_equal(vm->nnics, 0);
    assert_int_equal(ports_of(vsd_find_switch(d, "sw0")), 0);
    /* Ending a change twice does nothing. */
    vsd_change_commit(&chg);
    vsd_change_undo(&chg);
}

static void vsd_switch_del__change_open__gone_from_the_model_back_on_undo_freed_on_commit(
    void **state)
{
    struct vsd *d = *state;
    add_switch(d, "sw0", 1500);
    struct vsd_switch *s = vsd_find_switch(d, "sw0");
    struct vsd_change chg = {0};
    struct vsd_err e = {0};
    assert_int_equal(vsd_switch_del(d, "sw0", &chg, &e), 0);
    assert_null(vsd_find_switch(d, "sw0"));
    vsd_change_undo(&chg);
    assert_ptr_equal(vsd_find_switch(d, "sw0"), s);
    assert_int_equal(vsd_switch_del(d, "sw0", &chg, &e), 0);
    vsd_change_commit(&chg);
    assert_null(vsd_find_switch(d, "sw0"));
    assert_int_equal(vsd_switch_del(d, "sw0", &chg, &e), -1);
    assert_string_equal(e.msg, "no switch 'sw0'");
    assert_false(chg.open);
}

static void vsd_switch_del__a_nic_on_it__refused_nothing_changed(void **state)
{
    struct vsd *d = *state;
    add_switch(d, "sw0", 1500);
    add_vm(d, "vm0");
    add_nic(d, "vm0", "eth0", "sw0", 1);
    struct vsd_change chg = {0};
    struct vsd_err e = {0};
    assert_int_equal(vsd_switch_del(d, "sw0", &chg, &e), -1);
    assert_int_equal(e.code, VSD_FAILED);
    assert_string_equal(e.msg, "switch 'sw0' is used by 1 NIC(s): delete or move them first");
    assert_false(chg.open);
    assert_non_null(vsd_find_switch(d, "sw0"));
}

static void vsd_nic_set__move_and_mtu_undone__back_on_its_switch_with_its_mtu(void **state)
{
    struct vsd *d = *state;
    add_switch(d, "sw0", 1500);
    add_switch(d, "sw1", 9000);
    add_vm(d, "vm0");
    struct vsd_nic *n = add_nic(d, "vm0", "eth0", "sw0", 1);
    struct vsd_switch *s0 = vsd_find_switch(d, "sw0"), *s1 = vsd_find_switch(d, "sw1");
    struct vsd_nic_opts opts = n->opts;
    opts.router_guard = true;
    struct vsd_nic_set_params p = {
        .vm = "vm0", .nic = "eth0", .sw = "sw1", .has_mtu = true, .mtu = 9000, .opts = &opts};
    struct vsd_change chg = {0};
    struct vsd_err e = {0};
    assert_int_equal(vsd_nic_set(d, &p, &chg, &e), 0);
    assert_ptr_equal(n->sw, s1);
    assert_ptr_equal(vsw_port_switch(netvsp_port(n->np)), s1->sw);
    assert_int_equal(netvsp_mtu(n->np), 9000);
    assert_true(n->opts.router_guard);
    vsd_change_undo(&chg);
    assert_ptr_equal(n->sw, s0);
    assert_ptr_equal(vsw_port_switch(netvsp_port(n->np)), s0->sw);
    assert_int_equal(ports_of(s1), 0);
    assert_int_equal(n->mtu, 1500);
    assert_int_equal(netvsp_mtu(n->np), 1500);
    assert_false(n->opts.router_guard);
    struct vsw_port_policy pol;
    vsw_port_get_policy(netvsp_port(n->np), &pol);
    assert_false(pol.router_guard);

    /* Nothing to change: no change to save. */
    p = (struct vsd_nic_set_params){.vm = "vm0", .nic = "eth0"};
    assert_int_equal(vsd_nic_set(d, &p, &chg, &e), 0);
    assert_false(chg.open);
    /* An MTU above the switch's is refused. */
    p.has_mtu = true;
    p.mtu = 9000;
    assert_int_equal(vsd_nic_set(d, &p, &chg, &e), -1);
    assert_int_equal(e.code, VSD_BAD_PARAMS);
    assert_string_equal(e.msg, "the NIC's MTU 9000 would be above switch sw0's MTU 1500");
}

static void vsd_switch_set__fdb_and_mtu_undone__settings_and_table_back(void **state)
{
    struct vsd *d = *state;
    add_switch(d, "sw0", 1500);
    struct vsd_switch *s = vsd_find_switch(d, "sw0");
    struct vsd_switch_set_params p = {.name = "sw0", .has_mtu = true, .mtu = 9000,
                                      .has_fdb_max = true, .fdb_max = 1024};
    struct vsd_change chg = {0};
    struct vsd_err e = {0};
    assert_int_equal(vsd_switch_set(d, &p, &chg, &e), 0);
    assert_int_equal(s->mtu, 9000);
    assert_int_equal(s->fdb_max, 1024);
    vsd_change_undo(&chg);
    assert_int_equal(s->mtu, 1500);
    assert_int_equal(s->fdb_max, VSD_FDB_MAX_DEFAULT);
    p = (struct vsd_switch_set_params){.name = "sw0"};
    assert_int_equal(vsd_switch_set(d, &p, &chg, &e), -1);
    assert_int_equal(e.code, VSD_BAD_PARAMS);
    assert_non_null(strstr(e.msg, "nothing to change"));
}

static void vsd_fdb_add_and_mirror_add__undone__configuration_back(void **state)
{
    struct vsd *d = *state;
    add_switch(d, "sw0", 1500);
    add_vm(d, "vm0");
    add_nic(d, "vm0", "eth0", "sw0", 1);
    add_nic(d, "vm0", "eth1", "sw0", 2);
    struct vsd_switch *s = vsd_find_switch(d, "sw0");
    static const uint8_t mac[6] = {0x02, 0, 0, 0, 0, 0x99};
    struct vsd_change chg = {0};
    struct vsd_err e = {0};
    assert_int_equal(vsd_fdb_add(d, "sw0", mac, 0, "vm0/eth0", &chg, &e), 0);
    assert_int_equal(s->nstatics, 1);
    vsd_change_undo(&chg);
    assert_int_equal(s->nstatics, 0);
    /* A C caller's multicast MAC is refused as a JSON one is. */
    static const uint8_t mcast[6] = {0x01, 0, 0x5e, 0, 0, 1};
    assert_int_equal(vsd_fdb_add(d, "sw0", mcast, 0, "vm0/eth0", &chg, &e), -1);
    assert_int_equal(e.code, VSD_BAD_PARAMS);

    const char *src[] = {"vm0/eth0"};
    assert_int_equal(vsd_mirror_add(d, "sw0", src, 1, "vm0/eth1", &chg, &e), 0);
    assert_true(s->mirror.on);
    assert_string_equal(s->mirror.dst, "vm0/eth1");
    vsd_change_undo(&chg);
    assert_false(s->mirror.on);
    /* A NIC in the mirror cannot go; once the mirror is gone it can. */
    assert_int_equal(vsd_mirror_add(d, "sw0", src, 1, "vm0/eth1", NULL, &e), 0);
    assert_int_equal(vsd_nic_del(d, "vm0", "eth1", &chg, &e), -1);
    assert_non_null(strstr(e.msg, "part of switch sw0's mirror"));
    assert_int_equal(vsd_mirror_del(d, "sw0", NULL, &e), 0);
    assert_int_equal(vsd_nic_del(d, "vm0", "eth1", &chg, &e), 0);
    vsd_change_commit(&chg);
    assert_int_equal(ports_of(s), 1);
}

/* What vm-stop's caller was told. */
struct stop_seen {
    int calls;
    char state[16];
};

static void stopped(void *ctx, const char *state, const struct vsd_err *e)
{
    struct stop_seen *seen = ctx;
    assert_null(e);
    seen->calls++;
    snprintf(seen->state, sizeof(seen->state), "%s", state ? state : "");
}

static void vsd_vm_stop__not_running__told_only_once_committed_never_when_undone(void **state)
{
    struct vsd *d = *state;
    add_vm(d, "vm0");
    struct vsd_vm *vm = vsd_find_vm(d, "vm0");
    vm->want_running = true;
    struct stop_seen seen = {0};
    struct vsd_change chg = {0};
    struct vsd_err e = {0};
    assert_int_equal(vsd_vm_stop(d, "vm0", stopped, &seen, &chg, &e), 0);
    assert_false(vm->want_running);
    assert_int_equal(seen.calls, 0);
    vsd_change_undo(&chg);
    assert_true(vm->want_running);
    assert_int_equal(seen.calls, 0);

    assert_int_equal(vsd_vm_stop(d, "vm0", stopped, &seen, &chg, &e), 0);
    vsd_change_commit(&chg);
    assert_int_equal(seen.calls, 1);
    assert_string_equal(seen.state, "stopped");
    assert_false(vm->want_running);

    assert_int_equal(vsd_vm_stop(d, "nosuch", stopped, &seen, &chg, &e), -1);
    assert_string_equal(e.msg, "no VM 'nosuch'");
    assert_int_equal(seen.calls, 1);
}

static void vsd_vm_start__worker_missing__refused_nothing_changed(void **state)
{
    struct vsd *d = *state;
    add_vm(d, "vm0");
    struct vsd_change chg = {0};
    struct vsd_err e = {0};
    assert_int_equal(vsd_vm_start(d, "vm0", &chg, &e), -1);
    assert_non_null(strstr(e.msg, "cannot run the VM worker /nonexistent/hv-vm"));
    assert_false(chg.open);
    assert_false(vsd_find_vm(d, "vm0")->want_running);
    assert_string_equal(vsd_vm_state_name(vsd_find_vm(d, "vm0")), "stopped");
}

static void vsd_vm_del__committed__vm_and_its_nics_gone(void **state)
{
    struct vsd *d = *state;
    add_switch(d, "sw0", 1500);
    add_vm(d, "vm0");
    add_nic(d, "vm0", "eth0", "sw0", 1);
    struct vsd_change chg = {0};
    struct vsd_err e = {0};
    assert_int_equal(vsd_vm_del(d, "vm0", &chg, &e), 0);
    assert_null(vsd_find_vm(d, "vm0"));
    /* Until the deletion is saved, its NIC's port is still there. */
    assert_int_equal(ports_of(vsd_find_switch(d, "sw0")), 1);
    vsd_change_commit(&chg);
    assert_int_equal(ports_of(vsd_find_switch(d, "sw0")), 0);
    assert_int_equal(vsd_switch_users(d, vsd_find_switch(d, "sw0")), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            vsd_switch_add__c_params__in_the_model_and_the_data_plane, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_switch_add__bad_settings__refused_with_the_protocols_message, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_nic_add__vm_and_nic_in_c__port_attached_with_its_mac_mtu_and_options, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_nic_add__change_undone__nic_and_port_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_switch_del__change_open__gone_from_the_model_back_on_undo_freed_on_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_switch_del__a_nic_on_it__refused_nothing_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_nic_set__move_and_mtu_undone__back_on_its_switch_with_its_mtu, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_switch_set__fdb_and_mtu_undone__settings_and_table_back, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_fdb_add_and_mirror_add__undone__configuration_back, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_vm_stop__not_running__told_only_once_committed_never_when_undone, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_vm_start__worker_missing__refused_nothing_changed, setup, teardown),
        cmocka_unit_test_setup_teardown(
            vsd_vm_del__committed__vm_and_its_nics_gone, setup, teardown),
    };
    return cmocka_run_group_tests_name("hostd_model", tests, group_setup, group_teardown);
}
