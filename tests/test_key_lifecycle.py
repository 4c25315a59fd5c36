"""billing.keys and billing.budgets: rotate with a grace period, limits, what the hot
path loads for a key, one authentication path for unknown/revoked/expired keys; and
the admin's rotate action, limits and budget inlines."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

import billing.keys as keys
from billing.budgets import set_key_budget, set_team_budget
from billing.keys import (
    KeyStateError,
    authenticate,
    hash_key,
    issue_key,
    key_cache,
    load_key,
    revoke_key,
    rotate_key,
    update_key_limits,
)
from billing.models import Budget, BudgetAlert, VirtualKey
from gateway_project.errors import AuthenticationFailed
from tests.factories import RouteFactory, TeamFactory

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"sk-gw-[A-Za-z0-9_-]{20,}")


def full_key(**kw) -> VirtualKey:
    route, team = RouteFactory(), TeamFactory()
    kw = {"team": team, "routes": [route], "metadata": {"owner": "jane"}, "rpm_limit": 60, "tpm_limit": 9000,
          "tags": ["prod"], **kw}
    key = issue_key("search", **kw).key
    set_key_budget(key, Decimal("25"), "day", action="alert", alert_emails="a@example.com")
    return key


# --- rotate ---------------------------------------------------------------------------


def test_rotate_copies_the_key_moves_its_budget_and_gives_the_old_one_a_grace_period():
    old = full_key()
    BudgetAlert.objects.create(budget=old.budgets.get(), period_key="2026-11-21", threshold_pct=80, spent_usd=20)

    issued = rotate_key(old, 600)

    new = issued.key
    assert new.key_hash == hash_key(issued.secret) and new.pk != old.pk
    assert (new.name, new.team, new.rpm_limit, new.tpm_limit, new.tags, new.metadata) == (
        "search", old.team, 60, 9000, ["prod"], {"owner": "jane"}
    )
    assert list(new.allowed_routes.all()) == list(old.allowed_routes.all())
    moved = new.budgets.get()  # the same budget row: spend and alerts so far carry over
    assert (moved.amount_usd, moved.period, moved.action, moved.alert_emails) == (
        Decimal("25"), "day", "alert", "a@example.com"
    )
    assert moved.alerts.count() == 1 and old.budgets.count() == 0
    old.refresh_from_db()
    assert old.replaced_by == new and new.expires_at is None
    assert abs(old.expires_at - (timezone.now() + timedelta(seconds=600))) < timedelta(seconds=5)
    assert not old.is_expired


def test_rotate_keeps_an_earlier_expiry_and_grace_zero_stops_the_old_key_now():
    soon = timezone.now() + timedelta(minutes=5)
    old = issue_key("k", expires_at=soon).key
    rotate_key(old, 3600)
    old.refresh_from_db()
    assert old.expires_at == soon

    other = issue_key("other").key
    rotate_key(other, 0)
    other.refresh_from_db()
    assert other.is_expired


def test_rotate_refuses_revoked_expired_and_rotated_keys_and_bad_grace():
    revoked = issue_key("r").key
    revoke_key(revoked)
    expired = issue_key("e", expires_at=timezone.now() - timedelta(seconds=1)).key
    rotated = issue_key("x").key
    rotate_key(rotated, 60)
    for key, message in [(revoked, "revoked"), (expired, "expired"), (rotated, "already rotated")]:
        with pytest.raises(KeyStateError, match=message):
            rotate_key(key, 60)
    for grace in (-1, True, 31 * 24 * 3600):
        with pytest.raises(ValidationError):
            rotate_key(issue_key("g").key, grace)
    assert VirtualKey.objects.filter(replaced_by__isnull=False).count() == 1


def test_update_key_limits_sets_and_clears_each_limit():
    key = issue_key("k", rpm_limit=5).key
    update_key_limits(key, tpm=100)
    key.refresh_from_db()
    assert (key.rpm_limit, key.tpm_limit) == (5, 100)
    update_key_limits(key, rpm=None)
    key.refresh_from_db()
    assert (key.rpm_limit, key.tpm_limit) == (None, 100)
    with pytest.raises(ValidationError):
        update_key_limits(key, rpm=-1)


def test_issue_key_validates_tags_and_metadata():
    with pytest.raises(ValidationError):
        issue_key("k", tags=["x" * 51])
    with pytest.raises(ValidationError):
        issue_key("k", metadata=["not", "an", "object"])
    assert issue_key("k", tags=[" a", "b", "a "]).key.tags == ["a", "b"]


# --- budgets --------------------------------------------------------------------------


def test_budget_helpers_upsert_one_row_per_owner_and_period():
    key, team = issue_key("k").key, TeamFactory()
    first = set_key_budget(key, Decimal("10"))
    again = set_key_budget(key, Decimal("10"))
    assert first.created and not again.created and not again.changed
    Budget.objects.filter(pk=first.budget.pk).update(enabled=False)
    changed = set_key_budget(key, Decimal("12"), action="alert")
    assert changed.changed and changed.budget.pk == first.budget.pk and changed.budget.enabled
    assert set_team_budget(team, Decimal("100"), "total").budget.scope == "team"
    with pytest.raises(ValidationError):
        set_team_budget(team, Decimal("1.00001"))
    with pytest.raises(ValidationError):
        set_key_budget(key, Decimal("-1"), "day")


# --- what the hot path loads ----------------------------------------------------------


def test_load_key_has_limits_and_the_enabled_key_and_team_budgets():
    team = TeamFactory(rpm_limit=600, tpm_limit=100000)
    key = issue_key("k", team=team, rpm_limit=60, tpm_limit=6000).key
    mine = set_key_budget(key, Decimal("5")).budget
    teams = set_team_budget(team, Decimal("50")).budget
    set_team_budget(team, Decimal("500"), "total")
    Budget.objects.filter(team=team, period="total").update(enabled=False)
    set_key_budget(issue_key("other", team=team).key, Decimal("1"))  # another key's
    Budget.objects.create(scope="global", amount_usd=1000)  # loaded elsewhere

    info = load_key(key.key_hash)

    assert (info.rpm_limit, info.tpm_limit, info.team_rpm_limit, info.team_tpm_limit) == (60, 6000, 600, 100000)
    assert info.budget_ids == {mine.pk, teams.pk}


def test_a_cold_lookup_runs_the_same_queries_for_unknown_and_known_keys():
    key = issue_key("k", team=TeamFactory(), routes=[RouteFactory()]).key
    counts = []
    for digest in (key.key_hash, hash_key("sk-gw-unknown")):
        with CaptureQueriesContext(connection) as queries:
            load_key(digest)
        counts.append(len(queries))
    assert counts[0] == counts[1] == 3


@pytest.mark.django_db(transaction=True)
def test_unknown_revoked_and_expired_keys_take_the_same_path(monkeypatch):
    compares, loads = [], []
    real_compare, real_loader = keys.hmac.compare_digest, key_cache._loader
    monkeypatch.setattr(keys.hmac, "compare_digest", lambda a, b: compares.append(1) or real_compare(a, b))
    monkeypatch.setattr(key_cache, "_loader", lambda h: loads.append(h) or real_loader(h))
    live = issue_key("live").secret
    revoked = issue_key("revoked")
    revoke_key(revoked.key)
    expired = issue_key("expired", expires_at=timezone.now() - timedelta(seconds=1)).secret
    key_cache.clear()

    codes = {}
    for label, secret in [("unknown", "sk-gw-nope"), ("revoked", revoked.secret), ("expired", expired)]:
        for _ in range(2):
            with pytest.raises(AuthenticationFailed) as exc:
                async_to_sync(authenticate)(f"Bearer {secret}")
        codes[label] = exc.value.code
    assert async_to_sync(authenticate)(f"Bearer {live}").name == "live"

    assert codes == {"unknown": "invalid_api_key", "revoked": "revoked_api_key", "expired": "expired_api_key"}
    assert len(compares) == 7  # one constant-time comparison per attempt, unknown keys included
    assert len(loads) == 4  # second attempts (unknown included) come from the cache


# --- admin ----------------------------------------------------------------------------


def test_admin_rotate_action_asks_for_a_grace_period_and_shows_the_new_secret_once(admin_client):
    old = full_key()
    url = reverse("admin:billing_virtualkey_changelist")
    action = {"action": "rotate_selected", "_selected_action": [old.pk]}

    confirm = admin_client.post(url, action)
    assert "Grace period (minutes)" in confirm.content.decode() and "Yes, rotate" in confirm.content.decode()
    assert VirtualKey.objects.count() == 1
    bad = admin_client.post(url, {**action, "post": "yes", "grace_minutes": "-5"})
    assert "greater than or equal to 0" in bad.content.decode() and VirtualKey.objects.count() == 1

    done = admin_client.post(url, {**action, "post": "yes", "grace_minutes": "30"})
    html = done.content.decode()
    secrets = set(SECRET.findall(html))
    assert len(secrets) == 1 and "only this once" in html
    assert "no-store" in done["Cache-Control"]
    new = VirtualKey.objects.get(key_hash=hash_key(secrets.pop()))
    old.refresh_from_db()
    assert old.replaced_by == new
    assert abs(old.expires_at - (timezone.now() + timedelta(minutes=30))) < timedelta(seconds=10)
    for page in (url, reverse("admin:billing_virtualkey_change", args=[new.pk])):
        assert not SECRET.search(admin_client.get(page).content.decode())


def test_admin_rotates_one_key_from_its_page(admin_client):
    key = issue_key("k").key
    rotate_url = reverse("admin:billing_virtualkey_rotate", args=[key.pk])
    assert rotate_url in admin_client.get(reverse("admin:billing_virtualkey_change", args=[key.pk])).content.decode()
    html = admin_client.post(rotate_url, {"post": "yes", "grace_minutes": "0"}).content.decode()
    assert len(set(SECRET.findall(html))) == 1
    key.refresh_from_db()
    assert key.is_expired and key.replaced_by is not None
    again = admin_client.post(rotate_url, {"post": "yes", "grace_minutes": "0"}).content.decode()
    assert "Not rotated" in again and not SECRET.search(again)


def inline(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {f"{prefix}-TOTAL_FORMS": len(rows), f"{prefix}-INITIAL_FORMS": initial,
            f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000}
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


BUDGET_ROW = {"amount_usd": "40", "period": "month", "action": "block", "alert_threshold_pct": "90",
              "alert_emails": "", "webhook_url": "", "enabled": "on"}


def test_admin_edits_limits_tags_metadata_and_budgets_of_a_key(admin_client):
    key = issue_key("k").key
    response = admin_client.post(
        reverse("admin:billing_virtualkey_change", args=[key.pk]),
        {"name": "k2", "team": "", "expires_at_0": "", "expires_at_1": "", "rpm_limit": "30", "tpm_limit": "",
         "tags": "prod, search", "metadata": '{"owner": "ops"}', **inline("budgets", [BUDGET_ROW])},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    key.refresh_from_db()
    assert (key.name, key.rpm_limit, key.tpm_limit, key.tags, key.metadata) == (
        "k2", 30, None, ["prod", "search"], {"owner": "ops"}
    )
    budget = key.budgets.get()
    assert (budget.scope, budget.amount_usd, budget.alert_threshold_pct) == ("key", Decimal("40"), 90)


def test_admin_team_has_limits_and_a_budget_inline(admin_client):
    team = TeamFactory()
    url = reverse("admin:billing_team_change", args=[team.pk])
    assert "Budgets of this team" in admin_client.get(url).content.decode()
    response = admin_client.post(
        url, {"name": team.name, "description": "", "rpm_limit": "100", "tpm_limit": "5000",
              **inline("budgets", [BUDGET_ROW])},
    )
    assert response.status_code == 302
    team.refresh_from_db()
    assert (team.rpm_limit, team.tpm_limit) == (100, 5000)
    assert team.budgets.get().scope == "team"


def test_budget_admin_lists_filters_and_refuses_a_scope_mismatch(admin_client):
    key = issue_key("k").key
    set_key_budget(key, Decimal("7"))
    url = reverse("admin:billing_budget_changelist")
    html = admin_client.get(url, {"scope__exact": "key"}).content.decode()
    assert str(key) in html and "7.0000" in html
    response = admin_client.post(
        reverse("admin:billing_budget_add"), {"scope": "team", "key": key.pk, **BUDGET_ROW}
    )
    assert response.status_code == 200 and "Choose the team this budget applies to." in response.content.decode()
    assert Budget.objects.count() == 1


def test_budget_alerts_are_read_only_in_the_admin(admin_client):
    budget = set_key_budget(issue_key("k").key, Decimal("1")).budget
    alert = BudgetAlert.objects.create(budget=budget, period_key="2026-11", threshold_pct=80, spent_usd=1)
    assert admin_client.get(reverse("admin:billing_budgetalert_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:billing_budgetalert_add")).status_code == 403
    change = admin_client.get(reverse("admin:billing_budgetalert_change", args=[alert.pk]))
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()


@pytest.mark.parametrize("name", ["billing_budget", "billing_budgetalert"])
def test_budget_lists_cost_the_same_queries_for_1_and_5_rows(admin_client, name):
    counts = []
    for rows in (1, 5):
        while Budget.objects.count() < rows:
            n = Budget.objects.count()
            owner = {"key": issue_key(f"k{n}").key} if n % 2 else {"team": TeamFactory()}
            budget = (set_key_budget(owner["key"], Decimal("1")) if "key" in owner
                      else set_team_budget(owner["team"], Decimal("1"))).budget
            BudgetAlert.objects.create(budget=budget, period_key="2026-11", threshold_pct=80, spent_usd=1)
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(reverse(f"admin:{name}_changelist")).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]
