#!/usr/bin/env bash
# vswitch-pktgen end to end on DPDK's own ports, no switch in between:
# - one process, two net_memif ports joined to each other (gen on one, its
#   receive side on the other): 100 000 frames of 64 B, then of IMIX, all
#   back, none lost, reordered or duplicated, every one timed; the JSON and
#   CSV say so consistently;
# - two processes: a generator as memif server and a sink as client, then a
#   generator with --rx and a reflector that sends every frame back;
# - net_pcap: 1200 IMIX frames into a file, and a sink reading them back;
# - bad arguments are refused with status 2;
# - pacing: --rate 100kpps for 2 s on net_null sends within 10 % of 100 000
#   per second the generator had the CPU (skipped if under 0.5 s).
# Skipped (77) if DPDK or a memif link cannot start here.
# Usage: test_pktgen.sh BUILD_BIN_DIR
set -u
source "$(dirname "$0")/pktgen-lib.sh"
pg_init "$1" pg

# No hugepages taken (malloc'd memory, nothing left in /dev/hugepages), no
# shared config (no lock or directory under /var/run/dpdk).
eal() {
    echo "-l $1 --file-prefix=$TAG$2 --no-pci --no-telemetry --log-level=*:warning --no-huge" \
         "--no-shconf -m 512"
}

# run NAME ARGS...: vswitch-pktgen, its output in $W/NAME.{out,err}.
run() {
    local name=$1
    shift
    "$PG" "$@" >"$W/$name.out" 2>"$W/$name.err"
}
# check_json FILE EXPECT_FRAMES [TX_BYTES]: received all, none lost/reordered/
# duplicated/foreign, a latency sample per frame, percentiles in order, the
# rates consistent with the counts, the line rate = (bytes + 20 per frame) * 8.
check_json() {
    python3 - "$@" <<'PY' || fail "JSON check of $1"
import json, sys
j = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
def req(c, what):
    if not c:
        print("JSON:", what, json.dumps(j, indent=1)); sys.exit(1)
for k in ("role", "seconds", "tx_frames", "tx_pps", "tx_gbps", "tx_line_gbps", "rx_frames",
          "rx_pps", "rx_gbps", "rx_line_gbps", "lost", "loss_pct", "reordered", "duplicates",
          "rx_not_ours", "latency_ns", "line_rate"):
    req(k in j, "missing " + k)
lat = j["latency_ns"]
req(j["rx_frames"] == n, "rx_frames")
req(j["lost"] == 0 and j["loss_pct"] == 0, "lost")
req(j["reordered"] == 0 and j["duplicates"] == 0 and j["late"] == 0, "reorder/dup")
req(j["rx_not_ours"] == 0, "foreign frames")
req(lat["count"] == n, "latency samples")
req(0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"],
    "percentiles in order")
if j["role"] == "gen":
    req(j["tx_frames"] == n, "tx_frames")
    req(j["seconds"] > 0, "seconds")
    pps = j["tx_frames"] / j["seconds"]
    req(abs(j["tx_pps"] - pps) <= 1e-6 * pps, "tx_pps = frames / seconds")
    line = (j["tx_bytes"] + 20 * j["tx_frames"]) * 8 / j["seconds"] / 1e9
    req(abs(j["tx_line_gbps"] - line) <= 1e-6 * line, "line rate")
    req(j["tx_line_gbps"] > j["tx_gbps"], "line rate above frame rate")
    if len(sys.argv) > 3:
        req(j["tx_bytes"] == int(sys.argv[3]), "tx_bytes")
PY
}

# 1. One process, two joined memif ports: 64 B.
S="$W/m.sock"
run m64 --vdev "net_memif0,role=server,socket=$S" --vdev "net_memif1,role=client,socket=$S" \
    --rx --count 100000 --dst-ip 10.0.0.1-10.0.0.100 --src-port 1000-1063 \
    --json "$W/m64.json" --csv "$W/m64.csv" -- $(eal 0 a)
st=$?
skip_if_no_memif m64
[ $st -eq 0 ] || { cat "$W/m64.err"; fail "64 B run: status $st"; }
check_json "$W/m64.json" 100000 6400000
[ "$(wc -l <"$W/m64.csv")" -eq 2 ] || fail "CSV: a header and one row"
head -1 "$W/m64.csv" | grep -q '^role,frame,seconds,tx_frames,.*lat_p99_ns' || fail "CSV header"
cut -d, -f4 "$W/m64.csv" | tail -1 | grep -qx 100000 || fail "CSV tx_frames"
grep -q 'latency ns: p50' "$W/m64.out" || fail "summary has no latency line"
echo "ok: memif 64 B: $(head -1 "$W/m64.out")"

# 2. IMIX: 100 000 = 8333 patterns of 12 (4246 B) + 64+570+64+1518.
run mimix --vdev "net_memif0,role=server,socket=$S.i" --vdev "net_memif1,role=client,socket=$S.i" \
    --rx --count 100000 --size imix --json "$W/mimix.json" -- $(eal 0 b)
st=$?
skip_if_no_memif mimix
[ $st -eq 0 ] || { cat "$W/mimix.err"; fail "IMIX run: status $st"; }
check_json "$W/mimix.json" 100000 $((8333 * 4246 + 64 + 570 + 64 + 1518))
echo "ok: memif IMIX: $(head -1 "$W/mimix.out")"

# 3. Two processes: generator (memif server) -> sink (client). The server
# waits for its peer; the client must come second (memif clients do not
# retry). Whoever finishes first lingers without polling until the other has
# stopped: DPDK 22.11's memif can crash a peer that polls while its peer
# closes.
"$PG" --vdev "net_memif0,role=server,socket=$S.g" --count 100000 --quiet --linger 60 --link-wait 60 \
    --json "$W/g.json" -- $(eal 0 c) >"$W/g.out" 2>"$W/g.err" &
GEN=$!
PIDS+=("$GEN")
wait_sock "$S.g"
run sink --role sink --vdev "net_memif0,role=client,socket=$S.g" --count 100000 --duration 30 \
    --quiet --json "$W/sink.json" -- $(eal 1 d)
st=$?
kill -TERM "$GEN"
wait "$GEN"
gst=$?
skip_if_no_memif sink
[ $st -eq 0 ] && [ $gst -eq 0 ] || { cat "$W/g.err" "$W/sink.err"; fail "gen/sink: $gst/$st"; }
check_json "$W/sink.json" 100000
echo "ok: gen -> sink: $(head -1 "$W/sink.out")"

# 4. Generator with --rx (server) and a reflector (client): every frame back
# or counted (at 1 Mpps: a correctness check, not the reflector's capacity).
# The generator's results are written before it lingers; then the reflector
# is stopped, then the generator.
"$PG" --vdev "net_memif0,role=server,socket=$S.r" --rx --count 100000 --rate 1Mpps --quiet \
    --linger 60 --link-wait 60 --json "$W/gr.json" -- $(eal 0 e) >"$W/gr.out" 2>"$W/gr.err" &
GEN=$!
PIDS+=("$GEN")
wait_sock "$S.r"
"$PG" --role reflect --vdev "net_memif0,role=client,socket=$S.r" --duration 60 --quiet \
    --json "$W/refl.json" -- $(eal 1 f) >"$W/refl.out" 2>"$W/refl.err" &
REFL=$!
PIDS+=("$REFL")
for _ in $(seq 600); do
    [ -s "$W/gr.json" ] && break
    kill -0 "$GEN" 2>/dev/null || break
    sleep 0.1
done
sleep 0.5
kill -TERM "$REFL"
wait "$REFL"
rst=$?
kill -TERM "$GEN"
wait "$GEN"
gst=$?
skip_if_no_memif gr
[ $gst -eq 0 ] && [ $rst -eq 0 ] || { cat "$W/gr.err" "$W/refl.err"; fail "gen/reflect: $gst/$rst"; }
# The reflector drops (and counts) what it cannot send back after its
# retries, when the generator is slow to drain (a loaded machine, a sanitizer
# build): every frame the generator misses must be one the reflector counted,
# and nothing else may be wrong.
python3 - "$W/gr.json" "$W/refl.json" <<'PY' || fail "gen <-> reflect accounting"
import json, sys
g = json.load(open(sys.argv[1])); r = json.load(open(sys.argv[2]))
ok = (r["role"] == "reflect" and g["tx_frames"] == 100000 and r["rx_frames"] == 100000
      and r["tx_frames"] + r["tx_refused"] == 100000 and g["rx_frames"] == r["tx_frames"]
      and g["lost"] == r["tx_refused"] and g["reordered"] == 0 and g["duplicates"] == 0
      and g["rx_not_ours"] == 0 and g["latency_ns"]["count"] == g["rx_frames"])
if not ok:
    print(json.dumps(g), json.dumps(r))
print("reflector: sent back %d, dropped %d" % (r["tx_frames"], r["tx_refused"]))
sys.exit(not ok)
PY
echo "ok: gen <-> reflect: $(head -1 "$W/gr.out")"

# 5. Another kind of port, the same code path: net_pcap into a file, and a
# sink reading that file back (its latencies are the file's age: not checked).
run pcapw --vdev "net_pcap0,tx_pcap=$W/f.pcap,rx_iface=lo" --count 1200 --size imix --quiet \
    --json "$W/pcapw.json" -- $(eal 0 h)
[ $? -eq 0 ] || { cat "$W/pcapw.err"; fail "net_pcap gen"; }
run pcapr --role sink --vdev "net_pcap0,rx_pcap=$W/f.pcap,tx_pcap=/dev/null" --count 1200 \
    --duration 20 --quiet --json "$W/pcapr.json" -- $(eal 0 i)
[ $? -eq 0 ] || { cat "$W/pcapr.err"; fail "net_pcap sink"; }
check_json "$W/pcapr.json" 1200
echo "ok: net_pcap: $(head -1 "$W/pcapr.out")"

# 6. Bad arguments: status 2, a message, DPDK never started.
for bad in "--size 63" "--size 9001" "--rate 50%" "--rate 2Xbps" "--dst-ip 10.0.0.5-10.0.0.1" \
           "--src-port 70000" "--role bogus" "--count 0" "--stream 16" ""; do
    # shellcheck disable=SC2086
    "$PG" $bad ${bad:+--vdev net_null0} >/dev/null 2>"$W/bad.err"
    [ $? -eq 2 ] || fail "'$bad' not refused with status 2"
    [ -s "$W/bad.err" ] || fail "'$bad': no message"
done
echo "ok: bad arguments refused"

# 7. Pacing on net_null: 100 kpps for 2 s is 200 000 frames, within 10 %.
# Last, because it is skipped when the machine starves the generator.
# Time the generator lost the CPU for more than its 1 ms of credit (this
# machine is shared) is reported as stalled_seconds and not owed: the
# frames are counted against the time it had.
run rate --vdev net_null0 --rate 100kpps --duration 2 --quiet --json "$W/rate.json" -- $(eal 0 g)
[ $? -eq 0 ] || { cat "$W/rate.err"; fail "rate run"; }
python3 - "$W/rate.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
want = 100000 * (2 - j["stalled_seconds"])
print("rate: sent %d in %.3f s, %.3f s stalled, %d owed" % (j["tx_frames"], j["seconds"],
      j["stalled_seconds"], want))
if j["stalled_seconds"] >= 1.5:
    print("the generator had the CPU less than 0.5 s of 2: pacing cannot be judged")
    sys.exit(77)
sys.exit(not (0.9 * want <= j["tx_frames"] <= 1.1 * want))
PY
st=$?
[ $st -eq 77 ] && skip "pacing: this machine gave the generator too little CPU"
[ $st -eq 0 ] || fail "pacing"
echo "ok: pacing"

echo PASS
