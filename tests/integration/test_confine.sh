#!/usr/bin/env bash
# VM workers are confined, and VMs still work.
#  - Two VMs ping each other and run iperf3 through a private switch (one
#    in a namespace that existed before it, vm-add --netns); one changes
#    its MTU from inside (a NIC re-initialisation, its TAP's MTU set
#    through the root's TAP broker) and still pings at the new size.
#  - Each hv-vm runs as its own non-zero uid and gid with no capability
#    (every set, the bounding set too), no_new_privs, a seccomp filter
#    (Seccomp: 2), inside its VM's network namespace, in a mount namespace
#    of its own whose root holds neither vswitchd's state directory and
#    socket nor /run, /tmp, /var.
#  - From a VM's uid, and from root without capabilities (what vswitchd's
#    non-dumpable flag guards against), vswitchd's /proc memory cannot be
#    opened and ptrace (attach, seize) fails; the same probe against a
#    dumpable process of the prober's own uid succeeds (the probe can see).
#  - hv-confine-guest, run as the VM worker: under the same jail its
#    attempts on vswitchd all fail; after installing hv-vm's filter it
#    floods its stderr (vswitchd logs a bounded number of those lines,
#    control bytes replaced, and counts the rest in vm-list's
#    log_suppressed), opens vswitchd's memory
#    and is killed by SIGSYS, which vswitchd logs and vm-list reports as
#    "killed by seccomp (SIGSYS)".
# Usage: test_confine.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
for t in iperf3 setpriv; do command -v "$t" >/dev/null || hv_skip "needs $t"; done
[ -x "$HV_BIN/hv-confine-guest" ] || hv_fail "hv-confine-guest missing in $HV_BIN"
# vswitchd without CAP_SYS_PTRACE in its bounding set: a root process with
# the same capabilities then passes every ptrace check on it but one, that
# vswitchd is not dumpable, which the probes below rely on.
NOPTRACE=(setpriv --bounding-set=-sys_ptrace)
# shellcheck disable=SC2046
"${NOPTRACE[@]}" "$HV_BIN/vswitchd" --socket "$HV_SOCK" --state "$HV_STATE" --log "$HV_LOG" \
    --detach -- $(hv_eal_args) || hv_fail "vswitchd did not start"
HV_VSD_PID=$(pgrep -f -- "--socket $HV_SOCK" | head -1)
[ -n "$HV_VSD_PID" ] || hv_fail "vswitchd not running"

vctl switch-add sw1 --type private --mtu 9000
hv_vm a sw1 10.93.0.1/24 02:00:00:93:00:01
A=$(hv_vm_name a) B=$(hv_vm_name b)
# B's namespace exists before the VM (vm-add --netns), made the usual way.
NSB="${HV_TAG}nb"
HV_NS+=("$NSB")
ip netns add "$NSB"
vctl vm-add "$B" --netns "$NSB" >/dev/null
vctl nic-add "$B" eth0 --switch sw1 --mac 02:00:00:93:00:02 >/dev/null
vctl vm-start "$B" >/dev/null
hv_wait_link "$NSB" eth0
hv_quiet_ns "$NSB"
ip netns exec "$NSB" ip addr add 10.93.0.2/24 dev eth0
declare -A NS=([$A]=$A [$B]=$NSB)

hv_log "VMs work: ping, iperf3, an MTU change from inside"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 10.93.0.2 >/dev/null || hv_fail "A cannot ping B"
ip netns exec "$NSB" ping -c 3 -i 0.2 -W 2 10.93.0.1 >/dev/null || hv_fail "B cannot ping A"
ip netns exec "$NSB" iperf3 -s -1 -p 5293 >/dev/null 2>&1 &
HV_PIDS+=($!)
sleep 0.5
ip netns exec "$A" timeout 30 iperf3 -c 10.93.0.2 -p 5293 -t 2 >/dev/null || hv_fail "iperf3 A -> B failed"
# The switch allows 9000; A asks for 4000, B stays at 9000.
ip netns exec "$A" ip link set eth0 mtu 4000
for _ in $(seq 50); do
    [ "$(hv_counter "$A/eth0" "['guest']['frame_size']")" = 4014 ] && break
    sleep 0.1
done
[ "$(hv_counter "$A/eth0" "['guest']['frame_size']")" = 4014 ] || hv_fail "A's NIC did not follow its MTU change"
[ "$(ip netns exec "$A" cat /sys/class/net/eth0/mtu)" = 4000 ] || hv_fail "A's TAP is not at MTU 4000"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 -s 3972 -M do 10.93.0.2 >/dev/null || hv_fail "A cannot ping at MTU 4000"
# Above what the NIC allows: the worker sets it back, through the broker.
ip netns exec "$A" ip link set eth0 mtu 9100
for _ in $(seq 50); do [ "$(ip netns exec "$A" cat /sys/class/net/eth0/mtu)" = 9000 ] && break; sleep 0.1; done
[ "$(ip netns exec "$A" cat /sys/class/net/eth0/mtu)" = 9000 ] || hv_fail "A's MTU above its NIC's was not set back to 9000"

vm_field() { vctl --json vm-list | python3 -c "import json,sys; print([v['$2'] for v in json.load(sys.stdin)['vms'] if v['name']=='$1'][0])"; }
status() { awk -v k="$2:" '$1 == k {$1 = ""; sub(/^ /, ""); print}' "/proc/$1/status"; }

hv_log "each hv-vm: own uid, no capabilities, no_new_privs, seccomp, own namespaces and root"
declare -A uids
for vm in "$A" "$B"; do
    pid=$(vm_field "$vm" pid)
    uid=$(vm_field "$vm" uid)
    [ "$pid" -gt 0 ] && [ "$uid" -gt 0 ] || hv_fail "$vm: pid $pid, uid $uid"
    uids[$uid]=$vm
    [ "$(status "$pid" Uid)" = "$uid $uid $uid $uid" ] || hv_fail "$vm: Uid is '$(status "$pid" Uid)', not $uid"
    [ "$(status "$pid" Gid)" = "$uid $uid $uid $uid" ] || hv_fail "$vm: Gid is '$(status "$pid" Gid)'"
    [ -z "$(status "$pid" Groups)" ] || hv_fail "$vm: supplementary groups $(status "$pid" Groups)"
    for c in CapInh CapPrm CapEff CapBnd CapAmb; do
        [ "$(status "$pid" $c)" = 0000000000000000 ] || hv_fail "$vm: $c is $(status "$pid" $c)"
    done
    [ "$(status "$pid" NoNewPrivs)" = 1 ] || hv_fail "$vm: no_new_privs not set"
    [ "$(cat "/proc/$pid/oom_score_adj")" = 1000 ] ||
        hv_fail "$vm: oom_score_adj is $(cat "/proc/$pid/oom_score_adj"), not 1000 (killed before vswitchd)"
    [ "$(status "$pid" Seccomp)" = 2 ] || hv_fail "$vm: Seccomp is $(status "$pid" Seccomp), not 2 (filter)"
    [ "$(stat -L -c %i "/proc/$pid/ns/net")" = "$(stat -L -c %i "/run/netns/${NS[$vm]}")" ] ||
        hv_fail "$vm: hv-vm is not in the VM's network namespace"
    [ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] ||
        hv_fail "$vm: hv-vm shares the root's mount namespace"
    # Its own program's directory is there, read-only (a worker may be a
    # wrapper that runs a program beside it), and nothing around it.
    for p in "$HV_DIR" "$(dirname "$HV_SOCK")" /run /tmp /var /root \
        "$(dirname "$HV_BIN")/CMakeCache.txt" "$HV_BIN/../CMakeFiles"; do
        if [[ "$HV_BIN/" == "$p/"* ]]; then
            # A directory on the way to the program's (a build under /tmp):
            # it holds that way and nothing else.
            next=${HV_BIN#"$p/"}
            next=${next%%/*}
            seen=$(ls -A "/proc/$pid/root$p" 2>/dev/null | tr '\n' ' ')
            [ "$seen" = "$next " ] || hv_fail "$vm: hv-vm sees '$seen' in $p, not only '$next'"
        elif [ -e "/proc/$pid/root$p" ]; then
            hv_fail "$vm: hv-vm can reach $p"
        fi
    done
    [ -e "/proc/$pid/root/usr/lib" ] || hv_fail "$vm: hv-vm's root has no /usr/lib (the probe is blind)"
    [ -x "/proc/$pid/root$HV_BIN/hv-vm" ] || hv_fail "$vm: hv-vm's own directory is not in its root"
    awk -v d="$HV_BIN" '$5 == d && $6 ~ /^ro(,|$)/ { ok = 1 } END { exit !ok }' \
        "/proc/$pid/mountinfo" ||
        hv_fail "$vm: its program's directory is not mounted read-only"
done
[ "${#uids[@]}" -eq 2 ] || hv_fail "the two VMs' workers share a uid"

# The probe: open PID's /proc memory, ptrace-attach and -seize it.
# A traced process is let go again (an attach stops it first).
PROBE='
import ctypes, errno, os, sys
pid = int(sys.argv[1]); libc = ctypes.CDLL(None, use_errno=True); out = []
try:
    open("/proc/%d/mem" % pid, "rb").close(); out.append("mem:OPENED")
except OSError as e:
    out.append("mem:" + errno.errorcode[e.errno])
for name, req in (("attach", 16), ("seize", 0x4206)):
    if libc.ptrace(req, pid, None, None) == 0:
        out.append(name + ":TRACED")
        if req == 16:
            os.waitpid(pid, 0)
        libc.ptrace(17, pid, None, None)
    else:
        out.append(name + ":" + errno.errorcode[ctypes.get_errno()])
print(" ".join(out))'
probe_as() { # probe_as UID TARGET-PID [SETPRIV-OPTIONS]: the probe as UID (and gid)
    local uid=$1 pid=$2
    shift 2
    setpriv --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs "$@" "$PY" -c "$PROBE" "$pid"
}
# A python every uid can run (root's own may live under /root).
PY=
for p in /usr/bin/python3 /usr/local/bin/python3; do
    if [ -x "$p" ] && setpriv --reuid=65534 --regid=65534 --clear-groups "$p" -c pass 2>/dev/null; then
        PY=$p
        break
    fi
done
[ -n "$PY" ] || hv_skip "needs a python3 that any uid can run (/usr/bin/python3)"
denied() { [ "$1" = "mem:EACCES attach:EPERM seize:EPERM" ]; }
through() { [ "$1" = "mem:OPENED attach:TRACED seize:TRACED" ]; }
NOCAPS=(--inh-caps=-all --bounding-set=-all)

hv_log "vswitchd cannot be read or traced by a VM's uid, nor by root processes like it"
uid_a=$(vm_field "$A" uid)
r=$(probe_as "$uid_a" "$HV_VSD_PID" "${NOCAPS[@]}"); echo "as VM $A's uid $uid_a: $r"
denied "$r" || hv_fail "a VM's uid got at vswitchd: $r"
r=$(probe_as 0 "$HV_VSD_PID" --bounding-set=-sys_ptrace); echo "as root with vswitchd's capabilities: $r"
denied "$r" || hv_fail "vswitchd is dumpable: a root process without CAP_SYS_PTRACE got at it: $r"
# Controls: the same probes do get at dumpable processes of their own kind.
setpriv --reuid="$uid_a" --regid="$uid_a" --clear-groups "${NOCAPS[@]}" sleep 60 &
bait_vm=$!
"${NOPTRACE[@]}" sleep 60 &
bait_root=$!
HV_PIDS+=($bait_vm $bait_root)
sleep 0.2
r=$(probe_as "$uid_a" "$bait_vm" "${NOCAPS[@]}"); echo "control, VM uid against its own process: $r"
through "$r" || hv_fail "the probe as a VM's uid reaches nothing: $r"
r=$(probe_as 0 "$bait_root" --bounding-set=-sys_ptrace); echo "control, root against a dumpable root process: $r"
through "$r" || hv_fail "the probe as root reaches nothing: $r"
{ kill -KILL "$bait_vm" "$bait_root" && wait "$bait_vm" "$bait_root"; } 2>/dev/null || true

hv_log "a worker under the same confinement: attempts on vswitchd fail; a forbidden call kills it"
hv_stop
rm -f "$HV_STATE"
hv_start --hv-vm "$HV_BIN/hv-confine-guest"
X=$(hv_vm_name x)
HV_NS+=("$X")
vctl vm-add "$X" >/dev/null
vctl vm-start "$X" >/dev/null
for _ in $(seq 100); do
    [ "$(vm_field "$X" state)" = crashed ] && break
    sleep 0.1
done
grep "hv-confine-guest $X" "$HV_LOG" | grep -v flood || true
[ "$(vm_field "$X" state)" = crashed ] || hv_fail "the abusive worker is $(vm_field "$X" state), not crashed"
grep -q "hv-confine-guest $X: VMBus .* connected" "$HV_LOG" || hv_fail "the jailed worker could not use VMBus"
grep -q "hv-confine-guest $X: ESCAPE" "$HV_LOG" && hv_fail "the jailed worker got at vswitchd"
for what in "open vswitchd's /proc memory" "ptrace(PTRACE_ATTACH) vswitchd" \
    "ptrace(PTRACE_SEIZE) vswitchd" "process_vm_readv vswitchd" "signal vswitchd"; do
    grep -qF "hv-confine-guest $X: $what: denied" "$HV_LOG" || hv_fail "no refusal logged for: $what"
done
grep -q "partition $X: hv-confine-guest $X: escape ?\[2J? bytes" "$HV_LOG" ||
    hv_fail "control bytes from the worker's console reached the log as they were"
floods=$(grep -c "hv-confine-guest $X: flood" "$HV_LOG" || true)
echo "of 5000 console lines the worker flooded, $floods reached the log"
[ "$floods" -gt 0 ] && [ "$floods" -lt 1000 ] || hv_fail "the console flood was not rate-limited ($floods lines logged)"
[ "$(vm_field "$X" log_suppressed)" -gt 0 ] || hv_fail "suppressed console lines not counted in vm-list"
grep -q "hv-confine-guest $X: hv-vm's filter in" "$HV_LOG" || grep -q "hv-confine-guest $X: flood 0" "$HV_LOG" ||
    hv_fail "the worker did not get to its filter"
grep -q "VM $X crashed: its worker was killed by seccomp (SIGSYS)" "$HV_LOG" || hv_fail "vswitchd did not log the seccomp kill"
[ "$(vm_field "$X" exit)" = "killed by seccomp (SIGSYS)" ] || hv_fail "vm-list says '$(vm_field "$X" exit)'"
kill -0 "$HV_VSD_PID" || hv_fail "vswitchd died"
vctl vm-list
hv_pass "confined VM workers"
