"""Errors the gateway returns to API clients, in OpenAI's error format.

Raised anywhere on the hot path (auth, validation, routing, upstream) and rendered
once, by the API views. Messages must never contain secrets.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    status = 400
    type = "invalid_request_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(GatewayError):
    status = 400
    code = "invalid_request"


class AuthenticationFailed(GatewayError):
    status = 401
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"
    code = "route_not_allowed"


class NotFound(GatewayError):
    status = 404
    code = "model_not_found"


class UpstreamFailed(GatewayError):
    """Every attempt upstream failed (status 502, 503 or 504 decided by the engine)."""

    status = 502
    type = "upstream_error"
    code = "upstream_failed"


class ServiceUnavailable(GatewayError):
    """The gateway itself cannot serve (e.g. its database is unreachable)."""

    status = 503
    type = "server_error"
    code = "gateway_unavailable"


class InternalError(GatewayError):
    status = 500
    type = "server_error"
    code = "internal_error"
