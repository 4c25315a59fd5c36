"""Database faults for the ledger tests, injected at the database, not in the code
under test: a trigger that refuses marked rows (a real constraint error from SQLite
or PostgreSQL), and an execute hook on a connection that makes the database look
down for its next N statements."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from decimal import Decimal

from django.db import OperationalError, connection, connections

from billing.usage import UsageEntry, run_on_ledger_thread

POISON_ROUTE = "poison"


def entry(request_id: str, **kw) -> UsageEntry:
    values = {"route_id": None, "route_name": "r", "status": "success", "http_status": 200,
              "prompt_tokens": 3, "completion_tokens": 4, "cost_usd": Decimal("0.000123"), **kw}
    return UsageEntry(request_id=request_id, **values)


@contextmanager
def poison_trigger():
    """The database refuses every usage row whose route is POISON_ROUTE (and with it,
    any multi-row statement that carries one)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "CREATE TRIGGER usage_poison BEFORE INSERT ON billing_usagerecord "
                f"WHEN NEW.route_name = '{POISON_ROUTE}' BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
            )
        else:
            cursor.execute(
                "CREATE FUNCTION usage_poison() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.route_name = '{POISON_ROUTE}' THEN "
                "RAISE EXCEPTION 'poisoned row' USING ERRCODE = 'check_violation'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                "CREATE TRIGGER usage_poison BEFORE INSERT ON billing_usagerecord "
                "FOR EACH ROW EXECUTE FUNCTION usage_poison()"
            )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER usage_poison" + ("" if connection.vendor == "sqlite" else " ON billing_usagerecord"))
            if connection.vendor != "sqlite":
                cursor.execute("DROP FUNCTION usage_poison()")


class DatabaseDown:
    """An execute hook: the next `statements` statements fail as if the database
    were unreachable; `statements=None` keeps it down until `up()`."""

    def __init__(self, statements: int | None = None) -> None:
        self.remaining = statements
        self.failed = 0
        self.executed: list[str] = []
        self.lock = threading.Lock()

    def up(self) -> None:
        with self.lock:
            self.remaining = 0

    def __call__(self, execute, sql, params, many, context):
        with self.lock:
            down = self.remaining is None or self.remaining > 0
            if down:
                if self.remaining is not None:
                    self.remaining -= 1
                self.failed += 1
            else:
                self.executed.append(sql)
        if down:
            raise OperationalError("could not connect to server: Connection refused (injected)")
        return execute(sql, params, many, context)


class Counting:
    """An execute hook that only counts statements."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        self.statements.append(sql)
        return execute(sql, params, many, context)


@contextmanager
def on_ledger_connection(hook):
    """Install `hook` on the ledger thread's own connection (where the gateway's
    usage rows are written) for the duration of the block."""
    run_on_ledger_thread(lambda: connections["default"].execute_wrappers.append(hook))
    try:
        yield hook
    finally:
        run_on_ledger_thread(lambda: connections["default"].execute_wrappers.remove(hook))
