#!/usr/bin/env python3
"""Sample vswitchd's worker-show every 100 ms until killed (bench/dynamic-vmq.sh).

Usage: dynamic-vmq-sample.py VSWITCH_CTL SOCKET ROUND
One JSON line per sample on stdout: the wall time, each worker's cumulative
busy/idle/asleep TSC cycles, which worker (lcore) polls each port, and the
placement counters. The report differentiates consecutive samples.
"""
import json
import signal
import subprocess
import sys
import time


def main():
    ctl, sock, rnd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    nxt = time.monotonic()
    while True:
        t = time.time()
        try:
            res = subprocess.run([ctl, "--socket", sock, "--json", "worker-show"],
                                 capture_output=True, text=True, timeout=5, check=True)
            ws = json.loads(res.stdout)
        except (subprocess.SubprocessError, ValueError) as err:
            print(json.dumps({"round": rnd, "t": t, "error": str(err)}), flush=True)
        else:
            rec = {"round": rnd, "t": t, "tsc_hz": ws["tsc_hz"],
                   "placement": ws["placement"], "workers": [], "ports": {}}
            for w in ws["workers"]:
                rec["workers"].append({"lcore": w["lcore"], "busy": w["busy_cycles"],
                                       "idle": w["idle_cycles"], "sleep": w["sleep_cycles"]})
                for p in w["ports"]:
                    rec["ports"][p["port"]] = w["lcore"]
            print(json.dumps(rec), flush=True)
        nxt += 0.1
        time.sleep(max(0.0, nxt - time.monotonic()))


if __name__ == "__main__":
    main()
