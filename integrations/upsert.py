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
from contextvars import ContextVar
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
    _apply_body(run, records)
    return _finish(run)


def _apply_body(run: _Run, records: Iterable[Record]) -> None:
    """The records' rows (everything but what `_finish` does after them)."""
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


def _finish(run: _Run, history: dict[int, tuple[int, Any]] | None = None, follow_up: bool = True) -> dict[str, int]:
    """After the rows: tiers, then (unless the caller does it for several runs at once,
    apply_many) SLA re-matching and notices; the run's counts. `history`: the customers'
    order history when the caller read it for a whole batch."""
    for customer_id in sorted(run.customers):
        _raise_tier(run, customer_id, history)
    if follow_up:
        _follow_up(run, run.sla_orders, run.touched)
    return {key: run.counts[key] for key in COUNT_KEYS}


def _follow_up(run: _Run, sla_orders: set[int], touched: set[tuple[str, int]]) -> None:
    """Re-match the SLA of tickets linked to `sla_orders`; notices for the `touched` rows of
    the run's connection (both read the rows as they are now, so one call may serve several
    runs)."""
    if sla_orders and _uses_order_conditions(run):
        from tickets.services_order_sla import sla_reevaluate_for_orders

        sla_reevaluate_for_orders(tenant_id=run.tenant_id, order_ids=sla_orders)
    if touched:
        # Customer notices for what changed, in this transaction (rows first, Invariant 4).
        from integrations.notices_events import emit_for_run

        emit_for_run(connection=run.connection, touched=touched, rules=_notice_rules(run))


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


# --- Batched mode ------------------------------------------------------------------------
# apply_many applies a drain batch's deliveries (25) with one statement per table instead of
# about six per delivery: the rows the records name are read up front (orders and their
# children locked, customers by platform id and email), the records are applied in memory
# exactly as `apply` applies them, one after the other, and the new rows and changes are
# written at the end, with ids taken from the tables' sequences beforehand. Any surprise (a
# row a concurrent transaction inserted meanwhile, a bad value) raises: the caller rolls the
# whole batch back and applies its deliveries one by one (services._drain_batch). Ticket
# links, tiers, SLA re-matching and notices follow once for the batch, on the rows as they
# are after it: an event a later delivery of the same batch superseded (an order placed and
# cancelled, a parcel shipped and out for delivery) is not announced.

_UNKNOWN = object()
_WORK: ContextVar[_Work | None] = ContextVar("storedesk_upsert_work", default=None)
CHILDREN: tuple[type[models.Model], ...] = (Fulfillment, Refund, Return)
# Insert order: parents before the rows that point at them (constraints are immediate).
WRITE_ORDER: tuple[type[models.Model], ...] = (Customer, Order, OrderLine, Fulfillment, Refund, Return)
BATCHABLE = (NOrder, NFulfillment, NRefund, NReturn)
CHILD_MODEL: dict[type, type[models.Model]] = {NFulfillment: Fulfillment, NRefund: Refund, NReturn: Return}
INSERT_CHUNK = 500


class Conflict(Exception):
    """A row the batch was about to insert exists: a concurrent transaction made it."""


def batchable(records: Iterable[Record]) -> bool:
    """Whether apply_many takes these records (privacy requests go through `apply`)."""
    return db_connection.vendor == "postgresql" and all(isinstance(r, BATCHABLE) for r in records)


def apply_many(
    items: list[tuple[Connection, list[Record], datetime]], batch: Batch | None = None
) -> list[dict[str, int]]:
    """Apply several deliveries' records (one tenant; each item a connection, its records
    and when they were received) in the caller's transaction; counts per item, as `apply`.

    Postgres only, records of BATCHABLE types only. No savepoint: on any exception the
    caller's transaction is spoiled and must roll back. Raises Conflict when a concurrent
    transaction inserted one of the rows meanwhile."""
    tenant_id = items[0][0].tenant_id
    work = _Work(tenant_id)
    work.read(items)
    token = _WORK.set(work)
    runs = []
    try:
        for connection, records, received_at in items:
            run = _Run(connection=connection, received_at=received_at, batch=batch)
            _apply_body(run, records)
            runs.append(run)
        work.write()
    finally:
        _WORK.reset(token)
    if work.links:
        from integrations.orders import link_open_tickets_for_order

        for order in work.links.values():
            link_open_tickets_for_order(order=order)
    history = _histories(tenant_id, {c for run in runs for c in run.customers if not _history_known(run, c)})
    counts = [_finish(run, history, follow_up=False) for run in runs]
    # SLA re-matching and notices once per connection for the whole batch, a few statements
    # instead of a few per delivery (both read the rows as they are now: see "Batched mode"
    # for what that means for notices).
    together: dict[Any, tuple[_Run, set[int], set[tuple[str, int]]]] = {}
    for run in runs:
        _, sla_orders, touched = together.setdefault(run.connection.pk, (run, set(), set()))
        sla_orders |= run.sla_orders
        touched |= run.touched
    for first, sla_orders, touched in together.values():
        _follow_up(first, sla_orders, touched)
    return counts


@cache
def _histories_sql(customers: int) -> str:
    quote = db_connection.ops.quote_name
    return (
        f"SELECT {quote('customer_id')}, COUNT(*), SUM({quote('total')} - {quote('refunded_total')}) "  # noqa: S608
        f"FROM {quote(Order._meta.db_table)} WHERE {quote('tenant_id')} = %s "
        f"AND {quote('customer_id')} IN ({', '.join(['%s'] * customers)}) AND {quote('cancelled_at')} IS NULL "
        f"GROUP BY {quote('customer_id')}"
    )


def _histories(tenant_id: int, customer_ids: set[int]) -> dict[int, tuple[int, Any]]:
    """(order count, lifetime value) of each customer's non-cancelled orders, in one
    statement (see _raise_tier); customers without any are left out."""
    if not customer_ids:
        return {}
    with db_connection.cursor() as cursor:
        cursor.execute(_histories_sql(len(customer_ids)), [tenant_id, *sorted(customer_ids)])
        return {customer_id: (count, value) for customer_id, count, value in cursor.fetchall()}


@cache
def _orders_by_key_sql() -> str:
    quote = db_connection.ops.quote_name
    columns = ", ".join(f"o.{c.strip()}" for c in _columns(Order)[0].split(","))
    # One index lookup (order_unique_external) per key, whatever the statistics say.
    return (
        f"SELECT {columns} FROM unnest(%s::uuid[], %s::text[]) AS k(k_connection, k_external) "  # noqa: S608
        f"CROSS JOIN LATERAL (SELECT * FROM {quote(Order._meta.db_table)} WHERE {quote('tenant_id')} = %s "
        f"AND {quote('connection_id')} = k.k_connection AND {quote('external_id')} = k.k_external FOR UPDATE) o"
    )


@cache
def _children_sql(model: type[models.Model], lock: bool) -> str:
    quote = db_connection.ops.quote_name
    return (
        f"SELECT {_columns(model)[0]} FROM {quote(model._meta.db_table)} "  # noqa: S608
        f"WHERE {quote('tenant_id')} = %s AND {quote('order_id')} = ANY(%s) ORDER BY {quote('id')}"
        + (" FOR UPDATE" if lock else "")
    )


@cache
def _customers_sql() -> str:
    quote = db_connection.ops.quote_name
    return (
        f"SELECT {_columns(Customer)[0]} FROM {quote(Customer._meta.db_table)} "  # noqa: S608
        f"WHERE {quote('tenant_id')} = %s AND ({quote('external_ids')} @> ANY(%s::jsonb[]) "
        f"OR {quote('email')} = ANY(%s))"
    )


@cache
def _ids_sql(tables: tuple[str, ...]) -> str:
    quote = db_connection.ops.quote_name
    parts = [
        f"SELECT {i}, nextval(pg_get_serial_sequence('{quote(table)}', 'id')) FROM generate_series(1, %s)"  # noqa: S608
        for i, table in enumerate(tables)
    ]
    return " UNION ALL ".join(parts)


@cache
def _insert_with_ids_sql(model: type[models.Model], rows: int) -> str:
    meta = model._meta
    quote = db_connection.ops.quote_name
    values = ", ".join([f"({', '.join(['%s'] * len(meta.concrete_fields))})"] * rows)
    # No conflict target: a clash on any unique index (a row a concurrent transaction made)
    # drops the row, and the count returned tells.
    return (
        f"INSERT INTO {quote(meta.db_table)} ({_columns(model)[0]}) VALUES {values} "  # noqa: S608
        f"ON CONFLICT DO NOTHING RETURNING {quote(str(meta.pk.column))}"
    )


class _Work:
    """The batch's rows in memory (see "Batched mode"): what was read, what is new, what
    changed. Lookups answer from here when the batch read them (a key read and not found
    means no row: its insert would meet a concurrent one at `write`, which raises)."""

    def __init__(self, tenant_id: int) -> None:
        self.tenant_id = tenant_id
        self.rows: dict[tuple[Any, ...], Any] = {}  # (model, parent id, external id) -> row
        self.orders_read: set[tuple[Any, str]] = set()  # (connection id, external id)
        self.children_read: set[int] = set()  # orders whose children are all in `rows`
        self.lines: dict[int, list[OrderLine]] = {}
        self.refunds: dict[int, list[Refund]] = {}
        self.customers: dict[int, Customer] = {}
        self.customer_keys_read: set[tuple[str, str]] = set()  # (connection key, platform id)
        self.emails_read: set[str] = set()
        self.bounds: Counter = Counter()  # most new rows per model the records can make
        self.ids: dict[type[models.Model], list[int]] = {}
        self.new: dict[type[models.Model], dict[int, Any]] = {m: {} for m in WRITE_ORDER}  # id(row) -> row
        self.changed: dict[int, tuple[Any, dict[str, None]]] = {}  # id(row) -> (row, names)
        self.links: dict[int, Order] = {}  # orders whose customer's open tickets may name them

    # -- reading up front

    def read(self, items: list[tuple[Connection, list[Record], datetime]]) -> None:
        order_keys: dict[tuple[Any, str], None] = {}
        customer_keys: dict[tuple[str, str], None] = {}
        emails: dict[str, None] = {}
        for connection, records, _ in items:
            key = f"{connection.platform}:{connection.pk}"
            for rec in records:
                if isinstance(rec, NOrder):
                    order_keys[(connection.pk, rec.external_id)] = None
                    self.bounds[Order] += 1
                    self.bounds[OrderLine] += len(rec.lines)
                    self.bounds[Fulfillment] += len(rec.fulfillments)
                    self.bounds[Refund] += len(rec.refunds)
                    if rec.customer is not None:
                        self.bounds[Customer] += 1
                        if rec.customer.external_id:
                            customer_keys[(key, rec.customer.external_id)] = None
                        email = rec.customer.email.strip().lower()[:254]
                        if email:
                            emails[email] = None
                else:
                    child = cast(NFulfillment | NRefund | NReturn, rec)
                    order_keys[(connection.pk, _fit(Order, "external_id", child.order_external_id))] = None
                    self.bounds[Order] += 1  # a placeholder, if the order is not here yet
                    self.bounds[CHILD_MODEL[type(child)]] += 1
        self._read_orders(list(order_keys))
        self._read_customers(list(customer_keys), list(emails))

    def _read_orders(self, keys: list[tuple[Any, str]]) -> None:
        if not keys:
            return
        with db_connection.cursor() as cursor:
            cursor.execute(_orders_by_key_sql(), [[str(c) for c, _ in keys], [e for _, e in keys], self.tenant_id])
            orders = [_from_row(Order, row) for row in cursor.fetchall()]
        self.orders_read.update(keys)
        for order in orders:
            self._register(order)
        self._read_children([order.pk for order in orders])

    def _read_children(self, order_ids: list[int]) -> None:
        if not order_ids:
            return
        with db_connection.cursor() as cursor:
            models_: tuple[type[models.Model], ...] = (OrderLine, *CHILDREN)
            for model in models_:
                cursor.execute(_children_sql(model, model is not OrderLine), [self.tenant_id, order_ids])
                for row in cursor.fetchall():
                    self._register(_from_row(model, row))
        for order_id in order_ids:
            self.lines.setdefault(order_id, [])
            self.refunds.setdefault(order_id, [])
        self.children_read.update(order_ids)

    def _read_customers(self, keys: list[tuple[str, str]], emails: list[str]) -> None:
        self.customer_keys_read.update(keys)
        self.emails_read.update(emails)
        if not keys and not emails:
            return
        external_ids = _column(Customer, "external_ids")
        wanted = [external_ids.get_db_prep_save({k: v}, db_connection) for k, v in keys]
        with db_connection.cursor() as cursor:
            cursor.execute(_customers_sql(), [self.tenant_id, wanted, emails])
            for row in cursor.fetchall():
                self.customer(_from_row(Customer, row))

    def _register(self, row: Any) -> None:
        model = type(row)
        if model is Order:
            self.rows[(Order, row.connection_id, row.external_id)] = row
        elif model is OrderLine:
            self.lines.setdefault(row.order_id, []).append(row)
        elif model is Customer:
            self.customers[row.pk] = row
        else:
            self.rows[(model, row.order_id, row.external_id)] = row
            if model is Refund:
                self.refunds.setdefault(row.order_id, []).append(row)

    # -- answering lookups

    def select(self, model: type[models.Model], lookup: dict[str, Any]) -> list[Any] | None:
        """The rows `_select` asked for, or None when the batch did not read them."""
        if lookup.get("tenant_id") != self.tenant_id:
            return None
        names = set(lookup)
        if model is Order and names == {"tenant_id", "connection_id", "external_id"}:
            key = (lookup["connection_id"], lookup["external_id"])
            row = self.rows.get((Order, *key))
            return [row] if row is not None else [] if key in self.orders_read else None
        if model in CHILDREN and names == {"tenant_id", "order_id", "external_id"}:
            row = self.rows.get((model, lookup["order_id"], lookup["external_id"]))
            return [row] if row is not None else [] if lookup["order_id"] in self.children_read else None
        if model is OrderLine and names == {"tenant_id", "order_id"} and lookup["order_id"] in self.children_read:
            return list(self.lines[lookup["order_id"]])
        return None

    def remember(self, model: type[models.Model], rows: list[Any]) -> None:
        """Rows `_select` read because the batch had not (kept, so later records see them)."""
        if model is Order:
            for row in rows:
                self._register(row)
            self._read_children([row.pk for row in rows if row.pk not in self.children_read])
        elif model in CHILDREN:
            for row in rows:
                self._register(row)

    def refunds_of(self, order_id: int) -> list[Refund] | None:
        return self.refunds.get(order_id) if order_id in self.children_read else None

    def find_customer(self, key: str, external_id: str, email: str) -> Customer | None | object:
        """As `_find_customer`: by platform id, then the oldest with the email; _UNKNOWN
        when the batch did not read them."""
        if (external_id and (key, external_id) not in self.customer_keys_read) or (
            email and email not in self.emails_read
        ):
            return _UNKNOWN
        if external_id:
            found = [c for c in self.customers.values() if (c.external_ids or {}).get(key) == external_id]
            if found:
                return min(found, key=lambda c: c.pk)
        if email:
            found = [c for c in self.customers.values() if c.email == email]
            if found:
                return min(found, key=lambda c: c.pk)
        return None

    def customer(self, customer: Customer) -> Customer:
        """The batch's instance of this customer (the one its changes are made on)."""
        return self.customers.setdefault(customer.pk, customer)

    # -- new rows and changes

    def add(self, row: Any) -> None:
        """A new row: its id now, its INSERT at `write` (with the values it has then)."""
        model = type(row)
        if not self.ids.get(model):
            self._take_ids(model)
        row.pk = self.ids[model].pop()
        row._state.adding = False
        row._state.db = DEFAULT_DB_ALIAS
        self.new[model][id(row)] = row
        self._register(row)
        if model is Order:
            self.children_read.add(row.pk)
            self.lines[row.pk] = []
            self.refunds[row.pk] = []

    def _take_ids(self, model: type[models.Model]) -> None:
        """At the batch's first new row: ids for every row its records can make, of every
        model, in one statement (those left unused are skipped values of the sequences, as
        after any rollback). Should a model need more, eight more of it."""
        if not self.ids:
            wanted = {m: self.bounds[m] for m in WRITE_ORDER if self.bounds[m] > 0}
            wanted[model] = max(wanted.get(model, 0), 1)
        else:
            wanted = {model: 8}
        order = tuple(wanted)
        with db_connection.cursor() as cursor:
            cursor.execute(_ids_sql(tuple(m._meta.db_table for m in order)), [wanted[m] for m in order])
            taken = cursor.fetchall()
        for m in WRITE_ORDER:
            self.ids.setdefault(m, [])
        for index, pk in sorted(taken, key=lambda r: -r[1]):
            self.ids[order[index]].append(pk)  # popped smallest first

    def defer_save(self, row: Any, names: tuple[str, ...]) -> None:
        """`_save` of a row of the batch: nothing now (a new row is written whole; a read
        one's changed fields at `write`, after the rows they may point at)."""
        key = id(row)
        if key in self.new[type(row)]:
            return
        self.changed.setdefault(key, (row, {}))[1].update(dict.fromkeys(names))

    def forget_lines(self, order_id: int, gone: list[OrderLine]) -> list[OrderLine]:
        """Lines an order no longer lists: dropped here; those already stored are returned
        for the caller to delete."""
        stored = []
        for line in gone:
            self.lines[order_id] = [row for row in self.lines.get(order_id, []) if row is not line]
            if self.new[OrderLine].pop(id(line), None) is None:
                self.changed.pop(id(line), None)
                stored.append(line)
        return stored

    def write(self) -> None:
        conn = connections[DEFAULT_DB_ALIAS]
        for model in WRITE_ORDER:
            rows = list(self.new[model].values())
            fields = list(model._meta.concrete_fields)
            for start in range(0, len(rows), INSERT_CHUNK):
                chunk = rows[start : start + INSERT_CHUNK]
                params = [value for row in chunk for value in db_values(fields, row, conn)]
                with conn.cursor() as cursor:
                    cursor.execute(_insert_with_ids_sql(model, len(chunk)), params)
                    if len(cursor.fetchall()) != len(chunk):
                        raise Conflict(model.__name__)
        token = _WORK.set(None)  # the real UPDATEs now
        try:
            for row, names in self.changed.values():
                _save(row, names)
        finally:
            _WORK.reset(token)


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
    work = _WORK.get()
    if work is not None:
        known = work.select(model, lookup)
        if known is not None:
            return known
    conn = connections[DEFAULT_DB_ALIAS]  # not the proxy: one lookup, not one per field
    params = [_column(model, n).get_db_prep_save(v, conn) for n, v in lookup.items()]
    with conn.cursor() as cursor:
        cursor.execute(_select_sql(model, tuple(lookup), lock), params)
        rows = [_from_row(model, row) for row in cursor.fetchall()]
    if work is not None:
        work.remember(model, rows)
    return rows


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
    work = _WORK.get()
    if work is not None:
        work.defer_save(row, names)
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
    work = _WORK.get()
    if work is not None:
        for row in rows:
            work.add(row)
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
            work = _WORK.get()
            if work is not None:
                work.links[order.pk] = order  # after the batch's rows are written
            else:
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
    gone = [row for external_id, row in existing.items() if external_id not in wanted]
    work = _WORK.get()
    if work is not None:
        gone = work.forget_lines(order.pk, gone)  # new rows of this batch are just not written
    if gone:
        OrderLine.objects.filter(tenant_id=run.tenant_id, pk__in=[row.pk for row in gone]).delete()
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
    work = _WORK.get()
    if no_rows:
        rows = None
    elif work is not None and (known := work.refunds_of(order.pk)) is not None:
        rows = sum((refund.amount for refund in known), Decimal("0"))
    else:
        rows = _amount(_scalars(_refund_sum_sql(), [order.tenant_id, order.pk])[0])
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
    work = _WORK.get()
    if work is not None:
        known = work.find_customer(run.key, external_id, email)
        if known is not _UNKNOWN:
            return cast(Customer | None, known)
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
    customer = None if row is None else _from_row(Customer, row)
    if work is not None and customer is not None:
        customer = work.customer(customer)
    return customer


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
    work = _WORK.get()
    if work is not None:
        work.add(customer)  # written with the batch (a concurrent insert of it: redo)
        return customer, True
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
    work = _WORK.get()
    if work is not None:
        work.customer(customer)  # found by phone: known to the batch's later records now
    return customer


def _history_known(run: _Run, customer_id: int) -> bool:
    """A customer this run's only record created has no order but that one (no other
    transaction sees the row before commit): its history needs no query."""
    order = run.last_order
    return (
        customer_id in run.new_customers and run.records == 1 and order is not None and order.customer_id == customer_id
    )


def _raise_tier(run: _Run, customer_id: int, history: dict[int, tuple[int, Any]] | None = None) -> None:
    order = run.last_order
    if order is not None and _history_known(run, customer_id):
        count, value = (0, None) if order.cancelled_at is not None else (1, order.total - order.refunded_total)
    elif history is not None:
        count, value = history.get(customer_id, (0, None))
    else:
        count, value = _histories(run.tenant_id, {customer_id}).get(customer_id, (0, None))
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
