"""A gateway-like OS process sharing rate limits and budgets through Redis (no Django).

Run as ``python -m tests.limits_process REDIS_URL``; it answers one JSON command per
stdin line with one JSON line on stdout. Every "at" is a unix time at which the
process fires its n concurrent calls, so two processes race each other:

    {"op": "hits", "n": 100, "at": ts, "scope": s, "rpm": 60}
        -> {"allowed": k, "refused_scopes": [...]}
    {"op": "reserves", "n": 100, "at": ts, "slot": {...BudgetSlot}, "amount": a, "spent": x}
        -> {"ok": k, "refused": [...]}        (seeds the slot with spent=x first, SETNX)
    {"op": "usage", "slot": {...}}            -> {"spent": ..., "reserved": ...}
    {"op": "admit", "slot": {...}, "amount": a, "spent": x, "lease_s": s}
        -> {"ok": bool, "lease": id}         (one admission, never settled: the test kills us)
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from billing.limits import BudgetSlot, RateLimit, RedisLimitStore


async def _at(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))  # start together with the other process


async def handle(store: RedisLimitStore, command: dict) -> dict:
    op = command["op"]
    if op == "hits":
        limits = [RateLimit(command["scope"], requests_per_minute=command["rpm"], tokens_per_minute=None)]
        await _at(command["at"])
        decisions = await asyncio.gather(*(store.hit(limits, 1) for _ in range(command["n"])))
        return {
            "allowed": sum(d.allowed for d in decisions),
            "refused_scopes": sorted({d.refused_scope for d in decisions if not d.allowed}),
        }
    if op == "reserves":
        slot = BudgetSlot(**command["slot"])

        async def load(key: str) -> int:
            return command["spent"]

        await store.ensure_seeded([slot], load)
        await _at(command["at"])
        results = await asyncio.gather(*(store.reserve([slot], command["amount"]) for _ in range(command["n"])))
        return {"ok": sum(r.ok for r in results), "refused": sorted({r.refused for r in results if not r.ok})}
    if op == "admit":
        slot = BudgetSlot(**command["slot"])

        async def seed(key: str) -> int:
            return command["spent"]

        admitted = await store.admit([], 0, [slot], command["amount"], seed, command["lease_s"])
        return {"ok": admitted.ok, "lease": admitted.reservation.lease}
    if op == "usage":
        slot = BudgetSlot(**command["slot"])
        usage = (await store.usage([slot]))[slot.key]
        return {"spent": usage.spent, "reserved": usage.reserved}
    raise ValueError(f"unknown op {op!r}")


async def main(url: str) -> None:
    store = RedisLimitStore(url)
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True, "django_loaded": "django" in sys.modules}), flush=True)
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            print(json.dumps(await handle(store, json.loads(line))), flush=True)
    finally:
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
