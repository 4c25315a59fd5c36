"""A budget's webhook URL is a credential (Slack/Teams put the token in the path): the
management API shows scheme and host only, and the masked form sent back keeps it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing.models import Budget
from gateway_admin.roles import KEY_MANAGERS, grant

pytestmark = pytest.mark.django_db

HOOK = "https://hooks.example.com/services/T000/B000/very-secret-webhook-token"


@pytest.fixture
def api() -> APIClient:
    user = User.objects.create_user("km", password="x", is_staff=True)
    grant(user, KEY_MANAGERS)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_the_webhook_token_never_comes_back_and_an_echo_keeps_it(api):
    created = api.post("/api/budgets/", {"scope": "global", "amount_usd": "10", "period": "month",
                                         "webhook_url": HOOK}, format="json")
    assert created.status_code == 201, created.content
    assert "very-secret" not in created.content.decode()
    assert created.json()["webhook_url"].startswith("https://hooks.example.com/")
    budget_id = created.json()["id"]
    listed = api.get("/api/budgets/")
    assert "very-secret" not in listed.content.decode()
    echoed = api.patch(f"/api/budgets/{budget_id}/", {**created.json(), "amount_usd": "20"}, format="json")
    assert echoed.status_code == 200, echoed.content
    budget = Budget.objects.get(id=budget_id)
    assert budget.webhook_url == HOOK and str(budget.amount_usd).startswith("20")
    changed = api.patch(f"/api/budgets/{budget_id}/", {"webhook_url": "https://other.example.com/x"}, format="json")
    assert changed.status_code == 200
    assert Budget.objects.get(id=budget_id).webhook_url == "https://other.example.com/x"
