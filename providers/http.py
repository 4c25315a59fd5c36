"""One pooled httpx.AsyncClient per process (per event loop, strictly)."""

from __future__ import annotations

import asyncio
import weakref

import httpx
from django.conf import settings

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = (
    weakref.WeakKeyDictionary()
)


def get_client() -> httpx.AsyncClient:
    """The shared client of the running loop; created on first use.

    A client's connection pool is bound to the loop it was created on, so a process
    serving one loop (daphne, uvicorn) gets exactly one client.
    """
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=settings.GATEWAY_HTTP_MAX_CONNECTIONS,
                max_keepalive_connections=settings.GATEWAY_HTTP_KEEPALIVE,
                keepalive_expiry=30,
            ),
            timeout=httpx.Timeout(60.0, connect=5.0),
            follow_redirects=False,
            trust_env=False,  # never route upstream calls through an ambient proxy
        )
        _clients[loop] = client
    return client


def timeout_for(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(seconds, 5.0))
