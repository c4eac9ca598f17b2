#!/usr/bin/env bash
# The main job: set the machine up, build hvnet, and run the host: vswitchd
# with a private switch and two VMs that ping each other and run iperf3
# through it (scripts/host-demo.sh). Extra arguments go to host-demo.sh.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
bash scripts/setup.sh
bash scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo
exec bash scripts/host-demo.sh build/bin "$@"
