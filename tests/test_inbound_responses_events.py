"""The Responses event stream built from chat chunks (routing.inbound.responses_output),
offline: each sequence is read back by the openai SDK's own stream state machine (what
client.responses.stream uses), which refuses content before its item, duplicate output
indexes and items whose identity changes between added and done."""

from __future__ import annotations

from types import SimpleNamespace

import orjson
import pytest
from openai._models import construct_type
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from providers.types import ChatChunk, Usage
from routing.inbound.responses_output import EventStream


def chunk(finish: str | None = None, **delta) -> ChatChunk:
    return ChatChunk("m-1", [{"index": 0, "delta": delta, "finish_reason": finish}])


def run(chunks: list[ChatChunk], usage: Usage | None = Usage(10, 5)) -> tuple[list[dict], object]:
    """(the events' JSON, the SDK's final response) for these chunks."""
    call = SimpleNamespace(request_id="abc", req=SimpleNamespace(model="route"), usage=usage)
    stream = EventStream(call, {"tools": [], "tool_choice": "auto", "parallel_tool_calls": True})
    raw = stream.start() + [e for c in chunks for e in stream.feed(c)] + stream.finish_events()
    events = []
    for frame in raw:
        head, data = frame.decode().removesuffix("\n\n").split("\n")
        event = orjson.loads(data.removeprefix("data: "))
        assert head == f"event: {event['type']}"
        events.append(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(construct_type(value=event, type_=ResponseStreamEvent))
    return events, state._completed_response


def kinds(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def test_text_reasoning_and_a_refusal_in_one_message():
    events, final = run([
        chunk(role="assistant", content=""),
        chunk(reasoning_content="Let me think."),
        chunk(content="Sure"), chunk(content=", no."),
        chunk(refusal="I cannot share that."),
        chunk("stop"),
    ])
    reasoning, message = final.output
    assert reasoning.type == "reasoning" and reasoning.content[0].text == "Let me think."
    assert [(p.type, getattr(p, "text", None) or p.refusal) for p in message.content] == [
        ("output_text", "Sure, no."), ("refusal", "I cannot share that.")]
    assert "response.refusal.delta" in kinds(events) and "response.refusal.done" in kinds(events)
    assert final.status == "completed" and final.usage.total_tokens == 15


def test_an_empty_answer_is_still_one_empty_message():
    events, final = run([chunk(role="assistant", content=""), chunk("stop")])
    [message] = final.output
    assert message.content[0].text == "" and final.output_text == ""
    assert kinds(events)[-2:] == ["response.output_item.done", "response.completed"]


def test_a_cut_answer_ends_with_response_incomplete():
    events, _ = run([chunk(content="one two"), chunk("length")])
    last = events[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["status"] == "incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["output"][0]["status"] == "incomplete"


@pytest.mark.parametrize("interleaved", [False, True])
def test_parallel_calls_each_on_their_own_item(interleaved):
    opening = [chunk(tool_calls=[{"index": 0, "id": "call_a", "function": {"name": "f", "arguments": ""}}]),
               chunk(tool_calls=[{"index": 1, "id": "call_b", "function": {"name": "g", "arguments": ""}}])]
    a = [chunk(tool_calls=[{"index": 0, "function": {"arguments": p}}]) for p in ('{"x"', ": 1}")]
    b = [chunk(tool_calls=[{"index": 1, "function": {"arguments": p}}]) for p in ('{"y"', ": 2}")]
    chunks = [*opening, a[0], b[0], a[1], b[1]] if interleaved else [opening[0], *a, opening[1], *b]
    events, final = run(chunks + [chunk("tool_calls")])
    assert [(i.call_id, i.name, i.arguments) for i in final.output] == [("call_a", "f", '{"x": 1}'),
                                                                         ("call_b", "g", '{"y": 2}')]
    done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [d["arguments"] for d in done] == ['{"x": 1}', '{"y": 2}']


def test_text_after_a_call_opens_a_new_message_after_it():
    events, final = run([
        chunk(content="Let me look."),
        chunk(tool_calls=[{"index": 0, "id": "call_a", "function": {"name": "f", "arguments": "{}"}}]),
        chunk(content="(done)"),
        chunk("stop"),
    ])
    assert [i.type for i in final.output] == ["message", "function_call", "message"]
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [0, 1, 2]


def test_failure_midway_leaves_the_open_items_incomplete():
    call = SimpleNamespace(request_id="abc", req=SimpleNamespace(model="route"), usage=Usage(3, 1, estimated=True))
    stream = EventStream(call, {})
    stream.start()
    stream.feed(chunk(content="Hal"))
    error, failed = [orjson.loads(f.decode().split("data: ", 1)[1]) for f in stream.failure("upstream_timeout", "cut")]
    assert error == {"type": "error", "sequence_number": 5, "code": "upstream_timeout", "message": "cut", "param": None}
    response = failed["response"]
    assert failed["type"] == "response.failed" and response["status"] == "failed"
    assert response["error"] == {"code": "upstream_timeout", "message": "cut"}
    assert response["output"][0]["status"] == "incomplete" and response["output"][0]["content"][0]["text"] == "Hal"
    assert response["usage"]["output_tokens"] == 1
