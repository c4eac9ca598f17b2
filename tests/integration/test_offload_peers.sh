#!/usr/bin/env bash
# Offloads between unlike peers (issue 10): the host's vNIC on an internal
# switch and a VM both doing TSO (large segments whole both ways), and a VM
# whose guest turned its offloads off (vm-add --guest-offloads off: no
# receive checksum offload, no RSC, no LSO) receiving from one that sends
# 64 KB segments with checksums left to the network: the switch must cut
# them and finish every checksum for it. Every receiver's kernel counts TCP
# checksum errors: there must be none.
# Usage: test_offload_peers.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
for t in iperf3 ethtool nstat; do command -v "$t" >/dev/null || hv_skip "needs $t"; done

# csum_errors [NS]: TCP checksum errors the kernel counted (root if no NS)
csum_errors() {
    if [ -n "${1:-}" ]; then ip netns exec "$1" nstat -az TcpInCsumErrors; else nstat -az TcpInCsumErrors; fi |
        awk '/TcpInCsumErrors/ {print $2}'
}
guest() { vctl --json stats "$1/eth0" | python3 -c "import json,sys; g=json.load(sys.stdin)['ports'][0]['guest']; print(g$2)"; }
# iperf CLIENT_NS SERVER_IP SERVER_NS PORT (NS "-": the root namespace) -> Gbit/s
iperf() {
    local c=() s=()
    [ "$1" = - ] || c=(ip netns exec "$1")
    [ "$3" = - ] || s=(ip netns exec "$3")
    "${s[@]}" iperf3 -s -1 -p "$4" >/dev/null 2>&1 &
    HV_PIDS+=($!)
    sleep 0.4
    "${c[@]}" timeout 30 iperf3 -c "$2" -p "$4" -t 2 -J |
        python3 -c "import json,sys; print('%.2f' % (json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e9))"
}
offloads_of() { vctl --json vm-list | python3 -c "import json,sys; print([v['guest_offloads'] for v in json.load(sys.stdin)['vms'] if v['name']=='$1'][0])"; }

hv_start
sw="q${HV_TAG: -6}"
vctl switch-add "$sw" --type internal --mtu 1500 >/dev/null
vnic="vs-$sw"
HV_BRIDGES+=("$vnic")
ip link show "$vnic" >/dev/null || hv_fail "no host vNIC $vnic"
ip addr add 10.86.0.254/24 dev "$vnic"
hv_vm a "$sw" 10.86.0.1/24 02:00:00:86:00:01
A=$(hv_vm_name a)
C=$(hv_vm_name c)
HV_NS+=("$C")
vctl vm-add "$C" --guest-offloads off >/dev/null
vctl nic-add "$C" eth0 --switch "$sw" --mac 02:00:00:86:00:03 >/dev/null
vctl vm-start "$C" >/dev/null
hv_wait_link "$C" eth0
hv_quiet_ns "$C"
ip netns exec "$C" ip addr add 10.86.0.3/24 dev eth0

hv_log "what each side negotiated"
ethtool -k "$vnic" | grep -q '^tcp-segmentation-offload: on' || hv_fail "the host vNIC has no TSO"
[ "$(offloads_of "$A")" = True ] && [ "$(offloads_of "$C")" = False ] ||
    hv_fail "vm-list: guest_offloads $(offloads_of "$A") / $(offloads_of "$C")"
[ "$(guest "$A" "['rsc']")" = True ] && [ "$(guest "$A" "['lso4']")" = True ] ||
    hv_fail "A did not negotiate LSOv2 and RSC"
for k in rsc lso4 lso6 rx_csum; do
    [ "$(guest "$C" "['$k']")" = False ] || hv_fail "C, offloads off, has $k on"
done
ip netns exec "$C" ethtool -k eth0 | grep -q '^tcp-segmentation-offload: off' ||
    hv_fail "C's eth0 does TSO with its offloads off"

hv_log "host -> VM and VM -> host: large segments whole both ways"
e0=$(csum_errors "$A") h0=$(csum_errors)
rsc0=$(guest "$A" "['rsc_frames']") lso0=$(guest "$A" "['lso_frames']")
g1=$(iperf - 10.86.0.1 "$A" 5311)
g2=$(iperf "$A" 10.86.0.254 - 5312)
echo "host -> A $g1 Gbit/s, A -> host $g2 Gbit/s"
awk -v a="$g1" -v b="$g2" 'BEGIN {exit !(a > 0.01 && b > 0.01)}' || hv_fail "no TCP between host and VM"
[ "$(guest "$A" "['rsc_frames']")" -gt $((rsc0 + 100)) ] || hv_fail "the host's large segments did not reach A whole"
[ "$(guest "$A" "['lso_frames']")" -gt $((lso0 + 100)) ] || hv_fail "A sent no large segments to the host"
[ "$(csum_errors "$A")" = "$e0" ] || hv_fail "A's kernel saw TCP checksum errors"
[ "$(csum_errors)" = "$h0" ] || hv_fail "the host's kernel saw TCP checksum errors"

hv_log "VM with offloads -> VM without: cut and checksummed by the switch"
c0=$(csum_errors "$C")
lso0=$(guest "$A" "['lso_frames']")
g3=$(iperf "$A" 10.86.0.3 "$C" 5313)
echo "A -> C $g3 Gbit/s"
awk -v a="$g3" 'BEGIN {exit !(a > 0.01)}' || hv_fail "no TCP from A to C"
[ "$(guest "$A" "['lso_frames']")" -gt $((lso0 + 100)) ] || hv_fail "A sent no large segments to C"
[ "$(csum_errors "$C")" = "$c0" ] || hv_fail "C's kernel saw TCP checksum errors"
[ "$(guest "$C" "['rsc_frames']")" = 0 ] || hv_fail "C got coalesced frames it did not ask for"

hv_log "VM without offloads -> VM with"
e0=$(csum_errors "$A")
g4=$(iperf "$C" 10.86.0.1 "$A" 5314)
echo "C -> A $g4 Gbit/s"
awk -v a="$g4" 'BEGIN {exit !(a > 0.01)}' || hv_fail "no TCP from C to A"
[ "$(guest "$C" "['lso_frames']")" = 0 ] || hv_fail "C sent large segments with LSO off"
[ "$(csum_errors "$A")" = "$e0" ] || hv_fail "A's kernel saw TCP checksum errors"

hv_log "the setting is kept in the state file"
python3 -c "import json,sys; v=[v for v in json.load(open('$HV_STATE'))['vms'] if v['name']=='$C'][0]; sys.exit(v.get('guest_offloads', True) is not False)" ||
    hv_fail "the state file lost C's guest_offloads"
hv_pass "offloads: host vNIC <-> VM whole, VM -> VM without offloads cut and checksummed, no checksum errors"
