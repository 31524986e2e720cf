"""REST resources: tickets (+ messages), customers, ticket types, SLA policies."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection as db_connection
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from helpdesk.api.base import TenantRequest, TenantScopedViewSet
from helpdesk.api.pagination import CursorPagination
from helpdesk.models import Membership, Role
from tickets import selectors, services
from tickets import serializers as s
from tickets.models import Customer, Message, SlaClock, SlaPolicy, Tag, Ticket, TicketTag, TicketType

LIST_FILTERS = [
    OpenApiParameter("status", str, description="new, open, pending, on_hold, solved, closed"),
    OpenApiParameter("priority", str),
    OpenApiParameter("ticket_type", str, description="type slug"),
    OpenApiParameter("assignee", str, description="user id, `me`, or `none`"),
    OpenApiParameter("customer", int),
    OpenApiParameter("updated_since", OpenApiTypes.DATETIME),
]


class TicketViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Tickets. Create with a customer and a first message; the answer carries its SLA clocks."""

    queryset = Ticket.objects.all()
    serializer_class = s.TicketSerializer

    def safely_get_queryset(self, queryset):
        queryset = queryset.select_related("customer", "assignee", "ticket_type")
        if self.action != "list":
            return queryset.prefetch_related(
                Prefetch("clocks", queryset=SlaClock.objects.all()),
                Prefetch("tags", queryset=Tag.objects.all()),
            )
        return _filtered(queryset, self._list_filters())

    def _list_filters(self) -> list[tuple[str, Any]]:
        """The list's filters from the query string as (name, value), in a fixed order;
        a bad one is a 400 naming it."""
        params = self.request.query_params
        errors = {}
        filters: list[tuple[str, Any]] = []
        for name in ("status", "priority", "ticket_type"):
            if params.get(name):
                filters.append((name, params[name]))
        if params.get("customer"):
            if params["customer"].isdigit():
                filters.append(("customer", int(params["customer"])))
            else:
                errors["customer"] = ["A customer id."]
        assignee = params.get("assignee")
        if assignee == "none":
            filters.append(("unassigned", None))
        elif assignee == "me":
            # An API token is nobody: "me" must not fall through to `assignee=None` (unassigned).
            filters.append(("assignee", self.request.user.pk) if self.request.membership else ("nothing", None))
        elif assignee:
            if assignee.isdigit():
                filters.append(("assignee", int(assignee)))
            else:
                errors["assignee"] = ["A user id, `me` or `none`."]
        if params.get("updated_since"):
            try:
                since = datetime.fromisoformat(params["updated_since"].replace("Z", "+00:00"))
                if since.tzinfo is None:
                    raise ValueError
            except ValueError:
                errors["updated_since"] = ["An ISO 8601 time with an offset, e.g. 2026-03-02T14:05:00Z."]
            else:
                filters.append(("updated_since", since))
        if errors:
            raise serializers.ValidationError(errors)
        return filters

    @extend_schema(parameters=LIST_FILTERS)
    def list(self, request, *args, **kwargs):
        filters = self._list_filters()
        rows = _ListRows(
            request.tenant.pk, filters, self.filter_queryset(self.get_queryset()).values(*s.TICKET_ROW_VALUES)
        )
        page = self.paginate_queryset(rows) or []
        clocks, tags = _clocks_and_tags(request.tenant.pk, [row["id"] for row in page])
        return self.get_paginated_response(
            [
                s.ticket_row_data(row, s.sla_from_rows(clocks.get(row["id"], {})), tags.get(row["id"], []))
                for row in page
            ]
        )

    @extend_schema(request=s.TicketCreateSerializer, responses={201: s.TicketSerializer})
    def create(self, request: TenantRequest) -> Response:
        data = s.ticket_create_input(request.data, request.tenant)
        customer = services.customer_get_or_create(tenant=request.tenant, **data["customer"])
        ticket = services.ticket_create(
            tenant=request.tenant,
            subject=data["subject"],
            body=data["body"],
            body_html=data.get("body_html", ""),
            customer=customer,
            actor=self.actor,
            channel=data["channel"],
            priority=data["priority"],
            ticket_type=data.get("ticket_type"),
            tags=data.get("tags", []),
            order_number=data.get("order_number", ""),
        )
        return Response(s.TicketSerializer(ticket).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.TicketUpdateSerializer, responses=s.TicketSerializer)
    def partial_update(self, request: TenantRequest, pk: str) -> Response:
        ticket = self.get_object()
        payload = s.TicketUpdateSerializer(data=request.data, context={"tenant": request.tenant})
        payload.is_valid(raise_exception=True)
        # One PATCH may call several services; a later one failing (e.g. the status
        # transition) must undo the earlier ones, so a 400 leaves the ticket as it was.
        with transaction.atomic():
            self._apply_update(ticket, payload.validated_data)
        return Response(s.TicketSerializer(self.get_queryset().get(pk=ticket.pk)).data)

    def _apply_update(self, ticket: Ticket, data: dict) -> None:
        request = self.request
        actor = self.actor
        if "assignee" in data:
            assignee = None
            if data["assignee"] is not None:
                membership = (
                    Membership.objects.select_related("user")
                    .filter(tenant=request.tenant, user_id=data["assignee"])
                    .first()
                )
                if membership is None:
                    raise serializers.ValidationError({"assignee": ["No such member of this workspace."]})
                assignee = membership.user
            services.ticket_assign(ticket=ticket, assignee=assignee, actor=actor)
        if any(k in data for k in ("priority", "ticket_type", "tags", "subject")):
            services.ticket_update(
                ticket=ticket,
                actor=actor,
                priority=data.get("priority"),
                ticket_type=data.get("ticket_type", "unchanged"),
                tags=data.get("tags"),
                subject=data.get("subject"),
            )
        if "status" in data:
            services.ticket_set_status(ticket=ticket, status=data["status"], actor=actor)

    @extend_schema(methods=["GET"], responses=s.MessageSerializer(many=True))
    @extend_schema(methods=["POST"], request=s.MessageCreateSerializer, responses={201: s.MessageSerializer})
    @action(detail=True, methods=["get", "post"])
    def messages(self, request: TenantRequest, pk: str) -> Response:
        ticket = self.get_object()
        if request.method == "GET":
            qs = (
                Message.objects.filter(tenant=request.tenant, ticket=ticket)
                .select_related("author_user")
                .order_by("id")
            )
            page = self.paginate_queryset(qs.order_by("-id"))
            return self.get_paginated_response(s.MessageSerializer(page, many=True).data)
        payload = s.MessageCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            if data["author"] == "customer":
                message = services.ticket_customer_message(
                    ticket=ticket, body=data["body"], body_html=data.get("body_html", "")
                )
            elif data["kind"] == Message.Kind.NOTE:
                message = services.ticket_add_note(ticket=ticket, actor=self.actor, body=data["body"])
            else:
                message = services.ticket_reply(
                    ticket=ticket,
                    actor=self.actor,
                    body=data["body"],
                    body_html=data.get("body_html", ""),
                    status=data.get("status"),
                )
        except DjangoValidationError as exc:
            closed = getattr(exc, "error_dict", {}).get("status")
            if closed and "status" not in data:
                # "This ticket is closed…" is about the ticket, not a field the client sent:
                # say it as the error's message (and keep it under fields.status).
                text = [m for e in closed for m in e.messages]
                raise serializers.ValidationError({"non_field_errors": text, "status": text}) from exc
            raise
        return Response(s.MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class CustomerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, TenantScopedViewSet):
    queryset = Customer.objects.all()
    serializer_class = s.CustomerSerializer

    def safely_get_queryset(self, queryset):
        params = self.request.query_params
        if params.get("email"):
            queryset = queryset.filter(email=params["email"].strip().lower())
        if params.get("q"):
            queryset = selectors.customers_search(tenant=self.request.tenant, query=params["q"])
        return queryset

    @extend_schema(parameters=[OpenApiParameter("email", str), OpenApiParameter("q", str)])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(request=s.CustomerInputSerializer, responses={201: s.CustomerSerializer})
    def create(self, request: TenantRequest, *args, **kwargs) -> Response:  # type: ignore[override]
        payload = s.CustomerInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        customer = services.customer_get_or_create(tenant=request.tenant, **payload.validated_data)
        return Response(s.CustomerSerializer(customer).data, status=status.HTTP_201_CREATED)


class PositionCursorPagination(CursorPagination):
    """Types and policies are listed in their configured order (policies match first-to-last)."""

    ordering = ("position", "id")  # type: ignore[assignment]  # DRF takes a tuple; the stubs say str


class TicketTypeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    queryset = TicketType.objects.all()
    serializer_class = s.TicketTypeSerializer
    pagination_class = PositionCursorPagination

    def safely_get_queryset(self, queryset):
        return queryset.order_by("position", "id")


class SlaPolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    queryset = SlaPolicy.objects.all()
    serializer_class = s.SlaPolicySerializer
    required_role = Role.AGENT
    pagination_class = PositionCursorPagination

    def safely_get_queryset(self, queryset):
        return queryset.select_related("schedule").prefetch_related("targets").order_by("position", "id")


def _clocks_and_tags(tenant_id: int, ids: list[int]) -> tuple[dict[int, dict], dict[int, list[str]]]:
    """Clocks ({ticket: {metric: (due_at, status)}}) and tag names of a page of tickets, in
    one round trip and without model instances or ORM compilation (both were most of the
    list's CPU after the page query itself)."""
    clocks: dict[int, dict] = {}
    tags: dict[int, list[str]] = {}
    if not ids:
        return clocks, tags
    marks = ", ".join(["%s"] * len(ids))  # placeholders only: the ids go as parameters
    sql = (
        f"SELECT ticket_id, metric, due_at, status, NULL FROM {SlaClock._meta.db_table} "  # noqa: S608
        f"WHERE tenant_id = %s AND ticket_id IN ({marks}) "
        f"UNION ALL SELECT tt.ticket_id, NULL, NULL, NULL, tag.name FROM {TicketTag._meta.db_table} tt "
        f"JOIN {Tag._meta.db_table} tag ON tag.id = tt.tag_id WHERE tt.tenant_id = %s AND tt.ticket_id IN ({marks})"
    )
    with db_connection.cursor() as cursor:
        cursor.execute(sql, [tenant_id, *ids, tenant_id, *ids])
        for ticket_id, metric, due_at, clock_status, tag_name in cursor.fetchall():
            if metric is None:
                tags.setdefault(ticket_id, []).append(tag_name)
            else:
                clocks.setdefault(ticket_id, {})[metric] = (_instant(due_at), clock_status)
    return clocks, tags


def _instant(value: datetime | str | None) -> datetime | None:
    """A timestamp from a raw cursor: Postgres gives aware datetimes, SQLite UTC text."""
    if value is None or isinstance(value, datetime):
        return value
    parsed = parse_datetime(value)
    return parsed if parsed is None or parsed.tzinfo else parsed.replace(tzinfo=UTC)


def register(router) -> None:
    router.register("tickets", TicketViewSet, basename="ticket")
    router.register("customers", CustomerViewSet, basename="customer")
    router.register("ticket-types", TicketTypeViewSet, basename="tickettype")
    router.register("sla-policies", SlaPolicyViewSet, basename="slapolicy")


# --- The list's rows, compiled once per shape ---------------------------------------------------


# The list's filters (`_list_filters()` names) as ORM lookups, and the kind of each value,
# which is also the slot kind a PreparedRead binds it as (see selectors.PreparedRead).
_FILTER_LOOKUPS: dict[str, tuple[str, type]] = {
    "status": ("status", str),
    "priority": ("priority", str),
    "ticket_type": ("ticket_type__slug", str),
    "customer": ("customer_id", int),
    "assignee": ("assignee_id", int),
    "updated_since": ("updated_at__gte", datetime),
}
_SLOT_KINDS: dict[str, type] = {name: kind for name, (_, kind) in _FILTER_LOOKUPS.items()}


def _filtered(queryset: QuerySet, filters: list[tuple[str, Any]]) -> QuerySet:
    """The list's queryset narrowed by `_list_filters()`'s filters."""
    for name, value in filters:
        if name == "unassigned":
            queryset = queryset.filter(assignee__isnull=True)
        elif name == "nothing":
            queryset = queryset.none()
        else:
            queryset = queryset.filter(**{_FILTER_LOOKUPS[name][0]: value})
    return queryset


_POSITIONS = ("id__lt", "id__gt")
_ORDERINGS = (("-id",), ("id",))
_LIST_READS: dict[tuple, selectors.PreparedRead] = {}
_LIST_READS_MAX = 2048  # shapes × orderings × page sizes; beyond it, the ORM (no growth)
_MAX_INT = 2**31 - 1  # the integer columns' range: beyond it the ORM answers (no match)


def _bindable(value: Any) -> bool:
    """Whether a value can be bound as it is: ints the ORM would find out of a column's range
    (it answers "no match" without asking Postgres) go to the ORM."""
    return not isinstance(value, int) or 0 <= value <= _MAX_INT


class _ListRows:
    """The ticket list as DRF's CursorPagination uses a queryset: it orders by the cursor's
    ordering, maybe filters by the cursor's position (`id__lt` / `id__gt`) and takes one
    slice. The usual pages (offset 0) are read by a `PreparedRead` per shape — which filters,
    which ordering, which position test, which page size — compiled to SQL once per
    process instead of on every request; anything else goes to the ORM queryset it mirrors.
    Rows are dicts, as `.values()` gives them."""

    def __init__(
        self,
        tenant_id: int,
        filters: list[tuple[str, Any]],
        queryset: QuerySet,
        ordering: tuple[str, ...] | None = None,
        position: tuple[str, int] | str | None = None,
    ):
        self.tenant_id = tenant_id
        self.filters = filters
        self.queryset = queryset
        self.ordering = ordering
        self.position = position  # None, (lookup, id), or "orm" for anything else

    def order_by(self, *fields: str) -> _ListRows:
        return _ListRows(self.tenant_id, self.filters, self.queryset.order_by(*fields), fields, self.position)

    def filter(self, **kwargs: Any) -> _ListRows:
        position: tuple[str, int] | str = "orm"
        if self.position is None and len(kwargs) == 1:
            ((lookup, value),) = kwargs.items()
            raw = str(value)
            if lookup in _POSITIONS and raw.isascii() and raw.isdigit():  # its range: _bindable
                position = (lookup, int(raw))
        return _ListRows(self.tenant_id, self.filters, self.queryset.filter(**kwargs), self.ordering, position)

    def __getitem__(self, window: slice) -> list[dict]:
        read = self._read(window)
        if read is None:
            return list(self.queryset[window])
        values: dict[str, Any] = {"tenant_id": self.tenant_id}
        values.update((name, value) for name, value in self.filters if name in _SLOT_KINDS)
        if isinstance(self.position, tuple):
            values["position"] = self.position[1]
        return [dict(zip(s.TICKET_ROW_VALUES, row, strict=True)) for row in read.rows(**values)]

    def _read(self, window: slice) -> selectors.PreparedRead | None:
        if (
            not isinstance(window, slice)
            or window.step is not None
            or (window.start or 0) != 0
            or window.stop is None
            or not 1 <= window.stop <= 101
            or self.ordering not in _ORDERINGS
            or self.position == "orm"
            or any(name == "nothing" for name, _ in self.filters)
            or not all(_bindable(value) for _, value in self.filters)
            or (isinstance(self.position, tuple) and not _bindable(self.position[1]))
        ):
            return None
        names = tuple(name for name, _ in self.filters)
        lookup = self.position[0] if isinstance(self.position, tuple) else None
        key = (names, self.ordering, lookup, window.stop)
        read = _LIST_READS.get(key)
        if read is None:
            if len(_LIST_READS) >= _LIST_READS_MAX:
                return None
            read = _LIST_READS[key] = _prepared_list_read(names, self.ordering, lookup, window.stop)
        return read


def _prepared_list_read(
    names: tuple[str, ...], ordering: tuple[str, ...], lookup: str | None, limit: int
) -> selectors.PreparedRead:
    def build(tenant_id: int, position: int | None = None, **filters: Any) -> QuerySet:
        queryset = _filtered(Ticket.objects.filter(tenant_id=tenant_id), [(n, filters.get(n)) for n in names])
        queryset = queryset.order_by(*ordering)
        if lookup is not None:
            queryset = queryset.filter(**{lookup: position})
        return queryset.values_list(*s.TICKET_ROW_VALUES)[:limit]

    slots: dict[str, type] = {"tenant_id": int, **{n: _SLOT_KINDS[n] for n in names if n in _SLOT_KINDS}}
    if lookup is not None:
        slots["position"] = int
    return selectors.PreparedRead(build, **slots)
