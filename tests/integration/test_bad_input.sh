#!/usr/bin/env bash
# An operator's wrong input gets a one-line error saying what was wrong, a
# non-zero status, and changes nothing (the state file is byte-identical;
# vswitchd keeps running). Checked through vswitch-ctl and, bypassing its own
# checks, with raw JSON-RPC requests.
# Usage: test_bad_input.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
hv_start
vctl switch-add sw --type private
vctl vm-add "$(hv_vm_name a)"
A=$(hv_vm_name a)
HV_NS+=("$A")
vctl nic-add "$A" eth0 --switch sw --mac 02:00:00:81:00:01 >/dev/null
sum() { sha256sum "$HV_STATE" | cut -d' ' -f1; }
before=$(sum)

# expect_error "what the message must mention" vswitch-ctl-args...
expect_error() {
    local want="$1"
    shift
    local err rc=0
    err=$(vctl "$@" 2>&1 >/dev/null) || rc=$?
    [ "$rc" -ne 0 ] || hv_fail "'vswitch-ctl $*' succeeded"
    [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || hv_fail "'vswitch-ctl $*': not one line: $err"
    [[ "$err" == *"$want"* ]] || hv_fail "'vswitch-ctl $*': '$err' does not mention '$want'"
    [ "$(sum)" = "$before" ] || hv_fail "'vswitch-ctl $*' changed the state file"
    echo "ok: vswitch-ctl $* -> $err"
}
expect_error "nosuch" nic-add "$A" eth1 --switch nosuch
expect_error "nosuch" switch-show nosuch
expect_error "02:00:zz" nic-add "$A" eth1 --switch sw --mac 02:00:zz:00:00:01
expect_error "multicast" nic-add "$A" eth1 --switch sw --mac 01:00:5e:00:00:01
expect_error "4095" nic-add "$A" eth1 --switch sw --vlan 4095
expect_error "4095" nic-set "$A" eth0 --trunk 10,4095
expect_error "already has a NIC" nic-add "$A" eth0 --switch sw
expect_error "already used" nic-add "$A" eth1 --switch sw --mac 02:00:00:81:00:01
expect_error "already exists" switch-add sw --type private
expect_error "no such device" switch-add ext --type external --uplink "net_af_packet9,iface=nonexistent$HV_TAG"
expect_error "no such device" switch-set sw --type external --uplink "net_af_packet9,iface=nonexistent$HV_TAG"
expect_error "used by" switch-del sw
expect_error "9001" switch-set sw --mtu 9001
expect_error "lo" nic-add "$A" lo --switch sw
expect_error "nosuchvm" vm-del nosuchvm

# Raw requests: the server checks everything itself.
rpc() {
    python3 - "$HV_SOCK" "$1" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    d = s.recv(65536)
    if not d:
        break
    buf += d
r = json.loads(buf)
print(r["error"]["code"], r["error"]["message"]) if "error" in r else print("ok")
PY
}
expect_rpc() { # code, text, request
    local out
    out=$(rpc "$3")
    [[ "$out" == "$1 "*"$2"* ]] || hv_fail "request $3 answered '$out', expected $1 ... $2"
    [ "$(sum)" = "$before" ] || hv_fail "request $3 changed the state file"
    echo "ok: $3 -> $out"
}
expect_rpc -32700 "not JSON" '{"jsonrpc":"2.0","id":1,"method":'
expect_rpc -32601 "unknown method" '{"jsonrpc":"2.0","id":1,"method":"bogus","params":{}}'
expect_rpc -32600 "JSON-RPC" '{"jsonrpc":"1.0","id":1,"method":"switch-list"}'
expect_rpc -32602 "unknown parameter" '{"jsonrpc":"2.0","id":1,"method":"switch-add","params":{"name":"x","type":"private","colour":"red"}}'
expect_rpc -32602 "vlan 4095" '{"jsonrpc":"2.0","id":1,"method":"nic-add","params":{"vm":"'"$A"'","nic":"eth1","switch":"sw","vlan":4095}}'
expect_rpc -32602 "bad nic name" '{"jsonrpc":"2.0","id":1,"method":"nic-add","params":{"vm":"'"$A"'","nic":"a/b","switch":"sw"}}'
expect_rpc -32602 "must be an integer" '{"jsonrpc":"2.0","id":1,"method":"switch-add","params":{"name":"y","type":"private","mtu":"big"}}'
expect_rpc -32602 "not both" '{"jsonrpc":"2.0","id":1,"method":"nic-add","params":{"vm":"'"$A"'","nic":"eth1","switch":"sw","vlan":5,"trunk":[6]}}'
expect_rpc -32602 "bad switch type" '{"jsonrpc":"2.0","id":1,"method":"switch-add","params":{"name":"z","type":"public"}}'
# Every refusal is counted where an operator looks.
vctl --json stats | python3 -c '
import json, sys
c = json.load(sys.stdin)["control"]
print("control counters:", c)
assert c["malformed"] >= 2 and c["unknown_method"] >= 1, c
assert c["bad_params"] >= 6 and c["failed"] >= 1, c
' || hv_fail "refused requests are not counted"
vctl stats | grep -q "^control: .* refused" || hv_fail "vswitch-ctl stats does not show refusals"
kill -0 "$HV_VSD_PID" || hv_fail "vswitchd died on bad input"
hv_pass "bad input"
