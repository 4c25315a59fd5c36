"""manage.py oidc_check: is single sign-on configured so that it can work?

Reads the settings (role map, algorithms, secret reference), fetches the provider's
discovery document and JWKS, and prints what to register at the provider (the redirect
URI) and how IdP groups map to roles. Exits 1 naming the problem otherwise. Never prints
the client secret. docs/security/sso.md.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from gateway_admin import oidc


class Command(BaseCommand):
    help = "Check the single sign-on (OpenID Connect) configuration against the identity provider."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--base-url", default="", help="The gateway's public URL, e.g. https://gw.example.com "
                            "(to print the redirect URI when GATEWAY_OIDC_REDIRECT_URI is not set).")

    def handle(self, *args, base_url: str = "", **options) -> None:
        if not oidc.enabled():
            raise CommandError("single sign-on is off: set OIDC_RP_CLIENT_ID and OIDC_OP_ISSUER (or OIDC_OP_DISCOVERY_URL)")
        try:
            cfg = oidc.config()
            meta = oidc.metadata(cfg)
            keys = oidc._keys(cfg, meta, refresh=True)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        except oidc.OIDCError as exc:
            raise CommandError(f"{exc.reason}: {exc.detail}") from None
        usable = [k for k in keys if any(oidc._candidates([k], None, alg) for alg in cfg.algorithms)]
        if not usable:
            raise CommandError(f"the provider's JWKS ({meta.jwks_uri}) has no key for {', '.join(cfg.algorithms)}")
        if meta.code_challenge_methods and "S256" not in meta.code_challenge_methods:
            raise CommandError("the provider does not offer PKCE S256 (code_challenge_methods_supported)")
        callback = cfg.redirect_uri or (base_url.rstrip("/") + reverse("oidc_authentication_callback") if base_url
                                        else f"<this gateway's URL>{reverse('oidc_authentication_callback')}")
        out = self.stdout.write
        out(f"issuer:                 {meta.issuer}")
        out(f"authorization endpoint: {meta.authorization_endpoint}")
        out(f"token endpoint:         {meta.token_endpoint}")
        out(f"userinfo endpoint:      {meta.userinfo_endpoint or '(none)'}")
        out(f"end session endpoint:   {meta.end_session_endpoint or '(none: logout is local only)'}")
        out(f"signing keys:           {len(usable)} usable for {', '.join(cfg.algorithms)}")
        out(f"client:                 {cfg.client_id} ({'confidential' if cfg.client_secret else 'public, PKCE only'})")
        out(f"redirect URI:           {callback}")
        out(f"scopes:                 {cfg.scopes}")
        out(f"groups claim:           {cfg.groups_claim}")
        for group, roles in cfg.role_map.items():
            out(f"  {group} -> {', '.join(roles)}")
        for group in sorted(cfg.superuser_groups):
            out(f"  {group} -> superuser")
        if not cfg.role_map and not cfg.superuser_groups:
            raise CommandError("GATEWAY_OIDC_ROLE_MAP and GATEWAY_OIDC_SUPERUSER_GROUPS are empty: nobody could sign in")
        out(self.style.SUCCESS("single sign-on: OK"))
