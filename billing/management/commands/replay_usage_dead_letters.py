"""manage.py replay_usage_dead_letters

Writes the usage rows the ledger could not take (billing.dead_letters: the local
fallback file first, then the dead-letter table) to the ledger, and says what it
did. Idempotent: the ledger is unique by request id, so running it twice, or while
the gateway serves, never counts a row twice. Exits with status 1 while some rows
still fail (or the database is unavailable), so a scheduler can alert on it.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from billing.dead_letters import dead_letter_path, replay


class Command(BaseCommand):
    help = "Replay dead-lettered usage rows into the ledger (idempotent)."

    def handle(self, *args, **options) -> None:
        path = dead_letter_path()
        report = replay(path)
        self.stdout.write(f"dead-letter file: {path}")
        for line in report.lines():
            self.stdout.write(line)
        if report.still_failing or report.database_down:
            raise CommandError("some usage rows are still dead-lettered (see above)")
