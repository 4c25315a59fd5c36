"""One rule row: how it is compiled from trigger words and phrases, and how it searches
a Text (trigger-word gate first, then one regex per trigger; the package docstring says why)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .text import _SEPARATORS, Text
from .types import TaskType


@dataclass(frozen=True, slots=True)
class Rule:
    """One row: the text is `task` when a trigger occurs as whole words and `then`
    matches right after it (and `requires` matches somewhere in the text).

    Rows without triggers are a bare `pattern` instead, run only when the text holds
    one of `gate_chars`. `reason` is a sentence template: `{where}` becomes "last user
    message" or "system prompt", `{match}` the words that triggered the rule.
    """

    task: TaskType
    reason: str
    triggers: tuple[str, ...]
    # (gate word, regex) per trigger; a gate word of "" means "run the regex regardless"
    searches: tuple[tuple[str, re.Pattern[str]], ...]
    gate_words: frozenset[str]
    gate_chars: str = ""
    requires: re.Pattern[str] | None = None

    def search(self, text: Text) -> re.Match[str] | None:
        if self.gate_words:
            if self.gate_words.isdisjoint(text.words):
                return None
        elif not any(c in text.lowered for c in self.gate_chars):
            return None
        for word, regex in self.searches:
            if word and word not in text.words:
                continue
            m = regex.search(text.lowered)
            if m is not None and (self.requires is None or self.requires.search(text.lowered) is not None):
                return m
        return None


def _gate_word(trigger: str) -> str:
    """The word of `trigger` looked up in a text's word set before any regex runs: the
    longest one, usually the rarest ("many" in "how many")."""
    return max(trigger.translate(_SEPARATORS).split(), key=len)


def _phrase(trigger: str) -> str:
    return r"\s+".join(re.escape(word) for word in trigger.split(" "))


def _trigger_regex(trigger: str, then: str) -> str:
    """`trigger` as whole words, then `then`. The regex starts with the trigger's literal
    first word (the fast path); the word boundary before it is a look-behind placed after it."""
    first, _, rest = trigger.partition(" ")
    regex = re.escape(first)
    if re.match(r"\w", first):
        regex += rf"(?<!\w.{{{len(first)}}})"
    if rest:
        regex += r"\s+" + _phrase(rest)
    if re.search(r"\w$", trigger):
        regex += r"(?!\w)"
    return regex + then


def rule(
    task: TaskType,
    triggers: tuple[str, ...] | str,
    reason: str,
    *,
    before: str = "",
    then: str = "",
    requires: str | None = None,
) -> Rule:
    """A row fired by trigger words (plain lowercase words or phrases).

    Without `before`, each trigger gets its own regex, run only when the trigger's gate
    word is in the text. With `before` (context that must precede the trigger), the row
    is one regex, run when any gate word is in the text.
    """
    triggers = (triggers,) if isinstance(triggers, str) else triggers
    if before:
        regex = before + _alt(*(_phrase(t) for t in triggers)) + r"(?!\w)" + then
        searches: tuple[tuple[str, re.Pattern[str]], ...] = (("", re.compile(regex)),)
    else:
        searches = tuple((_gate_word(t), re.compile(_trigger_regex(t, then))) for t in triggers)
    gate_words = frozenset(_gate_word(t) for t in triggers)
    return Rule(task, reason, triggers, searches, gate_words, requires=_compile(requires))


def pattern_rule(task: TaskType, pattern: str, reason: str, *, gate_chars: str) -> Rule:
    """A row with no trigger word. `pattern` should start with a literal or a small
    character set, and `gate_chars` list characters without which it cannot match."""
    return Rule(task, reason, (), (("", re.compile(pattern)),), frozenset(), gate_chars=gate_chars)


def _compile(pattern: str | None) -> re.Pattern[str] | None:
    return re.compile(pattern) if pattern else None


def _alt(*words: str) -> str:
    return "(?:" + "|".join(words) + ")"


def _preceded_by(words: tuple[str, ...], trigger: str) -> str:
    """Look-behinds (placed after `trigger`): the word before the trigger is one of `words`."""
    return _alt(*(rf"(?<=\b{w} {trigger})" for w in words))
