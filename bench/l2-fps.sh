#!/usr/bin/env bash
# Frames per second of one frame size (default 9014 bytes: a 9000-byte MTU)
# from one namespace to another through hvnet's VMs and switch, beside a
# Linux bridge and Open vSwitch's userspace datapath, in one run (set-ups in
# bench/lib.sh). l2-blast sends COUNT frames as fast as the sending
# interface takes them; the receiver counts what arrives and times it from
# the first to the last frame, so lost frames are reported, not hidden.
# For hvnet it also reports the switch worker's cycles per packet over the
# run (vswitch-ctl worker-show, cleared before each run).
#
#   bench/l2-fps.sh [--bin BUILD_BIN_DIR] [--size N] [--count N] [--runs N]
#                   [--only bridge,ovs,hvnet]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/build/bin"
size=9014 count=100000 runs=3 only="bridge,ovs,hvnet"
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin="$2"; shift ;;
    --size) size="$2"; shift ;;
    --count) count="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --only) only="$2"; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "l2-fps: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
source "$top/bench/lib.sh"
bench_init "$bin"
mtu=$((size > 1514 ? size - 14 : 1500))

# counter NS IF NAME -> the interface's statistics/NAME
counter() {
    ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3" 2>/dev/null || echo 0
}

# worker_cpp -> the switch workers' busy cycles per received frame since
# the last clear (all workers together), "-" for the other set-ups.
worker_cpp() {
    if [ "$BENCH_KIND" != hvnet ]; then
        echo -
        return
    fi
    bctl --json worker-show | python3 -c '
import json, sys
ws = json.load(sys.stdin)["workers"]
rx = sum(w["rx_packets"] for w in ws)
print("%.0f" % (sum(w["busy_cycles"] for w in ws) / rx) if rx else "-")'
}

# one_run -> "fps gbps received lost sender_drops receiver_drops cycles_per_packet"
# Lost frames are looked for at both ends: the sending interface's
# tx_dropped (a full TAP or qdisc queue) and the receiving one's rx_dropped.
one_run() {
    local out="$BENCH_DIR/recv.txt"
    local tx0 rx0
    tx0=$(counter "$PAIR_NS1" "$PAIR_IF1" tx_dropped)
    rx0=$(counter "$PAIR_NS2" "$PAIR_IF2" rx_dropped)
    if [ "$BENCH_KIND" = hvnet ]; then bctl worker-show --clear >/dev/null; fi
    ip netns exec "$PAIR_NS2" "$bin/l2-blast" recv "$PAIR_IF2" --size "$size" --timeout 1 \
        --expect "$count" >"$out" &
    local r=$!
    for _ in $(seq 50); do grep -q ready "$out" 2>/dev/null && break; sleep 0.05; done
    ip netns exec "$PAIR_NS1" "$bin/l2-blast" send "$PAIR_IF1" --dst "$PAIR_MAC2" --size "$size" \
        --count "$count" >/dev/null
    wait "$r"
    local tx1 rx1
    tx1=$(counter "$PAIR_NS1" "$PAIR_IF1" tx_dropped)
    rx1=$(counter "$PAIR_NS2" "$PAIR_IF2" rx_dropped)
    local cpp
    cpp=$(worker_cpp)
    awk -v s=$((tx1 - tx0)) -v r=$((rx1 - rx0)) -v c="$cpp" \
        '/received/ {print $10, $12, $2, $4, s, r, c}' "$out"
}

echo "# bench/l2-fps.sh --size $size --count $count --runs $runs (MTU $mtu)"
echo "# $(bench_cpu)"
declare -A res name
IFS=, read -r -a kinds <<<"$only"
for k in "${kinds[@]}"; do
    bench_up "$k" "$mtu"
    name[$k]=$PAIR_NAME
    runs_out=()
    for _ in $(seq "$runs"); do runs_out+=("$(one_run)"); done
    res[$k]=$(printf '%s\n' "${runs_out[@]}" | sort -n | awk -v n="$runs" 'NR==int((n+1)/2)')
    bench_down
done
echo
printf '%-32s %12s %8s %10s %8s %12s %12s %8s\n' "set-up ($size-byte frames)" "frames/s" \
    "Gbit/s" "received" "lost" "sender-drop" "receiver-drop" "cyc/pkt"
for k in "${kinds[@]}"; do
    read -r fps gbps rx lost sd rd cpp <<<"${res[$k]}"
    printf '%-32s %12s %8s %10s %8s %12s %12s %8s\n' "${name[$k]}" "$fps" "$gbps" "$rx" "$lost" \
        "$sd" "$rd" "$cpp"
done
echo "# sender-drop: tx_dropped of the sending interface (its queue was full);"
echo "# receiver-drop: rx_dropped of the receiving one. hvnet counts its own"
echo "# drops in 'vswitch-ctl stats'; none of the lost frames is silent there."
echo "# cyc/pkt: hvnet's switch workers, busy cycles per frame they received in the"
echo "# run (vswitch-ctl worker-show): their per-frame cost, not the sender's rate."
