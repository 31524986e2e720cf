"""The generic webhook format: for any system that can sign a POST.

    POST /hooks/generic/<connection-id>/
    Content-Type: application/json
    X-Storedesk-Signature: sha256=<hex>        (required)
    X-Storedesk-Delivery: 0b5c…                (optional: unique per delivery; retries reuse it)
    X-Storedesk-Topic: order                   (optional when the body says its `type`)

    {"type": "order", "data": {…}}

The body's shape (`type` = order | fulfillment | refund | return, and `data`) is described
in integrations/generic/parse.py.

- Signature: `sha256=` followed by the lower-case hex HMAC-SHA256 of the raw body, keyed
  with the connection's webhook secret (shown once when the connection is made or its
  secret rotated). During the hour after a rotation the previous secret also verifies.
- Delivery id: `X-Storedesk-Delivery`; without it, the SHA-256 of the body (so an identical
  body re-sent is a duplicate).
- Topic: `X-Storedesk-Topic`, else the body's `type`.
- Answers: 200 `{"status": "accepted"}` (new) or `{"status": "duplicate"}`; 401 for a
  missing or wrong signature; 400 for a body that is not a JSON object, or with neither a
  topic header nor a `type`;
  404 for an unknown or disconnected connection; 413 over the size limit. Errors are
  `{"error": {"code", "message", "fields"}}`.
"""

from __future__ import annotations

from django.http.request import HttpHeaders, QueryDict

from integrations.receivers import Envelope, Receiver, body_sha256, header, hex_hmac_matches
from integrations.services import VerificationMaterial

SIGNATURE_HEADER = "X-Storedesk-Signature"
TOPIC_HEADER = "X-Storedesk-Topic"
DELIVERY_HEADER = "X-Storedesk-Delivery"


class GenericReceiver(Receiver):
    platform = "generic"

    def verify(self, material: VerificationMaterial, headers: HttpHeaders, body: bytes) -> bool:
        return hex_hmac_matches(material.secrets(), body, header(headers, SIGNATURE_HEADER))

    def identify(self, headers: HttpHeaders, body: bytes, payload: dict, query: QueryDict) -> Envelope:
        return Envelope(
            delivery_id=header(headers, DELIVERY_HEADER) or f"sha256:{body_sha256(body)}",
            topic=header(headers, TOPIC_HEADER) or _text(payload.get("type")),
        )


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


RECEIVER = GenericReceiver()
