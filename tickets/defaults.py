"""What every new workspace starts with: business hours, a default SLA policy, numbering."""

from __future__ import annotations

from helpdesk.models import Tenant
from tickets.models import BusinessSchedule, Priority, SlaMetric, SlaPolicy, SlaTarget, TicketCounter

WEEKDAYS_9_TO_17 = [[day, 9 * 60, 17 * 60] for day in range(5)]

# minutes per (metric, priority): a common e-commerce baseline, editable by leads.
DEFAULT_TARGETS = {
    SlaMetric.FIRST_RESPONSE: {
        Priority.URGENT: 60,
        Priority.HIGH: 4 * 60,
        Priority.NORMAL: 8 * 60,
        Priority.LOW: 24 * 60,
    },
    SlaMetric.NEXT_RESPONSE: {
        Priority.URGENT: 2 * 60,
        Priority.HIGH: 4 * 60,
        Priority.NORMAL: 8 * 60,
        Priority.LOW: 24 * 60,
    },
    SlaMetric.RESOLUTION: {
        Priority.URGENT: 8 * 60,
        Priority.HIGH: 24 * 60,
        Priority.NORMAL: 40 * 60,
        Priority.LOW: 80 * 60,
    },
}


def warn_before(minutes: int) -> int:
    """Warn a quarter of the target ahead, at most an hour."""
    return min(max(minutes // 4, 5), 60)


def bootstrap_tickets(tenant: Tenant) -> None:
    TicketCounter.objects.get_or_create(tenant=tenant)
    schedule, _ = BusinessSchedule.objects.get_or_create(
        tenant=tenant,
        is_default=True,
        defaults={"name": "Business hours", "timezone": tenant.timezone, "intervals": WEEKDAYS_9_TO_17},
    )
    if not SlaPolicy.objects.filter(tenant=tenant).exists():
        policy = SlaPolicy.objects.create(tenant=tenant, name="Standard", position=100, schedule=None)
        SlaTarget.objects.bulk_create(
            [
                SlaTarget(
                    tenant=tenant,
                    policy=policy,
                    metric=metric,
                    priority=priority,
                    minutes=minutes,
                    business_hours=True,
                    warn_before_minutes=warn_before(minutes),
                )
                for metric, per_priority in DEFAULT_TARGETS.items()
                for priority, minutes in per_priority.items()
            ]
        )
