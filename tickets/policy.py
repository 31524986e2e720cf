"""SLA policy matching: pure functions over plain values (no ORM).

A policy's conditions are lists per fact; an empty or missing list means "any". The
first policy in order whose every condition holds wins, and `explain` says why.

Order conditions look at the order the ticket is linked to (Ticket.order). Any of them
set means "the ticket has a linked order, and …"; a ticket without one never matches:

- `order_value_min` / `order_value_max` (decimal strings): the order's value — its total
  less what was refunded — is at least min / below max, in the order's own currency (no
  conversion: 200 means 200 EUR for a EUR order, 200 JPY for a JPY one). Pair them with
  `order_currencies` (ISO codes) to say which currencies the amounts are meant in.
- `order_financial_statuses`, `order_fulfillment_statuses`: lists, as the platforms report
  them once normalised (FINANCIAL_STATUSES, FULFILLMENT_STATUSES; a blank fulfillment
  status counts as "unfulfilled").
- `order_unshipped_days` (int N): the order is late to ship — placed at least N days ago,
  not cancelled, and not fully shipped yet (unfulfilled or partially fulfilled). Checked
  whenever the ticket or its order changes (a new message, an order event), measured to
  that moment.
- `order_address_changeable` (true): nothing has shipped yet and the order is not
  cancelled, so a shipping-address change can still be made. With the ticket type for
  address changes this is "address change requested before fulfillment".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

LIST_KEYS = ("ticket_types", "priorities", "channels", "tiers", "tags")
ORDER_LIST_KEYS = ("order_currencies", "order_financial_statuses", "order_fulfillment_statuses")
ORDER_KEYS = (
    "order_value_min",
    "order_value_max",
    *ORDER_LIST_KEYS,
    "order_unshipped_days",
    "order_address_changeable",
)
CONDITION_KEYS = (*LIST_KEYS, *ORDER_KEYS)

FINANCIAL_STATUSES = {
    "pending": "Pending",
    "authorized": "Authorized",
    "partially_paid": "Partially paid",
    "paid": "Paid",
    "partially_refunded": "Partially refunded",
    "refunded": "Refunded",
    "voided": "Voided",
}
FULFILLMENT_STATUSES = {
    "unfulfilled": "Unfulfilled",
    "partial": "Partially fulfilled",
    "fulfilled": "Fulfilled",
    "restocked": "Restocked",
}
NOT_FULLY_SHIPPED = frozenset({"unfulfilled", "partial"})
MAX_ORDER_VALUE = Decimal("9999999999.99")  # Order.total's column
MAX_UNSHIPPED_DAYS = 365
CENT = Decimal("0.01")


@dataclass(frozen=True)
class OrderFacts:
    """What the order conditions look at, read off the linked order."""

    number: str
    value: Decimal  # total less refunds, never below 0
    currency: str  # upper case, "" when the platform sent none
    financial_status: str
    fulfillment_status: str  # "" is read as "unfulfilled"
    placed_at: datetime | None = None
    cancelled: bool = False

    @classmethod
    def of(cls, order: Any) -> OrderFacts:
        """From anything shaped like integrations.models.Order (attributes only, no query)."""
        total = order.total or Decimal("0")
        refunded = order.refunded_total or Decimal("0")
        return cls(
            number=str(order.number or ""),
            value=max(total - refunded, Decimal("0")),
            currency=(order.currency or "").upper(),
            financial_status=(order.financial_status or "").lower(),
            fulfillment_status=(order.fulfillment_status or "").lower(),
            placed_at=order.placed_at,
            cancelled=order.cancelled_at is not None,
        )

    @property
    def fulfillment(self) -> str:
        return self.fulfillment_status or "unfulfilled"

    def describe(self) -> str:
        """ "order #1042: 250.00 EUR, paid, unfulfilled" — the facts a reason quotes."""
        amount = f"{self.value:.2f}" + (f" {self.currency}" if self.currency else "")
        status = [self.financial_status or "no payment status", self.fulfillment]
        if self.cancelled:
            status.append("cancelled")
        return f"order #{self.number}: {amount}, {', '.join(status)}"


@dataclass(frozen=True)
class TicketFacts:
    ticket_type: str | None  # the type's slug
    priority: str
    channel: str
    tier: str
    tags: frozenset[str] = field(default_factory=frozenset)
    order: OrderFacts | None = None  # the linked order, when one is and a policy asks
    now: datetime | None = None  # when the facts were read: order age is measured to it


@dataclass(frozen=True)
class PolicyRule:
    id: int
    name: str
    conditions: dict


def _fact_values(facts: TicketFacts) -> dict[str, set[str]]:
    return {
        "ticket_types": {facts.ticket_type} if facts.ticket_type else set(),
        "priorities": {facts.priority},
        "channels": {facts.channel},
        "tiers": {facts.tier},
        "tags": set(facts.tags),
    }


def _amount(value: Any) -> Decimal | None:
    """A condition amount as Decimal, or None when it is not one (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return None
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def _days(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def uses_order(conditions: dict) -> bool:
    """Whether a policy's conditions look at the linked order."""
    return any(conditions.get(key) not in (None, "", [], False) for key in ORDER_KEYS)


def any_uses_order(rules: Iterable[PolicyRule]) -> bool:
    """Whether any of the rules needs order facts (else they need not be read at all)."""
    return any(uses_order(rule.conditions) for rule in rules)


def _order_matches(conditions: dict, order: OrderFacts | None, now: datetime | None) -> bool:
    if not uses_order(conditions):
        return True
    if order is None:
        return False
    # Stored conditions were validated on save; anything unreadable fails closed: a
    # policy we cannot evaluate must not hand out its targets.
    low, high = conditions.get("order_value_min"), conditions.get("order_value_max")
    if low not in (None, ""):
        minimum = _amount(low)
        if minimum is None or order.value < minimum:
            return False
    if high not in (None, ""):
        maximum = _amount(high)
        if maximum is None or order.value >= maximum:
            return False
    currencies = conditions.get("order_currencies") or []
    if currencies and order.currency not in {str(c).upper() for c in currencies}:
        return False
    financial = conditions.get("order_financial_statuses") or []
    if financial and order.financial_status not in financial:
        return False
    fulfillment = conditions.get("order_fulfillment_statuses") or []
    if fulfillment and order.fulfillment not in fulfillment:
        return False
    days = conditions.get("order_unshipped_days")
    if days not in (None, ""):
        wanted = _days(days)
        if wanted is None or now is None or order.placed_at is None:
            return False
        if order.cancelled or order.fulfillment not in NOT_FULLY_SHIPPED:
            return False
        if order.placed_at > now - timedelta(days=wanted):
            return False
    changeable = conditions.get("order_address_changeable")
    return not (changeable and (order.cancelled or order.fulfillment != "unfulfilled"))


def matches(conditions: dict, facts: TicketFacts) -> bool:
    values = _fact_values(facts)
    for key in LIST_KEYS:
        wanted = conditions.get(key) or []
        if wanted and not values[key].intersection(wanted):
            return False
    return _order_matches(conditions, facts.order, facts.now)


def first_match(rules: Iterable[PolicyRule], facts: TicketFacts) -> PolicyRule | None:
    """The first rule (in the given order) whose conditions hold, or None."""
    return next((rule for rule in rules if matches(rule.conditions, facts)), None)


def _money(value: Any, conditions: dict) -> str:
    amount = _amount(value)
    text = f"{amount:.2f}" if amount is not None else str(value)
    currencies = [str(c).upper() for c in conditions.get("order_currencies") or []]
    return f"{text} {currencies[0]}" if len(currencies) == 1 else text


def _order_parts(conditions: dict) -> list[str]:
    parts = []
    low, high = conditions.get("order_value_min"), conditions.get("order_value_max")
    if low not in (None, "") and high not in (None, ""):
        parts.append(f"order value is at least {_money(low, conditions)} and below {_money(high, conditions)}")
    elif low not in (None, ""):
        parts.append(f"order value is at least {_money(low, conditions)}")
    elif high not in (None, ""):
        parts.append(f"order value is below {_money(high, conditions)}")
    currencies = [str(c).upper() for c in conditions.get("order_currencies") or []]
    if len(currencies) > 1 or (currencies and low in (None, "") and high in (None, "")):
        parts.append(f"order currency is {' or '.join(currencies)}")
    if conditions.get("order_financial_statuses"):
        labels = [FINANCIAL_STATUSES.get(s, s).lower() for s in conditions["order_financial_statuses"]]
        parts.append(f"payment is {' or '.join(labels)}")
    if conditions.get("order_fulfillment_statuses"):
        labels = [FULFILLMENT_STATUSES.get(s, s).lower() for s in conditions["order_fulfillment_statuses"]]
        parts.append(f"fulfillment is {' or '.join(labels)}")
    days = conditions.get("order_unshipped_days")
    if days not in (None, ""):
        unit = "day" if str(days) == "1" else "days"
        parts.append(f"order placed {days}+ {unit} ago and not fully shipped")
    if conditions.get("order_address_changeable"):
        parts.append("order not shipped yet (address can still change)")
    return parts


def explain(rule: PolicyRule, facts: TicketFacts | None = None) -> str:
    """A one-line human reason, e.g. "priority is urgent; channel is email or chat".

    With `facts`, a rule with order conditions also quotes the order it looked at:
    "order value is at least 200.00 EUR — order #1042: 250.00 EUR, paid, unfulfilled".
    """
    labels = {
        "ticket_types": "type",
        "priorities": "priority",
        "channels": "channel",
        "tiers": "customer tier",
        "tags": "tag",
    }
    parts = [
        f"{labels[key]} is {' or '.join(str(v) for v in rule.conditions[key])}"
        for key in LIST_KEYS
        if rule.conditions.get(key)
    ]
    parts += _order_parts(rule.conditions)
    text = "; ".join(parts) if parts else "it applies to every ticket"
    if facts is not None and facts.order is not None and uses_order(rule.conditions):
        text += f" — {facts.order.describe()}"
    return text


def _validate_amount(value: Any) -> tuple[Decimal | None, str]:
    amount = _amount(value)
    if amount is None:
        return None, "Give an amount such as 200 or 49.90."
    if amount < 0:
        return None, "An amount can’t be negative."
    if amount > MAX_ORDER_VALUE:
        return None, "That amount is larger than any order can be."
    if amount != amount.quantize(CENT, ROUND_HALF_UP):
        return None, "Use at most two decimals (cents)."
    return amount, ""


def _validate_order(key: str, value: Any) -> str:
    """The error for one order condition's value, or ""."""
    if key in ("order_value_min", "order_value_max"):
        return _validate_amount(value)[1]
    if key == "order_currencies":
        bad = [str(v) for v in value if not (isinstance(v, str) and len(v) == 3 and v.isascii() and v.isalpha())]
        return f"Use three-letter currency codes such as EUR or USD, not: {', '.join(bad)}." if bad else ""
    if key == "order_unshipped_days":
        days = _days(value)
        if days is None or not 1 <= days <= MAX_UNSHIPPED_DAYS:
            return f"Give a whole number of days from 1 to {MAX_UNSHIPPED_DAYS}."
        return ""
    if key == "order_address_changeable":
        return "" if isinstance(value, bool) else "Give true or false."
    return ""


def validate_conditions(conditions: dict, allowed: dict[str, Sequence[str]]) -> dict[str, str]:
    """Errors per key for unknown keys or values; `allowed` maps key -> valid values.

    Order statuses are checked against FINANCIAL_STATUSES / FULFILLMENT_STATUSES unless
    `allowed` names other lists for them.
    """
    allowed = {
        "order_financial_statuses": list(FINANCIAL_STATUSES),
        "order_fulfillment_statuses": list(FULFILLMENT_STATUSES),
        **allowed,
    }
    errors: dict[str, str] = {}
    for key, values in conditions.items():
        if key not in CONDITION_KEYS:
            errors[key] = f"Unknown condition “{key}”."
            continue
        if key in ORDER_KEYS and key not in ORDER_LIST_KEYS:
            if values not in (None, "") and (message := _validate_order(key, values)):
                errors[key] = message
            continue
        if not isinstance(values, list):
            errors[key] = "Give a list of values."
            continue
        unknown = [v for v in values if key in allowed and v not in allowed[key]]
        if unknown:
            errors[key] = f"Unknown value(s): {', '.join(map(str, unknown))}."
        elif key in ORDER_LIST_KEYS and (message := _validate_order(key, values)):
            errors[key] = message
    low = _amount(conditions.get("order_value_min")) if "order_value_min" not in errors else None
    high = _amount(conditions.get("order_value_max")) if "order_value_max" not in errors else None
    if low is not None and high is not None and high <= low:
        errors["order_value_max"] = "The upper bound must be above the lower one."
    return errors


def clean_conditions(conditions: dict) -> dict:
    """Validated conditions in their stored form: lists as lists, amounts as "200.00",
    currencies upper case, days as int; empty and false ones are left out."""
    cleaned: dict[str, Any] = {}
    for key in CONDITION_KEYS:
        value = conditions.get(key)
        if value in (None, "", [], False):
            continue
        if key in ("order_value_min", "order_value_max"):
            amount = _amount(value)
            cleaned[key] = f"{amount.quantize(CENT, ROUND_HALF_UP):.2f}" if amount is not None else str(value)
        elif key == "order_currencies":
            cleaned[key] = sorted({str(v).upper() for v in value})
        elif key == "order_unshipped_days":
            cleaned[key] = _days(value)
        elif key == "order_address_changeable":
            cleaned[key] = True
        else:
            cleaned[key] = list(value)
    return cleaned
