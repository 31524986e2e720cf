"""Celery entry points of outbound notices. Thin: re-fetch, call a service.

Retries are rows, not Celery retries: a failed send leaves the notice queued with its
`next_attempt_at`; a countdown message is the fast path and the sweep the safety net.
"""

from __future__ import annotations

from celery import shared_task

from helpdesk.models import Tenant
from helpdesk.tenancy import tenant_task
from integrations import notices, notices_events


@shared_task(name="integrations.send_notices", ignore_result=True, acks_late=True)
@tenant_task
def send_notices(tenant: Tenant, notice_ids: list[int]) -> dict[str, int]:
    """Send the given notices of one tenant (claimed one by one; duplicates send nothing)."""
    return notices.notices_send(tenant=tenant, notice_ids=notice_ids)


@shared_task(name="integrations.sweep_notices", ignore_result=True)
def sweep_notices() -> int:
    """Beat, every minute: re-enqueue due queued/scheduled notices, for tenants that have any."""
    total = 0
    for tenant_id in notices.tenants_with_due_notices():
        total += len(sweep_notices_tenant.run(tenant_id) or [])
    return total


@shared_task(name="integrations.sweep_notices_tenant", ignore_result=True)
@tenant_task
def sweep_notices_tenant(tenant: Tenant) -> list[int]:
    return notices.notices_sweep(tenant=tenant)


@shared_task(name="integrations.detect_delays", ignore_result=True)
def detect_delays() -> int:
    """Beat: one delay scan per tenant, each in its own task."""
    ids = list(Tenant.objects.values_list("id", flat=True))
    for tenant_id in ids:
        detect_delays_tenant.delay(tenant_id)
    return len(ids)


@shared_task(name="integrations.detect_delays_tenant", ignore_result=True, acks_late=True)
@tenant_task
def detect_delays_tenant(tenant: Tenant) -> int:
    return notices_events.delay_scan(tenant=tenant).flagged
