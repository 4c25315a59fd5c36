"""Websocket routes: the ping probe and the playground. The last pattern
catches every other path: see UnknownPathConsumer."""

from __future__ import annotations

from django.urls import path, re_path

from .consumers import PingConsumer, UnknownPathConsumer
from .playground import PlaygroundConsumer

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
    path("ws/playground/", PlaygroundConsumer.as_asgi()),
    re_path(r"", UnknownPathConsumer.as_asgi()),  # keep last
]
