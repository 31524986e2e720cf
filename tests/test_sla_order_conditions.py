"""SLA policies with order conditions, end to end: the policy editor, real Shopify webhook
payloads changing the linked order (the policy follows, with "why" on the timeline; stale
and duplicate events change nothing), agents linking orders, and other tenants.

Webhooks run through the real ack path; processing runs inline (CELERY_TASK_ALWAYS_EAGER)
when the POST's on-commit callbacks are executed.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from helpdesk.services import Actor
from integrations.models import Order, WebhookDelivery
from integrations.tasks import drain_inbox
from tests.orders_fixtures import make_connection, make_order
from tests.test_sla_settings import errors_of, fingerprint, policy_data, url
from tests.test_webhooks import connect, hook_url, post, shopify_headers
from tickets.models import SlaClock, SlaPolicy, Ticket, TicketEvent, TicketType
from tickets.services import customer_get_or_create, ticket_create
from tickets.services_sla import TargetSpec, sla_policy_create

pytest_plugins = ["tests.orders_fixtures"]

SHOPIFY = Path(__file__).parent / "fixtures" / "webhooks" / "shopify"
NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # after the fixture orders were placed and updated
FAST = {("first_response", "normal"): TargetSpec(30, False, 10), ("resolution", "normal"): TargetSpec(240, False, 30)}


# --- Helpers ------------------------------------------------------------------------------


def shopify_order(**changes) -> bytes:
    """The captured Shopify `orders/updated` body (#1042 of dana@example.org), changed."""
    body = json.loads((SHOPIFY / "orders__updated.json").read_text())
    body.update(changes)
    return json.dumps(body).encode()


def shopify_refund(amount: str, refund_id: int = 8880002) -> bytes:
    body = json.loads((SHOPIFY / "refunds__create.json").read_text())
    body["id"] = refund_id
    body["transactions"] = [
        {**t, "amount": amount} for t in copy.deepcopy(body["transactions"]) if t.get("status") == "success"
    ]
    return json.dumps(body).encode()


def big_orders(tenant) -> SlaPolicy:
    """ "Order value ≥ 200 EUR → urgent targets" (30 min first response), above Standard."""
    return sla_policy_create(
        tenant=tenant,
        actor=Actor.system(),
        name="Big orders",
        conditions={"order_value_min": "200", "order_currencies": ["EUR"]},
        targets=FAST,
    )


def dana_ticket(tenant, subject: str = "Where is my order #1042?", **kwargs) -> Ticket:
    customer = customer_get_or_create(tenant=tenant, email="dana@example.org", name="Dana Ruiz")
    return ticket_create(
        tenant=tenant, subject=subject, body="It has not arrived.", customer=customer, actor=Actor.system(), **kwargs
    )


def policy_events(ticket: Ticket) -> list[dict]:
    return [
        e.data
        for e in TicketEvent.objects.filter(ticket=ticket, kind="sla_policy").order_by("id")
        if "policy" in e.data
    ]


def current(ticket: Ticket) -> str | None:
    row = Ticket.objects.select_related("sla_policy").get(pk=ticket.pk)
    return row.sla_policy.name if row.sla_policy else None


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """POST a signed Shopify delivery and run what the worker would (inline)."""

    def send(connection, body: bytes, topic: str = "orders/updated", **headers: str):
        with django_capture_on_commit_callbacks(execute=True):
            response = post(client, hook_url(connection), body, shopify_headers(body, topic=topic, **headers))
        assert response.status_code == 200, response.content
        return response

    return send


# --- Webhooks move the policy -----------------------------------------------------------------


def test_an_order_update_raising_the_value_applies_the_policy_and_a_refund_takes_it_away(cast, deliver, agent_client):
    shop = connect(cast, "shopify")
    with time_machine.travel(NOW, tick=False):
        big = big_orders(cast.tenant)
        ticket = dana_ticket(cast.tenant)
        assert current(ticket) == "Standard"

        # The order arrives at 150 EUR: linked to the ticket (it quotes #1042), still Standard.
        deliver(
            shop,
            shopify_order(
                total_price="150.00", financial_status="paid", refunds=[], updated_at="2026-03-03T10:00:00+01:00"
            ),
            topic="orders/create",
        )
        assert Ticket.objects.get(pk=ticket.pk).order.number == "1042"
        assert current(ticket) == "Standard"

        # orders/updated: an item was added, the order is now worth 250 EUR.
        raised = shopify_order(
            total_price="250.00", financial_status="paid", refunds=[], updated_at="2026-03-03T11:00:00+01:00"
        )
        deliver(shop, raised, webhook_id="raise-1")
    assert current(ticket) == "Big orders"
    first = SlaClock.objects.get(ticket=ticket, metric="first_response")
    assert first.due_at == NOW + timedelta(minutes=30)  # the urgent 30-minute target, calendar time
    why = policy_events(ticket)[-1]
    assert why["policy"] == "Big orders"
    assert why["reason"] == (
        "order value is at least 200.00 EUR — order #1042: 250.00 EUR, paid, partial (order changed)"
    )
    page = agent_client.get(reverse("ticket_detail", args=["acme", ticket.number])).content.decode()
    assert "order #1042: 250.00 EUR, paid, partial" in page

    # A refund of 60 EUR brings it to 190: below the bound, back to Standard.
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        deliver(shop, shopify_refund("60.00"), topic="refunds/create")
    assert Order.objects.get(tenant=cast.tenant, connection=shop).refunded_total == 60
    assert current(ticket) == "Standard"
    why = policy_events(ticket)[-1]
    assert why["reason"] == "it applies to every ticket (order changed — order #1042: 190.00 EUR, paid, partial)"
    count = len(policy_events(ticket))

    # A stale copy of the raise (older updated_at) overwrites nothing and flips nothing back,
    # and the duplicate delivery of the raise is acknowledged and ignored.
    with time_machine.travel(NOW + timedelta(hours=2), tick=False):
        deliver(
            shop,
            shopify_order(total_price="250.00", refunds=[], updated_at="2026-03-03T10:30:00+01:00"),
            webhook_id="stale-1",
        )
        assert post(
            agent_client, hook_url(shop), raised, shopify_headers(raised, topic="orders/updated", webhook_id="raise-1")
        ).json() == {"status": "duplicate"}
    assert current(ticket) == "Standard"
    assert len(policy_events(ticket)) == count
    assert WebhookDelivery.objects.get(connection=shop, delivery_id="stale-1").status == "done"
    assert big.pk != Ticket.objects.get(pk=ticket.pk).sla_policy_id


def test_a_newer_event_that_changes_nothing_for_the_policy_records_nothing(cast, deliver):
    shop = connect(cast, "shopify")
    with time_machine.travel(NOW, tick=False):
        big_orders(cast.tenant)
        ticket = dana_ticket(cast.tenant)
        deliver(shop, shopify_order(total_price="300.00", refunds=[], updated_at="2026-03-03T10:00:00+01:00"))
        assert current(ticket) == "Big orders"
        count = len(policy_events(ticket))
        # Newer: a note changed, the value did not. Processing it twice is harmless too.
        body = shopify_order(
            total_price="300.00", refunds=[], note="Call first", updated_at="2026-03-03T12:00:00+01:00"
        )
        deliver(shop, body, webhook_id="note-1")
        row = WebhookDelivery.objects.get(connection=shop, delivery_id="note-1")
        assert drain_inbox.delay(cast.tenant.pk).get() == 0
    assert row.status == "done"
    assert current(ticket) == "Big orders"
    assert len(policy_events(ticket)) == count


def test_a_fulfillment_ends_an_address_change_policy(cast, deliver):
    shop = connect(cast, "shopify")
    address_type = TicketType.objects.create(tenant=cast.tenant, name="Address change", slug="address-change")
    with time_machine.travel(NOW, tick=False):
        sla_policy_create(
            tenant=cast.tenant,
            actor=Actor.system(),
            name="Address before shipping",
            conditions={"ticket_types": ["address-change"], "order_address_changeable": True},
            targets=FAST,
        )
        ticket = dana_ticket(cast.tenant, subject="New address for #1042", ticket_type=address_type)
        unshipped = shopify_order(
            fulfillment_status=None, fulfillments=[], refunds=[], updated_at="2026-03-03T10:00:00+01:00"
        )
        deliver(shop, unshipped)
        assert current(ticket) == "Address before shipping"
        assert "order not shipped yet (address can still change)" in policy_events(ticket)[-1]["reason"]
        shipped = shopify_order(fulfillment_status="fulfilled", refunds=[], updated_at="2026-03-03T14:00:00+01:00")
        deliver(shop, shipped)
    assert current(ticket) == "Standard"
    assert "fulfilled" in policy_events(ticket)[-1]["reason"]


def test_solved_tickets_are_not_re_matched(cast, deliver):
    from tickets.services import ticket_set_status

    shop = connect(cast, "shopify")
    with time_machine.travel(NOW, tick=False):
        big_orders(cast.tenant)
        ticket = dana_ticket(cast.tenant)
        deliver(shop, shopify_order(total_price="100.00", refunds=[], updated_at="2026-03-03T10:00:00+01:00"))
        ticket_set_status(ticket=Ticket.objects.get(pk=ticket.pk), status="solved", actor=Actor.system())
        deliver(shop, shopify_order(total_price="900.00", refunds=[], updated_at="2026-03-03T12:00:00+01:00"))
    assert current(ticket) == "Standard"


def test_without_order_policies_an_order_event_does_not_look_for_tickets(cast, deliver):
    shop = connect(cast, "shopify")
    with time_machine.travel(NOW, tick=False):
        ticket = dana_ticket(cast.tenant)
        deliver(shop, shopify_order(total_price="100.00", refunds=[], updated_at="2026-03-03T10:00:00+01:00"))
        body = shopify_order(total_price="900.00", refunds=[], updated_at="2026-03-03T12:00:00+01:00")
        with CaptureQueriesContext(db) as queries:
            deliver(shop, body)
    assert Order.objects.get(connection=shop).total == 900
    assert not [q["sql"] for q in queries.captured_queries if '"tickets_ticket"."order_id" IN' in q["sql"]]
    assert current(ticket) == "Standard"


def test_order_events_of_one_tenant_never_touch_another_tenants_tickets(cast, deliver, fake_platform):
    shop = connect(cast, "shopify")
    theirs = make_connection(cast.other_tenant, fake_platform, "shopify")
    with time_machine.travel(NOW, tick=False):
        big_orders(cast.tenant)
        big_orders(cast.other_tenant)
        their_order = make_order(theirs, external_id="6123456789012", number="1042", total="150.00")
        their_ticket = dana_ticket(cast.other_tenant)
        Ticket.objects.filter(pk=their_ticket.pk).update(order=their_order)
        before = len(policy_events(their_ticket))
        ticket = dana_ticket(cast.tenant)
        deliver(shop, shopify_order(total_price="500.00", refunds=[], updated_at="2026-03-03T10:00:00+01:00"))
    assert current(ticket) == "Big orders"
    assert current(their_ticket) == "Standard"
    assert len(policy_events(their_ticket)) == before
    assert Order.objects.get(pk=their_order.pk).total == 150


def test_a_drain_task_for_another_tenant_leaves_the_inbox_alone(client, cast):
    shop = connect(cast, "shopify")
    body = shopify_order(refunds=[])
    assert post(client, hook_url(shop), body, shopify_headers(body, topic="orders/updated")).status_code == 200
    row = WebhookDelivery.objects.get(connection=shop)  # its on-commit drain request never ran
    assert drain_inbox.delay(cast.other_tenant.pk).get() == 0
    assert WebhookDelivery.objects.get(pk=row.pk).status == "pending"
    assert drain_inbox.delay(cast.tenant.pk).get() == 1
    assert WebhookDelivery.objects.get(pk=row.pk).status == "done"


# --- Linking an order -------------------------------------------------------------------------


def test_an_agent_linking_a_late_order_re_matches_the_policy(cast, shop, agent_client):
    with time_machine.travel(NOW, tick=False):
        sla_policy_create(
            tenant=cast.tenant,
            actor=Actor.system(),
            name="Late shipments",
            conditions={"order_unshipped_days": 3},
            targets=FAST,
        )
        ticket = dana_ticket(cast.tenant, subject="Still waiting")
        late = make_order(
            shop, external_id="501", number="1501", customer=ticket.customer, placed_at=NOW - timedelta(days=5)
        )
        Order.objects.filter(pk=late.pk).update(fulfillment_status="unfulfilled")
        response = agent_client.post(
            reverse("ticket_order_link", kwargs={"tenant_slug": "acme", "number": ticket.number}),
            {"order": str(late.pk)},
        )
    assert response.status_code == 302
    assert current(ticket) == "Late shipments"
    event = TicketEvent.objects.filter(ticket=ticket, kind="sla_policy").latest("id")
    assert event.actor_user == cast.agent
    assert event.data["reason"] == (
        "order placed 3+ days ago and not fully shipped — order #1501: 50.00 EUR, paid, unfulfilled (order linked)"
    )


def test_an_outsider_cannot_link_an_order_and_nothing_is_re_matched(cast, shop, outsider_client):
    with time_machine.travel(NOW, tick=False):
        big_orders(cast.tenant)
        ticket = dana_ticket(cast.tenant)
        order = make_order(shop, external_id="9", number="1900", customer=ticket.customer, total="900.00")
        for slug in ("acme", "globex"):
            response = outsider_client.post(
                reverse("ticket_order_link", kwargs={"tenant_slug": slug, "number": ticket.number}),
                {"order": str(order.pk)},
            )
            assert response.status_code == 404
    assert Ticket.objects.get(pk=ticket.pk).order_id is None
    assert current(ticket) == "Standard"


# --- The policy editor --------------------------------------------------------------------------

TARGET = {"first_response/normal": "30m"}


def test_a_lead_creates_a_policy_with_order_conditions(lead_client, cast, django_capture_on_commit_callbacks):
    data = policy_data(
        name="Big paid orders",
        targets=TARGET,
        order_value_min="200",
        order_value_max="5000.5",
        order_currencies="eur, usd",
        order_financial_statuses=["paid", "partially_refunded"],
        order_fulfillment_statuses=["unfulfilled", "partial"],
        order_unshipped_days="3",
        order_address_changeable="on",
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(url("settings_sla_policy_create"), data)
    assert response.status_code == 302, errors_of(response)
    created = SlaPolicy.objects.get(tenant=cast.tenant, name="Big paid orders")
    assert created.conditions == {
        "order_value_min": "200.00",
        "order_value_max": "5000.50",
        "order_currencies": ["EUR", "USD"],
        "order_financial_statuses": ["paid", "partially_refunded"],
        "order_fulfillment_statuses": ["unfulfilled", "partial"],
        "order_unshipped_days": 3,
        "order_address_changeable": True,
    }
    page = lead_client.get(url("settings_sla_policies")).content.decode()
    assert "order value is at least 200.00 and below 5000.50; order currency is EUR or USD" in page
    assert "payment is paid or partially refunded" in page

    form = lead_client.get(url("settings_sla_policy_edit", created.pk)).context["form"]
    assert form.initial["order_value_min"] == "200.00"
    assert form.initial["order_currencies"] == "EUR, USD"
    assert form.initial["order_unshipped_days"] == 3
    assert form.initial["order_address_changeable"] is True
    edit_page = lead_client.get(url("settings_sla_policy_edit", created.pk)).content.decode()
    assert 'id="order-conditions"' in edit_page and 'value="200.00"' in edit_page


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"order_value_min": "two hundred"}, "order_value_min", "Give an amount such as 200"),
        ({"order_value_min": "-1"}, "order_value_min", "can’t be negative"),
        ({"order_value_max": "9.999"}, "order_value_max", "at most two decimals"),
        ({"order_value_min": "300", "order_value_max": "200"}, "order_value_max", "above the lower one"),
        ({"order_currencies": "EUR, Euro"}, "order_currencies", "three-letter currency codes"),
        ({"order_financial_statuses": ["chargeback"]}, "order_financial_statuses", "not one of the available"),
        ({"order_fulfillment_statuses": ["lost"]}, "order_fulfillment_statuses", "not one of the available"),
        ({"order_unshipped_days": "0"}, "order_unshipped_days", "from 1 to 365"),
        ({"order_unshipped_days": "2.5"}, "order_unshipped_days", "whole number of days"),
    ],
    ids=["words", "negative", "cents", "max-below-min", "currency", "payment", "fulfillment", "zero-days", "days"],
)
def test_bad_order_conditions_are_form_errors_and_nothing_is_saved(lead_client, cast, fields, field, message):
    standard = SlaPolicy.objects.get(tenant=cast.tenant, name="Standard")
    before = fingerprint(cast.tenant)
    for address in (url("settings_sla_policy_create"), url("settings_sla_policy_edit", standard.pk)):
        response = lead_client.post(address, policy_data(targets=TARGET, **fields))
        assert response.status_code == 200
        errors = response.context["form"].errors
        assert message in " ".join(errors[field]), errors
        assert message in response.content.decode().replace("&#x27;", "'").replace("&rsquo;", "’")
    assert fingerprint(cast.tenant) == before


def test_the_api_lists_order_conditions_and_an_outsider_gets_404_for_them(cast, agent_client, outsider_client):
    big = big_orders(cast.tenant)
    listed = agent_client.get("/api/v1/sla-policies/", HTTP_X_TENANT="acme").json()
    assert {"order_value_min": "200.00", "order_currencies": ["EUR"]} in [p["conditions"] for p in listed["results"]]
    assert outsider_client.get(f"/api/v1/sla-policies/{big.pk}/", HTTP_X_TENANT="globex").status_code == 404
    before = fingerprint(cast.tenant)
    response = outsider_client.post(
        url("settings_sla_policy_edit", big.pk), policy_data(targets=TARGET, order_value_min="1")
    )
    assert response.status_code == 404
    assert fingerprint(cast.tenant) == before
