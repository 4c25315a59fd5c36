"""The usage ledger's one write path: exactly one row per request id."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.utils import timezone

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
    """Write the entry unless a row with its request id already exists.

    Idempotent by construction (unique request_id + ignore_conflicts), so a retried
    settlement can never double count.
    """
    fields = {name: getattr(entry, name) for name in entry.__dataclass_fields__}
    fields["cost_usd"] = Decimal(entry.cost_usd).quantize(COST_PLACES)
    fields["baseline_cost_usd"] = Decimal(entry.baseline_cost_usd).quantize(COST_PLACES)
    UsageRecord.objects.bulk_create([UsageRecord(created_at=timezone.now(), **fields)], ignore_conflicts=True)
