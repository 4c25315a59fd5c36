"""How fresh a page's figures are: the "Figures as of ..." line of every report page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .live import Live


@dataclass(frozen=True)
class Freshness:
    as_of: datetime | None  # now when anything was read live, else the newest rollup's time
    rolled_up_at: datetime | None  # when the newest rollup of the range's days ran
    live: bool  # part of the range was read straight from the ledger
    live_requests: int  # how many requests that part holds
    includes_today: bool
    today_since: datetime | None  # where today's live part starts

    @classmethod
    def of(cls, live: Live) -> Freshness:
        cov = live.coverage
        today = live.as_of.astimezone(UTC).date()
        read_live = bool(cov.windows())
        return cls(
            as_of=live.as_of if read_live else cov.rolled_up_at,
            rolled_up_at=cov.rolled_up_at,
            live=read_live,
            live_requests=live.requests,
            includes_today=cov.start <= today <= cov.end,
            today_since=live.today_since,
        )
