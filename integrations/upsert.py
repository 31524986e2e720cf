"""Apply normalised records (integrations/normalized.py) to a connection's order rows.

`apply(connection=, records=, received_at=)` runs in one transaction and is idempotent:
applying the same records again changes nothing. It returns counts per record (nested
fulfillments and refunds of an order count as records too):

- created / updated / unchanged: the row was made / changed / already said this;
- stale: the record's `updated_at` is older than what we hold (DESIGN.md Invariant 3), so
  it overwrote nothing;
- ignored: nothing to apply it to (a deletion of an order we never saw);
- placeholders: orders made for a fulfillment/refund/return that arrived before its order;
- redacted: privacy redactions that changed something; data_requests: requests recorded.

Rules:
- Orders are upserted by (tenant, connection, external_id) under `select_for_update`.
  `updated_at` older than the stored `platform_updated_at` → stale; equal → no-op; a row
  with no `platform_updated_at` (a placeholder) takes any record. A record without
  `updated_at` (WooCommerce order.deleted) is checked with `received_at` (default: now)
  instead and leaves `platform_updated_at` alone.
- A full snapshot (`provided is None`) writes every field; a partial record only its
  `provided` fields. Lines, when given, replace the order's lines (matched by external_id;
  lines no longer listed are deleted). `cancelled_at` never moves later once set (Woo
  reports the cancel time as "last modified").
- Deleted orders (Woo trash) are kept: `platform_status="trash"`, cancelled at the record's
  time if not cancelled already.
- Out-of-order children: a fulfillment/refund/return whose order is unknown creates a
  PLACEHOLDER order (external_id, and number/name when the payload told them, no
  `platform_updated_at`), which the order's own record later fills in. Safer than failing
  the delivery: Shopify retries only for 4 h and WooCommerce never.
- Fulfillments: stale protection by their own `updated_at`; the canonical `status` moves
  only with an authoritative record (see NFulfillment.status_authoritative); each status
  change appends `{"at", "status", "message"}` to `events` and sets `last_event_at`;
  `shipped_at` is set once the parcel moves, `delivered_at` when delivered. Carrier and
  tracking fields are never blanked by a record that lacks them.
- Refunds: upserted by id (immutable at the platforms); `Order.refunded_total` is then
  recomputed as the sum of the order's refund rows, but never below the platform's own
  figure (NOrder.refunded_total, Magento) or, without one, the stored value.
- Tickets: when an order gains its customer or number, the customer's open unlinked tickets
  that quote that number are linked to it (integrations.orders.link_open_tickets_for_order).
- Customers: linked by the platform customer id (Customer.external_ids key
  "<platform>:<connection id>"), then by email (case-insensitive), else created through
  tickets.services.customer_get_or_create; the external id is stored when the customer has
  none for this connection. Empty name/phone are filled in, nothing is overwritten.
- Tiers: after the records, each touched customer's tier is recomputed from their
  non-cancelled orders (VIP: lifetime value total − refunded ≥ 1,000 in whatever currency,
  or ≥ 10 orders; repeat: ≥ 2 orders; else new) and only ever raised, through
  tickets.services.customer_update (so open tickets get their SLA re-evaluated).
- SLA: when an order's value, refunds, payment or fulfillment status, placed or cancelled
  time changed, the open tickets linked to it are re-matched against the SLA policies
  (tickets.services_order_sla; nothing runs unless a policy has order conditions). A stale
  or repeated record changes no field, so it re-matches nothing.
- Privacy (NRedact): the customer (found by platform id, then email) loses email, name,
  phone, note and all external ids; their orders (linked to them anywhere in the tenant,
  listed in the request, or of this connection with their email) lose email, phone,
  addresses and note and get `redacted_at`; their tickets' message bodies become
  "[redacted]" (and the queue snippet too). `whole_shop` redacts every order of the
  connection and drops the connection's key from customers' external ids. A redacted order
  never takes personal data again from a later (retried) delivery. Each redaction and each
  data request (NDataRequest, nothing else changes) is written to the audit log once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import connection as db_connection
from django.db import models, transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from helpdesk.models import AuditLog
from helpdesk.services import Actor, audit_record
from integrations.models import Connection, Fulfillment, Order, OrderLine, Refund, Return
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
from tickets.models import Customer, Message, Ticket, Tier
from tickets.services import customer_get_or_create, customer_update

REDACTED = "[redacted]"
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999.99")  # DecimalField(max_digits=12, decimal_places=2)
VIP_LIFETIME_VALUE = Decimal("1000")
VIP_ORDER_COUNT = 10
REPEAT_ORDER_COUNT = 2
TIER_RANK: dict[str, int] = {Tier.NEW: 0, Tier.REPEAT: 1, Tier.VIP: 2}
COUNT_KEYS = (
    "created",
    "updated",
    "unchanged",
    "stale",
    "ignored",
    "placeholders",
    "redacted",
    "data_requests",
)

ORDER_FIELDS = (
    "number",
    "name",
    "email",
    "phone",
    "currency",
    "total",
    "subtotal",
    "total_tax",
    "financial_status",
    "fulfillment_status",
    "platform_status",
    "cancelled_at",
    "cancel_reason",
    "placed_at",
    "shipping_address",
    "billing_address",
    "tags",
    "note",
)
# Order fields SLA policy conditions read (tickets.policy): a change re-matches the open
# tickets linked to the order (refunded_total too, see _recompute_refunded).
SLA_FIELDS = frozenset({"total", "currency", "financial_status", "fulfillment_status", "placed_at", "cancelled_at"})
ORDER_PII = frozenset({"email", "phone", "shipping_address", "billing_address", "note"})
SHIPPED = frozenset({"in_transit", "out_for_delivery", "pickup_ready", "attempt_failed", "delivered"})


@dataclass
class _Run:
    connection: Connection
    received_at: datetime
    counts: Counter = field(default_factory=Counter)
    customers: set[int] = field(default_factory=set)
    touched: set[tuple[str, int]] = field(default_factory=set)  # (kind, id) notices may announce
    sla_orders: set[int] = field(default_factory=set)  # orders whose SLA facts changed

    @property
    def tenant_id(self) -> int:
        return self.connection.tenant_id

    @property
    def key(self) -> str:
        """The Customer.external_ids key of this connection."""
        return f"{self.connection.platform}:{self.connection.pk}"


@transaction.atomic
def apply(*, connection: Connection, records: Iterable[Record], received_at: datetime | None = None) -> dict[str, int]:
    """Apply records to the connection's rows; counts per outcome (see the module doc)."""
    run = _Run(connection=connection, received_at=received_at or timezone.now())
    for record in records:
        if isinstance(record, NOrder):
            _apply_order(run, record)
        elif isinstance(record, NFulfillment):
            _apply_fulfillment(run, record)
        elif isinstance(record, NRefund):
            _apply_refund(run, record)
        elif isinstance(record, NReturn):
            _apply_return(run, record)
        elif isinstance(record, NRedact):
            _apply_redact(run, record)
        elif isinstance(record, NDataRequest):
            _apply_data_request(run, record)
        else:
            raise TypeError(f"not a normalised record: {type(record).__name__}")
    for customer_id in sorted(run.customers):
        _raise_tier(run, customer_id)
    if run.sla_orders:
        from tickets.services_order_sla import sla_reevaluate_for_orders

        sla_reevaluate_for_orders(tenant_id=run.tenant_id, order_ids=run.sla_orders)
    if run.touched:
        # Customer notices for what changed, in this transaction (rows first, Invariant 4).
        from integrations.notices_events import emit_for_run

        emit_for_run(connection=run.connection, touched=run.touched)
    return {key: run.counts[key] for key in COUNT_KEYS}


# --- Helpers ---------------------------------------------------------------------------


def _lock_or_create(model: type[models.Model], create: bool, **lookup: Any) -> tuple[Any, bool]:
    """The row for `lookup`, locked; made when missing and `create` (race-safe).

    `lookup` names exactly the fields of the model's unique constraint."""
    query = model._default_manager.select_for_update().filter(**lookup)
    row = query.first()
    if row is not None or not create:
        return row, False
    made = _insert_unless_exists(model, lookup)
    if made is not None:
        return made, True
    return query.get(), False  # a concurrent delivery made it a moment ago


def _insert_unless_exists(model: type[models.Model], lookup: dict[str, Any]) -> Any | None:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id: the new row (ours, so locked until
    commit), or None when it exists. Instead of a savepoint around create() (two more round
    trips per new order, fulfillment or refund, and the worker makes many)."""
    obj = model(**lookup)
    meta = model._meta
    quote = db_connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(quote(str(f.column)) for f in fields)
    conflict = ", ".join(quote(str(cast(models.Field, meta.get_field(name)).column)) for name in lookup)
    params = [f.get_db_prep_save(f.pre_save(obj, True), db_connection) for f in fields]
    # Table and column names come from the model's meta, never from input.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))}) "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {quote(str(meta.pk.column))}"
    )
    with db_connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchone()
    if found is None:
        return None
    obj.pk = found[0]
    obj._state.adding = False
    obj._state.db = db_connection.alias
    return obj


def _fit(model: type[models.Model], name: str, value: Any) -> Any:
    """A value made to fit its column: strings cut to max_length, amounts to cents."""
    model_field = model._meta.get_field(name)
    if isinstance(value, str):
        max_length = getattr(model_field, "max_length", None)
        return value[:max_length] if max_length else value
    if isinstance(value, Decimal):
        amount = value.quantize(CENT, ROUND_HALF_UP)
        if abs(amount) > MAX_AMOUNT:
            raise PayloadError(f"{name}: amount {value} is too large")
        return amount
    return value


def _changes(row: models.Model, values: dict[str, Any]) -> list[str]:
    """Set the values that differ on `row`; the names of the fields that changed."""
    changed = []
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed.append(name)
    return changed


def _count(run: _Run, created: bool, changed: bool) -> None:
    run.counts["created" if created else "updated" if changed else "unchanged"] += 1


def _is_stale(incoming: datetime | None, stored: datetime | None) -> bool:
    return incoming is not None and stored is not None and incoming < stored


# --- Orders ----------------------------------------------------------------------------


def _order_for_child(run: _Run, order_external_id: str, order_number: str) -> Order:
    """The child's order, locked; a placeholder when it has not arrived yet."""
    order, created = _lock_or_create(
        Order,
        True,
        tenant_id=run.tenant_id,
        connection=run.connection,
        external_id=_fit(Order, "external_id", order_external_id),
    )
    if created:
        run.counts["placeholders"] += 1
        number = _fit(Order, "number", order_number)
        if number:
            order.number, order.name = number, _fit(Order, "name", f"#{number}")
            order.save(update_fields=["number", "name"])
    return order


def _order_values(rec: NOrder) -> dict[str, Any]:
    names = ORDER_FIELDS if rec.provided is None else [n for n in ORDER_FIELDS if n in rec.provided]
    return {name: _fit(Order, name, getattr(rec, name)) for name in names}


def _apply_order(run: _Run, rec: NOrder) -> None:
    order, created = _lock_or_create(
        Order,
        not rec.deleted,
        tenant_id=run.tenant_id,
        connection=run.connection,
        external_id=rec.external_id,
    )
    if order is None:  # a deletion of an order we never saw
        run.counts["ignored"] += 1
        return
    clock = rec.updated_at or run.received_at
    stored = order.platform_updated_at
    applies = True
    if _is_stale(clock, stored):
        run.counts["stale"] += 1
        applies = False
    elif rec.updated_at is not None and rec.updated_at == stored:
        run.counts["unchanged"] += 1
        applies = False

    if applies:
        values = _order_values(rec)
        if order.redacted_at is not None:
            values = {k: v for k, v in values.items() if k not in ORDER_PII}
        if rec.deleted:
            values["platform_status"] = "trash"
            values["cancelled_at"] = order.cancelled_at or values.get("cancelled_at") or clock
        new_cancel = values.get("cancelled_at")
        if new_cancel is not None and order.cancelled_at is not None:
            values["cancelled_at"] = min(new_cancel, order.cancelled_at)
        if rec.updated_at is not None and (stored is None or rec.updated_at > stored):
            values["platform_updated_at"] = rec.updated_at
        changed = _changes(order, values)
        wants_customer = rec.provided is None or "customer" in rec.provided
        if rec.customer is not None and wants_customer and order.redacted_at is None:
            customer = _link_customer(run, rec.customer)
            if customer is not None and order.customer_id != customer.pk:
                order.customer = customer
                changed.append("customer")
        if changed:
            order.updated_at = timezone.now()
            order.save(update_fields=[*changed, "updated_at"])
            if SLA_FIELDS.intersection(changed):
                run.sla_orders.add(order.pk)
        lines_changed = False
        if rec.provided is None or "lines" in rec.provided:
            lines_changed = _replace_lines(run, order, rec.lines)
        _count(run, created, bool(changed) or lines_changed)
        run.touched.add(("order", order.pk))
        if order.customer_id is not None and {"customer", "number"} & set(changed):
            # Open tickets of this customer that quote this order's number get linked to it.
            from integrations.orders import link_open_tickets_for_order

            link_open_tickets_for_order(order=order)

    for fulfillment in rec.fulfillments:
        _apply_fulfillment(run, fulfillment, order=order)
    for refund in rec.refunds:
        _apply_refund(run, refund, order=order, recompute=False)
    # A row this record just made has no refund rows yet (save the ones it carries).
    no_rows = created and not rec.refunds
    if _recompute_refunded(order, reported=rec.refunded_total if applies else None, no_rows=no_rows):
        run.sla_orders.add(order.pk)
    if order.customer_id is not None:
        run.customers.add(order.customer_id)


def _replace_lines(run: _Run, order: Order, lines: list[NLine]) -> bool:
    existing = {line.external_id: line for line in OrderLine.objects.filter(tenant_id=run.tenant_id, order=order)}
    wanted = {line.external_id: line for line in lines}  # a repeated id: the last one wins
    changed = False
    new_lines = []
    for external_id, line in wanted.items():
        values = {
            "sku": _fit(OrderLine, "sku", line.sku),
            "title": _fit(OrderLine, "title", line.title),
            "quantity": max(line.quantity, 0),
            "price": _fit(OrderLine, "price", line.price),
            "fulfillable_quantity": max(line.fulfillable_quantity, 0),
            "fulfillment_status": _fit(OrderLine, "fulfillment_status", line.fulfillment_status),
        }
        row = existing.get(external_id)
        if row is None:
            new_lines.append(
                OrderLine(
                    tenant_id=run.tenant_id,
                    order=order,
                    external_id=_fit(OrderLine, "external_id", external_id),
                    **values,
                )
            )
            changed = True
        elif fields := _changes(row, values):
            row.save(update_fields=fields)
            changed = True
    OrderLine.objects.bulk_create(new_lines)  # one INSERT for every new line
    gone = [row.pk for external_id, row in existing.items() if external_id not in wanted]
    if gone:
        OrderLine.objects.filter(tenant_id=run.tenant_id, pk__in=gone).delete()
        changed = True
    return changed


def _recompute_refunded(order: Order, reported: Decimal | None = None, no_rows: bool = False) -> bool:
    """Set refunded_total from the refund rows (see the module doc); True when it changed.
    `no_rows`: the caller knows there are none (a new order), so they are not summed."""
    rows = (
        None
        if no_rows
        else Refund.objects.filter(tenant_id=order.tenant_id, order=order).aggregate(s=Sum("amount"))["s"]
    )
    floor = _fit(Order, "refunded_total", reported) if reported is not None else order.refunded_total
    total = max(rows or Decimal("0"), floor or Decimal("0"))
    if order.refunded_total == total:
        return False
    order.refunded_total = total
    order.save(update_fields=["refunded_total"])
    return True


# --- Customers -------------------------------------------------------------------------


def by_platform_id(key: str, external_id: str) -> Q:
    """Customers whose `external_ids[key]` is `external_id`.

    On Postgres as containment (`@>`), which the (tenant_id, external_ids) GIN index serves
    (tickets migration 0007); SQLite (the demo) has no JSON containment, so it looks the
    key up directly.
    """
    if db_connection.vendor == "postgresql":
        return Q(external_ids__contains={key: external_id})
    return Q(**{f"external_ids__{key}": external_id})


def _link_customer(run: _Run, incoming: NCustomer) -> Customer | None:
    # Customer emails are stored lower-cased, so an exact match uses the (tenant, email)
    # unique index; iexact (UPPER(email)) scanned every tenant's customers.
    tenant_customers = Customer.objects.filter(tenant_id=run.tenant_id)
    customer = None
    if incoming.external_id:
        found = tenant_customers.filter(by_platform_id(run.key, incoming.external_id)).order_by()[:1]
        customer = next(iter(found), None)
    email = incoming.email.strip().lower()[:254]
    if customer is None and email:
        customer = tenant_customers.filter(email=email).order_by("pk").first()
    if customer is None:
        if not email and not incoming.phone:
            return None
        try:
            # Race-safe without a savepoint: an INSERT … ON CONFLICT for emails.
            customer = customer_get_or_create(
                tenant=run.connection.tenant,
                email=email,
                name=incoming.name,
                phone=incoming.phone,
            )
        except ValidationError:
            return None
        if customer is None:
            return None
    changed = []
    if incoming.external_id and run.key not in (customer.external_ids or {}):
        customer.external_ids = {**(customer.external_ids or {}), run.key: incoming.external_id}
        changed.append("external_ids")
    if incoming.name and not customer.name:
        customer.name = incoming.name[:150]
        changed.append("name")
    if incoming.phone and not customer.phone:
        customer.phone = incoming.phone[:32]
        changed.append("phone")
    if changed:
        customer.save(update_fields=changed)
    return customer


def _raise_tier(run: _Run, customer_id: int) -> None:
    customer = Customer.objects.filter(tenant_id=run.tenant_id, pk=customer_id).first()
    if customer is None:
        return
    history = Order.objects.filter(
        tenant_id=run.tenant_id, customer_id=customer_id, cancelled_at__isnull=True
    ).aggregate(n=Count("id"), value=Sum(F("total") - F("refunded_total")))
    count, value = history["n"] or 0, history["value"] or Decimal("0")
    if value >= VIP_LIFETIME_VALUE or count >= VIP_ORDER_COUNT:
        tier = Tier.VIP
    elif count >= REPEAT_ORDER_COUNT:
        tier = Tier.REPEAT
    else:
        tier = Tier.NEW
    if TIER_RANK[tier] > TIER_RANK.get(customer.tier, 0):
        customer_update(customer=customer, actor=Actor.system(), tier=tier)


# --- Fulfillments, refunds, returns ----------------------------------------------------


def _apply_fulfillment(run: _Run, rec: NFulfillment, order: Order | None = None) -> None:
    order = order or _order_for_child(run, rec.order_external_id, rec.order_number)
    row, created = _lock_or_create(
        Fulfillment,
        True,
        tenant_id=run.tenant_id,
        order=order,
        external_id=_fit(Fulfillment, "external_id", rec.external_id),
    )
    stored = row.platform_updated_at
    if not created and _is_stale(rec.updated_at, stored):
        run.counts["stale"] += 1
        return
    if not created and rec.updated_at is not None and rec.updated_at == stored:
        run.counts["unchanged"] += 1
        return
    # When the status changed: the record's own clock; for a source that only knows "shipped"
    # (not authoritative), the ship date; else when the delivery came in.
    fallback = None if rec.status_authoritative else rec.shipped_at
    at = rec.updated_at or fallback or run.received_at
    values: dict[str, Any] = {}
    for name in (
        "name",
        "platform_status",
        "shipment_status",
        "carrier",
        "tracking_number",
        "tracking_url",
    ):
        value = getattr(rec, name)
        if value:  # never blank what another record told us
            values[name] = _fit(Fulfillment, name, value)
    if rec.estimated_delivery_at is not None:
        values["estimated_delivery_at"] = rec.estimated_delivery_at
    status = row.status
    if rec.status_authoritative or created or row.status == Fulfillment.Canonical.UNKNOWN:
        status = rec.status if rec.status in Fulfillment.Canonical.values else Fulfillment.Canonical.UNKNOWN
    if status != row.status:
        event = {
            "at": at.isoformat(),
            "status": status,
            "message": rec.shipment_status or rec.platform_status,
        }
        values["status"] = status
        values["events"] = [*(row.events or []), event]
        values["last_event_at"] = at
    elif rec.updated_at is not None and (row.last_event_at is None or rec.updated_at > row.last_event_at):
        values["last_event_at"] = rec.updated_at  # a newer scan with the same status
    if rec.shipped_at is not None:
        values["shipped_at"] = rec.shipped_at
    elif row.shipped_at is None and status in SHIPPED:
        values["shipped_at"] = at
    if rec.delivered_at is not None:
        values["delivered_at"] = rec.delivered_at
    elif status == Fulfillment.Canonical.DELIVERED:
        if row.delivered_at is None:
            values["delivered_at"] = at
    elif rec.status_authoritative and row.delivered_at is not None:
        values["delivered_at"] = None  # the carrier took "delivered" back
    if rec.updated_at is not None and (stored is None or rec.updated_at > stored):
        values["platform_updated_at"] = rec.updated_at
    changed = _changes(row, values)
    if changed:
        row.save(update_fields=changed)
    _count(run, created, bool(changed))
    if created or changed:
        run.touched.add(("fulfillment", row.pk))


def _apply_refund(run: _Run, rec: NRefund, order: Order | None = None, recompute: bool = True) -> None:
    order = order or _order_for_child(run, rec.order_external_id, rec.order_number)
    row, created = _lock_or_create(
        Refund,
        True,
        tenant_id=run.tenant_id,
        order=order,
        external_id=_fit(Refund, "external_id", rec.external_id),
    )
    values: dict[str, Any] = {"amount": _fit(Refund, "amount", abs(rec.amount))}
    if rec.currency:
        values["currency"] = _fit(Refund, "currency", rec.currency)
    if rec.note:
        values["note"] = _fit(Refund, "note", rec.note)
    if rec.processed_at is not None:
        values["processed_at"] = rec.processed_at
    if rec.lines:
        values["lines"] = rec.lines
    changed = _changes(row, values)
    if changed:
        row.save(update_fields=changed)
    _count(run, created, bool(changed))
    if created:
        run.touched.add(("refund", row.pk))
    if recompute and _recompute_refunded(order):
        run.sla_orders.add(order.pk)


def _apply_return(run: _Run, rec: NReturn) -> None:
    order = _order_for_child(run, rec.order_external_id, rec.order_number)
    row, created = _lock_or_create(
        Return,
        True,
        tenant_id=run.tenant_id,
        order=order,
        external_id=_fit(Return, "external_id", rec.external_id),
    )
    stored = row.platform_updated_at
    if not created and _is_stale(rec.updated_at, stored):
        run.counts["stale"] += 1
        return
    if not created and rec.updated_at is not None and rec.updated_at == stored:
        run.counts["unchanged"] += 1
        return
    values: dict[str, Any] = {"status": _fit(Return, "status", rec.status)}
    if rec.name:
        values["name"] = _fit(Return, "name", rec.name)
    if rec.lines:
        values["lines"] = rec.lines
    if rec.decline_reason or row.decline_reason:
        values["decline_reason"] = _fit(Return, "decline_reason", rec.decline_reason)
    if rec.updated_at is not None and (stored is None or rec.updated_at > stored):
        values["platform_updated_at"] = rec.updated_at
    changed = _changes(row, values)
    if changed:
        row.save(update_fields=changed)
    _count(run, created, bool(changed))
    if created or changed:
        run.touched.add(("return", row.pk))


# --- Privacy ---------------------------------------------------------------------------


def _redact_orders(orders: models.QuerySet[Order], at: datetime) -> int:
    return orders.filter(redacted_at__isnull=True).update(
        email="",
        phone="",
        shipping_address={},
        billing_address={},
        note="",
        redacted_at=at,
        updated_at=at,
    )


def _apply_redact(run: _Run, rec: NRedact) -> None:
    at = timezone.now()
    tenant = run.connection.tenant
    orders = Order.objects.filter(tenant_id=run.tenant_id)
    if rec.whole_shop:
        redacted = _redact_orders(orders.filter(connection=run.connection), at)
        unlinked = 0
        for customer in Customer.objects.select_for_update().filter(
            tenant_id=run.tenant_id, external_ids__has_key=run.key
        ):
            customer.external_ids = {k: v for k, v in customer.external_ids.items() if k != run.key}
            customer.save(update_fields=["external_ids"])
            unlinked += 1
        if redacted or unlinked:
            audit_record(
                tenant=tenant,
                actor=Actor.system(),
                action="connection.shop_redact",
                target=run.connection,
                changes={"orders": redacted, "customers_unlinked": unlinked},
            )
        run.counts["redacted" if redacted or unlinked else "unchanged"] += 1
        return

    who = Q(pk__in=[])
    if rec.customer_external_id:
        who |= by_platform_id(run.key, rec.customer_external_id)
    if rec.customer_email:
        who |= Q(email=rec.customer_email.strip().lower())
    customers = list(Customer.objects.select_for_update().filter(tenant_id=run.tenant_id).filter(who))
    ids = [c.pk for c in customers]
    which = Q(customer_id__in=ids) | Q(connection=run.connection, external_id__in=rec.order_external_ids)
    if rec.customer_email:
        which |= Q(connection=run.connection, email__iexact=rec.customer_email.strip())
    redacted_orders = _redact_orders(orders.filter(which), at)
    messages = Message.objects.filter(tenant_id=run.tenant_id, ticket__customer_id__in=ids)
    redacted_messages = messages.exclude(body_text=REDACTED).update(body_text=REDACTED)
    redacted_messages += messages.exclude(body_html="").exclude(body_html=REDACTED).update(body_html=REDACTED)
    Ticket.objects.filter(tenant_id=run.tenant_id, customer_id__in=ids).exclude(snippet=REDACTED).update(
        snippet=REDACTED
    )
    redacted_customers = 0
    for customer in customers:
        changed = _changes(customer, {"email": "", "name": "", "phone": "", "note": "", "external_ids": {}})
        if changed:
            customer.save(update_fields=changed)
            redacted_customers += 1
    if redacted_orders or redacted_messages or redacted_customers:
        targets: list[Customer | None] = [*customers] or [None]
        for target in targets:
            audit_record(
                tenant=tenant,
                actor=Actor.system(),
                action="customer.redact",
                target=target,
                changes={
                    "source": run.key,
                    "orders": redacted_orders,
                    "messages": redacted_messages,
                    "customers": redacted_customers,
                },
            )
        run.counts["redacted"] += 1
    else:
        run.counts["unchanged"] += 1


def _apply_data_request(run: _Run, rec: NDataRequest) -> None:
    """Nothing changes: the request is written to the audit log (once) for the admins."""
    customer = None
    if rec.customer_external_id:
        customer = Customer.objects.filter(
            by_platform_id(run.key, rec.customer_external_id), tenant_id=run.tenant_id
        ).first()
    if customer is None and rec.customer_email:
        customer = Customer.objects.filter(tenant_id=run.tenant_id, email=rec.customer_email.strip().lower()).first()
    details = {
        "source": run.key,
        "customer_external_id": rec.customer_external_id,
        "customer_email": rec.customer_email,
        "orders_requested": list(rec.order_external_ids),
    }
    already = AuditLog.objects.filter(tenant_id=run.tenant_id, action="customer.data_request", changes=details)
    if not already.exists():
        audit_record(
            tenant=run.connection.tenant,
            actor=Actor.system(),
            action="customer.data_request",
            target=customer,
            changes=details,
        )
    run.counts["data_requests"] += 1
