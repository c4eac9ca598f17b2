#!/usr/bin/env bash
# VM-to-VM throughput and latency through an hvnet private switch, beside the
# same measurements between two namespaces joined by a Linux bridge, in one
# run on the same machine.
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
ctl() { "$bin/vswitch-ctl" --socket "$sock" "$@"; }
cleanup() {
    local rc=$?
    pkill -f "iperf3 -s -p 52[0-9][0-9] --bind-dev" 2>/dev/null || true
    [ -n "${vsd_pid:-}" ] && kill "$vsd_pid" 2>/dev/null && sleep 1
    for ns in "$vm1" "$vm2" "$ns1" "$ns2"; do ip netns del "$ns" 2>/dev/null || true; done
    ip link del "$br" 2>/dev/null || true
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
printf '%-28s %10s %8s %22s\n' "hvnet private switch (VMs)" ${hv_tcp} "$(echo $hv_ping | tr ' ' /)"
ratio=$(python3 -c "print('%.2f' % (float('${hv_tcp%% *}') / float('${bridge_tcp%% *}')))")
echo "hvnet / bridge TCP throughput: $ratio"
echo
ctl stats bench
