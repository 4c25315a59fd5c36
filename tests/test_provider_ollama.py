"""A route to a local Ollama server (native /api/chat, NDJSON streams), through the OpenAI SDK.

Checks the translation of OpenAI parameters to Ollama's `options`/`format`, that
streamed and non-streamed answers agree (text and usage), that local inference is
billed at zero, and how failures (unknown model, a stream cut mid-way) surface.
"""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from billing.models import UsageRecord
from tests.conftest import wait_for
from tests.fakes.text import prompt_token_count
from tests.sdk_helpers import only_record as _only_record, streamed as _streamed

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to the gateway"}]


@pytest.fixture
def ollama_route(fake_ollama, build):
    """Route `chat-local` -> llama3.2 on Ollama; the model row has (ignored) prices."""
    provider = build.provider(fake_ollama, name="ollama-local", kind="ollama")
    model = build.model(provider, "llama3.2", input_price="5", output_price="10")
    build.route("chat-local", model)
    return model


@pytest.fixture
def client(ollama_route, build, openai_client):
    return openai_client(build.key())


@pytest.fixture
def only_llama_known(fake_ollama):
    """Make the fake Ollama know llama3.2 only (restored afterwards: the fake is session-wide)."""
    saved = fake_ollama.known_models
    fake_ollama.known_models = {"llama3.2:latest"}
    yield
    fake_ollama.known_models = saved


def _upstream_body(fake) -> dict:
    request = fake.last_request
    assert request is not None and request.path == "/api/chat"
    return request.body


# --- answers -----------------------------------------------------------------------------------
@pytest.mark.proves("ollama", "chat")
def test_non_stream_answer_and_usage(fake_ollama, client):
    fake_ollama.reply_text = "Hello there, local user."
    raw = client.chat.completions.with_raw_response.create(model="chat-local", messages=MESSAGES)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello there, local user."
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    expected_prompt = prompt_token_count(MESSAGES)  # Ollama's prompt_eval_count
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (expected_prompt, 4)
    assert raw.headers["x-gateway-provider"] == "ollama-local"
    body = _upstream_body(fake_ollama)
    assert body["model"] == "llama3.2" and body["stream"] is False
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "Say hello to the gateway"}]
    assert "options" not in body  # nothing to set: Ollama's own defaults apply


@pytest.mark.proves("ollama", "stream", "stream_usage")
def test_ndjson_stream_yields_same_text_and_usage_as_non_stream(fake_ollama, client):
    fake_ollama.reply_text = "One two three four five six seven."
    plain = client.chat.completions.create(model="chat-local", messages=MESSAGES)
    chunks, text = _streamed(client.chat.completions.create(
        model="chat-local", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert _upstream_body(fake_ollama)["stream"] is True
    assert text == plain.choices[0].message.content == "One two three four five six seven."
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 7  # one per NDJSON line
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (
        plain.usage.prompt_tokens, plain.usage.completion_tokens) == (prompt_token_count(MESSAGES), 7)
    assert len({c.id for c in chunks}) == 1
    assert wait_for(lambda: UsageRecord.objects.count() == 2)
    streamed, non_streamed = UsageRecord.objects.get(stream=True), UsageRecord.objects.get(stream=False)
    assert streamed.status == "success" and not streamed.usage_estimated and streamed.ttft_ms is not None
    assert (streamed.prompt_tokens, streamed.completion_tokens) == (non_streamed.prompt_tokens,
                                                                    non_streamed.completion_tokens)


# --- parameter translation -------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_max_tokens_becomes_num_predict_and_finish_reason_length(fake_ollama, client, stream):
    fake_ollama.reply_text = "a b c d e f g h"
    if stream:
        chunks, text = _streamed(client.chat.completions.create(
            model="chat-local", messages=MESSAGES, max_tokens=3, stream=True, stream_options={"include_usage": True}))
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        usage = chunks[-1].usage
    else:
        completion = client.chat.completions.create(model="chat-local", messages=MESSAGES, max_tokens=3)
        text, finish, usage = completion.choices[0].message.content, [completion.choices[0].finish_reason], completion.usage
    assert _upstream_body(fake_ollama)["options"] == {"num_predict": 3}
    assert text == "a b c"
    assert finish == ["length"]
    assert usage.completion_tokens == 3


def test_max_completion_tokens_also_becomes_num_predict(fake_ollama, client):
    client.chat.completions.create(model="chat-local", messages=MESSAGES, max_completion_tokens=9)
    body = _upstream_body(fake_ollama)
    assert body["options"]["num_predict"] == 9
    assert "max_completion_tokens" not in body and "max_tokens" not in body


def test_sampling_parameters_go_into_options(fake_ollama, client):
    client.chat.completions.create(
        model="chat-local", messages=MESSAGES, temperature=0.2, top_p=0.8, seed=42, stop=["END"],
        presence_penalty=0.5, frequency_penalty=0.25,
    )
    body = _upstream_body(fake_ollama)
    assert body["options"] == {"temperature": 0.2, "top_p": 0.8, "seed": 42, "stop": ["END"],
                               "presence_penalty": 0.5, "frequency_penalty": 0.25}
    # Ollama ignores unknown top-level fields: they must not be sent there instead
    assert not {"temperature", "top_p", "seed", "stop"} & set(body)


def test_temperature_zero_is_not_dropped(fake_ollama, client):
    client.chat.completions.create(model="chat-local", messages=MESSAGES, temperature=0)
    assert _upstream_body(fake_ollama)["options"] == {"temperature": 0}


def test_stop_sequence_cuts_the_answer(fake_ollama, client):
    fake_ollama.reply_text = "alpha beta END gamma"
    completion = client.chat.completions.create(model="chat-local", messages=MESSAGES, stop=["END"])
    assert completion.choices[0].message.content == "alpha beta "
    assert completion.choices[0].finish_reason == "stop"


def test_stop_string_is_sent_to_ollama_as_a_list(fake_ollama, client):
    client.chat.completions.create(model="chat-local", messages=MESSAGES, stop="END")
    assert _upstream_body(fake_ollama)["options"]["stop"] == ["END"]


@pytest.mark.proves("ollama", "json_mode")
def test_response_format_json_object_becomes_format_json(fake_ollama, client):
    client.chat.completions.create(model="chat-local", messages=MESSAGES, response_format={"type": "json_object"})
    assert _upstream_body(fake_ollama)["format"] == "json"
    client.chat.completions.create(model="chat-local", messages=MESSAGES, response_format={"type": "text"})
    assert "format" not in _upstream_body(fake_ollama)


@pytest.mark.proves("ollama", "json_mode")
def test_response_format_json_schema_sends_the_schema(fake_ollama, client):
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    client.chat.completions.create(model="chat-local", messages=MESSAGES, response_format={
        "type": "json_schema", "json_schema": {"name": "person", "schema": schema}})
    assert _upstream_body(fake_ollama)["format"] == schema


@pytest.mark.proves("ollama", "vision")
def test_image_parts_become_ollama_images(fake_ollama, client):
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "Describe this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]}]
    client.chat.completions.create(model="chat-local", messages=messages)
    assert _upstream_body(fake_ollama)["messages"] == [
        {"role": "user", "content": "Describe this", "images": ["iVBORw0KGgo="]}]


# --- cost ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_local_inference_costs_nothing_even_if_the_model_has_prices(fake_ollama, client, stream):
    fake_ollama.reply("Free answer here.", prompt_tokens=1000, completion_tokens=500)
    if stream:
        list(client.chat.completions.create(model="chat-local", messages=MESSAGES, stream=True))
    else:
        raw = client.chat.completions.with_raw_response.create(model="chat-local", messages=MESSAGES)
        assert Decimal(raw.headers["x-gateway-cost-usd"]) == 0
    record = _only_record()
    assert record.status == "success"
    assert (record.prompt_tokens, record.completion_tokens) == (1000, 500)  # tokens are still counted
    assert record.cost_usd == 0
    assert record.input_price_per_mtok == 0 and record.output_price_per_mtok == 0


# --- failures ---------------------------------------------------------------------------------------------
def test_unknown_model_gives_a_clear_error(fake_ollama, build, openai_client, only_llama_known):
    build.route("chat-local", build.model(build.provider(fake_ollama, name="ollama-local", kind="ollama"), "mistral-nemo"))
    with pytest.raises(openai.APIStatusError) as exc:
        openai_client(build.key()).chat.completions.create(model="chat-local", messages=MESSAGES)
    message = exc.value.response.json()["error"]["message"]
    assert 'model "mistral-nemo" not found' in message and "ollama-local" in message
    assert exc.value.status_code >= 500  # the gateway's configuration is at fault, not the client's request
    assert fake_ollama.request_count == 1  # no pointless retry of a missing model
    record = _only_record()
    assert record.status == "error" and record.http_status == exc.value.status_code


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_unknown_model_falls_back_to_the_next_target(fake_ollama, fake_openai, build, openai_client, only_llama_known,
                                                     stream):
    fake_openai.reply_text = "from openai backup"
    missing = build.model(build.provider(fake_ollama, name="ollama-local", kind="ollama"), "mistral-nemo")
    backup = build.model(build.provider(fake_openai, name="backup"))
    build.route("chat-local", missing, backup)
    client = openai_client(build.key())
    if stream:
        _, text = _streamed(client.chat.completions.create(model="chat-local", messages=MESSAGES, stream=True))
    else:
        text = client.chat.completions.create(model="chat-local", messages=MESSAGES).choices[0].message.content
    assert text == "from openai backup"
    record = _only_record()
    assert record.status == "success" and record.provider_name == "backup"
    assert [(a["outcome"], a["status"]) for a in record.attempt_log] == [("not_found", 404), ("ok", None)]


def test_ollama_down_falls_back(fake_openai, build, openai_client):
    from tests.conftest import free_port

    fake_openai.reply_text = "from openai backup"
    dead = build.model(build.provider(name="ollama-local", kind="ollama", base_url=f"http://127.0.0.1:{free_port()}"),
                       "llama3.2")
    build.route("chat-local", dead, build.model(build.provider(fake_openai, name="backup")))
    answer = openai_client(build.key()).chat.completions.create(model="chat-local", messages=MESSAGES)
    assert answer.choices[0].message.content == "from openai backup"
    assert [a["outcome"] for a in _only_record().attempt_log] == ["unavailable", "ok"]


def test_ndjson_stream_cut_mid_way_ends_with_an_error_and_one_error_record(fake_ollama, fake_openai, build,
                                                                          openai_client):
    fake_ollama.reply_text = "alpha beta gamma delta epsilon zeta"
    fake_ollama.cut_stream(after_chunks=2)
    ollama = build.model(build.provider(fake_ollama, name="ollama-local", kind="ollama"), "llama3.2",
                         input_price="5", output_price="10")
    build.route("chat-local", ollama, build.model(build.provider(fake_openai, name="backup")))
    stream = openai_client(build.key()).chat.completions.create(
        model="chat-local", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    received = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in stream:
            received.append(chunk)
    assert "interrupted" in str(exc.value.message)
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "alpha beta"
    assert not any(c.choices and c.choices[0].finish_reason for c in received)  # it did not "finish"
    assert fake_openai.request_count == 0  # no fallback once output was sent
    record = _only_record()
    assert record.status == "error" and record.error_kind == "bad_response" and record.stream
    assert record.completion_tokens > 0 and record.usage_estimated
    assert record.cost_usd == 0


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_ollama_busy_503_falls_back(fake_ollama, fake_openai, build, openai_client, stream):
    fake_openai.reply_text = "from openai backup"
    fake_ollama.fail(503)
    local = build.model(build.provider(fake_ollama, name="ollama-local", kind="ollama"), "llama3.2")
    build.route("chat-local", local, build.model(build.provider(fake_openai, name="backup")))
    client = openai_client(build.key())
    if stream:
        _, text = _streamed(client.chat.completions.create(model="chat-local", messages=MESSAGES, stream=True))
    else:
        text = client.chat.completions.create(model="chat-local", messages=MESSAGES).choices[0].message.content
    assert text == "from openai backup"
    assert [(a["outcome"], a["status"]) for a in _only_record().attempt_log] == [("unavailable", 503), ("ok", None)]


def test_tool_call_follow_up_is_sent_with_object_arguments(fake_ollama, client):
    messages = [{"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_0", "type": "function",
                     "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
                {"role": "tool", "tool_call_id": "call_0", "content": "18C"}]
    fake_ollama.reply_text = "It is 18C."
    assert client.chat.completions.create(model="chat-local", messages=messages).choices[0].message.content == "It is 18C."
    sent = _upstream_body(fake_ollama)["messages"]
    assert sent[1]["tool_calls"] == [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    assert sent[2] == {"role": "tool", "content": "18C"}


def test_unparsable_tool_call_arguments_in_history_are_not_blamed_on_the_provider(fake_ollama, client):
    messages = [{"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": '}}]},
                {"role": "tool", "tool_call_id": "call_0", "content": "18C"}]
    client.chat.completions.create(model="chat-local", messages=messages)
    assert fake_ollama.request_count == 1  # forwarded with {} arguments and answered
    assert _upstream_body(fake_ollama)["messages"][1]["tool_calls"][0]["function"]["arguments"] == {}
