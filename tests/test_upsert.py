"""Applying normalised records to order rows: upserts, staleness, idempotency, out-of-order
children, refunds, customer linking and tiers, privacy redaction and tenant isolation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from helpdesk.models import AuditLog
from integrations.models import Connection, Fulfillment, Order, OrderLine, Refund, Return
from integrations.normalize import normalize
from integrations.normalized import NCustomer, NFulfillment, NOrder
from integrations.upsert import apply
from tests.tickets_fixtures import make_ticket
from tickets.models import Customer, Message, Ticket

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
ORDER_ID = "6123456789012"


def body(platform: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / platform / f"{name}.json").read_text())


def records(platform: str, name: str, payload: dict | None = None) -> list:
    topic = name.split("--")[0].replace("__", "/")
    return normalize(platform, topic, payload if payload is not None else body(platform, name))


def feed(connection: Connection, name: str, payload: dict | None = None, **kwargs: Any) -> dict[str, int]:
    """Parse a fixture of the connection's platform and apply it."""
    return apply(connection=connection, records=records(connection.platform, name, payload), **kwargs)


def only(**counts: int) -> dict[str, int]:
    keys = (
        "created",
        "updated",
        "unchanged",
        "stale",
        "ignored",
        "placeholders",
        "redacted",
        "data_requests",
    )
    return {key: counts.get(key, 0) for key in keys}


def snapshot(connection: Connection) -> list:
    """Every row under the connection, as plain values."""
    orders = Order.objects.filter(connection=connection)
    return [
        list(orders.order_by("external_id").values()),
        list(OrderLine.objects.filter(order__connection=connection).order_by("external_id").values()),
        list(Fulfillment.objects.filter(order__connection=connection).order_by("external_id").values()),
        list(Refund.objects.filter(order__connection=connection).order_by("external_id").values()),
        list(Return.objects.filter(order__connection=connection).order_by("external_id").values()),
        list(Customer.objects.order_by("pk").values()),
    ]


@pytest.fixture
def shop(cast) -> Connection:
    return Connection.objects.create(tenant=cast.tenant, platform="shopify", name="Acme Shopify")


@pytest.fixture
def woo(cast) -> Connection:
    return Connection.objects.create(tenant=cast.tenant, platform="woocommerce", name="Acme Woo")


@pytest.fixture
def magento(cast) -> Connection:
    return Connection.objects.create(tenant=cast.tenant, platform="magento", name="Acme Magento")


@pytest.fixture
def generic(cast) -> Connection:
    return Connection.objects.create(tenant=cast.tenant, platform="generic", name="Acme ERP")


def order_of(connection: Connection, external_id: str = ORDER_ID) -> Order:
    return Order.objects.get(connection=connection, external_id=external_id)


# --- Orders -------------------------------------------------------------------------------


def test_a_new_order_creates_the_order_its_lines_and_its_customer(shop, cast):
    assert feed(shop, "orders__create") == only(created=1)
    order = order_of(shop)
    assert order.tenant_id == cast.tenant.pk
    assert (order.number, order.name, order.email, order.currency) == (
        "1042",
        "#1042",
        "dana@example.org",
        "EUR",
    )
    assert (order.total, order.subtotal, order.total_tax) == (
        Decimal("39.90"),
        Decimal("29.90"),
        Decimal("6.37"),
    )
    assert (order.financial_status, order.fulfillment_status) == ("paid", "unfulfilled")
    assert order.platform_updated_at == datetime(2026, 3, 2, 14, 5, 10, tzinfo=UTC)
    assert order.shipping_address["zip"] == "28013"
    assert sorted(order.lines.values_list("external_id", "quantity")) == [
        ("15001", 2),
        ("15002", 1),
    ]
    customer = order.customer
    assert customer is not None
    assert (customer.email, customer.name, customer.tier) == (
        "dana@example.org",
        "Dana Ruiz",
        "new",
    )
    assert customer.external_ids == {f"shopify:{shop.pk}": "7012345678901"}


def test_a_newer_update_changes_the_order_replaces_lines_and_adds_nested_children(shop):
    feed(shop, "orders__create")
    OrderLine.objects.create(tenant=shop.tenant, order=order_of(shop), external_id="stray", title="Gone")
    assert feed(shop, "orders__updated") == only(updated=1, created=2)
    order = order_of(shop)
    assert (order.financial_status, order.fulfillment_status) == ("partially_refunded", "partial")
    assert sorted(order.lines.values_list("external_id", "fulfillment_status")) == [
        ("15001", "fulfilled"),
        ("15002", ""),
    ]
    fulfillment = order.fulfillments.get()
    assert (fulfillment.status, fulfillment.carrier) == ("in_transit", "DHL Express")
    assert order.refunds.get().amount == Decimal("5.00")
    assert order.refunded_total == Decimal("5.00")


def test_an_older_update_arriving_after_a_newer_one_is_stale_and_overwrites_nothing(shop):
    feed(shop, "orders__updated")
    before = snapshot(shop)
    counts = feed(shop, "orders__create")
    assert counts["stale"] == 1
    assert snapshot(shop) == before
    assert order_of(shop).financial_status == "partially_refunded"


def test_an_update_with_the_same_updated_at_is_a_no_op(shop):
    feed(shop, "orders__create")
    payload = {**body("shopify", "orders__create"), "note": "changed without a new timestamp"}
    assert feed(shop, "orders__create", payload) == only(unchanged=1)
    assert order_of(shop).note == "Please gift wrap"


@pytest.mark.parametrize(
    "names",
    [
        (
            "orders__create",
            "orders__updated",
            "fulfillments__update",
            "refunds__create",
            "returns__request",
        ),
        ("fulfillments__create", "orders__cancelled", "fulfillments__update--future_status"),
    ],
)
def test_applying_the_same_deliveries_twice_changes_nothing(shop, names):
    for name in names:
        feed(shop, name)
    before = snapshot(shop)
    for name in names:
        counts = feed(shop, name)
        assert counts["created"] == counts["updated"] == counts["placeholders"] == 0, (name, counts)
    assert snapshot(shop) == before


def test_a_cancellation_records_the_cancel_time_and_reason(shop):
    feed(shop, "orders__create")
    feed(shop, "orders__cancelled")
    order = order_of(shop)
    assert order.cancelled_at == datetime(2026, 3, 5, 11, 0, tzinfo=UTC)
    assert (order.cancel_reason, order.platform_status) == ("customer", "cancelled")


# --- Fulfillments ---------------------------------------------------------------------------


def test_a_fulfillment_before_its_order_makes_a_placeholder_that_the_order_fills_in(shop):
    assert feed(shop, "fulfillments__create") == only(created=1, placeholders=1)
    placeholder = order_of(shop)
    assert (placeholder.number, placeholder.name, placeholder.platform_updated_at) == (
        "1042",
        "#1042",
        None,
    )
    assert feed(shop, "orders__create") == only(updated=1)
    order = order_of(shop)
    assert order.pk == placeholder.pk
    assert (order.email, order.total) == ("dana@example.org", Decimal("39.90"))
    assert order.fulfillments.get().status == "label_created"
    assert Order.objects.filter(connection=shop).count() == 1


def test_fulfillment_status_changes_append_events_and_stamp_the_times(shop):
    feed(shop, "orders__create")
    feed(shop, "fulfillments__create")
    feed(shop, "fulfillments__update")
    fulfillment = Fulfillment.objects.get(order__connection=shop)
    assert fulfillment.status == "out_for_delivery"
    assert [e["status"] for e in fulfillment.events] == ["label_created", "out_for_delivery"]
    assert fulfillment.events[1] == {
        "at": "2026-03-04T08:12:00+01:00",
        "status": "out_for_delivery",
        "message": "out_for_delivery",
    }
    assert fulfillment.shipped_at == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert fulfillment.last_event_at == datetime(2026, 3, 4, 7, 12, tzinfo=UTC)
    assert fulfillment.tracking_url  # kept although the update did not repeat it

    delivered = {
        **body("shopify", "fulfillments__update"),
        "shipment_status": "delivered",
        "updated_at": "2026-03-04T13:00:00+01:00",
    }
    feed(shop, "fulfillments__update", delivered)
    fulfillment.refresh_from_db()
    assert (fulfillment.status, fulfillment.delivered_at) == (
        "delivered",
        datetime(2026, 3, 4, 12, 0, tzinfo=UTC),
    )
    assert len(fulfillment.events) == 3


def test_an_older_fulfillment_update_never_rolls_the_status_back(shop):
    feed(shop, "fulfillments__update--future_status")  # 11:40, in transit (unknown word)
    assert feed(shop, "fulfillments__update")["stale"] == 1  # 08:12, out for delivery
    fulfillment = Fulfillment.objects.get(order__connection=shop)
    assert (fulfillment.status, fulfillment.shipment_status) == ("in_transit", "held_at_customs")


def test_tracking_without_carrier_progress_never_overwrites_a_carrier_status(woo):
    feed(woo, "order.updated")
    shipment = Fulfillment.objects.get(order__connection=woo)
    shipped = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
    assert (shipment.status, shipment.shipped_at, shipment.last_event_at) == (
        "in_transit",
        shipped,
        shipped,
    )
    assert shipment.events == [{"at": shipped.isoformat(), "status": "in_transit", "message": ""}]
    Fulfillment.objects.filter(pk=shipment.pk).update(status="delivered")  # as a carrier feed would
    newer = {**body("woocommerce", "order.updated"), "date_modified_gmt": "2026-03-05T10:00:00"}
    feed(woo, "order.updated", newer)
    shipment.refresh_from_db()
    assert shipment.status == "delivered"


# --- Refunds, returns ---------------------------------------------------------------------


def test_refunds_recompute_the_refunded_total_without_double_counting(shop):
    feed(shop, "orders__updated")  # carries refund 8880001: 5.00
    feed(shop, "refunds__create")  # 8880002: 14.95 (its failed transaction does not count)
    feed(shop, "refunds__create")
    order = order_of(shop)
    assert order.refunded_total == Decimal("19.95")
    assert order.refundable == Decimal("19.95")
    assert sorted(order.refunds.values_list("external_id", flat=True)) == ["8880001", "8880002"]


def test_woocommerce_refunds_arrive_inside_the_order_and_count_positively(woo):
    feed(woo, "order.created")
    feed(woo, "order.updated")
    order = order_of(woo, "4750")
    assert order.refunded_total == Decimal("10.00")
    assert (order.financial_status, order.fulfillment_status, order.platform_status) == (
        "partially_refunded",
        "fulfilled",
        "completed",
    )


def test_a_platform_reported_refunded_total_is_a_floor(magento):
    payload = body("magento", "observer.sales_order_save_commit_after--webhook")
    payload["data"]["order"]["total_refunded"] = "12.5000"
    feed(magento, "observer.sales_order_save_commit_after--webhook", payload)
    assert order_of(magento, "118").refunded_total == Decimal("12.50")


def test_a_return_is_upserted_under_its_order_and_stale_updates_are_ignored(shop):
    feed(shop, "orders__create")
    newer = {
        **body("shopify", "returns__request"),
        "status": "open",
        "updated_at": "2026-03-08T10:00:00Z",
    }
    older = {
        **body("shopify", "returns__request"),
        "status": "requested",
        "updated_at": "2026-03-07T10:00:00Z",
    }
    apply(connection=shop, records=normalize("shopify", "returns/approve", newer))
    assert apply(connection=shop, records=normalize("shopify", "returns/request", older))["stale"] == 1
    ret = Return.objects.get(order__connection=shop)
    assert (ret.status, ret.name, ret.lines[0]["line_item_id"]) == ("open", "#1042-R1", "15001")
    assert ret.order_id == order_of(shop).pk


# --- Deletions and partial records -------------------------------------------------------------


def test_a_woocommerce_deletion_keeps_the_order_marked_trashed_and_cancelled(woo):
    feed(woo, "order.created")
    received = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)
    assert feed(woo, "order.deleted", received_at=received) == only(updated=1)
    order = order_of(woo, "4750")
    assert (order.platform_status, order.cancelled_at) == ("trash", received)
    assert (order.number, order.total, order.lines.count()) == ("4750", Decimal("54.00"), 1)
    assert order.platform_updated_at == datetime(2026, 3, 2, 14, 15, 4, tzinfo=UTC)  # platform clock kept
    assert feed(woo, "order.deleted", received_at=received) == only(unchanged=1)


def test_a_restore_after_a_deletion_reopens_the_order(woo):
    feed(woo, "order.created")
    feed(woo, "order.deleted", received_at=datetime(2026, 3, 6, 9, 0, tzinfo=UTC))
    restored = {**body("woocommerce", "order.created"), "date_modified_gmt": "2026-03-06T09:30:00"}
    apply(connection=woo, records=normalize("woocommerce", "order.restored", restored))
    order = order_of(woo, "4750")
    assert (order.platform_status, order.cancelled_at) == ("processing", None)


def test_a_deletion_of_an_order_never_seen_is_ignored(woo):
    assert feed(woo, "order.deleted") == only(ignored=1)
    assert not Order.objects.filter(connection=woo).exists()


def test_a_deletion_received_before_the_stored_update_is_stale(woo):
    feed(woo, "order.updated")  # modified 2026-03-04 16:02 UTC
    early = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    assert feed(woo, "order.deleted", received_at=early)["stale"] == 1
    assert order_of(woo, "4750").platform_status == "completed"


def test_a_partial_magento_event_updates_only_the_fields_it_carries(magento):
    feed(magento, "observer.sales_order_save_commit_after--webhook")
    event = body("magento", "observer.sales_order_save_commit_after--io_event")
    event["data"]["value"]["status"] = "complete"
    event["time"] = "2026-03-03T10:00:00Z"
    assert feed(magento, "observer.sales_order_save_commit_after--io_event", event) == only(updated=1)
    order = order_of(magento, "118")
    assert (order.platform_status, order.fulfillment_status) == ("complete", "fulfilled")
    assert (order.currency, order.subtotal, order.phone) == (
        "USD",
        Decimal("60.00"),
        "+12065550100",
    )
    assert order.shipping_address["city"] == "Seattle"
    assert order.lines.count() == 2


def test_a_magento_shipment_for_an_unknown_order_makes_a_placeholder(magento):
    assert feed(magento, "observer.sales_order_shipment_save_after--io_event") == only(created=1, placeholders=1)
    feed(magento, "observer.sales_order_save_commit_after--webhook")
    order = order_of(magento, "118")
    assert order.number == "000000118"
    assert order.fulfillments.get().tracking_number == "1Z999AA10123456784"


def test_the_generic_format_flows_end_to_end(generic):
    for name in ("fulfillment", "refund", "return", "order"):
        feed(generic, name)
    order = order_of(generic, "A-1001")
    assert (order.number, order.total, order.refunded_total) == (
        "1001",
        Decimal("499.00"),
        Decimal("99.00"),
    )
    assert order.fulfillments.get().status == "out_for_delivery"
    assert order.returns.get().status == "requested"
    assert order.customer is not None and order.customer.external_ids == {f"generic:{generic.pk}": "C-7"}


# --- Customers and tiers ------------------------------------------------------------------------


def test_a_customer_is_found_by_platform_id_before_email(shop, cast):
    known = Customer.objects.create(
        tenant=cast.tenant,
        email="old-address@example.org",
        external_ids={f"shopify:{shop.pk}": "7012345678901"},
    )
    Customer.objects.create(tenant=cast.tenant, email="dana@example.org", name="Another Dana")
    feed(shop, "orders__create")
    assert order_of(shop).customer_id == known.pk


def test_a_customer_is_found_by_email_ignoring_case_and_gets_the_platform_id(woo, cast):
    ticket = make_ticket(cast, email="lee@example.com", name="Lee P.")
    feed(woo, "order.created")  # billing email "Lee@Example.com", customer_id 31
    order = order_of(woo, "4750")
    assert order.customer_id == ticket.customer_id
    customer = Customer.objects.get(pk=ticket.customer_id)
    assert customer.external_ids == {f"woocommerce:{woo.pk}": "31"}
    assert (customer.name, customer.phone) == (
        "Lee P.",
        "+15550001",
    )  # name kept, blank phone filled
    assert Customer.objects.filter(tenant=cast.tenant, email__iexact="lee@example.com").count() == 1


def test_an_arriving_order_is_linked_to_the_open_ticket_that_quotes_its_number(shop, cast):
    asking = make_ticket(cast, email="dana@example.org", subject="Where is my order #1042?")
    other = make_ticket(cast, email="dana@example.org", subject="Do you ship to Italy?")
    feed(shop, "orders__create")
    order = order_of(shop)
    assert Ticket.objects.get(pk=asking.pk).order_id == order.pk
    assert Ticket.objects.get(pk=other.pk).order_id is None


def _order(external_id: str, total: str, *, at: int = 1) -> NOrder:
    return NOrder(
        external_id=external_id,
        number=external_id,
        updated_at=datetime(2026, 3, at, tzinfo=UTC),
        total=Decimal(total),
        currency="EUR",
        customer=NCustomer(external_id="c-1", email="vip@example.com", name="Val"),
    )


def test_order_history_raises_the_customer_tier_but_never_lowers_it(shop, cast):
    apply(connection=shop, records=[_order("1", "20.00")])
    customer = Customer.objects.get(tenant=cast.tenant, email="vip@example.com")
    assert customer.tier == "new"
    apply(connection=shop, records=[_order("2", "30.00")])
    customer.refresh_from_db()
    assert customer.tier == "repeat"
    apply(connection=shop, records=[_order("3", "999.00")])
    customer.refresh_from_db()
    assert customer.tier == "vip"

    other = Customer.objects.create(tenant=cast.tenant, email="hand-picked@example.com", tier="vip")
    record = NOrder(
        external_id="9",
        number="9",
        updated_at=datetime(2026, 3, 1, tzinfo=UTC),
        total=Decimal("5"),
        customer=NCustomer(email="hand-picked@example.com"),
    )
    apply(connection=shop, records=[record])
    other.refresh_from_db()
    assert other.tier == "vip"


def test_a_new_customers_first_order_sets_their_tier_from_that_order_alone(shop, cast):
    # The customer is created by this apply, so their history is this order (no query).
    apply(connection=shop, records=[_order("1", "1500.00")])
    assert Customer.objects.get(tenant=cast.tenant, email="vip@example.com").tier == "vip"
    cancelled = NOrder(
        external_id="2",
        number="2",
        updated_at=datetime(2026, 3, 1, tzinfo=UTC),
        total=Decimal("5000"),
        cancelled_at=datetime(2026, 3, 1, tzinfo=UTC),
        customer=NCustomer(external_id="c-2", email="second@example.com"),
    )
    apply(connection=shop, records=[cancelled])
    assert Customer.objects.get(tenant=cast.tenant, email="second@example.com").tier == "new"


def test_ten_small_orders_make_a_vip(shop, cast):
    apply(connection=shop, records=[_order(str(n), "1.00") for n in range(10)])
    assert Customer.objects.get(tenant=cast.tenant, email="vip@example.com").tier == "vip"


# --- Privacy ----------------------------------------------------------------------------------


def test_a_customer_redaction_removes_personal_data_from_orders_tickets_and_the_customer(shop, cast):
    feed(shop, "orders__updated")
    customer = order_of(shop).customer
    assert customer is not None
    ticket = make_ticket(cast, email="dana@example.org", body="My address is Calle Mayor 5")
    bystander = make_ticket(cast, email="someone@example.com", body="Untouched")
    assert ticket.customer_id == customer.pk

    assert feed(shop, "customers__redact") == only(redacted=1)
    order = order_of(shop)
    assert (
        order.email,
        order.phone,
        order.note,
        order.shipping_address,
        order.billing_address,
    ) == ("", "", "", {}, {})
    assert order.redacted_at is not None
    assert set(Message.objects.filter(ticket=ticket).values_list("body_text", flat=True)) == {"[redacted]"}
    assert Ticket.objects.get(pk=ticket.pk).snippet == "[redacted]"
    assert Message.objects.filter(ticket=bystander).get().body_text == "Untouched"
    customer.refresh_from_db()
    assert (customer.email, customer.name, customer.phone, customer.external_ids) == (
        "",
        "",
        "",
        {},
    )
    assert AuditLog.objects.filter(tenant=cast.tenant, action="customer.redact").count() == 1

    assert feed(shop, "customers__redact") == only(unchanged=1)
    later = {**body("shopify", "orders__cancelled"), "updated_at": "2026-04-01T00:00:00Z"}
    feed(shop, "orders__cancelled", later)  # a late retry must not bring the data back
    order.refresh_from_db()
    assert (order.email, order.shipping_address, order.cancel_reason) == ("", {}, "customer")


def test_a_shop_redaction_redacts_every_order_of_that_connection_only(shop, woo, cast):
    feed(shop, "orders__create")
    feed(
        shop,
        "orders__create",
        {**body("shopify", "orders__create"), "id": 6123456789999, "order_number": 1043},
    )
    feed(woo, "order.created")
    assert feed(shop, "shop__redact") == only(redacted=1)
    redacted = [(o.email, o.redacted_at is not None) for o in Order.objects.filter(connection=shop)]
    assert redacted == [("", True), ("", True)]
    assert order_of(woo, "4750").email == "Lee@Example.com"
    customer = Customer.objects.get(tenant=cast.tenant, email="dana@example.org")
    assert customer.external_ids == {}
    assert Customer.objects.get(tenant=cast.tenant, email="lee@example.com").external_ids == {
        f"woocommerce:{woo.pk}": "31"
    }


def test_a_data_request_changes_nothing_and_is_recorded_once(shop, cast):
    feed(shop, "orders__create")
    before = snapshot(shop)
    assert feed(shop, "customers__data_request") == only(data_requests=1)
    feed(shop, "customers__data_request")
    assert snapshot(shop) == before
    entry = AuditLog.objects.get(tenant=cast.tenant, action="customer.data_request")
    assert entry.changes["orders_requested"] == [ORDER_ID]
    assert entry.target_id == str(order_of(shop).customer_id)


# --- Tenancy ------------------------------------------------------------------------------------


def test_records_for_one_tenant_never_touch_another_tenants_rows(cast):
    mine = Connection.objects.create(tenant=cast.tenant, platform="shopify", name="A")
    theirs = Connection.objects.create(tenant=cast.other_tenant, platform="shopify", name="B")
    feed(theirs, "orders__updated")
    their_rows = snapshot(theirs)
    their_customer = Customer.objects.get(tenant=cast.other_tenant)

    assert feed(mine, "orders__create")["created"] == 1  # same external id, separate row
    feed(mine, "fulfillments__update")
    feed(mine, "refunds__create")
    feed(mine, "customers__redact")
    feed(mine, "shop__redact")

    assert Order.objects.filter(external_id=ORDER_ID).count() == 2
    mine_order = order_of(mine)
    assert mine_order.tenant_id == cast.tenant.pk
    assert mine_order.customer is not None and mine_order.customer.tenant_id == cast.tenant.pk
    assert mine_order.customer_id != their_customer.pk
    theirs_now = snapshot(theirs)
    # Customer rows of tenant A changed (redacted); compare tenant B's rows only.
    assert theirs_now[:5] == their_rows[:5]
    their_customer_now = Customer.objects.get(pk=their_customer.pk)
    assert (their_customer_now.email, their_customer_now.external_ids) == (
        "dana@example.org",
        {f"shopify:{theirs.pk}": "7012345678901"},
    )


def test_a_fulfillment_record_only_finds_orders_of_its_own_connection(cast):
    mine = Connection.objects.create(tenant=cast.tenant, platform="shopify", name="A")
    theirs = Connection.objects.create(tenant=cast.other_tenant, platform="shopify", name="B")
    feed(theirs, "orders__create")
    record = NFulfillment(external_id="1", order_external_id=ORDER_ID, status="delivered")
    assert apply(connection=mine, records=[record])["placeholders"] == 1
    assert not Fulfillment.objects.filter(tenant=cast.other_tenant).exists()


@pytest.mark.django_db
def test_the_platform_id_index_keeps_no_pending_list():
    """Every order event looks a customer up by platform id: with GIN's fastupdate each
    lookup also scans the pending list of recent inserts (5.7 ms instead of 0.45 ms on the
    bench), so the index is built without one (tickets migration 0008)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a Postgres index")
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'customer_external_ids'")
        row = cursor.fetchone()
    assert row is not None, "the GIN index of migration 0007"
    assert "fastupdate=off" in (row[0] or [])
