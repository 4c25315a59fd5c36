"""Liveness and readiness probes for load balancers and orchestrators.

``/healthz`` (liveness): the process answers. It touches nothing else, so a database
outage never makes an orchestrator restart gateway processes that are fine.

``/readyz`` (readiness): should traffic be sent here? Every check runs concurrently,
each bounded by GATEWAY_READY_CHECK_TIMEOUT_S, so the probe answers within about that
long whatever hangs:

* ``database``: ``SELECT 1`` (config and the usage ledger live there);
* ``redis``: ``PING``, only when REDIS_URL is set (shared breakers, limits, caches);
* every check named in settings.GATEWAY_READY_CHECKS (dotted paths; by default the
  ledger's dead letters, and the Celery heartbeat when GATEWAY_READY_HEARTBEAT is on).
  This module is one of gateway_project's shared, app-free modules (.importlinter), so
  the apps' checks are named in settings, the composition layer, instead of imported.

The body names each check with its state (``"ok"``, ``"failed"`` or ``"timeout"``) at
the top level, and the details under ``checks``::

    {"status": "unavailable", "database": "ok", "redis": "failed", "ledger": "ok",
     "checks": {"redis": {"state": "failed", "reason": "ConnectionError: ...", "ms": 3.1}, ...}}

200 when every check is ok, else 503; never a 500 (a check that raises anything,
or cannot even be imported, is a failed check).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils.module_loading import import_string

from .db import run_db

OK, FAILED, TIMEOUT = "ok", "failed", "timeout"
# A check: a plain function (run on the thread pool, may use the ORM) or a coroutine
# function; it returns details for the body (or None) and raises when not ready.
Check = Callable[[], dict[str, Any] | None | Awaitable[dict[str, Any] | None]]


class NotReady(Exception):
    """Raised by a check whose dependency answered but is not fit to serve (too many
    dead letters, a stale heartbeat). `reason` and `details` go into the body."""

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


async def healthz(request: HttpRequest) -> JsonResponse:
    """Alive: the process answers. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def redis_ping() -> None:
    timeout = settings.GATEWAY_READY_CHECK_TIMEOUT_S
    # A client of its own, per probe: the shared stores' pools belong to their event
    # loops and would queue the probe behind request traffic.
    client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        await client.ping()
    finally:
        await client.aclose()


def short_reason(exc: BaseException) -> str:
    """The error's class and the first line of its message (later lines of database
    errors can carry row values), cut to 200 characters."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    reason = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return reason[:200]


async def run_check(check: Check, timeout_s: float) -> dict[str, Any]:
    """One check's entry of the body: its state, details, reason when not ok, and ms."""
    started = time.perf_counter()
    try:
        if inspect.iscoroutinefunction(check):
            details = await asyncio.wait_for(check(), timeout_s)
        else:
            # A timed-out sync check keeps its pool thread until the driver's own
            # timeout ends it; the probe has answered by then.
            details = await asyncio.wait_for(run_db(check), timeout_s)
        result: dict[str, Any] = {"state": OK, **(details or {})}
    except NotReady as exc:
        result = {"state": FAILED, "reason": exc.reason, **exc.details}
    except TimeoutError:
        result = {"state": TIMEOUT, "reason": f"no answer within {timeout_s:g} s"}
    except Exception as exc:  # noqa: BLE001 - whatever broke, the answer is "not ready", never a 500
        result = {"state": FAILED, "reason": short_reason(exc)}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _named(path: str) -> tuple[str, Check]:
    """A configured check by dotted path. Its name in the body: a function called
    `readiness` is named after its module, minus a "_health" suffix
    ("billing.ledger_health.readiness" -> "ledger"); any other after itself."""
    module, _, function = path.rpartition(".")
    name = module.rpartition(".")[2].removesuffix("_health") if function == "readiness" else function
    try:
        return name, import_string(path)
    except ImportError as exc:
        why = short_reason(exc)  # `exc` itself is unbound once the except block ends

        def broken() -> None:
            raise NotReady(f"check {path} cannot be imported: {why}")

        return name, broken


def configured_checks() -> dict[str, Check]:
    """The readiness checks of this process, by name, in the body's order."""
    checks: dict[str, Check] = {"database": database}
    if settings.REDIS_URL:
        checks["redis"] = redis_ping
    checks.update(_named(path) for path in settings.GATEWAY_READY_CHECKS)
    return checks


async def readiness() -> tuple[bool, dict[str, Any]]:
    """Run every configured check concurrently; (all ok, the body)."""
    checks = configured_checks()
    timeout_s = settings.GATEWAY_READY_CHECK_TIMEOUT_S
    results = await asyncio.gather(*(run_check(c, timeout_s) for c in checks.values()))
    by_name = dict(zip(checks, results))
    ready = all(r["state"] == OK for r in results)
    body: dict[str, Any] = {"status": OK if ready else "unavailable"}
    body.update((name, r["state"]) for name, r in by_name.items())
    body["checks"] = by_name
    return ready, body


async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready: every configured check passed (200), else 503 naming what failed."""
    try:
        ready, body = await readiness()
    except Exception as exc:  # noqa: BLE001 - a broken probe is "not ready", not a 500
        return JsonResponse({"status": "unavailable", "error": short_reason(exc)}, status=503)
    return JsonResponse(body, status=200 if ready else 503)
