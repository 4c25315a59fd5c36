"""What the Bedrock adapter costs per request on the gateway's CPU (issue 14: "Bedrock
signing and event-stream parsing measured in the bench"): SigV4 signing of one Converse
request with botocore's signer, the whole translation step (translate + serialise +
sign, `BedrockAdapter.encode`), and reading a typical ConverseStream answer of 200
event-stream frames (messageStart, 196 text deltas, contentBlockStop, messageStop,
metadata; AWS's `p` padding included), both the framing alone (the gateway's decoder
next to botocore's EventStreamBuffer) and the whole `parse_stream` to ChatChunks.

    .venv/bin/python bench/bedrock_codec.py              # default: 2,000 signatures, 200 streams
    .venv/bin/python bench/bedrock_codec.py --rounds 5000 --streams 500

Each figure is the median of 5 runs of N operations, in microseconds per operation,
single-threaded; the machine's load average is printed with them (a shared 2-core
machine makes the figures noisy by some 10%).
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

from botocore.eventstream import EventStreamBuffer  # noqa: E402

from providers.adapters.bedrock import BedrockAdapter, sign  # noqa: E402
from providers.adapters.bedrock_eventstream import EventStreamDecoder  # noqa: E402
from providers.catalog import ModelInfo, ProviderInfo  # noqa: E402
from providers.kinds import KINDS  # noqa: E402
from providers.types import ChatRequest, Price  # noqa: E402
from tests.fakes.eventstream import event  # noqa: E402

PROMPT = ("You are a careful assistant. Answer in two sentences. " * 20).strip()  # ~1 KB, a typical chat turn


def _model() -> ModelInfo:
    provider = ProviderInfo(id=1, name="br", kind="bedrock", spec=KINDS["bedrock"], base_url="http://127.0.0.1:9",
                            api_key="AKIDBENCH00000000000:bench/secret+key000000000000000000", api_key_ref=None,
                            timeout_s=30.0, options={"region": "us-east-1"})
    return ModelInfo(id=1, name="claude", upstream_id="anthropic.claude-3-5-sonnet-20240620-v1:0", provider=provider,
                     price=Price(0, 0), context_window=200_000)  # type: ignore[arg-type]


def _stream(frames: int) -> list[bytes]:
    """A ConverseStream answer as the HTTP chunks it arrives in (one frame per chunk)."""
    words = [f" word{i}" for i in range(frames - 4)]
    out = [event("messageStart", {"p": "abcdefghij", "role": "assistant"})]
    out += [event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": w}, "p": "abcdefghijklmnopqr"})
            for w in words]
    out.append(event("contentBlockStop", {"contentBlockIndex": 0, "p": "abcdefghijklmnopqrstu"}))
    out.append(event("messageStop", {"p": "abcdefghijklm", "stopReason": "end_turn"}))
    out.append(event("metadata", {"metrics": {"latencyMs": 812}, "p": "abc",
                                  "usage": {"inputTokens": 230, "outputTokens": frames - 4, "totalTokens": frames + 226}}))
    return out


class _Content:
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def iter_any(self):
        for chunk in self.chunks:
            yield chunk


class _Response:
    def __init__(self, chunks: list[bytes]) -> None:
        self.content = _Content(chunks)


def _median_us(run, n: int, repeats: int = 5) -> float:
    run(max(1, n // 10))  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(n)
        times.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000, help="signatures / encodes per run")
    parser.add_argument("--streams", type=int, default=200, help="streams parsed per run")
    parser.add_argument("--frames", type=int, default=200, help="frames per stream")
    args = parser.parse_args()

    model, adapter = _model(), BedrockAdapter()
    req = ChatRequest(model="r", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}],
                      max_tokens=512, params={"temperature": 0.3})
    url, headers, body = adapter.build_request(model, req, stream=True)
    data = __import__("orjson").dumps(body)

    def signing(n: int) -> None:
        for _ in range(n):
            sign(model.provider, "POST", url, headers, data)

    def encoding(n: int) -> None:
        for _ in range(n):
            adapter.encode(model, req, stream=True)

    chunks = _stream(args.frames)
    size = sum(map(len, chunks))

    def framing_ours(n: int) -> None:
        for _ in range(n):
            decoder = EventStreamDecoder()
            for chunk in chunks:
                decoder.feed(chunk)

    def framing_botocore(n: int) -> None:
        for _ in range(n):
            buffer = EventStreamBuffer()
            for chunk in chunks:
                buffer.add_data(chunk)
                for _message in buffer:
                    pass

    def parsing(n: int) -> None:
        async def one() -> None:
            async for _chunk in adapter.parse_stream(model, _Response(chunks)):  # type: ignore[arg-type]
                pass

        async def many() -> None:
            for _ in range(n):
                await one()

        asyncio.run(many())

    sig = _median_us(signing, args.rounds)
    enc = _median_us(encoding, args.rounds)
    ours = _median_us(framing_ours, args.streams)
    boto = _median_us(framing_botocore, args.streams)
    full = _median_us(parsing, args.streams)
    print(f"load average {os.getloadavg()[0]:.2f}; request body {len(data)} B; stream {args.frames} frames, {size} B")
    print(f"SigV4 sign (botocore SigV4Auth)          {sig:8.1f} us/request")
    print(f"encode (translate + serialise + sign)    {enc:8.1f} us/request")
    print(f"event-stream framing, gateway decoder    {ours:8.1f} us/stream  ({ours / args.frames:.2f} us/frame)")
    print(f"event-stream framing, botocore buffer    {boto:8.1f} us/stream  ({boto / args.frames:.2f} us/frame)")
    print(f"parse_stream -> ChatChunks (all of it)   {full:8.1f} us/stream  ({full / args.frames:.2f} us/frame)")


if __name__ == "__main__":
    main()
