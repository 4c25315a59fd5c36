"""Micro-benchmark: what structured logging adds per /v1 request, in µs.

    .venv/bin/python bench/access_log.py [--n 50000]

Measures, in this process (no server, no I/O: the handler writes to a null stream),
the per-request pieces routing/api.py and routing/pipeline.py run: the request
context (`begin_request` + the Call claiming its id), and the one gateway.access line
(`access_log.call_settled`) through a handler built as settings.LOGGING's console
handler (context filter, ScrubSecrets holding 20 provider keys, the formatter) in
plain and JSON mode, and with GATEWAY_ACCESS_LOG=false; and, to read the figures on a busy machine, one
bare `logging.info` through a handler without filters. CPU time of this process,
best of five runs. Prints one line per case;
docs/operations/logs.md has the figures.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import sys
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from gateway_project import logs  # noqa: E402
from providers import secrets  # noqa: E402
from routing import access_log  # noqa: E402


class _Null(io.TextIOBase):
    def write(self, s: str) -> int:
        return len(s)


def _call_and_entry():
    call = SimpleNamespace(
        request_id="0" * 32, endpoint="chat", annotations={"cache": {"result": "miss"}},
        route=SimpleNamespace(name="chat-default"), key=SimpleNamespace(team_name="research"),
        req=SimpleNamespace(stream=False), run=SimpleNamespace(started=time.monotonic()),
    )
    entry = SimpleNamespace(
        endpoint="chat", route_name="chat-default", model_name="openai/gpt-4o-mini", provider_name="openai",
        team_name="research", stream=False, latency_ms=412, ttft_ms=None, prompt_tokens=25, completion_tokens=120,
        cache_read_tokens=0, cost_usd=Decimal("0.0000759"), attempts=1,
    )
    return call, entry


def _per_call_us(fn, n: int) -> float:
    for _ in range(min(n, 2000)):  # warm up
        fn()
    best = float("inf")
    for _ in range(5):  # best of five: the figure least disturbed by other work on the machine
        start = time.process_time()  # this process's CPU: less disturbed by others' load than wall time
        for _ in range(n):
            fn()
        best = min(best, (time.process_time() - start) / n)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50000)
    n = parser.parse_args().n
    for i in range(20):
        secrets.remember(f"sk-bench-provider-key-{i:04d}-abcdefghijklmnop")

    access = logging.getLogger("gateway.access")
    access.propagate = False
    access.setLevel(logging.INFO)
    handler = logging.StreamHandler(_Null())
    handler.addFilter(logs.RequestContextFilter())
    handler.addFilter(secrets.ScrubSecrets())
    access.addHandler(handler)
    call, entry = _call_and_entry()

    def context() -> None:
        logs.begin_request()
        logs.claim_request_id()

    def line() -> None:
        access_log.call_settled(call, entry, "success", 200, "")

    baseline = logging.getLogger("bench.baseline")
    baseline.propagate = False
    baseline.addHandler(logging.StreamHandler(_Null()))
    results = {"baseline: one plain logging.info, no filters": _per_call_us(lambda: baseline.info("x"), n),
               "request context (begin_request + claim)": _per_call_us(context, n)}
    handler.setFormatter(logs.PlainFormatter(settings.LOGGING["formatters"]["plain"]["format"]))
    results["access line, plain"] = _per_call_us(line, n)
    handler.setFormatter(logs.JsonFormatter())
    results["access line, json"] = _per_call_us(line, n)
    secrets.forget_all_for_tests()  # ScrubSecrets with nothing to scrub: the rest of the line's cost
    results["access line, json, no provider keys held"] = _per_call_us(line, n)
    settings.GATEWAY_ACCESS_LOG = False
    results["access line, GATEWAY_ACCESS_LOG=false"] = _per_call_us(line, n)
    for name, us in results.items():
        print(f"{name:45s} {us:8.2f} µs per request")


if __name__ == "__main__":
    main()
