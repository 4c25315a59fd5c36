"""The streamed half of the request path (routing.pipeline is the other): open the
stream through the stages and the engine, relay its chunks through the stages'
filters, account and settle it however it ends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from gateway_project.background import spawn
from gateway_project.errors import GatewayError
from providers.types import ChatChunk, ErrorKind, ProviderError

from . import engine, stages, tracing
from .pipeline import Call, Status, _final_decision, _outer, _request_stages
from .stages.streams import Assembler, ChunkFilter, replay


async def open_stream(call: Call) -> Stream:
    """Open the stream (falling back while nothing was sent), then yield every chunk.

    Errors before the first chunk raise GatewayError (the view answers with a proper
    HTTP status); after it, they end the iteration with an error the transport sends
    in-band. Usage is settled when the iteration ends, however it ends — the caller
    must iterate the stream or `aclose()` it (a client gone before the first byte).
    """
    try:
        answer = await _request_stages(call)
        if answer is None:
            await _final_decision(call)
            head, rest = await engine.open_stream(call.run, call.req)
        else:
            head, rest = [], answer.chunks if answer.chunks is not None else replay(answer.response)
    except GatewayError as error:
        await call.settle_error(error)
        raise
    except asyncio.CancelledError:
        call.settle_in_background(Status.CLIENT_CLOSED, 499, "client_closed")
        raise
    filters: list[ChunkFilter] = []
    if stages.active().any_filter:
        filters = [f for s in _outer(call, "stream_filter") if (f := s.stream_filter(call)) is not None]
    assembler = Assembler() if stages.active().any_after and call.after_stages() else None
    return Stream(call, rest, tracing.watch_stream(call, _relay(call, head, rest, filters, assembler)))


class Stream:
    """The chunks of an opened stream (an async iterator). A stream closed before
    anything was read from it is settled too (as `client_closed`), and its upstream
    connection closed: an async generator that never started runs no cleanup."""

    __slots__ = ("call", "_rest", "_chunks", "_started")

    def __init__(self, call: Call, rest: AsyncIterator[ChatChunk], chunks: AsyncIterator[ChatChunk]) -> None:
        self.call, self._rest, self._chunks, self._started = call, rest, chunks, False

    def __aiter__(self) -> Stream:
        return self

    def __anext__(self):
        self._started = True
        return self._chunks.__anext__()  # the generator's own awaitable: no extra frame per chunk

    async def aclose(self) -> None:
        if self._started:
            await self._chunks.aclose()
            return
        self._started = True
        call = self.call
        await _close_quietly(self._rest)
        if call.usage is None:
            call.usage = call.estimated_usage()
        verdict = _stream_verdict(call, "client_closed")  # the provider did answer
        if verdict is not None:
            spawn(verdict)
        call.settle_in_background(Status.CLIENT_CLOSED, 499, "client_closed")


def _through(filters: list[ChunkFilter], chunks: list[ChatChunk], start: int = 0) -> list[ChatChunk]:
    for f in filters[start:]:
        chunks = [out for chunk in chunks for out in f.feed(chunk)]
    return chunks


def _fed(first: ChunkFilter, later: list[ChunkFilter], chunk: ChatChunk) -> list[ChatChunk]:
    """One chunk through every filter (`_through(filters, [chunk])`, without a list per
    filter where a filter passes one chunk on)."""
    chunks = first.feed(chunk)
    for f in later:
        if len(chunks) == 1:
            chunks = f.feed(chunks[0])
        elif chunks:
            chunks = [out for chunk in chunks for out in f.feed(chunk)]
    return chunks


async def _relay(call: Call, head: list[ChatChunk], rest: AsyncIterator[ChatChunk], filters: list[ChunkFilter],
                 assembler: Assembler | None) -> AsyncIterator[ChatChunk]:
    outcome: tuple[str, int, str] = (Status.CLIENT_CLOSED, 499, "client_closed")
    # The head's chunks, then the rest's, each the same way (no generator of its own
    # chaining the two: one step less per chunk).
    first, later = (filters[0], filters[1:]) if filters else (None, [])

    def step(chunk):
        """What one upstream chunk becomes: accounted, assembled, then through the filters."""
        _account(call, chunk)
        if assembler is not None:
            assembler.add(chunk)
        return (chunk,) if first is None else _fed(first, later, chunk)

    try:
        for chunk in head or ():
            for out in step(chunk):
                yield out
        if first is None and assembler is None:
            async for chunk in rest:
                _account(call, chunk)
                yield chunk
        else:
            async for chunk in rest:
                for out in step(chunk):
                    yield out
        for i, f in enumerate(filters):  # what the filters still hold, through the ones after them
            for out in _through(filters, f.flush(), i + 1):
                yield out
        if assembler is not None:
            call.raw_answer = assembler.response()
        outcome = (call.success_status, 200, "")
    except ProviderError as error:
        # Headers (200) are already sent: the client sees an in-band error event.
        outcome = (Status.ERROR, 200, error.kind.value)
        raise
    except stages.Blocked:
        # A stage's filter refused the answer mid-stream (an output guardrail): the
        # client gets an error event, and nothing of what was held back.
        call.blocked = True
        outcome = (Status.BLOCKED, 200, "blocked")
        raise
    except Exception:
        outcome = (Status.ERROR, 200, "internal")
        raise
    finally:
        if call.usage is None:  # cut or abandoned before the provider reported usage
            call.usage = call.estimated_usage()
        await _close_quietly(rest)
        verdict = _stream_verdict(call, outcome[2])
        if outcome[0] == Status.CLIENT_CLOSED:
            # Our task is being torn down: finish the bookkeeping in the background.
            call.settle_in_background(*outcome)
            if verdict is not None:
                spawn(verdict)
        else:
            if verdict is not None:
                await verdict
            await call.settle(*outcome)


def _stream_verdict(call: Call, error_kind: str):
    """The stream's report to the target's breaker (deferred until it ended): a cut
    is a failure; a finished or client-abandoned stream shows a working provider."""
    target = call.run.target
    if target is None or not call.run.calls or error_kind == "internal":
        return None
    if not error_kind and not call.run.probe:
        # A finished stream that was no probe: its success only resets counters, so it
        # goes with the answer's latency in one store step at settlement (as a JSON
        # answer's does: Call.report_after_answer), not as a round trip of its own
        # before the last event.
        call.run.success_unreported = True
        return None
    kind = ErrorKind(error_kind) if error_kind in ErrorKind._value2member_map_ else None
    return engine.report(call.run, target, kind, call.run.probe)


def _account(call: Call, chunk: ChatChunk) -> None:
    if chunk.usage is not None:
        call.usage = chunk.usage
    for choice in chunk.choices:
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content or delta.get("tool_calls"):
            if call.ttft is None:
                call.ttft = time.monotonic() - call.run.started
            if content:
                call.completion_text.append(content)
            for tc in delta.get("tool_calls") or []:
                call.completion_text.append((tc.get("function") or {}).get("arguments") or "")


async def _close_quietly(agen: AsyncIterator) -> None:
    try:
        await agen.aclose()  # closes the upstream connection: no orphaned generation
    except BaseException:  # noqa: BLE001 - teardown of a possibly cancelled stream
        pass


