"""The notice send log as a lead sees it: sent, scheduled, held (with the reason and a
release button) and suppressed rows at 1366×768."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from helpdesk.services import Actor
from integrations import notices
from integrations.normalized import NFulfillment
from integrations.notices_demo import seed_notices
from integrations.notices_models import Notice
from integrations.upsert import apply
from tests.orders_fixtures import make_connection, make_order
from tickets import services as ticket_services


def test_the_send_log_shows_sent_held_and_suppressed_notices(page, shot, sign_in, cast):
    seed_notices(cast.tenant)
    notices.notice_settings_update(
        tenant=cast.tenant, actor=Actor.system(), quiet_start=None, quiet_end=None, delay_hours=48
    )
    connection = make_connection(cast.tenant, None, "generic")
    now = timezone.now()
    for i, (email, status, tracking) in enumerate(
        [
            ("carla@example.org", "in_transit", "1Z001"),
            ("ben@example.org", "out_for_delivery", ""),
            ("mia@example.org", "delivered", "1Z003"),
            ("gone@example.org", "in_transit", "1Z004"),
        ]
    ):
        customer = ticket_services.customer_get_or_create(
            tenant=cast.tenant, email=email, name=email.split("@")[0].title()
        )
        order = make_order(connection, external_id=f"70{i}", number=f"{1042 + i}", customer=customer, placed_at=now)
        if email.startswith("gone"):
            notices.suppression_add(tenant_id=cast.tenant.pk, email=email, reason="hard_bounce", detail="550 5.1.1")
        apply(
            connection=connection,
            records=[
                NFulfillment(
                    external_id=f"F{i}",
                    order_external_id=order.external_id,
                    status=status,
                    carrier="DHL",
                    tracking_number=tracking,
                    tracking_url=f"https://track.example/{tracking}" if tracking else "",
                    updated_at=now - timedelta(minutes=10 * i),
                )
            ],
        )
    Notice.objects.filter(tenant=cast.tenant, status="queued").update(
        status="sent", sent_at=now, attempts=1, message_id="<notice@acme.test>"
    )
    sign_in(page, cast.lead.email)
    page.goto(f"/t/{cast.tenant.slug}/settings/notices/log/")
    page.get_by_role("heading", name="Notice send log").wait_for()
    assert page.get_by_role("button", name="Release").count() >= 1
    assert page.get_by_text("No value for links.tracking").first.is_visible()
    shot("notices-send-log")
