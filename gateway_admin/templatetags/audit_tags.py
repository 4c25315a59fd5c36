"""{% audit_trail_url original as url %}: the audit trail of one object, filtered
(empty when the object is not audited or the user may not see the trail)."""

from __future__ import annotations

from django import template

register = template.Library()


@register.simple_tag(takes_context=True)
def audit_trail_url(context, obj) -> str:
    from gateway_admin.audit_admin import trail_url_for

    request = context.get("request")
    user = getattr(request, "user", None)
    if obj is None or user is None or not user.has_perm("gateway_admin.view_auditentry"):
        return ""
    return trail_url_for(obj)
