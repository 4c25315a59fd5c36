"""Import: apply a parsed document to the database, by name, in one transaction.

An invalid document changes nothing, and a second import of the same document changes
nothing either (rows whose values already match are not saved).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models as djm
from django.db import transaction

from billing.budgets import disable_team_budget, set_team_budget
from billing.models import Budget, Team, UsageRecord, VirtualKey
from providers.models import Model, Provider
from routing.models import Route, RouteTarget
from routing.validation import TargetSpec, check_route_targets

from .guardrails_section import import_guardrails, prune_guardrails
from .parse import ConfigSpec, Entry, parse_config
from .report import Action, ImportReport
from .secret_masking import unmask_provider
from .schema import (
    MODEL_FIELDS,
    PROVIDER_FIELDS,
    ROUTE_FIELDS,
    TARGET_FIELDS,
    TEAM_FIELDS,
    Errors,
    Table,
    did_you_mean,
    flat_fields,
)

# A target's settings besides its model, in the order they are compared and saved.
TARGET_SETTINGS = [key for key in TARGET_FIELDS if key != "model"]


def import_config(data: Any, *, prune: bool = False, dry_run: bool = False) -> ImportReport:
    """Upsert the document's providers, models, routes and teams by name (a team's
    `budget_usd` upserts its budget for `budget_period`; absent leaves budgets alone).

    All or nothing: on any problem ConfigError is raised and nothing is saved.
    Provider model lists upsert (unlisted models are left alone); a route's target list
    replaces its targets; `api_key` absent or `[masked]` keeps the stored key (and a
    `[masked]` secret header the stored header). With `prune`, items
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
    """One import: validate and save every entry, collecting errors; raise them all
    before pruning so an invalid document never deletes or disables anything."""

    def __init__(self, spec: ConfigSpec, prune: bool, report: ImportReport) -> None:
        self.spec, self.prune, self.report = spec, prune, report
        self.errors = Errors()
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
        import_guardrails(self.spec.guardrails, self.errors, self.report, self.prune)
        self.errors.raise_if_any()
        if self.prune:
            self._prune()

    # Shared steps: assign -> full_clean -> save only if something changed, so a
    # repeated import leaves updated_at alone.
    def _prepare(self, obj: djm.Model, entry: Entry, table: Table) -> bool | None:
        """Apply the entry to obj and validate; return whether it changed (None = invalid)."""
        fields = flat_fields(table)
        keys = [k for k, (_, spec) in fields.items() if k in entry.values or not spec.keep_when_absent]
        before = {k: getattr(obj, k) for k in keys}
        for key in keys:
            setattr(obj, key, entry.values[key] if key in entry.values else _default(type(obj), key))
        if not self._clean(obj, entry.path, {attr: key for attr, (key, _) in fields.items()}):
            return None
        return obj.pk is None or any(getattr(obj, k) != before[k] for k in keys)

    def _clean(self, obj: djm.Model, path: str, keys: dict[str, str] | None = None) -> bool:
        """full_clean, its errors reported at the file's keys (`keys`: model field -> key)."""
        try:
            obj.full_clean()
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                where = path if field == NON_FIELD_ERRORS else f"{path}.{(keys or {}).get(field, field)}"
                self.errors.add(where, " ".join(messages))
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
            if not unmask_provider(entry, provider, self.errors):  # [masked] = the stored secret
                self.failed_providers.add(entry.name)
                continue
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
            if changed is None:
                continue
            action = self._save(team, changed)
            if "budget_usd" in entry.values and self._team_budget(team, entry) and action == Action.UNCHANGED:
                action = Action.UPDATED
            self.report.add("team", entry.name, action)

    def _team_budget(self, team: Team, entry: Entry) -> bool:
        """The team's budget for `budget_period` (default month): set to `budget_usd`, or
        switched off when it is null. Whether anything changed."""
        period = entry.values.get("budget_period", Budget.Period.MONTH)
        if entry.values["budget_usd"] is None:
            return disable_team_budget(team, period)
        try:
            return set_team_budget(team, entry.values["budget_usd"], period).changed
        except ValidationError as exc:
            keys = {"amount_usd": "budget_usd", "period": "budget_period"}
            for field, messages in exc.message_dict.items():
                self.errors.add(f"{entry.path}.{keys.get(field, 'budget_usd')}", " ".join(messages))
            return False

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
                    rules=route.rules,  # parse.py already named any rule target that is not a target
                    min_quality=route.min_quality,
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
            for key in TARGET_SETTINGS:
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
        wanted = [(model.pk, *(t.values[k] for k in TARGET_SETTINGS)) for t, model in resolved]
        if [(c.model_id, *(getattr(c, k) for k in TARGET_SETTINGS)) for c in current] == wanted:
            return False
        route.targets.exclude(model_id__in=[row[0] for row in wanted]).delete()
        by_model = {c.model_id: c for c in current}
        for order, (target, model) in enumerate(resolved):
            row = by_model.get(model.pk) or RouteTarget(route=route, model=model)
            row.order = order
            for key in TARGET_SETTINGS:
                setattr(row, key, target.values[key])
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
                    route.name, True, route.strategy, [TargetSpec(t.model, t.enabled, t.weight) for t in targets],
                    min_quality=route.min_quality,
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
        if "guardrails" in sections:
            prune_guardrails(self.spec.guardrails, self.report)
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


def _default(model: type[djm.Model], key: str) -> Any:
    return model._meta.get_field(key).get_default()


def _unknown_model(label: str, known: list[str], *, in_db: bool) -> str:
    hint = did_you_mean(label, known)
    shown = ", ".join(known[:20]) + (f", ... ({len(known) - 20} more)" if len(known) > 20 else "")
    if in_db:
        return (
            f"model '{label}' is not declared in this file and --prune would remove it "
            f"(declared: {shown or 'none'}){hint}"
        )
    return f"unknown model '{label}' (known: {shown or 'none'}){hint}"
