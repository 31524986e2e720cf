"""Readers for escalations and CSAT, shared by the pages and the API.

They own select_related, so query counts stay flat whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet
from django.utils import timezone

from helpdesk.models import Tenant, User
from tickets.models import CsatResponse, Escalation, Team, Ticket

State = Escalation.State
ACTIVE = [State.OPEN, State.ACKNOWLEDGED]
# Queue status filters: what the team still owes, what waits on the agent, what is done.
STATUS_FILTERS = {
    "active": ("Waiting on the team", ACTIVE),
    "answered": ("Answered", [State.ANSWERED]),
    "done": ("Resolved or cancelled", [State.RESOLVED, State.CANCELLED]),
}


def escalations_base(tenant: Tenant) -> QuerySet[Escalation]:
    return Escalation.objects.filter(tenant=tenant).select_related(
        "ticket", "ticket__customer", "team", "owner", "created_by"
    )


def escalation_for(*, tenant: Tenant, pk: int) -> Escalation:
    """One escalation of `tenant` (Escalation.DoesNotExist for a foreign or missing id alike)."""
    return escalations_base(tenant).get(pk=pk)


def escalation_queue(
    *, tenant: Tenant, team_id: int | None = None, owner: User | None = None, status: str = "active", limit: int = 200
) -> list[Escalation]:
    """The team queue: due order, so overdue ones (the earliest due dates) come first."""
    qs = escalations_base(tenant).filter(status__in=STATUS_FILTERS.get(status, STATUS_FILTERS["active"])[1])
    if team_id is not None:
        qs = qs.filter(team_id=team_id)
    if owner is not None:
        qs = qs.filter(owner=owner)
    order = ("due_at", "id") if status != "done" else ("-resolved_at", "-id")
    return list(qs.order_by(*order)[:limit])


@dataclass
class QueueCounts:
    mine: int = 0
    mine_overdue: int = 0
    total: int = 0
    overdue: int = 0
    by_team: dict[int, tuple[int, int]] = field(default_factory=dict)  # team id -> (active, overdue)


def escalation_counts(*, tenant: Tenant, user: User, at: datetime | None = None) -> QueueCounts:
    """Active (open or acknowledged) escalations per team and for `user`, with overdue counts; one query."""
    at = at or timezone.now()
    overdue = Q(due_at__lte=at)
    rows = (
        Escalation.objects.filter(tenant=tenant, status__in=ACTIVE)
        .values("team_id")
        .annotate(
            n=Count("id"),
            late=Count("id", filter=overdue),
            mine=Count("id", filter=Q(owner=user)),
            mine_late=Count("id", filter=Q(owner=user) & overdue),
        )
    )
    counts = QueueCounts()
    for row in rows:
        counts.by_team[row["team_id"]] = (row["n"], row["late"])
        counts.total += row["n"]
        counts.overdue += row["late"]
        counts.mine += row["mine"]
        counts.mine_overdue += row["mine_late"]
    return counts


def teams(tenant: Tenant) -> list[Team]:
    return list(Team.objects.filter(tenant=tenant).select_related("lead").order_by("name"))


def ticket_escalations(ticket: Ticket) -> list[Escalation]:
    """A ticket's escalations, newest first (the ticket page panel)."""
    return list(
        Escalation.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket)
        .select_related("team", "owner", "created_by")
        .order_by("-created_at", "-id")
    )


def ticket_csat(ticket: Ticket) -> CsatResponse | None:
    return CsatResponse.objects.filter(tenant_id=ticket.tenant_id, ticket=ticket).first()


# --- CSAT -----------------------------------------------------------------------------------


@dataclass
class CsatRow:
    label: str
    count: int
    average: float
    satisfied: int  # ratings of 4 or 5

    @property
    def score(self) -> int:
        """CSAT score as most help desks report it: the share of 4–5 ratings, in percent."""
        return round(100 * self.satisfied / self.count) if self.count else 0


@dataclass
class CsatSummary:
    overall: CsatRow
    by_agent: list[CsatRow]
    by_type: list[CsatRow]
    distribution: dict[int, int]


def _row(label: str, row: Mapping[str, Any]) -> CsatRow:
    return CsatRow(label=label, count=row["n"], average=round(float(row["avg"] or 0), 2), satisfied=row["good"])


def _stats(qs: QuerySet[CsatResponse], *group: str) -> list[dict[str, Any]]:
    """Count, average and 4–5 ratings per `group` (one GROUP BY query)."""
    rows = qs.values(*group).annotate(n=Count("id"), avg=Avg("rating"), good=Count("id", filter=Q(rating__gte=4)))
    # Most answered first; ties keep the id order.
    return sorted((dict(r) for r in rows.order_by(*group)), key=lambda r: -r["n"])


def csat_summary(tenant: Tenant, since: datetime) -> CsatSummary:
    """Counts, averages and CSAT scores since `since`: overall, per agent and per ticket type.

    Agent and type are the ones frozen on each response when it was given.
    """
    qs = CsatResponse.objects.filter(tenant=tenant, created_at__gte=since)
    overall = _row("All", qs.aggregate(n=Count("id"), avg=Avg("rating"), good=Count("id", filter=Q(rating__gte=4))))
    by_agent = [
        _row(r["agent__name"] or r["agent__email"] or "Unassigned", r)
        for r in _stats(qs, "agent_id", "agent__name", "agent__email")
    ]
    by_type = [_row(r["ticket_type__name"] or "No type", r) for r in _stats(qs, "ticket_type_id", "ticket_type__name")]
    distribution = dict.fromkeys(range(1, 6), 0)
    for r in qs.values("rating").annotate(count=Count("id")):
        distribution[r["rating"]] = r["count"]
    return CsatSummary(overall=overall, by_agent=by_agent, by_type=by_type, distribution=distribution)


def recent_csat(tenant: Tenant, since: datetime, limit: int = 20) -> list[CsatResponse]:
    return list(
        CsatResponse.objects.filter(tenant=tenant, created_at__gte=since)
        .select_related("ticket", "agent")
        .order_by("-updated_at", "-id")[:limit]
    )
