"""A core behind its UART host link (LinkedCore) on Verilator and Icarus, driven through the
serial pins by the host-side client (lockstep/hostlink.py): PING, every SRAM region written and
read back, random GEMM programs and a compiled network bit-exact with the golden model, and
bad frames (corrupted, truncated, unknown command, oversize length, bad address) refused
without changing anything.
"""

import json

from rtl.config import CoreConfig
from rtl.hostlink import LinkedCore
from sim.runner import run_cocotb

# Shallow SRAMs and the smallest divisor keep the serial traffic short: every word costs
# 10 bit times of 4 cycles, and Icarus simulates this design at only ~30-50k cycles/s.
CFG = CoreConfig(rows=4, cols=4, act_depth=32, wgt_depth=32, acc_depth=16, qparam_depth=4,
                 prog_depth=16)
DIVISOR = 4          # clock cycles per bit: the least the UART accepts
TIMEOUT_BITS = 64    # the link's mid-frame timeout


def test_linked_core(simulator, seed):
    run_cocotb(
        lambda: LinkedCore(CFG, DIVISOR, TIMEOUT_BITS),
        key=f"linked-{CFG.name}-d{DIVISOR}-t{TIMEOUT_BITS}", toplevel="linked_core",
        test_module="sim.benches.hostlink_bench", simulator=simulator,
        extra_env={"LOCKSTEP_CONFIG": json.dumps(CFG.to_dict()), "LOCKSTEP_SEED": seed,
                   "LOCKSTEP_DIVISOR": DIVISOR, "LOCKSTEP_TIMEOUT_BITS": TIMEOUT_BITS,
                   "LOCKSTEP_PROGRAMS": 2})
