"""Guardrail (a rule the gateway enforces on prompts and answers) and the violation
log (what a guardrail found: never the matched text)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from providers.models import Timestamped, validate_name

from .kinds import KINDS, ParamError, kind_choices


class Stage(models.TextChoices):
    INPUT = "input", "Input – the prompt, before it leaves for a provider"
    OUTPUT = "output", "Output – the answer, before the client sees it (streams too)"
    BOTH = "both", "Both – the prompt and the answer"


class Action(models.TextChoices):
    REDACT = "redact", "Redact – replace each finding with a placeholder such as [EMAIL_1]"
    BLOCK = "block", "Block – refuse the request (400, content_policy_violation)"
    FLAG = "flag", "Flag (shadow mode) – change nothing, only log and count what it would do"


class OnError(models.TextChoices):
    BLOCK = "block", "Block – fail closed: if the check fails, refuse the request"
    ALLOW = "allow", "Allow – fail open: if the check fails, let the request through (logged)"


class Guardrail(Timestamped):
    name = models.CharField(max_length=100, unique=True, validators=[validate_name],
                            help_text="Shown in error messages, headers, the violation log and metrics.")
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=30, choices=kind_choices, help_text="What it looks for.")
    stage = models.CharField(max_length=10, choices=Stage.choices, default=Stage.BOTH)
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.FLAG,
                              help_text="Start with Flag to watch a new rule before enforcing it.")
    on_error = models.CharField("if the check fails", max_length=10, choices=OnError.choices, default=OnError.BLOCK)
    restore = models.BooleanField(
        "restore in answers", default=False,
        help_text="Redact only: put the originals back where the answer repeats a placeholder, so the provider "
        "never sees the data but the user's answer reads naturally.",
    )
    params = models.JSONField("parameters", default=dict, blank=True,
                              help_text="The kind's settings (the form fields below fill this in).")
    routes = models.ManyToManyField("routing.Route", blank=True, related_name="+",
                                    help_text="Only on these routes. None selected = every route.")
    teams = models.ManyToManyField("billing.Team", blank=True, related_name="+",
                                   help_text="Only for keys of these teams. None selected = every team.")
    keys = models.ManyToManyField("billing.VirtualKey", blank=True, related_name="+",
                                  help_text="Only for these keys. None selected = every key.")
    order = models.PositiveSmallIntegerField(default=100, help_text="Lower runs first (and names the block first).")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["order", "name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        kind = KINDS.get(self.kind)
        if kind is None:
            raise ValidationError({"kind": f"Unknown kind '{self.kind}'."})
        if self.stage not in kind.stages:
            allowed = " or ".join(sorted(kind.stages))
            errors.setdefault("stage", []).append(f"A {kind.name} guardrail checks stage {allowed} only.")
        if self.action not in kind.actions:
            errors.setdefault("action", []).append(
                f"A {kind.name} guardrail cannot {self.action}: it finds no span to replace; use block or flag.")
        if self.restore and self.action != Action.REDACT:
            errors.setdefault("restore", []).append("Restore applies to the redact action only.")
        try:
            self.params = kind.clean(self.params or {})
        except ParamError as exc:
            where = f"parameter '{exc.param}' " if exc.param else ""
            errors.setdefault("params", []).append(f"{where}{exc.message}")
        if errors:
            raise ValidationError(errors)


class Violation(models.Model):
    """One guardrail's decision on one request: who, where, what kind of finding and
    how many — never the matched text, the prompt or the answer."""

    class Outcome(models.TextChoices):
        REDACTED = "redacted", "Redacted"
        BLOCKED = "blocked", "Blocked"
        FLAGGED = "flagged", "Flagged (shadow mode)"
        ERROR_BLOCKED = "error_blocked", "Check failed – blocked (fail closed)"
        ERROR_ALLOWED = "error_allowed", "Check failed – allowed (fail open)"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    guardrail = models.ForeignKey(Guardrail, null=True, on_delete=models.SET_NULL, related_name="violations",
                                  db_constraint=False)  # written late: the guardrail may be gone by then
    guardrail_name = models.CharField(max_length=100, db_index=True)
    stage = models.CharField(max_length=10)  # input | output
    action = models.CharField(max_length=10, choices=Action.choices)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    request_id = models.CharField(max_length=64, db_index=True)
    key_id = models.BigIntegerField(null=True, blank=True)
    key_prefix = models.CharField(max_length=20, blank=True)
    team_id = models.BigIntegerField(null=True, blank=True)
    team_name = models.CharField(max_length=100, blank=True)
    route_name = models.CharField(max_length=100, blank=True)
    entities = models.JSONField(default=dict, help_text="Finding counts by type, e.g. {\"email\": 2}.")
    stream = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["guardrail_name", "created_at"], name="violation_guardrail_time")]

    def __str__(self) -> str:
        return f"{self.guardrail_name} {self.outcome} ({self.request_id})"
