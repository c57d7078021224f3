"""``lockstep demo``: a small int8 network on the golden model and on the RTL in simulation.

A two-layer perceptron (64 -> 32 with ReLU -> 10) with seeded random int8 weights, per-channel
requantisation calibrated on its own batch, laid out by sim/programs.py, run once on the golden
model and once on the RTL core under Verilator (or Icarus). It prints whether the two agree bit
for bit and whether the predicted cycle count equals the one the RTL counted.
"""

import sys
import time

import numpy as np

from rtl import isa
from rtl.config import CoreConfig
from sim.arith import clamp_for, gemm_i32, quantize_multiplier
from sim.model import CoreState, run
from sim.programs import (
    ceil_div,
    gather_activations,
    gemm_program,
    place_activations,
    place_qparams,
    place_weights,
    requant_program,
)
from sim.rtlsim import run_on_rtl

__all__ = ["run_demo", "DEMO_CONFIG"]

DEMO_CONFIG = CoreConfig(rows=8, cols=8, act_depth=256, wgt_depth=512, acc_depth=64,
                         qparam_depth=8, prog_depth=64)
LAYERS = ((64, 32, "relu"), (32, 10, "none"))


def build_network(cfg, batch, rng):
    """Weights, requantisation and the whole program of the demo MLP; returns (state, layout)."""
    state = CoreState(cfg)
    x = rng.integers(-128, 128, size=(batch, LAYERS[0][0]), dtype=np.int8)
    act_base, wgt_base, q_base = 0, 0, 0
    state.act[:len(place_activations(cfg, x))] = place_activations(cfg, x)
    program, inputs, out_base = [], x, None
    in_base = act_base
    for k, n, activation in LAYERS:
        w = rng.integers(-60, 61, size=(k, n), dtype=np.int8)
        bias = rng.integers(-2000, 2000, size=n)
        acc = gemm_i32(inputs, w) + bias
        # Per-channel calibration on this batch: map each channel's range onto +-100.
        scales = [min(0.999, 100.0 / (int(peak) + 1)) for peak in np.abs(acc).max(axis=0)]
        mult, shift = zip(*(quantize_multiplier(s) for s in scales), strict=True)
        rows = place_weights(cfg, w)
        state.wgt[wgt_base:wgt_base + len(rows)] = rows
        b, mu, sh = place_qparams(cfg, bias, mult, shift)
        state.bias[q_base:q_base + len(b)] = b
        state.mult[q_base:q_base + len(b)] = mu
        state.shift[q_base:q_base + len(b)] = sh
        out_base = in_base + ceil_div(k, cfg.rows) * batch
        program += gemm_program(cfg, batch, k, n, x_base=in_base, w_base=wgt_base, acc_base=0)
        program += requant_program(cfg, batch, n, acc_base=0, y_base=out_base, q_base=q_base,
                                   zero_point=0, clamp=clamp_for(activation, 0))
        # The next layer reads this one's output in place.
        inputs = _golden_layer_output(cfg, state, program, batch, n, out_base)
        in_base, wgt_base, q_base = out_base, wgt_base + len(rows), q_base + len(b)
    state.load_program(program + [isa.encode(isa.Op.HALT)])
    return state, dict(x=x, out_base=out_base, classes=LAYERS[-1][1])


def _golden_layer_output(cfg, state, program, batch, n, base):
    """Run the program so far on the golden model to calibrate the next layer on real data."""
    probe = state.copy()
    probe.load_program(program + [isa.encode(isa.Op.HALT)])
    run(probe)
    return gather_activations(cfg, probe.act[base:], batch, n)


def run_demo(simulator="verilator", seed=2026, batch=8, out=sys.stdout):
    cfg = DEMO_CONFIG
    if not 1 <= batch <= cfg.act_depth // 16:
        raise ValueError(f"batch must be between 1 and {cfg.act_depth // 16}")
    rng = np.random.default_rng(seed)
    state, layout = build_network(cfg, batch, rng)
    golden = state.copy()
    predicted = run(golden)
    n = layout["classes"]
    golden_out = gather_activations(cfg, golden.act[layout["out_base"]:], batch, n)

    print(f"Lockstep demo: MLP 64-32-10 (int8), batch {batch}, {cfg.rows}x{cfg.cols} array, "
          f"seed {seed}", file=out)
    print(f"  program: {sum(1 for w in state.prog if int(w))} instructions, "
          f"predicted {predicted.cycles} cycles", file=out)
    print(f"  running on the RTL ({simulator}; the first run builds the simulator)...",
          file=out, flush=True)
    started = time.perf_counter()
    rtl = run_on_rtl(state, simulator=simulator)
    wall = time.perf_counter() - started
    rtl_out = gather_activations(cfg, rtl.act[layout["out_base"]:], batch, n)
    same_bits = np.array_equal(rtl_out, golden_out) and np.array_equal(rtl.act, golden.act)
    macs = batch * sum(k * n for k, n, _ in LAYERS)
    print(f"  classes (golden): {golden_out.argmax(axis=1).tolist()}", file=out)
    print(f"  classes (RTL):    {rtl_out.argmax(axis=1).tolist()}", file=out)
    print(f"  RTL == golden model, bit for bit: {'yes' if same_bits else 'NO'}", file=out)
    print(f"  cycles: predicted {predicted.cycles}, measured {rtl.cycles}: "
          f"{'equal' if rtl.cycles == predicted.cycles else 'DIFFERENT'}", file=out)
    print(f"  array utilisation: {macs / (rtl.cycles * cfg.macs_per_cycle):.3f} "
          f"({macs} MACs)", file=out)
    print(f"  simulation wall time: {wall:.1f} s", file=out)
    ok = same_bits and rtl.cycles == predicted.cycles and rtl.error == isa.Error.NONE
    if not ok:
        raise SystemExit("lockstep demo: the RTL disagreed with the golden model")
    return dict(cycles=rtl.cycles, predicted=predicted.cycles, same_bits=same_bits)
