"""Guardrails on both sides of the request: the prompt before it leaves for a
provider (redact, block or flag; the classifier asks a judge route), the answer before
the client sees it — complete answers at once, streams incrementally with a bounded
hold-back — and the originals of restoring guardrails put back into the answer.

The checks themselves live in the guardrails app (kinds, detectors, engine); this
stage applies their decisions to the request: rewrites `call.req`, raises `Blocked`,
adds the `x-gateway-guardrails` header and the usage record's `guardrails` note, and
hands the decisions to the audit (violation log, metrics). Requests of the judge
itself (key prefix "guardrail") are not guarded again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings

from billing.keys import KeyInfo
from guardrails import audit
from guardrails.engine import CheckFailed, Decision, StreamCheck, Vault, check_input, check_output
from guardrails.messages import request_texts, with_request_texts
from guardrails.policy import GuardrailInfo, guardrail_table
from providers.types import ChatChunk, ChatRequest, ChatResponse

from .base import Blocked, Stage
from .streams import ChunkFilter, TextHoldBack

if TYPE_CHECKING:
    from routing.pipeline import Call

JUDGE_PREFIX = "guardrail"


class GuardrailBlocked(Blocked):
    code = "content_policy_violation"


@dataclass(slots=True)
class _State:
    outputs: tuple[GuardrailInfo, ...]
    vault: Vault
    who: audit.Who
    input: list[Decision] = field(default_factory=list)
    output: dict[str, Decision] = field(default_factory=dict)
    recorded: bool = False


class Guardrails(Stage):
    name = "guardrails"

    async def on_request(self, call: Call) -> None:
        if call.key.prefix == JUDGE_PREFIX:
            return None
        table = await guardrail_table.get()
        inputs, outputs = table.select(call.route.id, call.key.team_id, call.key.id)
        if not inputs and not outputs:
            return None
        who = audit.Who(call.request_id, call.key.id, call.key.prefix, call.key.team_id, call.key.team_name,
                        call.route.name, call.req.stream)
        texts = request_texts(call.req.messages)
        state = _State(outputs, Vault(texts), who)
        if inputs:
            result = await check_input(inputs, texts, state.vault, _Judging(call))
            state.input = result.decisions
            audit.count_passes(inputs, "input", result.decisions)
            if result.decisions:
                call.annotate(self.name, input=audit.annotation(result.decisions))
                audit.record(result.decisions, who)
                shown = [f"{d.guardrail.name}={d.outcome}" for d in result.decisions if d.outcome != "flagged"]
                if shown:
                    call.headers.append(("x-gateway-guardrails", ",".join(shown)))
            blocked = result.blocked_by
            if blocked is not None:
                raise _blocked(blocked, "request")
            if result.changed:
                call.req.messages = with_request_texts(call.req.messages, result.texts)
                call.req.native = None  # the client's own copy is unredacted: translate this one instead
        if outputs or state.vault.restores:
            call.stage_state[self.name] = state
        return None

    async def on_response(self, call: Call, response: ChatResponse) -> ChatResponse:
        state: _State | None = call.stage_state.get(self.name)
        if state is None:
            return response
        choices = []
        for choice in response.choices:
            message = choice.get("message") or {}
            content = message.get("content")
            new = dict(message)
            if isinstance(content, str) and content:
                result = check_output(state.outputs, content, state.vault)
                for d in result.decisions:
                    _merge(state.output, d)
                if result.blocked_by is not None:
                    self._note_output(call, state)
                    raise _blocked(result.blocked_by, "answer")
                new["content"] = result.text
            if message.get("tool_calls") and state.vault.restores:
                new["tool_calls"] = [_restore_call(tc, state.vault) for tc in message["tool_calls"]]
            choices.append({**choice, "message": new})
        self._note_output(call, state)
        return ChatResponse(response.model, choices, response.usage)

    def stream_filter(self, call: Call) -> ChunkFilter | None:
        state: _State | None = call.stage_state.get(self.name)
        if state is None:
            return None
        return _GuardFilter(call, state, self)

    async def on_finish(self, call: Call) -> None:
        state: _State | None = call.stage_state.get(self.name)
        if state is None or state.recorded:
            return
        state.recorded = True
        decisions = list(state.output.values())
        audit.count_passes(state.outputs, "output", decisions)
        audit.record(decisions, state.who)

    async def preview(self, call: Call) -> str | None:
        table = await guardrail_table.get()
        inputs, outputs = table.select(call.route.id, call.key.team_id, call.key.id)
        if not inputs and not outputs:
            return None
        parts = []
        if inputs:
            parts.append("checks the prompt with " + ", ".join(_describe(g) for g in inputs))
        if outputs:
            parts.append("checks the answer with " + ", ".join(_describe(g) for g in outputs))
        return "; ".join(parts)

    def _note_output(self, call: Call, state: _State) -> None:
        if state.output:
            call.annotate(self.name, output=audit.annotation(list(state.output.values())))


def _describe(g: GuardrailInfo) -> str:
    extra = ", restores originals" if g.restore else ""
    broken = ", MISCONFIGURED: fails " + ("closed" if g.fail_closed else "open") if g.broken else ""
    return f"{g.name} ({g.kind}, {g.action}{extra}{broken})"


def _blocked(d: Decision, what: str) -> GuardrailBlocked:
    if d.outcome == "error_blocked":
        message = (f"The {what} was blocked: guardrail '{d.guardrail.name}' could not check it "
                   "and is set to fail closed.")
    else:
        message = f"The {what} was blocked by guardrail '{d.guardrail.name}' ({d.stage})."
    return GuardrailBlocked(message)


def _merge(into: dict[str, Decision], d: Decision) -> None:
    have = into.get(d.guardrail.name)
    if have is None:
        into[d.guardrail.name] = Decision(d.guardrail, d.stage, d.outcome, d.entities.copy())
    else:
        have.entities.update(d.entities)
        if d.enforced_block or d.outcome.startswith("error"):
            have.outcome = d.outcome


def _restore_call(tc: Any, vault: Vault) -> Any:
    fn = tc.get("function") if isinstance(tc, dict) else None
    if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
        return {**tc, "function": {**fn, "arguments": vault.restore(fn["arguments"])}}
    return tc


class _GuardFilter(TextHoldBack):
    """The stream's output check: one StreamCheck per choice, the hold-back bounded by
    GATEWAY_GUARDRAIL_MAX_HOLD characters. A block ends the stream with an error
    event (routing.relay); what was held back is never sent."""

    def __init__(self, call: Call, state: _State, stage: Guardrails) -> None:
        super().__init__(self._process, settings.GATEWAY_GUARDRAIL_MAX_HOLD)
        self.call, self.state, self.stage = call, state, stage
        self.checks: dict[int, StreamCheck] = {}
        self.index = 0

    def _check(self) -> StreamCheck:
        check = self.checks.get(self.index)
        if check is None:
            check = self.checks[self.index] = StreamCheck(self.state.outputs, self.state.vault)
        return check

    def _process(self, buffer: str, final: bool) -> tuple[str, str]:
        check = self.checks.get(self.index)  # self._check(), without a call per chunk
        if check is None:
            check = self._check()
        out = check.process(buffer, final)
        if final:
            check.finish()
        if check.decisions:
            for d in check.decisions.values():
                self.state.output[d.guardrail.name] = d  # the check's own running totals
            self.stage._note_output(self.call, self.state)
        if check.blocked is not None:
            raise _blocked(check.blocked, "answer")
        return out

    def _run(self, index: int, text: str, final: bool) -> str:
        self.index = index
        return super()._run(index, text, final)

    def feed(self, chunk: ChatChunk) -> list[ChatChunk]:
        if self.state.vault.restores:
            chunk = _restore_chunk_calls(chunk, self.state.vault)
        return super().feed(chunk)


def _restore_chunk_calls(chunk: ChatChunk, vault: Vault) -> ChatChunk:
    """Placeholders in streamed tool-call arguments: restored within each delta (a
    placeholder split across argument deltas is not; content is handled in full)."""
    if not any((choice.get("delta") or {}).get("tool_calls") for choice in chunk.choices):
        return chunk  # no tool calls (a text delta): nothing to restore here
    changed = False
    choices = []
    for choice in chunk.choices:
        delta = choice.get("delta") or {}
        calls = delta.get("tool_calls")
        if calls:
            new_calls = [_restore_call(tc, vault) for tc in calls]
            if new_calls != calls:
                changed = True
                choice = {**choice, "delta": {**delta, "tool_calls": new_calls}}
        choices.append(choice)
    return ChatChunk(chunk.model, choices, chunk.usage) if changed else chunk


class _Judging:
    """The classifier's way to ask a route of this gateway (guardrails cannot import
    the pipeline): one chat completion through the full pipeline, under a key of its
    own (prefix "guardrail", no team), bounded by the guardrail's timeout."""

    def __init__(self, call: Call) -> None:
        self.call = call

    async def judge(self, route_name: str, prompt: str, text: str, timeout_s: float) -> str:
        from routing import pipeline
        from routing.catalog import routing_table

        route = (await routing_table.get()).routes.get(route_name)
        if route is None:
            raise CheckFailed(f"the judge route '{route_name}' does not exist or is disabled")
        req = ChatRequest(model=route_name, messages=[{"role": "system", "content": prompt},
                                                      {"role": "user", "content": text}],
                          max_tokens=100, params={"temperature": 0})
        call = await pipeline.plan(judge_key(), req, route)
        async with asyncio.timeout(timeout_s):
            response = await pipeline.complete(call)
        content = (response.choices[0].get("message") or {}).get("content") if response.choices else None
        if not isinstance(content, str):
            raise CheckFailed("the judge gave no text answer")
        return content


def judge_key() -> KeyInfo:
    return KeyInfo(id=None, key_hash="", prefix=JUDGE_PREFIX, name="guardrail judge", team_id=None, team_name="",
                   allowed_route_ids=frozenset(), expires_at=None, revoked=False)
