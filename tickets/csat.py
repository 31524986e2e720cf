"""Signed CSAT survey links: the customer rates a solved ticket without logging in."""

from __future__ import annotations

from django.conf import settings
from django.core import signing

SALT = "storedesk.csat"
MAX_AGE_SECONDS = 30 * 24 * 3600  # a survey link works for 30 days


def survey_token(tenant_id: int, ticket_id: int) -> str:
    return signing.dumps({"t": tenant_id, "k": ticket_id}, salt=SALT, compress=True)


def read_token(token: str) -> tuple[int, int] | None:
    """(tenant id, ticket id) of a genuine, unexpired token; None for tampered or expired ones."""
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(data, dict) or not isinstance(data.get("t"), int) or not isinstance(data.get("k"), int):
        return None
    return data["t"], data["k"]


def survey_url(tenant_id: int, ticket_id: int) -> str:
    """The absolute URL of the public survey page for a ticket (BASE_URL + /csat/<token>/)."""
    return f"{settings.BASE_URL.rstrip('/')}/csat/{survey_token(tenant_id, ticket_id)}/"
