"""The order card on the ticket page in a real browser: it loads, refunds, asks for approval."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from integrations.models import Fulfillment, OrderAction
from integrations.models import Order as OrderModel
from tests.orders_fixtures import make_order
from tests.tickets_fixtures import make_ticket

pytestmark = pytest.mark.browser
pytest_plugins = ["tests.orders_fixtures"]


def test_an_agent_refunds_from_the_ticket_and_a_larger_refund_waits_for_a_lead(
    page, shot, sign_in, cast, fake_platform, shop
):
    fake_platform.add_shopify_order(
        6001,
        number=1042,
        total="250.00",
        lines=[{"id": 60011, "title": "Red socks", "quantity": 2, "price": "125.00"}],
    )
    ticket = make_ticket(cast, subject="Socks arrived torn — order #1042")
    make_order(
        shop,
        external_id="6001",
        number="1042",
        customer=ticket.customer,
        total="250.00",
        lines=[("60011", "Red socks", 2, "125.00")],
        placed_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    )
    make_order(
        shop,
        external_id="6000",
        number="1031",
        customer=ticket.customer,
        total="19.90",
        fulfillment_status="fulfilled",
        placed_at=datetime(2026, 1, 12, tzinfo=UTC),
    )
    older = OrderModel.objects.get(tenant=cast.tenant, number="1031")
    Fulfillment.objects.create(
        tenant=cast.tenant,
        order=older,
        external_id="1",
        status="in_transit",
        carrier="DHL Express",
        tracking_number="JD0146000062",
        tracking_url="https://www.dhl.com/track?id=JD0146000062",
    )

    sign_in(page, "agent@acme.test")
    page.goto(f"/t/acme/tickets/{ticket.number}/")
    card = page.locator("#orders-card")
    expect(card).to_contain_text("#1042")
    expect(card).to_contain_text("This ticket")
    card.locator(f"#order-{older.pk} summary").click()  # the older, shipped order
    expect(card.get_by_role("link", name="JD0146000062 ↗")).to_be_visible()
    expect(card.locator(f"#order-{older.pk}").get_by_role("link", name="Cancel")).to_have_count(0)
    shot("orders-01-card", full_page=True)

    card.get_by_role("link", name="Refund").first.click()
    form = card.locator("form.order-form")
    expect(form).to_contain_text("Up to €250.00 can be refunded")
    form.get_by_label("Amount (EUR)").fill("30")
    form.get_by_label("Reason (the customer may see it)").fill("Torn on arrival")
    shot("orders-02-refund-form", full_page=True)
    form.get_by_role("button", name="Refund").click()
    expect(card.locator(".order-action").first).to_contain_text("Done")
    expect(card).to_contain_text("Refunded")
    expect(card).to_contain_text("Torn on arrival")
    expect(card).not_to_contain_text("[storedesk:")
    assert OrderAction.objects.get().status == OrderAction.State.SUCCEEDED
    assert len(fake_platform.shopify_orders["6001"]["refunds"]) == 1

    card.get_by_role("link", name="Refund").first.click()
    form = card.locator("form.order-form")
    form.get_by_label("Amount (EUR)").fill("150")
    form.get_by_role("button", name="Refund").click()
    expect(card).to_contain_text("Awaiting approval")
    expect(card).to_contain_text("Waiting for a team lead to approve.")
    shot("orders-03-awaiting-approval", full_page=True)

    card.get_by_role("link", name="Change address").first.click()
    form = card.locator("form.order-form")
    form.get_by_label("Postal code").fill("123")
    form.get_by_label("Country (ISO code)").fill("XX")
    form.get_by_role("button", name="Change address").click()
    expect(form).to_contain_text("“XX” is not a country code")
    shot("orders-04-address-errors", full_page=True)
    assert OrderAction.objects.filter(kind="address_change").count() == 0
    assert Decimal(OrderAction.objects.filter(status="awaiting_approval").get().params["amount"]) == Decimal("150.00")


def test_a_lead_approves_from_the_approvals_page(page, shot, sign_in, cast, fake_platform, shop):
    from helpdesk.services import Actor
    from integrations import actions

    fake_platform.add_shopify_order(6002, number=1050, total="400.00")
    ticket = make_ticket(cast, subject="Refund the whole order 1050")
    order = make_order(
        shop,
        external_id="6002",
        number="1050",
        customer=ticket.customer,
        total="400.00",
        lines=[("60021", "Red socks", 2, "200.00")],
    )
    action = actions.order_action_request(
        ticket=ticket,
        order=order,
        kind="refund",
        params={"full": True, "reason": "Wrong size twice"},
        actor=Actor.for_user(cast.agent),
    )
    assert action.status == OrderAction.State.AWAITING_APPROVAL

    sign_in(page, "lead@acme.test")
    page.goto("/t/acme/approvals/")
    row = page.locator(f"#approval-{action.pk}")
    expect(row).to_contain_text("Refund €400.00")
    expect(row).to_contain_text("over the refund limit for agents (€100.00)")
    shot("orders-05-approvals")
    row.get_by_label("Decision note").fill("OK, loyal customer")
    row.get_by_role("button", name="Approve").click()
    expect(page.locator(f"#approval-{action.pk}")).to_contain_text("Done")
    action.refresh_from_db()
    assert action.status == OrderAction.State.SUCCEEDED
    assert len(fake_platform.shopify_orders["6002"]["refunds"]) == 1
    shot("orders-06-approved")

    page.context.clear_cookies()
    sign_in(page, "admin@acme.test")
    page.goto("/t/acme/settings/action-limits/")
    expect(page.get_by_role("heading", name="Action limits")).to_be_visible()
    shot("orders-07-action-limits")
