"""Agent pages: the SLA-ordered queue, the ticket page, new tickets, customers."""

from __future__ import annotations

from html import escape

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from helpdesk.models import Membership, Role
from helpdesk.nav import number_url, tenant_url
from helpdesk.services import actor_from_request
from helpdesk.tenancy import TenantHttpRequest, get_for_tenant
from playbooks.services import template_used_by_id
from tickets import selectors, services
from tickets.forms import NewTicketForm, ReplyForm
from tickets.models import Customer, Notification, Priority, Status, Ticket, TicketType
from tickets.render import (
    csrf_input,
    customer_card_html,
    options_html,
    queue_row_html,
    queue_views_html,
    sla_card_html,
    thread_html,
    ticket_meta_html,
    ticket_props_html,
    timeline_html,
)

QUEUE_PAGE_SIZE = 50
QUEUE_SHORTCUTS = [
    ("j / k", "Next / previous ticket"),
    ("Enter", "Open the selected ticket"),
    ("x", "Select / unselect for bulk actions"),
    ("n", "New ticket"),
]
TICKET_SHORTCUTS = [("r", "Reply"), ("n", "Internal note"), ("Ctrl+Enter", "Send"), ("u", "Back to the queue")]


def _view_label(view: str, types: list[TicketType]) -> str:
    for v in selectors.STATIC_VIEWS:
        if v.key == view:
            return v.label
    slug = view[5:] if view.startswith("type:") else ""
    return next((t.name for t in types if t.slug == slug), "All open")


def queue(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    view = request.GET.get("view", "mine")
    types = selectors.active_ticket_types(tenant.pk)
    if view not in selectors.VIEW_KEYS and not (view.startswith("type:") and any(t.slug == view[5:] for t in types)):
        view = "all"
    page = selectors.ticket_queue(
        tenant=tenant, view=view, agent=request.user, after=request.GET.get("after"), limit=QUEUE_PAGE_SIZE
    )
    now = timezone.now()
    ticket_base = reverse("tickets", kwargs={"tenant_slug": tenant_slug})
    rows_html = mark_safe(  # noqa: S308 - each row is built with every value escaped
        "".join(queue_row_html(t, selectors.sla_level(t, now), now, ticket_base) for t in page.tickets)
    )
    context: dict[str, object] = {
        "view": view,
        "view_label": _view_label(view, types),
        "rows_html": rows_html,
        "next_cursor": page.next_cursor,
        "after": request.GET.get("after", ""),
        "page_shortcuts": QUEUE_SHORTCUTS,
        "now": now,
    }
    if request.htmx and request.GET.get("partial") == "rows":
        return render(request, "tickets/queue.html#rows", context)
    counts = selectors.queue_counts(tenant=tenant, agent=request.user)
    approvals = None
    if request.membership.role != Role.AGENT:
        approvals = reverse("approvals", kwargs={"tenant_slug": tenant_slug})
    context.update(
        {
            "views_html": queue_views_html(
                [(v.key, v.label, counts.get(v.key, 0)) for v in selectors.STATIC_VIEWS],
                [(f"type:{t.slug}", t.name, counts.get(f"type:{t.pk}", 0)) for t in types],
                view,
                approvals,
            ),
            "agent_options": options_html([(a.pk, a.display_name) for a in selectors.agents(tenant)]),
            "status_options": options_html([(s, label) for s, label in Status.choices if s != Status.NEW]),
        }
    )
    return render(request, "tickets/queue.html", context)


@require_POST
def queue_bulk(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """Assign, set status or tag many tickets at once; each change goes through services."""
    tenant = request.tenant
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()][:200]
    action = request.POST.get("action", "")
    value = request.POST.get("value", "")
    back = request.POST.get("next", "")
    # `next` comes from the form: only a path on this site, never an open redirect.
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("queue", kwargs={"tenant_slug": tenant_slug})
    if not ids:
        messages.error(request, "Select at least one ticket.")
        return redirect(back)
    tickets = list(Ticket.objects.filter(tenant=tenant, pk__in=ids).select_related("customer", "ticket_type"))
    actor = actor_from_request(request)
    assignee = None
    if action == "assign" and value:
        membership = (
            Membership.objects.filter(tenant=tenant, user_id=value if value.isdigit() else 0)
            .select_related("user")
            .first()
        )
        if membership is None:
            messages.error(request, "Choose a member of this workspace.")
            return redirect(back)
        assignee = membership.user
    failed: list[str] = []
    for ticket in tickets:
        try:
            if action == "assign":
                services.ticket_assign(ticket=ticket, assignee=assignee, actor=actor)
            elif action == "status":
                services.ticket_set_status(ticket=ticket, status=value, actor=actor)
            elif action == "tag":
                current = [t.name for t in ticket.tags.all()]
                services.ticket_update(ticket=ticket, actor=actor, tags=[*current, *value.split(",")])
            else:
                messages.error(request, "Choose an action.")
                return redirect(back)
        except ValidationError as exc:
            failed.append(f"#{ticket.number}: {' '.join(exc.messages)}")
    done = len(tickets) - len(failed)
    if done:
        messages.success(request, f"Updated {done} ticket{'s' if done != 1 else ''}.")
    if failed:
        messages.error(request, "Not changed — " + "; ".join(failed[:5]))
    selectors.invalidate_queue_counts(tenant.pk)
    return redirect(back)


def _ticket_or_404(request: TenantHttpRequest, number: int) -> Ticket:
    try:
        return selectors.ticket_for_page(tenant=request.tenant, number=number)
    except Ticket.DoesNotExist as exc:
        raise Http404("No such ticket") from exc


_HIDDEN = '<input type="hidden" name="{name}"{value} id="id_{name}">'


def _composer_hidden(form: ReplyForm) -> str:
    """The composer's hidden inputs; an unbound form's are written out (a widget render each
    costs ~0.3 ms), a bound one keeps Django's rendering (errors, posted values)."""
    if form.is_bound:
        return mark_safe(f"{form['last_seen']}{form['confirm_collision']}{form['template']}")  # noqa: S308 - widgets
    parts = []
    for name in ("last_seen", "confirm_collision", "template"):
        value = form.initial.get(name)
        value_attr = "" if value in (None, "") else f' value="{escape(str(value))}"'
        parts.append(_HIDDEN.format(name=name, value=value_attr))
    return mark_safe("".join(parts))  # noqa: S308 - escaped


def _ticket_context(
    request: TenantHttpRequest,
    ticket: Ticket,
    form: ReplyForm | None = None,
    collisions=None,
    tag_names: list[str] | None = None,
) -> dict:
    """The ticket page: the conversation, header, sidebar and timeline are built in Python
    (tickets.render); the composer stays a template (it shows form errors)."""
    tenant = request.tenant
    slug = tenant.slug
    thread = selectors.ticket_page_thread(ticket)
    now = timezone.now()
    last_id = thread[-1].pk if thread else 0
    if tag_names is None:
        tag_names = [t.name for t in ticket.tags.all()]
    number = ticket.number
    csrf = csrf_input(get_token(request))
    followup_url = None
    if ticket.followup_of_id:
        followup_url = number_url("ticket_detail", slug, ticket.followup_of.number)  # type: ignore[union-attr]
    form = form or ReplyForm(initial={"last_seen": last_id, "kind": "reply"})
    return {
        "ticket": ticket,
        "thread_html": thread_html(thread, ticket, now),
        "meta_html": ticket_meta_html(ticket, now, followup_url),
        "props_html": ticket_props_html(
            ticket=ticket,
            statuses=Status.choices,
            priorities=Priority.choices,
            types=selectors.active_ticket_types(tenant.pk),
            agents=selectors.agents(tenant),
            tag_names=tag_names,
            update_url=number_url("ticket_update", slug, number),
            csrf=csrf,
        ),
        "sla_html": sla_card_html(ticket, selectors.ticket_page_clocks(ticket), now),
        "customer_html": customer_card_html(
            customer=ticket.customer,
            recent=selectors.ticket_page_recent(ticket),
            profile_url=reverse("customer_detail", args=[slug, ticket.customer_id]),
            ticket_url=lambda n: number_url("ticket_detail", slug, n),
            orders_url=number_url("ticket_orders", slug, number),
            notices_url=number_url("ticket_notices", slug, number),
        ),
        "timeline_html": timeline_html(
            selectors.ticket_page_timeline(ticket), number_url("ticket_timeline", slug, number)
        ),
        "urls": {
            "queue": tenant_url("queue", slug),
            "reply": number_url("ticket_reply", slug, number),
            "followup": number_url("ticket_followup", slug, number),
            "playbook": number_url("ticket_playbook", slug, number),
        },
        "form": form,
        "composer_hidden": _composer_hidden(form),
        "last_seen": last_id,
        "collisions": collisions or [],
        "page_shortcuts": TICKET_SHORTCUTS,
        "now": now,
    }


def ticket_detail(request: TenantHttpRequest, tenant_slug: str, number: int) -> HttpResponse:
    try:
        ticket, tag_names = selectors.ticket_page_ticket(tenant=request.tenant, number=number)
    except Ticket.DoesNotExist as exc:
        raise Http404("No such ticket") from exc
    return render(request, "tickets/detail.html", _ticket_context(request, ticket, tag_names=tag_names))


def ticket_timeline(request: TenantHttpRequest, tenant_slug: str, number: int) -> HttpResponse:
    """The timeline card alone: side cards (checklist, escalations, orders) refresh it."""
    try:
        ticket, _ = selectors.ticket_page_ticket(tenant=request.tenant, number=number)
    except Ticket.DoesNotExist as exc:
        raise Http404("No such ticket") from exc
    url = number_url("ticket_timeline", request.tenant.slug, number)
    # The whitespace around it is what the template partial this replaced gave.
    return HttpResponse(f"\n      {timeline_html(selectors.ticket_page_timeline(ticket), url)}\n")


@require_POST
def ticket_reply(request: TenantHttpRequest, tenant_slug: str, number: int) -> HttpResponse:
    ticket = _ticket_or_404(request, number)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return render(request, "tickets/detail.html", _ticket_context(request, ticket, form), status=400)
    data = form.cleaned_data
    # Collision guard: a customer message or another agent's reply arrived since the page loaded.
    # The warning moves `last_seen` up to what it showed, so confirming covers exactly that:
    # anything newer still stops the reply (even with confirm_collision set).
    collisions = selectors.messages_since(ticket, data["last_seen"], exclude_user=request.user)
    if collisions and data["kind"] == "reply":
        # Keep the draft, mark it confirmed, and show what arrived first.
        form = ReplyForm(data={**request.POST.dict(), "confirm_collision": "on", "last_seen": collisions[-1].pk})
        form.is_valid()
        return render(request, "tickets/detail.html", _ticket_context(request, ticket, form, collisions), status=409)
    actor = actor_from_request(request)
    try:
        if data["kind"] == "note":
            services.ticket_add_note(ticket=ticket, actor=actor, body=data["body"])
            messages.success(request, "Note added.")
        else:
            services.ticket_reply(ticket=ticket, actor=actor, body=data["body"], status=data.get("status") or None)
            if data.get("template"):
                template_used_by_id(request.tenant.pk, data["template"])
            messages.success(request, "Reply sent.")
    except ValidationError as exc:
        for field, errs in exc.message_dict.items():
            form.add_error("body" if field not in form.fields else field, errs)
        return render(request, "tickets/detail.html", _ticket_context(request, ticket, form), status=400)
    url = reverse("ticket_detail", kwargs={"tenant_slug": tenant_slug, "number": number})
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


@require_POST
def ticket_update(request: TenantHttpRequest, tenant_slug: str, number: int) -> HttpResponse:
    """Sidebar controls: status, priority, type, assignee, tags (one field per post)."""
    ticket = _ticket_or_404(request, number)
    actor = actor_from_request(request)
    post = request.POST
    try:
        if "status" in post:
            services.ticket_set_status(ticket=ticket, status=post["status"], actor=actor)
        if "priority" in post:
            services.ticket_update(ticket=ticket, actor=actor, priority=post["priority"])
        if "ticket_type" in post:
            ticket_type = None
            if post["ticket_type"]:
                ticket_type = TicketType.objects.filter(tenant=request.tenant, slug=post["ticket_type"]).first()
                if ticket_type is None:
                    raise ValidationError({"ticket_type": "No such ticket type."})
            services.ticket_update(ticket=ticket, actor=actor, ticket_type=ticket_type)
        if "assignee" in post:
            assignee = None
            if post["assignee"]:
                membership = (
                    Membership.objects.filter(
                        tenant=request.tenant, user_id=post["assignee"] if post["assignee"].isdigit() else 0
                    )
                    .select_related("user")
                    .first()
                )
                if membership is None:
                    raise ValidationError({"assignee": "Choose a member of this workspace."})
                assignee = membership.user
            services.ticket_assign(ticket=ticket, assignee=assignee, actor=actor)
        if "tags" in post:
            services.ticket_update(ticket=ticket, actor=actor, tags=post["tags"].split(","))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Ticket updated.")
    url = reverse("ticket_detail", kwargs={"tenant_slug": tenant_slug, "number": number})
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
def ticket_followup(request: TenantHttpRequest, tenant_slug: str, number: int) -> HttpResponse:
    ticket = _ticket_or_404(request, number)
    try:
        followup = services.ticket_create_followup(
            ticket=ticket, actor=actor_from_request(request), body=request.POST.get("body", "")
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("ticket_detail", tenant_slug=tenant_slug, number=number)
    messages.success(request, f"Follow-up ticket #{followup.number} created.")
    return redirect("ticket_detail", tenant_slug=tenant_slug, number=followup.number)


def ticket_new(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """An agent opens a ticket on a customer's behalf (a phone call, a walk-in)."""
    tenant = request.tenant
    types = list(selectors.ticket_types(tenant))
    initial = {}
    if request.GET.get("customer"):
        customer = Customer.objects.filter(
            tenant=tenant, pk=request.GET["customer"] if request.GET["customer"].isdigit() else 0
        ).first()
        if customer:
            initial = {
                "customer_email": customer.email,
                "customer_phone": customer.phone,
                "customer_name": customer.name,
            }
    form = NewTicketForm(request.POST or None, types=types, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            customer = services.customer_get_or_create(
                tenant=tenant, email=data["customer_email"], phone=data["customer_phone"], name=data["customer_name"]
            )
            ticket = services.ticket_create(
                tenant=tenant,
                subject=data["subject"],
                body=data["body"],
                customer=customer,
                actor=actor_from_request(request),
                channel=data["channel"],
                priority=data["priority"],
                ticket_type=next((t for t in types if t.slug == data["ticket_type"]), None),
                assignee=request.user,
                by_agent=True,
                order_number=data["order_number"],
            )
        except ValidationError as exc:
            for field, errs in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errs)
        else:
            messages.success(request, f"Ticket #{ticket.number} created and assigned to you.")
            return redirect("ticket_detail", tenant_slug=tenant_slug, number=ticket.number)
    return render(request, "tickets/new.html", {"form": form})


def tickets_list(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    if status not in Status.values:
        status = ""
    qs = selectors.tickets_search(tenant=request.tenant, query=query, status=status)
    page = Paginator(qs, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "tickets/list.html",
        {"page": page, "q": query, "status": status, "statuses": Status.choices, "now": timezone.now()},
    )


def customers_list(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    page = Paginator(selectors.customers_search(tenant=request.tenant, query=query), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "tickets/customers.html", {"page": page, "q": query})


def customer_detail(request: TenantHttpRequest, tenant_slug: str, pk: int) -> HttpResponse:
    customer = get_for_tenant(Customer.objects.all(), request.tenant, pk=pk)
    tickets = (
        Ticket.objects.filter(tenant=request.tenant, customer=customer)
        .select_related("assignee", "ticket_type")
        .order_by("-created_at")[:50]
    )
    return render(
        request, "tickets/customer_detail.html", {"customer": customer, "tickets": tickets, "now": timezone.now()}
    )


def notifications_badge(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """The topbar bell's unread count, loaded by htmx so pages don't pay for it."""
    unread = Notification.objects.filter(tenant=request.tenant, user=request.user, read_at__isnull=True).count()
    return render(request, "tickets/_bell.html", {"unread": unread})


def notifications(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    items = list(
        Notification.objects.filter(tenant=request.tenant, user=request.user)
        .select_related("ticket")
        .order_by("-created_at")[:100]
    )
    if request.method == "POST":
        Notification.objects.filter(tenant=request.tenant, user=request.user, read_at__isnull=True).update(
            read_at=timezone.now()
        )
        return redirect("notifications", tenant_slug=tenant_slug)
    return render(request, "tickets/notifications.html", {"items": items})
