"""Tool use through /v1/messages with the official `anthropic` SDK: passed through to an
Anthropic model, translated both ways for an OpenAI model (tool definitions, tool_choice,
tool_use / tool_result blocks <-> tool_calls / tool messages, streamed input_json_delta
<-> tool-call argument deltas, parallel calls), and the calls Claude Code makes
(a small warm-up call, count_tokens, streamed turns with tools, thinking, system blocks
with cache_control, beta headers and its session id).
"""

from __future__ import annotations

import json
import time

import anthropic
import pytest

from billing.models import UsageRecord
from tests.conftest import wait_for
from tests.fakes.anthropic import THINKING_TEXT, TOOL_INPUT, signature
from tests.test_inbound_anthropic import claude, claude_model, events, gpt_model, upstream  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {"name": "get_weather", "description": "Current weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
TIME = {"name": "get_time", "description": "Local time in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
QUESTION = [{"role": "user", "content": "What is the weather in Paris today?"}]


# --- OpenAI answers with tool calls, scripted as OpenAI sends them -------------------------------------
def openai_tool_answer(calls: list[tuple[str, str, dict]], text: str | None = None) -> dict:
    """A chat.completion whose message calls tools: [(id, name, arguments)]."""
    message = {"role": "assistant", "content": text, "refusal": None, "tool_calls": [
        {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        for cid, name, args in calls]}
    return {"id": "chatcmpl-tools1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}}


def openai_tool_stream(calls: list[tuple[str, str, dict]], text: str = "") -> bytes:
    """The same as chat.completion.chunk events: each call's id and name first, then its
    arguments in pieces, one call after the other (as OpenAI streams them)."""
    base = {"id": "chatcmpl-tools2", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}

    def chunk(delta: dict, finish: str | None = None, **extra) -> bytes:
        body = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                "usage": None, **extra}
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    out = [chunk({"role": "assistant", "content": ""})]
    if text:
        out.append(chunk({"content": text}))
    for i, (cid, name, args) in enumerate(calls):
        out.append(chunk({"tool_calls": [{"index": i, "id": cid, "type": "function",
                                          "function": {"name": name, "arguments": ""}}]}))
        raw = json.dumps(args)
        for j in range(0, len(raw), 5):
            out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": raw[j:j + 5]}}]}))
    out.append(chunk({}, "tool_calls"))
    usage = {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}
    out.append(b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n")
    return b"".join(out) + b"data: [DONE]\n\n"


# --- passthrough to Anthropic ----------------------------------------------------------------------------
def test_tool_use_through_anthropic_non_stream(fake_anthropic, claude_model, build, claude):
    message = claude(build.key()).messages.create(model="claude", max_tokens=200, tools=[WEATHER, TIME],
                                                  tool_choice={"type": "auto"}, messages=QUESTION)
    block = message.content[0]
    assert message.stop_reason == "tool_use"
    assert (block.type, block.name, block.input) == ("tool_use", "get_weather", TOOL_INPUT)
    sent = upstream(fake_anthropic).body
    assert sent["tools"] == [WEATHER, TIME] and sent["tool_choice"] == {"type": "auto"}


def test_streamed_tool_use_through_anthropic_keeps_its_input_json_deltas(fake_anthropic, claude_model, build,
                                                                         claude, gateway):
    key = build.key()
    seen = events(gateway, key, {"model": "claude", "max_tokens": 200, "tools": [WEATHER], "messages": QUESTION})
    start = next(d for n, d in seen if n == "content_block_start")
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["input"] == {}
    pieces = [d["delta"]["partial_json"] for n, d in seen if n == "content_block_delta"]
    assert json.loads("".join(pieces)) == TOOL_INPUT and len(pieces) > 2
    assert seen[-2][1]["delta"]["stop_reason"] == "tool_use"

    with claude(key).messages.stream(model="claude", max_tokens=200, tools=[WEATHER], messages=QUESTION) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert "input_json" in kinds
    assert final.content[0].input == TOOL_INPUT and final.stop_reason == "tool_use"


# --- translation to OpenAI -------------------------------------------------------------------------------
def test_openai_tool_calls_come_back_as_tool_use_blocks(fake_openai, gpt_model, build, claude):
    fake_openai.fail(200, body=openai_tool_answer([("call_a1", "get_weather", {"city": "Paris"}),
                                                   ("call_b2", "get_time", {"city": "Paris"})], text="Checking."))
    message = claude(build.key()).messages.create(
        model="gpt", max_tokens=200, tools=[WEATHER, TIME],
        tool_choice={"type": "any", "disable_parallel_tool_use": False}, messages=QUESTION)
    text, weather, clock = message.content
    assert text.text == "Checking."
    assert (weather.id, weather.name, weather.input) == ("call_a1", "get_weather", {"city": "Paris"})
    assert (clock.id, clock.name) == ("call_b2", "get_time")
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (40, 12)
    sent = upstream(fake_openai).body
    assert sent["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
                                          "parameters": WEATHER["input_schema"]}},
        {"type": "function", "function": {"name": "get_time", "description": "Local time in a city",
                                          "parameters": TIME["input_schema"]}},
    ]
    assert sent["tool_choice"] == "required" and "parallel_tool_calls" not in sent


def test_openai_streamed_tool_calls_become_input_json_deltas(fake_openai, gpt_model, build, claude, gateway):
    calls = [("call_a1", "get_weather", {"city": "Paris"}), ("call_b2", "get_time", {"city": "Lyon"})]
    key = build.key()
    fake_openai.fail(200, body=openai_tool_stream(calls, text="Let me look."))
    seen = events(gateway, key, {"model": "gpt", "max_tokens": 200, "tools": [WEATHER, TIME], "messages": QUESTION})
    starts = [d for n, d in seen if n == "content_block_start"]
    assert [(s["index"], s["content_block"]["type"]) for s in starts] == [(0, "text"), (1, "tool_use"), (2, "tool_use")]
    assert starts[1]["content_block"] == {"type": "tool_use", "id": "call_a1", "name": "get_weather", "input": {}}
    stops = [d["index"] for n, d in seen if n == "content_block_stop"]
    assert stops == [0, 1, 2]
    for index, (_, _, args) in enumerate(calls, start=1):
        pieces = [d["delta"]["partial_json"] for n, d in seen
                  if n == "content_block_delta" and d["index"] == index]
        assert json.loads("".join(pieces)) == args
    assert seen[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert seen[-2][1]["usage"]["output_tokens"] == 12

    fake_openai.fail(200, body=openai_tool_stream(calls))
    with claude(key).messages.stream(model="gpt", max_tokens=200, tools=[WEATHER, TIME], messages=QUESTION) as stream:
        final = stream.get_final_message()
    assert [(b.name, b.input) for b in final.content] == [("get_weather", {"city": "Paris"}), ("get_time", {"city": "Lyon"})]
    assert final.stop_reason == "tool_use" and final.usage.input_tokens == 40


@pytest.mark.parametrize("choice, expected", [
    ({"type": "auto"}, {"tool_choice": "auto"}),
    ({"type": "any"}, {"tool_choice": "required"}),
    ({"type": "tool", "name": "get_time"}, {"tool_choice": {"type": "function", "function": {"name": "get_time"}}}),
    ({"type": "none"}, {"tool_choice": "none"}),
    ({"type": "auto", "disable_parallel_tool_use": True}, {"tool_choice": "auto", "parallel_tool_calls": False}),
])
def test_tool_choice_is_translated(fake_openai, gpt_model, build, claude, choice, expected):
    claude(build.key()).messages.create(model="gpt", max_tokens=50, tools=[WEATHER, TIME], tool_choice=choice,
                                        messages=[{"role": "user", "content": "Hello"}])
    sent = upstream(fake_openai).body
    assert {k: sent[k] for k in expected if k in sent} == expected


def test_tool_use_and_tool_results_become_tool_calls_and_tool_messages(fake_openai, gpt_model, build, claude):
    history = [
        *QUESTION,
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Two tools.", "signature": "c2ln"},
            {"type": "text", "text": "Checking both."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "Sunny, 21C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": False, "content": [
                {"type": "text", "text": "14:05"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/clock.png"}}]},
            {"type": "text", "text": "Thanks!", "cache_control": {"type": "ephemeral"}}]},
    ]
    message = claude(build.key()).messages.create(model="gpt", max_tokens=50, tools=[WEATHER, TIME], messages=history)
    assert message.content[0].type == "text"
    assert upstream(fake_openai).body["messages"] == [
        {"role": "user", "content": "What is the weather in Paris today?"},
        {"role": "assistant", "content": "Checking both.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "toolu_2", "type": "function", "function": {"name": "get_time", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "Sunny, 21C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "14:05"},
        {"role": "user", "content": [
            {"type": "text", "text": "(images returned by tool call toolu_2)"},
            {"type": "image_url", "image_url": {"url": "https://example.com/clock.png"}},
            {"type": "text", "text": "Thanks!"}]},
    ]


# --- the calls Claude Code makes ---------------------------------------------------------------------------
BETAS = ["claude-code-20250219", "interleaved-thinking-2025-05-14", "fine-grained-tool-streaming-2025-05-14"]
CLAUDE_CODE_BETA = ",".join(BETAS)
SESSION = "6a1f7c2e-8f43-4d8e-9b1a-2c3d4e5f6a7b"
SYSTEM = [
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
     "cache_control": {"type": "ephemeral"}},
    {"type": "text", "text": "You are an interactive CLI tool that helps users with software engineering tasks.",
     "cache_control": {"type": "ephemeral"}},
]
TOOLS = [
    {"name": "Bash", "description": "Executes a given bash command",
     "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"],
                      "additionalProperties": False, "$schema": "http://json-schema.org/draft-07/schema#"}},
    {"name": "Read", "description": "Reads a file from the local filesystem",
     "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]},
     "cache_control": {"type": "ephemeral"}},
]


def claude_code(claude, key: str):
    """A client set up as Claude Code is: ANTHROPIC_AUTH_TOKEN (a Bearer token), its app
    header and session id (its beta features go with each call: the beta Messages API)."""
    return claude(None, auth_token=key, default_headers={
        "x-app": "cli", "X-Claude-Code-Session-Id": SESSION, "User-Agent": "claude-cli/2.0.0 (external, cli)"})


def claude_code_session(client, route: str):
    """Claude Code's calls at start and one tool-using turn, on the beta Messages API
    (POST /v1/messages?beta=true with anthropic-beta): a one-token warm-up call, a count
    of the tools, then a streamed turn with tools and thinking that calls a tool, and the
    streamed turn that sends the tool's result back."""
    messages = client.beta.messages
    beta = {"betas": BETAS, "extra_query": {"beta": "true"}}  # its TypeScript SDK adds ?beta=true
    warm = messages.create(model=route, max_tokens=1, messages=[{"role": "user", "content": "quota"}],
                           metadata={"user_id": f"user_abc_account__session_{SESSION}"}, **beta)
    assert warm.usage.input_tokens > 0
    counted = messages.count_tokens(model=route, messages=[{"role": "user", "content": "foo"}], tools=TOOLS, **beta)
    assert counted.input_tokens > 0
    user = {"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>Be careful.</system-reminder>"},
        {"type": "text", "text": "What is the weather in Paris? Use the tools.", "cache_control": {"type": "ephemeral"}}]}
    common = {"model": route, "max_tokens": 32000, "system": SYSTEM, "tools": TOOLS,
              "thinking": {"type": "enabled", "budget_tokens": 4000},
              "metadata": {"user_id": f"user_abc_account__session_{SESSION}"}, **beta}
    with messages.stream(messages=[user], **common) as stream:
        first = stream.get_final_message()
    call = next(b for b in first.content if b.type == "tool_use")
    follow = [user, {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21C",
                                            "cache_control": {"type": "ephemeral"}}]}]
    with messages.stream(messages=follow, **common) as stream:
        second = stream.get_final_message()
    return first, second


def test_claude_code_through_an_anthropic_route(fake_anthropic, claude_model, build, claude):
    first, second = claude_code_session(claude_code(claude, build.key()), "claude")
    thinking, call = first.content
    assert (thinking.type, thinking.signature) == ("thinking", signature(THINKING_TEXT))
    assert (call.type, call.name, call.input) == ("tool_use", "Bash", TOOL_INPUT) and first.stop_reason == "tool_use"
    assert second.content[-1].text == "Hello from fake-anthropic." and second.stop_reason == "end_turn"
    assert second.usage.cache_read_input_tokens > 0  # the first turn's cached prefix, read back

    paths = [r.path for r in fake_anthropic.requests]
    assert paths == ["/v1/messages", "/v1/messages/count_tokens", "/v1/messages", "/v1/messages"]
    last = fake_anthropic.requests[-1]
    assert last.headers["anthropic-beta"] == CLAUDE_CODE_BETA
    assert all(r.url.params["beta"] == "true" for r in claude.sent)  # the URLs Claude Code calls
    assert last.body["system"] == SYSTEM and last.body["tools"] == TOOLS
    assert last.body["messages"][1]["content"][0]["signature"] == signature(THINKING_TEXT)  # accepted upstream
    assert wait_for(lambda: UsageRecord.objects.count() == 3)  # count_tokens is not a generation
    time.sleep(0.05)
    records = list(UsageRecord.objects.order_by("created_at"))
    assert len(records) == 3
    assert {(r.endpoint, r.client_session, r.status) for r in records} == {("messages", SESSION, "success")}
    assert [r.stream for r in records] == [False, True, True]
    assert records[1].cache_write_tokens > 0 and records[2].cache_read_tokens > 0


def test_claude_code_through_an_openai_route(fake_openai, gpt_model, build, claude):
    fake_openai.reply("ok", times=1)  # the warm-up call
    fake_openai.fail(200, body=openai_tool_stream([("call_bash1", "Bash", {"command": "curl wttr.in/Paris"})],
                                                  text="I will check."))
    fake_openai.reply_text = "It is sunny in Paris."
    first, second = claude_code_session(claude_code(claude, build.key()), "gpt")
    text, call = first.content
    assert (text.text, call.id, call.name, call.input) == ("I will check.", "call_bash1", "Bash",
                                                           {"command": "curl wttr.in/Paris"})
    assert second.content[0].text == "It is sunny in Paris." and second.stop_reason == "end_turn"

    sent = fake_openai.requests[-1].body
    assert sent["messages"][0] == {"role": "system", "content": "\n\n".join(b["text"] for b in SYSTEM)}
    assert sent["messages"][-2:] == [
        {"role": "assistant", "content": "I will check.", "tool_calls": [
            {"id": "call_bash1", "type": "function",
             "function": {"name": "Bash", "arguments": '{"command":"curl wttr.in/Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_bash1", "content": "Sunny, 21C"},
    ]
    assert [t["function"]["name"] for t in sent["tools"]] == ["Bash", "Read"]
    assert sent["max_tokens"] == 32000 and sent["stream"] is True and "thinking" not in sent
    assert sent["user"] == f"user_abc_account__session_{SESSION}"
    assert wait_for(lambda: UsageRecord.objects.count() == 3)
    assert set(UsageRecord.objects.values_list("client_session", flat=True)) == {SESSION}
