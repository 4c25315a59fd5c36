"""My usage (/reports/me/): any signed-in user sees their own playground key's spend,
budgets, limits and last requests, and nobody else's."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import UsageRecord, VirtualKey
from billing.playground import playground_key
from billing.rollups import recompute_recent
from tests.factories import BudgetFactory, TeamFactory
from tests.test_rollups import ledger_row

pytestmark = pytest.mark.django_db
URL = "/reports/me/"


@pytest.fixture
def alice(client, django_user_model):
    """A plain signed-in user (not staff) with a playground key."""
    user = django_user_model.objects.create_user("alice", password="alice-pass-1")
    client.force_login(user)
    return playground_key(user)


def spend(key: VirtualKey, cost: str, minutes_ago: int = 0, **kw) -> UsageRecord:
    return ledger_row(timezone.now() - timedelta(minutes=minutes_ago), key_id=key.pk, key_prefix=key.prefix,
                      team_id=key.team_id, cost_usd=Decimal(cost), **kw)


def page(client) -> str:
    response = client.get(URL)
    assert response.status_code == 200
    return response.content.decode()


def card(html: str, element_id: str) -> str:
    return html.split(f'id="{element_id}"')[1].split("</div></div>")[0]


def section(html: str, element_id: str) -> str:
    return html.split(f'id="{element_id}"')[1].split("</section>")[0]


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"] == "/admin/login/?next=/reports/me/"


def test_a_user_without_a_playground_key_is_pointed_to_the_playground(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("bob", password="bob-pass-1"))
    html = page(client)
    assert 'id="no-key"' in html and 'href="/playground/"' in html
    assert not VirtualKey.objects.exists()  # looking does not create a key


def test_a_plain_user_sees_their_spend_today_this_month_and_in_total(client, alice):
    spend(alice, "0.25", prompt_tokens=100, completion_tokens=20)
    spend(alice, "0.000003")
    ledger_row(timezone.now() - timedelta(days=400), key_id=alice.pk, cost_usd=Decimal("2"))  # in the total only
    recompute_recent()
    spend(alice, "0.5")  # after the rollup: live
    html = page(client)
    today = card(html, "spend-today")
    assert 'title="0.7500030000">$0.75<' in today and "3 requests" in today and "150 tokens" in today
    assert 'title="0.7500030000"' in card(html, "spend-month")
    total = card(html, "spend-total")
    assert 'title="2.7500030000">$2.75<' in total and "4 requests" in total
    assert "Figures as of" in html and "today's figures are live" in html
    assert 'action="/admin/logout/"' in html  # a plain user has no admin header to log out from


def test_another_users_spend_never_shows(client, alice, django_user_model):
    bob_key = playground_key(django_user_model.objects.create_user("bob", password="bob-pass-1"))
    spend(alice, "0.10", route_name="alice-route")
    spend(bob_key, "9.87654321", route_name="bob-route")
    ledger_row(timezone.now(), route_name="keyless-route", cost_usd=Decimal("5"))  # no key at all
    recompute_recent()
    spend(bob_key, "3.3", route_name="bob-route")
    html = page(client)
    assert "alice-route" in html and "bob-route" not in html and "keyless-route" not in html
    assert "9.8765432100" not in html and "3.3000000000" not in html and "$13" not in html and "$9.88" not in html
    assert 'title="0.1000000000"' in card(html, "spend-total")
    assert bob_key.prefix not in html


def test_budgets_and_rate_limits_are_shown(client, alice):
    team = TeamFactory(name="research", rpm_limit=600, tpm_limit=None)
    alice.team, alice.rpm_limit, alice.tpm_limit = team, 30, 40000
    alice.save()
    BudgetFactory(scope="key", key=alice, amount_usd=Decimal("5"), period="day")
    BudgetFactory(scope="team", team=team, amount_usd=Decimal("100"), period="month")
    other_team = TeamFactory(name="elsewhere")
    BudgetFactory(scope="team", team=other_team, amount_usd=Decimal("777"), period="month")
    ledger_row(timezone.now(), team_id=team.pk, key_id=None, cost_usd=Decimal("42.4242"))  # a teammate
    spend(alice, "1.25")
    html = page(client)
    budgets = section(html, "budgets")
    own = budgets.split('<tr class="own">')[1].split("</tr>")[0]
    assert "This key" in own and "$5.00" in own and "$1.25" in own and "$3.75" in own and "25.0%" in own
    shared = budgets.split('<tr class="shared">')[1].split("</tr>")[0]
    assert "$100.00" in shared and "has room" in shared
    assert "42.42" not in html and "43.67" not in html  # the team's spend is not this user's to see
    assert "$777" not in budgets  # another team's budget does not apply
    limits = section(html, "rate-limits")
    assert "This key" in limits and ">30<" in limits and ">40,000<" in limits
    assert "Team research" in limits and ">600<" in limits and "no limit" in limits


def test_a_reached_shared_budget_says_so(client, alice):
    BudgetFactory(scope="global", amount_usd=Decimal("1"), period="month")
    ledger_row(timezone.now(), cost_usd=Decimal("2"))  # someone else's spend fills it
    assert "reached" in section(page(client), "budgets").split('<tr class="shared">')[1]


def test_the_last_20_requests_newest_first(client, alice):
    for i in range(25):
        spend(alice, "0.01", minutes_ago=25 - i, route_name=f"r{i:02d}", prompt_tokens=i, completion_tokens=1,
              status=UsageRecord.Status.ERROR if i == 24 else UsageRecord.Status.SUCCESS, http_status=502 if i == 24 else 200)
    recent = section(page(client), "recent")
    assert "Last 20 requests" in recent
    rows = recent.split("<tbody>")[1].split("<tr>")[1:]
    assert len(rows) == 20
    assert "r24" in rows[0] and "Error (502)" in rows[0] and "r05" in rows[-1] and "r04" not in recent
    assert "$0.01" in rows[0] and "openai/gpt-4o-mini" in rows[0] and "24 / 1" in rows[0]


def test_staff_see_it_too_and_it_is_read_only(client, django_user_model):
    user = django_user_model.objects.create_user("ops", password="ops-pass-1", is_staff=True)
    client.force_login(user)
    playground_key(user)
    assert 'id="spend-total"' in page(client)
    assert client.post(URL).status_code == 405
