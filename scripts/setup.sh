#!/usr/bin/env bash
# Prepare a Debian 12 machine for building, testing and benchmarking hvnet.
#
# Installs every Debian package the build, the tests and the benchmarks use,
# then prepares the host for DPDK: reserves 2 MB hugepages and mounts
# hugetlbfs where the kernel allows it. Safe to run again: packages already
# present are left alone and an existing reservation or mount is kept.
#
# Usage: scripts/setup.sh [--no-packages] [--hugepages N]
#   --no-packages   only prepare hugepages (for machines already provisioned)
#   --hugepages N   number of 2 MB pages to reserve (default 1024 = 2 GiB)
set -euo pipefail

want_packages=1
nr_hugepages=1024
while [ $# -gt 0 ]; do
    case "$1" in
    --no-packages) want_packages=0 ;;
    --hugepages) nr_hugepages="$2"; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: must run as root (installs packages, reserves hugepages)" >&2
    exit 1
fi

# Build: compiler, cmake, pkg-config and the libraries (DPDK, libpcap,
# libnl, jansson, libseccomp).
# Tests: cmocka, clang + compiler-rt for libFuzzer and the sanitizers,
# the networking tools the integration tests drive.
# Benchmarks: Open vSwitch with DPDK as the peer, iperf3, hyperfine.
packages=(
    build-essential cmake pkg-config ninja-build git python3
    dpdk dpdk-dev libdpdk-dev
    libpcap-dev libnl-3-dev libnl-route-3-dev libjansson-dev libcmocka-dev libseccomp-dev
    clang llvm libclang-rt-14-dev
    iproute2 iputils-ping iperf3 tcpdump tshark dnsmasq-base busybox ethtool
    procps psmisc util-linux kmod
    openvswitch-switch-dpdk hyperfine python3-matplotlib
)

if [ "$want_packages" -eq 1 ]; then
    missing=()
    for p in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "setup.sh: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # tshark asks whether non-root users may capture; answer for it.
        echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        # The OVS package starts daemons on install where it can; the
        # benchmark starts its own instance, so keep the machine quiet.
        systemctl disable --now openvswitch-switch >/dev/null 2>&1 || true
    else
        echo "setup.sh: all packages present"
    fi
fi

# Hugepages. DPDK programs fall back to --no-huge when this fails; say so
# clearly instead of failing the set-up.
huge_ok=0
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [ -w "$hp" ]; then
    have=$(cat "$hp")
    if [ "$have" -lt "$nr_hugepages" ]; then
        echo "$nr_hugepages" > "$hp" 2>/dev/null || true
    fi
    have=$(cat "$hp")
    if [ "$have" -gt 0 ]; then
        huge_ok=1
    fi
fi
if [ "$huge_ok" -eq 1 ]; then
    mkdir -p /dev/hugepages
    if ! mountpoint -q /dev/hugepages; then
        if ! mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages 2>/dev/null; then
            huge_ok=0
        fi
    fi
fi
if [ "$huge_ok" -eq 1 ]; then
    echo "setup.sh: hugepages: $(cat "$hp") x 2 MB reserved, hugetlbfs on /dev/hugepages"
else
    echo "setup.sh: hugepages: NOT available here; DPDK programs will run with --no-huge -m <MB>"
fi
mkdir -p /run/hvnet /var/lib/hvnet
