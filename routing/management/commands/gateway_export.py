"""manage.py gateway_export [--output FILE] [--include-secrets]: the config as YAML."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError

from routing.config import dump_config, export_config


class Command(BaseCommand):
    help = (
        "Print providers, models, routes and teams as YAML that gateway_import accepts. Provider keys "
        "and secret headers are exported as their references (env:, file:, vault:...) or [masked] "
        "(import keeps the stored secret) unless --include-secrets."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--output", "-o", metavar="FILE", help="Write to FILE instead of standard output.")
        parser.add_argument(
            "--include-secrets",
            action="store_true",
            help="Also export literal provider API keys and secret headers, in clear text. Handle the output "
            "as a secret.",
        )

    def handle(self, *args, output: str | None, include_secrets: bool, **options) -> None:
        text = dump_config(export_config(include_secrets=include_secrets))
        if include_secrets:
            self.stderr.write(
                "WARNING: --include-secrets: the export contains provider API keys in clear text. "
                "Do not commit or share it.",
                style_func=self.style.WARNING,
            )
        if not output:
            self.stdout.write(text, ending="")
            return
        try:
            # Created private when it may hold secrets; never widen an existing file's mode.
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if include_secrets else 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc}") from None
        self.stderr.write(f"Wrote {output}.", style_func=lambda s: s)
