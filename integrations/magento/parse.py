"""Magento 2 / Adobe Commerce bodies (CONTRACTS.md §3) → records. Pure.

Shapes read (tolerant of the envelope, strict on ids):
- Adobe I/O Events (CloudEvents): `{"type": "com.adobe.commerce.observer.<event>",
  "time": "...Z", "data": {"value": {...}}}`, also wrapped as `{"event": {...}}`.
- Adobe Commerce Webhooks: `{"eventName": "...", "data": {"order": {...}}}`, `{"order": {...}}`,
  and likewise `shipment` / `creditmemo`.
- A bare REST entity (`GET /V1/orders/{id}` shape), e.g. from reconciliation.

What the entity is comes from the event name (the `type`/`eventName` field, else the
`topic` argument): "creditmemo" → a refund, "shipment"/"track" → a shipment, "order" → an
order; with no name, from the keys (an `order_id` plus `tracks` → shipment, an `order_id`
plus `grand_total` → credit memo, `entity_id`/`increment_id` without `order_id` → order).
Anything else (catalog events, the I/O challenge, …) → [].

Orders → NOrder as a PARTIAL record: I/O events carry only the fields the merchant
subscribed (`--fields=`), so `provided` lists what the body had and upsert leaves the rest
alone. Required: `entity_id` (→ external_id); `increment_id` ("000000118") is the number and
"#000000118" the name when present. The staleness clock is the later of the entity's
`updated_at` and the event envelope's `time` (the observer sees `updated_at` as loaded
before the save, so two quick saves can share it), else `created_at`; none of them →
PayloadError naming `updated_at`. Magento's timestamps are UTC without an offset.

State mapping (`state`, else a `status` that names a default state; `platform_status` keeps
`status`, else `state`):

| state            | financial_status | fulfillment_status          |
|------------------|------------------|-----------------------------|
| new (pending)    | pending          | unfulfilled                 |
| pending_payment  | pending          | unfulfilled                 |
| payment_review, fraud | pending     | unfulfilled                 |
| processing       | paid             | from item quantities, else unfulfilled |
| complete         | paid             | fulfilled                   |
| closed           | refunded         | from item quantities        |
| canceled         | voided           | unfulfilled; cancelled_at = updated_at |
| holded           | from amounts     | from item quantities        |

Amounts correct the money side when present: `total_refunded` ≥ `grand_total` →
refunded, > 0 → partially_refunded; for holded, `total_paid` ≥ `grand_total` → paid,
else pending. `total_refunded` is also passed as NOrder.refunded_total. Item quantities:
every line `qty_shipped` ≥ `qty_ordered` → fulfilled, some shipped → partial, none →
unfulfilled. Child items of configurable/bundle products (`parent_item_id` set) are skipped.

Shipments (`sales_order_shipment_save_after`, or `shipments[]` inside an order) →
NFulfillment: one per shipment, the first track's number and carrier title; status
"in_transit" with `status_authoritative=False` (Magento knows nothing of the carrier's
progress, so this status never overwrites one a carrier feed set). Credit memos → NRefund with
`grand_total` as the amount.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from integrations.normalize import (
    address,
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
    NFulfillment,
    NLine,
    NOrder,
    NRefund,
    PayloadError,
    Record,
)

STATE_MAP: dict[str, tuple[str | None, str | None]] = {
    "new": ("pending", "unfulfilled"),
    "pending_payment": ("pending", "unfulfilled"),
    "payment_review": ("pending", "unfulfilled"),
    "processing": ("paid", None),
    "complete": ("paid", "fulfilled"),
    "closed": ("refunded", None),
    "canceled": ("voided", "unfulfilled"),
    "holded": (None, None),
}
# Default status codes that differ from their state's code.
STATUS_TO_STATE = {"pending": "new", "fraud": "payment_review", "canceled": "canceled"}


def parse(topic: str, payload: dict) -> list[Record]:
    envelope = payload
    if isinstance(payload.get("event"), dict) and "data" in payload["event"]:
        envelope = payload["event"]
    hint = text(envelope.get("type") or envelope.get("eventName") or topic).lower()
    event_time = timestamp(envelope.get("time"), "time")

    data = envelope.get("data")
    entity: dict | None = None
    kind = ""
    if isinstance(data, dict) and isinstance(data.get("value"), dict):
        entity = data["value"]
    elif isinstance(data, dict):
        for key in ("creditmemo", "shipment", "order"):
            if isinstance(data.get(key), dict):
                entity, kind = data[key], key
                break
    if entity is None:
        for key in ("creditmemo", "shipment", "order"):
            if isinstance(envelope.get(key), dict):
                entity, kind = envelope[key], key
                break
    if entity is None and ("entity_id" in envelope or "increment_id" in envelope):
        entity = envelope
    if entity is None:
        return []
    # An I/O event may nest the entity one level more: {"value": {"order": {...}}}.
    for key in ("creditmemo", "shipment", "order"):
        if not kind and len(entity) == 1 and isinstance(entity.get(key), dict):
            entity, kind = entity[key], key

    kind = kind or _kind(hint, entity)
    if kind == "order":
        return [parse_order(entity, event_time)]
    if kind == "shipment":
        return [parse_shipment(entity)]
    if kind == "creditmemo":
        return [parse_creditmemo(entity)]
    return []


def _kind(hint: str, entity: dict) -> str:
    if "creditmemo" in hint:
        return "creditmemo"
    if "shipment" in hint or "track" in hint:
        return "shipment"
    if "order" in hint:
        return "order"
    if hint:
        return ""  # a named event we do not use (catalog, customer, …)
    if "order_id" in entity:
        if "tracks" in entity or "total_qty" in entity or "packages" in entity:
            return "shipment"
        if "grand_total" in entity or "adjustment" in entity:
            return "creditmemo"
        return ""
    if "entity_id" in entity or "increment_id" in entity:
        return "order"
    return ""


def _address(a: dict) -> dict[str, str]:
    street = a.get("street")
    if isinstance(street, str):
        street = street.split("\n")
    lines = [text(s) for s in street] if isinstance(street, list) else []
    lines = [s for s in lines if s]
    return address(
        first_name=a.get("firstname"),
        last_name=a.get("lastname"),
        company=a.get("company"),
        address1=lines[0] if lines else "",
        address2=" ".join(lines[1:]),
        city=a.get("city"),
        province=a.get("region"),
        province_code=a.get("region_code"),
        zip=a.get("postcode"),
        country_code=a.get("country_id"),
        phone=a.get("telephone"),
    )


def _addresses(o: dict) -> tuple[dict | None, dict | None]:
    """(shipping, billing) raw address objects, from whichever shape the body has."""
    shipping = o.get("shipping_address")
    billing = o.get("billing_address")
    for a in objs(o.get("addresses"), "addresses"):
        kind = text(a.get("address_type")).lower()
        if kind == "shipping" and shipping is None:
            shipping = a
        elif kind == "billing" and billing is None:
            billing = a
    ext = obj(o.get("extension_attributes"), "extension_attributes")
    assignments = objs(ext.get("shipping_assignments"), "extension_attributes.shipping_assignments")
    if shipping is None and assignments:
        shipping = obj(assignments[0].get("shipping"), "shipping_assignments[0].shipping").get("address")
    return (
        obj(shipping, "shipping_address") if shipping is not None else None,
        obj(billing, "billing_address") if billing is not None else None,
    )


def _fulfillment_from_items(items: list[dict]) -> str | None:
    if not items:
        return None
    ordered = sum(quantity(i.get("qty_ordered"), "items.qty_ordered") for i in items)
    shipped = sum(quantity(i.get("qty_shipped"), "items.qty_shipped") for i in items)
    if not ordered:
        return None
    if shipped >= ordered:
        return "fulfilled"
    return "partial" if shipped else "unfulfilled"


def _opt_money(o: dict, key: str) -> Decimal | None:
    value = o.get(key)
    return None if value in (None, "") else money(value, key)


def parse_order(o: dict, event_time: datetime | None = None) -> NOrder:
    external_id = ident(o.get("entity_id"), "entity_id")
    updated = timestamp(o.get("updated_at"), "updated_at")
    candidates = [t for t in (updated, event_time) if t is not None]
    updated_at = max(candidates) if candidates else timestamp(o.get("created_at"), "created_at")
    if updated_at is None:
        raise PayloadError("updated_at: required timestamp is missing (no event time or created_at)")

    fields: dict[str, Any] = {}
    number = text(o.get("increment_id"))
    if number:
        fields["number"] = number
        fields["name"] = f"#{number}"
    if "customer_email" in o:
        fields["email"] = text(o.get("customer_email"))
    for key, source in (("currency", "order_currency_code"), ("currency", "base_currency_code")):
        if key not in fields and text(o.get(source)):
            fields[key] = text(o.get(source)).upper()
    for key, source in (
        ("total", "grand_total"),
        ("subtotal", "subtotal"),
        ("total_tax", "tax_amount"),
    ):
        if o.get(source) not in (None, ""):
            fields[key] = money(o.get(source), source)
    if "created_at" in o:
        fields["placed_at"] = timestamp(o.get("created_at"), "created_at")
    if "customer_note" in o:
        fields["note"] = text(o.get("customer_note"))

    shipping, billing = _addresses(o)
    if shipping is not None:
        fields["shipping_address"] = _address(shipping)
    if billing is not None:
        fields["billing_address"] = _address(billing)
        if text(billing.get("telephone")):
            fields["phone"] = text(billing.get("telephone"))

    items = [i for i in objs(o.get("items"), "items") if i.get("parent_item_id") in (None, "", 0, "0")]
    if "items" in o:
        fields["lines"] = [
            NLine(
                external_id=ident(item.get("item_id"), f"items[{n}].item_id"),
                title=text(item.get("name")),
                quantity=quantity(item.get("qty_ordered"), f"items[{n}].qty_ordered"),
                price=money(item.get("price"), f"items[{n}].price"),
                sku=text(item.get("sku")),
                fulfillable_quantity=max(
                    quantity(item.get("qty_ordered"), f"items[{n}].qty_ordered")
                    - quantity(item.get("qty_shipped"), f"items[{n}].qty_shipped")
                    - quantity(item.get("qty_canceled"), f"items[{n}].qty_canceled")
                    - quantity(item.get("qty_refunded"), f"items[{n}].qty_refunded"),
                    0,
                ),
                fulfillment_status=_fulfillment_from_items([item]) or "",
            )
            for n, item in enumerate(items)
        ]

    # States and statuses.
    state = text(o.get("state")).lower()
    status = text(o.get("status")).lower()
    if not state and status:
        state = STATUS_TO_STATE.get(status, status if status in STATE_MAP else "")
    if status or state:
        fields["platform_status"] = status or state
    grand_total = fields.get("total")
    refunded = _opt_money(o, "total_refunded")
    paid = _opt_money(o, "total_paid")
    financial, fulfillment = STATE_MAP.get(state, (None, None))
    if state == "holded" and paid is not None and grand_total is not None:
        financial = "paid" if paid >= grand_total > 0 else "pending"
    if refunded is not None and refunded > 0 and state != "canceled":
        financial = "refunded" if grand_total is not None and refunded >= grand_total else "partially_refunded"
    if fulfillment is None and state in STATE_MAP:
        fulfillment = _fulfillment_from_items(items) or ("unfulfilled" if state == "processing" else None)
    if financial is not None:
        fields["financial_status"] = financial
    if fulfillment is not None:
        fields["fulfillment_status"] = fulfillment
    if state:
        fields["cancelled_at"] = updated_at if state == "canceled" else None

    # The customer.
    customer_name = full_name(o.get("customer_firstname"), o.get("customer_lastname"))
    customer = NCustomer(
        external_id=opt_ident(o.get("customer_id"), "customer_id"),
        email=text(o.get("customer_email")),
        name=customer_name,
        phone=fields.get("phone", ""),
    )
    if customer.external_id or customer.email or customer.phone:
        fields["customer"] = customer

    shipments = objs(o.get("shipments"), "shipments")
    fulfillments = [
        parse_shipment(s, order_id=external_id, order_number=number, path=f"shipments[{i}].")
        for i, s in enumerate(shipments)
    ]
    provided = frozenset(fields)
    number = fields.pop("number", "")
    return NOrder(
        external_id=external_id,
        number=number,
        updated_at=updated_at,
        fulfillments=fulfillments,
        refunded_total=refunded,
        provided=provided,
        **fields,
    )


def parse_shipment(s: dict, *, order_id: str | None = None, order_number: str = "", path: str = "") -> NFulfillment:
    external_id = ident(s.get("entity_id"), f"{path}entity_id")
    raw_order_id = s.get("order_id")
    order_external_id = ident(raw_order_id if raw_order_id is not None else order_id, f"{path}order_id")
    tracks = objs(s.get("tracks"), f"{path}tracks")
    track = tracks[0] if tracks else {}
    increment_id = text(s.get("increment_id"))
    return NFulfillment(
        external_id=external_id,
        order_external_id=order_external_id,
        status="in_transit",
        name=f"#{increment_id}" if increment_id else "",
        platform_status="shipped",
        carrier=text(track.get("title")) or text(track.get("carrier_code")),
        tracking_number=text(track.get("track_number")) or text(track.get("number")),
        shipped_at=timestamp(s.get("created_at"), f"{path}created_at"),
        updated_at=None,
        order_number=order_number or text(s.get("order_increment_id")),
        status_authoritative=False,
    )


def parse_creditmemo(c: dict) -> NRefund:
    return NRefund(
        external_id=ident(c.get("entity_id"), "entity_id"),
        order_external_id=ident(c.get("order_id"), "order_id"),
        amount=money(c.get("grand_total"), "grand_total", default=None),
        currency=text(c.get("order_currency_code") or c.get("base_currency_code")).upper(),
        note=text(c.get("customer_note")),
        processed_at=timestamp(c.get("created_at"), "created_at"),
        order_number=text(c.get("order_increment_id")),
    )
