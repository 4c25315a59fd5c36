"""manage.py sync_roles: create the role groups and grant their declared permissions.

Runs by itself after every `migrate`; run it by hand after restoring a database or
to undo hand-made changes (--exact). --markdown prints the role x ability matrix of
docs/security/roles.md.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS, transaction

from gateway_admin.roles import ROLE_DEFINITIONS, markdown_matrix, sync_roles


class Command(BaseCommand):
    help = (
        "Create the role groups (Route editors, Key managers, Finance, Auditors, Playground users) and grant "
        "each its declared permissions. Additive: permissions added by hand stay, unless --exact."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--exact", action="store_true",
            help="Also remove every permission a role group holds beyond its declaration (hand-added ones too).",
        )
        parser.add_argument("--markdown", action="store_true",
                            help="Print the role x ability matrix (Markdown) and change nothing.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="The database to sync (default: default).")

    def handle(self, *args, exact: bool = False, markdown: bool = False, database: str = DEFAULT_DB_ALIAS,
               **options) -> None:
        if markdown:
            self.stdout.write(markdown_matrix(), ending="")
            return
        with transaction.atomic(using=database):
            result = sync_roles(exact=exact, using=database)
        for role in ROLE_DEFINITIONS:
            name = role.name
            parts = []
            if name in result.created:
                parts.append("group created")
            if added := result.added.get(name):
                parts.append(f"granted {', '.join(added)}")
            if removed := result.removed.get(name):
                parts.append(f"removed {', '.join(removed)}")
            if not parts:
                parts.append("up to date")
            self.stdout.write(f"{name}: {'; '.join(parts)}.")
            if missing := result.missing.get(name):
                self.stdout.write(f"  Not in this database yet (skipped): {', '.join(missing)}.")
