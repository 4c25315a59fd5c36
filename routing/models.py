"""Route (the public model name clients send) and its targets."""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from providers.models import Timestamped, validate_name
from providers.types import ErrorKind

RETRYABLE_DEFAULT = [ErrorKind.RATE_LIMITED, ErrorKind.TIMEOUT, ErrorKind.UNAVAILABLE, ErrorKind.BAD_RESPONSE]


def default_retry_on() -> list[str]:
    return [str(k) for k in RETRYABLE_DEFAULT]


class Strategy(models.TextChoices):
    SINGLE = "single", "Single – always the first enabled target"
    FALLBACK = "fallback", "Fallback – targets in order, next one when a target fails"


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
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        kinds = {k.value for k in ErrorKind}
        if not isinstance(self.retry_on, list) or not all(k in kinds for k in self.retry_on):
            raise ValidationError({"retry_on": f"A list of error kinds among: {', '.join(sorted(kinds))}."})
        if self.backoff_max_ms < self.backoff_base_ms:
            raise ValidationError({"backoff_max_ms": "Must be at least the base backoff."})


class RouteTarget(Timestamped):
    route = models.ForeignKey(Route, on_delete=models.CASCADE, related_name="targets")
    model = models.ForeignKey("providers.Model", on_delete=models.PROTECT, related_name="route_targets")
    order = models.PositiveSmallIntegerField(default=0, help_text="Lower goes first.")
    weight = models.PositiveIntegerField(default=1, help_text="Share of traffic for load-balancing strategies.")
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["route", "order", "id"]
        constraints = [
            models.UniqueConstraint(fields=["route", "model"], name="route_target_unique_model"),
        ]

    def __str__(self) -> str:
        return f"{self.route} → {self.model}"
