#!/usr/bin/env bash
# CPU that hvnet takes while nothing flows: vswitchd with a private switch
# and two idle VMs (bench/lib.sh's hvnet set-up, after its one ping), their
# user + system time over --seconds from /proc/PID/stat, as % of one core,
# per process and in all. Each --bin DIR is measured --runs times, the dirs
# interleaved (A B A B ...), so that builds can be compared in one run.
#
#   bench/idle-cpu.sh [--bin BUILD_BIN_DIR]... [--seconds N] [--runs N] [--mtu N]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bins=() secs=30 runs=1 mtu=1500
while [ $# -gt 0 ]; do
    case "$1" in
    --bin) bins+=("$2"); shift ;;
    --seconds) secs="$2"; shift ;;
    --runs) runs="$2"; shift ;;
    --mtu) mtu="$2"; shift ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "idle-cpu: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
[ ${#bins[@]} -gt 0 ] || bins=("$top/build/bin")
source "$top/bench/lib.sh"
bench_init "${bins[0]}"
hz=$(getconf CLK_TCK)

# ticks PID: utime + stime of every thread of PID so far.
ticks() {
    awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"
}

echo "# bench/idle-cpu.sh --seconds $secs --runs $runs --mtu $mtu; $(bench_cpu)"
printf '%-40s %10s %10s %10s %10s\n' "bin" "vswitchd%" "hv-vm1%" "hv-vm2%" "total%"
for _ in $(seq "$runs"); do
    for b in "${bins[@]}"; do
        BENCH_BIN=$(cd "$b" && pwd)
        bench_up hvnet "$mtu"
        pids=("$BENCH_VSD_PID")
        for i in 1 2; do
            pid=$(pgrep -f -- "hv-vm --name ${BENCH_TAG}h$i " | head -1)
            [ -n "$pid" ] || { echo "idle-cpu: no hv-vm for ${BENCH_TAG}h$i" >&2; exit 1; }
            pids+=("$pid")
        done
        sleep 2 # the set-up's last ping and ARP settle
        before=() after=()
        for p in "${pids[@]}"; do before+=("$(ticks "$p")"); done
        sleep "$secs"
        for p in "${pids[@]}"; do after+=("$(ticks "$p")"); done
        line=$(printf '%-40s' "$b") sum=0
        for i in 0 1 2; do
            d=$((after[i] - before[i]))
            sum=$((sum + d))
            line+=$(awk -v d="$d" -v hz="$hz" -v s="$secs" 'BEGIN {printf " %10.2f", 100 * d / hz / s}')
        done
        line+=$(awk -v d="$sum" -v hz="$hz" -v s="$secs" 'BEGIN {printf " %10.2f", 100 * d / hz / s}')
        echo "$line"
        bench_down
    done
done
