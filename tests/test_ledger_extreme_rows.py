"""Every row the ledger can hold is readable where it is shown: the admin's usage list
and detail pages and the management API's usage list, with rows at the edges of
their columns (and of what the ledger accepts: the largest cost that bounded tokens
times bounded prices can make), odd attempt logs and empty fields."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing.models import UsageDeadLetter, UsageRecord
from providers.models import MAX_PRICE_PER_MTOK
from providers.types import MAX_REPORTED_TOKENS, Price, Usage
from tests.factories import UsageRecordFactory

pytestmark = pytest.mark.django_db

INT_MAX = 2_147_483_647
MAX_COST = Price(MAX_PRICE_PER_MTOK, MAX_PRICE_PER_MTOK).cost(Usage(MAX_REPORTED_TOKENS, MAX_REPORTED_TOKENS))


def test_the_largest_possible_cost_fits_the_cost_columns():
    field = UsageRecord._meta.get_field("cost_usd")
    # well below the column's limit: SQLite keeps decimals as 15-digit floats, and a value
    # that rounds up to 10^8 would no longer read back (Django quantizes to 18 digits)
    assert MAX_COST * 2 < Decimal(10) ** (field.max_digits - field.decimal_places)
    assert UsageRecord._meta.get_field("baseline_cost_usd").max_digits == field.max_digits


@pytest.fixture
def extreme_rows():
    return [
        UsageRecordFactory(request_id="max", prompt_tokens=INT_MAX, completion_tokens=INT_MAX, cost_usd=MAX_COST,
                           baseline_cost_usd=MAX_COST, input_price_per_mtok=MAX_PRICE_PER_MTOK,
                           output_price_per_mtok=MAX_PRICE_PER_MTOK, latency_ms=INT_MAX, ttft_ms=INT_MAX, attempts=32767,
                           attempt_log=[{"target": "p/m", "outcome": "ok", "latency_ms": INT_MAX, "status": 200}] * 50),
        UsageRecordFactory(request_id="tiny", cost_usd=Decimal("0.0000000001"), baseline_cost_usd=Decimal("0"),
                           attempt_log={"not": "a list"}, candidates="x", ttft_ms=None),
        UsageRecordFactory(request_id="r" * 64, route_name="x" * 100, model_name="m" * 200, key_prefix="k" * 20,
                           team_name="t" * 100, attempt_log=[1, "two", None, {"latency_ms": "soon"}], status="cache_hit"),
    ]


def test_the_admin_usage_pages_show_every_row(admin_client, extreme_rows):
    listing = admin_client.get("/admin/billing/usagerecord/")
    assert listing.status_code == 200
    for row in extreme_rows:
        assert admin_client.get(f"/admin/billing/usagerecord/{row.pk}/change/").status_code == 200


def test_the_management_api_lists_every_row(extreme_rows):
    user = User.objects.create_user("api", password="x", is_staff=True)
    from gateway_admin.roles import FINANCE, grant

    grant(user, FINANCE)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    response = client.get("/api/usage/")
    assert response.status_code == 200
    assert {r["request_id"] for r in response.json()["results"]} == {row.request_id for row in extreme_rows}


def test_the_dead_letter_admin_pages_show_every_row(admin_client):
    letter = UsageDeadLetter.objects.create(request_id="d" * 200, occurred_at="2026-01-01T00:00:00Z",
                                            entry={"prompt_tokens": 10**19, "weird": [None]}, error="x" * 300)
    assert admin_client.get("/admin/billing/usagedeadletter/").status_code == 200
    assert admin_client.get(f"/admin/billing/usagedeadletter/{letter.pk}/change/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_ledger_takes_only_costs_that_read_back(admin_client, settings, tmp_path):
    """The top of the cost column, through the ledger: what it stores lists fine; what
    would read back as 10^8 on SQLite is refused (dead-lettered), on PostgreSQL too."""
    from billing.usage import record_usages
    from tests.ledger_helpers import entry

    settings.GATEWAY_LEDGER_DEAD_LETTER_PATH = str(tmp_path / "dead.jsonl")
    record_usages([entry("top", cost_usd=Decimal("99999999.999998")),
                   entry("too-close", cost_usd=Decimal("99999999.9999999999"))])
    assert list(UsageRecord.objects.values_list("request_id", flat=True)) == ["top"]
    assert UsageDeadLetter.objects.get().request_id == "too-close"
    assert admin_client.get("/admin/billing/usagerecord/").status_code == 200
    assert UsageRecord.objects.get().cost_usd > Decimal("99999999.99")
