"""Healing missed webhooks: pull the orders a platform changed since we last looked.

Webhooks get lost (Shopify drops a subscription after repeated failures, Woo never
retries), so a beat task asks each store for orders updated since the last good run,
minus an overlap, and feeds them through the same parse → upsert path as webhooks. The
upsert keeps the newer `updated_at`, so re-reading an order we already hold is harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from integrations.clients import PlatformError, client_for
from integrations.models import Connection

logger = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=10)  # clock skew and orders committed late on the platform
FIRST_WINDOW = timedelta(days=3)  # a new connection looks back this far the first time
# The topic whose payload shape the platform's REST order matches.
TOPICS = {"shopify": "orders/updated", "woocommerce": "order.updated", "magento": "order"}


@dataclass
class ReconcileReport:
    fetched: int = 0
    applied: int = 0
    skipped: int = 0
    error: str = ""


def reconcile_window_start(connection: Connection, now: datetime) -> datetime:
    if connection.last_reconciled_at is None:
        return now - FIRST_WINDOW
    return connection.last_reconciled_at - OVERLAP


def connection_reconcile(*, connection: Connection, now: datetime | None = None) -> ReconcileReport:
    """Fetch and apply the connection's changed orders; record the outcome on the connection.

    `last_reconciled_at` moves to the time the fetch *started* only when it succeeded, so
    orders changed during a run are read again next time, never skipped.
    """
    from integrations.normalize import normalize  # the parsers' entry point
    from integrations.upsert import apply

    started = now or timezone.now()
    report = ReconcileReport()
    topic = TOPICS.get(connection.platform)
    if topic is None:
        return report
    try:
        payloads = client_for(connection).orders_updated_since(reconcile_window_start(connection, started))
    except PlatformError as exc:
        report.error = exc.message
        Connection.objects.filter(pk=connection.pk, tenant_id=connection.tenant_id).update(
            reconcile_error=exc.message[:500]
        )
        logger.warning("reconcile %s failed: %s", connection.pk, exc.message)
        return report
    report.fetched = len(payloads)
    for payload in payloads:
        try:
            records = normalize(connection.platform, topic, payload)
            apply(connection=connection, records=records)
        except Exception as exc:  # one bad order must not stop the rest
            report.skipped += 1
            logger.warning("reconcile %s: order %s skipped: %s", connection.pk, payload.get("id"), exc)
            continue
        report.applied += 1
    error = f"{report.skipped} of {report.fetched} changed orders could not be read." if report.skipped else ""
    Connection.objects.filter(pk=connection.pk, tenant_id=connection.tenant_id).update(
        last_reconciled_at=started, reconcile_error=error
    )
    report.error = error
    return report
