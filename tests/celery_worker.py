"""Start a real Celery worker for end-to-end tests (shared by the e2e suites).

`run_worker(extra_env)` starts `celery worker` on a private queue against this test
database and Redis, yields the queue name, and stops it by its PID. Tasks the worker
enqueues go to the same queue (tests/e2e_celery.py); extra_env reaches the worker's settings
(e.g. EMAIL_URL for the notice tests).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def run_worker(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    if not settings.REDIS_URL or connection.vendor != "postgresql":
        pytest.skip("needs Postgres and Redis")
    db = connection.settings_dict
    queue = f"e2e-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "DB_CONN_MAX_AGE": "0",
        "STOREDESK_TEST_QUEUE": queue,
        **(extra_env or {}),
    }
    # The worker's own log goes to a file (a pipe nobody reads would block a chatty worker);
    # it is printed when the test fails, so a worker that never started says why.
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed below, after the worker stops
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.e2e_celery",
            "worker",
            "-Q",
            queue,
            "--pool=solo",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield queue
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.seek(0)
        tail = log.read()[-4000:]
        log.close()
        if tail.strip():
            print(f"--- celery worker log (queue {queue}, exit {proc.returncode}) ---\n{tail}")


def wait_for(predicate, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False
