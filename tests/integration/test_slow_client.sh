#!/usr/bin/env bash
# Control-socket clients that do not read their answers, or read them
# slowly, never hold vswitchd's control thread, which also serves the
# guests' hypercalls. While 8 clients pipeline stats requests and never
# read, and 8 more read a trickle: another client is answered at once, a VM
# starts and its NIC comes up (its VMBus set-up runs on the control thread),
# and running VMs keep talking. The clients that never read are dropped
# after the 5 s send deadline, and counted (stats: control.slow_clients).
# Usage: test_slow_client.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
hv_start
vctl switch-add sw --type private
hv_vm a sw 10.57.0.1/24 02:00:00:57:00:01
hv_vm b sw 10.57.0.2/24 02:00:00:57:00:02
A=$(hv_vm_name a) B=$(hv_vm_name b) C=$(hv_vm_name c)
ip netns exec "$A" ping -c 2 -i 0.2 -W 2 10.57.0.2 >/dev/null || hv_fail "no basic connectivity"
HV_NS+=("$C")
vctl vm-add "$C" >/dev/null
vctl nic-add "$C" eth0 --switch sw --mac 02:00:00:57:00:03 >/dev/null

cat >"$HV_DIR/slow.py" <<'PY'
import os, select, socket, sys, time
path, mute, trickle = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
req = b'{"jsonrpc":"2.0","id":1,"method":"stats"}\n'
conns = []
for i in range(mute + trickle):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.setblocking(False)
    conns.append((s, i >= mute))
# Keep every request pipe full; the trickle readers take 16 KiB per
# half-second of their answers, the others nothing.
stuck = set()
next_read = time.monotonic()
closed = set()
while True:
    for s, reads in conns:
        if s in closed:
            continue
        try:
            s.send(req * 64)
        except BlockingIOError:
            stuck.add(s)
        except OSError:
            closed.add(s)
    if len(stuck | closed) == len(conns) and not os.path.exists(path + ".stuck"):
        open(path + ".stuck", "w").close()
    if time.monotonic() >= next_read:
        next_read += 0.5
        for s, reads in conns:
            if reads and s not in closed:
                try:
                    if not s.recv(16384):
                        closed.add(s)
                except BlockingIOError:
                    pass
                except OSError:
                    closed.add(s)
    time.sleep(0.02)
PY
python3 "$HV_DIR/slow.py" "$HV_SOCK" 8 8 &
HV_PIDS+=($!)
for _ in $(seq 100); do [ -e "$HV_SOCK.stuck" ] && break; sleep 0.05; done
[ -e "$HV_SOCK.stuck" ] || hv_fail "the slow clients never filled their sockets"
t0=$(date +%s.%N)

hv_log "another client is answered at once, again and again"
for i in 1 2 3; do
    vctl --timeout 2 switch-list >/dev/null || hv_fail "switch-list not answered within 2 s (round $i)"
    sleep 0.3
done
hv_log "a VM starts and its NIC comes up meanwhile (hypercalls on the control thread)"
vctl --timeout 2 vm-start "$C" >/dev/null || hv_fail "vm-start not answered within 2 s"
hv_wait_link "$C" eth0
hv_quiet_ns "$C"
ip netns exec "$C" ip addr add 10.57.0.3/24 dev eth0
ip netns exec "$C" ping -c 3 -i 0.2 -W 2 10.57.0.1 >/dev/null || hv_fail "the new VM cannot reach A"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 10.57.0.2 >/dev/null || hv_fail "A lost B"
took=$(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)")
echo "served everything in $took s while 16 clients misbehaved"

hv_log "past the 5 s deadline the clients that never read are dropped, and counted"
dropped=0
for _ in $(seq 40); do
    dropped=$(vctl --timeout 2 --json stats | python3 -c "import json,sys; print(json.load(sys.stdin)['control']['slow_clients'])")
    [ "$dropped" -ge 8 ] && break
    sleep 0.25
done
echo "slow clients dropped: $dropped"
[ "$dropped" -ge 8 ] || hv_fail "only $dropped of the 8 clients that never read were dropped"
vctl stats | grep -q "slow clients dropped" || hv_fail "vswitch-ctl stats does not show dropped clients"
grep -q "control client dropped: an answer unread" "$HV_LOG" || hv_fail "no log line for a dropped client"
vctl --timeout 2 vm-list >/dev/null || hv_fail "not answered after the drops"
kill -0 "$HV_VSD_PID" || hv_fail "vswitchd died"
hv_pass "slow control clients"
