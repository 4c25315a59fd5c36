"""OAuth access tokens for Vertex AI from a service-account credential (Google's
"JSON key file"), without google-auth: the two-legged JWT-bearer flow.

    assertion = RS256-signed JWT {iss: client_email, scope, aud: AUDIENCE, iat, exp}
    POST token_uri  grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=...
    -> {"access_token", "expires_in", "token_type": "Bearer"}

Tokens are cached per credential until shortly before they expire; concurrent requests
wait for one exchange instead of each making their own. Loading the key and signing
(CPU-bound, a few ms) run in a worker thread, the exchange on the shared aiohttp session:
nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..catalog import ProviderInfo
from ..http import get_session, timeout_for
from ..types import ErrorKind, ProviderError
from .. import tracecontext  # the attempt's traceparent on provider requests
from .base import TRANSPORT_ERRORS, provider_error, transport_error

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
# The audience Google checks, whatever token_uri the credential names (google-auth sends
# the same constant).
AUDIENCE = "https://oauth2.googleapis.com/token"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600  # the most Google accepts
REFRESH_MARGIN_S = 300  # a token this close to expiry is replaced before use


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    client_email: str
    private_key: str
    token_uri: str
    private_key_id: str = ""


def service_account(provider: ProviderInfo) -> ServiceAccount:
    """The provider's api_key read as a service-account JSON, or ProviderError(AUTH)."""
    raw = provider.api_key
    if not raw:
        missing = provider.api_key_ref or "a service-account credential"
        raise ProviderError(ErrorKind.AUTH, f"{provider.name}: no credential configured ({missing} is not set)")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) and data[k] for k in ("client_email", "private_key")):
        raise ProviderError(ErrorKind.AUTH, f"{provider.name}: the credential is not a service-account JSON "
                                            f"(with client_email and private_key)")
    return ServiceAccount(data["client_email"], data["private_key"], str(data.get("token_uri") or DEFAULT_TOKEN_URI),
                          str(data.get("private_key_id") or ""))


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def signed_assertion(account: ServiceAccount, now: float) -> str:
    """The RS256 JWT assertion of `account` issued at `now` (CPU-bound: call off the loop)."""
    key = serialization.load_pem_private_key(account.private_key.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the service account's private_key is not an RSA key")
    header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
    if account.private_key_id:
        header["kid"] = account.private_key_id
    claims = {"iss": account.client_email, "scope": SCOPE, "aud": AUDIENCE,
              "iat": int(now), "exp": int(now) + ASSERTION_LIFETIME_S}
    signing_input = _b64(orjson.dumps(header)) + b"." + _b64(orjson.dumps(claims))
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return (signing_input + b"." + _b64(signature)).decode()


class AccessTokens:
    """Access tokens by credential: `get` returns a valid one (exchanging when needed),
    `current` the cached one (after `get`, in the same step), `forget` drops it (a 401)."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}  # credential digest -> (token, expires at)
        self._locks: dict[tuple[int, str], asyncio.Lock] = {}

    @staticmethod
    def _key(provider: ProviderInfo) -> str:
        return hashlib.sha256((provider.api_key or "").encode()).hexdigest()

    def current(self, provider: ProviderInfo) -> str | None:
        entry = self._tokens.get(self._key(provider))
        return entry[0] if entry and entry[1] > time.time() else None

    def forget(self, provider: ProviderInfo) -> None:
        self._tokens.pop(self._key(provider), None)

    async def get(self, provider: ProviderInfo, timeout: float) -> str:
        key = self._key(provider)
        entry = self._tokens.get(key)
        if entry and entry[1] - REFRESH_MARGIN_S > time.time():
            return entry[0]
        # One lock per credential and loop (a lock belongs to the loop that first waits on it).
        lock = self._locks.setdefault((id(asyncio.get_running_loop()), key), asyncio.Lock())
        async with lock:
            entry = self._tokens.get(key)
            if entry and entry[1] - REFRESH_MARGIN_S > time.time():
                return entry[0]  # another request refreshed it while this one waited
            token, lifetime = await self._exchange(provider, timeout)
            self._tokens[key] = (token, time.time() + lifetime)
            return token

    async def _exchange(self, provider: ProviderInfo, timeout: float) -> tuple[str, float]:
        account = service_account(provider)
        try:
            assertion = await asyncio.to_thread(signed_assertion, account, time.time())
        except (ValueError, TypeError) as exc:
            raise ProviderError(ErrorKind.AUTH, f"{provider.name}: the service account's private_key cannot sign "
                                                f"({type(exc).__name__})") from None
        form = {"grant_type": GRANT_TYPE, "assertion": assertion}
        try:
            async with get_session().post(account.token_uri, data=form,
                                          headers=tracecontext.outgoing({"accept": "application/json"}),
                                          timeout=timeout_for(timeout)) as response:
                raw = await response.read()
                status = response.status
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, f"{provider.name} (token endpoint)") from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if status >= 400:
            # OAuth errors: {"error": "invalid_grant", "error_description": "..."}
            text = f"{data.get('error')}: {data.get('error_description', '')}" if isinstance(data, dict) else ""
            kind = ErrorKind.UNAVAILABLE if status >= 500 or status == 429 else ErrorKind.AUTH
            raise provider_error(kind, provider.name, f"token endpoint answered HTTP {status}", text,
                                 secrets=[provider.api_key], status=status)
        token = data.get("access_token") if isinstance(data, dict) else None
        lifetime = data.get("expires_in", 3600) if isinstance(data, dict) else None
        if not isinstance(token, str) or not token or isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)):
            raise ProviderError(ErrorKind.AUTH, f"{provider.name}: the token endpoint's answer has no access_token")
        return token, float(lifetime)
