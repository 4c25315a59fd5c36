"""A model's capabilities and prompt-cache prices, edited in the admin (checkboxes, clean
messages) and in the config file (`capabilities: [...]`, the cache prices), both
validated before anything is saved, and exported to re-import unchanged."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from providers.models import Model
from routing.catalog import load_table
from routing.config import ConfigError, export_config, import_config, load_config_text
from tests.admin_helpers import errors_text, untouched_form
from tests.factories import ModelFactory, ProviderFactory

pytestmark = pytest.mark.django_db


# --- admin --------------------------------------------------------------------------------
def model_data(provider, **changes) -> dict:
    data = {"provider": provider.pk, "name": "text-embedding-3-small", "upstream_id": "",
            "input_price_per_mtok": "0.02", "output_price_per_mtok": "0", "cache_read_price_per_mtok": "",
            "cache_write_price_per_mtok": "", "context_window": "", "quality_score": "50", "enabled": "on",
            "capabilities": ["embeddings"]}
    data.update(changes)
    return data


def test_the_model_form_shows_one_checkbox_per_capability(admin_client):
    model = ModelFactory(capabilities=["chat", "tools"])
    page = admin_client.get(reverse("admin:providers_model_change", args=[model.pk]))
    html = page.content.decode()
    for name in ("chat", "streaming", "tools", "vision", "json_mode", "thinking", "embeddings"):
        assert f'type="checkbox" name="capabilities" value="{name}"' in html
    assert untouched_form(page)["capabilities"] == ["chat", "tools"]  # ticked: what the model has
    assert "Prompt-cache read price" in html and "Prompt-cache write price" in html


def test_capabilities_and_cache_prices_are_saved_from_the_form(admin_client):
    provider = ProviderFactory()
    response = admin_client.post(reverse("admin:providers_model_add"), model_data(
        provider, capabilities=["tools", "chat", "embeddings"], cache_read_price_per_mtok="0.3",
        cache_write_price_per_mtok="3.75"))
    assert response.status_code == 302, errors_text(response)
    model = Model.objects.get()
    assert model.capabilities == ["chat", "tools", "embeddings"]  # in the documented order
    assert (model.cache_read_price_per_mtok, model.cache_write_price_per_mtok) == (Decimal("0.3"), Decimal("3.75"))


def test_the_form_refuses_a_model_that_serves_nothing(admin_client):
    response = admin_client.post(reverse("admin:providers_model_add"),
                                 model_data(ProviderFactory(), capabilities=["tools", "vision"]))
    assert response.status_code == 200
    text = errors_text(response)
    assert "Tick chat, embeddings or both: a model serves at least one of them." in text
    assert "list at least one of them" not in text  # one message, not the model's second one
    assert not Model.objects.exists()


def test_the_form_refuses_embeddings_on_a_provider_without_an_embeddings_api(admin_client):
    anthropic = ProviderFactory(kind="anthropic", base_url="")
    response = admin_client.post(reverse("admin:providers_model_add"), model_data(anthropic, name="claude"))
    assert response.status_code == 200
    assert "has no embeddings endpoint: untick embeddings" in errors_text(response)
    assert not Model.objects.exists()


def test_the_model_list_says_what_each_model_serves(admin_client):
    ModelFactory(name="embedder", capabilities=["embeddings"])
    ModelFactory(name="chatter")
    html = admin_client.get(reverse("admin:providers_model_changelist")).content.decode()
    assert '<span title="chat, streaming, tools, vision, json_mode">chatter</span></a>' in html
    assert '<span title="embeddings">embedder</span><br><span class="quiet">embeddings</span>' in html


# --- config as code -------------------------------------------------------------------------
CONFIG = """
providers:
  - name: p
    kind: openai
    base_url: http://127.0.0.1:9/v1
    models:
      - name: text-embedding-3-small
        input_price_per_mtok: "0.02"
        output_price_per_mtok: 0
        capabilities: [embeddings]
      - name: claude-like
        input_price_per_mtok: 3
        output_price_per_mtok: 15
        cache_read_price_per_mtok: "0.30"
        cache_write_price_per_mtok: 3.75
        capabilities: [tools, chat, thinking]
      - name: gpt-4o-mini
        input_price_per_mtok: "0.15"
        output_price_per_mtok: "0.60"
routes:
  - name: embed
    targets:
      - model: p/text-embedding-3-small
"""


def test_capabilities_and_cache_prices_import_and_export_unchanged():
    import_config(load_config_text(CONFIG))
    models = {m.name: m for m in Model.objects.all()}
    assert models["text-embedding-3-small"].capabilities == ["embeddings"]
    assert models["claude-like"].capabilities == ["chat", "tools", "thinking"]  # the documented order
    assert (models["claude-like"].cache_read_price_per_mtok, models["claude-like"].cache_write_price_per_mtok) == (
        Decimal("0.30"), Decimal("3.75"))
    assert models["gpt-4o-mini"].capabilities == ["chat", "streaming", "tools", "vision", "json_mode"]  # default
    assert models["gpt-4o-mini"].cache_read_price_per_mtok is None
    exported = {m["name"]: m for m in export_config()["providers"][0]["models"]}
    assert exported["text-embedding-3-small"]["capabilities"] == ["embeddings"]
    assert exported["claude-like"]["capabilities"] == ["chat", "tools", "thinking"]
    assert (exported["claude-like"]["cache_read_price_per_mtok"], exported["claude-like"]["cache_write_price_per_mtok"]) == (
        "0.30", "3.75")
    assert "capabilities" not in exported["gpt-4o-mini"] and "cache_read_price_per_mtok" not in exported["gpt-4o-mini"]
    report = import_config(export_config())
    assert report.created == report.updated == 0
    route = load_table().routes["embed"]
    assert route.targets[0].model.capabilities == frozenset({"embeddings"})


@pytest.mark.parametrize("capabilities, path, message", [
    ("[tool]", "capabilities[0]", "unknown capability 'tool' (known: chat, streaming, tools, vision, json_mode, "
                                  "thinking, embeddings); did you mean 'tools'?"),
    ("[chat, chat]", "capabilities[1]", "'chat' is listed twice"),
    ("[tools, vision]", "capabilities", "a model serves chat, embeddings or both: list at least one of them"),
    ("chat", "capabilities", "expected a list of capabilities (e.g. [chat, tools]), got a string"),
    ("[chat, 3]", "capabilities[1]", "expected a capability name, got an integer"),
])
def test_bad_capabilities_are_refused_with_their_path(capabilities, path, message):
    text = CONFIG.replace("capabilities: [embeddings]", f"capabilities: {capabilities}")
    with pytest.raises(ConfigError) as exc:
        import_config(load_config_text(text))
    assert (f"providers[p].models[text-embedding-3-small].{path}", message) in exc.value.errors
    assert not Model.objects.exists()


def test_embeddings_on_an_anthropic_model_is_refused():
    text = CONFIG.replace("kind: openai", "kind: anthropic").replace("base_url: http://127.0.0.1:9/v1", "")
    with pytest.raises(ConfigError) as exc:
        import_config(load_config_text(text))
    assert exc.value.errors[0] == ("providers[p].models[text-embedding-3-small].capabilities",
                                   "'embeddings' is not served by kind 'anthropic': Anthropic Messages API has no "
                                   "embeddings endpoint")


def test_a_negative_cache_price_is_refused_by_the_models_own_validation():
    text = CONFIG.replace('cache_read_price_per_mtok: "0.30"', "cache_read_price_per_mtok: -1")
    with pytest.raises(ConfigError) as exc:
        import_config(load_config_text(text))
    assert exc.value.path == "providers[p].models[claude-like].cache_read_price_per_mtok"

