"""Config as code: providers, models, routes and teams as one YAML document.

`import_config` upserts by name inside one transaction: an invalid document changes
nothing, and a second import of the same document changes nothing either.
`export_config` produces a document that re-imports to the same state.

The schema (docs/config.md) is the field tables below, one row per key, read by one
generic parser and one generic exporter so that import and export cannot drift apart.
Every error names where it is, e.g. `routes[chat-default].targets[1].model`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import yaml
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models as djm
from django.db import transaction

from billing.models import Team, UsageRecord, VirtualKey
from providers.kinds import KINDS
from providers.models import ENV_REF, Model, Provider
from providers.types import ErrorKind

from .models import Route, RouteTarget, Strategy
from .validation import TargetSpec, check_route_targets

SECTIONS = ("providers", "routes", "teams")


# --- errors and report ------------------------------------------------------------


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


class _Errors:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.items.append((path, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(*self.items[0], more=self.items[1:])


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DISABLED = "disabled"  # --prune: still referenced (keys, usage history, targets)
    DELETED = "deleted"  # --prune: nothing referenced it
    KEPT = "kept"  # --prune: referenced and cannot be disabled (teams)


ENTITIES = ("provider", "model", "route", "team")


@dataclass
class ImportReport:
    changes: list[tuple[str, str, Action]] = field(default_factory=list)  # (entity, name, action)
    dry_run: bool = False

    def add(self, entity: str, name: str, action: Action) -> None:
        self.changes.append((entity, name, action))

    def count(self, action: Action, entity: str | None = None) -> int:
        return sum(1 for e, _, a in self.changes if a == action and entity in (None, e))

    @property
    def created(self) -> int:
        return self.count(Action.CREATED)

    @property
    def updated(self) -> int:
        return self.count(Action.UPDATED)

    @property
    def unchanged(self) -> int:
        return self.count(Action.UNCHANGED)

    @property
    def changed(self) -> bool:
        return any(a not in (Action.UNCHANGED, Action.KEPT) for _, _, a in self.changes)

    def summary(self) -> list[str]:
        def counts(entity: str | None) -> str:
            parts = [f"{self.count(a, entity)} {a}" for a in (Action.CREATED, Action.UPDATED, Action.UNCHANGED)]
            for action in (Action.DELETED, Action.DISABLED, Action.KEPT):
                if n := self.count(action, entity):
                    parts.append(f"{n} {action}")
            return ", ".join(parts)

        lines = [f"{entity + 's:':<11}{counts(entity)}" for entity in ENTITIES]
        return [*lines, f"{'total:':<11}{counts(None)}"]


# --- field tables -------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, message: str, where: str = "") -> None:
        self.message, self.where = message, where


def _type(value: Any) -> str:
    names = {
        bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping"
    }
    return "nothing (null)" if value is None else names.get(type(value), type(value).__name__)


def _text(value: Any) -> str:
    if value is None:  # `description:` with nothing after it
        return ""
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {_type(value)}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(f"expected true or false, got {_type(value)}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid(f"expected an integer, got {_type(value)}")
    return value


def _optional_int(value: Any) -> int | None:
    return None if value is None else _int(value)


def _decimal(value: Any) -> Decimal:
    """Strings and numbers, exactly: a YAML float goes through str() (0.15, not 0.1499...)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise _Invalid(f"expected a number or a quoted decimal, got {_type(value)}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise _Invalid(f"not a number: {str(value)!r}") from None
    if not number.is_finite():
        raise _Invalid("must be a finite number")
    return number


def _json_object(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Invalid(f"expected a mapping, got {_type(value)}")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        raise _Invalid("must contain only JSON values (strings, numbers, booleans, lists, mappings)") from None
    return value


def _choice(known: Callable[[], Iterable[str]], what: str) -> Callable[[Any], str]:
    def coerce(value: Any) -> str:
        options = list(known())
        if not isinstance(value, str):
            raise _Invalid(f"expected a string, got {_type(value)}")
        if value not in options:
            raise _Invalid(f"unknown {what} '{value}' (known: {', '.join(options)})")
        return value

    return coerce


def _list_of(item: Callable[[Any], Any]) -> Callable[[Any], list]:
    def coerce(value: Any) -> list:
        if not isinstance(value, list):
            raise _Invalid(f"expected a list, got {_type(value)}")
        out = []
        for i, element in enumerate(value):
            try:
                out.append(item(element))
            except _Invalid as exc:
                raise _Invalid(exc.message, f"[{i}]{exc.where}") from None
        return out

    return coerce


def _model_ref(value: Any) -> tuple[str, str]:
    if not isinstance(value, str):
        raise _Invalid(f"expected 'provider/model', got {_type(value)}")
    provider, _, name = value.partition("/")
    if not provider or not name:
        raise _Invalid(f"expected 'provider/model', got '{value}'")
    return provider, name


def _decimal_str(value: Decimal) -> str:
    return format(value.normalize(), "f")  # 30.0 -> "30", never "3E+1"


def _money_str(value: Decimal) -> str:
    """At least cents, no trailing zeros beyond: 0.150000 -> "0.15", 4 -> "4.00", 0.000125 stays."""
    value = value.normalize()
    return format(value.quantize(Decimal("0.01")) if value.as_tuple().exponent > -2 else value, "f")


def _sorted_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_json(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Field:
    coerce: Callable[[Any], Any]
    required: bool = False
    export: Callable[[Any], Any] = lambda v: v
    omit_empty: bool = False  # exported only when not "" / null
    keep_when_absent: bool = False  # absent from the file = keep the stored value
    secret: bool = False  # exported only as an env: reference (or with include_secrets)


_DECIMAL = Field(_decimal, export=_decimal_str)
_PRICE = Field(_decimal, export=_money_str)

# Keys equal model field names (except a target's `model`). Absent keys take the
# model field's default, except where `keep_when_absent` says otherwise.
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
    "context_window": Field(_optional_int, omit_empty=True),
    "enabled": Field(_bool),
}
ROUTE_FIELDS: dict[str, Field] = {
    "description": Field(_text, omit_empty=True),
    "strategy": Field(_choice(lambda: Strategy.values, "strategy")),
    "timeout_s": _DECIMAL,
    "max_attempts": Field(_int),
    "backoff_base_ms": Field(_int),
    "backoff_max_ms": Field(_int),
    "retry_after_cap_s": _DECIMAL,
    "retry_on": Field(_list_of(_choice(lambda: [k.value for k in ErrorKind], "error kind"))),
    "enabled": Field(_bool),
}
TARGET_FIELDS: dict[str, Field] = {
    "model": Field(_model_ref, required=True),
    "weight": Field(_int),
    "enabled": Field(_bool),
}
TEAM_FIELDS: dict[str, Field] = {"description": Field(_text, omit_empty=True)}


def _default(model: type[djm.Model], key: str) -> Any:
    return model._meta.get_field(key).get_default()


# --- parsing (no database) ----------------------------------------------------------


@dataclass
class Entry:
    """One item of the document: its path for messages, name, and coerced values
    (only the keys the file sets). `children` are a provider's models or a route's
    targets; None when the key is absent."""

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

    def model_refs(self) -> set[tuple[str, str]]:
        return {(p.name, m.name) for p in self.providers for m in p.children or ()}


def _unknown_key(key: Any, allowed: list[str]) -> str:
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown key (allowed: {', '.join(allowed)}){hint}"


def _items(raw: Any, path: str, errors: _Errors, *, named: bool = True) -> list[tuple[str, str, dict]]:
    """(item path, name, mapping) for each well-formed item of a list."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.add(path, f"expected a list, got {_type(raw)}")
        return []
    out, seen = [], set()
    for i, item in enumerate(raw):
        item_path = f"{path}[{i}]"
        if not isinstance(item, dict):
            errors.add(item_path, f"expected a mapping, got {_type(item)}")
            continue
        name = ""
        if named:
            name = item.get("name")
            if not isinstance(name, str) or not name:
                problem = "required" if name is None else f"expected a non-empty string, got {_type(name)}"
                errors.add(f"{item_path}.name", problem)
                continue
            item_path = f"{path}[{name}]"
            if name in seen:
                errors.add(item_path, "duplicate name; each name may appear only once here")
                continue
            seen.add(name)
        out.append((item_path, name, item))
    return out


def _values(
    item: dict, path: str, table: dict[str, Field], errors: _Errors, *, named: bool = True, children: str = ""
) -> dict:
    allowed = ["name"] * named + [*table] + [children] * bool(children)
    for key in item:
        if key not in allowed:
            errors.add(f"{path}.{key}", _unknown_key(key, allowed))
    values = {}
    for key, spec in table.items():
        if key not in item:
            if spec.required:
                errors.add(f"{path}.{key}", "required")
            continue
        try:
            values[key] = spec.coerce(item[key])
        except _Invalid as exc:
            errors.add(f"{path}.{key}{exc.where}", exc.message)
    return values


def parse_config(data: Any) -> ConfigSpec:
    """Check the document's shape and types; raise ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError("", f"expected a mapping with keys {', '.join(SECTIONS)} at the top level, got {_type(data)}")
    errors = _Errors()
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
        providers.append(entry)

    routes = []
    for path, name, item in _items(data.get("routes"), "routes", errors):
        entry = Entry(path, name, _values(item, path, ROUTE_FIELDS, errors, children="targets"), children=[])
        first_use: dict[tuple[str, str], int] = {}
        for i, (tpath, _, t) in enumerate(_items(item.get("targets"), f"{path}.targets", errors, named=False)):
            target = Entry(tpath, "", _values(t, tpath, TARGET_FIELDS, errors, named=False))
            ref = target.values.get("model")
            if ref in first_use:
                errors.add(f"{tpath}.model", f"'{'/'.join(ref)}' is already {path}.targets[{first_use[ref]}]")
            elif ref:
                first_use[ref] = i
            entry.children.append(target)
        routes.append(entry)

    teams = [
        Entry(path, name, _values(item, path, TEAM_FIELDS, errors))
        for path, name, item in _items(data.get("teams"), "teams", errors)
    ]
    errors.raise_if_any()
    return ConfigSpec(providers, routes, teams, frozenset(k for k in SECTIONS if k in data))


# --- import (one transaction) -------------------------------------------------------


def import_config(data: Any, *, prune: bool = False, dry_run: bool = False) -> ImportReport:
    """Upsert the document's providers, models, routes and teams by name.

    All or nothing: on any problem ConfigError is raised and nothing is saved.
    Provider model lists upsert (unlisted models are left alone); a route's target list
    replaces its targets; `api_key` absent keeps the stored key. With `prune`, items
    absent from the sections present in the document are deleted, or disabled where
    keys, usage history or targets still refer to them. `dry_run` validates and
    reports, then rolls back.
    """
    spec = parse_config(data)
    report = ImportReport(dry_run=dry_run)
    with transaction.atomic():
        _Importer(spec, prune, report).run()
        if dry_run:
            transaction.set_rollback(True)
    return report


class _Importer:
    def __init__(self, spec: ConfigSpec, prune: bool, report: ImportReport) -> None:
        self.spec, self.prune, self.report = spec, prune, report
        self.errors = _Errors()
        # Items that failed validation: what refers to them is skipped, not re-reported.
        self.failed_providers: set[str] = set()
        self.failed_models: set[tuple[str, str]] = set()
        # Models this import made unusable (model or provider switched off): routes
        # outside the document that use them are re-checked.
        self.unusable: set[int] = set()

    def run(self) -> None:
        self._providers()
        self._teams()
        self._routes()
        self._check_routes_outside_file()
        self.errors.raise_if_any()
        if self.prune:
            self._prune()

    # Shared steps: assign -> full_clean -> save only if something changed, so a
    # repeated import leaves updated_at alone.
    def _prepare(self, obj: djm.Model, entry: Entry, table: dict[str, Field]) -> bool | None:
        """Apply the entry to obj and validate; return whether it changed (None = invalid)."""
        keys = [k for k, spec in table.items() if k in entry.values or not spec.keep_when_absent]
        before = {k: getattr(obj, k) for k in keys}
        for key in keys:
            setattr(obj, key, entry.values[key] if key in entry.values else _default(type(obj), key))
        if not self._clean(obj, entry.path):
            return None
        return obj.pk is None or any(getattr(obj, k) != before[k] for k in keys)

    def _clean(self, obj: djm.Model, path: str) -> bool:
        try:
            obj.full_clean()
        except ValidationError as exc:
            for key, messages in exc.message_dict.items():
                self.errors.add(path if key == NON_FIELD_ERRORS else f"{path}.{key}", " ".join(messages))
            return False
        return True

    @staticmethod
    def _save(obj: djm.Model, changed: bool) -> Action:
        action = Action.CREATED if obj.pk is None else Action.UPDATED if changed else Action.UNCHANGED
        if changed:
            obj.save()
        return action

    def _providers(self) -> None:
        existing = {p.name: p for p in Provider.objects.all()}
        for entry in self.spec.providers:
            provider = existing.get(entry.name) or Provider(name=entry.name)
            was_enabled = provider.pk is not None and provider.enabled
            changed = self._prepare(provider, entry, PROVIDER_FIELDS)
            if changed is None:
                self.failed_providers.add(entry.name)
                continue
            self.report.add("provider", entry.name, self._save(provider, changed))
            if was_enabled and not provider.enabled:
                self.unusable.update(provider.models.values_list("pk", flat=True))
            if entry.children is not None:
                self._models(provider, entry.children)

    def _models(self, provider: Provider, entries: list[Entry]) -> None:
        existing = {m.name: m for m in provider.models.all()}
        for entry in entries:
            model = existing.get(entry.name) or Model(provider=provider, name=entry.name)
            was_enabled = model.pk is not None and model.enabled
            changed = self._prepare(model, entry, MODEL_FIELDS)
            if changed is None:
                self.failed_models.add((provider.name, entry.name))
                continue
            self.report.add("model", f"{provider.name}/{entry.name}", self._save(model, changed))
            if was_enabled and not model.enabled:
                self.unusable.add(model.pk)

    def _teams(self) -> None:
        existing = {t.name: t for t in Team.objects.all()}
        for entry in self.spec.teams:
            team = existing.get(entry.name) or Team(name=entry.name)
            changed = self._prepare(team, entry, TEAM_FIELDS)
            if changed is not None:
                self.report.add("team", entry.name, self._save(team, changed))

    def _routes(self) -> None:
        models = {(m.provider.name, m.name): m for m in Model.objects.select_related("provider")}
        existing = {r.name: r for r in Route.objects.all()}
        for entry in self.spec.routes:
            route = existing.get(entry.name) or Route(name=entry.name)
            changed = self._prepare(route, entry, ROUTE_FIELDS)
            resolved = self._resolve_targets(entry, models)
            if changed is None or resolved is None:
                continue
            try:
                check_route_targets(
                    route.name,
                    route.enabled,
                    route.strategy,
                    [TargetSpec(model, t.values["enabled"], t.values["weight"]) for t, model in resolved],
                )
            except ValidationError as exc:
                self.errors.add(f"{entry.path}.targets", " ".join(exc.messages))
                continue
            action = self._save(route, changed)
            if self._sync_targets(route, resolved) and action == Action.UNCHANGED:
                action = Action.UPDATED
            self.report.add("route", entry.name, action)

    def _resolve_targets(self, entry: Entry, models: dict[tuple[str, str], Model]) -> list[tuple[Entry, Model]] | None:
        # With --prune and a providers section, only models declared in the file are
        # known: the others are about to be removed.
        declared = self.spec.model_refs() if self.prune and "providers" in self.spec.sections else None
        known = sorted("/".join(ref) for ref in (declared if declared is not None else models))
        resolved, ok = [], True
        for target in entry.children or ():
            for key in ("weight", "enabled"):
                target.values.setdefault(key, _default(RouteTarget, key))
            ref = target.values["model"]
            if ref[0] in self.failed_providers or ref in self.failed_models:
                ok = False  # already reported at the model or provider
                continue
            model = models.get(ref)
            if model is None or (declared is not None and ref not in declared):
                self.errors.add(f"{target.path}.model", _unknown_model("/".join(ref), known, in_db=model is not None))
                ok = False
                continue
            resolved.append((target, model))
        return resolved if ok else None

    def _sync_targets(self, route: Route, resolved: list[tuple[Entry, Model]]) -> bool:
        """Make the route's targets exactly the list, order = position. Return whether
        anything changed (same sequence in the same relative order = no write)."""
        current = list(route.targets.order_by("order", "id"))
        wanted = [(model.pk, t.values["weight"], t.values["enabled"]) for t, model in resolved]
        if [(c.model_id, c.weight, c.enabled) for c in current] == wanted:
            return False
        route.targets.exclude(model_id__in=[pk for pk, _, _ in wanted]).delete()
        by_model = {c.model_id: c for c in current}
        for order, (target, model) in enumerate(resolved):
            row = by_model.get(model.pk) or RouteTarget(route=route, model=model)
            row.order, row.weight, row.enabled = order, target.values["weight"], target.values["enabled"]
            if self._clean(row, target.path):
                row.save()
        return True

    def _check_routes_outside_file(self) -> None:
        if not self.unusable or (self.prune and "routes" in self.spec.sections):
            return  # with --prune those routes are about to be disabled or deleted
        in_file = [e.name for e in self.spec.routes]
        affected = (
            Route.objects.filter(enabled=True, targets__model_id__in=self.unusable).exclude(name__in=in_file).distinct()
        )
        for route in affected:
            targets = route.targets.select_related("model__provider")
            try:
                check_route_targets(
                    route.name, True, route.strategy, [TargetSpec(t.model, t.enabled, t.weight) for t in targets]
                )
            except ValidationError as exc:
                self.errors.add(
                    f"routes[{route.name}]",
                    f"{' '.join(exc.messages)} (the route is not in this file; the file disables the "
                    "models or providers it uses)",
                )

    # --prune: delete what nothing refers to; otherwise disable (history and keys keep
    # pointing at real rows, and a key's route list never silently widens).
    def _prune(self) -> None:
        sections = self.spec.sections
        if "routes" in sections:
            key_routes = VirtualKey.allowed_routes.through.objects
            for route in Route.objects.exclude(name__in=[e.name for e in self.spec.routes]):
                in_use = (
                    key_routes.filter(route_id=route.pk).exists()
                    or UsageRecord.objects.filter(route_id=route.pk).exists()
                )
                self._retire("route", route.name, route, in_use)
        if "providers" in sections:
            declared = self.spec.model_refs()
            for model in Model.objects.select_related("provider"):
                if (model.provider.name, model.name) in declared:
                    continue
                in_use = model.route_targets.exists() or UsageRecord.objects.filter(model_id=model.pk).exists()
                self._retire("model", str(model), model, in_use)
            for provider in Provider.objects.exclude(name__in=[e.name for e in self.spec.providers]):
                in_use = provider.models.exists() or UsageRecord.objects.filter(provider_id=provider.pk).exists()
                self._retire("provider", provider.name, provider, in_use)
        if "teams" in sections:
            for team in Team.objects.exclude(name__in=[e.name for e in self.spec.teams]):
                if team.keys.exists() or UsageRecord.objects.filter(team_id=team.pk).exists():
                    self.report.add("team", team.name, Action.KEPT)  # teams have no on/off switch
                else:
                    team.delete()
                    self.report.add("team", team.name, Action.DELETED)

    def _retire(self, entity: str, name: str, obj: Route | Model | Provider, in_use: bool) -> None:
        if not in_use:
            obj.delete()
            action = Action.DELETED
        elif obj.enabled:
            obj.enabled = False
            obj.save(update_fields=["enabled", "updated_at"])
            action = Action.DISABLED
        else:
            action = Action.UNCHANGED
        self.report.add(entity, name, action)


def _unknown_model(label: str, known: list[str], *, in_db: bool) -> str:
    close = difflib.get_close_matches(label, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    shown = ", ".join(known[:20]) + (f", ... ({len(known) - 20} more)" if len(known) > 20 else "")
    if in_db:
        return (
            f"model '{label}' is not declared in this file and --prune would remove it "
            f"(declared: {shown or 'none'}){hint}"
        )
    return f"unknown model '{label}' (known: {shown or 'none'}){hint}"


# --- export ---------------------------------------------------------------------------


def _export(obj: djm.Model, table: dict[str, Field], *, include_secrets: bool = False) -> dict:
    out: dict[str, Any] = {"name": obj.name}
    for key, spec in table.items():
        value = getattr(obj, key)
        if spec.omit_empty and value in ("", None):
            continue
        if spec.secret and not (ENV_REF.match(value) or include_secrets):
            continue  # a literal secret: omitted = "keep the current key" on import
        out[key] = spec.export(value)
    return out


def export_config(*, include_secrets: bool = False) -> dict:
    """The whole configuration as plain data, deterministically ordered. Provider keys
    appear only as `env:` references unless include_secrets. Virtual keys are not
    configuration (their secrets exist only at issue time) and are not exported."""
    providers = []
    for provider in Provider.objects.prefetch_related("models").order_by("name"):
        item = _export(provider, PROVIDER_FIELDS, include_secrets=include_secrets)
        item["models"] = [_export(m, MODEL_FIELDS) for m in sorted(provider.models.all(), key=lambda m: m.name)]
        providers.append(item)
    routes = []
    targets = djm.Prefetch("targets", RouteTarget.objects.select_related("model__provider").order_by("order", "id"))
    for route in Route.objects.prefetch_related(targets).order_by("name"):
        item = _export(route, ROUTE_FIELDS)
        item["targets"] = [
            {"model": f"{t.model.provider.name}/{t.model.name}", "weight": t.weight, "enabled": t.enabled}
            for t in route.targets.all()
        ]
        routes.append(item)
    teams = [_export(team, TEAM_FIELDS) for team in Team.objects.order_by("name")]
    return {"providers": providers, "routes": routes, "teams": teams}


# --- YAML -------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys (a silent last-one-wins hides typos) and
    keeps date-like scalars as strings."""


def _mapping_without_duplicates(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool)):
            continue  # unhashable keys are rejected later as unknown keys
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key '{key}'", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_config_text(text: str) -> Any:
    """Parse YAML; syntax errors become ConfigError (position only: the offending
    line is not quoted back, it may hold a secret)."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError("", f"invalid YAML: {exc.problem or exc.context}{where}") from None
    except yaml.YAMLError as exc:
        raise ConfigError("", f"invalid YAML: {type(exc).__name__}") from None


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)  # indent lists under their key


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _list_representer(dumper: yaml.SafeDumper, value: list) -> yaml.SequenceNode:
    # Short lists of words (retry_on) read best on one line.
    flow = bool(value) and all(isinstance(v, str) and "\n" not in v for v in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow or None)


_Dumper.add_representer(str, _str_representer)
_Dumper.add_representer(list, _list_representer)

HEADER = (
    "# LLM gateway configuration (schema: docs/config.md).\n"
    "# Apply with: python manage.py gateway_import FILE.yaml\n"
    "# Providers without api_key keep their stored key on import.\n"
)


def dump_config(data: dict) -> str:
    """YAML text for export_config() output: stable, one blank line between sections."""
    sections = [
        yaml.dump({key: data[key]}, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
        for key in SECTIONS
        if key in data
    ]
    return HEADER + "\n" + "\n".join(sections)
