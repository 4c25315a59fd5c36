"""Secrets are scrubbed wherever text is made, not only where someone remembered to:
every ProviderError, and the log handlers configured outside settings.LOGGING
(Celery's worker logging, uvicorn's and daphne's loggers)."""

from __future__ import annotations

import io
import logging

import pytest

from providers import secrets
from providers.types import ErrorKind, ProviderError

SECRET = "hunter2-provider-key"


@pytest.fixture
def held_secret():
    secrets.remember(SECRET)
    yield SECRET
    secrets.forget_all_for_tests()


def test_any_provider_error_is_scrubbed_as_it_is_made(held_secret):
    error = ProviderError(ErrorKind.AUTH, f"upstream said: bad key {held_secret} (and %2F{held_secret})")
    assert held_secret not in error.message and held_secret not in str(error) and held_secret not in repr(error)
    assert "[redacted]" in error.message


@pytest.mark.parametrize("name", ["uvicorn.error", "celery.task", "daphne"])
def test_handlers_configured_elsewhere_get_the_filter(held_secret, name):
    logger = logging.getLogger(f"{name}.scrub-test")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        secrets.install_on(logger.name)
        secrets.install_on(logger.name)  # idempotent
        assert sum(isinstance(f, secrets.ScrubSecrets) for f in handler.filters) == 1
        logger.error("provider answered %s", held_secret)
    finally:
        logger.removeHandler(handler)
    assert held_secret not in stream.getvalue() and "[redacted]" in stream.getvalue()


def test_the_celery_worker_logging_signal_installs_it(held_secret):
    from gateway_project.celery import _scrub_worker_logs

    logger = logging.getLogger("celery-worker-scrub-test")
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)
    try:
        _scrub_worker_logs(logger=logger)
        assert any(isinstance(f, secrets.ScrubSecrets) for f in handler.filters)
    finally:
        logger.removeHandler(handler)
