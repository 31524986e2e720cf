"""Reads for the playbook pages: the list, coverage/clean-up, per-version figures."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from helpdesk.models import Tenant
from playbooks.models import Playbook, PlaybookVersion, ReplyTemplate
from tickets.models import Status, Tag, Ticket, TicketEvent, TicketTag, TicketType

UNUSED_DAYS = 30


@dataclass
class PlaybookRow:
    ticket_type: TicketType
    playbook: Playbook | None
    version: PlaybookVersion | None
    gaps: list[str] = field(default_factory=list)


def _gaps(version: PlaybookVersion | None) -> list[str]:
    if version is None:
        return ["owner", "reply", "escalation path"]
    gaps = []
    if not (version.owner_team_id or version.owner_user_id):
        gaps.append("owner")
    if not version.replies:
        gaps.append("reply")
    if not version.escalation_team_id:
        gaps.append("escalation path")
    return gaps


def playbook_rows(tenant: Tenant, active_only: bool = False) -> list[PlaybookRow]:
    """Every ticket type with its playbook's current version (2 queries)."""
    types = TicketType.objects.filter(tenant=tenant)
    if active_only:
        types = types.filter(is_active=True)
    playbooks = {
        p.ticket_type_id: p
        for p in Playbook.objects.filter(tenant=tenant).select_related(
            "current_version__owner_team", "current_version__owner_user", "current_version__escalation_team"
        )
    }
    rows = []
    for ticket_type in types:
        playbook = playbooks.get(ticket_type.pk)
        version = playbook.current_version if playbook else None
        rows.append(PlaybookRow(ticket_type, playbook, version, _gaps(version)))
    return rows


def reply_templates(tenant: Tenant, kind: str | None = None) -> list[ReplyTemplate]:
    qs = ReplyTemplate.objects.filter(tenant=tenant).prefetch_related("variants")
    if kind:
        qs = qs.filter(kind=kind)
    return list(qs.order_by("collection", "name"))


@dataclass
class Coverage:
    missing_owner: list[TicketType]
    missing_reply: list[TicketType]
    missing_escalation: list[TicketType]
    unused_replies: list[ReplyTemplate]
    unused_tags: list[Tag]
    since: object


def coverage(tenant: Tenant, days: int = UNUSED_DAYS) -> Coverage:
    """Gaps in the active types' playbooks and what went unused (the weekly clean-up)."""
    since = timezone.now() - timedelta(days=days)
    rows = playbook_rows(tenant, active_only=True)
    unused_replies = list(
        ReplyTemplate.objects.filter(tenant=tenant, kind=ReplyTemplate.Kind.REPLY, is_active=True, created_at__lt=since)
        .filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=since))
        .order_by("last_used_at", "name")
    )
    recent_tag_ids = TicketTag.objects.filter(tenant=tenant, ticket__last_activity_at__gte=since).values("tag_id")
    unused_tags = list(Tag.objects.filter(tenant=tenant).exclude(pk__in=recent_tag_ids).order_by("name"))
    return Coverage(
        missing_owner=[r.ticket_type for r in rows if "owner" in r.gaps],
        missing_reply=[r.ticket_type for r in rows if "reply" in r.gaps],
        missing_escalation=[r.ticket_type for r in rows if "escalation path" in r.gaps],
        unused_replies=unused_replies,
        unused_tags=unused_tags,
        since=since,
    )


@dataclass
class VersionFigures:
    version: PlaybookVersion
    tickets: int = 0
    solved: int = 0  # solved at least once
    median_hours: float | None = None
    reopened: int = 0

    @property
    def reopen_rate(self) -> float | None:
        return None if not self.solved else round(100 * self.reopened / self.solved, 1)


def version_figures(playbook: Playbook) -> list[VersionFigures]:
    """Per version: tickets handled, median handling time (created → solved), reopen rate."""
    versions = list(
        PlaybookVersion.objects.filter(tenant_id=playbook.tenant_id, playbook=playbook).select_related("created_by")
    )
    figures = {v.pk: VersionFigures(v) for v in versions}
    if not figures:
        return []
    tickets = Ticket.objects.filter(tenant_id=playbook.tenant_id, playbook_version_id__in=list(figures))
    for version_id, n in tickets.values_list("playbook_version_id").annotate(n=Count("id")).order_by():
        figures[version_id].tickets = n
    status_events = TicketEvent.objects.filter(
        tenant_id=playbook.tenant_id, kind="status", ticket__playbook_version_id__in=list(figures)
    )
    # Solved at least once / reopened after a solve, counted per ticket.
    for version_id, n in (
        status_events.filter(data__new=Status.SOLVED)
        .values_list("ticket__playbook_version_id")
        .annotate(n=Count("ticket_id", distinct=True))
        .order_by()
    ):
        figures[version_id].solved = n
    solved = tickets.filter(solved_at__isnull=False)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            sql = (
                "SELECT playbook_version_id, percentile_cont(0.5) WITHIN GROUP "
                "(ORDER BY EXTRACT(EPOCH FROM solved_at - created_at)) "
                "FROM tickets_ticket WHERE tenant_id = %s AND playbook_version_id = ANY(%s) "
                "AND solved_at IS NOT NULL GROUP BY playbook_version_id"
            )
            cursor.execute(sql, [playbook.tenant_id, list(figures)])
            for version_id, seconds in cursor.fetchall():
                figures[version_id].median_hours = round(float(seconds) / 3600, 1)
    else:  # the embedded SQLite demo: small enough to do in Python
        durations: dict[int, list[float]] = {}
        for version_id, created, solved_at in solved.values_list("playbook_version_id", "created_at", "solved_at"):
            if version_id is not None and solved_at is not None:
                durations.setdefault(version_id, []).append((solved_at - created).total_seconds())
        for version_id, values in durations.items():
            figures[version_id].median_hours = round(statistics.median(values) / 3600, 1)
    reopened = (
        status_events.filter(data__old=Status.SOLVED)
        .exclude(data__new=Status.CLOSED)
        .values("ticket__playbook_version_id")
        .annotate(n=Count("ticket_id", distinct=True))
        .order_by()
    )
    for version_id, n in reopened.values_list("ticket__playbook_version_id", "n"):
        figures[version_id].reopened = n
    return [figures[v.pk] for v in versions]


def example_ticket(tenant: Tenant, ticket_type: TicketType | None = None, number: int | None = None) -> Ticket | None:
    """A real ticket to preview templates against: the one asked for, else a recent one with an order."""
    qs = Ticket.objects.filter(tenant=tenant).select_related("customer", "ticket_type", "order", "tenant")
    if number is not None:
        return qs.filter(number=number).first()
    if ticket_type is not None:
        found = qs.filter(ticket_type=ticket_type, order__isnull=False).order_by("-id").first()
        if found:
            return found
    return qs.filter(order__isnull=False).order_by("-id").first() or qs.order_by("-id").first()
