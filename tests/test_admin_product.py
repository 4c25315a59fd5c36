"""The admin as a product (issue 11): branded, a home page grouped by what people do
with the internals listed for superusers only (their pages still open), a favicon,
and the small defects a new user saw, each pinned."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.contrib.auth.models import Permission
from django.contrib.staticfiles import finders
from django.test import RequestFactory
from django.urls import reverse

from billing.admin_usage import STAFF_KEY_PREFIX
from gateway_admin import site as gateway_site
from providers.admin import price_text
from routing.lookup import staff_key

from .factories import ModelFactory, ProviderFactory, RouteFactory, RouteTargetFactory, UsageRecordFactory

pytestmark = pytest.mark.django_db

GROUP_NAMES = [
    "Providers & models", "Routes", "Keys, teams & budgets", "Guardrails", "Usage & reports", "Health",
    "People & access", "Scheduled jobs (Celery beat)",
]


def staff(django_user_model, *codenames: str, username: str = "operator"):
    user = django_user_model.objects.create_user(username, password="operator-pass-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def home(client) -> list[dict]:
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return response.context["app_list"]


def names(app_list: list[dict]) -> list[str]:
    return [app["name"] for app in app_list]


def rows(app_list: list[dict], group: str) -> list[str]:
    return [m["name"] for app in app_list if app["name"] == group for m in app["models"]]


# --- branding -------------------------------------------------------------------------

def test_every_page_carries_the_product_name_not_djangos(admin_client, client):
    for response in (admin_client.get("/admin/"), admin_client.get("/admin/routing/route/"), client.get("/admin/login/")):
        html = response.content.decode()
        assert '<div id="site-name"><a href="/admin/">' in html and "LLM Gateway</a>" in html
        assert "Django administration" not in html and "Django site admin" not in html
    assert "<title>LLM Gateway admin | LLM Gateway</title>" in admin_client.get("/admin/").content.decode()


def test_view_site_leads_to_the_playground(admin_client):
    assert admin.site.site_url == "/playground/"
    assert '<a href="/playground/" id="view-site">Playground</a>' in admin_client.get("/admin/").content.decode()


def test_every_admin_page_names_an_icon_and_favicon_ico_is_not_a_404(admin_client, client):
    icon = '<link rel="icon" href="/static/gateway_admin/favicon.svg" type="image/svg+xml">'
    for response in (client.get("/admin/login/"), admin_client.get("/admin/"),
                     admin_client.get("/admin/billing/virtualkey/add/"), admin_client.get("/admin/routing/route/")):
        assert icon in response.content.decode()
    response = client.get("/favicon.ico")
    assert (response.status_code, response["Location"]) == (301, "/static/gateway_admin/favicon.svg")
    svg = finders.find("gateway_admin/favicon.svg")
    assert svg and open(svg).read().startswith("<svg")


# --- the home page, grouped -------------------------------------------------------------

def test_a_superuser_sees_every_group_in_order_with_the_internals_last(admin_client):
    app_list = home(admin_client)
    assert names(app_list) == GROUP_NAMES
    assert rows(app_list, "Routes") == ["Routes", "Model health"]
    assert rows(app_list, "Usage & reports") == ["Finance reports", "Usage records"]
    assert "Management API tokens" in rows(app_list, "People & access")
    assert "Periodic tasks" in rows(app_list, "Scheduled jobs (Celery beat)")


def test_the_groups_list_every_registered_model_exactly_once(admin_client):
    request = RequestFactory().get("/admin/")
    request.user = admin_client.get("/admin/").wsgi_request.user
    stock = {m["admin_url"] for app in AdminSite.get_app_list(admin.site, request) for m in app["models"]}
    grouped = [m["admin_url"] for app in admin.site.get_app_list(request) for m in app["models"] if m["model"]]
    assert sorted(grouped) == sorted(stock)


def test_a_model_no_group_names_stays_listed_under_its_app(admin_client, monkeypatch):
    monkeypatch.setattr(gateway_site, "GROUPS", [g for g in gateway_site.GROUPS if g.slug != "guardrails"])
    app_list = home(admin_client)
    assert "Guardrails" in names(app_list)  # Django's own app entry now
    assert rows(app_list, "Guardrails") == ["Guardrails", "Violations"]


def test_staff_do_not_see_celery_beat_or_auth_tokens_listed_but_their_pages_still_open(client, django_user_model):
    user = staff(django_user_model, "view_periodictask", "view_tokenproxy", "view_route", "view_provider")
    client.force_login(user)
    app_list = home(client)
    assert names(app_list) == ["Providers & models", "Routes"]
    sidebar = client.get(reverse("admin:routing_route_changelist")).context["available_apps"]
    assert names(sidebar) == ["Providers & models", "Routes"]
    html = client.get("/admin/").content.decode()
    assert "django_celery_beat" not in html and "authtoken" not in html
    # Out of the way, not locked away: a staff user with the permission still opens them.
    assert client.get("/admin/django_celery_beat/periodictask/").status_code == 200
    assert client.get("/admin/django_celery_beat/").status_code == 200
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 200


def test_finance_reports_are_listed_for_users_who_may_see_them(client, django_user_model):
    client.force_login(staff(django_user_model, "view_finance_reports"))
    app_list = home(client)
    assert names(app_list) == ["Usage & reports"]  # a permission-only link makes the group worth showing
    assert rows(app_list, "Usage & reports") == ["Finance reports"]
    assert app_list[0]["models"][0]["admin_url"] == reverse("reports:overview")

    client.force_login(staff(django_user_model, "view_usagerecord", username="support"))
    assert rows(home(client), "Usage & reports") == ["Usage records"]


def test_a_staff_user_without_permissions_is_told_so_not_shown_health_links(client, django_user_model):
    client.force_login(staff(django_user_model))
    assert home(client) == []
    assert "You don’t have permission to view or edit anything." in client.get("/admin/").content.decode()


def test_the_home_page_says_what_each_group_is_for(admin_client):
    html = admin_client.get("/admin/").content.decode()
    assert "Where requests can go, and what each model costs." in html
    assert 'href="/playground/">playground</a>' in html


# --- the small defects -------------------------------------------------------------------

def explain_html(admin_client, strategy: str) -> str:
    route = RouteFactory(strategy=strategy)
    for order in range(2):
        RouteTargetFactory(route=route, order=order)
    url = reverse("admin:routing_route_test", args=[route.pk])
    return admin_client.post(url, {"prompt": "Hello", "max_tokens": "50", "_explain": "1"}).content.decode()


def test_the_explanation_shows_weights_on_load_balanced_routes_only(admin_client):
    assert "weight (traffic share)" in explain_html(admin_client, "loadbalance")
    fallback = explain_html(admin_client, "fallback")
    assert "What would happen" in fallback
    assert "weight" not in fallback.split('id="explanation"')[1].lower()


def test_the_metadata_box_starts_empty_not_with_null(admin_client):
    route = RouteFactory()
    RouteTargetFactory(route=route)
    html = admin_client.get(reverse("admin:routing_route_test", args=[route.pk])).content.decode()
    box = re.search(r'<textarea name="metadata"[^>]*>(.*?)</textarea>', html, re.S)
    assert box is not None and box.group(1).strip() == ""


def test_test_calls_are_named_as_the_reports_name_them(admin_client):
    assert staff_key("someone").prefix == STAFF_KEY_PREFIX  # the ledger's prefix for staff test calls
    route = RouteFactory()
    RouteTargetFactory(route=route)
    page = admin_client.get(reverse("admin:routing_route_test", args=[route.pk])).content.decode()
    assert "under “(no key)”" in page and "key “admin”" not in page
    UsageRecordFactory(request_id="staff-call", key_prefix=STAFF_KEY_PREFIX)
    html = admin_client.get(reverse("admin:billing_usagerecord_changelist")).content.decode()
    assert '(no key)<br><span class="quiet">staff test call</span>' in html


def test_usage_estimated_reads_in_words_the_right_way_round(admin_client):
    estimated = UsageRecordFactory(usage_estimated=True)
    reported = UsageRecordFactory(usage_estimated=False)
    page = lambda r: admin_client.get(reverse("admin:billing_usagerecord_change", args=[r.pk])).content.decode()  # noqa: E731
    assert "Estimated by the gateway: the provider reported no token counts" in page(estimated)
    assert "Reported by the provider." in page(reported)
    assert "Usage estimated" not in page(estimated)  # the bare boolean (a green tick for the bad case) is gone


def test_model_health_does_not_call_a_model_of_a_switched_off_provider_in_service(admin_client):
    on, off = ProviderFactory(name="on"), ProviderFactory(name="off", enabled=False)
    ModelFactory(provider=on, name="served")
    ModelFactory(provider=on, name="paused", enabled=False)
    ModelFactory(provider=off, name="orphaned")
    url = reverse("admin:routing_targethealth_changelist")
    html = admin_client.get(url).content.decode()
    cells = dict(re.findall(r'>(served|paused|orphaned)</a></th>.*?<td class="field-in_service">(.*?)</td>', html, re.S))
    assert {k: re.sub(r"<[^>]+>", "", v) for k, v in cells.items()} == {
        "served": "in service", "paused": "model off", "orphaned": "provider off"}
    assert "icon-yes.svg" not in html  # no green tick for any of them
    listed = admin_client.get(url, {"service": "yes"}).content.decode()
    assert ">served</a>" in listed and ">orphaned</a>" not in listed
    assert ">orphaned</a>" in admin_client.get(url, {"service": "provider_off"}).content.decode()


# --- lists at laptop width ----------------------------------------------------------------

@pytest.mark.parametrize(("amount", "shown"), [
    ("2.500000", "2.50"), ("10.000000", "10.00"), ("0.150000", "0.15"), ("0.000150", "0.00015"), ("0", "0.00"),
])
def test_prices_show_cents_without_trailing_zeros(amount, shown):
    assert price_text(Decimal(amount)) == shown


def test_the_provider_page_model_table_has_short_headings_and_plain_prices(admin_client):
    model = ModelFactory(input_price_per_mtok=Decimal("2.5"), output_price_per_mtok=Decimal("10"))
    html = admin_client.get(reverse("admin:providers_provider_change", args=[model.provider.pk])).content.decode()
    assert ">Input $/1M" in html and ">Output $/1M" in html
    assert 'value="2.50"' in html and 'value="10.00"' in html


def test_the_lists_lead_with_their_most_useful_columns():
    from billing.models import UsageRecord, VirtualKey
    from providers.models import Provider
    from routing.models import Route

    assert admin.site._registry[UsageRecord].list_display[:3] == ["when", "route_and_model", "key_label"]
    assert admin.site._registry[VirtualKey].list_display[:4] == ["name", "prefix_display", "team", "status"]
    assert admin.site._registry[Route].list_display == ["name", "enabled", "strategy_short", "targets_summary",
                                                        "cache_short"]
    assert "timeout_s" not in admin.site._registry[Provider].list_display  # on the detail page


def test_the_route_list_names_strategies_briefly_and_filters_by_them(admin_client):
    RouteFactory(name="ab", strategy="loadbalance")
    RouteFactory(name="plain", strategy="fallback")
    url = reverse("admin:routing_route_changelist")
    html = admin_client.get(url).content.decode()
    assert '<td class="field-strategy_short">Load balance</td>' in html
    assert "weighted random split" not in html  # the explanation is on the change page
    filtered = admin_client.get(url, {"strategy__exact": "loadbalance"}).content.decode()
    assert ">ab</a>" in filtered and ">plain</a>" not in filtered


def test_a_usage_record_page_labels_its_figures_in_words(admin_client):
    record = UsageRecordFactory(http_status=200, latency_ms=2345, ttft_ms=412, input_price_per_mtok=Decimal("2.5"))
    html = admin_client.get(reverse("admin:billing_usagerecord_change", args=[record.pk])).content.decode()
    for label, value in [("HTTP status", "200"), ("Total latency", "2345 ms"), ("Time to first token", "412 ms"),
                         ("Input price (USD per 1M tokens)", "$2.5")]:
        assert re.search(rf"<label>{re.escape(label)}:</label>\s*<div class=\"readonly\">{re.escape(value)}</div>", html)
    assert "Ttft ms" not in html and "Http status" not in html


def test_the_model_list_says_when_a_models_provider_is_switched_off(admin_client):
    ModelFactory(name="orphaned", provider=ProviderFactory(name="off", enabled=False))
    html = admin_client.get(reverse("admin:providers_model_changelist")).content.decode()
    assert 'off<br><span class="quiet">switched off</span>' in html


def test_the_budget_list_shows_short_cells(admin_client):
    from .factories import BudgetFactory

    BudgetFactory(amount_usd=Decimal("1500"))
    html = admin_client.get(reverse("admin:billing_budget_changelist")).content.decode()
    for cell in ('<td class="field-scope_short">whole gateway</td>', '<td class="field-amount">$1,500.00</td>',
                 '<td class="field-period_short">per month</td>', '<td class="field-action_short">block (429)</td>'):
        assert cell in html


def test_attempts_not_made_read_as_skipped_with_the_reason():
    from routing import engine
    from routing.admin_views import outcome_text

    assert outcome_text(engine.UNSUPPORTED) == "skipped: the model lacks what the request needs"
    assert outcome_text(engine.NOT_TRANSLATABLE).startswith("skipped:")
    assert outcome_text("timeout").startswith("failed:")
