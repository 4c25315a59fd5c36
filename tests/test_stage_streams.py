"""routing.stages.streams: the hold-back filter's bound, replay and assembly."""

from __future__ import annotations

import pytest

from providers.types import ChatChunk, ChatResponse, Usage
from routing.stages.streams import Assembler, TextHoldBack, replay

PATTERN = "4111 1111 1111 1111"


def redact(buffer: str, final: bool) -> tuple[str, str]:
    text = buffer.replace(PATTERN, "[CARD]")
    if final:
        return text, ""
    for k in range(min(len(PATTERN) - 1, len(text)), 0, -1):
        if PATTERN.startswith(text[-k:]):
            return text[:-k], text[-k:]
    return text, ""


def content_chunk(text: str, finish: str | None = None, index: int = 0) -> ChatChunk:
    delta = {"content": text} if text else {}
    return ChatChunk("m", [{"index": index, "delta": delta, "finish_reason": finish}])


def sent_text(chunks: list[ChatChunk], index: int = 0) -> str:
    return "".join((c.get("delta") or {}).get("content") or "" for ch in chunks for c in ch.choices
                   if c.get("index", 0) == index)


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_text_split_anywhere_is_transformed_and_never_held_beyond_the_bound(size):
    text = f"pay with {PATTERN} today, or {PATTERN}"
    f = TextHoldBack(redact, max_hold=len(PATTERN))
    out, fed = [], 0
    for i in range(0, len(text), size):
        piece = text[i:i + size]
        fed += len(piece)
        out.extend(f.feed(content_chunk(piece)))
        assert sum(len(v) for v in f.held.values()) <= len(PATTERN)
    out.extend(f.feed(content_chunk("", finish="stop")))
    assert f.held == {}
    assert sent_text(out) == text.replace(PATTERN, "[CARD]")
    assert out[-1].choices[0]["finish_reason"] == "stop"


def test_a_process_that_wants_to_keep_everything_is_cut_to_the_bound():
    greedy = lambda buffer, final: ("", "") if final and not buffer else ((buffer, "") if final else ("", buffer))  # noqa: E731
    f = TextHoldBack(greedy, max_hold=5)
    out = []
    for ch in "abcdefghij":
        out.extend(f.feed(content_chunk(ch)))
        assert len(f.held.get(0, "")) <= 5
    out.extend(f.flush())
    assert sent_text(out) == "abcdefghij"


def test_held_text_of_each_choice_is_flushed_at_the_end_in_order():
    f = TextHoldBack(redact, max_hold=len(PATTERN))
    out = f.feed(content_chunk("card 4111", index=0)) + f.feed(content_chunk("also 4111 11", index=1))
    out += f.flush()
    assert sent_text(out, 0) == "card 4111" and sent_text(out, 1) == "also 4111 11"


def test_usage_only_and_role_chunks_pass_through():
    f = TextHoldBack(redact, max_hold=3)
    usage = ChatChunk("m", [], Usage(3, 4))
    assert f.feed(usage) == [usage]
    role = ChatChunk("m", [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    assert f.feed(role)[0].choices[0]["delta"]["role"] == "assistant"


async def test_replay_then_assembly_gives_back_the_answer():
    answer = ChatResponse("m", [{"index": 0, "message": {"role": "assistant", "content": "Hi.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
        "finish_reason": "tool_calls"}], Usage(2, 3))
    assembler = Assembler()
    async for chunk in replay(answer):
        assembler.add(chunk)
    again = assembler.response()
    assert again.choices == answer.choices and again.usage == answer.usage


def test_assembly_keeps_a_tool_calls_provider_extras():
    """Gemini's thought signature rides on the tool call (extra_content): a stream assembled
    for the cache or the after-answer stages keeps it, so a replay can be sent back."""
    signature = {"google": {"thought_signature": "c2lnbmVk"}}
    assembler = Assembler()
    assembler.add(ChatChunk("m", [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""},
         "extra_content": signature}]}}]))
    assembler.add(ChatChunk("m", [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"arguments": "{}"}}]}, "finish_reason": "tool_calls"}]))
    (call,) = assembler.response().choices[0]["message"]["tool_calls"]
    assert call == {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"},
                    "extra_content": signature}
