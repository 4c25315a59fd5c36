"""The request path's stages, in order: every transport runs this list.

The frame around it is fixed (routing.pipeline): the inbound API parses the body
and the route is resolved and decided first; then each stage's `on_request` runs in
this order; then the provider is called (routing.engine: strategy order, breakers,
retries, fallback) unless a stage answered; answers flow back through the stages in
reverse order; the usage record is written last. A new stage is one module (see
base.Stage for the contract) and one line here.
"""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator, Sequence

from .admission import Admission
from .cache import Cache
from .base import Answer, Blocked, Stage
from .guard import Guardrails

__all__ = ["Answer", "Blocked", "Stage", "STAGES", "active", "installed"]

STAGES: tuple[Stage, ...] = (
    Admission(),  # rate limits + budget reservation, one atomic store step; settled at the end
    Guardrails(),  # the prompt before it leaves (redact/block/flag), the answer before the client sees it
    Cache(),  # innermost: exact and semantic answers per tenant, identical requests coalesced
)


class _Active:
    """The list in use, with per-hook sublists so a hook costs nothing where unused."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.all = tuple(stages)
        names = [s.name for s in self.all]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique: {names}")
        self.requesting = tuple(s for s in self.all if s.overrides("on_request"))
        self.any_response = any(s.overrides("on_response") for s in self.all)
        self.any_filter = any(s.overrides("stream_filter") for s in self.all)
        self.any_finish = any(s.overrides("on_finish") for s in self.all)
        self.any_after = any(s.overrides("after_answer") for s in self.all)


_active = _Active(STAGES)


def active() -> _Active:
    return _active


@contextmanager
def installed(stages: Sequence[Stage]) -> Iterator[None]:
    """Run with another stage list (tests, or a deployment that composes its own);
    restores the previous list on exit."""
    global _active
    previous, _active = _active, _Active(stages)
    try:
        yield
    finally:
        _active = previous
