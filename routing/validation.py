"""Checks on a route as a whole (route + its targets), shared by the admin and the
config importer so both refuse the same broken configurations with the same words."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from providers.models import Model


@dataclass(frozen=True)
class TargetSpec:
    model: Model
    enabled: bool = True
    weight: int = 1


def check_route_targets(
    route_name: str,
    route_enabled: bool,
    strategy: str,
    targets: Iterable[TargetSpec],
    rules: list | None = None,
    min_quality: int = 0,
) -> None:
    """Raise ValidationError with a readable message if the route could never serve."""
    targets = list(targets)
    _check_rule_targets(route_name, rules or [], targets)
    if route_enabled and strategy == "cost" and targets:
        good = [t for t in targets if t.enabled and t.model.quality_score >= min_quality]
        if not good:
            best = max(t.model.quality_score for t in targets)
            raise ValidationError(
                f"Route '{route_name}' uses the cost strategy with a minimum quality of {min_quality}, "
                f"but its best enabled target scores {best}: every request would be refused. "
                "Lower the minimum or add a better model."
            )
    models = [t.model for t in targets]
    if len({m.pk for m in models}) != len(models):
        raise ValidationError(f"Route '{route_name}' lists the same model twice.")
    usable = [t for t in targets if t.enabled and t.model.enabled and t.model.provider.enabled]
    if route_enabled and not usable:
        if any(t.enabled for t in targets):
            raise ValidationError(
                f"Route '{route_name}' is enabled but every enabled target points at a disabled model or provider."
            )
        raise ValidationError(f"Route '{route_name}' is enabled but has no enabled target. Add one, or disable the route.")
    if any(t.weight < 0 for t in targets):
        raise ValidationError("Weights cannot be negative.")


def _check_rule_targets(route_name: str, rules: list, targets: list[TargetSpec]) -> None:
    """Conditional rules may only name models that are targets of the route."""
    labels = {str(t.model) for t in targets}
    for i, rule in enumerate(rules):
        for name in rule.get("targets", []) if isinstance(rule, dict) else []:
            if name not in labels:
                raise ValidationError(
                    f"Route '{route_name}', rule {i + 1} names '{name}', which is not a target of this route "
                    f"(targets: {', '.join(sorted(labels)) or 'none'})."
                )
