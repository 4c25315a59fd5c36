"""'Discover models' on a provider: the provider's own model list, read from the fakes
over HTTP, shown with capabilities, catalogue prices and what is configured; the ticked
models added with a click; failures as a sentence, never a 500 or a key."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from providers.models import Model, ModelPrice, PriceSource
from tests.factories import ModelFactory, ProviderFactory

pytestmark = pytest.mark.django_db


def discover_url(provider) -> str:
    return reverse("admin:providers_provider_discover", args=[provider.pk])


def page(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def test_openai_models_listed_with_catalogue_prices_and_what_is_configured(admin_client, fake_openai):
    provider = ProviderFactory(name="oa", kind="openai", base_url=fake_openai.base_url, api_key=fake_openai.api_key)
    ModelFactory(provider=provider, name="mini", upstream_id="gpt-4o-mini")

    html = page(admin_client.get(discover_url(provider)))

    assert "gpt-4o" in html and "gpt-4o-mini" in html
    assert "yes: mini" in html  # gpt-4o-mini is configured as "mini"
    assert 'name="add" value="gpt-4o"' in html and 'value="gpt-4o-mini"' not in html
    assert "$2.50 in / $10.00 out per 1M" in html and "checked 2026-12-03" in html
    assert fake_openai.requests[-1].path == "/v1/models"
    assert fake_openai.requests[-1].headers["authorization"] == f"Bearer {fake_openai.api_key}"
    assert fake_openai.api_key not in html


def test_adding_a_discovered_model_creates_it_with_catalogue_prices(admin_client, fake_openai):
    provider = ProviderFactory(name="oa", kind="openai", base_url=fake_openai.base_url, api_key=fake_openai.api_key)

    response = admin_client.post(discover_url(provider), {"add": ["gpt-4o"]}, follow=True)

    model = Model.objects.get(provider=provider, name="gpt-4o")
    assert (model.input_price_per_mtok, model.output_price_per_mtok) == (Decimal("2.5"), Decimal("10"))
    assert model.cache_read_price_per_mtok == Decimal("1.25") and model.context_window == 128000
    assert {"chat", "tools", "vision"} <= set(model.capabilities)  # OpenAI reports none: the catalogue's
    assert ModelPrice.objects.get(model=model).source == PriceSource.CATALOGUE
    assert "Added 1 model(s) to oa: gpt-4o" in response.content.decode()
    # Listed again: now configured, no box to tick.
    assert "yes: gpt-4o" in page(admin_client.get(discover_url(provider)))


def test_a_model_the_catalogue_lacks_is_added_unpriced_and_said_so(admin_client, fake_openai, monkeypatch):
    monkeypatch.setattr(fake_openai, "known_models", {"my-finetune"})
    provider = ProviderFactory(name="oa", kind="openai", base_url=fake_openai.base_url, api_key=fake_openai.api_key)

    html = admin_client.post(discover_url(provider), {"add": ["my-finetune"]}, follow=True).content.decode()

    model = Model.objects.get(provider=provider, name="my-finetune")
    assert model.unpriced and model.input_price_per_mtok == 0
    assert "No catalogue price for my-finetune" in html


def test_anthropic_pages_through_the_list_and_reads_reported_capabilities(admin_client, fake_anthropic, monkeypatch):
    monkeypatch.setattr(fake_anthropic, "known_models",
                        {f"claude-test-{i:04d}" for i in range(1203)} | {"claude-sonnet-4-6"})
    monkeypatch.setattr(fake_anthropic, "model_details", {"claude-sonnet-4-6": {
        "max_input_tokens": 1000000, "max_tokens": 128000,
        "capabilities": {"image_input": {"supported": True}, "structured_outputs": {"supported": True},
                         "thinking": {"supported": True}, "batch": {"supported": True}}}})
    provider = ProviderFactory(name="an", kind="anthropic", base_url=fake_anthropic.base_url,
                               api_key=fake_anthropic.api_key)

    html = page(admin_client.get(discover_url(provider)))

    listed = [r for r in fake_anthropic.requests if r.path == "/v1/models"]
    assert len(listed) == 2 and listed[0].query == {"limit": "1000"}
    assert listed[1].query == {"limit": "1000", "after_id": sorted(fake_anthropic.known_models)[999]}
    assert all(r.headers["x-api-key"] == fake_anthropic.api_key and r.headers["anthropic-version"] for r in listed)
    assert "claude-test-1202" in html and "1204 model(s)" in html.replace("<strong>", "").replace("</strong>", "")
    admin_client.post(discover_url(provider), {"add": ["claude-sonnet-4-6"]})
    model = Model.objects.get(provider=provider, upstream_id="")
    assert model.name == "claude-sonnet-4-6" and model.context_window == 1000000
    assert model.capabilities == ["chat", "streaming", "tools", "vision", "json_mode", "thinking"]
    assert model.input_price_per_mtok == Decimal("3") and model.cache_write_price_per_mtok == Decimal("3.75")


def test_ollama_capabilities_come_from_api_show(admin_client, fake_ollama, monkeypatch):
    monkeypatch.setattr(fake_ollama, "known_models", {"llama3.2:latest", "nomic-embed-text:latest"})
    monkeypatch.setattr(fake_ollama, "model_details", {
        "nomic-embed-text:latest": {"capabilities": ["embedding"], "context_length": 8192},
        "llama3.2:latest": {"capabilities": ["completion", "tools", "vision"]}})
    provider = ProviderFactory(name="ol", kind="ollama", base_url=fake_ollama.url, api_key="")

    html = page(admin_client.get(discover_url(provider)))
    assert "from the API" in html and "free" in html
    admin_client.post(discover_url(provider), {"add": ["llama3.2:latest", "nomic-embed-text:latest"]})

    embed = Model.objects.get(provider=provider, name="nomic-embed-text:latest")
    chat = Model.objects.get(provider=provider, name="llama3.2:latest")
    assert embed.capabilities == ["embeddings"] and embed.context_window == 8192
    assert chat.capabilities == ["chat", "streaming", "tools", "vision", "json_mode"] and chat.context_window == 131072
    assert not chat.unpriced  # a free kind is never "unpriced"
    assert {r.path for r in fake_ollama.requests} == {"/api/tags", "/api/show"}


def test_mock_lists_its_configured_models(admin_client):
    provider = ProviderFactory(name="mk", kind="mock", base_url="", options={"models": ["alpha", "beta"]})
    html = page(admin_client.get(discover_url(provider)))
    assert 'value="alpha"' in html and 'value="beta"' in html


@pytest.mark.parametrize(("key", "words"), [("sk-wrong-key-0000", "refused the API key"), ("", "no API key configured")])
def test_auth_failures_are_a_message_without_the_key(admin_client, fake_openai, key, words):
    provider = ProviderFactory(name="oa", kind="openai", base_url=fake_openai.base_url, api_key=key)

    html = page(admin_client.get(discover_url(provider)))

    assert words in html and "could not be read" in html
    assert fake_openai.api_key not in html and (not key or key not in html)
    assert "Add the ticked models" not in html


def test_an_unreachable_provider_is_a_message(admin_client):
    provider = ProviderFactory(name="down", kind="openai", base_url="http://127.0.0.1:9/v1", api_key="sk-test")
    html = page(admin_client.get(discover_url(provider)))
    assert "down could not be reached or failed" in html


def test_a_kind_without_a_model_list_says_so(admin_client, monkeypatch):
    from providers.adapters import ADAPTERS
    from providers.adapters.base import Adapter

    # A wire format without list_models: the base class's answer (no adapter is patched:
    # the mock adapter's own method is hidden for this test only).
    monkeypatch.setattr(type(ADAPTERS["mock"]), "list_models", Adapter.list_models)
    provider = ProviderFactory(name="mk", kind="mock", base_url="")
    html = page(admin_client.get(discover_url(provider)))
    assert "offers no model list to discover" in html


def test_the_action_and_the_button_lead_to_the_page(admin_client, fake_openai):
    provider = ProviderFactory(name="oa", kind="openai", base_url=fake_openai.base_url, api_key=fake_openai.api_key)
    change = page(admin_client.get(reverse("admin:providers_provider_change", args=[provider.pk])))
    assert discover_url(provider) in change and "Discover models" in change
    response = admin_client.post(reverse("admin:providers_provider_changelist"),
                                 {"action": "discover_models", "_selected_action": [provider.pk]})
    assert response.status_code == 302 and response["Location"] == discover_url(provider)


def test_viewers_see_the_list_but_cannot_add(client, fake_openai):
    provider = ProviderFactory(name="oa", kind="openai", base_url=fake_openai.base_url, api_key=fake_openai.api_key)
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_provider"))
    client.force_login(viewer)

    html = page(client.get(discover_url(provider)))
    assert "gpt-4o" in html and 'name="add"' not in html
    assert client.post(discover_url(provider), {"add": ["gpt-4o"]}).status_code == 403
    assert not Model.objects.filter(provider=provider).exists()
