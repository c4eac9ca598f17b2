#!/usr/bin/env bash
# Port mirroring and capture: copies of a port's traffic (both directions)
# reach the mirror port, where tcpdump sees them; "capture PORT -w FILE"
# writes a pcap with libpcap that tshark reads back frame for frame.
# Usage: test_mirror_capture.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
command -v tshark >/dev/null || hv_skip "needs tshark"
command -v tcpdump >/dev/null || hv_skip "needs tcpdump"
hv_start
vctl switch-add sw --type private
hv_vm a sw 10.51.0.1/24 02:00:00:51:00:01
hv_vm b sw 10.51.0.2/24 02:00:00:51:00:02
hv_vm m sw 10.51.0.9/24 02:00:00:51:00:09
A=$(hv_vm_name a) B=$(hv_vm_name b) M=$(hv_vm_name m)
ip netns exec "$A" ip neigh replace 10.51.0.2 lladdr 02:00:00:51:00:02 dev eth0 nud permanent
ip netns exec "$B" ip neigh replace 10.51.0.1 lladdr 02:00:00:51:00:01 dev eth0 nud permanent
ip netns exec "$A" ping -c 2 -i 0.2 -W 2 10.51.0.2 >/dev/null || hv_fail "no basic connectivity"

hv_log "mirror A's port to M: M sees A's pings both ways"
vctl mirror-add sw --src "$A/eth0" --dst "$M/eth0"
vctl --json switch-show sw | grep -q "\"mirror\"" || hv_fail "switch-show does not show the mirror"
ip netns exec "$M" ip link set eth0 promisc on
ip netns exec "$M" timeout 10 tcpdump -n -i eth0 -c 20 icmp >"$HV_DIR/mirror.txt" 2>/dev/null &
td=$!
sleep 1
ip netns exec "$A" ping -c 10 -i 0.1 -W 2 10.51.0.2 >/dev/null || hv_fail "A->B ping failed with a mirror on"
wait "$td" || true
req=$(grep -c "10.51.0.1 > 10.51.0.2: ICMP echo request" "$HV_DIR/mirror.txt" || true)
rep=$(grep -c "10.51.0.2 > 10.51.0.1: ICMP echo reply" "$HV_DIR/mirror.txt" || true)
echo "mirror port saw $req requests and $rep replies"
[ "$req" -eq 10 ] && [ "$rep" -eq 10 ] || hv_fail "mirror copies missing: $req requests, $rep replies"
vctl mirror-del sw
ip netns exec "$M" timeout 3 tcpdump -n -i eth0 -c 1 icmp >"$HV_DIR/none.txt" 2>/dev/null &
td=$!
sleep 0.5
ip netns exec "$A" ping -c 3 -i 0.1 -W 2 10.51.0.2 >/dev/null
wait "$td" || true
grep -q ICMP "$HV_DIR/none.txt" && hv_fail "M still gets copies after mirror-del"

hv_log "capture A's port: 20 frames into a pcap, read back with tshark"
pcap="$HV_DIR/a.pcap"
vctl capture "$A/eth0" -w "$pcap" -c 20 --timeout 20 >"$HV_DIR/cap.out" &
cap=$!
sleep 0.5
ip netns exec "$A" ping -c 10 -i 0.05 -W 2 10.51.0.2 >/dev/null
wait "$cap" || hv_fail "capture command failed: $(cat "$HV_DIR/cap.out")"
cat "$HV_DIR/cap.out"
n=$(tshark -r "$pcap" 2>/dev/null | wc -l)
[ "$n" -eq 20 ] || hv_fail "tshark reads $n frames, expected 20"
reqs=$(tshark -r "$pcap" -Y "icmp.type == 8 && ip.src == 10.51.0.1" 2>/dev/null | wc -l)
reps=$(tshark -r "$pcap" -Y "icmp.type == 0 && ip.dst == 10.51.0.1" 2>/dev/null | wc -l)
echo "pcap: $reqs echo requests from A, $reps replies to A"
[ "$reqs" -eq 10 ] && [ "$reps" -eq 10 ] || hv_fail "pcap does not hold the 10 requests and 10 replies"
tshark -r "$pcap" -T fields -e frame.len -e eth.src -e eth.dst 2>/dev/null | head -3
# Timestamps are wall-clock time, within a minute of now.
first=$(tshark -r "$pcap" -T fields -e frame.time_epoch 2>/dev/null | head -1 | cut -d. -f1)
now=$(date +%s)
[ $((now - first)) -ge 0 ] && [ $((now - first)) -lt 60 ] ||
    hv_fail "capture timestamps are not wall-clock time ($first, now $now)"

hv_log "the mirror follows its ports: B moves away and back, the mirror of B still works"
vctl switch-add sw2 --type private
vctl mirror-add sw --src "$A/eth0,$B/eth0" --dst "$M/eth0"
vctl nic-set "$B" eth0 --switch sw2
vctl nic-set "$B" eth0 --switch sw
hv_wait_link "$B" eth0
ip netns exec "$M" timeout 10 tcpdump -n -i eth0 -c 4 icmp >"$HV_DIR/mirror2.txt" 2>/dev/null &
td=$!
sleep 1
ip netns exec "$B" ping -c 2 -i 0.2 -W 2 10.51.0.1 >/dev/null || hv_fail "B->A ping failed after the move"
wait "$td" || true
[ "$(grep -c ICMP "$HV_DIR/mirror2.txt" || true)" -ge 4 ] ||
    hv_fail "the mirror stopped when a source port moved: $(cat "$HV_DIR/mirror2.txt")"

hv_log "a capture whose port goes away ends with what it has"
vctl capture "$B/eth0" -w "$HV_DIR/b.pcap" --timeout 60 >"$HV_DIR/capb.out" &
cap=$!
sleep 0.5
ip netns exec "$A" ping -c 3 -i 0.1 -W 2 10.51.0.2 >/dev/null
vctl mirror-del sw
vctl vm-stop "$B" >/dev/null
vctl nic-del "$B" eth0
wait "$cap" || hv_fail "capture did not end cleanly when its port went away: $(cat "$HV_DIR/capb.out")"
nb=$(tshark -r "$HV_DIR/b.pcap" 2>/dev/null | wc -l)
[ "$nb" -ge 6 ] || hv_fail "the capture of the deleted port holds $nb frames, expected 6 or more"
kill -0 "$HV_VSD_PID" || hv_fail "vswitchd died"
hv_pass "mirror and capture"
