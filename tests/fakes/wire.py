"""HTTP/1.1 transport for the fakes (stdlib ``http.server``, one thread per connection).

Wire-level behaviour reproduced here, common to every provider:

* HTTP/1.1 keep-alive: every normal response carries ``Content-Length`` so the
  client's pooled connection is reused.
* Streams use ``Transfer-Encoding: chunked``; every event is its own chunk,
  written immediately (TCP_NODELAY), and the stream ends with the zero-length chunk.
* Faults: a stream or body can be cut off mid-way (socket shut down without the
  terminal chunk / with fewer bytes than the announced Content-Length).
"""

from __future__ import annotations

import json
import secrets
import socket
import string
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    from .base import FakeServer

_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
DISCONNECTS = _DISCONNECTS  # public: what a write raises when the client has hung up
_ALNUM = string.ascii_letters + string.digits


def random_id(prefix: str, length: int = 24) -> str:
    """Provider-looking id such as ``chatcmpl-…`` or ``msg_01…``."""
    return prefix + "".join(secrets.choice(_ALNUM) for _ in range(length))


def dumps(obj: Any) -> bytes:
    """Compact JSON, as the real APIs send it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received. ``headers`` names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None when empty / not JSON
    raw_body: bytes = b""
    query: dict[str, str] = field(default_factory=dict)
    client_port: int = 0  # the client's source port: equal ports == reused connection
    received_at: float = 0.0

    @property
    def json(self) -> Any:
        return self.body

    def __getitem__(self, key: str) -> Any:  # allow req["body"] as well as req.body
        return getattr(self, key)


class Exchange:
    """One request/response on a (keep-alive) connection."""

    def __init__(self, handler: "RequestHandler", extra_headers: Mapping[str, str]) -> None:
        self._h = handler
        self.method: str = handler.command
        split = urlsplit(handler.path)
        self.path: str = split.path
        self.query: dict[str, str] = dict(parse_qsl(split.query))
        self.headers: dict[str, str] = {k.lower(): v for k, v in handler.headers.items()}
        self.raw_body: bytes = self._read_body()
        self.json: Any = None
        self.invalid_json = False
        if self.raw_body.strip():
            try:
                self.json = json.loads(self.raw_body)
            except ValueError:
                self.invalid_json = True
        self.extra_headers = dict(extra_headers)
        self.headers_sent = False

    def _read_body(self) -> bytes:
        rfile = self._h.rfile
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size = int(rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while rfile.readline().strip():  # trailers
                        pass
                    return b"".join(parts)
                parts.append(rfile.read(size))
                rfile.readline()
        length = int(self.headers.get("content-length") or 0)
        return rfile.read(length) if length else b""

    def record(self) -> RecordedRequest:
        return RecordedRequest(
            method=self.method, path=self.path, headers=self.headers, body=self.json,
            raw_body=self.raw_body, query=self.query,
            client_port=self._h.client_address[1], received_at=time.time(),
        )

    # -- writing ---------------------------------------------------------------
    def _head(self, status: int, headers: Mapping[str, str]) -> None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = {529: "Overloaded"}.get(status, "Error")
        self._h.send_response(status, reason)
        for name, value in {**self.extra_headers, **headers}.items():
            self._h.send_header(name, str(value))
        self._h.end_headers()
        self.headers_sent = True

    def send_bytes(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        """A complete response with Content-Length (connection stays open)."""
        self._head(status, {"Content-Type": content_type, "Content-Length": str(len(body)), **(headers or {})})
        if self.method != "HEAD":
            self._h.wfile.write(body)
        self._h.wfile.flush()

    def send_json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None,
                  content_type: str = "application/json") -> None:
        self.send_bytes(status, dumps(obj), content_type, headers)

    def send_truncated(self, status: int, body: bytes, content_type: str) -> None:
        """Announce the full Content-Length, send half of the body, then hang up."""
        self._head(status, {"Content-Type": content_type, "Content-Length": str(len(body) + 1)})
        self._h.wfile.write(body[: len(body) // 2])
        self._h.wfile.flush()
        self.abort()

    def start_stream(self, content_type: str, headers: Mapping[str, str] | None = None) -> None:
        self._head(200, {"Content-Type": content_type, "Transfer-Encoding": "chunked",
                         "Cache-Control": "no-cache", **(headers or {})})

    def write_chunk(self, data: bytes) -> None:
        """One HTTP chunk holding one stream event, flushed at once."""
        if data:
            self._h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self._h.wfile.flush()

    def end_stream(self) -> None:
        self._h.wfile.write(b"0\r\n\r\n")
        self._h.wfile.flush()

    def abort(self) -> None:
        """Close the socket now: no terminal event, no final zero-length chunk."""
        self._h.close_connection = True
        try:
            self._h.wfile.flush()
            self._h.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class RequestHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 handler: every request goes to ``server.fake.dispatch``."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "fake-llm/1.0"
    sys_version = ""
    server: "ThreadedServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access log
        pass

    def _dispatch(self) -> None:
        fake = self.server.fake
        ex: Exchange | None = None
        try:
            ex = Exchange(self, fake.response_headers())
            fake.dispatch(ex)
        except _DISCONNECTS:
            self.close_connection = True
        except Exception:  # a bug in the fake: report it loudly instead of hanging the client
            fake.errors.append(traceback.format_exc())
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            if ex is not None and not ex.headers_sent:
                try:
                    ex.send_bytes(500, b"fake server error", "text/plain")
                except OSError:
                    pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch


class ThreadedServer(ThreadingHTTPServer):
    """One daemon thread per connection; remembers open sockets so stop() can hang up."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], fake: "FakeServer") -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (*_DISCONNECTS, OSError)):
            super().handle_error(request, client_address)

    def hang_up_all(self) -> None:
        """Unblock handler threads idling on keep-alive connections."""
        with self._conn_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
