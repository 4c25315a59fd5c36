"""The logic behind the routing app's "Test this route" admin page (on a route's change
page): "Explain" asks routing.dryrun what would happen (nobody is called); "Send it for
real" goes through the real pipeline as an API client would, except that the caller is
the signed-in admin instead of a virtual key: the answer is billed and recorded in the
usage ledger under the key prefix "admin". Breakers and health: routing/admin_breakers.py.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from billing.keys import KeyInfo
from gateway_project.errors import GatewayError
from providers.types import ChatResponse, ErrorKind, ProviderError

from providers.http import close_session, has_session

from . import engine, lookup, pipeline
from .dryrun import explain, request_body
from .models import Route, Strategy
from .task_detection import TaskDecision, TaskType

log = logging.getLogger("gateway.admin")
TEMPLATE = "admin/routing/route/test_route.html"

# What each error kind means to someone reading an attempt log or choosing retries.
ERROR_KIND_LABELS: dict[ErrorKind, str] = {
    ErrorKind.RATE_LIMITED: "Rate limited – the provider asked us to slow down (HTTP 429, overloaded)",
    ErrorKind.TIMEOUT: "Timeout – no answer in time",
    ErrorKind.UNAVAILABLE: "Unavailable – server error (5xx) or connection refused",
    ErrorKind.BAD_RESPONSE: "Bad response – malformed or cut-off answer",
    ErrorKind.AUTH: "Auth – the provider refused our API key (401/403); retrying rarely helps",
    ErrorKind.BAD_REQUEST: "Bad request – the provider rejected the request itself (400/404/422)",
    ErrorKind.CONTEXT_LENGTH: "Context length – prompt too long for the model; retrying the same model cannot help",
    ErrorKind.CONTENT_POLICY: "Content policy – refused by the provider's safety system",
}


def outcome_text(outcome: str) -> str:
    """An attempt's outcome as a sentence fragment."""
    if outcome == "ok":
        return "answered"
    if outcome == engine.SKIPPED:
        return "skipped: its circuit breaker is open"
    if outcome == engine.UNSUPPORTED:
        return "skipped: the model lacks what the request needs"
    if outcome == engine.NOT_TRANSLATABLE:
        return "skipped: the request cannot be put in this provider's format"
    kind = ErrorKind._value2member_map_.get(outcome)
    return f"failed: {ERROR_KIND_LABELS.get(kind, outcome)}" if kind else f"failed: {outcome}"


class OptionalJSONField(forms.JSONField):
    """Blank when there is no value: forms.JSONField writes the text `null` in the box."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class TestRouteForm(forms.Form):
    prompt = forms.CharField(
        label="Sample prompt",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text="What a user would ask, e.g. “Write a Python function that reverses a string.”",
    )
    system = forms.CharField(
        label="System prompt (optional)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text="Instructions an application puts before the conversation, e.g. “You are a support agent.”",
    )
    max_tokens = forms.IntegerField(
        label="Longest answer (max_tokens)",
        min_value=1,
        required=False,
        initial=256,
        help_text="The cost estimate assumes the answer is this long (an upper bound). Blank: no limit.",
    )
    stream = forms.BooleanField(
        label="Stream the answer",
        required=False,
        help_text="Only for “Send it for real”; the explanation is the same either way.",
    )
    metadata = OptionalJSONField(
        label="Metadata (optional JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text='Sent as the request\'s metadata, e.g. {"tier": "premium"}; conditional rules read it '
        "as metadata.tier.",
    )
    task_hint = forms.ChoiceField(
        label="Task hint (optional)",
        required=False,
        choices=[("", "— detect it from the prompt —"), *TaskType.choices],
        help_text="What a client would send in the x-gateway-task header: it overrides detection (task strategy).",
    )

    def clean_metadata(self) -> dict[str, Any]:
        value = self.cleaned_data.get("metadata")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Metadata must be a JSON object, e.g. {"tier": "premium"}.')
        return value


@dataclass(frozen=True, slots=True)
class AttemptRow:
    target: str
    outcome: str
    latency_ms: int
    status: int | None
    message: str


@dataclass(slots=True)
class RealCall:
    """What happened when the sample was sent for real, ready to show."""

    answer: str = ""
    error: str = ""  # a readable message when the request failed
    request_id: str = ""
    model: str = ""  # provider/model that answered (or was tried last)
    provider: str = ""
    latency_ms: int | None = None
    ttft_ms: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_estimated: bool = False
    cost: Decimal | None = None
    strategy: str = ""
    task: TaskDecision | None = None
    candidates: list[tuple[str, str]] = field(default_factory=list)  # (target, reason)
    attempts: list[AttemptRow] = field(default_factory=list)


admin_key = lookup.staff_key  # the caller of "Send it for real"


def _answer_text(response: ChatResponse) -> str:
    message = (response.choices[0].get("message") or {}) if response.choices else {}
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content:
        return content
    if message.get("tool_calls"):
        names = ", ".join((tc.get("function") or {}).get("name", "?") for tc in message["tool_calls"])
        return f"(no text: the model asked to call a tool: {names})"
    return "(the model returned an empty answer)"


def _result(call: pipeline.Call | None, answer: str = "", error: str = "") -> RealCall:
    result = RealCall(answer=answer, error=error)
    if call is None:
        return result
    run = call.run
    result.request_id = call.request_id
    result.latency_ms = int((time.monotonic() - run.started) * 1000)
    result.ttft_ms = int(call.ttft * 1000) if call.ttft is not None else None
    if run.target is not None:
        result.model, result.provider = run.target.model.label, run.target.model.provider.name
    if call.usage is not None:
        result.prompt_tokens, result.completion_tokens = call.usage.prompt_tokens, call.usage.completion_tokens
        result.usage_estimated = call.usage.estimated
    result.cost = call.cost if call.settled else None
    result.strategy = run.decision.strategy
    result.task = run.decision.task
    result.candidates = [(c.label, c.reason) for c in run.decision.candidates]
    result.attempts = [AttemptRow(a.target, outcome_text(a.outcome), a.latency_ms, a.status, a.message) for a in run.log]
    return result


async def send(body: bytes, key: KeyInfo, task_hint: str | None) -> RealCall:
    """The hot path for an admin pseudo-key (no virtual key to authenticate)."""
    call = None
    try:
        call = await pipeline.prepare_for_key(key, body, task_hint)
        if not call.req.stream:
            return _result(call, answer=_answer_text(await pipeline.complete(call)))
        parts = []
        async for chunk in await pipeline.open_stream(call):
            parts.extend((c.get("delta") or {}).get("content") or "" for c in chunk.choices)
        return _result(call, answer="".join(parts) or "(the model returned an empty answer)")
    except GatewayError as error:
        return _result(call, error=error.message)
    except ProviderError as error:  # a stream that broke after it had started
        return _result(call, error=f"The answer was cut off: {error.message}")


async def _send_once(body: bytes, key: KeyInfo, task_hint: str | None) -> RealCall:
    """send() from a sync admin view: under ASGI it runs on the server's loop (whose
    HTTP session stays); elsewhere on a loop of its own, whose session is closed."""
    short_lived = not has_session()
    try:
        return await send(body, key, task_hint)
    finally:
        if short_lived:
            await close_session()


def send_for_real(route: Route, data: dict[str, Any], username: str) -> RealCall:
    body = request_body(
        route.name, data["prompt"], system=data.get("system") or "", max_tokens=data.get("max_tokens"),
        metadata=data.get("metadata") or None, stream=bool(data.get("stream")),
    )
    try:
        return async_to_sync(_send_once)(body, admin_key(username), data.get("task_hint") or None)
    except Exception:  # the editor gets a sentence; the traceback goes to the log
        log.exception("admin test call of route %s failed unexpectedly", route.name)
        return RealCall(error="The gateway failed unexpectedly while sending the request; the details are in the server log.")


def test_route_view(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    route = model_admin.get_object(request, unquote(object_id))
    if route is None:
        raise Http404("No such route.")
    if not model_admin.has_change_permission(request, route):
        raise PermissionDenied
    form = TestRouteForm(request.POST or None)
    explanation = real = None
    problem = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if "_send" in request.POST:
            real = send_for_real(route, data, request.user.get_username())
        else:
            # The dry run gathers its signals as the real call would (gathering.gather_signals),
            # for the same caller, so a sticky route draws with the same id.
            try:
                explanation = explain(
                    route, data["prompt"], system=data["system"], max_tokens=data["max_tokens"],
                    metadata=data["metadata"], task_hint=data["task_hint"] or None,
                    key=admin_key(request.user.get_username()),
                )
            except GatewayError as error:
                problem = error.message
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Test the route “{route}”",
        "opts": opts,
        "original": route,
        "strategy_label": Strategy(route.strategy).label if route.strategy in Strategy.values else route.strategy,
        "form": form,
        "explanation": explanation,
        "real": real,
        "problem": problem,
        "media": model_admin.media + form.media,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, TEMPLATE, context)


# --- the Model health page (routing.admin.TargetHealthAdmin) -----------------------------
