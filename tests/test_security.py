"""Secrets stay secret: hashed virtual keys, encrypted provider keys, clean logs and errors."""

from __future__ import annotations

import hashlib
import logging
import os

import openai
import pytest
from django.db import connection

from billing.keys import hash_key
from billing.models import UsageRecord, VirtualKey
from providers.catalog import load_models
from providers.models import Provider

pytestmark = pytest.mark.django_db(transaction=True)
PROVIDER_SECRET = "sk-live-provider-secret-abcdefghijklmnop"


def test_provider_key_is_encrypted_at_rest_and_masked_in_display(build):
    provider = build.provider(name="p", base_url="http://127.0.0.1:9/v1", api_key=PROVIDER_SECRET)
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM providers_provider WHERE id = %s", [provider.id])
        raw = cursor.fetchone()[0]
    raw = bytes(raw) if not isinstance(raw, (bytes, str)) else raw
    assert PROVIDER_SECRET.encode() not in (raw if isinstance(raw, bytes) else raw.encode())
    assert Provider.objects.get(id=provider.id).api_key == PROVIDER_SECRET
    assert PROVIDER_SECRET not in provider.api_key_display
    assert PROVIDER_SECRET not in repr(load_models() or provider)


def test_env_reference_is_resolved_at_call_time_not_stored(build, monkeypatch):
    monkeypatch.setenv("TEST_UPSTREAM_KEY", PROVIDER_SECRET)
    provider = build.provider(name="p", base_url="http://127.0.0.1:9/v1", api_key="env:TEST_UPSTREAM_KEY")
    model = build.model(provider)
    info = load_models()[model.id]
    assert info.provider.api_key == PROVIDER_SECRET and info.provider.api_key_ref == "env:TEST_UPSTREAM_KEY"
    assert provider.api_key_display == "env:TEST_UPSTREAM_KEY"


def test_virtual_key_is_stored_as_hash_and_prefix_only(build):
    secret = build.key("k")
    key = VirtualKey.objects.get(name="k")
    assert key.key_hash == hash_key(secret) != hashlib.sha256(secret.encode()).hexdigest()  # peppered HMAC
    assert secret.startswith(key.prefix) and len(key.prefix) < len(secret) / 3
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM billing_virtualkey")
        assert secret not in str(cursor.fetchall())


def test_no_secret_in_logs_errors_or_usage_records(fake_openai, build, openai_client, caplog):
    provider = build.provider(fake_openai, name="p")
    provider.api_key = PROVIDER_SECRET  # wrong key: the fake answers 401 quoting it
    provider.save()
    build.route("chat-default", build.model(provider))
    secret = build.key()
    fake_openai.fail(401, body={"error": {"message": f"Incorrect API key provided: {PROVIDER_SECRET}",
                                          "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
    caplog.set_level(logging.DEBUG)

    with pytest.raises(openai.APIStatusError) as exc:
        openai_client(secret).chat.completions.create(model="chat-default", messages=[{"role": "user", "content": "x"}])

    assert exc.value.status_code == 502
    text = exc.value.response.text
    record = UsageRecord.objects.get()
    for blob in (text, caplog.text, str(record.attempt_log), record.error_kind):
        assert PROVIDER_SECRET not in blob
        assert secret not in blob
    assert "[redacted]" in text
