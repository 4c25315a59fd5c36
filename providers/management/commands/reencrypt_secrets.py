"""manage.py reencrypt_secrets [--check] [--batch-size N]: rewrite every encrypted
column with the current encryption key (docs/security/secrets.md, rotation runbook).

Every field made with providers.secret_keys.RotatingEncryptedTextField, in every
model, is scanned by primary key in batches. A value not written with the current key
and format is decrypted (current or previous keys) and written back with the current
key: one transaction per batch, the batch's rows locked (SELECT ... FOR UPDATE on
PostgreSQL; SQLite has one writer at a time), so an edit made meanwhile is never
overwritten with an older value. Each new value is decrypted again before it is
written and must read with the current key, or the batch rolls back. Idempotent: a second run rewrites
nothing. No model signals fire and no timestamps change: the values are the same.

--check writes nothing and reports how many values still need a previous key (exit
status 1 when any does, or when any cannot be decrypted: remove an old key only when
it exits 0). A value no configured key decrypts is never written; it is named (model,
field, primary key) and the command exits non-zero.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from django.core.management.base import BaseCommand, CommandError
from django.db import connections, router, transaction
from django.db.models import BinaryField, ExpressionWrapper, F, Value

from providers.secret_keys import (
    SecretDecryptionError, decrypt_value, encrypt_value, keyring, plain_encrypted_fields, rotating_fields,
)

RAW = "_reencrypt_raw"


@dataclass
class Tally:
    scanned: int = 0
    empty: int = 0
    current: int = 0
    rewritten: int = 0
    by_key: Counter = field(default_factory=Counter)  # key label -> values not on the current key
    undecryptable: list[str] = field(default_factory=list)

    @property
    def outdated(self) -> int:
        return sum(self.by_key.values())


class Command(BaseCommand):
    help = ("Re-encrypt every stored secret (provider API keys) with the current CRYPTOGRAPHY_KEY, reading "
            "old values with CRYPTOGRAPHY_KEY_PREVIOUS. --check only counts what still needs an old key.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--check", action="store_true",
                            help="Write nothing; exit 1 if any value still needs a previous key or cannot be decrypted.")
        parser.add_argument("--batch-size", type=int, default=500, metavar="N",
                            help="Rows per transaction (default 500).")

    def handle(self, *args, check: bool, batch_size: int, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        ring = keyring()
        self.stdout.write(f"Current key: {ring.current.label}, fingerprint {ring.current.fingerprint}"
                          + ("" if ring.explicit else " (CRYPTOGRAPHY_KEY is not set: derived from SECRET_KEY)"))
        for model, plain in plain_encrypted_fields():
            self.stderr.write(f"WARNING: {model._meta.label}.{plain.name} uses django-cryptography's encrypt() "
                              "directly and is not rotated; use providers.secret_keys.RotatingEncryptedTextField.")
        total = Tally()
        for model, fld in rotating_fields():
            tally = self._column(model, fld, check, batch_size)
            verb = "need a previous key" if check else "re-encrypted"
            done = tally.outdated if check else tally.rewritten
            line = (f"{model._meta.label}.{fld.name}: {tally.scanned} rows, {tally.empty} null, "
                    f"{tally.current} already on the current key, {done} {verb}")
            if tally.by_key:
                line += " (" + ", ".join(f"{n} with {label}" for label, n in sorted(tally.by_key.items())) + ")"
            if tally.undecryptable:
                line += f", {len(tally.undecryptable)} cannot be decrypted"
            self.stdout.write(line)
            for name in ("scanned", "empty", "current", "rewritten"):
                setattr(total, name, getattr(total, name) + getattr(tally, name))
            total.by_key.update(tally.by_key)
            total.undecryptable += tally.undecryptable
        for where in total.undecryptable:
            self.stderr.write(f"  cannot be decrypted: {where}")
        if total.undecryptable:
            raise CommandError(f"{len(total.undecryptable)} value(s) cannot be decrypted with any configured key "
                               "(CRYPTOGRAPHY_KEY, CRYPTOGRAPHY_KEY_PREVIOUS, SECRET_KEY, SECRET_KEY_FALLBACKS); they "
                               "were left unchanged. Configure the key that wrote them, or set those secrets again.")
        if check:
            if total.outdated:
                raise CommandError(f"{total.outdated} value(s) still need a previous key: run reencrypt_secrets "
                                   "before removing it.")
            self.stdout.write("All values are on the current key: previous keys can be removed.")
        else:
            self.stdout.write(f"Done: {total.rewritten} re-encrypted, {total.current} already current, "
                              f"{total.empty} null.")

    def _column(self, model, fld, check: bool, batch_size: int) -> Tally:
        tally = Tally()
        db = router.db_for_write(model)
        manager = model._base_manager.db_manager(db)
        raw = ExpressionWrapper(F(fld.attname), output_field=BinaryField())
        last = None
        while True:
            with transaction.atomic(using=db):
                qs = manager.order_by("pk")
                if last is not None:
                    qs = qs.filter(pk__gt=last)
                pks = list(qs.values_list("pk", flat=True)[:batch_size])
                if not pks:
                    break
                last = pks[-1]
                locked = manager.filter(pk__in=pks).order_by("pk")
                if not check and connections[db].features.has_select_for_update:
                    locked = locked.select_for_update()
                for pk, stored in locked.annotate(**{RAW: raw}).values_list("pk", RAW):
                    tally.scanned += 1
                    self._row(model, fld, manager, pk, stored, check, tally)
        return tally

    @staticmethod
    def _row(model, fld, manager, pk, stored, check: bool, tally: Tally) -> None:
        if stored is None:
            tally.empty += 1
            return
        stored = bytes(stored)
        try:
            decrypted = decrypt_value(stored)
        except SecretDecryptionError as exc:
            tally.undecryptable.append(f"{model._meta.label}.{fld.name} pk={pk}: {exc}")
            return
        if decrypted.current:
            tally.current += 1
            return
        tally.by_key[decrypted.key.label] += 1  # "" is encrypted too: it is rewritten like any value
        if check:
            return
        token = encrypt_value(decrypted.value)
        check_back = decrypt_value(token)  # belt and braces: what is written must read back with the current key
        if not check_back.current or check_back.value != decrypted.value:
            raise CommandError(f"{model._meta.label}.{fld.name} pk={pk}: the re-encrypted value does not read back "
                               "with the current key; this batch was rolled back")
        manager.filter(pk=pk).update(**{fld.attname: Value(token, output_field=BinaryField())})  # the bytes as made
        tally.rewritten += 1
