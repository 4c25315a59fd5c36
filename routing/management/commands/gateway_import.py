"""manage.py gateway_import FILE.yaml|- [--prune] [--dry-run]: apply a config file."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from routing.config import ConfigError, import_config, load_config_text


class Command(BaseCommand):
    help = (
        "Create or update providers, models, routes and teams from a YAML file (or - for stdin), "
        "matching by name. All or nothing: an invalid file changes nothing. Schema: docs/config.md."
    )
    stealth_options = ("stdin",)

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", help="YAML configuration file, or - to read standard input.")
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Also remove providers, models, routes and teams absent from the sections present in the "
            "file: deleted when nothing refers to them, disabled otherwise (teams with keys are kept).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Validate and report, then roll everything back.")

    def handle(self, *args, file: str, prune: bool, dry_run: bool, verbosity: int, **options) -> None:
        text = self._read(file, options.get("stdin") or sys.stdin)
        try:
            report = import_config(load_config_text(text), prune=prune, dry_run=dry_run)
        except ConfigError as exc:
            count = len(exc.errors)
            raise CommandError(
                f"{exc}\n{'1 error' if count == 1 else f'{count} errors'} in {self._label(file)}; nothing was changed."
            ) from None
        if verbosity >= 2:
            for entity, name, action in report.changes:
                self.stdout.write(f"  {action:<9} {entity} {name}")
        for line in report.summary():
            self.stdout.write(line)
        if dry_run:
            self.stdout.write("Dry run: nothing was saved.")

    @staticmethod
    def _label(file: str) -> str:
        return "standard input" if file == "-" else file

    @staticmethod
    def _read(file: str, stdin) -> str:
        if file == "-":
            return stdin.read()
        try:
            with open(file, encoding="utf-8") as fh:
                return fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {file}: {exc}") from None
