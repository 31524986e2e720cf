"""The platform payload parsers: fixtures in, normalised records out. Pure: no database.

Fixtures live in tests/fixtures/webhooks/<platform>/<topic with "/" as "__">[--variant].json
and hold the body only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from integrations.normalize import canonical_shipment_status, money, normalize, timestamp
from integrations.normalized import (
    NDataRequest,
    NFulfillment,
    NOrder,
    NRedact,
    NRefund,
    NReturn,
    PayloadError,
)

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"
CET = timezone(timedelta(hours=1))


def body(platform: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / platform / f"{name}.json").read_text())


def topic_of(name: str) -> str:
    return name.split("--")[0].replace("__", "/")


def parse(platform: str, name: str, payload: dict | None = None, topic: str | None = None) -> list:
    return normalize(platform, topic or topic_of(name), payload if payload is not None else body(platform, name))


def one(platform: str, name: str, payload: dict | None = None, topic: str | None = None) -> Any:
    records = parse(platform, name, payload, topic)
    assert len(records) == 1, records
    return records[0]


def fails(platform: str, topic: str, payload: dict) -> str:
    with pytest.raises(PayloadError) as info:
        normalize(platform, topic, payload)
    return str(info.value)


PLATFORMS = ("shopify", "woocommerce", "magento", "generic")
ALL_FIXTURES = sorted((platform, path.stem) for platform in PLATFORMS for path in (FIXTURES / platform).glob("*.json"))


@pytest.mark.parametrize(("platform", "name"), ALL_FIXTURES)
def test_every_fixture_parses_into_at_least_one_record(platform, name):
    assert parse(platform, name)


# --- Shopify -----------------------------------------------------------------------------


def test_a_shopify_order_becomes_one_full_snapshot_with_exact_ids_money_and_times():
    order = one("shopify", "orders__create")
    assert isinstance(order, NOrder)
    assert order.external_id == "6123456789012"  # 64-bit id kept exactly, as text
    assert (order.number, order.name) == ("1042", "#1042")
    assert order.provided is None
    assert order.updated_at == datetime(2026, 3, 2, 14, 5, 10, tzinfo=UTC)
    assert order.updated_at.utcoffset() == timedelta(hours=1)
    assert order.placed_at == datetime(2026, 3, 2, 15, 5, 9, tzinfo=CET)
    assert (order.total, order.subtotal, order.total_tax) == (
        Decimal("39.90"),
        Decimal("29.90"),
        Decimal("6.37"),
    )
    assert isinstance(order.total, Decimal)
    assert (order.currency, order.email, order.phone) == ("EUR", "dana@example.org", "+34600111222")
    assert (order.financial_status, order.fulfillment_status, order.platform_status) == (
        "paid",
        "unfulfilled",
        "open",
    )
    assert order.cancelled_at is None and order.cancel_reason == ""
    assert order.tags == "first-order, socks" and order.note == "Please gift wrap"
    assert order.shipping_address["city"] == "Madrid" and "company" not in order.shipping_address
    assert order.customer is not None
    assert (order.customer.external_id, order.customer.email, order.customer.name) == (
        "7012345678901",
        "dana@example.org",
        "Dana Ruiz",
    )
    assert [(li.external_id, li.title, li.quantity, li.price, li.sku) for li in order.lines] == [
        ("15001", "Red socks - M", 2, Decimal("14.95"), "SOCK-RED-M"),
        ("15002", "Gift box", 1, Decimal("0.00"), "GIFT-BOX"),
    ]
    assert order.fulfillments == [] and order.refunds == []


@pytest.mark.parametrize(
    "topic",
    [
        "orders/create",
        "orders/updated",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
        "orders/paid",
        "orders/edited",
    ],
)
def test_every_shopify_order_topic_yields_an_order(topic):
    assert isinstance(one("shopify", "orders__create", topic=topic), NOrder)


def test_an_updated_shopify_order_carries_its_nested_fulfillments_and_refunds():
    order = one("shopify", "orders__updated")
    assert order.fulfillment_status == "partial"
    (fulfillment,) = order.fulfillments
    assert fulfillment.order_external_id == "6123456789012"
    assert (fulfillment.status, fulfillment.shipment_status) == ("in_transit", "in_transit")
    assert fulfillment.order_number == "1042"
    (refund,) = order.refunds
    assert (refund.external_id, refund.amount, refund.currency) == (
        "8880001",
        Decimal("5.00"),
        "EUR",
    )
    assert refund.lines == [{"line_item_id": "15002", "quantity": 1, "restock_type": "no_restock", "subtotal": "0.00"}]


def test_a_cancelled_shopify_order_has_its_cancel_time_and_reason():
    order = one("shopify", "orders__cancelled")
    assert order.cancelled_at == datetime(2026, 3, 5, 11, 0, tzinfo=UTC)
    assert (order.cancel_reason, order.platform_status, order.financial_status) == (
        "customer",
        "cancelled",
        "refunded",
    )


def test_an_order_edit_body_without_the_order_is_ignored():
    edit = {"order_edit": {"id": 1, "order_id": 6123456789012, "line_items": {"additions": []}}}
    assert normalize("shopify", "orders/edited", edit) == []


def test_a_shopify_order_without_updated_at_falls_back_to_created_at():
    payload = body("shopify", "orders__create")
    del payload["updated_at"]
    assert one("shopify", "orders__create", payload).updated_at == datetime(2026, 3, 2, 14, 5, 9, tzinfo=UTC)


def test_a_guest_shopify_order_still_names_its_customer_by_email():
    payload = body("shopify", "orders__create")
    payload["customer"] = None
    order = one("shopify", "orders__create", payload)
    assert order.customer is not None
    assert (order.customer.external_id, order.customer.email, order.customer.name) == (
        "",
        "dana@example.org",
        "Dana Ruiz",
    )


def test_a_new_shopify_fulfillment_with_tracking_but_no_scan_is_label_created():
    fulfillment = one("shopify", "fulfillments__create")
    assert isinstance(fulfillment, NFulfillment)
    assert (fulfillment.external_id, fulfillment.order_external_id) == ("5550001", "6123456789012")
    assert (fulfillment.status, fulfillment.platform_status) == ("label_created", "success")
    assert (fulfillment.carrier, fulfillment.tracking_number) == (
        "DHL Express",
        "JD014600006281234567",
    )
    assert fulfillment.shipped_at == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    assert fulfillment.order_number == "1042"  # from the name "#1042.1"


def test_a_shopify_fulfillment_out_for_delivery_maps_to_the_canonical_status():
    fulfillment = one("shopify", "fulfillments__update")
    assert (fulfillment.status, fulfillment.shipment_status) == (
        "out_for_delivery",
        "out_for_delivery",
    )
    assert fulfillment.updated_at == datetime(2026, 3, 4, 7, 12, tzinfo=UTC)
    assert fulfillment.tracking_number == "JD014600006281234567"  # from tracking_numbers[]


def test_an_unknown_future_shipment_status_is_tolerated_as_in_transit_and_kept_raw():
    fulfillment = one("shopify", "fulfillments__update--future_status")
    assert (fulfillment.status, fulfillment.shipment_status) == ("in_transit", "held_at_customs")


@pytest.mark.parametrize(
    ("shipment_status", "canonical"),
    [
        ("label_printed", "label_created"),
        ("label_purchased", "label_created"),
        ("confirmed", "label_created"),
        ("in_transit", "in_transit"),
        ("carrier_picked_up", "in_transit"),
        ("out_for_delivery", "out_for_delivery"),
        ("ready_for_pickup", "pickup_ready"),
        ("attempted_delivery", "attempt_failed"),
        ("delivered", "delivered"),
        ("picked_up", "delivered"),
        ("failure", "exception"),
        ("delayed", "exception"),
    ],
)
def test_shopify_shipment_statuses_follow_the_contract_table(shipment_status, canonical):
    payload = {**body("shopify", "fulfillments__update"), "shipment_status": shipment_status}
    assert one("shopify", "fulfillments__update", payload).status == canonical


@pytest.mark.parametrize(
    ("status", "shipment_status", "tracking", "canonical"),
    [
        ("cancelled", "in_transit", "X1", "exception"),
        ("error", None, "X1", "exception"),
        ("pending", None, "", "label_created"),
        ("open", None, "X1", "label_created"),
        ("success", None, "", "unknown"),
        ("pending", "something_new", "X1", "unknown"),
    ],
)
def test_shopify_fulfillment_states_without_a_known_scan_map_sensibly(status, shipment_status, tracking, canonical):
    payload = {
        **body("shopify", "fulfillments__update"),
        "status": status,
        "shipment_status": shipment_status,
        "tracking_numbers": [tracking] if tracking else [],
    }
    assert one("shopify", "fulfillments__update", payload).status == canonical


def test_a_shopify_refund_sums_only_its_successful_refund_transactions():
    refund = one("shopify", "refunds__create")
    assert isinstance(refund, NRefund)
    assert (refund.external_id, refund.order_external_id) == ("8880002", "6123456789012")
    assert refund.amount == Decimal("14.95")
    assert refund.processed_at == datetime(2026, 3, 6, 8, 15, tzinfo=UTC)
    assert refund.note == "One pair arrived damaged"


def test_a_shopify_return_request_lists_its_lines_and_order():
    ret = one("shopify", "returns__request")
    assert isinstance(ret, NReturn)
    assert (ret.external_id, ret.order_external_id, ret.status, ret.name, ret.order_number) == (
        "9990001",
        "6123456789012",
        "requested",
        "#1042-R1",
        "1042",
    )
    assert ret.lines == [
        {
            "id": "11110001",
            "line_item_id": "15001",
            "quantity": 1,
            "reason": "size_too_small",
            "reason_note": "",
            "customer_note": "Runs small, I need an L",
        }
    ]


def test_a_return_without_a_status_takes_it_from_the_topic_and_keeps_the_decline_reason():
    payload = {**body("shopify", "returns__request"), "decline_reason": "RETURN_PERIOD_ENDED"}
    del payload["status"]
    ret = one("shopify", "returns__request", payload, topic="returns/decline")
    assert (ret.status, ret.decline_reason) == ("declined", "RETURN_PERIOD_ENDED")


def test_the_privacy_topics_become_redactions_and_data_requests():
    request = one("shopify", "customers__data_request")
    assert request == NDataRequest(
        customer_email="dana@example.org",
        customer_external_id="7012345678901",
        order_external_ids=["6123456789012"],
    )
    assert one("shopify", "customers__redact") == NRedact(
        customer_email="dana@example.org",
        customer_external_id="7012345678901",
        order_external_ids=["6123456789012"],
    )
    assert one("shopify", "shop__redact") == NRedact(whole_shop=True)


@pytest.mark.parametrize("topic", ["customers/update", "products/create", "app/uninstalled", "carts/update", ""])
def test_shopify_topics_we_do_not_use_give_no_records(topic):
    assert normalize("shopify", topic, {"id": 1}) == []


@pytest.mark.parametrize(
    ("topic", "change", "field"),
    [
        ("orders/create", {"id": None}, "id"),
        ("orders/create", {"updated_at": None, "created_at": None}, "updated_at"),
        ("orders/create", {"order_number": None, "name": None}, "order_number"),
        ("orders/create", {"total_price": "12,50"}, "total_price"),
        ("orders/create", {"created_at": "yesterday"}, "created_at"),
        (
            "orders/create",
            {"line_items": [{"title": "x", "price": "1.00", "quantity": 1}]},
            "line_items[0].id",
        ),
        ("orders/create", {"line_items": "socks"}, "line_items"),
        (
            "orders/create",
            {"fulfillments": [{"id": 5, "status": "success"}]},
            "fulfillments[0].updated_at",
        ),
        ("fulfillments/update", {"order_id": None}, "order_id"),
        ("fulfillments/update", {"id": ""}, "id"),
        ("fulfillments/update", {"updated_at": None, "created_at": None}, "updated_at"),
        ("refunds/create", {"order_id": None}, "order_id"),
        (
            "refunds/create",
            {"transactions": [{"kind": "refund", "status": "success", "amount": "NaN"}]},
            "transactions[0].amount",
        ),
        ("returns/request", {"order": {"name": "#1042"}}, "order.id"),
        ("customers/redact", {"customer": {}, "orders_to_redact": []}, "customer.id"),
        ("customers/redact", {"orders_to_redact": [None]}, "orders_to_redact[0]"),
    ],
)
def test_a_shopify_payload_missing_what_we_need_is_rejected_naming_the_field(topic, change, field):
    fixture = {
        "orders/create": "orders__create",
        "fulfillments/update": "fulfillments__update",
        "refunds/create": "refunds__create",
        "returns/request": "returns__request",
        "customers/redact": "customers__redact",
    }[topic]
    message = fails("shopify", topic, {**body("shopify", fixture), **change})
    assert message.startswith(field + ":"), message


def test_graphql_global_ids_are_read_as_their_numeric_ids():
    payload = {**body("shopify", "orders__create"), "id": "gid://shopify/Order/6123456789012"}
    assert one("shopify", "orders__create", payload).external_id == "6123456789012"


# --- WooCommerce -------------------------------------------------------------------------


def test_a_new_woocommerce_order_maps_processing_to_paid_and_unfulfilled():
    order = one("woocommerce", "order.created")
    assert (order.external_id, order.number, order.name) == ("4750", "4750", "#4750")
    assert order.updated_at == datetime(2026, 3, 2, 14, 15, 4, tzinfo=UTC)  # *_gmt read as UTC
    assert order.placed_at == datetime(2026, 3, 2, 14, 15, tzinfo=UTC)
    assert (order.financial_status, order.fulfillment_status, order.platform_status) == (
        "paid",
        "unfulfilled",
        "processing",
    )
    assert (order.total, order.subtotal, order.currency) == (
        Decimal("54.00"),
        Decimal("44.00"),
        "USD",
    )
    assert (order.email, order.phone, order.note) == ("Lee@Example.com", "+15550001", "Ring twice")
    assert order.customer is not None and order.customer.external_id == "31"
    assert order.customer.name == "Lee Park"
    assert order.shipping_address == {
        "name": "Lee Park",
        "first_name": "Lee",
        "last_name": "Park",
        "address1": "1 Main St",
        "address2": "Apt 4",
        "city": "Austin",
        "province_code": "TX",
        "zip": "78701",
        "country_code": "US",
    }
    (line,) = order.lines
    assert (line.external_id, line.title, line.quantity, line.price, line.sku) == (
        "311",
        "Mug",
        2,
        Decimal("22.00"),
        "MUG-01",
    )
    assert order.fulfillments == [] and order.refunds == []


def test_a_woocommerce_update_brings_positive_refunds_and_plugin_tracking():
    order = one("woocommerce", "order.updated")
    assert (order.financial_status, order.fulfillment_status) == ("partially_refunded", "fulfilled")
    (refund,) = order.refunds
    assert (refund.external_id, refund.order_external_id, refund.amount, refund.note) == (
        "4801",
        "4750",
        Decimal("10.00"),
        "Chipped mug",
    )
    (shipment,) = order.fulfillments
    assert shipment.external_id == "5f3c0e8a1b2d4c6e8f9a0b1c2d3e4f5a"
    assert (shipment.carrier, shipment.tracking_number) == ("usps", "9400110898825022579493")
    assert shipment.shipped_at == datetime(2026, 3, 3, 14, 0, tzinfo=UTC)  # unix seconds
    assert (shipment.status, shipment.status_authoritative, shipment.updated_at) == (
        "in_transit",
        False,
        None,
    )


def test_a_woocommerce_deletion_carries_only_the_id():
    order = one("woocommerce", "order.deleted")
    assert (order.external_id, order.deleted, order.updated_at, order.provided) == (
        "4750",
        True,
        None,
        frozenset(),
    )


def test_a_woocommerce_deletion_with_the_whole_order_is_parsed_and_marked_deleted():
    order = one("woocommerce", "order.created", topic="order.deleted")
    assert (order.deleted, order.platform_status, order.number) == (True, "trash", "4750")


@pytest.mark.parametrize(
    ("status", "paid", "completed", "financial", "fulfillment"),
    [
        ("pending", False, False, "pending", "unfulfilled"),
        ("on-hold", False, False, "pending", "unfulfilled"),
        ("failed", False, False, "pending", "unfulfilled"),
        ("processing", True, False, "paid", "unfulfilled"),
        ("completed", True, True, "paid", "fulfilled"),
        ("refunded", True, True, "refunded", "fulfilled"),
        ("refunded", True, False, "refunded", "unfulfilled"),
        ("cancelled", False, False, "voided", "unfulfilled"),
        ("cancelled", True, False, "paid", "unfulfilled"),
        ("shipped-by-plugin", True, False, "paid", ""),
        ("checkout-draft", False, False, "pending", ""),
    ],
)
def test_woocommerce_statuses_map_as_documented(status, paid, completed, financial, fulfillment):
    payload = {
        **body("woocommerce", "order.created"),
        "status": status,
        "date_paid_gmt": "2026-03-02T14:15:03" if paid else None,
        "date_completed_gmt": "2026-03-03T13:00:00" if completed else None,
    }
    order = one("woocommerce", "order.created", payload)
    assert (order.financial_status, order.fulfillment_status, order.platform_status) == (
        financial,
        fulfillment,
        status,
    )


def test_a_cancelled_woocommerce_order_is_cancelled_at_its_last_modification():
    payload = {**body("woocommerce", "order.created"), "status": "cancelled"}
    order = one("woocommerce", "order.created", payload)
    assert order.cancelled_at == datetime(2026, 3, 2, 14, 15, 4, tzinfo=UTC)


def test_refunds_adding_up_to_the_total_make_a_woocommerce_order_refunded():
    payload = {**body("woocommerce", "order.created"), "refunds": [{"id": 1, "total": "-54.00"}]}
    assert one("woocommerce", "order.created", payload).financial_status == "refunded"


@pytest.mark.parametrize(
    "meta",
    [
        [
            {
                "key": "_wc_shipment_tracking_items",
                "value": json.dumps([{"tracking_number": "TN1", "tracking_provider": "dhl"}]),
            }
        ],
        [
            {
                "key": "_wc_shipment_tracking_items",
                "value": {"0": {"tracking_number": "TN1", "tracking_provider": "dhl"}},
            }
        ],
        [
            {"key": "_tracking_number", "value": "TN1"},
            {"key": "_tracking_provider", "value": "dhl"},
        ],
        [
            {"key": "ywot_tracking_code", "value": "TN1"},
            {"key": "ywot_carrier_name", "value": "dhl"},
        ],
    ],
)
def test_tracking_is_read_from_the_common_plugin_meta_shapes(meta):
    payload = {**body("woocommerce", "order.created"), "meta_data": meta}
    (shipment,) = one("woocommerce", "order.created", payload).fulfillments
    assert (shipment.external_id, shipment.tracking_number, shipment.carrier) == (
        "4750:TN1",
        "TN1",
        "dhl",
    )


def test_unreadable_tracking_meta_is_skipped():
    meta = [{"key": "_wc_shipment_tracking_items", "value": "a:1:{i:0;a:0:{}}"}]
    payload = {**body("woocommerce", "order.created"), "meta_data": meta}
    assert one("woocommerce", "order.created", payload).fulfillments == []


@pytest.mark.parametrize(
    ("topic", "change", "field"),
    [
        ("order.updated", {"id": None}, "id"),
        (
            "order.updated",
            {"date_modified_gmt": None, "date_created_gmt": None},
            "date_modified_gmt",
        ),
        ("order.updated", {"total": "fifty"}, "total"),
        ("order.updated", {"refunds": [{"total": "-1.00"}]}, "refunds[0].id"),
        ("order.updated", {"line_items": [{"name": "Mug", "quantity": 1}]}, "line_items[0].id"),
        ("order.deleted", {"id": None}, "id"),
    ],
)
def test_a_woocommerce_payload_missing_what_we_need_is_rejected_naming_the_field(topic, change, field):
    message = fails("woocommerce", topic, {**body("woocommerce", "order.created"), **change})
    assert message.startswith(field + ":"), message


@pytest.mark.parametrize("topic", ["customer.created", "product.updated", "coupon.deleted", "action.woocommerce_x"])
def test_woocommerce_topics_we_do_not_use_give_no_records(topic):
    assert normalize("woocommerce", topic, {"id": 1}) == []


# --- Magento ------------------------------------------------------------------------------


def test_an_adobe_io_order_event_is_a_partial_order_timed_by_the_event():
    order = one("magento", "observer.sales_order_save_commit_after--io_event", topic="")
    assert (order.external_id, order.number, order.name) == ("118", "000000118", "#000000118")
    assert order.updated_at == datetime(2026, 3, 2, 14, 5, 12, tzinfo=UTC)
    assert order.total == Decimal("72.50")
    assert (order.financial_status, order.fulfillment_status, order.platform_status) == (
        "paid",
        "unfulfilled",
        "processing",
    )
    assert order.provided == frozenset(
        {
            "number",
            "name",
            "email",
            "total",
            "platform_status",
            "financial_status",
            "fulfillment_status",
            "cancelled_at",
            "customer",
        }
    )
    assert order.customer is not None and order.customer.email == "kim@example.com"


def test_an_adobe_commerce_webhook_order_save_has_lines_addresses_and_the_customer():
    order = one("magento", "observer.sales_order_save_commit_after--webhook")
    assert order.updated_at == datetime(2026, 3, 2, 14, 5, 11, tzinfo=UTC)  # UTC without offset
    assert order.placed_at == datetime(2026, 3, 2, 14, 1, 40, tzinfo=UTC)
    assert (order.currency, order.subtotal, order.total_tax) == (
        "USD",
        Decimal("60"),
        Decimal("4.95"),
    )
    assert (order.financial_status, order.fulfillment_status) == ("paid", "partial")
    assert [(li.external_id, li.quantity, li.fulfillable_quantity) for li in order.lines] == [
        ("240", 2, 1),
        ("242", 1, 1),
    ]  # the configurable's child item is skipped
    assert order.shipping_address["address1"] == "500 Pine St"
    assert order.shipping_address["address2"] == "Suite 2"
    assert order.billing_address["province_code"] == "WA"
    assert order.customer is not None
    assert (order.customer.external_id, order.customer.name, order.customer.phone) == (
        "57",
        "Kim Lee",
        "+12065550100",
    )
    assert "lines" in (order.provided or set())


def test_a_bare_order_object_is_read_like_the_webhook():
    inner = body("magento", "observer.sales_order_save_commit_after--webhook")["data"]["order"]
    order = one("magento", "x", {"order": inner}, topic="")
    assert (order.external_id, order.number) == ("118", "000000118")


@pytest.mark.parametrize(
    ("state", "status", "financial", "fulfillment"),
    [
        ("new", "pending", "pending", "unfulfilled"),
        ("pending_payment", "pending_payment", "pending", "unfulfilled"),
        ("payment_review", "fraud", "pending", "unfulfilled"),
        ("processing", "processing", "paid", "partial"),
        ("complete", "complete", "paid", "fulfilled"),
        ("closed", "closed", "refunded", "partial"),
        ("canceled", "canceled", "voided", "unfulfilled"),
        ("holded", "holded", "paid", "partial"),
        ("", "pending", "pending", "unfulfilled"),
    ],
)
def test_magento_states_map_as_documented(state, status, financial, fulfillment):
    payload = body("magento", "observer.sales_order_save_commit_after--webhook")
    payload["data"]["order"].update({"state": state, "status": status})
    order = one("magento", "observer.sales_order_save_commit_after--webhook", payload)
    assert (order.financial_status, order.fulfillment_status) == (financial, fulfillment)
    assert order.platform_status == status
    assert (order.cancelled_at is not None) == (state == "canceled")


def test_a_partly_refunded_magento_order_reports_its_refunded_total():
    payload = body("magento", "observer.sales_order_save_commit_after--webhook")
    payload["data"]["order"]["total_refunded"] = "10.0000"
    order = one("magento", "observer.sales_order_save_commit_after--webhook", payload)
    assert (order.financial_status, order.refunded_total) == ("partially_refunded", Decimal("10"))


def test_a_magento_shipment_event_becomes_a_fulfillment_with_its_first_track():
    shipment = one("magento", "observer.sales_order_shipment_save_after--io_event", topic="")
    assert (shipment.external_id, shipment.order_external_id, shipment.name) == (
        "77",
        "118",
        "#000000077",
    )
    assert (shipment.carrier, shipment.tracking_number) == (
        "United Parcel Service",
        "1Z999AA10123456784",
    )
    assert (shipment.status, shipment.status_authoritative) == ("in_transit", False)
    assert shipment.shipped_at == datetime(2026, 3, 3, 9, 29, 58, tzinfo=UTC)


def test_a_magento_credit_memo_becomes_a_refund():
    memo = {
        "data": {
            "creditmemo": {
                "entity_id": "9",
                "order_id": "118",
                "grand_total": "12.5000",
                "order_currency_code": "USD",
            }
        }
    }
    refund = one("magento", "x", memo, topic="observer.sales_order_creditmemo_save_after")
    assert (refund.external_id, refund.order_external_id, refund.amount, refund.currency) == (
        "9",
        "118",
        Decimal("12.5"),
        "USD",
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"entity_id": None}, "entity_id"),
        ({"updated_at": None, "created_at": None}, "updated_at"),
        ({"grand_total": "lots"}, "grand_total"),
        ({"items": [{"name": "Tee", "qty_ordered": 1}]}, "items[0].item_id"),
    ],
)
def test_a_magento_order_missing_what_we_need_is_rejected_naming_the_field(change, field):
    payload = body("magento", "observer.sales_order_save_commit_after--webhook")
    payload["data"]["order"].update(change)
    message = fails("magento", "", payload)
    assert message.startswith(field + ":"), message


def test_magento_events_we_do_not_use_give_no_records():
    event = {
        "type": "com.adobe.commerce.observer.catalog_product_save_after",
        "data": {"value": {"entity_id": "5"}},
    }
    assert normalize("magento", "", event) == []
    assert normalize("magento", "", {"challenge": "abc"}) == []


# --- Generic ------------------------------------------------------------------------------


def test_a_generic_order_is_a_partial_record_of_the_fields_sent():
    order = one("generic", "order")
    assert (order.external_id, order.number, order.total, order.currency) == (
        "A-1001",
        "1001",
        Decimal("499.00"),
        "NOK",
    )
    assert order.updated_at == datetime(2026, 3, 2, 14, 5, tzinfo=UTC)
    assert order.provided is not None
    assert "lines" in order.provided and "billing_address" not in order.provided
    assert order.customer is not None and order.customer.external_id == "C-7"
    assert order.lines[0].price == Decimal("499.00")


def test_a_generic_fulfillment_accepts_a_carrier_word_and_maps_it():
    fulfillment = one("generic", "fulfillment")
    assert (fulfillment.status, fulfillment.shipment_status) == (
        "out_for_delivery",
        "OutForDelivery",
    )
    assert fulfillment.estimated_delivery_at == datetime(2026, 3, 4, tzinfo=UTC)


def test_a_generic_fulfillment_with_an_unknown_word_is_unknown_but_keeps_the_word():
    payload = body("generic", "fulfillment")
    payload["data"]["status"] = "teleported"
    fulfillment = one("generic", "fulfillment", payload)
    assert (fulfillment.status, fulfillment.shipment_status) == ("unknown", "teleported")


def test_generic_refunds_and_returns_parse():
    refund = one("generic", "refund")
    assert (refund.amount, refund.order_external_id, refund.order_number) == (
        Decimal("99.00"),
        "A-1001",
        "1001",
    )
    ret = one("generic", "return")
    assert (ret.status, ret.lines[0]["reason"]) == ("requested", "wrong size")


def test_a_generic_time_without_an_offset_is_read_as_utc():
    payload = body("generic", "order")
    payload["data"]["updated_at"] = "2026-03-02T14:05:00"
    assert one("generic", "order", payload).updated_at == datetime(2026, 3, 2, 14, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"data": {}}, "type"),
        ({"type": "order"}, "data"),
        (
            {"type": "order", "data": {"number": "1", "updated_at": "2026-03-02T14:05:00Z"}},
            "data.external_id",
        ),
        (
            {"type": "order", "data": {"external_id": "A", "updated_at": "2026-03-02T14:05:00Z"}},
            "data.number",
        ),
        ({"type": "order", "data": {"external_id": "A", "number": "1"}}, "data.updated_at"),
        (
            {"type": "fulfillment", "data": {"external_id": "F", "status": "delivered"}},
            "data.order_external_id",
        ),
        ({"type": "refund", "data": {"external_id": "R", "order_external_id": "A"}}, "data.amount"),
        (
            {
                "type": "refund",
                "data": {"external_id": "R", "order_external_id": "A", "amount": "-5"},
            },
            "data.amount",
        ),
        ({"type": "return", "data": {"external_id": "R", "order_external_id": "A"}}, "data.status"),
    ],
)
def test_a_generic_payload_missing_what_we_need_is_rejected_naming_the_field(payload, field):
    message = fails("generic", "", payload)
    assert message.startswith(field + ":"), message


def test_a_generic_type_we_do_not_know_yet_is_ignored():
    assert normalize("generic", "", {"type": "customer", "data": {}}) == []


# --- Shared helpers and dispatch ------------------------------------------------------------


@pytest.mark.parametrize("payload", [[], "text", None, 42])
def test_a_body_that_is_not_a_json_object_is_rejected(payload):
    with pytest.raises(PayloadError, match="payload"):
        normalize("shopify", "orders/create", payload)


def test_an_unknown_platform_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown platform"):
        normalize("etsy", "orders/create", {})


def test_money_is_read_without_float_rounding():
    assert money("0.10", "x") + money("0.20", "x") == Decimal("0.30")
    assert money(0.1, "x") == Decimal("0.1")
    assert money(None, "x") == Decimal("0")
    for bad in ("NaN", "Infinity", "1,5", True, [1]):
        with pytest.raises(PayloadError, match="^x:"):
            money(bad, "x")


def test_timestamps_keep_their_instant_and_are_always_aware():
    assert timestamp("2026-03-02T15:05:09+01:00", "t") == datetime(2026, 3, 2, 14, 5, 9, tzinfo=UTC)
    assert timestamp("2026-03-02T14:05:11.123456789Z", "t") == datetime(2026, 3, 2, 14, 5, 11, 123456, tzinfo=UTC)
    assert timestamp("2026-03-02 14:05:11", "t") == datetime(2026, 3, 2, 14, 5, 11, tzinfo=UTC)
    assert timestamp(None, "t") is None


@pytest.mark.parametrize(
    ("word", "canonical"),
    [
        ("InTransit", "in_transit"),
        ("AvailableForPickup", "pickup_ready"),
        ("AttemptFail", "attempt_failed"),
        ("Expired", "exception"),
        ("InfoReceived", "label_created"),
        ("pre_transit", "label_created"),
        ("return_to_sender", "exception"),
        ("canceled", "exception"),
        ("cancelled", "exception"),
        ("TRANSIT", "in_transit"),
        ("delivered", "delivered"),
        ("unknown", "unknown"),
        ("teleported", None),
    ],
)
def test_carrier_words_from_every_vocabulary_map_to_the_canonical_table(word, canonical):
    assert canonical_shipment_status(word) == canonical
