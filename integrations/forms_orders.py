"""Forms for order actions and action limits: they parse input; the rules live in services."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from integrations.action_rules import CANCEL_REASONS, Limits
from integrations.models import Order, OrderLine


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        required=False,
        min_value=Decimal("0.01"),
        max_digits=12,
        decimal_places=2,
        label="Amount",
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal", "class": "sm"}),
    )
    full = forms.BooleanField(required=False, label="Refund everything that's left")
    reason = forms.CharField(
        required=False,
        max_length=500,
        label="Reason (the customer may see it)",
        widget=forms.TextInput(attrs={"class": "sm"}),
    )
    restock = forms.BooleanField(required=False, label="Put the items back in stock")
    notify = forms.BooleanField(required=False, initial=True, label="Email the customer")

    def __init__(self, *args, order: Order, lines: list[OrderLine], **kwargs):
        super().__init__(*args, **kwargs)
        self.order = order
        self.lines = lines
        for line in lines:
            self.fields[f"qty_{line.pk}"] = forms.IntegerField(
                required=False,
                min_value=0,
                max_value=line.quantity,
                label=line.title,
                widget=forms.NumberInput(attrs={"class": "sm qty", "min": 0, "max": line.quantity}),
            )

    def line_fields(self):
        return [(line, self[f"qty_{line.pk}"]) for line in self.lines]

    def params(self) -> dict:
        data = self.cleaned_data
        return {
            "amount": data.get("amount"),
            "full": data.get("full"),
            "reason": data.get("reason", ""),
            "restock": data.get("restock"),
            "notify": data.get("notify"),
            "lines": [{"line": line.pk, "quantity": data.get(f"qty_{line.pk}") or 0} for line in self.lines],
        }

    def error_aliases(self) -> dict[str, str]:
        return {f"line_{line.pk}": f"qty_{line.pk}" for line in self.lines}


class CancelForm(forms.Form):
    reason = forms.ChoiceField(
        choices=list(CANCEL_REASONS.items()),
        initial="customer",
        widget=forms.Select(attrs={"class": "sm"}),
    )
    refund = forms.BooleanField(required=False, initial=True, label="Refund the payment")
    restock = forms.BooleanField(required=False, initial=True, label="Put the items back in stock")
    notify = forms.BooleanField(required=False, initial=True, label="Email the customer")
    note = forms.CharField(
        required=False,
        max_length=500,
        label="Internal note",
        widget=forms.TextInput(attrs={"class": "sm"}),
    )

    def __init__(self, *args, order: Order, **kwargs):
        super().__init__(*args, **kwargs)
        self.order = order

    def params(self) -> dict:
        return dict(self.cleaned_data)


class AddressForm(forms.Form):
    name = forms.CharField(required=False, max_length=300, label="Recipient")
    company = forms.CharField(required=False, max_length=300)
    address1 = forms.CharField(required=False, max_length=300, label="Street and number")
    address2 = forms.CharField(required=False, max_length=300, label="Apartment, suite…")
    zip = forms.CharField(required=False, max_length=300, label="Postal code")
    city = forms.CharField(required=False, max_length=300)
    province = forms.CharField(required=False, max_length=300, label="State / province")
    country_code = forms.CharField(
        required=False,
        max_length=300,
        label="Country (ISO code)",
        widget=forms.TextInput(attrs={"placeholder": "DE", "autocapitalize": "characters"}),
    )
    phone = forms.CharField(required=False, max_length=300)
    notify = forms.BooleanField(required=False, initial=False, label="Email the customer")

    def __init__(self, *args, order: Order, **kwargs):
        current = order.shipping_address or {}
        initial = {
            "name": current.get("name")
            or " ".join(p for p in (current.get("first_name"), current.get("last_name")) if p),
            "company": current.get("company", ""),
            "address1": current.get("address1") or current.get("address_1", ""),
            "address2": current.get("address2") or current.get("address_2", ""),
            "zip": current.get("zip") or current.get("postcode", ""),
            "city": current.get("city", ""),
            "province": current.get("province_code") or current.get("province") or current.get("state", ""),
            "country_code": current.get("country_code") or current.get("country", ""),
            "phone": current.get("phone", ""),
        }
        kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        self.order = order
        for field in self.fields.values():
            if isinstance(field.widget, forms.TextInput):
                field.widget.attrs.setdefault("class", "sm")

    def params(self) -> dict:
        return dict(self.cleaned_data)


class ActionLimitForm(forms.Form):
    max_refund = forms.DecimalField(
        min_value=Decimal("0"),
        max_digits=12,
        decimal_places=2,
        label="Refunds up to",
        widget=forms.NumberInput(attrs={"step": "0.01", "class": "sm"}),
    )
    can_cancel = forms.BooleanField(required=False, label="May cancel orders")
    can_change_address = forms.BooleanField(required=False, label="May change addresses")

    @classmethod
    def for_role(cls, role: str, limits: Limits, data=None) -> ActionLimitForm:
        return cls(
            data,
            prefix=role,
            initial={
                "max_refund": limits.max_refund,
                "can_cancel": limits.can_cancel,
                "can_change_address": limits.can_change_address,
            },
        )
