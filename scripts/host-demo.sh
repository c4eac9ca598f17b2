#!/usr/bin/env bash
# The hvnet host, end to end: vswitchd with an internal switch and two VMs,
# each VM a child partition (hv-vm) whose synthetic NIC appears in its own
# network namespace. The VMs ping each other and run a short iperf3 through
# the switch, the host reaches them through its vNIC; then the switch's
# statistics and FDB are shown, and everything is removed again.
#
# Usage: scripts/host-demo.sh [BUILD_BIN_DIR] [--seconds N]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/build/bin"
secs=5
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) secs="$2"; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) bin=$(cd "$1" && pwd) ;;
    esac
    shift
done
[ "$(id -u)" -eq 0 ] || { echo "host-demo: run as root (namespaces, TAP, hugepages)" >&2; exit 1; }

tag="demo$$"
dir=$(mktemp -d "/tmp/hvnet-$tag.XXXXXX")
sock="$dir/vswitchd.sock"
vm1="${tag}a" vm2="${tag}b"
ctl() { "$bin/vswitch-ctl" --socket "$sock" "$@"; }
cleanup() {
    local rc=$?
    [ -n "${iperf_pid:-}" ] && kill "$iperf_pid" 2>/dev/null
    if [ -S "$sock" ]; then
        ctl vm-stop "$vm1" >/dev/null 2>&1 || true
        ctl vm-stop "$vm2" >/dev/null 2>&1 || true
        ctl vm-del "$vm1" >/dev/null 2>&1 || true
        ctl vm-del "$vm2" >/dev/null 2>&1 || true
    fi
    [ -n "${vsd_pid:-}" ] && kill "$vsd_pid" 2>/dev/null && sleep 1
    ip netns del "$vm1" 2>/dev/null || true
    ip netns del "$vm2" 2>/dev/null || true
    rm -rf "$dir" "/var/run/dpdk/$tag"
    exit $rc
}
trap cleanup EXIT

free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
mem="--no-huge -m 768"
[ "$free" -ge 400 ] && mem="-m 512 --huge-unlink"
echo "== starting vswitchd (DPDK: ${mem})"
# shellcheck disable=SC2086
"$bin/vswitchd" --socket "$sock" --state "$dir/state.json" --log "$dir/vswitchd.log" --detach \
    -- -l 0,1 --no-pci --file-prefix "$tag" --log-level '*:warning' $mem
vsd_pid=$(pgrep -f -- "--socket $sock" | head -1)

sw="$tag"
echo "== an internal switch ($sw, host vNIC vs-$sw) and two VMs"
ctl switch-add "$sw" --type internal
ctl vm-add "$vm1"
ctl vm-add "$vm2"
mac1=$(ctl nic-add "$vm1" eth0 --switch "$sw")
mac2=$(ctl nic-add "$vm2" eth0 --switch "$sw")
ctl vm-start "$vm1"
ctl vm-start "$vm2"
for ns in "$vm1" "$vm2"; do
    for _ in $(seq 100); do
        ip netns exec "$ns" cat /sys/class/net/eth0/carrier 2>/dev/null | grep -q 1 && break
        sleep 0.1
    done
done
ip netns exec "$vm1" ip addr add 10.200.0.1/24 dev eth0
ip netns exec "$vm2" ip addr add 10.200.0.2/24 dev eth0
ip addr add 10.200.0.254/24 dev "vs-$sw"
ctl vm-list
echo
echo "inside VM $vm1 (namespace $vm1):"
ip netns exec "$vm1" ip -br addr show eth0
echo "inside VM $vm2 (namespace $vm2):"
ip netns exec "$vm2" ip -br addr show eth0

echo
echo "== ping $vm1 -> $vm2"
ip netns exec "$vm1" ping -c 5 -i 0.2 10.200.0.2 | tail -2
echo "== ping $vm2 -> $vm1"
ip netns exec "$vm2" ping -c 5 -i 0.2 10.200.0.1 | tail -2
echo "== ping host (vs-$sw) -> $vm1"
ping -c 5 -i 0.2 10.200.0.1 | tail -2

echo
echo "== iperf3 TCP $vm1 -> $vm2, ${secs} s"
ip netns exec "$vm2" iperf3 -s -1 >/dev/null 2>&1 &
iperf_pid=$!
sleep 0.5
ip netns exec "$vm1" iperf3 -c 10.200.0.2 -t "$secs" -f g | grep -E "sender|receiver"
iperf_pid=

echo
echo "== vswitch-ctl fdb-show $sw   (MACs: $vm1 $mac1, $vm2 $mac2)"
ctl fdb-show "$sw"
echo
echo "== vswitch-ctl stats $sw"
ctl stats "$sw"
echo
echo "== cleaning up"
