"""A fake HashiCorp Vault (KV version 2 engine over HTTP) on 127.0.0.1, for the
`vault:` secret backend (providers.secret_backends.VaultKV2Backend).

What it reproduces of Vault's HTTP API (https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2):

* GET /v1/{mount}/data/{path} with X-Vault-Token: 200 with
  {"data": {"data": {...fields}, "metadata": {"version": n, ...}}, ...};
* no such secret: 404 with {"errors": []};
* a missing, unknown or revoked token, or a policy without read on the path: 403 with
  {"errors": ["permission denied"]};
* a deleted current version: 404 with data.data null and metadata.deletion_time set.

Scripting: `put(path, **fields)` writes a new version, `delete(path)` soft-deletes the
current one, `policy(token, paths)` limits a token to path prefixes, `revoke(token)`.
Every request is recorded (`requests`: method, path, token).
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeVault:
    def __init__(self, *, token: str = "hvs.fake-root-token-0123456789", mount: str = "secret") -> None:
        self.mount = mount
        self.tokens: dict[str, tuple[str, ...] | None] = {token: None}  # token -> allowed path prefixes (None: all)
        self.root_token = token
        self.secrets: dict[str, list[dict[str, Any] | None]] = {}  # path -> versions (None = deleted)
        self.requests: list[tuple[str, str, str]] = []
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # --- scripting ---
    def put(self, path: str, **fields: Any) -> int:
        with self._lock:
            versions = self.secrets.setdefault(path.strip("/"), [])
            versions.append(dict(fields))
            return len(versions)

    def delete(self, path: str) -> None:
        with self._lock:
            self.secrets[path.strip("/")][-1] = None

    def policy(self, token: str, paths: tuple[str, ...] | None) -> None:
        self.tokens[token] = paths

    def revoke(self, token: str) -> None:
        self.tokens.pop(token, None)

    def reads(self, path: str) -> int:
        return sum(1 for method, p, _ in self.requests if method == "GET" and p == f"/v1/{self.mount}/data/{path}")

    # --- lifecycle ---
    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "FakeVault":
        vault = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                token = self.headers.get("X-Vault-Token", "")
                vault.requests.append(("GET", self.path, token))
                status, body = vault._answer(self.path, token)
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- Vault's answers ---
    def _answer(self, path: str, token: str) -> tuple[int, dict]:
        prefix = f"/v1/{self.mount}/data/"
        if token not in self.tokens:
            return 403, {"errors": ["permission denied"]}
        if not path.startswith(prefix):
            return 404, {"errors": [f"no handler for route \"{path.removeprefix('/v1/')}\". route entry not found."]}
        secret_path = path[len(prefix):].split("?")[0].strip("/")
        allowed = self.tokens[token]
        if allowed is not None and not any(secret_path.startswith(p) for p in allowed):
            return 403, {"errors": ["1 error occurred:\n\t* permission denied\n\n"]}
        with self._lock:
            versions = self.secrets.get(secret_path)
            if not versions:
                return 404, {"errors": []}
            current = versions[-1]
            metadata = {"created_time": datetime.now(timezone.utc).isoformat(), "custom_metadata": None,
                        "deletion_time": "" if current is not None else datetime.now(timezone.utc).isoformat(),
                        "destroyed": False, "version": len(versions)}
            if current is None:
                return 404, {"request_id": "fake", "data": {"data": None, "metadata": metadata}}
            return 200, {"request_id": "fake", "lease_id": "", "renewable": False, "lease_duration": 0,
                         "data": {"data": dict(current), "metadata": metadata}, "wrap_info": None,
                         "warnings": None, "auth": None}
