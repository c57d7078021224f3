#!/usr/bin/env python3
"""Benchmark: MLPerf Tiny's four models (lockstep/mlperf.py) on each board's core.

Each model is built from its published shapes with seeded weights, quantised with
onnxruntime's quantize_static (QDQ, int8, per channel), imported and compiled for the core
(batch 1). For each model and core: MACs, predicted cycles (the golden model's count, which
the RTL matches: tests/test_mlperf.py), utilisation (MACs / (cycles x R x C)), instructions
and the latency at the board's clock (the clock the bitstream runs at); with --clock, also at
that clock (e.g. the routed Fmax). A per-layer table shows where the cycles go, and a table
per model where they go by opcode (lockstep/profile.py). A model that does not fit a core is
listed with the refusal. With --rtl, KWS and AD (or --models) also run on the RTL.

    python scripts/bench_models.py [--models kws,ic,ad,vww] [--core ulx3s-85f ...]
        [--clock 100] [--rtl] [--simulator verilator|icarus] [--seed 0] [--json [FILE]]
"""

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from benchlib import add_json_argument, emit_json, format_table, rtl_disagreed, rtl_record

from boards.catalog import BOARDS
from lockstep import mlperf
from lockstep.compiler import CompileError, compile_model
from lockstep.onnx import load_onnx
from lockstep.profile import cycle_breakdown


def quantised_models(names, seed, folder):
    models = {}
    for name in names:
        path = mlperf.quantize_onnx(mlperf.build(name, seed=seed), Path(folder) / f"{name}.onnx",
                                    np.random.default_rng(seed))
        models[name] = load_onnx(path)
    return models


def measure(name, model, board, clock, rtl, simulator, seed):
    cfg = board.core
    record = {"model": name, "core": board.name, "rows": cfg.rows, "cols": cfg.cols,
              "clock_mhz": board.clock_mhz, "macs": model.macs()}
    try:
        compiled = compile_model(model, cfg)
    except CompileError as exc:
        record["error"] = str(exc)
        return record
    cycles = compiled.predicted_cycles
    record.update(
        predicted_cycles=cycles, ideal_cycles=-(-record["macs"] // cfg.macs_per_cycle),
        utilization=round(record["macs"] / (cycles * cfg.macs_per_cycle), 4),
        instructions=compiled.instructions, wgt_rows=compiled.wgt_rows,
        qparam_rows=compiled.qparam_rows, act_bytes=compiled.act_bytes,
        latency_us=round(cycles / board.clock_mhz, 1),
        layers=[dict(layer, utilization=round(layer["macs"] / (max(layer["cycles"], 1)
                                                              * cfg.macs_per_cycle), 4))
                for layer in compiled.layers],
        **cycle_breakdown(compiled))
    if clock:
        record["latency_us_at_clock"] = round(cycles / clock, 1)
    if rtl:
        x = np.random.default_rng(seed).integers(-128, 128, (1, *model.input_shape))
        record["rtl"] = rtl_record(compiled, x.astype(np.int8), simulator)
    return record


def tables(results, clock):
    headers = ["model", "core", "MACs", "cycles", "ideal", "util", "instr",
               "latency @ board clock"] + ([f"@ {clock:g} MHz"] if clock else []) + ["RTL"]
    rows, notes = [], []
    for r in results:
        core = f"{r['core']} {r['rows']}x{r['cols']}"
        if "error" in r:
            notes.append(f"[{len(notes) + 1}] {r['model']} on {r['core']}: {r['error']}")
            rows.append([r["model"], core, r["macs"], "-", "-", "-", "-",
                         f"does not fit [{len(notes)}]"] + (["-"] if clock else []) + ["-"])
            continue
        rtl = "-"
        if "rtl" in r:
            ok = r["rtl"]["cycles_match"] and r["rtl"]["outputs_match"]
            rtl = f"{r['rtl']['measured_cycles']} ({'equal' if ok else 'DIFFERENT'})"
        rows.append([r["model"], core, r["macs"], r["predicted_cycles"], r["ideal_cycles"],
                     f"{100 * r['utilization']:.1f}%", r["instructions"],
                     f"{r['latency_us']:,.1f} us @ {r['clock_mhz']:g} MHz"]
                    + ([f"{r['latency_us_at_clock']:,.1f} us"] if clock else []) + [rtl])
    lines = format_table(headers, rows) + notes
    for r in results:
        if "error" in r:
            continue
        lines += ["", f"{r['model']} on {r['core']}: per layer"]
        lines += format_table(
            ["layer", "MACs", "cycles", "util", "instr"],
            [[layer["name"], layer["macs"], layer["cycles"],
              f"{100 * layer['utilization']:.1f}%", layer["instructions"]]
             for layer in r["layers"]])
        c, n = r["cycles"], r["opcode_counts"]
        parts = [("fetch", c["fetch"]), ("LOADW", c["LOADW"]),
                 ("MATMUL rows", c["matmul_rows"]), ("preload wait", c["preload_wait"]),
                 ("VEC", c["VEC"]), ("POOL", c["POOL"]), ("FILL", c["FILL"]),
                 ("SETQ/SETP/SETW", c["SETQ"] + c["SETP"] + c["SETW"]), ("WAIT", c["WAIT"]),
                 ("interlock", c["interlock"]), ("drain+HALT", c["drain"] + c["halt"])]
        lines.append("where the cycles go: " + ", ".join(f"{k} {v}" for k, v in parts)
                     + f" (instructions: {', '.join(f'{k} {v}' for k, v in n.items() if v)})")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(mlperf.MODELS),
                        help="comma-separated models (default: all four)")
    parser.add_argument("--core", action="append", choices=list(BOARDS),
                        help="board whose core to compile for (repeatable; default all)")
    parser.add_argument("--clock", type=float, default=None,
                        help="also give the latency at this clock in MHz (e.g. routed Fmax)")
    parser.add_argument("--rtl", action="store_true",
                        help="also run each model that fits on the RTL (slow for IC and VWW)")
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                        help="RTL simulator for --rtl (default verilator)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the weights, calibration and RTL input (default 0)")
    add_json_argument(parser)
    args = parser.parse_args(argv)
    out = sys.stderr if args.json == "-" else sys.stdout
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in mlperf.MODELS]
    if unknown or not names:
        parser.error(f"--models: unknown model(s) {', '.join(unknown) or '(none)'}; "
                     f"known: {', '.join(mlperf.MODELS)}")

    with tempfile.TemporaryDirectory() as folder:
        models = quantised_models(names, args.seed, folder)
    results = []
    for name, model in models.items():
        for core in args.core or list(BOARDS):
            if args.rtl:
                print(f"{name} on {core}: compiling and running on the RTL ({args.simulator})",
                      file=sys.stderr, flush=True)
            results.append(measure(name, model, BOARDS[core], args.clock, args.rtl,
                                   args.simulator, args.seed))
    for line in tables(results, args.clock):
        print(line, file=out)
    if args.json:
        emit_json(args.json, {"benchmark": "models", "seed": args.seed, "clock_mhz": args.clock,
                              "results": results})
    return 1 if rtl_disagreed(results, "bench_models") else 0


if __name__ == "__main__":
    sys.exit(main())
