"""A route to Replicate (predictions API) through the OpenAI SDK, against the fake
Replicate server (tests/fakes/replicate.py, proven with Replicate's SDK in
tests/test_fakes_replicate.py).

Answers: sync mode, polling, streams with usage read after `done`; the prompt inputs
the conversation becomes. Failures: failed predictions, problem+json errors, each
with its fallback; cancel when the client leaves mid-stream or the deadline passes;
one usage record per request.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import openai
import pytest

from tests.conftest import _fresh
from tests.fakes.replicate import FakeReplicate
from tests.sdk_helpers import only_record as _only_record, streamed as _streamed

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "r8_upstream_replicate_secret_0123456789abcdef"
MODEL = "meta/meta-llama-3-8b-instruct"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to the gateway"}]


@pytest.fixture(scope="session")
def _replicate_server() -> Iterator[FakeReplicate]:
    with FakeReplicate(api_key=TOKEN) as fake:
        yield fake


@pytest.fixture
def fake_replicate(_replicate_server: FakeReplicate) -> Iterator[FakeReplicate]:
    _replicate_server.polls = 0
    yield from _fresh(_replicate_server)
    assert _replicate_server.errors == []


def _replicate_model(build, fake, upstream_id: str = MODEL, options: dict | None = None, **kw):
    provider = build.provider(fake, name="replicate", kind="replicate", options=options or {})
    kw.setdefault("capabilities", ["chat", "streaming"])
    return build.model(provider, "llama-3-8b", upstream_id=upstream_id, input_price="0.05", output_price="0.25", **kw)


@pytest.fixture
def client(fake_replicate, build, openai_client):
    build.route("chat-rep", _replicate_model(build, fake_replicate))
    return openai_client(build.key())


@pytest.fixture
def with_backup(fake_replicate, fake_openai, build, openai_client):
    """Route `chat-rep`: Replicate first, the OpenAI fake as the fallback."""
    fake_openai.reply_text = "from openai backup"
    backup = build.model(build.provider(fake_openai, name="backup"))
    build.route("chat-rep", _replicate_model(build, fake_replicate), backup, max_attempts=1)
    return openai_client(build.key())


def _creates(fake) -> list:
    return [r for r in fake.requests if r.method == "POST" and r.path.endswith("predictions")]


# --- answers -----------------------------------------------------------------------------------
@pytest.mark.proves("replicate", "chat")
def test_sync_mode_answer_with_usage_from_metrics(fake_replicate, client):
    fake_replicate.reply_text = "Hello there, gateway."
    completion = client.chat.completions.create(model="chat-rep", messages=MESSAGES, max_tokens=50,
                                                temperature=0.2, top_p=0.9, stop=["\n\n", "User:"])
    assert completion.choices[0].message.content == "Hello there, gateway."
    assert completion.choices[0].finish_reason == "stop"
    # the fake counts words: "Say hello to the gateway" + "Be brief."
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 3)
    (create,) = fake_replicate.requests  # finished within the sync wait: no poll
    assert create.path == f"/v1/models/{MODEL}/predictions"
    assert create.headers["authorization"] == f"Bearer {TOKEN}"
    assert create.headers["prefer"] == "wait=4"  # a second less than the provider's 5 s timeout
    assert create.body == {"input": {"prompt": "Say hello to the gateway", "system_prompt": "Be brief.",
                                     "max_tokens": 50, "temperature": 0.2, "top_p": 0.9,
                                     "stop_sequences": "\n\n,User:"}}
    record = _only_record()
    assert record.status == "success" and not record.usage_estimated
    assert (record.prompt_tokens, record.completion_tokens) == (7, 3)


def test_versioned_model_is_created_at_v1_predictions(fake_replicate, build, openai_client):
    build.route("chat-rep", _replicate_model(build, fake_replicate, upstream_id=f"{MODEL}:5c7d5dc6dd8b"))
    answer = openai_client(build.key()).chat.completions.create(model="chat-rep", messages=MESSAGES[1:])
    assert answer.choices[0].message.content == "Hello from fake-replicate."
    (create,) = fake_replicate.requests
    assert create.path == "/v1/predictions"
    assert create.body == {"version": "5c7d5dc6dd8b", "input": {"prompt": "Say hello to the gateway"}}


def test_a_conversation_is_rendered_into_the_prompt(fake_replicate, client):
    client.chat.completions.create(model="chat-rep", messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": [{"type": "text", "text": "And now?"}]}])
    assert fake_replicate.last_request.body["input"] == {
        "prompt": "User: Hi\n\nAssistant: Hello!\n\nUser: And now?\n\nAssistant:", "system_prompt": "Be brief."}


def test_options_rename_drop_and_add_inputs(fake_replicate, build, openai_client):
    options = {"input_map": {"max_tokens": "max_new_tokens", "system_prompt": None},
               "input": {"prompt_template": "{prompt}"},
               "models": {MODEL: {"input": {"min_tokens": 0}}}}
    build.route("chat-rep", _replicate_model(build, fake_replicate, options=options))
    openai_client(build.key()).chat.completions.create(model="chat-rep", messages=MESSAGES, max_tokens=20)
    assert fake_replicate.last_request.body["input"] == {
        "prompt": "System: Be brief.\n\nUser: Say hello to the gateway\n\nAssistant:", "max_new_tokens": 20,
        "prompt_template": "{prompt}", "min_tokens": 0}


def test_max_tokens_reached_is_finish_reason_length(fake_replicate, client):
    fake_replicate.reply_text = "one two three four five six"
    completion = client.chat.completions.create(model="chat-rep", messages=MESSAGES, max_tokens=3)
    assert completion.choices[0].message.content == "one two three"
    assert completion.choices[0].finish_reason == "length"


def test_a_prediction_still_running_after_the_wait_is_polled(fake_replicate, client):
    fake_replicate.finish_after(3)
    completion = client.chat.completions.create(model="chat-rep", messages=MESSAGES)
    assert completion.choices[0].message.content == "Hello from fake-replicate."
    create, *polls = fake_replicate.requests
    assert [(r.method, r.path) for r in polls] == [("GET", f"/v1/predictions/{create_id(fake_replicate)}")] * 3
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in polls)
    assert fake_replicate.canceled == []
    assert _only_record().status == "success"


def create_id(fake) -> str:
    (pid,) = fake.predictions
    return pid


def test_without_token_counts_usage_is_estimated(fake_replicate, client):
    fake_replicate.report_tokens = False
    completion = client.chat.completions.create(model="chat-rep", messages=MESSAGES)
    assert completion.usage.completion_tokens > 0
    record = _only_record()
    assert record.status == "success" and record.usage_estimated and record.cost_usd > 0


@pytest.mark.proves("replicate", "stream", "stream_usage")
def test_stream_text_and_usage_match_the_prediction(fake_replicate, client):
    fake_replicate.reply_text = "Streaming from\nReplicate works."
    chunks, text = _streamed(client.chat.completions.create(
        model="chat-rep", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert text == "Streaming from\nReplicate works."
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (7, 4)
    create, stream_get, final_get = fake_replicate.requests
    assert create.body["stream"] is True and "prefer" not in create.headers
    assert stream_get.path.startswith("/stream/v1/predictions/")
    assert stream_get.headers["accept"] == "text/event-stream"
    assert stream_get.headers["authorization"] == f"Bearer {TOKEN}"
    assert final_get.method == "GET" and final_get.path == f"/v1/predictions/{create_id(fake_replicate)}"
    assert fake_replicate.canceled == []
    record = _only_record()
    assert record.status == "success" and record.stream and not record.usage_estimated
    assert (record.prompt_tokens, record.completion_tokens) == (7, 4)


# --- failures ----------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_a_prediction_out_of_gpu_memory_falls_back(fake_replicate, fake_openai, with_backup, stream):
    fake_replicate.fail_prediction("CUDA out of memory. Tried to allocate 2.00 GiB")
    if stream:
        _, text = _streamed(with_backup.chat.completions.create(model="chat-rep", messages=MESSAGES, stream=True))
    else:
        text = with_backup.chat.completions.create(model="chat-rep", messages=MESSAGES).choices[0].message.content
    assert text == "from openai backup"
    record = _only_record()
    assert record.status == "success" and record.provider_name == "backup"
    (first, _) = record.attempt_log
    assert (first["outcome"], first["status"]) == ("unavailable", None)
    assert fake_replicate.canceled == []  # it had already failed


def test_a_prediction_refusing_its_input_is_the_clients_error(fake_replicate, fake_openai, with_backup):
    fake_replicate.fail_prediction("ValueError: top_k must be greater than 0")
    with pytest.raises(openai.BadRequestError) as caught:
        with_backup.chat.completions.create(model="chat-rep", messages=MESSAGES)
    assert "top_k must be greater than 0" in caught.value.response.json()["error"]["message"]
    assert fake_openai.request_count == 0  # the same input would fail anywhere: no fallback
    assert _only_record().error_kind == "bad_request"


@pytest.mark.parametrize(("status", "outcome"), [(401, "auth"), (402, "auth"), (429, "rate_limited"),
                                                 (500, "unavailable"), (503, "unavailable")])
def test_problem_details_errors_fall_back_by_kind(fake_replicate, with_backup, status, outcome):
    fake_replicate.fail(status, headers={"Retry-After": "1"} if status == 429 else None)
    answer = with_backup.chat.completions.create(model="chat-rep", messages=MESSAGES)
    assert answer.choices[0].message.content == "from openai backup"
    (first, _) = _only_record().attempt_log
    assert (first["outcome"], first["status"]) == (outcome, status)


def test_an_unknown_model_is_not_found_and_falls_back(fake_replicate, with_backup):
    fake_replicate.known_models = {"someone/else"}
    try:
        answer = with_backup.chat.completions.create(model="chat-rep", messages=MESSAGES)
    finally:
        fake_replicate.known_models = None
    assert answer.choices[0].message.content == "from openai backup"
    assert [(a["outcome"], a["status"]) for a in _only_record().attempt_log] == [("not_found", 404), ("ok", None)]


def test_invalid_input_422_is_a_bad_request(fake_replicate, build, openai_client):
    build.route("chat-rep", _replicate_model(build, fake_replicate, options={"input_map": {"prompt": "text"}}))
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client(build.key()).chat.completions.create(model="chat-rep", messages=MESSAGES)
    message = caught.value.response.json()["error"]["message"]
    assert "Input validation failed" in message and "prompt is required" in message
    assert _only_record().error_kind == "bad_request"


def test_upstream_key_never_reaches_the_client(fake_replicate, build, openai_client):
    fake_replicate.fail_prediction(f"auth failed for token {TOKEN}")
    build.route("chat-rep", _replicate_model(build, fake_replicate))
    with pytest.raises(openai.APIStatusError) as caught:
        openai_client(build.key()).chat.completions.create(model="chat-rep", messages=MESSAGES)
    assert TOKEN not in caught.value.response.text


def test_tool_requests_never_reach_a_model_without_tools(fake_replicate, client):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="chat-rep", messages=MESSAGES, tools=tools)
    assert fake_replicate.request_count == 0


# --- cancel ------------------------------------------------------------------------------------
def test_client_disconnect_mid_stream_cancels_the_prediction(fake_replicate, client):
    fake_replicate.reply_text = " ".join(f"word{i}" for i in range(60))
    fake_replicate.chunk_delay = 0.1
    stream = client.chat.completions.create(model="chat-rep", messages=MESSAGES, stream=True)
    received = []
    for chunk in stream:
        received.append(chunk)
        if len(received) == 3:
            break
    stream.response.close()  # the client hangs up mid-stream
    assert fake_replicate.wait_for_cancel(1), "no cancel was sent for the abandoned prediction"
    assert fake_replicate.canceled == [create_id(fake_replicate)]
    record = _only_record()
    assert record.status == "client_closed" and record.usage_estimated


def test_deadline_cancels_a_prediction_that_never_finishes(fake_replicate, build, openai_client):
    fake_replicate.never_finish()
    build.route("chat-rep", _replicate_model(build, fake_replicate), timeout_s=Decimal("1.5"))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        openai_client(build.key()).chat.completions.create(model="chat-rep", messages=MESSAGES)
    assert caught.value.status_code == 504 and time.monotonic() - started < 4
    assert fake_replicate.wait_for_cancel(1)
    assert fake_replicate.canceled == [create_id(fake_replicate)]
    record = _only_record()
    assert record.status == "error" and record.error_kind == "timeout"


def test_deadline_before_the_first_streamed_piece_cancels(fake_replicate, build, openai_client):
    fake_replicate.hang(30, after_chunks=0)  # the stream opens, then nothing comes
    build.route("chat-rep", _replicate_model(build, fake_replicate), timeout_s=Decimal("1.5"))
    with pytest.raises(openai.APIStatusError) as caught:
        list(openai_client(build.key()).chat.completions.create(model="chat-rep", messages=MESSAGES, stream=True))
    assert caught.value.status_code == 504
    assert fake_replicate.wait_for_cancel(1)
    assert fake_replicate.canceled == [create_id(fake_replicate)]
    assert _only_record().error_kind == "timeout"


def test_a_stream_cut_mid_way_cancels_and_is_one_error_record(fake_replicate, client):
    fake_replicate.reply_text = "alpha beta gamma delta epsilon"
    fake_replicate.cut_stream(after_chunks=2)
    stream = client.chat.completions.create(model="chat-rep", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "alpha beta"
    assert fake_replicate.wait_for_cancel(1)
    record = _only_record()
    assert record.status == "error" and record.error_kind == "bad_response" and record.usage_estimated
