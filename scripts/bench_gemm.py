#!/usr/bin/env python3
"""Benchmark: one int8 GEMM (Y = X @ W, int32 result) on the RTL core in simulation.

Prints the cycles the core counted, the useful MACs (M*K*N) and the array utilisation
(useful MACs / (cycles * R * C)), after checking the result bit for bit against numpy and the
cycle count against the golden model's prediction. With --json, one JSON object.

    python scripts/bench_gemm.py --rows 8 --cols 8 --m 128 --k 128 --n 128 [--json]

Other scripts reuse :func:`measure` (scripts/bench_utilisation.py, scripts/bench_sim.py).
"""

import argparse
import json
import sys
import time

import numpy as np

from boards.catalog import BOARDS
from rtl import isa
from rtl.config import ACT_ADDR_BITS, TIMING_OPTIONS, ConfigError, CoreConfig
from sim.model import CoreState, run
from sim.programs import (
    ceil_div,
    gather_accumulators,
    gemm_program,
    place_matrix,
    place_weights,
    write_bytes,
)
from sim.rtlsim import run_on_rtl


def gemm_config(rows, cols, m, k, n, pipeline=None):
    """The smallest core of this array shape whose SRAMs hold the whole GEMM (X as M rows of K
    bytes from byte 0 of the activation SRAM, whose depth is a power of two; one SETP, one
    LOADW, a MATMUL per weight tile and HALT in the program SRAM), with the timing options in
    ``pipeline`` (a dict, default none)."""
    kt, nt = ceil_div(k, rows), ceil_div(n, cols)
    if m * k > 1 << ACT_ADDR_BITS:
        raise ValueError(f"X ({m} x {k} = {m * k} bytes) exceeds the activation SRAM's "
                         f"{1 << ACT_ADDR_BITS}-byte address space")
    row_bytes = CoreConfig(rows=rows, cols=cols).act_row_bytes
    act_depth = max(2, 1 << (ceil_div(m * k, row_bytes) - 1).bit_length())
    return CoreConfig(rows=rows, cols=cols, act_depth=act_depth, wgt_depth=nt * kt * rows,
                      acc_depth=nt * m, qparam_depth=1, prog_depth=nt * kt + 3,
                      **(pipeline or {}))


def measure(rows, cols, m, k, n, simulator="verilator", seed=1, pipeline=None):
    """Run one random M x K x N GEMM on the smallest core of an R x C array that holds it; the
    figures as a dict (the --json object). ConfigError/ValueError (one line) if it cannot."""
    if m >= 1 << 12:
        raise ValueError("--m must be below 4096 (one MATMUL streams M rows)")
    cfg = gemm_config(rows, cols, m, k, n, pipeline)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
    w = rng.integers(-128, 128, size=(k, n), dtype=np.int8)

    state = CoreState(cfg)
    write_bytes(state, 0, place_matrix(x))           # row i of X at byte i * K
    state.wgt[:] = place_weights(cfg, w)
    state.load_program(gemm_program(cfg, m, k, n, x_base=0, x_stride=k)
                       + [isa.encode(isa.Op.HALT)])
    predicted = run(state.copy())

    started = time.perf_counter()
    rtl = run_on_rtl(state, simulator=simulator)
    wall = time.perf_counter() - started

    expected = x.astype(np.int64) @ w.astype(np.int64)
    got = gather_accumulators(cfg, rtl.acc, m, n)
    bit_exact = bool(np.array_equal(got, expected))
    macs = m * k * n
    return {
        "rows": cfg.rows, "cols": cfg.cols, "m": m, "k": k, "n": n,
        **cfg.timing,
        "cycles": rtl.cycles, "predicted_cycles": predicted.cycles,
        "macs": macs, "mac_cycles": rtl.mac_cycles,
        "utilization": macs / (rtl.cycles * cfg.rows * cfg.cols),
        "ideal_cycles": ceil_div(macs, cfg.rows * cfg.cols),
        "bit_exact": bit_exact, "error": rtl.error.name, "simulator": simulator,
        "wall_seconds": round(wall, 2),
        "run_seconds": round(rtl.run_seconds, 3),
        "sim_cycles_per_second": round(rtl.cycles / rtl.run_seconds) if rtl.run_seconds else None,
    }


def agrees(result):
    """Bit-exact, the predicted cycle count, no error."""
    return (result["bit_exact"] and result["cycles"] == result["predicted_cycles"]
            and result["error"] == isa.Error.NONE.name)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--cols", type=int, default=8)
    parser.add_argument("--m", type=int, default=128)
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--board", choices=sorted(BOARDS),
                        help="use that board's core timing options (" + ", ".join(
                            TIMING_OPTIONS) + "); the array shape stays --rows x --cols")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    pipeline = BOARDS[args.board].core.timing if args.board else None
    try:
        result = measure(args.rows, args.cols, args.m, args.k, args.n,
                         simulator=args.simulator, seed=args.seed, pipeline=pipeline)
    except (ConfigError, ValueError) as exc:
        print(f"bench_gemm: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        r = result
        print(f"GEMM {r['m']}x{r['k']}x{r['n']} on a {r['rows']}x{r['cols']} array "
              f"({r['simulator']})")
        print(f"  cycles (RTL)        {r['cycles']}")
        print(f"  cycles (predicted)  {r['predicted_cycles']}")
        print(f"  ideal cycles        {r['ideal_cycles']}")
        print(f"  useful MACs         {r['macs']}")
        print(f"  utilisation         {r['utilization']:.4f}")
        print(f"  bit-exact vs numpy  {r['bit_exact']}")
        print(f"  wall time           {r['wall_seconds']:.1f} s (simulation, including host "
              f"transfers)")
        print(f"  run phase           {r['run_seconds']:.2f} s, "
              f"{r['sim_cycles_per_second']} simulated cycles/s")
    ok = agrees(result)
    if not ok:
        print("bench_gemm: error: RTL disagrees with the golden model", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
