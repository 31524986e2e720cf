"""Re-matching SLA policies when a ticket's linked order changes (order conditions).

Policies may look at the linked order (tickets.policy: value, payment and fulfillment
status, late shipment, address still changeable). When an order event changes those facts,
or a ticket gets linked to an order, the open tickets concerned are re-matched here. Both
entry points are idempotent: a ticket whose policy stays the same is not written, so a
replayed, duplicate or stale event (which changes no order field) records nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction

from helpdesk.services import Actor
from tickets import policy
from tickets.models import OPEN_STATUSES, Status, Ticket
from tickets.services import _match_explained, _reapply_sla, compiled_policies

# Tickets whose clocks still run: what a policy edit re-evaluates too.
REEVALUATED_STATUSES = (*OPEN_STATUSES, Status.PENDING)


def tenant_uses_order_conditions(tenant_id: int) -> bool:
    """Whether any active policy of the tenant looks at orders (cached with the policies)."""
    return policy.any_uses_order(c.rule for c in compiled_policies(tenant_id))


def _rematch(ticket: Ticket, actor: Actor | None, what: str, at: datetime | None) -> bool:
    matched, facts = _match_explained(ticket)
    if (matched.rule.id if matched else None) == ticket.sla_policy_id:
        return False
    # A policy with order conditions quotes the order itself (policy.explain); otherwise
    # the reason says what the order looks like now, e.g. after a refund.
    if facts.order is not None and not (matched and policy.uses_order(matched.rule.conditions)):
        what = f"{what} — {facts.order.describe()}"
    _reapply_sla(ticket, actor, reason=what, at=at)
    return True


def sla_reevaluate_for_orders(*, tenant_id: int, order_ids: Iterable[int], at: datetime | None = None) -> int:
    """After order events (webhook, reconcile): re-match the open tickets linked to these
    orders. Returns how many changed policy. Costs no query when no policy of the tenant
    has order conditions, else one query on the ticket's order index for the tickets."""
    ids = sorted(set(order_ids))
    if not ids or not tenant_uses_order_conditions(tenant_id):
        return 0
    return _reevaluate_for_orders(tenant_id, ids, at)


@transaction.atomic
def _reevaluate_for_orders(tenant_id: int, ids: list[int], at: datetime | None) -> int:
    tickets = (
        Ticket.objects.select_for_update(of=("self",))
        .filter(tenant_id=tenant_id, order_id__in=ids, status__in=REEVALUATED_STATUSES)
        .select_related("customer", "ticket_type", "order")
        .order_by("id")  # one lock order for every caller
    )
    return sum(_rematch(ticket, None, "order changed", at) for ticket in tickets)


def sla_reevaluate_for_ticket_order(*, ticket: Ticket, actor: Actor | None, at: datetime | None = None) -> bool:
    """After a ticket was linked to an order (by an agent, the API or automatically):
    re-match its policy. True when the policy changed."""
    if not tenant_uses_order_conditions(ticket.tenant_id):
        return False
    return _reevaluate_ticket(ticket, actor, at)


@transaction.atomic
def _reevaluate_ticket(ticket: Ticket, actor: Actor | None, at: datetime | None) -> bool:
    locked = (
        Ticket.objects.select_for_update(of=("self",))
        .filter(tenant_id=ticket.tenant_id, pk=ticket.pk, status__in=REEVALUATED_STATUSES)
        .select_related("customer", "ticket_type", "order")
        .first()
    )
    if locked is None:
        return False
    changed = _rematch(locked, actor, "order linked", at)
    ticket.sla_policy_id = locked.sla_policy_id
    return changed
