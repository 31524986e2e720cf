"""Forms of the notice settings pages: they parse input; the rules live in integrations.notices."""

from __future__ import annotations

from django import forms

from integrations.notices_models import NoticeEvent, NoticeSettings
from playbooks.models import ReplyTemplate


class NoticeSettingsForm(forms.Form):
    quiet_start = forms.TimeField(
        required=False,
        label="Quiet hours from",
        help_text="Store time. Notices due in quiet hours wait until they end.",
        widget=forms.TimeInput(attrs={"type": "time", "class": "sm"}, format="%H:%M"),
    )
    quiet_end = forms.TimeField(
        required=False,
        label="until",
        widget=forms.TimeInput(attrs={"type": "time", "class": "sm"}, format="%H:%M"),
    )
    delay_hours = forms.IntegerField(
        min_value=1,
        max_value=24 * 30,
        label="Delay after no carrier scan for (hours)",
        help_text="Also: a carrier exception, or the estimated delivery date passed.",
        widget=forms.NumberInput(attrs={"class": "sm"}),
    )
    from_name = forms.CharField(required=False, max_length=100, label="Sender name")
    from_email = forms.EmailField(
        required=False, label="Sender address", help_text="Empty: the system sender. Use a domain with SPF and DKIM."
    )
    reply_to = forms.EmailField(required=False, label="Replies go to")

    @classmethod
    def initial_from(cls, row: NoticeSettings) -> dict:
        return {
            "quiet_start": row.quiet_start,
            "quiet_end": row.quiet_end,
            "delay_hours": row.delay_hours,
            "from_name": row.from_name,
            "from_email": row.from_email,
            "reply_to": row.reply_to,
        }


class NoticeRuleForm(forms.Form):
    """One event's row in the rules table (prefixed by the event)."""

    template = forms.ModelChoiceField(queryset=ReplyTemplate.objects.none(), required=False, empty_label="— none —")
    enabled = forms.BooleanField(required=False)
    delay_minutes = forms.IntegerField(
        required=False, min_value=0, max_value=60 * 24 * 60, widget=forms.NumberInput(attrs={"class": "sm"})
    )

    def __init__(self, *args, tenant_id: int, event: str, **kwargs) -> None:
        kwargs["prefix"] = event
        super().__init__(*args, **kwargs)
        self.event = event
        templates = ReplyTemplate.objects.filter(tenant_id=tenant_id, kind=ReplyTemplate.Kind.NOTICE)
        self.fields["template"].queryset = templates.order_by("name")  # type: ignore[attr-defined]
        self.fields["template"].label = f"{NoticeEvent(event).label}: template"
        self.fields["enabled"].label = f"{NoticeEvent(event).label}: on"
        self.fields["delay_minutes"].label = f"{NoticeEvent(event).label}: delay in minutes"
