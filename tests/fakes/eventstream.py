"""The AWS event-stream binary framing, ENCODED: what the fake Bedrock server and the
golden fixtures (tests/golden_runner.py, encoding "aws-eventstream") send.

Written from the format's description (prelude: total length, headers length, prelude
CRC32; headers; payload; message CRC32), independently of the gateway's decoder
(providers/adapters/bedrock_eventstream.py): botocore's own parser reads what this
writes (tests/test_fakes_bedrock.py), so both ends are checked against AWS's code.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any


def _header(name: str, value: str | bytes) -> bytes:
    raw_name = name.encode()
    if isinstance(value, str):  # type 7: string
        raw, kind = value.encode(), 7
    else:  # type 6: byte array
        raw, kind = bytes(value), 6
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", kind, len(raw)) + raw


def encode_message(headers: dict[str, str | bytes], payload: dict[str, Any] | bytes) -> bytes:
    """One event-stream message: `headers` as string (or byte-array) headers, `payload`
    as compact JSON when it is an object, as it is when bytes."""
    body = payload if isinstance(payload, (bytes, bytearray)) else json.dumps(payload, separators=(",", ":")).encode()
    header_block = b"".join(_header(name, value) for name, value in headers.items())
    total = 12 + len(header_block) + len(body) + 4
    prelude = struct.pack(">II", total, len(header_block))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + header_block + body
    return message + struct.pack(">I", zlib.crc32(message))


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    """A Bedrock ConverseStream event (`:message-type` event)."""
    return encode_message({":event-type": event_type, ":content-type": "application/json", ":message-type": "event"},
                          payload)


def exception(exception_type: str, message: str) -> bytes:
    """An error inside the stream (`:message-type` exception), as Bedrock sends one
    after the 200: e.g. throttlingException, modelStreamErrorException."""
    return encode_message({":exception-type": exception_type, ":content-type": "application/json",
                           ":message-type": "exception"}, {"message": message})


def corrupt(message: bytes) -> bytes:
    """`message` with one payload byte flipped: its message CRC no longer matches."""
    i = len(message) - 5
    return message[:i] + bytes([message[i] ^ 0xFF]) + message[i + 1:]
