"""Forms for the store connection pages. They parse input; the services validate and write."""

from __future__ import annotations

from django import forms

from integrations.models import Platform
from integrations.services import CREDENTIAL_FIELDS

PLATFORM_HELP: dict[str, str] = {
    Platform.SHOPIFY: "Orders, fulfillments, refunds and returns from a Shopify store.",
    Platform.WOOCOMMERCE: "Orders and refunds from a WordPress store running WooCommerce.",
    Platform.MAGENTO: "Orders from Adobe Commerce (signed webhooks) or Magento Open Source.",
    Platform.GENERIC: "Any system that can POST signed JSON in Storedesk’s generic format.",
}


def _secret_input() -> forms.PasswordInput:
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})


def _credential_fields(platform: str, *, keep_hint: bool) -> dict[str, forms.Field]:
    help_text = (
        "Leave blank to keep the stored value."
        if keep_hint
        else ("Needed for refunds, cancellations and address changes from tickets. You can add it later.")
    )
    return {
        f"cred_{key}": forms.CharField(
            label=label, required=False, max_length=500, widget=_secret_input(), help_text=help_text
        )
        for key, label in CREDENTIAL_FIELDS[platform]
    }


class ConnectionCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="How agents will see this store, e.g. “Acme EU shop”.")

    def __init__(self, *args, platform: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.platform = platform
        if platform == Platform.SHOPIFY:
            self.fields["shop_domain"] = forms.CharField(
                label="Shop domain",
                max_length=255,
                help_text="The myshopify.com domain, e.g. acme-socks.myshopify.com.",
            )
        else:
            self.fields["api_url"] = forms.CharField(
                label="Store URL" if platform != Platform.GENERIC else "API URL (optional)",
                max_length=200,
                required=platform != Platform.GENERIC,
                help_text="e.g. https://shop.example/",
            )
        self.fields.update(_credential_fields(platform, keep_hint=False))
        if platform == Platform.SHOPIFY:
            self.fields["webhook_secret"] = forms.CharField(
                label="Webhook signing secret",
                required=False,
                max_length=200,
                widget=_secret_input(),
                help_text=(
                    "Your app’s client secret, or the signing key shown under Settings → "
                    "Notifications → Webhooks. Leave blank to have one generated."
                ),
            )
        if platform == Platform.MAGENTO:
            self.fields["public_key_pem"] = forms.CharField(
                label="Adobe Commerce webhook public key (PEM)",
                required=False,
                widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
                help_text=(
                    "Stores → Settings → Configuration → Adobe Services → Webhooks. Without it, "
                    "deliveries must carry our X-Storedesk-Signature instead."
                ),
            )

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "platform": self.platform,
            "name": data["name"],
            "shop_domain": data.get("shop_domain", ""),
            "api_url": data.get("api_url", ""),
            "credentials": credentials_from(data),
            "webhook_secret": data.get("webhook_secret", ""),
            "public_key_pem": data.get("public_key_pem", ""),
        }


class ConnectionCredentialsForm(forms.Form):
    name = forms.CharField(max_length=100)

    def __init__(self, *args, platform: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.platform = platform
        self.fields.update(_credential_fields(platform, keep_hint=True))
        if platform == Platform.MAGENTO:
            self.fields["public_key_pem"] = forms.CharField(
                label="Replace the Adobe Commerce public key (PEM)",
                required=False,
                widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false"}),
                help_text="Leave blank to keep the current key.",
            )


class RotateSecretForm(forms.Form):
    new_secret = forms.CharField(
        label="New signing secret (optional)",
        required=False,
        max_length=200,
        widget=_secret_input(),
        help_text="Shopify: paste the app’s new client secret. Leave blank to have one generated.",
    )


def credentials_from(data: dict) -> dict[str, str]:
    return {key[len("cred_") :]: value for key, value in data.items() if key.startswith("cred_") and value}
