"""On Postgres a new ticket is written by one prepared statement (counter, ticket, message,
clocks, events) and its customer found or made by another: they must write and read exactly
the rows the ORM does, stay atomic, and keep numbers distinct under concurrent creates."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from helpdesk.services import Actor
from tests.concurrency import at_once
from tickets import services
from tickets.models import Customer, Message, SlaClock, Team, Ticket, TicketCounter, TicketEvent, TicketTag

pytest_plugins = ["tests.tickets_fixtures"]

AT = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)


def stored(ticket_id: int) -> dict:
    """Every column of the ticket's rows, less the ids the two writes cannot share."""

    def strip(row: Mapping[str, Any]) -> dict:
        return {k: v for k, v in row.items() if k not in ("id", "ticket_id", "number")}

    return {
        "ticket": strip(Ticket.objects.filter(pk=ticket_id).values().get()),
        "messages": [strip(r) for r in Message.objects.filter(ticket_id=ticket_id).order_by("id").values()],
        "clocks": [strip(r) for r in SlaClock.objects.filter(ticket_id=ticket_id).order_by("metric").values()],
        "events": [strip(r) for r in TicketEvent.objects.filter(ticket_id=ticket_id).order_by("id").values()],
        "tags": sorted(TicketTag.objects.filter(ticket_id=ticket_id).values_list("tag__name", flat=True)),
    }


def variants(cast, types) -> dict[str, dict]:
    team = Team.objects.create(tenant=cast.tenant, name="Returns desk")
    closed = services.ticket_create(
        tenant=cast.tenant,
        subject="Old",
        body="Old one.",
        customer=services.customer_get_or_create(tenant=cast.tenant, email="old@example.com"),
        actor=Actor.system(),
    )
    return {
        "customer by email": {"priority": "high", "ticket_type": types["returns"], "order_number": " #1042 "},
        "html and a long body": {"body": "word " * 100, "body_html": "<p onclick='x()'>Hi <script>x</script></p>"},
        "no policy target (low)": {"priority": "low"},
        "by an agent, assigned, in a team, a follow-up": {
            "by_agent": True,
            "assignee": cast.agent,
            "team": team,
            "followup_of": closed,
            "actor": Actor.for_user(cast.agent),
            "channel": "phone",
        },
        "with tags": {"tags": ["VIP", "late parcel"]},
    }


@pytest.mark.parametrize(
    "name",
    [
        "customer by email",
        "html and a long body",
        "no policy target (low)",
        "by an agent, assigned, in a team, a follow-up",
        "with tags",
    ],
)
def test_the_prepared_statement_writes_the_rows_the_orm_writes(cast, types, monkeypatch, name):
    if connection.vendor != "postgresql":
        pytest.skip("the prepared statement is Postgres only")
    customer = services.customer_get_or_create(tenant=cast.tenant, email="carla@example.com", name="Carla")
    kwargs = {
        "tenant": cast.tenant,
        "subject": " Wrong size ",
        "body": "I ordered M and got XL.",
        "customer": customer,
        "actor": Actor.system(),
        "channel": "email",
        "at": AT,
        **variants(cast, types)[name],
    }

    prepared = services.ticket_create(**kwargs)
    with monkeypatch.context() as m:
        m.setattr(services, "_new_ticket_params", lambda *a: None)
        orm = services.ticket_create(**kwargs)

    assert stored(prepared.pk) == stored(orm.pk)
    assert orm.number == prepared.number + 1
    assert Ticket.objects.get(pk=prepared.pk).number == prepared.number
    # The instances handed back read like the ORM's.
    assert not prepared._state.adding
    assert sorted((c.pk, c.metric) for c in prepared.created_clocks) == sorted(
        SlaClock.objects.filter(ticket_id=prepared.pk).values_list("id", "metric")
    )
    assert [(c.metric, c.due_at, c.status) for c in prepared.created_clocks] == [
        (c.metric, c.due_at, c.status) for c in orm.created_clocks
    ]
    assert all(c.ticket_id == prepared.pk for c in prepared.created_clocks)


def test_a_tenant_without_a_counter_row_gets_one(cast):
    TicketCounter.objects.filter(tenant=cast.tenant).delete()
    customer = services.customer_get_or_create(tenant=cast.tenant, email="carla@example.com")

    first = services.ticket_create(tenant=cast.tenant, subject="A", body="a", customer=customer, actor=Actor.system())
    second = services.ticket_create(tenant=cast.tenant, subject="B", body="b", customer=customer, actor=Actor.system())

    assert (first.number, second.number) == (1001, 1002)


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_create_is_one_statement(cast, types):
    customer = services.customer_get_or_create(tenant=cast.tenant, email="carla@example.com")
    services.ticket_create(tenant=cast.tenant, subject="Warm", body="up", customer=customer, actor=Actor.system())

    with CaptureQueriesContext(connection) as queries:
        ticket = services.ticket_create(
            tenant=cast.tenant, subject="Hi", body="Hello", customer=customer, actor=Actor.system()
        )

    if connection.vendor == "postgresql":
        assert len(queries) == 1, [q["sql"] for q in queries]
    assert Message.objects.filter(ticket=ticket).count() == 1
    assert SlaClock.objects.filter(ticket=ticket).count() == 2
    assert list(TicketEvent.objects.filter(ticket=ticket).values_list("kind", flat=True)) == ["created", "sla_policy"]


@pytest.mark.django_db(transaction=True)
def test_a_failing_create_writes_nothing_and_uses_no_number(cast):
    customer = services.customer_get_or_create(tenant=cast.tenant, email="carla@example.com")
    before = TicketCounter.objects.get(tenant=cast.tenant).value
    gone = services.customer_get_or_create(tenant=cast.tenant, email="gone@example.com")
    gone.pk = 987654321  # no such customer: the ticket row breaks its foreign key

    with pytest.raises(IntegrityError):
        services.ticket_create(tenant=cast.tenant, subject="Hi", body="Hello", customer=gone, actor=Actor.system())

    assert TicketCounter.objects.get(tenant=cast.tenant).value == before
    assert not Ticket.objects.filter(tenant=cast.tenant).exists()
    assert not Message.objects.filter(tenant=cast.tenant).exists()
    assert not SlaClock.objects.filter(tenant=cast.tenant).exists()
    assert not TicketEvent.objects.filter(tenant=cast.tenant).exists()
    # The connection is usable afterwards (nothing half-done was left open).
    assert (
        services.ticket_create(
            tenant=cast.tenant, subject="Hi", body="Hello", customer=customer, actor=Actor.system()
        ).number
        == before + 1
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_get_distinct_consecutive_numbers(cast):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite takes one writer at a time")
    customer = services.customer_get_or_create(tenant=cast.tenant, email="carla@example.com")
    start = TicketCounter.objects.get(tenant=cast.tenant).value

    def create(i: int) -> list[int]:
        return [
            services.ticket_create(
                tenant=cast.tenant, subject=f"T{i}-{j}", body="Hello", customer=customer, actor=Actor.system()
            ).number
            for j in range(5)
        ]

    numbers = [n for batch in at_once(create, threads=6) for n in batch]
    assert sorted(numbers) == list(range(start + 1, start + 31))
    assert sorted(Ticket.objects.filter(tenant=cast.tenant).values_list("number", flat=True)) == sorted(numbers)


# --- The customer: found or made in one statement ----------------------------------------


def as_stored(customer: Customer) -> dict:
    return {f.attname: getattr(customer, f.attname) for f in Customer._meta.concrete_fields}


def test_a_known_customer_is_read_whole_and_gets_a_missing_name_and_phone(cast):
    known = Customer.objects.create(
        tenant=cast.tenant,
        email="carla@example.com",
        tier="vip",
        external_ids={"shopify:1": "7012"},
        note="Prefers email.",
        language="de",
    )

    found = services.customer_get_or_create(tenant=cast.tenant, email=" Carla@Example.COM ", name="Carla", phone="+49")

    assert found.pk == known.pk
    assert as_stored(found) == as_stored(Customer.objects.get(pk=known.pk))
    assert (found.name, found.phone, found.tier, found.external_ids) == ("Carla", "+49", "vip", {"shopify:1": "7012"})
    assert not found._state.adding
    again = services.customer_get_or_create(tenant=cast.tenant, email="carla@example.com", name="Other", phone="+1")
    assert (again.name, again.phone) == ("Carla", "+49")  # filled in once, never overwritten


def test_a_new_customer_reads_as_the_orm_reads_it(cast):
    made = services.customer_get_or_create(tenant=cast.tenant, email="New@Example.com", name="N" * 200, phone="+1")

    assert as_stored(made) == as_stored(Customer.objects.get(pk=made.pk))
    assert (made.email, len(made.name), made.language, made.tier) == (
        "new@example.com",
        150,
        cast.tenant.default_language,
        "new",
    )
    assert Customer.objects.filter(tenant=cast.tenant, email="new@example.com").count() == 1


def test_finding_or_making_a_customer_by_email_is_one_statement(cast):
    if connection.vendor != "postgresql":
        pytest.skip("the prepared statement is Postgres only")
    services.customer_get_or_create(tenant=cast.tenant, email="warm@example.com")

    with CaptureQueriesContext(connection) as made:
        services.customer_get_or_create(tenant=cast.tenant, email="carla@example.com", name="Carla")
    with CaptureQueriesContext(connection) as found:
        services.customer_get_or_create(tenant=cast.tenant, email="carla@example.com", name="Carla")

    assert (len(made), len(found)) == (1, 1)


@pytest.mark.django_db(transaction=True)
def test_an_api_create_is_two_statements(cast, types, api):
    from tests.test_tickets_api import FULL_CREATE, TICKETS

    api.post(TICKETS, FULL_CREATE, format="json")  # compiles the SLA policies, stamps the token

    with CaptureQueriesContext(connection) as queries:
        response = api.post(TICKETS, {**FULL_CREATE, "customer": {"email": "new@example.com"}}, format="json")

    assert response.status_code == 201, response.content
    if connection.vendor == "postgresql":
        assert len(queries) == 2, [q["sql"][:80] for q in queries]
