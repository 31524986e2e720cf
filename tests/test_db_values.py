"""helpdesk.prepared.db_values sends exactly what the ORM's insert would: compared value by
value, as the SQL literals psycopg2 makes of them, for the rows the hot writes insert."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import pytest
from django.db import connection, models
from django.utils import timezone

from helpdesk.prepared import ExpressionValue, _plain_types, db_values
from integrations.models import Order, WebhookDelivery
from tests.test_webhooks import connect
from tests.tickets_fixtures import make_ticket
from tickets.models import Message, SlaClock, Ticket, TicketEvent


def _orm_values(fields: list[models.Field], obj: models.Model) -> list:
    return [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]


def _literals(values: list) -> list[bytes]:
    with connection.cursor() as cursor:
        return [cursor.cursor.mogrify("%s", [v]) for v in values]


def _insert_fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _same_as_orm(obj: models.Model) -> None:
    fields = _insert_fields(type(obj))
    assert _literals(db_values(fields, obj, connection)) == _literals(_orm_values(fields, obj))


@pytest.mark.django_db
def test_the_rows_of_a_ticket_create_and_an_order_go_out_as_the_orm_sends_them(cast):
    ticket = make_ticket(cast, tags=("vip",))
    for obj in (
        ticket,
        Message.objects.filter(ticket=ticket).first(),
        *SlaClock.objects.filter(ticket=ticket),
        *TicketEvent.objects.filter(ticket=ticket),
        ticket.customer,
    ):
        _same_as_orm(obj)
    shop = connect(cast, "shopify")
    order = Order(
        tenant=cast.tenant,
        connection=shop,
        external_id="1",
        number="1001",
        total=Decimal("12.50"),
        shipping_address={"city": "Berlin", "zip": "10435"},
        placed_at=timezone.now(),
    )
    _same_as_orm(order)
    _same_as_orm(
        WebhookDelivery(
            tenant=cast.tenant,
            connection=shop,
            delivery_id=str(uuid.uuid4()),
            topic="orders/create",
            received_at=timezone.now(),
            headers={"X-Shopify-Topic": "orders/create"},
            body="{}",
        )
    )


@pytest.mark.django_db
def test_values_of_other_types_take_the_orms_path(cast):
    ticket = make_ticket(cast)
    fields = _insert_fields(Ticket)
    ticket.message_count = True  # a bool in an integer column: the ORM makes it 1
    ticket.subject = 42  # an int in a text column: the ORM makes it "42"
    naive = datetime(2026, 3, 1, 12, 0)  # noqa: DTZ001 - the case under test
    ticket.last_activity_at = naive  # naive: the ORM makes it aware (with a warning)
    with pytest.warns(RuntimeWarning):
        ours = _literals(db_values(fields, ticket, connection))
    with pytest.warns(RuntimeWarning):
        theirs = _literals(_orm_values(fields, ticket))
    assert ours == theirs
    assert b"'42'" in ours


@pytest.mark.django_db
def test_an_expression_is_refused_for_the_orm_to_write(cast):
    ticket = make_ticket(cast)
    ticket.message_count = models.F("message_count") + 1
    with pytest.raises(ExpressionValue):
        db_values(_insert_fields(Ticket), ticket, connection)


def test_only_postgres_takes_datetimes_as_they_are():
    created = Ticket._meta.get_field("created_at")
    assert _plain_types(created, "postgresql") == (datetime,)
    assert _plain_types(created, "sqlite") == ()
    assert _plain_types(Ticket._meta.get_field("customer"), "sqlite") == (int,)
    assert _plain_types(Order._meta.get_field("total"), "postgresql") == ()  # Decimal: the ORM's path
