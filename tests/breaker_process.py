"""A gateway-like OS process sharing breaker state through Redis (no Django).

Run as ``python -m tests.breaker_process REDIS_URL POLICY_JSON``; it answers one
JSON command per stdin line with one JSON line on stdout:

    {"op": "fail_until_open"}                 -> {"failures": n, "state": ...}
    {"op": "status"}                          -> {"state": ..., "opens": ..., "retry_in_s": ...}
    {"op": "admit"}                           -> {"admission": ...}
    {"op": "hammer", "n": 50, "at": unix_ts}  -> {"admissions": [...]}  (n concurrent admits from `at`)
    {"op": "record", "success": b, "probe": b} -> {"state": ...}
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from routing.breaker import BreakerPolicy, RedisBreakerStore

TARGET = "proc/shared-model"


async def handle(store: RedisBreakerStore, policy: BreakerPolicy, command: dict) -> dict:
    op = command["op"]
    if op == "fail_until_open":
        failures = 0
        while True:
            failures += 1
            state = await store.record(TARGET, policy, success=False)
            if state != "closed":
                return {"failures": failures, "state": state}
    if op == "status":
        status = await store.status(TARGET, policy)
        return {"state": status.state, "opens": status.opens, "retry_in_s": status.retry_in_s}
    if op == "admit":
        return {"admission": await store.admit(TARGET, policy)}
    if op == "hammer":
        await asyncio.sleep(max(0.0, command["at"] - time.time()))  # start together with the other process
        admissions = await asyncio.gather(*(store.admit(TARGET, policy) for _ in range(command["n"])))
        return {"admissions": list(admissions)}
    if op == "record":
        return {"state": await store.record(TARGET, policy, success=command["success"], probe=command["probe"])}
    raise ValueError(f"unknown op {op!r}")


async def main(url: str, policy: BreakerPolicy) -> None:
    store = RedisBreakerStore(url)
    loop = asyncio.get_running_loop()
    print(json.dumps({"ready": True, "django_loaded": "django" in sys.modules}), flush=True)
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            print(json.dumps(await handle(store, policy, json.loads(line))), flush=True)
    finally:
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], BreakerPolicy(**json.loads(sys.argv[2]))))
