"""Every refusal an OpenAI SDK must map to its exception class, in OpenAI's error format."""

from __future__ import annotations

from datetime import timedelta

import httpx
import openai
import pytest
from django.utils import timezone

from billing.keys import revoke_key
from billing.models import UsageRecord, VirtualKey

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGES = [{"role": "user", "content": "hi"}]


def _error(exc: openai.APIStatusError) -> dict:
    body = exc.response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert "Traceback" not in exc.response.text
    return body["error"]


@pytest.fixture
def route(fake_openai, build):
    return build.openai_route(fake_openai)[0]


def test_missing_unknown_revoked_and_expired_keys_are_401(route, build, gateway, openai_client):
    missing = httpx.post(f"{gateway}/v1/chat/completions", json={"model": "chat-default", "messages": MESSAGES})
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "missing_api_key"

    with pytest.raises(openai.AuthenticationError) as unknown:
        openai_client("sk-gw-not-a-real-key").chat.completions.create(model="chat-default", messages=MESSAGES)
    assert _error(unknown.value)["code"] == "invalid_api_key"

    secret = build.key("to-revoke")
    revoke_key(VirtualKey.objects.get(name="to-revoke"))
    with pytest.raises(openai.AuthenticationError) as revoked:
        openai_client(secret).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert _error(revoked.value)["code"] == "revoked_api_key"

    expired = build.key("old", expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(openai.AuthenticationError) as exc:
        openai_client(expired).models.list()
    assert _error(exc.value)["code"] == "expired_api_key"
    assert UsageRecord.objects.count() == 0


def test_route_not_allowed_answers_like_an_unknown_route(route, build, fake_openai, openai_client):
    """No enumeration: a route the key may not use is "not found", as OpenAI answers."""
    other = build.route("other", route.targets.first().model)
    client = openai_client(build.key(routes=[other]))
    with pytest.raises(openai.NotFoundError) as denied:
        client.chat.completions.create(model="chat-default", messages=MESSAGES)
    assert _error(denied.value)["code"] == "model_not_found"
    assert _error(denied.value)["param"] == "model"
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such-route", messages=MESSAGES)
    assert _error(missing.value)["code"] == "model_not_found"
    assert fake_openai.request_count == 0


@pytest.mark.parametrize(
    "body, param",
    [
        ({"messages": MESSAGES}, "model"),
        ({"model": "chat-default"}, "messages"),
        ({"model": "chat-default", "messages": []}, "messages"),
        ({"model": "chat-default", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "chat-default", "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": "chat-default", "messages": MESSAGES, "temperature": 5}, "temperature"),
        ({"model": "chat-default", "messages": MESSAGES, "temperature": "hot"}, "temperature"),
        ({"model": "chat-default", "messages": MESSAGES, "max_tokens": 0}, "max_tokens"),
        ({"model": "chat-default", "messages": MESSAGES, "stream": "yes"}, "stream"),
        ({"model": "chat-default", "messages": MESSAGES, "stream_options": {"include_usage": True}}, "stream_options"),
        ({"model": "chat-default", "messages": MESSAGES, "stop": [1, 2]}, "stop"),
        ({"model": "chat-default", "messages": MESSAGES, "tools": [{"type": "function"}]}, "tools[0]"),
    ],
)
def test_invalid_bodies_are_400_naming_the_param(route, build, openai_client, fake_openai, body, param):
    client = openai_client(build.key())
    with pytest.raises(openai.BadRequestError) as exc:
        client.post("/chat/completions", body=body, cast_to=httpx.Response)
    assert _error(exc.value)["param"] == param
    assert fake_openai.request_count == 0


def test_non_json_body_wrong_method_unknown_path_and_huge_body(route, build, gateway, settings):
    headers = {"Authorization": f"Bearer {build.key()}"}
    with httpx.Client(base_url=gateway, headers=headers) as http:
        bad = http.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and bad.json()["error"]["message"]
        array = http.post("/v1/chat/completions", json=[1, 2])
        assert array.status_code == 400
        wrong = http.get("/v1/chat/completions")
        assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
        unknown = http.post("/v1/embeddings-nope", json={})
        assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "invalid_request_error"
        huge = http.post(
            "/v1/chat/completions",
            json={"model": "chat-default", "messages": [{"role": "user", "content": "x" * (9 * 1024 * 1024)}]},
        )
        assert huge.status_code == 413 and "too large" in huge.json()["error"]["message"]


def test_upstream_bad_request_is_400_without_fallback(fake_openai, fake_openai_b, build, openai_client):
    first = build.model(build.provider(fake_openai, name="a"))
    second = build.model(build.provider(fake_openai_b, name="b"))
    build.route("chat-default", first, second)
    fake_openai.fail(400, body={"error": {"message": "Unsupported value: 'logprobs'", "type": "invalid_request_error", "param": "logprobs", "code": None}})
    with pytest.raises(openai.BadRequestError) as exc:
        openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert "Unsupported value" in _error(exc.value)["message"]
    assert fake_openai_b.request_count == 0
    assert UsageRecord.objects.get().status == "error"


def test_disabled_route_is_404_with_a_clear_message(route, build, openai_client):
    route.enabled = False
    route.save()
    with pytest.raises(openai.NotFoundError) as exc:
        openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert "disabled" in _error(exc.value)["message"]


def test_shared_state_down_is_a_clear_503(route, build, gateway, settings):
    """REDIS_URL set but nothing listening: every request gets a 503 in the OpenAI
    format naming the cause (never a 500 'this is a bug'), and nothing is recorded."""
    from billing.limits import reset_limit_store_for_tests
    from routing.breaker import reset_breaker_store_for_tests
    from tests.conftest import free_port

    key = build.key(rpm_limit=100)
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    reset_limit_store_for_tests()
    reset_breaker_store_for_tests()
    resp = httpx.post(f"{gateway}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, timeout=30,
                      json={"model": "chat-default", "messages": [{"role": "user", "content": "hi"}]})
    assert resp.status_code == 503, resp.text
    error = resp.json()["error"]
    assert "Redis" in error["message"] and set(error) == {"message", "type", "param", "code"}
    assert UsageRecord.objects.count() == 0
