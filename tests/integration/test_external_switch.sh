#!/usr/bin/env bash
# External switch against a "physical network": a veth pair whose far end
# sits in a namespace with an ordinary Linux host running dnsmasq (DHCP and
# DNS). The uplink is net_af_packet on the near end. The VMs get their
# addresses from dnsmasq, resolve a name through it, ping and iperf3 the
# host and are reached by it. VLANs cross the uplink tagged (802.1Q on the
# wire), untagged frames stay in the untagged network. The management OS
# gets a vNIC on the switch and loses it again, live; the uplink is replaced
# live; the VMs are never restarted.
# Usage: test_external_switch.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
for t in iperf3 dnsmasq busybox; do
    command -v "$t" >/dev/null || hv_skip "needs $t"
done
hv_start

hv_phys_net 10.63.0.1/24

hv_log "dnsmasq on the physical network: DHCP 10.63.0.100-149, DNS for phys.hvnet.test"
ip netns exec "$PHYS" dnsmasq --keep-in-foreground --user=root --group=root --no-resolv \
    --no-hosts --bind-dynamic --interface="$PEER" --interface="hq$HV_TAG" --except-interface=lo \
    --dhcp-range=10.63.0.100,10.63.0.149,255.255.255.0,10m --dhcp-authoritative \
    --dhcp-leasefile="$HV_DIR/leases" --pid-file="$HV_DIR/dnsmasq.pid" \
    --address=/phys.hvnet.test/10.63.0.1 --log-facility="$HV_DIR/dnsmasq.log" --log-dhcp &
HV_PIDS+=($!)

sw="e${HV_TAG: -6}"
vctl switch-add "$sw" --type external --uplink "net_af_packet_$HV_TAG,iface=$UP"
vctl switch-show "$sw"

# A DHCP client that only sets the address (no resolv.conf: the namespace
# shares the host's /etc).
DHCP_SCRIPT="$HV_DIR/udhcpc.sh"
cat >"$DHCP_SCRIPT" <<'EOF'
#!/bin/sh
case "$1" in
deconfig) ip addr flush dev "$interface" ;;
bound | renew) ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface" ;;
esac
exit 0
EOF
chmod +x "$DHCP_SCRIPT"

# dhcp_vm NAME MAC [nic-add options]: a VM whose eth0 takes its address by DHCP.
dhcp_vm() {
    local vm
    vm=$(hv_vm_name "$1")
    HV_NS+=("$vm")
    vctl vm-add "$vm" >/dev/null
    vctl nic-add "$vm" eth0 --switch "$sw" --mac "$2" "${@:3}" >/dev/null
    vctl vm-start "$vm" >/dev/null
    hv_wait_link "$vm" eth0
    hv_quiet_ns "$vm"
}
vm_ip() { ip -n "$1" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1; }

dhcp_vm a 02:00:00:63:00:01
dhcp_vm b 02:00:00:63:00:02
A=$(hv_vm_name a) B=$(hv_vm_name b)
for vm in "$A" "$B"; do
    ip netns exec "$vm" busybox udhcpc -i eth0 -n -q -t 5 -T 2 -s "$DHCP_SCRIPT" >"$HV_DIR/udhcpc.log" 2>&1 ||
        hv_fail "VM $vm got no DHCP lease: $(cat "$HV_DIR/udhcpc.log"; vctl stats "$sw")"
done
ipa=$(vm_ip "$A")
ipb=$(vm_ip "$B")
echo "leases: A $ipa, B $ipb"
[[ "$ipa" == 10.63.0.1[0-4][0-9] && "$ipb" == 10.63.0.1[0-4][0-9] ]] || hv_fail "addresses not from the DHCP range"
grep -q "02:00:00:63:00:01" "$HV_DIR/leases" || hv_fail "dnsmasq has no lease for A"

hv_log "VMs <-> physical host"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 10.63.0.1 >/dev/null || hv_fail "A cannot ping the physical host"
ip netns exec "$PHYS" ping -c 3 -i 0.2 -W 2 "$ipb" >/dev/null || hv_fail "the physical host cannot ping B"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 "$ipb" >/dev/null || hv_fail "A cannot ping B"
ns_out=$(ip netns exec "$A" busybox nslookup phys.hvnet.test 10.63.0.1 2>&1) || true
grep -A3 "phys.hvnet.test" <<<"$ns_out" | grep -qE "Address.*10\.63\.0\.1( |$)" ||
    hv_fail "A cannot resolve phys.hvnet.test through dnsmasq: $ns_out"
vctl fdb-show "$sw" | grep -q "uplink" || hv_fail "the physical host's MAC is not learned on the uplink"

hv_log "iperf3 VM -> physical host and back, 2 s each"
ip netns exec "$PHYS" iperf3 -s -1 -p 5263 >/dev/null 2>&1 &
HV_PIDS+=($!)
sleep 0.5
gbps() { python3 -c "import json,sys; print('%.2f' % (json.load(sys.stdin)['end']['sum_received']['bits_per_second']/1e9))"; }
v2p=$(ip netns exec "$A" timeout 30 iperf3 -c 10.63.0.1 -p 5263 -t 2 -J | gbps) || hv_fail "iperf3 A -> physical failed"
ip netns exec "$B" iperf3 -s -1 -p 5264 >/dev/null 2>&1 &
HV_PIDS+=($!)
sleep 0.5
p2v=$(ip netns exec "$PHYS" timeout 30 iperf3 -c "$ipb" -p 5264 -t 2 -J | gbps) || hv_fail "iperf3 physical -> B failed"
echo "VM -> physical $v2p Gbit/s, physical -> VM $p2v Gbit/s (net_af_packet uplink)"
rx=$(hv_counter "$sw:uplink" "['rx_packets']")
tx=$(hv_counter "$sw:uplink" "['tx_packets']")
[ "$rx" -gt 1000 ] && [ "$tx" -gt 1000 ] || hv_fail "uplink counters did not move (rx $rx, tx $tx)"

L2="python3 $(dirname "$0")/l2.py"
hv_log "VLANs on the uplink: B in VLAN 10; its frames leave tagged, tagged frames come back to it"
vctl nic-set "$B" eth0 --vlan 10
ip netns exec "$PHYS" $L2 recv "$PEER" --tag vout --timeout 3 --min 4 >"$HV_DIR/r.phys" &
rp=$!
sleep 0.5
ip netns exec "$B" $L2 send eth0 --dst 02:00:00:63:00:99 --count 4 --tag vout >/dev/null
wait $rp || true
grep -q "vlan 10 frames 4" "$HV_DIR/r.phys" || hv_fail "B's frames did not leave tagged 10: $(cat "$HV_DIR/r.phys")"
ip netns exec "$B" $L2 recv eth0 --tag vin --timeout 3 >"$HV_DIR/r.b" &
rb=$!
ip netns exec "$A" $L2 recv eth0 --tag vin --timeout 3 >"$HV_DIR/r.a" &
ra=$!
sleep 0.5
ip netns exec "$PHYS" $L2 send "$PEER" --dst 02:00:00:63:00:02 --vlan 10 --count 3 --tag vin >/dev/null
ip netns exec "$PHYS" $L2 send "$PEER" --dst ff:ff:ff:ff:ff:ff --vlan 10 --count 2 --tag vin >/dev/null
wait $rb || true
wait $ra || true
grep -q "vlan 0 frames 5" "$HV_DIR/r.b" || hv_fail "B did not get the 5 VLAN-10 frames untagged: $(cat "$HV_DIR/r.b")"
grep -q none "$HV_DIR/r.a" || hv_fail "A (untagged) saw VLAN-10 frames: $(cat "$HV_DIR/r.a")"
ip netns exec "$PHYS" ping -c 2 -i 0.2 -W 1 "$ipb" >/dev/null 2>&1 &&
    hv_fail "untagged traffic reached B in VLAN 10"
ip netns exec "$A" ping -c 2 -i 0.2 -W 2 10.63.0.1 >/dev/null || hv_fail "A lost the physical host"
vctl nic-set "$B" eth0 --vlan 0 ||
    hv_fail "cannot take B out of its VLAN"
ip netns exec "$PHYS" ping -c 3 -i 0.2 -W 2 "$ipb" >/dev/null || hv_fail "B unreachable after leaving VLAN 10"

hv_log "management OS: on, live (a host vNIC on the physical network), then off"
pid=$(vctl --json vm-list | python3 -c "import json,sys; print(sorted(v['pid'] for v in json.load(sys.stdin)['vms']))")
vctl switch-set "$sw" --allow-management-os on
vnic="vs-$sw"
ip link show "$vnic" >/dev/null || hv_fail "no host vNIC after --allow-management-os on"
HV_BRIDGES+=("$vnic")
sysctl -qw "net.ipv6.conf.$vnic.disable_ipv6=1"
ip addr add 10.63.0.254/24 dev "$vnic"
ping -c 3 -i 0.2 -W 2 10.63.0.1 >/dev/null || hv_fail "the host cannot reach the physical network"
ping -c 3 -i 0.2 -W 2 "$ipa" >/dev/null || hv_fail "the host cannot reach VM A"
hv_log "management VLAN 20: the host's frames leave tagged"
vctl switch-set "$sw" --management-vlan 20
ip netns exec "$PHYS" $L2 recv "$PEER" --tag mgmt --timeout 3 --min 2 >"$HV_DIR/r.mgmt" &
rp=$!
sleep 0.5
python3 "$(dirname "$0")/l2.py" send "$vnic" --dst 02:00:00:63:00:99 --count 2 --tag mgmt >/dev/null
wait $rp || true
grep -q "vlan 20 frames 2" "$HV_DIR/r.mgmt" || hv_fail "management frames not tagged 20: $(cat "$HV_DIR/r.mgmt")"
hv_log "vmq-show: the uplink's and the host vNIC's queues are the switch's default queues"
vctl vmq-show "$sw"
VMQ=$(vctl --json vmq-show "$sw") WS=$(vctl --json worker-show) ST=$(vctl --json stats "$sw:uplink") \
    MAC=$(cat "/sys/class/net/$vnic/address") python3 - "$sw" "$A" "$B" <<'PY' ||
import json, os, sys
sw, a, b = sys.argv[1:]
rows = json.loads(os.environ["VMQ"])["queues"]
lcore = {p["port"]: w["lcore"] for w in json.loads(os.environ["WS"])["workers"] for p in w["ports"]}
nrx = json.loads(os.environ["ST"])["ports"][0]["uplink"]["rx_queues"]
up = [r for r in rows if r["type"] == "uplink"]
host = [r for r in rows if r["type"] == "host"]
vms = sorted(r["port"] for r in rows if r["type"] == "vm")
assert [r["index"] for r in up] == list(range(nrx)), (up, nrx)
assert all(r["default"] and r["filter"] is None for r in up), up
assert len(host) == 1 and host[0]["default"] and host[0]["index"] == 0, host
assert host[0]["filter"]["mac"] == os.environ["MAC"], host
assert host[0]["filter"]["vlan"] == {"mode": "access", "vlan": 20}, host
assert vms == sorted([a + "/eth0", b + "/eth0"]), vms
assert all(r["switch"] == sw and r["classifier"] == "software" for r in rows), rows
assert all(r["lcore"] == lcore[r["port"]] for r in rows), (rows, lcore)
PY
    hv_fail "vmq-show of the external switch is wrong"
vctl switch-set "$sw" --management-vlan 0
vctl switch-set "$sw" --allow-management-os off
ip link show "$vnic" >/dev/null 2>&1 && hv_fail "the host vNIC is still there"
ip netns exec "$A" ping -c 2 -i 0.2 -W 2 10.63.0.1 >/dev/null || hv_fail "A lost the physical host"

hv_log "live uplink change: a second veth to the same physical network"
UP2="hv$HV_TAG"
PEER2="hq$HV_TAG"
HV_BRIDGES+=("$UP2")
ip link add "$UP2" type veth peer name "$PEER2"
ip link set "$PEER2" netns "$PHYS"
ip netns exec "$PHYS" ethtool -K "$PEER2" tx off >/dev/null
sysctl -qw "net.ipv6.conf.$UP2.disable_ipv6=1"
ip link set "$UP2" up
# The physical host is the same (same MAC and address), only the cable moved.
pmac=$(ip netns exec "$PHYS" cat "/sys/class/net/$PEER/address")
ip -n "$PHYS" link set "$PEER" down
ip -n "$PHYS" addr del 10.63.0.1/24 dev "$PEER"
ip -n "$PHYS" link set "$PEER" address 02:00:00:63:00:fe
ip -n "$PHYS" link set "$PEER2" address "$pmac"
ip -n "$PHYS" addr add 10.63.0.1/24 dev "$PEER2"
ip -n "$PHYS" link set "$PEER2" up
vctl switch-set "$sw" --uplink "net_af_packet_${HV_TAG}b,iface=$UP2"
vctl switch-show "$sw" | grep -q "iface=$UP2" || hv_fail "switch-show does not show the new uplink"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 10.63.0.1 >/dev/null || hv_fail "A cannot reach the physical host over the new uplink"

hv_log "external -> internal -> external, live"
vctl switch-set "$sw" --type internal
ip netns exec "$A" ping -c 2 -i 0.2 -W 1 10.63.0.1 >/dev/null 2>&1 && hv_fail "an internal switch reached the physical network"
vctl switch-set "$sw" --type external --uplink "net_af_packet_${HV_TAG}c,iface=$UP2"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 10.63.0.1 >/dev/null || hv_fail "no physical network after going external again"
hv_log "a failed uplink change under the same device name keeps the old uplink"
vctl switch-set "$sw" --uplink "net_af_packet_${HV_TAG}c,iface=nosuch$HV_TAG" 2>/dev/null &&
    hv_fail "an uplink on a missing interface was accepted"
vctl switch-show "$sw" | grep -q "iface=$UP2" || hv_fail "the old uplink is not configured any more"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 10.63.0.1 >/dev/null || hv_fail "the old uplink stopped working"
pid2=$(vctl --json vm-list | python3 -c "import json,sys; print(sorted(v['pid'] for v in json.load(sys.stdin)['vms']))")
[ "$pid" = "$pid2" ] || hv_fail "VMs were restarted ($pid -> $pid2)"

hv_log "the configuration survives a vswitchd restart"
hv_stop
hv_start
vctl switch-show "$sw" | grep -q "iface=$UP2" || hv_fail "uplink lost across a restart"
vctl vm-start "$A" >/dev/null 2>&1 || true
hv_wait_link "$A" eth0
ip netns exec "$A" busybox udhcpc -i eth0 -n -q -t 5 -T 2 -s "$DHCP_SCRIPT" >/dev/null 2>&1 ||
    hv_fail "A got no DHCP lease after the restart"
ip netns exec "$A" ping -c 3 -i 0.2 -W 2 10.63.0.1 >/dev/null || hv_fail "A cannot reach the physical host after a restart"
vctl stats "$sw:uplink"
hv_pass "external switch"
