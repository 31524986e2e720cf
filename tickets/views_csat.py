"""The public CSAT survey page: the customer rates a solved ticket from a signed link.

No login: the signed token names the tenant and ticket. A tampered or expired token is a
404 page in the product's look, and nothing is recorded.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from helpdesk.tenancy import tenant_context
from tickets import csat
from tickets.forms_escalations import CsatForm
from tickets.models import CsatResponse, Ticket
from tickets.services_csat import RATEABLE, clean_rating, csat_record

TEMPLATE = "tickets/csat_survey.html"


def _gone(request: HttpRequest) -> HttpResponse:
    return render(request, TEMPLATE, {"state": "invalid"}, status=404)


@require_http_methods(["GET", "POST"])
def csat_survey(request: HttpRequest, token: str) -> HttpResponse:
    found = csat.read_token(token)
    if found is None:
        return _gone(request)
    tenant_id, ticket_id = found
    with tenant_context(tenant_id):
        ticket = Ticket.objects.select_related("tenant").filter(tenant_id=tenant_id, pk=ticket_id).first()
        if ticket is None:
            return _gone(request)
        context: dict = {"ticket": ticket, "store": ticket.tenant, "state": "form"}
        if ticket.status not in RATEABLE:
            context["state"] = "not_solved"
            return render(request, TEMPLATE, context)
        existing = CsatResponse.objects.filter(tenant_id=tenant_id, ticket=ticket).first()
        if request.method == "POST":
            form = CsatForm(request.POST)
            if form.is_valid():
                try:
                    csat_record(ticket=ticket, rating=form.cleaned_data["rating"], comment=form.cleaned_data["comment"])
                except ValidationError as exc:
                    form.add_error(None, exc.messages)
                else:
                    context.update(state="thanks", rating=form.cleaned_data["rating"], updated=existing is not None)
                    return render(request, TEMPLATE, context)
            context.update(form=form, existing=existing)
            return render(request, TEMPLATE, context, status=400)
        preselect = clean_rating(request.GET.get("rating"))
        initial = {
            "rating": str(preselect or (existing.rating if existing else "")),
            "comment": existing.comment if existing else "",
        }
        context.update(form=CsatForm(initial=initial), existing=existing)
        return render(request, TEMPLATE, context)
