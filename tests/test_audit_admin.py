"""The audit trail in the admin: a read-only, filterable list and entry pages with a
readable before/after, "Audit trail" on every audited object's page, exports of what
the filter shows, and a list that stays fast with 100,000 entries."""

from __future__ import annotations

import json
import time

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.keys import issue_key
from gateway_admin import audit, audit_chain
from gateway_admin.models import AuditEntry
from providers.models import Provider
from tests.audit_helpers import Since, fill_trail
from tests.factories import ProviderFactory, TeamFactory

pytestmark = pytest.mark.django_db

LIST = "admin:gateway_admin_auditentry_changelist"
SECRET = "sk-admin-page-secret-81aa"


@pytest.fixture
def auditor(client):
    user = User.objects.create_user("auditor", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_auditentry"),
                              Permission.objects.get(codename="view_provider"))
    client.force_login(user)
    return client


def test_the_list_filters_by_object_who_action_channel_and_date(admin_client):
    provider = ProviderFactory(name="listed", api_key=SECRET)
    provider.timeout_s = 9
    provider.save()
    TeamFactory(name="other-object")
    url = reverse(LIST)
    page = admin_client.get(url).content.decode()
    for title in ("By who", "By action", "By object type", "By channel", "By at", "By who (kind)"):
        assert title.lower() in page.lower(), title
    assert SECRET not in page
    only = admin_client.get(url, {"object_type": "providers.provider", "object_id": str(provider.pk)})
    assert only.status_code == 200
    rows = only.context["cl"].result_list
    assert {(e.object_type, e.object_id) for e in rows} == {("providers.provider", str(provider.pk))}
    assert admin_client.get(url, {"action": "update"}).context["cl"].result_list[0].action == "update"
    assert admin_client.get(url, {"actor": "system"}).status_code == 200
    assert admin_client.get(url, {"via": "system"}).status_code == 200
    assert admin_client.get(url, {"at__gte": "2000-01-01 00:00:00+00:00"}).status_code == 200
    assert admin_client.get(url, {"q": "listed"}).context["cl"].result_count >= 1


def test_an_entry_page_shows_before_and_after_and_nothing_can_be_changed(admin_client):
    provider = ProviderFactory(name="detail", api_key=SECRET)
    TeamFactory()
    mark = Since()
    provider.timeout_s = 42
    provider.api_key = SECRET + "-2"
    provider.save()
    entry = mark.one()
    page = admin_client.get(reverse("admin:gateway_admin_auditentry_change", args=[entry.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert '<table class="audit-diff">' in html and "<th>timeout_s</th>" in html
    assert "42.0" in html and "[secret: changed]" in html and SECRET not in html
    assert 'name="_save"' not in html
    # Read-only for everyone, superusers included.
    assert admin_client.get(reverse("admin:gateway_admin_auditentry_add")).status_code == 403
    assert admin_client.post(reverse("admin:gateway_admin_auditentry_change", args=[entry.pk]),
                             {"actor": "forged"}).status_code == 403
    assert admin_client.post(reverse("admin:gateway_admin_auditentry_delete", args=[entry.pk]),
                             {"post": "yes"}).status_code == 403
    response = admin_client.post(reverse(LIST), {"action": "delete_selected", "_selected_action": [str(entry.pk)],
                                                 "post": "yes"})
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
    assert response.status_code in (200, 302)
    assert audit_chain.verify().ok


def test_every_audited_object_page_links_to_its_own_trail(admin_client, client):
    provider = ProviderFactory(name="linked")
    key = issue_key("linked-key").key
    for name, obj, object_type in (("providers_provider", provider, "providers.provider"),
                                   ("billing_virtualkey", key, "billing.virtualkey")):
        html = admin_client.get(reverse(f"admin:{name}_change", args=[obj.pk])).content.decode()
        expected = f"{reverse(LIST)}?object_type={object_type}&amp;object_id={obj.pk}"
        assert f'href="{expected}"' in html and ">Audit trail</a>" in html
    # Someone who may edit providers but not see the trail gets no link.
    editor = User.objects.create_user("editor", password="x", is_staff=True)
    editor.user_permissions.add(Permission.objects.get(codename="change_provider"))
    client.force_login(editor)
    html = client.get(reverse("admin:providers_provider_change", args=[provider.pk])).content.decode()
    assert ">Audit trail</a>" not in html
    assert client.get(reverse(LIST)).status_code == 403


def test_an_auditor_sees_and_exports_the_trail(auditor):
    provider = ProviderFactory(name="exported", api_key=SECRET)
    TeamFactory(name="not-exported")
    assert auditor.get(reverse(LIST)).status_code == 200
    html = auditor.get(reverse("admin:providers_provider_change", args=[provider.pk])).content.decode()
    assert ">Audit trail</a>" in html
    page = auditor.get(reverse(LIST), {"object_type": "providers.provider"}).content.decode()
    assert "Export these entries (CSV)" in page
    export = auditor.get(reverse("admin:gateway_admin_auditentry_export"),
                         {"format": "jsonl", "object_type": "providers.provider"})
    assert export.status_code == 200 and export["Content-Type"].startswith("application/x-ndjson")
    body = b"".join(export.streaming_content).decode()
    rows = [json.loads(line) for line in body.splitlines()]
    assert {r["object_type"] for r in rows} == {"providers.provider"} and SECRET not in body
    csv = auditor.get(reverse("admin:gateway_admin_auditentry_export"), {"format": "csv"})
    assert b"".join(csv.streaming_content).decode().startswith("seq,at,")
    event = AuditEntry.objects.order_by("-seq").first()
    assert (event.object_repr, event.actor, event.via) == ("audit trail export", "auditor", "admin")
    assert auditor.get(reverse("admin:gateway_admin_auditentry_export"), {"format": "xml"}).status_code == 400


def test_the_export_action_exports_the_selected_entries(admin_client):
    TeamFactory(name="a")
    TeamFactory(name="b")
    picked = list(AuditEntry.objects.order_by("-seq")[:2])
    response = admin_client.post(reverse(LIST), {"action": "export_jsonl",
                                                 "_selected_action": [str(e.pk) for e in picked]})
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert sorted(json.loads(line)["seq"] for line in lines) == sorted(e.seq for e in picked)
    assert audit_chain.verify_lines(lines).ok  # consecutive entries verify on their own


def test_the_list_makes_no_query_per_row(admin_client):
    counts = []
    for rows in (2, 40):
        while AuditEntry.objects.count() < rows:
            TeamFactory()
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(reverse(LIST)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


@pytest.mark.slow
def test_the_list_stays_fast_with_100k_entries(admin_client, capsys):
    started = time.perf_counter()
    fill_trail(100_000)
    filled = time.perf_counter() - started
    assert AuditEntry.objects.count() >= 100_000
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # what autovacuum does after a bulk load
            cursor.execute(f"ANALYZE {AuditEntry._meta.db_table}")
    timings = {}
    for label, params in (("newest page", {}), ("one object", {"object_type": "billing.team", "object_id": "77"}),
                          ("by action", {"action": "update"}), ("by who", {"actor": "alice"}),
                          ("last 7 days", {"at__gte": "2000-01-01 00:00:00+00:00"}), ("search", {"q": "team-9999"})):
        admin_client.get(reverse(LIST), params)  # warm
        t0, cpu0 = time.perf_counter(), time.process_time()
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(reverse(LIST), params)
        timings[label] = (time.perf_counter() - t0, len(queries), time.process_time() - cpu0)
        assert response.status_code == 200
    t0 = time.perf_counter()
    result = audit_chain.verify()
    verify_s = time.perf_counter() - t0
    assert result.ok and result.entries >= 100_000
    with capsys.disabled():
        print(f"\n[audit 100k on {connection.vendor}] filled in {filled:.1f} s; verify_audit {verify_s:.2f} s; "
              + "; ".join(f"{k}: {v[0] * 1000:.0f} ms ({v[2] * 1000:.0f} ms CPU) / {v[1]} queries"
                          for k, v in timings.items()))
    assert max(t for t, _, _ in timings.values()) < 3.0  # wall time on a shared, loaded machine
    assert len({q for _, q, _ in timings.values()}) == 1  # the same queries whatever the filter


def test_recording_and_the_admin_never_show_a_provider_secret(admin_client):
    provider = ProviderFactory(name="masked", api_key=SECRET)
    Provider.objects.filter(pk=provider.pk).update(api_key=SECRET + "-via-update")
    provider.delete()
    for entry in AuditEntry.objects.filter(object_type="providers.provider"):
        html = admin_client.get(reverse("admin:gateway_admin_auditentry_change", args=[entry.pk])).content.decode()
        assert SECRET not in html
    assert SECRET not in admin_client.get(reverse(LIST)).content.decode()
    assert audit.current_actor() == audit.SYSTEM
