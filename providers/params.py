"""Provider parameter differences as data: one declared table per wire format and kind,
read by one generic mapper.

The gateway's requests carry OpenAI's sampling parameters (`ChatRequest.params`, plus
`max_tokens` normalised from either spelling). Providers take the same ideas under
other names (`stop` -> `stop_sequences`), at other places in the body
(`generationConfig.maxOutputTokens`), in other ranges (Anthropic's temperature is
0..1, OpenAI's 0..2), in other shapes (a stop string -> a list), or not at all. Each
such difference is one `Param` row; an adapter calls `map_params` once and only
translates what no table can say (messages, tools, tool choice).

A kind's table (`providers.kinds.KindSpec.params`) is laid over its wire format's table
by name (`overlay`), so "Mistral drops `logit_bias`" is one row, not a branch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Body fields an adapter always sets itself: never copied from the client's params.
HANDLED_BY_ADAPTERS = frozenset({"model", "messages", "stream", "stream_options"})


@dataclass(frozen=True, slots=True)
class Param:
    """How one OpenAI-dialect parameter reaches a provider.

    `to`: the provider's name for it, a dotted path for nested places
    ("generationConfig.topP"); None keeps the name. `drop`: never sent.
    `default`: sent when the client did not send the parameter (None: nothing).
    `min`/`max`: numbers are clamped into the provider's range. `transform`: the
    value as the provider wants it (applied before clamping); returning `DROP`
    leaves the parameter out.
    """

    name: str
    to: str | None = None
    drop: bool = False
    default: Any = None
    min: float | None = None
    max: float | None = None
    transform: Callable[[Any], Any] | None = None


DROP = object()  # a transform's answer: leave the parameter out

ParamTable = Mapping[str, Param]


def table(*rows: Param) -> dict[str, Param]:
    """A table from its rows (one per parameter name; a repeated name is a mistake)."""
    out: dict[str, Param] = {}
    for row in rows:
        if row.name in out:
            raise ValueError(f"parameter {row.name!r} is declared twice")
        out[row.name] = row
    return out


def overlay(base: ParamTable, override: Iterable[Param] | ParamTable) -> dict[str, Param]:
    """`base` with `override`'s rows replacing base rows of the same name."""
    rows = override.values() if isinstance(override, Mapping) else tuple(override)
    if not rows:
        return base  # type: ignore[return-value] - the common case, free on the hot path
    return {**base, **{row.name: row for row in rows}}


def drops(*names: str) -> tuple[Param, ...]:
    """Rows that drop each of `names` (parameters a provider rejects)."""
    return tuple(Param(name, drop=True) for name in names)


def as_list(value: Any) -> Any:
    """A string or a list -> a list (OpenAI's `stop` may be either); empty: left out."""
    if not value:
        return DROP
    return [value] if isinstance(value, str) else list(value)


def as_text(value: Any) -> Any:
    """A value as a non-empty string (ids such as `user`); empty: left out."""
    return str(value) if value not in ("", None) else DROP


def _clamp(value: Any, rule: Param) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if rule.min is not None and value < rule.min:
        value = type(value)(rule.min) if isinstance(value, int) and float(rule.min).is_integer() else rule.min
    if rule.max is not None and value > rule.max:
        value = type(value)(rule.max) if isinstance(value, int) and float(rule.max).is_integer() else rule.max
    return value


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    node = body
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


def map_params(rules: ParamTable, params: Mapping[str, Any], *, passthrough: bool,
               into: dict[str, Any] | None = None) -> dict[str, Any]:
    """The provider's body fields for `params`, by `rules`.

    A parameter without a row is copied as it is when `passthrough` (OpenAI-compatible
    APIs take OpenAI's names) and left out otherwise (a foreign format takes only what
    its table names). A None value counts as not sent. Defaults fill what the client
    did not send. Writes into `into` (nested paths merge) and returns it.
    """
    if passthrough and not rules and into is None:  # an OpenAI-compatible kind with no differences
        return {k: v for k, v in params.items() if k not in HANDLED_BY_ADAPTERS}
    body: dict[str, Any] = {} if into is None else into
    for name, value in params.items():
        if name in HANDLED_BY_ADAPTERS:
            continue
        rule = rules.get(name)
        if rule is None:
            if passthrough:
                body[name] = value
            continue
        if rule.drop or value is None:
            continue
        if rule.transform is not None:
            value = rule.transform(value)
            if value is DROP:
                continue
        _put(body, rule.to or name, _clamp(value, rule))
    for name, rule in rules.items():
        if rule.default is not None and not rule.drop and params.get(name) is None:
            _put(body, rule.to or name, rule.default)
    return body
