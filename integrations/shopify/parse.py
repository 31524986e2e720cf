"""Shopify webhook bodies (REST shape, CONTRACTS.md §1) → normalised records. Pure.

Topics:
- `orders/create|updated|cancelled|fulfilled|partially_fulfilled|paid|edited` → one NOrder
  (a full snapshot) with its lines and any nested `fulfillments[]` and `refunds[]`.
  `orders/edited` normally carries `{"order_edit": {...}}`, not an order: that gives [] (the
  `orders/updated` Shopify sends with every edit carries the whole order).
- `fulfillments/create|update` → NFulfillment; `refunds/create` → NRefund;
  `returns/*` → NReturn; `customers/data_request` → NDataRequest;
  `customers/redact`, `shop/redact` → NRedact. Any other topic → [].

Mapping decisions:
- `number` is `order_number` ("1042"), else `name` without "#"; `name` is "#1042".
- `updated_at` is the staleness clock; an order without it falls back to `created_at`; with
  neither it is a PayloadError naming `updated_at`.
- `fulfillment_status: null` → "unfulfilled"; `platform_status` is "cancelled" (cancelled_at
  set), "closed" (closed_at set) or "open"; `placed_at` is `processed_at`, else `created_at`.
- A refund's amount is the sum of its transactions with kind "refund" and status "success"
  (a transaction without a status counts); lines keep `line_item_id`, `quantity`,
  `restock_type` and `subtotal` (a string).
- Fulfillment canonical status (CONTRACTS.md §6): a fulfillment `status` of
  cancelled/error/failure → "exception"; else a known `shipment_status` by the table; an
  unknown future `shipment_status` → "in_transit" when the fulfillment succeeded (it is
  moving, we just don't know the word), else "unknown"; no `shipment_status`: pending/open →
  "label_created", success with a tracking number → "label_created" (no carrier scan yet),
  success without one → "unknown" (nothing to track). `shipped_at` is the fulfillment's
  `created_at` once it succeeded.
- Returns: `status` lower-cased (GraphQL sends REQUESTED); when absent it follows the topic
  (returns/request → requested, approve/reopen/process → open, decline → declined,
  cancel → canceled, close → closed).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from integrations.normalize import (
    address,
    canonical_shipment_status,
    full_name,
    ident,
    money,
    obj,
    objs,
    opt_ident,
    quantity,
    text,
    timestamp,
)
from integrations.normalized import (
    NCustomer,
    NDataRequest,
    NFulfillment,
    NLine,
    NOrder,
    NRedact,
    NRefund,
    NReturn,
    PayloadError,
    Record,
)

ORDER_TOPICS = frozenset(
    {
        "orders/create",
        "orders/updated",
        "orders/cancelled",
        "orders/fulfilled",
        "orders/partially_fulfilled",
        "orders/paid",
        "orders/edited",
    }
)
FULFILLMENT_TOPICS = frozenset({"fulfillments/create", "fulfillments/update"})
RETURN_STATUS_BY_TOPIC = {
    "returns/request": "requested",
    "returns/approve": "open",
    "returns/reopen": "open",
    "returns/process": "open",
    "returns/decline": "declined",
    "returns/cancel": "canceled",
    "returns/close": "closed",
}


def parse(topic: str, payload: dict) -> list[Record]:
    topic = topic.strip().lower()
    if topic in ORDER_TOPICS:
        if "order_edit" in payload and "line_items" not in payload:
            return []
        return [parse_order(payload)]
    if topic in FULFILLMENT_TOPICS:
        return [parse_fulfillment(payload)]
    if topic == "refunds/create":
        return [parse_refund(payload)]
    if topic.startswith("returns/"):
        return [parse_return(topic, payload)]
    if topic == "customers/data_request":
        return [parse_data_request(payload)]
    if topic == "customers/redact":
        return [parse_customer_redact(payload)]
    if topic == "shop/redact":
        return [NRedact(whole_shop=True)]
    return []


def _number_from_name(name: str) -> str:
    """ "#1042" → "1042"; a fulfillment's "#1042.1" → "1042"."""
    bare = name.strip().lstrip("#")
    return bare.rsplit(".", 1)[0] if "." in bare else bare


def _tags(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(t for t in (text(v) for v in value) if t)
    return text(value)


def parse_order(o: dict) -> NOrder:
    external_id = ident(o.get("id"), "id")
    created_at = timestamp(o.get("created_at"), "created_at")
    updated_at = timestamp(o.get("updated_at"), "updated_at") or created_at
    if updated_at is None:
        raise PayloadError("updated_at: required timestamp is missing (and so is created_at)")
    name = text(o.get("name"))
    number = text(o.get("order_number")) or _number_from_name(name)
    if not number:
        raise PayloadError("order_number: required (or a name such as #1042)")
    currency = text(o.get("currency") or o.get("presentment_currency")).upper()
    raw_customer = obj(o.get("customer"), "customer")
    shipping = obj(o.get("shipping_address"), "shipping_address")
    billing = obj(o.get("billing_address"), "billing_address")
    email = text(o.get("email")) or text(o.get("contact_email")) or text(raw_customer.get("email"))
    phone = text(o.get("phone")) or text(raw_customer.get("phone")) or text(billing.get("phone"))
    customer: NCustomer | None = NCustomer(
        external_id=opt_ident(raw_customer.get("id"), "customer.id"),
        email=text(raw_customer.get("email")) or email,
        name=full_name(raw_customer.get("first_name"), raw_customer.get("last_name"))
        or text(billing.get("name"))
        or text(shipping.get("name")),
        phone=text(raw_customer.get("phone")) or phone,
    )
    if customer is not None and not (customer.external_id or customer.email or customer.phone):
        customer = None
    cancelled_at = timestamp(o.get("cancelled_at"), "cancelled_at")
    closed_at = timestamp(o.get("closed_at"), "closed_at")
    lines = [
        NLine(
            external_id=ident(li.get("id"), f"line_items[{i}].id"),
            title=text(li.get("name")) or text(li.get("title")),
            quantity=quantity(li.get("quantity"), f"line_items[{i}].quantity"),
            price=money(li.get("price"), f"line_items[{i}].price"),
            sku=text(li.get("sku")),
            fulfillable_quantity=quantity(li.get("fulfillable_quantity"), f"line_items[{i}].fulfillable_quantity"),
            fulfillment_status=text(li.get("fulfillment_status")).lower(),
        )
        for i, li in enumerate(objs(o.get("line_items"), "line_items"))
    ]
    fulfillments = [
        parse_fulfillment(f, path=f"fulfillments[{i}].", order_id=external_id, order_number=number)
        for i, f in enumerate(objs(o.get("fulfillments"), "fulfillments"))
    ]
    refunds = [
        parse_refund(r, path=f"refunds[{i}].", order_id=external_id, order_number=number, currency=currency)
        for i, r in enumerate(objs(o.get("refunds"), "refunds"))
    ]
    return NOrder(
        external_id=external_id,
        number=number,
        updated_at=updated_at,
        name=name or f"#{number}",
        email=email,
        phone=phone,
        currency=currency,
        total=money(o.get("total_price"), "total_price"),
        subtotal=money(o.get("subtotal_price"), "subtotal_price"),
        total_tax=money(o.get("total_tax"), "total_tax"),
        financial_status=text(o.get("financial_status")).lower(),
        fulfillment_status=text(o.get("fulfillment_status")).lower() or "unfulfilled",
        platform_status="cancelled" if cancelled_at else "closed" if closed_at else "open",
        cancelled_at=cancelled_at,
        cancel_reason=text(o.get("cancel_reason")).lower(),
        placed_at=timestamp(o.get("processed_at"), "processed_at") or created_at,
        shipping_address=address(**shipping),
        billing_address=address(**billing),
        tags=_tags(o.get("tags")),
        note=text(o.get("note")),
        customer=customer,
        lines=lines,
        fulfillments=fulfillments,
        refunds=refunds,
    )


def canonical_status(status: str, shipment_status: str, tracking_number: str) -> str:
    """Shopify fulfillment `status` + `shipment_status` → canonical (see module docstring)."""
    if status in ("cancelled", "error", "failure"):
        return "exception"
    if shipment_status:
        mapped = canonical_shipment_status(shipment_status, "shopify")
        if mapped:
            return mapped
        return "in_transit" if status in ("success", "") else "unknown"
    if status in ("pending", "open"):
        return "label_created"
    return "label_created" if tracking_number else "unknown"


def _first(value: Any, listed: Any) -> str:
    if text(value):
        return text(value)
    if isinstance(listed, list):
        return next((t for t in (text(v) for v in listed) if t), "")
    return ""


def parse_fulfillment(f: dict, *, path: str = "", order_id: str | None = None, order_number: str = "") -> NFulfillment:
    external_id = ident(f.get("id"), f"{path}id")
    raw_order_id = f.get("order_id")
    order_external_id = ident(raw_order_id if raw_order_id is not None else order_id, f"{path}order_id")
    created_at = timestamp(f.get("created_at"), f"{path}created_at")
    updated_at = timestamp(f.get("updated_at"), f"{path}updated_at") or created_at
    if updated_at is None:
        raise PayloadError(f"{path}updated_at: required timestamp is missing (and so is created_at)")
    status = text(f.get("status")).lower()
    shipment_status = text(f.get("shipment_status")).lower()
    tracking_number = _first(f.get("tracking_number"), f.get("tracking_numbers"))
    name = text(f.get("name"))
    return NFulfillment(
        external_id=external_id,
        order_external_id=order_external_id,
        status=canonical_status(status, shipment_status, tracking_number),
        name=name,
        platform_status=status,
        shipment_status=shipment_status,
        carrier=text(f.get("tracking_company")),
        tracking_number=tracking_number,
        tracking_url=_first(f.get("tracking_url"), f.get("tracking_urls")),
        estimated_delivery_at=timestamp(f.get("estimated_delivery_at"), f"{path}estimated_delivery_at"),
        shipped_at=created_at if status == "success" else None,
        delivered_at=timestamp(f.get("delivered_at"), f"{path}delivered_at"),
        updated_at=updated_at,
        order_number=order_number or _number_from_name(name),
    )


def parse_refund(
    r: dict,
    *,
    path: str = "",
    order_id: str | None = None,
    order_number: str = "",
    currency: str = "",
) -> NRefund:
    external_id = ident(r.get("id"), f"{path}id")
    raw_order_id = r.get("order_id")
    order_external_id = ident(raw_order_id if raw_order_id is not None else order_id, f"{path}order_id")
    amount = Decimal("0")
    for i, t in enumerate(objs(r.get("transactions"), f"{path}transactions")):
        kind = text(t.get("kind")).lower()
        status = text(t.get("status")).lower()
        if kind == "refund" and status in ("success", ""):
            amount += money(t.get("amount"), f"{path}transactions[{i}].amount")
            currency = currency or text(t.get("currency")).upper()
    lines = [
        {
            "line_item_id": opt_ident(rli.get("line_item_id"), f"{path}refund_line_items[{i}].line_item_id"),
            "quantity": quantity(rli.get("quantity"), f"{path}refund_line_items[{i}].quantity"),
            "restock_type": text(rli.get("restock_type")),
            "subtotal": str(money(rli.get("subtotal"), f"{path}refund_line_items[{i}].subtotal")),
        }
        for i, rli in enumerate(objs(r.get("refund_line_items"), f"{path}refund_line_items"))
    ]
    processed_at: datetime | None = timestamp(r.get("processed_at"), f"{path}processed_at")
    return NRefund(
        external_id=external_id,
        order_external_id=order_external_id,
        amount=amount,
        currency=currency,
        note=text(r.get("note")),
        processed_at=processed_at or timestamp(r.get("created_at"), f"{path}created_at"),
        lines=lines,
        order_number=order_number,
    )


def _decline_reason(payload: dict) -> str:
    reason = payload.get("decline_reason")
    if isinstance(reason, dict):
        return full_name(reason.get("reason"), reason.get("note"))
    if reason is None and isinstance(payload.get("decline"), dict):
        decline = payload["decline"]
        return full_name(decline.get("reason"), decline.get("note"))
    return text(reason)


def parse_return(topic: str, payload: dict) -> NReturn:
    external_id = ident(payload.get("id"), "id")
    order = obj(payload.get("order"), "order")
    raw_order_id = order.get("id") if order else payload.get("order_id")
    order_external_id = ident(raw_order_id, "order.id")
    lines = []
    for i, rli in enumerate(objs(payload.get("return_line_items"), "return_line_items")):
        fli = obj(rli.get("fulfillment_line_item"), f"return_line_items[{i}].fulfillment_line_item")
        line_item = obj(fli.get("line_item"), f"return_line_items[{i}].fulfillment_line_item.line_item")
        lines.append(
            {
                "id": opt_ident(rli.get("id"), f"return_line_items[{i}].id"),
                "line_item_id": opt_ident(line_item.get("id"), f"return_line_items[{i}].line_item.id"),
                "quantity": quantity(rli.get("quantity"), f"return_line_items[{i}].quantity"),
                "reason": text(rli.get("return_reason")).lower(),
                "reason_note": text(rli.get("return_reason_note")),
                "customer_note": text(rli.get("customer_note")),
            }
        )
    status = text(payload.get("status")).lower() or RETURN_STATUS_BY_TOPIC.get(topic, "open")
    return NReturn(
        external_id=external_id,
        order_external_id=order_external_id,
        status=status,
        name=text(payload.get("name")),
        lines=lines,
        decline_reason=_decline_reason(payload),
        updated_at=timestamp(payload.get("updated_at"), "updated_at"),
        order_number=_number_from_name(text(order.get("name"))),
    )


def _order_ids(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{field}: expected an array of order ids")
    return [ident(v, f"{field}[{i}]") for i, v in enumerate(value)]


def parse_data_request(payload: dict) -> NDataRequest:
    customer = obj(payload.get("customer"), "customer")
    return NDataRequest(
        customer_email=text(customer.get("email")),
        customer_external_id=opt_ident(customer.get("id"), "customer.id"),
        order_external_ids=_order_ids(payload.get("orders_requested"), "orders_requested"),
    )


def parse_customer_redact(payload: dict) -> NRedact:
    customer = obj(payload.get("customer"), "customer")
    record = NRedact(
        customer_email=text(customer.get("email")),
        customer_external_id=opt_ident(customer.get("id"), "customer.id"),
        order_external_ids=_order_ids(payload.get("orders_to_redact"), "orders_to_redact"),
    )
    if not (record.customer_email or record.customer_external_id or record.order_external_ids):
        raise PayloadError("customer.id: required to know whom to redact (or customer.email)")
    return record
