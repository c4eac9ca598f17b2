#!/usr/bin/env bash
# capture -w FILE as root, on an operator's word: the file is created new
# and never through a symbolic link; an existing file is replaced only with
# --force and only if it is a regular file with one name that vswitchd's
# user owns; no symbolic link anywhere in the path is followed; a capture that is
# refused (no such port, one already running there) creates nothing and
# removes nothing. The port is an internal switch's host vNIC: no VM needed.
# Usage: test_capture_file.sh BUILD_BIN_DIR
source "$(dirname "$0")/lib.sh"
hv_init "$1"
hv_start
sw="c$HV_TAG"
HV_BRIDGES+=("vs-${sw:0:12}")
vctl switch-add "$sw" --type internal
port="vs-${sw:0:12}"
D="$HV_DIR/cap"
mkdir "$D"
victim="$D/victim"
echo precious >"$victim"

# is_pcap FILE: a pcap header with nanosecond timestamps (little endian).
is_pcap() { [ "$(head -c 4 "$1" | od -An -tx1 | tr -d ' ')" = "4d3cb2a1" ]; }
unchanged() { [ "$(cat "$victim")" = precious ] || hv_fail "$1: the victim file was written"; }
refused() { # WHAT NEEDLE ARGS...: the capture must fail, its message naming NEEDLE
    local what=$1 needle=$2 out
    shift 2
    if out=$(vctl capture "$@" 2>&1); then
        hv_fail "$what: accepted ($out)"
    fi
    [[ $out == *"$needle"* ]] || hv_fail "$what: message '$out' does not say '$needle'"
    echo "ok: $what: $out"
}

hv_log "a symbolic link at FILE is not followed, with or without --force"
ln -s "$victim" "$D/link"
refused "symlink" "symbolic link" "$port" -w "$D/link" --timeout 1
unchanged "symlink"
refused "symlink, --force" "symbolic link" "$port" -w "$D/link" --timeout 1 --force
unchanged "symlink, --force"
[ -L "$D/link" ] || hv_fail "the link was removed"
ln -s "$D/made-through-link" "$D/dangling"
refused "dangling symlink" "symbolic link" "$port" -w "$D/dangling" --timeout 1 --force
[ -e "$D/made-through-link" ] && hv_fail "a file was created through a dangling link"

hv_log "a symbolic link to a directory anywhere in the path is not followed either"
mkdir "$D/real"
echo precious >"$D/real/victim"
ln -s "$D/real" "$D/dirlink"
refused "directory link, --force" "symbolic link" "$port" -w "$D/dirlink/victim" --timeout 1 --force
[ "$(cat "$D/real/victim")" = precious ] || hv_fail "--force wrote a file through a linked directory"
refused "directory link, new file" "symbolic link" "$port" -w "$D/dirlink/new.pcap" --timeout 1
[ -e "$D/real/new.pcap" ] && hv_fail "a capture file was created through a linked directory"

hv_log "--force does not replace another user's file (it would receive the guests' frames)"
echo theirs >"$D/theirs.pcap"
chown 65534 "$D/theirs.pcap"
chmod 666 "$D/theirs.pcap"
refused "another user's file, --force" "another user" "$port" -w "$D/theirs.pcap" --timeout 1 --force
[ "$(cat "$D/theirs.pcap")" = theirs ] || hv_fail "--force wrote into a file another user owns"

hv_log "an existing file needs --force; then only a regular file with one name"
echo mine >"$D/old.pcap"
refused "existing file" "--force" "$port" -w "$D/old.pcap" --timeout 1
[ "$(cat "$D/old.pcap")" = mine ] || hv_fail "an existing file was written without --force"
ln "$victim" "$D/hardlink"
refused "hard link, --force" "one name" "$port" -w "$D/hardlink" --timeout 1 --force
unchanged "hard link"
mkfifo "$D/fifo"
refused "FIFO, --force" "not a regular file" "$port" -w "$D/fifo" --timeout 1 --force
refused "directory, --force" "not a regular file" "$port" -w "$D" --timeout 1 --force
vctl capture "$port" -w "$D/old.pcap" --timeout 1 --force >/dev/null || hv_fail "--force did not replace a regular file"
is_pcap "$D/old.pcap" || hv_fail "the replaced file is not a pcap file"

hv_log "a new file is created, mode 0640, a pcap"
vctl capture "$port" -w "$D/new.pcap" --timeout 1 >/dev/null || hv_fail "capture into a new file failed"
is_pcap "$D/new.pcap" || hv_fail "the new file is not a pcap file"
[ "$(stat -c %a "$D/new.pcap")" = 640 ] || hv_fail "the new file has mode $(stat -c %a "$D/new.pcap")"

hv_log "a refused capture creates nothing and removes nothing"
refused "no such port" "no port" "nosuch/eth0" -w "$D/none.pcap" --timeout 1
[ -e "$D/none.pcap" ] && hv_fail "a capture on a missing port created its file"
vctl capture "$port" -w "$D/first.pcap" --timeout 4 >"$HV_DIR/first.out" &
first=$!
for _ in $(seq 50); do [ -e "$D/first.pcap" ] && break; sleep 0.1; done
refused "port busy, new file" "already running" "$port" -w "$D/second.pcap" --timeout 1
[ -e "$D/second.pcap" ] && hv_fail "a capture on a busy port created its file"
echo keep >"$D/third.pcap"
refused "port busy, existing file, --force" "already running" "$port" -w "$D/third.pcap" --timeout 1 --force
[ "$(cat "$D/third.pcap" 2>/dev/null)" = keep ] || hv_fail "a capture on a busy port removed or wrote an existing file"
wait "$first" || hv_fail "the first capture failed: $(cat "$HV_DIR/first.out")"
is_pcap "$D/first.pcap" || hv_fail "the first capture's file is not a pcap file"
kill -0 "$HV_VSD_PID" || hv_fail "vswitchd died"
hv_pass "capture files"
