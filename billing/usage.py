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
"""

from __future__ import annotations

import asyncio
import weakref
from contextlib import nullcontext
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connections, models, router, transaction
from django.utils import timezone

from . import sqlite_wal
from .models import UsageRecord

COST_PLACES = Decimal("0.0000000001")
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
    input_price_per_mtok: Decimal = Decimal(0)
    output_price_per_mtok: Decimal = Decimal(0)
    cost_usd: Decimal = Decimal(0)
    baseline_cost_usd: Decimal = Decimal(0)
    latency_ms: int = 0
    ttft_ms: int | None = None
    attempts: int = 0
    attempt_log: list = field(default_factory=list)
    strategy: str = ""
    task_type: str = ""
    candidates: list = field(default_factory=list)
    annotations: dict = field(default_factory=dict)  # what the request's stages added


class _Insert:
    """The ledger INSERT for one database connection, prepared once.

    Every concrete column except the primary key; values come from the entry (or
    the field default), converted by the field's own `get_db_prep_save` where the
    database needs it (decimals, JSON, datetimes), passed through otherwise.
    """

    PASS_THROUGH = (models.CharField, models.IntegerField, models.BooleanField, models.ForeignKey)

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
        self.plan = []  # (entry attribute or None, field, converter or None)
        for f in fields:
            name = f.attname if f.attname in entry_names else f.name if f.name in entry_names else None
            convert = None
            if not isinstance(f, self.PASS_THROUGH):
                convert = (lambda f: lambda value: f.get_db_prep_save(value, connection))(f)
            self.plan.append((name, f, convert))
        self.connection = connection

    def sql(self, rows: int) -> str:
        """One statement for `rows` rows (one round trip, atomic on its own)."""
        sql = self._sql.get(rows)
        if sql is None:
            sql = self.head + ", ".join([self.group] * rows) + self.tail
            if rows <= 64:
                self._sql[rows] = sql
        return sql

    def row(self, entry: UsageEntry, now) -> list:
        values = []
        for name, f, convert in self.plan:
            if name is None:
                value = now if f.name == "created_at" else f.get_default()
            else:
                value = getattr(entry, name)
                if name in ("cost_usd", "baseline_cost_usd"):
                    value = Decimal(value).quantize(COST_PLACES)
            values.append(convert(value) if convert is not None else value)
        return values


_inserts: dict[str, _Insert] = {}


def record_usages(entries: list[UsageEntry]) -> None:
    """Write the entries in one transaction, skipping any whose request id already
    has a row: idempotent by construction (unique request_id + ON CONFLICT DO
    NOTHING), so a retried settlement can never double count."""
    alias = router.db_for_write(UsageRecord)
    connection = connections[alias]
    connection.ensure_connection()
    statement = _inserts.get(alias)
    if statement is None or statement.connection is not connection:
        statement = _inserts[alias] = _Insert(connection)
    if connection.vendor == "sqlite":
        sqlite_wal.take_over_checkpoints(connection)
    now = timezone.now()
    rows = [statement.row(entry, now) for entry in entries]
    chunks = [rows[i:i + MAX_ROWS_PER_STATEMENT] for i in range(0, len(rows), MAX_ROWS_PER_STATEMENT)]
    gate = sqlite_wal.gate(connection) if connection.vendor == "sqlite" else sqlite_wal.NO_GATE
    with gate:
        # One multi-row statement is atomic by itself: no BEGIN/COMMIT round trips.
        with transaction.atomic(using=alias) if len(chunks) > 1 else nullcontext(), connection.cursor() as cursor:
            for chunk in chunks:
                cursor.execute(statement.sql(len(chunk)), [value for row in chunk for value in row])
        gate.note_commit()


def record_usage(entry: UsageEntry) -> None:
    record_usages([entry])


# One thread writes the ledger: it keeps its connection, serialises writers (no
# SQLite lock contention) and skips asgiref's per-call bookkeeping; batching
# (below) keeps it from becoming a bottleneck under load.
_LEDGER_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")


def _write_batch(entries: list[UsageEntry]) -> None:
    """On the ledger thread, which keeps its connection across batches (it is the
    only thread writing the ledger, so holding one pooled connection for good costs
    the pool one slot and saves a checkout and a reset per batch); a failed write
    drops the connection, so the next batch starts on a fresh one."""
    try:
        record_usages(entries)
    except Exception:
        connections[router.db_for_write(UsageRecord)].close()
        raise


class _GroupCommit:
    """Per event loop: entries queue while a batch is being written."""

    def __init__(self) -> None:
        self.pending: list[tuple[UsageEntry, asyncio.Future]] = []
        self.flushing = False

    async def write(self, entry: UsageEntry) -> None:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((entry, future))
        if not self.flushing:
            self.flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        await asyncio.shield(future)  # a cancelled request must not cancel its row

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


async def write_usage(entry: UsageEntry) -> None:
    """Commit the entry's row (batched with concurrent ones); raises on DB errors."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = _GroupCommit()
    await writer.write(entry)


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
