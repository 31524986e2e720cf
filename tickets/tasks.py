"""Celery entry points of the tickets app. Thin: re-fetch, call a service."""

from __future__ import annotations

from celery import shared_task

from helpdesk.models import Tenant
from helpdesk.tenancy import tenant_task
from tickets import services


@shared_task(name="tickets.sla_sweep", ignore_result=True)
def sla_sweep() -> dict[str, int]:
    """Beat, every minute: fire due SLA warnings and breaches in every tenant."""
    totals = {"breaches": 0, "warnings": 0}
    for tenant_id in services.tenants_with_due_clocks():
        fired = sla_sweep_tenant.run(tenant_id)
        for key in totals:
            totals[key] += fired[key]
    return totals


@shared_task(name="tickets.sla_sweep_tenant", ignore_result=True)
@tenant_task
def sla_sweep_tenant(tenant: Tenant) -> dict[str, int]:
    return services.sla_sweep_tenant(tenant.pk)


@shared_task(name="tickets.sla_reevaluate", ignore_result=True, acks_late=True)
@tenant_task
def sla_reevaluate(tenant: Tenant, job_id: int) -> int:
    from django.utils import timezone

    from tickets.models import BackgroundJob

    try:
        return services.sla_reevaluate_open_tickets(tenant=tenant, job_id=job_id)
    except Exception as exc:
        # The progress bar stops polling on "failed"; the lead sees the reason.
        BackgroundJob.objects.filter(tenant=tenant, pk=job_id).update(
            status="failed", message=f"Re-evaluation stopped: {exc}"[:300], finished_at=timezone.now()
        )
        raise


@shared_task(name="tickets.escalation_sweep", ignore_result=True)
def escalation_sweep() -> dict[str, int]:
    """Beat, every minute: fire due escalation reminders and overdue notices in every tenant."""
    from tickets import services_escalations

    totals = {"overdue": 0, "reminders": 0}
    for tenant_id in services_escalations.tenants_with_due_escalations():
        fired = escalation_sweep_tenant.run(tenant_id)
        for key in totals:
            totals[key] += fired[key]
    return totals


@shared_task(name="tickets.escalation_sweep_tenant", ignore_result=True)
@tenant_task
def escalation_sweep_tenant(tenant: Tenant) -> dict[str, int]:
    from tickets import services_escalations

    return services_escalations.escalation_sweep_tenant(tenant.pk)
