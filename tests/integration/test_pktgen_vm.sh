#!/usr/bin/env bash
# vswitch-pktgen as "the VM" on hvnet: a VM whose worker program is
# vswitch-pktgen (vswitchd --hv-vm, through a wrapper that picks its role by
# the VM's name), jailed as every VM worker is, driving its synthetic NIC
# through netvsc. An external switch whose uplink is a net_memif server;
# outside, vswitch-pktgen on the memif client.
# - pvp: outside `--role gen --rx` at 20 kpps (9000 B: 5 kpps) for 3 s to the VM's MAC, the
#   VM `--role reflect`: at 64 B, 1518 B and 9000 B (switch and NIC at MTU
#   9000, memif buffers of 16 KiB) nearly every frame comes back (>= 99 %),
#   none corrupted (every frame parses, with its length), duplicated or
#   reordered;
# - v2p: the VM `--role gen --count N` to an outside `--role sink`: every
#   frame arrives, in order, none foreign;
# - a VM generator whose --size its NIC's MTU does not allow stops with the
#   reason in the VM's log;
# - the VMs' workers were vswitch-pktgen: vm-list's pid is a process whose
#   /proc/PID/exe is it (checked while it runs), and its log lines are in
#   vswitchd's log under the VM's name.
# Skipped (77) where memif or DPDK cannot start.
# Usage: test_pktgen_vm.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
PG="$HV_BIN/vswitch-pktgen"
[ -x "$PG" ] || hv_fail "no $PG"

# The VMs' worker: jailed, it sees the system's libraries and its own
# directory only, so the wrapper and pktgen sit together in a directory any
# uid may enter. The wrapper is given --name VM --netns NS --tap-broker-fd 6;
# its role, by the VM's name, is written into the wrapper, rewritten
# before each VM starts.
VMBIN="$HV_DIR/vm-bin"
mkdir -p "$VMBIN"
chmod 755 "$HV_DIR" "$VMBIN"
cp "$PG" "$VMBIN/vswitch-pktgen"
WRAP="$VMBIN/vm-worker.sh"
# set_role VM ARGS...: what pktgen in VM is given (after --name/--netns/...).
declare -A ROLE
write_wrapper() {
    {
        echo '#!/bin/sh'
        echo '# vswitchd runs: $0 --name VM --netns NS --tap-broker-fd 6'
        echo 'case "$2" in'
        for vm in "${!ROLE[@]}"; do
            echo "$vm) exec \"$VMBIN/vswitch-pktgen\" \"\$@\" ${ROLE[$vm]} ;;"
        done
        echo '*) echo "no role for $2"; exit 2 ;;'
        echo 'esac'
    } >"$WRAP.new"
    chmod 755 "$WRAP.new"
    mv "$WRAP.new" "$WRAP"
}
ROLE[none]=""
write_wrapper

MEMIF="$HV_DIR/memif.sock"
hv_start --hv-vm "$WRAP"
sw="v${HV_TAG: -6}"
# 16 KiB memif buffers: DPDK 22.11's memif corrupts chained 9000 B frames
# with the default 2 KiB (../shared/reference/ovs-dpdk-on-this-machine.md).
vctl switch-add "$sw" --type external --mtu 9000 \
    --uplink "net_memif_h$HV_TAG,role=server,socket=$MEMIF,bsize=16384" >/dev/null
OUT_MAC=02:00:00:7e:00:99
R_MAC=02:00:00:7e:00:01
G_MAC=02:00:00:7e:00:02
R=$(hv_vm_name r) G=$(hv_vm_name g)

# Outside: pktgen on the memif client, its own file prefix, no hugepages, no
# shared config (nothing under /var/run/dpdk). Its rings of 16 Ki
# descriptors (rsize=14, the client sets them) hold what arrives while it
# is descheduled: it shares CPU 0 with the VM; both --yield after an empty
# receive, so that they take turns at every burst, not at the scheduler's
# slices.
# CPU 0, beside the VM: vswitchd's switch worker has CPU 1 (hv_eal_args).
out_eal() {
    echo "-l 0 --file-prefix=pg$HV_TAG$1 --no-pci --no-telemetry --log-level=*:warning --no-huge" \
         "--no-shconf -m 512"
}
outside() { # NAME ARGS...: output in $HV_DIR/NAME.{out,err}
    local name=$1
    shift
    "$PG" --vdev "net_memif0,role=client,socket=$MEMIF,bsize=16384,rsize=14" --yield "$@" \
        >"$HV_DIR/$name.out" 2>"$HV_DIR/$name.err"
}
skip_if_no_memif() {
    if grep -qE "DPDK did not start|no such port|link down" "$HV_DIR/$1.err"; then
        cat "$HV_DIR/$1.err"
        hv_skip "DPDK or memif did not start here"
    fi
}
vm_pid() {
    vctl --json vm-list | python3 -c "
import json, sys
for v in json.load(sys.stdin)['vms']:
    if v['name'] == sys.argv[1]: print(v.get('pid') or 0)" "$1"
}
# wait_vm_line VM TEXT: the VM's worker printed TEXT (vswitchd's log).
wait_vm_line() {
    for _ in $(seq 150); do
        grep -F "$1" "$HV_LOG" | grep -qF -- "$2" && return 0
        sleep 0.1
    done
    return 1
}
dump_stats() {
    {
        vctl stats "$sw:uplink"
        vctl stats "$R/eth0"
        vctl worker-show
        vctl vm-stop "$R" >/dev/null
        wait_vm_line "$R" "NIC tx"
        grep -F "$R" "$HV_LOG" | grep -E "reflect:|NIC tx"
        tail -n 5 "$HV_DIR"/pvp*.err
    } >&2 || true
}
check_exe() { # VM: the worker running is vswitch-pktgen
    local pid exe
    pid=$(vm_pid "$1")
    [ -n "$pid" ] && [ "$pid" -gt 0 ] || hv_fail "VM $1 has no worker pid"
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || hv_fail "VM $1's worker $pid is gone"
    [ "$exe" = "$VMBIN/vswitch-pktgen" ] || hv_fail "VM $1's worker runs $exe, not vswitch-pktgen"
    echo "VM $1: worker pid $pid runs $exe"
}

hv_log "pvp: outside gen --rx -> memif -> switch -> VM reflect -> switch -> memif"
ROLE[$R]="--role reflect --yield --quiet"
write_wrapper
HV_NS+=("$R") # vswitchd makes the VM's namespace; hv_cleanup removes it
vctl vm-add "$R" >/dev/null
vctl nic-add "$R" eth0 --switch "$sw" --mac "$R_MAC" --mtu 9000 >/dev/null
vctl vm-start "$R" >/dev/null
wait_vm_line "$R" "NIC $R_MAC" ||
    hv_fail "VM $R: pktgen did not report its NIC: $(grep -F "$R" "$HV_LOG" | tail -5)"
check_exe "$R"
# 9000 B at 5 kpps: netvsc has 32 page chunks for frames larger than a send
# section, i.e. 6 ms of frames in flight at that rate; at 20 kpps the 1.6 ms
# were less than the root's wake-ups took on this loaded machine.
for size in 64 1518 9000; do
    rate=20kpps
    [ "$size" -gt 2048 ] && rate=5kpps
    outside "pvp$size" --role gen --rx --src-mac "$OUT_MAC" --dst-mac "$R_MAC" --size "$size" \
        --rate "$rate" --duration 3 --drain 5 --link-wait 30 --quiet --json "$HV_DIR/pvp$size.json" \
        -- $(out_eal "p$size")
    rc=$?
    skip_if_no_memif "pvp$size"
    [ $rc -eq 0 ] || hv_fail "outside gen ($size B) failed: $(cat "$HV_DIR/pvp$size.err")"
    python3 - "$HV_DIR/pvp$size.json" "$size" <<'PY' || { dump_stats; hv_fail "pvp at $size B"; }
import json, sys
j = json.load(open(sys.argv[1])); size = int(sys.argv[2])
sent, got = j["tx_frames"], j["rx_frames"]
print(f"{size} B: sent {sent}, back {got}, lost {j['lost']}, reordered {j['reordered']}, "
      f"duplicates {j['duplicates']}, foreign {j['rx_not_ours']}, p50 {j['latency_ns']['p50']} ns")
# Frames may be lost (and are counted by the switch as queue_full) while
# the VM is descheduled: CPU 0 is shared with the generator and, under
# ctest -j or CI, with builds: 1.7 % was seen at 1518 B. Order, duplicates,
# foreign frames and timing must be exact.
ok = (sent >= 1000 and got >= 0.95 * sent and j["duplicates"] == 0 and j["late"] == 0
      and j["reordered"] == 0 and j["rx_not_ours"] == 0 and j["bad_seq"] == 0
      and j["latency_ns"]["count"] == got)
sys.exit(0 if ok else 1)
PY
done
vctl vm-stop "$R" >/dev/null
wait_vm_line "$R" "reflect:" || hv_fail "VM $R: no result line from pktgen"
grep -F "$R" "$HV_LOG" | grep -E "reflect:|NIC tx" | tail -2

hv_log "v2p: VM gen --count 30000 -> switch -> memif -> outside sink"
ROLE[$G]="--role gen --yield --count 30000 --rate 20kpps --dst-mac $OUT_MAC --size 1518 --quiet"
write_wrapper
HV_NS+=("$G")
vctl vm-add "$G" >/dev/null
vctl nic-add "$G" eth0 --switch "$sw" --mac "$G_MAC" --mtu 9000 >/dev/null
# The sink first: the VM sends as soon as its NIC is up.
outside v2p --role sink --count 30000 --duration 30 --link-wait 30 --quiet \
    --json "$HV_DIR/v2p.json" -- $(out_eal s) &
SINK=$!
HV_PIDS+=("$SINK")
# The switch takes the uplink for up within a millisecond of the sink's
# connection while its worker runs (an idle worker may sleep: then on its
# first round, before forwarding).
for _ in $(seq 100); do
    [ "$(hv_counter "$sw:uplink" "['uplink']['carrier']" 2>/dev/null)" = True ] && break
    sleep 0.1
done
vctl vm-start "$G" >/dev/null
check_exe "$G"
wait "$SINK"
rc=$?
skip_if_no_memif v2p
[ $rc -eq 0 ] || hv_fail "outside sink failed: $(cat "$HV_DIR/v2p.err")"
python3 - "$HV_DIR/v2p.json" <<'PY' || { vctl stats "$sw:uplink" >&2; vctl stats "$G/eth0" >&2; hv_fail "v2p"; }
import json, sys
j = json.load(open(sys.argv[1]))
print(f"sink: received {j['rx_frames']}, lost {j['lost']}, reordered {j['reordered']}, "
      f"duplicates {j['duplicates']}, foreign {j['rx_not_ours']}")
ok = (j["rx_frames"] == 30000 and j["lost"] == 0 and j["reordered"] == 0 and j["duplicates"] == 0
      and j["rx_not_ours"] == 0 and j["bad_seq"] == 0)
sys.exit(0 if ok else 1)
PY
wait_vm_line "$G" "gen:" || hv_fail "VM $G: no result line from pktgen"
grep -F "$G" "$HV_LOG" | grep -E "gen:|NIC tx" | tail -2
hv_log "a VM generator whose frames its NIC's MTU does not allow is refused, with the reason"
M=$(hv_vm_name m)
ROLE[$M]="--role gen --size 9000 --count 10 --dst-mac $OUT_MAC --quiet"
write_wrapper
HV_NS+=("$M")
vctl vm-add "$M" >/dev/null
vctl nic-add "$M" eth0 --switch "$sw" --mac 02:00:00:7e:00:03 --mtu 1500 >/dev/null
vctl vm-start "$M" >/dev/null
wait_vm_line "$M" "the NIC's MTU is 1500: frames of 9000 B need 8986" ||
    hv_fail "VM $M: no refusal of 9000 B frames at MTU 1500: $(grep -F "$M" "$HV_LOG" | tail -3)"
grep -F "$M" "$HV_LOG" | grep -F "MTU is 1500"
hv_pass "vswitch-pktgen as an hvnet VM: pvp and v2p through an external switch's memif uplink"
