"""The ledger never loses a row: a row the database refuses stays out alone, and is
dead-lettered (table, or a local file while the database is down), then replayed
once. Faults are injected at the database (trigger, execute hook)."""

from __future__ import annotations

import logging
from decimal import Decimal
from io import StringIO

import orjson
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from prometheus_client import REGISTRY

from billing import dead_letters
from billing.models import UsageDeadLetter, UsageRecord
from billing.usage import record_usages
from tests.ledger_helpers import POISON_ROUTE, Counting, DatabaseDown, entry, poison_trigger

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def dead_letter_file(settings, tmp_path):
    settings.GATEWAY_LEDGER_DEAD_LETTER_PATH = str(tmp_path / "dead.jsonl")
    return tmp_path / "dead.jsonl"


def dead_lettered(place: str) -> float:
    return REGISTRY.get_sample_value("gateway_ledger_dead_lettered_total", {"place": place}) or 0.0


def pending(place: str) -> float:
    return REGISTRY.get_sample_value("gateway_ledger_dead_letters_pending", {"place": place})


def test_a_normal_batch_is_one_statement():
    counting = Counting()
    with connection.execute_wrapper(counting):
        record_usages([entry(f"ok-{i}") for i in range(50)])
    assert len(counting.statements) == 1
    assert UsageRecord.objects.count() == 50


def test_a_row_the_database_refuses_never_takes_the_batch_down(caplog):
    before = dead_lettered("table")
    healthy = [entry(f"ok-{i}", attempt_log=[{"error": "upstream said prompt-text-sentinel"}]) for i in range(20)]
    bad = entry("bad-1", route_name=POISON_ROUTE, attempt_log=[{"error": "prompt-text-sentinel"}])
    with poison_trigger(), caplog.at_level(logging.ERROR, logger="gateway.ledger"):
        record_usages(healthy[:10] + [bad] + healthy[10:])
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == {e.request_id for e in healthy}
    letter = UsageDeadLetter.objects.get()
    assert letter.request_id == "bad-1" and letter.replayed_at is None and "poisoned row" in letter.error
    assert letter.entry["route_name"] == POISON_ROUTE and letter.entry["cost_usd"] == "0.000123"
    assert dead_lettered("table") == before + 1
    assert pending("table") == 1
    logged = [r.getMessage() for r in caplog.records]
    assert any("bad-1" in m and "dead-lettered" in m for m in logged)
    assert not any("prompt-text-sentinel" in m for m in logged)


def test_rows_that_do_not_fit_their_columns_never_reach_the_statement():
    """SQLite would store them (and break every page that reads them back);
    PostgreSQL would refuse the whole statement: both now refuse just the row."""
    absurd = [
        entry("huge-tokens", prompt_tokens=10**19),
        entry("negative-tokens", completion_tokens=-5),
        entry("float-tokens", prompt_tokens=12.5),
        entry("huge-cost", cost_usd=Decimal("1e12")),
        entry("x" * 65),
        entry("no-status", status=None),
    ]
    counting = Counting()
    with connection.execute_wrapper(counting):
        record_usages([entry("ok-1"), *absurd, entry("ok-2")])
    assert set(UsageRecord.objects.values_list("request_id", flat=True)) == {"ok-1", "ok-2"}
    assert UsageDeadLetter.objects.count() == len(absurd)
    assert len([s for s in counting.statements if "billing_usagerecord" in s]) == 1  # no retry needed
    assert "prompt_tokens" in UsageDeadLetter.objects.get(request_id="huge-tokens").error


def test_while_the_database_is_down_rows_go_to_the_file_and_a_replay_writes_each_once(dead_letter_file):
    record_usages([entry("early")])
    down = DatabaseDown()  # down until told otherwise
    before = dead_lettered("file")
    with connection.execute_wrapper(down):
        record_usages([entry("early"), entry("a"), entry("b")])  # "early" is already in the ledger
        record_usages([entry("c")])
        lines = dead_letter_file.read_bytes().splitlines()
        assert [orjson.loads(line)["request_id"] for line in lines] == ["early", "a", "b", "c"]
        # each batch, then its first row alone (a fresh connection may work): the rest is not tried
        assert down.failed == 4
        assert dead_lettered("file") == before + 4 and pending("file") == 4
        report = dead_letters.replay()
        assert report.database_down and report.written == 0
        assert dead_letter_file.with_name("dead.jsonl.replaying").exists()  # kept for the next replay
        down.up()
        report = dead_letters.replay()
    assert (report.written, report.already_in_ledger, report.still_failing) == (3, 1, [])
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == ["a", "b", "c", "early"]
    assert not dead_letter_file.exists() and not dead_letter_file.with_name("dead.jsonl.replaying").exists()
    again = dead_letters.replay()
    assert (again.written, again.already_in_ledger) == (0, 0)
    assert UsageRecord.objects.count() == 4


def test_a_replayed_row_keeps_its_time_and_values(dead_letter_file):
    with connection.execute_wrapper(DatabaseDown()):
        record_usages([entry("t-1", cost_usd=Decimal("1.2345678901"), attempt_log=[{"target": "p/m"}])])
    occurred = orjson.loads(dead_letter_file.read_bytes())["occurred_at"]
    dead_letters.replay()
    row = UsageRecord.objects.get()
    assert row.created_at.isoformat() == occurred
    assert row.cost_usd == Decimal("1.2345678901") and row.attempt_log == [{"target": "p/m"}]


def test_the_command_replays_the_table_and_the_file_once_and_reports(dead_letter_file):
    with poison_trigger():
        record_usages([entry("refused", route_name=POISON_ROUTE)])
        with connection.execute_wrapper(DatabaseDown()):
            record_usages([entry("offline-1"), entry("offline-2")])
        out = StringIO()
        with pytest.raises(CommandError):  # the poisoned row still fails: exit status 1
            call_command("replay_usage_dead_letters", stdout=out)
        assert "written to the ledger: 2" in out.getvalue()
        assert "still failing: 1" in out.getvalue() and "refused: " in out.getvalue()
    out = StringIO()
    call_command("replay_usage_dead_letters", stdout=out)  # the database takes it now
    assert "written to the ledger: 1" in out.getvalue() and "still failing: 0" in out.getvalue()
    assert sorted(UsageRecord.objects.values_list("request_id", flat=True)) == ["offline-1", "offline-2", "refused"]
    letter = UsageDeadLetter.objects.get()
    assert letter.replayed_at is not None and letter.replay_attempts == 2
    out = StringIO()
    call_command("replay_usage_dead_letters", stdout=out)
    assert "written to the ledger: 0" in out.getvalue()
    assert UsageRecord.objects.count() == 3 and pending("table") == 0


def test_a_torn_line_in_the_file_is_set_aside_not_lost(dead_letter_file):
    with connection.execute_wrapper(DatabaseDown()):
        record_usages([entry("whole")])
    with open(dead_letter_file, "ab") as f:
        f.write(b'{"request_id": "torn", "entr')  # a crash mid-append
    report = dead_letters.replay()
    assert report.written == 1 and report.unreadable_lines == 1
    assert dead_letter_file.with_name("dead.jsonl.unreadable").read_bytes().startswith(b'{"request_id": "torn"')
