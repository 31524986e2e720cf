"""Forms of the escalation pages and the public CSAT survey."""

from __future__ import annotations

from typing import cast

from django import forms

from helpdesk.models import User
from tickets.models import Team
from tickets.services_csat import MAX_COMMENT

DUE_FORMAT = "%Y-%m-%dT%H:%M"


class EscalationForm(forms.Form):
    """One step: team, owner, due date (in the workspace's time zone) and the summary."""

    team = forms.ChoiceField(
        label="Escalate to team",
        error_messages={
            "required": "Choose the team to escalate to.",
            "invalid_choice": "Choose the team to escalate to.",
        },
    )
    owner = forms.ChoiceField(label="Owner", required=False)
    due_at = forms.DateTimeField(
        label="Due",
        input_formats=[DUE_FORMAT, "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DUE_FORMAT),
    )
    summary = forms.CharField(
        label="Summary for the team",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 6}),
        error_messages={"required": "Write a summary the other team can act on."},
    )

    def __init__(self, *args, teams: list[Team], people: list[User], **kwargs):
        super().__init__(*args, **kwargs)
        self.teams = {str(t.pk): t for t in teams}
        self.people = {str(p.pk): p for p in people}
        cast(forms.ChoiceField, self.fields["team"]).choices = [
            ("", "Choose a team…"),
            *[(str(t.pk), t.name) for t in teams],
        ]
        cast(forms.ChoiceField, self.fields["owner"]).choices = [
            ("", "Team lead decides"),
            *[(str(p.pk), p.display_name) for p in people],
        ]

    def clean_team(self) -> Team:
        team = self.teams.get(self.cleaned_data.get("team") or "")
        if team is None:
            raise forms.ValidationError("Choose the team to escalate to.")
        return team

    def clean_owner(self) -> User | None:
        raw = self.cleaned_data.get("owner") or ""
        if not raw:
            return None
        if raw not in self.people:
            raise forms.ValidationError("Choose a member of this workspace.")
        return self.people[raw]


class AnswerForm(forms.Form):
    answer = forms.CharField(
        max_length=10000, widget=forms.Textarea(attrs={"rows": 3}), error_messages={"required": "Write the answer."}
    )


class CsatForm(forms.Form):
    rating = forms.TypedChoiceField(
        choices=[(str(n), str(n)) for n in range(1, 6)],
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose a rating from 1 to 5.", "invalid_choice": "Choose a rating from 1 to 5."},
    )
    comment = forms.CharField(
        required=False, max_length=MAX_COMMENT, widget=forms.Textarea(attrs={"rows": 4}), label="Anything to add?"
    )
