"""Fake Vertex AI (Gemini on aiplatform) and the OAuth token endpoint its credentials use.

Endpoints::

    POST /token   the service-account JWT-bearer grant (token_uri of the test credential)
    POST /{v1|v1beta1}/projects/{project}/locations/{location}/publishers/google/models/{model}:generateContent
         (:streamGenerateContent?alt=sse, :predict for text embeddings)

Generation is the Gemini fake's (same bodies); what differs is the URL and the auth:
``Authorization: Bearer <token>`` with a token this server issued and has not revoked
(else 401 UNAUTHENTICATED), for the configured project and location (else 403).

The token endpoint checks the assertion as Google does: an RS256 JWT whose signature
verifies with the credential's public key, issued by its client_email, for Google's
token audience, asking for a scope, valid for at most an hour. Issued tokens, assertions
and token requests are recorded; ``revoke_tokens()`` makes every issued token answer
401 (an expired or revoked token), ``fail_tokens(status)`` the next token request.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .base import Behaviour, Exchange, Route
from .gemini import FakeGemini
from .vectors import embedding

_PATH = re.compile(r"^/(?P<version>v1|v1beta1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
                   r"/publishers/google/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_EMAIL = "gateway-test@test-project.iam.gserviceaccount.com"
# Google checks this audience whatever token_uri the credential names (google-auth sends it).
AUDIENCE = "https://oauth2.googleapis.com/token"


def service_account(token_uri: str, *, client_email: str = CLIENT_EMAIL) -> tuple[str, rsa.RSAPublicKey]:
    """A throwaway service-account credential (JSON text, as Google's key files) whose
    token_uri is `token_uri`, and its public key (for FakeVertex)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": "test-project", "private_key_id": "test-key-1",
            "private_key": pem, "client_email": client_email, "client_id": "1234567890",
            "token_uri": token_uri, "auth_uri": "https://accounts.google.com/o/oauth2/auth"}
    return json.dumps(info), key.public_key()


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class FakeVertex(FakeGemini):
    """Fake Vertex AI serving one project/location, plus its token endpoint at /token.

    ``public_key`` may be set after start() (a credential names the running server's
    token_uri, see ``credential()``); until then every assertion is refused."""

    def __init__(self, *, public_key: rsa.RSAPublicKey | None = None, client_email: str = CLIENT_EMAIL,
                 project: str = "test-project", location: str = "us-central1", token_lifetime: int = 3600,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.public_key = public_key
        self.client_email = client_email
        self.project = project
        self.location = location
        self.token_lifetime = token_lifetime
        self._lock = threading.Lock()
        self._valid: set[str] = set()
        self.issued: list[str] = []
        self.assertions: list[dict] = []  # claims of every accepted assertion
        self._token_failures: list[int] = []

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def credential(self) -> str:
        """A new service-account credential for this running server (its JSON text);
        assertions signed with any other key are refused from now on."""
        text, self.public_key = service_account(self.token_uri, client_email=self.client_email)
        return text

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._valid.clear()
            self.issued.clear()
            self.assertions.clear()
            self._token_failures.clear()

    def revoke_tokens(self) -> None:
        with self._lock:
            self._valid.clear()

    def fail_tokens(self, status: int, times: int = 1) -> None:
        with self._lock:
            self._token_failures.extend([status] * times)

    @property
    def token_requests(self) -> int:
        return sum(1 for r in self.requests if r.path == "/token")

    # -- routing -------------------------------------------------------------------------
    def route(self, ex: Exchange) -> tuple[Route, bool] | None:
        if (ex.method, ex.path) == ("POST", "/token"):
            return self._token, False
        match = _PATH.match(ex.path)
        if ex.method != "POST" or not match:
            return None
        handler = {"generateContent": self._generate, "streamGenerateContent": self._generate,
                   "predict": self._predict}.get(match["method"])
        return (handler, True) if handler else None

    def model_of(self, ex: Exchange) -> str:
        match = _PATH.match(ex.path)
        return match["model"] if match else ""

    def authorized(self, ex: Exchange) -> bool:
        token = ex.headers.get("authorization", "").removeprefix("Bearer ")
        with self._lock:
            valid = token in self._valid
        if not valid:
            self.send_error(ex, 401, "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                                     "login cookie or other valid authentication credential.", reason="ACCESS_TOKEN_EXPIRED")
            return False
        match = _PATH.match(ex.path)
        if match and (match["project"], match["location"]) != (self.project, self.location):
            self.send_error(ex, 403, f"Permission denied on resource project {match['project']} "
                                     f"(or it may not exist) in location {match['location']}.")
            return False
        return True

    # -- OAuth ---------------------------------------------------------------------------
    def _token(self, ex: Exchange, _: Behaviour | None) -> None:
        with self._lock:
            failure = self._token_failures.pop(0) if self._token_failures else None
        if failure is not None:
            error = "internal_failure" if failure >= 500 else "invalid_grant"
            return ex.send_json(failure, {"error": error, "error_description": "scripted failure"})
        form = dict(parse_qsl(ex.raw_body.decode()))
        if form.get("grant_type") != GRANT_TYPE:
            return ex.send_json(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        claims, problem = self._check_assertion(form.get("assertion", ""))
        if problem:
            return ex.send_json(400, {"error": "invalid_grant", "error_description": problem})
        token = f"ya29.fake-{len(self.issued) + 1}-{int(time.time() * 1000)}"
        with self._lock:
            self._valid.add(token)
            self.issued.append(token)
            self.assertions.append(claims)
        ex.send_json(200, {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"})

    def _check_assertion(self, assertion: str) -> tuple[dict, str | None]:
        try:
            head, body, signature = assertion.split(".")
            header, claims = json.loads(_unb64(head)), json.loads(_unb64(body))
            if self.public_key is None:
                raise ValueError("no credential made yet")
            self.public_key.verify(_unb64(signature), f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            return {}, "Invalid JWT Signature."
        now = time.time()
        if header.get("alg") != "RS256":
            return claims, "Invalid JWT: alg must be RS256"
        if claims.get("iss") != self.client_email:
            return claims, "Invalid JWT: iss is not the service account"
        if claims.get("aud") != AUDIENCE:
            return claims, "Invalid JWT: audience is not https://oauth2.googleapis.com/token"
        if not claims.get("scope"):
            return claims, "Invalid JWT: no scope"
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int) or exp - iat > 3600 or exp < now or iat > now + 300:
            return claims, "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
        return claims, None

    # -- embeddings (text-embeddings predict) ---------------------------------------------
    def _predict(self, ex: Exchange, behaviour: Behaviour | None) -> None:
        if not self.authorized(ex):
            return
        body = ex.json if isinstance(ex.json, dict) else {}
        instances = body.get("instances")
        if not isinstance(instances, list) or not instances:
            return self.send_error(ex, 400, "instances is required")
        dimensions = (body.get("parameters") or {}).get("outputDimensionality")
        model = self.model_of(ex)
        predictions = []
        for instance in instances:
            text = instance.get("content", "") if isinstance(instance, dict) else ""
            predictions.append({"embeddings": {"statistics": {"truncated": False, "token_count": len(text.split())},
                                               "values": embedding(model, text, 768, dimensions)}})
        self.send_result(ex, behaviour, {"predictions": predictions,
                                         "metadata": {"billableCharacterCount": sum(len(i.get("content", "")) for i in instances)}})


__all__ = ["CLIENT_EMAIL", "FakeVertex", "service_account"]
