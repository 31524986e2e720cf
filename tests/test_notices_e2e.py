"""End to end: signed webhooks → the inbox → a real Celery worker → notice rows → a real
local SMTP server. One shipment is one email however often it is delivered; SMTP down is
retried until it is back; a hard-bounced address is suppressed."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.test import Client
from django.utils import timezone

from helpdesk.celery import app as celery_app
from helpdesk.services import Actor
from integrations import notices, services
from integrations.models import WebhookDelivery
from integrations.notices_demo import seed_notices
from integrations.notices_models import Notice, NoticeEvent, Suppression
from tests.celery_worker import run_worker, wait_for
from tests.orders_fixtures import make_order
from tickets import services as ticket_services

pytest_plugins = ["tests.smtp_sink"]
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:task_always_eager has no effect"),
]
SECRET = "e2e-notice-secret"


@pytest.fixture
def notice_worker(smtp, monkeypatch):
    """A real worker whose mailer is the test SMTP server (EMAIL_URL), on a private queue
    that this process publishes to as well (not eager: the worker does the work)."""
    with run_worker({"EMAIL_URL": smtp.email_url}) as queue:
        monkeypatch.setitem(celery_app.conf, "task_always_eager", False)
        monkeypatch.setitem(celery_app.conf, "task_default_queue", queue)
        yield queue


@pytest.fixture
def shop(cast):
    seed_notices(cast.tenant)
    notices.notice_settings_update(
        tenant=cast.tenant, actor=Actor.system(), quiet_start=None, quiet_end=None, delay_hours=48
    )
    connection, _ = services.connection_create(
        tenant=cast.tenant, platform="generic", name="E2E store", actor=Actor.system(), webhook_secret=SECRET
    )
    return connection


def _order(cast, connection, email: str, external_id: str, number: str):
    customer = ticket_services.customer_get_or_create(tenant=cast.tenant, email=email, name="Kim Lee")
    return make_order(connection, external_id=external_id, number=number, customer=customer, placed_at=timezone.now())


def _post_shipment(connection, order, delivery_id: str, status: str = "in_transit", at: str | None = None) -> int:
    body = json.dumps(
        {
            "type": "fulfillment",
            "data": {
                "external_id": f"F-{order.external_id}",
                "order_external_id": order.external_id,
                "status": status,
                "carrier": "DHL",
                "tracking_number": f"1Z{order.external_id}",
                "tracking_url": f"https://track.example/1Z{order.external_id}",
                "updated_at": at or timezone.now().isoformat(),
            },
        }
    ).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = Client().post(
        f"/hooks/generic/{connection.pk}/",
        data=body,
        content_type="application/json",
        headers={
            "X-Storedesk-Signature": f"sha256={signature}",
            "X-Storedesk-Topic": "fulfillment",
            "X-Storedesk-Delivery": delivery_id,
        },
    )
    return response.status_code


def _nudge(connection, queue: str) -> None:
    """Send `process_delivery` for inbox rows still pending, as the inbox sweep would after
    its grace period (processing claims the row, so a second message does nothing)."""
    for pk in WebhookDelivery.objects.filter(connection=connection, status="pending").values_list("pk", flat=True):
        celery_app.send_task("integrations.process_delivery", args=[connection.tenant_id, pk], queue=queue)


def _processed(connection, n: int) -> bool:
    return WebhookDelivery.objects.filter(connection=connection, status__in=["done", "ignored"]).count() >= n


def test_one_shipment_is_one_email_even_when_delivered_three_times(cast, shop, notice_worker, smtp):
    order = _order(cast, shop, "kim@example.org", "A-1", "2001")
    at = timezone.now().isoformat()
    assert _post_shipment(shop, order, "d-1", at=at) == 200
    _nudge(shop, notice_worker)
    assert wait_for(lambda: len(smtp.to("kim@example.org")) == 1), "the shipping notice never arrived"
    # The platform retries with new delivery ids, and one exact duplicate.
    for delivery in ("d-2", "d-3", "d-3"):
        assert _post_shipment(shop, order, delivery, at=at) == 200
    _nudge(shop, notice_worker)
    assert wait_for(lambda: _processed(shop, 3))
    time.sleep(2.0)  # any stray send would have happened by now
    [message] = smtp.to("kim@example.org")
    assert message["Subject"] == "Your order #2001 is on its way"
    assert "/notices/unsubscribe/" in message["List-Unsubscribe"]
    notice = Notice.objects.get(tenant=cast.tenant, event=NoticeEvent.SHIPPED)
    assert notice.status == Notice.State.SENT and notice.attempts == 1


def test_smtp_down_is_retried_and_sent_once_it_is_back(cast, shop, notice_worker, smtp):
    order = _order(cast, shop, "dana@example.org", "A-2", "2002")
    smtp.stop()
    assert _post_shipment(shop, order, "d-10") == 200
    _nudge(shop, notice_worker)
    failed_once = lambda: Notice.objects.filter(  # noqa: E731
        tenant=cast.tenant, recipient="dana@example.org", attempts__gte=1, status=Notice.State.QUEUED
    ).exists()
    assert wait_for(failed_once), "the first attempt did not fail and back off"
    assert Notice.objects.get(tenant=cast.tenant, recipient="dana@example.org").last_error
    smtp.start()
    sent = lambda: Notice.objects.filter(  # noqa: E731
        tenant=cast.tenant, recipient="dana@example.org", status=Notice.State.SENT
    ).exists()
    assert wait_for(sent, timeout=90), "the retry never sent it"
    assert len(smtp.to("dana@example.org")) == 1


def test_a_hard_bounced_address_is_suppressed(cast, shop, notice_worker, smtp):
    order = _order(cast, shop, "gone@example.org", "A-3", "2003")
    smtp.refuse("gone@example.org")
    assert _post_shipment(shop, order, "d-20") == 200
    _nudge(shop, notice_worker)
    assert wait_for(lambda: Suppression.objects.filter(tenant=cast.tenant, email="gone@example.org").exists())
    notice = Notice.objects.get(tenant=cast.tenant, recipient="gone@example.org")
    assert notice.status == Notice.State.SUPPRESSED
    # The next event for that address is suppressed at once, without a send.
    assert _post_shipment(shop, order, "d-21", status="out_for_delivery") == 200
    _nudge(shop, notice_worker)
    later = lambda: Notice.objects.filter(  # noqa: E731
        tenant=cast.tenant, event=NoticeEvent.OUT_FOR_DELIVERY, status=Notice.State.SUPPRESSED
    ).exists()
    assert wait_for(later)
    assert smtp.messages == []
