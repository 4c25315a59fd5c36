"""Where a usage row goes when the ledger cannot take it: never lost, never twice.

Two durable places, tried in this order by the ledger thread (billing.usage):

* the `UsageDeadLetter` table, when the database is up but refused the row itself
  (a value out of its column's range, a constraint);
* a local append-only file (`dead_letter_path()`, under settings.VAR_DIR), when the
  database itself is unavailable: one JSON line per row, flushed and fsynced before
  the row counts as stored, appended under an exclusive lock so several gateway
  processes can share it.

Each dead-lettered row logs one error line (request id, place, reason: no values, no
prompt text) and counts in `gateway_ledger_dead_lettered_total{place}`; what waits
is exported as `gateway_ledger_dead_letters_pending{place}`.

`replay()` (manage.py replay_usage_dead_letters) writes them to the ledger. It is
idempotent: the ledger is unique by request id and written with ON CONFLICT DO
NOTHING, so a row replayed twice, or replayed after the gateway's own retry got it
in, is counted once.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from django.conf import settings
from django.db import DatabaseError, connections, router
from django.utils import timezone
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, REGISTRY

from .models import UsageDeadLetter

if TYPE_CHECKING:
    from .usage import UsageEntry

log = logging.getLogger("gateway.ledger")

FILE_NAME = "ledger-dead-letters.jsonl"
REQUEST_ID_MAX = UsageDeadLetter._meta.get_field("request_id").max_length
ERROR_MAX = UsageDeadLetter._meta.get_field("error").max_length

DEAD_LETTERED = Counter(
    "gateway_ledger_dead_lettered_total",
    "Usage rows the ledger could not write, by where they were kept (table or file) until replayed",
    ("place",),
)


def dead_letter_path() -> Path:
    """The local fallback file (GATEWAY_LEDGER_DEAD_LETTER_PATH overrides the default
    VAR_DIR/ledger-dead-letters.jsonl)."""
    configured = getattr(settings, "GATEWAY_LEDGER_DEAD_LETTER_PATH", None)
    return Path(configured) if configured else Path(settings.VAR_DIR) / FILE_NAME


def reason(exc: BaseException) -> str:
    """What went wrong, safe for a log line and the table: the error's class and the
    first line of its message (database errors put row values in later DETAIL lines)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text[: ERROR_MAX - 1] + "…" if len(text) > ERROR_MAX else text


# ---- the entry as JSON, and back -------------------------------------------------
def entry_json(entry: UsageEntry) -> dict[str, Any]:
    """The entry as plain JSON values (Decimals as strings, anything odd as its repr)."""
    raw = {f.name: getattr(entry, f.name) for f in fields(entry)}
    return orjson.loads(orjson.dumps(raw, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return repr(value)


def entry_from_json(data: dict[str, Any]) -> UsageEntry:
    from .usage import UsageEntry

    known = {f.name: f for f in fields(UsageEntry)}
    values = {}
    for name, value in data.items():
        if name not in known:
            continue  # a field removed since the row was dead-lettered
        if known[name].type in ("Decimal", Decimal) and isinstance(value, (str, int)):
            try:
                value = Decimal(value)
            except InvalidOperation:
                pass  # left as is: the ledger's row check refuses it with a reason
        values[name] = value
    return UsageEntry(**values)


# ---- storing ---------------------------------------------------------------------
def store(failures: list[tuple[UsageEntry, str]], occurred_at: datetime, *, database_up: bool) -> None:
    """Keep rows the ledger refused, durably, before their requests are answered.
    Raises OSError only if neither the table nor the file could take them."""
    if not failures:
        return
    place = "file"
    if database_up:
        try:
            _insert_table(failures, occurred_at)
            place = "table"
        except Exception as exc:  # noqa: BLE001 - the file is the fallback for any failure
            log.error("usage dead-letter table unavailable (%s): keeping %d row(s) in %s",
                      reason(exc), len(failures), dead_letter_path())
            _drop_broken_connection()
    if place == "file":
        append_to_file([{"request_id": e.request_id, "occurred_at": occurred_at.isoformat(), "error": why,
                         "entry": entry_json(e)} for e, why in failures])
    DEAD_LETTERED.labels(place).inc(len(failures))
    for entry, why in failures:
        log.error("usage row %s dead-lettered to the %s: %s", str(entry.request_id)[:REQUEST_ID_MAX], place, why)


def _insert_table(failures: list[tuple[UsageEntry, str]], occurred_at: datetime, source: str = "ledger") -> None:
    UsageDeadLetter.objects.bulk_create(
        [
            UsageDeadLetter(request_id=str(entry.request_id)[:REQUEST_ID_MAX], occurred_at=occurred_at,
                            entry=entry_json(entry), error=why[:ERROR_MAX], source=source)
            for entry, why in failures
        ],
        ignore_conflicts=True,  # already dead-lettered (a replayed file line): once is enough
    )


def _drop_broken_connection() -> None:
    connection = connections[router.db_for_write(UsageDeadLetter)]
    if connection.connection is not None and not connection.is_usable():
        connection.close()


def append_to_file(records: Iterable[dict[str, Any]], path: Path | None = None) -> None:
    """Append JSON lines, durably (fsync), under an exclusive lock. If the file was
    moved away (a replay took it) between open and lock, write to the new one."""
    path = path or dead_letter_path()
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                _write_all(fd, data)
                os.fsync(fd)
                return
        finally:
            os.close(fd)  # also releases the lock


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def file_lines(path: Path | None = None) -> int:
    path = path or dead_letter_path()
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 16), b""))
    except FileNotFoundError:
        return 0


# ---- replay ----------------------------------------------------------------------
@dataclass
class ReplayReport:
    """What a replay did, by outcome (request ids of what still fails)."""

    written: int = 0  # new ledger rows
    already_in_ledger: int = 0  # the row was there (replayed before, or the gateway's retry won)
    moved_to_table: int = 0  # file lines the ledger refused: kept in the table
    still_failing: list[tuple[str, str]] = field(default_factory=list)  # (request id, reason)
    unreadable_lines: int = 0  # torn or corrupt file lines, kept aside in <file>.unreadable
    database_down: bool = False

    def lines(self) -> list[str]:
        out = [
            f"written to the ledger: {self.written}",
            f"already in the ledger (not counted again): {self.already_in_ledger}",
            f"moved from the file to the dead-letter table: {self.moved_to_table}",
            f"still failing: {len(self.still_failing)}",
        ]
        out += [f"  {request_id}: {why}" for request_id, why in self.still_failing]
        if self.unreadable_lines:
            out.append(f"unreadable file lines set aside: {self.unreadable_lines}")
        if self.database_down:
            out.append("the database is unavailable: the rest is kept for the next replay")
        return out


def replay(path: Path | None = None) -> ReplayReport:
    """Write every pending dead letter (file first, then table) to the ledger."""
    report = ReplayReport()
    _replay_file(path or dead_letter_path(), report)
    if not report.database_down:
        _replay_table(report)
    return report


def _replay_file(path: Path, report: ReplayReport) -> None:
    taken = path.with_name(path.name + ".replaying")
    if not taken.exists():  # else: a replay that stopped half-way; finish it first
        try:
            os.replace(path, taken)  # writers that open from now on start a new file
        except FileNotFoundError:
            return
    with open(taken, "rb+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # a writer that opened the old file finishes first
        raw_lines = f.read().splitlines()
    records, unreadable = [], []
    for line in raw_lines:
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
            records.append((entry_from_json(record["entry"]), datetime.fromisoformat(record["occurred_at"])))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            unreadable.append(line)
    refused: list[tuple[UsageEntry, str, datetime]] = []
    for entry, occurred_at in records:
        outcome = _write_one(entry, occurred_at, report)
        if outcome == "down":
            return  # `taken` stays: the next replay starts with it
        if outcome is not None:
            refused.append((entry, outcome, occurred_at))
    try:
        for entry, why, occurred_at in refused:
            _insert_table([(entry, why)], occurred_at, source="file")
    except DatabaseError as exc:
        report.database_down = True
        log.error("usage dead letters: could not move refused file rows to the table: %s", reason(exc))
        return
    report.moved_to_table += len(refused)
    if unreadable:
        report.unreadable_lines += len(unreadable)
        append_to_file([], taken.with_name(path.name + ".unreadable"))  # create it with the same care
        with open(taken.with_name(path.name + ".unreadable"), "ab") as aside:
            aside.write(b"".join(line + b"\n" for line in unreadable))
            aside.flush()
            os.fsync(aside.fileno())
    os.unlink(taken)


def _replay_table(report: ReplayReport) -> None:
    pending = UsageDeadLetter.objects.filter(replayed_at__isnull=True).order_by("created_at", "id")
    for letter in pending.iterator():
        try:
            entry = entry_from_json(letter.entry)
        except (TypeError, ValueError) as exc:
            outcome: str | None = reason(exc)
        else:
            outcome = _write_one(entry, letter.occurred_at, report)
        if outcome == "down":
            return
        letter.replay_attempts += 1
        if outcome is None:
            letter.replayed_at = timezone.now()
        else:
            letter.error = outcome[:ERROR_MAX]
            report.still_failing.append((letter.request_id, outcome))
        letter.save(update_fields=["replay_attempts", "replayed_at", "error"])


def _write_one(entry: UsageEntry, occurred_at: datetime, report: ReplayReport) -> str | None:
    """None once the row is in the ledger; "down" if the database is unavailable;
    otherwise why the ledger refused the row."""
    from .usage import RowRefused, insert_rows

    try:
        inserted = insert_rows([entry], occurred_at)
    except RowRefused as exc:
        return str(exc)
    except DatabaseError as exc:
        if _unavailable(exc):
            report.database_down = True
            log.error("usage dead letters: database unavailable during replay: %s", reason(exc))
            return "down"
        return reason(exc)
    if inserted:
        report.written += 1
    else:
        report.already_in_ledger += 1
    return None


def _unavailable(exc: BaseException) -> bool:
    from .usage import database_unavailable

    return database_unavailable(exc)


# ---- what waits (a gauge read at scrape time) ------------------------------------
class _PendingCollector:
    """gateway_ledger_dead_letters_pending{place}: rows waiting for a replay. Read at
    scrape time (the file's lines; the table's count when the database answers)."""

    def describe(self):
        return [GaugeMetricFamily("gateway_ledger_dead_letters_pending", "Usage rows waiting for a replay", labels=["place"])]

    def collect(self):
        gauge = GaugeMetricFamily("gateway_ledger_dead_letters_pending", "Usage rows waiting for a replay", labels=["place"])
        gauge.add_metric(["file"], file_lines())
        try:
            gauge.add_metric(["table"], UsageDeadLetter.objects.filter(replayed_at__isnull=True).count())
        except Exception:  # noqa: BLE001 - database down or an async context: the file figure still counts
            pass
        yield gauge


REGISTRY.register(_PendingCollector())
