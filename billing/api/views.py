"""Management API views: authenticate (permissions.ManagementAPI), validate, call one
function from billing.keys / billing.budgets, render. Keys are never hard-deleted:
DELETE revokes."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from billing.budgets import delete_budget, save_budget
from billing.keys import KeyStateError, issue_key, revoke_key, rotate_key, update_key, with_status
from billing.models import Budget, Team, UsageRecord, VirtualKey

from .permissions import ManagementAPI, Pages, UsagePages
from .serializers import (
    BudgetSerializer,
    IssuedKeySerializer,
    KeyCreateSerializer,
    KeyQuerySerializer,
    KeySerializer,
    KeyUpdateSerializer,
    RotatedKeySerializer,
    RotateSerializer,
    TeamSerializer,
    UsageQuerySerializer,
    UsageRecordSerializer,
    django_errors,
)

NO_PUT = ["get", "post", "patch", "delete", "head", "options"]
CONFLICT = OpenApiResponse(
    inline_serializer("Conflict", {"detail": serializers.CharField()}),
    description="The key cannot be rotated (revoked, expired or already rotated).",
)


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _call(fn, *args, **kwargs):
    """Run a billing function; its model ValidationError becomes a DRF 400."""
    try:
        return fn(*args, **kwargs)
    except DjangoValidationError as exc:
        raise django_errors(exc) from None


def _key_changes(data: dict) -> dict:
    """Serializer data -> billing.keys keyword arguments (`allowed_routes` is `routes`)."""
    data = dict(data)
    if "allowed_routes" in data:
        data["routes"] = data.pop("allowed_routes")
    if budget := data.pop("budget", None):
        data.update(budget_usd=budget["amount_usd"], budget_period=budget["period"], budget_action=budget["action"])
    return data


@extend_schema_view(
    list=extend_schema(summary="List keys", parameters=[KeyQuerySerializer]),
    retrieve=extend_schema(summary="Get a key"),
    create=extend_schema(
        summary="Issue a key", request=KeyCreateSerializer, responses={201: IssuedKeySerializer},
        description="Returns the new key **with its secret, shown only in this response**.",
    ),
    partial_update=extend_schema(
        summary="Change a key (name, team, routes, expiry, limits, metadata, tags)",
        request=KeyUpdateSerializer, responses={200: KeySerializer},
    ),
    destroy=extend_schema(summary="Revoke a key (keys are never deleted)", responses={204: None}),
)
@extend_schema(tags=["keys"])
class KeyViewSet(
    ManagementAPI, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    serializer_class = KeySerializer
    pagination_class = Pages
    http_method_names = NO_PUT

    def get_queryset(self) -> QuerySet[VirtualKey]:
        keys = VirtualKey.objects.select_related("team").prefetch_related("allowed_routes", "budgets")
        if self.action != "list":
            return keys
        query = KeyQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        if "team" in query.validated_data:
            keys = keys.filter(team_id=query.validated_data["team"])
        if "status" in query.validated_data:
            keys = with_status(keys, query.validated_data["status"])
        return keys.order_by("-created_at", "-id")

    def create(self, request: Request) -> Response:
        body = KeyCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        issued = _call(issue_key, **_key_changes(body.validated_data))
        issued.key.secret = issued.secret  # transient, for the one response that shows it
        return Response(IssuedKeySerializer(issued.key).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        key = self.get_object()
        body = KeyUpdateSerializer(key, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        _call(update_key, key, **_key_changes(body.validated_data))
        return Response(KeySerializer(self.get_object()).data)

    def destroy(self, request: Request, pk: str) -> Response:
        revoke_key(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(summary="Revoke a key", request=None, responses={200: KeySerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        key = self.get_object()
        revoke_key(key)
        return Response(KeySerializer(key).data)

    @extend_schema(
        summary="Rotate a key", request=RotateSerializer, responses={201: RotatedKeySerializer, 409: CONFLICT},
        description=(
            "Issues a replacement with the same name, team, routes, limits, metadata, tags and key budgets, "
            "and returns it **with its secret, shown only in this response**. The old key keeps working for "
            "`grace_seconds`, then expires."
        ),
    )
    @action(detail=True, methods=["post"])
    def rotate(self, request: Request, pk: str) -> Response:
        old = self.get_object()
        body = RotateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            issued = _call(rotate_key, old, body.validated_data["grace_seconds"],
                           expires_at=body.validated_data["expires_at"])
        except KeyStateError as exc:
            raise Conflict(str(exc)) from None
        issued.key.secret, issued.key.old_key = issued.secret, old  # transient, for this response
        return Response(RotatedKeySerializer(issued.key).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(summary="List teams"),
    create=extend_schema(summary="Create a team"),
    retrieve=extend_schema(summary="Get a team"),
    partial_update=extend_schema(summary="Change a team (description, rate limits)"),
)
@extend_schema(tags=["teams"])
class TeamViewSet(
    ManagementAPI, mixins.ListModelMixin, mixins.CreateModelMixin, mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin, viewsets.GenericViewSet,
):
    queryset = Team.objects.order_by("name")
    serializer_class = TeamSerializer
    pagination_class = Pages
    http_method_names = NO_PUT


@extend_schema_view(
    list=extend_schema(summary="List budgets"),
    create=extend_schema(summary="Create a budget"),
    retrieve=extend_schema(summary="Get a budget"),
    partial_update=extend_schema(summary="Change a budget"),
    destroy=extend_schema(summary="Delete a budget (and its alert history; or PATCH enabled=false)"),
)
@extend_schema(tags=["budgets"])
class BudgetViewSet(ManagementAPI, viewsets.ModelViewSet):
    queryset = Budget.objects.order_by("scope", "id")
    serializer_class = BudgetSerializer
    pagination_class = Pages
    http_method_names = NO_PUT

    def perform_create(self, serializer: BudgetSerializer) -> None:
        serializer.instance = _call(save_budget, Budget(**serializer.validated_data))

    def perform_update(self, serializer: BudgetSerializer) -> None:
        budget = serializer.instance
        for field, value in serializer.validated_data.items():
            setattr(budget, field, value)
        _call(save_budget, budget)

    def perform_destroy(self, instance: Budget) -> None:
        delete_budget(instance)


@extend_schema(tags=["usage"])
@extend_schema_view(list=extend_schema(summary="List usage records (newest first)", parameters=[UsageQuerySerializer]))
class UsageViewSet(ManagementAPI, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = UsageRecordSerializer
    pagination_class = UsagePages

    def get_queryset(self) -> QuerySet[UsageRecord]:
        query = UsageQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        filters = {"since": "created_at__gte", "until": "created_at__lt", "team": "team_id", "key": "key_id",
                   "route": "route_name"}
        return UsageRecord.objects.filter(**{filters[k]: v for k, v in query.validated_data.items()})
