"""In-process cost of the guardrails on the benchmark's request, without HTTP: the
detectors alone, the engine's check_input, the whole stage's on_request, and the
stream side (the output check chunk by chunk over the fake upstream's answer).

    .venv/bin/python bench/profile_guardrails.py [--prompt-bytes 2048] [--guardrails bench/guardrails.yaml]

Prints microseconds per call (best of --repeat timeit runs, each --number calls),
and what the stream check holds back after each chunk of the fake answer (a held
first token would delay time to first token). No database: the guardrails of the
YAML file are built as unsaved rows, the stage's table is swapped in.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import timeit
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-" + "x" * 30)
os.environ.setdefault("DATABASE_URL", "sqlite:///:memory:")

import prompt  # noqa: E402
import upstream  # noqa: E402


def per_call_us(fn, number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompt-bytes", type=int, default=2048)
    p.add_argument("--guardrails", default=str(HERE / "guardrails.yaml"))
    p.add_argument("--number", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=7)
    args = p.parse_args()

    import django
    import yaml

    django.setup()
    from guardrails import engine
    from guardrails.kinds import KINDS
    from guardrails.messages import request_texts
    from guardrails.models import Guardrail
    from guardrails.policy import GuardrailTable, info
    from providers.types import ChatChunk
    from routing.stages import guard

    items = yaml.safe_load(Path(args.guardrails).read_text())["guardrails"]
    infos = []
    for i, item in enumerate(items, 1):
        params = {k: v for k, v in item.items() if k not in ("name", "kind", "stage", "action", "on_error",
                                                              "restore", "scope", "order", "enabled")}
        g = Guardrail(id=i, name=item["name"], kind=item["kind"], stage=item.get("stage", "both"),
                      action=item.get("action", "flag"), on_error=item.get("on_error", "block"),
                      restore=item.get("restore", False), params=KINDS[item["kind"]].clean(params))
        infos.append(info(g))
    inputs = [g for g in infos if g.input]
    outputs = [g for g in infos if g.output]
    messages = prompt.messages(args.prompt_bytes)
    texts = request_texts(messages)
    n, r = args.number, args.repeat
    print(f"prompt: {len(texts[0].encode())} bytes; guardrails: "
          + ", ".join(f"{g.name} ({g.kind}, {'in' if g.input else ''}{'+' if g.input and g.output else ''}"
                      f"{'out' if g.output else ''})" for g in infos))

    rows: list[tuple[str, float]] = []
    for g in inputs:
        found = g.check.find(texts[0])
        if found:
            print(f"  WARNING: {g.name} finds {[(f.entity, texts[0][f.start:f.end]) for f in found]} in the prompt")
        rows.append((f"{g.name}: detector find() on the prompt", per_call_us(lambda g=g: g.check.find(texts[0]), n, r)))
    detectors = sum(us for _, us in rows)

    loop = asyncio.new_event_loop()

    async def inputs_many(k: int) -> None:
        for _ in range(k):
            await engine.check_input(inputs, texts, engine.Vault(texts))

    def run_inputs() -> None:
        loop.run_until_complete(inputs_many(100))

    rows.append(("engine.check_input (all input guardrails, + Vault)", per_call_us(run_inputs, max(1, n // 100), r) / 100))

    table = GuardrailTable(tuple(infos))
    guard.guardrail_table = SimpleNamespace(get=lambda: _ready(table))
    stage = guard.Guardrails()

    def fake_call() -> SimpleNamespace:
        return SimpleNamespace(
            key=SimpleNamespace(prefix="benchkey", id=1, team_id=1, team_name="bench"), request_id="r1",
            route=SimpleNamespace(id=1, name="bench"), req=SimpleNamespace(stream=True, messages=messages),
            headers=[], stage_state={}, annotations={}, annotate=lambda *a, **k: None)

    async def stage_many(k: int) -> None:
        for _ in range(k):
            await stage.on_request(fake_call())

    def run_stage() -> None:
        loop.run_until_complete(stage_many(100))

    async def empty_many(k: int) -> None:  # the loop's own cost, subtracted
        for _ in range(k):
            await _ready(None)

    base = per_call_us(lambda: loop.run_until_complete(empty_many(100)), max(1, n // 100), r) / 100
    rows.append(("Guardrails.on_request (the stage, input side)", per_call_us(run_stage, max(1, n // 100), r) / 100 - base))

    # Output side: the fake upstream's stream, chunk by chunk, through the stage's filter,
    # for both of its word styles (upstream.py --words).
    call = fake_call()
    loop.run_until_complete(stage.on_request(call))
    for style, vocab in (("leading", upstream.WORDS), ("trailing", upstream.WORDS_TRAILING)):
        words = [vocab[i % len(vocab)] for i in range(upstream.DEFAULT_CHUNKS)]
        chunks = [ChatChunk("gpt-4o-mini", [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                             "finish_reason": None}])]
        chunks += [ChatChunk("gpt-4o-mini", [{"index": 0, "delta": {"content": w}, "finish_reason": None}])
                   for w in words]
        chunks.append(ChatChunk("gpt-4o-mini", [{"index": 0, "delta": {}, "finish_reason": "stop"}]))

        def stream_once(trace: list | None = None, chunks=chunks) -> None:
            filt = stage.stream_filter(call)
            for c in chunks:
                out = filt.feed(c)
                if trace is not None:
                    trace.append("".join((ch.get("delta") or {}).get("content") or ""
                                         for o in out for ch in o.choices))
            filt.flush()

        trace: list[str] = []
        stream_once(trace)
        print(f"stream ({style} words): upstream content chunk -> what the guard sends at once")
        for c, sent in zip(chunks, trace):
            got = c.choices[0]["delta"].get("content")
            if got:
                print(f"  {got!r:>14} -> {sent!r}")
        rows.append((f"stream filter, whole fake answer ({style} words, {len(words)} chunks + finish)",
                     per_call_us(stream_once, n, r)))
        first = chunks[:2] if trace[1] else chunks[:3]  # up to the chunk that releases the first text

        def first_token(first=first) -> None:
            filt = stage.stream_filter(call)
            for c in first:
                filt.feed(c)

        rows.append((f"stream filter up to the first text sent ({style} words, {len(first) - 1} content chunk(s))",
                     per_call_us(first_token, n, r)))
    answer = "".join(upstream.WORDS[i % len(upstream.WORDS)] for i in range(upstream.DEFAULT_CHUNKS))
    for g in outputs:
        rows.append((f"{g.name}: detector find() on the answer", per_call_us(lambda g=g: g.check.find(answer), n, r)))
    rows.append(("engine.check_output on the complete (JSON) answer",
                 per_call_us(lambda: engine.check_output(outputs, answer, engine.Vault(texts)), n, r)))

    width = max(len(name) for name, _ in rows)
    print(f"\n{'':<{width}}  us/call")
    for name, us in rows:
        print(f"{name:<{width}}  {us:8.1f}")
    stage_us = dict(rows)["Guardrails.on_request (the stage, input side)"]
    print(f"{'input detectors together':<{width}}  {detectors:8.1f}")
    print(f"{'stage minus detectors (overhead)':<{width}}  {stage_us - detectors:8.1f}")
    loop.close()


async def _ready(value):
    return value


if __name__ == "__main__":
    main()
