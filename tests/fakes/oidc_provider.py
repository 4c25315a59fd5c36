"""A small OpenID Connect provider on 127.0.0.1 for the single sign-on tests
(gateway_admin/oidc.py): what Keycloak, Entra ID or Okta do in an authorization-code
sign-in, checked as strictly as they check it, with knobs for the hostile cases.

- discovery: ``<issuer>/.well-known/openid-configuration`` (the issuer has a path,
  ``/realms/gateway``, as Keycloak's does);
- JWKS: an RSA (RS256, kid ``rsa-1``) and an EC P-256 (ES256, kid ``ec-1``) public key,
  generated with ``cryptography`` at start; ``rotate()`` replaces the RSA key;
- authorization endpoint: checks client_id, the registered redirect URI (exact), the
  response type, scope ``openid``, a PKCE ``code_challenge`` with method S256 (required),
  then "signs in" ``user`` at once and redirects back with a one-time code;
- token endpoint: client authentication (HTTP Basic or in the body), the code used once
  (a second use is ``invalid_grant``), the same redirect URI and client, and
  BASE64URL(SHA256(code_verifier)) equal to the challenge;
- userinfo (Bearer access token) and end_session (RP-initiated logout, recorded).

ID tokens are signed here with ``cryptography`` directly (RS256: PKCS#1 v1.5; ES256: raw
r||s), not with the JWT library the gateway verifies them with. Knobs: ``sign_with``
(rsa, ec, other-rsa, other-rsa-same-kid, none, hs256-secret, hs256-public-key),
``id_token_claims`` (merged over the computed claims; None deletes; a callable gets
the time), ``userinfo_claims``, ``header_claims``, ``deny`` (error at authorize),
``discovery_overrides``. Everything received is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

REALM = "/realms/gateway"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(n: int, length: int | None = None) -> bytes:
    return n.to_bytes(length or (n.bit_length() + 7) // 8, "big")


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict:
    pub = key.public_key().public_numbers()
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64url(_int_bytes(pub.n)), "e": b64url(_int_bytes(pub.e))}


def ec_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict:
    pub = key.public_key().public_numbers()
    return {"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
            "x": b64url(_int_bytes(pub.x, 32)), "y": b64url(_int_bytes(pub.y, 32))}


def jws(header: dict, claims: dict, sign: Callable[[bytes], bytes]) -> str:
    signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    return signing_input.decode() + "." + b64url(sign(signing_input))


@dataclass
class Grant:
    code: str
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    method: str | None
    user: dict
    issued_at: float
    used: bool = False


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeOIDCProvider:
    client_id: str = "llm-gateway"
    client_secret: str = "oidc-client-secret-7f3a9c1e5b"
    redirect_uris: list[str] = field(default_factory=lambda: ["http://testserver/oidc/callback/"])
    # Which client authentication the token endpoint accepts: basic, post or both.
    token_auth: str = "both"

    def __post_init__(self) -> None:
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_kid = "rsa-1"
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.other_rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.requests: list[Recorded] = []
        self.errors: list[str] = []
        self.grants: dict[str, Grant] = {}
        self.access_tokens: dict[str, dict] = {}
        self.issued: list[str] = []  # every code and token handed out (tests check none leaks)
        self._server: ThreadingHTTPServer | None = None
        self.reset()

    # --- knobs ------------------------------------------------------------------------
    def reset(self) -> None:
        self.user: dict = {"sub": "f3c1b2a0-user-1", "email": "ada@example.com", "email_verified": True,
                           "given_name": "Ada", "family_name": "Lovelace", "name": "Ada Lovelace",
                           "groups": ["gw-routes"]}
        self.sign_with = "rsa"
        self.id_token_claims: dict[str, Any] = {}
        self.userinfo_claims: dict[str, Any] = {}
        self.header_claims: dict[str, Any] = {}
        self.deny: str | None = None
        self.discovery_overrides: dict[str, Any] = {}
        self.require_pkce = True
        self.requests.clear()
        self.errors.clear()

    def rotate(self) -> None:
        """A new RSA signing key under a new kid (the old one leaves the JWKS)."""
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_kid = f"rsa-{secrets.token_hex(4)}"

    # --- lifecycle --------------------------------------------------------------------
    def start(self) -> "FakeOIDCProvider":
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                provider._handle(self, "GET")

            def do_POST(self) -> None:
                provider._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-oidc", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeOIDCProvider":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the provider first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def issuer(self) -> str:
        return self.base_url + REALM

    def calls(self, path_suffix: str) -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    # --- documents ----------------------------------------------------------------------
    def discovery(self) -> dict:
        base = self.issuer + "/protocol/openid-connect"
        doc = {
            "issuer": self.issuer,
            "authorization_endpoint": base + "/auth",
            "token_endpoint": base + "/token",
            "userinfo_endpoint": base + "/userinfo",
            "jwks_uri": base + "/certs",
            "end_session_endpoint": base + "/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": {"both": ["client_secret_basic", "client_secret_post"],
                                                      "basic": ["client_secret_basic"],
                                                      "post": ["client_secret_post"]}[self.token_auth],
            "scopes_supported": ["openid", "email", "profile"],
        }
        doc.update(self.discovery_overrides)
        return {k: v for k, v in doc.items() if v is not None}

    def jwks(self) -> dict:
        return {"keys": [rsa_jwk(self.rsa_key, self.rsa_kid), ec_jwk(self.ec_key, "ec-1")]}

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        user = grant.user
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": user["sub"], "aud": self.client_id, "azp": self.client_id,
            "exp": now + 300, "iat": now, "auth_time": now, "nonce": grant.nonce,
            **{k: v for k, v in user.items() if k != "sub"},
        }
        for name, value in self.id_token_claims.items():
            claims[name] = value(now) if callable(value) else value
        claims = {k: v for k, v in claims.items() if v is not None}
        return self.sign(claims)

    def sign(self, claims: dict) -> str:
        kind = self.sign_with
        if kind in ("rsa", "other-rsa", "other-rsa-same-kid"):
            key = self.rsa_key if kind == "rsa" else self.other_rsa_key
            kid = "rsa-2" if kind == "other-rsa" else self.rsa_kid
            header = {"alg": "RS256", "typ": "JWT", "kid": kid, **self.header_claims}
            return jws(header, claims, lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256()))
        if kind == "ec":
            def sign_ec(data: bytes) -> bytes:
                r, s = decode_dss_signature(self.ec_key.sign(data, ec.ECDSA(hashes.SHA256())))
                return _int_bytes(r, 32) + _int_bytes(s, 32)
            return jws({"alg": "ES256", "typ": "JWT", "kid": "ec-1", **self.header_claims}, claims, sign_ec)
        if kind == "none":
            return jws({"alg": "none", "typ": "JWT", **self.header_claims}, claims, lambda data: b"")
        if kind in ("hs256-secret", "hs256-public-key"):
            secret = self.client_secret.encode() if kind == "hs256-secret" else self.rsa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            header = {"alg": "HS256", "typ": "JWT", "kid": self.rsa_kid, **self.header_claims}
            return jws(header, claims, lambda data: hmac.new(secret, data, hashlib.sha256).digest())
        raise ValueError(f"unknown sign_with {kind!r}")

    # --- HTTP ---------------------------------------------------------------------------
    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        try:
            parts = urlsplit(h.path)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            length = int(h.headers.get("Content-Length") or 0)
            raw = h.rfile.read(length) if length else b""
            form = dict(parse_qsl(raw.decode(), keep_blank_values=True)) if raw else {}
            headers = {k.lower(): v for k, v in h.headers.items()}
            self.requests.append(Recorded(method, parts.path, query, form, headers))
            path = parts.path
            base = REALM + "/protocol/openid-connect"
            if path == REALM + "/.well-known/openid-configuration":
                return self._json(h, 200, self.discovery())
            if path == base + "/certs":
                return self._json(h, 200, self.jwks())
            if path == base + "/auth" and method == "GET":
                return self._authorize(h, query)
            if path == base + "/token" and method == "POST":
                return self._token(h, form, headers)
            if path == base + "/userinfo":
                return self._userinfo(h, headers)
            if path == base + "/logout":
                target = query.get("post_logout_redirect_uri") or form.get("post_logout_redirect_uri")
                if target:
                    return self._redirect(h, target)
                return self._json(h, 200, {"logged_out": True})
            return self._json(h, 404, {"error": "not_found"})
        except Exception:  # a bug in the fake: recorded, and a 500
            self.errors.append(traceback.format_exc())
            self._json(h, 500, {"error": "server_error"})

    def _json(self, h: BaseHTTPRequestHandler, status: int, body: Any, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _redirect(self, h: BaseHTTPRequestHandler, url: str) -> None:
        h.send_response(302)
        h.send_header("Location", url)
        h.send_header("Content-Length", "0")
        h.end_headers()

    def _authorize(self, h: BaseHTTPRequestHandler, q: dict[str, str]) -> None:
        if q.get("client_id") != self.client_id:
            return self._json(h, 400, {"error": "unauthorized_client"})
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in self.redirect_uris:  # never redirect to an unregistered URI
            return self._json(h, 400, {"error": "invalid_request", "error_description": "redirect_uri not registered"})

        def back(**params: str) -> None:
            if q.get("state") is not None:
                params["state"] = q["state"]
            sep = "&" if "?" in redirect_uri else "?"
            self._redirect(h, redirect_uri + sep + urlencode(params))

        if q.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if "openid" not in q.get("scope", "").split():
            return back(error="invalid_scope")
        challenge, method = q.get("code_challenge"), q.get("code_challenge_method")
        if self.require_pkce and (not challenge or method != "S256"):
            return back(error="invalid_request", error_description="PKCE S256 required")
        if self.deny:
            return back(error=self.deny)
        code = secrets.token_urlsafe(32)
        self.grants[code] = Grant(code, self.client_id, redirect_uri, q.get("nonce"), challenge, method,
                                  json.loads(json.dumps(self.user)), time.time())
        self.issued.append(code)
        back(code=code)

    def _client_authenticated(self, form: dict[str, str], headers: dict[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        if auth.startswith("Basic ") and self.token_auth in ("basic", "both"):
            from urllib.parse import unquote_plus

            decoded = base64.b64decode(auth[6:]).decode()
            cid, _, secret = decoded.partition(":")
            cid, secret = unquote_plus(cid), unquote_plus(secret)
        elif "client_secret" in form and self.token_auth in ("post", "both"):
            cid, secret = form.get("client_id", ""), form["client_secret"]
        else:
            return None
        if cid == self.client_id and hmac.compare_digest(secret, self.client_secret):
            return cid
        return None

    def _token(self, h: BaseHTTPRequestHandler, form: dict[str, str], headers: dict[str, str]) -> None:
        client = self._client_authenticated(form, headers)
        if client is None:
            return self._json(h, 401, {"error": "invalid_client"}, {"WWW-Authenticate": 'Basic realm="token"'})
        if form.get("grant_type") != "authorization_code":
            return self._json(h, 400, {"error": "unsupported_grant_type"})
        grant = self.grants.get(form.get("code", ""))
        if grant is None or grant.used or time.time() - grant.issued_at > 60:
            if grant is not None:
                grant.used = True
            return self._json(h, 400, {"error": "invalid_grant", "error_description": "Code not valid"})
        grant.used = True  # one use, whatever follows
        if grant.client_id != client or grant.redirect_uri != form.get("redirect_uri"):
            return self._json(h, 400, {"error": "invalid_grant", "error_description": "Incorrect redirect_uri"})
        if grant.challenge is not None:
            verifier = form.get("code_verifier")
            if not verifier:
                return self._json(h, 400, {"error": "invalid_grant", "error_description": "PKCE code verifier not specified"})
            if not hmac.compare_digest(s256(verifier), grant.challenge):
                return self._json(h, 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
        access = secrets.token_urlsafe(32)
        self.access_tokens[access] = grant.user
        id_token = self.id_token(grant)
        self.issued += [access, id_token]
        self._json(h, 200, {"access_token": access, "token_type": "Bearer", "expires_in": 300,
                            "id_token": id_token, "scope": "openid email profile"})

    def _userinfo(self, h: BaseHTTPRequestHandler, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        user = self.access_tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if user is None:
            return self._json(h, 401, {"error": "invalid_token"}, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        info = {k: v for k, v in {**user, **self.userinfo_claims}.items() if v is not None}
        self._json(h, 200, info)
