"""The Celery app. Tasks live in each app's tasks.py and take `tenant_id` explicitly."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

app = Celery("storedesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
