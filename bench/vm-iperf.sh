#!/usr/bin/env bash
# TCP throughput and ping latency through hvnet beside a Linux bridge (and
# Open vSwitch's userspace datapath) in one run on this machine, for three
# cases (set-ups in bench/lib.sh):
#
#   vm-vm      two VMs on a private switch; peers: bridge + veths, OVS
#   host-vm    the host to a VM over an internal switch's host vNIC; peer:
#              the host on a bridge, a veth into a namespace
#   vm-uplink  a VM to a host behind an external switch's veth uplink
#              (net_af_packet); peer: bridge + veths
#
# The receiving host of the bridge and vm-uplink set-ups has GRO on its veth
# (segments held up to 100 us), as a host with a physical NIC would (bench/lib.sh;
# BENCH_HOST_GRO=0 for the kernel's defaults). The bridge's frames are 64 KB
# GSO frames and pass it by; hvnet's uplink sends MTU-sized frames, which
# the host now aggregates instead of taking each through its TCP stack.
#
#   bench/vm-iperf.sh [--bin BUILD_BIN_DIR] [--seconds N] [--runs N] [--mtu N]
#                     [--parallel LIST] [--cases LIST] [--only KINDS]
#                     [--json FILE] [--png FILE]
#
# For each case, set-up and stream count (--parallel 1,4: one and four
# streams): ping RTT (100 pings, 10 ms apart; min/avg/max) and iperf3 TCP for
# --seconds, --runs times; the median Gbit/s is reported with the spread
# (min..max) and the retransmits of the median run, and hvnet's ratio to the
# bridge of the same case, with its worker's cycles per packet received and
# busy share over the runs (worker-show, cleared before them). --only picks
# set-ups of the vm-vm case (bridge, ovs, ovs-tap, hvnet). --json writes
# every figure; --png plots the table (python3-matplotlib). Each set-up uses
# the offloads it negotiates by itself.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/build/bin"
secs=10 runs=3 mtu=1500 pars=1 only="" cases="vm-vm,host-vm,vm-uplink" json="" png=""
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin="$2"; shift ;;
    --seconds) secs="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --mtu) mtu="$2"; shift ;;
    --parallel) pars="$2"; shift ;;
    --cases) cases="$2"; shift ;;
    --only) only="$2"; shift ;;
    --json) json="$2"; shift ;;
    --png) png="$2"; shift ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "vm-iperf: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# OVS internal ports in namespaces cannot carry more than 1500 (lib.sh).
[ -n "$only" ] || only=$([ "$mtu" -le 1500 ] && echo bridge,ovs,ovs-tap,hvnet || echo bridge,ovs,hvnet)
source "$top/bench/lib.sh"
bench_init "$bin"
results="$BENCH_DIR/results.txt"
: >"$results"

# iperf_runs STREAMS -> "median min max retransmits-of-median"
iperf_runs() {
    local par=$1 port=5290 out=()
    for _ in $(seq "$runs"); do
        pair_exec 2 iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
        local srv=$!
        sleep 0.3
        out+=("$(pair_exec 1 iperf3 -c "$PAIR_IP2" -p "$port" -t "$secs" -P "$par" -J |
            python3 -c "import json,sys; e=json.load(sys.stdin)['end']; print('%.3f %d' % (e['sum_received']['bits_per_second']/1e9, e['sum_sent'].get('retransmits',0)))")")
        wait "$srv" || true
    done
    printf '%s\n' "${out[@]}" | sort -n | awk -v n="$runs" '
        {g[NR]=$1; r[NR]=$2} END {m=int((n+1)/2); print g[m], g[1], g[NR], r[m]}'
}

echo "# bench/vm-iperf.sh --seconds $secs --runs $runs --mtu $mtu --parallel $pars --cases $cases"
echo "# $(bench_cpu)"
IFS=, read -r -a case_list <<<"$cases"
IFS=, read -r -a par_list <<<"$pars"
for c in "${case_list[@]}"; do
    case "$c" in
    vm-vm) kinds=$only ;;
    host-vm) kinds=bridge-host,hvnet-host ;;
    vm-uplink) kinds=bridge,hvnet-uplink ;;
    *) echo "vm-iperf: unknown case $c" >&2; exit 2 ;;
    esac
    IFS=, read -r -a kind_list <<<"$kinds"
    for k in "${kind_list[@]}"; do
        bench_up "$k" "$mtu"
        rtt=$(pair_exec 1 ping -q -c 100 -i 0.01 "$PAIR_IP2" | awk -F'[/ ]' '/rtt/ {print $7 " " $8 " " $9}')
        for p in "${par_list[@]}"; do
            case "$k" in hvnet*) bctl worker-show --clear >/dev/null ;; esac
            read -r med lo hi rtx <<<"$(iperf_runs "$p")"
            # hvnet's worker over the runs: cycles per packet received and
            # busy share of the busiest worker ("- -" for the peers).
            wk="- -"
            case "$k" in hvnet*) wk=$(bctl --json worker-show | python3 -c "
import json, sys
w = max(json.load(sys.stdin)['workers'], key=lambda w: w['rx_packets'])
print('%.0f %.1f' % (w['cycles_per_packet'], w['busy_pct']))") ;; esac
            # case kind streams name... (tab-separated)
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$k" "$p" "$med" "$lo" "$hi" "$rtx" \
                "$rtt" "$wk" "$PAIR_NAME" >>"$results"
        done
        bench_down
    done
done

# Debian's python3, where python3-matplotlib is installed, if there is one.
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
"$py" - "$results" "$mtu" "$secs" "$runs" "$json" "$png" "$(bench_cpu)" <<'PY'
import json, sys
path, mtu, secs, runs, jpath, ppath, cpu = sys.argv[1:8]
rows = []
for line in open(path):
    c, k, p, med, lo, hi, rtx, rtt, wk, name = line.rstrip("\n").split("\t")
    rmin, ravg, rmax = (float(x) for x in rtt.split())
    rows.append(dict(case=c, setup=k, name=name, streams=int(p), gbps=float(med),
                     gbps_min=float(lo), gbps_max=float(hi), retransmits=int(rtx),
                     rtt_ms=dict(min=rmin, avg=ravg, max=rmax)))
    cyc, busy = wk.split()
    if cyc != "-":
        rows[-1]["worker"] = dict(cycles_per_packet=float(cyc), busy_pct=float(busy))
peer = {r["case"] + "/" + str(r["streams"]): r for r in rows if r["setup"] in ("bridge", "bridge-host")}
for r in rows:
    b = peer.get(r["case"] + "/" + str(r["streams"]))
    if r["setup"].startswith("hvnet") and b and b["gbps"] > 0:
        r["ratio_to_bridge"] = round(r["gbps"] / b["gbps"], 3)
        r["rtt_ratio_to_bridge"] = round(r["rtt_ms"]["avg"] / b["rtt_ms"]["avg"], 2) if b["rtt_ms"]["avg"] else None
print()
print("%-10s %-56s %3s %9s %15s %7s %22s %7s %14s" % ("case", "set-up (MTU %s)" % mtu, "P", "Gbit/s", "spread",
                                                     "retrans", "ping min/avg/max ms", "x bridge",
                                                     "worker cyc/pkt"))
for r in rows:
    w = r.get("worker")
    print("%-10s %-56s %3d %9.2f %7.2f..%-7.2f %7d %22s %7s %14s" % (
        r["case"], r["name"], r["streams"], r["gbps"], r["gbps_min"], r["gbps_max"], r["retransmits"],
        "%.3f/%.3f/%.3f" % (r["rtt_ms"]["min"], r["rtt_ms"]["avg"], r["rtt_ms"]["max"]),
        "%.2f" % r["ratio_to_bridge"] if "ratio_to_bridge" in r else "",
        "%.0f (%.0f%%)" % (w["cycles_per_packet"], w["busy_pct"]) if w else ""))
if jpath:
    with open(jpath, "w") as f:
        json.dump(dict(command="bench/vm-iperf.sh", mtu=int(mtu), seconds=int(secs), runs=int(runs),
                       cpu=cpu, results=rows), f, indent=1)
    print("wrote", jpath)
if ppath:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("vm-iperf: no matplotlib (python3-matplotlib): no plot", file=sys.stderr)
        sys.exit(0)
    labels = ["%s\n%s P%d" % (r["case"], r["setup"], r["streams"]) for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 0.9), 4.5))
    colors = ["tab:orange" if r["setup"].startswith("hvnet") else "tab:gray" for r in rows]
    ax.bar(range(len(rows)), [r["gbps"] for r in rows], color=colors,
           yerr=[[r["gbps"] - r["gbps_min"] for r in rows], [r["gbps_max"] - r["gbps"] for r in rows]],
           capsize=3)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("TCP Gbit/s (median, min..max of %s runs)" % runs)
    ax.set_title("vm-iperf, MTU %s, %s s per run; %s" % (mtu, secs, cpu), fontsize=8)
    fig.tight_layout()
    fig.savefig(ppath, dpi=120)
    print("wrote", ppath)
PY
