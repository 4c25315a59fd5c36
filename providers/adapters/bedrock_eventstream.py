"""The AWS event-stream binary framing (application/vnd.amazon.eventstream), decoded
incrementally: what Bedrock's ConverseStream answers in.

A message is::

    total length   uint32 BE   (the whole message, these 4 bytes and the CRC included)
    headers length uint32 BE
    prelude CRC    uint32 BE   CRC32 of the 8 bytes above
    headers        name length uint8, name (UTF-8), value type uint8, value
    payload        (Bedrock: a JSON object)
    message CRC    uint32 BE   CRC32 of everything before it

Header value types: 0 true, 1 false (no bytes), 2 int8, 3 int16, 4 int32, 5 int64,
6 bytes and 7 string (uint16 BE length, then the bytes), 8 timestamp (int64 ms),
9 uuid (16 bytes). Both CRCs are checked; a bad one, a length out of bounds or a
truncated header is `FrameError` (the adapter's bad_response). Parsing keeps an offset
into one buffer rather than re-slicing it per message (botocore's EventStreamBuffer
copies the rest of the buffer for every message it takes off the front).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

PRELUDE = 12  # total length, headers length, prelude CRC
MIN_MESSAGE = PRELUDE + 4  # no headers, no payload: the message CRC alone
MAX_HEADERS = 128 * 1024  # the limits AWS documents (and botocore enforces)
MAX_PAYLOAD = 24 * 1024 * 1024
_PRELUDE = struct.Struct(">III")
_U16 = struct.Struct(">H")
_FIXED = {2: struct.Struct(">b"), 3: struct.Struct(">h"), 4: struct.Struct(">i"), 5: struct.Struct(">q"),
          8: struct.Struct(">q")}


class FrameError(ValueError):
    """The bytes are not a well-formed event-stream message (CRC, lengths, headers)."""


def decode_headers(raw: bytes | memoryview) -> dict[str, Any]:
    """A message's header block -> {name: value} (strings as str, bytes as bytes)."""
    headers: dict[str, Any] = {}
    pos, end = 0, len(raw)
    try:
        while pos < end:
            size = raw[pos]
            name = bytes(raw[pos + 1:pos + 1 + size]).decode()
            pos += 1 + size
            kind = raw[pos]
            pos += 1
            if kind in (0, 1):
                value: Any = kind == 0
            elif kind in (6, 7):
                (length,) = _U16.unpack_from(raw, pos)
                value = bytes(raw[pos + 2:pos + 2 + length])
                if len(value) != length:
                    raise FrameError("a header value runs past the header block")
                pos += 2 + length
                if kind == 7:
                    value = value.decode()
            elif kind == 9:
                value = bytes(raw[pos:pos + 16])
                pos += 16
            elif kind in _FIXED:
                fixed = _FIXED[kind]
                (value,) = fixed.unpack_from(raw, pos)
                pos += fixed.size
            else:
                raise FrameError(f"unknown header value type {kind}")
            if pos > end:
                raise FrameError("a header runs past the header block")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError):
        raise FrameError("malformed header block") from None
    return headers


class EventStreamDecoder:
    """Feed bytes as they arrive (`feed`), take whole messages out as
    (headers, payload bytes) pairs. `pending` says whether a partial message is left
    (at the end of the body: a stream cut mid-message).

    A stream repeats a handful of header blocks (one per event type), so decoded
    blocks are kept by their bytes: the headers dicts handed out are shared, read-only."""

    __slots__ = ("_buffer", "_offset", "_headers", "_error")
    MAX_HEADER_BLOCKS = 32  # distinct header blocks remembered per stream

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._offset = 0
        self._headers: dict[bytes, dict[str, Any]] = {}
        self._error: FrameError | None = None

    @property
    def pending(self) -> int:
        """Bytes received that are not (yet) a whole message."""
        return len(self._buffer) - self._offset

    def feed(self, data: bytes) -> list[tuple[dict[str, Any], bytes]]:
        """Append `data`; return every message now complete, in order (a list, so no
        view of the buffer outlives the call). A broken message raises FrameError; the
        whole messages before it in the same data are returned first (the error is
        raised by the next `feed` or by `finish`), so what arrived intact is never lost
        to how the bytes happened to be split into reads."""
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        if self._offset:  # drop what was consumed before growing the buffer
            del buffer[:self._offset]
            self._offset = 0
        buffer += data
        messages: list[tuple[dict[str, Any], bytes]] = []
        view = memoryview(buffer)
        try:
            self._take(buffer, view, messages)
        except FrameError as exc:
            if not messages:
                raise
            self._error = exc
        finally:
            view.release()
        return messages

    def finish(self) -> None:
        """At the end of the body: FrameError if a broken message is pending, or the body
        ended inside a message (a cut stream)."""
        if self._error is not None:
            raise self._error
        if self.pending:
            raise FrameError("the stream ended inside a message")

    def _take(self, buffer: bytearray, view: memoryview, messages: list[tuple[dict[str, Any], bytes]]) -> None:
        """Move every whole message from the buffer (from `_offset`) into `messages`."""
        while len(buffer) - self._offset >= PRELUDE:
            start = self._offset
            total, headers_length, prelude_crc = _PRELUDE.unpack_from(buffer, start)
            if zlib.crc32(view[start:start + 8]) != prelude_crc:
                raise FrameError("prelude CRC mismatch")
            if total < MIN_MESSAGE or headers_length > MAX_HEADERS or total - MIN_MESSAGE - headers_length > MAX_PAYLOAD \
                    or headers_length > total - MIN_MESSAGE:
                raise FrameError(f"message lengths out of bounds (total {total}, headers {headers_length})")
            end = start + total
            if len(buffer) < end:
                break
            (message_crc,) = struct.unpack_from(">I", buffer, end - 4)
            if zlib.crc32(view[start:end - 4]) != message_crc:
                raise FrameError("message CRC mismatch")
            headers_end = start + PRELUDE + headers_length
            block = bytes(view[start + PRELUDE:headers_end])
            headers = self._headers.get(block)
            if headers is None:
                headers = decode_headers(block)
                if len(self._headers) < self.MAX_HEADER_BLOCKS:
                    self._headers[block] = headers
            payload = bytes(view[headers_end:end - 4])
            self._offset = end
            messages.append((headers, payload))
