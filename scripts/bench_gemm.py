#!/usr/bin/env python3
"""Benchmark: one int8 GEMM (Y = X @ W, int32 result) on the RTL core in simulation.

Prints the cycles the core counted, the useful MACs (M*K*N) and the array utilisation
(useful MACs / (cycles * R * C)), after checking the result bit for bit against numpy and the
cycle count against the golden model's prediction. With --json, one JSON object.

    python scripts/bench_gemm.py --rows 8 --cols 8 --m 128 --k 128 --n 128 [--json]
"""

import argparse
import json
import sys
import time

import numpy as np

from rtl import isa
from rtl.config import ConfigError, CoreConfig
from sim.model import CoreState, run
from sim.programs import (
    ceil_div,
    gather_accumulators,
    gemm_program,
    place_activations,
    place_weights,
)
from sim.rtlsim import run_on_rtl


def gemm_config(rows, cols, m, k, n):
    """The smallest core of this array shape whose SRAMs hold the whole GEMM."""
    kt, nt = ceil_div(k, rows), ceil_div(n, cols)
    return CoreConfig(rows=rows, cols=cols, act_depth=kt * m, wgt_depth=nt * kt * rows,
                      acc_depth=nt * m, qparam_depth=1, prog_depth=nt * kt + 2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--cols", type=int, default=8)
    parser.add_argument("--m", type=int, default=128)
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    try:
        cfg = gemm_config(args.rows, args.cols, args.m, args.k, args.n)
    except ConfigError as exc:
        print(f"bench_gemm: error: {exc}", file=sys.stderr)
        return 2
    if args.m >= 1 << 12:
        print("bench_gemm: error: --m must be below 4096 (one MATMUL streams M rows)",
              file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    x = rng.integers(-128, 128, size=(args.m, args.k), dtype=np.int8)
    w = rng.integers(-128, 128, size=(args.k, args.n), dtype=np.int8)

    state = CoreState(cfg)
    state.act[:] = place_activations(cfg, x)
    state.wgt[:] = place_weights(cfg, w)
    state.load_program(gemm_program(cfg, args.m, args.k, args.n) + [isa.encode(isa.Op.HALT)])
    predicted = run(state.copy())

    started = time.perf_counter()
    rtl = run_on_rtl(state, simulator=args.simulator)
    wall = time.perf_counter() - started

    expected = x.astype(np.int64) @ w.astype(np.int64)
    got = gather_accumulators(cfg, rtl.acc, args.m, args.n)
    bit_exact = bool(np.array_equal(got, expected))
    macs = args.m * args.k * args.n
    result = {
        "rows": cfg.rows, "cols": cfg.cols, "m": args.m, "k": args.k, "n": args.n,
        "cycles": rtl.cycles, "predicted_cycles": predicted.cycles,
        "macs": macs, "mac_cycles": rtl.mac_cycles,
        "utilization": macs / (rtl.cycles * cfg.rows * cfg.cols),
        "ideal_cycles": ceil_div(macs, cfg.rows * cfg.cols),
        "bit_exact": bit_exact, "error": rtl.error.name, "simulator": args.simulator,
        "wall_seconds": round(wall, 2),
        "run_seconds": round(rtl.run_seconds, 3),
        "sim_cycles_per_second": round(rtl.cycles / rtl.run_seconds) if rtl.run_seconds else None,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"GEMM {args.m}x{args.k}x{args.n} on a {cfg.rows}x{cfg.cols} array "
              f"({args.simulator})")
        print(f"  cycles (RTL)        {rtl.cycles}")
        print(f"  cycles (predicted)  {predicted.cycles}")
        print(f"  ideal cycles        {result['ideal_cycles']}")
        print(f"  useful MACs         {macs}")
        print(f"  utilisation         {result['utilization']:.4f}")
        print(f"  bit-exact vs numpy  {bit_exact}")
        print(f"  wall time           {wall:.1f} s (simulation, including host transfers)")
        print(f"  run phase           {rtl.run_seconds:.2f} s, "
              f"{result['sim_cycles_per_second']} simulated cycles/s")
    ok = bit_exact and rtl.cycles == predicted.cycles and rtl.error == isa.Error.NONE
    if not ok:
        print("bench_gemm: error: RTL disagrees with the golden model", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
