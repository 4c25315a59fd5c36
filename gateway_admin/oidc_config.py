"""Single sign-on: its settings (Config, the role map, the client secret reference) and
the error type; gateway_admin/oidc.py is the sign-in itself."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from django.urls import reverse

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
