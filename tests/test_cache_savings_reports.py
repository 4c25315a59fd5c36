"""Cache savings in the finance reports and the admin: the savings report shows, per
route and in total, routing's saving and the cache's side by side (each request's
saving counted once), the CSV files carry them exactly, and a cache hit's usage
record says what it saved."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import UsageRecord
from billing.playground import playground_key
from billing.reports.formatting import usd
from billing.rollups import recompute_range
from tests.test_reports import finance_client  # noqa: F401 - fixture
from tests.test_rollups import TRICKY, ledger_row

pytestmark = pytest.mark.django_db

HIT = UsageRecord.Status.CACHE_HIT
START, END = date(2026, 3, 10), date(2026, 3, 12)
RANGE = f"start={START}&end={END}"
ROUTES = ["chat", "batch", "=cmd"]


def cache_hit(created_at: datetime, saved: Decimal, **kw) -> UsageRecord:
    """A cache hit's row as the pipeline writes it: cost 0, baseline = cost (so routing
    saved nothing on it), and what the cached answer had cost when it was stored."""
    return ledger_row(created_at, status=HIT, cost_usd=Decimal(0), baseline_cost_usd=Decimal(0),
                      cache_saved_usd=saved, prompt_tokens=0, completion_tokens=0, **kw)


@pytest.fixture
def mixture():
    """Successes (routing saves baseline - cost, sometimes negatively), cache hits and
    errors over three routes, in and around the range, part rolled up and part not
    (the last day's rollup is left out: its rows are read live). Returns the rows
    inside the range."""
    for i in range(90):
        day = START + timedelta(days=i % 5 - 1)  # 9th .. 13th: a day either side is outside
        at = datetime(day.year, day.month, day.day, i % 24, i % 60, tzinfo=UTC)
        route = ROUTES[i % 3]
        if i % 4 == 0:
            cache_hit(at, TRICKY[i % len(TRICKY)], route_name=route)
        else:
            ledger_row(at, route_name=route, cost_usd=TRICKY[i % len(TRICKY)],
                       baseline_cost_usd=TRICKY[(i + 2) % len(TRICKY)],
                       status=UsageRecord.Status.ERROR if i % 7 == 0 else UsageRecord.Status.SUCCESS)
    recompute_range(START - timedelta(days=1), END - timedelta(days=1))
    return list(UsageRecord.objects.filter(created_at__date__gte=START, created_at__date__lte=END))


def read_csv(response) -> list[dict]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def expected(rows: list[UsageRecord]) -> dict:
    """The savings figures of some ledger rows, from the rows themselves."""
    routing = sum((r.baseline_cost_usd - r.cost_usd for r in rows), Decimal(0))
    cache = sum((r.cache_saved_usd for r in rows), Decimal(0))
    return {"cost": sum((r.cost_usd for r in rows), Decimal(0)),
            "baseline": sum((r.baseline_cost_usd for r in rows), Decimal(0)),
            "routing": routing, "hits": sum(r.status == HIT for r in rows), "cache": cache, "total": routing + cache}


def test_the_mixture_separates_routing_from_cache_savings(mixture):
    """Guards the fixture itself: both kinds of saving are there, and distinct."""
    figures = expected(mixture)
    assert figures["hits"] and figures["cache"] > 0 and figures["routing"] != 0
    assert all(r.cost_usd == r.baseline_cost_usd == 0 for r in mixture if r.status == HIT)


# --- CSV ---------------------------------------------------------------------------------------
def test_savings_csv_has_routing_and_cache_savings_per_route_and_in_total(finance_client, mixture):  # noqa: F811
    *routes, total = read_csv(finance_client.get(f"/reports/csv/savings/?{RANGE}"))
    by_route = {r["route"]: r for r in routes}
    assert set(by_route) == {"chat", "batch", "'=cmd"}
    for name, row in [(r.lstrip("'"), by_route[r]) for r in by_route] + [(None, total)]:
        want = expected([r for r in mixture if name is None or r.route_name == name])
        assert Decimal(row["cost_usd"]) == want["cost"]
        assert Decimal(row["baseline_cost_usd"]) == want["baseline"]
        assert Decimal(row["savings_usd"]) == want["routing"]  # routing only: hits add 0 to both sides
        assert int(row["cache_hits"]) == want["hits"]
        assert Decimal(row["cache_saved_usd"]) == want["cache"]
        assert Decimal(row["total_saved_usd"]) == want["total"]
        assert Decimal(row["total_saved_pct"]) == (
            want["total"] * 100 / (want["baseline"] + want["cache"])).quantize(Decimal("0.01"))
        for column in ("cost_usd", "baseline_cost_usd", "savings_usd", "cache_saved_usd", "total_saved_usd"):
            assert re.fullmatch(r"-?\d+\.\d{10}", row[column]), column  # exact decimals, never floats
    assert total["route"] == "TOTAL"


@pytest.mark.parametrize("view", ["spend", "team", "key", "route", "model", "provider"])
def test_every_breakdown_csv_totals_the_cache_columns_like_the_ledger(finance_client, mixture, view):  # noqa: F811
    *body, total = read_csv(finance_client.get(f"/reports/csv/{view}/?{RANGE}"))
    want = expected(mixture)
    assert (int(total["cache_hits"]), Decimal(total["cache_saved_usd"])) == (want["hits"], want["cache"])
    assert Decimal(total["savings_usd"]) == want["routing"]
    assert Decimal(total["total_saved_usd"]) == want["total"]
    assert sum(Decimal(r["cache_saved_usd"]) for r in body) == want["cache"]


def test_a_range_without_hits_shows_zero_cache_savings_and_a_zero_percentage(finance_client):  # noqa: F811
    at = datetime(START.year, START.month, START.day, 9, tzinfo=UTC)
    ledger_row(at, cost_usd=Decimal("0.5"), baseline_cost_usd=Decimal("0.5"))
    recompute_range(START, START)
    *_, total = read_csv(finance_client.get(f"/reports/csv/savings/?{RANGE}"))
    assert (total["cache_hits"], total["cache_saved_usd"]) == ("0", "0.0000000000")
    assert (total["savings_pct"], total["total_saved_pct"]) == ("0.00", "0.00")  # 0 %, not blank


def test_todays_hits_are_in_the_savings_csv_before_any_rollup(finance_client):  # noqa: F811
    cache_hit(timezone.now(), Decimal("0.0000031415"), route_name="chat")
    today = timezone.now().astimezone(UTC).date()
    *_, total = read_csv(finance_client.get(f"/reports/csv/savings/?start={today}&end={today}"))
    assert (total["cache_hits"], total["cache_saved_usd"], total["total_saved_usd"]) == (
        "1", "0.0000031415", "0.0000031415")


# --- the page ------------------------------------------------------------------------------------
def savings_section(html: str) -> str:
    return html.split('<section id="savings">')[1].split("</section>")[0]


def cells(row_html: str) -> dict[str, str]:
    """A savings row's figures by their cell class: the shown text and the exact title."""
    found = re.findall(r'<td class="num ([\w-]+)"(?: title="([^"]*)")?>([^<]*)</td>', row_html)
    return {name: (shown, title) for name, title, shown in found}


def test_the_savings_table_shows_cache_hits_and_savings_beside_routing_savings(finance_client, mixture):  # noqa: F811
    section = savings_section(finance_client.get(f"/reports/?{RANGE}").content.decode())
    assert "Saved by routing" in section and "Cache hits" in section and "Saved by the cache" in section
    rows = {re.search(r"<td>([^<]*)</td>", tr).group(1): tr for tr in section.split("<tr>")[2:]}
    for label, name in [("chat", "chat"), ("batch", "batch"), ("=cmd", "=cmd"), ("Total", None)]:
        want = expected([r for r in mixture if name is None or r.route_name == name])
        got = cells(rows[label])
        assert got["cache-hits"] == (str(want["hits"]), "")
        assert got["savings-cache"] == (usd(want["cache"]), str(want["cache"]))
        assert got["savings-routing"] == (usd(want["routing"]), str(want["routing"]))
        assert got["savings-total"] == (usd(want["total"]), str(want["total"]))


def test_the_overview_has_a_saved_by_the_cache_card(finance_client, mixture):  # noqa: F811
    html = finance_client.get(f"/reports/?{RANGE}").content.decode()
    want = expected(mixture)
    card = html.split('id="total-cache-saved"')[1].split("</div></div>")[0]
    assert f'title="{want["cache"]}">{usd(want["cache"])}<' in card
    assert f"Saved by the cache ({want['hits']} cache hits)" in card
    assert f'id="total-savings" title="{want["routing"]}"' in html  # the routing card stays routing's


# --- the usage record admin and My usage -----------------------------------------------------------
def test_a_cache_hits_admin_page_says_what_it_saved(admin_client):
    record = cache_hit(timezone.now(), Decimal("0.0012345678"), request_id="hit-1")
    html = admin_client.get(reverse("admin:billing_usagerecord_change", args=[record.pk])).content.decode()
    assert "Saved by the cache (USD)" in html
    assert "$0.0012345678: what the cached answer cost when it was stored, which this request did not pay" in html
    assert "answered from the cache" in html  # its status
    listing = admin_client.get(reverse("admin:billing_usagerecord_changelist")).content.decode()
    assert "Answered from the cache" in listing
    assert '$0.000000<br><span class="quiet">saved $0.001235</span>' in listing


def test_other_records_pages_carry_no_cache_line(admin_client):
    record = ledger_row(timezone.now(), request_id="miss-1")
    html = admin_client.get(reverse("admin:billing_usagerecord_change", args=[record.pk])).content.decode()
    assert "Saved by the cache" not in html and "$0.001000" in html
    listing = admin_client.get(reverse("admin:billing_usagerecord_changelist")).content.decode()
    assert "saved $" not in listing


def test_my_usage_says_what_a_cache_hit_saved(client, django_user_model):
    user = django_user_model.objects.create_user("alice", password="alice-pass-1")
    client.force_login(user)
    key = playground_key(user)
    cache_hit(timezone.now(), Decimal("0.0000031415"), key_id=key.pk, key_prefix=key.prefix)
    recent = client.get("/reports/me/").content.decode().split('id="recent"')[1].split("</section>")[0]
    assert 'Answered from the cache (saved <span title="0.0000031415">$0.0000031</span>)' in recent
