"""Celery tasks of the admin app: thin wrappers over functions tested directly."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="gateway_admin.tasks.prune_audit_trail")
def prune_audit_trail() -> int:
    """Delete audit entries older than GATEWAY_AUDIT_RETENTION_DAYS (gateway_admin.audit_chain.prune)."""
    from .audit_chain import prune

    return prune()
