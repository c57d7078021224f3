"""Host side of the host link: talk to a Lockstep core on a board over a serial port.

The protocol is defined once, in rtl/hostlink_protocol.py; docs/host-protocol.md describes it.

The client logic is sans-IO: :class:`LinkProtocol` turns each operation (write words, read
words, load a model state, run a program...) into a generator that yields what to send and how
many bytes to receive, and gets the received bytes back. Two thin drivers run those generators:

* :class:`HostLinkClient`, synchronous, over a :class:`Transport` such as
  :class:`SerialTransport` (pyserial, for a board);
* :class:`AsyncHostLinkClient`, over an :class:`AsyncTransport` whose ``write`` and ``read``
  are coroutines (the cocotb bench drives the simulated UART pins with one).

so that the same protocol code is what the simulation tests and what talks to the board.

Every failure is a :class:`LinkError` with a one-line message.
"""

import time
from dataclasses import dataclass

import numpy as np

from rtl.hostlink_protocol import (
    BITS_PER_BYTE,
    DEFAULT_BAUD,
    MAX_WORDS,
    RESPONSE_HEADER_BYTES,
    STATUS_MEANING,
    Cmd,
    FrameError,
    Status,
    decode_request,
    decode_response,
    encode_response,
    parse_ping,
    ping_request,
    read_request,
    response_length,
    write_request,
)
from rtl.hostmap import (
    CTRL_START,
    SRAM_FIELDS,
    STATUS_BUSY,
    STATUS_DONE,
    STATUS_ERROR_SHIFT,
    HostMap,
    Reg,
    Region,
    row_words,
)
from rtl.isa import Error

__all__ = ["LinkError", "Transport", "AsyncTransport", "SerialTransport", "TrafficCounter",
           "LinkTraffic", "link_traffic", "LinkProtocol", "HostLinkClient",
           "AsyncHostLinkClient", "RunStatus", "DEFAULT_BAUD"]

# Merge two runs of words into one frame when at most this many addresses lie between them
# (written only where that changes nothing: LinkProtocol.write_scattered; read and dropped):
# a frame costs 9 bytes of request header and CRC plus a 5-byte response, about 3.5 words.
MERGE_GAP_WORDS = 3


class LinkError(RuntimeError):
    """The board did not answer, answered garbage, or refused a request."""


# -- transports --------------------------------------------------------------------------------

class Transport:
    """A byte pipe to the board (synchronous).

    ``write(data)`` sends all of ``data``; ``read(n, timeout=None)`` returns up to ``n`` bytes,
    fewer only if ``timeout`` seconds (None: the transport's own) passed first;
    ``discard_input()`` drops bytes received but not read. ``name`` names the port in error
    messages.
    """

    name = "transport"
    timeout = 1.0

    def write(self, data):
        raise NotImplementedError

    def read(self, n, timeout=None):
        raise NotImplementedError

    def discard_input(self):
        pass

    def close(self):
        pass

    def timeout_text(self):
        return f"{float(self.timeout)} s"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class AsyncTransport(Transport):
    """As :class:`Transport`, with ``write`` and ``read`` coroutines."""

    async def write(self, data):
        raise NotImplementedError

    async def read(self, n, timeout=None):
        raise NotImplementedError


class SerialTransport(Transport):
    """A serial port (pyserial), 8N1, ``baud`` bits per second, ``timeout`` seconds for a
    response to arrive."""

    def __init__(self, port, baud=DEFAULT_BAUD, timeout=1.0):
        try:
            import serial
        except ImportError:
            raise LinkError("pyserial is not installed: `pip install pyserial`") from None
        self.name = port
        self.timeout = timeout
        try:
            self._serial = serial.Serial(port, baudrate=baud, timeout=timeout,
                                         write_timeout=max(1.0, timeout))
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(f"cannot open {port}: {exc}") from None

    def write(self, data):
        import serial
        try:
            self._serial.write(data)
            self._serial.flush()
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"cannot write to {self.name}: {exc}") from None

    def read(self, n, timeout=None):
        import serial
        try:
            self._serial.timeout = self.timeout if timeout is None else timeout
            return bytes(self._serial.read(n))
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"cannot read from {self.name}: {exc}") from None

    def discard_input(self):
        self._serial.reset_input_buffer()

    def close(self):
        self._serial.close()


@dataclass(frozen=True)
class LinkTraffic:
    """What a sequence of requests puts on the serial line: frames, and bytes each way."""
    frames: int
    bytes_sent: int
    bytes_received: int

    @property
    def bits(self):
        return (self.bytes_sent + self.bytes_received) * BITS_PER_BYTE

    def wire_seconds(self, baud):
        """Time on the line at ``baud``, 8N1, back to back: a lower bound, since the board
        takes a few clock cycles to answer each frame (docs/host-protocol.md, "Timing")."""
        return self.bits / baud


class TrafficCounter(Transport):
    """An ideal board that accepts every request (READs answer zeros) and counts the traffic:
    with :class:`HostLinkClient` it tells what an operation costs on the line, exactly, without
    a board (``lockstep.hostlink`` frames the same requests for a real one)."""

    name = "the traffic counter"

    def __init__(self, addr_bits):
        self.addr_bits = addr_bits
        self.frames = self.bytes_sent = self.bytes_received = 0
        self._pending = b""

    def write(self, data):
        request = decode_request(data, self.addr_bits)
        if request.cmd == Cmd.PING:
            raise LinkError("the traffic counter does not answer PING")
        words = [0] * request.length if request.cmd == Cmd.READ else []
        self._pending = encode_response(Status.OK, words)
        self.frames += 1
        self.bytes_sent += len(data)
        self.bytes_received += len(self._pending)

    def read(self, n, timeout=None):
        data, self._pending = self._pending[:n], self._pending[n:]
        return data

    @property
    def traffic(self):
        return LinkTraffic(self.frames, self.bytes_sent, self.bytes_received)


def link_traffic(cfg, operation, *args):
    """The :class:`LinkTraffic` of ``HostLinkClient.<operation>(*args)`` for a core of
    configuration ``cfg``, e.g. ``link_traffic(cfg, "load_state", state)``; or, when
    ``operation`` is callable, of ``operation(client)``."""
    counter = TrafficCounter(HostMap(cfg).addr_bits)
    client = HostLinkClient(counter, cfg)
    if callable(operation):
        operation(client, *args)
    else:
        getattr(client, operation)(*args)
    return counter.traffic


# -- the protocol, sans IO ---------------------------------------------------------------------

@dataclass(frozen=True)
class _Send:
    data: bytes


@dataclass(frozen=True)
class _Receive:
    count: int


class _Discard:
    pass


@dataclass(frozen=True)
class RunStatus:
    busy: bool
    done: bool
    error: Error

    @classmethod
    def from_word(cls, word):
        return cls(bool(word & STATUS_BUSY), bool(word & STATUS_DONE),
                   Error(word >> STATUS_ERROR_SHIFT & 0xF))


def _describe(cmd, addr, count):
    if cmd == Cmd.PING:
        return "PING"
    return f"{cmd.name} of {count} word{'s' * (count != 1)} at {addr:#x}"


def _spans(items, fill, gap=MERGE_GAP_WORDS, limit=MAX_WORDS):
    """Group (address, word) pairs, addresses increasing, into (first address, words) runs of at
    most ``limit`` words, bridging holes of at most ``gap`` addresses with ``fill(address)``
    where it gives a word (None: that hole cannot be bridged)."""
    spans = []
    for addr, word in items:
        if spans:
            start, words = spans[-1]
            end = start + len(words)
            hole = addr - end
            if 0 <= hole <= gap and len(words) + hole + 1 <= limit:
                filler = [fill(a) for a in range(end, addr)]
                if None not in filler:
                    words.extend([*filler, word])
                    continue
        spans.append((addr, [word]))
    return spans


class LinkProtocol:
    """The client's logic without I/O: every public method returns a generator that yields
    ``_Send``, ``_Receive`` and ``_Discard`` steps, is sent the bytes each ``_Receive`` got, and
    returns the operation's result (``yield from`` composes them)."""

    def __init__(self, cfg, port_name="the link", timeout_text="the timeout",
                 max_words=MAX_WORDS):
        self.cfg = cfg
        self.map = HostMap(cfg)
        self.port_name = port_name
        self.timeout_text = timeout_text
        self.max_words = max_words

    def _receive(self, count, what, have=0):
        data = yield _Receive(count)
        if not data:
            raise LinkError(f"no answer from the board on {self.port_name} within "
                            f"{self.timeout_text}{what}")
        if len(data) < count:
            raise LinkError(f"truncated response from the board on {self.port_name}: "
                            f"{len(data) + have} of {count + have} bytes within "
                            f"{self.timeout_text}{what}")
        return data

    def exchange(self, request, cmd, addr=0, count=0, expect_words=0):
        """Send one request frame, receive and check its response; returns the payload words."""
        what = f" (to a {_describe(cmd, addr, count)})"
        yield _Discard()
        yield _Send(request)
        header = yield from self._receive(RESPONSE_HEADER_BYTES, what)
        try:
            total = response_length(header)
        except FrameError as exc:
            raise LinkError(f"bad response from the board on {self.port_name}: {exc}"
                            f"{what}") from None
        rest = yield from self._receive(total - len(header), what, have=len(header))
        try:
            response = decode_response(header + rest)
        except FrameError as exc:
            if exc.status == Status.BAD_CRC:
                message = f"bad CRC in the response from the board on {self.port_name}"
            else:
                message = f"bad response from the board on {self.port_name}"
            raise LinkError(f"{message}: {exc}{what}") from None
        if response.status != Status.OK:
            raise LinkError(f"the board on {self.port_name} answered {response.status.name} to "
                            f"a {_describe(cmd, addr, count)}: "
                            f"{STATUS_MEANING[response.status]}")
        if len(response.words) != expect_words:
            raise LinkError(f"the board on {self.port_name} answered {len(response.words)} "
                            f"words to a {_describe(cmd, addr, count)}, expected "
                            f"{expect_words}")
        return list(response.words)

    # -- words and registers -------------------------------------------------------------------

    def ping(self):
        """PING the link; checks that it serves a core with this configuration's address map."""
        words = yield from self.exchange(ping_request(), Cmd.PING, expect_words=2)
        try:
            info = parse_ping(words)
        except FrameError as exc:
            raise LinkError(f"{exc} on {self.port_name}") from None
        if info.addr_bits != self.map.addr_bits:
            raise LinkError(f"the core on {self.port_name} has a {info.addr_bits}-bit host "
                            f"address, this configuration needs {self.map.addr_bits}: a "
                            "bitstream for another configuration?")
        return info

    def write_words(self, addr, words):
        """Write ``words`` to consecutive word addresses from ``addr`` (split into frames)."""
        words = [int(w) & 0xFFFF_FFFF for w in words]
        for start in range(0, len(words), self.max_words):
            chunk = words[start:start + self.max_words]
            yield from self.exchange(write_request(addr + start, chunk), Cmd.WRITE,
                                     addr + start, len(chunk))

    def read_words(self, addr, n):
        """Read ``n`` words from consecutive word addresses from ``addr``."""
        out = []
        for start in range(0, n, self.max_words):
            count = min(self.max_words, n - start)
            out += yield from self.exchange(read_request(addr + start, count), Cmd.READ,
                                            addr + start, count, expect_words=count)
        return out

    def write_scattered(self, items, known=None):
        """Write (address, word) pairs, addresses increasing, in as few frames as sensible.
        Holes of up to MERGE_GAP_WORDS addresses are written too where that changes nothing:
        addresses that map to nothing (written 0), and those whose word ``known`` (a dict of
        address to word, what the core holds) gives."""
        known = {} if known is None else known

        def fill(addr):
            return known.get(addr, None if self.map.mapped(addr) else 0)
        for addr, words in _spans(items, fill, limit=self.max_words):
            yield from self.write_words(addr, words)

    def read_scattered(self, addrs):
        """Read the words at ``addrs`` (any order); returns them in that order."""
        got = {}
        for addr, words in _spans([(a, 0) for a in sorted(set(addrs))], lambda a: 0,
                                  limit=self.max_words):
            for i, word in enumerate((yield from self.read_words(addr, len(words)))):
                got[addr + i] = word
        return [got[a] for a in addrs]

    def read_reg(self, reg):
        return (yield from self.read_words(self.map.reg(reg), 1))[0]

    def write_reg(self, reg, value):
        yield from self.write_words(self.map.reg(reg), [value])

    def check_config(self):
        """Compare the core's identification registers with this configuration."""
        regs = sorted(self.map.register_values())
        words = yield from self.read_words(self.map.reg(regs[0]), regs[-1] - regs[0] + 1)
        wrong = [f"{reg.name} {words[reg - regs[0]]} (expected {value})"
                 for reg, value in self.map.register_values().items()
                 if words[reg - regs[0]] != value]
        if wrong:
            raise LinkError(f"the core on {self.port_name} is not configured as expected: "
                            + ", ".join(wrong))

    # -- SRAM images ---------------------------------------------------------------------------

    def _image_words(self, state):
        """{host address: word} of every SRAM image of ``state``."""
        words = {}
        for name, region in SRAM_FIELDS:
            for row in range(self.map.depth(region)):
                for word, value in enumerate(row_words(self.map, state, name, row)):
                    words[self.map.addr(region, row, word)] = value
        return words

    def load_state(self, state, previous=None):
        """Write every SRAM image of ``state`` (a sim.model.CoreState). With ``previous``, the
        state the core is known to hold, only the words that differ are written."""
        new = self._image_words(state)
        if previous is None:
            items, known = sorted(new.items()), None
        else:
            old = self._image_words(previous)
            items, known = sorted((a, w) for a, w in new.items() if old[a] != w), old
        yield from self.write_scattered(items, known)

    def read_region(self, name):
        """SRAM image ``name`` (see rtl.hostmap.SRAM_FIELDS) as a list of rows of words."""
        region = dict(SRAM_FIELDS)[name]
        per_row, depth = self.map.words_per_row(region), self.map.depth(region)
        addrs = [self.map.addr(region, row, w) for row in range(depth) for w in range(per_row)]
        words = yield from self.read_scattered(addrs)
        return [words[r * per_row:(r + 1) * per_row] for r in range(depth)]

    def read_sram(self, name):
        """SRAM ``name`` ("prog", "act", "wgt", "acc") in the layout of sim.model.CoreState."""
        region = dict(SRAM_FIELDS)[name]
        if region == Region.QPARAM:
            raise ValueError("read the qparam SRAM with read_region('qparam')")
        rows = [self.map.words_to_row(region, w) for w in (yield from self.read_region(name))]
        dtype = {"prog": np.uint64, "act": np.int8, "wgt": np.int8, "acc": np.int32}[name]
        return np.array([r[0] for r in rows] if name == "prog" else rows, dtype=dtype)

    # -- running -------------------------------------------------------------------------------

    def status(self):
        return RunStatus.from_word((yield from self.read_reg(Reg.STATUS)))

    def start(self):
        yield from self.write_reg(Reg.CTRL, CTRL_START)

    def wait(self, keep_polling):
        """Poll STATUS until the core is not busy; ``keep_polling(polls)`` says whether to go
        on after ``polls`` busy answers."""
        polls = 0
        while True:
            status = yield from self.status()
            if not status.busy:
                break
            polls += 1
            if not keep_polling(polls):
                raise LinkError(f"the core on {self.port_name} is still busy after {polls} "
                                "STATUS polls")
        if not status.done:
            raise LinkError(f"the core on {self.port_name} is neither busy nor done: was it "
                            "started?")
        return status

    def run(self, state, keep_polling, previous=None, readback=("act", "acc")):
        """Load ``state``, start its program, wait for the end, read the counters and the SRAMs
        in ``readback``. Returns a sim.rtlsim.RtlResult (SRAMs not read back are None)."""
        from sim.rtlsim import RtlResult
        yield from self.load_state(state, previous)
        yield from self.start()
        status = yield from self.wait(keep_polling)
        counters = yield from self.read_words(self.map.reg(Reg.CYCLES), 4)
        assert Reg.ERR_PC - Reg.CYCLES == 3
        srams = {}
        for name in readback:
            srams[name] = yield from self.read_sram(name)
        return RtlResult(error=status.error, cycles=counters[0], mac_cycles=counters[1],
                         instret=counters[2], err_pc=counters[3], act=srams.get("act"),
                         acc=srams.get("acc"))


# -- drivers -----------------------------------------------------------------------------------

class HostLinkClient:
    """Synchronous client over a :class:`Transport` (e.g. ``SerialTransport("/dev/ttyUSB0")``)
    for a core of configuration ``cfg``."""

    def __init__(self, transport, cfg, max_words=MAX_WORDS):
        self.transport = transport
        self.cfg = cfg
        self.protocol = LinkProtocol(cfg, transport.name, transport.timeout_text(), max_words)

    def _drive(self, operation):
        reply = None
        try:
            while True:
                step = operation.send(reply)
                reply = None
                if isinstance(step, _Send):
                    self.transport.write(step.data)
                elif isinstance(step, _Receive):
                    reply = self.transport.read(step.count)
                else:
                    self.transport.discard_input()
        except StopIteration as stop:
            return stop.value

    def perform(self, operation):
        """Drive a protocol operation (a generator over ``self.protocol``, e.g. one of
        lockstep/held.py's) to its end; its result."""
        return self._drive(operation)

    def ping(self):
        return self._drive(self.protocol.ping())

    def check_config(self):
        return self._drive(self.protocol.check_config())

    def write_words(self, addr, words):
        return self._drive(self.protocol.write_words(addr, words))

    def read_words(self, addr, n):
        return self._drive(self.protocol.read_words(addr, n))

    def write_scattered(self, items, known=None):
        return self._drive(self.protocol.write_scattered(items, known))

    def read_scattered(self, addrs):
        return self._drive(self.protocol.read_scattered(addrs))

    def read_reg(self, reg):
        return self._drive(self.protocol.read_reg(reg))

    def write_reg(self, reg, value):
        return self._drive(self.protocol.write_reg(reg, value))

    def load_state(self, state, previous=None):
        return self._drive(self.protocol.load_state(state, previous))

    def read_region(self, name):
        return self._drive(self.protocol.read_region(name))

    def read_sram(self, name):
        return self._drive(self.protocol.read_sram(name))

    def status(self):
        return self._drive(self.protocol.status())

    def start(self):
        return self._drive(self.protocol.start())

    def wait(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        return self._drive(self.protocol.wait(lambda polls: time.monotonic() < deadline))

    def run(self, state, timeout=10.0, previous=None, readback=("act", "acc")):
        """Load, start, wait (at most ``timeout`` seconds for the program), read back."""
        deadline = []

        def keep_polling(polls):
            if not deadline:
                deadline.append(time.monotonic() + timeout)
            return time.monotonic() < deadline[0]
        return self._drive(self.protocol.run(state, keep_polling, previous, readback))


class AsyncHostLinkClient(HostLinkClient):
    """The same client over an :class:`AsyncTransport`: every operation is a coroutine."""

    async def _drive(self, operation):
        reply = None
        try:
            while True:
                step = operation.send(reply)
                reply = None
                if isinstance(step, _Send):
                    await self.transport.write(step.data)
                elif isinstance(step, _Receive):
                    reply = await self.transport.read(step.count)
                else:
                    self.transport.discard_input()
        except StopIteration as stop:
            return stop.value

    def wait(self, max_polls=100_000):
        return self._drive(self.protocol.wait(lambda polls: polls < max_polls))

    def run(self, state, max_polls=100_000, previous=None, readback=("act", "acc")):
        return self._drive(self.protocol.run(state, lambda polls: polls < max_polls, previous,
                                             readback))
