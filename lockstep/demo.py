"""``lockstep demo``: the project's main job.

Trains a small MLP and a small CNN on scikit-learn's bundled 8x8 digits (no download),
quantises them to int8, compiles them for a Lockstep core, runs the whole test split on the
golden model and a sample of it on the RTL in simulation, and reports accuracy, bit-exactness,
predicted against measured cycles, array utilisation and latency at each board's clock.
"""

import sys
import time

import numpy as np

from boards.catalog import BOARDS
from rtl.config import CoreConfig

from .compiler import CompileError, compile_model
from .quantize import quantize
from .runtime import run
from .train import accuracy, load_digits_split, train_cnn, train_mlp

__all__ = ["run_demo", "demo_network", "DEMO_CONFIG"]

DEMO_CONFIG = CoreConfig(rows=8, cols=8, act_depth=2048, wgt_depth=2048, acc_depth=1024,
                         qparam_depth=32, prog_depth=1024)
LARGE_BATCH = 16


def demo_network(kind, seed=2026, digits=None):
    """The demo's ``kind`` ("mlp" or "cnn") network, trained on the digits' training split with
    ``seed`` and quantised with 500 of its images: (float model, int8 model, the test split's
    float inputs shaped for it, its labels). ``digits``: load_digits_split's result, if loaded."""
    x_train, y_train, x_test, y_test = digits or load_digits_split(seed=0)
    if kind == "mlp":
        flat = x_train.reshape(len(x_train), -1)
        float_model = train_mlp(flat, y_train, seed=seed)
        xs, calib = x_test.reshape(len(x_test), -1), flat[:500]
    elif kind == "cnn":
        float_model = train_cnn(x_train, y_train, seed=seed)
        xs, calib = x_test, x_train[:500]
    else:
        raise ValueError(f"the demo networks are mlp and cnn, not {kind!r}")
    return float_model, quantize(float_model, calib, name=kind), xs, y_test


def _board_latencies(model, batch):
    """Predicted latency of one batch on each board's own core, at its clock."""
    out = []
    for name, board in BOARDS.items():
        try:
            compiled = compile_model(model, board.core, batch=batch)
        except ValueError as exc:
            out.append(f"{name}: does not fit ({exc})")
            continue
        us = compiled.predicted_cycles / board.clock_mhz
        out.append(f"{name} ({board.core.rows}x{board.core.cols} @ {board.clock_mhz:g} MHz): "
                   f"{us:.1f} us")
    return out


def _largest_batch(model, cfg):
    """``model`` compiled at batch LARGE_BATCH, or at the largest power of two below it that
    fits ``cfg``; batch 1's refusal if none does."""
    batch = LARGE_BATCH
    while True:
        try:
            return compile_model(model, cfg, batch=batch)
        except CompileError:
            if batch == 1:
                raise
            batch //= 2


def run_demo(simulator="verilator", seed=2026, rtl_samples=8, out=sys.stdout, progress=None,
             board=None):
    """Run the demo on ``DEMO_CONFIG``, or on the core that ``board`` (a boards.catalog.Board)
    carries, with its latency at the board's clock."""
    started = time.perf_counter()
    say = lambda *a: print(*a, file=out, flush=True)   # noqa: E731
    digits = x_train, _, x_test, _ = load_digits_split(seed=0)
    cfg = board.core if board is not None else DEMO_CONFIG
    where = f"{board.name}'s core, " if board is not None else "core "
    say(f"Lockstep demo: scikit-learn digits, {len(x_train)} training and {len(x_test)} test "
        f"images; {where}{cfg.rows}x{cfg.cols}, RTL on {simulator}")
    all_ok = True
    for kind in ("mlp", "cnn"):
        t0 = time.perf_counter()
        float_model, model, xs, y_test = demo_network(kind, seed, digits)
        trained = time.perf_counter() - t0
        float_acc = accuracy(float_model, xs, y_test)
        q_in = model.input.quantize(xs)

        small = compile_model(model, cfg, batch=1)
        large = _largest_batch(model, cfg)
        batch = large.batch
        golden = run(large, q_in, backend="golden")
        int8_acc = float(np.mean(golden.outputs.argmax(axis=1) == y_test))

        names = " -> ".join(layer.describe() for layer in model.layers)
        say(f"\n{kind.upper()}: {names}")
        say(f"  trained and quantised in {trained:.1f} s")
        say(f"  accuracy on the test split: float {100 * float_acc:.2f}%, "
            f"int8 {100 * int8_acc:.2f}% (golden model of the core)")
        sample = q_in[:rtl_samples]
        if batch < LARGE_BATCH:
            say(f"  batch {LARGE_BATCH} does not fit the core's SRAMs; batch {batch} does")
        say(f"  running {rtl_samples} images at batch 1 and {batch} at batch {batch} "
            f"on the RTL ({simulator}; the first run of a core builds its simulator)")
        rtl_1 = run(small, sample, backend="sim", simulator=simulator, progress=progress)
        rtl_n = run(large, q_in[:batch], backend="sim", simulator=simulator,
                    progress=progress)
        same = (np.array_equal(rtl_1.outputs, golden.outputs[:rtl_samples])
                and np.array_equal(rtl_n.outputs, golden.outputs[:batch]))
        cycles_ok = (set(rtl_1.measured_cycles) == {small.predicted_cycles}
                     and set(rtl_n.measured_cycles) == {large.predicted_cycles})
        all_ok &= same and cycles_ok
        macs = model.macs()
        say(f"  RTL == golden model, bit for bit, on {rtl_samples} images at batch 1 and "
            f"{batch} at batch {batch}: {'yes' if same else 'NO'}")
        cases = [("batch 1", small, rtl_1)] + ([(f"batch {batch}", large, rtl_n)]
                                               if batch > 1 else [])
        for label, compiled, result in cases:
            measured = sorted(set(result.measured_cycles))
            per = compiled.predicted_cycles / compiled.batch
            util = macs * compiled.batch / (compiled.predicted_cycles * cfg.macs_per_cycle)
            say(f"  {label}: predicted {compiled.predicted_cycles} cycles, measured "
                f"{', '.join(map(str, measured))} "
                f"({'equal' if measured == [compiled.predicted_cycles] else 'DIFFERENT'}); "
                f"{per:.0f} cycles per inference, utilisation {100 * util:.1f}%"
                + (f", {compiled.predicted_cycles / board.clock_mhz:,.1f} us at "
                   f"{board.clock_mhz:g} MHz" if board is not None else ""))
        say("  predicted latency at batch 1 on each board's core, at its target clock: "
            + "; ".join(_board_latencies(model, 1)))
    say(f"\ndone in {time.perf_counter() - started:.0f} s")
    if not all_ok:
        raise SystemExit("lockstep demo: the RTL disagreed with the golden model")
    return all_ok
