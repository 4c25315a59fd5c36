"""Provider secrets never leave the gateway: every key it holds is scrubbed by value
(not by shape) from upstream error texts before they reach a client, a usage record or
a log line (providers/secrets.py, providers/adapters/base.provider_error)."""

from __future__ import annotations

import base64
import io
import json
import logging
import urllib.parse

import httpx
import pytest
from django.forms.models import model_to_dict

from billing.models import UsageRecord
from providers.adapters.base import scrub
from providers.secrets import REDACTED, ScrubSecrets, remember, scrub_secrets
from tests.conftest import wait_for
from tests.fakes import FakeOpenAI

SECRET = "hunter2-provider-key"  # no sk- prefix, under 32 characters: the shape regex misses it


def leaks(text: str, secret: str = SECRET) -> bool:
    """Does `text` hold the secret, or its head, in any of the echoed encodings?"""
    head = secret[:10]
    forms = {head, urllib.parse.quote(head), base64.b64encode(secret.encode()).decode()[:12]}
    return any(form in text for form in forms)


class EchoKeyOpenAI(FakeOpenAI):
    """An OpenAI-compatible upstream that echoes the key it received in its errors, as
    some do (\"Incorrect API key provided: ...\"), in the shape `mode` names."""

    mode = "401"

    def _chat_completions(self, ex, behaviour) -> None:
        key = ex.headers.get("authorization", "").removeprefix("Bearer ")
        if self.mode == "401":
            return self.send_error(ex, 401, f"Incorrect API key provided: {key}.", code="invalid_api_key")
        if self.mode == "500":
            encoded = f"{urllib.parse.quote(key)} / {base64.b64encode(key.encode()).decode()} / '{key[:14]}…'"
            return self.send_error(ex, 500, f"upstream proxy failed for key {key} ({encoded})")
        first = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}]}
        error = {"error": {"message": f"key {key} was revoked mid-stream", "type": "server_error", "code": None}}
        ex.start_stream("text/event-stream")
        if self.mode == "stream-error-after-output":
            ex.write_chunk(b"data: " + json.dumps(first).encode() + b"\n\n")
        ex.write_chunk(b"data: " + json.dumps(error).encode() + b"\n\n")
        ex.end_stream()


@pytest.fixture(scope="module")
def echo():
    with EchoKeyOpenAI() as fake:
        yield fake


@pytest.fixture
def console():
    """What the configured console handler (settings.LOGGING) writes, from now on."""
    handler = next(h for h in logging.getLogger().handlers if any(isinstance(f, ScrubSecrets) for f in h.filters))
    stream = io.StringIO()
    old = handler.setStream(stream)
    yield stream
    handler.setStream(old)


def _call(gateway: str, key: str, *, stream: bool) -> httpx.Response:
    body = {"model": "chat-default", "messages": [{"role": "user", "content": "Hi"}], "stream": stream}
    return httpx.post(f"{gateway}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"},
                      timeout=15)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode, stream", [("401", False), ("500", False), ("401", True), ("500", True),
                                          ("stream-error", True), ("stream-error-after-output", True)])
def test_an_upstream_that_echoes_its_key_never_shows_it(mode, stream, echo, build, gateway, console):
    echo.reset()
    echo.mode = mode
    provider = build.provider(echo, name="echo", api_key=SECRET)
    build.route("chat-default", build.model(provider))
    response = _call(gateway, build.key(), stream=stream)
    logging.getLogger("gateway.test").error("the provider answered: %s", f"bad key {SECRET}")  # a careless log line

    assert echo.request_count == 1
    assert not leaks(response.text), response.text
    assert not any(leaks(v) for v in response.headers.values())
    if mode == "stream-error-after-output":
        assert response.status_code == 200 and "was revoked mid-stream" in response.text and REDACTED in response.text
    else:
        assert response.status_code >= 500 and REDACTED in response.json()["error"]["message"]
    record = wait_for(lambda: UsageRecord.objects.filter(request_id=response.headers["x-request-id"]).first(), 10)
    assert record is not None
    assert not leaks(json.dumps(model_to_dict(record), default=str))
    log = console.getvalue()
    assert "the provider answered: bad key [redacted]" in log  # the filter ran on this handler
    assert not leaks(log), log


def test_scrub_removes_every_held_secret_in_its_usual_encodings():
    other = "ollama-team-b-token-77"
    remember(other)  # held by another provider of this process: scrubbed from this one's errors too
    text = (f"a {SECRET} b {urllib.parse.quote_plus(SECRET + ' x')} c {base64.b64encode(SECRET.encode()).decode()} "
            f"d {json.dumps(SECRET)} e {other} f truncated '{SECRET[:12]}…'")
    clean = scrub(text, [SECRET], limit=1000)
    assert not leaks(clean) and not leaks(clean, other), clean
    assert clean.startswith("a [redacted] b [redacted]")


def test_short_placeholder_keys_are_not_secrets():
    remember("ollama")  # a placeholder some setups use: scrubbing it would mangle "ollama: HTTP 500"
    assert scrub_secrets("ollama: HTTP 500") == "ollama: HTTP 500"


def test_the_log_filter_scrubs_arguments_and_tracebacks(console):
    remember(SECRET)
    log = logging.getLogger("gateway.anything")
    log.warning("calling with %s", {"authorization": f"Bearer {SECRET}"})
    try:
        raise RuntimeError(f"upstream said {SECRET}")
    except RuntimeError:
        log.exception("failed")
    text = console.getvalue()
    assert "calling with {'authorization': 'Bearer [redacted]'}" in text
    assert "RuntimeError: upstream said [redacted]" in text
    assert not leaks(text)
