"""A scriptable fake HTTP server base for LLM provider fakes (stdlib only).

Wire-level behaviour reproduced here, common to every provider:

* HTTP/1.1 keep-alive: every normal response carries ``Content-Length`` so the
  client's pooled connection is reused.
* Streams use ``Transfer-Encoding: chunked``; every event is its own chunk,
  written immediately (TCP_NODELAY), and the stream ends with the zero-length chunk.
* Faults: HTTP error statuses, slow responses, streams or bodies cut off
  mid-way (socket closed without the terminal chunk) and invalid JSON.
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
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence
from urllib.parse import parse_qsl, urlsplit

from .text import Answer, shape_reply, count_words

_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
_ALNUM = string.ascii_letters + string.digits

# Stream events are (phase, bytes); phase is "head", "content" or "tail".
# cut_stream / malformed / hang(after_chunks=...) act on "content" events and
# always before the first "tail" (terminal) event.
StreamEvent = tuple[str, bytes]
Route = Callable[["Exchange", Optional["Behaviour"]], None]


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


@dataclass(frozen=True)
class Behaviour:
    """A scripted behaviour for one upcoming generation request."""

    kind: str  # "fail" | "hang" | "cut" | "malformed" | "reply"
    status: int = 200
    body: Any = None
    headers: Mapping[str, str] | None = None
    seconds: float = 0.0
    after_chunks: int | None = None
    text: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class Exchange:
    """One request/response on a (keep-alive) connection."""

    def __init__(self, handler: "_Handler", extra_headers: Mapping[str, str]) -> None:
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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "fake-llm/1.0"
    sys_version = ""
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence access log
        pass

    def _dispatch(self) -> None:
        fake = self.server.fake
        ex: Exchange | None = None
        try:
            ex = Exchange(self, fake.response_headers())
            fake._handle(ex)
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], fake: "FakeServer") -> None:
        self.fake = fake
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

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


class FakeServer:
    """Base class: lifecycle, request recording and behaviour scripting.

    Subclasses implement :meth:`route` and :meth:`error_payload`, and build
    answers with :meth:`answer`, :meth:`send_result` and :meth:`send_stream`.
    Scripted behaviours only apply to generation endpoints (chat/messages),
    never to listing endpoints, so health checks do not consume them.
    """

    default_reply_text = "Hello from fake."
    default_models: Sequence[str] = ()
    json_content_type = "application/json"

    def __init__(
        self,
        *,
        reply_text: str | None = None,
        api_key: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        chunk_delay: float = 0.0,
        known_models: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.reply_text: str = self.default_reply_text if reply_text is None else reply_text
        self.api_key = api_key
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.chunk_delay = chunk_delay
        self.known_models: set[str] | None = set(known_models) if known_models is not None else None
        self.errors: list[str] = []  # tracebacks of bugs inside the fake itself
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._cond = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._queue: deque[Behaviour] = deque()

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> "FakeServer":
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._stopping.clear()
        self._server = _Server(self._address, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes up hang() sleepers
        server.shutdown()
        server.server_close()
        server.hang_up_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running; call start()")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Server root, e.g. http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What to pass as the SDK's ``base_url`` (overridden per provider)."""
        return self.url

    # -- recording -----------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._cond:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._cond:
            return len(self._requests)

    @property
    def last_request(self) -> RecordedRequest | None:
        with self._cond:
            return self._requests[-1] if self._requests else None

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` requests were received (True) or timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._requests) >= count, timeout)

    def reset(self) -> None:
        """Forget recorded requests and queued behaviours (settings are kept)."""
        with self._cond:
            self._requests.clear()
            self._queue.clear()

    # -- scripting (FIFO, each entry consumed by one generation request) ------------
    def _push(self, behaviour: Behaviour, times: int) -> None:
        with self._cond:
            self._queue.extend([behaviour] * times)

    def fail(self, status: int, *, body: Any = None, headers: Mapping[str, str] | None = None,
             times: int = 1) -> None:
        """Answer with ``status`` and the provider's error JSON (``body`` overrides it)."""
        self._push(Behaviour("fail", status=status, body=body, headers=headers), times)

    def hang(self, seconds: float, *, after_chunks: int | None = None, times: int = 1) -> None:
        """Sleep before answering; with ``after_chunks`` stall a stream mid-way instead."""
        self._push(Behaviour("hang", seconds=seconds, after_chunks=after_chunks), times)

    def cut_stream(self, after_chunks: int = 1, *, times: int = 1) -> None:
        """Close the socket after N content events (non-stream: truncated body)."""
        self._push(Behaviour("cut", after_chunks=after_chunks), times)

    def malformed(self, *, times: int = 1) -> None:
        """200 with invalid JSON (non-stream) or a garbage event (stream)."""
        self._push(Behaviour("malformed", after_chunks=1), times)

    def reply(self, text: str, *, prompt_tokens: int | None = None,
              completion_tokens: int | None = None, times: int = 1) -> None:
        """A specific successful answer."""
        self._push(Behaviour("reply", text=text, prompt_tokens=prompt_tokens,
                             completion_tokens=completion_tokens), times)

    @property
    def pending(self) -> int:
        """Number of queued behaviours not consumed yet."""
        with self._cond:
            return len(self._queue)

    # -- request handling ------------------------------------------------------------
    def _handle(self, ex: Exchange) -> None:
        with self._cond:
            self._requests.append(ex.record())
            self._cond.notify_all()
        found = self.route(ex)
        if found is None:
            self.not_found(ex)
            return
        handler, is_generation = found
        behaviour = self._next_behaviour() if is_generation else None
        if behaviour and behaviour.kind == "hang" and behaviour.after_chunks is None:
            self._sleep(behaviour.seconds)
        if behaviour and behaviour.kind == "fail":
            self._send_fail(ex, behaviour)
            return
        handler(ex, behaviour)

    def _next_behaviour(self) -> Behaviour | None:
        with self._cond:
            return self._queue.popleft() if self._queue else None

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)

    def _send_fail(self, ex: Exchange, behaviour: Behaviour) -> None:
        body, headers = behaviour.body, dict(behaviour.headers or {})
        if body is None:
            self.send_error(ex, behaviour.status, headers=headers)
        elif isinstance(body, (str, bytes)):
            raw = body.encode() if isinstance(body, str) else body
            try:
                json.loads(raw)
                content_type = self.json_content_type
            except ValueError:
                content_type = "text/plain; charset=utf-8"
            ex.send_bytes(behaviour.status, raw, content_type, headers)
        else:
            ex.send_json(behaviour.status, body, headers, self.json_content_type)

    def send_error(self, ex: Exchange, status: int, message: str | None = None, *,
                   headers: Mapping[str, str] | None = None, **details: Any) -> None:
        ex.send_json(status, self.error_payload(status, message, **details), headers,
                     self.json_content_type)

    def model_known(self, model: str) -> bool:
        return self.known_models is None or model in self.known_models

    def listed_models(self) -> list[str]:
        return sorted(self.known_models) if self.known_models is not None else list(self.default_models)

    def answer(self, behaviour: Behaviour | None, *, prompt_tokens: int,
               max_words: int | None = None, stops: Sequence[str] = ()) -> Answer:
        """Decide the reply: scripted ``reply()`` or defaults, then truncation."""
        scripted = behaviour if behaviour is not None and behaviour.kind == "reply" else None
        text = scripted.text if scripted and scripted.text is not None else self.reply_text
        text, reason, matched = shape_reply(text, max_words=max_words, stops=stops)
        return Answer(
            text=text,
            prompt_tokens=_first(scripted and scripted.prompt_tokens, self.prompt_tokens, prompt_tokens),
            completion_tokens=_first(scripted and scripted.completion_tokens, self.completion_tokens,
                                     count_words(text)),
            reason=reason,
            stop_sequence=matched,
        )

    def send_result(self, ex: Exchange, behaviour: Behaviour | None, payload: Any) -> None:
        """Send a successful non-stream JSON body, applying cut/malformed faults."""
        data = dumps(payload)
        kind = behaviour.kind if behaviour else None
        if kind == "hang" and behaviour and behaviour.after_chunks is not None:
            self._sleep(behaviour.seconds)  # mid-stream stall requested on a non-stream call
        if kind == "malformed":  # a strict prefix of a JSON object is never valid JSON
            ex.send_bytes(200, data[: len(data) // 2], self.json_content_type)
        elif kind == "cut":
            ex.send_truncated(200, data, self.json_content_type)
        else:
            ex.send_bytes(200, data, self.json_content_type)

    def send_stream(self, ex: Exchange, behaviour: Behaviour | None, events: Iterable[StreamEvent],
                    content_type: str) -> None:
        """Write events as chunks, applying chunk_delay and stream faults."""
        kind = behaviour.kind if behaviour else None
        trigger_at = behaviour.after_chunks if behaviour and behaviour.after_chunks is not None else -1
        ex.start_stream(content_type)
        sent, fired, first = 0, False, True
        for phase, data in events:
            if not first and self.chunk_delay:
                self._sleep(self.chunk_delay)
            first = False
            if not fired and trigger_at >= 0 and (phase == "tail" or (phase == "content" and sent >= trigger_at)):
                fired = True
                if kind == "cut":
                    ex.abort()
                    return
                if kind == "hang":
                    self._sleep(behaviour.seconds)  # type: ignore[union-attr]
                elif kind == "malformed":
                    ex.write_chunk(self.garbage_event())
            ex.write_chunk(data)
            sent += phase == "content"
        ex.end_stream()

    # -- provider hooks ------------------------------------------------------------
    def route(self, ex: Exchange) -> tuple[Route, bool] | None:
        """Return (handler, is_generation_endpoint) or None for 404."""
        raise NotImplementedError

    def error_payload(self, status: int, message: str | None = None, **details: Any) -> Any:
        raise NotImplementedError

    def garbage_event(self) -> bytes:
        """One syntactically broken stream event."""
        return b'data: {"broken": \n\n'

    def response_headers(self) -> dict[str, str]:
        """Headers added to every response (e.g. request ids)."""
        return {}

    def not_found(self, ex: Exchange) -> None:
        self.send_error(ex, 404, f"Invalid URL ({ex.method} {ex.path})")


def _first(*values: Any) -> Any:
    return next(v for v in values if v is not None)
