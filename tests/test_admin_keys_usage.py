"""Virtual keys and the usage ledger in the admin: a key's secret is shown once,
revoking asks first, usage records are read-only."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.keys import hash_key, issue_key
from billing.models import UsageRecord, VirtualKey

from .admin_helpers import config, errors_text  # noqa: F401  (config is a fixture)
from .factories import RouteFactory, TeamFactory

pytestmark = pytest.mark.django_db


# --- virtual keys ---------------------------------------------------------------------


def test_it_issues_a_key_and_shows_its_secret_once(admin_client):
    route, team = RouteFactory(), TeamFactory()
    response = admin_client.post(
        reverse("admin:billing_virtualkey_add"),
        {"name": "search-backend", "team": team.pk, "allowed_routes": [route.pk], "expires_at_0": "", "expires_at_1": "", "metadata": "{}"},
        follow=True,
    )
    html = response.content.decode()
    secrets = set(re.findall(r"sk-gw-[A-Za-z0-9_-]{20,}", html))
    assert len(secrets) == 1
    secret = secrets.pop()
    assert "only this once" in html
    key = VirtualKey.objects.get()
    assert key.key_hash == hash_key(secret)
    assert key.team == team
    assert list(key.allowed_routes.all()) == [route]
    # Never again: not on the next page, not on the key's own page, and no hash either.
    for url in (reverse("admin:billing_virtualkey_changelist"), reverse("admin:billing_virtualkey_change", args=[key.pk])):
        page = admin_client.get(url).content.decode()
        assert secret not in page
        assert key.key_hash not in page
        assert key.prefix in page


def test_it_refuses_a_new_key_that_is_already_expired(admin_client):
    past = timezone.now() - timedelta(days=1)
    response = admin_client.post(
        reverse("admin:billing_virtualkey_add"),
        {"name": "late", "expires_at_0": past.strftime("%Y-%m-%d"), "expires_at_1": "00:00:00", "metadata": "{}"},
    )
    assert response.status_code == 200
    assert "must expire in the future" in errors_text(response)
    assert not VirtualKey.objects.exists()


def test_it_revokes_selected_keys_after_confirmation(admin_client):
    key = issue_key("search-backend").key
    url = reverse("admin:billing_virtualkey_changelist")
    action = {"action": "revoke_selected", "_selected_action": [key.pk]}

    confirm = admin_client.post(url, action)
    assert confirm.status_code == 200
    assert "Yes, revoke" in confirm.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None  # nothing happens before confirmation

    done = admin_client.post(url, {**action, "post": "yes"}, follow=True)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "Revoked 1 key" in done.content.decode()


def test_it_revokes_one_key_from_its_page_after_confirmation(admin_client):
    key = issue_key("search-backend").key
    url = reverse("admin:billing_virtualkey_revoke", args=[key.pk])
    assert url in admin_client.get(reverse("admin:billing_virtualkey_change", args=[key.pk])).content.decode()
    assert "Yes, revoke" in admin_client.get(url).content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None
    admin_client.post(url, {"post": "yes"})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_it_lists_key_status(admin_client):
    issue_key("live-key")
    revoked = issue_key("gone-key").key
    revoked.revoked_at = timezone.now()
    revoked.save()
    issue_key("old-key", expires_at=timezone.now() - timedelta(days=1))
    url = reverse("admin:billing_virtualkey_changelist")
    names = {"live-key", "gone-key", "old-key"}
    for status, name in [("active", "live-key"), ("revoked", "gone-key"), ("expired", "old-key")]:
        html = admin_client.get(url, {"status": status}).content.decode()
        assert name in html, status
        assert not any(other in html for other in names - {name}), status


# --- usage ledger ---------------------------------------------------------------------


def test_it_forbids_adding_changing_and_deleting_usage_records(admin_client, config):
    record = UsageRecord.objects.get()
    assert admin_client.get(reverse("admin:billing_usagerecord_add")).status_code == 403
    change = reverse("admin:billing_usagerecord_change", args=[record.pk])
    assert admin_client.post(change, {"request_id": "forged", "status": "error"}).status_code == 403
    assert admin_client.get(reverse("admin:billing_usagerecord_delete", args=[record.pk])).status_code == 403
    assert admin_client.post(reverse("admin:billing_usagerecord_delete", args=[record.pk]), {"post": "yes"}).status_code == 403
    record.refresh_from_db()
    assert record.request_id == "req-123"


def test_it_shows_the_attempt_log_as_a_table(admin_client, config):
    record = UsageRecord.objects.get()
    html = admin_client.get(reverse("admin:billing_usagerecord_change", args=[record.pk])).content.decode()
    assert "<td>p/a</td><td>timeout</td><td>5000 ms</td>" in html
    assert "<td>p/b</td><td>ok</td><td>321 ms</td>" in html
    assert 'name="_save"' not in html  # read-only: no save button


def test_it_finds_usage_by_request_id(admin_client, config):
    html = admin_client.get(reverse("admin:billing_usagerecord_changelist"), {"q": "req-123"}).content.decode()
    assert "req-123" in html
