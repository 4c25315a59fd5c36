"""factory-boy factories for the gateway's entities: the one way tests build rows.

Defaults are the smallest valid row; pass only what the test is about."""

from __future__ import annotations

from decimal import Decimal

import factory

from billing.models import Budget, Team, UsageRecord
from providers.models import HealthCheck, Model, Provider
from routing.models import Route, RouteTarget


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Provider
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"provider-{n}")
    kind = "openai"
    base_url = "http://127.0.0.1:9/v1"
    api_key = "sk-test-provider-key-0000"
    timeout_s = Decimal("5")


class ModelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Model

    provider = factory.SubFactory(ProviderFactory)
    name = factory.Sequence(lambda n: f"model-{n}")
    input_price_per_mtok = Decimal("1.00")
    output_price_per_mtok = Decimal("2.00")


class RouteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Route
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"route-{n}")
    strategy = "fallback"
    timeout_s = Decimal("10")
    max_attempts = 1
    backoff_base_ms = 10
    backoff_max_ms = 50


class RouteTargetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RouteTarget

    route = factory.SubFactory(RouteFactory)
    model = factory.SubFactory(ModelFactory)
    order = factory.Sequence(int)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"team-{n}")


class BudgetFactory(factory.django.DjangoModelFactory):
    """A gateway-wide monthly budget of $10 that blocks; give `scope` with `team` or `key`."""

    class Meta:
        model = Budget

    scope = Budget.Scope.GLOBAL
    amount_usd = Decimal("10")
    period = Budget.Period.MONTH


class UsageRecordFactory(factory.django.DjangoModelFactory):
    """One successful request's ledger row, with no tokens and no cost unless given;
    `billed=True` adds a provider, a model, tokens, a cost and a baseline cost (the
    rollup and report tests' row). Ids of keys, teams, routes need not exist: the
    ledger has no foreign key constraints."""

    class Meta:
        model = UsageRecord

    class Params:
        billed = factory.Trait(
            route_name="chat",
            provider_name="openai",
            model_name="openai/gpt-4o-mini",
            prompt_tokens=10,
            completion_tokens=5,
            cost_usd=Decimal("0.0010000000"),
            baseline_cost_usd=Decimal("0.0020000000"),
        )

    request_id = factory.Sequence(lambda n: f"usage-{n}")
    route_name = "chat-default"
    status = UsageRecord.Status.SUCCESS
    http_status = 200


class HealthCheckFactory(factory.django.DjangoModelFactory):
    """A successful probe of a model."""

    class Meta:
        model = HealthCheck

    model = factory.SubFactory(ModelFactory)
    ok = True
    latency_ms = 120
