"""The beat task that writes dead-lettered usage rows back (billing.tasks), and its
default schedule entry."""

from __future__ import annotations

import pytest

from django.utils import timezone

from billing import dead_letters
from billing.models import UsageRecord
from billing.tasks import replay_usage_dead_letters
from billing.usage import UsageEntry
from gateway_project.schedule import DEFAULT_SCHEDULE

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_task_writes_file_dead_letters_back_once(settings, tmp_path):
    settings.GATEWAY_LEDGER_DEAD_LETTER_PATH = str(tmp_path / "dead.jsonl")
    entry = UsageEntry(request_id="dead-1", route_id=None, route_name="r", status="success", http_status=200)
    dead_letters.store([(entry, "database down")], timezone.now(), database_up=False)  # as the ledger does
    assert replay_usage_dead_letters() == 1
    assert replay_usage_dead_letters() == 0  # idempotent
    assert list(UsageRecord.objects.values_list("request_id", flat=True)) == ["dead-1"]


def test_the_replay_runs_every_minute_by_default():
    assert DEFAULT_SCHEDULE["replay-usage-dead-letters"] == ("billing.tasks.replay_usage_dead_letters", 60)
