"""A route to a Hugging Face TGI endpoint (kind huggingface), used through the official
OpenAI SDK: TGI's Messages API is OpenAI's dialect with stricter types (rows in
providers/adapters/huggingface.py), its own error bodies and error events in streams,
and a model that may still be loading."""

from __future__ import annotations

import json

import openai
import pytest

from providers.adapters.huggingface import ROUTER, endpoint_base
from tests.openai_dialect_helpers import (  # noqa: F401 - the *_fixture imports register fixtures
    HF_TOKEN, IMAGE, WEATHER_TOOL, _compatible_server_fixture, _tgi_server_fixture, fake_compatible_fixture,
    fake_tgi_fixture, only_record, streamed, streamed_calls,
)

pytestmark = pytest.mark.django_db(transaction=True)

HI = [{"role": "user", "content": "Say hello"}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris and London?"}]


@pytest.fixture
def client(fake_tgi, build, openai_client):
    provider = build.provider(fake_tgi, name="hf", kind="huggingface")
    build.route("chat-hf", build.model(provider, "llama", upstream_id="tgi", input_price="0.5", output_price="0.5"))
    return openai_client(build.key())


@pytest.fixture
def tgi_then_backup(fake_tgi, fake_compatible, build, openai_client):
    hf = build.provider(fake_tgi, name="hf", kind="huggingface")
    backup = build.provider(fake_compatible, name="backup")
    fake_compatible.reply_text = "from backup"
    build.route("chat-hf", build.model(hf, "llama", upstream_id="tgi"), build.model(backup, "gpt-4o-mini"),
                max_attempts=2)
    return openai_client(build.key())


@pytest.mark.proves("huggingface", "chat")
def test_chat_goes_to_v1_chat_completions_with_a_bearer_token(fake_tgi, client):
    completion = client.chat.completions.create(model="chat-hf", messages=HI)
    assert completion.choices[0].message.content == "Hello from fake-tgi."
    assert completion.model == fake_tgi.model_id  # TGI answers "tgi" with the model it serves
    request = fake_tgi.last_request
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {HF_TOKEN}"
    assert request.body == {"model": "tgi", "messages": HI}
    assert only_record().completion_tokens == 3


@pytest.mark.proves("huggingface", "stream", "stream_usage")
def test_stream_asks_for_usage_and_relays_it(fake_tgi, client):
    chunks, text = streamed(client.chat.completions.create(model="chat-hf", messages=HI, stream=True,
                                                           stream_options={"include_usage": True}))
    assert text == "Hello from fake-tgi."
    assert fake_tgi.last_request.body["stream_options"] == {"include_usage": True}
    assert chunks[-1].usage.completion_tokens == 3
    assert only_record().completion_tokens == 3


@pytest.mark.proves("huggingface", "tools", "parallel_tools")
def test_tool_calls_come_back(client):
    message = client.chat.completions.create(model="chat-hf", messages=WEATHER, tools=[WEATHER_TOOL]).choices[0].message
    assert [json.loads(c.function.arguments) for c in message.tool_calls] == [{"city": "Paris"}, {"city": "London"}]


def test_older_tgi_tool_arguments_as_an_object_become_a_string(fake_tgi, client):
    def as_object(answer):
        for call in answer["choices"][0]["message"]["tool_calls"]:
            call["function"]["arguments"] = json.loads(call["function"]["arguments"])
            call["function"]["description"] = None
        return answer
    fake_tgi.mangle(as_object)
    message = client.chat.completions.create(model="chat-hf", messages=WEATHER, tools=[WEATHER_TOOL]).choices[0].message
    assert [json.loads(c.function.arguments) for c in message.tool_calls] == [{"city": "Paris"}, {"city": "London"}]


@pytest.mark.proves("huggingface", "tool_deltas")
def test_streamed_tool_call_deltas_assemble(client):
    chunks, _ = streamed(client.chat.completions.create(model="chat-hf", messages=WEATHER, tools=[WEATHER_TOOL],
                                                        stream=True))
    assert [json.loads(c["arguments"]) for c in streamed_calls(chunks)] == [{"city": "Paris"}, {"city": "London"}]


@pytest.mark.proves("huggingface", "vision")
def test_an_image_part_reaches_tgi(fake_tgi, client):
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, IMAGE]}]
    client.chat.completions.create(model="chat-hf", messages=messages)
    assert fake_tgi.last_request.body["messages"] == messages


@pytest.mark.proves("huggingface", "json_mode")
def test_response_format_carries_tgis_grammar_value(fake_tgi, client):
    schema = {"name": "greeting", "schema": {"type": "object", "properties": {"text": {"type": "string"}}}}
    client.chat.completions.create(model="chat-hf", messages=HI,
                                   response_format={"type": "json_schema", "json_schema": schema})
    assert fake_tgi.last_request.body["response_format"] == {"type": "json_schema", "json_schema": schema,
                                                             "value": schema}
    client.chat.completions.create(model="chat-hf", messages=HI, response_format={"type": "json_object"})
    assert fake_tgi.last_request.body["response_format"] == {"type": "json_object", "value": {"type": "object"}}


@pytest.mark.proves("huggingface", "embeddings")
def test_embeddings_through_a_tei_endpoint(fake_tgi, build, openai_client):
    provider = build.provider(fake_tgi, name="tei", kind="huggingface")
    build.route("embed-hf", build.model(provider, "bge", upstream_id="BAAI/bge-small-en-v1.5",
                                        capabilities=["embeddings"]))
    fake_tgi.embedding_size = 8
    try:
        result = openai_client(build.key()).embeddings.create(model="embed-hf", input=["one", "two"])
    finally:
        fake_tgi.embedding_size = None
    assert [len(item.embedding) for item in result.data] == [8, 8]
    assert fake_tgi.last_request.path == "/v1/embeddings"


def test_parameters_are_shaped_as_tgi_takes_them(fake_tgi, client):
    client.chat.completions.create(model="chat-hf", messages=HI, stop="END", top_p=1, logit_bias={"50256": -100},
                                   temperature=0, presence_penalty=-2)
    body = fake_tgi.last_request.body
    assert body["stop"] == ["END"]
    assert "top_p" not in body and "logit_bias" not in body  # TGI refuses top_p 1 and OpenAI's logit_bias map
    assert body["temperature"] == 0 and body["presence_penalty"] == -1.9
    client.chat.completions.create(model="chat-hf", messages=HI, top_p=0.9)
    assert fake_tgi.last_request.body["top_p"] == 0.9


def test_base_url_gets_v1_once_and_empty_is_the_router(fake_tgi, build, openai_client):
    assert endpoint_base("") == ROUTER == "https://router.huggingface.co/v1"
    assert endpoint_base("https://x.endpoints.huggingface.cloud") == "https://x.endpoints.huggingface.cloud/v1"
    provider = build.provider(fake_tgi, name="hf-v1", kind="huggingface", base_url=f"{fake_tgi.base_url}/v1")
    build.route("chat-hf", build.model(provider, "llama", upstream_id="tgi"))
    openai_client(build.key()).chat.completions.create(model="chat-hf", messages=HI)
    assert fake_tgi.last_request.path == "/v1/chat/completions"


def test_a_loading_model_is_unavailable_with_its_estimated_time(fake_tgi, tgi_then_backup):
    fake_tgi.loading(estimated_time=45.0)  # longer than the route's Retry-After cap: not retried there
    answer = tgi_then_backup.chat.completions.create(model="chat-hf", messages=HI)
    assert answer.choices[0].message.content == "from backup"
    assert fake_tgi.request_count == 1
    assert [(a["outcome"], a["status"]) for a in only_record().attempt_log] == [("unavailable", 503), ("ok", None)]


@pytest.mark.parametrize("status, message, error_type, outcome", [
    (429, "Model is overloaded", "overloaded", "rate_limited"),
    (424, "Request failed during generation: CUDA out of memory", "generation", "unavailable"),
    (500, "Incomplete generation", "incomplete_generation", "unavailable"),
    (422, "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8192. Given: 8000 `inputs` tokens "
          "and 500 `max_new_tokens`", "validation", "context_length"),
])
def test_tgi_errors_fall_back_with_their_kind(fake_tgi, tgi_then_backup, status, message, error_type, outcome):
    fake_tgi.fail_tgi(status, message, error_type, times=2)
    answer = tgi_then_backup.chat.completions.create(model="chat-hf", messages=HI)
    assert answer.choices[0].message.content == "from backup"
    outcomes = [(a["outcome"], a["status"]) for a in only_record().attempt_log]
    assert outcomes[0] == (outcome, status) and outcomes[-1] == ("ok", None)


def test_a_validation_error_is_the_clients_400(fake_tgi, tgi_then_backup):
    fake_tgi.fail_tgi(422, "Input validation error: `temperature` must be strictly positive", "validation")
    with pytest.raises(openai.BadRequestError) as exc:
        tgi_then_backup.chat.completions.create(model="chat-hf", messages=HI)
    assert "temperature" in exc.value.message
    assert only_record().error_kind == "bad_request"


def test_a_bad_token_is_an_auth_error(fake_tgi, build, openai_client):
    provider = build.provider(fake_tgi, name="hf", kind="huggingface", api_key="hf_wrong_token_0000000000000000")
    build.route("chat-hf", build.model(provider, "llama", upstream_id="tgi"))
    with pytest.raises(openai.APIStatusError):
        openai_client(build.key()).chat.completions.create(model="chat-hf", messages=HI)
    assert only_record().error_kind == "auth"


@pytest.mark.parametrize("message, error_type, kind", [
    ("Request failed during generation: Unexpected <class 'torch.cuda.OutOfMemoryError'>", "generation",
     "unavailable"),
    ("Model is overloaded", None, "rate_limited"),  # TGI 3: {"error": {"message", "http_status_code": 422}}
    ("Input validation error: `inputs` must have less than 4096 tokens. Given: 5000", None, "context_length"),
])
def test_stream_error_events_are_classified(fake_tgi, client, message, error_type, kind):
    fake_tgi.stream_error(message, error_type)
    with pytest.raises(openai.APIError):
        streamed(client.chat.completions.create(model="chat-hf", messages=HI, stream=True))
    record = only_record()
    assert (record.status, record.error_kind) == ("error", kind)
