"""Conditions of the `conditional` strategy: a tiny, safe rule language.

A rule is {"when": "<clause> and <clause> ...", "targets": ["provider/model", ...]}.
A clause is `<field> <op> <value>` or `<field> exists`, where
- field: metadata.<name>, params.<name>, or one of max_tokens, temperature, top_p,
  stream, user, model, messages (count), prompt_tokens (estimate), tools (count);
- op: == != > >= < <= in "not in" contains;
- value: a JSON literal ("premium", 'premium', 2000, true, ["a", "b"]).
Nothing is evaluated as code: values are parsed as JSON, fields looked up in a table.
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass
from typing import Any, Callable

from providers.tokens import estimate_prompt_tokens
from providers.types import ChatRequest


class ConditionError(ValueError):
    pass


_MISSING = object()
FIELDS: dict[str, Callable[[ChatRequest], Any]] = {
    "max_tokens": lambda r: r.max_tokens,
    "temperature": lambda r: r.params.get("temperature"),
    "top_p": lambda r: r.params.get("top_p"),
    "stream": lambda r: r.stream,
    "user": lambda r: r.params.get("user"),
    "model": lambda r: r.model,
    "messages": lambda r: len(r.messages),
    "prompt_tokens": lambda r: estimate_prompt_tokens(r.messages),
    "tools": lambda r: len(r.params.get("tools") or []),
}


def _contains(a: Any, b: Any) -> bool:
    return isinstance(a, (str, list, dict)) and b in a


OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
    "contains": _contains,
}
_FIELD = r"([A-Za-z_][\w.-]*)"
_CLAUSE = re.compile(rf"^\s*{_FIELD}\s*(==|!=|>=|<=|>|<)\s*(.+?)\s*$")
_WORD_CLAUSE = re.compile(rf"^\s*{_FIELD}\s+(not\s+in|in|contains)\s+(.+?)\s*$")
# " and " outside quotes (an even number of quote characters follows it).
_AND = re.compile(r"\s+and\s+(?=(?:[^'\"]*['\"][^'\"]*['\"])*[^'\"]*$)")
# A JSON "string" (kept) or a 'single-quoted' one (converted).
_STRINGS = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'((?:[^'\\]|\\.)*)'")
_EXISTS = re.compile(r"^\s*([A-Za-z_][\w.-]*)\s+exists\s*$")


@dataclass(frozen=True, slots=True)
class Clause:
    field: str
    op: str  # an OPS key or "exists"
    value: Any = None

    def lookup(self, req: ChatRequest) -> Any:
        """The field's value, or _MISSING; null counts as missing everywhere."""
        head, _, rest = self.field.partition(".")
        if head == "metadata" and rest:
            value = req.metadata.get(rest)
        elif head == "params" and rest:
            value = req.params.get(rest)
        else:
            getter = FIELDS.get(self.field)
            value = getter(req) if getter else None
        return _MISSING if value is None else value

    def holds(self, req: ChatRequest) -> bool:
        actual = self.lookup(req)
        if self.op == "exists":
            return actual is not _MISSING
        if actual is _MISSING:
            return False
        if self.op in ("==", "!=", ">", ">=", "<", "<=") and isinstance(actual, bool) != isinstance(self.value, bool):
            return self.op == "!="  # true is not 1: booleans and numbers never compare equal
        try:
            return bool(OPS[self.op](actual, self.value))
        except TypeError:  # e.g. "abc" > 3: a non-match, not an error
            return False


@dataclass(frozen=True, slots=True)
class Rule:
    text: str
    clauses: tuple[Clause, ...]
    targets: tuple[str, ...]

    def matches(self, req: ChatRequest) -> bool:
        return all(c.holds(req) for c in self.clauses)


def _value(raw: str) -> Any:
    # 'single' quotes, also inside lists, become JSON strings; "double" ones stay.
    raw = _STRINGS.sub(lambda m: m.group(0) if m.group(1) is None else json.dumps(m.group(1).replace("\\'", "'")), raw)
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise ConditionError(f"{raw!r} is not a value: quote text ('premium'), or write a number, true/false or a list") from None


def parse_clause(text: str) -> Clause:
    if m := _EXISTS.match(text):
        field, op, value = m.group(1), "exists", None
    elif m := (_CLAUSE.match(text) or _WORD_CLAUSE.match(text)):
        field, op, value = m.group(1), " ".join(m.group(2).split()), _value(m.group(3))
    else:
        raise ConditionError(f"cannot read {text.strip()!r}: expected '<field> <op> <value>', e.g. max_tokens > 2000")
    head, _, rest = field.partition(".")
    if not ((head in ("metadata", "params") and rest) or field in FIELDS):
        raise ConditionError(
            f"unknown field {field!r}: use metadata.<name>, params.<name> or one of {', '.join(FIELDS)}"
        )
    if op in ("in", "not in") and not isinstance(value, list):
        raise ConditionError(f"{op!r} needs a list, e.g. [\"a\", \"b\"]")
    return Clause(field, op, value)


def parse_rules(rules: Any) -> list[Rule]:
    """Validate and compile a route's rules; raises ConditionError naming the rule."""
    if not isinstance(rules, list):
        raise ConditionError("rules must be a list")
    parsed = []
    for i, rule in enumerate(rules):
        where = f"rule {i + 1}"
        if not isinstance(rule, dict):
            raise ConditionError(f'{where}: expected {{"when": "...", "targets": ["provider/model", ...]}}')
        if extra := sorted(set(rule) - {"when", "targets"}):
            raise ConditionError(f"{where}: unknown key{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))} "
                                 "(a rule has only 'when' and 'targets')")
        when, targets = rule.get("when"), rule.get("targets")
        if not isinstance(when, str) or not when.strip():
            raise ConditionError(f"{where}: 'when' must be a condition such as metadata.tier == 'premium'")
        if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
            raise ConditionError(f"{where}: 'targets' must be a non-empty list of provider/model names")
        try:
            clauses = tuple(parse_clause(part) for part in _AND.split(when))
        except ConditionError as exc:
            raise ConditionError(f"{where}: {exc}") from None
        parsed.append(Rule(when.strip(), clauses, tuple(targets)))
    return parsed
