#!/usr/bin/python3
"""bench/compare.sh's report: DIR/raw/*.json -> DIR/results.json,
DIR/report.md and DIR/*.png (python3-matplotlib; the plots are left out,
and the report says so, where it is missing).

A raw search record (compare.sh) is {"switch", "scenario", "round",
"search": vswitch-pktgen --search's JSON, "cycles_per_packet": {size: c},
"cpu": {"busy_s", "ours_s", "other_s"}}; a raw null record is
bench/null-peers.sh --json's output. Figures over rounds: the median, with
min and max beside it.

Usage: compare-report.py DIR
"""
import glob
import json
import os
import statistics
import sys

# A switch thread busier than this at the NDR is taken for the bottleneck.
BOTTLENECK_BUSY = 90
SCEN_ORDER = ["p2v", "v2p", "pvp", "v2v", "null"]
SCEN_TEXT = {
    "p2v": "memif generator -> switch -> VM sink",
    "v2p": "VM generator -> switch -> memif sink",
    "pvp": "memif -> switch -> VM reflector -> switch -> memif",
    "v2v": "VM generator -> switch -> VM sink",
    "null": "the switching core alone, null ports (forwarding rate, no loss search)",
}


def frame_key(f):
    return (1, 0) if f == "imix" else (0, int(f))


def med(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def per_size(search):
    """The per-frame-size results of one vswitch-pktgen --search document."""
    for s in search.get("results", search.get("sizes", [])):
        frame = s.get("frame", s.get("size"))
        yield str(frame), s


def lat_point(s, pct):
    lat = s.get("latency_us") or {}
    return lat.get(str(pct)) or lat.get("%d%%" % pct) or lat.get(pct)


def collect(d):
    runs = {}  # (switch, scenario, frame) -> list of per-round dicts
    cpu = []
    for path in sorted(glob.glob(os.path.join(d, "raw", "*.json"))):
        rec = json.load(open(path))
        name = os.path.basename(path)
        if name.startswith("null-"):
            size = str(rec["size"])
            rnd = int(name.rsplit("-r", 1)[1].split(".")[0])
            for sw, key in (("hvnet", "hvnet"), ("ovs-dpdk", "ovs_normal")):
                r = rec[key]["runs"][0]
                runs.setdefault((sw, "null", size), []).append(
                    {"round": rnd, "mpps": r["mpps"], "cycles_per_packet": r["cycles_per_packet"],
                     "delivered": r["delivered"]})
            continue
        cpu.append({"switch": rec["switch"], "scenario": rec["scenario"], "round": rec["round"],
                    **rec["cpu"]})
        for frame, s in per_size(rec["search"]):
            l90 = lat_point(s, 90) or {}
            runs.setdefault((rec["switch"], rec["scenario"], frame), []).append({
                "round": rec["round"],
                "ndr_mpps": s.get("ndr_mpps"),
                "pdr_mpps": s.get("pdr_mpps"),
                "gbps_at_ndr": s.get("gbps_at_ndr"),
                "ceiling_mpps": s.get("ceiling_mpps"),
                "ndr_achieved_mpps": s.get("ndr_achieved_mpps"),
                "generator_short_trials": s.get("generator_short_trials"),
                "ndr_verified": s.get("ndr_verified"),
                "generator_limited": s.get("generator_limited"),
                "latency_us": {k: l90.get(k) for k in ("p50", "p99", "max")},
                "latency_by_load": {str(p): lat_point(s, p) for p in (10, 50, 90)},
                "cycles_per_packet": rec["cycles_per_packet"].get(frame),
                "switch_busy_pct": rec.get("switch_busy_pct", {}).get(frame),
                "loss_steps": s.get("loss_steps"),
                "back_to_back": s.get("back_to_back"),
            })
    return runs, cpu


def summarise(runs):
    out = []
    for (sw, sc, frame), rs in sorted(runs.items(),
                                      key=lambda kv: (SCEN_ORDER.index(kv[0][1]),
                                                      frame_key(kv[0][2]), kv[0][0])):
        rec = {"switch": sw, "scenario": sc, "frame": frame if frame == "imix" else int(frame),
               "rounds": rs}
        if sc == "null":
            m = med([r["mpps"] for r in rs])
            rec.update({"ndr_mpps": None, "pdr_mpps": None, "gbps_at_ndr": None,
                        "latency_us": None, "mpps": m["median"] if m else None,
                        "mpps_spread": m})
        else:
            for k in ("ndr_mpps", "pdr_mpps", "gbps_at_ndr", "ceiling_mpps", "ndr_achieved_mpps"):
                m = med([r[k] for r in rs])
                rec[k] = m["median"] if m else None
                rec[k + "_spread"] = m
            rec["latency_us"] = {k: (med([r["latency_us"][k] for r in rs]) or {}).get("median")
                                 for k in ("p50", "p99", "max")}
            rec["generator_limited"] = any(r.get("generator_limited") for r in rs)
            rec["generator_short_trials"] = sum(r.get("generator_short_trials") or 0 for r in rs)
            b2b = [r["back_to_back"]["frames"] for r in rs
                   if r.get("back_to_back") and r["back_to_back"].get("trials")]
            rec["back_to_back_frames"] = statistics.median(b2b) if b2b else None
        c = med([r["cycles_per_packet"] for r in rs])
        rec["cycles_per_packet"] = c["median"] if c else None
        rec["cycles_per_packet_spread"] = c
        b = med([r.get("switch_busy_pct") for r in rs])
        rec["switch_busy_pct"] = b["median"] if b else None
        out.append(rec)
    return out


def fmt(v, nd=3):
    return "—" if v is None else ("%.*f" % (nd, v))


def spread(m, nd=3):
    if not m:
        return "—"
    if m["n"] == 1:
        return fmt(m["median"], nd)
    return "%s (%s..%s)" % (fmt(m["median"], nd), fmt(m["min"], nd), fmt(m["max"], nd))


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def report(d, results, cpu, plots):
    by = {(r["switch"], r["scenario"], str(r["frame"])): r for r in results}
    lines = ["# hvnet beside Open vSwitch with DPDK (bench/compare.sh)", ""]
    machine = os.path.join(d, "raw", "machine.txt")
    if os.path.exists(machine):
        lines += ["```", open(machine).read().rstrip(), "```", ""]
    lines += ["Figures: medians over rounds, (min..max) where there was more than one. "
              "NDR: highest rate with no frame lost; PDR: with at most the partial-drop loss; "
              "Gbit/s at NDR counts each frame + 20 B (preamble, inter-frame gap). "
              "Latency at 90 % of NDR. Cycles per packet: the switch's own counters "
              "during the final trial at NDR (hvnet worker-show, OVS pmd-stats-show "
              "\"avg processing cycles per packet\"), with the share of its polling "
              "thread's time spent on packets (busy): below 90 % the switch was not "
              "what limited the NDR, and its cycles per packet include the cost of "
              "small bursts. A ratio is hvnet / OVS-DPDK: above 1 "
              "hvnet forwards more; for cycles, below 1 hvnet spends less. \"Reached at NDR\": "
              "the rate the generator really sent in the verification trial (the search "
              "judges the rate offered, as RFC 2544 does; on a shared CPU a paced generator "
              "can fall short). Back-to-back: the longest burst at the ceiling with no "
              "loss (RFC 9004), \"—\" where not measured (--quick leaves it and the loss steps "
              "out).", ""]
    scen = sorted({r["scenario"] for r in results}, key=SCEN_ORDER.index)
    for sc in scen:
        lines += ["## %s: %s" % (sc, SCEN_TEXT[sc]), ""]
        frames = sorted({str(r["frame"]) for r in results if r["scenario"] == sc}, key=frame_key)
        if sc == "null":
            lines += ["| frame | hvnet Mpps | OVS-DPDK Mpps | ratio | hvnet cycles/pkt | "
                      "OVS cycles/pkt | cycles ratio |", "|---|---|---|---|---|---|---|"]
            for f in frames:
                h, o = by.get(("hvnet", sc, f)), by.get(("ovs-dpdk", sc, f))
                lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                    f, spread(h and h["mpps_spread"]), spread(o and o["mpps_spread"]),
                    fmt(ratio(h and h["mpps"], o and o["mpps"]), 2),
                    spread(h and h["cycles_per_packet_spread"], 1),
                    spread(o and o["cycles_per_packet_spread"], 1),
                    fmt(ratio(h and h["cycles_per_packet"], o and o["cycles_per_packet"]), 2)))
            lines.append("")
            continue
        lines += ["| frame | switch | NDR Mpps | reached at NDR | PDR Mpps | Gbit/s at NDR | "
                  "ceiling Mpps | latency µs p50 / p99 / max | back-to-back frames | cycles/pkt (switch busy) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for f in frames:
            for sw in ("hvnet", "ovs-dpdk"):
                r = by.get((sw, sc, f))
                if not r:
                    continue
                lat = r["latency_us"] or {}
                lim = " (generator-limited)" if r.get("generator_limited") else ""
                short = (" (%d trials short of the rate)" % r["generator_short_trials"]
                         if r.get("generator_short_trials") else "")
                lines.append("| %s | %s | %s%s | %s%s | %s | %s | %s | %s / %s / %s | %s | %s |" % (
                    f, sw, spread(r["ndr_mpps_spread"]), lim,
                    spread(r["ndr_achieved_mpps_spread"]), short, spread(r["pdr_mpps_spread"]),
                    spread(r["gbps_at_ndr_spread"], 2), spread(r["ceiling_mpps_spread"]),
                    fmt(lat.get("p50"), 1), fmt(lat.get("p99"), 1), fmt(lat.get("max"), 1),
                    fmt(r.get("back_to_back_frames"), 0),
                    spread(r["cycles_per_packet_spread"], 1) + (
                        " (%.0f %%)" % r["switch_busy_pct"] if r.get("switch_busy_pct") is not None
                        else "")))
        lines += ["", "| frame | NDR ratio | reached-at-NDR ratio | PDR ratio | Gbit/s-at-NDR ratio | "
                  "cycles ratio | note |", "|---|---|---|---|---|---|---|"]
        for f in frames:
            h, o = by.get(("hvnet", sc, f)), by.get(("ovs-dpdk", sc, f))
            if not h or not o:
                continue
            note = ""
            if h.get("generator_limited") and o.get("generator_limited"):
                note = "both reached the generator's ceiling: the generator is the limit, not a ratio of switches"
            elif h.get("generator_limited") or o.get("generator_limited"):
                note = "%s reached the generator's ceiling" % (
                    "hvnet" if h.get("generator_limited") else "OVS-DPDK")
            busy = [x.get("switch_busy_pct") for x in (h, o)]
            if all(v is not None and v < BOTTLENECK_BUSY for v in busy):
                note = (note + "; " if note else "") + (
                    "neither switch was the bottleneck (busy < %d %% at NDR): the cycles are "
                    "not the per-packet cost of a loaded switch" % BOTTLENECK_BUSY)
            lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                f, fmt(ratio(h["ndr_mpps"], o["ndr_mpps"]), 2),
                fmt(ratio(h["ndr_achieved_mpps"], o["ndr_achieved_mpps"]), 2),
                fmt(ratio(h["pdr_mpps"], o["pdr_mpps"]), 2),
                fmt(ratio(h["gbps_at_ndr"], o["gbps_at_ndr"]), 2),
                fmt(ratio(h["cycles_per_packet"], o["cycles_per_packet"]), 2), note))
        steps = [(f, sw, by[(sw, sc, f)]["rounds"][0].get("loss_steps"))
                 for f in frames for sw in ("hvnet", "ovs-dpdk")
                 if (sw, sc, f) in by and by[(sw, sc, f)]["rounds"][0].get("loss_steps")]
        if steps:
            lines += ["", "Frame loss rate by offered load (% of the ceiling: % lost; round 1):", ""]
            for f, sw, st in steps:
                lines.append("- %s B, %s: %s" % (f, sw, ", ".join(
                    "%d: %.2f" % (x["pct"], x["loss_pct"]) for x in st)))
        lines.append("")
    if cpu:
        lines += ["## CPU use during each search", "",
                  "Busy CPU seconds on the machine (both CPUs) during each search, the part "
                  "used by this run's own processes, and the rest (other processes, the "
                  "kernel's own threads): a large rest means the window was disturbed.", "",
                  "| round | scenario | switch | busy s | ours s | other s | other % |",
                  "|---|---|---|---|---|---|---|"]
        for c in sorted(cpu, key=lambda c: (c["round"], SCEN_ORDER.index(c["scenario"]), c["switch"])):
            pct = 100.0 * c["other_s"] / c["busy_s"] if c["busy_s"] else 0
            lines.append("| %d | %s | %s | %.1f | %.1f | %.1f | %.1f%s |" % (
                c["round"], c["scenario"], c["switch"], c["busy_s"], c["ours_s"], c["other_s"],
                pct, " **disturbed**" if pct > 10 else ""))
        lines.append("")
    lines += ["## Plots", ""]
    if plots:
        lines += ["![%s](%s)" % (p, p) for p in plots]
    else:
        lines.append("(none: python3-matplotlib is missing)")
    cmds = os.path.join(d, "raw", "commands.txt")
    if os.path.exists(cmds):
        lines += ["", "## Commands", "", "```", open(cmds).read().rstrip(), "```"]
    open(os.path.join(d, "report.md"), "w").write("\n".join(lines) + "\n")


def plot(d, results):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    made = []
    colors = {"hvnet": "tab:blue", "ovs-dpdk": "tab:orange"}
    scen = [s for s in SCEN_ORDER if any(r["scenario"] == s for r in results)]
    if not scen:
        return []
    # Throughput against frame size, one panel per scenario.
    fig, axes = plt.subplots(1, len(scen), figsize=(4.2 * len(scen), 3.6), squeeze=False)
    for ax, sc in zip(axes[0], scen):
        key = "mpps" if sc == "null" else "ndr_mpps"
        for sw in ("hvnet", "ovs-dpdk"):
            rs = sorted([r for r in results if r["scenario"] == sc and r["switch"] == sw
                         and r.get(key) is not None], key=lambda r: frame_key(str(r["frame"])))
            if not rs:
                continue
            xs = [str(r["frame"]) for r in rs]
            ys = [r[key] for r in rs]
            sp = [r.get(key + "_spread") for r in rs]
            lo = [y - s["min"] if s else 0 for y, s in zip(ys, sp)]
            hi = [s["max"] - y if s else 0 for y, s in zip(ys, sp)]
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=sw, color=colors[sw])
        ax.set_title(sc + (" (rate)" if sc == "null" else " (NDR)"))
        ax.set_xlabel("frame bytes")
        ax.set_ylabel("Mpps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(d, "throughput.png"), dpi=90)
    plt.close(fig)
    made.append("throughput.png")
    # Latency percentiles at 90 % of NDR, per scenario and frame.
    lat = [r for r in results if r["scenario"] != "null" and r.get("latency_us")
           and r["latency_us"].get("p50") is not None]
    if lat:
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(lat)), 3.8))
        labels = ["%s %s\n%s" % (r["scenario"], r["frame"], r["switch"]) for r in lat]
        x = range(len(lat))
        for i, (k, c) in enumerate((("p50", "tab:green"), ("p99", "tab:olive"), ("max", "tab:red"))):
            ax.bar([xi + (i - 1) * 0.27 for xi in x], [r["latency_us"][k] or 0 for r in lat],
                   width=0.27, label=k, color=c)
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("µs at 90 % of NDR")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        fig.savefig(os.path.join(d, "latency.png"), dpi=90)
        plt.close(fig)
        made.append("latency.png")
    # Cycles per packet per scenario at each frame size.
    cyc = [r for r in results if r.get("cycles_per_packet") is not None]
    if cyc:
        groups = sorted({(r["scenario"], str(r["frame"])) for r in cyc},
                        key=lambda g: (SCEN_ORDER.index(g[0]), frame_key(g[1])))
        fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(groups)), 3.8))
        for i, sw in enumerate(("hvnet", "ovs-dpdk")):
            vals = []
            for g in groups:
                r = next((r for r in cyc if (r["scenario"], str(r["frame"])) == g
                          and r["switch"] == sw), None)
                vals.append(r["cycles_per_packet"] if r else 0)
            ax.bar([j + (i - 0.5) * 0.4 for j in range(len(groups))], vals, width=0.4, label=sw,
                   color=colors[sw])
        ax.set_xticks(list(range(len(groups))))
        ax.set_xticklabels(["%s\n%s" % g for g in groups], fontsize=7)
        ax.set_ylabel("switch cycles per packet")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        fig.savefig(os.path.join(d, "cycles.png"), dpi=90)
        plt.close(fig)
        made.append("cycles.png")
    return made


def main():
    d = sys.argv[1]
    runs, cpu = collect(d)
    results = summarise(runs)
    json.dump({"results": results, "cpu": cpu}, open(os.path.join(d, "results.json"), "w"),
              indent=1)
    report(d, results, cpu, plot(d, results))


if __name__ == "__main__":
    main()
