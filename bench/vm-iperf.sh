#!/usr/bin/env bash
# VM-to-VM throughput and latency through an hvnet private switch, beside the
# same measurements between two namespaces joined by a Linux bridge and by
# Open vSwitch's userspace datapath (each namespace on an OVS internal port,
# a TAP the switch process drives, as hvnet's VMs are), in one run on the
# same machine.
#
#   bench/vm-iperf.sh [--bin BUILD_BIN_DIR] [--seconds N] [--runs N] [--mtu N]
#                     [--parallel N]
#
# For each setup: ping RTT (100 pings, 10 ms apart; min/avg/max) and iperf3
# TCP (one stream unless --parallel) for --seconds, --runs times; the median
# Gbit/s is reported with the retransmits of that run. The bridge runs with
# the kernel's default offloads on its veths (what an operator gets);
# hvnet's VMs use what hvnet negotiates with them.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/build/bin"
secs=10 runs=3 mtu=1500 par=1
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin=$(cd "$2" && pwd); shift ;;
    --seconds) secs="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --mtu) mtu="$2"; shift ;;
    --parallel) par="$2"; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "vm-iperf: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" -eq 0 ] || { echo "vm-iperf: run as root" >&2; exit 1; }

tag="bi$$"
dir=$(mktemp -d "/tmp/hvnet-$tag.XXXXXX")
sock="$dir/vswitchd.sock"
vm1="${tag}v1" vm2="${tag}v2" br="${tag}br" ns1="${tag}n1" ns2="${tag}n2"
on1="${tag}o1" on2="${tag}o2" obr="${tag}ob"
ovs_dir="$dir/ovs"
ovsctl() { ovs-vsctl --db="unix:$ovs_dir/db.sock" "$@"; }
ctl() { "$bin/vswitch-ctl" --socket "$sock" "$@"; }
cleanup() {
    local rc=$?
    pkill -f "iperf3 -s -p 52[0-9][0-9] --bind-dev" 2>/dev/null || true
    [ -n "${vsd_pid:-}" ] && kill "$vsd_pid" 2>/dev/null && sleep 1
    for f in "$ovs_dir/vs.pid" "$ovs_dir/db.pid"; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
    done
    for ns in "$vm1" "$vm2" "$ns1" "$ns2" "$on1" "$on2"; do ip netns del "$ns" 2>/dev/null || true; done
    ip link del "$br" 2>/dev/null || true
    ip link del "$obr" 2>/dev/null || true
    rm -rf "$dir"
    exit $rc
}
trap cleanup EXIT

# ping_stats NS DST -> "min avg max"
ping_stats() {
    ip netns exec "$1" ping -q -c 100 -i 0.01 -s 56 "$2" |
        awk -F'[/ ]' '/rtt/ {print $7, $8, $9}'
}

# iperf_median NS_SERVER NS_CLIENT DST PORT -> "gbps retransmits"
iperf_median() {
    local results=()
    for _ in $(seq "$runs"); do
        ip netns exec "$1" iperf3 -s -1 -p "$4" >/dev/null 2>&1 &
        sleep 0.3
        results+=("$(ip netns exec "$2" iperf3 -c "$3" -p "$4" -t "$secs" -P "$par" -J |
            python3 -c "import json,sys; e=json.load(sys.stdin)['end']; print('%.2f %d' % (e['sum_received']['bits_per_second']/1e9, e['sum_sent'].get('retransmits',0)))")")
        wait || true
    done
    printf '%s\n' "${results[@]}" | sort -n | awk -v n="$runs" 'NR==int((n+1)/2)'
}

echo "# bench/vm-iperf.sh --seconds $secs --runs $runs --mtu $mtu --parallel $par"
echo "# $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

# --- Linux bridge between two namespaces -----------------------------------
ip link add "$br" type bridge
ip link set "$br" mtu "$mtu" up
for i in 1 2; do
    ns="${tag}n$i"
    ip netns add "$ns"
    ip link add "${tag}h$i" mtu "$mtu" type veth peer name eth0 netns "$ns"
    ip link set "${tag}h$i" master "$br" up
    ip netns exec "$ns" ip link set lo up
    ip netns exec "$ns" ip link set eth0 mtu "$mtu" up
    ip netns exec "$ns" ip addr add "10.201.0.$i/24" dev eth0
done
sleep 1
bridge_ping=$(ping_stats "$ns1" 10.201.0.2)
bridge_tcp=$(iperf_median "$ns2" "$ns1" 10.201.0.2 5291)

# --- Open vSwitch, userspace (netdev) datapath ------------------------------
ovs_tcp="n/a 0" ovs_ping="n/a n/a n/a"
if command -v ovs-vswitchd >/dev/null && command -v ovsdb-server >/dev/null; then
    mkdir -p "$ovs_dir"
    export OVS_RUNDIR="$ovs_dir" OVS_LOGDIR="$ovs_dir" OVS_DBDIR="$ovs_dir"
    ovsdb-tool create "$ovs_dir/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server "$ovs_dir/conf.db" --remote="punix:$ovs_dir/db.sock" --pidfile="$ovs_dir/db.pid" \
        --unixctl="$ovs_dir/db.ctl" --log-file="$ovs_dir/db.log" --detach
    ovsctl --no-wait init
    ovs-vswitchd "unix:$ovs_dir/db.sock" --pidfile="$ovs_dir/vs.pid" --unixctl="$ovs_dir/vs.ctl" \
        --log-file="$ovs_dir/vs.log" --detach
    ovsctl add-br "$obr" -- set bridge "$obr" datapath_type=netdev
    for i in 1 2; do
        p="${tag}p$i" ns="${tag}o$i"
        ovsctl add-port "$obr" "$p" -- set interface "$p" type=internal mtu_request="$mtu"
        ip netns add "$ns"
        for _ in $(seq 50); do ip link show "$p" >/dev/null 2>&1 && break; sleep 0.1; done
        ip link set "$p" netns "$ns"
        ip netns exec "$ns" ip link set lo up
        ip netns exec "$ns" ip link set "$p" mtu "$mtu" up
        ip netns exec "$ns" ip addr add "10.203.0.$i/24" dev "$p"
    done
    ip link set "$obr" up
    sleep 1
    ovs_ping=$(ping_stats "$on1" 10.203.0.2)
    ovs_tcp=$(iperf_median "$on2" "$on1" 10.203.0.2 5293)
    ovs_ver=$(ovs-vswitchd --version | head -1)
    kill "$(cat "$ovs_dir/vs.pid")" "$(cat "$ovs_dir/db.pid")" 2>/dev/null || true
    sleep 0.5
fi

# --- hvnet private switch, two VMs ------------------------------------------
free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
mem="--no-huge -m 768"
[ "$free" -ge 400 ] && mem="-m 512 --huge-unlink"
# shellcheck disable=SC2086
"$bin/vswitchd" --socket "$sock" --state "$dir/state.json" --log "$dir/vswitchd.log" --detach \
    -- -l 0,1 --no-pci --file-prefix "$tag" --log-level '*:warning' $mem
vsd_pid=$(pgrep -f -- "--socket $sock" | head -1)
ctl switch-add bench --type private --mtu "$mtu"
for v in "$vm1" "$vm2"; do
    ctl vm-add "$v"
    ctl nic-add "$v" eth0 --switch bench --mtu "$mtu" >/dev/null
    ctl vm-start "$v" >/dev/null
done
for i in 1 2; do
    v="${tag}v$i"
    for _ in $(seq 100); do
        ip netns exec "$v" cat /sys/class/net/eth0/carrier 2>/dev/null | grep -q 1 && break
        sleep 0.1
    done
    ip netns exec "$v" ip addr add "10.202.0.$i/24" dev eth0
done
sleep 1
hv_ping=$(ping_stats "$vm1" 10.202.0.2)
hv_tcp=$(iperf_median "$vm2" "$vm1" 10.202.0.2 5292)

echo
printf '%-28s %10s %8s %22s\n' "setup" "TCP Gbit/s" "retrans" "ping RTT min/avg/max ms"
printf '%-28s %10s %8s %22s\n' "Linux bridge + veth" ${bridge_tcp} "$(echo $bridge_ping | tr ' ' /)"
printf '%-28s %10s %8s %22s\n' "Open vSwitch userspace" ${ovs_tcp} "$(echo $ovs_ping | tr ' ' /)"
printf '%-28s %10s %8s %22s\n' "hvnet private switch (VMs)" ${hv_tcp} "$(echo $hv_ping | tr ' ' /)"
ratio=$(python3 -c "print('%.2f' % (float('${hv_tcp%% *}') / float('${bridge_tcp%% *}')))")
echo "hvnet / bridge TCP throughput: $ratio"
[ -n "${ovs_ver:-}" ] && echo "Open vSwitch: $ovs_ver, datapath_type=netdev, internal (TAP) ports"
[ -n "${ovs_ver:-}" ] && python3 -c "print('hvnet / Open vSwitch TCP throughput: %.2f' % (float('${hv_tcp%% *}') / float('${ovs_tcp%% *}')))"
echo
ctl stats bench
