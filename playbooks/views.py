"""Playbook pages (leads edit, everyone reads) and the playbook panel on the ticket page.

Thin views: resolve the tenant's objects (404 for foreign or missing ids), parse with a
form, call playbooks.services, render.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from helpdesk.forms import apply_service_errors
from helpdesk.models import LANGUAGES, Role
from helpdesk.services import actor_from_request
from helpdesk.tenancy import TenantHttpRequest, get_for_tenant
from helpdesk.views.decorators import role_required
from playbooks import rendering, selectors, services
from playbooks.forms import PlaybookForm, TemplateForm, checklist_from_post
from playbooks.models import REQUIRED_FIELD_CHOICES, Playbook, ReplyTemplate
from tickets.models import Ticket, TicketType

PREVIEW_MAX_CHARS = 20_000


def _ticket(request: TenantHttpRequest, number: int) -> Ticket:
    return get_for_tenant(
        Ticket.objects.select_related("customer", "ticket_type", "order", "tenant"), request.tenant, number=number
    )


# --- section pages ---------------------------------------------------------------------


@require_GET
def index(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    rows = selectors.playbook_rows(request.tenant)
    reply_names = {t.pk: t.name for t in ReplyTemplate.objects.filter(tenant=request.tenant).only("pk", "name")}
    return render(
        request,
        "playbooks/index.html",
        {
            "active": "playbooks",
            "rows": rows,
            "reply_names": reply_names,
            "gap_count": sum(1 for r in rows if r.gaps and r.ticket_type.is_active),
            "can_edit": request.membership.has_role(Role.LEAD),
        },
    )


@role_required(Role.LEAD)
def playbook_edit(request: TenantHttpRequest, tenant_slug: str, type_slug: str) -> HttpResponse:
    tenant = request.tenant
    ticket_type = get_for_tenant(TicketType.objects.all(), tenant, slug=type_slug)
    playbook = Playbook.objects.filter(tenant=tenant, ticket_type=ticket_type).select_related("current_version").first()
    version = playbook.current_version if playbook else None
    checklist = version.checklist if version else []
    if request.method == "POST":
        form = PlaybookForm(request.POST, tenant=tenant)
        checklist = checklist_from_post(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            hours = data.get("escalation_due_hours")
            try:
                services.playbook_save(
                    tenant=tenant,
                    ticket_type=ticket_type,
                    actor=actor_from_request(request),
                    owner_team=data["owner_team"],
                    owner_user=data["owner_user"],
                    checklist=checklist,
                    replies=[int(r) for r in data["replies"]],
                    required_fields=data["required_fields"],
                    escalation_team=data["escalation_team"],
                    escalation_due_minutes=int(hours * 60) if hours else None,
                    escalation_summary=data["escalation_summary"],
                    note=data["note"],
                )
            except ValidationError as exc:
                apply_service_errors(form, exc)
            else:
                messages.success(request, f"Saved the {ticket_type.name} playbook as a new version.")
                return redirect("playbook_edit", tenant_slug=tenant_slug, type_slug=ticket_type.slug)
    else:
        form = PlaybookForm(initial=PlaybookForm.initial_from(version), tenant=tenant)
    # Approved replies in the playbook's order first, then the others.
    chosen = [str(r) for r in (version.replies if version else [])]
    choices: list[tuple[str, str]] = list(form.fields["replies"].choices)  # type: ignore[attr-defined]
    reply_choices = sorted(
        choices, key=lambda c: (c[0] not in chosen, chosen.index(c[0]) if c[0] in chosen else 0, c[1])
    )
    example = selectors.example_ticket(tenant, ticket_type)
    return render(
        request,
        "playbooks/edit.html",
        {
            "active": "playbooks",
            "wide": True,
            "ticket_type": ticket_type,
            "playbook": playbook,
            "version": version,
            "form": form,
            "checklist": checklist,
            "reply_choices": reply_choices,
            "figures": selectors.version_figures(playbook) if playbook else [],
            "example": example,
            "variables": rendering.sample_paths(),
        },
        status=400 if request.method == "POST" else 200,
    )


@role_required(Role.LEAD)
@require_POST
def preview(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """Render a draft template against a real ticket (and its order): the live preview."""
    text = request.POST.get("text", "")[:PREVIEW_MAX_CHARS]
    subject = request.POST.get("subject", "")[:500]
    number = request.POST.get("ticket", "").strip().lstrip("#")
    ticket = selectors.example_ticket(request.tenant, number=int(number)) if number.isdigit() else None
    context: dict[str, object] = {"ticket": ticket, "asked": number, "problem": None, "body": None, "subject": None}
    if ticket is not None:
        variables = rendering.ticket_context(ticket, agent=request.user)
        try:
            rendering.validate(text)
            if subject:
                rendering.validate(subject)
            context["body"] = rendering.render(text, variables)
            context["subject"] = rendering.render(subject, variables) if subject else None
        except rendering.TemplateProblem as problem:
            context["problem"] = str(problem)
    return render(request, "playbooks/_preview.html", context)


@require_GET
def coverage(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    return render(
        request,
        "playbooks/coverage.html",
        {"active": "coverage", "coverage": selectors.coverage(request.tenant), "days": selectors.UNUSED_DAYS},
    )


@require_GET
def templates_list(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    kind = request.GET.get("kind", ReplyTemplate.Kind.REPLY)
    if kind not in ReplyTemplate.Kind.values:
        kind = ReplyTemplate.Kind.REPLY
    return render(
        request,
        "playbooks/templates.html",
        {
            "active": "notices" if kind == ReplyTemplate.Kind.NOTICE else "replies",
            "kind": kind,
            "templates": selectors.reply_templates(request.tenant, kind),
            "languages": dict(LANGUAGES),
            "can_edit": request.membership.has_role(Role.LEAD),
        },
    )


@role_required(Role.LEAD)
def template_edit(request: TenantHttpRequest, tenant_slug: str, pk: int | None = None) -> HttpResponse:
    tenant = request.tenant
    template = get_for_tenant(ReplyTemplate.objects.prefetch_related("variants"), tenant, pk=pk) if pk else None
    kind = template.kind if template else request.GET.get("kind", request.POST.get("kind", ReplyTemplate.Kind.REPLY))
    if kind not in ReplyTemplate.Kind.values:
        kind = ReplyTemplate.Kind.REPLY
    if request.method == "POST":
        form = TemplateForm(request.POST)
        if form.is_valid():
            try:
                saved = services.template_save(
                    tenant=tenant,
                    actor=actor_from_request(request),
                    name=form.cleaned_data["name"],
                    variants=form.variants(),
                    kind=kind,
                    collection=form.cleaned_data["collection"],
                    template=template,
                    is_active=form.cleaned_data["is_active"],
                )
            except ValidationError as exc:
                apply_service_errors(form, exc)
            else:
                messages.success(request, f"Saved “{saved.name}”.")
                return redirect(f"{reverse('playbook_templates', args=[tenant_slug])}?kind={kind}")
    else:
        initial = TemplateForm.initial_from(template) if template else {"is_active": True}
        form = TemplateForm(initial=initial)
    written = {code for code, *_ in form.language_rows() if form[f"{code}-body"].value()}
    first_language = next((c for c, _ in LANGUAGES if c in written), tenant.default_language)
    return render(
        request,
        "playbooks/template_form.html",
        {
            "active": "notices" if kind == ReplyTemplate.Kind.NOTICE else "replies",
            "wide": True,
            "template": template,
            "kind": kind,
            "form": form,
            "written": written,
            "first_language": first_language,
            "example": selectors.example_ticket(tenant),
            "variables": rendering.sample_paths(),
        },
        status=400 if request.method == "POST" else 200,
    )


# --- on the ticket page -------------------------------------------------------------


def _panel_context(request: TenantHttpRequest, ticket: Ticket) -> dict:
    version = services.version_for(ticket)
    ticks = services.ticked_keys(ticket) if version else {}
    replies: list[ReplyTemplate] = []
    if version and version.replies:
        by_id = {
            t.pk: t for t in ReplyTemplate.objects.filter(tenant=request.tenant, pk__in=version.replies, is_active=True)
        }
        replies = [by_id[r] for r in version.replies if r in by_id]
    reply_sets = list(
        ReplyTemplate.objects.filter(tenant=request.tenant, kind=ReplyTemplate.Kind.REPLY, is_active=True)
        .exclude(pk__in=[r.pk for r in replies])
        .order_by("collection", "name")
    )
    items = [{**item, "tick": ticks.get(item["key"])} for item in (version.checklist if version else [])]
    return {
        "ticket": ticket,
        "version": version,
        "items": items,
        "done": sum(1 for i in items if i["tick"]),
        "replies": replies,
        "reply_sets": reply_sets,
        "required_labels": [REQUIRED_FIELD_CHOICES[f] for f in (version.required_fields if version else [])],
        "blockers": services.solve_blockers(ticket, version) if version else [],
    }


@require_GET
def ticket_panel(request: TenantHttpRequest, tenant_slug: str, number: int) -> HttpResponse:
    ticket = _ticket(request, number)
    return render(request, "playbooks/_ticket_panel.html", _panel_context(request, ticket))


@require_POST
def ticket_checklist(request: TenantHttpRequest, tenant_slug: str, number: int) -> HttpResponse:
    ticket = _ticket(request, number)
    key = request.POST.get("item", "")
    ticked = request.POST.get("ticked", "1") not in ("0", "", "false")
    status = 200
    try:
        services.checklist_tick(ticket=ticket, item_key=key, actor=actor_from_request(request), ticked=ticked)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        status = 400
    if request.htmx:
        response = render(request, "playbooks/_ticket_panel.html", _panel_context(request, ticket), status=status)
        response["HX-Trigger"] = "timeline-changed"
        return response
    return redirect("ticket_detail", tenant_slug=tenant_slug, number=number)


@require_GET
def ticket_reply_insert(request: TenantHttpRequest, tenant_slug: str, number: int, pk: int) -> HttpResponse:
    """An approved reply filled in for this ticket, for the composer (missing values flagged)."""
    ticket = _ticket(request, number)
    template = get_for_tenant(ReplyTemplate.objects.prefetch_related("variants"), request.tenant, pk=pk)
    if template.kind != ReplyTemplate.Kind.REPLY:
        raise Http404("Not an approved reply")
    try:
        rendered, variant = services.render_reply(ticket=ticket, template=template, agent=request.user)
        problem = None
    except rendering.TemplateProblem as exc:
        rendered, variant, problem = rendering.Rendered(text=""), None, str(exc)
    return render(
        request,
        "playbooks/_reply_insert.html",
        {"template": template, "rendered": rendered, "variant": variant, "problem": problem, "ticket": ticket},
    )
