"""One pipelined Redis connection per event loop for the limit store's and the breaker
store's (routing/breaker/redis_store.py) hot-path scripts.

redis-py's asyncio client spends ~50-80 µs of CPU on every command here (a connection
checked out of the pool and back under an asyncio.Condition, a timeout per checkout,
a readiness probe of the socket, the retry wrapper): with two scripts a request
(admission, settlement), that was more than a tenth of a request's CPU. Redis answers
the commands of one connection in the order they were sent, so all the coroutines of
a process can share one connection: each command is written as soon as it is made and
its future is resolved when its reply arrives (hiredis parses them), at ~10 µs a
command, with no pool and no lock.

What stays as it was (redis_store.py): the scripts and their results; errors are
redis-py's own classes (a refused script is ResponseError, NOSCRIPT is NoScriptError
and the script is sent whole once with EVAL, which caches it again; a lost connection
or a reply later than SOCKET_TIMEOUT_S is ConnectionError / TimeoutError, both
RedisError, and the next command reconnects); like the pool's connections (retries
0), a command is never re-sent. A cancelled caller's reply is read and dropped, so
the connection stays in step.

Only plain `redis://host:port/db` URLs (optionally with a user and password) take this
path; any other (TLS, a unix socket) keeps redis-py (`Mux.supports`).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import time
from urllib.parse import unquote, urlsplit

import hiredis
from redis._parsers.base import BaseParser
from redis import exceptions as rx

SOCKET_TIMEOUT_S = 5.0  # as redis-py's connections from a URL: a reply later than this fails the connection
CONNECT_TIMEOUT_S = 5.0


def _reply_error(message: str) -> rx.RedisError:
    return BaseParser.parse_error(message)  # redis-py's mapping (NOSCRIPT -> NoScriptError, ...)


def _arg(value) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):  # as redis-py: ambiguous, refused
        raise rx.DataError("Invalid input of type: 'bool'. Convert to a bytes, string, int or float first.")
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, float):
        return repr(value).encode()
    raise rx.DataError(f"Invalid input of type: '{type(value).__name__}'. Convert to a bytes, string, int or float first.")


def pack(args: tuple) -> bytes:
    """A command in RESP."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = _arg(a)
        parts.append(b"$%d\r\n" % len(b))
        parts.append(b)
        parts.append(b"\r\n")
    return b"".join(parts)


class Script:
    """A Lua script by its SHA1 (what EVALSHA names), with its source for NOSCRIPT."""

    __slots__ = ("source", "sha")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader(encoding="utf-8", protocolError=rx.InvalidResponse, replyError=_reply_error)
        self.waiting: collections.deque[tuple[asyncio.Future, float]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.error: Exception | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        waiting = self.waiting
        try:
            while (reply := reader.gets()) is not False:
                future, _ = waiting.popleft()
                if not future.done():  # a cancelled caller: its reply is dropped
                    future.set_result(reply)
        except Exception as exc:  # noqa: BLE001 - a protocol error or a reply nobody waited for
            self.fail(rx.InvalidResponse(f"unexpected reply from Redis ({type(exc).__name__})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(rx.ConnectionError("Connection closed by server." if exc is None else f"Redis connection lost: {exc}"))

    def fail(self, error: Exception) -> None:
        """Every pending command fails with `error`; the connection is closed for good."""
        if not self.closed:
            self.closed, self.error = True, error
            if self.transport is not None:
                self.transport.close()
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)

    def send(self, data: bytes) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if not self.closed and self.transport.is_closing():  # lost, its connection_lost still to come
            self.fail(rx.ConnectionError("Redis connection lost."))
        if self.closed:  # nothing more is written to it (asyncio would warn of every write)
            future.set_exception(self.error or rx.ConnectionError("Redis connection closed."))
            return future
        self.waiting.append((future, time.monotonic()))
        self.transport.write(data)
        return future

    def send_many(self, data: bytes, count: int) -> list[asyncio.Future]:
        """`count` commands packed in `data`, written at once (one `send`): a future for
        each reply, in order. Refused as `send` is: then every future has its error."""
        first = self.send(data)
        futures = [first]
        loop = first.get_loop()
        for _ in range(count - 1):
            future = loop.create_future()
            if first.done():  # refused (closed): nothing was written
                future.set_exception(first.exception())
            else:  # queued right behind the first, nothing ran in between
                self.waiting.append((future, self.waiting[-1][1]))
            futures.append(future)
        return futures


class Mux:
    """The running loop's shared connection to one Redis database (see the module
    docstring). Create one per event loop; `execute` and `evalsha` from its coroutines."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 6379
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        path = parts.path.lstrip("/")
        self.db = int(path) if path else 0
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Future | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    @staticmethod
    def supports(url: str) -> bool:
        """A plain TCP URL without query options (anything else keeps redis-py)."""
        try:
            parts = urlsplit(url)
            path = parts.path.lstrip("/")
            return (parts.scheme == "redis" and not parts.query and bool(parts.hostname)
                    and (not path or path.isdigit()) and (parts.port is None or parts.port > 0))
        except ValueError:
            return False

    async def _connection(self) -> _Protocol:
        proto = self._proto
        if proto is not None and not proto.closed:
            return proto
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None
                if not connecting.cancelled():
                    connecting.exception()  # retrieved

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                _, proto = await loop.create_connection(_Protocol, self.host, self.port)
                handshake = []
                if self.password is not None:
                    handshake.append(("AUTH", self.username, self.password) if self.username else ("AUTH", self.password))
                if self.db:
                    handshake.append(("SELECT", self.db))
                for command in handshake:
                    reply = await proto.send(pack(command))
                    if isinstance(reply, Exception):
                        proto.fail(rx.ConnectionError("Redis connection closed."))
                        raise reply
        except TimeoutError as exc:  # the builtin (asyncio.timeout's)
            raise rx.TimeoutError("Timeout connecting to Redis") from exc
        except OSError as exc:
            raise rx.ConnectionError(f"Error connecting to Redis at {self.host}:{self.port}: {exc}") from exc
        self._proto = proto
        self._arm(loop)
        return proto

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._watchdog is None:
            self._watchdog = loop.call_later(1.0, self._watch, loop)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Once a second while connected: a reply overdue by SOCKET_TIMEOUT_S fails the
        connection (replies come in order, so every later one is overdue too)."""
        self._watchdog = None
        proto = self._proto
        if proto is None or proto.closed:
            return
        if proto.waiting and time.monotonic() - proto.waiting[0][1] > SOCKET_TIMEOUT_S:
            proto.fail(rx.TimeoutError("Timeout reading from Redis"))
            return
        self._arm(loop)

    async def execute(self, *args):
        """One command's reply; a Redis error reply is raised as redis-py's exception."""
        proto = await self._connection()
        reply = await proto.send(pack(args))
        if isinstance(reply, Exception):  # an error reply (hiredis hands it over, built by _reply_error)
            raise reply
        return reply

    async def execute_many(self, commands: list[tuple]) -> list:
        """Several commands in one write and one round trip (as redis-py's pipeline
        without a transaction): their replies in order. Every reply is waited for; the
        first error reply (or connection error) is then raised, as the pipeline does."""
        if not commands:
            return []
        proto = await self._connection()
        futures = proto.send_many(b"".join(pack(c) for c in commands), len(commands))
        replies = await asyncio.gather(*futures, return_exceptions=True)
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return replies

    async def evalsha(self, script: Script, keys: list, args: list):
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except rx.NoScriptError:  # a restarted or flushed Redis: EVAL sends it and caches it again
            return await self.execute("EVAL", script.source, len(keys), *keys, *args)

    async def aclose(self) -> None:
        proto, self._proto = self._proto, None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if proto is not None:
            proto.fail(rx.ConnectionError("Redis connection closed."))
