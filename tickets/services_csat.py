"""Writer for CSAT answers: one response per ticket; answering again updates it."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from helpdesk.services import Actor
from tickets.models import CsatResponse, Status, Ticket
from tickets.services import _event

RATEABLE = (Status.SOLVED, Status.CLOSED)
MAX_COMMENT = 2000


def clean_rating(raw: object) -> int | None:
    """1–5 from form or query input, else None."""
    try:
        value = int(str(raw))
    except (TypeError, ValueError):
        return None
    return value if 1 <= value <= 5 else None


@transaction.atomic
def csat_record(*, ticket: Ticket, rating: int, comment: str = "", at: datetime | None = None) -> CsatResponse:
    """Record (or update) the customer's rating of a solved ticket.

    The agent (the ticket's assignee) and the ticket type are frozen at answer time, so the
    per-agent and per-type reports keep counting them where they were rated.
    """
    at = at or timezone.now()
    errors: dict[str, str] = {}
    if clean_rating(rating) is None:
        errors["rating"] = "Choose a rating from 1 to 5."
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        errors["comment"] = f"Keep the comment under {MAX_COMMENT} characters."
    # Lock the ticket: two answers arriving at once serialise here, so the second updates.
    ticket = Ticket.objects.select_for_update(of=("self",)).get(pk=ticket.pk, tenant_id=ticket.tenant_id)
    if ticket.status not in RATEABLE:
        errors["ticket"] = "This ticket is not solved yet, so it can’t be rated."
    if errors:
        raise ValidationError(errors)
    response, created = CsatResponse.objects.update_or_create(
        tenant_id=ticket.tenant_id,
        ticket=ticket,
        defaults={
            "rating": int(rating),
            "comment": comment,
            "agent_id": ticket.assignee_id,
            "ticket_type_id": ticket.ticket_type_id,
            "updated_at": at,
        },
        create_defaults={
            "rating": int(rating),
            "comment": comment,
            "agent_id": ticket.assignee_id,
            "ticket_type_id": ticket.ticket_type_id,
            "created_at": at,
            "updated_at": at,
        },
    )
    _event(
        ticket, Actor(kind="customer"), "csat", at, rating=int(rating), comment=comment[:300], updated=not created
    ).save()
    return response
