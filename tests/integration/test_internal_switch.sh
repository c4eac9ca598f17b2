#!/usr/bin/env bash
# Internal switch: the host reaches the VMs through its vNIC (a TAP named
# after the switch in the root namespace, MTU and link set): ping both ways,
# iperf3 both ways. The switch's kind changes live (internal -> private ->
# internal) without restarting the VM; the vNIC goes and comes back with the
# same MAC.
# Usage: test_internal_switch.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
command -v iperf3 >/dev/null || hv_skip "needs iperf3"
hv_start
sw="i${HV_TAG: -6}"   # short: the vNIC is vs-<switch> (15 characters at most)
vctl switch-add "$sw" --type internal --mtu 1500
vnic="vs-$sw"
ip link show "$vnic" >/dev/null || hv_fail "no host vNIC $vnic"
HV_BRIDGES+=("$vnic")
[ "$(cat /sys/class/net/$vnic/mtu)" = 1500 ] || hv_fail "vNIC MTU is not 1500"
grep -q 1 "/sys/class/net/$vnic/carrier" || hv_fail "vNIC has no carrier"
mac0=$(cat "/sys/class/net/$vnic/address")
ip addr add 10.61.0.254/24 dev "$vnic"
hv_vm a "$sw" 10.61.0.1/24 02:00:00:61:00:01
A=$(hv_vm_name a)

hv_log "host <-> VM"
ping -c 3 -i 0.2 -W 2 10.61.0.1 >/dev/null || hv_fail "host cannot ping the VM"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 10.61.0.254 >/dev/null || hv_fail "VM cannot ping the host"
vctl fdb-show "$sw" | grep -q "$vnic.*$mac0" || hv_fail "the host vNIC's MAC is not learned on its port"

hv_log "iperf3 host -> VM and VM -> host, 2 s each"
ip netns exec "$A" iperf3 -s -1 -p 5261 >/dev/null 2>&1 &
HV_PIDS+=($!)
sleep 0.5
h2v=$(timeout 30 iperf3 -c 10.61.0.1 -p 5261 -t 2 -J | python3 -c "import json,sys; print('%.2f' % (json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e9))")
iperf3 -s -1 -p 5262 -B 10.61.0.254 >/dev/null 2>&1 &
HV_PIDS+=($!)
sleep 0.5
v2h=$(ip netns exec "$A" timeout 30 iperf3 -c 10.61.0.254 -p 5262 -t 2 -J | python3 -c "import json,sys; print('%.2f' % (json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e9))")
echo "host -> VM $h2v Gbit/s, VM -> host $v2h Gbit/s"

hv_log "live: internal -> private -> internal, the VM keeps running"
pid=$(vctl --json vm-list | python3 -c "import json,sys; print(json.load(sys.stdin)['vms'][0]['pid'])")
vctl switch-set "$sw" --type private
ip link show "$vnic" >/dev/null 2>&1 && hv_fail "the vNIC is still there on a private switch"
vctl switch-set "$sw" --type internal
[ "$(cat "/sys/class/net/$vnic/address")" = "$mac0" ] || hv_fail "the vNIC came back with another MAC"
ip addr add 10.61.0.254/24 dev "$vnic"
ping -c 3 -i 0.2 -W 2 10.61.0.1 >/dev/null || hv_fail "host cannot ping the VM after the kind changes"
pid2=$(vctl --json vm-list | python3 -c "import json,sys; print(json.load(sys.stdin)['vms'][0]['pid'])")
[ "$pid" = "$pid2" ] || hv_fail "the VM was restarted"

hv_log "MTU follows the switch"
vctl switch-set "$sw" --mtu 4000
[ "$(cat /sys/class/net/$vnic/mtu)" = 4000 ] || hv_fail "vNIC MTU did not follow the switch"
vctl switch-show "$sw"
hv_pass "internal switch"
