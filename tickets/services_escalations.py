"""Writers for escalations: hand a ticket to another team with a summary and a due date.

An escalation's due date is business time in the *target* team's hours (the team's own
schedule, else the workspace's default, else always open). Reminders and the overdue notice
are data (`remind_at`/`due_at`), fired exactly once each by `escalation_sweep_tenant`, which
claims rows like the SLA sweep: SELECT … FOR UPDATE SKIP LOCKED, then a conditional UPDATE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from helpdesk.models import Membership, Role, User
from helpdesk.services import Actor, audit_record
from helpdesk.tenancy import tenants_with_due
from tickets import clocks, sla
from tickets.models import BusinessSchedule, Escalation, Notification, Status, Team, Ticket, TicketEvent
from tickets.services import _event, ticket_add_note

State = Escalation.State
ACTIVE = (State.OPEN, State.ACKNOWLEDGED)
# With no playbook escalation path: one business day (8 business hours).
DEFAULT_DUE_MINUTES = 8 * 60
# Remind a quarter of the window ahead, at most an hour, at least a minute.
REMIND_MAX = timedelta(hours=1)
MAX_SUMMARY = 5000
MAX_ANSWER = 10000
SWEEP_BATCH = 500


# --- due dates -------------------------------------------------------------------------


def team_schedule(team: Team) -> sla.Schedule:
    """The pure Schedule an escalation to `team` is due in (team, else workspace default, else 24/7)."""
    schedule = team.schedule if team.schedule_id else None
    if schedule is None:
        schedule = (
            BusinessSchedule.objects.filter(tenant_id=team.tenant_id, is_default=True)
            .prefetch_related("holidays")
            .first()
        )
    return clocks.schedule_spec(schedule)


def due_after(team: Team, start: datetime, minutes: int) -> datetime:
    """`minutes` business minutes after `start` in the team's hours."""
    try:
        return sla.add_business_seconds(team_schedule(team), start, minutes * 60)
    except ValueError:  # a schedule with no open hours at all: count calendar time
        return sla.add_calendar_seconds(start, minutes * 60)


def remind_time(team: Team, start: datetime, due: datetime) -> datetime | None:
    """When to remind: a quarter of the (business) window before the due date, at most an hour."""
    schedule = team_schedule(team)
    try:
        window = sla.business_seconds_between(schedule, start, due)
    except ValueError:
        window = 0
    if window >= 4:
        lead = min(window // 4, int(REMIND_MAX.total_seconds()))
        return sla.add_business_seconds(schedule, start, window - lead)
    # The due date falls before the team next opens: remind in calendar time instead.
    span = due - start
    if span <= timedelta(minutes=1):
        return None
    return due - min(span / 4, REMIND_MAX)


@dataclass(frozen=True)
class Draft:
    """What the Escalate form starts with: the playbook's path, or the workspace default."""

    team: Team | None
    due_minutes: int
    due_at: datetime | None
    summary: str
    from_playbook: bool
    missing: list[str]


def escalation_draft(ticket: Ticket, user: User | None, at: datetime | None = None) -> Draft:
    """Prefill for the Escalate form: team, due date and summary from the ticket's playbook."""
    from playbooks import rendering
    from playbooks.services import version_for

    at = at or timezone.now()
    version = version_for(ticket)
    team = version.escalation_team if version is not None and version.has_escalation_path else None
    minutes = (version.escalation_due_minutes if team is not None and version else None) or DEFAULT_DUE_MINUTES
    summary, missing = "", []
    if version is not None and version.escalation_summary:
        try:
            rendered = rendering.render(version.escalation_summary, rendering.ticket_context(ticket, agent=user))
        except rendering.TemplateProblem:
            rendered = rendering.Rendered(text=version.escalation_summary, missing=[])
        summary, missing = rendered.text, rendered.missing
    return Draft(
        team=team,
        due_minutes=minutes,
        due_at=due_after(team, at, minutes) if team is not None else None,
        summary=summary,
        from_playbook=team is not None,
        missing=missing,
    )


# --- recipients --------------------------------------------------------------------------


def _leads(tenant_id: int) -> list[int]:
    return list(Membership.objects.filter(tenant_id=tenant_id, role=Role.LEAD).values_list("user_id", flat=True))


def _notes(esc: Escalation, user_ids: Sequence[int | None], kind: str, text: str, at: datetime) -> list[Notification]:
    seen: list[int] = []
    for uid in user_ids:
        if uid and uid not in seen:
            seen.append(uid)
    return [
        Notification(
            tenant_id=esc.tenant_id, user_id=uid, ticket_id=esc.ticket_id, kind=kind, text=text[:300], created_at=at
        )
        for uid in seen
    ]


def _team_people(esc: Escalation) -> list[int | None]:
    """Who answers for the escalation's team: its lead and the escalation's owner, else the leads."""
    people = [esc.team.lead_id, esc.owner_id]
    if not any(people):
        return list(_leads(esc.tenant_id))
    return people


def _label(esc: Escalation) -> str:
    return f"#{esc.ticket.number} {esc.ticket.subject}"


# --- writers -------------------------------------------------------------------------------


def _member(tenant_id: int, user: User) -> bool:
    return Membership.objects.filter(tenant_id=tenant_id, user=user).exists()


@transaction.atomic
def escalation_create(
    *,
    ticket: Ticket,
    actor: Actor,
    summary: str,
    team: Team | None = None,
    owner: User | None = None,
    due_at: datetime | None = None,
    at: datetime | None = None,
) -> Escalation:
    """Escalate `ticket` to a team; defaults come from the ticket type's playbook path.

    Raises ValidationError naming the field at fault; nothing is written then.
    """
    at = at or timezone.now()
    ticket = (
        Ticket.objects.select_for_update(of=("self",))
        .select_related("tenant")
        .get(pk=ticket.pk, tenant_id=ticket.tenant_id)
    )
    errors: dict[str, str] = {}
    if ticket.status == Status.CLOSED:
        errors["ticket"] = "This ticket is closed; escalate its follow-up ticket instead."
    summary = (summary or "").strip()
    if not summary:
        errors["summary"] = "Write a summary the other team can act on."
    elif len(summary) > MAX_SUMMARY:
        errors["summary"] = f"Keep the summary under {MAX_SUMMARY} characters."
    if team is not None and team.tenant_id != ticket.tenant_id:
        errors["team"] = "No such team."
        team = None
    draft = escalation_draft(ticket, actor.user, at)
    if team is None and "team" not in errors:
        team = draft.team
        if team is None:
            errors["team"] = "Choose the team to escalate to (this ticket type has no escalation path)."
    if owner is not None and not _member(ticket.tenant_id, owner):
        errors["owner"] = "That person is not a member of this workspace."
    if due_at is not None:
        if timezone.is_naive(due_at):
            errors["due_at"] = "Give the due date with a time zone."
        elif due_at <= at:
            errors["due_at"] = "The due date is in the past."
    if errors or team is None:
        raise ValidationError(errors)
    if due_at is None:
        due_at = due_after(team, at, draft.due_minutes)
    esc = Escalation.objects.create(
        tenant_id=ticket.tenant_id,
        ticket=ticket,
        team=team,
        owner=owner,
        summary=summary,
        status=State.OPEN,
        due_at=due_at,
        remind_at=remind_time(team, at, due_at),
        created_by=actor.user,
        created_at=at,
    )
    _event(
        ticket, actor, "escalated", at, escalation=esc.pk, team=team.name, due_at=due_at.isoformat(), summary=summary
    ).save()
    Notification.objects.bulk_create(
        _notes(esc, _team_people(esc), "escalation", f"{_label(esc)} escalated to {team.name}: {summary}", at)
    )
    audit_record(
        tenant=ticket.tenant,
        actor=actor,
        action="escalation.created",
        target=esc,
        changes={"ticket": ticket.number, "team": team.name, "due_at": due_at.isoformat()},
    )
    return esc


def _lock(esc: Escalation) -> Escalation:
    return (
        Escalation.objects.select_for_update(of=("self",))
        .select_related("ticket", "ticket__tenant", "team", "owner", "created_by")
        .get(pk=esc.pk, tenant_id=esc.tenant_id)
    )


def _refuse(esc: Escalation, allowed: tuple[str, ...], doing: str) -> None:
    if esc.status not in allowed:
        raise ValidationError(
            {"status": f"This escalation is {esc.get_status_display().lower()}; it can’t be {doing}."}
        )


def _done(esc: Escalation, actor: Actor, kind: str, at: datetime, notes: list[Notification], **data) -> Escalation:
    _event(esc.ticket, actor, kind, at, escalation=esc.pk, team=esc.team.name, **data).save()
    if notes:
        Notification.objects.bulk_create(notes)
    audit_record(
        tenant=esc.ticket.tenant,
        actor=actor,
        action=f"escalation.{kind.removeprefix('escalation_')}",
        target=esc,
        changes={"ticket": esc.ticket.number, "status": esc.status},
    )
    return esc


def _not_actor(ids: Sequence[int | None], actor: Actor) -> list[int | None]:
    return [i for i in ids if not (actor.user is not None and i == actor.user.pk)]


@transaction.atomic
def escalation_acknowledge(*, escalation: Escalation, actor: Actor, at: datetime | None = None) -> Escalation:
    """The team has seen it; the person acknowledging becomes its owner if it had none."""
    at = at or timezone.now()
    esc = _lock(escalation)
    _refuse(esc, (State.OPEN,), "acknowledged")
    esc.status = State.ACKNOWLEDGED
    esc.acknowledged_at = at
    fields = ["status", "acknowledged_at"]
    if esc.owner_id is None and actor.user is not None and _member(esc.tenant_id, actor.user):
        esc.owner = actor.user
        fields.append("owner")
    esc.save(update_fields=fields)
    who = actor.user.display_name if actor.user else actor.label
    notes = _notes(
        esc,
        _not_actor([esc.created_by_id], actor),
        "escalation",
        f"{who} acknowledged the escalation of {_label(esc)}",
        at,
    )
    return _done(esc, actor, "escalation_acknowledged", at, notes)


@transaction.atomic
def escalation_answer(*, escalation: Escalation, actor: Actor, answer: str, at: datetime | None = None) -> Escalation:
    """The team answers; the answer also goes on the ticket as an internal note for the agent."""
    at = at or timezone.now()
    answer = (answer or "").strip()
    if not answer:
        raise ValidationError({"answer": "Write the answer before sending it."})
    if len(answer) > MAX_ANSWER:
        raise ValidationError({"answer": f"Keep the answer under {MAX_ANSWER} characters."})
    esc = _lock(escalation)
    _refuse(esc, ACTIVE, "answered")
    esc.status = State.ANSWERED
    esc.answer = answer
    esc.answered_at = at
    fields = ["status", "answer", "answered_at"]
    if esc.acknowledged_at is None:
        esc.acknowledged_at = at
        fields.append("acknowledged_at")
    esc.save(update_fields=fields)
    ticket_add_note(ticket=esc.ticket, actor=actor, body=f"Escalation answer from {esc.team.name}:\n\n{answer}", at=at)
    notes = _notes(
        esc,
        _not_actor([esc.created_by_id], actor) or ([] if esc.created_by_id else [esc.ticket.assignee_id]),
        "escalation",
        f"{esc.team.name} answered the escalation of {_label(esc)}",
        at,
    )
    return _done(esc, actor, "escalation_answered", at, notes)


@transaction.atomic
def escalation_resolve(*, escalation: Escalation, actor: Actor, at: datetime | None = None) -> Escalation:
    """Done: nothing more is needed from the team."""
    at = at or timezone.now()
    esc = _lock(escalation)
    _refuse(esc, (*ACTIVE, State.ANSWERED), "resolved")
    esc.status = State.RESOLVED
    esc.resolved_at = at
    esc.save(update_fields=["status", "resolved_at"])
    notes = _notes(
        esc,
        _not_actor([esc.created_by_id, esc.owner_id], actor),
        "escalation",
        f"Escalation of {_label(esc)} resolved",
        at,
    )
    return _done(esc, actor, "escalation_resolved", at, notes)


@transaction.atomic
def escalation_cancel(*, escalation: Escalation, actor: Actor, at: datetime | None = None) -> Escalation:
    """Withdrawn (the agent sorted it out): the team is told so it stops working on it."""
    at = at or timezone.now()
    esc = _lock(escalation)
    _refuse(esc, ACTIVE, "cancelled")
    esc.status = State.CANCELLED
    esc.resolved_at = at
    esc.save(update_fields=["status", "resolved_at"])
    notes = _notes(
        esc, _not_actor(_team_people(esc), actor), "escalation", f"Escalation of {_label(esc)} was cancelled", at
    )
    return _done(esc, actor, "escalation_cancelled", at, notes)


# --- the sweep -------------------------------------------------------------------------------


def tenants_with_due_escalations(at: datetime | None = None) -> list[int]:
    """Tenants with a due reminder or overdue notice (probes on escalation_due / _remind)."""
    at = at or timezone.now()
    active = [Escalation.State.OPEN, Escalation.State.ACKNOWLEDGED]
    return tenants_with_due(
        Escalation,
        Q(status__in=active, breached_at__isnull=True, due_at__lte=at),
        Q(status__in=active, reminded_at__isnull=True, remind_at__lte=at),
    )


def escalation_sweep_tenant(tenant_id: int, at: datetime | None = None) -> dict[str, int]:
    """Fire due escalation reminders and overdue notices of one tenant, each exactly once.

    Rows are claimed with SELECT … FOR UPDATE SKIP LOCKED and stamped with a conditional
    UPDATE in the same transaction, so overlapping sweeps never fire a row twice. An
    escalation already overdue gets its overdue notice only (its reminder is stamped too).
    """
    at = at or timezone.now()
    fired = {"overdue": 0, "reminders": 0}
    active = Q(tenant_id=tenant_id, status__in=ACTIVE)
    with transaction.atomic():
        due = list(
            Escalation.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(active, breached_at__isnull=True, due_at__lte=at)
            .select_related("ticket", "team")
            .order_by("due_at")[:SWEEP_BATCH]
        )
        if due:
            Escalation.objects.filter(active, pk__in=[e.pk for e in due], breached_at__isnull=True).update(
                breached_at=at, reminded_at=Coalesce("reminded_at", at)
            )
            events, notes = [], []
            for esc in due:
                events.append(_event(esc.ticket, None, "escalation_overdue", at, escalation=esc.pk, team=esc.team.name))
                people = [esc.team.lead_id] if esc.team.lead_id else [esc.owner_id, *_leads(tenant_id)]
                notes += _notes(
                    esc, people, "escalation_overdue", f"Escalation overdue ({esc.team.name}): {_label(esc)}", at
                )
            TicketEvent.objects.bulk_create(events)
            Notification.objects.bulk_create(notes)
            fired["overdue"] = len(due)
    with transaction.atomic():
        remind = list(
            Escalation.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(active, reminded_at__isnull=True, remind_at__lte=at)
            .select_related("ticket", "team")
            .order_by("remind_at")[:SWEEP_BATCH]
        )
        if remind:
            Escalation.objects.filter(active, pk__in=[e.pk for e in remind], reminded_at__isnull=True).update(
                reminded_at=at
            )
            events, notes = [], []
            for esc in remind:
                minutes = max(int((esc.due_at - at).total_seconds() // 60), 0)
                events.append(
                    _event(
                        esc.ticket,
                        None,
                        "escalation_reminder",
                        at,
                        escalation=esc.pk,
                        team=esc.team.name,
                        due_at=esc.due_at.isoformat(),
                    )
                )
                people = (
                    [esc.owner_id] if esc.owner_id else [esc.team.lead_id] if esc.team.lead_id else _leads(tenant_id)
                )
                notes += _notes(
                    esc, list(people), "escalation_reminder", f"Escalation due in {minutes} min: {_label(esc)}", at
                )
            TicketEvent.objects.bulk_create(events)
            Notification.objects.bulk_create(notes)
            fired["reminders"] = len(remind)
    return fired
