"""The request as the audit trail's "who": its user (session or management API token)
and client address are read from it when a change is recorded (gateway_admin.audit).

Sync and async capable, so it adds no thread hop under ASGI. /v1 never passes here:
routing.api serves it outside Django's middleware (nothing new on the hot path).
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from . import audit


class AuditContextMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        token = audit.bind_request(request)
        try:
            return self.get_response(request)
        finally:
            audit.unbind(token)

    async def __acall__(self, request):
        token = audit.bind_request(request)
        try:
            return await self.get_response(request)
        finally:
            audit.unbind(token)
