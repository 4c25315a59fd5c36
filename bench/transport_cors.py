"""What the /v1 transport wrapper (routing/cors.py: CORS and X-Content-Type-Options)
costs per request, in microseconds of CPU, in process: the same trivial ASGI app called
bare and through the wrapper, with the headers an SDK sends (12 of them).

    .venv/bin/python bench/transport_cors.py [-n 200000] [--chunks 0]

Cases: bare app; wrapper with CORS off (nosniff only); CORS on, a request without Origin
(server-side SDK); CORS on with an allowed Origin (browser); a preflight. `--chunks N`
makes the app send N more body messages (a stream): the wrapper sees every message.
Prints the median of 5 runs per case and the difference from the bare app.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")

import django  # noqa: E402

django.setup()

from django.test import override_settings  # noqa: E402

from routing.cors import TransportHeaders  # noqa: E402

SDK_HEADERS = [
    (b"host", b"127.0.0.1:8000"), (b"accept", b"application/json"), (b"content-type", b"application/json"),
    (b"user-agent", b"OpenAI/Python 2.0"), (b"x-stainless-lang", b"python"), (b"x-stainless-package-version", b"2.0"),
    (b"x-stainless-os", b"Linux"), (b"x-stainless-arch", b"x64"), (b"x-stainless-runtime", b"CPython"),
    (b"x-stainless-runtime-version", b"3.11"), (b"authorization", b"Bearer sk-gw-xxxxxxxxxxxxxxxx"),
    (b"content-length", b"80"),
]
ORIGIN = b"https://app.example.com"
RESPONSE_HEADERS = [(b"content-type", b"application/json"), (b"x-request-id", b"0123456789abcdef"),
                    (b"x-gateway-route", b"chat"), (b"x-gateway-attempts", b"1"), (b"x-gateway-model", b"openai/gpt"),
                    (b"content-length", b"200")]


def make_app(chunks: int):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": list(RESPONSE_HEADERS)})
        for _ in range(chunks):
            await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


async def _send(message):
    pass


async def _loop(app, scope, n: int) -> float:
    start = time.process_time()
    for _ in range(n):
        await app(dict(scope), None, _send)
    return (time.process_time() - start) / n * 1e6


def run(app, scope, n: int) -> float:
    return statistics.median(asyncio.run(_loop(app, scope, n)) for _ in range(5))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=200_000)
    parser.add_argument("--chunks", type=int, default=0)
    args = parser.parse_args()
    bare = make_app(args.chunks)
    plain = {"type": "http", "method": "POST", "path": "/v1/chat/completions", "headers": SDK_HEADERS}
    browser = {**plain, "headers": [*SDK_HEADERS, (b"origin", ORIGIN)]}
    preflight = {"type": "http", "method": "OPTIONS", "path": "/v1/chat/completions",
                 "headers": [(b"host", b"127.0.0.1:8000"), (b"origin", ORIGIN),
                             (b"access-control-request-method", b"POST"),
                             (b"access-control-request-headers", b"authorization,content-type,x-stainless-os")]}
    results = {"bare app": run(bare, plain, args.n)}
    with override_settings(GATEWAY_CORS_ALLOWED_ORIGINS=[]):
        results["wrapper, CORS off"] = run(TransportHeaders(bare), plain, args.n)
    with override_settings(GATEWAY_CORS_ALLOWED_ORIGINS=[ORIGIN.decode(), "https://*.example.org"]):
        wrapped = TransportHeaders(bare)
        results["CORS on, no Origin"] = run(wrapped, plain, args.n)
        results["CORS on, allowed Origin"] = run(wrapped, browser, args.n)
        results["CORS on, preflight"] = run(wrapped, preflight, args.n)
    base = results["bare app"]
    print(f"{args.n} requests per run, {args.chunks} extra body messages, median of 5 runs (CPU µs per request)")
    for name, us in results.items():
        extra = "" if name == "bare app" else f"  (+{us - base:.2f} µs)"
        if name == "CORS on, preflight":
            extra = "  (answered by the wrapper: the app is not called)"
        print(f"  {name:26} {us:6.2f} µs{extra}")


if __name__ == "__main__":
    main()
