"""The inbox drain claims rows in batches (integrations.services, "The inbox: drain"): one
transaction per batch, a savepoint per row, the outcomes written together. A row that fails
rolls back alone; drains side by side never process a row twice; a batch costs a handful of
statements per delivery."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from integrations import services, upsert
from integrations.models import Connection, Order, WebhookDelivery
from tests.concurrency import at_once
from tests.test_webhooks import connect, fixture
from tickets.models import Customer

State = WebhookDelivery.State


def order_body(n: int) -> str:
    """The Shopify orders/create fixture as order n, of its own customer."""
    data = json.loads(fixture("shopify-orders-create.json"))
    data["id"] = 6_123_456_000_000 + n
    data["order_number"] = 2000 + n
    data["name"] = f"#{2000 + n}"
    data["email"] = f"buyer{n}@example.org"
    data["customer"] = {**data["customer"], "id": 7_000_000 + n, "email": f"buyer{n}@example.org"}
    return json.dumps(data)


def pending(connection: Connection, body: str, n: int, event_id: str = "") -> WebhookDelivery:
    """An inbox row as the ack path stores it (without requesting a drain)."""
    now = timezone.now()
    return WebhookDelivery.objects.create(
        tenant_id=connection.tenant_id,
        connection=connection,
        delivery_id=f"d-{n}",
        event_id=event_id,
        topic="orders/create",
        received_at=now,
        headers={},
        body=body,
        status=State.PENDING,
        next_attempt_at=now + timedelta(seconds=n),  # claimed in this order
    )


def test_a_failing_row_rolls_back_alone_and_the_rest_of_its_batch_settles(cast, monkeypatch):
    shop = connect(cast, "shopify")
    rows = [pending(shop, order_body(n), n) for n in range(5)]
    rows.append(pending(shop, fixture("shopify-orders-create-missing-id.json").decode(), 5))
    real = upsert._replace_lines

    def failing(run, order, lines, known_new=False):
        if order.number == "2002":  # after its order and customer were written
            raise RuntimeError("disk on fire")
        return real(run, order, lines, known_new)

    monkeypatch.setattr(upsert, "_replace_lines", failing)
    claims = []
    real_claim = services._claim_batch
    monkeypatch.setattr(services, "_claim_batch", lambda t, limit: claims.append(limit) or real_claim(t, limit))

    assert services.delivery_drain(tenant=cast.tenant) == 6
    # The batch without savepoints, again with them after the failure, then two empty looks.
    assert claims == [services.DRAIN_BATCH] * 4

    by_pk = {row.pk: row for row in WebhookDelivery.objects.filter(connection=shop)}
    outcomes = [(by_pk[row.pk].status, by_pk[row.pk].attempts) for row in rows]
    assert outcomes == [
        (State.DONE, 1),
        (State.DONE, 1),
        (State.RETRYING, 1),
        (State.DONE, 1),
        (State.DONE, 1),
        (State.DEAD, 1),
    ]
    failed = by_pk[rows[2].pk]
    assert "RuntimeError: disk on fire" in failed.last_error
    assert failed.processed_at is None and failed.next_attempt_at is not None
    assert all(by_pk[row.pk].processed_at is not None for row in rows if row is not rows[2])
    # The failed row's writes went with its savepoint; the others' stayed.
    assert sorted(Order.objects.filter(connection=shop).values_list("number", flat=True)) == [
        "2000",
        "2001",
        "2003",
        "2004",
    ]
    assert not Customer.objects.filter(tenant=cast.tenant, email="buyer2@example.org").exists()
    assert Customer.objects.get(tenant=cast.tenant, email="buyer3@example.org").external_ids == {
        f"shopify:{shop.pk}": "7000003"
    }

    # Its retry (the sweeper's message) applies it once the fault is gone.
    monkeypatch.setattr(upsert, "_replace_lines", real)
    assert services.delivery_process(tenant=cast.tenant, delivery_pk=failed.pk) == State.DONE
    assert Order.objects.get(connection=shop, number="2002").lines.count() == 1


def test_fan_out_copies_in_one_batch_and_across_batches_are_processed_once(cast):
    shop = connect(cast, "shopify")
    body = order_body(1)
    first, second = pending(shop, body, 1, event_id="evt-9"), pending(shop, body, 2, event_id="evt-9")
    other_topic = pending(shop, order_body(3), 3, event_id="evt-9")
    other_topic.topic = "orders/updated"
    other_topic.save()
    assert services.delivery_drain(tenant=cast.tenant) == 3
    statuses = dict(WebhookDelivery.objects.filter(connection=shop).values_list("pk", "status"))
    assert (statuses[first.pk], statuses[second.pk], statuses[other_topic.pk]) == (
        State.DONE,
        State.IGNORED,
        State.DONE,
    )
    third = pending(shop, body, 4, event_id="evt-9")  # a later batch
    assert services.delivery_drain(tenant=cast.tenant) == 1
    third.refresh_from_db()
    assert third.status == State.IGNORED
    assert "evt-9" in third.last_error


def test_a_batch_of_new_orders_costs_a_handful_of_statements_in_all(cast):
    shop = connect(cast, "shopify")
    for n in range(10):
        pending(shop, order_body(n), n)
    services._drain_batch(cast.tenant, 1)  # warm: per-process statement shapes
    with CaptureQueriesContext(db) as ctx:
        assert len(services._drain_batch(cast.tenant, 9)) == 9
    # The whole batch, not per delivery (upsert.apply_many): claim, constraints mode, order
    # lookup, customer lookup, ids, customer/order/lines inserts, notice rules, outcomes.
    assert len(ctx.captured_queries) <= 12, [q["sql"][:80] for q in ctx.captured_queries]
    # The only savepoint is the batch's own transaction, nested in the test's.
    assert len([q for q in ctx.captured_queries if "SAVEPOINT" in q["sql"]]) == 2
    assert WebhookDelivery.objects.filter(connection=shop, status=State.DONE).count() == 10


@pytest.mark.django_db(transaction=True)
def test_two_drains_side_by_side_never_process_a_row_twice(cast, monkeypatch):
    shop = connect(cast, "shopify")
    rows = [pending(shop, order_body(n), n) for n in range(12)]
    monkeypatch.setattr(services, "DRAIN_BATCH", 3)
    seen: list[int] = []
    real = services._records

    def slow(delivery, *args):
        seen.append(delivery.pk)
        time.sleep(0.02)  # let the other drain claim meanwhile
        return real(delivery, *args)

    monkeypatch.setattr(services, "_records", slow)
    done = at_once(lambda slot: services.delivery_drain(tenant=cast.tenant, slot=slot), threads=2)
    assert len(done) == 2
    assert sorted(seen) == sorted(row.pk for row in rows)  # each row once
    assert sum(done) == 12 and all(done)  # both drains took part
    assert set(WebhookDelivery.objects.filter(connection=shop).values_list("status", flat=True)) == {State.DONE}
    assert set(WebhookDelivery.objects.filter(connection=shop).values_list("attempts", flat=True)) == {1}
    assert Order.objects.filter(connection=shop).count() == 12


def test_a_drain_in_a_burst_waits_briefly_for_the_next_deliveries(cast, monkeypatch):
    shop = connect(cast, "shopify")
    for n in range(services.DRAIN_LINGER_AFTER):
        pending(shop, order_body(n), n)
    monkeypatch.setattr(services, "DRAIN_SLOTS", 1)  # this drain alone
    naps: list[float] = []

    def nap(seconds):  # a delivery arrives while the drain waits
        naps.append(seconds)
        if len(naps) == 2:
            pending(shop, order_body(999), 999)

    monkeypatch.setattr(services.time, "sleep", nap)
    assert services.delivery_drain(tenant=cast.tenant) == services.DRAIN_LINGER_AFTER + 1
    # Two naps found nothing new, then the late delivery; then naps up to the cap.
    assert sum(naps) == pytest.approx(services.DRAIN_LINGER_MAX)
    assert WebhookDelivery.objects.filter(connection=shop, status=State.DONE).count() == services.DRAIN_LINGER_AFTER + 1


def test_a_quiet_shops_drain_ends_at_once(cast, monkeypatch):
    shop = connect(cast, "shopify")
    pending(shop, order_body(1), 1)
    naps: list[float] = []
    monkeypatch.setattr(services.time, "sleep", naps.append)
    assert services.delivery_drain(tenant=cast.tenant) == 1
    assert naps == []
