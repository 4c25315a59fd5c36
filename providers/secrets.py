"""Every provider secret this process holds, and scrubbing them by value from any text.

A key-shaped regex cannot know that `hunter2-provider-key` is a secret; the gateway
can, because it holds it. Each `ProviderInfo` (providers/catalog.py) registers its
resolved API key here as it is built, so this set is every provider key of every
snapshot this process has loaded. `scrub_secrets` replaces each of them, and the
encodings an upstream is likely to echo it in (URL-encoded, base64, JSON-escaped, a
truncated head), in any text: upstream error messages (providers/adapters/base.py) and
every log record (`ScrubSecrets`, installed on the handlers in settings.LOGGING).

No Django imports: settings.LOGGING loads this module before the apps are ready.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Iterable

REDACTED = "[redacted]"
# Shorter values are placeholders ("none", "ollama"), not secrets; scrubbing them would
# mangle ordinary words in every message.
MIN_SECRET_CHARS = 8
# An upstream that echoes a truncated key shows its head: this much of it is enough to
# be sure, and is scrubbed together with whatever follows it in the same token.
_HEAD_FRACTION = 2

_known: set[str] = set()
_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()


def variants(secret: str) -> list[str]:
    """The forms in which `secret` may appear in an upstream's text."""
    raw = secret.encode()
    forms = {
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }
    return sorted(forms, key=len, reverse=True)


def _compile(secrets: Iterable[str]) -> re.Pattern[str] | None:
    secrets = sorted(set(secrets), key=len, reverse=True)
    if not secrets:
        return None
    whole = [re.escape(form) for secret in secrets for form in variants(secret)]
    # Whole forms first: at a position where the full key starts, it wins over its head.
    heads = [
        re.escape(secret[: max(MIN_SECRET_CHARS, len(secret) // _HEAD_FRACTION)]) + r"[^\s\"'<>,;)\]}]*"
        for secret in secrets
    ]
    return re.compile("|".join(whole + heads))


def parts(secret: str) -> list[str]:
    """The pieces of a composite credential an upstream may echo on their own: a
    service-account JSON's private key (and its PEM body lines), a Bedrock
    ACCESS_KEY_ID:SECRET[:SESSION_TOKEN]'s parts."""
    found: list[str] = []
    text = secret.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for name, value in data.items():
                if isinstance(value, str) and _SECRET_JSON_KEY.search(str(name)):
                    found.append(value)
                    found.extend(line for line in value.splitlines() if line and not line.startswith("-----"))
    elif ":" in text and not text.startswith(("env:", "file:")):
        found.extend(text.split(":"))
    return [p for p in found if len(p) >= MIN_SECRET_CHARS and p != secret]


_SECRET_JSON_KEY = re.compile(r"private_key$|secret|token|password", re.IGNORECASE)


def remember(secret: str | None) -> None:
    """Register a secret this process holds, and its `parts` (idempotent, thread-safe)."""
    global _pattern
    if not secret or len(secret) < MIN_SECRET_CHARS or secret in _known:
        return
    with _lock:
        if secret in _known:
            return
        _known.update([secret, *parts(secret)])
        _pattern = _compile(_known)


def forget_all_for_tests() -> None:
    """The named reset: forget every registered secret."""
    global _pattern
    with _lock:
        _known.clear()
        _pattern = None


def scrub_secrets(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` without any registered secret or any of `secrets` (which are registered
    too), in any of their `variants`."""
    for secret in secrets:
        remember(secret)
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(REDACTED, text)


def install_on(*logger_names: str) -> None:
    """Add ScrubSecrets to every handler of these loggers (those configured outside
    settings.LOGGING: Celery's worker logging, uvicorn's own loggers). Idempotent."""
    for name in logger_names:
        for handler in logging.getLogger(name or None).handlers:
            if not any(isinstance(f, ScrubSecrets) for f in handler.filters):
                handler.addFilter(ScrubSecrets())


class ScrubSecrets(logging.Filter):
    """A logging filter that removes every registered secret from a record: its
    message (arguments interpolated), its traceback and its stack text. Installed on
    the handlers in settings.LOGGING, so it sees the records of every logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        pattern = _pattern
        if pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string: the handler reports it
            return True
        clean = pattern.sub(REDACTED, message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = pattern.sub(REDACTED, record.exc_text)
        if record.stack_info:
            record.stack_info = pattern.sub(REDACTED, record.stack_info)
        return True


# --- masking: what may be shown of a secret-bearing field ------------------------------
#
# One vocabulary for every place that shows configuration: the YAML export
# (routing/config), the admin, the management API and the audit trail. A secret is
# shown as MASK; a reference (env:NAME, file:/path, vault:path#field) is not a secret
# and is shown as it is; "" stays "".

MASK = "[masked]"

# Header names whose values are secrets (case-insensitive): exported, audited and shown
# masked. Other custom headers (X-Org, anthropic-beta) are configuration.
SECRET_HEADER = re.compile(r"authorization|cookie|api[-_]?key|token|secret|password|passwd|auth|session|"
                           r"signature|credential|private|(^|[-_])key($|[-_])", re.IGNORECASE)

# Secret-bearing fields by model (app_label.ModelName, lower case, as Model._meta.label_lower):
# how each is masked. `mask_field` / `mask_values` apply it.
SECRET_FIELDS: dict[str, dict[str, str]] = {
    "providers.provider": {"api_key": "secret", "options": "options"},
    # A webhook URL's path and query are its credential (Slack, Teams, Discord hooks).
    "billing.budget": {"webhook_url": "url"},
}

_REFERENCE = re.compile(r"^(env|file|vault|[a-z][a-z0-9_-]*):")


def is_masked(value: object) -> bool:
    return value == MASK


def mask(value: str | None, *, reference_schemes: Iterable[str] | None = None) -> str:
    """A secret as it may be shown: "" for none, the reference itself for a reference,
    MASK otherwise. `reference_schemes`: the schemes that are references (default: env,
    file, vault -- the caller with Django settings can pass secret_refs.schemes())."""
    if not value:
        return ""
    schemes = set(reference_schemes) if reference_schemes is not None else _reference_schemes()
    match = _REFERENCE.match(value)
    if match and match.group(1) in schemes:
        return value
    return MASK


def _reference_schemes() -> set[str]:
    try:  # with Django configured: also the registered backends' schemes
        from .secret_refs import schemes

        return schemes()
    except Exception:  # noqa: BLE001 - settings not ready: the built-in ones
        return {"env", "file", "vault"}


def is_secret_header(name: str) -> bool:
    return bool(SECRET_HEADER.search(str(name)))


def mask_headers(headers: object, **kw) -> object:
    """Custom headers with the values of secret-named ones masked (references kept)."""
    if not isinstance(headers, dict):
        return headers
    return {name: mask(value, **kw) if is_secret_header(name) and isinstance(value, str) else value
            for name, value in headers.items()}


def mask_options(options: object, **kw) -> object:
    """A provider's options with its secret headers masked."""
    if not isinstance(options, dict) or "headers" not in options:
        return options
    return {**options, "headers": mask_headers(options["headers"], **kw)}


def mask_url(url: str | None) -> str:
    """A URL whose path/query may be a credential: scheme and host kept, the rest
    masked; userinfo dropped."""
    if not url:
        return ""
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or ""
    if parsed.port:
        host = f"{host}:{parsed.port}"
    if not parsed.scheme or not host:
        return MASK
    rest = "/" + MASK if (parsed.path not in ("", "/") or parsed.query or parsed.fragment) else ""
    return f"{parsed.scheme}://{host}{rest}"


_MASKERS = {"secret": mask, "options": mask_options, "url": lambda v, **kw: mask_url(v)}


def secret_fields(model: object) -> dict[str, str]:
    """{field name: how it is masked} for a model (class, instance or "app.model" label)."""
    label = model if isinstance(model, str) else getattr(getattr(model, "_meta", None), "label_lower", "")
    return SECRET_FIELDS.get(str(label).lower(), {})


def mask_field(model: object, field: str, value: object, **kw) -> object:
    """`value` of `model`'s `field` as it may be shown (unchanged for a field that
    holds no secret). The one call for an audit entry's before/after values."""
    how = secret_fields(model).get(field)
    if how is None:
        return value
    return _MASKERS[how](value, **kw)


def mask_values(model: object, values: dict, **kw) -> dict:
    """A dict of field values (e.g. model_to_dict, an audit snapshot) with every secret
    field masked."""
    return {name: mask_field(model, name, value, **kw) for name, value in values.items()}
