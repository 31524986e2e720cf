"""Store connections: Settings → Store connections (UI), `/api/v1/connections/` (API), the
`create_connection` and `rotate_credentials` commands, and the store health page.

Everything an admin does is audited without secrets; a webhook secret is shown once, in the
answer that made it; agents get 403, outsiders 404.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection as dbconn
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from helpdesk.models import AuditLog, Tenant
from helpdesk.services import Actor
from integrations import crypto, services
from integrations.models import Connection, Order, WebhookDelivery
from tests.conftest import _logged_in

CONNECTIONS = "/t/acme/settings/connections/"
API = "/api/v1/connections/"
REPO = Path(settings.BASE_DIR)
State = WebhookDelivery.State


def revealed_secret(response) -> str:
    match = re.search(rb'<code id="new-secret">([^<]+)</code>', response.content)
    assert match, "no one-time secret on the page"
    return match.group(1).decode()


def sign_b64(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def deliver_shopify(client, connection: Connection, secret: str, body: bytes = b'{"id":1}', topic="shop/update"):
    return client.post(
        f"/hooks/shopify/{connection.pk}/",
        data=body,
        content_type="application/json",
        headers={
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
            "X-Shopify-Hmac-Sha256": sign_b64(secret, body),
        },
    )


def deliver_woo(client, url: str, secret: str, body: bytes = b'{"id":4750}'):
    path = url.removeprefix(settings.BASE_URL)
    return client.post(
        path,
        data=body,
        content_type="application/json",
        headers={
            "X-WC-Webhook-Topic": "order.updated",
            "X-WC-Webhook-ID": "7",
            "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
            "X-WC-Webhook-Signature": sign_b64(secret, body),
        },
    )


def make(cast, platform="shopify", tenant: Tenant | None = None, **kwargs) -> tuple[Connection, str]:
    defaults = {
        "shopify": {"shop_domain": "acme-socks.myshopify.com"},
        "woocommerce": {"api_url": "https://shop.example/"},
        "magento": {"api_url": "https://magento.example/"},
        "generic": {},
    }[platform]
    return services.connection_create(
        tenant=tenant or cast.tenant,
        platform=platform,
        name=kwargs.pop("name", f"{platform} store"),
        actor=Actor.for_user(cast.admin),
        **{**defaults, **kwargs},
    )


def audit_text(tenant: Tenant) -> str:
    return json.dumps(list(AuditLog.objects.filter(tenant=tenant).values()), default=str)


# --- Connecting a store in the UI -----------------------------------------------------------


def test_the_new_connection_page_offers_every_platform(admin_client_a):
    response = admin_client_a.get(CONNECTIONS + "new/")
    assert response.status_code == 200
    for platform in ("shopify", "woocommerce", "magento", "generic"):
        assert f"?platform={platform}".encode() in response.content


@pytest.mark.parametrize(
    ("platform", "present", "absent"),
    [
        (
            "shopify",
            ["shop_domain", "cred_access_token", "webhook_secret"],
            ["api_url", "public_key_pem"],
        ),
        (
            "woocommerce",
            ["api_url", "cred_consumer_key", "cred_consumer_secret"],
            ["shop_domain", "webhook_secret"],
        ),
        (
            "magento",
            ["api_url", "cred_access_token", "public_key_pem"],
            ["shop_domain", "webhook_secret"],
        ),
        ("generic", ["api_url"], ["cred_", "shop_domain", "webhook_secret", "public_key_pem"]),
    ],
)
def test_each_platform_asks_for_its_own_fields(admin_client_a, platform, present, absent):
    response = admin_client_a.get(CONNECTIONS + f"new/?platform={platform}")
    assert response.status_code == 200
    html = response.content.decode()
    for name in present:
        assert f'name="{name}"' in html, name
    for name in absent:
        assert f'name="{name}' not in html, name


def test_an_admin_connects_a_shopify_store_and_sees_the_url_and_secret_once(admin_client_a, cast, client):
    response = admin_client_a.post(
        CONNECTIONS + "new/?platform=shopify",
        {
            "platform": "shopify",
            "name": "Acme EU",
            "shop_domain": "https://Acme-Socks.myshopify.com/",
            "cred_access_token": "shpat_plaintext_token_123",
            "webhook_secret": "shpss_app_client_secret",
        },
    )
    assert response.status_code == 200
    connection = Connection.objects.get(tenant=cast.tenant)
    assert connection.shop_domain == "acme-socks.myshopify.com"
    url = f"{settings.BASE_URL}/hooks/shopify/{connection.pk}/"
    assert url.encode() in response.content
    assert revealed_secret(response) == "shpss_app_client_secret"
    # Stored encrypted only.
    stored = json.dumps(list(Connection.objects.values()), default=str)
    assert "shpat_plaintext_token_123" not in stored and "shpss_app_client_secret" not in stored
    assert services.credentials_for(connection) == {"access_token": "shpat_plaintext_token_123"}
    # The secret works, and is never shown again.
    assert deliver_shopify(client, connection, "shpss_app_client_secret").status_code == 200
    detail = admin_client_a.get(CONNECTIONS + f"{connection.pk}/")
    assert detail.status_code == 200
    assert b"shpss_app_client_secret" not in detail.content
    assert b'id="new-secret"' not in detail.content
    # Audited, without secrets.
    entry = AuditLog.objects.get(tenant=cast.tenant, action="connection.create")
    assert entry.actor_user == cast.admin
    assert entry.changes["credentials"] == ["access_token"]
    assert "shpss_app_client_secret" not in audit_text(cast.tenant)
    assert "shpat_plaintext_token_123" not in audit_text(cast.tenant)


def test_a_woocommerce_connection_gets_a_generated_secret_that_verifies(admin_client_a, cast, client):
    response = admin_client_a.post(
        CONNECTIONS + "new/?platform=woocommerce",
        {"platform": "woocommerce", "name": "Woo", "api_url": "https://shop.example/"},
    )
    secret = revealed_secret(response)
    assert len(secret) >= 40
    connection = Connection.objects.get(tenant=cast.tenant)
    assert deliver_woo(client, services.webhook_url(connection), secret).status_code == 200
    assert secret not in audit_text(cast.tenant)


@pytest.mark.parametrize(
    ("platform", "data", "field"),
    [
        ("shopify", {"name": "S"}, "shop_domain"),
        ("shopify", {"name": "S", "shop_domain": "acme.com"}, "shop_domain"),
        ("woocommerce", {"name": "W", "api_url": "ftp://shop.example"}, "api_url"),
        (
            "woocommerce",
            {"name": "W", "api_url": "https://shop.example", "cred_consumer_key": "ck_1"},
            None,
        ),
        (
            "magento",
            {"name": "M", "api_url": "https://m.example", "public_key_pem": "not a key"},
            "public_key_pem",
        ),
        ("generic", {"name": ""}, "name"),
    ],
    ids=[
        "no shop domain",
        "custom domain",
        "bad url",
        "half the credentials",
        "bad key",
        "no name",
    ],
)
def test_bad_connection_input_is_a_form_error_and_creates_nothing(admin_client_a, cast, platform, data, field):
    response = admin_client_a.post(CONNECTIONS + f"new/?platform={platform}", {"platform": platform, **data})
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors
    if field:
        assert field in form.errors
    assert not Connection.objects.exists()
    assert not AuditLog.objects.filter(action="connection.create").exists()


# --- Rotate, update, disconnect in the UI ---------------------------------------------------


def test_rotating_shows_the_new_secret_once_and_keeps_the_old_one_for_an_hour(admin_client_a, cast, client):
    connection, old = make(cast)
    with time_machine.travel(datetime(2026, 3, 2, 12, 0, tzinfo=UTC), tick=False):
        response = admin_client_a.post(CONNECTIONS + f"{connection.pk}/rotate-secret/", {"new_secret": ""})
        assert response.status_code == 200
        new = revealed_secret(response)
        assert new != old
        connection.refresh_from_db()
        assert connection.previous_secret_expires_at == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)
        assert deliver_shopify(client, connection, old).status_code == 200
        assert deliver_shopify(client, connection, new).status_code == 200
    entry = AuditLog.objects.get(tenant=cast.tenant, action="connection.rotate_secret")
    assert entry.changes["previous_secret_valid_until"].startswith("2026-03-02T13:00")
    assert new not in audit_text(cast.tenant) and old not in audit_text(cast.tenant)


def test_updating_credentials_re_encrypts_them_and_a_blank_field_keeps_its_value(admin_client_a, cast):
    connection, _ = make(cast, "woocommerce", credentials={"consumer_key": "ck_old", "consumer_secret": "cs_old"})
    page = admin_client_a.get(CONNECTIONS + f"{connection.pk}/credentials/")
    assert page.status_code == 200
    assert b"ck_old" not in page.content and b"cs_old" not in page.content
    before = Connection.objects.get(pk=connection.pk).credentials_encrypted
    response = admin_client_a.post(
        CONNECTIONS + f"{connection.pk}/credentials/",
        {"name": "Woo main", "cred_consumer_key": "ck_new", "cred_consumer_secret": ""},
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.name == "Woo main"
    assert connection.credentials_encrypted != before
    assert services.credentials_for(connection) == {
        "consumer_key": "ck_new",
        "consumer_secret": "cs_old",
    }
    entry = AuditLog.objects.get(tenant=cast.tenant, action="connection.update_credentials")
    assert entry.changes["credentials"] == {"updated": ["consumer_key"]}
    assert "ck_new" not in audit_text(cast.tenant)


def test_disconnecting_stops_webhooks_erases_credentials_and_keeps_history(
    admin_client_a, cast, client, django_capture_on_commit_callbacks
):
    connection, secret = make(cast, credentials={"access_token": "shpat_x"})
    body = (Path(__file__).parent / "fixtures/webhooks/ingest/shopify-orders-create.json").read_bytes()
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver_shopify(client, connection, secret, body, topic="orders/create").status_code == 200
    assert Order.objects.filter(connection=connection).count() == 1
    response = admin_client_a.post(CONNECTIONS + f"{connection.pk}/disconnect/")
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.status == Connection.State.DISCONNECTED
    assert connection.disconnected_at is not None
    assert (connection.credentials_encrypted, connection.webhook_secret_encrypted) == ("", "")
    assert deliver_shopify(client, connection, secret).status_code == 404
    assert Order.objects.filter(connection=connection).count() == 1
    assert WebhookDelivery.objects.filter(connection=connection).count() == 1
    assert AuditLog.objects.filter(tenant=cast.tenant, action="connection.disconnect").count() == 1
    # The page stays, as history, without the actions.
    detail = admin_client_a.get(CONNECTIONS + f"{connection.pk}/")
    assert b"Disconnected" in detail.content
    assert b"rotate-secret" not in detail.content
    # Disconnecting twice is harmless; rotating a disconnected connection is refused.
    admin_client_a.post(CONNECTIONS + f"{connection.pk}/disconnect/")
    assert AuditLog.objects.filter(tenant=cast.tenant, action="connection.disconnect").count() == 1
    admin_client_a.post(CONNECTIONS + f"{connection.pk}/rotate-secret/")
    connection.refresh_from_db()
    assert connection.webhook_secret_encrypted == ""


# --- Who may see what ------------------------------------------------------------------------


def connection_pages(connection: Connection, delivery_pk: int = 1) -> list[tuple[str, str]]:
    base = f"/t/acme/settings/connections/{connection.pk}/"
    return [
        ("get", "/t/acme/settings/connections/"),
        ("get", "/t/acme/settings/connections/new/?platform=shopify"),
        ("post", "/t/acme/settings/connections/new/?platform=shopify"),
        ("get", base),
        ("get", base + "credentials/"),
        ("post", base + "credentials/"),
        ("post", base + "rotate-secret/"),
        ("post", base + "disconnect/"),
        ("get", base + "health/"),
        ("post", base + f"deliveries/{delivery_pk}/replay/"),
    ]


@pytest.mark.parametrize("who", ["agent", "lead"])
def test_agents_and_leads_get_403_on_connection_settings(cast, who):
    connection, _ = make(cast)
    client = _logged_in(getattr(cast, who))
    for method, url in connection_pages(connection):
        response = getattr(client, method)(url, {"name": "x", "platform": "shopify"})
        assert response.status_code == 403, f"{method} {url}"
        if method == "get":  # the page says who may open it, once
            text = response.content.decode()
            assert "This page is for admins and above." in text
            assert "Your role does not allow" not in text
    connection.refresh_from_db()
    assert connection.is_active
    assert Connection.objects.count() == 1


def test_an_outsider_gets_404_on_every_connection_page(outsider_client, cast):
    connection, _ = make(cast)
    for method, url in connection_pages(connection):
        urls = [url]
        if str(connection.pk) in url:  # tenant A's id under the outsider's own workspace
            urls.append(url.replace("/t/acme/", "/t/globex/"))
        for each in urls:
            response = getattr(outsider_client, method)(each, {"name": "x"})
            assert response.status_code == 404, f"{method} {each}"
    connection.refresh_from_db()
    assert connection.is_active
    assert (
        not AuditLog.objects.filter(tenant=cast.tenant, action__startswith="connection.")
        .exclude(action="connection.create")
        .exists()
    )


def test_a_malformed_connection_id_is_a_404(admin_client_a):
    assert admin_client_a.get(CONNECTIONS + "not-a-uuid/").status_code == 404
    assert admin_client_a.get(CONNECTIONS + f"{uuid.uuid4()}/health/").status_code == 404


def test_the_settings_menu_lists_store_connections_for_admins_only(admin_client_a, lead_client):
    assert CONNECTIONS.encode() in admin_client_a.get("/t/acme/settings/members/").content
    assert CONNECTIONS.encode() not in lead_client.get("/t/acme/settings/members/").content


def test_the_list_page_shows_each_connection_in_a_flat_number_of_queries(admin_client_a, cast):
    make(cast, name="First")
    admin_client_a.get(CONNECTIONS)  # warm the per-member access cache, as every later page finds it
    with CaptureQueriesContext(dbconn) as one:
        response = admin_client_a.get(CONNECTIONS)
    assert b"First" in response.content
    for n in range(4):
        make(cast, "woocommerce", name=f"Woo {n}")
    with CaptureQueriesContext(dbconn) as five:
        response = admin_client_a.get(CONNECTIONS)
    assert b"Woo 3" in response.content
    assert len(five) == len(one)


# --- Store health ------------------------------------------------------------------------------


def _deliveries(connection: Connection, statuses: dict[str, int], at: datetime, lag: timedelta) -> None:
    n = WebhookDelivery.objects.count()
    for status, count in statuses.items():
        for _ in range(count):
            n += 1
            WebhookDelivery.objects.create(
                tenant=connection.tenant,
                connection=connection,
                delivery_id=f"d-{n}",
                topic="orders/updated",
                received_at=at,
                body="{}",
                status=status,
                attempts=1,
                processed_at=at + lag if status in (State.DONE, State.IGNORED, State.DEAD) else None,
                last_error="id: required id is missing" if status == State.DEAD else "",
            )


def test_the_health_page_shows_counts_lag_failures_dead_letters_in_flat_queries(admin_client_a, cast, client):
    connection, secret = make(cast)
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with time_machine.travel(now, tick=False):
        _deliveries(
            connection,
            {State.DONE: 2, State.DEAD: 1},
            now - timedelta(minutes=10),
            timedelta(seconds=2),
        )
        _deliveries(connection, {State.DONE: 3}, now - timedelta(hours=5), timedelta(seconds=30))
        deliver_shopify(client, connection, "wrong-secret")
        deliver_shopify(client, connection, "wrong-secret")
        url = CONNECTIONS + f"{connection.pk}/health/"
        admin_client_a.get(url)  # warm the per-member access cache, as every later page finds it
        with CaptureQueriesContext(dbconn) as few:
            response = admin_client_a.get(url)
        assert response.status_code == 200
        health = response.context["health"]
        assert health.last_hour[State.DONE] == 2 and health.last_day[State.DONE] == 5
        assert health.last_hour[State.DEAD] == 1
        assert health.lag_median == timedelta(seconds=2)
        assert health.signature_failures == 2
        assert health.dead_total == 1
        assert not health.silent
        assert b"id: required id is missing" in response.content
        assert b"Replay" in response.content
        _deliveries(
            connection,
            {State.DONE: 30, State.DEAD: 20, State.RETRYING: 5},
            now - timedelta(minutes=5),
            timedelta(seconds=1),
        )
        with CaptureQueriesContext(dbconn) as many:
            admin_client_a.get(url)
        assert len(many) == len(few)
        partial = admin_client_a.get(url, headers={"HX-Request": "true"})
        assert b"<html" not in partial.content and b"Dead letters" in partial.content


def test_the_health_page_warns_when_an_active_store_sent_nothing_for_a_day(admin_client_a, cast, client):
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        connection, secret = make(cast)
        url = CONNECTIONS + f"{connection.pk}/health/"
        assert b"No delivery for over 24 hours" not in admin_client_a.get(url).content
        traveller.shift(timedelta(hours=25))
        assert b"No delivery for over 24 hours" in admin_client_a.get(url).content
        assert deliver_shopify(client, connection, secret).status_code == 200
        assert b"No delivery for over 24 hours" not in admin_client_a.get(url).content
        traveller.shift(timedelta(hours=24, minutes=1))
        assert b"No delivery for over 24 hours" in admin_client_a.get(url).content
        services.connection_disconnect(connection=connection, actor=Actor.system())
        assert b"No delivery for over 24 hours" not in admin_client_a.get(url).content


# --- The API -----------------------------------------------------------------------------------


def test_api_create_answers_201_with_id_url_and_secret_shown_once(api, cast, client):
    response = api.post(
        API,
        {
            "platform": "woocommerce",
            "name": "Woo via API",
            "api_url": "https://shop.example/",
            "credentials": {"consumer_key": "ck_api", "consumer_secret": "cs_api"},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    data = response.json()
    connection = Connection.objects.get(pk=data["id"])
    assert connection.tenant == cast.tenant
    assert data["webhook_url"] == f"{settings.BASE_URL}/hooks/woocommerce/{data['id']}/"
    assert data["platform"] == "woocommerce" and data["status"] == "active"
    assert data["has_credentials"] is True
    assert deliver_woo(client, data["webhook_url"], data["webhook_secret"]).status_code == 200
    again = api.get(f"{API}{data['id']}/").json()
    assert "webhook_secret" not in again
    assert data["webhook_secret"] not in json.dumps(again)
    assert "ck_api" not in json.dumps(api.get(API).json())
    entry = AuditLog.objects.get(tenant=cast.tenant, action="connection.create")
    assert entry.actor_token is not None
    assert data["webhook_secret"] not in audit_text(cast.tenant)


def test_api_create_of_shopify_uses_the_given_client_secret(api):
    response = api.post(
        API,
        {
            "platform": "shopify",
            "name": "Shop",
            "shop_domain": "acme-socks.myshopify.com",
            "credentials": {"access_token": "shpat_1"},
            "webhook_secret": "hush",
        },
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["webhook_secret"] == "hush"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"platform": "bigcommerce", "name": "X"}, "platform"),
        ({"platform": "shopify", "name": "X"}, "shop_domain"),
        ({"platform": "woocommerce", "name": "X"}, "api_url"),
        ({"platform": "shopify", "name": "", "shop_domain": "a.myshopify.com"}, "name"),
        (
            {
                "platform": "shopify",
                "name": "X",
                "shop_domain": "a.myshopify.com",
                "credentials": {"password": "p"},
            },
            "credentials",
        ),
        (
            {
                "platform": "woocommerce",
                "name": "X",
                "api_url": "https://s.example",
                "credentials": {"consumer_key": "ck"},
            },
            "credentials",
        ),
        ({"platform": "generic", "name": "X", "credentials": "token"}, "credentials"),
        (
            {"platform": "generic", "name": "X", "webhook_secret": "has spaces in it"},
            "webhook_secret",
        ),
        (
            {"platform": "generic", "name": "X", "public_key_pem": "-----BEGIN PUBLIC KEY-----"},
            "public_key_pem",
        ),
    ],
)
def test_api_create_with_bad_input_is_a_400_naming_the_field(api, body, field):
    response = api.post(API, body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"], error
    assert not Connection.objects.exists()


def test_api_list_and_retrieve_carry_no_secrets(api, cast):
    connection, secret = make(cast, credentials={"access_token": "shpat_secret"})
    services.connection_rotate_secret(connection=connection, actor=Actor.system())
    listing = api.get(API)
    assert listing.status_code == 200
    body = listing.json()
    assert set(body) == {"results", "next", "previous"}
    (item,) = body["results"]
    assert item["id"] == str(connection.pk)
    assert item["previous_secret_valid_until"] is not None
    text = json.dumps(body) + json.dumps(api.get(f"{API}{connection.pk}/").json())
    assert secret not in text and "shpat_secret" not in text and "encrypted" not in text


def test_api_rotate_secret_then_disconnect(api, cast, client):
    connection, old = make(cast)
    response = api.post(f"{API}{connection.pk}/rotate-secret/", {}, format="json")
    assert response.status_code == 200
    new = response.json()["webhook_secret"]
    assert new != old
    assert response.json()["previous_secret_valid_until"]
    assert deliver_shopify(client, connection, new).status_code == 200
    assert deliver_shopify(client, connection, old).status_code == 200  # within the hour
    response = api.post(f"{API}{connection.pk}/disconnect/")
    assert response.status_code == 200
    assert response.json()["status"] == "disconnected"
    assert deliver_shopify(client, connection, new).status_code == 404
    refused = api.post(f"{API}{connection.pk}/rotate-secret/", {}, format="json")
    assert refused.status_code == 400


def test_api_credentials_update(api, cast):
    connection, _ = make(cast, "magento")
    response = api.post(
        f"{API}{connection.pk}/credentials/",
        {"credentials": {"access_token": "m_token"}},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["has_credentials"] is True
    connection.refresh_from_db()
    assert services.credentials_for(connection) == {"access_token": "m_token"}


def test_api_connections_are_for_admins(cast):
    make(cast)
    for who in ("agent", "lead"):
        client = APIClient()
        client.force_login(getattr(cast, who), backend="helpdesk.auth_backends.CachedModelBackend")
        assert client.get(API).status_code == 403
        response = client.post(API, {"platform": "generic", "name": "X"}, format="json")
        assert response.status_code == 403
    assert Connection.objects.count() == 1


def test_an_outsider_token_gets_404_on_tenant_a_connections(outsider_api, cast):
    connection, _ = make(cast)
    assert outsider_api.get(API).json()["results"] == []
    for method, path in [
        ("get", f"{API}{connection.pk}/"),
        ("post", f"{API}{connection.pk}/rotate-secret/"),
        ("post", f"{API}{connection.pk}/disconnect/"),
        ("post", f"{API}{connection.pk}/credentials/"),
    ]:
        assert getattr(outsider_api, method)(path, {}, format="json").status_code == 404, path
    connection.refresh_from_db()
    assert connection.is_active
    assert AuditLog.objects.filter(tenant=cast.tenant, action="connection.rotate_secret").count() == 0


def test_a_malformed_id_on_the_api_is_a_404(api):
    assert api.get(f"{API}not-a-uuid/").status_code == 404


# --- Commands ----------------------------------------------------------------------------------


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_connection_prints_the_id_url_and_secret_on_their_own_lines(cast, client):
    output = run(
        "create_connection",
        "--tenant",
        "acme",
        "--platform",
        "woocommerce",
        "--name",
        "CLI Woo",
        "--api-url",
        "https://shop.example/",
    )
    *_, id_line, url_line, secret_line = output.strip().splitlines()
    connection = Connection.objects.get(pk=id_line)
    assert connection.tenant == cast.tenant and connection.name == "CLI Woo"
    assert url_line == f"{settings.BASE_URL}/hooks/woocommerce/{id_line}/"
    assert secret_line == secret_line.strip() and " " not in secret_line
    assert deliver_woo(client, url_line, secret_line).status_code == 200
    assert secret_line not in audit_text(cast.tenant)


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--tenant", "acme", "--platform", "bigcommerce", "--name", "X"], "bigcommerce"),
        (["--tenant", "nope", "--platform", "generic", "--name", "X"], "nope"),
        (["--tenant", "acme", "--platform", "shopify", "--name", "X"], "--shop-domain"),
        (
            ["--tenant", "acme", "--platform", "woocommerce", "--name", "X", "--api-url", "shop"],
            "--api-url",
        ),
        (["--tenant", "acme", "--platform", "generic", "--name", "  "], "--name"),
        (["--tenant", "acme", "--platform", "generic"], "--name"),
    ],
    ids=[
        "unknown platform",
        "unknown tenant",
        "shopify without domain",
        "bad url",
        "blank name",
        "no name",
    ],
)
def test_create_connection_with_bad_arguments_fails_with_one_line_and_creates_nothing(cast, args, mentions):
    with pytest.raises(CommandError) as excinfo:
        run("create_connection", *args)
    message = str(excinfo.value)
    assert mentions in message
    assert "\n" not in message
    assert not Connection.objects.exists()


def test_a_failing_create_connection_exits_non_zero_with_one_line_on_stderr(db):
    if dbconn.vendor != "postgresql":
        pytest.skip("a second process cannot see the in-memory SQLite test database")
    database = dbconn.settings_dict
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{credentials}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "DJANGO_SETTINGS_MODULE": "helpdesk.settings_test",
    }
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "create_connection",
            "--tenant",
            "no-such-store",
            "--platform",
            "shopify",
            "--name",
            "X",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == ["CommandError: No workspace with slug “no-such-store”."]


def test_rotate_credentials_re_encrypts_under_the_newest_key(cast, client, settings):
    old_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [old_key]
    connection, secret = make(cast, credentials={"access_token": "shpat_rotate"})
    assert deliver_shopify(client, connection, secret).status_code == 200  # cached
    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, old_key]
    output = run("rotate_credentials")
    assert "1 connection" in output
    settings.ENCRYPTION_KEYS = [new_key]  # the old key is gone now
    connection.refresh_from_db()
    assert crypto.decrypt(connection.webhook_secret_encrypted) == secret
    assert services.credentials_for(connection) == {"access_token": "shpat_rotate"}
    assert deliver_shopify(client, connection, secret).status_code == 200
    assert AuditLog.objects.filter(tenant=cast.tenant, action="connection.reencrypt").exists()


def test_webhook_urls_use_the_hooks_service_address_when_it_has_its_own(cast, settings):
    settings.HOOKS_BASE_URL = "https://hooks.storedesk.example"
    connection, _ = services.connection_create(
        tenant=cast.tenant,
        platform="shopify",
        name="Acme",
        actor=Actor.system(),
        shop_domain="acme-hooks.myshopify.com",
        webhook_secret="s" * 32,
    )
    assert services.webhook_url(connection) == f"https://hooks.storedesk.example/hooks/shopify/{connection.pk}/"
