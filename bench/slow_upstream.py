"""A fake OpenAI-compatible upstream with model-like latency and a fault switch (127.0.0.1 only).

    python bench/slow_upstream.py --port 9200 [--ttft-ms 300:800] [--tps 20:50] [--tokens 20:60] [--seed 1]

Unlike bench/upstream.py (which answers at once, to measure the gateway's throughput),
this one takes as long as a model does: each request draws a time to first token from
`--ttft-ms`, a speed from `--tps` (tokens per second) and an answer length from
`--tokens` (at most the request's `max_tokens`), uniformly. A JSON answer arrives after
the whole generation; a stream sends the role chunk and the first token after the time
to first token, then one token per 1/tps seconds (scheduled on absolute times, so the
sleeps' overshoot does not add up), a finish chunk, a usage chunk when
`stream_options.include_usage`, and `data: [DONE]`.

Its own time per request (from the request's arrival to the last byte written) is what
the gateway's overhead is measured against (bench/load_test.py): it is sent as the
response header `x-upstream-ms` (JSON answers), and kept by the body field `bench_id`
when the request has one (the gateway passes unknown parameters through):
`GET /timings` returns `{bench_id: ms}` for every finished request, `?clear=1` empties it.

Faults (bench/soak.py): `POST /control/fault?mode=error|timeout|ok[&seconds=N]` makes
every chat request answer 503 (mode `error`, after 20 ms) or hang until the client
hangs up (mode `timeout`), for N seconds or until `mode=ok`. `GET /control/stats`
counts answers by outcome.

`POST /v1/traces`, `/v1/metrics`, `/v1/logs` answer 200 and are counted, so the same
process can stand in for an OTLP/HTTP collector (`OTEL_EXPORTER_OTLP_ENDPOINT`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter

from aiohttp import web

WORDS = ["Sure", ",", " here", " is", " a", " short", " answer", " about", " the", " topic", " you",
         " asked", " for", ".", " It", " covers", " the", " main", " points", " briefly", "."]
PROMPT_TOKENS = 12


def _range(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(":")
    return float(lo), float(hi or lo)


class Upstream:
    """The latency model, the fault switch and the timings (one event loop, no locks)."""

    def __init__(self, ttft_ms: tuple[float, float], tps: tuple[float, float], tokens: tuple[float, float],
                 seed: int | None) -> None:
        self.ttft_ms, self.tps, self.tokens = ttft_ms, tps, tokens
        self.rng = random.Random(seed)
        self.mode, self.mode_until = "ok", 0.0
        self.timings: dict[str, float] = {}
        self.stats: Counter = Counter()

    def fault(self) -> str:
        if self.mode != "ok" and self.mode_until and time.monotonic() >= self.mode_until:
            self.mode, self.mode_until = "ok", 0.0
        return self.mode

    def plan(self, req: dict) -> tuple[float, float, int]:
        """(seconds to first token, seconds per further token, tokens) for one request."""
        n = int(req.get("bench_tokens") or self.rng.uniform(*self.tokens))
        if isinstance(req.get("max_tokens"), int) and req["max_tokens"] > 0:
            n = min(n, req["max_tokens"])
        return self.rng.uniform(*self.ttft_ms) / 1000, 1 / self.rng.uniform(*self.tps), max(1, n)

    def done(self, req: dict, t0: float, outcome: str) -> float:
        ms = (time.perf_counter() - t0) * 1000
        self.stats[outcome] += 1
        if isinstance(req.get("bench_id"), str) and outcome == "ok":
            self.timings[req["bench_id"]] = round(ms, 3)
        return ms


def _text(n: int) -> list[str]:
    return [WORDS[i % len(WORDS)] for i in range(n)]


def _usage(n: int) -> dict:
    return {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": n, "total_tokens": PROMPT_TOKENS + n}


async def _sleep_until(t: float) -> None:
    delay = t - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)


async def chat(request: web.Request) -> web.StreamResponse:
    up: Upstream = request.app["upstream"]
    t0 = time.perf_counter()
    try:
        req = await request.json()
        assert isinstance(req, dict)
    except Exception:  # noqa: BLE001 - a bad body gets a 400 like OpenAI's
        return web.json_response({"error": {"message": "bad JSON", "type": "invalid_request_error"}}, status=400)
    mode = up.fault()
    if mode == "error":
        await asyncio.sleep(0.02)
        up.done(req, t0, "error")
        return web.json_response({"error": {"message": "overloaded (fault switch)", "type": "server_error"}},
                                 status=503)
    if mode == "timeout":
        up.stats["timeout"] += 1
        # The gateway gives up at its route's deadline and hangs up; aiohttp need not
        # cancel this handler then, so it ends by itself.
        await asyncio.sleep(60)
        return web.json_response({"error": {"message": "timed out (fault switch)"}}, status=504)
    model = str(req.get("model") or "fake-model")
    ttft, per_token, n = up.plan(req)
    words = _text(n)
    base = {"id": f"chatcmpl-slow-{id(request):x}", "created": int(time.time()), "model": model}
    if not req.get("stream"):
        await _sleep_until(t0 + ttft + per_token * (n - 1))
        body = {**base, "object": "chat.completion", "choices": [{
            "index": 0, "message": {"role": "assistant", "content": "".join(words)}, "finish_reason": "stop"}],
            "usage": _usage(n)}
        ms = up.done(req, t0, "ok")
        return web.json_response(body, headers={"x-upstream-ms": f"{ms:.3f}"})
    resp = web.StreamResponse(headers={"content-type": "text/event-stream", "cache-control": "no-cache"})
    await resp.prepare(request)

    def event(obj: dict) -> bytes:
        return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"

    def chunk(delta: dict, finish: str | None = None) -> bytes:
        return event({**base, "object": "chat.completion.chunk",
                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    try:
        await _sleep_until(t0 + ttft)
        await resp.write(chunk({"role": "assistant", "content": ""}) + chunk({"content": words[0]}))
        for i, word in enumerate(words[1:], start=1):
            await _sleep_until(t0 + ttft + per_token * i)
            await resp.write(chunk({"content": word}))
        tail = chunk({}, "stop")
        if (req.get("stream_options") or {}).get("include_usage"):
            tail += event({**base, "object": "chat.completion.chunk", "choices": [], "usage": _usage(n)})
        await resp.write(tail + b"data: [DONE]\n\n")
        await resp.write_eof()
    except ConnectionError:  # the gateway hung up (its client left, or a kill)
        up.done(req, t0, "hung_up")
        return resp
    up.done(req, t0, "ok")
    return resp


async def control_fault(request: web.Request) -> web.Response:
    up: Upstream = request.app["upstream"]
    if request.method == "POST":
        mode = request.query.get("mode", "ok")
        if mode not in ("ok", "error", "timeout"):
            return web.json_response({"error": f"unknown mode {mode!r}"}, status=400)
        seconds = float(request.query.get("seconds") or 0)
        up.mode, up.mode_until = mode, (time.monotonic() + seconds if seconds > 0 and mode != "ok" else 0.0)
    return web.json_response({"mode": up.fault()})


async def control_stats(request: web.Request) -> web.Response:
    return web.json_response(dict(request.app["upstream"].stats))


async def timings(request: web.Request) -> web.Response:
    up: Upstream = request.app["upstream"]
    out = up.timings
    if request.query.get("clear"):
        up.timings = {}
    return web.json_response(out)


async def otlp(request: web.Request) -> web.Response:
    await request.read()
    request.app["upstream"].stats["otlp" + request.path.replace("/", "_")] += 1
    return web.Response(body=b"", content_type="application/x-protobuf")


async def health(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def make_app(up: Upstream) -> web.Application:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app["upstream"] = up
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/chat/completions", chat)
    app.router.add_route("*", "/control/fault", control_fault)
    app.router.add_get("/control/stats", control_stats)
    app.router.add_get("/timings", timings)
    for path in ("/v1/traces", "/v1/metrics", "/v1/logs"):
        app.router.add_post(path, otlp)
    app.router.add_get("/health", health)
    return app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9200)
    p.add_argument("--ttft-ms", default="300:800", help="time to first token, LO:HI milliseconds (uniform)")
    p.add_argument("--tps", default="20:50", help="tokens per second, LO:HI (uniform)")
    p.add_argument("--tokens", default="20:60", help="answer length in tokens, LO:HI (at most max_tokens)")
    p.add_argument("--seed", type=int, help="random seed (default: unseeded)")
    args = p.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("the fake upstream listens on the loopback interface only")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    up = Upstream(_range(args.ttft_ms), _range(args.tps), _range(args.tokens), args.seed)
    web.run_app(make_app(up), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
