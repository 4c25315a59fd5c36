"""SQLite: the ledger's commits never checkpoint the WAL themselves, and the
background checkpointer keeps the log bounded under continuous writes (a passive
checkpoint alone never catches up with a log that is always being appended to)."""

from __future__ import annotations

import os
import time

import pytest
from django.db import connection

from billing import sqlite_wal
from billing.models import UsageRecord
from billing.usage import UsageEntry, record_usage, record_usages

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's write-ahead log"),
]


def entry(i: int) -> UsageEntry:
    return UsageEntry(request_id=f"wal-{i}", route_id=None, route_name="r", status="success", http_status=200,
                      prompt_tokens=i, completion_tokens=1, attempt_log=[{"n": i}])


def test_the_ledger_connection_leaves_checkpoints_to_the_background_thread():
    record_usage(entry(0))
    assert connection.cursor().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    thread = sqlite_wal._checkpointers[str(connection.settings_dict["NAME"])]
    assert thread.alive()


def test_continuous_writes_keep_the_log_bounded(monkeypatch):
    monkeypatch.setattr(sqlite_wal, "EVERY_COMMITS", 10)
    monkeypatch.setattr(sqlite_wal, "RESTART_FRAMES", 300)
    wal = str(connection.settings_dict["NAME"]) + "-wal"
    record_usage(entry(0))
    for i in range(1, 2001):  # one commit each, as at concurrency 1: ~25,000 log frames in all
        record_usage(entry(i))
        if i % 100 == 0:
            time.sleep(0.01)  # let the checkpointer run (it yields to the writer otherwise)
    size = os.path.getsize(wal)
    assert UsageRecord.objects.count() == 2001
    # Without the checkpointer the log would hold every frame (~100 MB); with it the
    # log restarts from the beginning each time it passes RESTART_FRAMES.
    assert size < 20 * 1024 * 1024, f"WAL grew to {size / 1e6:.1f} MB; {_who_pins_the_log()}"


def _who_pins_the_log() -> str:
    """What keeps the log from restarting: the checkpointer's busy rounds and every open
    SQLite connection of this process that is inside a transaction, with the threads."""
    import gc
    import sqlite3
    import threading

    checkpointer = sqlite_wal._checkpointers.get(str(connection.settings_dict["NAME"]))
    open_txn = [c for c in gc.get_objects() if isinstance(c, sqlite3.Connection) and c.in_transaction]
    cursors = sum(1 for c in gc.get_objects() if isinstance(c, sqlite3.Cursor))
    probe = sqlite3.connect(str(connection.settings_dict["NAME"]), timeout=0, isolation_level=None)
    try:
        result = probe.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
    finally:
        probe.close()
    return (f"busy restarts {getattr(checkpointer, 'busy_restarts', None)}, restart now {result}, "
            f"connections in a transaction {len(open_txn)}, live cursors {cursors}, "
            f"threads {sorted(t.name for t in threading.enumerate())}")


def test_a_batch_is_one_statement_and_idempotent():
    record_usages([entry(i) for i in range(600)])  # more than one statement's worth of rows
    record_usages([entry(i) for i in range(300, 900)])  # overlapping request ids are skipped
    assert UsageRecord.objects.count() == 900
    assert UsageRecord.objects.get(request_id="wal-599").attempt_log == [{"n": 599}]
