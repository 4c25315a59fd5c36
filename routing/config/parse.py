"""Document -> ConfigSpec: shape and type checks against the field tables (no database).

Every problem is collected and reported together, each with its path, e.g.
`routes[chat-default].targets[1].model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from providers.adapters import ADAPTERS
from providers.kinds import KINDS

from .guardrails_section import parse_guardrails
from .schema import (
    MODEL_FIELDS,
    PROVIDER_FIELDS,
    ROUTE_FIELDS,
    SECTIONS,
    TARGET_FIELDS,
    TEAM_BUDGET_FIELDS,
    TEAM_FIELDS,
    ConfigError,
    Errors,
    Group,
    Invalid,
    Table,
    did_you_mean,
    type_name,
)


@dataclass
class Entry:
    """One item of the document: its path for messages, name, and coerced values
    (only the keys the file sets, by model field: `breaker.cooldown_s` is
    `breaker_cooldown_s`). `children` are a provider's models or a route's targets;
    None when the key is absent."""

    path: str
    name: str
    values: dict[str, Any]
    children: list[Entry] | None = None


@dataclass
class ConfigSpec:
    providers: list[Entry]
    routes: list[Entry]
    teams: list[Entry]
    sections: frozenset[str]  # sections present in the document (what --prune manages)
    guardrails: list = field(default_factory=list)  # guardrails_section.GuardrailEntry

    def model_refs(self) -> set[tuple[str, str]]:
        return {(p.name, m.name) for p in self.providers for m in p.children or ()}


def _unknown_key(key: Any, allowed: list[str]) -> str:
    return f"unknown key (allowed: {', '.join(allowed)}){did_you_mean(str(key), allowed)}"


def _items(raw: Any, path: str, errors: Errors, *, named: bool = True) -> list[tuple[str, str, dict]]:
    """(item path, name, mapping) for each well-formed item of a list. Named items are
    addressed by name (`providers[upstream-a]`), the others by position."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.add(path, f"expected a list, got {type_name(raw)}")
        return []
    out, seen = [], set()
    for i, item in enumerate(raw):
        item_path = f"{path}[{i}]"
        if not isinstance(item, dict):
            errors.add(item_path, f"expected a mapping, got {type_name(item)}")
            continue
        name = ""
        if named:
            name = item.get("name")
            if not isinstance(name, str) or not name:
                problem = "required" if name is None else f"expected a non-empty string, got {type_name(name)}"
                errors.add(f"{item_path}.name", problem)
                continue
            item_path = f"{path}[{name}]"
            if name in seen:
                errors.add(item_path, "duplicate name; each name may appear only once here")
                continue
            seen.add(name)
        out.append((item_path, name, item))
    return out


def _values(item: dict, path: str, table: Table, errors: Errors, *, named: bool = True, children: str = "") -> dict:
    """The coerced values of the keys `item` sets, by model field; unknown keys and bad
    values are errors. A Group key holds a nested mapping of its own fields."""
    allowed = ["name"] * named + [*table] + [children] * bool(children)
    for key in item:
        if key not in allowed:
            errors.add(f"{path}.{key}", _unknown_key(key, allowed))
    values = {}
    for key, spec in table.items():
        if key not in item:
            if not isinstance(spec, Group) and spec.required:
                errors.add(f"{path}.{key}", "required")
            continue
        if isinstance(spec, Group):
            nested = {} if item[key] is None else item[key]
            if isinstance(nested, dict):
                values.update(_values(nested, f"{path}.{key}", spec.fields, errors, named=False))
            else:
                errors.add(f"{path}.{key}", f"expected a mapping, got {type_name(nested)}")
            continue
        try:
            values[spec.attr or key] = spec.coerce(item[key])
        except Invalid as exc:
            errors.add(f"{path}.{key}{exc.where}", exc.message)
    return values


def _check_rule_targets(route: Entry, errors: Errors) -> None:
    """Each model a conditional rule names must be one of the route's targets (the
    file's target list is the route's whole target list)."""
    labels = ["/".join(t.values["model"]) for t in route.children or ()]
    for i, rule in enumerate(route.values.get("rules", ())):
        for name in rule["targets"]:
            if name not in labels:
                errors.add(
                    f"{route.path}.rules",
                    f"rule {i + 1} names '{name}', which is not a target of this route "
                    f"(targets: {', '.join(labels) or 'none'}){did_you_mean(name, labels)}",
                )


def _check_embeddings(provider: Entry, errors: Errors) -> None:
    """A model may list `embeddings` only where its provider's API has an embeddings
    endpoint (OpenAI-compatible kinds, Ollama, mock; not Anthropic)."""
    spec = KINDS.get(provider.values.get("kind", ""))
    if spec is None or ADAPTERS[spec.wire].serves_embeddings:
        return
    for model in provider.children or ():
        if "embeddings" in model.values.get("capabilities", ()):
            errors.add(f"{model.path}.capabilities",
                       f"'embeddings' is not served by kind '{spec.kind}': {spec.label} has no embeddings endpoint")


def parse_config(data: Any) -> ConfigSpec:
    """Check the document's shape and types; raise ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(
            "", f"expected a mapping with keys {', '.join(SECTIONS)} at the top level, got {type_name(data)}"
        )
    errors = Errors()
    for key in data:
        if key not in SECTIONS:
            errors.add(str(key), _unknown_key(key, list(SECTIONS)))

    providers = []
    for path, name, item in _items(data.get("providers"), "providers", errors):
        entry = Entry(path, name, _values(item, path, PROVIDER_FIELDS, errors, children="models"))
        if "models" in item:
            entry.children = [
                Entry(mpath, mname, _values(m, mpath, MODEL_FIELDS, errors))
                for mpath, mname, m in _items(item["models"], f"{path}.models", errors)
            ]
            _check_embeddings(entry, errors)
        providers.append(entry)

    routes = []
    for path, name, item in _items(data.get("routes"), "routes", errors):
        entry = Entry(path, name, _values(item, path, ROUTE_FIELDS, errors, children="targets"), children=[])
        first_use: dict[tuple[str, str], int] = {}
        before = len(errors.items)
        for i, (tpath, _, t) in enumerate(_items(item.get("targets"), f"{path}.targets", errors, named=False)):
            target = Entry(tpath, "", _values(t, tpath, TARGET_FIELDS, errors, named=False))
            ref = target.values.get("model")
            if ref in first_use:
                errors.add(f"{tpath}.model", f"'{'/'.join(ref)}' is already {path}.targets[{first_use[ref]}]")
            elif ref:
                first_use[ref] = i
            entry.children.append(target)
        if len(errors.items) == before:  # else the target list is not known for sure
            _check_rule_targets(entry, errors)
        routes.append(entry)

    teams = []
    for path, name, item in _items(data.get("teams"), "teams", errors):
        entry = Entry(path, name, _values(item, path, {**TEAM_FIELDS, **TEAM_BUDGET_FIELDS}, errors))
        if "budget_period" in item and "budget_usd" not in item:
            errors.add(f"{path}.budget_period", "needs budget_usd (the amount per period)")
        teams.append(entry)
    guardrails = parse_guardrails(data.get("guardrails"), errors, _items)
    errors.raise_if_any()
    return ConfigSpec(providers, routes, teams, frozenset(k for k in SECTIONS if k in data), guardrails)
