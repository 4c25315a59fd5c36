"""The stream path's per-chunk shortcuts say exactly what the long way said: the SSE
events' bytes (routing.render.sse encodes the constant prefix once per stream), the
send wrappers (routing.cors: plain functions returning the inner send's awaitable),
the OpenAI stream parser's fast checks (providers.adapters.openai), the relay without
its chaining generator, and the hold-back filter's and assembler's shortcuts."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
import pytest

from providers.adapters import openai as openai_adapter
from providers.adapters.base import sse_events
from providers.types import ChatChunk, ProviderError, Usage
from routing import cors, relay, render
from routing.stages.streams import Assembler, ChunkFilter, TextHoldBack


async def _items(items):
    for item in items:
        yield item


def _collect(agen):
    async def go():
        return [x async for x in agen]

    return asyncio.run(go())


def _expected_sse(call, chunks, created):
    """The events as the dict-per-chunk encoding wrote them."""
    base = {"id": f"chatcmpl-{call.request_id}", "object": "chat.completion.chunk", "created": created}
    out, model = [], ""
    for chunk in chunks:
        model = chunk.model or model
        if not chunk.choices:
            continue
        event = {**base, "model": model, "choices": chunk.choices}
        if call.req.include_usage:
            event["usage"] = None
        out.append(b"data: " + orjson.dumps(event) + b"\n\n")
    if call.req.include_usage and call.usage is not None:
        out.append(b"data: " + orjson.dumps({**base, "model": model, "choices": [],
                                             "usage": render._usage_json(call.usage)}) + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return out


@pytest.mark.parametrize("include_usage", [False, True])
def test_sse_bytes_are_what_a_dict_per_chunk_would_encode(monkeypatch, include_usage):
    monkeypatch.setattr(render.time, "time", lambda: 1700000000.5)
    call = SimpleNamespace(request_id='r"1\\é', req=SimpleNamespace(include_usage=include_usage),
                           usage=Usage(prompt_tokens=3, completion_tokens=4))
    chunks = [
        ChatChunk("", [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]),
        ChatChunk("m-1", [{"index": 0, "delta": {"content": 'a "quoted"\n\u2028 é'}, "finish_reason": None}]),
        ChatChunk("", [{"index": 0, "delta": {"content": "kept model"}, "finish_reason": None}]),
        ChatChunk("m-\"2\"", [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]),
        ChatChunk("m-3", [], Usage(prompt_tokens=3, completion_tokens=4)),
    ]
    got = _collect(render.sse(call, _items(chunks)))
    assert got == _expected_sse(call, chunks, 1700000000)


def test_sse_still_reports_an_unencodable_chunk_as_an_internal_error():
    call = SimpleNamespace(request_id="r1", req=SimpleNamespace(include_usage=False), usage=None)
    chunks = [ChatChunk("m", [{"index": 0, "delta": {"content": object()}, "finish_reason": None}])]
    got = _collect(render.sse(call, _items(chunks)))
    assert len(got) == 1 and got[0].startswith(b'data: {"error":') and b"request r1" in got[0]


def test_the_send_wrappers_return_the_inner_sends_awaitable_and_add_their_headers():
    sent = []

    async def inner(message):
        sent.append(message)

    policy = SimpleNamespace(exposed=lambda name: name.startswith("x-gateway-"), credentials=False)
    for wrapper in (cors._nosniff(inner), cors._cors(inner, policy, b"https://app.example.com")):
        sent.clear()

        async def go():
            await wrapper({"type": "http.response.start", "status": 200, "headers": [(b"x-gateway-route", b"r")]})
            await wrapper({"type": "http.response.body", "body": b"x", "more_body": True})

        asyncio.run(go())
        assert cors.NOSNIFF in sent[0]["headers"]
        assert sent[1] == {"type": "http.response.body", "body": b"x", "more_body": True}


MODEL = SimpleNamespace(provider=SimpleNamespace(name="p", api_key="k"), upstream_id="up-model")


def _response(pieces):
    return SimpleNamespace(content=SimpleNamespace(iter_any=lambda: _items(pieces)))


def _parse(monkeypatch, events):
    body = b"".join(b"data: " + (e.encode() if isinstance(e, str) else e) + b"\n\n" for e in events)
    return _collect(openai_adapter.OpenAIAdapter().parse_stream(MODEL, _response([body])))


def _by_sse_events(pieces):
    """The chunks as base.sse_events' events, parsed one by one (the two-generator way)."""
    adapter = openai_adapter.OpenAIAdapter()

    async def go():
        out = []
        try:
            async for _event, data in sse_events(_response(pieces)):
                chunk = adapter._stream_chunk(MODEL, data, "p", MODEL.upstream_id)
                if chunk is None:
                    return out, None
                out.append(chunk)
        except ProviderError as exc:
            return out, exc.message
        return out, "p: stream ended without [DONE]"

    return asyncio.run(go())


_CHUNK = b'{"model":"m","choices":[{"index":0,"delta":{"content":"x\\ny"}}]}'


@pytest.mark.parametrize("body", [
    b"data: " + _CHUNK + b"\n\ndata: [DONE]\n\n",
    b"data: " + _CHUNK + b"\r\n\r\ndata: [DONE]\r\n\r\n",
    b": keep-alive\n\nevent: chunk\ndata:" + _CHUNK + b"\nid: 3\n\n\n\ndata: [DONE]\n\n",
    b'data: {"model":"m",\ndata: "choices":[]}\n\ndata: [DONE]',          # multi-line data, no newline at the end
    b"data: " + _CHUNK + b"\n\ndata: " + _CHUNK,                          # cut after an event without [DONE]
    b"data: " + _CHUNK + b"\n\ndata: " + _CHUNK + b"\r",
    b"data: " + _CHUNK + b"\n\n",
    b"data: [DONE]\n\ndata: " + _CHUNK + b"\n\n",
    b"data: " + _CHUNK + b"\n\n:\xff comment\ndata: \xff\n\n",           # undecodable bytes: replaced, then bad JSON
])
@pytest.mark.parametrize("size", [1, 3, 7, 10000])
def test_openai_stream_framing_is_sse_events_and_iter_lines_own(body, size):
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    expected, end = _by_sse_events(pieces)
    got, error = [], None

    async def go():
        async for chunk in openai_adapter.OpenAIAdapter().parse_stream(MODEL, _response(pieces)):
            got.append(chunk)

    try:
        asyncio.run(go())
    except ProviderError as exc:
        error = exc.message
    assert (got, error) == (expected, end)


def test_openai_stream_chunks_are_parsed_as_before(monkeypatch):
    events = [
        orjson.dumps({"model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        orjson.dumps({"choices": [{"delta": {"content": "hi"}, "finish_reason": None, "logprobs": {"x": 1}}]}),
        orjson.dumps({"model": "", "choices": [{"index": 1, "delta": None, "finish_reason": "stop"}]}),
        orjson.dumps({"model": 7, "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}}]}),
        orjson.dumps({"model": "m", "choices": None, "usage": {"prompt_tokens": 2, "completion_tokens": 3}}),
        b"  [DONE] ",
    ]
    got = _parse(monkeypatch, [e.decode() for e in events])
    assert [c.model for c in got] == ["m", "up-model", "up-model", "7", "m"]
    assert got[0].choices == [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                               "finish_reason": None}]
    assert got[1].choices == [{"index": 0, "delta": {"content": "hi"}, "logprobs": {"x": 1}, "finish_reason": None}]
    assert got[2].choices == [{"index": 1, "delta": {}, "logprobs": None, "finish_reason": "stop"}]
    assert got[3].choices[0]["delta"]["tool_calls"][0]["id"] == "c"
    assert got[4].choices == [] and got[4].usage.prompt_tokens == 2 and got[4].usage.completion_tokens == 3


@pytest.mark.parametrize("event, message", [
    ({"choices": {}}, "a chunk's choices is not a list"),
    ({"choices": ["x"]}, "a stream choice is not an object"),
    ({"choices": [{"index": -1, "delta": 5}]}, "choice index is not a non-negative integer"),
    ({"choices": [{"index": True}]}, "choice index is not a non-negative integer"),
    ({"choices": [{"delta": 5}]}, "a stream delta is not an object"),
    ({"choices": [{"delta": {"role": 1, "content": 2}}]}, "a stream delta's role is not a string"),
    ({"choices": [{"delta": {"content": 2}}]}, "a stream delta's content is not a string"),
    ({"choices": [{"delta": {"tool_calls": {}}}]}, "tool_calls is not a list"),
    ({"choices": [{"delta": {}, "finish_reason": 3}]}, "finish_reason is not a string"),
    ({"choices": [{"delta": {}}], "usage": 3}, "usage is not an object"),
])
def test_openai_stream_shape_errors_are_the_checks_own(monkeypatch, event, message):
    with pytest.raises(ProviderError) as info:
        _parse(monkeypatch, [orjson.dumps(event).decode(), "[DONE]"])
    assert info.value.message == f"p: {message}"


class _Double(ChunkFilter):
    def feed(self, chunk):
        return [chunk, chunk]


class _Drop(ChunkFilter):
    def feed(self, chunk):
        return []


@pytest.mark.parametrize("filters", [[], [_Double()], [_Double(), _Double()], [_Drop(), _Double()],
                                     [_Double(), _Drop()], [ChunkFilter(), _Double(), ChunkFilter()]])
def test_the_relay_yields_the_head_then_the_rest_through_every_filter(filters):
    async def settle(*_):
        pass

    call = SimpleNamespace(usage=None, ttft=None, run=SimpleNamespace(started=0.0, target=None, calls=1),
                           completion_text=[], raw_answer=None, success_status="success", settle=settle,
                           settle_in_background=lambda *a: None, estimated_usage=lambda: None, blocked=False)
    chunks = [ChatChunk("m", [{"index": 0, "delta": {"content": str(i)}, "finish_reason": None}]) for i in range(4)]
    got = _collect(relay._relay(call, chunks[:1], _items(chunks[1:]), filters, Assembler()))
    assert got == relay._through(filters, chunks)
    assert call.completion_text == ["0", "1", "2", "3"] and call.raw_answer.choices[0]["message"]["content"] == "0123"


def test_the_hold_back_keeps_the_delta_key_order_and_drops_held_chunks():
    def process(text, final):
        return (text, "") if final else (text[:-1], text[-1:])

    f = TextHoldBack(process, max_hold=4)
    out = f.feed(ChatChunk("m", [{"index": 0, "delta": {"content": "ab"}, "finish_reason": None}]))
    assert out[0].choices == [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]
    assert f.feed(ChatChunk("m", [{"index": 0, "delta": {"content": ""}, "finish_reason": None}])) == []
    out = f.feed(ChatChunk("m", [{"index": 0, "delta": {"content": "c", "role": "assistant"}, "finish_reason": None}]))
    assert list(out[0].choices[0]["delta"].items()) == [("role", "assistant"), ("content", "b")]
    out = f.feed(ChatChunk("m", [{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    assert out[0].choices == [{"index": 0, "delta": {"content": "c"}, "finish_reason": "stop"}]
