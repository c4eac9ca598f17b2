#!/usr/bin/env bash
# The main job: set the machine up, build hvnet, and run the host.
#
# For now the host is hv-core's demo: a root with two child partitions that
# open VMBus channels and exchange checked traffic with it. Extra arguments go
# to hv-demo (try --help).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh
bash scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo
exec build/bin/hv-demo "$@"
