"""Usage retention (billing.retention): old days rolled up, then deleted in batches;
reports unchanged, recent rows, dead letters and budget-protected rows untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from billing.models import Budget, CostRollup, RollupCoverage, UsageDeadLetter, UsageRecord
from billing.reports import exports
from billing.retention import CACHE_LOCK_KEY, PG_LOCK_ID, prune_cutoff, prune_usage, prune_usage_records
from billing.rollups import recompute_day
from tests.factories import UsageRecordFactory

pytestmark = pytest.mark.django_db(transaction=True)

NOW = timezone.now()
OLD = (NOW - timedelta(days=100)).replace(hour=12, minute=0, second=0, microsecond=0)
OLDER = OLD - timedelta(days=1)
CSV_VIEWS = ["spend", "team", "key", "route", "model", "provider", "savings"]


def row(at: datetime, **kw) -> UsageRecord:
    return UsageRecordFactory(billed=True, created_at=at, **kw)


def csv_reports() -> dict[str, str]:
    start, end = OLDER.date() - timedelta(days=1), NOW.date()
    return {view: exports.render(view, start, end) for view in CSV_VIEWS}


def ledger() -> set[str]:
    return set(UsageRecord.objects.values_list("request_id", flat=True))


def test_old_days_are_rolled_up_then_deleted_and_every_report_totals_the_same():
    for i, cost in enumerate(["0.1", "0.2", "0.3333333333", "1.2345678901"]):
        row(OLD, request_id=f"old-{i}", team_id=i % 2 + 1, team_name=f"t{i % 2}", key_id=i + 1, cost_usd=Decimal(cost))
    recompute_day(OLD.date())
    # Never rolled up (the reports read it live from the ledger until now).
    row(OLDER, request_id="older", status=UsageRecord.Status.ERROR, http_status=502, cost_usd=Decimal("7.0000000003"))
    row(NOW - timedelta(days=5), request_id="recent")
    before = csv_reports()
    assert "7.0000000003" in before["spend"]

    report = prune_usage(30, batch=2)

    assert ledger() == {"recent"}
    assert report.deleted == 5 and report.held == 0 and not report.locked_out
    assert [d.day for d in report.days] == [OLDER.date(), OLD.date()] and all(d.recomputed for d in report.days)
    assert report.batches == 3  # 1 row, then 4 rows two at a time
    assert 0 < report.longest_batch_s < 5
    assert csv_reports() == before
    end = datetime.combine(OLDER.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    assert RollupCoverage.objects.get(day=OLDER.date()).covered_until == end


def test_rows_written_after_a_days_rollup_are_rolled_up_before_they_go():
    row(OLD, request_id="settled")
    recompute_day(OLD.date())
    row(OLD + timedelta(hours=1), request_id="late", cost_usd=Decimal("2.5"))  # e.g. a dead-letter replay
    prune_usage(30)
    cell = CostRollup.objects.get(day=OLD.date())
    assert (cell.requests, cell.cost_usd) == (2, Decimal("2.5010000000"))
    assert ledger() == set()


def test_running_again_changes_nothing():
    row(OLD, request_id="old")
    prune_usage(30)
    rollups = list(CostRollup.objects.values())
    report = prune_usage(30)
    assert report.deleted == 0 and report.days == []
    assert list(CostRollup.objects.values()) == rollups


def test_a_dry_run_counts_and_writes_nothing():
    row(OLD, request_id="old-1")
    row(OLD, request_id="old-2")
    row(NOW, request_id="now")
    report = prune_usage(30, apply=False)
    assert (report.deleted, report.applied, len(report.days)) == (2, False, 1)
    assert report.days[0].recomputed is False and report.batches == 0
    assert ledger() == {"old-1", "old-2", "now"}
    assert not CostRollup.objects.exists() and not RollupCoverage.objects.exists()


def test_zero_days_keeps_everything_and_the_current_month_is_never_pruned():
    assert prune_cutoff(0) is None
    assert prune_usage(0).deleted == 0
    now = datetime(2026, 3, 5, 15, tzinfo=UTC)
    assert prune_cutoff(2, now) == datetime(2026, 3, 1, tzinfo=UTC)  # monthly budgets read March
    assert prune_cutoff(40, now) == datetime(2026, 1, 24, tzinfo=UTC)  # whole days only
    with pytest.raises(ValueError):
        prune_cutoff(-1)


def test_dead_letter_rows_are_untouched():
    row(OLD, request_id="old")
    UsageDeadLetter.objects.create(request_id="pending", created_at=OLD, occurred_at=OLD, entry={"x": 1})
    prune_usage(30)
    assert ledger() == set()
    assert UsageDeadLetter.objects.filter(request_id="pending", replayed_at__isnull=True).exists()


def test_a_day_pruned_before_is_never_recomputed_and_rows_replayed_after_its_rollup_are_held():
    row(OLD, request_id="a")
    row(OLD, request_id="b")
    prune_usage(30)  # rollup counts 2 requests, the ledger is empty
    # Then a dead letter from that day comes back (the database was down for months).
    row(OLD, request_id="replayed", cost_usd=Decimal("9"))
    UsageDeadLetter.objects.create(request_id="replayed", occurred_at=OLD, entry={}, replayed_at=timezone.now())
    before = csv_reports()

    report = prune_usage(30)

    assert CostRollup.objects.get(day=OLD.date()).requests == 2  # history not shrunk to the late row
    assert (report.deleted, report.held, report.days[0].recomputed) == (0, 1, False)
    assert ledger() == {"replayed"}
    assert csv_reports() == before


def test_a_stopped_run_is_finished_without_recomputing():
    for name in "abc":
        row(OLD, request_id=name)
    recompute_day(OLD.date(), ledger_whole=True)
    UsageRecord.objects.filter(request_id="a").delete()  # a run stopped after its first batch
    report = prune_usage(30)
    assert ledger() == set() and report.deleted == 2
    assert CostRollup.objects.get(day=OLD.date()).requests == 3


def test_rows_a_total_budget_sums_are_kept():
    row(OLD, request_id="capped", team_id=7, team_name="capped")
    row(OLD, request_id="free", team_id=8, team_name="free")
    Budget.objects.create(scope="team", team_id=_team(7), amount_usd=Decimal("10"), period="total")
    assert prune_usage(30).held == 1
    assert ledger() == {"capped"}
    Budget.objects.create(scope="global", amount_usd=Decimal("10"), period="total")
    row(OLD, request_id="free-2", team_id=8)
    assert prune_usage(30).deleted == 0 and ledger() == {"capped", "free-2"}


def _team(pk: int) -> int:
    from billing.models import Team

    return Team.objects.create(id=pk, name=f"team-{pk}").pk


def test_a_second_prune_while_one_runs_does_nothing():
    row(OLD, request_id="old")
    if connection.vendor == "postgresql":
        import psycopg

        db = connection.settings_dict
        other = psycopg.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432,
                                password=db["PASSWORD"] or None, autocommit=True)
        other.execute("SELECT pg_advisory_lock(%s)", [PG_LOCK_ID])

        def release() -> None:
            other.execute("SELECT pg_advisory_unlock(%s)", [PG_LOCK_ID])
            other.close()
    else:
        cache.add(CACHE_LOCK_KEY, "another worker", timeout=60)

        def release() -> None:
            cache.delete(CACHE_LOCK_KEY)
    try:
        report = prune_usage(30)
        assert report.locked_out and report.deleted == 0 and ledger() == {"old"}
    finally:
        release()
    assert prune_usage(30).deleted == 1


def test_the_command_is_a_dry_run_unless_applied():
    row(OLD, request_id="old")
    out = StringIO()
    call_command("prune_usage", "--days", "30", stdout=out)
    assert "Would delete 1 usage records of 1 days" in out.getvalue() and ledger() == {"old"}
    call_command("prune_usage", "--days", "30", "--apply", stdout=out)
    assert "Deleted 1 usage records" in out.getvalue() and ledger() == set()
    call_command("prune_usage", "--days", "0", stdout=out)
    assert "Retention is off" in out.getvalue()


def test_the_beat_task_prunes_with_the_setting(settings):
    from billing.tasks import prune_usage_records as task

    row(OLD, request_id="old")
    settings.GATEWAY_USAGE_RETENTION_DAYS = 0
    assert task() == 0
    settings.GATEWAY_USAGE_RETENTION_DAYS = 30
    assert task() == 1 and prune_usage_records() == 0


def test_the_batch_size_comes_from_the_setting(settings):
    for i in range(5):
        row(OLD, request_id=f"old-{i}")
    settings.GATEWAY_USAGE_RETENTION_BATCH = 2
    assert prune_usage(30).batches == 3
