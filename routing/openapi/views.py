"""Documentation-only views of the /v1 endpoints (routing.api serves them).

Under ASGI no /v1 request reaches Django (gateway_project/asgi.py); these views are
in the schema's URLconf only (gateway_project/openapi_urls.py), never in the site's, and
answer 404 in OpenAI's format if anything ever routes a request to them.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.authentication import BaseAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import extensions  # noqa: F401 - registers the schemas of the custom fields
from . import serializers as s


class VirtualKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <virtual key>` (checked by billing.keys.authenticate on the
    /v1 hot path; this class only names the scheme for the schema)."""

    def authenticate(self, request: Request) -> None:
        return None


class VirtualKeyScheme(OpenApiAuthenticationExtension):
    target_class = VirtualKeyAuthentication
    name = "virtualKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "A virtual key issued by the gateway."}


def _errors(*statuses: int) -> dict:
    return {status: OpenApiResponse(s.Error, description=WHEN[status]) for status in statuses}


WHEN = {
    400: "Malformed JSON or an invalid parameter (`param` names it); the provider refused the request itself.",
    401: "Missing, unknown, revoked or expired key.",
    404: "Unknown or disabled route, or a route the key may not use (the same answer: routes are not enumerable).",
    405: "Wrong method.",
    413: "Body over GATEWAY_MAX_BODY_BYTES.",
    429: "A rate limit or budget of the key or its team; or too many failed authentications from this address "
         "or for this key prefix (`too_many_failed_attempts`, with Retry-After).",
    502: "Every attempt failed, the last with a bad answer, an auth failure or an unknown model upstream.",
    503: "Every attempt failed, the last unavailable or rate limited; or no enabled target.",
    504: "Every attempt failed, the last by timeout.",
}


class _DocOnly(APIView):
    authentication_classes = [VirtualKeyAuthentication]
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]  # /v1 takes JSON only

    def _not_here(self) -> Response:
        error = {"message": "The /v1 API is served by the gateway's ASGI application.", "type": "invalid_request_error",
                 "param": None, "code": "unknown_url"}
        return Response({"error": error}, status=404)


class ChatCompletions(_DocOnly):
    @extend_schema(
        operation_id="createChatCompletion",
        tags=["v1"],
        summary="Create a chat completion (OpenAI-compatible)",
        request=s.ChatCompletionRequest,
        examples=[OpenApiExample("A question", request_only=True, value={
            "model": "chat-default", "messages": [{"role": "system", "content": "Be brief."},
                                                  {"role": "user", "content": "What is a gateway?"}],
            "max_tokens": 64})],
        responses={
            (200, "application/json"): OpenApiResponse(s.ChatCompletion, description="`stream` false (default)."),
            (200, "text/event-stream"): OpenApiResponse(
                s.ChatCompletionChunk,
                description="`stream` true: server-sent events, each `data: <a ChatCompletionChunk>`, then "
                            "`data: [DONE]`.",
            ),
            **_errors(400, 401, 404, 405, 413, 429, 502, 503, 504),
        },
    )
    def post(self, request: Request) -> Response:
        return self._not_here()


class Models(_DocOnly):
    @extend_schema(operation_id="listModels", tags=["v1"], summary="List the routes the key may use",
                   responses={200: s.ModelList, **_errors(401, 429)})
    def get(self, request: Request) -> Response:
        return self._not_here()


class ModelDetail(_DocOnly):
    @extend_schema(operation_id="retrieveModel", tags=["v1"], summary="One route the key may use",
                   parameters=[OpenApiParameter("model", str, OpenApiParameter.PATH, description="A route name.")],
                   responses={200: s.Model, **_errors(401, 404, 429)})
    def get(self, request: Request, model: str) -> Response:
        return self._not_here()
