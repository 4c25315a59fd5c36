"""Shared by the tests/test_audit_*.py modules: the entries written since a point, their
before/after as dicts, and the whole audit table as text (to look for secrets in it)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from gateway_admin import audit
from gateway_admin.models import AuditEntry, AuditHead


class Since:
    """The audit entries written after this object was made."""

    def __init__(self) -> None:
        self.start = AuditEntry.objects.aggregate(m=Max("seq"))["m"] or 0

    def entries(self, **filters) -> list[AuditEntry]:
        return list(AuditEntry.objects.filter(seq__gt=self.start, **filters).order_by("seq"))

    def one(self, **filters) -> AuditEntry:
        found = self.entries(**filters)
        assert len(found) == 1, [(e.seq, e.action, e.object_type, e.object_repr, e.after) for e in found]
        return found[0]


@pytest.fixture
def since():
    return Since


def before(entry: AuditEntry) -> dict:
    return json.loads(entry.before) if entry.before else {}


def after(entry: AuditEntry) -> dict:
    return json.loads(entry.after) if entry.after else {}


def audit_table_text() -> str:
    """Every column of every row of the audit tables, as the database holds them."""
    out = []
    with connection.cursor() as cursor:
        for table in (AuditEntry._meta.db_table, AuditHead._meta.db_table):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            out.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(out)


def fill_trail(n: int, *, batch: int = 5000) -> None:
    """Append n valid entries (a real chain: verify_audit passes) quickly, spread over
    the last year, by several people, on several objects."""
    actors = [("user", "alice", "admin"), ("token", "bob (API token 1a2b3c4d…)", "api"),
              ("command", "command:gateway_import (OS user deploy)", "command"), ("system", "system", "system")]
    kinds = ["billing.team", "billing.virtualkey", "routing.route", "providers.provider", "providers.model"]
    now = timezone.now()
    with transaction.atomic():
        head = audit._lock_head("default")
        seq, prev = head.last_seq, head.last_hash
        rows = []
        for i in range(n):
            seq += 1
            actor_type, actor, via = actors[i % len(actors)]
            values = {
                "seq": seq, "at": now - dt.timedelta(seconds=(n - i) * 300), "actor_type": actor_type,
                "actor": actor, "user_id": None, "username": actor if actor_type == "user" else "",
                "via": via, "remote_addr": "10.0.0.%d" % (i % 250), "source": "POST /admin/",
                "action": ("create", "update", "update", "delete")[i % 4], "object_type": kinds[i % len(kinds)],
                "object_id": str(i % 5000), "object_repr": f"team-{i}", "before": '{"rpm_limit":1}',
                "after": '{"rpm_limit":2}', "prev_hash": prev,
            }
            values["entry_hash"] = prev = audit.compute_hash(values)
            rows.append(values)
            if len(rows) >= batch:
                _insert(rows)
                rows = []
        _insert(rows)
        AuditHead.objects.filter(pk=1).update(last_seq=seq, last_hash=prev)


def _insert(rows: list[dict]) -> None:
    """executemany: the ORM's bulk_create spends ~0.8 ms a row compiling on SQLite."""
    if not rows:
        return
    columns = list(rows[0])
    table = connection.ops.quote_name(AuditEntry._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})",
                           [[adapt(r[c]) if c == "at" else r[c] for c in columns] for r in rows])
