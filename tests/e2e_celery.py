"""The Celery app for end-to-end workers started by tests: the product's app, with its
default queue taken from STOREDESK_TEST_QUEUE, so tasks a worker enqueues itself (a webhook
delivery enqueueing notice sends) stay on that test's private queue."""

import os

from helpdesk.celery import app

if os.environ.get("STOREDESK_TEST_QUEUE"):
    app.conf.task_default_queue = os.environ["STOREDESK_TEST_QUEUE"]

__all__ = ["app"]
