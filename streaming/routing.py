"""Websocket routes (the playground arrives with its own issue). The last pattern
catches every other path: see UnknownPathConsumer."""

from __future__ import annotations

from django.urls import path, re_path

from .consumers import PingConsumer, UnknownPathConsumer

websocket_urlpatterns = [
    path("ws/ping/", PingConsumer.as_asgi()),
    re_path(r"", UnknownPathConsumer.as_asgi()),  # keep last
]
