"""The usage ledger's one write path: exactly one row per request id.

`write_usage` is what the hot path awaits: rows of concurrent requests are written
together (group commit: one INSERT and one commit for all that queued while the
previous batch was being written), so the ledger costs one transaction per batch,
not per request, yet every request's row is committed before its response ends.
"""

from __future__ import annotations

import asyncio
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

from gateway_project.db import closing_connections

from .models import UsageRecord

COST_PLACES = Decimal("0.0000000001")


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


def record_usage(entry: UsageEntry) -> None:
    record_usages([entry])


def record_usages(entries: list[UsageEntry]) -> None:
    """Write the entries, skipping any whose request id already has a row.

    Idempotent by construction (unique request_id + ignore_conflicts), so a retried
    settlement can never double count.
    """
    now = timezone.now()
    UsageRecord.objects.bulk_create([_row(entry, now) for entry in entries], ignore_conflicts=True)


def _row(entry: UsageEntry, now) -> UsageRecord:
    fields = {name: getattr(entry, name) for name in entry.__dataclass_fields__}
    fields["cost_usd"] = Decimal(entry.cost_usd).quantize(COST_PLACES)
    fields["baseline_cost_usd"] = Decimal(entry.baseline_cost_usd).quantize(COST_PLACES)
    return UsageRecord(created_at=now, **fields)


# One thread writes the ledger: it keeps its connection, serialises writers (no
# SQLite lock contention) and skips asgiref's per-call bookkeeping; batching
# (below) keeps it from becoming a bottleneck under load.
_LEDGER_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger")


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
                    await asyncio.get_running_loop().run_in_executor(
                        _LEDGER_THREAD, closing_connections, record_usages, entries
                    )
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
