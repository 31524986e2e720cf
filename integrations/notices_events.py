"""Where notice events come from: order data changes, solved tickets, late shipments.

- `emit_after_upsert` runs inside `integrations.upsert.apply` (webhooks and reconcile both
  go through it), in the same transaction as the data change, for the rows it touched. It
  reads each row's *current* state, so a replayed or reordered delivery asks for the same
  notice again and the dedupe key keeps it to one.
- `ticket_solved` is called after commit by `tickets.services._set_status`: the CSAT survey.
- `delay_scan` (beat): a fulfillment with no carrier scan for the tenant's threshold, a
  carrier exception or failed attempt, or a passed estimated delivery, not delivered, is
  flagged once (FulfillmentDelay, INSERT … ON CONFLICT DO NOTHING), then fanned out in
  chunks: the delay notice, a timeline event on the order's open tickets, and a `delayed`
  tag on the customer's open WISMO tickets (tickets.services.ticket_update).

Events about the past are not announced: an order placed, or a shipment last moved, more
than FRESH ago (a newly connected store's first reconcile reads three days of orders).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from helpdesk.models import Tenant
from helpdesk.services import Actor
from integrations.models import Fulfillment, Order, Refund, Return
from integrations.notices import NoticeRequest, active_rules, notices_enqueue_many, settings_for, subject_key
from integrations.notices_models import FulfillmentDelay, NoticeEvent, NoticeRule
from tickets.models import UNSOLVED_STATUSES, Status, Ticket, TicketEvent, TicketTag

logger = logging.getLogger(__name__)

FRESH = timedelta(days=3)
# A shipment that has not moved for this long is history, not a delay to announce.
DELAY_LOOKBACK = timedelta(days=30)
FANOUT_CHUNK = 500
DELAYED_TAG = "delayed"
# Ticket types that mean "where is my order" (tickets/demo.py, bench data, the common name).
WISMO_SLUGS = ("wismo", "where-is-my-order", "where-is-my-order-wismo")
# Return statuses that mean the goods came back (Shopify closes a return once processed).
RETURN_RECEIVED = frozenset({"received", "closed", "completed", "processed", "returned", "restocked"})
SHIPPED_STATES = (Fulfillment.Canonical.LABEL_CREATED, Fulfillment.Canonical.IN_TRANSIT)


@dataclass
class Touched:
    """Rows an upsert run created or changed (ids), collected by integrations.upsert."""

    orders: set[int] = field(default_factory=set)
    fulfillments: set[int] = field(default_factory=set)
    refunds: set[int] = field(default_factory=set)
    returns: set[int] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.orders or self.fulfillments or self.refunds or self.returns)


def _orders(tenant_id: int, ids: Iterable[int]) -> dict[int, Order]:
    """Orders with what the template context reads, in a fixed handful of queries."""
    return {
        o.pk: o
        for o in Order.objects.filter(tenant_id=tenant_id, pk__in=list(ids))
        .select_related("customer")
        .prefetch_related("lines", "fulfillments", "refunds", "returns")
    }


def _fresh(at: datetime | None, now: datetime) -> bool:
    return at is not None and at >= now - FRESH


# The events each kind of touched row can announce (emit_after_upsert).
EVENTS_BY_KIND = {
    "order": frozenset({NoticeEvent.ORDER_CONFIRMED}),
    "fulfillment": frozenset(
        {NoticeEvent.SHIPPED, NoticeEvent.OUT_FOR_DELIVERY, NoticeEvent.DELIVERED, NoticeEvent.DELIVERY_FEEDBACK}
    ),
    "refund": frozenset({NoticeEvent.REFUND_ISSUED}),
    "return": frozenset({NoticeEvent.RETURN_RECEIVED}),
}


def emit_after_upsert(
    *, tenant: Tenant, touched: Touched, now: datetime | None = None, rules: dict[str, NoticeRule] | None = None
) -> list[int]:
    """Notice rows for what an upsert changed; the ids of new rows. `rules`: the tenant's
    active rules when the caller has them (notices.active_rules)."""
    if not touched:
        return []
    if rules is None:
        rules = active_rules(tenant.pk)
    kinds = (
        ("order", touched.orders),
        ("fulfillment", touched.fulfillments),
        ("refund", touched.refunds),
        ("return", touched.returns),
    )
    if not any(EVENTS_BY_KIND[kind] & rules.keys() for kind, ids in kinds if ids):
        return []  # no rule would send anything: nothing to read
    now = now or timezone.now()
    fulfillments = list(Fulfillment.objects.filter(tenant_id=tenant.pk, pk__in=touched.fulfillments))
    refunds = list(Refund.objects.filter(tenant_id=tenant.pk, pk__in=touched.refunds))
    returns = list(Return.objects.filter(tenant_id=tenant.pk, pk__in=touched.returns))
    order_ids = set(touched.orders) | {
        row.order_id
        for rows in (fulfillments, refunds, returns)
        for row in rows  # type: ignore[attr-defined]
    }
    orders = _orders(tenant.pk, order_ids)
    requests: list[NoticeRequest] = []

    def add(event: str, key: str, order: Order, **extra) -> None:
        if order.cancelled_at is not None and event not in (NoticeEvent.REFUND_ISSUED, NoticeEvent.RETURN_RECEIVED):
            return
        requests.append(NoticeRequest(event=event, subject_key=key, customer=order.customer, order=order, **extra))

    for pk in touched.orders:
        order = orders.get(pk)
        if order is not None and order.platform_updated_at is not None and _fresh(order.placed_at, now):
            add(NoticeEvent.ORDER_CONFIRMED, subject_key("order", pk), order)
    for f in fulfillments:
        order = orders.get(f.order_id)
        if order is None or not _fresh(f.last_event_at or f.shipped_at, now):
            continue
        key = subject_key("fulfillment", f.pk)
        if f.status in SHIPPED_STATES and f.tracking_number:
            add(NoticeEvent.SHIPPED, key, order, fulfillment=f)
        elif f.status == Fulfillment.Canonical.OUT_FOR_DELIVERY:
            add(NoticeEvent.OUT_FOR_DELIVERY, key, order, fulfillment=f)
        elif f.status == Fulfillment.Canonical.DELIVERED:
            add(NoticeEvent.DELIVERED, key, order, fulfillment=f)
            add(NoticeEvent.DELIVERY_FEEDBACK, key, order, fulfillment=f)
    for r in refunds:
        order = orders.get(r.order_id)
        if order is not None and (r.processed_at is None or _fresh(r.processed_at, now)):
            add(NoticeEvent.REFUND_ISSUED, subject_key("refund", r.pk), order, refund=r)
    for ret in returns:
        order = orders.get(ret.order_id)
        if order is not None and ret.status.lower() in RETURN_RECEIVED:
            add(NoticeEvent.RETURN_RECEIVED, subject_key("return", ret.pk), order, return_=ret)
    return notices_enqueue_many(tenant=tenant, requests=requests, now=now, rules=rules)


def emit_for_run(*, connection, touched: set[tuple[str, int]], rules: dict[str, NoticeRule] | None = None) -> list[int]:
    """The upsert hook: (kind, id) pairs of rows an `upsert.apply` run created or changed.
    `rules`: the tenant's active notice rules when the caller read them already."""
    found = Touched()
    for kind, pk in touched:
        bucket = {"order": found.orders, "fulfillment": found.fulfillments, "refund": found.refunds}.get(kind)
        (bucket if bucket is not None else found.returns).add(pk)
    if rules is None:
        rules = active_rules(connection.tenant_id)
    return emit_after_upsert(tenant=connection.tenant, touched=found, rules=rules)


def ticket_solved(tenant_id: int, ticket_id: int) -> None:
    """After a ticket is solved (on commit): the CSAT survey notice. Never raises: the
    solve is already committed, and a notice problem must not turn it into an error."""
    from tickets.csat import survey_url

    try:
        ticket = (
            Ticket.objects.filter(tenant_id=tenant_id, pk=ticket_id)
            .select_related("customer", "tenant", "order")
            .first()
        )
        if ticket is None or ticket.status != Status.SOLVED:
            return
        order = _orders(tenant_id, [ticket.order_id]).get(ticket.order_id) if ticket.order_id else None
        notices_enqueue_many(
            tenant=ticket.tenant,
            requests=[
                NoticeRequest(
                    event=NoticeEvent.CSAT_SURVEY,
                    subject_key=subject_key("ticket", ticket.pk),
                    customer=ticket.customer,
                    ticket=ticket,
                    order=order,
                    links={"survey": survey_url(tenant_id, ticket.pk)},
                )
            ],
        )
    except Exception:
        logger.exception("CSAT survey notice for ticket %s failed", ticket_id)


# --- Delay detection ---------------------------------------------------------------------


def _candidates_sql(tenant_id: int, now: datetime, threshold: timedelta, limit: int) -> tuple[str, list]:
    f = Fulfillment._meta.db_table
    o = Order._meta.db_table
    d = FulfillmentDelay._meta.db_table
    sql = f"""
        SELECT f.id, f.order_id,
               CASE WHEN f.status IN ('exception', 'attempt_failed') THEN 'exception'
                    WHEN f.estimated_delivery_at IS NOT NULL AND f.estimated_delivery_at < %s THEN 'overdue'
                    ELSE 'no_scan' END
        FROM {f} f
        JOIN {o} o ON o.id = f.order_id AND o.tenant_id = f.tenant_id
        WHERE f.tenant_id = %s
          AND f.status IN ('label_created', 'in_transit', 'out_for_delivery', 'attempt_failed', 'exception')
          AND f.delivered_at IS NULL
          AND o.cancelled_at IS NULL
          AND COALESCE(f.last_event_at, f.shipped_at) >= %s
          AND (f.status IN ('exception', 'attempt_failed')
               OR f.estimated_delivery_at < %s
               OR COALESCE(f.last_event_at, f.shipped_at) < %s)
          AND NOT EXISTS (SELECT 1 FROM {d} d WHERE d.tenant_id = f.tenant_id AND d.fulfillment_id = f.id)
        ORDER BY f.id
        LIMIT %s
    """  # noqa: S608 — table names from model meta
    return sql, [now, tenant_id, now - DELAY_LOOKBACK, now, now - threshold, limit]


def delay_candidates(tenant_id: int, now: datetime, threshold: timedelta, limit: int) -> list[tuple[int, int, str]]:
    """(fulfillment id, order id, reason) of late shipments not flagged yet."""
    sql, params = _candidates_sql(tenant_id, now, threshold, limit)
    with db_connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(row[0], row[1], row[2]) for row in cursor.fetchall()]


def _flag(tenant_id: int, found: list[tuple[int, int, str]], now: datetime) -> list[tuple[int, int, str]]:
    """Insert the flags; only the ones this call made (a concurrent scan's come back empty)."""
    from integrations.notices import _insert_returning

    rows = [
        {"tenant": tenant_id, "fulfillment": fid, "order": oid, "reason": reason, "detected_at": now}
        for fid, oid, reason in found
    ]
    made = set(
        _insert_returning(FulfillmentDelay, rows, conflict=("tenant", "fulfillment"), returning=("fulfillment",))
    )
    return [row for row in found if row[0] in made]


@dataclass
class DelayReport:
    flagged: int = 0
    notices: int = 0
    ticket_events: int = 0
    tagged: int = 0


def delay_scan(*, tenant: Tenant, now: datetime | None = None, max_rows: int = 50_000) -> DelayReport:
    """Flag late shipments once and fan each chunk out in its own transaction."""
    now = now or timezone.now()
    threshold = timedelta(hours=settings_for(tenant.pk).delay_hours)
    report = DelayReport()
    while report.flagged < max_rows:
        with transaction.atomic():
            found = delay_candidates(tenant.pk, now, threshold, FANOUT_CHUNK)
            if not found:
                break
            flagged = _flag(tenant.pk, found, now)
            if flagged:
                _fan_out(tenant, flagged, now, report)
            report.flagged += len(flagged)
    return report


def _fan_out(tenant: Tenant, flagged: list[tuple[int, int, str]], now: datetime, report: DelayReport) -> None:
    reasons = {fid: reason for fid, _oid, reason in flagged}
    fulfillments = list(Fulfillment.objects.filter(tenant_id=tenant.pk, pk__in=list(reasons)))
    orders = _orders(tenant.pk, {f.order_id for f in fulfillments})
    requests = [
        NoticeRequest(
            event=NoticeEvent.DELAY,
            subject_key=subject_key("fulfillment", f.pk),
            customer=orders[f.order_id].customer,
            order=orders[f.order_id],
            fulfillment=f,
        )
        for f in fulfillments
        if f.order_id in orders
    ]
    report.notices += len(notices_enqueue_many(tenant=tenant, requests=requests, now=now))

    # The order's open tickets, and the customer's open WISMO tickets, hear about it.
    order_ids = list(orders)
    customer_ids = [o.customer_id for o in orders.values() if o.customer_id]
    wismo = Q(ticket_type__slug__in=WISMO_SLUGS) | Q(ticket_type__name__iexact="where is my order")
    tickets = list(
        Ticket.objects.filter(tenant_id=tenant.pk, status__in=UNSOLVED_STATUSES)
        .filter(Q(order_id__in=order_ids) | (Q(customer_id__in=customer_ids) & wismo))
        .select_related("ticket_type")
    )
    if not tickets:
        return
    by_order = {f.order_id: f for f in fulfillments}
    by_customer = {o.customer_id: o for o in orders.values() if o.customer_id}
    events = []
    for t in tickets:
        order = orders.get(t.order_id) if t.order_id in orders else by_customer.get(t.customer_id)
        if order is None:
            continue
        f = by_order.get(order.pk)
        events.append(
            TicketEvent(
                tenant_id=tenant.pk,
                ticket=t,
                created_at=now,
                actor_type="system",
                actor_label="Delay detection",
                kind="shipment_delayed",
                data={
                    "order": order.name or order.number,
                    "reason": FulfillmentDelay.Reason(reasons[f.pk]).label if f else "",
                    "tracking_number": f.tracking_number if f else "",
                },
            )
        )
    TicketEvent.objects.bulk_create(events, batch_size=1000)
    report.ticket_events += len(events)
    is_wismo = [t for t in tickets if t.ticket_type is not None and _is_wismo(t.ticket_type)]
    already = set(
        TicketTag.objects.filter(
            tenant_id=tenant.pk, ticket_id__in=[t.pk for t in is_wismo], tag__name=DELAYED_TAG
        ).values_list("ticket_id", flat=True)
    )
    from tickets.services import ticket_update

    actor = Actor.system()
    for t in is_wismo:
        if t.pk in already:
            continue
        names = list(TicketTag.objects.filter(tenant_id=tenant.pk, ticket=t).values_list("tag__name", flat=True))
        ticket_update(ticket=t, actor=actor, tags=[*names, DELAYED_TAG], at=now)
        report.tagged += 1


def _is_wismo(ticket_type) -> bool:
    return ticket_type.slug in WISMO_SLUGS or ticket_type.name.lower() == "where is my order"
