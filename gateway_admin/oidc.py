"""Single sign-on to the admin with OpenID Connect (issue 16; docs/security/sso.md).

mozilla-django-oidc drives the authorization-code flow (state, nonce and PKCE S256 kept
in the session; gateway_admin/oidc_views.py); this module is what it cannot do alone:

- the provider's endpoints come from its discovery document, read on first use (never at
  import) and cached in process for GATEWAY_OIDC_METADATA_TTL_S; its JWKS likewise, read
  again when a token names a key id it does not hold (key rotation);
- the ID token is checked strictly: signature by a JWKS key with an asymmetric algorithm
  from GATEWAY_OIDC_ALGORITHMS (never "none", never HMAC), `iss` equal to the discovery
  document's issuer, `aud` containing the client id (and `azp` when several), `exp`/`iat`
  with GATEWAY_OIDC_LEEWAY_S of leeway, and the nonce of this sign-in;
- the user's IdP groups (GATEWAY_OIDC_GROUPS_CLAIM) are mapped to the gateway's roles
  (GATEWAY_OIDC_ROLE_MAP) at every sign-in: the role groups become exactly the mapped ones,
  other groups are left alone, is_staff is true iff a role or superuser group is held. A
  token with no mapped group signs nobody in, and strips the roles of the account it
  belongs to, if there is one.

Accounts are found by the token's `sub`, stored in the username as `oidc+<sub>` (see
`username_for`): no migration, and a local account with the same e-mail address is never
taken over unless GATEWAY_OIDC_LINK_BY_EMAIL is set.

Nothing secret reaches a log line or a page: the client secret is registered with the log
scrubber (providers.secrets), and codes, verifiers and tokens are never formatted into a
message; the reasons logged are fixed texts and the provider's error code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import jwt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from gateway_admin.roles import ROLES

logger = logging.getLogger("gateway.oidc")

BACKEND_PATH = "gateway_admin.oidc.GatewayOIDCBackend"
USERNAME_PREFIX = "oidc+"
# Asymmetric algorithms only: with an HMAC algorithm the "key" would be the client
# secret (or, in the classic confusion attack, the provider's public key).
SUPPORTED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_USERNAME_SAFE = re.compile(r"[\w.@+-]+")  # what Django's username validator accepts
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_ENV_REF = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)")


class OIDCError(Exception):
    """A sign-in refused. `reason` picks the message shown on the login page
    (oidc_views.MESSAGES); `detail` is for the log and holds nothing secret."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# --- configuration ---------------------------------------------------------------
@dataclass(frozen=True)
class Config:
    client_id: str
    client_secret: str  # resolved (env:/file: references read)
    issuer: str  # as configured ("" when only a discovery URL is given)
    discovery_url: str
    scopes: str
    groups_claim: str
    role_map: dict[str, tuple[str, ...]]
    superuser_groups: frozenset[str]
    link_by_email: bool
    algorithms: tuple[str, ...]
    leeway_s: int
    timeout_s: float
    redirect_uri: str  # "" = built from the request
    token_auth: str  # auto | client_secret_basic | client_secret_post
    idp_logout: bool
    post_logout_redirect_uri: str
    session_s: int
    allow_http: bool
    ca_bundle: str
    metadata_ttl_s: float


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def enabled() -> bool:
    """Whether single sign-on is configured: a client id and an issuer or discovery URL."""
    return bool(_setting("OIDC_RP_CLIENT_ID", "")) and bool(
        _setting("OIDC_OP_ISSUER", "") or _setting("OIDC_OP_DISCOVERY_URL", "")
    )


def parse_role_map(text: str | dict | None) -> dict[str, tuple[str, ...]]:
    """GATEWAY_OIDC_ROLE_MAP -> {IdP group: (role, ...)}.

    Either `group=Role;Role,group2=Role` (commas between entries, `;` between the roles
    of one group, spaces around names ignored) or a JSON object
    `{"group": "Role"}` / `{"group": ["Role", "Role"]}` for group names holding `,`, `;`
    or `=`. Every role must be one of gateway_admin.roles.ROLES."""
    if not text:
        return {}
    raw: dict[str, list[str]] = {}
    if isinstance(text, dict) or text.lstrip().startswith("{"):
        try:
            loaded = text if isinstance(text, dict) else json.loads(text)
        except ValueError as exc:
            raise ImproperlyConfigured(f"GATEWAY_OIDC_ROLE_MAP is not valid JSON: {exc}") from None
        for group, roles in loaded.items():
            roles = [roles] if isinstance(roles, str) else roles
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                raise ImproperlyConfigured(f"GATEWAY_OIDC_ROLE_MAP: the roles of {group!r} must be a name or a list of names")
            raw[str(group)] = roles
    else:
        for entry in text.split(","):
            if not entry.strip():
                continue
            group, sep, roles = entry.partition("=")
            if not sep or not group.strip():
                raise ImproperlyConfigured(
                    f"GATEWAY_OIDC_ROLE_MAP: {entry.strip()!r} is not 'idp-group=Role' (entries are separated by commas, "
                    "the roles of one group by semicolons)"
                )
            raw.setdefault(group.strip(), []).extend(roles.split(";"))
    parsed: dict[str, tuple[str, ...]] = {}
    for group, roles in raw.items():
        names = tuple(dict.fromkeys(r.strip() for r in roles if r.strip()))
        unknown = [r for r in names if r not in ROLES]
        if unknown or not names:
            raise ImproperlyConfigured(
                f"GATEWAY_OIDC_ROLE_MAP: {group!r} maps to {', '.join(map(repr, unknown)) or 'no role'}; "
                f"roles are: {', '.join(ROLES)}"
            )
        parsed[group] = names
    return parsed


def resolve_secret(ref: str) -> str:
    """The client secret: itself, `env:VARNAME` or `file:/path` (a mounted secret)."""
    if not ref:
        return ""
    if ref.startswith("env:"):
        match = _ENV_REF.fullmatch(ref)
        if not match:
            raise ImproperlyConfigured("OIDC_RP_CLIENT_SECRET: an environment reference looks like env:VARNAME")
        value = os.environ.get(match.group(1), "")
        if not value:
            raise ImproperlyConfigured(f"OIDC_RP_CLIENT_SECRET: the environment variable {match.group(1)} is not set")
        return value
    if ref.startswith("file:"):
        path = Path(ref[len("file:"):])
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"OIDC_RP_CLIENT_SECRET: cannot read {path}: {exc.strerror}") from None
    return ref


def config() -> Config:
    """The settings, checked. Raises ImproperlyConfigured naming the setting at fault."""
    if not enabled():
        raise ImproperlyConfigured("single sign-on is off: set OIDC_RP_CLIENT_ID and OIDC_OP_ISSUER (or OIDC_OP_DISCOVERY_URL)")
    secret = resolve_secret(_setting("OIDC_RP_CLIENT_SECRET", ""))
    if secret:
        from providers.secrets import remember

        remember(secret)  # scrubbed from every log record from now on
    algorithms = tuple(a.strip() for a in _setting("GATEWAY_OIDC_ALGORITHMS", ("RS256", "ES256")) if a.strip())
    bad = [a for a in algorithms if a not in SUPPORTED_ALGORITHMS]
    if bad or not algorithms:
        raise ImproperlyConfigured(
            f"GATEWAY_OIDC_ALGORITHMS: {', '.join(bad) or 'empty'} not allowed; choose from {', '.join(SUPPORTED_ALGORITHMS)}"
        )
    token_auth = _setting("GATEWAY_OIDC_TOKEN_AUTH", "auto")
    if token_auth not in ("auto", "client_secret_basic", "client_secret_post"):
        raise ImproperlyConfigured("GATEWAY_OIDC_TOKEN_AUTH must be auto, client_secret_basic or client_secret_post")
    leeway = int(_setting("GATEWAY_OIDC_LEEWAY_S", 60))
    if not 0 <= leeway <= 300:
        raise ImproperlyConfigured("GATEWAY_OIDC_LEEWAY_S must be between 0 and 300 seconds")
    scopes = _setting("OIDC_RP_SCOPES", "openid email profile")
    if "openid" not in scopes.split():
        raise ImproperlyConfigured("OIDC_RP_SCOPES must include openid")
    return Config(
        client_id=_setting("OIDC_RP_CLIENT_ID", ""),
        client_secret=secret,
        issuer=_setting("OIDC_OP_ISSUER", "").strip(),
        discovery_url=_setting("OIDC_OP_DISCOVERY_URL", "").strip(),
        scopes=scopes,
        groups_claim=_setting("GATEWAY_OIDC_GROUPS_CLAIM", "groups") or "groups",
        role_map=parse_role_map(_setting("GATEWAY_OIDC_ROLE_MAP", "")),
        superuser_groups=frozenset(g.strip() for g in _setting("GATEWAY_OIDC_SUPERUSER_GROUPS", ()) if g.strip()),
        link_by_email=bool(_setting("GATEWAY_OIDC_LINK_BY_EMAIL", False)),
        algorithms=algorithms,
        leeway_s=leeway,
        timeout_s=float(_setting("GATEWAY_OIDC_TIMEOUT_S", 5.0)),
        redirect_uri=_setting("GATEWAY_OIDC_REDIRECT_URI", ""),
        token_auth=token_auth,
        idp_logout=bool(_setting("GATEWAY_OIDC_IDP_LOGOUT", True)),
        post_logout_redirect_uri=_setting("GATEWAY_OIDC_POST_LOGOUT_REDIRECT_URI", ""),
        session_s=int(_setting("GATEWAY_OIDC_SESSION_S", 8 * 3600)),
        allow_http=bool(_setting("GATEWAY_OIDC_ALLOW_HTTP", False)),
        ca_bundle=_setting("GATEWAY_OIDC_CA_BUNDLE", ""),
        metadata_ttl_s=float(_setting("GATEWAY_OIDC_METADATA_TTL_S", 3600.0)),
    )


def redirect_uri(request: HttpRequest, cfg: Config) -> str:
    """The callback URL registered at the provider: GATEWAY_OIDC_REDIRECT_URI, or this
    request's scheme and host (behind a proxy: SECURE_PROXY_SSL_HEADER / USE_X_FORWARDED_HOST)."""
    return cfg.redirect_uri or request.build_absolute_uri(reverse("oidc_authentication_callback"))


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


# --- groups and accounts ---------------------------------------------------------------
def claim_values(claims: dict, name: str) -> list[str]:
    """The group names in claim `name`: a list or a single string; a dotted name
    (realm_access.roles) walks into objects when no claim has that exact name."""
    value: Any = claims.get(name)
    if value is None and "." in name:
        value = claims
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def roles_for(groups: list[str], cfg: Config) -> tuple[list[str], bool]:
    """(the roles these IdP groups map to, in ROLES order; whether one is a superuser group)."""
    wanted = {role for g in groups for role in cfg.role_map.get(g, ())}
    return [r for r in ROLES if r in wanted], any(g in cfg.superuser_groups for g in groups)


def username_for(sub: str) -> str:
    """`oidc+<sub>`; a `sub` with characters Django's username validator refuses (or too
    long for the column) is replaced by its SHA-256, so the admin's user form still
    validates the account."""
    if _USERNAME_SAFE.fullmatch(sub) and len(USERNAME_PREFIX) + len(sub) <= 150:
        return USERNAME_PREFIX + sub
    return USERNAME_PREFIX + "sha256-" + hashlib.sha256(sub.encode()).hexdigest()


def sync_roles(user, roles: list[str], superuser: bool) -> None:
    """The user's role groups become exactly `roles` (other groups untouched);
    is_staff iff a role or superuser; is_superuser iff a superuser group."""
    role_groups = {g.name: g for g in Group.objects.filter(name__in=ROLES)}
    for name in roles:
        if name not in role_groups:
            role_groups[name] = Group.objects.get_or_create(name=name)[0]
    held = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
    drop = [role_groups[n] for n in held - set(roles)]
    add = [role_groups[n] for n in roles if n not in held]
    if drop:
        user.groups.remove(*drop)
    if add:
        user.groups.add(*add)
    user.is_staff = bool(roles) or superuser
    user.is_superuser = superuser


def _text(claims: dict, name: str, limit: int = 150) -> str:
    value = claims.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _update_profile(user, claims: dict) -> None:
    email = _text(claims, "email", 254)
    if email:
        user.email = email
    first, last = _text(claims, "given_name"), _text(claims, "family_name")
    if not (first or last):
        first = _text(claims, "name")
    if first or last:
        user.first_name, user.last_name = first, last


def _client_auth(cfg: Config, meta: Metadata, data: dict) -> dict[str, str]:
    """Client authentication at the token endpoint (headers; `data` updated)."""
    if not cfg.client_secret:  # a public client: PKCE alone
        data["client_id"] = cfg.client_id
        return {}
    method = cfg.token_auth
    if method == "auto":  # the discovery default is client_secret_basic (RFC 8414 2)
        supported = meta.token_endpoint_auth_methods or ("client_secret_basic",)
        method = "client_secret_basic" if "client_secret_basic" in supported else "client_secret_post"
    if method == "client_secret_post":
        data.update(client_id=cfg.client_id, client_secret=cfg.client_secret)
        return {}
    # RFC 6749 2.3.1: each part form-urlencoded before base64.
    pair = urlencode({"a": cfg.client_id})[2:] + ":" + urlencode({"a": cfg.client_secret})[2:]
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def _subject(claims: dict) -> str:
    """A short stable pseudonym of the subject for log lines (not the raw identifier)."""
    return hashlib.sha256(str(claims.get("sub")).encode()).hexdigest()[:12]


def _scrubbed(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


class GatewayOIDCBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend with the checks above. Acts only when called from
    the callback view (oidc_views.CallbackView), which passes the sign-in's nonce and PKCE
    verifier as `oidc_state_secret` (a name Django masks in its login-failed signal)."""

    def __init__(self, *args, **kwargs) -> None:
        # The parent reads the endpoints from settings here; this backend reads them
        # from the discovery document, and only when a sign-in needs them (it is
        # instantiated for every session lookup, so nothing may be fetched here).
        self.UserModel = get_user_model()

    def authenticate(self, request, oidc_state_secret: dict | None = None, **kwargs):
        if request is None or not oidc_state_secret or "username" in kwargs or "password" in kwargs:
            return None
        code, state = request.GET.get("code"), request.GET.get("state")
        if not code or not state:
            return None
        self.request = request
        try:
            cfg = config()
            meta = metadata(cfg)
            tokens = self.exchange_code(cfg, meta, request, code, oidc_state_secret.get("code_verifier"))
            claims = verify_id_token(cfg, meta, tokens.get("id_token"), nonce=oidc_state_secret.get("nonce"))
            claims = self.with_userinfo(cfg, meta, claims, tokens.get("access_token"))
            user = self.sign_in_user(cfg, claims)
        except OIDCError as exc:
            request.gateway_oidc_error = exc.reason
            logger.warning("single sign-on refused (%s): %s", exc.reason, exc.detail)
            return None
        except ImproperlyConfigured as exc:
            request.gateway_oidc_error = "misconfigured"
            logger.error("single sign-on is misconfigured: %s", exc)
            return None
        if cfg.idp_logout and meta.end_session_endpoint:
            request.session["oidc_id_token"] = tokens["id_token"]  # the id_token_hint at logout
        return user

    # --- the token exchange ----------------------------------------------------------
    def exchange_code(self, cfg: Config, meta: Metadata, request, code: str, verifier: str | None) -> dict:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri(request, cfg)}
        if verifier:
            data["code_verifier"] = verifier
        headers = {"Accept": "application/json", **_client_auth(cfg, meta, data)}
        try:
            response = _client(cfg).post(meta.token_endpoint, data=data, headers=headers)
        except httpx.HTTPError as exc:
            raise OIDCError("unreachable", f"the token endpoint: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            error = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else "no error code"
            described = body.get("error_description") if isinstance(body, dict) else None
            described = _scrubbed(described[:200], code, verifier, cfg.client_secret) if isinstance(described, str) else ""
            raise OIDCError("invalid_token", f"the token endpoint answered HTTP {response.status_code} ({error}) {described}".rstrip())
        return body

    def with_userinfo(self, cfg: Config, meta: Metadata, claims: dict, access_token: str | None) -> dict:
        """The ID token's claims completed by the userinfo endpoint's (whose `sub` must
        be the token's: OIDC Core 5.3.2). Trust claims (iss, aud, exp, nonce) stay the token's."""
        if not meta.userinfo_endpoint or not access_token:
            return claims
        try:
            response = _client(cfg).get(meta.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"})
        except httpx.HTTPError as exc:
            raise OIDCError("unreachable", f"the userinfo endpoint: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise OIDCError("invalid_token", f"the userinfo endpoint answered HTTP {response.status_code}")
        if response.headers.get("content-type", "").lower().startswith("application/jwt"):
            info = self._signed_userinfo(cfg, meta, response.text)
        else:
            try:
                info = response.json()
            except ValueError:
                info = None
        if not isinstance(info, dict):
            raise OIDCError("invalid_token", "the userinfo answer is not a JSON object")
        if info.get("sub") != claims["sub"]:
            raise OIDCError("invalid_token", "the userinfo answer is about another subject than the ID token")
        trusted = {k: claims[k] for k in ("iss", "aud", "exp", "iat", "nonce", "azp", "sub") if k in claims}
        return {**claims, **info, **trusted}

    def _signed_userinfo(self, cfg: Config, meta: Metadata, token: str) -> dict:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise OIDCError("invalid_token", "the signed userinfo answer is not a JWT") from None
        if header.get("alg") not in cfg.algorithms:
            raise OIDCError("invalid_token", "the signed userinfo answer uses an algorithm that is not allowed")
        # OIDC Core 5.3.2: iss and aud, when present, must be the provider's and ours.
        options = {"require": ["sub"], "verify_aud": "aud" in unverified, "verify_iss": "iss" in unverified}
        for key in signing_keys(cfg, meta, header):
            try:
                return jwt.decode(token, key=key, algorithms=[header["alg"]], audience=cfg.client_id,
                                  issuer=meta.issuer, leeway=cfg.leeway_s, options=options)
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as exc:
                raise OIDCError("invalid_token", f"signed userinfo rejected: {_jwt_reason(exc)}") from None
        raise OIDCError("invalid_token", "signed userinfo rejected: Signature verification failed")

    # --- the account -------------------------------------------------------------------
    def find_user(self, cfg: Config, claims: dict):
        users = self.UserModel.objects
        user = users.filter(username=username_for(claims["sub"])).first()
        if user is None and cfg.link_by_email and claims.get("email_verified") is True and _text(claims, "email", 254):
            matches = list(users.filter(email__iexact=_text(claims, "email", 254)).exclude(username__startswith=USERNAME_PREFIX)[:2])
            if len(matches) == 1:
                user = matches[0]
        return user

    def sign_in_user(self, cfg: Config, claims: dict):
        """The account and roles the IdP's claims say, recorded in the audit trail as done
        by the single sign-on of that subject (nobody is signed in yet at the callback)."""
        from . import audit

        request = getattr(self, "request", None)
        actor = audit.Actor(
            "system", f"single sign-on of {username_for(claims['sub'])}"[:200], username=username_for(claims["sub"])[:150],
            via="oidc", remote_addr=audit.client_address(request) if request is not None else "",
            source=f"OpenID Connect issuer {cfg.issuer}"[:300] if getattr(cfg, "issuer", "") else "OpenID Connect",
        )
        with audit.acting_as(actor):
            return self._sign_in_user(cfg, claims)

    def _sign_in_user(self, cfg: Config, claims: dict):
        groups = claim_values(claims, cfg.groups_claim)
        roles, superuser = roles_for(groups, cfg)
        if not roles and not superuser:
            with transaction.atomic():
                user = self.find_user(cfg, claims)
                if user is not None:  # the IdP says: no role any more
                    sync_roles(user, [], False)
                    user.save(update_fields=["is_staff", "is_superuser"])
            overage = cfg.groups_claim in (claims.get("_claim_names") or {})
            shown = ", ".join(repr(g[:64]) for g in groups[:10]) + (", ..." if len(groups) > 10 else "")
            raise OIDCError(
                "unknown_group",
                f"subject {_subject(claims)}: claim {cfg.groups_claim!r} holds [{shown}], none in "
                "GATEWAY_OIDC_ROLE_MAP or GATEWAY_OIDC_SUPERUSER_GROUPS"
                + (" (the provider sent a groups overage reference instead of the groups)" if overage else ""),
            )
        try:
            user = self._save_user(cfg, claims, roles, superuser)
        except IntegrityError:  # the same person's first sign-in in two tabs at once: the other won
            user = self._save_user(cfg, claims, roles, superuser)
        logger.info("single sign-on: user %s signed in with roles: %s", user.pk, ", ".join(roles) or "(superuser only)")
        return user

    def _save_user(self, cfg: Config, claims: dict, roles: list[str], superuser: bool):
        with transaction.atomic():
            user = self.find_user(cfg, claims)
            if user is None:
                user = self.UserModel(username=username_for(claims["sub"]))
                user.set_unusable_password()
            elif not user.is_active:
                raise OIDCError("disabled", f"subject {_subject(claims)}: account {user.pk} is disabled in the gateway")
            _update_profile(user, claims)
            user.is_staff, user.is_superuser = bool(roles) or superuser, superuser
            user.save()
            sync_roles(user, roles, superuser)
        return user

    def get_user(self, user_id):
        try:
            return self.UserModel.objects.get(pk=user_id)
        except self.UserModel.DoesNotExist:
            return None


def end_session_url(request: HttpRequest) -> str:
    """Where to send a user signed in by single sign-on at logout (RP-initiated logout at
    the provider's end_session_endpoint), or "" when there is nowhere to go."""
    from django.contrib.auth import BACKEND_SESSION_KEY

    if request.session.get(BACKEND_SESSION_KEY) != BACKEND_PATH or not enabled():
        return ""
    try:
        cfg = config()
        if not cfg.idp_logout:
            return ""
        meta = metadata(cfg)
    except (OIDCError, ImproperlyConfigured) as exc:
        logger.warning("single sign-on logout at the provider skipped: %s", exc)
        return ""
    if not meta.end_session_endpoint:
        return ""
    params = {"client_id": cfg.client_id,
              "post_logout_redirect_uri": cfg.post_logout_redirect_uri or request.build_absolute_uri(reverse("admin:login"))}
    hint = request.session.get("oidc_id_token")
    if hint:
        params["id_token_hint"] = hint
    sep = "&" if "?" in meta.end_session_endpoint else "?"
    return meta.end_session_endpoint + sep + urlencode(params)
