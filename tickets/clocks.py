"""SLA clocks: start, pause, resume, fulfil and re-target the per-ticket timers.

The time math lives in tickets/sla.py (pure); this module maps SlaClock rows onto it.
Callers (tickets.services) hold the ticket's transaction; nothing here commits on its own.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from django.utils import timezone

from tickets import sla
from tickets.models import (
    NO_DUE,
    BusinessSchedule,
    SlaClock,
    SlaMetric,
    SlaPolicy,
    SlaTarget,
    Ticket,
)

State = SlaClock.State


def schedule_spec(schedule: BusinessSchedule | None) -> sla.Schedule:
    """The pure Schedule for a BusinessSchedule row (24/7 when there is none)."""
    if schedule is None:
        return sla.ALWAYS_OPEN
    holidays = frozenset(h.date for h in schedule.holidays.all())
    return _spec(schedule.timezone, tuple(tuple(i) for i in schedule.intervals), holidays)


@lru_cache(maxsize=512)
def _spec(tz: str, intervals: tuple, holidays: frozenset) -> sla.Schedule:
    return sla.Schedule(tz=tz, intervals=tuple(sla.WeeklyInterval(*i) for i in intervals), holidays=holidays)


class ClockMath:
    """Business or calendar arithmetic for one policy's schedule."""

    def __init__(self, schedule: sla.Schedule):
        self.schedule = schedule

    def add(self, start: datetime, seconds: int, business: bool) -> datetime:
        if not business:
            return sla.add_calendar_seconds(start, seconds)
        return sla.add_business_seconds(self.schedule, start, seconds)

    def between(self, start: datetime, end: datetime, business: bool) -> int:
        if not business:
            return sla.calendar_seconds_between(start, end)
        return sla.business_seconds_between(self.schedule, start, end)


def elapsed_now(clock: SlaClock, math: ClockMath, at: datetime) -> int:
    """Seconds of SLA time used so far, including the running segment."""
    running = math.between(clock.running_since, at, clock.business_hours) if clock.running_since else 0
    return clock.elapsed_seconds + running


def _set_due(clock: SlaClock, math: ClockMath, at: datetime) -> None:
    """Recompute due/warn times of a running clock from what is used and what is left."""
    remaining = max(clock.target_seconds - elapsed_now(clock, math, at), 0)
    clock.due_at = math.add(at, remaining, clock.business_hours)
    warn_remaining = remaining - clock.warn_before_seconds
    if clock.warned_at is None and clock.warn_before_seconds and warn_remaining > 0:
        clock.warn_at = math.add(at, warn_remaining, clock.business_hours)
    else:
        clock.warn_at = None


def start_clock(
    ticket: Ticket, metric: str, target: SlaTarget, math: ClockMath, at: datetime, existing: SlaClock | None
) -> SlaClock:
    """(Re)start a clock from zero at `at` — first response at creation, next response on a customer message."""
    clock = existing or SlaClock(tenant_id=ticket.tenant_id, ticket=ticket, metric=metric)
    clock.status = State.ACTIVE
    clock.target_seconds = target.minutes * 60
    clock.business_hours = target.business_hours
    clock.warn_before_seconds = target.warn_before_minutes * 60
    clock.started_at = at
    clock.elapsed_seconds = 0
    clock.running_since = at
    clock.warned_at = None
    clock.breached_at = None
    clock.fulfilled_at = None
    clock.pauses = []
    _set_due(clock, math, at)
    return clock


def pause_clock(clock: SlaClock, math: ClockMath, at: datetime, reason: str) -> bool:
    if clock.status != State.ACTIVE or clock.running_since is None:
        return False
    clock.elapsed_seconds = elapsed_now(clock, math, at)
    clock.running_since = None
    clock.status = State.PAUSED
    clock.due_at = None
    clock.warn_at = None
    clock.pauses = [*clock.pauses, {"paused_at": at.isoformat(), "resumed_at": None, "reason": reason}]
    return True


def resume_clock(clock: SlaClock, math: ClockMath, at: datetime) -> bool:
    """Resume a paused clock; its due time moves by the paused (business) time."""
    if clock.status != State.PAUSED:
        return False
    clock.status = State.ACTIVE
    clock.running_since = at
    if clock.pauses and clock.pauses[-1].get("resumed_at") is None:
        clock.pauses = [*clock.pauses[:-1], {**clock.pauses[-1], "resumed_at": at.isoformat()}]
    _set_due(clock, math, at)
    return True


def reactivate_clock(clock: SlaClock, math: ClockMath, at: datetime) -> bool:
    """Reopen: a fulfilled resolution clock runs again with the time it had already used."""
    if clock.status not in (State.FULFILLED,):
        return False
    clock.status = State.BREACHED if clock.breached_at else State.ACTIVE
    clock.fulfilled_at = None
    clock.running_since = at
    _set_due(clock, math, at)
    return True


def fulfil_clock(clock: SlaClock, math: ClockMath, at: datetime) -> bool:
    if clock.status not in (State.ACTIVE, State.BREACHED, State.PAUSED):
        return False
    clock.elapsed_seconds = elapsed_now(clock, math, at)
    clock.running_since = None
    clock.status = State.FULFILLED
    clock.fulfilled_at = at
    clock.warn_at = None
    return True


def retarget_clock(clock: SlaClock, target: SlaTarget, math: ClockMath, at: datetime) -> None:
    """Apply a new policy's target to a clock, keeping the time already used."""
    if clock.running_since is not None:
        clock.elapsed_seconds = elapsed_now(clock, math, at)
        clock.running_since = at
    clock.target_seconds = target.minutes * 60
    clock.business_hours = target.business_hours
    clock.warn_before_seconds = target.warn_before_minutes * 60
    if clock.status in (State.ACTIVE, State.BREACHED) and clock.running_since is not None:
        if clock.status == State.BREACHED and clock.elapsed_seconds < clock.target_seconds:
            # A longer target un-breaches a clock that has not actually run out.
            clock.status = State.ACTIVE
            clock.breached_at = None
        _set_due(clock, math, at)


def ticket_sla_due(clocks: list[SlaClock]) -> datetime:
    """The queue sort key: earliest due time among running or breached clocks."""
    dues = [c.due_at for c in clocks if c.status in (State.ACTIVE, State.BREACHED) and c.due_at]
    return min(dues) if dues else NO_DUE


def clock_view(clock: SlaClock, at: datetime | None = None) -> dict:
    """What the UI and API show of a clock: due time, state, and ok/warning/breached."""
    at = at or timezone.now()
    state = clock.status
    level = "ok"
    if state == State.BREACHED or (state == State.ACTIVE and clock.due_at and clock.due_at <= at):
        level = "breached"
    elif (
        state == State.ACTIVE
        and clock.warn_at
        and clock.warn_at <= at
        or state == State.ACTIVE
        and clock.due_at
        and clock.due_at - at < timedelta(seconds=clock.warn_before_seconds)
    ):
        level = "warning"
    return {"metric": clock.metric, "status": state, "due_at": clock.due_at, "level": level}


METRICS = [m.value for m in SlaMetric]
__all__ = ["METRICS", "SlaPolicy"]
