"""The role groups themselves (gateway_admin.roles): created with their permissions by
migration 0001_roles, kept in step after every migrate (permissions of models added
later), `manage.py sync_roles` (additive, --exact), and the documented matrix
(docs/security/roles.md) generated from the declarations."""

from __future__ import annotations

import importlib
import io
import re
from pathlib import Path

import pytest
from django.apps import apps as global_apps
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from gateway_admin import roles
from gateway_admin.roles import (
    AUDITORS, DECLARED_MODELS, FINANCE, KEY_MANAGERS, PLAYGROUND_USERS, ROLE_DEFINITIONS, ROLES, ROUTE_EDITORS,
    declared_permissions, grant, markdown_matrix, sync_roles,
)

pytestmark = pytest.mark.django_db
DOC = Path(__file__).resolve().parent.parent / "docs" / "security" / "roles.md"


def held(name: str) -> set[str]:
    return {f"{a}.{c}" for a, c in Group.objects.get(name=name).permissions.values_list(
        "content_type__app_label", "codename")}


def declared(name: str) -> set[str]:
    return {f"{a}.{c}" for a, c in declared_permissions(roles.ROLE_BY_NAME[name])}


def existing(perms: set[str]) -> set[str]:
    return {p for p in perms if Permission.objects.filter(
        content_type__app_label=p.split(".")[0], codename=p.split(".")[1]).exists()}


def test_the_five_groups_exist_with_exactly_their_declared_permissions():
    assert set(Group.objects.values_list("name", flat=True)) >= set(ROLES)
    assert ROLES == ("Route editors", "Key managers", "Finance", "Auditors", "Playground users")
    for name in ROLES:
        assert held(name) == existing(declared(name)), name


def test_least_privilege_in_the_declarations():
    """What the issue forbids each role, checked on the groups as migrated."""
    re_, km, fin, aud, play = (held(n) for n in ROLES)
    model_of = lambda perm: perm.split(".")[1].split("_", 1)[1]  # noqa: E731 - "billing.add_team" -> "team"
    assert not {p for p in re_ if model_of(p) in {"virtualkey", "team", "budget", "budgetalert", "usagerecord",
                                                   "user", "group", "token", "tokenproxy"}}
    assert not {p for p in re_ if p.startswith(("billing.", "auth."))}
    assert not {p for p in km if p.startswith(("auth.", "guardrails."))}
    assert {p for p in km if p.startswith(("providers.", "routing."))} == {"providers.view_model", "routing.view_route"}
    assert fin == {"billing.view_finance_reports", "billing.view_usagerecord"}
    assert all(p.split(".")[1].startswith("view_") for p in aud)  # read-only everywhere
    assert not {p for p in aud if p.startswith(("authtoken.", "django_celery_beat.", "sessions.", "admin."))}
    assert {"auth.view_user", "auth.view_group", "billing.view_finance_reports"} <= aud
    assert play == {"streaming.use_playground"}
    assert [n for n in ROLES if "streaming.use_playground" in held(n)] == [PLAYGROUND_USERS]


def test_auditors_may_view_every_model_of_the_gateway_apps():
    for app_label in roles.AUDITED_APPS:
        for model in global_apps.get_app_config(app_label).get_models():
            if "view" in model._meta.default_permissions:
                assert f"{app_label}.view_{model._meta.model_name}" in held(AUDITORS), model


def test_every_declaration_names_a_real_model_or_permission():
    for role in ROLE_DEFINITIONS:
        for label in role.models:
            assert label in DECLARED_MODELS or global_apps.get_model(label), label
        names = {f"{a}.{c}" for a, c in declared_permissions(role)}
        missing = names - existing(names)
        # Only the models declared before they exist may be absent (the audit trail's).
        allowed = {f"{label.split('.')[0]}.view_{label.split('.')[1]}" for label in DECLARED_MODELS}
        assert missing <= allowed, (role.name, missing)


def test_the_audit_trail_is_granted_to_auditors_once_its_model_exists():
    try:
        global_apps.get_model("gateway_admin", "AuditEntry")
    except LookupError:
        result = sync_roles()
        assert result.missing[AUDITORS] == ["gateway_admin.view_auditentry"]
        assert "gateway_admin.view_auditentry" not in held(AUDITORS)
        return
    assert "gateway_admin.view_auditentry" in held(AUDITORS)
    assert not {p for n in ROLES if n != AUDITORS for p in held(n) if p.startswith("gateway_admin.")}


def test_superusers_keep_everything():
    root = User.objects.create_superuser("root", password=None)
    assert root.has_perm("streaming.use_playground") and root.has_perm("billing.view_finance_reports")
    assert root.has_perm("providers.change_provider") and root.has_perm("billing.delete_virtualkey")


# --- the migration ------------------------------------------------------------------------


def test_the_migration_creates_the_permissions_and_grants_them_itself():
    """On a fresh database Django creates permissions only after the whole migrate run:
    the migration must not depend on that."""
    Group.objects.filter(name__in=ROLES).delete()
    Permission.objects.all().delete()
    state = MigrationLoader(connection).project_state(("gateway_admin", "0001_roles"))
    migration = importlib.import_module("gateway_admin.migrations.0001_roles")
    class SchemaEditor:  # all RunPython reads of it: the connection (no schema change here)
        pass

    editor = SchemaEditor()
    editor.connection = connection
    migration.create_roles(state.apps, editor)
    assert "providers.change_provider" in held(ROUTE_EDITORS)
    assert "billing.add_virtualkey" in held(KEY_MANAGERS)
    assert held(FINANCE) == {"billing.view_finance_reports", "billing.view_usagerecord"}
    assert held(PLAYGROUND_USERS) == {"streaming.use_playground"}
    assert {"auth.view_user", "guardrails.view_violation"} <= held(AUDITORS)
    # The audit trail comes with a later migration: the post-migrate sync grants it.
    assert "gateway_admin.view_auditentry" not in held(AUDITORS)


def test_the_migration_depends_on_every_app_whose_permissions_it_grants():
    migration = importlib.import_module("gateway_admin.migrations.0001_roles").Migration
    apps_read = {"auth", "contenttypes", "providers", "billing", "guardrails", "routing", "streaming"}
    assert {app for app, _ in migration.dependencies} == apps_read


# --- after every migrate, and the command ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_migrate_puts_back_declared_permissions_and_keeps_hand_added_ones():
    editors = Group.objects.get(name=ROUTE_EDITORS)
    editors.permissions.remove(Permission.objects.get(codename="change_route"))
    by_hand = Permission.objects.get(codename="view_usagerecord")
    editors.permissions.add(by_hand)
    call_command("migrate", verbosity=0)
    assert "routing.change_route" in held(ROUTE_EDITORS)
    assert "billing.view_usagerecord" in held(ROUTE_EDITORS)  # an administrator's choice: kept

    out = io.StringIO()
    call_command("sync_roles", "--exact", stdout=out)
    assert "billing.view_usagerecord" not in held(ROUTE_EDITORS)
    assert "Route editors: removed billing.view_usagerecord." in out.getvalue()
    assert held(ROUTE_EDITORS) == existing(declared(ROUTE_EDITORS))


@pytest.mark.django_db(transaction=True)
def test_a_model_added_later_gets_its_permissions_granted_on_the_next_migrate():
    """A permission that did not exist (a model of a later release) is created by
    Django after migrate and granted by the sync in the same run."""
    Permission.objects.filter(content_type__app_label="guardrails", codename="view_violation").delete()
    assert "guardrails.view_violation" not in held(AUDITORS)
    call_command("migrate", verbosity=0)
    assert "guardrails.view_violation" in held(AUDITORS) and "guardrails.view_violation" in held(ROUTE_EDITORS)


@pytest.mark.django_db(transaction=True)
def test_deleted_groups_come_back_with_their_permissions():
    Group.objects.filter(name__in=ROLES).delete()
    call_command("migrate", verbosity=0)
    for name in ROLES:
        assert held(name) == existing(declared(name))


def test_sync_roles_is_idempotent_and_says_what_it_did():
    Group.objects.get(name=FINANCE).permissions.clear()
    out = io.StringIO()
    call_command("sync_roles", stdout=out)
    assert "Finance: granted billing.view_finance_reports, billing.view_usagerecord." in out.getvalue()
    again = io.StringIO()
    call_command("sync_roles", stdout=again)
    lines = [line for line in again.getvalue().splitlines() if not line.startswith("  ")]
    assert lines == [f"{name}: up to date." for name in ROLES]


def test_grant_puts_a_user_in_role_groups():
    user = User.objects.create_user("ops", password=None, is_staff=True)
    grant(user, FINANCE, AUDITORS)
    assert set(user.groups.values_list("name", flat=True)) == {FINANCE, AUDITORS}
    with pytest.raises(ValueError, match="Unknown role"):
        grant(user, "Admins")


# --- the documented matrix ---------------------------------------------------------------------


MARKERS = ("<!-- roles-matrix:start (manage.py sync_roles --markdown) -->", "<!-- roles-matrix:end -->")


def test_the_documented_matrix_is_the_declared_one():
    text = DOC.read_text()
    start, end = (text.index(m) for m in MARKERS)
    documented = text[start + len(MARKERS[0]):end].strip()
    assert documented == markdown_matrix().strip(), (
        "docs/security/roles.md is stale: paste the output of `python manage.py sync_roles --markdown` "
        "between its roles-matrix markers")


def test_sync_roles_markdown_prints_the_matrix_and_changes_nothing():
    Group.objects.get(name=FINANCE).permissions.clear()
    out = io.StringIO()
    call_command("sync_roles", "--markdown", stdout=out)
    assert out.getvalue() == markdown_matrix()
    assert re.search(r"^\| Provider \(`providers.provider`\) \| view, add, change, delete \| — \| — \| view \| — \|$",
                     out.getvalue(), re.M)
    assert held(FINANCE) == set()
