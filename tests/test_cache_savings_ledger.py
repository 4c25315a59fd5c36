"""Cache savings in the ledger: a cache hit's row carries what it saved
(`cache_saved_usd`) through the group-committed writer, the dead letters and their
replay, the rollups and the live part of today's figures, exactly like cost_usd."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from django.db import connection
from django.utils import timezone

from billing import dead_letters
from billing.models import CostRollup, UsageDeadLetter, UsageRecord
from billing.reports import queries
from billing.rollups import recompute_day, recompute_recent
from billing.usage import UsageEntry, record_usages, write_usage
from tests.ledger_helpers import POISON_ROUTE, DatabaseDown, entry, on_ledger_connection, poison_trigger
from tests.test_rollups import TRICKY, ledger_row

pytestmark = pytest.mark.django_db(transaction=True)  # the writer commits on its own thread

HIT = UsageRecord.Status.CACHE_HIT
SAVED = Decimal("0.0012345678")
DAY = date(2026, 3, 14)
NOON = datetime(2026, 3, 14, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def dead_letter_file(settings, tmp_path):
    settings.GATEWAY_LEDGER_DEAD_LETTER_PATH = str(tmp_path / "dead.jsonl")
    return tmp_path / "dead.jsonl"


def hit(request_id: str, saved: Decimal = SAVED, **kw) -> UsageEntry:
    """A cache hit as the pipeline settles it: it costs 0, its baseline is its cost
    (routing saved nothing), and it carries what the cached answer had cost."""
    return entry(request_id, status=HIT, cost_usd=Decimal(0), baseline_cost_usd=Decimal(0),
                 cache_saved_usd=saved, **kw)


def write(*entries: UsageEntry) -> None:
    """Through the gateway's own writer (group commit on the ledger thread), concurrently."""
    async def settle_all() -> None:
        await asyncio.gather(*(write_usage(e) for e in entries))

    asyncio.run(settle_all())


def saved_by_request() -> dict[str, tuple[str, Decimal, Decimal]]:
    rows = UsageRecord.objects.values_list("request_id", "status", "cost_usd", "cache_saved_usd")
    return {request_id: (status, cost, saved) for request_id, status, cost, saved in rows}


# --- the writer and the dead letters ---------------------------------------------------------------
def test_the_group_committed_writer_stores_each_hits_saving_exactly():
    entries = [hit(f"hit-{i}", saved) for i, saved in enumerate(TRICKY)]
    entries.append(entry("miss-1", cost_usd=Decimal("0.5")))  # an existing caller: no saving given
    write(*entries)
    rows = saved_by_request()
    assert rows == {
        **{f"hit-{i}": (HIT, Decimal(0), saved) for i, saved in enumerate(TRICKY)},
        "miss-1": ("success", Decimal("0.5"), Decimal(0)),
    }


def test_a_saving_is_rounded_to_the_columns_places_like_a_cost():
    write(hit("hit-round", Decimal("0.00000000014")))
    assert saved_by_request()["hit-round"][2] == Decimal("0.0000000001")


def test_a_saving_that_does_not_fit_its_column_refuses_only_that_row():
    record_usages([hit("ok"), hit("absurd", Decimal("1e12")), hit("nan", Decimal("NaN"))])
    assert list(UsageRecord.objects.values_list("request_id", flat=True)) == ["ok"]
    refused = dict(UsageDeadLetter.objects.values_list("request_id", "error"))
    assert set(refused) == {"absurd", "nan"} and all("cache_saved_usd" in why for why in refused.values())


def test_a_hit_the_database_refuses_is_dead_lettered_with_its_saving_and_replayed():
    with poison_trigger():
        write(hit("refused-hit", route_name=POISON_ROUTE), hit("fine-hit"))
    assert saved_by_request() == {"fine-hit": (HIT, Decimal(0), SAVED)}
    letter = UsageDeadLetter.objects.get()
    assert letter.entry["cache_saved_usd"] == str(SAVED) and letter.entry["status"] == HIT
    assert dead_letters.replay().written == 1
    assert saved_by_request()["refused-hit"] == (HIT, Decimal(0), SAVED)


def test_a_hit_written_while_the_database_is_down_keeps_its_saving_in_the_file(dead_letter_file):
    with on_ledger_connection(DatabaseDown()):
        write(hit("offline-hit"))
    assert not UsageRecord.objects.exists()
    line = orjson.loads(dead_letter_file.read_bytes())
    assert line["entry"]["cache_saved_usd"] == str(SAVED)
    assert dead_letters.replay().written == 1
    assert saved_by_request()["offline-hit"] == (HIT, Decimal(0), SAVED)


def test_a_dead_letter_from_before_the_cache_replays_with_no_saving(dead_letter_file):
    with connection.execute_wrapper(DatabaseDown()):
        record_usages([entry("old-row", cost_usd=Decimal("0.25"))])
    line = orjson.loads(dead_letter_file.read_bytes())
    del line["entry"]["cache_saved_usd"]  # as the previous release wrote it
    dead_letter_file.write_bytes(orjson.dumps(line) + b"\n")
    assert dead_letters.replay().written == 1
    row = UsageRecord.objects.get()
    assert (row.cost_usd, row.cache_saved_usd) == (Decimal("0.25"), Decimal(0))


# --- rollups ---------------------------------------------------------------------------------
def test_rollups_count_the_hits_and_sum_their_savings_exactly():
    savings = [TRICKY[i % len(TRICKY)] for i in range(40)]
    for i, saved in enumerate(savings):
        ledger_row(NOON + timedelta(seconds=i), status=HIT, cost_usd=Decimal(0), baseline_cost_usd=Decimal(0),
                   cache_saved_usd=saved)
    ledger_row(NOON, cost_usd=Decimal("0.3"), baseline_cost_usd=Decimal("0.5"))  # a miss in the same cell
    ledger_row(NOON, route_name="other", cost_usd=Decimal("0.1"))  # a cell without hits
    recompute_day(DAY)
    cell = CostRollup.objects.get(route_name="chat")
    assert (cell.requests, cell.cache_hits, cell.errors) == (41, 40, 0)
    assert cell.cache_saved_usd == sum(savings)
    assert (cell.cost_usd, cell.baseline_cost_usd) == (Decimal("0.3"), Decimal("0.5"))
    other = CostRollup.objects.get(route_name="other")
    assert (other.cache_hits, other.cache_saved_usd) == (0, Decimal(0))


def test_recomputing_a_day_updates_its_cache_figures():
    row = ledger_row(NOON, status=HIT, cost_usd=Decimal(0), baseline_cost_usd=Decimal(0), cache_saved_usd=SAVED)
    recompute_day(DAY)
    UsageRecord.objects.filter(pk=row.pk).update(cache_saved_usd=Decimal("0.5"))
    ledger_row(NOON, status=HIT, cost_usd=Decimal(0), baseline_cost_usd=Decimal(0), cache_saved_usd=Decimal("0.25"))
    recompute_day(DAY)
    cell = CostRollup.objects.get()
    assert (cell.cache_hits, cell.cache_saved_usd) == (2, Decimal("0.75"))


# --- live figures -------------------------------------------------------------------------------
def today_total() -> queries.Row:
    today = timezone.now().astimezone(UTC).date()
    return queries.daily(today, today)[-1]


def test_todays_figures_include_hits_made_since_the_last_rollup_once():
    ledger_row(timezone.now(), status=HIT, cost_usd=Decimal(0), baseline_cost_usd=Decimal(0), cache_saved_usd=SAVED)
    ledger_row(timezone.now(), cost_usd=Decimal("0.1"), baseline_cost_usd=Decimal("0.3"))
    before = today_total()
    assert (before.requests, before.cache_hits, before.cache_saved) == (2, 1, SAVED)  # nothing rolled up yet
    assert (before.savings, before.total_saved) == (Decimal("0.2"), Decimal("0.2") + SAVED)
    recompute_recent()
    assert CostRollup.objects.get().cache_saved_usd == SAVED
    ledger_row(timezone.now(), status=HIT, cost_usd=Decimal(0), baseline_cost_usd=Decimal(0),
               cache_saved_usd=Decimal("0.0000000001"))  # after the rollup: read live
    after = today_total()
    assert (after.requests, after.cache_hits, after.cache_saved) == (3, 2, SAVED + Decimal("0.0000000001"))
