"""Small filters for the playbook pages."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def get_item(mapping: Any, key: Any) -> Any:
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def hours_label(minutes: int | None) -> str:
    """90 → "1.5 business hours"; 480 → "8 business hours"."""
    if not minutes:
        return ""
    hours = minutes / 60
    text = f"{hours:g}" if hours >= 1 else f"{minutes} min"
    return f"{text} business hour{'s' if hours != 1 else ''}" if hours >= 1 else f"{text} of business time"
