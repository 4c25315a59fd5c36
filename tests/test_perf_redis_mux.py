"""The limit store's pipelined Redis connection (billing/limits/redis_mux.py): replies
matched to their commands under concurrency and cancellation, redis-py's error classes,
NOSCRIPT recovery, reconnection after a lost connection, the database of the URL."""

from __future__ import annotations

import asyncio

import pytest
import redis
from redis import exceptions as rx

from billing.limits import redis_mux
from billing.limits.redis_mux import Mux, Script

from .limits_helpers import REDIS_UP

URL = "redis://127.0.0.1:6379/12"
pytestmark = pytest.mark.skipif(not REDIS_UP, reason="Redis unreachable")


@pytest.fixture
def flushed():
    client = redis.Redis.from_url(URL)
    client.flushdb()
    yield client
    client.flushdb()


async def test_concurrent_commands_get_their_own_replies(flushed):
    mux = Mux(URL)
    try:
        await asyncio.gather(*(mux.execute("SET", f"k{i}", i) for i in range(200)))
        got = await asyncio.gather(*(mux.execute("GET", f"k{i}") for i in range(200)))
        assert got == [str(i) for i in range(200)]
        assert flushed.get("k7") == b"7"  # the URL's database (12), not 0
    finally:
        await mux.aclose()


async def test_a_cancelled_caller_leaves_the_connection_in_step(flushed):
    mux = Mux(URL)
    try:
        await mux.execute("SET", "a", "1")
        slow = asyncio.ensure_future(mux.execute("EVAL", "local t = redis.call('TIME'); return 'slow'", 0))
        after = asyncio.ensure_future(mux.execute("GET", "a"))
        await asyncio.sleep(0)
        slow.cancel()
        assert await after == "1"
        assert await mux.execute("ECHO", "next") == "next"
    finally:
        await mux.aclose()


async def test_error_replies_are_redis_py_exceptions(flushed):
    mux = Mux(URL)
    try:
        with pytest.raises(rx.ResponseError):
            await mux.execute("EVAL", "return redis.error_reply('refused')", 0)
        await mux.execute("SET", "s", "text")
        with pytest.raises(rx.ResponseError):
            await mux.execute("HGET", "s", "f")  # WRONGTYPE
        assert await mux.execute("ECHO", "still fine") == "still fine"
        with pytest.raises(rx.DataError):
            await mux.execute("SET", "b", True)
    finally:
        await mux.aclose()


async def test_a_flushed_script_cache_is_recovered(flushed):
    script = Script("return {tonumber(ARGV[1]) + 1, KEYS[1]}")
    mux = Mux(URL)
    try:
        assert await mux.evalsha(script, ["key"], [41]) == [42, "key"]
        flushed.script_flush()
        assert await mux.evalsha(script, ["key"], [1]) == [2, "key"]  # NOSCRIPT: sent whole, cached again
        assert flushed.script_exists(script.sha) == [True]
    finally:
        await mux.aclose()


async def test_a_lost_connection_fails_pending_commands_and_reconnects(flushed):
    mux = Mux(URL)
    try:
        assert await mux.execute("ECHO", "one") == "one"
        proto = mux._proto
        proto.transport.abort()  # the server side gone, as in a Redis restart
        await asyncio.sleep(0.05)
        assert proto.closed
        assert await mux.execute("ECHO", "two") == "two"  # a new connection
        assert mux._proto is not proto
    finally:
        await mux.aclose()


async def test_an_unreachable_redis_is_a_connection_error():
    mux = Mux("redis://127.0.0.1:1/0")
    with pytest.raises(rx.ConnectionError):
        await mux.execute("PING")


async def test_an_overdue_reply_fails_with_a_timeout(flushed, monkeypatch):
    monkeypatch.setattr(redis_mux, "SOCKET_TIMEOUT_S", 0.2)
    blocker = redis.Redis.from_url(URL)
    mux = Mux(URL)
    try:
        await mux.execute("PING")
        # BLPOP on an empty list blocks this connection's replies for 3 s.
        with pytest.raises(rx.TimeoutError):
            await mux.execute("BLPOP", "never", 3)
        assert await mux.execute("ECHO", "after") == "after"  # reconnected
    finally:
        await mux.aclose()
        blocker.close()


def test_only_plain_urls_take_the_mux():
    assert Mux.supports("redis://127.0.0.1:6379/9")
    assert Mux.supports("redis://:secret@localhost:6380")
    assert not Mux.supports("rediss://127.0.0.1:6379/0")
    assert not Mux.supports("unix:///tmp/redis.sock")
    assert not Mux.supports("redis://127.0.0.1:6379/0?socket_timeout=1")


async def test_a_redis_restart_fails_the_commands_in_flight_quietly_and_is_survived(caplog):
    import shutil
    import socket
    import subprocess

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no"], stdout=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                return proc
            except redis.ConnectionError:
                import time

                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    server = start()
    mux = Mux(f"redis://127.0.0.1:{port}/0")
    try:
        assert await mux.execute("ECHO", "up") == "up"
        async def client(i: int) -> list:
            out = []
            for k in range(20):  # each reply is followed by the next command, as admission by settlement
                out.append(await mux.execute("ECHO", f"{i}:{k}"))
            return out

        asyncio.get_running_loop().call_later(0.002, server.kill)
        results = await asyncio.gather(*(client(i) for i in range(200)), return_exceptions=True)
        server.wait()
        failed = [r for r in results if isinstance(r, Exception)]
        assert failed and all(isinstance(r, rx.ConnectionError) for r in failed)
        assert all(r == [f"{i}:{k}" for k in range(20)] for i, r in enumerate(results) if not isinstance(r, Exception))
        server = start()
        assert await mux.execute("ECHO", "back") == "back"  # reconnected to the restarted server
        assert not [r for r in caplog.records if "socket.send() raised exception" in r.getMessage()]
    finally:
        await mux.aclose()
        server.kill()
        server.wait()
