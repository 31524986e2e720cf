"""Playbooks in a real browser: a lead edits one with a live preview; an agent works the checklist."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from helpdesk.services import Actor
from integrations.models import Fulfillment
from playbooks import services
from playbooks.models import Playbook
from tests.orders_fixtures import make_connection, make_order
from tests.tickets_fixtures import make_ticket
from tickets.models import Team, Ticket, TicketType

pytestmark = pytest.mark.browser
pytest_plugins = ["tests.orders_fixtures"]


@pytest.fixture
def shipping_playbook(cast):
    ticket_type = TicketType.objects.create(tenant=cast.tenant, name="Where is my order", slug="wismo")
    team = Team.objects.create(tenant=cast.tenant, name="Logistics", lead=cast.lead)
    reply = services.template_save(
        tenant=cast.tenant,
        actor=Actor.system(),
        name="Order on its way",
        variants={
            "en": {
                "body": "Hi {{ customer.first_name }},\n\nOrder {{ order.name }} is on its way with "
                "{{ fulfillment.carrier }}: {{ fulfillment.tracking_url }}\n\nBest,\n{{ agent.first_name }}"
            }
        },
    )
    services.playbook_save(
        tenant=cast.tenant,
        ticket_type=ticket_type,
        actor=Actor.system(),
        owner_team=team,
        checklist=[{"text": "Open the carrier tracking", "required": True}, {"text": "Offer a discount"}],
        replies=[reply.pk],
        escalation_team=team,
        escalation_due_minutes=240,
        escalation_summary="Chase {{ order.name }}",
    )
    ticket = make_ticket(cast, subject="Where is order #1042?", name="Ann Lee", ticket_type=ticket_type)
    order = make_order(make_connection(cast.tenant, None), external_id="1", number="1042", customer=ticket.customer)
    Fulfillment.objects.create(
        tenant=cast.tenant,
        order=order,
        external_id="f1",
        carrier="DHL",
        tracking_number="JD0001",
        tracking_url="https://track.example/JD0001",
    )
    Ticket.objects.filter(pk=ticket.pk).update(order=order)
    return ticket


def test_a_lead_edits_a_playbook_with_a_live_preview(page, shot, sign_in, cast, shipping_playbook):
    sign_in(page, "lead@acme.test")
    page.goto("/t/acme/playbooks/")
    expect(page.get_by_role("heading", name="Playbooks")).to_be_visible()
    shot("playbook-01-list")
    page.get_by_role("link", name="Edit").first.click()
    expect(page.get_by_role("heading", name="Where is my order playbook")).to_be_visible()
    summary = page.get_by_label("Escalation summary template")
    summary.fill(
        "Order {{ order.name }} for {{ customer.name }}: {{ fulfillment.carrier }} {{ fulfillment.tracking_number }}"
    )
    expect(page.locator("#summary-preview")).to_contain_text("Order #1042 for Ann Lee: DHL JD0001")
    # Reorder with the keyboard-friendly buttons, add a step, save a new version.
    page.locator("#checklist li").nth(1).get_by_role("button", name="Move up").click()
    page.get_by_role("button", name="+ Add step").click()
    page.locator("#checklist input:focus").fill("Confirm the delivery date")  # the first empty row
    page.get_by_label("What changed").fill("Discount first")
    shot("playbook-02-editor-preview", full_page=True)
    page.get_by_role("button", name="Save as version 2").click()
    expect(page.get_by_text("as a new version")).to_be_visible()
    version = Playbook.objects.get(tenant=cast.tenant).current_version
    assert [i["text"] for i in version.checklist] == [
        "Offer a discount",
        "Open the carrier tracking",
        "Confirm the delivery date",
    ]
    # A broken template is refused with its line.
    page.get_by_label("Escalation summary template").fill("Hi\n{{ order.secret }}")
    expect(page.locator("#summary-preview")).to_contain_text("Line 2")


def test_an_agent_ticks_the_checklist_and_inserts_an_approved_reply(page, shot, sign_in, cast, shipping_playbook):
    ticket = shipping_playbook
    sign_in(page, "agent@acme.test")
    page.goto(f"/t/acme/tickets/{ticket.number}/")
    panel = page.locator("#playbook-panel")
    expect(panel).to_contain_text("Before solving")
    panel.get_by_role("button", name="↳ Order on its way").click()
    body = page.locator("#id_body")
    expect(body).to_have_value(
        "Hi Ann,\n\nOrder #1042 is on its way with DHL: https://track.example/JD0001\n\nBest,\nAda"
    )
    panel.get_by_label("Open the carrier tracking").check()
    expect(panel).to_contain_text("1/2 done")
    expect(panel).to_contain_text("Ready to solve")
    expect(page.locator("#timeline")).to_contain_text("ticked “Open the carrier tracking”")  # no reload
    shot("playbook-03-ticket-checklist")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("Reply sent.")).to_be_visible()
