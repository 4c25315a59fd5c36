"""The Celery app. Broker: Redis when REDIS_URL is set, else the filesystem broker
(no server needed; the embedded default runs one worker with beat embedded)."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger
from celery.signals import task_postrun, task_prerun  # the task's id as its lines' request_id

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


# --- structured logs (gateway_project/logs.py) ---
@after_setup_logger.connect
@after_setup_task_logger.connect
def _json_worker_logs(logger=None, **kwargs) -> None:
    """LOG_FORMAT=json: the handlers Celery set up write JSON lines too."""
    from gateway_project.logs import FOREIGN_LOGGERS, adopt_handlers

    adopt_handlers("", *FOREIGN_LOGGERS, getattr(logger, "name", ""))


_task_log_tokens: dict[str, object] = {}  # task id -> its context token (a worker runs one task per thread)


@task_prerun.connect
def _bind_task_log_context(task_id=None, task=None, **kwargs) -> None:
    """While a task runs, its id is the request_id of every line it logs."""
    from gateway_project import logs

    if task_id:
        _task_log_tokens[task_id] = logs.bind(task_id, task=getattr(task, "name", None))


@task_postrun.connect
def _reset_task_log_context(task_id=None, **kwargs) -> None:
    from gateway_project import logs

    token = _task_log_tokens.pop(task_id, None)
    if token is not None:
        logs.reset(token)
# --- end structured logs ---
