"""Orders beside the ticket: the sidebar card, order actions, approvals, action limits.

Thin views: resolve the tenant's ticket/order/action (404 for foreign or missing ids alike),
let a form parse the input, call a service in integrations.orders / integrations.actions,
render. Every page answers both htmx (a partial) and a plain browser (a full page).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from helpdesk.forms import apply_service_errors
from helpdesk.models import Role
from helpdesk.services import Actor, actor_from_request
from helpdesk.tenancy import TenantHttpRequest, get_for_tenant
from helpdesk.views.decorators import role_required
from integrations import action_rules, actions, orders
from integrations.forms_orders import (
    ActionLimitForm,
    AddressForm,
    CancelForm,
    RefundForm,
)
from integrations.models import Order, OrderAction
from tickets.models import Ticket

ORDERS_CHANGED = "orders-changed"
IN_PROGRESS = (OrderAction.State.QUEUED, OrderAction.State.RUNNING)
KINDS = {
    "refund": OrderAction.Kind.REFUND,
    "cancel": OrderAction.Kind.CANCEL,
    "address": OrderAction.Kind.ADDRESS,
}


def _ticket(request: TenantHttpRequest, number: int) -> Ticket:
    return get_for_tenant(
        Ticket.objects.only(
            "id",
            "tenant_id",
            "number",
            "subject",
            "status",
            "customer_id",
            "order_id",
            "order_number",
        ),
        request.tenant,
        number=number,
    )


def _order(ticket: Ticket, order_id: int) -> Order:
    try:
        return orders.order_for_ticket(ticket, order_id)
    except Order.DoesNotExist as exc:
        raise Http404("No such order") from exc


def _ticket_url(request: TenantHttpRequest, ticket: Ticket) -> str:
    return reverse("ticket_detail", kwargs={"tenant_slug": request.tenant.slug, "number": ticket.number})


def _changed(response: HttpResponse) -> HttpResponse:
    """Tell the page the orders changed: the sidebar card reloads itself."""
    return trigger_client_event(response, ORDERS_CHANGED)


def _card_context(request: TenantHttpRequest, ticket: Ticket) -> dict:
    data = orders.orders_for_ticket(ticket)
    # First look at an unlinked ticket: link the order it is most likely about.
    if ticket.order_id is None and orders.link_ticket_order(ticket=ticket, actor=Actor.system()) is not None:
        data = orders.orders_for_ticket(ticket)
    return {
        "ticket": ticket,
        "data": data,
        "can_decide": request.membership.has_role(Role.LEAD),
        "in_progress": IN_PROGRESS,
    }


@require_GET
def ticket_orders(request: TenantHttpRequest, tenant_slug: str, number: int) -> HttpResponse:
    """The order card of the ticket page (htmx), or the same as a page without JavaScript."""
    ticket = _ticket(request, number)
    context = _card_context(request, ticket)
    if request.htmx:
        return render(request, "integrations/orders/sidebar.html", context)
    return render(request, "integrations/orders/page.html", context)


@require_POST
def ticket_order_link(request: TenantHttpRequest, tenant_slug: str, number: int) -> HttpResponse:
    """An agent says which order the ticket is about."""
    ticket = _ticket(request, number)
    raw = request.POST.get("order", "")
    order = _order(ticket, int(raw)) if raw.isdigit() else None
    if order is None:
        raise Http404("No such order")
    orders.link_ticket_order(ticket=ticket, actor=actor_from_request(request), order=order)
    if request.htmx:
        return render(request, "integrations/orders/sidebar.html", _card_context(request, ticket))
    messages.success(request, f"Ticket linked to order {order}.")
    return redirect(_ticket_url(request, ticket))


def _form_for(kind: str, order: Order, data=None):
    if kind == OrderAction.Kind.REFUND:
        return RefundForm(data, order=order, lines=list(order.lines.all()))
    if kind == OrderAction.Kind.CANCEL:
        return CancelForm(data, order=order)
    return AddressForm(data, order=order)


def _action_context(request: TenantHttpRequest, ticket: Ticket, action: OrderAction, poll: bool = True) -> dict:
    return {
        "ticket": ticket,
        "a": action,
        "poll": poll,
        "in_progress": IN_PROGRESS,
        "can_decide": request.membership.has_role(Role.LEAD),
    }


@require_http_methods(["GET", "POST"])
def ticket_order_action_form(
    request: TenantHttpRequest, tenant_slug: str, number: int, order_id: int, kind: str
) -> HttpResponse:
    """GET: the inline form for a refund, cancel or address change. POST: request it."""
    ticket = _ticket(request, number)
    order = _order(ticket, order_id)
    kind = KINDS[kind]
    form = _form_for(kind, order, request.POST if request.method == "POST" else None)
    limits = action_rules.role_limits(request.tenant.pk, request.membership.role)
    context = {
        "ticket": ticket,
        "order": order,
        "form": form,
        "kind": kind,
        "limits": limits,
        "refundable": action_rules.refundable_now(order)[0] if kind != OrderAction.Kind.ADDRESS else None,
    }
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            action = actions.order_action_request(
                ticket=ticket,
                order=order,
                kind=kind,
                params=form.params(),
                actor=actor_from_request(request),
            )
        except ValidationError as exc:
            apply_service_errors(form, exc, getattr(form, "error_aliases", dict)())
        else:
            action.refresh_from_db()
            if request.htmx:
                response = render(
                    request,
                    "integrations/orders/sidebar.html#action",
                    _action_context(request, ticket, action),
                )
                return response if action.status in IN_PROGRESS else _changed(response)
            if action.status == OrderAction.State.AWAITING_APPROVAL:
                messages.info(
                    request,
                    f"{action_rules.describe(kind, action.params)} sent to a team lead for approval.",
                )
            else:
                messages.success(
                    request,
                    f"{action_rules.describe(kind, action.params)}: {action.get_status_display().lower()}.",
                )
            return redirect(_ticket_url(request, ticket))
    if request.method == "POST":
        # htmx only swaps 2xx answers, so the form with its errors comes back as 200 there.
        status = 200 if request.htmx else 400
    if request.htmx:
        return render(request, "integrations/orders/forms.html#form", context, status=status)
    return render(request, "integrations/orders/action_page.html", context, status=status)


def _ticket_action(request: TenantHttpRequest, ticket: Ticket, action_id: int) -> OrderAction:
    return get_for_tenant(
        OrderAction.objects.select_related("order", "requested_by", "decided_by"),
        request.tenant,
        pk=action_id,
        ticket_id=ticket.pk,
    )


@require_GET
def ticket_order_action(request: TenantHttpRequest, tenant_slug: str, number: int, action_id: int) -> HttpResponse:
    """One action's row; polled every 2 s while it runs, then it tells the card to refresh."""
    ticket = _ticket(request, number)
    action = _ticket_action(request, ticket, action_id)
    if not request.htmx:
        return redirect(_ticket_url(request, ticket))
    response = render(request, "integrations/orders/sidebar.html#action", _action_context(request, ticket, action))
    if request.GET.get("poll") and action.status not in IN_PROGRESS:
        return _changed(response)
    return response


@require_POST
def ticket_order_action_retry(
    request: TenantHttpRequest, tenant_slug: str, number: int, action_id: int
) -> HttpResponse:
    ticket = _ticket(request, number)
    action = _ticket_action(request, ticket, action_id)
    try:
        action = actions.order_action_retry(action=action, actor=actor_from_request(request))
    except ValidationError as exc:
        if request.htmx:
            return _changed(HttpResponse(format_html('<p class="muted small">{}</p>', " ".join(exc.messages))))
        messages.error(request, " ".join(exc.messages))
        return redirect(_ticket_url(request, ticket))
    if request.htmx:
        action.refresh_from_db()
        response = render(
            request,
            "integrations/orders/sidebar.html#action",
            _action_context(request, ticket, action),
        )
        return response if action.status in IN_PROGRESS else _changed(response)
    messages.success(request, "Trying again.")
    return redirect(_ticket_url(request, ticket))


# --- Approvals ----------------------------------------------------------------------------


def _pending(request: TenantHttpRequest):
    return (
        OrderAction.objects.filter(tenant=request.tenant, status=OrderAction.State.AWAITING_APPROVAL)
        .select_related("order", "order__customer", "ticket", "requested_by")
        .order_by("created_at", "id")
    )


@role_required(Role.LEAD)
@require_GET
def approvals(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """A lead's queue: order actions over someone's limit, waiting for a decision."""
    recent = (
        OrderAction.objects.filter(tenant=request.tenant)
        .filter(Q(decided_at__isnull=False))
        .select_related("order", "ticket", "requested_by", "decided_by")
        .order_by("-decided_at", "-id")[:20]
    )
    context = {
        "pending": list(_pending(request)),
        "recent": list(recent),
        "limits": action_rules.role_limits(request.tenant.pk, request.membership.role),
    }
    return render(request, "integrations/orders/approvals.html", context)


@role_required(Role.LEAD)
@require_POST
def approval_decide(request: TenantHttpRequest, tenant_slug: str, action_id: int) -> HttpResponse:
    action = get_for_tenant(
        OrderAction.objects.select_related("order", "ticket", "requested_by"),
        request.tenant,
        pk=action_id,
    )
    decision = request.POST.get("decision", "")
    error = ""
    if decision not in ("approve", "reject"):
        error = "Choose approve or reject."
    else:
        try:
            action = actions.order_action_decide(
                action=action,
                actor=actor_from_request(request),
                approve=decision == "approve",
                note=request.POST.get("note", ""),
            )
        except (ValidationError, PermissionDenied) as exc:
            error = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
    action.refresh_from_db()
    if request.htmx:
        context = {
            "a": action,
            "error": error,
            "ticket": action.ticket,
            "in_progress": IN_PROGRESS,
            "can_decide": True,
        }
        if request.POST.get("from") == "ticket" and action.ticket is not None:
            response = render(request, "integrations/orders/sidebar.html#action", context)
        else:
            response = render(request, "integrations/orders/approvals.html#decided", context)
        return response if error else _changed(response)
    if error:
        messages.error(request, error)
    else:
        messages.success(
            request,
            f"{action_rules.describe(action.kind, action.params)}: {action.get_status_display().lower()}.",
        )
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)
    return redirect("approvals", tenant_slug=tenant_slug)


# --- Settings: action limits ----------------------------------------------------------------


@role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def settings_action_limits(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    current = action_rules.all_role_limits(request.tenant.pk)
    data = request.POST if request.method == "POST" else None
    forms = {role: ActionLimitForm.for_role(role, current[role], data) for role in action_rules.LIMITED_ROLES}
    if request.method == "POST" and all(f.is_valid() for f in forms.values()):
        actor = actor_from_request(request)
        try:
            for role, form in forms.items():
                actions.action_limit_set(tenant_id=request.tenant.pk, role=role, actor=actor, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, "Action limits saved.")
            return redirect("settings_action_limits", tenant_slug=tenant_slug)
    rows = [(role, Role(role).label, forms[role]) for role in action_rules.LIMITED_ROLES]
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "integrations/orders/action_limits.html",
        {"rows": rows, "active": "action_limits"},
        status=status,
    )
