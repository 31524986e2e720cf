"""Storedesk as production serves it: granian running helpdesk.wsgi (compose `web` and
`hooks`, the image's CMD), started here against this test database, spoken to over TCP:
pages with a signed-in session, the API with a token, static files, and webhooks.

The server runs tasks inline (CELERY_TASK_ALWAYS_EAGER), so a delivery's processing after
commit is visible here without a worker; tests/test_webhooks.py covers the processing
itself and test_hooks_wsgi.py the WSGI entry case by case."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import connection

from helpdesk.models import User
from helpdesk.server import granian_args
from integrations.models import Order, WebhookDelivery
from tests.conftest import PASSWORD
from tests.factories import make_token
from tests.test_webhooks import connect, fixture, shopify_headers
from tests.tickets_fixtures import make_ticket
from tickets.models import Ticket

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    """granian on a free 127.0.0.1 port, as compose runs it: its port. Stopped by its PID."""
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
    status, _, data = _exchange(port, method, path, body, headers)
    return status, data


def _exchange(
    port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers={"Host": "127.0.0.1", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def _cookies(headers: http.client.HTTPMessage) -> dict[str, str]:
    jar = SimpleCookie()
    for value in headers.get_all("Set-Cookie") or []:
        jar.load(value)
    return {name: morsel.value for name, morsel in jar.items()}


# --- web: pages, the API, static files ------------------------------------------------------


def test_an_agent_signs_in_and_works_the_queue(server, cast):
    ticket = make_ticket(cast, subject="Parcel never arrived")
    # The server runs production settings, whose hashers do not read the tests' fast MD5.
    hashed = PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt())
    User.objects.filter(pk=cast.agent.pk).update(password=hashed)
    status, headers, page = _exchange(server, "GET", "/accounts/login/")
    assert status == 200
    jar = _cookies(headers)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token and "csrftoken" in jar
    form = urlencode({"username": cast.agent.email, "password": PASSWORD, "csrfmiddlewaretoken": token[1].decode()})
    status, headers, page = _exchange(
        server,
        "POST",
        "/accounts/login/",
        form.encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={jar['csrftoken']}"},
    )
    assert status == 302, re.findall(rb'role="alert".{0,300}', page)
    session = _cookies(headers)["sessionid"]
    status, _, page = _exchange(
        server, "GET", f"/t/{cast.tenant.slug}/queue/?view=all", headers={"Cookie": f"sessionid={session}"}
    )
    assert status == 200
    assert ticket.subject.encode() in page
    # Another tenant's queue is not the agent's to see.
    status, _, _ = _exchange(
        server, "GET", f"/t/{cast.other_tenant.slug}/queue/", headers={"Cookie": f"sessionid={session}"}
    )
    assert status == 404


def test_the_api_creates_and_reads_a_ticket_and_refuses_bad_input(server, cast):
    _token, plaintext = make_token(cast.tenant)
    auth = {"Authorization": f"Bearer {plaintext}", "Content-Type": "application/json"}
    body = {"subject": "Wrong size", "body": "I got an M, I ordered an L.", "customer": {"email": "kim@example.org"}}
    status, data = _request(server, "POST", "/api/v1/tickets/", json.dumps(body).encode(), auth)
    assert status == 201, data
    created = json.loads(data)
    status, data = _request(server, "GET", f"/api/v1/tickets/{created['id']}/", headers=auth)
    assert status == 200 and json.loads(data)["subject"] == "Wrong size"
    status, data = _request(server, "POST", "/api/v1/tickets/", b"{not json", auth)
    assert status == 400 and set(json.loads(data)["error"]) == {"code", "message", "fields"}
    foreign = make_ticket(cast, tenant=cast.other_tenant)
    assert _request(server, "GET", f"/api/v1/tickets/{foreign.pk}/", headers=auth)[0] == 404
    assert Ticket.objects.filter(tenant=cast.tenant).count() == 1


def test_static_files_are_served_with_their_type(server, cast):
    status, headers, data = _exchange(server, "GET", "/static/css/app.css")
    assert status == 200 and data
    assert headers["Content-Type"].startswith("text/css")


# --- hooks ------------------------------------------------------------------------------------


def _post(port: int, shop, body: bytes, headers: dict) -> tuple[int, dict]:
    status, data = _request(
        port, "POST", f"/hooks/shopify/{shop.pk}/", body, {"Content-Type": "application/json", **headers}
    )
    return status, json.loads(data)


def test_a_delivery_is_acknowledged_stored_and_processed(server, cast):
    shop = connect(cast, "shopify")
    body = fixture("shopify-orders-create.json")
    headers = shopify_headers(body)
    status, payload = _post(server, shop, body, headers)
    assert (status, payload) == (200, {"status": "accepted"})
    row = WebhookDelivery.objects.get(connection=shop)
    assert row.body == body.decode()
    assert row.delivery_id == headers["X-Shopify-Webhook-Id"]
    assert row.status == WebhookDelivery.State.DONE, row.last_error
    assert Order.objects.get(tenant=cast.tenant, connection=shop).number == "1042"
    # The same delivery again: acknowledged, not stored twice.
    assert _post(server, shop, body, headers) == (200, {"status": "duplicate"})
    assert WebhookDelivery.objects.filter(connection=shop).count() == 1


def test_a_wrong_signature_is_refused_and_stores_nothing(server, cast):
    shop = connect(cast, "shopify")
    body = fixture("shopify-orders-create.json")
    headers = shopify_headers(body, secret="not-the-secret")
    status, payload = _post(server, shop, body, headers)
    assert status == 401
    assert set(payload["error"]) == {"code", "message", "fields"}
    assert not WebhookDelivery.objects.filter(connection=shop).exists()


def test_an_oversized_body_is_refused_before_it_is_sent(server, cast):
    """The 413 comes from the announced length: the server never buffers the body."""
    shop = connect(cast, "shopify")
    announced = settings.MAX_BODY_BYTES * 100
    with socket.create_connection(("127.0.0.1", server), timeout=5) as sock:
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


def test_an_unknown_connection_is_a_404(server, cast):
    status, data = _request(
        server,
        "POST",
        "/hooks/shopify/00000000-0000-4000-8000-000000000000/",
        b"{}",
        {"Content-Type": "application/json", **shopify_headers(b"{}")},
    )
    assert status == 404
    assert json.loads(data)["error"]["code"] == "not_found"
