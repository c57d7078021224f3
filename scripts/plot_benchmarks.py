#!/usr/bin/env python3
"""Plots of the benchmarks' saved JSON, and the peak-throughput comparison (peak_gmacs.png).

peak_gmacs.png: peak GMAC/s (MACs per cycle x Fmax) of Lockstep on each board, the best
fitting shape of a bench_fmax.py sweep, next to published open designs and the targets of the
"Performance" issue:

* iCE40UP5K, best open int8 design: 16 MACs x 29.3 MHz = 0.47 GMAC/s (re-measured with YoWASP;
  published 23-29 MHz);
* TVM VTA on a Pynq board (Zynq-7020): 256 MACs x 100 MHz = 25.6 GMAC/s (vendor tools);
* issue targets: iCE40 0.56 GMAC/s, ECP5 14.4 GMAC/s.

Each other JSON given adds its own plot: --fmax fmax_vs_array_<board>.png, --utilisation
utilisation_vs_gemm_size.png, --demo demo_cycles.png (where the cycles go, against the ideal),
--sim sim_speed.png.

    python scripts/bench_fmax.py --json fmax.json            # (and the others, each --json FILE)
    python scripts/plot_benchmarks.py --fmax fmax.json [--utilisation util.json]
        [--demo demo.json] [--sim sim.json] --out DIR
"""

import argparse
import sys

import bench_fmax
import bench_utilisation
from benchlib import load_json, pyplot, save_figure, shape_name

# (label, MACs per cycle, clock MHz, kind, family); GMAC/s = MACs x MHz / 1000.
REFERENCES = [
    ("best open int8 design, iCE40UP5K\n16 MACs x 29.3 MHz (YoWASP; published 23-29 MHz)",
     16, 29.3, "published", "ice40"),
    ("TVM VTA, Pynq (Zynq-7020)\n256 MACs x 100 MHz (vendor tools)", 256, 100.0, "published",
     "other"),
]
TARGETS = [("issue target, iCE40", 0.56, "ice40"), ("issue target, ECP5", 14.4, "ecp5")]
COLOURS = {"lockstep": "tab:blue", "published": "tab:grey", "target": "tab:orange"}


def best_per_board(results):
    """The fitting shape with the highest peak GMAC/s of each board, in sweep order."""
    best = {}
    for r in results:
        if not r.get("fits") or r.get("peak_gmacs") is None:
            continue
        if r["board"] not in best or r["peak_gmacs"] > best[r["board"]]["peak_gmacs"]:
            best[r["board"]] = r
    return list(best.values())


def peak_bars(fmax_results):
    """(label, GMAC/s, kind, family) of every bar of peak_gmacs.png."""
    bars = []
    for r in best_per_board(fmax_results or []):
        family = "ice40" if r["part"].lower().startswith("ice40") else "ecp5"
        timing = "" if r.get("timing_met") else ", misses the board clock"
        bars.append((f"Lockstep, {r['board']} ({r['part']})\n{r['macs_per_cycle']} MACs "
                     f"({shape_name(r['rows'], r['cols'])}) x {r['fmax_mhz']:.1f} MHz Fmax"
                     f"{timing}", r["peak_gmacs"], "lockstep", family))
    for label, macs, mhz, kind, family in REFERENCES:
        bars.append((label, macs * mhz / 1000, kind, family))
    for label, gmacs, family in TARGETS:
        bars.append((label, gmacs, "target", family))
    order = {"ice40": 0, "ecp5": 1, "other": 2}
    kinds = {"lockstep": 0, "published": 1, "target": 2}
    return sorted(bars, key=lambda b: (order[b[3]], kinds[b[2]]))


def plot_peak(fmax_results, out_dir):
    plt = pyplot()
    bars = peak_bars(fmax_results)
    fig, ax = plt.subplots(figsize=(9, 0.75 * len(bars) + 1.5))
    ys = list(range(len(bars)))[::-1]
    for y, (_, value, kind, _) in zip(ys, bars, strict=True):
        ax.barh(y, value, color=COLOURS[kind], hatch="//" if kind == "target" else None,
                edgecolor="black", linewidth=0.5)
        ax.annotate(f"{value:.3g}", (value, y), textcoords="offset points", xytext=(4, -3),
                    fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels([b[0] for b in bars], fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("peak int8 GMAC/s (MACs per cycle x clock), log scale")
    ax.set_title("Peak throughput: Lockstep (nextpnr Fmax) vs published open designs and "
                 "targets", fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLOURS[k], hatch="//" if k == "target"
                             else None, ec="black", lw=0.5) for k in COLOURS]
    ax.legend(handles, ["Lockstep", "published", "issue target"], fontsize=8,
              loc="upper right")
    ax.grid(axis="x", alpha=0.3, which="both")
    ax.set_xlim(right=max(b[1] for b in bars) * 4)
    fig.tight_layout()
    return [save_figure(fig, out_dir, "peak_gmacs.png")]


def plot_demo(results, out_dir):
    """Stacked bars of where each case's cycles go, with its ideal cycles marked."""
    plt = pyplot()
    rs = [r for r in results if "cycles" in r]
    parts = [("matmul_rows", "MATMUL rows"), ("preload_wait", "MATMUL waiting for preload"),
             ("LOADW", "LOADW"), ("VEC", "VEC"), ("interlock", "interlock waits"),
             ("other", "fetch, SETQ, WAIT, drain, HALT")]
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(rs) + 2))
    labels = [f"{r['network']} on {r['core']} {r['rows']}x{r['cols']}, batch {r['batch']}"
              for r in rs]
    ys = list(range(len(rs)))[::-1]
    # Per inference, so that batch 1 and batch 16 share an axis.
    left = [0.0] * len(rs)
    for key, label in parts:
        values = []
        for r in rs:
            c = r["cycles"]
            if key == "other":
                v = c["fetch"] + c["SETQ"] + c["WAIT"] + c["drain"] + c["halt"]
            else:
                v = c[key]
            values.append(v / r["batch"])
        ax.barh(ys, values, left=left, label=label)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.scatter([r["ideal_cycles"] / r["batch"] for r in rs], ys, marker="|", s=300,
               color="black", zorder=3, label="ideal (MACs / (R x C))")
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xlabel("cycles per inference")
    ax.set_title("Digits demo networks: where the cycles go (golden model = RTL)", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return [save_figure(fig, out_dir, "demo_cycles.png")]


def plot_sim(results, out_dir):
    plt = pyplot()
    rs = [r for r in results if r.get("sim_cycles_per_second")]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rs) + 1.8))
    ys = list(range(len(rs)))[::-1]
    values = [r["sim_cycles_per_second"] / 1000 for r in rs]
    ax.barh(ys, values, color=["tab:blue" if r["simulator"] == "verilator" else "tab:green"
                               for r in rs])
    for y, v in zip(ys, values, strict=True):
        ax.annotate(f"{v:.0f}k", (v, y), textcoords="offset points", xytext=(4, -3),
                    fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{r['simulator']}, {shape_name(r['rows'], r['cols'])} core, GEMM "
                        f"{r['m']}x{r['k']}x{r['n']}" for r in rs], fontsize=8)
    ax.set_xlabel("simulated cycles per second (thousands), run phase")
    ax.set_title("RTL simulation speed", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return [save_figure(fig, out_dir, "sim_speed.png")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fmax", metavar="FILE", help="bench_fmax.py --json output")
    parser.add_argument("--utilisation", metavar="FILE",
                        help="bench_utilisation.py --json output")
    parser.add_argument("--demo", metavar="FILE", help="bench_demo.py --json output")
    parser.add_argument("--sim", metavar="FILE", help="bench_sim.py --json output")
    parser.add_argument("--out", metavar="DIR", required=True, help="folder for the PNGs")
    args = parser.parse_args(argv)

    def results(path):
        try:
            return load_json(path)["results"]
        except (OSError, ValueError, KeyError) as exc:
            parser.exit(2, f"plot_benchmarks: error: cannot read {path}: {exc}\n")

    fmax = results(args.fmax) if args.fmax else None
    written = plot_peak(fmax, args.out)
    if fmax:
        written += bench_fmax.plot(fmax, args.out)
    if args.utilisation:
        written += bench_utilisation.plot(results(args.utilisation), args.out)
    if args.demo:
        written += plot_demo(results(args.demo), args.out)
    if args.sim:
        written += plot_sim(results(args.sim), args.out)
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
