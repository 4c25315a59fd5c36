"""A route as an editor is still typing it: the admin's change form values, checked
like a save would check them, turned into the RouteInfo the pipeline runs — without
saving anything. "Test this route" streams a draft over the playground websocket.

The draft carries the form's field values (strings, as a form posts them) and its
target rows: {"model": <model id>, "weight", "order", "enabled", "task_types"}.
Missing fields take the model's defaults. A draft of a saved route (`id`) shares that
route's circuit breakers; a new one gets breakers of its own (id 0).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.forms.models import modelform_factory
from django.utils import timezone

from gateway_project.errors import InvalidRequest
from providers.catalog import load_models
from providers.models import Model

from .catalog import RouteInfo, TargetInfo, route_info
from .models import Route
from .validation import TargetSpec, check_route_targets

FORM_FIELDS = [f.name for f in Route._meta.get_fields()
               if getattr(f, "editable", False) and f.concrete and f.name not in ("id", "created_at", "updated_at")]
_RouteForm = modelform_factory(Route, fields=FORM_FIELDS)


def draft_route(data: Any) -> RouteInfo:
    """RouteInfo of a draft, or InvalidRequest naming the first problem (sync: reads
    the models; call through run_db)."""
    if not isinstance(data, dict):
        raise InvalidRequest("A draft route is an object of the change form's values.", param="draft")
    fields = {k: v for k, v in (data.get("fields") or {}).items() if k in FORM_FIELDS}
    saved = Route.objects.filter(pk=data["id"]).first() if isinstance(data.get("id"), int) else None
    base = {f: _initial(saved, f) for f in FORM_FIELDS}
    values = {**base, **fields}
    values["name"] = values.get("name") or "draft"
    form = _RouteForm(values, instance=Route())
    if not form.is_valid():
        errors = {k: v for k, v in form.errors.items() if k != "name"}  # a taken name is fine for a test
        if errors:
            field, messages = next(iter(errors.items()))
            raise InvalidRequest(f"{field}: {' '.join(messages)}", param=field)
    route = form.instance  # filled in by validation, never saved
    route.created_at = saved.created_at if saved else timezone.now()
    route.id = saved.pk if saved else 0
    models = load_models()
    targets, specs = [], []
    rows = sorted((r for r in data.get("targets") or [] if isinstance(r, dict) and not r.get("delete")),
                  key=lambda r: _int(r.get("order"), 0))
    for i, row in enumerate(rows):
        model_id = _int(row.get("model"), None)
        if model_id is None:
            continue
        model = models.get(model_id)
        enabled = bool(row.get("enabled", True))
        weight = _int(row.get("weight"), 1)
        if model is not None and enabled:
            targets.append(TargetInfo(model, i, weight, frozenset(row.get("task_types") or ())))
        db_model = Model.objects.filter(pk=model_id).select_related("provider").first()
        if db_model is not None:
            specs.append(TargetSpec(db_model, enabled, weight))
    try:
        check_route_targets(route.name, True, route.strategy, specs, rules=route.rules, min_quality=route.min_quality)
    except ValidationError as exc:
        raise InvalidRequest(" ".join(exc.messages), param="targets") from None
    if not targets:
        raise InvalidRequest("The draft has no usable target (an enabled target whose model and provider are on).",
                             param="targets")
    return route_info(route, tuple(targets))


def _initial(route: Route | None, field: str) -> Any:
    value = getattr(route, field) if route is not None else Route._meta.get_field(field).get_default()
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value)
    return value


def _int(value: Any, default: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
