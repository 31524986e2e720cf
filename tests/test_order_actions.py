"""Refunds, cancellations and address changes from a ticket, against a real fake store.

The platform is `tests.fake_platform` (a local HTTP server); Celery runs eagerly, so the
worker's task runs when the request's transaction commits.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from helpdesk.models import AuditLog
from helpdesk.services import Actor
from integrations import actions
from integrations.action_tasks import (
    backoff,
    reconcile_all,
    reconcile_connection,
    run_order_action,
    sweep_order_actions,
)
from integrations.clients import Response, parse_retry_after, platform_message
from integrations.models import ActionLimit, Connection, Fulfillment, Order, OrderAction, Refund
from tests.orders_fixtures import make_connection, make_order
from tests.tickets_fixtures import make_ticket
from tickets.models import Notification, TicketEvent

pytest_plugins = ["tests.orders_fixtures"]

SHOPIFY_ID = 6123456789012
LINE_A, LINE_B = 15001, 15002
State = OrderAction.State


@pytest.fixture
def world(cast, fake_platform, shop):
    """A ticket from Carla about Shopify order #1042 (€50: 2 socks at €15, 1 hat at €20)."""
    fake_platform.add_shopify_order(
        SHOPIFY_ID,
        number=1042,
        total="50.00",
        lines=[
            {"id": LINE_A, "title": "Red socks", "quantity": 2, "price": "15.00"},
            {"id": LINE_B, "title": "Hat", "quantity": 1, "price": "20.00"},
        ],
    )
    ticket = make_ticket(cast, subject="Refund for #1042 please")
    order = make_order(
        shop,
        external_id=str(SHOPIFY_ID),
        number="1042",
        customer=ticket.customer,
        total="50.00",
        lines=[(str(LINE_A), "Red socks", 2, "15.00"), (str(LINE_B), "Hat", 1, "20.00")],
    )
    return type(
        "World",
        (),
        {"ticket": ticket, "order": order, "fake": fake_platform, "shop": shop, "cast": cast},
    )


def request(world, kind, params, user=None, **kwargs):
    actor = Actor.for_user(user or world.cast.agent)
    return actions.order_action_request(
        ticket=world.ticket, order=world.order, kind=kind, params=params, actor=actor, **kwargs
    )


def events(ticket, prefix="order_action_"):
    return list(
        TicketEvent.objects.filter(ticket=ticket, kind__startswith=prefix).order_by("id").values_list("kind", flat=True)
    )


def url(name, world, **kwargs):
    return reverse(
        name,
        kwargs={"tenant_slug": world.cast.tenant.slug, "number": world.ticket.number, **kwargs},
    )


HTMX = {"HTTP_HX_REQUEST": "true"}
# Until api_orders is registered in helpdesk/api_registry.py (then this is a no-op).


# --- Refunds ------------------------------------------------------------------------------


def test_a_full_refund_within_the_agents_limit_runs_at_once_and_is_recorded(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        action = request(world, "refund", {"full": True, "reason": "Arrived torn"})
    action.refresh_from_db()
    assert action.status == State.SUCCEEDED
    assert action.attempts == 1
    order = Order.objects.get(pk=world.order.pk)
    assert order.refunded_total == Decimal("50.00")
    assert order.financial_status == "refunded"
    refund = Refund.objects.get(order=order)
    assert refund.amount == Decimal("50.00")
    assert refund.external_id == action.result["refund_id"]
    created = world.fake.calls_to("POST", r"/orders/\d+/refunds\.json$")
    assert len(created) == 1
    assert created[0].headers["idempotency-key"] == action.idempotency_key
    assert created[0].headers["x-shopify-access-token"]
    assert created[0].body["refund"]["transactions"][0]["amount"] == "50.00"
    assert "Arrived torn" in created[0].body["refund"]["note"]
    assert events(world.ticket) == ["order_action_requested", "order_action_succeeded"]
    assert AuditLog.objects.filter(tenant=world.cast.tenant, action__startswith="order.refund.").count() == 2


def test_a_refund_of_chosen_lines_sends_those_lines_and_their_value(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        action = request(
            world,
            "refund",
            {
                "lines": [{"line": world.order.lines.get(external_id=str(LINE_A)).pk, "quantity": 1}],
                "restock": True,
            },
        )
    action.refresh_from_db()
    assert action.status == State.SUCCEEDED
    assert action.params["amount"] == "15.00"
    calc = world.fake.calls_to("POST", r"/refunds/calculate\.json$")[0]
    assert calc.body["refund"]["refund_line_items"] == [
        {"line_item_id": LINE_A, "quantity": 1, "restock_type": "cancel"}
    ]
    created = world.fake.calls_to("POST", r"/refunds\.json$")[0]
    assert created.body["refund"]["transactions"][0]["amount"] == "15.00"
    assert created.body["refund"]["refund_line_items"][0]["line_item_id"] == LINE_A
    assert Order.objects.get(pk=world.order.pk).financial_status == "partially_refunded"


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"amount": "50.01"}, "amount", "At most €50.00 can be refunded"),
        ({"amount": "0"}, "amount", "more than zero"),
        ({"amount": "-5"}, "amount", "more than zero"),
        ({"amount": "1.234"}, "amount", "two decimals"),
        ({"amount": "lots"}, "amount", "Enter an amount"),
        ({}, "amount", "Enter the amount"),
        ({"lines": [{"line": 999999, "quantity": 1}]}, "lines", "not part of order"),
    ],
)
def test_a_bad_refund_is_refused_with_a_clear_field_error_and_changes_nothing(world, params, field, words):
    with pytest.raises(ValidationError) as caught:
        request(world, "refund", params)
    assert words in " ".join(caught.value.message_dict[field])
    assert not OrderAction.objects.exists()
    assert world.fake.calls == []


def test_refunding_more_items_than_were_ordered_names_the_line(world):
    line = world.order.lines.get(external_id=str(LINE_B))
    with pytest.raises(ValidationError) as caught:
        request(world, "refund", {"lines": [{"line": line.pk, "quantity": 2}]})
    assert "Hat: refund between 0 and 1" in caught.value.message_dict[f"line_{line.pk}"][0]


def test_pending_requests_count_against_what_can_still_be_refunded(world, cast):
    request(world, "refund", {"amount": "45.00"}, user=cast.agent)  # over €100? no: queued but not run
    with pytest.raises(ValidationError) as caught:
        request(world, "refund", {"amount": "10.00"})
    assert "€45.00 is in pending requests" in caught.value.message_dict["amount"][0]


def test_a_refund_over_the_agents_limit_waits_for_a_lead_who_approves_it(
    world, cast, lead_client, django_capture_on_commit_callbacks
):
    world.fake.shopify_orders[str(SHOPIFY_ID)]["total_price"] = "250.00"
    Order.objects.filter(pk=world.order.pk).update(total=Decimal("250.00"))
    world.order.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        action = request(world, "refund", {"amount": "150.00"})
    assert action.status == State.AWAITING_APPROVAL
    assert "over the refund limit for agents (€100.00)" in action.result["approval_reason"]
    assert world.fake.calls == []
    note = Notification.objects.get(user=cast.lead, kind="approval")
    assert "Refund €150.00" in note.text and note.ticket_id == world.ticket.pk

    decide = reverse("approval_decide", kwargs={"tenant_slug": cast.tenant.slug, "action_id": action.pk})
    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(decide, {"decision": "approve", "note": "Loyal customer"}, **HTMX)
    assert response.status_code == 200
    assert "orders-changed" in json.loads(response["HX-Trigger"])
    action.refresh_from_db()
    assert action.status == State.SUCCEEDED
    assert action.decided_by == cast.lead and action.decision_note == "Loyal customer"
    assert len(world.fake.calls_to("POST", r"/refunds\.json$")) == 1
    assert events(world.ticket) == [
        "order_action_requested",
        "order_action_approved",
        "order_action_succeeded",
    ]
    assert Notification.objects.filter(user=cast.agent, kind="approval_decided").exists()


def test_a_lead_can_reject_a_request_and_nothing_reaches_the_store(world, cast, lead_client):
    Order.objects.filter(pk=world.order.pk).update(total=Decimal("500.00"))
    world.order.refresh_from_db()
    action = request(world, "refund", {"amount": "300.00"})
    decide = reverse("approval_decide", kwargs={"tenant_slug": cast.tenant.slug, "action_id": action.pk})
    response = lead_client.post(decide, {"decision": "reject", "note": "Ask for photos first"})
    assert response.status_code == 302
    action.refresh_from_db()
    assert action.status == State.REJECTED
    assert world.fake.calls == []
    assert events(world.ticket)[-1] == "order_action_rejected"
    assert (
        TicketEvent.objects.get(ticket=world.ticket, kind="order_action_rejected").data["note"]
        == "Ask for photos first"
    )


def test_agents_cannot_decide_approvals(world, cast, agent_client):
    Order.objects.filter(pk=world.order.pk).update(total=Decimal("500.00"))
    world.order.refresh_from_db()
    action = request(world, "refund", {"amount": "300.00"})
    decide = reverse("approval_decide", kwargs={"tenant_slug": cast.tenant.slug, "action_id": action.pk})
    assert agent_client.post(decide, {"decision": "approve"}).status_code == 403
    assert agent_client.get(reverse("approvals", kwargs={"tenant_slug": cast.tenant.slug})).status_code == 403
    with pytest.raises(PermissionDenied):
        actions.order_action_decide(action=action, actor=Actor.for_user(cast.agent), approve=True)
    action.refresh_from_db()
    assert action.status == State.AWAITING_APPROVAL


def test_a_lead_cannot_approve_more_than_the_leads_limit_but_an_admin_can(
    world, cast, django_capture_on_commit_callbacks
):
    world.fake.shopify_orders[str(SHOPIFY_ID)]["total_price"] = "5000.00"
    Order.objects.filter(pk=world.order.pk).update(total=Decimal("5000.00"))
    world.order.refresh_from_db()
    action = request(world, "refund", {"amount": "2000.00"})
    # Only admins and owners are told: leads could not approve it.
    assert set(Notification.objects.filter(kind="approval").values_list("user_id", flat=True)) == {
        cast.admin.pk,
        cast.owner.pk,
    }
    with pytest.raises(PermissionDenied, match=r"over the refund limit for team leads \(€1,000.00\)"):
        actions.order_action_decide(action=action, actor=Actor.for_user(cast.lead), approve=True)
    with django_capture_on_commit_callbacks(execute=True):
        actions.order_action_decide(action=action, actor=Actor.for_user(cast.admin), approve=True)
    action.refresh_from_db()
    assert action.status == State.SUCCEEDED


def test_admins_set_the_limits_and_agents_can_not(world, cast, admin_client_a, agent_client):
    page = reverse("settings_action_limits", kwargs={"tenant_slug": cast.tenant.slug})
    assert agent_client.get(page).status_code == 403
    assert admin_client_a.get(page).status_code == 200
    response = admin_client_a.post(
        page,
        {
            "agent-max_refund": "20.00",
            "agent-can_cancel": "",
            "agent-can_change_address": "on",
            "lead-max_refund": "400",
            "lead-can_cancel": "on",
            "lead-can_change_address": "on",
        },
    )
    assert response.status_code == 302
    assert ActionLimit.objects.get(tenant=cast.tenant, role="agent").max_refund == Decimal("20.00")
    assert request(world, "refund", {"amount": "25.00"}).status == State.AWAITING_APPROVAL
    assert request(world, "cancel", {"reason": "customer", "refund": False}).status == State.AWAITING_APPROVAL
    bad = admin_client_a.post(page, {"agent-max_refund": "-1", "lead-max_refund": "x"})
    assert bad.status_code == 400
    assert ActionLimit.objects.get(tenant=cast.tenant, role="agent").max_refund == Decimal("20.00")


def test_the_approvals_page_lists_pending_requests_for_leads(world, cast, lead_client):
    Order.objects.filter(pk=world.order.pk).update(total=Decimal("500.00"))
    world.order.refresh_from_db()
    request(world, "refund", {"amount": "300.00", "reason": "Never arrived"})
    response = lead_client.get(reverse("approvals", kwargs={"tenant_slug": cast.tenant.slug}))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Refund €300.00" in body and "Never arrived" in body and f"#{world.ticket.number}" in body
    assert "over the refund limit for agents (€100.00)" in body


# --- Cancel -------------------------------------------------------------------------------


def test_cancelling_with_restock_refund_and_notify_sends_them_to_shopify(
    world, cast, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        action = request(
            world,
            "cancel",
            {"reason": "customer", "restock": True, "refund": True, "notify": True},
            user=cast.lead,
        )
    action.refresh_from_db()
    assert action.status == State.SUCCEEDED, action.error_message
    call = world.fake.calls_to("POST", r"/cancel\.json$")[0]
    assert call.body["reason"] == "customer"
    assert call.body["email"] is True
    assert call.body["refund"]["transactions"][0]["amount"] == "50.00"
    assert {rli["restock_type"] for rli in call.body["refund"]["refund_line_items"]} == {"cancel"}
    order = Order.objects.get(pk=world.order.pk)
    assert order.cancelled_at is not None and order.cancel_reason == "customer"
    assert order.refunded_total == Decimal("50.00")
    assert Refund.objects.filter(order=order).count() == 1


def test_a_shipped_order_cannot_be_cancelled(world):
    Order.objects.filter(pk=world.order.pk).update(fulfillment_status="fulfilled")
    world.order.refresh_from_db()
    with pytest.raises(ValidationError) as caught:
        request(world, "cancel", {"reason": "customer"})
    assert "has shipped, so it can't be cancelled" in caught.value.message_dict["order"][0]


def test_an_order_with_a_shipment_cannot_be_cancelled_nor_cancelled_twice(world):
    Fulfillment.objects.create(tenant_id=world.order.tenant_id, order=world.order, external_id="1", status="in_transit")
    with pytest.raises(ValidationError, match="has shipped"):
        request(world, "cancel", {"reason": "customer"})
    Fulfillment.objects.all().delete()
    Order.objects.filter(pk=world.order.pk).update(cancelled_at=timezone.now())
    world.order.refresh_from_db()
    with pytest.raises(ValidationError, match="already cancelled"):
        request(world, "cancel", {"reason": "customer"})


def test_the_store_refusing_a_cancel_fails_the_action_with_the_stores_words(world, django_capture_on_commit_callbacks):
    world.fake.shopify_orders[str(SHOPIFY_ID)]["fulfillment_status"] = "fulfilled"  # we had not heard yet
    with django_capture_on_commit_callbacks(execute=True):
        action = request(world, "cancel", {"reason": "customer", "refund": False})
    action.refresh_from_db()
    assert action.status == State.FAILED
    assert "Cannot cancel an order that has been fulfilled" in action.error_message


# --- Address ------------------------------------------------------------------------------


def test_an_address_change_goes_to_the_store_and_onto_our_copy(world, django_capture_on_commit_callbacks):
    new = {
        "name": "Carla Customer",
        "address1": "Gran Vía 1",
        "city": "Madrid",
        "zip": "28013",
        "country_code": "es",
    }
    with django_capture_on_commit_callbacks(execute=True):
        action = request(world, "address_change", new)
    action.refresh_from_db()
    assert action.status == State.SUCCEEDED
    call = world.fake.calls_to("PUT", rf"/orders/{SHOPIFY_ID}\.json$")[0]
    assert call.body["order"]["shipping_address"]["address1"] == "Gran Vía 1"
    assert call.body["order"]["shipping_address"]["country_code"] == "ES"
    assert Order.objects.get(pk=world.order.pk).shipping_address["address1"] == "Gran Vía 1"


def test_an_undeliverable_address_gets_field_errors_in_the_form(world, agent_client):
    response = agent_client.post(
        url("ticket_order_address", world, order_id=world.order.pk),
        {"name": "Carla", "address1": "", "city": "Madrid", "zip": "2801", "country_code": "XX"},
        **HTMX,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "Enter the street and house number." in body
    assert "“XX” is not a country code" in body
    assert not OrderAction.objects.exists()
    response = agent_client.post(
        url("ticket_order_address", world, order_id=world.order.pk),
        {
            "name": "Carla",
            "address1": "Main St 1",
            "city": "Madrid",
            "zip": "2801",
            "country_code": "ES",
        },
    )
    assert response.status_code == 400
    assert "is not a ES postal code (5 digits)" in response.content.decode()


def test_a_shipped_order_keeps_its_address(world):
    Order.objects.filter(pk=world.order.pk).update(fulfillment_status="fulfilled")
    world.order.refresh_from_db()
    with pytest.raises(ValidationError, match="has shipped"):
        request(
            world,
            "address_change",
            {
                "name": "A",
                "address1": "Street 1",
                "city": "Madrid",
                "zip": "28013",
                "country_code": "ES",
            },
        )


# --- Failures, retries, idempotency -------------------------------------------------------


def test_a_platform_refusal_fails_the_action_with_its_message_and_a_retry_succeeds(
    world, agent_client, django_capture_on_commit_callbacks
):
    world.fake.fail_next(
        status=422,
        body={"errors": {"base": ["Refund is blocked by an open chargeback"]}},
        path="/refunds.json",
        method="POST",
    )
    with django_capture_on_commit_callbacks(execute=True):
        action = request(world, "refund", {"amount": "10.00"})
    action.refresh_from_db()
    assert action.status == State.FAILED
    assert action.error_message == "The store refused to refund: Refund is blocked by an open chargeback"
    assert (
        TicketEvent.objects.get(ticket=world.ticket, kind="order_action_failed")
        .data["error"]
        .endswith("open chargeback")
    )

    sidebar = agent_client.get(url("ticket_orders", world), **HTMX).content.decode()
    assert "Refund is blocked by an open chargeback" in sidebar and "Try again" in sidebar

    with django_capture_on_commit_callbacks(execute=True):
        response = agent_client.post(url("ticket_order_action_retry", world, action_id=action.pk), **HTMX)
    assert response.status_code == 200
    action.refresh_from_db()
    assert action.status == State.SUCCEEDED and action.attempts == 2
    keys = {c.headers["idempotency-key"] for c in world.fake.calls_to("POST", r"/refunds\.json$")}
    assert keys == {action.idempotency_key}
    assert events(world.ticket) == [
        "order_action_requested",
        "order_action_failed",
        "order_action_retried",
        "order_action_succeeded",
    ]


def test_a_429_is_retried_after_the_stores_retry_after(world, django_capture_on_commit_callbacks):
    world.fake.rate_limit_next(retry_after=7, path="/refunds.json", method="POST")
    with django_capture_on_commit_callbacks(execute=True):
        action = request(world, "refund", {"amount": "10.00"})
    action.refresh_from_db()
    assert action.status == State.SUCCEEDED
    assert action.attempts == 2
    assert [e["retry_in"] for e in action.result["transient_errors"]] == [7]
    assert "rate-limiting" in action.result["transient_errors"][0]["error"]
    assert len(world.fake.shopify_orders[str(SHOPIFY_ID)]["refunds"]) == 1


def test_outages_are_retried_with_backoff_then_given_up(world, django_capture_on_commit_callbacks):
    world.fake.fail_next(status=503, body={"errors": "Service Unavailable"}, times=50)
    with django_capture_on_commit_callbacks(execute=True):
        action = request(world, "refund", {"amount": "10.00"})
    action.refresh_from_db()
    assert action.status == State.FAILED
    assert action.attempts == 6  # the first try and five retries
    assert "Gave up after 6 attempts" in action.error_message
    assert [e["retry_in"] for e in action.result["transient_errors"]] == [10, 20, 40, 80, 160]


def test_a_store_that_does_not_answer_in_time_is_tried_again(world, django_capture_on_commit_callbacks):
    world.fake.time_out_next(seconds=1.0, path="/refunds.json", method="POST")  # stalls, does nothing
    with django_capture_on_commit_callbacks(execute=True):
        action = request(world, "refund", {"amount": "10.00"})
    action.refresh_from_db()
    assert action.status == State.SUCCEEDED
    assert action.attempts == 2
    assert "did not answer within 0.4 s" in action.result["transient_errors"][0]["error"]
    assert len(world.fake.shopify_orders[str(SHOPIFY_ID)]["refunds"]) == 1


def test_a_lost_answer_is_retried_without_refunding_twice(world, django_capture_on_commit_callbacks):
    # Shopify makes the refund but the answer never arrives (our client times out).
    world.fake.time_out_next(seconds=1.0, path="/refunds.json", method="POST", after=True)
    with django_capture_on_commit_callbacks(execute=True):
        action = request(world, "refund", {"amount": "10.00"})
    action.refresh_from_db()
    assert action.status == State.SUCCEEDED
    assert action.attempts == 2
    assert len(world.fake.shopify_orders[str(SHOPIFY_ID)]["refunds"]) == 1
    assert Refund.objects.filter(order=world.order).count() == 1
    assert Order.objects.get(pk=world.order.pk).refunded_total == Decimal("10.00")


def test_running_the_task_twice_refunds_once(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        action = request(world, "refund", {"amount": "10.00"})
    assert run_order_action.delay(world.cast.tenant.pk, action.pk).get() == "not queued"
    # A duplicate message after a worker crash: the row is queued again and runs again.
    OrderAction.objects.filter(pk=action.pk).update(status=State.QUEUED)
    assert run_order_action.delay(world.cast.tenant.pk, action.pk).get() == "succeeded"
    assert len(world.fake.shopify_orders[str(SHOPIFY_ID)]["refunds"]) == 1
    assert Refund.objects.filter(order=world.order).count() == 1
    assert Order.objects.get(pk=world.order.pk).refunded_total == Decimal("10.00")


def test_the_sweeper_requeues_an_action_whose_message_was_lost(world):
    action = request(world, "refund", {"amount": "10.00"})  # on_commit never ran: the message is lost
    assert sweep_order_actions.delay().get() == 0  # too fresh to call lost
    OrderAction.objects.filter(pk=action.pk).update(updated_at=timezone.now() - timedelta(minutes=11))
    assert sweep_order_actions.delay().get() == 1
    action.refresh_from_db()
    assert action.status == State.SUCCEEDED


def test_a_disconnected_or_generic_store_can_not_take_actions(world, cast):
    Connection.objects.filter(pk=world.shop.pk).update(status="disconnected")
    world.order.connection.refresh_from_db()
    with pytest.raises(ValidationError, match="disconnected"):
        request(world, "refund", {"amount": "5"})
    generic = make_connection(cast.tenant, None, "generic")
    order = make_order(generic, external_id="g1", number="9", customer=world.ticket.customer)
    with pytest.raises(ValidationError, match="generic format"):
        actions.order_action_request(
            ticket=world.ticket,
            order=order,
            kind="refund",
            params={"amount": "5"},
            actor=Actor.for_user(cast.agent),
        )


def test_bad_credentials_fail_permanently_with_a_hint(world, cast, fake_platform, django_capture_on_commit_callbacks):
    from integrations.crypto import encrypt_json

    Connection.objects.filter(pk=world.shop.pk).update(
        credentials_encrypted=encrypt_json({"access_token": "wrong", "base_url": fake_platform.base_url})
    )
    with django_capture_on_commit_callbacks(execute=True):
        action = request(world, "refund", {"amount": "5.00"})
    action.refresh_from_db()
    assert action.status == State.FAILED
    assert "refused our credentials" in action.error_message and "Reconnect the store" in action.error_message


# --- WooCommerce and Magento --------------------------------------------------------------


@pytest.fixture
def woo(cast, fake_platform):
    connection = make_connection(cast.tenant, fake_platform, "woocommerce")
    fake_platform.add_woo_order(4750, total="54.00")
    ticket = make_ticket(cast, email="lee@example.com", subject="Mug broken")
    order = make_order(
        connection,
        external_id="4750",
        number="4750",
        customer=ticket.customer,
        total="54.00",
        currency="USD",
        lines=[("47501", "Mug", 2, "27.00")],
    )
    return type(
        "World",
        (),
        {"ticket": ticket, "order": order, "fake": fake_platform, "shop": connection, "cast": cast},
    )


def test_woocommerce_refunds_carry_our_key_and_a_lost_answer_is_not_refunded_twice(
    woo, django_capture_on_commit_callbacks
):
    woo.fake.time_out_next(seconds=1.0, path="/refunds", method="POST", after=True)
    line = woo.order.lines.get()
    with django_capture_on_commit_callbacks(execute=True):
        action = request(woo, "refund", {"lines": [{"line": line.pk, "quantity": 1}], "reason": "Chipped"})
    action.refresh_from_db()
    assert action.status == State.SUCCEEDED, action.error_message
    assert len(woo.fake.woo_refunds["4750"]) == 1
    posted = woo.fake.calls_to("POST", r"/orders/4750/refunds$")
    assert len(posted) == 1  # the retry found the refund instead of posting again
    body = posted[0].body
    assert body["amount"] == "27.00" and body["api_refund"] is True
    assert body["line_items"] == [{"id": 47501, "quantity": 1, "refund_total": "27.00"}]
    assert {"key": "_storedesk_idempotency_key", "value": action.idempotency_key} in body["meta_data"]
    assert posted[0].headers["authorization"].startswith("Basic ")
    assert Order.objects.get(pk=woo.order.pk).refunded_total == Decimal("27.00")


def test_woocommerce_cancel_and_address_change(woo, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        cancel = request(woo, "cancel", {"reason": "customer", "refund": True, "notify": True})
    cancel.refresh_from_db()
    assert cancel.status == State.SUCCEEDED, cancel.error_message
    assert woo.fake.woo_orders["4750"]["status"] == "cancelled"
    assert woo.fake.woo_refunds["4750"][0]["amount"] == "54.00"
    assert woo.fake.woo_notes["4750"][0]["customer_note"] is True
    woo.fake.add_woo_order(4751, total="10.00")
    order = make_order(
        woo.shop,
        external_id="4751",
        number="4751",
        customer=woo.ticket.customer,
        total="10.00",
        currency="USD",
    )
    with django_capture_on_commit_callbacks(execute=True):
        change = actions.order_action_request(
            ticket=woo.ticket,
            order=order,
            kind="address_change",
            actor=Actor.for_user(woo.cast.agent),
            params={
                "name": "Lee Park",
                "address1": "2 Oak Ave",
                "city": "Austin",
                "province": "tx",
                "zip": "78702",
                "country_code": "US",
            },
        )
    change.refresh_from_db()
    assert change.status == State.SUCCEEDED, change.error_message
    assert woo.fake.woo_orders["4751"]["shipping"] == {
        "first_name": "Lee",
        "last_name": "Park",
        "company": "",
        "address_1": "2 Oak Ave",
        "address_2": "",
        "city": "Austin",
        "state": "TX",
        "postcode": "78702",
        "country": "US",
        "phone": "",
    }


def test_woocommerce_error_messages_reach_the_agent(woo, django_capture_on_commit_callbacks):
    woo.fake.woo_refunds["4750"].append({"id": 1, "amount": "54.00", "reason": "in the store admin", "meta_data": []})
    with django_capture_on_commit_callbacks(execute=True):
        action = request(woo, "refund", {"amount": "5.00"})
    action.refresh_from_db()
    assert action.status == State.FAILED
    assert action.error_message == "The store refused to refund: Invalid refund amount."


@pytest.fixture
def magento(cast, fake_platform):
    connection = make_connection(cast.tenant, fake_platform, "magento")
    fake_platform.add_magento_order(118, total="72.50")
    ticket = make_ticket(cast, email="kim@example.com", subject="Hat too small")
    order = make_order(
        connection,
        external_id="118",
        number="000000118",
        customer=ticket.customer,
        total="72.50",
        lines=[("1181", "Hat", 1, "72.50")],
    )
    return type(
        "World",
        (),
        {"ticket": ticket, "order": order, "fake": fake_platform, "shop": connection, "cast": cast},
    )


def test_magento_refunds_are_credit_memos_found_again_by_their_comment(magento, django_capture_on_commit_callbacks):
    magento.fake.time_out_next(seconds=1.0, path="/refund", method="POST", after=True)
    with django_capture_on_commit_callbacks(execute=True):
        action = request(magento, "refund", {"amount": "20.00", "reason": "Goodwill"})
    action.refresh_from_db()
    assert action.status == State.SUCCEEDED, action.error_message
    assert len(magento.fake.magento_memos) == 1
    memo = magento.fake.magento_memos[0]
    assert memo["grand_total"] == 20.0
    assert action.idempotency_key in memo["comments"][0]["comment"]
    call = magento.fake.calls_to("POST", r"/V1/order/118/refund$")[0]
    assert call.headers["authorization"] == "Bearer mg_fake_token"
    assert call.body["arguments"]["adjustment_positive"] == 20.0


def test_magento_cancel_of_an_invoiced_order_needs_a_refund_and_its_message_is_shown(
    magento, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        action = request(magento, "cancel", {"reason": "customer", "refund": False})
    action.refresh_from_db()
    assert action.status == State.FAILED
    assert "cancel it with a refund" in action.error_message
    magento.fake.fail_next(
        status=400,
        body={"message": "The most money available to refund is %1.", "parameters": ["0.00"]},
        path="/refund",
    )
    with django_capture_on_commit_callbacks(execute=True):
        action = request(magento, "refund", {"amount": "1.00"})
    action.refresh_from_db()
    assert action.error_message == "The store refused to refund: The most money available to refund is 0.00."


def test_magento_unpaid_cancel_and_address_change(magento, django_capture_on_commit_callbacks):
    magento.fake.add_magento_order(119, total="30.00", state="new", invoiced=False)
    order = make_order(
        magento.shop,
        external_id="119",
        number="000000119",
        customer=magento.ticket.customer,
        total="30.00",
        financial_status="pending",
    )
    actor = Actor.for_user(magento.cast.agent)
    with django_capture_on_commit_callbacks(execute=True):
        change = actions.order_action_request(
            ticket=magento.ticket,
            order=order,
            kind="address_change",
            actor=actor,
            params={
                "name": "Kim Lee",
                "address1": "Unter den Linden 1",
                "city": "Berlin",
                "zip": "10117",
                "country_code": "DE",
            },
        )
        cancel = actions.order_action_request(
            ticket=magento.ticket,
            order=order,
            kind="cancel",
            actor=actor,
            params={"reason": "customer", "notify": True},
        )
    change.refresh_from_db()
    cancel.refresh_from_db()
    assert change.status == State.SUCCEEDED, change.error_message
    address = magento.fake.magento_orders["119"]["extension_attributes"]["shipping_assignments"][0]["shipping"][
        "address"
    ]
    assert (
        address["street"] == ["Unter den Linden 1"]
        and address["postcode"] == "10117"
        and address["telephone"] == "030123"
    )
    assert cancel.status == State.SUCCEEDED, cancel.error_message
    assert cancel.params["refund"] is False  # nothing was paid
    assert magento.fake.magento_orders["119"]["state"] == "canceled"
    assert Order.objects.get(pk=order.pk).cancelled_at is not None


# --- Reconciliation -----------------------------------------------------------------------


def test_reconciliation_pulls_changed_orders_and_heals_a_missed_webhook(world, cast, monkeypatch):
    from integrations.shopify.client import ShopifyClient

    monkeypatch.setattr(ShopifyClient, "page_size", 2)  # three orders: two pages via the Link header
    remote = world.fake.shopify_orders[str(SHOPIFY_ID)]
    remote.update(
        cancelled_at="2026-03-02T11:00:00+00:00",
        cancel_reason="customer",
        updated_at="2026-03-02T11:00:00+00:00",
        financial_status="voided",
    )
    world.fake.add_shopify_order(SHOPIFY_ID + 1, number=1043, updated_at="2026-03-02T10:00:00+00:00")
    world.fake.add_shopify_order(SHOPIFY_ID + 2, number=1044, updated_at="2026-03-02T12:00:00+00:00")
    Connection.objects.filter(pk=world.shop.pk).update(last_reconciled_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    report = reconcile_connection.delay(cast.tenant.pk, str(world.shop.pk)).get()
    assert report["fetched"] == 3 and report["skipped"] == 0, report
    pages = world.fake.calls_to("GET", r"/orders\.json$")
    assert len(pages) == 2 and pages[1].query["page_info"] == ["p2"]
    assert pages[0].query["updated_at_min"] == ["2026-03-02T08:50:00+00:00"]  # minus the 10-minute overlap
    healed = Order.objects.get(pk=world.order.pk)
    assert healed.cancelled_at is not None
    assert set(Order.objects.filter(tenant=cast.tenant).values_list("number", flat=True)) == {
        "1042",
        "1043",
        "1044",
    }
    connection = Connection.objects.get(pk=world.shop.pk)
    assert connection.last_reconciled_at > timezone.now() - timedelta(minutes=1)
    assert connection.reconcile_error == ""


def test_reconciliation_of_woocommerce_and_magento(cast, fake_platform, woo, magento):
    fake_platform.add_woo_order(4800, total="12.00", date_modified_gmt="2099-01-01T00:00:00")
    fake_platform.add_magento_order(120, total="9.00", updated_at="2099-01-01 00:00:00")
    assert reconcile_all.delay().get() == 2
    assert Order.objects.filter(tenant=cast.tenant, connection=woo.shop, external_id="4800").exists()
    assert Order.objects.filter(tenant=cast.tenant, connection=magento.shop, external_id="120").exists()
    assert fake_platform.calls_to("GET", r"/wp-json/wc/v3/orders$")[0].query["dates_are_gmt"] == ["true"]


def test_a_failing_reconciliation_is_recorded_on_the_connection(world, cast):
    world.fake.fail_next(status=401, body={"errors": "[API] Invalid API key or access token"}, path="/orders.json")
    report = reconcile_connection.delay(cast.tenant.pk, str(world.shop.pk)).get()
    assert "Invalid API key" in report["error"]
    connection = Connection.objects.get(pk=world.shop.pk)
    assert "Invalid API key" in connection.reconcile_error
    assert connection.last_reconciled_at is None


# --- API ----------------------------------------------------------------------------------


def test_api_creates_queued_and_awaiting_actions_with_201_and_202(world, api, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/order-actions/",
            {
                "ticket": world.ticket.pk,
                "order": world.order.pk,
                "kind": "refund",
                "params": {"amount": "5.00"},
            },
            format="json",
        )
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "queued"  # eager: ran after the answer was built
    assert OrderAction.objects.get(pk=response.json()["id"]).status == State.SUCCEEDED
    ActionLimit.objects.create(tenant=world.cast.tenant, role="agent", max_refund=Decimal("1"))
    from django.test import Client

    client = Client()
    client.force_login(world.cast.agent, backend="helpdesk.auth_backends.CachedModelBackend")
    response = client.post(
        "/api/v1/order-actions/",
        json.dumps(
            {
                "ticket": world.ticket.pk,
                "order": world.order.pk,
                "kind": "refund",
                "params": {"amount": "5.00"},
            }
        ),
        content_type="application/json",
        HTTP_X_TENANT=world.cast.tenant.slug,
    )
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "awaiting_approval"
    assert (
        client.post(
            f"/api/v1/order-actions/{response.json()['id']}/approve/",
            HTTP_X_TENANT=world.cast.tenant.slug,
        ).status_code
        == 403
    )


def test_api_errors_name_the_field(world, api):
    response = api.post(
        "/api/v1/order-actions/",
        {
            "ticket": world.ticket.pk,
            "order": world.order.pk,
            "kind": "refund",
            "params": {"amount": "500"},
        },
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "At most €50.00" in error["fields"]["amount"][0]
    response = api.post(
        "/api/v1/order-actions/",
        {"ticket": world.ticket.pk, "order": world.order.pk, "kind": "explode"},
        format="json",
    )
    assert response.status_code == 400 and "kind" in response.json()["error"]["fields"]


def test_api_idempotency_key_returns_the_first_request(world, api):
    body = {
        "ticket": world.ticket.pk,
        "order": world.order.pk,
        "kind": "refund",
        "params": {"amount": "5.00"},
    }
    first = api.post("/api/v1/order-actions/", body, format="json", HTTP_IDEMPOTENCY_KEY="client-key-1")
    second = api.post("/api/v1/order-actions/", body, format="json", HTTP_IDEMPOTENCY_KEY="client-key-1")
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    assert OrderAction.objects.count() == 1


def test_api_approve_reject_retry_and_list(world, api, django_capture_on_commit_callbacks):
    Order.objects.filter(pk=world.order.pk).update(total=Decimal("500.00"))
    world.order.refresh_from_db()
    first = request(world, "refund", {"amount": "300.00"})
    second = request(world, "refund", {"amount": "150.00"})
    response = api.post(f"/api/v1/order-actions/{first.pk}/reject/", {"note": "No"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert api.post(f"/api/v1/order-actions/{first.pk}/approve/", {}, format="json").status_code == 400
    world.fake.shopify_orders[str(SHOPIFY_ID)]["total_price"] = "500.00"
    world.fake.fail_next(status=422, body={"errors": "Nope"}, path="/refunds.json", method="POST")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/v1/order-actions/{second.pk}/approve/", {}, format="json").status_code == 200
    assert OrderAction.objects.get(pk=second.pk).status == State.FAILED
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/v1/order-actions/{second.pk}/retry/", format="json").json()["status"] == "queued"
    assert OrderAction.objects.get(pk=second.pk).status == State.SUCCEEDED
    listed = api.get("/api/v1/order-actions/", {"status": "rejected"}).json()["results"]
    assert [a["id"] for a in listed] == [first.pk]
    assert listed[0]["summary"] == "Refund €300.00" and listed[0]["decision_note"] == "No"
    assert api.get("/api/v1/order-actions/", {"status": "bogus"}).status_code == 400


def test_api_lists_orders_by_customer_and_number(world, api):
    response = api.get("/api/v1/orders/", {"number": "#1042"})
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["id"] == world.order.pk and row["refundable"] == "50.00" and len(row["lines"]) == 2
    assert api.get("/api/v1/orders/", {"customer": world.ticket.customer_id}).json()["results"][0]["number"] == "1042"
    assert api.get("/api/v1/orders/", {"customer": "x"}).status_code == 400
    assert api.get(f"/api/v1/orders/{world.order.pk}/").json()["platform"] == "shopify"


# --- Tenancy ------------------------------------------------------------------------------


def test_an_outsider_gets_404_on_every_order_page_and_action_of_tenant_a(world, outsider_client, outsider_api):
    action = request(world, "refund", {"amount": "5.00"})
    pages = [
        ("get", url("ticket_orders", world)),
        ("post", url("ticket_order_link", world)),
        ("get", url("ticket_order_refund", world, order_id=world.order.pk)),
        ("post", url("ticket_order_refund", world, order_id=world.order.pk)),
        ("post", url("ticket_order_cancel", world, order_id=world.order.pk)),
        ("post", url("ticket_order_address", world, order_id=world.order.pk)),
        ("get", url("ticket_order_action", world, action_id=action.pk)),
        ("post", url("ticket_order_action_retry", world, action_id=action.pk)),
        ("get", reverse("approvals", kwargs={"tenant_slug": "acme"})),
        (
            "post",
            reverse("approval_decide", kwargs={"tenant_slug": "acme", "action_id": action.pk}),
        ),
        ("get", reverse("settings_action_limits", kwargs={"tenant_slug": "acme"})),
    ]
    for method, path in pages:
        response = getattr(outsider_client, method)(
            path, {"amount": "1", "order": world.order.pk, "decision": "approve"}
        )
        assert response.status_code == 404, f"{method} {path}"
    for method, path in [
        ("get", f"/api/v1/orders/{world.order.pk}/"),
        ("get", f"/api/v1/order-actions/{action.pk}/"),
        ("post", f"/api/v1/order-actions/{action.pk}/approve/"),
        ("post", f"/api/v1/order-actions/{action.pk}/reject/"),
        ("post", f"/api/v1/order-actions/{action.pk}/retry/"),
    ]:
        assert getattr(outsider_api, method)(path, {}, format="json").status_code == 404, path
    response = outsider_api.post(
        "/api/v1/order-actions/",
        {
            "ticket": world.ticket.pk,
            "order": world.order.pk,
            "kind": "refund",
            "params": {"amount": "1"},
        },
        format="json",
    )
    assert response.status_code == 404
    assert outsider_api.get("/api/v1/orders/").json()["results"] == []
    assert OrderAction.objects.count() == 1 and world.fake.calls == []


def test_a_tenant_b_order_can_not_be_acted_on_through_a_tenant_a_ticket(world, cast, fake_platform, agent_client):
    other_shop = make_connection(cast.other_tenant, fake_platform, "shopify")
    foreign = make_order(other_shop, external_id="999", number="1042")
    assert agent_client.get(url("ticket_order_refund", world, order_id=foreign.pk)).status_code == 404
    assert agent_client.post(url("ticket_order_link", world), {"order": foreign.pk}).status_code == 404
    with pytest.raises(ValidationError, match="No such order"):
        actions.order_action_request(
            ticket=world.ticket,
            order=foreign,
            kind="refund",
            params={"amount": "1"},
            actor=Actor.for_user(cast.agent),
        )


# --- Pure pieces --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (422, {"errors": {"base": ["No"], "amount": ["is too big"]}}, "No; amount is too big"),
        (422, {"errors": "Not Found"}, "Not Found"),
        (
            400,
            {"code": "woocommerce_rest_x", "message": "Invalid ID.", "data": {"status": 400}},
            "Invalid ID.",
        ),
        (400, {"message": "No %1 for %2.", "parameters": ["memo", "118"]}, "No memo for 118."),
        (400, {"message": "Needs %field.", "parameters": {"field": "qty"}}, "Needs qty."),
        (502, "<html>Bad gateway</html>", "HTTP 502"),
    ],
)
def test_platform_messages_are_read_from_each_platforms_error_shape(status, body, expected):
    text = body if isinstance(body, str) else json.dumps(body)
    assert platform_message(Response(status, {}, text)) == expected


def test_retry_after_and_backoff():
    assert parse_retry_after("2.0") == 2.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert backoff(0, None) == 10 and backoff(3, None) == 80 and backoff(9, None) == 300
    assert backoff(0, 0.2) == 1 and backoff(0, 3600) == 300
