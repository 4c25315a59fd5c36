"""What the audit trail records: the audited models and fields, their values as JSON,
and the masking of secrets (docs/security/audit.md, "What is recorded").

Values are taken twice: *raw* (comparable, JSON-able, held in memory only, for the
diff) and *shown* (what is written: secrets replaced by "[secret: ...]" markers).
A secret is never written, not even hashed: only whether it was set, changed or
cleared.

Not audited, on purpose (bookkeeping the gateway writes itself, some on the hot
path): timestamps (created_at/updated_at), a key's hash and hash scheme (derived from
its secret; rehashing it with the pepper on first use is not a change of the key), a user's last_login, a model's
price_effective_from (the price change itself is audited), usage, rollups, health
checks, breakers, heartbeats, alerts sent, cache entries, and the price history rows
Model.save writes by itself. Scheduled prices (rows an editor adds) are audited.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.db import models

TIMESTAMPS = frozenset({"created_at", "updated_at"})
SET, CHANGED, CLEARED, KEPT = "[secret: set]", "[secret: changed]", "[secret: cleared]", "[secret]"
# Secret references (not secrets): an environment variable's name, a mounted file, a
# secret store's path (providers.secret_refs); shown as they are.
ENV_REFERENCE = re.compile(r"^env:[A-Za-z_][A-Za-z0-9_]*$")
FALLBACK_REFERENCE = re.compile(r"^(file:/\S{1,400}|vault:\S{1,400})$")


def is_reference(value: str) -> bool:
    if value.startswith("env:"):
        return bool(ENV_REFERENCE.match(value))
    try:
        from providers.secret_refs import is_reference as provider_reference
    except ImportError:  # pragma: no cover - an older providers app
        return bool(FALLBACK_REFERENCE.match(value))
    return provider_reference(value) and len(value) <= 500 and not any(c.isspace() for c in value)


@dataclass(frozen=True)
class Audited:
    """One audited model. Fields: every concrete field but `exclude`, plus `m2m`."""

    label: str  # app_label.ModelName
    exclude: frozenset[str] = TIMESTAMPS
    secrets: frozenset[str] = frozenset()  # masked whole (references shown)
    secret_urls: frozenset[str] = frozenset()  # masked but for scheme and host (webhooks carry tokens in the path)
    m2m: tuple[str, ...] = ()
    when: Callable[[dict], bool] | None = None  # audit only rows whose raw snapshot passes this
    object_id: Callable[[models.Model], str] | None = None
    describe: Callable[[models.Model], str] | None = None
    model: type[models.Model] | None = field(default=None, compare=False)

    def fields(self) -> list[models.Field]:
        assert self.model is not None
        return [f for f in self.model._meta.concrete_fields
                if f.name not in self.exclude and not (f.primary_key and isinstance(f, models.AutoField))]

    @property
    def m2m_fields(self) -> list[models.ManyToManyField]:
        assert self.model is not None
        return [self.model._meta.get_field(name) for name in self.m2m]


def _scheduled_price(row: dict) -> bool:
    return row.get("source") == "scheduled"


def _token_id(token) -> str:
    return (token.key or "")[:8]  # the key is the primary key: never record it whole


def _token_repr(token) -> str:
    return f"API token {_token_id(token)}… of user #{token.user_id}"


AUDITED: list[Audited] = [
    Audited("providers.Provider", secrets=frozenset({"api_key"})),
    Audited("providers.Model", exclude=TIMESTAMPS | {"price_effective_from"}),
    Audited("providers.ModelPrice", exclude=frozenset({"created_at"}), when=_scheduled_price),
    # A route's cache policy is its cache_* fields; cache_epoch rises on "purge the cache".
    Audited("routing.Route"),
    Audited("routing.RouteTarget"),
    Audited("guardrails.Guardrail", m2m=("routes", "teams", "keys")),
    Audited("billing.Team"),
    Audited("billing.VirtualKey", exclude=TIMESTAMPS | {"key_hash", "hash_scheme"}, m2m=("allowed_routes",)),
    Audited("billing.Budget", secret_urls=frozenset({"webhook_url"})),
    # Roles are groups; who holds a role is User.groups.
    Audited("auth.Group", m2m=("permissions",)),
    Audited("auth.User", exclude=frozenset({"last_login", "date_joined"}), secrets=frozenset({"password"}),
            m2m=("groups", "user_permissions")),
    Audited("authtoken.Token", exclude=frozenset({"key"}), object_id=_token_id, describe=_token_repr),
]

_by_model: dict[type[models.Model], Audited] = {}


def load() -> dict[type[models.Model], Audited]:
    """Resolve the labels (installed apps only), proxies included (they send their own
    signals: TokenProxy in the admin, TargetHealth)."""
    _by_model.clear()
    for spec in AUDITED:
        try:
            model = apps.get_model(spec.label)
        except LookupError:
            continue
        resolved = Audited(**{**spec.__dict__, "model": model})
        for candidate in apps.get_models():
            if candidate is model or (candidate._meta.proxy and candidate._meta.concrete_model is model):
                _by_model[candidate] = resolved
    return _by_model


def spec_for(model: type[models.Model]) -> Audited | None:
    return _by_model.get(model)


def registered() -> dict[type[models.Model], Audited]:
    return _by_model


def object_type(model: type[models.Model]) -> str:
    return model._meta.concrete_model._meta.label_lower


def object_id(spec: Audited, instance: models.Model) -> str:
    if spec.object_id is not None:
        return spec.object_id(instance)
    return "" if instance.pk is None else str(instance.pk)


def describe(spec: Audited, instance: models.Model) -> str:
    try:
        text = spec.describe(instance) if spec.describe is not None else str(instance)
    except Exception:  # a __str__ that needs a row that is gone (cascades)
        text = f"{instance._meta.verbose_name} #{instance.pk}"
    return text[:200]


# --- raw values -------------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """JSON-able, deterministic (what json.loads(json.dumps(...)) gives back)."""
    return json.loads(dumps(value))


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | bytes | memoryview):
        return str(value) if not isinstance(value, bytes | memoryview) else bytes(value).hex()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str)
    return str(value)


def raw_value(f: models.Field, instance: models.Model) -> Any:
    value = getattr(instance, f.attname)
    if value is None:
        return None
    if isinstance(f, models.DecimalField):
        try:
            number = Decimal(f.to_python(value))
            return str(number.quantize(Decimal(1).scaleb(-f.decimal_places))) if number.is_finite() else str(number)
        except Exception:
            return str(value)
    if isinstance(f, models.DateTimeField):
        value = f.to_python(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if isinstance(f, models.DateField | models.TimeField):
        return f.to_python(value).isoformat()
    if isinstance(f, models.JSONField):
        return canonical(value)
    if isinstance(f, models.BooleanField):
        return bool(value)
    if isinstance(f, models.IntegerField | models.BigIntegerField | models.SmallIntegerField) and not isinstance(
        value, bool
    ):
        try:
            return int(value)
        except (TypeError, ValueError):
            return str(value)
    if isinstance(f, models.ForeignKey | models.OneToOneField):
        return value if isinstance(value, int | str) else str(value)
    return value if isinstance(value, str | int | float | bool) else str(value)


def has_expression(spec: Audited, instance: models.Model) -> bool:
    """F() and friends assigned to a field: the value is only known after the save."""
    return any(hasattr(getattr(instance, f.attname, None), "resolve_expression") for f in spec.fields())


def snapshot(spec: Audited, instance: models.Model) -> dict[str, Any]:
    """The audited concrete fields' raw values (no many-to-many: see m2m_ids)."""
    return {f.name: raw_value(f, instance) for f in spec.fields()}


def m2m_ids(instance: models.Model, field_name: str) -> list:
    """The ids an instance's many-to-many field holds now (one query)."""
    f = instance._meta.get_field(field_name)
    through = f.remote_field.through
    source, target = f.m2m_field_name(), f.m2m_reverse_field_name()
    return sorted(through._base_manager.filter(**{source: instance.pk}).values_list(f"{target}_id", flat=True))


# --- shown values (masked) -------------------------------------------------------------


def _related_labels(model: type[models.Model], ids: Iterable) -> dict:
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    if model._meta.label_lower == "auth.permission":
        rows = model._base_manager.filter(pk__in=ids).values_list("pk", "content_type__app_label", "codename")
        return {pk: f"{app}.{code}" for pk, app, code in rows}
    spec = spec_for(model)
    labels = {}
    qs = model._base_manager.filter(pk__in=ids)
    fks = [f.name for f in model._meta.concrete_fields if isinstance(f, models.ForeignKey)]
    if fks:
        qs = qs.select_related(*fks)
    for obj in qs:
        labels[obj.pk] = describe(spec, obj) if spec is not None else str(obj)[:200]
    return labels


def _ref(ident: Any, label: str | None) -> dict:
    return {"id": ident, "name": label} if label is not None else {"id": ident}


def _is_sensitive_key(key: str) -> bool:
    k = key.lower().replace("-", "_")
    return (
        any(word in k for word in ("secret", "password", "passwd", "credential"))
        or k.endswith(("token", "api_key", "apikey", "access_key", "private_key", "authorization", "cookie", "bearer"))
        or k in ("auth", "key", "sig", "signature")
    )


def _mask_json(before: Any, after: Any, *, headers: bool = False) -> tuple[Any, Any]:
    """Two versions of one JSON value with secret-looking keys (and every value under a
    "headers" key) masked; a masked value says whether it was set, changed or cleared."""
    if isinstance(before, dict) or isinstance(after, dict):
        bd = before if isinstance(before, dict) else {}
        ad = after if isinstance(after, dict) else {}
        out_b, out_a = {}, {}
        for k in sorted({*bd, *ad}, key=str):
            if headers or _is_sensitive_key(str(k)):
                mb, ma = _secret_pair(bd.get(k), ad.get(k))
            else:
                mb, ma = _mask_json(bd.get(k), ad.get(k), headers=str(k).lower() == "headers")
            if k in bd:
                out_b[k] = mb
            if k in ad:
                out_a[k] = ma
        return (out_b if isinstance(before, dict) else _mask_json(before, None, headers=headers)[0],
                out_a if isinstance(after, dict) else _mask_json(None, after, headers=headers)[1])
    if isinstance(before, list) or isinstance(after, list):
        bl = before if isinstance(before, list) else []
        al = after if isinstance(after, list) else []
        pairs = [_mask_json(bl[i] if i < len(bl) else None, al[i] if i < len(al) else None, headers=headers)
                 for i in range(max(len(bl), len(al)))]
        return ([p[0] for p in pairs[: len(bl)]] if isinstance(before, list) else before,
                [p[1] for p in pairs[: len(al)]] if isinstance(after, list) else after)
    if headers:
        return _secret_pair(before, after)
    return before, after


def _secret_pair(before: Any, after: Any) -> tuple[Any, Any]:
    """Masks for one secret value, before and after: empty and references (env:NAME,
    file:/path) are shown; anything else is "[secret]", or on the after side
    "[secret: set]" / "[secret: changed]" / "[secret: cleared]"."""

    def shown(v: Any) -> Any:
        if v is None or v == "":
            return v
        if isinstance(v, str) and is_reference(v):
            return v
        return KEPT

    b, a = shown(before), shown(after)
    if before == after:
        return b, a
    if a == KEPT:
        a = CHANGED if b == KEPT else SET
    elif (after is None or after == "") and b == KEPT:
        a = CLEARED
    return b, a


def _url_parts(v: Any, whole: bool) -> tuple[Any, str]:
    """(shown text, the secret part) of a URL: scheme://host[:port] kept, credentials and
    query (and with `whole` the path) masked."""
    if not isinstance(v, str) or not v:
        return v, ""
    try:
        parts = urlsplit(v)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return KEPT, v
    base = f"{parts.scheme}://{host}{f':{port}' if port else ''}"
    userinfo = parts.netloc.rpartition("@")[0]
    secret = "|".join([userinfo, parts.query, parts.fragment, parts.path if whole else ""])
    text = base + ("/…" if whole and parts.path.strip("/") else "" if whole else parts.path)
    if secret.strip("|/"):
        text += f" {KEPT}"
    return text, secret


def _url_pair(before: Any, after: Any, *, whole: bool) -> tuple[Any, Any]:
    (b, b_secret), (a, a_secret) = _url_parts(before, whole), _url_parts(after, whole)
    if before != after and isinstance(a, str) and a.endswith(KEPT):
        marker = SET if not b_secret.strip("|/") else CHANGED if b_secret != a_secret else KEPT
        a = a[: -len(KEPT)] + marker
    elif before != after and isinstance(a, str) and b_secret.strip("|/") and not a_secret.strip("|/"):
        a = f"{a} {CLEARED}"
    return b, a


def shown_pair(spec: Audited, name: str, before: Any, after: Any, instance: models.Model | None = None
               ) -> tuple[Any, Any]:
    """One field's before/after as written in the entry (masked). `instance`: its
    cached related objects name a foreign key without a query."""
    assert spec.model is not None
    if name in spec.secrets:
        return _secret_pair(before, after)
    if name in spec.m2m:
        rel = spec.model._meta.get_field(name).remote_field.model
        labels = _related_labels(rel, {*(before or []), *(after or [])})
        conv = (lambda ids: None if ids is None else [_ref(i, labels.get(i)) for i in ids])  # noqa: E731
        return conv(before), conv(after)
    f = spec.model._meta.get_field(name)
    if name in spec.secret_urls:
        return _url_pair(before, after, whole=True)
    if isinstance(f, models.URLField):
        return _url_pair(before, after, whole=False)
    if isinstance(f, models.JSONField):
        return _mask_json(before, after)
    if isinstance(f, models.ForeignKey | models.OneToOneField):
        labels = {}
        if instance is not None and f.is_cached(instance) and (related := getattr(instance, f.name)) is not None:
            rel_spec = spec_for(type(related))
            labels[related.pk] = describe(rel_spec, related) if rel_spec is not None else str(related)[:200]
        labels.update(_related_labels(f.remote_field.model, {i for i in (before, after) if i not in labels}))
        conv = (lambda i: None if i is None else _ref(i, labels.get(i)))  # noqa: E731
        return conv(before), conv(after)
    return before, after


def render(spec: Audited, before: dict | None, after: dict | None, instance: models.Model | None = None
           ) -> tuple[dict | None, dict | None]:
    """Raw snapshots -> the entry's shown before/after: on a change only the fields that
    differ; on a create (before None) or delete (after None) every field."""
    if before is not None and after is not None:
        names = [n for n in after if n in before and before[n] != after[n]]
        names += [n for n in after if n not in before]
    else:
        names = list(after if after is not None else before or {})
    out_b: dict | None = None if before is None else {}
    out_a: dict | None = None if after is None else {}
    for name in sorted(names):
        b, a = shown_pair(spec, name, (before or {}).get(name), (after or {}).get(name), instance)
        if out_b is not None:
            out_b[name] = b
        if out_a is not None:
            out_a[name] = a
    return out_b, out_a


def changed(before: dict, after: dict) -> bool:
    return any(before.get(n) != v for n, v in after.items())
