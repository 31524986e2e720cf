"""Storedesk's own webhook format, for any system that is not Shopify, WooCommerce or Magento.

Send `POST /hooks/generic/<connection-id>/` with a JSON body

    {"type": "order" | "fulfillment" | "refund" | "return", "data": {...}}

(`type` may instead come as the topic). The field names inside `data` are those of
Storedesk's normalised records (integrations/normalized.py). Conventions:

- ids: strings or integers, at most 64 characters; kept as strings.
- money: decimal strings ("39.90"); integers and numbers are accepted.
- times: ISO 8601 with an offset ("2026-03-02T15:05:09+01:00" or "...Z"); a time without
  an offset is read as UTC. A bare date ("2026-03-04") is midnight UTC.
- unknown keys are ignored (so you may send more); a `type` we do not know yet → ignored.
- bad or missing required values → the delivery is rejected with the field named.

`order` (required: `external_id`, `number`, `updated_at`):

    {"type": "order", "data": {
      "external_id": "A-1001", "number": "1001", "name": "#1001",
      "updated_at": "2026-03-02T14:05:00Z",        # staleness clock: older than stored → ignored
      "placed_at": "2026-03-02T14:00:00Z",
      "email": "dana@example.org", "phone": "+34600000000",
      "currency": "EUR", "total": "39.90", "subtotal": "33.53", "total_tax": "6.37",
      "financial_status": "paid",      # pending|authorized|partially_paid|paid|partially_refunded|refunded|voided
      "fulfillment_status": "unfulfilled",  # unfulfilled|partial|fulfilled|restocked
      "platform_status": "processing", # your own word, shown to agents
      "cancelled_at": null, "cancel_reason": "",
      "shipping_address": {"name": "Dana Ruiz", "address1": "Calle Mayor 5", "address2": "",
                           "city": "Madrid", "province": "", "province_code": "",
                           "zip": "28013", "country": "", "country_code": "ES", "phone": "",
                           "first_name": "", "last_name": "", "company": ""},
      "billing_address": {...same keys...},
      "tags": "gift, priority", "note": "Leave at the door",
      "customer": {"external_id": "C-7", "email": "dana@example.org", "name": "Dana Ruiz", "phone": ""},
      "lines": [{"external_id": "L-1", "title": "Red socks", "quantity": 2, "price": "14.95",
                 "sku": "SOCK-RED-M", "fulfillable_quantity": 2, "fulfillment_status": ""}],
      "fulfillments": [ <fulfillment data; order_external_id is this order's> ],
      "refunds": [ <refund data; order_external_id is this order's> ],
      "refunded_total": "0.00",        # optional: your own refunded figure
      "deleted": false                 # true: the order was deleted; it is kept, marked cancelled
    }}

  An order is a PARTIAL update: a field you leave out keeps its stored value (a new order
  starts blank), so you may send only what changed, with `updated_at`. `lines`, when sent,
  is the complete list (lines not in it are removed). Send `null`/"" to clear a value.

`fulfillment` (required: `external_id`, `order_external_id`, `status`):

    {"type": "fulfillment", "data": {
      "external_id": "F-1", "order_external_id": "A-1001", "order_number": "1001",
      "status": "out_for_delivery", "name": "#1001-1",
      "carrier": "DHL", "tracking_number": "JD014600006281234567",
      "tracking_url": "https://...", "estimated_delivery_at": "2026-03-04",
      "shipped_at": "2026-03-02T18:00:00Z", "delivered_at": null,
      "updated_at": "2026-03-04T07:12:00Z"    # recommended: stale updates are then ignored
    }}

  `status` is canonical — label_created, in_transit, out_for_delivery, pickup_ready,
  attempt_failed, delivered, exception, unknown — or a carrier word from AfterShip
  (InTransit, …), EasyPost (pre_transit, …), Shopify (label_printed, …) or Shippo
  (TRANSIT, …), mapped by CONTRACTS.md §6; any other word becomes "unknown" and is kept as
  `shipment_status`. `platform_status`/`shipment_status` may carry your raw words.

`refund` (required: `external_id`, `order_external_id`, `amount` — positive):

    {"type": "refund", "data": {"external_id": "R-1", "order_external_id": "A-1001",
      "amount": "10.00", "currency": "EUR", "note": "damaged", "processed_at": "...",
      "lines": [{"line_external_id": "L-1", "quantity": 1}]}}

`return` (required: `external_id`, `order_external_id`, `status`):

    {"type": "return", "data": {"external_id": "RT-1", "order_external_id": "A-1001",
      "status": "requested", "name": "#1001-R1", "decline_reason": "",
      "lines": [{"line_external_id": "L-1", "quantity": 1, "reason": "size"}],
      "updated_at": "..."}}

A fulfillment, refund or return for an order Storedesk has not seen yet creates a
placeholder order (with `order_number` if you send it), filled in when the order arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from integrations.normalize import (
    address,
    canonical_shipment_status,
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
    NReturn,
    PayloadError,
    Record,
)

TIMES = frozenset(
    {
        "updated_at",
        "cancelled_at",
        "placed_at",
        "estimated_delivery_at",
        "shipped_at",
        "delivered_at",
        "processed_at",
    }
)
AMOUNTS = frozenset({"total", "subtotal", "total_tax", "price", "amount", "refunded_total"})
COUNTS = frozenset({"quantity", "fulfillable_quantity"})
# Fields a sender may not set directly (derived by the parser).
INTERNAL = frozenset({"provided", "status_authoritative"})


def parse(topic: str, payload: dict) -> list[Record]:
    kind = text(payload.get("type") or topic).lower()
    if not kind:
        raise PayloadError("type: required (order, fulfillment, refund or return)")
    if kind not in PARSERS:
        return []
    data = payload.get("data")
    if not isinstance(data, dict):
        raise PayloadError("data: required object")
    return [PARSERS[kind](data, "data.")]


def _value(name: str, raw: Any, path: str) -> Any:
    field = f"{path}{name}"
    if name in TIMES:
        return timestamp(raw, field)
    if name in AMOUNTS:
        return money(raw, field)
    if name in COUNTS:
        return quantity(raw, field)
    if name in ("shipping_address", "billing_address"):
        return address(**obj(raw, field))
    if name in ("external_id", "order_external_id"):
        return ident(raw, field)
    if name == "deleted":
        if not isinstance(raw, bool | None):
            raise PayloadError(f"{field}: expected true or false")
        return bool(raw)
    if name == "lines":
        return [dict(item) for item in objs(raw, field)]
    return text(raw)


def _values(cls: type, data: dict, path: str, skip: frozenset[str] = frozenset()) -> dict:
    names = {f.name for f in fields(cls)} - INTERNAL - skip
    return {name: _value(name, data[name], path) for name in names if name in data}


def _require(values: dict, path: str, *names: str) -> None:
    for name in names:
        if values.get(name) in (None, ""):
            raise PayloadError(f"{path}{name}: required")


def parse_order(data: dict, path: str) -> NOrder:
    nested = frozenset({"customer", "lines", "fulfillments", "refunds"})
    values = _values(NOrder, data, path, skip=nested)
    if "external_id" not in values:
        raise PayloadError(f"{path}external_id: required id is missing")
    _require(values, path, "number", "updated_at")
    external_id = values["external_id"]
    if "customer" in data:
        raw = obj(data["customer"], f"{path}customer")
        values["customer"] = (
            NCustomer(
                external_id=opt_ident(raw.get("external_id"), f"{path}customer.external_id"),
                email=text(raw.get("email")),
                name=text(raw.get("name")),
                phone=text(raw.get("phone")),
            )
            if raw
            else None
        )
    if "lines" in data:
        values["lines"] = [
            NLine(**_line(item, f"{path}lines[{i}].")) for i, item in enumerate(objs(data["lines"], f"{path}lines"))
        ]
    provided = frozenset(values) - {"external_id", "updated_at", "deleted", "refunded_total"}
    children: dict[str, Any] = {}
    if "fulfillments" in data:
        children["fulfillments"] = [
            parse_fulfillment({**item, "order_external_id": external_id}, f"{path}fulfillments[{i}].")
            for i, item in enumerate(objs(data["fulfillments"], f"{path}fulfillments"))
        ]
    if "refunds" in data:
        children["refunds"] = [
            parse_refund({**item, "order_external_id": external_id}, f"{path}refunds[{i}].")
            for i, item in enumerate(objs(data["refunds"], f"{path}refunds"))
        ]
    return NOrder(**values, **children, provided=provided)


def _line(item: dict, path: str) -> dict:
    values = _values(NLine, item, path)
    if "external_id" not in values:
        raise PayloadError(f"{path}external_id: required id is missing")
    values.setdefault("title", "")
    values.setdefault("quantity", 1)
    values.setdefault("price", money(None, f"{path}price"))
    return values


def parse_fulfillment(data: dict, path: str) -> NFulfillment:
    values = _values(NFulfillment, data, path)
    for name in ("external_id", "order_external_id"):
        if name not in values:
            raise PayloadError(f"{path}{name}: required id is missing")
    _require(values, path, "status")
    word = values["status"]
    canonical = canonical_shipment_status(word)
    values["status"] = canonical or "unknown"
    if not values.get("shipment_status") and word.lower() != values["status"]:
        values["shipment_status"] = word
    return NFulfillment(**values)


def parse_refund(data: dict, path: str) -> NRefund:
    values = _values(NRefund, data, path)
    for name in ("external_id", "order_external_id"):
        if name not in values:
            raise PayloadError(f"{path}{name}: required id is missing")
    values["amount"] = money(data.get("amount"), f"{path}amount", default=None)
    if values["amount"] < 0:
        raise PayloadError(f"{path}amount: must not be negative")
    return NRefund(**values)


def parse_return(data: dict, path: str) -> NReturn:
    values = _values(NReturn, data, path)
    for name in ("external_id", "order_external_id"):
        if name not in values:
            raise PayloadError(f"{path}{name}: required id is missing")
    _require(values, path, "status")
    return NReturn(**values)


PARSERS: dict[str, Callable[[dict, str], Record]] = {
    "order": parse_order,
    "fulfillment": parse_fulfillment,
    "refund": parse_refund,
    "return": parse_return,
}
