"""The Celery app. Broker: Redis when REDIS_URL is set, else the filesystem broker
(no server needed; the embedded default runs one worker with beat embedded)."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")

app = Celery("gateway")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _scrub_worker_logs(logger=None, **kwargs) -> None:
    """Celery replaces the root logger's handlers (worker_hijack_root_logger): give its
    handlers the same secret scrubbing as settings.LOGGING's."""
    from providers.secrets import install_on

    install_on("", "celery", "celery.task", getattr(logger, "name", ""))
