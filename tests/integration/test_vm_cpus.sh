#!/usr/bin/env bash
# Virtual processors: a VM added with --cpus 2 is a partition with two VPs;
# hv-vm spreads its NICs over them round-robin (as Linux spreads NIC
# channels over CPUs), so its second NIC's channel interrupts VP 1, and
# traffic flows over both NICs, event-driven (ping at 10 ms intervals lets
# the guest sleep between frames, so every frame is an interrupt). --cpus 0,
# 65 and more than the host's CPUs are clear errors that change nothing.
# The CPU count is kept in the state file; a file without it (from before
# VMs had CPUs) loads as 1. Usage: test_vm_cpus.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
host_cpus=$(getconf _NPROCESSORS_ONLN)
[ "$host_cpus" -ge 2 ] || hv_skip "needs a host with 2 CPUs or more (has $host_cpus)"
hv_start

vctl switch-add sw1 --type private
vctl switch-add sw2 --type private
sum() { sha256sum "$HV_STATE" | cut -d' ' -f1; }
before=$(sum)

# expect_error STATUS "what the message must mention" vswitch-ctl-args...
expect_error() {
    local status="$1" want="$2"
    shift 2
    local err rc=0
    err=$(vctl "$@" 2>&1 >/dev/null) || rc=$?
    [ "$rc" -eq "$status" ] || hv_fail "'vswitch-ctl $*': status $rc, expected $status ($err)"
    [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || hv_fail "'vswitch-ctl $*': not one line: $err"
    [[ "$err" == *"$want"* ]] || hv_fail "'vswitch-ctl $*': '$err' does not mention '$want'"
    [ "$(sum)" = "$before" ] || hv_fail "'vswitch-ctl $*' changed the state file"
    echo "ok: vswitch-ctl $* -> $err"
}
hv_log "bad --cpus"
X=$(hv_vm_name x)
expect_error 2 "1..64" vm-add "$X" --cpus 0
expect_error 2 "1..64" vm-add "$X" --cpus 65
if [ "$host_cpus" -lt 64 ]; then
    expect_error 1 "$host_cpus CPUs" vm-add "$X" --cpus $((host_cpus + 1))
fi
vctl vm-list | grep -q "$X" && hv_fail "a refused vm-add left a VM"

hv_log "VM a: 2 CPUs, NICs on sw1 and sw2; VM b: 1 CPU, the same"
A=$(hv_vm_name a) B=$(hv_vm_name b)
HV_NS+=("$A" "$B")
vctl vm-add "$A" --cpus 2 >/dev/null
vctl vm-add "$B" >/dev/null
for vm in "$A" "$B"; do
    n=$([ "$vm" = "$A" ] && echo 1 || echo 2)
    vctl nic-add "$vm" eth0 --switch sw1 --mac "02:00:00:7c:00:0$n" >/dev/null
    vctl nic-add "$vm" eth1 --switch sw2 --mac "02:00:00:7c:01:0$n" >/dev/null
done
# vm_cpus VM: the CPU count vm-list reports.
vm_cpus() {
    vctl --json vm-list | python3 -c "import json,sys; print([v['cpus'] for v in json.load(sys.stdin)['vms'] if v['name'] == '$1'][0])"
}
[ "$(vm_cpus "$A")" = 2 ] || hv_fail "vm-list: $A has $(vm_cpus "$A") CPUs, not 2"
[ "$(vm_cpus "$B")" = 1 ] || hv_fail "vm-list: $B has $(vm_cpus "$B") CPUs, not 1"
vctl vm-list | grep -q "^$A .* 2 " || hv_fail "vm-list table has no CPUS 2 for $A: $(vctl vm-list)"

# address: wait for both VMs' NICs (re-created when a VM starts), address them.
address() {
    for vm in "$A" "$B"; do
        hv_wait_link "$vm" eth0
        hv_wait_link "$vm" eth1
        hv_quiet_ns "$vm"
        ip netns exec "$vm" sysctl -qw net.ipv6.conf.eth1.disable_ipv6=1 2>/dev/null || true
    done
    ip netns exec "$A" ip addr replace 10.124.0.1/24 dev eth0
    ip netns exec "$B" ip addr replace 10.124.0.2/24 dev eth0
    ip netns exec "$A" ip addr replace 10.124.1.1/24 dev eth1
    ip netns exec "$B" ip addr replace 10.124.1.2/24 dev eth1
}
# target_vp VM/NIC: the VP the NIC's channel interrupts, as the root sees it.
target_vp() { hv_counter "$1" "['guest']['target_vp']"; }
# traffic: pings over both NICs, event-driven. B pings A first: A's guest
# is asleep and hears of each frame only through its NIC's interrupt, on
# that NIC's VP (a lost interrupt is a lost ARP request or ping).
traffic() {
    for net in 0 1; do
        ip netns exec "$B" ping -c 5 -i 0.2 -W 2 "10.124.$net.1" >/dev/null ||
            hv_fail "$B cannot reach $A/eth$net (VP $(target_vp "$A/eth$net")) $1"
    done
    for net in 0 1; do
        ip netns exec "$A" ping -c 50 -i 0.01 -W 2 "10.124.$net.2" >/dev/null ||
            hv_fail "no traffic from $A/eth$net (VP $(target_vp "$A/eth$net")) $1"
    done
}
vctl vm-start "$A" >/dev/null
vctl vm-start "$B" >/dev/null
address
vps="$(target_vp "$A/eth0") $(target_vp "$A/eth1")"
echo "$A: eth0 on VP ${vps% *}, eth1 on VP ${vps#* }; $B: both on VP $(target_vp "$B/eth0")"
[ "$vps" = "0 1" ] || hv_fail "$A's NICs are on VPs $vps, expected 0 and 1 (round-robin)"
[ "$(target_vp "$B/eth0") $(target_vp "$B/eth1")" = "0 0" ] || hv_fail "$B (1 CPU) has a NIC off VP 0"
traffic ""

hv_log "restart: the CPU count comes back from the state file"
python3 -c "import json,sys; v=[v for v in json.load(open(sys.argv[1]))['vms'] if v['name']==sys.argv[2]][0]; sys.exit(0 if v['cpus']==2 else 1)" \
    "$HV_STATE" "$A" || hv_fail "the state file does not say $A has 2 CPUs"
hv_stop
hv_start
[ "$(vm_cpus "$A")" = 2 ] || hv_fail "after a restart $A has $(vm_cpus "$A") CPUs"
address
[ "$(target_vp "$A/eth1")" = 1 ] || hv_fail "after a restart $A/eth1 is not on VP 1"
traffic "after a restart"

hv_log "a state file without CPU counts loads them as 1"
hv_stop
python3 - "$HV_STATE" <<'PY' || hv_fail "cannot rewrite the state file"
import json, sys
st = json.load(open(sys.argv[1]))
for vm in st['vms']:
    vm.pop('cpus', None)
json.dump(st, open(sys.argv[1], 'w'))
PY
hv_start
[ "$(vm_cpus "$A")" = 1 ] || hv_fail "a VM without a saved CPU count has $(vm_cpus "$A") CPUs"
address
[ "$(target_vp "$A/eth0") $(target_vp "$A/eth1")" = "0 0" ] || hv_fail "a 1-CPU $A has a NIC off VP 0"
traffic "with 1 CPU"
hv_pass "vm cpus"
