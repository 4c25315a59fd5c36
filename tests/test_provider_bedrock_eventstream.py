"""The gateway's event-stream decoder (providers/adapters/bedrock_eventstream.py) against
the fake's encoder and botocore's parser: byte-by-byte feeding, every header value type,
and each way a frame can be broken (prelude CRC, message CRC, lengths, headers).

Plain unit tests: no Django database, no server."""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest
from botocore.eventstream import EventStreamBuffer

from providers.adapters.bedrock_eventstream import EventStreamDecoder, FrameError, decode_headers
from tests.fakes.eventstream import corrupt, encode_message, event, exception

FRAMES = [event("messageStart", {"role": "assistant"}),
          event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hé"}}),
          exception("throttlingException", "slow down"),
          encode_message({":event-type": "x"}, b"")]


def _frame(header_block: bytes, payload: bytes = b"{}") -> bytes:
    total = 12 + len(header_block) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_block))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + header_block + payload
    return message + struct.pack(">I", zlib.crc32(message))


def test_messages_come_out_whole_however_the_bytes_are_split():
    data = b"".join(FRAMES)
    expected = []
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    expected = [(m.headers, m.payload) for m in buffer]
    for step in (1, 7, 64, len(data)):
        decoder = EventStreamDecoder()
        got = []
        for i in range(0, len(data), step):
            got.extend(decoder.feed(data[i:i + step]))
        assert got == expected and decoder.pending == 0


def test_a_partial_message_is_pending():
    decoder = EventStreamDecoder()
    assert decoder.feed(FRAMES[0][:-3]) == [] and decoder.pending == len(FRAMES[0]) - 3
    assert len(decoder.feed(FRAMES[0][-3:])) == 1 and decoder.pending == 0


def test_whole_messages_before_a_broken_one_are_returned_then_it_is_refused():
    decoder = EventStreamDecoder()
    assert decoder.feed(FRAMES[0] + corrupt(FRAMES[1])) == [(
        {":event-type": "messageStart", ":content-type": "application/json", ":message-type": "event"},
        b'{"role":"assistant"}')]
    with pytest.raises(FrameError, match="message CRC"):
        decoder.feed(FRAMES[2])
    with pytest.raises(FrameError, match="message CRC"):
        decoder.finish()


def test_finish_refuses_a_body_that_ends_inside_a_message():
    decoder = EventStreamDecoder()
    decoder.feed(FRAMES[0] + FRAMES[1][:20])
    with pytest.raises(FrameError, match="ended inside a message"):
        decoder.finish()
    complete = EventStreamDecoder()
    complete.feed(FRAMES[0])
    complete.finish()


def test_every_header_value_type_is_decoded():
    def header(name: str, kind: int, raw: bytes) -> bytes:
        return bytes([len(name)]) + name.encode() + bytes([kind]) + raw

    ident = uuid.uuid4().bytes
    block = b"".join([
        header("t", 0, b""), header("f", 1, b""), header("b", 2, struct.pack(">b", -3)),
        header("s", 3, struct.pack(">h", -300)), header("i", 4, struct.pack(">i", 70000)),
        header("l", 5, struct.pack(">q", 2**40)), header("y", 6, struct.pack(">H", 2) + b"\x00\xff"),
        header("str", 7, struct.pack(">H", 3) + b"abc"), header("ts", 8, struct.pack(">q", 1700000000000)),
        header("u", 9, ident)])
    expected = {"t": True, "f": False, "b": -3, "s": -300, "i": 70000, "l": 2**40, "y": b"\x00\xff", "str": "abc",
                "ts": 1700000000000, "u": ident}
    assert decode_headers(block) == expected
    buffer = EventStreamBuffer()
    buffer.add_data(_frame(block))
    boto = next(iter(buffer)).headers
    assert boto["str"] == "abc" and boto["i"] == 70000 and boto["t"] is True  # botocore reads the same block


@pytest.mark.parametrize("broken, problem", [
    (corrupt(FRAMES[0]), "message CRC"),
    (FRAMES[0][:8] + b"\x00\x00\x00\x00" + FRAMES[0][12:], "prelude CRC"),
    (_frame(bytes([1]) + b"a" + bytes([42])), "header"),  # an unknown value type
    (_frame(bytes([1]) + b"a" + bytes([7]) + struct.pack(">H", 50) + b"short"), "header"),
], ids=["message-crc", "prelude-crc", "unknown-header-type", "header-past-block"])
def test_a_broken_frame_is_refused(broken, problem):
    with pytest.raises(FrameError, match=problem):
        EventStreamDecoder().feed(broken)


def test_lengths_out_of_bounds_are_refused_before_waiting_for_the_bytes():
    prelude = struct.pack(">II", 8, 0)  # shorter than a prelude and its CRC
    with pytest.raises(FrameError, match="out of bounds"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))
    prelude = struct.pack(">II", 64 * 1024 * 1024, 0)  # a payload beyond AWS's 24 MB limit
    with pytest.raises(FrameError, match="out of bounds"):
        EventStreamDecoder().feed(prelude + struct.pack(">I", zlib.crc32(prelude)))
