"""A breaker belongs to one route's use of one model, under that route's policy:
another route's failures never open it, and a route whose rules are switched off
(threshold 0 and rate 0) never opens at all. Before, the breaker was the model's
(`model:<id>`): a strict route's failures took the model out of every route,
including routes whose breaker was switched off."""

from __future__ import annotations

import pytest

from routing.breaker import State
from tests.breaker_helpers import (
    BOTH_STORES,
    answer,
    ask,
    breaker,
    breakers,  # noqa: F401 - fixture
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("breakers")]
PRIMARY, BACKUP = "primary/gpt-4o-mini", "backup/gpt-4o-mini"
OFF = {"breaker_failure_threshold": 0, "breaker_failure_rate": 0}


@pytest.fixture
def shared(fake_openai, fake_openai_b, build):
    """One model (primary) on two routes: "strict" opens after 2 failures, "relaxed"
    has its breaker rules off; both fall back to backup."""
    fake_openai.reply_text = "from primary"
    fake_openai_b.reply_text = "from backup"
    primary = build.model(build.provider(fake_openai, name="primary", timeout_s="2"))
    backup = build.model(build.provider(fake_openai_b, name="backup", timeout_s="2"))
    strict = build.route("strict", primary, backup, breaker_failure_threshold=2, breaker_failure_rate=0,
                         breaker_cooldown_s=60)
    relaxed = build.route("relaxed", primary, backup, **OFF)
    return primary, strict, relaxed


@BOTH_STORES
def test_one_routes_failures_do_not_open_another_routes_breaker_of_the_same_model(
    shared, build, fake_openai, openai_client
):
    primary, strict, relaxed = shared
    client = openai_client(build.key())
    fake_openai.fail(500, times=2)
    assert [answer(ask(client, model="strict")) for _ in range(2)] == ["from backup"] * 2
    assert breaker(primary, strict).state is State.OPEN
    assert ask(client, model="strict").headers["x-gateway-attempt-log"] == f"{BACKUP}=ok"  # out of strict's rotation

    raw = ask(client, model="relaxed")

    assert answer(raw) == "from primary"
    assert raw.headers["x-gateway-attempt-log"] == f"{PRIMARY}=ok"
    assert fake_openai.request_count == 3
    assert breaker(primary, relaxed).state is State.CLOSED


@BOTH_STORES
def test_a_route_whose_breaker_rules_are_off_never_opens(shared, build, fake_openai, openai_client):
    """Neither by its own failures nor while another route's failures open its breaker."""
    primary, strict, relaxed = shared
    client = openai_client(build.key())
    fake_openai.fail(500, times=14)

    raws = []
    for _ in range(6):
        ask(client, model="strict")
        raws += [ask(client, model="relaxed"), ask(client, model="relaxed")]

    assert [answer(r) for r in raws] == ["from backup"] * 12
    assert {r.headers["x-gateway-attempt-log"] for r in raws} == {f"{PRIMARY}=unavailable,{BACKUP}=ok"}
    assert fake_openai.request_count == 2 + 12  # strict stopped after opening; relaxed tried every time
    assert breaker(primary, strict).state is State.OPEN
    status = breaker(primary, relaxed)
    assert (status.state, status.opens, status.consecutive_failures) == (State.CLOSED, 0, 12)
    assert answer(ask(client, model="relaxed")) == "from primary"
