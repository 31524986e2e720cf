"""Escalations: services (business-hours due dates, validation, lifecycle), the sweep
(exactly once, also concurrently), the API, and the pages (ticket panel, team queue).

The tenant's default schedule is Mon–Fri 09:00–17:00 Europe/Berlin (UTC+1 in early March 2026).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from helpdesk.models import AuditLog
from helpdesk.services import Actor
from playbooks.services import playbook_save
from tests.concurrency import at_once
from tests.tickets_fixtures import event_kinds, make_ticket
from tickets import services
from tickets.models import (
    BusinessSchedule,
    Escalation,
    Message,
    Notification,
    Status,
    Team,
    TicketEvent,
)
from tickets.services_escalations import (
    escalation_acknowledge,
    escalation_answer,
    escalation_cancel,
    escalation_create,
    escalation_draft,
    escalation_resolve,
    escalation_sweep_tenant,
    tenants_with_due_escalations,
)
from tickets.templatetags.tickets_ui import event_line

pytest_plugins = ["tests.tickets_fixtures"]
pytestmark = pytest.mark.usefixtures("clean_cache")


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """A March 2026 Berlin wall time (UTC+1 before the 29th) as UTC."""
    return datetime(2026, 3, day, hour - 1, minute, tzinfo=UTC)


FRIDAY_16 = berlin(6, 16)
TUESDAY_20 = berlin(3, 20)


@pytest.fixture
def warehouse(cast) -> Team:
    team = Team.objects.create(tenant=cast.tenant, name="Warehouse", lead=cast.lead)
    team.members.add(cast.lead)
    return team


@pytest.fixture
def foreign_team(cast) -> Team:
    return Team.objects.create(tenant=cast.other_tenant, name="Hat makers", lead=cast.outsider)


@pytest.fixture
def playbook(cast, types, warehouse):
    """The Returns playbook escalates to the warehouse, due in 4 business hours."""
    return playbook_save(
        tenant=cast.tenant,
        ticket_type=types["returns"],
        actor=Actor.for_user(cast.lead),
        escalation_team=warehouse,
        escalation_due_minutes=240,
        escalation_summary="{{ customer.name }} wants to return: {{ ticket.subject }}",
    )


@pytest.fixture
def returns_ticket(cast, types, playbook):
    with time_machine.travel(FRIDAY_16, tick=False):
        return make_ticket(cast, subject="Socks too small", ticket_type=types["returns"], assignee=cast.agent)


@pytest.fixture
def plain_ticket(cast):
    with time_machine.travel(TUESDAY_20, tick=False):
        return make_ticket(cast, subject="Parcel damaged", assignee=cast.agent)


def escalate(ticket, user, **kwargs):
    kwargs.setdefault("summary", "Please check the parcel.")
    return escalation_create(ticket=ticket, actor=Actor.for_user(user), **kwargs)


# --- services: defaults and business-hours due dates ------------------------------------------


def test_the_draft_takes_team_due_date_and_summary_from_the_playbook_path(cast, returns_ticket, warehouse):
    draft = escalation_draft(returns_ticket, cast.agent, at=FRIDAY_16)
    assert draft.team == warehouse
    assert draft.from_playbook
    assert draft.summary == "Carla Customer wants to return: Socks too small"
    # 4 business hours from Friday 16:00: 1 h on Friday, 3 h on Monday → Monday 12:00.
    assert draft.due_at == berlin(9, 12)


def test_escalating_over_the_weekend_counts_only_the_target_teams_business_hours(cast, returns_ticket, warehouse):
    with time_machine.travel(FRIDAY_16, tick=False):
        esc = escalate(returns_ticket, cast.agent, summary=escalation_draft(returns_ticket, cast.agent).summary)
    assert esc.team == warehouse
    assert esc.status == Escalation.State.OPEN
    assert esc.due_at == berlin(9, 12)
    # Reminded an hour (of business time) before: Monday 11:00.
    assert esc.remind_at == berlin(9, 11)
    assert esc.created_by == cast.agent


def test_without_a_playbook_path_the_default_window_is_one_business_day_across_the_night(cast, plain_ticket, warehouse):
    with time_machine.travel(TUESDAY_20, tick=False):
        draft = escalation_draft(plain_ticket, cast.agent)
        assert draft.team is None and draft.due_minutes == 8 * 60
        esc = escalate(plain_ticket, cast.agent, team=warehouse)
    # Closed at 20:00 Tuesday: the 8 business hours are Wednesday 09:00–17:00.
    assert esc.due_at == berlin(4, 17)
    assert esc.remind_at == berlin(4, 16)


def test_the_due_date_follows_the_target_teams_own_schedule(cast, plain_ticket):
    new_york = BusinessSchedule.objects.create(
        tenant=cast.tenant,
        name="New York",
        timezone="America/New_York",
        intervals=[[d, 9 * 60, 17 * 60] for d in range(5)],
    )
    us_team = Team.objects.create(tenant=cast.tenant, name="US payments", schedule=new_york)
    at = berlin(4, 10)  # Wednesday 10:00 Berlin = 04:00 in New York (EST, UTC-5)
    with time_machine.travel(at, tick=False):
        esc = escalate(plain_ticket, cast.agent, team=us_team)
    # New York opens 09:00 EST = 14:00 UTC; 8 business hours later is 22:00 UTC.
    assert esc.due_at == datetime(2026, 3, 4, 22, 0, tzinfo=UTC)


def test_an_explicit_due_date_is_kept_and_reminded_a_quarter_of_the_window_ahead(cast, plain_ticket, warehouse):
    at = berlin(4, 10)
    with time_machine.travel(at, tick=False):
        esc = escalate(plain_ticket, cast.agent, team=warehouse, due_at=berlin(4, 12))
    assert esc.due_at == berlin(4, 12)
    assert esc.remind_at == berlin(4, 11, 30)


def test_creating_writes_the_timeline_audit_log_and_notifies_the_team_lead_and_owner(cast, returns_ticket, warehouse):
    with time_machine.travel(FRIDAY_16, tick=False):
        esc = escalate(returns_ticket, cast.agent, owner=cast.admin)
    assert "escalated" in event_kinds(returns_ticket)
    event = TicketEvent.objects.get(ticket=returns_ticket, kind="escalated")
    assert "escalated to <strong>Warehouse</strong>" in event_line(event)
    notified = set(Notification.objects.filter(ticket=returns_ticket, kind="escalation").values_list("user", flat=True))
    assert notified == {cast.lead.pk, cast.admin.pk}
    assert AuditLog.objects.filter(tenant=cast.tenant, action="escalation.created", target_id=str(esc.pk)).exists()


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("summary", {"summary": "   "}),
        ("due_at", {"due_at": berlin(4, 9)}),
        ("team", {"team": "foreign"}),
        ("owner", {"owner": "outsider"}),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(cast, plain_ticket, warehouse, foreign_team, field, kwargs):
    if kwargs.get("team") == "foreign":
        kwargs["team"] = foreign_team
    else:
        kwargs.setdefault("team", warehouse)
    if kwargs.get("owner") == "outsider":
        kwargs["owner"] = cast.outsider
    events_before = event_kinds(plain_ticket)
    with time_machine.travel(berlin(4, 10), tick=False), pytest.raises(ValidationError) as caught:
        escalate(plain_ticket, cast.agent, **kwargs)
    assert field in caught.value.message_dict
    assert not Escalation.objects.exists()
    assert event_kinds(plain_ticket) == events_before
    assert not Notification.objects.filter(kind="escalation").exists()


def test_without_a_path_a_team_must_be_given(cast, plain_ticket):
    with pytest.raises(ValidationError) as caught:
        escalate(plain_ticket, cast.agent)
    assert "team" in caught.value.message_dict


def test_a_closed_ticket_cannot_be_escalated(cast, plain_ticket, warehouse):
    services.ticket_set_status(ticket=plain_ticket, status=Status.CLOSED, actor=Actor.system())
    with pytest.raises(ValidationError) as caught:
        escalate(plain_ticket, cast.agent, team=warehouse)
    assert "ticket" in caught.value.message_dict
    assert not Escalation.objects.exists()


# --- services: lifecycle -----------------------------------------------------------------------


def test_acknowledge_answer_resolve_each_go_on_the_timeline_and_tell_the_right_people(cast, returns_ticket, warehouse):
    esc = escalate(returns_ticket, cast.agent)
    lead = Actor.for_user(cast.lead)
    escalation_acknowledge(escalation=esc, actor=lead)
    esc.refresh_from_db()
    assert esc.status == Escalation.State.ACKNOWLEDGED
    assert esc.owner == cast.lead  # the one who acknowledged owns it
    escalation_answer(escalation=esc, actor=lead, answer="Stock was mislabelled; send a new pair.")
    esc.refresh_from_db()
    assert esc.status == Escalation.State.ANSWERED
    note = Message.objects.filter(ticket=returns_ticket, kind=Message.Kind.NOTE).latest("id")
    assert "send a new pair" in note.body_text and note.author_user == cast.lead
    told = Notification.objects.filter(user=cast.agent, kind="escalation").values_list("text", flat=True)
    assert any("answered" in t for t in told)
    escalation_resolve(escalation=esc, actor=Actor.for_user(cast.agent))
    esc.refresh_from_db()
    assert esc.status == Escalation.State.RESOLVED and esc.resolved_at
    kinds = event_kinds(returns_ticket)
    for kind in ("escalated", "escalation_acknowledged", "note", "escalation_answered", "escalation_resolved"):
        assert kind in kinds
    lines = [event_line(e) for e in TicketEvent.objects.filter(ticket=returns_ticket, kind__startswith="escalation_")]
    assert any("answered the escalation" in line for line in lines)


def test_an_empty_answer_and_a_wrong_transition_are_refused(cast, returns_ticket):
    esc = escalate(returns_ticket, cast.agent)
    with pytest.raises(ValidationError) as caught:
        escalation_answer(escalation=esc, actor=Actor.for_user(cast.lead), answer="  ")
    assert "answer" in caught.value.message_dict
    escalation_cancel(escalation=esc, actor=Actor.for_user(cast.agent))
    with pytest.raises(ValidationError) as caught:
        escalation_acknowledge(escalation=esc, actor=Actor.for_user(cast.lead))
    assert "status" in caught.value.message_dict
    esc.refresh_from_db()
    assert esc.status == Escalation.State.CANCELLED
    # The team hears that it was withdrawn.
    assert Notification.objects.filter(user=cast.lead, text__contains="cancelled").exists()


# --- the sweep ---------------------------------------------------------------------------------


def test_the_sweep_reminds_once_then_flags_overdue_once(cast, returns_ticket, warehouse):
    with time_machine.travel(FRIDAY_16, tick=False):
        esc = escalate(returns_ticket, cast.agent)
    assert escalation_sweep_tenant(cast.tenant.pk, at=berlin(9, 10)) == {"overdue": 0, "reminders": 0}
    assert tenants_with_due_escalations(berlin(9, 11)) == [cast.tenant.pk]
    assert escalation_sweep_tenant(cast.tenant.pk, at=berlin(9, 11)) == {"overdue": 0, "reminders": 1}
    assert escalation_sweep_tenant(cast.tenant.pk, at=berlin(9, 11, 30)) == {"overdue": 0, "reminders": 0}
    reminders = Notification.objects.filter(kind="escalation_reminder")
    assert [n.user_id for n in reminders] == [cast.lead.pk]  # no owner yet: the team lead
    assert escalation_sweep_tenant(cast.tenant.pk, at=berlin(9, 12)) == {"overdue": 1, "reminders": 0}
    assert escalation_sweep_tenant(cast.tenant.pk, at=berlin(9, 13)) == {"overdue": 0, "reminders": 0}
    assert tenants_with_due_escalations(berlin(9, 13)) == []
    esc.refresh_from_db()
    assert esc.breached_at == berlin(9, 12) and esc.reminded_at == berlin(9, 11)
    assert event_kinds(returns_ticket).count("escalation_overdue") == 1
    assert Notification.objects.filter(kind="escalation_overdue", user=cast.lead).count() == 1


def test_an_escalation_already_overdue_gets_the_overdue_notice_only(cast, returns_ticket):
    with time_machine.travel(FRIDAY_16, tick=False):
        escalate(returns_ticket, cast.agent, owner=cast.admin)
    assert escalation_sweep_tenant(cast.tenant.pk, at=berlin(10, 9)) == {"overdue": 1, "reminders": 0}
    assert escalation_sweep_tenant(cast.tenant.pk, at=berlin(10, 10)) == {"overdue": 0, "reminders": 0}
    assert not Notification.objects.filter(kind="escalation_reminder").exists()


def test_answered_and_cancelled_escalations_never_fire(cast, returns_ticket):
    with time_machine.travel(FRIDAY_16, tick=False):
        answered = escalate(returns_ticket, cast.agent)
        cancelled = escalate(returns_ticket, cast.agent)
    escalation_answer(escalation=answered, actor=Actor.for_user(cast.lead), answer="Done.")
    escalation_cancel(escalation=cancelled, actor=Actor.for_user(cast.agent))
    assert escalation_sweep_tenant(cast.tenant.pk, at=berlin(20, 12)) == {"overdue": 0, "reminders": 0}


def test_the_sweep_never_touches_another_tenants_escalations(cast, returns_ticket):
    with time_machine.travel(FRIDAY_16, tick=False):
        esc = escalate(returns_ticket, cast.agent)
    assert escalation_sweep_tenant(cast.other_tenant.pk, at=berlin(20, 12)) == {"overdue": 0, "reminders": 0}
    esc.refresh_from_db()
    assert esc.breached_at is None and esc.reminded_at is None


@pytest.mark.django_db(transaction=True)
def test_two_sweepers_running_at_once_still_fire_each_escalation_once(cast, warehouse):
    with time_machine.travel(TUESDAY_20, tick=False):
        ticket = make_ticket(cast, subject="Many escalations")
        for i in range(30):
            escalate(ticket, cast.agent, team=warehouse, summary=f"Question {i}")
    at = berlin(20, 12)
    results = at_once(lambda _: escalation_sweep_tenant(cast.tenant.pk, at=at), threads=2)
    assert len(results) == 2
    assert sum(r["overdue"] for r in results) == 30
    assert TicketEvent.objects.filter(ticket=ticket, kind="escalation_overdue").count() == 30
    assert Notification.objects.filter(kind="escalation_overdue").count() == 30


def test_the_beat_task_sweeps_every_tenant_and_is_scheduled_every_minute(cast, returns_ticket):
    from tickets.tasks import escalation_sweep, escalation_sweep_tenant

    with time_machine.travel(FRIDAY_16, tick=False):
        escalate(returns_ticket, cast.agent)
    with time_machine.travel(berlin(9, 12, 1), tick=False):
        assert escalation_sweep() == {"overdue": 1, "reminders": 0}
        assert escalation_sweep() == {"overdue": 0, "reminders": 0}
    assert escalation_sweep_tenant.run(987654) is None  # a deleted tenant: nothing to do
    entry = settings.CELERY_BEAT_SCHEDULE["escalation-sweep"]
    assert entry == {"task": "tickets.escalation_sweep", "schedule": 60.0}


# --- API ---------------------------------------------------------------------------------------


def test_api_create_uses_the_playbook_path_and_answers_201(api, cast, returns_ticket, warehouse):
    with time_machine.travel(FRIDAY_16, tick=False):
        response = api.post(
            "/api/v1/escalations/", {"ticket": returns_ticket.pk, "summary": "Check stock"}, format="json"
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["team"] == {"id": warehouse.pk, "name": "Warehouse"}
    assert body["status"] == "open"
    assert body["due_at"].startswith("2026-03-09T11:00")  # Monday 12:00 Berlin
    assert body["ticket"] == returns_ticket.pk and body["ticket_number"] == returns_ticket.number
    assert body["overdue"] is False


def test_api_create_with_team_owner_and_due_date(api, cast, plain_ticket, warehouse):
    due = "2030-01-07T10:00:00Z"
    response = api.post(
        "/api/v1/escalations/",
        {"ticket": plain_ticket.pk, "summary": "Refund?", "team": warehouse.pk, "owner": cast.lead.pk, "due_at": due},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["owner"]["email"] == cast.lead.email
    assert response.json()["due_at"] == "2030-01-07T10:00:00Z"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"summary": ""}, "summary"),
        ({"summary": "   "}, "summary"),
        ({"due_at": "2020-01-01T10:00:00Z"}, "due_at"),
        ({"due_at": "tomorrow"}, "due_at"),
        ({"team": "foreign"}, "team"),
        ({"team": 999999}, "team"),
        ({"owner": "outsider"}, "owner"),
        ({"ticket": "foreign"}, "ticket"),
        ({"ticket": 999999}, "ticket"),
    ],
)
def test_api_bad_input_is_a_400_naming_the_field_and_creates_nothing(
    api, cast, plain_ticket, warehouse, foreign_team, payload, field
):
    foreign_ticket = make_ticket(cast, tenant=cast.other_tenant, subject="Hat", email="h@example.com")
    body = {"ticket": plain_ticket.pk, "summary": "Check", "team": warehouse.pk, **payload}
    body = {
        k: {"foreign": foreign_team.pk if k == "team" else foreign_ticket.pk, "outsider": cast.outsider.pk}.get(v, v)
        if isinstance(v, str) and v in ("foreign", "outsider")
        else v
        for k, v in body.items()
    }
    response = api.post("/api/v1/escalations/", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    assert not Escalation.objects.exists()


def test_api_without_a_path_or_team_is_a_400_on_team(api, plain_ticket):
    response = api.post("/api/v1/escalations/", {"ticket": plain_ticket.pk, "summary": "Help"}, format="json")
    assert response.status_code == 400
    assert "team" in response.json()["error"]["fields"]


def test_api_actions_move_the_escalation_along(api, cast, returns_ticket):
    esc = escalate(returns_ticket, cast.agent)
    url = f"/api/v1/escalations/{esc.pk}/"
    assert api.post(url + "acknowledge/").json()["status"] == "acknowledged"
    again = api.post(url + "acknowledge/")
    assert again.status_code == 400 and "status" in again.json()["error"]["fields"]
    empty = api.post(url + "answer/", {"answer": ""}, format="json")
    assert empty.status_code == 400 and "answer" in empty.json()["error"]["fields"]
    answered = api.post(url + "answer/", {"answer": "Shipped a replacement."}, format="json")
    assert answered.status_code == 200 and answered.json()["answer"] == "Shipped a replacement."
    assert api.post(url + "resolve/").json()["status"] == "resolved"
    other = escalate(returns_ticket, cast.agent)
    assert api.post(f"/api/v1/escalations/{other.pk}/cancel/").json()["status"] == "cancelled"
    assert api.get(url).json()["resolved_at"] is not None


def test_api_list_filters_by_team_status_and_ticket(api, cast, returns_ticket, plain_ticket, warehouse):
    other_team = Team.objects.create(tenant=cast.tenant, name="Finance")
    a = escalate(returns_ticket, cast.agent)
    b = escalate(plain_ticket, cast.agent, team=other_team)
    escalation_acknowledge(escalation=b, actor=Actor.for_user(cast.lead))

    def ids(query: str) -> set[int]:
        response = api.get("/api/v1/escalations/" + query)
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids("") == {a.pk, b.pk}
    assert ids(f"?team={warehouse.pk}") == {a.pk}
    assert ids("?status=acknowledged") == {b.pk}
    assert ids("?status=active") == {a.pk, b.pk}
    assert ids(f"?ticket={plain_ticket.pk}") == {b.pk}
    bad = api.get("/api/v1/escalations/?status=whatever&team=x")
    assert bad.status_code == 400 and {"status", "team"} <= set(bad.json()["error"]["fields"])


def test_api_list_query_count_does_not_grow_with_rows(api, cast, plain_ticket, warehouse):
    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.get("/api/v1/escalations/").status_code == 200
        return len(ctx.captured_queries)

    escalate(plain_ticket, cast.agent, team=warehouse, owner=cast.lead)
    count()  # the token's first use of the minute also stamps last_used_at
    few = count()
    for _ in range(8):
        escalate(plain_ticket, cast.agent, team=warehouse, owner=cast.lead)
    assert count() == few <= 3


def test_api_outsider_gets_404_for_tenant_a_escalations(outsider_api, api, cast, returns_ticket):
    esc = escalate(returns_ticket, cast.agent)
    url = f"/api/v1/escalations/{esc.pk}/"
    assert outsider_api.get(url).status_code == 404
    for action in ("acknowledge", "answer", "resolve", "cancel"):
        response = outsider_api.post(url + action + "/", {"answer": "x"}, format="json")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert outsider_api.get("/api/v1/escalations/").json()["results"] == []
    esc.refresh_from_db()
    assert esc.status == Escalation.State.OPEN


# --- pages ------------------------------------------------------------------------------------

HTMX = {"HTTP_HX_REQUEST": "true"}


def test_the_ticket_page_loads_the_escalations_panel_lazily(agent_client, cast, returns_ticket):
    page = agent_client.get(f"/t/acme/tickets/{returns_ticket.number}/")
    assert page.status_code == 200
    panel_url = reverse("ticket_escalations", args=["acme", returns_ticket.number])
    assert f'hx-get="{panel_url}"'.encode() in page.content
    escalate(returns_ticket, cast.agent)
    panel = agent_client.get(panel_url, **HTMX)
    assert panel.status_code == 200
    assert b"Warehouse" in panel.content and b"Open" in panel.content
    assert b"<html" not in panel.content
    full = agent_client.get(panel_url)
    assert full.status_code == 200 and b"<html" in full.content


def test_the_escalate_form_is_prefilled_from_the_playbook_in_the_tenant_time_zone(agent_client, returns_ticket):
    with time_machine.travel(FRIDAY_16, tick=False):
        response = agent_client.get(reverse("ticket_escalate", args=["acme", returns_ticket.number]), **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Carla Customer wants to return: Socks too small" in html
    assert 'value="2026-03-09T12:00"' in html  # Monday 12:00 Berlin, as the agent reads it
    assert "selected>Warehouse" in html


def test_choosing_another_team_recomputes_the_due_date_and_keeps_the_summary(
    agent_client, cast, plain_ticket, warehouse
):
    new_york = BusinessSchedule.objects.create(
        tenant=cast.tenant, name="NY", timezone="America/New_York", intervals=[[d, 540, 1020] for d in range(5)]
    )
    us = Team.objects.create(tenant=cast.tenant, name="US", schedule=new_york)
    url = reverse("ticket_escalate", args=["acme", plain_ticket.number])
    with time_machine.travel(berlin(4, 10), tick=False):
        response = agent_client.get(url, {"team": us.pk, "summary": "My words"}, **HTMX)
    html = response.content.decode()
    assert "My words" in html
    assert 'value="2026-03-04T23:00"' in html  # 22:00 UTC shown in Berlin time


def test_posting_the_form_escalates_and_shows_the_panel(agent_client, cast, plain_ticket, warehouse):
    url = reverse("ticket_escalate", args=["acme", plain_ticket.number])
    response = agent_client.post(
        url,
        {"team": warehouse.pk, "owner": cast.lead.pk, "due_at": "2030-01-07T10:00", "summary": "Check the parcel"},
        **HTMX,
    )
    assert response.status_code == 200
    assert b"Escalated to Warehouse" in response.content
    esc = Escalation.objects.get()
    assert esc.owner == cast.lead and esc.summary == "Check the parcel"
    assert esc.due_at == datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # entered in Berlin time


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"summary": ""}, b"Write a summary"),
        ({"due_at": "2020-01-07T10:00"}, b"The due date is in the past."),
        ({"due_at": "not a date"}, b"Enter a valid date/time."),
        ({"team": "0"}, b"Choose the team to escalate to."),
    ],
)
def test_a_bad_form_shows_the_error_and_changes_nothing(agent_client, cast, plain_ticket, warehouse, data, error):
    url = reverse("ticket_escalate", args=["acme", plain_ticket.number])
    post = {"team": warehouse.pk, "due_at": "2030-01-07T10:00", "summary": "Check", **data}
    htmx = agent_client.post(url, post, **HTMX)
    assert htmx.status_code == 200 and error in htmx.content
    plain = agent_client.post(url, post)
    assert plain.status_code == 400 and error in plain.content
    assert not Escalation.objects.exists()


def test_the_queue_lists_overdue_first_with_counts_and_acts_by_htmx(
    agent_client, lead_client, cast, plain_ticket, warehouse
):
    with time_machine.travel(berlin(4, 10), tick=False):
        later = escalate(plain_ticket, cast.agent, team=warehouse, due_at=berlin(4, 16), summary="Later one")
        soon = escalate(plain_ticket, cast.agent, team=warehouse, due_at=berlin(4, 11), summary="Soon one")
    with time_machine.travel(berlin(4, 12), tick=False):
        page = lead_client.get(reverse("escalations", args=["acme"]), {"team": warehouse.pk})
        html = page.content.decode()
        assert page.status_code == 200
        assert html.index("Soon one") < html.index("Later one")
        assert f'id="erow-{soon.pk}"' in html and "overdue" in html.split(f'id="erow-{soon.pk}"')[0][-80:]
        assert 'class="count hot"' in html
        ack = lead_client.post(reverse("escalation_acknowledge", args=["acme", soon.pk]), {"from": "queue"}, **HTMX)
        assert ack.status_code == 200 and b"Acknowledged." in ack.content and b"<html" not in ack.content
        answer = lead_client.post(
            reverse("escalation_answer", args=["acme", soon.pk]), {"from": "queue", "answer": "Found it"}, **HTMX
        )
        assert b"Answer sent" in answer.content
        empty = lead_client.post(reverse("escalation_answer", args=["acme", later.pk]), {"answer": ""}, **HTMX)
        assert empty.status_code == 200 and b"Write the answer." in empty.content
        resolved = lead_client.post(reverse("escalation_resolve", args=["acme", soon.pk]), {"from": "ticket"}, **HTMX)
        assert b"Escalation resolved." in resolved.content
        mine = lead_client.get(reverse("escalations", args=["acme"]), {"team": "mine", "status": "done"})
        assert "Soon one" in mine.content.decode()
    soon.refresh_from_db()
    assert soon.status == Escalation.State.RESOLVED and soon.owner == cast.lead
    later.refresh_from_db()
    assert later.status == Escalation.State.OPEN


def test_without_htmx_an_action_redirects_back_with_a_message(agent_client, cast, plain_ticket, warehouse):
    esc = escalate(plain_ticket, cast.agent, team=warehouse)
    response = agent_client.post(reverse("escalation_cancel", args=["acme", esc.pk]), {"next": "https://evil.test/"})
    assert response.status_code == 302 and response["Location"] == reverse("escalations", args=["acme"])
    again = agent_client.post(reverse("escalation_cancel", args=["acme", esc.pk]), follow=True)
    assert "it can’t be cancelled" in again.content.decode()


def test_the_queue_page_query_count_is_flat(agent_client, cast, plain_ticket, warehouse):
    url = reverse("escalations", args=["acme"])

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert agent_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    escalate(plain_ticket, cast.agent, team=warehouse, owner=cast.lead)
    count()  # warm the per-tenant caches the page shell reads
    few = count()
    other = make_ticket(cast, subject="Another", email="zed@example.com")
    for _ in range(8):
        escalate(other, cast.agent, team=warehouse, owner=cast.admin)
    assert count() == few


def test_the_sidebar_links_to_the_escalations_queue(agent_client):
    page = agent_client.get(reverse("escalations", args=["acme"]))
    assert b'data-nav="escalations"' in page.content
    assert b'aria-current="page" data-nav="escalations"' in page.content


def test_the_outsider_gets_404_on_every_escalation_page(outsider_client, cast, returns_ticket):
    esc = escalate(returns_ticket, cast.agent)
    n = returns_ticket.number
    for url in (
        reverse("escalations", args=["acme"]),
        reverse("ticket_escalations", args=["acme", n]),
        reverse("ticket_escalate", args=["acme", n]),
        reverse("reports_csat", args=["acme"]),
    ):
        assert outsider_client.get(url).status_code == 404, url
    for name in ("escalation_acknowledge", "escalation_answer", "escalation_resolve", "escalation_cancel"):
        assert outsider_client.post(reverse(name, args=["acme", esc.pk]), {"answer": "x"}).status_code == 404
    assert outsider_client.post(reverse("ticket_escalate", args=["acme", n]), {"summary": "x"}).status_code == 404
    esc.refresh_from_db()
    assert esc.status == Escalation.State.OPEN
    assert Escalation.objects.count() == 1


def test_another_tenants_escalation_id_is_404_inside_my_workspace(outsider_client, cast, returns_ticket):
    esc = escalate(returns_ticket, cast.agent)
    # The outsider, in their own workspace, names tenant A's escalation id: not found.
    response = outsider_client.post(reverse("escalation_acknowledge", args=["globex", esc.pk]))
    assert response.status_code == 404
