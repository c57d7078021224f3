"""The runtime: one interface, interchangeable backends.

``run(compiled, x, backend=...)`` runs a compiled model on inputs of any batch size (split into
runs of the compiled batch, the last one padded) and returns the outputs with the predicted and,
where a backend measures them, the measured cycle counts. Backends:

* ``golden``: the golden model of the core (sim/model.py);
* ``sim``: the RTL in simulation (Verilator by default, Icarus on request);
* ``board``: a board over its serial port (lockstep/board.py, the host link): the model goes
  over the link once, then each run loads its input and reads back its output rows.

All backends must return the same bits; the sim backend also returns the cycles the RTL counted.
"""

from dataclasses import dataclass, field

import numpy as np

from rtl.isa import Error
from sim.model import run as golden_run

from .qmodel import ModelError

__all__ = ["run", "RunOutput", "BACKENDS", "RuntimeFailure"]

BACKENDS = ("golden", "sim", "board")


class RuntimeFailure(RuntimeError):
    """A backend failed (the core stopped with an error, a simulator or link failed)."""


@dataclass
class RunOutput:
    outputs: np.ndarray               # int8 [N, *output_shape]
    predicted_cycles: int             # per run of the compiled batch
    measured_cycles: list = field(default_factory=list)   # per run, where the backend counts
    runs: int = 0
    backend: str = "golden"
    #: Board backend: per run, the seconds it spent loading, running and reading back over the
    #: link, and the rows it loaded per SRAM (the first run loads the model, later ones the
    #: rows of their input).
    link: list = field(default_factory=list)

    @property
    def measured_total(self):
        return sum(self.measured_cycles) if self.measured_cycles else None


def _batches(compiled, x):
    n = len(x)
    for start in range(0, n, compiled.batch):
        chunk = x[start:start + compiled.batch]
        if len(chunk) < compiled.batch:
            pad = np.zeros((compiled.batch - len(chunk), *chunk.shape[1:]), dtype=np.int8)
            chunk = np.concatenate([chunk, pad])
        yield start, min(n, start + compiled.batch), chunk


def run(compiled, x, backend="golden", simulator=None, progress=None, board=None):
    """Run ``compiled`` on int8 inputs ``x`` [N, *input_shape] (float inputs are quantised with
    the model's input quantisation). ``progress`` is a file for progress lines (None: quiet)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    x = np.asarray(x)
    if x.dtype != np.int8:
        if not np.issubdtype(x.dtype, np.floating):
            raise ModelError(f"input must be int8 (quantised) or float, not {x.dtype}")
        if not np.isfinite(x).all():
            raise ModelError(f"input holds {np.count_nonzero(~np.isfinite(x))} NaN or infinite "
                             f"value(s) of {x.size}: they have no int8 value")
        x = compiled.model.input.quantize(x)
    if x.ndim < 1 or x.shape[1:] != compiled.model.input_shape or len(x) == 0:
        dims = ", ".join(map(str, compiled.model.input_shape))
        raise ModelError(f"input must have shape [N, {dims}], not {list(x.shape)}")
    chunks = list(_batches(compiled, x))
    states = [compiled.with_input(chunk) for _, _, chunk in chunks]
    measured, link = [], []
    if backend == "golden":
        results = []
        for state in states:
            result = golden_run(state)
            results.append((result.error, result.err_pc, state.act))
    elif backend == "sim":
        from sim.rtlsim import run_many_on_rtl
        if progress is not None:
            print(f"  RTL ({simulator or 'verilator'}): {len(states)} run(s) of "
                  f"{compiled.predicted_cycles} cycles each", file=progress, flush=True)
        rtl = run_many_on_rtl(states, simulator=simulator, progress=progress)
        results = [(r.error, r.err_pc, r.act) for r in rtl]
        measured = [r.cycles for r in rtl]
    else:
        if board is None:
            raise RuntimeFailure("the board backend needs a board connection (--board, --port)")
        results = []
        for state in states:
            done = board.run(state, outputs=compiled.output_rows)
            r = done.result
            results.append((r.error, r.err_pc, r.act))
            measured.append(r.cycles)
            link.append(dict(load_s=done.load_s, run_s=done.run_s, readback_s=done.readback_s,
                             loaded_rows=done.loaded_rows))
    outputs = []
    for (lo, hi, _), (error, err_pc, act) in zip(chunks, results, strict=True):
        if error != Error.NONE:
            raise RuntimeFailure(f"the core stopped with error {error.name} at instruction "
                                 f"{err_pc}")
        outputs.append(compiled.read_output(act)[:hi - lo])
    return RunOutput(outputs=np.concatenate(outputs), predicted_cycles=compiled.predicted_cycles,
                     measured_cycles=measured, runs=len(chunks), backend=backend, link=link)
