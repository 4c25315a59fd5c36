"""Shared by the role tests (tests/test_roles*.py): users holding roles, one object of
every model the admin lists, and the secrets that must never reach a page."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils import timezone

from gateway_admin.roles import AUDITORS, FINANCE, KEY_MANAGERS, PLAYGROUND_USERS, ROUTE_EDITORS

RE, KM, FIN, AUD, PLAY = ROUTE_EDITORS, KEY_MANAGERS, FINANCE, AUDITORS, PLAYGROUND_USERS
NO_ROLE = "(staff, no role)"
ALL_ROLES = (RE, KM, FIN, AUD, PLAY)

PROVIDER_SECRET = "sk-live-ROLES-provider-secret-9d41c7e2"
HEADER_SECRET = "hdr-ROLES-extra-header-secret-51aa"
WEBHOOK_SECRET = "T000/B000/ROLESwebhooksecret77"
WEBHOOK_URL = f"https://hooks.example.com/services/{WEBHOOK_SECRET}"
SECRETS = (PROVIDER_SECRET, PROVIDER_SECRET[:-4], HEADER_SECRET, WEBHOOK_SECRET)


def staff(role: str | None, name: str | None = None, **kw) -> User:
    """An active staff user holding `role` (None or NO_ROLE: none)."""
    name = name or ("norole" if role in (None, NO_ROLE) else role.lower().replace(" ", "-"))
    kw.setdefault("is_staff", True)
    user = User.objects.create_user(name, password=None, **kw)  # force_login: no password hashing (slow)
    if role not in (None, NO_ROLE):
        user.groups.add(Group.objects.get(name=role))
    return user


def objects() -> dict[str, object]:
    """One row of every model the admin lists (label -> the object's admin pk), the
    provider holding PROVIDER_SECRET and an extra header, the budget a webhook."""
    from django_celery_beat.models import (
        ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule,
    )
    from rest_framework.authtoken.models import Token

    from billing.keys import issue_key
    from billing.models import BudgetAlert, UsageDeadLetter
    from guardrails.models import Guardrail, Violation
    from routing.models import WorkerHeartbeat

    from .factories import (
        BudgetFactory, HealthCheckFactory, ModelFactory, ProviderFactory, RouteFactory, RouteTargetFactory,
        TeamFactory, UsageRecordFactory,
    )

    provider = ProviderFactory(name="openai-prod", api_key=PROVIDER_SECRET,
                               options={"headers": {"X-Extra-Auth": HEADER_SECRET}})
    model = ModelFactory(provider=provider, name="gpt-4o-mini")
    HealthCheckFactory(model=model)
    route = RouteFactory(name="chat-default")
    RouteTargetFactory(route=route, model=model, order=0)
    team = TeamFactory(name="search")
    key = issue_key("ci", team=team, routes=[route]).key
    budget = BudgetFactory(webhook_url=WEBHOOK_URL, alert_emails="finance@example.com")
    BudgetFactory(scope="key", key=key, amount_usd=Decimal("5"), webhook_url=WEBHOOK_URL)
    alert = BudgetAlert.objects.create(budget=budget, period_key="2026-11", threshold_pct=80, spent_usd=Decimal("8"))
    usage = UsageRecordFactory(billed=True, key_id=key.pk, key_prefix=key.prefix, team_id=team.pk, team_name="search")
    dead = UsageDeadLetter.objects.create(request_id="dead-1", occurred_at=timezone.now(), entry={"request_id": "dead-1"})
    guardrail = Guardrail.objects.create(name="pii-default", kind="pii", action="redact")
    violation = Violation.objects.create(guardrail=guardrail, guardrail_name="pii-default", stage="input",
                                         action="redact", outcome="redacted", request_id="req-1", entities={"email": 1})
    heartbeat = WorkerHeartbeat.objects.create(hostname="celery@worker-1", beat_at=timezone.now())
    someone = User.objects.create_user("someone", password=None)
    Token.objects.create(user=someone)
    interval = IntervalSchedule.objects.create(every=10, period="seconds")
    rows = {
        "auth.group": Group.objects.get(name=RE).pk,
        "auth.user": someone.pk,
        "authtoken.tokenproxy": someone.pk,
        "django_celery_beat.periodictask": PeriodicTask.objects.create(name="t", task="x", interval=interval).pk,
        "django_celery_beat.clockedschedule": ClockedSchedule.objects.create(
            clocked_time=timezone.now() + timedelta(days=1)).pk,
        "django_celery_beat.crontabschedule": CrontabSchedule.objects.create().pk,
        "django_celery_beat.solarschedule": SolarSchedule.objects.create(event="sunrise", latitude=0, longitude=0).pk,
        "django_celery_beat.intervalschedule": interval.pk,
        "providers.provider": provider.pk,
        "providers.model": model.pk,
        "billing.usagerecord": usage.pk,
        "billing.usagedeadletter": dead.pk,
        "billing.budget": budget.pk,
        "billing.budgetalert": alert.pk,
        "billing.team": team.pk,
        "billing.virtualkey": key.pk,
        "guardrails.guardrail": guardrail.pk,
        "guardrails.violation": violation.pk,
        "routing.route": route.pk,
        "routing.targethealth": model.pk,
        "routing.workerheartbeat": heartbeat.pk,
    }
    return rows


def admin_url(label: str, page: str, pk=None) -> str:
    app_label, model_name = label.split(".")
    name = f"admin:{app_label}_{model_name}_{page}"
    return reverse(name) if pk is None else reverse(name, args=[pk])


def token_client(user: User):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client
