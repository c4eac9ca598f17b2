#!/usr/bin/env bash
# An uplink whose device is missing when vswitchd starts: the state loads
# anyway. The external switch comes up without its uplink (switch-show says
# down, why, and how many attempts failed), every other switch and VM comes
# up and carries traffic, and the state file is not rewritten. Once the
# interface exists the periodic retry attaches the uplink, its static FDB
# entry comes back, and the VM on that switch reaches the "physical" host.
# At run time, switch-add of a missing device is still refused.
# Usage: test_uplink_missing.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
command -v ethtool >/dev/null || hv_skip "needs ethtool"

PHYS="${HV_TAG}p"
UP="hu$HV_TAG"
PEER="hp$HV_TAG"
HV_NS+=("$PHYS")
HV_BRIDGES+=("$UP")
ip netns add "$PHYS"
ip -n "$PHYS" link set lo up
# The "physical network": a veth whose far end is a host in namespace PHYS.
make_wire() {
    ip link add "$UP" type veth peer name "$PEER"
    ip link set "$PEER" netns "$PHYS"
    sysctl -qw "net.ipv6.conf.$UP.disable_ipv6=1"
    ip link set "$UP" up
    ip -n "$PHYS" addr add 10.58.0.1/24 dev "$PEER"
    ip netns exec "$PHYS" ethtool -K "$PEER" tx off >/dev/null
    ip netns exec "$PHYS" sysctl -qw "net.ipv6.conf.$PEER.disable_ipv6=1"
    ip -n "$PHYS" link set "$PEER" up
}
make_wire

hv_start
ext="x$HV_TAG"
devargs="net_af_packet_$HV_TAG,iface=$UP"
vctl switch-add "$ext" --type external --uplink "$devargs"
vctl switch-add sw2 --type private
vctl fdb-add "$ext" 02:00:00:58:00:fe "$ext:uplink"
hv_vm a "$ext" 10.58.0.2/24 02:00:00:58:00:02
hv_vm b sw2 10.59.0.1/24 02:00:00:59:00:01
hv_vm c sw2 10.59.0.2/24 02:00:00:59:00:02
A=$(hv_vm_name a) B=$(hv_vm_name b) C=$(hv_vm_name c)
ip netns exec "$A" ping -c 2 -i 0.2 -W 2 10.58.0.1 >/dev/null || hv_fail "no traffic over the uplink at first"

hv_log "vswitchd stops; the uplink's interface goes away; vswitchd starts again"
hv_stop
ip link del "$UP"
cp "$HV_STATE" "$HV_DIR/state.before"
hv_start
show() { vctl --json switch-show "$ext" | python3 -c "import json,sys; print(json.load(sys.stdin).get('$1', ''))"; }
vctl switch-show "$ext"
[ "$(show uplink_state)" = down ] || hv_fail "the uplink is not shown down"
[ "$(show uplink)" = "$devargs" ] || hv_fail "the uplink's devargs are not kept: '$(show uplink)'"
[[ "$(show uplink_error)" == *"no such device"* ]] || hv_fail "no reason shown: '$(show uplink_error)'"
[ "$(show uplink_failures)" -ge 1 ] || hv_fail "the failed attempt is not counted"
vctl switch-show "$ext" | grep -q "uplink_state: down" || hv_fail "switch-show does not print the uplink's state"
vctl switch-list | grep -q sw2 || hv_fail "the other switch did not come up"
cmp -s "$HV_STATE" "$HV_DIR/state.before" || hv_fail "the state file was rewritten at start-up"

hv_log "every VM comes up; the other switch carries traffic"
for vm in "$A" "$B" "$C"; do
    hv_wait_link "$vm" eth0
    hv_quiet_ns "$vm"
done
ip netns exec "$B" ip addr replace 10.59.0.1/24 dev eth0
ip netns exec "$C" ip addr replace 10.59.0.2/24 dev eth0
ip netns exec "$A" ip addr replace 10.58.0.2/24 dev eth0
ip netns exec "$B" ping -c 3 -i 0.2 -W 2 10.59.0.2 >/dev/null || hv_fail "VMs on the other switch cannot talk"

hv_log "the uplink is retried, each failure counted"
f1=$(show uplink_failures)
for _ in $(seq 80); do
    [ "$(show uplink_failures)" -gt "$f1" ] && break
    sleep 0.1
done
f2=$(show uplink_failures)
[ "$f2" -gt "$f1" ] || hv_fail "no retry within 8 s ($f1 failures)"
echo "failed attempts: $f1, then $f2"

hv_log "the interface appears: the retry attaches it, traffic flows"
make_wire
for _ in $(seq 400); do
    [ "$(show uplink_state)" = up ] && break
    sleep 0.1
done
vctl switch-show "$ext"
[ "$(show uplink_state)" = up ] || hv_fail "the uplink was not attached within 40 s of its interface appearing"
grep -q "uplink $devargs attached after" "$HV_LOG" || hv_fail "no log line for the attached uplink"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 10.58.0.1 >/dev/null || hv_fail "no traffic over the uplink once attached"
vctl fdb-show "$ext" | grep -q "02:00:00:58:00:fe.*static" || hv_fail "the static entry on the uplink did not come back"
[ "$(hv_counter "$ext:uplink" "['tx_packets']")" -gt 0 ] || hv_fail "the uplink port counts no traffic"
cmp -s "$HV_STATE" "$HV_DIR/state.before" || hv_fail "the state file changed without a configuration change"

hv_log "at run time, an uplink that does not exist is an error (a typo)"
if vctl switch-add "y$HV_TAG" --type external --uplink "net_af_packet_${HV_TAG}y,iface=nosuch$HV_TAG" 2>"$HV_DIR/err"; then
    hv_fail "switch-add of a missing uplink was accepted"
fi
grep -q "no such device" "$HV_DIR/err" || hv_fail "switch-add error: $(cat "$HV_DIR/err")"
vctl switch-list | grep -q "y$HV_TAG" && hv_fail "the refused switch exists"
kill -0 "$HV_VSD_PID" || hv_fail "vswitchd died"
hv_pass "missing uplink at start-up"
