"""Table and property tests for the pure business-time math in tickets.sla (no database)."""

import datetime as dt
import time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickets.sla import (
    ALWAYS_OPEN,
    Schedule,
    WeeklyInterval,
    add_business_seconds,
    add_calendar_seconds,
    business_seconds_between,
    calendar_seconds_between,
    is_open,
    next_open,
    validate_intervals,
)

UTC = dt.UTC
HOUR = 3600
MINUTE = 60
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
LORD_HOWE = "Australia/Lord_Howe"


def local(tz: str, *fields: int, fold: int = 0) -> dt.datetime:
    """An aware datetime with the given wall-clock fields in zone ``tz``."""
    return dt.datetime(*fields, tzinfo=ZoneInfo(tz), fold=fold)  # type: ignore[arg-type, misc]


def utc(*fields: int) -> dt.datetime:
    return dt.datetime(*fields, tzinfo=UTC)  # type: ignore[arg-type, misc]


def weekly(tz: str, days, start: str, end: str, holidays=()) -> Schedule:
    """A schedule open ``start``–``end`` (HH:MM, "24:00" allowed) on each of ``days``."""

    def minutes(hhmm: str) -> int:
        hours, mins = hhmm.split(":")
        return int(hours) * 60 + int(mins)

    intervals = tuple(WeeklyInterval(day, minutes(start), minutes(end)) for day in days)
    return Schedule(tz, intervals, frozenset(holidays))


OFFICE = weekly(BERLIN, range(MON, SAT), "09:00", "17:00")
# Good Friday and Easter Monday 2026.
OFFICE_EASTER = weekly(BERLIN, range(MON, SAT), "09:00", "17:00", {dt.date(2026, 4, 3), dt.date(2026, 4, 6)})


def around_the_clock(tz: str) -> Schedule:
    return weekly(tz, range(7), "00:00", "24:00")


def sunday_night(tz: str) -> Schedule:
    """Open Sunday 00:00–06:00 only: the interval contains the DST switch on switch Sundays."""
    return weekly(tz, [SUN], "00:00", "06:00")


# ---------------------------------------------------------------------------------------------
# Table tests: adding business time


@pytest.mark.parametrize(
    ("schedule", "start", "seconds", "expected"),
    [
        pytest.param(
            OFFICE,
            local(BERLIN, 2026, 3, 2, 10),
            2 * HOUR,
            local(BERLIN, 2026, 3, 2, 12),
            id="same day",
        ),
        pytest.param(
            OFFICE,
            local(BERLIN, 2026, 3, 2, 16),
            2 * HOUR,
            local(BERLIN, 2026, 3, 3, 10),
            id="across a night",
        ),
        pytest.param(
            OFFICE,
            local(BERLIN, 2026, 3, 6, 16),
            2 * HOUR,
            local(BERLIN, 2026, 3, 9, 10),
            id="across a weekend",
        ),
        pytest.param(
            OFFICE_EASTER,
            local(BERLIN, 2026, 4, 2, 16),
            2 * HOUR,
            local(BERLIN, 2026, 4, 7, 10),
            id="across a holiday and the weekend around it",
        ),
        pytest.param(
            OFFICE,
            local(BERLIN, 2026, 3, 3, 6),
            HOUR,
            local(BERLIN, 2026, 3, 3, 10),
            id="start before opening",
        ),
        pytest.param(
            OFFICE,
            local(BERLIN, 2026, 3, 7, 12),
            HOUR,
            local(BERLIN, 2026, 3, 9, 10),
            id="start on a Saturday",
        ),
        pytest.param(
            OFFICE,
            local(BERLIN, 2026, 3, 2, 9),
            8 * HOUR,
            local(BERLIN, 2026, 3, 2, 17),
            id="start at opening, ends at the closing edge",
        ),
        pytest.param(
            OFFICE,
            local(BERLIN, 2026, 3, 2, 17),
            HOUR,
            local(BERLIN, 2026, 3, 3, 10),
            id="start at closing",
        ),
        pytest.param(
            OFFICE,
            local(BERLIN, 2026, 3, 2, 17),
            0,
            local(BERLIN, 2026, 3, 2, 17),
            id="zero seconds at closing",
        ),
        pytest.param(
            OFFICE,
            local(BERLIN, 2026, 3, 2, 10),
            1,
            local(BERLIN, 2026, 3, 2, 10, 0, 1),
            id="one second",
        ),
        pytest.param(
            # Two weeks of the 9-17 schedule, crossing the spring-forward weekend.
            OFFICE,
            local(BERLIN, 2026, 3, 23, 11),
            80 * HOUR,
            local(BERLIN, 2026, 4, 6, 11),
            id="two weeks across the DST switch",
        ),
        pytest.param(
            # 10 weeks of 40 h plus one holiday's worth: the week jumps must stop at holidays.
            weekly(BERLIN, range(MON, SAT), "09:00", "17:00", {dt.date(2026, 2, 11)}),
            local(BERLIN, 2026, 1, 5, 9),
            400 * HOUR,
            local(BERLIN, 2026, 3, 16, 17),
            id="ten weeks with a holiday",
        ),
        pytest.param(
            weekly(
                BERLIN,
                range(MON, SAT),
                "09:00",
                "17:00",
                {dt.date(2026, 4, 3), dt.date(2026, 4, 6), dt.date(2026, 5, 1)},
            ),
            local(BERLIN, 2026, 3, 2, 9),
            400 * HOUR,
            local(BERLIN, 2026, 5, 13, 17),
            id="ten weeks with holidays and a DST switch",
        ),
    ],
)
def test_adding_business_time_lands_on_the_expected_instant(schedule, start, seconds, expected):
    result = add_business_seconds(schedule, start, seconds)
    assert result == expected
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("schedule", "start", "end", "expected"),
    [
        (OFFICE, local(BERLIN, 2026, 3, 2, 9), local(BERLIN, 2026, 3, 2, 17), 8 * HOUR),
        (OFFICE, local(BERLIN, 2026, 3, 2, 8), local(BERLIN, 2026, 3, 2, 18), 8 * HOUR),
        (OFFICE, local(BERLIN, 2026, 3, 6, 16), local(BERLIN, 2026, 3, 9, 10), 2 * HOUR),
        (OFFICE, local(BERLIN, 2026, 3, 2), local(BERLIN, 2026, 3, 9), 40 * HOUR),
        (OFFICE_EASTER, local(BERLIN, 2026, 3, 30), local(BERLIN, 2026, 4, 13), 64 * HOUR),
        (OFFICE, local(BERLIN, 2026, 3, 7, 10), local(BERLIN, 2026, 3, 8, 20), 0),
        (OFFICE, local(BERLIN, 2026, 3, 2, 12), local(BERLIN, 2026, 3, 2, 12), 0),
        (OFFICE, local(BERLIN, 2026, 3, 2, 12), local(BERLIN, 2026, 3, 2, 10), 0),
        (OFFICE, utc(2026, 3, 2, 9, 0, 0), utc(2026, 3, 2, 9, 0, 1, 999_999), 1),
    ],
)
def test_measuring_business_time_gives_the_expected_whole_seconds(schedule, start, end, expected):
    assert business_seconds_between(schedule, start, end) == expected


def test_inputs_in_any_zone_are_accepted_and_results_are_in_utc():
    start = dt.datetime(2026, 3, 2, 4, tzinfo=ZoneInfo(NEW_YORK))  # 10:00 in Berlin
    result = add_business_seconds(OFFICE, start, HOUR)
    assert result == utc(2026, 3, 2, 10)
    assert result.tzinfo is UTC
    assert add_business_seconds(OFFICE, start, 0).tzinfo is UTC
    assert next_open(OFFICE, start).tzinfo is UTC


def test_microseconds_of_the_start_are_carried_through():
    start = utc(2026, 3, 2, 10, 0, 0, 250_000)
    result = add_business_seconds(OFFICE, start, 90)
    assert result == utc(2026, 3, 2, 10, 1, 30, 250_000)
    assert business_seconds_between(OFFICE, start, result) == 90


# ---------------------------------------------------------------------------------------------
# Table tests: is_open / next_open


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (local(BERLIN, 2026, 3, 2, 9), True),
        (local(BERLIN, 2026, 3, 2, 8, 59, 59), False),
        (local(BERLIN, 2026, 3, 2, 16, 59, 59), True),
        (local(BERLIN, 2026, 3, 2, 17), False),
        (local(BERLIN, 2026, 3, 7, 12), False),
        (local(BERLIN, 2026, 4, 3, 12), False),
    ],
)
def test_is_open_treats_opening_as_open_and_closing_as_closed(instant, expected):
    assert is_open(OFFICE_EASTER, instant) is expected


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (local(BERLIN, 2026, 3, 2, 10), local(BERLIN, 2026, 3, 2, 10)),
        (local(BERLIN, 2026, 3, 2, 7), local(BERLIN, 2026, 3, 2, 9)),
        (local(BERLIN, 2026, 3, 2, 17), local(BERLIN, 2026, 3, 3, 9)),
        (local(BERLIN, 2026, 4, 2, 18), local(BERLIN, 2026, 4, 7, 9)),
    ],
)
def test_next_open_is_the_instant_itself_or_the_next_opening(instant, expected):
    assert next_open(OFFICE_EASTER, instant) == expected


def test_touching_intervals_and_midnight_behave_as_one_continuous_span():
    split = Schedule(
        BERLIN,
        (
            WeeklyInterval(MON, 9 * 60, 12 * 60),
            WeeklyInterval(MON, 12 * 60, 24 * 60),
            WeeklyInterval(TUE, 0, 3 * 60),
        ),
    )
    start = local(BERLIN, 2026, 3, 2, 11)
    assert add_business_seconds(split, start, 16 * HOUR) == local(BERLIN, 2026, 3, 3, 3)
    assert is_open(split, local(BERLIN, 2026, 3, 2, 12))
    assert is_open(split, local(BERLIN, 2026, 3, 3, 0))
    assert next_open(split, local(BERLIN, 2026, 3, 3, 0)) == local(BERLIN, 2026, 3, 3, 0)
    assert business_seconds_between(split, start, local(BERLIN, 2026, 3, 3, 5)) == 16 * HOUR


# ---------------------------------------------------------------------------------------------
# Table tests: 24/7 and calendar math


@pytest.mark.parametrize("seconds", [0, 1, 59, HOUR, 86_400, 7 * 86_400 + 5, 40 * 86_400])
def test_the_always_open_schedule_equals_calendar_math(seconds):
    start = utc(2026, 10, 24, 22, 30, 15)
    assert add_business_seconds(ALWAYS_OPEN, start, seconds) == add_calendar_seconds(start, seconds)
    end = add_calendar_seconds(start, seconds)
    assert business_seconds_between(ALWAYS_OPEN, start, end) == seconds
    assert calendar_seconds_between(start, end) == seconds


def test_calendar_math_follows_the_same_conventions():
    start = local(BERLIN, 2026, 3, 28, 12)
    assert add_calendar_seconds(start, 86_400) == utc(2026, 3, 29, 11)
    assert add_calendar_seconds(start, 86_400).tzinfo is UTC
    assert calendar_seconds_between(start, start - dt.timedelta(hours=1)) == 0
    assert calendar_seconds_between(utc(2026, 1, 1), utc(2026, 1, 1, 0, 0, 1, 999_999)) == 1
    with pytest.raises(ValueError, match="negative"):
        add_calendar_seconds(start, -1)
    with pytest.raises(ValueError, match="timezone-aware"):
        add_calendar_seconds(dt.datetime(2026, 1, 1), 1)  # noqa: DTZ001
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar_seconds_between(start, dt.datetime(2026, 1, 1))  # noqa: DTZ001


# ---------------------------------------------------------------------------------------------
# Table tests: DST


@pytest.mark.parametrize(
    ("tz", "day", "hours"),
    [
        (BERLIN, dt.date(2026, 3, 29), 23),
        (BERLIN, dt.date(2026, 10, 25), 25),
        (NEW_YORK, dt.date(2026, 3, 8), 23),
        (NEW_YORK, dt.date(2026, 11, 1), 25),
        (LORD_HOWE, dt.date(2026, 10, 4), 23.5),
        (LORD_HOWE, dt.date(2026, 4, 5), 24.5),
        (BERLIN, dt.date(2026, 3, 30), 24),
    ],
)
def test_a_24_hour_schedule_counts_the_real_length_of_dst_days(tz, day, hours):
    schedule = around_the_clock(tz)
    start = local(tz, day.year, day.month, day.day)
    following = day + dt.timedelta(days=1)
    end = local(tz, following.year, following.month, following.day)
    assert business_seconds_between(schedule, start, end) == int(hours * HOUR)
    assert add_business_seconds(schedule, start, int(hours * HOUR)) == end


@pytest.mark.parametrize(
    ("tz", "start", "expected"),
    [
        # 24 h of open time from Saturday noon ends at 13:00 on spring-forward Sunday...
        (BERLIN, local(BERLIN, 2026, 3, 28, 12), utc(2026, 3, 29, 11)),
        # ...and at 11:00 on fall-back Sunday.
        (BERLIN, local(BERLIN, 2026, 10, 24, 12), utc(2026, 10, 25, 10)),
        (NEW_YORK, local(NEW_YORK, 2026, 3, 7, 12), local(NEW_YORK, 2026, 3, 8, 13)),
        (NEW_YORK, local(NEW_YORK, 2026, 10, 31, 12), local(NEW_YORK, 2026, 11, 1, 11)),
    ],
)
def test_a_24_hour_schedule_adds_elapsed_time_not_wall_time(tz, start, expected):
    assert add_business_seconds(around_the_clock(tz), start, 24 * HOUR) == expected


@pytest.mark.parametrize(
    ("tz", "sunday", "opens", "closes"),
    [
        (BERLIN, dt.date(2026, 3, 29), utc(2026, 3, 28, 23), utc(2026, 3, 29, 4)),
        (BERLIN, dt.date(2026, 10, 25), utc(2026, 10, 24, 22), utc(2026, 10, 25, 5)),
        (NEW_YORK, dt.date(2026, 3, 8), utc(2026, 3, 8, 5), utc(2026, 3, 8, 10)),
        (NEW_YORK, dt.date(2026, 11, 1), utc(2026, 11, 1, 4), utc(2026, 11, 1, 11)),
        (BERLIN, dt.date(2026, 3, 22), utc(2026, 3, 21, 23), utc(2026, 3, 22, 5)),
    ],
)
def test_an_interval_spanning_the_dst_switch_has_its_real_length(tz, sunday, opens, closes):
    schedule = sunday_night(tz)
    week_before = opens - dt.timedelta(days=3)
    assert next_open(schedule, week_before) == opens
    assert business_seconds_between(schedule, week_before, closes + dt.timedelta(days=3)) == (
        closes - opens
    ) // dt.timedelta(seconds=1)
    length = int((closes - opens).total_seconds())
    assert add_business_seconds(schedule, opens, length) == closes
    # One more second runs over into the following Sunday.
    following = local(tz, sunday.year, sunday.month, sunday.day) + dt.timedelta(days=7)
    assert add_business_seconds(schedule, opens, length + 1) == following.astimezone(UTC) + dt.timedelta(seconds=1)


def test_an_opening_time_skipped_by_spring_forward_opens_at_the_jump():
    schedule = weekly(BERLIN, [SUN], "02:30", "05:00")
    saturday = local(BERLIN, 2026, 3, 28, 20)
    jump = utc(2026, 3, 29, 1)  # 02:00 CET becomes 03:00 CEST
    assert next_open(schedule, saturday) == jump
    assert business_seconds_between(schedule, saturday, utc(2026, 3, 30)) == 2 * HOUR
    assert not is_open(schedule, jump - dt.timedelta(seconds=1))
    assert is_open(schedule, jump)


def test_an_interval_entirely_inside_the_skipped_hour_is_closed_that_day():
    schedule = weekly(BERLIN, [SUN], "02:00", "03:00")
    saturday = local(BERLIN, 2026, 3, 28, 20)
    assert business_seconds_between(schedule, saturday, utc(2026, 3, 30)) == 0
    assert next_open(schedule, saturday) == local(BERLIN, 2026, 4, 5, 2)
    assert add_business_seconds(schedule, saturday, 1) == local(BERLIN, 2026, 4, 5, 2, 0, 1)


def test_a_repeated_wall_time_means_its_first_occurrence():
    # 02:00-02:30 on fall-back Sunday is open on the first pass through the hour only.
    short = weekly(BERLIN, [SUN], "02:00", "02:30")
    # Compare in UTC: Python never considers an instant in a repeated hour equal to one in
    # another zone (PEP 495), so the local datetimes are converted first.
    first_pass = local(BERLIN, 2026, 10, 25, 2, 15, fold=0).astimezone(UTC)
    second_pass = local(BERLIN, 2026, 10, 25, 2, 15, fold=1).astimezone(UTC)
    assert first_pass == utc(2026, 10, 25, 0, 15)
    assert second_pass == utc(2026, 10, 25, 1, 15)
    assert is_open(short, first_pass)
    assert not is_open(short, second_pass)
    assert business_seconds_between(short, utc(2026, 10, 24), utc(2026, 10, 26)) == 30 * MINUTE

    # Opening at 02:30 keeps the desk open through the whole second pass.
    late = weekly(BERLIN, [SUN], "02:30", "04:00")
    assert next_open(late, utc(2026, 10, 24)) == utc(2026, 10, 25, 0, 30)
    assert is_open(late, second_pass)
    assert business_seconds_between(late, utc(2026, 10, 24), utc(2026, 10, 26)) == 150 * MINUTE


# ---------------------------------------------------------------------------------------------
# Table tests: validation and rejected input


def test_validate_intervals_accepts_touching_intervals():
    assert (
        validate_intervals(
            [
                WeeklyInterval(MON, 9 * 60, 12 * 60),
                WeeklyInterval(MON, 12 * 60, 17 * 60),
                WeeklyInterval(TUE, 0, 1440),
                WeeklyInterval(WED, 9 * 60, 12 * 60),
            ]
        )
        == []
    )


def test_validate_intervals_reports_an_overlap_on_the_same_weekday():
    errors = validate_intervals([WeeklyInterval(MON, 9 * 60, 12 * 60), WeeklyInterval(MON, 11 * 60, 14 * 60)])
    assert errors == ["Monday 09:00–12:00 overlaps 11:00–14:00"]


def test_validate_intervals_reports_nested_and_duplicate_intervals():
    errors = validate_intervals(
        [
            WeeklyInterval(FRI, 8 * 60, 18 * 60),
            WeeklyInterval(FRI, 10 * 60, 11 * 60),
            WeeklyInterval(FRI, 12 * 60, 13 * 60),
            WeeklyInterval(SAT, 60, 120),
            WeeklyInterval(SAT, 60, 120),
        ]
    )
    assert errors == [
        "Friday 08:00–18:00 overlaps 10:00–11:00",
        "Friday 08:00–18:00 overlaps 12:00–13:00",
        "Saturday 01:00–02:00 overlaps 01:00–02:00",
    ]


def test_validate_intervals_reports_inverted_and_empty_intervals():
    errors = validate_intervals([WeeklyInterval(MON, 17 * 60, 9 * 60), WeeklyInterval(TUE, 9 * 60, 9 * 60)])
    assert errors[0] == "Monday 17:00–09:00 ends before it starts"
    assert errors[1].startswith("Tuesday 09:00–09:00 is empty")
    assert len(errors) == 2


@pytest.mark.parametrize(
    ("interval", "fragment"),
    [
        (WeeklyInterval(7, 0, 60), "weekday 7 is out of range"),
        (WeeklyInterval(-1, 0, 60), "weekday -1 is out of range"),
        (WeeklyInterval(MON, -5, 60), "start minute -5 is out of range"),
        (WeeklyInterval(MON, 1440, 1440), "start minute 1440 is out of range"),
        (WeeklyInterval(MON, 0, 1441), "end minute 1441 is out of range"),
        (WeeklyInterval(MON, 0, 0), "end minute 0 is out of range"),
        (WeeklyInterval(MON, 0, 60.5), "whole numbers"),  # type: ignore[arg-type, misc]
        (WeeklyInterval(True, 0, 60), "whole numbers"),
    ],
)
def test_validate_intervals_reports_out_of_range_values(interval, fragment):
    errors = validate_intervals([interval])
    assert len(errors) == 1
    assert fragment in errors[0]


def test_business_math_refuses_an_invalid_schedule():
    overlapping = Schedule(BERLIN, (WeeklyInterval(MON, 9 * 60, 12 * 60), WeeklyInterval(MON, 11 * 60, 14 * 60)))
    with pytest.raises(ValueError, match="overlaps"):
        add_business_seconds(overlapping, utc(2026, 3, 2), 60)
    with pytest.raises(ValueError, match="unknown time zone"):
        is_open(weekly("Mars/Olympus_Mons", [MON], "09:00", "17:00"), utc(2026, 3, 2))


@pytest.mark.parametrize(
    "call",
    [
        lambda naive: add_business_seconds(OFFICE, naive, 60),
        lambda naive: business_seconds_between(OFFICE, naive, utc(2026, 3, 3)),
        lambda naive: business_seconds_between(OFFICE, utc(2026, 3, 1), naive),
        lambda naive: is_open(OFFICE, naive),
        lambda naive: next_open(OFFICE, naive),
        lambda naive: calendar_seconds_between(naive, utc(2026, 3, 3)),
    ],
)
def test_a_naive_datetime_is_rejected_with_a_clear_message(call):
    with pytest.raises(ValueError, match="must be timezone-aware"):
        call(dt.datetime(2026, 3, 2, 10))  # noqa: DTZ001


@pytest.mark.parametrize(
    "call",
    [
        lambda schedule: add_business_seconds(schedule, utc(2026, 3, 2), 60),
        lambda schedule: add_business_seconds(schedule, utc(2026, 3, 2), 0),
        lambda schedule: business_seconds_between(schedule, utc(2026, 3, 2), utc(2026, 3, 3)),
        lambda schedule: is_open(schedule, utc(2026, 3, 2)),
        lambda schedule: next_open(schedule, utc(2026, 3, 2)),
    ],
)
def test_an_empty_schedule_is_rejected(call):
    with pytest.raises(ValueError, match="schedule has no open hours"):
        call(Schedule(BERLIN, ()))


def test_a_schedule_closed_by_holidays_beyond_the_horizon_is_rejected_instead_of_looping():
    mondays = {dt.date(2026, 3, 2) + dt.timedelta(weeks=week) for week in range(200)}
    schedule = weekly(BERLIN, [MON], "09:00", "17:00", mondays)
    with pytest.raises(ValueError, match="schedule has no open hours"):
        add_business_seconds(schedule, utc(2026, 3, 1), 60)
    with pytest.raises(ValueError, match="schedule has no open hours"):
        next_open(schedule, utc(2026, 3, 1))
    # Holidays that end within the horizon are simply waited out.
    shorter = weekly(BERLIN, [MON], "09:00", "17:00", set(sorted(mondays)[:100]))
    assert next_open(shorter, utc(2026, 3, 1)) == local(BERLIN, 2028, 1, 31, 9)


def test_negative_or_fractional_durations_are_rejected():
    with pytest.raises(ValueError, match="negative"):
        add_business_seconds(OFFICE, utc(2026, 3, 2), -1)
    with pytest.raises(TypeError, match="whole number"):
        add_business_seconds(OFFICE, utc(2026, 3, 2), 1.5)  # type: ignore[arg-type, misc]


def test_schedules_built_from_lists_are_normalised_and_hashable():
    schedule = Schedule(BERLIN, [WeeklyInterval(MON, 0, 60)], {dt.date(2026, 1, 5)})  # type: ignore[arg-type, misc]
    assert schedule.intervals == (WeeklyInterval(MON, 0, 60),)
    assert schedule.holidays == frozenset({dt.date(2026, 1, 5)})
    assert hash(schedule) == hash(Schedule(BERLIN, (WeeklyInterval(MON, 0, 60),), schedule.holidays))


def test_a_two_week_addition_takes_well_under_a_millisecond():
    start = local(BERLIN, 2026, 3, 23, 11)
    add_business_seconds(OFFICE, start, 80 * HOUR)  # warm the per-schedule caches
    calls = 500
    began = time.perf_counter()
    for offset in range(calls):
        add_business_seconds(OFFICE, start + dt.timedelta(seconds=offset), 80 * HOUR)
    per_call = (time.perf_counter() - began) / calls
    assert per_call < 1e-3  # typically ~25 µs; generous bound so slow CI stays green


# ---------------------------------------------------------------------------------------------
# Hypothesis strategies

ZONES = [BERLIN, NEW_YORK, "Asia/Kolkata", LORD_HOWE, "UTC"]
# Boundaries are biased towards the small hours, where DST switches happen: a negative draw
# picks one of these instead of an arbitrary minute.
DST_PRONE_MINUTES = (0, 60, 90, 120, 150, 180, 210, 240, 1440)
boundary_minutes = st.integers(-len(DST_PRONE_MINUTES), 1440).map(lambda m: DST_PRONE_MINUTES[m] if m < 0 else m)
JAN_1_2026 = dt.date(2026, 1, 1)
holiday_sets = st.frozensets(st.integers(0, 729).map(lambda days: JAN_1_2026 + dt.timedelta(days=days)), max_size=8)


def build_schedule(tz: str, pieces: list[tuple[int, int, int]], holidays) -> Schedule:
    """Turn arbitrary (weekday, minute, minute) pieces into a valid schedule: per weekday, the
    union of the pieces is cut at every piece boundary, so neighbouring intervals often touch
    but never overlap."""
    intervals = []
    for weekday in range(7):
        segments = [(min(a, b), max(a, b)) for day, a, b in pieces if day == weekday and a != b]
        cuts = sorted({point for segment in segments for point in segment})
        for low, high in zip(cuts, cuts[1:], strict=False):
            if any(a <= low and high <= b for a, b in segments):
                intervals.append(WeeklyInterval(weekday, low, high))
    if not intervals:
        weekday, minute, _ = pieces[0]
        low = min(minute, 1439)
        intervals.append(WeeklyInterval(weekday, low, low + 1))
    return Schedule(tz, tuple(intervals), holidays)


# Few, flat draws per schedule: Hypothesis generation dominates the run time otherwise.
schedules = st.builds(
    build_schedule,
    st.sampled_from(ZONES),
    st.lists(st.tuples(st.integers(0, 6), boundary_minutes, boundary_minutes), min_size=1, max_size=6),
    holiday_sets,
)
EPOCH_2026 = utc(2026, 1, 1)
instants = st.integers(0, 2 * 365 * 86_400).map(lambda s: EPOCH_2026 + dt.timedelta(seconds=s))
durations = st.integers(0, 30 * 86_400)


def weekly_open_seconds(schedule: Schedule) -> int:
    return sum((i.end_minute - i.start_minute) * 60 for i in schedule.intervals)


def duration_for(schedule: Schedule, seconds: int) -> int:
    """Cap a duration at two years' worth of the schedule's open time, so that sparse schedules
    (one minute a week) do not send a 30-day duration centuries into the future."""
    return min(seconds, 104 * weekly_open_seconds(schedule))


# Generation, not the code under test, dominates run time; too_slow is suppressed so a loaded
# CI machine does not turn slowness into a failure.
fast = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------
# Independent reference, written directly against zoneinfo with the documented DST rules


def reference_instant(zone: ZoneInfo, day: dt.date, minute: int) -> dt.datetime:
    """Wall time ``minute`` after local midnight of ``day``: first occurrence when repeated,
    the moment of the jump when skipped (found by stepping minute by minute)."""
    wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
    instant = wall.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    instant = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    while instant.astimezone(zone).replace(tzinfo=None) < wall:
        instant += dt.timedelta(minutes=1)
    return instant


def reference_spans(schedule: Schedule, first: dt.date, last: dt.date):
    zone = ZoneInfo(schedule.tz)
    day = first
    while day <= last:
        if day not in schedule.holidays:
            for interval in schedule.intervals:
                if interval.weekday == day.weekday():
                    opens = reference_instant(zone, day, interval.start_minute)
                    closes = reference_instant(zone, day, interval.end_minute)
                    if opens < closes:
                        yield opens, closes
        day += dt.timedelta(days=1)


def local_date(schedule: Schedule, instant: dt.datetime) -> dt.date:
    return instant.astimezone(ZoneInfo(schedule.tz)).date()


def reference_between(schedule: Schedule, start: dt.datetime, end: dt.datetime) -> int:
    first = local_date(schedule, start) - dt.timedelta(days=1)
    last = local_date(schedule, end) + dt.timedelta(days=1)
    total = dt.timedelta()
    for opens, closes in reference_spans(schedule, first, last):
        overlap = min(closes, end) - max(opens, start)
        if overlap > dt.timedelta():
            total += overlap
    return total // dt.timedelta(seconds=1)


def reference_is_open(schedule: Schedule, instant: dt.datetime) -> bool:
    day = local_date(schedule, instant)
    spans = reference_spans(schedule, day - dt.timedelta(days=1), day + dt.timedelta(days=1))
    return any(opens <= instant < closes for opens, closes in spans)


# ---------------------------------------------------------------------------------------------
# Properties


@fast
@given(schedules, instants, durations)
def test_adding_then_measuring_gives_back_the_same_duration(schedule, start, seconds):
    seconds = duration_for(schedule, seconds)
    result = add_business_seconds(schedule, start, seconds)
    assert business_seconds_between(schedule, start, result) == seconds


@fast
@given(schedules, instants, durations)
def test_a_positive_addition_ends_inside_an_open_span_or_at_its_closing_edge(schedule, start, seconds):
    seconds = max(1, duration_for(schedule, seconds))
    result = add_business_seconds(schedule, start, seconds)
    assert result > start
    assert is_open(schedule, result - dt.timedelta(seconds=1))


@fast
@given(schedules, instants)
def test_adding_zero_seconds_returns_the_start_unchanged_in_utc(schedule, start):
    result = add_business_seconds(schedule, start.astimezone(ZoneInfo(schedule.tz)), 0)
    assert result == start
    assert result.tzinfo is UTC


@fast
@given(schedules, instants, durations, durations)
def test_adding_more_business_time_never_ends_earlier(schedule, start, first, second):
    shorter, longer = sorted((duration_for(schedule, first), duration_for(schedule, second)))
    assert add_business_seconds(schedule, start, shorter) <= add_business_seconds(schedule, start, longer)


@fast
@given(schedules, instants, durations, durations)
def test_adding_in_two_steps_equals_adding_at_once(schedule, start, first, second):
    first = max(1, duration_for(schedule, first) // 7)
    second = duration_for(schedule, second)
    halfway = add_business_seconds(schedule, start, first)
    assert add_business_seconds(schedule, halfway, second) == add_business_seconds(schedule, start, first + second)


@fast
@given(schedules, st.lists(instants, min_size=3, max_size=3))
def test_measuring_is_additive_over_adjacent_windows(schedule, points):
    a, b, c = sorted(points)
    assert business_seconds_between(schedule, a, b) + business_seconds_between(
        schedule, b, c
    ) == business_seconds_between(schedule, a, c)


@fast
@given(schedules, instants, instants)
def test_business_time_never_exceeds_calendar_time(schedule, start, end):
    business = business_seconds_between(schedule, start, end)
    assert 0 <= business <= calendar_seconds_between(start, end)


@fast
@given(schedules, instants, st.integers(0, 45 * 86_400))
def test_measuring_matches_an_independent_day_by_day_reference(schedule, start, window):
    end = start + dt.timedelta(seconds=window)
    assert business_seconds_between(schedule, start, end) == reference_between(schedule, start, end)


@fast
@given(schedules, instants)
def test_is_open_matches_the_reference_spans(schedule, instant):
    assert is_open(schedule, instant) == reference_is_open(schedule, instant)


@fast
@given(schedules, instants)
def test_next_open_is_the_instant_itself_when_open_and_otherwise_an_opening(schedule, instant):
    opening = next_open(schedule, instant)
    assert opening >= instant
    assert is_open(schedule, opening)
    assert business_seconds_between(schedule, instant, opening) == 0
    assert (opening == instant) == is_open(schedule, instant)
    if opening > instant:
        assert not is_open(schedule, opening - dt.timedelta(seconds=1))


@fast
@given(instants, durations)
def test_the_always_open_schedule_agrees_with_calendar_math_everywhere(start, seconds):
    end = add_business_seconds(ALWAYS_OPEN, start, seconds)
    assert end == add_calendar_seconds(start, seconds)
    assert business_seconds_between(ALWAYS_OPEN, start, end) == calendar_seconds_between(start, end)
