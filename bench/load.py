"""Load generation for the benchmark: wrk for latency/throughput, an asyncio client
(raw sockets + httptools, uvloop when present) for streams, exact counts and the soak.

    python bench/load.py wrk    URL --model bench --auth "Bearer sk-.." -c 32 -d 10
    python bench/load.py stream URL --model bench --auth "Bearer sk-.." -c 8 -n 200
    python bench/load.py count  URL --model bench --auth "Bearer sk-.." -c 8 -n 2000

`--prompt-bytes N` sends a user message of about N bytes of prose (bench/prompt.py)
instead of the one-line prompt.

A stream's time to first token is from writing the request to the first SSE event
whose delta has non-empty content; time to last token is to `data: [DONE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

import prompt

try:
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads

HERE = os.path.dirname(os.path.abspath(__file__))
PROMPT = prompt.messages(0)


@dataclass
class Target:
    """Where to send chat completions: URL, extra headers, the `model` to ask for."""

    name: str
    url: str
    model: str = "bench"
    headers: dict = field(default_factory=dict)
    prompt_bytes: int = 0  # 0: the one-line prompt; else about this many bytes of prose

    def body(self, stream: bool = False, **extra) -> bytes:
        obj = {"model": self.model, "messages": prompt.messages(self.prompt_bytes), **extra}
        if stream:
            obj.update(stream=True, stream_options={"include_usage": True})
        return json.dumps(obj, separators=(",", ":")).encode()

    def raw(self, body: bytes) -> bytes:
        u = urlsplit(self.url)
        head = [f"POST {u.path or '/'} HTTP/1.1", f"Host: {u.netloc}", "Content-Type: application/json",
                f"Content-Length: {len(body)}", "Connection: keep-alive"]
        head += [f"{k}: {v}" for k, v in self.headers.items()]
        return ("\r\n".join(head) + "\r\n\r\n").encode() + body

    @property
    def addr(self) -> tuple[str, int]:
        u = urlsplit(self.url)
        return u.hostname or "127.0.0.1", u.port or 80


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


# --- asyncio HTTP/1.1 client --------------------------------------------------------

class _Conn(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.transport = None
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future | None = None
        self.on_data = None
        self.closed = False
        self.keep = True

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.done is not None and not self.done.done():
            self.done.set_exception(ConnectionError("connection closed before the response ended"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.done is not None and not self.done.done():
                self.done.set_exception(ConnectionError(f"bad response: {exc}"))

    def on_body(self, body: bytes) -> None:
        if self.on_data is not None:
            self.on_data(body)

    def on_message_complete(self) -> None:
        self.keep = self.parser.should_keep_alive()
        if self.done is not None and not self.done.done():
            self.done.set_result(self.parser.get_status_code())

    async def request(self, raw: bytes, on_data=None) -> int:
        self.done = asyncio.get_running_loop().create_future()
        self.on_data = on_data
        self.transport.write(raw)
        return await self.done


async def _connect(target: Target) -> _Conn:
    _, conn = await asyncio.get_running_loop().create_connection(_Conn, *target.addr)
    return conn


class _Stream:
    """SSE bookkeeping for one streamed answer."""

    __slots__ = ("t0", "buf", "ttft", "ttlt")

    def __init__(self, t0: float) -> None:
        self.t0, self.buf, self.ttft, self.ttlt = t0, b"", None, None

    def feed(self, data: bytes) -> None:
        self.buf += data
        while b"\n\n" in self.buf:
            event, self.buf = self.buf.split(b"\n\n", 1)
            if not event.startswith(b"data: "):
                continue
            payload = event[6:]
            if payload == b"[DONE]":
                self.ttlt = time.perf_counter() - self.t0
            elif self.ttft is None:
                obj = _loads(payload)
                for choice in obj.get("choices") or ():
                    if (choice.get("delta") or {}).get("content"):
                        self.ttft = time.perf_counter() - self.t0
                        break


async def _workers(concurrency: int, n: int, target: Target, job) -> None:
    left = [n]

    async def worker() -> None:
        conn = None
        while left[0] > 0:
            left[0] -= 1
            if conn is None or conn.closed or not conn.keep:
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                conn = await _connect(target)
            try:
                await job(conn)
            except ConnectionError:
                conn = None
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def stream_run(target: Target, concurrency: int, n: int, **extra) -> dict:
    """n streamed requests over `concurrency` connections: TTFT and TTLT percentiles (ms)."""
    raw = target.raw(target.body(stream=True, **extra))
    ttft, ttlt, statuses = [], [], Counter()

    async def job(conn: _Conn) -> None:
        s = _Stream(time.perf_counter())
        status = await conn.request(raw, s.feed)
        statuses[status] += 1
        if status == 200 and s.ttft is not None and s.ttlt is not None:
            ttft.append(s.ttft * 1000)
            ttlt.append(s.ttlt * 1000)
        else:
            statuses["incomplete"] += 1

    t0 = time.perf_counter()
    await _workers(concurrency, n, target, job)
    out = {"n": n, "ok": len(ttft), "statuses": dict(statuses), "elapsed_s": time.perf_counter() - t0}
    for name, values in (("ttft", ttft), ("ttlt", ttlt)):
        for p in (50, 95, 99):
            out[f"{name}_p{p}_ms"] = pct(values, p)
        out[f"{name}_mean_ms"] = statistics.fmean(values) if values else float("nan")
    return out


async def count_run(target: Target, concurrency: int, n: int, stream: bool = False) -> dict:
    """Exactly n complete requests (for CPU per request and the usage-record check)."""
    raw = target.raw(target.body(stream=stream))
    statuses: Counter = Counter()

    async def job(conn: _Conn) -> None:
        statuses[await conn.request(raw, (lambda _d: None))] += 1

    t0 = time.perf_counter()
    await _workers(concurrency, n, target, job)
    return {"n": n, "statuses": dict(statuses), "elapsed_s": time.perf_counter() - t0}


async def alternate_run(targets: list[Target], n: int, stream: bool = False, **extra) -> list[dict]:
    """Concurrency 1 against several targets in turn, one request each, n rounds (the
    order rotates every round, so none always follows another): whatever the machine
    does meanwhile, every target sees it alike. Latency (JSON) or TTFT and time to last
    token (streams) percentiles in ms, per target. `extra`: more body fields."""
    raws = [t.raw(t.body(stream=stream, **extra)) for t in targets]
    conns: list[_Conn | None] = [None] * len(targets)
    times: list[dict[str, list[float]]] = [{"lat": [], "ttft": [], "ttlt": []} for _ in targets]
    statuses: list[Counter] = [Counter() for _ in targets]
    for i in range(n):
        for k in range(len(targets)):
            j = (i + k) % len(targets)
            conn = conns[j]
            if conn is None or conn.closed or not conn.keep:
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                conn = conns[j] = await _connect(targets[j])
            t0 = time.perf_counter()
            s = _Stream(t0)
            try:
                status = await conn.request(raws[j], s.feed if stream else (lambda _d: None))
            except ConnectionError:
                conns[j] = None
                statuses[j]["error"] += 1
                continue
            statuses[j][status] += 1
            if status != 200:
                continue
            if not stream:
                times[j]["lat"].append((time.perf_counter() - t0) * 1000)
            elif s.ttft is not None and s.ttlt is not None:
                times[j]["ttft"].append(s.ttft * 1000)
                times[j]["ttlt"].append(s.ttlt * 1000)
    for conn in conns:
        if conn is not None and conn.transport is not None:
            conn.transport.close()
    out = []
    for t, tm, st in zip(targets, times, statuses):
        res: dict = {"name": t.name, "n": n, "statuses": dict(st)}
        for name in ("ttft", "ttlt") if stream else ("lat",):
            res["ok"] = len(tm[name])
            for p in (50, 95, 99):
                res[f"{name}_p{p}_ms"] = pct(tm[name], p)
        out.append(res)
    return out


async def abort_one(target: Target, raw: bytes) -> bool:
    """Open a (slow) stream, wait for its first token, then hang up mid-stream."""
    conn = await _connect(target)
    got = asyncio.get_running_loop().create_future()
    s = _Stream(time.perf_counter())

    def feed(data: bytes) -> None:
        s.feed(data)
        if s.ttft is not None and not got.done():
            got.set_result(True)

    conn.on_data = feed
    conn.done = ended = asyncio.get_running_loop().create_future()
    ended.add_done_callback(lambda f: f.cancelled() or f.exception())  # consumed: no warning
    conn.transport.write(raw)
    try:
        await asyncio.wait((got, ended), timeout=10, return_when=asyncio.FIRST_COMPLETED)
        return got.done()
    finally:
        conn.transport.abort()


async def soak_run(target: Target, seconds: float, json_c: int = 4, stream_c: int = 2, abort_c: int = 2) -> dict:
    """Continuous mixed load: JSON answers, full streams, and streams abandoned mid-way
    (slow upstream stream: 40 chunks 25 ms apart; the client leaves after the first)."""
    end = time.monotonic() + seconds
    counts: Counter = Counter()
    raw_json = target.raw(target.body())
    raw_stream = target.raw(target.body(stream=True))
    raw_slow = target.raw(target.body(stream=True, bench_chunks=40, bench_delay_ms=25))

    async def steady(raw: bytes, kind: str) -> None:
        conn = None
        while time.monotonic() < end:
            if conn is None or conn.closed or not conn.keep:
                conn = await _connect(target)
            try:
                status = await conn.request(raw, (lambda _d: None))
                counts[f"{kind}_{status}"] += 1
            except ConnectionError:
                counts[f"{kind}_error"] += 1
                conn = None
        if conn is not None:
            conn.transport.close()

    async def aborter() -> None:
        while time.monotonic() < end:
            counts["aborted_ok" if await abort_one(target, raw_slow) else "aborted_failed"] += 1

    tasks = [steady(raw_json, "json") for _ in range(json_c)]
    tasks += [steady(raw_stream, "stream") for _ in range(stream_c)]
    tasks += [aborter() for _ in range(abort_c)]
    await asyncio.gather(*tasks)
    return dict(counts)


def run_async(coro):
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


# --- wrk -------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def run_wrk(target: Target, concurrency: int, seconds: float, threads: int = 1, cpus: str | None = None,
            stream: bool = False) -> dict:
    """wrk --latency with bench/wrk_post.lua: requests/s, p50/p90/p95/p99 in ms, errors."""
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
        f.write(target.body(stream=stream))
    env = dict(os.environ, WRK_BODY_FILE=f.name, WRK_AUTH=target.headers.get("Authorization", ""))
    extra = [arg for k, v in target.headers.items() if k != "Authorization" for arg in ("-H", f"{k}: {v}")]
    cmd = ["wrk", "--latency", f"-t{min(threads, concurrency)}", f"-c{concurrency}", f"-d{seconds:g}s",
           "--timeout", "10s", "-s", os.path.join(HERE, "wrk_post.lua"), *extra, target.url]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(f.name)
    return parse_wrk(out)


def parse_wrk(out: str) -> dict:
    res: dict = {}
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line[len("BENCH_JSON "):])
            res.update({k.replace("_us", "_ms"): v / 1000 for k, v in data.items()
                        if k.endswith("_us") and k != "duration_us"})
            res.update({k: v for k, v in data.items() if not k.endswith("_us")})
            res["duration_s"] = data["duration_us"] / 1e6
        # `wrk --latency` distribution, kept as a cross-check of the Lua percentiles
        m = re.match(r"\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m)$", line)
        if m:
            res[f"wrk_p{m.group(1)}_ms"] = float(m.group(2)) * _UNITS[m.group(3)]
        m = re.match(r"Requests/sec:\s+([\d.]+)", line)
        if m:
            res["rps"] = float(m.group(1))
        m = re.match(r"\s+Non-2xx or 3xx responses: (\d+)", line)
        if m:
            res["non2xx"] = int(m.group(1))
    if "requests" not in res:
        raise RuntimeError(f"wrk printed no results:\n{out[-2000:]}")
    res.setdefault("non2xx", 0)
    res["errors"] = sum(res.get(k, 0) for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark load generator (see module docstring).")
    parser.add_argument("mode", choices=["wrk", "stream", "count", "soak"])
    parser.add_argument("url")
    parser.add_argument("--model", default="bench")
    parser.add_argument("--auth", default="", help='e.g. "Bearer sk-..."')
    parser.add_argument("-H", "--header", action="append", default=[], help="extra 'Name: value' header")
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("-n", "--requests", type=int, default=200)
    parser.add_argument("-d", "--seconds", type=float, default=10)
    parser.add_argument("--stream", action="store_true", help="wrk/count: send stream=true bodies")
    parser.add_argument("--prompt-bytes", type=int, default=0, help="user message of about N bytes of prose")
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    if args.auth:
        headers["Authorization"] = args.auth
    target = Target("cli", args.url, args.model, headers, args.prompt_bytes)
    if args.mode == "wrk":
        res = run_wrk(target, args.concurrency, args.seconds, threads=2 if args.concurrency > 1 else 1,
                      stream=args.stream)
    elif args.mode == "stream":
        res = run_async(stream_run(target, args.concurrency, args.requests))
    elif args.mode == "count":
        res = run_async(count_run(target, args.concurrency, args.requests, args.stream))
    else:
        res = run_async(soak_run(target, args.seconds))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
