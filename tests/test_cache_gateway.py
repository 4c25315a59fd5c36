"""The exact answer cache through a running gateway, with the official OpenAI SDK as
the client and a fake provider that counts what it receives: hits and misses, what
is (not) cacheable, tenant isolation, normalisation, the client's bypass/refresh,
TTL expiry, streamed replay, coalescing of identical requests in flight, a failing
leader, guardrails on cached answers, the usage records and the metrics."""

from __future__ import annotations

import json
import threading
import time
from decimal import Decimal

import httpx
import pytest
from prometheus_client import REGISTRY

from billing.models import Team, UsageRecord
from guardrails.models import Guardrail
from routing.models import Route
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
Status = UsageRecord.Status
Q = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def cached(fake_openai, build, openai_client):
    route, _ = build.openai_route(fake_openai, cache_mode="exact", cache_ttl_s=60)
    return fake_openai, openai_client(build.key()), route


def ask(client, messages=Q, **kw):
    kw.setdefault("temperature", 0)
    return client.chat.completions.with_raw_response.create(model="chat-default", messages=messages, **kw)


def text_of(raw) -> str:
    return raw.parse().choices[0].message.content


def stream(client, messages=Q, **kw):
    kw.setdefault("temperature", 0)
    with client.chat.completions.with_streaming_response.create(
            model="chat-default", messages=messages, stream=True, stream_options={"include_usage": True},
            **kw) as response:
        chunks = list(response.parse())
    return chunks, response


def counter(result: str, route: str = "chat-default") -> float:
    return REGISTRY.get_sample_value("gateway_cache_requests_total", {"route": route, "result": result}) or 0.0


def records(n: int) -> list[UsageRecord]:
    return wait_for(lambda: (rows := list(UsageRecord.objects.order_by("created_at", "id"))) and len(rows) >= n and rows)


def test_the_second_identical_request_is_a_free_hit_recorded_as_such(cached):
    fake, client, _ = cached
    fake.reply("Paris.", prompt_tokens=1000, completion_tokens=200)
    hits_before = counter("hit")
    first = ask(client)
    assert first.headers["x-gateway-cache"] == "miss" and text_of(first) == "Paris."
    wait_for(lambda: UsageRecord.objects.count() == 1)
    time.sleep(0.05)  # the answer is stored right after the record (after_answer, in the background)
    second = wait_for(lambda: (r := ask(client)).headers["x-gateway-cache"] == "hit" and r)
    assert text_of(second) == "Paris."
    assert int(second.headers["x-gateway-cache-age"]) >= 0
    assert second.headers["x-gateway-cost-usd"] == "0"
    assert fake.request_count == 1
    miss, hit = records(2)[:2]
    assert (miss.status, hit.status) == (Status.SUCCESS, Status.CACHE_HIT)
    assert miss.cost_usd == Decimal("0.00027")  # 1000 x 0.15 + 200 x 0.60 per 1M
    assert hit.cost_usd == 0 and hit.baseline_cost_usd == 0  # no routing saving claimed
    assert (hit.prompt_tokens, hit.completion_tokens) == (1000, 200)
    assert hit.annotations["cache"]["result"] == "hit"
    assert Decimal(hit.annotations["cache"]["saved_usd"]) == Decimal("0.00027")
    assert hit.cache_saved_usd == Decimal("0.00027")
    assert counter("hit") == hits_before + 1


@pytest.mark.parametrize("kw, reason", [
    ({"temperature": 0.7}, "temperature"),
    ({"temperature": None}, "temperature"),
    ({"n": 2}, "n"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}, "tools"),
])
def test_a_request_that_is_not_cacheable_is_answered_with_the_reason(cached, kw, reason):
    fake, client, _ = cached
    kw = {"temperature": 0, **kw}
    kw = {k: v for k, v in kw.items() if v is not None}  # None: not sent at all
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="chat-default", messages=Q, **kw)
        assert raw.headers["x-gateway-cache"] == "bypass"
        assert raw.headers["x-gateway-cache-reason"] == reason
    assert fake.request_count == 2


def test_a_long_conversation_is_not_cached(fake_openai, build, openai_client):
    build.openai_route(fake_openai, cache_mode="exact", cache_max_messages=2)
    client = openai_client(build.key())
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    raw = ask(client, messages)
    assert (raw.headers["x-gateway-cache"], raw.headers["x-gateway-cache-reason"]) == ("bypass", "messages")


def test_sampled_requests_are_cached_when_the_route_opts_in(fake_openai, build, openai_client):
    build.openai_route(fake_openai, cache_mode="exact", cache_only_deterministic=False)
    client = openai_client(build.key())
    ask(client, temperature=0.9)
    wait_for(lambda: ask(client, temperature=0.9).headers["x-gateway-cache"] == "hit")
    assert ask(client, temperature=0.8).headers["x-gateway-cache"] == "miss"  # another parameter, another key


def test_answers_never_cross_teams_but_are_shared_inside_one(fake_openai, build, openai_client):
    build.openai_route(fake_openai, cache_mode="exact")
    red, blue = Team.objects.create(name="red"), Team.objects.create(name="blue")
    red1, red2 = openai_client(build.key("r1", team=red)), openai_client(build.key("r2", team=red))
    blue1 = openai_client(build.key("b1", team=blue))
    fake = fake_openai
    fake.reply("red secret")
    assert text_of(ask(red1)) == "red secret"
    wait_for(lambda: ask(red2).headers["x-gateway-cache"] == "hit")
    fake.reply("blue answer")
    other = ask(blue1)
    assert other.headers["x-gateway-cache"] == "miss" and text_of(other) == "blue answer"


def test_key_scope_separates_keys_of_the_same_team(fake_openai, build, openai_client):
    build.openai_route(fake_openai, cache_mode="exact", cache_scope="key")
    team = Team.objects.create(name="t")
    a, b = openai_client(build.key("a", team=team)), openai_client(build.key("b", team=team))
    ask(a)
    wait_for(lambda: ask(a).headers["x-gateway-cache"] == "hit")
    assert ask(b).headers["x-gateway-cache"] == "miss"


def test_keys_without_a_team_do_not_share_a_team_scoped_cache(fake_openai, build, openai_client):
    build.openai_route(fake_openai, cache_mode="exact")
    a, b = openai_client(build.key("a")), openai_client(build.key("b"))
    ask(a)
    wait_for(lambda: ask(a).headers["x-gateway-cache"] == "hit")
    assert ask(b).headers["x-gateway-cache"] == "miss"


def test_formatting_key_order_and_spelling_do_not_change_the_key(cached, gateway):
    fake, client, _ = cached
    key = client.api_key
    url = f"{gateway}/v1/chat/completions"
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    first = json.dumps({"model": "chat-default", "temperature": 0, "max_tokens": 50,
                        "messages": [{"role": "user", "content": "  Hi there  "}]})
    assert httpx.post(url, content=first, headers=headers).headers["x-gateway-cache"] == "miss"
    wait_for(lambda: UsageRecord.objects.count() == 1)
    variants = [
        '{\n  "messages" : [ { "content" : "Hi there", "role" : "user" } ],\n  "max_tokens": 50, "temperature": 0.0,'
        ' "model": "chat-default" }',
        json.dumps({"model": "chat-default", "max_completion_tokens": 50, "temperature": 0,
                    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi there"}]}]}),
        json.dumps({"model": "chat-default", "temperature": 0, "max_tokens": 50, "user": "someone",
                    "messages": [{"role": "user", "content": "Hi there"}]}),
    ]
    wait_for(lambda: httpx.post(url, content=variants[0], headers=headers).headers["x-gateway-cache"] == "hit")
    for body in variants[1:]:
        assert httpx.post(url, content=body, headers=headers).headers["x-gateway-cache"] == "hit", body
    changed = json.dumps({"model": "chat-default", "temperature": 0, "max_tokens": 51,
                          "messages": [{"role": "user", "content": "Hi there"}]})
    assert httpx.post(url, content=changed, headers=headers).headers["x-gateway-cache"] == "miss"
    assert fake.request_count == 2


def test_bypass_skips_lookup_and_store_refresh_skips_lookup_and_stores(cached):
    fake, client, _ = cached
    fake.reply("old")
    ask(client)
    wait_for(lambda: ask(client).headers["x-gateway-cache"] == "hit")
    fake.reply("bypassed")
    raw = ask(client, extra_headers={"x-gateway-cache": "bypass"})
    assert (raw.headers["x-gateway-cache"], text_of(raw)) == ("bypass", "bypassed")
    assert text_of(ask(client)) == "old"  # the bypass stored nothing
    fake.reply("new")
    raw = ask(client, extra_headers={"x-gateway-cache": "refresh"})
    assert (raw.headers["x-gateway-cache"], raw.headers["x-gateway-cache-reason"], text_of(raw)) == ("miss", "refresh", "new")
    wait_for(lambda: text_of(ask(client)) == "new")


def test_an_unknown_cache_header_is_a_clear_400(cached):
    _, client, _ = cached
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, extra_headers={"x-gateway-cache": "sometimes"})
    assert caught.value.body["code"] == "invalid_cache_control"
    assert "bypass" in caught.value.body["message"]


def test_answers_expire_after_their_ttl(fake_openai, build, openai_client):
    build.openai_route(fake_openai, cache_mode="exact", cache_ttl_s=1)
    client = openai_client(build.key())
    ask(client)
    wait_for(lambda: ask(client).headers["x-gateway-cache"] == "hit")
    time.sleep(1.1)
    assert ask(client).headers["x-gateway-cache"] == "miss"


def test_purge_raises_the_epoch_and_nothing_older_is_served(cached):
    fake, client, route = cached
    ask(client)
    wait_for(lambda: ask(client).headers["x-gateway-cache"] == "hit")
    from routing.cache.purge import purge_route

    purge_route(route)
    assert Route.objects.get(pk=route.pk).cache_epoch == 1
    assert ask(client).headers["x-gateway-cache"] == "miss"


def test_a_streamed_answer_is_stored_and_replayed_as_a_stream(cached):
    fake, client, _ = cached
    fake.reply("The capital is Paris.", prompt_tokens=12, completion_tokens=5)
    chunks, response = stream(client)
    assert response.headers["x-gateway-cache"] == "miss"
    wait_for(lambda: UsageRecord.objects.count() == 1)

    def replayed():
        got, resp = stream(client)
        return resp.headers["x-gateway-cache"] == "hit" and (got, resp)

    chunks, response = wait_for(replayed)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "The capital is Paris."
    assert chunks[-1].usage.prompt_tokens == 12 and chunks[-1].usage.completion_tokens == 5
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    # and a non-streamed request is served from the streamed answer
    assert text_of(ask(client)) == "The capital is Paris."
    assert fake.request_count == 1
    hit = wait_for(lambda: UsageRecord.objects.filter(status=Status.CACHE_HIT, stream=True).first())
    assert hit.completion_tokens == 5 and hit.cost_usd == 0


def _concurrently(n: int, fn) -> list:
    results: list = [None] * n
    errors: list = []

    def run(i):
        try:
            results[i] = fn()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return results


@pytest.mark.parametrize("streamed", [False, True])
def test_identical_requests_in_flight_make_one_upstream_call(cached, streamed):
    fake, client, _ = cached
    fake.hang(0.6)
    if streamed:
        results = _concurrently(8, lambda: stream(client))
        texts = {"".join(c.choices[0].delta.content or "" for c in chunks if c.choices) for chunks, _ in results}
        states = sorted(r.headers["x-gateway-cache"] for _, r in results)
    else:
        results = _concurrently(8, lambda: ask(client))
        texts = {text_of(r) for r in results}
        states = sorted(r.headers["x-gateway-cache"] for r in results)
    assert fake.request_count == 1
    assert len(texts) == 1  # everyone got the one answer
    assert states == ["hit"] * 7 + ["miss"]
    rows = records(8)
    assert sorted(r.status for r in rows) == [Status.CACHE_HIT] * 7 + [Status.SUCCESS]
    paid = rows[[r.status for r in rows].index(Status.SUCCESS)].cost_usd
    assert sum(r.cost_usd for r in rows) == paid
    assert all(r.cache_saved_usd == paid for r in rows if r.status == Status.CACHE_HIT)  # each follower's saving


def test_a_failing_leader_is_not_cached_and_its_followers_retry_as_one(fake_openai, build, openai_client):
    provider = build.provider(fake_openai, timeout_s="0.4")
    build.route("chat-default", build.model(provider), cache_mode="exact")
    client = openai_client(build.key())
    fake_openai.hang(2.0)  # the leader's call times out; nobody else called the provider meanwhile
    results = _concurrently(5, lambda: _ask_or_error(client))
    assert sorted(results) == ["error"] + ["ok"] * 4
    assert fake_openai.request_count == 2  # the failed leader's call, then one retry for all four
    rows = records(5)
    assert sorted(r.status for r in rows) == [Status.CACHE_HIT] * 3 + [Status.ERROR, Status.SUCCESS]


def _ask_or_error(client):
    import openai

    try:
        ask(client)
        return "ok"
    except openai.APIError:
        return "error"


def test_an_answer_blocked_by_an_output_guardrail_is_not_stored(cached):
    fake, client, _ = cached
    g = Guardrail.objects.create(name="no-secrets", kind="keywords", stage="output", action="block",
                                 params={"words": ["forbidden"]})
    g.full_clean()
    fake.reply("this is forbidden text")
    import openai

    with pytest.raises(openai.BadRequestError):
        ask(client)
    fake.reply("fine text")
    raw = ask(client)
    assert raw.headers["x-gateway-cache"] == "miss" and text_of(raw) == "fine text"
    assert fake.request_count == 2


def test_a_cached_answer_passes_the_output_guardrails_again(cached):
    fake, client, _ = cached
    fake.reply("mail me at someone@example.com")
    assert text_of(ask(client)) == "mail me at someone@example.com"
    wait_for(lambda: ask(client).headers["x-gateway-cache"] == "hit")
    g = Guardrail.objects.create(name="pii-out", kind="pii", stage="output", action="redact",
                                 params={"entities": ["email"]})
    g.full_clean()
    from guardrails.policy import guardrail_table

    guardrail_table.invalidate()
    raw = ask(client)
    assert raw.headers["x-gateway-cache"] == "hit"
    assert "someone@example.com" not in text_of(raw)
