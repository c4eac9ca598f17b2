#!/usr/bin/env bash
# Interoperation with a real peer: an hvnet external switch whose uplink is
# net_memif (hvnet the memif server) connected to an Open vSwitch bridge
# with DPDK (OVS the memif client), the bridge also holding a DPDK
# net_af_packet port on a veth whose far end is a host in a namespace. A
# VM on hvnet and that host ping each other and run iperf3 both ways.
#
# OVS's PMD thread sends on memif TX queue 1 (queue 0 is its main
# thread's): every reply from the host comes to hvnet on memif queue 1,
# which hvnet must configure and poll.
# Skipped where OVS-DPDK is missing or its DPDK does not start.
# Usage: test_ovs_interop.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
command -v iperf3 >/dev/null || hv_skip "needs iperf3"
command -v ethtool >/dev/null || hv_skip "needs ethtool"
[ -x "$HV_OVS_VSWITCHD" ] || hv_skip "needs OVS with DPDK ($HV_OVS_VSWITCHD)"
# OVS first, then hvnet's own cleanup with the test's exit status (set +e:
# a failing status must not end the trap before hv_cleanup has run).
trap 'rc=$?; set +e; hv_ovs_stop; (exit $rc); hv_cleanup' EXIT

ovs_dump() {
    [ -n "${OVS_DIR:-}" ] || return 0
    {
        echo "--- OVS ports (live counters)"
        ovs_appctl dpctl/show -s 2>/dev/null || true
        ovs_appctl dpif-netdev/pmd-rxq-show 2>/dev/null || true
        echo "--- OVS log (tail)"
        tail -15 "$OVS_DIR/ovs-vswitchd.log" 2>/dev/null || true
        echo "--- hvnet uplink"
        vctl stats "$sw:uplink" 2>/dev/null || true
    } >&2
}
fail() { ovs_dump; hv_fail "$@"; }

# The memif server first: DPDK's memif client does not retry.
hv_start
MEMIF="$HV_DIR/memif.sock"
sw="o${HV_TAG: -6}"
# OVS with one PMD thread sends on 2 memif queues (its PMD thread's and its
# main thread's): hvnet's uplink takes exactly that many (queues=2).
vctl switch-add "$sw" --type external --uplink "net_memif_h$HV_TAG,role=server,socket=$MEMIF,queues=2"
hv_vm a "$sw" 10.64.0.10/24 02:00:00:64:00:0a
A=$(hv_vm_name a)

hv_phys_net 10.64.0.1/24

hv_log "OVS-DPDK: bridge with a memif port (client of hvnet) and an af_packet port on $UP"
hv_ovs_start
br="b$HV_TAG"
ovs_vsctl add-br "$br" -- set bridge "$br" datapath_type=netdev
ovs_vsctl add-port "$br" pm -- set Interface pm type=dpdk \
    options:dpdk-devargs="\"net_memif_o$HV_TAG,role=client,socket=$MEMIF\""
ovs_vsctl add-port "$br" pa -- set Interface pa type=dpdk \
    options:dpdk-devargs="\"net_af_packet_o$HV_TAG,iface=$UP\""
for p in pm pa; do
    [ -z "$(ovs_vsctl get Interface $p error 2>/dev/null | tr -d '[]')" ] ||
        fail "OVS refused port $p: $(ovs_vsctl get Interface $p error)"
done

carrier() { vctl --json stats "$sw:uplink" | python3 -c "import json,sys; print(json.load(sys.stdin)['ports'][0]['uplink']['carrier'])"; }
end=$((SECONDS + 10))
while [ "$(carrier)" != True ] && [ $SECONDS -lt $end ]; do
    sleep 0.2
done
[ "$(carrier)" = True ] || fail "the memif link between hvnet and OVS never came up"
q=$(hv_counter "$sw:uplink" "['uplink']['rx_queues']")
oq=$(ovs_appctl dpctl/show | grep -o "pm (dpdk: configured_rx_queues=[0-9]*, [^,]*, configured_tx_queues=[0-9]*" |
    sed 's/.*rx_queues=\([0-9]*\).*tx_queues=\([0-9]*\)/\1 RX, \2 TX/')
echo "hvnet uplink: $q RX queues polled; OVS memif port: ${oq:-?} queues (its PMD thread sends on TX queue 1)"

hv_log "ping: VM -> host behind OVS, host -> VM"
ip netns exec "$A" ping -c 5 -i 0.2 -W 2 10.64.0.1 >"$HV_DIR/ping.a" ||
    fail "the VM cannot ping the host behind OVS: $(tail -2 "$HV_DIR/ping.a")"
ip netns exec "$PHYS" ping -c 5 -i 0.2 -W 2 10.64.0.10 >"$HV_DIR/ping.p" ||
    fail "the host behind OVS cannot ping the VM: $(tail -2 "$HV_DIR/ping.p")"
echo "VM -> host: $(tail -1 "$HV_DIR/ping.a")"
echo "host -> VM: $(tail -1 "$HV_DIR/ping.p")"

hv_log "iperf3 2 s each way"
gbps() { python3 -c "import json,sys; print('%.3f' % (json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e9))"; }
ip netns exec "$PHYS" iperf3 -s -1 -p 5364 >/dev/null 2>&1 &
HV_PIDS+=($!)
sleep 0.5
v2h=$(ip netns exec "$A" timeout 30 iperf3 -c 10.64.0.1 -p 5364 -t 2 -J | gbps) ||
    fail "iperf3 VM -> host failed"
ip netns exec "$A" iperf3 -s -1 -p 5365 >/dev/null 2>&1 &
HV_PIDS+=($!)
sleep 0.5
h2v=$(ip netns exec "$PHYS" timeout 30 iperf3 -c 10.64.0.10 -p 5365 -t 2 -J | gbps) ||
    fail "iperf3 host -> VM failed"
echo "iperf3 VM -> host behind OVS $v2h Gbit/s, host -> VM $h2v Gbit/s"
python3 -c "import sys; sys.exit(0 if float('$v2h') > 0 and float('$h2v') > 0 else 1)" ||
    fail "iperf3 moved nothing ($v2h, $h2v Gbit/s)"

# Live counters (the database's are refreshed every 5 s).
ovs_appctl dpctl/show -s | awk '/port [0-9]+: pm /{f=1} f && /TX packets/ {print "OVS memif port:" $0; exit}'
vctl stats "$sw:uplink"
hv_pass "hvnet <-> OVS-DPDK over memif"
