"""What the provider tests ask of an answer through the official SDKs: its one usage
record, and a stream's chunks with their joined text."""

from __future__ import annotations

import time

from billing.models import UsageRecord
from tests.conftest import wait_for


def only_record() -> UsageRecord:
    """The request's usage record, checked to be the only one."""
    assert wait_for(lambda: UsageRecord.objects.count() >= 1)
    time.sleep(0.05)  # a second (double) record would show up by now
    return UsageRecord.objects.get()


def streamed(stream) -> tuple[list, str]:
    """(every chunk, the text of their first choices' deltas joined)."""
    chunks = list(stream)
    return chunks, "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
