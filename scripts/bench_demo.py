#!/usr/bin/env python3
"""Benchmark: latency of the digits demo networks (lockstep demo) on each board's core.

Trains and quantises the demo's MLP and CNN exactly as ``lockstep demo`` does (scikit-learn's
8x8 digits, same seeds), compiles them for each core at each batch size and reports the
predicted cycles (golden model, equal to the RTL's count by construction), the MACs of the
network, the ideal cycles (MACs / (R*C)), their ratio, the array utilisation and the latency at
the board's clock. With --rtl, each case also runs one batch of test images on the RTL (the
measured cycles must equal the predicted ones, and the outputs the golden model's).

A second table says where the cycles go (lockstep/profile.py): the sum of isa.cost over each
opcode (MATMUL split into its streamed rows and the cycles a MATMUL that preloads the next
weight tile waits for the load), the interlock waits and the fetch, HALT and final drain.

    python scripts/bench_demo.py [--core demo|icebreaker|ulx3s-85f ...] [--batches 1,16]
        [--rtl] [--simulator verilator|icarus] [--seed 2026] [--json [FILE]] [--timeline DIR]

Cores: "demo" is the 8x8 core `lockstep demo` uses, the others each board's own
(boards/catalog.py); default all. A network that does not fit a core is listed as such.
"""

import argparse
import sys

from benchlib import (
    add_json_argument,
    emit_json,
    format_table,
    parse_ints,
    rtl_disagreed,
    rtl_record,
)

from boards.catalog import BOARDS
from lockstep.compiler import compile_model
from lockstep.demo import DEMO_CONFIG, demo_network
from lockstep.profile import cycle_breakdown
from lockstep.train import load_digits_split

CORES = {"demo": (DEMO_CONFIG, None), **{name: (b.core, b) for name, b in BOARDS.items()}}


def demo_networks(seed=2026):
    """The demo's quantised networks and their int8 test inputs: {kind: (model, x_int8)}."""
    digits = load_digits_split(seed=0)
    nets = {}
    for kind in ("mlp", "cnn"):
        _, model, xs, _ = demo_network(kind, seed, digits)
        nets[kind] = (model, model.input.quantize(xs))
    return nets


def measure(kind, model, x, core_name, batch, rtl=False, simulator="verilator"):
    cfg, board = CORES[core_name]
    record = {"network": kind, "core": core_name, "rows": cfg.rows, "cols": cfg.cols,
              "macs_per_cycle": cfg.macs_per_cycle, "batch": batch,
              "clock_mhz": board.clock_mhz if board else None}
    try:
        compiled = compile_model(model, cfg, batch=batch)
    except ValueError as exc:   # CompileError: does not fit this core
        record["error"] = f"does not fit: {exc}"
        return record
    macs = model.macs() * batch
    ideal = -(-macs // cfg.macs_per_cycle)
    cycles = compiled.predicted_cycles
    record.update(
        predicted_cycles=cycles, macs=macs, ideal_cycles=ideal,
        ratio=round(cycles / ideal, 3), utilization=round(macs / (cycles * cfg.macs_per_cycle),
                                                          4),
        cycles_per_inference=round(cycles / batch, 1), instructions=compiled.instructions,
        latency_us=round(cycles / board.clock_mhz, 2) if board else None,
        **cycle_breakdown(compiled))
    if rtl:
        record["rtl"] = rtl_record(compiled, x[:batch], simulator)
    return record


def draw_timelines(nets, folder, out):
    """Each network's timeline at batch 1 on the ULX3S core (lockstep/timeline.py)."""
    from pathlib import Path

    from lockstep.timeline import draw_timeline
    cfg, board = CORES["ulx3s-85f"]
    Path(folder).mkdir(parents=True, exist_ok=True)
    for kind, (model, _) in nets.items():
        compiled = compile_model(model, cfg)
        path = Path(folder) / f"timeline-demo-{kind}.png"
        cycles = compiled.predicted_cycles
        draw_timeline(compiled, path, title=f"demo {kind.upper()}, batch 1, on the ULX3S core "
                      f"(12x12): {cycles:,} cycles, {cycles / board.clock_mhz:.1f} us at "
                      f"{board.clock_mhz:g} MHz")
        print(f"wrote {path}", file=out)


def tables(results):
    headers = ["network", "core", "batch", "MACs", "predicted", "ideal", "ratio", "util",
               "cyc/inf", "latency", "RTL"]
    rows, notes = [], []
    for r in results:
        if "error" in r:
            notes.append(f"[{len(notes) + 1}] {r['network']} on {r['core']} at batch "
                         f"{r['batch']}: {r['error']}")
            rows.append([r["network"], f"{r['core']} {r['rows']}x{r['cols']}", r["batch"],
                         "-", "-", "-", "-", "-", "-", "-", f"does not fit [{len(notes)}]"])
            continue
        latency = (f"{r['latency_us']:.1f} us @ {r['clock_mhz']:g} MHz"
                   if r["latency_us"] is not None else "-")
        rtl = "-"
        if "rtl" in r:
            ok = r["rtl"]["cycles_match"] and r["rtl"]["outputs_match"]
            rtl = f"{r['rtl']['measured_cycles']} ({'equal' if ok else 'DIFFERENT'})"
        rows.append([r["network"], f"{r['core']} {r['rows']}x{r['cols']}", r["batch"], r["macs"],
                     r["predicted_cycles"], r["ideal_cycles"], f"{r['ratio']:.2f}x",
                     f"{100 * r['utilization']:.1f}%", f"{r['cycles_per_inference']:.0f}",
                     latency, rtl])
    lines = format_table(headers, rows) + notes
    lines += ["", "where the cycles go (sum of isa.cost per opcode; MATMUL = streamed rows + "
              "waits for a preload longer than the stream):"]
    headers = ["network", "core", "batch", "fetch", "LOADW", "MATMUL rows", "preload wait",
               "VEC", "POOL", "FILL", "SET*", "WAIT", "interlock", "drain+HALT", "total",
               "ideal"]
    rows = []
    for r in results:
        if "error" in r:
            continue
        c, n = r["cycles"], r["opcode_counts"]
        rows.append([r["network"], f"{r['core']} {r['rows']}x{r['cols']}", r["batch"],
                     c["fetch"], f"{c['LOADW']} ({n['LOADW']})",
                     f"{c['matmul_rows']} ({n['MATMUL']})", c["preload_wait"],
                     f"{c['VEC']} ({n['VEC']})", f"{c['POOL']} ({n['POOL']})",
                     f"{c['FILL']} ({n['FILL']})", c["SETQ"] + c["SETP"] + c["SETW"],
                     c["WAIT"], c["interlock"],
                     c["drain"] + c["halt"], r["predicted_cycles"], r["ideal_cycles"]])
    lines += format_table(headers, rows)
    lines.append("(n) = instructions of that kind")
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core", action="append", choices=list(CORES),
                        help="core to compile for (repeatable; default all)")
    parser.add_argument("--batches", default="1,16", help="batch sizes (default 1,16)")
    parser.add_argument("--rtl", action="store_true",
                        help="also run one batch of each case on the RTL")
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    parser.add_argument("--seed", type=int, default=2026, help="training seed (demo: 2026)")
    parser.add_argument("--timeline", metavar="DIR", help="also draw each network's timeline "
                        "at batch 1 on the ULX3S core (DIR/timeline-demo-KIND.png)")
    add_json_argument(parser)
    args = parser.parse_args(argv)
    out = sys.stderr if args.json == "-" else sys.stdout
    try:
        batches = parse_ints(args.batches)
    except ValueError as exc:
        parser.error(str(exc))

    nets = demo_networks(args.seed)
    results = []
    for kind, (model, x) in nets.items():
        for core in args.core or list(CORES):
            for batch in batches:
                if args.rtl:
                    print(f"{kind} on {core} at batch {batch}: RTL ({args.simulator})",
                          file=sys.stderr, flush=True)
                results.append(measure(kind, model, x, core, batch, rtl=args.rtl,
                                       simulator=args.simulator))
    for line in tables(results):
        print(line, file=out)
    if args.timeline:
        draw_timelines(nets, args.timeline, out)
    if args.json:
        emit_json(args.json, {"benchmark": "demo", "seed": args.seed, "results": results})
    return 1 if rtl_disagreed(results, "bench_demo") else 0


if __name__ == "__main__":
    sys.exit(main())
