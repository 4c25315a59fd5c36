"""The `guardrails:` section: guardrails by name, each with its kind's parameters at
the top level of the item (see docs/config.md):

    - name: pii-default
      kind: pii
      stage: both            # input | output | both (default both)
      action: redact         # redact | block | flag (default flag)
      on_error: block        # block (fail closed, default) | allow (fail open)
      entities: [email, phone]
      restore: true
      scope: {routes: [chat-default], teams: [...], keys: [...]}   # omit for global
      order: 100
      enabled: true

Parameters are validated by the kind's own schema (guardrails.kinds), and the whole
guardrail by Guardrail.clean, the checks the admin runs. Scope names must exist (routes
and teams by name, keys by name or prefix, unambiguously) — in the database or earlier
in the same file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from billing.models import Team, VirtualKey
from guardrails.kinds import KINDS, ParamError
from guardrails.models import Action as GAction
from guardrails.models import Guardrail, OnError, Stage
from routing.models import Route

from .report import Action
from .schema import Errors, did_you_mean, type_name

BASE_KEYS = ("name", "description", "kind", "stage", "action", "on_error", "restore", "scope", "order", "enabled")
SCOPE_KEYS = ("routes", "teams", "keys")


@dataclass
class GuardrailEntry:
    path: str
    name: str
    values: dict[str, Any]
    params: dict[str, Any]
    scope: dict[str, list[str]] = field(default_factory=dict)


def _choice(value: Any, options: list[str], what: str) -> str:
    if not isinstance(value, str) or value not in options:
        shown = value if isinstance(value, str) else type_name(value)
        hint = did_you_mean(value, options) if isinstance(value, str) else ""
        raise ValueError(f"unknown {what} '{shown}' (known: {', '.join(options)}){hint}")
    return value


def parse_guardrails(raw: Any, errors: Errors, items) -> list[GuardrailEntry]:
    """Shape and parameter checks (no database); `items` is parse._items."""
    out = []
    for path, name, item in items(raw, "guardrails", errors):
        values: dict[str, Any] = {}
        kind_name = item.get("kind")
        if kind_name is None:
            errors.add(f"{path}.kind", "required")
            continue
        try:
            kind = KINDS[_choice(kind_name, list(KINDS), "guardrail kind")]
        except ValueError as exc:
            errors.add(f"{path}.kind", str(exc))
            continue
        values["kind"] = kind.name
        checks = {
            "stage": lambda v: _choice(v, Stage.values, "stage"),
            "action": lambda v: _choice(v, GAction.values, "action"),
            "on_error": lambda v: _choice(v, OnError.values, "on_error value"),
            "description": lambda v: v if isinstance(v, str) else _bad("a string", v),
            "restore": lambda v: v if isinstance(v, bool) else _bad("true or false", v),
            "enabled": lambda v: v if isinstance(v, bool) else _bad("true or false", v),
            "order": lambda v: v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 32767
            else _bad("an integer from 0 to 32767", v),
        }
        for key, check in checks.items():
            if key in item and item[key] is not None:
                try:
                    values[key] = check(item[key])
                except ValueError as exc:
                    errors.add(f"{path}.{key}", str(exc))
        params = {k: v for k, v in item.items() if k not in BASE_KEYS}
        unknown = [k for k in params if k not in kind.params]
        for key in unknown:
            allowed = [*BASE_KEYS, *kind.params]
            errors.add(f"{path}.{key}", f"unknown key for a {kind.name} guardrail (allowed: {', '.join(allowed)})"
                       f"{did_you_mean(str(key), allowed)}")
        if not unknown:
            try:
                params = kind.clean(params)
            except ParamError as exc:
                errors.add(f"{path}.{exc.param}" if exc.param else path, exc.message)
        scope = _scope(item.get("scope"), f"{path}.scope", errors)
        out.append(GuardrailEntry(path, name, values, params, scope))
    return out


def _bad(expected: str, value: Any) -> Any:
    raise ValueError(f"expected {expected}, got {type_name(value)}")


def _scope(raw: Any, path: str, errors: Errors) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.add(path, f"expected a mapping with keys {', '.join(SCOPE_KEYS)}, got {type_name(raw)}")
        return {}
    out = {}
    for key, names in raw.items():
        if key not in SCOPE_KEYS:
            errors.add(f"{path}.{key}", f"unknown key (allowed: {', '.join(SCOPE_KEYS)}){did_you_mean(str(key), list(SCOPE_KEYS))}")
            continue
        if names is None:
            names = []
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            errors.add(f"{path}.{key}", "expected a list of names")
            continue
        out[key] = names
    return out


def import_guardrails(entries: list[GuardrailEntry], errors: Errors, report, prune: bool) -> None:
    existing = {g.name: g for g in Guardrail.objects.prefetch_related("routes", "teams", "keys")}
    routes = {r.name: r for r in Route.objects.all()}
    teams = {t.name: t for t in Team.objects.all()}
    keys = list(VirtualKey.objects.all())
    for entry in entries:
        g = existing.get(entry.name) or Guardrail(name=entry.name)
        fields = ("description", "kind", "stage", "action", "on_error", "restore", "order", "enabled")
        before = {f: getattr(g, f) for f in fields} | {"params": g.params}
        for f in fields:
            setattr(g, f, entry.values.get(f, Guardrail._meta.get_field(f).get_default()))
        g.params = entry.params
        try:
            g.full_clean()
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                where = entry.path if name in ("__all__", "params") else f"{entry.path}.{name}"
                errors.add(where, " ".join(messages))
            continue
        scope = {
            "routes": _resolve(entry.scope.get("routes", []), routes, f"{entry.path}.scope.routes", "route", errors),
            "teams": _resolve(entry.scope.get("teams", []), teams, f"{entry.path}.scope.teams", "team", errors),
            "keys": _resolve_keys(entry.scope.get("keys", []), keys, f"{entry.path}.scope.keys", errors),
        }
        if any(v is None for v in scope.values()):
            continue
        changed = g.pk is None or before != ({f: getattr(g, f) for f in fields} | {"params": g.params})
        action = Action.CREATED if g.pk is None else Action.UPDATED if changed else Action.UNCHANGED
        if changed:
            g.save()
        for rel, objs in scope.items():
            manager = getattr(g, rel)
            if {o.pk for o in manager.all()} != {o.pk for o in objs}:
                manager.set(objs)
                if action == Action.UNCHANGED:
                    action = Action.UPDATED
        report.add("guardrail", entry.name, action)


def prune_guardrails(entries: list[GuardrailEntry], report) -> None:
    for g in Guardrail.objects.exclude(name__in=[e.name for e in entries]):
        g.delete()  # the violation log keeps the guardrail's name
        report.add("guardrail", g.name, Action.DELETED)


def _resolve(names: list[str], known: dict[str, Any], path: str, what: str, errors: Errors) -> list | None:
    missing = [n for n in names if n not in known]
    for n in missing:
        errors.add(path, f"unknown {what} '{n}'{did_you_mean(n, list(known))}")
    return None if missing else [known[n] for n in names]


def _resolve_keys(names: list[str], keys: list[VirtualKey], path: str, errors: Errors) -> list | None:
    out, ok = [], True
    for n in names:
        found = [k for k in keys if k.name == n or k.prefix == n]
        if len(found) != 1:
            errors.add(path, f"{'no' if not found else 'more than one'} virtual key named or prefixed '{n}'"
                       + ("; use its prefix" if found else ""))
            ok = False
        else:
            out.append(found[0])
    return out if ok else None


def export_guardrails() -> list[dict]:
    out = []
    for g in Guardrail.objects.prefetch_related("routes", "teams", "keys").order_by("order", "name"):
        item: dict[str, Any] = {"name": g.name}
        if g.description:
            item["description"] = g.description
        item.update(kind=g.kind, stage=g.stage, action=g.action, on_error=g.on_error)
        if g.restore:
            item["restore"] = True
        item.update({k: v for k, v in (g.params or {}).items()})
        scope = {"routes": sorted(r.name for r in g.routes.all()), "teams": sorted(t.name for t in g.teams.all()),
                 "keys": sorted(k.prefix for k in g.keys.all())}
        if any(scope.values()):
            item["scope"] = {k: v for k, v in scope.items() if v}
        if g.order != 100:
            item["order"] = g.order
        if not g.enabled:
            item["enabled"] = False
        out.append(item)
    return out
