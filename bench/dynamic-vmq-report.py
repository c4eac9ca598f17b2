#!/usr/bin/env python3
"""Report of bench/dynamic-vmq.sh: reaction times, results.json, report.md, timeline.png.

Usage: dynamic-vmq-report.py DIR THRESHOLD PORT COMMAND
DIR holds timeline.jsonl (dynamic-vmq-sample.py), events.jsonl (the load
step's start and end per round) and iperf-N.json. PORT is the port the
rebalancer should move (VM A's NIC).
"""
import json
import statistics
import sys

WINDOW = 0.5  # seconds: the busy share over this window decides "overloaded",
# the interval vswitchd's own load sampling uses (VSW_LOAD_SAMPLE_MS).


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def busy_series(samples):
    """Per sample from the second on: {lcore: busy % since the previous sample}
    and {lcore: busy % over the last WINDOW seconds}."""
    out = []
    for i in range(1, len(samples)):
        cur, prev = samples[i], samples[i - 1]
        j = i - 1
        while j > 0 and cur["t"] - samples[j]["t"] < WINDOW:
            j -= 1
        win = samples[j]
        inst, wnd = {}, {}
        for k, w in enumerate(cur["workers"]):
            for ref, dst in ((prev, inst), (win, wnd)):
                r = ref["workers"][k]
                busy = w["busy"] - r["busy"]
                allc = busy + w["idle"] - r["idle"] + w["sleep"] - r["sleep"]
                dst[w["lcore"]] = 100.0 * busy / allc if allc > 0 else 0.0
        out.append((cur, inst, wnd))
    return out


def iperf_summary(path):
    try:
        with open(path) as f:
            r = json.load(f)
        # --bidir: both directions, each counted by its receiver.
        iv = [i["sum"]["bytes"] + i.get("sum_bidir_reverse", {}).get("bytes", 0)
              for i in r["intervals"]]
        e = r["end"]
        bps = e["sum_received"]["bits_per_second"] + \
            e.get("sum_received_bidir_reverse", {}).get("bits_per_second", 0)
        return {"gbps": round(bps / 1e9, 3),
                "retransmits": e["sum_sent"].get("retransmits", 0) +
                e.get("sum_sent_bidir_reverse", {}).get("retransmits", 0),
                "seconds_with_no_bytes": sum(1 for b in iv if b == 0),
                "mbytes_per_second": [round(b / 1e6, 1) for b in iv]}
    except (OSError, ValueError, KeyError) as err:
        return {"error": str(err)}


def analyse_round(rnd, samples, events, thr, port, d):
    on = next(e["t"] for e in events if e["round"] == rnd and e["event"] == "step_on")
    off = next(e["t"] for e in events if e["round"] == rnd and e["event"] == "step_off")
    series = busy_series([s for s in samples if "error" not in s])
    t0 = series[0][0]["t"] if series else on
    home = None
    overload = spread = quiet = pack = None
    pack0 = None
    peak = 0.0
    for cur, _, wnd in series:
        t = cur["t"]
        if t < on:
            home = cur["ports"].get(port, home)
            continue
        if spread is None and t < off:
            peak = max(peak, wnd.get(home, 0.0))
        if spread is None and home is not None and cur["ports"].get(port) not in (home, None):
            spread = t
        if spread is None:
            # The start of the stretch of overloaded samples the move ends:
            # a dip below the threshold starts it again.
            if wnd.get(home, 0.0) < thr:
                overload = None
            elif overload is None:
                overload = t
        if t >= off:
            if pack0 is None:
                pack0 = cur["placement"]["pack_moves"]
            if quiet is None and all(v < thr for v in wnd.values()):
                quiet = t
            if pack is None and cur["placement"]["pack_moves"] > pack0:
                pack = t
    rel = lambda x: None if x is None else round(x - t0, 2)  # noqa: E731
    diff = lambda a, b: None if a is None or b is None else round(a - b, 2)  # noqa: E731
    return {
        "round": rnd, "home_lcore": home, "home_peak_busy_pct": round(peak, 1), "step_on_s": rel(on), "step_off_s": rel(off),
        "overload_s": rel(overload), "spread_s": rel(spread), "quiet_s": rel(quiet),
        "pack_s": rel(pack),
        "reaction_from_overload_s": diff(spread, overload),
        "reaction_from_step_s": diff(spread, on),
        "pack_reaction_s": diff(pack, quiet),
        "iperf3": iperf_summary(f"{d}/iperf-{rnd}.json"),
        "series": [{"t": round(c["t"] - t0, 2), "busy_pct": {str(k): round(v, 1) for k, v in i.items()},
                    "port_lcore": c["ports"].get(port)} for c, i, _ in series],
    }


def med(xs):
    xs = [x for x in xs if x is not None]
    return {"median": round(statistics.median(xs), 2), "min": min(xs), "max": max(xs), "n": len(xs)} \
        if xs else None


def plot(d, rounds, thr, port):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("# no matplotlib: no timeline.png (scripts/setup.sh installs python3-matplotlib)")
        return
    fig, axes = plt.subplots(len(rounds), 1, figsize=(10, 3.2 * len(rounds)), squeeze=False)
    for ax, r in zip(axes[:, 0], rounds):
        ts = [p["t"] for p in r["series"]]
        for lc in sorted({k for p in r["series"] for k in p["busy_pct"]}):
            ax.plot(ts, [p["busy_pct"].get(lc, 0.0) for p in r["series"]], label=f"worker lcore {lc}")
        ax.axhline(thr, color="grey", linestyle=":", label=f"threshold {thr} %")
        if r["step_on_s"] is not None and r["step_off_s"] is not None:
            ax.axvspan(r["step_on_s"], r["step_off_s"], color="orange", alpha=0.12, label="iperf3 load")
        for key, col, name in (("spread_s", "red", "spread move"), ("pack_s", "green", "pack move")):
            if r[key] is not None:
                ax.axvline(r[key], color=col, linestyle="--", label=name)
        ax2 = ax.twinx()
        ax2.step(ts, [p["port_lcore"] if p["port_lcore"] is not None else float("nan") for p in r["series"]],
                 where="post", color="black", linewidth=0.8)
        ax2.set_ylabel(f"{port.split('/')[0][-1]}'s lcore")
        ax2.set_yticks([1, 2])
        ax2.set_ylim(0.5, 2.5)
        ax.set_ylim(0, 100)
        ax.set_ylabel("busy % (100 ms)")
        ax.set_title(f"round {r['round']}: spread {r['reaction_from_overload_s']} s after overload, "
                     f"pack {r['pack_reaction_s']} s after quiet")
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(f"{d}/timeline.png", dpi=110)


def main():
    d, thr, port, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4]
    samples = load(f"{d}/timeline.jsonl")
    events = load(f"{d}/events.jsonl")
    nrounds = sorted({e["round"] for e in events})
    rounds = [analyse_round(n, [s for s in samples if s["round"] == n], events, thr, port, d)
              for n in nrounds]
    summary = {k: med([r[k] for r in rounds]) for k in
               ("reaction_from_overload_s", "reaction_from_step_s", "pack_reaction_s")}
    with open(f"{d}/results.json", "w") as f:
        json.dump({"command": cmd, "threshold_pct": thr, "port": port, "summary": summary,
                   "rounds": rounds}, f, indent=1)
    lines = [f"# Dynamic VMQ under a load step", "", f"`{cmd}`", "",
             "| round | home worker's peak busy % before the move | overload at s | spread at s | reaction s "
             "| quiet at s | pack at s | pack reaction s | iperf3 Gbit/s, both ways | seconds without bytes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rounds:
        ip = r["iperf3"]
        v = {k: "—" if x is None else x for k, x in r.items()}
        lines.append(f"| {r['round']} | {r['home_peak_busy_pct']} | {v['overload_s']} | {v['spread_s']} "
                     f"| {v['reaction_from_overload_s']} | {v['quiet_s']} | {v['pack_s']} "
                     f"| {v['pack_reaction_s']} | {ip.get('gbps')} | {ip.get('seconds_with_no_bytes')} |")
    lines += ["", "Medians (min..max, rounds): " + "; ".join(
        f"{k} {v['median']} ({v['min']}..{v['max']}, n={v['n']})" if v else f"{k} none"
        for k, v in summary.items()), "",
        "Reaction = the first 100 ms sample showing the port on another worker minus the start of "
        f"the overload it ended: the first of the samples, without a dip between, where the home "
        f"worker's busy share over the last {WINDOW} s was at or above the threshold. "
        "Pack reaction = the first sample counting a pack move minus the first sample after the "
        "load step where every worker was below the threshold. "
        "Open vSwitch's pmd-auto-lb rebalances at most once per `pmd-auto-lb-rebal-interval` "
        "(minimum 1 minute), not measured here. A round whose home worker never reached the "
        "threshold moves nothing (—): that is the rebalancer being right, not slow.", ""]
    with open(f"{d}/report.md", "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    plot(d, rounds, thr, port)


if __name__ == "__main__":
    main()
