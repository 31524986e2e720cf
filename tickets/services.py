"""Writers for customers, tickets, messages and SLA clocks.

Every state change of a ticket goes through here: it records a TicketEvent, keeps the SLA
clocks and the queue's denormalised columns right, and enqueues follow-ups after commit.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nh3
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.db.models import Q
from django.utils import timezone

from helpdesk.models import Membership, Role, Tenant, User
from helpdesk.prepared import ExpressionValue, db_values, prepared_rows
from helpdesk.services import Actor
from helpdesk.tenancy import tenants_with_due
from tickets import clocks, policy
from tickets.models import (
    OPEN_STATUSES,
    BusinessSchedule,
    Channel,
    Customer,
    Message,
    Notification,
    Priority,
    SlaClock,
    SlaMetric,
    SlaPolicy,
    Status,
    Tag,
    Team,
    Ticket,
    TicketCounter,
    TicketEvent,
    TicketTag,
    TicketType,
    Tier,
)

State = SlaClock.State
POLICY_CACHE_SECONDS = 60
MAX_TAGS = 20
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_\-:]{0,49}$")

# Which statuses may follow which. Closed is final: a new message makes a follow-up ticket.
TRANSITIONS: dict[str, set[str]] = {
    Status.NEW: {Status.OPEN, Status.PENDING, Status.ON_HOLD, Status.SOLVED, Status.CLOSED},
    Status.OPEN: {Status.PENDING, Status.ON_HOLD, Status.SOLVED, Status.CLOSED},
    Status.PENDING: {Status.OPEN, Status.ON_HOLD, Status.SOLVED, Status.CLOSED},
    Status.ON_HOLD: {Status.OPEN, Status.PENDING, Status.SOLVED, Status.CLOSED},
    Status.SOLVED: {Status.OPEN, Status.PENDING, Status.ON_HOLD, Status.CLOSED},
    Status.CLOSED: set(),
}


# --- Compiled SLA policies (cached) -------------------------------------------------


@dataclass(frozen=True)
class CompiledTarget:
    minutes: int
    business_hours: bool
    warn_before_minutes: int


@dataclass(frozen=True)
class CompiledPolicy:
    rule: policy.PolicyRule
    math: clocks.ClockMath
    pause_on_hold: bool
    targets: dict[tuple[str, str], CompiledTarget]


def _policy_cache_key(tenant_id: int) -> str:
    return f"sla-policies:{tenant_id}"


def sla_policies_changed(tenant: Tenant) -> None:
    """Call after any edit of policies, targets, schedules or holidays."""
    cache.delete(_policy_cache_key(tenant.pk))


def compiled_policies(tenant_id: int) -> list[CompiledPolicy]:
    """The tenant's active policies in order, compiled to plain values (cached briefly)."""
    key = _policy_cache_key(tenant_id)
    found = cache.get(key)
    if found is not None:
        return found
    default_schedule = BusinessSchedule.objects.filter(tenant_id=tenant_id, is_default=True).first()
    rows = (
        SlaPolicy.objects.filter(tenant_id=tenant_id, is_active=True)
        .select_related("schedule")
        .prefetch_related("targets", "schedule__holidays")
        .order_by("position", "id")
    )
    default_spec = clocks.schedule_spec(default_schedule) if default_schedule else None
    result = []
    for row in rows:
        spec = clocks.schedule_spec(row.schedule) if row.schedule else default_spec
        result.append(
            CompiledPolicy(
                rule=policy.PolicyRule(id=row.pk, name=row.name, conditions=row.conditions or {}),
                math=clocks.ClockMath(spec or clocks.sla.ALWAYS_OPEN),
                pause_on_hold=row.pause_on_hold,
                targets={
                    (t.metric, t.priority): CompiledTarget(t.minutes, t.business_hours, t.warn_before_minutes)
                    for t in row.targets.all()
                },
            )
        )
    cache.set(key, result, POLICY_CACHE_SECONDS)
    return result


def _facts(ticket: Ticket, tag_names: Iterable[str] | None = None, *, with_order: bool = False) -> policy.TicketFacts:
    if tag_names is None:
        tag_names = TicketTag.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket).values_list(
            "tag__name", flat=True
        )
    # The linked order is read only when a policy has order conditions (one query, none
    # when the caller select_related it).
    order = ticket.order if with_order and ticket.order_id is not None else None
    return policy.TicketFacts(
        ticket_type=ticket.ticket_type.slug if ticket.ticket_type is not None else None,
        priority=ticket.priority,
        channel=ticket.channel,
        tier=ticket.customer.tier,
        tags=frozenset(tag_names),
        order=policy.OrderFacts.of(order) if order is not None else None,
        now=timezone.now() if order is not None else None,
    )


def _match_explained(
    ticket: Ticket, tag_names: Iterable[str] | None = None
) -> tuple[CompiledPolicy | None, policy.TicketFacts]:
    """The policy that applies and the facts it was matched on (for "why this policy")."""
    compiled = compiled_policies(ticket.tenant_id)
    rules = [c.rule for c in compiled]
    facts = _facts(ticket, tag_names, with_order=policy.any_uses_order(rules))
    rule = policy.first_match(rules, facts)
    return next((c for c in compiled if rule and c.rule.id == rule.id), None), facts


def _match(ticket: Ticket, tag_names: Iterable[str] | None = None) -> CompiledPolicy | None:
    return _match_explained(ticket, tag_names)[0]


# --- Events ---------------------------------------------------------------------------


def _event(ticket: Ticket, actor: Actor | None, kind: str, at: datetime | None = None, **data) -> TicketEvent:
    actor = actor or Actor.system()
    return TicketEvent(
        tenant_id=ticket.tenant_id,
        ticket=ticket,
        created_at=at or timezone.now(),
        actor_type=actor.kind,
        actor_user=actor.user,
        actor_label=actor.label[:200],
        kind=kind,
        data=data,
    )


def customer_actor(customer: Customer) -> Actor:
    return Actor(kind="customer")


# --- Customers ------------------------------------------------------------------------


def customer_get_or_create(
    *, tenant: Tenant, email: str = "", name: str = "", phone: str = "", language: str = ""
) -> Customer:
    """Find the customer by email (then phone), or create them."""
    email = (email or "").strip().lower()
    phone = (phone or "").strip()
    if not email and not phone:
        raise ValidationError({"customer": "A customer needs an email address or a phone number."})
    existing = None
    if email and connection.vendor == "postgresql":
        # Found or made in one round trip.
        made, existing = _customer_find_or_insert(
            tenant, email, name[:150], phone[:32], language or tenant.default_language
        )
        if made:
            return existing
    elif email:
        existing = Customer.objects.filter(tenant=tenant, email=email).first()
    elif phone:
        existing = Customer.objects.filter(tenant=tenant, phone=phone).first()
    if existing is not None:
        changed: list[str] = []
        if name and not existing.name:
            existing.name, changed = name[:150], [*changed, "name"]
        if phone and not existing.phone:
            existing.phone, changed = phone[:32], [*changed, "phone"]
        if changed:
            existing.save(update_fields=changed)
        return existing
    if not email:
        return Customer.objects.create(
            tenant=tenant, email=email, name=name[:150], phone=phone[:32], language=language or tenant.default_language
        )
    return _customer_insert_or_get(tenant, email, name[:150], phone[:32], language or tenant.default_language)


_CUSTOMER_RETURNS = ("id", "name", "phone", "language", "tier", "external_ids", "note", "created_at")


def _customer_insert_sql(values: str) -> str:
    """INSERT … ON CONFLICT … RETURNING of a new customer from `values` (VALUES or SELECT
    of tenant, email, name, phone, language, tier, external ids, created_at): two requests
    creating the same new customer at once both get the one row (no IntegrityError, no
    savepoint round trips)."""
    return (
        f"INSERT INTO {Customer._meta.db_table} "  # noqa: S608
        "(tenant_id, email, name, phone, language, tier, external_ids, note, created_at) "
        f"{values} ON CONFLICT (tenant_id, email) WHERE NOT (email = '') DO UPDATE SET email = EXCLUDED.email "
        f"RETURNING {', '.join(_CUSTOMER_RETURNS)}"
    )


def _customer_from_row(tenant: Tenant, email: str, values: Iterable[Any]) -> Customer:
    row = dict(zip(_CUSTOMER_RETURNS, values, strict=True))
    if isinstance(row["external_ids"], str):
        row["external_ids"] = json.loads(row["external_ids"])
    if isinstance(row["created_at"], str):  # SQLite hands back text
        row["created_at"] = datetime.fromisoformat(row["created_at"])
    if row["created_at"].tzinfo is None:
        row["created_at"] = row["created_at"].replace(tzinfo=UTC)
    customer = Customer(tenant=tenant, email=email, **row)
    customer._state.adding = False
    customer._state.db = DEFAULT_DB_ALIAS
    return customer


def _customer_insert_or_get(tenant: Tenant, email: str, name: str, phone: str, language: str) -> Customer:
    sql = _customer_insert_sql("VALUES (%s, %s, %s, %s, %s, %s, %s, '', %s)")
    with connection.cursor() as cursor:
        cursor.execute(sql, [tenant.pk, email, name, phone, language, Tier.NEW, "{}", timezone.now()])
        return _customer_from_row(tenant, email, cursor.fetchone())


@functools.cache
def _customer_find_or_insert_sql() -> tuple[str, str]:
    """Postgres: PREPARE and EXECUTE of the customer with this email, else a new one."""
    found = f"SELECT {', '.join(_CUSTOMER_RETURNS)} FROM {Customer._meta.db_table} WHERE tenant_id = $1 AND email = $2"  # noqa: S608
    made = _customer_insert_sql("SELECT $1, $2, $3, $4, $5, $6, $7, '', $8 WHERE NOT EXISTS (SELECT 1 FROM found)")
    returns = ", ".join(_CUSTOMER_RETURNS)
    prepare = (
        f"PREPARE {_CUSTOMER_STATEMENT} (bigint, varchar, varchar, varchar, varchar, varchar, jsonb, "  # noqa: S608
        f"timestamp with time zone) AS WITH found AS ({found}), made AS ({made}) "
        f"SELECT false, {returns} FROM found UNION ALL SELECT true, {returns} FROM made"
    )
    execute = f"EXECUTE {_CUSTOMER_STATEMENT} (%s, %s, %s, %s, %s, %s, %s, %s) /* customer by email, else INSERT */"
    return prepare, execute


_CUSTOMER_STATEMENT = "storedesk_customer_get_or_create"


def _customer_find_or_insert(tenant: Tenant, email: str, name: str, phone: str, language: str) -> tuple[bool, Customer]:
    """(made, customer): the tenant's customer with this email as stored, or a new one."""
    prepare, execute = _customer_find_or_insert_sql()
    rows = prepared_rows(
        _CUSTOMER_STATEMENT, prepare, execute, [tenant.pk, email, name, phone, language, Tier.NEW, "{}", timezone.now()]
    )
    return rows[0][0], _customer_from_row(tenant, email, rows[0][1:])


@transaction.atomic
def customer_update(*, customer: Customer, actor: Actor, **values) -> Customer:
    changes = {}
    for field, value in values.items():
        if getattr(customer, field) != value:
            changes[field] = [getattr(customer, field), value]
            setattr(customer, field, value)
    if "tier" in changes and customer.tier not in Tier.values:
        raise ValidationError({"tier": "Choose new, repeat or VIP."})
    if changes:
        customer.save(update_fields=list(changes))
        if "tier" in changes:
            for ticket in Ticket.objects.filter(
                tenant_id=customer.tenant_id, customer=customer, status__in=OPEN_STATUSES + (Status.PENDING,)
            ).select_related("customer", "ticket_type"):
                _reapply_sla(ticket, actor, reason="customer tier changed")
    return customer


# --- Tickets --------------------------------------------------------------------------


def _next_number(tenant_id: int) -> int:
    """Allocate the next per-tenant ticket number (row lock on the counter, held to commit)."""
    table = TicketCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET value = value + 1 WHERE tenant_id = %s RETURNING value", [tenant_id])  # noqa: S608
        row = cursor.fetchone()
    if row is None:
        TicketCounter.objects.get_or_create(tenant_id=tenant_id)
        return _next_number(tenant_id)
    return int(row[0])


def sanitize_html(html: str) -> str:
    """Inbound HTML made safe to store and show (scripts, handlers, styles removed)."""
    if not html:
        return ""
    return nh3.clean(html, link_rel="noopener noreferrer nofollow")


def _snippet(text: str) -> str:
    return " ".join(text.split())[:160]


def normalise_tags(names: Iterable[str]) -> list[str]:
    result = []
    for raw in names:
        name = raw.strip().lower().replace(" ", "-")
        if not name:
            continue
        if not TAG_RE.match(name):
            raise ValidationError({"tags": f"“{raw}” is not a valid tag: use letters, digits, - _ : (up to 50)."})
        if name not in result:
            result.append(name)
    if len(result) > MAX_TAGS:
        raise ValidationError({"tags": f"At most {MAX_TAGS} tags per ticket."})
    return result


def _tags_for(tenant_id: int, names: list[str]) -> list[Tag]:
    if not names:
        return []
    existing = {t.name: t for t in Tag.objects.filter(tenant_id=tenant_id, name__in=names)}
    missing = [Tag(tenant_id=tenant_id, name=n) for n in names if n not in existing]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        existing = {t.name: t for t in Tag.objects.filter(tenant_id=tenant_id, name__in=names)}
    return [existing[n] for n in names]


def ticket_create(
    *,
    tenant: Tenant,
    subject: str,
    body: str,
    customer: Customer,
    actor: Actor,
    channel: str = Channel.EMAIL,
    priority: str = Priority.NORMAL,
    ticket_type: TicketType | None = None,
    body_html: str = "",
    tags: Iterable[str] = (),
    assignee: User | None = None,
    team: Team | None = None,
    by_agent: bool = False,
    followup_of: Ticket | None = None,
    order_number: str = "",
    at: datetime | None = None,
) -> Ticket:
    """Open a ticket with its first message, SLA clocks and timeline entry (atomically).

    `by_agent` is for tickets an agent opens on a customer's behalf (a phone call): the
    first message is the agent's note of the call and no first-response clock runs.
    """
    at = at or timezone.now()
    subject = (subject or "").strip()
    body = (body or "").strip()
    errors = {}
    if not subject:
        errors["subject"] = "A ticket needs a subject."
    if not body:
        errors["body"] = "A ticket needs a message."
    if channel not in Channel.values:
        errors["channel"] = f"“{channel}” is not a channel."
    if priority not in Priority.values:
        errors["priority"] = f"“{priority}” is not a priority: use low, normal, high or urgent."
    if errors:
        raise ValidationError(errors)
    tag_names = normalise_tags(tags)
    ticket = Ticket(
        tenant=tenant,
        subject=subject[:250],
        status=Status.OPEN if by_agent else Status.NEW,
        priority=priority,
        ticket_type=ticket_type,
        channel=channel,
        customer=customer,
        assignee=assignee,
        team=team,
        followup_of=followup_of,
        order_number=(order_number or "").strip().lstrip("#")[:40],
        playbook_version_id=_playbook_version_id(tenant.pk, ticket_type),
        created_at=at,
        updated_at=at,
        last_activity_at=at,
        last_customer_message_at=None if by_agent else at,
        snippet=_snippet(body),
        message_count=1,
    )
    # Match the policy and compute the clocks first, so the ticket row is written once.
    matched = _match(ticket, tag_names)
    new_clocks = []
    if matched is not None:
        ticket.sla_policy_id = matched.rule.id
        metrics = [SlaMetric.RESOLUTION] if by_agent else [SlaMetric.FIRST_RESPONSE, SlaMetric.RESOLUTION]
        for metric in metrics:
            target = matched.targets.get((metric, priority))
            if target:
                new_clocks.append(clocks.start_clock(ticket, metric, target, matched.math, at, None))  # type: ignore[arg-type]
        ticket.sla_due_at = clocks.ticket_sla_due(new_clocks)
    message = Message(
        tenant=tenant,
        ticket=ticket,
        author_type=Message.Author.AGENT if by_agent else Message.Author.CUSTOMER,
        author_user=actor.user if by_agent else None,
        kind=Message.Kind.NOTE if by_agent else Message.Kind.REPLY,
        channel=channel,
        body_text=body,
        body_html=sanitize_html(body_html),
        created_at=at,
    )
    events = [
        _event(
            ticket,
            actor,
            "created",
            at,
            channel=channel,
            priority=priority,
            followup_of=followup_of.number if followup_of else None,
        )
    ]
    if matched is not None:
        events.append(
            _event(ticket, None, "sla_policy", at, policy=matched.rule.name, reason=policy.explain(matched.rule))
        )
    if assignee is not None:
        events.append(_event(ticket, actor, "assigned", at, to=assignee.email))
    prepared = _new_ticket_params(ticket, message, new_clocks, events)
    if prepared is not None and not tag_names and connection.get_autocommit():
        # One statement, so atomic by itself: no BEGIN/COMMIT round trips.
        _insert_new_ticket(prepared, ticket, message, new_clocks, events)
    else:
        with transaction.atomic():
            if prepared is not None:
                _insert_new_ticket(prepared, ticket, message, new_clocks, events)
            else:
                _save_new_ticket(ticket, message, new_clocks, events)
            tag_rows = _tags_for(tenant.pk, tag_names)
            if tag_rows:
                TicketTag.objects.bulk_create([TicketTag(tenant=tenant, ticket=ticket, tag=tag) for tag in tag_rows])
    # What callers (the API answer) show without reading it all back.
    ticket.created_clocks = new_clocks  # type: ignore[attr-defined]
    ticket.tag_names = tag_names  # type: ignore[attr-defined]
    return ticket


def _save_new_ticket(ticket: Ticket, message: Message, new_clocks: list[SlaClock], events: list[TicketEvent]) -> None:
    """The rows of a new ticket through the ORM (SQLite, or a value only the ORM can write)."""
    ticket.number = _next_number(ticket.tenant_id)
    ticket.save(force_insert=True)
    message.save(force_insert=True)
    if new_clocks:
        for clock in new_clocks:
            clock.ticket = ticket
        SlaClock.objects.bulk_create(new_clocks)
    TicketEvent.objects.bulk_create(events)


# --- A new ticket in one statement (Postgres) -------------------------------------------
# Through the ORM a create is five statements (counter, ticket, message, clocks, events),
# each compiled anew (≈0.5 ms of CPU apiece) and each a round trip. On Postgres they are
# one data-modifying CTE, prepared once per database session. Its columns and values come
# from the models' own fields exactly as Model.save and bulk_create take them (every
# concrete non-generated field but the auto id; `pre_save` then `get_db_prep_save`), so a
# field added later is written without touching this; a value only the ORM can write (an
# expression such as a database default) sends the whole create through the ORM instead.

_NEW_TICKET_STATEMENT = "storedesk_ticket_create"


def _insert_fields(model: type[models.Model]) -> list[models.Field]:
    meta = model._meta
    return [f for f in meta.local_concrete_fields if not f.generated and f is not meta.auto_field]


@functools.cache
def _new_ticket_shape() -> tuple[dict[type[models.Model], list[models.Field]], str, str]:
    """({model: its insert fields but the ticket link / number}, PREPARE, EXECUTE)."""
    types: list[str] = []

    def slot(sql_type: str) -> str:
        types.append(sql_type)
        return f"${len(types)}"

    def base_type(field: models.Field) -> str:
        # Without a length: a too-long value then fails on the column as the ORM's does,
        # where a cast to varchar(n) would cut it silently.
        return re.sub(r"\(.*\)$", "", field.db_type(connection) or "")

    fields: dict[type[models.Model], list[models.Field]] = {}
    ticket_fields = _insert_fields(Ticket)
    fields[Ticket] = [f for f in ticket_fields if f.attname != "number"]
    tenant_slot = ""
    ticket_values = []
    for field in ticket_fields:
        if field.attname == "number":
            ticket_values.append("n.value")
            continue
        ticket_values.append(slot(base_type(field)))
        if field.attname == "tenant_id":
            tenant_slot = ticket_values[-1]
    parts = [
        f"n AS (UPDATE {TicketCounter._meta.db_table} SET value = value + 1 "  # noqa: S608
        f"WHERE tenant_id = {tenant_slot} RETURNING value)",
        f"t AS (INSERT INTO {Ticket._meta.db_table} ({', '.join(str(f.column) for f in ticket_fields)}) "  # noqa: S608
        f"SELECT {', '.join(ticket_values)} FROM n RETURNING id, number)",
    ]
    message_fields = _insert_fields(Message)
    fields[Message] = [f for f in message_fields if f.attname != "ticket_id"]
    message_values = ["t.id" if f.attname == "ticket_id" else slot(base_type(f)) for f in message_fields]
    parts.append(
        f"m AS (INSERT INTO {Message._meta.db_table} ({', '.join(str(f.column) for f in message_fields)}) "  # noqa: S608
        f"SELECT {', '.join(message_values)} FROM t)"
    )
    for name, model, returning in (("c", SlaClock, " RETURNING id, metric"), ("e", TicketEvent, "")):
        # Any number of rows: one text[] per column, each value cast back to its column type.
        model_fields = _insert_fields(model)
        fields[model] = [f for f in model_fields if f.attname != "ticket_id"]
        arrays, values = [], []
        for field in model_fields:
            if field.attname == "ticket_id":
                values.append("t.id")
            else:
                arrays.append(slot("text[]"))
                values.append(f"x.{field.column!s}::{base_type(field)}")
        columns = ", ".join(str(f.column) for f in model_fields)
        names = ", ".join(str(f.column) for f in fields[model])
        parts.append(
            f"{name} AS (INSERT INTO {model._meta.db_table} ({columns}) "  # noqa: S608
            f"SELECT {', '.join(values)} FROM t CROSS JOIN UNNEST({', '.join(arrays)}) AS x({names}){returning})"
        )
    body = "WITH " + ",\n".join(parts) + "\nSELECT t.id, t.number, c.id, c.metric FROM t LEFT JOIN c ON TRUE"
    prepare = f"PREPARE {_NEW_TICKET_STATEMENT} ({', '.join(types)}) AS {body}"
    execute = (
        f"EXECUTE {_NEW_TICKET_STATEMENT} ({', '.join(['%s'] * len(types))}) "
        "/* ticket create: counter UPDATE, ticket, message, clocks and events INSERT */"
    )
    return fields, prepare, execute


def _new_ticket_params(
    ticket: Ticket, message: Message, new_clocks: list[SlaClock], events: list[TicketEvent]
) -> list[Any] | None:
    """The prepared statement's parameters for these rows, or None: write through the ORM."""
    if connection.vendor != "postgresql":
        return None
    fields = _new_ticket_shape()[0]
    wrapper = connections[DEFAULT_DB_ALIAS]  # not the `connection` proxy: one look-up, not 60
    try:
        params = db_values(fields[Ticket], ticket, wrapper) + db_values(fields[Message], message, wrapper)
        for model, rows in ((SlaClock, new_clocks), (TicketEvent, events)):
            columns = list(zip(*(db_values(fields[model], row, wrapper) for row in rows), strict=True))
            params += [list(c) for c in columns] if rows else [[] for _ in fields[model]]
    except ExpressionValue:  # a value only the ORM can write
        return None
    return params


def _insert_new_ticket(
    params: list[Any], ticket: Ticket, message: Message, new_clocks: list[SlaClock], events: list[TicketEvent]
) -> None:
    _, prepare, execute = _new_ticket_shape()
    rows = prepared_rows(_NEW_TICKET_STATEMENT, prepare, execute, params)
    if not rows:  # the tenant has no counter row yet: nothing was written
        TicketCounter.objects.get_or_create(tenant_id=ticket.tenant_id)
        return _insert_new_ticket(params, ticket, message, new_clocks, events)
    ticket.pk, ticket.number = rows[0][0], rows[0][1]
    clock_ids = {metric: pk for _, _, pk, metric in rows}
    for row in (ticket, message, *new_clocks, *events):
        row._state.adding = False
        row._state.db = DEFAULT_DB_ALIAS
    for row in (message, *new_clocks, *events):
        row.ticket = ticket  # type: ignore[attr-defined]  # (re)sets ticket_id now it has one
    for clock in new_clocks:
        clock.pk = clock_ids[clock.metric]
    return None


def _load_clocks(ticket: Ticket) -> dict[str, SlaClock]:
    return {c.metric: c for c in SlaClock.objects.select_for_update().filter(tenant_id=ticket.tenant_id, ticket=ticket)}


def _save_clocks(ticket: Ticket, by_metric: dict[str, SlaClock], touched: list[SlaClock]) -> None:
    for clock in touched:
        if clock.pk:
            clock.save()
        else:
            clock.save(force_insert=True)
            by_metric[clock.metric] = clock
    ticket.sla_due_at = clocks.ticket_sla_due(list(by_metric.values()))


def _playbook_version_id(tenant_id: int, ticket_type: TicketType | None) -> int | None:
    from playbooks.services import current_version_id

    return current_version_id(tenant_id, ticket_type.pk if ticket_type else None)


def _lock(ticket: Ticket) -> Ticket:
    """Re-read the ticket under a row lock so concurrent writers serialise."""
    return (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("customer", "ticket_type", "tenant")
        .get(pk=ticket.pk, tenant_id=ticket.tenant_id)
    )


def _save_ticket(ticket: Ticket, at: datetime, fields: list[str]) -> None:
    ticket.updated_at = at
    ticket.save(update_fields=sorted({*fields, "updated_at", "sla_due_at"}))


@transaction.atomic
def ticket_reply(
    *,
    ticket: Ticket,
    actor: Actor,
    body: str,
    body_html: str = "",
    status: str | None = None,
    at: datetime | None = None,
) -> Message:
    """A public agent reply: fulfils first/next response, moves New to Open (or to `status`)."""
    at = at or timezone.now()
    ticket = _lock(ticket)
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": "Write a reply before sending."})
    if ticket.status == Status.CLOSED:
        raise ValidationError(
            {"status": "This ticket is closed and can’t take replies. Start a follow-up ticket instead."}
        )
    message = Message.objects.create(
        tenant_id=ticket.tenant_id,
        ticket=ticket,
        author_type=Message.Author.AGENT,
        author_user=actor.user,
        kind=Message.Kind.REPLY,
        channel=ticket.channel,
        body_text=body,
        body_html=sanitize_html(body_html),
        created_at=at,
    )
    events = [_event(ticket, actor, "reply", at, message=message.pk)]
    by_metric = _load_clocks(ticket)
    matched = _match(ticket)
    math = matched.math if matched else clocks.ClockMath(clocks.sla.ALWAYS_OPEN)
    touched = []
    for metric in (SlaMetric.FIRST_RESPONSE, SlaMetric.NEXT_RESPONSE):
        clock = by_metric.get(metric)
        if clock and clocks.fulfil_clock(clock, math, at):
            touched.append(clock)
            events.append(_event(ticket, None, "sla_fulfilled", at, metric=metric, breached=bool(clock.breached_at)))
    fields = ["last_activity_at", "last_agent_reply_at", "snippet", "message_count"]
    if ticket.first_response_at is None:
        ticket.first_response_at = at
        fields.append("first_response_at")
    ticket.last_activity_at = at
    ticket.last_agent_reply_at = at
    ticket.snippet = _snippet(body)
    ticket.message_count += 1
    _save_clocks(ticket, by_metric, touched)
    target_status = status or (Status.OPEN if ticket.status == Status.NEW else None)
    TicketEvent.objects.bulk_create(events)
    if target_status and target_status != ticket.status:
        _save_ticket(ticket, at, fields)
        _set_status(ticket, target_status, actor, at, by_metric, matched)
    else:
        _save_ticket(ticket, at, fields)
    return message


@transaction.atomic
def ticket_add_note(*, ticket: Ticket, actor: Actor, body: str, at: datetime | None = None) -> Message:
    """An internal note: visible to agents only, touches no SLA clock."""
    at = at or timezone.now()
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": "Write a note before saving."})
    ticket = _lock(ticket)
    message = Message.objects.create(
        tenant_id=ticket.tenant_id,
        ticket=ticket,
        author_type=Message.Author.AGENT,
        author_user=actor.user,
        kind=Message.Kind.NOTE,
        channel=ticket.channel,
        body_text=body,
        created_at=at,
    )
    TicketEvent.objects.create(**_event_kwargs(_event(ticket, actor, "note", at, message=message.pk)))
    ticket.last_activity_at = at
    ticket.message_count += 1
    _save_ticket(ticket, at, ["last_activity_at", "message_count"])
    return message


def _event_kwargs(event: TicketEvent) -> dict:
    return {f.attname: getattr(event, f.attname) for f in TicketEvent._meta.concrete_fields if f.attname != "id"}


@transaction.atomic
def ticket_customer_message(
    *,
    ticket: Ticket,
    body: str,
    body_html: str = "",
    channel: str | None = None,
    external_id: str = "",
    at: datetime | None = None,
) -> Message:
    """A customer wrote again: restarts next response, reopens pending/solved tickets."""
    at = at or timezone.now()
    if not (body or "").strip():
        raise ValidationError({"body": "The message is empty."})
    ticket = _lock(ticket)
    if ticket.status == Status.CLOSED:
        raise ValidationError({"status": "This ticket is closed; the message belongs in a follow-up ticket."})
    message = Message.objects.create(
        tenant_id=ticket.tenant_id,
        ticket=ticket,
        author_type=Message.Author.CUSTOMER,
        kind=Message.Kind.REPLY,
        channel=channel or ticket.channel,
        body_text=(body or "").strip(),
        body_html=sanitize_html(body_html),
        external_id=external_id[:250],
        created_at=at,
    )
    actor = customer_actor(ticket.customer)
    events = [_event(ticket, actor, "customer_message", at, message=message.pk)]
    by_metric = _load_clocks(ticket)
    matched = _match(ticket)
    touched = []
    if matched and ticket.last_agent_reply_at is not None:
        clock = by_metric.get(SlaMetric.NEXT_RESPONSE)
        target = matched.targets.get((SlaMetric.NEXT_RESPONSE, ticket.priority))
        if target and (clock is None or clock.status in (State.FULFILLED, State.PAUSED)):
            touched.append(clocks.start_clock(ticket, SlaMetric.NEXT_RESPONSE, target, matched.math, at, clock))  # type: ignore[arg-type]
            events.append(_event(ticket, None, "sla_started", at, metric=SlaMetric.NEXT_RESPONSE))
    ticket.last_activity_at = at
    ticket.last_customer_message_at = at
    ticket.snippet = _snippet(message.body_text)
    ticket.message_count += 1
    _save_clocks(ticket, by_metric, touched)
    TicketEvent.objects.bulk_create(events)
    _save_ticket(ticket, at, ["last_activity_at", "last_customer_message_at", "snippet", "message_count"])
    if ticket.status in (Status.PENDING, Status.SOLVED):
        _set_status(ticket, Status.OPEN, actor, at, by_metric, matched)
    return message


def _set_status(
    ticket: Ticket,
    status: str,
    actor: Actor,
    at: datetime,
    by_metric: dict[str, SlaClock] | None = None,
    matched: CompiledPolicy | None = None,
) -> None:
    old = ticket.status
    if status not in Status.values:
        raise ValidationError({"status": f"“{status}” is not a status: use open, pending, on_hold, solved or closed."})
    if status == old:
        return
    if status not in TRANSITIONS[old]:
        raise ValidationError(
            {"status": f"A {Status(old).label.lower()} ticket can’t become {Status(status).label.lower()}."}
        )
    if status in (Status.SOLVED, Status.CLOSED) and old not in (Status.SOLVED, Status.CLOSED):
        from playbooks.services import solve_refusal

        refusal = solve_refusal(ticket)
        if refusal:
            raise ValidationError({"status": refusal})
    by_metric = by_metric if by_metric is not None else _load_clocks(ticket)
    matched = matched or _match(ticket)
    math = matched.math if matched else clocks.ClockMath(clocks.sla.ALWAYS_OPEN)
    pause_on_hold = matched.pause_on_hold if matched else False
    touched: list[SlaClock] = []
    events = [_event(ticket, actor, "status", at, old=old, new=status)]
    resolution = by_metric.get(SlaMetric.RESOLUTION)
    paused_states = {Status.PENDING} | ({Status.ON_HOLD} if pause_on_hold else set())
    if status in (Status.SOLVED, Status.CLOSED):
        for clock in by_metric.values():
            if clocks.fulfil_clock(clock, math, at):
                touched.append(clock)
                if clock.metric == SlaMetric.RESOLUTION:
                    events.append(
                        _event(ticket, None, "sla_fulfilled", at, metric=clock.metric, breached=bool(clock.breached_at))
                    )
        if ticket.solved_at is None or old not in (Status.SOLVED, Status.CLOSED):
            ticket.solved_at = at
    elif resolution is not None:
        if old in (Status.SOLVED,) and clocks.reactivate_clock(resolution, math, at):
            touched.append(resolution)
            events.append(_event(ticket, None, "sla_reactivated", at, metric=resolution.metric))
            ticket.solved_at = None
        if status in paused_states and clocks.pause_clock(resolution, math, at, reason=status):
            touched.append(resolution)
            events.append(_event(ticket, None, "sla_paused", at, metric=resolution.metric, reason=Status(status).label))
        elif status not in paused_states and clocks.resume_clock(resolution, math, at):
            touched.append(resolution)
            events.append(_event(ticket, None, "sla_resumed", at, metric=resolution.metric))
    if old == Status.SOLVED and status not in (Status.CLOSED,):
        ticket.solved_at = None
    ticket.status = status
    _save_clocks(ticket, by_metric, list({id(c): c for c in touched}.values()))
    TicketEvent.objects.bulk_create(events)
    _save_ticket(ticket, at, ["status", "solved_at"])
    if status == Status.SOLVED:  # the customer gets the CSAT survey notice (if a rule is on)
        from integrations.notices_events import ticket_solved

        tenant_id, ticket_id = ticket.tenant_id, ticket.pk
        transaction.on_commit(lambda: ticket_solved(tenant_id, ticket_id))


@transaction.atomic
def ticket_set_status(*, ticket: Ticket, status: str, actor: Actor, at: datetime | None = None) -> Ticket:
    ticket = _lock(ticket)
    _set_status(ticket, status, actor, at or timezone.now())
    return ticket


def _member_of(tenant_id: int, user: User) -> bool:
    return Membership.objects.filter(tenant_id=tenant_id, user=user).exists()


@transaction.atomic
def ticket_assign(
    *, ticket: Ticket, assignee: User | None, actor: Actor, team: Team | None = None, at: datetime | None = None
) -> Ticket:
    """Give the ticket to an agent (or nobody) and/or a team."""
    at = at or timezone.now()
    ticket = _lock(ticket)
    if assignee is not None and not _member_of(ticket.tenant_id, assignee):
        raise ValidationError({"assignee": "That person is not a member of this workspace."})
    if team is not None and team.tenant_id != ticket.tenant_id:
        raise ValidationError({"team": "No such team."})
    events = []
    fields = []
    if ticket.assignee_id != (assignee.pk if assignee else None):
        events.append(_event(ticket, actor, "assigned", at, to=assignee.email if assignee else None))
        ticket.assignee = assignee
        fields.append("assignee")
    if team is not None and ticket.team_id != team.pk:
        events.append(_event(ticket, actor, "team", at, to=team.name))
        ticket.team = team
        fields.append("team")
    if fields:
        TicketEvent.objects.bulk_create(events)
        _save_ticket(ticket, at, fields)
    if assignee is not None and ticket.status == Status.NEW:
        # Someone owns it now: New becomes Open, as in Zendesk.
        _set_status(ticket, Status.OPEN, actor, at)
    return ticket


def _reapply_sla(ticket: Ticket, actor: Actor | None, reason: str, at: datetime | None = None) -> None:
    """Re-match the policy and re-target running clocks, keeping time already used."""
    at = at or timezone.now()
    matched, facts = _match_explained(ticket)
    by_metric = _load_clocks(ticket)
    touched = []
    events = []
    new_id = matched.rule.id if matched else None
    if new_id != ticket.sla_policy_id:
        events.append(
            _event(
                ticket,
                actor,
                "sla_policy",
                at,
                policy=matched.rule.name if matched else None,
                reason=(policy.explain(matched.rule, facts) if matched else "no policy matches") + f" ({reason})",
            )
        )
        ticket.sla_policy_id = new_id
    if matched:
        for metric, clock in by_metric.items():
            target = matched.targets.get((metric, ticket.priority))
            if target and clock.status != State.FULFILLED:
                clocks.retarget_clock(clock, target, matched.math, at)  # type: ignore[arg-type]
                touched.append(clock)
        if not by_metric and ticket.status in OPEN_STATUSES:
            # A ticket that had no policy gets clocks now.
            for metric in (SlaMetric.FIRST_RESPONSE, SlaMetric.RESOLUTION):
                if metric == SlaMetric.FIRST_RESPONSE and ticket.first_response_at:
                    continue
                target = matched.targets.get((metric, ticket.priority))
                if target:
                    touched.append(clocks.start_clock(ticket, metric, target, matched.math, ticket.created_at, None))  # type: ignore[arg-type]
    _save_clocks(ticket, by_metric, touched)
    if events:
        TicketEvent.objects.bulk_create(events)
    _save_ticket(ticket, at, ["sla_policy"])


@transaction.atomic
def ticket_update(
    *,
    ticket: Ticket,
    actor: Actor,
    priority: str | None = None,
    ticket_type: TicketType | None | str = "unchanged",
    tags: Iterable[str] | None = None,
    subject: str | None = None,
    at: datetime | None = None,
) -> Ticket:
    """Change priority, type, tags or subject; re-matches the SLA policy when it matters."""
    at = at or timezone.now()
    ticket = _lock(ticket)
    events = []
    fields = []
    sla_relevant = False
    if priority is not None and priority != ticket.priority:
        if priority not in Priority.values:
            raise ValidationError({"priority": f"“{priority}” is not a priority: use low, normal, high or urgent."})
        events.append(_event(ticket, actor, "priority", at, old=ticket.priority, new=priority))
        ticket.priority = priority
        fields.append("priority")
        sla_relevant = True
    new_type = None if isinstance(ticket_type, str) else ticket_type  # "unchanged" leaves the type alone
    if not isinstance(ticket_type, str) and (new_type.pk if new_type else None) != ticket.ticket_type_id:
        if new_type is not None and new_type.tenant_id != ticket.tenant_id:
            raise ValidationError({"ticket_type": "No such ticket type."})
        old_name = ticket.ticket_type.name if ticket.ticket_type else None
        events.append(_event(ticket, actor, "type", at, old=old_name, new=new_type.name if new_type else None))
        ticket.ticket_type = new_type
        # The new type's playbook applies from now on (ticks of the old checklist stay).
        ticket.playbook_version_id = _playbook_version_id(ticket.tenant_id, new_type)
        fields.extend(["ticket_type", "playbook_version"])
        sla_relevant = True
    if subject is not None and subject.strip() and subject.strip() != ticket.subject:
        events.append(_event(ticket, actor, "subject", at, old=ticket.subject, new=subject.strip()[:250]))
        ticket.subject = subject.strip()[:250]
        fields.append("subject")
    if tags is not None:
        names = normalise_tags(tags)
        current = set(
            TicketTag.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket).values_list("tag__name", flat=True)
        )
        if set(names) != current:
            TicketTag.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket).exclude(tag__name__in=names).delete()
            wanted = [t for t in _tags_for(ticket.tenant_id, names) if t.name not in current]
            TicketTag.objects.bulk_create([TicketTag(tenant_id=ticket.tenant_id, ticket=ticket, tag=t) for t in wanted])
            events.append(
                _event(
                    ticket, actor, "tags", at, added=sorted(set(names) - current), removed=sorted(current - set(names))
                )
            )
            sla_relevant = True
    if events:
        TicketEvent.objects.bulk_create(events)
        _save_ticket(ticket, at, fields)
    if sla_relevant:
        _reapply_sla(ticket, actor, reason=", ".join(e.kind for e in events), at=at)
    return ticket


@transaction.atomic
def ticket_create_followup(*, ticket: Ticket, actor: Actor, body: str = "") -> Ticket:
    """A new ticket for a closed one, linked to it, same customer and type."""
    if ticket.status != Status.CLOSED:
        raise ValidationError({"status": "Only closed tickets get follow-ups; reply to this one instead."})
    return ticket_create(
        tenant=ticket.tenant,
        subject=f"Follow-up: {ticket.subject}"[:250],
        body=body or f"Follow-up to closed ticket #{ticket.number}.",
        customer=ticket.customer,
        actor=actor,
        channel=ticket.channel,
        priority=ticket.priority,
        ticket_type=ticket.ticket_type,
        by_agent=True,
        followup_of=ticket,
        assignee=actor.user,
    )


# --- SLA sweep --------------------------------------------------------------------------

SWEEP_BATCH = 500


def _notify_for(ticket: Ticket, kind: str, text: str, at: datetime) -> list[Notification]:
    recipients: list[int] = []
    if ticket.assignee_id:
        recipients = [ticket.assignee_id]
    elif ticket.team_id and ticket.team and ticket.team.lead_id:
        recipients = [ticket.team.lead_id]
    else:
        recipients = list(
            Membership.objects.filter(tenant_id=ticket.tenant_id, role=Role.LEAD).values_list("user_id", flat=True)
        )
    return [
        Notification(tenant_id=ticket.tenant_id, user_id=uid, ticket=ticket, kind=kind, text=text[:300], created_at=at)
        for uid in recipients
    ]


METRIC_LABEL = dict(SlaMetric.choices)


def tenants_with_due_clocks(at: datetime | None = None) -> list[int]:
    """Tenants that have a due breach or warning (probes on slaclock_due / slaclock_warn)."""
    at = at or timezone.now()
    return tenants_with_due(
        SlaClock,
        Q(status=State.ACTIVE, due_at__lte=at),
        Q(status=State.ACTIVE, warned_at__isnull=True, warn_at__lte=at),
    )


def sla_sweep_tenant(tenant_id: int, at: datetime | None = None) -> dict[str, int]:
    """Fire due SLA warnings and breaches of one tenant, each exactly once.

    Rows are claimed with SELECT … FOR UPDATE SKIP LOCKED inside a transaction and moved
    on with a conditional UPDATE, so two sweepers running at once never fire the same
    clock twice, and a lost Celery message only delays — the next sweep finds the row by
    its indexed due_at.
    """
    at = at or timezone.now()
    fired = {"breaches": 0, "warnings": 0}
    with transaction.atomic():
        due = list(
            SlaClock.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(tenant_id=tenant_id, status=State.ACTIVE, due_at__lte=at)
            .select_related("ticket", "ticket__team")
            .order_by("due_at")[:SWEEP_BATCH]
        )
        if due:
            claimed = SlaClock.objects.filter(
                tenant_id=tenant_id, pk__in=[c.pk for c in due], status=State.ACTIVE
            ).update(status=State.BREACHED, breached_at=at)
            if claimed != len(due):  # pragma: no cover - rows are locked, so this cannot differ
                due = list(SlaClock.objects.filter(pk__in=[c.pk for c in due], breached_at=at).select_related("ticket"))
            events, notes = [], []
            for clock in due:
                label = METRIC_LABEL[clock.metric]
                events.append(
                    _event(
                        clock.ticket,
                        None,
                        "sla_breached",
                        at,
                        metric=clock.metric,
                        due_at=clock.due_at.isoformat() if clock.due_at else None,
                    )
                )
                notes += _notify_for(
                    clock.ticket,
                    "sla_breach",
                    f"#{clock.ticket.number} breached {label} SLA: {clock.ticket.subject}",
                    at,
                )
            TicketEvent.objects.bulk_create(events)
            Notification.objects.bulk_create(notes)
            fired["breaches"] = len(due)
    with transaction.atomic():
        warn = list(
            SlaClock.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(tenant_id=tenant_id, status=State.ACTIVE, warned_at__isnull=True, warn_at__lte=at)
            .select_related("ticket", "ticket__team")
            .order_by("warn_at")[:SWEEP_BATCH]
        )
        if warn:
            SlaClock.objects.filter(tenant_id=tenant_id, pk__in=[c.pk for c in warn], warned_at__isnull=True).update(
                warned_at=at
            )
            events, notes = [], []
            for clock in warn:
                label = METRIC_LABEL[clock.metric]
                mins = max(int((clock.due_at - at).total_seconds() // 60), 0) if clock.due_at else 0
                events.append(
                    _event(
                        clock.ticket,
                        None,
                        "sla_warning",
                        at,
                        metric=clock.metric,
                        due_at=clock.due_at.isoformat() if clock.due_at else None,
                    )
                )
                notes += _notify_for(
                    clock.ticket,
                    "sla_warning",
                    f"#{clock.ticket.number} {label} due in {mins} min: {clock.ticket.subject}",
                    at,
                )
            TicketEvent.objects.bulk_create(events)
            Notification.objects.bulk_create(notes)
            fired["warnings"] = len(warn)
    return fired


def sla_reevaluate_open_tickets(*, tenant: Tenant, job_id: int | None = None, batch: int = 200) -> int:
    """Re-match policies for every unsolved ticket (after a policy edit); reports progress."""
    from tickets.models import BackgroundJob

    sla_policies_changed(tenant)
    ids = list(
        Ticket.objects.filter(tenant=tenant, status__in=[*OPEN_STATUSES, Status.PENDING]).values_list("id", flat=True)
    )
    job = BackgroundJob.objects.filter(tenant=tenant, pk=job_id).first() if job_id else None
    if job:
        BackgroundJob.objects.filter(pk=job.pk).update(status="running", total=len(ids), done=0)
    done = 0
    for start in range(0, len(ids), batch):
        chunk = ids[start : start + batch]
        with transaction.atomic():
            for ticket in Ticket.objects.filter(tenant=tenant, pk__in=chunk).select_related("customer", "ticket_type"):
                _reapply_sla(ticket, None, reason="SLA policies edited")
        done += len(chunk)
        if job:
            BackgroundJob.objects.filter(pk=job.pk).update(done=done)
    if job:
        BackgroundJob.objects.filter(pk=job.pk).update(status="done", done=done, finished_at=timezone.now())
    return done
