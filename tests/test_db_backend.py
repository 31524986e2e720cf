"""helpdesk.db: Django's Postgres backend with the health check skipped right after a use."""

import time

import psycopg2
import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import connection, connections
from django.db.utils import Error as DjangoDatabaseError

from helpdesk.db import base as backend

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the Postgres backend"),
]


@pytest.fixture
def checks(monkeypatch):
    """How many health checks (`SELECT 1` round trips) Django's backend runs."""
    calls = []
    wrapper = connections["default"]
    real = type(wrapper).is_usable

    def counting(self):
        calls.append(time.monotonic())
        return real(self)

    monkeypatch.setattr(type(wrapper), "is_usable", counting)
    monkeypatch.setitem(wrapper.settings_dict, "CONN_MAX_AGE", 600)
    monkeypatch.setitem(wrapper.settings_dict, "CONN_HEALTH_CHECKS", True)
    wrapper.close()
    return calls


def _request(sql: str = "SELECT 1") -> None:
    """One request's worth of database use, between Django's request signals."""
    request_started.send(sender=WSGIHandler)
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        request_finished.send(sender=WSGIHandler)


def _kill_backend() -> None:
    """Terminate this process's Postgres session from another connection (a server restart)."""
    pid = connection.connection.info.backend_pid
    params = connection.get_connection_params()
    other = psycopg2.connect(**{k: v for k, v in params.items() if k in ("dbname", "user", "password", "host", "port")})
    try:
        other.autocommit = True
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    time.sleep(0.05)


def test_the_engine_is_ours():
    assert isinstance(connections["default"], backend.DatabaseWrapper)


def test_a_connection_used_a_moment_ago_is_not_checked_again(checks):
    _request()  # connects: a new connection needs no check
    _request()
    _request()
    assert checks == []
    assert connection.connection is not None  # kept between requests


def test_a_connection_idle_longer_than_the_delay_is_checked(checks):
    _request()
    connection.used_at -= backend.HEALTH_CHECK_DELAY + 0.1
    _request()
    assert len(checks) == 1
    _request()  # just used again: no check
    assert len(checks) == 1


def test_a_dead_idle_connection_is_replaced_before_the_request_uses_it(checks):
    _request()
    first_pid = connection.connection.info.backend_pid
    _kill_backend()
    connection.used_at -= backend.HEALTH_CHECK_DELAY + 0.1
    _request("SELECT 2")  # the check finds it dead and reconnects: no error
    assert connection.connection.info.backend_pid != first_pid


def test_a_connection_dying_within_the_delay_fails_one_request_then_recovers(checks):
    _request()
    first_pid = connection.connection.info.backend_pid
    _kill_backend()
    with pytest.raises(DjangoDatabaseError):
        _request()  # the documented cost: this one request fails
    _request()  # the failed request's end closed it; this one reconnects
    assert connection.connection.info.backend_pid != first_pid
