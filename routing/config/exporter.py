"""Export: the database as a config document that re-imports to the same state."""

from __future__ import annotations

from typing import Any

from django.db import models as djm

from billing.models import Team
from providers.models import Provider
from routing.models import Route, RouteTarget

from billing.budgets import primary_budget

from .guardrails_section import export_guardrails
from .secret_masking import export_key, export_options
from .schema import (
    MODEL_FIELDS,
    PROVIDER_FIELDS,
    ROUTE_FIELDS,
    TARGET_FIELDS,
    TEAM_BUDGET_FIELDS,
    TEAM_FIELDS,
    Group,
    Table,
)


def _export(
    obj: djm.Model, table: Table, *, named: bool = True, include_secrets: bool = False, strategy: str = ""
) -> dict:
    """One item, keys in table order; `named` items start with their `name`. A Group
    is a nested mapping, left out when none of its fields is exported. `strategy` is
    the route's, for the settings only shown when set or read by that strategy."""
    out: dict[str, Any] = {"name": obj.name} if named else {}
    for key, spec in table.items():
        if isinstance(spec, Group):
            if nested := _export(obj, spec.fields, named=False):
                out[key] = nested
            continue
        attr = spec.attr or key
        value = getattr(obj, attr)
        if spec.secret:  # masked unless include_secrets; references as they are
            if (value := export_key(obj, value, include_secrets)) is None:
                continue
            out[key] = value
            continue
        if spec.omit_empty and value in ("", None):
            continue
        default = type(obj)._meta.get_field(attr).get_default()
        if spec.omit_default and value == default and not (spec.used_by and spec.used_by == strategy):
            continue
        out[key] = spec.export(value)
    return out


def _export_team(team: Team) -> dict:
    """A team, with its budget when it has an enabled one (one per team in the file:
    monthly first, see billing.budgets.primary_budget)."""
    item = _export(team, TEAM_FIELDS)
    if budget := primary_budget(list(team.budgets.all())):
        item["budget_usd"] = TEAM_BUDGET_FIELDS["budget_usd"].export(budget.amount_usd)
        item["budget_period"] = budget.period
    return item


def export_config(*, include_secrets: bool = False) -> dict:
    """The whole configuration as plain data, deterministically ordered. Provider keys
    and secret headers appear as references or `[masked]` unless include_secrets
    (secret_masking.py). Virtual keys are not
    configuration (their secrets exist only at issue time) and are not exported."""
    providers = []
    for provider in Provider.objects.prefetch_related("models").order_by("name"):
        item = _export(provider, PROVIDER_FIELDS, include_secrets=include_secrets)
        if "options" in item:
            item["options"] = export_options(item["options"], include_secrets)
        item["models"] = [_export(m, MODEL_FIELDS) for m in sorted(provider.models.all(), key=lambda m: m.name)]
        providers.append(item)
    routes = []
    targets = djm.Prefetch("targets", RouteTarget.objects.select_related("model__provider").order_by("order", "id"))
    for route in Route.objects.prefetch_related(targets).order_by("name"):
        item = _export(route, ROUTE_FIELDS, strategy=route.strategy)
        item["targets"] = [_export(t, TARGET_FIELDS, named=False, strategy=route.strategy) for t in route.targets.all()]
        routes.append(item)
    teams = [_export_team(team) for team in Team.objects.prefetch_related("budgets").order_by("name")]
    doc = {"providers": providers, "routes": routes, "teams": teams}
    if guardrails := export_guardrails():  # absent when there are none: older documents read the same
        doc["guardrails"] = guardrails
    return doc
