"""The public CSAT survey (/csat/<token>/), the csat_record service and the CSAT report."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from helpdesk.services import Actor
from tests.tickets_fixtures import event_kinds, make_ticket
from tickets import services
from tickets.csat import SALT, survey_token
from tickets.models import CsatResponse, Status, TicketEvent
from tickets.selectors_escalations import csat_summary
from tickets.services_csat import csat_record

pytest_plugins = ["tests.tickets_fixtures"]
pytestmark = pytest.mark.usefixtures("clean_cache")


@pytest.fixture
def solved(cast, types):
    ticket = make_ticket(cast, subject="Socks too small", ticket_type=types["returns"], assignee=cast.agent)
    services.ticket_set_status(ticket=ticket, status=Status.SOLVED, actor=Actor.for_user(cast.agent))
    return ticket


def url_for(ticket) -> str:
    return reverse("csat_survey", args=[survey_token(ticket.tenant_id, ticket.pk)])


def test_the_survey_shows_the_store_and_subject_and_preselects_the_linked_rating(client, solved):
    response = client.get(url_for(solved) + "?rating=4")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Acme Socks" in html and "Socks too small" in html
    assert 'value="4" id="rating-4" checked' in html
    assert 'value="5" id="rating-5" checked' not in html
    # An odd rating in the link preselects nothing.
    assert " checked " not in client.get(url_for(solved) + "?rating=9").content.decode()


def test_answering_records_the_rating_with_the_agent_and_type_frozen_and_thanks(client, cast, types, solved):
    response = client.post(url_for(solved), {"rating": "5", "comment": "Quick and kind"})
    assert response.status_code == 200
    assert "Thank you" in response.content.decode()
    row = CsatResponse.objects.get()
    assert (row.rating, row.comment, row.agent, row.ticket_type) == (5, "Quick and kind", cast.agent, types["returns"])
    assert event_kinds(solved).count("csat") == 1
    # Later changes to the ticket do not move the frozen agent.
    services.ticket_assign(ticket=solved, assignee=cast.lead, actor=Actor.system())
    row.refresh_from_db()
    assert row.agent == cast.agent


def test_a_second_answer_updates_the_one_response(client, solved):
    client.post(url_for(solved), {"rating": "2", "comment": "Slow"})
    page = client.get(url_for(solved))
    assert "You rated this 2 out of 5" in page.content.decode()
    response = client.post(url_for(solved), {"rating": "4", "comment": "Sorted in the end"})
    assert "updated your rating to 4" in response.content.decode()
    assert CsatResponse.objects.count() == 1
    assert CsatResponse.objects.get().rating == 4
    last = TicketEvent.objects.filter(ticket=solved, kind="csat").latest("id")
    assert last.data["updated"] is True


def test_the_service_refuses_a_bad_rating_and_an_unsolved_ticket(cast, solved):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        csat_record(ticket=solved, rating=6)
    assert "rating" in caught.value.message_dict
    open_ticket = make_ticket(cast, subject="Still open", email="o@example.com")
    with pytest.raises(ValidationError) as caught:
        csat_record(ticket=open_ticket, rating=3)
    assert "ticket" in caught.value.message_dict
    assert not CsatResponse.objects.exists()


@pytest.mark.parametrize("rating", ["", "0", "6", "five"])
def test_a_bad_rating_is_a_form_error_and_records_nothing(client, solved, rating):
    response = client.post(url_for(solved), {"rating": rating})
    assert response.status_code == 400
    assert "Choose a rating from 1 to 5." in response.content.decode()
    assert not CsatResponse.objects.exists()


def test_a_tampered_token_is_a_404_page_in_the_product_look_and_records_nothing(client, solved):
    token = survey_token(solved.tenant_id, solved.pk)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for method in ("get", "post"):
        response = getattr(client, method)(reverse("csat_survey", args=[tampered]), {"rating": "1"})
        assert response.status_code == 404
        assert "This survey link doesn’t work" in response.content.decode()
        assert "brand-mark" in response.content.decode()
    assert not CsatResponse.objects.exists()


def test_a_token_signed_for_something_else_is_refused(client, solved):
    other = signing.dumps({"t": solved.tenant_id, "k": solved.pk}, salt="another.purpose", compress=True)
    assert client.get(reverse("csat_survey", args=[other])).status_code == 404
    wrong_shape = signing.dumps(["x"], salt=SALT)
    assert client.get(reverse("csat_survey", args=[wrong_shape])).status_code == 404


def test_an_expired_token_is_a_404_and_records_nothing(client, solved):
    url = url_for(solved)
    with time_machine.travel(timezone.now() + timedelta(days=31)):
        response = client.post(url, {"rating": "5"})
    assert response.status_code == 404
    assert not CsatResponse.objects.exists()


def test_a_token_for_another_tenants_ticket_id_finds_nothing(client, cast, solved):
    # Signed by us, but naming tenant B with tenant A's ticket id: no such ticket there.
    url = reverse("csat_survey", args=[survey_token(cast.other_tenant.pk, solved.pk)])
    assert client.post(url, {"rating": "5"}).status_code == 404
    assert not CsatResponse.objects.exists()


def test_a_ticket_that_is_not_solved_says_so_and_records_nothing(client, cast):
    ticket = make_ticket(cast, subject="Still open", email="o@example.com")
    url = url_for(ticket)
    for method in ("get", "post"):
        response = getattr(client, method)(url, {"rating": "5"})
        assert response.status_code == 200
        assert "Your request is still open" in response.content.decode()
    assert not CsatResponse.objects.exists()


def test_the_ticket_page_panel_shows_the_rating(agent_client, client, solved):
    client.post(url_for(solved), {"rating": "3", "comment": "Fine"})
    panel = agent_client.get(reverse("ticket_escalations", args=["acme", solved.number]), HTTP_HX_REQUEST="true")
    html = panel.content.decode()
    assert "Customer rating" in html and "3/5" in html and "Fine" in html
    timeline = agent_client.get(reverse("ticket_detail", args=["acme", solved.number])).content.decode()
    assert "Customer rated <strong>3/5</strong>" in timeline


def test_csat_summary_counts_per_agent_and_per_type(cast, types):
    rows = []
    for i, (agent, ticket_type, rating) in enumerate(
        [
            (cast.agent, types["returns"], 5),
            (cast.agent, types["returns"], 4),
            (cast.agent, types["shipping"], 2),
            (cast.lead, types["shipping"], 5),
            (None, None, 1),
        ]
    ):
        ticket = make_ticket(cast, subject=f"T{i}", email=f"c{i}@example.com", ticket_type=ticket_type, assignee=agent)
        services.ticket_set_status(ticket=ticket, status=Status.SOLVED, actor=Actor.system())
        rows.append(csat_record(ticket=ticket, rating=rating))
    other = make_ticket(cast, tenant=cast.other_tenant, subject="Hat", email="h@example.com")
    services.ticket_set_status(ticket=other, status=Status.SOLVED, actor=Actor.system())
    csat_record(ticket=other, rating=1)
    summary = csat_summary(cast.tenant, timezone.now() - timedelta(days=1))
    assert summary.overall.count == 5
    assert summary.overall.average == 3.4
    assert summary.overall.score == 60
    by_agent = {r.label: (r.count, r.average, r.score) for r in summary.by_agent}
    assert by_agent == {"Ada Agent": (3, 3.67, 67), "Lee Lead": (1, 5.0, 100), "Unassigned": (1, 1.0, 0)}
    by_type = {r.label: (r.count, r.average) for r in summary.by_type}
    assert by_type == {"Returns": (2, 4.5), "Shipping": (2, 3.5), "No type": (1, 1.0)}
    assert summary.distribution == {1: 1, 2: 1, 3: 0, 4: 1, 5: 2}
    assert csat_summary(cast.tenant, timezone.now() + timedelta(days=1)).overall.count == 0


def test_the_csat_report_is_for_leads_and_reports_opens_on_it(lead_client, agent_client, client, solved):
    client.post(url_for(solved), {"rating": "5", "comment": "Great"})
    home = lead_client.get(reverse("reports", args=["acme"]))
    assert home.status_code == 302 and home["Location"] == reverse("reports_csat", args=["acme"])
    page = lead_client.get(reverse("reports_csat", args=["acme"]), {"days": "7"})
    html = page.content.decode()
    assert page.status_code == 200
    assert "Ada Agent" in html and "Returns" in html and "100%" in html and "Great" in html
    assert lead_client.get(reverse("reports_csat", args=["acme"]), {"days": "nonsense"}).status_code == 200
    assert agent_client.get(reverse("reports_csat", args=["acme"])).status_code == 403
    assert agent_client.get(reverse("reports", args=["acme"])).status_code == 200


def test_the_csat_report_query_count_is_flat(lead_client, cast, types):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert lead_client.get(reverse("reports_csat", args=["acme"])).status_code == 200
        return len(ctx.captured_queries)

    def rate(i: int) -> None:
        ticket = make_ticket(cast, subject=f"T{i}", email=f"c{i}@example.com", assignee=cast.agent)
        services.ticket_set_status(ticket=ticket, status=Status.SOLVED, actor=Actor.system())
        csat_record(ticket=ticket, rating=1 + i % 5, comment=f"c{i}")

    rate(0)
    count()  # warm the per-tenant caches the page shell reads
    few = count()
    for i in range(1, 8):
        rate(i)
    assert count() == few


def test_the_outsider_gets_404_on_the_csat_report(outsider_client):
    assert outsider_client.get(reverse("reports_csat", args=["acme"])).status_code == 404
    assert outsider_client.get(reverse("reports", args=["acme"])).status_code == 404
