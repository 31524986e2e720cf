"""The rules of order actions: role limits, what needs approval, and input validation.

Readers only (they look at the order, its lines and the requests in flight, never write);
`integrations.actions` applies them. Limits and the approval test are pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from helpdesk.models import AuditLog, Membership, Role
from helpdesk.services import Actor
from integrations.address import clean_address, one_line
from integrations.formatting import money
from integrations.models import ActionLimit, Order, OrderAction, OrderLine

Kind = OrderAction.Kind
State = OrderAction.State

IN_FLIGHT = (State.AWAITING_APPROVAL, State.QUEUED, State.RUNNING)
CANCEL_REASONS = {
    "customer": "Customer changed or cancelled the order",
    "inventory": "Items unavailable",
    "fraud": "Fraudulent order",
    "declined": "Payment declined",
    "staff": "Staff error",
    "other": "Other",
}
SHIPPED_STATUSES = {"fulfilled", "partial", "partially_fulfilled", "shipped"}
SHIPPED_PLATFORM_STATUSES = {"completed", "complete", "shipped"}
CANCELLED_PLATFORM_STATUSES = {"cancelled", "canceled", "closed", "trash"}
MAX_REASON = 500
CENT = Decimal("0.01")


# --- Limits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What a role may do without approval. `max_refund` None means no limit."""

    max_refund: Decimal | None
    can_cancel: bool = True
    can_change_address: bool = True


UNLIMITED = Limits(max_refund=None)
DEFAULT_LIMITS = {
    Role.AGENT: Limits(max_refund=Decimal("100.00")),
    Role.LEAD: Limits(max_refund=Decimal("1000.00")),
}
LIMITED_ROLES = (Role.AGENT, Role.LEAD)


def role_limits(tenant_id: int, role: str) -> Limits:
    """The tenant's limits for a role: its ActionLimit row, else the defaults; admins unlimited."""
    if role not in LIMITED_ROLES:
        return UNLIMITED
    row = ActionLimit.objects.filter(tenant_id=tenant_id, role=role).first()
    if row is None:
        return DEFAULT_LIMITS[Role(role)]
    return Limits(
        max_refund=row.max_refund,
        can_cancel=row.can_cancel,
        can_change_address=row.can_change_address,
    )


def all_role_limits(tenant_id: int) -> dict[str, Limits]:
    rows = {r.role: r for r in ActionLimit.objects.filter(tenant_id=tenant_id, role__in=LIMITED_ROLES)}
    result: dict[str, Limits] = {}
    for role in LIMITED_ROLES:
        row = rows.get(role)
        result[role] = (
            Limits(
                max_refund=row.max_refund,
                can_cancel=row.can_cancel,
                can_change_address=row.can_change_address,
            )
            if row
            else DEFAULT_LIMITS[role]
        )
    return result


def actor_role(tenant_id: int, actor: Actor) -> str | None:
    """The role an actor acts with: a member's role; API tokens and the system act as admin."""
    if actor.kind in (AuditLog.ActorType.TOKEN, AuditLog.ActorType.SYSTEM):
        return Role.ADMIN
    if actor.user is None:
        return None
    return Membership.objects.filter(tenant_id=tenant_id, user=actor.user).values_list("role", flat=True).first()


def money_at_stake(kind: str, params: Mapping) -> Decimal:
    """How much money the action moves: a refund's amount, or a cancel's refund."""
    if kind == Kind.REFUND:
        return Decimal(str(params.get("amount") or "0"))
    if kind == Kind.CANCEL and params.get("refund"):
        return Decimal(str(params.get("refund_amount") or "0"))
    return Decimal("0")


ROLE_PLURAL = {Role.AGENT: "agents", Role.LEAD: "team leads"}


def approval_reason(limits: Limits, kind: str, params: Mapping, currency: str = "", role: str = "") -> str:
    """Why this action needs approval under `role`'s `limits`, or "" when it doesn't. Pure."""
    who = ROLE_PLURAL.get(Role(role), "this role") if role in Role.values else "this role"
    amount = money_at_stake(kind, params)
    if kind == Kind.CANCEL and not limits.can_cancel:
        return f"Cancelling orders needs approval for {who}."
    if kind == Kind.ADDRESS and not limits.can_change_address:
        return f"Changing addresses needs approval for {who}."
    if limits.max_refund is not None and amount > limits.max_refund:
        return f"{money(amount, currency)} is over the refund limit for {who} ({money(limits.max_refund, currency)})."
    return ""


# --- Validation (pure where it can be) ----------------------------------------------------


def _amount(raw: Any, field: str, errors: dict) -> Decimal | None:
    if raw in (None, ""):
        return None
    try:
        value = Decimal(str(raw).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        errors[field] = "Enter an amount such as 12.50."
        return None
    if not value.is_finite():
        errors[field] = "Enter an amount such as 12.50."
        return None
    if value != value.quantize(CENT):
        errors[field] = "Use at most two decimals."
        return None
    return value


def _flag(params: Mapping, key: str, default: bool = False) -> bool:
    value = params.get(key, default)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes")
    return bool(value)


def _reason(params: Mapping) -> str:
    return " ".join(str(params.get("reason") or "").split())[:MAX_REASON]


def is_shipped(order: Order) -> bool:
    return (order.fulfillment_status or "").lower() in SHIPPED_STATUSES or (
        order.platform_status or ""
    ).lower() in SHIPPED_PLATFORM_STATUSES


def is_cancelled(order: Order) -> bool:
    return order.cancelled_at is not None or (order.platform_status or "").lower() in CANCELLED_PLATFORM_STATUSES


def _in_flight(order: Order, exclude: OrderAction | None = None) -> list[OrderAction]:
    qs = OrderAction.objects.filter(tenant_id=order.tenant_id, order=order, status__in=IN_FLIGHT)
    if exclude is not None:
        qs = qs.exclude(pk=exclude.pk)
    return list(qs)


def refundable_now(order: Order, exclude: OrderAction | None = None) -> tuple[Decimal, Decimal]:
    """(what can still be refunded, what pending requests already claim)."""
    pending = sum((money_at_stake(a.kind, a.params) for a in _in_flight(order, exclude)), Decimal("0"))
    return max(Decimal(order.refundable) - pending, Decimal("0")), pending


def clean_refund(order: Order, lines: list[OrderLine], params: Mapping, exclude: OrderAction | None = None) -> dict:
    """Validated refund params, or ValidationError naming each bad field.

    `params`: amount (optional when lines are given, or "full": true), lines
    [{"line": OrderLine id, "quantity": n}], reason, notify, restock.
    """
    errors: dict[str, str] = {}
    by_id = {line.pk: line for line in lines}
    chosen: list[dict] = []
    line_total = Decimal("0")
    restock = _flag(params, "restock")
    for index, raw in enumerate(params.get("lines") or []):
        if not isinstance(raw, Mapping):
            errors["lines"] = "Each line needs `line` (its id) and `quantity`."
            break
        try:
            line_id = int(raw.get("line") or raw.get("id") or 0)
            quantity = int(raw.get("quantity") or 0)
        except (TypeError, ValueError):
            errors["lines"] = f"Line {index + 1}: give whole numbers for the line and quantity."
            break
        if quantity == 0:
            continue
        line = by_id.get(line_id)
        if line is None:
            errors["lines"] = f"Line {index + 1} is not part of order {order}."
            break
        if quantity < 0 or quantity > line.quantity:
            errors[f"line_{line.pk}"] = f"{line.title}: refund between 0 and {line.quantity} (ordered)."
            errors.setdefault("lines", "Some quantities are more than was ordered.")
            continue
        chosen.append(
            {
                "line": line.pk,
                "external_id": line.external_id,
                "title": line.title[:120],
                "quantity": quantity,
                "price": str(line.price),
                "restock": restock,
            }
        )
        line_total += line.price * quantity
    available, pending = refundable_now(order, exclude)
    if _flag(params, "full"):
        amount: Decimal | None = available
    else:
        amount = _amount(params.get("amount"), "amount", errors)
        if amount is None and "amount" not in errors:
            amount = min(line_total, available) if chosen else None
    if amount is None and "amount" not in errors:
        errors["amount"] = "Enter the amount to refund, or choose items."
    elif amount is not None and "amount" not in errors:
        if amount <= 0:
            errors["amount"] = (
                "The refund must be more than zero."
                if available > 0
                else f"Nothing is left to refund on order {order}."
            )
        elif amount > available:
            already = f", and {money(pending, order.currency)} is in pending requests" if pending else ""
            errors["amount"] = (
                f"At most {money(available, order.currency)} can be refunded: the order totals "
                f"{money(order.total, order.currency)}, {money(order.refunded_total, order.currency)} is refunded already{already}."
            )
    if errors or amount is None:
        raise ValidationError(errors or {"amount": "Enter the amount to refund."})
    return {
        "amount": str(amount.quantize(CENT)),
        "currency": order.currency,
        "lines": chosen,
        "reason": _reason(params),
        "notify": _flag(params, "notify", True),
        "restock": restock,
    }


def clean_cancel(order: Order, params: Mapping, exclude: OrderAction | None = None) -> dict:
    if is_cancelled(order):
        raise ValidationError({"order": f"Order {order} is already cancelled."})
    live_shipments = order.fulfillments.exclude(platform_status__in=["cancelled", "canceled", "error", "failure"])
    if is_shipped(order) or live_shipments.exists():
        raise ValidationError(
            {"order": f"Order {order} has shipped, so it can't be cancelled. Refund it, or start a return, instead."}
        )
    if any(a.kind == Kind.CANCEL for a in _in_flight(order, exclude)):
        raise ValidationError({"order": f"A cancellation of order {order} is already in progress."})
    reason = str(params.get("reason") or "customer").strip().lower()
    if reason not in CANCEL_REASONS:
        raise ValidationError({"reason": f"Choose a reason: {', '.join(CANCEL_REASONS)}."})
    # Only money that was taken can go back: unpaid or merely authorised orders are voided.
    paid = (order.financial_status or "paid").lower() not in (
        "pending",
        "authorized",
        "voided",
        "refunded",
    )
    refund = _flag(params, "refund", True) and paid
    available, _pending = refundable_now(order, exclude)
    return {
        "reason": reason,
        "note": _reason({"reason": params.get("note")}),
        "restock": _flag(params, "restock", True),
        "refund": refund and available > 0,
        "refund_amount": str(available.quantize(CENT)) if refund else "0.00",
        "currency": order.currency,
        "notify": _flag(params, "notify", True),
    }


def clean_address_change(order: Order, params: Mapping) -> dict:
    if is_cancelled(order):
        raise ValidationError({"order": f"Order {order} is cancelled; there is nothing to ship."})
    if is_shipped(order):
        raise ValidationError({"order": f"Order {order} has shipped; ask the carrier to redirect the parcel instead."})
    raw = params.get("address") if isinstance(params.get("address"), Mapping) else params
    address, errors = clean_address(raw)  # type: ignore[arg-type]
    if errors:
        raise ValidationError(errors)
    return {
        "address": address,
        "previous": dict(order.shipping_address or {}),
        "notify": _flag(params, "notify"),
    }


def clean_params(order: Order, kind: str, params: Mapping, exclude: OrderAction | None = None) -> dict:
    if kind == Kind.REFUND:
        lines = list(OrderLine.objects.filter(tenant_id=order.tenant_id, order=order).order_by("id"))
        return clean_refund(order, lines, params, exclude)
    if kind == Kind.CANCEL:
        return clean_cancel(order, params, exclude)
    if kind == Kind.ADDRESS:
        return clean_address_change(order, params)
    raise ValidationError({"kind": "Choose refund, cancel or address_change."})


def describe(kind: str, params: Mapping) -> str:
    """One line for timelines and notifications: "Refund €20.00 (2 items)"."""
    currency = params.get("currency", "")
    if kind == Kind.REFUND:
        count = sum(int(line.get("quantity") or 0) for line in params.get("lines") or [])
        items = f" ({count} item{'s' if count != 1 else ''})" if count else ""
        return f"Refund {money(params.get('amount'), currency)}{items}"
    if kind == Kind.CANCEL:
        extras = []
        if params.get("refund"):
            extras.append(f"refund {money(params.get('refund_amount'), currency)}")
        if params.get("restock"):
            extras.append("restock")
        return "Cancel order" + (f" ({', '.join(extras)})" if extras else "")
    if kind == Kind.ADDRESS:
        return f"Ship to {one_line(params.get('address') or {})}"
    return str(kind)
