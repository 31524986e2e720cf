"""Escalation pages: the ticket page's panel and Escalate form, the team queue, the CSAT report.

Thin: resolve the tenant's objects (404 for foreign and missing alike), call a service or a
selector, render. htmx requests get the named partial, others the full page.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from helpdesk.models import Role
from helpdesk.services import actor_from_request
from helpdesk.tenancy import TenantHttpRequest
from helpdesk.views.decorators import role_required
from tickets import selectors, services_escalations
from tickets import selectors_escalations as esc_selectors
from tickets.forms_escalations import AnswerForm, EscalationForm
from tickets.models import Escalation, Status, Ticket

PANEL = "tickets/_escalations.html#panel"
FORM = "tickets/_escalations.html#form"
ROW = "tickets/escalations.html#row"
QUEUE_SHORTCUTS = [
    ("j / k", "Next / previous escalation"),
    ("a", "Acknowledge the selected one"),
    ("Enter", "Open its ticket"),
]


def _ticket_or_404(request: TenantHttpRequest, number: int) -> Ticket:
    try:
        return selectors.ticket_for_page(tenant=request.tenant, number=number)
    except Ticket.DoesNotExist as exc:
        raise Http404("No such ticket") from exc


def _escalation_or_404(request: TenantHttpRequest, pk: int) -> Escalation:
    try:
        return esc_selectors.escalation_for(tenant=request.tenant, pk=pk)
    except Escalation.DoesNotExist as exc:
        raise Http404("No such escalation") from exc


def _panel_context(request: TenantHttpRequest, ticket: Ticket, **extra) -> dict:
    return {
        "ticket": ticket,
        "escalations": esc_selectors.ticket_escalations(ticket),
        "csat": esc_selectors.ticket_csat(ticket),
        "now": timezone.now(),
        **extra,
    }


@require_GET
def ticket_escalations(request: TenantHttpRequest, tenant_slug: str, number: int) -> HttpResponse:
    """The ticket page's Escalations panel (loaded lazily by htmx), or a page without JavaScript."""
    ticket = _ticket_or_404(request, number)
    context = _panel_context(request, ticket)
    if request.htmx:
        return render(request, PANEL, context)
    return render(request, "tickets/escalation_page.html", context)


def _form(request: TenantHttpRequest, ticket: Ticket, data=None) -> tuple[EscalationForm, services_escalations.Draft]:
    draft = services_escalations.escalation_draft(ticket, request.user)
    teams = esc_selectors.teams(request.tenant)
    form = EscalationForm(data, teams=teams, people=selectors.agents(request.tenant))
    if data is None:
        chosen = request.GET.get("team", "")
        team = form.teams.get(chosen) or draft.team
        due = draft.due_at
        if team is not None and team != draft.team:
            due = services_escalations.due_after(team, timezone.now(), draft.due_minutes)
        if team is not None and due is None:
            due = services_escalations.due_after(team, timezone.now(), draft.due_minutes)
        form.initial = {
            "team": str(team.pk) if team else "",
            "owner": request.GET.get("owner", ""),
            "summary": request.GET.get("summary", draft.summary),
            "due_at": timezone.localtime(due).replace(second=0, microsecond=0) if due else None,
        }
    return form, draft


@require_http_methods(["GET", "POST"])
def ticket_escalate(request: TenantHttpRequest, tenant_slug: str, number: int) -> HttpResponse:
    """The one-step Escalate form: prefilled from the playbook path; POST escalates."""
    ticket = _ticket_or_404(request, number)
    if request.method == "GET":
        form, draft = _form(request, ticket)
        context = _panel_context(request, ticket, form=form, draft=draft, show_form=True)
        return render(request, FORM if request.htmx else "tickets/escalation_page.html", context)
    form, draft = _form(request, ticket, request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services_escalations.escalation_create(
                ticket=ticket,
                actor=actor_from_request(request),
                summary=data["summary"],
                team=data["team"],
                owner=data["owner"],
                due_at=data["due_at"],
            )
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errs)
        else:
            text = f"Escalated to {data['team'].name}."
            if request.htmx:
                return trigger_client_event(
                    render(request, PANEL, _panel_context(request, ticket, flash=text)), "timeline-changed"
                )
            messages.success(request, text)
            return redirect("ticket_detail", tenant_slug=tenant_slug, number=number)
    context = _panel_context(request, ticket, form=form, draft=draft, show_form=True)
    # htmx swaps 2xx answers only: the form with its errors comes back as 200 there.
    if request.htmx:
        return render(request, FORM, context)
    return render(request, "tickets/escalation_page.html", context, status=400)


ACTIONS = {
    "acknowledge": (services_escalations.escalation_acknowledge, "Acknowledged."),
    "answer": (services_escalations.escalation_answer, "Answer sent; it is on the ticket as an internal note."),
    "resolve": (services_escalations.escalation_resolve, "Escalation resolved."),
    "cancel": (services_escalations.escalation_cancel, "Escalation cancelled."),
}


def _back(request: TenantHttpRequest, tenant_slug: str) -> str:
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=False):
        return back
    return reverse("escalations", kwargs={"tenant_slug": tenant_slug})


@require_POST
def escalation_action(request: TenantHttpRequest, tenant_slug: str, pk: int, verb: str) -> HttpResponse:
    """Acknowledge / answer / resolve / cancel, from the team queue or the ticket panel."""
    esc = _escalation_or_404(request, pk)
    if verb not in ACTIONS:
        raise Http404("No such action")
    service, done = ACTIONS[verb]
    actor = actor_from_request(request)
    error = ""
    answer_form = AnswerForm(request.POST) if verb == "answer" else None
    try:
        if answer_form is not None:
            if not answer_form.is_valid():
                raise ValidationError({"answer": answer_form.errors["answer"]})
            service(escalation=esc, actor=actor, answer=answer_form.cleaned_data["answer"])  # type: ignore[operator]
        else:
            service(escalation=esc, actor=actor)  # type: ignore[operator]
    except ValidationError as exc:
        error = " ".join(exc.messages)
    if request.htmx:
        if request.POST.get("from") == "ticket":
            ticket = _ticket_or_404(request, esc.ticket.number)
            return trigger_client_event(
                render(request, PANEL, _panel_context(request, ticket, flash=error or done, flash_error=bool(error))),
                "timeline-changed",
            )
        row = _escalation_or_404(request, pk)
        return render(
            request,
            ROW,
            {
                "e": row,
                "now": timezone.now(),
                "flash": error or done,
                "flash_error": bool(error),
                "answer": answer_form,
            },
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, done)
    return redirect(_back(request, tenant_slug))


@require_GET
def escalations(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """The escalations queue: tabs per team (and mine), due order with overdue first."""
    tenant = request.tenant
    teams = esc_selectors.teams(tenant)
    raw_team = request.GET.get("team", "")
    status = request.GET.get("status", "active")
    if status not in esc_selectors.STATUS_FILTERS:
        status = "active"
    team = next((t for t in teams if str(t.pk) == raw_team), None)
    if raw_team == "mine" or team is not None:
        tab = raw_team
    else:
        # Default: the team the person leads or belongs to, else everything.
        tab = ""
    rows = esc_selectors.escalation_queue(
        tenant=tenant,
        team_id=team.pk if team else None,
        owner=request.user if tab == "mine" else None,
        status=status,
    )
    counts = esc_selectors.escalation_counts(tenant=tenant, user=request.user)
    team_tabs = [(str(t.pk), t.name, *counts.by_team.get(t.pk, (0, 0))) for t in teams]
    if tab == "mine":
        title = "Mine"
    elif team is not None:
        title = team.name
    else:
        title = "All teams"
    return render(
        request,
        "tickets/escalations.html",
        {
            "rows": rows,
            "tab": tab,
            "title": title,
            "status": status,
            "statuses": [(k, label) for k, (label, _) in esc_selectors.STATUS_FILTERS.items()],
            "counts": counts,
            "team_tabs": team_tabs,
            "now": timezone.now(),
            "page_shortcuts": QUEUE_SHORTCUTS,
            "section": "escalations",
        },
    )


# --- reports -----------------------------------------------------------------------------------

PERIODS = {"7": "Last 7 days", "30": "Last 30 days", "90": "Last 90 days"}


@require_GET
def reports_home(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """Reports open on CSAT for leads; other reports are not built yet."""
    if request.membership.has_role(Role.LEAD):
        return redirect("reports_csat", tenant_slug=tenant_slug)
    return render(request, "workspace/section.html", {"section": "reports"})


@require_GET
@role_required(Role.LEAD)
def reports_csat(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """CSAT per agent and per ticket type, for leads."""
    period = request.GET.get("days", "30")
    if period not in PERIODS:
        period = "30"
    since = timezone.now() - timedelta(days=int(period))
    summary = esc_selectors.csat_summary(request.tenant, since)
    total = summary.overall.count or 1
    return render(
        request,
        "tickets/csat_report.html",
        {
            "summary": summary,
            "recent": esc_selectors.recent_csat(request.tenant, since),
            "period": period,
            "periods": PERIODS,
            "bars": [
                (n, summary.distribution[n], round(100 * summary.distribution[n] / total)) for n in range(5, 0, -1)
            ],
            "section": "reports",
            "rateable": [Status.SOLVED, Status.CLOSED],
        },
    )
