"""Helpers for the tickets suites: tickets made through the services, and row snapshots.

Import what a module needs (`from tests.tickets_fixtures import make_ticket, ...`); the
fixtures here are registered with `pytest_plugins = ["tests.tickets_fixtures"]`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.cache import cache

from helpdesk.models import Tenant, User
from helpdesk.services import Actor
from tickets import services
from tickets.models import (
    Message,
    Priority,
    SlaClock,
    SlaPolicy,
    SlaTarget,
    Ticket,
    TicketEvent,
    TicketTag,
    TicketType,
)

# A Monday, 10:00 in Berlin (09:00 UTC): inside the default 9–17 business hours, so every
# business-time SLA clock starts running at once.
MONDAY_10_BERLIN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def make_ticket(
    cast: Any,
    *,
    tenant: Tenant | None = None,
    subject: str = "Where is my order?",
    body: str = "I ordered socks last week and nothing came.",
    email: str = "carla@example.com",
    name: str = "Carla Customer",
    phone: str = "",
    priority: str = Priority.NORMAL,
    ticket_type: TicketType | None = None,
    assignee: User | None = None,
    tags: tuple[str, ...] = (),
    channel: str = "email",
    by_agent: bool = False,
    at: datetime | None = None,
) -> Ticket:
    """A ticket written in by a customer (or logged by an agent), through the services."""
    tenant = tenant or cast.tenant
    customer = services.customer_get_or_create(tenant=tenant, email=email, name=name, phone=phone)
    actor = Actor.for_user(assignee) if by_agent and assignee else Actor.system()
    ticket = services.ticket_create(
        tenant=tenant,
        subject=subject,
        body=body,
        customer=customer,
        actor=actor,
        channel=channel,
        priority=priority,
        ticket_type=ticket_type,
        tags=tags,
        by_agent=by_agent,
        at=at,
    )
    if assignee is not None and not by_agent:
        services.ticket_assign(ticket=ticket, assignee=assignee, actor=Actor.system(), at=at)
    return Ticket.objects.select_related("customer", "ticket_type").get(pk=ticket.pk)


def fresh(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_related("customer", "ticket_type", "assignee").get(pk=ticket.pk)


def snapshot(ticket: Ticket) -> dict:
    """Everything a bad request must leave alone: the row, tags, clocks, messages, events."""
    row = Ticket.objects.filter(pk=ticket.pk).values().get()
    return {
        "row": row,
        "tags": sorted(TicketTag.objects.filter(ticket_id=ticket.pk).values_list("tag__name", flat=True)),
        "clocks": sorted(SlaClock.objects.filter(ticket_id=ticket.pk).values_list("metric", "status", "due_at")),
        "messages": list(Message.objects.filter(ticket_id=ticket.pk).order_by("id").values_list("id", flat=True)),
        "events": list(TicketEvent.objects.filter(ticket_id=ticket.pk).order_by("id").values_list("id", flat=True)),
    }


def clock_status(ticket: Ticket) -> dict[str, str]:
    return dict(SlaClock.objects.filter(ticket_id=ticket.pk).values_list("metric", "status"))


def event_kinds(ticket: Ticket) -> list[str]:
    return list(TicketEvent.objects.filter(ticket_id=ticket.pk).order_by("id").values_list("kind", flat=True))


def drop_sla_targets(tenant: Tenant, priority: str) -> None:
    """The default policy stops covering one priority: its new tickets get no clocks."""
    SlaTarget.objects.filter(tenant=tenant, priority=priority).delete()
    services.sla_policies_changed(tenant)


def standard_policy(tenant: Tenant) -> SlaPolicy:
    return SlaPolicy.objects.get(tenant=tenant, name="Standard")


@pytest.fixture
def frozen(time_machine):
    """Freeze time on a Monday morning in business hours (clocks tick only when moved)."""
    time_machine.move_to(MONDAY_10_BERLIN, tick=False)
    return time_machine


@pytest.fixture
def types(cast) -> dict[str, TicketType]:
    """Two ticket types of tenant A and one of tenant B, by slug."""
    made = {
        "returns": TicketType.objects.create(tenant=cast.tenant, name="Returns", slug="returns", position=1),
        "shipping": TicketType.objects.create(tenant=cast.tenant, name="Shipping", slug="shipping", position=2),
        "hats": TicketType.objects.create(tenant=cast.other_tenant, name="Hats", slug="hats", position=1),
    }
    return made


@pytest.fixture
def clean_cache():
    """Queue counts and compiled SLA policies live in the cache; start each test without them."""
    cache.clear()
    yield
    cache.clear()
