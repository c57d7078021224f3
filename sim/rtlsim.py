"""Run a program image on the RTL core in simulation, from plain Python (no pytest needed).

:func:`run_on_rtl` writes the image through the host port, starts the core, waits for it and
reads back the SRAMs a program writes and the counters. The simulator build is cached per
configuration (sim/runner.py), so only the first run of a configuration pays for Verilator.
"""

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtl.isa import Error

from .model import CoreState
from .runner import run_cocotb

__all__ = ["RtlResult", "run_on_rtl", "save_state", "load_state"]

_IMAGES = ("prog", "act", "wgt", "acc", "bias", "mult", "shift")


def save_state(state, path):
    np.savez(path, **{name: getattr(state, name) for name in _IMAGES})


def load_state(cfg, path):
    with np.load(path) as data:
        return CoreState(cfg, **{name: data[name] for name in _IMAGES})


@dataclass
class RtlResult:
    error: Error
    cycles: int
    mac_cycles: int
    instret: int
    err_pc: int
    act: np.ndarray
    acc: np.ndarray


def run_on_rtl(state, simulator=None, waves=None):
    """Run ``state`` (a :class:`CoreState` with its program loaded) on the RTL core."""
    from rtl.core import LockstepCore
    cfg = state.cfg
    with tempfile.TemporaryDirectory(prefix="lockstep-") as tmp:
        state_in, state_out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        save_state(state, state_in)
        run_cocotb(lambda: LockstepCore(cfg), key=f"core-{cfg.name}", toplevel="lockstep_core",
                   test_module="sim.benches.program_bench", simulator=simulator, waves=waves,
                   extra_env={"LOCKSTEP_CONFIG": json.dumps(cfg.to_dict()),
                              "LOCKSTEP_STATE_IN": state_in, "LOCKSTEP_STATE_OUT": state_out})
        with np.load(state_out) as out:
            return RtlResult(error=Error(int(out["error"])), cycles=int(out["cycles"]),
                             mac_cycles=int(out["mac_cycles"]), instret=int(out["instret"]),
                             err_pc=int(out["err_pc"]), act=out["act"].copy(),
                             acc=out["acc"].copy())
