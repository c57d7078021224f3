#!/usr/bin/env python3
"""Benchmark: the host link, model upload and result readback on each board, at its baud rate.

For the demo's MLP and CNN (bench_demo.py) and MLPerf Tiny's models (bench_models.py), compiled
for each board's core at batch 1, the traffic that lockstep.hostlink puts on the serial line,
counted exactly by running the client against lockstep.hostlink.TrafficCounter (frames, bytes
each way) and turned into time at the board's rate (10 bit times per byte):

* upload: what the board backend loads first (lockstep/held.py): the words the program
  executes, the weight tiles and parameter rows it reads, and its input;
* inference: what each later run puts on the line: its input rows, then the readback of its
  output rows (START, the status polls and the counters aside);
* for comparison, the whole SRAM image (every row of every SRAM).

With --sim, the iCEBreaker's own core behind its link is simulated (Verilator) at its real
divisor, running the demo MLP's shape through the pins (lockstep/benches/hostlink_bench.py), and
the measured cycles of each phase are set beside the line time, which they can only exceed by
the board's turnaround of each frame.

    python scripts/bench_link.py [--models mlp,cnn,kws,ic,ad] [--sim] [--json [FILE]]
"""

import argparse
import json
import sys
import tempfile

import numpy as np
from bench_demo import demo_networks
from bench_models import quantised_models
from benchlib import add_json_argument, emit_json, format_table

from boards.catalog import BOARDS, get_board
from lockstep.compiler import CompileError, compile_model
from lockstep.held import HeldImage, after_run, load_needed, read_rows
from lockstep.hostlink import link_traffic
from sim.model import access_of

MODELS = ("mlp", "cnn", "kws", "ic", "ad")


def _phase(traffic, baud):
    return dict(frames=traffic.frames, bytes_sent=traffic.bytes_sent,
                bytes_received=traffic.bytes_received,
                ms=round(1e3 * traffic.wire_seconds(baud), 2))


def measure(name, model, board, seed):
    cfg = board.core
    record = {"model": name, "board": board.name, "baud": board.baud}
    try:
        compiled = compile_model(model, cfg)
    except CompileError as exc:
        record["error"] = str(exc)
        return record
    rng = np.random.default_rng(seed)
    first, second = (compiled.with_input(rng.integers(-128, 128, (1, *model.input_shape))
                                         .astype(np.int8)) for _ in range(2))
    needs = access_of(first)
    held = HeldImage(cfg)    # what the board holds: nothing known after configuration

    def traffic(operation):
        """The traffic of ``operation(protocol, held)``, run against the traffic counter (which
        takes every write and reads zeros), so ``held`` follows it."""
        return link_traffic(cfg, lambda client: client.perform(operation(client.protocol, held)))

    record["whole_image"] = _phase(link_traffic(cfg, "load_state", first), board.baud)
    record["upload"] = _phase(traffic(lambda p, h: load_needed(p, first, h, needs)), board.baud)
    after_run(held, needs)
    traffic(lambda p, h: read_rows(p, h, "act", compiled.output_rows))
    new_input = traffic(lambda p, h: load_needed(p, second, h, needs))
    after_run(held, needs)
    readback = traffic(lambda p, h: read_rows(p, h, "act", compiled.output_rows))
    record["inference"] = _phase(new_input, board.baud)
    for key, value in _phase(readback, board.baud).items():
        record["inference"][key] = round(record["inference"][key] + value, 2)
    record["compute_us"] = round(compiled.predicted_cycles / board.clock_mhz, 1)
    return record


def simulate(seed):
    """The iCEBreaker link bench on Verilator; returns its report (see hostlink_bench)."""
    from lockstep.benches import LINK_BENCH, link_bench_env
    from rtl.hostlink import LinkedCore
    from sim.runner import run_cocotb

    board = get_board("icebreaker")
    divisor = board.uart_divisor
    with tempfile.TemporaryDirectory() as folder:
        report = f"{folder}/link.json"
        run_cocotb(
            lambda: LinkedCore(board.core, divisor), key=f"linked-{board.name}-d{divisor}",
            toplevel="linked_core", test_module=LINK_BENCH, simulator="verilator",
            testcase="compiled_network",
            extra_env=link_bench_env(board.core, seed, divisor, network=(64, 32, 10),
                                     report=report))
        with open(report) as f:
            data = json.load(f)
    data.update(board=board.name, clock_mhz=board.clock_mhz, baud=board.baud)
    return data


def tables(results, sim):
    rows, notes = [], []
    for r in results:
        if "error" in r:
            notes.append(f"[{len(notes) + 1}] {r['model']} on {r['board']}: {r['error']}")
            rows.append([r["model"], r["board"], f"{r['baud']:,}", f"does not fit "
                         f"[{len(notes)}]", "-", "-", "-"])
            continue
        whole, up, inf = r["whole_image"], r["upload"], r["inference"]
        rows.append([r["model"], r["board"], f"{r['baud']:,}",
                     f"{up['ms']:,.1f} ms ({up['frames']} frames)",
                     f"{inf['ms']:,.2f} ms ({inf['frames']} frames)",
                     f"{r['compute_us']:,.1f} us",
                     f"{whole['ms']:,.1f} ms ({whole['frames']} frames)"])
    lines = format_table(["model", "board", "baud", "upload (what the program reads)",
                          "inference (input + output)", "compute",
                          "for comparison: whole image"], rows) + notes
    if sim:
        clock, divisor = sim["clock_mhz"], sim["divisor"]
        lines += ["", f"measured on the RTL: the {sim['board']}'s core behind its link, "
                  f"{divisor} cycles per bit ({sim['baud']:,} baud at {clock:g} MHz), "
                  f"network {sim['network']}, {sim['predicted_cycles']} cycles of compute"]
        srows = []
        for phase, runs in sim["phases"].items():
            for run in runs:
                wire = run.get("wire_cycles")
                srows.append([phase, f"{run['cycles']:,}", f"{run['cycles'] / clock / 1e3:,.2f}",
                              f"{wire:,}" if wire else "-",
                              f"{run['cycles'] / wire:.3f}" if wire else "-",
                              run.get("frames", "-")])
        lines += format_table(["phase", "cycles", "ms", "line cycles", "ratio", "frames"],
                              srows)
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated models (default: {','.join(MODELS)})")
    parser.add_argument("--sim", action="store_true",
                        help="also measure the iCEBreaker's link on the RTL (Verilator, ~1 min)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    add_json_argument(parser)
    args = parser.parse_args(argv)
    out = sys.stderr if args.json == "-" else sys.stdout
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        parser.error(f"--models: unknown model(s) {', '.join(unknown) or '(none)'}; "
                     f"known: {', '.join(MODELS)}")
    models = {}
    if {"mlp", "cnn"} & set(names):
        models.update({k: m for k, (m, _) in demo_networks().items() if k in names})
    mlperf_names = [n for n in names if n not in ("mlp", "cnn")]
    if mlperf_names:
        with tempfile.TemporaryDirectory() as folder:
            models.update(quantised_models(mlperf_names, args.seed, folder))
    results = [measure(name, models[name], board, args.seed)
               for name in names for board in BOARDS.values()]
    sim = simulate(args.seed) if args.sim else None
    print("\n".join(tables(results, sim)), file=out)
    if args.json:
        emit_json(args.json, {"benchmark": "link", "seed": args.seed, "results": results,
                              "sim": sim})


if __name__ == "__main__":
    main()
