#!/usr/bin/env bash
# Restarting vswitchd restores switches, VMs and NICs from its state file,
# and traffic flows again. Also: the state survives kill -9 of vswitchd.
# Usage: test_restart.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
hv_start

vctl switch-add sw1 --type private --mtu 1500
hv_vm a sw1 10.79.0.1/24 02:00:00:79:00:01
hv_vm b sw1 10.79.0.2/24 02:00:00:79:00:02
A=$(hv_vm_name a) B=$(hv_vm_name b)
ip netns exec "$A" ping -c 2 -i 0.2 -W 2 10.79.0.2 >/dev/null || hv_fail "no traffic before restart"
before=$(vctl --json nic-list)

for how in TERM KILL; do
    hv_log "restart after SIG$how"
    kill -"$how" "$HV_VSD_PID"
    for _ in $(seq 50); do kill -0 "$HV_VSD_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$HV_VSD_PID" 2>/dev/null && hv_fail "vswitchd did not exit on SIG$how"
    # The VMs' workers go with vswitchd (they are its child partitions).
    for _ in $(seq 50); do pgrep -f -- "hv-vm --name $A" >/dev/null || break; sleep 0.1; done
    hv_start
    after=$(vctl --json nic-list)
    python3 - "$before" "$after" <<'PY' || hv_fail "configuration changed across the restart"
import json, sys
strip = lambda s: sorted((n['vm'], n['nic'], n['switch'], n['mac'], n['mtu']) for n in json.loads(s)['nics'])
sys.exit(0 if strip(sys.argv[1]) == strip(sys.argv[2]) else 1)
PY
    vctl switch-list | grep -q sw1 || hv_fail "switch lost"
    for vm in "$A" "$B"; do
        hv_wait_link "$vm" eth0
        hv_quiet_ns "$vm"
    done
    # The guests' addresses lived on their NICs, which were re-created:
    # configure them again, as a guest does when its NIC reappears.
    ip netns exec "$A" ip addr replace 10.79.0.1/24 dev eth0
    ip netns exec "$B" ip addr replace 10.79.0.2/24 dev eth0
    ip netns exec "$A" ping -c 3 -i 0.2 -W 2 10.79.0.2 >/dev/null || hv_fail "no traffic after SIG$how restart"
done
hv_pass "restart"
