"""Secret references in a provider's key and secret headers: env:, file: (Kubernetes
mounted secrets, rotated by a symlink swap), registered backends; clear errors on save
(model, admin, YAML import) and a provider failure -- never a 500 -- at request time;
resolved when the catalogue loads, not per request; every value read is scrubbed."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import openai
import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.urls import reverse

from providers import secret_refs, secrets
from providers.catalog import load_models, provider_info
from providers.models import Provider
from providers.secret_refs import SecretReferenceError, is_reference, read_file, resolve
from routing.catalog import routing_table
from routing.config import ConfigError, import_config
from tests.factories import ProviderFactory

pytestmark = pytest.mark.django_db
GOOD = "sk-upstream-openai-secret-1234"  # what the fake_openai server accepts


@pytest.fixture(autouse=True)
def _clean():
    secret_refs.forget_files_for_tests()
    yield
    secret_refs.forget_files_for_tests()
    secrets.forget_all_for_tests()


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


class MountedSecret:
    """A Kubernetes secret volume: key -> ..data/key, ..data -> ..<timestamp>/ (the
    kubelet writes a new timestamped directory and swaps ..data atomically)."""

    def __init__(self, root: Path, name: str, value: str) -> None:
        self.root, self.name, self.generation = root, name, 0
        self.update(value)
        (root / name).symlink_to(Path("..data") / name)

    @property
    def path(self) -> str:
        return str(self.root / self.name)

    def update(self, value: str) -> None:
        self.generation += 1
        target = self.root / f"..2026_01_01_00_00_0{self.generation}"
        target.mkdir()
        (target / self.name).write_text(value)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(target.name)
        os.replace(tmp, self.root / "..data")


# --- resolution -------------------------------------------------------------------------


def test_file_reference_trailing_newline_stripped_and_scrubbed(tmp_path):
    path = write(tmp_path / "key", "sk-from-a-mounted-file-0001\n")
    assert resolve(f"file:{path}") == "sk-from-a-mounted-file-0001"
    assert resolve(f"file:{write(tmp_path / 'crlf', 'sk-windows-line-end-0002' + chr(13) + chr(10))}") == \
        "sk-windows-line-end-0002"
    assert "sk-from-a-mounted-file-0001" not in secrets.scrub_secrets("upstream said sk-from-a-mounted-file-0001")


def test_a_kubernetes_symlink_swap_is_picked_up(tmp_path):
    mounted = MountedSecret(tmp_path, "api-key", "sk-first-generation-000\n")
    assert resolve(f"file:{mounted.path}") == "sk-first-generation-000"
    mounted.update("sk-second-generation-00\n")  # same length, same second: another inode
    assert resolve(f"file:{mounted.path}") == "sk-second-generation-00"
    assert "sk-second-generation-00" not in secrets.scrub_secrets("sk-second-generation-00")


@pytest.mark.parametrize(("make", "words"), [
    (lambda d: "relative/path", "needs an absolute path"),
    (lambda d: str(d / "missing"), "No such file or directory"),
    (lambda d: str(d), "not a regular file"),
    (lambda d: str(write(d / "empty", "\n")), "the file is empty"),
    (lambda d: (d / "bin").write_bytes(b"\xff\xfe\x00") and str(d / "bin"), "not UTF-8"),
    (lambda d: str(write(d / "big", "x" * 70_000)), "larger than 64 KiB"),
])
def test_unreadable_files_are_named_errors(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(SecretReferenceError, match=words) as exc:
        resolve(f"file:{path}")
    assert str(exc.value).startswith(f"file:{path}")


def test_what_is_a_reference_and_what_is_a_literal():
    assert is_reference("env:OPENAI_API_KEY") and is_reference("file:/run/secrets/x") and is_reference("vault:a#b")
    # Bedrock's ACCESS_KEY_ID:SECRET, user:password, a JSON credential: literal secrets.
    for literal in ("AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG", "admin:hunter2-password", '{"type": "x"}',
                    "sk-plain", "unknownscheme:whatever"):
        assert not is_reference(literal)
        assert resolve(literal) == literal


def test_vault_without_a_registered_backend_is_an_error_not_a_key():
    provider = Provider(name="p", kind="openai", api_key="vault:gateway/openai#api_key")
    with pytest.raises(ValidationError) as exc:
        provider.full_clean()
    assert "no secret backend is registered" in exc.value.message_dict["api_key"][0]


def test_env_reference_unset_resolves_to_no_key_with_the_reason(monkeypatch):
    monkeypatch.delenv("GATEWAY_TEST_UNSET_KEY_X", raising=False)
    provider = ProviderFactory(name="p", api_key="env:GATEWAY_TEST_UNSET_KEY_X")
    info = provider_info(provider)
    assert info.api_key is None and info.api_key_ref == "env:GATEWAY_TEST_UNSET_KEY_X"
    assert info.api_key_error == "env:GATEWAY_TEST_UNSET_KEY_X is not set"


def test_secret_header_references_are_resolved_and_scrubbed(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_TEST_ORG_TOKEN", "org-token-from-environment-1")
    path = write(tmp_path / "hdr", "header-secret-from-a-file-2\n")
    provider = ProviderFactory(name="p", options={"headers": {
        "X-Api-Key": f"file:{path}", "X-Org-Token": "env:GATEWAY_TEST_ORG_TOKEN", "X-Org": "acme"}})
    info = provider_info(provider)
    assert info.options["headers"] == {"X-Api-Key": "header-secret-from-a-file-2",
                                       "X-Org-Token": "org-token-from-environment-1", "X-Org": "acme"}
    text = secrets.scrub_secrets("header-secret-from-a-file-2 org-token-from-environment-1 acme")
    assert text == "[redacted] [redacted] acme"


def test_composite_credentials_register_their_parts():
    secrets.remember("AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    assert secrets.scrub_secrets("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY refused") == "secret [redacted] refused"
    secrets.remember('{"client_email": "sa@p.iam.gserviceaccount.com", "private_key": '
                     '"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n"}')
    assert "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in secrets.scrub_secrets("key MIIEvQIBADANBgkqhkiG9w0BAQEFAASC")


# --- clear errors on save ---------------------------------------------------------------


def test_a_missing_file_is_refused_by_the_model_the_import_and_the_admin(tmp_path, admin_client):
    missing = tmp_path / "not-there"
    provider = Provider(name="p", kind="openai", api_key=f"file:{missing}")
    with pytest.raises(ValidationError) as exc:
        provider.full_clean()
    assert exc.value.message_dict["api_key"] == [f"file:{missing}: cannot read it (No such file or directory)."]

    with pytest.raises(ConfigError) as exc:
        import_config({"providers": [{"name": "p", "kind": "openai", "api_key": f"file:{missing}"}]})
    assert exc.value.path == "providers[p].api_key" and "No such file or directory" in str(exc.value)
    assert not Provider.objects.exists()

    response = admin_client.post(reverse("admin:providers_provider_add"), {
        "name": "p", "kind": "openai", "base_url": "", "api_key": f"file:{missing}", "timeout_s": "30",
        "options": "{}", "enabled": "on", "models-TOTAL_FORMS": 0, "models-INITIAL_FORMS": 0,
        "models-MIN_NUM_FORMS": 0, "models-MAX_NUM_FORMS": 1000})
    assert response.status_code == 200 and "No such file or directory" in response.content.decode()
    assert not Provider.objects.exists()

    path = write(tmp_path / "there", "sk-now-it-exists-0003\n")
    import_config({"providers": [{"name": "p", "kind": "openai", "api_key": f"file:{path}"}]})
    assert Provider.objects.get().api_key == f"file:{path}"  # the reference is stored, never the secret


def test_a_missing_header_file_is_refused_on_save(tmp_path):
    provider = Provider(name="p", kind="openai", options={"headers": {"X-Api-Key": f"file:{tmp_path}/nope"}})
    with pytest.raises(ValidationError) as exc:
        provider.full_clean()
    assert "headers.X-Api-Key" in exc.value.message_dict["options"][0]


# --- at request time --------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_file_that_disappears_is_a_provider_failure_and_the_next_target_serves(
        tmp_path, fake_openai, fake_openai_b, build, openai_client, caplog):
    path = write(tmp_path / "key", GOOD + "\n")
    first = build.provider(fake_openai, name="from-file", api_key=f"file:{path}")
    second = build.provider(fake_openai_b, name="second")
    build.route("chat-default", build.model(first), build.model(second, "gpt-b"), max_attempts=2)
    client = openai_client(build.key())

    reply = client.chat.completions.create(model="chat-default", messages=[{"role": "user", "content": "hi"}])
    assert reply.model and fake_openai.request_count == 1

    path.unlink()
    routing_table.invalidate()  # the next catalogue refresh (at most GATEWAY_CONFIG_TTL_S later)
    caplog.set_level(logging.INFO)
    reply = client.chat.completions.create(model="chat-default", messages=[{"role": "user", "content": "hi"}])
    assert fake_openai.request_count == 1 and fake_openai_b.request_count == 1  # the first target failed, without a call
    assert f"provider from-file: file:{path}: cannot read it (No such file or directory)" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_a_file_that_disappears_on_the_only_target_is_a_502_not_a_500(tmp_path, fake_openai, build, openai_client):
    path = write(tmp_path / "key", GOOD)
    provider = build.provider(fake_openai, name="from-file", api_key=f"file:{path}")
    build.route("chat-default", build.model(provider))
    client = openai_client(build.key())
    path.unlink()
    routing_table.invalidate()
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="chat-default", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code == 502
    assert exc.value.response.json()["error"]["type"]
    assert fake_openai.request_count == 0


@pytest.mark.django_db(transaction=True)
def test_resolved_at_catalogue_load_not_per_request_and_rotation_reaches_requests(
        tmp_path, fake_openai, build, openai_client):
    mounted = MountedSecret(tmp_path, "api-key", "sk-wrong-first-generation\n")
    provider = build.provider(fake_openai, name="mounted", api_key=f"file:{mounted.path}")
    build.route("chat-default", build.model(provider))
    client = openai_client(build.key())
    ask = lambda: client.chat.completions.create(model="chat-default", messages=[{"role": "user", "content": "x"}])  # noqa: E731

    with override_settings(GATEWAY_CONFIG_TTL_S=0.3):
        with pytest.raises(openai.APIStatusError):  # the upstream refuses the first generation's key
            ask()
        mounted.update(GOOD + "\n")  # the kubelet rotates the secret
        import time

        time.sleep(1.0)  # older than 3 x TTL: the next request waits for a fresh catalogue
        assert ask().choices[0].message.content
        assert fake_openai.last_request.headers["authorization"] == f"Bearer {GOOD}"

    with override_settings(GATEWAY_CONFIG_TTL_S=60):
        routing_table.invalidate()
        ask()
        for generation in os.listdir(tmp_path):  # the file is gone: requests keep the loaded key
            if generation.startswith("..2026"):
                for f in os.listdir(tmp_path / generation):
                    os.unlink(tmp_path / generation / f)
        for _ in range(5):
            ask()
        assert fake_openai.last_request.headers["authorization"] == f"Bearer {GOOD}"


def test_catalogue_load_reads_each_provider_once(tmp_path, build):
    path = write(tmp_path / "key", "sk-read-once-per-load-0004")
    provider = build.provider(name="p", api_key=f"file:{path}")
    for i in range(5):
        build.model(provider, f"m{i}")
    models = load_models()
    infos = {id(m.provider) for m in models.values()}
    assert len(infos) == 1 and next(iter(models.values())).provider.api_key == "sk-read-once-per-load-0004"
    assert read_file(str(path)) == "sk-read-once-per-load-0004"
