"""What each adapter reads from a listed model (the model-list shapes the fakes do not
serve: Mistral's and Groq's cards, Anthropic models without capabilities, Ollama
without /api/show), broken lists as provider errors, and the names and capabilities
discovery gives new models."""

from __future__ import annotations

import pytest
from django.urls import reverse

from providers.adapters import anthropic, ollama, openai
from providers.discovery import _capabilities, _free_name
from providers.price_catalogue import lookup
from providers.types import DiscoveredModel, ErrorKind, ProviderError
from tests.factories import ProviderFactory


def test_openai_compatible_cards_are_read_when_they_say_more():
    mistral = openai._discovered({"id": "mistral-large-latest", "object": "model", "max_context_length": 131072,
                                  "capabilities": {"completion_chat": True, "function_calling": True,
                                                   "vision": False, "fine_tuning": False}}, "m")
    assert mistral.capabilities == {"chat", "streaming", "tools"} and mistral.context_window == 131072
    groq = openai._discovered({"id": "openai/gpt-oss-120b", "context_window": 131072, "active": True}, "g")
    assert groq.capabilities == frozenset() and groq.context_window == 131072
    assert openai._discovered({"id": "gpt-4o", "context_window": "big"}, "o").context_window is None


def test_anthropic_models_without_capabilities_report_none():
    plain = anthropic._discovered({"type": "model", "id": "claude-x", "display_name": "Claude X"}, "a")
    assert plain == DiscoveredModel("claude-x", "Claude X")


@pytest.mark.parametrize("item", [{}, {"id": ""}, {"id": 12}])
def test_a_listed_model_without_an_id_is_a_bad_response(item):
    for parse in (openai._discovered, anthropic._discovered):
        with pytest.raises(ProviderError) as caught:
            parse(item, "p")
        assert caught.value.kind == ErrorKind.BAD_RESPONSE


def test_ollama_without_api_show_lists_the_name_only():
    assert ollama._discovered("qwen3:8b", {}) == DiscoveredModel("qwen3:8b", "qwen3:8b")
    shown = ollama._discovered("qwen3:8b", {"capabilities": ["completion", "thinking", "insert"],
                                            "model_info": {"qwen3.context_length": 40960}})
    assert shown.capabilities == {"chat", "streaming", "json_mode", "thinking"} and shown.context_window == 40960


def test_new_model_names_are_valid_and_unused():
    taken = {"openai-gpt-oss-120b"}
    assert _free_name("openai/gpt-oss-120b", taken) == "openai-gpt-oss-120b-2"
    assert _free_name("llama3.2:latest", set()) == "llama3.2:latest"
    assert _free_name("///", set()) == "model"


def test_capabilities_come_from_the_api_then_the_catalogue_then_defaults():
    entry = lookup("openai", "text-embedding-3-small")
    assert _capabilities(DiscoveredModel("x", capabilities=frozenset({"chat"})), entry, True) == (("chat",), "the API")
    assert _capabilities(DiscoveredModel("x"), entry, True) == (("embeddings",), "the catalogue")
    # An embeddings model on an adapter that cannot send embeddings: the defaults, never "embeddings".
    caps, source = _capabilities(DiscoveredModel("x"), entry, False)
    assert source == "defaults" and "embeddings" not in caps


@pytest.mark.django_db
def test_a_base_url_without_a_model_list_is_a_message(admin_client, fake_ollama):
    # An OpenAI-kind provider pointed at a server that has no /models: its 404 is named.
    provider = ProviderFactory(name="wrong", kind="openai", base_url=fake_ollama.url, api_key="sk-test")
    html = admin_client.get(reverse("admin:providers_provider_discover", args=[provider.pk])).content.decode()
    assert "wrong has no model list at this base URL (check the base URL) (HTTP 404)" in html
