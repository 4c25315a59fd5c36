"""What a guardrail kind is: a declared parameter schema and a pure check built from it.

A kind module defines one `Kind` subclass: its parameters (`params`, each a `Param`),
which stages and actions make sense for it, and `build(params)`, which returns the
check for one guardrail's validated parameters. A check is either

- a span check (`Detector`: `find(text)` and `hold(text)`, guardrails.detectors): it
  can redact, and it runs inside streams with a bounded hold-back; or
- a whole-text check (`TextCheck`: `verdict(texts)` -> findings without meaningful
  spans): block or flag only (e.g. max_input_tokens); or
- an async check (`AsyncCheck`: `await averdict(text, ctx)`) that may call a route of
  the gateway itself (the classifier), inputs only.

Checks keep no state between requests and never log or return the matched text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from guardrails.detectors import Finding


class ParamError(ValueError):
    """A guardrail parameter is invalid: `param` names it (None = the whole set)."""

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param, self.message = param, message


@dataclass(frozen=True, slots=True)
class Param:
    """One declared parameter. `type` is one of: str, text, int, float, bool,
    words (a list of non-empty strings), choices (a list from `choices`), choice (one of `choices`)."""

    type: str
    help: str
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    max_items: int = 1000
    max_length: int = 10_000
    check: Callable[[Any], None] | None = None  # extra validation; raises ValueError

    def clean(self, name: str, value: Any) -> Any:
        if value is None or value == "" or value == []:
            if self.required:
                raise ParamError(name, "is required")
            return self.default() if callable(self.default) else self.default
        cleaned = _COERCE[self.type](self, name, value)
        if self.check is not None:
            try:
                self.check(cleaned)
            except ValueError as exc:
                raise ParamError(name, str(exc)) from None
        return cleaned


def _str(p: Param, name: str, v: Any) -> str:
    if not isinstance(v, str):
        raise ParamError(name, "must be a string")
    if len(v) > p.max_length:
        raise ParamError(name, f"must be at most {p.max_length} characters")
    return v


def _number(kind: type) -> Callable[[Param, str, Any], Any]:
    def coerce(p: Param, name: str, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise ParamError(name, f"must be {'an integer' if kind is int else 'a number'}")
        try:
            number = kind(v)
        except (TypeError, ValueError):
            raise ParamError(name, f"must be {'an integer' if kind is int else 'a number'}") from None
        if kind is float and number != number:
            raise ParamError(name, "must be a number")
        if p.min is not None and number < p.min:
            raise ParamError(name, f"must be at least {p.min:g}")
        if p.max is not None and number > p.max:
            raise ParamError(name, f"must be at most {p.max:g}")
        return number

    return coerce


def _bool(p: Param, name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ParamError(name, "must be true or false")
    return v


def _list(p: Param, name: str, v: Any) -> list[str]:
    if isinstance(v, str):  # the admin's textarea: one per line
        v = [line for line in v.splitlines()]
    if not isinstance(v, (list, tuple)):
        raise ParamError(name, "must be a list")
    out: list[str] = []
    for i, item in enumerate(v):
        if not isinstance(item, str):
            raise ParamError(name, f"item {i + 1} must be a string")
        item = item.strip()
        if not item:
            continue
        if len(item) > p.max_length:
            raise ParamError(name, f"item {i + 1} is longer than {p.max_length} characters")
        if p.type == "choices" and item not in p.choices:
            raise ParamError(name, f"unknown value '{item}' (known: {', '.join(p.choices)})")
        if item not in out:
            out.append(item)
    if len(out) > p.max_items:
        raise ParamError(name, f"at most {p.max_items} items")
    if p.required and not out:
        raise ParamError(name, "needs at least one item")
    return out


def _one(p: Param, name: str, v: Any) -> str:
    if not isinstance(v, str) or v not in p.choices:
        raise ParamError(name, f"must be one of: {', '.join(p.choices)}")
    return v


_COERCE: dict[str, Callable[[Param, str, Any], Any]] = {
    "str": _str, "text": _str, "int": _number(int), "float": _number(float), "bool": _bool,
    "words": _list, "choices": _list, "choice": _one,
}


class TextCheck(Protocol):
    def verdict(self, texts: Sequence[str]) -> list[Finding]: ...


class AsyncCheck(Protocol):
    async def averdict(self, text: str, ctx: Any) -> list[Finding]: ...


class Kind:
    """Base of the guardrail kinds (one module each, registered in kinds/__init__.py)."""

    name: ClassVar[str]
    label: ClassVar[str]
    help: ClassVar[str]
    params: ClassVar[dict[str, Param]] = {}
    stages: ClassVar[frozenset[str]] = frozenset({"input", "output", "both"})
    actions: ClassVar[frozenset[str]] = frozenset({"redact", "block", "flag"})
    spans: ClassVar[bool] = True  # build() returns a Detector (find/hold)
    is_async: ClassVar[bool] = False  # build() returns an AsyncCheck

    def clean(self, params: dict[str, Any]) -> dict[str, Any]:
        """The validated parameters (defaults filled in); unknown keys are errors."""
        if not isinstance(params, dict):
            raise ParamError(None, "parameters must be a mapping")
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            known = ", ".join(self.params) or "none"
            raise ParamError(unknown[0], f"unknown parameter for kind {self.name} (known: {known})")
        cleaned = {name: p.clean(name, params.get(name)) for name, p in self.params.items()}
        self.check(cleaned)
        return cleaned

    def check(self, params: dict[str, Any]) -> None:
        """Cross-parameter validation (raise ParamError)."""

    def build(self, params: dict[str, Any]) -> Any:
        raise NotImplementedError


def compile_check(pattern: str) -> None:
    """A pattern must compile (Python `re` syntax) and not match the empty string."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"'{pattern}' does not compile: {exc}") from None
    if compiled.fullmatch(""):
        raise ValueError(f"'{pattern}' matches the empty string")
