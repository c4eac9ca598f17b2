#!/usr/bin/env bash
# Large segments end to end (issue 10): a VM's kernel hands hv-vm 64 KB TCP
# segments (its TAP has TSO because the root offers LSOv2), netvsp takes
# them as LSOv2 sends, the switch carries them whole, and a receiving VM
# that negotiated RSC gets them whole; toward a port that takes no large
# segments (an external switch's net_af_packet uplink) the switch cuts them
# in software with checksums the receiving kernel checks. Every receiver's
# kernel counts TCP checksum errors: there must be none. A capture on the
# sending VM's port shows frames longer than the MTU (what the VM sent).
# Usage: test_offload.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
for t in iperf3 ethtool nstat tshark; do command -v "$t" >/dev/null || hv_skip "needs $t"; done

csum_errors() { ip netns exec "$1" nstat -az TcpInCsumErrors | awk '/TcpInCsumErrors/ {print $2}'; }
guest() { vctl --json stats "$1/eth0" | python3 -c "import json,sys; g=json.load(sys.stdin)['ports'][0]['guest']; print(g$2)"; }
# iperf3 CLIENT_NS SERVER_IP SERVER_NS SECONDS -> Gbit/s received
iperf() {
    ip netns exec "$3" iperf3 -s -1 -p 5301 >/dev/null 2>&1 &
    local srv=$!
    sleep 0.3
    ip netns exec "$1" iperf3 -c "$2" -p 5301 -t "$4" -J |
        python3 -c "import json,sys; print('%.2f' % (json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e9))"
    wait "$srv" || true
}

hv_start
sw="o${HV_TAG: -6}"
vctl switch-add "$sw" --type private >/dev/null
hv_vm a "$sw" 10.84.0.1/24 02:00:00:84:00:01
hv_vm b "$sw" 10.84.0.2/24 02:00:00:84:00:02
A=$(hv_vm_name a) B=$(hv_vm_name b)

hv_log "the guests negotiated LSOv2 and RSC; their TAPs do TSO"
for vm in "$A" "$B"; do
    [ "$(guest "$vm" "['lso4']")" = True ] && [ "$(guest "$vm" "['lso6']")" = True ] ||
        hv_fail "$vm did not enable LSOv2"
    [ "$(guest "$vm" "['rsc']")" = True ] || hv_fail "$vm did not negotiate RSC"
    ip netns exec "$vm" ethtool -k eth0 | grep -q '^tcp-segmentation-offload: on' ||
        hv_fail "$vm's eth0 has no TSO"
done

hv_log "VM -> VM TCP: large segments whole from sender to receiver"
vctl capture "$A/eth0" -w "$HV_DIR/a.pcap" -c 200 --timeout 10 >/dev/null &
cap=$!
sleep 0.5
before=$(csum_errors "$B")
gbps=$(iperf "$A" 10.84.0.2 "$B" 3)
wait "$cap" || hv_fail "capture failed"
echo "VM -> VM: $gbps Gbit/s"
lso=$(guest "$A" "['lso_frames']")
rsc=$(guest "$B" "['rsc_frames']")
[ "$lso" -gt 100 ] || hv_fail "A sent $lso LSO frames"
[ "$rsc" -gt 100 ] || hv_fail "B received $rsc coalesced frames"
[ "$(vctl --json stats "$A/eth0" | python3 -c "import json,sys; print(sum(json.load(sys.stdin)['ports'][0]['guest']['lso_drops'].values()))")" -eq 0 ] ||
    hv_fail "LSO sends refused: $(guest "$A" "['lso_drops']")"
[ "$(csum_errors "$B")" = "$before" ] || hv_fail "B's kernel saw TCP checksum errors"
big=$(tshark -r "$HV_DIR/a.pcap" -Y "frame.len > 1514 && tcp" 2>/dev/null | wc -l)
[ "$big" -gt 0 ] || hv_fail "the capture of A's port holds no large segment"
bad=$(tshark -r "$HV_DIR/a.pcap" -Y "tcp && _ws.malformed" 2>/dev/null | wc -l)
[ "$bad" -eq 0 ] || hv_fail "the capture holds $bad malformed TCP frames"
echo "LSO frames from A: $lso, coalesced frames to B: $rsc, large segments captured: $big"

hv_log "VM -> a host behind an uplink that takes no large segments: cut in software"
hv_phys_net 10.84.0.9/24
vctl switch-set "$sw" --type external --uplink "net_af_packet_$HV_TAG,iface=$UP" >/dev/null
before=$(csum_errors "$PHYS")
gbps=$(iperf "$A" 10.84.0.9 "$PHYS" 3)
echo "VM -> uplink host: $gbps Gbit/s"
awk -v g="$gbps" 'BEGIN {exit !(g > 0.01)}' || hv_fail "no TCP through the uplink"
[ "$(csum_errors "$PHYS")" = "$before" ] || hv_fail "the uplink host's kernel saw TCP checksum errors"
uptx=$(hv_counter "$sw:uplink" "['tx_packets']")
[ "$uptx" -gt 1000 ] || hv_fail "the uplink sent $uptx frames"
hv_pass "large segments: VM -> VM whole ($lso LSO, $rsc RSC), VM -> uplink cut, no checksum errors"
