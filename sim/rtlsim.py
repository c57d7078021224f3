"""Run program images on the RTL core in simulation, from plain Python (no pytest needed).

:func:`run_on_rtl` writes each image through the host port (only the rows that differ from the
previous one), starts the core, waits for it and reads back the SRAMs a program writes and the
counters, all in one simulator process. The simulator build is cached per configuration
(sim/runner.py), so only the first run of a configuration pays for Verilator.
"""

import json
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtl.isa import Error

from .model import CoreState
from .runner import run_cocotb

__all__ = ["RtlResult", "run_on_rtl", "run_many_on_rtl", "run_core_bench", "save_state",
           "load_state"]

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
    #: Wall time the simulator spent on the run itself (START to idle), without host transfers.
    run_seconds: float = 0.0


def _follow(path, stop, progress, runs):
    """Print the simulator's progress lines as they appear, and those that appeared between the
    last look and ``stop``."""
    seen = 0
    while True:
        stopping = stop.wait(1.0)
        try:
            text = Path(path).read_text()
        except OSError:
            text = ""
        lines = text[:text.rfind("\n") + 1].splitlines()   # whole lines only
        for line in lines[seen:]:
            done, cycles = line.split()
            print(f"  RTL: run {done} finished ({cycles} cycles)", file=progress, flush=True)
        seen = len(lines)
        if stopping:
            return


def run_many_on_rtl(states, simulator=None, waves=None, progress=None):
    """Run each of ``states`` (CoreStates of one configuration, programs loaded) in turn on one
    simulated core. Returns one :class:`RtlResult` per state."""
    from rtl.core import LockstepCore
    states = list(states)
    cfg = states[0].cfg
    if any(s.cfg != cfg for s in states):
        raise ValueError("all states must have the same configuration")
    with tempfile.TemporaryDirectory(prefix="lockstep-") as tmp:
        env = {"LOCKSTEP_CONFIG": json.dumps(cfg.to_dict()), "LOCKSTEP_RUNS": len(states),
               "LOCKSTEP_PROGRESS": Path(tmp) / "progress"}
        for i, state in enumerate(states):
            save_state(state, Path(tmp) / f"in{i}.npz")
            env[f"LOCKSTEP_STATE_IN_{i}"] = Path(tmp) / f"in{i}.npz"
            env[f"LOCKSTEP_STATE_OUT_{i}"] = Path(tmp) / f"out{i}.npz"
        stop = threading.Event()
        follower = None
        if progress is not None:
            follower = threading.Thread(target=_follow, daemon=True,
                                        args=(env["LOCKSTEP_PROGRESS"], stop, progress,
                                              len(states)))
            follower.start()
        try:
            run_cocotb(lambda: LockstepCore(cfg), key=f"core-{cfg.name}",
                       toplevel="lockstep_core", test_module="sim.benches.program_bench",
                       simulator=simulator, waves=waves, extra_env=env)
        finally:
            stop.set()
            if follower is not None:
                follower.join()
        results = []
        for i in range(len(states)):
            with np.load(env[f"LOCKSTEP_STATE_OUT_{i}"]) as out:
                results.append(RtlResult(
                    error=Error(int(out["error"])), cycles=int(out["cycles"]),
                    mac_cycles=int(out["mac_cycles"]), instret=int(out["instret"]),
                    err_pc=int(out["err_pc"]), act=out["act"].copy(), acc=out["acc"].copy(),
                    run_seconds=float(out["run_seconds"])))
        return results


def run_on_rtl(state, simulator=None, waves=None, progress=None):
    """Run one ``state`` (a :class:`CoreState` with its program loaded) on the RTL core."""
    return run_many_on_rtl([state], simulator=simulator, waves=waves, progress=progress)[0]


def run_core_bench(cfg, simulator, seed, testcase, **env):
    """Run cocotb test ``testcase`` of sim/benches/core_bench.py (random_programs,
    random_streams, bad_programs, hazards, host_port, weights_cleared_at_start) on the core
    ``cfg`` with ``seed``; ``env``: the bench's settings (LOCKSTEP_PROGRAMS, LOCKSTEP_REPORT).
    Raises sim.runner.SimulationFailed if it fails."""
    from rtl.core import LockstepCore
    run_cocotb(
        lambda: LockstepCore(cfg), key=f"core-{cfg.name}", toplevel="lockstep_core",
        test_module="sim.benches.core_bench", testcase=testcase, simulator=simulator,
        extra_env={"LOCKSTEP_CONFIG": json.dumps(cfg.to_dict()), "LOCKSTEP_SEED": seed, **env})
