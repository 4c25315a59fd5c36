"""manage.py rehash_keys [--check]

Moves every virtual key still stored with the legacy hash (plain SHA-256, before
the pepper) to the current pepper: the new hash is HMAC-SHA256(pepper, the stored
SHA-256), so no secret is needed and every key keeps working. Safe to run while
gateways serve (each row is updated only if it still holds the hash that was read)
and to run again (nothing left to do).

Then reports how many keys are on each pepper. Keys on an earlier pepper
(GATEWAY_KEY_PEPPER_PREVIOUS, or one derived from SECRET_KEY) cannot be moved without
their secret: they move on their first use; keep that pepper configured until its
count is 0, or rotate those keys. Keys on a pepper that is no longer configured cannot
authenticate at all.

--check changes nothing and exits 1 when any key is not on the current pepper (for a
deployment pipeline: "may I remove the previous pepper?").
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from billing.keys import rehash_keys
from billing.keys_pepper import peppers


class Command(BaseCommand):
    help = "Move legacy virtual-key hashes to the current pepper (HMAC-SHA256) and report what is left."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--check", action="store_true",
                            help="Change nothing; exit 1 if any key is not on the current pepper.")
        parser.add_argument("--batch", type=int, default=500, help="Rows per transaction (default 500).")

    def handle(self, *args, check: bool, batch: int, **options) -> None:
        if batch < 1:
            raise CommandError("--batch must be at least 1.")
        config = peppers()
        report = rehash_keys(check_only=check, batch=batch)
        source = config.current.source + (" (set GATEWAY_KEY_PEPPER: see manage.py check --deploy)"
                                          if config.derived else "")
        out = self.stdout.write
        if not check:
            out(f"upgraded {report.upgraded} legacy key hash(es) to the current pepper")
        out(f"current pepper ({source}): {report.current} key(s)")
        if report.legacy:
            out(f"legacy SHA-256: {report.legacy} key(s)" + (" (run without --check to upgrade them)" if check else ""))
        for name, count in report.previous.items():
            out(f"earlier pepper {name}: {count} key(s) (moved on first use; keep it configured until 0)")
        for scheme, count in report.unknown.items():
            self.stderr.write(f"pepper not configured ({scheme}): {count} key(s) cannot authenticate; "
                              "put that pepper back in GATEWAY_KEY_PEPPER_PREVIOUS or rotate these keys")
        left = report.legacy + sum(report.previous.values()) + sum(report.unknown.values())
        if check and left:
            raise CommandError(f"{left} key(s) are not on the current pepper.", returncode=1)
