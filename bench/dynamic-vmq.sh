#!/usr/bin/env bash
# Dynamic VMQ under a load step: how fast does vswitchd move a port off an
# overloaded worker, and back when the load is gone?
#
#   bench/dynamic-vmq.sh [--bin BUILD_BIN_DIR] [--out DIR] [--rounds N]
#                        [--threshold PCT] [--load-seconds S] [--streams P]
#
# vswitchd with two switch workers (lcore 1 on CPU 1, lcore 2 on CPU 0,
# where the VMs run too), a private switch and two VMs: A (placed by
# load) and B (pinned) on lcore 1's worker, nothing on lcore 2's, dynamic
# VMQ on with a load threshold of PCT % (default 8: iperf3 between two VMs
# whose guests share the machine's two CPUs with the switch loads a worker
# to 10-25 %, never to the 80 % default; the rebalancer scales its other
# thresholds with this one). --udp LEN: UDP datagrams of LEN bytes at full
# rate instead of TCP. Each round: 3 s quiet, then
# the load step, iperf3 -P P --bidir (default P = 2) between A and B for S
# seconds (default 12: both VMs' ports carry load, so that moving one
# halves the worker's), then 12 s quiet again. Every 100 ms the script samples worker-show
# (each worker's busy share over the last interval, which worker polls each
# port, the move counters). Per round it reports:
#   overload   when lcore 1's worker first sampled above the threshold
#   spread     when A was first seen on another worker; reaction = spread -
#              overload (the issue's target: within 2 s; Open vSwitch's
#              pmd-auto-lb rebalances at most once a minute, its documented
#              minimum interval: not measured here)
#   pack       when the load was gone and a pack move was first counted;
#              pack reaction = pack - the first quiet sample after the step
# and whether iperf3 stalled (a second with no bytes) across the moves.
# Writes DIR/timeline.json (every sample), DIR/results.json (per round and
# medians), DIR/report.md and DIR/timeline.png (per-worker load over time,
# the threshold, the load step shaded, moves marked; python3-matplotlib).
# Timing resolution is the sampling period, 100 ms, plus the control
# thread's own sampling (VSW_LOAD_SAMPLE_MS, 500 ms).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/build/bin"
out="" rounds=3 thr=8 loadsec=12 streams=2 udp=""
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin="$2"; shift ;;
    --out) out="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --threshold) thr="$2"; shift ;;
    --load-seconds) loadsec="$2"; shift ;;
    --streams) streams="$2"; shift ;;
    --udp) udp="$2"; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "dynamic-vmq: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
for t in iperf3 python3; do
    command -v "$t" >/dev/null || { echo "dynamic-vmq: needs $t (scripts/setup.sh)" >&2; exit 1; }
done
bin=$(cd "$bin" && pwd)
[ -n "$out" ] || out="$top/bench/results/dynamic-vmq-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$out"
out=$(cd "$out" && pwd)
source "$top/bench/lib.sh"
bench_init "$bin"
DV_NS=()
dv_cleanup() {
    local rc=$?
    for ns in "${DV_NS[@]}"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    (exit $rc)
    bench_cleanup
}
trap dv_cleanup EXIT

sock="$BENCH_DIR/vswitchd.sock"
BENCH_KIND=hvnet
# shellcheck disable=SC2046
"$bin/vswitchd" --socket "$sock" --state "$BENCH_DIR/state.json" --log "$BENCH_DIR/vswitchd.log" \
    --detach -- --lcores 0@0,1@1,2@0 --no-pci --file-prefix "$BENCH_TAG" \
    --log-level '*:warning' $(bench_eal_mem)
BENCH_VSD_PID=$(pgrep -f -- "--socket $sock" | head -1)
dctl() { "$bin/vswitch-ctl" --socket "$sock" "$@"; }
A="${BENCH_TAG}a" B="${BENCH_TAG}b"
dctl switch-add dv --type private >/dev/null
i=1
for vm in "$A" "$B"; do
    ip netns add "$vm"
    DV_NS+=("$vm")
    dctl vm-add "$vm" --netns "$vm" >/dev/null
    dctl nic-add "$vm" eth0 --switch dv --mac "02:00:00:d7:00:0$i" >/dev/null
    dctl vm-start "$vm" >/dev/null
    bench_wait_carrier "$vm" eth0
    bench_quiet "$vm"
    ip netns exec "$vm" ip link set lo up
    ip netns exec "$vm" ip addr add "10.215.0.$i/24" dev eth0
    i=$((i + 1))
done
# A onto lcore 1 and back to "auto" (it stays there until the rebalancer
# moves it); B pinned beside it; lcore 2's worker polls nothing.
dctl nic-set "$A" eth0 --worker 1 >/dev/null
dctl nic-set "$A" eth0 --worker auto >/dev/null
dctl nic-set "$B" eth0 --worker 1 >/dev/null
ip netns exec "$A" ping -c 1 -W 5 10.215.0.2 >/dev/null
dctl worker-set --dynamic-vmq on --load-threshold "$thr" >/dev/null
ip netns exec "$B" iperf3 -s -p 5201 -D -I "$BENCH_DIR/iperf3.pid"

echo "# bench/dynamic-vmq.sh --rounds $rounds --threshold $thr --load-seconds $loadsec --streams $streams"
echo "# $(bench_cpu); vswitchd $bin/vswitchd, workers on lcores 1 (CPU 1) and 2 (CPU 0)"
echo "# out: $out"
: >"$out/timeline.jsonl"
: >"$out/events.jsonl"
uargs=""
[ -z "$udp" ] || uargs="-u -b 0 -l $udp"
for r in $(seq "$rounds"); do
    # Each round starts with A back on lcore 1 (a pin move, then auto).
    dctl nic-set "$A" eth0 --worker 1 >/dev/null
    dctl nic-set "$A" eth0 --worker auto >/dev/null
    python3 "$top/bench/dynamic-vmq-sample.py" "$bin/vswitch-ctl" "$sock" "$r" \
        >>"$out/timeline.jsonl" &
    sampler=$!
    sleep 3
    echo "{\"round\": $r, \"event\": \"step_on\", \"t\": $(date +%s.%N)}" >>"$out/events.jsonl"
    # shellcheck disable=SC2086
    ip netns exec "$A" iperf3 -c 10.215.0.2 -p 5201 -t "$loadsec" -P "$streams" --bidir -i 1 -J $uargs \
        >"$out/iperf-$r.json" 2>&1 || echo "# round $r: iperf3 failed" >&2
    echo "{\"round\": $r, \"event\": \"step_off\", \"t\": $(date +%s.%N)}" >>"$out/events.jsonl"
    sleep 12
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    echo "# round $r done"
done
kill "$(cat "$BENCH_DIR/iperf3.pid")" 2>/dev/null || true
grep "dynamic VMQ" "$BENCH_DIR/vswitchd.log" >"$out/moves.log" || true
/usr/bin/python3 "$top/bench/dynamic-vmq-report.py" "$out" "$thr" "$A/eth0" \
    "bench/dynamic-vmq.sh --rounds $rounds --threshold $thr --load-seconds $loadsec --streams $streams"
