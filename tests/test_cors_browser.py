"""CORS for browser clients in real headless Chromium (Debian's /usr/bin/chromium via
Playwright): a page served from another 127.0.0.1 port calls /v1/chat/completions with
fetch (JSON and a streamed answer read chunk by chunk), the way a browser app using the
gateway directly would. An allowed origin works (exposed headers readable, errors
readable); a disallowed origin, or CORS left off, is blocked by the browser itself, and
the request never reaches the provider. The same page cannot open the playground's
websocket either (streaming/origin.py)."""

from __future__ import annotations

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.test_reports_browser import CHROMIUM, chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]

PAGE = b"<!doctype html><html><head><meta charset='utf-8'><title>A browser app</title></head><body>app</body></html>"

CALL = """async ({url, key, stream}) => {
  const body = {model: "chat-default", messages: [{role: "user", content: "hi"}], stream};
  try {
    const r = await fetch(url + "/v1/chat/completions", {
      method: "POST", body: JSON.stringify(body),
      headers: {"authorization": "Bearer " + key, "content-type": "application/json",
                "x-stainless-lang": "js", "x-stainless-retry-count": "0"},
    });
    const seen = {status: r.status, requestId: r.headers.get("x-request-id"), route: r.headers.get("x-gateway-route"),
                  chunks: 0, text: ""};
    if (stream) {
      const reader = r.body.getReader(), decoder = new TextDecoder();
      for (;;) {
        const {done, value} = await reader.read();
        if (done) break;
        seen.chunks += 1;
        seen.text += decoder.decode(value, {stream: true});
      }
    } else {
      seen.text = JSON.stringify(await r.json());
    }
    return seen;
  } catch (e) {
    return {error: String(e)};
  }
}"""

SOCKET = """(url) => new Promise((resolve) => {
  const ws = new WebSocket(url.replace("http://", "ws://") + "/ws/playground/");
  ws.onopen = () => resolve("open");
  ws.onerror = () => resolve("error");
})"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


@pytest.fixture
def app_origin():
    """Another origin on this machine: a tiny page server on its own 127.0.0.1 port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run_in_browser(app_origin: str, gateway: str, key: str) -> tuple[dict, dict, dict, str, list[str]]:
    with chromium() as browser:
        page = browser.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.goto(app_origin + "/")
        plain = page.evaluate(CALL, {"url": gateway, "key": key, "stream": False})
        streamed = page.evaluate(CALL, {"url": gateway, "key": key, "stream": True})
        wrong_key = page.evaluate(CALL, {"url": gateway, "key": "sk-wrong", "stream": False})
        socket = page.evaluate(SOCKET, gateway)
    return plain, streamed, wrong_key, socket, console


def test_an_allowed_origin_calls_the_api_from_the_browser(gateway, build, fake_openai, app_origin, settings):
    settings.GATEWAY_CORS_ALLOWED_ORIGINS = [app_origin]
    build.openai_route(fake_openai)
    key = build.key()
    fake_openai.chunk_delay = 0.05
    fake_openai.reply("plain answer")
    fake_openai.reply("one two three four five six")
    try:
        plain, streamed, wrong_key, socket, console = run_in_browser(app_origin, gateway, key)
    finally:
        fake_openai.chunk_delay = 0

    assert plain["status"] == 200, plain
    assert "plain answer" in plain["text"]
    assert plain["requestId"] and plain["route"] == "chat-default"  # exposed headers are readable
    assert streamed["status"] == 200, streamed
    assert streamed["chunks"] >= 3 and "data: [DONE]" in streamed["text"]  # read as it streamed
    assert "three" in streamed["text"]
    assert wrong_key["status"] == 401 and "invalid_api_key" in wrong_key["text"]  # errors readable too
    assert socket == "error"  # the session-authenticated websocket stays same-origin
    assert not [m for m in console if "CORS" in m], console


@pytest.mark.parametrize("origins", [[], ["http://127.0.0.1:1", "https://*.example.com"]], ids=["off", "other"])
def test_a_disallowed_origin_is_blocked_by_the_browser(gateway, build, fake_openai, app_origin, settings, origins):
    settings.GATEWAY_CORS_ALLOWED_ORIGINS = origins
    build.openai_route(fake_openai)
    key = build.key()
    before = fake_openai.request_count

    plain, streamed, wrong_key, _, console = run_in_browser(app_origin, gateway, key)

    for result in (plain, streamed, wrong_key):
        assert result == {"error": "TypeError: Failed to fetch"}, result
    assert any("blocked by CORS policy" in m for m in console), console
    assert fake_openai.request_count == before  # the preflight failed: the POST was never sent
