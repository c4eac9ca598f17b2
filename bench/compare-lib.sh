# The switches of bench/compare.sh, set up for one scenario at a time, each
# the same way: the switch's polling thread alone on CPU 1 (hvnet's worker
# lcore, OVS's PMD thread), and on CPU 0 everything else: the controller
# (vswitch-pktgen on a memif port, the "physical" side), the VMs
# (vswitch-pktgen agents) and the switches' control threads.
#
#   hvnet     vswitchd, an external switch whose uplink is a memif server
#             (the controller is its client); each VM a child partition
#             whose program is vswitch-pktgen on its synthetic NIC
#   ovs-dpdk  OVS with DPDK, a netdev bridge (NORMAL: MAC learning), the
#             controller a memif server (OVS's port its client, 2 queues:
#             its PMD thread sends on queue 1), each VM vswitch-pktgen on a
#             net_virtio_user port whose vhost-user peer is an OVS
#             dpdkvhostuserclient port
#
# cmp_up SWITCH NVMS fills CMP_CTL_VDEV / CMP_CTL_EAL (the controller's port
# and EAL arguments), CMP_VM_MAC[i] and CMP_HOOK (a command for
# vswitch-pktgen --trial-hook: "begin" clears the switch's cycle counters,
# "end" appends "SIZE CYCLES_PER_PACKET BUSY_PCT" to $CMP_RUN/cycles.txt,
# bench/compare-cycles.py); VMs are
# started by cmp_vm_start I ARGS... (agent arguments); cmp_down removes
# everything. Names carry the run's tag; bench_cleanup's trap (bench/lib.sh)
# calls cmp_down on any exit.
# shellcheck shell=bash

CMP_OVSD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
CMP_SWITCH=
CMP_N=0

# EAL arguments of a vswitch-pktgen on CPU 0 with its own prefix.
cmp_eal() {
    local prefix=$1
    shift
    echo "-l 0 --file-prefix $prefix --no-pci --no-telemetry --log-level=*:warning $*"
}

cmp_vm_mac() { printf '02:00:00:c0:00:%02x' "$((0x10 + $1))"; }
CMP_CTL_MAC=02:00:00:c0:00:01

cmp_up() {
    local sw=$1 nvms=$2 i
    CMP_N=$((CMP_N + 1))
    CMP_SWITCH=$sw
    CMP_RUN="$BENCH_DIR/run$CMP_N"
    mkdir -p "$CMP_RUN"
    chmod 755 "$CMP_RUN"
    CMP_VM_PIDS=()
    CMP_VMS=$nvms
    for i in $(seq "$nvms"); do CMP_VM_MAC[$i]=$(cmp_vm_mac "$i"); done
    case "$sw" in
    hvnet) cmp_hvnet_up ;;
    ovs-dpdk) cmp_ovs_up ;;
    *) echo "compare: unknown switch $sw" >&2; return 1 ;;
    esac
}

# The hook vswitch-pktgen runs around the trial whose cycles are kept.
cmp_write_hook() {
    local show=$1 clear=$2
    cat >"$CMP_RUN/hook.sh" <<EOF
#!/bin/sh
# \$1 begin|end, \$2 the frame size
case "\$1" in
begin) $clear >/dev/null ;;
end) echo "\$2 \$($show)" >>"$CMP_RUN/cycles.txt" ;;
esac
EOF
    chmod +x "$CMP_RUN/hook.sh"
    CMP_HOOK="$CMP_RUN/hook.sh"
}

cmp_hvnet_up() {
    local sock="$CMP_RUN/vswitchd.sock" memif="$CMP_RUN/uplink.sock" i
    # Each VM's program: vswitch-pktgen with the arguments cmp_vm_start
    # left in vmN.args (the jail shows the wrapper's directory), on CPU 0.
    cp "$BENCH_BIN/vswitch-pktgen" "$CMP_RUN/vswitch-pktgen"
    cat >"$CMP_RUN/vm-wrapper" <<EOF
#!/bin/sh
# vswitchd starts this with --name NAME --netns NS --tap-broker-fd 6
d=\$(dirname "\$0")
name=\$2
exec taskset -c 0 "\$d/vswitch-pktgen" "\$@" \$(cat "\$d/\$name.args")
EOF
    chmod 755 "$CMP_RUN/vm-wrapper"
    # shellcheck disable=SC2046
    "$BENCH_BIN/vswitchd" --socket "$sock" --state "$CMP_RUN/state.json" \
        --log "$CMP_RUN/vswitchd.log" --hv-vm "$CMP_RUN/vm-wrapper" --detach \
        -- -l 0,1 --no-pci --file-prefix "${BENCH_TAG}h$CMP_N" --log-level '*:warning' \
        $(bench_eal_mem)
    CMP_VSD_PID=$(pgrep -f -- "--socket $sock" | head -1)
    cctl() { "$BENCH_BIN/vswitch-ctl" --socket "$CMP_RUN/vswitchd.sock" "$@"; }
    cctl switch-add cmp --type external --mtu 9000 \
        --uplink "net_memif_${BENCH_TAG}u$CMP_N,role=server,socket=$memif,bsize=16384" >/dev/null
    for i in $(seq "$CMP_VMS"); do
        cctl vm-add "${BENCH_TAG}v$i" --netns "${BENCH_TAG}v$i" >/dev/null
        cctl nic-add "${BENCH_TAG}v$i" eth0 --switch cmp --mac "${CMP_VM_MAC[$i]}" --mtu 9000 >/dev/null
    done
    # rsize=14: 16,384 descriptors, so that a controller descheduled for
    # 10 ms at 1 Mpps loses nothing on its receive ring (CPU 0 is shared).
    CMP_CTL_VDEV="net_memif_${BENCH_TAG}c$CMP_N,role=client,socket=$memif,bsize=16384,rsize=14"
    CMP_CTL_QUEUES=1
    CMP_CTL_EAL=$(cmp_eal "${BENCH_TAG}c$CMP_N" --no-huge --no-shconf -m 512)
    cmp_write_hook "$BENCH_BIN/vswitch-ctl --socket $sock --json worker-show | $CMP_PY $CMP_TOP/bench/compare-cycles.py hvnet" \
        "$BENCH_BIN/vswitch-ctl --socket $sock worker-show --clear"
}

cmp_ovs_up() {
    local d="$CMP_RUN/ovs" free
    mkdir -p "$d"
    export OVS_RUNDIR="$d" OVS_LOGDIR="$d" OVS_DBDIR="$d"
    ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --pidfile="$d/db.pid" \
        --unixctl="$d/db.ctl" --log-file="$d/db.log" -vconsole:off --detach
    ovs-vsctl --db="unix:$d/db.sock" --no-wait init
    ovs-vsctl --db="unix:$d/db.sock" --no-wait set Open_vSwitch . other_config:dpdk-init=true \
        other_config:dpdk-socket-mem=512 other_config:dpdk-socket-limit=512 \
        other_config:dpdk-lcore-mask=0x1 other_config:pmd-cpu-mask=0x2 \
        other_config:dpdk-extra="\"--file-prefix=${BENCH_TAG}o$CMP_N --no-pci\""
    # The netdev datapath leaves a persistent TAP, ovs-netdev, behind when
    # it stops; ours to remove only if it was not there before.
    CMP_OVS_NETDEV_OURS=
    [ -e /sys/class/net/ovs-netdev ] || CMP_OVS_NETDEV_OURS=1
    "$CMP_OVSD" "unix:$d/db.sock" --pidfile="$d/vs.pid" --unixctl="$d/vs.ctl" \
        --log-file="$d/vs.log" -vconsole:off --detach
    covs() { ovs-vsctl --db="unix:$CMP_RUN/ovs/db.sock" --timeout=60 "$@"; }
    capp() { ovs-appctl -t "$CMP_RUN/ovs/vs.ctl" "$@"; }
    CMP_BR="${BENCH_TAG}br"
    covs add-br "$CMP_BR" -- set bridge "$CMP_BR" datapath_type=netdev
    ip link set "$CMP_BR" down 2>/dev/null || true
    # Jumbo frames: 9000 B of payload after the Ethernet header.
    covs set Interface "$CMP_BR" mtu_request=9000 2>/dev/null || true
    CMP_CTL_VDEV="net_memif_${BENCH_TAG}c$CMP_N,role=server,socket=$CMP_RUN/ctl.sock,bsize=16384,rsize=14"
    CMP_CTL_QUEUES=2
    CMP_CTL_EAL=$(cmp_eal "${BENCH_TAG}c$CMP_N" --no-huge --no-shconf -m 512)
    cmp_write_hook "ovs-appctl -t $d/vs.ctl dpif-netdev/pmd-stats-show | $CMP_PY $CMP_TOP/bench/compare-cycles.py ovs" \
        "ovs-appctl -t $d/vs.ctl dpif-netdev/pmd-stats-clear"
}

# The controller's memif port on OVS is the client of the controller, which
# must be listening first (DPDK's memif client does not retry): call this
# once the controller runs.
cmp_ovs_attach_ctl() {
    local i
    for i in $(seq 100); do [ -S "$CMP_RUN/ctl.sock" ] && break; sleep 0.1; done
    covs add-port "$CMP_BR" pm -- set Interface pm type=dpdk options:n_rxq=2 mtu_request=9000 \
        options:dpdk-devargs="\"net_memif_${BENCH_TAG}o$CMP_N,role=client,socket=$CMP_RUN/ctl.sock,bsize=16384\""
}

# cmp_vm_start I AGENT-ARGS...: VM I runs vswitch-pktgen with these
# arguments on its NIC (hvnet) or its virtio_user port (OVS).
cmp_vm_start() {
    local i=$1
    shift
    case "$CMP_SWITCH" in
    hvnet)
        echo "$* --src-mac ${CMP_VM_MAC[$i]}" >"$CMP_RUN/${BENCH_TAG}v$i.args"
        chmod 644 "$CMP_RUN/${BENCH_TAG}v$i.args"
        cctl vm-start "${BENCH_TAG}v$i" >/dev/null
        ;;
    ovs-dpdk)
        local sock="$CMP_RUN/vhu$i.sock"
        # shellcheck disable=SC2046
        "$BENCH_BIN/vswitch-pktgen" "$@" --queues 2 --src-mac "${CMP_VM_MAC[$i]}" \
            --vdev "net_virtio_user$i,server=1,queues=2,queue_size=1024,path=$sock,mac=${CMP_VM_MAC[$i]}" \
            -- $(cmp_eal "${BENCH_TAG}v$CMP_N$i" --in-memory --single-file-segments -m 256) \
            >"$CMP_RUN/vm$i.log" 2>&1 &
        CMP_VM_PIDS+=($!)
        for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
        covs add-port "$CMP_BR" "vhu$i" -- set Interface "vhu$i" type=dpdkvhostuserclient \
            mtu_request=9000 options:vhost-server-path="$sock"
        ;;
    esac
}

# The VMs' output: the hvnet VMs' lines are in vswitchd's log.
cmp_vm_logs() {
    case "$CMP_SWITCH" in
    hvnet) grep -h "${BENCH_TAG}v" "$CMP_RUN/vswitchd.log" 2>/dev/null | tail -20 ;;
    ovs-dpdk) tail -5 "$CMP_RUN"/vm*.log 2>/dev/null ;;
    esac
}

cmp_down() {
    local p f
    for p in "${CMP_VM_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${CMP_VM_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    CMP_VM_PIDS=()
    case "$CMP_SWITCH" in
    hvnet)
        if [ -n "${CMP_VSD_PID:-}" ]; then
            kill "$CMP_VSD_PID" 2>/dev/null || true
            for _ in $(seq 100); do kill -0 "$CMP_VSD_PID" 2>/dev/null || break; sleep 0.1; done
            CMP_VSD_PID=
        fi
        for i in $(seq "$CMP_VMS"); do ip netns del "${BENCH_TAG}v$i" 2>/dev/null || true; done
        ;;
    ovs-dpdk)
        for f in vs db; do
            p=$(cat "$CMP_RUN/ovs/$f.pid" 2>/dev/null) || continue
            kill "$p" 2>/dev/null || continue
            for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$p" 2>/dev/null || true
        done
        ip link del "${BENCH_TAG}br" 2>/dev/null || true
        if [ -n "${CMP_OVS_NETDEV_OURS:-}" ]; then ip link del ovs-netdev 2>/dev/null || true; fi
        ;;
    esac
    rm -rf "/var/run/dpdk/${BENCH_TAG}"* /dev/hugepages/"${BENCH_TAG}"* 2>/dev/null || true
    CMP_SWITCH=
}

# CPU time, for the check that nothing else ran during a window: the
# machine's busy jiffies (/proc/stat, both CPUs) and those of our own
# processes: every process whose command line holds the run's tag, with
# its threads (the VM programs of hvnet hold it in their --name), and the
# children this script has waited for (the controller, once it exited).
cmp_cpu_snap() {
    TAG=$BENCH_TAG SHELL_PID=$$ $CMP_PY - <<'PY'
import os
tag = os.environ["TAG"].encode()
with open("/proc/stat") as f:
    v = [int(x) for x in f.readline().split()[1:]]
busy = sum(v) - v[3] - v[4]
ours = 0
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if tag not in f.read():
                continue
        with open(f"/proc/{pid}/stat") as f:
            s = f.read().rsplit(")", 1)[1].split()
        ours += int(s[11]) + int(s[12])
    except OSError:
        pass
with open("/proc/%s/stat" % os.environ["SHELL_PID"]) as f:
    s = f.read().rsplit(")", 1)[1].split()
ours += int(s[13]) + int(s[14])
print(busy, ours)
PY
}
