# amaranth: UnusedElaboratable=no
"""The vector unit: its interface, its parameter checks, and the cocotb bench on both simulators."""

import pytest
from amaranth import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.isa import VEC_PIPELINE_DEPTH
from rtl.vector import LATENCY, VectorUnit
from sim.runner import SIMULATORS, SimulationFailed, run_cocotb

TAG_WIDTH = 16


@pytest.mark.parametrize("lanes", (1, 4))
def test_vector_unit(simulator, lanes, seed):
    """The cocotb bench; ``simulator`` (both, never skipped: a missing one raises
    SimulatorMissing) and ``seed`` (--seed, LOCKSTEP_SEED or fixed) come from conftest.py."""
    assert simulator in SIMULATORS
    try:
        run_cocotb(lambda: VectorUnit(lanes, TAG_WIDTH), key=f"vector-w{lanes}",
                   test_module="sim.benches.vector_bench", toplevel="vector",
                   simulator=simulator, extra_env={"LOCKSTEP_LANES": lanes, "LOCKSTEP_SEED": seed})
    except SimulationFailed as exc:
        raise AssertionError(f"vector unit, {lanes} lane(s), on {simulator}: cocotb tests "
                             f"failed with seed {seed} (rerun with --seed {seed}): {exc}"
                             ) from exc


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
    assert LATENCY == VEC_PIPELINE_DEPTH - 2 == 5


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
])
def test_rejects_bad_parameters(kwargs, error, text):
    with pytest.raises(error, match=text):
        VectorUnit(**kwargs)
