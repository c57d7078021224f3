# amaranth: UnusedElaboratable=no
"""The vector unit: its interface, its parameter checks, and the cocotb bench on both simulators."""

import os

import pytest
from amaranth import Module, signed, unsigned
from amaranth.hdl import Const
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.isa import VEC_PIPELINE_DEPTH
from rtl.vector import LATENCY, VectorUnit
from sim.runner import SIMULATORS, SimulationFailed, run_cocotb

SEED = int(os.environ.get("LOCKSTEP_SEED", "20261128"))
TAG_WIDTH = 16


class ConstFreeTop(wiring.Component):
    """``inner`` with every port member that is a constant left out, so that it converts.

    Amaranth 0.5.10's ``verilog.convert`` passes a component's ``Const`` members (the ``ready``
    of an ``always_ready`` stream) on as ports and fails ("Only signals and IO ports may be added
    as ports, not (const 1'd1)"; amaranth-lang/amaranth#1574, open). This top re-exports the other
    ports under the same flattened names (``i__valid``, ``i__payload``, ...), so the Verilog
    module looks as the component's own would.
    """

    def __init__(self, inner):
        self._inner = inner
        self._ports = [("__".join(map(str, path)), member, value)
                       for path, member, value in inner.signature.flatten(inner)
                       if not isinstance(value, Const)]
        super().__init__({name: (In if member.flow == In else Out)(member.shape)
                          for name, member, _ in self._ports})

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = self._inner
        for name, member, value in self._ports:
            outer = getattr(self, name)
            m.d.comb += value.eq(outer) if member.flow == In else outer.eq(value)
        return m


@pytest.mark.parametrize("lanes", (1, 4))
@pytest.mark.parametrize("simulator", SIMULATORS)
def test_vector_unit(simulator, lanes):
    try:
        run_cocotb(lambda: ConstFreeTop(VectorUnit(lanes, TAG_WIDTH)), key=f"vector-w{lanes}",
                   test_module="sim.benches.vector_bench", toplevel="vector",
                   simulator=simulator, extra_env={"LOCKSTEP_LANES": lanes, "LOCKSTEP_SEED": SEED})
    except (SimulationFailed, SystemExit) as exc:
        # Under pytest cocotb's runner leaves by sys.exit() when a cocotb test fails.
        raise AssertionError(f"vector unit, {lanes} lane(s), on {simulator}: cocotb tests "
                             f"failed with LOCKSTEP_SEED={SEED} (rerun with it set): {exc}"
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
    assert LATENCY == VEC_PIPELINE_DEPTH - 1 == 4


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
