#!/usr/bin/env bash
# VM-to-VM TCP throughput and ping latency through hvnet's private switch,
# beside the same between two namespaces joined by a Linux bridge and by
# Open vSwitch's userspace datapath, in one run on this machine (set-ups in
# bench/lib.sh).
#
#   bench/vm-iperf.sh [--bin BUILD_BIN_DIR] [--seconds N] [--runs N] [--mtu N]
#                     [--parallel N] [--only bridge,ovs,ovs-tap,hvnet]
#
# For each set-up: ping RTT (100 pings, 10 ms apart; min/avg/max) and iperf3
# TCP (one stream unless --parallel) for --seconds, --runs times; the median
# Gbit/s is reported with the retransmits of that run. Each set-up uses the
# offloads it negotiates by itself (veths: all of the kernel's).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/build/bin"
secs=10 runs=3 mtu=1500 par=1 only=""
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bin="$2"; shift ;;
    --seconds) secs="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --mtu) mtu="$2"; shift ;;
    --parallel) par="$2"; shift ;;
    --only) only="$2"; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "vm-iperf: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
# OVS internal ports in namespaces cannot carry more than 1500 (lib.sh).
[ -n "$only" ] || only=$([ "$mtu" -le 1500 ] && echo bridge,ovs,ovs-tap,hvnet || echo bridge,ovs,hvnet)
source "$top/bench/lib.sh"
bench_init "$bin"

# iperf_median -> "gbps retransmits"
iperf_median() {
    local results=() port=5290
    for _ in $(seq "$runs"); do
        ip netns exec "$PAIR_NS2" iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
        local srv=$!
        sleep 0.3
        results+=("$(ip netns exec "$PAIR_NS1" iperf3 -c "$PAIR_IP2" -p "$port" -t "$secs" -P "$par" -J |
            python3 -c "import json,sys; e=json.load(sys.stdin)['end']; print('%.2f %d' % (e['sum_received']['bits_per_second']/1e9, e['sum_sent'].get('retransmits',0)))")")
        wait "$srv" || true
    done
    printf '%s\n' "${results[@]}" | sort -n | awk -v n="$runs" 'NR==int((n+1)/2)'
}

echo "# bench/vm-iperf.sh --seconds $secs --runs $runs --mtu $mtu --parallel $par"
echo "# $(bench_cpu)"
declare -A tcp rtt name
IFS=, read -r -a kinds <<<"$only"
for k in "${kinds[@]}"; do
    bench_up "$k" "$mtu"
    name[$k]=$PAIR_NAME
    rtt[$k]=$(ip netns exec "$PAIR_NS1" ping -q -c 100 -i 0.01 "$PAIR_IP2" | awk -F'[/ ]' '/rtt/ {print $7 "/" $8 "/" $9}')
    tcp[$k]=$(iperf_median)
    bench_down
done
echo
printf '%-32s %10s %8s %24s\n' "set-up (MTU $mtu)" "TCP Gbit/s" "retrans" "ping RTT min/avg/max ms"
for k in "${kinds[@]}"; do
    printf '%-32s %10s %8s %24s\n' "${name[$k]}" ${tcp[$k]} "${rtt[$k]}"
done
if [ -n "${tcp[hvnet]:-}" ]; then
    for k in bridge ovs ovs-tap; do
        [ -n "${tcp[$k]:-}" ] &&
            python3 -c "print('hvnet / %s TCP: %.2f' % ('$k', float('${tcp[hvnet]%% *}') / float('${tcp[$k]%% *}')))"
    done
fi
