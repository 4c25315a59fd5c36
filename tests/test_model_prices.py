"""Prices with an effective date: every change kept in the price history, scheduled
prices applied at their date, usage records keeping what they were billed at; and the
unpriced flag (admin, metrics, usage records)."""

from __future__ import annotations

import importlib
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import UsageRecord
from providers.catalog import load_models
from providers.models import Model, ModelPrice, PriceSource
from providers.prices import apply_due_prices, schedule_price, unpriced_models
from tests.admin_helpers import untouched_form
from tests.conftest import wait_for
from tests.factories import ModelFactory, ProviderFactory

HI = [{"role": "user", "content": "hi"}]


def prices(**kw) -> dict:
    return {"input_price_per_mtok": Decimal(kw.get("input", "1")), "output_price_per_mtok": Decimal(kw.get("output", "2"))}


# ---- the history ---------------------------------------------------------------------
@pytest.mark.django_db
def test_every_price_change_appends_a_history_row_whoever_saves():
    model = ModelFactory(input_price_per_mtok=Decimal("1"), output_price_per_mtok=Decimal("2"))
    first = ModelPrice.objects.get(model=model)
    assert (first.input_price_per_mtok, first.output_price_per_mtok) == (Decimal("1"), Decimal("2"))
    assert first.effective_from == model.price_effective_from and first.source == PriceSource.SAVED

    model.quality_score = 70
    model.save()  # no price change: no row
    again = Model.objects.get(pk=model.pk)
    again.output_price_per_mtok = "2.000000"  # the same price, spelled otherwise: no row
    again.save()
    assert ModelPrice.objects.filter(model=model).count() == 1

    again.output_price_per_mtok = Decimal("3")
    again.save()
    rows = list(ModelPrice.objects.filter(model=model))
    assert [r.output_price_per_mtok for r in rows] == [Decimal("3"), Decimal("2")]  # newest first
    assert Model.objects.get(pk=model.pk).price_effective_from == rows[0].effective_from


@pytest.mark.django_db
def test_the_migration_makes_todays_prices_the_first_row():
    from django.apps import apps

    migration = importlib.import_module("providers.migrations.0005_price_history")
    model = ModelFactory(input_price_per_mtok=Decimal("4"), output_price_per_mtok=Decimal("8"),
                         cache_read_price_per_mtok=Decimal("0.4"))
    ModelPrice.objects.all().delete()
    Model.objects.filter(pk=model.pk).update(price_effective_from=None)

    migration.first_history_rows(apps, None)

    row = ModelPrice.objects.get(model=model)
    model.refresh_from_db()
    assert row.source == "migration" and row.effective_from == model.updated_at == model.price_effective_from
    assert row.prices() == (Decimal("4"), Decimal("8"), Decimal("0.4"), None)


@pytest.mark.django_db
def test_a_future_price_waits_for_its_date_then_is_billed():
    model = ModelFactory(input_price_per_mtok=Decimal("1"), output_price_per_mtok=Decimal("2"))
    start = timezone.now()
    schedule_price(model, start + timedelta(hours=1), prices(input="5", output="10"))

    assert load_models()[model.id].price.input_per_mtok == Decimal("1")
    assert apply_due_prices(now=start + timedelta(minutes=59)) == []
    assert apply_due_prices(now=start + timedelta(hours=1)) == [model.id]
    model.refresh_from_db()
    assert (model.input_price_per_mtok, model.output_price_per_mtok) == (Decimal("5"), Decimal("10"))
    assert model.price_effective_from == start + timedelta(hours=1)
    assert apply_due_prices(now=start + timedelta(hours=2)) == []  # applied once
    assert ModelPrice.objects.filter(model=model).count() == 2  # applying adds no row


@pytest.mark.django_db
def test_of_several_due_prices_the_latest_wins_and_a_past_date_applies_at_once():
    model = ModelFactory(input_price_per_mtok=Decimal("1"), output_price_per_mtok=Decimal("2"))
    now = timezone.now()
    ModelPrice.objects.create(model=model, effective_from=now + timedelta(seconds=1), **prices(input="3", output="6"))
    ModelPrice.objects.create(model=model, effective_from=now + timedelta(seconds=2), **prices(input="7", output="9"))
    apply_due_prices(now=now + timedelta(seconds=5))
    model.refresh_from_db()
    assert model.input_price_per_mtok == Decimal("7")

    other = ModelFactory(input_price_per_mtok=Decimal("1"), output_price_per_mtok=Decimal("2"))
    schedule_price(other, timezone.now(), prices(input="2", output="4"))  # due at once
    other.refresh_from_db()
    assert other.input_price_per_mtok == Decimal("2")


# ---- usage keeps what it was billed at --------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_usage_before_and_after_a_price_change_keep_their_costs(fake_openai, build, openai_client, gateway):
    fake_openai.prompt_tokens, fake_openai.completion_tokens = 1_000_000, 1_000_000
    provider = build.provider(fake_openai)
    model = build.model(provider, input_price="1", output_price="2")
    build.route("chat-default", model)
    client = openai_client(build.key(routes=[]))

    def ask() -> UsageRecord:
        before = UsageRecord.objects.count()
        client.chat.completions.create(model="chat-default", messages=HI)
        assert wait_for(lambda: UsageRecord.objects.count() == before + 1)
        return UsageRecord.objects.order_by("-created_at").first()

    old = ask()
    assert old.cost_usd == Decimal("3")
    model.input_price_per_mtok, model.output_price_per_mtok = Decimal("10"), Decimal("20")
    model.save()  # this process's routing table is invalidated by the save
    assert wait_for(lambda: ask().cost_usd == Decimal("30"), timeout=10)

    # A scheduled price: billed from its date on (within the catalogue's refresh interval).
    schedule_price(model, timezone.now() + timedelta(seconds=1.5), prices(input="100", output="200"))
    assert ask().cost_usd == Decimal("30")
    assert wait_for(lambda: ask().cost_usd == Decimal("300"), timeout=10)

    old.refresh_from_db()
    assert (old.cost_usd, old.input_price_per_mtok, old.output_price_per_mtok) == (Decimal("3"), Decimal("1"), Decimal("2"))
    assert [r.input_price_per_mtok for r in ModelPrice.objects.filter(model=model)] == [
        Decimal("100"), Decimal("10"), Decimal("1")]


# ---- the admin -----------------------------------------------------------------------
@pytest.mark.django_db
def test_the_model_page_shows_the_history_and_schedules_a_price(admin_client):
    model = ModelFactory(provider=ProviderFactory(kind="openai"), name="gpt-4o", input_price_per_mtok=Decimal("2"),
                         output_price_per_mtok=Decimal("8"))
    url = reverse("admin:providers_model_change", args=[model.pk])
    page = admin_client.get(url)
    html = page.content.decode()
    assert "Price history" in html and "in effect" in html and "Scheduled prices" in html
    assert "$2.50 in / $10.00 out per 1M" in html and "checked 2026-12-03" in html and "Differs from" in html

    form = untouched_form(page)
    prefix = next(k for k in form if k.endswith("-TOTAL_FORMS") and "price_history" in k and
                  form[k.replace("TOTAL", "INITIAL")] == ["0"] and k.startswith("price_history-")).removesuffix("-TOTAL_FORMS")
    when = timezone.localtime() + timedelta(days=30)
    form.update({f"{prefix}-TOTAL_FORMS": ["1"], f"{prefix}-0-effective_from_0": [when.strftime("%Y-%m-%d")],
                 f"{prefix}-0-effective_from_1": [when.strftime("%H:%M:%S")],
                 f"{prefix}-0-input_price_per_mtok": ["3"], f"{prefix}-0-output_price_per_mtok": ["12"],
                 f"{prefix}-0-model": [str(model.pk)]})
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    scheduled = ModelPrice.objects.get(model=model, effective_from__gt=timezone.now())
    assert scheduled.input_price_per_mtok == Decimal("3") and scheduled.source == PriceSource.SCHEDULED
    model.refresh_from_db()
    assert model.input_price_per_mtok == Decimal("2")  # not yet


@pytest.mark.django_db
def test_a_past_date_is_refused_for_a_scheduled_price():
    from providers.admin_prices import ScheduledPriceForm

    form = ScheduledPriceForm(data={"effective_from": "2020-01-01 00:00:00",
                                    "input_price_per_mtok": "1", "output_price_per_mtok": "2"})
    assert not form.is_valid() and "starts in the future" in str(form.errors)


@pytest.mark.django_db
def test_a_new_model_is_filled_from_the_catalogue_with_its_checked_date(admin_client):
    provider = ProviderFactory(kind="anthropic", name="an")
    add = reverse("admin:providers_model_add")
    prefilled = admin_client.get(add, {"provider": provider.pk, "name": "claude-haiku-4-5"}).content.decode()
    assert 'value="1.00"' in prefilled and "checked 2026-12-03" in prefilled

    form = untouched_form(admin_client.get(add))
    assert form["fill_from_catalogue"] == ["on"]  # ticked by default
    form.update({"provider": [str(provider.pk)], "name": ["haiku"], "upstream_id": ["claude-haiku-4-5-20251001"],
                 "input_price_per_mtok": ["0"], "output_price_per_mtok": ["0"]})
    html = admin_client.post(add, form, follow=True).content.decode()
    model = Model.objects.get(name="haiku")
    assert model.prices() == (Decimal("1"), Decimal("5"), Decimal("0.1"), Decimal("1.25"))
    assert model.context_window == 200000 and "prices filled from the price catalogue" in html
    assert ModelPrice.objects.get(model=model).source == PriceSource.CATALOGUE


# ---- unpriced ------------------------------------------------------------------------
@pytest.mark.django_db
def test_unpriced_models_are_flagged_in_the_list_filter_and_on_save(admin_client):
    paid = ProviderFactory(kind="openai", name="paid")
    ModelFactory(provider=paid, name="free-lunch", input_price_per_mtok=0, output_price_per_mtok=0)
    ModelFactory(provider=paid, name="priced")
    ModelFactory(provider=ProviderFactory(kind="ollama", name="local"), name="llama", input_price_per_mtok=0,
                 output_price_per_mtok=0)
    changelist = reverse("admin:providers_model_changelist")

    html = admin_client.get(changelist).content.decode()
    assert html.count("⚠ unpriced") == 1
    flagged = admin_client.get(changelist, {"price": "unpriced"}).context["cl"].result_list
    assert [m.name for m in flagged] == ["free-lunch"]
    assert unpriced_models() == [("paid", "free-lunch")]

    model = Model.objects.get(name="priced")
    page = admin_client.get(reverse("admin:providers_model_change", args=[model.pk]))
    form = untouched_form(page)
    form.update({"input_price_per_mtok": ["0"], "output_price_per_mtok": ["0"]})
    html = admin_client.post(reverse("admin:providers_model_change", args=[model.pk]), form, follow=True).content.decode()
    assert "/priced has no price (input and output 0)" in html


@pytest.mark.django_db(transaction=True)
def test_an_unpriced_model_is_served_its_usage_marked_and_its_gauge_set(fake_openai, build, openai_client, gateway):
    provider = build.provider(fake_openai, name="paid")
    model = build.model(provider, "gpt-4o-mini", input_price="0", output_price="0")
    build.route("chat-default", model)

    answer = openai_client(build.key()).chat.completions.create(model="chat-default", messages=HI)

    assert answer.choices[0].message.content
    assert wait_for(lambda: UsageRecord.objects.exists())
    record = UsageRecord.objects.get()
    assert record.cost_usd == 0 and record.annotations.get("pricing") == {"unpriced": True}
    text = httpx.get(f"{gateway}/metrics").text
    assert 'gateway_models_unpriced{model="gpt-4o-mini",provider="paid"} 1.0' in text

    model.input_price_per_mtok, model.output_price_per_mtok = Decimal("1"), Decimal("2")
    model.save()
    assert "gateway_models_unpriced{" not in httpx.get(f"{gateway}/metrics").text
    client = openai_client(build.key(name="second"))
    assert wait_for(lambda: client.chat.completions.create(model="chat-default", messages=HI) and
                    UsageRecord.objects.count() == 2)
    assert "pricing" not in UsageRecord.objects.order_by("-created_at").first().annotations


@pytest.mark.django_db
def test_a_yaml_import_that_changes_a_price_is_a_history_row_and_omitted_prices_stay_unpriced():
    from routing.config import import_config

    def config(price: str, **model) -> dict:
        return {"providers": [{"name": "oa", "kind": "openai", "api_key": "env:OPENAI_API_KEY", "models": [
            {"name": "gpt-4o", "input_price_per_mtok": price, "output_price_per_mtok": "10"},
            {"name": "gpt-4o-mini", **model}]}]}

    import_config(config("2.5"))
    import_config(config("2.5"))  # unchanged: no row
    import_config(config("3"))
    model = Model.objects.get(name="gpt-4o")
    assert [r.input_price_per_mtok for r in model.price_history.all()] == [Decimal("3"), Decimal("2.5")]
    assert {r.source for r in model.price_history.all()} == {PriceSource.SAVED}
    # No prices in the file: the catalogue is not consulted, the model is flagged instead.
    assert Model.objects.get(name="gpt-4o-mini").unpriced


@pytest.mark.django_db
def test_an_instance_refreshed_after_a_scheduled_price_saves_without_a_spurious_row():
    model = ModelFactory(input_price_per_mtok=Decimal("1"), output_price_per_mtok=Decimal("2"))
    ModelPrice.objects.create(model=model, effective_from=timezone.now(), **prices(input="5", output="6"))
    apply_due_prices()
    model.refresh_from_db()
    model.quality_score = 80
    model.save()
    assert ModelPrice.objects.filter(model=model).count() == 2


@pytest.mark.django_db
def test_the_add_form_hint_names_the_catalogue_entry_and_its_date(admin_client, client):
    provider = ProviderFactory(kind="openai", name="oa")
    url = reverse("admin:providers_model_catalogue")
    found = admin_client.get(url, {"provider": provider.pk, "model": "gpt-4o-mini"}).json()
    assert found["found"] and "$0.15 in / $0.60 out per 1M" in found["text"] and "checked 2026-12-03" in found["text"]
    missing = admin_client.get(url, {"provider": provider.pk, "model": "my-finetune"}).json()
    assert not missing["found"] and "unpriced" in missing["text"]
    local = ProviderFactory(kind="ollama", name="local")
    assert admin_client.get(url, {"provider": local.pk, "model": "gpt-4o"}).json()["text"] == "Free kind: no prices."
    assert client.get(url, {"provider": provider.pk, "model": "gpt-4o"}).status_code == 302  # signed-in staff only
