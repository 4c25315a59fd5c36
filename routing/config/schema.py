"""The config schema: one field table per entity, the type checks they use, and errors.

Each table row says how a key is checked on import and written on export, so that
parse.py and exporter.py read the same rows and cannot drift apart (docs/config.md
documents the same keys).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from billing.keys import validate_rate_limits
from billing.models import Budget
from providers.kinds import KINDS
from providers.models import CAPABILITIES
from providers.types import ErrorKind
from routing.conditions import ConditionError, parse_rules
from routing.models import CacheMode, CacheScope, StickyBy, Strategy, WhenAllOpen
from routing.task_detection import TaskType

SECTIONS = ("providers", "routes", "teams", "guardrails")


# --- errors ---------------------------------------------------------------------------


class ConfigError(Exception):
    """An invalid configuration. `path`/`message` are the first problem; `errors` all
    of them as (path, message), e.g. ("providers[upstream-a].kind", "unknown ...")."""

    def __init__(self, path: str, message: str, *, more: Iterable[tuple[str, str]] = ()) -> None:
        self.errors = [(path, message), *more]
        super().__init__(str(self))

    @property
    def path(self) -> str:
        return self.errors[0][0]

    @property
    def message(self) -> str:
        return self.errors[0][1]

    def __str__(self) -> str:
        return "\n".join(f"{path}: {message}" if path else message for path, message in self.errors)


class Errors:
    """Collects every problem so one ConfigError can report them all at once."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(*self.items[0], more=self.items[1:])


class Invalid(Exception):
    """A value a field rejects; `where` locates it inside the value (e.g. "[2]")."""

    def __init__(self, message: str, where: str = "") -> None:
        self.message, self.where = message, where


def type_name(value: Any) -> str:
    names = {
        bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping"
    }
    return "nothing (null)" if value is None else names.get(type(value), type(value).__name__)


def did_you_mean(word: str, options: list[str]) -> str:
    """"; did you mean 'x'?" for the closest option, or "" when none is close."""
    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


# --- import: value checks -------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:  # `description:` with nothing after it
        return ""
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {type_name(value)}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {type_name(value)}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"expected an integer, got {type_name(value)}")
    return value


def _optional_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _rate_limit(field: str) -> Callable[[Any], int | None]:
    """A team's rpm_limit / tpm_limit: null = no limit, 0 = nothing allowed, checked
    by billing.keys.validate_rate_limits like every other entry point."""

    def coerce(value: Any) -> int | None:
        limit = _optional_int(value)
        try:
            validate_rate_limits(**{field: limit})
        except ValidationError as exc:
            raise Invalid(" ".join(exc.messages)) from None
        return limit

    return coerce


def _optional_decimal(value: Any) -> Decimal | None:
    return None if value is None else _decimal(value)


def _decimal(value: Any) -> Decimal:
    """Strings and numbers, exactly: a YAML float goes through str() (0.15, not 0.1499...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise Invalid(f"expected a number or a quoted decimal, got {type_name(value)}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise Invalid(f"not a number: {str(value)!r}") from None
    if not number.is_finite():
        raise Invalid("must be a finite number")
    return number


def _budget_amount(value: Any) -> Decimal | None:
    """USD, at least 0, at most 4 decimal places (Budget.amount_usd); null = no budget."""
    if value is None:
        return None
    amount = _decimal(value)
    if amount < 0:
        raise Invalid("must be at least 0")
    if amount.as_tuple().exponent < -4 or amount.adjusted() >= 10:
        raise Invalid("must have at most 10 digits before and 4 after the decimal point")
    return amount


def _json_object(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"expected a mapping, got {type_name(value)}")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise Invalid("must contain only JSON values (strings, numbers, booleans, lists, mappings)") from None
    return value


def _choice(known: Callable[[], Iterable[str]], what: str) -> Callable[[Any], str]:
    """A string from `known()`, read at check time (the choices live in other modules)."""

    def coerce(value: Any) -> str:
        options = list(known())
        if not isinstance(value, str):
            raise Invalid(f"expected a string, got {type_name(value)}")
        if value not in options:
            raise Invalid(f"unknown {what} '{value}' (known: {', '.join(options)}){did_you_mean(value, options)}")
        return value

    return coerce


def _list_of(item: Callable[[Any], Any]) -> Callable[[Any], list]:
    def coerce(value: Any) -> list:
        if not isinstance(value, list):
            raise Invalid(f"expected a list, got {type_name(value)}")
        out = []
        for i, element in enumerate(value):
            try:
                out.append(item(element))
            except Invalid as exc:
                raise Invalid(exc.message, f"[{i}]{exc.where}") from None
        return out

    return coerce


def _capabilities(value: Any) -> list[str]:
    """A model's capabilities: known names, each once, chat or embeddings among them;
    stored in CAPABILITIES order (so the order in the file does not matter)."""
    if not isinstance(value, list):
        raise Invalid(f"expected a list of capabilities (e.g. [chat, tools]), got {type_name(value)}")
    known = list(CAPABILITIES)
    for i, name in enumerate(value):
        if not isinstance(name, str):
            raise Invalid(f"expected a capability name, got {type_name(name)}", f"[{i}]")
        if name not in CAPABILITIES:
            raise Invalid(f"unknown capability '{name}' (known: {', '.join(known)}){did_you_mean(name, known)}", f"[{i}]")
        if name in value[:i]:
            raise Invalid(f"'{name}' is listed twice", f"[{i}]")
    if not {"chat", "embeddings"} & set(value):
        raise Invalid("a model serves chat, embeddings or both: list at least one of them")
    return [name for name in CAPABILITIES if name in value]


def _capabilities_out(value: Any) -> list[str]:
    return [name for name in CAPABILITIES if name in (value or [])]


RULE_KEYS = ("when", "targets")


def _rules(value: Any) -> list:
    """Conditional rules, checked by routing.conditions.parse_rules (the engine's own
    parser); whether their targets are targets of the route is checked in parse.py."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid(f"expected a list of rules ({{when: ..., targets: [...]}}), got {type_name(value)}")
    for i, rule in enumerate(value):
        if not isinstance(rule, dict):
            raise Invalid(f"rule {i + 1}: expected a mapping with keys when, targets, got {type_name(rule)}")
        for key in rule:
            if key not in RULE_KEYS:
                hint = did_you_mean(str(key), list(RULE_KEYS))
                raise Invalid(f"rule {i + 1}: unknown key '{key}' (allowed: {', '.join(RULE_KEYS)}){hint}")
    try:
        parse_rules(value)
    except ConditionError as exc:
        raise Invalid(str(exc)) from None
    return value


def _model_ref(value: Any) -> tuple[str, str]:
    if not isinstance(value, str):
        raise Invalid(f"expected 'provider/model', got {type_name(value)}")
    provider, _, name = value.partition("/")
    if not provider or not name:
        raise Invalid(f"expected 'provider/model', got '{value}'")
    return provider, name


# --- export: value formats ------------------------------------------------------------


def _decimal_str(value: Decimal) -> str:
    return format(value.normalize(), "f")  # 30.0 -> "30", never "3E+1"


def _money_str(value: Decimal) -> str:
    """At least cents, no trailing zeros beyond: 0.150000 -> "0.15", 4 -> "4.00", 0.000125 stays."""
    value = value.normalize()
    return format(value.quantize(Decimal("0.01")) if value.as_tuple().exponent > -2 else value, "f")


def _rules_out(rules: list) -> list:
    return [{key: rule[key] for key in RULE_KEYS if key in rule} for rule in rules]


def _sorted_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_json(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(v) for v in value]
    return value


# --- field tables -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    coerce: Callable[[Any], Any]
    required: bool = False
    export: Callable[[Any], Any] = lambda v: v
    omit_empty: bool = False  # exported only when not "" / null
    keep_when_absent: bool = False  # absent from the file = keep the stored value
    secret: bool = False  # exported only as an env: reference (or with include_secrets)
    omit_default: bool = False  # exported only when not the model field's default...
    used_by: str = ""  # ...or when the route's strategy is this one (it reads the setting)
    attr: str = ""  # the model field, when it is not the key


@dataclass(frozen=True, slots=True)
class Group:
    """A nested mapping of fields (a route's `breaker:`). Absent, null or partial: the
    missing fields take their defaults; exported only when some field is exported."""

    fields: dict[str, Field]


Table = dict[str, Field | Group]


def flat_fields(table: Table) -> dict[str, tuple[str, Field]]:
    """Model field -> (key path in the item, e.g. "breaker.cooldown_s", its Field)."""
    out: dict[str, tuple[str, Field]] = {}
    for key, spec in table.items():
        if isinstance(spec, Group):
            out.update({f.attr or sub: (f"{key}.{sub}", f) for sub, f in spec.fields.items()})
        else:
            out[spec.attr or key] = (key, spec)
    return out


_DECIMAL = Field(_decimal, export=_decimal_str)
_PRICE = Field(_decimal, export=_money_str)
_OPTIONAL_PRICE = Field(_optional_decimal, export=_money_str, omit_empty=True)  # null = the input price


def _setting(coerce: Callable[[Any], Any], strategy: Strategy, **kw: Any) -> Field:
    """A setting one strategy reads: exported for that strategy's routes, or when set."""
    return Field(coerce, omit_default=True, used_by=strategy, **kw)


# Keys equal model field names (unless `attr` names the field). Absent keys take the
# model field's default, except where `keep_when_absent` says otherwise. Table order is
# export order.
PROVIDER_FIELDS: dict[str, Field] = {
    "kind": Field(_choice(lambda: KINDS, "provider kind"), required=True),
    "base_url": Field(_text, omit_empty=True),
    "api_key": Field(_text, keep_when_absent=True, secret=True, omit_empty=True),
    "timeout_s": _DECIMAL,
    "options": Field(_json_object, export=_sorted_json),
    "enabled": Field(_bool),
}
MODEL_FIELDS: dict[str, Field] = {
    "upstream_id": Field(_text, omit_empty=True),
    "input_price_per_mtok": _PRICE,
    "output_price_per_mtok": _PRICE,
    "cache_read_price_per_mtok": _OPTIONAL_PRICE,
    "cache_write_price_per_mtok": _OPTIONAL_PRICE,
    "context_window": Field(_optional_int, omit_empty=True),
    "quality_score": Field(_int, omit_default=True),
    # Exported when not the default (a chat model that streams, calls tools, reads images, answers JSON).
    "capabilities": Field(_capabilities, export=_capabilities_out, omit_default=True),
    "enabled": Field(_bool),
}
# Circuit breaker of a route: null/absent = the gateway-wide default (GATEWAY_BREAKER_*).
BREAKER_FIELDS: dict[str, Field] = {
    "failure_threshold": Field(_optional_int, omit_default=True, attr="breaker_failure_threshold"),
    "failure_rate": Field(_optional_decimal, export=_decimal_str, omit_default=True, attr="breaker_failure_rate"),
    "window_s": Field(_optional_int, omit_default=True, attr="breaker_window_s"),
    "min_requests": Field(_optional_int, omit_default=True, attr="breaker_min_requests"),
    "cooldown_s": Field(_optional_int, omit_default=True, attr="breaker_cooldown_s"),
    "when_all_open": Field(_choice(lambda: WhenAllOpen.values, "when_all_open value"), omit_default=True),
}


def _cache_mode(value: Any) -> str:
    """off | exact | semantic. YAML 1.1 reads a bare `off` as false: that is "off" too."""
    if value is False or value is None:
        return CacheMode.OFF
    return _choice(lambda: CacheMode.values, "cache mode")(value)


# A route's answer cache (routing.cache); `cache:` absent = off with the defaults.
CACHE_FIELDS: dict[str, Field] = {
    "mode": Field(_cache_mode, omit_default=True, attr="cache_mode"),
    "ttl_s": Field(_int, omit_default=True, attr="cache_ttl_s"),
    "scope": Field(_choice(lambda: CacheScope.values, "cache scope"), omit_default=True, attr="cache_scope"),
    "threshold": Field(_optional_decimal, export=_decimal_str, omit_default=True, attr="cache_threshold"),
    "max_messages": Field(_int, omit_default=True, attr="cache_max_messages"),
    "only_deterministic": Field(_bool, omit_default=True, attr="cache_only_deterministic"),
    "allow_tools": Field(_bool, omit_default=True, attr="cache_allow_tools"),
}
# Strategy settings are exported when the route's strategy reads them or when they are
# not the default, so a route that does not use them reads as before.
ROUTE_FIELDS: Table = {
    "description": Field(_text, omit_empty=True),
    "strategy": Field(_choice(lambda: Strategy.values, "strategy")),
    "timeout_s": _DECIMAL,
    "max_attempts": Field(_int),
    "backoff_base_ms": Field(_int),
    "backoff_max_ms": Field(_int),
    "retry_after_cap_s": _DECIMAL,
    "retry_on": Field(_list_of(_choice(lambda: [k.value for k in ErrorKind], "error kind"))),
    "sticky_by": _setting(_choice(lambda: StickyBy.values, "sticky_by value"), Strategy.LOADBALANCE),
    "explore_rate": _setting(_decimal, Strategy.LEAST_LATENCY, export=_decimal_str),
    "min_quality": _setting(_int, Strategy.COST),
    "rules": _setting(_rules, Strategy.CONDITIONAL, export=_rules_out),
    "breaker": Group(BREAKER_FIELDS),
    "cache": Group(CACHE_FIELDS),
    "trace_content": Field(_bool, omit_default=True),  # prompts and answers in trace spans (routing.tracing)
    "enabled": Field(_bool),
}
# A target's `model` is a 'provider/model' reference: parsed into a (provider, model)
# pair that the importer resolves, exported via Model.__str__ ("provider/model").
TARGET_FIELDS: dict[str, Field] = {
    "model": Field(_model_ref, required=True, export=str),
    "weight": Field(_int),
    "task_types": _setting(_list_of(_choice(lambda: TaskType.values, "task type")), Strategy.TASK),
    "enabled": Field(_bool),
}
TEAM_FIELDS: dict[str, Field] = {
    "description": Field(_text, omit_empty=True),
    "rpm_limit": Field(_rate_limit("rpm_limit"), omit_empty=True),  # 0 is exported: it is not "no limit"
    "tpm_limit": Field(_rate_limit("tpm_limit"), omit_empty=True),
}
# A team's budget: not Team fields but one Budget row (billing.budgets.set_team_budget),
# so the importer and exporter handle these two keys themselves. Absent = the team's
# budgets are left alone; `budget_usd: null` switches off its budget for the period.
TEAM_BUDGET_FIELDS: dict[str, Field] = {
    "budget_usd": Field(_budget_amount, export=_money_str),
    "budget_period": Field(_choice(lambda: Budget.Period.values, "budget period")),
}
