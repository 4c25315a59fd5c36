"""The single sign-on pages (mounted at /oidc/ by gateway_admin/oidc_urls.py): start a
sign-in, the provider's callback, logout. mozilla-django-oidc's views, with the
endpoints read from the discovery document, PKCE S256 and the nonce always on, and
every refusal ending on the admin login page with a message (never a 400/500 page);
docs/security/sso.md. Without single sign-on configured every page here is a 404.
"""

from __future__ import annotations

import logging
import re
import time

from django.contrib import admin, auth, messages
from django.core.exceptions import ImproperlyConfigured
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from . import oidc

logger = logging.getLogger("gateway.oidc")

# What the login page says for each refusal (the log says why, in detail).
MESSAGES = {
    "unknown_group": "Single sign-on: you signed in at the identity provider, but none of your groups there "
    "grants a role in this gateway, so you were not signed in. Ask an administrator to add you to a group "
    "that maps to a role.",
    "invalid_token": "Single sign-on failed: the identity provider's answer could not be verified, so you were "
    "not signed in. Please try again; if it keeps failing, tell an administrator (the gateway's log says why).",
    "state": "Single sign-on failed: this sign-in was not started from this browser or took too long. "
    "Please try again.",
    "idp_error": "Single sign-on failed: the identity provider did not sign you in ({code}).",
    "disabled": "Single sign-on: your account in this gateway is disabled. Ask an administrator.",
    "unreachable": "Single sign-on is unavailable: the identity provider could not be reached. "
    "Please try again later or sign in with a local account.",
    "misconfigured": "Single sign-on is not configured correctly; the gateway's log says why. "
    "Sign in with a local account meanwhile.",
}
_IDP_ERROR = re.compile(r"[a-z_]{1,40}")

# Settings the parent views read that this deployment does not leave to chance.
_FORCED = {
    "OIDC_USE_PKCE": True,
    "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
    "OIDC_PKCE_CODE_VERIFIER_SIZE": 64,
    "OIDC_USE_NONCE": True,
    "OIDC_NONCE_SIZE": 32,
    "OIDC_STATE_SIZE": 32,
    "OIDC_AUTHENTICATION_CALLBACK_URL": "oidc_authentication_callback",
    "OIDC_REDIRECT_FIELD_NAME": "next",
}


def _refuse(request: HttpRequest, reason: str, **fmt: str) -> HttpResponseRedirect:
    messages.error(request, MESSAGES[reason].format(**fmt))
    next_url = request.session.get("oidc_login_next") if hasattr(request, "session") else None
    url = reverse("admin:login")
    return HttpResponseRedirect(url + ("?" + urlencode({"next": next_url}) if next_url else ""))


def _configured() -> oidc.Config:
    if not oidc.enabled():
        raise Http404("Single sign-on is not configured.")
    return oidc.config()


class AuthenticateView(OIDCAuthenticationRequestView):
    """GET /oidc/authenticate/?next=...: to the provider's authorization endpoint with
    state, nonce and an S256 code challenge (all kept in the session)."""

    def __init__(self, *args, **kwargs) -> None:
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)  # the parent reads settings here

    @staticmethod
    def get_settings(attr, *args):
        if attr in _FORCED:
            return _FORCED[attr]
        if attr == "OIDC_RP_SCOPES":
            return oidc.config().scopes
        return OIDCAuthenticationRequestView.get_settings(attr, *args)

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            cfg = _configured()
            meta = oidc.metadata(cfg)
        except oidc.OIDCError as exc:
            logger.warning("single sign-on cannot start (%s): %s", exc.reason, exc.detail)
            return _refuse(request, exc.reason)
        except ImproperlyConfigured as exc:
            logger.error("single sign-on is misconfigured: %s", exc)
            return _refuse(request, "misconfigured")
        if meta.code_challenge_methods and "S256" not in meta.code_challenge_methods:
            logger.error("single sign-on: the provider does not offer PKCE S256 (code_challenge_methods_supported)")
            return _refuse(request, "misconfigured")
        self.OIDC_OP_AUTH_ENDPOINT = meta.authorization_endpoint
        self.OIDC_RP_CLIENT_ID = cfg.client_id
        self._redirect_uri = oidc.redirect_uri(request, cfg)
        return super().get(request)

    def get_extra_params(self, request: HttpRequest) -> dict:
        # Applied over the parent's parameters: the configured redirect URI, when set.
        return {**self.get_settings("OIDC_AUTH_REQUEST_EXTRA_PARAMS", {}), "redirect_uri": self._redirect_uri}


class CallbackView(OIDCAuthenticationCallbackView):
    """GET /oidc/callback/?code=...&state=...: the state must be one this session started
    (used once), then the backend exchanges the code with the PKCE verifier and checks
    the ID token; success ends in the admin (or `next`), anything else on the login page."""

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            _configured()
        except ImproperlyConfigured as exc:
            logger.error("single sign-on is misconfigured: %s", exc)
            return _refuse(request, "misconfigured")
        states = request.session.get("oidc_states")
        state = request.GET.get("state")
        entry = states.pop(state, None) if isinstance(states, dict) and state else None
        if entry is not None:
            request.session.modified = True
            request.session.save()  # used once, even if what follows fails
        if request.GET.get("error"):
            code = request.GET["error"] if _IDP_ERROR.fullmatch(request.GET["error"]) else "error"
            logger.warning("single sign-on: the provider answered error=%s", code)
            return _refuse(request, "idp_error", code=code)
        if entry is None or not request.GET.get("code"):
            logger.warning("single sign-on refused (state): the callback's state is not one this session started")
            return _refuse(request, "state")
        if time.time() - float(entry.get("added_on") or 0) > 600:
            logger.warning("single sign-on refused (state): the sign-in was started more than 10 minutes ago")
            return _refuse(request, "state")
        # Reload the session (as the parent view does): another tab may have changed it.
        request.session = request.session.__class__(request.session.session_key)
        self.user = auth.authenticate(
            request=request,
            oidc_state_secret={"nonce": entry.get("nonce"), "code_verifier": entry.get("code_verifier")},
        )
        if self.user is None:
            return _refuse(request, getattr(request, "gateway_oidc_error", None) or "invalid_token")
        if not self.user.is_active:
            return _refuse(request, "disabled")
        return self.login_success()

    @property
    def success_url(self) -> str:
        return self.request.session.get("oidc_login_next") or reverse("admin:index")

    def login_success(self) -> HttpResponse:
        id_token = self.request.session.get("oidc_id_token")
        next_url = self.success_url
        auth.login(self.request, self.user)  # a new session key (no fixation), the old data kept
        if id_token:
            self.request.session["oidc_id_token"] = id_token
        self.request.session.set_expiry(oidc.config().session_s)
        self.request.session.pop("oidc_login_next", None)
        return HttpResponseRedirect(next_url)


@never_cache
def logout(request: HttpRequest) -> HttpResponse:
    """POST /admin/logout/ (and /oidc/logout/): the admin's logout; a user signed in by
    single sign-on is then sent to the provider's end_session_endpoint (RP-initiated
    logout) when it has one. The local session ends either way."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    at_provider = oidc.end_session_url(request)
    response = admin.site.logout(request)
    if at_provider and response.status_code < 400:
        return HttpResponseRedirect(at_provider)
    return response
