"""Virtual keys hashed with the deployment's pepper (HMAC-SHA256), legacy and earlier-pepper
rows upgraded on first use or by `manage.py rehash_keys`, the hot path's cost unchanged
(one HMAC, no database round trip for a known key), `check --deploy` warnings
(docs/security/keys.md)."""

from __future__ import annotations

import hashlib
import hmac
import io
from datetime import timedelta

import openai
import pytest
from asgiref.sync import async_to_sync
from django.core import checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from billing import keys, keys_pepper
from billing.keys import authenticate, hash_key, issue_key, key_cache, legacy_hash, revoke_key
from billing.keys_pepper import LEGACY_SCHEME, Pepper, derived_pepper, peppers
from billing.models import VirtualKey
from gateway_project.errors import AuthenticationFailed

pytestmark = pytest.mark.django_db(transaction=True)
PEPPER_A = "pepper-A-" + "a" * 40
PEPPER_B = "pepper-B-" + "b" * 40
MESSAGES = [{"role": "user", "content": "hi"}]


def auth(secret: str):
    return async_to_sync(authenticate)(f"Bearer {secret}")


def auth_code(secret: str) -> str:
    with pytest.raises(AuthenticationFailed) as exc:
        auth(secret)
    return exc.value.code


def expected(pepper: str, secret: str) -> str:
    """The stored hash, computed independently of billing.keys."""
    return hmac.new(pepper.encode(), hashlib.sha256(secret.encode()).digest(), hashlib.sha256).hexdigest()


def scheme_of(pepper: str) -> str:
    return Pepper.of(pepper.encode(), "test").scheme


def legacy_key(name: str = "legacy", **fields) -> tuple[VirtualKey, str]:
    """A row as the release before the pepper wrote it: plain SHA-256, scheme from the
    column's database default."""
    secret = "sk-gw-" + hashlib.sha256(name.encode()).hexdigest()[:43]
    key = VirtualKey.objects.create(name=name, key_hash=legacy_hash(secret), prefix=secret[:12], **fields)
    with connection.cursor() as cursor:
        cursor.execute("SELECT hash_scheme FROM billing_virtualkey WHERE id = %s", [key.pk])
        assert cursor.fetchone()[0] == LEGACY_SCHEME  # the database default, not Django's
    key_cache.clear()
    return key, secret


@pytest.fixture
def pepper_a(settings):
    settings.GATEWAY_KEY_PEPPER = PEPPER_A
    settings.GATEWAY_KEY_PEPPER_PREVIOUS = []
    yield
    key_cache.clear()


@pytest.fixture
def counted(monkeypatch):
    """Calls of the key cache's loader (3 queries each), the fallback's lookup, the
    scheme snapshot's queries and of HMAC."""
    calls = {"load": 0, "upgrade": 0, "schemes": 0, "hmac": 0}
    real_load, real_upgrade, real_schemes = key_cache._loader, keys._upgrade, keys.old_schemes._loader
    real_hash = keys_pepper.Pepper.hash

    def count(name, fn):
        def wrapper(*args, **kw):
            calls[name] += 1
            return fn(*args, **kw)
        return wrapper

    monkeypatch.setattr(key_cache, "_loader", count("load", real_load))
    monkeypatch.setattr(keys, "_upgrade", count("upgrade", real_upgrade))
    monkeypatch.setattr(keys.old_schemes, "_loader", count("schemes", real_schemes))
    monkeypatch.setattr(keys_pepper.Pepper, "hash", count("hmac", real_hash))
    return calls


# --- what is stored -----------------------------------------------------------------------
def test_a_new_key_is_stored_as_hmac_of_its_sha256_with_the_pepper(pepper_a):
    issued = issue_key("k")
    row = VirtualKey.objects.get(pk=issued.key.pk)
    assert row.key_hash == expected(PEPPER_A, issued.secret) == hash_key(issued.secret)
    assert row.hash_scheme == scheme_of(PEPPER_A) and row.hash_scheme.startswith("hmac-sha256:")
    assert row.key_hash != legacy_hash(issued.secret)  # not the unpeppered hash
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM billing_virtualkey WHERE id = %s", [row.pk])
        stored = str(cursor.fetchall())
    assert issued.secret not in stored and legacy_hash(issued.secret) not in stored and PEPPER_A not in stored
    assert auth(issued.secret).id == row.pk


def test_another_pepper_gives_another_hash_and_the_key_fails_without_it(settings, pepper_a):
    issued = issue_key("k")
    settings.GATEWAY_KEY_PEPPER = PEPPER_B  # the pepper lost, nothing previous configured
    key_cache.clear()
    assert hash_key(issued.secret) == expected(PEPPER_B, issued.secret) != issued.key.key_hash
    assert auth_code(issued.secret) == "invalid_api_key"


def test_without_a_pepper_it_is_derived_from_secret_key(settings):
    settings.GATEWAY_KEY_PEPPER = ""
    config = peppers()
    assert config.derived and config.current.secret == derived_pepper(settings.SECRET_KEY, "x").secret
    assert config.current.secret not in repr(config).encode()
    issued = issue_key("k")
    assert issued.key.hash_scheme == config.current.scheme != LEGACY_SCHEME
    assert issued.key.key_hash != legacy_hash(issued.secret)
    assert auth(issued.secret).name == "k"


# --- the hot path's cost ------------------------------------------------------------------
def test_a_known_key_costs_one_hmac_and_no_database_round_trip_once_cached(pepper_a, counted):
    legacy_key("old")  # a legacy row exists: the fallback is armed, a known key must not use it
    secret = issue_key("k").secret
    key_cache.clear()
    auth(secret)
    assert counted["load"] == 1 and counted["upgrade"] == 0
    before = dict(counted)
    for _ in range(5):
        assert auth(secret).name == "k"
    assert counted["hmac"] - before["hmac"] == 5  # one HMAC per request
    assert (counted["load"], counted["upgrade"], counted["schemes"]) == (before["load"], 0, before["schemes"])


def test_with_every_row_upgraded_an_unknown_key_skips_the_fallback(pepper_a, counted):
    issue_key("k")
    key_cache.clear()
    for _ in range(3):
        assert auth_code("sk-gw-nope") == "invalid_api_key"
    assert counted["load"] == 1  # the miss is cached
    assert counted["upgrade"] == 0  # no legacy scheme in use: no fallback query at all
    assert counted["schemes"] == 1


def test_one_constant_time_comparison_per_attempt_also_through_the_fallback(pepper_a, monkeypatch):
    compares = []
    real = keys.hmac.compare_digest
    monkeypatch.setattr(keys.hmac, "compare_digest", lambda a, b: compares.append(1) or real(a, b))
    _, old = legacy_key("old")
    revoked, revoked_secret = legacy_key("revoked", revoked_at=timezone.now())
    attempts = [("sk-gw-unknown", "invalid_api_key"), (revoked_secret, "revoked_api_key")]
    for secret, code in attempts * 2:
        assert auth_code(secret) == code
    assert auth(old).name == "old"
    assert len(compares) == 5


# --- legacy rows ----------------------------------------------------------------------------
def test_a_legacy_key_works_and_is_upgraded_on_first_use(pepper_a, counted):
    key, secret = legacy_key()
    assert auth(secret).id == key.pk
    key.refresh_from_db()
    assert key.key_hash == expected(PEPPER_A, secret) and key.hash_scheme == scheme_of(PEPPER_A)
    assert counted["upgrade"] == 1
    for _ in range(3):  # from now on the peppered hash hits the cache
        assert auth(secret).id == key.pk
    assert counted["upgrade"] == 1 and counted["load"] == 1
    key_cache.clear()  # another process, or after the TTL: a plain hit by the new hash
    assert auth(secret).id == key.pk and counted["upgrade"] == 1


def test_with_upgrades_off_a_legacy_key_works_and_its_row_stays_readable_by_the_previous_release(
        settings, pepper_a, counted):
    settings.GATEWAY_KEY_UPGRADE_ON_USE = False  # during a rolling upgrade (docs/security/keys.md)
    key, secret = legacy_key()
    for _ in range(3):
        assert auth(secret).id == key.pk
    key.refresh_from_db()
    assert key.hash_scheme == LEGACY_SCHEME and key.key_hash == legacy_hash(secret)
    assert counted["upgrade"] == 1  # then served from the cache, under the peppered hash
    settings.GATEWAY_KEY_UPGRADE_ON_USE = True
    call_command("rehash_keys", stdout=io.StringIO())  # once every process runs this release
    assert auth(secret).id == key.pk
    key.refresh_from_db()
    assert key.key_hash == expected(PEPPER_A, secret)


def test_revoked_and_expired_legacy_keys_keep_their_codes(pepper_a):
    _, revoked = legacy_key("r", revoked_at=timezone.now())
    _, expired = legacy_key("e", expires_at=timezone.now() - timedelta(minutes=1))
    assert auth_code(revoked) == "revoked_api_key"
    assert auth_code(expired) == "expired_api_key"
    assert not VirtualKey.objects.filter(hash_scheme=LEGACY_SCHEME).exists()  # upgraded all the same


def test_an_unknown_key_with_legacy_rows_present_is_looked_up_once(pepper_a, counted):
    legacy_key()
    for _ in range(4):
        assert auth_code("sk-gw-" + "z" * 43) == "invalid_api_key"
    assert counted["upgrade"] == 1 and counted["load"] == 1  # then both misses are served from memory


def test_an_upgrade_by_another_process_meanwhile_is_found_by_the_new_hash(pepper_a):
    key, secret = legacy_key()
    sha = hashlib.sha256(secret.encode()).digest()
    digest = peppers().current.hash(sha)
    candidates = keys._candidates(sha, frozenset({LEGACY_SCHEME}))
    first = keys._upgrade(candidates, digest, peppers().current.scheme)
    second = keys._upgrade(candidates, digest, peppers().current.scheme)  # its read predates the first's write
    assert first[0].id == second[0].id == key.pk and first[1] == second[1] == digest


def test_legacy_keys_through_the_gateway_with_the_sdk(pepper_a, gateway, build, fake_openai, openai_client):
    build.openai_route(fake_openai)
    _, secret = legacy_key()
    client = openai_client(secret)
    assert client.chat.completions.create(model="chat-default", messages=MESSAGES).choices
    assert [m.id for m in client.models.list().data] == ["chat-default"]
    assert VirtualKey.objects.get(name="legacy").hash_scheme == scheme_of(PEPPER_A)
    with pytest.raises(openai.AuthenticationError):
        openai_client(secret[:-1] + "!").models.list()


# --- pepper rotation -------------------------------------------------------------------------
def test_rotation_previous_peppers_keep_working_and_move_to_the_current_one(settings):
    settings.GATEWAY_KEY_PEPPER = PEPPER_A
    used, unused = issue_key("used").secret, issue_key("unused").secret
    settings.GATEWAY_KEY_PEPPER, settings.GATEWAY_KEY_PEPPER_PREVIOUS = PEPPER_B, ["pepper-0-old", PEPPER_A]
    key_cache.clear()
    assert auth(used).name == "used"
    assert VirtualKey.objects.get(name="used").key_hash == expected(PEPPER_B, used)
    assert VirtualKey.objects.get(name="unused").hash_scheme == scheme_of(PEPPER_A)  # not used yet: unchanged
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("rehash_keys", "--check", stdout=out)  # A still has a key: not removable yet
    assert "GATEWAY_KEY_PEPPER_PREVIOUS[1]: 1 key(s)" in out.getvalue()

    settings.GATEWAY_KEY_PEPPER_PREVIOUS = []  # A removed too early
    key_cache.clear()
    assert auth(used).name == "used"  # moved: fine
    assert auth_code(unused) == "invalid_api_key"  # never used under B: lost with A
    err = io.StringIO()
    call_command("rehash_keys", stdout=io.StringIO(), stderr=err)
    assert f"pepper not configured ({scheme_of(PEPPER_A)}): 1 key(s) cannot authenticate" in err.getvalue()


def test_setting_a_pepper_later_keeps_keys_hashed_with_the_derived_one(settings):
    settings.GATEWAY_KEY_PEPPER = ""
    secret = issue_key("k").secret
    settings.GATEWAY_KEY_PEPPER = PEPPER_A
    key_cache.clear()
    assert auth(secret).name == "k"
    assert VirtualKey.objects.get(name="k").hash_scheme == scheme_of(PEPPER_A)


def test_rotating_secret_key_with_django_fallbacks_keeps_derived_keys(settings):
    settings.GATEWAY_KEY_PEPPER = ""
    secret = issue_key("k").secret
    old = settings.SECRET_KEY
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-secret-key-" + "n" * 40, [old]
    key_cache.clear()
    assert auth(secret).name == "k"
    assert VirtualKey.objects.get(name="k").hash_scheme == derived_pepper(settings.SECRET_KEY, "").scheme


# --- manage.py rehash_keys ------------------------------------------------------------------
def test_rehash_keys_upgrades_every_legacy_row_without_the_secrets(pepper_a):
    legacy = [legacy_key(f"k{i}") for i in range(7)]
    current = issue_key("new").secret
    revoked_key, revoked = legacy_key("gone")
    revoke_key(revoked_key)
    out = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("rehash_keys", "--check", stdout=out)
    assert failed.value.returncode == 1 and "legacy SHA-256: 8 key(s)" in out.getvalue()
    assert VirtualKey.objects.filter(hash_scheme=LEGACY_SCHEME).count() == 8  # --check changed nothing

    out = io.StringIO()
    call_command("rehash_keys", "--batch", "3", stdout=out)
    assert "upgraded 8 legacy key hash(es)" in out.getvalue()
    assert "current pepper (GATEWAY_KEY_PEPPER): 9 key(s)" in out.getvalue()
    for key, secret in legacy:
        key.refresh_from_db()
        assert key.key_hash == expected(PEPPER_A, secret)
    key_cache.clear()
    assert [auth(s).name for _, s in legacy] == [k.name for k, _ in legacy]
    assert auth(current).name == "new" and auth_code(revoked) == "revoked_api_key"
    call_command("rehash_keys", "--check", stdout=io.StringIO())  # exits 0: nothing left
    again = io.StringIO()
    call_command("rehash_keys", stdout=again)
    assert "upgraded 0 legacy" in again.getvalue()


def test_rehash_keys_rejects_a_bad_batch():
    with pytest.raises(CommandError, match="--batch"):
        call_command("rehash_keys", "--batch", "0")


# --- check --deploy ----------------------------------------------------------------------------
def deploy_ids() -> set[str]:
    return {m.id for m in checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])}


def test_check_deploy_warns_without_a_pepper_or_with_a_short_one(settings):
    settings.GATEWAY_KEY_PEPPER = ""
    assert "billing.W001" in deploy_ids()
    settings.GATEWAY_KEY_PEPPER = "short"
    assert "billing.W001" not in deploy_ids() and "billing.W002" in deploy_ids()
    settings.GATEWAY_KEY_PEPPER, settings.GATEWAY_KEY_PEPPER_PREVIOUS = PEPPER_A, [PEPPER_A]
    assert {"billing.W001", "billing.W002"}.isdisjoint(deploy_ids()) and "billing.W003" in deploy_ids()
    settings.GATEWAY_KEY_PEPPER_PREVIOUS = []
    assert not {"billing.W001", "billing.W002", "billing.W003"} & deploy_ids()
    messages = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    assert all(PEPPER_A not in str(m) for m in messages)


@pytest.mark.parametrize("length", [1, 32, 63, 64, 65, 200])
def test_the_precomputed_hmac_is_rfc_2104_for_every_pepper_length(length):
    pepper = bytes(range(256))[:length] if length <= 256 else b"p" * length
    for message in (b"", hashlib.sha256(b"sk-gw-x").digest()):
        assert Pepper.of(pepper, "t").hash(message) == hmac.new(pepper, message, hashlib.sha256).hexdigest()
