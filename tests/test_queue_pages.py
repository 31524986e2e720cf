"""The agent pages: the SLA-ordered queue and its bulk actions, the ticket page (thread,
SLA clocks, customer, timeline, reply with the collision guard, sidebar controls,
follow-ups), new tickets on a customer's behalf, customers and notifications — and the
outsider's 404 on every one of them."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from helpdesk.services import Actor
from tests.tickets_fixtures import (
    MONDAY_10_BERLIN,
    clock_status,
    drop_sla_targets,
    event_kinds,
    fresh,
    make_ticket,
    snapshot,
)
from tickets import selectors, services
from tickets.models import Customer, Message, Notification, Status, Ticket, TicketEvent

pytest_plugins = ["tests.tickets_fixtures"]

A = "/t/acme"


def page(client: Client, path: str, **extra):
    response = client.get(f"{A}{path}", **extra)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def row_ids(text: str) -> list[int]:
    """Ticket ids of the queue rows, top to bottom."""
    return [int(i) for i in re.findall(r'<tr class="qrow"[^>]*data-id="(\d+)"', text)]


def view_counts(text: str) -> dict[str, int]:
    return {
        html.unescape(label): int(n)
        for label, n in re.findall(
            r'<span(?: class="truncate")?>([^<]+)</span><span class="count[^"]*">(\d+)</span>', text
        )
    }


def flashes(response) -> str:
    return " ".join(str(m) for m in response.context["messages"]) if response.context else ""


def thread_classes(text: str) -> dict[int, str]:
    return {int(pk): cls for cls, pk in re.findall(r'<li class="msg ([a-z ]+)" id="m(\d+)">', text)}


# --- The queue ---------------------------------------------------------------------------------


@pytest.fixture
def queue_tickets(cast, types, frozen):
    """Open tickets whose SLA due times are known (Standard policy, Mon–Fri 9–17 Berlin)."""
    t = {}
    # Friday 16:30 Berlin, urgent (60 business minutes): due Monday 09:30 — already late.
    frozen.move_to(datetime(2026, 2, 27, 15, 30, tzinfo=UTC), tick=False)
    t["breached"] = make_ticket(cast, subject="Late one", priority="urgent", email="late@example.com")
    frozen.move_to(MONDAY_10_BERLIN, tick=False)
    t["urgent"] = make_ticket(cast, subject="Urgent", priority="urgent", assignee=cast.agent)  # due 11:00
    t["high"] = make_ticket(cast, subject="High", priority="high", ticket_type=types["returns"])  # due 14:00
    t["normal"] = make_ticket(cast, subject="Normal", assignee=cast.agent, ticket_type=types["returns"])  # Tue 10:00
    t["leads"] = make_ticket(cast, subject="Lead's", assignee=cast.lead)  # Tue 10:00, later id
    drop_sla_targets(cast.tenant, "low")
    t["no_clock"] = make_ticket(cast, subject="No clock", priority="low")
    t["pending"] = make_ticket(cast, subject="Waiting")
    services.ticket_set_status(ticket=t["pending"], status=Status.PENDING, actor=Actor.system())
    t["solved"] = make_ticket(cast, subject="Done")
    services.ticket_set_status(ticket=t["solved"], status=Status.SOLVED, actor=Actor.system())
    t["theirs"] = make_ticket(cast, tenant=cast.other_tenant, subject="Globex")
    services.sla_sweep_tenant(cast.tenant.pk)  # the late clock is now recorded as breached
    selectors.invalidate_queue_counts(cast.tenant.pk)
    return t


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        ("mine", ["urgent", "normal"]),
        ("unassigned", ["breached", "high", "no_clock"]),
        ("all", ["breached", "urgent", "high", "normal", "leads", "no_clock"]),
        ("breaching", ["breached", "urgent"]),
        ("pending", ["pending"]),
        ("type:returns", ["high", "normal"]),
        ("type:shipping", []),
    ],
)
def test_each_queue_view_shows_its_tickets_breached_first_then_soonest_due(agent_client, queue_tickets, view, expected):
    text = page(agent_client, f"/queue/?view={view}")
    assert row_ids(text) == [queue_tickets[k].pk for k in expected]


def test_the_queue_opens_on_my_tickets(agent_client, lead_client, queue_tickets):
    assert row_ids(page(agent_client, "/queue/")) == [queue_tickets[k].pk for k in ("urgent", "normal")]
    assert row_ids(page(lead_client, "/queue/")) == [queue_tickets["leads"].pk]


def test_an_unknown_view_falls_back_to_all_open(agent_client, queue_tickets):
    assert len(row_ids(page(agent_client, "/queue/?view=type:hats"))) == 6
    assert len(row_ids(page(agent_client, "/queue/?view=nonsense"))) == 6


def test_rows_carry_the_sla_level_and_the_empty_view_says_so(agent_client, queue_tickets):
    text = page(agent_client, "/queue/?view=all")
    rows = dict(re.findall(r'data-id="(\d+)">(.*?)</tr>', text, re.S))
    assert "badge sla danger" in rows[str(queue_tickets["breached"].pk)]
    assert "late" in rows[str(queue_tickets["breached"].pk)]
    assert "badge sla warn" in rows[str(queue_tickets["urgent"].pk)]
    assert "badge sla ok" in rows[str(queue_tickets["normal"].pk)]
    assert "sla-none" in rows[str(queue_tickets["no_clock"].pk)]
    assert "Nothing here" in page(agent_client, "/queue/?view=type:shipping")


def test_the_view_counts_match_the_views(agent_client, queue_tickets):
    counts = view_counts(page(agent_client, "/queue/?view=all"))
    assert counts == {
        "My open": 2,
        "Unassigned": 3,
        "All open": 6,
        "Breaching soon": 2,
        "Waiting on customer": 1,
        "Returns": 2,
        "Shipping": 0,
    }


def test_the_htmx_rows_partial_returns_only_the_rows(agent_client, queue_tickets):
    text = page(agent_client, "/queue/?view=unassigned&partial=rows", HTTP_HX_REQUEST="true")

    assert text.strip().startswith('<tbody id="queue-rows"')
    assert text.strip().endswith("</tbody>")
    assert "<html" not in text
    assert 'class="views"' not in text
    assert row_ids(text) == [queue_tickets[k].pk for k in ("breached", "high", "no_clock")]


def test_without_the_htmx_header_the_partial_parameter_gets_the_whole_page(agent_client, queue_tickets):
    assert "<html" in page(agent_client, "/queue/?view=all&partial=rows")


@pytest.fixture
def many(cast, frozen):
    """55 open tickets: two urgent ones, then 53 with the same due time (ties broken by id)."""
    made = [make_ticket(cast, subject=f"Urgent {i}", priority="urgent").pk for i in range(2)]
    made += [make_ticket(cast, subject=f"Normal {i}", email=f"c{i}@example.com").pk for i in range(53)]
    return made


def test_keyset_paging_gives_the_next_page_without_duplicates(agent_client, many):
    first = page(agent_client, "/queue/?view=all")
    cursor = re.search(r'href="\?view=all&(?:amp;)?after=([^"]+)"', first).group(1)
    second = page(agent_client, f"/queue/?view=all&after={cursor}")

    assert len(row_ids(first)) == 50
    assert row_ids(first) + row_ids(second) == many
    assert "after=" not in second.split('class="pager"')[1]  # no third page
    assert "First page" in second


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "%25%25%25",
        "w6k",  # "é" once decoded
        "MjAyNi0wMy0wMnw1",  # "2026-03-02|5": a date without a time zone
        "bm90LWEtZGF0ZXw1",  # "not-a-date|5"
        "MjAyNi0wMy0wMlQwOTowMDowMCswMDowMHx4",  # "...|x"
        "MjAyNi0wMy0wMlQwOTowMDowMCswMDowMHw5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ",  # an id beyond bigint
    ],
)
def test_a_malformed_cursor_gives_page_one_not_an_error(agent_client, many, cursor):
    assert row_ids(page(agent_client, f"/queue/?view=all&after={cursor}"))[:3] == many[:3]


@pytest.mark.parametrize("size", [10, 60])
def test_the_queue_page_query_count_is_flat(agent_client, cast, types, size, django_assert_max_num_queries):
    for i in range(size):
        make_ticket(
            cast,
            email=f"c{i % 9}@example.com",
            assignee=cast.agent if i % 2 else None,
            ticket_type=types["returns"] if i % 3 else None,
        )
    page(agent_client, "/queue/?view=all")  # warm the session
    selectors.invalidate_queue_counts(cast.tenant.pk)

    with django_assert_max_num_queries(8):
        text = page(agent_client, "/queue/?view=all")

    assert len(row_ids(text)) == min(size, 50)


# --- Bulk actions --------------------------------------------------------------------------------


def bulk(client, tickets, action, value, **extra):
    data = {"ids": [t.pk for t in tickets], "action": action, "value": value, **extra}
    return client.post(f"{A}/queue/bulk/", data, follow=True)


def test_bulk_assign_assigns_every_selected_ticket_and_records_it(agent_client, cast, queue_tickets):
    chosen = [queue_tickets["breached"], queue_tickets["high"]]
    response = bulk(agent_client, chosen, "assign", str(cast.lead.pk))

    assert "Updated 2 tickets." in flashes(response)
    for ticket in chosen:
        assert fresh(ticket).assignee == cast.lead
        assert TicketEvent.objects.filter(ticket=ticket, kind="assigned", actor_user=cast.agent).exists()
    assert fresh(queue_tickets["no_clock"]).assignee is None


def test_bulk_assign_to_nobody_unassigns(agent_client, queue_tickets):
    bulk(agent_client, [queue_tickets["urgent"]], "assign", "")
    assert fresh(queue_tickets["urgent"]).assignee is None


def test_bulk_status_changes_the_selected_tickets(agent_client, queue_tickets):
    chosen = [queue_tickets["urgent"], queue_tickets["normal"]]
    bulk(agent_client, chosen, "status", "pending")
    for ticket in chosen:
        assert fresh(ticket).status == "pending"
        assert event_kinds(ticket)[-2:] == ["status", "sla_paused"]


def test_bulk_tag_adds_the_tag_and_keeps_existing_ones(agent_client, cast, frozen):
    tagged = make_ticket(cast, tags=("gift",))
    plain = make_ticket(cast)

    bulk(agent_client, [tagged, plain], "tag", "VIP")

    assert sorted(fresh(tagged).tags.values_list("name", flat=True)) == ["gift", "vip"]
    assert list(fresh(plain).tags.values_list("name", flat=True)) == ["vip"]
    assert "tags" in event_kinds(plain)


def test_a_bulk_status_invalid_for_one_ticket_reports_it_and_leaves_it_alone(agent_client, queue_tickets):
    closed = queue_tickets["solved"]
    services.ticket_set_status(ticket=closed, status=Status.CLOSED, actor=Actor.system())
    before = snapshot(closed)

    response = bulk(agent_client, [closed, queue_tickets["urgent"]], "status", "pending")

    said = flashes(response)
    assert "Updated 1 ticket." in said
    assert f"#{closed.number}" in said and "closed" in said.lower()
    assert snapshot(closed) == before
    assert fresh(queue_tickets["urgent"]).status == "pending"


@pytest.mark.parametrize(
    ("action", "value"),
    [
        ("assign", "outsider"),
        ("assign", "abc"),
        ("status", "bogus"),
        ("tag", "not a tag!"),
        ("explode", "x"),
    ],
)
def test_a_bad_bulk_action_changes_nothing(agent_client, cast, queue_tickets, action, value):
    value = str(cast.outsider.pk) if value == "outsider" else value
    chosen = [queue_tickets["urgent"], queue_tickets["high"]]
    before = [snapshot(t) for t in chosen]

    response = bulk(agent_client, chosen, action, value)

    assert response.status_code == 200
    assert "Updated" not in flashes(response)
    assert [snapshot(t) for t in chosen] == before


def test_bulk_without_a_selection_says_so(agent_client, queue_tickets):
    response = agent_client.post(f"{A}/queue/bulk/", {"action": "status", "value": "pending"}, follow=True)
    assert "Select at least one ticket." in flashes(response)


def test_bulk_counts_are_fresh_after_the_change(agent_client, cast, queue_tickets):
    assert view_counts(page(agent_client, "/queue/"))["My open"] == 2
    bulk(agent_client, [queue_tickets["high"]], "assign", str(cast.agent.pk))
    assert view_counts(page(agent_client, "/queue/"))["My open"] == 3


def test_bulk_goes_back_to_the_queue_view_but_never_off_site(agent_client, queue_tickets):
    data = {"ids": [queue_tickets["high"].pk], "action": "tag", "value": "x"}
    back = agent_client.post(f"{A}/queue/bulk/", {**data, "next": f"{A}/queue/?view=unassigned"})
    assert back.url == f"{A}/queue/?view=unassigned"
    for evil in ("https://evil.example/", "//evil.example/", "javascript:alert(1)"):
        response = agent_client.post(f"{A}/queue/bulk/", {**data, "next": evil})
        assert response.status_code == 302
        assert response.url == f"{A}/queue/", evil


# --- The ticket page ----------------------------------------------------------------------------------


@pytest.fixture
def conversation(cast, frozen):
    """A customer message, an agent's public reply, a lead's internal note."""
    ticket = make_ticket(cast, subject="Wrong size", body="I got XL instead of M.", phone="+49 30 555")
    frozen.shift(timedelta(minutes=20))
    services.ticket_reply(ticket=ticket, actor=Actor.for_user(cast.agent), body="Sorry! A label is on its way.")
    services.ticket_add_note(ticket=ticket, actor=Actor.for_user(cast.lead), body="Warehouse mixed up the bins.")
    return fresh(ticket)


def detail(client, ticket, **extra) -> str:
    return page(client, f"/tickets/{ticket.number}/", **extra)


def last_message_id(ticket) -> int:
    return Message.objects.filter(ticket=ticket).order_by("-id").values_list("id", flat=True)[0]


def test_the_ticket_page_shows_replies_and_notes_distinctly(agent_client, conversation):
    text = detail(agent_client, conversation)
    customer, reply, note = Message.objects.filter(ticket=conversation).order_by("id")

    classes = thread_classes(text)
    assert classes == {customer.pk: "customer", reply.pk: "agent", note.pk: "note"}
    note_html = text.split(f'id="m{note.pk}"')[1].split("</li>")[0]
    assert '<span class="badge note">Internal note</span>' in note_html
    assert "Warehouse mixed up the bins." in note_html
    reply_html = text.split(f'id="m{reply.pk}"')[1].split("</li>")[0]
    assert '<span class="badge info">Reply</span>' in reply_html
    assert "Internal note</span>" not in reply_html


def test_the_ticket_page_shows_sla_clocks_customer_and_timeline(agent_client, conversation):
    text = detail(agent_client, conversation)
    sla = text.split("<h2>SLA</h2>")[1].split('<div class="card">')[0]
    assert "Standard" in sla
    assert "First response" in sla and "Met" in sla
    assert "Resolution" in sla and "Due " in sla
    customer = text.split("<h2>Customer</h2>")[1].split("<h2>Timeline</h2>")[0]
    assert "Carla Customer" in customer and "carla@example.com" in customer and "+49 30 555" in customer
    assert f"{A}/customers/{conversation.customer_id}/" in customer
    timeline = text.split("<h2>Timeline</h2>")[1]
    for line in ("opened the ticket via email", "replied", "added a note", "SLA policy"):
        assert line in timeline


def test_replying_through_the_form_sends_and_fulfils_first_response(agent_client, cast, frozen):
    ticket = make_ticket(cast)
    response = agent_client.post(
        f"{A}/tickets/{ticket.number}/reply/",
        {"body": "On it!", "kind": "reply", "status": "", "last_seen": last_message_id(ticket)},
    )

    assert response.status_code == 302
    assert response.url == f"{A}/tickets/{ticket.number}/"
    sent = Message.objects.filter(ticket=ticket).latest("id")
    assert (sent.kind, sent.author_user, sent.body_text) == ("reply", cast.agent, "On it!")
    assert clock_status(ticket)["first_response"] == "fulfilled"
    assert fresh(ticket).status == "open"


def test_a_reply_can_set_pending_at_once(agent_client, cast, frozen):
    ticket = make_ticket(cast)
    agent_client.post(
        f"{A}/tickets/{ticket.number}/reply/",
        {
            "body": "Photo please?",
            "kind": "reply",
            "status": "pending",
            "last_seen": last_message_id(ticket),
        },
    )
    assert fresh(ticket).status == "pending"


def test_a_note_through_the_form_leaves_the_sla_alone(agent_client, cast, frozen):
    ticket = make_ticket(cast)
    response = agent_client.post(
        f"{A}/tickets/{ticket.number}/reply/",
        {"body": "Ask the warehouse.", "kind": "note", "last_seen": 0},
    )

    assert response.status_code == 302
    assert Message.objects.filter(ticket=ticket).latest("id").kind == "note"
    assert clock_status(ticket)["first_response"] == "active"
    assert fresh(ticket).status == "new"


@pytest.mark.parametrize(
    "data",
    [
        {"body": "", "kind": "reply", "last_seen": "0"},
        {"body": "   ", "kind": "reply", "last_seen": "0"},
        {"body": "Hi", "kind": "shout", "last_seen": "0"},
        {"body": "Hi", "kind": "reply"},
        {"body": "Hi", "kind": "reply", "last_seen": "-1"},
        {"body": "Hi", "kind": "reply", "last_seen": "0", "status": "closed"},
    ],
)
def test_a_bad_reply_form_is_400_and_sends_nothing(agent_client, cast, frozen, data):
    ticket = make_ticket(cast)
    before = snapshot(ticket)

    response = agent_client.post(f"{A}/tickets/{ticket.number}/reply/", data)

    assert response.status_code == 400
    assert response.context["form"].errors
    assert snapshot(ticket) == before


def test_a_reply_to_a_closed_ticket_is_refused(agent_client, cast, frozen):
    ticket = make_ticket(cast)
    services.ticket_set_status(ticket=ticket, status=Status.CLOSED, actor=Actor.system())
    before = snapshot(ticket)

    response = agent_client.post(
        f"{A}/tickets/{ticket.number}/reply/",
        {"body": "Hello?", "kind": "reply", "last_seen": last_message_id(ticket)},
    )

    assert response.status_code == 400
    assert "closed" in str(response.context["form"].errors).lower()
    assert snapshot(ticket) == before


# --- The collision guard ---


def test_a_customer_message_since_the_page_loaded_stops_the_reply_and_keeps_the_draft(agent_client, cast, frozen):
    ticket = make_ticket(cast)
    seen = last_message_id(ticket)
    services.ticket_customer_message(ticket=ticket, body="Never mind, it arrived!")
    url = f"{A}/tickets/{ticket.number}/reply/"

    response = agent_client.post(url, {"body": "I'll send a new one.", "kind": "reply", "last_seen": seen})

    assert response.status_code == 409
    text = response.content.decode()
    warning = text.split('id="collision"')[1].split("</div>\n")[0]
    assert "Never mind, it arrived!" in warning
    assert "I&#x27;ll send a new one.</textarea>" in text
    assert 'name="confirm_collision" value="True"' in text or 'name="confirm_collision" value="on"' in text
    assert Message.objects.filter(ticket=ticket, author_type="agent").count() == 0

    form = response.context["form"]
    resend = dict(form.data.items())
    response = agent_client.post(url, resend)

    assert response.status_code == 302
    assert Message.objects.filter(ticket=ticket, author_type="agent").get().body_text == "I'll send a new one."


def test_another_agents_reply_since_the_page_loaded_also_collides(agent_client, cast, frozen):
    ticket = make_ticket(cast)
    seen = last_message_id(ticket)
    services.ticket_reply(ticket=ticket, actor=Actor.for_user(cast.lead), body="Handled it.")

    response = agent_client.post(
        f"{A}/tickets/{ticket.number}/reply/",
        {"body": "Me too", "kind": "reply", "last_seen": seen},
    )

    assert response.status_code == 409
    assert "Handled it." in response.content.decode().split('id="collision"')[1]


def test_confirming_only_covers_what_was_shown(agent_client, cast, frozen):
    ticket = make_ticket(cast)
    seen = last_message_id(ticket)
    services.ticket_customer_message(ticket=ticket, body="First news")
    url = f"{A}/tickets/{ticket.number}/reply/"
    warned = agent_client.post(url, {"body": "Draft", "kind": "reply", "last_seen": seen})
    services.ticket_customer_message(ticket=ticket, body="Second news")

    again = agent_client.post(url, dict(warned.context["form"].data.items()))

    assert again.status_code == 409
    assert "Second news" in again.content.decode().split('id="collision"')[1]
    assert not Message.objects.filter(ticket=ticket, author_type="agent").exists()


@pytest.mark.parametrize("newer", ["own reply", "someone's note"])
def test_own_replies_and_notes_do_not_collide(agent_client, cast, frozen, newer):
    ticket = make_ticket(cast)
    seen = last_message_id(ticket)
    if newer == "own reply":
        services.ticket_reply(ticket=ticket, actor=Actor.for_user(cast.agent), body="First answer")
    else:
        services.ticket_add_note(ticket=ticket, actor=Actor.for_user(cast.lead), body="FYI")

    response = agent_client.post(
        f"{A}/tickets/{ticket.number}/reply/",
        {"body": "Follow-up", "kind": "reply", "last_seen": seen},
    )

    assert response.status_code == 302


def test_a_note_is_saved_even_when_the_customer_wrote_meanwhile(agent_client, cast, frozen):
    ticket = make_ticket(cast)
    seen = last_message_id(ticket)
    services.ticket_customer_message(ticket=ticket, body="Hello again")
    response = agent_client.post(
        f"{A}/tickets/{ticket.number}/reply/", {"body": "Note", "kind": "note", "last_seen": seen}
    )
    assert response.status_code == 302


# --- Sidebar controls ---


def update(client, ticket, **data):
    return client.post(f"{A}/tickets/{ticket.number}/update/", data, follow=True)


def test_the_sidebar_controls_change_status_priority_type_assignee_and_tags(agent_client, cast, types, frozen):
    ticket = make_ticket(cast)

    assert "Ticket updated." in flashes(update(agent_client, ticket, status="pending"))
    update(agent_client, ticket, priority="high")
    update(agent_client, ticket, ticket_type="returns")
    update(agent_client, ticket, assignee=str(cast.lead.pk))
    update(agent_client, ticket, tags="VIP, Gift Wrap")

    row = fresh(ticket)
    assert (row.status, row.priority, row.ticket_type, row.assignee) == (
        "pending",
        "high",
        types["returns"],
        cast.lead,
    )
    assert sorted(row.tags.values_list("name", flat=True)) == ["gift-wrap", "vip"]
    assert {"status", "priority", "type", "assigned", "tags"} <= set(event_kinds(ticket))

    text = detail(agent_client, ticket)
    assert '<option value="pending" selected>' in text
    assert '<option value="high" selected>' in text
    assert '<option value="returns" selected>' in text
    assert f'<option value="{cast.lead.pk}" selected>' in text
    assert 'value="gift-wrap, vip"' in text

    update(agent_client, ticket, ticket_type="", assignee="", tags="")
    row = fresh(ticket)
    assert (row.ticket_type, row.assignee, row.tags.count()) == (None, None, 0)


@pytest.mark.parametrize(
    "data",
    [
        {"status": "new"},
        {"status": "bogus"},
        {"priority": "asap"},
        {"ticket_type": "hats"},
        {"ticket_type": "nope"},
        {"assignee": "outsider"},
        {"assignee": "abc"},
        {"tags": "not a tag!"},
    ],
)
def test_a_bad_sidebar_change_says_why_and_changes_nothing(agent_client, cast, types, frozen, data):
    ticket = make_ticket(cast, assignee=cast.agent)  # open
    data = {k: (str(cast.outsider.pk) if v == "outsider" else v) for k, v in data.items()}
    before = snapshot(ticket)

    response = update(agent_client, ticket, **data)

    assert response.status_code == 200
    assert "Ticket updated." not in flashes(response)
    assert flashes(response)
    assert snapshot(ticket) == before


# --- Follow-ups ---


def test_a_closed_ticket_offers_a_follow_up_that_links_back(agent_client, cast, frozen):
    ticket = make_ticket(cast, priority="high")
    services.ticket_set_status(ticket=ticket, status=Status.CLOSED, actor=Actor.system())

    text = detail(agent_client, ticket)
    assert f'action="{A}/tickets/{ticket.number}/followup/"' in text
    assert "Create follow-up" in text
    assert 'id="composer"' not in text

    response = agent_client.post(f"{A}/tickets/{ticket.number}/followup/", {"body": "She called back."})

    followup = Ticket.objects.get(followup_of=ticket)
    assert response.url == f"{A}/tickets/{followup.number}/"
    assert (followup.customer_id, followup.priority, followup.assignee) == (
        ticket.customer_id,
        "high",
        cast.agent,
    )
    assert f"Follow-up of #{ticket.number}" in detail(agent_client, followup)


def test_an_open_ticket_gets_no_follow_up(agent_client, cast, frozen):
    ticket = make_ticket(cast)
    assert "Create follow-up" not in detail(agent_client, ticket)

    response = agent_client.post(f"{A}/tickets/{ticket.number}/followup/", follow=True)

    assert "Only closed tickets" in flashes(response)
    assert not Ticket.objects.filter(followup_of=ticket).exists()


# --- New ticket on a customer's behalf ---


NEW_TICKET = {
    "customer_email": "",
    "customer_phone": "+49 170 5550101",
    "customer_name": "Paula Phone",
    "subject": "Called about a missing parcel",
    "body": "Parcel 1042 never arrived; she'd like a replacement.",
    "channel": "phone",
    "priority": "normal",
    "ticket_type": "shipping",
    "order_number": "1042",
}


def test_a_new_ticket_for_a_caller_is_assigned_to_the_agent_without_a_first_response_clock(
    agent_client, cast, types, frozen
):
    response = agent_client.post(f"{A}/tickets/new/", NEW_TICKET)

    ticket = Ticket.objects.select_related("customer").get(tenant=cast.tenant)
    assert response.status_code == 302
    assert response.url == f"{A}/tickets/{ticket.number}/"
    assert (ticket.assignee, ticket.status, ticket.channel) == (cast.agent, "open", "phone")
    assert (ticket.ticket_type, ticket.order_number) == (types["shipping"], "1042")
    assert (ticket.customer.phone, ticket.customer.name, ticket.customer.email) == (
        "+49 170 5550101",
        "Paula Phone",
        "",
    )
    assert clock_status(ticket) == {"resolution": "active"}
    first = Message.objects.get(ticket=ticket)
    assert (first.author_type, first.kind, first.author_user) == ("agent", "note", cast.agent)


def test_a_new_ticket_for_a_known_phone_number_reuses_the_customer(agent_client, cast, types, frozen):
    known = services.customer_get_or_create(tenant=cast.tenant, phone="+49 170 5550101")
    agent_client.post(f"{A}/tickets/new/", NEW_TICKET)
    assert Ticket.objects.get(tenant=cast.tenant).customer_id == known.pk


def test_the_new_ticket_form_is_prefilled_for_a_customer(agent_client, cast):
    known = services.customer_get_or_create(tenant=cast.tenant, email="vip@example.com", name="Vera")
    text = page(agent_client, f"/tickets/new/?customer={known.pk}")
    assert 'value="vip@example.com"' in text and 'value="Vera"' in text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"customer_phone": ""}, "customer_email"),
        ({"customer_email": "not-an-email"}, "customer_email"),
        ({"subject": ""}, "subject"),
        ({"body": "  "}, "body"),
        ({"priority": "asap"}, "priority"),
        ({"channel": "fax"}, "channel"),
        ({"ticket_type": "hats"}, "ticket_type"),
        ({"customer_phone": "1" * 33}, "customer_phone"),
    ],
)
def test_bad_new_ticket_input_is_a_form_error_and_creates_nothing(agent_client, cast, types, change, field):
    response = agent_client.post(f"{A}/tickets/new/", {**NEW_TICKET, **change})

    assert response.status_code in (200, 400)
    assert field in response.context["form"].errors
    assert 'class="errors"' in response.content.decode()
    assert not Ticket.objects.exists()
    assert not Customer.objects.exists()


# --- Lists, customers, notifications ---


def test_the_tickets_list_searches_by_number_subject_and_status(agent_client, cast, frozen):
    socks = make_ticket(cast, subject="Socks too small")
    hats = make_ticket(cast, subject="Hat lost", email="h@example.com")
    services.ticket_set_status(ticket=hats, status=Status.PENDING, actor=Actor.system())

    assert f"#{socks.number}" in page(agent_client, "/tickets/")
    assert f"#{hats.number}" not in page(agent_client, "/tickets/?q=socks")
    assert f"#{socks.number}" not in page(agent_client, f"/tickets/?q=%23{hats.number}")
    assert f"#{socks.number}" not in page(agent_client, "/tickets/?status=pending")


def test_customers_list_and_detail(agent_client, cast, frozen):
    ticket = make_ticket(cast, subject="Socks too small")
    services.customer_get_or_create(tenant=cast.tenant, email="dan@example.com", name="Dan Other")
    services.customer_get_or_create(tenant=cast.other_tenant, email="globex@example.com")

    listing = page(agent_client, "/customers/")
    assert "Carla Customer" in listing and "Dan Other" in listing and "globex@example.com" not in listing
    assert "Dan Other" not in page(agent_client, "/customers/?q=carla")
    profile = page(agent_client, f"/customers/{ticket.customer_id}/")
    assert "Socks too small" in profile and "carla@example.com" in profile
    assert f"{A}/tickets/new/?customer={ticket.customer_id}" in profile


def test_the_notifications_page_lists_sla_breaches_and_marks_them_read(agent_client, cast, frozen):
    ticket = make_ticket(cast, priority="urgent", assignee=cast.agent)
    frozen.shift(timedelta(hours=2))
    services.sla_sweep_tenant(cast.tenant.pk)

    text = page(agent_client, "/notifications/")
    assert f"#{ticket.number} breached First response SLA" in text
    assert 'class="unread"' in text

    agent_client.post(f"{A}/notifications/")
    assert not Notification.objects.filter(user=cast.agent, read_at__isnull=True).exists()
    assert 'class="unread"' not in page(agent_client, "/notifications/")


# --- Query counts of the ticket page ---


@pytest.mark.parametrize("total", [3, 30])
def test_the_ticket_page_query_count_is_flat(agent_client, cast, types, frozen, total, django_assert_max_num_queries):
    ticket = make_ticket(cast, ticket_type=types["returns"], assignee=cast.agent, tags=("vip", "gift"))
    make_ticket(cast, subject="Earlier one")
    for i in range(total - 1):
        if i % 3 == 0:
            services.ticket_reply(
                ticket=ticket,
                actor=Actor.for_user(cast.lead if i % 2 else cast.agent),
                body=f"Reply {i}",
            )
        elif i % 3 == 1:
            services.ticket_customer_message(ticket=ticket, body=f"Answer {i}")
        else:
            services.ticket_add_note(ticket=ticket, actor=Actor.for_user(cast.lead), body=f"Note {i}")
    assert Message.objects.filter(ticket=ticket).count() == total
    detail(agent_client, ticket)

    with django_assert_max_num_queries(12):
        text = detail(agent_client, ticket)

    assert len(thread_classes(text)) == total


# --- Who may use the pages ---


@pytest.mark.parametrize("who", ["agent_client", "lead_client"])
def test_agents_and_leads_can_use_every_page(request, cast, types, frozen, who):
    client = request.getfixturevalue(who)
    ticket = make_ticket(cast)
    for path in (
        "/queue/",
        "/queue/?view=type:returns",
        "/tickets/",
        "/tickets/new/",
        f"/tickets/{ticket.number}/",
        "/customers/",
        f"/customers/{ticket.customer_id}/",
        "/notifications/",
    ):
        page(client, path)
    seen = last_message_id(ticket)
    assert (
        client.post(
            f"{A}/tickets/{ticket.number}/reply/",
            {"body": "Hi", "kind": "reply", "last_seen": seen},
        ).status_code
        == 302
    )
    assert client.post(f"{A}/tickets/{ticket.number}/update/", {"priority": "high"}).status_code == 302
    assert client.post(f"{A}/queue/bulk/", {"ids": [ticket.pk], "action": "tag", "value": "seen"}).status_code == 302
    assert fresh(ticket).priority == "high"


# --- The outsider ---


@pytest.fixture
def a_ticket(cast, frozen):
    ticket = make_ticket(cast, assignee=cast.agent)
    services.ticket_set_status(
        ticket=make_ticket(cast, email="z@example.com"), status=Status.CLOSED, actor=Actor.system()
    )
    return ticket


OUTSIDER_GETS = [
    "/queue/",
    "/queue/?view=all&partial=rows",
    "/tickets/",
    "/tickets/new/",
    "/tickets/{number}/",
    "/customers/",
    "/customers/{customer}/",
    "/notifications/",
]
OUTSIDER_POSTS = [
    ("/queue/bulk/", {"ids": "{pk}", "action": "status", "value": "solved"}),
    ("/tickets/new/", NEW_TICKET),
    ("/tickets/{number}/reply/", {"body": "Hi from Globex", "kind": "reply", "last_seen": "0"}),
    ("/tickets/{number}/update/", {"status": "solved"}),
    ("/tickets/{number}/update/", {"assignee": ""}),
    ("/tickets/{number}/followup/", {}),
    ("/notifications/", {}),
]


def _fill(template: str, ticket) -> str:
    return template.format(number=ticket.number, customer=ticket.customer_id, pk=ticket.pk)


@pytest.mark.parametrize("path", OUTSIDER_GETS)
def test_the_outsider_gets_404_on_every_page_of_tenant_a(outsider_client, a_ticket, path):
    assert outsider_client.get(A + _fill(path, a_ticket), HTTP_HX_REQUEST="true").status_code == 404
    assert outsider_client.get(A + _fill(path, a_ticket)).status_code == 404


@pytest.mark.parametrize(("path", "data"), OUTSIDER_POSTS, ids=[p for p, _ in OUTSIDER_POSTS])
def test_the_outsider_gets_404_on_every_post_and_nothing_changes(outsider_client, cast, a_ticket, path, data):
    before = snapshot(a_ticket)
    counts = (
        Ticket.objects.count(),
        Customer.objects.count(),
        Message.objects.count(),
        TicketEvent.objects.count(),
    )
    data = {k: _fill(v, a_ticket) for k, v in data.items()}

    assert outsider_client.post(A + _fill(path, a_ticket), data).status_code == 404

    assert snapshot(a_ticket) == before
    assert (
        Ticket.objects.count(),
        Customer.objects.count(),
        Message.objects.count(),
        TicketEvent.objects.count(),
    ) == counts


def test_the_outsider_cannot_reach_tenant_a_rows_through_their_own_workspace(outsider_client, cast, a_ticket):
    own = "/t/globex"
    before = snapshot(a_ticket)
    assert outsider_client.get(f"{own}/customers/{a_ticket.customer_id}/").status_code == 404
    assert outsider_client.get(f"{own}/tickets/{a_ticket.number}/").status_code == 404
    assert outsider_client.post(f"{own}/tickets/{a_ticket.number}/update/", {"status": "solved"}).status_code == 404
    outsider_client.post(f"{own}/queue/bulk/", {"ids": [a_ticket.pk], "action": "status", "value": "solved"})
    prefilled = outsider_client.get(f"{own}/tickets/new/?customer={a_ticket.customer_id}")
    assert prefilled.status_code == 200
    assert "carla@example.com" not in prefilled.content.decode()
    assert snapshot(a_ticket) == before


def test_a_ticket_number_beyond_the_integer_range_is_404(agent_client, cast):
    assert agent_client.get(f"{A}/tickets/99999999999999999999/").status_code == 404
    assert agent_client.get(f"{A}/customers/99999999999999999999/").status_code == 404
