"""Celery tasks: thin wrappers over functions that are tested directly."""

from __future__ import annotations

from celery import shared_task

from .retention import prune_usage_records as _prune


@shared_task(name="billing.tasks.prune_usage_records")
def prune_usage_records() -> int:
    return _prune()
