"""The ledger's health: usage rows waiting in the dead letters (billing.dead_letters)
and when they were last replayed. Read by /readyz (`readiness`, named in
settings.GATEWAY_READY_CHECKS) and by the admin status page (`ledger_state`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Max

from gateway_project.health import NotReady, short_reason

from .dead_letters import dead_letter_path, file_lines
from .models import UsageDeadLetter

# The beat task that writes dead letters back (gateway_project/schedule.py).
REPLAY_TASK = "replay-usage-dead-letters"


@dataclass(frozen=True, slots=True)
class LedgerState:
    """What waits for a replay, where, and when replays last happened."""

    file_path: str
    file_pending: int  # lines of this host's file, with a replay's half-done copy (<file>.replaying)
    table_pending: int | None  # None: the table could not be read
    table_error: str = ""
    last_replayed_at: datetime | None = None  # the latest table row written back to the ledger
    replay_task_sent_at: datetime | None = None  # when beat last sent the replay task (None: never, or no beat)

    @property
    def pending(self) -> int:
        return self.file_pending + (self.table_pending or 0)


def file_pending() -> int:
    """Lines waiting in this host's file, including a replay's copy that stopped half-way
    (it moves the file to <name>.replaying first and finishes it on its next run)."""
    path = dead_letter_path()
    return file_lines(path) + file_lines(path.with_name(path.name + ".replaying"))


def ledger_state() -> LedgerState:
    """The file is counted even when the database is down (that is when it fills)."""
    path = dead_letter_path()
    in_file = file_pending()
    try:
        pending = UsageDeadLetter.objects.filter(replayed_at__isnull=True).count()
        last = UsageDeadLetter.objects.aggregate(last=Max("replayed_at"))["last"]
        sent = _replay_sent_at()
    except Exception as exc:  # noqa: BLE001 - the database is down: the file's figure still counts
        return LedgerState(str(path), in_file, None, short_reason(exc))
    return LedgerState(str(path), in_file, pending, last_replayed_at=last, replay_task_sent_at=sent)


def _replay_sent_at() -> datetime | None:
    from django_celery_beat.models import PeriodicTask

    return PeriodicTask.objects.filter(name=REPLAY_TASK).values_list("last_run_at", flat=True).first()


def readiness() -> dict[str, int]:
    """/readyz's ledger check: ready while at most GATEWAY_READY_MAX_DEAD_LETTERS rows
    wait (table + this host's file), and the table can be read."""
    limit = settings.GATEWAY_READY_MAX_DEAD_LETTERS
    state = ledger_state()
    details = {"table": state.table_pending, "file": state.file_pending, "max": limit}
    if state.table_pending is None:
        raise NotReady(f"dead-letter table unreadable: {state.table_error}", **details)
    if state.pending > limit:
        raise NotReady(f"{state.pending} usage rows wait in the dead letters (more than {limit})", **details)
    return details
