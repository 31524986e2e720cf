"""Team-lead settings pages: business hours and holidays, SLA policies, ticket types.

Each page is reached over HTTP as the standing cast; outcomes are asserted on rows (the
schedule, the targets, the audit log, the re-evaluation job, the open tickets' policy).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, reverse

from helpdesk.models import AuditLog
from helpdesk.services import Actor
from tickets import services_sla, urls_sla
from tickets.models import (
    BackgroundJob,
    BusinessSchedule,
    Holiday,
    SlaPolicy,
    SlaTarget,
    Ticket,
    TicketType,
)
from tickets.services import customer_get_or_create, ticket_create
from tickets.services_sla import TargetSpec, sla_policy_create

pytestmark = [pytest.mark.django_db]

METRICS = ("first_response", "next_response", "resolution")
PRIORITIES = ("low", "normal", "high", "urgent")


# --- Helpers ------------------------------------------------------------------------------


def url(name: str, *args, slug: str = "acme") -> str:
    return reverse(name, args=[slug, *args])


def schedule_data(name: str = "Support hours", tz: str = "Europe/Berlin", **days: str) -> dict:
    """POST data for the schedule form; days are mon..sun keyword arguments."""
    keys = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return {
        "name": name,
        "timezone": tz,
        **{f"day_{n}": days.get(key, "") for n, key in enumerate(keys)},
    }


def policy_data(name: str = "VIP urgent", targets: dict | None = None, **fields) -> dict:
    """POST data for the policy form. `targets` maps "metric/priority" -> duration text,
    or -> (duration, "business"|"calendar", warn)."""
    data: dict = {"name": name, "tags": "", "schedule": ""}
    for metric in METRICS:
        for priority in PRIORITIES:
            data[f"t_{metric}_{priority}_time"] = ""
            data[f"t_{metric}_{priority}_clock"] = "business"
            data[f"t_{metric}_{priority}_warn"] = ""
    for cell, value in (targets or {}).items():
        metric, priority = cell.split("/")
        if isinstance(value, tuple):
            time, clock, warn = value
            data[f"t_{metric}_{priority}_clock"] = clock
            data[f"t_{metric}_{priority}_warn"] = warn
        else:
            time = value
        data[f"t_{metric}_{priority}_time"] = time
    data.update(fields)
    return data


def open_ticket(tenant, priority: str = "normal", email: str = "sam@shopper.test", tags=()) -> Ticket:
    return ticket_create(
        tags=tags,
        tenant=tenant,
        subject="Where is my order?",
        body="It has been a week.",
        customer=customer_get_or_create(tenant=tenant, email=email),
        actor=Actor.system(),
        priority=priority,
    )


def audit_actions(tenant) -> list[str]:
    return list(AuditLog.objects.filter(tenant=tenant).order_by("id").values_list("action", flat=True))


def errors_of(response) -> str:
    """Every form error on the page, as one string (field and non-field errors)."""
    form = response.context["form"]
    parts = [str(e) for errors in form.errors.values() for e in errors]
    holiday_form = response.context.get("holiday_form")
    if holiday_form is not None:
        parts += [str(e) for errors in holiday_form.errors.values() for e in errors]
    return " | ".join(parts)


def fingerprint(tenant) -> dict:
    """Every row these pages can write, so a refused request can be shown to change nothing."""
    return {
        "schedules": sorted(
            BusinessSchedule.objects.filter(tenant=tenant).values_list("pk", "name", "timezone", "is_default")
        ),
        "intervals": sorted(
            (pk, str(intervals))
            for pk, intervals in BusinessSchedule.objects.filter(tenant=tenant).values_list("pk", "intervals")
        ),
        "holidays": sorted(Holiday.objects.filter(tenant=tenant).values_list("pk", "date")),
        "policies": sorted(
            (pk, name, position, active, str(conditions))
            for pk, name, position, active, conditions in SlaPolicy.objects.filter(tenant=tenant).values_list(
                "pk", "name", "position", "is_active", "conditions"
            )
        ),
        "targets": sorted(SlaTarget.objects.filter(tenant=tenant).values_list("pk", "minutes")),
        "types": sorted(TicketType.objects.filter(tenant=tenant).values_list("pk", "slug", "position", "is_active")),
        "audit": AuditLog.objects.filter(tenant=tenant).count(),
        "jobs": BackgroundJob.objects.filter(tenant=tenant).count(),
    }


def make_objects(tenant) -> dict:
    """One object of each kind these pages address, in `tenant`."""
    schedule = BusinessSchedule.objects.create(tenant=tenant, name="Weekend desk", intervals=[[5, 600, 960]])
    holiday = Holiday.objects.create(tenant=tenant, schedule=schedule, date=dt.date(2030, 12, 25), name="Christmas")
    ticket_type = TicketType.objects.create(tenant=tenant, name="Refund", slug="refund", position=10)
    return {
        "schedule": schedule,
        "holiday": holiday,
        "policy": SlaPolicy.objects.get(tenant=tenant, name="Standard"),
        "ticket_type": ticket_type,
    }


def route_urls(objects: dict, slug: str = "acme") -> list[tuple[str, str]]:
    """(name, url) for every route in tickets.urls_sla, filled with `objects`' ids."""
    result = []
    for pattern in urls_sla.urlpatterns:
        assert isinstance(pattern, URLPattern)
        params = list(pattern.pattern.converters)
        name = pattern.name or ""
        args: list[int] = []
        if "pk" in params:
            if name.startswith(("settings_schedule", "settings_holiday")):
                args.append(objects["schedule"].pk)
            elif name.startswith("settings_sla_policy"):
                args.append(objects["policy"].pk)
            else:
                args.append(objects["ticket_type"].pk)
        if "holiday_pk" in params:
            args.append(objects["holiday"].pk)
        result.append((name, url(name, *args, slug=slug)))
    return result


HOSTILE_POST = {
    "name": "Pwned",
    "direction": "up",
    "is_active": "0",
    "date": "2031-01-01",
    "timezone": "UTC",
    "day_0": "00:00-24:00",
    "slug": "pwned",
    "t_first_response_urgent_time": "1m",
    "t_first_response_urgent_clock": "business",
}


@pytest.fixture
def objects_a(cast) -> dict:
    return make_objects(cast.tenant)


@pytest.fixture
def objects_b(cast) -> dict:
    return make_objects(cast.other_tenant)


# --- Access -------------------------------------------------------------------------------


def test_the_route_list_covers_every_page_of_the_module(objects_a):
    names = {name for name, _ in route_urls(objects_a)}
    assert len(names) == len(urls_sla.urlpatterns) == 16
    assert all(name.startswith("settings_") for name in names)


def test_anonymous_visitors_are_sent_to_sign_in(client, objects_a):
    for name, address in route_urls(objects_a):
        response = client.get(address)
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login"))


def test_the_outsider_gets_404_on_every_page_and_post_and_nothing_changes(outsider_client, cast, objects_a):
    before = fingerprint(cast.tenant)
    for name, address in route_urls(objects_a):
        for method in ("get", "post"):
            response = getattr(outsider_client, method)(address, HOSTILE_POST)
            assert response.status_code == 404, f"{method} {name}"
            assert b"Acme" not in response.content
    assert fingerprint(cast.tenant) == before


def test_an_agent_gets_403_and_nothing_changes(agent_client, cast, objects_a):
    before = fingerprint(cast.tenant)
    for name, address in route_urls(objects_a):
        assert agent_client.post(address, HOSTILE_POST).status_code == 403, name
        assert agent_client.get(address).status_code == 403, name
    assert fingerprint(cast.tenant) == before


def test_a_lead_of_tenant_a_gets_404_for_tenant_b_ids_and_nothing_changes(lead_client, cast, objects_a, objects_b):
    before = fingerprint(cast.other_tenant)
    foreign = [(name, address) for name, address in route_urls(objects_b) if any(c.isdigit() for c in address)]
    assert len(foreign) == 9
    post_only = {"settings_schedule_default", "settings_holiday_add", "settings_holiday_delete"} | {
        "settings_sla_policy_move",
        "settings_sla_policy_toggle",
        "settings_ticket_type_move",
    }
    for name, address in foreign:
        assert lead_client.post(address, HOSTILE_POST).status_code == 404, name
        # POST-only actions refuse a GET before any lookup, the same for every id.
        assert lead_client.get(address).status_code == (405 if name in post_only else 404), name
    assert fingerprint(cast.other_tenant) == before


def test_a_holiday_is_only_reached_through_its_own_schedule(lead_client, cast, objects_a):
    default = BusinessSchedule.objects.get(tenant=cast.tenant, is_default=True)
    address = url("settings_holiday_delete", default.pk, objects_a["holiday"].pk)
    assert lead_client.post(address).status_code == 404
    assert Holiday.objects.filter(pk=objects_a["holiday"].pk).exists()


@pytest.mark.parametrize("client_fixture", ["lead_client", "admin_client_a"])
def test_leads_and_admins_can_open_every_page(request, client_fixture, objects_a):
    client = request.getfixturevalue(client_fixture)
    for name, address in route_urls(objects_a):
        response = client.get(address, follow=True)
        assert response.status_code in (200, 405), name
        if response.status_code == 200:
            assert b"Settings" in response.content


# --- Business hours -----------------------------------------------------------------------


def test_the_schedule_list_marks_the_default_and_folds_the_week(lead_client, cast, objects_a):
    response = lead_client.get(url("settings_business_hours"))
    page = response.content.decode()
    assert "Business hours" in page and "Weekend desk" in page
    rows = {row["schedule"].name: row for row in response.context["rows"]}
    assert rows["Business hours"]["schedule"].is_default
    assert rows["Business hours"]["week"] == [("Mon–Fri", "09:00–17:00"), ("Sat–Sun", "")]
    assert rows["Business hours"]["policies"] == ["Standard"]
    assert rows["Weekend desk"]["week"] == [("Mon–Fri", ""), ("Sat", "10:00–16:00"), ("Sun", "")]
    assert page.count(">Default</span>") == 1


def test_a_lead_creates_a_schedule_with_split_days_and_closed_days(lead_client, cast):
    data = schedule_data(
        mon="09:00–12:00, 13:00–17:30",
        tue="9-17",
        wed="08:30 to 24:00",
        thu="Closed",
        sat="10:00-14:00",
    )
    response = lead_client.post(url("settings_schedule_create"), data)
    schedule = BusinessSchedule.objects.get(tenant=cast.tenant, name="Support hours")
    assert response.status_code == 302
    assert response["Location"] == url("settings_schedule_edit", schedule.pk)
    assert schedule.timezone == "Europe/Berlin"
    assert not schedule.is_default
    assert schedule.intervals == [
        [0, 540, 720],
        [0, 780, 1050],
        [1, 540, 1020],
        [2, 510, 1440],
        [5, 600, 840],
    ]
    entry = AuditLog.objects.get(tenant=cast.tenant, action="business_schedule.create")
    assert entry.actor_user == cast.lead and entry.target_id == str(schedule.pk)


def test_the_edit_form_shows_the_saved_hours(lead_client, cast):
    default = BusinessSchedule.objects.get(tenant=cast.tenant, is_default=True)
    response = lead_client.get(url("settings_schedule_edit", default.pk))
    form = response.context["form"]
    assert form["day_0"].value() == "09:00–17:00"
    assert form["day_6"].value() == ""
    assert 'placeholder="Closed"' in response.content.decode()


def test_editing_the_default_schedule_saves_audits_and_re_evaluates_open_tickets(
    lead_client, cast, django_capture_on_commit_callbacks
):
    default = BusinessSchedule.objects.get(tenant=cast.tenant, is_default=True)
    open_ticket(cast.tenant)
    data = schedule_data(name="Business hours", tz="America/New_York", mon="08:00-18:00", tue="08:00-18:00")
    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(url("settings_schedule_edit", default.pk), data)
    assert response.status_code == 302
    default.refresh_from_db()
    assert default.timezone == "America/New_York"
    assert default.intervals == [[0, 480, 1080], [1, 480, 1080]]
    entry = AuditLog.objects.get(tenant=cast.tenant, action="business_schedule.update")
    assert entry.changes["timezone"] == ["Europe/Berlin", "America/New_York"]
    job = BackgroundJob.objects.get(tenant=cast.tenant, kind="sla_reevaluate")
    assert (job.status, job.total, job.done) == ("done", 1, 1)


@pytest.mark.parametrize(
    ("days", "message"),
    [
        ({"tue": "09:00-12:00, 11:00-13:00"}, "Tuesday 09:00–12:00 overlaps 11:00–13:00"),
        ({"wed": "17:00-09:00"}, "Wednesday 17:00–09:00 ends before it starts"),
        ({"thu": "10:00-10:00"}, "Thursday 10:00–10:00 is empty"),
        ({"fri": "9am to 5pm"}, "Friday: “9am to 5pm” is not a time range"),
        ({"mon": "09:00-25:00"}, "Monday: “09:00-25:00” is not a time range"),
        ({"sat": "24:00-24:00"}, "start minute 1440 is out of range"),
        ({}, "Open at least one day"),
    ],
    ids=[
        "overlap",
        "inverted",
        "empty",
        "unreadable",
        "past-midnight",
        "start-at-24",
        "all-closed",
    ],
)
def test_bad_hours_are_a_form_error_naming_the_day_and_nothing_is_saved(lead_client, cast, days, message):
    default = BusinessSchedule.objects.get(tenant=cast.tenant, is_default=True)
    before = fingerprint(cast.tenant)
    for address in (url("settings_schedule_create"), url("settings_schedule_edit", default.pk)):
        response = lead_client.post(
            address, schedule_data(**({"mon": "09:00-17:00"} | days)) if days else schedule_data()
        )
        assert response.status_code == 200
        assert message in errors_of(response)
        assert message.split("“")[0] in response.content.decode()
    assert fingerprint(cast.tenant) == before


def test_an_unknown_time_zone_is_a_form_error_and_nothing_is_saved(lead_client, cast):
    default = BusinessSchedule.objects.get(tenant=cast.tenant, is_default=True)
    before = fingerprint(cast.tenant)
    for address in (url("settings_schedule_create"), url("settings_schedule_edit", default.pk)):
        response = lead_client.post(address, schedule_data(tz="Mars/Olympus_Mons", mon="09:00-17:00"))
        assert response.status_code == 200
        assert "timezone" in response.context["form"].errors
    assert fingerprint(cast.tenant) == before


def test_schedule_names_are_unique_per_workspace(lead_client, cast):
    response = lead_client.post(url("settings_schedule_create"), schedule_data(name="business HOURS", mon="9-17"))
    assert "A schedule named “business HOURS” already exists." in errors_of(response)
    assert BusinessSchedule.objects.filter(tenant=cast.tenant).count() == 1


def test_a_lead_moves_the_default_to_another_schedule(lead_client, cast, objects_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(url("settings_schedule_default", objects_a["schedule"].pk))
    assert response.status_code == 302
    defaults = list(BusinessSchedule.objects.filter(tenant=cast.tenant, is_default=True).values_list("name", flat=True))
    assert defaults == ["Weekend desk"]
    entry = AuditLog.objects.get(tenant=cast.tenant, action="business_schedule.set_default")
    assert entry.changes == {"default": ["Business hours", "Weekend desk"]}
    # Standard has no schedule of its own, so its tickets are re-timed.
    assert BackgroundJob.objects.get(tenant=cast.tenant).status == "done"
    # Making the default the default again changes nothing.
    lead_client.post(url("settings_schedule_default", objects_a["schedule"].pk))
    assert audit_actions(cast.tenant).count("business_schedule.set_default") == 1


def test_a_lead_adds_and_removes_holidays_and_duplicates_are_refused(lead_client, cast):
    default = BusinessSchedule.objects.get(tenant=cast.tenant, is_default=True)
    add = url("settings_holiday_add", default.pk)
    response = lead_client.post(add, {"date": "2030-12-25", "name": "Christmas Day"})
    assert response.status_code == 302
    holiday = Holiday.objects.get(tenant=cast.tenant, schedule=default)
    assert (holiday.date, holiday.name) == (dt.date(2030, 12, 25), "Christmas Day")

    page = lead_client.get(url("settings_schedule_edit", default.pk)).content.decode()
    assert "Wed 25 Dec 2030" in page and "Christmas Day" in page

    before = fingerprint(cast.tenant)
    duplicate = lead_client.post(add, {"date": "2030-12-25", "name": "Xmas"})
    assert duplicate.status_code == 200
    assert "25 December 2030 is already a holiday (Christmas Day)." in errors_of(duplicate)
    bad_date = lead_client.post(add, {"date": "not a date", "name": "Xmas"})
    assert "date" in bad_date.context["holiday_form"].errors
    assert fingerprint(cast.tenant) == before

    response = lead_client.post(url("settings_holiday_delete", default.pk, holiday.pk))
    assert response.status_code == 302
    assert not Holiday.objects.filter(tenant=cast.tenant).exists()
    assert audit_actions(cast.tenant)[-2:] == ["holiday.create", "holiday.delete"]


# --- SLA policies -------------------------------------------------------------------------


def test_the_policy_list_explains_conditions_and_shows_the_target_grid(lead_client, cast):
    vip = sla_policy_create(
        tenant=cast.tenant,
        actor=Actor.system(),
        name="VIP",
        conditions={"tiers": ["vip"], "channels": ["email", "chat"]},
        targets={("first_response", "urgent"): TargetSpec(30, business_hours=False, warn_before_minutes=10)},
    )
    response = lead_client.get(url("settings_sla_policies"))
    page = response.content.decode()
    rows = response.context["policies"]
    assert [row["policy"].name for row in rows] == ["VIP", "Standard"]
    assert rows[0]["explain"] == "Applies when channel is email or chat; customer tier is vip."
    assert rows[1]["explain"] == "Applies to every ticket."
    first_response = rows[0]["grid"][0]
    assert first_response["metric"] == "First response"
    assert [c["text"] for c in first_response["cells"]] == ["30m", "—", "—", "—"]
    assert first_response["cells"][0]["calendar"]
    standard_resolution = rows[1]["grid"][2]
    assert [c["text"] for c in standard_resolution["cells"]] == ["8h", "24h", "40h", "80h"]
    assert "Business hours (default)" in page
    assert vip.pk and "<sup>cal</sup>" in page


def test_the_policy_list_runs_a_fixed_number_of_queries(lead_client, cast):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert lead_client.get(url("settings_sla_policies")).status_code == 200
        return len(queries)

    count()  # warm the per-member access cache, as every later page finds it
    one = count()
    for n in range(4):
        sla_policy_create(
            tenant=cast.tenant,
            actor=Actor.system(),
            name=f"Policy {n}",
            conditions={"priorities": ["urgent"]},
            targets={("resolution", "urgent"): TargetSpec(60, True, 15)},
            schedule=BusinessSchedule.objects.get(tenant=cast.tenant),
        )
    assert count() == one


def test_saving_a_policy_starts_a_job_that_re_matches_open_tickets(
    lead_client, cast, django_capture_on_commit_callbacks
):
    urgent = open_ticket(cast.tenant, priority="urgent", email="u@shopper.test", tags=["vip"])
    untagged = open_ticket(cast.tenant, priority="urgent", email="x@shopper.test")
    normal = open_ticket(cast.tenant, priority="normal", email="n@shopper.test", tags=["vip"])
    standard = SlaPolicy.objects.get(tenant=cast.tenant, name="Standard")
    assert urgent.sla_policy_id == normal.sla_policy_id == standard.pk

    data = policy_data(
        name="Urgent by chat or email",
        targets={"first_response/urgent": "30m", "resolution/urgent": ("1h 30m", "calendar", "20")},
        priorities=["urgent"],
        channels=["email", "chat"],
        tags="Rush, vip",
        pause_on_hold="on",
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(url("settings_sla_policy_create"), data)
    assert response.status_code == 302
    assert response["Location"] == url("settings_sla_policies")

    created = SlaPolicy.objects.get(tenant=cast.tenant, name="Urgent by chat or email")
    assert created.position < standard.position
    assert created.conditions == {
        "priorities": ["urgent"],
        "channels": ["email", "chat"],
        "tags": ["rush", "vip"],
    }
    assert created.pause_on_hold and created.schedule is None
    targets = {
        (t.metric, t.priority): (t.minutes, t.business_hours, t.warn_before_minutes) for t in created.targets.all()
    }
    assert targets == {
        ("first_response", "urgent"): (30, True, 7),
        ("resolution", "urgent"): (90, False, 20),
    }
    assert "sla_policy.create" in audit_actions(cast.tenant)

    job = BackgroundJob.objects.get(tenant=cast.tenant, kind="sla_reevaluate")
    assert (job.status, job.total, job.done, job.percent) == ("done", 3, 3, 100)
    for ticket in (urgent, untagged, normal):
        ticket.refresh_from_db()
    assert urgent.sla_policy_id == created.pk
    assert untagged.sla_policy_id == normal.sla_policy_id == standard.pk

    page = lead_client.get(url("settings_sla_policies")).content.decode()
    assert "Done" in page and "3 open tickets re-evaluated" in page


def test_a_policy_without_targets_is_refused_and_nothing_is_saved(
    lead_client, cast, django_capture_on_commit_callbacks
):
    before = fingerprint(cast.tenant)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = lead_client.post(url("settings_sla_policy_create"), policy_data(priorities=["urgent"]))
    assert response.status_code == 200
    assert "Set at least one target." in errors_of(response)
    assert "Set at least one target." in response.content.decode()
    assert callbacks == []
    assert fingerprint(cast.tenant) == before


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"targets": {"first_response/high": "soon"}}, "“soon” is not a duration"),
        ({"targets": {"first_response/high": "0m"}}, "between 1 minute and 365 days"),
        (
            {"targets": {"first_response/high": ("1h", "business", "60")}},
            "Warn before the target is due",
        ),
        (
            {"targets": {"first_response/high": "1h"}, "ticket_types": ["no-such-type"]},
            "not one of the available choices",
        ),
        ({"targets": {"first_response/high": "1h"}, "tags": "bad tag!"}, "is not a valid tag"),
        ({"targets": {"first_response/high": "1h"}, "name": ""}, "This field is required"),
    ],
    ids=["unreadable", "zero", "warn-too-late", "unknown-type", "bad-tag", "no-name"],
)
def test_bad_policy_input_is_a_form_error_and_nothing_is_saved(lead_client, cast, fields, message):
    standard = SlaPolicy.objects.get(tenant=cast.tenant, name="Standard")
    before = fingerprint(cast.tenant)
    fields = dict(fields)
    targets = fields.pop("targets")
    for address in (
        url("settings_sla_policy_create"),
        url("settings_sla_policy_edit", standard.pk),
    ):
        response = lead_client.post(address, policy_data(targets=targets, **fields))
        assert response.status_code == 200
        assert message in errors_of(response)
    assert fingerprint(cast.tenant) == before


def test_a_policy_cannot_use_another_workspaces_schedule(lead_client, cast):
    foreign = BusinessSchedule.objects.get(tenant=cast.other_tenant, is_default=True)
    before = fingerprint(cast.tenant)
    data = policy_data(targets={"resolution/low": "2d"}, schedule=str(foreign.pk))
    response = lead_client.post(url("settings_sla_policy_create"), data)
    assert "schedule" in response.context["form"].errors
    assert fingerprint(cast.tenant) == before


def test_the_edit_form_is_prefilled_and_saving_replaces_the_targets(
    lead_client, cast, objects_a, django_capture_on_commit_callbacks
):
    standard = SlaPolicy.objects.get(tenant=cast.tenant, name="Standard")
    form = lead_client.get(url("settings_sla_policy_edit", standard.pk)).context["form"]
    assert form["t_first_response_urgent_time"].value() == "1h"
    assert form["t_resolution_normal_time"].value() == "40h"
    assert form["t_resolution_normal_clock"].value() == "business"
    assert form["t_first_response_urgent_warn"].value() == 15

    ticket = open_ticket(cast.tenant)
    data = policy_data(
        name="Standard",
        targets={"first_response/normal": "2h", "resolution/normal": ("3d", "calendar", "")},
        ticket_types=["refund"],
        schedule=str(objects_a["schedule"].pk),
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = lead_client.post(url("settings_sla_policy_edit", standard.pk), data)
    assert response.status_code == 302
    standard.refresh_from_db()
    assert standard.conditions == {"ticket_types": ["refund"]}
    assert standard.schedule == objects_a["schedule"]
    targets = {
        (t.metric, t.priority): (t.minutes, t.business_hours, t.warn_before_minutes) for t in standard.targets.all()
    }
    assert targets == {
        ("first_response", "normal"): (120, True, 30),
        ("resolution", "normal"): (4320, False, 60),
    }
    entry = AuditLog.objects.get(tenant=cast.tenant, action="sla_policy.update")
    assert set(entry.changes) == {"conditions", "schedule", "targets"}
    # The ticket has no type, so the only policy no longer matches it.
    assert BackgroundJob.objects.get(tenant=cast.tenant).status == "done"
    ticket.refresh_from_db()
    assert ticket.sla_policy_id is None


def test_moving_policies_changes_the_order_and_re_evaluates(lead_client, cast, django_capture_on_commit_callbacks):
    standard = SlaPolicy.objects.get(tenant=cast.tenant, name="Standard")
    vip = sla_policy_create(
        tenant=cast.tenant,
        actor=Actor.system(),
        name="Everything fast",
        conditions={},
        targets={("first_response", "normal"): TargetSpec(15, True, 5)},
    )
    ticket = open_ticket(cast.tenant)
    BackgroundJob.objects.all().delete()

    def order() -> list[str]:
        return list(
            SlaPolicy.objects.filter(tenant=cast.tenant).order_by("position", "id").values_list("name", flat=True)
        )

    assert order() == ["Everything fast", "Standard"]
    with django_capture_on_commit_callbacks(execute=True):
        assert lead_client.post(url("settings_sla_policy_move", standard.pk), {"direction": "up"}).status_code == 302
    assert order() == ["Standard", "Everything fast"]
    ticket.refresh_from_db()
    assert ticket.sla_policy_id == standard.pk
    assert BackgroundJob.objects.get(tenant=cast.tenant).status == "done"

    # Already at the top: nothing moves, nothing is audited, no job.
    lead_client.post(url("settings_sla_policy_move", standard.pk), {"direction": "up"})
    lead_client.post(url("settings_sla_policy_move", standard.pk), {"direction": "sideways"})
    assert order() == ["Standard", "Everything fast"]
    assert audit_actions(cast.tenant).count("sla_policy.move") == 1
    assert BackgroundJob.objects.filter(tenant=cast.tenant).count() == 1

    lead_client.post(url("settings_sla_policy_move", standard.pk), {"direction": "down"})
    assert order() == ["Everything fast", "Standard"]
    assert vip.pk


def test_switching_a_policy_off_and_on_re_matches_open_tickets(lead_client, cast, django_capture_on_commit_callbacks):
    standard = SlaPolicy.objects.get(tenant=cast.tenant, name="Standard")
    ticket = open_ticket(cast.tenant)
    toggle = url("settings_sla_policy_toggle", standard.pk)

    with django_capture_on_commit_callbacks(execute=True):
        lead_client.post(toggle, {"is_active": "0"})
    standard.refresh_from_db()
    ticket.refresh_from_db()
    assert not standard.is_active
    assert ticket.sla_policy_id is None
    page = lead_client.get(url("settings_sla_policies")).content.decode()
    assert "No policy is active." in page

    with django_capture_on_commit_callbacks(execute=True):
        lead_client.post(toggle, {"is_active": "1"})
    ticket.refresh_from_db()
    assert ticket.sla_policy_id == standard.pk
    assert audit_actions(cast.tenant)[-2:] == ["sla_policy.deactivate", "sla_policy.activate"]
    assert list(BackgroundJob.objects.filter(tenant=cast.tenant).values_list("status", flat=True)) == ["done", "done"]

    # Switching on what is on is a no-op.
    lead_client.post(toggle, {"is_active": "1"})
    assert BackgroundJob.objects.filter(tenant=cast.tenant).count() == 2


def test_the_progress_partial_polls_while_running_and_stops_when_done(lead_client, cast):
    job = BackgroundJob.objects.create(
        tenant=cast.tenant, kind="sla_reevaluate", status="running", total=1240, done=434
    )
    progress = url("settings_sla_job")
    response = lead_client.get(progress, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert "Re-evaluating 1,240 open tickets… <strong>35%</strong>" in html
    assert 'hx-trigger="every 1s"' in html and f'hx-get="{progress}"' in html
    assert "<html" not in html

    # The full page carries the same polling region.
    assert 'hx-trigger="every 1s"' in lead_client.get(url("settings_sla_policies")).content.decode()

    BackgroundJob.objects.filter(pk=job.pk).update(status="done", done=1240, finished_at=job.created_at)
    html = lead_client.get(progress, headers={"HX-Request": "true"}).content.decode()
    assert "Done" in html and "1,240 open tickets re-evaluated" in html
    assert "hx-trigger" not in html

    # Without htmx the address leads back to the page.
    assert lead_client.get(progress)["Location"] == url("settings_sla_policies")


def test_the_progress_partial_of_another_workspace_is_never_shown(lead_client, cast):
    BackgroundJob.objects.create(tenant=cast.other_tenant, kind="sla_reevaluate", status="running", total=99)
    html = lead_client.get(url("settings_sla_job"), headers={"HX-Request": "true"}).content.decode()
    assert html.strip() == ""


# --- Ticket types -------------------------------------------------------------------------


def test_a_lead_creates_types_with_slugs_made_from_the_name(lead_client, cast):
    create = url("settings_ticket_type_create")
    response = lead_client.post(
        create,
        {"name": "Where is my order?", "slug": "", "description": "WISMO", "is_active": "on"},
    )
    assert response.status_code == 302
    lead_client.post(create, {"name": "Returns", "slug": "return", "is_active": "on"})
    types = list(TicketType.objects.filter(tenant=cast.tenant).order_by("position"))
    assert [(t.name, t.slug, t.description, t.is_active) for t in types] == [
        ("Where is my order?", "where-is-my-order", "WISMO", True),
        ("Returns", "return", "", True),
    ]
    assert types[0].position < types[1].position
    assert audit_actions(cast.tenant).count("ticket_type.create") == 2
    page = lead_client.get(url("settings_ticket_types")).content.decode()
    assert "where-is-my-order" in page


def test_a_duplicate_type_slug_is_a_form_error_and_nothing_is_saved(lead_client, cast, objects_a):
    before = fingerprint(cast.tenant)
    response = lead_client.post(url("settings_ticket_type_create"), {"name": "Refund", "slug": "", "is_active": "on"})
    assert response.status_code == 200
    assert "The slug “refund” is already used by “Refund”." in errors_of(response)
    other = TicketType.objects.create(tenant=cast.tenant, name="Exchange", slug="exchange", position=20)
    before = fingerprint(cast.tenant)
    response = lead_client.post(url("settings_ticket_type_edit", other.pk), {"name": "Exchange", "slug": "refund"})
    assert "slug" in response.context["form"].errors
    bad = lead_client.post(url("settings_ticket_type_create"), {"name": "X", "slug": "not a slug!"})
    assert "slug" in bad.context["form"].errors
    assert fingerprint(cast.tenant) == before


def test_renaming_a_type_slug_carries_it_into_policy_conditions(lead_client, cast, objects_a):
    refund = objects_a["ticket_type"]
    sla_policy_create(
        tenant=cast.tenant,
        actor=Actor.system(),
        name="Refunds",
        conditions={"ticket_types": ["refund"], "priorities": ["high"]},
        targets={("resolution", "high"): TargetSpec(240, True, 30)},
    )
    response = lead_client.post(
        url("settings_ticket_type_edit", refund.pk),
        {
            "name": "Refund request",
            "slug": "refund-request",
            "description": "Money back",
            "is_active": "",
        },
    )
    assert response.status_code == 302
    refund.refresh_from_db()
    assert (refund.name, refund.slug, refund.is_active) == (
        "Refund request",
        "refund-request",
        False,
    )
    policy = SlaPolicy.objects.get(tenant=cast.tenant, name="Refunds")
    assert policy.conditions == {"ticket_types": ["refund-request"], "priorities": ["high"]}
    entry = AuditLog.objects.get(tenant=cast.tenant, action="ticket_type.update")
    assert entry.changes["slug"] == ["refund", "refund-request"]
    assert entry.changes["sla_policies"] == ["Refunds"]


def test_a_lead_reorders_ticket_types(lead_client, cast):
    for n, name in enumerate(["Order status", "Refund", "Exchange"]):
        TicketType.objects.create(tenant=cast.tenant, name=name, slug=name.lower().replace(" ", "-"), position=n)
    exchange = TicketType.objects.get(tenant=cast.tenant, slug="exchange")

    def order() -> list[str]:
        return list(
            TicketType.objects.filter(tenant=cast.tenant).order_by("position", "name").values_list("slug", flat=True)
        )

    assert lead_client.post(url("settings_ticket_type_move", exchange.pk), {"direction": "up"}).status_code == 302
    assert order() == ["order-status", "exchange", "refund"]
    lead_client.post(url("settings_ticket_type_move", exchange.pk), {"direction": "up"})
    lead_client.post(url("settings_ticket_type_move", exchange.pk), {"direction": "up"})
    assert order() == ["exchange", "order-status", "refund"]
    assert audit_actions(cast.tenant).count("ticket_type.move") == 2


# --- Services refuse what the forms would -------------------------------------------------


def test_the_services_refuse_bad_values_even_without_a_form(cast):
    actor = Actor.for_user(cast.lead)
    foreign_schedule = BusinessSchedule.objects.get(tenant=cast.other_tenant)
    target = {("resolution", "low"): TargetSpec(60, True, 15)}
    before = fingerprint(cast.tenant)
    attempts = [
        (
            lambda: services_sla.business_schedule_create(
                tenant=cast.tenant,
                actor=actor,
                name="X",
                timezone="UTC",
                intervals=[[0, 540, 720], [0, 600, 700]],
            ),
            "intervals",
        ),
        (
            lambda: services_sla.business_schedule_create(
                tenant=cast.tenant,
                actor=actor,
                name="X",
                timezone="Nowhere/Land",
                intervals=[[0, 1, 2]],
            ),
            "timezone",
        ),
        (
            lambda: services_sla.sla_policy_create(
                tenant=cast.tenant, actor=actor, name="X", conditions={}, targets={}
            ),
            "targets",
        ),
        (
            lambda: services_sla.sla_policy_create(
                tenant=cast.tenant,
                actor=actor,
                name="X",
                conditions={"channels": ["fax"]},
                targets=target,
            ),
            "channels",
        ),
        (
            lambda: services_sla.sla_policy_create(
                tenant=cast.tenant,
                actor=actor,
                name="X",
                conditions={"tags": ["no spaces!"]},
                targets=target,
            ),
            "tags",
        ),
        (
            lambda: services_sla.sla_policy_create(
                tenant=cast.tenant,
                actor=actor,
                name="X",
                conditions={},
                targets={("resolution", "low"): TargetSpec(60, True, 60)},
            ),
            "targets",
        ),
        (
            lambda: services_sla.sla_policy_create(
                tenant=cast.tenant,
                actor=actor,
                name="X",
                conditions={},
                targets=target,
                schedule=foreign_schedule,
            ),
            "schedule",
        ),
        (
            lambda: services_sla.ticket_type_create(tenant=cast.tenant, actor=actor, name="¿?"),
            "slug",
        ),
    ]
    for attempt, field in attempts:
        with pytest.raises(ValidationError) as caught:
            attempt()
        assert field in caught.value.message_dict
    assert fingerprint(cast.tenant) == before
