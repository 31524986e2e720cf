"""Magento 2 / Adobe Commerce webhooks (CONTRACTS.md §3).

- Signature (Adobe Commerce Webhooks): `x-adobe-commerce-webhook-signature` is a base64
  RSA-SHA256 (PKCS#1 v1.5) signature made with the store's private key. Adobe's reference
  verifier checks it over base64(raw body); the App Builder variant over the raw body, so
  both readings are accepted. The admin pastes the public key (Stores > Settings >
  Configuration > Adobe Services > Webhooks) into the connection.
- Magento Open Source has no signed webhooks of its own; a module or relay may sign in our
  generic format instead (`X-Storedesk-Signature: sha256=<hex HMAC>` with the connection's
  webhook secret, see integrations/generic/receiver.py).
- Topic: `X-Storedesk-Topic` (a custom header in webhooks.xml), else `?topic=` on the URL,
  else the payload's `eventName` (webhooks) or `type` (Adobe I/O events).
- Delivery id: `X-Storedesk-Delivery`, else an I/O event's `id`, else SHA-256 of the body.
- Reply: Adobe Commerce webhooks are synchronous and read `[{"op":"success"}]`.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.http import HttpResponse
from django.http.request import HttpHeaders, QueryDict

from integrations.generic.receiver import DELIVERY_HEADER, SIGNATURE_HEADER, TOPIC_HEADER
from integrations.receivers import Envelope, Receiver, body_sha256, header, hex_hmac_matches
from integrations.services import VerificationMaterial

ADOBE_SIGNATURE_HEADER = "x-adobe-commerce-webhook-signature"
SUCCESS_BODY = b'[{"op":"success"}]'


@lru_cache(maxsize=256)
def load_public_key(pem: str) -> rsa.RSAPublicKey | None:
    """The RSA public key in `pem`, or None when it is not one (parsed once per process)."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return None
    return key if isinstance(key, rsa.RSAPublicKey) else None


def rsa_signature_matches(pem: str, signature_b64: str, body: bytes) -> bool:
    key = load_public_key(pem)
    if key is None or not signature_b64:
        return False
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    for signed in (base64.b64encode(body), body):
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return True
    return False


class MagentoReceiver(Receiver):
    platform = "magento"
    requires_topic = False

    def verify(self, material: VerificationMaterial, headers: HttpHeaders, body: bytes) -> bool:
        adobe = header(headers, ADOBE_SIGNATURE_HEADER)
        if adobe and material.public_key_pem and rsa_signature_matches(material.public_key_pem, adobe, body):
            return True
        return hex_hmac_matches(material.secrets(), body, header(headers, SIGNATURE_HEADER))

    def identify(self, headers: HttpHeaders, body: bytes, payload: dict, query: QueryDict) -> Envelope:
        cloud_event = "specversion" in payload
        topic = (
            header(headers, TOPIC_HEADER)
            or query.get("topic", "").strip()
            or _text(payload.get("eventName"))
            or (_text(payload.get("type")) if cloud_event else "")
        )
        delivery = header(headers, DELIVERY_HEADER) or (_text(payload.get("id")) if cloud_event else "")
        return Envelope(delivery_id=delivery or f"sha256:{body_sha256(body)}", topic=topic)

    def accepted(self, *, created: bool) -> HttpResponse:
        return HttpResponse(SUCCESS_BODY, content_type="application/json")


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


RECEIVER = MagentoReceiver()
