"""Two real OS processes share one breaker through Redis (tests/breaker_process.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

REDIS_URL = "redis://127.0.0.1:6379/14"
ROOT = Path(__file__).resolve().parent.parent
POLICY = {"failure_threshold": 4, "failure_rate": 0, "cooldown_s": 0.5, "probe_timeout_s": 30}


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not _redis_up(), reason=f"Redis unreachable at {REDIS_URL}")


class Worker:
    """One breaker_process child, driven by JSON lines."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}  # it must not need Django
        env["PYTHONPATH"] = str(ROOT)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.breaker_process", REDIS_URL, json.dumps(POLICY)],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        ready = self._read()
        assert ready == {"ready": True, "django_loaded": False}

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
        yield a, b
    finally:
        for worker in (a, b):
            if worker is not None:
                worker.close()


def test_two_processes_share_open_probe_and_close(workers):
    a, b = workers
    assert a.ask(op="fail_until_open") == {"failures": POLICY["failure_threshold"], "state": "open"}
    assert a.proc.pid != b.proc.pid

    seen = b.ask(op="status")
    assert (seen["state"], seen["opens"]) == ("open", 1)
    assert b.ask(op="admit") == {"admission": "rejected"}

    time.sleep(seen["retry_in_s"] + 0.05)  # the cooldown has passed for both
    start_at = time.time() + 0.3  # both processes fire their admits at the same moment
    a.send(op="hammer", n=50, at=start_at)
    b.send(op="hammer", n=50, at=start_at)
    admissions = a._read()["admissions"] + b._read()["admissions"]
    assert len(admissions) == 100
    assert admissions.count("probe") == 1
    assert admissions.count("rejected") == 99

    assert b.ask(op="record", success=True, probe=True) == {"state": "closed"}
    assert a.ask(op="status") == {"state": "closed", "opens": 1, "retry_in_s": None}
    assert a.ask(op="admit") == {"admission": "allowed"}
