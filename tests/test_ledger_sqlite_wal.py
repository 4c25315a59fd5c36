"""SQLite: the ledger's commits never checkpoint the WAL themselves, and the
background checkpointer keeps the log bounded under continuous writes (a passive
checkpoint alone never catches up with a log that is always being appended to)."""

from __future__ import annotations

import os
import sqlite3
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
    # The log file never shrinks below its high-water mark (journal_size_limit, 64 MB, only
    # truncates beyond it), and in a full run earlier tests have written to the same database
    # file: start from an empty log so that the size measures this test's writes only.
    fresh = sqlite3.connect(str(connection.settings_dict["NAME"]), timeout=5, isolation_level=None)
    try:
        assert fresh.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0, "a reader holds the log"
    finally:
        fresh.close()
    assert not os.path.exists(wal) or os.path.getsize(wal) == 0
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
    """What keeps the log from restarting: the checkpointer's busy rounds, and every SQLite
    statement of this process still running (a SELECT not read to its end holds a read
    snapshot, which pins the log), found through libsqlite3 itself."""
    import ctypes
    import gc
    import threading

    checkpointer = sqlite_wal._checkpointers.get(str(connection.settings_dict["NAME"]))
    probe = sqlite3.connect(str(connection.settings_dict["NAME"]), timeout=0, isolation_level=None)
    try:
        result = probe.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
    finally:
        probe.close()
    pending = []
    try:
        lib = ctypes.CDLL("libsqlite3.so.0")
        lib.sqlite3_next_stmt.restype = ctypes.c_void_p
        lib.sqlite3_next_stmt.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.sqlite3_stmt_busy.argtypes = [ctypes.c_void_p]
        lib.sqlite3_sql.restype = ctypes.c_char_p
        lib.sqlite3_sql.argtypes = [ctypes.c_void_p]
        lib.sqlite3_db_filename.restype = ctypes.c_char_p
        lib.sqlite3_db_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        for conn in [c for c in gc.get_objects() if type(c) is sqlite3.Connection]:
            db = ctypes.c_void_p.from_address(id(conn) + object.__basicsize__).value  # pysqlite_Connection.db
            if not db:
                continue
            stmt = lib.sqlite3_next_stmt(db, None)
            while stmt:
                if lib.sqlite3_stmt_busy(stmt):
                    pending.append((lib.sqlite3_db_filename(db, b"main") or b"").decode()[-40:] + ": " +
                                   (lib.sqlite3_sql(stmt) or b"").decode()[:300])
                stmt = lib.sqlite3_next_stmt(db, stmt)
    except (OSError, AttributeError, ValueError) as exc:
        pending.append(f"(could not inspect: {exc})")
    return (f"busy restarts {getattr(checkpointer, 'busy_restarts', None)}, restart now {result}, "
            f"statements still running {pending}, threads {sorted(t.name for t in threading.enumerate())}")
