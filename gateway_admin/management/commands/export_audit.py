"""manage.py export_audit [--since DATE] [--until DATE] [--format csv|jsonl] [--output FILE]"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from gateway_admin.audit_chain import FORMATS, export_event, lines
from gateway_admin.models import AuditEntry


def _when(value: str, option: str) -> dt.datetime:
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"{option}: expected a date (2026-01-31) or a time (2026-01-31T12:00:00Z), got {value!r}")
        moment = dt.datetime.combine(day, dt.time.min)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, dt.UTC)


class Command(BaseCommand):
    help = ("Write the audit trail (oldest first) as CSV or JSON Lines, secrets masked as in the trail. JSON Lines "
            "can be checked on its own with `verify_audit --file`.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", help="Entries at or after this date/time (UTC unless it says).")
        parser.add_argument("--until", help="Entries before this date/time.")
        parser.add_argument("--format", choices=FORMATS, default="jsonl")
        parser.add_argument("--object-type", help="Only this kind of object, e.g. billing.virtualkey.")
        parser.add_argument("--output", "-o", help="File to write (default: standard output).")

    def handle(self, *args, since, until, format, object_type, output, **options) -> None:
        entries = AuditEntry.objects.all()
        filters = {}
        if since:
            entries = entries.filter(at__gte=_when(since, "--since"))
            filters["since"] = since
        if until:
            entries = entries.filter(at__lt=_when(until, "--until"))
            filters["until"] = until
        if object_type:
            entries = entries.filter(object_type=object_type.lower())
            filters["object_type"] = object_type
        count = entries.count()
        export_event(format, filters, count)
        if not output:
            for piece in lines(entries, format):
                self.stdout.write(piece, ending="")
            return
        try:
            with open(output, "w", encoding="utf-8", newline="") as target:
                for piece in lines(entries, format):
                    target.write(piece)
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc}") from None
        self.stderr.write(f"{count} entries written to {output}.")
