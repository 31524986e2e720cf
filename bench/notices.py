"""Customer notices at scale: a delay event fanned out to 10,000 orders, then sent by one
real Celery worker to a local SMTP sink.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<yours>_bench REDIS_URL=redis://127.0.0.1:6379/<n> \\
        .venv/bin/python bench/notices.py --orders 10000
    .venv/bin/python bench/run.py --only notices          # the same, from the bench runner

Steps: migrate the (small, own) bench database; make a tenant `notices-bench-<run>` with
the starter notices on, one store, N customers with one order and one shipment each whose
last carrier scan is three days old (bulk inserts), and 2 % of them an open WISMO ticket;
time `integrations.notices_events.delay_scan` (flag once, delay notice, timeline events,
`delayed` tags) and check there are no duplicates, and that a second scan adds nothing;
then start one worker (`celery worker --pool=solo`, EMAIL_URL → an aiosmtpd sink on a free
127.0.0.1 port in this process) and time the sends: notices/s from the first to the last
`sent_at`, and the sink's count. Targets: fan-out < 60 s, ≥ 200 notices/s. Clean-up deletes
the tenant. Nothing here asserts timing.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import PYTHON, ROOT, database_url, describe_db, django_env, migrate, redis_url, setup_django  # noqa: E402


class _Sink:
    """Counts messages; accepts everything."""

    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.count += 1
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_data(n: int, label: str):
    from decimal import Decimal

    from django.utils import timezone

    from helpdesk.services import Actor, tenant_create
    from integrations.models import Connection, Fulfillment, Order
    from integrations.notices import notice_settings_update
    from integrations.notices_demo import seed_notices
    from tickets.models import Customer, TicketType
    from tickets.services import ticket_create

    tenant, _owner = tenant_create(
        name=f"Notices bench {label}", slug=f"notices-bench-{label}", owner_email=f"owner@{label}.bench.example"
    )
    seed_notices(tenant)
    notice_settings_update(tenant=tenant, actor=Actor.system(), quiet_start=None, quiet_end=None, delay_hours=48)
    connection = Connection.objects.create(tenant=tenant, platform="generic", name="Bench store")
    now = timezone.now()
    scanned = now - timedelta(days=3)
    customers = Customer.objects.bulk_create(
        [
            Customer(tenant=tenant, email=f"c{i}@{label}.bench.example", name=f"Customer {i}", language="en")
            for i in range(n)
        ],
        batch_size=2000,
    )
    orders = Order.objects.bulk_create(
        [
            Order(
                tenant=tenant,
                connection=connection,
                external_id=f"O{i}",
                number=str(10000 + i),
                name=f"#{10000 + i}",
                customer=c,
                email=c.email,
                currency="EUR",
                total=Decimal("59.00"),
                placed_at=scanned - timedelta(days=1),
                platform_updated_at=scanned,
                shipping_address={"name": c.name, "address1": "Main St 1", "city": "Berlin", "country_code": "DE"},
            )
            for i, c in enumerate(customers)
        ],
        batch_size=2000,
    )
    Fulfillment.objects.bulk_create(
        [
            Fulfillment(
                tenant=tenant,
                order=o,
                external_id=f"F{i}",
                status="in_transit",
                carrier="DHL",
                tracking_number=f"1Z{i:08d}",
                tracking_url=f"https://track.example/1Z{i:08d}",
                shipped_at=scanned - timedelta(hours=2),
                last_event_at=scanned,
            )
            for i, o in enumerate(orders)
        ],
        batch_size=2000,
    )
    wismo = TicketType.objects.create(tenant=tenant, slug="wismo", name="Where is my order")
    for c in customers[: max(1, n // 50)]:
        ticket_create(
            tenant=tenant, subject="Where is my order?", body="Still waiting.", customer=c, actor=Actor.system(),
            ticket_type=wismo,
        )  # fmt: skip
    return tenant


def _start_worker(queue: str, email_url: str, log: Path) -> subprocess.Popen:
    env = django_env(EMAIL_URL=email_url, STOREDESK_TEST_QUEUE=queue, DB_CONN_MAX_AGE="600")
    return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [PYTHON, "-m", "celery", "-A", "tests.e2e_celery", "worker", "-Q", queue, "--pool=solo",
         "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel=WARNING"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip


def run(orders: int = 10_000, timeout: float = 600.0) -> dict:
    """Run the scenario; returns its figures (and prints them)."""
    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # the sink logs every SMTP line
    setup_django(REDIS_URL=redis_url())
    from django.db import connection as db
    from django.db.models import Count, Max, Min

    from helpdesk.celery import app as celery_app
    from integrations.notices_events import delay_scan
    from integrations.notices_models import FulfillmentDelay, Notice
    from tickets.models import TicketEvent, TicketTag

    label = uuid.uuid4().hex[:6]
    queue = f"notices-bench-{label}"
    celery_app.conf.task_default_queue = queue  # the fan-out's send tasks wait for our worker
    print(f"== notices: {describe_db()}, Redis {redis_url()}, {orders:,} orders, queue {queue}")
    t0 = time.perf_counter()
    tenant = _make_data(orders, label)
    print(f"  data: {time.perf_counter() - t0:.1f} s")
    figures: dict = {"orders": orders}
    try:
        t0 = time.perf_counter()
        report = delay_scan(tenant=tenant)
        fanout = time.perf_counter() - t0
        again = delay_scan(tenant=tenant)
        rows = Notice.objects.filter(tenant=tenant, event="delay")
        dupes = rows.values("subject_key", "template_id").annotate(n=Count("id")).filter(n__gt=1).count()
        figures.update(
            fanout_s=round(fanout, 2),
            flagged=report.flagged,
            notices=rows.count(),
            queued=rows.filter(status="queued").count(),
            ticket_events=TicketEvent.objects.filter(tenant=tenant, kind="shipment_delayed").count(),
            tagged=TicketTag.objects.filter(tenant=tenant, tag__name="delayed").count(),
            duplicate_keys=dupes,
            flags=FulfillmentDelay.objects.filter(tenant=tenant).count(),
            second_scan_flagged=again.flagged,
        )
        print(
            f"  delay fan-out: {fanout:.2f} s for {report.flagged:,} shipments "
            f"({report.flagged / fanout:,.0f}/s); notices {figures['notices']:,} (queued {figures['queued']:,}), "
            f"timeline events {figures['ticket_events']}, tagged {figures['tagged']}, duplicate keys {dupes}, "
            f"second scan flagged {again.flagged}; target < 60 s"
        )

        sink = _Sink()
        port = _free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        log = ROOT / "bench" / "results" / "notices-worker.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        worker = _start_worker(queue, f"smtp://127.0.0.1:{port}", log)
        try:
            wanted = figures["queued"]
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if rows.filter(status="sent").count() >= wanted:
                    break
                time.sleep(1.0)
            db.close()
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            controller.stop()
        span = rows.filter(status="sent").aggregate(first=Min("sent_at"), last=Max("sent_at"), n=Count("id"))
        seconds = (span["last"] - span["first"]).total_seconds() if span["n"] > 1 else float("nan")
        figures.update(
            sent=span["n"],
            smtp_received=sink.count,
            send_span_s=round(seconds, 2),
            sent_per_s=round(span["n"] / seconds, 1) if seconds == seconds and seconds > 0 else None,
            statuses=dict(rows.values_list("status").annotate(n=Count("id")).order_by()),
        )
        print(
            f"  sending (1 worker, solo pool): {span['n']:,} sent in {seconds:.1f} s = "
            f"{figures['sent_per_s']} notices/s; SMTP sink received {sink.count:,}; "
            f"statuses {figures['statuses']}; target ≥ 200/s"
        )
    finally:
        from helpdesk.models import Tenant
        from tickets.models import Ticket

        Ticket.objects.filter(tenant=tenant).delete()  # customers are protected by their tickets
        Tenant.objects.filter(pk=tenant.pk).delete()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Customer notices bench (see the module doc)")
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the sends")
    parser.add_argument("--skip-migrate", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("DATABASE_URL", database_url())
    if not args.skip_migrate:
        from bench.common import cursor, database_exists, db_params

        if not database_exists():
            with cursor("postgres") as cur:
                cur.execute(f'CREATE DATABASE "{db_params()["dbname"]}"')
        migrate()
    run(args.orders, args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
