"""One contract, two stores, budgets: slots seeded once from the ledger, reservations
that fit exactly and all-or-nothing across slots, settling, resets and exact amounts;
then the in-process expiry, Redis round trips and ledger unit conversion.

Both stores run every `env` test (see tests/limits_helpers.py).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from billing.limits import InProcessLimitStore, RateLimit, Reservation, SlotUsage, from_units, to_units
from tests.limits_helpers import (
    KEY,
    FakeClock,
    env,  # noqa: F401 - fixture
    redis_only,
    redis_store,  # noqa: F401 - fixture
    slot,
)


# --- budgets -----------------------------------------------------------------------
async def test_seeding_reads_the_ledger_once(env):
    calls = []

    async def load(key: str) -> int:
        calls.append(key)
        return 420

    s = slot()
    assert await env.store.usage([s]) == {s.key: SlotUsage(0, 0)}
    await env.store.ensure_seeded([s], load)
    await env.store.ensure_seeded([s], load)
    assert calls == [s.key]
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=420, reserved=0)}


async def test_concurrent_seeders_do_not_add_up(env):
    s, other = slot(), slot("budget:8:2026-11")

    def loader(value: int, delay: float):
        async def load(key: str) -> int:
            await asyncio.sleep(delay)  # both read the ledger before either stores
            return value

        return load

    await asyncio.gather(
        env.store.ensure_seeded([s], loader(100, 0.02)), env.store.ensure_seeded([s], loader(200, 0.01))
    )
    assert (await env.store.usage([s]))[s.key] in (SlotUsage(100, 0), SlotUsage(200, 0))
    await env.store.ensure_seeded([s, other], loader(999, 0))  # only the unseeded one loads
    assert (await env.store.usage([s, other]))[other.key] == SlotUsage(999, 0)


async def test_concurrent_reservations_fit_exactly(env):
    s = slot(limit=1000)
    await env.seed([s])
    results = await asyncio.gather(*(env.store.reserve([s], 27) for _ in range(100)))
    accepted = [r for r in results if r.ok]
    assert len(accepted) == 1000 // 27 == 37
    assert all(r == Reservation(ok=False, refused=s.key, amount=0) for r in results if not r.ok)
    assert all(r.amount == 27 for r in accepted)
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=0, reserved=37 * 27)}


async def test_alert_only_slots_count_but_never_refuse(env):
    alert = slot("budget:alert", limit=10, blocking=False)
    await env.seed([alert], spent=50)
    held = await env.store.reserve([alert], 100)
    assert held.ok
    assert await env.store.settle([alert], held.lease, 80) == {alert.key: SlotUsage(spent=130, reserved=0)}


async def test_reserve_over_two_slots_is_all_or_nothing(env):
    key, team = slot("budget:key", limit=100), slot("budget:team", limit=50)
    await env.seed([key, team], spent=40)
    refused = await env.store.reserve([key, team], 20)
    assert refused == Reservation(ok=False, refused=team.key, amount=0)
    assert await env.store.usage([key, team]) == {key.key: SlotUsage(40, 0), team.key: SlotUsage(40, 0)}
    assert (await env.store.reserve([key, team], 10)).ok  # exactly at the limit is fine
    assert await env.store.usage([key, team]) == {key.key: SlotUsage(40, 10), team.key: SlotUsage(40, 10)}
    alert_team = slot("budget:team-alert", limit=50, blocking=False)
    await env.seed([alert_team], spent=40)
    assert (await env.store.reserve([key, alert_team], 50)).ok  # only blocking slots refuse
    assert (await env.store.reserve([key, alert_team], 1)) == Reservation(ok=False, refused=key.key, amount=0)


async def test_settle_moves_reserved_into_spent(env):
    s = slot(limit=200)
    await env.seed([s], spent=100)
    held = await env.store.reserve([s], 50)
    assert held.ok
    assert await env.store.settle([s], held.lease, 30) == {s.key: SlotUsage(spent=130, reserved=0)}
    assert (await env.store.reserve([s], 70)).ok
    assert not (await env.store.reserve([s], 1)).ok


async def test_settling_below_the_estimate_frees_the_difference(env):
    s = slot(limit=100)
    await env.seed([s])
    first = await env.store.reserve([s], 60)
    assert first.ok
    assert not (await env.store.reserve([s], 60)).ok
    await env.store.settle([s], first.lease, 20)
    second = await env.store.reserve([s], 60)
    assert second.ok
    assert not (await env.store.reserve([s], 21)).ok
    assert await env.store.settle([s], second.lease, 0) == {s.key: SlotUsage(spent=20, reserved=0)}


async def test_reset_slot_forgets_and_reseeds(env):
    s = slot()
    await env.seed([s], spent=700)
    held = await env.store.reserve([s], 100)
    await env.store.reset_slot(s.key)
    assert await env.store.usage([s]) == {s.key: SlotUsage(0, 0)}
    # the in-flight request settles against the forgotten slot: nothing is recreated,
    # its cost is in the ledger the next seed reads
    assert await env.store.settle([s], held.lease, 90) == {s.key: SlotUsage(0, 0)}
    await env.seed([s], spent=790)
    assert await env.store.usage([s]) == {s.key: SlotUsage(790, 0)}
    await env.store.reset_slot("budget:never-seen")  # harmless


async def test_an_unseeded_slot_counts_reservations_but_not_spend(env):
    s = slot(limit=100)
    held = await env.store.reserve([s], 60)
    assert held.ok
    assert await env.store.settle([s], held.lease, 50) == {s.key: SlotUsage(spent=0, reserved=0)}
    await env.seed([s], spent=50)  # the ledger, holding that cost, seeds it
    assert await env.store.usage([s]) == {s.key: SlotUsage(50, 0)}


async def test_amounts_beyond_double_precision_stay_exact(env):
    limit = to_units(Decimal("900000000"))  # 9e18 units: far beyond 2**53, still an int64
    s = slot(limit=limit)
    await env.seed([s], spent=limit - 3)
    two = await env.store.reserve([s], 2)
    assert two.ok
    assert not (await env.store.reserve([s], 2)).ok
    one = await env.store.reserve([s], 1)
    assert one.ok
    assert (await env.store.reserve([s], 0)).ok  # exactly at the limit: a zero estimate still fits
    await env.store.settle([s], two.lease, 2)
    assert await env.store.settle([s], one.lease, 1) == {s.key: SlotUsage(spent=limit, reserved=0)}
    assert not (await env.store.reserve([s], 1)).ok
    assert from_units((await env.store.usage([s]))[s.key].spent) == Decimal("900000000")


async def test_bad_amounts_are_refused(env):
    s = slot()
    for call in (env.store.reserve([s], -1), env.store.hit([], -5), env.store.settle([s], None, 1.5),
                 env.store.reserve([s], 1, lease_s=0)):
        with pytest.raises(ValueError):
            await call
    with pytest.raises(ValueError):
        await env.store.reserve([s], 1.5)


# --- leases: a reservation whose holder never settles expires by itself --------------------
async def test_an_unsettled_reservation_expires_after_its_lease(env):
    s = slot(limit=100)
    await env.seed([s], spent=10)
    dead = await env.store.reserve([s], 90, lease_s=30)  # its process dies: never settled
    assert dead.ok and dead.lease
    assert not (await env.store.reserve([s], 1, lease_s=30)).ok  # the budget is blocked meanwhile
    env.advance(29)
    assert not (await env.store.reserve([s], 1, lease_s=30)).ok
    env.advance(1)
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=10, reserved=0)}
    alive = await env.store.reserve([s], 90, lease_s=30)
    assert alive.ok  # usable again, and the spend so far still counts
    # the dead holder settling late (it was only slow) releases nothing twice: alive's hold stays
    assert await env.store.settle([s], dead.lease, 0) == {s.key: SlotUsage(spent=10, reserved=90)}
    assert await env.store.settle([s], alive.lease, 5) == {s.key: SlotUsage(spent=15, reserved=0)}


async def test_admit_reserves_under_a_lease_too(env):
    s = slot(limit=100)
    limits = [RateLimit(KEY, requests_per_minute=None, tokens_per_minute=None)]

    async def load(key: str) -> int:
        return 0

    held = await env.store.admit(limits, 0, [s], 100, load, lease_s=5)
    assert held.ok and held.reservation.lease
    assert not (await env.store.admit(limits, 0, [s], 1, load, lease_s=5)).ok
    env.advance(5)
    assert (await env.store.admit(limits, 0, [s], 100, load, lease_s=5)).ok


async def test_leases_over_two_slots_expire_on_both(env):
    key, team = slot("budget:key", limit=100), slot("budget:team", limit=100)
    await env.seed([key, team])
    await env.store.reserve([key, team], 70, lease_s=10)
    settled = await env.store.reserve([key, team], 20, lease_s=60)
    env.advance(10)
    assert await env.store.usage([key, team]) == {key.key: SlotUsage(0, 20), team.key: SlotUsage(0, 20)}
    await env.store.settle([key, team], settled.lease, 20)
    env.advance(60)  # an already settled lease expiring changes nothing
    assert await env.store.usage([key, team]) == {key.key: SlotUsage(20, 0), team.key: SlotUsage(20, 0)}


async def test_many_leases_expire_together(env):
    s = slot(limit=10_000)
    await env.seed([s])
    await asyncio.gather(*(env.store.reserve([s], 7, lease_s=1 + (i % 3)) for i in range(300)))
    kept = await env.store.reserve([s], 9, lease_s=100)
    env.advance(3)
    assert await env.store.usage([s]) == {s.key: SlotUsage(0, 9)}
    assert await env.store.settle([s], kept.lease, 9) == {s.key: SlotUsage(9, 0)}


# --- renewal: a holder that runs longer than its lease (a long stream) keeps it ------------
async def test_a_renewed_lease_survives_past_its_original_expiry(env):
    s = slot(limit=100)
    await env.seed([s], spent=10)
    held = await env.store.reserve([s], 90, lease_s=30)
    env.advance(20)
    assert await env.store.renew([s], held.lease, 30) is True  # now expires 50 s after the reservation
    env.advance(20)  # 40 s: past the original expiry
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=10, reserved=90)}
    assert not (await env.store.reserve([s], 1, lease_s=30)).ok  # still protected
    env.advance(10)  # 50 s: not renewed again, so it expires after all
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=10, reserved=0)}
    assert (await env.store.reserve([s], 90, lease_s=30)).ok


async def test_a_settled_or_expired_lease_is_not_renewed(env):
    s = slot(limit=100)
    await env.seed([s])
    settled = await env.store.reserve([s], 40, lease_s=30)
    await env.store.settle([s], settled.lease, 40)
    assert await env.store.renew([s], settled.lease, 30) is False
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=40, reserved=0)}
    expired = await env.store.reserve([s], 60, lease_s=5)
    env.advance(5)
    assert await env.store.renew([s], expired.lease, 30) is False  # gone: never brought back
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=40, reserved=0)}
    assert (await env.store.reserve([s], 60, lease_s=30)).ok  # the money it held is free
    assert await env.store.renew([s], "not-a-lease", 30) is False
    assert await env.store.renew([], expired.lease, 30) is False
    with pytest.raises(ValueError):
        await env.store.renew([s], settled.lease, 0)


async def test_renewing_one_lease_leaves_the_others_alone(env):
    key, team = slot("budget:key", limit=1000), slot("budget:team", limit=1000)
    await env.seed([key, team])
    mine = await env.store.reserve([key, team], 30, lease_s=10)
    other = await env.store.reserve([key, team], 50, lease_s=10)
    assert await env.store.renew([key, team], mine.lease, 60) is True
    assert await env.store.renew([key, team], mine.lease, 1) is True  # a shorter renewal never shortens
    env.advance(10)  # `other` expires on its own schedule; `mine` holds on both slots
    assert await env.store.usage([key, team]) == {key.key: SlotUsage(0, 30), team.key: SlotUsage(0, 30)}
    assert await env.store.renew([key, team], other.lease, 60) is False
    await env.store.reset_slot(team.key)  # a budget edit forgets one slot: the other is still held
    assert await env.store.renew([key, team], mine.lease, 60) is True
    env.advance(55)
    assert await env.store.usage([key, team]) == {key.key: SlotUsage(0, 30), team.key: SlotUsage(0, 0)}
    assert await env.store.settle([key, team], mine.lease, 30) == {key.key: SlotUsage(30, 0), team.key: SlotUsage(0, 0)}


# --- settlement never lowers spend, whatever a provider reports ------------------------------
async def test_negative_actual_cost_never_lowers_spend(env):
    s = slot(limit=100)
    await env.seed([s], spent=40)
    held = await env.store.reserve([s], 30)
    assert await env.store.settle([s], held.lease, -10**18) == {s.key: SlotUsage(spent=40, reserved=0)}
    assert await env.store.settle_all([], None, 0, [s], None, -1) == {s.key: SlotUsage(spent=40, reserved=0)}
    assert not (await env.store.reserve([s], 61)).ok  # the refused "refund" did not free budget


async def test_settling_releases_only_what_the_lease_held(env):
    s = slot(limit=100)
    await env.seed([s])
    mine = await env.store.reserve([s], 30)
    other = await env.store.reserve([s], 50)
    # a caller claiming more than it reserved, or a lease that does not exist, frees nothing else
    forged = await env.store.settle([s], "not-a-lease", 0)
    assert forged == {s.key: SlotUsage(spent=0, reserved=80)}
    assert await env.store.settle([s], mine.lease, 0) == {s.key: SlotUsage(spent=0, reserved=50)}
    assert await env.store.settle([s], mine.lease, 0) == {s.key: SlotUsage(spent=0, reserved=50)}  # twice: once
    assert await env.store.settle([s], other.lease, 1) == {s.key: SlotUsage(spent=1, reserved=0)}


async def test_a_negative_seed_counts_as_zero(env):
    s = slot(limit=100)
    await env.seed([s], spent=-500)  # a ledger holding bad rows must not hand out budget
    assert await env.store.usage([s]) == {s.key: SlotUsage(0, 0)}
    assert not (await env.store.reserve([s], 101)).ok


# --- store specifics -----------------------------------------------------------------
def test_in_process_slots_expire_with_their_ttl():
    clock = FakeClock()
    store = InProcessLimitStore(clock=clock)
    s = slot(ttl_s=100)

    async def scenario() -> None:
        async def load(key: str) -> int:
            return 5

        await store.ensure_seeded([s], load)
        clock.now += 99
        await store.reserve([s], 1)  # a write refreshes the expiry
        clock.now += 99
        assert await store.usage([s]) == {s.key: SlotUsage(5, 1)}
        clock.now += 1
        assert await store.usage([s]) == {s.key: SlotUsage(0, 0)}

    asyncio.run(scenario())


@redis_only
async def test_redis_usage_takes_one_round_trip(redis_store, redis_sends):
    slots = [slot(f"budget:{i}") for i in range(20)]
    await redis_store.usage(slots)  # warm up: the connection handshake
    sends = redis_sends
    sends.clear()  # count from here: the warm-up above opened the connection and loaded scripts
    assert len(await redis_store.usage(slots)) == 20
    assert len(sends) == 1


@redis_only
async def test_redis_renew_takes_one_round_trip(redis_store, redis_sends):
    slots = [slot(f"budget:{i}") for i in range(3)]
    held = await redis_store.reserve(slots, 5, lease_s=30)  # warm up: connection and scripts
    redis_sends.clear()
    assert await redis_store.renew(slots, held.lease, 30) is True
    assert len(redis_sends) == 1


# --- money -----------------------------------------------------------------
def test_units_convert_ledger_decimals_exactly():
    assert to_units(Decimal("0.0000000001")) == 1
    assert from_units(1) == Decimal("0.0000000001")
    big = Decimal("92233720.3685477580")
    assert to_units(big) == 922_337_203_685_477_580 and from_units(to_units(big)) == big
    huge = Decimal("123456789012345678.9012345678")  # past any float's precision
    assert to_units(huge) == 1_234_567_890_123_456_789_012_345_678 and from_units(to_units(huge)) == huge
    assert str(from_units(15_000_000_000)) == "1.5000000000"
    assert to_units(Decimal("0.00000000015")) == 2 and to_units(Decimal("0.00000000025")) == 2  # as quantize() does
    assert to_units(Decimal("-0.5")) == -5_000_000_000
    with pytest.raises(TypeError):
        to_units(0.1)
    with pytest.raises(ValueError):
        to_units(Decimal("NaN"))
