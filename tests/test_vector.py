# amaranth: UnusedElaboratable=no
"""The vector unit: its interface, its parameter checks, and the cocotb bench on both simulators."""

import pytest
from amaranth import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.config import CoreConfig
from rtl.isa import vec_pipeline_depth, vec_unit_latency
from rtl.vector import VectorUnit
from sim.runner import SIMULATORS, SimulationFailed, run_cocotb

TAG_WIDTH = 16


@pytest.mark.parametrize("lanes, mult_cycles, multiplier", [
    (1, 1, "generic"), (4, 1, "generic"), (3, 4, "generic"), (2, 32, "generic"),
    (2, 1, "mult18x18d"), (3, 1, "lut"),
])
def test_vector_unit(simulator, lanes, mult_cycles, multiplier, seed):
    """The cocotb bench; ``simulator`` (both, never skipped: a missing one raises
    SimulatorMissing) and ``seed`` (--seed, LOCKSTEP_SEED or fixed) come from conftest.py.
    K = 4 has 8-bit multiplier digits (seven shifted terms and the signed top one), K = 32
    one-bit digits; "mult18x18d" is the ECP5 build's DSP instances, simulated with
    sim/models/ecp5_mult18x18d.v; "lut" the products as adder trees in logic."""
    assert simulator in SIMULATORS
    lut = multiplier == "lut"
    try:
        run_cocotb(lambda: VectorUnit(lanes, TAG_WIDTH, mult_cycles=mult_cycles,
                                      multiplier="generic" if lut else multiplier, lut=lut),
                   key=f"vector-w{lanes}-k{mult_cycles}-{multiplier}",
                   test_module="sim.benches.vector_bench", toplevel="vector",
                   simulator=simulator,
                   extra_env={"LOCKSTEP_LANES": lanes, "LOCKSTEP_MULT_CYCLES": mult_cycles,
                              "LOCKSTEP_VEC_LUT": int(lut), "LOCKSTEP_SEED": seed})
    except SimulationFailed as exc:
        raise AssertionError(f"vector unit, {lanes} lane(s), {mult_cycles} cycle(s) per multiply, "
                             f"on {simulator}: cocotb tests failed with seed {seed} "
                             f"(rerun with --seed {seed}): {exc}") from exc


@pytest.mark.parametrize("mult_cycles, lut, latency, depth", [
    (1, False, 6, 9), (4, False, 8, 10), (32, False, 36, 38), (1, True, 9, 12)])
def test_latency_is_the_isa_one(mult_cycles, lut, latency, depth):
    """The unit's latency, and the core's from accumulator read to activation write landing:
    a DSP unit's input is registered after the SRAM, a serial unit's is not, and the write is
    registered to be placed at any byte."""
    assert VectorUnit(2, 4, mult_cycles=mult_cycles, lut=lut).latency == latency
    assert vec_unit_latency(mult_cycles, lut) == latency
    cfg = CoreConfig(rows=4, cols=4, vec_mult_cycles=mult_cycles, vec_lut=lut)
    assert vec_pipeline_depth(cfg) == depth


def test_interface_is_exactly_the_documented_one():
    lanes, tag_width = 3, 7
    unit = VectorUnit(lanes, tag_width)
    i_layout = data.StructLayout({
        "acc": data.ArrayLayout(signed(32), lanes),
        "bias": data.ArrayLayout(signed(32), lanes),
        "mult": data.ArrayLayout(signed(32), lanes),
        "shift": data.ArrayLayout(unsigned(5), lanes),
        "zero_point": signed(8), "clamp_min": signed(8), "clamp_max": signed(8),
        "tag": unsigned(tag_width)})
    o_layout = data.StructLayout({"data": data.ArrayLayout(signed(8), lanes),
                                  "tag": unsigned(tag_width)})
    assert unit.signature.members == wiring.Signature({
        "i": In(stream.Signature(i_layout, always_ready=True)),
        "o": Out(stream.Signature(o_layout, always_ready=True)),
    }).members


def test_connects_to_an_always_ready_stream():
    # The core hands the unit streams of the same signature: wiring.connect must accept them.
    unit = VectorUnit(2, 4)
    m = Module()
    m.submodules.unit = unit
    src = unit.signature.members["i"].signature.flip().create()
    dst = unit.signature.members["o"].signature.flip().create()
    wiring.connect(m, src, unit.i)
    wiring.connect(m, unit.o, dst)


@pytest.mark.parametrize("kwargs, error, text", [
    ({"lanes": 0, "tag_width": 16}, ValueError, "lanes must be a positive integer, not 0"),
    ({"lanes": -2, "tag_width": 16}, ValueError, "lanes must be a positive integer, not -2"),
    ({"lanes": 2.0, "tag_width": 16}, TypeError, "lanes must be a positive integer, not 2.0"),
    ({"lanes": True, "tag_width": 16}, TypeError, "lanes must be a positive integer, not True"),
    ({"lanes": 4, "tag_width": 0}, ValueError, "tag_width must be a positive integer, not 0"),
    ({"lanes": 4, "tag_width": "8"}, TypeError,
     "tag_width must be a positive integer, not '8'"),
    ({"lanes": 4, "tag_width": 8, "mult_cycles": 3}, ValueError,
     "mult_cycles must be one of 1, 4, 8, 16, 32, not 3"),
    ({"lanes": 4, "tag_width": 8, "mult_cycles": 2}, ValueError, "not 2"),
    ({"lanes": 4, "tag_width": 8, "mult_cycles": 64}, ValueError, "mult_cycles must be one of"),
    ({"lanes": 4, "tag_width": 8, "mult_cycles": True}, ValueError, "not True"),
    ({"lanes": 4, "tag_width": 8, "multiplier": "sb_mac16"}, ValueError,
     "multiplier must be one of auto, generic, mult18x18d, not 'sb_mac16'"),
])
def test_rejects_bad_parameters(kwargs, error, text):
    with pytest.raises(error, match=text):
        VectorUnit(**kwargs)
