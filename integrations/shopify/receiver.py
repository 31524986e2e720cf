"""Shopify webhooks (CONTRACTS.md §1.1–1.3).

- Signature: `X-Shopify-Hmac-Sha256` = base64(HMAC-SHA256(secret, raw body)). The secret is
  the app's client secret, or the signing key of a webhook made in the store admin. After a
  rotation Shopify may keep signing with the old one for up to an hour, so the previous
  secret verifies until `previous_secret_expires_at`. The "Events" preview drops the `X-`
  (`Shopify-Hmac-Sha256`, `Shopify-Webhook-Id`, …): both spellings are read.
- Delivery id: `X-Shopify-Webhook-Id` (stable across Shopify's retries). `X-Shopify-Event-Id`
  is shared by every copy of one merchant action; it is kept as `event_id` and copies are
  collapsed when processed.
- A delivery for another shop (`X-Shopify-Shop-Domain` ≠ the connection's shop) is refused
  like a bad signature: one app secret can sign for every shop the app is installed on.
"""

from __future__ import annotations

from django.http.request import HttpHeaders, QueryDict

from integrations.receivers import (
    Envelope,
    Receiver,
    base64_hmac_matches,
    body_sha256,
    header,
    parse_instant,
)
from integrations.services import VerificationMaterial


class ShopifyReceiver(Receiver):
    platform = "shopify"

    def verify(self, material: VerificationMaterial, headers: HttpHeaders, body: bytes) -> bool:
        signature = header(headers, "X-Shopify-Hmac-Sha256", "Shopify-Hmac-Sha256")
        if not base64_hmac_matches(material.secrets(), body, signature):
            return False
        shop = header(headers, "X-Shopify-Shop-Domain", "Shopify-Shop-Domain").lower()
        return not (shop and material.shop_domain and shop != material.shop_domain)

    def identify(self, headers: HttpHeaders, body: bytes, payload: dict, query: QueryDict) -> Envelope:
        return Envelope(
            delivery_id=header(headers, "X-Shopify-Webhook-Id", "Shopify-Webhook-Id") or f"sha256:{body_sha256(body)}",
            topic=header(headers, "X-Shopify-Topic", "Shopify-Topic"),
            event_id=header(headers, "X-Shopify-Event-Id", "Shopify-Event-Id"),
            triggered_at=parse_instant(header(headers, "X-Shopify-Triggered-At", "Shopify-Triggered-At")),
        )


RECEIVER = ShopifyReceiver()
