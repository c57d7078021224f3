#!/usr/bin/env python3
"""Benchmark: simulation speed of the RTL core, in simulated cycles per second.

Runs one long random GEMM (default 128 x 128 x 128) on the RTL for each core shape with
scripts/bench_gemm.py's measure() and reports the cycles the core counted, the wall time of the
run phase alone (START until the core is idle: sim.rtlsim.RtlResult.run_seconds, without the
host-port transfers before and after), simulated cycles per second of that phase, and the wall
time of the whole call (which includes the transfers and, the first time a configuration is
simulated, building its simulator).

    python scripts/bench_sim.py [--shapes 4x4,8x8,1x3] [--m 128 --k 128 --n 128]
        [--simulator verilator|icarus ...] [--repeat 1] [--seed 1] [--json [FILE]]

--simulator is repeatable (default verilator). With --repeat N each case runs N times and the
fastest run phase counts.
"""

import argparse
import os
import platform
import sys

from bench_gemm import agrees, measure
from benchlib import add_json_argument, emit_json, format_table, parse_shapes, shape_name

DEFAULT_SHAPES = "4x4,8x8,1x3"


def table(results):
    headers = ["simulator", "array", "GEMM", "cycles", "run s", "cycles/s", "wall s",
               "RTL == model"]
    rows = []
    for r in results:
        gemm = f"{r['m']}x{r['k']}x{r['n']}"
        if "error" in r and "cycles" not in r:
            rows.append([r["simulator"], shape_name(r["rows"], r["cols"]), gemm, "-", "-", "-",
                         "-", f"error: {r['error']}"])
            continue
        rate = r["sim_cycles_per_second"]
        rows.append([r["simulator"], shape_name(r["rows"], r["cols"]), gemm, r["cycles"],
                     f"{r['run_seconds']:.2f}", f"{rate:,}" if rate else "-",
                     f"{r['wall_seconds']:.1f}", "yes" if r["ok"] else "NO"])
    return format_table(headers, rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=DEFAULT_SHAPES,
                        help=f"core array shapes ROWSxCOLS (default {DEFAULT_SHAPES})")
    parser.add_argument("--m", type=int, default=128)
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--simulator", action="append", choices=("verilator", "icarus"),
                        help="simulator (repeatable; default verilator)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per case; the fastest "
                        "counts (default 1)")
    parser.add_argument("--seed", type=int, default=1)
    add_json_argument(parser)
    args = parser.parse_args(argv)
    out = sys.stderr if args.json == "-" else sys.stdout
    try:
        shapes = parse_shapes(args.shapes)
    except ValueError as exc:
        parser.error(str(exc))
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    results = []
    for simulator in args.simulator or ["verilator"]:
        for rows, cols in shapes:
            print(f"GEMM {args.m}x{args.k}x{args.n} on {shape_name(rows, cols)} ({simulator})",
                  file=sys.stderr, flush=True)
            best = None
            for _ in range(args.repeat):
                try:
                    r = measure(rows, cols, args.m, args.k, args.n, simulator=simulator,
                                seed=args.seed)
                except ValueError as exc:   # ConfigError too: the GEMM does not fit a core
                    best = {"rows": rows, "cols": cols, "m": args.m, "k": args.k, "n": args.n,
                            "simulator": simulator, "error": str(exc)}
                    break
                r["ok"] = agrees(r)
                if best is None or r["run_seconds"] < best["run_seconds"]:
                    best = r
            results.append(best)
    for line in table(results):
        print(line, file=out)
    if args.json:
        emit_json(args.json, {
            "benchmark": "sim", "repeat": args.repeat, "seed": args.seed,
            "host": {"cpus": os.cpu_count(), "machine": platform.machine(),
                     "python": platform.python_version()},
            "results": results})
    if any("cycles" in r and not r["ok"] for r in results):
        print("bench_sim: error: the RTL disagreed with the golden model or numpy",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
