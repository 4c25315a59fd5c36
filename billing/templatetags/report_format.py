"""{% load report_format %}: {{ amount|usd }}, the report pages' money rule
(billing.reports.formatting)."""

from __future__ import annotations

from django import template

from billing.reports.formatting import usd as _usd

register = template.Library()


@register.filter
def usd(value) -> str:
    return _usd(value)
