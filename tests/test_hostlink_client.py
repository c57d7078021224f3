"""The host link client (lockstep/hostlink.py) against fake transports: a fake board that
answers like the gateware (and runs programs on the golden model), silent ports, corrupted and
truncated responses, error answers, and pyserial on a pseudo-terminal."""

import asyncio
import os
import threading

import numpy as np
import pytest

from lockstep.hostlink import (
    AsyncHostLinkClient,
    AsyncTransport,
    HostLinkClient,
    LinkError,
    SerialTransport,
    Transport,
)
from rtl.config import CoreConfig
from rtl.hostlink_protocol import (
    MAX_WORDS,
    Cmd,
    FrameError,
    Status,
    decode_request,
    encode_response,
    ping_words,
    request_length,
)
from rtl.hostmap import (
    SRAM_FIELDS,
    STATUS_BUSY,
    STATUS_DONE,
    STATUS_ERROR_SHIFT,
    HostMap,
    Reg,
    Region,
    row_words,
)
from sim.model import CoreState, run
from sim.randprog import random_case

CFG = CoreConfig(rows=4, cols=4, act_depth=32, wgt_depth=32, acc_depth=16, qparam_depth=4,
                 prog_depth=16)


class FakeCore:
    """The core as the host bus sees it, on top of a sim.model.CoreState; START runs the
    golden model, and STATUS reads busy ``busy_polls`` times first."""

    def __init__(self, cfg, busy_polls=2):
        self.cfg, self.map = cfg, HostMap(cfg)
        self.state = CoreState(cfg)
        self.regs = {Reg.STATUS: 0, Reg.CYCLES: 0, Reg.MAC_CYCLES: 0, Reg.INSTRET: 0,
                     Reg.ERR_PC: 0, **self.map.register_values()}
        self.busy_polls = busy_polls
        self.polls_left = 0

    def _decode(self, addr):
        return self.map.decode(addr)

    def _sram(self, region, row, word):
        if region not in {r for _, r in SRAM_FIELDS}:
            return None
        if row >= self.map.depth(region) or word >= self.map.words_per_row(region):
            return None
        return dict((r, n) for n, r in SRAM_FIELDS)[region]

    def write(self, addr, value):
        region, row, word = self._decode(addr)
        if region == Region.CTRL:
            if word == 0 and row == Reg.CTRL and value & 1:
                result = run(self.state)
                self.regs.update({Reg.CYCLES: result.cycles, Reg.MAC_CYCLES: result.mac_cycles,
                                  Reg.INSTRET: result.instret, Reg.ERR_PC: result.err_pc,
                                  Reg.STATUS: STATUS_DONE
                                  | int(result.error) << STATUS_ERROR_SHIFT})
                self.polls_left = self.busy_polls
            return
        name = self._sram(region, row, word)
        if name is None:
            return
        if name == "qparam":
            channel, kind = divmod(word, 4)
            if kind < 3:
                array = (self.state.bias, self.state.mult, self.state.shift)[kind]
                array[row, channel] = np.array(value & (0xFF if kind == 2 else 0xFFFF_FFFF),
                                               dtype=np.uint32).astype(array.dtype)
            return
        words = row_words(self.map, self.state, name, row)
        words[word] = value
        values = self.map.words_to_row(region, words)
        if name == "prog":
            self.state.prog[row] = values[0]
        else:
            getattr(self.state, name)[row] = values

    def read(self, addr):
        region, row, word = self._decode(addr)
        if region == Region.CTRL:
            if word == 0 and row == Reg.STATUS and self.polls_left:
                self.polls_left -= 1
                return STATUS_BUSY
            return self.regs.get(row, 0) if word == 0 else 0
        name = self._sram(region, row, word)
        return 0 if name is None else row_words(self.map, self.state, name, row)[word]


class FakeBoard(Transport):
    """Answers each request frame as the gateware does (rtl/hostlink_protocol.py rules).
    ``mangle(response) -> bytes`` corrupts answers; ``silent`` drops them."""

    name = "fake0"
    timeout = 0.05

    def __init__(self, cfg=CFG, mangle=None, silent=False):
        self.core = FakeCore(cfg)
        self.addr_bits = HostMap(cfg).addr_bits
        self.mangle = mangle
        self.silent = silent
        self.pending = b""
        self.requests = []

    def answer(self, frame):
        try:
            req = decode_request(frame, self.addr_bits)
        except FrameError as exc:
            return encode_response(exc.status)
        self.requests.append(req)
        if req.cmd == Cmd.PING:
            return encode_response(Status.OK, ping_words(self.addr_bits))
        if req.cmd == Cmd.WRITE:
            for i, word in enumerate(req.words):
                self.core.write(req.addr + i, word)
            return encode_response(Status.OK)
        return encode_response(Status.OK, [self.core.read(req.addr + i)
                                           for i in range(req.length)])

    def write(self, data):
        response = self.answer(data)
        if self.mangle is not None:
            response = self.mangle(response)
        if not self.silent:
            self.pending += response

    def read(self, n, timeout=None):
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def discard_input(self):
        self.pending = b""


def test_ping_and_config():
    board = FakeBoard()
    client = HostLinkClient(board, CFG)
    info = client.ping()
    assert info.addr_bits == HostMap(CFG).addr_bits and info.max_words == MAX_WORDS
    client.check_config()


def test_ping_refuses_another_configuration():
    client = HostLinkClient(FakeBoard(), CoreConfig())
    with pytest.raises(LinkError, match="has a 12-bit host address, this configuration needs "
                                        "18: a bitstream for another configuration"):
        client.ping()


def test_check_config_names_the_differences():
    board = FakeBoard()
    board.core.regs[Reg.ROWS] = 8
    with pytest.raises(LinkError, match="not configured as expected: ROWS 8 .expected 4."):
        HostLinkClient(board, CFG).check_config()


def test_words_are_split_into_frames():
    board = FakeBoard()
    client = HostLinkClient(board, CFG)
    base = HostMap(CFG).addr(Region.ACC, 0, 0)
    words = list(range(1, 2 * MAX_WORDS + 10))
    client.write_words(base, words)
    assert [r.length for r in board.requests] == [MAX_WORDS, MAX_WORDS, 9]
    hmap = HostMap(CFG)
    want = [w if hmap.mapped(base + i) else 0 for i, w in enumerate(words)]
    assert 0 < want.count(0) < len(want)      # the span crosses unmapped rows
    assert client.read_words(base, len(words)) == want


def test_a_whole_region_is_a_few_full_frames():
    """The word-major map makes every word of every row of a region consecutive: an image
    loads in frames of MAX_WORDS, whatever the row width."""
    rng = np.random.default_rng(4)
    board = FakeBoard()
    client = HostLinkClient(board, CFG)
    state, _ = random_case(CFG, rng)
    client.load_state(state)
    hmap = HostMap(CFG)
    words = sum(hmap.depth(r) * hmap.words_per_row(r) for _, r in SRAM_FIELDS)
    assert sum(r.length for r in board.requests) == words
    frames = sum(-(-hmap.depth(r) // MAX_WORDS) * hmap.words_per_row(r) for _, r in SRAM_FIELDS)
    assert len(board.requests) <= frames


def test_load_state_and_read_back():
    rng = np.random.default_rng(3)
    board = FakeBoard()
    client = HostLinkClient(board, CFG)
    state, _ = random_case(CFG, rng)
    state.acc[:] = rng.integers(-(1 << 31), 1 << 31, size=state.acc.shape)
    state.bias[:] = rng.integers(-(1 << 31), 1 << 31, size=state.bias.shape)
    state.shift[:] = rng.integers(0, 256, size=state.shift.shape)
    client.load_state(state)
    for name in ("prog", "act", "wgt", "acc"):
        assert np.array_equal(client.read_sram(name), getattr(state, name)), name
    hmap = HostMap(CFG)
    assert client.read_region("qparam") == [row_words(hmap, state, "qparam", r)
                                            for r in range(CFG.qparam_depth)]
    # With the previous state known, only what differs is written.
    board.requests.clear()
    changed = state.copy()
    changed.act[5, 2] += 1
    client.load_state(changed, previous=state)
    assert [(r.cmd, r.addr, r.length) for r in board.requests] == [
        (Cmd.WRITE, hmap.addr(Region.ACT, 5, 0), 1)]


def test_run_matches_the_model():
    rng = np.random.default_rng(5)
    board = FakeBoard()
    client = HostLinkClient(board, CFG)
    for _ in range(3):
        state, description = random_case(CFG, rng, board.core.state)
        expected = state.copy()
        model = run(expected)
        result = client.run(state, previous=board.core.state.copy())
        assert (result.error, result.cycles, result.mac_cycles, result.instret,
                result.err_pc) == (model.error, model.cycles, model.mac_cycles, model.instret,
                                   model.err_pc), description
        assert np.array_equal(result.act, expected.act) and np.array_equal(result.acc,
                                                                           expected.acc)


def test_async_client_drives_the_same_protocol():
    class AsyncBoard(AsyncTransport):
        name = "async0"

        def __init__(self):
            self.board = FakeBoard()

        async def write(self, data):
            self.board.write(data)

        async def read(self, n, timeout=None):
            return self.board.read(n)

    async def main():
        client = AsyncHostLinkClient(AsyncBoard(), CFG)
        await client.ping()
        await client.write_words(0x400, [1, 2, 3])
        return await client.read_words(0x400, 1)

    assert asyncio.run(main()) == [1]


# -- failures ----------------------------------------------------------------------------------

def test_silent_port():
    client = HostLinkClient(FakeBoard(silent=True), CFG)
    with pytest.raises(LinkError, match=r"^no answer from the board on fake0 within 0.05 s "
                                        r"\(to a PING\)$"):
        client.ping()


def test_bad_crc_in_the_response():
    def corrupt(response):
        response = bytearray(response)
        response[4] ^= 0x10
        return bytes(response)
    client = HostLinkClient(FakeBoard(mangle=corrupt), CFG)
    with pytest.raises(LinkError, match=r"^bad CRC in the response from the board on fake0: "
                                        r"response CRC 0x...., computed 0x.... \(to a READ of "
                                        r"2 words at 0x400\)$"):
        client.read_words(0x400, 2)


@pytest.mark.parametrize("keep, message", [
    (2, "truncated response from the board on fake0: 2 of 3 bytes"),
    (5, "truncated response from the board on fake0: 5 of 13 bytes"),
    (12, "truncated response from the board on fake0: 12 of 13 bytes")])
def test_truncated_response(keep, message):
    client = HostLinkClient(FakeBoard(mangle=lambda r: r[:keep]), CFG)
    with pytest.raises(LinkError, match="^" + message + r" within 0.05 s \(to a READ"):
        client.read_words(0x400, 2)


def test_error_answers():
    client = HostLinkClient(FakeBoard(mangle=lambda r: encode_response(Status.TIMEOUT)), CFG)
    with pytest.raises(LinkError, match=r"^the board on fake0 answered TIMEOUT to a WRITE of 1 "
                                        r"word at 0x400: the request arrived incomplete$"):
        client.write_words(0x400, [7])
    client = HostLinkClient(FakeBoard(), CFG)       # a 12-bit host address space
    with pytest.raises(LinkError, match="answered BAD_ADDR to a READ of 2 words at 0xfff: "
                                        "address beyond the core's host address space"):
        client.read_words(0xFFF, 2)


def test_garbage_responses():
    client = HostLinkClient(FakeBoard(mangle=lambda r: b"\x00" + r[1:]), CFG)
    with pytest.raises(LinkError, match="bad response from the board on fake0: a response "
                                        "starts with the sync byte 0xa5, not 0x00"):
        client.ping()
    client = HostLinkClient(FakeBoard(mangle=lambda r: encode_response(Status.OK)), CFG)
    with pytest.raises(LinkError, match="answered 0 words to a READ of 3 words at 0x400, "
                                        "expected 3"):
        client.read_words(0x400, 3)


def test_stale_input_is_discarded():
    board = FakeBoard()
    client = HostLinkClient(board, CFG)
    board.pending = b"\xa5\x00\x00junk"      # e.g. the answer to an abandoned request
    assert client.ping().addr_bits == HostMap(CFG).addr_bits


def test_busy_core_times_out():
    board = FakeBoard()
    board.core.busy_polls = 10 ** 9
    client = HostLinkClient(board, CFG)
    client.start()
    with pytest.raises(LinkError, match="still busy after"):
        client.wait(timeout=0.05)


# -- pyserial ----------------------------------------------------------------------------------

def test_missing_serial_port():
    with pytest.raises(LinkError, match=r"^cannot open /dev/lockstep-no-such-port: "):
        SerialTransport("/dev/lockstep-no-such-port")


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(slave)
    os.close(master)


def test_serial_port_silent(pty_pair):
    _master, path = pty_pair
    with SerialTransport(path, timeout=0.2) as transport:
        client = HostLinkClient(transport, CFG)
        with pytest.raises(LinkError, match=f"^no answer from the board on {path} within "
                                            r"0.2 s \(to a PING\)$"):
            client.ping()


def test_serial_port_round_trip(pty_pair):
    """The same client and the real pyserial transport against a board behind a pty."""
    master, path = pty_pair
    board = FakeBoard()
    stop = threading.Event()

    def serve():
        buffer = b""
        while not stop.is_set():
            try:
                buffer += os.read(master, 4096)
            except OSError:
                return
            while len(buffer) >= 3 and len(buffer) >= request_length(buffer):
                n = request_length(buffer)
                os.write(master, board.answer(buffer[:n]))
                buffer = buffer[n:]

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with SerialTransport(path, timeout=1.0) as transport:
            client = HostLinkClient(transport, CFG)
            client.ping()
            client.write_words(0x400, list(range(100)))
            assert client.read_words(0x400, 1) == [0]
            assert client.read_words(0x410, 1) == [16]
    finally:
        stop.set()
