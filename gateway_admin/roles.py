"""The gateway's roles, as Django groups (created by migration gateway_admin.0001_roles).

Each role is a group with exactly the permissions it needs (least privilege); an
account may hold several, and needs staff status to sign in to the admin (superusers
keep every permission). The admin, the management API (billing.api.permissions), the
finance reports and the playground all check these permissions, never staff status
alone.

`sync_roles` (re)applies the permission sets. It runs in the migration, after every
`migrate` (and test-database flush) through `connect_post_migrate`, and as
`manage.py sync_roles`. It is additive: it grants each role the declared permissions
that exist in the database (a declared model that does not exist yet, such as the
audit trail before its migration, is skipped) and never removes a permission an
administrator added by hand, unless `exact=True` (`sync_roles --exact`).

The matrix in docs/security/roles.md is generated from ROLE_DEFINITIONS
(`manage.py sync_roles --markdown`); a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import DEFAULT_DB_ALIAS

ROUTE_EDITORS = "Route editors"
KEY_MANAGERS = "Key managers"
FINANCE = "Finance"
AUDITORS = "Auditors"
PLAYGROUND_USERS = "Playground users"
ROLES = (ROUTE_EDITORS, KEY_MANAGERS, FINANCE, AUDITORS, PLAYGROUND_USERS)

CRUD = ("add", "change", "delete", "view")
VIEW = ("view",)

# The permissions the gateway's own pages and API check besides model permissions.
PLAYGROUND_PERMISSION = "streaming.use_playground"  # streaming.models.Playground
FINANCE_REPORTS_PERMISSION = "billing.view_finance_reports"  # billing.models.CostRollup
AUDIT_TRAIL_PERMISSION = "gateway_admin.view_auditentry"  # gateway_admin.AuditEntry (the audit trail)
STATUS_PAGE_PERMISSION = "routing.view_workerheartbeat"  # the admin's Gateway status page
# Models declared before they exist (their app's migration may come later): the name
# the matrix shows for them either way.
DECLARED_MODELS = {"gateway_admin.auditentry": "audit entry"}

# Auditors may view every model of these apps (models added later included: the
# post-migrate sync picks them up). Not listed, on purpose: authtoken (a token's page
# shows the token itself), sessions, admin's log, contenttypes, the Celery-beat tables.
AUDITED_APPS = ("providers", "routing", "billing", "guardrails", "streaming", "gateway_admin", "auth")


@dataclass(frozen=True)
class Role:
    name: str
    purpose: str
    # "app_label.modelname" -> the actions granted on it (add, change, delete, view).
    models: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Other permissions, "app_label.codename".
    extra: tuple[str, ...] = ()
    # View permission on every model of these apps.
    view_apps: tuple[str, ...] = ()


ROLE_DEFINITIONS: tuple[Role, ...] = (
    Role(
        ROUTE_EDITORS,
        "Where requests go: providers, models and their prices, routes and their targets (the answer cache is "
        "set on the route), guardrails. Can set a provider's API key, never read it. No keys, teams, budgets, "
        "usage or accounts.",
        models={
            "providers.provider": CRUD,
            "providers.model": CRUD,
            "providers.modelprice": CRUD,  # scheduled prices and the price history, on a model's page
            "providers.healthcheck": VIEW,  # probe history, on the model health page
            "routing.route": CRUD,  # includes the answer-cache policy and "Test this route"
            "routing.routetarget": CRUD,
            "routing.targethealth": ("change", "view"),  # model health; change = reset circuit breakers
            "guardrails.guardrail": CRUD,  # includes the guardrail sandbox
            "guardrails.violation": VIEW,  # the violation log (counts, never matched text)
            "routing.workerheartbeat": VIEW,  # the Gateway status page (health, breakers, queue, ledger)
        },
    ),
    Role(
        KEY_MANAGERS,
        "Who may call the gateway: virtual keys (issue, rotate, revoke), teams, budgets and their alerts. Sees "
        "routes and models to choose a key's allowed routes; changes neither. No providers, no accounts.",
        models={
            "billing.virtualkey": CRUD,
            "billing.team": CRUD,
            "billing.budget": CRUD,
            "billing.budgetalert": VIEW,  # history: read-only for everyone
            "routing.route": VIEW,
            "providers.model": VIEW,
        },
    ),
    Role(
        FINANCE,
        "Spend: the finance reports and their CSV exports, the usage ledger. Read-only.",
        models={"billing.usagerecord": VIEW},
        extra=(FINANCE_REPORTS_PERMISSION,),
    ),
    Role(
        AUDITORS,
        "Read-only everything: every model of the gateway's apps, user accounts and groups, the finance reports "
        "and the audit trail. Never a provider secret or a management API token.",
        extra=(FINANCE_REPORTS_PERMISSION, AUDIT_TRAIL_PERMISSION),
        view_apps=AUDITED_APPS,
    ),
    Role(
        PLAYGROUND_USERS,
        "The browser playground (/playground/), billed to the user's own playground key; nothing in the admin.",
        extra=(PLAYGROUND_PERMISSION,),
    ),
)
ROLE_BY_NAME = {role.name: role for role in ROLE_DEFINITIONS}
assert tuple(ROLE_BY_NAME) == ROLES


def _registry(apps=None):
    if apps is None:
        from django.apps import apps as registry

        return registry
    return apps


def declared_permissions(role: Role, apps=None) -> set[tuple[str, str]]:
    """(app_label, codename) pairs the role should hold. Models of `view_apps` are
    read from `apps` (a migration's registry, or the project's), so only models that
    exist at this point of the migration history are listed for them."""
    perms = {(label.split(".")[0], f"{action}_{label.split('.')[1]}")
             for label, actions in role.models.items() for action in actions}
    perms |= {tuple(p.split(".", 1)) for p in role.extra}
    registry = _registry(apps)
    for app_label in role.view_apps:
        try:
            app_config = registry.get_app_config(app_label)
        except LookupError:  # not in this migration state (or not installed)
            continue
        for model in app_config.get_models():
            if "view" in model._meta.default_permissions:
                perms.add((app_label, f"view_{model._meta.model_name}"))
    return perms


@dataclass
class SyncResult:
    added: dict[str, list[str]] = field(default_factory=dict)  # role -> "app.codename" granted now
    removed: dict[str, list[str]] = field(default_factory=dict)  # role -> removed (exact only)
    missing: dict[str, list[str]] = field(default_factory=dict)  # role -> declared, not in the database yet
    created: list[str] = field(default_factory=list)  # groups created now


def sync_roles(apps=None, *, exact: bool = False, using: str = DEFAULT_DB_ALIAS) -> SyncResult:
    """Create the role groups and grant each its declared permissions (idempotent).

    `apps`: a migration's app registry (default: the project's). `exact`: also remove
    every permission a role holds beyond its declaration (hand-added ones included).
    """
    registry = _registry(apps)
    Group = registry.get_model("auth", "Group")
    Permission = registry.get_model("auth", "Permission")
    wanted = {role.name: declared_permissions(role, apps) for role in ROLE_DEFINITIONS}
    labels = {label for perms in wanted.values() for label, _ in perms}
    codenames = {codename for perms in wanted.values() for _, codename in perms}
    existing = {
        (app_label, codename): pk
        for pk, app_label, codename in Permission.objects.using(using)
        .filter(content_type__app_label__in=labels, codename__in=codenames)
        .values_list("pk", "content_type__app_label", "codename")
    }
    result = SyncResult()
    for role in ROLE_DEFINITIONS:
        group, created = Group.objects.using(using).get_or_create(name=role.name)
        if created:
            result.created.append(role.name)
        want = {existing[p] for p in wanted[role.name] if p in existing}
        if missing := sorted(f"{a}.{c}" for a, c in wanted[role.name] if (a, c) not in existing):
            result.missing[role.name] = missing
        held = dict(group.permissions.values_list("pk", "content_type__app_label"))
        held_names = {
            pk: f"{app}.{codename}"
            for pk, app, codename in Permission.objects.using(using)
            .filter(pk__in=set(held) | want).values_list("pk", "content_type__app_label", "codename")
        }
        if to_add := want - set(held):
            group.permissions.add(*to_add)
            result.added[role.name] = sorted(held_names[pk] for pk in to_add)
        if exact and (to_remove := set(held) - want):
            group.permissions.remove(*to_remove)
            result.removed[role.name] = sorted(held_names[pk] for pk in to_remove)
    return result


def create_all_permissions(apps, using: str = DEFAULT_DB_ALIAS) -> None:
    """Content types and permissions of every model in `apps` (a migration's registry),
    which Django otherwise creates only after the whole migrate run (post_migrate)."""
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    for app_config in global_apps.get_app_configs():
        if app_config.models_module is None:
            continue
        create_permissions(app_config, verbosity=0, interactive=False, using=using, apps=apps)


# --- after every migrate --------------------------------------------------------------


def _last_app_with_models(registry) -> str | None:
    labels = [a.label for a in registry.get_app_configs() if a.models_module is not None]
    return labels[-1] if labels else None


def sync_after_migrate(sender, app_config=None, using: str = DEFAULT_DB_ALIAS, apps=None, **kwargs) -> None:
    """post_migrate receiver: once per migrate (or flush), after Django has created the
    permissions of every app (its own receiver runs for each app first)."""
    from django.apps import apps as global_apps

    if app_config is None or app_config.label != _last_app_with_models(global_apps):
        return
    registry = apps or global_apps
    try:
        registry.get_model("auth", "Group")
        registry.get_model("auth", "Permission")
    except LookupError:  # auth migrated back to zero
        return
    result = sync_roles(registry, using=using)
    if kwargs.get("verbosity", 1) >= 2:
        for name, perms in result.added.items():
            print(f"  Role {name}: granted {', '.join(perms)}")


def connect_post_migrate() -> None:
    from django.db.models.signals import post_migrate

    post_migrate.connect(sync_after_migrate, dispatch_uid="gateway_admin.roles.sync_after_migrate")


# --- the documented matrix ----------------------------------------------------------------

ACTION_ORDER = ("view", "add", "change", "delete")


def matrix(apps=None) -> list[tuple[str, dict[str, str]]]:
    """(thing, {role: abilities}) rows: one per model any role holds a permission on
    ("view, add, change, delete" or "—"), then one per other permission ("yes" or "—")."""
    registry = _registry(apps)
    per_role = {role.name: declared_permissions(role, apps) for role in ROLE_DEFINITIONS}
    models: dict[tuple[str, str], str] = {}  # (app_label, model_name) -> name shown
    others: set[str] = set()
    for perms in per_role.values():
        for app_label, codename in perms:
            action, _, model_name = codename.partition("_")
            name = _model_name(registry, app_label, model_name) if action in ACTION_ORDER else None
            if name is None:
                others.add(f"{app_label}.{codename}")
            else:
                models[(app_label, model_name)] = name
    rows = []
    for (app_label, model_name), name in sorted(models.items()):
        cells = {}
        for role in ROLE_DEFINITIONS:
            held = [a for a in ACTION_ORDER if (app_label, f"{a}_{model_name}") in per_role[role.name]]
            cells[role.name] = ", ".join(held) or "—"
        rows.append((f"{name[:1].upper()}{name[1:]} (`{app_label}.{model_name}`)", cells))
    for perm in sorted(others):
        app_label, codename = perm.split(".", 1)
        cells = {role.name: ("yes" if (app_label, codename) in per_role[role.name] else "—")
                 for role in ROLE_DEFINITIONS}
        rows.append((f"`{perm}`", cells))
    return rows


def _model_name(registry, app_label: str, model_name: str) -> str | None:
    """A model's name for the matrix, or None when `app_label.model_name` is no model."""
    label = f"{app_label}.{model_name}"
    if label in DECLARED_MODELS:
        return DECLARED_MODELS[label]
    try:
        return str(registry.get_model(app_label, model_name)._meta.verbose_name)
    except LookupError:
        return None


def markdown_matrix(apps=None) -> str:
    names = [role.name for role in ROLE_DEFINITIONS]
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for title, cells in matrix(apps):
        lines.append(f"| {title} | " + " | ".join(cells[n] for n in names) + " |")
    return "\n".join(lines) + "\n"


def grant(user, *roles: str) -> None:
    """Put `user` in the given role groups (creating them if needed: sync_roles)."""
    from django.contrib.auth.models import Group

    for name in roles:
        if name not in ROLES:
            raise ValueError(f"Unknown role {name!r}; roles: {', '.join(ROLES)}")
        group = Group.objects.filter(name=name).first()
        if group is None:
            sync_roles()
            group = Group.objects.get(name=name)
        user.groups.add(group)
