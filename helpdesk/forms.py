from __future__ import annotations

import zoneinfo

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from helpdesk.models import LANGUAGES, Role, Tenant


def apply_service_errors(form: forms.Form, exc: ValidationError, aliases: dict[str, str] | None = None) -> None:
    """Put a service's ValidationError on the form: on the matching field when there is one
    (`aliases` maps a service's field name to the form's), otherwise as a form error."""
    aliases = aliases or {}
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for key, messages in exc.message_dict.items():
        name = aliases.get(key, key)
        form.add_error(name if name in form.fields else None, messages)


_COMMON_ZONES = sorted(zoneinfo.available_timezones())


class EmailAuthenticationForm(AuthenticationForm):
    username = forms.EmailField(
        label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password don’t match an account. Check both and try again.",
    }

    def clean_username(self) -> str:
        # Addresses are stored lower-case (UserManager.create_user); match them whatever the
        # case typed, and count lockout attempts against one spelling.
        return self.cleaned_data["username"].strip().lower()


class TenantSettingsForm(forms.ModelForm):
    timezone = forms.ChoiceField(label="Time zone", choices=[(z, z) for z in _COMMON_ZONES])
    default_language = forms.ChoiceField(choices=LANGUAGES)

    class Meta:
        model = Tenant
        fields = ["name", "timezone", "default_language"]


class InvitationForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=[c for c in Role.choices if c[0] != Role.OWNER], initial=Role.AGENT)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What will use this token, e.g. “ERP sync”.")


class AcceptInvitationForm(forms.Form):
    name = forms.CharField(max_length=150, label="Your name")
    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def __init__(self, *args, email: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.email = email

    def clean_password(self) -> str:
        from helpdesk.models import User

        password = self.cleaned_data["password"]
        password_validation.validate_password(password, User(email=self.email))
        return password
