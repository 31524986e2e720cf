"""The API ticket list reads its usual pages through a PreparedRead per shape (tickets.api
_ListRows): every answer — rows, order, next and previous links, page after page, both ways —
is the ORM's, whatever the filters, page size or cursor."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.db import connection

from helpdesk.services import Actor
from tests.tickets_fixtures import make_ticket
from tickets import api as tickets_api
from tickets import services
from tickets.models import Status

pytest_plugins = ["tests.tickets_fixtures"]

TICKETS = "/api/v1/tickets/"


@pytest.fixture
def many(cast, types):
    """30 tickets over statuses, priorities, types, assignees and customers."""
    made = []
    for n in range(30):
        ticket = make_ticket(
            cast,
            subject=f"Ticket {n}",
            email=f"c{n % 7}@example.com",
            priority=("low", "normal", "high", "urgent")[n % 4],
            ticket_type=(types["returns"], types["shipping"], None)[n % 3],
            assignee=(cast.agent, cast.lead, None)[n % 3 if n % 5 else 2],
        )
        if n % 6 == 0:
            services.ticket_set_status(ticket=ticket, status=Status.PENDING, actor=Actor.system())
        made.append(ticket)
    make_ticket(cast, tenant=cast.other_tenant, subject="Globex", email="c1@example.com")
    return made


def _walk(client, query: str) -> list:
    """Every page forward from the first, then back from the last: (rows, next, previous)."""
    pages = []
    url: str | None = f"{TICKETS}?{query}"
    while url:
        response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append(body)
        url = _local(body["next"])
    url = _local(pages[-1]["previous"])
    while url:
        body = client.get(url).json()
        pages.append(body)
        url = _local(body["previous"])
    return pages


def _local(link: str | None) -> str | None:
    if not link:
        return None
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


QUERIES = [
    "",
    "page_size=1",
    "page_size=7",
    "page_size=100",
    "status=new",
    "status=pending&page_size=2",
    "status=bogus",
    "priority=urgent&page_size=3",
    "ticket_type=returns&page_size=4",
    "ticket_type=shipping&priority=high",
    "assignee=none&page_size=5",
    "assignee={agent}&page_size=3",
    "customer={customer}",
    "customer=99999999999999999999",
    "updated_since=2020-01-01T00:00:00Z&page_size=6",
    "updated_since=2999-01-01T00:00:00Z",
    "status=new&priority=low&assignee=none&ticket_type=returns&page_size=2",
]


@pytest.mark.parametrize("query", QUERIES)
def test_every_page_is_the_orms(api, cast, many, monkeypatch, query):
    query = query.format(agent=cast.agent.pk, customer=many[3].customer_id)
    tickets_api._LIST_READS.clear()
    prepared = _walk(api, query)
    monkeypatch.setattr(tickets_api, "_LIST_READS_MAX", 0)
    tickets_api._LIST_READS.clear()
    assert _walk(api, query) == prepared


def test_the_usual_pages_are_read_compiled_once(api, cast, many):
    if connection.vendor != "postgresql":
        pytest.skip("PreparedRead binds Postgres parameters")
    tickets_api._LIST_READS.clear()
    first = api.get(f"{TICKETS}?page_size=10&status=new").json()
    api.get(_local(first["next"]))
    assert len(tickets_api._LIST_READS) == 2  # the first page, and pages after a position
    for read in tickets_api._LIST_READS.values():
        assert read._plans["default"] is not None  # compiled, not the ORM fallback


def test_a_cursor_past_the_integer_range_goes_to_the_orm_and_finds_nothing(api, many):
    tickets_api._LIST_READS.clear()
    rows = tickets_api._ListRows(many[0].tenant_id, [], tickets_api.Ticket.objects.none())
    assert rows.order_by("-id").filter(id__lt=str(2**40))._read(slice(0, 11)) is None
    assert rows.order_by("-id")._read(slice(5, 16)) is None  # an offset: the ORM
    assert rows.order_by("-id")._read(slice(0, 11)) is not None


@pytest.mark.parametrize("position", ["12a", "-5", "１２", "99999999999999999999", ""])
def test_a_crafted_cursor_position_is_400_not_500(api, many, position):
    import base64

    cursor = base64.b64encode(f"p={position}".encode()).decode()
    response = api.get(TICKETS, {"cursor": cursor})
    assert response.status_code == 400, response.content
    assert "cursor" in response.json()["error"]["fields"]
