from __future__ import annotations

from django import forms

from tickets.models import Channel, Priority, Status


class ReplyForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), max_length=100_000)
    kind = forms.ChoiceField(choices=[("reply", "Public reply"), ("note", "Internal note")], initial="reply")
    status = forms.ChoiceField(
        choices=[
            ("", "Keep status"),
            (Status.PENDING, "Pending"),
            (Status.ON_HOLD, "On hold"),
            (Status.SOLVED, "Solved"),
        ],
        required=False,
    )
    last_seen = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    confirm_collision = forms.BooleanField(required=False, widget=forms.HiddenInput)
    # The approved reply the draft started from (counted for the playbook clean-up report).
    template = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


class NewTicketForm(forms.Form):
    customer_email = forms.EmailField(label="Customer email", required=False)
    customer_phone = forms.CharField(label="Customer phone", max_length=32, required=False)
    customer_name = forms.CharField(label="Customer name", max_length=150, required=False)
    subject = forms.CharField(max_length=250)
    body = forms.CharField(label="What the customer said", widget=forms.Textarea(attrs={"rows": 5}))
    channel = forms.ChoiceField(choices=Channel.choices, initial=Channel.PHONE)
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.NORMAL)
    ticket_type = forms.ChoiceField(required=False)
    order_number = forms.CharField(max_length=40, required=False)

    def __init__(self, *args, types=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ticket_type"].choices = [("", "—"), *[(t.slug, t.name) for t in types]]

    def clean(self):
        data = super().clean()
        if not data.get("customer_email") and not data.get("customer_phone"):
            self.add_error("customer_email", "Give the customer's email or phone number.")
        return data
