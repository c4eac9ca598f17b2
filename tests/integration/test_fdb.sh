#!/usr/bin/env bash
# FDB: aging (a short --fdb-aging expires idle entries), table size
# (--fdb-max: learning stops at the limit, frames still flood), static
# entries (survive aging, flush and restart, win over learning), flush,
# MAC moves (a MAC seen on another port moves there).
# Usage: test_fdb.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
hv_start
L2="python3 $(dirname "$0")/l2.py"
vctl switch-add sw --type private --fdb-aging 10
hv_vm a sw 10.71.0.1/24 02:00:00:71:00:01
hv_vm b sw 10.71.0.2/24 02:00:00:71:00:02
A=$(hv_vm_name a) B=$(hv_vm_name b)
vctl nic-set "$A" eth0 --mac-spoofing on   # A plays several hosts below
ip netns exec "$A" ping -c 2 -i 0.2 -W 2 10.71.0.2 >/dev/null || hv_fail "no basic connectivity"
entries() { vctl --json switch-show sw | python3 -c "import json,sys; print(json.load(sys.stdin)['fdb_entries'])"; }

hv_log "aging: entries of silent hosts expire after ~10 s"
ip netns exec "$A" $L2 send eth0 --dst 02:00:00:71:00:02 --src 02:00:00:71:aa:01 --count 1 --tag age >/dev/null
sleep 0.5
vctl fdb-show sw | grep -q "02:00:00:71:aa:01" || hv_fail "02:00:00:71:aa:01 not learned"
for _ in $(seq 30); do
    vctl fdb-show sw | grep -q "02:00:00:71:aa:01" || break
    sleep 1
done
vctl fdb-show sw | grep -q "02:00:00:71:aa:01" && hv_fail "a silent entry did not age out"

hv_log "static entry: kept through aging and flush, not moved by learning"
vctl fdb-add sw 02:00:00:71:bb:01 "$B/eth0"
vctl fdb-show sw | grep -qE "$B/eth0 +0 +02:00:00:71:bb:01 +static" || hv_fail "static entry missing"
ip netns exec "$A" $L2 send eth0 --dst 02:00:00:71:00:02 --src 02:00:00:71:bb:01 --count 2 --tag mv >/dev/null
sleep 0.5
vctl fdb-flush sw
vctl fdb-show sw | grep -qE "$B/eth0 +0 +02:00:00:71:bb:01 +static" || hv_fail "static entry moved or flushed"

hv_log "MAC move: a learned MAC follows the port it is seen on"
ip netns exec "$A" $L2 send eth0 --dst 02:00:00:71:00:02 --src 02:00:00:71:cc:01 --count 1 --tag m1 >/dev/null
sleep 0.3
vctl fdb-show sw | grep -qE "$A/eth0 +0 +02:00:00:71:cc:01" || hv_fail "cc:01 not learned on A"
vctl nic-set "$B" eth0 --mac-spoofing on
ip netns exec "$B" $L2 send eth0 --dst 02:00:00:71:00:01 --src 02:00:00:71:cc:01 --count 1 --tag m2 >/dev/null
sleep 0.3
vctl fdb-show sw | grep -qE "$B/eth0 +0 +02:00:00:71:cc:01" || hv_fail "cc:01 did not move to B"

hv_log "table size: with --fdb-max 16, learning stops at 16 and frames still flood"
vctl switch-set sw --fdb-max 16
for i in $(seq 1 40); do
    ip netns exec "$A" $L2 send eth0 --dst 02:00:00:71:00:02 --src "02:00:00:71:dd:$(printf %02x $i)" --count 1 --tag full >/dev/null
done
sleep 0.5
n=$(entries)
[ "$n" -le 16 ] || hv_fail "$n entries in a 16-entry table"
full=$(vctl --json switch-show sw | python3 -c "import json,sys; print(json.load(sys.stdin)['fdb_full'])")
[ "$full" -gt 0 ] || hv_fail "learning refusals not counted"
ip netns exec "$A" ping -c 2 -i 0.2 -W 2 10.71.0.2 >/dev/null || hv_fail "a full table broke forwarding"
vctl fdb-show sw | grep -q "02:00:00:71:bb:01.*static" || hv_fail "the resize lost the static entry"

hv_log "static entries survive a restart; fdb-del removes one"
hv_stop
hv_start
vctl fdb-show sw | grep -qE "$B/eth0 +0 +02:00:00:71:bb:01 +static" || hv_fail "static entry lost across restart"
vctl fdb-del sw 02:00:00:71:bb:01
vctl fdb-show sw | grep -q "02:00:00:71:bb:01" && hv_fail "fdb-del did not remove the entry"
hv_pass "FDB"
