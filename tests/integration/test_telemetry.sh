#!/usr/bin/env bash
# Statistics through DPDK telemetry: dpdk-telemetry.py (Debian's dpdk
# package) lists switches and ports and reads a port's counters, which match
# what vswitch-ctl stats says for the same traffic; an unknown port is an
# error, not a crash. /hvnet/workers and vswitch-ctl worker-show count the
# ping through the worker; worker-show --clear starts them from zero.
# Usage: test_telemetry.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
TEL=$(command -v dpdk-telemetry.py || true)
[ -n "$TEL" ] || hv_skip "needs dpdk-telemetry.py (package dpdk)"
hv_start
vctl switch-add sw --type private
hv_vm a sw 10.64.0.1/24 02:00:00:64:00:01
hv_vm b sw 10.64.0.2/24 02:00:00:64:00:02
A=$(hv_vm_name a)
ip netns exec "$A" ping -c 20 -i 0.05 -W 2 10.64.0.2 >/dev/null || hv_fail "A cannot ping B"

# tel CMD...: one JSON answer per command, on its own line.
tel() { printf '%s\n' "$@" | timeout 20 python3 "$TEL" -f "hv$HV_TAG" 2>&1; }
workers=$(vctl --json worker-show)
out=$(tel /hvnet/switches /hvnet/ports "/hvnet/port,$A/eth0" /hvnet/switch,sw /hvnet/port,nosuch /hvnet/control /hvnet/workers)
echo "$out"
ctl=$(vctl --json stats "$A/eth0")
OUT="$out" CTL="$ctl" A="$A" WORKERS="$workers" python3 - <<'PY' || hv_fail "telemetry answers are wrong"
import json, os
answers = {}
for line in os.environ["OUT"].splitlines():
    line = line.strip()
    if line.startswith("{"):
        d = json.loads(line)
        for k, v in d.items():
            answers.setdefault(k, []).append(v)
a = os.environ["A"]
assert answers["/hvnet/switches"][0] == ["sw"], answers["/hvnet/switches"]
ports = answers["/hvnet/ports"][0]
assert sorted(ports) == sorted([a + "/eth0", a[:-1] + "b/eth0"]), ports
port, missing = answers["/hvnet/port"]
assert missing is None, missing
ctl = json.loads(os.environ["CTL"])["ports"][0]
for k in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes"):
    assert port[k] == ctl[k], (k, port[k], ctl[k])
    assert port[k] > 0, (k, port[k])
assert port["rx_packets"] >= 20, port
for reason, n in ctl["drops"].items():
    assert port["drops_" + reason] == n, reason
assert port["guest_ndis_version"].startswith("6."), port
assert port["guest_nvsp_version"] == "6.1", port
assert port["guest_errors_ring_corrupt"] == 0, port
sw = answers["/hvnet/switch"][0]
assert sw["type"] == "private" and len(sw["ports"]) == 2, sw
ctl_counters = answers["/hvnet/control"][0]
assert ctl_counters["requests"] >= 6, ctl_counters
# worker-show (taken just before): the ping went through the workers' ports;
# telemetry's figures came later, so they are at least as large.
ws = json.loads(os.environ["WORKERS"])["workers"]
names = sorted(p["port"] for w in ws for p in w["ports"])
assert names == sorted([a + "/eth0", a[:-1] + "b/eth0"]), names
rx = sum(w["rx_packets"] for w in ws)
assert rx >= 40, ws
for w in ws:
    if w["rx_packets"]:
        assert abs(w["cycles_per_packet"] - w["busy_cycles"] / w["rx_packets"]) < 1e-6 * w["cycles_per_packet"] + 1e-9, w
        assert w["busy_cycles"] > 0 and w["busy_rounds"] > 0, w
# The port's queues: as many as worker-show lists for it (vmq-show's rows).
wq = [p["queues"] for w in ws for p in w["ports"] if p["port"] == a + "/eth0"]
assert len(wq) == 1 and 0 in wq[0] and port["vmq_queues"] == len(wq[0]), (port, wq)
tw = answers["/hvnet/workers"][0]
assert tw["tsc_hz"] > 0, tw
for i, w in enumerate(ws):
    key = "worker%d_" % i
    assert tw[key + "lcore"] == w["lcore"], (tw, w)
    assert tw[key + "rx_packets"] >= w["rx_packets"], (tw, w)
    assert tw[key + "busy_cycles"] >= w["busy_cycles"], (tw, w)
    assert sorted(tw[key + "ports"]) == sorted(p["port"] for p in w["ports"]), (tw, w)
    float(tw[key + "cycles_per_packet"])
pl = json.loads(os.environ["WORKERS"])["placement"]
assert tw["placement_dynamic_vmq"] == int(pl["dynamic_vmq"]), tw
assert tw["placement_moves"] >= pl["moves"] and tw["placement_load_threshold"] == 80, tw
print("telemetry matches vswitch-ctl:", {k: port[k] for k in ("rx_packets", "tx_packets")},
      "worker rx:", rx)
PY

# worker-show --clear answers the figures so far, then counts from zero:
# the next ping's frames are what the workers count.
vctl worker-show --clear | grep -q '^(cleared' || hv_fail "worker-show --clear did not clear"
before=$(vctl --json worker-show)
ip netns exec "$A" ping -c 10 -i 0.05 -W 2 10.64.0.2 >/dev/null || hv_fail "A cannot ping B"
after=$(vctl --json worker-show)
vctl worker-show
BEFORE="$before" AFTER="$after" python3 - <<'PY' || hv_fail "worker-show --clear is wrong"
import json, os
b = sum(w["rx_packets"] for w in json.loads(os.environ["BEFORE"])["workers"])
a = sum(w["rx_packets"] for w in json.loads(os.environ["AFTER"])["workers"])
assert b < 20, ("frames counted since the clear, before the ping", b)
assert a >= b + 20, ("ten pings and their answers", b, a)
print("since the clear:", b, "then", a)
PY
kill -0 "$HV_VSD_PID" || hv_fail "vswitchd died"
hv_pass "telemetry"
