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
  "<platform>:<connection id>"), then by email (case-insensitive), else created as
  tickets.services.customer_get_or_create would (in one INSERT … ON CONFLICT, external id
  included); the external id is stored when the customer has none for this connection.
  Empty name/phone are filled in, nothing is overwritten. A customer created by this run
  has no tickets, so no ticket linking is tried for them.
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
from functools import cache
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db import connection as db_connection
from django.db.models import Q
from django.utils import timezone

from helpdesk.models import AuditLog
from helpdesk.prepared import db_values
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
class Batch:
    """Reads several `apply` calls in one transaction (a drain batch of deliveries) make
    once: per tenant, the active notice rules and whether any SLA policy has order
    conditions. Made per transaction and dropped with it, so a change to either is seen by
    the next batch (at most a fraction of a second later)."""

    notice_rules: dict[int, dict[str, Any]] = field(default_factory=dict)
    order_conditions: dict[int, bool] = field(default_factory=dict)


@dataclass
class _Run:
    connection: Connection
    received_at: datetime
    batch: Batch | None = None
    counts: Counter = field(default_factory=Counter)
    customers: set[int] = field(default_factory=set)
    # Customers this run linked (their rows as read or written here) and created: a customer
    # created by this transaction has no orders but this run's and no tickets at all.
    customer_rows: dict[int, Customer] = field(default_factory=dict)
    new_customers: set[int] = field(default_factory=set)
    records: int = 0
    last_order: Order | None = None  # the order the last NOrder record applied to
    touched: set[tuple[str, int]] = field(default_factory=set)  # (kind, id) notices may announce
    sla_orders: set[int] = field(default_factory=set)  # orders whose SLA facts changed

    @property
    def tenant_id(self) -> int:
        return self.connection.tenant_id

    @property
    def key(self) -> str:
        """The Customer.external_ids key of this connection."""
        return f"{self.connection.platform}:{self.connection.pk}"


def apply(
    *,
    connection: Connection,
    records: Iterable[Record],
    received_at: datetime | None = None,
    batch: Batch | None = None,
    savepoint: bool = True,
) -> dict[str, int]:
    """Apply records to the connection's rows; counts per outcome (see the module doc).
    `batch`: reads shared with the other calls of the caller's transaction (see Batch).
    Atomic: inside a caller's transaction a savepoint, unless `savepoint` is False; then a
    failure spoils the caller's whole transaction, which must roll back (the drain's
    batches do, and run again with savepoints)."""
    with transaction.atomic(savepoint=savepoint):
        return _apply_records(connection, records, received_at, batch)


def _apply_records(
    connection: Connection, records: Iterable[Record], received_at: datetime | None, batch: Batch | None
) -> dict[str, int]:
    run = _Run(connection=connection, received_at=received_at or timezone.now(), batch=batch)
    for record in records:
        run.records += 1
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
    if run.sla_orders and _uses_order_conditions(run):
        from tickets.services_order_sla import sla_reevaluate_for_orders

        sla_reevaluate_for_orders(tenant_id=run.tenant_id, order_ids=run.sla_orders)
    if run.touched:
        # Customer notices for what changed, in this transaction (rows first, Invariant 4).
        from integrations.notices_events import emit_for_run

        emit_for_run(connection=run.connection, touched=run.touched, rules=_notice_rules(run))
    return {key: run.counts[key] for key in COUNT_KEYS}


def _uses_order_conditions(run: _Run) -> bool:
    """Whether an SLA policy of the tenant has order conditions (once per batch)."""
    if run.batch is None:
        return True  # sla_reevaluate_for_orders asks itself
    found = run.batch.order_conditions.get(run.tenant_id)
    if found is None:
        from tickets.services_order_sla import tenant_uses_order_conditions

        found = run.batch.order_conditions[run.tenant_id] = tenant_uses_order_conditions(run.tenant_id)
    return found


def _notice_rules(run: _Run) -> dict[str, Any] | None:
    """The tenant's active notice rules, once per batch (None without one: emit reads them)."""
    if run.batch is None:
        return None
    found = run.batch.notice_rules.get(run.tenant_id)
    if found is None:
        from integrations.notices import active_rules

        found = run.batch.notice_rules[run.tenant_id] = active_rules(run.tenant_id)
    return found


# --- Helpers ---------------------------------------------------------------------------


# Statements by hand. The ORM compiled every statement anew, ~1 ms of CPU each, which was
# most of a delivery's cost; these are built once per process per shape (table and column
# names from the models' meta, never from input), take their parameters through each
# field's get_db_prep_save and hand rows back as model instances through the fields' own
# database converters, as the ORM would.


@cache
def _columns(model: type[models.Model]) -> tuple[str, tuple[tuple[int, tuple[Any, ...], Any], ...]]:
    """(the model's column list, (index, converters, expression) of columns needing any)."""
    meta = model._meta
    quote = db_connection.ops.quote_name
    converters = []
    for index, model_field in enumerate(meta.concrete_fields):
        col = model_field.get_col(meta.db_table)
        found = (*db_connection.ops.get_db_converters(col), *col.get_db_converters(db_connection))
        if found:
            converters.append((index, found, col))
    return ", ".join(quote(str(f.column)) for f in meta.concrete_fields), tuple(converters)


def _from_row(model: type[models.Model], row: Iterable[Any]) -> Any:
    conn = connections[DEFAULT_DB_ALIAS]  # not the proxy: one lookup, not one per field
    values = list(row)
    for index, converters, col in _columns(model)[1]:
        for converter in converters:
            values[index] = converter(values[index], col, conn)
    return model.from_db(conn.alias, _attnames(model), values)


@cache
def _attnames(model: type[models.Model]) -> tuple[str, ...]:
    return tuple(f.attname for f in model._meta.concrete_fields)


def _column(model: type[models.Model], name: str) -> models.Field:
    return cast(models.Field, model._meta.get_field(name))


@cache
def _select_sql(model: type[models.Model], names: tuple[str, ...], lock: bool) -> str:
    meta = model._meta
    quote = db_connection.ops.quote_name
    where = " AND ".join(f"{quote(str(_column(model, n).column))} = %s" for n in names)
    suffix = " FOR UPDATE" if lock and db_connection.features.has_select_for_update else ""
    return f"SELECT {_columns(model)[0]} FROM {quote(meta.db_table)} WHERE {where}{suffix}"  # noqa: S608


def _select(model: type[models.Model], lock: bool = False, **lookup: Any) -> list[Any]:
    """Rows of `model` whose fields (attnames: `order_id`, not `order`) equal `lookup`."""
    conn = connections[DEFAULT_DB_ALIAS]  # not the proxy: one lookup, not one per field
    params = [_column(model, n).get_db_prep_save(v, conn) for n, v in lookup.items()]
    with conn.cursor() as cursor:
        cursor.execute(_select_sql(model, tuple(lookup), lock), params)
        return [_from_row(model, row) for row in cursor.fetchall()]


@cache
def _update_sql(model: type[models.Model], names: tuple[str, ...]) -> str:
    meta = model._meta
    quote = db_connection.ops.quote_name
    sets = ", ".join(f"{quote(str(_column(model, n).column))} = %s" for n in names)
    return f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {quote(str(meta.pk.column))} = %s"  # noqa: S608


def _save(row: models.Model, names: Iterable[str]) -> None:
    """row.save(update_fields=names), without the ORM's per-call compilation."""
    conn = connections[DEFAULT_DB_ALIAS]  # not the proxy: one lookup, not one per field
    names = tuple(dict.fromkeys(names))
    if not names:
        return
    params = [_column(type(row), n).get_db_prep_save(getattr(row, _column(type(row), n).attname), conn) for n in names]
    with conn.cursor() as cursor:
        cursor.execute(_update_sql(type(row), names), [*params, row.pk])


@cache
def _insert_sql(model: type[models.Model], rows: int, conflict: tuple[str, ...] | None) -> str:
    meta = model._meta
    quote = db_connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = ", ".join(quote(str(f.column)) for f in fields)
    values = ", ".join([f"({', '.join(['%s'] * len(fields))})"] * rows)
    on_conflict = ""
    if conflict is not None:
        names = ", ".join(quote(str(_column(model, n).column)) for n in conflict)
        on_conflict = f" ON CONFLICT ({names}) DO NOTHING"
    return (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {values}{on_conflict} "  # noqa: S608
        f"RETURNING {quote(str(meta.pk.column))}"
    )


def _insert(rows: list[Any], conflict: tuple[str, ...] | None = None) -> bool:
    """INSERT the unsaved rows (one model) in one statement; with `conflict` (the names of a
    unique constraint's fields) ON CONFLICT DO NOTHING, for one row: False when it exists.
    A new row is ours, so locked until commit."""
    conn = connections[DEFAULT_DB_ALIAS]  # not the proxy: one lookup, not one per field
    if not rows:
        return True
    model: type[models.Model] = type(rows[0])
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    params = [value for row in rows for value in db_values(fields, row, conn)]
    with conn.cursor() as cursor:
        cursor.execute(_insert_sql(model, len(rows), conflict), params)
        found = cursor.fetchall()
    if len(found) != len(rows):
        return False
    for row, (pk,) in zip(rows, found, strict=True):
        row.pk = pk
        row._state.adding = False
        row._state.db = conn.alias
    return True


class _Raced(Exception):
    """A concurrent transaction inserted the row this one was about to insert."""


def _lock_or_create(model: type[models.Model], create: bool, **lookup: Any) -> tuple[Any, bool]:
    """The row for `lookup`, locked; made when missing and `create` (race-safe).

    `lookup` names exactly the fields of the model's unique constraint (attnames)."""
    found = _select(model, lock=True, **lookup)
    if found or not create:
        return (found[0] if found else None), False
    made = model(**lookup)
    if _insert([made], conflict=tuple(lookup)):
        return made, True
    return _select(model, lock=True, **lookup)[0], False  # a concurrent delivery made it a moment ago


def _lock_or_new(model: type[models.Model], known_new: bool = False, **lookup: Any) -> tuple[Any, bool]:
    """The row for `lookup`, locked, or a new unsaved one (True) for `_store` to insert with
    all its values at once (one statement instead of an INSERT and an UPDATE).
    `known_new`: the caller knows there is none (a child of an order made by this run)."""
    found = [] if known_new else _select(model, lock=True, **lookup)
    if found:
        return found[0], False
    return model(**lookup), True


def _store(row: models.Model, created: bool, changed: Iterable[str], unique: tuple[str, ...]) -> None:
    """Write what changed: the whole row when it is new (raises _Raced when a concurrent
    transaction inserted it meanwhile; the caller starts over and finds it), else the fields."""
    if created:
        if not _insert([row], conflict=unique):
            raise _Raced(type(row).__name__)
    else:
        _save(row, changed)


def _once_more_if_raced(apply_one: Any, *args: Any, **kwargs: Any) -> None:
    """Run `apply_one`; again when it lost a race to insert a row (which now exists, so the
    second run locks and updates it like any other)."""
    try:
        apply_one(*args, **kwargs)
    except _Raced:
        apply_one(*args, **kwargs)


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
        connection_id=run.connection.pk,
        external_id=_fit(Order, "external_id", order_external_id),
    )
    if created:
        run.counts["placeholders"] += 1
        number = _fit(Order, "number", order_number)
        if number:
            order.number, order.name = number, _fit(Order, "name", f"#{number}")
            _save(order, ["number", "name"])
    return order


def _order_values(rec: NOrder) -> dict[str, Any]:
    names = ORDER_FIELDS if rec.provided is None else [n for n in ORDER_FIELDS if n in rec.provided]
    return {name: _fit(Order, name, getattr(rec, name)) for name in names}


ORDER_UNIQUE = ("tenant_id", "connection_id", "external_id")


def _apply_order(run: _Run, rec: NOrder) -> None:
    _once_more_if_raced(_apply_order_once, run, rec)


def _apply_order_once(run: _Run, rec: NOrder) -> None:
    lookup: dict[str, Any] = {
        "tenant_id": run.tenant_id,
        "connection_id": run.connection.pk,
        "external_id": rec.external_id,
    }
    if rec.deleted:
        order, created = _lock_or_create(Order, False, **lookup)
    else:
        order, created = _lock_or_new(Order, **lookup)
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

    changed: list[str] = []
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
        if changed or created:
            order.updated_at = timezone.now()
            _store(order, created, [*changed, "updated_at"], ORDER_UNIQUE)
            if SLA_FIELDS.intersection(changed):
                run.sla_orders.add(order.pk)
    elif created:
        _store(order, created, [], ORDER_UNIQUE)
    if applies:
        lines_changed = False
        if rec.provided is None or "lines" in rec.provided:
            lines_changed = _replace_lines(run, order, rec.lines, known_new=created)
        _count(run, created, bool(changed) or lines_changed)
        run.touched.add(("order", order.pk))
        if (
            order.customer_id is not None
            and order.customer_id not in run.new_customers  # no tickets yet
            and {"customer", "number"} & set(changed)
        ):
            # Open tickets of this customer that quote this order's number get linked to it.
            from integrations.orders import link_open_tickets_for_order

            link_open_tickets_for_order(order=order)

    for fulfillment in rec.fulfillments:
        _apply_fulfillment(run, fulfillment, order=order, order_created=created)
    for refund in rec.refunds:
        _apply_refund(run, refund, order=order, recompute=False)
    # A row this record just made has no refund rows yet (save the ones it carries).
    no_rows = created and not rec.refunds
    if _recompute_refunded(order, reported=rec.refunded_total if applies else None, no_rows=no_rows):
        run.sla_orders.add(order.pk)
    if order.customer_id is not None:
        run.customers.add(order.customer_id)
    run.last_order = order


def _replace_lines(run: _Run, order: Order, lines: list[NLine], known_new: bool = False) -> bool:
    """`known_new`: the order was made by this run, so it has no lines to read."""
    existing = (
        {}
        if known_new
        else {line.external_id: line for line in _select(OrderLine, tenant_id=run.tenant_id, order_id=order.pk)}
    )
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
                    order_id=order.pk,
                    external_id=_fit(OrderLine, "external_id", external_id),
                    **values,
                )
            )
            changed = True
        elif fields := _changes(row, values):
            _save(row, fields)
            changed = True
    _insert(new_lines)  # one INSERT for every new line
    gone = [row.pk for external_id, row in existing.items() if external_id not in wanted]
    if gone:
        OrderLine.objects.filter(tenant_id=run.tenant_id, pk__in=gone).delete()
        changed = True
    return changed


def _amount(value: Any) -> Decimal | None:
    """A sum as the database gave it (SQLite: a float or text) as a Decimal."""
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value)).quantize(CENT, ROUND_HALF_UP)


def _scalars(sql: str, params: list[Any]) -> tuple[Any, ...]:
    with db_connection.cursor() as cursor:
        cursor.execute(sql, params)
        return tuple(cursor.fetchone())


@cache
def _refund_sum_sql() -> str:
    quote = db_connection.ops.quote_name
    return (
        f"SELECT SUM({quote('amount')}) FROM {quote(Refund._meta.db_table)} "  # noqa: S608
        f"WHERE {quote('tenant_id')} = %s AND {quote('order_id')} = %s"
    )


def _recompute_refunded(order: Order, reported: Decimal | None = None, no_rows: bool = False) -> bool:
    """Set refunded_total from the refund rows (see the module doc); True when it changed.
    `no_rows`: the caller knows there are none (a new order), so they are not summed."""
    rows = None if no_rows else _amount(_scalars(_refund_sum_sql(), [order.tenant_id, order.pk])[0])
    floor = _fit(Order, "refunded_total", reported) if reported is not None else order.refunded_total
    total = max(rows or Decimal("0"), floor or Decimal("0"))
    if order.refunded_total == total:
        return False
    order.refunded_total = total
    _save(order, ["refunded_total"])
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


@cache
def _find_customer_sql(by_id: bool, by_email: bool) -> str:
    """Postgres: the customer by platform id (`@>`, the GIN index) or else by email, in one
    statement: a platform-id match first, then the oldest email match."""
    quote = db_connection.ops.quote_name
    ids, email = f"{quote('external_ids')} @> %s", f"{quote('email')} = %s"
    which = " OR ".join([*([ids] if by_id else []), *([email] if by_email else [])])
    order = f"({ids}) DESC, {quote('id')}" if by_id and by_email else quote("id")
    return (
        f"SELECT {_columns(Customer)[0]} FROM {quote(Customer._meta.db_table)} "  # noqa: S608
        f"WHERE {quote('tenant_id')} = %s AND ({which}) ORDER BY {order} LIMIT 1"
    )


def _find_customer(run: _Run, external_id: str, email: str) -> Customer | None:
    conn = connections[DEFAULT_DB_ALIAS]  # not the proxy: one lookup, not one per field
    if conn.vendor != "postgresql":  # the SQLite demo: no JSON containment
        tenant_customers = Customer.objects.filter(tenant_id=run.tenant_id)
        customer = None
        if external_id:
            customer = tenant_customers.filter(by_platform_id(run.key, external_id)).order_by().first()
        if customer is None and email:
            customer = tenant_customers.filter(email=email).order_by("pk").first()
        return customer
    ids = _column(Customer, "external_ids").get_db_prep_save({run.key: external_id}, conn)
    params: list[Any] = [run.tenant_id]
    if external_id:
        params.append(ids)
    if email:
        params.append(email)
    if external_id and email:
        params.append(ids)
    with conn.cursor() as cursor:
        cursor.execute(_find_customer_sql(bool(external_id), bool(email)), params)
        row = cursor.fetchone()
    return None if row is None else _from_row(Customer, row)


@cache
def _insert_customer_sql() -> str:
    quote = db_connection.ops.quote_name
    fields = [f for f in Customer._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(quote(str(f.column)) for f in fields)
    return (
        f"INSERT INTO {quote(Customer._meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({quote('tenant_id')}, {quote('email')}) WHERE NOT ({quote('email')} = '') "
        f"DO UPDATE SET {quote('email')} = EXCLUDED.{quote('email')} "
        f"RETURNING {_columns(Customer)[0]}, (xmax = 0)"
    )


def _create_customer(run: _Run, email: str, incoming: NCustomer) -> tuple[Customer, bool]:
    """The tenant's customer with this (non-empty, lower-cased) email, made with the
    connection's external id, name and phone when there is none: (customer, created).

    What tickets.services.customer_get_or_create makes, in one statement (an INSERT … ON
    CONFLICT that hands back the row a concurrent delivery made), external id included."""
    conn = connections[DEFAULT_DB_ALIAS]  # not the proxy: one lookup, not one per field
    if conn.vendor != "postgresql":
        customer = customer_get_or_create(
            tenant=run.connection.tenant, email=email, name=incoming.name, phone=incoming.phone
        )
        return customer, False
    customer = Customer(
        tenant_id=run.tenant_id,
        email=email,
        name=incoming.name[:150],
        phone=incoming.phone.strip()[:32],
        language=run.connection.tenant.default_language,
        tier=Tier.NEW,
        external_ids={run.key: incoming.external_id} if incoming.external_id else {},
        note="",
        created_at=timezone.now(),
    )
    fields = [f for f in Customer._meta.concrete_fields if not f.primary_key]
    params = [f.get_db_prep_save(f.pre_save(customer, True), conn) for f in fields]
    with conn.cursor() as cursor:
        cursor.execute(_insert_customer_sql(), params)
        row = cursor.fetchone()
    return _from_row(Customer, row[:-1]), bool(row[-1])


def _link_customer(run: _Run, incoming: NCustomer) -> Customer | None:
    # Customer emails are stored lower-cased, so an exact match uses the (tenant, email)
    # unique index; iexact (UPPER(email)) scanned every tenant's customers.
    email = incoming.email.strip().lower()[:254]
    customer = _find_customer(run, incoming.external_id, email)
    if customer is None:
        if email:
            customer, created = _create_customer(run, email, incoming)
            if created:
                run.new_customers.add(customer.pk)
        elif incoming.phone:
            try:
                customer = customer_get_or_create(
                    tenant=run.connection.tenant, phone=incoming.phone, name=incoming.name
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
    _save(customer, changed)
    run.customer_rows[customer.pk] = customer
    return customer


@cache
def _history_sql() -> str:
    quote = db_connection.ops.quote_name
    return (
        f"SELECT COUNT(*), SUM({quote('total')} - {quote('refunded_total')}) "  # noqa: S608
        f"FROM {quote(Order._meta.db_table)} WHERE {quote('tenant_id')} = %s "
        f"AND {quote('customer_id')} = %s AND {quote('cancelled_at')} IS NULL"
    )


def _raise_tier(run: _Run, customer_id: int) -> None:
    order = run.last_order
    if customer_id in run.new_customers and run.records == 1 and order is not None and order.customer_id == customer_id:
        # A customer this run's only record created has no order but that one (no other
        # transaction sees the row before commit): its history needs no query.
        count, value = (0, None) if order.cancelled_at is not None else (1, order.total - order.refunded_total)
    else:
        count, value = _scalars(_history_sql(), [run.tenant_id, customer_id])
    count, value = count or 0, _amount(value) or Decimal("0")
    if value >= VIP_LIFETIME_VALUE or count >= VIP_ORDER_COUNT:
        tier = Tier.VIP
    elif count >= REPEAT_ORDER_COUNT:
        tier = Tier.REPEAT
    else:
        tier = Tier.NEW
    if tier == Tier.NEW:
        return  # the lowest tier: nothing to raise
    # The customer as read in this run saves a query when nothing is to be raised; a raise
    # reads the row again, so it compares against the tier as it is now.
    customer = run.customer_rows.get(customer_id)
    if customer is not None and TIER_RANK[tier] <= TIER_RANK.get(customer.tier, 0):
        return
    customer = Customer.objects.filter(tenant_id=run.tenant_id, pk=customer_id).first()
    if customer is not None and TIER_RANK[tier] > TIER_RANK.get(customer.tier, 0):
        customer_update(customer=customer, actor=Actor.system(), tier=tier)


# --- Fulfillments, refunds, returns ----------------------------------------------------


def _apply_fulfillment(run: _Run, rec: NFulfillment, order: Order | None = None, order_created: bool = False) -> None:
    """`order_created`: `order` was made by this run, so it has no fulfillments yet."""
    order = order or _order_for_child(run, rec.order_external_id, rec.order_number)
    _once_more_if_raced(_apply_fulfillment_once, run, rec, order, order_created)


FULFILLMENT_UNIQUE = ("tenant_id", "order_id", "external_id")


def _apply_fulfillment_once(run: _Run, rec: NFulfillment, order: Order, known_new: bool) -> None:
    row, created = _lock_or_new(
        Fulfillment,
        known_new,
        tenant_id=run.tenant_id,
        order_id=order.pk,
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
    if created or changed:
        _store(row, created, changed, FULFILLMENT_UNIQUE)
    _count(run, created, bool(changed))
    if created or changed:
        run.touched.add(("fulfillment", row.pk))


def _apply_refund(run: _Run, rec: NRefund, order: Order | None = None, recompute: bool = True) -> None:
    order = order or _order_for_child(run, rec.order_external_id, rec.order_number)
    row, created = _lock_or_create(
        Refund,
        True,
        tenant_id=run.tenant_id,
        order_id=order.pk,
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
    _save(row, changed)
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
        order_id=order.pk,
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
    _save(row, changed)
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
