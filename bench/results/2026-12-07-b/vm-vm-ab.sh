#!/usr/bin/env bash
cd /work/main
for r in 1 2 3 4; do
 for b in /work/base /work/main; do
  g=$(flock /tmp/hvnet-bench.lock bench/vm-iperf.sh --bin $b/build/bin --cases vm-vm --only hvnet --seconds 4 --runs 2 2>&1 | grep "hvnet private" | awk '{print $6, $7, $NF}')
  echo "$r $b $g"
 done
done
