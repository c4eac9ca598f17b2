#!/usr/bin/env bash
# `cmake --install` gives an operator a working host: vswitchd, hv-vm beside
# it and vswitch-ctl under the prefix, the documentation, and a systemd unit
# that runs the installed vswitchd with a PID file. The installed binaries
# (not the build tree's) then run two VMs that ping each other, and the PID
# file is written once vswitchd serves, replaces a symlink rather than
# following it, and is removed when vswitchd stops.
# Usage: test_install.sh BUILD_DIR
source "$(dirname "$0")/lib.sh"
build=$(cd "$1" && pwd)
hv_init "$build/bin"
command -v cmake >/dev/null || hv_skip "needs cmake"

prefix="$HV_DIR/prefix"
cmake --install "$build" --prefix "$prefix" >"$HV_DIR/install.log" 2>&1 ||
    hv_fail "cmake --install failed: $(tail -3 "$HV_DIR/install.log")"
for f in bin/vswitchd bin/hv-vm bin/vswitch-ctl; do
    [ -x "$prefix/$f" ] || hv_fail "$f not installed"
done
for f in README.md NEWS.md ARCHITECTURE.md control-protocol.md switches.md protocol.md platform.md; do
    [ -s "$prefix/share/doc/hvnet/$f" ] || hv_fail "share/doc/hvnet/$f not installed"
done
unit="$prefix/lib/systemd/system/vswitchd.service"
[ -s "$unit" ] || hv_fail "vswitchd.service not installed"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
pid_file=$(sed -n 's/^PIDFile=//p' "$unit")
[ "${exec_start%% *}" = "$prefix/bin/vswitchd" ] || hv_fail "the unit runs '$exec_start', not the installed vswitchd"
case "$exec_start" in
*"--pidfile $pid_file"*) ;;
*) hv_fail "the unit's ExecStart does not write its PIDFile ($pid_file)" ;;
esac
grep -q '@' "$unit" && hv_fail "the unit still has template variables: $(grep '@' "$unit")"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$unit" >"$HV_DIR/verify.log" 2>&1 ||
        hv_fail "systemd-analyze verify: $(cat "$HV_DIR/verify.log")"
else
    hv_log "systemd-analyze missing: the unit's syntax is not checked"
fi
"$prefix/bin/vswitch-ctl" --help >/dev/null || hv_fail "installed vswitch-ctl --help"
"$prefix/bin/vswitchd" --help | grep -q -- "--pidfile" || hv_fail "installed vswitchd --help has no --pidfile"

hv_log "the installed host runs VMs"
HV_BIN="$prefix/bin"
pidf="$HV_DIR/vswitchd.pid"
decoy="$HV_DIR/decoy"
echo keep >"$decoy"
ln -s "$decoy" "$pidf"
hv_start --pidfile "$pidf"
grep -q "VM worker $prefix/bin/hv-vm" "$HV_LOG" || hv_fail "the installed vswitchd does not run the installed hv-vm"
[ ! -L "$pidf" ] || hv_fail "the PID file is still a symlink"
[ "$(cat "$decoy")" = keep ] || hv_fail "the PID file was written through a symlink"
[ "$(cat "$pidf")" = "$HV_VSD_PID" ] || hv_fail "the PID file says $(cat "$pidf"), vswitchd is $HV_VSD_PID"

vctl switch-add sw --type private >/dev/null
hv_vm a sw 10.81.0.1/24 02:00:00:81:00:01
hv_vm b sw 10.81.0.2/24 02:00:00:81:00:02
ip netns exec "$(hv_vm_name a)" ping -c 3 -i 0.2 -W 2 10.81.0.2 >/dev/null ||
    hv_fail "no traffic between VMs of the installed host"
pgrep -f -- "^$prefix/bin/hv-vm --name $(hv_vm_name a)" >/dev/null ||
    hv_fail "VM a's worker is not the installed hv-vm"

hv_stop
[ ! -e "$pidf" ] || hv_fail "the PID file outlived vswitchd"
hv_pass "installed host: binaries, docs, unit, PID file, two VMs"
