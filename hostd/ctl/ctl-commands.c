/* The command table (the contract of vswitch-ctl) and its help. */
#define _GNU_SOURCE

#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "jumbo.h"

/* The --mtu help texts spell the range out; it is jumbo.h's. */
#define MTU_RANGE "68..9000"
#define MTU_DEFAULT "1500"
_Static_assert(JUMBO_MTU_MIN == 68 && JUMBO_MTU_MAX == 9000 && JUMBO_MTU_DEFAULT == 1500,
               "MTU_RANGE and MTU_DEFAULT must say what jumbo.h says");

static int check_switch_add(const struct command *cmd, const json_t *params)
{
    const char *type = json_string_value(json_object_get(params, "type"));
    bool external = type && !strcmp(type, "external");

    if (external && !json_object_get(params, "uplink"))
        return ctl_usage_error(cmd->name, "an external switch needs --uplink DEVARGS (the DPDK "
                           "device that reaches the physical network)");
    if (!external && json_object_get(params, "uplink"))
        return ctl_usage_error(cmd->name, "--uplink is only for --type external; a %s switch has "
                           "no uplink", type);
    if (!external && json_object_get(params, "allow_management_os"))
        return ctl_usage_error(cmd->name, "--allow-management-os is only for --type external; %s",
                           type && !strcmp(type, "internal") ? "an internal switch always has a host vNIC"
                                                     : "a private switch has no host vNIC");
    return 0;
}

static int check_switch_set(const struct command *cmd, const json_t *params)
{
    if (json_object_size(params) < 2)
        return ctl_usage_error(cmd->name, "nothing to change; give --type, --uplink, "
                           "--allow-management-os, --management-vlan, --mtu, --fdb-max or "
                           "--fdb-aging");
    return 0;
}

static int check_nic(const struct command *cmd, const json_t *params)
{
    if (json_object_get(params, "vlan") && json_object_get(params, "trunk"))
        return ctl_usage_error(cmd->name, "--vlan and --trunk exclude each other: --vlan ID makes "
                           "an access port, --trunk LIST a trunk port");
    if (!strcmp(cmd->name, "nic-set") && json_object_size(params) < 3)
        return ctl_usage_error(cmd->name, "nothing to change; give at least one option (see "
                           "'vswitch-ctl help nic-set')");
    return 0;
}

static int check_worker_set(const struct command *cmd, const json_t *params)
{
    if (json_object_size(params) == 0)
        return ctl_usage_error(cmd->name, "nothing to change; give --dynamic-vmq or "
                               "--load-threshold");
    return 0;
}

static const struct arg_spec pos_switch[] = {
    { .kind = ARG_NAME, .metavar = "NAME", .label = "switch name", .param = "name",
      .help = "the switch" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_vm[] = {
    { .kind = ARG_NAME, .metavar = "NAME", .label = "VM name", .param = "name",
      .help = "the VM" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_vm_nic[] = {
    { .kind = ARG_NAME, .metavar = "VM", .label = "VM name", .param = "vm", .help = "the VM" },
    { .kind = ARG_NIC, .metavar = "NIC", .label = "NIC name", .param = "nic",
      .help = "the NIC: its interface name inside the VM" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_opt_vm[] = {
    { .kind = ARG_NAME, .metavar = "VM", .label = "VM name", .param = "vm", .optional = true,
      .help = "only this VM's NICs" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_opt_sw[] = {
    { .kind = ARG_NAME, .metavar = "SW", .label = "switch name", .param = "switch",
      .optional = true, .help = "only this switch's queues" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_sw[] = {
    { .kind = ARG_NAME, .metavar = "SW", .label = "switch name", .param = "switch",
      .help = "the switch" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_target[] = {
    { .kind = ARG_TARGET, .metavar = "SW|VM/NIC", .label = "target", .param = "target",
      .optional = true, .help = "one switch's ports, or one NIC (default: every port)" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_port[] = {
    { .kind = ARG_PORT, .metavar = "PORT", .label = "port", .param = "port",
      .help = "VM/NIC, or a switch port as switch-show names it" },
    { .kind = ARG_END },
};

static const struct arg_spec opts_switch_add[] = {
    { .kind = ARG_SWITCH_TYPE, .name = "--type", .metavar = "private|internal|external",
      .param = "type", .required = true,
      .help = "private: VMs only; internal: plus a host vNIC named after the switch; "
              "external: plus an uplink to the physical network" },
    { .kind = ARG_TEXT, .name = "--uplink", .metavar = "DEVARGS", .param = "uplink",
      .help = "the uplink's DPDK device (external only), e.g. net_af_packet0,iface=eth1" },
    { .kind = ARG_FLAG, .name = "--allow-management-os", .param = "allow_management_os",
      .help = "also give the host a vNIC on the external switch" },
    { .kind = ARG_UINT, .name = "--management-vlan", .metavar = "ID", .min = 0,
      .max = CTL_VLAN_MAX, .param = "management_vlan",
      .help = "access VLAN of the host vNIC, 0..4094 (default 0: untagged)" },
    { .kind = ARG_UINT, .name = "--mtu", .metavar = "N",
      .min = JUMBO_MTU_MIN, .max = JUMBO_MTU_MAX,
      .param = "mtu", .help = "L3 MTU of the switch, " MTU_RANGE " (default " MTU_DEFAULT ")" },
    { .kind = ARG_UINT, .name = "--fdb-max", .metavar = "N", .min = 16, .max = 1048576,
      .param = "fdb_max", .help = "MAC table size, 16..1048576 (default 8192)" },
    { .kind = ARG_UINT, .name = "--fdb-aging", .metavar = "S", .min = 10, .max = 604800,
      .param = "fdb_aging", .help = "seconds a learned MAC lives unseen, 10..604800 (default 300)" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_switch_set[] = {
    { .kind = ARG_SWITCH_TYPE, .name = "--type", .metavar = "private|internal|external",
      .param = "type", .help = "change the switch's kind, live (VMs keep running)" },
    { .kind = ARG_TEXT, .name = "--uplink", .metavar = "DEVARGS", .param = "uplink",
      .help = "a new uplink for an external switch" },
    { .kind = ARG_ONOFF, .name = "--allow-management-os", .metavar = "on|off",
      .param = "allow_management_os", .help = "host vNIC on an external switch, or not" },
    { .kind = ARG_UINT, .name = "--management-vlan", .metavar = "ID", .min = 0,
      .max = CTL_VLAN_MAX, .param = "management_vlan",
      .help = "access VLAN of the host vNIC, 0..4094 (0: untagged)" },
    { .kind = ARG_UINT, .name = "--mtu", .metavar = "N",
      .min = JUMBO_MTU_MIN, .max = JUMBO_MTU_MAX,
      .param = "mtu", .help = "L3 MTU of the switch, " MTU_RANGE },
    { .kind = ARG_UINT, .name = "--fdb-max", .metavar = "N", .min = 16, .max = 1048576,
      .param = "fdb_max", .help = "MAC table size, 16..1048576 (learned entries are dropped)" },
    { .kind = ARG_UINT, .name = "--fdb-aging", .metavar = "S", .min = 10, .max = 604800,
      .param = "fdb_aging", .help = "seconds a learned MAC lives unseen, 10..604800" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_vm_add[] = {
    { .kind = ARG_NETNS, .name = "--netns", .metavar = "NS", .param = "netns",
      .help = "network namespace the VM's NICs appear in, 1..64 characters of "
              "A-Z a-z 0-9 _ . - (default: NAME)" },
    { .kind = ARG_UINT, .name = "--memory", .metavar = "MB", .min = 64, .max = 65536,
      .param = "memory_mb", .help = "guest memory in MiB, 64..65536 (default 256)" },
    { .kind = ARG_UINT, .name = "--cpus", .metavar = "N", .min = 1, .max = 64,
      .param = "cpus",
      .help = "virtual processors, 1..64 and at most the host's CPUs (default 1)" },
    { .kind = ARG_ONOFF, .name = "--guest-offloads", .metavar = "on|off",
      .param = "guest_offloads",
      .help = "the guest's NIC drivers ask for checksum, LSO and RSC offloads (default on)" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_nic_add_switch[] = {
    { .kind = ARG_NAME, .name = "--switch", .metavar = "SW", .param = "switch",
      .required = true, .help = "the switch to connect the NIC to" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_nic_set_switch[] = {
    { .kind = ARG_NAME, .name = "--switch", .metavar = "SW", .param = "switch",
      .help = "move the NIC to another switch" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_nic[] = {
    { .kind = ARG_MAC, .name = "--mac", .metavar = "MAC", .param = "mac",
      .help = "xx:xx:xx:xx:xx:xx, unicast, not all zero (default: a generated "
              "random locally administered unicast address)" },
    { .kind = ARG_UINT, .name = "--vlan", .metavar = "ID", .min = 0, .max = CTL_VLAN_MAX,
      .param = "vlan", .help = "access port in VLAN ID, 1..4094; 0 makes the NIC untagged "
                               "again (no VLAN, no trunk)" },
    { .kind = ARG_TRUNK, .name = "--trunk", .metavar = "LIST", .param = "trunk",
      .help = "trunk port for VLANs LIST: 1..4094, commas and ranges (10,20-30)" },
    { .kind = ARG_UINT, .name = "--native-vlan", .metavar = "ID", .min = 0, .max = CTL_VLAN_MAX,
      .param = "native_vlan", .help = "trunk: VLAN of untagged frames (default 0: the untagged network)" },
    { .kind = ARG_UINT, .name = "--mtu", .metavar = "N",
      .min = JUMBO_MTU_MIN, .max = JUMBO_MTU_MAX,
      .param = "mtu", .help = "L3 MTU of the NIC, " MTU_RANGE ", at most the switch's (default: the switch's); live, the guest re-initialises its NIC" },
    { .kind = ARG_ONOFF, .name = "--mac-spoofing", .metavar = "on|off", .param = "mac_spoofing",
      .help = "allow the guest to send from source MACs other than its own" },
    { .kind = ARG_ONOFF, .name = "--dhcp-guard", .metavar = "on|off", .param = "dhcp_guard",
      .help = "drop DHCP server messages the guest sends" },
    { .kind = ARG_ONOFF, .name = "--router-guard", .metavar = "on|off", .param = "router_guard",
      .help = "drop router advertisements and redirects the guest sends" },
    { .kind = ARG_UINT, .name = "--max-mbps", .metavar = "N", .min = 0, .max = 1000000,
      .param = "max_mbps", .help = "limit what the guest sends to N Mbit/s, 0 = no limit" },
    { .kind = ARG_UINT, .name = "--storm-limit", .metavar = "PPS", .min = 0, .max = 10000000,
      .param = "storm_limit",
      .help = "broadcast+multicast frames per second the guest may send, 0 = no limit" },
    { .kind = ARG_WORKER, .name = "--worker", .metavar = "LCORE|auto", .min = 0, .max = 1023,
      .param = "worker",
      .help = "pin the NIC's queue to the switch worker on LCORE (see worker-show), or auto "
              "(default): placed by measured load and moved by dynamic VMQ" },
    { .kind = ARG_AUTO_UINT, .name = "--queues", .metavar = "N|auto", .min = 1, .max = 8,
      .param = "queues",
      .help = "channels the guest may open (vRSS: the primary and N-1 sub-channels), 1..8, "
              "or auto (default): as many as the VM has virtual processors, at most 8; "
              "live, for the guest's next request" },
    { .kind = ARG_ONOFF, .name = "--vmq", .metavar = "on|off", .param = "vmq",
      .help = "VMQ: on (default), the NIC's queue gets a worker of its own; off, it shares "
              "the switch's default queue (served by the uplink's or host vNIC's worker, "
              "and follows it); live; off excludes --worker LCORE" },
    { .kind = ARG_UINT, .name = "--vmq-weight", .metavar = "N", .min = 0, .max = 100,
      .param = "vmq_weight",
      .help = "0..100 (default 100): priority for a worker of its own under dynamic VMQ "
              "(spreading moves the highest first, packing the lowest); 0 is VMQ off" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_fdb_add[] = {
    { .kind = ARG_NAME, .metavar = "SW", .label = "switch name", .param = "switch",
      .help = "the switch" },
    { .kind = ARG_MAC, .metavar = "MAC", .label = "MAC address", .param = "mac",
      .help = "the address" },
    { .kind = ARG_PORT, .metavar = "PORT", .label = "port", .param = "port",
      .help = "where frames to it go: VM/NIC, a host vNIC or SWITCH:uplink" },
    { .kind = ARG_END },
};
static const struct arg_spec pos_fdb_del[] = {
    { .kind = ARG_NAME, .metavar = "SW", .label = "switch name", .param = "switch",
      .help = "the switch" },
    { .kind = ARG_MAC, .metavar = "MAC", .label = "MAC address", .param = "mac",
      .help = "the address" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_fdb[] = {
    { .kind = ARG_UINT, .name = "--vlan", .metavar = "ID", .min = 0, .max = CTL_VLAN_MAX,
      .param = "vlan", .help = "the VLAN of the entry, 0 (untagged, default)..4094" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_mirror_add[] = {
    { .kind = ARG_PORT_LIST, .name = "--src", .metavar = "PORT[,PORT...]", .param = "src",
      .required = true, .help = "ports whose traffic (both directions) is copied" },
    { .kind = ARG_PORT, .name = "--dst", .metavar = "PORT", .param = "dst", .required = true,
      .help = "port that receives the copies" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_capture[] = {
    { .kind = ARG_FILE, .name = "-w", .metavar = "FILE", .param = "file", .required = true,
      .help = "pcap file to create (vswitchd writes it; a relative name is taken from "
              "the current directory); it must not exist yet" },
    { .kind = ARG_FLAG, .name = "--force", .param = "force",
      .help = "replace FILE if it exists; only a regular file with no other hard link "
              "is replaced, never a symbolic link, a device or a FIFO" },
    { .kind = ARG_UINT, .name = "-c", .metavar = "COUNT", .min = 1, .max = 2147483647,
      .param = "count", .help = "stop after COUNT frames" },
    { .kind = ARG_UINT, .name = "--timeout", .metavar = "S", .min = 1, .max = CTL_MAX_TIMEOUT_S,
      .param = "timeout", .help = "stop after S seconds, 1..86400" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_worker_show[] = {
    { .kind = ARG_FLAG, .name = "--clear", .param = "clear",
      .help = "after showing them, count from zero again (like ovs-appctl "
              "dpif-netdev/pmd-stats-clear)" },
    { .kind = ARG_END },
};
static const struct arg_spec opts_worker_set[] = {
    { .kind = ARG_ONOFF, .name = "--dynamic-vmq", .metavar = "on|off", .param = "dynamic_vmq",
      .help = "move ports between workers as their load changes (default off)" },
    { .kind = ARG_UINT, .name = "--load-threshold", .metavar = "PCT", .min = 1, .max = 100,
      .param = "load_threshold",
      .help = "a worker this busy for 1 s is overloaded (default 80); the low mark (3/8 of "
              "it), packing ceiling (5/8) and margin (1/8) follow" },
    { .kind = ARG_END },
};
static const struct arg_spec none[] = { { .kind = ARG_END } };

static const struct command commands[] = {
    { "switch-add", "create a virtual switch",
      "switch-add NAME --type private|internal|external\n"
      "        [--uplink DEVARGS] [--allow-management-os] [--management-vlan ID]\n"
      "        [--mtu N] [--fdb-max N] [--fdb-aging S]",
      "A private switch connects VMs only; an internal switch also gives the host a\n"
      "vNIC (a TAP in the root namespace named after the switch); an external switch\n"
      "connects the VMs to the physical network through an uplink, plus a host vNIC\n"
      "with --allow-management-os.",
      pos_switch, opts_switch_add, NULL, check_switch_add, ctl_print_generic },
    { "switch-del", "delete a switch (refused while NICs use it)", "switch-del NAME", NULL,
      pos_switch, NULL, NULL, NULL, ctl_print_generic },
    { "switch-set", "change a switch's settings, live",
      "switch-set NAME [--type private|internal|external] [--uplink DEVARGS]\n"
      "        [--allow-management-os on|off] [--management-vlan ID] [--mtu N]\n"
      "        [--fdb-max N] [--fdb-aging S]",
      "Changing the kind, uplink or management-OS choice keeps the VMs running:\n"
      "new ports are made first, then the old ones go.",
      pos_switch, opts_switch_set, NULL, check_switch_set, ctl_print_generic },
    { "switch-list", "list the switches", "switch-list", NULL, none, NULL, NULL, NULL,
      ctl_print_switch_list },
    { "switch-show", "show a switch: kind, MTU, FDB, ports with counters", "switch-show NAME",
      NULL, pos_switch, NULL, NULL, NULL, ctl_print_switch_show },
    { "vm-add", "create a VM (a child partition)",
      "vm-add NAME [--netns NS] [--memory MB] [--cpus N] [--guest-offloads on|off]",
      "Creates the VM stopped; its NICs appear as interfaces in network namespace NS.",
      pos_vm, opts_vm_add, NULL, NULL, ctl_print_generic },
    { "vm-start", "start a VM", "vm-start NAME", NULL, pos_vm, NULL, NULL, NULL,
      ctl_print_vm_state },
    { "vm-stop", "stop a VM (answers once it has stopped)", "vm-stop NAME",
      "Waits until the VM has stopped; see --timeout.", pos_vm, NULL, NULL, NULL,
      ctl_print_vm_state },
    { "vm-del", "delete a stopped VM", "vm-del NAME", NULL, pos_vm, NULL, NULL, NULL,
      ctl_print_generic },
    { "vm-list", "list the VMs", "vm-list", NULL, none, NULL, NULL, NULL, ctl_print_vm_list },
    { "nic-add", "give a VM a network adapter on a switch",
      "nic-add VM NIC --switch SW [--mac MAC]\n"
      "        [--vlan ID | --trunk LIST] [--mtu N]\n"
      "        [--mac-spoofing on|off] [--dhcp-guard on|off]\n"
      "        [--router-guard on|off] [--max-mbps N]\n"
      "        [--native-vlan ID] [--storm-limit PPS] [--worker LCORE|auto]\n"
      "        [--queues N|auto] [--vmq on|off] [--vmq-weight N]",
      "Prints the NIC's MAC address (the one given, or the one generated).\n"
      "MAC spoofing is off by default: the guest may only send from its own MAC.",
      pos_vm_nic, opts_nic_add_switch, opts_nic, check_nic, ctl_print_nic_add },
    { "nic-set", "change a NIC's settings",
      "nic-set VM NIC [--switch SW] [--mac MAC]\n"
      "        [--vlan ID | --trunk LIST] [--mtu N]\n"
      "        [--mac-spoofing on|off] [--dhcp-guard on|off]\n"
      "        [--router-guard on|off] [--max-mbps N]\n"
      "        [--native-vlan ID] [--storm-limit PPS] [--worker LCORE|auto]\n"
      "        [--queues N|auto] [--vmq on|off] [--vmq-weight N]",
      "Moving a NIC to another switch bounces the guest's link, as Hyper-V does.\n"
      "--worker moves the NIC's queue to that worker at once, losing no frame.\n"
      "--vmq off (or --vmq-weight 0) moves it at once onto the worker of the\n"
      "switch's default queue; --vmq on places it by load again.",
      pos_vm_nic, opts_nic_set_switch, opts_nic, check_nic, ctl_print_generic },
    { "nic-del", "remove a NIC from a VM", "nic-del VM NIC", NULL, pos_vm_nic, NULL, NULL, NULL,
      ctl_print_generic },
    { "nic-list", "list the NICs (of one VM)", "nic-list [VM]", NULL, pos_opt_vm, NULL, NULL,
      NULL, ctl_print_nic_list },
    { "fdb-show", "show a switch's MAC table (like ovs-appctl fdb/show)", "fdb-show SW", NULL,
      pos_sw, NULL, NULL, NULL, ctl_print_fdb },
    { "fdb-add", "add a static MAC entry (never aged, never moved)",
      "fdb-add SW MAC PORT [--vlan ID]", NULL, pos_fdb_add, opts_fdb, NULL, NULL,
      ctl_print_generic },
    { "fdb-del", "remove a MAC entry (static or learned)", "fdb-del SW MAC [--vlan ID]", NULL,
      pos_fdb_del, opts_fdb, NULL, NULL, ctl_print_generic },
    { "fdb-flush", "forget every learned MAC of a switch (static entries stay)",
      "fdb-flush SW", NULL, pos_sw, NULL, NULL, NULL, ctl_print_generic },
    { "stats", "show port counters, drops by reason (like ovs-ofctl dump-ports)",
      "stats [SW|PORT]",
      "rx counts frames from the port into the switch (what a VM sent), tx frames\n"
      "the switch delivered out of the port (what a VM received). Drops are listed\n"
      "by reason; tx drop counts too_big, queue_full and link_down, rx drop every\n"
      "other reason.",
      pos_target, NULL, NULL, NULL, ctl_print_stats },
    { "worker-show", "show the switch workers' load and cycles per packet",
      "worker-show [--clear]",
      "Like ovs-appctl dpif-netdev/pmd-stats-show, per switch worker: its lcore, the\n"
      "ports it polls with their rx/tx packets, polling rounds, busy %, TSC cycles\n"
      "busy (rounds that did work), idle (rounds that found none) and asleep, frames\n"
      "received (what its ports' rx gave) and sent, and cycles per packet: busy\n"
      "cycles per frame received. Figures count from vswitchd's start or the last\n"
      "--clear.",
      none, opts_worker_show, NULL, NULL, ctl_print_workers },
    { "worker-set", "turn dynamic VMQ (moving ports between workers by load) on or off",
      "worker-set [--dynamic-vmq on|off] [--load-threshold PCT]",
      "For the whole vswitchd: the workers serve every switch. Every 0.5 s the load of\n"
      "each worker and port is sampled; a worker at 80 % or more for 1 s gives its\n"
      "heaviest movable port to the least busy worker if that lowers the busier one\n"
      "by 10 points; when every worker stays below 30 % for 3 s, ports are packed\n"
      "onto fewer workers (at most 50 % each) so that idle ones sleep. A port moves\n"
      "at most once in 10 s; pinned ports (nic-set --worker) never. Moves are\n"
      "counted in worker-show and logged with their reason.",
      none, opts_worker_set, NULL, check_worker_set, ctl_print_generic },
    { "vmq-show", "show the receive queues: owner, filter, worker, packets, load",
      "vmq-show [SW]",
      "One row per queue. A VM NIC's queues are its VMBus channels: the primary\n"
      "(queue 0, listed even before its guest connects) and each sub-channel the\n"
      "guest has open (nic-set --queues). Uplinks (each receive queue polled) and\n"
      "host vNICs (one queue) are the switch's default queues. FILTER is the NIC's\n"
      "MAC and VLAN as its port is configured; frames reach a queue by software,\n"
      "the receiving worker's FDB lookup and the port's hand-off ring (this host\n"
      "programs no hardware VMQ filter). LCORE is the worker that serves the queue:\n"
      "all queues of a port are served by the port's worker and move with it.\n"
      "RX counts frames from the queue's guest into the switch, TX frames to it\n"
      "(netvsp's per-channel counters; an uplink with several receive queues counts\n"
      "per port, shown as -). LOAD% is the port's share of its worker's time at the\n"
      "last 0.5 s sample, the same on each of its queues: load is measured per port.",
      pos_opt_sw, NULL, NULL, NULL, ctl_print_vmq },
    { "mirror-add", "copy ports' traffic to another port",
      "mirror-add SW --src PORT[,PORT...] --dst PORT", NULL, pos_sw, opts_mirror_add, NULL,
      NULL, ctl_print_generic },
    { "mirror-del", "remove a switch's port mirror", "mirror-del SW", NULL, pos_sw, NULL, NULL,
      NULL, ctl_print_generic },
    { "capture", "write a port's traffic to a pcap file",
      "capture PORT -w FILE [--force] [-c COUNT] [--timeout S]",
      "vswitchd answers when the capture ends (COUNT frames or S seconds).\n"
      "FILE is created new, and no symbolic link in its path is followed; --force\n"
      "replaces only a regular file of vswitchd's user with one name. A capture\n"
      "that is refused (no such port, one already running there) leaves no file.\n"
      "vswitch-ctl waits S seconds plus the global --timeout; without --timeout S\n"
      "it waits without limit unless a global --timeout is given.",
      pos_port, opts_capture, NULL, NULL, ctl_print_capture },
};

#define N_COMMANDS (sizeof commands / sizeof commands[0])

const struct command *ctl_find_command(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}


void ctl_print_main_help(FILE *f)
{
    fprintf(f,
            "usage: vswitch-ctl [--socket PATH] [--json] [--timeout S] COMMAND [ARGS]\n"
            "Manage vswitchd: virtual switches, VMs and their NICs.\n"
            "\n"
            "Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-12s %s\n", "help", "help COMMAND: one command's arguments");
    fprintf(f,
            "\n"
            "Options (before COMMAND):\n"
            "  --socket PATH  vswitchd's control socket (default: $HVNET_SOCKET, else\n"
            "                 " CTL_DEFAULT_SOCKET ")\n"
            "  --json         print the result as JSON (sorted keys) for scripts\n"
            "  --timeout S    wait at most S seconds for vswitchd, 1..%d (default %d)\n"
            "  --help         this text; 'vswitch-ctl COMMAND --help' for one command\n"
            "  --version      print the version\n"
            "\n"
            "Exit status: 0 done, 1 vswitchd refused or could not be reached, 2 usage error.\n",
            CTL_MAX_TIMEOUT_S, CTL_DEFAULT_TIMEOUT_S);
}

#define HELP_WIDTH 79
#define HELP_INDENT 27

/* text, word-wrapped to HELP_WIDTH, every line but the first indented. */
static void print_wrapped(FILE *f, const char *text, int col)
{
    while (*text) {
        size_t word = strcspn(text, " ");

        if (col > HELP_INDENT && col + 1 + (int)word > HELP_WIDTH) {
            fprintf(f, "\n%*s", HELP_INDENT, "");
            col = HELP_INDENT;
        } else if (col > HELP_INDENT) {
            fputc(' ', f);
            col++;
        }
        fwrite(text, 1, word, f);
        col += (int)word;
        text += word;
        text += strspn(text, " ");
    }
    fputc('\n', f);
}

static void print_arg_help(FILE *f, const struct arg_spec *specs)
{
    char left[64];

    for (const struct arg_spec *s = specs; s && s->kind != ARG_END; s++) {
        if (s->name && s->metavar)
            snprintf(left, sizeof left, "%s %s", s->name, s->metavar);
        else
            snprintf(left, sizeof left, "%s", s->name ? s->name : s->metavar);
        if (strlen(left) > HELP_INDENT - 3)
            fprintf(f, "  %s\n%*s", left, HELP_INDENT, "");
        else
            fprintf(f, "  %-*s", HELP_INDENT - 2, left);
        print_wrapped(f, s->help, HELP_INDENT);
    }
}

void ctl_print_command_help(FILE *f, const struct command *cmd)
{
    fprintf(f, "usage: vswitch-ctl %s\n\n%c%s.\n", cmd->usage,
            cmd->summary[0] >= 'a' && cmd->summary[0] <= 'z' ? cmd->summary[0] - 'a' + 'A'
                                                             : cmd->summary[0],
            cmd->summary + 1);
    if (cmd->description)
        fprintf(f, "%s\n", cmd->description);
    if (cmd->pos[0].kind != ARG_END || cmd->opts || cmd->more_opts) {
        fputc('\n', f);
        print_arg_help(f, cmd->pos);
        print_arg_help(f, cmd->opts);
        print_arg_help(f, cmd->more_opts);
    }
    fprintf(f, "\nGlobal options go before the command: --socket PATH, --json, --timeout S\n"
               "(see 'vswitch-ctl --help').\n");
}


int ctl_unknown_command(const char *name)
{
    char list[1024], q[CTL_QUOTE_MAX];
    size_t n = 0;

    for (size_t i = 0; i < N_COMMANDS && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", commands[i].name);
    return ctl_usage_error(NULL, "unknown command '%s'; allowed: %s, help", ctl_quote(name, q, sizeof q),
                       list);
}
