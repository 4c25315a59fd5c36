"""A provider secret appears nowhere it is not needed: not in any admin page for the
provider, the management API, the YAML export (without --include-secrets), the logs of
a failing upstream call that echoes it, or the error bodies sent to clients. A masked
export re-imports without overwriting the stored secret. The masking helper
(providers.secrets.mask_field / mask_values) other code uses."""

from __future__ import annotations

import io
import logging

import openai
import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing.models import UsageRecord
from providers import secrets
from providers.models import Provider
from providers.secrets import MASK, mask, mask_field, mask_url, mask_values, secret_fields
from routing.config import ConfigError, dump_config, export_config, import_config, load_config_text
from tests.factories import ProviderFactory

pytestmark = pytest.mark.django_db
KEY = "sk-DISTINCTIVE-7c1e-never-shown-anywhere-9f2a"
HEADER = "hdr-DISTINCTIVE-secret-header-value-4b8d"


def forms(prefix: str = "models") -> dict:
    return {f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0, f"{prefix}-MIN_NUM_FORMS": 0,
            f"{prefix}-MAX_NUM_FORMS": 1000}


class ConsoleOutput:
    """What the gateway's configured log handlers (the ones with the scrubbing filter)
    really write, while the block runs."""

    def __enter__(self) -> io.StringIO:
        self.stream = io.StringIO()
        self.handlers = [h for h in logging.getLogger().handlers
                         if any(isinstance(f, secrets.ScrubSecrets) for f in h.filters)]
        assert self.handlers, "settings.LOGGING installs the scrubbing filter on the root handlers"
        self.saved = [(h, h.setStream(self.stream), h.level) for h in self.handlers]
        for h in self.handlers:
            h.setLevel(logging.DEBUG)
        self.root_level = logging.getLogger().level
        logging.getLogger().setLevel(logging.DEBUG)
        return self.stream

    def __exit__(self, *exc) -> None:
        for handler, stream, level in self.saved:
            handler.setStream(stream)
            handler.setLevel(level)
        logging.getLogger().setLevel(self.root_level)


@pytest.fixture(autouse=True)
def _forget():
    yield
    secrets.forget_all_for_tests()


@pytest.mark.django_db(transaction=True)
def test_the_key_appears_in_no_admin_page_api_response_export_log_or_error_body(
        admin_client, fake_openai, build, openai_client, caplog):
    # Entered the way an operator enters it: the admin's add form.
    response = admin_client.post(reverse("admin:providers_provider_add"), {
        "name": "leaky", "kind": "openai", "base_url": fake_openai.base_url, "api_key": KEY, "timeout_s": "5",
        "options": "{}", "enabled": "on", **forms()})
    assert response.status_code == 302, response.content.decode()[:2000]
    provider = Provider.objects.get(name="leaky")
    assert provider.api_key == KEY
    build.route("chat-default", build.model(provider))
    virtual_key = build.key()

    # A failing upstream call that echoes the key, through the live gateway.
    fake_openai.fail(401, body={"error": {"message": f"Incorrect API key provided: {KEY}. Also %s {KEY[:20]}",
                                          "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
    caplog.set_level(logging.DEBUG)
    with ConsoleOutput() as console:
        with pytest.raises(openai.APIStatusError) as exc:
            openai_client(virtual_key).chat.completions.create(
                model="chat-default", messages=[{"role": "user", "content": "x"}])
        fake_openai.fail(401, body={"error": {"message": f"bad key {KEY}", "type": "invalid_request_error"}})
        with pytest.raises(openai.APIStatusError) as stream_exc:
            list(openai_client(virtual_key).chat.completions.create(
                model="chat-default", messages=[{"role": "user", "content": "x"}], stream=True))
    bodies = [exc.value.response.text, str(exc.value), stream_exc.value.response.text]
    assert "[redacted]" in exc.value.response.text

    # Every admin page for the provider.
    view_only = User.objects.create_user("viewer", password="x", is_staff=True)
    view_only.user_permissions.add(Permission.objects.get(codename="view_provider"))
    viewer = admin_client.__class__()
    viewer.force_login(view_only)
    pages = {
        "changelist": admin_client.get(reverse("admin:providers_provider_changelist")),
        "change": admin_client.get(reverse("admin:providers_provider_change", args=[provider.pk])),
        "history": admin_client.get(reverse("admin:providers_provider_history", args=[provider.pk])),
        "discovery": admin_client.get(reverse("admin:providers_provider_discover", args=[provider.pk])),
        "delete": admin_client.get(reverse("admin:providers_provider_delete", args=[provider.pk])),
        "read-only view": viewer.get(reverse("admin:providers_provider_change", args=[provider.pk])),
        "model list": admin_client.get(reverse("admin:providers_model_changelist")),
        "usage list": admin_client.get(reverse("admin:billing_usagerecord_changelist")),
        "invalid edit": admin_client.post(reverse("admin:providers_provider_change", args=[provider.pk]), {
            "name": "leaky", "kind": "openai", "base_url": fake_openai.base_url, "api_key": "",
            "timeout_s": "not-a-number", "options": "{}", "enabled": "on", **forms()}),
    }
    for name, page in pages.items():
        assert page.status_code == 200, name
        assert KEY not in page.content.decode() and KEY[:20] not in page.content.decode(), name
    assert "…9f2a" in pages["change"].content.decode()  # the masked tail says which key it is

    # The management API.
    token = Token.objects.create(user=User.objects.create_superuser("api", password="x"))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    for url in ("/api/keys/", "/api/teams/", "/api/budgets/", "/api/usage/", "/api/schema/"):
        answer = api.get(url)
        assert answer.status_code == 200 and KEY not in answer.content.decode(), url

    # The YAML export, without and with the flag.
    assert KEY not in dump_config(export_config())
    assert export_config()["providers"][0]["api_key"] == MASK
    assert export_config(include_secrets=True)["providers"][0]["api_key"] == KEY

    # Logs (the real handlers' output and the raw records), client error bodies, usage rows.
    record = UsageRecord.objects.order_by("id").first()
    for blob in (console.getvalue(), caplog.text, *bodies, str(record.attempt_log), record.error_kind):
        assert KEY not in blob and KEY[:20] not in blob
    assert console.getvalue(), "the failing call was logged"


def test_a_secret_header_is_masked_in_the_export_and_kept_on_import():
    ProviderFactory(name="p", api_key=KEY, options={"headers": {"X-Api-Key": HEADER, "X-Org": "acme"}})
    data = export_config()
    assert data["providers"][0]["options"] == {"headers": {"X-Api-Key": MASK, "X-Org": "acme"}}
    text = dump_config(data)
    assert KEY not in text and HEADER not in text

    report = import_config(load_config_text(text))  # the masked export, re-imported
    assert (report.created, report.updated) == (0, 0)
    stored = Provider.objects.get(name="p")
    assert stored.api_key == KEY and stored.options["headers"] == {"X-Api-Key": HEADER, "X-Org": "acme"}

    # A change elsewhere in the same item saves the provider: the secrets still stay.
    edited = load_config_text(text)
    edited["providers"][0]["timeout_s"] = "7"
    edited["providers"][0]["options"]["headers"]["X-Org"] = "acme-2"
    assert import_config(edited).updated == 1
    stored = Provider.objects.get(name="p")
    assert stored.api_key == KEY and stored.options["headers"] == {"X-Api-Key": HEADER, "X-Org": "acme-2"}

    with_secrets = export_config(include_secrets=True)["providers"][0]
    assert with_secrets["api_key"] == KEY and with_secrets["options"]["headers"]["X-Api-Key"] == HEADER


def test_references_are_exported_as_they_are():
    ProviderFactory(name="p", api_key="file:/run/secrets/openai",
                    options={"headers": {"Authorization": "env:GATEWAY_TEST_HEADER_AUTH"}})
    item = export_config()["providers"][0]
    assert item["api_key"] == "file:/run/secrets/openai"
    assert item["options"]["headers"]["Authorization"] == "env:GATEWAY_TEST_HEADER_AUTH"


def test_a_masked_export_into_an_empty_database_is_refused_with_the_paths():
    doc = {"providers": [{"name": "new", "kind": "openai", "api_key": MASK,
                          "options": {"headers": {"X-Api-Key": MASK}}}]}
    with pytest.raises(ConfigError) as exc:
        import_config(doc)
    assert exc.value.path == "providers[new].api_key" and "no key is stored for 'new'" in str(exc.value)
    assert "providers[new].options.headers.X-Api-Key" in str(exc.value)
    assert not Provider.objects.exists()


def test_a_masked_header_the_stored_provider_does_not_have_is_refused():
    ProviderFactory(name="p", api_key=KEY, options={})
    with pytest.raises(ConfigError) as exc:
        import_config({"providers": [{"name": "p", "kind": "openai", "api_key": MASK,
                                      "options": {"headers": {"X-Api-Key": MASK}}}]})
    assert exc.value.path == "providers[p].options.headers.X-Api-Key"
    assert Provider.objects.get().api_key == KEY


def test_the_mask_is_never_stored_as_a_secret():
    with pytest.raises(ValidationError) as exc:
        Provider(name="p", kind="openai", api_key=MASK).full_clean()
    assert "placeholder of a masked export" in exc.value.message_dict["api_key"][0]
    with pytest.raises(ValidationError) as exc:
        Provider(name="p", kind="openai", options={"headers": {"Authorization": MASK}}).full_clean()
    assert "placeholder" in exc.value.message_dict["options"][0]


def test_the_admin_form_refuses_a_pasted_mask(admin_client):
    response = admin_client.post(reverse("admin:providers_provider_add"), {
        "name": "p", "kind": "openai", "base_url": "", "api_key": MASK, "timeout_s": "5", "options": "{}",
        "enabled": "on", **forms()})
    assert response.status_code == 200 and "placeholder of a masked export" in response.content.decode()


# --- the helper -------------------------------------------------------------------------


def test_mask_shows_references_and_hides_secrets():
    assert mask("") == "" and mask(None) == ""
    assert mask(KEY) == MASK and mask("AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI") == MASK
    assert mask("env:OPENAI_API_KEY") == "env:OPENAI_API_KEY"
    assert mask("file:/run/secrets/openai") == "file:/run/secrets/openai"
    assert mask("vault:gateway/openai#api_key") == "vault:gateway/openai#api_key"
    assert mask("someother:thing") == MASK  # not a configured scheme: could be a secret


def test_mask_field_per_model():
    provider = ProviderFactory.build(name="p", api_key=KEY, options={"headers": {"Authorization": f"Bearer {HEADER}",
                                                                                  "X-Org": "acme"}})
    assert secret_fields(provider) == {"api_key": "secret", "options": "options"}
    assert mask_field(provider, "api_key", KEY) == MASK
    assert mask_field("providers.provider", "name", "p") == "p"
    masked = mask_values(Provider, {"name": "p", "api_key": KEY, "options": provider.options})
    assert masked == {"name": "p", "api_key": MASK, "options": {"headers": {"Authorization": MASK, "X-Org": "acme"}}}
    assert mask_field("billing.Budget", "webhook_url",
                      "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX") == f"https://hooks.slack.com/{MASK}"
    assert mask_url("https://user:pw@example.com:8443/hook?token=abc") == f"https://example.com:8443/{MASK}"
    assert mask_url("https://example.com") == "https://example.com"


def test_a_secret_header_is_not_rendered_by_the_admin(admin_client):
    """The options field's secret headers on the change form and a view-only user's page
    (the masking of the form itself lives in providers/admin.py)."""
    provider = ProviderFactory(name="p", api_key=KEY, options={"headers": {"X-Api-Key": HEADER, "X-Org": "acme"}})
    view_only = User.objects.create_user("viewer", password="x", is_staff=True)
    view_only.user_permissions.add(Permission.objects.get(codename="view_provider"))
    viewer = admin_client.__class__()
    viewer.force_login(view_only)
    for client in (admin_client, viewer):
        for url in (reverse("admin:providers_provider_change", args=[provider.pk]),
                    reverse("admin:providers_provider_changelist")):
            html = client.get(url).content.decode()
            assert HEADER not in html and KEY not in html, url
