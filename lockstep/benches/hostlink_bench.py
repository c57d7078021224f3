"""cocotb tests of a core behind its host link (rtl/hostlink.py, LinkedCore), driven through the
serial pins by the host-side client itself (lockstep/hostlink.py).

:class:`SimUartTransport` is an :class:`~lockstep.hostlink.AsyncTransport` that drives ``rx``
and samples ``tx`` bit by bit, so every frame here is built, sent, received and checked by the
same code that talks to a board.

Environment: LOCKSTEP_CONFIG (JSON of a CoreConfig), LOCKSTEP_SEED, LOCKSTEP_DIVISOR (clock
cycles per bit), LOCKSTEP_TIMEOUT_BITS (the link's mid-frame timeout), LOCKSTEP_PROGRAMS, and
LOCKSTEP_STARTUP_CYCLES for a design without a reset port (a board's netlist: the cycles to
wait before the first frame).
"""

import collections
import copy
import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import (
    ClockCycles,
    Event,
    FallingEdge,
    RisingEdge,
    SimTimeoutError,
    Timer,
    with_timeout,
)
from cocotb.utils import get_sim_time

from rtl import isa
from rtl.hostlink_protocol import (
    BITS_PER_BYTE,
    MAX_WORDS,
    PROTOCOL_VERSION,
    RESPONSE_HEADER_BYTES,
    Cmd,
    Status,
    decode_response,
    encode_frame,
    read_request,
    response_length,
    write_request,
)
from rtl.hostmap import SRAM_FIELDS, STATUS_BUSY, STATUS_DONE, HostMap, Reg, Region, row_words
from sim.benches.coretb import config_from_env, seed_from_env
from sim.model import access_of, run
from sim.randprog import random_case, random_int8, random_state

from ..compiler import compile_model
from ..held import HeldImage, after_run, load_needed, read_rows
from ..hostlink import AsyncHostLinkClient, AsyncTransport, LinkError, link_traffic
from ..qmodel import Dense, QModel, QParams

CLOCK_NS = 10


class SimUartTransport(AsyncTransport):
    """The simulated board's serial pins as a transport (8N1, ``divisor`` cycles per bit).

    ``write`` drives ``dut.rx`` bit by bit; a monitor decodes ``dut.tx`` into a queue that
    ``read`` takes from. ``read`` gives up after ``timeout_cycles`` without a new byte.
    """

    name = "the simulated UART"

    def __init__(self, dut, divisor, timeout_cycles):
        self.dut = dut
        self.divisor = divisor
        self.bit_ns = divisor * CLOCK_NS
        self.timeout_cycles = timeout_cycles
        self.received = collections.deque()
        self.arrived = Event()
        self.framing_errors = 0
        self.bytes_sent = 0
        self._monitor = cocotb.start_soon(self._watch_tx())

    def timeout_text(self):
        return f"{self.timeout_cycles} clock cycles"

    async def _watch_tx(self):
        # Timers, not clock edges: Python wakes once per bit, not once per cycle. ``tx`` changes
        # only at bit boundaries, and samples are taken half a bit away from them.
        dut, bit = self.dut, self.bit_ns
        while True:
            await FallingEdge(dut.tx)
            await Timer(bit / 2, "ns")
            if int(dut.tx.value) != 0:
                continue                         # a glitch: the board never sends one
            byte = 0
            for i in range(8):
                await Timer(bit, "ns")
                byte |= int(dut.tx.value) << i
            await Timer(bit, "ns")
            if int(dut.tx.value) != 1:
                self.framing_errors += 1
                continue
            self.received.append(byte)
            self.arrived.set()

    async def write(self, data):
        dut, bit_ns = self.dut, self.bit_ns
        for byte in bytes(data):
            for bit in [0, *((byte >> i) & 1 for i in range(8)), 1]:
                dut.rx.value = bit
                await Timer(bit_ns, "ns")
        self.bytes_sent += len(data)

    async def read(self, n, timeout=None):
        cycles = self.timeout_cycles if timeout is None else timeout
        while len(self.received) < n:
            self.arrived.clear()
            try:
                await with_timeout(self.arrived.wait(), cycles * CLOCK_NS, "ns")
            except SimTimeoutError:
                break
        count = min(n, len(self.received))
        return bytes(self.received.popleft() for _ in range(count))

    def discard_input(self):
        self.received.clear()



class Bench:
    def __init__(self, dut):
        self.dut = dut
        self.cfg = config_from_env()
        self.map = HostMap(self.cfg)
        self.seed = seed_from_env()
        self.divisor = int(os.environ["LOCKSTEP_DIVISOR"])
        self.timeout_bits = int(os.environ["LOCKSTEP_TIMEOUT_BITS"])
        self.startup_cycles = int(os.environ.get("LOCKSTEP_STARTUP_CYCLES", "0"))

    async def reset(self):
        dut = self.dut
        # The clock runs in the simulator's C++ side: Python only wakes for the bench's events.
        Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
        dut.rx.value = 1
        if self.startup_cycles:
            # A board's netlist (sim/netlist.py) has no reset port: it holds itself in reset
            # until its PLL has locked and its power-on delay has passed.
            await ClockCycles(dut.clk, self.startup_cycles)
        else:
            dut.rst.value = 1
            await ClockCycles(dut.clk, 2)
            dut.rst.value = 0
        await RisingEdge(dut.clk)
        # The board answers a truncated frame after timeout_bits of silence: wait a bit more.
        self.link = SimUartTransport(
            dut, self.divisor, (self.timeout_bits + 4 * BITS_PER_BYTE) * self.divisor)
        self.client = AsyncHostLinkClient(self.link, self.cfg)

    def rng(self, name):
        return np.random.default_rng([self.seed, sum(name.encode())])

    def random_state(self, rng):
        return random_state(self.cfg, rng)

    async def check_srams(self, state, what):
        """Read every SRAM back through the link and compare with ``state``."""
        for name, _region in SRAM_FIELDS:
            rows = await self.client.read_region(name)
            for row, words in enumerate(rows):
                want = row_words(self.map, state, name, row)
                assert words == want, (f"[seed {self.seed}] {what}: {name} row {row} reads "
                                       f"{[hex(w) for w in words]}, expected "
                                       f"{[hex(w) for w in want]}")

    async def raw(self, frame, partial=None):
        """Send ``frame`` (its first ``partial`` bytes only, if given) and return the decoded
        response."""
        self.link.discard_input()
        await self.link.write(frame if partial is None else frame[:partial])
        header = await self.link.read(RESPONSE_HEADER_BYTES)
        assert len(header) == RESPONSE_HEADER_BYTES, f"no response to {frame[:8].hex(' ')}..."
        rest = await self.link.read(response_length(header) - RESPONSE_HEADER_BYTES)
        return decode_response(header + rest)


@cocotb.test()
async def ping_and_regions(dut):
    """PING; the identification registers; random words written to and read back from every
    word of every SRAM region; multi-frame WRITE/READ spans."""
    tb = Bench(dut)
    await tb.reset()
    info = await tb.client.ping()
    assert (info.version, info.max_words, info.addr_bits) == (
        PROTOCOL_VERSION, MAX_WORDS, tb.map.addr_bits), info
    await tb.client.check_config()

    rng = tb.rng("ping_and_regions")
    state = tb.random_state(rng)
    await tb.client.load_state(state)
    await tb.check_srams(state, "full write and read-back")

    # A span of several frames over the ACC region, across its rows and past its last one:
    # the addresses past a region's depth hold nothing, ignore writes and read 0.
    count = MAX_WORDS + 5
    base = tb.map.addr(Region.ACC, max(0, tb.map.depth(Region.ACC) - count + 3), 0)
    words = [int(w) for w in rng.integers(0, 1 << 32, size=count, dtype=np.uint64)]
    await tb.client.write_words(base, words)
    want = [w if tb.map.mapped(base + i) else 0 for i, w in enumerate(words)]
    assert await tb.client.read_words(base, count) == want
    dut._log.info(f"ping, registers and {sum(1 for _ in SRAM_FIELDS)} regions read back "
                  f"(seed {tb.seed}); {tb.link.bytes_sent} bytes sent")


@cocotb.test()
async def gemm_programs(dut):
    """Random GEMM programs loaded, run and read back through the link: bit-exact activations
    and accumulators, exact counters. Then a program that multiplies without loading: it sees
    zero weights (START clears them), not those the GEMMs left in the array."""
    tb = Bench(dut)
    await tb.reset()
    rng = tb.rng("gemm_programs")
    mirror = None
    # Weight rows the core holds as ``mirror`` says. Only the rows a program reads are loaded
    # (the weight SRAM is not read back): on the iCEBreaker's core the whole 16,384-row SPRAM
    # would be 6.4 million clock cycles on the line.
    known_wgt = np.zeros(tb.cfg.wgt_depth, dtype=bool)

    def previous_of(state, reads):
        """What to tell the client the core holds: the mirror, except that every row of the
        other SRAMs (first program) and every weight row the program reads that the core may
        not hold differ from ``state``, so that they are written."""
        previous = state.copy() if mirror is None else mirror.copy()
        if mirror is None:
            for name in ("prog", "act", "acc", "bias", "mult", "shift"):
                setattr(previous, name, ~getattr(state, name))
        unknown = reads & ~known_wgt
        previous.wgt[unknown] = ~state.wgt[unknown]
        return previous

    async def check(state, what):
        reads = access_of(state).wgt_read
        if mirror is not None:
            state.wgt[~reads] = mirror.wgt[~reads]      # unread: no need to send them
        expected = state.copy()
        model = run(expected)
        got = await tb.client.run(state, previous=previous_of(state, reads))
        known_wgt[reads] = True
        want = dict(error=int(model.error), cycles=model.cycles, mac_cycles=model.mac_cycles,
                    instret=model.instret, err_pc=model.err_pc)
        have = dict(error=int(got.error), cycles=got.cycles, mac_cycles=got.mac_cycles,
                    instret=got.instret, err_pc=got.err_pc)
        assert have == want, f"{what}: link {have} != model {want}"
        for name in ("act", "acc"):
            rtl, gold = getattr(got, name), getattr(expected, name)
            if not np.array_equal(rtl, gold):
                rows = sorted({int(r) for r in np.argwhere(rtl != gold)[:, 0]})
                raise AssertionError(f"{what}: {name} differs from the model in rows "
                                     f"{rows[:10]}")
        status = await tb.client.read_reg(Reg.STATUS)
        assert status & STATUS_DONE and not status & STATUS_BUSY
        dut._log.info(f"{what}: {model.cycles} cycles, matched over the link")
        return expected

    for i in range(int(os.environ.get("LOCKSTEP_PROGRAMS", "2"))):
        state, description = random_case(tb.cfg, rng, mirror)
        mirror = await check(state, f"[seed {tb.seed}, program {i}: {description}]")
    state = mirror.copy()
    state.act[:] = random_int8(rng, state.act.shape)
    state.load_program([isa.encode(isa.Op.MATMUL, m=min(4, tb.cfg.acc_depth), swap=1),
                        isa.encode(isa.Op.HALT)])
    await check(state, f"[seed {tb.seed}] a MATMUL without a load, after the GEMMs")


class _Corrupting(AsyncTransport):
    """Wraps a transport; the next write is passed through ``mangle`` first."""

    def __init__(self, inner, mangle):
        self.inner, self.mangle = inner, mangle
        self.name = inner.name

    def timeout_text(self):
        return self.inner.timeout_text()

    async def write(self, data):
        data, self.mangle = (self.mangle(data) if self.mangle else data), None
        await self.inner.write(data)

    async def read(self, n, timeout=None):
        return await self.inner.read(n, timeout)

    def discard_input(self):
        self.inner.discard_input()


@cocotb.test()
async def bad_frames(dut):
    """Corrupted, truncated, unknown and oversize frames get their error response and change
    nothing in the core (SRAMs and control alike); the next good frame works."""
    tb = Bench(dut)
    await tb.reset()
    rng = tb.rng("bad_frames")
    state = tb.random_state(rng)
    await tb.client.load_state(state)
    hmap = tb.map
    act0 = hmap.addr(Region.ACT, 0, 0)
    acc1 = hmap.addr(Region.ACC, 1, 0)
    cols = tb.cfg.cols
    # Word 0 of ACC rows 1..cols: consecutive addresses in the word-major map.
    acc_span = [row_words(hmap, state, "acc", 1 + i)[0] for i in range(cols)]
    fresh = [int(w) ^ 0x5A5A_5A5A for w in acc_span]
    good_write = write_request(acc1, fresh)
    start_frame = write_request(hmap.reg(Reg.CTRL), [1])

    def flip(frame, index, mask=0x01):
        frame = bytearray(frame)
        frame[index] ^= mask
        return bytes(frame)

    top = 1 << hmap.addr_bits
    cases = [
        # (name, frame, bytes to send or None, expected status)
        ("WRITE with a wrong CRC", flip(good_write, -1), None, Status.BAD_CRC),
        ("WRITE with a corrupted payload byte", flip(good_write, 9, 0x80), None,
         Status.BAD_CRC),
        ("WRITE with a corrupted address", flip(good_write, 3, 0x10), None, Status.BAD_CRC),
        ("START with a wrong CRC", flip(start_frame, -2), None, Status.BAD_CRC),
        ("WRITE stopped in the payload", good_write, 7 + 4 * cols - 3, Status.TIMEOUT),
        ("WRITE stopped in the header", good_write, 3, Status.TIMEOUT),
        ("WRITE stopped before its CRC", good_write, len(good_write) - 1, Status.TIMEOUT),
        ("START stopped before its CRC", start_frame, len(start_frame) - 2, Status.TIMEOUT),
        ("unknown command 0x7E", encode_frame(0x7E, 1, acc1), None, Status.BAD_CMD),
        ("unknown command 0x00", encode_frame(0x00, 0, 0), None, Status.BAD_CMD),
        ("WRITE of MAX_WORDS + 1 words",
         encode_frame(Cmd.WRITE, MAX_WORDS + 1, act0, [0xFFFF_FFFF] * (MAX_WORDS + 1)), None,
         Status.BAD_LEN),
        ("WRITE of 0 words", encode_frame(Cmd.WRITE, 0, act0), None, Status.BAD_LEN),
        ("READ of MAX_WORDS + 1 words", encode_frame(Cmd.READ, MAX_WORDS + 1, act0), None,
         Status.BAD_LEN),
        ("PING with a length", encode_frame(Cmd.PING, 1, 0), None, Status.BAD_LEN),
        ("WRITE past the end of the address space",
         encode_frame(Cmd.WRITE, 2, top - 1, [0xFFFF_FFFF, 0xFFFF_FFFF]), None,
         Status.BAD_ADDR),
        ("WRITE to an address with bit 31 set (aliases ACT row 0 if truncated)",
         encode_frame(Cmd.WRITE, 1, (1 << 31) | act0, [0x7F7F_7F7F]), None, Status.BAD_ADDR),
        ("READ past the end of the address space", encode_frame(Cmd.READ, 1, top), None,
         Status.BAD_ADDR),
    ]
    # What the bad frames aim at, as load_state wrote it.
    targets = [act0, *range(acc1, acc1 + cols)]
    want = [row_words(hmap, state, "act", 0)[0], *acc_span]
    for name, frame, partial, status in cases:
        response = await tb.raw(frame, partial)
        assert (response.status, response.words) == (status, ()), \
            f"[seed {tb.seed}] {name}: answered {response}"
        # The next frame works, and the words the bad one aimed at are unchanged (every other
        # SRAM word is checked once all cases have run).
        got = await tb.client.read_scattered(targets)
        assert got == want, f"[seed {tb.seed}] {name}: SRAM words changed"
        if "START" in name:
            assert await tb.client.read_reg(Reg.STATUS) == 0, f"{name}: the core was started"
    # Noise before the SYNC byte is dropped.
    response = await tb.raw(bytes([0x00, 0xFF, 0x13]) + read_request(act0, 1))
    assert (response.status, response.words) == (Status.OK, (want[0],))
    # The client reports the board's refusal of a frame corrupted on the way.
    client = AsyncHostLinkClient(_Corrupting(tb.link, lambda f: flip(f, 8)), tb.cfg)
    try:
        await client.write_words(act0, [0])
    except LinkError as exc:
        assert "answered BAD_CRC" in str(exc), exc
    else:
        raise AssertionError("a corrupted WRITE was not refused")
    client = AsyncHostLinkClient(_Corrupting(tb.link, lambda f: f[:5]), tb.cfg)
    try:
        await client.write_words(act0, [0])
    except LinkError as exc:
        assert "answered TIMEOUT" in str(exc), exc
    else:
        raise AssertionError("a truncated WRITE was not refused")
    # Every SRAM word is still what load_state wrote, and the core never started.
    await tb.check_srams(state, "after the bad frames")
    assert await tb.client.read_reg(Reg.STATUS) == 0
    # And a good WRITE still lands.
    await tb.client.write_words(acc1, fresh)
    assert await tb.client.read_words(acc1, cols) == fresh
    assert tb.link.framing_errors == 0
    dut._log.info(f"{len(cases) + 3} bad frames refused, nothing changed (seed {tb.seed}); "
                  f"{tb.link.bytes_sent} bytes sent")


def _network(rng, dims):
    """A random dense network with layer widths ``dims`` (input first), ReLU between layers."""
    layers = []
    for i, (k, n) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        last = i == len(dims) - 2
        layers.append(Dense(rng.integers(-127, 128, (k, n)), rng.integers(-500, 500, n),
                            rng.uniform(0.001, 0.003, n), QParams(0.1, 0) if last
                            else QParams(0.05, -128), "none" if last else "relu", name=f"fc{i}"))
    return QModel((dims[0],), QParams(1 / 255, -128), layers)


@cocotb.test()
async def compiled_network(dut):
    """A network compiled by lockstep.compiler, run through the link as the board backend runs
    it (lockstep/held.py): the first inference loads what the program needs (its words, tiles,
    parameter rows and input) and reads back the whole activation and accumulator SRAMs, which
    must equal the golden model's; each later one loads its input rows and reads back its
    output rows only. Outputs bit-exact with the golden model and the numpy reference, cycles
    equal to the compiler's prediction. Each phase is timed in clock cycles, and none takes
    less than its bytes on the line (lockstep.hostlink.TrafficCounter). LOCKSTEP_NETWORK gives
    the layer widths (default 8,4,4), LOCKSTEP_LINK_REPORT a file for the figures (JSON)."""
    tb = Bench(dut)
    await tb.reset()
    rng = tb.rng("compiled_network")
    dims = [int(d) for d in os.environ.get("LOCKSTEP_NETWORK", "8,4,4").split(",")]
    model = _network(rng, dims)
    compiled = compile_model(model, tb.cfg, batch=1)
    client = tb.client
    held = HeldImage(tb.cfg)
    needs = access_of(compiled.state)

    def now():
        return round(get_sim_time(unit="ns") / CLOCK_NS)

    phases = {}

    async def timed(name, operation):
        """Run ``operation(protocol, held)`` (a protocol operation), timed; its link traffic is
        counted first on a copy of ``held``."""
        wire = link_traffic(tb.cfg, lambda counter: counter.perform(
            operation(counter.protocol, copy.deepcopy(held))))
        begin = now()
        result = await client.perform(operation(client.protocol, held))
        cycles = now() - begin
        wire_cycles = wire.bits * tb.divisor
        # The bench takes a response's last byte at the middle of its stop bit.
        least = wire_cycles - wire.frames * (tb.divisor // 2)
        assert cycles >= least, f"{name}: {cycles} cycles, less than the line's {least}"
        phases.setdefault(name, []).append(dict(
            cycles=cycles, wire_cycles=wire_cycles, frames=wire.frames,
            bytes_sent=wire.bytes_sent, bytes_received=wire.bytes_received))
        return result

    for i in range(3):
        x = rng.integers(-128, 128, (1, dims[0])).astype(np.int8)
        state = compiled.with_input(x)
        expected = state.copy()
        golden = run(expected)
        await timed("upload" if i == 0 else "input",
                    lambda protocol, known, s=state: load_needed(protocol, s, known, needs))
        begin = now()
        await client.start()
        after_run(held, needs)
        await client.wait()
        counters = await client.read_words(tb.map.reg(Reg.CYCLES), 4)
        phases.setdefault("start, wait, counters", []).append(dict(cycles=now() - begin))
        what = f"[seed {tb.seed}, inference {i}]"
        if i == 0:
            # Everything, and every row the program reads or writes must be the golden
            # model's; the others hold what they held (earlier tests' data: nothing loads them).
            for name in ("act", "acc"):
                rows = np.arange(len(getattr(held.state, name)))
                await timed("readback", lambda protocol, known, n=name, r=rows:
                            read_rows(protocol, known, n, r))
                touched = np.union1d(needs.rows_read(name), getattr(needs, f"{name}_rows_written"))
                assert np.array_equal(getattr(held.state, name)[touched],
                                      getattr(expected, name)[touched]), f"{what} {name}"
        else:
            await timed("output readback", lambda protocol, known:
                        read_rows(protocol, known, "act", compiled.output_rows))
        out = compiled.read_output(held.state.act)
        assert np.array_equal(out, compiled.read_output(expected.act)), what
        assert np.array_equal(out, model.reference(x)), what
        assert counters[0] == golden.cycles == compiled.predicted_cycles, what
    dut._log.info(f"compiled network {dims} ({compiled.predicted_cycles} cycles) matched over "
                  f"the link, {tb.divisor} clock cycles per bit: "
                  + "; ".join(f"{k} {[p['cycles'] for p in v]} cycles" for k, v in phases.items()))
    report = os.environ.get("LOCKSTEP_LINK_REPORT")
    if report:
        with open(report, "w") as f:
            json.dump(dict(config=tb.cfg.to_dict(), divisor=tb.divisor, network=dims,
                           predicted_cycles=compiled.predicted_cycles, phases=phases), f,
                      indent=1)
