"""Forms for the playbook editor and the reply/notice template editor (parsing only)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.http import QueryDict

from helpdesk.models import LANGUAGES, Membership, Tenant, User
from playbooks.models import REQUIRED_FIELD_CHOICES, PlaybookVersion, ReplyTemplate
from tickets.models import Team


class PlaybookForm(forms.Form):
    owner_team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, label="Owner team")
    owner_user: forms.ModelChoiceField = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, label="Owner (a person)"
    )
    replies = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Approved replies",
        help_text="Agents see these first when they insert a reply on a ticket of this type.",
    )
    required_fields = forms.MultipleChoiceField(
        required=False,
        choices=list(REQUIRED_FIELD_CHOICES.items()),
        widget=forms.CheckboxSelectMultiple,
        label="Must be set before solving",
    )
    escalation_team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, label="Escalate to")
    escalation_due_hours = forms.DecimalField(
        required=False,
        min_value=Decimal("0.25"),
        max_value=Decimal(24 * 30),
        decimal_places=2,
        label="Due within (business hours)",
        help_text="Counted in the target team’s business hours.",
        widget=forms.NumberInput(attrs={"step": "0.25", "min": "0.25"}),
    )
    escalation_summary = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "true"}),
        label="Escalation summary template",
        help_text="Prefilled when an agent escalates; they edit it before sending.",
    )
    note = forms.CharField(
        required=False, max_length=200, label="What changed", help_text="Shown in the version history."
    )

    def __init__(self, *args, tenant: Tenant, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        teams = Team.objects.filter(tenant=tenant).order_by("name")
        self.fields["owner_team"].queryset = teams  # type: ignore[attr-defined]
        self.fields["escalation_team"].queryset = teams  # type: ignore[attr-defined]
        self.fields["owner_user"].queryset = User.objects.filter(  # type: ignore[attr-defined]
            pk__in=Membership.objects.filter(tenant=tenant).values("user_id")
        ).order_by("name", "email")
        self.fields["replies"].choices = [  # type: ignore[attr-defined]
            (str(t.pk), t.name)
            for t in ReplyTemplate.objects.filter(tenant=tenant, kind=ReplyTemplate.Kind.REPLY, is_active=True)
        ]

    @staticmethod
    def initial_from(version: PlaybookVersion | None) -> dict:
        if version is None:
            return {}
        return {
            "owner_team": version.owner_team_id,
            "owner_user": version.owner_user_id,
            "replies": [str(r) for r in version.replies],
            "required_fields": version.required_fields,
            "escalation_team": version.escalation_team_id,
            "escalation_due_hours": (
                Decimal(version.escalation_due_minutes) / 60 if version.escalation_due_minutes else None
            ),
            "escalation_summary": version.escalation_summary,
        }


def checklist_from_post(data: QueryDict) -> list[dict]:
    """Rows of the checklist editor in the order shown.

    Each row posts `item_row` (a token unique in the form), `item_key` (its stable key, ""
    for a new item) and `item_text`; a ticked `item_required` checkbox posts the row token,
    so rows can be re-ordered in the page without renumbering anything.
    """
    rows = data.getlist("item_row")
    keys = data.getlist("item_key")
    texts = data.getlist("item_text")
    required = set(data.getlist("item_required"))
    items = []
    for index, text in enumerate(texts):
        token = rows[index] if index < len(rows) else ""
        key = keys[index] if index < len(keys) else ""
        items.append({"key": key, "text": text, "required": bool(token) and token in required, "row": token})
    return items


class TemplateForm(forms.Form):
    name = forms.CharField(max_length=120)
    collection = forms.CharField(
        max_length=80,
        required=False,
        label="Reply set",
        help_text="Optional: group replies that are not tied to one ticket type, e.g. “Shipping policy”.",
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for code, label in LANGUAGES:
            self.fields[f"{code}-subject"] = forms.CharField(required=False, max_length=250, label=f"Subject ({label})")
            self.fields[f"{code}-body"] = forms.CharField(
                required=False,
                label=f"Message ({label})",
                widget=forms.Textarea(attrs={"rows": 9, "spellcheck": "true", "class": "mono-ish"}),
            )

    def variants(self) -> dict[str, dict[str, str]]:
        return {
            code: {
                "subject": self.cleaned_data.get(f"{code}-subject", ""),
                "body": self.cleaned_data.get(f"{code}-body", ""),
            }
            for code, _ in LANGUAGES
        }

    def language_rows(self) -> list[tuple[str, str, forms.BoundField, forms.BoundField]]:
        return [(code, label, self[f"{code}-subject"], self[f"{code}-body"]) for code, label in LANGUAGES]

    @staticmethod
    def initial_from(template: ReplyTemplate) -> dict:
        initial: dict = {"name": template.name, "collection": template.collection, "is_active": template.is_active}
        for variant in template.variants.all():
            initial[f"{variant.language}-subject"] = variant.subject
            initial[f"{variant.language}-body"] = variant.body
        return initial
