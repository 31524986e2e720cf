"""How orders read on screen and in timelines: money, and status words with badge tones.

Pure functions over plain values, shared by templates (integrations.templatetags) and the
summaries that services write into timeline events.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

SYMBOLS = {
    "EUR": "€",
    "USD": "$",
    "GBP": "£",
    "JPY": "¥",
    "INR": "₹",
    "AUD": "A$",
    "CAD": "CA$",
    "NZD": "NZ$",
}


def money(amount: object, currency: str = "") -> str:
    """ "€39.90", "CHF 39.90", or "39.90" without a currency; "" for nothing."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return str(amount)
    sign = "−" if value < 0 else ""
    text = f"{abs(value):,.2f}"
    currency = (currency or "").upper()
    symbol = SYMBOLS.get(currency)
    if symbol:
        return f"{sign}{symbol}{text}"
    return f"{sign}{currency} {text}".strip() if currency else f"{sign}{text}"


# (label, badge tone) per status word; tones are the design system's badge classes.
FINANCIAL = {
    "pending": ("Payment pending", "warn"),
    "authorized": ("Authorized", "info"),
    "partially_paid": ("Partially paid", "warn"),
    "paid": ("Paid", "ok"),
    "partially_refunded": ("Partly refunded", "warn"),
    "refunded": ("Refunded", "note"),
    "voided": ("Voided", "danger"),
}
FULFILLMENT = {
    "": ("Unfulfilled", ""),
    "unfulfilled": ("Unfulfilled", ""),
    "partial": ("Partly shipped", "info"),
    "fulfilled": ("Shipped", "ok"),
    "restocked": ("Restocked", "note"),
}
SHIPMENT = {
    "label_created": ("Label created", ""),
    "in_transit": ("In transit", "info"),
    "out_for_delivery": ("Out for delivery", "info"),
    "pickup_ready": ("Ready for pickup", "info"),
    "attempt_failed": ("Delivery attempt failed", "warn"),
    "delivered": ("Delivered", "ok"),
    "exception": ("Exception", "danger"),
    "unknown": ("No tracking yet", ""),
}
ACTION_STATUS = {
    "awaiting_approval": ("Awaiting approval", "warn"),
    "queued": ("Queued", "info"),
    "running": ("Running", "info"),
    "succeeded": ("Done", "ok"),
    "failed": ("Failed", "danger"),
    "rejected": ("Rejected", ""),
}
RETURN = {
    "requested": ("Return requested", "warn"),
    "open": ("Return open", "info"),
    "approved": ("Return approved", "info"),
    "declined": ("Return declined", ""),
    "closed": ("Return closed", ""),
    "cancelled": ("Return cancelled", ""),
    "canceled": ("Return cancelled", ""),
}
TABLES = {
    "financial": FINANCIAL,
    "fulfillment": FULFILLMENT,
    "shipment": SHIPMENT,
    "action": ACTION_STATUS,
    "return": RETURN,
}


def status_badge(kind: str, value: str | None) -> tuple[str, str]:
    """(label, tone) for a status word; unknown words are shown as they are, neutral."""
    value = (value or "").strip().lower()
    found = TABLES[kind].get(value)
    if found:
        return found
    return (value.replace("_", " ").replace("-", " ").capitalize() or "—", "")
