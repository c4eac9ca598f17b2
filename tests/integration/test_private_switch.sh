#!/usr/bin/env bash
# Two VMs on a private switch reach each other (ping both ways, iperf3 TCP);
# a VM on a second private switch cannot reach them; fdb-show lists the
# learned MACs on the right ports; the port counters match exactly what was
# sent; a NIC moved to another switch live sees its link bounce and then
# reaches its new neighbours. Usage: test_private_switch.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
command -v iperf3 >/dev/null || hv_skip "needs iperf3"
hv_start

vctl switch-add sw1 --type private
vctl switch-add sw2 --type private
hv_vm a sw1 10.77.0.1/24 02:00:00:77:00:01
hv_vm b sw1 10.77.0.2/24 02:00:00:77:00:02
hv_vm c sw2 10.77.0.3/24 02:00:00:77:00:03
A=$(hv_vm_name a) B=$(hv_vm_name b) C=$(hv_vm_name c)

hv_log "ping both ways"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 10.77.0.2 >/dev/null || hv_fail "A cannot ping B"
ip netns exec "$B" ping -c 3 -i 0.2 -W 2 10.77.0.1 >/dev/null || hv_fail "B cannot ping A"

hv_log "fdb-show"
fdb=$(vctl fdb-show sw1)
echo "$fdb"
echo "$fdb" | grep -q "$A/eth0.*02:00:00:77:00:01" || hv_fail "A's MAC not learned on A's port"
echo "$fdb" | grep -q "$B/eth0.*02:00:00:77:00:02" || hv_fail "B's MAC not learned on B's port"
vctl fdb-show sw2 | grep -q "02:00:00:77:00:0[12]" && hv_fail "sw2 learned a MAC from sw1"

hv_log "isolation: C (switch sw2) cannot reach A or B"
ip netns exec "$C" ping -c 2 -i 0.2 -W 1 10.77.0.1 >/dev/null 2>&1 && hv_fail "C reached A across switches"
ip netns exec "$C" ping -c 2 -i 0.2 -W 1 10.77.0.2 >/dev/null 2>&1 && hv_fail "C reached B across switches"

hv_log "counters match what was sent"
# Static neighbours: the pings are then the only frames on the wire.
ip netns exec "$A" ip neigh replace 10.77.0.2 lladdr 02:00:00:77:00:02 dev eth0 nud permanent
ip netns exec "$B" ip neigh replace 10.77.0.1 lladdr 02:00:00:77:00:01 dev eth0 nud permanent
sleep 0.5
a_rx0=$(hv_counter "$A/eth0" "['rx_packets']") b_tx0=$(hv_counter "$B/eth0" "['tx_packets']")
b_rx0=$(hv_counter "$B/eth0" "['rx_packets']") a_tx0=$(hv_counter "$A/eth0" "['tx_packets']")
ip netns exec "$A" ping -c 25 -i 0.01 -W 2 10.77.0.2 >/dev/null || hv_fail "ping burst failed"
a_rx=$(( $(hv_counter "$A/eth0" "['rx_packets']") - a_rx0 ))
b_tx=$(( $(hv_counter "$B/eth0" "['tx_packets']") - b_tx0 ))
b_rx=$(( $(hv_counter "$B/eth0" "['rx_packets']") - b_rx0 ))
a_tx=$(( $(hv_counter "$A/eth0" "['tx_packets']") - a_tx0 ))
echo "A sent $a_rx into the switch, B got $b_tx; B sent $b_rx, A got $a_tx"
[ "$a_rx" -eq 25 ] && [ "$b_tx" -eq 25 ] && [ "$b_rx" -eq 25 ] && [ "$a_tx" -eq 25 ] ||
    hv_fail "counters do not match 25 requests and 25 replies"

hv_log "iperf3 TCP, 3 s"
ip netns exec "$B" iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
HV_PIDS+=($!)
sleep 0.5
out=$(ip netns exec "$A" timeout 30 iperf3 -c 10.77.0.2 -p 5201 -t 3 -J) || hv_fail "iperf3 failed"
gbps=$(echo "$out" | python3 -c "import json,sys; print('%.2f' % (json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e9))")
echo "iperf3 A->B: $gbps Gbit/s"
python3 -c "import sys; sys.exit(0 if float('$gbps') > 0 else 1)" || hv_fail "iperf3 moved nothing"

hv_log "live move: C to sw1; its guest sees the cable pulled and plugged back"
# The kernel counts every carrier change of the guest's interface (a
# monitor started just before could miss a quick bounce on a loaded host).
changes0=$(ip netns exec "$C" cat /sys/class/net/eth0/carrier_changes)
vctl nic-set "$C" eth0 --switch sw1
ip netns exec "$C" ping -c 3 -i 0.2 -W 2 10.77.0.1 >/dev/null || hv_fail "C cannot reach A after moving to sw1"
changes=$(( $(ip netns exec "$C" cat /sys/class/net/eth0/carrier_changes) - changes0 ))
[ "$changes" -ge 2 ] || hv_fail "C's NIC did not lose and regain carrier during the move ($changes changes)"
vctl fdb-show sw1 | grep -q "$C/eth0.*02:00:00:77:00:03" || hv_fail "C not learned on sw1"

vctl stats sw1
hv_pass "private switch"
