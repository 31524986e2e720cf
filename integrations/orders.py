"""Orders beside a ticket: which order a ticket is about, and what the sidebar shows.

`link_ticket_order` is the only writer of `Ticket.order`. The readers here own their
prefetching so the sidebar costs the same handful of queries for one order or fifty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import (
    Case,
    Count,
    F,
    Max,
    Min,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
    Window,
)
from django.db.models.fields import BooleanField
from django.utils import timezone

from helpdesk.services import Actor, audit_record
from integrations.models import Fulfillment, Order, OrderAction, OrderLine, Refund, Return
from tickets.models import Customer, Message, Ticket

ORDERS_SHOWN = 10
ACTIONS_SHOWN = 5
FIRST_MESSAGE_CHARS = 4000

# "#1042", "order 1042", "order no. 1042", "Bestellung 1042", "commande n° 1042", …
_ORDER_REF = re.compile(
    r"(?:#\s?|\b(?:order|bestellung|bestellnummer|commande|pedido|ordine|bestelling)\b"
    r"\s*(?:number|no\.?|nr\.?|n[°º]|num\.?|#|id)?\s*[:#]?\s*)"
    r"([A-Za-z]{0,4}-?\d{3,12})\b",
    re.IGNORECASE,
)


def order_refs(text: str) -> list[str]:
    """Order numbers mentioned in free text, in order of appearance, without duplicates."""
    found: list[str] = []
    for match in _ORDER_REF.finditer(text or ""):
        ref = match.group(1).upper()
        if ref not in found:
            found.append(ref)
    return found


def normalise_number(raw: str) -> list[str]:
    """Spellings of a quoted order number to look up: "#1042" → ["1042"]."""
    value = (raw or "").strip().lstrip("#").strip()
    if not value:
        return []
    variants = [value, value.upper()]
    return list(dict.fromkeys(v for v in variants if v))


# --- Linking ------------------------------------------------------------------------------


def _first_customer_message(ticket: Ticket) -> str:
    body = (
        Message.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket)
        .order_by("created_at", "id")
        .values_list("body_text", flat=True)
        .first()
    )
    return (body or "")[:FIRST_MESSAGE_CHARS]


def _by_number(ticket: Ticket, numbers: list[str]) -> Order | None:
    """The tenant's order with one of these numbers, the ticket's customer's first."""
    if not numbers:
        return None
    return (
        Order.objects.filter(tenant_id=ticket.tenant_id, number__in=numbers)
        .annotate(
            mine=Case(
                When(customer_id=ticket.customer_id, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )
        .order_by("-mine", F("placed_at").desc(nulls_last=True), "-id")
        .first()
    )


def find_ticket_order(ticket: Ticket) -> tuple[Order | None, str]:
    """(order, how) the ticket is most likely about; how is order_number/subject/message/latest.

    The number the customer or API gave wins, then a number in the subject or first
    message, then the customer's most recent order.
    """
    order = _by_number(ticket, normalise_number(ticket.order_number))
    if order is not None:
        return order, "order_number"
    order = _by_number(ticket, order_refs(ticket.subject))
    if order is not None:
        return order, "subject"
    order = _by_number(ticket, order_refs(_first_customer_message(ticket)))
    if order is not None:
        return order, "message"
    latest = (
        Order.objects.filter(tenant_id=ticket.tenant_id, customer_id=ticket.customer_id)
        .order_by(F("placed_at").desc(nulls_last=True), "-id")
        .first()
    )
    return (latest, "latest") if latest is not None else (None, "")


@transaction.atomic
def link_ticket_order(*, ticket: Ticket, actor: Actor, order: Order | None = None) -> Order | None:
    """Link the ticket to `order` (an agent's choice) or, without one, to the likeliest order.

    Automatic linking never replaces an existing link, so it is safe to call from several
    places (ticket creation, the sidebar, order webhooks); an agent's choice always wins.
    Returns the linked order (None when nothing matched). Records an `order_linked` event.
    """
    if order is not None:
        if order.tenant_id != ticket.tenant_id:
            raise ValidationError({"order": "No such order."})
        how = "agent"
    else:
        if ticket.order_id:
            return ticket.order
        order, how = find_ticket_order(ticket)
        if order is None:
            return None
    rows = Ticket.objects.filter(tenant_id=ticket.tenant_id, pk=ticket.pk).exclude(order_id=order.pk)
    if how != "agent":
        rows = rows.filter(order__isnull=True)  # someone linked it meanwhile: keep theirs
    previous = ticket.order if how == "agent" and ticket.order_id else None
    if not rows.update(order=order, updated_at=timezone.now()):
        ticket.refresh_from_db(fields=["order"])
        return ticket.order
    from tickets.services import _event

    _event(
        ticket,
        actor,
        "order_linked",
        order=str(order),
        order_id=order.pk,
        how=how,
        previous=str(previous) if previous else None,
    ).save()
    if how == "agent":
        audit_record(
            tenant=ticket.tenant,
            actor=actor,
            action="ticket.order_link",
            target=ticket,
            changes={"order": [str(previous) if previous else None, str(order)]},
        )
    ticket.order = order
    # Policies may look at the linked order (value, payment, fulfillment): re-match.
    from tickets.services_order_sla import sla_reevaluate_for_ticket_order

    sla_reevaluate_for_ticket_order(ticket=ticket, actor=actor)
    return order


def link_open_tickets_for_order(*, order: Order) -> int:
    """After a new order arrives: link it to the customer's unlinked open tickets that name it.

    For the webhook upsert to call. Only tickets quoting this order's number are linked,
    so an unrelated question never gets pinned to the newest order.
    """
    if order.customer_id is None:
        return 0
    linked = 0
    # Only the fields that tell whether a ticket names the order (usually none does); the
    # tickets that do are read whole.
    candidates = Ticket.objects.filter(
        tenant_id=order.tenant_id,
        customer_id=order.customer_id,
        order__isnull=True,
        status__in=["new", "open", "pending", "on_hold"],
    ).values_list("pk", "order_number", "subject")[:50]
    wanted = order.number.upper()
    naming = [
        pk
        for pk, order_number, subject in candidates
        if wanted in {n.upper() for n in (*normalise_number(order_number), *order_refs(subject))}
    ]
    if not naming:
        return 0
    for ticket in (
        Ticket.objects.filter(tenant_id=order.tenant_id, pk__in=naming).select_related("tenant").order_by("pk")
    ):
        if link_ticket_order(ticket=ticket, actor=Actor.system(), order=None) == order:
            linked += 1
    return linked


# --- Reading ------------------------------------------------------------------------------


@dataclass
class TicketOrders:
    """What the ticket's order card shows."""

    orders: list[Order]
    linked: Order | None
    order_count: int = 0  # the customer's orders, all of them
    lifetime_value: Decimal | None = None  # paid minus refunded, cancelled orders left out
    currency: str = ""  # "" when the customer bought in several currencies
    hidden: int = 0  # the customer's orders not shown
    foreign_link: bool = False  # the linked order belongs to someone else
    warnings: list[str] = field(default_factory=list)


def _order_prefetches() -> list:
    return [
        Prefetch("lines", queryset=OrderLine.objects.order_by("id")),
        Prefetch(
            "fulfillments",
            queryset=Fulfillment.objects.order_by(F("shipped_at").desc(nulls_last=True), "-id"),
        ),
        Prefetch(
            "refunds",
            queryset=Refund.objects.order_by(F("processed_at").desc(nulls_last=True), "-id"),
        ),
        Prefetch("returns", queryset=Return.objects.order_by("-id")),
        Prefetch(
            "actions",
            queryset=OrderAction.objects.select_related("requested_by", "decided_by").order_by("-created_at", "-id")[
                :ACTIONS_SHOWN
            ],
            to_attr="recent_actions",
        ),
    ]


def orders_for_ticket(ticket: Ticket, *, limit: int = ORDERS_SHOWN) -> TicketOrders:
    """The customer's orders (the linked one first, then newest) with everything the card shows.

    One query for the orders and the customer's totals (window aggregates over the same
    rows), one per prefetched relation: 6 queries whatever the number of orders.
    """
    mine = Q(customer_id=ticket.customer_id)
    scope = mine | Q(pk=ticket.order_id) if ticket.order_id else mine
    counted = mine & Q(cancelled_at__isnull=True)
    rows: list[Any] = list(
        Order.objects.filter(scope, tenant_id=ticket.tenant_id)
        .select_related("connection")
        .annotate(
            is_linked=Case(
                When(pk=ticket.order_id or 0, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
            customer_orders=Window(Count("id", filter=mine)),
            customer_value=Window(Sum(F("total") - F("refunded_total"), filter=counted)),
            currency_min=Window(Min("currency", filter=counted)),
            currency_max=Window(Max("currency", filter=counted)),
        )
        .prefetch_related(*_order_prefetches())
        .order_by("-is_linked", F("placed_at").desc(nulls_last=True), "-id")[:limit]
    )
    result = TicketOrders(orders=rows, linked=next((o for o in rows if o.is_linked), None))  # type: ignore[attr-defined]
    if rows:
        head = rows[0]
        result.order_count = head.customer_orders or 0  # type: ignore[attr-defined]
        result.lifetime_value = head.customer_value  # type: ignore[attr-defined]
        same = head.currency_min == head.currency_max  # type: ignore[attr-defined]
        result.currency = head.currency_min if same and head.currency_min else ""  # type: ignore[attr-defined]
        shown_mine = sum(1 for o in rows if o.customer_id == ticket.customer_id)
        result.hidden = max(result.order_count - shown_mine, 0)
        if result.linked is not None and result.linked.customer_id != ticket.customer_id:
            result.foreign_link = True
    return result


@dataclass(frozen=True)
class CustomerStats:
    order_count: int
    lifetime_value: Decimal
    currency: str
    last_order_at: object | None


def customer_order_stats(customer: Customer) -> CustomerStats:
    """Order count and lifetime value (paid minus refunded, cancelled left out): one query."""
    counted = Q(cancelled_at__isnull=True)
    data = Order.objects.filter(tenant_id=customer.tenant_id, customer=customer).aggregate(
        n=Count("id"),
        value=Sum(F("total") - F("refunded_total"), filter=counted),
        cmin=Min("currency", filter=counted),
        cmax=Max("currency", filter=counted),
        last=Max("placed_at"),
    )
    return CustomerStats(
        order_count=data["n"] or 0,
        lifetime_value=data["value"] or Decimal("0"),
        currency=data["cmin"] if data["cmin"] == data["cmax"] and data["cmin"] else "",
        last_order_at=data["last"],
    )


def order_for_ticket(ticket: Ticket, order_id: int) -> Order:
    """An order an agent may act on from this ticket: the customer's, or the linked one.

    Raises Order.DoesNotExist for anything else (another tenant's id included).
    """
    allowed = Q(customer_id=ticket.customer_id)
    if ticket.order_id:
        allowed |= Q(pk=ticket.order_id)
    return (
        Order.objects.filter(allowed, tenant_id=ticket.tenant_id, pk=order_id)
        .select_related("connection")
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.order_by("id")))
        .get()
    )


def with_details(queryset: QuerySet[Order]) -> QuerySet[Order]:
    """Orders with what the API shows for each: lines, shipments, refunds, returns."""
    return queryset.select_related("connection").prefetch_related(
        Prefetch("lines", queryset=OrderLine.objects.order_by("id")),
        Prefetch("fulfillments", queryset=Fulfillment.objects.order_by("id")),
        Prefetch("refunds", queryset=Refund.objects.order_by("id")),
        Prefetch("returns", queryset=Return.objects.order_by("id")),
    )
