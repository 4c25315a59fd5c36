"""The pluggable secret-backend interface and its HashiCorp Vault example (KV v2 over
HTTP), against a fake Vault on 127.0.0.1 (tests/fakes/vault.py): reading a secret, a
missing path, a 403; the token from the environment or a file; caching with its TTL,
the last good value kept while Vault is down, never per request."""

from __future__ import annotations

import logging

import openai
import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from providers import secret_backends, secrets
from providers.catalog import provider_info
from providers.models import Provider
from providers.secret_backends import SecretBackend, SecretBackendError, SecretNotFound, VaultKV2Backend, fetch
from providers.secret_refs import SecretReferenceError, resolve
from routing.catalog import routing_table
from routing.config import ConfigError, import_config
from tests.factories import ProviderFactory
from tests.fakes.vault import FakeVault

pytestmark = pytest.mark.django_db
VAULT = {"vault": "providers.secret_backends.VaultKV2Backend"}
SECRET = "sk-stored-in-vault-kv2-0123456789"


@pytest.fixture
def vault(monkeypatch):
    with FakeVault() as fake:
        monkeypatch.setenv("VAULT_ADDR", fake.url)
        monkeypatch.setenv("VAULT_TOKEN", fake.root_token)
        monkeypatch.delenv("VAULT_TOKEN_FILE", raising=False)
        monkeypatch.delenv("VAULT_NAMESPACE", raising=False)
        monkeypatch.delenv("VAULT_KV_MOUNT", raising=False)
        fake.put("gateway/openai", api_key=SECRET, org="org-acme")
        with override_settings(GATEWAY_SECRET_BACKENDS=VAULT):
            secret_backends.clear_cache()
            yield fake
            secret_backends.clear_cache()
    secrets.forget_all_for_tests()


def test_reads_a_field_of_a_kv2_secret(vault):
    assert resolve("vault:gateway/openai#api_key") == SECRET
    method, path, token = vault.requests[-1]
    assert (method, path, token) == ("GET", "/v1/secret/data/gateway/openai", vault.root_token)
    assert secrets.scrub_secrets(f"upstream echoed {SECRET}") == "upstream echoed [redacted]"


def test_a_secret_with_one_field_needs_no_field_name_several_do(vault):
    vault.put("gateway/single", value="sk-the-only-field-000000")
    assert resolve("vault:gateway/single") == "sk-the-only-field-000000"
    with pytest.raises(SecretReferenceError, match=r"several fields \(api_key, org\)"):
        resolve("vault:gateway/openai")


def test_a_missing_path_or_field_is_named(vault):
    with pytest.raises(SecretReferenceError, match="vault: no secret at secret/gateway/nothing"):
        resolve("vault:gateway/nothing#api_key")
    with pytest.raises(SecretReferenceError, match=r"has no field 'apikey' \(fields: api_key, org\)"):
        resolve("vault:gateway/openai#apikey")


def test_a_403_is_a_clear_error_without_the_token(vault, monkeypatch):
    vault.policy("hvs.limited-token-000000000", ("other/",))
    monkeypatch.setenv("VAULT_TOKEN", "hvs.limited-token-000000000")
    with pytest.raises(SecretReferenceError) as exc:
        resolve("vault:gateway/openai#api_key")
    assert "permission denied reading secret/gateway/openai (HTTP 403)" in str(exc.value)
    assert "hvs.limited-token" not in str(exc.value)
    monkeypatch.setenv("VAULT_TOKEN", "hvs.unknown-token-0000000000")
    with pytest.raises(SecretReferenceError, match="HTTP 403"):
        resolve("vault:gateway/openai#org")


def test_the_token_from_a_file_re_read_at_each_request(vault, monkeypatch, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("hvs.agent-rendered-token-1\n")
    vault.policy("hvs.agent-rendered-token-1", None)
    monkeypatch.delenv("VAULT_TOKEN")
    monkeypatch.setenv("VAULT_TOKEN_FILE", str(token_file))
    with override_settings(GATEWAY_SECRET_BACKENDS={"vault": {"class": "providers.secret_backends.VaultKV2Backend",
                                                              "ttl_s": 0}}):
        assert resolve("vault:gateway/openai#api_key") == SECRET
        token_file.write_text("hvs.agent-rendered-token-2\n")
        vault.policy("hvs.agent-rendered-token-2", None)
        vault.revoke("hvs.agent-rendered-token-1")
        assert resolve("vault:gateway/openai#org") == "org-acme"
        assert vault.requests[-1][2] == "hvs.agent-rendered-token-2"
    assert secrets.scrub_secrets("hvs.agent-rendered-token-2") == "[redacted]"


def test_no_address_or_no_token_is_named(vault, monkeypatch):
    monkeypatch.delenv("VAULT_TOKEN")
    with pytest.raises(SecretReferenceError, match="no token .set VAULT_TOKEN or VAULT_TOKEN_FILE"):
        resolve("vault:gateway/openai#api_key")
    with override_settings(GATEWAY_SECRET_BACKENDS={"vault": {"class": "providers.secret_backends.VaultKV2Backend",
                                                              "url": "http://127.0.0.1:9", "token": "t"}}):
        with pytest.raises(SecretReferenceError, match="cannot reach http://127.0.0.1:9"):
            resolve("vault:gateway/openai#api_key")


def test_values_are_cached_for_the_ttl_and_refreshed_after(vault):
    with override_settings(GATEWAY_SECRET_TTL_S=300):
        for _ in range(20):
            assert resolve("vault:gateway/openai#api_key") == SECRET
        assert vault.reads("gateway/openai") == 1
        vault.put("gateway/openai", api_key="sk-rotated-in-vault-000000000", org="org-acme")
        assert resolve("vault:gateway/openai#api_key") == SECRET  # within the TTL
    with override_settings(GATEWAY_SECRET_TTL_S=0):
        assert resolve("vault:gateway/openai#api_key") == "sk-rotated-in-vault-000000000"
        assert vault.reads("gateway/openai") == 2


def test_vault_down_keeps_the_last_value_and_retries_later(vault, caplog):
    with override_settings(GATEWAY_SECRET_TTL_S=0):
        assert resolve("vault:gateway/openai#api_key") == SECRET
        vault.revoke(vault.root_token)  # e.g. the token expired
        caplog.set_level(logging.WARNING)
        assert resolve("vault:gateway/openai#api_key") == SECRET
        assert "not refreshed, the last value read is kept" in caplog.text and SECRET not in caplog.text
        reads = len(vault.requests)
        for _ in range(5):  # retried after retry_s (30 s), not at every catalogue refresh
            assert resolve("vault:gateway/openai#api_key") == SECRET
        assert len(vault.requests) == reads


def test_a_deleted_secret_is_dropped_not_kept(vault):
    with override_settings(GATEWAY_SECRET_TTL_S=0):
        assert resolve("vault:gateway/openai#api_key") == SECRET
        vault.delete("gateway/openai")
        with pytest.raises(SecretReferenceError, match="no secret at"):
            resolve("vault:gateway/openai#api_key")


def test_saving_a_provider_checks_the_reference(vault):
    bad = Provider(name="p", kind="openai", api_key="vault:gateway/missing#api_key")
    with pytest.raises(ValidationError, match="no secret at secret/gateway/missing"):
        bad.full_clean()
    with pytest.raises(ConfigError) as exc:
        import_config({"providers": [{"name": "p", "kind": "openai", "api_key": "vault:gateway/missing#k"}]})
    assert exc.value.path == "providers[p].api_key"
    good = ProviderFactory(name="p", api_key="vault:gateway/openai#api_key")
    good.full_clean()
    info = provider_info(good)
    assert info.api_key == SECRET and info.api_key_ref == "vault:gateway/openai#api_key"
    assert good.api_key_display == "vault:gateway/openai#api_key"


@pytest.mark.django_db(transaction=True)
def test_requests_use_the_vault_secret_and_never_read_vault_per_request(vault, fake_openai, build, openai_client):
    vault.put("gateway/openai", api_key=fake_openai.api_key)
    provider = build.provider(fake_openai, name="vaulted", api_key="vault:gateway/openai#api_key")
    build.route("chat-default", build.model(provider))
    client = openai_client(build.key())
    secret_backends.clear_cache()
    routing_table.invalidate()
    before = vault.reads("gateway/openai")
    for _ in range(10):
        client.chat.completions.create(model="chat-default", messages=[{"role": "user", "content": "hi"}])
    assert fake_openai.last_request.headers["authorization"] == f"Bearer {fake_openai.api_key}"
    assert vault.reads("gateway/openai") - before == 1


@pytest.mark.django_db(transaction=True)
def test_a_403_at_load_is_a_provider_failure_not_a_500(vault, fake_openai, build, openai_client):
    provider = build.provider(fake_openai, name="vaulted", api_key="vault:gateway/openai#api_key")
    build.route("chat-default", build.model(provider))
    client = openai_client(build.key())
    secret_backends.clear_cache()
    vault.revoke(vault.root_token)
    routing_table.invalidate()
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="chat-default", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code == 502 and fake_openai.request_count == 0


class Static(SecretBackend):
    """The smallest backend: what the interface asks of one."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = values or {"db/openai": "sk-from-a-custom-backend-0000"}

    def get(self, reference: str) -> str:
        if reference not in self.values:
            raise SecretNotFound(f"{self.scheme}: nothing at {reference}")
        return self.values[reference]


def test_a_custom_backend_registers_under_its_scheme():
    with override_settings(GATEWAY_SECRET_BACKENDS={"static": f"{__name__}.Static"}):
        assert resolve("static:db/openai") == "sk-from-a-custom-backend-0000"
        with pytest.raises(SecretReferenceError, match="static: nothing at db/x"):
            resolve("static:db/x")
    with override_settings(GATEWAY_SECRET_BACKENDS={}):
        assert resolve("static:db/openai") == "static:db/openai"  # unregistered: not a reference


def test_a_misconfigured_backend_is_named():
    with override_settings(GATEWAY_SECRET_BACKENDS={"vault": "no.such.Module"}):
        with pytest.raises(SecretReferenceError, match=r"GATEWAY_SECRET_BACKENDS\['vault'\] = no.such.Module"):
            resolve("vault:x#y")


def test_a_backend_bug_is_a_backend_error_without_a_traceback():
    class Broken(SecretBackend):
        scheme = "broken"

        def get(self, reference):
            raise RuntimeError("boom with sk-some-internal-detail")

    with pytest.raises(SecretBackendError) as exc:
        fetch(Broken(), "x")
    assert str(exc.value) == "broken: RuntimeError reading x"


def test_vault_backend_checks_reference_syntax():
    backend = VaultKV2Backend(url="http://127.0.0.1:9", token="t")
    assert backend.check_reference("#field") and backend.check_reference("a/../b#f")
    assert backend.check_reference("gateway/openai#api_key") is None
