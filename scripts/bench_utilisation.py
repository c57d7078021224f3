#!/usr/bin/env python3
"""Benchmark: GEMM utilisation of the array against matrix size, measured on the RTL.

For each array shape and each size S, runs one random S x S x S int8 GEMM (M = K = N = S) on
the RTL in simulation with scripts/bench_gemm.py's measure(): cycles counted by the core
(checked against the golden model's prediction, the result bit for bit against numpy), ideal
cycles (M*K*N / (R*C)) and utilisation = M*K*N / (cycles * R * C).

    python scripts/bench_utilisation.py [--rows R --cols C | --shapes 1x3,4x4]
        [--sizes 16,32,64,128] [--simulator verilator|icarus] [--seed 1]
        [--json [FILE]] [--plot DIR]
    python scripts/bench_utilisation.py --from-json FILE [--plot DIR]

Default shapes: each board's array with its core's timing options (boards/catalog.py:
icebreaker 8x2, ulx3s-85f 12x12 with its extra pipeline registers); --rows/--cols and --shapes
get the default timing.
--plot DIR writes DIR/utilisation_vs_gemm_size.png. Exit status 1 if the RTL disagreed with
the golden model or numpy anywhere.
"""

import argparse
import sys
from pathlib import Path

from bench_gemm import agrees, measure
from benchlib import (
    add_json_argument,
    emit_json,
    format_table,
    load_json,
    parse_ints,
    parse_shapes,
    pyplot,
    save_figure,
    shape_name,
)

from boards.catalog import BOARDS

DEFAULT_SIZES = "16,32,64,128"


def board_cores():
    """(rows, cols, timing options) of each board's core, in catalog order, without repeats."""
    cores = []
    for board in BOARDS.values():
        core = (board.core.rows, board.core.cols, board.core.timing)
        if core not in cores:
            cores.append(core)
    return cores


def sweep(shapes, sizes, simulator="verilator", seed=1, progress=sys.stderr):
    """``shapes``: (rows, cols) or (rows, cols, timing options) each."""
    results = []
    for rows, cols, *pipeline in shapes:
        for size in sizes:
            if progress is not None:
                print(f"GEMM {size}x{size}x{size} on {shape_name(rows, cols)} ({simulator})",
                      file=progress, flush=True)
            try:
                r = measure(rows, cols, size, size, size, simulator=simulator, seed=seed,
                            pipeline=pipeline[0] if pipeline else None)
            except ValueError as exc:   # ConfigError too: the GEMM does not fit a core
                results.append({"rows": rows, "cols": cols, "m": size, "k": size, "n": size,
                                "error": str(exc), "ok": False})
                continue
            r["ok"] = agrees(r)
            results.append(r)
    return results


def table(results):
    headers = ["array", "M=K=N", "cycles (RTL)", "predicted", "ideal", "utilisation",
               "RTL == model", "sim s"]
    rows = []
    for r in results:
        if "cycles" not in r:
            rows.append([shape_name(r["rows"], r["cols"]), r["m"], "-", "-", "-", "-",
                         f"error: {r['error']}", "-"])
            continue
        rows.append([shape_name(r["rows"], r["cols"]), r["m"], r["cycles"],
                     r["predicted_cycles"], r["ideal_cycles"], f"{100 * r['utilization']:.2f}%",
                     "yes" if r["ok"] else "NO", f"{r['wall_seconds']:.1f}"])
    return format_table(headers, rows)


def plot(results, out_dir):
    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sizes = set()
    for shape in dict.fromkeys((r["rows"], r["cols"]) for r in results):
        rs = [r for r in results if (r["rows"], r["cols"]) == shape and "cycles" in r]
        if not rs:
            continue
        xs = [r["m"] for r in rs]
        sizes.update(xs)
        ax.plot(xs, [100 * r["utilization"] for r in rs], "o-",
                label=f"{shape_name(*shape)} array ({shape[0] * shape[1]} MACs/cycle)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(sizes))
    ax.set_xticklabels([str(s) for s in sorted(sizes)])
    ax.set_ylim(0, 105)
    ax.set_xlabel("GEMM size S (M = K = N = S)")
    ax.set_ylabel("array utilisation (%)")
    ax.set_title("Lockstep GEMM utilisation vs matrix size (cycles counted by the RTL)",
                 fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return [save_figure(fig, out_dir, "utilisation_vs_gemm_size.png")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, help="array rows (with --cols: one shape)")
    parser.add_argument("--cols", type=int, help="array columns")
    parser.add_argument("--shapes", help="array shapes ROWSxCOLS, comma-separated "
                        "(default: each board's)")
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help=f"GEMM sizes S (M = K = N), comma-separated (default "
                        f"{DEFAULT_SIZES})")
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    parser.add_argument("--seed", type=int, default=1)
    add_json_argument(parser)
    parser.add_argument("--from-json", metavar="FILE",
                        help="do not simulate: print the table (and --plot) of saved results")
    parser.add_argument("--plot", metavar="DIR", help="write the PNG plot into DIR")
    args = parser.parse_args(argv)
    out = sys.stderr if args.json == "-" else sys.stdout

    if args.from_json:
        data = load_json(args.from_json)
    else:
        if (args.rows is None) != (args.cols is None):
            parser.error("--rows and --cols go together")
        if args.rows is not None and args.shapes:
            parser.error("give either --rows/--cols or --shapes")
        try:
            shapes = ([(args.rows, args.cols)] if args.rows is not None
                      else parse_shapes(args.shapes) if args.shapes else board_cores())
            sizes = parse_ints(args.sizes)
        except ValueError as exc:
            parser.error(str(exc))
        data = {"benchmark": "utilisation", "simulator": args.simulator, "seed": args.seed,
                "results": sweep(shapes, sizes, simulator=args.simulator, seed=args.seed)}
    results = data["results"]
    for line in table(results):
        print(line, file=out)
    if args.json and not args.from_json:
        emit_json(args.json, data)
    if args.plot:
        for path in plot(results, args.plot):
            print(f"wrote {path}", file=out)
    bad = [r for r in results if "cycles" in r and not r["ok"]]
    if bad:
        print("bench_utilisation: error: the RTL disagreed with the golden model or numpy on "
              + ", ".join(f"{shape_name(r['rows'], r['cols'])} S={r['m']}" for r in bad),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
