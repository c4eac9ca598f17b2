#!/usr/bin/env bash
# VLANs: access ports are isolated by VLAN (same IP subnet, different VLAN:
# no traffic); a trunk port carries several VLANs as tagged frames, with a
# native VLAN untagged; a guest on an access port that tags its frames, or a
# trunk sending a VLAN it does not carry, is dropped and counted; learning is
# per VLAN. A frame's VLAN comes from all its tags: priority tags in front of
# a VLAN tag do not hide it, 802.1ad/0x9100 tags are refused, and priority
# tags are taken out before anyone sees the frame.
# Usage: test_vlan.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
hv_start

vctl switch-add sw --type private
hv_vm a sw 10.31.0.1/24 02:00:00:31:00:01
hv_vm b sw 10.31.0.2/24 02:00:00:31:00:02
hv_vm c sw 10.31.0.3/24 02:00:00:31:00:03
hv_vm t sw 10.31.0.9/24 02:00:00:31:00:09
A=$(hv_vm_name a) B=$(hv_vm_name b) C=$(hv_vm_name c) T=$(hv_vm_name t)

hv_log "access VLANs: A and C in VLAN 10, B in VLAN 20, T a trunk (10,20, native 30)"
vctl nic-set "$A" eth0 --vlan 10
vctl nic-set "$C" eth0 --vlan 10
vctl nic-set "$B" eth0 --vlan 20
vctl nic-set "$T" eth0 --trunk 10,20,30 --native-vlan 30
vctl nic-list | grep -E "$A|$T"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 10.31.0.3 >/dev/null || hv_fail "A cannot reach C in VLAN 10"
ip netns exec "$A" ping -c 2 -i 0.2 -W 1 10.31.0.2 >/dev/null 2>&1 && hv_fail "A reached B across VLANs"
ip netns exec "$B" ping -c 2 -i 0.2 -W 1 10.31.0.3 >/dev/null 2>&1 && hv_fail "B reached C across VLANs"

L2="python3 $(dirname "$0")/l2.py"
# This kernel has no 802.1Q module, so guests cannot have VLAN
# sub-interfaces: tagged frames are sent and read with raw sockets.
# recv_bg NS TAG: start a receiver; its output file is "$HV_DIR/recv.NS.TAG".
RECV=()
recv_bg() {
    ip netns exec "$1" $L2 recv eth0 --tag "$2" --timeout 3 >"$HV_DIR/recv.$1.$2" &
    RECV+=($!)
}
recv_wait() {
    for p in "${RECV[@]}"; do wait "$p" || true; done
    RECV=()
}
out() { echo "$HV_DIR/recv.$1.$2"; }

hv_log "trunk: T's VLAN-10 tagged frames reach A untagged, none reach B"
recv_bg "$A" t10a
recv_bg "$B" t10a
ra=$(out "$A" t10a)
rb=$(out "$B" t10a)
sleep 0.5
ip netns exec "$T" $L2 send eth0 --dst 02:00:00:31:00:01 --vlan 10 --count 5 --tag t10a >/dev/null
recv_wait
grep -q "vlan 0 frames 5" "$ra" || hv_fail "A did not get T's 5 VLAN-10 frames untagged: $(cat "$ra")"
grep -q "none" "$rb" || hv_fail "B (VLAN 20) saw VLAN-10 frames: $(cat "$rb")"
vctl fdb-show sw
vctl fdb-show sw | grep -qE "$T/eth0 +10 +02:00:00:31:00:09" || hv_fail "T not learned in VLAN 10"

hv_log "trunk: A's frames reach T tagged 10, B's tagged 20"
recv_bg "$T" back
rt=$(out "$T" back)
sleep 0.5
ip netns exec "$A" $L2 send eth0 --dst 02:00:00:31:00:09 --count 3 --tag back >/dev/null
ip netns exec "$B" $L2 send eth0 --dst 02:00:00:31:00:09 --count 4 --tag back >/dev/null
recv_wait
grep -q "vlan 10 frames 3" "$rt" && grep -q "vlan 20 frames 4" "$rt" ||
    hv_fail "T did not get A's frames in VLAN 10 and B's in VLAN 20: $(cat "$rt")"
ip netns exec "$T" $L2 send eth0 --dst 02:00:00:31:00:02 --vlan 20 --count 1 --tag l20 >/dev/null
sleep 0.3
vctl fdb-show sw | grep -qE "$T/eth0 +20 +02:00:00:31:00:09" || hv_fail "T's MAC not learned in VLAN 20"

hv_log "native VLAN: T's untagged frames are VLAN 30 (T alone there: counted, delivered nowhere)"
d0=$(hv_counter "$T/eth0" "['drops']['no_destination']")
recv_bg "$A" nat
recv_bg "$B" nat
ra=$(out "$A" nat)
rb=$(out "$B" nat)
sleep 0.5
ip netns exec "$T" $L2 send eth0 --dst ff:ff:ff:ff:ff:ff --count 3 --tag nat >/dev/null
recv_wait
grep -q none "$ra" && grep -q none "$rb" || hv_fail "native-VLAN frames leaked into VLAN 10/20"
d1=$(hv_counter "$T/eth0" "['drops']['no_destination']")
[ "$d1" -ge $((d0 + 3)) ] || hv_fail "T's VLAN-30 frames were not counted ($d0 -> $d1)"

hv_log "a trunk may not send VLANs it does not carry"
v0=$(hv_counter "$T/eth0" "['drops']['vlan']")
ip netns exec "$T" $L2 send eth0 --dst 02:00:00:31:00:01 --vlan 40 --count 2 --tag v40 >/dev/null
sleep 0.3
v1=$(hv_counter "$T/eth0" "['drops']['vlan']")
[ "$v1" -ge $((v0 + 2)) ] || hv_fail "VLAN-40 frames from the trunk not counted ($v0 -> $v1)"

hv_log "double tagging (VLAN 10 outside, 20 inside) from the trunk: dropped, counted"
v0=$(hv_counter "$T/eth0" "['drops']['vlan']")
recv_bg "$A" qinq
recv_bg "$B" qinq
ra=$(out "$A" qinq)
rb=$(out "$B" qinq)
sleep 0.5
ip netns exec "$T" $L2 send eth0 --dst ff:ff:ff:ff:ff:ff --vlan 10 --inner-vlan 20 --count 3 --tag qinq >/dev/null
recv_wait
grep -q none "$ra" && grep -q none "$rb" || hv_fail "a double-tagged frame got through: A $(cat "$ra"), B $(cat "$rb")"
v1=$(hv_counter "$T/eth0" "['drops']['vlan']")
[ "$v1" -ge $((v0 + 3)) ] || hv_fail "double-tagged frames were not counted ($v0 -> $v1)"

hv_log "a guest on an access port may not tag"
v0=$(hv_counter "$A/eth0" "['drops']['vlan']")
recv_bg "$B" hop
rb=$(out "$B" hop)
sleep 0.5
ip netns exec "$A" $L2 send eth0 --dst 02:00:00:31:00:02 --vlan 20 --count 3 --tag hop >/dev/null
recv_wait
grep -q none "$rb" || hv_fail "A hopped into VLAN 20 by tagging: $(cat "$rb")"
v1=$(hv_counter "$A/eth0" "['drops']['vlan']")
[ "$v1" -ge $((v0 + 3)) ] || hv_fail "A's tagged frames were not counted as VLAN drops ($v0 -> $v1)"

hv_log "a priority tag in front of a VLAN tag is still that VLAN: A (access 10) cannot hop with it"
v0=$(hv_counter "$A/eth0" "['drops']['vlan']")
for ns in "$B" "$C" "$T"; do recv_bg "$ns" phop; done
sleep 0.5
ip netns exec "$A" $L2 send eth0 --dst ff:ff:ff:ff:ff:ff --tags 8100:0,8100:20 --count 3 --tag phop >/dev/null
ip netns exec "$A" $L2 send eth0 --dst ff:ff:ff:ff:ff:ff --tags 8100:0xc000,8100:0,8100:20 --count 2 --tag phop >/dev/null
recv_wait
for ns in "$B" "$C" "$T"; do
    grep -q none "$(out "$ns" phop)" || hv_fail "a priority-tagged VLAN-20 frame from A reached $ns: $(cat "$(out "$ns" phop)")"
done
v1=$(hv_counter "$A/eth0" "['drops']['vlan']")
[ "$v1" -ge $((v0 + 5)) ] || hv_fail "priority tag + VLAN 20 from A not counted as VLAN drops ($v0 -> $v1)"

hv_log "802.1ad and 0x9100 outer tags are refused and counted"
v0=$(hv_counter "$A/eth0" "['drops']['vlan']")
for ns in "$B" "$C" "$T"; do recv_bg "$ns" stag; done
sleep 0.5
ip netns exec "$A" $L2 send eth0 --dst ff:ff:ff:ff:ff:ff --tags 88a8:20 --count 2 --tag stag >/dev/null
ip netns exec "$A" $L2 send eth0 --dst ff:ff:ff:ff:ff:ff --tags 9100:10 --count 2 --tag stag >/dev/null
recv_wait
for ns in "$B" "$C" "$T"; do
    grep -q none "$(out "$ns" stag)" || hv_fail "an 802.1ad/0x9100-tagged frame from A reached $ns: $(cat "$(out "$ns" stag)")"
done
v1=$(hv_counter "$A/eth0" "['drops']['vlan']")
[ "$v1" -ge $((v0 + 4)) ] || hv_fail "802.1ad/0x9100 frames from A not counted ($v0 -> $v1)"

hv_log "priority tags are taken out: A's priority-tagged frames reach C untagged and T tagged 10 only"
recv_bg "$C" prio
recv_bg "$T" prio
sleep 0.5
ip netns exec "$A" $L2 send eth0 --dst ff:ff:ff:ff:ff:ff --tags 8100:0x4000,8100:0 --count 3 --tag prio >/dev/null
recv_wait
grep -qx "vlan 0 frames 3" "$(out "$C" prio)" || hv_fail "C did not get A's 3 priority-tagged frames untagged: $(cat "$(out "$C" prio)")"
grep -qx "vlan 10 frames 3" "$(out "$T" prio)" || hv_fail "T did not get A's priority-tagged frames tagged 10 alone: $(cat "$(out "$T" prio)")"

hv_log "from the trunk, priority tags in front of VLAN 20 put a frame on VLAN 20"
recv_bg "$B" tp20
recv_bg "$A" tp20
sleep 0.5
ip netns exec "$T" $L2 send eth0 --dst ff:ff:ff:ff:ff:ff --tags 8100:0,8100:20 --count 3 --tag tp20 >/dev/null
recv_wait
grep -qx "vlan 0 frames 3" "$(out "$B" tp20)" || hv_fail "B did not get T's VLAN-20 frames untagged: $(cat "$(out "$B" tp20)")"
grep -q none "$(out "$A" tp20)" || hv_fail "T's VLAN-20 frames reached A (VLAN 10): $(cat "$(out "$A" tp20)")"

hv_log "back to untagged: A and B talk again"
vctl nic-set "$A" eth0 --vlan 20
ip netns exec "$A" ping -c 2 -i 0.2 -W 2 10.31.0.2 >/dev/null || hv_fail "A cannot reach B after joining VLAN 20"
vctl stats sw
hv_pass "VLANs"
