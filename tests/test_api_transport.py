"""The /v1 transport itself: every path under /v1 answers in OpenAI's format, and a
client that declares a body and never sends it is answered 408 and dropped."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("method, path", [
    ("GET", "/v1"), ("GET", "/v1/"), ("POST", "/v1"), ("GET", "/v1/nope"), ("POST", "/v1/chat/completion"),
    ("DELETE", "/v1/files/abc"), ("GET", "/v1/../admin/"),
])
def test_every_unknown_v1_path_answers_in_openai_format(gateway, method, path):
    response = httpx.request(method, f"{gateway}{path}", headers={"authorization": "Bearer nobody"})
    if path == "/v1/../admin/":  # normalised by the client: not a /v1 path at all
        return
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == "unknown_url" and error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}


def test_a_declared_body_that_never_arrives_is_answered_408_and_dropped(gateway, settings):
    settings.GATEWAY_REQUEST_READ_TIMEOUT_S = 0.5
    host, port = gateway.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"model\":")
        started = time.monotonic()
        received = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break  # the server closed the connection
            received += data
        elapsed = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 408"), received[:200]
    assert b'"code":"request_timeout"' in received
    assert 0.4 < elapsed < 3  # answered at the timeout, then the connection is closed
