"""Escalations in a real browser: an agent escalates from the ticket page, the team lead
acknowledges and answers in the team queue, the agent sees the answer on the ticket."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from playwright.sync_api import expect

from helpdesk.services import Actor
from playbooks.services import playbook_save
from tests.tickets_fixtures import make_ticket
from tickets.models import Escalation, Team, TicketType

pytestmark = pytest.mark.browser


@pytest.fixture
def returns_path(cast):
    cache.clear()
    ticket_type = TicketType.objects.create(tenant=cast.tenant, name="Returns", slug="returns")
    warehouse = Team.objects.create(tenant=cast.tenant, name="Warehouse", lead=cast.lead)
    Team.objects.create(tenant=cast.tenant, name="Payments")
    playbook_save(
        tenant=cast.tenant,
        ticket_type=ticket_type,
        actor=Actor.system(),
        escalation_team=warehouse,
        escalation_due_minutes=240,
        escalation_summary="{{ customer.name }} wants to return “{{ ticket.subject }}”. Please check the stock.",
    )
    cache.clear()
    return ticket_type


def test_an_agent_escalates_from_the_ticket_and_the_lead_acknowledges_in_the_team_queue(
    page, shot, sign_in, cast, returns_path
):
    ticket = make_ticket(cast, subject="Socks too small", ticket_type=returns_path, assignee=cast.agent)

    sign_in(page, "agent@acme.test")
    page.goto(f"/t/acme/tickets/{ticket.number}/")
    card = page.locator("#escalations-card")
    expect(card).to_contain_text("Not escalated")
    card.get_by_role("link", name="Escalate").click()
    form = card.locator("#escalate-form")
    expect(form.get_by_label("Escalate to team")).to_have_value(str(Team.objects.get(name="Warehouse").pk))
    expect(form.get_by_label("Summary for the team")).to_have_value(
        "Carla Customer wants to return “Socks too small”. Please check the stock."
    )
    due = form.get_by_label("Due").input_value()
    assert due, "the due date is computed and shown"
    form.get_by_label("Owner").select_option(label="Lee Lead")
    shot("escalation-01-form", full_page=True)
    form.get_by_role("button", name="Escalate").click()
    expect(card).to_contain_text("Escalated to Warehouse.")
    expect(card).to_contain_text("Open")
    expect(card).to_contain_text("Lee Lead")
    shot("escalation-02-ticket-panel", full_page=True)
    esc = Escalation.objects.get()
    assert esc.created_by == cast.agent and esc.owner == cast.lead

    page.context.clear_cookies()
    sign_in(page, "lead@acme.test")
    page.goto("/t/acme/escalations/")
    expect(page.locator("nav.nav [data-nav=escalations]")).to_have_attribute("aria-current", "page")
    row = page.locator(f"#erow-{esc.pk}")
    expect(row).to_contain_text("Socks too small")
    expect(page.locator(".views")).to_contain_text("Warehouse")
    shot("escalation-03-queue")
    row.get_by_role("button", name="Acknowledge").click()
    row = page.locator(f"#erow-{esc.pk}")
    expect(row).to_contain_text("Acknowledged.")
    row.get_by_text("Answer…").click()
    row.get_by_label(f"Answer to #{ticket.number}").fill("Stock was mislabelled: send size L.")
    row.get_by_role("button", name="Send answer").click()
    expect(page.locator(f"#erow-{esc.pk}")).to_contain_text("Answer sent")
    shot("escalation-04-queue-answered")
    esc.refresh_from_db()
    assert esc.status == Escalation.State.ANSWERED

    page.context.clear_cookies()
    sign_in(page, "agent@acme.test")
    page.goto(f"/t/acme/tickets/{ticket.number}/")
    expect(page.locator(".thread")).to_contain_text("send size L")
    card = page.locator("#escalations-card")
    expect(card).to_contain_text("Answered")
    card.get_by_role("button", name="Resolve").click()
    expect(card).to_contain_text("Escalation resolved.")
    shot("escalation-05-resolved", full_page=True)
    esc.refresh_from_db()
    assert esc.status == Escalation.State.RESOLVED
