"""ASGI entry point: HTTP and websockets (Channels).

- /v1/*: the OpenAI-compatible API, a lean ASGI app (routing.api) outside Django's
  request cycle, which would cost thread hops per request.
- /healthz, /readyz: Django without the middleware stack (the admin's middlewares are
  MiddlewareMixin classes: under ASGI each costs a thread hop per request).
- everything else (admin, reports, management API, /metrics): Django as usual.
"""

import asyncio
import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
django_http = get_asgi_application()  # sets up Django before consumers are imported

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

# The admin's and reports' CSS/JS: served by the app itself, so one process is a
# complete deployment (put a CDN or reverse proxy in front for heavy traffic).
django_http = ASGIStaticFilesHandler(django_http)

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.handlers.exception import convert_exception_to_response  # noqa: E402

from routing.api import app as v1_api  # noqa: E402
from routing.cors import TransportHeaders  # noqa: E402
from streaming.origin import OriginValidator  # noqa: E402
from streaming.routing import websocket_urlpatterns  # noqa: E402

# CORS (GATEWAY_CORS_*) and X-Content-Type-Options on every /v1 response: outside the
# API's authentication, so a browser's preflight is answered first (routing/cors.py).
v1_api = TransportHeaders(v1_api)

PROBES = ("/healthz", "/readyz")

# uvicorn's and daphne's loggers have handlers of their own, configured before this
# module is imported: they get the same secret scrubbing as settings.LOGGING's.
from providers.secrets import install_on  # noqa: E402

install_on("uvicorn", "uvicorn.error", "uvicorn.access", "daphne", "django.channels.server")


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
    path = scope["path"]
    if path == "/v1" or path.startswith("/v1/"):
        await v1_api(scope, receive, send)  # the hot path: plain ASGI, no Django request cycle
    elif path in PROBES:
        await api_http(scope, receive, send)
    else:
        await django_http(scope, receive, send)


async def lifespan(scope, receive, send):
    """ASGI lifespan (uvicorn): at shutdown, close the upstream HTTP session and
    finish the usage rows still queued, instead of dropping them with the loop."""
    from billing.usage import close_ledger_connection, drain
    from gateway_project import background
    from providers.http import close_session

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await background.wait(timeout_s=10)  # settlements of requests whose clients left
            await drain()
            await asyncio.get_running_loop().run_in_executor(None, close_ledger_connection)
            await close_session()
            await send({"type": "lifespan.shutdown.complete"})
            return


application = ProtocolTypeRouter(
    {
        "http": http,
        # Same-origin, CSRF_TRUSTED_ORIGINS or GATEWAY_WS_ALLOWED_ORIGINS only (streaming/origin.py).
        "websocket": OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        "lifespan": lifespan,
    }
)


# Everything imported so far lives as long as the process: move it out of the
# garbage collector's view, so full collections stop scanning Django's object graph
# (they otherwise stall the event loop for tens of milliseconds: p99 latency).
gc.collect()
gc.freeze()
