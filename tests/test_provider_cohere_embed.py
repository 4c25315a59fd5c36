"""Cohere's /v2/embed behind the gateway's /v1/embeddings (input_type, dimensions,
batches of 96, billed units), its model list as discovery, and the options a Cohere
provider is refused for when it is saved."""

from __future__ import annotations

import asyncio

import openai
import pytest
from django.core.exceptions import ValidationError

from providers.adapters import ADAPTERS
from providers.catalog import provider_info
from providers.http import get_session
from tests.cohere_helpers import COHERE_KEY, only_record, upstream_body
from tests.fakes.vectors import embedding

pytestmark = pytest.mark.django_db(transaction=True)
pytest_plugins = ("tests.cohere_fixtures",)

EMBED_MODEL = "embed-v4.0"


@pytest.fixture
def embed_client(fake_cohere, build, openai_client):
    def make(**options):
        provider = build.provider(fake_cohere, name="co-embed", kind="cohere", options=options)
        build.route("embed", build.model(provider, EMBED_MODEL, capabilities=["embeddings"], input_price="0.12"))
        return openai_client(build.key())

    return make


@pytest.mark.proves("cohere", "embeddings")
def test_embeddings_are_cohere_floats_in_order_billed_by_billed_units(fake_cohere, embed_client):
    answer = embed_client().embeddings.create(model="embed", input=["one two", "three"], encoding_format="float")
    assert [item.index for item in answer.data] == [0, 1]
    assert [item.embedding for item in answer.data] == [embedding(EMBED_MODEL, t, 8) for t in ("one two", "three")]
    assert answer.usage.prompt_tokens == 3
    body = upstream_body(fake_cohere, "/v2/embed")
    assert body == {"model": EMBED_MODEL, "texts": ["one two", "three"], "input_type": "search_document",
                    "embedding_types": ["float"]}
    assert fake_cohere.last_request.headers["authorization"] == f"Bearer {COHERE_KEY}"
    record = only_record()
    assert (record.status, record.prompt_tokens) == ("success", 3)


def test_input_type_from_the_provider_options_or_the_request_and_dimensions(fake_cohere, embed_client):
    client = embed_client(input_type="search_query", truncate="END")
    client.embeddings.create(model="embed", input="a question", dimensions=256)
    body = upstream_body(fake_cohere, "/v2/embed")
    assert (body["input_type"], body["truncate"], body["output_dimension"]) == ("search_query", "END", 256)
    client.embeddings.create(model="embed", input="a label", extra_body={"input_type": "classification"})
    assert upstream_body(fake_cohere, "/v2/embed")["input_type"] == "classification"
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="embed", input="x", extra_body={"input_type": "poetry"})
    assert refused.value.body["param"] == "input_type"


def test_token_ids_are_refused_before_anything_is_sent(fake_cohere, embed_client):
    with pytest.raises(openai.BadRequestError) as refused:
        embed_client().embeddings.create(model="embed", input=[[1, 2, 3]])
    assert refused.value.body["param"] == "input[0]" and fake_cohere.request_count == 0


def test_more_than_96_inputs_go_in_batches(fake_cohere, embed_client):
    texts = [f"text number {i}" for i in range(150)]
    answer = embed_client().embeddings.create(model="embed", input=texts)
    assert len(answer.data) == 150
    assert answer.data[120].embedding == embedding(EMBED_MODEL, texts[120], 8)
    assert [len(r.body["texts"]) for r in fake_cohere.requests] == [96, 54]
    assert answer.usage.prompt_tokens == 3 * 150


# --- discovery ------------------------------------------------------------------------------------
async def _discover(provider):
    try:
        return await ADAPTERS["cohere"].list_models(provider_info(provider), 5)
    finally:
        await get_session().close()


def test_the_model_list_is_read_page_by_page_with_capabilities(fake_cohere, build):
    fake_cohere.page_size_cap = 2  # the adapter asks for 1000 a page: three pages here
    try:
        found = asyncio.run(_discover(build.provider(fake_cohere, name="co", kind="cohere")))
    finally:
        fake_cohere.page_size_cap = 1000
    by_name = {m.upstream_id: m for m in found}
    assert "rerank-v3.5" not in by_name  # neither chat nor embed: nothing the gateway can route to
    assert by_name["command-a-03-2025"].capabilities == {"chat", "streaming", "tools", "json_mode"}
    assert by_name["command-a-vision-07-2025"].capabilities == {"chat", "streaming", "json_mode", "vision"}
    assert by_name["embed-v4.0"].capabilities == {"embeddings"}
    assert (by_name["command-a-03-2025"].context_window, by_name["embed-english-v3.0"].context_window) == (256000, 512)
    pages = [r for r in fake_cohere.requests if r.path == "/v1/models"]
    assert [r.query.get("page_token") for r in pages] == [None, "2", "4"]
    assert all(r.headers["authorization"] == f"Bearer {COHERE_KEY}" for r in pages)


def test_a_refused_model_list_is_a_classified_error(fake_cohere, build):
    from providers.types import ErrorKind, ProviderError

    provider = build.provider(fake_cohere, name="co", kind="cohere", api_key="co-wrong-key")
    with pytest.raises(ProviderError) as failed:
        asyncio.run(_discover(provider))
    assert failed.value.kind is ErrorKind.AUTH and "invalid api token" in failed.value.message


# --- configuration ----------------------------------------------------------------------------------
@pytest.mark.parametrize("options, error", [
    ({"input_type": "poetry"}, '"input_type" must be one of'),
    ({"truncate": "MIDDLE"}, '"truncate" must be one of'),
])
def test_bad_options_are_refused_when_the_provider_is_saved(build, options, error):
    from providers.models import Provider

    provider = Provider(name="co", kind="cohere", api_key="KEY", options=options)
    with pytest.raises(ValidationError) as refused:
        provider.full_clean()
    assert error in str(refused.value.message_dict["options"])
    Provider(name="co-ok", kind="cohere", api_key="KEY", options={"input_type": "clustering", "truncate": "NONE"}).full_clean()
    assert Provider(name="co-public", kind="cohere", api_key="KEY").effective_base_url == "https://api.cohere.com"
