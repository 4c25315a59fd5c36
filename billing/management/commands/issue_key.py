"""manage.py issue_key --name NAME [--team T [--create-team]] [--routes a,b] [--expires-in-days N]
    [--rpm N] [--tpm N] (0 = no requests allowed) [--budget USD [--budget-period day|month|total]] [--tags a,b]

Prints the new secret ALONE on stdout (so `KEY=$(manage.py issue_key ...)` works);
everything else goes to stderr. The secret is shown this once and never stored.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from billing.keys import issue_key, normalize_tags, validate_rate_limits
from billing.models import Budget, Team, VirtualKey


def _plain(text: str) -> str:
    return text


def _limit_text(value: int | None, unit: str) -> str:
    if value is None:
        return ""
    return f"0 {unit} (no requests allowed)" if value == 0 else f"{value} {unit}"


def _usd(value: str) -> Decimal:
    """argparse type for --budget: a non-negative amount with at most 4 decimal places."""
    try:
        amount = Decimal(value.strip())
    except InvalidOperation:
        raise CommandError(f"--budget must be an amount in USD, e.g. 50 or 12.5 (got {value!r}).") from None
    if not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -4:
        raise CommandError(f"--budget must be at least 0 with at most 4 decimal places (got {value!r}).")
    return amount


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
        parser.add_argument(
            "--rpm", type=int, metavar="N",
            help="Requests per minute for this key (default: no limit; 0 = no requests allowed).",
        )
        parser.add_argument(
            "--tpm", type=int, metavar="N",
            help="Tokens per minute for this key (default: no limit; 0 = no requests allowed).",
        )
        parser.add_argument("--budget", metavar="USD", help="A blocking budget of USD per --budget-period.")
        parser.add_argument(
            "--budget-period", choices=Budget.Period.values, help="Period of --budget (default: month)."
        )
        parser.add_argument("--tags", default="", help="Comma-separated labels, e.g. prod,search.")

    def handle(self, *args, name: str, team: str | None, create_team: bool, routes: str,
               expires_in_days: int | None, rpm: int | None, tpm: int | None, budget: str | None,
               budget_period: str | None, tags: str, **options) -> None:
        name = name.strip()
        if not name:
            raise CommandError("--name must not be empty.")
        if len(name) > 100:
            raise CommandError("--name must be at most 100 characters.")
        if expires_in_days is not None and expires_in_days < 1:
            raise CommandError("--expires-in-days must be at least 1.")
        if create_team and not team:
            raise CommandError("--create-team needs --team NAME.")
        try:
            validate_rate_limits(rpm, tpm)  # the check every entry point makes: 0 = nothing allowed
        except ValidationError as exc:
            flags = {"rpm_limit": "--rpm", "tpm_limit": "--tpm"}
            raise CommandError(
                " ".join(f"{flags[f]}: {' '.join(m)}" for f, m in exc.message_dict.items())
                + " Leave it out for no limit. No key was issued."
            ) from None
        if budget_period and budget is None:
            raise CommandError("--budget-period needs --budget USD.")
        budget_usd = _usd(budget) if budget is not None else None
        budget_period = budget_period or Budget.Period.MONTH
        try:
            tag_list = normalize_tags(tags)
        except ValidationError as exc:
            raise CommandError(f"--tags: {' '.join(exc.messages)}") from None
        route_names = list(dict.fromkeys(r.strip() for r in routes.split(",") if r.strip()))

        with transaction.atomic():
            Route = VirtualKey.allowed_routes.field.related_model  # routing's, without importing routing
            found = {r.name: r for r in Route.objects.filter(name__in=route_names)}
            missing = [r for r in route_names if r not in found]
            if missing:
                known = ", ".join(Route.objects.order_by("name").values_list("name", flat=True)) or "none"
                label = "route" if len(missing) == 1 else "routes"
                names = ", ".join(map(repr, missing))
                raise CommandError(f"unknown {label} {names} (known: {known}). No key was issued.")
            team_obj = self._team(team, create_team) if team else None
            expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
            try:
                issued = issue_key(
                    name, team=team_obj, routes=[found[r] for r in route_names], expires_at=expires_at,
                    rpm_limit=rpm, tpm_limit=tpm, tags=tag_list, budget_usd=budget_usd, budget_period=budget_period,
                )
            except ValidationError as exc:  # e.g. a budget too large for the database field
                raise CommandError(f"invalid key: {' '.join(exc.messages)} No key was issued.") from None

        self.stdout.write(issued.secret)
        details = [
            f"team {team_obj.name}" if team_obj else "no team",
            f"routes {', '.join(route_names)}" if route_names else "every route",
            f"expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else "never expires",
            _limit_text(rpm, "requests/min"),
            _limit_text(tpm, "tokens/min"),
            f"budget ${budget_usd} per {budget_period}" if budget_usd is not None else "",
            f"tags {', '.join(tag_list)}" if tag_list else "",
        ]
        details = [d for d in details if d]
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
