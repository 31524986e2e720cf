"""WooCommerce webhook bodies (REST v3 order JSON, CONTRACTS.md §2) → records. Pure.

Topics: `order.created`, `order.updated`, `order.restored` → one NOrder (a full snapshot)
with its lines, refunds and shipment tracking; `order.deleted` → NOrder(deleted=True);
anything else (`customer.*`, `product.*`, `action.*`, …) → [].

Times: only the `*_gmt` fields are used (UTC without "Z"); the site-local twins have no
offset and are ignored. `updated_at` is `date_modified_gmt`, else `date_created_gmt`; with
neither, PayloadError naming `date_modified_gmt`.

Status mapping (`status` → financial_status / fulfillment_status; `platform_status` keeps
Woo's word):

| Woo status   | financial_status                  | fulfillment_status                    |
|--------------|-----------------------------------|---------------------------------------|
| pending      | pending                           | unfulfilled                           |
| on-hold      | pending (awaiting payment: BACS, cheque, manual review; core sets no authorization flag) | unfulfilled |
| failed       | pending (payment failed; the customer may retry) | unfulfilled           |
| processing   | paid                              | unfulfilled                           |
| completed    | paid                              | fulfilled                             |
| refunded     | refunded                          | fulfilled if date_completed, else unfulfilled |
| cancelled    | voided (paid if date_paid was set) | unfulfilled; cancelled_at = date_modified_gmt |
| other/plugin | paid if date_paid, else pending   | fulfilled if date_completed, else ""  |

Then refunds correct the money side: when `refunds[]` sum to the order total the order is
"refunded", to less (but more than 0) "partially_refunded" (Woo has no such status).

`order.deleted` (trash) carries only `{"id": N}`: the record has `deleted=True`,
`updated_at=None` and provides no other field. Upsert then marks the stored order
`platform_status="trash"` and cancelled (at the delivery's receive time), keeps everything
else, and uses the receive time for the staleness check; an order we never saw is ignored.
When a fuller body comes with the deletion it is parsed like any order and marked deleted.

Refunds: `refunds[{id, reason, total: "-10.00"}]` → NRefund(amount=10.00, note=reason).
Woo deletes refunds by editing the order; a refund gone from the list is not unmirrored.

Shipment tracking (no core feature; plugins store it in `meta_data`), each item →
NFulfillment nested in the order:
- `_wc_shipment_tracking_items` (WooCommerce Shipment Tracking, also Advanced Shipment
  Tracking): `[{tracking_provider, custom_tracking_provider, tracking_number,
  custom_tracking_link, date_shipped (unix seconds), tracking_id}]`; a JSON string or an
  object keyed "0", "1", … is read too.
- `_tracking_number` with `_tracking_provider`/`_tracking_link`/`_date_shipped`, and YITH's
  `ywot_tracking_code` with `ywot_carrier_name`/`ywot_pick_up_date`.
The external id is `tracking_id`, else "<order id>:<tracking number>". Woo knows nothing of
the carrier's progress, so the status is "in_transit" (the merchant shipped it) and
`status_authoritative` is False: upsert uses that status only when it creates the row, never
over a status a carrier feed set later.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from integrations.normalize import (
    address,
    epoch_or_iso,
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

ORDER_TOPICS = frozenset({"order.created", "order.updated", "order.restored"})
CENT = Decimal("0.01")

# status -> (financial_status, fulfillment_status); None = decided from dates (see above).
STATUS_MAP: dict[str, tuple[str | None, str | None]] = {
    "pending": ("pending", "unfulfilled"),
    "on-hold": ("pending", "unfulfilled"),
    "failed": ("pending", "unfulfilled"),
    "processing": ("paid", "unfulfilled"),
    "completed": ("paid", "fulfilled"),
    "refunded": ("refunded", None),
    "cancelled": (None, "unfulfilled"),
}


def parse(topic: str, payload: dict) -> list[Record]:
    topic = topic.strip().lower()
    if topic in ORDER_TOPICS:
        return [parse_order(payload)]
    if topic == "order.deleted":
        return [parse_deleted(payload)]
    return []


def parse_deleted(payload: dict) -> NOrder:
    external_id = ident(payload.get("id"), "id")
    if payload.get("date_modified_gmt") or payload.get("date_created_gmt"):
        return replace(parse_order(payload), deleted=True, platform_status="trash")
    return NOrder(
        external_id=external_id,
        number="",
        updated_at=None,
        platform_status="trash",
        deleted=True,
        provided=frozenset(),
    )


def _statuses(status: str, *, paid: bool, completed: bool, total: Decimal, refunded: Decimal) -> tuple[str, str]:
    financial, fulfillment = STATUS_MAP.get(status, (None, None))
    if financial is None:
        financial = "paid" if paid else ("voided" if status == "cancelled" else "pending")
    if fulfillment is None:
        fulfillment = "fulfilled" if completed else ("unfulfilled" if status == "refunded" else "")
    if refunded > 0 and financial == "paid":
        financial = "refunded" if total > 0 and refunded >= total else "partially_refunded"
    return financial, fulfillment


def _unit_price(li: dict, qty: int, path: str) -> Decimal:
    if li.get("subtotal") not in (None, "") and qty:
        return (money(li.get("subtotal"), f"{path}subtotal") / qty).quantize(CENT, ROUND_HALF_UP)
    if li.get("price") not in (None, ""):
        return money(li.get("price"), f"{path}price")
    if qty:
        return (money(li.get("total"), f"{path}total") / qty).quantize(CENT, ROUND_HALF_UP)
    return Decimal("0")


def parse_order(o: dict) -> NOrder:
    external_id = ident(o.get("id"), "id")
    updated_at = timestamp(o.get("date_modified_gmt"), "date_modified_gmt") or timestamp(
        o.get("date_created_gmt"), "date_created_gmt"
    )
    if updated_at is None:
        raise PayloadError("date_modified_gmt: required timestamp is missing (and so is date_created_gmt)")
    number = text(o.get("number")) or external_id
    status = text(o.get("status")).lower()
    currency = text(o.get("currency")).upper()
    billing = obj(o.get("billing"), "billing")
    shipping = obj(o.get("shipping"), "shipping")
    total = money(o.get("total"), "total")

    lines = []
    subtotal = Decimal("0")
    for i, li in enumerate(objs(o.get("line_items"), "line_items")):
        path = f"line_items[{i}]."
        qty = quantity(li.get("quantity"), f"{path}quantity")
        subtotal += money(li.get("total"), f"{path}total")
        lines.append(
            NLine(
                external_id=ident(li.get("id"), f"{path}id"),
                title=text(li.get("name")),
                quantity=qty,
                price=_unit_price(li, qty, path),
                sku=text(li.get("sku")),
                fulfillable_quantity=0 if status in ("completed", "cancelled", "refunded") else qty,
                fulfillment_status="fulfilled" if status == "completed" else "",
            )
        )

    refunds = [
        NRefund(
            external_id=ident(r.get("id"), f"refunds[{i}].id"),
            order_external_id=external_id,
            amount=abs(money(r.get("total"), f"refunds[{i}].total")),
            currency=currency,
            note=text(r.get("reason")),
            order_number=number,
        )
        for i, r in enumerate(objs(o.get("refunds"), "refunds"))
    ]
    refunded = sum((r.amount for r in refunds), Decimal("0"))
    date_paid = timestamp(o.get("date_paid_gmt"), "date_paid_gmt")
    date_completed = timestamp(o.get("date_completed_gmt"), "date_completed_gmt")
    financial, fulfillment = _statuses(
        status,
        paid=date_paid is not None,
        completed=date_completed is not None,
        total=total,
        refunded=refunded,
    )

    email = text(billing.get("email"))
    phone = text(billing.get("phone"))
    customer_name = full_name(billing.get("first_name"), billing.get("last_name"))
    customer: NCustomer | None = NCustomer(
        external_id=opt_ident(o.get("customer_id"), "customer_id"),
        email=email,
        name=customer_name,
        phone=phone,
    )
    if customer is not None and not (customer.external_id or email or phone):
        customer = None

    return NOrder(
        external_id=external_id,
        number=number,
        updated_at=updated_at,
        name=f"#{number}",
        email=email,
        phone=phone,
        currency=currency,
        total=total,
        subtotal=subtotal,
        total_tax=money(o.get("total_tax"), "total_tax"),
        financial_status=financial,
        fulfillment_status=fulfillment,
        platform_status=status,
        cancelled_at=updated_at if status == "cancelled" else None,
        placed_at=timestamp(o.get("date_created_gmt"), "date_created_gmt"),
        shipping_address=_address(shipping),
        billing_address=_address(billing),
        note=text(o.get("customer_note")),
        customer=customer,
        lines=lines,
        fulfillments=tracking(o, external_id, number),
        refunds=refunds,
    )


def _address(a: dict) -> dict[str, str]:
    return address(
        first_name=a.get("first_name"),
        last_name=a.get("last_name"),
        company=a.get("company"),
        address1=a.get("address_1"),
        address2=a.get("address_2"),
        city=a.get("city"),
        province_code=a.get("state"),
        zip=a.get("postcode"),
        country_code=a.get("country"),
        phone=a.get("phone"),
    )


def _tracking_items(value: Any) -> list[dict]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []  # PHP-serialized or free text: nothing we can read
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def tracking(o: dict, order_id: str, order_number: str) -> list[NFulfillment]:
    meta: dict[str, Any] = {}
    for entry in objs(o.get("meta_data"), "meta_data"):
        key = text(entry.get("key"))
        if key and key not in meta:
            meta[key] = entry.get("value")
    items = _tracking_items(meta.get("_wc_shipment_tracking_items"))
    if not items and text(meta.get("_tracking_number")):
        items = [
            {
                "tracking_number": meta.get("_tracking_number"),
                "tracking_provider": meta.get("_tracking_provider"),
                "custom_tracking_link": meta.get("_tracking_link"),
                "date_shipped": meta.get("_date_shipped"),
            }
        ]
    if not items and text(meta.get("ywot_tracking_code")):
        items = [
            {
                "tracking_number": meta.get("ywot_tracking_code"),
                "tracking_provider": meta.get("ywot_carrier_name"),
                "date_shipped": meta.get("ywot_pick_up_date"),
            }
        ]
    result = []
    for i, item in enumerate(items):
        number = text(item.get("tracking_number"))
        if not number:
            continue
        external_id = text(item.get("tracking_id")) or f"{order_id}:{number}"
        shipped = item.get("date_shipped")
        result.append(
            NFulfillment(
                external_id=external_id[:64],
                order_external_id=order_id,
                status="in_transit",
                carrier=text(item.get("custom_tracking_provider")) or text(item.get("tracking_provider")),
                tracking_number=number,
                tracking_url=text(item.get("custom_tracking_link")),
                shipped_at=epoch_or_iso(shipped, f"meta_data.tracking[{i}].date_shipped")
                if shipped not in (None, "")
                else None,
                updated_at=None,
                order_number=order_number,
                status_authoritative=False,
            )
        )
    return result
