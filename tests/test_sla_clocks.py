"""SLA clock semantics through the services, with frozen time.

The tenant's default schedule is Mon–Fri 09:00–17:00 Europe/Berlin; the Standard policy's
normal-priority targets are 8 business hours (first/next response) and 40 (resolution).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from helpdesk.services import Actor
from tests.concurrency import at_once
from tickets import services
from tickets.models import (
    NO_DUE,
    Notification,
    SlaClock,
    SlaMetric,
    SlaPolicy,
    SlaTarget,
    Status,
    Team,
    Ticket,
    TicketEvent,
    Tier,
)

# Monday 2026-03-02 10:00 Berlin (09:00 UTC): inside business hours.
MONDAY_10 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """A March 2026 Berlin wall time (UTC+1 before the 29th) as UTC."""
    return datetime(2026, 3, day, hour - 1, minute, tzinfo=UTC)


def clocks(ticket: Ticket) -> dict[str, SlaClock]:
    return {c.metric: c for c in SlaClock.objects.filter(ticket=ticket)}


@pytest.fixture
def customer(cast):
    return services.customer_get_or_create(tenant=cast.tenant, email="dana@example.org", name="Dana Ruiz")


@pytest.fixture
def ticket(cast, customer):
    with time_machine.travel(MONDAY_10, tick=False):
        return services.ticket_create(
            tenant=cast.tenant,
            subject="Where is my order?",
            body="It is late.",
            customer=customer,
            actor=Actor.system(),
        )


def test_a_new_ticket_gets_first_response_and_resolution_clocks_due_in_business_hours(ticket):
    c = clocks(ticket)
    assert set(c) == {SlaMetric.FIRST_RESPONSE, SlaMetric.RESOLUTION}
    # 8 business hours from Monday 10:00 is Monday 18:00 → closes at 17:00, so Tuesday 10:00.
    assert c[SlaMetric.FIRST_RESPONSE].due_at == berlin(3, 10)
    # 40 business hours = five working days: the next Monday 10:00.
    assert c[SlaMetric.RESOLUTION].due_at == berlin(9, 10)
    ticket.refresh_from_db()
    assert ticket.sla_due_at == berlin(3, 10)


def test_an_internal_note_does_not_fulfil_the_first_response(cast, ticket):
    with time_machine.travel(berlin(2, 11), tick=False):
        services.ticket_add_note(ticket=ticket, actor=Actor.for_user(cast.agent), body="Checking with the warehouse")
    assert clocks(ticket)[SlaMetric.FIRST_RESPONSE].status == SlaClock.State.ACTIVE


def test_the_first_public_agent_reply_fulfils_the_first_response_and_opens_the_ticket(cast, ticket):
    with time_machine.travel(berlin(2, 11), tick=False):
        services.ticket_reply(ticket=ticket, actor=Actor.for_user(cast.agent), body="It ships today.")
    clock = clocks(ticket)[SlaMetric.FIRST_RESPONSE]
    assert clock.status == SlaClock.State.FULFILLED
    assert clock.elapsed_seconds == 3600
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN
    assert ticket.first_response_at == berlin(2, 11)


def test_next_response_restarts_on_each_customer_message_after_an_agent_reply(cast, ticket):
    agent = Actor.for_user(cast.agent)
    with time_machine.travel(berlin(2, 11), tick=False):
        services.ticket_reply(ticket=ticket, actor=agent, body="It ships today.")
    assert SlaMetric.NEXT_RESPONSE not in clocks(ticket)
    with time_machine.travel(berlin(2, 16), tick=False):
        services.ticket_customer_message(ticket=ticket, body="Still nothing?")
    nxt = clocks(ticket)[SlaMetric.NEXT_RESPONSE]
    assert nxt.status == SlaClock.State.ACTIVE
    # 8 business hours from Monday 16:00: 1 h Monday + 7 h Tuesday → Tuesday 16:00.
    assert nxt.due_at == berlin(3, 16)
    with time_machine.travel(berlin(3, 9, 30), tick=False):
        services.ticket_reply(ticket=ticket, actor=agent, body="Tracking is live now.")
    assert clocks(ticket)[SlaMetric.NEXT_RESPONSE].status == SlaClock.State.FULFILLED
    with time_machine.travel(berlin(4, 9), tick=False):
        services.ticket_customer_message(ticket=ticket, body="Thanks! One more question.")
    restarted = clocks(ticket)[SlaMetric.NEXT_RESPONSE]
    assert restarted.status == SlaClock.State.ACTIVE
    assert restarted.due_at == berlin(4, 17)


def test_pending_pauses_resolution_and_resuming_moves_the_due_time_by_the_paused_business_time(cast, ticket):
    agent = Actor.for_user(cast.agent)
    before = clocks(ticket)[SlaMetric.RESOLUTION].due_at
    with time_machine.travel(berlin(2, 12), tick=False):
        services.ticket_reply(ticket=ticket, actor=agent, body="Can you send a photo?", status=Status.PENDING)
    paused = clocks(ticket)[SlaMetric.RESOLUTION]
    assert paused.status == SlaClock.State.PAUSED
    assert paused.due_at is None
    assert paused.elapsed_seconds == 2 * 3600
    ticket.refresh_from_db()
    assert ticket.sla_due_at == NO_DUE  # nothing runs while we wait on the customer
    # The customer answers Tuesday 12:00: 8 business hours later (Mon 12–17, Tue 9–12).
    with time_machine.travel(berlin(3, 12), tick=False):
        services.ticket_customer_message(ticket=ticket, body="Here it is.")
    resumed = clocks(ticket)[SlaMetric.RESOLUTION]
    assert resumed.status == SlaClock.State.ACTIVE
    assert resumed.due_at == before + timedelta(days=1)  # moved by exactly 8 business hours = one working day
    assert resumed.pauses[0]["reason"] == Status.PENDING
    assert resumed.pauses[0]["resumed_at"] is not None
    ticket.refresh_from_db()
    assert ticket.status == Status.OPEN


def test_solving_fulfils_and_reopening_reactivates_resolution_with_time_already_used(cast, ticket):
    agent = Actor.for_user(cast.agent)
    with time_machine.travel(berlin(2, 14), tick=False):
        services.ticket_reply(ticket=ticket, actor=agent, body="Refunded.", status=Status.SOLVED)
    solved = clocks(ticket)[SlaMetric.RESOLUTION]
    assert solved.status == SlaClock.State.FULFILLED
    assert solved.elapsed_seconds == 4 * 3600
    with time_machine.travel(berlin(5, 9), tick=False):
        services.ticket_customer_message(ticket=ticket, body="The refund never arrived.")
    reopened = clocks(ticket)[SlaMetric.RESOLUTION]
    assert reopened.status == SlaClock.State.ACTIVE
    # 36 business hours left from Thursday 09:00: Thu 8 + Fri 8 + Mon 8 + Tue 8 + Wed 4 → Wednesday 13:00.
    assert reopened.due_at == berlin(11, 13)
    assert TicketEvent.objects.filter(ticket=ticket, kind="sla_reactivated").count() == 1


def test_on_hold_pauses_resolution_only_when_the_policy_says_so(cast, ticket):
    agent = Actor.for_user(cast.agent)
    with time_machine.travel(berlin(2, 11), tick=False):
        services.ticket_set_status(ticket=ticket, status=Status.ON_HOLD, actor=agent)
    assert clocks(ticket)[SlaMetric.RESOLUTION].status == SlaClock.State.ACTIVE
    SlaPolicy.objects.filter(tenant=cast.tenant).update(pause_on_hold=True)
    services.sla_policies_changed(cast.tenant)
    with time_machine.travel(berlin(2, 12), tick=False):
        services.ticket_set_status(ticket=ticket, status=Status.OPEN, actor=agent)
        services.ticket_set_status(ticket=ticket, status=Status.ON_HOLD, actor=agent)
    assert clocks(ticket)[SlaMetric.RESOLUTION].status == SlaClock.State.PAUSED


def test_raising_priority_retargets_running_clocks_and_keeps_time_used(cast, ticket):
    with time_machine.travel(berlin(2, 11), tick=False):
        services.ticket_update(ticket=ticket, actor=Actor.for_user(cast.lead), priority="urgent")
    first = clocks(ticket)[SlaMetric.FIRST_RESPONSE]
    # Urgent first response is 1 business hour; one hour was already used → due now.
    assert first.due_at == berlin(2, 11)
    assert first.target_seconds == 3600


def test_a_more_specific_policy_wins_and_the_timeline_says_why(cast, ticket):
    vip = SlaPolicy.objects.create(tenant=cast.tenant, name="VIP", position=1, conditions={"tiers": [Tier.VIP]})
    SlaTarget.objects.create(tenant=cast.tenant, policy=vip, metric="first_response", priority="normal", minutes=60)
    services.sla_policies_changed(cast.tenant)
    with time_machine.travel(berlin(2, 10, 30), tick=False):
        services.customer_update(customer=ticket.customer, actor=Actor.for_user(cast.lead), tier=Tier.VIP)
    ticket.refresh_from_db()
    assert ticket.sla_policy_id == vip.pk
    event = TicketEvent.objects.filter(ticket=ticket, kind="sla_policy").order_by("-id").first()
    assert event.data["policy"] == "VIP"
    assert "customer tier is vip" in event.data["reason"]
    assert clocks(ticket)[SlaMetric.FIRST_RESPONSE].due_at == berlin(2, 11)


def test_an_invalid_status_transition_is_refused_and_changes_nothing(cast, ticket):
    agent = Actor.for_user(cast.agent)
    services.ticket_set_status(ticket=ticket, status=Status.CLOSED, actor=agent)
    events = TicketEvent.objects.filter(ticket=ticket).count()
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as err:
        services.ticket_set_status(ticket=ticket, status=Status.OPEN, actor=agent)
    assert "status" in err.value.message_dict
    ticket.refresh_from_db()
    assert ticket.status == Status.CLOSED
    assert TicketEvent.objects.filter(ticket=ticket).count() == events


# --- The sweep ---------------------------------------------------------------------------


def test_the_sweep_fires_a_warning_and_a_breach_exactly_once_and_notifies_the_assignee(cast, ticket):
    services.ticket_assign(ticket=ticket, assignee=cast.agent, actor=Actor.for_user(cast.lead))
    first = clocks(ticket)[SlaMetric.FIRST_RESPONSE]
    # Warn a quarter of the target ahead (at most an hour) in business time: due Tue 10:00 → Mon 17:00.
    assert first.warn_at == berlin(2, 17)
    fired = services.sla_sweep_tenant(cast.tenant.pk, at=first.warn_at + timedelta(seconds=1))
    assert fired == {"breaches": 0, "warnings": 1}
    assert services.sla_sweep_tenant(cast.tenant.pk, at=first.warn_at + timedelta(seconds=2)) == {
        "breaches": 0,
        "warnings": 0,
    }
    fired = services.sla_sweep_tenant(cast.tenant.pk, at=first.due_at)
    assert fired["breaches"] == 1
    assert services.sla_sweep_tenant(cast.tenant.pk, at=first.due_at + timedelta(minutes=5))["breaches"] == 0
    assert clocks(ticket)[SlaMetric.FIRST_RESPONSE].status == SlaClock.State.BREACHED
    assert TicketEvent.objects.filter(ticket=ticket, kind="sla_breached").count() == 1
    assert TicketEvent.objects.filter(ticket=ticket, kind="sla_warning").count() == 1
    notes = Notification.objects.filter(tenant=cast.tenant, ticket=ticket)
    assert {n.user_id for n in notes} == {cast.agent.pk}
    assert sorted(n.kind for n in notes) == ["sla_breach", "sla_warning"]


def test_an_unassigned_breach_notifies_the_teams_lead(cast, ticket):
    team = Team.objects.create(tenant=cast.tenant, name="Tier 1", lead=cast.lead)
    services.ticket_assign(ticket=ticket, assignee=None, team=team, actor=Actor.system())
    due = clocks(ticket)[SlaMetric.FIRST_RESPONSE].due_at
    services.sla_sweep_tenant(cast.tenant.pk, at=due)
    assert set(Notification.objects.filter(ticket=ticket, kind="sla_breach").values_list("user_id", flat=True)) == {
        cast.lead.pk
    }


def test_a_breached_clock_is_still_fulfilled_by_the_late_reply_and_remembers_the_breach(cast, ticket):
    due = clocks(ticket)[SlaMetric.FIRST_RESPONSE].due_at
    services.sla_sweep_tenant(cast.tenant.pk, at=due)
    with time_machine.travel(due + timedelta(hours=1), tick=False):
        services.ticket_reply(ticket=ticket, actor=Actor.for_user(cast.agent), body="Sorry for the wait.")
    clock = clocks(ticket)[SlaMetric.FIRST_RESPONSE]
    assert clock.status == SlaClock.State.FULFILLED
    assert clock.breached_at == due


def test_the_sweep_never_touches_another_tenants_clocks(cast, ticket):
    due = clocks(ticket)[SlaMetric.FIRST_RESPONSE].due_at
    assert services.sla_sweep_tenant(cast.other_tenant.pk, at=due + timedelta(days=30)) == {
        "breaches": 0,
        "warnings": 0,
    }
    assert clocks(ticket)[SlaMetric.FIRST_RESPONSE].status == SlaClock.State.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_running_at_once_still_fire_each_breach_once(cast, customer):
    with time_machine.travel(MONDAY_10, tick=False):
        tickets = [
            services.ticket_create(
                tenant=cast.tenant,
                subject=f"Order {i}",
                body="Late",
                customer=customer,
                actor=Actor.system(),
            )
            for i in range(40)
        ]
    at = MONDAY_10 + timedelta(days=30)
    results = at_once(lambda _: services.sla_sweep_tenant(cast.tenant.pk, at=at), threads=2)
    assert len(results) == 2
    # 40 tickets × (first response + resolution) clocks, each breached exactly once.
    assert sum(r["breaches"] for r in results) == 80
    assert TicketEvent.objects.filter(ticket__in=tickets, kind="sla_breached").count() == 80
    assert SlaClock.objects.filter(ticket__in=tickets, status=SlaClock.State.BREACHED).count() == 80


def test_the_beat_task_sweeps_every_tenant(cast, ticket):
    from tickets.tasks import sla_sweep

    due = clocks(ticket)[SlaMetric.FIRST_RESPONSE].due_at
    with time_machine.travel(due + timedelta(minutes=1), tick=False):
        totals = sla_sweep()
    assert totals["breaches"] == 1
