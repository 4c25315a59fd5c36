"""The stage contract: one step of the request path that every transport runs.

A stage overrides only the hooks it needs; the pipeline (routing.pipeline) calls
each hook only on the stages that override it, so a stage costs nothing on the
paths it does not touch. Hooks, in the order the pipeline calls them:

    on_request(call)            before any provider call, in list order. A stage may
                                - reject: raise a GatewayError. `Blocked` (a policy's
                                  refusal, e.g. a guardrail) is recorded with status
                                  `blocked`; any other error (e.g. a rate limit) is a
                                  refusal before admission and writes no usage record;
                                - rewrite: change `call.req` (e.g. redact messages);
                                - answer: return an `Answer`; no provider is called,
                                  the stages after it are skipped, the usage record
                                  gets the answer's status (e.g. `cache_hit`).
    on_response(call, resp)     a complete (non-stream) answer, in reverse list order
                                over the stages whose on_request ran (onion: a cache
                                hit still passes the output guardrails before it).
    stream_filter(call)         for streams: a ChunkFilter (streams.py) that transforms
                                the stream chunk by chunk with a bounded hold-back;
                                filters apply in the same reverse order.
    on_finish(call)             exactly once for every stage whose on_request returned
                                (answered or not), however the request ended: release
                                what the stage holds (a budget reservation).
    after_answer(call, resp)    after a successful answer was delivered and recorded,
                                off the response path (in the background): e.g. store
                                it in a cache. `resp` is the answer as the provider (or
                                answering stage) gave it, streams assembled.
    wants_answer(call)          whether after_answer wants this request (default yes):
                                asked once the request stages ran.
    preview(call)               for the admin's dry run: what the stage would do with
                                this request, in a sentence, without side effects.

Each stage may add response headers (`call.headers`) and notes to the usage record
(`call.annotate(stage, **values)`: the record's `annotations` column).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from gateway_project.errors import GatewayError
from providers.types import ChatChunk, ChatResponse

if TYPE_CHECKING:  # the pipeline imports the stages; stages see Call only as a type
    from routing.pipeline import Call

    from .streams import ChunkFilter


class Blocked(GatewayError):
    """A stage's policy refused the request (OpenAI format, 400 by default).
    The request is recorded with status `blocked` and its reservation released."""

    status = 400
    code = "request_blocked"


@dataclass(slots=True)
class Answer:
    """A stage's answer that needs no provider (e.g. a cache hit).

    `response` is the complete answer; a stream may instead be answered by `chunks`
    (e.g. a request in flight relayed as it arrives), with `response` None. `status`
    is the usage record's status (a billing.models.UsageRecord.Status value); `cost`
    what the answer cost (usually 0: no provider was paid); `saved` what a provider
    would have charged for it (the cache's savings)."""

    response: ChatResponse | None
    status: str
    cost: Decimal = Decimal(0)
    saved: Decimal = Decimal(0)
    chunks: AsyncIterator[ChatChunk] | None = None


HOOKS = ("on_request", "on_response", "stream_filter", "on_finish", "after_answer", "preview")


class Stage:
    """Base of all stages; every hook is optional (see the module docstring)."""

    name: ClassVar[str] = "stage"
    _hooks: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        # Which hooks this class implements, decided once (the pipeline asks per request).
        cls._hooks = frozenset(h for h in HOOKS if getattr(cls, h) is not getattr(Stage, h))

    async def on_request(self, call: Call) -> Answer | None:
        return None

    async def on_response(self, call: Call, response: ChatResponse) -> ChatResponse:
        return response

    def stream_filter(self, call: Call) -> ChunkFilter | None:
        return None

    async def on_finish(self, call: Call) -> None:
        return None

    async def after_answer(self, call: Call, response: ChatResponse) -> None:
        return None

    async def preview(self, call: Call) -> str | None:
        return None

    def wants_answer(self, call: Call) -> bool:
        """Does this request's answer go to after_answer? (Asked only of stages that
        implement it; False spares a stream its assembly and the request a task.)"""
        return True

    def overrides(self, hook: str) -> bool:
        """Does this stage implement `hook` (the pipeline skips the ones that do not)?"""
        return hook in self._hooks

    def __repr__(self) -> str:
        return f"<stage {self.name}>"
