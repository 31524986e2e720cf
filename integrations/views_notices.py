"""Customer notice pages: Settings → Notices (rules, quiet hours, sender), the send log with
held notices, the ticket/customer send-log partials, and the public opt-out page.

Thin views: resolve the tenant's object (404 for foreign or missing ids alike), let a form
parse the input, call a service in integrations.notices, render or redirect.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from helpdesk.forms import apply_service_errors
from helpdesk.models import Role
from helpdesk.services import actor_from_request
from helpdesk.tenancy import TenantHttpRequest, get_for_tenant
from helpdesk.views.decorators import role_required
from integrations import notices
from integrations.forms_notices import NoticeRuleForm, NoticeSettingsForm
from integrations.notices_models import Notice, NoticeEvent, NoticeRule
from playbooks.models import ReplyTemplate
from tickets.models import Customer, Ticket

LOG_PAGE = 50
PARTIAL_ROWS = 20


def _rule_forms(request: TenantHttpRequest, data=None) -> list[NoticeRuleForm]:
    rules = {r.event: r for r in NoticeRule.objects.filter(tenant=request.tenant)}
    forms = []
    for event in NoticeEvent.values:
        rule = rules.get(event)
        initial = {
            "template": rule.template_id if rule else None,
            "enabled": rule.enabled if rule else False,
            "delay_minutes": rule.delay_minutes if rule else 0,
        }
        forms.append(NoticeRuleForm(data, tenant_id=request.tenant.pk, event=event, initial=initial))
    return forms


@role_required(Role.LEAD)
@require_http_methods(["GET", "POST"])
def settings_notices(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    prefs = notices.settings_for(request.tenant.pk)
    which = request.POST.get("form", "") if request.method == "POST" else ""
    settings_form = NoticeSettingsForm(
        request.POST if which == "settings" else None, initial=NoticeSettingsForm.initial_from(prefs)
    )
    rule_forms = _rule_forms(request, request.POST if which == "rules" else None)
    status = 200
    if request.method == "POST":
        actor = actor_from_request(request)
        if which == "settings" and settings_form.is_valid():
            data = settings_form.cleaned_data
            try:
                notices.notice_settings_update(tenant=request.tenant, actor=actor, **data)
            except ValidationError as exc:
                apply_service_errors(settings_form, exc)
            else:
                messages.success(request, "Notice settings saved.")
                return redirect("settings_notices", tenant_slug=tenant_slug)
        elif which == "rules" and all(f.is_valid() for f in rule_forms):
            current = rule_forms[0]
            try:
                with transaction.atomic():  # all rules or none
                    for current in rule_forms:
                        notices.notice_rule_save(
                            tenant=request.tenant,
                            actor=actor,
                            event=current.event,
                            template=current.cleaned_data["template"],
                            enabled=current.cleaned_data["enabled"],
                            delay_minutes=current.cleaned_data["delay_minutes"] or 0,
                        )
            except ValidationError as exc:
                apply_service_errors(current, exc)
                messages.error(request, f"{NoticeEvent(current.event).label}: {' '.join(exc.messages)}")
            else:
                messages.success(request, "Notice rules saved.")
                return redirect("settings_notices", tenant_slug=tenant_slug)
        elif which not in ("settings", "rules"):
            messages.error(request, "Nothing to save.")
        status = 400
    held = Notice.objects.filter(tenant=request.tenant, status=Notice.State.HELD).count()
    return render(
        request,
        "integrations/notices/settings.html",
        {
            "settings_form": settings_form,
            "rule_forms": rule_forms,
            "active": "notices",
            "held_count": held,
            "timezone": request.tenant.timezone,
            "has_templates": ReplyTemplate.objects.filter(
                tenant=request.tenant, kind=ReplyTemplate.Kind.NOTICE
            ).exists(),
        },
        status=status,
    )


@role_required(Role.LEAD)
@require_GET
def notice_log(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    status = request.GET.get("status", "")
    event = request.GET.get("event", "")
    status = status if status in Notice.State.values else ""
    event = event if event in NoticeEvent.values else ""
    rows = notices.notice_log(tenant=request.tenant, status=status, event=event).select_related("customer")
    page = Paginator(rows, LOG_PAGE, allow_empty_first_page=True).get_page(request.GET.get("page"))
    held = list(notices.notice_log(tenant=request.tenant, status=Notice.State.HELD).select_related("customer")[:20])
    return render(
        request,
        "integrations/notices/log.html",
        {
            "page": page,
            "held": held,
            "status_filter": status,
            "event_filter": event,
            "statuses": Notice.State.choices,
            "events": NoticeEvent.choices,
            "active": "notices",
        },
    )


@role_required(Role.LEAD)
@require_POST
def notice_release(request: TenantHttpRequest, tenant_slug: str, pk: int) -> HttpResponse:
    notice = get_for_tenant(Notice.objects.all(), request.tenant, pk=pk)
    try:
        notices.notice_release(notice=notice, actor=actor_from_request(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"Notice to {notice.recipient} queued again.")
    return redirect(f"{reverse('settings_notice_log', args=[tenant_slug])}?{request.GET.urlencode()}")


@require_GET
def ticket_notices(request: TenantHttpRequest, tenant_slug: str, number: int) -> HttpResponse:
    ticket = get_for_tenant(Ticket.objects.only("id", "tenant_id", "number"), request.tenant, number=number)
    rows = list(notices.notice_log(tenant=request.tenant, ticket_id=ticket.pk)[:PARTIAL_ROWS])
    return render(request, "integrations/notices/_ticket_log.html", {"notices": rows, "ticket": ticket})


@require_GET
def customer_notices(request: TenantHttpRequest, tenant_slug: str, pk: int) -> HttpResponse:
    customer = get_for_tenant(Customer.objects.only("id", "tenant_id", "email"), request.tenant, pk=pk)
    rows = list(notices.notice_log(tenant=request.tenant, customer_id=customer.pk)[:PARTIAL_ROWS])
    suppressed = notices.suppressed_among(request.tenant.pk, [customer.email])
    return render(
        request,
        "integrations/notices/_customer_log.html",
        {"notices": rows, "customer": customer, "suppressed": bool(suppressed)},
    )


# --- Public: the customer's opt-out ---------------------------------------------------------


@csrf_exempt  # RFC 8058 one-click: the mail client POSTs without a session or CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a confirm button (link scanners must not opt people out); POST records it."""
    found = notices.read_unsubscribe_token(token)
    if found is None:
        raise Http404("This unsubscribe link is not valid.")
    if request.method == "POST":
        if notices.unsubscribe(token) is None:
            raise Http404("This unsubscribe link is not valid.")
        return render(request, "integrations/notices/unsubscribe.html", {"done": True, "email": found[1]})
    return render(request, "integrations/notices/unsubscribe.html", {"done": False, "email": found[1]})
