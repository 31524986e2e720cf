"""Business-time arithmetic for SLA targets.

Pure standard-library code (no Django, no ORM) so it can be unit-tested and property-tested
in isolation and called cheaply on every ticket create/update and in bulk re-evaluation.

Model
-----
A :class:`Schedule` is a set of weekly open intervals in *local wall-clock time* of an IANA
zone, plus local dates that are fully closed (holidays). Each local day's intervals are turned
into half-open UTC spans ``[open, close)``; all arithmetic happens on those spans, so days that
are 23 h or 25 h long because of DST come out right.

Conventions
-----------
* Every datetime accepted must be timezone-aware (naive input raises ``ValueError``); every
  datetime returned is in UTC (``datetime.UTC``).
* Durations are whole seconds. Measuring floors to whole seconds; internally all instants are
  integer microseconds since the Unix epoch, so there is no float rounding anywhere.
* Open spans are half-open: an instant exactly at closing time is closed, exactly at opening
  time is open. Adding ``n > 0`` seconds that end exactly at a closing time returns that closing
  instant (not the next opening), which keeps ``measure(add(t, n)) == n`` exact.

DST rules (deterministic, documented because they are choices)
----------------------------------------------------------------
* A wall time that does not exist (skipped by a spring-forward jump) maps to the instant of the
  jump. "Open from 02:30" on the Berlin spring-forward day therefore opens at 03:00 CEST, and
  an interval lying entirely inside the skipped hour contributes nothing that day.
* A wall time that occurs twice (fall-back) maps to its *first* occurrence (``fold=0``), for
  opening and closing times alike. Consequence: during the repeated hour, the clock is followed
  on the first pass, and the second pass keeps whatever state the first pass ended in.
* Both rules map wall time to UTC monotonically, so intervals that are disjoint in wall time
  never overlap in UTC, and a day's closing at 24:00 is exactly the next day's 00:00.

Spans that touch (09:00-12:00 + 12:00-17:00, or Monday 00:00-24:00 followed by Tuesday
00:00-...) behave as one continuous span: touching intervals of a weekday are merged up front,
and the walker never treats a boundary between touching spans (midnight included) as a pause.

Performance
-----------
Per-weekday spans are precomputed once per schedule (cached). The walker goes day by day,
converting each local day with one zone lookup (cached per day), and jumps over whole weeks
at once when the remaining duration exceeds a week's open time and the jumped weeks contain no
holiday and no UTC-offset change. Offset changes are found from a per-zone table built lazily
by sampling the zone daily (cached); this assumes a zone never changes its offset and changes
it back within 24 hours, which holds for every tzdb rule.
"""

import bisect
import datetime as dt
import operator
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "ALWAYS_OPEN",
    "Schedule",
    "WeeklyInterval",
    "add_business_seconds",
    "add_calendar_seconds",
    "business_seconds_between",
    "calendar_seconds_between",
    "is_open",
    "next_open",
    "validate_intervals",
]

UTC = dt.UTC

_US = 1_000_000
_MINUTE_US = 60 * _US
_DAY_US = 86_400 * _US
_WEEK_US = 7 * _DAY_US
_ONE_US = dt.timedelta(microseconds=1)
_ONE_S = dt.timedelta(seconds=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()
_MIDNIGHT = dt.time()

# How long a search for open time may run through closed days before the schedule is deemed
# to have no open hours at all (e.g. two years of holidays). Two leap years plus a week.
HORIZON_DAYS = 2 * 366 + 7

# Offset-change tables are built per block of ~388 days (2**25 s) of UTC time.
_BLOCK_S = 2**25
_DAY_CACHE_SIZE = 1024

_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class WeeklyInterval:
    """One weekly open interval in the schedule's local wall-clock time.

    ``weekday`` is 0=Monday .. 6=Sunday; ``start_minute`` (0..1439) and ``end_minute``
    (1..1440, where 1440 is the midnight ending the day) are minutes after local midnight.
    """

    weekday: int
    start_minute: int
    end_minute: int


@dataclass(frozen=True)
class Schedule:
    """Open hours of a help desk: weekly intervals in zone ``tz`` plus fully closed local dates.

    ``intervals`` and ``holidays`` are normalised to a tuple and a frozenset, so callers can
    pass lists or sets straight from the database while the schedule stays hashable (the
    computed per-schedule plan is cached by value).
    """

    tz: str
    intervals: tuple[WeeklyInterval, ...]
    holidays: frozenset[dt.date] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "intervals", tuple(self.intervals))
        object.__setattr__(self, "holidays", frozenset(self.holidays))


ALWAYS_OPEN = Schedule("UTC", tuple(WeeklyInterval(day, 0, 1440) for day in range(7)))
"""24/7 in UTC without holidays: business math on it equals calendar math."""


# ---------------------------------------------------------------------------------------------
# Validation


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _hhmm(minute: object) -> str:
    if _is_whole(minute) and 0 <= minute <= 1440:  # type: ignore[operator]
        return f"{minute // 60:02d}:{minute % 60:02d}"  # type: ignore[operator]
    return repr(minute)


def _describe(interval: WeeklyInterval) -> str:
    weekday = interval.weekday
    if _is_whole(weekday) and 0 <= weekday <= 6:
        day = _WEEKDAY_NAMES[weekday]
    else:
        day = f"weekday {weekday!r}"
    return f"{day} {_hhmm(interval.start_minute)}–{_hhmm(interval.end_minute)}"


def validate_intervals(intervals: Iterable[WeeklyInterval]) -> list[str]:
    """Return human-readable problems with ``intervals``; an empty list means they are usable.

    Exists so forms and admin screens can show every problem at once, and so the business
    math can refuse schedules it would otherwise silently misinterpret. Reports non-integer
    and out-of-range values, empty or inverted intervals, and overlaps between intervals of
    the same weekday. Intervals that merely touch (09:00–12:00 and 12:00–17:00) are fine.
    An empty collection yields no errors here; business math rejects it separately.
    """
    errors: list[str] = []
    by_weekday: dict[int, list[WeeklyInterval]] = {}
    for interval in intervals:
        values = (interval.weekday, interval.start_minute, interval.end_minute)
        if not all(_is_whole(value) for value in values):
            errors.append(f"{_describe(interval)}: weekday and minutes must be whole numbers")
            continue
        problems = []
        if not 0 <= interval.weekday <= 6:
            problems.append(f"weekday {interval.weekday} is out of range (0=Monday … 6=Sunday)")
        if not 0 <= interval.start_minute <= 1439:
            problems.append(f"start minute {interval.start_minute} is out of range (0–1439)")
        if not 1 <= interval.end_minute <= 1440:
            problems.append(f"end minute {interval.end_minute} is out of range (1–1440)")
        if problems:
            errors.append(f"{_describe(interval)}: " + "; ".join(problems))
            continue
        if interval.end_minute < interval.start_minute:
            errors.append(f"{_describe(interval)} ends before it starts")
            continue
        if interval.end_minute == interval.start_minute:
            errors.append(f"{_describe(interval)} is empty (it ends when it starts)")
            continue
        by_weekday.setdefault(interval.weekday, []).append(interval)

    for weekday in sorted(by_weekday):
        ordered = sorted(by_weekday[weekday], key=lambda i: (i.start_minute, i.end_minute))
        # Compare each interval with the one reaching furthest so far, so an interval nested
        # in a long one is reported against the long one rather than against a sibling.
        reach = ordered[0]
        for interval in ordered[1:]:
            if interval.start_minute < reach.end_minute:
                errors.append(
                    f"{_describe(reach)} overlaps {_hhmm(interval.start_minute)}–{_hhmm(interval.end_minute)}"
                )
            if interval.end_minute > reach.end_minute:
                reach = interval
    return errors


# ---------------------------------------------------------------------------------------------
# Time-zone helpers (all instants are int microseconds since the Unix epoch, UTC)


@lru_cache(maxsize=128)
def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc


def _to_us(instant: dt.datetime) -> int:
    return (instant - _EPOCH) // _ONE_US


def _from_us(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def _offset_us(zone: ZoneInfo, us: int) -> int:
    """UTC offset of ``zone`` at the UTC instant ``us``, in microseconds."""
    return _from_us(us).astimezone(zone).utcoffset() // _ONE_US  # type: ignore[operator]


@lru_cache(maxsize=4096)
def _transitions(tz: str, block: int) -> tuple[int, ...]:
    """Instants (µs) in ``(block start, block end]`` at which ``tz`` changes its UTC offset.

    zoneinfo exposes no transition list, so the zone is sampled once a day and each change is
    pinned to the exact second by bisection. This is what lets the walker prove that a run of
    weeks has a constant offset and can be skipped arithmetically.
    """
    zone = _zone(tz)
    from_timestamp = dt.datetime.fromtimestamp

    def offset(seconds: int) -> dt.timedelta | None:
        return from_timestamp(seconds, zone).utcoffset()

    found: list[int] = []
    low = block * _BLOCK_S
    high = low + _BLOCK_S
    previous = offset(low)
    for sample in range(low, high, 86_400):
        following = min(sample + 86_400, high)
        current = offset(following)
        if current == previous:
            continue
        before, after = sample, following
        while after - before > 1:
            middle = (before + after) // 2
            if offset(middle) == previous:
                before = middle
            else:
                after = middle
        found.append(after * _US)
        previous = current
    return tuple(found)


def _next_transition(tz: str, after_us: int, until_us: int) -> int | None:
    """First offset change of ``tz`` in ``(after_us, until_us]``, or None."""
    block = (after_us // _US) // _BLOCK_S
    last = (until_us // _US) // _BLOCK_S
    while block <= last:
        table = _transitions(tz, block)
        index = bisect.bisect_right(table, after_us)
        if index < len(table):
            found = table[index]
            return found if found <= until_us else None
        block += 1
    return None


def _wall_to_utc(zone: ZoneInfo, tz: str, wall_us: int) -> int:
    """UTC instant of local wall time ``wall_us`` (µs since the local 1970-01-01 00:00).

    Ambiguous times resolve to their first occurrence; skipped times to the instant of the
    jump (see the module docstring for why).
    """
    local = (_EPOCH + dt.timedelta(microseconds=wall_us)).replace(tzinfo=zone)
    # PEP 495: fold=0 applies the offset from before a transition, fold=1 the one after.
    before = local.utcoffset() // _ONE_US  # type: ignore[operator]
    after = local.replace(fold=1).utcoffset() // _ONE_US  # type: ignore[operator]
    if before >= after:
        # Unique (equal offsets) or repeated (offset drops): fold=0 is the first occurrence.
        return wall_us - before
    # Skipped: the jump happened somewhere in (wall - after, wall - before].
    jump = _next_transition(tz, wall_us - after, wall_us - before)
    return wall_us - before if jump is None else jump


# ---------------------------------------------------------------------------------------------
# Per-schedule plan


class _Plan:
    """Everything about a schedule that does not depend on the instant asked about."""

    __slots__ = ("tz", "zone", "weekly", "week_open_us", "holidays", "holiday_list", "_days")

    def __init__(self, schedule: Schedule, zone: ZoneInfo) -> None:
        self.tz = schedule.tz
        self.zone = zone
        per_day: list[list[tuple[int, int]]] = [[] for _ in range(7)]
        for interval in sorted(schedule.intervals, key=lambda i: (i.weekday, i.start_minute, i.end_minute)):
            spans = per_day[interval.weekday]
            start = interval.start_minute * _MINUTE_US
            end = interval.end_minute * _MINUTE_US
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(spans[-1][1], end))
            else:
                spans.append((start, end))
        self.weekly = tuple(tuple(spans) for spans in per_day)
        self.week_open_us = sum(end - start for spans in per_day for start, end in spans)
        ordinals = {holiday.toordinal() for holiday in schedule.holidays}
        self.holidays = frozenset(ordinals)
        self.holiday_list = tuple(sorted(ordinals))
        self._days: dict[int, tuple[int, int, tuple[tuple[int, int], ...], bool]] = {}

    def local_ordinal(self, us: int) -> int:
        return _from_us(us).astimezone(self.zone).toordinal()

    def day(self, ordinal: int) -> tuple[int, int, tuple[tuple[int, int], ...], bool]:
        """``(start, end, open spans, regular)`` of a local date, all UTC µs.

        ``regular`` means no UTC-offset change happens within a day of its midnight, so it is
        exactly 24 h long and its spans are plain shifts of the weekly template.
        """
        cached = self._days.get(ordinal)
        if cached is not None:
            return cached
        wall = (ordinal - _EPOCH_ORDINAL) * _DAY_US
        template = () if ordinal in self.holidays else self.weekly[(ordinal - 1) % 7]
        midnight = dt.datetime.combine(dt.date.fromordinal(ordinal), _MIDNIGHT, tzinfo=self.zone)
        start = wall - midnight.utcoffset() // _ONE_US  # type: ignore[operator]
        # Fast path: with no offset change within a day either side of midnight, the midnight
        # is unique and the whole day is a plain shift of the weekly template.
        regular = _next_transition(self.tz, start - _DAY_US, start + _DAY_US) is None
        if regular:
            end = start + _DAY_US
            spans = tuple((start + low, start + high) for low, high in template)
        else:
            start = _wall_to_utc(self.zone, self.tz, wall)
            end = _wall_to_utc(self.zone, self.tz, wall + _DAY_US)
            merged: list[tuple[int, int]] = []
            for low, high in template:
                opens = _wall_to_utc(self.zone, self.tz, wall + low)
                closes = _wall_to_utc(self.zone, self.tz, wall + high)
                if opens >= closes:
                    continue  # entirely inside a skipped hour
                if merged and opens <= merged[-1][1]:
                    # A gap in wall time that the clocks jumped over leaves touching spans.
                    merged[-1] = (merged[-1][0], closes)
                else:
                    merged.append((opens, closes))
            spans = tuple(merged)
        result = (start, end, spans, regular)
        if len(self._days) >= _DAY_CACHE_SIZE:
            self._days.clear()
        self._days[ordinal] = result
        return result

    def weeks_to_skip(self, ordinal: int, day_start: int, remaining: int | None, stop: int | None) -> int:
        """How many whole weeks from ``ordinal`` (a regular day) can be jumped arithmetically.

        A week can be jumped when its open time is exactly ``week_open_us``: no holiday and no
        offset change inside it. Never jumps onto the point where the budget runs out (the
        result must be located by the day walk) nor past ``stop``.
        """
        weeks: int | None = None
        if remaining is not None:
            if remaining <= self.week_open_us:
                return 0
            weeks = (remaining - 1) // self.week_open_us
        if stop is not None:
            until_stop = (stop - day_start) // _WEEK_US
            weeks = until_stop if weeks is None else min(weeks, until_stop)
        if weeks is None or weeks <= 0:
            return 0
        if self.holiday_list:
            index = bisect.bisect_left(self.holiday_list, ordinal)
            if index < len(self.holiday_list):
                weeks = min(weeks, (self.holiday_list[index] - ordinal) // 7)
                if weeks <= 0:
                    return 0
        change = _next_transition(self.tz, day_start, day_start + weeks * _WEEK_US)
        if change is not None:
            # Every jumped midnight, including the landing one, must precede the change.
            weeks = min(weeks, (change - day_start - 1) // _WEEK_US)
        return max(weeks, 0)


@lru_cache(maxsize=64)
def _plan(schedule: Schedule) -> _Plan:
    if not isinstance(schedule, Schedule):
        raise TypeError(f"expected a Schedule, got {type(schedule).__name__}")
    if not schedule.intervals:
        raise ValueError("schedule has no open hours: it defines no weekly intervals")
    errors = validate_intervals(schedule.intervals)
    if errors:
        raise ValueError("invalid schedule: " + "; ".join(errors))
    return _Plan(schedule, _zone(schedule.tz))


def _no_open_hours(plan: _Plan, since_us: int) -> ValueError:
    return ValueError(
        f"schedule has no open hours in the {HORIZON_DAYS} days after "
        f"{_from_us(since_us).isoformat()} (zone {plan.tz}); check its intervals and holidays"
    )


def _walk(plan: _Plan, start_us: int, budget: int | None, stop: int | None) -> tuple[int, int]:
    """Consume open time from ``start_us`` until ``budget`` µs are used up or ``stop`` is hit.

    Returns ``(position, consumed)``. With a budget, ``position`` is the first instant at which
    the budget is exhausted; with a stop, ``consumed`` is the open time in ``[start, stop)``.
    Exactly one of ``budget`` / ``stop`` may be None; unbounded searches give up after
    ``HORIZON_DAYS`` days without open time.
    """
    cursor = start_us
    consumed = 0
    ordinal = plan.local_ordinal(start_us)
    idle_days = 0
    while True:
        day_start, day_end, spans, regular = plan.day(ordinal)
        if regular and cursor <= day_start:
            remaining = None if budget is None else budget - consumed
            weeks = plan.weeks_to_skip(ordinal, day_start, remaining, stop)
            if weeks:
                ordinal += 7 * weeks
                consumed += weeks * plan.week_open_us
                cursor = day_start + weeks * _WEEK_US
                idle_days = 0
                continue
        for opens, closes in spans:
            if closes <= cursor:
                continue
            if stop is not None and opens >= stop:
                return stop, consumed
            if opens > cursor:
                cursor = opens
            if stop is not None and closes > stop:
                closes = stop
            available = closes - cursor
            if budget is not None and budget - consumed <= available:
                return cursor + (budget - consumed), budget
            consumed += available
            cursor = closes
            idle_days = 0
        if stop is not None:
            if day_end >= stop:
                return stop, consumed
        else:
            idle_days += 1
            if idle_days > HORIZON_DAYS:
                raise _no_open_hours(plan, start_us)
        ordinal += 1


# ---------------------------------------------------------------------------------------------
# Public API


def _as_utc(value: object, name: str) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name} must be timezone-aware, got naive datetime {value.isoformat()}; "
            "attach a tzinfo such as datetime.UTC"
        )
    return value.astimezone(UTC)


def _as_seconds(seconds: object) -> int:
    try:
        count = operator.index(seconds)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"seconds must be a whole number, got {type(seconds).__name__}") from None
    if count < 0:
        raise ValueError(f"seconds must not be negative, got {count}")
    return count


def is_open(schedule: Schedule, instant: dt.datetime) -> bool:
    """Return whether ``schedule`` is open at ``instant`` (opening edge open, closing closed).

    Used to decide whether an SLA clock is currently running.
    """
    plan = _plan(schedule)
    at = _to_us(_as_utc(instant, "instant"))
    _, _, spans, _ = plan.day(plan.local_ordinal(at))
    return any(opens <= at < closes for opens, closes in spans)


def next_open(schedule: Schedule, instant: dt.datetime) -> dt.datetime:
    """Return ``instant`` (in UTC) if the schedule is open then, else the next opening in UTC.

    Used to show when a paused SLA clock will start running again. Raises ``ValueError`` when
    no open time exists within ``HORIZON_DAYS`` days.
    """
    plan = _plan(schedule)
    at = _to_us(_as_utc(instant, "instant"))
    ordinal = plan.local_ordinal(at)
    for _ in range(HORIZON_DAYS + 1):
        _, _, spans, _ = plan.day(ordinal)
        for opens, closes in spans:
            if closes > at:
                return _from_us(max(opens, at))
        ordinal += 1
    raise _no_open_hours(plan, at)


def add_business_seconds(schedule: Schedule, start: dt.datetime, seconds: int) -> dt.datetime:
    """Return the aware UTC instant at which ``seconds`` of open time have elapsed after ``start``.

    This is how SLA due dates are computed. ``seconds == 0`` returns ``start`` unchanged (in
    UTC) even when closed; for ``seconds > 0`` the result lies inside an open span or exactly
    at its closing edge. Negative ``seconds`` raise ``ValueError``; a schedule without open
    time within ``HORIZON_DAYS`` days raises ``ValueError("schedule has no open hours ...")``.
    """
    plan = _plan(schedule)
    origin = _as_utc(start, "start")
    count = _as_seconds(seconds)
    if count == 0:
        return origin
    position, _ = _walk(plan, _to_us(origin), count * _US, None)
    return _from_us(position)


def business_seconds_between(schedule: Schedule, start: dt.datetime, end: dt.datetime) -> int:
    """Return the whole seconds (floored) of open time in ``[start, end)``; 0 if end <= start.

    Measures elapsed SLA time, e.g. time-to-first-response, and is the exact inverse of
    :func:`add_business_seconds`.
    """
    plan = _plan(schedule)
    begin = _to_us(_as_utc(start, "start"))
    finish = _to_us(_as_utc(end, "end"))
    if finish <= begin:
        return 0
    _, consumed = _walk(plan, begin, None, finish)
    return consumed // _US


def add_calendar_seconds(start: dt.datetime, seconds: int) -> dt.datetime:
    """Return ``start + seconds`` in UTC: the "calendar hours" counterpart of business math.

    Same conventions as :func:`add_business_seconds` (aware input, UTC output, no negatives).
    """
    origin = _as_utc(start, "start")
    return origin + dt.timedelta(seconds=_as_seconds(seconds))


def calendar_seconds_between(start: dt.datetime, end: dt.datetime) -> int:
    """Return the whole seconds (floored) from ``start`` to ``end``; 0 if end <= start."""
    begin = _as_utc(start, "start")
    finish = _as_utc(end, "end")
    if finish <= begin:
        return 0
    return (finish - begin) // _ONE_S
