"""Refund, cancel and address-change requests from a ticket: validate, approve, record.

The lifecycle of an OrderAction:

    requested ──within the requester's limits──▶ queued ─▶ running ─▶ succeeded
        │                                          ▲          │
        └─over a limit─▶ awaiting_approval ─approve┘          ├─transient─▶ queued (retry)
                               └─reject─▶ rejected            └─permanent─▶ failed ─retry─▶ queued

The rules (limits, validation, summaries) live in integrations.action_rules. Every step
here writes a TicketEvent on the ticket and an audit entry; the worker
(integrations.action_tasks) calls the platform and reports back through
`order_action_complete` / `order_action_fail` / `order_action_defer`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from helpdesk.models import ROLE_RANK, Membership, Role
from helpdesk.services import Actor, audit_record
from integrations.action_rules import (
    CENT,
    DEFAULT_LIMITS,
    LIMITED_ROLES,
    actor_role,
    approval_reason,
    clean_params,
    describe,
    role_limits,
)
from integrations.clients import AddressResult, CancelResult, RefundResult, strip_marker
from integrations.models import ActionLimit, Order, OrderAction, Refund
from tickets.models import Notification, Ticket

Kind = OrderAction.Kind
State = OrderAction.State

# --- Requests -----------------------------------------------------------------------------


def new_idempotency_key() -> str:
    return f"sd-{uuid.uuid4().hex}"


def _event(action: OrderAction, ticket: Ticket | None, actor: Actor | None, kind: str, **data: Any) -> None:
    """A timeline entry on the action's ticket (none when the ticket is gone)."""
    if ticket is None:
        return
    from tickets.services import _event as ticket_event

    payload: dict[str, Any] = {
        "action_id": action.pk,
        "action": action.kind,
        "order": str(action.order),
        "order_id": action.order_id,
        "summary": describe(action.kind, action.params),
    }
    payload.update(data)
    ticket_event(ticket, actor, kind, None, **payload).save()


def _enqueue(action: OrderAction) -> None:
    from integrations.action_tasks import run_order_action

    tenant_id, action_id = action.tenant_id, action.pk
    transaction.on_commit(lambda: run_order_action.delay(tenant_id, action_id))


def approvers(tenant_id: int, action: OrderAction) -> list[int]:
    """User ids who may approve this action: leads whose limits cover it, else admins/owners."""
    members = list(
        Membership.objects.filter(tenant_id=tenant_id, role__in=[Role.LEAD, Role.ADMIN, Role.OWNER]).values_list(
            "user_id", "role"
        )
    )
    currency = action.params.get("currency", "")
    lead_ok = not approval_reason(role_limits(tenant_id, Role.LEAD), action.kind, action.params, currency, Role.LEAD)
    leads = [uid for uid, role in members if role == Role.LEAD and lead_ok and uid != action.requested_by_id]
    return leads or [uid for uid, role in members if role in (Role.ADMIN, Role.OWNER) and uid != action.requested_by_id]


@transaction.atomic
def order_action_request(
    *,
    ticket: Ticket,
    order: Order,
    kind: str,
    params: Mapping,
    actor: Actor,
    idempotency_key: str = "",
) -> OrderAction:
    """Validate and record a refund, cancel or address change; queue it or ask for approval.

    Raises ValidationError (per field) for bad input and PermissionDenied for someone who
    is not a member. Within the requester's limits the action is queued for the worker
    after commit; over them it waits for a lead (who is notified).
    """
    if order.tenant_id != ticket.tenant_id:
        raise ValidationError({"order": "No such order."})
    if kind not in Kind.values:
        raise ValidationError({"kind": "Choose refund, cancel or address_change."})
    role = actor_role(ticket.tenant_id, actor)
    if role is None:
        raise PermissionDenied("Only members of this workspace can act on orders.")
    if order.connection.platform not in ("shopify", "woocommerce", "magento"):
        raise ValidationError(
            {
                "order": "This store is connected with the generic format, which can't refund or cancel; do it in the store."
            }
        )
    if not order.connection.is_active:
        raise ValidationError({"order": "The store connection is disconnected; reconnect it in Settings first."})
    key = (idempotency_key or "").strip()
    if key and OrderAction.objects.filter(tenant_id=ticket.tenant_id, idempotency_key=key).exists():
        raise ValidationError({"idempotency_key": "This key was already used for another request."})
    if len(key) > 64:
        raise ValidationError({"idempotency_key": "At most 64 characters."})
    # Serialise requests on one order, so two agents can't both refund the last €50.
    order = (
        Order.objects.select_for_update(of=("self",))
        .select_related("connection")
        .get(pk=order.pk, tenant_id=ticket.tenant_id)
    )
    clean = clean_params(order, kind, params)
    reason = approval_reason(role_limits(ticket.tenant_id, role), kind, clean, order.currency, role)
    now = timezone.now()
    try:
        # A savepoint: two API calls racing with one client key must not end in a 500.
        with transaction.atomic():
            action = OrderAction.objects.create(
                tenant_id=ticket.tenant_id,
                kind=kind,
                order=order,
                ticket=ticket,
                status=State.AWAITING_APPROVAL if reason else State.QUEUED,
                params=clean,
                idempotency_key=key or new_idempotency_key(),
                requested_by=actor.user,
                result={"approval_reason": reason} if reason else {},
                created_at=now,
                updated_at=now,
            )
    except IntegrityError as exc:
        raise ValidationError({"idempotency_key": "This key was already used for another request."}) from exc
    _event(
        action,
        ticket,
        actor,
        "order_action_requested",
        status=action.status,
        approval_reason=reason,
    )
    audit_record(
        tenant=ticket.tenant,
        actor=actor,
        action=f"order.{kind}.request",
        target=order,
        changes={
            "action_id": action.pk,
            "ticket": ticket.number,
            "params": clean,
            "status": action.status,
        },
    )
    if reason:
        text = f"Approval needed: {describe(kind, clean)} on order {order} (#{ticket.number}), asked by {actor.label}."
        Notification.objects.bulk_create(
            [
                Notification(
                    tenant_id=ticket.tenant_id,
                    user_id=uid,
                    ticket=ticket,
                    kind="approval",
                    text=text[:300],
                    created_at=now,
                )
                for uid in approvers(ticket.tenant_id, action)
            ]
        )
    else:
        _enqueue(action)
    return action


@transaction.atomic
def order_action_decide(*, action: OrderAction, actor: Actor, approve: bool, note: str = "") -> OrderAction:
    """A lead's (or admin's) decision on a request awaiting approval; approval queues it.

    PermissionDenied for agents, and for a lead approving more than their own limit;
    ValidationError when the request was already decided or no longer fits the order.
    """
    tenant_id = action.tenant_id
    role = actor_role(tenant_id, actor)
    if role is None or ROLE_RANK[Role(role)] < ROLE_RANK[Role.LEAD]:
        raise PermissionDenied("Only team leads and admins can approve or reject order actions.")
    locked = (
        OrderAction.objects.select_for_update(of=("self",))
        .select_related("order", "ticket", "order__connection")
        .get(pk=action.pk, tenant_id=tenant_id)
    )
    if locked.status != State.AWAITING_APPROVAL:
        raise ValidationError({"status": f"This request is already {locked.get_status_display().lower()}."})
    note = " ".join((note or "").split())[:500]
    if approve:
        reason = approval_reason(
            role_limits(tenant_id, role),
            locked.kind,
            locked.params,
            locked.params.get("currency", ""),
            role,
        )
        if reason:
            raise PermissionDenied(f"{reason} An admin has to approve this one.")
        order = Order.objects.select_for_update(of=("self",)).get(pk=locked.order_id, tenant_id=tenant_id)
        # The order may have changed while the request waited (a refund in the store admin).
        clean_params(order, locked.kind, locked.params, exclude=locked)
    now = timezone.now()
    locked.status = State.QUEUED if approve else State.REJECTED
    locked.decided_by = actor.user
    locked.decided_at = now
    locked.decision_note = note
    locked.updated_at = now
    locked.save(update_fields=["status", "decided_by", "decided_at", "decision_note", "updated_at"])
    _event(
        locked,
        locked.ticket,
        actor,
        "order_action_approved" if approve else "order_action_rejected",
        note=note,
    )
    audit_record(
        tenant=locked.order.tenant if locked.ticket is None else locked.ticket.tenant,
        actor=actor,
        action=f"order.{locked.kind}.{'approve' if approve else 'reject'}",
        target=locked.order,
        changes={"action_id": locked.pk, "note": note},
    )
    if locked.requested_by_id and locked.requested_by_id != (actor.user.pk if actor.user else None):
        verdict = "approved" if approve else "rejected"
        text = f"{actor.label} {verdict} {describe(locked.kind, locked.params)} on order {locked.order}" + (
            f": {note}" if note else "."
        )
        Notification.objects.create(
            tenant_id=tenant_id,
            user_id=locked.requested_by_id,
            ticket=locked.ticket,
            kind="approval_decided",
            text=text[:300],
            created_at=now,
        )
    if approve:
        _enqueue(locked)
    return locked


@transaction.atomic
def order_action_retry(*, action: OrderAction, actor: Actor) -> OrderAction:
    """Run a failed action again with the same idempotency key (never a second refund)."""
    if actor_role(action.tenant_id, actor) is None:
        raise PermissionDenied("Only members of this workspace can act on orders.")
    locked = (
        OrderAction.objects.select_for_update(of=("self",))
        .select_related("order", "ticket")
        .get(pk=action.pk, tenant_id=action.tenant_id)
    )
    if locked.status != State.FAILED:
        raise ValidationError(
            {"status": f"Only failed actions can be retried; this one is {locked.get_status_display().lower()}."}
        )
    order = Order.objects.select_for_update(of=("self",)).get(pk=locked.order_id, tenant_id=locked.tenant_id)
    clean_params(order, locked.kind, locked.params, exclude=locked)
    locked.status = State.QUEUED
    locked.updated_at = timezone.now()
    locked.save(update_fields=["status", "updated_at"])
    _event(locked, locked.ticket, actor, "order_action_retried", attempt=locked.attempts + 1)
    audit_record(
        tenant=order.tenant,
        actor=actor,
        action=f"order.{locked.kind}.retry",
        target=order,
        changes={"action_id": locked.pk},
    )
    _enqueue(locked)
    return locked


# --- The worker's side --------------------------------------------------------------------


def order_action_claim(*, tenant_id: int, action_id: int) -> OrderAction | None:
    """Move a queued action to running (a conditional UPDATE); None if it is not ours to run.

    Two deliveries of the same task message can't both run: only one UPDATE matches.
    """
    claimed = OrderAction.objects.filter(tenant_id=tenant_id, pk=action_id, status=State.QUEUED).update(
        status=State.RUNNING, attempts=F("attempts") + 1, updated_at=timezone.now()
    )
    if not claimed:
        return None
    return (
        OrderAction.objects.select_related("order", "order__connection", "ticket", "requested_by")
        .prefetch_related("order__lines")
        .get(tenant_id=tenant_id, pk=action_id)
    )


def _apply_refund(order: Order, result: RefundResult, note: str) -> bool:
    """Record the platform's refund on the order; False when a webhook recorded it first."""
    _, created = Refund.objects.get_or_create(
        tenant_id=order.tenant_id,
        order=order,
        external_id=result.external_id or f"storedesk-{uuid.uuid4().hex[:12]}",
        defaults={
            "amount": result.amount,
            "currency": result.currency or order.currency,
            "note": (strip_marker(result.note) or note)[:500],
            "processed_at": result.processed_at or timezone.now(),
            "lines": result.lines,
        },
    )
    if created:
        order.refunded_total = (
            min(Decimal(order.refunded_total) + result.amount, Decimal(order.total))
            if order.total
            else Decimal(order.refunded_total) + result.amount
        )
        order.financial_status = "refunded" if order.refunded_total >= order.total else "partially_refunded"
    return created


@transaction.atomic
def order_action_complete(
    *,
    action: OrderAction,
    outcome: RefundResult | CancelResult | AddressResult,
    at: datetime | None = None,
) -> OrderAction:
    """Apply a successful platform call to our copy of the order and close the action."""
    at = at or timezone.now()
    order = Order.objects.select_for_update(of=("self",)).get(pk=action.order_id, tenant_id=action.tenant_id)
    fields = ["updated_at"]
    result: dict[str, Any] = {}
    if isinstance(outcome, RefundResult):
        created = _apply_refund(order, outcome, action.params.get("reason", ""))
        fields += ["refunded_total", "financial_status"]
        result = {
            "refund_id": outcome.external_id,
            "amount": str(outcome.amount),
            "reused": outcome.reused,
            "recorded": created,
        }
    elif isinstance(outcome, CancelResult):
        order.cancelled_at = order.cancelled_at or outcome.cancelled_at or at
        order.cancel_reason = action.params.get("reason", "")[:30]
        if outcome.platform_status:
            order.platform_status = outcome.platform_status
        fields += ["cancelled_at", "cancel_reason", "platform_status"]
        result = {"cancelled_at": order.cancelled_at.isoformat()}
        if outcome.refund is not None:
            _apply_refund(order, outcome.refund, "Order cancelled")
            fields += ["refunded_total", "financial_status"]
            result["refund_id"] = outcome.refund.external_id
            result["amount"] = str(outcome.refund.amount)
    else:
        order.shipping_address = outcome.address or action.params.get("address") or {}
        fields.append("shipping_address")
        result = {"address": order.shipping_address}
    order.updated_at = at
    order.save(update_fields=sorted(set(fields)))
    OrderAction.objects.filter(pk=action.pk, tenant_id=action.tenant_id).update(
        status=State.SUCCEEDED,
        result={**(action.result or {}), **result},
        error_message="",
        updated_at=at,
    )
    action.refresh_from_db()
    action.order = order
    _event(action, action.ticket, None, "order_action_succeeded", attempts=action.attempts)
    audit_record(
        tenant=order.tenant,
        actor=Actor.system(),
        action=f"order.{action.kind}.succeeded",
        target=order,
        changes={"action_id": action.pk, **{k: v for k, v in result.items() if k != "address"}},
    )
    return action


@transaction.atomic
def order_action_fail(*, action: OrderAction, message: str, at: datetime | None = None) -> OrderAction:
    """The platform refused for good (or retries ran out): failed, with its message."""
    at = at or timezone.now()
    OrderAction.objects.filter(pk=action.pk, tenant_id=action.tenant_id).update(
        status=State.FAILED, error_message=message[:1000], updated_at=at
    )
    action.refresh_from_db()
    _event(
        action,
        action.ticket,
        None,
        "order_action_failed",
        error=message[:300],
        attempts=action.attempts,
    )
    audit_record(
        tenant=action.order.tenant,
        actor=Actor.system(),
        action=f"order.{action.kind}.failed",
        target=action.order,
        changes={"action_id": action.pk, "error": message[:300]},
    )
    return action


def order_action_defer(*, action: OrderAction, message: str, countdown: int) -> None:
    """A transient failure: back to queued (so the retry can claim it), noting why and when."""
    retries = list((action.result or {}).get("transient_errors") or [])[-9:]
    retries.append({"at": timezone.now().isoformat(), "error": message[:300], "retry_in": countdown})
    OrderAction.objects.filter(pk=action.pk, tenant_id=action.tenant_id, status=State.RUNNING).update(
        status=State.QUEUED,
        error_message=f"{message[:900]} Retrying in {countdown} s.",
        result={**(action.result or {}), "transient_errors": retries},
        updated_at=timezone.now(),
    )


# --- Admin settings -----------------------------------------------------------------------


@transaction.atomic
def action_limit_set(
    *,
    tenant_id: int,
    role: str,
    max_refund: Decimal,
    can_cancel: bool,
    can_change_address: bool,
    actor: Actor,
) -> ActionLimit:
    """Set what a role (agent or lead) may do without approval."""
    if role not in LIMITED_ROLES:
        raise ValidationError({"role": "Limits apply to agents and team leads; owners and admins are unlimited."})
    if max_refund is None or max_refund < 0:
        raise ValidationError({"max_refund": "Enter zero or more."})
    row, _ = ActionLimit.objects.get_or_create(
        tenant_id=tenant_id,
        role=role,
        defaults={"max_refund": DEFAULT_LIMITS[Role(role)].max_refund or Decimal("0")},
    )
    before = {
        "max_refund": str(row.max_refund),
        "can_cancel": row.can_cancel,
        "can_change_address": row.can_change_address,
    }
    row.max_refund = max_refund.quantize(CENT)
    row.can_cancel = can_cancel
    row.can_change_address = can_change_address
    row.save()
    after = {
        "max_refund": str(row.max_refund),
        "can_cancel": row.can_cancel,
        "can_change_address": row.can_change_address,
    }
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    if changes:
        from helpdesk.models import Tenant

        audit_record(
            tenant=Tenant.objects.get(pk=tenant_id),
            actor=actor,
            action="order.limits",
            target=row,
            changes={"role": role, **changes},
        )
    return row
