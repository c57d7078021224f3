# amaranth: UnusedElaboratable=no
"""The systolic array: its cocotb bench (sim/benches/array_bench.py) on Verilator and Icarus,
its interface and its constructor's checks.

Rerun with another seed with --seed N or LOCKSTEP_SEED=N; a failure names the seed it ran with.
"""

import pytest

from rtl.array import SystolicArray
from sim.runner import run_cocotb

SHAPES = [(1, 1), (4, 4), (2, 8), (8, 4)]


@pytest.mark.parametrize("rows, cols", SHAPES, ids=[f"r{r}c{c}" for r, c in SHAPES])
def test_array_bench(simulator, rows, cols, seed):
    """All of array_bench's tests. ``simulator`` and ``seed`` come from tests/conftest.py: both
    simulators, and --seed, else LOCKSTEP_SEED, else a fixed seed per test."""
    run_cocotb(lambda: SystolicArray(rows, cols), key=f"array-r{rows}c{cols}",
               test_module="sim.benches.array_bench", toplevel="array", simulator=simulator,
               extra_env={"LOCKSTEP_ROWS": rows, "LOCKSTEP_COLS": cols, "LOCKSTEP_SEED": seed})


PAIRED_SHAPES = [(2, 4), (3, 5)]


@pytest.mark.parametrize("rows, cols", PAIRED_SHAPES, ids=[f"r{r}c{c}" for r, c in PAIRED_SHAPES])
def test_array_bench_on_sb_mac16(simulator, rows, cols, seed):
    """The same bench with the iCE40 build's multipliers: one SB_MAC16 per two PEs of a row
    (and an odd column's PE on its own), simulated with Yosys' model of the primitive."""
    run_cocotb(lambda: SystolicArray(rows, cols, multiplier="sb_mac16"),
               key=f"array-sb_mac16-r{rows}c{cols}", test_module="sim.benches.array_bench",
               toplevel="array", simulator=simulator,
               extra_env={"LOCKSTEP_ROWS": rows, "LOCKSTEP_COLS": cols, "LOCKSTEP_SEED": seed})


@pytest.mark.parametrize("rows, cols", [(1, 1), (3, 5)], ids=["r1c1", "r3c5"])
def test_array_bench_on_mult18x18d(simulator, rows, cols, seed):
    """The same bench with the ECP5 build's multipliers: a MULT18X18D with input registers per
    PE, simulated with sim/models/ecp5_mult18x18d.v."""
    run_cocotb(lambda: SystolicArray(rows, cols, multiplier="mult18x18d"),
               key=f"array-mult18x18d-r{rows}c{cols}", test_module="sim.benches.array_bench",
               toplevel="array", simulator=simulator,
               extra_env={"LOCKSTEP_ROWS": rows, "LOCKSTEP_COLS": cols, "LOCKSTEP_SEED": seed})


DEEP_PE_CASES = [("generic", 3, 4, 4), ("generic", 3, 2, 8), ("mult18x18d", 3, 3, 5),
                 ("sb_mac16", 3, 2, 4), ("generic", 4, 4, 4), ("generic", 5, 4, 4),
                 ("mult18x18d", 4, 3, 5), ("generic", 5, 2, 8), ("mult18x18d", 5, 3, 5),
                 ("sb_mac16", 5, 2, 4)]


@pytest.mark.parametrize("multiplier, stages, rows, cols", DEEP_PE_CASES,
                         ids=[f"{k}-pe{s}-r{r}c{c}" for k, s, r, c in DEEP_PE_CASES])
def test_array_bench_deeper_pes(simulator, multiplier, stages, rows, cols, seed):
    """The same bench with ``pe_stages`` above 2 (the multiplier's operands and product in
    registers of their own): every result ``pe_stages - 2`` cycles later, with each multiplier
    the array can use."""
    run_cocotb(lambda: SystolicArray(rows, cols, multiplier=multiplier, pe_stages=stages),
               key=f"array-{multiplier}-pe{stages}-r{rows}c{cols}",
               test_module="sim.benches.array_bench", toplevel="array", simulator=simulator,
               extra_env={"LOCKSTEP_ROWS": rows, "LOCKSTEP_COLS": cols, "LOCKSTEP_SEED": seed,
                          "LOCKSTEP_PE_STAGES": stages})


@pytest.mark.parametrize("stages", [3, 4, 5])
def test_each_pe_stage_adds_a_cycle(stages):
    assert SystolicArray(4, 8, pe_stages=stages).latency == 4 + 8 - 1 + stages


def test_rejects_unknown_pe_stages():
    with pytest.raises(ValueError, match=r"pe_stages must be one of \(2, 3, 4, 5\), not 6"):
        SystolicArray(2, 2, pe_stages=6)


def test_auto_multiplier_follows_the_platform():
    """An iCE40 platform (amaranth-boards says family "iCE40") gets SB_MAC16 pairs, an ECP5 a
    MULT18X18D per PE, others the generic multipliers; asked for, generic ones on an ECP5
    too."""
    from amaranth.hdl import Fragment

    class Platform:
        def __init__(self, family):
            self.family = family

    def instance_count(family, multiplier="auto"):
        fragment = Fragment.get(SystolicArray(2, 4, multiplier), Platform(family))
        return sum(type(sub).__name__ == "Instance" for sub, _, _ in fragment.subfragments)

    assert instance_count("iCE40") == 4
    assert instance_count("ecp5") == 8
    assert instance_count("gowin") == 0
    assert instance_count("ecp5", "generic") == 0


def test_rejects_unknown_multiplier():
    with pytest.raises(ValueError,
                       match="multiplier must be one of auto, generic, sb_mac16, mult18x18d"):
        SystolicArray(2, 2, multiplier="dsp48")


@pytest.mark.parametrize("value", [0, -1])
def test_rejects_non_positive(value):
    with pytest.raises(ValueError, match=f"rows must be a positive integer, not {value}"):
        SystolicArray(value, 4)
    with pytest.raises(ValueError, match=f"cols must be a positive integer, not {value}"):
        SystolicArray(4, value)


@pytest.mark.parametrize("value", [2.0, "4", True, None])
def test_rejects_non_int(value):
    with pytest.raises(TypeError, match=r"rows must be an integer, not "):
        SystolicArray(value, 4)
    with pytest.raises(TypeError, match=r"cols must be an integer, not "):
        SystolicArray(4, value)


def test_interface():
    """The exact members the core connects to."""
    from amaranth.hdl import signed, unsigned
    from amaranth.lib import data, stream
    from amaranth.lib.wiring import In, Out

    array = SystolicArray(8, 4)
    a = data.StructLayout({"data": data.ArrayLayout(signed(8), 8), "swap": 1})
    w = data.StructLayout({"row": data.ArrayLayout(signed(8), 4), "sel": unsigned(3)})
    y = data.ArrayLayout(signed(32), 4)
    assert dict(array.signature.members) == {
        "a": In(stream.Signature(a, always_ready=True)),
        "w": In(stream.Signature(w, always_ready=True)),
        "clear": In(1),
        "y": Out(stream.Signature(y, always_ready=True)),
    }
    assert SystolicArray(1, 1).w.payload.sel.shape() == unsigned(1)
