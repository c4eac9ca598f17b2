# Shared helpers for hvnet's integration tests (bash).
#
# Each test gets a unique tag: its vswitchd socket, state file, DPDK file
# prefix, VM and namespace names all carry it, and an EXIT trap removes them
# whether the test passed or not. Exit 77 means "skipped" to ctest.
#
# Usage: source lib.sh; hv_init BUILD_BIN_DIR; hv_start; ...; hv_pass
set -euo pipefail

hv_skip() { echo "SKIP: $*"; exit 77; }
hv_fail() { echo "FAIL: $*" >&2; hv_dump; exit 1; }
hv_log() { echo "--- $*"; }

hv_init() {
    HV_BIN=$(cd "$1" && pwd)
    [ "$(id -u)" -eq 0 ] || hv_skip "needs root (namespaces, TAP devices, hugepages)"
    for t in ip ping python3; do
        command -v "$t" >/dev/null || hv_skip "needs $t"
    done
    [ -x "$HV_BIN/vswitchd" ] && [ -x "$HV_BIN/vswitch-ctl" ] && [ -x "$HV_BIN/hv-vm" ] ||
        hv_fail "vswitchd, vswitch-ctl or hv-vm missing in $HV_BIN"
    # Short, unique: namespace and interface names have length limits.
    HV_TAG="t$(printf '%x' $$)$(printf '%x' $((RANDOM % 256)))"
    HV_DIR=$(mktemp -d "/tmp/hvnet-$HV_TAG.XXXXXX")
    HV_SOCK="$HV_DIR/vswitchd.sock"
    HV_STATE="$HV_DIR/state.json"
    HV_LOG="$HV_DIR/vswitchd.log"
    HV_NS=()
    HV_PIDS=()
    export HVNET_SOCKET="$HV_SOCK"
    trap hv_cleanup EXIT
}

# DPDK arguments: our own file prefix; hugepages if enough are free, else
# --no-huge (the machine may not have them, or other tests hold them).
hv_eal_args() {
    local free=0
    free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
    local mem="--no-huge -m 768"
    [ "$free" -ge 400 ] && mem="-m 512 --huge-unlink"
    # HV_LCORES: another lcore set (e.g. more workers mapped onto the CPUs).
    echo "${HV_LCORES:--l 0,1} --no-pci --file-prefix hv$HV_TAG --log-level *:warning $mem"
}

# hv_start [VSWITCHD-OPTIONS...]
hv_start() {
    # shellcheck disable=SC2046
    "$HV_BIN/vswitchd" "$@" --socket "$HV_SOCK" --state "$HV_STATE" --log "$HV_LOG" --detach \
        -- $(hv_eal_args) || hv_fail "vswitchd did not start (log: $(tail -3 "$HV_LOG"))"
    HV_VSD_PID=$(pgrep -f -- "--socket $HV_SOCK" | head -1)
    [ -n "$HV_VSD_PID" ] || hv_fail "vswitchd not running"
}

hv_stop() {
    if [ -n "${HV_VSD_PID:-}" ] && kill -0 "$HV_VSD_PID" 2>/dev/null; then
        kill -TERM "$HV_VSD_PID"
        for _ in $(seq 50); do
            kill -0 "$HV_VSD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$HV_VSD_PID" 2>/dev/null || true
    fi
    HV_VSD_PID=
}

vctl() { "$HV_BIN/vswitch-ctl" --socket "$HV_SOCK" "$@"; }

# hv_vm NAME SWITCH IP MAC: a VM with one NIC eth0, started, addressed.
hv_vm_name() { echo "$HV_TAG$1"; }
hv_vm() {
    local vm ns
    vm=$(hv_vm_name "$1")
    ns=$vm
    HV_NS+=("$ns")
    vctl vm-add "$vm" >/dev/null
    vctl nic-add "$vm" eth0 --switch "$2" --mac "$4" >/dev/null
    vctl vm-start "$vm" >/dev/null
    hv_wait_link "$ns" eth0
    hv_quiet_ns "$ns"
    ip netns exec "$ns" ip addr add "$3" dev eth0
}

# hv_phys_net ADDR/LEN: "the physical network": a namespace $PHYS with a
# host at ADDR on $PEER, the far end of a veth whose near end $UP (in the
# root namespace) an external switch's uplink can take.
hv_phys_net() {
    PHYS="${HV_TAG}p" UP="hu$HV_TAG" PEER="hp$HV_TAG"
    HV_NS+=("$PHYS")
    HV_BRIDGES+=("$UP")
    ip netns add "$PHYS"
    ip link add "$UP" type veth peer name "$PEER"
    ip link set "$PEER" netns "$PHYS"
    sysctl -qw "net.ipv6.conf.$UP.disable_ipv6=1"
    ip link set "$UP" up
    ip -n "$PHYS" link set lo up
    ip -n "$PHYS" addr add "$1" dev "$PEER"
    ip -n "$PHYS" link set "$PEER" up
    # A real NIC hands frames over with their checksums done; a veth leaves
    # them to "the hardware", and net_af_packet cannot tell (docs/platform.md §2.1).
    ip netns exec "$PHYS" ethtool -K "$PEER" tx off >/dev/null
    hv_quiet_ns "$PHYS"
    ip netns exec "$PHYS" sysctl -qw "net.ipv6.conf.$PEER.disable_ipv6=1"
}

# No IPv6 or other chatter: counters then count exactly what a test sends.
hv_quiet_ns() {
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
    ip netns exec "$1" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1 2>/dev/null || true
}

# Wait until the NIC exists in the namespace and is up with carrier.
hv_wait_link() {
    for _ in $(seq 100); do
        if ip netns exec "$1" cat "/sys/class/net/$2/carrier" 2>/dev/null | grep -q 1; then
            return 0
        fi
        sleep 0.1
    done
    hv_fail "NIC $2 in namespace $1 never came up"
}

# Port counter from vswitch-ctl stats --json: hv_counter VM/NIC field
hv_counter() {
    vctl --json stats "$1" | python3 -c "import json,sys; p=json.load(sys.stdin)['ports'][0]; print(p$2)"
}

hv_dump() {
    [ -n "${HV_LOG:-}" ] && [ -f "$HV_LOG" ] && { echo "--- vswitchd log (tail)"; tail -20 "$HV_LOG"; } >&2
    return 0
}

hv_cleanup() {
    local rc=$?
    for p in "${HV_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    hv_stop
    for ns in "${HV_NS[@]}"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    for br in "${HV_BRIDGES[@]:-}"; do [ -n "$br" ] && ip link del "$br" 2>/dev/null || true; done
    rm -rf "$HV_DIR" "/var/run/dpdk/hv$HV_TAG" 2>/dev/null || true
    # Hugepage files a killed vswitchd left behind.
    local mnt
    for mnt in $(awk '$3 == "hugetlbfs" {print $2}' /proc/mounts 2>/dev/null); do
        rm -f "$mnt/hv${HV_TAG}map_"* 2>/dev/null || true
    done
    exit $rc
}

hv_pass() { echo "PASS: $*"; }

# Open vSwitch with DPDK as a peer (../shared/reference/ovs-dpdk-on-this-machine.md):
# its own database, run directory and DPDK file prefix under $HV_DIR/ovs,
# 256 MB of hugepages, one PMD thread on CPU 1. Skips (exit 77) where OVS-DPDK is
# not installed or its DPDK does not start. Stop it with hv_ovs_stop (the
# test's EXIT trap must call it, with set +e, before hv_cleanup).
HV_OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
hv_ovs_start() {
    local t
    [ -x "$HV_OVS_VSWITCHD" ] || hv_skip "needs OVS with DPDK ($HV_OVS_VSWITCHD, openvswitch-switch-dpdk)"
    for t in ovsdb-tool ovsdb-server ovs-vsctl ovs-appctl ovs-ofctl; do
        command -v "$t" >/dev/null || hv_skip "needs $t (openvswitch-switch)"
    done
    OVS_DIR="$HV_DIR/ovs"
    mkdir -p "$OVS_DIR"
    ovsdb-tool create "$OVS_DIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    OVS_RUNDIR=$OVS_DIR OVS_LOGDIR=$OVS_DIR OVS_DBDIR=$OVS_DIR \
        ovsdb-server "$OVS_DIR/conf.db" --remote="punix:$OVS_DIR/db.sock" \
        --pidfile="$OVS_DIR/ovsdb-server.pid" --unixctl="$OVS_DIR/ovsdb-server.ctl" \
        --log-file="$OVS_DIR/ovsdb-server.log" -vconsole:off --detach || hv_fail "ovsdb-server did not start"
    ovs_vsctl --no-wait init
    # OVS runs EAL --in-memory, which --no-huge (legacy memory) contradicts:
    # it needs hugepages. 256 MB hold its shared mbuf pool at MTU 1500.
    local free
    free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
    [ "$free" -ge 128 ] || hv_skip "OVS-DPDK needs 256 MB of free 2 MB hugepages ($free pages free)"
    ovs_vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true \
        other_config:dpdk-socket-mem=256 other_config:dpdk-socket-limit=256 \
        other_config:dpdk-lcore-mask=0x1 other_config:pmd-cpu-mask=0x2 \
        other_config:dpdk-extra="\"--file-prefix=ovs$HV_TAG --no-pci\""
    OVS_RUNDIR=$OVS_DIR OVS_LOGDIR=$OVS_DIR OVS_DBDIR=$OVS_DIR \
        "$HV_OVS_VSWITCHD" "unix:$OVS_DIR/db.sock" --pidfile="$OVS_DIR/ovs-vswitchd.pid" \
        --unixctl="$OVS_DIR/ovs-vswitchd.ctl" --log-file="$OVS_DIR/ovs-vswitchd.log" -vconsole:off --detach ||
        hv_skip "ovs-vswitchd (DPDK) did not start: $(tail -3 "$OVS_DIR/ovs-vswitchd.log" 2>/dev/null)"
    for _ in $(seq 100); do
        [ "$(ovs_vsctl get Open_vSwitch . dpdk_initialized 2>/dev/null)" = true ] && return 0
        sleep 0.1
    done
    hv_skip "OVS's DPDK did not initialise: $(grep -i 'dpdk\|eal' "$OVS_DIR/ovs-vswitchd.log" | tail -3)"
}
ovs_vsctl() { ovs-vsctl --db="unix:$OVS_DIR/db.sock" --timeout=20 "$@"; }
ovs_appctl() { ovs-appctl -t "$OVS_DIR/ovs-vswitchd.ctl" "$@"; }
hv_ovs_stop() {
    [ -n "${OVS_DIR:-}" ] || return 0
    local f pid
    for f in ovs-vswitchd ovsdb-server; do
        pid=$(cat "$OVS_DIR/$f.pid" 2>/dev/null) || continue
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "/var/run/dpdk/ovs$HV_TAG" 2>/dev/null || true
}
