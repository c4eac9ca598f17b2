# Shared set-ups for hvnet's benchmarks (bash): two network namespaces
# joined by one of three switches, at a given MTU, so that every benchmark
# measures all three the same way in the same run.
#
#   bridge  a Linux bridge and two veth pairs (the kernel's own path)
#   ovs     Open vSwitch, userspace (netdev) datapath, two veth pairs
#           whose host ends are OVS ports: a switch process moving every
#           frame, as hvnet's is (no openvswitch kernel module here)
#   ovs-tap the same datapath with two internal ports (TAPs) moved into the
#           namespaces, the closest thing to hvnet's VMs; MTU 1500 only
#   hvnet   vswitchd with a private switch and two VMs (child partitions
#           whose synthetic NICs appear as eth0 in their namespaces)
#
# and, for the host's own traffic and the way out:
#
#   bridge-host  the root namespace on a Linux bridge (its address on the
#                bridge), a veth into namespace 2
#   hvnet-host   an internal switch: the root namespace on its host vNIC,
#                a VM in namespace 2
#   hvnet-uplink an external switch whose uplink (net_af_packet) is a veth
#                whose far end is namespace 2, "the host behind the
#                uplink"; a VM in namespace 1
#
# The host that receives in the bridge and hvnet-uplink set-ups (namespace
# 2's eth0, a veth) receives as a host with a physical NIC would: GRO on,
# and held segments flushed after 100 us without a frame (gro_flush_timeout,
# the part interrupt coalescing plays on a NIC: a veth polls once per frame,
# so GRO would otherwise flush every segment alone). A veth passes frames
# to its peer's GRO only if the sending end has TSO off
# (veth_skb_is_eligible_for_gro): the uplink's veth end, which only ever
# carries MTU-sized frames from net_af_packet, has it off; the bridge's
# port keeps it, as its frames are 64 KB GSO frames: for the bridge nothing
# changes. (Threaded NAPI instead of the timeout reorders segments on this
# kernel: retransmits.) BENCH_HOST_GRO=0: the kernel's defaults (GRO off).
#
# BENCH_AFP_ARGS: extra net_af_packet arguments for hvnet-uplink (e.g.
# ",framesz=2048,blocksz=4096").
#
# bench_up KIND MTU sets one up and fills PAIR_NS1/2 (namespaces; "" is the
# root namespace: run commands there with pair_exec 1|2 CMD...),
# PAIR_IF1/2 (their interfaces), PAIR_IP1/2, PAIR_MAC2 and PAIR_NAME;
# bench_down takes it down. Names carry a per-run tag; an EXIT trap removes
# everything, also on failure.
#
# Usage: source bench/lib.sh; bench_init BUILD_BIN_DIR; bench_up ...; bench_down
set -euo pipefail

bench_init() {
    BENCH_BIN=$(cd "$1" && pwd)
    [ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
    BENCH_TAG="b$(printf '%x' $$)"
    BENCH_DIR=$(mktemp -d "/tmp/hvnet-$BENCH_TAG.XXXXXX")
    BENCH_KIND=
    trap bench_cleanup EXIT
}

bench_cleanup() {
    local rc=$?
    bench_down 2>/dev/null || true
    rm -rf "$BENCH_DIR" "/var/run/dpdk/$BENCH_TAG"
    exit $rc
}

bench_eal_mem() {
    local free=0
    free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
    if [ "$free" -ge 400 ]; then echo "-m 512 --huge-unlink"; else echo "--no-huge -m 768"; fi
}

# Wait until interface $2 in namespace $1 has carrier.
bench_wait_carrier() {
    for _ in $(seq 100); do
        ip netns exec "$1" cat "/sys/class/net/$2/carrier" 2>/dev/null | grep -q 1 && return 0
        sleep 0.1
    done
    echo "bench: $2 in $1 never came up" >&2
    return 1
}

# bench_host_gro NS IF: the receiving host's NIC model (above).
bench_host_gro() {
    [ "${BENCH_HOST_GRO:-1}" = 1 ] || return 0
    ip netns exec "$1" ethtool -K "$2" gro on >/dev/null
    ip netns exec "$1" sh -c "echo 100000 > /sys/class/net/$2/gro_flush_timeout"
}

bench_quiet() {
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# pair_exec 1|2 CMD...: CMD in the pair's first or second namespace.
pair_exec() {
    local ns
    [ "$1" = 1 ] && ns=$PAIR_NS1 || ns=$PAIR_NS2
    shift
    if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

# Namespace letter of a set-up: its first letter, the variants their own.
bench_ns_letter() {
    case "$1" in
    bridge-host) echo c ;;
    hvnet-host) echo i ;;
    hvnet-uplink) echo u ;;
    *) echo "${1:0:1}" ;;
    esac
}

# vswitchd for the hvnet set-ups; bctl talks to it.
bench_vswitchd() {
    local sock="$BENCH_DIR/vswitchd.sock"
    # shellcheck disable=SC2046
    "$BENCH_BIN/vswitchd" --socket "$sock" --state "$BENCH_DIR/state.json" \
        --log "$BENCH_DIR/vswitchd.log" --detach \
        -- -l 0,1 --no-pci --file-prefix "$BENCH_TAG" --log-level '*:warning' $(bench_eal_mem)
    BENCH_VSD_PID=$(pgrep -f -- "--socket $sock" | head -1)
}
bctl() { "$BENCH_BIN/vswitch-ctl" --socket "$BENCH_DIR/vswitchd.sock" "$@"; }

bench_up() {
    local kind=$1 mtu=$2 i l
    BENCH_KIND=$kind
    l=$(bench_ns_letter "$kind")
    PAIR_NS1="${BENCH_TAG}${l}1" PAIR_NS2="${BENCH_TAG}${l}2"
    PAIR_IP1=10.209.0.1 PAIR_IP2=10.209.0.2
    for i in 1 2; do
        local ns="${BENCH_TAG}${l}$i"
        ip netns add "$ns"
        ip netns exec "$ns" ip link set lo up
    done
    case "$kind" in
    bridge-host)
        PAIR_NAME="Linux bridge + veth, host <-> namespace"
        ip netns del "$PAIR_NS1"
        PAIR_NS1=""
        ip link add "${BENCH_TAG}br" mtu "$mtu" type bridge
        ip link set "${BENCH_TAG}br" up
        ip link add "${BENCH_TAG}h2" mtu "$mtu" type veth peer name eth0 mtu "$mtu" netns "$PAIR_NS2"
        ip link set "${BENCH_TAG}h2" master "${BENCH_TAG}br" up
        ip netns exec "$PAIR_NS2" ip link set eth0 up
        PAIR_IF1="${BENCH_TAG}br" PAIR_IF2=eth0
        ;;
    hvnet-host)
        PAIR_NAME="hvnet internal switch, host vNIC <-> VM"
        ip netns del "$PAIR_NS1"
        PAIR_NS1=""
        bench_vswitchd
        local sw="${BENCH_TAG}i"
        bctl switch-add "$sw" --type internal --mtu "$mtu" >/dev/null
        bctl vm-add "${BENCH_TAG}i2" --netns "$PAIR_NS2" >/dev/null
        bctl nic-add "${BENCH_TAG}i2" eth0 --switch "$sw" --mtu "$mtu" >/dev/null
        bctl vm-start "${BENCH_TAG}i2" >/dev/null
        bench_wait_carrier "$PAIR_NS2" eth0
        PAIR_IF1="vs-$sw" PAIR_IF2=eth0
        ip link set "$PAIR_IF1" up
        ;;
    hvnet-uplink)
        PAIR_NAME="hvnet external switch, VM -> host behind a veth uplink"
        ip link add "${BENCH_TAG}up" mtu "$mtu" type veth peer name eth0 mtu "$mtu" netns "$PAIR_NS2"
        ip link set "${BENCH_TAG}up" up
        ip netns exec "$PAIR_NS2" ip link set eth0 up
        # A physical NIC hands frames over with their checksums done; a
        # veth would leave them to "the hardware" (docs/platform.md §2.1).
        ip netns exec "$PAIR_NS2" ethtool -K eth0 tx off >/dev/null
        bench_host_gro "$PAIR_NS2" eth0
        [ "${BENCH_HOST_GRO:-1}" = 1 ] && ethtool -K "${BENCH_TAG}up" tso off >/dev/null
        bench_vswitchd
        local sw="${BENCH_TAG}u"
        bctl switch-add "$sw" --type external --mtu "$mtu" \
            --uplink "net_af_packet_${BENCH_TAG},iface=${BENCH_TAG}up${BENCH_AFP_ARGS:-}" >/dev/null
        bctl vm-add "${BENCH_TAG}u1" --netns "$PAIR_NS1" >/dev/null
        bctl nic-add "${BENCH_TAG}u1" eth0 --switch "$sw" --mtu "$mtu" >/dev/null
        bctl vm-start "${BENCH_TAG}u1" >/dev/null
        bench_wait_carrier "$PAIR_NS1" eth0
        PAIR_IF1=eth0 PAIR_IF2=eth0
        ;;
    bridge)
        PAIR_NAME="Linux bridge + veth"
        ip link add "${BENCH_TAG}br" mtu "$mtu" type bridge
        ip link set "${BENCH_TAG}br" up
        for i in 1 2; do
            local ns="${BENCH_TAG}b$i"
            ip link add "${BENCH_TAG}h$i" mtu "$mtu" type veth peer name eth0 mtu "$mtu" netns "$ns"
            ip link set "${BENCH_TAG}h$i" master "${BENCH_TAG}br" up
            ip netns exec "$ns" ip link set eth0 up
        done
        bench_host_gro "$PAIR_NS2" eth0
        PAIR_IF1=eth0 PAIR_IF2=eth0
        ;;
    ovs | ovs-tap)
        command -v ovs-vswitchd >/dev/null || { echo "bench: no Open vSwitch" >&2; return 1; }
        local d="$BENCH_DIR/ovs"
        mkdir -p "$d"
        export OVS_RUNDIR="$d" OVS_LOGDIR="$d" OVS_DBDIR="$d"
        ovsdb-tool create "$d/conf.db" /usr/share/openvswitch/vswitch.ovsschema
        ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --pidfile="$d/db.pid" \
            --unixctl="$d/db.ctl" --log-file="$d/db.log" --detach 2>/dev/null
        ovs-vsctl --db="unix:$d/db.sock" --no-wait init
        # The userspace datapath leaves a persistent TAP, ovs-netdev, behind
        # when it stops; ours to remove only if it was not there before.
        BENCH_OVS_NETDEV_OURS=
        [ -e /sys/class/net/ovs-netdev ] || BENCH_OVS_NETDEV_OURS=1
        ovs-vswitchd "unix:$d/db.sock" --pidfile="$d/vs.pid" --unixctl="$d/vs.ctl" \
            --log-file="$d/vs.log" --detach 2>/dev/null
        ovs-vsctl --db="unix:$d/db.sock" add-br "${BENCH_TAG}ob" -- set bridge "${BENCH_TAG}ob" \
            datapath_type=netdev
        if [ "$kind" = ovs-tap ]; then
            # Internal ports (TAPs OVS drives) moved into the namespaces: the
            # closest thing to hvnet's VMs, but OVS loses sight of their MTU
            # there and cuts longer frames to 1500 bytes: MTU 1500 only.
            [ "$mtu" -le 1500 ] || { echo "bench: ovs-tap cannot do MTU $mtu" >&2; return 1; }
            for i in 1 2; do
                local p="${BENCH_TAG}p$i" ns="${BENCH_TAG}o$i"
                ovs-vsctl --db="unix:$d/db.sock" add-port "${BENCH_TAG}ob" "$p" -- \
                    set interface "$p" type=internal
                for _ in $(seq 50); do ip link show "$p" >/dev/null 2>&1 && break; sleep 0.1; done
                ip link set "$p" netns "$ns"
                ip netns exec "$ns" ip link set "$p" up
            done
            PAIR_IF1="${BENCH_TAG}p1" PAIR_IF2="${BENCH_TAG}p2"
            PAIR_NAME="Open vSwitch $(ovs-vswitchd --version | head -1 | awk '{print $NF}') internal ports"
        else
        # Each namespace on a veth whose other end is an OVS port (system
        # type: OVS reads and writes it from user space).
        for i in 1 2; do
            local p="${BENCH_TAG}v$i" ns="${BENCH_TAG}o$i"
            ip link add "$p" mtu "$mtu" type veth peer name eth0 mtu "$mtu" netns "$ns"
            ip link set "$p" up
            ovs-vsctl --db="unix:$d/db.sock" add-port "${BENCH_TAG}ob" "$p"
            # Frames must leave complete: OVS's userspace datapath takes
            # neither partial checksums nor TSO from a veth (the usual
            # advice for it: ethtool -K ... tx off).
            ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null
            ip netns exec "$ns" ip link set eth0 up
        done
        PAIR_IF1=eth0 PAIR_IF2=eth0
        PAIR_NAME="Open vSwitch $(ovs-vswitchd --version | head -1 | awk '{print $NF}') veth ports"
        fi
        ip link set "${BENCH_TAG}ob" up
        ;;
    hvnet)
        PAIR_NAME="hvnet private switch (VMs)"
        bench_vswitchd
        bctl switch-add bench --type private --mtu "$mtu" >/dev/null
        for i in 1 2; do
            local vm="${BENCH_TAG}h$i"
            # The namespaces above are the VMs' own.
            bctl vm-add "$vm" --netns "${BENCH_TAG}h$i" >/dev/null
            bctl nic-add "$vm" eth0 --switch bench --mtu "$mtu" >/dev/null
            bctl vm-start "$vm" >/dev/null
        done
        for i in 1 2; do bench_wait_carrier "${BENCH_TAG}h$i" eth0; done
        PAIR_IF1=eth0 PAIR_IF2=eth0
        ;;
    *)
        echo "bench: unknown set-up $kind" >&2
        return 1
        ;;
    esac
    for i in 1 2; do
        local ns ifc
        [ "$i" = 1 ] && ns=$PAIR_NS1 ifc=$PAIR_IF1 || ns=$PAIR_NS2 ifc=$PAIR_IF2
        [ -n "$ns" ] && bench_quiet "$ns"
        pair_exec "$i" ip addr add "10.209.0.$i/24" dev "$ifc"
    done
    PAIR_MAC2=$(pair_exec 2 cat "/sys/class/net/$PAIR_IF2/address")
    # Both ends know each other, so that nothing but the measured traffic flows.
    pair_exec 1 ping -c 1 -W 5 "$PAIR_IP2" >/dev/null
}

bench_down() {
    case "$BENCH_KIND" in
    bridge | bridge-host) ip link del "${BENCH_TAG}br" 2>/dev/null || true ;;
    ovs | ovs-tap)
        for f in "$BENCH_DIR/ovs/vs.pid" "$BENCH_DIR/ovs/db.pid"; do
            [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
        done
        sleep 0.5
        ip link del "${BENCH_TAG}ob" 2>/dev/null || true
        ip link del "${BENCH_TAG}v1" 2>/dev/null || true
        ip link del "${BENCH_TAG}v2" 2>/dev/null || true
        if [ -n "${BENCH_OVS_NETDEV_OURS:-}" ]; then ip link del ovs-netdev 2>/dev/null || true; fi
        rm -rf "$BENCH_DIR/ovs"
        ;;
    hvnet | hvnet-host | hvnet-uplink)
        if [ -n "${BENCH_VSD_PID:-}" ]; then
            kill "$BENCH_VSD_PID" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$BENCH_VSD_PID" 2>/dev/null || break; sleep 0.1; done
        fi
        rm -f "$BENCH_DIR/state.json"
        ip link del "${BENCH_TAG}up" 2>/dev/null || true
        ;;
    esac
    if [ -n "$BENCH_KIND" ]; then
        local l
        l=$(bench_ns_letter "$BENCH_KIND")
        for i in 1 2; do ip netns del "${BENCH_TAG}${l}$i" 2>/dev/null || true; done
    fi
    BENCH_KIND=
}

bench_cpu() {
    echo "$(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
}
