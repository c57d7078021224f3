"""cocotb test that runs one program image on the core and saves what the core holds afterwards.

Used by :func:`sim.rtlsim.run_on_rtl` (the simulation backend of the runtime and the
benchmarks). Environment: LOCKSTEP_CONFIG, LOCKSTEP_STATE_IN (an .npz written by
``rtlsim.save_state``), LOCKSTEP_STATE_OUT (where to write the result), LOCKSTEP_READBACK
(comma-separated SRAMs to read back, default "act,acc").
"""

import os

import cocotb
import numpy as np

from rtl.hostmap import Reg

from .coretb import CoreTB, config_from_env


@cocotb.test()
async def run_program(dut):
    from sim.rtlsim import load_state
    cfg = config_from_env()
    state = load_state(cfg, os.environ["LOCKSTEP_STATE_IN"])
    tb = CoreTB(dut, cfg)
    await tb.reset()
    await tb.write_state(state)
    error = await tb.start_and_wait(timeout_cycles=int(os.environ.get("LOCKSTEP_TIMEOUT",
                                                                      "10000000")))
    out = {"error": error}
    for reg in (Reg.CYCLES, Reg.MAC_CYCLES, Reg.INSTRET, Reg.ERR_PC):
        out[reg.name.lower()] = await tb.read_reg(reg)
    for name in os.environ.get("LOCKSTEP_READBACK", "act,acc").split(","):
        if name:
            out[name] = await tb.read_sram(name)
    np.savez(os.environ["LOCKSTEP_STATE_OUT"], **out)
