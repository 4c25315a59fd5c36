"""Tracing's setup: off and free without OTEL_EXPORTER_OTLP_ENDPOINT (the SDK never
loaded, nothing forwarded upstream), on with it; configure_tracing idempotent,
reset_tracing back to the settings, another endpoint replacing the first."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from routing import tracing
from tests.tracing_helpers import FakeCollector, collector_fixture, collector_server  # noqa: F401 - the fixtures

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGES = [{"role": "user", "content": "hi"}]
# The ASGI application imported as a server would, then what tracing loaded.
PROBE = (
    "import sys; import gateway_project.asgi; from routing import tracing; "
    "print(tracing.enabled(), 'opentelemetry.sdk.trace' in sys.modules, "
    "'opentelemetry.exporter.otlp.proto.http.trace_exporter' in sys.modules)"
)


def _probe(**env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    environment.update(env, DJANGO_SETTINGS_MODULE="gateway_project.settings")
    done = subprocess.run([sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True,
                          timeout=120, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_without_an_endpoint_tracing_is_off_and_the_sdk_never_loaded():
    assert _probe() == "False False False"


def test_the_endpoint_setting_turns_it_on_at_startup():
    assert _probe(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318") == "True True True"


def _one_request(build, openai_client, fake_openai) -> None:
    build.route("chat-default", build.model(build.provider(fake_openai, name="primary")))
    openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES)


def test_configuring_twice_exports_each_span_once(collector, build, openai_client, fake_openai):
    assert tracing.configure_tracing(collector.url)  # the fixture did it already
    _one_request(build, openai_client, fake_openai)
    collector.wait(servers=1, clients=1)
    tracing.flush_tracing()
    assert (len(collector.servers()), len(collector.clients())) == (1, 1)


def test_after_reset_nothing_is_traced_or_forwarded(collector, build, openai_client, fake_openai):
    tracing.reset_tracing()
    assert not tracing.enabled()  # configured again from settings: no endpoint there
    _one_request(build, openai_client, fake_openai)
    assert "traceparent" not in fake_openai.last_request.headers
    tracing.flush_tracing()
    assert collector.spans == []


def test_another_endpoint_replaces_the_first(collector, build, openai_client, fake_openai):
    with FakeCollector() as other:
        assert tracing.configure_tracing(other.url)
        _one_request(build, openai_client, fake_openai)
        other.wait(servers=1, clients=1)
        tracing.flush_tracing()
        assert collector.spans == []
