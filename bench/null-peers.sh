#!/usr/bin/env bash
# The switching core on null ports, hvnet beside Open vSwitch with DPDK, in
# one run: each round measures OVS-DPDK (one PMD thread) with a fixed
# OpenFlow rule (in_port=A,actions=output:B, the set-up of the 95 cycles in
# the reference) and with NORMAL (MAC learning, the destination pre-learned
# with fdb/add), then hvnet (bench/null-bench.c, hv-null-bench --runs 1),
# so that the machine's load at the time hits both alike. Both use CPU 1 for
# the switch's polling thread and CPU 0 for everything else, net_null ports
# (`size=BYTES` receiving, `no-rx=1` sending), one window of S seconds per
# round after a 1 s warm-up, and report the switch's own counters: OVS's
# pmd-stats-show "avg processing cycles per packet" and "packets
# received", hvnet's worker counters (what worker-show prints).
#
# What differs, and cannot be helped: net_null writes nothing into the
# frames, so OVS sees frames of zeros (source and destination MAC
# 00:00:00:00:00:00: NORMAL's static entry is for that MAC), while
# hv-null-bench fills its pool with a proper A -> B frame (its header says
# why). Neither switch's per-packet path reads beyond the headers.
#
# Usage: bench/null-peers.sh BUILD_BIN_DIR [--rounds N] [--seconds S] [--size BYTES] [--json]
# Needs root, 2 CPUs, openvswitch-switch-dpdk, 600 free 2 MiB hugepages.
# Prints one line per measurement (Mpps, cycles per packet, the fraction of
# received frames the switch sent on), then per switch the median and the
# spread (min..max) of Mpps and cycles per packet; --json: one object.
set -euo pipefail

BIN=${1:?usage: null-peers.sh BUILD_BIN_DIR [--rounds N] [--seconds S] [--size BYTES] [--json]}
BIN=$(cd "$BIN" && pwd)
shift
ROUNDS=5 SECONDS_RUN=2 SIZE=64 JSON=0
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECONDS_RUN=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --json) JSON=1; shift ;;
    *) echo "null-peers.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "null-peers.sh: run as root" >&2; exit 1; }
OVSD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
[ -x "$OVSD" ] || { echo "null-peers.sh: needs $OVSD (openvswitch-switch-dpdk)" >&2; exit 77; }
[ -x "$BIN/hv-null-bench" ] || { echo "null-peers.sh: no $BIN/hv-null-bench" >&2; exit 1; }
free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
[ "$free" -ge 600 ] || { echo "null-peers.sh: needs 600 free 2 MiB hugepages ($free)" >&2; exit 77; }

TAG="np$$"
W=$(mktemp -d "/tmp/hvnet-$TAG.XXXXXX")
OVSDB_PID= OVS_PID=
# The netdev datapath leaves a persistent TAP, ovs-netdev, behind when it
# stops; ours to remove only if it was not there before.
NETDEV_OURS=
[ -e /sys/class/net/ovs-netdev ] || NETDEV_OURS=1
cleanup() {
    local rc=$?
    # Only the daemons this script started, by their PID files.
    [ -n "$OVS_PID" ] && kill "$OVS_PID" 2>/dev/null && sleep 1 || true
    [ -n "$OVSDB_PID" ] && kill "$OVSDB_PID" 2>/dev/null || true
    if [ -n "$NETDEV_OURS" ]; then ip link del ovs-netdev 2>/dev/null || true; fi
    rm -f /dev/hugepages/"$TAG"map_* 2>/dev/null || true
    rm -rf "$W" "/var/run/dpdk/$TAG"
    exit $rc
}
trap cleanup EXIT

export OVS_RUNDIR=$W OVS_LOGDIR=$W OVS_DBDIR=$W
ovsdb-tool create "$W/conf.db" /usr/share/openvswitch/vswitch.ovsschema
ovsdb-server "$W/conf.db" --remote="punix:$W/db.sock" --pidfile="$W/ovsdb-server.pid" \
    --unixctl="$W/ovsdb-server.ctl" --log-file="$W/ovsdb-server.log" --detach
OVSDB_PID=$(cat "$W/ovsdb-server.pid")
V() { ovs-vsctl --db="unix:$W/db.sock" --timeout=30 "$@"; }
A() { ovs-appctl -t "$W/ovs-vswitchd.ctl" "$@"; }
V --no-wait init
V --no-wait set Open_vSwitch . other_config:dpdk-init=true other_config:dpdk-socket-mem=1024 \
    other_config:dpdk-lcore-mask=0x1 other_config:pmd-cpu-mask=0x2 \
    other_config:dpdk-extra="\"--file-prefix=$TAG --no-pci\""
"$OVSD" "unix:$W/db.sock" --pidfile="$W/ovs-vswitchd.pid" --unixctl="$W/ovs-vswitchd.ctl" \
    --log-file="$W/ovs-vswitchd.log" --detach 2>"$W/ovs-vswitchd.console"
OVS_PID=$(cat "$W/ovs-vswitchd.pid")
V add-br br0 -- set bridge br0 datapath_type=netdev
# No traffic but the test's: the bridge's own port stays down.
ip link set br0 down 2>/dev/null || true

# ovs_once MODE ROUND: one window; prints "MPPS CYCLES_PER_PACKET DELIVERED",
# the last the fraction of the frames A received (warm-up included) that B
# sent: a switch that dropped them would look cheap.
ovs_once() {
    local mode=$1 r=$2 pa="pa$2$1" pb="pb$2$1"
    V add-port br0 "$pa" -- set Interface "$pa" type=dpdk \
        options:dpdk-devargs="\"net_null_${mode}a$r,size=$SIZE\"" \
        -- add-port br0 "$pb" -- set Interface "$pb" type=dpdk \
        options:dpdk-devargs="\"net_null_${mode}b$r,no-rx=1\"" >/dev/null
    ovs-ofctl del-flows br0
    if [ "$mode" = rule ]; then
        ovs-ofctl add-flow br0 "in_port=$pa,actions=output:$pb"
    else
        ovs-ofctl add-flow br0 "actions=NORMAL"
        A fdb/add br0 "$pb" 0 00:00:00:00:00:00 >/dev/null
    fi
    sleep 1
    A dpif-netdev/pmd-stats-clear >/dev/null
    sleep "$SECONDS_RUN"
    local show arx btx
    show=$(A dpif-netdev/pmd-stats-show)
    # Live counters (the database's are written every 5 s).
    arx=$(ovs-ofctl dump-ports br0 "$pa" | sed -n 's/.*rx pkts=\([0-9]*\).*/\1/p')
    btx=$(ovs-ofctl dump-ports br0 "$pb" | sed -n 's/.*tx pkts=\([0-9]*\).*/\1/p')
    V del-port br0 "$pa" -- del-port br0 "$pb"
    SHOW="$show" S="$SECONDS_RUN" ARX="$arx" BTX="$btx" python3 - <<'PY'
import os, re
show, s = os.environ["SHOW"], float(os.environ["S"])
rx = int(re.search(r"packets received: (\d+)", show).group(1))
cpp = float(re.search(r"avg processing cycles per packet: ([\d.]+)", show).group(1))
arx, btx = int(os.environ["ARX"].strip('"')), int(os.environ["BTX"].strip('"'))
print("%.4f %.2f %.3f" % (rx / s / 1e6, cpp, btx / arx if arx else 0))
PY
}

declare -a OVS_RULE OVS_NORMAL HV
[ "$JSON" = 1 ] || echo "# null ports, $SIZE B, $ROUNDS round(s) of $SECONDS_RUN s; switch thread on CPU 1; Mpps and cycles/packet"
for r in $(seq "$ROUNDS"); do
    OVS_RULE+=("$(ovs_once rule "$r")")
    OVS_NORMAL+=("$(ovs_once normal "$r")")
    h=$("$BIN/hv-null-bench" --runs 1 --seconds "$SECONDS_RUN" --size "$SIZE" --json 2>/dev/null)
    HV+=("$(H="$h" python3 -c 'import json,os; d=json.loads(os.environ["H"])["runs"][0]; print("%.4f %.2f %.3f" % (d["mpps"], d["cycles_per_packet"], d["tx_packets"] / d["rx_packets"]))')")
    [ "$JSON" = 1 ] || echo "round $r: ovs rule ${OVS_RULE[-1]}  ovs normal ${OVS_NORMAL[-1]}  hvnet ${HV[-1]}"
done

RULE="${OVS_RULE[*]}" NORMAL="${OVS_NORMAL[*]}" HVS="${HV[*]}" JSON=$JSON SIZE=$SIZE S=$SECONDS_RUN \
    python3 - <<'PY'
import json, os, statistics
def triples(name):
    v = [float(x) for x in os.environ[name].split()]
    return v[0::3], v[1::3], v[2::3]
out = {"size": int(os.environ["SIZE"]), "seconds": float(os.environ["S"])}
for key, env in (("ovs_rule", "RULE"), ("ovs_normal", "NORMAL"), ("hvnet", "HVS")):
    mpps, cpp, dlv = triples(env)
    out[key] = {"mpps": {"median": statistics.median(mpps), "min": min(mpps), "max": max(mpps)},
                "cycles_per_packet": {"median": statistics.median(cpp), "min": min(cpp),
                                      "max": max(cpp)},
                "delivered": {"min": min(dlv)},
                "runs": [{"mpps": m, "cycles_per_packet": c, "delivered": d}
                         for m, c, d in zip(mpps, cpp, dlv)]}
if os.environ["JSON"] == "1":
    print(json.dumps(out, sort_keys=True))
else:
    for key in ("ovs_rule", "ovs_normal", "hvnet"):
        m, c = out[key]["mpps"], out[key]["cycles_per_packet"]
        print("%-10s %7.3f Mpps (%.3f..%.3f)  %7.1f cycles/packet (%.1f..%.1f)  delivered >= %.3f"
              % (key, m["median"], m["min"], m["max"], c["median"], c["min"], c["max"],
                 out[key]["delivered"]["min"]))
PY
