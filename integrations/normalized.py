"""The platform-neutral shapes that every platform parser produces and `upsert` applies.

Parsers (integrations/<platform>/parse.py) turn one webhook payload into a list of these;
they raise PayloadError when required fields are missing (the delivery is dead-lettered
with that reason) and return [] for topics we do not use (the delivery is ignored).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


class PayloadError(ValueError):
    """The payload lacks what we need; the message names the missing or bad field."""


@dataclass(frozen=True)
class NCustomer:
    external_id: str = ""
    email: str = ""
    name: str = ""
    phone: str = ""


@dataclass(frozen=True)
class NLine:
    external_id: str
    title: str
    quantity: int
    price: Decimal
    sku: str = ""
    fulfillable_quantity: int = 0
    fulfillment_status: str = ""


@dataclass(frozen=True)
class NFulfillment:
    external_id: str
    order_external_id: str
    status: str  # canonical: label_created / in_transit / out_for_delivery / pickup_ready / attempt_failed / delivered / exception / unknown
    name: str = ""
    platform_status: str = ""
    shipment_status: str = ""
    carrier: str = ""
    tracking_number: str = ""
    tracking_url: str = ""
    estimated_delivery_at: datetime | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    updated_at: datetime | None = None
    # The order's customer-facing number when the payload tells it ("#1042.1" -> "1042"):
    # names the placeholder order when a shipment arrives before its order.
    order_number: str = ""
    # False when the source cannot know the carrier's progress (WooCommerce tracking meta,
    # Magento shipments: "shipped", nothing more): upsert then uses `status` only for a new
    # row (or one still "unknown"), never over a status a carrier feed set.
    status_authoritative: bool = True


@dataclass(frozen=True)
class NRefund:
    external_id: str
    order_external_id: str
    amount: Decimal
    currency: str = ""
    note: str = ""
    processed_at: datetime | None = None
    lines: list[dict] = field(default_factory=list)
    order_number: str = ""  # see NFulfillment.order_number


@dataclass(frozen=True)
class NReturn:
    external_id: str
    order_external_id: str
    status: str
    name: str = ""
    lines: list[dict] = field(default_factory=list)
    decline_reason: str = ""
    updated_at: datetime | None = None
    order_number: str = ""  # see NFulfillment.order_number


@dataclass(frozen=True)
class NOrder:
    external_id: str
    number: str
    updated_at: datetime | None
    name: str = ""
    email: str = ""
    phone: str = ""
    currency: str = ""
    total: Decimal = Decimal("0")
    subtotal: Decimal = Decimal("0")
    total_tax: Decimal = Decimal("0")
    financial_status: str = ""  # Shopify vocabulary: pending/authorized/paid/partially_refunded/refunded/voided
    fulfillment_status: str = ""  # unfulfilled/partial/fulfilled/restocked
    platform_status: str = ""  # the platform's own status word (Woo/Magento)
    cancelled_at: datetime | None = None
    cancel_reason: str = ""
    placed_at: datetime | None = None
    shipping_address: dict = field(default_factory=dict)
    billing_address: dict = field(default_factory=dict)
    tags: str = ""
    note: str = ""
    customer: NCustomer | None = None
    lines: list[NLine] = field(default_factory=list)
    fulfillments: list[NFulfillment] = field(default_factory=list)
    refunds: list[NRefund] = field(default_factory=list)
    deleted: bool = False  # Woo order.deleted (trash): keep history, mark cancelled
    # The platform's own "total refunded" figure when it sends one (Magento total_refunded);
    # upsert keeps Order.refunded_total at least this high. None: derive from refund rows.
    refunded_total: Decimal | None = None
    # Names of the NOrder fields the payload actually carried. None means a full snapshot
    # (every field is authoritative, blanks included); a set means a partial record
    # (Magento I/O events with a chosen field list, generic partial updates): upsert writes
    # only these fields and keeps the stored values of the others.
    provided: frozenset[str] | None = None


@dataclass(frozen=True)
class NRedact:
    """Shopify privacy topics: remove a customer's personal data (or a whole shop's)."""

    customer_email: str = ""
    customer_external_id: str = ""
    order_external_ids: list[str] = field(default_factory=list)
    whole_shop: bool = False


@dataclass(frozen=True)
class NDataRequest:
    customer_email: str = ""
    customer_external_id: str = ""
    order_external_ids: list[str] = field(default_factory=list)


Record = NOrder | NFulfillment | NRefund | NReturn | NRedact | NDataRequest
