"""The route editor's admin: strategy settings, the model health page, and "Test this route"."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.models import UsageRecord
from providers.models import HealthCheck
from routing.breaker import reset_breaker_store_for_tests
from routing.models import Route, RouteTarget

from .admin_helpers import errors_text
from .factories import HealthCheckFactory, ModelFactory, RouteFactory, RouteTargetFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_breaker_store_for_tests()
    yield
    reset_breaker_store_for_tests()


def route_post(targets: list[dict], **overrides) -> dict:
    data = {
        "name": "chat-smart", "description": "", "strategy": "fallback", "enabled": "on",
        "sticky_by": "none", "explore_rate": "0.10", "min_quality": "0", "rules": "[]",
        "timeout_s": "60", "max_attempts": "2", "backoff_base_ms": "200", "backoff_max_ms": "5000",
        "retry_after_cap_s": "10", "retry_on": ["rate_limited"], "when_all_open": "fail",
        "targets-TOTAL_FORMS": len(targets), "targets-INITIAL_FORMS": 0,
        "targets-MIN_NUM_FORMS": 0, "targets-MAX_NUM_FORMS": 1000,
    }
    for i, target in enumerate(targets):
        data.update({f"targets-{i}-{k}": v for k, v in target.items()})
    data.update(overrides)
    return data


def target(model, order=0, **extra) -> dict:
    return {"model": model.pk, "order": order, "weight": 1, "enabled": "on", **extra}


def label(model) -> str:
    return f"{model.provider.name}/{model.name}"


def test_it_groups_route_settings_by_concern(admin_client, settings):
    settings.GATEWAY_BREAKER_COOLDOWN_S = 45.0
    html = admin_client.get(reverse("admin:routing_route_add")).content.decode()
    for heading in ("Strategy", "Retries", "Circuit breaker"):
        assert f'class="fieldset-heading">{heading}</h2>' in html
    assert "belongs to one strategy and is ignored by the others" in html
    assert 'name="sticky_by"' in html and 'name="explore_rate"' in html and 'name="min_quality"' in html
    assert "Blank = gateway default: 45." in html  # the breaker defaults come from settings
    assert """{"when": "metadata.tier == 'premium'", "targets": ["openai/gpt-4o"]}""" in html  # rules example


def test_it_offers_task_types_as_checkboxes(admin_client):
    html = admin_client.get(reverse("admin:routing_route_add")).content.decode()
    assert 'type="checkbox" name="targets-0-task_types" value="code_generation"' in html


def test_it_saves_ticked_task_types(admin_client):
    model = ModelFactory()
    data = route_post([target(model, task_types=["code_generation", "code_review"])], strategy="task")
    response = admin_client.post(reverse("admin:routing_route_add"), data)
    assert response.status_code == 302, errors_text(response)
    assert RouteTarget.objects.get().task_types == ["code_generation", "code_review"]


def test_it_saves_strategy_settings(admin_client):
    data = route_post([target(ModelFactory())], strategy="cost", min_quality="70", explore_rate="0.25")
    assert admin_client.post(reverse("admin:routing_route_add"), data).status_code == 302
    route = Route.objects.get()
    assert (route.min_quality, route.explore_rate) == (70, Decimal("0.25"))


def test_it_shows_a_bad_rule_on_the_rules_field_and_saves_nothing(admin_client):
    model = ModelFactory()
    rules = '[{"when": "metadata.tier = premium", "targets": ["%s"]}]' % label(model)
    response = admin_client.post(
        reverse("admin:routing_route_add"), route_post([target(model)], strategy="conditional", rules=rules)
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "rule 1: cannot read" in errors["rules"][0]
    assert not Route.objects.exists() and not RouteTarget.objects.exists()


def test_it_refuses_a_rule_naming_a_model_that_is_not_a_target(admin_client):
    model, stranger = ModelFactory(), ModelFactory()
    rules = '[{"when": "max_tokens > 2000", "targets": ["%s"]}]' % label(stranger)
    response = admin_client.post(
        reverse("admin:routing_route_add"), route_post([target(model)], strategy="conditional", rules=rules)
    )
    assert "rule 1 names" in errors_text(response) and "which is not a target of this route" in errors_text(response)
    assert not Route.objects.exists()


def test_it_refuses_a_conditional_route_without_rules(admin_client):
    response = admin_client.post(
        reverse("admin:routing_route_add"), route_post([target(ModelFactory())], strategy="conditional")
    )
    assert response.context["adminform"].form.errors["rules"] == ["A conditional route needs at least one rule."]
    assert not Route.objects.exists()


def test_it_saves_valid_rules(admin_client):
    model = ModelFactory()
    rules = '[{"when": "metadata.tier == \'premium\'", "targets": ["%s"]}]' % label(model)
    data = route_post([target(model)], strategy="conditional", rules=rules)
    assert admin_client.post(reverse("admin:routing_route_add"), data).status_code == 302
    assert Route.objects.get().rules == [{"when": "metadata.tier == 'premium'", "targets": [label(model)]}]


def test_the_change_page_links_to_the_test_page(admin_client):
    route = RouteTargetFactory().route
    html = admin_client.get(reverse("admin:routing_route_change", args=[route.pk])).content.decode()
    assert reverse("admin:routing_route_test", args=[route.pk]) in html


# --- model health ---------------------------------------------------------------------


def test_model_health_lists_without_a_query_per_row(admin_client):
    url = reverse("admin:routing_targethealth_changelist")
    counts = []
    for rows in (1, 5):
        while HealthCheck.objects.count() < rows:
            HealthCheckFactory()
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(url).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_model_health_is_read_only(admin_client):
    model = ModelFactory()
    assert admin_client.get(reverse("admin:routing_targethealth_add")).status_code == 403
    html = admin_client.get(reverse("admin:routing_targethealth_change", args=[model.pk])).content.decode()
    assert 'name="_save"' not in html


def test_model_health_detail_shows_the_last_20_health_checks(admin_client):
    model = ModelFactory()
    for i in range(25):
        HealthCheckFactory(model=model, ok=i % 2 == 0, error_kind="" if i % 2 == 0 else "timeout",
                           latency_ms=100 + i, message=f"probe-{i:02d}")
    html = admin_client.get(reverse("admin:routing_targethealth_change", args=[model.pk])).content.decode()
    assert "probe-24" in html and "probe-05" in html and "probe-04" not in html
    assert "failed (timeout)" in html and "124 ms" in html


# --- "Test this route" --------------------------------------------------------------------


def page_url(route) -> str:
    return reverse("admin:routing_route_test", args=[route.pk])


def test_the_test_page_needs_the_change_permission(client):
    route = RouteTargetFactory().route
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_route"))
    client.force_login(user)
    assert client.get(page_url(route)).status_code == 403


def test_explain_lists_candidates_in_order_with_reasons(admin_client):
    first, second = ModelFactory(), ModelFactory()
    route = RouteFactory()
    for i, m in enumerate((first, second)):
        RouteTargetFactory(route=route, model=m, order=i)
    html = admin_client.post(page_url(route), {"prompt": "Hello", "max_tokens": "100", "_explain": "1"}).content.decode()
    assert "What would happen" in html
    assert html.index(f"<strong>{first}</strong>") < html.index(f"<strong>{second}</strong>")
    assert "First choice" in html and "Fallback #1" in html
    assert UsageRecord.objects.count() == 0


def test_explain_shows_the_detected_task(admin_client):
    route = RouteFactory(strategy="task")
    RouteTargetFactory(route=route, task_types=["code_generation"])
    html = admin_client.post(
        page_url(route), {"prompt": "Write a Python function that sorts a list.", "_explain": "1"}
    ).content.decode()
    assert "Detected task: Code generation" in html
    assert "Serves code_generation" in html


def test_explain_shows_excluded_targets_and_the_estimated_cost(admin_client):
    cheap_bad = ModelFactory(quality_score=20, input_price_per_mtok=Decimal("0.01"))
    good = ModelFactory(quality_score=80, input_price_per_mtok=Decimal("3"), output_price_per_mtok=Decimal("15"))
    route = RouteFactory(strategy="cost", min_quality=50)
    RouteTargetFactory(route=route, model=cheap_bad, order=0)
    RouteTargetFactory(route=route, model=good, order=1)
    html = admin_client.post(page_url(route), {"prompt": "x" * 396, "max_tokens": "1000", "_explain": "1"}).content.decode()
    assert "Left out by the strategy" in html
    assert f"<strong>{cheap_bad}</strong>: quality 20 is below the route&#x27;s minimum 50." in html
    # (99 + 4) prompt tokens at $3/M + 1000 answer tokens at $15/M
    assert '<strong id="estimated-cost">$0.015309</strong>' in html


def test_explain_reports_an_invalid_sample_in_words(admin_client):
    route = RouteTargetFactory().route
    response = admin_client.post(page_url(route), {"prompt": "Hi", "metadata": "[1, 2]", "_explain": "1"})
    assert "Metadata must be a JSON object" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_sending_for_real_shows_the_answer_and_records_usage(admin_client, fake_openai, build):
    route, model = build.openai_route(fake_openai, name="chat-live")
    html = admin_client.post(page_url(route), {"prompt": "Say hello", "max_tokens": "50", "_send": "1"}).content.decode()
    assert "What happened" in html
    assert "Hello from fake-openai." in html
    assert f"Answered by: <strong>{model}</strong>" in html
    record = UsageRecord.objects.get()
    assert (record.route_name, record.key_id, record.key_prefix, record.status) == ("chat-live", None, "admin", "success")
    assert record.request_id in html
    assert fake_openai.request_count == 1


@pytest.mark.django_db(transaction=True)
def test_sending_for_real_can_stream(admin_client, fake_openai, build):
    route, _ = build.openai_route(fake_openai, name="chat-stream")
    html = admin_client.post(page_url(route), {"prompt": "Say hello", "stream": "on", "_send": "1"}).content.decode()
    assert "Hello from fake-openai." in html
    assert UsageRecord.objects.get().stream is True


@pytest.mark.django_db(transaction=True)
def test_a_failed_real_call_reads_as_a_sentence(admin_client, build):
    provider = build.provider(name="down", base_url="http://127.0.0.1:9/v1", api_key="sk-x")
    route = build.route("chat-down", build.model(provider))
    html = admin_client.post(page_url(route), {"prompt": "Hello", "_send": "1"}).content.decode()
    assert "The request failed: All 1 attempt for route &#x27;chat-down&#x27; failed." in html
    assert "Unavailable" in html and "Traceback" not in html
    assert UsageRecord.objects.get().status == "error"
