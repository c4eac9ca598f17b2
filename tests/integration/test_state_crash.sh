#!/usr/bin/env bash
# The state file under kill -9: vswitchd is killed at random moments while
# commands change the configuration as fast as they can. Every time, the
# file is a whole, valid state (the old or the new one, never a torn one),
# vswitchd starts from it, and what it serves is what the file says; the
# last command acknowledged before the kill is in it.
# Usage: test_state_crash.sh BUILD_BIN_DIR [ROUNDS]
source "$(dirname "$0")/lib.sh"
hv_init "$1"
rounds=${2:-12}
ACKED="$HV_DIR/acked"

# Change the configuration in a loop until vswitchd goes away; log each
# acknowledged change.
churn() {
    local r=$1 i=0
    while :; do
        vctl switch-add "s$r-$i" --type private --fdb-max 64 >/dev/null 2>&1 || break
        echo "add s$r-$i" >>"$ACKED"
        vctl switch-set "s$r-$i" --mtu $((1500 + i)) >/dev/null 2>&1 || break
        vctl switch-set "s$r-$i" --fdb-aging $((10 + i)) >/dev/null 2>&1 || break
        if [ $i -ge 2 ]; then
            vctl switch-del "s$r-$((i - 2))" >/dev/null 2>&1 || break
            echo "del s$r-$((i - 2))" >>"$ACKED"
        fi
        i=$((i + 1))
    done
}

for r in $(seq "$rounds"); do
    hv_start
    : >"$ACKED"
    churn "$r" &
    cpid=$!
    sleep "0.$((RANDOM % 6 + 1))$((RANDOM % 10))"
    kill -KILL "$HV_VSD_PID"
    wait "$cpid" || true
    # Dying takes a moment (DPDK's mappings); a restart comes after.
    while kill -0 "$HV_VSD_PID" 2>/dev/null; do sleep 0.05; done
    HV_VSD_PID=
    python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$HV_STATE" ||
        hv_fail "round $r: the state file is not valid JSON after kill -9"
    hv_start
    served=$(vctl --json switch-list | python3 -c "import json,sys; print(' '.join(sorted(s['name'] for s in json.load(sys.stdin)['switches'])))")
    infile=$(python3 -c "import json,sys; print(' '.join(sorted(s['name'] for s in json.load(open(sys.argv[1]))['switches'])))" "$HV_STATE")
    [ "$served" = "$infile" ] || hv_fail "round $r: vswitchd serves '$served', the file says '$infile'"
    # The last acknowledged add/del must be there (an unacknowledged one may or may not).
    last=$(tail -1 "$ACKED" || true)
    case "$last" in
    add\ *) [[ " $served " == *" ${last#add } "* ]] || hv_fail "round $r: acknowledged '$last' lost" ;;
    del\ *) [[ " $served " != *" ${last#del } "* ]] || hv_fail "round $r: acknowledged '$last' lost" ;;
    esac
    n=$(wc -l <"$ACKED")
    echo "round $r: killed after $n acknowledged changes; restarted with: $served"
    for s in $served; do vctl switch-del "$s" >/dev/null; done
    hv_stop
    ls "$HV_STATE".tmp.* >/dev/null 2>&1 && hv_fail "round $r: temporary state files left behind: $(ls "$HV_STATE".tmp.*; grep removed "$HV_LOG")"
done
hv_pass "state survives kill -9"
