"""Websocket consumers."""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer

from gateway_project import logs

# Application close codes (4000-4999 are the application's, RFC 6455 7.4.2).
CLOSE_UNKNOWN_PATH = 4404


class MessageLogContext:
    """A consumer mixin (first among the bases): each websocket message (connect,
    every frame, disconnect) is handled under its own log context, a new request_id
    and the socket's path, so its lines are told apart from other messages' and other
    sockets'. A pipeline Call started while handling a message takes that id; tasks
    the handler spawns keep it (asyncio copies the context into them)."""

    async def dispatch(self, message) -> None:
        token = logs.bind(logs.new_id(), ws_path=self.scope.get("path"))
        try:
            await super().dispatch(message)
        finally:
            logs.reset(token)


class PingConsumer(MessageLogContext, AsyncJsonWebsocketConsumer):
    """Echo probe proving the websocket transport works end to end."""

    async def receive_json(self, content, **kwargs):
        await self.send_json({"type": "pong", "echo": content})


class UnknownPathConsumer(MessageLogContext, AsyncWebsocketConsumer):
    """Every path no other route matches: the handshake is accepted and the socket is
    closed at once with CLOSE_UNKNOWN_PATH, so a client sees a websocket close that
    says why. Without it Channels' URLRouter raises and the server answers HTTP 500."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_UNKNOWN_PATH, reason="no websocket endpoint at this path")
