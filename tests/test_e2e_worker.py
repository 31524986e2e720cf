"""End to end: a real Celery worker, started here, consumes tasks from Redis and writes to
the test database — what beat does every minute in production."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from helpdesk.celery import app as celery_app
from helpdesk.services import Actor
from tickets import services
from tickets.models import Notification, SlaClock, TicketEvent

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:task_always_eager has no effect"),
]


@pytest.fixture
def worker():
    """A real worker on its own queue, against this test database; stopped by PID."""
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
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "helpdesk",
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
        stdout=subprocess.PIPE,
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


def _wait_for(predicate, timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return False


def test_a_real_worker_fires_a_due_breach_once_even_when_the_sweep_is_sent_twice(cast, worker):
    customer = services.customer_get_or_create(tenant=cast.tenant, email="late@example.org")
    ticket = services.ticket_create(
        tenant=cast.tenant,
        subject="Parcel lost",
        body="Nothing arrived.",
        customer=customer,
        actor=Actor.system(),
        at=timezone.now() - timedelta(days=30),
    )
    services.ticket_assign(ticket=ticket, assignee=cast.agent, actor=Actor.system())
    # A duplicated (or retried) message must not fire twice.
    for _ in range(2):
        celery_app.send_task("tickets.sla_sweep_tenant", args=[cast.tenant.pk], queue=worker)

    assert _wait_for(lambda: SlaClock.objects.filter(ticket=ticket, status="breached").count() == 2)
    time.sleep(1.0)  # let the second message finish too
    assert TicketEvent.objects.filter(ticket=ticket, kind="sla_breached").count() == 2  # one per clock
    assert Notification.objects.filter(ticket=ticket, user=cast.agent, kind="sla_breach").count() == 2


def test_beat_schedules_the_sla_sweep_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["sla-sweep"]
    assert entry["task"] == "tickets.sla_sweep"
    assert entry["schedule"] == 60.0
