"""Small HTML pieces rendered in Python: used once per row on hot pages, where an
{% include %} per row costs more than the rest of the page."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince, timeuntil

from tickets.models import NO_DUE

register = template.Library()


@register.simple_tag
def sla_badge(due: datetime | None, level: str, now: datetime) -> SafeString:
    """The SLA countdown badge; queue.js keeps its text and colour current."""
    if not due or level == "none" or due >= NO_DUE:
        return format_html('<span class="badge sla-none" title="No SLA clock running">—</span>')
    css = {"breached": "danger", "warning": "warn"}.get(level, "ok")
    text = f"{timesince(due, now, depth=2)} late" if level == "breached" else f"in {timeuntil(due, now, depth=2)}"
    return format_html(
        '<span class="badge sla {}" data-due="{}" title="Due {}">{}</span>',
        css,
        due.isoformat(),
        due.strftime("%a %d %b, %H:%M"),
        text,
    )


@register.simple_tag
def priority_label(priority: str, label: str) -> SafeString:
    return format_html('<span class="prio prio-{}" title="{} priority">{}</span>', priority, label, label)


@register.simple_tag
def status_label(status: str, label: str) -> SafeString:
    return format_html('<span class="status status-{}">{}</span>', status, label)


def _metric(data: dict) -> str:
    return str(data.get("metric", "")).replace("_", " ").capitalize()


@register.simple_tag
def event_line(event) -> SafeString:
    """One human sentence for a timeline event (kinds written by tickets.services)."""
    d, who, kind = event.data or {}, event.actor_label or "System", event.kind
    if kind == "created":
        return format_html("<strong>{}</strong> opened the ticket via {}", who, d.get("channel", ""))
    if kind in ("status", "priority"):
        return format_html(
            "<strong>{}</strong> changed {} {} → <strong>{}</strong>", who, kind, d.get("old"), d.get("new")
        )
    if kind == "type":
        return format_html("<strong>{}</strong> set type to <strong>{}</strong>", who, d.get("new") or "none")
    if kind == "assigned":
        if d.get("to"):
            return format_html("<strong>{}</strong> assigned it to <strong>{}</strong>", who, d["to"])
        return format_html("<strong>{}</strong> unassigned it", who)
    if kind == "team":
        return format_html("<strong>{}</strong> moved it to team <strong>{}</strong>", who, d.get("to"))
    if kind == "tags":
        parts = []
        if d.get("added"):
            parts.append("added " + ", ".join(d["added"]))
        if d.get("removed"):
            parts.append("removed " + ", ".join(d["removed"]))
        return format_html("<strong>{}</strong> {}", who, "; ".join(parts) or "changed tags")
    simple = {
        "subject": ("<strong>{}</strong> renamed it", who),
        "reply": ("<strong>{}</strong> replied", who),
        "note": ("<strong>{}</strong> added a note", who),
        "customer_message": ("Customer wrote again{}", ""),
        "sla_paused": ("Resolution clock paused ({})", d.get("reason", "")),
        "sla_resumed": ("Resolution clock resumed{}", ""),
        "sla_reactivated": ("Resolution clock running again (reopened){}", ""),
        "sla_started": ("Next-response clock started{}", ""),
    }
    if kind in simple:
        fmt, arg = simple[kind]
        return format_html(fmt, arg)
    if kind == "sla_policy":
        return format_html(
            "SLA policy <strong>{}</strong> applies — {}", d.get("policy") or "none", d.get("reason", "")
        )
    if kind == "sla_fulfilled":
        return format_html("{} SLA met{}", _metric(d), " (late)" if d.get("breached") else "")
    if kind == "sla_breached":
        return format_html('<span class="danger-text">{} SLA breached</span>', _metric(d))
    if kind == "sla_warning":
        return format_html('<span class="warn-text">{} SLA due soon</span>', _metric(d))
    if kind == "shipment_delayed":
        tracking = f" ({d['tracking_number']})" if d.get("tracking_number") else ""
        return format_html(
            '<span class="warn-text">Shipment of order {}{} is late</span>: {}',
            d.get("order", ""),
            tracking,
            str(d.get("reason", "")).lower() or "no carrier scan",
        )
    if kind == "checklist":
        verb = "ticked" if d.get("ticked") else "unticked"
        return format_html("<strong>{}</strong> {} “{}”", who, verb, d.get("item", ""))
    if kind.startswith("order_"):
        return _order_event_line(kind, d, who)
    if kind.startswith("escalat") or kind == "csat":
        return _escalation_event_line(kind, d, who)
    return format_html("{}", kind.replace("_", " "))


_ESCALATION_VERBS = {
    "escalation_acknowledged": "acknowledged the escalation to",
    "escalation_answered": "answered the escalation for",
    "escalation_resolved": "resolved the escalation to",
    "escalation_cancelled": "cancelled the escalation to",
}


def _escalation_event_line(kind: str, d: dict, who: str) -> SafeString:
    """Timeline lines for escalations and CSAT (written by tickets.services_escalations/_csat)."""
    team = d.get("team", "")
    if kind == "escalated":
        return format_html("<strong>{}</strong> escalated to <strong>{}</strong>", who, team)
    if kind in _ESCALATION_VERBS:
        return format_html("<strong>{}</strong> {} <strong>{}</strong>", who, _ESCALATION_VERBS[kind], team)
    if kind == "escalation_reminder":
        return format_html('<span class="warn-text">Escalation to {} due soon</span>', team)
    if kind == "escalation_overdue":
        return format_html('<span class="danger-text">Escalation to {} overdue</span>', team)
    if kind == "csat":
        again = " (changed)" if d.get("updated") else ""
        return format_html(
            "Customer rated <strong>{}/5</strong>{}{}", d.get("rating", "?"), again, _quoted(d.get("comment", ""))
        )
    return format_html("{}", kind.replace("_", " "))


_LINK_HOW = {
    "order_number": "the order number given",
    "subject": "number in the subject",
    "message": "number in the message",
}


def _quoted(note: str) -> SafeString:
    return format_html(": “{}”", note) if note else mark_safe("")


def _order_event_line(kind: str, d: dict, who: str) -> SafeString:
    """Timeline lines for order links and order actions (written by integrations)."""
    summary, order = d.get("summary", ""), d.get("order", "")
    if kind == "order_linked":
        if d.get("how") == "agent":
            was = format_html(" (was {})", d["previous"]) if d.get("previous") else ""
            return format_html("<strong>{}</strong> linked order <strong>{}</strong>{}", who, order, was)
        how = _LINK_HOW.get(d.get("how", ""), "the customer’s latest order")
        return format_html("Linked to order <strong>{}</strong> ({})", order, how)
    if kind == "order_action_requested":
        extra = mark_safe("")
        if d.get("status") == "awaiting_approval":
            reason = format_html(" ({})", d["approval_reason"]) if d.get("approval_reason") else ""
            extra = format_html(' — <span class="warn-text">needs approval</span>{}', reason)
        return format_html("<strong>{}</strong> asked: {} on {}{}", who, summary, order, extra)
    if kind in ("order_action_approved", "order_action_rejected"):
        verb = "approved" if kind.endswith("approved") else "rejected"
        return format_html("<strong>{}</strong> {} {} on {}{}", who, verb, summary, order, _quoted(d.get("note", "")))
    if kind == "order_action_succeeded":
        return format_html("{} on {} done in the store", summary, order)
    if kind == "order_action_failed":
        error = format_html(": {}", d["error"]) if d.get("error") else ""
        return format_html('<span class="danger-text">{} on {} failed</span>{}', summary, order, error)
    if kind == "order_action_retried":
        return format_html("<strong>{}</strong> retried {} on {}", who, summary, order)
    return format_html("{}", kind.replace("_", " "))


# --- fast time formatting for long pages ----------------------------------------------
# Django's `date` and `timesince` filters cost ~0.1 ms each (localised formats and
# translations); the ticket page shows two or three per message and event. These give the
# same text for the formats the pages use, from strftime on the local time.
_STRFTIME = {
    "D j M Y, H:i": "%a %-d %b %Y, %H:%M",
    "D j M Y, H:i:s": "%a %-d %b %Y, %H:%M:%S",
    "D j M, H:i": "%a %-d %b, %H:%M",
    "j M H:i": "%-d %b %H:%M",
    "j M Y": "%-d %b %Y",
}
_UNITS = (
    (365 * 86400, "year"),
    (30 * 86400, "month"),
    (7 * 86400, "week"),
    (86400, "day"),
    (3600, "hour"),
    (60, "minute"),
)


@register.filter
def stamp(value, fmt: str = "D j M Y, H:i") -> str:
    """`{{ t|stamp:"j M H:i" }}`: a date in the active time zone; "c" gives ISO 8601."""
    if not value:
        return ""
    local = timezone.localtime(value)
    if fmt == "c":
        return local.isoformat()
    pattern = _STRFTIME.get(fmt)
    if pattern is None:
        from django.template.defaultfilters import date as date_filter

        return date_filter(value, fmt)
    return local.strftime(pattern)


@register.filter
def ago(value, now=None) -> str:
    """Like `timesince`: the two largest adjacent units ("2 weeks, 5 days"), or "0 minutes"."""
    if not value:
        return ""
    seconds = max(0, int(((now or timezone.now()) - value).total_seconds()))
    for index, (size, name) in enumerate(_UNITS):
        count = seconds // size
        if count:
            text = f"{count}\xa0{name}{'s' if count != 1 else ''}"
            if index + 1 < len(_UNITS):
                next_size, next_name = _UNITS[index + 1]
                rest = (seconds - count * size) // next_size
                if rest:
                    text += f", {rest}\xa0{next_name}{'s' if rest != 1 else ''}"
            return text
    return "0\xa0minutes"
