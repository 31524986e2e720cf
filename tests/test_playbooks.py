"""Playbooks: sandboxed templates, versions, the checklist, the solve guard everywhere, pages, API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from helpdesk.models import AuditLog
from helpdesk.services import Actor
from integrations.models import Fulfillment, Refund
from playbooks import rendering, selectors, services
from playbooks.models import ChecklistTick, Playbook, PlaybookVersion, ReplyTemplate
from tests.orders_fixtures import make_connection, make_order
from tests.tickets_fixtures import fresh, make_ticket, snapshot
from tickets import services as ticket_services
from tickets.models import Status, Tag, Team, Ticket, TicketEvent

pytest_plugins = ["tests.orders_fixtures"]

HTMX = {"HTTP_HX_REQUEST": "true"}


# --- the sandbox -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("Hi {{ customer.first_name }", 1, "unexpected"),
        ("Hi\n\n{% if order %}\nno end", 3, "endif"),
        ("Hi {{ foo }}", 1, "unknown variable “foo”"),
        ("Hi\n{{ order.secret_field }}", 2, "unknown variable “order.secret_field”"),
        ("{% for f in fulfillments %}{{ f.nope }}{% endfor %}", 1, "f.nope"),
        ("{{ customer.__class__ }}", 1, "not allowed"),
        ("{{ ''.__class__.__mro__ }}", 1, "not allowed"),
    ],
)
def test_validate_reports_the_problem_and_its_line(text, line, words):
    with pytest.raises(rendering.TemplateProblem) as problem:
        rendering.validate(text)
    assert problem.value.line == line
    assert words.lower() in problem.value.message.lower()


def test_validate_accepts_documented_variables_loops_and_filters():
    rendering.validate(
        "Hi {{ customer.first_name }}, {% for line in order.lines %}{{ line.title }} × {{ line.quantity }}\n"
        "{% endfor %}{% if fulfillment.tracking_url %}{{ fulfillment.tracking_url }}{% endif %}"
        "{% set total = order.total %}{{ total }} {{ refund.amount|money }} {{ links.survey }}"
    )


def test_render_fills_values_and_lists_what_is_missing():
    out = rendering.render(
        "Hi {{ customer.first_name }}, order {{ order.name }} ships with {{ fulfillment.carrier }}.",
        {"customer": {"first_name": "Ann"}, "order": {"name": "#1042"}},
    )
    assert out.text == "Hi Ann, order #1042 ships with ."
    assert out.missing == ["fulfillment.carrier"]
    assert not out.complete


def test_render_treats_if_as_handling_the_gap():
    out = rendering.render("{% if fulfillment.tracking_url %}Track: {{ fulfillment.tracking_url }}{% endif %}ok", {})
    assert out.text == "ok"
    assert out.missing == []


def test_sandbox_refuses_mutation_and_private_attributes_at_render():
    with pytest.raises(rendering.TemplateProblem):
        rendering.render("{{ customer.update({'name': 'x'}) }}", {"customer": {"name": "Ann"}})
    out = rendering.render("{{ customer.__class__ }}", {"customer": {"name": "Ann"}})
    assert "class" not in out.text


def test_ticket_context_reads_the_linked_order_fulfillment_and_refund(cast):
    shop = make_connection(cast.tenant, None)
    ticket = make_ticket(cast, subject="Where is order 1042?", name="Ann Lee", email="ann@example.com")
    order = make_order(shop, external_id="1", number="1042", customer=ticket.customer, total="120.00")
    Fulfillment.objects.create(
        tenant=cast.tenant,
        order=order,
        external_id="f1",
        carrier="DHL",
        tracking_number="JD0001",
        tracking_url="https://track.example/JD0001",
        shipped_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
        estimated_delivery_at=datetime(2026, 3, 5, 12, tzinfo=UTC),
    )
    Refund.objects.create(tenant=cast.tenant, order=order, external_id="r1", amount=Decimal("20"), currency="EUR")
    Ticket.objects.filter(pk=ticket.pk).update(order=order)
    context = rendering.ticket_context(fresh(ticket), agent=cast.agent)
    out = rendering.render(
        "{{ customer.first_name }}|{{ order.name }}|{{ order.total }}|{{ fulfillment.carrier }}|"
        "{{ fulfillment.tracking_url }}|{{ fulfillment.expected_delivery }}|{{ refund.amount }}|{{ agent.first_name }}|"
        "{{ store.name }}",
        context,
    )
    assert out.text == ("Ann|#1042|120.00|DHL|https://track.example/JD0001|5 Mar 2026|20.00|Ada|Acme Socks"), out
    assert out.missing == []


# --- templates ---------------------------------------------------------------------------


def test_template_save_validates_every_language_and_keeps_nothing_on_error(cast):
    with pytest.raises(ValidationError) as exc:
        services.template_save(
            tenant=cast.tenant,
            actor=Actor.for_user(cast.lead),
            name="Tracking",
            variants={"en": {"body": "Hi {{ customer.first_name }}"}, "de": {"body": "Hallo\n{{ kunde.name }}"}},
        )
    assert "Line 2" in exc.value.message_dict["de-body"][0]
    assert not ReplyTemplate.objects.filter(tenant=cast.tenant).exists()


def test_template_names_are_unique_per_kind_and_notices_need_a_subject(cast):
    actor = Actor.for_user(cast.lead)
    services.template_save(tenant=cast.tenant, actor=actor, name="Tracking", variants={"en": {"body": "Hi"}})
    with pytest.raises(ValidationError) as exc:
        services.template_save(tenant=cast.tenant, actor=actor, name="Tracking", variants={"en": {"body": "Hi"}})
    assert "already" in exc.value.message_dict["name"][0]
    with pytest.raises(ValidationError) as exc:
        services.template_save(
            tenant=cast.tenant, actor=actor, name="Shipped", kind="notice", variants={"en": {"body": "Hi"}}
        )
    assert "subject" in exc.value.message_dict["en-subject"][0]
    # Another tenant may use the same name.
    services.template_save(
        tenant=cast.other_tenant, actor=Actor.system(), name="Tracking", variants={"en": {"body": "Hi"}}
    )


def test_variant_follows_the_customer_language_then_the_store_default(cast):
    template = services.template_save(
        tenant=cast.tenant,
        actor=Actor.system(),
        name="Tracking",
        variants={"en": {"body": "Hello"}, "de": {"body": "Hallo"}},
    )
    assert services.pick_variant(template, "de", "en").body == "Hallo"
    assert services.pick_variant(template, "de-AT", "en").body == "Hallo"
    assert services.pick_variant(template, "fr", "en").body == "Hello"
    assert services.pick_variant(template, "", "de").body == "Hallo"


# --- playbooks and versions --------------------------------------------------------------


@pytest.fixture
def playbook_setup(cast, types):
    team = Team.objects.create(tenant=cast.tenant, name="Logistics", lead=cast.lead)
    reply = services.template_save(
        tenant=cast.tenant,
        actor=Actor.system(),
        name="Tracking",
        variants={"en": {"body": "Hi {{ customer.first_name }}, it ships with {{ fulfillment.carrier }}."}},
    )
    version = services.playbook_save(
        tenant=cast.tenant,
        ticket_type=types["shipping"],
        actor=Actor.for_user(cast.lead),
        owner_team=team,
        checklist=[{"text": "Check tracking", "required": True}, {"text": "Offer a discount", "required": False}],
        replies=[reply.pk],
        required_fields=["tags"],
        escalation_team=team,
        escalation_due_minutes=240,
        escalation_summary="Chase order {{ order.name }}",
    )
    return type("Setup", (), {"team": team, "reply": reply, "version": version, "type": types["shipping"]})


def test_an_edit_makes_a_new_version_and_tickets_keep_theirs(cast, playbook_setup, clean_cache):
    first = make_ticket(cast, ticket_type=playbook_setup.type)
    assert first.playbook_version_id == playbook_setup.version.pk
    old_keys = [i["key"] for i in playbook_setup.version.checklist]
    v2 = services.playbook_save(
        tenant=cast.tenant,
        ticket_type=playbook_setup.type,
        actor=Actor.for_user(cast.lead),
        checklist=[
            {"key": old_keys[1], "text": "Offer a discount code", "required": False},
            {"key": old_keys[0], "text": "Check tracking", "required": True},
        ],
        note="Reordered",
    )
    assert v2.number == 2
    assert [i["key"] for i in v2.checklist] == [old_keys[1], old_keys[0]]  # keys survive re-ordering
    second = make_ticket(cast, ticket_type=playbook_setup.type, email="b@example.com")
    assert second.playbook_version_id == v2.pk
    assert fresh(first).playbook_version_id == playbook_setup.version.pk
    assert AuditLog.objects.filter(tenant=cast.tenant, action="playbook.updated").exists()


def test_playbook_save_refuses_bad_input(cast, types):
    foreign_team = Team.objects.create(tenant=cast.other_tenant, name="Theirs")
    cases = [
        ({"owner_team": foreign_team}, "owner_team"),
        ({"owner_user": cast.outsider}, "owner_user"),
        ({"required_fields": ["shoe_size"]}, "required_fields"),
        ({"escalation_summary": "{{ order.nope }}"}, "escalation_summary"),
        ({"escalation_team": Team.objects.create(tenant=cast.tenant, name="T")}, "escalation_due_minutes"),
        ({"replies": [999999]}, "replies"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as exc:
            services.playbook_save(
                tenant=cast.tenant, ticket_type=types["shipping"], actor=Actor.for_user(cast.lead), **kwargs
            )
        assert field in exc.value.message_dict, kwargs
    assert not Playbook.objects.filter(tenant=cast.tenant).exists()
    with pytest.raises(ValidationError):
        services.playbook_save(tenant=cast.tenant, ticket_type=types["hats"], actor=Actor.system())


def test_changing_the_type_brings_that_types_playbook(cast, playbook_setup, types, clean_cache):
    ticket = make_ticket(cast, ticket_type=types["returns"])
    assert ticket.playbook_version_id is None
    ticket_services.ticket_update(ticket=ticket, actor=Actor.for_user(cast.agent), ticket_type=playbook_setup.type)
    assert fresh(ticket).playbook_version_id == playbook_setup.version.pk


# --- checklist and the solve guard ---------------------------------------------------------


def test_ticks_go_on_the_timeline_and_unticks_too(cast, playbook_setup, clean_cache):
    ticket = make_ticket(cast, ticket_type=playbook_setup.type)
    key = playbook_setup.version.checklist[0]["key"]
    assert services.checklist_tick(ticket=ticket, item_key=key, actor=Actor.for_user(cast.agent))
    assert not services.checklist_tick(ticket=ticket, item_key=key, actor=Actor.for_user(cast.agent))  # idempotent
    services.checklist_tick(ticket=ticket, item_key=key, actor=Actor.for_user(cast.agent), ticked=False)
    events = list(
        TicketEvent.objects.filter(ticket=ticket, kind="checklist").order_by("id").values_list("data", flat=True)
    )
    assert events == [{"item": "Check tracking", "ticked": True}, {"item": "Check tracking", "ticked": False}]
    with pytest.raises(ValidationError):
        services.checklist_tick(ticket=ticket, item_key="nope", actor=Actor.for_user(cast.agent))


def test_solving_is_refused_naming_what_is_missing(cast, playbook_setup, clean_cache):
    ticket = make_ticket(cast, ticket_type=playbook_setup.type, assignee=cast.agent)
    before = snapshot(ticket)
    with pytest.raises(ValidationError) as exc:
        ticket_services.ticket_set_status(ticket=ticket, status=Status.SOLVED, actor=Actor.for_user(cast.agent))
    message = exc.value.message_dict["status"][0]
    assert "tick “Check tracking”" in message and "add a tag" in message
    assert "Offer a discount" not in message  # optional items never block
    assert snapshot(ticket) == before
    services.checklist_tick(
        ticket=ticket, item_key=playbook_setup.version.checklist[0]["key"], actor=Actor.for_user(cast.agent)
    )
    ticket_services.ticket_update(ticket=ticket, actor=Actor.for_user(cast.agent), tags=["tracking"])
    ticket_services.ticket_set_status(ticket=fresh(ticket), status=Status.SOLVED, actor=Actor.for_user(cast.agent))
    assert fresh(ticket).status == Status.SOLVED


def test_solve_guard_holds_in_the_api_the_ui_and_bulk_actions(cast, playbook_setup, api, agent_client, clean_cache):
    ticket = make_ticket(cast, ticket_type=playbook_setup.type, assignee=cast.agent)
    before = snapshot(ticket)
    # API
    response = api.patch(f"/api/v1/tickets/{ticket.pk}/", {"status": "solved"}, format="json")
    assert response.status_code == 400
    assert "Check tracking" in response.json()["error"]["fields"]["status"][0]
    # UI: the status control in the sidebar
    url = reverse("ticket_update", kwargs={"tenant_slug": "acme", "number": ticket.number})
    response = agent_client.post(url, {"status": "solved"}, follow=True)
    assert "Check tracking" in response.content.decode()
    # UI: reply and solve
    reply_url = reverse("ticket_reply", kwargs={"tenant_slug": "acme", "number": ticket.number})
    last = ticket.messages.order_by("-id").first()
    response = agent_client.post(
        reply_url, {"body": "Done!", "kind": "reply", "status": "solved", "last_seen": last.pk}
    )
    assert response.status_code == 400
    assert "Check tracking" in response.content.decode()
    # Bulk action from the queue
    bulk = reverse("queue_bulk", kwargs={"tenant_slug": "acme"})
    response = agent_client.post(bulk, {"ids": [ticket.pk], "action": "status", "value": "solved"}, follow=True)
    assert "Check tracking" in response.content.decode()
    assert snapshot(ticket) == before


# --- pages -------------------------------------------------------------------------------


def test_index_lists_types_with_gaps_in_fixed_queries(cast, playbook_setup, types, agent_client):
    url = reverse("playbooks", kwargs={"tenant_slug": "acme"})
    agent_client.get(url)  # warm the session/membership caches
    with CaptureQueriesContext(connection) as queries:
        response = agent_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Shipping" in html and "Logistics" in html and "No owner" in html  # Returns has no playbook
    count = len(queries)
    for i in range(5):
        services.playbook_save(
            tenant=cast.tenant,
            ticket_type=ticket_services_type(cast, f"t{i}"),
            actor=Actor.system(),
            owner_team=playbook_setup.team,
            escalation_team=playbook_setup.team,
            escalation_due_minutes=60,
        )
    with CaptureQueriesContext(connection) as queries:
        agent_client.get(url)
    assert len(queries) == count  # no query per row


def ticket_services_type(cast, slug):
    from tickets.models import TicketType

    return TicketType.objects.create(tenant=cast.tenant, name=slug.upper(), slug=slug)


def test_lead_edits_the_playbook_in_the_browser_form(cast, playbook_setup, lead_client, clean_cache):
    url = reverse("playbook_edit", kwargs={"tenant_slug": "acme", "type_slug": "shipping"})
    page = lead_client.get(url)
    assert page.status_code == 200
    assert "Check tracking" in page.content.decode()
    keys = [i["key"] for i in playbook_setup.version.checklist]
    response = lead_client.post(
        url,
        {
            "owner_team": playbook_setup.team.pk,
            "item_row": [keys[1], keys[0], "new1"],
            "item_key": [keys[1], keys[0], ""],
            "item_text": ["Offer a discount", "Check tracking", "Confirm the address"],
            "item_required": [keys[0], "new1"],
            "replies": [playbook_setup.reply.pk],
            "required_fields": ["order"],
            "escalation_team": playbook_setup.team.pk,
            "escalation_due_hours": "1.5",
            "escalation_summary": "Please chase {{ order.name }}",
            "note": "New step",
        },
    )
    assert response.status_code == 302
    version = Playbook.objects.get(tenant=cast.tenant, ticket_type=playbook_setup.type).current_version
    assert version.number == 2
    assert [(i["text"], i["required"]) for i in version.checklist] == [
        ("Offer a discount", False),
        ("Check tracking", True),
        ("Confirm the address", True),
    ]
    assert version.checklist[1]["key"] == keys[0]
    assert version.escalation_due_minutes == 90 and version.required_fields == ["order"]


def test_editor_shows_template_errors_with_the_line_and_saves_nothing(cast, playbook_setup, lead_client):
    url = reverse("playbook_edit", kwargs={"tenant_slug": "acme", "type_slug": "shipping"})
    response = lead_client.post(
        url,
        {"escalation_team": playbook_setup.team.pk, "escalation_due_hours": "2", "escalation_summary": "x\n{{ y }}"},
    )
    assert response.status_code == 400
    assert "Line 2: unknown variable “y”" in response.content.decode()
    assert PlaybookVersion.objects.filter(tenant=cast.tenant).count() == 1


def test_live_preview_renders_against_a_real_ticket(cast, playbook_setup, lead_client):
    shop = make_connection(cast.tenant, None)
    ticket = make_ticket(cast, ticket_type=playbook_setup.type, name="Ann Lee")
    order = make_order(shop, external_id="1", number="1042", customer=ticket.customer)
    Ticket.objects.filter(pk=ticket.pk).update(order=order)
    url = reverse("playbook_preview", kwargs={"tenant_slug": "acme"})
    response = lead_client.post(
        url,
        {"text": "Hi {{ customer.first_name }}: {{ order.name }} {{ fulfillment.carrier }}", "ticket": ticket.number},
    )
    html = response.content.decode()
    assert "Hi Ann: #1042" in html and "fulfillment.carrier" in html
    response = lead_client.post(url, {"text": "{{ nope }}", "ticket": ticket.number})
    assert "unknown variable" in response.content.decode()
    other = make_ticket(cast, tenant=cast.other_tenant, email="o@example.com")
    response = lead_client.post(url, {"text": "Hi", "ticket": other.number + 100000})
    assert "There is no ticket" in response.content.decode()


def test_template_editor_creates_a_reply_with_two_languages(cast, lead_client):
    url = reverse("playbook_template_new", kwargs={"tenant_slug": "acme"}) + "?kind=reply"
    assert lead_client.get(url).status_code == 200
    response = lead_client.post(
        url,
        {"kind": "reply", "name": "Returns", "is_active": "on", "en-body": "Send it back", "de-body": "Zurück"},
    )
    assert response.status_code == 302
    template = ReplyTemplate.objects.get(tenant=cast.tenant, name="Returns")
    assert sorted(template.variants.values_list("language", flat=True)) == ["de", "en"]
    bad = lead_client.post(url, {"kind": "reply", "name": "Bad", "en-body": "{% if %}"})
    assert bad.status_code == 400 and "Line 1" in bad.content.decode()


def test_coverage_lists_gaps_and_unused_replies_and_tags(cast, playbook_setup, types, clean_cache):
    old = timezone_now() - timedelta(days=60)
    unused = services.template_save(
        tenant=cast.tenant, actor=Actor.system(), name="Old promo", variants={"en": {"body": "Promo"}}
    )
    ReplyTemplate.objects.filter(pk__in=[unused.pk, playbook_setup.reply.pk]).update(created_at=old)
    services.template_used(playbook_setup.reply)
    Tag.objects.create(tenant=cast.tenant, name="forgotten")
    make_ticket(cast, tags=("fresh",))
    report = selectors.coverage(cast.tenant)
    assert types["returns"] in report.missing_owner and types["shipping"] not in report.missing_owner
    assert [r.name for r in report.unused_replies] == ["Old promo"]
    assert [t.name for t in report.unused_tags] == ["forgotten"]


def timezone_now():
    from django.utils import timezone

    return timezone.now()


def test_version_figures_count_tickets_handling_time_and_reopens(cast, playbook_setup, clean_cache):
    actor = Actor.for_user(cast.agent)
    key = playbook_setup.version.checklist[0]["key"]
    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    tickets = [
        make_ticket(cast, ticket_type=playbook_setup.type, email=f"c{i}@example.com", at=start) for i in range(3)
    ]
    for i, ticket in enumerate(tickets[:2]):
        services.checklist_tick(ticket=ticket, item_key=key, actor=actor)
        ticket_services.ticket_update(ticket=ticket, actor=actor, tags=["x"])
        ticket_services.ticket_set_status(
            ticket=fresh(ticket), status=Status.SOLVED, actor=actor, at=start + timedelta(hours=2 + 2 * i)
        )
    ticket_services.ticket_set_status(ticket=fresh(tickets[0]), status=Status.OPEN, actor=actor)
    playbook = Playbook.objects.get(tenant=cast.tenant, ticket_type=playbook_setup.type)
    (figures,) = selectors.version_figures(playbook)
    # Three tickets; two solved (after 2 h and 4 h); one of them reopened, so only the 4-hour
    # one is solved now: median 4.0 h, reopen rate 1 of 2.
    assert (figures.tickets, figures.solved, figures.reopened) == (3, 2, 1)
    assert figures.median_hours == 4.0
    assert figures.reopen_rate == 50.0


def test_ticket_panel_ticks_and_inserts_a_filled_reply(cast, playbook_setup, agent_client, clean_cache):
    ticket = make_ticket(cast, ticket_type=playbook_setup.type, name="Ann Lee")
    panel = reverse("ticket_playbook", kwargs={"tenant_slug": "acme", "number": ticket.number})
    html = agent_client.get(panel).content.decode()
    assert "Check tracking" in html and "Before solving" in html and "Tracking" in html
    tick = reverse("ticket_checklist", kwargs={"tenant_slug": "acme", "number": ticket.number})
    key = playbook_setup.version.checklist[0]["key"]
    response = agent_client.post(tick, {"item": key, "ticked": "1"}, **HTMX)
    assert response.status_code == 200 and "1/2 done" in response.content.decode()
    assert ChecklistTick.objects.filter(ticket=ticket, item_key=key).exists()
    insert = reverse(
        "ticket_reply_insert", kwargs={"tenant_slug": "acme", "number": ticket.number, "pk": playbook_setup.reply.pk}
    )
    html = agent_client.get(insert).content.decode()
    assert "Hi Ann, it ships with ." in html and "fulfillment.carrier" in html  # the gap is flagged
    reply_url = reverse("ticket_reply", kwargs={"tenant_slug": "acme", "number": ticket.number})
    last = ticket.messages.order_by("-id").first()
    agent_client.post(
        reply_url, {"body": "Hi Ann", "kind": "reply", "last_seen": last.pk, "template": playbook_setup.reply.pk}
    )
    assert ReplyTemplate.objects.get(pk=playbook_setup.reply.pk).use_count == 1


def test_agents_cannot_edit_and_outsiders_get_404_everywhere(
    cast, playbook_setup, agent_client, outsider_client, clean_cache
):
    ticket = make_ticket(cast, ticket_type=playbook_setup.type)
    edit = reverse("playbook_edit", kwargs={"tenant_slug": "acme", "type_slug": "shipping"})
    assert agent_client.get(edit).status_code == 403
    assert (
        agent_client.post(reverse("playbook_preview", kwargs={"tenant_slug": "acme"}), {"text": "x"}).status_code == 403
    )
    urls = [
        reverse("playbooks", kwargs={"tenant_slug": "acme"}),
        reverse("playbook_coverage", kwargs={"tenant_slug": "acme"}),
        reverse("playbook_templates", kwargs={"tenant_slug": "acme"}),
        edit,
        reverse("playbook_template_edit", kwargs={"tenant_slug": "acme", "pk": playbook_setup.reply.pk}),
        reverse("ticket_playbook", kwargs={"tenant_slug": "acme", "number": ticket.number}),
        reverse(
            "ticket_reply_insert",
            kwargs={"tenant_slug": "acme", "number": ticket.number, "pk": playbook_setup.reply.pk},
        ),
    ]
    for url in urls:
        assert outsider_client.get(url).status_code == 404, url
    tick = reverse("ticket_checklist", kwargs={"tenant_slug": "acme", "number": ticket.number})
    assert outsider_client.post(tick, {"item": playbook_setup.version.checklist[0]["key"]}).status_code == 404
    assert not ChecklistTick.objects.exists()
    # Their own workspace does not reach our objects either.
    theirs = reverse("playbook_template_edit", kwargs={"tenant_slug": "globex", "pk": playbook_setup.reply.pk})
    assert outsider_client.get(theirs).status_code == 404
    their_ticket = reverse("ticket_playbook", kwargs={"tenant_slug": "globex", "number": ticket.number + 10_000})
    assert outsider_client.get(their_ticket).status_code == 404


# --- API ---------------------------------------------------------------------------------


def test_api_lists_playbooks_and_saves_a_version(cast, playbook_setup, api, outsider_api):
    listed = api.get("/api/v1/playbooks/").json()["results"]
    assert [p["ticket_type"] for p in listed] == ["shipping"]
    assert listed[0]["version"]["checklist"][0]["text"] == "Check tracking"
    response = api.post(
        "/api/v1/playbooks/",
        {
            "ticket_type": "returns",
            "owner_team": playbook_setup.team.pk,
            "checklist": [{"text": "Check the return window", "required": True}],
            "escalation_team": playbook_setup.team.pk,
            "escalation_due_minutes": 120,
            "escalation_summary": "Return for {{ order.name }}",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["version"]["number"] == 1
    bad = api.post("/api/v1/playbooks/", {"ticket_type": "returns", "escalation_summary": "{{ x }}"}, format="json")
    assert bad.status_code == 400 and "escalation_summary" in bad.json()["error"]["fields"]
    assert api.post("/api/v1/playbooks/", {"ticket_type": "hats"}, format="json").status_code == 400
    pk = listed[0]["id"]
    assert outsider_api.get(f"/api/v1/playbooks/{pk}/").status_code == 404
    assert outsider_api.get("/api/v1/playbooks/").json()["results"] == []


def test_api_checklist_ticks_and_reports_what_blocks_solving(cast, playbook_setup, api, outsider_api, clean_cache):
    ticket = make_ticket(cast, ticket_type=playbook_setup.type)
    url = f"/api/v1/tickets/{ticket.pk}/checklist/"
    state = api.get(url).json()
    assert state["can_solve"] is False and len(state["items"]) == 2
    key = state["items"][0]["key"]
    state = api.post(url, {"item": key}, format="json").json()
    assert state["items"][0]["ticked"] is True
    assert api.post(url, {"item": "nope"}, format="json").status_code == 400
    assert outsider_api.get(url).status_code == 404
    assert outsider_api.post(url, {"item": key}, format="json").status_code == 404


def test_ticks_read_as_sentences_on_the_ticket_timeline(cast, playbook_setup, agent_client, clean_cache):
    ticket = make_ticket(cast, ticket_type=playbook_setup.type)
    services.checklist_tick(
        ticket=ticket, item_key=playbook_setup.version.checklist[0]["key"], actor=Actor.for_user(cast.agent)
    )
    page = agent_client.get(reverse("ticket_detail", kwargs={"tenant_slug": "acme", "number": ticket.number}))
    assert "<strong>agent@acme.test</strong> ticked “Check tracking”" in page.content.decode()


def test_the_timeline_card_refreshes_after_a_tick(cast, playbook_setup, agent_client, outsider_client, clean_cache):
    ticket = make_ticket(cast, ticket_type=playbook_setup.type)
    tick = reverse("ticket_checklist", kwargs={"tenant_slug": "acme", "number": ticket.number})
    response = agent_client.post(tick, {"item": playbook_setup.version.checklist[0]["key"]}, **HTMX)
    assert response["HX-Trigger"] == "timeline-changed"  # the timeline card listens for it
    timeline = reverse("ticket_timeline", kwargs={"tenant_slug": "acme", "number": ticket.number})
    html = agent_client.get(timeline, **HTMX).content.decode()
    assert html.lstrip().startswith('<ol class="timeline"') and "ticked “Check tracking”" in html
    assert outsider_client.get(timeline).status_code == 404
