"""Celery tasks of the admin app: thin wrappers over functions tested directly."""

from __future__ import annotations

import logging

from celery import shared_task

log = logging.getLogger("gateway.audit")


@shared_task(name="gateway_admin.tasks.prune_audit_trail")
def prune_audit_trail() -> int:
    """Delete audit entries older than GATEWAY_AUDIT_RETENTION_DAYS (gateway_admin.audit_chain.prune),
    then log the chain's head: logs kept off this database are a copy of it that
    `verify_audit --expect-head SEQ:HASH` can check the trail against later."""
    from .audit_chain import prune
    from .models import AuditHead

    deleted = prune()
    head = AuditHead.objects.filter(pk=1).first()
    if head is not None:
        log.info("audit trail head %d:%s (%d old entries pruned)", head.last_seq, head.last_hash, deleted)
    return deleted
