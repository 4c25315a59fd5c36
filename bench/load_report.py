"""The load test's figures and their Markdown (bench/load_test.py)."""

from __future__ import annotations

import re

from chat_client import Outcome, percentile

TARGETS = {"e2e_p95_ms": 2000.0, "e2e_p99_ms": 5000.0, "overhead_p99_ms": 10.0}


def _pcts(values: list[float]) -> dict:
    return {f"p{p}": _r(percentile(values, p)) for p in (50, 95, 99)} | {"max": _r(max(values, default=None)),
                                                                       "n": len(values)}


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def _series(text: str, name: str) -> dict[tuple, float]:
    """{(labels...): value} of one metric family's samples in a Prometheus text page."""
    out: dict[tuple, float] = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, value = line.rsplit(" ", 1)
            labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', head)))
            out[labels] = out.get(labels, 0.0) + float(value)
    return out


def histogram_quantiles(before: str, after: str, name: str, qs=(0.5, 0.95, 0.99)) -> dict:
    """Quantiles (ms) of a histogram's growth between two scrapes, over all its label sets,
    interpolated within buckets as Prometheus' histogram_quantile does."""
    b, a = _series(before, name + "_bucket"), _series(after, name + "_bucket")
    buckets: dict[float, float] = {}
    for labels, value in a.items():
        le = dict(labels).get("le")
        bound = float("inf") if le == "+Inf" else float(le)
        buckets[bound] = buckets.get(bound, 0.0) + value - b.get(labels, 0.0)
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return {}
    total = buckets[bounds[-1]]
    out = {"n": int(total)}
    for q in qs:
        rank, lo, prev = q * total, 0.0, 0.0
        for bound in bounds:
            count = buckets[bound]
            if count >= rank:
                if bound == float("inf"):  # beyond the top bucket: only a lower bound is known
                    value = lo
                    out["top_bucket_ms"] = round(lo * 1000, 2)
                else:
                    value = lo + (bound - lo) * ((rank - prev) / (count - prev) if count > prev else 1)
                out[f"p{int(q * 100)}"] = round(value * 1000, 2)
                break
            lo, prev = bound, count
    return out


def figures(outs: list[Outcome], timings: dict[str, float], metrics_before: str, metrics_after: str,
            wall_s: float, gateway_cpu_s: float) -> dict:
    done = [o for o in outs if o.complete]
    errors: dict[str, int] = {}
    for o in outs:
        if not o.complete:
            errors[o.error] = errors.get(o.error, 0) + 1
    served = [o for o in done if o.route == "lt" and o.bench_id in timings]
    overhead = [o.e2e_ms - timings[o.bench_id] for o in served]
    hits = [o for o in done if o.route == "lt-cache" and o.cache == "hit"]
    decisions = {}
    before = _series(metrics_before, "gateway_guardrail_decisions_total")
    for labels, value in _series(metrics_after, "gateway_guardrail_decisions_total").items():
        outcome = dict(labels).get("outcome", "?")
        decisions[outcome] = decisions.get(outcome, 0) + value - before.get(labels, 0.0)
    e2e = _pcts([o.e2e_ms for o in done])
    over = _pcts(overhead)
    return {
        "errors": len(outs) - len(done), "errors_by_kind": errors, "wall_s": round(wall_s, 1),
        "requests_per_s": round(len(outs) / wall_s, 1),
        "gateway_cpu_s": round(gateway_cpu_s, 1), "gateway_core_share_pct": round(gateway_cpu_s / wall_s * 100, 1),
        "e2e_ms": e2e, "e2e_json_ms": _pcts([o.e2e_ms for o in done if not o.stream]),
        "e2e_stream_ms": _pcts([o.e2e_ms for o in done if o.stream]),
        "ttft_ms": _pcts([o.ttft_ms for o in done if o.stream and o.ttft_ms is not None]),
        "overhead_ms": over,
        "provider_ms": _pcts([timings[o.bench_id] for o in served]),
        "overhead_json_ms": _pcts([o.e2e_ms - timings[o.bench_id] for o in served if not o.stream]),
        "overhead_stream_ms": _pcts([o.e2e_ms - timings[o.bench_id] for o in served if o.stream]),
        "cache_hit_e2e_ms": _pcts([o.e2e_ms for o in hits]),
        "cache_requests": sum(o.route == "lt-cache" for o in outs),
        "gateway_overhead_seconds_ms": histogram_quantiles(metrics_before, metrics_after, "gateway_overhead_seconds"),
        "guardrail_decisions": {k: int(v) for k, v in decisions.items() if v},
        "targets": {"e2e_p95_ms": e2e["p95"], "e2e_p99_ms": e2e["p99"], "overhead_p99_ms": over["p99"]},
    }


def _ms(x) -> str:
    return "–" if x is None else (f"{x:.0f}" if x >= 100 else f"{x:.1f}")


def _gauge(d: dict, q: str) -> str:
    value = d.get(q)
    return ("≥ " if value is not None and value == d.get("top_bucket_ms") else "") + _ms(value)


def markdown(r: dict, note: str = "") -> list[str]:
    """The BENCHMARKS.md section: the headline table, then how it was measured."""
    def row(label: str, d: dict) -> str:
        return f"| {label} | {d.get('n', '–')} | {_ms(d.get('p50'))} | {_ms(d.get('p95'))} | {_ms(d.get('p99'))} | " \
               f"{_ms(d.get('max'))} |"

    verdicts = []
    for name, limit in TARGETS.items():
        got = r["targets"][name]
        verdicts.append(f"{name.replace('_ms', '').replace('_', ' ')} {_ms(got)} ms "
                        f"({'met' if got is not None and got < limit else '**not met**'}: < {limit:g} ms)")
    gauge = r["gateway_overhead_seconds_ms"]
    m = r["machine"]
    lines = [
        f"{r['requests']} requests from {r['users']} concurrent users, half streamed, against a fake provider "
        f"with model-like latency ({r['upstream']['ttft_ms']} ms to the first token, {r['upstream']['tps']} "
        f"tokens/s, {r['upstream']['tokens']} tokens an answer); one gateway worker; users started over "
        f"{r.get('ramp_s', 0):g} s (ramp-up; 0 = all at once); {r['date']}.",
        "",
        "Targets: " + "; ".join(verdicts) + ".",
        "",
        "| ms | n | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|---|",
        row("end to end, all", r["e2e_ms"]),
        row("end to end, JSON", r["e2e_json_ms"]),
        row("end to end, streams (to `[DONE]`)", r["e2e_stream_ms"]),
        row("time to first token (streams)", r["ttft_ms"]),
        row("the fake provider's own time, route `lt`", r.get("provider_ms", {})),
        row("**overhead** (end to end − provider's own time), route `lt`", r["overhead_ms"]),
        row("overhead, JSON", r["overhead_json_ms"]),
        row("overhead, streams", r["overhead_stream_ms"]),
        row("cache hits (`lt-cache`), end to end", r["cache_hit_e2e_ms"]),
        "",
        f"- Errors: {r['errors']}" + (f" ({r['errors_by_kind']})" if r["errors"] else "") +
        f"; {r['requests_per_s']} requests/s over {r['wall_s']} s; the gateway used {r['gateway_cpu_s']} CPU-s "
        f"({r['gateway_core_share_pct']}% of its core).",
        f"- The gateway's own account, `gateway_overhead_seconds` over the run (bucket-interpolated; ≥ means "
        f"beyond its top bucket): p50 {_gauge(gauge, 'p50')}, p95 {_gauge(gauge, 'p95')}, p99 {_gauge(gauge, 'p99')} "
        f"ms ({gauge.get('n', 0)} requests).",
        f"- Stages on: guardrails PII (both sides, redact, restore) and secrets (prompts) on both routes — decisions "
        f"{r['guardrail_decisions'] or 'none'}; exact cache on `lt-cache` ({r['cache_requests']} requests, "
        f"{r['cache_hit_e2e_ms']['n']} hits); the key's rpm/tpm limits and budget and the team's budget (Redis); "
        f"usage records (PostgreSQL); metrics; tracing to an OTLP/HTTP sink (exports received: "
        f"{ {k: v for k, v in r['otlp_sink'].items() if k.startswith('otlp')} or 'none'}); guardrail audit rows "
        f"only when a guardrail finds something (none here).",
        "- Overhead per request = the client's end to end minus the fake provider's own time for that request "
        "(from its arrival to the last byte written, reported by `bench_id`): it includes two loopback hops and "
        "the client's and the fake provider's scheduling on the shared core, so it is an upper bound of the "
        "gateway's own time.",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['virtualisation']}; **noisy** — other processes used "
        f"{r['noise']['other_cpu_pct_of_machine']}% of the machine during the run (others' tests share it). "
        f"Gateway pinned to core 0; the fake provider, the OTLP sink, Redis and the clients on core 1; "
        f"PostgreSQL unpinned.",
        f"- Command: `{r['command']}`; gateway: `{r['start_cmd']}`.",
    ]
    if r.get("without"):
        lines.insert(2, f"**Left off for this run: {', '.join(r['without'])}.**")
        lines.insert(3, "")
    if note:
        lines += [f"- {note}"]
    return lines
