"""End to end: a real Celery worker, started here, consumes tasks from Redis and writes to
the test database — what beat does every minute in production."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from helpdesk.celery import app as celery_app
from helpdesk.services import Actor
from tests.celery_worker import run_worker, wait_for
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
    with run_worker() as queue:
        yield queue


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

    assert wait_for(lambda: SlaClock.objects.filter(ticket=ticket, status="breached").count() == 2)
    time.sleep(1.0)  # let the second message finish too
    assert TicketEvent.objects.filter(ticket=ticket, kind="sla_breached").count() == 2  # one per clock
    assert Notification.objects.filter(ticket=ticket, user=cast.agent, kind="sla_breach").count() == 2


def test_beat_schedules_the_sla_sweep_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["sla-sweep"]
    assert entry["task"] == "tickets.sla_sweep"
    assert entry["schedule"] == 60.0


def _sessions() -> list[tuple]:
    """(pid, state, state changed at) of the other client sessions on this database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state, state_change FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return cursor.fetchall()


def test_a_worker_keeps_its_database_session_from_task_to_task(cast):
    # Celery's own Django fixup closes the connection around every task; a new Postgres
    # session per task cost ~2 ms of CPU on both sides. CONN_MAX_AGE governs it here.
    others = {pid for pid, _, _ in _sessions()}  # this process's other threads, say

    def worker_sessions() -> list[tuple]:
        return [row for row in _sessions() if row[0] not in others]

    with run_worker({"DB_CONN_MAX_AGE": "60"}) as queue:
        pids = set()
        for _ in range(3):
            sent = timezone.now()
            celery_app.send_task("tickets.sla_sweep_tenant", args=[cast.tenant.pk], queue=queue)
            assert wait_for(
                lambda sent=sent: (
                    (rows := worker_sessions())
                    and all(state == "idle" and changed > sent for _, state, changed in rows)
                ),
                timeout=30,
            ), worker_sessions()
            pids |= {pid for pid, _, _ in worker_sessions()}
        assert len(pids) == 1  # one session, kept idle between tasks
