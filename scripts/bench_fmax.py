#!/usr/bin/env python3
"""Benchmark: Fmax and resources against array size on each FPGA part (a `lockstep build` sweep).

For every board and array shape, runs ``lockstep build --board B --rows R --cols C`` (the
board's core with only the array shape changed) into its own folder build/sweep/B-RxC, and
collects nextpnr's Fmax, the constraint clock (the board oscillator), LUT/LC, DSP and block RAM
use, the build time, MACs per cycle and the peak throughput MACs/cycle x Fmax in GMAC/s. A
shape that does not fit, route or finish in --timeout seconds is recorded with its error.

    python scripts/bench_fmax.py [--board icebreaker|ulx3s-85f ...] [--shapes 1x2,2x4v1]
        [--seed 1] [--tools auto|yowasp|system] [--build-root build/sweep] [--timeout S]
        [--json [FILE]] [--plot DIR]
    python scripts/bench_fmax.py --from-json FILE [--plot DIR]

Default shapes: icebreaker 1x2,2x2,2x4v1, ulx3s-85f 4x4,8x8,12x12v3 (a shape may name its vector
lanes, ``vL``; 12x12v3 takes nextpnr-ecp5 about half an hour). --shapes applies to every
--board given. --plot DIR writes DIR/fmax_vs_array_<board>.png. The sweep builds one shape at a
time (each YoWASP nextpnr run uses one core) and rewrites the --json file after each shape.
"""

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchlib import (
    add_json_argument,
    emit_json,
    format_table,
    load_json,
    parse_build_shapes,
    pyplot,
    save_figure,
    shape_name,
)

from boards.build import RESOURCE_KINDS
from boards.catalog import BOARDS

DEFAULT_SHAPES = {"icebreaker": "1x2,2x2,2x4v1,8x2v1s32", "ulx3s-85f": "4x4,8x8,12x12v3"}
SUMMARY = "build-summary.json"   # `lockstep build --report-json` in each build folder


def _name(record):
    return shape_name(record["rows"], record["cols"], record.get("vec_lanes"),
                      record.get("vec_mult_cycles"))


def _resource(utilization, kind):
    for name in RESOURCE_KINDS[kind]:
        if name in utilization:
            return {"name": name, **utilization[name]}
    return None


def build_one(board, rows, cols, build_dir, seed=1, tools="auto", timeout=None,
              progress=sys.stderr, vec_lanes=None, mult_cycles=1):
    """Run one ``lockstep build`` and return its figures as a dict (never raises for a build
    that fails: ``status`` and ``error`` say what happened)."""
    board_info = BOARDS[board]
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    summary = build_dir / SUMMARY
    summary.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "lockstep.cli", "build", "--board", board,
            "--rows", str(rows), "--cols", str(cols), "--seed", str(seed), "--tools", tools,
            "--build-dir", str(build_dir), "--report-json", str(summary),
            "--vec-mult-cycles", str(mult_cycles)]
    if vec_lanes:
        argv += ["--vec-lanes", str(vec_lanes)]
    record = {"board": board, "part": board_info.part, "rows": rows, "cols": cols,
              "vec_lanes": vec_lanes or min(rows, cols), "vec_mult_cycles": mult_cycles,
              "macs_per_cycle": rows * cols, "seed": seed, "target_mhz": board_info.clock_mhz,
              "build_dir": str(build_dir)}
    started = time.monotonic()
    # Its own session, so that a timeout ends the build and the tools it started.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    lines = []

    def pump():
        for line in proc.stderr:
            lines.append(line.rstrip("\n"))
            if progress is not None:
                name = shape_name(rows, cols, vec_lanes, mult_cycles)
                print(f"  [{board} {name}] {line.rstrip()}", file=progress, flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        raise
    proc.stdout.read()
    reader.join(timeout=5)
    record["build_seconds"] = round(time.monotonic() - started, 1)
    record["exit_status"] = proc.returncode
    errors = [line for line in lines if ": error: " in line]
    error = errors[-1].split(": error: ", 1)[1] if errors else None

    data = None
    if summary.exists():
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(summary.read_text())
    if data is None:
        record.update(status="timed out" if timed_out else "failed", fmax_mhz=None,
                      timing_met=False, fits=False, utilization={}, peak_gmacs=None,
                      error=(f"no result within {timeout:g} s" if timed_out
                             else error or (lines[-1] if lines else "no output")))
        return record
    util = data.get("utilization", {})
    fits = all(u["used"] <= u["available"] for u in util.values())
    fmax = data.get("fmax_mhz")
    record.update(
        rows=data.get("rows", rows), cols=data.get("cols", cols),
        macs_per_cycle=data["macs_per_cycle"], target_mhz=data["target_mhz"], fmax_mhz=fmax,
        timing_met=data["timing_met"], fits=fits, utilization=util,
        tool_seconds=data.get("elapsed_s"), tools=data.get("tools"),
        synthesis=data.get("synthesis", "default"),
        peak_gmacs=None if fmax is None else round(data["macs_per_cycle"] * fmax / 1000, 4),
        status=("does not fit" if not fits else "ok" if data["timing_met"] else "timing failed"),
        error=error)
    for kind in ("logic", "dsp", "bram"):
        res = _resource(util, kind)
        record[kind] = res
    return record


def _used(res):
    if not res:
        return "n/a"
    pct = 100 * res["used"] / res["available"] if res["available"] else 0
    return f"{res['used']}/{res['available']} {pct:.0f}%"


def table(results):
    headers = ["board", "part", "array", "MACs/cyc", "Fmax MHz", "clock MHz", "LUT/LC", "DSP",
               "BRAM", "peak GMAC/s", "build s", "status"]
    rows = []
    for r in results:
        fmax = "-" if r.get("fmax_mhz") is None else f"{r['fmax_mhz']:.2f}"
        gmacs = "-" if r.get("peak_gmacs") is None else f"{r['peak_gmacs']:.3f}"
        status = r["status"] + (f": {r['error']}" if r.get("error") and r["status"] != "ok"
                                and r["status"] != "timing failed" else "")
        if r.get("synthesis", "default") != "default":   # boards/build.py: the ABC9 fallback
            status += f" ({r['synthesis']})"
        rows.append([r["board"], r["part"], _name(r),
                     r["macs_per_cycle"], fmax, f"{r['target_mhz']:g}", _used(r.get("logic")),
                     _used(r.get("dsp")), _used(r.get("bram")), gmacs,
                     f"{r['build_seconds']:.0f}", status[:90]])
    return format_table(headers, rows)


def plot(results, out_dir):
    """One PNG per board: Fmax (top) and LUT/DSP/BRAM use (bottom) against MACs per cycle."""
    plt = pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for board in dict.fromkeys(r["board"] for r in results):
        rs = sorted((r for r in results if r["board"] == board and r.get("fmax_mhz")),
                    key=lambda r: (r["macs_per_cycle"], r["rows"]))
        if not rs:
            continue
        part = rs[0]["part"]
        x = [r["macs_per_cycle"] for r in rs]
        fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7, 6.5))
        top.plot(x, [r["fmax_mhz"] for r in rs], "o-", color="tab:blue", label="Fmax (nextpnr)")
        top.axhline(rs[0]["target_mhz"], color="grey", ls="--",
                    label=f"board clock {rs[0]['target_mhz']:g} MHz")
        for r, xi in zip(rs, x, strict=True):
            top.annotate(_name(r), (xi, r["fmax_mhz"]),
                         textcoords="offset points", xytext=(4, 6), fontsize=8)
        top.set_ylabel("Fmax (MHz)")
        top.set_ylim(0, 1.2 * max(max(r["fmax_mhz"] for r in rs), rs[0]["target_mhz"]))
        top.set_title(f"Lockstep on {board} ({part}), seed {rs[0]['seed']}: "
                      f"Fmax and resources vs array size", fontsize=10)
        top.legend(fontsize=8)
        top.grid(alpha=0.3)
        for kind, label, style in (("logic", "LUT/LC", "s-"), ("dsp", "DSP", "^-"),
                                   ("bram", "block RAM", "d-")):
            ys = [100 * r[kind]["used"] / r[kind]["available"] if r.get(kind) else None
                  for r in rs]
            pts = [(xi, y) for xi, y in zip(x, ys, strict=True) if y is not None]
            if pts:
                bottom.plot(*zip(*pts, strict=True), style, label=label)
        bottom.axhline(100, color="red", lw=0.8, ls=":")
        bottom.set_ylim(bottom=0)
        bottom.set_ylabel("% of the part used")
        bottom.set_xlabel("MACs per cycle (R x C)")
        bottom.set_xscale("log", base=2)
        bottom.set_xticks(x)
        bottom.set_xticklabels([str(v) for v in x])
        bottom.legend(fontsize=8)
        bottom.grid(alpha=0.3)
        failed = [r for r in results if r["board"] == board and not r.get("fmax_mhz")]
        if failed:
            fig.text(0.01, 0.005, "no result: " + "; ".join(
                f"{_name(r)} ({r['status']})"
                for r in failed),
                fontsize=7, color="red")
        fig.tight_layout(rect=(0, 0.02 if failed else 0, 1, 1))
        written.append(save_figure(fig, out_dir, f"fmax_vs_array_{board}.png"))
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--board", action="append", choices=sorted(DEFAULT_SHAPES),
                        help="board to sweep (repeatable; default all)")
    parser.add_argument("--shapes", help="array shapes ROWSxCOLS, comma-separated, for every "
                        "--board (default: per board, see above)")
    parser.add_argument("--seed", type=int, default=1, help="nextpnr placer seed (default 1)")
    parser.add_argument("--tools", choices=("auto", "yowasp", "system"), default="auto")
    parser.add_argument("--build-root", default="build/sweep",
                        help="folder of the build folders BOARD-RxC (default build/sweep)")
    parser.add_argument("--timeout", type=float, help="give up a build after this many seconds")
    add_json_argument(parser)
    parser.add_argument("--from-json", metavar="FILE",
                        help="do not build: print the table (and --plot) of saved results")
    parser.add_argument("--plot", metavar="DIR", help="write the PNG plots into DIR")
    args = parser.parse_args(argv)
    out = sys.stderr if args.json == "-" else sys.stdout

    if args.from_json:
        data = load_json(args.from_json)
        results = data["results"]
    else:
        boards = args.board or list(DEFAULT_SHAPES)
        try:
            plan = [(b, shape) for b in dict.fromkeys(boards)
                    for shape in parse_build_shapes(args.shapes or DEFAULT_SHAPES[b])]
        except ValueError as exc:
            parser.error(str(exc))
        data = {"benchmark": "fmax", "seed": args.seed, "tools": args.tools, "results": []}
        results = data["results"]
        for i, (board, (rows, cols, lanes, mult)) in enumerate(plan):
            print(f"[{i + 1}/{len(plan)}] lockstep build --board {board} --rows {rows} "
                  f"--cols {cols}" + (f" --vec-lanes {lanes}" if lanes else "")
                  + f" --vec-mult-cycles {mult} --seed {args.seed}", file=sys.stderr, flush=True)
            build_dir = Path(args.build_root) / f"{board}-{shape_name(rows, cols, lanes, mult)}"
            results.append(build_one(board, rows, cols, build_dir, seed=args.seed,
                                     tools=args.tools, timeout=args.timeout, vec_lanes=lanes,
                                     mult_cycles=mult))
            if args.json and args.json != "-":
                emit_json(args.json, data)
    for line in table(results):
        print(line, file=out)
    if args.json and not args.from_json:
        emit_json(args.json, data)
    if args.plot:
        for path in plot(results, args.plot):
            print(f"wrote {path}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
