"""CORS on /v1 (routing/cors.py, wired around the API in gateway_project/asgi.py),
over HTTP against the live gateway: off by default, preflights answered before
authentication, Access-Control-Allow-Origin on successes, errors and SSE streams for
allowed origins only, wildcard subdomains, `*`, and the settings' validation. The same in
a real browser: tests/test_cors_browser.py."""

from __future__ import annotations

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from routing.cors import Origins, TransportHeaders, load_policy

pytestmark = pytest.mark.django_db(transaction=True)

APP = "https://app.example.com"
CHAT = "/v1/chat/completions"
BODY = {"model": "chat-default", "messages": [{"role": "user", "content": "hi"}]}


def preflight(gateway, origin=APP, headers="authorization, content-type", method="POST", path=CHAT):
    return httpx.options(f"{gateway}{path}", headers={
        "origin": origin, "access-control-request-method": method, "access-control-request-headers": headers,
    })


@pytest.fixture
def cors_on(settings):
    settings.GATEWAY_CORS_ALLOWED_ORIGINS = [APP, "https://*.tools.example.org", "http://127.0.0.1:5173"]


def test_off_by_default_no_cors_header_and_the_preflight_is_not_answered(gateway, build, fake_openai):
    build.openai_route(fake_openai)
    key = build.key()

    refused = preflight(gateway)
    answered = httpx.post(f"{gateway}{CHAT}", json=BODY, headers={"authorization": f"Bearer {key}", "origin": APP})

    assert refused.status_code == 405  # the API's own answer to OPTIONS: no allow headers
    assert not [h for h in refused.headers if h.startswith("access-control-")]
    assert answered.status_code == 200
    assert not [h for h in answered.headers if h.startswith("access-control-")]
    assert "origin" not in answered.headers.get("vary", "")
    assert answered.headers["x-content-type-options"] == "nosniff"


def test_every_v1_response_is_nosniff_json_errors_and_streams(gateway, build, fake_openai):
    build.openai_route(fake_openai)
    key = build.key()

    error = httpx.post(f"{gateway}{CHAT}", json=BODY, headers={"authorization": "Bearer sk-wrong"})
    unknown = httpx.get(f"{gateway}/v1/nope")
    with httpx.stream("POST", f"{gateway}{CHAT}", json={**BODY, "stream": True},
                      headers={"authorization": f"Bearer {key}"}) as stream:
        stream.read()

    for response in (error, unknown, stream):
        assert response.headers["x-content-type-options"] == "nosniff"
    assert error.status_code == 401 and unknown.status_code == 404
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert not [h for h in stream.headers if h.startswith("access-control-")]


def test_a_preflight_from_an_allowed_origin_is_answered_before_authentication(gateway, cors_on):
    response = preflight(gateway, headers="Authorization, Content-Type, X-Stainless-OS, x-stainless-retry-count, "
                                          "anthropic-version, x-evil")

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-methods"] == "GET, POST"
    granted = response.headers["access-control-allow-headers"].split(", ")
    assert granted == ["authorization", "content-type", "x-stainless-os", "x-stainless-retry-count", "anthropic-version"]
    assert response.headers["access-control-max-age"] == "600"
    assert "origin" in response.headers["vary"]
    assert "access-control-allow-credentials" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"


def test_a_preflight_from_another_origin_is_refused(gateway, cors_on):
    for origin in ("https://evil.example", "http://app.example.com", "https://app.example.com:8443",
                   "https://tools.example.org", "https://a.tools.example.org.evil.net", "null"):
        response = preflight(gateway, origin=origin)
        assert response.status_code == 403, origin
        assert not [h for h in response.headers if h.startswith("access-control-")], origin
        assert response.json()["error"]["code"] == "cors_origin_not_allowed"


def test_wildcard_subdomains_and_default_ports(gateway, cors_on):
    for origin in ("https://a.tools.example.org", "https://x.y.tools.example.org", "https://APP.example.com:443",
                   "http://127.0.0.1:5173"):
        response = preflight(gateway, origin=origin)
        assert response.status_code == 204, origin
        assert response.headers["access-control-allow-origin"] == origin  # echoed as sent


def test_actual_responses_carry_the_origin_successes_errors_and_streams(gateway, build, fake_openai, cors_on):
    build.openai_route(fake_openai)
    key = build.key()
    auth = {"authorization": f"Bearer {key}", "origin": APP}

    ok = httpx.post(f"{gateway}{CHAT}", json=BODY, headers=auth)
    bad_key = httpx.post(f"{gateway}{CHAT}", json=BODY, headers={"authorization": "Bearer sk-nope", "origin": APP})
    bad_body = httpx.post(f"{gateway}{CHAT}", content=b"{", headers=auth)
    models = httpx.get(f"{gateway}/v1/models", headers=auth)
    with httpx.stream("POST", f"{gateway}{CHAT}", json={**BODY, "stream": True}, headers=auth) as stream:
        text = stream.read().decode()

    assert (ok.status_code, bad_key.status_code, bad_body.status_code, models.status_code) == (200, 401, 400, 200)
    assert "data: [DONE]" in text
    for response in (ok, bad_key, bad_body, models, stream):
        assert response.headers["access-control-allow-origin"] == APP
        assert "origin" in response.headers["vary"]
        assert response.headers["x-content-type-options"] == "nosniff"
    exposed = ok.headers["access-control-expose-headers"].split(", ")
    assert "x-request-id" in exposed and "x-gateway-route" in exposed and "x-gateway-cost-usd" in exposed
    assert "content-type" not in exposed  # safelisted anyway; only the configured names/patterns
    assert "x-request-id" in stream.headers["access-control-expose-headers"]


def test_an_actual_request_from_another_origin_gets_no_allow_header(gateway, build, fake_openai, cors_on):
    build.openai_route(fake_openai)
    key = build.key()

    response = httpx.post(f"{gateway}{CHAT}", json=BODY, headers={"authorization": f"Bearer {key}",
                                                                  "origin": "https://evil.example"})

    assert response.status_code == 200  # served (a server cannot stop a request), but unreadable to that page
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-expose-headers" not in response.headers
    assert response.headers["vary"] == "origin"


def test_a_star_allows_every_origin_without_credentials(gateway, settings):
    settings.GATEWAY_CORS_ALLOWED_ORIGINS = ["*"]
    settings.GATEWAY_CORS_MAX_AGE = 7200

    response = preflight(gateway, origin="https://anything.example")
    error = httpx.get(f"{gateway}/v1/models", headers={"origin": "https://anything.example"})

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-max-age"] == "7200"
    assert error.status_code == 401 and error.headers["access-control-allow-origin"] == "*"
    assert "origin" not in error.headers.get("vary", "")  # the same answer for every origin
    assert "access-control-allow-credentials" not in error.headers


def test_credentials_when_asked_for_with_listed_origins(gateway, settings):
    settings.GATEWAY_CORS_ALLOWED_ORIGINS = [APP]
    settings.GATEWAY_CORS_ALLOW_CREDENTIALS = True

    response = preflight(gateway)
    error = httpx.get(f"{gateway}/v1/models", headers={"origin": APP})

    assert response.headers["access-control-allow-credentials"] == "true"
    assert error.headers["access-control-allow-credentials"] == "true"
    assert error.headers["access-control-allow-origin"] == APP


def test_configured_headers_replace_the_defaults(gateway, settings):
    settings.GATEWAY_CORS_ALLOWED_ORIGINS = [APP]
    settings.GATEWAY_CORS_ALLOWED_HEADERS = ["authorization", "content-type"]

    response = preflight(gateway, headers="authorization,content-type,x-stainless-os")

    assert response.headers["access-control-allow-headers"] == "authorization, content-type"


def test_an_options_request_without_the_preflight_header_reaches_the_api(gateway, cors_on):
    response = httpx.options(f"{gateway}{CHAT}", headers={"origin": APP})

    assert response.status_code == 405  # not a preflight: the API's own answer, readable by the allowed origin
    assert response.headers["access-control-allow-origin"] == APP


@pytest.mark.parametrize("origins, message", [
    (["https://app.example.com/path"], "is not an origin"),
    (["app.example.com"], "is not an origin"),
    (["ftp://app.example.com"], "is not an origin"),
    (["https://*.com"], "a wildcard must be the first label"),
    (["https://a.*.example.com"], "only a leading"),
])
def test_a_misconfigured_origin_is_refused_at_startup(origins, message):
    with override_settings(GATEWAY_CORS_ALLOWED_ORIGINS=origins), pytest.raises(ImproperlyConfigured, match=message):
        TransportHeaders(lambda *a: None)


def test_star_with_credentials_and_bad_values_are_refused():
    with override_settings(GATEWAY_CORS_ALLOWED_ORIGINS=["*"], GATEWAY_CORS_ALLOW_CREDENTIALS=True):
        with pytest.raises(ImproperlyConfigured, match="cannot be combined"):
            load_policy()
    with override_settings(GATEWAY_CORS_ALLOWED_ORIGINS=[APP], GATEWAY_CORS_ALLOWED_HEADERS=["x-*-bad"]):
        with pytest.raises(ImproperlyConfigured, match="GATEWAY_CORS_ALLOWED_HEADERS"):
            load_policy()
    with override_settings(GATEWAY_CORS_ALLOWED_ORIGINS=[APP], GATEWAY_CORS_MAX_AGE=100000):
        with pytest.raises(ImproperlyConfigured, match="GATEWAY_CORS_MAX_AGE"):
            load_policy()


def test_origin_matching():
    origins = Origins(["https://app.example.com/", "https://*.example.org", "http://[::1]:8080", "http://localhost:80"],
                      "X")
    assert origins.match("https://app.example.com") and origins.match("https://app.example.com:443")
    assert origins.match("https://a.example.org") and not origins.match("https://example.org")
    assert origins.match("http://[::1]:8080") and not origins.match("http://[::1]:8081")
    assert origins.match("http://localhost")
    for bad in ("null", "", "https://app.example.com/x", "https://user@app.example.com", "https://app.example.com:x",
                "https://a.example.org.evil", "https://app.example.com.", "javascript:alert(1)"):
        assert not origins.match(bad), bad
    assert not Origins([], "X") and Origins(["*"], "X").match("null")


def test_the_wrapper_is_a_pass_through_when_off():
    """Off: no header scan, no CORS header; only nosniff is added to the start message."""
    sent = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})

    async def send(message):
        sent.append(message)

    import asyncio

    wrapper = TransportHeaders(app)
    assert wrapper.policy is None
    scope = {"type": "http", "method": "OPTIONS", "path": CHAT,
             "headers": [(b"origin", APP.encode()), (b"access-control-request-method", b"POST")]}
    asyncio.run(wrapper(scope, None, send))
    assert sent[0]["headers"] == [(b"content-type", b"application/json"), (b"x-content-type-options", b"nosniff")]
    assert sent[1]["body"] == b"{}"
