"""Usage ledger retention (GATEWAY_USAGE_RETENTION_DAYS; 0 keeps everything)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import UsageRecord


def prune_usage_records(days: int | None = None, batch: int = 10_000) -> int:
    """Delete usage records older than `days`, in batches; return how many."""
    days = settings.GATEWAY_USAGE_RETENTION_DAYS if days is None else days
    if days <= 0:
        return 0
    cutoff = timezone.now() - timedelta(days=days)
    deleted = 0
    while True:
        ids = list(UsageRecord.objects.filter(created_at__lt=cutoff).values_list("id", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += UsageRecord.objects.filter(id__in=ids).delete()[0]
