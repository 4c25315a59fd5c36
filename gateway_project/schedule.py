"""Default periodic tasks, created in django-celery-beat's tables if missing.

Editors change intervals or disable tasks in the admin (Periodic tasks); those
edits must survive restarts, so defaults are inserted once (after migrate), never
re-synced over the database the way CELERY_BEAT_SCHEDULE would be.
"""

from __future__ import annotations

from django.conf import settings

DEFAULT_SCHEDULE: dict[str, tuple[str, int]] = {
    # name: (task, every N seconds)
    "probe-models": ("routing.tasks.probe_models", settings.GATEWAY_HEALTH_INTERVAL_S),
    "prune-health-checks": ("routing.tasks.prune_health_checks", 24 * 3600),
    "prune-usage-records": ("billing.tasks.prune_usage_records", 24 * 3600),
    # Finance reports read cost rollups: they lag the ledger by at most this interval.
    "rollup-costs": ("billing.tasks.rollup_costs", 10 * 60),
    "check-budgets": ("billing.tasks.check_budgets", 5 * 60),
    # Usage rows the ledger could not write (database down, a row refused) go back
    # as soon as the database takes them again.
    "replay-usage-dead-letters": ("billing.tasks.replay_usage_dead_letters", 60),
    # The worker heartbeat (routing.heartbeat): the admin status page calls it stale after 3 intervals.
    "worker-heartbeat": ("routing.tasks.worker_heartbeat", settings.GATEWAY_HEARTBEAT_INTERVAL_S),
    # The audit trail's retention (GATEWAY_AUDIT_RETENTION_DAYS; gateway_admin.audit_chain.prune).
    "prune-audit-trail": ("gateway_admin.tasks.prune_audit_trail", 24 * 3600),
}


def ensure_periodic_tasks(**kwargs) -> int:
    """Create the missing default tasks; leave existing ones (and edits) alone."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    created = 0
    for name, (task, seconds) in DEFAULT_SCHEDULE.items():
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        every, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.create(name=name, task=task, interval=every)
        created += 1
    return created
