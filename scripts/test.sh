#!/usr/bin/env bash
# Every test: set the machine up, then
#   1. build Release (-O3, what users pick for production) with -Werror and
#      run all unit and integration tests (ctest);
#   2. build with AddressSanitizer + UndefinedBehaviorSanitizer (Debug) and
#      run the unit tests again;
#   3. compile the other build types, RelWithDebInfo and MinSizeRel, with
#      -Werror: each optimisation level has warnings of its own, and every
#      build type a user may pick must build (HVNET_WERROR is off by default;
#      CI turns it on);
#   4. build the libFuzzer harnesses with clang and run each briefly.
# Tests that need something this machine lacks report "skipped", never pass.
# Set HVNET_FUZZ_SECONDS to change how long each fuzzer runs (default 20).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh

status=0
step() { printf '\n=== %s\n' "$*"; }

step "build (gcc, Release, -Werror)"
bash scripts/build.sh build -DCMAKE_BUILD_TYPE=Release -DHVNET_WERROR=ON
step "unit and integration tests"
(cd build && ctest --output-on-failure -LE fuzz) || status=1

step "build with AddressSanitizer + UndefinedBehaviorSanitizer"
bash scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DHVNET_WERROR=ON \
    -DHVNET_SANITIZE=address,undefined
step "unit tests under ASan + UBSan"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -L unit) || status=1

for type in RelWithDebInfo MinSizeRel; do
    step "compile only (gcc, $type, -Werror)"
    bash scripts/build.sh "build-$type" -DCMAKE_BUILD_TYPE="$type" -DHVNET_WERROR=ON || status=1
done

step "build fuzz harnesses (clang, libFuzzer)"
CC=clang bash scripts/build.sh build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHVNET_WERROR=ON \
    -DHVNET_FUZZ=ON -DHVNET_FUZZ_SECONDS="${HVNET_FUZZ_SECONDS:-20}"
step "fuzzers, ${HVNET_FUZZ_SECONDS:-20} s each"
(cd build-fuzz && ctest --output-on-failure -L fuzz) || status=1

if [ "$status" -eq 0 ]; then
    step "all tests passed"
else
    step "FAILURES (see above)"
fi
exit "$status"
