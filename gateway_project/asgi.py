"""ASGI entry point: HTTP (Django, async views) and websockets (Channels).

API paths (/v1, probes) go to a Django handler without the middleware stack: the
admin's middlewares (sessions, CSRF, auth, messages, ...) are MiddlewareMixin
classes, and under ASGI each of them costs a thread hop per request. The API
authenticates with virtual keys and needs none of them.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
django_http = get_asgi_application()  # sets up Django before consumers are imported

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.handlers.exception import convert_exception_to_response  # noqa: E402

from streaming.routing import websocket_urlpatterns  # noqa: E402

API_PREFIXES = ("/v1/", "/healthz", "/readyz")


class APIHandler(ASGIHandler):
    """Django's ASGI handler with an empty middleware chain."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        get_response = self._get_response_async if is_async else self._get_response
        self._middleware_chain = convert_exception_to_response(get_response)


api_http = APIHandler()


async def http(scope, receive, send):
    handler = api_http if scope["path"].startswith(API_PREFIXES) else django_http
    await handler(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
