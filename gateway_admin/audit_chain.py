"""The audit chain's upkeep: verify it (`manage.py verify_audit`), prune it by
retention (`manage.py prune_audit`, the `prune-audit-trail` beat task), and export it
(`manage.py export_audit`, the admin's export buttons). docs/security/audit.md.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from . import audit
from .models import GENESIS_HASH, AuditEntry, AuditHead

# --- verify -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Broken:
    """The first entry at which the chain does not hold, and why."""

    entry_id: int | None
    seq: int | None
    at: dt.datetime | None
    what: str

    def describe(self) -> str:
        where = f"entry id {self.entry_id}, seq {self.seq}" if self.entry_id is not None else f"seq {self.seq}"
        when = f", recorded {audit._at_text(self.at)}" if self.at is not None else ""
        return f"{where}{when}: {self.what}"


@dataclass(frozen=True, slots=True)
class Verification:
    entries: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str
    anchor_seq: int
    broken: Broken | None

    @property
    def ok(self) -> bool:
        return self.broken is None


def _walk(rows: Iterable[dict[str, Any]], expected_seq: int, prev: str) -> tuple[int, int | None, int | None, str, Broken | None, dict | None]:
    count, first, last_row = 0, None, None
    for values in rows:
        seq, entry_id, at = values["seq"], values.get("id"), values.get("at")
        if seq != expected_seq:
            if seq > expected_seq:
                missing = f"seq {expected_seq}" if seq == expected_seq + 1 else f"seq {expected_seq} to {seq - 1}"
                what = f"the entries before it are missing ({missing} deleted)"
            else:
                what = f"its seq repeats or goes back (expected {expected_seq}): an entry was inserted or renumbered"
            return count, first, last_row and last_row["seq"], prev, Broken(entry_id, seq, at, what), last_row
        if values["prev_hash"] != prev:
            what = ("its prev_hash does not match the hash of the entry before it: that entry was replaced, "
                    "or this one re-linked")
            return count, first, last_row and last_row["seq"], prev, Broken(entry_id, seq, at, what), last_row
        computed = audit.compute_hash(values)
        if computed != values["entry_hash"]:
            what = ("its contents do not match its hash: a field was changed after it was written "
                    f"(stored {values['entry_hash'][:12]}…, recomputed {computed[:12]}…)")
            return count, first, last_row and last_row["seq"], prev, Broken(entry_id, seq, at, what), last_row
        count += 1
        first = seq if first is None else first
        prev, expected_seq, last_row = values["entry_hash"], expected_seq + 1, values
    return count, first, last_row and last_row["seq"], prev, None, last_row


def verify(using: str = "default") -> Verification:
    """Recompute the chain from the retention anchor to the head; the first broken
    entry is named. Reads in seq order, 2,000 rows at a time."""
    head = AuditHead.objects.using(using).filter(pk=1).first()
    anchor_seq, anchor_hash = (head.pruned_seq, head.pruned_hash) if head else (0, GENESIS_HASH)
    columns = ["id", "entry_hash", *audit.HASH_FIELDS]
    rows = (dict(zip(columns, row)) for row in
            AuditEntry.objects.using(using).order_by("seq").values_list(*columns).iterator(chunk_size=2000))
    count, first, last, prev, broken, last_row = _walk(rows, anchor_seq + 1, anchor_hash)
    if broken is None and head is not None:
        end = last if last is not None else anchor_seq
        if head.last_seq != end:
            if head.last_seq > end:
                what = (f"the head records seq {head.last_seq} as the newest entry but the chain ends at seq {end}: "
                        f"the newest entries (seq {end + 1} to {head.last_seq}) were deleted")
            else:
                what = f"the chain goes on past the head (seq {head.last_seq}): entries were appended outside the gateway"
            broken = Broken(last_row and last_row["id"], end, last_row and last_row["at"], what)
        elif head.last_hash != prev:
            broken = Broken(last_row and last_row["id"], end, last_row and last_row["at"],
                            "the newest entry's hash does not match the one the head records: it was replaced")
    elif broken is None and count:
        broken = Broken(None, None, None, "the chain's head row is missing")
    return Verification(count, first, last, prev, anchor_seq, broken)


def verify_lines(lines: Iterable[str]) -> Verification:
    """Verify an export in JSON Lines (export_audit --format jsonl) on its own: its
    entries must follow each other without a gap and each hash must hold; the first
    entry's prev_hash is taken as given."""
    def rows() -> Iterator[dict[str, Any]]:
        for line in lines:
            if line.strip():
                yield from_line(line)

    it = rows()
    first_row = next(it, None)
    if first_row is None:
        return Verification(0, None, None, GENESIS_HASH, 0, None)

    def chained() -> Iterator[dict[str, Any]]:
        yield first_row
        yield from it

    count, first, last, prev, broken, _ = _walk(chained(), first_row["seq"], first_row["prev_hash"])
    return Verification(count, first, last, prev, first_row["seq"] - 1, broken)


# --- retention --------------------------------------------------------------------------


def retention_days() -> int:
    return int(getattr(settings, "GATEWAY_AUDIT_RETENTION_DAYS", 400))


def prune(days: int | None = None, *, now: dt.datetime | None = None, batch: int = 5000, dry_run: bool = False,
          using: str = "default") -> int:
    """Delete the entries older than `days` (default GATEWAY_AUDIT_RETENTION_DAYS; 0 =
    keep forever), oldest first, `batch` per short transaction. The chain keeps verifying:
    the head's anchor becomes the last deleted entry's seq and hash (the next entry's
    prev_hash). Only a prefix is ever deleted (everything up to the newest old entry).
    Records one event entry saying what went. Returns how many entries were deleted."""
    days = retention_days() if days is None else days
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    entries = AuditEntry.objects.using(using)
    newest_old = entries.filter(at__lt=cutoff).order_by("-seq").values_list("seq", flat=True).first()
    if newest_old is None:
        return 0
    if dry_run:
        return entries.filter(seq__lte=newest_old).count()
    deleted, anchor = 0, None
    while True:
        with transaction.atomic(using=using):
            audit._lock_head(using)
            chunk = list(entries.filter(seq__lte=newest_old).order_by("seq").values_list("seq", "entry_hash")[:batch])
            if not chunk:
                break
            upto, upto_hash = chunk[-1]
            deleted += entries.filter(seq__lte=upto).delete()[0]
            AuditHead.objects.using(using).filter(pk=1).update(pruned_seq=upto, pruned_hash=upto_hash,
                                                               pruned_at=timezone.now())
            anchor = (upto, upto_hash)
    if anchor is not None:
        audit.record_event("gateway_admin.auditentry", "", "audit trail retention", {
            "pruned_entries": deleted, "up_to_seq": anchor[0], "anchor_hash": anchor[1],
            "older_than": audit._at_text(cutoff), "retention_days": days,
        }, using=using)
    return deleted


# --- export -----------------------------------------------------------------------------

COLUMNS = ["seq", "at", "actor_type", "actor", "user_id", "username", "via", "remote_addr", "source", "action",
           "object_type", "object_id", "object_repr", "before", "after", "prev_hash", "entry_hash"]
FORMATS = ("csv", "jsonl")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    return {**entry, "at": audit._at_text(entry["at"])}


def to_line(entry: dict[str, Any]) -> str:
    """One entry as a JSON line: before/after as JSON values; verifiable (verify_lines)."""
    row = _row(entry)
    for name in ("before", "after"):
        row[name] = json.loads(row[name]) if row[name] else None
    return json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n"


def from_line(line: str) -> dict[str, Any]:
    from .audit_fields import dumps

    row = json.loads(line)
    for name in ("before", "after"):
        row[name] = "" if row.get(name) is None else dumps(row[name])
    return row


def _csv_cell(value: Any) -> Any:
    # A spreadsheet runs a cell starting with = + - @ as a formula: names and object
    # descriptions come from users, so such cells get a leading apostrophe (JSON Lines
    # is the exact, verifiable form).
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def rows_of(queryset: QuerySet[AuditEntry]) -> Iterator[dict[str, Any]]:
    yield from queryset.order_by("seq").values(*COLUMNS).iterator(chunk_size=2000)


def lines(queryset: QuerySet[AuditEntry], fmt: str) -> Iterator[str]:
    """The export, piece by piece (streamed: memory stays flat however long the trail)."""
    if fmt == "jsonl":
        for entry in rows_of(queryset):
            yield to_line(entry)
        return
    writer = csv.writer(_Echo())
    yield writer.writerow(COLUMNS)
    for entry in rows_of(queryset):
        row = _row(entry)
        yield writer.writerow([_csv_cell(row[c]) if c not in ("before", "after") else row[c] for c in COLUMNS])


def export_event(fmt: str, filters: dict[str, Any], count: int | None = None) -> None:
    """Exports are themselves recorded (who took a copy of the trail, with which filter)."""
    details = {"format": fmt, "filters": {k: str(v) for k, v in filters.items()}}
    if count is not None:
        details["entries"] = count
    audit.record_event("gateway_admin.auditentry", "", "audit trail export", details)
