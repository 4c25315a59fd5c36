"""What each inbound API adds at the gateway: chat completions, Anthropic Messages and
OpenAI Responses (and embeddings), request by request at c=1, against the same fake
upstream and the same route as chat (`bench`, bench/bench.yaml), JSON and streamed.

    bench/endpoints.sh [--rounds 2000] [--no-write]

One gateway (uvicorn, 1 worker, pinned to core 0); the fake upstream and this client on
core 1. Each round sends one request to every target in turn (the order rotating), so
the machine's drift lands on all of them alike:
  direct            the fake upstream itself (chat completions JSON)
  direct_stream     the fake upstream, streamed
  chat, chat_stream             POST /v1/chat/completions
  messages, messages_stream     POST /v1/messages (translated to the OpenAI upstream)
  responses, responses_stream   POST /v1/responses (translated likewise)
  embeddings        POST /v1/embeddings (route `bench-embed`, one short input)
A target whose endpoint answers anything but 200 is counted and left out of its
latencies (an endpoint that is not installed shows as such). Added = p50 of the target
minus p50 of direct (direct_stream for streams). Written to BENCHMARKS.md, section
"Client APIs (issue 13)", from bench/results.json["endpoints"].
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import report  # noqa: E402
from cache_common import Client, percentiles  # noqa: E402
from load import Target, run_async  # noqa: E402
from measure import log, tree_of, upstream_capacity  # noqa: E402
from procs import NoiseMeter, Procs, clean_up, cpu_seconds, run_main, tree, wait_quiet  # noqa: E402
from run import Gateway, start_upstream  # noqa: E402

HERE = Path(__file__).resolve().parent
LC = "1"  # the load core (with the fake upstream)
PROMPT = "Say hello in one short sentence."
SECTION, TITLE = "issue13-endpoints", "Client APIs (issue 13)"
PATHS = {"chat": "/v1/chat/completions", "messages": "/v1/messages", "responses": "/v1/responses",
         "embeddings": "/v1/embeddings"}
BASE = {"chat_stream": "direct_stream", "messages_stream": "direct_stream", "responses_stream": "direct_stream"}


def body(name: str) -> bytes:
    stream = name.endswith("_stream")
    api = name.removesuffix("_stream")
    if api == "direct":
        obj = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]}
        if stream:
            obj.update(stream=True, stream_options={"include_usage": True})
    elif api == "chat":
        obj = {"model": "bench", "messages": [{"role": "user", "content": PROMPT}]}
        if stream:
            obj.update(stream=True, stream_options={"include_usage": True})
    elif api == "messages":
        obj = {"model": "bench", "max_tokens": 256, "messages": [{"role": "user", "content": PROMPT}]}
        if stream:
            obj["stream"] = True
    elif api == "responses":
        obj = {"model": "bench", "input": PROMPT, "store": False}
        if stream:
            obj["stream"] = True
    elif api == "embeddings":
        obj = {"model": "bench-embed", "input": PROMPT, "encoding_format": "float"}
    else:
        raise KeyError(name)
    return json.dumps(obj, separators=(",", ":")).encode()


class EndpointGateway(Gateway):
    """bench/bench.yaml plus an embeddings model and route on the same fake upstream, and a
    key for both (bench.yaml alone if this gateway's YAML has no model capabilities yet)."""

    def configure(self, upstream_port: int) -> str:
        self.manage("migrate", "--noinput")
        text = (HERE / "bench.yaml").read_text().replace("UPSTREAM_PORT", str(upstream_port))
        config = self.scratch / "bench.yaml"
        config.write_text(text.replace("\nroutes:\n", EMBED_MODEL + "\nroutes:\n" + EMBED_ROUTE, 1))
        routes = "bench,bench-embed"
        try:
            self.manage("gateway_import", str(config))
        except RuntimeError as exc:
            log(f"no embeddings route ({str(exc).strip().splitlines()[-1]}); measuring the chat APIs only")
            config.write_text(text)
            self.manage("gateway_import", str(config))
            routes = "bench"
        return self.manage("issue_key", "--name", "bench-endpoints", "--routes", routes, "--rpm", "100000000",
                           "--tpm", "2000000000").strip()


# The fake upstream's embeddings model (bench/upstream.py serves /v1/embeddings), beside
# bench.yaml's chat model, and its route.
EMBED_MODEL = """\
      - name: text-embedding-3-small
        input_price_per_mtok: "0.02"
        output_price_per_mtok: "0"
        capabilities: [embeddings]
"""
EMBED_ROUTE = """\
  - name: bench-embed
    strategy: single
    timeout_s: 30
    targets:
      - model: fake-openai/text-embedding-3-small
"""


async def alternate(targets: dict[str, Target], rounds: int) -> dict[str, dict]:
    client = Client()
    names = list(targets)
    times: dict[str, list[float]] = {n: [] for n in names}
    outcomes: dict[str, Counter] = {n: Counter() for n in names}
    bodies = {n: body(n) for n in names}
    try:
        for i in range(rounds):
            for k in range(len(names)):
                name = names[(i + k) % len(names)]
                status, _, _, dt = await client.send(targets[name], bodies[name])
                outcomes[name][str(status)] += 1
                if status == 200:
                    times[name].append(dt * 1000)
    finally:
        client.close()
    out = {n: {**percentiles(times[n]), "outcomes": dict(outcomes[n])} for n in names}
    for name in names:
        base = out.get(BASE.get(name, "direct"))
        if name.startswith("direct") or not out[name]["n"] or not base or not base["n"]:
            continue
        for p in (50, 95, 99):
            out[name][f"added_p{p}_ms"] = out[name][f"p{p}_ms"] - base[f"p{p}_ms"]
    return out


def section_lines(part: dict) -> list[str]:
    c1 = part["c1"]
    rows = ["| c=1, request by request | p50 | p95 | p99 | added p50 over direct | requests timed | answers |",
            "|---|---|---|---|---|---|---|"]
    for name, r in c1.items():
        if not isinstance(r, dict):
            continue
        added = r.get("added_p50_ms")
        cells = ("n/a",) * 3 if not r["n"] else tuple(f"{r[f'p{p}_ms']:.3f}" for p in (50, 95, 99))
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(r["outcomes"].items()))
        rows.append(f"| {name} | {' | '.join(cells)} | {'' if added is None else f'{added:+.3f}'} | {r['n']} | "
                    f"{answers} |")
    return [f"Measured {part['date']} with `{part['command']}` ({part['db']}): the gateway (uvicorn, 1 worker) "
            "pinned to core 0, the fake upstream and the client on core 1; every API on route `bench` (the same "
            "target as chat), embeddings on `bench-embed`; streams measured to their last byte, against the "
            "upstream's own stream. How: bench/endpoints.py's docstring.", "", *rows, "", *part["notes"], ""]


def main() -> None:
    p = argparse.ArgumentParser(description="Added latency of each inbound API at c=1 (see the module docstring).")
    p.add_argument("--rounds", type=int, default=2000)
    p.add_argument("--postgres", action="store_true")
    p.add_argument("--redis", action="store_true")
    p.add_argument("--wait-quiet", type=float, default=60, metavar="S")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--keep-scratch", action="store_true")
    o = p.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="gw-bench-endpoints-"))
    procs = Procs(scratch)
    gw = EndpointGateway(argparse.Namespace(postgres=o.postgres, redis=o.redis, gateway_cmd=None, server="uvicorn",
                                            guardrails=None), procs, scratch)
    ok = False
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    try:
        quiet = wait_quiet(o.wait_quiet) if o.wait_quiet else None
        noise = NoiseMeter()
        upstream, up_port, up_proc = start_upstream(procs)
        capacity = upstream_capacity(upstream, 3, cpus="0")
        key = gw.configure(up_port)
        gw.start(1, cpus="0")
        auth = {"Authorization": f"Bearer {key}"}
        targets = {"direct": Target("direct", upstream.url, "gpt-4o-mini"),
                   "direct_stream": Target("direct_stream", upstream.url, "gpt-4o-mini")}
        for api, path in PATHS.items():
            url = f"http://127.0.0.1:{gw.port}{path}"
            targets[api] = Target(api, url, "bench", auth)
            if api != "embeddings":
                targets[f"{api}_stream"] = Target(f"{api}_stream", url, "bench", auth)
        mask = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {int(LC)})
        try:
            run_async(alternate(targets, 200))  # warm-up, not kept
            log(f"c=1: {o.rounds} rounds over {', '.join(targets)}")
            c1 = run_async(alternate(targets, o.rounds))
        finally:
            os.sched_setaffinity(0, mask)
        for name, r in c1.items():
            log(f"  {name}: p50 {r['p50_ms']:.3f} ms ({r.get('added_p50_ms', 0):+.3f}), {r['n']} timed, {r['outcomes']}")
        n = noise.report(cpu_seconds(tree(up_proc.pid)) + cpu_seconds(tree_of(gw.pids)))
        part = {"date": started, "command": "bench/endpoints.sh " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                "db": gw.describe_db(), "c1": {**c1, "rounds": o.rounds},
                "notes": [f"The fake upstream alone served {capacity['json_rps']:.0f} JSON req/s on one core; other "
                          f"processes used {n['other_cpu_pct_of_machine']}% of the machine during the run"
                          + (f" (busy {quiet}% at the start)" if quiet is not None else "")
                          + f". Usage records written, by status: {gw.settled_records()}."]}
        lines = section_lines(part)
        print("\n".join(lines))
        if not o.no_write:
            data = report.load_results()
            data["endpoints"] = part
            data.setdefault("sections", {})[SECTION] = {"title": TITLE, "lines": lines}
            report.write(data)
        ok = True
    finally:
        clean_up(procs, [gw], scratch, keep=o.keep_scratch, ok=ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    run_main(main)
