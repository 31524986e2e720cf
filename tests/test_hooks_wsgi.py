"""The webhook fast path (integrations.hooks_wsgi behind helpdesk.wsgi.application).

1. The ingest tests of test_webhooks.py run again here with `client` going through
   `helpdesk.wsgi.application` (tests/wsgi_client.py): good deliveries stored and
   processed, every bad input, duplicates, pings, rotations, each platform.
2. Parity: the same request answered by Django's own handler (the view behind the
   middleware stack) and by the fast path gives the same status, headers and body.
3. What Django's handler gave for free: request signals and the connection lifecycle, a
   JSON 500 for an unexpected error, the bad-Host 400, everything else untouched.
"""

from __future__ import annotations

import hashlib
import io
import logging
import uuid

import psycopg2
import pytest
from django.conf import settings
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.db import connection as db

import tests.test_webhooks as ingest
from helpdesk.wsgi import application, django_application
from integrations import hooks_wsgi, services
from integrations.models import WebhookDelivery
from tests.test_webhooks import (  # noqa: F401  (the fixtures and tests re-run through the fast path)
    BODY,
    WORKED_SECRET,
    connect,
    fixture,
    hex_hmac,
    hook_url,
    shopify_headers,
    test_a_bad_adobe_commerce_signature_answers_401,
    test_a_bad_generic_signature_answers_401,
    test_a_bad_shopify_signature_answers_401_and_stores_nothing,
    test_a_bad_woocommerce_signature_answers_401_and_stores_nothing,
    test_a_body_over_the_limit_answers_413_and_stores_nothing,
    test_a_delivery_for_another_shop_is_refused_even_with_the_shared_app_secret,
    test_a_delivery_without_a_topic_answers_400,
    test_a_disconnected_connection_answers_404_and_stores_nothing,
    test_a_duplicate_delivery_is_acknowledged_and_stores_nothing_new,
    test_a_generic_delivery_takes_its_topic_from_the_body_type_and_needs_one,
    test_a_malformed_connection_id_is_not_a_route,
    test_a_ping_lookalike_with_woocommerce_headers_must_be_signed,
    test_a_ping_to_an_unknown_connection_is_a_404,
    test_a_platform_in_the_path_that_is_not_the_connections_answers_404,
    test_a_rotation_takes_effect_at_once_despite_the_cache,
    test_a_shopify_order_is_acknowledged_stored_and_processed,
    test_a_signature_made_for_another_connection_is_refused_on_this_one,
    test_a_verified_body_that_is_not_a_json_object_answers_400_and_stores_nothing,
    test_a_woocommerce_body_with_php_escapes_verifies_as_sent_and_is_stored_verbatim,
    test_a_woocommerce_order_update_is_processed,
    test_after_a_rotation_both_secrets_verify_for_an_hour_then_only_the_new_one,
    test_an_adobe_commerce_signature_verifies_with_the_public_key,
    test_an_unknown_connection_id_answers_404_and_stores_nothing,
    test_an_unknown_topic_is_acknowledged_stored_and_ignored,
    test_get_answers_405_in_json,
    test_magento_open_source_can_sign_in_the_generic_format,
    test_malformed_json_with_a_bad_signature_is_a_401_not_a_400,
    test_shopify_header_names_are_case_insensitive_and_the_unprefixed_preview_names_work,
    test_signature_failures_are_counted_per_connection,
    test_the_ack_path_costs_one_query_once_the_connection_is_cached,
    test_the_generic_format_verifies_hex_hmac_and_takes_the_delivery_header,
    test_the_hex_form_of_the_worked_digest_is_rejected,
    test_the_same_delivery_id_on_two_connections_is_two_deliveries,
    test_the_woocommerce_ping_answers_200_without_storing,
    test_the_worked_signature_is_accepted_and_stored_verbatim,
    test_woocommerce_deliveries_sharing_a_delivery_id_within_one_second_are_both_kept,
    woo_headers,
)
from tests.wsgi_client import WsgiClient, WsgiResponse, call

# The fixtures the re-run tests take (assigned, not imported: tests here take them too).
shop, woo, adobe_keys = ingest.shop, ingest.woo, ingest.adobe_keys


@pytest.fixture
def client() -> WsgiClient:
    """The re-run tests above post through helpdesk.wsgi.application, not Django's handler."""
    return WsgiClient(application)


# --- Parity with Django's handler ----------------------------------------------------------


def answers(environ_for, *, headers_too: bool = True) -> tuple[WsgiResponse, WsgiResponse]:
    """The same request (a fresh environ each) through Django's handler, then the fast path
    (both built now, so they see the test's settings)."""
    django = call(WSGIHandler(), environ_for())
    fast = call(hooks_wsgi.HooksApplication(WSGIHandler()), environ_for())
    assert (fast.status, fast.content) == (django.status, django.content)
    if headers_too:
        assert fast.header_list == django.header_list
    return django, fast


def environ(path: str, body: bytes = b"", headers: dict[str, str] | None = None, **extra):
    def make() -> dict:
        return WsgiClient(application).environ("POST", path, body, "application/json", headers=headers or {}, **extra)

    return make


def shopify(shop_connection, body: bytes, **extra: str):
    """A fresh environ per call: each delivery gets its own webhook id unless told."""

    def make() -> dict:
        return environ(hook_url(shop_connection), body, shopify_headers(body, **extra))()

    return make


def test_an_accepted_delivery_is_answered_exactly_as_django_answers_it(shop):
    body = fixture("shopify-orders-create.json")
    django, fast = answers(shopify(shop, body))
    assert fast.json() == {"status": "accepted"}
    assert fast["X-Frame-Options"] == "DENY"
    assert fast["X-Content-Type-Options"] == "nosniff"
    assert fast["Content-Length"] == str(len(fast.content))
    assert WebhookDelivery.objects.filter(connection=shop).count() == 2


def test_a_duplicate_is_answered_exactly_as_django_answers_it(shop):
    body = fixture("shopify-orders-create.json")
    call(application, shopify(shop, body, webhook_id="dup")())
    _, fast = answers(shopify(shop, body, webhook_id="dup"))
    assert fast.json() == {"status": "duplicate"}
    assert WebhookDelivery.objects.filter(connection=shop).count() == 1


@pytest.mark.parametrize(
    "case",
    [
        "wrong signature",
        "missing signature",
        "tampered body",
        "another connection's secret",
        "malformed json",
        "missing topic",
        "unknown connection",
        "wrong platform",
        "upper-case uuid",
        "not a uuid",
        "no trailing slash",
        "over the limit",
        "invalid content-length",
        "no content-length",
        "chunked",
        "get",
        "put",
        "bad host",
        "query string",
    ],
)
def test_bad_input_is_answered_exactly_as_django_answers_it(shop, cast, case):
    body = fixture("shopify-orders-create.json")
    url = hook_url(shop)
    headers = shopify_headers(body)
    extra: dict = {}
    method = "POST"
    if case == "wrong signature":
        headers = shopify_headers(body, secret="not-hush")
    elif case == "missing signature":
        del headers["X-Shopify-Hmac-Sha256"]
    elif case == "tampered body":
        body = body.replace(b'"39.90"', b'"39.91"')
    elif case == "another connection's secret":
        connect(cast, "shopify", secret="theirs", name="Other shop")
        headers = shopify_headers(body, secret="theirs")
    elif case == "malformed json":
        body = b'{"id":1,'
        headers = shopify_headers(body)
    elif case == "missing topic":
        del headers["X-Shopify-Topic"]
    elif case == "unknown connection":
        url = f"/hooks/shopify/{uuid.uuid4()}/"
    elif case == "wrong platform":
        url = hook_url(shop, platform="woocommerce")
    elif case == "upper-case uuid":
        url = f"/hooks/shopify/{str(shop.pk).upper()}/"
    elif case == "not a uuid":
        url = "/hooks/shopify/not-a-uuid/"
    elif case == "no trailing slash":
        url = url.rstrip("/")
    elif case == "over the limit":
        body = b'{"pad":"' + b"x" * settings.MAX_BODY_BYTES + b'"}'
        headers = shopify_headers(body)
    elif case == "invalid content-length":
        extra["CONTENT_LENGTH"] = "12abc"
    elif case == "bad host":
        extra["HTTP_HOST"] = "evil.example"
    elif case == "query string":
        url += "?topic=orders/create&x=1"
    elif case in ("get", "put"):
        method = case.upper()

    def make() -> dict:
        if case == "no content-length" or case == "chunked":
            env = environ(url, body, headers)()
            del env["CONTENT_LENGTH"]
            env["wsgi.input"] = io.BytesIO(body)
            if case == "chunked":
                env["HTTP_TRANSFER_ENCODING"] = "chunked"
                env["wsgi.input_terminated"] = True
            return env
        fresh = shopify_headers(body) if case == "query string" else headers  # not a duplicate
        env = environ(url, body, fresh, **extra)()
        env["REQUEST_METHOD"] = method
        return env

    django, fast = answers(make)
    assert django.status_code in (200, 301, 400, 401, 404, 405, 413), django.content
    if case == "query string":
        assert fast.status_code == 200
    else:
        assert fast.status_code != 200
        assert not WebhookDelivery.objects.exists()
    if fast.status_code not in (200, 301):
        assert set(fast.json()["error"]) == {"code", "message", "fields"}


def test_every_platform_answers_exactly_as_django_answers(cast, adobe_keys):
    generic = connect(cast, "generic")
    magento = connect(cast, "magento")
    body = b'{"type":"order","data":{"id":1}}'
    signed = {"X-Storedesk-Signature": f"sha256={hex_hmac(WORKED_SECRET, body)}", "X-Storedesk-Topic": "order"}
    for connection in (generic, magento):

        def make(connection=connection) -> dict:
            return environ(hook_url(connection), body, {**signed, "X-Storedesk-Delivery": uuid.uuid4().hex})()

        _, fast = answers(make)
        assert fast.status_code == 200
    assert fast.content == b'[{"op":"success"}]'  # Adobe Commerce reads operations
    woo_connection = connect(cast, "woocommerce")
    answers(lambda: environ(hook_url(woo_connection), fixture("shopify-orders-create.json"), woo_headers(BODY))())
    ping = WsgiClient(application).environ(
        "POST", hook_url(woo_connection), b"webhook_id=7", "application/x-www-form-urlencoded"
    )
    assert call(application, ping).json() == {"status": "ok"}


@pytest.mark.parametrize("secure", [False, True])
def test_security_headers_and_https_redirects_match_django(shop, settings, secure):
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_SSL_REDIRECT = True
    body = fixture("shopify-orders-create.json")

    def make() -> dict:
        return environ(hook_url(shop), body, shopify_headers(body), secure=secure)()

    _, fast = answers(make)
    if secure:
        assert fast.status_code == 200
        assert fast["Strict-Transport-Security"].startswith("max-age=3600")
    else:
        assert fast.status_code == 301
        assert fast["Location"].startswith("https://")


def test_other_paths_go_to_django_unchanged(db):
    for path in ("/healthz", "/hooks/", "/hooks/twilio/00000000-0000-0000-0000-000000000000/", "/api/v1/"):
        answers(lambda path=path: WsgiClient(application).environ("GET", path))


def test_the_middleware_the_fast_path_skips_is_the_one_it_was_checked_against():
    """A new middleware may matter to webhooks: look at integrations/hooks_wsgi.py, then
    update REVIEWED_MIDDLEWARE_SHA256."""
    digest = hashlib.sha256("\n".join(settings.MIDDLEWARE).encode()).hexdigest()
    assert digest == hooks_wsgi.REVIEWED_MIDDLEWARE_SHA256, f"MIDDLEWARE changed: {settings.MIDDLEWARE}"


def test_helpdesk_wsgi_wraps_djangos_handler():
    assert isinstance(django_application, WSGIHandler)
    assert application.django_app is django_application


def test_whole_responses_go_to_the_server_as_closed_lists_and_streams_as_they_are(shop):
    """granian writes a list in one piece; any other iterable it iterates holding the GIL."""
    finished = []

    def on_finished(sender, **kwargs):
        finished.append(sender)

    def call(path: str, method: str = "GET", body: bytes = b"", headers: dict | None = None):
        environ = WsgiClient(application).environ(method, path, body, headers=headers or {})
        answered = []
        result = application(environ, lambda status, headers: answered.append(status))
        return answered[0], result

    # As the test Client does: close_old_connections off the signals inside the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    signals.request_finished.connect(on_finished)
    try:
        status, page = call("/healthz")
        assert status.startswith("200") and isinstance(page, list) and len(page) == 1
        assert finished == [WSGIHandler]  # closed already: Django's request signals ran
        body = fixture("shopify-orders-create.json")
        status, ack = call(hook_url(shop), "POST", body, shopify_headers(body))
        assert status.startswith("200") and ack == [b'{"status": "accepted"}']
        assert finished == [WSGIHandler, WSGIHandler]
        status, static = call("/static/css/app.css")
        assert status.startswith("200") and not isinstance(static, list)  # a file streams
        assert len(finished) == 2  # the server closes it, after sending
        assert b"".join(static)
        static.close()
        assert len(finished) == 3
    finally:
        signals.request_finished.disconnect(on_finished)
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


# --- What Django's handler gave for free ------------------------------------------------------


def test_an_unexpected_error_is_logged_and_answered_in_json_even_in_debug(shop, settings, monkeypatch, caplog):
    settings.DEBUG = True

    def boom(**kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "delivery_accept", boom)
    raised = []
    signals.got_request_exception.connect(receiver := lambda **kw: raised.append(kw))
    try:
        body = fixture("shopify-orders-create.json")
        with caplog.at_level(logging.ERROR, logger="django.request"):
            response = call(application, shopify(shop, body)())
    finally:
        signals.got_request_exception.disconnect(receiver)
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "server_error"
    assert response["X-Frame-Options"] == "DENY" and response["Content-Type"] == "application/json"
    assert len(raised) == 1
    record = next(r for r in caplog.records if r.name == "django.request")
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])


def test_client_errors_are_logged_like_django_logs_them(shop, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        call(application, shopify(shop, BODY, secret="wrong")())
    assert [r.getMessage() for r in caplog.records if r.name == "django.request"] == [f"Unauthorized: {hook_url(shop)}"]


@pytest.mark.django_db(transaction=True)
def test_request_signals_run_and_a_broken_database_connection_is_replaced(cast):
    shop_connection = connect(cast, "shopify")
    sent = []

    def started(sender, **kwargs):
        sent.append(("started", sender))

    def finished(sender, **kwargs):
        sent.append(("finished", sender))

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    client = WsgiClient(application, lifecycle=True)
    try:
        body = fixture("shopify-orders-create.json")
        first = client.post(hook_url(shop_connection), body, headers=shopify_headers(body))
        assert first.status_code == 200
        assert sent == [("started", WSGIHandler), ("finished", WSGIHandler)]
        # The server drops the pooled connection (a restart, a proxy timeout).
        db.ensure_connection()
        broken = db.connection
        with psycopg2.connect(**db.get_connection_params()) as admin, admin.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [broken.get_backend_pid()])
        body = b'{"id":2}'
        again = client.post(hook_url(shop_connection), body, headers=shopify_headers(body))
        assert again.status_code == 200, again.content
        assert db.connection is not broken
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert WebhookDelivery.objects.filter(connection=shop_connection).count() == 2


def test_a_delivery_never_reaches_djangos_handler(shop):
    def refuse(environ, start_response):
        raise AssertionError(f"Django's handler was called for {environ['PATH_INFO']}")

    fast = hooks_wsgi.HooksApplication(refuse)
    body = fixture("shopify-orders-create.json")
    for make in (shopify(shop, body), shopify(shop, body, secret="wrong"), environ(f"/hooks/generic/{uuid.uuid4()}/")):
        assert call(fast, make()).status_code in (200, 401, 404)
    get = make()
    get["REQUEST_METHOD"] = "GET"
    assert call(fast, get).status_code == 405
