#!/usr/bin/env bash
# vswitch-ctl against a fake vswitchd: argument checks (exit 2, one line
# naming the bad value), the JSON-RPC requests it sends
# (docs/control-protocol.md), server errors (exit 1 and the server's
# message), --json output, the fdb-show and stats layouts, and the message
# for a socket nobody listens on.
#
# usage: test_vswitch_ctl.sh PATH-TO-vswitch-ctl
set -euo pipefail

if [[ $# -ne 1 || ! -x $1 ]]; then
    echo "usage: $0 PATH-TO-vswitch-ctl" >&2
    exit 1
fi
CTL=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
command -v python3 >/dev/null || { echo "python3 is needed" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/test_vswitch_ctl.XXXXXX")
SERVER_PID=
cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

SOCK=$TMP/vswitchd.sock
export HVNET_SOCKET=$TMP/nobody-listens.sock

# The fake vswitchd: serves one connection, checks that the one request on it
# is method $2 with params $3 (exactly, as JSON), answers $4 (a JSON object
# holding "result" or "error"; "HANG" never answers) and exits 0 if the
# request was the expected one.
cat >"$TMP/fake_vswitchd.py" <<'EOF'
import json, os, socket, sys, time

path, method, params, answer = sys.argv[1:5]
tmp = path + ".tmp"
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(tmp)
srv.listen(1)
os.rename(tmp, path)  # the socket appears only once it accepts
srv.settimeout(20)
conn, _ = srv.accept()
conn.settimeout(20)
buf = b""
while b"\n" not in buf:
    chunk = conn.recv(65536)
    if not chunk:
        break
    buf += chunk
line = buf.split(b"\n", 1)[0]
problems = []
try:
    req = json.loads(line)
except ValueError as e:
    req = None
    problems.append("request is not JSON: %s: %r" % (e, line))
if req is not None:
    if not buf.endswith(b"\n"):
        problems.append("request does not end with a newline")
    if req.get("jsonrpc") != "2.0":
        problems.append("jsonrpc is %r, not '2.0'" % req.get("jsonrpc"))
    if "id" not in req:
        problems.append("request has no id")
    if req.get("method") != method:
        problems.append("method %r, expected %r" % (req.get("method"), method))
    if req.get("params", {}) != json.loads(params):
        problems.append("params %s, expected %s"
                        % (json.dumps(req.get("params"), sort_keys=True),
                           json.dumps(json.loads(params), sort_keys=True)))
if answer == "HANG":
    time.sleep(10)
    sys.exit(0)
reply = {"jsonrpc": "2.0", "id": req.get("id") if req else None}
if problems:
    reply["error"] = {"code": -32602, "message": "fake vswitchd: " + "; ".join(problems)}
else:
    reply.update(json.loads(answer))
conn.sendall((json.dumps(reply) + "\n").encode())
conn.close()
for p in problems:
    print("fake vswitchd: " + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF

FAILS=0
fail() {
    echo "FAIL: $*" >&2
    FAILS=$((FAILS + 1))
}

start_server() { # METHOD PARAMS ANSWER
    rm -f "$SOCK"
    python3 "$TMP/fake_vswitchd.py" "$SOCK" "$1" "$2" "$3" 2>"$TMP/server.err" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        [[ -S $SOCK ]] && return 0
        sleep 0.05
    done
    fail "fake vswitchd did not start: $(cat "$TMP/server.err")"
    return 1
}

stop_server() { # NAME: did the server see the expected request?
    local rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=
    if [[ $rc -ne 0 ]]; then
        fail "$1: server saw an unexpected request: $(cat "$TMP/server.err")"
        return 1
    fi
}

run() { # ARGS...: runs the client, sets RC, OUT, ERR
    RC=0
    "$CTL" "$@" >"$TMP/out" 2>"$TMP/err" || RC=$?
    OUT=$(cat "$TMP/out")
    ERR=$(cat "$TMP/err")
}

# expect_request NAME METHOD PARAMS ANSWER -- ARGS...: the client, given ARGS,
# sends METHOD/PARAMS and exits 0 on ANSWER.
expect_request() {
    local name=$1 method=$2 params=$3 answer=$4
    shift 5
    start_server "$method" "$params" "$answer" || return 0
    run --socket "$SOCK" "$@"
    stop_server "$name" || return 0
    if [[ $RC -ne 0 ]]; then
        fail "$name: exit status $RC, expected 0; stderr: $ERR"
        return 0
    fi
    echo "ok: $name"
}

# usage_error NEEDLE ARGS...: exit 2, nothing on stdout, one line on stderr
# that starts with "vswitch-ctl: " and contains NEEDLE. No server runs: a
# client that connected anyway would fail with exit 1.
usage_error() {
    local needle=$1
    shift
    run "$@"
    local what="vswitch-ctl $*"
    if [[ $RC -ne 2 ]]; then
        fail "$what: exit status $RC, expected 2; stderr: $ERR"
    elif [[ -n $OUT ]]; then
        fail "$what: printed on stdout: $OUT"
    elif [[ $(wc -l <"$TMP/err") -ne 1 ]]; then
        fail "$what: expected one line on stderr, got: $ERR"
    elif [[ $ERR != "vswitch-ctl: "* ]]; then
        fail "$what: message does not start with 'vswitch-ctl: ': $ERR"
    elif [[ $ERR != *"$needle"* ]]; then
        fail "$what: message does not mention '$needle': $ERR"
    else
        echo "ok: usage error: $ERR"
    fi
}

# ---- argument errors: exit 2, one line naming the bad value ----

usage_error "4095" nic-add vm1 eth0 --switch sw1 --vlan 4095
usage_error "0..4094" nic-add vm1 eth0 --switch sw1 --vlan -1
usage_error "02:00:00:00:00:zz" nic-add vm1 eth0 --switch sw1 --mac 02:00:00:00:00:zz
usage_error "01:00:5e:00:00:01" nic-add vm1 eth0 --switch sw1 --mac 01:00:5e:00:00:01
usage_error "00:00:00:00:00:00" nic-add vm1 eth0 --switch sw1 --mac 00:00:00:00:00:00
usage_error "frobnicate" frobnicate
usage_error "--trunk" nic-add vm1 eth0 --switch sw1 --vlan 10 --trunk 20-30
usage_error "--vlan" nic-set vm1 eth0 --trunk 20 --vlan 10
usage_error "5000" nic-set vm1 eth0 --trunk 10,5000
usage_error "30-20" nic-set vm1 eth0 --trunk 10,30-20
usage_error "10,,20" nic-set vm1 eth0 --trunk 10,,20
usage_error "9001" switch-add sw1 --type private --mtu 9001
usage_error "67" nic-add vm1 eth0 --switch sw1 --mtu 67
usage_error "1..64" vm-add vm1 --cpus 0
usage_error "1..64" vm-add vm1 --cpus 65
usage_error "allowed on or off" vm-add vm1 --guest-offloads maybe
usage_error "abc" switch-set sw1 --mtu abc
usage_error "--type" switch-add sw1
usage_error "bridged" switch-add sw1 --type bridged
usage_error "--uplink" switch-add sw1 --type external
usage_error "--uplink" switch-add sw1 --type private --uplink net_null0
usage_error "--mtu" switch-set sw1
usage_error "bad name!" switch-add 'bad name!' --type private
usage_error "a-name-that-is-longer-than-31-ch" vm-add a-name-that-is-longer-than-31-chars
usage_error "'lo'" nic-add vm1 lo --switch sw1
usage_error "sixteen-chars-xx" nic-add vm1 sixteen-chars-xx --switch sw1
usage_error "missing NAME" switch-del
usage_error "extra" switch-del sw1 extra
usage_error "missing NIC" nic-add vm1 --switch sw1
usage_error "--switch" nic-add vm1 eth0
usage_error "--bogus" switch-list --bogus
usage_error "extra" worker-show extra
usage_error "--bogus" worker-show --bogus
usage_error "--clear" worker-show --clear=yes
usage_error "extra" vmq-show sw1 extra
usage_error "--bogus" vmq-show --bogus
usage_error "bad name!" vmq-show 'bad name!'
usage_error "--json" switch-list --json
usage_error "32" vm-add vm1 --memory 32
usage_error "70000" vm-add vm1 --memory 70000
usage_error "1000001" nic-set vm1 eth0 --max-mbps 1000001
usage_error "maybe" nic-set vm1 eth0 --dhcp-guard maybe
# VMQ on/off and weight (Hyper-V's -VmqWeight): live on nic-set, and on nic-add.
expect_request "nic-set --vmq off" nic-set '{"vm":"vm1","nic":"eth0","vmq":false}' \
    '{"result":{}}' -- nic-set vm1 eth0 --vmq off
expect_request "nic-set --vmq on --vmq-weight" nic-set \
    '{"vm":"vm1","nic":"eth0","vmq":true,"vmq_weight":0}' '{"result":{}}' -- \
    nic-set vm1 eth0 --vmq on --vmq-weight 0
expect_request "nic-add --vmq-weight" nic-add \
    '{"vm":"vm1","nic":"eth1","switch":"sw1","vmq_weight":100}' \
    '{"result":{"mac":"02:00:00:00:00:01"}}' -- nic-add vm1 eth1 --switch sw1 --vmq-weight 100
usage_error "maybe" nic-set vm1 eth0 --vmq maybe
usage_error "0..100" nic-set vm1 eth0 --vmq-weight 101
usage_error "0..100" nic-add vm1 eth1 --switch sw1 --vmq-weight -1
usage_error "yes" nic-set vm1 eth0 --dhcp-guard yes
usage_error "nothing to change" nic-set vm1 eth0
usage_error "--mtu" switch-add sw1 --type private --mtu 1500 --mtu 9000
usage_error "--mtu" switch-add sw1 --type private --mtu
usage_error "vm1/" stats vm1/
usage_error "--dst" mirror-add sw1 --src vm1/eth0
usage_error "-w" capture vm1/eth0
usage_error "0" capture vm1/eth0 -w x.pcap -c 0
usage_error "--timeout" --timeout 0 switch-list
usage_error "--nope" --nope switch-list
usage_error "missing command" --json

# ---- the requests sent ----

expect_request "switch-add with every flag" switch-add \
    '{"name":"sw1","type":"external","uplink":"net_pcap0,iface=eth0","allow_management_os":true,"mtu":9000}' \
    '{"result":{}}' -- \
    switch-add sw1 --type external --uplink net_pcap0,iface=eth0 --allow-management-os --mtu 9000
[[ -z $OUT ]] || fail "switch-add printed: $OUT"

expect_request "switch-add, --opt=value form" switch-add '{"name":"sw2","type":"private","mtu":1500}' \
    '{"result":{}}' -- switch-add sw2 --type=private --mtu=1500

expect_request "nic-add with mac and mtu" nic-add \
    '{"vm":"vm1","nic":"eth0","switch":"sw1","mac":"02:aa:bb:cc:dd:ee","mtu":9000}' \
    '{"result":{"mac":"02:aa:bb:cc:dd:ee"}}' -- \
    nic-add vm1 eth0 --switch sw1 --mac 02:AA:bb:cc:dd:ee --mtu 9000
[[ $OUT == "02:aa:bb:cc:dd:ee" ]] || fail "nic-add printed '$OUT', expected the MAC"

expect_request "nic-set with every option" nic-set \
    '{"vm":"vm1","nic":"eth0","switch":"sw2","trunk":[10,20,21,22],"native_vlan":20,"mtu":9000,"mac_spoofing":false,"dhcp_guard":true,"router_guard":true,"max_mbps":100,"storm_limit":500}' \
    '{"result":{}}' -- \
    nic-set vm1 eth0 --switch sw2 --trunk 22,10,20-21 --native-vlan 20 --mtu 9000 --mac-spoofing off \
    --dhcp-guard on --router-guard on --max-mbps 100 --storm-limit 500

expect_request "nic-set --worker LCORE" nic-set '{"vm":"vm1","nic":"eth0","worker":3}' \
    '{"result":{}}' -- nic-set vm1 eth0 --worker 3
expect_request "nic-set --worker auto" nic-set '{"vm":"vm1","nic":"eth0","worker":"auto"}' \
    '{"result":{}}' -- nic-set vm1 eth0 --worker auto
usage_error "allowed auto or an lcore 0..1023" nic-set vm1 eth0 --worker two
usage_error "allowed auto or an lcore 0..1023" nic-set vm1 eth0 --worker 1024
expect_request "nic-add --queues N" nic-add \
    '{"vm":"vm1","nic":"eth1","switch":"sw1","queues":4}' '{"result":{"mac":"02:00:00:00:00:01"}}' -- \
    nic-add vm1 eth1 --switch sw1 --queues 4
expect_request "nic-set --queues auto" nic-set '{"vm":"vm1","nic":"eth0","queues":"auto"}' \
    '{"result":{}}' -- nic-set vm1 eth0 --queues auto
usage_error "allowed auto or 1..8" nic-set vm1 eth0 --queues 9
usage_error "allowed auto or 1..8" nic-set vm1 eth0 --queues 0
usage_error "allowed auto or 1..8" nic-add vm1 eth1 --switch sw1 --queues four
expect_request "worker-set --dynamic-vmq" worker-set '{"dynamic_vmq":true}' '{"result":{}}' -- \
    worker-set --dynamic-vmq on
usage_error "nothing to change" worker-set
expect_request "worker-set --load-threshold" worker-set '{"dynamic_vmq":false,"load_threshold":5}' \
    '{"result":{}}' -- worker-set --dynamic-vmq off --load-threshold 5
usage_error "allowed 1..100" worker-set --load-threshold 0
usage_error "on or off" worker-set --dynamic-vmq maybe

expect_request "vm-add" vm-add '{"name":"vm1","netns":"ns1","memory_mb":512}' '{"result":{}}' -- \
    vm-add vm1 --netns ns1 --memory 512
expect_request "vm-add --cpus" vm-add '{"name":"vm2","cpus":2}' '{"result":{}}' -- \
    vm-add vm2 --cpus 2
expect_request "vm-add --guest-offloads" vm-add '{"name":"vm3","guest_offloads":false}' '{"result":{}}' -- \
    vm-add vm3 --guest-offloads off

expect_request "vm-start" vm-start '{"name":"vm1"}' '{"result":{"state":"running","pid":4242}}' -- \
    vm-start vm1
[[ $OUT == "vm1: running (pid 4242)" ]] || fail "vm-start printed '$OUT'"

expect_request "switch-list without params" switch-list '{}' \
    '{"result":{"switches":[{"name":"sw1","type":"external","mtu":9000,"ports":2},{"name":"private-switch","type":"private","mtu":1500,"ports":0}]}}' -- \
    switch-list
[[ $(head -n1 <<<"$OUT") == "NAME"*"TYPE"*"MTU"*"PORTS" ]] || fail "switch-list header: $OUT"
grep -q '^private-switch  private   1500  0$' <<<"$OUT" || fail "switch-list table not aligned: $OUT"

expect_request "stats VM/NIC" stats '{"target":"vm1/eth0"}' \
    '{"result":{"ports":[{"switch":"sw1","port":"vm1/eth0","type":"vm","vm":"vm1","nic":"eth0","link":"up","mtu":1500,"rx_packets":10,"rx_bytes":1000,"tx_packets":5,"tx_bytes":500,"drops":{"runt":0,"bad_src_mac":2,"too_big":0,"queue_full":1,"no_destination":3},"guest":{"nvsp_version":"6.1","ndis_version":"6.30","errors":{"nvsp_short":4,"rndis_bad_len":0},"disconnects":0,"tx_no_buffer":0}}]}}' -- \
    stats vm1/eth0
grep -q '^port vm1/eth0: rx pkts=10, bytes=1000, drop=5$' <<<"$OUT" || fail "stats rx line: $OUT"
grep -q '^ *tx pkts=5, bytes=500, drop=1$' <<<"$OUT" || fail "stats tx line: $OUT"
grep -q 'drops: bad_src_mac=2, queue_full=1, no_destination=3$' <<<"$OUT" || fail "stats drop reasons: $OUT"
grep -q 'guest errors: nvsp_short=4$' <<<"$OUT" || fail "stats guest errors: $OUT"
if grep -q 'runt\|rndis_bad_len\|disconnects' <<<"$OUT"; then fail "stats lists zero counters: $OUT"; fi

expect_request "stats, control counters" stats '{}' \
    '{"result":{"ports":[],"control":{"requests":9,"malformed":1,"unknown_method":0,"bad_params":2,"failed":0,"slow_clients":3}}}' -- \
    stats
[[ $OUT == "control: 9 requests, 3 refused (malformed 1, unknown method 0, bad params 2, failed 0), 3 slow clients dropped" ]] ||
    fail "stats control line: $OUT"

WORKERS='{"result":{"tsc_hz":2596000000,"cleared":false,"workers":[{"worker":0,"lcore":1,"seconds":2.5,"rounds":1000,"busy_rounds":400,"busy_pct":12.5,"busy_cycles":811250000,"idle_cycles":5680000000,"sleep_cycles":0,"sleeps":3,"wakeups":2,"rx_packets":8000000,"tx_packets":7999990,"cycles_per_packet":101.40625,"ports":[{"port":"vm1/eth0","switch":"sw1","rx_packets":8000000,"tx_packets":0,"load_pct":10.5,"cycles":5000,"moves":1,"worker":"auto","pin_missing":false},{"port":"sw1:uplink","switch":"sw1","rx_packets":0,"tx_packets":7999990,"load_pct":2.0,"cycles":300,"moves":0,"worker":7,"pin_missing":true}]},{"worker":1,"lcore":2,"seconds":2.5,"rounds":50,"busy_rounds":0,"busy_pct":0,"busy_cycles":0,"idle_cycles":100,"sleep_cycles":6491249900,"sleeps":25,"wakeups":0,"rx_packets":0,"tx_packets":0,"cycles_per_packet":0,"ports":[]}],"placement":{"dynamic_vmq":true,"samples":10,"moves":3,"spread_moves":1,"pack_moves":1,"pin_moves":1,"move_failures":0}}}'
expect_request "worker-show" worker-show '{}' "$WORKERS" -- worker-show
grep -q '^worker 0 (lcore 1), over 2.500 s:$' <<<"$OUT" || fail "worker-show header: $OUT"
grep -q '^  rounds: 1000 (400 busy)$' <<<"$OUT" || fail "worker-show rounds: $OUT"
grep -q '^  busy: 12.5 %$' <<<"$OUT" || fail "worker-show busy: $OUT"
grep -q '^  cycles: busy 811250000, idle 5680000000, asleep 0$' <<<"$OUT" || fail "worker-show cycles: $OUT"
grep -q '^  packets: rx 8000000, tx 7999990$' <<<"$OUT" || fail "worker-show packets: $OUT"
grep -q '^  cycles per packet: 101.4$' <<<"$OUT" || fail "worker-show cycles per packet: $OUT"
grep -q '^  PORT        SWITCH       RX       TX  LOAD%  PIN   MOVES$' <<<"$OUT" || fail "worker-show port header: $OUT"
grep -q '^  vm1/eth0    sw1     8000000        0   10.5  auto      1$' <<<"$OUT" || fail "worker-show port row: $OUT"
grep -q '^  sw1:uplink  sw1           0  7999990      2  7         0$' <<<"$OUT" || fail "worker-show pinned port row: $OUT"
grep -q '^  sw1:uplink: pinned to lcore 7, where no worker runs: placed automatically$' <<<"$OUT" ||
    fail "worker-show missing pin: $OUT"
grep -q '^dynamic VMQ: on; moves: 3 (spread 1, pack 1, pinned 1)$' <<<"$OUT" || fail "worker-show placement: $OUT"
grep -q '^  cycles per packet: - (nothing received)$' <<<"$OUT" || fail "worker-show idle worker: $OUT"
grep -q '^  ports: none$' <<<"$OUT" || fail "worker-show worker without ports: $OUT"
if grep -q 'cleared' <<<"$OUT"; then fail "worker-show says cleared: $OUT"; fi
expect_request "worker-show --clear" worker-show '{"clear":true}' \
    '{"result":{"tsc_hz":1,"cleared":true,"workers":[]}}' -- worker-show --clear
[[ $OUT == "(cleared: counting from zero again)" ]] || fail "worker-show --clear: $OUT"
expect_request "worker-show --json" worker-show '{}' "$WORKERS" -- --json worker-show
python3 -c '
import json, sys
d = json.loads(sys.argv[1])
w = d["workers"][0]
assert w["cycles_per_packet"] == 101.40625 and w["ports"][1]["tx_packets"] == 7999990, w
' "$OUT" || fail "worker-show --json: $OUT"

# worker-show: the queues each worker serves of its ports (a range list).
WORKERS_Q='{"result":{"tsc_hz":1,"cleared":false,"workers":[{"worker":0,"lcore":1,"seconds":1,"rounds":1,"busy_rounds":0,"busy_pct":0,"busy_cycles":0,"idle_cycles":1,"sleep_cycles":0,"sleeps":0,"wakeups":0,"rx_packets":0,"tx_packets":0,"cycles_per_packet":0,"ports":[{"port":"vm1/eth0","switch":"sw1","rx_packets":5,"tx_packets":6,"load_pct":1.5,"cycles":9,"moves":0,"worker":"auto","pin_missing":false,"queues":[0,1,3]},{"port":"sw1:uplink","switch":"sw1","rx_packets":0,"tx_packets":0,"load_pct":0,"cycles":0,"moves":0,"worker":"auto","pin_missing":false,"queues":[0,1,2,3]}]}]}}'
expect_request "worker-show queues" worker-show '{}' "$WORKERS_Q" -- worker-show
grep -q '^  PORT        SWITCH  RX  TX  LOAD%  PIN   MOVES  QUEUES$' <<<"$OUT" || fail "worker-show queues header: $OUT"
grep -q '^  vm1/eth0    sw1      5   6    1.5  auto      0  0-1,3$' <<<"$OUT" || fail "worker-show queues row: $OUT"
grep -q '^  sw1:uplink  sw1      0   0      0  auto      0  0-3$' <<<"$OUT" || fail "worker-show uplink queues row: $OUT"

# vmq-show: one row per queue; SW passed as "switch"; the server's refusal
# of an unknown switch is exit 1 with its message.
VMQ='{"result":{"classifier":"software","hardware_filters":false,"queues":[{"switch":"sw1","queue":"sw1:uplink:0","port":"sw1:uplink","type":"uplink","index":0,"default":true,"open":true,"filter":null,"classifier":"software","worker":0,"lcore":1,"load_pct":0.5,"load_scope":"port","rx_packets":40,"tx_packets":41},{"switch":"sw1","queue":"vm1/eth0:0","port":"vm1/eth0","type":"vm","vm":"vm1","nic":"eth0","index":0,"default":false,"vmq":true,"vmq_weight":40,"shares_default":false,"open":true,"filter":{"mac":"02:00:00:00:00:01","vlan":{"mode":"access","vlan":10},"fdb_vlans":[10]},"classifier":"software","worker":1,"lcore":2,"load_pct":12.5,"load_scope":"port","rx_packets":7,"tx_packets":8},{"switch":"sw1","queue":"vm1/eth0:3","port":"vm1/eth0","type":"vm","vm":"vm1","nic":"eth0","index":3,"default":false,"open":true,"filter":{"mac":"02:00:00:00:00:01","vlan":{"mode":"trunk","allowed":[5,6,7,9],"native":0},"fdb_vlans":[]},"classifier":"software","worker":1,"lcore":2,"load_pct":12.5,"load_scope":"port","rx_packets":900,"tx_packets":0},{"switch":"sw1","queue":"vm2/eth0:0","port":"vm2/eth0","type":"vm","vm":"vm2","nic":"eth0","index":0,"default":false,"vmq":false,"vmq_weight":100,"shares_default":true,"open":false,"filter":{"mac":"02:00:00:00:00:02","vlan":{"mode":"untagged"},"fdb_vlans":[]},"classifier":"software","worker":0,"lcore":1,"load_pct":0,"load_scope":"port","rx_packets":0,"tx_packets":0}]}}'
expect_request "vmq-show" vmq-show '{}' "$VMQ" -- vmq-show
grep -q '^SWITCH  QUEUE         OWNER             OPEN  FILTER                                  CLASSIFIER  LCORE   RX  TX  LOAD%  VMQ$' <<<"$OUT" || fail "vmq-show header: $OUT"
grep -q '^sw1     sw1:uplink:0  default (uplink)  yes   default                                 software        1   40  41    0.5  default$' <<<"$OUT" || fail "vmq-show uplink row: $OUT"
grep -q '^sw1     vm1/eth0:0    vm1/eth0          yes   02:00:00:00:00:01 vlan 10               software        2    7   8   12.5  on 40$' <<<"$OUT" || fail "vmq-show access row: $OUT"
grep -q '^sw1     vm1/eth0:3    vm1/eth0          yes   02:00:00:00:00:01 trunk 5-7,9 native 0  software        2  900   0   12.5  -$' <<<"$OUT" || fail "vmq-show trunk row (no vmq from an older vswitchd): $OUT"
grep -q '^sw1     vm2/eth0:0    vm2/eth0          no    02:00:00:00:00:02 untagged              software        1    0   0      0  off (shared)$' <<<"$OUT" || fail "vmq-show untagged row: $OUT"
grep -q '^LOAD% is per port, shown on each of its queues. Frames reach the queues by$' <<<"$OUT" ||
    fail "vmq-show load note: $OUT"
expect_request "vmq-show SW" vmq-show '{"switch":"sw1"}' \
    '{"result":{"classifier":"software","hardware_filters":false,"queues":[]}}' -- vmq-show sw1
[[ $OUT == "no queues" ]] || fail "vmq-show with no queues: $OUT"
expect_request "vmq-show --json" vmq-show '{}' "$VMQ" -- --json vmq-show
python3 -c '
import json, sys
d = json.loads(sys.argv[1])
q = d["queues"]
assert len(q) == 4 and q[2]["index"] == 3 and q[2]["rx_packets"] == 900, q
assert q[1]["filter"]["fdb_vlans"] == [10] and d["classifier"] == "software", d
' "$OUT" || fail "vmq-show --json: $OUT"
start_server vmq-show '{"switch":"nope"}' \
    '{"error":{"code":-32000,"message":"no switch '"'"'nope'"'"'"}}'
run --socket "$SOCK" vmq-show nope
stop_server "vmq-show unknown switch" || true
if [[ $RC -eq 1 && $ERR == "vswitch-ctl: no switch 'nope'" && -z $OUT ]]; then
    echo "ok: vmq-show unknown switch: $ERR"
else
    fail "vmq-show unknown switch: rc $RC (expected 1), stderr '$ERR'"
fi

expect_request "mirror-add" mirror-add '{"switch":"sw1","src":["vm1/eth0","vm2/eth0"],"dst":"vm3/eth0"}' \
    '{"result":{}}' -- mirror-add sw1 --src vm1/eth0,vm2/eth0 --dst vm3/eth0

mkdir "$TMP/cwd"
cd "$TMP/cwd"
expect_request "capture, relative file made absolute" capture \
    "{\"port\":\"vm1/eth0\",\"file\":\"$TMP/cwd/x.pcap\",\"count\":10,\"timeout\":5}" \
    '{"result":{"packets":10}}' -- capture vm1/eth0 -w x.pcap -c 10 --timeout 5
cd - >/dev/null
[[ $OUT == "10 packets written to $TMP/cwd/x.pcap" ]] || fail "capture printed '$OUT'"
expect_request "capture --force" capture \
    '{"port":"sw1:uplink","file":"/tmp/y.pcap","timeout":1,"force":true}' \
    '{"result":{"packets":0}}' -- capture sw1:uplink -w /tmp/y.pcap --timeout 1 --force

start_server vm-list '{}' '{"result":{"vms":[{"name":"vm1","netns":"vm1","memory_mb":256,"cpus":2,"state":"stopped","pid":0,"nics":1}]}}'
RC=0
HVNET_SOCKET=$SOCK "$CTL" vm-list >"$TMP/out" 2>"$TMP/err" || RC=$?
if stop_server "HVNET_SOCKET" && [[ $RC -eq 0 ]] &&
    grep -q '^vm1   vm1          256     2  stopped    -  1$' "$TMP/out"; then
    echo "ok: HVNET_SOCKET is used; vm-list table"
else
    fail "HVNET_SOCKET / vm-list: rc $RC, $(cat "$TMP/out" "$TMP/err")"
fi

# ---- server errors: exit 1 and the server's message ----

start_server switch-add '{"name":"sw1","type":"private"}' \
    '{"error":{"code":-32000,"message":"switch '"'"'sw1'"'"' already exists"}}'
run --socket "$SOCK" switch-add sw1 --type private
stop_server "server error" || true
if [[ $RC -eq 1 && $ERR == "vswitch-ctl: switch 'sw1' already exists" && -z $OUT ]]; then
    echo "ok: server error: $ERR"
else
    fail "server error: rc $RC (expected 1), stderr '$ERR'"
fi

# An older vswitchd that does not know a method the client has.
start_server fdb-flush '{"switch":"sw1"}' '{"error":{"code":-32601,"message":"unknown method '"'"'fdb-flush'"'"'"}}'
run --socket "$SOCK" fdb-flush sw1
stop_server "unknown method" || true
[[ $RC -eq 1 && $ERR == "vswitch-ctl: unknown method 'fdb-flush'" ]] &&
    echo "ok: -32601: $ERR" || fail "-32601: rc $RC, stderr '$ERR'"

# ---- --json ----

start_server switch-show '{"name":"sw1"}' \
    '{"result":{"name":"sw1","type":"private","mtu":1500,"fdb_max":8192,"fdb_aging":300,"fdb_entries":1,"ports":[{"port":"vm1/eth0","type":"vm","link":"up","mtu":1500,"rx_packets":1,"rx_bytes":60,"tx_packets":2,"tx_bytes":120,"drops":{"runt":1}}]}}'
run --socket "$SOCK" --json switch-show sw1
stop_server "--json" || true
if [[ $RC -eq 0 ]] && python3 -m json.tool "$TMP/out" >/dev/null &&
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ports"][0]["port"]=="vm1/eth0" and d["fdb_max"]==8192' "$TMP/out"; then
    echo "ok: --json output is the result as JSON"
else
    fail "--json: rc $RC, output: $OUT $ERR"
fi

# ---- human layouts ----

expect_request "switch-show" switch-show '{"name":"sw1"}' \
    '{"result":{"name":"sw1","type":"private","mtu":1500,"fdb_max":8192,"fdb_aging":300,"fdb_entries":1,"ports":[{"port":"vm1/eth0","type":"vm","link":"up","mtu":1500,"rx_packets":1,"rx_bytes":60,"tx_packets":2,"tx_bytes":120,"drops":{"runt":1,"queue_full":2}}]}}' -- \
    switch-show sw1
grep -q '^  fdb: 1 entries, max 8192, aging 300 s$' <<<"$OUT" || fail "switch-show fdb line: $OUT"
grep -q '^    vm1/eth0  vm    up    1500 ' <<<"$OUT" || fail "switch-show port line: $OUT"
grep -q ' 3$' <<<"$OUT" || fail "switch-show drops column: $OUT"

expect_request "fdb-show" fdb-show '{"switch":"sw1"}' \
    '{"result":{"entries":[{"port":"vm1/eth0","vlan":0,"mac":"02:00:00:00:00:01","age":12,"static":false},{"port":"up","vlan":10,"mac":"02:00:00:00:00:02","age":0,"static":true}]}}' -- \
    fdb-show sw1
grep -q ' port  VLAN  MAC                Age$' <<<"$OUT" || fail "fdb-show header: $OUT"
grep -q '^vm1/eth0     0  02:00:00:00:00:01   12$' <<<"$OUT" || fail "fdb-show learned row: $OUT"
grep -q '^      up    10  02:00:00:00:00:02  static$' <<<"$OUT" || fail "fdb-show static row: $OUT"

expect_request "fdb-show, short port names" fdb-show '{"switch":"sw1"}' \
    '{"result":{"entries":[{"port":"up","vlan":0,"mac":"02:00:00:00:00:01","age":7,"static":false}]}}' -- \
    fdb-show sw1
[[ $OUT == " port  VLAN  MAC                Age"$'\n'"   up     0  02:00:00:00:00:01    7" ]] ||
    fail "fdb-show is not in the ovs-appctl fdb/show shape: $OUT"

expect_request "nic-list, fields missing" nic-list '{"vm":"vm1"}' \
    '{"result":{"nics":[{"vm":"vm1","nic":"eth0","switch":"sw1","mac":"02:00:00:00:00:01"}]}}' -- \
    nic-list vm1
grep -q '^vm1  eth0  sw1     02:00:00:00:00:01    -  -$' <<<"$OUT" || fail "nic-list with missing fields: $OUT"

# ---- connecting, timeouts ----

run --socket "$TMP/missing.sock" switch-list
if [[ $RC -eq 1 && $ERR == "vswitch-ctl: cannot connect to vswitchd at $TMP/missing.sock: No such file or directory (is vswitchd running?)" ]]; then
    echo "ok: missing socket: $ERR"
else
    fail "missing socket: rc $RC, stderr '$ERR'"
fi

start_server switch-list '{}' HANG
start=$SECONDS
run --socket "$SOCK" --timeout 1 switch-list
kill "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=
if [[ $RC -eq 1 && $ERR == *"no answer from vswitchd"* && $((SECONDS - start)) -le 5 ]]; then
    echo "ok: timeout: $ERR"
else
    fail "timeout: rc $RC after $((SECONDS - start)) s, stderr '$ERR'"
fi

# ---- help ----

run --help
[[ $RC -eq 0 && $OUT == *"switch-add "*"capture "* ]] || fail "--help: rc $RC"
[[ $OUT == *"vmq-show "* ]] || fail "--help does not list vmq-show: $OUT"
run help nic-add
[[ $RC -eq 0 && $OUT == *"--router-guard on|off"* ]] || fail "help nic-add: rc $RC: $OUT"
for cmd in nic-add nic-set; do
    run help "$cmd"
    [[ $RC -eq 0 && $OUT == *"--vmq on|off"* && $OUT == *"--vmq-weight N"* &&
        $OUT == *"--queues N|auto"* ]] ||
        fail "help $cmd does not offer --vmq, --vmq-weight and --queues: $OUT"
done
run help worker-show
[[ $RC -eq 0 && $OUT == *"worker-show [--clear]"* && $OUT == *"cycles per packet"* &&
    $OUT == *"--clear"*"pmd-stats-clear"* ]] || fail "help worker-show: rc $RC: $OUT"
run help vmq-show
[[ $RC -eq 0 && $OUT == *"vmq-show [SW]"* && $OUT == *"sub-channel"* &&
    $OUT == *"default queues"* && $OUT == *"no hardware VMQ filter"* ]] ||
    fail "help vmq-show: rc $RC: $OUT"
run capture --help
[[ $RC -eq 0 && $OUT == *"-w FILE"* && $OUT == *"--force"*"symbolic link"* ]] ||
    fail "capture --help: rc $RC: $OUT"
run --version
[[ $RC -eq 0 && $OUT == "vswitch-ctl (hvnet) "* ]] || fail "--version: rc $RC: $OUT"
echo "ok: --help, help COMMAND, COMMAND --help, --version"

if [[ $FAILS -ne 0 ]]; then
    echo "$FAILS check(s) failed" >&2
    exit 1
fi
echo "all vswitch-ctl checks passed"
