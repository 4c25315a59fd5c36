"""{% load gateway_oidc %}{% oidc_sign_in_url as url %}: the single sign-on start URL
(with the page's `next`), or "" when single sign-on is not configured (the admin login
page, templates/admin/login.html)."""

from __future__ import annotations

from django import template
from django.urls import reverse
from django.utils.http import urlencode

from gateway_admin import oidc

register = template.Library()


@register.simple_tag(takes_context=True)
def oidc_sign_in_url(context) -> str:
    if not oidc.enabled():
        return ""
    url = reverse("oidc_authentication_init")
    next_url = context.get("next")
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url
