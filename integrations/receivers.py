"""The webhook ingest: `POST /hooks/<platform>/<connection-id>/` (persist, then process).

The hot path, in order, with nothing else on it:

1. find the connection's verification material (cached in the process for seconds, in
   Redis for minutes; services.verification_material); an unknown or disconnected id, or a
   platform that is not the connection's, is a 404;
2. verify the signature on the raw body (`request.body`) with the platform's receiver —
   a missing or wrong one is a 401 (and counted for the store health page) once checked
   again on fresh material, so a rotated secret works at once;
3. parse the JSON (400 when it is not a JSON object) and read the delivery id and topic;
4. one `INSERT … ON CONFLICT DO NOTHING` into the inbox (only while the connection row is
   active: a disconnect made after the material was cached is a 404), answer 200 at once;
   a new row requests a drain of the tenant's inbox after commit, a duplicate is
   acknowledged and stores nothing.

No session, no CSRF, no DRF: platforms are programs, and every answer is JSON (Adobe
Commerce gets its `[{"op":"success"}]`). Each platform's specifics (signature, delivery
id, topic) live in `integrations/<platform>/receiver.py`, found through RECEIVERS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.request import HttpHeaders, QueryDict
from django.views.decorators.csrf import csrf_exempt

from helpdesk.middleware import error_body
from helpdesk.tenancy import tenant_context
from integrations import services
from integrations.services import VerificationMaterial

logger = logging.getLogger(__name__)

# platform kind -> module holding its `RECEIVER`. Imported lazily: those modules import the
# helpers below.
RECEIVERS: dict[str, str] = {
    "shopify": "integrations.shopify.receiver",
    "woocommerce": "integrations.woocommerce.receiver",
    "magento": "integrations.magento.receiver",
    "generic": "integrations.generic.receiver",
}

# Headers worth keeping with a delivery (debugging, replays, the platform's own ids).
_KEPT_HEADER_PREFIXES = ("x-", "shopify-")
_KEPT_HEADERS = {"content-type", "user-agent"}
MAX_ID_LENGTH = 200  # WebhookDelivery.delivery_id / event_id
MAX_TOPIC_LENGTH = 100  # WebhookDelivery.topic


@dataclass(frozen=True)
class Envelope:
    """What the inbox row needs besides the body: read from headers (or the payload)."""

    delivery_id: str
    topic: str
    event_id: str = ""
    triggered_at: datetime | None = None


class Receiver:
    """One platform's signature check and delivery identification. Subclass per platform."""

    platform: str = ""
    # Whether a delivery without a topic is refused (400). Magento's parser reads the event
    # name from the body itself, so it takes deliveries without one.
    requires_topic: bool = True

    def is_ping(self, headers: HttpHeaders, body: bytes) -> bool:
        """A platform's unsigned "does this URL work?" request, answered 200 and not stored."""
        return False

    def verify(self, material: VerificationMaterial, headers: HttpHeaders, body: bytes) -> bool:
        raise NotImplementedError

    def identify(self, headers: HttpHeaders, body: bytes, payload: dict, query: QueryDict) -> Envelope:
        raise NotImplementedError

    def accepted(self, *, created: bool) -> HttpResponse:
        return JsonResponse({"status": "accepted" if created else "duplicate"})


# --- Helpers the platform receivers share ------------------------------------------------


def header(headers: HttpHeaders, *names: str) -> str:
    """The first present header among `names` (case-insensitive), stripped; "" when none."""
    for name in names:
        value = headers.get(name)
        if value:
            return value.strip()
    return ""


def _bytes(value: str) -> bytes:
    # compare_digest refuses non-ASCII str; a forged header may carry anything.
    return value.encode("utf-8", "replace")


def hmac_sha256(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def base64_hmac_matches(secrets: tuple[str, ...], body: bytes, signature: str) -> bool:
    """Shopify and WooCommerce: base64(HMAC-SHA256(secret, raw body)), any secret may match.

    Compares the exact base64 text, so the hex form of the right digest does not pass.
    """
    if not signature:
        return False
    given = _bytes(signature)
    matched = False
    for secret in secrets:
        expected = base64.b64encode(hmac_sha256(secret, body))
        # No early exit: every secret is tried, so timing says nothing about which matched.
        matched |= hmac.compare_digest(expected, given)
    return matched


def hex_hmac_matches(secrets: tuple[str, ...], body: bytes, signature: str) -> bool:
    """Our generic format: `sha256=<lower-case hex HMAC-SHA256(secret, raw body)>`."""
    prefix = "sha256="
    if not signature.startswith(prefix):
        return False
    given = _bytes(signature[len(prefix) :].strip().lower())
    matched = False
    for secret in secrets:
        expected = hmac_sha256(secret, body).hex().encode()
        matched |= hmac.compare_digest(expected, given)
    return matched


def body_sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def bounded_id(value: str) -> str:
    """An id that fits the inbox column: long ones are replaced by their SHA-256."""
    value = value.strip()
    if len(value) <= MAX_ID_LENGTH:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def parse_instant(value: str) -> datetime | None:
    """An ISO 8601 instant such as Shopify's `2026-03-02T14:05:11.123456789Z`, or None.

    Python reads at most microseconds, so extra fractional digits are cut.
    """
    value = value.strip()
    if not value:
        return None
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    if "." in value:
        head, _, tail = value.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        value = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}"
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return None
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


def kept_headers(headers: HttpHeaders) -> dict[str, str]:
    """The request headers stored with a delivery: the platform's X-… ones and the content
    type. Never cookies or Authorization."""
    kept = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith(_KEPT_HEADER_PREFIXES) or lowered in _KEPT_HEADERS:
            # jsonb refuses NUL characters; a header cannot meaningfully hold one anyway.
            kept[name] = value.replace("\x00", "")[:1000]
    return kept


@cache
def receiver_for(platform: str) -> Receiver:
    module = importlib.import_module(RECEIVERS[platform])
    return module.RECEIVER


# --- The view -----------------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


@csrf_exempt
def receive(request: HttpRequest, platform: str, connection_uuid: uuid.UUID) -> HttpResponse:
    """The Django view (hooks_urls): the test Client and any caller going through Django's
    handler. Live deliveries reach `handle` through integrations.hooks_wsgi instead."""
    return handle(request, platform, connection_uuid)


def handle(request: HttpRequest, platform: str, connection_uuid: uuid.UUID) -> HttpResponse:
    """Verify, store and acknowledge one delivery. See the module docstring for the steps."""
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "Webhooks are delivered with POST.")
        response["Allow"] = "POST"
        return response
    receiver = receiver_for(platform)
    material = services.verification_material(connection_uuid)
    if material is None or not material.active or material.platform != platform:
        return _error(404, "not_found", "No such connection.")
    try:
        body = request.body
    except RequestDataTooBig:
        # Backstop: BodySizeLimitMiddleware answers declared lengths over MAX_BODY_BYTES
        # first; Django's own limit (DATA_UPLOAD_MAX_MEMORY_SIZE) lands here if they differ.
        return _error(413, "payload_too_large", "Request body is over the size limit.")
    headers = request.headers
    if receiver.is_ping(headers, body):
        return JsonResponse({"status": "ok"})
    if not receiver.verify(material, headers, body):
        # The material may be a few seconds old (a rotation, a new Adobe key): check again
        # on fresh material before refusing.
        fresh = services.verification_material(connection_uuid, fresh=True)
        if fresh is None or not fresh.active or fresh.platform != platform:
            return _error(404, "not_found", "No such connection.")
        if fresh == material or not receiver.verify(fresh, headers, body):
            services.signature_failure_record(material.connection_id)
            return _error(401, "invalid_signature", "The webhook signature is missing or wrong.")
        material = fresh
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return _error(400, "malformed_json", "The body is not valid UTF-8 JSON.")
    if not isinstance(payload, dict):
        return _error(400, "malformed_json", "The body must be a JSON object.")
    envelope = receiver.identify(headers, body, payload, request.GET)
    if receiver.requires_topic and not envelope.topic:
        return _error(400, "missing_topic", "The delivery does not say its topic.")
    try:
        with tenant_context(material.tenant_id):
            created = services.delivery_accept(
                material=material,
                delivery_id=bounded_id(envelope.delivery_id),
                event_id=bounded_id(envelope.event_id),
                topic=envelope.topic[:MAX_TOPIC_LENGTH],
                triggered_at=envelope.triggered_at,
                headers=kept_headers(headers),
                body=body.decode("utf-8"),
            )
    except services.ConnectionGone:
        return _error(404, "not_found", "No such connection.")
    return receiver.accepted(created=created)
