"""Representations of the management API. A key's hash never leaves the server and
its secret appears in exactly two responses: issue (POST /api/keys/) and rotation."""

from __future__ import annotations

import copy
import math
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.keys import (
    KEY_STATUSES,
    MAX_GRACE_SECONDS,
    MAX_RATE_LIMIT,
    MAX_TAG_CHARS,
    MAX_TAGS,
    RATE_LIMIT_HELP,
    validate_rate_limits,
)
from billing.models import Budget, Team, UsageRecord, VirtualKey
from providers.secrets import mask_url

class NameRelatedField(serializers.SlugRelatedField):
    """A related object by name. Refuses a NUL character before the lookup: PostgreSQL
    cannot hold one in text and would fail the query (a 500) instead of "not found"."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)


KEY_WRITABLE = ["name", "team", "allowed_routes", "expires_at", "rpm_limit", "tpm_limit", "metadata", "tags"]
SECRET_HELP = "The key's secret, shown only in this response: store it now. Only its hash is kept."
# Ids are 64-bit database integers: a filter beyond that is the client's 400 (SQLite's
# driver and PostgreSQL both fail on it otherwise), not a query.
MAX_ID = 2**63 - 1
# Key metadata is for tools, not a document store: objects and arrays at most this deep
# (the metadata object itself is the first level).
MAX_METADATA_DEPTH = 8


def id_filter(help_text: str) -> serializers.IntegerField:
    """A query parameter naming a row by id: a positive 64-bit integer."""
    return serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, help_text=help_text)


def _metadata_problem(value: Any, depth: int = 1) -> str | None:
    """Why a metadata value cannot be stored as given on every database, or None."""
    if depth > MAX_METADATA_DEPTH:
        return f"Nested too deeply: at most {MAX_METADATA_DEPTH} levels of objects and arrays."
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return "Keys and strings cannot contain NUL characters."
            if problem := _metadata_problem(item, depth + 1):
                return problem
    elif isinstance(value, list):
        for item in value:
            if problem := _metadata_problem(item, depth + 1):
                return problem
    elif isinstance(value, str):
        if "\x00" in value:
            return "Keys and strings cannot contain NUL characters."
    elif isinstance(value, float) and not math.isfinite(value):
        return "Numbers must be finite (JSON has no NaN or Infinity)."
    return None


def validate_metadata(value: dict) -> dict:
    """Serializer validator for key metadata (depth, NUL characters, non-finite numbers)."""
    if problem := _metadata_problem(value):
        raise serializers.ValidationError(problem)
    return value




def django_errors(exc: DjangoValidationError) -> serializers.ValidationError:
    """A model's ValidationError as DRF field errors (400 {"field": ["message"]})."""
    if hasattr(exc, "error_dict"):
        return serializers.ValidationError({
            "non_field_errors" if f == "__all__" else f: m for f, m in exc.message_dict.items()
        })
    return serializers.ValidationError(exc.messages)


class _KeyFields(serializers.ModelSerializer):
    allowed_routes = NameRelatedField(
        many=True, slug_field="name", queryset=VirtualKey.allowed_routes.field.related_model.objects.all(), required=False,
        help_text="Route names the key may call; empty = every route.",
    )
    metadata = serializers.DictField(
        required=False, validators=[validate_metadata],
        help_text=f"Free-form JSON object kept with the key (at most {MAX_METADATA_DEPTH} levels deep).",
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=MAX_TAG_CHARS), max_length=MAX_TAGS, required=False,
        help_text="Labels for reports and filtering.",
    )
    # Checked by billing.keys.validate_rate_limits (through issue_key / update_key);
    # the bounds here only document the same constant in the OpenAPI schema.
    rpm_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_RATE_LIMIT,
        help_text=f"Requests per minute for this key alone (its team's limit applies as well). {RATE_LIMIT_HELP}",
    )
    tpm_limit = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_RATE_LIMIT,
        help_text=f"Tokens (prompt + completion) per minute for this key alone. {RATE_LIMIT_HELP}",
    )


def _team_limit(what: str) -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_RATE_LIMIT,
        help_text=f"{what} per minute for all the team's keys together. {RATE_LIMIT_HELP}",
    )


# Its own component: usage records have a different `status` (enum names must not collide).
@extend_schema_field(serializers.ChoiceField(choices=KEY_STATUSES), component_name="KeyStatus")
class KeyStatusField(serializers.Field):
    """active (rotated keys in their grace period included), expired or revoked."""

    def __init__(self, **kwargs) -> None:
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, key: VirtualKey) -> str:
        return "revoked" if key.is_revoked else "expired" if key.is_expired else "active"


class KeySerializer(_KeyFields):
    """A virtual key as the API shows it (never its hash or secret)."""

    status = KeyStatusField()
    team_name = serializers.CharField(source="team.name", read_only=True, allow_null=True)
    budgets = serializers.PrimaryKeyRelatedField(many=True, read_only=True, help_text="Ids of the key's own budgets.")

    class Meta:
        model = VirtualKey
        fields = [
            "id", "name", "prefix", "status", "team", "team_name", "allowed_routes", "expires_at", "revoked_at",
            "rpm_limit", "tpm_limit", "replaced_by", "metadata", "tags", "budgets", "created_at", "updated_at",
        ]
        read_only_fields = fields


class IssuedKeySerializer(KeySerializer):
    secret = serializers.CharField(read_only=True, help_text=SECRET_HELP)

    class Meta(KeySerializer.Meta):
        fields = ["secret", *KeySerializer.Meta.fields]
        read_only_fields = fields


class RotatedKeySerializer(IssuedKeySerializer):
    old_key = KeySerializer(read_only=True, help_text="The rotated key: works until its expires_at.")

    class Meta(IssuedKeySerializer.Meta):
        fields = [*IssuedKeySerializer.Meta.fields, "old_key"]
        read_only_fields = fields


class KeyBudgetSerializer(serializers.ModelSerializer):
    """A budget given to a key as it is issued (more settings: /api/budgets/)."""

    class Meta:
        model = Budget
        fields = ["amount_usd", "period", "action"]
        extra_kwargs = {"period": {"default": Budget.Period.MONTH}, "action": {"default": Budget.Action.BLOCK}}


class KeyCreateSerializer(_KeyFields):
    budget = KeyBudgetSerializer(required=False, write_only=True, help_text="Optional: the key's own budget.")

    class Meta:
        model = VirtualKey
        fields = [*KEY_WRITABLE, "budget"]

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("A new key must expire in the future (or omit it: never).")
        return value


class KeyUpdateSerializer(_KeyFields):
    class Meta:
        model = VirtualKey
        fields = KEY_WRITABLE
        extra_kwargs = {"expires_at": {"help_text": "A time in the past expires the key now; null = never."}}


class RotateSerializer(serializers.Serializer):
    grace_seconds = serializers.IntegerField(
        min_value=0, max_value=MAX_GRACE_SECONDS, default=3600,
        help_text="How long the old secret keeps working (0 = it stops now; an earlier expiry is kept).",
    )
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="Expiry of the new key (default: never)."
    )

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("The new key must expire in the future (or omit it: never).")
        return value


class KeyQuerySerializer(serializers.Serializer):
    team = id_filter("Only this team's keys (team id).")
    status = serializers.ChoiceField(choices=KEY_STATUSES, required=False)


class TeamSerializer(serializers.ModelSerializer):
    rpm_limit = _team_limit("Requests")
    tpm_limit = _team_limit("Tokens (prompt + completion)")

    class Meta:
        model = Team
        fields = ["id", "name", "description", "rpm_limit", "tpm_limit", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, attrs: dict) -> dict:
        """Rate limits as every entry point checks them (billing.keys.validate_rate_limits)."""
        current = {f: getattr(self.instance, f, None) for f in ("rpm_limit", "tpm_limit")}
        try:
            validate_rate_limits(**{**current, **{f: attrs[f] for f in current if f in attrs}})
        except DjangoValidationError as exc:
            raise django_errors(exc) from None
        return attrs


class BudgetSerializer(serializers.ModelSerializer):
    """Validated like the admin (Budget.clean): a key budget names a key and no team,
    a team budget a team and no key, a global budget neither."""

    class Meta:
        model = Budget
        fields = [
            "id", "scope", "key", "team", "amount_usd", "period", "action", "alert_threshold_pct",
            "alert_emails", "webhook_url", "enabled", "created_at", "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def to_representation(self, instance) -> dict:
        """A webhook URL may carry its credential in the path or query (Slack, Teams):
        shown as scheme and host only. Sending that masked form back keeps the stored URL."""
        data = super().to_representation(instance)
        data["webhook_url"] = mask_url(instance.webhook_url)
        return data

    def validate(self, attrs: dict) -> dict:
        stored = self.instance.webhook_url if self.instance is not None else ""
        if stored and attrs.get("webhook_url") == mask_url(stored):
            attrs["webhook_url"] = stored  # the masked form echoed back: unchanged
        budget = copy.copy(self.instance) if self.instance is not None else Budget()  # checked, not saved
        for field, value in attrs.items():
            setattr(budget, field, value)
        try:
            budget.full_clean()
        except DjangoValidationError as exc:
            raise django_errors(exc) from None
        return attrs


class UsageRecordSerializer(serializers.ModelSerializer):
    key = serializers.IntegerField(source="key_id", read_only=True, allow_null=True)
    team = serializers.IntegerField(source="team_id", read_only=True, allow_null=True)
    route = serializers.IntegerField(source="route_id", read_only=True, allow_null=True)

    class Meta:
        model = UsageRecord
        fields = [
            "request_id", "created_at", "key", "key_prefix", "team", "team_name", "route", "route_name",
            "provider_name", "model_name", "status", "error_kind", "http_status", "stream", "prompt_tokens",
            "completion_tokens", "usage_estimated", "cost_usd", "latency_ms", "ttft_ms", "attempts", "strategy",
            "task_type",
        ]
        read_only_fields = fields


class UsageQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False, help_text="Records at or after this time (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Records before this time (ISO 8601).")
    team = id_filter("Team id.")
    key = id_filter("Virtual key id.")
    route = serializers.CharField(required=False, help_text="Route name (as recorded).")

    def validate(self, attrs: dict) -> dict:
        if "since" in attrs and "until" in attrs and attrs["since"] >= attrs["until"]:
            raise serializers.ValidationError({"until": "Must be after since."})
        return attrs
