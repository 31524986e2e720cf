"""Team-lead settings pages: business hours and holidays, SLA policies, ticket types.

Thin views: resolve the tenant's object (404 for foreign or missing ids), let a form parse
the input, call a service in tickets.services_sla, render or redirect.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from helpdesk.forms import apply_service_errors
from helpdesk.models import Role
from helpdesk.services import actor_from_request
from helpdesk.tenancy import TenantHttpRequest, get_for_tenant
from helpdesk.views.decorators import role_required
from tickets import policy, services_sla
from tickets.forms_sla import (
    WEEKDAYS,
    HolidayForm,
    PolicyForm,
    ScheduleForm,
    TicketTypeForm,
    format_day,
    format_duration,
)
from tickets.models import BusinessSchedule, Holiday, Priority, SlaMetric, SlaPolicy, TicketType

# (key for `active`, label, url name): the lead adds these to the settings subnav.
SETTINGS_LINKS = [
    ("business_hours", "Business hours", "settings_business_hours"),
    ("sla_policies", "SLA policies", "settings_sla_policies"),
    ("ticket_types", "Ticket types", "settings_ticket_types"),
    ("action_limits", "Order action limits", "settings_action_limits"),
    ("notices", "Customer notices", "settings_notices"),
]


def settings_links(tenant_slug: str) -> list[tuple[str, str, str]]:
    """`settings_extra_links` entries for settings/base.html."""
    return [(key, label, reverse(name, args=[tenant_slug])) for key, label, name in SETTINGS_LINKS]


def _direction(request: TenantHttpRequest) -> str | None:
    value = request.POST.get("direction", "")
    return value if value in ("up", "down") else None


# --- Schedules ------------------------------------------------------------------------


def week_summary(intervals: list) -> list[tuple[str, str]]:
    """Consecutive weekdays with the same hours folded: [("Mon–Fri", "09:00–17:00"), ("Sat–Sun", "")]."""
    by_day: dict[int, list[tuple[int, int]]] = {n: [] for n in range(7)}
    for weekday, start, end in intervals:
        if weekday in by_day:
            by_day[weekday].append((start, end))
    groups: list[tuple[int, int, str]] = []
    for n in range(7):
        hours = format_day(by_day[n])
        if groups and groups[-1][2] == hours:
            groups[-1] = (groups[-1][0], n, hours)
        else:
            groups.append((n, n, hours))
    short = [day[:3] for day in WEEKDAYS]
    return [(short[a] if a == b else f"{short[a]}–{short[b]}", hours) for a, b, hours in groups]


# A finished re-evaluation stays on the page this long, then gives way to the list.
JOB_SHOWN_FOR = timedelta(minutes=10)


def _job_context(request: TenantHttpRequest) -> dict:
    """The latest re-evaluation: polled while queued or running, shown a while once done."""
    job = services_sla.sla_latest_job(tenant=request.tenant)
    polling = job is not None and job.status in ("queued", "running")
    recent = job is not None and (job.finished_at or job.created_at) > timezone.now() - JOB_SHOWN_FOR
    return {
        "job": job,
        "job_polling": polling,
        "job_visible": polling or recent or (job and job.status == "failed"),
    }


@role_required(Role.LEAD)
@require_GET
def business_hours(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    schedules = list(
        BusinessSchedule.objects.filter(tenant=tenant)
        .annotate(holiday_count=Count("holidays"))
        .order_by("-is_default", "name")
    )
    policies = list(SlaPolicy.objects.filter(tenant=tenant).values_list("schedule_id", "name"))
    rows = [
        {
            "schedule": s,
            "week": week_summary(s.intervals),
            "policies": [
                name for schedule_id, name in policies if schedule_id == s.pk or (s.is_default and schedule_id is None)
            ],
        }
        for s in schedules
    ]
    return render(
        request,
        "settings/sla/business_hours.html",
        {"rows": rows, "active": "business_hours", **_job_context(request)},
    )


def _schedule_page(
    request: TenantHttpRequest,
    schedule: BusinessSchedule | None,
    form: ScheduleForm,
    holiday_form: HolidayForm | None = None,
) -> HttpResponse:
    context: dict[str, object] = {"schedule": schedule, "form": form, "active": "business_hours"}
    if schedule is not None:
        context["holidays"] = Holiday.objects.filter(tenant=request.tenant, schedule=schedule).order_by("date")
        context["holiday_form"] = holiday_form or HolidayForm()
    return render(request, "settings/sla/schedule_form.html", context)


@role_required(Role.LEAD)
def schedule_create(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    form = ScheduleForm(request.POST or None, initial={"timezone": request.tenant.timezone})
    if request.method == "POST" and form.is_valid():
        try:
            schedule = services_sla.business_schedule_create(
                tenant=request.tenant,
                actor=actor_from_request(request),
                name=form.cleaned_data["name"],
                timezone=form.cleaned_data["timezone"],
                intervals=form.cleaned_data["intervals"],
            )
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, f"Schedule “{schedule.name}” created. Add its holidays below.")
            return redirect("settings_schedule_edit", tenant_slug=tenant_slug, pk=schedule.pk)
    return _schedule_page(request, None, form)


@role_required(Role.LEAD)
def schedule_edit(request: TenantHttpRequest, tenant_slug: str, pk: int) -> HttpResponse:
    schedule = get_for_tenant(BusinessSchedule.objects.select_related("tenant"), request.tenant, pk=pk)
    form = ScheduleForm(request.POST or None, instance=schedule)
    if request.method == "POST" and form.is_valid():
        try:
            services_sla.business_schedule_update(
                schedule=schedule,
                actor=actor_from_request(request),
                name=form.cleaned_data["name"],
                timezone=form.cleaned_data["timezone"],
                intervals=form.cleaned_data["intervals"],
            )
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, f"Schedule “{schedule.name}” saved.")
            return redirect("settings_business_hours", tenant_slug=tenant_slug)
    return _schedule_page(request, schedule, form)


@role_required(Role.LEAD)
@require_POST
def schedule_set_default(request: TenantHttpRequest, tenant_slug: str, pk: int) -> HttpResponse:
    schedule = get_for_tenant(BusinessSchedule.objects.select_related("tenant"), request.tenant, pk=pk)
    services_sla.business_schedule_set_default(schedule=schedule, actor=actor_from_request(request))
    messages.success(request, f"“{schedule.name}” is now the default schedule.")
    return redirect("settings_business_hours", tenant_slug=tenant_slug)


@role_required(Role.LEAD)
@require_POST
def holiday_add(request: TenantHttpRequest, tenant_slug: str, pk: int) -> HttpResponse:
    schedule = get_for_tenant(BusinessSchedule.objects.select_related("tenant"), request.tenant, pk=pk)
    holiday_form = HolidayForm(request.POST)
    if holiday_form.is_valid():
        try:
            holiday = services_sla.holiday_add(
                schedule=schedule,
                actor=actor_from_request(request),
                date=holiday_form.cleaned_data["date"],
                name=holiday_form.cleaned_data["name"],
            )
        except ValidationError as exc:
            apply_service_errors(holiday_form, exc)
        else:
            messages.success(request, f"{holiday.date:%d %b %Y} added as a holiday.")
            return redirect("settings_schedule_edit", tenant_slug=tenant_slug, pk=schedule.pk)
    return _schedule_page(request, schedule, ScheduleForm(instance=schedule), holiday_form)


@role_required(Role.LEAD)
@require_POST
def holiday_delete(request: TenantHttpRequest, tenant_slug: str, pk: int, holiday_pk: int) -> HttpResponse:
    holiday = get_for_tenant(
        Holiday.objects.select_related("schedule", "schedule__tenant"),
        request.tenant,
        pk=holiday_pk,
        schedule_id=pk,
    )
    services_sla.holiday_remove(holiday=holiday, actor=actor_from_request(request))
    messages.success(request, f"Holiday on {holiday.date:%d %b %Y} removed.")
    return redirect("settings_schedule_edit", tenant_slug=tenant_slug, pk=pk)


# --- SLA policies ---------------------------------------------------------------------


def _target_grid(sla_policy: SlaPolicy) -> list[dict]:
    """Rows per metric, cells per priority (urgent first), for the compact grid."""
    targets = {(t.metric, t.priority): t for t in sla_policy.targets.all()}
    return [
        {
            "metric": label,
            "cells": [
                {
                    "text": format_duration(t.minutes) if t else "—",
                    "calendar": bool(t and not t.business_hours),
                    "title": (
                        f"{label}, {Priority(priority).label}: {format_duration(t.minutes)} "
                        f"{'business' if t.business_hours else 'calendar'} hours, warn {t.warn_before_minutes} min before"
                    )
                    if t
                    else f"{label}, {Priority(priority).label}: no target",
                }
                for priority in reversed(Priority.values)
                for t in [targets.get((metric, priority))]
            ],
        }
        for metric, label in SlaMetric.choices
    ]


def _explain(sla_policy: SlaPolicy) -> str:
    conditions = sla_policy.conditions or {}
    if not any(conditions.get(key) for key in policy.CONDITION_KEYS):
        return "Applies to every ticket."
    rule = policy.PolicyRule(id=sla_policy.pk, name=sla_policy.name, conditions=conditions)
    return f"Applies when {policy.explain(rule)}."


@role_required(Role.LEAD)
@require_GET
def sla_policies(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = request.tenant
    rows = list(
        SlaPolicy.objects.filter(tenant=tenant)
        .select_related("schedule")
        .prefetch_related("targets")
        .order_by("position", "id")
    )
    default = BusinessSchedule.objects.filter(tenant=tenant, is_default=True).first()
    policies = [
        {
            "policy": p,
            "explain": _explain(p),
            "grid": _target_grid(p),
            "schedule_label": p.schedule.name if p.schedule else f"{default.name if default else 'Default'} (default)",
            "first": index == 0,
            "last": index == len(rows) - 1,
        }
        for index, p in enumerate(rows)
    ]
    context = {
        "policies": policies,
        "any_active": any(p.is_active for p in rows),
        "priorities": [Priority(p).label for p in reversed(Priority.values)],
        "active": "sla_policies",
        **_job_context(request),
    }
    return render(request, "settings/sla/policies.html", context)


@role_required(Role.LEAD)
@require_GET
def sla_job(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    """The re-evaluation progress bar (htmx polls it); a plain visit goes to the policies page."""
    if not request.htmx:
        return redirect("settings_sla_policies", tenant_slug=tenant_slug)
    return render(request, "settings/sla/policies.html#job", _job_context(request))


def _policy_page(request: TenantHttpRequest, sla_policy: SlaPolicy | None, form: PolicyForm) -> HttpResponse:
    return render(
        request,
        "settings/sla/policy_form.html",
        {"sla_policy": sla_policy, "form": form, "active": "sla_policies"},
    )


def _policy_values(form: PolicyForm) -> dict:
    data = form.cleaned_data
    return {
        "name": data["name"],
        "conditions": data["conditions"],
        "targets": data["targets"],
        "schedule": data["schedule"],
        "pause_on_hold": data["pause_on_hold"],
    }


@role_required(Role.LEAD)
def policy_create(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    form = PolicyForm(request.POST or None, tenant=request.tenant)
    if request.method == "POST" and form.is_valid():
        try:
            created = services_sla.sla_policy_create(
                tenant=request.tenant, actor=actor_from_request(request), **_policy_values(form)
            )
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(
                request,
                f"Policy “{created.name}” created at the top of the list. Open tickets are being re-evaluated.",
            )
            return redirect("settings_sla_policies", tenant_slug=tenant_slug)
    return _policy_page(request, None, form)


@role_required(Role.LEAD)
def policy_edit(request: TenantHttpRequest, tenant_slug: str, pk: int) -> HttpResponse:
    sla_policy = get_for_tenant(
        SlaPolicy.objects.select_related("tenant", "schedule").prefetch_related("targets"),
        request.tenant,
        pk=pk,
    )
    form = PolicyForm(request.POST or None, tenant=request.tenant, instance=sla_policy)
    if request.method == "POST" and form.is_valid():
        try:
            services_sla.sla_policy_update(
                sla_policy=sla_policy, actor=actor_from_request(request), **_policy_values(form)
            )
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, f"Policy “{form.cleaned_data['name']}” saved.")
            return redirect("settings_sla_policies", tenant_slug=tenant_slug)
    return _policy_page(request, sla_policy, form)


@role_required(Role.LEAD)
@require_POST
def policy_move(request: TenantHttpRequest, tenant_slug: str, pk: int) -> HttpResponse:
    sla_policy = get_for_tenant(SlaPolicy.objects.select_related("tenant"), request.tenant, pk=pk)
    direction = _direction(request)
    if direction is None:
        messages.error(request, "Move a policy up or down.")
    else:
        services_sla.sla_policy_move(sla_policy=sla_policy, actor=actor_from_request(request), direction=direction)
    return redirect("settings_sla_policies", tenant_slug=tenant_slug)


@role_required(Role.LEAD)
@require_POST
def policy_toggle(request: TenantHttpRequest, tenant_slug: str, pk: int) -> HttpResponse:
    sla_policy = get_for_tenant(SlaPolicy.objects.select_related("tenant"), request.tenant, pk=pk)
    value = request.POST.get("is_active")
    if value not in ("0", "1"):
        messages.error(request, "Choose to activate or deactivate the policy.")
    else:
        services_sla.sla_policy_set_active(
            sla_policy=sla_policy, actor=actor_from_request(request), is_active=value == "1"
        )
        messages.success(request, f"Policy “{sla_policy.name}” {'activated' if value == '1' else 'deactivated'}.")
    return redirect("settings_sla_policies", tenant_slug=tenant_slug)


# --- Ticket types ---------------------------------------------------------------------


@role_required(Role.LEAD)
@require_GET
def ticket_types(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    types = list(TicketType.objects.filter(tenant=request.tenant).order_by("position", "name", "id"))
    return render(request, "settings/sla/ticket_types.html", {"types": types, "active": "ticket_types"})


def _type_values(form: TicketTypeForm) -> dict:
    data = form.cleaned_data
    return {
        "name": data["name"],
        "slug": data["slug"],
        "description": data["description"],
        "is_active": data["is_active"],
    }


@role_required(Role.LEAD)
def ticket_type_create(request: TenantHttpRequest, tenant_slug: str) -> HttpResponse:
    form = TicketTypeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            created = services_sla.ticket_type_create(
                tenant=request.tenant, actor=actor_from_request(request), **_type_values(form)
            )
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, f"Ticket type “{created.name}” created.")
            return redirect("settings_ticket_types", tenant_slug=tenant_slug)
    return render(
        request,
        "settings/sla/ticket_type_form.html",
        {"form": form, "ticket_type": None, "active": "ticket_types"},
    )


@role_required(Role.LEAD)
def ticket_type_edit(request: TenantHttpRequest, tenant_slug: str, pk: int) -> HttpResponse:
    ticket_type = get_for_tenant(TicketType.objects.select_related("tenant"), request.tenant, pk=pk)
    form = TicketTypeForm(request.POST or None, instance=ticket_type)
    if request.method == "POST" and form.is_valid():
        try:
            services_sla.ticket_type_update(
                ticket_type=ticket_type, actor=actor_from_request(request), **_type_values(form)
            )
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, f"Ticket type “{ticket_type.name}” saved.")
            return redirect("settings_ticket_types", tenant_slug=tenant_slug)
    return render(
        request,
        "settings/sla/ticket_type_form.html",
        {"form": form, "ticket_type": ticket_type, "active": "ticket_types"},
    )


@role_required(Role.LEAD)
@require_POST
def ticket_type_move(request: TenantHttpRequest, tenant_slug: str, pk: int) -> HttpResponse:
    ticket_type = get_for_tenant(TicketType.objects.select_related("tenant"), request.tenant, pk=pk)
    direction = _direction(request)
    if direction is None:
        messages.error(request, "Move a type up or down.")
    else:
        services_sla.ticket_type_move(ticket_type=ticket_type, actor=actor_from_request(request), direction=direction)
    return redirect("settings_ticket_types", tenant_slug=tenant_slug)
