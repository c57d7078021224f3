"""The weight SRAM (rtl/wgtmem.py) on its own, as block RAM and as the UP5K's SPRAMs (Yosys'
simulation model), in every banking the part allows, on both simulators."""

import pytest

from rtl.config import ConfigError, CoreConfig
from rtl.wgtmem import WeightMemory
from sim.runner import run_cocotb


@pytest.mark.parametrize("lanes, depth, spram", [
    (2, 16384, True),      # the iCEBreaker's: one SPRAM
    (4, 32768, True),      # two SPRAMs side by side, two deep: all four
    (8, 16384, True),      # four side by side
    (4, 512, False),       # block RAM
])
def test_weight_memory(lanes, depth, spram, simulator, seed):
    run_cocotb(lambda: WeightMemory(lanes, depth, spram=spram),
               key=f"wgtmem-l{lanes}-d{depth}-{'spram' if spram else 'bram'}",
               test_module="sim.benches.wgtmem_bench", toplevel="wgtmem", simulator=simulator,
               extra_env={"LOCKSTEP_LANES": lanes, "LOCKSTEP_DEPTH": depth,
                          "LOCKSTEP_SEED": seed})


@pytest.mark.parametrize("cols, depth, message", [
    (1, 16384, "a multiple of 16 bits"),
    (2, 8192, "16384 deep at a time"),
    (8, 2 * 16384, "needs 8 SPRAMs, the iCE40UP5K has 4"),
])
def test_shapes_spram_cannot_make_are_refused(cols, depth, message):
    with pytest.raises(ConfigError, match=message):
        CoreConfig(rows=8, cols=cols, wgt_depth=depth, wgt_spram=True)
