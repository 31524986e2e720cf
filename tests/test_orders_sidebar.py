"""The order card beside every ticket: which order a ticket is about, what the card shows,
and what it costs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from helpdesk.models import AuditLog
from helpdesk.services import Actor
from integrations import actions, orders
from integrations.address import clean_address
from integrations.formatting import money, status_badge
from integrations.models import ActionLimit, Fulfillment, OrderAction, Refund, Return
from tests.orders_fixtures import make_connection, make_order
from tests.tickets_fixtures import make_ticket
from tickets.models import Ticket, TicketEvent

pytest_plugins = ["tests.orders_fixtures"]

HTMX = {"HTTP_HX_REQUEST": "true"}


def sidebar_url(ticket) -> str:
    return reverse("ticket_orders", kwargs={"tenant_slug": "acme", "number": ticket.number})


def linked(ticket) -> tuple[str | None, str | None]:
    row = Ticket.objects.select_related("order").get(pk=ticket.pk)
    event = TicketEvent.objects.filter(ticket=ticket, kind="order_linked").order_by("-id").first()
    return (row.order.number if row.order else None, event.data["how"] if event else None)


@pytest.fixture
def carla_orders(cast, shop):
    """Carla's three orders (1040 oldest … 1042 newest) and someone else's 2001."""
    ticket = make_ticket(cast, subject="Question")
    carla = ticket.customer
    made = [
        make_order(
            shop,
            external_id=str(9000 + n),
            number=str(1040 + n),
            customer=carla,
            placed_at=datetime(2026, 2, 1 + n, tzinfo=UTC),
        )
        for n in range(3)
    ]
    stranger = make_ticket(cast, email="sam@example.com", subject="Hi").customer
    make_order(shop, external_id="9100", number="2001", customer=stranger)
    return ticket, made


# --- Linking ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "refs"),
    [
        ("Where is #1041?", ["1041"]),
        ("order 1041 and order no. 1040", ["1041", "1040"]),
        ("Order number: 1041", ["1041"]),
        ("Bestellung 1041 fehlt", ["1041"]),
        ("commande n° 1041", ["1041"]),
        ("ordered 3 items, call 0151 1234567", []),
        ("# 12", []),
        ("tracking JD014600006281234567", []),
    ],
)
def test_order_numbers_are_found_in_free_text(text, refs):
    assert orders.order_refs(text) == refs


def test_linking_by_a_number_in_the_subject(cast, carla_orders):
    ticket, _ = carla_orders
    Ticket.objects.filter(pk=ticket.pk).update(subject="Where is my order #1041?")
    ticket.refresh_from_db()
    orders.link_ticket_order(ticket=ticket, actor=Actor.system())
    assert linked(ticket) == ("1041", "subject")


def test_linking_by_the_order_number_given_wins_over_the_subject(cast, carla_orders):
    ticket, _ = carla_orders
    Ticket.objects.filter(pk=ticket.pk).update(subject="About #1041", order_number="#1040")
    ticket.refresh_from_db()
    orders.link_ticket_order(ticket=ticket, actor=Actor.system())
    assert linked(ticket) == ("1040", "order_number")


def test_linking_by_a_number_in_the_first_message(cast, shop):
    ticket = make_ticket(cast, subject="Help", body="Hello, my order 1041 never came.")
    make_order(shop, external_id="1", number="1041", customer=ticket.customer)
    make_order(
        shop,
        external_id="2",
        number="1099",
        customer=ticket.customer,
        placed_at=datetime(2026, 3, 5, tzinfo=UTC),
    )
    orders.link_ticket_order(ticket=ticket, actor=Actor.system())
    assert linked(ticket) == ("1041", "message")


def test_linking_falls_back_to_the_customers_latest_order(cast, carla_orders):
    ticket, _ = carla_orders
    orders.link_ticket_order(ticket=ticket, actor=Actor.system())
    assert linked(ticket) == ("1042", "latest")


def test_an_agents_choice_is_recorded_and_never_undone_by_automatic_linking(cast, carla_orders, agent_client):
    ticket, made = carla_orders
    orders.link_ticket_order(ticket=ticket, actor=Actor.system())
    response = agent_client.post(
        reverse("ticket_order_link", kwargs={"tenant_slug": "acme", "number": ticket.number}),
        {"order": made[0].pk},
        **HTMX,
    )
    assert response.status_code == 200
    assert linked(ticket) == ("1040", "agent")
    event = TicketEvent.objects.filter(ticket=ticket, kind="order_linked").latest("id")
    assert event.actor_user == cast.agent and event.data["previous"] == "#1042"
    assert AuditLog.objects.filter(tenant=cast.tenant, action="ticket.order_link").exists()
    ticket.refresh_from_db()
    orders.link_ticket_order(ticket=ticket, actor=Actor.system())
    assert linked(ticket) == ("1040", "agent")


def test_a_quoted_number_of_another_customers_order_links_it_with_a_warning(cast, carla_orders, agent_client):
    ticket, _ = carla_orders
    Ticket.objects.filter(pk=ticket.pk).update(order_number="2001")
    body = agent_client.get(sidebar_url(ticket), **HTMX).content.decode()
    assert linked(ticket) == ("2001", "order_number")
    assert "was placed by sam@example.com" in body


def test_the_sidebar_links_an_unlinked_ticket_once(cast, carla_orders, agent_client):
    ticket, _ = carla_orders
    agent_client.get(sidebar_url(ticket), **HTMX)
    agent_client.get(sidebar_url(ticket), **HTMX)
    assert linked(ticket) == ("1042", "latest")
    assert TicketEvent.objects.filter(ticket=ticket, kind="order_linked").count() == 1


def test_an_order_arriving_later_is_linked_to_the_open_ticket_that_quotes_it(cast, shop):
    ticket = make_ticket(cast, subject="Where is #1077?")
    order = make_order(shop, external_id="77", number="1077", customer=ticket.customer)
    assert orders.link_open_tickets_for_order(order=order) == 1
    assert linked(ticket) == ("1077", "subject")


def test_the_auto_link_task_links_a_new_ticket(cast, shop):
    from integrations.action_tasks import auto_link_ticket_order

    ticket = make_ticket(cast, subject="Order 1088")
    order = make_order(shop, external_id="88", number="1088", customer=ticket.customer)
    assert auto_link_ticket_order.delay(cast.tenant.pk, ticket.pk).get() == order.pk


def test_linking_a_foreign_order_is_refused(cast, carla_orders, fake_platform):
    ticket, _ = carla_orders
    foreign = make_order(make_connection(cast.other_tenant, fake_platform), external_id="1", number="1")
    with pytest.raises(ValidationError):
        orders.link_ticket_order(ticket=ticket, actor=Actor.for_user(cast.agent), order=foreign)


# --- What the card shows ------------------------------------------------------------------


@pytest.fixture
def rich_order(cast, shop):
    ticket = make_ticket(cast, subject="Parcel stuck, order #1042")
    order = make_order(
        shop,
        external_id="6123",
        number="1042",
        customer=ticket.customer,
        total="64.90",
        refunded_total=Decimal("10.00"),
        financial_status="partially_refunded",
        fulfillment_status="fulfilled",
        placed_at=datetime(2026, 3, 2, 14, 5, tzinfo=UTC),
        lines=[("1", "Red socks", 2, "14.95"), ("2", "Wool hat", 1, "35.00")],
    )
    Fulfillment.objects.create(
        tenant=cast.tenant,
        order=order,
        external_id="5550001",
        name="#1042.1",
        status="out_for_delivery",
        carrier="DHL Express",
        tracking_number="JD014600006281234567",
        tracking_url="https://www.dhl.com/track?id=JD014600006281234567",
    )
    Refund.objects.create(
        tenant=cast.tenant,
        order=order,
        external_id="r1",
        amount=Decimal("10.00"),
        currency="EUR",
        note="Late delivery",
        processed_at=datetime(2026, 3, 3, tzinfo=UTC),
    )
    Return.objects.create(tenant=cast.tenant, order=order, external_id="ret1", name="#1042-R1", status="requested")
    return ticket, order


def test_the_card_shows_the_order_its_items_shipments_refunds_returns_and_actions(cast, rich_order, agent_client):
    ticket, order = rich_order
    actions.order_action_request(
        ticket=ticket,
        order=order,
        kind="refund",
        params={"amount": "5.00"},
        actor=Actor.for_user(cast.agent),
    )
    response = agent_client.get(sidebar_url(ticket), **HTMX)
    assert response.status_code == 200
    body = response.content.decode()
    for text in (
        "#1042",
        "This ticket",
        "2 Mar 2026",
        "Partly refunded",
        "Shipped",
        "€64.90",
        "Refunded</dt><dd>€10.00",
        "Red socks",
        "2 × €14.95",
        "Wool hat",
        "Calle Mayor 5",
        "28013 Madrid",
        "DHL Express",
        'href="https://www.dhl.com/track?id=JD014600006281234567"',
        "Out for delivery",
        "Late delivery",
        "Return requested",
        "#1042-R1",
        "Refund €5.00",
        "Queued",
        'hx-trigger="every 2s"',
        "Refund</a>",
        "1</strong> order",
        "lifetime value <strong>€54.90",
    ):
        assert text in body, text


def test_a_shipped_order_offers_refunds_but_no_cancel_or_address_change(cast, rich_order, shop, agent_client):
    ticket, _ = rich_order
    body = agent_client.get(sidebar_url(ticket), **HTMX).content.decode()
    assert "Cancel</a>" not in body and "Change address</a>" not in body
    make_order(
        shop,
        external_id="new",
        number="1050",
        customer=ticket.customer,
        placed_at=datetime(2026, 3, 9, tzinfo=UTC),
    )
    body = agent_client.get(sidebar_url(ticket), **HTMX).content.decode()
    assert body.count("Cancel</a>") == 1 and body.count("Change address</a>") == 1


def test_the_card_without_orders_says_so(cast, agent_client):
    ticket = make_ticket(cast, subject="Hello")
    body = agent_client.get(sidebar_url(ticket), **HTMX).content.decode()
    assert "No orders for this customer" in body


def test_without_javascript_the_card_is_a_page_and_the_forms_too(cast, rich_order, agent_client):
    ticket, order = rich_order
    response = agent_client.get(sidebar_url(ticket))
    assert response.status_code == 200 and "<html" in response.content.decode()
    form = agent_client.get(
        reverse(
            "ticket_order_refund",
            kwargs={"tenant_slug": "acme", "number": ticket.number, "order_id": order.pk},
        )
    )
    assert form.status_code == 200 and "Up to <strong>€54.90</strong> can be refunded" in form.content.decode()
    response = agent_client.post(
        reverse(
            "ticket_order_refund",
            kwargs={"tenant_slug": "acme", "number": ticket.number, "order_id": order.pk},
        ),
        {"amount": "2.00"},
    )
    assert response.status_code == 302 and response["Location"].endswith(f"/tickets/{ticket.number}/")


def test_the_ticket_page_loads_the_card_with_htmx(cast, rich_order, agent_client):
    ticket, _ = rich_order
    body = agent_client.get(
        reverse("ticket_detail", kwargs={"tenant_slug": "acme", "number": ticket.number})
    ).content.decode()
    assert f'hx-get="{sidebar_url(ticket)}"' in body
    assert 'hx-trigger="load, orders-changed from:body"' in body
    assert "Orders appear here once a store is connected." not in body


def test_a_running_action_polls_and_tells_the_card_to_refresh_when_done(
    cast, rich_order, agent_client, django_capture_on_commit_callbacks
):
    ticket, order = rich_order
    refund_url = reverse(
        "ticket_order_refund",
        kwargs={"tenant_slug": "acme", "number": ticket.number, "order_id": order.pk},
    )
    form = agent_client.get(refund_url, **HTMX).content.decode()
    assert 'hx-post="' + refund_url in form
    response = agent_client.post(refund_url, {"amount": "5.00"}, **HTMX)  # no commit hooks run: it stays queued
    assert response.status_code == 200
    action = OrderAction.objects.get()
    assert 'hx-trigger="every 2s"' in response.content.decode() and "HX-Trigger" not in response
    poll = reverse(
        "ticket_order_action",
        kwargs={"tenant_slug": "acme", "number": ticket.number, "action_id": action.pk},
    )
    assert "HX-Trigger" not in agent_client.get(poll + "?poll=1", **HTMX)
    OrderAction.objects.filter(pk=action.pk).update(status="succeeded")
    done = agent_client.get(poll + "?poll=1", **HTMX)
    assert "orders-changed" in json.loads(done["HX-Trigger"])
    assert "every 2s" not in done.content.decode()


def test_a_refund_form_error_comes_back_in_the_form(cast, rich_order, agent_client):
    ticket, order = rich_order
    refund_url = reverse(
        "ticket_order_refund",
        kwargs={"tenant_slug": "acme", "number": ticket.number, "order_id": order.pk},
    )
    response = agent_client.post(refund_url, {"amount": "100"}, **HTMX)
    assert response.status_code == 200
    assert "At most €54.90 can be refunded" in response.content.decode()
    assert not OrderAction.objects.exists()


def test_the_timeline_tells_the_order_story(cast, rich_order, agent_client, django_capture_on_commit_callbacks):
    ticket, order = rich_order
    agent_client.get(sidebar_url(ticket), **HTMX)  # links #1042 from the subject
    ActionLimit.objects.create(tenant=cast.tenant, role="agent", max_refund=Decimal("10.00"))
    actions.order_action_request(
        ticket=ticket,
        order=order,
        kind="refund",
        params={"amount": "500.00", "full": True},
        actor=Actor.for_user(cast.agent),
    )
    page = agent_client.get(
        reverse("ticket_detail", kwargs={"tenant_slug": "acme", "number": ticket.number})
    ).content.decode()
    assert "Linked to order <strong>#1042</strong> (number in the subject)" in page
    assert "<strong>agent@acme.test</strong> asked: Refund €54.90 on #1042" in page
    assert "needs approval</span> (€54.90 is over the refund limit for agents (€10.00).)" in page


# --- Query counts -------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 5])
def test_the_card_costs_at_most_ten_queries(cast, shop, agent_client, django_assert_max_num_queries, count):
    ticket = make_ticket(cast, subject="Order #1000")
    for n in range(count):
        order = make_order(
            shop,
            external_id=str(n),
            number=str(1000 + n),
            customer=ticket.customer,
            lines=[("a", "A", 1, "1"), ("b", "B", 2, "2")],
        )
        Fulfillment.objects.create(
            tenant=cast.tenant,
            order=order,
            external_id="f",
            status="in_transit",
            tracking_number="X",
        )
        Refund.objects.create(tenant=cast.tenant, order=order, external_id="r", amount=Decimal("1"))
        Return.objects.create(tenant=cast.tenant, order=order, external_id="t", status="open")
        actions.order_action_request(
            ticket=ticket,
            order=order,
            kind="refund",
            params={"amount": "1.00"},
            actor=Actor.for_user(cast.agent),
        )
    agent_client.get(sidebar_url(ticket), **HTMX)  # links the ticket (a one-time write)
    with django_assert_max_num_queries(10):
        response = agent_client.get(sidebar_url(ticket), **HTMX)
    assert response.content.decode().count('class="order') >= count


def test_the_ticket_page_stays_within_twelve_queries(cast, rich_order, agent_client, django_assert_max_num_queries):
    ticket, _ = rich_order
    page = reverse("ticket_detail", kwargs={"tenant_slug": "acme", "number": ticket.number})
    agent_client.get(page)
    with django_assert_max_num_queries(12):
        assert agent_client.get(page).status_code == 200


# --- Tenancy ------------------------------------------------------------------------------


def test_an_outsider_gets_404_for_the_card_and_the_link(cast, rich_order, outsider_client):
    ticket, order = rich_order
    assert outsider_client.get(sidebar_url(ticket), **HTMX).status_code == 404
    link = reverse("ticket_order_link", kwargs={"tenant_slug": "acme", "number": ticket.number})
    assert outsider_client.post(link, {"order": order.pk}).status_code == 404
    assert not TicketEvent.objects.filter(kind="order_linked").exists()


def test_an_order_of_another_customer_is_not_actionable_from_this_ticket(cast, rich_order, shop, agent_client):
    ticket, _ = rich_order
    other = make_order(
        shop,
        external_id="x",
        number="3000",
        customer=make_ticket(cast, email="zed@example.com", subject="x").customer,
    )
    url = reverse(
        "ticket_order_refund",
        kwargs={"tenant_slug": "acme", "number": ticket.number, "order_id": other.pk},
    )
    assert agent_client.get(url).status_code == 404


# --- Pure pieces --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"address1": ""}, "address1", "Enter the street"),
        ({"address1": "!!"}, "address1", "doesn't look like a street"),
        ({"country_code": "XX"}, "country_code", "not a country code"),
        ({"country_code": ""}, "country_code", "Choose the country"),
        ({"zip": ""}, "zip", "Enter the postal code"),
        ({"zip": "ABCDE"}, "zip", "is not a DE postal code"),
        ({"name": ""}, "name", "Enter a name"),
        ({"city": "12345"}, "city", "needs letters"),
        ({"phone": "12"}, "phone", "at least 6 digits"),
        ({"country_code": "US", "zip": "78701", "province": ""}, "province", "need the state"),
        ({"country_code": "US", "zip": "78701", "province": "ZZ"}, "province", "not a US state"),
        ({"address1": "Main St 1\x00"}, "address1", "control characters"),
    ],
)
def test_obviously_undeliverable_addresses_get_a_field_error(raw, field, words):
    base = {
        "name": "Kim Lee",
        "address1": "Hauptstr. 1",
        "city": "Berlin",
        "zip": "10115",
        "country_code": "DE",
    }
    _address, errors = clean_address({**base, **raw})
    assert words in errors[field]


def test_a_good_address_is_normalised():
    address, errors = clean_address(
        {
            "name": " Lee  Park ",
            "address1": "1 Main St",
            "city": "Austin",
            "province": "tx",
            "zip": "78701",
            "country_code": "us",
        }
    )
    assert errors == {}
    assert address["name"] == "Lee Park" and address["province"] == "TX" and address["country_code"] == "US"
    assert clean_address({"name": "A", "address1": "Dublin Rd 1", "city": "Dublin", "country_code": "IE"})[1] == {}


def test_money_and_badges_read_well():
    assert money("39.9", "EUR") == "€39.90"
    assert money(Decimal("1234.5"), "CHF") == "CHF 1,234.50"
    assert money("-5", "USD") == "−$5.00"
    assert money(None) == ""
    assert status_badge("financial", "partially_refunded") == ("Partly refunded", "warn")
    assert status_badge("shipment", "carrier_picked_up") == ("Carrier picked up", "")


def test_customer_stats_count_orders_and_lifetime_value(cast, carla_orders):
    ticket, made = carla_orders
    from integrations.models import Order

    Order.objects.filter(pk=made[0].pk).update(refunded_total=Decimal("20.00"))
    Order.objects.filter(pk=made[1].pk).update(cancelled_at=datetime(2026, 3, 1, tzinfo=UTC))
    stats = orders.customer_order_stats(ticket.customer)
    assert stats.order_count == 3
    assert stats.lifetime_value == Decimal("80.00")  # 50 - 20 + 50; the cancelled one left out
    assert stats.currency == "EUR"
