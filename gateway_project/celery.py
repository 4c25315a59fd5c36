"""The Celery app. Broker: Redis when REDIS_URL is set, else the filesystem broker
(no server needed; the embedded default runs one worker with beat embedded)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")

app = Celery("gateway")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
