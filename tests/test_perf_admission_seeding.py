"""Admission seeds an unseeded budget slot with one ledger read, however many requests
find it unseeded at once (billing.admission._spent_units): the first burst of a process,
or every request in flight after a Redis restart, used to sum the ledger once each."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import admission, money
from billing.keys import hash_key, issue_key, load_key
from billing.limits import get_limit_store, to_units
from tests.test_rollups import ledger_row

pytestmark = pytest.mark.django_db(transaction=True)  # admission reads the database from its own thread


def test_concurrent_admissions_share_one_ledger_read_per_slot(monkeypatch):
    issued = issue_key("burst", budget_usd=Decimal("10"), budget_period="month")
    ledger_row(timezone.now(), key_id=issued.key.id, cost_usd=Decimal("3"))
    info = load_key(hash_key(issued.secret))
    reads: list[object] = []
    real = money.spent_in_period

    def counting(budget, now=None):
        reads.append(budget.id)
        return real(budget, now)

    monkeypatch.setattr(money, "spent_in_period", counting)

    async def burst():
        admitted = await asyncio.gather(*(admission.admit(info, 10, Decimal("0.01")) for _ in range(50)))
        usage = await get_limit_store().usage(admitted[0].slots)
        return admitted, usage[admitted[0].slots[0].key]

    admitted, usage = asyncio.run(burst())
    assert len(admitted) == 50 and all(a.lease for a in admitted)
    assert len(reads) == 1  # one read for the 50 (was one each)
    assert usage.spent == to_units(Decimal("3"))  # seeded from the ledger
    assert usage.reserved == to_units(Decimal("0.01")) * 50
    assert not admission._seeding  # nothing left behind


def test_a_failed_read_fails_every_waiter_and_the_next_admission_reads_again(monkeypatch):
    issued = issue_key("flaky", budget_usd=Decimal("10"), budget_period="month")
    info = load_key(hash_key(issued.secret))
    calls = []
    real = money.spent_in_period

    def failing_once(budget, now=None):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database away")
        return real(budget, now)

    monkeypatch.setattr(money, "spent_in_period", failing_once)

    async def scenario():
        first = await asyncio.gather(*(admission.admit(info, 10, Decimal("0.01")) for _ in range(5)),
                                     return_exceptions=True)
        later = await admission.admit(info, 10, Decimal("0.01"))
        return first, later

    first, later = asyncio.run(scenario())
    assert all(isinstance(r, RuntimeError) for r in first)
    assert later.lease is not None and len(calls) == 2
