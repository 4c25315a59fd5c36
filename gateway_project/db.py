"""Running ORM work from async code without pinning connections to stray threads."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections

T = TypeVar("T")


def closing_connections(fn: Callable[..., T], *args, **kwargs) -> T:
    try:
        return fn(*args, **kwargs)
    finally:
        # Honour CONN_MAX_AGE / pool semantics on the worker thread: with the
        # PostgreSQL pool this hands the connection back; with SQLite it keeps a
        # healthy connection for up to CONN_MAX_AGE.
        close_old_connections()


async def run_db(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run a synchronous ORM function on the thread pool (not the one shared
    thread-sensitive thread, which would serialise every request's DB work)."""
    return await sync_to_async(closing_connections, thread_sensitive=False)(fn, *args, **kwargs)
