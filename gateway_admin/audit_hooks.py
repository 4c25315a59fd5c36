"""Where the audit trail hears about changes: installed once by
GatewayAdminAppConfig.ready, so every entry point is covered without its code knowing.

- pre_save / post_save: the stored row is read before the save (one query; skipped
  when `update_fields` names no audited field, e.g. a login's last_login), the instance
  after it; the entry holds the difference.
- pre_delete / post_delete: the row as it was (its many-to-many ids too). Deleting an
  object also changes audited objects that point at it without any signal of theirs:
  many-to-many links (a key limited to a deleted route) and SET_NULL references (a
  key's replaced_by); those are recorded as changes of those objects.
- m2m_changed: every many-to-many of the audited models (User.groups, Group.permissions,
  a key's allowed routes, a guardrail's scope), either side.
- QuerySet.update and bulk_create, which send no signal (a key rotation moving its
  budgets, "purge the cache" raising a route's cache_epoch, a scheduled price applied;
  bulk_update goes through update): wrapped for the audited models only, so any code
  path, present or future, is recorded. Other models pay one dictionary lookup.
- Model.save_base of the audited models runs in a transaction (it already does when
  called inside one), so an entry and the change it records always commit together,
  also in autocommit code.
- BaseCommand.execute sets the actor `command:<name>` (and `migrate` records nothing);
  Celery's task_prerun/postrun set `task:<name>`.

Raw SQL is the one path no hook can see: the gateway uses it only for tables that are
not audited (usage rows, retention); `gateway_admin.audit.record` is the hook for any
future raw write to an audited table.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import models, router, transaction
from django.db.models import signals
from django.db.models.query import QuerySet

from . import audit
from . import audit_fields as af

# Commands during which nothing is recorded (no audited change, or test databases).
# `migrate` is recorded (what its post_migrate handlers change, e.g. sync_roles granting a
# role a new permission) as long as the trail's table exists: data migrations use
# historical models, which no hook sees.
QUIET_COMMANDS = frozenset({"flush", "makemigrations", "squashmigrations", "sqlflush", "test", "testserver"})

_installed = False
_m2m_owners: dict[type[models.Model], list[tuple[af.Audited, str]]] = {}  # through -> (owner spec, field)
_incoming: dict[type[models.Model], list[tuple[af.Audited, models.Field]]] = {}  # target -> links into it


def install() -> None:
    global _installed
    if _installed:
        return
    _installed = True
    registry = af.load()
    for model, spec in registry.items():
        uid = f"gateway_audit:{model._meta.label}"
        signals.pre_save.connect(_pre_save, sender=model, dispatch_uid=uid)
        signals.post_save.connect(_post_save, sender=model, dispatch_uid=uid)
        signals.pre_delete.connect(_pre_delete, sender=model, dispatch_uid=uid)
        signals.post_delete.connect(_post_delete, sender=model, dispatch_uid=uid)
        if model._meta.proxy:
            continue
        model.save_base = _atomic_save(model.save_base)
        for name in spec.m2m:
            f = model._meta.get_field(name)
            through = f.remote_field.through
            _m2m_owners.setdefault(through, []).append((spec, name))
            signals.m2m_changed.connect(_m2m_changed, sender=through, dispatch_uid=f"gateway_audit:{through._meta.label}")
            _incoming.setdefault(f.remote_field.model, []).append((spec, f))
        for f in model._meta.concrete_fields:
            if isinstance(f, models.ForeignKey) and f.remote_field.on_delete in (models.SET_NULL, models.SET_DEFAULT) \
                    and f.name not in spec.exclude:
                _incoming.setdefault(f.remote_field.model, []).append((spec, f))
    # Deleting a target model (e.g. a Route, a User) must see its incoming links even when
    # the target itself is not audited.
    for target in _incoming:
        if target not in registry:
            signals.pre_delete.connect(_pre_delete_links, sender=target, dispatch_uid=f"gateway_audit_links:{target._meta.label}")
    QuerySet.update = _wrap_update(QuerySet.update)
    QuerySet.bulk_create = _wrap_bulk_create(QuerySet.bulk_create)
    _wrap_commands()
    _connect_celery()


def _guarded(receiver):
    """A hook that fails refuses the change (logged, raised as AuditError), like a
    failed write of the entry itself."""

    @functools.wraps(receiver)
    def guarded(sender, *args, **kwargs):
        try:
            return receiver(sender, *args, **kwargs)
        except audit.AuditError:
            raise
        except Exception as exc:
            audit.log.exception("audit: %s failed for %s; the change is refused", receiver.__name__,
                                getattr(sender, "__name__", sender))
            raise audit.AuditError(f"the audit trail could not record this change ({type(exc).__name__})") from exc

    return guarded


# --- saves ------------------------------------------------------------------------------

_MISSING = object()


_names: dict[str, frozenset[str]] = {}


def _audited_names(spec: af.Audited) -> frozenset[str]:
    """The recorded fields' names and attnames (cached: checked on every update() of an
    audited model, e.g. a key's rehash on first use, which touches none of them)."""
    names = _names.get(spec.label)
    if names is None:
        names = _names[spec.label] = frozenset({f.name for f in spec.fields()} | {f.attname for f in spec.fields()})
    return names


def _stored(spec: af.Audited, model: type[models.Model], pk: Any, using: str) -> models.Model | None:
    return model._base_manager.using(using).filter(pk=pk).first()


@_guarded
def _pre_save(sender, instance, raw=False, using=None, update_fields=None, **kwargs) -> None:
    spec = af.spec_for(sender)
    if spec is None or audit.is_suppressed():
        return
    if update_fields is not None and _audited_names(spec).isdisjoint(update_fields):
        instance.__dict__["_audit_before"] = _MISSING
        return
    before = None
    if instance.pk is not None and not instance._state.adding:
        stored = _stored(spec, sender, instance.pk, using)
        before = af.snapshot(spec, stored) if stored is not None else None
    instance.__dict__["_audit_before"] = before


@_guarded
def _post_save(sender, instance, created=False, update_fields=None, raw=False, using=None, **kwargs) -> None:
    spec = af.spec_for(sender)
    before = instance.__dict__.pop("_audit_before", _MISSING)
    if spec is None or before is _MISSING or audit.is_suppressed():
        return
    if af.has_expression(spec, instance):
        stored = _stored(spec, sender, instance.pk, using)
        after = af.snapshot(spec, stored) if stored is not None else af.snapshot(spec, instance)
    else:
        after = af.snapshot(spec, instance)
    if created or before is None:
        if spec.when is None or spec.when(after):
            # A new object has no many-to-many links yet: its entry says so, and the
            # links set next in the same operation amend it (gateway_admin.audit).
            after.update({name: [] for name in spec.m2m})
            audit.record_change(spec, instance, "create", None, after, using=using)
        return
    if update_fields is not None:  # fields outside update_fields were not written
        after = {**before, **{n: v for n, v in after.items() if n in set(update_fields)
                              or spec.model._meta.get_field(n).attname in set(update_fields)}}
    if spec.when is None or spec.when(before) or spec.when(after):
        audit.record_change(spec, instance, "update", before, after, using=using)


def _atomic_save(save_base):
    @functools.wraps(save_base)
    def atomic_save_base(self, *args, **kwargs):
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        with transaction.atomic(using=using, savepoint=False):
            return save_base(self, *args, **kwargs)

    atomic_save_base.alters_data = True
    return atomic_save_base


# --- deletes ----------------------------------------------------------------------------


@_guarded
def _pre_delete(sender, instance, using=None, origin=None, **kwargs) -> None:
    spec = af.spec_for(sender)
    if spec is None or audit.is_suppressed():
        return
    before = af.snapshot(spec, instance)
    for name in spec.m2m:
        before[name] = af.m2m_ids(instance, name)
    instance.__dict__["_audit_deleted"] = before
    _pre_delete_links(sender, instance, using=using)


@_guarded
def _post_delete(sender, instance, using=None, origin=None, **kwargs) -> None:
    spec = af.spec_for(sender)
    before = instance.__dict__.pop("_audit_deleted", None)
    if spec is None or before is None or audit.is_suppressed():
        return
    if spec.when is None or spec.when(before):
        audit.record_change(spec, instance, "delete", before, None, using=using)


@_guarded
def _pre_delete_links(sender, instance, using=None, **kwargs) -> None:
    """Audited objects that lose a link to `instance` without a signal of their own."""
    if audit.is_suppressed():
        return
    target = sender._meta.concrete_model
    for spec, f in _incoming.get(target, ()):
        owner = spec.model
        if f.many_to_many:
            through = f.remote_field.through
            ids = list(through._base_manager.using(using).filter(**{f.m2m_reverse_field_name(): instance.pk})
                       .values_list(f"{f.m2m_field_name()}_id", flat=True))
            for obj in owner._base_manager.using(using).filter(pk__in=ids):
                if obj.pk == instance.pk and owner is target:
                    continue
                now = af.m2m_ids(obj, f.name)
                audit.record_change(spec, obj, "update", {f.name: now}, {f.name: [i for i in now if i != instance.pk]},
                                    using=using)
        else:
            for obj in owner._base_manager.using(using).filter(**{f.attname: instance.pk}):
                if obj.pk == instance.pk and owner is target:
                    continue
                snap = af.snapshot(spec, obj)
                new = f.get_default() if f.remote_field.on_delete is models.SET_DEFAULT else None
                audit.record_change(spec, obj, "update", snap, {**snap, f.name: new}, using=using)


# --- many-to-many -----------------------------------------------------------------------


@_guarded
def _m2m_changed(sender, instance, action, reverse, model, pk_set, using=None, **kwargs) -> None:
    if audit.is_suppressed() or action not in ("pre_add", "post_add", "pre_remove", "post_remove", "pre_clear",
                                               "post_clear"):
        return
    for spec, name in _m2m_owners.get(sender, ()):
        f = spec.model._meta.get_field(name)
        if not reverse:
            owners = [instance] if isinstance(instance, spec.model._meta.concrete_model) else []
        else:
            stash_key = ("_audit_m2m_owners", name)
            if action.startswith("pre_"):
                if pk_set is None:  # clear: every owner linked now
                    through = f.remote_field.through
                    ids = through._base_manager.using(using).filter(**{f.m2m_reverse_field_name(): instance.pk}) \
                        .values_list(f"{f.m2m_field_name()}_id", flat=True)
                else:
                    ids = pk_set
                owners = list(spec.model._base_manager.using(using).filter(pk__in=list(ids)))
                instance.__dict__[stash_key] = owners
            else:
                owners = instance.__dict__.pop(stash_key, [])
        for owner in owners:
            key = ("_audit_m2m_before", name)
            if action.startswith("pre_"):
                owner.__dict__[key] = af.m2m_ids(owner, name)
            else:
                before = owner.__dict__.pop(key, None)
                if before is None:
                    continue
                after = af.m2m_ids(owner, name)
                if before != after:
                    audit.record_change(spec, owner, "update", {name: before}, {name: after}, using=using)


# --- QuerySet.update / bulk_create --------------------------------------------------------


def _wrap_update(update):
    @functools.wraps(update)
    def audited_update(self, **kwargs):
        spec = af.spec_for(self.model)
        if spec is None or audit.is_suppressed() or _audited_names(spec).isdisjoint(kwargs):
            return update(self, **kwargs)
        using = self.db
        base = self.model._base_manager.using(using)
        with transaction.atomic(using=using, savepoint=False):
            pks = list(self.values_list("pk", flat=True))
            # FOR NO KEY UPDATE (PostgreSQL): the rows' values cannot change between this read
            # and the update, while inserts referencing them (FOR KEY SHARE) are not blocked.
            locked = base.select_for_update(no_key=True).filter(pk__in=pks)
            rows = {o.pk: af.snapshot(spec, o) for o in locked} if pks else {}
            count = update(self, **kwargs)
            if rows:
                for obj in base.filter(pk__in=list(rows)):
                    before, after = rows[obj.pk], af.snapshot(spec, obj)
                    if spec.when is None or spec.when(before) or spec.when(after):
                        audit.record_change(spec, obj, "update", before, after, using=using)
        return count

    audited_update.alters_data = True
    audited_update.queryset_only = True
    return audited_update


def _wrap_bulk_create(bulk_create):
    @functools.wraps(bulk_create)
    def audited_bulk_create(self, objs, *args, **kwargs):
        spec = af.spec_for(self.model)
        if spec is None or audit.is_suppressed():
            return bulk_create(self, objs, *args, **kwargs)
        with transaction.atomic(using=self.db, savepoint=False):
            created = bulk_create(self, objs, *args, **kwargs)
            for obj in created:
                after = af.snapshot(spec, obj)
                if spec.when is None or spec.when(after):
                    audit.record_change(spec, obj, "create", None, after, using=self.db)
        return created

    audited_bulk_create.alters_data = True
    return audited_bulk_create


# --- who: commands and tasks --------------------------------------------------------------


def _wrap_commands() -> None:
    from django.core.management.base import BaseCommand

    execute = BaseCommand.execute

    @functools.wraps(execute)
    def audited_execute(self, *args, **options):
        name = type(self).__module__.rpartition(".")[2]
        if name in QUIET_COMMANDS:
            with audit.suppressed():
                return execute(self, *args, **options)
        with audit.acting_as(audit.command_actor(name)), audit.schema_may_be_missing(name == "migrate"):
            return execute(self, *args, **options)

    BaseCommand.execute = audited_execute


_task_tokens: dict[str, Any] = {}


def _connect_celery() -> None:
    try:
        from celery.signals import task_postrun, task_prerun
    except ImportError:  # pragma: no cover - celery is in requirements.txt
        return

    @task_prerun.connect(weak=False, dispatch_uid="gateway_audit_task_prerun")
    def _task_started(task_id=None, task=None, **kwargs) -> None:
        _task_tokens[task_id or ""] = audit._context.set(audit.task_actor(getattr(task, "name", "?"), task_id))

    @task_postrun.connect(weak=False, dispatch_uid="gateway_audit_task_postrun")
    def _task_finished(task_id=None, **kwargs) -> None:
        token = _task_tokens.pop(task_id or "", None)
        if token is not None:
            try:
                audit._context.reset(token)
            except ValueError:  # reset from another context: leave it
                pass
