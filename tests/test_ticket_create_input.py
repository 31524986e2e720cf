"""The lean reading of a ticket-create body (tickets.serializers.ticket_create_input) gives
exactly what TicketCreateSerializer gives: the same validated data for every body it takes
itself, and the serializer's own 400 (same messages, same fields) for everything else."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from tickets import serializers as s
from tickets.models import Channel, Priority

pytest_plugins = ["tests.tickets_fixtures"]

BASE = {
    "subject": "Wrong size delivered",
    "body": "I ordered M and got XL.",
    "customer": {"email": "Carla@Example.com", "name": "Carla Customer", "phone": "+49 30 1234567"},
}

BODIES = {
    "minimal": {"subject": "Hi", "body": "Hello", "customer": {"email": "a@example.com"}},
    "full": {
        **BASE,
        "channel": "email",
        "ticket_type": "returns",
        "priority": "high",
        "order_number": "#1042",
        "body_html": "<p>Hi</p>",
        "tags": ["VIP", " late parcel ", "vip"],
    },
    "padded strings": {**BASE, "subject": "  Hi  ", "body": "\n Body \t", "order_number": "  "},
    "type by slug with spaces": {**BASE, "ticket_type": "  returns "},
    "type null": {**BASE, "ticket_type": None},
    "type empty": {**BASE, "ticket_type": ""},
    "type unknown": {**BASE, "ticket_type": "nope"},
    "type as a number": {**BASE, "ticket_type": 999999},
    "phone only": {**BASE, "customer": {"phone": " +1 555 "}},
    "blank email with phone": {**BASE, "customer": {"email": "", "phone": "+1 555"}},
    "customer extra keys": {**BASE, "customer": {"email": "x@example.com", "vip": True}},
    "unknown top-level key": {**BASE, "colour": "red"},
    "no subject": {k: v for k, v in BASE.items() if k != "subject"},
    "blank subject": {**BASE, "subject": "   "},
    "null subject": {**BASE, "subject": None},
    "numeric subject": {**BASE, "subject": 42},
    "float body": {**BASE, "body": 1.5},
    "bool subject": {**BASE, "subject": True},
    "list subject": {**BASE, "subject": ["a"]},
    "subject at the limit": {**BASE, "subject": "s" * 250},
    "subject over the limit": {**BASE, "subject": "s" * 251},
    "subject over the limit before trimming": {**BASE, "subject": " " + "s" * 250 + " "},
    "null character": {**BASE, "body": "a\x00b"},
    "surrogate": {**BASE, "body": "a\ud800b"},
    "emoji": {**BASE, "body": "parcel \U0001f4e6 late"},
    "no customer": {k: v for k, v in BASE.items() if k != "customer"},
    "customer null": {**BASE, "customer": None},
    "customer a string": {**BASE, "customer": "carla@example.com"},
    "customer a list": {**BASE, "customer": [{"email": "a@example.com"}]},
    "customer without a way to reach": {**BASE, "customer": {"name": "Carla"}},
    "customer blank email and phone": {**BASE, "customer": {"email": " ", "phone": ""}},
    "bad email": {**BASE, "customer": {"email": "not-an-email"}},
    "email with a null": {**BASE, "customer": {"email": "a\x00@example.com"}},
    "name too long": {**BASE, "customer": {"email": "a@example.com", "name": "n" * 151}},
    "phone a number": {**BASE, "customer": {"email": "a@example.com", "phone": 5551234}},
    "every channel": {**BASE, "channel": "whatsapp"},
    "unknown channel": {**BASE, "channel": "fax"},
    "channel blank": {**BASE, "channel": ""},
    "channel null": {**BASE, "channel": None},
    "channel upper case": {**BASE, "channel": "EMAIL"},
    "unknown priority": {**BASE, "priority": "asap"},
    "priority a number": {**BASE, "priority": 1},
    "order number too long": {**BASE, "order_number": "9" * 41},
    "body html null": {**BASE, "body_html": None},
    "tags empty": {**BASE, "tags": []},
    "tags not a list": {**BASE, "tags": "vip"},
    "tags null": {**BASE, "tags": None},
    "tags with a blank": {**BASE, "tags": ["vip", " "]},
    "tags with a number": {**BASE, "tags": ["vip", 7]},
    "tag too long": {**BASE, "tags": ["t" * 51]},
    "invalid tag": {**BASE, "tags": ["no/slash"]},
    "too many tags": {**BASE, "tags": [f"t{i}" for i in range(21)]},
    "twenty tags": {**BASE, "tags": [f"t{i}" for i in range(20)]},
}


def drf(data, tenant):
    """What the serializer itself says: ("ok", validated data) or ("400", its detail)."""
    payload = s.TicketCreateSerializer(data=data, context={"tenant": tenant})
    if payload.is_valid():
        return "ok", payload.validated_data
    return "400", payload.errors


def lean(data, tenant):
    try:
        return "ok", s.ticket_create_input(data, tenant)
    except serializers.ValidationError as exc:
        return "400", exc.detail


@pytest.mark.parametrize("name", list(BODIES))
def test_the_lean_reading_agrees_with_the_serializer(cast, types, name):
    data = BODIES[name]

    assert lean(data, cast.tenant) == drf(data, cast.tenant)


@pytest.mark.parametrize("data", [None, [], [BASE], "text", 5])
def test_a_body_that_is_not_an_object_is_the_serializers_400(cast, data):
    assert lean(data, cast.tenant) == drf(data, cast.tenant)
    assert lean(data, cast.tenant)[0] == "400"


def test_a_form_encoded_body_is_read_by_the_serializer(cast):
    from django.http import QueryDict

    data = QueryDict("subject=Hi&body=Hello&customer.email=a@example.com")
    assert lean(data, cast.tenant) == drf(data, cast.tenant)


def test_defaults_are_the_declared_ones(cast):
    status, data = lean(BODIES["minimal"], cast.tenant)

    assert status == "ok"
    assert data["channel"] is Channel.API
    assert data["priority"] is Priority.NORMAL
    assert "ticket_type" not in data and "tags" not in data and "body_html" not in data


def test_a_good_body_builds_no_serializer(cast, types, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the serializer was built for a body the lean reading takes")

    monkeypatch.setattr(s.TicketCreateSerializer, "__init__", refuse)

    assert s.ticket_create_input(BODIES["full"], cast.tenant)["ticket_type"] == types["returns"]
