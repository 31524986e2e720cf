"""The webhook ingest service as production runs it: granian serving helpdesk.wsgi (the
compose `hooks` service), started here against this test database, spoken to over TCP.

The server runs tasks inline (CELERY_TASK_ALWAYS_EAGER), so a delivery's processing after
commit is visible here without a worker; tests/test_webhooks.py covers the processing
itself and test_hooks_wsgi.py the WSGI entry case by case."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from helpdesk.hooks_server import granian_args
from integrations.models import Order, WebhookDelivery
from tests.test_webhooks import connect, fixture, shopify_headers

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def hooks_server(django_db_setup, django_db_blocker):
    """granian on a free 127.0.0.1 port: (host, port). Stopped by its PID."""
    if not settings.REDIS_URL or connection.vendor != "postgresql":
        pytest.skip("needs Postgres and Redis")
    db = connection.settings_dict
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "MAX_BODY_BYTES": str(settings.MAX_BODY_BYTES),
    }
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "granian", *granian_args(host="127.0.0.1", port=port, workers=1, threads=1)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = _request(port, "GET", "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"granian did not start:\n{log.read()[-3000:]}")
            time.sleep(0.2)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _request(port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers={"Host": "127.0.0.1", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _post(port: int, shop, body: bytes, headers: dict) -> tuple[int, dict]:
    status, data = _request(
        port, "POST", f"/hooks/shopify/{shop.pk}/", body, {"Content-Type": "application/json", **headers}
    )
    return status, json.loads(data)


def test_a_delivery_is_acknowledged_stored_and_processed(hooks_server, cast):
    shop = connect(cast, "shopify")
    body = fixture("shopify-orders-create.json")
    headers = shopify_headers(body)
    status, payload = _post(hooks_server, shop, body, headers)
    assert (status, payload) == (200, {"status": "accepted"})
    row = WebhookDelivery.objects.get(connection=shop)
    assert row.body == body.decode()
    assert row.delivery_id == headers["X-Shopify-Webhook-Id"]
    assert row.status == WebhookDelivery.State.DONE, row.last_error
    assert Order.objects.get(tenant=cast.tenant, connection=shop).number == "1042"
    # The same delivery again: acknowledged, not stored twice.
    assert _post(hooks_server, shop, body, headers) == (200, {"status": "duplicate"})
    assert WebhookDelivery.objects.filter(connection=shop).count() == 1


def test_a_wrong_signature_is_refused_and_stores_nothing(hooks_server, cast):
    shop = connect(cast, "shopify")
    body = fixture("shopify-orders-create.json")
    headers = shopify_headers(body, secret="not-the-secret")
    status, payload = _post(hooks_server, shop, body, headers)
    assert status == 401
    assert set(payload["error"]) == {"code", "message", "fields"}
    assert not WebhookDelivery.objects.filter(connection=shop).exists()


def test_an_oversized_body_is_refused_before_it_is_sent(hooks_server, cast):
    """The 413 comes from the announced length: the server never buffers the body."""
    shop = connect(cast, "shopify")
    announced = settings.MAX_BODY_BYTES * 100
    with socket.create_connection(("127.0.0.1", hooks_server), timeout=5) as sock:
        sock.sendall(
            f"POST /hooks/shopify/{shop.pk}/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {announced}\r\n\r\n".encode()
            + b'{"id": 1, "padding": "'
        )
        answer = b""
        while b"}}" not in answer:  # the JSON error body, after the head
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    text = answer.decode(errors="replace")
    assert text.startswith("HTTP/1.1 413"), text[:300]
    assert '"code": "payload_too_large"' in text, text
    assert not WebhookDelivery.objects.filter(connection=shop).exists()


def test_an_unknown_connection_is_a_404(hooks_server, cast):
    status, data = _request(
        hooks_server,
        "POST",
        "/hooks/shopify/00000000-0000-4000-8000-000000000000/",
        b"{}",
        {"Content-Type": "application/json", **shopify_headers(b"{}")},
    )
    assert status == 404
    assert json.loads(data)["error"]["code"] == "not_found"
