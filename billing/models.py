"""Teams, virtual keys and the usage ledger."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.conf import settings
from django.db import models
from django.utils import timezone

from providers.models import Timestamped, validate_name


# Rate limits mean the same from every entry point (billing.keys.validate_rate_limits).
MAX_RATE_LIMIT = 2_147_483_647
RATE_LIMIT_HELP = (
    "Blank (null) = no limit. 0 = nothing allowed: every request is refused (429) until it is raised. "
    f"At most {MAX_RATE_LIMIT}."
)
LIMIT_VALIDATORS = [MaxValueValidator(MAX_RATE_LIMIT)]


class Team(Timestamped):
    name = models.CharField(max_length=100, unique=True, validators=[validate_name])
    description = models.TextField(blank=True)
    rpm_limit = models.PositiveIntegerField("requests / minute", null=True, blank=True, validators=LIMIT_VALIDATORS,
                                            help_text="For the whole team. " + RATE_LIMIT_HELP)
    tpm_limit = models.PositiveIntegerField("tokens / minute", null=True, blank=True, validators=LIMIT_VALIDATORS,
                                            help_text="For the whole team. " + RATE_LIMIT_HELP)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class VirtualKey(Timestamped):
    """A key the gateway issued. Only its SHA-256 hash and a display prefix are stored;
    the secret is shown once, at issue time (billing.keys.issue_key)."""

    name = models.CharField(max_length=100, help_text="Who or what uses this key, e.g. 'search-backend'.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    # How key_hash was computed (billing.keys_pepper): "sha256" (legacy; also what the
    # previous release inserts, hence the database default) or "hmac-sha256:<pepper fingerprint>".
    hash_scheme = models.CharField(max_length=40, editable=False, db_default="sha256", db_index=True)
    prefix = models.CharField(max_length=20, editable=False, help_text="First characters, to recognise the key.")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="keys")
    allowed_routes = models.ManyToManyField(
        "routing.Route",
        blank=True,
        related_name="+",
        help_text="Routes this key may call. None selected = every route.",
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Blank = never expires.")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    rpm_limit = models.PositiveIntegerField("requests / minute", null=True, blank=True, validators=LIMIT_VALIDATORS,
                                            help_text=RATE_LIMIT_HELP)
    tpm_limit = models.PositiveIntegerField("tokens / minute", null=True, blank=True, validators=LIMIT_VALIDATORS,
                                            help_text=RATE_LIMIT_HELP)
    replaced_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaced_keys", editable=False,
        help_text="Set when the key was rotated: the new key. The old one works until its expiry (grace period).",
    )
    metadata = models.JSONField(default=dict, blank=True, help_text="Free-form data for your tools (JSON object).")
    tags = models.JSONField(default=list, blank=True, help_text='Labels for reports and filtering, e.g. ["prod", "search"].')
    playground_user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="playground_key",
        editable=False, help_text="Set for the key the playground created for this user on first use: the "
        "user's playground spend, subject to this key's budgets and limits like any client.",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "virtual key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()


class Budget(Timestamped):
    """A spending cap for a key, a team, or the whole gateway, per day, month or ever."""

    class Scope(models.TextChoices):
        KEY = "key", "One virtual key"
        TEAM = "team", "A team (all its keys)"
        GLOBAL = "global", "The whole gateway"

    class Period(models.TextChoices):
        DAY = "day", "Per day (UTC)"
        MONTH = "month", "Per calendar month (UTC)"
        TOTAL = "total", "In total (never resets)"

    class Action(models.TextChoices):
        BLOCK = "block", "Block requests that would exceed it (429)"
        ALERT = "alert", "Alert only (requests continue)"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    key = models.ForeignKey(VirtualKey, null=True, blank=True, on_delete=models.CASCADE, related_name="budgets")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="budgets")
    amount_usd = models.DecimalField(
        "amount (USD)", max_digits=14, decimal_places=4, validators=[MinValueValidator(Decimal("0"))]
    )
    period = models.CharField(max_length=10, choices=Period.choices, default=Period.MONTH)
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.BLOCK)
    alert_threshold_pct = models.PositiveSmallIntegerField(
        "alert at (%)", default=80, validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Send an alert when spend crosses this share of the budget (and again at 100%).",
    )
    alert_emails = models.TextField(blank=True, help_text="Comma-separated addresses for alerts.")
    webhook_url = models.URLField(blank=True, help_text="Optional: alerts are also POSTed here as JSON.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["scope", "id"]
        constraints = [
            models.CheckConstraint(
                name="budget_scope_matches_owner",
                condition=(
                    models.Q(scope="key", key__isnull=False, team__isnull=True)
                    | models.Q(scope="team", team__isnull=False, key__isnull=True)
                    | models.Q(scope="global", key__isnull=True, team__isnull=True)
                ),
            ),
        ]
        indexes = [models.Index(fields=["scope", "enabled"], name="budget_scope_enabled")]

    def __str__(self) -> str:
        owner = self.key or self.team or "gateway"
        return f"{owner}: ${self.amount_usd} per {self.period}"

    def clean(self) -> None:
        if self.scope == self.Scope.KEY and not self.key_id:
            raise ValidationError({"key": "Choose the key this budget applies to."})
        if self.scope == self.Scope.TEAM and not self.team_id:
            raise ValidationError({"team": "Choose the team this budget applies to."})
        if self.scope != self.Scope.KEY and self.key_id:
            raise ValidationError({"key": "Only key budgets name a key."})
        if self.scope != self.Scope.TEAM and self.team_id:
            raise ValidationError({"team": "Only team budgets name a team."})


class BudgetAlert(models.Model):
    """A threshold crossing, recorded once per budget, period and threshold."""

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="alerts")
    period_key = models.CharField(max_length=20, help_text="e.g. 2026-11 for a monthly budget")
    threshold_pct = models.PositiveSmallIntegerField()
    spent_usd = models.DecimalField(max_digits=18, decimal_places=10)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered = models.JSONField(default=dict, blank=True, help_text="What was sent where (log, email, webhook).")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["budget", "period_key", "threshold_pct"], name="budget_alert_once"),
        ]

    def __str__(self) -> str:
        return f"{self.budget} crossed {self.threshold_pct}% in {self.period_key}"


class CostRollup(models.Model):
    """Spend per day x team x key x route x model x provider, recomputed from the
    ledger (idempotent). Reports read these rows, not the ledger."""

    day = models.DateField()
    team_id = models.BigIntegerField(default=0)  # 0 = no team (NULLs would defeat the unique key)
    team_name = models.CharField(max_length=100, blank=True)
    key_id = models.BigIntegerField(default=0)
    key_prefix = models.CharField(max_length=20, blank=True)
    route_name = models.CharField(max_length=100)
    provider_name = models.CharField(max_length=100, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    # Sums of many ledger rows (each at most 10^8): room for any day's traffic.
    cost_usd = models.DecimalField(max_digits=28, decimal_places=10, default=0)
    baseline_cost_usd = models.DecimalField(max_digits=28, decimal_places=10, default=0)
    # Requests the cache answered (status cache_hit) and what those answers had cost
    # when they were stored: the cache's savings. db_default: rollup workers of the
    # previous release, still running while this column is added, keep working.
    cache_hits = models.PositiveIntegerField(default=0, db_default=0)
    cache_saved_usd = models.DecimalField(max_digits=28, decimal_places=10, default=0, db_default=Decimal(0))

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "team_id", "key_id", "route_name", "provider_name", "model_name"],
                name="cost_rollup_unique_cell",
            ),
        ]
        indexes = [models.Index(fields=["day", "team_id"], name="rollup_day_team")]
        permissions = [("view_finance_reports", "Can view finance reports")]

    def __str__(self) -> str:
        return f"{self.day} {self.team_name or '-'} {self.route_name} {self.model_name}: ${self.cost_usd}"


class RollupCoverage(models.Model):
    """What one day's CostRollup rows cover: that day's ledger rows created before
    `covered_until`. Written in the same transaction as the rows (billing.rollups), so
    a reader that adds the ledger rows from `covered_until` to the day's end counts
    every request once (billing.reports.live)."""

    day = models.DateField(unique=True)
    covered_until = models.DateTimeField(help_text="The rollup counts this day's ledger rows created before this.")
    computed_at = models.DateTimeField(null=True, blank=True,
                                       help_text="When the rollup ran (blank: rolled up before coverage was recorded).")

    class Meta:
        ordering = ["-day"]
        verbose_name_plural = "rollup coverage"

    def __str__(self) -> str:
        return f"{self.day} rolled up to {self.covered_until:%Y-%m-%d %H:%M:%S}"


class UsageRecord(models.Model):
    """One row per request that reached a provider. Idempotent by `request_id`.

    Names and prices are copied at request time so later edits or deletions of
    routes, models or prices never rewrite history.
    """

    class Status(models.TextChoices):
        SUCCESS = "success"
        ERROR = "error"
        CLIENT_CLOSED = "client_closed", "client disconnected"
        # Answered by the gateway itself: a guardrail refused the request (no
        # provider was called), or the cache answered it (no provider was called).
        BLOCKED = "blocked", "blocked by a guardrail"
        CACHE_HIT = "cache_hit", "answered from the cache"

    request_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    key = models.ForeignKey(VirtualKey, null=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False)
    key_prefix = models.CharField(max_length=20, blank=True)
    team = models.ForeignKey(Team, null=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False)
    team_name = models.CharField(max_length=100, blank=True)
    route = models.ForeignKey("routing.Route", null=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False)
    route_name = models.CharField(max_length=100)
    provider = models.ForeignKey(
        "providers.Provider", null=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False
    )
    provider_name = models.CharField(max_length=100, blank=True)
    model = models.ForeignKey("providers.Model", null=True, on_delete=models.SET_NULL, related_name="+", db_constraint=False)
    model_name = models.CharField(max_length=200, blank=True, help_text="provider/model that answered (or was tried last)")
    status = models.CharField(max_length=20, choices=Status.choices)
    error_kind = models.CharField(max_length=30, blank=True)
    http_status = models.PositiveSmallIntegerField()
    stream = models.BooleanField(default=False)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    usage_estimated = models.BooleanField(default=False, help_text="Counted by the gateway; the provider reported none.")
    cache_read_tokens = models.PositiveIntegerField(
        default=0, help_text="Of the prompt tokens: read from the provider's prompt cache (billed at its cache-read price).")
    cache_write_tokens = models.PositiveIntegerField(
        default=0, help_text="Of the prompt tokens: written to the provider's prompt cache (billed at its cache-write price).")
    endpoint = models.CharField(
        max_length=20, default="chat", help_text="The API the client called: chat, messages, responses, embeddings.")
    client_session = models.CharField(
        max_length=100, blank=True,
        help_text="The client's session id when it sends one (Claude Code's X-Claude-Code-Session-Id): metadata, never auth.")
    input_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    output_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    baseline_cost_usd = models.DecimalField(
        max_digits=18, decimal_places=10, default=0,
        help_text="What the same tokens would have cost on the route's first target (savings report).",
    )
    # db_default: gateway processes of the previous release, still writing while this
    # column is added, insert without it and must not be refused.
    cache_saved_usd = models.DecimalField(
        max_digits=18, decimal_places=10, default=0, db_default=Decimal(0),
        help_text="Cache hits: what the cached answer cost when it was stored, i.e. what this request "
        "did not pay (0 for every other request).",
    )
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Time to first token (streams).")
    attempts = models.PositiveSmallIntegerField(default=1)
    attempt_log = models.JSONField(default=list, blank=True, help_text="Each attempt's target, outcome and latency.")
    strategy = models.CharField(max_length=20, blank=True)
    task_type = models.CharField(max_length=30, blank=True, help_text="Detected task (task strategy).")
    candidates = models.JSONField(default=list, blank=True, help_text="The strategy's candidate order, with reasons.")
    annotations = models.JSONField(
        default=dict, blank=True,
        help_text="What the request's stages added, by stage name (e.g. guardrail actions, cache status).",
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["team", "created_at"], name="usage_team_time"),
            models.Index(fields=["key", "created_at"], name="usage_key_time"),
            models.Index(fields=["route_name", "created_at"], name="usage_route_time"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.route_name} {self.status}"

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class UsageDeadLetter(models.Model):
    """A usage row the ledger could not write (billing.dead_letters).

    Never a silent loss: the row waits here, as the ledger entry it was meant to be,
    until `manage.py replay_usage_dead_letters` writes it to the ledger (idempotent:
    the ledger is unique by request id, so a replayed row is never counted twice).
    """

    request_id = models.CharField(max_length=200, unique=True, help_text="The usage row's request id (cut to 200).")
    created_at = models.DateTimeField(default=timezone.now, db_index=True, help_text="When it was dead-lettered.")
    occurred_at = models.DateTimeField(help_text="When the request was settled: the usage row's created_at.")
    entry = models.JSONField(help_text="The usage row as the ledger would have written it.")
    error = models.CharField(max_length=300, blank=True, help_text="Why it could not be written (no values).")
    source = models.CharField(max_length=10, default="ledger", help_text="ledger: written by the gateway; file: moved from the local fallback file.")
    replay_attempts = models.PositiveIntegerField(default=0)
    replayed_at = models.DateTimeField(null=True, blank=True, db_index=True, help_text="Set once the row is in the ledger.")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "usage dead letter"

    def __str__(self) -> str:
        return f"{self.request_id} ({'replayed' if self.replayed_at else 'pending'})"
