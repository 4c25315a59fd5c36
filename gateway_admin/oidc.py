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
import logging
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from gateway_admin.roles import ROLES

logger = logging.getLogger("gateway.oidc")

# Re-exported: the views, the command and the tests import single sign-on from here.
from .oidc_config import (  # noqa: F401
    BACKEND_PATH, USERNAME_PREFIX, SUPPORTED_ALGORITHMS, _USERNAME_SAFE, _ERROR_CODE, OIDCError,
    Config, enabled, parse_role_map, resolve_secret, config, redirect_uri,
)
from .oidc_tokens import (  # noqa: F401
    Metadata, reset_caches, _client, discovery_url, metadata, _keys, _candidates, signing_keys,
    verify_id_token, _jwt_reason,
)

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
