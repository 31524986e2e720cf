from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import EmailValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tickets.models import (
    Channel,
    Customer,
    Message,
    Priority,
    SlaMetric,
    SlaPolicy,
    SlaTarget,
    Status,
    Ticket,
    TicketType,
    Tier,
)


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["id", "email", "name", "phone", "language", "tier", "external_ids", "created_at"]
        read_only_fields = ["id", "created_at", "external_ids"]


class CustomerInputSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False, allow_blank=True)
    name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=32)

    def validate(self, attrs):
        if not attrs.get("email") and not attrs.get("phone"):
            raise serializers.ValidationError({"email": "Give the customer's email (or a phone number)."})
        return attrs


class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    name = serializers.CharField()


class ClockSerializer(serializers.Serializer):
    due_at = serializers.DateTimeField(allow_null=True)
    status = serializers.CharField(allow_null=True)


class SlaSerializer(serializers.Serializer):
    first_response = ClockSerializer()
    next_response = ClockSerializer()
    resolution = ClockSerializer()


def sla_data(ticket: Ticket) -> dict:
    """The contract's `sla` object: every clock key, each with due_at and status.

    Uses `created_clocks` (just made by ticket_create), else the (prefetched) relation.
    """
    created = getattr(ticket, "created_clocks", None)
    clocks = created if created is not None else ticket.clocks.all()
    return sla_from_rows({c.metric: (c.due_at, c.status) for c in clocks})


def sla_from_rows(rows: dict) -> dict:
    """The `sla` object from {metric: (due_at, status)}; a metric without a clock is
    `not_started`."""
    return {
        metric: {"due_at": rows[metric][0], "status": rows[metric][1]}
        if metric in rows
        else {"due_at": None, "status": "not_started"}
        for metric in SLA_METRICS
    }


SLA_METRICS = tuple(SlaMetric.values)  # the enum builds this list anew on every access


# The list endpoint reads tickets as `.values(*TICKET_ROW_VALUES)` dicts (no model instances:
# building ~100 per page was most of its CPU) and ticket_row_data turns one into the contract.
TICKET_ROW_OWN_FIELDS = (
    "number",
    "subject",
    "status",
    "priority",
    "channel",
    "order_number",
    "message_count",
    "created_at",
    "updated_at",
    "last_activity_at",
    "first_response_at",
    "solved_at",
)
TICKET_ROW_CUSTOMER_FIELDS = ("id", "email", "name", "phone", "language", "tier", "external_ids", "created_at")
TICKET_ROW_VALUES = (
    "id",
    *TICKET_ROW_OWN_FIELDS,
    "ticket_type__slug",
    "assignee_id",
    "assignee__email",
    "assignee__name",
    *(f"customer__{f}" for f in TICKET_ROW_CUSTOMER_FIELDS),
)


class TicketSerializer(serializers.ModelSerializer):
    ticket_type: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    customer = CustomerSerializer(read_only=True)
    assignee = serializers.SerializerMethodField()
    tags = serializers.SerializerMethodField()
    sla = serializers.SerializerMethodField()

    class Meta:
        model = Ticket
        fields = ["id", *TICKET_ROW_OWN_FIELDS, "ticket_type", "customer", "assignee", "tags", "sla"]
        read_only_fields = fields

    @extend_schema_field(PersonSerializer(allow_null=True))
    def get_assignee(self, obj: Ticket) -> dict | None:
        user = obj.assignee
        return {"id": user.pk, "email": user.email, "name": user.name} if user else None

    def get_tags(self, obj: Ticket) -> list[str]:
        names = getattr(obj, "tag_names", None)
        return sorted(names if names is not None else (t.name for t in obj.tags.all()))

    @extend_schema_field(SlaSerializer)
    def get_sla(self, obj: Ticket) -> dict:
        return sla_data(obj)

    def to_representation(self, obj: Ticket) -> dict:
        """The same fields as declared above, built directly (see ticket_row_data)."""
        customer = obj.customer
        ticket_type = obj.ticket_type
        assignee = obj.assignee
        row = {f: getattr(obj, f) for f in TICKET_ROW_OWN_FIELDS}
        row.update(
            {
                "id": obj.pk,
                "ticket_type__slug": ticket_type.slug if ticket_type else None,
                "assignee_id": obj.assignee_id,
                "assignee__email": assignee.email if assignee else None,
                "assignee__name": assignee.name if assignee else None,
                **{f"customer__{f}": getattr(customer, f) for f in TICKET_ROW_CUSTOMER_FIELDS},
            }
        )
        return ticket_row_data(row, sla_data(obj), self.get_tags(obj))


def ticket_row_data(row: dict, sla: dict, tags: list[str]) -> dict:
    """The contract's ticket object from a TICKET_ROW_VALUES dict, its `sla` (sla_data) and
    its tag names (sorted here)."""
    assignee_id = row["assignee_id"]
    return {
        "id": row["id"],
        "number": row["number"],
        "subject": row["subject"],
        "status": row["status"],
        "priority": row["priority"],
        "channel": row["channel"],
        "ticket_type": row["ticket_type__slug"],
        "customer": {
            "id": row["customer__id"],
            "email": row["customer__email"],
            "name": row["customer__name"],
            "phone": row["customer__phone"],
            "language": row["customer__language"],
            "tier": row["customer__tier"],
            "external_ids": row["customer__external_ids"],
            "created_at": _dt(row["customer__created_at"]),
        },
        "assignee": {"id": assignee_id, "email": row["assignee__email"], "name": row["assignee__name"]}
        if assignee_id is not None
        else None,
        "tags": sorted(tags),
        "sla": {metric: {"due_at": _dt(v["due_at"]), "status": v["status"]} for metric, v in sla.items()},
        "order_number": row["order_number"],
        "message_count": row["message_count"],
        "created_at": _dt(row["created_at"]),
        "updated_at": _dt(row["updated_at"]),
        "last_activity_at": _dt(row["last_activity_at"]),
        "first_response_at": _dt(row["first_response_at"]),
        "solved_at": _dt(row["solved_at"]),
    }


def _dt(value) -> str | None:
    """DRF's datetime rendering (ISO 8601, UTC as Z) without a field instance per value."""
    if value is None:
        return None
    if value.tzinfo is not UTC:  # Postgres hands back UTC already: no conversion then
        value = value.astimezone(UTC)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class TicketCreateSerializer(serializers.Serializer):
    subject = serializers.CharField(max_length=250)
    body = serializers.CharField(max_length=100_000)
    body_html = serializers.CharField(required=False, allow_blank=True, max_length=500_000)
    customer = CustomerInputSerializer()
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, default=Channel.API)
    ticket_type = serializers.CharField(required=False, allow_null=True, help_text="Ticket type slug (or id)")
    priority = serializers.ChoiceField(choices=Priority.choices, required=False, default=Priority.NORMAL)
    order_number = serializers.CharField(required=False, allow_blank=True, max_length=40)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=20)

    def validate_ticket_type(self, value):
        return resolve_ticket_type(self.context["tenant"], value)

    def validate_tags(self, value):
        # Checked before the view stores the customer, so a bad tag creates nothing at all.
        from tickets.services import normalise_tags

        try:
            return normalise_tags(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


def ticket_create_input(data: Any, tenant) -> dict:
    """TicketCreateSerializer's validated_data for this request body, or its 400.

    DRF builds the serializer (a deep copy of every declared field, nested ones too) and
    runs generic field code on each create: most of the endpoint's validation CPU. The
    common body (a JSON object of plain strings that passes every check) is read here with
    the declared fields' own limits and validators instead, giving exactly the value DRF
    would. Anything else — a missing or odd-typed value, anything over a limit, any check
    that fails — goes to the serializer itself, so errors are always DRF's, word for word.
    """
    if type(data) is dict:
        try:
            return _lean_create(data, tenant)
        except _Unsure:
            pass
    payload = TicketCreateSerializer(data=data, context={"tenant": tenant})
    payload.is_valid(raise_exception=True)
    return payload.validated_data


class _Unsure(Exception):
    """The lean reading cannot vouch for a value: the serializer decides (and words any error)."""


_SURROGATE = re.compile(r"[\ud800-\udfff]")  # what ProhibitSurrogateCharactersValidator refuses


def _lean_text(field: serializers.CharField, value: Any) -> str:
    """CharField.run_validation for a str value that passes (trim_whitespace is on for all)."""
    if type(value) is not str:
        raise _Unsure
    value = value.strip()
    if not value:
        if field.allow_blank:
            return ""
        raise _Unsure
    if field.max_length is not None and len(value) > field.max_length:
        raise _Unsure
    if "\x00" in value or _SURROGATE.search(value) is not None:
        raise _Unsure
    for validator in field.validators:
        if isinstance(validator, EmailValidator):  # EmailField's own check, same instance
            try:
                validator(value)
            except DjangoValidationError as exc:
                raise _Unsure from exc
    return value


def _lean_choice(field: serializers.ChoiceField, data: dict, name: str) -> Any:
    if name not in data:
        return field.default
    value = data[name]
    if type(value) is not str or value not in field.choice_strings_to_values:
        raise _Unsure
    return field.choice_strings_to_values[value]


def _lean_customer(value: Any) -> dict:
    if type(value) is not dict:
        raise _Unsure
    fields = CustomerInputSerializer._declared_fields
    attrs = {name: _lean_text(field, value[name]) for name, field in fields.items() if name in value}  # type: ignore[arg-type]
    if not attrs.get("email") and not attrs.get("phone"):  # CustomerInputSerializer.validate
        raise _Unsure
    return attrs


def _lean_create(data: dict, tenant) -> dict:
    fields = TicketCreateSerializer._declared_fields
    result: dict[str, Any] = {}
    for name in ("subject", "body", "body_html", "order_number"):
        field = fields[name]
        if name in data:
            result[name] = _lean_text(field, data[name])  # type: ignore[arg-type]
        elif field.required:
            raise _Unsure
    if "customer" not in data:
        raise _Unsure
    result["customer"] = _lean_customer(data["customer"])
    result["channel"] = _lean_choice(fields["channel"], data, "channel")  # type: ignore[arg-type]
    result["priority"] = _lean_choice(fields["priority"], data, "priority")  # type: ignore[arg-type]
    if "ticket_type" in data:
        raw = data["ticket_type"]
        text = None if raw is None else _lean_text(fields["ticket_type"], raw)  # type: ignore[arg-type]
        try:
            result["ticket_type"] = resolve_ticket_type(tenant, text)
        except serializers.ValidationError as exc:
            raise _Unsure from exc
    if "tags" in data:
        tags_field = fields["tags"]
        raw = data["tags"]
        if type(raw) is not list or len(raw) > tags_field.max_length:  # type: ignore[attr-defined]
            raise _Unsure
        names = [_lean_text(tags_field.child, tag) for tag in raw]  # type: ignore[attr-defined]
        from tickets.services import normalise_tags

        try:
            result["tags"] = normalise_tags(names)
        except DjangoValidationError as exc:
            raise _Unsure from exc
    return result


def resolve_ticket_type(tenant, value) -> TicketType | None:
    if value in (None, ""):
        return None
    from tickets.selectors import ticket_type_lookup

    found = ticket_type_lookup(tenant.pk, str(value))
    if found is None:
        raise serializers.ValidationError(f"No ticket type “{value}” in this workspace.")
    return found


class TicketUpdateSerializer(serializers.Serializer):
    subject = serializers.CharField(required=False, max_length=250)
    status = serializers.ChoiceField(choices=Status.choices, required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    ticket_type = serializers.CharField(required=False, allow_null=True)
    assignee = serializers.IntegerField(required=False, allow_null=True, help_text="User id, or null to unassign")
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, max_length=20)

    def validate_ticket_type(self, value):
        return resolve_ticket_type(self.context["tenant"], value)


class MessageSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = Message
        fields = ["id", "kind", "author_type", "author", "channel", "body_text", "body_html", "created_at"]
        read_only_fields = fields

    @extend_schema_field(PersonSerializer(allow_null=True))
    def get_author(self, obj: Message) -> dict | None:
        user = obj.author_user
        return {"id": user.pk, "email": user.email, "name": user.name} if user else None


class MessageCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Message.Kind.choices, default=Message.Kind.REPLY)
    author = serializers.ChoiceField(choices=[("agent", "Agent"), ("customer", "Customer")], default="agent")
    body = serializers.CharField(max_length=100_000)
    body_html = serializers.CharField(required=False, allow_blank=True, max_length=500_000)
    status = serializers.ChoiceField(choices=Status.choices, required=False, help_text="Status to set after a reply")


class TicketTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = TicketType
        fields = ["id", "name", "slug", "description", "position", "is_active"]


class SlaTargetSerializer(serializers.ModelSerializer):
    class Meta:
        model = SlaTarget
        fields = ["metric", "priority", "minutes", "business_hours", "warn_before_minutes"]


class SlaPolicySerializer(serializers.ModelSerializer):
    targets = SlaTargetSerializer(many=True, read_only=True)
    schedule: serializers.StringRelatedField = serializers.StringRelatedField()

    class Meta:
        model = SlaPolicy
        fields = ["id", "name", "position", "is_active", "conditions", "schedule", "pause_on_hold", "targets"]
        read_only_fields = fields


__all__ = ["DjangoValidationError", "Tier"]
