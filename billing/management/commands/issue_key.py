"""manage.py issue_key --name NAME [--team T [--create-team]] [--routes a,b] [--expires-in-days N]

Prints the new secret ALONE on stdout (so `KEY=$(manage.py issue_key ...)` works);
everything else goes to stderr. The secret is shown this once and never stored.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from billing.keys import issue_key
from billing.models import Team
from routing.models import Route


def _plain(text: str) -> str:
    return text


class Command(BaseCommand):
    help = "Issue a virtual key and print its secret (only the secret) on stdout."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True, help="Who or what uses the key, e.g. search-backend.")
        parser.add_argument("--team", help="Name of the team the key's usage is billed to.")
        parser.add_argument("--create-team", action="store_true", help="Create --team if it does not exist.")
        parser.add_argument(
            "--routes", default="", help="Comma-separated route names the key may call (default: every route)."
        )
        parser.add_argument("--expires-in-days", type=int, metavar="N", help="Expire the key after N days.")

    def handle(self, *args, name: str, team: str | None, create_team: bool, routes: str,
               expires_in_days: int | None, **options) -> None:
        name = name.strip()
        if not name:
            raise CommandError("--name must not be empty.")
        if len(name) > 100:
            raise CommandError("--name must be at most 100 characters.")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1.")
        if create_team and not team:
            raise CommandError("--create-team needs --team NAME.")
        route_names = list(dict.fromkeys(r.strip() for r in routes.split(",") if r.strip()))

        with transaction.atomic():
            found = {r.name: r for r in Route.objects.filter(name__in=route_names)}
            missing = [r for r in route_names if r not in found]
            if missing:
                known = ", ".join(Route.objects.order_by("name").values_list("name", flat=True)) or "none"
                label = "route" if len(missing) == 1 else "routes"
                names = ", ".join(map(repr, missing))
                raise CommandError(f"unknown {label} {names} (known: {known}). No key was issued.")
            team_obj = self._team(team, create_team) if team else None
            expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
            issued = issue_key(name, team=team_obj, routes=[found[r] for r in route_names], expires_at=expires_at)

        self.stdout.write(issued.secret)
        details = [
            f"team {team_obj.name}" if team_obj else "no team",
            f"routes {', '.join(route_names)}" if route_names else "every route",
            f"expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "never expires",
        ]
        self.stderr.write(
            f"Issued key '{name}' ({issued.key.prefix}...): {'; '.join(details)}.\n"
            "The secret (on stdout) is shown only this once; store it now.",
            style_func=_plain,
        )

    def _team(self, name: str, create: bool) -> Team:
        team = Team.objects.filter(name=name).first()
        if team is not None:
            return team
        if not create:
            known = ", ".join(Team.objects.order_by("name").values_list("name", flat=True)) or "none"
            raise CommandError(
                f"unknown team '{name}' (known: {known}). Pass --create-team to create it. No key was issued."
            )
        team = Team(name=name)
        try:
            team.full_clean()
        except ValidationError as exc:
            raise CommandError(f"invalid team name '{name}': {' '.join(exc.messages)}") from None
        team.save()
        self.stderr.write(f"Created team '{name}'.", style_func=_plain)
        return team
