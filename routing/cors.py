"""Browser transport for /v1: CORS and the security headers of API responses.

An ASGI wrapper around routing.api's app (wired in gateway_project.asgi), outside
authentication, so a browser's preflight is answered before any key is looked at.

- Every /v1 response gets `X-Content-Type-Options: nosniff` (a JSON API needs no CSP:
  nothing it returns is rendered as a page).
- CORS is off unless GATEWAY_CORS_ALLOWED_ORIGINS is set: then no CORS header is sent
  and a cross-origin preflight gets the API's 405 (no Access-Control-Allow-*), which the
  browser treats as a refusal.
- On: a preflight (OPTIONS with Access-Control-Request-Method) from an allowed origin is
  answered 204 with Access-Control-Allow-{Origin,Methods,Headers}, Max-Age and Vary;
  from any other origin 403 without allow headers. Every actual response to an allowed
  origin (errors and SSE streams included) carries Access-Control-Allow-Origin and
  Access-Control-Expose-Headers (the response's header names that match
  GATEWAY_CORS_EXPOSE_HEADERS, so patterns like x-gateway-* work), and Vary: Origin.
- Credentials (cookies) are never needed by /v1 (keys travel in headers); when
  GATEWAY_CORS_ALLOW_CREDENTIALS is on, `*` is refused at startup.

docs/security/transport.md describes the settings; tests/test_cors*.py the behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

NOSNIFF = (b"x-content-type-options", b"nosniff")
METHODS = b"GET, POST"
PREFLIGHT_VARY = b"origin, access-control-request-method, access-control-request-headers"
_REFUSED_BODY = (
    b'{"error":{"message":"This origin may not call the API from a browser '
    b'(GATEWAY_CORS_ALLOWED_ORIGINS).","type":"invalid_request_error","param":null,'
    b'"code":"cors_origin_not_allowed"}}'
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_MAX_REMEMBERED = 4096  # origin decisions kept (bounded: clients choose the Origin header)


class Origins:
    """A list of allowed origins: exact (`https://app.example.com[:port]`), a wildcard
    first label (`https://*.example.com`: any subdomain, not the domain itself), or `*`.
    Also used for the websocket origins (streaming.origin)."""

    def __init__(self, values: list[str], setting: str, *, lenient: bool = False) -> None:
        """`lenient`: skip what is not an http(s) origin instead of refusing it (for a
        list that is another component's setting, like CSRF_TRUSTED_ORIGINS)."""
        self.any = False
        exact, wildcards = set(), []
        for value in values:
            value = value.strip()
            if not value:
                continue
            if value == "*":
                self.any = True
                continue
            parsed = parse_origin(value.rstrip("/"))
            if parsed is None or parsed[0] not in ("http", "https") or not parsed[1]:
                if lenient:
                    continue
                raise ImproperlyConfigured(f"{setting}: {value!r} is not an origin like https://app.example.com[:port]")
            scheme, host, port = parsed
            if host.startswith("*."):
                if "*" in host[2:] or "." not in host[2:]:
                    raise ImproperlyConfigured(
                        f"{setting}: {value!r}: a wildcard must be the first label of a domain with at least "
                        "two labels (https://*.example.com)"
                    )
                wildcards.append((scheme, host[1:], port))
            elif "*" in host:
                raise ImproperlyConfigured(f"{setting}: {value!r}: only a leading *. is allowed")
            else:
                exact.add((scheme, host, port))
        self.exact = frozenset(exact)
        self.wildcards = tuple(wildcards)

    def __bool__(self) -> bool:
        return self.any or bool(self.exact) or bool(self.wildcards)

    def match(self, origin: str) -> bool:
        if self.any:
            return True
        parsed = parse_origin(origin)
        if parsed is None:
            return False
        if parsed in self.exact:
            return True
        scheme, host, port = parsed
        return any(
            scheme == w_scheme and port == w_port and host.endswith(suffix) and len(host) > len(suffix)
            for w_scheme, suffix, w_port in self.wildcards
        )


@dataclass(frozen=True)
class Policy:
    origins: Origins
    headers: frozenset[str]                     # allowed request headers (lowercase)
    header_prefixes: tuple[str, ...]            # from x-stainless-*
    any_header: bool
    expose: frozenset[str]
    expose_prefixes: tuple[str, ...]
    max_age: bytes
    credentials: bool

    @property
    def any_origin(self) -> bool:
        return self.origins.any

    def allow_origin(self, origin: str) -> bool:
        return self.origins.match(origin)

    def header_allowed(self, name: str) -> bool:
        return self.any_header or name in self.headers or name.startswith(self.header_prefixes)

    def exposed(self, name: str) -> bool:
        return name in self.expose or name.startswith(self.expose_prefixes)


def parse_origin(origin: str) -> tuple[str, str, str] | None:
    """(scheme, host, port without the scheme's default) of a serialised origin, or None."""
    scheme, sep, rest = origin.strip().lower().partition("://")
    if not sep or not scheme or not rest or any(c in rest for c in "/?#@ "):
        return None
    host, port = rest, ""
    if rest.startswith("["):  # IPv6 literal
        end = rest.find("]")
        if end < 0:
            return None
        host, tail = rest[: end + 1], rest[end + 1:]
        if tail and not tail.startswith(":"):
            return None
        port = tail[1:]
    elif ":" in rest:
        host, _, port = rest.rpartition(":")
    if port and not port.isdigit():
        return None
    if port == _DEFAULT_PORTS.get(scheme):
        port = ""
    return scheme, host, port


def _names(values: list[str], setting: str) -> tuple[frozenset[str], tuple[str, ...], bool]:
    exact, prefixes, anything = set(), [], False
    for value in values:
        name = value.strip().lower()
        if not name:
            continue
        if name == "*":
            anything = True
        elif name.endswith("*") and "*" not in name[:-1]:
            prefixes.append(name[:-1])
        elif "*" in name or any(c in name for c in " ,:"):
            raise ImproperlyConfigured(f"{setting}: {value!r} is not a header name (a trailing * is allowed)")
        else:
            exact.add(name)
    return frozenset(exact), tuple(prefixes), anything


def load_policy() -> Policy | None:
    """The CORS policy from the settings; None when CORS is off. Misconfiguration is an
    ImproperlyConfigured naming the setting (raised at startup: asgi builds the wrapper)."""
    origins = Origins(getattr(settings, "GATEWAY_CORS_ALLOWED_ORIGINS", []), "GATEWAY_CORS_ALLOWED_ORIGINS")
    if not origins:
        return None
    credentials = bool(getattr(settings, "GATEWAY_CORS_ALLOW_CREDENTIALS", False))
    if origins.any and credentials:
        raise ImproperlyConfigured(
            "GATEWAY_CORS_ALLOWED_ORIGINS=* cannot be combined with GATEWAY_CORS_ALLOW_CREDENTIALS: list the origins"
        )
    headers, header_prefixes, any_header = _names(settings.GATEWAY_CORS_ALLOWED_HEADERS, "GATEWAY_CORS_ALLOWED_HEADERS")
    expose, expose_prefixes, any_expose = _names(settings.GATEWAY_CORS_EXPOSE_HEADERS, "GATEWAY_CORS_EXPOSE_HEADERS")
    if any_expose:
        expose_prefixes = ("",)  # every header of the response, by name
    max_age = int(settings.GATEWAY_CORS_MAX_AGE)
    if not 0 <= max_age <= 86400:
        raise ImproperlyConfigured("GATEWAY_CORS_MAX_AGE must be between 0 and 86400 seconds")
    return Policy(
        origins=origins, headers=headers, header_prefixes=header_prefixes, any_header=any_header,
        expose=expose, expose_prefixes=expose_prefixes, max_age=str(max_age).encode(), credentials=credentials,
    )


class TransportHeaders:
    """The ASGI wrapper: `TransportHeaders(app)`; see the module's docstring."""

    def __init__(self, app) -> None:
        self.app = app
        self.policy = load_policy()
        self._decisions: dict[bytes, bytes | None] = {}  # Origin -> Access-Control-Allow-Origin value
        setting_changed.connect(self._settings_changed)  # tests' override_settings (weakly: dies with self)

    def _settings_changed(self, setting: str, **kwargs) -> None:
        if setting.startswith("GATEWAY_CORS_"):
            self._decisions.clear()
            try:
                self.policy = load_policy()
            except ImproperlyConfigured:  # half-way through an override of several settings
                self.policy = None

    async def __call__(self, scope, receive, send) -> None:
        policy = self.policy
        if policy is None or scope["type"] != "http":
            await self.app(scope, receive, _nosniff(send))
            return
        origin = preflight = None
        for key, value in scope["headers"]:
            if key == b"origin":
                origin = value
            elif key == b"access-control-request-method":
                preflight = value
        if origin is None:  # not a cross-origin browser request
            await self.app(scope, receive, _nosniff(send))
            return
        allowed = self._allowed(policy, origin)
        if preflight is not None and scope["method"] == "OPTIONS":
            await self._preflight(policy, scope, send, allowed)
            return
        await self.app(scope, receive, _cors(send, policy, allowed))

    def _allowed(self, policy: Policy, origin: bytes) -> bytes | None:
        try:
            return self._decisions[origin]
        except KeyError:
            pass
        text = origin.decode("latin-1")
        if not policy.allow_origin(text):
            decision = None
        elif policy.any_origin and not policy.credentials:
            decision = b"*"
        else:
            decision = origin
        if len(self._decisions) >= _MAX_REMEMBERED:
            self._decisions.clear()
        self._decisions[origin] = decision
        return decision

    async def _preflight(self, policy: Policy, scope, send, allowed: bytes | None) -> None:
        if allowed is None:
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(_REFUSED_BODY)).encode()),
                       (b"vary", PREFLIGHT_VARY), NOSNIFF]
            await send({"type": "http.response.start", "status": 403, "headers": headers})
            await send({"type": "http.response.body", "body": _REFUSED_BODY})
            return
        requested = b""
        for key, value in scope["headers"]:
            if key == b"access-control-request-headers":
                requested = value
                break
        names = [n.strip() for n in requested.decode("latin-1").lower().split(",") if n.strip()]
        granted = ", ".join(n for n in names if policy.header_allowed(n))  # the browser refuses the rest
        headers = [
            (b"access-control-allow-origin", allowed),
            (b"access-control-allow-methods", METHODS),
            (b"access-control-max-age", policy.max_age),
            (b"vary", PREFLIGHT_VARY),
            (b"content-length", b"0"),
            NOSNIFF,
        ]
        if granted:
            headers.append((b"access-control-allow-headers", granted.encode("latin-1")))
        if policy.credentials:
            headers.append((b"access-control-allow-credentials", b"true"))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


# The wrappers below are plain functions that return the inner send's own awaitable:
# no coroutine frame of their own per message (a stream sends one per chunk).
def _nosniff(send):
    def sender(message):
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), NOSNIFF]
        return send(message)

    return sender


def _cors(send, policy: Policy, allowed: bytes | None):
    def sender(message):
        if message["type"] == "http.response.start":
            message["headers"] = _with_cors(list(message.get("headers", ())), policy, allowed)
        return send(message)

    return sender


def _with_cors(headers: list, policy: Policy, allowed: bytes | None) -> list:
    vary_at, exposed = None, []
    for i, (key, _) in enumerate(headers):
        name = key.decode("latin-1").lower()
        if name == "vary":
            vary_at = i
        elif allowed is not None and policy.exposed(name):
            exposed.append(name)
    if allowed != b"*":  # the answer depends on the Origin: caches must key on it
        if vary_at is None:
            headers.append((b"vary", b"origin"))
        else:
            headers[vary_at] = (b"vary", headers[vary_at][1] + b", origin")
    headers.append(NOSNIFF)
    if allowed is None:
        return headers
    headers.append((b"access-control-allow-origin", allowed))
    if exposed:
        headers.append((b"access-control-expose-headers", ", ".join(exposed).encode("latin-1")))
    if policy.credentials:
        headers.append((b"access-control-allow-credentials", b"true"))
    return headers
