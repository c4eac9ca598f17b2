#!/usr/bin/env bash
# vswitch-pktgen's RFC 2544 search driven in band: a controller (--search,
# memif server) and an agent (--role agent, memif client) in two processes
# joined by memif, no switch between them. A --quick search at 64 B with
# 0.5 s trials in each scenario the two ends can form:
# - p2v: the controller generates, the agent sinks (--remote-sink);
# - v2p: the agent generates, the controller sinks (--remote-gen);
# - pvp: the controller generates and receives, the agent reflects
#   (--remote-reflect); the --trial-hook runs begin/end around the NDR
#   verification;
# each JSON document has every field, NDR > 0, PDR >= NDR, the line rate
# from the NDR, latency at 10/50/90 % of the NDR, loss steps from 100 %,
# back-to-back, and every trial.
# Then the failures: an agent that is not there (another MAC answers
# nothing) and a peer that sends nothing back: a clear error, status 1,
# never an NDR of 0.
# v2v needs a switch between two agents and the controller: not here.
# Skipped (77) if DPDK or a memif link cannot start here. No timing asserted.
# Usage: test_pktgen_search.sh BUILD_BIN_DIR
set -u
source "$(dirname "$0")/pktgen-lib.sh"
pg_init "$1" pgs

CTRL=02:00:00:00:0c:01
AGENT=02:00:00:00:0a:01
QUICK=(--quick --trial 0.5 --resolution 5% --b2b-trials 1 --drain 0.2)

eal() {
    echo "-l $1 --file-prefix=$TAG$2 --no-pci --no-telemetry --log-level=*:warning --no-huge" \
         "--no-shconf -m 512"
}

# pair NAME PEER_ARGS -- CONTROLLER_ARGS: the controller (memif server) in
# the background, then the peer (memif client, CPU 1); the controller's
# status in $st. The peer is stopped once the controller has its result
# (the controller lingers meanwhile: a memif peer polling when the other
# closes can crash in DPDK 22.11).
pair() {
    local name=$1
    shift
    local peer=()
    while [ "$1" != "--" ]; do peer+=("$1"); shift; done
    shift
    local sock="$W/$name.sock"
    "$PG" --role gen --search --vdev "net_memif0,role=server,socket=$sock" --src-mac $CTRL \
        "$@" --json "$W/$name.json" --linger 3 --link-wait 30 -- $(eal 0 "${name}c") \
        >"$W/$name.out" 2>"$W/$name.err" &
    local cp=$!
    PIDS+=($cp)
    if ! wait_sock "$sock"; then
        wait $cp
        skip_if_no_memif "$name"
        fail "$name: the controller did not listen"
    fi
    "$PG" "${peer[@]}" --vdev "net_memif0,role=client,socket=$sock" --link-wait 30 \
        -- $(eal 1 "${name}p") \
        >"$W/$name.peer.out" 2>"$W/$name.peer.err" &
    local pp=$!
    PIDS+=($pp)
    # The JSON is written before the linger; then the peer goes first.
    while kill -0 $cp 2>/dev/null && [ ! -s "$W/$name.json" ]; do sleep 0.1; done
    kill $pp 2>/dev/null
    wait $pp 2>/dev/null
    wait $cp
    st=$?
    skip_if_no_memif "$name"
}

check_json() {
    python3 - "$@" <<'PY' || fail "JSON check of $1"
import json, sys
j = json.load(open(sys.argv[1]))
scenario = sys.argv[2]
def req(c, what):
    if not c:
        print("JSON:", what, json.dumps(j, indent=1)[:6000]); sys.exit(1)
req(j["mode"] == "search" and j["scenario"] == scenario, "scenario")
req("error" not in j, "error")
req(j["trial_s"] == 0.5 and j["pdr_loss_pct"] == 0.5, "trial_s, pdr_loss_pct")
req(len(j["results"]) == 1, "one size")
r = j["results"][0]
for k in ("frame", "frame_bytes", "ceiling_mpps", "generator_limited", "ndr_mpps", "pdr_mpps",
          "ndr_verified", "gbps_at_ndr", "latency_us", "loss_steps", "back_to_back", "trials",
          "ndr_achieved_mpps", "generator_short_trials"):
    req(k in r, "missing " + k)
req(r["frame"] == "64" and r["frame_bytes"] == 64, "frame")
req(r["ceiling_mpps"] > 0, "ceiling")
req(0 < r["ndr_mpps"] <= r["pdr_mpps"] <= r["ceiling_mpps"] * (1 + 1e-9), "0 < NDR <= PDR <= ceiling")
req(abs(r["gbps_at_ndr"] - r["ndr_mpps"] * 84 * 8 / 1e3) < 1e-6 * max(1, r["gbps_at_ndr"]),
    "gbps_at_ndr = NDR * (64 + 20) * 8")
req(isinstance(r["generator_limited"], bool), "generator_limited is a bool")
for p in ("10", "50", "90"):
    l = r["latency_us"][p]
    req(0 < l["p50"] <= l["p90"] <= l["p99"] <= l["p99_9"] <= l["max"], "latency at %s %%" % p)
steps = r["loss_steps"]
req(steps and steps[0]["pct"] == 100, "loss steps start at 100 %")
for a, b in zip(steps, steps[1:]):
    req(b["pct"] == a["pct"] - 10, "loss steps by 10 %")
# The stop rule: the last two steps lossless, unless the steps ran out.
if steps[-1]["pct"] > 10:
    req(len(steps) >= 2 and steps[-1]["loss_pct"] == 0 and steps[-2]["loss_pct"] == 0,
        "stopped after two lossless steps")
b = r["back_to_back"]
req(b["trials"] >= 1 and b["frames"] > 0 and "buffer_us" in b, "back_to_back")
t = r["trials"]
kinds = [x["kind"] for x in t]
req(kinds[0] == "ceiling" and "verify" in kinds and kinds.count("latency") == 3, "trial kinds")
for x in t:
    for k in ("rate_mpps", "tx", "rx", "loss_pct", "achieved_mpps", "latency_us"):
        req(k in x, "trial field " + k)
    req(x["tx"] > 0 and 0 < x["rx"] <= x["tx"], "every trial sent and received")
    req(abs(x["loss_pct"] - 100.0 * (x["tx"] - x["rx"]) / x["tx"]) < 1e-9, "loss_pct")
v = [x for x in t if x["kind"] == "verify"][0]
req(abs(v["rate_mpps"] - r["ndr_mpps"]) < 1e-9, "verification at the NDR")
req(r["ndr_verified"] == (v["loss_pct"] == 0), "ndr_verified")
req(r["ndr_achieved_mpps"] == v["achieved_mpps"], "ndr_achieved_mpps from the verification")
short = sum(1 for x in t if x["rate_mpps"] > 0 and x["achieved_mpps"] < 0.98 * x["rate_mpps"])
req(r["generator_short_trials"] == short, "generator_short_trials")
PY
}

# 1. p2v: the agent counts.
pair p2v --role agent --src-mac $AGENT -- --remote-sink $AGENT "${QUICK[@]}"
[ $st -eq 0 ] || { tail -20 "$W/p2v.err" "$W/p2v.peer.err"; fail "p2v: status $st"; }
check_json "$W/p2v.json" p2v
grep -q "^pktgen search: 64 B trial 1 ceiling: offered unpaced" "$W/p2v.err" ||
    fail "p2v: no progress line per trial"
grep -q "^search 64 B: ceiling" "$W/p2v.out" || fail "p2v: no summary"
echo "ok: p2v: $(cat "$W/p2v.out")"

# 2. v2p: the agent generates.
pair v2p --role agent --src-mac $AGENT -- --remote-gen $AGENT "${QUICK[@]}"
[ $st -eq 0 ] || { tail -20 "$W/v2p.err" "$W/v2p.peer.err"; fail "v2p: status $st"; }
check_json "$W/v2p.json" v2p
echo "ok: v2p: $(cat "$W/v2p.out")"

# 3. pvp: the agent reflects; the hook runs around the verification only.
pair pvp --role agent --src-mac $AGENT -- --remote-reflect $AGENT "${QUICK[@]}" \
    --trial-hook "echo >>'$W/hook.log'"
[ $st -eq 0 ] || { tail -20 "$W/pvp.err" "$W/pvp.peer.err"; fail "pvp: status $st"; }
check_json "$W/pvp.json" pvp
[ "$(cat "$W/hook.log" 2>/dev/null)" = "$(printf 'begin 64\nend 64')" ] ||
    fail "hook: $(cat "$W/hook.log" 2>/dev/null)"
echo "ok: pvp, the trial hook ran begin/end once"

# 4. The agent is not there (the peer is an agent with another MAC).
pair absent --role agent --src-mac 02:00:00:00:0a:09 -- --remote-sink $AGENT "${QUICK[@]}"
[ $st -eq 1 ] || fail "absent agent: status $st, want 1"
grep -q "no ACK from agent $AGENT to START" "$W/absent.err" || { cat "$W/absent.err"; fail "absent: no clear error"; }
python3 -c "
import json, sys
j = json.load(open('$W/absent.json'))
sys.exit(0 if 'error' in j and j['results'][0]['ndr_mpps'] == 0 and not j['results'][0]['trials'] else 1)" ||
    fail "absent: the JSON does not say error"
echo "ok: absent agent: $(grep -m1 'no ACK' "$W/absent.err")"

# 5. Nothing comes back (pvp against a plain sink): an error, not NDR 0.
pair blackhole --role sink --quiet -- "${QUICK[@]}"
[ $st -eq 1 ] || fail "nothing back: status $st, want 1"
grep -q "received nothing at all" "$W/blackhole.err" || { cat "$W/blackhole.err"; fail "nothing back: no clear error"; }
echo "ok: nothing back: $(grep -m1 'received nothing' "$W/blackhole.err")"
exit 0
