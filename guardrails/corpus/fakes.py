"""Fake credentials made at run time, so no key-shaped literal sits in the repository.

`fake_secret("openai_key", 3)` is the same string on every run (seeded), shaped like the
real thing (prefix, length, alphabet) and random enough to pass the detector's
randomness rule, as a real key would. The corpus writes `{{openai_key}}` (or
`{{openai_key#2}}` for a second one in the same line) where a key goes; `expand`
replaces the placeholders.
"""

from __future__ import annotations

import random
import re
import string

_UPPER, _LOWER, _DIGITS = string.ascii_uppercase, string.ascii_lowercase, string.digits
_ALNUM = _UPPER + _LOWER + _DIGITS
_B64URL = _ALNUM + "-_"

# entity -> (prefix choices, body alphabet, body length, suffix)
_SHAPES: dict[str, tuple[tuple[str, ...], str, int, str]] = {
    "openai_key": (("sk-", "sk-proj-", "sk-svcacct-"), _ALNUM, 48, ""),
    "anthropic_key": (("sk-ant-api03-",), _B64URL, 93, "AA"),
    "aws_access_key": (("AKIA", "ASIA"), _UPPER + _DIGITS, 16, ""),
    "aws_secret_key": (("",), _ALNUM + "/+", 40, ""),
    "github_token": (("ghp_", "gho_", "ghs_", "github_pat_"), _ALNUM, 36, ""),
    "slack_token": (("xoxb-", "xoxp-"), _DIGITS, 12, ""),
    "google_api_key": (("AIza",), _B64URL, 35, ""),
    "stripe_key": (("sk_live_", "rk_live_", "sk_test_"), _ALNUM, 24, ""),
}
_PLACEHOLDER = re.compile(r"\{\{([a-z_0-9]+)(?:#(\d+))?\}\}")


def fake_secret(entity: str, seed: int = 0) -> str:
    """A deterministic fake credential of kind `entity` (see _SHAPES, "private_key" or
    "private_key_escaped")."""
    if entity == "private_key_escaped":  # as a JSON string holds it (a service-account file)
        return fake_secret("private_key", seed).replace("\n", "\\n")
    rng = random.Random(f"{entity}:{seed}")
    if entity == "private_key":
        return _fake_pem(rng)
    prefixes, alphabet, length, suffix = _SHAPES[entity]
    prefix = rng.choice(prefixes)
    if entity == "slack_token":
        parts = ["".join(rng.choices(_DIGITS, k=n)) for n in (11, 13)]
        return prefix + "-".join(parts) + "-" + _random_body(rng, _ALNUM, 24)
    if prefix == "github_pat_":
        return prefix + _random_body(rng, _ALNUM, 22) + "_" + _random_body(rng, _ALNUM, 59)
    return prefix + _random_body(rng, alphabet, length) + suffix


def _random_body(rng: random.Random, alphabet: str, length: int) -> str:
    # Imports here: the detector's own rule, so a fake that a real key would rarely look
    # like (a word, "123456") is drawn again, as the odds of a real key having one are tiny.
    from guardrails.detectors.secrets import looks_random

    while True:
        body = "".join(rng.choices(alphabet, k=length))
        if looks_random(body, 3.0):
            return body


def _fake_pem(rng: random.Random) -> str:
    label = rng.choice(("", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "))
    body = _random_body(rng, _ALNUM + "+/", 64 * rng.randint(4, 12) + rng.randint(4, 60))
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}PRIVATE " + "KEY-----\n" + "\n".join(lines) + f"\n-----END {label}PRIVATE " + "KEY-----"


def expand(text: str, line_seed: int) -> str:
    """`text` with each {{entity}} / {{entity#n}} replaced by its fake credential."""

    def one(m: re.Match[str]) -> str:
        return fake_secret(m.group(1), line_seed * 10 + int(m.group(2) or 0))

    return _PLACEHOLDER.sub(one, text)
