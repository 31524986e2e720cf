"""The fast paths of the agent pages: prepared reads give what the ORM gives, and markup
built in Python escapes every value that comes from users."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tests.tickets_fixtures import make_ticket
from tickets import selectors
from tickets.models import Ticket

pytest_plugins = ["tests.tickets_fixtures"]

A = "/t/acme"


# --- Prepared reads -----------------------------------------------------------------------------


@pytest.mark.parametrize("view", ["mine", "unassigned", "all", "breaching", "pending", "type:returns", "bogus"])
@pytest.mark.parametrize("paged", [False, True])
def test_the_prepared_queue_read_gives_what_the_orm_gives(cast, types, frozen, view, paged):
    for i in range(7):
        make_ticket(
            cast,
            subject=f"T{i}",
            priority=["urgent", "high", "normal", "low"][i % 4],
            assignee=cast.agent if i % 2 else None,
            ticket_type=types["returns"] if i % 3 else None,
        )
    make_ticket(cast, tenant=cast.other_tenant, subject="Theirs")
    at = timezone.now()  # frozen
    first = selectors.ticket_queue(tenant=cast.tenant, view=view, agent=cast.agent, limit=3, at=at)
    after = first.next_cursor if paged else None
    if paged and after is None:
        pytest.skip("one page only")
    got = selectors.ticket_queue(tenant=cast.tenant, view=view, agent=cast.agent, after=after, limit=3, at=at)
    cursor = selectors.decode_cursor(after) if after else None
    expected = selectors._queue_queryset(
        tenant_id=cast.tenant.pk,
        view=view if view in selectors.VIEW_KEYS or view.startswith("type:") else "all",
        agent_id=cast.agent.pk,
        soon=at + selectors.BREACHING_SOON,
        slug=view[5:] if view.startswith("type:") else "",
        cursor=cursor,
        limit=3,
    )
    assert [selectors.QueueRow(*row) for row in expected][:3] == got.tickets
    read = selectors._queue_read(view, paged, 3)
    assert read._plans["default"] is not None, "the queue query should compile once, not fall back"


def test_a_prepared_read_only_binds_its_slots(cast, frozen):
    mine = make_ticket(cast, subject="Ours")
    theirs = make_ticket(cast, tenant=cast.other_tenant, subject="Theirs")
    read = selectors.PreparedRead(
        lambda tenant_id, number: Ticket.objects.filter(tenant_id=tenant_id, number=number).values_list("subject"),
        tenant_id=int,
        number=int,
    )
    assert read.rows(tenant_id=cast.tenant.pk, number=mine.number) == [("Ours",)]
    assert read.rows(tenant_id=cast.other_tenant.pk, number=theirs.number) == [("Theirs",)]
    assert read.rows(tenant_id=cast.other_tenant.pk, number=mine.number + 1000) == []
    assert read._plans["default"] is not None


def test_a_read_that_depends_on_more_than_its_slots_falls_back_to_the_orm(cast, frozen):
    make_ticket(cast, subject="Ours")
    calls = []

    def build(tenant_id):
        calls.append(tenant_id)
        # Depends on hidden state (how often it was built): never compiled once for good.
        return Ticket.objects.filter(tenant_id=tenant_id, number__gte=len(calls)).values_list("subject")

    read = selectors.PreparedRead(build, tenant_id=int)
    assert read.rows(tenant_id=cast.tenant.pk) == [("Ours",)]
    assert read._plans["default"] is None
    assert read.rows(tenant_id=cast.tenant.pk) == [("Ours",)]


def test_prepared_reads_convert_json_columns(cast, frozen):
    ticket = make_ticket(cast, subject="Ours")
    from tickets.models import TicketEvent

    read = selectors.PreparedRead(
        lambda ticket_id: TicketEvent.objects.filter(ticket_id=ticket_id).order_by("id").values_list("kind", "data"),
        ticket_id=int,
    )
    rows = read.rows(ticket_id=ticket.pk)
    assert rows == list(TicketEvent.objects.filter(ticket_id=ticket.pk).order_by("id").values_list("kind", "data"))
    assert all(isinstance(data, dict) for _, data in rows)


# --- Escaping: values from users come out as text -----------------------------------------------

EVIL = '<script>alert("x")</script>'
EVIL_ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"


def _evil_ticket(cast, types, frozen):
    from helpdesk import access_cache
    from tickets.models import SlaPolicy, Tag, TicketEvent, TicketTag

    cast.agent.name = f"Ada {EVIL}"
    cast.agent.save()
    access_cache.memberships_changed(cast.tenant)
    kind = types["returns"]
    kind.name = f"Returns {EVIL}"
    kind.save()
    selectors.ticket_types_changed(cast.tenant.pk)
    ticket = make_ticket(
        cast, subject=f"Subject {EVIL}", name=f"Carla {EVIL}", phone="+49 30 555", ticket_type=kind, assignee=cast.agent
    )
    make_ticket(cast, subject=f"Earlier {EVIL}", name=f"Carla {EVIL}")
    Ticket.objects.filter(pk=ticket.pk).update(order_number=f"10{EVIL}")
    SlaPolicy.objects.filter(tenant=cast.tenant).update(name=f"Policy {EVIL}")
    tag = Tag.objects.create(tenant=cast.tenant, name=f"tag{EVIL}")
    TicketTag.objects.create(tenant=cast.tenant, ticket=ticket, tag=tag)
    TicketEvent.objects.create(
        tenant=cast.tenant,
        ticket=ticket,
        kind="tags",
        actor_label=f"Bot {EVIL}",
        data={"added": [f"added{EVIL}"]},
    )
    TicketEvent.objects.create(
        tenant=cast.tenant, ticket=ticket, kind="escalated", actor_label="Ada", data={"team": f"Team {EVIL}"}
    )
    return ticket


def test_the_ticket_page_escapes_every_value_from_users(agent_client, cast, types, frozen):
    ticket = _evil_ticket(cast, types, frozen)
    response = agent_client.get(f"{A}/tickets/{ticket.number}/")
    assert response.status_code == 200
    text = response.content.decode()
    assert EVIL not in text
    assert 'alert("x")' not in text
    side = text.split('aria-label="Ticket details"')[1]
    for where, expected in [
        ("subject", f"<h1>Subject {EVIL_ESCAPED}</h1>"),
        ("order", f"Order #10{EVIL_ESCAPED}"),
        ("customer", f"<strong>Carla {EVIL_ESCAPED}</strong>"),
        ("tags", f'value="tag{EVIL_ESCAPED}"'),
        ("type", f"Returns {EVIL_ESCAPED}</option>"),
        ("assignee", f"Ada {EVIL_ESCAPED}</option>"),
        ("policy", f'<span class="muted small">Policy {EVIL_ESCAPED}</span>'),
        ("recent", f"Earlier {EVIL_ESCAPED[:26]}"),
        ("event actor", f"<strong>Bot {EVIL_ESCAPED}</strong> added added{EVIL_ESCAPED}"),
        ("event team", f"escalated to <strong>Team {EVIL_ESCAPED}</strong>"),
    ]:
        assert expected in (text if where in ("subject", "order") else side), where

    timeline = agent_client.get(f"{A}/tickets/{ticket.number}/timeline/").content.decode()
    assert EVIL not in timeline and f"<strong>Bot {EVIL_ESCAPED}</strong>" in timeline


def test_the_ticket_page_selects_the_tickets_values(agent_client, cast, types, frozen):
    ticket = make_ticket(cast, ticket_type=types["returns"], assignee=cast.agent, tags=("gift", "vip"), priority="high")
    text = agent_client.get(f"{A}/tickets/{ticket.number}/").content.decode()
    assert '<option value="high" selected>High</option>' in text
    assert f'<option value="{types["returns"].slug}" selected>' in text
    assert f'<option value="{cast.agent.pk}" selected>' in text
    assert 'value="gift, vip"' in text
    assert text.count('name="csrfmiddlewaretoken"') >= 6


# --- The app shell ------------------------------------------------------------------------------


@pytest.mark.parametrize("availability", ["online", "away", "offline"])
def test_the_shells_availability_menu_is_the_templates(agent_client, cast, availability):
    """base.html builds it in Python (shell_ui); the htmx answer still renders the template."""
    import re

    from helpdesk.models import Membership

    Membership.objects.filter(tenant=cast.tenant, user=cast.agent).update(availability=availability)
    from helpdesk import access_cache

    access_cache.memberships_changed(cast.tenant)
    page = agent_client.get(f"{A}/queue/?view=all").content.decode()
    menu = agent_client.post(
        f"{A}/availability/", {"availability": availability, "next": f"{A}/queue/?view=all"}, HTTP_HX_REQUEST="true"
    ).content.decode()

    def norm(text: str) -> str:
        text = re.sub(r'name="(csrfmiddlewaretoken|next)" value="[^"]+"', "", text)  # per request
        return re.sub(r"\s+", " ", text).strip()

    in_page = page.split('<div class="row" id="availability-menu">')[1].split("</div>")[0]
    in_menu = menu.split('<div class="row" id="availability-menu">')[1].split("</div>")[0]
    assert norm(in_page) == norm(in_menu)
    assert f'<option value="{availability}" selected>' in page


def test_the_shell_escapes_the_members_name_and_the_pages_path(agent_client, cast):
    cast.agent.name = f"Ada {EVIL}"
    cast.agent.save()
    text = agent_client.get(f"{A}/queue/?view=all&x=%22%3E%3Cscript%3E").content.decode()
    assert EVIL not in text and '"><script>' not in text
    assert f"<strong>Ada {EVIL_ESCAPED}</strong>" in text
    assert 'aria-current="page" data-nav="queue"' in text
    assert "<td>Next / previous ticket</td>" in text  # the page's own shortcuts


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "<1m"),
        (59, "<1m"),
        (-30, "<1m"),
        (60, "1m"),
        (-3599, "59m"),
        (3900, "1h 05m"),
        (47 * 3600, "47h 00m"),
        (49 * 3600 + 60, "2d 1h"),
    ],
)
def test_sla_spans_are_whole_minutes_and_under_one_minute_says_so(seconds, shown):
    """The queue's badges: static/js/queue.js `human` renders the same."""
    from tickets.render import human_span

    assert human_span(seconds) == shown
