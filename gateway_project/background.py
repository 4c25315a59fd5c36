"""Fire-and-forget work on the running event loop, kept alive until it finishes.

The loop holds only weak references to tasks; a task nobody references can be
garbage-collected mid-flight. `spawn` keeps one until the task is done and logs
an exception nobody would otherwise see.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("gateway.background")
_tasks: set[asyncio.Task] = set()


def spawn(coro) -> asyncio.Task:
    task = asyncio.get_running_loop().create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_done)
    return task


def _done(task: asyncio.Task) -> None:
    _tasks.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed: %r", task.exception())


async def wait(timeout_s: float) -> None:
    """Let running tasks finish, for at most ``timeout_s`` (shutdown)."""
    if _tasks:
        await asyncio.wait(set(_tasks), timeout=timeout_s)
