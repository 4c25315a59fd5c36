"""The Redis breaker store over the loop's pipelined connection (billing/limits/redis_mux.py):
one connection per event loop and nothing through redis-py's pool, the same replies
(str, not bytes) and exception classes as redis-py's path, a flushed script cache and
a Redis restart survived, and any URL the mux does not take kept on redis-py."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import redis
from redis import exceptions as rx

from billing.limits import redis_mux
from routing.breaker import BreakerPolicy, LatencyStats, Permit, RedisBreakerStore, State
from routing.breaker.redis_store import BREAKER_PREFIX, _SCRIPTS
from tests.conftest import free_port

URL = "redis://127.0.0.1:6379/7"  # this file's own database
FAST = BreakerPolicy(failure_threshold=2, failure_rate=0, cooldown_s=0.2, probe_timeout_s=0.5)


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not _redis_up(), reason="Redis unreachable at 127.0.0.1:6379")


@pytest.fixture
def flushed():
    client = redis.Redis.from_url(URL, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


class PrivateRedis:
    """A redis-server of this test's own (exact CLIENT LIST counts, restarts)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="brkmux-")
        self.socket = str(Path(self.dir) / "redis.sock")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--unixsocket", self.socket, "--dir", self.dir],
            stdout=subprocess.DEVNULL,
        )
        client = self.client()
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.02)
            finally:
                client.close()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)

    def others(self, client: redis.Redis) -> list[dict]:
        """The connected clients but `client` itself."""
        me = client.client_id()
        return [c for c in client.client_list() if int(c["id"]) != me]


@pytest.fixture
def private_redis():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


async def _every_call(store: RedisBreakerStore, target: str = "t") -> None:
    """Each of the store's calls at least once."""
    assert await store.admit(target, FAST) is Permit.ALLOWED
    assert await store.record(target, FAST, success=False) is State.CLOSED
    assert await store.record_success(target, FAST, total_s=0.2, ttft_s=0.1) is State.CLOSED
    await store.record_latency(target, total_s=0.3)
    await store.release(target)
    assert (await store.status(target, FAST)).window_requests == 2
    assert set(await store.statuses([target, "other"], FAST)) == {target, "other"}
    assert (await store.latencies([target]))[target].samples >= 2  # (reset keeps latencies)
    await store.reset(target)


# --- one connection per loop -----------------------------------------------------------
async def test_one_connection_per_loop_and_none_from_the_pool(private_redis, redis_sends):
    store = RedisBreakerStore(f"redis://127.0.0.1:{private_redis.port}/3")
    sync = private_redis.client()
    try:
        await _every_call(store)
        # 50 coroutines at once: still the one connection (no pool to grow)
        await asyncio.gather(*(_every_call(store, f"t{i}") for i in range(50)))
        clients = private_redis.others(sync)
        assert len(clients) == 1 and clients[0]["db"] == "3"
        assert store._conns[asyncio.get_running_loop()].mux is not None
        # every command went over the mux: scripts and the latencies read, no redis-py handshake
        assert redis_sends and all(isinstance(s, bytes) for s in redis_sends)
        assert all(s.split(b"\r\n")[2] in (b"EVALSHA", b"EVAL", b"HMGET", b"SELECT") for s in redis_sends)
        assert not any(b"SETINFO" in s or b"HELLO" in s for s in redis_sends)

        # another loop (a thread, as async_to_sync runs one) gets a connection of its own
        def other_loop() -> None:
            async def use() -> None:
                await _every_call(store, "from-thread")
                assert len(private_redis.others(sync)) == 2
                await store.aclose()  # that loop's connection, not this one's

            asyncio.run(use())

        thread = threading.Thread(target=other_loop)
        thread.start()
        thread.join()
        assert len(private_redis.others(sync)) == 1
        await _every_call(store)  # this loop's connection is untouched
        assert len(private_redis.others(sync)) == 1
    finally:
        await store.aclose()
    for _ in range(100):  # aclose closed it (the server notices a moment later)
        if not private_redis.others(sync):
            break
        await asyncio.sleep(0.01)
    assert private_redis.others(sync) == []
    sync.close()


def test_a_closed_loops_connection_is_replaced(private_redis):
    store = RedisBreakerStore(f"redis://127.0.0.1:{private_redis.port}/0")

    async def use() -> object:
        await _every_call(store)
        return store._conns[asyncio.get_running_loop()].mux

    first = asyncio.run(use())
    second = asyncio.run(use())  # a new loop: the closed one's entry is dropped
    assert first is not second and len(store._conns) == 1

    async def close() -> None:
        await store.aclose()

    asyncio.run(close())


@needs_redis
async def test_batches_take_one_write(flushed, redis_sends):
    store = RedisBreakerStore(URL)
    targets = [f"t{i}" for i in range(20)]
    try:
        await store.statuses(targets, FAST)
        redis_sends.clear()
        assert len(await store.statuses(targets, FAST)) == 20
        assert len(await store.latencies(targets)) == 20
        assert len(redis_sends) == 2
    finally:
        await store.aclose()


# --- the same replies and errors as redis-py's path -------------------------------------
async def _fallback(store: RedisBreakerStore) -> RedisBreakerStore:
    store._conn().mux = None  # this loop's scripts on redis-py's pool, as for a URL the mux refuses
    return store


async def _trace(store: RedisBreakerStore) -> list:
    """What a sequence of calls returns, and the raw script replies (their types too)."""
    out = []
    out.append(await store.admit("a", FAST))
    out.append(await store.record("a", FAST, success=False))
    out.append(await store.record_success("a", FAST, total_s=0.25, ttft_s=None, stats_key="a-model"))
    out.append(await store.record("a", FAST, success=False))
    out.append(await store.record("a", FAST, success=False))  # opens
    out.append(await store.admit("a", FAST))  # rejected, cooling down
    await store.record_latency("b", total_s=1.5, ttft_s=0.5, alpha=0.5)
    await store.record_latency("b", total_s=0.5, alpha=0.5)
    out.append(await store.latencies(["a-model", "b", "never"]))
    status = await store.status("a", FAST)
    out.append((status.state, status.consecutive_failures, status.window_requests, status.window_failures,
                status.opens, status.probe_in_flight, status.half_opens, status.closes,
                type(status.opened_at), type(status.retry_in_s)))
    conn = store._conn()
    raw = await conn.run("status", [BREAKER_PREFIX + "a", BREAKER_PREFIX + "never"],
                         [FAST.window_s, FAST.cooldown_s, FAST.probe_timeout_s])
    out.append([[type(v) for v in row] for row in raw])
    out.append([row[:5] if row[0] == "closed" else row[:4] for row in raw])
    out.append(await conn.run("admit", [BREAKER_PREFIX + "a"], [FAST.cooldown_s, FAST.probe_timeout_s, 60]))
    out.append(await conn.run("release", [BREAKER_PREFIX + "a"], []))  # nil -> None
    await asyncio.sleep(FAST.cooldown_s + 0.05)
    out.append(await store.admit("a", FAST))  # the probe
    out.append((await store.status("a", FAST)).probe_in_flight)
    out.append(await store.record("a", FAST, success=True, probe=True))  # closes
    await store.reset("a")
    out.append((await store.status("a", FAST)).closes)
    return out


@needs_redis
async def test_the_mux_and_redis_py_give_the_same_results(flushed):
    mux_store = RedisBreakerStore(URL)
    py_store = await _fallback(RedisBreakerStore(URL))
    try:
        via_mux = await _trace(mux_store)
        assert mux_store._conn().mux is not None
        flushed.flushdb()
        via_py = await _trace(py_store)
        assert via_mux == via_py
        assert via_mux[6] == {
            "a-model": LatencyStats(ttft_s=None, total_s=0.25, samples=1),
            "b": LatencyStats(ttft_s=0.5, total_s=1.0, samples=2),
            "never": LatencyStats(ttft_s=None, total_s=None, samples=0),
        }
        assert via_mux[8] == [[str, int, int, int, str, str, int, int, int, int]] * 2  # decoded, not bytes
        assert via_mux[9][1] == ["closed", 0, 0, 0, ""]
    finally:
        await mux_store.aclose()
        await py_store.aclose()


@needs_redis
async def test_the_same_exception_classes(flushed):
    mux_store = RedisBreakerStore(URL)
    py_store = await _fallback(RedisBreakerStore(URL))
    flushed.set(BREAKER_PREFIX + "wrong", "a string, not a hash")
    flushed.set("gw:lat:wrong", "a string, not a hash")
    try:
        for call in (
            lambda s: s.admit("wrong", FAST),
            lambda s: s.record("wrong", FAST, success=False),
            lambda s: s.statuses(["ok", "wrong"], FAST),
            lambda s: s.record_latency("wrong", total_s=1.0),
            lambda s: s.latencies(["ok", "wrong"]),
        ):
            errors = []
            for store in (mux_store, py_store):
                with pytest.raises(rx.ResponseError) as caught:
                    await call(store)
                errors.append(type(caught.value))
            assert errors[0] is errors[1]
        assert await mux_store.admit("ok", FAST) is Permit.ALLOWED  # the connection is still in step
    finally:
        await mux_store.aclose()
        await py_store.aclose()


async def test_an_unreachable_redis_is_a_redis_error_either_way():
    port = free_port()  # nothing listens there
    for url in (f"redis://127.0.0.1:{port}/0", f"redis://127.0.0.1:{port}/0?socket_connect_timeout=1"):
        store = RedisBreakerStore(url)
        try:
            with pytest.raises(rx.ConnectionError):
                await store.admit("t", FAST)
            with pytest.raises(rx.ConnectionError):
                await store.latencies(["t"])
        finally:
            await store.aclose()


# --- a flushed script cache, a restart -----------------------------------------------------
@needs_redis
async def test_a_flushed_script_cache_is_survived(flushed):
    store = RedisBreakerStore(URL)
    try:
        assert await store.record("t", FAST, success=False) is State.CLOSED
        flushed.script_flush()
        assert await store.record("t", FAST, success=False) is State.OPEN  # NOSCRIPT: sent whole once
        assert flushed.script_exists(_SCRIPTS["record"].sha) == [True]
        flushed.script_flush()
        assert (await store.statuses(["t"], FAST))["t"].state is State.OPEN
        flushed.script_flush()
        assert await store.record_success("u", FAST, total_s=0.1) is State.CLOSED
    finally:
        await store.aclose()


async def test_a_redis_restart_is_survived(private_redis):
    store = RedisBreakerStore(f"redis://127.0.0.1:{private_redis.port}/0")
    try:
        await _every_call(store)
        private_redis.stop()
        with pytest.raises(rx.ConnectionError):  # callers catch RedisError
            await store.admit("t", FAST)
        with pytest.raises(rx.ConnectionError):
            await store.statuses(["t"], FAST)
        private_redis.start()  # an empty server: no scripts cached, no state
        await _every_call(store)
        assert await store.record("t", FAST, success=False) is State.CLOSED
        assert await store.record("t", FAST, success=False) is State.OPEN
    finally:
        await store.aclose()


async def test_an_overdue_reply_fails_as_a_timeout_and_the_next_call_reconnects(private_redis, monkeypatch):
    monkeypatch.setattr(redis_mux, "SOCKET_TIMEOUT_S", 0.2)
    store = RedisBreakerStore(f"redis://127.0.0.1:{private_redis.port}/0")
    sync = private_redis.client()
    try:
        await store.admit("t", FAST)
        paused = time.monotonic()
        sync.execute_command("CLIENT", "PAUSE", 1500)  # every other client's commands wait 1.5 s
        with pytest.raises(rx.TimeoutError):
            await store.admit("t", FAST)
        await asyncio.sleep(max(0.0, paused + 1.6 - time.monotonic()))
        assert await store.admit("t", FAST) is Permit.ALLOWED  # a new connection
    finally:
        await store.aclose()
        sync.close()


# --- URLs the mux does not take ------------------------------------------------------------
@pytest.mark.parametrize("kind", ["query", "unix"])
async def test_other_urls_keep_redis_py(private_redis, redis_sends, monkeypatch, kind):
    url = (f"redis://127.0.0.1:{private_redis.port}/2?socket_timeout=5" if kind == "query"
           else f"unix://{private_redis.socket}?db=2")
    assert not redis_mux.Mux.supports(url)
    mux_sends = []
    mux_send = redis_mux._Protocol.send  # (as patched by redis_sends: it counts every command)
    monkeypatch.setattr(redis_mux._Protocol, "send", lambda self, data: mux_sends.append(data) or mux_send(self, data))
    store = RedisBreakerStore(url)
    sync = redis.Redis(port=private_redis.port, db=2, decode_responses=True)
    try:
        await _every_call(store)
        assert store._conns[asyncio.get_running_loop()].mux is None
        assert redis_sends and mux_sends == []  # all of it through redis-py's connections
        assert sync.keys("gw:*") == ["gw:lat:t"]  # the URL's database (the reset breaker key went)
    finally:
        await store.aclose()
        sync.close()
