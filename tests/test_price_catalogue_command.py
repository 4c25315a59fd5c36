"""manage.py price_catalogue: list, check, drift between configured prices and the
catalogue, and filling unpriced models from it (only with --apply)."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from providers.models import Model, ModelPrice, PriceSource
from tests.factories import ModelFactory, ProviderFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("price_catalogue", *args, stdout=out)
    return out.getvalue()


def test_list_and_check():
    listed = run("list", "--kind", "openai")
    assert "openai\tgpt-4o\t$2.50 in / $10.00 out per 1M" in listed and "anthropic" not in listed
    assert "valid, " in run("check")
    with pytest.raises(CommandError, match="no section 'nope'"):
        run("list", "--kind", "nope")


def test_drift_names_what_differs():
    provider = ProviderFactory(kind="openai", name="oa")
    ModelFactory(provider=provider, name="gpt-4o", input_price_per_mtok=Decimal("2"), output_price_per_mtok=Decimal("10"),
                 cache_read_price_per_mtok=Decimal("1.25"))
    ModelFactory(provider=provider, name="mine")  # not in the catalogue: not compared
    out = run("drift")
    assert "oa/gpt-4o: input 2.00 -> catalogue 2.50 (checked 2026-12-03)" in out
    assert "1 model(s) differ" in out and "mine" not in out


def test_fill_sets_unpriced_models_only_with_apply():
    provider = ProviderFactory(kind="anthropic", name="an")
    model = ModelFactory(provider=provider, name="claude-haiku-4-5", input_price_per_mtok=0, output_price_per_mtok=0)
    ModelFactory(provider=ProviderFactory(kind="ollama", name="local"), name="gpt-4o", input_price_per_mtok=0,
                 output_price_per_mtok=0)  # a free kind is never filled

    assert "1 unpriced model(s) can be filled" in run("fill")
    model.refresh_from_db()
    assert model.unpriced

    assert "1 unpriced model(s) filled" in run("fill", "--apply")
    model = Model.objects.get(pk=model.pk)
    assert model.prices() == (Decimal("1"), Decimal("5"), Decimal("0.1"), Decimal("1.25")) and not model.unpriced
    assert ModelPrice.objects.filter(model=model).first().source == PriceSource.CATALOGUE
