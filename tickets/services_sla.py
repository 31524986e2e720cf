"""Writers for SLA settings: business schedules, holidays, SLA policies and ticket types.

Keyword-only and atomic like every service. Each one validates again what the forms check
(the forms only make the messages friendlier), writes an audit entry, clears the compiled
policy cache, and — when open tickets' due times may move — starts a re-evaluation job
that a worker picks up after commit.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Model, QuerySet
from django.utils.text import slugify
from django.utils.timezone import now

from helpdesk.models import Tenant
from helpdesk.services import Actor, audit_record
from tickets import policy, sla
from tickets.models import (
    BackgroundJob,
    BusinessSchedule,
    Channel,
    Holiday,
    Priority,
    SlaMetric,
    SlaPolicy,
    SlaTarget,
    TicketType,
    Tier,
)
from tickets.selectors import ticket_types_changed
from tickets.services import normalise_tags, sla_policies_changed

REEVALUATE_KIND = "sla_reevaluate"
POSITION_STEP = 10
# A target longer than a year is a typo, not a promise.
MAX_TARGET_MINUTES = 365 * 24 * 60


@cache
def time_zones() -> tuple[str, ...]:
    """Every IANA zone name this machine knows, sorted (for selects and validation)."""
    return tuple(sorted(zoneinfo.available_timezones()))


# --- Re-evaluation jobs ---------------------------------------------------------------


def sla_reevaluation_start(*, tenant: Tenant) -> BackgroundJob:
    """Record a re-evaluation job and enqueue it once the caller's transaction commits.

    The job row is the source of truth for the progress bar; the Celery message only
    carries ids, so a worker that picks it up sees the committed policies.
    """
    from tickets import tasks

    job = BackgroundJob.objects.create(tenant=tenant, kind=REEVALUATE_KIND)
    tenant_id, job_id = tenant.pk, job.pk
    transaction.on_commit(lambda: tasks.sla_reevaluate.delay(tenant_id, job_id))
    return job


def sla_latest_job(*, tenant: Tenant) -> BackgroundJob | None:
    return BackgroundJob.objects.filter(tenant=tenant, kind=REEVALUATE_KIND).order_by("-created_at", "-id").first()


@contextmanager
def _unique(field: str, message: str) -> Iterator[None]:
    """Turn a unique-constraint race (two saves at once) into the same form error."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        raise ValidationError({field: [message]}) from exc


def _excluding[M: Model](rows: QuerySet[M], pk: int | None) -> QuerySet[M]:
    """`rows` without the object being edited (all of them when creating)."""
    return rows if pk is None else rows.exclude(pk=pk)


# --- Ordering -------------------------------------------------------------------------


def _move(rows: QuerySet, obj: Model, direction: str) -> list[list[int]] | None:
    """Swap `obj` with its neighbour in `rows` (locked) and renumber positions 10, 20, ….

    Returns [old order, new order] as lists of ids, or None when `obj` is already at the
    end it moves towards.
    """
    if direction not in ("up", "down"):
        raise ValidationError({"direction": "Move up or down."})
    ordered = list(rows.select_for_update())
    ids = [row.pk for row in ordered]
    index = ids.index(obj.pk)
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(ordered):
        return None
    ordered[index], ordered[other] = ordered[other], ordered[index]
    changed = []
    for number, row in enumerate(ordered, start=1):
        if row.position != number * POSITION_STEP:
            row.position = number * POSITION_STEP
            changed.append(row)
    rows.model._default_manager.bulk_update(changed, ["position"])
    return [ids, [row.pk for row in ordered]]


# --- Business schedules ---------------------------------------------------------------


def _check_schedule(
    *,
    tenant: Tenant,
    name: str,
    tz: str,
    intervals: Sequence[Sequence[int]],
    exclude_pk: int | None = None,
) -> list[list[int]]:
    errors: dict[str, list[str]] = {}
    if not name:
        errors["name"] = ["Give the schedule a name."]
    elif _excluding(BusinessSchedule.objects.filter(tenant=tenant, name__iexact=name), exclude_pk).exists():
        errors["name"] = [f"A schedule named “{name}” already exists."]
    if tz not in time_zones():
        errors["timezone"] = [f"“{tz}” is not a time zone."]
    rows = [list(row) for row in intervals]
    shapes_ok = all(len(row) == 3 for row in rows)
    if not shapes_ok:
        errors["intervals"] = ["Each interval is [weekday, start minute, end minute]."]
    elif not rows:
        errors["intervals"] = ["Open at least one day: a schedule with no open hours never lets a clock run."]
    else:
        problems = sla.validate_intervals(sla.WeeklyInterval(*row) for row in rows)
        if problems:
            errors["intervals"] = problems
    if errors:
        raise ValidationError(errors)
    return sorted(rows)


def _schedule_in_use(schedule: BusinessSchedule) -> bool:
    """Whether an active policy times its clocks with this schedule (so due times move)."""
    active = SlaPolicy.objects.filter(tenant_id=schedule.tenant_id, is_active=True)
    if schedule.is_default and active.filter(schedule__isnull=True).exists():
        return True
    return active.filter(schedule=schedule).exists()


@transaction.atomic
def business_schedule_create(
    *, tenant: Tenant, actor: Actor, name: str, timezone: str, intervals: Sequence[Sequence[int]]
) -> BusinessSchedule:
    """A new, non-default schedule (no policy uses it yet, so no re-evaluation)."""
    name = name.strip()
    rows = _check_schedule(tenant=tenant, name=name, tz=timezone, intervals=intervals)
    with _unique("name", f"A schedule named “{name}” already exists."):
        schedule = BusinessSchedule.objects.create(tenant=tenant, name=name, timezone=timezone, intervals=rows)
    audit_record(
        tenant=tenant,
        actor=actor,
        action="business_schedule.create",
        target=schedule,
        changes={"timezone": timezone, "intervals": rows},
    )
    sla_policies_changed(tenant)
    return schedule


@transaction.atomic
def business_schedule_update(
    *,
    schedule: BusinessSchedule,
    actor: Actor,
    name: str,
    timezone: str,
    intervals: Sequence[Sequence[int]],
) -> BusinessSchedule:
    """Rename or re-time a schedule; open tickets timed by it are re-evaluated."""
    name = name.strip()
    rows = _check_schedule(tenant=schedule.tenant, name=name, tz=timezone, intervals=intervals, exclude_pk=schedule.pk)
    changes = {}
    for field, new in (("name", name), ("timezone", timezone), ("intervals", rows)):
        old = getattr(schedule, field)
        if old != new:
            changes[field] = [old, new]
            setattr(schedule, field, new)
    if not changes:
        return schedule
    with _unique("name", f"A schedule named “{name}” already exists."):
        schedule.save(update_fields=list(changes))
    audit_record(
        tenant=schedule.tenant,
        actor=actor,
        action="business_schedule.update",
        target=schedule,
        changes=changes,
    )
    sla_policies_changed(schedule.tenant)
    if (set(changes) - {"name"}) and _schedule_in_use(schedule):
        sla_reevaluation_start(tenant=schedule.tenant)
    return schedule


@transaction.atomic
def business_schedule_set_default(*, schedule: BusinessSchedule, actor: Actor) -> BusinessSchedule:
    """Make this the schedule of every policy that names none (one default per tenant)."""
    tenant = schedule.tenant
    schedules = list(BusinessSchedule.objects.select_for_update().filter(tenant=tenant).order_by("pk"))
    previous = next((s for s in schedules if s.is_default), None)
    if previous is not None and previous.pk == schedule.pk:
        return schedule
    # Clear the old default first: the partial unique index allows one default at a time.
    BusinessSchedule.objects.filter(tenant=tenant, is_default=True).update(is_default=False)
    BusinessSchedule.objects.filter(tenant=tenant, pk=schedule.pk).update(is_default=True)
    schedule.is_default = True
    audit_record(
        tenant=tenant,
        actor=actor,
        action="business_schedule.set_default",
        target=schedule,
        changes={"default": [previous.name if previous else None, schedule.name]},
    )
    sla_policies_changed(tenant)
    if SlaPolicy.objects.filter(tenant=tenant, is_active=True, schedule__isnull=True).exists():
        sla_reevaluation_start(tenant=tenant)
    return schedule


@transaction.atomic
def holiday_add(*, schedule: BusinessSchedule, actor: Actor, date: dt.date, name: str = "") -> Holiday:
    """Close the schedule for one whole local day; one entry per date."""
    name = name.strip()[:100]
    existing = Holiday.objects.filter(tenant_id=schedule.tenant_id, schedule=schedule, date=date).first()
    if existing is not None:
        label = f" ({existing.name})" if existing.name else ""
        raise ValidationError({"date": [f"{date.day} {date:%B %Y} is already a holiday{label}."]})
    with _unique("date", f"{date.day} {date:%B %Y} is already a holiday."):
        holiday = Holiday.objects.create(tenant_id=schedule.tenant_id, schedule=schedule, date=date, name=name)
    audit_record(
        tenant=schedule.tenant,
        actor=actor,
        action="holiday.create",
        target=schedule,
        changes={"date": date.isoformat(), "name": name},
    )
    sla_policies_changed(schedule.tenant)
    if _schedule_in_use(schedule):
        sla_reevaluation_start(tenant=schedule.tenant)
    return holiday


@transaction.atomic
def holiday_remove(*, holiday: Holiday, actor: Actor) -> None:
    schedule = holiday.schedule
    audit_record(
        tenant=schedule.tenant,
        actor=actor,
        action="holiday.delete",
        target=schedule,
        changes={"date": holiday.date.isoformat(), "name": holiday.name},
    )
    holiday.delete()
    sla_policies_changed(schedule.tenant)
    if _schedule_in_use(schedule):
        sla_reevaluation_start(tenant=schedule.tenant)


# --- SLA policies ---------------------------------------------------------------------


@dataclass(frozen=True)
class TargetSpec:
    """One cell of a policy's metric × priority grid."""

    minutes: int
    business_hours: bool = True
    warn_before_minutes: int = 0


def condition_choices(tenant: Tenant) -> dict[str, Sequence[str]]:
    """Valid values per condition key (tags are free text, so they have no list)."""
    return {
        "ticket_types": list(TicketType.objects.filter(tenant=tenant).values_list("slug", flat=True)),
        "priorities": list(Priority.values),
        "channels": list(Channel.values),
        "tiers": list(Tier.values),
    }


def _clean_conditions(tenant: Tenant, conditions: dict) -> dict:
    errors = policy.validate_conditions(conditions, condition_choices(tenant))
    if errors:
        raise ValidationError({key: [message] for key, message in errors.items()})
    cleaned = policy.clean_conditions(conditions)
    if cleaned.get("tags"):
        cleaned["tags"] = normalise_tags(cleaned["tags"])  # the same rules tickets' tags follow
    return cleaned


def _clean_targets(targets: dict[tuple[str, str], TargetSpec]) -> dict[tuple[str, str], TargetSpec]:
    if not targets:
        raise ValidationError({"targets": ["Set at least one target."]})
    for (metric, priority), spec in targets.items():
        where = f"{SlaMetric(metric).label if metric in SlaMetric.values else metric} / {priority}"
        if metric not in SlaMetric.values or priority not in Priority.values:
            raise ValidationError({"targets": [f"{where}: unknown metric or priority."]})
        if not 0 < spec.minutes <= MAX_TARGET_MINUTES:
            raise ValidationError({"targets": [f"{where}: a target is between 1 minute and 365 days."]})
        if not 0 <= spec.warn_before_minutes < spec.minutes:
            raise ValidationError({"targets": [f"{where}: warn before the target is due, not after it."]})
    return targets


def _target_summary(targets: dict[tuple[str, str], TargetSpec]) -> dict[str, str]:
    return {
        f"{metric}/{priority}": f"{spec.minutes}m {'business' if spec.business_hours else 'calendar'} "
        f"warn {spec.warn_before_minutes}m"
        for (metric, priority), spec in sorted(targets.items())
    }


def _current_targets(sla_policy: SlaPolicy) -> dict[tuple[str, str], TargetSpec]:
    return {
        (t.metric, t.priority): TargetSpec(t.minutes, t.business_hours, t.warn_before_minutes)
        for t in SlaTarget.objects.filter(tenant_id=sla_policy.tenant_id, policy=sla_policy)
    }


def _check_policy_fields(tenant: Tenant, name: str, schedule: BusinessSchedule | None) -> None:
    errors = {}
    if not name:
        errors["name"] = ["Give the policy a name."]
    if schedule is not None and schedule.tenant_id != tenant.pk:
        errors["schedule"] = ["No such schedule."]
    if errors:
        raise ValidationError(errors)


def _write_targets(sla_policy: SlaPolicy, targets: dict[tuple[str, str], TargetSpec]) -> None:
    SlaTarget.objects.filter(tenant_id=sla_policy.tenant_id, policy=sla_policy).delete()
    SlaTarget.objects.bulk_create(
        [
            SlaTarget(
                tenant_id=sla_policy.tenant_id,
                policy=sla_policy,
                metric=metric,
                priority=priority,
                minutes=spec.minutes,
                business_hours=spec.business_hours,
                warn_before_minutes=spec.warn_before_minutes,
            )
            for (metric, priority), spec in sorted(targets.items())
        ]
    )


@transaction.atomic
def sla_policy_create(
    *,
    tenant: Tenant,
    actor: Actor,
    name: str,
    conditions: dict,
    targets: dict[tuple[str, str], TargetSpec],
    schedule: BusinessSchedule | None = None,
    pause_on_hold: bool = False,
    is_active: bool = True,
) -> SlaPolicy:
    """Add a policy at the top of the order (so it wins over the catch-all below it)."""
    name = name.strip()
    _check_policy_fields(tenant, name, schedule)
    conditions = _clean_conditions(tenant, conditions)
    targets = _clean_targets(targets)
    existing = list(SlaPolicy.objects.select_for_update().filter(tenant=tenant).order_by("position", "id"))
    first = existing[0].position if existing else POSITION_STEP * 2
    if first < POSITION_STEP:
        # No room above the first policy: renumber everyone one step down.
        for number, row in enumerate(existing, start=2):
            row.position = number * POSITION_STEP
        SlaPolicy.objects.bulk_update(existing, ["position"])
        first = 2 * POSITION_STEP
    sla_policy = SlaPolicy.objects.create(
        tenant=tenant,
        name=name[:100],
        position=first - POSITION_STEP,
        is_active=is_active,
        conditions=conditions,
        schedule=schedule,
        pause_on_hold=pause_on_hold,
        updated_at=now(),
    )
    _write_targets(sla_policy, targets)
    audit_record(
        tenant=tenant,
        actor=actor,
        action="sla_policy.create",
        target=sla_policy,
        changes={
            "conditions": conditions,
            "schedule": schedule.name if schedule else None,
            "pause_on_hold": pause_on_hold,
            "targets": _target_summary(targets),
        },
    )
    sla_policies_changed(tenant)
    sla_reevaluation_start(tenant=tenant)
    return sla_policy


@transaction.atomic
def sla_policy_update(
    *,
    sla_policy: SlaPolicy,
    actor: Actor,
    name: str,
    conditions: dict,
    targets: dict[tuple[str, str], TargetSpec],
    schedule: BusinessSchedule | None = None,
    pause_on_hold: bool = False,
) -> SlaPolicy:
    """Change a policy's rules; open tickets are re-matched and re-timed by a job."""
    tenant = sla_policy.tenant
    name = name.strip()
    _check_policy_fields(tenant, name, schedule)
    conditions = _clean_conditions(tenant, conditions)
    targets = _clean_targets(targets)
    sla_policy = SlaPolicy.objects.select_for_update().get(tenant=tenant, pk=sla_policy.pk)
    changes: dict[str, list] = {}
    for field, old, new in (
        ("name", sla_policy.name, name[:100]),
        ("conditions", sla_policy.conditions or {}, conditions),
        (
            "schedule",
            sla_policy.schedule.name if sla_policy.schedule else None,
            schedule.name if schedule else None,
        ),
        ("pause_on_hold", sla_policy.pause_on_hold, pause_on_hold),
    ):
        if old != new:
            changes[field] = [old, new]
    old_targets = _current_targets(sla_policy)
    if old_targets != targets:
        changes["targets"] = [_target_summary(old_targets), _target_summary(targets)]
        _write_targets(sla_policy, targets)
    if not changes:
        return sla_policy
    sla_policy.name = name[:100]
    sla_policy.conditions = conditions
    sla_policy.schedule = schedule
    sla_policy.pause_on_hold = pause_on_hold
    sla_policy.updated_at = now()
    sla_policy.save(update_fields=["name", "conditions", "schedule", "pause_on_hold", "updated_at"])
    audit_record(tenant=tenant, actor=actor, action="sla_policy.update", target=sla_policy, changes=changes)
    sla_policies_changed(tenant)
    if set(changes) != {"name"}:
        sla_reevaluation_start(tenant=tenant)
    return sla_policy


@transaction.atomic
def sla_policy_move(*, sla_policy: SlaPolicy, actor: Actor, direction: str) -> SlaPolicy:
    """Move a policy one place up or down; the first match wins, so order changes matching."""
    tenant = sla_policy.tenant
    order = _move(SlaPolicy.objects.filter(tenant=tenant).order_by("position", "id"), sla_policy, direction)
    if order is None:
        return sla_policy
    sla_policy.refresh_from_db(fields=["position"])
    audit_record(
        tenant=tenant,
        actor=actor,
        action="sla_policy.move",
        target=sla_policy,
        changes={"order": order},
    )
    sla_policies_changed(tenant)
    sla_reevaluation_start(tenant=tenant)
    return sla_policy


@transaction.atomic
def sla_policy_set_active(*, sla_policy: SlaPolicy, actor: Actor, is_active: bool) -> SlaPolicy:
    tenant = sla_policy.tenant
    updated = (
        SlaPolicy.objects.filter(tenant=tenant, pk=sla_policy.pk)
        .exclude(is_active=is_active)
        .update(is_active=is_active, updated_at=now())
    )
    if not updated:
        return sla_policy
    sla_policy.is_active = is_active
    audit_record(
        tenant=tenant,
        actor=actor,
        action="sla_policy.activate" if is_active else "sla_policy.deactivate",
        target=sla_policy,
        changes={"is_active": [not is_active, is_active]},
    )
    sla_policies_changed(tenant)
    sla_reevaluation_start(tenant=tenant)
    return sla_policy


# --- Ticket types ---------------------------------------------------------------------


def _check_ticket_type(*, tenant: Tenant, name: str, slug: str, exclude_pk: int | None = None) -> tuple[str, str]:
    name = name.strip()
    slug = slugify(slug.strip() or name)[:80]
    errors = {}
    if not name:
        errors["name"] = ["Give the type a name."]
    if not slug:
        errors["slug"] = ["Give a slug: lowercase letters, digits and dashes."]
    else:
        clash = _excluding(TicketType.objects.filter(tenant=tenant, slug=slug), exclude_pk).first()
        if clash is not None:
            errors["slug"] = [f"The slug “{slug}” is already used by “{clash.name}”. Choose another."]
    if errors:
        raise ValidationError(errors)
    return name[:80], slug


@transaction.atomic
def ticket_type_create(
    *,
    tenant: Tenant,
    actor: Actor,
    name: str,
    slug: str = "",
    description: str = "",
    is_active: bool = True,
) -> TicketType:
    """A new type at the end of the list; the slug defaults to one made from the name."""
    name, slug = _check_ticket_type(tenant=tenant, name=name, slug=slug)
    last = TicketType.objects.filter(tenant=tenant).order_by("-position").values_list("position", flat=True).first()
    with _unique("slug", f"The slug “{slug}” is already used. Choose another."):
        ticket_type = TicketType.objects.create(
            tenant=tenant,
            name=name,
            slug=slug,
            description=description.strip()[:200],
            position=(last or 0) + POSITION_STEP,
            is_active=is_active,
        )
    audit_record(
        tenant=tenant,
        actor=actor,
        action="ticket_type.create",
        target=ticket_type,
        changes={"slug": slug, "is_active": is_active},
    )
    ticket_types_changed(tenant.pk)
    return ticket_type


@transaction.atomic
def ticket_type_update(
    *,
    ticket_type: TicketType,
    actor: Actor,
    name: str,
    slug: str = "",
    description: str = "",
    is_active: bool = True,
) -> TicketType:
    """Edit a type. A new slug is carried into SLA policy conditions, so matching holds."""
    tenant = ticket_type.tenant
    name, slug = _check_ticket_type(tenant=tenant, name=name, slug=slug, exclude_pk=ticket_type.pk)
    changes = {}
    for field, new in (
        ("name", name),
        ("slug", slug),
        ("description", description.strip()[:200]),
        ("is_active", is_active),
    ):
        old = getattr(ticket_type, field)
        if old != new:
            changes[field] = [old, new]
            setattr(ticket_type, field, new)
    if not changes:
        return ticket_type
    with _unique("slug", f"The slug “{slug}” is already used. Choose another."):
        ticket_type.save(update_fields=list(changes))
    if "slug" in changes:
        old_slug = changes["slug"][0]
        renamed = []
        for row in SlaPolicy.objects.select_for_update().filter(tenant=tenant):
            slugs = (row.conditions or {}).get("ticket_types") or []
            if old_slug in slugs:
                row.conditions = {
                    **row.conditions,
                    "ticket_types": [slug if s == old_slug else s for s in slugs],
                }
                renamed.append(row)
        if renamed:
            SlaPolicy.objects.bulk_update(renamed, ["conditions"])
            changes["sla_policies"] = [row.name for row in renamed]
            sla_policies_changed(tenant)
    audit_record(tenant=tenant, actor=actor, action="ticket_type.update", target=ticket_type, changes=changes)
    ticket_types_changed(tenant.pk)
    return ticket_type


@transaction.atomic
def ticket_type_move(*, ticket_type: TicketType, actor: Actor, direction: str) -> TicketType:
    tenant = ticket_type.tenant
    order = _move(
        TicketType.objects.filter(tenant=tenant).order_by("position", "name", "id"),
        ticket_type,
        direction,
    )
    if order is None:
        return ticket_type
    ticket_type.refresh_from_db(fields=["position"])
    audit_record(
        tenant=tenant,
        actor=actor,
        action="ticket_type.move",
        target=ticket_type,
        changes={"order": order},
    )
    return ticket_type
