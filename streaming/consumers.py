from channels.generic.websocket import AsyncJsonWebsocketConsumer


class PingConsumer(AsyncJsonWebsocketConsumer):
    """Echo probe proving the websocket transport works end to end."""

    async def receive_json(self, content, **kwargs):
        await self.send_json({"type": "pong", "echo": content})
