"""The playground's websocket: prompts stream through the same pipeline as /v1 —
routing, budgets, guardrails, cache, usage records — under the user's playground key.

Protocol (JSON text frames; docs/playground.md):

    client -> server
      {"type": "send", "id": "a", "route": "chat-default", "messages": [...],
       "system": "...", "temperature": 0.7, "max_tokens": 512}
      {"type": "stop", "id": "a"}            (no id: stop every answer in flight)
      {"type": "routes"}
    server -> client
      {"type": "routes", "routes": [{"name", "description"}], "key": "<prefix>", "usage_url"}
      {"type": "start", "id", "request_id", "route"}
      {"type": "delta", "id", "text"}                      tokens as they arrive
      {"type": "done", "id", "figures": {...}}             provider, model, attempts, ttft...
      {"type": "stopped", "id", "figures": {...}}          Stop pressed: upstream cancelled
      {"type": "error", "id"?, "message", "code", "status"}

Several answers may stream at once (compare mode: two ids). A malformed or unexpected
frame gets an error frame; the connection stays usable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from billing.playground import playground_keyinfo
from gateway_project.errors import GatewayError, InvalidRequest
from gateway_project.db import run_db
from routing import lookup, pipeline
from routing.drafts import draft_route
from routing.schemas import parse_chat_request

from .models import PLAYGROUND_PERMISSION

log = logging.getLogger("gateway.playground")
CLOSE_UNAUTHORIZED = 4403
MAX_ID = 40
ALLOWED_SEND_KEYS = {"type", "id", "route", "messages", "system", "temperature", "max_tokens", "draft", "as_admin"}


class PlaygroundConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active or not user.is_staff:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHORIZED, reason="sign in as a staff user")
            return
        # The playground itself needs its permission (the Playground users role); the
        # admin's "Test this route" streams over this socket too, for route editors.
        self.can_play, can_test = await run_db(_abilities, user)
        if not (self.can_play or can_test):
            await self.accept()
            await self.close(code=CLOSE_UNAUTHORIZED,
                             reason=f"the playground needs the permission {PLAYGROUND_PERMISSION}")
            return
        self.user = user
        self.tasks: dict[str, asyncio.Task] = {}
        await self.accept()
        await self._routes()

    async def disconnect(self, code: int) -> None:
        for task in getattr(self, "tasks", {}).values():
            task.cancel()  # the upstream requests end with the socket

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self._error("Send JSON text frames.", code="binary_frame")
            return
        if len(text_data.encode()) > settings.GATEWAY_PLAYGROUND_MAX_MESSAGE_BYTES:
            await self._error(f"Message too large (over {settings.GATEWAY_PLAYGROUND_MAX_MESSAGE_BYTES} bytes).",
                              code="message_too_large")
            return
        try:
            message = orjson.loads(text_data)
        except orjson.JSONDecodeError:
            await self._error("The message is not valid JSON.", code="invalid_json")
            return
        if not isinstance(message, dict):
            await self._error("Expected a JSON object with a 'type'.", code="invalid_message")
            return
        kind = message.get("type")
        if kind == "send":
            await self._send(message)
        elif kind == "stop":
            await self._stop(message.get("id"))
        elif kind == "routes":
            await self._routes()
        else:
            await self._error("Unknown message type; expected send, stop or routes.", code="unknown_type")

    # --- messages ---------------------------------------------------------------------
    async def _routes(self) -> None:
        if not self.can_play:  # an admin route test: no playground key, no routes to pick
            await self._json({"type": "routes", "key": None, "usage_url": settings.GATEWAY_MY_USAGE_URL, "routes": []})
            return
        try:
            key = await playground_keyinfo(self.user)
        except GatewayError as error:
            await self._error(error.message, code=error.code, status=error.status)
            return
        routes = await lookup.allowed_routes(key)
        await self._json({"type": "routes", "key": key.prefix, "usage_url": settings.GATEWAY_MY_USAGE_URL,
                          "routes": [{"name": r.name, "strategy": r.strategy} for r in sorted(routes, key=lambda r: r.name)]})

    async def _send(self, message: dict[str, Any]) -> None:
        stream_id = message.get("id", "a")
        if not isinstance(stream_id, str) or not stream_id or len(stream_id) > MAX_ID:
            await self._error(f"'id' must be a string of 1 to {MAX_ID} characters.", code="invalid_id")
            return
        if stream_id in self.tasks and not self.tasks[stream_id].done():
            await self._error("An answer with this id is still streaming; stop it first.", id=stream_id,
                              code="busy")
            return
        admin_test = message.get("draft") is not None or message.get("as_admin") is True
        if admin_test and not await run_db(self.user.has_perm, "routing.change_route"):
            await self._error("Testing routes from the admin needs permission to change routes.", id=stream_id,
                              code="permission_denied", status=403)
            return
        if not admin_test and not self.can_play:
            await self._error(f"The playground needs the permission {PLAYGROUND_PERMISSION}.", id=stream_id,
                              code="permission_denied", status=403)
            return
        try:
            if message.get("draft") is not None:
                message = {**message, "route": message.get("route") or "draft"}
            body = _request_body(message)
        except InvalidRequest as error:
            await self._error(error.message, id=stream_id, code=error.code, param=error.param)
            return
        self.tasks[stream_id] = asyncio.ensure_future(
            self._stream(stream_id, body, draft=message.get("draft"), as_admin=admin_test))

    async def _stop(self, stream_id: Any) -> None:
        ids = [stream_id] if isinstance(stream_id, str) else list(self.tasks)
        for i in ids:
            task = self.tasks.get(i)
            if task is not None and not task.done():
                task.cancel()

    # --- one answer ---------------------------------------------------------------------
    async def _stream(self, stream_id: str, body: bytes, draft: Any = None, as_admin: bool = False) -> None:
        """One answer. The admin's "Test this route" (as_admin) calls as the staff
        pseudo-key like its non-streamed test call; with a `draft` it runs the change
        form's unsaved values (routing.drafts) instead of the saved route."""
        call = None
        started = time.monotonic()
        try:
            if as_admin:
                key = lookup.staff_key(self.user.get_username())
            else:
                key = await playground_keyinfo(self.user)
            if draft is not None:
                route = await run_db(draft_route, draft)
                call = await pipeline.plan(key, parse_chat_request(body), route)
            else:
                call = await pipeline.prepare_for_key(key, body)
            await self._json({"type": "start", "id": stream_id, "request_id": call.request_id,
                              "route": call.route.name})
            chunks = await pipeline.open_stream(call)
            try:
                async for chunk in chunks:
                    text = "".join((c.get("delta") or {}).get("content") or "" for c in chunk.choices)
                    if text:
                        await self._json({"type": "delta", "id": stream_id, "text": text})
            finally:
                await chunks.aclose()
            await self._json({"type": "done", "id": stream_id, "figures": figures(call, started)})
        except asyncio.CancelledError:
            # Stop (or the socket closed): the relay closed the upstream connection and
            # settles the request as client_closed.
            if call is not None:
                try:
                    await self._json({"type": "stopped", "id": stream_id, "figures": figures(call, started)})
                except Exception:  # noqa: BLE001 - the socket may be gone
                    pass
            raise
        except GatewayError as error:
            await self._error(error.message, id=stream_id, code=error.code, status=error.status,
                              request_id=call.request_id if call is not None else None)
        except Exception as exc:  # noqa: BLE001 - an error frame, never a dead socket
            error = pipeline_unexpected(exc, call.request_id if call is not None else None)
            await self._error(error.message, id=stream_id, code=error.code, status=error.status)
        finally:
            if self.tasks.get(stream_id) is asyncio.current_task():
                self.tasks.pop(stream_id, None)

    async def _json(self, payload: dict[str, Any]) -> None:
        await self.send(text_data=orjson.dumps(payload).decode())

    async def _error(self, message: str, **extra: Any) -> None:
        await self._json({"type": "error", "message": message, **{k: v for k, v in extra.items() if v is not None}})


def _abilities(user) -> tuple[bool, bool]:
    """(may use the playground, may test routes from the admin): one thread hop."""
    return user.has_perm(PLAYGROUND_PERMISSION), user.has_perm("routing.change_route")


def pipeline_unexpected(exc: Exception, request_id: str | None) -> GatewayError:
    from routing.api import unexpected

    return unexpected(exc, request_id)


def _request_body(message: dict[str, Any]) -> bytes:
    """The chat request a send message stands for (validated again by the pipeline)."""
    unknown = sorted(set(message) - ALLOWED_SEND_KEYS)
    if unknown:
        raise InvalidRequest(f"Unknown field '{unknown[0]}' in a send message.", param=unknown[0])
    route, messages = message.get("route"), message.get("messages")
    if not isinstance(route, str) or not route:
        raise InvalidRequest("Pick a route.", param="route")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty list of {role, content}.", param="messages")
    system = message.get("system")
    if system is not None and not isinstance(system, str):
        raise InvalidRequest("'system' must be a string.", param="system")
    body: dict[str, Any] = {
        "model": route,
        "messages": ([{"role": "system", "content": system}] if system else []) + messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    for name in ("temperature", "max_tokens"):
        if message.get(name) is not None:
            body[name] = message[name]
    return orjson.dumps(body)


def cache_text(note: dict[str, Any]) -> str:
    """The cache's outcome in a few words: "hit (12 s old, saved $0.0004, from openai/gpt-4o)"."""
    result = note.get("result", "")
    if result in ("hit", "semantic"):
        parts = ["from a request in flight"] if note.get("coalesced") else [f"{note.get('age_s', 0)} s old"]
        if note.get("similarity") is not None:
            parts.append(f"similarity {note['similarity']:.3f}")
        if note.get("saved_usd"):
            parts.append(f"saved ${note['saved_usd']}")
        if note.get("origin"):
            parts.append(f"answered by {note['origin']}")
        return f"{result} ({', '.join(parts)})"
    if result == "bypass":
        return f"bypass ({note.get('reason', '')})"
    return result


def figures(call, started: float) -> dict[str, Any]:
    """What the playground shows under an answer."""
    run, usage = call.run, call.usage_or_zero()
    target = run.target if run.calls else None
    guard = call.annotations.get("guardrails") or {}
    return {
        "request_id": call.request_id,
        "route": call.route.name,
        "provider": target.model.provider.name if target else "",
        "model": target.model.label if target else "",
        "attempts": run.calls,
        "attempt_log": [f"{a.target}={a.outcome}" for a in run.log[:10]],
        "fallbacks": max(0, len({a.target for a in run.log if a.called}) - 1),
        "ttft_ms": round(call.ttft * 1000, 1) if call.ttft is not None else None,
        "latency_ms": round((time.monotonic() - started) * 1000, 1),
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "usage_estimated": usage.estimated,
        "cost_usd": f"{call.cost:f}",
        "cache": cache_text(call.annotations.get("cache") or {}),
        "guardrails": {side: {name: d.get("outcome") for name, d in notes.items()} for side, notes in guard.items()},
    }
