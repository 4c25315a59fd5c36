"""Credentials pasted into prompts or echoed by a model: API keys, tokens, private keys.

    SecretsDetector().find(text)  -> [Finding(start, end, "openai_key"), ...]

A token is a finding when it has a provider's prefix, the provider's length and is not
a placeholder: at least two of lower case / upper case / digits, a Shannon entropy of
at least MIN_ENTROPY bits per character (of the part after the prefix), a run of 16
letters and digits with few dashes (not "sk-learn-model-pipeline-v2"), no character six
times in a row and none of the words placeholders are made of ("sk-xxxxxxxx",
"sk-your-key-here", "...EXAMPLE"). The documentation examples providers publish are
allowlisted by value (`ALLOWLIST`).

  openai_key      sk-..., sk-proj-..., sk-svcacct-..., sk-admin-... (not sk-ant-)
  anthropic_key   sk-ant-api03-..., sk-ant-admin01-...
  aws_access_key  AKIA/ASIA + 16 capitals or digits
  aws_secret_key  40 base64 characters right after an AWS secret key name
                  ("aws_secret_access_key = ...", "SecretAccessKey": "...")
  github_token    ghp_/gho_/ghu_/ghs_/ghr_ + 36+, github_pat_ + 22+
  slack_token     xoxb-/xoxp-/xoxa-/xoxr-/xoxs-..., xapp-...
  google_api_key  AIza + 35
  stripe_key      sk_live_/rk_live_ and the test-mode sk_test_/rk_test_ (still a
                  credential of the account) + 16+
  private_key     a whole "-----BEGIN ... PRIVATE KEY-----" block to its END line, or to
                  the end of its base64 when the END line never comes (pem.py)

`hold` keeps back a trailing word that is, or may become, one of these tokens (at most
`MAX_TOKEN` characters), and everything from an open private-key header while what
follows it can still be its body (at most `pem.MAX_HOLD` characters).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from . import pem
from .base import Finding, merge
from .tails import trailing_start


@dataclass(frozen=True, slots=True)
class _Kind:
    entity: str
    # Regexes that each start with a literal (searched fast), the random part as group 1.
    patterns: tuple[str, ...]
    # Every prefix a token of the kind starts with, for `hold`.
    prefixes: tuple[str, ...]
    gate: str  # a character every such token contains: `gate in text` (memchr) rules the kind out


_B64URL = r"[A-Za-z0-9_\-]"
# Bits per character. Low on purpose: it is there to refuse "sk-xxxxxxxx" and
# "sk-aaaa1111..." (0-1 bits), while the obviously fake but key-shaped strings tests are
# written with ("sk-" + "A1b2" * 12: 2 bits) still look like what they stand for.
MIN_ENTROPY = 2.0
KINDS: tuple[_Kind, ...] = (
    _Kind("anthropic_key", (rf"sk-ant-(?:api03-|admin01-)?({_B64URL}{{20,250}})",), ("sk-ant-",), "-"),
    _Kind(
        "openai_key",
        (rf"sk-(?:proj-|svcacct-|admin-|None-)?(?!ant-)({_B64URL}{{20,250}})",),
        ("sk-", "sk-proj-", "sk-svcacct-", "sk-admin-", "sk-None-"),
        "-",
    ),
    _Kind("aws_access_key", (r"(?:AKIA|ASIA)([A-Z0-9]{16})",), ("AKIA", "ASIA"), "A"),
    _Kind(
        "github_token",
        (r"gh[pousr]_([A-Za-z0-9]{30,251})", r"github_pat_([A-Za-z0-9_]{22,244})"),
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        "_",
    ),
    _Kind(
        "slack_token",
        (r"xox[abprs]-([A-Za-z0-9\-]{20,250})", r"xapp-([A-Za-z0-9\-]{20,250})"),
        ("xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xapp-"),
        "-",
    ),
    _Kind("google_api_key", (rf"AIza({_B64URL}{{30,45}})",), ("AIza",), "A"),
    _Kind(
        "stripe_key",
        (r"sk_(?:live|test)_([A-Za-z0-9]{16,247})", r"rk_(?:live|test)_([A-Za-z0-9]{16,247})"),
        ("sk_live_", "sk_test_", "rk_live_", "rk_test_"),
        "_",
    ),
)
ENTITIES: tuple[str, ...] = tuple(k.entity for k in KINDS) + ("aws_secret_key", "private_key")
MAX_TOKEN = 16 + 251  # the longest prefix and body

_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
# No token character may follow (a token is a whole word); the one before is checked in code.
_COMPILED = {k: tuple(re.compile(p + r"(?![A-Za-z0-9_\-])") for p in k.patterns) for k in KINDS}

# Published documentation examples (AWS, Stripe): shaped like keys, known to everyone.
ALLOWLIST = frozenset({
    "AKIAIOSFODNN7EXAMPLE", "AKIAI44QH8DHBEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
})  # fmt: skip
_PLACEHOLDER_WORDS = re.compile(
    r"example|xxxx|your|here|placeholder|dummy|sample|redacted|insert|replace|changeme", re.IGNORECASE
)
_REPEAT = re.compile(r"(.)\1{5}")
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]{16}")

# The name of the value, then the value: bounded, so the search can start just before
# each "secret" in the text and stop AWS_WINDOW characters later.
_AWS_NAME = r"(?i:aws_?secret_?(?:access_?)?key|secret_?access_?key)[\"']?[ \t]{0,3}[:=][ \t]{0,3}[\"']?"
_AWS_SECRET = re.compile(_AWS_NAME + r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")
_AWS_SECRET_TAIL = re.compile(_AWS_NAME + r"([A-Za-z0-9/+]{0,40})\Z")
AWS_WINDOW = 96  # from 6 before "ecret" past the longest name, separators and value


def entropy(s: str) -> float:
    """Shannon entropy of `s`, bits per character."""
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values()) if n else 0.0


def looks_random(body: str, min_entropy: float = MIN_ENTROPY) -> bool:
    """Not a placeholder: mixed classes, some entropy, one long run of letters and
    digits, none of the words placeholders are made of."""
    classes = any(c.islower() for c in body) + any(c.isupper() for c in body) + any(c.isdigit() for c in body)
    if classes < 2 or entropy(body) < min_entropy or _PLACEHOLDER_WORDS.search(body):
        return False
    if _REPEAT.search(body) or not _ALNUM_RUN.search(body):
        return False  # "aaaaaa"; "sk-learn-model-pipeline-v2": words, not one random run
    return body.count("-") + body.count("_") <= len(body) // 10 + 2


class SecretsDetector:
    """Finds credentials (ENTITIES, all of them unless `entities` chooses) in text."""

    def __init__(self, entities: Iterable[str] | None = None) -> None:
        chosen = ENTITIES if entities is None else tuple(entities)
        unknown = [e for e in chosen if e not in ENTITIES]
        if unknown:
            raise ValueError(f"unknown secret entity {', '.join(map(repr, unknown))}; known: {', '.join(ENTITIES)}")
        self.entities = frozenset(chosen)
        self._kinds = tuple(k for k in KINDS if k.entity in self.entities)
        by_first: dict[str, list[str]] = {}
        for k in self._kinds:
            for p in k.prefixes:
                by_first.setdefault(p[0], []).append(p)
        self._prefixes_by_first = {c: tuple(ps) for c, ps in by_first.items()}

    def find(self, text: str) -> list[Finding]:
        """Sorted, non-overlapping findings (see base.Detector)."""
        found: list[Finding] = []
        for kind in self._kinds:
            if kind.gate not in text:
                continue
            for pattern in _COMPILED[kind]:
                for m in pattern.finditer(text):
                    s = m.start()
                    if s and text[s - 1] in _TOKEN_CHARS:
                        continue  # inside a word: "task-force-..."
                    if m.group() not in ALLOWLIST and looks_random(m.group(1)):
                        found.append(Finding(s, m.end(), kind.entity))
        if "aws_secret_key" in self.entities:
            found += _aws_secrets(text)
        if "private_key" in self.entities and "-----BEGIN " in text:
            found += pem.find_private_keys(text)
        return merge(found) if found else found

    def hold(self, text: str) -> int:
        """How many characters at the end of `text` could still become or extend a
        finding: a trailing token (at most MAX_TOKEN), an AWS secret's value, or an open
        private-key block (at most pem.MAX_HOLD). Looks at no more than that."""
        held = self._token_hold(text)
        if "aws_secret_key" in self.entities:
            tail = text[-AWS_WINDOW:]
            m = ("ecret" in tail or "ECRET" in tail) and _AWS_SECRET_TAIL.search(tail)
            if m:
                held = max(held, len(tail) - m.start(1))
        if "private_key" in self.entities:
            held = max(held, pem.hold(text))
        return held

    def _token_hold(self, text: str) -> int:
        """The trailing word, if it is the start of a token prefix ("sk", "ghp") or starts
        with a prefix and is not yet too long to be a token."""
        n = len(text)
        i = trailing_start(text, _TOKEN_CHARS, MAX_TOKEN + 1)
        if i == n or n - i > MAX_TOKEN:
            return 0  # no trailing word, or one too long to be a token
        word = text[i:]
        for p in self._prefixes_by_first.get(word[0], ()):
            if p.startswith(word) or word.startswith(p):
                return n - i
        return 0

    def __repr__(self) -> str:
        return f"SecretsDetector({sorted(self.entities)!r})"


def _aws_secrets(text: str) -> list[Finding]:
    """Values after an AWS secret key's name, looked for at each "secret" that goes on
    like a name ("secret_", "SecretAccess", "SECRET_KEY"), where the name can start:
    "aws_secret", "awssecret", "secret_access"."""
    spans = set()
    for word in ("ecret", "ECRET"):
        i = text.find(word)
        while i != -1:
            if text[i + 5 : i + 6] in ("_", "A", "a", "K", "k"):
                endpos = min(len(text), i + AWS_WINDOW)
                for start in (i - 5, i - 4, i - 1):
                    m = _AWS_SECRET.match(text, start, endpos) if start >= 0 else None
                    if m and m.group(1) not in ALLOWLIST and looks_random(m.group(1)):
                        spans.add((m.start(1), m.end(1)))
            i = text.find(word, i + 1)
    return [Finding(s, e, "aws_secret_key") for s, e in sorted(spans)]
