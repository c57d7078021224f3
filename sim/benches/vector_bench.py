"""cocotb testbench for :class:`rtl.vector.VectorUnit`.

Environment: ``LOCKSTEP_LANES`` (W), ``LOCKSTEP_MULT_CYCLES`` (K) and ``LOCKSTEP_VEC_LUT`` (1: the
products in logic), as the design was built, and
``LOCKSTEP_SEED``. The tag width is read off the design's ports. With K > 1 the driver keeps
valid inputs K cycles apart, as the unit requires. The structure is the usual one: a driver puts
vectors (or idle cycles) on ``i``, a monitor records every valid ``o`` with its cycle number,
the model is :func:`sim.arith.requantize`, and a checker requires each result bit-exact, with
its tag, exactly :func:`rtl.isa.vec_unit_latency` cycles after its input, and no other valid output.
"""

import itertools
import os
import random

import cocotb
import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from rtl.isa import vec_unit_latency
from rtl.vector import input_layout, output_layout
from sim.arith import INT32_MAX, INT32_MIN, requantize

LANES = int(os.environ.get("LOCKSTEP_LANES", "4"))
MULT_CYCLES = int(os.environ.get("LOCKSTEP_MULT_CYCLES", "1"))
LUT = os.environ.get("LOCKSTEP_VEC_LUT", "0") == "1"
LATENCY = vec_unit_latency(MULT_CYCLES, LUT)
SEED = int(os.environ.get("LOCKSTEP_SEED", "1"))
PERIOD_NS = 10
MAX_REPORTED = 8   # mismatches listed in a failure message; the count is always given

EXTREME_WORDS = (INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX, 1 << 30)
EXTREME_SHIFTS = (0, 1, 30, 31)
EXTREME_ZERO_POINTS = (-128, 127)


# -- packing, driven by the Amaranth layouts -----------------------------------------------------

def _width(shape):
    return Shape.cast(shape).width


def pack(shape, value):
    """Flatten ``value`` (a dict for a struct, a sequence for an array, an int for a plain shape)
    into the integer whose bits Amaranth gives the port: fields and elements LSB first."""
    if isinstance(shape, data.StructLayout):
        unknown = set(value) - {name for name, _ in shape}
        assert not unknown, f"fields {sorted(unknown)} are not in {shape!r}"
        return sum(pack(field.shape, value[name]) << field.offset for name, field in shape)
    if isinstance(shape, data.ArrayLayout):
        assert len(value) == shape.length, f"{len(value)} elements for {shape!r}"
        step = _width(shape.elem_shape)
        return sum(pack(shape.elem_shape, v) << (k * step) for k, v in enumerate(value))
    shape = Shape.cast(shape)
    lo, hi = ((-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1) if shape.signed
              else (0, (1 << shape.width) - 1))
    value = int(value)
    assert lo <= value <= hi, f"{value} does not fit {shape!r}"
    return value & ((1 << shape.width) - 1)


def unpack(shape, bits):
    """The inverse of :func:`pack`: a dict, a list or an int."""
    if isinstance(shape, data.StructLayout):
        return {name: unpack(field.shape, bits >> field.offset) for name, field in shape}
    if isinstance(shape, data.ArrayLayout):
        step = _width(shape.elem_shape)
        return [unpack(shape.elem_shape, bits >> (k * step)) for k in range(shape.length)]
    shape = Shape.cast(shape)
    value = bits & ((1 << shape.width) - 1)
    if shape.signed and value >> (shape.width - 1):
        value -= 1 << shape.width
    return value


# -- model ---------------------------------------------------------------------------------------

def model(item):
    """The requantised data of one input vector, as a list of ints."""
    out = requantize(np.array(item["acc"]), np.array(item["bias"]), np.array(item["mult"]),
                     np.array(item["shift"]), item["zero_point"], item["clamp_min"],
                     item["clamp_max"])
    return [int(v) for v in out]


# -- harness -------------------------------------------------------------------------------------

class Bench:
    """Driver, monitor and checker around one DUT. Each test gets its own random generator,
    seeded by ``LOCKSTEP_SEED`` and the test's name, so a failing test replays alone."""

    def __init__(self, dut, test):
        self.dut = dut
        self.test = test
        self.rng = random.Random(f"{SEED}:{test}")
        self.tag_width = len(dut.o__payload) - 8 * LANES
        self.i_layout = input_layout(LANES, self.tag_width)
        self.o_layout = output_layout(LANES, self.tag_width)
        self.sent = []   # (cycle, item) of every vector driven with i.valid = 1
        self.seen = []   # (cycle, data, tag) of every cycle with o.valid = 1
        self.bad_valid = []   # cycles in which o.valid was neither 0 nor 1
        self.resets = []   # cycles in which rst was driven high after start()
        self._check_ports()

    def _fail(self, message):
        raise AssertionError(f"[{self.test}, LOCKSTEP_SEED={SEED}, lanes={LANES}, "
                             f"mult_cycles={MULT_CYCLES}] {message}")

    def _check_ports(self):
        if self.tag_width < 1:
            self._fail(f"o__payload has {len(self.dut.o__payload)} bits, too few for "
                       f"{LANES} lanes: is LOCKSTEP_LANES right?")
        if len(self.dut.i__payload) != self.i_layout.size:
            self._fail(f"i__payload has {len(self.dut.i__payload)} bits, the layout for "
                       f"{LANES} lanes and a {self.tag_width}-bit tag has {self.i_layout.size}")

    @staticmethod
    def cycle():
        """The number of the clock cycle now: cycle k starts at the k-th rising edge."""
        return round(get_sim_time(unit="ns") / PERIOD_NS)

    async def start(self):
        dut = self.dut
        dut._log.info("%s: LOCKSTEP_SEED=%d, lanes=%d, mult_cycles=%d, tag width %d",
                      self.test, SEED, LANES, MULT_CYCLES, self.tag_width)
        Clock(dut.clk, PERIOD_NS, unit="ns").start()
        dut.rst.value = 1
        dut.i__valid.value = 0
        dut.i__payload.value = 0
        for _ in range(2):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        cocotb.start_soon(self._monitor())

    async def _monitor(self):
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            valid = str(dut.o__valid.value)
            if valid == "1":
                out = unpack(self.o_layout, dut.o__payload.value.to_unsigned())
                self.seen.append((self.cycle(), out["data"], out["tag"]))
            elif valid != "0":
                self.bad_valid.append(self.cycle())

    async def drive(self, items, resets=()):
        """Drive ``items`` one per cycle; None is an idle cycle, in which the payload gets random
        bits that must be ignored. ``resets`` are indices of items in whose cycle rst is high.
        With K > 1, K - 1 idle cycles follow each item (counted in the indices)."""
        dut = self.dut
        items = spaced(items)
        for index, item in enumerate(items):
            await RisingEdge(dut.clk)
            dut.rst.value = int(index in resets)
            if index in resets:
                self.resets.append(self.cycle())
            if item is None:
                dut.i__valid.value = 0
                dut.i__payload.value = self.rng.getrandbits(self.i_layout.size)
            else:
                dut.i__valid.value = 1
                dut.i__payload.value = pack(self.i_layout, item)
                self.sent.append((self.cycle(), item))
        await RisingEdge(dut.clk)
        dut.i__valid.value = 0
        dut.rst.value = 0
        for _ in range(LATENCY + 3):   # let the pipeline drain, and see that nothing else comes
            await RisingEdge(dut.clk)
        await ReadOnly()

    def dropped_by_reset(self, cycle):
        """Whether an input of ``cycle`` is flushed: rst in any cycle from its own (the reset
        wins over the load) to the last before it reaches ``o``."""
        return any(cycle <= r < cycle + LATENCY for r in self.resets)

    def check(self):
        expected = {cycle + LATENCY: item for cycle, item in self.sent
                    if not self.dropped_by_reset(cycle)}
        errors = [f"o.valid not 0/1 in cycle {c}" for c in self.bad_valid]
        seen_cycles = set()
        for cycle, got, tag in self.seen:
            seen_cycles.add(cycle)
            item = expected.get(cycle)
            if item is None:
                errors.append(f"spurious o.valid in cycle {cycle} (data {got}, tag {tag})")
                continue
            want = model(item)
            if got != want or tag != item["tag"]:
                errors.append(f"cycle {cycle}: got data {got} tag {tag}, expected {want} tag "
                              f"{item['tag']} for the input of cycle {cycle - LATENCY}: {item}")
        for cycle in sorted(set(expected) - seen_cycles):
            errors.append(f"no o.valid in cycle {cycle} for the input of cycle "
                          f"{cycle - LATENCY}: {expected[cycle]}")
        if errors:
            listed = "\n  ".join(errors[:MAX_REPORTED])
            self._fail(f"{len(errors)} error(s) over {len(self.sent)} inputs:\n  {listed}")
        self.dut._log.info("%s: %d results checked, bit-exact and on time",
                           self.test, len(expected))


# -- stimulus ------------------------------------------------------------------------------------

def spaced(items):
    """``items`` with K - 1 idle cycles after each vector: the fastest a K-cycle unit takes."""
    out = []
    for item in items:
        out.append(item)
        if item is not None:
            out.extend([None] * (MULT_CYCLES - 1))
    return out


def random_params(rng, tag_width):
    """The per-vector fields: zero point, clamp range (ordered) and tag."""
    zero_point = rng.randint(-128, 127)
    kind = rng.random()
    if kind < 0.5:
        clamp = (-128, 127)
    elif kind < 0.75:
        clamp = (zero_point, 127)   # ReLU
    else:
        clamp = tuple(sorted((rng.randint(-128, 127), rng.randint(-128, 127))))
    return {"zero_point": zero_point, "clamp_min": clamp[0], "clamp_max": clamp[1],
            "tag": rng.getrandbits(tag_width)}


def random_lane(rng):
    """(acc, bias, mult, shift) for one lane: a quarter uniformly random over the whole range
    (mostly clamped), the rest with results inside int8, where an error of one in the last bit
    of any stage shows."""
    kind = rng.random()
    if kind < 0.25:
        return (rng.randint(INT32_MIN, INT32_MAX), rng.randint(INT32_MIN, INT32_MAX),
                rng.randint(INT32_MIN, INT32_MAX), rng.randint(0, 31))
    if kind < 0.6:
        # Small shifts and any multiplier: |result| <~ |acc + bias| / 2**shift <~ 300, so the
        # SRDHM rounding reaches the output instead of being shifted away.
        shift = rng.randint(0, 4)
        acc = rng.randint(-(240 << shift), 240 << shift)
        bias = rng.randint(-(60 << shift), 60 << shift)
        return acc, bias, rng.randint(INT32_MIN, INT32_MAX), shift
    magnitude = rng.randint(0, 30)
    acc = rng.randint(-(1 << magnitude), 1 << magnitude)
    bias = rng.randint(-(1 << 16), 1 << 16)
    mult = rng.randint(1 << 30, INT32_MAX)
    if rng.random() < 0.1:
        mult = -mult
    # The product is about acc * mult / 2**31 ~ acc / 2: shift that down to a few bits.
    shift = max(0, min(31, magnitude - rng.randint(5, 9)))
    return acc, bias, mult, shift


def vector(lanes, params):
    """An input item from ``W`` (acc, bias, mult, shift) tuples and the per-vector fields."""
    acc, bias, mult, shift = (list(column) for column in zip(*lanes, strict=True))
    return {"acc": acc, "bias": bias, "mult": mult, "shift": shift, **params}


def random_vector(rng, tag_width):
    return vector([random_lane(rng) for _ in range(LANES)], random_params(rng, tag_width))


def extreme_clamps(zero_point):
    return ((-128, 127), (0, 0), (5, 5), (zero_point, 127))


def tie_lanes():
    """Lanes whose SRDHM result x sits exactly on, or one off, a rounding tie of the shift.

    srdhm(a, INT32_MIN) = -a exactly (for a != INT32_MIN), so acc = -x gives any x;
    srdhm(a, 2**30) = a / 2 for even a is a second route for small x. Biases are split off the
    accumulator with a wrap so that the bias add takes part."""
    lanes = []
    for shift in range(1, 32):
        half = 1 << (shift - 1)
        for k in (1, -1, 3, -3):
            for d in (-1, 0, 1):
                x = k * half + d
                if not INT32_MIN < x <= INT32_MAX:
                    continue
                lanes.append((-x, 0, INT32_MIN, shift))
                bias = (1 << 31) - 7 * shift
                acc = ((-x - bias + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)
                lanes.append((acc, bias, INT32_MIN, shift))
                if abs(x) < 1 << 30:
                    lanes.append((2 * x, 0, 1 << 30, shift))
    return lanes


def chunks(lane_list, rng):
    """Group lanes W at a time, padding the last group with random extreme lanes."""
    for start in range(0, len(lane_list), LANES):
        group = list(lane_list[start:start + LANES])
        while len(group) < LANES:
            group.append((rng.choice(EXTREME_WORDS), rng.choice(EXTREME_WORDS),
                          rng.choice(EXTREME_WORDS), rng.choice(EXTREME_SHIFTS)))
        yield group


# -- tests ---------------------------------------------------------------------------------------

@cocotb.test()
async def test_random_back_to_back(dut):
    """Random vectors as fast as the unit takes them (every cycle, or every K): bit-exact
    results, tags kept, exactly LATENCY cycles on."""
    bench = Bench(dut, "test_random_back_to_back")
    await bench.start()
    items = [random_vector(bench.rng, bench.tag_width) for _ in range(max(150, 600 // MULT_CYCLES))]
    await bench.drive(items)
    bench.check()


@cocotb.test()
async def test_extremes(dut):
    """Every combination of extreme acc/bias/mult/shift under each extreme zero point and clamp
    (covers the bias wrap and the SRDHM saturation), then rounding ties, back to back."""
    bench = Bench(dut, "test_extremes")
    await bench.start()
    rng = bench.rng
    corner = list(itertools.product(EXTREME_WORDS, EXTREME_WORDS, EXTREME_WORDS, EXTREME_SHIFTS))
    # The cases the brief names outright must be in there, whatever the lists above become.
    assert (INT32_MAX, 1, 1, 0) in corner and (INT32_MIN, -1, 1, 0) in corner  # bias add wraps
    assert (INT32_MIN, 0, INT32_MIN, 0) in corner   # SRDHM saturates
    items = []
    for zero_point in EXTREME_ZERO_POINTS:
        for clamp_min, clamp_max in extreme_clamps(zero_point):
            params = {"zero_point": zero_point, "clamp_min": clamp_min,
                      "clamp_max": clamp_max}
            rng.shuffle(corner)   # different lane neighbours under each setting
            for group in chunks(corner, rng):
                items.append(vector(group, {**params, "tag": rng.getrandbits(bench.tag_width)}))
    for group in chunks(tie_lanes(), rng):
        items.append(vector(group, {"zero_point": 0, "clamp_min": -128, "clamp_max": 127,
                                    "tag": rng.getrandbits(bench.tag_width)}))
    await bench.drive(items)
    bench.check()


@cocotb.test()
async def test_idle_gaps(dut):
    """Random idle gaps (with garbage on the payload) between vectors: results only for valid
    inputs, each exactly LATENCY cycles after it."""
    bench = Bench(dut, "test_idle_gaps")
    await bench.start()
    rng = bench.rng
    items = []
    for _ in range(300):
        gap = rng.choice((0, 0, 1, 1, 2, 3, 4, 5, 9))
        items.extend([None] * gap)
        items.append(random_vector(rng, bench.tag_width))
    items.extend([None] * 3)
    await bench.drive(items)
    bench.check()


@cocotb.test()
async def test_reset_flushes(dut):
    """A synchronous reset drops every vector in flight (valid clears) and nothing else."""
    bench = Bench(dut, "test_reset_flushes")
    await bench.start()
    rng = bench.rng
    items = [random_vector(rng, bench.tag_width) if rng.random() < 0.8 else None
             for _ in range(200)]
    resets = {10, 11, 40, 41, 42, 43, 44, 45, 90}
    resets.update(rng.sample(range(100, 200), 8))
    # Indices count the idle cycles a K-cycle unit needs between vectors: spread them as far.
    resets = {r * MULT_CYCLES for r in resets}
    await bench.drive(items, resets=resets)
    dropped = sum(bench.dropped_by_reset(cycle) for cycle, _ in bench.sent)
    assert dropped > 0, "the reset cycles chosen drop nothing: the test tests nothing"
    bench.check()
