"""A fake OpenTelemetry collector: OTLP/HTTP (protobuf) on 127.0.0.1, the way a real
collector's `otlphttp` receiver takes traces (POST /v1/traces, an
ExportTraceServiceRequest, answered with an ExportTraceServiceResponse), decoded with
opentelemetry-proto's own classes; the spans it received, flattened for asserts.
Tests take the `collector` fixture (import `collector_fixture` and `collector_server`): tracing on in the
in-process gateway for the test, exporting there, reset afterwards."""

from __future__ import annotations

import gzip
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest, ExportTraceServiceResponse,
)

SERVER, CLIENT = 2, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
STATUS_ERROR = 2  # Status.StatusCode


@dataclass
class Span:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    status: int
    resource: dict[str, Any] = field(default_factory=dict)
    start_ns: int = 0
    end_ns: int = 0


def _value(v) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


def _attrs(kvs) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


class FakeCollector:
    """Every span exported to it, in arrival order (`spans`); `requests` counts the
    export calls and `content_types` their Content-Type headers."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.content_types: list[str] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.headers.get("content-encoding") == "gzip":
                    raw = gzip.decompress(raw)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                collector._receive(self.headers.get("content-type", ""), raw)
                body = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-otlp", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeCollector:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _receive(self, content_type: str, raw: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(raw)
        spans = []
        for rs in request.resource_spans:
            resource = _attrs(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    spans.append(Span(
                        name=s.name, kind=s.kind, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                        parent_id=s.parent_span_id.hex(), attributes=_attrs(s.attributes),
                        status=s.status.code, resource=resource,
                        start_ns=s.start_time_unix_nano, end_ns=s.end_time_unix_nano,
                    ))
        with self._lock:
            self.content_types.append(content_type)
            self.spans.extend(spans)

    def clear(self) -> None:
        with self._lock:
            self.spans.clear()
            self.content_types.clear()

    def servers(self) -> list[Span]:
        return [s for s in self.spans if s.kind == SERVER]

    def clients(self, trace_id: str | None = None) -> list[Span]:
        spans = [s for s in self.spans if s.kind == CLIENT and (trace_id is None or s.trace_id == trace_id)]
        return sorted(spans, key=lambda s: s.start_ns)

    def wait(self, servers: int = 1, clients: int = 0, timeout: float = 10.0) -> None:
        """Until this many server and client spans arrived (the gateway's processor is
        flushed meanwhile: a request's spans end just after its response)."""
        from routing.tracing import flush_tracing

        deadline = time.monotonic() + timeout
        while True:
            flush_tracing()
            if len(self.servers()) >= servers and len(self.clients()) >= clients:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"spans: {[(s.name, s.kind) for s in self.spans]}")
            time.sleep(0.02)


def all_values(spans: list[Span]) -> str:
    """Every attribute value of every span, as one text (for "never in any span")."""
    return "\n".join(f"{k}={v}" for s in spans for k, v in {**s.attributes, **s.resource}.items())


@pytest.fixture(scope="session", name="_collector")
def collector_server():
    with FakeCollector() as collector:
        yield collector


@pytest.fixture(name="collector")
def collector_fixture(_collector, gateway):
    """Tracing on in the (in-process) gateway, exporting to the fake collector."""
    from routing import tracing

    assert tracing.configure_tracing(_collector.url)
    _collector.clear()
    yield _collector
    tracing.reset_tracing()
