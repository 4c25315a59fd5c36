"""The Replicate adapter's pieces on their own: the prompt template, the input table
and options, how a failed prediction's text is classified, the provider options
check, discovery from a collection (against the fake)."""

from __future__ import annotations

import asyncio

import pytest

from providers.adapters.base import RequestNotTranslatable
from providers.adapters.replicate import ReplicateAdapter, failure_kind, output_text
from providers.adapters.replicate_input import prediction_input, render_prompt
from providers.catalog import ModelInfo, ProviderInfo
from providers.http import close_session
from providers.kinds import KINDS
from providers.types import ChatRequest, ErrorKind, Price, ProviderError
from tests.fakes.replicate import FakeReplicate

SPEC = KINDS["replicate"]


def _provider(base_url: str = "https://api.replicate.com", options: dict | None = None, key: str = "r8_x") -> ProviderInfo:
    return ProviderInfo(id=1, name="rep", kind="replicate", spec=SPEC, base_url=base_url, api_key=key,
                        api_key_ref=None, timeout_s=5.0, options=options or {})


def _model(upstream_id: str = "meta/llama", options: dict | None = None) -> ModelInfo:
    from decimal import Decimal

    return ModelInfo(id=1, name="m", upstream_id=upstream_id, provider=_provider(options=options),
                     price=Price(Decimal(0), Decimal(0)), context_window=None)


def _req(messages: list[dict], **params) -> ChatRequest:
    max_tokens = params.pop("max_tokens", None)
    return ChatRequest(model="r", messages=messages, max_tokens=max_tokens, params=params)


# --- the prompt --------------------------------------------------------------------------------
def test_one_user_message_is_sent_as_it_is():
    assert render_prompt([{"role": "user", "content": "Hi"}], system_input=True) == ("Hi", "")


def test_system_and_developer_messages_become_the_system_prompt():
    messages = [{"role": "system", "content": "A."}, {"role": "developer", "content": "B."},
                {"role": "user", "content": "Hi"}]
    assert render_prompt(messages, system_input=True) == ("Hi", "A.\n\nB.")


def test_a_conversation_ending_with_the_assistant_is_left_for_it_to_continue():
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hel"}]
    assert render_prompt(messages, system_input=True) == ("User: Hi\n\nAssistant: Hel", "")


def test_without_a_system_input_the_system_text_opens_the_prompt():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert render_prompt(messages, system_input=False) == ("System: Be brief.\n\nUser: Hi\n\nAssistant:", "")


@pytest.mark.parametrize("message", [
    {"role": "tool", "tool_call_id": "c1", "content": "42"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                                           "function": {"name": "f", "arguments": "{}"}}]},
    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]},
])
def test_what_a_prompt_cannot_carry_is_not_translatable(message):
    with pytest.raises(RequestNotTranslatable) as caught:
        prediction_input(_model(), _req([{"role": "user", "content": "Hi"}, message]))
    assert caught.value.param.startswith("messages[1]")


@pytest.mark.parametrize("param", [{"tools": [{"type": "function", "function": {"name": "f"}}]},
                                   {"response_format": {"type": "json_object"}}])
def test_tools_and_response_formats_are_not_translatable(param):
    with pytest.raises(RequestNotTranslatable) as caught:
        prediction_input(_model(), _req([{"role": "user", "content": "Hi"}], **param))
    assert caught.value.param == next(iter(param))


# --- the inputs --------------------------------------------------------------------------------
def test_the_sampling_table_and_stop_as_one_comma_joined_string():
    req = _req([{"role": "user", "content": "Hi"}], max_tokens=9, temperature=0, top_p=1, top_k=40, seed=7,
               stop="END", presence_penalty=0.5, frequency_penalty=0.1, logit_bias={"1": 2}, user="u1")
    assert prediction_input(_model(), req) == {
        "prompt": "Hi", "max_tokens": 9, "temperature": 0, "top_p": 1, "top_k": 40, "seed": 7, "stop_sequences": "END",
        "presence_penalty": 0.5, "frequency_penalty": 0.1}  # logit_bias and user have no input: left out


def test_a_models_own_options_are_laid_over_the_providers():
    options = {"input_map": {"max_tokens": "max_new_tokens", "top_k": None}, "input": {"min_tokens": 1},
               "models": {"meta/llama": {"input_map": {"max_tokens": "max_length"}, "input": {"min_tokens": 2}}}}
    req = _req([{"role": "user", "content": "Hi"}], max_tokens=9, top_k=40)
    assert prediction_input(_model(options=options), req) == {"prompt": "Hi", "max_length": 9, "min_tokens": 2}
    assert prediction_input(_model("other/model", options=options), req) == {
        "prompt": "Hi", "max_new_tokens": 9, "min_tokens": 1}


def test_an_upstream_id_without_owner_is_the_targets_misconfiguration():
    with pytest.raises(ProviderError) as caught:
        ReplicateAdapter().build_request(_model("llama"), _req([{"role": "user", "content": "Hi"}]), False)
    assert caught.value.kind == ErrorKind.NOT_FOUND


# --- answers and failures ------------------------------------------------------------------------
@pytest.mark.parametrize(("error", "kind"), [
    ("CUDA out of memory. Tried to allocate 2.00 GiB", ErrorKind.UNAVAILABLE),
    ("RuntimeError: CUDA error: device-side assert triggered", ErrorKind.UNAVAILABLE),
    ("Prediction interrupted; please retry (code: PA)", ErrorKind.UNAVAILABLE),
    ("ValueError: The prompt is too long for this model (4200 > 4096 tokens)", ErrorKind.CONTEXT_LENGTH),
    ("NSFW content detected. Try running it again, or try a different prompt.", ErrorKind.CONTENT_POLICY),
    ("ValueError: top_k must be greater than 0", ErrorKind.BAD_REQUEST),
    ("Input validation failed: temperature: Must be less than or equal to 5", ErrorKind.BAD_REQUEST),
    ("Prediction timed out", ErrorKind.TIMEOUT),
    ("Something went wrong", ErrorKind.UNAVAILABLE),
])
def test_failed_prediction_texts_are_classified(error, kind):
    assert failure_kind(error) == kind


def test_a_failed_prediction_is_a_scrubbed_provider_error():
    model = _model()
    data = {"id": "p1", "status": "failed", "error": "token r8_abcdefghijklmnopqrstuvwxyz0123456789AB refused"}
    with pytest.raises(ProviderError) as caught:
        ReplicateAdapter().parse_response(model, data)
    assert "r8_abcdefghijklmnopqrstuvwxyz" not in caught.value.message and "refused" in caught.value.message


@pytest.mark.parametrize(("output", "text"), [(["Hel", "lo"], "Hello"), ("Hello", "Hello"), (None, "")])
def test_output_is_a_list_of_pieces_or_a_string(output, text):
    assert output_text(output, "rep") == text


@pytest.mark.parametrize("output", [[{"url": "x"}], {"text": "x"}, 3])
def test_output_that_is_not_text_is_a_bad_response(output):
    with pytest.raises(ProviderError) as caught:
        output_text(output, "rep")
    assert caught.value.kind == ErrorKind.BAD_RESPONSE


def test_http_errors_by_replicate_status():
    adapter = ReplicateAdapter()
    payment = adapter.http_error("rep", 402, {}, b'{"title":"Insufficient credit","detail":"Buy credit.","status":402}')
    version = adapter.http_error("rep", 422, {}, b'{"title":"Invalid version or not permitted","detail":"x","status":422}')
    throttled = adapter.http_error("rep", 429, {"retry-after": "3"}, b'{"title":"Request was throttled.","status":429}')
    assert (payment.kind, version.kind, throttled.kind) == (ErrorKind.AUTH, ErrorKind.NOT_FOUND, ErrorKind.RATE_LIMITED)
    assert throttled.retry_after == 3 and "Insufficient credit: Buy credit." in payment.message


# --- configuration and discovery ---------------------------------------------------------------------
@pytest.mark.parametrize(("options", "complaint"), [
    ({"wait": 61}, "'wait'"), ({"wait": "5"}, "'wait'"), ({"input_map": {"prompt": 3}}, "'input_map'"),
    ({"input": []}, "'input'"), ({"models": {"a/b": {"input": 1}}}, "'models.a/b.input'"),
    ({"models": []}, "'models'"), ({"discovery_collection": 5}, "'discovery_collection'"),
])
def test_bad_options_are_refused_when_the_provider_is_saved(options, complaint):
    errors = ReplicateAdapter().check_config(SPEC, "", options)
    assert complaint in errors["options"]


def test_good_options_pass():
    options = {"wait": 0, "input_map": {"max_tokens": "max_new_tokens", "system_prompt": None},
               "input": {"prompt_template": "{prompt}"}, "models": {"a/b": {"input_map": {}}}}
    assert ReplicateAdapter().check_config(SPEC, "", options) == {}


def test_discovery_lists_the_language_models_collection():
    with FakeReplicate(api_key="r8_x", known_models=["meta/llama", "mistralai/mixtral"]) as fake:
        async def discover():
            try:
                return await ReplicateAdapter().list_models(_provider(fake.url), 5)
            finally:
                await close_session()

        found = asyncio.run(discover())
        assert fake.last_request.path == "/v1/collections/language-models"
        assert fake.last_request.headers["authorization"] == "Bearer r8_x"
    assert [(m.upstream_id, m.capabilities) for m in found] == [
        ("meta/llama", frozenset({"chat", "streaming"})), ("mistralai/mixtral", frozenset({"chat", "streaming"}))]
