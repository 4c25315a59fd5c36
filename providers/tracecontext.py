"""The W3C `traceparent` of the current upstream attempt, on the provider request.

routing.tracing makes each attempt's client span the current OpenTelemetry span while
the adapter calls, and switches this module on (`use`) when tracing is configured;
off (the default), `outgoing` returns the headers as they are, after one check.
Here rather than in routing because providers imports none of the apps (.importlinter).
"""

from __future__ import annotations

from typing import Any

_propagator: Any = None  # a TextMapPropagator while tracing is on (routing.tracing)


def use(propagator: Any) -> None:
    """Forward traceparent from now on (`propagator`), or no longer (None)."""
    global _propagator
    _propagator = propagator


def outgoing(headers: dict[str, str]) -> dict[str, str]:
    """`headers` plus the current span's traceparent (and tracestate): a copy, since
    adapters may reuse their dicts. The same dict when tracing is off or no span is current."""
    if _propagator is None:
        return headers
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return {**headers, **carrier} if carrier else headers
