"""The host link's frame engine: request frames in, bytes, checked, performed on the host bus,
and answered (rtl/hostlink_protocol.py, docs/host-protocol.md). :class:`rtl.hostlink.HostLink`
puts it between a UART receiver and transmitter."""

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .hostbus import HostBusSignature
from .hostlink_protocol import (
    CRC_INIT,
    MAX_WORDS,
    SYNC,
    WORD_BYTES,
    Cmd,
    Status,
    crc16_update,
    ping_words,
)
from .hostmap import DATA_BITS, HostMap

__all__ = ["FrameEngine", "crc16_step", "HEADER_FIELD_BYTES"]

HEADER_FIELD_BYTES = 6      # CMD, LEN, ADDR[4]: the bytes between SYNC and the payload


def crc16_step(crc, byte):
    """Amaranth expression: the 16-bit ``crc`` after one more ``byte``.

    The update is linear over GF(2) (no constant terms), so each result bit is the XOR of the
    input bits whose unit vectors set it in :func:`rtl.hostlink_protocol.crc16_update`: the
    XOR network is derived from the pure-Python definition, not written out a second time."""
    inputs = [(crc[i], crc16_update(1 << i, 0)) for i in range(16)]
    inputs += [(byte[i], crc16_update(0, 1 << i)) for i in range(8)]
    bits = []
    for j in range(16):
        taps = [bit for bit, image in inputs if image >> j & 1]
        out = taps[0]
        for tap in taps[1:]:
            out = out ^ tap
        bits.append(out)
    return Cat(*bits)


class FrameEngine(wiring.Component):
    """Receives request frames byte by byte, performs them on the host bus, answers.

    Parameters
    ----------
    cfg : CoreConfig
        The core behind the bus (sets the address width).
    timeout_cycles : int
        Cycles of silence in the middle of a frame after which the frame is dropped and
        answered with TIMEOUT.

    Members
    -------
    i : In(stream.Signature(8))
        Received bytes; always ready (a byte the engine has no use for is dropped).
    o : Out(stream.Signature(8))
        Bytes of the response, each held until ``ready``.
    bus : Out(HostBusSignature(cfg))
        The host bus; the engine is its initiator.

    Behaviour (the rules are in rtl/hostlink_protocol.py): bytes are dropped until a SYNC; the
    frame's bytes go through the CRC as they arrive and a WRITE payload is kept in a
    ``MAX_WORDS`` x 32-bit memory; only when the CRC bytes are in are CRC, CMD, LEN and ADDR
    checked, and only a request that passes every check touches the bus (for a bad CRC,
    proved on frames of up to one word: tests/test_formal.py). While a request is executed
    and answered, received bytes are dropped.

    Timing
    ------
    A WRITE of n words takes 3n cycles on the bus after its last CRC byte (one buffer
    read, its register, one bus write per word); a READ reads each word (one bus cycle, data
    ``cfg.host_read_latency`` cycles later, plus any bus register outside) just before its
    four bytes are offered. The response's SYNC is offered on ``o`` 2 (READ, PING, errors) or
    3n + 2 (WRITE) cycles after the request's last byte was received.
    """

    def __init__(self, cfg, timeout_cycles):
        self.cfg = cfg
        self.map = HostMap(cfg)
        self.timeout_cycles = timeout_cycles
        #: The running CRC of the frame being received (and of the response being sent): an
        #: attribute so that the formal harness (sim/formal.py) can state what it must be.
        self.crc = Signal(16, name="crc")
        super().__init__({
            "i": In(stream.Signature(8, always_ready=True)),
            "o": Out(stream.Signature(8)),
            "bus": Out(HostBusSignature(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        addr_bits = self.map.addr_bits
        timeout_cycles = self.timeout_cycles

        m.submodules.payload = buf = Memory(shape=DATA_BITS, depth=MAX_WORDS, init=[])
        buf_w, buf_r = buf.write_port(), buf.read_port()

        # The engine takes every received byte at once and ignores it where it has no use.
        got, byte = self.i.valid, self.i.payload
        send = self.o

        cmd = Signal(8)
        length = Signal(8)
        addr = Signal(32)
        idx = Signal(8)                      # word of the payload
        count = Signal(range(HEADER_FIELD_BYTES))   # byte of the header or of a word
        word = Signal(DATA_BITS)
        crc = self.crc
        crc_rx = Signal(16)
        status = Signal(8)
        resp_len = Signal(8)
        # Cycles of silence left before the timeout, counting down to -1: the test is its sign
        # bit, not a wide compare in front of the FSM.
        timer = Signal(range(-1, timeout_cycles))
        timer_restart = timeout_cycles - 2

        crc_in = Signal(8)
        crc_next = Signal(16)
        m.d.comb += [crc_in.eq(byte), crc_next.eq(crc16_step(crc, crc_in))]

        bus = self.bus
        # addr + idx, kept in a register that moves with idx: an adder in front of the core's
        # address decode was the iCE40 build's critical path.
        bus_addr = Signal(addr_bits)
        # What a WRITE puts on the bus comes from a register, not straight from the buffer's
        # block RAM: its output into the core's control decode was the ECP5 build's critical
        # path after the read path.
        w_data = Signal(DATA_BITS)
        m.d.sync += w_data.eq(buf_r.data)
        m.d.comb += [
            bus.addr.eq(bus_addr),
            bus.w_data.eq(w_data),
            buf_r.addr.eq(idx),
            buf_w.addr.eq(idx),
            buf_w.data.eq(Cat(word[8:], byte)),
        ]

        # The checks, in the protocol's order (hostlink_protocol.check_request). The header is
        # complete at least two cycles before CHECK (the CRC bytes come after it), so they are
        # evaluated into registers every cycle: the address compare is not in front of the FSM.
        known, len_ok, addr_ok = Signal(), Signal(), Signal()
        m.d.sync += [
            known.eq((cmd == Cmd.PING) | (cmd == Cmd.WRITE) | (cmd == Cmd.READ)),
            len_ok.eq(Mux(cmd == Cmd.PING, length == 0, (length != 0) & (length <= MAX_WORDS))),
            addr_ok.eq((cmd == Cmd.PING) | ((addr[addr_bits:] == 0)
                                            & (addr[:addr_bits] + length <= (1 << addr_bits)))),
        ]
        magic, info = ping_words(addr_bits)

        def receive_timeout():
            """In a state that waits for a byte of the frame: count the silence."""
            with m.If(got):
                m.d.sync += timer.eq(timer_restart)
            with m.Elif(timer < 0):
                m.d.sync += [status.eq(Status.TIMEOUT), resp_len.eq(0)]
                m.next = "RESP_SYNC"
            with m.Else():
                m.d.sync += timer.eq(timer - 1)

        def transmit(value, next_state):
            """Offer ``value`` to the transmitter; go to ``next_state`` once it is taken."""
            m.d.comb += [send.valid.eq(1), send.payload.eq(value), crc_in.eq(value)]
            with m.If(send.ready):
                m.next = next_state

        with m.FSM():
            with m.State("IDLE"):
                with m.If(got & (byte == SYNC)):
                    m.d.sync += [crc.eq(CRC_INIT), count.eq(0), timer.eq(timer_restart)]
                    m.next = "HEADER"

            with m.State("HEADER"):
                receive_timeout()
                with m.If(got):
                    m.d.sync += [crc.eq(crc_next), count.eq(count + 1)]
                    with m.Switch(count):
                        with m.Case(0):
                            m.d.sync += cmd.eq(byte)
                        with m.Case(1):
                            m.d.sync += length.eq(byte)
                        with m.Default():
                            m.d.sync += addr.eq(Cat(addr[8:], byte))
                    with m.If(count == HEADER_FIELD_BYTES - 1):
                        m.d.sync += [idx.eq(0), count.eq(0), bus_addr.eq(Cat(addr[8:], byte))]
                        with m.If((cmd == Cmd.WRITE) & (length != 0)):
                            m.next = "PAYLOAD"
                        with m.Else():
                            m.next = "CRC_LO"

            with m.State("PAYLOAD"):
                # Every announced byte is received, even beyond MAX_WORDS (that is BAD_LEN,
                # answered after the CRC); only the first MAX_WORDS words are kept.
                receive_timeout()
                with m.If(got):
                    m.d.sync += [crc.eq(crc_next), word.eq(Cat(word[8:], byte)),
                                 count.eq(count + 1)]
                    with m.If(count == WORD_BYTES - 1):
                        m.d.comb += buf_w.en.eq(idx < MAX_WORDS)
                        m.d.sync += [count.eq(0), idx.eq(idx + 1), bus_addr.eq(bus_addr + 1)]
                        with m.If(idx == length - 1):
                            m.next = "CRC_LO"

            with m.State("CRC_LO"):
                receive_timeout()
                with m.If(got):
                    m.d.sync += crc_rx[:8].eq(byte)
                    m.next = "CRC_HI"

            with m.State("CRC_HI"):
                receive_timeout()
                with m.If(got):
                    m.d.sync += crc_rx[8:].eq(byte)
                    m.next = "CHECK"

            with m.State("CHECK"):
                m.d.sync += [idx.eq(0), resp_len.eq(0), bus_addr.eq(addr)]
                with m.If(crc != crc_rx):
                    m.d.sync += status.eq(Status.BAD_CRC)
                    m.next = "RESP_SYNC"
                with m.Elif(~known):
                    m.d.sync += status.eq(Status.BAD_CMD)
                    m.next = "RESP_SYNC"
                with m.Elif(~len_ok):
                    m.d.sync += status.eq(Status.BAD_LEN)
                    m.next = "RESP_SYNC"
                with m.Elif(~addr_ok):
                    m.d.sync += status.eq(Status.BAD_ADDR)
                    m.next = "RESP_SYNC"
                with m.Else():
                    m.d.sync += status.eq(Status.OK)
                    with m.Switch(cmd):
                        with m.Case(Cmd.WRITE):
                            m.next = "WR_FETCH"
                        with m.Case(Cmd.READ):
                            m.d.sync += resp_len.eq(length)
                            m.next = "RESP_SYNC"
                        with m.Default():
                            m.d.sync += resp_len.eq(2)
                            m.next = "RESP_SYNC"

            # -- WRITE: the checked payload goes onto the bus, one word per three cycles -------
            with m.State("WR_FETCH"):
                m.next = "WR_HOLD"           # buf_r.data is buffer[idx] in the next cycle

            with m.State("WR_HOLD"):
                m.next = "WR_BUS"            # and w_data the cycle after

            with m.State("WR_BUS"):
                m.d.comb += bus.w_en.eq(1)
                m.d.sync += [idx.eq(idx + 1), bus_addr.eq(bus_addr + 1)]
                with m.If(idx == length - 1):
                    m.next = "RESP_SYNC"
                with m.Else():
                    m.next = "WR_FETCH"

            # -- the response ------------------------------------------------------------------
            with m.State("RESP_SYNC"):
                transmit(SYNC, "RESP_STATUS")
                m.d.sync += [crc.eq(CRC_INIT), idx.eq(0), bus_addr.eq(addr)]

            with m.State("RESP_STATUS"):
                transmit(status, "RESP_LEN")
                with m.If(send.ready):
                    m.d.sync += crc.eq(crc_next)

            with m.State("RESP_LEN"):
                transmit(resp_len, "FETCH")
                with m.If(send.ready):
                    m.d.sync += crc.eq(crc_next)
                    with m.If(resp_len == 0):
                        m.next = "RESP_CRC_LO"

            with m.State("FETCH"):
                m.d.sync += count.eq(0)
                with m.If(cmd == Cmd.PING):
                    m.d.sync += word.eq(Mux(idx == 0, magic, info))
                    m.next = "SEND_WORD"
                with m.Else():
                    m.d.comb += bus.r_en.eq(1)
                    m.next = "READ_WAIT"

            with m.State("READ_WAIT"):
                # cfg.host_read_latency cycles after r_en (2 to 4); the transmitter is still busy
                # with the previous byte, so the wait costs the line nothing.
                with m.If(bus.r_valid):
                    m.d.sync += word.eq(bus.r_data)
                    m.next = "SEND_WORD"

            with m.State("SEND_WORD"):
                transmit(word[:8], "SEND_WORD")
                with m.If(send.ready):
                    m.d.sync += [crc.eq(crc_next), word.eq(word >> 8), count.eq(count + 1)]
                    with m.If(count == WORD_BYTES - 1):
                        m.d.sync += [count.eq(0), idx.eq(idx + 1), bus_addr.eq(bus_addr + 1)]
                        with m.If(idx == resp_len - 1):
                            m.next = "RESP_CRC_LO"
                        with m.Else():
                            m.next = "FETCH"

            with m.State("RESP_CRC_LO"):
                transmit(crc[:8], "RESP_CRC_HI")

            with m.State("RESP_CRC_HI"):
                transmit(crc[8:], "IDLE")
        return m
