"""Scriptable fake LLM provider server base: lifecycle, recording, behaviours.

Subclasses (one per provider) route requests and encode answers in the
provider's wire format; this module decides *what* to answer (default reply,
scripted ``reply()``, truncation, usage numbers) and applies scripted faults
(``fail``, ``hang``, ``cut_stream``, ``malformed``, ``mangle``) in FIFO order.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional, Self, Sequence

from .text import Answer, count_words, shape_reply
from .wire import DISCONNECTS, Exchange, RecordedRequest, ThreadedServer, dumps, random_id

__all__ = ["Behaviour", "Exchange", "FakeServer", "RecordedRequest", "Route", "StreamEvent",
           "dumps", "random_id"]

# Stream events are (phase, bytes); phase is "head", "content" or "tail".
# cut_stream / malformed / hang(after_chunks=...) act on "content" events and
# always before the first "tail" (terminal) event.
StreamEvent = tuple[str, bytes]
Route = Callable[[Exchange, Optional["Behaviour"]], None]


@dataclass(frozen=True)
class Behaviour:
    """A scripted behaviour for one upcoming generation request."""

    kind: str  # "fail" | "hang" | "cut" | "malformed" | "reply" | "mangle"
    status: int = 200
    body: Any = None
    headers: Mapping[str, str] | None = None
    seconds: float = 0.0
    after_chunks: int | None = None
    text: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    mangle: Callable[[Any], Any] | None = None


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
        self._server: ThreadedServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._cond = threading.Condition()
        self._requests: list[RecordedRequest] = []
        self._queue: deque[Behaviour] = deque()
        self._aborted_streams = 0  # streams the client hung up on mid-way
        self._completed_streams = 0  # streams written to the end (terminal chunk sent)

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._stopping.clear()
        self._server = ThreadedServer(self._address, self)
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

    def __enter__(self) -> Self:
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

    @property
    def aborted_streams(self) -> int:
        """Streams whose writing failed because the client closed the connection."""
        with self._cond:
            return self._aborted_streams

    @property
    def completed_streams(self) -> int:
        """Streams fully written, terminal zero-length chunk included."""
        with self._cond:
            return self._completed_streams

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` requests were received (True) or timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._requests) >= count, timeout)

    def reset(self) -> None:
        """Forget recorded requests and queued behaviours (settings are kept)."""
        with self._cond:
            self._requests.clear()
            self._queue.clear()
            self._aborted_streams = 0
            self._completed_streams = 0

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

    def mangle(self, edit: Callable[[Any], Any], *, times: int = 1) -> None:
        """A broken provider: every JSON object of the next answer (the body, or each
        stream event / NDJSON line) goes through ``edit(obj) -> obj`` before it is sent,
        e.g. to report absurd usage or a ``delta`` that is not an object."""
        self._push(Behaviour("mangle", mangle=edit), times)

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
    def dispatch(self, ex: Exchange) -> None:
        """Record the request, then route it (applying the next behaviour to generations)."""
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
        kind = behaviour.kind if behaviour else None
        data = dumps(behaviour.mangle(payload) if kind == "mangle" else payload)  # type: ignore[union-attr,misc]
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
        try:
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
                ex.write_chunk(_mangled(data, behaviour.mangle) if kind == "mangle" else data)  # type: ignore[union-attr,arg-type]
                sent += phase == "content"
            ex.end_stream()
        except DISCONNECTS:
            with self._cond:
                self._aborted_streams += 1
            raise
        with self._cond:
            self._completed_streams += 1

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


def _mangled(data: bytes, edit: Callable[[Any], Any]) -> bytes:
    """Apply ``edit`` to each JSON object of an SSE event (``data:`` lines) or NDJSON line."""
    lines = []
    for line in data.split(b"\n"):
        prefix = b"data: " if line.startswith(b"data: ") else b"" if line.startswith(b"{") else None
        try:
            obj = json.loads(line[len(prefix):]) if prefix is not None else None
        except ValueError:  # [DONE] and the like
            obj = None
        lines.append(line if obj is None else prefix + dumps(edit(obj)))  # type: ignore[operator]
    return b"\n".join(lines)


def _first(*values: Any) -> Any:
    return next(v for v in values if v is not None)
