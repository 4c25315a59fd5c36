"""One chat completion through the gateway, timed and judged (bench/soak.py, bench/load_test.py).

A request is *complete* when the client got everything a caller needs: HTTP 200 and a
JSON body whose first choice has content, or a stream that carried content and ended
with `data: [DONE]`. Anything else (an error status, a refused connection, a stream
cut short) is not, and says why in `error`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field

import aiohttp


@dataclass(slots=True)
class Outcome:
    """What one request did, as the client saw it (times in milliseconds from sending)."""

    started: float  # time.time() when sent
    stream: bool
    route: str
    key: str = ""
    status: int = 0
    complete: bool = False
    request_id: str = ""
    error: str = ""
    e2e_ms: float = 0.0
    ttft_ms: float | None = None
    attempt_log: str = ""
    cache: str = ""
    bench_id: str = ""
    extra: dict = field(default_factory=dict)


def body(route: str, text: str, *, stream: bool, max_tokens: int, **extra) -> dict:
    obj = {"model": route, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens, **extra}
    if stream:
        obj.update(stream=True, stream_options={"include_usage": True})
    return obj


async def send(session: aiohttp.ClientSession, url: str, key_secret: str, payload: dict, *,
               key: str = "", timeout_s: float = 30.0) -> Outcome:
    """POST `payload` to url (…/v1/chat/completions) with the key; never raises for
    transport trouble (it is an outcome like any other)."""
    stream = bool(payload.get("stream"))
    out = Outcome(started=time.time(), stream=stream, route=str(payload.get("model")), key=key,
                  bench_id=str(payload.get("bench_id") or ""))
    t0 = time.perf_counter()
    try:
        async with session.post(url, json=payload, headers={"Authorization": f"Bearer {key_secret}"},
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp:
            out.status = resp.status
            out.request_id = resp.headers.get("x-request-id", "")
            out.attempt_log = resp.headers.get("x-gateway-attempt-log", "")
            out.cache = resp.headers.get("x-gateway-cache", "")
            if resp.status != 200:
                text = await resp.text()
                try:
                    out.error = str(json.loads(text)["error"].get("code") or resp.status)
                except (ValueError, KeyError, TypeError, AttributeError):
                    out.error = f"http {resp.status}"
            elif not stream:
                data = await resp.json(content_type=None)
                content = ((data.get("choices") or [{}])[0].get("message") or {}).get("content")
                out.complete = bool(content)
                out.error = "" if out.complete else "empty answer"
            else:
                done, got_content = False, False
                async for raw in resp.content:
                    line = raw.strip()
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        done = True
                        break
                    if not got_content:
                        event = json.loads(data)
                        if "error" in event:
                            out.error = str(event["error"].get("code") or "stream error")
                            break
                        delta = ((event.get("choices") or [{}])[0].get("delta") or {})
                        if delta.get("content"):
                            got_content = True
                            out.ttft_ms = (time.perf_counter() - t0) * 1000
                out.complete = done and got_content
                if not out.complete and not out.error:
                    out.error = "stream cut short" if not done else "stream without content"
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        out.error = type(exc).__name__
    out.e2e_ms = (time.perf_counter() - t0) * 1000
    return out


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]
