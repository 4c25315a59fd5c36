"""factory-boy factories for the gateway's entities."""

from __future__ import annotations

from decimal import Decimal

import factory

from billing.models import Team
from providers.models import Model, Provider
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
