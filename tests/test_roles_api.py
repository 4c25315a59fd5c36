"""The management API enforces the roles (billing.api.permissions): every call, for
every role, by token — allowed (2xx) or 403 naming the missing permission, with
nothing changed; anonymous 401; staff status required; every endpoint declares its
permission."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.test import APIClient

from billing.api.permissions import HasRolePermission, required_permissions
from billing.api.urls import router
from billing.keys import issue_key
from billing.models import Budget, Team, VirtualKey

from .factories import BudgetFactory, RouteFactory, TeamFactory, UsageRecordFactory
from .roles_fixtures import AUD, FIN, KM, NO_ROLE, PLAY, RE, staff, token_client

pytestmark = pytest.mark.django_db

ROLES = (RE, KM, FIN, AUD, PLAY, NO_ROLE)


@pytest.fixture
def rows() -> dict:
    route = RouteFactory(name="chat-default")
    team = TeamFactory(name="search")
    key = issue_key("ci", team=team, routes=[route]).key
    budget = BudgetFactory(scope="team", team=team)
    UsageRecordFactory(billed=True, key_id=key.pk, team_id=team.pk)
    return {"key": key.pk, "team": team.pk, "budget": budget.pk}


# (name, method, url, body, permission, status when allowed, who may)
CALLS = [
    ("list keys", "get", "/api/keys/", None, "billing.view_virtualkey", 200, {KM, AUD}),
    ("get a key", "get", "/api/keys/{key}/", None, "billing.view_virtualkey", 200, {KM, AUD}),
    ("issue a key", "post", "/api/keys/", {"name": "new", "allowed_routes": ["chat-default"]},
     "billing.add_virtualkey", 201, {KM}),
    ("change a key", "patch", "/api/keys/{key}/", {"name": "renamed"}, "billing.change_virtualkey", 200, {KM}),
    ("rotate a key", "post", "/api/keys/{key}/rotate/", {"grace_seconds": 0}, "billing.change_virtualkey", 201, {KM}),
    ("revoke a key", "post", "/api/keys/{key}/revoke/", None, "billing.change_virtualkey", 200, {KM}),
    ("DELETE revokes a key", "delete", "/api/keys/{key}/", None, "billing.change_virtualkey", 204, {KM}),
    ("list teams", "get", "/api/teams/", None, "billing.view_team", 200, {KM, AUD}),
    ("get a team", "get", "/api/teams/{team}/", None, "billing.view_team", 200, {KM, AUD}),
    ("create a team", "post", "/api/teams/", {"name": "ads"}, "billing.add_team", 201, {KM}),
    ("change a team", "patch", "/api/teams/{team}/", {"description": "x"}, "billing.change_team", 200, {KM}),
    ("list budgets", "get", "/api/budgets/", None, "billing.view_budget", 200, {KM, AUD}),
    ("get a budget", "get", "/api/budgets/{budget}/", None, "billing.view_budget", 200, {KM, AUD}),
    ("create a budget", "post", "/api/budgets/", {"scope": "global", "amount_usd": "50", "period": "day"},
     "billing.add_budget", 201, {KM}),
    ("change a budget", "patch", "/api/budgets/{budget}/", {"amount_usd": "20"}, "billing.change_budget", 200, {KM}),
    ("delete a budget", "delete", "/api/budgets/{budget}/", None, "billing.delete_budget", 204, {KM}),
    ("list usage", "get", "/api/usage/", None, "billing.view_usagerecord", 200, {FIN, AUD}),
]


def state() -> tuple:
    """What a refused call must leave alone."""
    keys = tuple(VirtualKey.objects.order_by("pk").values_list("pk", "name", "revoked_at", "replaced_by_id"))
    teams = tuple(Team.objects.order_by("pk").values_list("pk", "name", "description"))
    budgets = tuple(Budget.objects.order_by("pk").values_list("pk", "amount_usd", "enabled"))
    return keys, teams, budgets


@pytest.mark.parametrize("call", CALLS, ids=[c[0] for c in CALLS])
@pytest.mark.parametrize("role", ROLES)
def test_each_call_for_each_role(rows, role, call):
    name, method, url, body, permission, ok, who = call
    api = token_client(staff(role))
    before = state()
    response = getattr(api, method)(url.format(**rows), body, format="json")
    if role in who:
        assert response.status_code == ok, response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json() == {
            "detail": f"You do not have permission to perform this action: it needs {permission}."}
        assert state() == before


@pytest.mark.parametrize("call", CALLS, ids=[c[0] for c in CALLS])
def test_anonymous_callers_get_401_with_the_token_challenge(rows, call):
    _, method, url, body, *_ = call
    before = state()
    for client in (APIClient(), APIClient(HTTP_AUTHORIZATION="Token not-a-token")):
        response = getattr(client, method)(url.format(**rows), body, format="json")
        assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert state() == before


@pytest.mark.parametrize("url", ["/api/keys/", "/api/usage/", "/api/teams/"])
def test_roles_without_staff_status_or_inactive_are_refused(rows, url):
    outsider = token_client(staff(KM, name="km-not-staff", is_staff=False))
    response = outsider.get(url)
    assert response.status_code == 403
    assert response.json() == {"detail": "Only active staff users may use the management API."}
    user = staff(AUD, name="aud-inactive")
    api = token_client(user)
    user.is_active = False
    user.save()
    assert api.get(url).status_code in (401, 403)  # DRF refuses an inactive user's token (401)


def test_a_staff_user_with_no_role_sees_nothing(rows):
    api = token_client(staff(NO_ROLE))
    for _, method, url, body, *_ in CALLS:
        assert getattr(api, method)(url.format(**rows), body, format="json").status_code == 403


def test_an_admin_session_is_held_to_the_same_roles(client, rows):
    client.force_login(staff(FIN))
    assert client.get("/api/usage/").status_code == 200
    assert client.get("/api/keys/").status_code == 403


def test_superusers_may_do_everything(rows):
    from django.contrib.auth.models import User

    api = token_client(User.objects.create_superuser("root", password=None))
    assert api.get("/api/keys/").status_code == 200
    assert api.post("/api/teams/", {"name": "ops"}, format="json").status_code == 201


def test_a_key_with_a_budget_also_needs_permission_to_add_budgets(rows):
    """Issuing a key with its budget writes a budget: a custom group with the key
    permissions alone may issue keys, not budgets."""
    group = Group.objects.create(name="Key issuers")
    group.permissions.add(*Permission.objects.filter(codename__in=["add_virtualkey", "view_virtualkey"]))
    user = staff(None, name="issuer")
    user.groups.add(group)
    api = token_client(user)
    with_budget = {"name": "b", "allowed_routes": ["chat-default"], "budget": {"amount_usd": "5", "period": "day"}}
    refused = api.post("/api/keys/", with_budget, format="json")
    assert refused.status_code == 403
    assert refused.json()["detail"].endswith("it needs billing.add_budget.")
    assert not VirtualKey.objects.filter(name="b").exists()
    assert api.post("/api/keys/", {"name": "c", "allowed_routes": ["chat-default"]}, format="json").status_code == 201
    group.permissions.add(Permission.objects.get(codename="add_budget"))
    # (each token request loads its user afresh: the new permission counts at once)
    assert api.post("/api/keys/", with_budget, format="json").status_code == 201
    assert Budget.objects.filter(key__name="b", amount_usd=Decimal("5")).exists()


def test_a_method_the_endpoint_refuses_is_403_without_permission_and_405_with_it(rows):
    assert token_client(staff(AUD)).put(f"/api/teams/{rows['team']}/", {}, format="json").status_code == 403
    assert token_client(staff(KM)).put(f"/api/teams/{rows['team']}/", {}, format="json").status_code == 405
    # A method the endpoint has no action for: 405 to those who may read it.
    assert token_client(staff(FIN)).post("/api/usage/", {}, format="json").status_code == 405
    assert token_client(staff(KM, name="km2")).post("/api/usage/", {}, format="json").status_code == 403
    assert token_client(staff(RE)).delete("/api/teams/", format="json").status_code == 403


# --- every endpoint declares its permission ------------------------------------------------------


class FakeRequest:
    def __init__(self, method: str) -> None:
        self.method = method


def endpoint_actions():
    """(viewset, action, method) for every route of the management API router."""
    for prefix, viewset, basename in router.registry:
        for route in router.get_routes(viewset):
            for method, action in route.mapping.items():
                if hasattr(viewset, action) and method.upper() in {
                        m.upper() for m in getattr(viewset, "http_method_names", [])}:
                    yield viewset, action, method.upper()


def test_every_endpoint_declares_existing_permissions():
    seen = 0
    for viewset, action, method in endpoint_actions():
        view = viewset()
        view.action, view.action_map = action, {method.lower(): action}
        needed = required_permissions(FakeRequest(method), view)
        assert needed, f"{viewset.__name__}.{action} declares no permission"
        for perm in needed:
            app_label, codename = perm.split(".")
            assert Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists(), perm
        seen += 1
    assert seen >= 17


def test_a_call_without_a_declared_permission_is_refused_even_for_superusers():
    from django.contrib.auth.models import User

    class Undeclared:
        action = "export_everything"
        action_map = {"post": "export_everything"}
        queryset = Team.objects.all()

    class Req:
        method = "POST"
        user = User.objects.create_superuser("root", password=None)
        data: dict = {}

    permission = HasRolePermission()
    assert permission.has_permission(Req(), Undeclared()) is False
    assert "No permission is declared" in permission.message
