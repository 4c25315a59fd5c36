"""manage.py verify_audit [--file EXPORT.jsonl] [--expect-head SEQ:HASH]: recompute the
audit trail's hash chain; exit 0 when it holds, 1 naming the first broken entry."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from gateway_admin.audit_chain import verify, verify_lines


class Command(BaseCommand):
    help = (
        "Verify the audit trail: every entry's hash, the links between entries, no entry missing (the head row "
        "knows the newest one; retention leaves an anchor). Exits 1 and names the first broken entry (id, seq, "
        "time, what does not match)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--file", help="Verify an export in JSON Lines (export_audit --format jsonl) instead; - = stdin.")
        parser.add_argument(
            "--expect-head", metavar="SEQ:HASH",
            help="Also require the chain to contain this entry (a head printed earlier and kept elsewhere): "
            "catches a trail rewritten from that point on.",
        )

    def handle(self, *args, file: str | None, expect_head: str | None, **options) -> None:
        if file:
            stream = sys.stdin if file == "-" else self._open(file)
            with stream:
                result = verify_lines(stream)
        else:
            result = verify()
        if result.broken is not None:
            self.stderr.write(f"Audit chain BROKEN at {result.broken.describe()}")
            self.stderr.write(f"{result.entries} entries verified before it.")
            sys.exit(1)
        if expect_head:
            self._check_expected(expect_head, file)
        span = f"seq {result.first_seq} to {result.last_seq}" if result.entries else "no entries"
        anchor = f" (after the retention anchor at seq {result.anchor_seq})" if result.anchor_seq else ""
        self.stdout.write(f"Audit chain intact: {result.entries} entries, {span}{anchor}.")
        self.stdout.write(f"Head: {result.last_seq or result.anchor_seq}:{result.head_hash}")

    def _check_expected(self, expected: str, file: str | None) -> None:
        seq_text, _, digest = expected.partition(":")
        if not seq_text.isdigit() or len(digest) != 64:
            raise CommandError("--expect-head takes SEQ:HASH as printed by verify_audit (Head: ...).")
        if file:
            raise CommandError("--expect-head checks the database, not a file.")
        from gateway_admin.models import AuditEntry, AuditHead

        seq = int(seq_text)
        row = AuditEntry.objects.filter(seq=seq).values_list("entry_hash", flat=True).first()
        head = AuditHead.objects.filter(pk=1).first()
        if row is None and head is not None and head.pruned_seq == seq:
            row = head.pruned_hash
        if row is None and head is not None and head.pruned_seq > seq:
            self.stdout.write(f"Entry seq {seq} was pruned by retention: cannot compare it.")
            return
        if row != digest:
            self.stderr.write(f"Audit chain BROKEN at seq {seq}: its hash is not the one kept ({digest[:12]}…): "
                              "the trail was rewritten from there on.")
            sys.exit(1)

    @staticmethod
    def _open(path: str):
        try:
            return open(path, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
