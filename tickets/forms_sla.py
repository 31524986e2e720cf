"""Forms of the SLA settings pages: parse what people type into the services' plain values.

The services validate again; these forms exist to turn "09:00–12:00, 13:00–17:00" and
"1h 30m" into minutes and to put each problem next to the field it is about.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import cast

from django import forms
from django.core.exceptions import ValidationError

from helpdesk.models import Tenant
from tickets import policy, sla
from tickets.defaults import warn_before
from tickets.models import (
    BusinessSchedule,
    Channel,
    Priority,
    SlaMetric,
    SlaPolicy,
    TicketType,
    Tier,
)
from tickets.services import normalise_tags
from tickets.services_sla import MAX_TARGET_MINUTES, TargetSpec, time_zones

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_TIME = r"(\d{1,2})(?:[:.h]?([0-5]\d))?"
_RANGE_RE = re.compile(rf"^{_TIME}\s*(?:-|–|—|to)\s*{_TIME}$", re.IGNORECASE)
_SPLIT_RE = re.compile(r"[,;\n]+")
_CLOSED = {"", "closed", "-", "–", "—"}


# --- Weekly hours -----------------------------------------------------------------------


def _minute(hours: str, minutes: str | None) -> int | None:
    h, m = int(hours), int(minutes or 0)
    if h > 24 or (h == 24 and m):
        return None
    return h * 60 + m


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def format_day(intervals: list[tuple[int, int]]) -> str:
    """ "09:00–12:00, 13:00–17:00" for one day's (start, end) minute pairs."""
    return ", ".join(f"{hhmm(start)}–{hhmm(end)}" for start, end in sorted(intervals))


def parse_day(text: str, day: str) -> list[tuple[int, int]]:
    """Parse one weekday's hours ("09:00–12:00, 13:00–17:00"; blank or "closed" = closed).

    Raises ValidationError naming the day and the piece that could not be read.
    """
    if text.strip().lower() in _CLOSED:
        return []
    result, errors = [], []
    for raw in _SPLIT_RE.split(text):
        part = raw.strip()
        if not part:
            continue
        match = _RANGE_RE.match(part)
        start = _minute(match.group(1), match.group(2)) if match else None
        end = _minute(match.group(3), match.group(4)) if match else None
        if start is None or end is None:
            errors.append(f"{day}: “{part}” is not a time range. Write it like 09:00–17:00.")
            continue
        result.append((start, end))
    if errors:
        raise ValidationError(errors)
    return result


class ScheduleForm(forms.Form):
    """Name, time zone and a week of opening hours, one text field per weekday."""

    name = forms.CharField(max_length=100)
    timezone = forms.ChoiceField(label="Time zone", help_text="Opening hours are local times in this zone.")

    def __init__(self, *args, instance: BusinessSchedule | None = None, **kwargs):
        if instance is not None and "initial" not in kwargs:
            by_day: dict[int, list[tuple[int, int]]] = {}
            for weekday, start, end in instance.intervals:
                by_day.setdefault(weekday, []).append((start, end))
            kwargs["initial"] = {
                "name": instance.name,
                "timezone": instance.timezone,
                **{f"day_{n}": format_day(by_day.get(n, [])) for n in range(7)},
            }
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["timezone"]).choices = [(z, z.replace("_", " ")) for z in time_zones()]
        for n, day in enumerate(WEEKDAYS):
            self.fields[f"day_{n}"] = forms.CharField(
                label=day,
                required=False,
                max_length=200,
                widget=forms.TextInput(attrs={"placeholder": "Closed", "autocomplete": "off"}),
            )

    def day_fields(self) -> Iterator[forms.BoundField]:
        for n in range(7):
            yield self[f"day_{n}"]

    def clean(self) -> dict:
        super().clean()
        cleaned = self.cleaned_data
        intervals: list[list[int]] = []
        for n, day in enumerate(WEEKDAYS):
            key = f"day_{n}"
            if key not in cleaned:
                continue
            try:
                pairs = parse_day(cleaned[key], day)
            except ValidationError as exc:
                self.add_error(key, exc)
                continue
            problems = sla.validate_intervals(sla.WeeklyInterval(n, start, end) for start, end in pairs)
            if problems:
                self.add_error(key, [f"{problem}." for problem in problems])
                continue
            intervals += [[n, start, end] for start, end in pairs]
        if not intervals and not any(k.startswith("day_") for k in self.errors):
            self.add_error(None, "Open at least one day: a schedule with no open hours never lets a clock run.")
        cleaned["intervals"] = sorted(intervals)
        return cleaned


class HolidayForm(forms.Form):
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    name = forms.CharField(
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "e.g. Christmas Day"}),
    )


# --- SLA policies -----------------------------------------------------------------------

_DURATION_RE = re.compile(
    r"^(?:(?P<d>\d+)\s*d(?:ays?)?)?\s*(?:(?P<h>\d+)\s*h(?:ours?|rs?)?)?\s*(?:(?P<m>\d+)\s*m(?:in(?:utes?|s)?)?)?$",
    re.IGNORECASE,
)
_CLOCK_RE = re.compile(r"^(\d+):([0-5]\d)$")


def parse_duration(text: str) -> int | None:
    """Minutes in "4h", "1h 30m", "90m", "1:30", "2d" or a bare number of minutes; None if blank."""
    text = text.strip().lower()
    if not text:
        return None
    if text.isdigit():
        return int(text)
    if match := _CLOCK_RE.match(text):
        return int(match.group(1)) * 60 + int(match.group(2))
    match = _DURATION_RE.match(text)
    if not match or not any(match.groupdict().values()):
        raise ValidationError(f"“{text}” is not a duration. Write it like 4h, 1h 30m or 90m.")
    parts = {k: int(v or 0) for k, v in match.groupdict().items()}
    return parts["d"] * 24 * 60 + parts["h"] * 60 + parts["m"]


def format_duration(minutes: int) -> str:
    """ "4h", "1h 30m", "45m": how targets are shown and pre-filled."""
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours}h {rest}m"
    return f"{hours}h" if hours else f"{rest}m"


CLOCK_CHOICES = [("business", "Business hours"), ("calendar", "Calendar hours")]
ORDER_VALUE_HELP = "In the order’s own currency, after refunds. Blank: no limit."
TAG_HELP = "Comma-separated, e.g. vip, wholesale. The policy applies when a ticket has any of them."


def _cell(metric: str, priority: str, part: str) -> str:
    return f"t_{metric}_{priority}_{part}"


class PolicyForm(forms.Form):
    """A policy's name, conditions, schedule and its metric × priority target grid."""

    name = forms.CharField(max_length=100)
    ticket_types = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple, label="Ticket types")
    priorities = forms.MultipleChoiceField(
        required=False, choices=Priority.choices, widget=forms.CheckboxSelectMultiple
    )
    channels = forms.MultipleChoiceField(required=False, choices=Channel.choices, widget=forms.CheckboxSelectMultiple)
    tiers = forms.MultipleChoiceField(
        required=False,
        choices=Tier.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Customer tiers",
    )
    tags = forms.CharField(required=False, max_length=500, help_text=TAG_HELP)
    # Conditions on the ticket's linked order (tickets.policy). Amounts are text so that a
    # typo gets our message, not the browser's.
    order_value_min = forms.CharField(
        required=False,
        max_length=20,
        label="Order value at least",
        help_text=ORDER_VALUE_HELP,
        widget=forms.TextInput(attrs={"placeholder": "e.g. 200", "inputmode": "decimal", "autocomplete": "off"}),
    )
    order_value_max = forms.CharField(
        required=False,
        max_length=20,
        label="Order value below",
        help_text=ORDER_VALUE_HELP,
        widget=forms.TextInput(attrs={"placeholder": "e.g. 50", "inputmode": "decimal", "autocomplete": "off"}),
    )
    order_currencies = forms.CharField(
        required=False,
        max_length=100,
        label="Order currencies",
        help_text="Comma-separated codes, e.g. EUR, USD: the values above are meant in these. Blank: any.",
        widget=forms.TextInput(attrs={"placeholder": "Any currency", "autocomplete": "off"}),
    )
    order_financial_statuses = forms.MultipleChoiceField(
        required=False,
        choices=list(policy.FINANCIAL_STATUSES.items()),
        widget=forms.CheckboxSelectMultiple,
        label="Payment status",
    )
    order_fulfillment_statuses = forms.MultipleChoiceField(
        required=False,
        choices=list(policy.FULFILLMENT_STATUSES.items()),
        widget=forms.CheckboxSelectMultiple,
        label="Fulfillment status",
    )
    order_unshipped_days = forms.IntegerField(
        required=False,
        label="Late shipment: not fully shipped after (days)",
        help_text="Matches when the order was placed at least this many days ago, isn’t cancelled and hasn’t "
        "fully shipped. Checked when the ticket or the order changes.",
        widget=forms.NumberInput(attrs={"placeholder": "e.g. 3", "style": "width:6em"}),
        error_messages={"invalid": "Give a whole number of days, e.g. 3."},
    )
    order_address_changeable = forms.BooleanField(
        required=False,
        label="Address can still change: nothing shipped yet and not cancelled",
        help_text="With your address-change ticket type, this is “address change requested before fulfillment”.",
    )
    schedule = forms.ModelChoiceField(queryset=BusinessSchedule.objects.none(), required=False)
    pause_on_hold = forms.BooleanField(
        required=False,
        label="Pause clocks while a ticket is on hold",
        help_text="Waiting on the customer always pauses; this also pauses while on hold (e.g. waiting on a supplier).",
    )

    def __init__(self, *args, tenant: Tenant, instance: SlaPolicy | None = None, **kwargs):
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = self._initial_from(instance)
        super().__init__(*args, **kwargs)
        types = list(TicketType.objects.filter(tenant=tenant).order_by("position", "name"))
        cast(forms.ChoiceField, self.fields["ticket_types"]).choices = [
            (t.slug, t.name if t.is_active else f"{t.name} (inactive)") for t in types
        ]
        schedules = BusinessSchedule.objects.filter(tenant=tenant).order_by("-is_default", "name")
        default = next((s for s in schedules if s.is_default), None)
        schedule_field = cast(forms.ModelChoiceField, self.fields["schedule"])
        schedule_field.queryset = schedules
        schedule_field.empty_label = f"Workspace default ({default.name})" if default else "Workspace default"
        schedule_field.help_text = "Business-hours targets only count time when this schedule is open."
        for metric in SlaMetric.values:
            for priority in Priority.values:
                self.fields[_cell(metric, priority, "time")] = forms.CharField(
                    required=False,
                    max_length=30,
                    label=f"{SlaMetric(metric).label}, {Priority(priority).label}: target",
                    widget=forms.TextInput(attrs={"placeholder": "No target", "class": "sm", "autocomplete": "off"}),
                )
                self.fields[_cell(metric, priority, "clock")] = forms.ChoiceField(
                    choices=CLOCK_CHOICES,
                    required=False,
                    initial="business",
                    label=f"{SlaMetric(metric).label}, {Priority(priority).label}: hours",
                    widget=forms.Select(attrs={"class": "sm"}),
                )
                self.fields[_cell(metric, priority, "warn")] = forms.IntegerField(
                    required=False,
                    min_value=0,
                    max_value=MAX_TARGET_MINUTES,
                    label=f"{SlaMetric(metric).label}, {Priority(priority).label}: warn before (minutes)",
                    widget=forms.NumberInput(attrs={"placeholder": "auto", "class": "sm", "style": "width:5.5em"}),
                )

    @staticmethod
    def _initial_from(instance: SlaPolicy) -> dict:
        conditions = instance.conditions or {}
        initial: dict = {
            "name": instance.name,
            "ticket_types": conditions.get("ticket_types", []),
            "priorities": conditions.get("priorities", []),
            "channels": conditions.get("channels", []),
            "tiers": conditions.get("tiers", []),
            "tags": ", ".join(conditions.get("tags", [])),
            "order_value_min": conditions.get("order_value_min", ""),
            "order_value_max": conditions.get("order_value_max", ""),
            "order_currencies": ", ".join(conditions.get("order_currencies", [])),
            "order_financial_statuses": conditions.get("order_financial_statuses", []),
            "order_fulfillment_statuses": conditions.get("order_fulfillment_statuses", []),
            "order_unshipped_days": conditions.get("order_unshipped_days"),
            "order_address_changeable": bool(conditions.get("order_address_changeable")),
            "schedule": instance.schedule_id,
            "pause_on_hold": instance.pause_on_hold,
        }
        for target in instance.targets.all():
            initial[_cell(target.metric, target.priority, "time")] = format_duration(target.minutes)
            initial[_cell(target.metric, target.priority, "clock")] = (
                "business" if target.business_hours else "calendar"
            )
            initial[_cell(target.metric, target.priority, "warn")] = target.warn_before_minutes
        return initial

    def target_rows(self) -> list[dict]:
        """Rows for the grid template: one group per metric, one row per priority."""
        return [
            {
                "metric": SlaMetric(metric).label,
                "rows": [
                    {
                        "priority": Priority(priority),
                        "time": self[_cell(metric, priority, "time")],
                        "clock": self[_cell(metric, priority, "clock")],
                        "warn": self[_cell(metric, priority, "warn")],
                    }
                    for priority in reversed(Priority.values)
                ],
            }
            for metric in SlaMetric.values
        ]

    def clean_tags(self) -> list[str]:
        try:
            return normalise_tags(self.cleaned_data["tags"].split(","))
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc

    def clean(self) -> dict:
        super().clean()
        cleaned = self.cleaned_data
        targets: dict[tuple[str, str], TargetSpec] = {}
        for metric in SlaMetric.values:
            for priority in Priority.values:
                time_key, clock_key, warn_key = (_cell(metric, priority, p) for p in ("time", "clock", "warn"))
                try:
                    minutes = parse_duration(cleaned.get(time_key) or "")
                except ValidationError as exc:
                    self.add_error(time_key, exc)
                    continue
                if minutes is None:
                    continue
                if not 0 < minutes <= MAX_TARGET_MINUTES:
                    self.add_error(time_key, "A target is between 1 minute and 365 days.")
                    continue
                warn = cleaned.get(warn_key)
                if warn is None:
                    warn = warn_before(minutes)
                    # Short targets: the default warning must still come before the deadline.
                    warn = min(warn, minutes - 1)
                elif warn >= minutes:
                    self.add_error(
                        warn_key,
                        f"Warn before the target is due: less than {minutes} minutes ({format_duration(minutes)}).",
                    )
                    continue
                targets[(metric, priority)] = TargetSpec(
                    minutes=minutes,
                    business_hours=cleaned.get(clock_key, "business") != "calendar",
                    warn_before_minutes=warn,
                )
        if not targets and not any(key.startswith("t_") for key in self.errors):
            self.add_error(None, "Set at least one target.")
        cleaned["targets"] = targets
        cleaned["conditions"] = {
            key: list(cleaned.get(key) or []) for key in ("ticket_types", "priorities", "channels", "tiers", "tags")
        }
        cleaned["conditions"].update(self._order_conditions(cleaned))
        return cleaned

    def _order_conditions(self, cleaned: dict) -> dict:
        """The order conditions as policy.validate_conditions takes them; each problem is
        put next to its field."""
        currencies = [c.strip().upper() for c in (cleaned.get("order_currencies") or "").split(",")]
        raw = {
            "order_value_min": (cleaned.get("order_value_min") or "").strip(),
            "order_value_max": (cleaned.get("order_value_max") or "").strip(),
            "order_currencies": [c for c in currencies if c],
            "order_financial_statuses": list(cleaned.get("order_financial_statuses") or []),
            "order_fulfillment_statuses": list(cleaned.get("order_fulfillment_statuses") or []),
            "order_unshipped_days": cleaned.get("order_unshipped_days"),
            "order_address_changeable": bool(cleaned.get("order_address_changeable")),
        }
        present = {key: value for key, value in raw.items() if key in self.fields and key not in self.errors}
        for key, message in policy.validate_conditions(present, {}).items():
            self.add_error(key, message)
        return {key: value for key, value in present.items() if key not in self.errors}


# --- Ticket types -----------------------------------------------------------------------


class TicketTypeForm(forms.Form):
    name = forms.CharField(max_length=80)
    slug = forms.SlugField(
        max_length=80,
        required=False,
        help_text="Used in SLA conditions, the API and rules. Leave blank to make one from the name.",
    )
    description = forms.CharField(
        max_length=200,
        required=False,
        help_text="What belongs here, shown to agents when they pick a type.",
    )
    is_active = forms.BooleanField(
        required=False,
        initial=True,
        label="Active",
        help_text="Inactive types stay on old tickets but can’t be picked.",
    )

    def __init__(self, *args, instance: TicketType | None = None, **kwargs):
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": instance.name,
                "slug": instance.slug,
                "description": instance.description,
                "is_active": instance.is_active,
            }
        super().__init__(*args, **kwargs)
