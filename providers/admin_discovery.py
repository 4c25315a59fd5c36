"""The "Discover models" page of a provider (providers.admin.ProviderAdmin).

GET lists what the provider's API offers (providers.discovery), each model with the
capabilities it reports, the catalogue's prices (and the date they were checked) and
whether it is already configured. POST adds the ticked ones, asking the API again
first: what is created comes from the provider and the catalogue, never from values
posted back by the browser.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from .discovery import add_models, discover
from .models import Model

TEMPLATE = "admin/providers/provider/discover.html"


def discover_view(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    provider = model_admin.get_object(request, unquote(object_id))
    if provider is None:
        raise Http404("No such provider.")
    if not model_admin.has_view_permission(request, provider):
        raise PermissionDenied
    can_add = request.user.has_perm(f"{Model._meta.app_label}.add_{Model._meta.model_name}")
    if request.method == "POST" and not can_add:
        raise PermissionDenied
    found = discover(provider)
    change_url = reverse("admin:providers_provider_change", args=[provider.pk])
    if request.method == "POST" and not found.error:
        wanted = set(request.POST.getlist("add"))
        created = add_models(provider, [c for c in found.candidates if c.upstream_id in wanted])
        if created:
            priced = [m.name for m in created if not m.unpriced]
            messages.success(request, f"Added {len(created)} model(s) to {provider.name}: "
                             + ", ".join(m.name for m in created) + "."
                             + (f" Prices from the catalogue for {', '.join(priced)}." if priced else ""))
            if unpriced := [m.name for m in created if m.unpriced]:
                messages.warning(request, f"No catalogue price for {', '.join(unpriced)}: they are unpriced (served, "
                                 "but billed at $0 and flagged) until you set their prices.")
            return HttpResponseRedirect(change_url)
        messages.info(request, "Nothing added: tick the models to add.")
    elif found.error:
        level = messages.INFO if found.unsupported else messages.ERROR
        messages.add_message(request, level, found.error)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "original": provider,
        "title": f"Discover models of {provider.name}",
        "discovery": found,
        "can_add": can_add,
        "new_count": sum(1 for c in found.candidates if not c.configured_as),
        "change_url": change_url,
        "free": provider.spec.free if provider.spec else False,
    }
    return TemplateResponse(request, TEMPLATE, context)
