"""Running guardrails over text: decisions, redaction with typed placeholders, restoring
originals in answers, and the incremental (stream) form of the output check.

Pure of transports: the request path (routing.stages.guard) hands in the texts of a
prompt or an answer and applies what comes back. Nothing here logs or returns the
matched text; a Decision carries only counts by entity type.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .detectors import Finding
from .detectors.base import merge
from .policy import GuardrailInfo

log = logging.getLogger("gateway.guardrails")

REDACTED, BLOCKED, FLAGGED = "redacted", "blocked", "flagged"
ERROR_BLOCKED, ERROR_ALLOWED = "error_blocked", "error_allowed"
_OUTCOME = {"redact": REDACTED, "block": BLOCKED, "flag": FLAGGED}
PLACEHOLDER = re.compile(r"\[([A-Z][A-Z0-9_]*)_(\d{1,6})\]")
_PARTIAL_PLACEHOLDER = re.compile(r"\[(?:[A-Z][A-Z0-9_]{0,40}(?:_\d{0,6})?)?$")
CONTEXT_CHARS = 64  # raw text before a stream's unsent tail that detectors see as context


class CheckFailed(Exception):
    """A guardrail could not check (its detector raised, timed out, or is misconfigured)."""


@dataclass(slots=True)
class Decision:
    """What one guardrail did on one side of one request (no matched text)."""

    guardrail: GuardrailInfo
    stage: str  # input | output
    outcome: str  # redacted | blocked | flagged | error_blocked | error_allowed
    entities: Counter = field(default_factory=Counter)

    @property
    def enforced_block(self) -> bool:
        return self.outcome in (BLOCKED, ERROR_BLOCKED)


class Vault:
    """The placeholders of one request: the same original always gets the same
    placeholder ([EMAIL_1], [EMAIL_2], [PHONE_1] ...); numbers already present in the
    request's own text are skipped, so a client's literal "[EMAIL_1]" is never taken
    for ours. Only placeholders of restoring guardrails are put back."""

    __slots__ = ("_by_original", "_originals", "_next", "_taken")

    def __init__(self, texts: Sequence[str] = ()) -> None:
        self._by_original: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}  # restorable placeholder -> original
        self._next: Counter = Counter()
        self._taken = {m.group(0) for t in texts if "[" in t for m in PLACEHOLDER.finditer(t)}

    def placeholder(self, entity: str, original: str, restorable: bool) -> str:
        tag = re.sub(r"[^A-Z0-9_]", "_", entity.upper()) or "REDACTED"
        key = (tag, original)
        found = self._by_original.get(key)
        if found is None:
            while True:
                self._next[tag] += 1
                found = f"[{tag}_{self._next[tag]}]"
                if found not in self._taken:
                    break
            self._by_original[key] = found
        if restorable:
            self._originals[found] = original
        return found

    @property
    def restores(self) -> bool:
        return bool(self._originals)

    def restore(self, text: str) -> str:
        if not self._originals or "[" not in text:
            return text
        return PLACEHOLDER.sub(lambda m: self._originals.get(m.group(0), m.group(0)), text)

    def restore_hold(self, text: str) -> int:
        """A tail that could still become one of our placeholders ("[EMA", "[EMAIL_1")."""
        if not self._originals:
            return 0
        at = text.rfind("[", max(0, len(text) - 50))
        return len(text) - at if at >= 0 and _PARTIAL_PLACEHOLDER.match(text, at) else 0


def _outcome_of(g: GuardrailInfo) -> str:
    return _OUTCOME[g.action]


def _failed(g: GuardrailInfo, stage: str, exc: BaseException) -> Decision:
    outcome = ERROR_BLOCKED if g.fail_closed else ERROR_ALLOWED
    log.warning("guardrail %s failed on %s (%s): %s", g.name, stage, type(exc).__name__,
                "request blocked (fails closed)" if g.fail_closed else "request allowed (fails open)")
    return Decision(g, stage, outcome)


def _sync_findings(g: GuardrailInfo, texts: Sequence[str]) -> list[list[Finding]]:
    """Per text: the guardrail's findings (span kinds), or a whole-text verdict on the
    texts joined, reported against the first text (no span to replace)."""
    if g.check is None:
        raise CheckFailed(g.broken)
    if g.spans:
        return [g.check.find(t) if t else [] for t in texts]
    found = g.check.verdict(texts)
    return [found] + [[] for _ in texts[1:]]


@dataclass(slots=True)
class InputResult:
    texts: list[str]  # the texts to send (redacted where a guardrail redacts)
    decisions: list[Decision]
    changed: bool = False

    @property
    def blocked_by(self) -> Decision | None:
        return next((d for d in self.decisions if d.enforced_block), None)


async def check_input(guardrails: Sequence[GuardrailInfo], texts: list[str], vault: Vault, ctx: Any = None
                      ) -> InputResult:
    """Run the input guardrails over a prompt's texts (in order; async checks — the
    classifier — concurrently, and only when no fast check already blocked)."""
    decisions: list[Decision] = []
    spans: list[list[tuple[Finding, GuardrailInfo]]] = [[] for _ in texts]
    waiting: list[GuardrailInfo] = []
    for g in guardrails:
        if g.is_async:
            waiting.append(g)
            continue
        try:
            per_text = _sync_findings(g, texts)
        except Exception as exc:  # noqa: BLE001 - a failing check follows its on_error
            decisions.append(_failed(g, "input", exc))
            continue
        _decide(g, "input", per_text, decisions, spans)
    if waiting and not any(d.enforced_block for d in decisions):
        joined = "\n".join(texts)
        results = await asyncio.gather(*(_averdict(g, joined, ctx) for g in waiting), return_exceptions=True)
        for g, result in zip(waiting, results):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                decisions.append(_failed(g, "input", result))
            else:
                _decide(g, "input", [result] + [[] for _ in texts[1:]], decisions, spans)
    out, changed = list(texts), False
    if not any(d.enforced_block for d in decisions):
        for i, found in enumerate(spans):
            if found:
                out[i] = _redact(texts[i], found, vault)
                changed = True
    return InputResult(out, decisions, changed)


async def _averdict(g: GuardrailInfo, text: str, ctx: Any) -> list[Finding]:
    if g.check is None:
        raise CheckFailed(g.broken)
    return await g.check.averdict(text, ctx)


def _decide(g: GuardrailInfo, stage: str, per_text: list[list[Finding]], decisions: list[Decision],
            spans: list[list[tuple[Finding, GuardrailInfo]]]) -> None:
    counts = Counter(f.entity for found in per_text for f in found)
    if not counts:
        return
    decisions.append(Decision(g, stage, _outcome_of(g), counts))
    if g.action == "redact":
        for i, found in enumerate(per_text):
            spans[i].extend((f, g) for f in found)


def _redact(text: str, found: list[tuple[Finding, GuardrailInfo]], vault: Vault) -> str:
    by_finding = {f: g for f, g in found}
    parts, at = [], 0
    for f in merge([f for f, _ in found]):
        parts.append(text[at:f.start])
        parts.append(vault.placeholder(f.entity, text[f.start:f.end], by_finding[f].restore))
        at = f.end
    parts.append(text[at:])
    return "".join(parts)


@dataclass(slots=True)
class OutputResult:
    text: str
    decisions: list[Decision]

    @property
    def blocked_by(self) -> Decision | None:
        return next((d for d in self.decisions if d.enforced_block), None)


def check_output(guardrails: Sequence[GuardrailInfo], text: str, vault: Vault) -> OutputResult:
    """A complete answer's text: findings redacted (never restorable: the provider
    wrote them) and the request's restorable placeholders put back."""
    decisions: list[Decision] = []
    spans: list[list[tuple[Finding, GuardrailInfo]]] = [[]]
    for g in guardrails:
        try:
            per_text = _sync_findings(g, [text])
        except Exception as exc:  # noqa: BLE001
            decisions.append(_failed(g, "output", exc))
            continue
        _decide(g, "output", per_text, decisions, spans)
    return OutputResult(_rewrite(text, spans[0], vault), decisions)


def _rewrite(text: str, found: list[tuple[Finding, GuardrailInfo]], vault: Vault) -> str:
    """Redact the findings (not restorable) and restore our placeholders elsewhere."""
    if not found:
        return vault.restore(text)
    parts, at = [], 0
    for f in merge([f for f, _ in found]):
        parts.append(vault.restore(text[at:f.start]))
        parts.append(vault.placeholder(f.entity, text[f.start:f.end], restorable=False))
        at = f.end
    parts.append(vault.restore(text[at:]))
    return "".join(parts)


class StreamCheck:
    """The output check of one stream choice, incrementally: `process(buffer, final)`
    (routing.stages.streams.TextHoldBack's contract) returns the text that is safe to
    send now — findings redacted, our placeholders restored — and the raw tail to keep:
    only as much as could still become a finding (each detector's `hold`) or one of
    our placeholders; everything else is released at once.

    A block (or a failing fail-closed check) sets `blocked` and sends nothing more;
    the caller ends the stream with an error. Decisions accumulate in `decisions`.
    """

    def __init__(self, guardrails: Sequence[GuardrailInfo], vault: Vault) -> None:
        self.vault = vault
        self.active = [g for g in guardrails if g.spans or g.check is None]
        self.whole = [g for g in guardrails if not g.spans and g.check is not None]  # whole-text: at the end
        self.context = ""
        self.decisions: dict[str, Decision] = {}
        self.blocked: Decision | None = None
        self.seen: list[str] = []  # raw text, for the whole-text checks at the end

    def process(self, buffer: str, final: bool) -> tuple[str, str]:
        if self.blocked is not None:
            return "", ""
        ctx = self.context
        text = ctx + buffer
        found: list[tuple[Finding, GuardrailInfo]] = []
        hold = 0 if final else self.vault.restore_hold(text)
        for g in list(self.active):
            try:
                if g.check is None:
                    raise CheckFailed(g.broken)
                # A finding reaching back into text already sent (a detector's hold let
                # its start go) is redacted from the unsent part on.
                findings = [f if f.start >= len(ctx) else Finding(len(ctx), f.end, f.entity)
                            for f in g.check.find(text) if f.end > len(ctx)]
                if not final:
                    hold = max(hold, g.check.hold(text))
            except Exception as exc:  # noqa: BLE001
                self._fail(g, exc)
                if self.blocked is not None:
                    return "", ""
                continue
            found.extend((f, g) for f in findings)
        split = len(text) - min(hold, len(buffer))
        for f, _ in found:  # never cut through a finding: keep it whole for the next round
            if f.start < split < f.end:
                split = f.start
        ready = [(f, g) for f, g in found if f.end <= split]
        for f, g in ready:
            self._count(g, f)
            if g.action == "block":
                self.blocked = self.decisions[g.name]
                return "", ""
        redact = [(f, g) for f, g in ready if g.action == "redact"]
        out = _rewrite(text[len(ctx):split], [(_shift(f, len(ctx)), g) for f, g in redact], self.vault)
        self.context = text[:split][-CONTEXT_CHARS:]
        if self.whole:
            self.seen.append(text[len(ctx):split])
        return out, text[split:]

    def finish(self) -> None:
        """At the end of the answer: the whole-text checks over everything sent."""
        if self.blocked is not None or not self.whole:
            return
        whole = "".join(self.seen)
        for g in self.whole:
            try:
                for f in g.check.verdict([whole]):
                    self._count(g, f)
            except Exception as exc:  # noqa: BLE001
                self._fail(g, exc)

    def _count(self, g: GuardrailInfo, f: Finding) -> None:
        d = self.decisions.get(g.name)
        if d is None:
            d = self.decisions[g.name] = Decision(g, "output", _outcome_of(g))
        d.entities[f.entity] += 1

    def _fail(self, g: GuardrailInfo, exc: BaseException) -> None:
        self.active = [a for a in self.active if a is not g]  # failed once: not asked again
        d = self.decisions[g.name] = _failed(g, "output", exc)
        if d.enforced_block:
            self.blocked = d


def _shift(f: Finding, by: int) -> Finding:
    return Finding(f.start - by, f.end - by, f.entity)
