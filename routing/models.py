"""Route (the public model name clients send) and its targets."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from providers.models import Model, Timestamped, validate_name
from providers.types import ErrorKind

RETRYABLE_DEFAULT = [ErrorKind.RATE_LIMITED, ErrorKind.TIMEOUT, ErrorKind.UNAVAILABLE, ErrorKind.BAD_RESPONSE]


def default_retry_on() -> list[str]:
    return [str(k) for k in RETRYABLE_DEFAULT]


class Strategy(models.TextChoices):
    SINGLE = "single", "Single – always the first enabled target"
    FALLBACK = "fallback", "Fallback – targets in order, next one when a target fails"
    LOADBALANCE = "loadbalance", "Load balance – weighted random split (A/B), optionally sticky per user"
    LEAST_LATENCY = "least_latency", "Least latency – the fastest target recently, exploring the others"
    COST = "cost", "Cost – the cheapest target good enough (quality) and big enough (context)"
    TASK = "task", "Task – detect the task type (code, summary, ...) and use its targets"
    CONDITIONAL = "conditional", "Conditional – rules on request metadata and parameters"


class StickyBy(models.TextChoices):
    NONE = "none", "Not sticky – every request draws anew"
    KEY = "key", "Virtual key – each key always lands on the same target"
    USER = "user", "End user – the request's `user` field (else the key) decides"


class WhenAllOpen(models.TextChoices):
    FAIL = "fail", "Answer 503 at once (protects failing providers)"
    TRY_ANYWAY = "try_anyway", "Try the targets anyway"


class CacheMode(models.TextChoices):
    OFF = "off", "Off – every request goes to a provider"
    EXACT = "exact", "Exact – the same request (messages and parameters) gets the stored answer"
    SEMANTIC = "semantic", "Semantic – also answers a question asked in other words (same context)"


class CacheScope(models.TextChoices):
    TEAM = "team", "Team – keys of the same team share answers (a key without a team: that key only)"
    KEY = "key", "Key – each virtual key has its own answers"
    GLOBAL = "global", "Whole gateway – every caller of this route shares answers"


class Route(Timestamped):
    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[validate_name],
        help_text="What clients send as `model`, e.g. chat-default.",
    )
    description = models.TextField(blank=True)
    strategy = models.CharField(max_length=20, choices=Strategy.choices, default=Strategy.FALLBACK)
    timeout_s = models.DecimalField(
        "overall timeout (s)",
        max_digits=6,
        decimal_places=1,
        default=Decimal("120"),
        validators=[MinValueValidator(Decimal("0.1"))],
        help_text="Longest a client waits for the first answer byte, all attempts included.",
    )
    max_attempts = models.PositiveSmallIntegerField(
        "attempts per target",
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text="1 = no retry on the same target before moving to the next.",
    )
    backoff_base_ms = models.PositiveIntegerField(
        default=200, help_text="First retry waits up to this long; each further retry doubles it (with jitter)."
    )
    backoff_max_ms = models.PositiveIntegerField(default=5000, help_text="Upper bound of one backoff wait.")
    retry_after_cap_s = models.DecimalField(
        "Retry-After cap (s)",
        max_digits=6,
        decimal_places=1,
        default=Decimal("10"),
        help_text="A provider asking to wait longer than this is skipped for the next target instead.",
    )
    retry_on = models.JSONField(
        default=default_retry_on,
        blank=True,
        help_text=f"Error kinds retried on the same target. Choose from: {', '.join(k.value for k in ErrorKind)}.",
    )
    # --- strategy settings (each used by one strategy; ignored by the others) ---
    sticky_by = models.CharField(
        max_length=10, choices=StickyBy.choices, default=StickyBy.NONE,
        help_text="Load balance: keep each key or user on the same target, so an A/B split is stable.",
    )
    explore_rate = models.DecimalField(
        max_digits=3, decimal_places=2, default=Decimal("0.10"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="Least latency: share of requests (0-1) sent to a non-fastest target to keep estimates fresh.",
    )
    min_quality = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(100)],
        help_text="Cost: only models whose quality score is at least this are used.",
    )
    rules = models.JSONField(
        default=list, blank=True,
        help_text='Conditional: ordered rules, the first that matches chooses the targets, e.g. '
        '[{"when": "metadata.tier == \'premium\'", "targets": ["openai/gpt-4o"]}, '
        '{"when": "max_tokens > 2000", "targets": ["anthropic/claude-sonnet"]}]. '
        "No match: all targets in order.",
    )
    # --- circuit breaker (blank = the gateway-wide default from the environment) ---
    breaker_failure_threshold = models.PositiveSmallIntegerField(
        "open after consecutive failures", null=True, blank=True,
        help_text="A target's breaker opens after this many failures in a row (429, 5xx, timeouts). 0 = rule off.",
    )
    breaker_failure_rate = models.DecimalField(
        "open above failure rate", max_digits=3, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1"))],
        help_text="...or when this share (0-1) of its recent requests failed. 0 = rule off.",
    )
    breaker_window_s = models.PositiveIntegerField(
        "failure-rate window (s)", null=True, blank=True, help_text="How far back 'recent' reaches."
    )
    breaker_min_requests = models.PositiveIntegerField(
        null=True, blank=True, help_text="The failure-rate rule waits for at least this many recent requests."
    )
    breaker_cooldown_s = models.PositiveIntegerField(
        "cooldown (s)", null=True, blank=True,
        help_text="An open breaker lets one trial request through after this long; success closes it.",
    )
    when_all_open = models.CharField(
        "when every target's breaker is open", max_length=12, choices=WhenAllOpen.choices, default=WhenAllOpen.FAIL
    )
    # The answer cache (routing.cache): off unless a route editor turns it on.
    cache_mode = models.CharField("cache", max_length=10, choices=CacheMode.choices, default=CacheMode.OFF)
    cache_ttl_s = models.PositiveIntegerField(
        "keep answers for (s)", default=3600,
        validators=[MinValueValidator(1), MaxValueValidator(30 * 86400)],
        help_text="How long a stored answer may be served (1 s to 30 days).",
    )
    cache_scope = models.CharField(
        "shared between", max_length=10, choices=CacheScope.choices, default=CacheScope.TEAM,
        help_text="Who may receive an answer stored for someone else. Answers never cross this line.",
    )
    cache_threshold = models.DecimalField(
        "similarity threshold", max_digits=4, decimal_places=3, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0.5")), MaxValueValidator(Decimal("1"))],
        help_text="Semantic mode: how alike two questions must be (0.5-1, higher is stricter). "
                  "Blank: the gateway's measured default.",
    )
    cache_max_messages = models.PositiveSmallIntegerField(
        "longest cacheable conversation", default=20, validators=[MinValueValidator(1)],
        help_text="Requests with more messages than this are not cached (long chats rarely repeat).",
    )
    cache_only_deterministic = models.BooleanField(
        "only deterministic requests", default=True,
        help_text="Cache only requests with temperature 0 (the same answer every time). Untick to cache "
                  "sampled answers too: every caller then gets the first answer drawn.",
    )
    cache_allow_tools = models.BooleanField(
        "cache requests with tools", default=False,
        help_text="Tool-calling requests usually depend on the world outside the prompt; tick only if "
                  "your tools' answers do not change.",
    )
    cache_epoch = models.PositiveIntegerField(
        default=0, editable=False, help_text="Raised by 'purge the cache': older answers are never served."
    )
    # Tracing (routing.tracing; docs/operations/tracing.md): spans never carry prompts or
    # answers unless a route editor ticks this, for debugging one route.
    trace_content = models.BooleanField(
        "prompts and answers in traces", default=False,
        db_default=False,  # expand-then-contract: the previous release inserts routes without it
        help_text="Debugging only: put this route's prompts and answers in its trace spans, as the "
                  "guardrails left them (redacted). Off: spans carry no content.",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from .conditions import ConditionError, parse_rules

        kinds = {k.value for k in ErrorKind}
        if not isinstance(self.retry_on, list) or not all(k in kinds for k in self.retry_on):
            raise ValidationError({"retry_on": f"A list of error kinds among: {', '.join(sorted(kinds))}."})
        if self.backoff_max_ms is not None and self.backoff_base_ms is not None and self.backoff_max_ms < self.backoff_base_ms:
            raise ValidationError({"backoff_max_ms": "Must be at least the base backoff."})
        try:
            parse_rules(self.rules)
        except ConditionError as exc:
            raise ValidationError({"rules": str(exc)}) from None
        if self.strategy == Strategy.CONDITIONAL and not self.rules:
            raise ValidationError({"rules": "A conditional route needs at least one rule."})


class RouteTarget(Timestamped):
    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="targets")
    model = models.ForeignKey("providers.Model", on_delete=models.PROTECT, related_name="route_targets")
    order = models.PositiveSmallIntegerField(default=0, help_text="Lower goes first.")
    weight = models.PositiveIntegerField(
        default=1, help_text="Load balance: share of traffic (weights 3 and 1 split 75% / 25%). 0 = only as fallback."
    )
    task_types = models.JSONField(
        default=list, blank=True,
        help_text="Task strategy: the task types this target serves (e.g. code_generation). "
        "Empty = a default target, used for any task without its own targets.",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["route", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["route", "model"], name="route_target_unique_model"),
        ]

    def __str__(self) -> str:
        return f"{self.route} → {self.model}"

    def clean(self) -> None:
        from .task_detection import TaskType

        known = set(TaskType.values)
        if not isinstance(self.task_types, list) or not all(t in known for t in self.task_types):
            raise ValidationError({"task_types": f"A list of task types among: {', '.join(sorted(known))}."})


class TargetHealth(Model):
    """Every model with its live health (breaker, latency, probes), for a read-only
    admin page. A proxy: no table of its own."""

    class Meta:
        proxy = True
        verbose_name = verbose_name_plural = "model health"


# --- issue 15: the Celery worker heartbeat (routing.heartbeat) ---
class WorkerHeartbeat(Timestamped):
    """The latest heartbeat of one Celery worker: one row per worker, updated by the
    beat task routing.tasks.worker_heartbeat (routing.heartbeat)."""

    hostname = models.CharField(max_length=255, unique=True, help_text="The worker's node name (celery@host).")
    beat_at = models.DateTimeField(help_text="When this worker last ran the heartbeat task.")
    pid = models.PositiveIntegerField(null=True, blank=True, help_text="The worker process that ran it.")

    class Meta:
        ordering = ["-beat_at"]
        verbose_name = "worker heartbeat"

    def __str__(self) -> str:
        return f"{self.hostname} at {self.beat_at:%Y-%m-%d %H:%M:%S}"
