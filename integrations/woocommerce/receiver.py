"""WooCommerce webhooks (CONTRACTS.md §2.1; woocommerce `includes/class-wc-webhook.php`).

- Signature: `X-WC-Webhook-Signature` = base64(HMAC-SHA256(secret, raw body)), the body
  exactly as WordPress sent it (PHP escapes `/` and non-ASCII: never re-serialise).
- Ping: when a webhook is saved as active, WooCommerce POSTs the form body `webhook_id=<id>`
  unsigned and without any X-WC header, and needs exactly 200. It is answered 200 (for a
  live connection) and stored nowhere.
- Delivery id: `X-WC-Webhook-Delivery-ID` is `wp_hash(webhook_id . unix_seconds)`, so two
  events of one webhook in the same second share it. The inbox key combines the webhook id,
  that delivery id and the SHA-256 of the body.
"""

from __future__ import annotations

import re

from django.http.request import HttpHeaders, QueryDict

from integrations.receivers import (
    Envelope,
    Receiver,
    base64_hmac_matches,
    body_sha256,
    header,
)
from integrations.services import VerificationMaterial

_PING_BODY = re.compile(rb"^webhook_id=\d+$")


class WooCommerceReceiver(Receiver):
    platform = "woocommerce"

    def is_ping(self, headers: HttpHeaders, body: bytes) -> bool:
        if any(name.lower().startswith("x-wc-webhook-") for name in headers):
            return False
        return bool(_PING_BODY.match(body.strip()))

    def verify(self, material: VerificationMaterial, headers: HttpHeaders, body: bytes) -> bool:
        signature = header(headers, "X-WC-Webhook-Signature")
        return base64_hmac_matches(material.secrets(), body, signature)

    def identify(self, headers: HttpHeaders, body: bytes, payload: dict, query: QueryDict) -> Envelope:
        webhook_id = header(headers, "X-WC-Webhook-ID")
        delivery = header(headers, "X-WC-Webhook-Delivery-ID")
        return Envelope(
            delivery_id=f"{webhook_id}:{delivery}:{body_sha256(body)}",
            topic=header(headers, "X-WC-Webhook-Topic"),
        )


RECEIVER = WooCommerceReceiver()
