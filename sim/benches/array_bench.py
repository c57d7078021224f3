"""cocotb tests of :class:`rtl.array.SystolicArray` against numpy.

The environment gives the shape, the PEs' pipeline stages and the seed: ``LOCKSTEP_ROWS``,
``LOCKSTEP_COLS``, ``LOCKSTEP_PE_STAGES`` (default 2), ``LOCKSTEP_SEED``. Every test builds a
cycle-by-cycle :class:`Program` of input vectors and shadow weight writes, has a
:class:`Driver` play it, a :class:`Monitor` record each cycle's ``y``, and :func:`check`
compare the recording with what it should be: the tile-level expectation ``x @ W_tile`` where
the test means one, and always :class:`ArrayModel`, which follows the array's timing rules PE
by PE. A result must appear exactly ``rtl.array.systolic_latency(R, C, pe_stages)`` cycles
after its vector, and no cycle without a vector may give ``y.valid``.

Cycle numbers are taken from the simulation time (one per clock period), so the driver and the
monitor agree on them whatever order cocotb wakes them in.
"""

import os
from bisect import bisect_left
from dataclasses import dataclass

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

from rtl.array import systolic_latency
from sim.arith import wrap_i32

PERIOD_NS = 10
INT8_MIN, INT8_MAX = -128, 127


@dataclass(frozen=True)
class Params:
    rows: int
    cols: int
    seed: int
    pe_stages: int = 2

    @property
    def latency(self):
        return systolic_latency(self.rows, self.cols, self.pe_stages)

    @property
    def sel_bits(self):
        return max(1, (self.rows - 1).bit_length())

    @property
    def reload(self):
        """Fewest cycles between two swaps that leave room to load every shadow row."""
        return max(self.rows, self.cols)

    def rng(self, test_id):
        return np.random.default_rng([self.seed, test_id])

    def where(self, test):
        return (f"{test} (R={self.rows}, C={self.cols}, pe_stages={self.pe_stages}, "
                f"LOCKSTEP_SEED={self.seed})")


def params():
    return Params(rows=int(os.environ.get("LOCKSTEP_ROWS", "4")),
                  cols=int(os.environ.get("LOCKSTEP_COLS", "4")),
                  seed=int(os.environ.get("LOCKSTEP_SEED", "1")),
                  pe_stages=int(os.environ.get("LOCKSTEP_PE_STAGES", "2")))


def now():
    """The current cycle: cycle k begins with the rising edge at k clock periods."""
    return round(get_sim_time(unit="ns")) // PERIOD_NS


# -- bit packing (struct fields LSB first, array elements LSB first) ---------------------------

def pack_a(x, swap, rows):
    word = 0
    for r, value in enumerate(x):
        word |= (int(value) & 0xFF) << (8 * r)
    return word | (int(swap) << (8 * rows))


def pack_w(row, sel, cols):
    word = 0
    for c, value in enumerate(row):
        word |= (int(value) & 0xFF) << (8 * c)
    return word | (int(sel) << (8 * cols))


def unpack_y(word, cols):
    out = np.empty(cols, dtype=np.int64)
    for c in range(cols):
        value = (word >> (32 * c)) & 0xFFFF_FFFF
        out[c] = value - (1 << 32) if value >> 31 else value
    return out


# -- stimulus ----------------------------------------------------------------------------------

def random_int8(rng, shape, extremes=0.15):
    """Random int8 values, a fraction of them replaced by -128 or 127."""
    values = rng.integers(INT8_MIN, INT8_MAX + 1, size=shape)
    mask = rng.random(shape) < extremes
    values[mask] = rng.choice([INT8_MIN, INT8_MAX], size=int(mask.sum()))
    return values.astype(np.int64)


@dataclass
class Vector:
    x: np.ndarray
    swap: bool
    tile: object = None   # the tile the test expects this vector to use, or None


@dataclass
class Write:
    sel: int
    row: np.ndarray


class Program:
    """What to drive in each cycle, counted from the first driven cycle."""

    def __init__(self):
        self.vectors = {}
        self.writes = {}

    def vector(self, t, x, swap, tile=None):
        assert t not in self.vectors, f"testbench bug: two vectors in cycle {t}"
        self.vectors[t] = Vector(np.asarray(x, dtype=np.int64), bool(swap), tile)

    def write(self, t, sel, row):
        assert t not in self.writes, f"testbench bug: two weight writes in cycle {t}"
        self.writes[t] = Write(sel, np.asarray(row, dtype=np.int64))

    def free(self, t):
        return t not in self.writes

    def __len__(self):
        return 1 + max([*self.vectors, *self.writes, -1])


def schedule_load(program, rng, tile, lo, hi, variant, junk=0.0):
    """Write every row of ``tile`` into the shadows, row r in a free cycle of [lo[r], hi[r]].

    ``variant`` picks the cycle: "earliest", "latest" or "random". With probability ``junk`` a
    row is first written with random values in an earlier free cycle of its window, so that only
    the last write may count.

    Rows are placed in order; each window is the previous one shifted by a cycle, so the last
    cycle of row r's window is out of reach of rows before it and a free cycle always remains.
    """
    chosen = {}
    for r in range(len(tile)):
        free = [t for t in range(lo[r], hi[r] + 1) if program.free(t)]
        assert free, f"testbench bug: no free cycle to load row {r} in [{lo[r]}, {hi[r]}]"
        if variant == "earliest":
            t = free[0]
        elif variant == "latest":
            t = free[-1]
        else:
            t = int(rng.choice(free))
        program.write(t, r, tile[r])
        chosen[r] = t
    for r in range(len(tile)):
        if rng.random() < junk:
            free = [t for t in range(lo[r], chosen[r]) if program.free(t)]
            if free:
                program.write(int(rng.choice(free)), r, random_int8(rng, tile.shape[1]))


# -- model -------------------------------------------------------------------------------------

class ModelError(AssertionError):
    pass


class ArrayModel:
    """What the array must output, PE by PE, from when vectors and weight rows were presented.

    If the vector of cycle T is valid and has ``swap`` set, ``PE[r][c]``'s active weight becomes
    its shadow weight as it was in cycle ``T + r + c`` (the cycle before the vector reaches it),
    i.e. the last write to shadow row r in a cycle before ``T + r + c``, and the vector already
    uses it. The result leaves in cycle ``T + latency`` (:attr:`Params.latency`).
    """

    def __init__(self, rows, cols, latency):
        self.rows, self.cols, self.latency = rows, cols, latency

    def outputs(self, vectors, writes):
        """``vectors``: [(cycle, x, swap)]; ``writes``: [(cycle, sel, row)] -> {cycle: y}."""
        history = [[] for _ in range(self.rows)]
        for t, sel, row in sorted(writes, key=lambda w: w[0]):
            history[sel].append((t, row))
        times = [[t for t, _ in h] for h in history]
        active = np.zeros((self.rows, self.cols), dtype=np.int64)
        known = np.zeros((self.rows, self.cols), dtype=bool)
        out = {}
        for t, x, swap in sorted(vectors, key=lambda v: v[0]):
            if swap:
                for r in range(self.rows):
                    for c in range(self.cols):
                        i = bisect_left(times[r], t + r + c)
                        if i:
                            active[r, c] = history[r][i - 1][1][c]
                            known[r, c] = True
            if not known.all():
                raise ModelError(f"testbench bug: the vector of cycle {t} uses a weight that was "
                                 "never written")
            out[t + self.latency] = wrap_i32(np.asarray(x) @ active)
        return out


# -- driver, monitor, checker ------------------------------------------------------------------

class Driver:
    """Plays a :class:`Program`, one step per cycle, and logs what it presented when.

    Cycles without a vector or a write still get random payloads (and random ``swap`` bits),
    only with ``valid`` low: the array must ignore them.
    """

    def __init__(self, dut, p, rng):
        self.dut, self.p, self.rng = dut, p, rng
        self.vectors = []   # (cycle, Vector)
        self.writes = []    # (cycle, sel, row)

    def idle(self):
        p, rng = self.p, self.rng
        self.dut.a__valid.value = 0
        self.dut.a__payload.value = pack_a(random_int8(rng, p.rows), rng.integers(2), p.rows)
        self.dut.w__valid.value = 0
        self.dut.w__payload.value = pack_w(random_int8(rng, p.cols),
                                           rng.integers(1 << p.sel_bits), p.cols)

    async def run(self, program):
        dut, p = self.dut, self.p
        for i in range(len(program)):
            await RisingEdge(dut.clk)
            t = now()
            self.idle()
            vec = program.vectors.get(i)
            if vec is not None:
                dut.a__valid.value = 1
                dut.a__payload.value = pack_a(vec.x, vec.swap, p.rows)
                self.vectors.append((t, vec))
            write = program.writes.get(i)
            if write is not None:
                dut.w__valid.value = 1
                dut.w__payload.value = pack_w(write.row, write.sel, p.cols)
                self.writes.append((t, write.sel, write.row))
        await RisingEdge(dut.clk)
        self.idle()

    def model_inputs(self):
        return ([(t, v.x, v.swap) for t, v in self.vectors], self.writes)


class Monitor:
    """Records ``y`` in every cycle in which ``y.valid`` is set, with the cycle number."""

    def __init__(self, dut, p):
        self.dut, self.p = dut, p
        self.outputs = {}
        self.unknown_valid = []
        self.task = None

    def start(self):
        self.task = cocotb.start_soon(self._run())

    def stop(self):
        self.task.cancel()

    async def _run(self):
        dut = self.dut
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            valid = str(dut.y__valid.value)
            if valid == "1":
                payload = dut.y__payload.value
                if payload.is_resolvable:
                    self.outputs[now()] = unpack_y(payload.to_unsigned(), self.p.cols)
                else:
                    self.outputs[now()] = str(payload)
            elif valid != "0":
                self.unknown_valid.append(now())


def check(where, monitor, expected, inputs, limit=8):
    """Compare the monitor's recording with ``expected`` ({cycle: y}); raise with details."""
    p = monitor.p
    errors = []
    if monitor.unknown_valid:
        errors.append(f"y.valid unknown (X/Z) in cycles {monitor.unknown_valid[:limit]}")
    got = monitor.outputs
    for cycle in sorted(set(expected) - set(got)):
        errors.append(f"no output in cycle {cycle} for the vector of cycle {cycle - p.latency}; "
                      f"y.valid was set in cycles {sorted(got)[:limit]}...")
    for cycle in sorted(set(got) - set(expected)):
        errors.append(f"y.valid in cycle {cycle}, but no vector was presented in cycle "
                      f"{cycle - p.latency}")
    for cycle in sorted(set(got) & set(expected)):
        if isinstance(got[cycle], str) or not np.array_equal(got[cycle], expected[cycle]):
            x = inputs.get(cycle - p.latency)
            errors.append(f"cycle {cycle}: y = {got[cycle]}, expected {expected[cycle]}"
                          f" (x = {x})")
    if errors:
        shown = "\n  ".join(errors[:limit])
        more = f"\n  ... and {len(errors) - limit} more" if len(errors) > limit else ""
        raise AssertionError(f"{where}: {len(errors)} error(s):\n  {shown}{more}")


async def setup(dut, p, rng):
    """Start the clock, reset the array, and return a started monitor and an idle driver."""
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    driver = Driver(dut, p, rng)
    driver.idle()
    # Driven low: an undriven input is Z, which Icarus carries into the weight registers.
    # (The core pulses it at START; tests/test_core.py checks what it clears.)
    dut.clear.value = 0
    dut.rst.value = 1
    for _ in range(3):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    monitor = Monitor(dut, p)
    monitor.start()
    return driver, monitor


async def play(dut, p, rng, program, where, tiles=None):
    """Run ``program`` and check the outputs against the model and, given ``tiles`` (a dict
    from the tags in ``program`` to weight matrices), against ``x @ W_tile``."""
    driver, monitor = await setup(dut, p, rng)
    await driver.run(program)
    for _ in range(p.latency + 4):
        await RisingEdge(dut.clk)
    monitor.stop()

    vectors, writes = driver.model_inputs()
    inputs = {t: x for t, x, _ in vectors}
    model = ArrayModel(p.rows, p.cols, p.latency).outputs(vectors, writes)
    if tiles is not None:
        intended = {t + p.latency: wrap_i32(v.x @ tiles[v.tile]) for t, v in driver.vectors}
        for cycle in intended:
            assert np.array_equal(intended[cycle], model[cycle]), (
                f"{where}: testbench bug: the program breaks the loading rules (the vector of "
                f"cycle {cycle - p.latency} would not use the weights of its tile)")
        check(where, monitor, intended, inputs)
    check(where, monitor, model, inputs)
    dut._log.info("%s: %d vectors, %d weight writes, %d cycles checked", where, len(vectors),
                  len(writes), len(program))


def load_before(program, rng, tile, start):
    """Load every row of ``tile`` in cycles start, start + 1, ... in random order; return the
    first cycle after the load."""
    for i, r in enumerate(rng.permutation(len(tile))):
        program.write(start + i, int(r), tile[r])
    return start + len(tile)


def stream(rng, p, count):
    """``count`` random vectors; the first two are all -128 and all 127 when there is room."""
    x = random_int8(rng, (count, p.rows))
    if count >= 3:
        x[0, :] = INT8_MIN
        x[1, :] = INT8_MAX
    return x


def tile(rng, p):
    """A random R x C weight tile."""
    w = random_int8(rng, (p.rows, p.cols))
    if rng.random() < 0.5:
        w[:, rng.integers(p.cols)] = INT8_MIN   # so that all -128 vectors reach the largest sum
    return w


# -- tests -------------------------------------------------------------------------------------

@cocotb.test()
async def test_back_to_back(dut):
    """Load a tile, swap, stream vectors back to back; several tiles, drained in between."""
    p = params()
    rng = p.rng(1)
    program, tiles, t = Program(), {}, 0
    for k in range(8):
        tiles[k] = tile(rng, p)
        t = load_before(program, rng, tiles[k], t) + int(rng.integers(0, 3))
        for i, x in enumerate(stream(rng, p, int(rng.integers(1, 200)))):
            program.vector(t, x, swap=i == 0, tile=k)
            t += 1
        t += p.latency + int(rng.integers(0, 4))
    await play(dut, p, rng, program, p.where("test_back_to_back"), tiles)


async def chained_tiles(dut, p, rng, where, gap_probability):
    """Streams back to back, each tile's weights loaded into the shadows while the previous
    tile's stream runs, in every legal cycle: row r from T_swap + r + C - 1 (the cycle in which
    PE[r][C-1] swaps) to T_next_swap + r - 1 (the last cycle before the next swap reaches PE[r][0]).

    A stream shorter than max(R, C) cycles is followed by a bubble (as the sequencer's
    load_cost() makes it); most are longer, and the next stream starts in the very next cycle.
    """
    program, tiles = Program(), {0: tile(rng, p)}
    t = load_before(program, rng, tiles[0], 0) + int(rng.integers(0, 2))
    n_tiles = 40
    swaps = []
    for k in range(n_tiles):
        swaps.append(t)
        if p.reload > 1 and rng.random() < 0.15:
            count = int(rng.integers(1, p.reload))
        else:
            count = p.reload + int(rng.integers(0, 30))
        for i, x in enumerate(stream(rng, p, count)):
            while i and rng.random() < gap_probability:
                t += 1   # a bubble (junk payload, maybe with swap set, but valid low)
            program.vector(t, x, swap=i == 0, tile=k)
            t += 1
        # The next swap may come only once every shadow row can have been written.
        t = max(t, swaps[-1] + p.reload)
        if k + 1 < n_tiles:
            tiles[k + 1] = tile(rng, p)
            variant = ("earliest", "latest", "random")[k % 3]
            lo = [swaps[-1] + r + p.cols - 1 for r in range(p.rows)]
            hi = [t + r - 1 for r in range(p.rows)]
            schedule_load(program, rng, tiles[k + 1], lo, hi, variant, junk=0.5)
    await play(dut, p, rng, program, where, tiles)


@cocotb.test()
async def test_double_buffer(dut):
    """Load the next tile during the current stream; the output switches tile exactly at the
    first vector of the next stream, which follows without a bubble (see chained_tiles)."""
    p = params()
    await chained_tiles(dut, p, p.rng(2), p.where("test_double_buffer"), gap_probability=0.0)


@cocotb.test()
async def test_gaps(dut):
    """As test_double_buffer, with random runs of invalid cycles between vectors. Invalid
    cycles carry random payloads and swap bits: none may give y.valid or swap a weight."""
    p = params()
    await chained_tiles(dut, p, p.rng(3), p.where("test_gaps"), gap_probability=0.4)


@cocotb.test()
async def test_unconstrained(dut):
    """Random vectors, swaps and weight writes in any cycle, ignoring the loading rules (so
    that a swap may see a row half rewritten, or a write in its own cycle), checked against
    the PE-by-PE model."""
    p = params()
    rng = p.rng(4)
    program = Program()
    t = load_before(program, rng, tile(rng, p), 0)
    for i in range(2000):
        # The first vector swaps: before it, the active weights are left from earlier tests.
        if i == 0 or rng.random() < 0.7:
            program.vector(t + i, random_int8(rng, p.rows), swap=i == 0 or rng.random() < 0.15)
        if rng.random() < 0.3 and program.free(t + i):
            program.write(t + i, int(rng.integers(p.rows)), random_int8(rng, p.cols))
    await play(dut, p, rng, program, p.where("test_unconstrained"))


@cocotb.test()
async def test_reset_drops_vectors(dut):
    """A reset while vectors are in flight: none of them comes out, and later vectors work."""
    p = params()
    rng = p.rng(5)
    where = p.where("test_reset_drops_vectors")
    driver, monitor = await setup(dut, p, rng)
    w = tile(rng, p)
    before = Program()
    t = load_before(before, rng, w, 0)
    for i, x in enumerate(stream(rng, p, 2 * p.latency)):
        before.vector(t + i, x, swap=i == 0)
    await driver.run(before)
    dut.rst.value = 1
    reset_cycle = now()
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    after = Program()
    t = load_before(after, rng, tile(rng, p), 0)
    for i, x in enumerate(stream(rng, p, 2 * p.latency)):
        after.vector(t + i, x, swap=i == 0)
    await driver.run(after)
    for _ in range(p.latency + 4):
        await RisingEdge(dut.clk)
    monitor.stop()

    vectors, writes = driver.model_inputs()
    model = ArrayModel(p.rows, p.cols, p.latency).outputs(vectors, writes)
    # Results that leave in the reset cycle itself were in the output registers already.
    expected = {c: y for c, y in model.items() if c <= reset_cycle or c - p.latency > reset_cycle}
    dropped = len(model) - len(expected)
    assert dropped == p.latency - 1, f"{where}: testbench bug ({dropped})"
    check(where, monitor, expected, {t: x for t, x, _ in vectors})
