"""The guardrail sandbox (admin): paste a text, pick guardrails — switched on or not —
and see each finding, the text as a provider would receive it, and the answer as the
client would read it with the originals restored, before switching a guardrail on.

Nothing here is stored or logged: the text lives only in this request and its page.
Classifier guardrails are not run here (they call a route: use that route's test page).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from .detectors.base import merge
from .engine import ERROR_ALLOWED, ERROR_BLOCKED, Vault, check_input, check_output
from .models import Guardrail
from .policy import GuardrailInfo, info

MAX_TEXT = 100_000


class SandboxForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 10, "cols": 90, "autofocus": True}),
                           max_length=MAX_TEXT, strip=False, help_text="Not stored, not logged.")
    guardrails = forms.ModelMultipleChoiceField(
        queryset=Guardrail.objects.order_by("order", "name"), widget=forms.CheckboxSelectMultiple,
        help_text="Switched off ones too: try a rule before enabling it.")
    direction = forms.ChoiceField(choices=[("input", "as a prompt (input)"), ("output", "as an answer (output)")],
                                  initial="input", widget=forms.RadioSelect)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The page invites trying switched-off guardrails: say which ones those are.
        self.fields["guardrails"].label_from_instance = lambda g: (
            f"{g.name} ({g.kind}, {g.action}{', switched off' if not g.enabled else ''})")


def sandbox_view(request: HttpRequest) -> HttpResponse:
    initial: dict[str, Any] = {}
    if request.GET.get("guardrail", "").isdigit():
        initial["guardrails"] = Guardrail.objects.filter(pk=int(request.GET["guardrail"]))
    form = SandboxForm(request.POST or None, initial=initial)
    result = None
    if request.method == "POST" and form.is_valid():
        rows = list(form.cleaned_data["guardrails"])
        result = run(form.cleaned_data["text"], [info(g) for g in rows], form.cleaned_data["direction"])
    context = {
        **admin.site.each_context(request),
        "title": "Guardrail sandbox",
        "form": form,
        "result": result,
        "opts": Guardrail._meta,
    }
    return TemplateResponse(request, "admin/guardrails/guardrail/sandbox.html", context)


def run(text: str, guardrails: list[GuardrailInfo], direction: str) -> dict[str, Any]:
    """What the chosen guardrails do with `text` in one direction (each as configured,
    whatever its own stage): per guardrail its findings, and the end result."""
    rows = []
    for g in guardrails:
        row: dict[str, Any] = {"guardrail": g, "findings": [], "error": "", "applies": _applies(g, direction)}
        if g.check is None:
            row["error"] = g.broken
        elif g.is_async:
            row["error"] = "not run in the sandbox: it asks a route (use Test this route on that route)"
        elif g.spans:
            try:
                row["findings"] = [(f.entity, text[f.start:f.end], f.start) for f in merge(g.check.find(text))]
            except Exception as exc:  # noqa: BLE001 - shown, like the gateway would log it
                row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    used = [g for g in guardrails if _applies(g, direction) and not g.is_async]
    vault = Vault([text])
    if direction == "input":
        result = async_to_sync(check_input)(used, [text], vault, None)
        sent = result.texts[0]
        decisions = result.decisions
        answer = vault.restore(sent)
    else:
        out = check_output(used, text, vault)
        sent, decisions, answer = text, out.decisions, out.text
    by_name = {d.guardrail.name: d for d in decisions}
    for row in rows:
        d = by_name.get(row["guardrail"].name)
        row["outcome"] = d.outcome if d else ("not run" if row["guardrail"].is_async else
                                              "passed" if row["applies"] else "not on this side")
        if d and not row["findings"] and d.entities:
            row["findings"] = [(e, "", None) for e in sorted(d.entities)]
        if d and d.outcome in (ERROR_BLOCKED, ERROR_ALLOWED) and not row["error"]:
            row["error"] = "the check failed"
    blocked = next((d for d in decisions if d.enforced_block), None)
    return {
        "rows": rows,
        "direction": direction,
        "blocked": blocked.guardrail.name if blocked else "",
        "sent": sent,
        "answer": answer,
        "counts": dict(Counter(e for d in decisions for e in d.entities.elements())),
    }


def _applies(g: GuardrailInfo, direction: str) -> bool:
    return g.input if direction == "input" else g.output
