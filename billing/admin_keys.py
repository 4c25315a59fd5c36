"""The confirmation and result pages of the key admin: rotate (grace period, new
secrets shown once) and revoke. State changes go through billing.keys only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from .keys import MAX_GRACE_SECONDS, IssuedKey, KeyStateError, revoke_key, rotate_key
from .models import VirtualKey

TEMPLATES = "admin/billing/virtualkey/"


def key_status(key: VirtualKey) -> str:
    if key.is_revoked:
        return "revoked"
    if key.is_expired:
        return "expired"
    if key.replaced_by_id is not None:
        return "rotated (in grace period)"
    return "active"


class RotateForm(forms.Form):
    grace_minutes = forms.IntegerField(
        label="Grace period (minutes)",
        min_value=0,
        max_value=MAX_GRACE_SECONDS // 60,
        initial=60,
        help_text="How long the old secret keeps working, so clients can switch over. 0 = it stops at once.",
    )


@dataclass
class Rotation:
    old: VirtualKey
    issued: IssuedKey | None = None
    problem: str = ""


class KeyConfirmations:
    """Mixed into VirtualKeyAdmin (a ModelAdmin)."""

    def rotate_keys(self, request: HttpRequest, keys: list[VirtualKey], *, bulk: bool) -> HttpResponse:
        form = RotateForm(request.POST if request.POST.get("post") == "yes" else None)
        if not form.is_valid():
            return self._page(request, "rotate_confirmation.html", keys, bulk, form=form,
                              title="Rotate keys?" if bulk else "Rotate this key?", action="rotate_selected")
        grace = form.cleaned_data["grace_minutes"] * 60
        done = []
        for key in keys:
            try:
                issued = rotate_key(key, grace)
            except KeyStateError as exc:
                done.append(Rotation(key, problem=str(exc)))
                continue
            until = f"{key.expires_at:%Y-%m-%d %H:%M} UTC"
            self.log_change(request, key, f"Rotated: replaced by {issued.key}; works until {until}.")
            self.log_addition(request, issued.key, f"Issued by rotating {key}.")
            done.append(Rotation(key, issued))
        response = self._page(request, "rotate_done.html", keys, bulk, rotations=done, title="New key secrets")
        # The page holds secrets: never cached by the browser or a proxy.
        add_never_cache_headers(response)
        response["Cache-Control"] += ", no-store"
        return response

    def revoke_keys(self, request: HttpRequest, keys: Iterable[VirtualKey]) -> None:
        revoked = []
        for key in keys:
            if key.revoked_at is None:
                revoke_key(key)
                self.log_change(request, key, "Revoked.")
                revoked.append(key)
        if revoked:
            names = ", ".join(str(k) for k in revoked)
            self.message_user(
                request,
                f"Revoked {len(revoked)} key{'s' if len(revoked) != 1 else ''}: {names}. "
                "Clients using them are refused within seconds.",
                messages.SUCCESS,
            )
        else:
            self.message_user(request, "Nothing to do: the selected keys were already revoked.", messages.INFO)

    def confirm_revoke(self, request: HttpRequest, keys: list[VirtualKey], *, bulk: bool) -> HttpResponse:
        return self._page(
            request, "revoke_confirmation.html", keys, bulk,
            title="Revoke keys?" if bulk else "Revoke this key?",
            to_revoke=sum(1 for k in keys if not k.is_revoked),
        )

    def _page(self, request: HttpRequest, template: str, keys: list[VirtualKey], bulk: bool, **extra) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "keys": [(k, key_status(k)) for k in keys],
            "bulk": bulk,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
            **extra,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, TEMPLATES + template, context)
