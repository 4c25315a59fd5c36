"""The stage contract (routing.stages.base) through the real transports: the /v1 API
(JSON and SSE, official OpenAI SDK) and the admin's "Test this route" call.

The stages here are small but real implementations of each capability the next
stages need (a guardrail's block and redaction, a cache's answer and store); they are
installed with routing.stages.installed, the way a new stage is added to the list.
"""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from billing.models import UsageRecord
from providers.types import ChatResponse, Usage
from routing import stages
from routing.stages import Answer, Blocked, Stage
from routing.stages.admission import Admission
from routing.stages.streams import TextHoldBack
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
Status = UsageRecord.Status


def last_user_text(call) -> str:
    return next(m["content"] for m in reversed(call.req.messages) if m["role"] == "user")


class Refuse(Stage):
    """A guardrail's block: refuses prompts containing 'forbidden'."""

    name = "refuse"

    async def on_request(self, call):
        if "forbidden" in last_user_text(call):
            call.annotate(self.name, rule="no-forbidden")
            raise Blocked("The request was refused by the gateway's policy 'no-forbidden'.", code="content_blocked")


class Rewrite(Stage):
    """A redaction: rewrites the request before it leaves."""

    name = "rewrite"

    async def on_request(self, call):
        for message in call.req.messages:
            if isinstance(message.get("content"), str) and "hunter2" in message["content"]:
                message["content"] = message["content"].replace("hunter2", "[REDACTED]")
                call.annotate(self.name, redacted=1)
        call.headers.append(("x-test-rewrite", "seen"))


CANNED = ChatResponse(
    model="canned-model",
    choices=[{"index": 0, "message": {"role": "assistant", "content": "From the secret sauce recipe cache."},
              "finish_reason": "stop"}],
    usage=Usage(7, 6),
)


class Canned(Stage):
    """A cache hit: answers 'cached?' without any provider."""

    name = "canned"

    async def on_request(self, call):
        if last_user_text(call) == "cached?":
            call.headers.append(("x-test-cache", "hit"))
            return Answer(CANNED, status=Status.CACHE_HIT)
        return None


PATTERN = "secret sauce recipe"


def mask(text: str) -> str:
    return text.replace(PATTERN, "[MASKED]")


def mask_process(buffer: str, final: bool) -> tuple[str, str]:
    text = mask(buffer)
    if final:
        return text, ""
    # keep the longest suffix that could still grow into the pattern
    for k in range(min(len(PATTERN) - 1, len(text)), 0, -1):
        if PATTERN.startswith(text[-k:]):
            return text[:-k], text[-k:]
    return text, ""


class Mask(Stage):
    """An output redaction, for complete answers and chunk by chunk in streams."""

    name = "mask"

    async def on_response(self, call, response):
        for choice in response.choices:
            message = choice["message"]
            if isinstance(message.get("content"), str):
                message["content"] = mask(message["content"])
        return response

    def stream_filter(self, call):
        return TextHoldBack(mask_process, max_hold=len(PATTERN))


class Recorder(Stage):
    """A cache store: sees each successful answer after it was delivered."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def after_answer(self, call, response):
        self.seen.append((call.request_id, response.choices[0]["message"].get("content") or ""))


class FailingFinish(Stage):
    name = "failing-finish"

    async def on_finish(self, call):
        raise RuntimeError("this stage is broken")


def chat(client, text, **kw):
    kw.setdefault("max_tokens", 1000)  # the key's budget holds one such reservation
    return client.chat.completions.with_raw_response.create(
        model="chat-default", messages=[{"role": "user", "content": text}], **kw
    )


def stream_text(client, text, **kw) -> tuple[str, object]:
    kw.setdefault("max_tokens", 1000)
    with client.chat.completions.with_streaming_response.create(
        model="chat-default", messages=[{"role": "user", "content": text}], stream=True,
        stream_options={"include_usage": True}, **kw,
    ) as response:
        chunks = list(response.parse())
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), response


@pytest.fixture
def setup(fake_openai, build, openai_client):
    from billing.keys import issue_key

    build.openai_route(fake_openai)
    issued = issue_key("stage-key", budget_usd=Decimal("0.001"))  # room for one reservation at a time
    return fake_openai, openai_client(issued.secret)


@pytest.mark.parametrize("stream", [False, True])
def test_a_blocked_request_is_recorded_released_and_never_sent(setup, stream):
    fake, client = setup
    with stages.installed([Admission(), Refuse()]):
        with pytest.raises(openai.BadRequestError) as caught:
            if stream:
                stream_text(client, "something forbidden", max_tokens=1000)
            else:
                chat(client, "something forbidden", max_tokens=1000)
        assert caught.value.code == "content_blocked"
        assert caught.value.body["type"] == "invalid_request_error"
        assert fake.requests == []  # nothing left the gateway
        record = UsageRecord.objects.get()
        assert (record.status, record.http_status, record.cost_usd) == (Status.BLOCKED, 400, 0)
        assert record.annotations == {"refuse": {"rule": "no-forbidden"}}
        assert caught.value.response.headers["x-request-id"] == record.request_id
        # the reservation was released: the budget has room for the next one
        assert chat(client, "hello", max_tokens=1000).http_response.status_code == 200


def test_a_stage_rewrites_the_request_before_it_leaves(setup):
    fake, client = setup
    with stages.installed([Admission(), Rewrite()]):
        raw = chat(client, "my password is hunter2")
    assert fake.last_request.body["messages"][0]["content"] == "my password is [REDACTED]"
    assert raw.headers["x-test-rewrite"] == "seen"
    assert UsageRecord.objects.get().annotations == {"rewrite": {"redacted": 1}}


def test_a_stage_answers_without_a_provider_json(setup):
    fake, client = setup
    with stages.installed([Admission(), Canned()]):
        raw = chat(client, "cached?", max_tokens=1000)
        completion = raw.parse()
        assert completion.choices[0].message.content == "From the secret sauce recipe cache."
        assert completion.usage.completion_tokens == 6
        assert raw.headers["x-test-cache"] == "hit"
        assert fake.requests == []
        record = UsageRecord.objects.get()
        assert (record.status, record.cost_usd, record.attempts, record.model_name) == (Status.CACHE_HIT, 0, 0, "")
        assert record.request_id == raw.headers["x-request-id"]
        # its reservation was settled: another full reservation fits the budget
        assert chat(client, "cached?", max_tokens=1000).http_response.status_code == 200
        assert chat(client, "hello", max_tokens=1000).http_response.status_code == 200
    assert [r.status for r in UsageRecord.objects.order_by("created_at")] == [
        Status.CACHE_HIT, Status.CACHE_HIT, Status.SUCCESS]


def test_a_stage_answers_without_a_provider_stream(setup):
    fake, client = setup
    with stages.installed([Admission(), Canned()]):
        text, response = stream_text(client, "cached?")
    assert text == "From the secret sauce recipe cache."
    assert response.headers["x-test-cache"] == "hit"
    assert fake.requests == []
    record = wait_for(lambda: UsageRecord.objects.first())
    assert (record.status, record.stream, record.completion_tokens) == (Status.CACHE_HIT, True, 6)


@pytest.mark.parametrize("stream", [False, True])
def test_output_is_transformed_including_across_chunk_boundaries(setup, stream):
    fake, client = setup
    fake.reply_text = "Here is the secret sauce recipe, and again: secret sauce recipe. Bye secret"
    with stages.installed([Admission(), Mask()]):
        if stream:
            text, _ = stream_text(client, "tell me")  # the fake streams word by word
        else:
            text = chat(client, "tell me").parse().choices[0].message.content
    assert text == "Here is the [MASKED], and again: [MASKED]. Bye secret"
    record = wait_for(lambda: UsageRecord.objects.first())
    assert record.status == Status.SUCCESS and record.completion_tokens == 13


def test_responses_flow_back_through_the_outer_stages_onion_order(setup):
    """A cache hit still passes the output stages listed before the cache."""
    fake, client = setup
    with stages.installed([Admission(), Mask(), Canned()]):
        text = chat(client, "cached?").parse().choices[0].message.content
        streamed, _ = stream_text(client, "cached?")
    assert text == streamed == "From the [MASKED] cache."


def test_after_answer_sees_each_answer_once_streams_assembled(setup):
    fake, client = setup
    fake.reply_text = "A stored answer."
    recorder = Recorder()
    with stages.installed([Admission(), recorder]):
        rid = chat(client, "one").headers["x-request-id"]
        _, response = stream_text(client, "two")
        sid = response.headers["x-request-id"]
        with pytest.raises(openai.BadRequestError):  # a refusal is not an answer
            client.chat.completions.create(model="chat-default", messages=[{"role": "user", "content": 7}])
        assert wait_for(lambda: len(recorder.seen) == 2)
    assert sorted(recorder.seen) == sorted([(rid, "A stored answer."), (sid, "A stored answer.")])


def test_a_failing_stage_finish_does_not_lose_the_record_or_the_settlement(setup):
    fake, client = setup
    with stages.installed([Admission(), FailingFinish()]):
        for _ in range(3):  # each settles its reservation despite the broken stage after it
            assert chat(client, "hello", max_tokens=1000).http_response.status_code == 200
    assert wait_for(lambda: UsageRecord.objects.count() == 3)


def test_the_admin_test_call_runs_the_same_stages(fake_openai, build, admin_client):
    route, _ = build.openai_route(fake_openai)
    with stages.installed([Admission(), Rewrite(), Mask()]):
        fake_openai.reply_text = "The secret sauce recipe is here."
        response = admin_client.post(
            f"/admin/routing/route/{route.pk}/test/",
            {"prompt": "my password is hunter2", "max_tokens": 50, "_send": "1"},
        )
    assert response.status_code == 200
    real = response.context["real"]
    assert real.error == "" and real.answer == "The [MASKED] is here."
    assert fake_openai.last_request.body["messages"][-1]["content"] == "my password is [REDACTED]"
    record = UsageRecord.objects.get()
    assert record.key_prefix == "admin" and record.annotations == {"rewrite": {"redacted": 1}}


def test_the_dry_run_lists_what_each_stage_would_do(fake_openai, build):
    from routing.dryrun import explain

    route, _ = build.openai_route(fake_openai)
    ex = explain(route, "Hello", max_tokens=100)
    assert [name for name, _ in ex.stages] == ["admission"]
    assert "reserves up to $" in ex.stages[0][1]
    assert fake_openai.requests == []
    assert not UsageRecord.objects.exists()


def test_stage_names_must_be_unique():
    with pytest.raises(ValueError):
        with stages.installed([Admission(), Admission()]):
            pass
