"""The host link's gateware pieces in Amaranth's simulator: the UART (loopback at several
divisors, back-to-back bytes, a sender off by 3 %, glitches, framing errors, overrun), the
divisor checks, and the CRC network against the protocol's pure-Python CRC."""

import gc
import random
import warnings

import pytest
from amaranth import Module, Signal
from amaranth.hdl import UnusedElaboratable
from amaranth.sim import Simulator

from rtl.config import CoreConfig
from rtl.hostlink import HostLink, LinkedCore, crc16_step
from rtl.hostlink_protocol import crc16_update
from rtl.uart import UARTRx, UARTTx, uart_divisor


def _simulate(module, *benches, clock=1e-6):
    sim = Simulator(module)
    sim.add_clock(clock)
    for bench in benches:
        sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("divisor", [4, 5, 7, 16])
def test_loopback_back_to_back(divisor):
    data = [0x00, 0xFF, 0xA5, 0x5A, 0x01, 0x80] + random.Random(divisor).sample(range(256), 10)
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    received, arrivals, line = [], [], []

    async def send(ctx):
        ctx.set(tx.i.valid, 1)
        for byte in data:
            ctx.set(tx.i.payload, byte)
            while True:
                _, _, ready = await ctx.tick().sample(tx.i.ready)
                if ready:
                    break
        ctx.set(tx.i.valid, 0)

    async def receive(ctx):
        ctx.set(rx.o.ready, 1)
        for cycle in range(len(data) * 10 * divisor + 10 * divisor):
            _, _, valid, payload, level = await ctx.tick().sample(rx.o.valid, rx.o.payload,
                                                                  tx.tx)
            line.append(level)
            if valid:
                received.append(payload)
                arrivals.append(cycle)
            assert not ctx.get(rx.frame_error) and not ctx.get(rx.overrun)

    _simulate(m, send, receive)
    assert received == data
    starts, cycle = [], 1
    while cycle < len(line):     # a start bit is a falling edge outside a frame
        if line[cycle - 1] and not line[cycle]:
            starts.append(cycle)
            cycle += 10 * divisor - 1
        cycle += 1
    # The first byte, offered in cycle 0, goes into the holding register, then the shift
    # register: its start bit is on the line in cycle 2 (sampled at the edge that ends it).
    # Then back to back: exactly 10 bit times per byte on the line.
    assert starts[0] == 2, starts[:2]
    for times in (starts, arrivals):
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        assert gaps == [10 * divisor] * (len(data) - 1)


def _bits(byte, stop=1):
    return [0, *(byte >> i & 1 for i in range(8)), stop]


def _segments(frames, bit_cycles):
    """(level, cycles) segments of 8N1 ``frames`` (lists of bits), each bit ``bit_cycles`` long,
    possibly fractional (edges rounded to whole cycles)."""
    out, t, now = [], 0.0, 0
    for bits in frames:
        for bit in bits:
            t += bit_cycles
            out.append((bit, round(t) - now))
            now = round(t)
    return out


def _receiver_bench(divisor, segments, ready=True):
    rx = UARTRx(divisor)
    got = {"bytes": [], "frame_errors": 0, "overruns": 0}
    total = sum(cycles for _, cycles in segments) + 20 * divisor

    async def watch(ctx):
        ctx.set(rx.o.ready, int(ready))
        for _ in range(total):
            _, _, valid, payload, fe, ov = await ctx.tick().sample(
                rx.o.valid, rx.o.payload, rx.frame_error, rx.overrun)
            if valid and ready:
                got["bytes"].append(payload)
            got["frame_errors"] += fe
            got["overruns"] += ov
        got["held"] = (ctx.get(rx.o.valid), ctx.get(rx.o.payload))

    async def drive(ctx):
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(5)
        for level, cycles in segments:
            ctx.set(rx.rx, level)
            await ctx.tick().repeat(cycles)
        ctx.set(rx.rx, 1)

    _simulate(rx, watch, drive)
    return got


@pytest.mark.parametrize("error", [-0.03, 0.03])
def test_receiver_tolerates_a_sender_off_by_3_percent(error):
    data = [0x00, 0xFF, 0x55, 0xAA, 0x0F, 0xF0, 0x81, 0x7E]
    got = _receiver_bench(16, _segments([_bits(b) for b in data], 16 * (1 + error)))
    assert got["bytes"] == data and got["frame_errors"] == 0


def test_receiver_drops_a_byte_with_a_low_stop_bit():
    frames = [_bits(0x12), _bits(0x34, stop=0), [1] * 10, _bits(0x56)]
    got = _receiver_bench(8, _segments(frames, 8))
    assert got["bytes"] == [0x12, 0x56] and got["frame_errors"] == 1


@pytest.mark.parametrize("width", [1, 2])
def test_receiver_ignores_a_glitch(width):
    # A low pulse shorter than half a bit is not a start bit; the next byte is received.
    got = _receiver_bench(8, [(0, width), (1, 40)] + _segments([_bits(0x3C)], 8))
    assert got["bytes"] == [0x3C] and got["frame_errors"] == 0


def test_receiver_keeps_the_first_byte_on_overrun():
    got = _receiver_bench(8, _segments([_bits(0x11), _bits(0x22), _bits(0x33)], 8), ready=False)
    assert got["held"] == (1, 0x11) and got["overruns"] == 2


@pytest.fixture
def refused_components():
    """Components whose constructor raised are never elaborated; Amaranth would warn about
    them when they are collected."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnusedElaboratable)
        yield
        gc.collect()


def test_divisor_checks(refused_components):
    for bad in (3, 0, -8, 4.5, True, "8"):
        with pytest.raises(ValueError, match="at least 4 clock cycles per bit"):
            UARTRx(bad)
        with pytest.raises(ValueError, match="at least 4 clock cycles per bit"):
            UARTTx(bad)
    with pytest.raises(ValueError, match="at least 4 clock cycles per bit"):
        LinkedCore(CoreConfig(rows=2, cols=2, act_depth=8, wgt_depth=8, acc_depth=8,
                              qparam_depth=1, prog_depth=8), 2)
    assert uart_divisor(12_000_000, 1_000_000) == 12       # iCEBreaker
    assert uart_divisor(25_000_000, 1_000_000) == 25       # ULX3S
    assert uart_divisor(25_000_000, 115_200) == 217
    with pytest.raises(ValueError, match="3.6 % off 1000000 baud"):
        uart_divisor(13_500_000, 1_000_000)
    with pytest.raises(ValueError, match="needs at least 4000000 Hz"):
        uart_divisor(3_000_000, 1_000_000)


def test_link_timeout_check(refused_components):
    cfg = CoreConfig(rows=2, cols=2, act_depth=8, wgt_depth=8, acc_depth=8, qparam_depth=1,
                     prog_depth=8)
    with pytest.raises(ValueError, match="timeout_bits must be an integer of at least 20"):
        HostLink(cfg, 8, timeout_bits=10)


def test_crc_network_matches_the_protocol():
    crc, byte = Signal(16), Signal(8)
    out = Signal(16)
    m = Module()
    m.d.comb += out.eq(crc16_step(crc, byte))
    rng = random.Random(7)
    cases = [(1 << i, 0) for i in range(16)] + [(0, 1 << i) for i in range(8)]
    cases += [(rng.randrange(1 << 16), rng.randrange(256)) for _ in range(300)]

    async def bench(ctx):
        for c, b in cases:
            ctx.set(crc, c)
            ctx.set(byte, b)
            assert ctx.get(out) == crc16_update(c, b), (hex(c), hex(b))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
