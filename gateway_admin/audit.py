"""The audit trail: who changed what, when, from where, before and after (secrets
masked), in a tamper-evident hash chain (docs/security/audit.md).

Entry points never call this module: model signals and a few wrappers installed in
`GatewayAdminAppConfig.ready` (gateway_admin/audit_hooks.py) see every save, delete,
many-to-many change and QuerySet.update of the audited models (gateway_admin/
audit_fields.py), whoever makes them: the admin, the management API, `gateway_import`,
management commands, Celery tasks.

Who: `bind_request` (the middleware) puts the Django request in a context variable;
at record time its user, and whether it came with a management API token (DRF sets
`request._request.user` and `.auth` after authenticating), are read from it.
Commands run `acting_as(Actor(command...))` (BaseCommand.execute is wrapped), Celery
tasks `task:<name>`; anything else is `system`.

The chain: an entry is appended in the same database transaction as the change (so
they commit or roll back together), after locking the one AuditHead row (SELECT ...
FOR UPDATE on PostgreSQL; SQLite transactions here take the write lock at BEGIN), so
the chain stays one line under any concurrency. entry_hash = SHA-256 of the canonical
JSON of the entry's fields and the previous entry's hash.

One change often reaches the hooks in several steps: an admin save, then its
many-to-many fields; `issue_key` saving a key, then its routes; `.set()` removing, then
adding. Those become one entry: a many-to-many change of the object the transaction's
latest entry is about (same request or command, same atomic scope, and still the chain's
head) amends that entry instead of adding one; when the result changes nothing, the
entry goes.

Failure policy: if an entry cannot be written the change fails too (the error is
logged and raised; the transaction rolls back). A change the trail cannot show is
worse than a refused save: the trail's promise is that nothing changes unrecorded.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import getpass
import hashlib
import ipaddress
import json
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connections, models, router, transaction
from django.utils import timezone

from . import audit_fields as af

log = logging.getLogger("gateway.audit")

HASH_VERSION = 1
# The fields an entry's hash covers, in this order (with HASH_VERSION first).
HASH_FIELDS = ("seq", "at", "actor_type", "actor", "user_id", "username", "via", "remote_addr", "source",
               "action", "object_type", "object_id", "object_repr", "before", "after", "prev_hash")


class AuditError(RuntimeError):
    """The audit entry could not be written; the change it records is refused."""


# --- who ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Actor:
    type: str  # AuditEntry.ActorType
    name: str
    user_id: int | None = None
    username: str = ""
    via: str = "system"
    remote_addr: str = ""
    source: str = ""


SYSTEM = Actor("system", "system")
_context: contextvars.ContextVar[Any] = contextvars.ContextVar("gateway_audit_actor", default=None)
_suppressed: contextvars.ContextVar[bool] = contextvars.ContextVar("gateway_audit_suppressed", default=False)


def bind_request(request) -> contextvars.Token:
    return _context.set(request)


def unbind(token: contextvars.Token) -> None:
    _context.reset(token)


@contextlib.contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    token = _context.set(actor)
    try:
        yield actor
    finally:
        _context.reset(token)


@contextlib.contextmanager
def suppressed() -> Iterator[None]:
    """Record nothing inside (used while `migrate` runs: data migrations use historical
    models, which the trail does not see, and its own table may not exist yet)."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def is_suppressed() -> bool:
    return _suppressed.get()


_schema_pending: contextvars.ContextVar[bool] = contextvars.ContextVar("gateway_audit_schema_pending", default=False)


@contextlib.contextmanager
def schema_may_be_missing(active: bool = True) -> Iterator[None]:
    """While `migrate` runs the trail's table may not exist yet (a partial migrate):
    then changes are not recorded instead of failing the migration."""
    token = _schema_pending.set(active)
    try:
        yield
    finally:
        _schema_pending.reset(token)


def _table_missing(using: str) -> bool:
    if not _schema_pending.get():
        return False
    from .models import AuditEntry, AuditHead

    with connections[using].cursor() as cursor:
        tables = set(connections[using].introspection.table_names(cursor))
    missing = not {AuditEntry._meta.db_table, AuditHead._meta.db_table} <= tables
    if missing:
        log.warning("audit: the trail's tables do not exist yet (migrate in progress): a change was not recorded")
    return missing


def command_actor(name: str) -> Actor:
    try:
        os_user = getpass.getuser()
    except Exception:  # no passwd entry (containers): the uid
        os_user = f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return Actor("command", f"command:{name} (OS user {os_user})"[:200], via="command",
                 source=f"manage.py {name} on {socket.gethostname()}"[:300])


def task_actor(name: str, task_id: str | None) -> Actor:
    return Actor("task", f"task:{name}"[:200], via="task", source=f"task id {task_id or '?'}"[:300])


def client_address(request) -> str:
    """The connection's peer as the server resolved it. Behind a load balancer the
    server (uvicorn) replaces it with the X-Forwarded-For client when the peer is one of
    FORWARDED_ALLOW_IPS (its trusted proxies); the gateway never reads the header itself,
    so a client cannot choose the address recorded."""
    raw = (request.META.get("REMOTE_ADDR") or "").strip()
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return ""


def _via(path: str) -> str:
    for prefix, via in (("/admin/", "admin"), ("/api/", "api"), ("/reports/", "reports"), ("/playground/", "playground")):
        if path.startswith(prefix):
            return via
    return "web"


def actor_from_request(request) -> Actor:
    path = getattr(request, "path", "") or ""
    common = {"via": _via(path), "remote_addr": client_address(request),
              "source": f"{getattr(request, 'method', '') or ''} {path}".strip()[:300]}
    user = getattr(request, "user", None)
    if user is None or not getattr(user, "is_authenticated", False):
        return Actor("anonymous", "anonymous", **common)
    username = user.get_username()[:150]
    auth = getattr(request, "auth", None)
    key = getattr(auth, "key", None)
    if isinstance(key, str) and key:
        # The token's first characters only (like a virtual key's prefix): never the token.
        return Actor("token", f"{username} (API token {key[:8]}…)"[:200], user.pk, username, **common)
    return Actor("user", username[:200], user.pk, username, **common)


def current_actor() -> Actor:
    ctx = _context.get()
    if ctx is None:
        return SYSTEM
    if isinstance(ctx, Actor):
        return ctx
    return actor_from_request(ctx)


# --- the chain --------------------------------------------------------------------------


def _at_text(value: dt.datetime | str) -> str:
    if isinstance(value, str):  # already text (an exported entry)
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def compute_hash(values: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of HASH_FIELDS (values as stored)."""
    payload = [HASH_VERSION]
    for name in HASH_FIELDS:
        value = values[name]
        if name == "at":
            value = _at_text(value) if isinstance(value, dt.datetime) else str(value)
        payload.append(value)
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def entry_values(entry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in HASH_FIELDS}


@dataclass
class _Written:
    entry_id: int
    seq: int
    prev_hash: str
    object_key: tuple[str, str]
    action: str
    spec: af.Audited | None
    raw_before: dict | None
    raw_after: dict | None
    context: Any = None  # the request or actor it was recorded under (merges stay within one)
    savepoints: tuple = ()  # the connection's savepoint ids then: merges stay within one atomic scope


@dataclass
class _State:
    """What this connection's transaction knows: the head it holds the lock on, and
    its latest entry (to amend). Valid while `marker` is still queued on the connection."""

    marker: Any
    head_seq: int
    head_hash: str
    last: _Written | None = None


def _live_state(conn) -> _State | None:
    state: _State | None = getattr(conn, "_gateway_audit_state", None)
    if state is None or not conn.in_atomic_block:
        return None
    for item in reversed(conn.run_on_commit):
        if item[1] is state.marker:
            return state
    return None


def _lock_head(using: str):
    from .models import GENESIS_HASH, AuditHead

    heads = AuditHead.objects.using(using)
    head = heads.select_for_update().filter(pk=1).first()
    if head is None:  # a flushed database (tests) or a missing migration row
        heads.bulk_create([AuditHead(pk=1, last_seq=0, last_hash=GENESIS_HASH)], ignore_conflicts=True)
        head = heads.select_for_update().get(pk=1)
    return head


def _new_marker(conn, state: _State) -> None:
    """Queue a fresh on_commit marker for the latest write: while it is still queued,
    that write is part of the current transaction (Django drops the callbacks of a
    rolled-back savepoint or transaction, and runs them on commit)."""
    def marker() -> None:  # committed: nothing to amend any more
        if getattr(conn, "_gateway_audit_state", None) is state:
            conn._gateway_audit_state = None

    state.marker = marker
    conn.on_commit(marker)


def _write(using: str, values: dict[str, Any], *, written: _Written | None) -> None:
    """Append one entry (values: HASH_FIELDS but seq, at, prev_hash, entry_hash)."""
    from .models import AuditEntry, AuditHead

    conn = connections[using]
    state = _live_state(conn)
    if state is None:
        head = _lock_head(using)
        state = _State(marker=None, head_seq=head.last_seq, head_hash=head.last_hash)
        conn._gateway_audit_state = state
    values = {**values, "seq": state.head_seq + 1, "at": timezone.now(), "prev_hash": state.head_hash}
    values["entry_hash"] = compute_hash(values)
    entry = AuditEntry.objects.using(using).create(**values)
    AuditHead.objects.using(using).filter(pk=1).update(last_seq=entry.seq, last_hash=entry.entry_hash)
    state.head_seq, state.head_hash = entry.seq, entry.entry_hash
    if written is not None:
        written.entry_id, written.seq, written.prev_hash = entry.pk, entry.seq, entry.prev_hash
    state.last = written
    _new_marker(conn, state)


def _amend(using: str, state: _State, written: _Written, before_text: str, after_text: str, action: str) -> None:
    """Rewrite the transaction's latest entry (still the head: this transaction holds
    the lock) with the merged change; drop it when the merge changes nothing."""
    from .models import AuditEntry, AuditHead

    entry = AuditEntry.objects.using(using).get(pk=written.entry_id)
    if action == "update" and before_text == after_text:
        entry.delete()
        state.head_seq, state.head_hash = entry.seq - 1, entry.prev_hash
        state.last = None
    else:
        entry.before, entry.after, entry.action = before_text, after_text, action
        entry.entry_hash = compute_hash(entry_values(entry))
        entry.save(update_fields=["before", "after", "action", "entry_hash"])
        state.head_hash = entry.entry_hash
        written.action = action
    AuditHead.objects.using(using).filter(pk=1).update(last_seq=state.head_seq, last_hash=state.head_hash)
    _new_marker(connections[using], state)  # a savepoint rolled back after this must forget it


def _text(shown: dict | None) -> str:
    return "" if shown is None else af.dumps(shown)


def _base_values(actor: Actor, action: str, object_type: str, object_id: str, object_repr: str) -> dict[str, Any]:
    return {
        "actor_type": actor.type, "actor": actor.name[:200], "user_id": actor.user_id, "username": actor.username[:150],
        "via": actor.via[:20], "remote_addr": actor.remote_addr[:45], "source": actor.source[:300],
        "action": action, "object_type": object_type[:100], "object_id": object_id[:64],
        "object_repr": object_repr[:200],
    }


def _merge(prev: _Written, action: str, before: dict | None, after: dict | None) -> tuple[str, dict | None, dict] | None:
    """The combined change of the transaction's latest entry and a new change of the
    same object, or None when they stay separate entries."""
    if prev.action == "delete" or action in ("delete", "create") or after is None:
        return None
    merged_after = {**(prev.raw_after or {}), **after}
    if prev.action == "create":
        return "create", None, merged_after
    merged_before = {**(before or {}), **(prev.raw_before or {})}
    return "update", merged_before, merged_after


def _savepoints(conn) -> tuple:
    return tuple(sid for sid in conn.savepoint_ids if sid)  # None: an atomic block without a savepoint


def _m2m_only(spec: af.Audited, before: dict | None, after: dict | None) -> bool:
    names = {*(before or {}), *(after or {})}
    return bool(names) and names <= set(spec.m2m)


def record_change(spec: af.Audited, instance: models.Model, action: str, before: dict | None, after: dict | None,
                  *, using: str | None = None) -> None:
    """Record one change of an audited object from raw snapshots (audit_fields.snapshot:
    held in memory only; what is written is rendered with secrets masked). `before` is
    None for a create, `after` None for a delete. Raises AuditError (after logging) when
    it cannot be written: the caller's transaction then rolls back."""
    using = using or router.db_for_write(type(instance), instance=instance)
    if is_suppressed() or _table_missing(using):
        return
    try:
        with transaction.atomic(using=using, savepoint=False):
            _record_change(spec, instance, action, before, after, using)
    except Exception as exc:
        log.exception("audit: could not record %s of %s #%s; the change is refused", action,
                      af.object_type(type(instance)), instance.pk)
        if isinstance(exc, AuditError):
            raise
        raise AuditError(f"the audit trail could not record this change ({type(exc).__name__})") from exc


def _record_change(spec, instance, action, before, after, using) -> None:
    key = (af.object_type(type(instance)), af.object_id(spec, instance))
    conn = connections[using]
    state = _live_state(conn)
    prev = state.last if state is not None else None
    if (prev is not None and prev.object_key == key and prev.context is _context.get()
            and prev.savepoints == _savepoints(conn) and _m2m_only(spec, before, after)):
        merged = _merge(prev, action, before, after)
        if merged is not None:
            m_action, m_before, m_after = merged
            shown_b, shown_a = af.render(spec, m_before, m_after, instance)
            prev.raw_before, prev.raw_after = m_before, m_after
            _amend(using, state, prev, _text(shown_b), _text(shown_a), m_action)
            return
    if action == "update" and (before is None or after is None or not af.changed(before, after)):
        return
    shown_b, shown_a = af.render(spec, before, after, instance)
    values = _base_values(current_actor(), action, key[0], key[1], af.describe(spec, instance))
    values.update(before=_text(shown_b), after=_text(shown_a))
    _write(using, values, written=_Written(0, 0, "", key, action, spec, before, after, _context.get(),
                                           _savepoints(conn)))


def record_event(object_type: str, object_id: str, object_repr: str, details: dict, *, using: str = "default") -> None:
    """An entry that is not a model change (the trail's own pruning and exports).
    `details` is written as the entry's "after" (no secrets in it, by the caller)."""
    if is_suppressed() or _table_missing(using):
        return
    try:
        with transaction.atomic(using=using, savepoint=False):
            values = _base_values(current_actor(), "event", object_type, object_id, object_repr)
            values.update(before="", after=af.dumps(af.canonical(details)))
            _write(using, values, written=None)
    except Exception as exc:
        log.exception("audit: could not record the event %s on %s", object_repr, object_type)
        raise AuditError(f"the audit trail could not record this event ({type(exc).__name__})") from exc


def record(instance: models.Model, action: str, *, before: dict | None = None, after: dict | None = None) -> None:
    """The public hook for a write no signal sees (raw SQL): `before`/`after` are the
    changed fields' raw values (None for create/delete: taken from `instance`)."""
    spec = af.spec_for(type(instance))
    if spec is None:
        raise ValueError(f"{type(instance).__name__} is not an audited model")
    if action == "create" and after is None:
        after = af.snapshot(spec, instance)
    if action == "delete" and before is None:
        before = af.snapshot(spec, instance)
    record_change(spec, instance, action, None if action == "create" else before, None if action == "delete" else after)
