"""Only what a provider did counts against its breaker: requests the gateway itself
cannot translate for a target (nesting deeper than the JSON encoder takes, an image
given as a string to an Anthropic model, a tool call that cannot be converted) are
the client's 400 in OpenAI's format, nothing is sent, no breaker hears of it. Before,
each such request was an 'unexpected answer' (bad_response) counted against the
model, so three of them opened its breaker for every tenant.

Two layers hold this. Through /v1 the body validator (routing.schemas) refuses these
shapes before routing; behind it, the adapters' translation step raises
RequestNotTranslatable for anything it still cannot translate (whatever the entry
point), which the engine never counts: the engine tests below hand such requests
straight to the engine, with real adapters talking HTTP to the fakes.
"""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from gateway_project.errors import InvalidRequest
from providers.types import ChatRequest
from routing.breaker import State
from tests.breaker_helpers import (
    BOTH_STORES,
    ask,
    breaker,
    breakers,  # noqa: F401 - fixture
    run,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("breakers")]
STRICT = {"breaker_failure_threshold": 3, "breaker_failure_rate": 0, "breaker_cooldown_s": 60}


def nested(depth: int) -> dict:
    """A JSON schema nested `depth` levels: valid JSON the gateway parses (orjson reads
    up to 1024 levels) but cannot serialize again (orjson writes at most 254)."""
    value: dict = {"type": "string"}
    for _ in range(depth // 2):
        value = {"type": "object", "properties": {"x": value}}
    return value


DEEP_FORMAT = {"type": "json_schema", "json_schema": {"name": "deep", "schema": nested(600)}}
DEEP_TOOLS = [{"type": "function", "function": {"name": "deep", "parameters": nested(600)}}]
IMAGE_AS_STRING = [
    {"role": "user", "content": [{"type": "text", "text": "What is on it?"},
                                 {"type": "image_url", "image_url": "https://example.com/cat.png"}]}
]
BAD_TOOL_CALL = [
    {"role": "user", "content": "What is the weather?"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": "weather()"}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
]


def post(gateway: str, key: str, body: dict) -> httpx.Response:
    return httpx.post(f"{gateway}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}, timeout=30)


def assert_closed_and_untouched(model, *routes) -> None:
    for route in routes:
        status = breaker(model, route)
        assert (status.state, status.consecutive_failures, status.window_requests, status.opens) == (
            State.CLOSED, 0, 0, 0,
        ), route.name


@BOTH_STORES
@pytest.mark.parametrize("stream", [False, True])
def test_nesting_deeper_than_the_encoder_takes_is_the_clients_400_and_never_opens_a_breaker(
    gateway, build, fake_openai, stream
):
    model = build.model(build.provider(fake_openai, name="primary"))
    chat = build.route("chat-default", model, **STRICT)
    other = build.route("other", model, **STRICT)  # another tenant's route to the same model
    key = build.key()

    responses = [
        post(gateway, key, {"model": "chat-default", "messages": [{"role": "user", "content": "hi"}],
                            "response_format": DEEP_FORMAT, "stream": stream})
        for _ in range(10)
    ]

    for response in responses:
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", "invalid_request", "response_format")
    assert fake_openai.request_count == 0  # nothing was sent
    assert_closed_and_untouched(model, chat, other)
    ok = ask(openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0), model="other")
    assert ok.headers["x-gateway-attempt-log"] == "primary/gpt-4o-mini=ok"


@BOTH_STORES
def test_an_image_given_as_a_string_is_a_400_naming_it_for_an_anthropic_only_route(
    build, fake_anthropic, openai_client
):
    claude = build.model(build.provider(fake_anthropic, name="claude", kind="anthropic"), "claude-3-5-haiku")
    route = build.route("chat-claude", claude, **STRICT)
    client = openai_client(build.key())

    for _ in range(5):
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(model="chat-claude", messages=IMAGE_AS_STRING)
        error = exc.value.response.json()["error"]
        assert (error["code"], error["param"]) == ("invalid_request", "messages[0].content[1].image_url")

    assert fake_anthropic.request_count == 0
    assert_closed_and_untouched(claude, route)


def test_a_tool_call_that_cannot_be_converted_is_a_400_naming_its_message(build, fake_anthropic, openai_client):
    claude = build.model(build.provider(fake_anthropic, name="claude", kind="anthropic"), "claude-3-5-haiku")
    route = build.route("chat-claude", claude, **STRICT)
    client = openai_client(build.key())

    for _ in range(3):
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(model="chat-claude", messages=BAD_TOOL_CALL)
        error = exc.value.response.json()["error"]
        assert error["code"] == "invalid_request" and error["param"].startswith("messages[1]")

    assert fake_anthropic.request_count == 0
    assert_closed_and_untouched(claude, route)


# --- behind the validator: the engine and the adapters' translation step -------------
def claude_model(build, fake_anthropic):
    return build.model(build.provider(fake_anthropic, name="claude", kind="anthropic"), "claude-3-5-haiku")


async def routed(name: str):
    """The live routing table's route `name`, and a maker of fresh runs over it."""
    from routing import engine
    from routing.catalog import routing_table
    from routing.strategies import Signals, decide

    route = (await routing_table.get()).routes[name]
    return route, lambda req: engine.Run(route, decide(route, req, Signals()))


async def status_of(route, target):
    from routing.breaker import get_breaker_store

    return await get_breaker_store().status(target.key, route.breaker)


UNTRANSLATABLE = {
    "nesting": (
        lambda: ChatRequest("chat", [{"role": "user", "content": "hi"}], params={"tools": DEEP_TOOLS}),
        "tools", "nested deeper than 254 levels",
    ),
    "image-as-string": (
        lambda: ChatRequest("chat", IMAGE_AS_STRING),
        "messages[0].content[1].image_url", "must be an object with a 'url' string",
    ),
    "tool-call-not-convertible": (
        lambda: ChatRequest("chat", BAD_TOOL_CALL),
        "messages[1]", "cannot be translated for claude/claude-3-5-haiku (anthropic format)",
    ),
}


@BOTH_STORES
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("case", list(UNTRANSLATABLE))
def test_the_engine_answers_an_untranslatable_request_with_a_400_and_counts_nothing(
    build, fake_anthropic, case, stream
):
    from routing import engine

    claude = claude_model(build, fake_anthropic)
    build.route("chat", claude, **STRICT)
    make, param, words = UNTRANSLATABLE[case]

    async def scenario():
        route, new_run = await routed("chat")
        for _ in range(5):
            req = make()
            req.stream = stream
            attempt = new_run(req)
            with pytest.raises(InvalidRequest) as exc:
                await (engine.open_stream(attempt, req) if stream else engine.complete(attempt, req))
            assert (exc.value.status, exc.value.param) == (400, param)
            assert words in exc.value.message
            assert [(a.outcome, a.called) for a in attempt.log] == [("not_translatable", False)]
            assert attempt.calls == 0  # nothing was sent: no usage record either
        return await status_of(route, route.targets[0])

    status = run(scenario)

    assert fake_anthropic.request_count == 0
    assert (status.state, status.consecutive_failures, status.window_requests) == (State.CLOSED, 0, 0)


@BOTH_STORES
def test_a_target_whose_format_takes_the_request_serves_it_and_the_other_hears_nothing(
    build, fake_anthropic, fake_openai
):
    """Untranslatable for the first target only: the next candidate is tried (another
    wire format may take it: an image given as a string breaks only Anthropic's)."""
    from routing import engine

    fake_openai.reply_text = "a cat"
    build.route("chat", claude_model(build, fake_anthropic), build.model(build.provider(fake_openai, name="gpt")),
                **STRICT)

    async def scenario():
        route, new_run = await routed("chat")
        for _ in range(5):
            req = ChatRequest("chat", IMAGE_AS_STRING)
            attempt = new_run(req)
            answer = await engine.complete(attempt, req)
            assert answer.choices[0]["message"]["content"] == "a cat"
            assert [a.outcome for a in attempt.log] == ["not_translatable", "ok"] and attempt.calls == 1
        return await status_of(route, route.targets[0])

    status = run(scenario)

    assert (fake_anthropic.request_count, fake_openai.request_count) == (0, 5)
    assert (status.state, status.consecutive_failures, status.window_requests) == (State.CLOSED, 0, 0)


@BOTH_STORES
def test_an_untranslatable_request_gives_back_the_half_open_probe(build, fake_anthropic):
    """A request granted the half-open trial but never sent must not use it up: the
    next good request probes at once (not after probe_timeout_s, and the breaker does
    not re-open on a failure the provider never had, as it did before)."""
    from routing import engine
    from routing.breaker import get_breaker_store

    build.route("chat", claude_model(build, fake_anthropic), breaker_failure_threshold=1, breaker_failure_rate=0,
                breaker_cooldown_s=0.3, timeout_s=30)

    async def scenario():
        route, new_run = await routed("chat")
        target = route.targets[0]
        await get_breaker_store().record(target.key, route.breaker, success=False)  # opened
        await asyncio.sleep(0.35)  # past the cooldown: the next request gets the trial
        bad = ChatRequest("chat", IMAGE_AS_STRING)
        with pytest.raises(InvalidRequest):
            await engine.complete(new_run(bad), bad)
        status = await status_of(route, target)
        assert (status.state, status.probe_in_flight, status.opens) == (State.HALF_OPEN, False, 1)
        good = ChatRequest("chat", [{"role": "user", "content": "hi"}])
        attempt = new_run(good)
        await engine.complete(attempt, good)  # the trial, right away
        assert [a.outcome for a in attempt.log] == ["ok"] and attempt.probe
        return await status_of(route, target)

    status = run(scenario)

    assert fake_anthropic.request_count == 1
    assert status.state is State.CLOSED
