"""The gateway's roles, as Django groups (created by migration gateway_admin.0001_roles).

Each role is a group with exactly the permissions it needs (least privilege); an
account may hold several. `sync_roles` (re)applies the permission sets; it is called
by the migration and by `manage.py sync_roles`.
"""

from __future__ import annotations

ROUTE_EDITORS = "Route editors"
KEY_MANAGERS = "Key managers"
FINANCE = "Finance"
AUDITORS = "Auditors"
PLAYGROUND_USERS = "Playground users"
ROLES = (ROUTE_EDITORS, KEY_MANAGERS, FINANCE, AUDITORS, PLAYGROUND_USERS)


def sync_roles(apps=None) -> None:
    """Create the role groups (idempotent). `apps`: a migration's app registry."""
    if apps is None:
        from django.apps import apps as registry

        apps = registry
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)
