"""Celery entry points of the integrations app. Thin: re-fetch, call a service."""

from __future__ import annotations

from celery import shared_task

from helpdesk.models import Tenant
from helpdesk.tenancy import tenant_task
from integrations import services


@shared_task(name="integrations.process_delivery", ignore_result=True, acks_late=True)
@tenant_task
def process_delivery(tenant: Tenant, delivery_pk: int) -> str | None:
    """Process one inbox row (enqueued after commit by a replay or the sweep).

    Retries are rows, not Celery retries: a failure leaves the row `retrying` with its
    `next_attempt_at`, and the sweeper enqueues it again when that time comes.
    """
    return services.delivery_process(tenant=tenant, delivery_pk=delivery_pk)


@shared_task(name="integrations.drain_inbox", ignore_result=True, acks_late=True)
@tenant_task
def drain_inbox(tenant: Tenant, slot: int = 0) -> int:
    """Process the tenant's pending deliveries until none is left (requested by the ack path
    once per drain, not per delivery; see services "The inbox: drain")."""
    return services.delivery_drain(tenant=tenant, slot=slot)


@shared_task(name="integrations.sweep_inbox", ignore_result=True)
def sweep_inbox() -> int:
    """Beat, every minute: re-enqueue pending/retrying deliveries that are due, per tenant."""
    total = 0
    for tenant_id in Tenant.objects.values_list("id", flat=True):
        total += len(sweep_inbox_tenant.run(tenant_id) or [])
    return total


@shared_task(name="integrations.sweep_inbox_tenant", ignore_result=True)
@tenant_task
def sweep_inbox_tenant(tenant: Tenant) -> list[int]:
    return services.delivery_sweep(tenant=tenant)
