"""The Celery application. Workers start with ``celery -A erpsync_admin worker``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "erpsync_admin.settings")

app = Celery("erpsync")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
