"""Rotating the encryption key of stored secrets (providers.secret_keys) and
`manage.py reencrypt_secrets`: old data readable, new key in use, old key removable;
reads and the command fail clearly (never garbage) without the key that wrote a value;
SECRET_KEY rotation loses nothing. SQLite by default; the same tests on PostgreSQL
with DATABASE_URL=postgres://... (and the PostgreSQL-only row-lock test)."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.test import override_settings
from django_cryptography.core.signing import FernetSigner
from django_cryptography.utils.crypto import FernetBytes

from providers import secret_keys
from providers.catalog import load_models
from providers.models import Provider
from providers.secret_keys import LEGACY, ROTATING, UndecryptableSecret, decrypt_value
from tests.conftest import database_url
from tests.factories import ModelFactory, ProviderFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent

KEY_A = "key-A-0f3c9d2e7b6a41588c1d2e3f4a5b6c7d"
KEY_B = "key-B-9a8b7c6d5e4f30211f2e3d4c5b6a7988"
SECRETS = [f"sk-provider-secret-{i:02d}-abcdefgh" for i in range(7)]


def raw(provider_id: int) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM providers_provider WHERE id = %s", [provider_id])
        return bytes(cursor.fetchone()[0])


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("reencrypt_secrets", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def providers_with_key_a(count: int = len(SECRETS)) -> list[Provider]:
    with override_settings(CRYPTOGRAPHY_KEY=KEY_A):
        return [ProviderFactory(name=f"p{i}", api_key=SECRETS[i]) for i in range(count)]


def keys_of(providers) -> list[str]:
    return [Provider.objects.get(pk=p.pk).api_key for p in providers]


def test_rotation_old_data_readable_new_key_in_use_old_key_removable():
    providers = providers_with_key_a()
    written_with_a = {p.pk: raw(p.pk) for p in providers}
    assert all(token[:1] == ROTATING for token in written_with_a.values())

    with override_settings(CRYPTOGRAPHY_KEY=KEY_B, CRYPTOGRAPHY_KEY_PREVIOUS=[KEY_A]):
        # B current, A previous: everything written with A reads.
        assert keys_of(providers) == SECRETS
        assert decrypt_value(raw(providers[0].pk)).key.label == "previous #1"
        # A new write uses B.
        fresh = ProviderFactory(name="fresh", api_key="sk-written-with-key-b-0000")
        assert decrypt_value(raw(fresh.pk)).key.label == "current" and decrypt_value(raw(fresh.pk)).current
        # --check counts what still needs A (and fails, so a runbook stops there).
        with pytest.raises(CommandError, match="7 value"):
            run("--check")
        # Re-encrypt, in small batches.
        out, _ = run("--batch-size", "3")
        assert "providers.Provider.api_key: 8 rows, 0 null, 1 already on the current key, 7 re-encrypted" in out
        assert "7 with previous #1" in out
        assert all(raw(p.pk) != written_with_a[p.pk] for p in providers)
        assert all(decrypt_value(raw(p.pk)).current for p in providers)
        # Idempotent: nothing left to do.
        out, _ = run()
        assert "8 already on the current key, 0 re-encrypted" in out
        out, _ = run("--check")
        assert "previous keys can be removed" in out

    with override_settings(CRYPTOGRAPHY_KEY=KEY_B):  # A removed
        assert keys_of(providers) == SECRETS
        assert Provider.objects.get(name="fresh").api_key == "sk-written-with-key-b-0000"
        assert {m.provider.api_key for m in load_models().values()} >= set()  # loads without error
        run("--check")


def test_without_the_old_key_reads_and_the_command_fail_clearly():
    providers = providers_with_key_a(2)
    before = {p.pk: raw(p.pk) for p in providers}

    with override_settings(CRYPTOGRAPHY_KEY=KEY_B):  # A removed before re-encrypting
        value = Provider.objects.get(pk=providers[0].pk).api_key
        assert isinstance(value, UndecryptableSecret) and not value  # never garbage, never the secret
        assert "not configured" in value.reason and "CRYPTOGRAPHY_KEY_PREVIOUS" in value.reason
        assert "cannot be decrypted" in Provider.objects.get(pk=providers[0].pk).api_key_display

        with pytest.raises(CommandError, match="2 value.*cannot be decrypted") as exc:
            out, err = io.StringIO(), io.StringIO()
            try:
                call_command("reencrypt_secrets", stdout=out, stderr=err)
            finally:
                names = err.getvalue()
        assert f"pk={providers[0].pk}" in names and f"pk={providers[1].pk}" in names
        assert SECRETS[0] not in names + str(exc.value)
        with pytest.raises(CommandError, match="cannot be decrypted"):
            run("--check")
        assert {p.pk: raw(p.pk) for p in providers} == before  # nothing was written

        # Saving it back is refused, in words (admin, import, API all run clean()).
        provider = Provider.objects.get(pk=providers[0].pk)
        with pytest.raises(Exception, match="cannot be decrypted"):
            provider.full_clean()
        with pytest.raises(secret_keys.SecretDecryptionError, match="refusing to write"), transaction.atomic():
            provider.save()
        assert raw(provider.pk) == before[provider.pk]
        # A new key replaces it.
        provider.api_key = "sk-typed-again-after-losing-key-a"
        provider.full_clean()
        provider.save()
        assert Provider.objects.get(pk=provider.pk).api_key == "sk-typed-again-after-losing-key-a"

    with override_settings(CRYPTOGRAPHY_KEY=KEY_B, CRYPTOGRAPHY_KEY_PREVIOUS=[KEY_A]):
        assert Provider.objects.get(pk=providers[1].pk).api_key == SECRETS[1]  # A back: readable again


def test_an_undecryptable_provider_fails_alone_in_the_catalogue(caplog):
    good = ProviderFactory(name="good", api_key="sk-good-key-written-with-default")
    bad = providers_with_key_a(1)[0]
    ModelFactory(provider=good, name="m-good")
    ModelFactory(provider=bad, name="m-bad")
    with override_settings(CRYPTOGRAPHY_KEY=secret_keys._derive(_secret_key()), CRYPTOGRAPHY_KEY_PREVIOUS=[]):
        models = {m.label: m for m in load_models().values()}
    assert models["good/m-good"].provider.api_key == "sk-good-key-written-with-default"
    assert models["p0/m-bad"].provider.api_key is None
    assert "cannot be decrypted" in models["p0/m-bad"].provider.api_key_error
    assert "p0: the stored key cannot be decrypted" in caplog.text


def _secret_key() -> str:
    from django.conf import settings

    return settings.SECRET_KEY


def test_secret_key_rotation_keeps_values_written_with_cryptography_key():
    providers = providers_with_key_a(2)
    with override_settings(CRYPTOGRAPHY_KEY=KEY_A, SECRET_KEY="a-completely-new-secret-key-after-a-leak"):
        assert keys_of(providers) == SECRETS[:2]


def legacy_token(value: str, aes_material: str, secret_key: str) -> bytes:
    """What django-cryptography itself (before this module) wrote."""
    return FernetBytes(secret_keys._derive(aes_material), FernetSigner(secret_key)).encrypt(pickle.dumps(value))


def store_raw(provider_id: int, token: bytes) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE providers_provider SET api_key = %s WHERE id = %s", [token, provider_id])


def test_values_written_by_plain_django_cryptography_are_read_and_moved_off_secret_key():
    provider = ProviderFactory(name="legacy", api_key="")
    # Written by an earlier release with CRYPTOGRAPHY_KEY=A: AES from A, HMAC from SECRET_KEY "old-sk".
    store_raw(provider.pk, legacy_token("sk-legacy-written-value-1234", KEY_A, "old-sk"))
    with override_settings(CRYPTOGRAPHY_KEY=KEY_A, SECRET_KEY="old-sk"):
        assert Provider.objects.get(pk=provider.pk).api_key == "sk-legacy-written-value-1234"
        with pytest.raises(CommandError):
            run("--check")  # readable, but still tied to SECRET_KEY
        run()
        assert raw(provider.pk)[:1] == ROTATING
    # SECRET_KEY rotated without any fallback: still readable now.
    with override_settings(CRYPTOGRAPHY_KEY=KEY_A, SECRET_KEY="new-sk"):
        assert Provider.objects.get(pk=provider.pk).api_key == "sk-legacy-written-value-1234"


def test_a_legacy_value_after_secret_key_rotation_needs_the_fallback():
    provider = ProviderFactory(name="legacy", api_key="")
    store_raw(provider.pk, legacy_token("sk-legacy-written-value-5678", KEY_A, "old-sk"))
    with override_settings(CRYPTOGRAPHY_KEY=KEY_A, SECRET_KEY="new-sk"):
        value = Provider.objects.get(pk=provider.pk).api_key
        assert isinstance(value, UndecryptableSecret) and "SECRET_KEY_FALLBACKS" in value.reason
    with override_settings(CRYPTOGRAPHY_KEY=KEY_A, SECRET_KEY="new-sk", SECRET_KEY_FALLBACKS=["old-sk"]):
        assert Provider.objects.get(pk=provider.pk).api_key == "sk-legacy-written-value-5678"
        run()
    with override_settings(CRYPTOGRAPHY_KEY=KEY_A, SECRET_KEY="new-sk"):
        assert Provider.objects.get(pk=provider.pk).api_key == "sk-legacy-written-value-5678"


def test_without_cryptography_key_secret_key_rotation_with_fallbacks():
    """The default deployment (no CRYPTOGRAPHY_KEY): django-cryptography's format, both
    keys from SECRET_KEY. Rotating SECRET_KEY: the old one in SECRET_KEY_FALLBACKS,
    re-encrypt, drop the fallback."""
    old, new = "sk-old-secret-key-of-the-deployment", "sk-new-secret-key-of-the-deployment"
    with override_settings(SECRET_KEY=old, CRYPTOGRAPHY_KEY=secret_keys._derive(old)):  # as AppConf derives it
        provider = ProviderFactory(name="p", api_key="sk-value-in-the-default-format")
        assert raw(provider.pk)[:1] == LEGACY  # exactly what django-cryptography writes: older releases read it
        token = raw(provider.pk)
        assert pickle.loads(FernetBytes(secret_keys._derive(old), FernetSigner(old)).decrypt(token)) == \
            "sk-value-in-the-default-format"
    with override_settings(SECRET_KEY=new, CRYPTOGRAPHY_KEY=secret_keys._derive(new), SECRET_KEY_FALLBACKS=[old]):
        assert Provider.objects.get(pk=provider.pk).api_key == "sk-value-in-the-default-format"
        out, _ = run()
        assert "1 re-encrypted" in out
        assert raw(provider.pk)[:1] == LEGACY
    with override_settings(SECRET_KEY=new, CRYPTOGRAPHY_KEY=secret_keys._derive(new)):
        assert Provider.objects.get(pk=provider.pk).api_key == "sk-value-in-the-default-format"


def test_a_wrong_aes_key_with_a_valid_signature_is_never_garbage():
    """django-cryptography's HMAC is keyed with SECRET_KEY, not the AES key: a value
    whose HMAC verifies may still be decrypted with the wrong key. That is detected."""
    provider = ProviderFactory(name="p", api_key="")
    store_raw(provider.pk, legacy_token("sk-legacy-value-aes-from-a", KEY_A, _secret_key()))
    with override_settings(CRYPTOGRAPHY_KEY=KEY_B):
        value = Provider.objects.get(pk=provider.pk).api_key
    assert isinstance(value, UndecryptableSecret) and "not configured" in value.reason
    for _ in range(300):  # many IVs: a wrong key never passes as a value
        token = legacy_token("x" * 20, KEY_A, _secret_key())
        with override_settings(CRYPTOGRAPHY_KEY=KEY_B):
            with pytest.raises(secret_keys.SecretDecryptionError):
                decrypt_value(token)


def test_corrupt_bytes_and_unknown_formats_are_errors():
    provider = providers_with_key_a(1)[0]
    token = bytearray(raw(provider.pk))
    token[30] ^= 0xFF
    with override_settings(CRYPTOGRAPHY_KEY=KEY_A):
        with pytest.raises(secret_keys.SecretDecryptionError):
            decrypt_value(bytes(token))
        with pytest.raises(secret_keys.SecretDecryptionError, match="unknown format"):
            decrypt_value(b"plain text in the column")


def test_the_payload_never_unpickles_objects():
    provider = ProviderFactory(name="p", api_key="")

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    store_raw(provider.pk, FernetBytes(secret_keys._derive(_secret_key()), FernetSigner(_secret_key()))
              .encrypt(pickle.dumps(Boom())))
    assert isinstance(Provider.objects.get(pk=provider.pk).api_key, UndecryptableSecret)


def test_the_field_needs_no_migration():
    out = io.StringIO()
    call_command("makemigrations", "providers", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
    name, path, args, kwargs = Provider._meta.get_field("api_key").deconstruct()
    assert path == "django_cryptography.fields.encrypt"


@pytest.mark.django_db(transaction=True)
def test_the_command_in_a_real_process_with_keys_from_the_environment():
    """The runbook as an operator runs it: CRYPTOGRAPHY_KEY and CRYPTOGRAPHY_KEY_PREVIOUS
    (comma-separated) from the environment."""
    providers = providers_with_key_a(3)
    env = {**os.environ, "DATABASE_URL": database_url(), "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
           "SECRET_KEY": _secret_key(), "CRYPTOGRAPHY_KEY": KEY_B,
           "CRYPTOGRAPHY_KEY_PREVIOUS": f"some-older-key-no-longer-used,{KEY_A}"}

    def manage(*args, **extra):
        return subprocess.run([sys.executable, "manage.py", "reencrypt_secrets", *args], cwd=ROOT,
                              env={**env, **extra}, capture_output=True, text=True, timeout=120)

    check = manage("--check")
    assert check.returncode == 1 and "3 value(s) still need a previous key" in check.stderr, check.stderr
    assert "3 with previous #2" in check.stdout
    done = manage()
    assert done.returncode == 0 and "3 re-encrypted" in done.stdout, done.stderr
    after = manage("--check", CRYPTOGRAPHY_KEY_PREVIOUS="")
    assert after.returncode == 0 and "previous keys can be removed" in after.stdout, after.stderr
    for blob in (check.stdout, check.stderr, done.stdout, done.stderr):
        assert not any(secret in blob for secret in SECRETS) and KEY_A not in blob and KEY_B not in blob
    with override_settings(CRYPTOGRAPHY_KEY=KEY_B):
        assert keys_of(providers) == SECRETS[:3]


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks (SELECT ... FOR UPDATE) are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_rows_are_locked_while_a_batch_is_rewritten():
    """PostgreSQL: a batch locks its rows (FOR UPDATE) when it reads them, so an admin
    save of a row the batch has read but not yet rewritten waits, and is then applied
    over the re-encrypted value -- never overwritten by the value read before it."""
    import threading
    import time

    from django.db import connections

    providers = providers_with_key_a(2)
    with override_settings(CRYPTOGRAPHY_KEY=KEY_B, CRYPTOGRAPHY_KEY_PREVIOUS=[KEY_A]):
        locked = threading.Event()
        editing = threading.Event()
        from providers.management.commands import reencrypt_secrets as command

        original = command.Command._row
        calls = []

        def slow_row(*args, **kwargs):
            original(*args, **kwargs)
            calls.append(1)
            if len(calls) == 1:  # row 0 rewritten, row 1 read but not yet: let the editor try now
                locked.set()
                editing.wait(10)
                time.sleep(0.5)  # the editor's UPDATE is sent and waits for the row lock

        saved = []

        def edit():
            locked.wait(10)
            try:
                editing.set()
                Provider.objects.filter(pk=providers[1].pk).update(api_key="sk-edited-during-the-rewrite-0000")
                saved.append(True)
            finally:
                connections.close_all()

        editor = threading.Thread(target=edit)
        editor.start()
        command.Command._row = staticmethod(slow_row)
        try:
            run("--batch-size", "10")
        finally:
            command.Command._row = staticmethod(original)
        editor.join(15)
        assert saved == [True]
        assert Provider.objects.get(pk=providers[1].pk).api_key == "sk-edited-during-the-rewrite-0000"
        assert Provider.objects.get(pk=providers[0].pk).api_key == SECRETS[0]


def test_rolling_upgrade_writes_the_format_older_releases_read():
    """GATEWAY_SECRETS_LEGACY_FORMAT: with CRYPTOGRAPHY_KEY set, a value is still
    written as django-cryptography wrote it (what the previous release decrypts); after
    the upgrade, reencrypt_secrets moves it to the SECRET_KEY-independent format."""
    with override_settings(CRYPTOGRAPHY_KEY=KEY_A, GATEWAY_SECRETS_LEGACY_FORMAT=True):
        provider = ProviderFactory(name="p", api_key="sk-written-during-the-rollout")
        token = raw(provider.pk)
        assert token[:1] == LEGACY
        # The previous release's field: plain django-cryptography with the same settings.
        old_release = FernetBytes(secret_keys._derive(KEY_A), FernetSigner(_secret_key()))
        assert pickle.loads(old_release.decrypt(token)) == "sk-written-during-the-rollout"
        out, _ = run("--check")
        assert "1 already on the current key" in out
    with override_settings(CRYPTOGRAPHY_KEY=KEY_A):
        with pytest.raises(CommandError):
            run("--check")
        run()
        assert raw(provider.pk)[:1] == ROTATING
        assert Provider.objects.get(pk=provider.pk).api_key == "sk-written-during-the-rollout"


def test_an_undecryptable_key_exports_masked_and_refuses_include_secrets():
    from routing.config import ConfigError, export_config, import_config

    providers_with_key_a(1)
    with override_settings(CRYPTOGRAPHY_KEY=KEY_B):
        assert export_config()["providers"][0]["api_key"] == "[masked]"
        with pytest.raises(ConfigError, match="cannot be decrypted"):
            export_config(include_secrets=True)
        # Re-importing it says what is wrong, at the key's path, and overwrites nothing.
        before = raw(Provider.objects.get().pk)
        with pytest.raises(ConfigError) as exc:
            import_config(export_config())
        assert exc.value.path == "providers[p0].api_key" and "cannot be decrypted" in str(exc.value)
        assert raw(Provider.objects.get().pk) == before
