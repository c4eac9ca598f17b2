#!/usr/bin/env bash
# vswitchd's layers (hostd/CMakeLists.txt, docs/ARCHITECTURE.md):
#  - every file of hostd/ includes only headers of its own layer or of a
#    layer below it, a private header only from its own layer, and hostd's
#    headers include each other without a circle;
#  - given the built libraries, every object file calls only into its own
#    layer or one below it, and the calls between files have no circle: no
#    file calls back up into a file that calls it (a callback through a
#    function pointer is data, and allowed).
#
# Usage: test_hostd_layers.sh HOSTD_DIR [LIB_DIR]
set -euo pipefail
dir=${1:?usage: test_hostd_layers.sh HOSTD_DIR [LIB_DIR]}
libdir=${2:-}
[ -z "$libdir" ] || libdir=$(cd "$libdir" && pwd)
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

# Calls, from the symbols each object file defines and uses.
if [ -n "$libdir" ]; then
    for lib in hostd_util hostd_rpc hostd_model vswitchd_core; do
        [ -f "$libdir/lib$lib.a" ] || { echo "FAIL: no $libdir/lib$lib.a"; exit 1; }
    done
    edges=$(for lib in hostd_util hostd_rpc hostd_model vswitchd_core; do
        a="$libdir/lib$lib.a"
        nm -A --defined-only "$a" | awk -v lib="$lib" '$2 ~ /^[TDBR]$/ {
            split($1, p, ":"); print "D", lib, p[2], $3 }'
        nm -A -u "$a" | awk -v lib="$lib" '{ split($1, p, ":"); print "U", lib, p[2], $NF }'
    done | awk '
        $1 == "D" { lib[$3] = $2; def[$4] = $3; next }
        { use[++n] = $3 " " $4 }
        END { for (i = 1; i <= n; i++) { split(use[i], u, " ");
                  if ((u[2] in def) && def[u[2]] != u[1])
                      print u[1], lib[u[1]], def[u[2]], lib[def[u[2]]], u[2] } }' | sort -u)
    # What a library may call.
    calls_ok() {
        case "$1:$2" in
        hostd_util:hostd_util | hostd_rpc:hostd_util | hostd_rpc:hostd_rpc | \
            hostd_model:hostd_util | hostd_model:hostd_model | vswitchd_core:*) return 0 ;;
        esac
        return 1
    }
    declare -A next
    while read -r from flib to tlib sym; do
        [ -n "$from" ] || continue
        if ! calls_ok "$flib" "$tlib"; then
            echo "FAIL: $from ($flib) calls $sym in $to ($tlib)"
            fail=1
        fi
        next[$from]+=" $to"
    done <<<"$edges"
    declare -A cstate
    cvisit() { # object path-so-far
        local o=$1 path=$2 n
        [ "${cstate[$o]:-}" = done ] && return 0
        if [ "${cstate[$o]:-}" = open ]; then
            echo "FAIL: call circle: $path"
            fail=1
            return 0
        fi
        cstate[$o]=open
        for n in ${next[$o]:-}; do
            cvisit "$n" "$path -> $n"
        done
        cstate[$o]=done
    }
    for o in "${!next[@]}"; do
        cvisit "$o" "$o"
    done
    [ "${#next[@]}" -gt 5 ] || { echo "FAIL: no calls found in $libdir"; fail=1; }
fi

[ "$fail" -eq 0 ] && echo "PASS: hostd's includes${libdir:+ and calls} follow its layers"
exit "$fail"
