"""Celery entry points for order actions and reconciliation. Thin: claim, call, report.

`run_order_action` is at-least-once safe: the claim is a conditional UPDATE, and the
platform call carries the action's idempotency key (and the clients look for an earlier
refund with that key before posting), so a duplicate message or a retry after a lost
answer never moves money twice.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from helpdesk.models import Tenant
from helpdesk.services import Actor
from helpdesk.tenancy import tenant_context, tenant_task
from integrations import actions
from integrations.clients import BaseClient, LineRefund, PermanentError, TransientError, client_for
from integrations.models import Connection, OrderAction

logger = logging.getLogger(__name__)

MAX_RETRIES = 5
MAX_BACKOFF = 300  # seconds; below STALE_QUEUED so the sweeper never races a pending retry
STALE_QUEUED = timedelta(minutes=10)
STALE_RUNNING = timedelta(minutes=15)  # longer than the task time limit
State = OrderAction.State


def backoff(retries: int, retry_after: float | None) -> int:
    """Seconds before the next try: the platform's Retry-After, else 10 s doubling, capped."""
    if retry_after is not None:
        return int(min(max(retry_after, 1), MAX_BACKOFF))
    return int(min(10 * 2**retries, MAX_BACKOFF))


def perform(client: BaseClient, action: OrderAction):
    """Make the platform call an action stands for; returns the client's result."""
    params = action.params
    order = action.order
    key = action.idempotency_key
    if action.kind == OrderAction.Kind.REFUND:
        lines = [
            LineRefund(
                external_id=str(line["external_id"]),
                quantity=int(line["quantity"]),
                price=Decimal(str(line.get("price") or "0")),
                restock=bool(line.get("restock")),
            )
            for line in params.get("lines") or []
        ]
        reason = params.get("reason") or (f"Ticket #{action.ticket.number}" if action.ticket else "Refund")
        return client.refund(order, Decimal(params["amount"]), lines, reason, key, notify=bool(params.get("notify")))
    if action.kind == OrderAction.Kind.CANCEL:
        return client.cancel(
            order,
            params.get("reason") or "other",
            bool(params.get("restock")),
            bool(params.get("refund")),
            bool(params.get("notify")),
            key,
            refund_amount=Decimal(str(params.get("refund_amount") or "0")),
        )
    return client.update_shipping_address(order, params.get("address") or {}, key)


@shared_task(
    bind=True,
    name="integrations.run_order_action",
    max_retries=MAX_RETRIES,
    acks_late=True,
    ignore_result=True,
)
def run_order_action(self, tenant_id: int, action_id: int) -> str:
    """Run one queued action against the store platform."""
    with tenant_context(tenant_id):
        action = actions.order_action_claim(tenant_id=tenant_id, action_id=action_id)
        if action is None:
            return "not queued"
        try:
            outcome = perform(client_for(action.order.connection), action)
        except (TransientError, SoftTimeLimitExceeded) as exc:
            message = exc.message if isinstance(exc, TransientError) else "The store call took too long."
            retry_after = exc.retry_after if isinstance(exc, TransientError) else None
            if self.request.retries >= self.max_retries:
                actions.order_action_fail(action=action, message=f"{message} Gave up after {action.attempts} attempts.")
                return "failed"
            countdown = backoff(self.request.retries, retry_after)
            actions.order_action_defer(action=action, message=message, countdown=countdown)
            if self.request.is_eager:
                # Eager mode (tests, the embedded demo) re-raises Retry when exceptions
                # propagate; run the next attempt inline, as Celery's eager retry would.
                return self.apply(args=(tenant_id, action_id), retries=self.request.retries + 1).result
            raise self.retry(countdown=countdown) from exc
        except PermanentError as exc:
            actions.order_action_fail(action=action, message=exc.message)
            return "failed"
        except Exception as exc:  # a bug or a surprise answer: stop, show it, let a person retry
            logger.exception("order action %s crashed", action_id)
            actions.order_action_fail(action=action, message=f"Unexpected error while talking to the store: {exc}")
            return "failed"
        actions.order_action_complete(action=action, outcome=outcome)
        return "succeeded"


@shared_task(name="integrations.sweep_order_actions", ignore_result=True)
def sweep_order_actions() -> int:
    """Beat, every minute: re-enqueue actions whose task message was lost (Invariant 2).

    A queued row untouched for STALE_QUEUED, or a running row older than any task could
    run (its worker died mid-call), goes back to the queue; the idempotency key makes the
    re-run safe even if the platform did the work.
    """
    now = timezone.now()
    total = 0
    for tenant_id in Tenant.objects.values_list("id", flat=True):
        OrderAction.objects.filter(
            tenant_id=tenant_id, status=State.RUNNING, updated_at__lt=now - STALE_RUNNING
        ).update(status=State.QUEUED, updated_at=now - STALE_QUEUED)
        stale = list(
            OrderAction.objects.filter(
                tenant_id=tenant_id,
                status=State.QUEUED,
                updated_at__lt=now - STALE_QUEUED + timedelta(seconds=1),
            ).values_list("id", flat=True)[:200]
        )
        for action_id in stale:
            OrderAction.objects.filter(tenant_id=tenant_id, pk=action_id).update(updated_at=now)
            run_order_action.delay(tenant_id, action_id)
        total += len(stale)
    return total


@shared_task(name="integrations.reconcile_connection", ignore_result=True, acks_late=True)
@tenant_task
def reconcile_connection(tenant: Tenant, connection_id: str) -> dict:
    """Pull one connection's changed orders through parse → upsert (heals missed webhooks)."""
    from integrations.reconcile import connection_reconcile

    connection = Connection.objects.filter(tenant=tenant, pk=connection_id, status=Connection.State.ACTIVE).first()
    if connection is None:
        return {}
    report = connection_reconcile(connection=connection)
    return {
        "fetched": report.fetched,
        "applied": report.applied,
        "skipped": report.skipped,
        "error": report.error,
    }


@shared_task(name="integrations.reconcile_all", ignore_result=True)
def reconcile_all() -> int:
    """Beat: queue a reconciliation for every active connection that has an API."""
    rows = (
        Connection.objects.filter(status=Connection.State.ACTIVE, platform__in=["shopify", "woocommerce", "magento"])
        .exclude(credentials_encrypted="")
        .values_list("tenant_id", "id")
    )
    count = 0
    for tenant_id, connection_id in rows:
        reconcile_connection.delay(tenant_id, str(connection_id))
        count += 1
    return count


@shared_task(name="integrations.auto_link_ticket_order", ignore_result=True)
@tenant_task
def auto_link_ticket_order(tenant: Tenant, ticket_id: int) -> int | None:
    """After a ticket is created: link it to the order it is most likely about."""
    from integrations.orders import link_ticket_order
    from tickets.models import Ticket

    ticket = Ticket.objects.filter(tenant=tenant, pk=ticket_id).select_related("tenant").first()
    if ticket is None:
        return None
    order = link_ticket_order(ticket=ticket, actor=Actor.system())
    return order.pk if order else None
