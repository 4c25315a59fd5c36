"""SQLite: WAL checkpoints off the usage ledger's commit path.

SQLite checkpoints the write-ahead log on whichever commit pushes it past 1000
pages: that commit then copies the log back into the database file and fsyncs,
several milliseconds on the request that happens to make it (a usage row touches
about a dozen pages with its indexes, so roughly one request in a hundred).
The ledger's connection turns that off, and one daemon thread per database file
checkpoints instead, on its own connection:

* a PASSIVE checkpoint after every `EVERY_COMMITS` ledger commits (or
  `EVERY_SECONDS` at the latest): it copies the log into the database file and
  fsyncs without waiting for readers or writers, so the ledger keeps committing
  meanwhile (and SQLite's I/O runs without the GIL);
* under continuous writes a passive checkpoint never catches up with the log's
  end, so the log would never start over and would grow without bound. Once it
  holds more than `RESTART_FRAMES`, the thread takes the ledger's gate (a lock
  the ledger holds around each commit, so a waiting commit resumes the moment it
  is released, without SQLite's millisecond busy-sleeps) and runs a RESTART
  checkpoint: only the few frames written since the passive one remain to copy,
  after which the next commit starts the log over. It never waits for a busy
  database (timeout 0): if a reader or another process is in the way it tries again
  next round.

Other connections (admin, Celery worker) keep SQLite's default autocheckpoint; if
this thread ever fell behind, their commits would still checkpoint, and
`journal_size_limit` truncates the log once it has been checkpointed.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

log = logging.getLogger("gateway.ledger")

EVERY_COMMITS = 50
EVERY_SECONDS = 1.0
RESTART_FRAMES = 10_000
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024

_lock = threading.Lock()
_checkpointers: dict[str, "_Checkpointer"] = {}


def _path(connection) -> str | None:
    name = str(connection.settings_dict["NAME"])
    if not name or name == ":memory:" or "mode=memory" in name:
        return None
    return name


def take_over_checkpoints(connection) -> None:
    """Turn off autocheckpoint on this (ledger) connection, once per physical
    connection, and make sure the file's checkpointer thread runs."""
    raw = connection.connection
    if getattr(connection, "_ledger_wal_raw", None) is raw:
        return
    path = _path(connection)
    if path is None:
        connection._ledger_wal_raw = raw
        return
    checkpointer = _checkpointer(path)
    if checkpointer is not None:
        raw.execute("PRAGMA wal_autocheckpoint=0")
        raw.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
    connection._ledger_wal_raw = raw


class _NoGate:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def note_commit(self) -> None:
        pass


NO_GATE = _NoGate()


def gate(connection) -> "_Checkpointer | _NoGate":
    """Hold around each ledger commit (`with gate(connection): ...`)."""
    path = _path(connection)
    return (_checkpointers.get(path) if path else None) or NO_GATE


def _checkpointer(path: str) -> "_Checkpointer | None":
    with _lock:
        checkpointer = _checkpointers.get(path)
        if checkpointer is None or not checkpointer.alive():
            checkpointer = _Checkpointer(path)
            try:
                checkpointer.start()
            except RuntimeError:  # interpreter shutting down: keep SQLite's default
                return None
            _checkpointers[path] = checkpointer
        return checkpointer


class _Checkpointer:
    def __init__(self, path: str) -> None:
        self.path = path
        self.pid = os.getpid()
        self.commits = 0
        self.busy_restarts = 0  # RESTART checkpoints a reader (or another process) was in the way of
        self.warned_at_frames = 0
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, name="ledger-wal-checkpoint", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def alive(self) -> bool:
        return self.pid == os.getpid() and self.thread.is_alive()

    def __enter__(self):
        self.lock.acquire()
        return self

    def __exit__(self, *exc):
        self.lock.release()
        return False

    def note_commit(self) -> None:
        self.commits += 1
        if self.commits >= EVERY_COMMITS:
            self.wake.set()

    def run(self) -> None:
        connection = None
        while True:
            self.wake.wait(EVERY_SECONDS)
            self.wake.clear()
            if not self.commits:
                continue
            self.commits = 0
            try:
                if connection is None:
                    connection = sqlite3.connect(self.path, timeout=0, isolation_level=None)
                self.checkpoint(connection)
            except Exception as exc:  # noqa: BLE001 - retried next round; the thread must not die
                log.warning("WAL checkpoint of the ledger database failed: %s", exc)
                if connection is not None:
                    connection.close()
                connection = None

    def checkpoint(self, connection: sqlite3.Connection) -> None:
        _, log_frames, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if log_frames > RESTART_FRAMES:
            with self:
                busy, log_frames, _ = connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            if busy:
                self.busy_restarts += 1
                # A connection with an open read snapshot pins the log: say so once per
                # doubling, with the size, so an operator can find the long reader.
                if log_frames >= 2 * max(self.warned_at_frames, RESTART_FRAMES * 4):
                    self.warned_at_frames = log_frames
                    log.warning("the ledger database's write-ahead log holds %d frames and cannot restart: "
                                "a long-running reader or another process keeps an old snapshot open", log_frames)
            else:
                self.warned_at_frames = 0
