#!/usr/bin/env bash
# kill -9 of one VM's worker (hv-vm) during traffic: vswitchd notices (the VM
# is reported crashed, its port goes down, the event is logged), keeps
# running, and the other VMs keep talking; the crashed VM starts again.
# Usage: test_vm_crash.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
command -v iperf3 >/dev/null || hv_skip "needs iperf3"
hv_start

vctl switch-add sw1 --type private
hv_vm a sw1 10.78.0.1/24 02:00:00:78:00:01
hv_vm b sw1 10.78.0.2/24 02:00:00:78:00:02
hv_vm c sw1 10.78.0.3/24 02:00:00:78:00:03
A=$(hv_vm_name a) B=$(hv_vm_name b) C=$(hv_vm_name c)
ip netns exec "$B" ping -c 2 -i 0.2 -W 2 10.78.0.1 >/dev/null || hv_fail "B cannot ping A"

hv_log "traffic A -> B, then kill -9 A's worker"
ip netns exec "$B" iperf3 -s -1 -p 5202 >/dev/null 2>&1 &
HV_PIDS+=($!)
sleep 0.5
ip netns exec "$A" iperf3 -c 10.78.0.2 -p 5202 -t 10 >/dev/null 2>&1 &
HV_PIDS+=($!)
sleep 2
pid=$(vctl --json vm-list | python3 -c "import json,sys; print([v['pid'] for v in json.load(sys.stdin)['vms'] if v['name']=='$A'][0])")
[ "$pid" -gt 0 ] || hv_fail "no worker pid for $A"
kill -9 "$pid"

for _ in $(seq 50); do
    state=$(vctl --json vm-list | python3 -c "import json,sys; print([v['state'] for v in json.load(sys.stdin)['vms'] if v['name']=='$A'][0])")
    [ "$state" = crashed ] && break
    sleep 0.1
done
[ "$state" = crashed ] || hv_fail "VM $A is '$state', expected crashed"
kill -0 "$HV_VSD_PID" || hv_fail "vswitchd died with the VM"
grep -q "VM $A crashed: its worker was killed by signal 9" "$HV_LOG" || hv_fail "crash not logged"
link=$(hv_counter "$A/eth0" "['link']")
[ "$link" = down ] || hv_fail "A's port is $link after the crash"

hv_log "the others carry on"
ip netns exec "$B" ping -c 3 -i 0.2 -W 2 10.78.0.3 >/dev/null || hv_fail "B cannot reach C after A crashed"
ip netns exec "$C" ping -c 3 -i 0.2 -W 2 10.78.0.2 >/dev/null || hv_fail "C cannot reach B after A crashed"

hv_log "A starts again"
vctl vm-start "$A" >/dev/null
hv_wait_link "$A" eth0
hv_quiet_ns "$A"
ip netns exec "$A" ip addr add 10.78.0.1/24 dev eth0 2>/dev/null || true
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 10.78.0.3 >/dev/null || hv_fail "restarted A cannot reach C"
vctl vm-list
hv_pass "VM crash"
