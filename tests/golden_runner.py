"""Golden wire fixtures: what each provider's API reference says a request and its
answers look like, replayed through the gateway.

One JSON file per case under tests/golden/<kind>/<case>.json::

    {
      "about": "what this case shows",
      "source": "the API reference section it was written from",
      "upstream_id": "gemini-2.5-flash",           # the model's upstream id (default "golden-model")
      "api_key": "KEY",                           # the provider's key (default "KEY")
                                                  # "service_account": a throwaway service-account JSON whose
                                                  # token_uri is this server's /token (vertex_ai)
      "oauth_token": "ya29.x",                    # POST /token answers {"access_token": this} (OAuth kinds)
      "provider_options": {},                     # Provider.options
      "gateway_request": {"path": "/v1/chat/completions", "body": {...}},   # "model" defaults to the route
      "expected_upstream": {                      # what the adapter must send
        "method": "POST", "path": "/v1beta/models/gemini-2.5-flash:generateContent",
        "query": {"alt": "sse"},                  # a subset of the query
        "headers": {"x-goog-api-key": "KEY"},     # a subset; a value "re:..." is a regular expression
        "body": {...}                             # exactly (JSON), or "body_subset": {...}
      },
      "response": {"status": 200, "headers": {}, "body": {...}},            # a JSON answer, or
      "stream": {"content_type": "text/event-stream", "events": ["data: {...}\n\n", ...]},
                                                  # raw chunks; "encoding": "ndjson" (objects, one per
                                                  # line) or "aws-eventstream" ({"headers", "payload"}
                                                  # frames, tests/fakes/eventstream.py) are encoded first
      "exchanges": [{"response": {...}, "expected": {"method": "GET", "path": "...", "headers": {}}},
                    {"stream": {...}}, ...],      # instead of response/stream: APIs of several requests
                                                  # (create, then poll or stream): the n-th request gets the
                                                  # n-th answer, "{base_url}" in it is the server's URL;
                                                  # expected_upstream is the first request, "expected" the others
      "expect": {                                 # what the gateway's client must get
        "status": 200,
        "json_subset": {...},                     # a subset of the JSON answer
        "text": "...", "finish_reason": "stop",   # streams: the content joined, the last finish reason
        "tool_calls": [{"name": "...", "arguments": {...}}],   # streams: assembled from the deltas
        "usage": {"prompt_tokens": 1, "completion_tokens": 2},
        "record": {"status": "success", "error_kind": "", "cache_read_tokens": 0}   # the usage record
      }
    }

`tests/test_golden_providers.py` runs every file. The fake here serves the fixture's
bytes exactly as written (no generation), so a fixture is the provider's wire format
and nothing else.
"""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.base import FakeServer
from tests.fakes.wire import Exchange

GOLDEN = Path(__file__).resolve().parent / "golden"


def cases() -> list[Path]:
    return sorted(GOLDEN.glob("*/*.json"))


def load(path: Path) -> dict[str, Any]:
    case = json.loads(path.read_text())
    case.setdefault("kind", path.parent.name)
    return case


def encode_stream(stream: dict[str, Any]) -> tuple[str, list[bytes]]:
    encoding = stream.get("encoding", "raw")
    events = stream["events"]
    if encoding == "raw":
        return stream.get("content_type", "text/event-stream"), [e.encode() for e in events]
    if encoding == "ndjson":
        return stream.get("content_type", "application/x-ndjson"), [(json.dumps(e) + "\n").encode() for e in events]
    if encoding == "aws-eventstream":
        from tests.fakes.eventstream import encode_message

        return (stream.get("content_type", "application/vnd.amazon.eventstream"),
                [encode_message(e["headers"], e["payload"]) for e in events])
    raise ValueError(f"unknown stream encoding {encoding!r}")


class GoldenServer(FakeServer):
    """Answers every request with the case's response or stream, byte for byte."""

    def __init__(self, case: dict[str, Any]) -> None:
        super().__init__()
        self.case = case
        self.served = 0  # answers of "exchanges" sent so far

    def route(self, ex: Exchange):
        if self.case.get("oauth_token") and (ex.method, ex.path) == ("POST", "/token"):
            return self._token, False
        return self._serve, False

    def _token(self, ex: Exchange, behaviour) -> None:
        ex.send_json(200, {"access_token": self.case["oauth_token"], "expires_in": 3600, "token_type": "Bearer"})

    def error_payload(self, status: int, message: str | None = None, **details: Any) -> Any:
        return {"error": message or "golden"}

    def _serve(self, ex: Exchange, behaviour) -> None:
        if "exchanges" in self.case:
            self._serve_exchange(ex)
            return
        if "stream" in self.case:
            content_type, chunks = encode_stream(self.case["stream"])
            ex.start_stream(content_type, self.case["stream"].get("headers"))
            for chunk in chunks:
                ex.write_chunk(chunk)
            ex.end_stream()
            return
        response = self.case["response"]
        body = response.get("body")
        raw = response["raw"].encode() if "raw" in response else json.dumps(body).encode()
        headers = {"content-type": "application/json", **response.get("headers", {})}
        ex.send_bytes(response.get("status", 200), raw, headers.pop("content-type"), headers)

    def _serve_exchange(self, ex: Exchange) -> None:
        steps = self.case["exchanges"]
        step = steps[min(self.served, len(steps) - 1)]
        self.served += 1

        def fill(raw: bytes) -> bytes:
            return raw.replace(b"{base_url}", self.url.encode())

        if "stream" in step:
            content_type, chunks = encode_stream(step["stream"])
            ex.start_stream(content_type, step["stream"].get("headers"))
            for chunk in chunks:
                ex.write_chunk(fill(chunk))
            ex.end_stream()
            return
        response = step["response"]
        raw = response["raw"].encode() if "raw" in response else json.dumps(response.get("body")).encode()
        headers = {"content-type": "application/json", **response.get("headers", {})}
        ex.send_bytes(response.get("status", 200), fill(raw), headers.pop("content-type"), headers)


def check_exchanges(case: dict[str, Any], recorded: list) -> None:
    """The requests after the first, against each exchange's "expected" (method, path, headers)."""
    for i, step in enumerate(case.get("exchanges", [])):
        want = step.get("expected")
        if want is None:
            continue
        where = f"{case['kind']}/{case.get('name', '?')} request {i}"
        assert i < len(recorded), f"{where}: not sent (sent: {[(r.method, r.path) for r in recorded]})"
        got = recorded[i]
        assert (got.method, got.path) == (want.get("method", "GET"), want["path"]), f"{where}: {got.method} {got.path}"
        _match_headers(want.get("headers", {}), got.headers, where)


def _match_headers(expected: dict[str, str], got: dict[str, str], where: str) -> None:
    for name, want in expected.items():
        have = got.get(name.lower())
        assert have is not None, f"{where}: header {name!r} was not sent (sent: {sorted(got)})"
        if want.startswith("re:"):
            assert re.fullmatch(want[3:], have), f"{where}: header {name}={have!r} does not match {want[3:]!r}"
        else:
            assert have == want, f"{where}: header {name}={have!r}, expected {want!r}"


def _subset(expected: Any, got: Any, where: str) -> None:
    if isinstance(expected, dict):
        assert isinstance(got, dict), f"{where}: expected an object, got {got!r}"
        for key, value in expected.items():
            assert key in got, f"{where}: {key!r} missing (have {sorted(got)})"
            _subset(value, got[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), f"{where}: expected {expected!r}, got {got!r}"
        for i, (e, g) in enumerate(zip(expected, got)):
            _subset(e, g, f"{where}[{i}]")
    else:
        assert got == expected, f"{where}: {got!r}, expected {expected!r}"


def check_upstream(case: dict[str, Any], recorded) -> None:
    want = case["expected_upstream"]
    where = f"{case['kind']}/{case.get('name', '?')} upstream"
    assert recorded is not None, f"{where}: nothing was sent"
    assert recorded.method == want.get("method", "POST"), f"{where}: method {recorded.method}"
    assert recorded.path == want["path"], f"{where}: path {recorded.path!r}, expected {want['path']!r}"
    for key, value in want.get("query", {}).items():
        assert recorded.query.get(key) == value, f"{where}: query {key}={recorded.query.get(key)!r}, expected {value!r}"
    _match_headers(want.get("headers", {}), recorded.headers, where)
    if "body" in want:
        assert recorded.body == want["body"], (
            f"{where}: body differs\n sent:     {json.dumps(recorded.body, sort_keys=True)}\n"
            f" expected: {json.dumps(want['body'], sort_keys=True)}")
    if "body_subset" in want:
        _subset(want["body_subset"], recorded.body, f"{where} body")


def _read_sse(response: httpx.Response) -> tuple[str, str | None, dict, list[dict], Any]:
    text, finish, usage, calls, error = "", None, {}, {}, None
    for line in response.iter_lines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if "error" in chunk:
            error = chunk["error"]
            continue
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices", []):
            delta = choice.get("delta") or {}
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call.get("index", 0), {"name": "", "arguments": ""})
                fn = call.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    tool_calls = [{"name": c["name"], "arguments": json.loads(c["arguments"] or "{}")} for _, c in sorted(calls.items())]
    return text, finish, usage, tool_calls, error


def _api_key(case: dict[str, Any], server: GoldenServer) -> str:
    if case.get("api_key") == "service_account":
        from tests.fakes.vertex import service_account

        return service_account(f"{server.url}/token")[0]
    return case.get("api_key", "KEY")


def run(case: dict[str, Any], build, gateway: str) -> None:
    """Configure a route to a GoldenServer for `case`, send the gateway request, and
    check the upstream request, the client's answer and the usage record."""
    from billing.models import UsageRecord
    from tests.conftest import wait_for

    with GoldenServer(case) as server:
        provider = build.provider(None, name=f"golden-{case['kind']}", kind=case["kind"],
                                  base_url=case.get("base_url", server.base_url),
                                  api_key=_api_key(case, server), options=case.get("provider_options", {}))
        capabilities = case.get("capabilities")
        extra = {"capabilities": capabilities} if capabilities else {}
        model = build.model(provider, case.get("model_name", "golden-model"), upstream_id=case.get("upstream_id", ""),
                            input_price="1", output_price="2", **extra)
        route = build.route("golden", model)
        key = build.key()
        gw = case["gateway_request"]
        body = {"model": route.name, **gw["body"]}
        expect = case.get("expect", {})
        with httpx.Client(base_url=gateway, timeout=30, headers={"authorization": f"Bearer {key}",
                                                                   **gw.get("headers", {})}) as client:
            if body.get("stream"):
                with client.stream("POST", gw.get("path", "/v1/chat/completions"), json=body) as response:
                    status = response.status_code
                    if status == 200:
                        text, finish, usage, tool_calls, error = _read_sse(response)
                    else:
                        response.read()
                        answer = response.json()
            else:
                response = client.post(gw.get("path", "/v1/chat/completions"), json=body)
                status, answer = response.status_code, response.json()
        check_upstream(case, server.requests[0] if "exchanges" in case else server.last_request)
        check_exchanges(case, server.requests)
        where = f"{case['kind']}/{case.get('name', '?')} answer"
        assert status == expect.get("status", 200), f"{where}: status {status}: {locals().get('answer')}"
        if body.get("stream") and status == 200:
            if "text" in expect:
                assert text == expect["text"], f"{where}: text {text!r}"
            if "finish_reason" in expect:
                assert finish == expect["finish_reason"], f"{where}: finish_reason {finish!r}"
            if "tool_calls" in expect:
                assert tool_calls == expect["tool_calls"], f"{where}: tool calls {tool_calls!r}"
            if "usage" in expect:
                _subset(expect["usage"], usage, f"{where} usage")
            if "stream_error" in expect:
                assert error is not None, f"{where}: no error event"
                _subset(expect["stream_error"], error, f"{where} error")
        elif "json_subset" in expect:
            _subset(expect["json_subset"], answer, where)
        if "usage" in expect and not body.get("stream"):
            _subset(expect["usage"], answer.get("usage"), f"{where} usage")
        record_want = expect.get("record")
        if record_want is not None:
            assert wait_for(lambda: UsageRecord.objects.filter(route_name="golden").exists())
            time.sleep(0.05)
            record = UsageRecord.objects.get(route_name="golden")
            got = {k: getattr(record, k) for k in record_want}
            want = {k: (Decimal(v) if isinstance(getattr(record, k), Decimal) else v) for k, v in record_want.items()}
            assert got == want, f"{where}: usage record {got}, expected {want}"
