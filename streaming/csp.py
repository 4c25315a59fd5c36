"""Content-Security-Policy for the Django pages (admin, reports, playground, API docs):
django-csp's middleware, with the page's own websocket origin (ws:// and wss:// of the
host asked for) added to connect-src, so the playground and "Test this route" may open
/ws/playground/ in browsers that do not count ws: as 'self'.

The policy itself is settings.CONTENT_SECURITY_POLICY (docs/security/transport.md).
"""

from __future__ import annotations

from csp.middleware import CSPMiddleware as _CSPMiddleware
from csp.middleware import PolicyParts
from django.core.exceptions import DisallowedHost


class CSPMiddleware(_CSPMiddleware):
    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()  # validated against ALLOWED_HOSTS
        except DisallowedHost:
            return parts
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", ()), f"ws://{host}", f"wss://{host}"]
        parts.update = update
        return parts
