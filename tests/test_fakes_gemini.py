"""Prove the fake Gemini API faithful, with Google's own SDK (google-genai) as its client.

Plain sync tests: no Django, no database. The SDK sends what Gemini takes and reads
what Gemini answers, so a fake the SDK works against speaks the real wire format.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from google import genai
from google.genai import errors, types

from tests.fakes.gemini import BLOCK_PROMPT, THINKING_TEXT, UNSAFE_ANSWER, FakeGemini, thought_signature

pytestmark = pytest.mark.timeout(60)

KEY = "gemini-test-key"
MODEL = "gemini-2.5-flash"
WEATHER = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", description="Current weather for a city",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})])


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=KEY) as server:
        yield server
    assert server.errors == []  # no exception inside the fake itself


def _client(fake: FakeGemini, key: str = KEY) -> genai.Client:
    # api_version v1beta: the path the gateway uses (the fake serves /v1 too, the SDK's default)
    return genai.Client(api_key=key, http_options=types.HttpOptions(
        base_url=fake.base_url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)))


@pytest.fixture
def client(fake: FakeGemini) -> genai.Client:
    return _client(fake)


def test_generate_content(fake: FakeGemini, client: genai.Client) -> None:
    response = client.models.generate_content(
        model=MODEL, contents="Say hello to me",
        config=types.GenerateContentConfig(system_instruction="Be brief.", temperature=0.5, max_output_tokens=100))
    assert response.text == "Hello from fake-gemini."
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == MODEL
    # user 4 words + 3, system 2 words + 3 (counted like a message)
    usage = response.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (12, 3, 15)
    request = fake.last_request
    assert request.path == f"/v1beta/models/{MODEL}:generateContent"
    assert request.headers["x-goog-api-key"] == KEY
    assert request.body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert request.body["generationConfig"] == {"temperature": 0.5, "maxOutputTokens": 100}


def test_stream_matches_generate_content(fake: FakeGemini, client: genai.Client) -> None:
    fake.reply_text = "One two three four five."
    whole = client.models.generate_content(model=MODEL, contents="Say hello to me")
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Say hello to me"))
    assert "".join(c.text or "" for c in chunks) == whole.text == "One two three four five."
    assert [c.candidates[0].finish_reason for c in chunks][-1] == types.FinishReason.STOP
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].usage_metadata.candidates_token_count == whole.usage_metadata.candidates_token_count == 5
    assert fake.last_request.query == {"alt": "sse"}


def test_function_call_and_its_signature_round_trip(fake: FakeGemini, client: genai.Client) -> None:
    config = types.GenerateContentConfig(tools=[WEATHER], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    question = types.Content(role="user", parts=[types.Part(text="What is the weather in Paris and London?")])
    response = client.models.generate_content(model="gemini-3-pro-preview", contents=[question], config=config)
    calls = response.function_calls
    assert [(c.name, c.args) for c in calls] == [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "London"})]
    parts = response.candidates[0].content.parts
    # the signature is bytes in the SDK, base64 on the wire
    assert base64.b64encode(parts[0].thought_signature).decode() == thought_signature("get_weather", {"city": "Paris"})

    answers = types.Content(role="user", parts=[types.Part.from_function_response(name="get_weather", response={"temp": 21}),
                                                types.Part.from_function_response(name="get_weather", response={"temp": 17})])
    final = client.models.generate_content(model="gemini-3-pro-preview",
                                           contents=[question, response.candidates[0].content, answers], config=config)
    assert final.text == "Hello from fake-gemini."
    sent = fake.last_request.body["contents"][1]["parts"][0]["thoughtSignature"]
    # the SDK sends the bytes back URL-safe base64 encoded (Google takes either alphabet)
    assert base64.urlsafe_b64decode(sent) == base64.b64decode(thought_signature("get_weather", {"city": "Paris"}))


def test_gemini_3_refuses_a_call_without_its_signature(fake: FakeGemini, client: genai.Client) -> None:
    history = [types.Content(role="user", parts=[types.Part(text="Weather in Paris?")]),
               types.Content(role="model", parts=[types.Part.from_function_call(name="get_weather", args={"city": "Paris"})]),
               types.Content(role="user", parts=[types.Part.from_function_response(name="get_weather", response={"t": 1})])]
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="gemini-3-pro-preview", contents=history, config=types.GenerateContentConfig(tools=[WEATHER]))
    assert caught.value.code == 400 and "thought_signature" in caught.value.message


def test_thoughts_and_their_tokens(fake: FakeGemini, client: genai.Client) -> None:
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024))
    response = client.models.generate_content(model=MODEL, contents="Say hello to me", config=config)
    parts = response.candidates[0].content.parts
    assert parts[0].thought is True and parts[0].text == THINKING_TEXT
    assert response.text == "Hello from fake-gemini."
    assert response.usage_metadata.thoughts_token_count == len(THINKING_TEXT.split())


def test_json_mode_and_candidates(fake: FakeGemini, client: genai.Client) -> None:
    config = types.GenerateContentConfig(response_mime_type="application/json", candidate_count=2,
                                         response_json_schema={"type": "object"})
    response = client.models.generate_content(model=MODEL, contents="Say hello to me", config=config)
    assert [c.index for c in response.candidates] == [0, 1]
    assert response.parsed == {"reply": "Hello from fake-gemini."}


def test_safety_blocks(fake: FakeGemini, client: genai.Client) -> None:
    blocked = client.models.generate_content(model=MODEL, contents=f"Tell me {BLOCK_PROMPT}")
    assert blocked.candidates is None
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    stopped = client.models.generate_content(model=MODEL, contents=f"Tell me {UNSAFE_ANSWER}")
    assert stopped.candidates[0].finish_reason == types.FinishReason.SAFETY


def test_embed_content(fake: FakeGemini, client: genai.Client) -> None:
    result = client.models.embed_content(model="gemini-embedding-001", contents=["first text", "second text"],
                                         config=types.EmbedContentConfig(output_dimensionality=16))
    assert [len(e.values) for e in result.embeddings] == [16, 16]
    assert result.embeddings[0].values != result.embeddings[1].values
    request = fake.last_request
    assert request.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert [r["model"] for r in request.body["requests"]] == ["models/gemini-embedding-001"] * 2


def test_models_list_pages(fake: FakeGemini, client: genai.Client) -> None:
    fake.known_models = {f"gemini-test-{i}" for i in range(5)} | {"gemini-embedding-001"}
    models = list(client.models.list(config=types.ListModelsConfig(page_size=2)))
    assert sorted(m.name for m in models) == sorted(f"models/{n}" for n in fake.known_models)
    flash = next(m for m in models if m.name == "models/gemini-test-0")
    assert "generateContent" in flash.supported_actions and flash.input_token_limit == 1048576
    assert len([r for r in fake.requests if r.path == "/v1beta/models"]) == 3  # 6 models, 2 a page
    assert client.models.get(model="gemini-test-1").display_name == "Gemini Test 1"


def test_errors_are_googles(fake: FakeGemini, client: genai.Client) -> None:
    wrong = _client(fake, key="wrong")
    with pytest.raises(errors.ClientError) as bad_key:
        wrong.models.generate_content(model=MODEL, contents="Hi")
    assert (bad_key.value.code, bad_key.value.status) == (400, "INVALID_ARGUMENT")
    assert bad_key.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"

    fake.fail(429)
    with pytest.raises(errors.ClientError) as limited:
        client.models.generate_content(model=MODEL, contents="Hi")
    assert (limited.value.code, limited.value.status) == (429, "RESOURCE_EXHAUSTED")

    fake.fail(503)
    with pytest.raises(errors.ServerError) as down:
        client.models.generate_content(model=MODEL, contents="Hi")
    assert (down.value.code, down.value.status) == (503, "UNAVAILABLE")

    fake.known_models = {MODEL}
    with pytest.raises(errors.ClientError) as missing:
        client.models.generate_content(model="gemini-nope", contents="Hi")
    assert missing.value.code == 404


def test_cut_stream_ends_without_a_finish_reason(fake: FakeGemini, client: genai.Client) -> None:
    fake.reply_text = "One two three four five."
    fake.cut_stream(after_chunks=2)
    seen = []
    with pytest.raises(Exception):  # noqa: B017 - the SDK surfaces the broken connection as httpx's error
        for chunk in client.models.generate_content_stream(model=MODEL, contents="Say hello to me"):
            seen.append(chunk)
    assert all(c.candidates[0].finish_reason is None for c in seen)
