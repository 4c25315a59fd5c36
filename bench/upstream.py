"""A fast fake OpenAI-compatible upstream for the benchmark (127.0.0.1 only).

    python bench/upstream.py --port 9100 [--processes N] [--chunks 8] [--words leading|trailing] [--answer digest]

POST /v1/chat/completions answers at once, with keep-alive:
  * JSON `chat.completion` with `usage` when the body has no `"stream": true`;
  * SSE otherwise: a role chunk, `--chunks` content chunks, a finish chunk, a usage
    chunk (`choices: []`) when `stream_options.include_usage` is true, `data: [DONE]`.
Two extra body fields (the gateway passes unknown parameters through) shape a stream
for the soak: `bench_chunks` (content chunks) and `bench_delay_ms` (pause between
chunks), so a client can hang up while the stream is still being produced.
POST /v1/embeddings answers one fixed 256-float vector per input, with usage.
GET /health (or anything else) answers 200 / 404 quickly.

The answer is one word a chunk: "Hello", " from", " the" ... (`--words leading`, the
default: spaces lead, as in LLM tokens, so every chunk ends inside a word), or
"Hello ", "from ", "the " ... (`--words trailing`: every chunk ends with a space).
Neither has digits, "@", key prefixes or brackets; but a streamed output guardrail
may hold back a trailing word (it could still grow into an e-mail address), so
only `trailing` is text with no PII-like tail at any chunk boundary.

`--answer digest` (the cache benchmark's replay) answers every request with
"answer:<first 16 hex digits of the SHA-256 of the last user message's text>": which
question an answer was produced for can be read off the answer, so a cached answer
served to another question shows. Streams then carry that text as one content chunk.

A raw asyncio Protocol with httptools' parser and uvloop when installed (see
bench/requirements.txt); the stdlib event loop otherwise. Measured capacity is in
BENCHMARKS.md: it must be many times the gateway's rate so it never bottlenecks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import time

try:
    import orjson

    _loads, _dumps = orjson.loads, orjson.dumps
except ImportError:  # pragma: no cover - the gateway's venv has orjson
    _loads = json.loads

    def _dumps(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

import httptools

WORDS = ["Hello", " from", " the", " fake", " upstream", ".", " It", " answers", " at", " once", "."]
WORDS_TRAILING = ["Hello ", "from ", "the ", "fake ", "upstream. ", "It ", "answers ", "at ", "once. "]
PROMPT_TOKENS, DEFAULT_CHUNKS = 12, 8
_HEAD_JSON = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n"
_HEAD_SSE = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
             b"transfer-encoding: chunked\r\n%s\r\n")
_KEEP = b"connection: keep-alive\r\n"
_CLOSE = b"connection: close\r\n"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 24\r\n%s\r\n{\"error\":\"unknown path\"}"
_HEALTH = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n%s\r\nok"
_BAD_BODY = b'{"error":{"message":"The request body is not valid JSON.","type":"invalid_request_error"}}'
_BAD = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s"
_cache: dict[tuple, bytes] = {}
_VECTOR = [round(((i * 37) % 101) / 101 - 0.5, 6) for i in range(256)]
DIGEST = False  # --answer digest


def question_digest(messages) -> str:
    """The answer of `--answer digest`: names the question it answers (bench/cache_replay.py
    maps it back)."""
    import hashlib

    text = ""
    for m in reversed(messages or []):
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            text = content if isinstance(content, str) else "".join(
                str(p.get("text") or "") for p in content or [] if isinstance(p, dict))
            break
    return "answer:" + hashlib.sha256(text.strip().encode()).hexdigest()[:16]


def digest_body(model: str, text: str) -> bytes:
    return _dumps({
        "id": "chatcmpl-fakeupstream", "object": "chat.completion", "created": int(time.time()), "model": model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 4, "total_tokens": PROMPT_TOKENS + 4},
    })


def digest_events(model: str, text: str, include_usage: bool) -> list[bytes]:
    base = {"id": "chatcmpl-fakeupstream", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "system_fingerprint": None}
    events = [_event({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})
              for delta, finish in (({"role": "assistant", "content": ""}, None), ({"content": text}, None),
                                    ({}, "stop"))]
    if include_usage:
        events.append(_event({**base, "choices": [], "usage": {
            "prompt_tokens": PROMPT_TOKENS, "completion_tokens": 4, "total_tokens": PROMPT_TOKENS + 4}}))
    return events + [b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"]


def completion_body(model: str, chunks: int) -> bytes:
    key = ("json", model, chunks)
    body = _cache.get(key)
    if body is None:
        text = "".join(WORDS[i % len(WORDS)] for i in range(chunks))
        body = _dumps({
            "id": "chatcmpl-fakeupstream", "object": "chat.completion", "created": int(time.time()),
            "model": model, "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": chunks,
                      "total_tokens": PROMPT_TOKENS + chunks},
        })
        if len(_cache) < 4096:
            _cache[key] = body
    return body


def _event(obj) -> bytes:
    data = b"data: " + _dumps(obj) + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


def stream_events(model: str, chunks: int, include_usage: bool) -> list[bytes]:
    """Each SSE event already framed as one HTTP chunk; the list ends with the 0-chunk."""
    key = ("sse", model, chunks, include_usage)
    events = _cache.get(key)
    if events is not None:
        return events
    base = {"id": "chatcmpl-fakeupstream", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "system_fingerprint": None}

    def chunk(delta: dict, finish=None) -> bytes:
        obj = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if include_usage:
            obj["usage"] = None
        return _event(obj)

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": WORDS[i % len(WORDS)]}) for i in range(chunks)]
    events.append(chunk({}, "stop"))
    if include_usage:
        events.append(_event({**base, "choices": [], "usage": {
            "prompt_tokens": PROMPT_TOKENS, "completion_tokens": chunks, "total_tokens": PROMPT_TOKENS + chunks}}))
    events.append(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
    if len(_cache) < 4096:
        _cache[key] = events
    return events


class FakeOpenAI(asyncio.Protocol):
    __slots__ = ("transport", "parser", "url", "body", "keep_alive", "default_chunks", "busy")

    def __init__(self, default_chunks: int) -> None:
        self.default_chunks = default_chunks
        self.parser = httptools.HttpRequestParser(self)
        self.transport = None
        self.url = b""
        self.body: list[bytes] = []
        self.keep_alive = True
        self.busy: asyncio.Task | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc) -> None:
        self.transport = None
        if self.busy is not None:
            self.busy.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url, self.body = b"", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        conn = _KEEP if self.keep_alive else _CLOSE
        path = self.url.split(b"?", 1)[0]
        method = self.parser.get_method()
        if method == b"POST" and path.endswith(b"/chat/completions"):
            self.chat(conn)
        elif method == b"POST" and path.endswith(b"/embeddings"):
            self.embeddings(conn)
        elif path in (b"/health", b"/healthz", b"/v1/health"):
            self.write(_HEALTH % conn)
        else:
            self.write(_NOT_FOUND % conn)

    def write(self, data: bytes) -> None:
        if self.transport is None:
            return
        self.transport.write(data)
        if not self.keep_alive:
            self.transport.close()

    def embeddings(self, conn: bytes) -> None:
        """OpenAI's embeddings answer: one fixed 256-float vector per input, float encoding."""
        try:
            req = _loads(b"".join(self.body))
            inputs = req.get("input")
            inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        except Exception:  # noqa: BLE001
            self.write(_BAD % (len(_BAD_BODY), conn, _BAD_BODY))
            return
        data = [{"object": "embedding", "index": i, "embedding": _VECTOR} for i in range(len(inputs))]
        tokens = sum(max(1, len(str(t)) // 4) for t in inputs)
        body = json.dumps({"object": "list", "data": data, "model": str(req.get("model") or ""),
                           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}},
                          separators=(",", ":")).encode()
        self.write(_HEAD_JSON % (len(body), conn) + body)

    def chat(self, conn: bytes) -> None:
        try:
            req = _loads(b"".join(self.body))
            model = str(req.get("model") or "gpt-4o-mini")
        except Exception:  # noqa: BLE001 - a bad body gets a 400 like OpenAI's
            self.write(_BAD % (len(_BAD_BODY), conn, _BAD_BODY))
            return
        if DIGEST:
            text = question_digest(req.get("messages"))
            if not req.get("stream"):
                body = digest_body(model, text)
                self.write(_HEAD_JSON % (len(body), conn) + body)
            else:
                usage = bool((req.get("stream_options") or {}).get("include_usage"))
                self.write(_HEAD_SSE % conn + b"".join(digest_events(model, text, usage)))
            return
        chunks = req.get("bench_chunks") or self.default_chunks
        chunks = max(1, min(int(chunks), 10_000))
        if not req.get("stream"):
            body = completion_body(model, chunks)
            self.write(_HEAD_JSON % (len(body), conn) + body)
            return
        include_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        events = stream_events(model, chunks, include_usage)
        head = _HEAD_SSE % conn
        delay = float(req.get("bench_delay_ms") or 0) / 1000
        if delay <= 0:
            self.write(head + b"".join(events))
        else:
            self.busy = asyncio.get_running_loop().create_task(self.slow(head, events, delay))

    async def slow(self, head: bytes, events: list[bytes], delay: float) -> None:
        try:
            self.transport.write(head + events[0])
            for event in events[1:]:
                await asyncio.sleep(delay)
                if self.transport is None:
                    return
                self.transport.write(event)
            if not self.keep_alive and self.transport is not None:
                self.transport.close()
        except (asyncio.CancelledError, AttributeError):
            pass
        finally:
            self.busy = None


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.setblocking(False)
    return sock


def serve(host: str, port: int, chunks: int) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: FakeOpenAI(chunks), sock=_listen(host, port), backlog=4096)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--processes", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    parser.add_argument("--chunks", type=int, default=DEFAULT_CHUNKS, help="content chunks per answer")
    parser.add_argument("--words", choices=["leading", "trailing"], default="leading",
                        help="chunks like ' from' (default) or 'from ' (no chunk ends inside a word)")
    parser.add_argument("--answer", choices=["static", "digest"], default="static",
                        help="static (default): the fixed answer; digest: 'answer:<sha256 of the question>'")
    args = parser.parse_args(argv)
    global WORDS, DIGEST
    if args.words == "trailing":
        WORDS = WORDS_TRAILING
    DIGEST = args.answer == "digest"
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("the fake upstream listens on the loopback interface only")
    children = []
    for _ in range(args.processes - 1):
        pid = os.fork()
        if pid == 0:
            serve(args.host, args.port, args.chunks)
            os._exit(0)
        children.append(pid)
    try:
        serve(args.host, args.port, args.chunks)
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
            except OSError:
                pass


if __name__ == "__main__":
    main()
