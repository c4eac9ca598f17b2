#!/usr/bin/python3
"""Reads a switch's own per-packet counters on stdin and prints
"CYCLES_PER_PACKET BUSY_PCT" (bench/compare.sh's trial hook):

  hvnet  `vswitch-ctl --json worker-show` (the first worker: the layout has one)
  ovs    `ovs-appctl dpif-netdev/pmd-stats-show` (the one PMD thread): "avg
         processing cycles per packet" and the processing cycles' share

"nan" for what is missing (no packets in the window)."""
import json
import re
import sys

kind, text = sys.argv[1], sys.stdin.read()
cpp = busy = "nan"
if kind == "hvnet":
    workers = json.loads(text).get("workers") or [{}]
    cpp = workers[0].get("cycles_per_packet", "nan")
    busy = workers[0].get("busy_pct", "nan")
else:
    m = re.search(r"avg processing cycles per packet: ([\d.]+)", text)
    cpp = m.group(1) if m else cpp
    m = re.search(r"processing cycles: \d+ \(([\d.]+)%\)", text)
    busy = m.group(1) if m else busy
print(cpp, busy)
