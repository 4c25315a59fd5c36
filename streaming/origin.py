"""Websocket origin check (cross-site websocket hijacking): the playground's socket is
authenticated by the session cookie, which a browser also sends when a page of another
origin opens a websocket to the gateway; only the Origin header tells them apart.

A handshake is accepted when its Origin is
- the page's own origin: Origin's host and port equal the Host the handshake asked for
  (X-Forwarded-Host with USE_X_FORWARDED_HOST), which ALLOWED_HOSTS admits. The scheme is
  not compared: behind a TLS-terminating proxy the gateway sees ws:// for an https page;
- in CSRF_TRUSTED_ORIGINS (the origins already trusted to post forms with the session), or
- in GATEWAY_WS_ALLOWED_ORIGINS (same syntax as the CORS origins: exact, https://*.example.com, *).

Anything else, including no Origin at all, is refused before the consumer runs (HTTP 403
on the handshake). Browsers always send Origin on websocket handshakes; a command-line
client must send one (e.g. websockets.connect(url, origin="https://gateway.example.org")).
Stricter than Channels' AllowedHostsOriginValidator, which compares host names only
(another port of the same host passes) and lets any origin in with ALLOWED_HOSTS=*.
"""

from __future__ import annotations

import logging

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from routing.cors import Origins, parse_origin

log = logging.getLogger("gateway.websocket")


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _allowed_hosts() -> list[str]:
    hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not hosts:  # as Django's own HttpRequest.get_host()
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    return hosts


def same_origin(origin: tuple[str, str, str], scope) -> bool:
    host = None
    if settings.USE_X_FORWARDED_HOST:
        forwarded = _header(scope, b"x-forwarded-host")
        host = forwarded.split(",")[0].strip() if forwarded else None
    host = host or _header(scope, b"host")
    if not host:
        return False
    domain, port = split_domain_port(host.lower())
    if not domain or not validate_host(domain, _allowed_hosts()):
        return False
    scheme, origin_host, origin_port = origin
    if port == {"http": "80", "https": "443"}.get(scheme):
        port = ""
    return origin_host == domain and origin_port == port


def origin_allowed(scope) -> bool:
    origin = _header(scope, b"origin")
    if origin is None:
        return False
    parsed = parse_origin(origin)
    if parsed is None:  # "null" (sandboxed frames, file: pages) or garbage
        return False
    if same_origin(parsed, scope):
        return True
    return _trusted().match(origin) or _configured().match(origin)


def _trusted() -> Origins:
    # CSRF_TRUSTED_ORIGINS is Django's setting: an entry that is no http(s) origin is skipped.
    # Never "*" from there: Django itself matches it only as a literal.
    return Origins([o for o in settings.CSRF_TRUSTED_ORIGINS if o.strip() != "*"], "CSRF_TRUSTED_ORIGINS", lenient=True)


def _configured() -> Origins:
    return Origins(getattr(settings, "GATEWAY_WS_ALLOWED_ORIGINS", []), "GATEWAY_WS_ALLOWED_ORIGINS")


class OriginValidator:
    """ASGI wrapper of the websocket router: see the module's docstring."""

    def __init__(self, app) -> None:
        self.app = app
        # Misconfigured origin lists fail at startup, not at the first handshake.
        _configured()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "websocket" or origin_allowed(scope):
            await self.app(scope, receive, send)
            return
        log.info("websocket refused: origin %r is not allowed for %s", (_header(scope, b"origin") or "(none)")[:200],
                 scope.get("path", "?")[:200])
        await WebsocketDenier()(scope, receive, send)
