"""Single sign-on: the identity provider's discovery document and signing keys, read
lazily and cached, and the strict check of an ID token (gateway_admin/oidc.py)."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import jwt


logger = logging.getLogger("gateway.oidc")

from .oidc_config import _KEY_TYPES, OIDCError, Config, config

# --- the provider's metadata and keys ------------------------------------------------
@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str = ""
    end_session_endpoint: str = ""
    token_endpoint_auth_methods: tuple[str, ...] = ()
    code_challenge_methods: tuple[str, ...] = ()


_lock = threading.Lock()
_metadata: dict[str, tuple[float, Metadata]] = {}  # discovery URL -> (read at, metadata)
_jwks: dict[str, tuple[float, list[dict]]] = {}  # jwks_uri -> (read at, keys)


def reset_caches() -> None:
    """Forget the cached discovery documents and key sets (tests; a changed configuration)."""
    with _lock:
        _metadata.clear()
        _jwks.clear()
        for client in _clients.values():
            client.close()
        _clients.clear()


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _check_url(url: str, what: str, cfg: Config) -> str:
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and (cfg.allow_http or _is_loopback(parts.hostname))):
        return url
    raise OIDCError("misconfigured", f"{what} {url!r} must be https (GATEWAY_OIDC_ALLOW_HTTP allows http)")


_clients: dict[tuple[str, float], httpx.Client] = {}


def _client(cfg: Config) -> httpx.Client:
    """One pooled client per (CA bundle, timeout) for the process: building one loads the
    CA store (~50 ms), which a sign-in should not pay three times."""
    key = (cfg.ca_bundle, cfg.timeout_s)
    with _lock:
        client = _clients.get(key)
        if client is None:
            verify: bool | ssl.SSLContext = ssl.create_default_context(cafile=cfg.ca_bundle) if cfg.ca_bundle else True
            client = _clients[key] = httpx.Client(timeout=cfg.timeout_s, verify=verify, follow_redirects=False)
        return client


def _get_json(cfg: Config, url: str, what: str) -> dict:
    try:
        response = _client(cfg).get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise OIDCError("unreachable", f"{what} {url}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise OIDCError("unreachable", f"{what} {url} answered HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise OIDCError("unreachable", f"{what} {url} is not JSON") from None
    if not isinstance(body, dict):
        raise OIDCError("unreachable", f"{what} {url} is not a JSON object")
    return body


def discovery_url(cfg: Config) -> str:
    return cfg.discovery_url or cfg.issuer.rstrip("/") + "/.well-known/openid-configuration"


def metadata(cfg: Config | None = None) -> Metadata:
    """The provider's endpoints, from its discovery document (cached)."""
    cfg = cfg or config()
    url = _check_url(discovery_url(cfg), "the discovery URL", cfg)
    now = time.monotonic()
    with _lock:
        cached = _metadata.get(url)
    if cached and now - cached[0] < cfg.metadata_ttl_s:
        return cached[1]
    doc = _get_json(cfg, url, "the discovery document")
    missing = [k for k in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri") if not isinstance(doc.get(k), str) or not doc.get(k)]
    if missing:
        raise OIDCError("misconfigured", f"the discovery document {url} lacks {', '.join(missing)}")
    # OpenID Connect Discovery 4.3: the document's issuer is the one configured.
    if cfg.issuer and doc["issuer"].rstrip("/") != cfg.issuer.rstrip("/"):
        raise OIDCError("misconfigured", f"the discovery document's issuer {doc['issuer']!r} is not OIDC_OP_ISSUER {cfg.issuer!r}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint", "end_session_endpoint"):
        if doc.get(key):
            _check_url(doc[key], key, cfg)
    meta = Metadata(
        issuer=doc["issuer"],
        authorization_endpoint=doc["authorization_endpoint"],
        token_endpoint=doc["token_endpoint"],
        jwks_uri=doc["jwks_uri"],
        userinfo_endpoint=doc.get("userinfo_endpoint") or "",
        end_session_endpoint=doc.get("end_session_endpoint") or "",
        token_endpoint_auth_methods=tuple(doc.get("token_endpoint_auth_methods_supported") or ()),
        code_challenge_methods=tuple(doc.get("code_challenge_methods_supported") or ()),
    )
    with _lock:
        _metadata[url] = (now, meta)
    return meta


def _keys(cfg: Config, meta: Metadata, *, refresh: bool = False) -> list[dict]:
    now = time.monotonic()
    with _lock:
        cached = _jwks.get(meta.jwks_uri)
    if cached and not refresh and now - cached[0] < cfg.metadata_ttl_s:
        return cached[1]
    doc = _get_json(cfg, meta.jwks_uri, "the JWKS")
    keys = [k for k in doc.get("keys") or () if isinstance(k, dict)]
    with _lock:
        _jwks[meta.jwks_uri] = (now, keys)
    return keys


def _candidates(keys: list[dict], kid: str | None, alg: str) -> list[dict]:
    kty = _KEY_TYPES[alg[:2]]
    return [
        k for k in keys
        if k.get("kty") == kty
        and k.get("use", "sig") == "sig"
        and k.get("alg", alg) == alg
        and (kid is None or k.get("kid") == kid)
    ]


def signing_keys(cfg: Config, meta: Metadata, header: dict) -> list[jwt.PyJWK]:
    """The JWKS keys that may have signed a token with this header (read again once
    when none matches: the provider may have rotated its keys). The token came from the
    token endpoint over TLS, not from the browser, so the re-read is at most one per
    sign-in and cannot be driven by a third party."""
    alg, kid = header.get("alg"), header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise OIDCError("invalid_token", "the ID token's kid is not a string")
    found = _candidates(_keys(cfg, meta), kid, alg)
    if not found:
        found = _candidates(_keys(cfg, meta, refresh=True), kid, alg)
    if not found:
        raise OIDCError("invalid_token", f"no key in the provider's JWKS matches the ID token (kid {kid!r}, alg {alg})")
    keys = []
    for jwk in found:
        try:
            keys.append(jwt.PyJWK(jwk, algorithm=alg))
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue
    if not keys:
        raise OIDCError("invalid_token", f"the provider's JWKS key for kid {kid!r} is unusable")
    return keys


def verify_id_token(cfg: Config, meta: Metadata, token: str, *, nonce: str | None) -> dict:
    """The ID token's claims, once every check holds; OIDCError otherwise."""
    if not isinstance(token, str) or not token:
        raise OIDCError("invalid_token", "the token endpoint returned no id_token")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise OIDCError("invalid_token", "the ID token is not a signed JWT") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in cfg.algorithms:
        shown = alg[:16] if isinstance(alg, str) else type(alg).__name__
        raise OIDCError("invalid_token", f"the ID token's algorithm {shown!r} is not allowed ({', '.join(cfg.algorithms)})")
    claims: dict | None = None
    last: Exception | None = None
    for key in signing_keys(cfg, meta, header):
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=cfg.client_id,
                issuer=meta.issuer,
                leeway=cfg.leeway_s,
                options={"require": ["iss", "sub", "aud", "exp", "iat"], "verify_signature": True},
            )
            break
        except jwt.InvalidSignatureError as exc:  # try the next key with this kid
            last = exc
        except jwt.PyJWTError as exc:
            raise OIDCError("invalid_token", f"ID token rejected: {_jwt_reason(exc)}") from None
    if claims is None:
        raise OIDCError("invalid_token", f"ID token rejected: {_jwt_reason(last)}")
    aud = claims["aud"]
    azp = claims.get("azp")
    if (isinstance(aud, list) and len(aud) > 1 and azp is None) or (azp is not None and azp != cfg.client_id):
        raise OIDCError("invalid_token", "ID token rejected: its authorized party (azp) is not this client")
    if not nonce or not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
        raise OIDCError("invalid_token", "ID token rejected: the nonce is not this sign-in's")
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise OIDCError("invalid_token", "ID token rejected: sub is not a string of 1 to 255 characters")
    return claims


def _jwt_reason(exc: Exception | None) -> str:
    """PyJWT's fixed messages ("Signature has expired", "Invalid audience", ...), never
    the token: messages that could quote part of it are replaced by the class name."""
    if exc is None:
        return "unknown"
    if isinstance(exc, (jwt.ExpiredSignatureError, jwt.InvalidAudienceError, jwt.InvalidIssuerError,
                        jwt.ImmatureSignatureError, jwt.MissingRequiredClaimError, jwt.InvalidSignatureError,
                        jwt.InvalidAlgorithmError)):
        return str(exc)[:120]
    return type(exc).__name__
