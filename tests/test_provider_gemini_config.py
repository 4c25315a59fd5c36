"""Gemini and Vertex AI provider settings (check_config, as saving a provider runs it)
and model discovery from the Gemini API's model list (the admin's "discover models")."""

from __future__ import annotations

import asyncio

import pytest
from django.core.exceptions import ValidationError

from providers.adapters import ADAPTERS
from providers.catalog import provider_info
from providers.discovery import discover
from providers.http import close_session
from providers.types import ErrorKind, ProviderError
from tests.gemini_helpers import fresh, serve

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def _gemini_server():
    yield from serve()


@pytest.fixture
def fake_gemini(_gemini_server):
    yield from fresh(_gemini_server)


def _list(provider) -> list:
    async def listing():
        try:
            return await ADAPTERS["gemini"].list_models(provider_info(provider), 5)
        finally:
            await close_session()

    return asyncio.run(listing())


def test_every_page_of_the_model_list_is_read(fake_gemini, build):
    fake_gemini.known_models = {"gemini-2.5-flash", "gemini-2.5-pro", "gemma-3-27b-it", "gemini-embedding-001"}
    fake_gemini.max_page_size = 3
    found = {m.upstream_id: m for m in _list(build.provider(fake_gemini, kind="gemini"))}
    assert sorted(found) == sorted(fake_gemini.known_models)
    assert [r.query.get("pageToken") for r in fake_gemini.requests] == [None, "3"]
    assert fake_gemini.requests[0].headers["x-goog-api-key"] == fake_gemini.api_key
    flash = found["gemini-2.5-flash"]
    assert flash.capabilities == {"chat", "streaming", "tools", "vision", "json_mode", "thinking"}
    assert (flash.context_window, flash.max_output_tokens, flash.display_name) == (1048576, 65536, "Gemini 2.5 Flash")
    assert found["gemma-3-27b-it"].capabilities == {"chat", "streaming", "thinking"}  # no tools claimed for Gemma
    assert found["gemini-embedding-001"].capabilities == {"embeddings"}


def test_discovery_offers_the_listed_models_with_their_capabilities(fake_gemini, build):
    fake_gemini.known_models = {"gemini-2.5-flash", "gemini-embedding-001"}
    result = discover(build.provider(fake_gemini, kind="gemini"))
    assert result.error == ""
    by_id = {c.upstream_id: c for c in result.candidates}
    assert by_id["gemini-2.5-flash"].capabilities_from == "the API"
    assert "streaming" in by_id["gemini-2.5-flash"].capabilities
    assert by_id["gemini-embedding-001"].capabilities == ("embeddings",)


def test_a_bad_key_is_an_auth_error_when_listing(fake_gemini, build):
    with pytest.raises(ProviderError) as caught:
        _list(build.provider(fake_gemini, kind="gemini", api_key="wrong-gemini-key-123456"))
    assert (caught.value.kind, caught.value.status) == (ErrorKind.AUTH, 400)
    assert "API_KEY_INVALID" in caught.value.message


def test_vertex_has_no_model_list_to_discover(build):
    result = discover(build.provider(None, kind="vertex_ai", base_url="", options={"project": "p-1"}))
    assert result.unsupported


@pytest.mark.parametrize("kind, base_url, options, error", [
    ("gemini", "", {"api_version": "v2"}, '"api_version" must be one of v1beta, v1'),
    ("vertex_ai", "", {}, '"project" is required'),
    ("vertex_ai", "", {"project": "my-project", "location": "us central"}, '"location" must be'),
])
def test_settings_are_checked_when_a_provider_is_saved(kind, base_url, options, error):
    from providers.models import Provider

    with pytest.raises(ValidationError, match=error):
        Provider(name="g", kind=kind, base_url=base_url, api_key="KEY", options=options).full_clean()


def test_usable_settings_save(build):
    from providers.models import Provider

    Provider(name="g", kind="gemini", base_url="", api_key="KEY", options={"api_version": "v1"}).full_clean()
    Provider(name="v", kind="vertex_ai", base_url="", api_key="{}", options={"project": "my-project", "location": "global"}).full_clean()
