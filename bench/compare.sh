#!/usr/bin/env bash
# hvnet beside Open vSwitch with DPDK, side by side, in one command: the
# same scenarios with the same generator (vswitch-pktgen) on the same CPU
# layout, switches interleaved, RFC 2544 throughput (NDR, PDR), latency and
# the switch's own cycles per packet.
#
#   bench/compare.sh [--quick] [--out DIR] [--switches hvnet,ovs-dpdk]
#                    [--sizes 64,1518] [--scenarios p2v,v2p,pvp,v2v,null]
#                    [--rounds N] [--trial S] [--bin BUILD_BIN_DIR]
#
# Scenarios ("the VM" is vswitch-pktgen: on hvnet a child partition driving
# its synthetic NIC, on OVS-DPDK a process on a net_virtio_user port whose
# vhost-user peer is OVS's port; the "physical" side is a memif port):
#   p2v  memif generator -> switch -> VM sink
#   v2p  VM generator -> switch -> memif sink
#   pvp  memif generator -> switch -> VM reflector -> switch -> memif
#   v2v  VM generator -> switch -> VM sink
#   null the switching core alone on null ports (bench/null-peers.sh):
#        forwarding rate and cycles per packet, no loss search
# Layout (bench/compare-lib.sh): the switch's polling thread alone on CPU 1;
# controller, VMs and the switches' other threads on CPU 0, each
# vswitch-pktgen giving the CPU away when it finds nothing to do (--yield).
#
# Each search runs in the controller (vswitch-pktgen --search, on the memif
# port), which drives the VMs in band; per frame size it finds the
# generator's ceiling, NDR and PDR by binary search, latency at 10/50/90 %
# of NDR, frame loss by steps of 10 % and back-to-back bursts. Around the
# final trial at the NDR the switch's cycles per packet are taken from its
# own counters (hvnet: worker-show; OVS: dpif-netdev/pmd-stats-show).
# Rounds interleave the switches (the order alternates) so that noise on a
# shared machine shows as spread; each window's CPU use by other processes
# is measured and reported.
#
# Writes DIR/results.json (one record per switch x scenario x frame: medians
# over rounds and each round's figures), DIR/report.md (tables, hvnet/OVS
# ratios, machine, versions, commands), DIR/*.png, and DIR/raw/ (every
# search's own JSON). --quick: 64 and 1518 B, 1 round, 1 s trials, no loss
# steps and no back-to-back search.
# Needs root, 2 CPUs, openvswitch-switch-dpdk (else only hvnet runs), free
# 2 MiB hugepages, python3-matplotlib for the plots.
set -euo pipefail
args="$*"
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/build/bin"
out="" quick=0 switches=hvnet,ovs-dpdk sizes="" scenarios=p2v,v2p,pvp,v2v,null rounds="" trial=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --out) out="$2"; shift ;;
    --switches) switches="$2"; shift ;;
    --sizes) sizes="$2"; shift ;;
    --scenarios) scenarios="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --trial) trial="$2"; shift ;;
    --bin) bin="$2"; shift ;;
    -h | --help) sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then
    : "${sizes:=64,1518}" "${rounds:=1}" "${trial:=1}"
else
    : "${sizes:=64,128,256,512,1024,1280,1518,9000,imix}" "${rounds:=3}" "${trial:=10}"
fi
[ -n "$out" ] || out="$top/bench/results/compare-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$out/raw"
out=$(cd "$out" && pwd)
CMP_PY=/usr/bin/python3
CMP_TOP=$top

source "$top/bench/lib.sh"
source "$top/bench/compare-lib.sh"
bench_init "$bin"
chmod 755 "$BENCH_DIR"
trap 'rc=$?; set +e; cmp_down 2>/dev/null; bench_cleanup; exit $rc' EXIT
[ "$(nproc)" -ge 2 ] || { echo "compare: needs 2 CPUs" >&2; exit 1; }
for s in ${switches//,/ }; do
    case "$s" in
    hvnet) ;;
    ovs-dpdk)
        if [ ! -x "$CMP_OVSD" ]; then
            echo "compare: no $CMP_OVSD (openvswitch-switch-dpdk): OVS-DPDK left out" >&2
            switches=$(echo ",$switches," | sed 's/,ovs-dpdk,/,/; s/^,//; s/,$//')
        fi
        ;;
    *) echo "compare: unknown switch $s (hvnet, ovs-dpdk)" >&2; exit 2 ;;
    esac
done
for s in ${scenarios//,/ }; do
    case "$s" in p2v | v2p | pvp | v2v | null) ;; *) echo "compare: unknown scenario $s" >&2; exit 2 ;; esac
done

# What the run will take, before it starts: per switch, scenario and size a
# search of about 20 trials (ceiling, NDR and PDR by ~7 halvings, a
# verification, 3 latency trials, up to 10 loss steps; --quick: ~10, no
# loss steps) of the trial length plus ~1 s of control and drain each,
# back-to-back (full runs: ~8 bursts of up to 2 s, 5 times), and ~15 s of
# set-up; the null scenario ~trial + 10 s a round and size.
nsizes=$(echo "$sizes" | tr ',' '\n' | grep -c .)
nsc=$(echo "$scenarios" | tr ',' '\n' | grep -vc null || true)
nsw=$(echo "$switches" | tr ',' '\n' | grep -c .)
b2b=$([ "$quick" = 1 ] && echo 0 || echo 40)
ntrials=$([ "$quick" = 1 ] && echo 10 || echo 20)
est=$((rounds * nsw * nsc * (nsizes * (ntrials * (trial + 1) + b2b) + 15)))
echo "$scenarios" | grep -q null && est=$((est + rounds * nsizes * (2 * trial + 10)))
printf 'compare: %s; scenarios %s; sizes %s; %s round(s), %s s trials: about %d min\n' \
    "$switches" "$scenarios" "$sizes" "$rounds" "$trial" $(((est + 59) / 60))
printf 'compare: results in %s\n' "$out"

commands="$out/raw/commands.txt"
echo "bench/compare.sh $args" >"$commands"

# search SWITCH SCENARIO ROUND: one search, its JSON into raw/.
search() {
    local sw=$1 sc=$2 r=$3 nvms=1 ctl_args=() rc=0
    [ "$sc" = v2v ] && nvms=2
    cmp_up "$sw" "$nvms"
    local raw="$out/raw/$sw-$sc-r$r.json"
    local log="$out/raw/$sw-$sc-r$r.log"
    # A drain of 0.25 s after each trial: the slowest frame seen here took
    # 52 ms (pktgen's default, 1 s, doubled a 1 s trial).
    local common=(--yield --sizes "$sizes" --trial "$trial" --drain 0.25 --json "$raw.search"
                  --trial-hook "$CMP_HOOK" --src-mac "$CMP_CTL_MAC" --quiet)
    # --quick: no loss steps and no back-to-back search (together they
    # took two thirds of the time); report.md says they were left out.
    [ "$quick" = 1 ] && common+=(--quick --b2b-trials 0 --no-loss-steps)
    case "$sc" in
    p2v) ctl_args=(--search "${common[@]}" --remote-sink "${CMP_VM_MAC[1]}") ;;
    v2p) ctl_args=(--search "${common[@]}" --remote-gen "${CMP_VM_MAC[1]}") ;;
    pvp) ctl_args=(--search "${common[@]}" --remote-reflect "${CMP_VM_MAC[1]}") ;;
    v2v) ctl_args=(--search "${common[@]}" --remote-gen "${CMP_VM_MAC[1]}"
                   --remote-sink "${CMP_VM_MAC[2]}") ;;
    esac
    # The VMs: in-band agents, the same program and arguments in every
    # scenario; the controller tells each what to do per trial.
    local i
    for i in $(seq "$nvms"); do cmp_vm_start "$i" --role agent --yield --quiet; done
    local snap0 snap1
    snap0=$(cmp_cpu_snap)
    # shellcheck disable=SC2086
    echo "$BENCH_BIN/vswitch-pktgen ${ctl_args[*]} --queues $CMP_CTL_QUEUES --vdev $CMP_CTL_VDEV -- $CMP_CTL_EAL" >>"$commands"
    # shellcheck disable=SC2086
    "$BENCH_BIN/vswitch-pktgen" "${ctl_args[@]}" --queues "$CMP_CTL_QUEUES" --link-wait 30 \
        --vdev "$CMP_CTL_VDEV" -- $CMP_CTL_EAL >"$log" 2>&1 &
    local ctl=$!
    [ "$sw" = ovs-dpdk ] && cmp_ovs_attach_ctl
    wait "$ctl" || rc=$?
    snap1=$(cmp_cpu_snap)
    if [ "$rc" != 0 ] || [ ! -s "$raw.search" ]; then
        echo "compare: $sw $sc round $r: the search failed (exit $rc); its log:" >&2
        tail -5 "$log" >&2
        cmp_vm_logs >&2
        cmp_down
        return 1
    fi
    SW=$sw SC=$sc R=$r S0="$snap0" S1="$snap1" RAW="$raw" CYC="$CMP_RUN/cycles.txt" $CMP_PY - <<'PY'
import json, os
s0, s1 = [list(map(int, os.environ[k].split())) for k in ("S0", "S1")]
cpu_busy, cpu_ours = s1[0] - s0[0], s1[1] - s0[1]
hz = os.sysconf("SC_CLK_TCK")
cyc, busy = {}, {}
if os.path.exists(os.environ["CYC"]):
    for line in open(os.environ["CYC"]):
        f = line.split()
        if len(f) == 3:
            try:
                c, b = float(f[1]), float(f[2])
            except ValueError:
                continue
            if c == c and b == b:  # not NaN: packets were counted
                cyc[f[0]], busy[f[0]] = c, b
rec = {"switch": os.environ["SW"], "scenario": os.environ["SC"], "round": int(os.environ["R"]),
       "search": json.load(open(os.environ["RAW"] + ".search")), "cycles_per_packet": cyc,
       "switch_busy_pct": busy,
       "cpu": {"busy_s": cpu_busy / hz, "ours_s": cpu_ours / hz,
               "other_s": max(cpu_busy - cpu_ours, 0) / hz}}
json.dump(rec, open(os.environ["RAW"], "w"), indent=1)
os.unlink(os.environ["RAW"] + ".search")
PY
    cmp_down
}

# null SIZE ROUND: hvnet and OVS-DPDK on null ports, one window each.
null_round() {
    local size=$1 r=$2
    local raw="$out/raw/null-$size-r$r.json"
    # hv-null-bench's switch runs at MTU 1500 (frames up to 1514 B).
    if [ "$size" = imix ] || [ "$size" -gt 1514 ]; then
        echo "compare: null ports: $size B not measured (hv-null-bench takes 60..1514 B)" >&2
        return 0
    fi
    echo "bench/null-peers.sh $bin --rounds 1 --seconds $trial --size $size --json" >>"$commands"
    "$top/bench/null-peers.sh" "$bin" --rounds 1 --seconds "$trial" --size "$size" --json \
        >"$raw" 2>"$out/raw/null-$size-r$r.log" || {
        echo "compare: null ports, $size B, round $r failed: $(tail -2 "$out/raw/null-$size-r$r.log")" >&2
        rm -f "$raw"
    }
}

t0=$SECONDS
failed=0
for r in $(seq "$rounds"); do
    order=$switches
    # Alternate the order: neither switch always runs first.
    [ $((r % 2)) = 0 ] && order=$(echo "$switches" | tr ',' '\n' | tac | paste -sd,)
    for sc in ${scenarios//,/ }; do
        if [ "$sc" = null ]; then
            echo "$switches" | grep -q ovs-dpdk || { echo "compare: null needs OVS-DPDK beside hvnet: skipped" >&2; continue; }
            for sz in ${sizes//,/ }; do null_round "$sz" "$r"; done
            continue
        fi
        for sw in ${order//,/ }; do
            printf 'compare: round %d, %s, %s (%d s so far)\n' "$r" "$sc" "$sw" $((SECONDS - t0))
            search "$sw" "$sc" "$r" || failed=$((failed + 1))
        done
    done
done

{
    echo "machine: $(bench_cpu), $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "hvnet: $(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)"
    echo "ovs: $(ovs-vswitchd --version 2>/dev/null | head -1 || echo none)"
    echo "dpdk: $(pkg-config --modversion libdpdk 2>/dev/null || echo unknown)"
    echo "elapsed_s: $((SECONDS - t0))"
} >"$out/raw/machine.txt"
$CMP_PY "$top/bench/compare-report.py" "$out"
echo "compare: $out/report.md ($((SECONDS - t0)) s, $failed failed search(es))"
[ "$failed" = 0 ]
