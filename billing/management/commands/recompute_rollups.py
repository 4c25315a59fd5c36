"""manage.py recompute_rollups [--days N | --start YYYY-MM-DD [--end YYYY-MM-DD]]

Rebuilds cost rollups from the usage ledger (idempotent: safe to run at any time,
also while the beat task runs). Days older than GATEWAY_USAGE_RETENTION_DAYS are
left as they are, since their ledger rows may already be pruned.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.rollups import recompute_range


class Command(BaseCommand):
    help = "Recompute cost rollups from the usage ledger for the last N days (UTC), or a date range."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, default=2, metavar="N", help="Today and the N-1 days before (default 2).")
        parser.add_argument("--start", type=date.fromisoformat, help="First day (YYYY-MM-DD); overrides --days.")
        parser.add_argument("--end", type=date.fromisoformat, help="Last day, inclusive (default today).")

    def handle(self, *args, days: int, start: date | None, end: date | None, **options) -> None:
        today = timezone.now().astimezone(UTC).date()
        end = end or today
        if start is None:
            if days < 1:
                raise CommandError("--days must be at least 1")
            start = end - timedelta(days=days - 1)
        if start > end:
            raise CommandError("--start must not be after --end")
        rows = recompute_range(start, end)
        self.stdout.write(f"Recomputed {rows} rollup rows for {start} .. {end}.")
