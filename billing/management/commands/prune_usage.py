"""manage.py prune_usage [--days N] [--batch N] [--apply]

Usage records of whole UTC days older than the retention period are rolled up, then
deleted in short batches (billing.retention). Without --apply it is a dry run: it
prints what would go and writes nothing, so an operator sees the effect of a new
GATEWAY_USAGE_RETENTION_DAYS before the beat task acts on it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing.retention import prune_usage


class Command(BaseCommand):
    help = "Roll up and delete usage records older than the retention period (dry run unless --apply)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, metavar="N",
                            help="Keep N days (default GATEWAY_USAGE_RETENTION_DAYS; 0 keeps everything).")
        parser.add_argument("--batch", type=int, metavar="N",
                            help="Rows per delete transaction (default GATEWAY_USAGE_RETENTION_BATCH).")
        parser.add_argument("--apply", action="store_true", help="Delete (default: only count).")

    def handle(self, *args, days: int | None, batch: int | None, apply: bool, **options) -> None:
        days = settings.GATEWAY_USAGE_RETENTION_DAYS if days is None else days
        if days < 0 or (batch is not None and batch < 1):
            raise CommandError("--days must be 0 or more and --batch at least 1")
        report = prune_usage(days, apply=apply, batch=batch)
        if report.cutoff is None:
            self.stdout.write("Retention is off (0 days): nothing to prune.")
            return
        if report.locked_out:
            raise CommandError("Another prune is running; try again when it has finished.")
        for d in report.days:
            state = "rolled up" if d.recomputed else ("whole" if d.rows >= d.rolled_up else "pruned before")
            self.stdout.write(f"{d.day}  rows {d.rows:>9}  {'deleted' if apply else 'to delete'} {d.deleted:>9}"
                              f"  held {d.held:>6}  rollups count {d.rolled_up:>9} requests ({state})")
        verb = "Deleted" if apply else "Would delete"
        self.stdout.write(f"{verb} {report.deleted} usage records of {len(report.days)} days before "
                          f"{report.cutoff:%Y-%m-%d} ({report.held} held)"
                          + (f" in {report.batches} batches, longest {report.longest_batch_s * 1000:.0f} ms, "
                             f"{report.seconds:.1f} s." if apply else ". Run with --apply to delete."))
