"""manage.py prune_audit [--days N] [--dry-run]: apply the audit trail's retention."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from gateway_admin.audit_chain import prune, retention_days


class Command(BaseCommand):
    help = ("Delete audit entries older than GATEWAY_AUDIT_RETENTION_DAYS (or --days; 0 = keep forever), oldest "
            "first. The chain keeps verifying: its anchor moves to the last entry deleted, and the pruning is "
            "itself recorded.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--days", type=int, help="Keep this many days instead of GATEWAY_AUDIT_RETENTION_DAYS.")
        parser.add_argument("--dry-run", action="store_true", help="Say how many entries would go; delete nothing.")

    def handle(self, *args, days: int | None, dry_run: bool, **options) -> None:
        if days is not None and days < 0:
            raise CommandError("--days must be 0 (keep forever) or more.")
        keep = retention_days() if days is None else days
        if keep == 0:
            self.stdout.write("Retention is 0 (keep forever): nothing to prune.")
            return
        count = prune(keep, dry_run=dry_run)
        verb = "would be deleted" if dry_run else "deleted"
        self.stdout.write(f"{count} audit entries older than {keep} days {verb}.")
