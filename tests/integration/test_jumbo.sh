#!/usr/bin/env bash
# Jumbo frames on every path: an external switch at MTU 9000 with VMs, the
# host vNIC (management OS) and an net_af_packet uplink to a "physical"
# host in a namespace, all at 9000. 8972-byte pings with DF cross VM<->VM,
# VM<->host and VM<->uplink host intact; iperf3 runs at 9000; a VM at 1500
# on the same switch still talks to its neighbours while jumbo frames to it
# are dropped and counted on its port; a host vNIC raised to 9100 by hand
# gets nothing bigger through and the drop is counted on the vNIC; the MTU
# of a live NIC changes from the control side and from inside the VM (a
# full NVSP/RNDIS re-initialisation each time, repeated without leaking).
# Usage: test_jumbo.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
command -v iperf3 >/dev/null || hv_skip "needs iperf3"
hv_start

PHYS="${HV_TAG}p" UP="hu$HV_TAG" PEER="hp$HV_TAG"
HV_NS+=("$PHYS")
HV_BRIDGES+=("$UP")
ip netns add "$PHYS"
ip link add "$UP" mtu 9000 type veth peer name "$PEER" mtu 9000
ip link set "$PEER" netns "$PHYS"
sysctl -qw "net.ipv6.conf.$UP.disable_ipv6=1"
ip link set "$UP" up
ip -n "$PHYS" link set lo up
ip -n "$PHYS" addr add 10.66.0.100/24 dev "$PEER"
ip -n "$PHYS" link set "$PEER" up
ip netns exec "$PHYS" ethtool -K "$PEER" tx off >/dev/null
hv_quiet_ns "$PHYS"

sw="j${HV_TAG: -6}"
vnic="vs-$sw"
vctl switch-add "$sw" --type external --uplink "net_af_packet_$HV_TAG,iface=$UP" \
    --allow-management-os --mtu 9000
HV_BRIDGES+=("$vnic")
sysctl -qw "net.ipv6.conf.$vnic.disable_ipv6=1"
[ "$(cat /sys/class/net/$vnic/mtu)" = 9000 ] || hv_fail "host vNIC MTU is not 9000"
ip addr add 10.66.0.254/24 dev "$vnic"
hv_vm a "$sw" 10.66.0.1/24 02:00:00:66:00:01
hv_vm b "$sw" 10.66.0.2/24 02:00:00:66:00:02
A=$(hv_vm_name a) B=$(hv_vm_name b)
vm_mtu() { ip netns exec "$1" cat /sys/class/net/eth0/mtu; }
[ "$(vm_mtu "$A")" = 9000 ] || hv_fail "A's NIC has MTU $(vm_mtu "$A"), not the switch's 9000"

# jping NS DST SIZE: one-line verdict of 3 DF pings of SIZE bytes.
jping() { ip netns exec "$1" ping -c 3 -i 0.2 -W 2 -s "$3" -M do "$2" >/dev/null 2>&1; }

hv_log "8972-byte pings with DF on every path"
jping "$A" 10.66.0.2 8972 || hv_fail "VM -> VM"
jping "$B" 10.66.0.1 8972 || hv_fail "VM -> VM (back)"
ping -c 3 -i 0.2 -W 2 -s 8972 -M do 10.66.0.1 >/dev/null || hv_fail "host -> VM"
jping "$A" 10.66.0.254 8972 || hv_fail "VM -> host"
jping "$A" 10.66.0.100 8972 || hv_fail "VM -> uplink host"
jping "$PHYS" 10.66.0.2 8972 || hv_fail "uplink host -> VM"
for p in "$A/eth0" "$B/eth0" "$vnic" "$sw:uplink"; do
    tb=$(hv_counter "$p" "['drops']['too_big'] + p['drops']['rx_too_big']")
    [ "$tb" -eq 0 ] || hv_fail "$p dropped $tb frames as too big"
done

hv_log "iperf3 at MTU 9000, VM -> VM, 3 s"
ip netns exec "$B" iperf3 -s -1 -p 5266 >/dev/null 2>&1 &
HV_PIDS+=($!)
sleep 0.5
g=$(ip netns exec "$A" timeout 30 iperf3 -c 10.66.0.2 -p 5266 -t 3 -J | python3 -c "import json,sys; print('%.2f' % (json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e9))") ||
    hv_fail "iperf3 at 9000 failed"
echo "iperf3 VM -> VM at MTU 9000: $g Gbit/s"

hv_log "a VM at MTU 1500 on the 9000 switch"
hv_vm c "$sw" 10.66.0.3/24 02:00:00:66:00:03
C=$(hv_vm_name c)
vctl nic-set "$C" eth0 --mtu 1500
for _ in $(seq 50); do [ "$(vm_mtu "$C")" = 1500 ] && break; sleep 0.1; done
[ "$(vm_mtu "$C")" = 1500 ] || hv_fail "C's interface did not follow its NIC to MTU 1500"
jping "$A" 10.66.0.3 56 || hv_fail "A cannot ping C"
jping "$C" 10.66.0.1 1472 || hv_fail "C cannot send full 1500-byte packets to A"
ip netns exec "$C" iperf3 -s -1 -p 5267 >/dev/null 2>&1 &
HV_PIDS+=($!)
sleep 0.5
ip netns exec "$A" timeout 30 iperf3 -c 10.66.0.3 -p 5267 -t 1 >/dev/null || hv_fail "TCP from a 9000 VM to a 1500 VM failed"
t0=$(hv_counter "$C/eth0" "['drops']['too_big']")
jping "$A" 10.66.0.3 8972 && hv_fail "a jumbo frame reached a 1500 VM"
t1=$(hv_counter "$C/eth0" "['drops']['too_big']")
[ "$t1" -ge $((t0 + 3)) ] || hv_fail "jumbo frames to C were not counted on C's port ($t0 -> $t1)"
vctl stats "$C/eth0" | grep -q "too_big=" || hv_fail "vswitch-ctl stats does not show too_big"

hv_log "a host vNIC raised to 9100 by hand: 8973 bytes with DF get nowhere, counted on the vNIC"
ip link set "$vnic" mtu 9100
r0=$(hv_counter "$vnic" "['drops']['rx_too_big']")
ping -c 3 -i 0.2 -W 1 -s 8973 -M do 10.66.0.1 >/dev/null 2>&1 && hv_fail "an oversize frame got through"
r1=$(hv_counter "$vnic" "['drops']['rx_too_big']")
[ "$r1" -ge $((r0 + 3)) ] || hv_fail "oversize frames from the host not counted on $vnic ($r0 -> $r1)"
ping -c 2 -i 0.2 -W 2 -s 8972 -M do 10.66.0.1 >/dev/null || hv_fail "9000-byte packets from the host stopped"
ip link set "$vnic" mtu 9000

hv_log "the MTU of a live NIC, from the control side: 9000 -> 4000 -> 9000"
opens0=$(hv_counter "$A/eth0" "['guest']['opens']")
vctl nic-set "$A" eth0 --mtu 4000
for _ in $(seq 50); do [ "$(vm_mtu "$A")" = 4000 ] && break; sleep 0.1; done
[ "$(vm_mtu "$A")" = 4000 ] || hv_fail "A's interface is at $(vm_mtu "$A"), not 4000"
jping "$A" 10.66.0.2 3972 || hv_fail "A unreachable at MTU 4000"
[ "$(hv_counter "$A/eth0" "['guest']['frame_size']")" = 4014 ] || hv_fail "netvsp's frame size did not follow"
[ "$(hv_counter "$A/eth0" "['guest']['mtu_pending']")" = False ] || hv_fail "the MTU change is still pending after the guest re-initialised"
vctl nic-set "$A" eth0 --mtu 9000
for _ in $(seq 50); do [ "$(vm_mtu "$A")" = 9000 ] && break; sleep 0.1; done
jping "$A" 10.66.0.2 8972 || hv_fail "A unreachable at MTU 9000 again"
opens1=$(hv_counter "$A/eth0" "['guest']['opens']")
[ "$opens1" -eq $((opens0 + 2)) ] || hv_fail "expected two re-initialisations, saw $((opens1 - opens0))"
vctl nic-list "$A" | grep -q 9000 || hv_fail "nic-list does not show the MTU"
vctl nic-set "$A" eth0 --mtu 9001 2>/dev/null && hv_fail "MTU 9001 accepted"
vctl switch-add "lo$HV_TAG" --type private --mtu 1500
vctl nic-set "$A" eth0 --switch "lo$HV_TAG" 2>/dev/null && hv_fail "a 9000 NIC moved onto a 1500 switch"
vctl switch-del "lo$HV_TAG"

hv_log "the VM changes its own MTU, twenty times; nothing leaks"
kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
vmpid=$(vctl --json vm-list | python3 -c "import json,sys; print([v['pid'] for v in json.load(sys.stdin)['vms'] if v['name']=='$A'][0])")
rss0=$(kib "$HV_VSD_PID" VmRSS)
maps0=$(wc -l <"/proc/$HV_VSD_PID/maps")
vsz0=$(kib "$vmpid" VmSize)
fds0=$(ls "/proc/$vmpid/fd" | wc -l)
opens0=$(hv_counter "$A/eth0" "['guest']['opens']")
for i in $(seq 20); do
    m=$((i % 2 ? 2000 : 9000))
    ip netns exec "$A" ip link set eth0 mtu "$m"
    for _ in $(seq 50); do
        [ "$(hv_counter "$A/eth0" "['guest']['frame_size']")" = $((m + 14)) ] && break
        sleep 0.1
    done
    jping "$A" 10.66.0.2 $((m - 28)) || hv_fail "A unreachable after setting MTU $m (round $i)"
done
opens1=$(hv_counter "$A/eth0" "['guest']['opens']")
rss1=$(kib "$HV_VSD_PID" VmRSS)
maps1=$(wc -l <"/proc/$HV_VSD_PID/maps")
vsz1=$(kib "$vmpid" VmSize)
fds1=$(ls "/proc/$vmpid/fd" | wc -l)
echo "20 MTU changes inside the VM: $((opens1 - opens0)) re-initialisations; vswitchd RSS ${rss0} -> ${rss1} KiB, mappings $maps0 -> $maps1; the VM's hv-vm ${vsz0} -> ${vsz1} KiB, $fds0 -> $fds1 fds"
[ "$((opens1 - opens0))" -ge 20 ] || hv_fail "expected at least 20 re-initialisations"
[ "$((rss1 - rss0))" -lt 8192 ] || hv_fail "vswitchd grew by $((rss1 - rss0)) KiB over 20 re-initialisations"
# Guest buffers the root maps (GPADLs) would stay as mappings if leaked.
[ "$maps1" -le "$((maps0 + 4))" ] || hv_fail "vswitchd's mappings grew from $maps0 to $maps1"
[ "$vsz1" -le "$((vsz0 + 1024))" ] && [ "$fds1" -le "$fds0" ] ||
    hv_fail "hv-vm grew: ${vsz0} -> ${vsz1} KiB, $fds0 -> $fds1 fds"
errs=$(vctl --json stats "$A/eth0" | python3 -c "import json,sys; print(sum(json.load(sys.stdin)['ports'][0]['guest']['errors'].values()))")
[ "$errs" -eq 0 ] || hv_fail "the guest broke the protocol $errs times"
ip netns exec "$A" ip link set eth0 mtu 9100
for _ in $(seq 50); do [ "$(vm_mtu "$A")" = 9000 ] && break; sleep 0.1; done
[ "$(vm_mtu "$A")" = 9000 ] || hv_fail "an MTU above the NIC's was not brought back to 9000"
vctl stats "$sw"
hv_pass "jumbo frames"
