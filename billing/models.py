"""Teams, virtual keys and the usage ledger."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from providers.models import Timestamped, validate_name


class Team(Timestamped):
    name = models.CharField(max_length=100, unique=True, validators=[validate_name])
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class VirtualKey(Timestamped):
    """A key the gateway issued. Only its SHA-256 hash and a display prefix are stored;
    the secret is shown once, at issue time (billing.keys.issue_key)."""

    name = models.CharField(max_length=100, help_text="Who or what uses this key, e.g. 'search-backend'.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
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
    metadata = models.JSONField(default=dict, blank=True)

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


class UsageRecord(models.Model):
    """One row per request that reached a provider. Idempotent by `request_id`.

    Names and prices are copied at request time so later edits or deletions of
    routes, models or prices never rewrite history.
    """

    class Status(models.TextChoices):
        SUCCESS = "success"
        ERROR = "error"
        CLIENT_CLOSED = "client_closed", "client disconnected"

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
    input_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    output_price_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    cost_usd = models.DecimalField(max_digits=18, decimal_places=10, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True, help_text="Time to first token (streams).")
    attempts = models.PositiveSmallIntegerField(default=1)
    attempt_log = models.JSONField(default=list, blank=True, help_text="Each attempt's target, outcome and latency.")
    strategy = models.CharField(max_length=20, blank=True)
    task_type = models.CharField(max_length=30, blank=True, help_text="Detected task (task strategy).")
    candidates = models.JSONField(default=list, blank=True, help_text="The strategy's candidate order, with reasons.")

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
