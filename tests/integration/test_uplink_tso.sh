#!/usr/bin/env bash
# Large TCP segments to an uplink whose PMD segments them: an external
# switch on net_tap (DPDK 22.11's net_tap offers TCP TSO and cuts TCP/IPv4
# itself), a VM sending iperf3 TCP to an address on the TAP's kernel side.
# The switch hands net_tap the VM's large segments whole, so the uplink
# sends fewer frames than the kernel TAP receives, iperf3 moves data, and
# the kernel counts no TCP checksum errors. The MSS is set so that a
# segment's frame fits net_tap's check (headers + MSS <= its ethdev MTU,
# see vswitch/src/port-uplink-tso.c): at the full MSS of MTU 1500 the
# switch cuts instead, which the second run shows.
# Usage: test_uplink_tso.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
for t in iperf3 nstat; do
    command -v "$t" >/dev/null || hv_skip "needs $t"
done
[ -c /dev/net/tun ] || hv_skip "needs /dev/net/tun (net_tap)"
hv_start

TAP="tt$HV_TAG"
sw="e${HV_TAG: -6}"
HV_BRIDGES+=("$TAP")
if ! vctl switch-add "$sw" --type external --uplink "net_tap_$HV_TAG,iface=$TAP" 2>"$HV_DIR/add.err"; then
    hv_skip "net_tap cannot start here: $(cat "$HV_DIR/add.err"; tail -3 "$HV_LOG")"
fi
up_json() { vctl --json stats "$sw:uplink" | python3 -c "import json,sys; p=json.load(sys.stdin)['ports'][0]; print($1)"; }
[ "$(up_json "p['uplink']['driver']")" = net_tap ] || hv_fail "the uplink is not net_tap"

# The kernel side of the TAP, in the root namespace (net_tap drives it by
# name there): an address in a subnet of this test's own.
oct=$(( ($$ % 200) + 20 ))
HOST_IP="10.211.$oct.1"
sysctl -qw "net.ipv6.conf.$TAP.disable_ipv6=1" || true
ip addr add "$HOST_IP/24" dev "$TAP"
ip link set "$TAP" up
hv_vm a "$sw" "10.211.$oct.2/24" 02:00:00:71:00:01
A=$(hv_vm_name a)
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 "$HOST_IP" >/dev/null || hv_fail "the VM cannot ping the TAP's kernel side"

PORT=$(( 5400 + ($$ % 500) ))
# run MSS SECONDS: iperf3 VM -> TAP host; prints "Gbit/s uplink_tx tap_rx tx_tso csum_errors"
run() {
    local mss=$1 secs=$2 tx0 rx0 tso0 out gbps tx1 rx1 tso1 csum
    ip netns exec "$A" ip neigh flush dev eth0 2>/dev/null || true
    tx0=$(up_json "p['tx_packets']")
    tso0=$(up_json "p['uplink']['tx_tso']")
    rx0=$(cat "/sys/class/net/$TAP/statistics/rx_packets")
    nstat -n >/dev/null 2>&1 || true
    iperf3 -s -1 -B "$HOST_IP" -p "$PORT" >/dev/null 2>&1 &
    local srv=$!
    HV_PIDS+=("$srv")
    sleep 0.5
    out=$(ip netns exec "$A" timeout 30 iperf3 -c "$HOST_IP" -p "$PORT" -t "$secs" -M "$mss" -J) ||
        hv_fail "iperf3 (MSS $mss) failed: $(echo "$out" | tail -5)"
    wait "$srv" 2>/dev/null || true
    gbps=$(echo "$out" | python3 -c "import json,sys; print('%.2f' % (json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e9))")
    csum=$(nstat -a 2>/dev/null | awk '$1 == "TcpInCsumErrors" {print $2}')
    tx1=$(up_json "p['tx_packets']")
    tso1=$(up_json "p['uplink']['tx_tso']")
    rx1=$(cat "/sys/class/net/$TAP/statistics/rx_packets")
    echo "$gbps $((tx1 - tx0)) $((rx1 - rx0)) $((tso1 - tso0)) ${csum:-0}"
}
# nstat -a after -n: counts since -n (its history file is per user and
# per namespace; a private one here).
export NSTAT_HISTORY="$HV_DIR/nstat.hist"

hv_log "iperf3 VM -> TAP host, MSS 1400: large segments go to net_tap whole"
read -r gbps tx rx tso csum < <(run 1400 3)
echo "MSS 1400: $gbps Gbit/s; uplink sent $tx frames ($tso large segments whole), the TAP received $rx; TcpInCsumErrors $csum"
vctl --json stats "$sw:uplink"
python3 -c "import sys; sys.exit(0 if float('$gbps') > 0 else 1)" || hv_fail "iperf3 moved no data"
[ "$tso" -gt 0 ] || hv_fail "no large segment went to net_tap whole (tx_tso 0)"
[ "$tx" -lt "$rx" ] || hv_fail "the uplink sent $tx frames, the TAP received $rx: the switch cut the segments"
[ "$csum" -eq 0 ] || hv_fail "$csum TCP checksum errors on the TAP's host"
tso_first=$tso
segs=$(up_json "p['uplink']['tx_tso_segments']")
[ "$segs" -gt "$tso" ] || hv_fail "tx_tso_segments $segs not above tx_tso $tso"

hv_log "iperf3 at the full MSS: net_tap refuses 1514-byte segments at MTU 1500, the switch cuts"
read -r gbps tx rx tso csum < <(run 1448 2)
echo "MSS 1448: $gbps Gbit/s; uplink sent $tx frames ($tso whole), the TAP received $rx; TcpInCsumErrors $csum"
python3 -c "import sys; sys.exit(0 if float('$gbps') > 0 else 1)" || hv_fail "iperf3 at full MSS moved no data"
[ "$tso" -eq 0 ] || hv_fail "$tso large segments beyond net_tap's limit went to it whole"
[ "$csum" -eq 0 ] || hv_fail "$csum TCP checksum errors at full MSS"
# Frames to the uplink lost on the way (frames from the TAP host that had
# no destination are counted there too, and do not matter here).
drops=$(up_json "sum(p['drops'][k] for k in ('too_big', 'offload', 'no_mbuf', 'port_specific', 'queue_full'))")
[ "$drops" -eq 0 ] || hv_fail "$drops frames to the uplink dropped: $(vctl --json stats "$sw:uplink")"

hv_pass "net_tap uplink took large TCP segments whole ($tso_first whole) and cut nothing itself"
