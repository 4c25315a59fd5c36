"""What tracing costs a request, measured in process (docs/operations/tracing.md).

    .venv/bin/python bench/tracing_overhead.py [--n 200000]

- off: every hook one request runs with tracing off (routing.api's check and its extra
  coroutine frame, an attempt's start/within/done, the traceparent check on the provider
  request, the stream watch, the non-streamed answer, settlement), in µs per request;
- on: the same request's spans made for real (server span with traceparent extracted,
  one client span current during the call, traceparent injected, settlement's
  attributes, both ended and queued to the BatchSpanProcessor exporting to a local fake
  collector), in µs of the request's own CPU: thread time of the serving thread (the
  export, protobuf encoding included, runs on the processor's thread: its CPU is
  reported apart, per request, as the process's CPU minus the serving thread's).
Stand-ins (SimpleNamespace) play the pipeline's Call and Run: only the hooks are timed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from decimal import Decimal
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)

import django  # noqa: E402

django.setup()

from providers import tracecontext  # noqa: E402
from providers.types import ChatResponse, Usage  # noqa: E402
from routing import tracing  # noqa: E402

SCOPE = {"type": "http", "path": "/v1/chat/completions", "method": "POST", "scheme": "http",
         "headers": [(b"traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                     (b"content-type", b"application/json")]}
START = {"type": "http.response.start", "status": 200, "headers": [(b"x-request-id", b"abc")]}


def stand_ins():
    provider = SimpleNamespace(kind="openai", name="primary", base_url="http://127.0.0.1:9/v1")
    model = SimpleNamespace(provider=provider, upstream_id="gpt-4o-mini", label="primary/gpt-4o-mini")
    target = SimpleNamespace(model=model)
    route = SimpleNamespace(name="bench", trace_content=False)
    run = SimpleNamespace(route=route, calls=0, trace=None, target=target)
    req = SimpleNamespace(model="bench", params={"temperature": 0}, max_tokens=None, messages=[])
    key = SimpleNamespace(team_name="", prefix="gw-bench")
    call = SimpleNamespace(run=run, route=route, req=req, key=key, usage=Usage(20, 10), cost=Decimal("0.0001"),
                           request_id="abc", ttft=None, endpoint="chat", blocked=False, stage_state={})
    response = ChatResponse("gpt-4o-mini", [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
                            Usage(20, 10))
    return run, target, call, response


async def one_request(run, target, call, response, headers) -> None:
    """The hooks of one non-streamed request with one attempt, in the pipeline's order."""
    span = tracing.start_attempt(run, target)
    with tracing.within(span):
        tracecontext.outgoing(headers)
    run.calls = 1
    tracing.attempt_done(run, span, response)
    tracing.answered(call, response)
    tracing.watch_stream(call, None)
    tracing.settled(call, "success", 200, "")
    run.calls = 0


async def _app(scope, receive, send) -> None:
    await send(START)


async def _send(message) -> None:
    pass


async def measure(n: int, on: bool) -> float:
    run, target, call, response = stand_ins()
    headers = {"authorization": "Bearer x", "content-type": "application/json"}

    async def request() -> None:
        await one_request(run, target, call, response, headers)
        await _app(SCOPE, None, _send)

    async def entry(scope, receive, send) -> None:  # routing.api.app's shape
        if tracing.enabled():
            await tracing.serve(scope, receive, send, served)
            return
        await served(scope, receive, send)

    async def served(scope, receive, send) -> None:
        await send(START)
        await one_request(run, target, call, response, headers)

    for _ in range(min(n, 2000)):  # warm up
        await entry(SCOPE, None, _send)
    tracing.flush_tracing(30)
    t0, p0 = time.thread_time(), time.process_time()
    for _ in range(n):
        await entry(SCOPE, None, _send)
        if on and _ % 256 == 0:
            await asyncio.sleep(0)  # let the processor's thread take the GIL, as a server's idle moments do
    hooks = time.thread_time() - t0
    tracing.flush_tracing(60)  # (may export on this thread: counted with the export's CPU)
    process = time.process_time() - p0
    others = process - hooks
    t0 = time.thread_time()
    for _ in range(n):  # the same request's own work without any tracing hook
        await _app(SCOPE, None, _send)
    bare = time.thread_time() - t0
    del request
    return (hooks - bare) / n * 1e6, others / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    tracing.reset_tracing()
    assert not tracing.enabled()
    off = min(asyncio.run(measure(args.n, on=False)) for _ in range(3))[0]
    assert "opentelemetry.sdk.trace" not in sys.modules
    from tests.tracing_helpers import FakeCollector

    with FakeCollector() as collector:
        assert tracing.configure_tracing(collector.url)
        n_on = max(args.n // 10, 1000)
        on, export = min(asyncio.run(measure(n_on, on=True)) for _ in range(3))
        tracing.flush_tracing(30)
        received = len(collector.spans)
        tracing.reset_tracing()
    print("| tracing | µs of CPU per request (hooks only) |")
    print("|---|---|")
    print(f"| off (no OTEL_EXPORTER_OTLP_ENDPOINT) | {off:.2f} |")
    print(f"| on (server + 1 client span, batch export to a local collector) | {on:.1f} |")
    print(f"| on: the export thread (and the local collector's decoding) | {export:.1f} |")
    print(f"\n{args.n} requests off, {n_on} x 3 (+ warm-up) on; the collector received {received} spans "
          "(a full queue drops spans rather than wait: OTEL_BSP_MAX_QUEUE_SIZE).")


if __name__ == "__main__":
    main()
