"""Readers shared by pages and the API. They own select_related/prefetch_related so
query counts stay flat whatever the page size."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections
from django.db.models import Count, Model, Prefetch, Q, QuerySet
from django.db.models.query import ValuesListIterable
from django.utils import timezone

from helpdesk import access_cache
from helpdesk.models import Membership, Tenant, User
from tickets.models import (
    NO_DUE,
    OPEN_STATUSES,
    Customer,
    Message,
    SlaClock,
    SlaPolicy,
    Status,
    Tag,
    Ticket,
    TicketEvent,
    TicketTag,
    TicketType,
)

BREACHING_SOON = timedelta(hours=1)
COUNTS_CACHE_SECONDS = 15


@dataclass(frozen=True)
class QueueView:
    key: str
    label: str


STATIC_VIEWS = [
    QueueView("mine", "My open"),
    QueueView("unassigned", "Unassigned"),
    QueueView("all", "All open"),
    QueueView("breaching", "Breaching soon"),
    QueueView("pending", "Waiting on customer"),
]
VIEW_KEYS = {v.key for v in STATIC_VIEWS}


def encode_cursor(value: datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{value.isoformat()}|{pk}".encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[datetime, int] | None:
    """(sort value, id) from a cursor; None when it is malformed (treated as page one)."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        value, pk = text.split("|")
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            return None
        return parsed, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None


# --- Prepared reads ------------------------------------------------------------------------
# Django builds and compiles a queryset again on every evaluation: for the page reads below
# that is 0.7-1.7 ms of CPU each, several times what Postgres needs to answer them. A
# PreparedRead compiles its queryset to SQL once per process and connection, then only binds
# new values.


class PreparedRead:
    """A `values_list` queryset compiled once; each call binds new values to its slots.

    `build(**slots)` must return a `values_list` queryset that depends on nothing but its
    arguments. To check that, it is compiled twice with different stand-in values: the SQL
    and every other parameter must come out the same and the stand-ins at the same places.
    When the check fails (or the columns need Python-side conversion that isn't safe to
    repeat), every call simply evaluates `build(**values)` through the ORM.
    """

    def __init__(self, build: Callable[..., QuerySet], **slots: type) -> None:
        self.build = build
        self.slots = slots
        self._plans: dict[str, tuple[str, list[tuple[bool, Any]], list] | None] = {}

    def _stand_ins(self, round_: int) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for i, (name, kind) in enumerate(self.slots.items(), start=1):
            n = round_ * 100 + i
            if kind is int:
                values[name] = 2_000_000_000 + n  # inside the range of integer and positive columns
            elif kind is datetime:
                values[name] = datetime(1901, 1, 1, tzinfo=UTC) + timedelta(seconds=n)
            elif kind is str:
                values[name] = f"\x1fstand-in {n}\x1f"
            else:
                raise TypeError(f"PreparedRead slot {name!r}: int, datetime or str, not {kind!r}")
        return values

    def _prepare(self, alias: str) -> tuple[str, list[tuple[bool, Any]], list] | None:
        try:
            return self._compile(alias)
        except (EmptyResultSet, FullResultSet, TypeError, ValueError):  # e.g. a stand-in out of a column's range
            return None

    def _compile(self, alias: str) -> tuple[str, list[tuple[bool, Any]], list] | None:
        compiled = []
        for round_ in (1, 2):
            stand_ins = self._stand_ins(round_)
            qs = self.build(**stand_ins)
            if qs._iterable_class is not ValuesListIterable or qs.query.annotation_select or qs.query.extra_select:
                return None
            compiler = qs.query.get_compiler(using=alias)
            sql, params = compiler.as_sql()
            if compiler.has_extra_select or list(getattr(qs, "_fields", ())) != list(qs.query.values_select):
                return None
            compiled.append((sql, list(params), {_key(v): k for k, v in stand_ins.items()}, compiler))
        (sql, params, slots, compiler), (sql_2, params_2, slots_2, _) = compiled
        if sql != sql_2 or len(params) != len(params_2):
            return None
        layout: list[tuple[bool, Any]] = []
        for first, second in zip(params, params_2, strict=True):
            slot = slots.get(_key(first))
            if slot is not None and slots_2.get(_key(second)) == slot:
                layout.append((True, slot))
            elif slot is None and slots_2.get(_key(second)) is None and first == second:
                layout.append((False, first))
            else:
                return None
        fields = [s[0] for s in compiler.select[: compiler.col_count]]
        converters = list(compiler.get_converters(fields).items())
        return sql, layout, converters

    def rows(self, **values: Any) -> list[tuple]:
        """The rows for these slot values, as `build(**values)` would give them."""
        if _DB not in self._plans:
            self._plans[_DB] = self._prepare(_DB)
        plan = self._plans[_DB]
        if plan is None:
            return list(self.build(**values))
        sql, layout, converters = plan
        params = [values[item] if is_slot else item for is_slot, item in layout]
        connection = connections[_DB]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
        if not converters:
            return [tuple(row) for row in fetched]
        converted = []
        for row in fetched:
            row = list(row)
            for pos, (convs, expression) in converters:
                value = row[pos]
                for converter in convs:
                    value = converter(value, expression, connection)
                row[pos] = value
            converted.append(tuple(row))
        return converted


def _key(value: Any) -> Any:
    """A hashable key for a parameter; unhashable ones never match a stand-in."""
    try:
        hash(value)
    except TypeError:
        return (type(value), id(value))
    return (type(value), value)


_DB = "default"  # the one database (no routers)


def instance_from_row(model: type[Model], names: list[str], values: tuple | list) -> Any:
    """A model instance as the ORM builds it from a row (unlisted fields stay deferred)."""
    return model.from_db(_DB, names, values)


@dataclass(slots=True)
class QueueRow:
    """What a queue row shows: plain values, no model instances (the queue's hot path)."""

    id: int
    number: int
    subject: str
    status: str
    priority: str
    sla_due_at: datetime
    snippet: str
    last_activity_at: datetime
    customer_name: str
    customer_email: str
    customer_phone: str
    customer_tier: str
    assignee_id: int | None
    assignee_name: str | None
    assignee_email: str | None
    ticket_type_name: str | None

    @property
    def pk(self) -> int:
        return self.id

    @property
    def customer_display(self) -> str:
        return self.customer_name or self.customer_email or self.customer_phone or "Unknown customer"


_QUEUE_COLUMNS = (
    "id",
    "number",
    "subject",
    "status",
    "priority",
    "sla_due_at",
    "snippet",
    "last_activity_at",
    "customer__name",
    "customer__email",
    "customer__phone",
    "customer__tier",
    "assignee_id",
    "assignee__name",
    "assignee__email",
    "ticket_type__name",
)


@dataclass
class QueuePage:
    tickets: list[QueueRow]
    next_cursor: str | None


def _queue_queryset(
    *,
    tenant_id: int,
    view: str,
    agent_id: int | None,
    soon: datetime,
    slug: str,
    cursor: tuple[datetime, int] | None,
    limit: int,
) -> QuerySet:
    """The queue page's query (see `ticket_queue`); `soon` is the breaching-soon cut-off."""
    open_q = Q(status__in=OPEN_STATUSES)
    sort_field = "sla_due_at"
    if view == "mine":
        condition = open_q & Q(assignee_id=agent_id)
    elif view == "unassigned":
        condition = open_q & Q(assignee__isnull=True)
    elif view == "breaching":
        condition = open_q & Q(sla_due_at__lte=soon)
    elif view == "pending":
        condition, sort_field = Q(status=Status.PENDING), "last_activity_at"
    elif view.startswith("type:"):
        condition = open_q & Q(ticket_type__slug=slug)
    else:
        condition = open_q
    qs = Ticket.objects.filter(condition, tenant_id=tenant_id)
    if cursor:
        value, pk = cursor
        qs = qs.filter(Q(**{f"{sort_field}__gt": value}) | Q(**{sort_field: value, "id__gt": pk}))
    return qs.order_by(sort_field, "id").values_list(*_QUEUE_COLUMNS)[: limit + 1]


_QUEUE_READS: dict[tuple[str, bool, int], PreparedRead] = {}


def _queue_read(view: str, with_cursor: bool, limit: int) -> PreparedRead:
    """One prepared read per view kind, with or without a cursor, and page size."""
    kind = "type:" if view.startswith("type:") else view if view in VIEW_KEYS else "all"
    key = (kind, with_cursor, limit)
    read = _QUEUE_READS.get(key)
    if read is None:

        def build(tenant_id: int, agent_id: int, soon: datetime, slug: str, after_value: datetime, after_id: int):
            cursor = (after_value, after_id) if with_cursor else None
            return _queue_queryset(
                tenant_id=tenant_id, view=kind, agent_id=agent_id, soon=soon, slug=slug, cursor=cursor, limit=limit
            )

        read = _QUEUE_READS[key] = PreparedRead(
            build, tenant_id=int, agent_id=int, soon=datetime, slug=str, after_value=datetime, after_id=int
        )
    return read


def ticket_queue(
    *,
    tenant: Tenant,
    view: str,
    agent: User | None,
    after: str | None = None,
    limit: int = 50,
    at: datetime | None = None,
) -> QueuePage:
    """One page of a queue view, ordered by next SLA due time (breached first), keyset-paged.

    One query, read as tuples through a PreparedRead: building model instances, and
    compiling the queryset on every request, cost more CPU than the query itself.
    """
    at = at or timezone.now()
    sort_field = "last_activity_at" if view == "pending" else "sla_due_at"
    cursor = decode_cursor(after) if after else None
    soon = at + BREACHING_SOON
    slug = view[5:] if view.startswith("type:") else ""
    if view == "mine" and agent is None:
        qs = _queue_queryset(
            tenant_id=tenant.pk, view=view, agent_id=None, soon=soon, slug=slug, cursor=cursor, limit=limit
        )
        values = list(qs)
    else:
        after_value, after_id = cursor or (at, 0)
        values = _queue_read(view, cursor is not None, limit).rows(
            tenant_id=tenant.pk,
            agent_id=agent.pk if agent is not None else 0,
            soon=soon,
            slug=slug,
            after_value=after_value,
            after_id=after_id,
        )
    rows = [QueueRow(*row) for row in values]
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(getattr(last, sort_field), last.id)
    return QueuePage(tickets=rows, next_cursor=next_cursor)


def queue_counts(*, tenant: Tenant, agent: User, at: datetime | None = None) -> dict[str, int]:
    """Counts per view, from one aggregate over the tenant's unsolved tickets (cached 15 s)."""
    key = f"queue-counts:{tenant.pk}:{agent.pk}"
    found = cache.get(key)
    if found is not None:
        return found
    at = at or timezone.now()
    open_q = Q(status__in=OPEN_STATUSES)
    counts = Ticket.objects.filter(tenant=tenant, status__in=[*OPEN_STATUSES, Status.PENDING]).aggregate(
        mine=Count("id", filter=open_q & Q(assignee=agent)),
        unassigned=Count("id", filter=open_q & Q(assignee__isnull=True)),
        all=Count("id", filter=open_q),
        breaching=Count("id", filter=open_q & Q(sla_due_at__lte=at + BREACHING_SOON)),
        pending=Count("id", filter=Q(status=Status.PENDING)),
    )
    per_type = (
        Ticket.objects.filter(tenant=tenant, status__in=OPEN_STATUSES, ticket_type__isnull=False)
        .values_list("ticket_type_id")
        .annotate(n=Count("id"))
    )
    counts.update({f"type:{type_id}": n for type_id, n in per_type})
    cache.set(key, counts, COUNTS_CACHE_SECONDS)
    return counts


def invalidate_queue_counts(tenant_id: int) -> None:
    """Drop every member's cached counts, so a bulk change shows at once (not 15 s later).

    Django's own Redis cache has no delete-by-pattern, so the keys are named one per member.
    """
    user_ids = Membership.objects.filter(tenant_id=tenant_id).values_list("user_id", flat=True)
    cache.delete_many([f"queue-counts:{tenant_id}:{user_id}" for user_id in user_ids])


def ticket_types(tenant: Tenant, active_only: bool = True) -> QuerySet[TicketType]:
    qs = TicketType.objects.filter(tenant=tenant)
    return qs.filter(is_active=True) if active_only else qs


def active_ticket_types(tenant_id: int) -> list[TicketType]:
    """Active types in their order, from the same short-lived cache as `ticket_type_lookup`."""
    rows = _type_rows(tenant_id)
    return [TicketType(**row) for row in sorted(rows, key=lambda r: (r["position"], r["name"])) if row["is_active"]]


TYPE_CACHE_SECONDS = 60


def _type_cache_key(tenant_id: int) -> str:
    return f"ticket-types:v2:{tenant_id}"


def ticket_types_changed(tenant_id: int) -> None:
    """Call after creating, renaming or (de)activating a ticket type."""
    cache.delete(_type_cache_key(tenant_id))


def _type_rows(tenant_id: int) -> list[dict]:
    key = _type_cache_key(tenant_id)
    rows = cache.get(key)
    if rows is None:
        rows = list(
            TicketType.objects.filter(tenant_id=tenant_id).values(
                "id", "tenant_id", "name", "slug", "is_active", "position"
            )
        )
        cache.set(key, rows, TYPE_CACHE_SECONDS)
    return rows


def ticket_type_lookup(tenant_id: int, value: str) -> TicketType | None:
    """A tenant's ticket type by slug or id, from a short-lived cache (hot on ticket create)."""
    for row in _type_rows(tenant_id):
        # Inactive types stay on old tickets but can't be given to new ones.
        if row["is_active"] and (row["slug"] == value or (value.isdigit() and row["id"] == int(value))):
            return TicketType(**row)
    return None


def agents(tenant: Tenant) -> list[User]:
    """Members who can be assigned tickets, by name (cached; see helpdesk.access_cache)."""
    return access_cache.members(tenant)


def ticket_for_page(*, tenant: Tenant, number: int) -> Ticket:
    """The ticket with everything its page shows; raises Ticket.DoesNotExist."""
    return (
        # Not `followup_of`: a self-join of the big table costs ~4 ms of query planning on
        # every page; the few follow-up tickets load their original's number lazily.
        Ticket.objects.select_related("customer", "assignee", "ticket_type", "team", "sla_policy")
        .prefetch_related(
            Prefetch("tags", queryset=Tag.objects.order_by("name")),
        )
        .get(tenant=tenant, number=number)
    )


# --- The ticket page's reads, prepared (see PreparedRead) ---


def _attnames(model: type[Model]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


_PAGE_TICKET = _attnames(Ticket)
_PAGE_CUSTOMER = _attnames(Customer)
_PAGE_TYPE = _attnames(TicketType)


def _in_model_order(model: type[Model], names: list[str]) -> list[str]:
    """`from_db` takes a subset of fields in the model's own order."""
    return [name for name in _attnames(model) if name in names]


_PAGE_USER = _in_model_order(User, ["id", "name", "email"])
_PAGE_POLICY = _in_model_order(SlaPolicy, ["id", "name"])
_PAGE_COLUMNS = [
    *_PAGE_TICKET,
    *(f"customer__{name}" for name in _PAGE_CUSTOMER),
    *(f"assignee__{name}" for name in _PAGE_USER),
    *(f"ticket_type__{name}" for name in _PAGE_TYPE),
    *(f"sla_policy__{name}" for name in _PAGE_POLICY),
]
_PAGE_TICKET_READ = PreparedRead(
    lambda tenant_id, number: Ticket.objects.filter(tenant_id=tenant_id, number=number).values_list(*_PAGE_COLUMNS),
    tenant_id=int,
    number=int,
)
_PAGE_TAGS_READ = PreparedRead(
    lambda tenant_id, ticket_id: (
        TicketTag.objects.filter(tenant_id=tenant_id, ticket_id=ticket_id)
        .order_by("tag__name")
        .values_list("tag__name")
    ),
    tenant_id=int,
    ticket_id=int,
)


def _related(model: type[Model], names: list[str], values: tuple) -> Any:
    """The related instance, or None when the left join found none (its primary key is NULL)."""
    return None if values[names.index("id")] is None else instance_from_row(model, names, values)


def ticket_page_ticket(*, tenant: Tenant, number: int) -> tuple[Ticket, list[str]]:
    """The ticket page's ticket with its customer, assignee, type and SLA policy, and its tag
    names; raises Ticket.DoesNotExist. What `ticket_for_page` gives, for one GET of the page,
    from one prepared read (`team` and `followup_of` load lazily if something reads them)."""
    rows = _PAGE_TICKET_READ.rows(tenant_id=tenant.pk, number=number)
    if not rows:
        raise Ticket.DoesNotExist("No such ticket")
    row = rows[0]
    at = len(_PAGE_TICKET)
    ticket = instance_from_row(Ticket, _PAGE_TICKET, row[:at])
    parts = []
    for model, names in ((Customer, _PAGE_CUSTOMER), (User, _PAGE_USER), (TicketType, _PAGE_TYPE)):
        parts.append(_related(model, names, row[at : at + len(names)]))
        at += len(names)
    parts.append(_related(SlaPolicy, _PAGE_POLICY, row[at : at + len(_PAGE_POLICY)]))
    ticket.customer, ticket.assignee, ticket.ticket_type, ticket.sla_policy = parts
    tags = [name for (name,) in _PAGE_TAGS_READ.rows(tenant_id=tenant.pk, ticket_id=ticket.pk)]
    return ticket, tags


@dataclass(slots=True)
class ThreadMessage:
    """A message as the ticket page shows it (the conversation's hot path: no model instances)."""

    pk: int
    kind: str
    author_type: str
    body_text: str
    body_html: str
    created_at: datetime
    author_user: User | None


_THREAD_READ = PreparedRead(
    lambda tenant_id, ticket_id: (
        Message.objects.filter(tenant_id=tenant_id, ticket_id=ticket_id)
        .order_by("created_at", "id")
        .values_list(
            "id",
            "kind",
            "author_type",
            "body_text",
            "body_html",
            "created_at",
            *(f"author_user__{n}" for n in _PAGE_USER),
        )
    ),
    tenant_id=int,
    ticket_id=int,
)


def ticket_page_thread(ticket: Ticket) -> list[ThreadMessage]:
    """The conversation, oldest first (one User per author, not per message)."""
    users: dict[int, User] = {}
    messages = []
    user_id_at = 6 + _PAGE_USER.index("id")
    for row in _THREAD_READ.rows(tenant_id=ticket.tenant_id, ticket_id=ticket.pk):
        user = None
        user_id = row[user_id_at]
        if user_id is not None:
            user = users.get(user_id)
            if user is None:
                user = users[user_id] = instance_from_row(User, _PAGE_USER, row[6:])
        pk, kind, author_type, text, html, created_at = row[:6]
        messages.append(ThreadMessage(pk, kind, author_type, text, html, created_at, user))
    return messages


@dataclass(slots=True)
class TimelineEvent:
    """A timeline line's inputs (what `event_line` reads)."""

    created_at: datetime
    actor_label: str
    kind: str
    data: dict


_TIMELINE_READ = PreparedRead(
    lambda tenant_id, ticket_id: (
        TicketEvent.objects.filter(tenant_id=tenant_id, ticket_id=ticket_id)
        .order_by("-created_at", "-id")
        .values_list("created_at", "actor_label", "kind", "data")[:200]
    ),
    tenant_id=int,
    ticket_id=int,
)


def ticket_page_timeline(ticket: Ticket) -> list[TimelineEvent]:
    """The newest 200 events, newest first."""
    return [TimelineEvent(*row) for row in _TIMELINE_READ.rows(tenant_id=ticket.tenant_id, ticket_id=ticket.pk)]


_CLOCK_FIELDS = _attnames(SlaClock)
_CLOCKS_READ = PreparedRead(
    lambda tenant_id, ticket_id: SlaClock.objects.filter(tenant_id=tenant_id, ticket_id=ticket_id).values_list(
        *_CLOCK_FIELDS
    ),
    tenant_id=int,
    ticket_id=int,
)
_METRIC_ORDER = {"first_response": 0, "next_response": 1, "resolution": 2}


def ticket_page_clocks(ticket: Ticket) -> list[SlaClock]:
    """The ticket's SLA clocks in metric order."""
    clocks = [
        instance_from_row(SlaClock, _CLOCK_FIELDS, row)
        for row in _CLOCKS_READ.rows(tenant_id=ticket.tenant_id, ticket_id=ticket.pk)
    ]
    return sorted(clocks, key=lambda c: _METRIC_ORDER[c.metric])


_RECENT_READ = PreparedRead(
    lambda tenant_id, customer_id, ticket_id: (
        Ticket.objects.filter(tenant_id=tenant_id, customer_id=customer_id)
        .exclude(pk=ticket_id)
        .order_by("-created_at")
        .values_list("number", "subject", "status")[:5]
    ),
    tenant_id=int,
    customer_id=int,
    ticket_id=int,
)


def ticket_page_recent(ticket: Ticket) -> list[tuple[int, str, str]]:
    """(number, subject, status) of the customer's five latest other tickets."""
    return _RECENT_READ.rows(tenant_id=ticket.tenant_id, customer_id=ticket.customer_id, ticket_id=ticket.pk)


def messages_since(ticket: Ticket, last_seen_id: int, exclude_user: User | None) -> list[Message]:
    """Customer messages and other agents' replies newer than what the agent saw (collision guard)."""
    qs = (
        Message.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket, id__gt=last_seen_id, kind=Message.Kind.REPLY)
        .select_related("author_user")
        .order_by("id")
    )
    if exclude_user is not None:
        qs = qs.exclude(author_user=exclude_user)
    return list(qs)


def sla_level(ticket: Ticket | QueueRow, at: datetime | None = None) -> str:
    """ok / warning / breached / none for a queue row's badge."""
    if ticket.sla_due_at >= NO_DUE:
        return "none"
    at = at or timezone.now()
    if ticket.sla_due_at <= at:
        return "breached"
    if ticket.sla_due_at - at <= BREACHING_SOON:
        return "warning"
    return "ok"


def customers_search(*, tenant: Tenant, query: str = "") -> QuerySet[Customer]:
    qs = Customer.objects.filter(tenant=tenant)
    if query:
        qs = qs.filter(Q(email__icontains=query) | Q(name__icontains=query) | Q(phone__icontains=query))
    return qs.order_by("-created_at", "-id")


def tickets_search(*, tenant: Tenant, query: str = "", status: str = "") -> QuerySet[Ticket]:
    qs = Ticket.objects.filter(tenant=tenant).select_related("customer", "assignee", "ticket_type")
    if status:
        qs = qs.filter(status=status)
    if query:
        q = query.lstrip("#")
        if q.isdigit():
            qs = qs.filter(number=int(q))
        else:
            qs = qs.filter(Q(subject__icontains=query) | Q(customer__email__icontains=query))
    return qs.order_by("-id")
