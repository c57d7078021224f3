"""The host link's framed protocol: one definition for the gateware and the host software.

Pure Python (no Amaranth): rtl/hostlink.py builds the frame engine from these constants, and
lockstep/hostlink.py builds and checks frames with these functions, so the two sides cannot
disagree. docs/host-protocol.md explains the protocol with a worked example.

Request (host -> board)::

    SYNC  CMD  LEN  ADDR[4]  PAYLOAD[4 * LEN, WRITE only]  CRC[2]

Response (board -> host)::

    SYNC  STATUS  LEN  PAYLOAD[4 * LEN]  CRC[2]

* ``SYNC`` is 0xA5. A receiver looking for a frame drops every other byte.
* ``LEN`` counts 32-bit words, 1 to :data:`MAX_WORDS` for READ and WRITE, 0 for PING.
* ``ADDR`` is a host-bus *word* address (rtl/hostmap.py), little-endian; word ``i`` of a READ or
  WRITE goes to ``ADDR + i``.
* Words are little-endian. ``CRC`` is CRC-16/CCITT-FALSE (:func:`crc16`) over every byte after
  SYNC and before the CRC, sent little-endian (low byte first).
* How long a request is follows from its first three bytes alone: ``4 * LEN`` payload bytes if
  CMD is WRITE, none for any other CMD (known or not). An oversize LEN is therefore only found
  out after the whole frame has been received and checked.

A request is checked only once it is complete, in this order; the first failing check is the
answer, and a failing request changes nothing in the core:

1. no byte for :data:`DEFAULT_TIMEOUT_BITS` bit times (a HostLink parameter) in the middle of a
   frame: ``TIMEOUT`` (the frame is dropped, the board answers and waits for the next SYNC);
2. CRC mismatch: ``BAD_CRC``;
3. CMD not a :class:`Cmd`: ``BAD_CMD``;
4. LEN out of range for the command: ``BAD_LEN``;
5. READ or WRITE beyond the host address space (``ADDR + LEN > 2 ** addr_bits``): ``BAD_ADDR``.

Only then are WRITE's words written to the core (the frame engine buffers the payload until
the CRC has been checked). Error responses carry no payload (LEN 0). The host sends one
request and waits for its response before sending the next: bytes that arrive while the board
executes a request or sends a response are dropped.
"""

from dataclasses import dataclass
from enum import IntEnum

__all__ = [
    "SYNC", "Cmd", "Status", "MAX_WORDS", "WORD_BYTES", "REQUEST_HEADER_BYTES",
    "RESPONSE_HEADER_BYTES", "CRC_BYTES", "CRC_POLY", "CRC_INIT", "LINK_MAGIC",
    "PROTOCOL_VERSION", "DEFAULT_BAUD", "DEFAULT_TIMEOUT_BITS", "BITS_PER_BYTE",
    "FrameError", "Request", "Response", "PingInfo", "crc16", "crc16_update", "encode_frame",
    "write_request", "read_request", "ping_request", "request_length", "decode_request",
    "encode_response", "response_length", "decode_response", "ping_words", "parse_ping",
    "check_request", "STATUS_MEANING",
]

SYNC = 0xA5
WORD_BYTES = 4
MAX_WORDS = 64                 # payload words per frame (the link buffers one WRITE payload)
REQUEST_HEADER_BYTES = 7       # SYNC CMD LEN ADDR[4]
RESPONSE_HEADER_BYTES = 3      # SYNC STATUS LEN
CRC_BYTES = 2
BITS_PER_BYTE = 10             # 8N1: start, 8 data bits, stop

# CRC-16/CCITT-FALSE: not reflected, no final XOR; crc16(b"123456789") == 0x29B1.
CRC_POLY = 0x1021
CRC_INIT = 0xFFFF

LINK_MAGIC = 0x4C4B484C        # "LKHL", word 0 of a PING response
PROTOCOL_VERSION = 1

DEFAULT_BAUD = 1_000_000       # docs/host-protocol.md, "Timing"
DEFAULT_TIMEOUT_BITS = 10_000  # silence in mid-frame, in bit times, before TIMEOUT (10 ms)


class Cmd(IntEnum):
    PING = 0x01    # LEN 0; answers LINK_MAGIC and ping_words(addr_bits)
    WRITE = 0x02   # LEN words follow; written to ADDR, ADDR + 1, ...
    READ = 0x03    # no payload; answers LEN words read from ADDR, ADDR + 1, ...


class Status(IntEnum):
    OK = 0
    BAD_CRC = 1    # the request's CRC did not match
    BAD_CMD = 2    # unknown command
    BAD_LEN = 3    # LEN out of range for the command
    TIMEOUT = 4    # the request stopped in mid-frame
    BAD_ADDR = 5   # ADDR + LEN beyond the host address space


STATUS_MEANING = {
    Status.OK: "done",
    Status.BAD_CRC: "the request arrived corrupted",
    Status.BAD_CMD: "unknown command",
    Status.BAD_LEN: "length out of range",
    Status.TIMEOUT: "the request arrived incomplete",
    Status.BAD_ADDR: "address beyond the core's host address space",
}


class FrameError(ValueError):
    """A frame that does not decode; ``status`` is the answer the board gives to such a
    request (for a response: the closest status, e.g. BAD_CRC)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = Status(status)


# -- CRC ---------------------------------------------------------------------------------------

def crc16_update(crc, byte):
    """One byte into CRC-16/CCITT-FALSE: most significant bit first, no reflection. The gateware
    builds the same eight steps out of XOR gates (rtl/hostlink.py)."""
    crc ^= byte << 8
    for _ in range(8):
        crc = ((crc << 1) ^ CRC_POLY if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def crc16(data, crc=CRC_INIT):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR) of ``data``."""
    for byte in bytes(data):
        crc = crc16_update(crc, byte)
    return crc


# -- frames ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Request:
    cmd: Cmd
    addr: int
    length: int
    words: tuple = ()   # WRITE payload


@dataclass(frozen=True)
class Response:
    status: Status
    words: tuple = ()


@dataclass(frozen=True)
class PingInfo:
    version: int
    max_words: int
    addr_bits: int


def _word_bytes(words):
    out = bytearray()
    for w in words:
        w = int(w)
        if not 0 <= w < 1 << 32:
            raise ValueError(f"word {w:#x} does not fit in 32 bits")
        out += w.to_bytes(WORD_BYTES, "little")
    return bytes(out)


def _bytes_words(data):
    return tuple(int.from_bytes(data[i:i + WORD_BYTES], "little")
                 for i in range(0, len(data), WORD_BYTES))


def _with_crc(body):
    return bytes([SYNC]) + body + crc16(body).to_bytes(CRC_BYTES, "little")


def encode_frame(cmd, length, addr, words=()):
    """A request frame with any CMD, LEN and ADDR (no range checks beyond the field widths):
    for tests of the error paths. Use the ``*_request`` functions for real requests."""
    if not 0 <= cmd <= 0xFF or not 0 <= length <= 0xFF:
        raise ValueError(f"CMD and LEN are bytes (got {cmd}, {length})")
    if not 0 <= addr < 1 << 32:
        raise ValueError(f"address {addr:#x} does not fit in 32 bits")
    return _with_crc(bytes([cmd, length]) + addr.to_bytes(4, "little") + _word_bytes(words))


def write_request(addr, words):
    """WRITE ``words`` (1 to MAX_WORDS) to word addresses ``addr``, ``addr + 1``, ..."""
    words = [int(w) & 0xFFFF_FFFF for w in words]
    if not 1 <= len(words) <= MAX_WORDS:
        raise ValueError(f"a WRITE carries 1 to {MAX_WORDS} words, not {len(words)}")
    return encode_frame(Cmd.WRITE, len(words), addr, words)


def read_request(addr, count):
    """READ ``count`` (1 to MAX_WORDS) words from word addresses ``addr``, ``addr + 1``, ..."""
    if not 1 <= count <= MAX_WORDS:
        raise ValueError(f"a READ asks for 1 to {MAX_WORDS} words, not {count}")
    return encode_frame(Cmd.READ, count, addr)


def ping_request():
    return encode_frame(Cmd.PING, 0, 0)


def request_length(header):
    """Total length in bytes of the request whose first three bytes are ``header``."""
    if len(header) < 3:
        raise ValueError("need SYNC, CMD and LEN to know a request's length")
    payload = WORD_BYTES * header[2] if header[1] == Cmd.WRITE else 0
    return REQUEST_HEADER_BYTES + payload + CRC_BYTES


def check_request(cmd, length, addr, addr_bits=None):
    """The status the board answers to a complete request with a good CRC (checks 3 to 5 of the
    module docstring). ``addr_bits`` None skips the address check."""
    if cmd not in set(Cmd):
        return Status.BAD_CMD
    if cmd == Cmd.PING:
        return Status.OK if length == 0 else Status.BAD_LEN
    if not 1 <= length <= MAX_WORDS:
        return Status.BAD_LEN
    if addr_bits is not None and addr + length > 1 << addr_bits:
        return Status.BAD_ADDR
    return Status.OK


def decode_request(frame, addr_bits=None):
    """Decode one complete request frame; raises :class:`FrameError` with the status the board
    answers (TIMEOUT for a truncated frame) if it is not a valid request."""
    frame = bytes(frame)
    if not frame or frame[0] != SYNC:
        raise FrameError(Status.BAD_CMD, "a request starts with the sync byte 0xA5")
    if len(frame) < 3 or len(frame) < request_length(frame):
        raise FrameError(Status.TIMEOUT, f"truncated request ({len(frame)} bytes)")
    total = request_length(frame)
    if len(frame) > total:
        raise ValueError(f"{len(frame) - total} bytes after the end of the request")
    body, crc = frame[1:-CRC_BYTES], int.from_bytes(frame[-CRC_BYTES:], "little")
    if crc16(body) != crc:
        raise FrameError(Status.BAD_CRC, f"request CRC {crc:#06x}, computed {crc16(body):#06x}")
    cmd, length = body[0], body[1]
    addr = int.from_bytes(body[2:6], "little")
    status = check_request(cmd, length, addr, addr_bits)
    if status != Status.OK:
        raise FrameError(status, f"request CMD {cmd:#04x} LEN {length} ADDR {addr:#x}: "
                                 f"{status.name}")
    return Request(Cmd(cmd), addr, length, _bytes_words(body[6:]))


def encode_response(status, words=()):
    words = list(words)
    if len(words) > MAX_WORDS:
        raise ValueError(f"a response carries at most {MAX_WORDS} words, not {len(words)}")
    return _with_crc(bytes([Status(status), len(words)]) + _word_bytes(words))


def response_length(header):
    """Total length in bytes of the response whose first three bytes are ``header``; raises
    :class:`FrameError` if they cannot start a response."""
    if len(header) < RESPONSE_HEADER_BYTES:
        raise ValueError("need SYNC, STATUS and LEN to know a response's length")
    if header[0] != SYNC:
        raise FrameError(Status.BAD_CRC, f"a response starts with the sync byte 0xa5, "
                                         f"not {header[0]:#04x}")
    if header[2] > MAX_WORDS:
        raise FrameError(Status.BAD_LEN, f"response LEN {header[2]} exceeds {MAX_WORDS}")
    return RESPONSE_HEADER_BYTES + WORD_BYTES * header[2] + CRC_BYTES


def decode_response(frame):
    """Decode one complete response frame; raises :class:`FrameError` if it is corrupted or
    truncated (any status, error statuses included, decodes: the caller judges them)."""
    frame = bytes(frame)
    if len(frame) < RESPONSE_HEADER_BYTES:
        raise FrameError(Status.TIMEOUT, f"truncated response ({len(frame)} bytes)")
    total = response_length(frame)
    if len(frame) < total:
        raise FrameError(Status.TIMEOUT, f"truncated response ({len(frame)} of {total} bytes)")
    if len(frame) > total:
        raise ValueError(f"{len(frame) - total} bytes after the end of the response")
    body, crc = frame[1:-CRC_BYTES], int.from_bytes(frame[-CRC_BYTES:], "little")
    if crc16(body) != crc:
        raise FrameError(Status.BAD_CRC,
                         f"response CRC {crc:#06x}, computed {crc16(body):#06x}")
    if body[0] not in set(Status):
        raise FrameError(Status.BAD_CMD, f"unknown response status {body[0]}")
    return Response(Status(body[0]), _bytes_words(body[2:]))


# -- PING --------------------------------------------------------------------------------------

def ping_words(addr_bits):
    """The two words a PING answers: LINK_MAGIC, then version (bits 7:0), MAX_WORDS (15:8) and
    the core's host address width (23:16)."""
    return (LINK_MAGIC, PROTOCOL_VERSION | MAX_WORDS << 8 | addr_bits << 16)


def parse_ping(words):
    if len(words) != 2 or words[0] != LINK_MAGIC:
        raise FrameError(Status.BAD_CMD, "not a Lockstep host link (PING answered "
                                         f"{[hex(w) for w in words]})")
    return PingInfo(version=words[1] & 0xFF, max_words=words[1] >> 8 & 0xFF,
                    addr_bits=words[1] >> 16 & 0xFF)
