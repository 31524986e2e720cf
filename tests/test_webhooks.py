"""The webhook ingest, over real HTTP (Django's test Client, raw bodies): signatures exactly as
CONTRACTS.md describes them, the inbox (persist, then process), processing outcomes,
retries, the sweeper and replays.

Processing runs inline: CELERY_TASK_ALWAYS_EAGER is on in tests, and the ack path enqueues
after commit, so a test that wants the worker's outcome wraps the POST in
`django_capture_on_commit_callbacks(execute=True)`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings
from django.db import connection as db
from django.test import Client

from helpdesk.models import AuditLog
from helpdesk.services import Actor
from integrations import services
from integrations.models import Connection, Fulfillment, Order, WebhookDelivery
from integrations.tasks import process_delivery, sweep_inbox
from tests.celery_worker import wait_for
from tests.test_e2e_worker import worker  # noqa: F401 (a fixture)

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks" / "ingest"
BODY = b'{"id":1}'
WORKED_SECRET = "hush"
WORKED_SIGNATURE = "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY="
WORKED_HEX = "5672948d9b0bb8de626568e7e449ed70154217d90c378dcb825cc2135fc649e6"
State = WebhookDelivery.State


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def b64_hmac(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def connect(cast, platform: str = "shopify", secret: str = WORKED_SECRET, **kwargs) -> Connection:
    address = {"shopify": {"shop_domain": "acme-socks.myshopify.com"}}.get(
        platform, {"api_url": "https://shop.example/"} if platform != "generic" else {}
    )
    connection, _ = services.connection_create(
        tenant=kwargs.pop("tenant", cast.tenant),
        platform=platform,
        name=kwargs.pop("name", f"Acme {platform}"),
        actor=Actor.system(),
        webhook_secret=secret,
        **{**address, **kwargs},
    )
    return connection


def hook_url(connection: Connection, platform: str | None = None) -> str:
    return f"/hooks/{platform or connection.platform}/{connection.pk}/"


def shopify_headers(
    body: bytes, secret: str = WORKED_SECRET, topic: str = "orders/create", **extra: str
) -> dict[str, str]:
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": "acme-socks.myshopify.com",
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Webhook-Id": extra.pop("webhook_id", str(uuid.uuid4())),
        "X-Shopify-Event-Id": extra.pop("event_id", str(uuid.uuid4())),
        "X-Shopify-Triggered-At": "2026-03-02T14:05:11.123456789Z",
        "X-Shopify-Hmac-Sha256": b64_hmac(secret, body),
        **extra,
    }


def woo_headers(body: bytes, secret: str = WORKED_SECRET, **extra: str) -> dict[str, str]:
    return {
        "User-Agent": "WooCommerce/9.8.1 Hookshot (WordPress/6.8)",
        "X-WC-Webhook-Source": "https://shop.example/",
        "X-WC-Webhook-Topic": "order.updated",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "updated",
        "X-WC-Webhook-ID": "7",
        "X-WC-Webhook-Delivery-ID": extra.pop("delivery", uuid.uuid4().hex),
        "X-WC-Webhook-Signature": b64_hmac(secret, body),
        **extra,
    }


def post(client: Client, url: str, body: bytes, headers: dict[str, str], content_type="application/json"):
    return client.post(url, data=body, content_type=content_type, headers=headers)


def rows(connection: Connection | None = None):
    queryset = WebhookDelivery.objects.all()
    return queryset.filter(connection=connection) if connection is not None else queryset


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    payload = response.json()
    assert set(payload["error"]) == {"code", "message", "fields"}
    assert payload["error"]["code"] == code
    assert payload["error"]["message"]
    assert payload["error"]["fields"] == {}


@pytest.fixture
def shop(cast) -> Connection:
    return connect(cast, "shopify")


@pytest.fixture
def woo(cast) -> Connection:
    return connect(cast, "woocommerce")


# --- CONTRACTS.md §0: the worked values ----------------------------------------------------


def test_the_worked_values_of_contracts_section_0_hold():
    assert len(BODY) == 8
    assert b64_hmac(WORKED_SECRET, BODY) == WORKED_SIGNATURE
    assert hex_hmac(WORKED_SECRET, BODY) == WORKED_HEX


@pytest.mark.parametrize(
    ("platform", "signature_header", "topic_header", "topic"),
    [
        ("shopify", "X-Shopify-Hmac-Sha256", "X-Shopify-Topic", "shop/update"),
        ("woocommerce", "X-WC-Webhook-Signature", "X-WC-Webhook-Topic", "action.woocommerce_ping"),
    ],
)
def test_the_worked_signature_is_accepted_and_stored_verbatim(
    client, cast, platform, signature_header, topic_header, topic
):
    connection = connect(cast, platform)
    response = post(
        client,
        hook_url(connection),
        BODY,
        {signature_header: WORKED_SIGNATURE, topic_header: topic, "X-Shopify-Webhook-Id": "w-1"},
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "accepted"}
    row = rows(connection).get()
    assert row.body == BODY.decode()
    assert row.topic == topic
    assert row.status == State.PENDING


@pytest.mark.parametrize(
    ("platform", "signature_header"),
    [("shopify", "X-Shopify-Hmac-Sha256"), ("woocommerce", "X-WC-Webhook-Signature")],
)
def test_the_hex_form_of_the_worked_digest_is_rejected(client, cast, platform, signature_header):
    connection = connect(cast, platform)
    response = post(
        client,
        hook_url(connection),
        BODY,
        {
            signature_header: WORKED_HEX,
            "X-Shopify-Topic": "shop/update",
            "X-WC-Webhook-Topic": "order.updated",
        },
    )
    assert_error(response, 401, "invalid_signature")
    assert not rows().exists()


# --- A good delivery: 200 at once, one row, processed after commit ---------------------------


def test_a_shopify_order_is_acknowledged_stored_and_processed(client, cast, shop, django_capture_on_commit_callbacks):
    body = fixture("shopify-orders-create.json")
    headers = shopify_headers(body, webhook_id="3f0e1c9a-7b2d-4c55-9a61-0d5e2b7f1a10")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(client, hook_url(shop), body, headers)
    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    assert len(callbacks) == 1
    row = rows(shop).get()
    assert row.delivery_id == "3f0e1c9a-7b2d-4c55-9a61-0d5e2b7f1a10"
    assert row.event_id == headers["X-Shopify-Event-Id"]
    assert row.topic == "orders/create"
    assert row.triggered_at == datetime(2026, 3, 2, 14, 5, 11, 123456, tzinfo=UTC)
    assert row.body == body.decode()  # byte for byte what was signed
    assert row.headers["X-Shopify-Topic"] == "orders/create"
    assert row.status == State.DONE, row.last_error
    assert row.attempts == 1
    assert row.processed_at is not None
    order = Order.objects.get(tenant=cast.tenant, connection=shop, external_id="6123456789012")
    assert order.number == "1042"
    assert order.email == "dana@example.org"
    shop.refresh_from_db()
    assert shop.last_delivery_at == row.received_at


def test_a_fulfillment_update_after_its_order_lands_on_the_order(
    client, cast, shop, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        order_body = fixture("shopify-orders-create.json")
        post(client, hook_url(shop), order_body, shopify_headers(order_body))
        body = fixture("shopify-fulfillments-update.json")
        response = post(client, hook_url(shop), body, shopify_headers(body, topic="fulfillments/update"))
    assert response.status_code == 200
    assert set(rows(shop).values_list("status", flat=True)) == {State.DONE}
    fulfillment = Fulfillment.objects.get(tenant=cast.tenant, external_id="5550001")
    assert fulfillment.order.external_id == "6123456789012"
    assert fulfillment.tracking_number == "JD014600006281234567"
    assert fulfillment.status == "out_for_delivery"


def test_a_woocommerce_order_update_is_processed(client, cast, woo, django_capture_on_commit_callbacks):
    body = fixture("woocommerce-order-updated.json")
    headers = woo_headers(body, delivery="1c5b0d6e2f3a4b5c6d7e8f9a0b1c2d3e")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, hook_url(woo), body, headers)
    assert response.status_code == 200
    row = rows(woo).get()
    assert row.delivery_id == f"7:1c5b0d6e2f3a4b5c6d7e8f9a0b1c2d3e:{hashlib.sha256(body).hexdigest()}"
    assert row.topic == "order.updated"
    assert row.status == State.DONE, row.last_error
    assert Order.objects.get(tenant=cast.tenant, connection=woo, external_id="4750").number == "4750"


def test_a_woocommerce_body_with_php_escapes_verifies_as_sent_and_is_stored_verbatim(
    client, woo, django_capture_on_commit_callbacks
):
    body = fixture("woocommerce-order-escaped.json")
    assert b"\\/" in body and b"\\u00fc" in body
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, hook_url(woo), body, woo_headers(body))
    assert response.status_code == 200
    row = rows(woo).get()
    assert row.body.encode() == body
    assert row.status == State.DONE, row.last_error


def test_the_ack_path_costs_one_query_once_the_connection_is_cached(client, shop, django_assert_num_queries):
    first = b'{"id":1,"n":1}'
    post(client, hook_url(shop), first, shopify_headers(first, topic="shop/update"))
    second = b'{"id":1,"n":2}'
    with django_assert_num_queries(1) as captured:
        response = post(client, hook_url(shop), second, shopify_headers(second, topic="shop/update"))
    assert response.status_code == 200
    assert "ON CONFLICT" in captured.captured_queries[0]["sql"]
    assert rows(shop).count() == 2


# --- Bad input: a clear answer, nothing stored -----------------------------------------------


def _reserialised(body: bytes) -> bytes:
    return json.dumps(json.loads(body)).encode()  # same data, different bytes


def _tampered(body: bytes) -> bytes:
    return body.replace(b'"39.90"', b'"39.91"')


@pytest.mark.parametrize(
    "case",
    [
        "wrong signature",
        "missing header",
        "one byte tampered",
        "re-serialised body",
        "another connection's secret",
        "signature of an empty secret",
        "non-ASCII garbage",
    ],
)
def test_a_bad_shopify_signature_answers_401_and_stores_nothing(client, cast, shop, case):
    body = fixture("shopify-orders-create.json")
    headers = shopify_headers(body)
    if case == "wrong signature":
        headers["X-Shopify-Hmac-Sha256"] = b64_hmac("not-hush", body)
    elif case == "missing header":
        del headers["X-Shopify-Hmac-Sha256"]
    elif case == "one byte tampered":
        body = _tampered(body)
        assert len(body) == len(fixture("shopify-orders-create.json"))
    elif case == "re-serialised body":
        body = _reserialised(body)
    elif case == "another connection's secret":
        other = connect(cast, "shopify", secret="globex-secret", name="Other shop")
        headers["X-Shopify-Hmac-Sha256"] = b64_hmac("globex-secret", body)
        assert other.pk != shop.pk
    elif case == "signature of an empty secret":
        headers["X-Shopify-Hmac-Sha256"] = b64_hmac("", body)
    elif case == "non-ASCII garbage":
        headers["X-Shopify-Hmac-Sha256"] = "é€✓"
    response = post(client, hook_url(shop), body, headers)
    assert_error(response, 401, "invalid_signature")
    assert not rows().exists()


@pytest.mark.parametrize("case", ["wrong signature", "missing header", "one byte tampered", "re-serialised body"])
def test_a_bad_woocommerce_signature_answers_401_and_stores_nothing(client, woo, case):
    body = fixture("woocommerce-order-escaped.json")
    headers = woo_headers(body)
    if case == "wrong signature":
        headers["X-WC-Webhook-Signature"] = b64_hmac("nope", body)
    elif case == "missing header":
        del headers["X-WC-Webhook-Signature"]
    elif case == "one byte tampered":
        body = body.replace(b'"12.00"', b'"12.01"', 1)
    elif case == "re-serialised body":
        body = _reserialised(body)
    response = post(client, hook_url(woo), body, headers)
    assert_error(response, 401, "invalid_signature")
    assert not rows().exists()


def test_a_signature_made_for_another_connection_is_refused_on_this_one(client, cast):
    a = connect(cast, "woocommerce", secret="secret-a", name="A")
    b = connect(cast, "woocommerce", secret="secret-b", name="B")
    body = fixture("woocommerce-order-updated.json")
    assert_error(
        post(client, hook_url(a), body, woo_headers(body, secret="secret-b")),
        401,
        "invalid_signature",
    )
    assert post(client, hook_url(b), body, woo_headers(body, secret="secret-b")).status_code == 200
    assert list(rows().values_list("connection_id", flat=True)) == [b.pk]


def test_shopify_header_names_are_case_insensitive_and_the_unprefixed_preview_names_work(client, shop):
    body = b'{"id":1,"lower":true}'
    lower = {k.lower(): v for k, v in shopify_headers(body, topic="shop/update").items()}
    assert post(client, hook_url(shop), body, lower).status_code == 200
    body = b'{"id":1,"events":true}'
    headers = {
        "Shopify-Hmac-Sha256": b64_hmac(WORKED_SECRET, body),
        "Shopify-Topic": "shop/update",
        "Shopify-Webhook-Id": "evt-preview-1",
    }
    assert post(client, hook_url(shop), body, headers).status_code == 200
    assert rows(shop).filter(delivery_id="evt-preview-1", topic="shop/update").exists()


def test_a_delivery_for_another_shop_is_refused_even_with_the_shared_app_secret(client, shop):
    body = fixture("shopify-orders-create.json")
    headers = shopify_headers(body, **{"X-Shopify-Shop-Domain": "someone-else.myshopify.com"})
    assert_error(post(client, hook_url(shop), body, headers), 401, "invalid_signature")
    assert not rows().exists()


def test_an_unknown_connection_id_answers_404_and_stores_nothing(client, shop):
    body = fixture("shopify-orders-create.json")
    response = post(client, f"/hooks/shopify/{uuid.uuid4()}/", body, shopify_headers(body))
    assert_error(response, 404, "not_found")
    assert not rows().exists()


def test_a_malformed_connection_id_is_not_a_route(client):
    assert client.post("/hooks/shopify/not-a-uuid/", data=BODY, content_type="application/json").status_code == 404


def test_a_disconnected_connection_answers_404_and_stores_nothing(client, cast, shop):
    body = fixture("shopify-orders-create.json")
    assert post(client, hook_url(shop), body, shopify_headers(body)).status_code == 200  # cached now
    services.connection_disconnect(connection=shop, actor=Actor.system())
    response = post(client, hook_url(shop), body, shopify_headers(body))
    assert_error(response, 404, "not_found")
    assert rows(shop).count() == 1  # history kept, nothing new


def test_a_platform_in_the_path_that_is_not_the_connections_answers_404(client, shop):
    body = fixture("shopify-orders-create.json")
    response = post(client, hook_url(shop, platform="woocommerce"), body, woo_headers(body))
    assert_error(response, 404, "not_found")
    response = post(client, hook_url(shop, platform="generic"), body, shopify_headers(body))
    assert_error(response, 404, "not_found")
    assert not rows().exists()


@pytest.mark.parametrize(
    "body",
    [b'{"id":1,', b"not json", b"\xff\xfe{}", b"", b'[{"id":1}]', b'"just a string"'],
    ids=["truncated", "text", "not utf-8", "empty", "array", "string"],
)
def test_a_verified_body_that_is_not_a_json_object_answers_400_and_stores_nothing(client, shop, body):
    response = post(client, hook_url(shop), body, shopify_headers(body))
    assert_error(response, 400, "malformed_json")
    assert not rows().exists()


def test_malformed_json_with_a_bad_signature_is_a_401_not_a_400(client, shop):
    """The signature is checked first: an unsigned caller learns nothing about parsing."""
    headers = shopify_headers(b"{}")
    assert_error(post(client, hook_url(shop), b"{not json", headers), 401, "invalid_signature")


def test_a_body_over_the_limit_answers_413_and_stores_nothing(client, shop):
    body = b'{"pad":"' + b"x" * settings.MAX_BODY_BYTES + b'"}'
    response = post(client, hook_url(shop), body, shopify_headers(body))
    assert_error(response, 413, "payload_too_large")
    assert not rows().exists()


def test_get_answers_405_in_json(client, shop):
    response = client.get(hook_url(shop))
    assert_error(response, 405, "method_not_allowed")
    assert response["Allow"] == "POST"


def test_a_delivery_without_a_topic_answers_400(client, shop):
    headers = shopify_headers(BODY)
    del headers["X-Shopify-Topic"]
    assert_error(post(client, hook_url(shop), BODY, headers), 400, "missing_topic")
    assert not rows().exists()


def test_an_unknown_topic_is_acknowledged_stored_and_ignored(client, shop, django_capture_on_commit_callbacks):
    body = b'{"id":1,"name":"Acme Socks"}'
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, hook_url(shop), body, shopify_headers(body, topic="shop/update"))
    assert response.status_code == 200
    row = rows(shop).get()
    assert row.status == State.IGNORED
    assert row.processed_at is not None
    assert not Order.objects.exists()


def test_a_duplicate_delivery_is_acknowledged_and_stores_nothing_new(client, shop, django_capture_on_commit_callbacks):
    body = fixture("shopify-orders-create.json")
    headers = shopify_headers(body, webhook_id="same-webhook-id")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = post(client, hook_url(shop), body, headers)
        again = post(client, hook_url(shop), body, headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == {"status": "duplicate"}
    assert len(callbacks) == 1  # only the new row enqueued processing
    assert rows(shop).count() == 1
    assert Order.objects.count() == 1


def test_the_same_delivery_id_on_two_connections_is_two_deliveries(client, cast, shop):
    other = connect(cast, "shopify", name="Second shop")
    body = fixture("shopify-orders-create.json")
    headers = shopify_headers(body, webhook_id="shared-id")
    assert post(client, hook_url(shop), body, headers).json() == {"status": "accepted"}
    assert post(client, hook_url(other), body, headers).json() == {"status": "accepted"}
    assert rows().count() == 2


def test_woocommerce_deliveries_sharing_a_delivery_id_within_one_second_are_both_kept(client, woo):
    one = fixture("woocommerce-order-updated.json")
    two = fixture("woocommerce-order-escaped.json")
    for body in (one, two):
        response = post(client, hook_url(woo), body, woo_headers(body, delivery="same-second-hash"))
        assert response.json() == {"status": "accepted"}
    assert rows(woo).count() == 2
    # …while a true retry (same id, same body) is a duplicate.
    response = post(client, hook_url(woo), one, woo_headers(one, delivery="same-second-hash"))
    assert response.json() == {"status": "duplicate"}
    assert rows(woo).count() == 2


def test_a_payload_missing_required_fields_is_dead_lettered_with_the_reason(
    client, shop, django_capture_on_commit_callbacks
):
    body = fixture("shopify-orders-create-missing-id.json")
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, hook_url(shop), body, shopify_headers(body))
    assert response.status_code == 200  # accepted: the store must not retry a hopeless body
    row = rows(shop).get()
    assert row.status == State.DEAD
    assert "id" in row.last_error
    assert row.attempts == 1
    assert not Order.objects.exists()


def test_fan_out_copies_of_one_shopify_event_are_processed_once(client, shop, django_capture_on_commit_callbacks):
    body = fixture("shopify-orders-create.json")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(2):  # two subscriptions: own webhook ids, one event id
            post(client, hook_url(shop), body, shopify_headers(body, event_id="evt-1"))
    first, second = rows(shop).order_by("pk")
    assert first.status == State.DONE
    assert second.status == State.IGNORED
    assert "evt-1" in second.last_error


# --- Secret rotation ------------------------------------------------------------------------


def test_after_a_rotation_both_secrets_verify_for_an_hour_then_only_the_new_one(client, cast):
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        connection = connect(cast, "shopify", secret="old-secret")
        new = services.connection_rotate_secret(connection=connection, actor=Actor.system(), new_secret="new-secret")
        assert new == "new-secret"
        traveller.shift(timedelta(minutes=59))
        for n, secret in enumerate(("old-secret", "new-secret")):
            body = b'{"id":1,"n":%d}' % n
            response = post(
                client,
                hook_url(connection),
                body,
                shopify_headers(body, secret=secret, topic="shop/update"),
            )
            assert response.status_code == 200, secret
        traveller.shift(timedelta(minutes=2))
        body = b'{"id":1,"n":9}'
        old = post(
            client,
            hook_url(connection),
            body,
            shopify_headers(body, secret="old-secret", topic="shop/update"),
        )
        assert_error(old, 401, "invalid_signature")
        fresh = post(
            client,
            hook_url(connection),
            body,
            shopify_headers(body, secret="new-secret", topic="shop/update"),
        )
        assert fresh.status_code == 200
    assert rows(connection).count() == 3


def test_a_rotation_takes_effect_at_once_despite_the_cache(client, cast):
    connection = connect(cast, "generic", secret="first")
    body = b'{"type":"order","data":{}}'
    signed = {"X-Storedesk-Signature": f"sha256={hex_hmac('first', body)}"}
    assert post(client, hook_url(connection), body, signed).status_code == 200  # cached
    generated = services.connection_rotate_secret(connection=connection, actor=Actor.system())
    body = b'{"type":"order","data":{"n":2}}'
    signed = {"X-Storedesk-Signature": f"sha256={hex_hmac(generated, body)}"}
    assert post(client, hook_url(connection), body, signed).status_code == 200


# --- WooCommerce ping ------------------------------------------------------------------------


def test_the_woocommerce_ping_answers_200_without_storing(client, woo):
    response = client.post(hook_url(woo), data=b"webhook_id=7", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert not rows().exists()


def test_a_ping_lookalike_with_woocommerce_headers_must_be_signed(client, woo):
    response = client.post(
        hook_url(woo),
        data=b"webhook_id=7",
        content_type="application/x-www-form-urlencoded",
        headers={"X-WC-Webhook-Topic": "order.updated"},
    )
    assert_error(response, 401, "invalid_signature")


def test_a_ping_to_an_unknown_connection_is_a_404(client, woo):
    response = client.post(
        f"/hooks/woocommerce/{uuid.uuid4()}/",
        data=b"webhook_id=7",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 404


# --- Adobe Commerce (Magento) RSA signatures --------------------------------------------------


@pytest.fixture(scope="module")
def adobe_keys():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, pem


def rsa_sign(private, data: bytes) -> str:
    return base64.b64encode(private.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


MAGENTO_BODY = (
    b'{"eventName":"observer.sales_order_save_after","data":{"order":{"entity_id":"118",'
    b'"increment_id":"000000118","state":"processing","status":"processing",'
    b'"customer_email":"kim@example.com","grand_total":"72.5000","order_currency_code":"USD",'
    b'"created_at":"2026-03-02 14:00:00","updated_at":"2026-03-02 14:05:12"}}}'
)


@pytest.mark.parametrize("reading", ["base64 of the body (Adobe's verifier)", "the raw body (App Builder)"])
def test_an_adobe_commerce_signature_verifies_with_the_public_key(
    client, cast, adobe_keys, reading, django_capture_on_commit_callbacks
):
    private, pem = adobe_keys
    connection = connect(cast, "magento", public_key_pem=pem)
    signed = base64.b64encode(MAGENTO_BODY) if reading.startswith("base64") else MAGENTO_BODY
    headers = {"x-adobe-commerce-webhook-signature": rsa_sign(private, signed)}
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, hook_url(connection), MAGENTO_BODY, headers)
    assert response.status_code == 200
    assert response.content == b'[{"op":"success"}]'
    row = rows(connection).get()
    assert row.topic == "observer.sales_order_save_after"
    assert row.delivery_id == f"sha256:{hashlib.sha256(MAGENTO_BODY).hexdigest()}"
    assert row.status == State.DONE, row.last_error
    assert Order.objects.get(connection=connection, external_id="118").number == "000000118"


def test_a_bad_adobe_commerce_signature_answers_401(client, cast, adobe_keys):
    private, pem = adobe_keys
    connection = connect(cast, "magento", public_key_pem=pem)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = [
        {},  # unsigned
        {"x-adobe-commerce-webhook-signature": rsa_sign(other_key, base64.b64encode(MAGENTO_BODY))},
        {"x-adobe-commerce-webhook-signature": rsa_sign(private, base64.b64encode(MAGENTO_BODY + b" "))},
        {"x-adobe-commerce-webhook-signature": "%%% not base64 %%%"},
        {"x-adobe-commerce-webhook-signature": b64_hmac(WORKED_SECRET, MAGENTO_BODY)},
    ]
    for headers in cases:
        assert_error(post(client, hook_url(connection), MAGENTO_BODY, headers), 401, "invalid_signature")
    assert not rows().exists()


def test_magento_open_source_can_sign_in_the_generic_format(client, cast):
    connection = connect(cast, "magento", secret="relay-secret")
    headers = {"X-Storedesk-Signature": f"sha256={hex_hmac('relay-secret', MAGENTO_BODY)}"}
    response = post(client, hook_url(connection), MAGENTO_BODY, headers)
    assert response.status_code == 200
    assert rows(connection).count() == 1


# --- The generic format ----------------------------------------------------------------------


def test_the_generic_format_verifies_hex_hmac_and_takes_the_delivery_header(
    client, cast, django_capture_on_commit_callbacks
):
    connection = connect(cast, "generic", secret=WORKED_SECRET)
    body = BODY
    headers = {
        "X-Storedesk-Signature": f"sha256={WORKED_HEX}",
        "X-Storedesk-Topic": "order",
        "X-Storedesk-Delivery": "gen-1",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, hook_url(connection), body, headers)
    assert response.status_code == 200
    row = rows(connection).get()
    assert (row.delivery_id, row.topic) == ("gen-1", "order")
    assert row.status == State.DEAD  # {"id":1} is no order: the reason names the field
    assert row.last_error


@pytest.mark.parametrize(
    "signature",
    [WORKED_SIGNATURE, WORKED_HEX, f"sha1={WORKED_HEX}", f"sha256={hex_hmac('other', BODY)}", ""],
    ids=["base64", "no prefix", "wrong prefix", "wrong secret", "empty"],
)
def test_a_bad_generic_signature_answers_401(client, cast, signature):
    connection = connect(cast, "generic", secret=WORKED_SECRET)
    headers = {"X-Storedesk-Signature": signature, "X-Storedesk-Topic": "order"}
    assert_error(post(client, hook_url(connection), BODY, headers), 401, "invalid_signature")


def test_a_generic_delivery_takes_its_topic_from_the_body_type_and_needs_one(client, cast):
    connection = connect(cast, "generic", secret=WORKED_SECRET)
    body = b'{"type":"order","data":{}}'
    headers = {"X-Storedesk-Signature": f"sha256={hex_hmac(WORKED_SECRET, body)}"}
    assert post(client, hook_url(connection), body, headers).status_code == 200
    assert rows(connection).get().topic == "order"
    body = b'{"data":{}}'
    headers = {"X-Storedesk-Signature": f"sha256={hex_hmac(WORKED_SECRET, body)}"}
    assert_error(post(client, hook_url(connection), body, headers), 400, "missing_topic")


# --- Signature failures are counted for the health page --------------------------------------


def test_signature_failures_are_counted_per_connection(client, cast, shop):
    other = connect(cast, "shopify", name="Quiet shop")
    body = fixture("shopify-orders-create.json")
    for _ in range(3):
        post(client, hook_url(shop), body, shopify_headers(body, secret="wrong"))
    post(client, hook_url(shop), body, shopify_headers(body))
    assert services.signature_failures(str(shop.pk)) == 3
    assert services.signature_failures(str(other.pk)) == 0


# --- Processing: retries, the sweeper, idempotency, replays -----------------------------------


def _orders_table(*, away: bool) -> None:
    """Make the database refuse order writes for a while (a deploy mid-migration, say) or
    give the table back. DDL is transactional in Postgres, so the test's rollback undoes it."""
    table = Order._meta.db_table
    names = (table, f"{table}_away") if away else (f"{table}_away", table)
    with db.cursor() as cursor:
        cursor.execute("ALTER TABLE {} RENAME TO {}".format(*map(db.ops.quote_name, names)))


def test_a_transient_database_error_retries_with_backoff_then_succeeds(
    client, cast, shop, django_capture_on_commit_callbacks
):
    if db.vendor != "postgresql":
        pytest.skip("transactional DDL")
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    body = fixture("shopify-orders-create.json")
    with time_machine.travel(start, tick=False) as traveller:
        _orders_table(away=True)
        with django_capture_on_commit_callbacks(execute=True):
            assert post(client, hook_url(shop), body, shopify_headers(body)).status_code == 200
        row = rows(shop).get()
        assert row.status == State.RETRYING
        assert row.attempts == 1
        assert row.next_attempt_at == start + timedelta(seconds=30)
        assert "ProgrammingError" in row.last_error

        # Not due yet: the sweeper leaves it alone.
        with django_capture_on_commit_callbacks(execute=True):
            sweep_inbox.delay()
        assert rows(shop).get().attempts == 1

        traveller.shift(timedelta(seconds=31))
        with django_capture_on_commit_callbacks(execute=True):
            sweep_inbox.delay()
        row = rows(shop).get()
        assert (row.status, row.attempts) == (State.RETRYING, 2)
        assert row.next_attempt_at == start + timedelta(seconds=31) + timedelta(minutes=1)

        _orders_table(away=False)
        traveller.shift(timedelta(minutes=2))
        with django_capture_on_commit_callbacks(execute=True):
            sweep_inbox.delay()
    row = rows(shop).get()
    assert (row.status, row.attempts, row.last_error) == (State.DONE, 3, "")
    assert Order.objects.filter(connection=shop).count() == 1


def test_after_eight_failed_attempts_a_delivery_is_dead_and_a_ui_replay_processes_it(
    client, admin_client_a, cast, shop, django_capture_on_commit_callbacks
):
    if db.vendor != "postgresql":
        pytest.skip("transactional DDL")
    body = fixture("shopify-orders-create.json")
    with time_machine.travel(datetime(2026, 3, 2, 12, 0, tzinfo=UTC), tick=False) as traveller:
        _orders_table(away=True)
        with django_capture_on_commit_callbacks(execute=True):
            post(client, hook_url(shop), body, shopify_headers(body))
        for _ in range(services.MAX_ATTEMPTS - 1):
            traveller.shift(timedelta(hours=1))
            with django_capture_on_commit_callbacks(execute=True):
                sweep_inbox.delay()
        row = rows(shop).get()
        assert (row.status, row.attempts) == (State.DEAD, services.MAX_ATTEMPTS)
        assert row.last_error.startswith("Gave up after 8 attempts.")
        assert row.next_attempt_at is None

        traveller.shift(timedelta(hours=1))
        with django_capture_on_commit_callbacks(execute=True):
            sweep_inbox.delay()  # dead letters are not swept
        assert rows(shop).get().attempts == services.MAX_ATTEMPTS

        health = admin_client_a.get(f"/t/acme/settings/connections/{shop.pk}/health/")
        assert b"Gave up after 8 attempts" in health.content

        _orders_table(away=False)
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client_a.post(f"/t/acme/settings/connections/{shop.pk}/deliveries/{row.pk}/replay/")
        assert response.status_code == 302
    row = rows(shop).get()
    assert (row.status, row.attempts) == (State.DONE, 1)
    assert Order.objects.filter(connection=shop).count() == 1
    entry = AuditLog.objects.get(tenant=cast.tenant, action="delivery.replay")
    assert entry.actor_user == cast.admin
    assert entry.target_id == str(row.pk)


def test_the_sweeper_re_enqueues_a_delivery_whose_message_was_lost(client, shop, django_capture_on_commit_callbacks):
    body = fixture("shopify-orders-create.json")
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    with time_machine.travel(start, tick=False) as traveller:
        post(client, hook_url(shop), body, shopify_headers(body))  # its on_commit never runs
        assert rows(shop).get().status == State.PENDING
        with django_capture_on_commit_callbacks(execute=True):
            sweep_inbox.delay()  # a fresh row belongs to its message for a while
        assert rows(shop).get().status == State.PENDING
        traveller.shift(services.PENDING_GRACE + timedelta(seconds=1))
        with django_capture_on_commit_callbacks(execute=True):
            assert sweep_inbox.delay().get() == 1
    assert rows(shop).get().status == State.DONE


def test_processing_a_done_delivery_again_changes_nothing(client, cast, shop, django_capture_on_commit_callbacks):
    body = fixture("shopify-orders-create.json")
    with django_capture_on_commit_callbacks(execute=True):
        post(client, hook_url(shop), body, shopify_headers(body))
    row = rows(shop).get()
    before = (row.status, row.attempts, row.processed_at)
    assert process_delivery.delay(cast.tenant.pk, row.pk).get() is None
    row.refresh_from_db()
    assert (row.status, row.attempts, row.processed_at) == before


def test_a_task_for_another_tenant_does_not_touch_the_row(client, cast, shop):
    body = fixture("shopify-orders-create.json")
    post(client, hook_url(shop), body, shopify_headers(body))
    row = rows(shop).get()
    assert process_delivery.delay(cast.other_tenant.pk, row.pk).get() is None
    assert rows(shop).get().status == State.PENDING


def test_a_delivery_accepted_before_a_disconnect_is_set_aside(client, cast, shop):
    body = fixture("shopify-orders-create.json")
    post(client, hook_url(shop), body, shopify_headers(body))  # not processed yet
    services.connection_disconnect(connection=shop, actor=Actor.system())
    row = rows(shop).get()
    assert row.status == State.IGNORED
    assert "disconnected" in row.last_error
    assert process_delivery.delay(cast.tenant.pk, row.pk).get() is None
    assert not Order.objects.exists()


def test_replay_is_refused_for_a_delivery_that_is_not_dead(
    client, admin_client_a, shop, django_capture_on_commit_callbacks
):
    body = fixture("shopify-orders-create.json")
    with django_capture_on_commit_callbacks(execute=True):
        post(client, hook_url(shop), body, shopify_headers(body))
    row = rows(shop).get()
    response = admin_client_a.post(f"/t/acme/settings/connections/{shop.pk}/deliveries/{row.pk}/replay/", follow=True)
    assert b"Only dead letters can be replayed" in response.content
    assert rows(shop).get().status == State.DONE
    assert not AuditLog.objects.filter(action="delivery.replay").exists()


def test_an_outsider_gets_404_replaying_a_tenant_a_delivery(
    client, outsider_client, cast, shop, django_capture_on_commit_callbacks
):
    body = fixture("shopify-orders-create-missing-id.json")
    with django_capture_on_commit_callbacks(execute=True):
        post(client, hook_url(shop), body, shopify_headers(body))
    row = rows(shop).get()
    assert row.status == State.DEAD
    for slug in ("acme", "globex"):
        response = outsider_client.post(f"/t/{slug}/settings/connections/{shop.pk}/deliveries/{row.pk}/replay/")
        assert response.status_code == 404, slug
    # The outsider's own connection with tenant A's delivery id: still 404.
    theirs = connect(cast, "shopify", tenant=cast.other_tenant, name="Globex shop")
    response = outsider_client.post(f"/t/globex/settings/connections/{theirs.pk}/deliveries/{row.pk}/replay/")
    assert response.status_code == 404
    row.refresh_from_db()
    assert (row.status, row.attempts) == (State.DEAD, 1)
    assert not AuditLog.objects.filter(action="delivery.replay").exists()


# --- End to end: a real worker behind the ack path ------------------------------------------


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore:task_always_eager has no effect")
def test_a_real_worker_processes_what_the_ack_path_enqueued_and_a_duplicate_message_is_harmless(client, cast, request):
    from helpdesk.celery import app as celery_app

    worker_queue = request.getfixturevalue("worker")  # tests/test_e2e_worker.py: a real Celery worker

    connection = connect(cast, "shopify")
    body = fixture("shopify-orders-create.json")
    eager, queue = celery_app.conf.task_always_eager, celery_app.conf.task_default_queue
    celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = False, worker_queue
    try:
        response = post(client, hook_url(connection), body, shopify_headers(body))
    finally:
        celery_app.conf.task_always_eager, celery_app.conf.task_default_queue = eager, queue
    assert response.status_code == 200
    row = rows(connection).get()
    assert wait_for(lambda: rows(connection).get().status == State.DONE)
    # A duplicated message (a retry, a sweep racing the first one) changes nothing.
    for _ in range(2):
        celery_app.send_task("integrations.process_delivery", args=[cast.tenant.pk, row.pk], queue=worker_queue)
    celery_app.send_task("integrations.sweep_inbox", queue=worker_queue)
    time.sleep(2.0)
    row.refresh_from_db()
    assert (row.status, row.attempts) == (State.DONE, 1)
    assert Order.objects.filter(connection=connection).count() == 1


def test_beat_sweeps_the_inbox_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["inbox-sweep"]
    assert entry == {"task": "integrations.sweep_inbox", "schedule": 60.0}
