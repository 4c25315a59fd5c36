"""Shared by the tests/test_audit_*.py modules: the entries written since a point, their
before/after as dicts, and the whole audit table as text (to look for secrets in it)."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.db.models import Max

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
