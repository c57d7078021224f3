"""The host link protocol (rtl/hostlink_protocol.py), pure Python: CRC, frame round trips, and
the refusal of corrupted, truncated, unknown and out-of-range frames with the right status."""

import pytest

from rtl.config import CoreConfig
from rtl.hostlink_protocol import (
    CRC_BYTES,
    LINK_MAGIC,
    MAX_WORDS,
    PROTOCOL_VERSION,
    REQUEST_HEADER_BYTES,
    RESPONSE_HEADER_BYTES,
    SYNC,
    Cmd,
    FrameError,
    PingInfo,
    Request,
    Response,
    Status,
    check_request,
    crc16,
    crc16_update,
    decode_request,
    decode_response,
    encode_frame,
    encode_response,
    parse_ping,
    ping_request,
    ping_words,
    read_request,
    request_length,
    response_length,
    write_request,
)
from rtl.hostmap import HostMap, Region

ADDR_BITS = 13


def _crc16_bitwise(data):
    """CRC-16/CCITT-FALSE the slow way, bit by bit from the definition."""
    crc = 0xFFFF
    for byte in data:
        for i in range(7, -1, -1):
            top = (crc >> 15) ^ (byte >> i & 1)
            crc = (crc << 1) & 0xFFFF
            if top:
                crc ^= 0x1021
    return crc


def test_crc_known_answers():
    assert crc16(b"123456789") == 0x29B1          # the catalogue check value
    assert crc16(b"") == 0xFFFF
    assert crc16(b"\x00") == 0xE1F0
    assert crc16(b"123456789", crc=crc16(b"")) == 0x29B1


def test_crc_matches_the_definition():
    import random
    rng = random.Random(1)
    for n in range(40):
        data = bytes(rng.randrange(256) for _ in range(n))
        assert crc16(data) == _crc16_bitwise(data)


def test_crc_update_is_linear():
    # The gateware derives its XOR network from this property (rtl/hostlink.py, crc16_step).
    for crc in (0, 1, 0x8000, 0xFFFF, 0x1234):
        for byte in (0, 1, 0x80, 0xA5):
            image = 0
            for i in range(16):
                if crc >> i & 1:
                    image ^= crc16_update(1 << i, 0)
            for i in range(8):
                if byte >> i & 1:
                    image ^= crc16_update(0, 1 << i)
            assert crc16_update(crc, byte) == image


def test_worked_example_of_the_docs():
    # docs/host-protocol.md: ACT row 0 of the default 8x8 core (host address 0x10000) gets
    # the lanes 1, 2, 3, 4, -1, -2, -3, -4; then read back.
    cfg = CoreConfig()
    hmap = HostMap(cfg)
    # Word 0 (lanes 0-3) of activation rows 0 and 1: consecutive addresses.
    addr = hmap.addr(Region.ACT, 0, 0)
    assert hmap.addr(Region.ACT, 1, 0) == addr + 1
    words = [hmap.row_to_words(Region.ACT, lanes + [0] * 4)[0]
             for lanes in ([1, 2, 3, 4], [-1, -2, -3, -4])]
    assert (addr, words) == (0x10000, [0x04030201, 0xFCFDFEFF])
    frame = write_request(addr, words)
    assert frame.hex(" ") == "a5 02 02 00 00 01 00 01 02 03 04 ff fe fd fc 03 22"
    assert crc16(frame[1:-2]) == 0x2203
    assert encode_response(Status.OK).hex(" ") == "a5 00 00 0f 1d"
    assert read_request(addr, 2).hex(" ") == "a5 03 02 00 00 01 00 42 b7"
    assert encode_response(Status.OK, words).hex(" ") == (
        "a5 00 02 01 02 03 04 ff fe fd fc 76 bf")
    assert encode_response(Status.BAD_CRC).hex(" ") == "a5 01 00 3e 2e"
    assert ping_request().hex(" ") == "a5 01 00 00 00 00 00 b0 4b"
    assert encode_response(Status.OK, ping_words(hmap.addr_bits)).hex(" ") == (
        "a5 00 02 4c 48 4b 4c 01 40 12 00 81 b3")


@pytest.mark.parametrize("count", [1, 2, 17, MAX_WORDS])
def test_request_round_trips(count):
    words = [(0x0101_0101 * i + 0xDEAD_0000) & 0xFFFF_FFFF for i in range(count)]
    frame = write_request(0x1F00, words)
    assert len(frame) == request_length(frame[:3]) == REQUEST_HEADER_BYTES + 4 * count + CRC_BYTES
    assert decode_request(frame, ADDR_BITS) == Request(Cmd.WRITE, 0x1F00, count, tuple(words))
    frame = read_request(0x1F00 - count, count)
    assert len(frame) == request_length(frame) == REQUEST_HEADER_BYTES + CRC_BYTES
    assert decode_request(frame, ADDR_BITS) == Request(Cmd.READ, 0x1F00 - count, count)
    assert decode_request(ping_request()) == Request(Cmd.PING, 0, 0)


def test_negative_words_are_sent_as_two_complement():
    assert decode_request(write_request(0, [-1, -(1 << 31)])).words == (0xFFFF_FFFF, 1 << 31)


@pytest.mark.parametrize("count", [0, 1, MAX_WORDS])
@pytest.mark.parametrize("status", list(Status))
def test_response_round_trips(status, count):
    words = tuple(range(7, 7 + count))
    frame = encode_response(status, words)
    assert len(frame) == response_length(frame[:3]) == RESPONSE_HEADER_BYTES + 4 * count + 2
    assert decode_response(frame) == Response(status, words)


def test_ping_words_round_trip():
    assert ping_words(ADDR_BITS)[0] == LINK_MAGIC
    assert parse_ping(ping_words(ADDR_BITS)) == PingInfo(PROTOCOL_VERSION, MAX_WORDS, ADDR_BITS)
    with pytest.raises(FrameError, match="not a Lockstep host link"):
        parse_ping([0x12345678, 1])


def test_request_builders_refuse_what_the_board_would():
    with pytest.raises(ValueError, match="1 to 64 words"):
        write_request(0, [])
    with pytest.raises(ValueError, match="1 to 64 words"):
        write_request(0, [0] * (MAX_WORDS + 1))
    with pytest.raises(ValueError, match="1 to 64 words"):
        read_request(0, 0)
    with pytest.raises(ValueError, match="32 bits"):
        encode_frame(Cmd.READ, 1, 1 << 32)
    with pytest.raises(ValueError, match="32 bits"):
        encode_frame(Cmd.WRITE, 1, 0, [1 << 32])


def _flip(frame, index, bit):
    frame = bytearray(frame)
    frame[index] ^= 1 << bit
    return bytes(frame)


@pytest.mark.parametrize("frame", [
    write_request(0x400, [0x11223344, 0x55667788]), read_request(0x123, 5), ping_request()],
    ids=["write", "read", "ping"])
def test_every_single_bit_error_is_refused(frame):
    """A flipped bit anywhere after SYNC: BAD_CRC, or TIMEOUT when the flip makes the frame
    announce more bytes than were sent (CMD READ -> WRITE, a larger WRITE LEN)."""
    for index in range(1, len(frame)):
        for bit in range(8):
            bad = _flip(frame, index, bit)
            announced = request_length(bad)
            with pytest.raises(FrameError) as info:
                decode_request(bad[:announced] if announced < len(bad) else bad, ADDR_BITS)
            expected = Status.TIMEOUT if announced > len(bad) else Status.BAD_CRC
            assert info.value.status == expected, (index, bit)


def test_truncated_requests_time_out():
    frame = write_request(0x400, [1, 2, 3])
    for n in range(1, len(frame)):
        with pytest.raises(FrameError) as info:
            decode_request(frame[:n])
        assert info.value.status == Status.TIMEOUT, n


def test_not_a_frame():
    with pytest.raises(FrameError, match="sync byte"):
        decode_request(b"\x5a" + ping_request()[1:])
    with pytest.raises(ValueError, match="after the end"):
        decode_request(ping_request() + b"\x00")


@pytest.mark.parametrize("cmd", [0x00, 0x04, 0x7E, 0xFF])
def test_unknown_commands(cmd):
    with pytest.raises(FrameError) as info:
        decode_request(encode_frame(cmd, 1, 0))
    assert info.value.status == Status.BAD_CMD
    # An unknown command has no payload: the frame ends after ADDR and the CRC.
    assert request_length(encode_frame(cmd, 9, 0)) == REQUEST_HEADER_BYTES + CRC_BYTES


@pytest.mark.parametrize("cmd, length", [
    (Cmd.WRITE, 0), (Cmd.WRITE, MAX_WORDS + 1), (Cmd.WRITE, 255), (Cmd.READ, 0),
    (Cmd.READ, MAX_WORDS + 1), (Cmd.READ, 255), (Cmd.PING, 1), (Cmd.PING, 255)])
def test_lengths_out_of_range(cmd, length):
    words = [0] * length if cmd == Cmd.WRITE else []
    with pytest.raises(FrameError) as info:
        decode_request(encode_frame(cmd, length, 0, words), ADDR_BITS)
    assert info.value.status == Status.BAD_LEN


def test_addresses_beyond_the_host_address_space():
    top = 1 << ADDR_BITS
    assert decode_request(write_request(top - 2, [1, 2]), ADDR_BITS).addr == top - 2
    for frame in (write_request(top - 1, [1, 2]), read_request(top, 1),
                  read_request(1 << 31, 1), write_request(0xFFFF_FFFF, [0])):
        with pytest.raises(FrameError) as info:
            decode_request(frame, ADDR_BITS)
        assert info.value.status == Status.BAD_ADDR
    # PING ignores ADDR.
    assert decode_request(encode_frame(Cmd.PING, 0, 0xFFFF_FFFF), ADDR_BITS).cmd == Cmd.PING


def test_check_order():
    """The first failing check answers: CRC, then CMD, then LEN, then ADDR."""
    unknown_and_long = encode_frame(0x7E, 200, 1 << 31)
    assert decode_status(_flip(unknown_and_long, 8, 0)) == Status.BAD_CRC
    assert decode_status(unknown_and_long) == Status.BAD_CMD
    assert decode_status(encode_frame(Cmd.READ, 200, 1 << 31)) == Status.BAD_LEN
    assert check_request(Cmd.READ, 1, 1 << 31, ADDR_BITS) == Status.BAD_ADDR
    assert check_request(Cmd.READ, 1, 1 << 31, None) == Status.OK


def decode_status(frame):
    try:
        decode_request(frame, ADDR_BITS)
    except FrameError as exc:
        return exc.status
    return Status.OK


def test_corrupted_and_truncated_responses():
    frame = encode_response(Status.OK, [0xCAFE_F00D, 7])
    for index in range(1, len(frame)):
        if index == 2:
            continue        # LEN: changes the length (tested below)
        with pytest.raises(FrameError) as info:
            decode_response(_flip(frame, index, 3))
        assert info.value.status == Status.BAD_CRC, index
    for n in range(len(frame)):
        with pytest.raises(FrameError) as info:
            decode_response(frame[:n])
        assert info.value.status == Status.TIMEOUT, n
    with pytest.raises(FrameError, match="sync byte"):
        decode_response(b"\x00" + frame[1:])
    with pytest.raises(FrameError, match="exceeds"):
        response_length(bytes([SYNC, 0, MAX_WORDS + 1]))
    with pytest.raises(FrameError, match="unknown response status"):
        body = bytes([0x42, 0])
        decode_response(bytes([SYNC]) + body + crc16(body).to_bytes(2, "little"))
