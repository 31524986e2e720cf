"""Template filters for the order card: money, status badges, addresses."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from integrations import formatting
from integrations.address import one_line
from integrations.clients import strip_marker

register = template.Library()


@register.filter
def money(amount: object, currency: str = "") -> str:
    """{{ order.total|money:order.currency }} → "€39.90"."""
    return formatting.money(amount, currency)


@register.simple_tag
def status_badge(kind: str, value: str | None) -> str:
    """{% status_badge "financial" order.financial_status %} → a badge in the right tone."""
    label, tone = formatting.status_badge(kind, value)
    return format_html('<span class="badge {}">{}</span>', tone, label)


@register.filter
def address_line(address: dict | None) -> str:
    return one_line(address or {})


@register.filter
def address_lines(address: dict | None) -> list[str]:
    """An address as the lines a label shows, tolerant of Woo/Magento key spellings."""
    a = address or {}
    name = a.get("name") or " ".join(p for p in (a.get("first_name"), a.get("last_name")) if p)
    street = [
        a.get("address1") or a.get("address_1") or "",
        a.get("address2") or a.get("address_2") or "",
    ]
    town = " ".join(p for p in (a.get("zip") or a.get("postcode") or "", a.get("city") or "") if p)
    region = a.get("province_code") or a.get("province") or a.get("state") or ""
    country = a.get("country_code") or a.get("country") or ""
    return [
        line
        for line in (
            name,
            a.get("company", ""),
            *street,
            town,
            ", ".join(p for p in (region, country) if p),
        )
        if line
    ]


@register.filter
def action_summary(action) -> str:
    """ "Refund €20.00 (2 items)" for an OrderAction."""
    from integrations.action_rules import describe

    return describe(action.kind, action.params or {})


@register.filter
def without_marker(note: str) -> str:
    """A refund note without our idempotency tag (the platform keeps it; people needn't)."""
    return strip_marker(note or "")
