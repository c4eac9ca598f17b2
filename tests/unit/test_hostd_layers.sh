#!/usr/bin/env bash
# vswitchd's layers (hostd/CMakeLists.txt, docs/ARCHITECTURE.md): every file
# of hostd/ includes only headers of its own layer or of a layer below it,
# a private header only from its own layer, and hostd's headers include
# each other without a circle. The libraries' link order keeps calls in
# line; this keeps the includes in line too.
#
# Usage: test_hostd_layers.sh HOSTD_DIR
set -euo pipefail
dir=${1:?usage: test_hostd_layers.sh HOSTD_DIR}
cd "$dir"

# The layer of each of hostd's files; an unknown file fails the test, so a
# new file has to be given its place here.
layer_of() {
    case "$1" in
    include/vsd-util.h | src/util.c) echo util ;;
    include/vsd-rpc.h | include/vsd-methods.h | src/rpc.c | src/methods.c) echo rpc ;;
    include/vsd-model.h | src/model-private.h | src/lookup.c | src/host.c | src/vm.c | src/nic.c | \
        src/switch.c | src/uplink.c | src/fdb-mirror.c | src/capture.c | src/jail.c) echo model ;;
    include/vswitchd.h | src/control-private.h | src/control.c | src/params.c | src/*-rpc.c | \
        src/state.c | src/telemetry.c) echo control ;;
    src/vswitchd.c) echo main ;;
    *) echo unknown ;;
    esac
}

# What a layer may include of hostd's headers.
allowed() { # layer header
    case "$1:$2" in
    util:vsd-util.h) return 0 ;;
    rpc:vsd-util.h | rpc:vsd-rpc.h | rpc:vsd-methods.h) return 0 ;;
    model:vsd-util.h | model:vsd-model.h | model:model-private.h) return 0 ;;
    control:vsd-util.h | control:vsd-rpc.h | control:vsd-methods.h | control:vsd-model.h | \
        control:vswitchd.h | control:control-private.h) return 0 ;;
    main:vsd-util.h | main:vsd-rpc.h | main:vsd-methods.h | main:vsd-model.h | main:vswitchd.h)
        return 0 ;;
    esac
    return 1
}

fail=0
hostd_headers=$(cd include && ls; cd ../src && ls ./*.h | sed 's|^\./||')
files=$(ls include/*.h src/*.c src/*.h)
for f in $files; do
    l=$(layer_of "$f")
    if [ "$l" = unknown ]; then
        echo "FAIL: $f has no layer (add it to $0)"
        fail=1
        continue
    fi
    for h in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f"); do
        # Only hostd's own headers are ruled here; other modules' are the
        # libraries' business (CMake links them where they may be used).
        grep -qx "$h" <<<"$hostd_headers" || continue
        if ! allowed "$l" "$h"; then
            echo "FAIL: $f ($l) includes $h"
            fail=1
        fi
    done
done

# No circle among hostd's headers: follow each header's includes.
declare -A state
visit() { # header path
    local h=$1 p
    [ "${state[$h]:-}" = done ] && return 0
    if [ "${state[$h]:-}" = open ]; then
        echo "FAIL: include circle through $h"
        fail=1
        return 0
    fi
    state[$h]=open
    p=include/$h
    [ -f "$p" ] || p=src/$h
    for n in $(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$p"); do
        grep -qx "$n" <<<"$hostd_headers" && visit "$n"
    done
    state[$h]=done
}
for h in $hostd_headers; do
    visit "$h"
done

[ "$fail" -eq 0 ] && echo "PASS: hostd's includes follow its layers"
exit "$fail"
