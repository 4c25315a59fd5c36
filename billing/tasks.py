"""Celery tasks: thin wrappers over functions that are tested directly."""

from __future__ import annotations

from celery import shared_task

from .retention import prune_usage_records as _prune


@shared_task(name="billing.tasks.prune_usage_records")
def prune_usage_records() -> int:
    """Roll up and delete usage records older than GATEWAY_USAGE_RETENTION_DAYS, in
    short batches (billing.retention); returns how many were deleted."""
    return _prune()


@shared_task(name="billing.tasks.rollup_costs")
def rollup_costs() -> int:
    """Recompute today's and yesterday's cost rollups (idempotent)."""
    from .rollups import recompute_recent

    return recompute_recent()


@shared_task(name="billing.tasks.replay_usage_dead_letters")
def replay_usage_dead_letters() -> int:
    """Write pending dead-lettered usage rows (table, and this host's file) back to the
    ledger; idempotent by request id. Returns how many were written."""
    from .dead_letters import replay

    return replay().written


@shared_task(name="billing.tasks.check_budgets")
def check_budgets() -> int:
    """Record and deliver budget alerts for thresholds crossed since the last run."""
    from .alerts import check_all_budgets

    return check_all_budgets()
