"""Customer notices: enqueue (dedupe, held, suppressed, quiet hours), sending to a real local
SMTP server, retries and bounces, the sweep, delay detection, CSAT, pages and tenancy."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from helpdesk.services import Actor
from integrations import notices, notices_events
from integrations.models import Fulfillment, Refund
from integrations.normalized import NFulfillment
from integrations.notices_demo import seed_notices
from integrations.notices_models import FulfillmentDelay, Notice, NoticeEvent, NoticeRule, Suppression
from integrations.notices_tasks import send_notices, sweep_notices
from integrations.upsert import apply
from playbooks.models import ReplyTemplate
from playbooks.services import template_save
from tests.orders_fixtures import make_connection, make_order
from tickets import services as ticket_services
from tickets.models import Status, TicketEvent, TicketTag, TicketType

pytest_plugins = ["tests.smtp_sink"]

State = Notice.State
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
QUIET = (time(21, 0), time(8, 0))


# --- Pure: quiet hours ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "window", "ends"),
    [
        ((2026, 1, 10, 22, 0), QUIET, (2026, 1, 11, 8, 0)),  # evening → next morning
        ((2026, 1, 10, 7, 59), QUIET, (2026, 1, 10, 8, 0)),  # early morning → same day
        ((2026, 1, 10, 8, 0), QUIET, None),  # the end itself is not quiet
        ((2026, 1, 10, 12, 0), QUIET, None),
        ((2026, 1, 10, 21, 0), QUIET, (2026, 1, 11, 8, 0)),
        ((2026, 1, 10, 13, 0), (time(12, 0), time(14, 0)), (2026, 1, 10, 14, 0)),
        ((2026, 1, 10, 15, 0), (time(12, 0), time(14, 0)), None),
        ((2026, 3, 28, 23, 30), QUIET, (2026, 3, 29, 8, 0)),  # across spring-forward
        ((2026, 10, 24, 23, 30), QUIET, (2026, 10, 25, 8, 0)),  # across fall-back
        ((2026, 1, 10, 23, 0), None, None),
    ],
)
def test_quiet_hours_end_at_the_local_wall_clock_time_across_midnight_and_dst(local, window, ends):
    at = datetime(*local, tzinfo=BERLIN)
    got = notices.quiet_until(at, BERLIN, window)
    if ends is None:
        assert got is None
    else:
        assert got == datetime(*ends, tzinfo=BERLIN)
        assert got.astimezone(BERLIN).time() == window[1]


def test_spring_forward_night_is_eight_hours_of_utc_not_nine():
    at = datetime(2026, 3, 28, 22, 0, tzinfo=BERLIN)  # 21:00 UTC
    assert notices.quiet_until(at, BERLIN, QUIET) == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)


def test_backoff_doubles_and_is_capped():
    assert [notices.retry_delay(n).total_seconds() for n in (1, 2, 3)] == [10, 20, 40]
    assert notices.retry_delay(30) == timedelta(hours=1)


# --- Set-up -------------------------------------------------------------------------------


@pytest.fixture
def store(cast):
    """Tenant A with the starter notices on, a generic store, a customer and an order."""
    seed_notices(cast.tenant)
    # No quiet hours unless a test sets them.
    notices.notice_settings_update(
        tenant=cast.tenant, actor=Actor.system(), quiet_start=None, quiet_end=None, delay_hours=48
    )
    connection = make_connection(cast.tenant, None, "generic")
    customer = ticket_services.customer_get_or_create(tenant=cast.tenant, email="carla@example.org", name="Carla Ruiz")
    order = make_order(connection, external_id="5001", number="1042", customer=customer, placed_at=timezone.now())
    return cast, connection, customer, order


def _ship(connection, order, *, status="in_transit", tracking="1Z999", at=None, ext="f1", eta=None):
    at = at or timezone.now()
    return apply(
        connection=connection,
        records=[
            NFulfillment(
                external_id=ext,
                order_external_id=order.external_id,
                status=status,
                carrier="DHL",
                tracking_number=tracking,
                tracking_url=f"https://track.example/{tracking}" if tracking else "",
                updated_at=at,
                estimated_delivery_at=eta,
            )
        ],
        received_at=at,
    )


def _notices(tenant, **filters):
    return list(Notice.objects.filter(tenant=tenant, **filters).order_by("pk"))


# --- Enqueue ------------------------------------------------------------------------------


def test_a_shipment_from_the_upsert_writes_one_queued_notice_rendered_for_the_customer(store):
    cast, connection, customer, order = store
    _ship(connection, order)
    [notice] = _notices(cast.tenant, event=NoticeEvent.SHIPPED)
    f = Fulfillment.objects.get(order=order)
    assert notice.status == State.QUEUED
    assert notice.subject_key == f"fulfillment:{f.pk}"
    assert notice.recipient == "carla@example.org"
    assert notice.subject == "Your order #1042 is on its way"
    assert "Hi Carla" in notice.body and "https://track.example/1Z999" in notice.body
    assert (notice.customer_id, notice.order_id) == (customer.pk, order.pk)


def test_the_same_event_three_times_writes_one_row(store):
    cast, connection, _customer, order = store
    at = timezone.now()
    for _ in range(3):
        _ship(connection, order, at=at)
    f = Fulfillment.objects.get(order=order)
    for _ in range(3):
        notices.notice_enqueue(
            tenant=cast.tenant, event=NoticeEvent.SHIPPED, subject=f"fulfillment:{f.pk}", order=order, fulfillment=f
        )
    assert len(_notices(cast.tenant, event=NoticeEvent.SHIPPED)) == 1


def test_each_status_step_gets_its_own_notice_once(store):
    cast, connection, _customer, order = store
    now = timezone.now()
    _ship(connection, order, status="in_transit", at=now - timedelta(hours=3))
    _ship(connection, order, status="out_for_delivery", at=now - timedelta(hours=2))
    _ship(connection, order, status="delivered", at=now - timedelta(hours=1))
    _ship(connection, order, status="delivered", at=now)  # a repeat scan
    events = [n.event for n in _notices(cast.tenant)]
    assert events.count(NoticeEvent.SHIPPED) == 1
    assert events.count(NoticeEvent.OUT_FOR_DELIVERY) == 1
    assert events.count(NoticeEvent.DELIVERED) == 1
    [feedback] = _notices(cast.tenant, event=NoticeEvent.DELIVERY_FEEDBACK)
    assert feedback.status == State.SCHEDULED  # the starter rule waits three days
    assert feedback.next_attempt_at > now + timedelta(days=2, hours=23)


def test_old_events_from_a_first_reconcile_are_not_announced(store):
    cast, connection, _customer, order = store
    _ship(connection, order, at=timezone.now() - timedelta(days=10))
    assert _notices(cast.tenant) == []


def test_a_missing_value_holds_the_notice_with_a_reason_naming_it(store):
    cast, connection, _customer, order = store
    rule = NoticeRule.objects.get(tenant=cast.tenant, event=NoticeEvent.OUT_FOR_DELIVERY)
    template_save(
        tenant=cast.tenant,
        actor=Actor.system(),
        name=rule.template.name,
        kind=ReplyTemplate.Kind.NOTICE,
        template=rule.template,
        variants={"en": {"subject": "Today: {{ order.name }}", "body": "ETA {{ fulfillment.expected_delivery }}"}},
    )
    _ship(connection, order, status="out_for_delivery")
    [notice] = _notices(cast.tenant, event=NoticeEvent.OUT_FOR_DELIVERY)
    assert notice.status == State.HELD
    assert "fulfillment.expected_delivery" in notice.hold_reason


def test_a_suppressed_address_gets_a_suppressed_row_and_no_send(store):
    cast, connection, _customer, order = store
    notices.suppression_add(tenant_id=cast.tenant.pk, email="Carla@Example.org", reason="opt_out")
    _ship(connection, order)
    [notice] = _notices(cast.tenant, event=NoticeEvent.SHIPPED)
    assert notice.status == State.SUPPRESSED


def test_the_customers_language_is_used_with_the_store_default_as_fallback(store):
    cast, connection, customer, order = store
    customer.language = "de"
    customer.save()
    _ship(connection, order)
    [notice] = _notices(cast.tenant, event=NoticeEvent.SHIPPED)
    assert notice.language == "de" and notice.subject.startswith("Deine Bestellung")
    customer.language = "fr"  # no French variant: English, the store's default
    customer.save()
    _ship(connection, order, ext="f2", tracking="1Z2")
    second = _notices(cast.tenant, event=NoticeEvent.SHIPPED)[1]
    assert second.language == "en"


def test_inside_quiet_hours_a_notice_is_scheduled_for_their_end_in_store_time(store):
    cast, connection, _customer, order = store
    notices.notice_settings_update(
        tenant=cast.tenant, actor=Actor.system(), quiet_start=time(21), quiet_end=time(8), delay_hours=48
    )
    night = datetime(2026, 1, 10, 22, 30, tzinfo=BERLIN)
    with time_machine.travel(night, tick=False):
        order.placed_at = timezone.now()
        order.save()
        _ship(connection, order)
    [notice] = _notices(cast.tenant, event=NoticeEvent.SHIPPED)
    assert notice.status == State.SCHEDULED
    assert notice.next_attempt_at == datetime(2026, 1, 11, 8, 0, tzinfo=BERLIN)


def test_a_disabled_rule_writes_nothing(store):
    cast, connection, _customer, order = store
    NoticeRule.objects.filter(tenant=cast.tenant).update(enabled=False)
    _ship(connection, order)
    assert _notices(cast.tenant) == []


def test_a_refund_and_a_received_return_each_get_a_notice(store):
    cast, _connection, _customer, order = store
    refund = Refund.objects.create(
        tenant=cast.tenant, order=order, external_id="r1", amount=Decimal("12.50"), currency="EUR"
    )
    notices_events.emit_after_upsert(tenant=cast.tenant, touched=notices_events.Touched(refunds={refund.pk}))
    [notice] = _notices(cast.tenant, event=NoticeEvent.REFUND_ISSUED)
    assert "12.50 EUR" in notice.body


def test_solving_a_ticket_sends_the_csat_survey_with_its_signed_link(store, django_capture_on_commit_callbacks):
    cast, _connection, customer, _order = store
    ticket = ticket_services.ticket_create(
        tenant=cast.tenant, subject="Sizing", body="Does it run small?", customer=customer, actor=Actor.system()
    )
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.ticket_set_status(ticket=ticket, status=Status.SOLVED, actor=Actor.for_user(cast.agent))
    [notice] = _notices(cast.tenant, event=NoticeEvent.CSAT_SURVEY)
    assert notice.ticket_id == ticket.pk and notice.subject_key == f"ticket:{ticket.pk}"
    assert "/csat/" in notice.body


# --- Sending to a real SMTP server ------------------------------------------------------------


def _queued(cast, connection, order, **kw) -> Notice:
    _ship(connection, order, **kw)
    return _notices(cast.tenant, event=NoticeEvent.SHIPPED)[-1]


def test_a_queued_notice_is_sent_once_with_an_unsubscribe_header_and_link(store, smtp):
    cast, connection, _customer, order = store
    notice = _queued(cast, connection, order)
    counts = notices.notices_send(tenant=cast.tenant, notice_ids=[notice.pk])
    again = notices.notices_send(tenant=cast.tenant, notice_ids=[notice.pk])  # a duplicate message
    assert counts["sent"] == 1 and again["sent"] == 0
    [message] = smtp.to("carla@example.org")
    assert message["Subject"] == "Your order #1042 is on its way"
    assert message["List-Unsubscribe"].startswith("<http") and "/notices/unsubscribe/" in message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/notices/unsubscribe/" in message.get_payload(decode=True).decode()
    notice.refresh_from_db()
    assert notice.status == State.SENT and notice.attempts == 1
    assert notice.message_id == message["Message-ID"]


def test_a_550_refusal_suppresses_the_address_and_later_notices_to_it(store, smtp):
    cast, connection, _customer, order = store
    smtp.refuse("carla@example.org")
    notice = _queued(cast, connection, order)
    counts = notices.notices_send(tenant=cast.tenant, notice_ids=[notice.pk])
    assert counts["suppressed"] == 1
    notice.refresh_from_db()
    assert notice.status == State.SUPPRESSED and notice.last_error.startswith("550")
    assert Suppression.objects.get(tenant=cast.tenant, email="carla@example.org").reason == "hard_bounce"
    _ship(connection, order, status="out_for_delivery")
    assert _notices(cast.tenant, event=NoticeEvent.OUT_FOR_DELIVERY)[0].status == State.SUPPRESSED
    assert smtp.messages == []


def test_smtp_down_is_retried_with_backoff_and_sent_once_it_is_back(store, smtp, django_capture_on_commit_callbacks):
    cast, connection, _customer, order = store
    notice = _queued(cast, connection, order)
    smtp.stop()
    counts = notices.notices_send(tenant=cast.tenant, notice_ids=[notice.pk])
    assert counts["retrying"] == 1
    notice.refresh_from_db()
    assert notice.status == State.QUEUED and notice.attempts == 1 and notice.last_error
    assert notice.next_attempt_at > timezone.now() + timedelta(seconds=5)
    smtp.start()
    assert notices.notices_sweep(tenant=cast.tenant) == []  # not due yet
    later = timezone.now() + timedelta(seconds=15)
    with time_machine.travel(later), django_capture_on_commit_callbacks(execute=True):
        swept = notices.notices_sweep(tenant=cast.tenant)
    assert swept == [notice.pk]
    notice.refresh_from_db()
    assert notice.status == State.SENT and notice.attempts == 2
    assert len(smtp.to("carla@example.org")) == 1


def test_a_451_answer_is_transient_and_gives_up_after_max_attempts(store, smtp):
    cast, connection, _customer, order = store
    smtp.try_later = True
    notice = _queued(cast, connection, order)
    Notice.objects.filter(pk=notice.pk).update(attempts=notices.MAX_ATTEMPTS - 1)
    counts = notices.notices_send(tenant=cast.tenant, notice_ids=[notice.pk])
    notice.refresh_from_db()
    assert counts["failed"] == 1 and notice.status == State.FAILED
    assert "451" in notice.last_error and "Gave up" in notice.last_error
    assert not Suppression.objects.filter(tenant=cast.tenant).exists()


def test_a_notice_due_in_quiet_hours_waits_without_using_an_attempt(store, smtp):
    cast, connection, _customer, order = store
    notice = _queued(cast, connection, order)
    notices.notice_settings_update(
        tenant=cast.tenant, actor=Actor.system(), quiet_start=time(21), quiet_end=time(8), delay_hours=48
    )
    with time_machine.travel(datetime(2026, 1, 10, 23, 0, tzinfo=BERLIN), tick=False):
        counts = notices.notices_send(tenant=cast.tenant, notice_ids=[notice.pk])
    notice.refresh_from_db()
    assert counts["scheduled"] == 1 and notice.status == State.SCHEDULED and notice.attempts == 0
    assert smtp.messages == []


def test_the_sweep_sends_a_notice_whose_message_was_lost(store, smtp, django_capture_on_commit_callbacks):
    cast, connection, _customer, order = store
    notice = _queued(cast, connection, order)  # its on-commit send never ran: the message is "lost"
    later = timezone.now() + notices.QUEUED_GRACE + timedelta(seconds=1)
    with time_machine.travel(later), django_capture_on_commit_callbacks(execute=True):
        sweep_notices.run()
    notice.refresh_from_db()
    assert notice.status == State.SENT
    assert len(smtp.messages) == 1


def test_a_row_left_sending_by_a_crashed_worker_is_failed_never_resent(store, smtp):
    cast, connection, _customer, order = store
    notice = _queued(cast, connection, order)
    Notice.objects.filter(pk=notice.pk).update(status=State.SENDING, next_attempt_at=timezone.now())
    notices.notices_sweep(tenant=cast.tenant, now=timezone.now() + timedelta(seconds=1))
    notice.refresh_from_db()
    assert notice.status == State.FAILED and "Interrupted" in notice.last_error
    assert smtp.messages == []


def test_a_send_task_for_another_tenant_sends_nothing(store, smtp):
    cast, connection, _customer, order = store
    notice = _queued(cast, connection, order)
    assert send_notices.run(cast.other_tenant.pk, [notice.pk])["sent"] == 0
    notice.refresh_from_db()
    assert notice.status == State.QUEUED and smtp.messages == []


# --- Opt-out page -------------------------------------------------------------------------


def test_the_unsubscribe_link_asks_then_records_an_opt_out(client, store):
    cast, *_ = store
    url = reverse("notice_unsubscribe", args=[notices.unsubscribe_token(cast.tenant.pk, "carla@example.org")])
    page = client.get(url)
    assert page.status_code == 200 and b"carla@example.org" in page.content
    assert not Suppression.objects.exists()  # a link scanner's GET changes nothing
    assert client.post(url, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert Suppression.objects.get(tenant=cast.tenant, email="carla@example.org").reason == "opt_out"


def test_a_forged_unsubscribe_token_is_404_and_records_nothing(client, store):
    url = reverse("notice_unsubscribe", args=["not-a-token"])
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert not Suppression.objects.exists()


# --- Delay detection ----------------------------------------------------------------------


def _wismo_ticket(cast, customer):
    wismo, _ = TicketType.objects.get_or_create(
        tenant=cast.tenant, slug="wismo", defaults={"name": "Where is my order"}
    )
    return ticket_services.ticket_create(
        tenant=cast.tenant,
        subject="Where is my parcel?",
        body="Nothing yet",
        customer=customer,
        actor=Actor.system(),
        ticket_type=wismo,
    )


@pytest.mark.parametrize(
    ("status", "quiet_for", "eta", "reason"),
    [
        ("in_transit", timedelta(hours=60), None, "no_scan"),
        ("exception", timedelta(hours=1), None, "exception"),
        ("in_transit", timedelta(hours=2), timedelta(hours=-1), "overdue"),
    ],
)
def test_a_late_shipment_raises_one_delay_event(store, status, quiet_for, eta, reason):
    cast, connection, customer, order = store
    now = timezone.now()
    _ship(connection, order, status=status, at=now - quiet_for, eta=(now + eta) if eta else None)
    ticket = _wismo_ticket(cast, customer)
    report = notices_events.delay_scan(tenant=cast.tenant, now=now)
    again = notices_events.delay_scan(tenant=cast.tenant, now=now + timedelta(hours=1))
    assert (report.flagged, again.flagged) == (1, 0)
    assert FulfillmentDelay.objects.get(tenant=cast.tenant).reason == reason
    [delay] = _notices(cast.tenant, event=NoticeEvent.DELAY)
    assert delay.status == State.QUEUED and "#1042" in delay.subject
    assert TicketEvent.objects.filter(ticket=ticket, kind="shipment_delayed").count() == 1
    assert TicketTag.objects.filter(ticket=ticket, tag__name="delayed").count() == 1


def test_a_moving_or_delivered_shipment_is_not_late(store):
    cast, connection, _customer, order = store
    now = timezone.now()
    _ship(connection, order, status="in_transit", at=now - timedelta(hours=5))
    _ship(connection, order, status="delivered", at=now - timedelta(hours=100), ext="f2", tracking="1Z2")
    assert notices_events.delay_scan(tenant=cast.tenant, now=now).flagged == 0


# --- Pages --------------------------------------------------------------------------------


def test_a_lead_sets_rules_quiet_hours_and_sender(lead_client, store):
    cast, *_ = store
    url = reverse("settings_notices", args=[cast.tenant.slug])
    page = lead_client.get(url)
    assert page.status_code == 200 and b"Customer notices" in page.content
    template = ReplyTemplate.objects.get(tenant=cast.tenant, name="Delivery delay")
    data = {"form": "rules"}
    for event in NoticeEvent.values:
        data[f"{event}-template"] = str(template.pk) if event == "delay" else ""
        data[f"{event}-delay_minutes"] = "0"
    data["delay-enabled"] = "on"
    assert lead_client.post(url, data).status_code == 302
    rules = {r.event: r for r in NoticeRule.objects.filter(tenant=cast.tenant)}
    assert rules["delay"].enabled and not rules["shipped"].enabled
    response = lead_client.post(
        url,
        {
            "form": "settings",
            "quiet_start": "22:00",
            "quiet_end": "07:00",
            "delay_hours": "36",
            "from_email": "hi@acme.test",
        },
    )
    assert response.status_code == 302
    prefs = notices.settings_for(cast.tenant.pk)
    assert (prefs.quiet_start, prefs.quiet_end, prefs.delay_hours, prefs.from_name) == (
        time(22),
        time(7),
        36,
        "Acme Socks",
    )


def test_bad_settings_are_form_errors_and_change_nothing(lead_client, store):
    cast, *_ = store
    url = reverse("settings_notices", args=[cast.tenant.slug])
    response = lead_client.post(url, {"form": "settings", "quiet_start": "22:00", "delay_hours": "0"})
    assert response.status_code == 400 and b"has-error" in response.content
    data = {"form": "rules", "shipped-enabled": "on", "shipped-template": ""}
    response = lead_client.post(url, data)
    assert response.status_code == 400
    assert notices.settings_for(cast.tenant.pk).delay_hours == 48
    assert NoticeRule.objects.get(tenant=cast.tenant, event="shipped").template_id is not None


def test_a_lead_writes_a_new_notice_template(lead_client, store):
    cast, *_ = store
    # The one template editor (Playbooks → Customer notices), linked from the notices settings.
    settings_page = lead_client.get(reverse("settings_notices", args=[cast.tenant.slug]))
    url = reverse("playbook_template_new", args=[cast.tenant.slug]) + "?kind=notice"
    assert url.encode() in settings_page.content
    assert lead_client.get(url).status_code == 200
    bad = lead_client.post(url, {"kind": "notice", "name": "X", "en-subject": "Hi", "en-body": "{{ nope }}"})
    assert bad.status_code == 400 and b"unknown variable" in bad.content
    ok = lead_client.post(
        url,
        {"kind": "notice", "name": "Back in stock", "en-subject": "Hi", "en-body": "Hi {{ customer.first_name }}"},
    )
    assert ok.status_code == 302
    assert ReplyTemplate.objects.filter(tenant=cast.tenant, kind="notice", name="Back in stock").exists()


def test_the_send_log_filters_and_releases_a_held_notice(lead_client, store, django_capture_on_commit_callbacks):
    cast, connection, _customer, order = store
    _ship(connection, order, tracking="")  # no tracking: no "shipped" notice …
    _ship(connection, order, status="out_for_delivery", tracking="", ext="f1")
    [held] = _notices(cast.tenant, event=NoticeEvent.OUT_FOR_DELIVERY)
    assert held.status == State.HELD and "links.tracking" in held.hold_reason
    log = reverse("settings_notice_log", args=[cast.tenant.slug])
    page = lead_client.get(log, {"status": "held", "event": "out_for_delivery"})
    assert page.status_code == 200 and b"links.tracking" in page.content
    assert lead_client.get(log, {"status": "nonsense", "page": "zz"}).status_code == 200
    release = reverse("settings_notice_release", args=[cast.tenant.slug, held.pk])
    assert lead_client.post(release).status_code == 302  # still missing: stays held, says why
    held.refresh_from_db()
    assert held.status == State.HELD
    Fulfillment.objects.filter(order=order).update(tracking_url="https://track.example/x", tracking_number="X1")
    with django_capture_on_commit_callbacks(execute=False):
        lead_client.post(release)
    held.refresh_from_db()
    assert held.status == State.QUEUED and "https://track.example/x" in held.body


def test_ticket_and_customer_partials_list_the_notices(agent_client, store, django_capture_on_commit_callbacks):
    cast, _connection, customer, _order = store
    ticket = ticket_services.ticket_create(
        tenant=cast.tenant, subject="Sizing", body="?", customer=customer, actor=Actor.system()
    )
    with django_capture_on_commit_callbacks(execute=True):
        ticket_services.ticket_set_status(ticket=ticket, status=Status.SOLVED, actor=Actor.system())
    page = agent_client.get(reverse("ticket_notices", args=[cast.tenant.slug, ticket.number]))
    assert page.status_code == 200 and b"Satisfaction survey" in page.content
    page = agent_client.get(reverse("customer_notices", args=[cast.tenant.slug, customer.pk]))
    assert page.status_code == 200 and b"Satisfaction survey" in page.content


def test_agents_cannot_change_notice_settings(agent_client, store):
    cast, *_ = store
    assert agent_client.get(reverse("settings_notices", args=[cast.tenant.slug])).status_code == 403


def test_outsider_gets_404_on_every_notice_page_and_changes_nothing(outsider_client, store):
    cast, connection, customer, order = store
    _ship(connection, order, tracking="")
    _ship(connection, order, status="out_for_delivery", tracking="", ext="f1")
    held = _notices(cast.tenant)[0]
    ticket = ticket_services.ticket_create(
        tenant=cast.tenant, subject="Q", body="?", customer=customer, actor=Actor.system()
    )
    slug = cast.tenant.slug
    urls = [
        reverse("settings_notices", args=[slug]),
        reverse("settings_notice_log", args=[slug]),
        reverse("settings_notice_release", args=[slug, held.pk]),
        reverse("ticket_notices", args=[slug, ticket.number]),
        reverse("customer_notices", args=[slug, customer.pk]),
    ]
    for url in urls:
        for method in ("get", "post"):
            response = getattr(outsider_client, method)(url, {"form": "settings", "delay_hours": "1"})
            assert response.status_code == 404, (method, url)
    # Their own workspace does not reach tenant A's rows by id either.
    other = cast.other_tenant.slug
    assert outsider_client.post(reverse("settings_notice_release", args=[other, held.pk])).status_code == 404
    assert outsider_client.get(reverse("customer_notices", args=[other, customer.pk])).status_code == 404
    held.refresh_from_db()
    assert held.status == State.HELD
    assert notices.settings_for(cast.tenant.pk).delay_hours == 48
