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


def remember(secret: str | None) -> None:
    """Register a secret this process holds (idempotent, thread-safe)."""
    global _pattern
    if not secret or len(secret) < MIN_SECRET_CHARS or secret in _known:
        return
    with _lock:
        if secret in _known:
            return
        _known.add(secret)
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
