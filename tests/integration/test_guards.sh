#!/usr/bin/env bash
# Port guards and limits, each counted by reason: MAC spoofing (off by
# default: a VM may send only from its own MAC), DHCP guard (DHCP server
# messages from a VM dropped), router guard (router advertisements and
# redirects from a VM dropped), bandwidth limit (--max-mbps, DPDK meter),
# broadcast/multicast storm limit. Each judges the frame without its
# priority tags, as its receivers see it.
# Usage: test_guards.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
command -v iperf3 >/dev/null || hv_skip "needs iperf3"
hv_start
L2="python3 $(dirname "$0")/l2.py"
vctl switch-add sw --type private
hv_vm a sw 10.41.0.1/24 02:00:00:41:00:01
hv_vm b sw 10.41.0.2/24 02:00:00:41:00:02
A=$(hv_vm_name a) B=$(hv_vm_name b)
ip netns exec "$A" ping -c 2 -i 0.2 -W 2 10.41.0.2 >/dev/null || hv_fail "no basic connectivity"

drop() { hv_counter "$A/eth0" "['drops']['$1']"; }
recv() { ip netns exec "$B" $L2 recv eth0 --tag "$1" --timeout 2 >"$HV_DIR/r.$1" & RP=$!; sleep 0.4; }
# got TAG: wait for the receiver (in this shell: it is our child), then its result.
got() { wait "$RP" || true; GOT=$(cat "$HV_DIR/r.$1"); }

hv_log "MAC spoofing is off by default: frames from a foreign source MAC are dropped"
d0=$(drop mac_spoofing)
recv spoof
ip netns exec "$A" $L2 send eth0 --dst 02:00:00:41:00:02 --src 02:00:00:41:00:99 --count 4 --tag spoof >/dev/null
got spoof
[ "$GOT" = none ] || hv_fail "spoofed frames were delivered: $GOT"
[ "$(drop mac_spoofing)" -eq $((d0 + 4)) ] || hv_fail "spoofed frames not counted"
# Behind priority tags (VLAN 0) the source is the same source.
recv spoofp
ip netns exec "$A" $L2 send eth0 --dst 02:00:00:41:00:02 --src 02:00:00:41:00:99 --tags 8100:0,8100:0xa000 --count 3 --tag spoofp >/dev/null
got spoofp
[ "$GOT" = none ] || hv_fail "spoofed frames behind priority tags were delivered: $GOT"
[ "$(drop mac_spoofing)" -eq $((d0 + 7)) ] || hv_fail "spoofed frames behind priority tags not counted"
vctl nic-set "$A" eth0 --mac-spoofing on
recv spoof2
ip netns exec "$A" $L2 send eth0 --dst 02:00:00:41:00:02 --src 02:00:00:41:00:99 --count 4 --tag spoof2 >/dev/null
got spoof2
[[ "$GOT" == *"frames 4"* ]] || hv_fail "with --mac-spoofing on the frames should pass"
vctl nic-set "$A" eth0 --mac-spoofing off

hv_log "DHCP guard"
recv dhcp
ip netns exec "$A" $L2 send eth0 --dst ff:ff:ff:ff:ff:ff --kind dhcp-offer --count 2 --tag dhcp >/dev/null
got dhcp
[[ "$GOT" == *"frames 2"* ]] || hv_fail "without the guard a DHCP offer should pass"
vctl nic-set "$A" eth0 --dhcp-guard on
d0=$(drop dhcp_guard)
recv dhcp2
ip netns exec "$A" $L2 send eth0 --dst ff:ff:ff:ff:ff:ff --kind dhcp-offer --count 3 --tag dhcp2 >/dev/null
ip netns exec "$A" $L2 send eth0 --dst 33:33:00:01:00:02 --kind dhcpv6-reply --count 2 --tag dhcp2 >/dev/null
got dhcp2
[ "$GOT" = none ] || hv_fail "DHCP server messages passed the guard: $GOT"
[ "$(drop dhcp_guard)" -eq $((d0 + 5)) ] || hv_fail "DHCP guard drops not counted"
ip netns exec "$A" ping -c 2 -i 0.2 -W 2 10.41.0.2 >/dev/null || hv_fail "the DHCP guard blocked ordinary traffic"

hv_log "router guard"
vctl nic-set "$A" eth0 --router-guard on
d0=$(drop router_guard)
recv rtr
ip netns exec "$A" $L2 send eth0 --dst 33:33:00:00:00:01 --kind ra --count 2 --tag rtr >/dev/null
ip netns exec "$A" $L2 send eth0 --dst 02:00:00:41:00:02 --kind redirect --count 2 --tag rtr >/dev/null
# RFC 7113: an RA behind a hop-by-hop header is still an RA.
ip netns exec "$A" $L2 send eth0 --dst 33:33:00:00:00:01 --kind ra-hbh --count 2 --tag rtr >/dev/null
got rtr
[ "$GOT" = none ] || hv_fail "router advertisements/redirects passed the guard: $GOT"
[ "$(drop router_guard)" -eq $((d0 + 6)) ] || hv_fail "router guard drops not counted"

hv_log "the guards judge the frame without its priority tags (VLAN 0, any number of them)"
d0=$(drop dhcp_guard)
r0=$(drop router_guard)
recv ptag
ip netns exec "$A" $L2 send eth0 --dst ff:ff:ff:ff:ff:ff --kind dhcp-offer --tags 8100:0 --count 2 --tag ptag >/dev/null
ip netns exec "$A" $L2 send eth0 --dst ff:ff:ff:ff:ff:ff --kind dhcp-offer --tags 8100:0,8100:0x6000,8100:0 --count 2 --tag ptag >/dev/null
ip netns exec "$A" $L2 send eth0 --dst 33:33:00:01:00:02 --kind dhcpv6-reply --tags 8100:0,8100:0 --count 1 --tag ptag >/dev/null
ip netns exec "$A" $L2 send eth0 --dst 33:33:00:00:00:01 --kind ra --tags 8100:0 --count 2 --tag ptag >/dev/null
ip netns exec "$A" $L2 send eth0 --dst 33:33:00:00:00:01 --kind ra-hbh --tags 8100:0x2000,8100:0 --count 2 --tag ptag >/dev/null
got ptag
[ "$GOT" = none ] || hv_fail "DHCP offers or RAs behind priority tags passed the guards: $GOT"
[ "$(drop dhcp_guard)" -eq $((d0 + 5)) ] || hv_fail "DHCP guard drops behind priority tags not counted ($d0 -> $(drop dhcp_guard))"
[ "$(drop router_guard)" -eq $((r0 + 4)) ] || hv_fail "router guard drops behind priority tags not counted ($r0 -> $(drop router_guard))"
vctl nic-set "$A" eth0 --router-guard off --dhcp-guard off
recv rtr2
ip netns exec "$A" $L2 send eth0 --dst 33:33:00:00:00:01 --kind ra --count 2 --tag rtr2 >/dev/null
got rtr2
[[ "$GOT" == *"frames 2"* ]] || hv_fail "with the guard off, RAs should pass"

hv_log "storm limit: 100 broadcast frames/s"
vctl nic-set "$A" eth0 --storm-limit 100
d0=$(drop storm_limit)
ip netns exec "$A" $L2 send eth0 --dst ff:ff:ff:ff:ff:ff --count 400 --tag storm >/dev/null
d1=$(drop storm_limit)
[ "$d1" -gt "$d0" ] || hv_fail "a burst of 400 broadcasts was not limited"
echo "storm limit dropped $((d1 - d0)) of 400"
# Broadcasts behind priority tags are broadcasts all the same.
ip netns exec "$A" $L2 send eth0 --dst ff:ff:ff:ff:ff:ff --tags 8100:0,8100:0 --count 400 --tag stormp >/dev/null
d2=$(drop storm_limit)
[ "$d2" -gt "$d1" ] || hv_fail "400 broadcasts behind priority tags were not limited"
echo "behind priority tags: dropped $((d2 - d1)) of 400"
ip netns exec "$A" ping -c 2 -i 0.2 -W 2 10.41.0.2 >/dev/null || hv_fail "unicast hit by the storm limit"
vctl nic-set "$A" eth0 --storm-limit 0

hv_log "bandwidth limit: 20 Mbit/s from A"
vctl nic-set "$A" eth0 --max-mbps 20
ip netns exec "$B" iperf3 -s -1 -p 5241 >/dev/null 2>&1 &
HV_PIDS+=($!)
sleep 0.5
d0=$(drop rate_limit)
mbps=$(ip netns exec "$A" timeout 30 iperf3 -c 10.41.0.2 -p 5241 -t 3 -J |
    python3 -c "import json,sys; print(int(json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e6))")
d1=$(drop rate_limit)
echo "A -> B with a 20 Mbit/s limit: $mbps Mbit/s, $((d1 - d0)) frames dropped by the meter"
[ "$d1" -gt "$d0" ] || hv_fail "the meter dropped nothing"
[ "$mbps" -lt 40 ] || hv_fail "$mbps Mbit/s passed a 20 Mbit/s limit"
vctl nic-set "$A" eth0 --max-mbps 0
vctl stats "$A/eth0"
hv_pass "guards and limits"
