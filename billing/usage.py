"""The usage ledger's one write path: exactly one row per request id.

`write_usage` is what the hot path awaits: rows of concurrent requests are written
together (group commit: one statement and one commit for all that queued while the
previous batch was being written), so the ledger costs one transaction per batch,
not per request, yet every request's row is committed before its response ends.

The write itself is one prepared INSERT ... ON CONFLICT (request_id) DO NOTHING
(no model instances, no SQL compilation per row), values adapted by the model's
own fields. On SQLite the ledger's connection never checkpoints the WAL on commit
(a checkpoint copies pages and fsyncs: several milliseconds, on whichever commit
crosses the threshold); a background thread checkpoints instead (`sqlite_wal`).

A row that cannot be written never takes other rows down, and is never lost:

* each row is checked against its columns before any statement (`_Insert.row`: an
  integer out of its field's range, a cost with too many digits, a string too long,
  a missing value), the same on SQLite (which would store anything) as on PostgreSQL
  (which would refuse the whole statement); a refused row skips the batch;
* if the batch's statement fails anyway (a constraint, a trigger, a dropped
  connection), its rows are retried one by one; only then
* a row that still cannot be written goes to a dead letter (`dead_letters`): the
  table if the database is up, a local fsynced file if it is not. Its request is
  answered as usual; `manage.py replay_usage_dead_letters` writes it later, once.

So the normal case stays one statement per batch; the per-row retry costs only a
batch that failed.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from contextlib import nullcontext
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
from django.db import DatabaseError, InterfaceError, OperationalError, connections, models, router, transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.utils import timezone

try:  # the PostgreSQL driver's JSON wrapper, as Django's JSONField adapts values for it
    from psycopg.types.json import Jsonb
except ImportError:  # pragma: no cover - SQLite-only installs
    Jsonb = ()

from gateway_project import logs

from . import dead_letters, sqlite_wal
from .models import UsageRecord

COST_PLACES = Decimal("0.0000000001")  # the cost columns' decimal places
MAX_ROWS_PER_STATEMENT = 500  # ~30 parameters a row: well inside SQLite's and PostgreSQL's limits


@dataclass(slots=True)
class UsageEntry:
    request_id: str
    route_id: int | None
    route_name: str
    status: str
    http_status: int
    key_id: int | None = None
    key_prefix: str = ""
    team_id: int | None = None
    team_name: str = ""
    provider_id: int | None = None
    provider_name: str = ""
    model_id: int | None = None
    model_name: str = ""
    error_kind: str = ""
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_estimated: bool = False
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    endpoint: str = "chat"
    client_session: str = ""
    input_price_per_mtok: Decimal = Decimal(0)
    output_price_per_mtok: Decimal = Decimal(0)
    cost_usd: Decimal = Decimal(0)
    baseline_cost_usd: Decimal = Decimal(0)
    cache_saved_usd: Decimal = Decimal(0)  # a cache hit: what the cached answer cost when stored
    latency_ms: int = 0
    ttft_ms: int | None = None
    attempts: int = 0
    attempt_log: list = field(default_factory=list)
    strategy: str = ""
    task_type: str = ""
    candidates: list = field(default_factory=list)
    annotations: dict = field(default_factory=dict)  # what the request's stages added


class RowRefused(ValueError):
    """The row cannot be stored in the ledger's columns (found before any statement).
    The message names the field, never its value."""


class LedgerUnavailable(DatabaseError):
    """Neither the ledger, nor the dead-letter table, nor the local file could take
    the row (database down and the disk refusing writes): the one case `write_usage`
    raises. A DatabaseError, so callers' existing retry paths apply."""


def database_unavailable(exc: BaseException) -> bool:
    """The database itself is away (connection refused or lost, locked beyond the
    timeout), as opposed to refusing one row: no point retrying row by row."""
    return isinstance(exc, (OperationalError, InterfaceError))


def _check(f: models.Field):
    """A checker for one column's value (None if the column takes anything). The
    bounds are the portable ones (PostgreSQL's), enforced on SQLite too."""
    name = f.name
    if isinstance(f, models.DecimalField):
        # Just below the column's 10^digits: SQLite keeps decimals as 15-digit floats, so
        # 99999999.9999999999 would read back as 10^8, which Django then refuses to
        # quantize into the column's digits (every page listing the row would fail).
        digits = f.max_digits - f.decimal_places
        limit = Decimal(10) ** digits - Decimal(10) ** (digits - 14)

        def check(value):
            if not isinstance(value, Decimal) or not value.is_finite() or abs(value) >= limit:
                raise RowRefused(f"{name} does not fit its column ({f.max_digits} digits, {f.decimal_places} decimals)")
        return check
    if isinstance(f, (models.IntegerField, models.ForeignKey)):
        kind = f.target_field.get_internal_type() if isinstance(f, models.ForeignKey) else f.get_internal_type()
        low, high = BaseDatabaseOperations.integer_field_ranges.get(kind, (None, None))

        def check(value):
            if value is None:
                if not f.null:
                    raise RowRefused(f"{name} is missing")
                return
            if type(value) is not int or (low is not None and not low <= value <= high):
                raise RowRefused(f"{name} is not an integer within its column's range")
        return check
    if isinstance(f, models.CharField):
        def check(value):
            if not isinstance(value, str) or len(value) > f.max_length:
                raise RowRefused(f"{name} is not a string of at most {f.max_length} characters")
        return check
    if isinstance(f, models.BooleanField):
        def check(value):
            if not isinstance(value, bool):
                raise RowRefused(f"{name} is not a boolean")
        return check
    return None


class _Insert:
    """The ledger INSERT for one database connection, prepared once.

    Every concrete column except the primary key; values come from the entry (or
    the field default), checked against the column (`_check`), then converted by the
    field's own `get_db_prep_save` where the database needs it (decimals, JSON,
    datetimes), passed through otherwise.
    """

    # A decimal passes through too: it is quantized to its places and checked first
    # (`_decimal`, `_check`), after which the field's own conversion returns it as it is
    # on every backend (BaseDatabaseOperations.adapt_decimalfield_value) at ~2 µs a value.
    PASS_THROUGH = (models.CharField, models.IntegerField, models.BooleanField, models.ForeignKey, models.DecimalField)

    def __init__(self, connection) -> None:
        meta = UsageRecord._meta
        fields = [f for f in meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in fields)
        self.head = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES "
        self.group = "(" + ", ".join(["%s"] * len(fields)) + ")"
        self.tail = f" ON CONFLICT ({quote(meta.get_field('request_id').column)}) DO NOTHING"
        self._sql: dict[int, str] = {}
        entry_names = set(UsageEntry.__dataclass_fields__)
        # (entry attribute or None, field, checker or None, converter or None, decimal quantum or None)
        self.plan = []
        for f in fields:
            name = f.attname if f.attname in entry_names else f.name if f.name in entry_names else None
            convert = None
            if not isinstance(f, self.PASS_THROUGH):
                convert = (lambda f: lambda value: f.get_db_prep_save(value, connection))(f)
            # Every money column (costs, prices, savings) is rounded to its places the same way.
            quantum = Decimal(1).scaleb(-f.decimal_places) if isinstance(f, models.DecimalField) else None
            self.plan.append((name, f, _check(f) if name is not None else None, convert, quantum))
        self.connection = connection
        self.recordset = None
        if connection.vendor == "postgresql":
            # PostgreSQL: the batch as one JSON parameter expanded by jsonb_to_recordset,
            # one short statement whatever the rows: the driver caches its parsing and
            # quotes one string, where a multi-row VALUES list made it split a new query
            # and quote ~37 values a row in Python (~100 us a row on this machine).
            names = [f.column for f in fields]
            record = ", ".join(f"{quote(f.column)} {f.db_type(connection)}" for f in fields)
            self.recordset = (f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {columns} "
                              f"FROM jsonb_to_recordset(%s::jsonb) AS r({record}){self.tail}")
            kinds = [f.get_internal_type() for f in fields]
            self._json_at = [i for i, k in enumerate(kinds) if k == "JSONField"]
            self._decimal_at = [i for i, k in enumerate(kinds) if k == "DecimalField"]
            self._names = names

    def recordset_params(self, rows: list[list]) -> list | None:
        """The one parameter of `recordset` for these rows (values from `row`), or None
        when a value has no exact JSON form here (the VALUES statement is used then, so
        whatever the database says about such a row is what it said before)."""
        json_at, decimal_at, names = self._json_at, self._decimal_at, self._names
        records = []
        try:
            for row in rows:
                values = list(row)
                for i in json_at:
                    wrapped = values[i]
                    if not isinstance(wrapped, Jsonb) or wrapped.obj is None:
                        return None  # JSON null (not SQL NULL) or an unforeseen adapter: as before
                    values[i] = orjson.Fragment((wrapped.dumps or json.dumps)(wrapped.obj))
                for i in decimal_at:
                    if values[i] is not None:
                        values[i] = format(values[i], "f")  # exact, as numeric reads it
                records.append(dict(zip(names, values)))
            return [orjson.dumps(records).decode()]
        except (TypeError, ValueError, orjson.JSONEncodeError):
            return None

    def sql(self, rows: int) -> str:
        """One statement for `rows` rows (one round trip, atomic on its own)."""
        sql = self._sql.get(rows)
        if sql is None:
            sql = self.head + ", ".join([self.group] * rows) + self.tail
            if rows <= 64:
                self._sql[rows] = sql
        return sql

    def row(self, entry: UsageEntry, created_at) -> list:
        """The row's values; RowRefused if one does not fit its column."""
        values = []
        for name, f, check, convert, quantum in self.plan:
            if name is None:
                value = created_at if f.name == "created_at" else f.get_default()
            else:
                value = getattr(entry, name)
                if quantum is not None:
                    value = _decimal(value, name, quantum)
                if check is not None:
                    check(value)
            try:
                values.append(convert(value) if convert is not None else value)
            except (TypeError, ValueError, ArithmeticError) as exc:  # e.g. JSON that does not serialize
                raise RowRefused(f"{f.name} cannot be stored ({type(exc).__name__})") from None
        return values


def _decimal(value, name: str, quantum: Decimal) -> Decimal:
    try:
        return Decimal(value).quantize(quantum)
    except (TypeError, ValueError, ArithmeticError):
        raise RowRefused(f"{name} is not a finite number") from None


_inserts: dict[str, _Insert] = {}


def _statement(alias: str):
    connection = connections[alias]
    connection.ensure_connection()
    statement = _inserts.get(alias)
    if statement is None or statement.connection is not connection:
        statement = _inserts[alias] = _Insert(connection)
    if connection.vendor == "sqlite":
        sqlite_wal.take_over_checkpoints(connection)
    return connection, statement


def _execute(alias: str, rows: list[list]) -> int:
    """The rows in one multi-row statement (per MAX_ROWS_PER_STATEMENT, in one
    transaction if several): how many were new."""
    connection, statement = _statement(alias)
    chunks = [rows[i:i + MAX_ROWS_PER_STATEMENT] for i in range(0, len(rows), MAX_ROWS_PER_STATEMENT)]
    gate = sqlite_wal.gate(connection) if connection.vendor == "sqlite" else sqlite_wal.NO_GATE
    inserted = 0
    with gate:
        # One multi-row statement is atomic by itself: no BEGIN/COMMIT round trips.
        with transaction.atomic(using=alias) if len(chunks) > 1 else nullcontext(), connection.cursor() as cursor:
            for chunk in chunks:
                params = statement.recordset_params(chunk) if statement.recordset is not None else None
                if params is not None:
                    cursor.execute(statement.recordset, params)
                else:
                    cursor.execute(statement.sql(len(chunk)), [value for row in chunk for value in row])
                inserted += max(cursor.rowcount, 0)
        gate.note_commit()
    return inserted


def insert_rows(entries: list[UsageEntry], created_at=None) -> int:
    """Write the entries as they are, all or nothing, skipping request ids that already
    have a row (unique request_id + ON CONFLICT DO NOTHING): how many rows were new.
    Raises RowRefused (before any statement) or the database's error. The building
    block of `record_usages` and of the dead-letter replay."""
    alias = router.db_for_write(UsageRecord)
    _, statement = _statement(alias)
    created_at = created_at or timezone.now()
    return _execute(alias, [statement.row(entry, created_at) for entry in entries])


def record_usages(entries: list[UsageEntry]) -> None:
    """Write the entries' rows; idempotent by request id, so a retried settlement can
    never double count. Never raises for a row that could not be written: it is
    dead-lettered (module docstring). Raises LedgerUnavailable only if not even the
    local dead-letter file could take it."""
    alias = router.db_for_write(UsageRecord)
    now = timezone.now()
    refused: list[tuple[UsageEntry, str]] = []
    batch: list[tuple[UsageEntry, list]] = []
    database_up = True
    try:
        _, statement = _statement(alias)
    except DatabaseError as exc:  # cannot even connect
        _drop_connection(alias)
        _dead_letter([(entry, dead_letters.reason(exc)) for entry in entries], now, database_up=False)
        return
    for entry in entries:
        try:
            batch.append((entry, statement.row(entry, now)))
        except RowRefused as exc:
            refused.append((entry, f"RowRefused: {exc}"))
    if batch:
        try:
            _execute(alias, [row for _, row in batch])  # the normal case: one statement
        except Exception as exc:  # noqa: BLE001 - any failure: the rows are retried alone
            if database_unavailable(exc):
                _drop_connection(alias)
            failed, database_up = _one_by_one(alias, batch, exc)
            refused += failed
    _dead_letter(refused, now, database_up=database_up)


def _one_by_one(alias: str, batch: list[tuple[UsageEntry, list]], batch_error: BaseException):
    """After a failed batch: each row alone, so only the rows at fault stay out. If the
    database turns out to be away, the rest are not tried (each would wait for it)."""
    failed: list[tuple[UsageEntry, str]] = []
    for i, (entry, row) in enumerate(batch):
        try:
            _execute(alias, [row])
        except Exception as exc:  # noqa: BLE001 - this row alone is at fault, or the database is away
            failed.append((entry, dead_letters.reason(exc)))
            if database_unavailable(exc):
                _drop_connection(alias)
                why = dead_letters.reason(exc)
                failed += [(other, why) for other, _ in batch[i + 1:]]
                return failed, False
    return failed, True


def _drop_connection(alias: str) -> None:
    """A lost connection is closed, so the next statement starts on a fresh one."""
    try:
        connections[alias].close()
    except Exception:  # noqa: BLE001 - closing a broken connection may fail too
        pass


def _dead_letter(refused: list[tuple[UsageEntry, str]], now, *, database_up: bool) -> None:
    try:
        dead_letters.store(refused, now, database_up=database_up)
    except OSError as exc:
        raise LedgerUnavailable(f"usage rows could not be stored anywhere: {dead_letters.reason(exc)}") from exc


def record_usage(entry: UsageEntry) -> None:
    record_usages([entry])


# One thread writes the ledger: it keeps its connection, serialises writers (no
# SQLite lock contention) and skips asgiref's per-call bookkeeping; batching
# (below) keeps it from becoming a bottleneck under load.
_LEDGER_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")


def _write_batch(entries: list[UsageEntry]) -> None:
    """On the ledger thread, which keeps its connection across batches (it is the
    only thread writing the ledger, so holding one pooled connection for good costs
    the pool one slot and saves a checkout and a reset per batch); a lost
    connection is dropped (record_usages), so the next batch starts on a fresh one."""
    record_usages(entries)


def run_on_ledger_thread(fn, *args):
    """Run `fn(*args)` on the ledger thread and return its result (tests install
    database fault hooks on the ledger's own connection with it)."""
    return _LEDGER_THREAD.submit(fn, *args).result(timeout=30)


class _GroupCommit:
    """Per event loop: entries queue while a batch is being written."""

    def __init__(self) -> None:
        self.pending: list[tuple[UsageEntry, asyncio.Future]] = []
        self.flushing = False

    def submit(self, entry: UsageEntry) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.append((entry, future))
        if not self.flushing:
            self.flushing = True
            loop.create_task(self._flush(), context=logs.detached())  # one flush serves many requests
        return future

    async def _flush(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    entries = [entry for entry, _ in batch]
                    await asyncio.get_running_loop().run_in_executor(_LEDGER_THREAD, _write_batch, entries)
                except Exception as exc:  # noqa: BLE001 - each waiter decides what to do
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self.flushing = False


_writers: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _GroupCommit]" = weakref.WeakKeyDictionary()


def submit_usage(entry: UsageEntry) -> asyncio.Future:
    """Queue the entry's row (batched with concurrent ones) and return at once a future
    that is done when the row is stored (committed, or dead-lettered durably), with
    LedgerUnavailable if it could be stored nowhere. Lets the caller do other work
    while the row is written; await it (shielded) before the response ends."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = _GroupCommit()
    return writer.submit(entry)


async def write_usage(entry: UsageEntry) -> None:
    """Commit the entry's row (batched with concurrent ones), or dead-letter it: either
    way it is stored durably when this returns. Raises (LedgerUnavailable, a
    DatabaseError) only if the row could not be stored anywhere."""
    await asyncio.shield(submit_usage(entry))  # a cancelled request must not cancel its row


async def drain(timeout_s: float = 10.0) -> None:
    """Wait (bounded) until this loop's queued usage rows are written: shutdown."""
    writer = _writers.get(asyncio.get_running_loop())
    deadline = asyncio.get_running_loop().time() + timeout_s
    while writer is not None and (writer.pending or writer.flushing):
        if asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.01)


def close_ledger_connection() -> None:
    """Hand the ledger thread's database connection back (shutdown, end of tests):
    it is otherwise kept for the life of the process."""
    _LEDGER_THREAD.submit(connections.close_all).result(timeout=30)
