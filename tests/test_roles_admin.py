"""The roles in the admin (gateway_admin.roles, docs/security/roles.md): for each role
and every model the admin lists, which pages open (changelist, add, change, delete,
history) and which are refused with 403; what the home page lists; the extra pages
(test a route, discover models, the guardrail sandbox, rotate/revoke a key); and no
provider secret, extra auth header or webhook secret on any page a role can open.

EXPECTED is written out here, independently of the declarations in roles.py, so a
change to a role shows up as a failing test that names the page."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlsplit

import pytest
from django.contrib import admin
from django.urls import reverse

from providers.models import Provider

from .roles_fixtures import (
    AUD, FIN, HEADER_SECRET, KM, NO_ROLE, PLAY, PROVIDER_SECRET, RE, SECRETS, WEBHOOK_SECRET, WEBHOOK_URL, admin_url,
    objects, staff,
)

pytestmark = pytest.mark.django_db

ROLES = (RE, KM, FIN, AUD, PLAY, NO_ROLE)

# Model -> {role: what that role may do in the admin}: v(iew), a(dd), c(hange), d(elete).
# A role not named may do nothing (every page 403).
EXPECTED: dict[str, dict[str, str]] = {
    "auth.group": {AUD: "v"},
    "auth.user": {AUD: "v"},
    "authtoken.tokenproxy": {},  # a token's page shows the token: superusers only
    "django_celery_beat.periodictask": {},
    "django_celery_beat.clockedschedule": {},
    "django_celery_beat.crontabschedule": {},
    "django_celery_beat.solarschedule": {},
    "django_celery_beat.intervalschedule": {},
    "providers.provider": {RE: "vacd", AUD: "v"},
    "providers.model": {RE: "vacd", KM: "v", AUD: "v"},
    "billing.usagerecord": {FIN: "v", AUD: "v"},  # the ledger: read-only for everyone
    "billing.usagedeadletter": {AUD: "v"},
    "billing.budget": {KM: "vacd", AUD: "v"},
    "billing.budgetalert": {KM: "v", AUD: "v"},  # history: read-only for everyone
    "billing.team": {KM: "vacd", AUD: "v"},
    "billing.virtualkey": {KM: "vacd", AUD: "v"},
    "guardrails.guardrail": {RE: "vacd", AUD: "v"},
    "guardrails.violation": {RE: "v", AUD: "v"},
    "routing.route": {RE: "vacd", KM: "v", AUD: "v"},
    "routing.targethealth": {RE: "v", AUD: "v"},  # a read-only page; RE may reset breakers (below)
    "routing.workerheartbeat": {RE: "v", AUD: "v"},  # its view permission opens the Gateway status page
    "gateway_admin.auditentry": {AUD: "v"},  # the audit trail, once its model exists
}

# What the admin home page lists for each role (gateway_admin.site.GROUPS).
HOME: dict[str, list[str]] = {
    RE: ["Providers & models", "Routes", "Guardrails", "Health"],
    KM: ["Providers & models", "Routes", "Keys, teams & budgets"],
    FIN: ["Usage & reports"],
    AUD: ["Providers & models", "Routes", "Keys, teams & budgets", "Guardrails", "Usage & reports", "Health",
          "People & access"],
    PLAY: [],
    NO_ROLE: [],
}


def registered() -> list[str]:
    return sorted(m._meta.label_lower for m in admin.site._registry)


def test_every_model_the_admin_lists_has_an_expectation():
    missing = [label for label in registered() if label not in EXPECTED]
    assert not missing, f"Say in EXPECTED (and in gateway_admin.roles) who may do what with: {missing}"


def status(client, url: str, method: str = "get") -> int:
    return getattr(client, method)(url).status_code


@pytest.mark.parametrize("label", [label for label in EXPECTED])
@pytest.mark.parametrize("role", ROLES)
def test_admin_pages_per_role_and_model(client, role, label):
    if label not in registered():
        pytest.skip(f"{label} is not in the admin (yet)")
    rows = objects()
    client.force_login(staff(role))
    may = EXPECTED[label].get(role, "")
    expect = {True: 200, False: 403}
    seen = {"changelist": status(client, admin_url(label, "changelist")),
            "add": status(client, admin_url(label, "add"))}
    wanted = {"changelist": expect["v" in may], "add": expect["a" in may]}
    pk = rows.get(label)
    if pk is not None:
        change = client.get(admin_url(label, "change", pk))
        seen |= {"change": change.status_code, "history": status(client, admin_url(label, "history", pk)),
                 "delete": status(client, admin_url(label, "delete", pk)),
                 "change POST": status(client, admin_url(label, "change", pk), "post")}
        wanted |= {"change": expect["v" in may], "history": expect["v" in may], "delete": expect["d" in may],
                   # Someone who may change gets the form back (an empty post is invalid); others a 403.
                   "change POST": 200 if "c" in may else 403}
        if change.status_code == 200:
            seen["save button"] = 'name="_save"' in change.content.decode()
            wanted["save button"] = "c" in may
    assert seen == wanted


@pytest.mark.parametrize("role", ROLES)
def test_the_home_page_lists_only_what_the_role_may_open(client, role):
    client.force_login(staff(role))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    app_list = response.context["app_list"]
    listed = {m["model"]._meta.label_lower for app in app_list for m in app["models"] if m.get("model")}
    hidden = {"routing.workerheartbeat"}  # its page is linked as "Gateway status" instead
    assert listed == {label for label in registered() if "v" in EXPECTED[label].get(role, "")} - hidden
    # The groups, leaving aside where the audit trail (gateway_admin's models) is listed.
    audit_only = [app["name"] for app in app_list
                  if app["models"] and all(m.get("model") and m["model"]._meta.app_label == "gateway_admin"
                                           for m in app["models"])]
    assert [app["name"] for app in app_list if app["name"] not in audit_only] == HOME[role]
    assert not audit_only or role == AUD
    html = response.content.decode()
    assert ('href="/reports/"' in html) is (role in (FIN, AUD))  # the Finance reports link


def test_a_user_without_staff_status_is_sent_to_the_login_page_whatever_the_role(client):
    user = staff(AUD, is_staff=False)
    client.force_login(user)
    response = client.get(reverse("admin:providers_provider_changelist"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def test_an_inactive_user_is_refused(client):
    user = staff(RE)
    user.is_active = False
    user.save()
    client.force_login(user)
    assert client.get(reverse("admin:providers_provider_changelist")).status_code == 302


# --- the pages beyond add/change/delete -------------------------------------------------


@pytest.mark.parametrize("role, allowed", [(RE, True), (AUD, False), (KM, False), (FIN, False), (PLAY, False)])
def test_testing_a_route_needs_permission_to_change_routes(client, role, allowed):
    rows = objects()
    client.force_login(staff(role))
    assert status(client, reverse("admin:routing_route_test", args=[rows["routing.route"]])) == (200 if allowed else 403)


@pytest.mark.parametrize("role, allowed", [(RE, True), (AUD, True), (KM, False), (FIN, False), (PLAY, False),
                                           (NO_ROLE, False)])
def test_the_guardrail_sandbox_is_for_those_who_may_view_guardrails(client, role, allowed):
    client.force_login(staff(role))
    url = reverse("admin:guardrails_guardrail_sandbox")
    assert status(client, url) == (200 if allowed else 403)
    assert status(client, url, "post") == (200 if allowed else 403)


@pytest.mark.parametrize("role, page, post", [(RE, 200, 200), (AUD, 200, 403), (KM, 403, 403), (FIN, 403, 403)])
def test_discovering_models_views_with_view_and_adds_with_add(client, role, page, post):
    rows = objects()
    client.force_login(staff(role))
    url = reverse("admin:providers_provider_discover", args=[rows["providers.provider"]])
    assert status(client, url) == page  # the fake base URL refuses: the page says so
    assert status(client, url, "post") == post


@pytest.mark.parametrize("role, allowed", [(KM, True), (AUD, False), (RE, False), (FIN, False)])
def test_rotating_and_revoking_a_key_need_permission_to_change_keys(client, role, allowed):
    rows = objects()
    client.force_login(staff(role))
    pk = rows["billing.virtualkey"]
    for page in ("rotate", "revoke"):
        assert status(client, reverse(f"admin:billing_virtualkey_{page}", args=[pk])) == (200 if allowed else 403)
    if role == AUD:  # view-only: the page has no buttons leading to a 403
        html = client.get(admin_url("billing.virtualkey", "change", pk)).content.decode()
        assert "Rotate this key" not in html and "Revoke this key" not in html
    if role == KM:
        html = client.get(admin_url("billing.virtualkey", "change", pk)).content.decode()
        assert "Rotate this key" in html


def actions(client, label: str) -> set[str]:
    response = client.get(admin_url(label, "changelist"))
    return set(re.findall(r'<option value="([a-z_]+)"', response.content.decode()))


def test_changing_actions_are_offered_only_to_those_who_may_change(client):
    objects()
    client.force_login(staff(RE))
    assert {"purge_cache"} <= actions(client, "routing.route")
    assert {"reset_breakers"} <= actions(client, "routing.targethealth")
    assert {"discover_models", "delete_selected"} <= actions(client, "providers.provider")
    client.force_login(staff(AUD))
    assert not {"purge_cache", "delete_selected"} & actions(client, "routing.route")
    assert "reset_breakers" not in actions(client, "routing.targethealth")
    assert not {"rotate_selected", "revoke_selected", "delete_selected"} & actions(client, "billing.virtualkey")
    client.force_login(staff(KM, name="km"))
    assert {"rotate_selected", "revoke_selected"} <= actions(client, "billing.virtualkey")
    assert "purge_cache" not in actions(client, "routing.route")


def test_a_view_only_action_post_is_refused(client):
    """An auditor posting a changing action by hand gets nothing done."""
    rows = objects()
    client.force_login(staff(AUD))
    response = client.post(admin_url("billing.virtualkey", "changelist"),
                           {"action": "revoke_selected", "_selected_action": [rows["billing.virtualkey"]], "post": "yes"})
    from billing.models import VirtualKey

    assert not VirtualKey.objects.filter(revoked_at__isnull=False).exists()
    assert response.status_code in (200, 302, 403)


# --- route editors set a provider's key, never see it ---------------------------------------


def provider_form(**overrides) -> dict:
    data = {"name": "openai-prod", "kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": "",
            "timeout_s": "5", "options": "{}", "enabled": "on", "models-TOTAL_FORMS": 1, "models-INITIAL_FORMS": 1,
            "models-MIN_NUM_FORMS": 0, "models-MAX_NUM_FORMS": 1000}
    data.update(overrides)
    return data


def test_a_route_editor_sets_a_provider_key_and_never_sees_it(client):
    rows = objects()
    provider = Provider.objects.get(pk=rows["providers.provider"])
    model = provider.models.get()
    client.force_login(staff(RE))
    url = admin_url("providers.provider", "change", provider.pk)
    page = client.get(url).content.decode()
    assert PROVIDER_SECRET not in page and PROVIDER_SECRET[:-4] not in page
    assert 'name="api_key"' in page  # the write-only field is there to set a new key
    new_key = "sk-live-ROLES-rotated-provider-key-0b7e"
    form = provider_form(api_key=new_key, **{
        "models-0-id": model.pk, "models-0-provider": provider.pk, "models-0-name": model.name,
        "models-0-upstream_id": model.upstream_id, "models-0-input_price_per_mtok": "1",
        "models-0-output_price_per_mtok": "2", "models-0-quality_score": model.quality_score, "models-0-enabled": "on",
    })
    form["options"] = re.search(r'<textarea name="options"[^>]*>\s*(.*?)</textarea>', page, re.S).group(1)
    assert HEADER_SECRET not in unescape(form["options"]) and "X-Extra-Auth" in unescape(form["options"])
    response = client.post(url, {**form, "options": unescape(form["options"])})
    assert response.status_code == 302, unescape(response.content.decode())[:3000]
    provider.refresh_from_db()
    assert provider.api_key == new_key
    assert provider.options == {"headers": {"X-Extra-Auth": HEADER_SECRET}}  # the masked header came back: kept
    after = client.get(url).content.decode()
    assert new_key not in after and new_key[:-4] not in after
    assert "…0b7e" in after  # the masked tail only


def test_view_only_users_see_the_provider_options_and_webhooks_masked(client):
    rows = objects()
    client.force_login(staff(AUD))
    provider_page = client.get(admin_url("providers.provider", "change", rows["providers.provider"])).content.decode()
    assert HEADER_SECRET not in provider_page and "X-Extra-Auth" in provider_page
    budget_page = client.get(admin_url("billing.budget", "change", rows["billing.budget"])).content.decode()
    assert WEBHOOK_SECRET not in budget_page and "https://hooks.example.com/…" in budget_page
    key_page = client.get(admin_url("billing.virtualkey", "change", rows["billing.virtualkey"])).content.decode()
    assert WEBHOOK_SECRET not in key_page  # its budget inline
    # Those who may change them edit the real values.
    client.force_login(staff(KM))
    assert WEBHOOK_URL in unescape(client.get(admin_url("billing.budget", "change", rows["billing.budget"])).content.decode())


# --- no secret on any page a route editor or auditor can reach ------------------------------


def crawl(client, start: str, limit: int = 400) -> dict[str, str]:
    """Every /admin/ page reachable by links from `start` (GET, no query strings, no
    logout): url -> HTML of those that answer 200."""
    seen: dict[str, str] = {}
    queue, queued = [start], {start}
    while queue and len(seen) < limit:
        url = queue.pop(0)
        response = client.get(url)
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        html = response.content.decode()
        seen[url] = html
        for href in re.findall(r'href="([^"#]+)"', html):
            path = urlsplit(unescape(href)).path
            if path.startswith("/admin/") and "logout" not in path and path not in queued:
                queued.add(path)
                queue.append(path)
    return seen


@pytest.mark.parametrize("role", [RE, AUD])
def test_no_secret_on_any_admin_page_the_role_can_open(client, role):
    rows = objects()
    client.force_login(staff(role))
    extra = [reverse("admin:providers_provider_discover", args=[rows["providers.provider"]]),
             reverse("admin:routing_status"), reverse("admin:guardrails_guardrail_sandbox")]
    pages = crawl(client, reverse("admin:index"))
    for url in extra:
        response = client.get(url)
        if response.status_code == 200:
            pages[url] = response.content.decode()
    provider_pages = [u for u in pages if u.startswith("/admin/providers/provider/")]
    assert admin_url("providers.provider", "change", rows["providers.provider"]) in provider_pages
    assert len(pages) > 20
    leaks = {url: [s for s in SECRETS if s in unescape(html)] for url, html in pages.items()}
    assert {u: found for u, found in leaks.items() if found} == {}
