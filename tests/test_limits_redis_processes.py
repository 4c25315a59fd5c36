"""Two real OS processes share rate limits and budgets through Redis (tests/limits_process.py)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import redis

from billing.limits import BudgetSlot, RedisLimitStore, SlotUsage, to_units

REDIS_URL = "redis://127.0.0.1:6379/11"
ROOT = Path(__file__).resolve().parent.parent


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not _redis_up(), reason=f"Redis unreachable at {REDIS_URL}")


class Worker:
    """One limits_process child, driven by JSON lines."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}  # it must not need Django
        env["PYTHONPATH"] = str(ROOT)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.limits_process", REDIS_URL],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self._read() == {"ready": True, "django_loaded": False}

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        assert line, f"worker {self.proc.pid} exited with {self.proc.poll()}"
        return json.loads(line)

    def send(self, **command) -> None:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def ask(self, **command) -> dict:
        self.send(**command)
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


@pytest.fixture
def workers():
    redis.Redis.from_url(REDIS_URL).flushdb()
    a = b = None
    try:
        a, b = Worker(), Worker()
        assert a.proc.pid != b.proc.pid
        yield a, b
    finally:
        for worker in (a, b):
            if worker is not None and worker.proc.poll() is None:
                worker.close()
            elif worker is not None:
                worker.proc.stdin.close()
                worker.proc.stdout.close()


def race(workers, **command) -> list[dict]:
    """Both processes fire the same command at the same moment; their answers."""
    at = time.time() + 0.3
    for worker in workers:
        worker.send(at=at, **command)
    return [worker._read() for worker in workers]


def test_two_processes_share_one_request_limit_exactly(workers):
    answers = race(workers, op="hits", n=100, scope="key:12", rpm=60)
    assert sum(answer["allowed"] for answer in answers) == 60
    assert all(answer["refused_scopes"] == ["key:12"] for answer in answers)
    again = race(workers, op="hits", n=10, scope="key:12", rpm=60)  # the window is full for both
    assert [answer["allowed"] for answer in again] == [0, 0]


def test_two_processes_share_one_budget_exactly(workers):
    amount = to_units(Decimal("25000.0000000001"))  # the limit lies beyond a double's exact integers
    spent = to_units(Decimal("0.0000000003"))
    slot = {"key": "budget:7:2026-11", "limit": spent + 37 * amount + amount - 1, "blocking": True, "ttl_s": 3600}
    assert slot["limit"] > 2**53
    answers = race(workers, op="reserves", n=100, slot=slot, amount=amount, spent=spent)
    assert sum(answer["ok"] for answer in answers) == 37
    assert all(answer["refused"] == [slot["key"]] for answer in answers)
    a, b = workers
    assert a.ask(op="usage", slot=slot) == b.ask(op="usage", slot=slot) == {"spent": spent, "reserved": 37 * amount}


def test_a_reservation_of_a_killed_process_expires_after_its_lease(workers):
    """kill -9 mid-request: nobody settles, yet the budget is usable once the lease is over."""
    a, b = workers
    slot = {"key": "budget:9:2026-11", "limit": 1000, "blocking": True, "ttl_s": 3600}
    held = a.ask(op="admit", slot=slot, amount=1000, spent=0, lease_s=120)
    assert held["ok"] and held["lease"]
    a.proc.send_signal(signal.SIGKILL)
    assert a.proc.wait(timeout=10) == -signal.SIGKILL
    # the survivor sees the dead process's hold until its lease ends...
    assert b.ask(op="admit", slot=slot, amount=1, spent=0, lease_s=120)["ok"] is False
    assert b.ask(op="usage", slot=slot) == {"spent": 0, "reserved": 1000}

    async def after(seconds: float) -> tuple[bool, SlotUsage]:
        store = RedisLimitStore(REDIS_URL, time_offset_s=seconds)  # Redis time, moved on
        try:
            async def seed(key: str) -> int:
                return 0

            budget = BudgetSlot(**slot)
            ok = (await store.admit([], 0, [budget], 1000, seed, 120)).ok
            return ok, (await store.usage([budget]))[budget.key]
        finally:
            await store.aclose()

    assert asyncio.run(after(119))[0] is False
    # ...and then the whole budget is free again, with no sweeper and nobody settling
    assert asyncio.run(after(120.5)) == (True, SlotUsage(spent=0, reserved=1000))
