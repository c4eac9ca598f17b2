# Shared by the vswitch-pktgen tests that need no switch (test_pktgen.sh,
# test_pktgen_search.sh): `pg_init BUILD_BIN_DIR NAME` sets PG (the
# program), TAG (a per-run prefix for DPDK file prefixes and memif
# sockets), W (a temp directory) and PIDS (background processes to stop),
# and an EXIT trap that stops them and removes everything the run made,
# also on failure; fail and skip end the test (1, or 77 = skipped).
# shellcheck shell=bash
pg_init() {
    PG="$1/vswitch-pktgen"
    TAG="$2$$"
    W=$(mktemp -d "/tmp/test-$2-$$.XXXXXX")
    PIDS=()
    trap pg_cleanup EXIT
    [ -x "$PG" ] || fail "no $PG"
    command -v python3 >/dev/null || skip "needs python3"
}
pg_cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$W" /var/run/dpdk/"$TAG"* "/run/user/$(id -u)/dpdk/$TAG"* 2>/dev/null
    rm -f /dev/hugepages/"$TAG"* 2>/dev/null
}
# wait_sock PATH: a memif server listens on PATH (DPDK's memif socket is
# abstract by default: no file, a "@PATH" line with the listening flag in
# /proc/net/unix). Then its client may start: memif clients do not retry.
wait_sock() {
    for _ in $(seq 300); do
        awk -v p="@$1" '$8 == p && $4 == "00010000" { found = 1 } END { exit !found }' \
            /proc/net/unix && return 0
        sleep 0.1
    done
    return 1
}
# A failure to start DPDK or a memif link is the machine's, not pktgen's.
skip_if_no_memif() {
    if grep -qE "DPDK did not start|no such port|link down" "$W/$1.err"; then
        cat "$W/$1.err"
        skip "memif did not start here"
    fi
}
fail() { echo "FAIL: $*"; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
