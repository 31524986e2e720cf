"""The batched mode (upsert.apply_many): a drain batch's deliveries applied with one
statement per table must leave exactly the rows, counts, links, tiers and notices that
applying them one by one (upsert.apply) leaves. Each case runs the same deliveries both
ways, in two tenants, and compares everything by natural keys."""

from __future__ import annotations

import copy
import json
import re
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from helpdesk.models import Tenant
from helpdesk.services import Actor
from integrations import services, upsert
from integrations.models import Connection, Fulfillment, Order, OrderLine, Refund, Return, WebhookDelivery
from integrations.normalize import normalize
from integrations.notices_demo import seed_notices
from integrations.notices_models import Notice
from tests.test_drain_batch import pending
from tickets import services as ticket_services
from tickets.models import Customer, Ticket

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
# The fixtures' March dates moved to the last few days: notices only announce fresh events.
SHIFT = (timezone.now().date() - timedelta(days=2)) - date(2026, 3, 3)
RECEIVED = datetime(2026, 3, 6, 9, 0, tzinfo=UTC) + SHIFT
pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="the batched mode is Postgres only")


def payload(platform: str, name: str) -> dict[str, Any]:
    text = (FIXTURES / platform / f"{name}.json").read_text()
    return json.loads(re.sub(r"2026-03-(\d\d)", lambda m: (date(2026, 3, int(m[1])) + SHIFT).isoformat(), text))


def at(day: int, clock: str) -> str:
    """A fixture-calendar time (March `day`, UTC) moved like the fixtures' own dates."""
    return f"{(date(2026, 3, day) + SHIFT).isoformat()}T{clock}:00Z"


def shopify_order(n: int, email: str, customer_id: int | None, updated: str, **changes: Any) -> dict[str, Any]:
    """orders/create as order n (number 3000 + n) of the given customer."""
    data = copy.deepcopy(payload("shopify", "orders__create"))
    data.update(id=6_000_000_000 + n, order_number=3000 + n, name=f"#{3000 + n}", email=email, updated_at=updated)
    if customer_id is None:
        data["customer"] = {"id": None, "email": "", "phone": "+34 600 999 000", "first_name": "Phone", "last_name": ""}
        data["email"] = ""
    else:
        data["customer"] = {**data["customer"], "id": customer_id, "email": email}
    data.update(changes)
    return data


def deliveries() -> list[tuple[str, str, dict[str, Any]]]:
    """(platform, topic, payload): out of order, repeated, stale, cancelled, every child."""
    created = payload("shopify", "orders__create")
    stale = {**copy.deepcopy(created), "updated_at": at(1, "00:00"), "note": "older, ignored"}
    fewer_lines = copy.deepcopy(payload("shopify", "orders__cancelled"))
    fewer_lines["line_items"] = fewer_lines["line_items"][:1]
    fewer_lines["updated_at"] = at(5, "13:00")
    return [
        ("shopify", "fulfillments/create", payload("shopify", "fulfillments__create")),  # before its order
        ("shopify", "orders/create", created),
        ("shopify", "orders/updated", payload("shopify", "orders__updated")),
        ("shopify", "fulfillments/update", payload("shopify", "fulfillments__update")),
        ("shopify", "refunds/create", payload("shopify", "refunds__create")),
        ("shopify", "returns/request", payload("shopify", "returns__request")),
        ("shopify", "orders/create", created),  # a retry: unchanged
        ("shopify", "orders/updated", stale),
        ("shopify", "orders/cancelled", payload("shopify", "orders__cancelled")),
        ("shopify", "orders/updated", fewer_lines),  # a line removed
        # The same customer again (a repeat buyer), a known customer by email (gains the
        # platform id; an open ticket of theirs quotes the order), one by phone only.
        ("shopify", "orders/create", shopify_order(1, "dana@example.org", 7012345678901, at(4, "10:00"))),
        ("shopify", "orders/create", shopify_order(2, "known@example.org", 7100000000002, at(4, "11:00"))),
        ("shopify", "orders/create", shopify_order(3, "", None, at(4, "12:00"))),
        ("shopify", "orders/create", shopify_order(4, "new@example.org", 7100000000004, at(4, "13:00"))),
        ("shopify", "orders/updated", shopify_order(4, "new@example.org", 7100000000004, at(4, "14:00"))),
        ("woocommerce", "order.created", payload("woocommerce", "order.created")),
        ("woocommerce", "order.updated", payload("woocommerce", "order.updated")),
        ("woocommerce", "order.deleted", payload("woocommerce", "order.deleted")),
        ("generic", "fulfillment", payload("generic", "fulfillment")),
        ("generic", "order", payload("generic", "order")),
        ("generic", "refund", payload("generic", "refund")),
        ("generic", "return", payload("generic", "return")),
        (
            "magento",
            "observer.sales_order_save_commit_after",
            payload("magento", "observer.sales_order_save_commit_after--webhook"),
        ),
        (
            "magento",
            "observer.sales_order_shipment_save_after",
            payload("magento", "observer.sales_order_shipment_save_after--io_event"),
        ),
    ]


def setting_up(tenant: Tenant) -> dict[str, Connection]:
    """The tenant's connections, a known customer and their open ticket quoting #3002."""
    seed_notices(tenant)  # every notice rule on, with the starter templates
    known = Customer.objects.create(tenant=tenant, email="known@example.org", name="Known Buyer")
    ticket_services.ticket_create(
        tenant=tenant, subject="Where is #3002?", body="Still waiting.", customer=known, actor=Actor.system()
    )
    return {
        platform: Connection.objects.create(tenant=tenant, platform=platform, name=f"{platform} store")
        for platform in ("shopify", "woocommerce", "generic", "magento")
    }


def items(shops: dict[str, Connection]) -> list[tuple[Connection, list, datetime]]:
    return [
        (shops[platform], normalize(platform, topic, data), RECEIVED + timedelta(seconds=n))
        for n, (platform, topic, data) in enumerate(deliveries())
    ]


def canonical(tenant: Tenant) -> dict[str, Any]:
    """Everything the deliveries wrote, by natural keys (no ids, no write times)."""
    skip = {"id", "tenant_id", "connection_id", "order_id", "customer_id", "created_at", "updated_at"}

    def plain(row: Any) -> dict[str, Any]:
        return {k: v for k, v in row.__dict__.items() if not k.startswith("_") and k not in skip}

    def order_key(order: Order) -> tuple[str, str]:
        return (order.connection.platform, order.external_id)

    orders = Order.objects.filter(tenant=tenant).select_related("connection", "customer")
    children = {}
    for model in (OrderLine, Fulfillment, Refund, Return):
        rows = model.objects.filter(tenant=tenant).select_related("order__connection")
        children[model.__name__] = sorted(
            ((order_key(r.order), r.external_id), plain(r))  # type: ignore[attr-defined]
            for r in rows
        )
    platform_of = {str(c.pk): c.platform for c in Connection.objects.filter(tenant=tenant)}
    customers = []
    for c in Customer.objects.filter(tenant=tenant):
        ids = {f"{k.split(':')[0]}:{platform_of.get(k.split(':')[1], '?')}": v for k, v in c.external_ids.items()}
        customers.append((c.email, c.phone, c.name, c.tier, sorted(ids.items())))
    return {
        "orders": sorted(
            (order_key(o), o.customer.email if o.customer else None, o.customer.phone if o.customer else None, plain(o))
            for o in orders
        ),
        **children,
        "customers": sorted(customers),
        "tickets": sorted(
            (t.subject, t.order.external_id if t.order else None)
            for t in Ticket.objects.filter(tenant=tenant).select_related("order")
        ),
        "notices": sorted(Notice.objects.filter(tenant=tenant).values_list("event", "order__external_id")),
    }


def one_by_one(shops: dict[str, Connection]) -> list[dict[str, int]]:
    with transaction.atomic():
        return [
            upsert.apply(connection=c, records=records, received_at=at, batch=upsert.Batch())
            for c, records, at in items(shops)
        ]


def batched(shops: dict[str, Connection], size: int) -> list[dict[str, int]]:
    counts = []
    work = items(shops)
    for start in range(0, len(work), size):
        with transaction.atomic():
            counts += upsert.apply_many(work[start : start + size], upsert.Batch())
    return counts


@pytest.mark.parametrize("size", [1, 4, 100])
def test_a_batch_writes_what_one_by_one_writes(cast, size):
    sequential = one_by_one(setting_up(cast.tenant))
    together = batched(setting_up(cast.other_tenant), size)
    assert together == sequential
    expected, got = canonical(cast.tenant), canonical(cast.other_tenant)
    # Notices read the rows as they are after the batch: what a later delivery of the same
    # batch superseded is not announced. Here: #1042 is shipped, out for delivery, then
    # cancelled, and Woo's 4750 is created then deleted; every other notice is the same.
    sent, announced = expected.pop("notices"), got.pop("notices")
    assert got == expected
    if size == 1:
        assert announced == sent
    else:
        assert set(announced) <= set(sent)
        assert {order for _, order in set(sent) - set(announced)} <= {"6123456789012", "4750"}
    expected["notices"] = sent
    # What the comparison covers is there at all.
    assert expected["Fulfillment"] and expected["Refund"] and expected["Return"]
    assert ("Where is #3002?", "6000000002") in expected["tickets"]
    assert any(tier == "repeat" for _, _, _, tier, _ in expected["customers"])
    assert {"order_confirmed", "shipped", "refund_issued"} <= {event for event, _ in expected["notices"]}


def test_a_second_batch_reads_what_the_first_wrote(cast):
    shops = setting_up(cast.other_tenant)
    first = batched(shops, 100)
    again = batched(shops, 100)  # every row exists now: all read up front, nothing new
    assert sum(c["created"] for c in first) > 0
    assert sum(c["created"] + c["updated"] + c["placeholders"] for c in again) == 0
    assert Order.objects.filter(tenant=cast.other_tenant).count() == len(
        {o[0] for o in canonical(cast.other_tenant)["orders"]}
    )


def test_the_records_a_batch_takes(cast):
    order = normalize("shopify", "orders/create", payload("shopify", "orders__create"))
    redact = normalize("shopify", "customers/redact", payload("shopify", "customers__redact"))
    assert upsert.batchable(order)
    assert not upsert.batchable([*order, *redact])  # privacy requests go one by one


@pytest.mark.django_db(transaction=True)
def test_a_row_a_concurrent_delivery_inserted_meanwhile_redoes_the_batch_one_by_one(cast, monkeypatch):
    shop = Connection.objects.create(tenant=cast.tenant, platform="shopify", name="Acme Shopify")
    row = pending(shop, json.dumps(payload("shopify", "orders__create")), 1)
    real_write = upsert._Work.write
    writes = []

    def meanwhile(work):
        # Another worker commits the same order between this batch's reads and its writes.
        def other():
            try:
                Order.objects.create(tenant=cast.tenant, connection=shop, external_id="6123456789012", number="1042")
            finally:
                connections.close_all()

        if not writes:
            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
        writes.append(1)
        return real_write(work)

    monkeypatch.setattr(upsert._Work, "write", meanwhile)
    assert services.delivery_drain(tenant=cast.tenant) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == (WebhookDelivery.State.DONE, 1)
    order = Order.objects.get(connection=shop)  # one row: the other's, updated by the redo
    assert order.name == "#1042" and order.lines.count() == 2
    assert order.customer is not None and order.customer.email == "dana@example.org"


def test_a_batch_touches_only_its_own_tenant(cast):
    mine = setting_up(cast.tenant)
    theirs = setting_up(cast.other_tenant)
    batched(mine, 100)
    assert not Order.objects.filter(tenant=cast.other_tenant).exists()
    assert Customer.objects.filter(tenant=cast.other_tenant).count() == 1  # their known customer only
    assert not Customer.objects.get(tenant=cast.other_tenant).external_ids
    assert theirs  # connections exist, untouched


def test_ids_left_unused_by_a_batch_are_only_gaps(cast):
    shops = setting_up(cast.tenant)
    batched(shops, 100)
    batched(shops, 100)
    later = Order.objects.create(tenant=cast.tenant, connection=shops["shopify"], external_id="x", number="9")
    assert later.pk > max(Order.objects.exclude(pk=later.pk).values_list("pk", flat=True))
