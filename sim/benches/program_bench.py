"""cocotb test that runs program images on the core, one after the other, and saves what the
core holds after each.

Used by :func:`sim.rtlsim.run_on_rtl` (the simulation backend of the runtime and the
benchmarks). Environment: LOCKSTEP_CONFIG; LOCKSTEP_RUNS, the number of runs; for run i,
LOCKSTEP_STATE_IN_i (an .npz written by ``rtlsim.save_state``) and LOCKSTEP_STATE_OUT_i (where
to write the result); LOCKSTEP_READBACK (comma-separated SRAMs to read back, default
"act,acc"); LOCKSTEP_PROGRESS, a file that gets one line per finished run.
"""

import os

import cocotb
import numpy as np

from rtl.hostmap import Reg

from .coretb import CoreTB, config_from_env


@cocotb.test()
async def run_programs(dut):
    from sim.rtlsim import load_state
    cfg = config_from_env()
    tb = CoreTB(dut, cfg)
    await tb.reset()
    runs = int(os.environ.get("LOCKSTEP_RUNS", "1"))
    progress = os.environ.get("LOCKSTEP_PROGRESS")
    for i in range(runs):
        state = load_state(cfg, os.environ[f"LOCKSTEP_STATE_IN_{i}"])
        await tb.write_state(state)
        error = await tb.start_and_wait(
            timeout_cycles=int(os.environ.get("LOCKSTEP_TIMEOUT", "10000000")))
        out = {"error": error, "run_seconds": tb.last_run_seconds}
        for reg in (Reg.CYCLES, Reg.MAC_CYCLES, Reg.INSTRET, Reg.ERR_PC):
            out[reg.name.lower()] = await tb.read_reg(reg)
        for name in os.environ.get("LOCKSTEP_READBACK", "act,acc").split(","):
            if name:
                out[name] = await tb.read_sram(name)
                # What the host reads back is what the core holds: keep the mirror exact.
                getattr(tb.mirror, name)[:] = out[name]
        np.savez(os.environ[f"LOCKSTEP_STATE_OUT_{i}"], **out)
        if progress:
            with open(progress, "a") as f:
                f.write(f"{i + 1}/{runs} {out['cycles']}\n")
