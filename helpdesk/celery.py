"""The Celery app. Tasks live in each app's tasks.py and take `tenant_id` explicitly."""

import os
from typing import Any

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "helpdesk.settings")

app = Celery("storedesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_old_connections(task: Any = None, **kwargs: Any) -> None:
    """Before and after each task, what Django does around a request: drop connections
    older than CONN_MAX_AGE or broken, keep the others (see CELERY_DB_REUSE_MAX). Not for
    eager tasks: they run inside the caller's request or transaction."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections as close

    close()
