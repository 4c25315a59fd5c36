"""A restricted key asking for a route it may not use gets exactly the answer for a route
that does not exist (as OpenAI answers for a model the caller has no access to): same
status, headers and body bytes apart from the name echoed and the request id, on every
/v1 endpoint that takes a route; /v1/models lists only the key's routes
(docs/security/keys.md)."""

from __future__ import annotations

import httpx
import pytest

from billing import auth_throttle

pytestmark = pytest.mark.django_db(transaction=True)
HIDDEN, MISSING, DISABLED = "route-alpha", "route-omega", "route-sigma"  # the same length: same content-length
MESSAGES = [{"role": "user", "content": "hi"}]
ANTHROPIC = {"anthropic-version": "2023-06-01"}
VOLATILE = {"date", "x-request-id", "request-id"}


@pytest.fixture(autouse=True)
def _forget_failures():
    auth_throttle.reset_auth_throttle_for_tests()
    yield
    auth_throttle.reset_auth_throttle_for_tests()


@pytest.fixture
def keys(build, fake_openai):
    """A key restricted to 'mine'; the routes HIDDEN (exists, enabled) and DISABLED exist too."""
    model = build.model(build.provider(fake_openai), capabilities=["chat", "embeddings"])
    mine = build.route("mine", model)
    build.route(HIDDEN, model)
    build.route(DISABLED, model, enabled=False)
    return build.key("narrow", routes=[mine]), build.key("wide")


REQUESTS = {
    "chat": ("POST", "/v1/chat/completions", lambda name: {"model": name, "messages": MESSAGES}, {}),
    "messages": ("POST", "/v1/messages", lambda name: {"model": name, "max_tokens": 5, "messages": MESSAGES}, ANTHROPIC),
    "count_tokens": ("POST", "/v1/messages/count_tokens", lambda name: {"model": name, "messages": MESSAGES}, ANTHROPIC),
    "responses": ("POST", "/v1/responses", lambda name: {"model": name, "input": "hi"}, {}),
    "embeddings": ("POST", "/v1/embeddings", lambda name: {"model": name, "input": "hi"}, {}),
    "model": ("GET", "/v1/models/{name}", None, {}),
    "model_anthropic": ("GET", "/v1/models/{name}", None, ANTHROPIC),
}


def ask(gateway: str, key: str, endpoint: str, name: str) -> httpx.Response:
    method, path, body, headers = REQUESTS[endpoint]
    with httpx.Client(base_url=gateway, timeout=30) as http:
        return http.request(method, path.format(name=name), json=body(name) if body else None,
                            headers={"Authorization": f"Bearer {key}", **headers})


def shape(answer: httpx.Response, name: str) -> tuple:
    """What the client sees, with the echoed name replaced and the volatile headers dropped."""
    headers = sorted((k, v) for k, v in answer.headers.items() if k not in VOLATILE)
    return answer.status_code, headers, answer.content.replace(name.encode(), b"<NAME>")


@pytest.mark.parametrize("endpoint", list(REQUESTS))
def test_a_route_the_key_may_not_use_looks_like_one_that_does_not_exist(keys, gateway, endpoint):
    narrow, wide = keys
    hidden, missing = ask(gateway, narrow, endpoint, HIDDEN), ask(gateway, narrow, endpoint, MISSING)
    assert hidden.status_code == 404
    assert shape(hidden, HIDDEN) == shape(missing, MISSING)
    assert HIDDEN.encode() in hidden.content and MISSING.encode() in missing.content  # the name is echoed
    assert b"allow" not in hidden.content.lower().replace(b"not have access", b"")  # no "not allowed" wording
    # The same route exists for a key that may use it (so the 404 above hides something).
    assert ask(gateway, wide, endpoint, HIDDEN).status_code == 200


def test_the_answer_is_openais_model_not_found(keys, gateway):
    narrow, _ = keys
    body = ask(gateway, narrow, "chat", HIDDEN).json()
    assert body == {"error": {"message": f"The model '{HIDDEN}' does not exist or you do not have access to it.",
                              "type": "invalid_request_error", "param": "model", "code": "model_not_found"}}
    anthropic_body = ask(gateway, narrow, "messages", HIDDEN).json()
    assert anthropic_body == {"type": "error", "error": {
        "type": "not_found_error", "message": f"The model '{HIDDEN}' does not exist or you do not have access to it."}}


def test_a_disabled_route_is_named_only_to_a_key_that_may_use_every_route(keys, gateway):
    narrow, wide = keys
    assert shape(ask(gateway, narrow, "chat", DISABLED), DISABLED) == shape(ask(gateway, narrow, "chat", MISSING),
                                                                           MISSING)
    assert ask(gateway, wide, "chat", DISABLED).json()["error"]["code"] == "route_disabled"


def test_models_lists_only_the_keys_routes(keys, gateway):
    narrow, wide = keys
    with httpx.Client(base_url=gateway, timeout=30) as http:
        listed = http.get("/v1/models", headers={"Authorization": f"Bearer {narrow}"}).json()
        claude = http.get("/v1/models", headers={"x-api-key": narrow, **ANTHROPIC}).json()
        everything = http.get("/v1/models", headers={"Authorization": f"Bearer {wide}"}).json()
    assert [m["id"] for m in listed["data"]] == ["mine"]
    assert [m["id"] for m in claude["data"]] == ["mine"]
    assert sorted(m["id"] for m in everything["data"]) == sorted(["mine", HIDDEN])
