"""Detectors: pure functions that find sensitive spans in text.

Every detector has the same two functions (see `base.Detector`):

    find(text)  -> list[Finding]   spans of `text` that are findings, sorted, non-overlapping
    hold(text)  -> int             how many characters at the end of `text` could still
                                   become (or extend) a finding if more text followed;
                                   0 when the tail is safe to release (streams hold
                                   back only this much, see guardrails.engine)

They keep no state, touch no database and never log what they find.
"""

from __future__ import annotations

from .base import Detector, Finding

__all__ = ["Detector", "Finding"]
